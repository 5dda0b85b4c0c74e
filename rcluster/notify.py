"""Keyspace events (Redis's notify.c): ``notify-keyspace-events``.

Handlers call ``notify(c, CLASS, b"event", key)`` after a change; with the
class disabled (the default: every class off) that is one attribute read
and one ``&``.  Enabled, the event is published to this node's
subscribers only (``PubSub.deliver``: keyspace events never cross the
cluster bus, as in Redis) on

    __keyspace@<db>__:<key>    with the event name as message   (K)
    __keyevent@<db>__:<event>  with the key as message           (E)

``install(server)`` keeps ``server.notify_flags`` in step with the
setting, and hooks the keyspace for ``new`` (n) events; ``Server`` calls
it once.  Flags parse and print as Redis's keyspaceEventsStringToFlags /
keyspaceEventsFlagsToString.
"""
from __future__ import annotations

KEYSPACE = 1 << 0       # K
KEYEVENT = 1 << 1       # E
GENERIC = 1 << 2        # g
STRING = 1 << 3         # $
LIST = 1 << 4           # l
SET = 1 << 5            # s
HASH = 1 << 6           # h
ZSET = 1 << 7           # z
EXPIRED = 1 << 8        # x
EVICTED = 1 << 9        # e
STREAM = 1 << 10        # t
KEY_MISS = 1 << 11      # m (not part of A)
LOADED = 1 << 12        # modules only
MODULE = 1 << 13        # d
NEW = 1 << 14           # n (not part of A)
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | \
    STREAM | MODULE

_CHARS = {"A": ALL, "g": GENERIC, "$": STRING, "l": LIST, "s": SET,
          "h": HASH, "z": ZSET, "x": EXPIRED, "e": EVICTED, "K": KEYSPACE,
          "E": KEYEVENT, "t": STREAM, "m": KEY_MISS, "d": MODULE, "n": NEW}
_CLASS_ORDER = (("g", GENERIC), ("$", STRING), ("l", LIST), ("s", SET),
                ("h", HASH), ("z", ZSET), ("x", EXPIRED), ("e", EVICTED),
                ("t", STREAM), ("d", MODULE), ("n", NEW))


def string_to_flags(classes: str) -> int:
    """keyspaceEventsStringToFlags: -1 for an unknown character."""
    flags = 0
    for ch in classes:
        bit = _CHARS.get(ch)
        if bit is None:
            return -1
        flags |= bit
    return flags


def flags_to_string(flags: int) -> str:
    """keyspaceEventsFlagsToString (note: with A, 'n' is not printed)."""
    if flags & ALL == ALL:
        out = "A"
    else:
        out = "".join(ch for ch, bit in _CLASS_ORDER if flags & bit)
    if flags & KEYSPACE:
        out += "K"
    if flags & KEYEVENT:
        out += "E"
    if flags & KEY_MISS:
        out += "m"
    return out


def notify(target, cls: int, event: bytes, key: bytes, db: int = None):
    """Publish one keyspace event (notifyKeyspaceEvent).  ``target`` is a
    client or the server; ``db`` defaults to the database in use."""
    server = getattr(target, "server", target)
    flags = server.notify_flags
    if not flags & cls:
        return
    pubsub = server.pubsub
    if not (pubsub.channels or pubsub.patterns):
        return      # nobody could hear it
    if db is None:
        db = server.cur_db
    prefix = b"%d__:" % db
    if flags & KEYSPACE:
        pubsub.deliver(b"__keyspace@" + prefix + key, event)
    if flags & KEYEVENT:
        pubsub.deliver(b"__keyevent@" + prefix + event, key)


def install(server):
    """Keep server.notify_flags (and the keyspace's ``new`` hook) in step
    with notify-keyspace-events."""
    def apply(text):
        flags = string_to_flags(text or "")
        server.notify_flags = max(flags, 0)
        hook = _new_hook(server) if flags > 0 and flags & NEW else None
        for ks in server.dbs:
            ks.on_new = hook

    def listener(name, value):
        if name == "notify-keyspace-events":
            apply(value)

    apply(server.settings.notify_keyspace_events)
    server.settings.listeners.append(listener)


def _new_hook(server):
    def on_new(key):
        if not server.loading:
            notify(server, NEW, b"new", key)
    return on_new
