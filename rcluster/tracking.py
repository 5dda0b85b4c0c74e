"""Server-assisted client-side caching (Redis 7.0's tracking.c), sans-IO.

A client that runs ``CLIENT TRACKING on`` is told when keys it may hold
in a local cache change.  Two modes:

* **Default.** The keys a tracking client reads (the key arguments of a
  readonly command) go into the *tracking table*: key -> ids of the
  clients that read it.  The first change of such a key (a write from any
  client, an expiry, an eviction, the key leaving the node with its slot)
  sends one invalidation to each of them and forgets the key: the next
  read of it registers it again.  OPTIN/OPTOUT narrow what is remembered
  to the commands after ``CLIENT CACHING yes`` / not after
  ``CLIENT CACHING no``.
* **BCAST.** Nothing is remembered: a client subscribes to key prefixes
  (none means every key) and gets every changed key under them, batched
  once per event-loop turn (Redis does it in beforeSleep; here a
  ``callLater(0)`` armed by the first change of a turn).

FLUSHALL/FLUSHDB (the write path reports ``keys=None``) sends every
tracking client a null invalidation - "everything" - and empties the
table.  ``tracking-table-max-keys`` bounds the table: past it, keys are
dropped from it with an invalidation to their readers, as if changed
(Redis picks them by a random walk of its radix tree; we drop the oldest
entries of the table, in insertion order).

Where the messages go: a RESP3 client gets a push ``>2 invalidate
[keys]`` on its own connection; with ``REDIRECT id`` they go to that
client instead - as the same push if it speaks RESP3, or, if it speaks
RESP2 and is in pub/sub mode, as a message on ``__redis__:invalidate``.
A RESP2 client without redirection gets nothing (RESP2 has no pushes).
When the redirect target is gone, the tracking client is flagged
``broken_redirect`` and, if it speaks RESP3, pushed
``tracking-redir-broken <id>`` instead of each invalidation.

An invalidation for the client whose command is running (it wrote or
flushed a key it had read, without NOLOOP) is sent after that command's
reply - after the whole EXEC reply inside a transaction - as Redis does
with its tracking_pending_keys.  Messages to other clients are queued on
them and written at the end of the reactor turn, one write per client
(Redis writes them in beforeSleep too): a write invalidating a key read
by 50 clients costs 50 appends, not 50 socket writes.

Where rcluster differs, on purpose:

* Keys dropped from the table because of tracking-table-max-keys or a
  lost slot did not change: their readers are told even in NOLOOP mode
  (Redis skips a NOLOOP client whose command is running at that moment,
  which then keeps an entry nobody will invalidate).
* ``CLIENT TRACKING on BCAST PREFIX a PREFIX b PREFIX bc`` - an overlap
  between new prefixes other than the first - gets the error only; Redis
  7.0 replies the error *and* +OK, and enables tracking.

Cluster mode: tracking is per node (a REDIRECT target is a client of the
same node).  Redis 7.0 forgets nothing when a slot leaves the node
(migration, failover, UPDATE): a client that cached a key of that slot -
typically a *missing* key, whose next write happens on the new owner -
would keep a stale entry forever.  rcluster closes the gap in default
mode: when the node's shard stops serving a slot (``slot_lost``), every
tracked key of the slot is invalidated as if written, and forgotten.  A
per-slot index of the table (cluster mode only) makes that O(keys of the
slot).  BCAST clients are told about keys that are deleted from the node
with the slot (they go through the write path like any deletion), not
about keys that never existed here: they cache by prefix, and we cannot
know which absent keys they hold.

The server state lives in one ``Tracking`` object, ``server.tracking``,
created by the first ``CLIENT TRACKING on`` (``enable``); a client's own
settings are a ``ClientTracking`` in ``client.tracking`` (None when off).
"""
from __future__ import annotations

from bisect import bisect_left
from itertools import islice

from rcluster.cluster.keyslot import keyslot
from rcluster.commands.common import SYNTAX, parse_int
from rcluster.commands.table import CommandError

# The messages, as Redis writes them, before the array of keys.
PUSH_HEAD = b">2\r\n$10\r\ninvalidate\r\n"
MESSAGE_HEAD = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
REDIR_BROKEN = b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n"
NULL3 = b"_\r\n"
NULL2 = b"$-1\r\n"
# Readonly commands whose keys are not remembered as such: a script's
# keys are remembered when it runs a read command (script_read).
_NOT_REMEMBERED = frozenset(("eval_ro", "evalsha_ro", "fcall_ro"))
_EFFORT = 100         # keys dropped per check past tracking-table-max-keys


class ClientTracking:
    """One client's CLIENT TRACKING settings (Redis's CLIENT_TRACKING_*
    flags, client_tracking_redirection and client_tracking_prefixes)."""
    __slots__ = ("redirect", "bcast", "optin", "optout", "noloop",
                 "caching", "broken", "prefixes")

    def __init__(self):
        self.redirect = 0         # client id, 0 = none
        self.bcast = False
        self.optin = False
        self.optout = False
        self.noloop = False
        self.caching = False      # CLIENT CACHING yes (OPTIN) / no (OPTOUT)
        self.broken = False       # the redirect target is gone
        self.prefixes: dict = {}  # BCAST prefixes (ordered, values unused)

    def flags(self) -> list:
        """CLIENT TRACKINGINFO's flags, in Redis's order."""
        out = [b"on"]
        if self.bcast:
            out.append(b"bcast")
        if self.optin:
            out.append(b"optin")
            if self.caching:
                out.append(b"caching-yes")
        if self.optout:
            out.append(b"optout")
            if self.caching:
                out.append(b"caching-no")
        if self.noloop:
            out.append(b"noloop")
        if self.broken:
            out.append(b"broken_redirect")
        return out


class _Prefix:
    """A BCAST prefix: its subscribers, and the keys changed under it
    this turn, each with the client that changed it last (for NOLOOP)."""
    __slots__ = ("clients", "keys")

    def __init__(self):
        self.clients: dict = {}   # client -> None, in subscription order
        self.keys: dict = {}      # key -> writer client (or None)


def get(server) -> "Tracking":
    """The server's Tracking, created (and hooked to the write path) on
    first use."""
    tracking = server.tracking
    if tracking is None:
        tracking = server.tracking = Tracking(server)
    return tracking


def info_fields(server) -> dict:
    """INFO's tracking_* figures."""
    tracking = server.tracking
    if tracking is None:
        return {"tracking_clients": 0, "tracking_total_keys": 0,
                "tracking_total_items": 0, "tracking_total_prefixes": 0}
    return {"tracking_clients": tracking.clients,
            "tracking_total_keys": len(tracking.table),
            "tracking_total_items": tracking.items,
            "tracking_total_prefixes": len(tracking.prefixes)}


class Tracking:
    def __init__(self, server):
        self.server = server
        self.table: dict = {}        # key -> set of client ids
        self.items = 0               # ids across the table
        self.clients = 0             # clients with tracking on
        self.prefixes: dict = {}     # prefix -> _Prefix
        self._lengths: tuple = ()    # distinct prefix lengths
        self._length_counts: dict = {}   # prefix length -> prefixes
        self._pending: list = []     # (client, key or None) to send later
        self._turn_call = None
        self._unflushed: dict = {}   # clients with messages to write
        self._over_limit = 0         # consecutive checks still over the limit
        # Cluster mode: slot -> {tracked key of that slot: None} (ordered).
        self.by_slot: dict | None = {} if server.cluster_mode else None
        server.write_path.add_key_listener(self.keys_changed)

    # -- enabling -----------------------------------------------------------
    def enable(self, c, redirect: int, bcast: bool, optin: bool,
               optout: bool, noloop: bool, prefixes: list):
        """Redis's enableTracking (the checks are the command's)."""
        t = c.tracking
        if t is None:
            t = c.tracking = ClientTracking()
            self.clients += 1
        t.broken = False
        t.redirect = redirect
        t.bcast, t.optin, t.optout, t.noloop = bcast, optin, optout, noloop
        if bcast:
            for prefix in prefixes or (b"",):
                self._subscribe(c, prefix)

    def disable(self, c):
        """Redis's disableTracking: the client's ids stay in the table
        (forgotten lazily, as in Redis); its prefixes go."""
        t = c.tracking
        if t is None:
            return
        for prefix in t.prefixes:
            state = self.prefixes.get(prefix)
            if state is not None:
                state.clients.pop(c, None)
                if not state.clients:
                    del self.prefixes[prefix]
                    self._count_length(len(prefix), -1)
        c.tracking = None
        self.clients -= 1

    def _subscribe(self, c, prefix: bytes):
        state = self.prefixes.get(prefix)
        if state is None:
            state = self.prefixes[prefix] = _Prefix()
            self._count_length(len(prefix), 1)
        if c not in state.clients:
            state.clients[c] = None
            c.tracking.prefixes[prefix] = None

    def _count_length(self, size: int, change: int):
        counts = self._length_counts
        counts[size] = counts.get(size, 0) + change
        if not counts[size]:
            del counts[size]
        self._lengths = tuple(counts)

    # -- reads ----------------------------------------------------------------
    def after_call(self, c, cmd, argv, send=True):
        """Run by Server.call after each command of a tracking client (its
        reply already queued): remember the keys a read returned (Redis's
        trackingRememberKeys), forget CLIENT CACHING after the command it
        applied to, send the invalidations held back for the reply, and
        keep the table under tracking-table-max-keys."""
        t = c.tracking
        server = self.server
        if "readonly" in cmd.flags and cmd.name not in _NOT_REMEMBERED:
            self.remember_read(c, cmd, argv)
        nested = server.in_exec
        if t.caching and not nested and c.multi is None and \
                not cmd.name.startswith("client|"):
            t.caching = False
        limit = server.settings.tracking_table_max_keys
        if limit and len(self.table) > limit:
            self.limit_table(limit)
        if self._pending and send and not nested:
            self._send_pending()

    def remember_read(self, c, cmd, argv):
        """Redis's trackingRememberKeys: tracking client ``c`` ran the
        readonly command ``cmd``, remember its keys.  (A script's reads
        go through ``script_read``: the hook in Server.call sees the
        script's own client, which never tracks.)"""
        t = c.tracking
        if t.bcast or (t.optin and not t.caching) or \
                (t.optout and t.caching) or "pubsub" in cmd.flags:
            return
        self._remember(c.id, cmd.keys(argv))

    def script_read(self, caller, argv):
        """A script that tracking client ``caller`` runs (``argv``: its
        EVAL/EVALSHA/FCALL... request, already checked) ran a readonly
        command: remember the script's declared keys (Redis's call())."""
        t = caller.tracking
        if t.bcast or (t.optin and not t.caching) or (t.optout and t.caching):
            return
        self._remember(caller.id, argv[3:3 + int(argv[2])])

    def _remember(self, cid: int, keys):
        table = self.table
        for key in keys:
            ids = table.get(key)
            if ids is None:
                table[key] = {cid}
                self.items += 1
                if self.by_slot is not None:
                    slot = keyslot(key)
                    keys_of_slot = self.by_slot.get(slot)
                    if keys_of_slot is None:
                        self.by_slot[slot] = {key: None}
                    else:
                        keys_of_slot[key] = None
            elif cid not in ids:
                ids.add(cid)
                self.items += 1

    def cron(self):
        """From the server's cron, as Redis's serverCron: the table limit
        is enforced even when nobody reads (after CONFIG SET lowered it)."""
        limit = self.server.settings.tracking_table_max_keys
        if limit and len(self.table) > limit:
            self.limit_table(limit)

    def limit_table(self, limit: int):
        """Redis's trackingLimitUsedSlots: drop keys (oldest first) with
        an invalidation to their readers until the table is under the
        limit, with an effort that grows while it stays over it."""
        table = self.table
        effort = _EFFORT * (self._over_limit + 1)
        excess = len(table) - limit
        for key in list(islice(table, min(effort, excess))):
            self.invalidate_key(key, None, dropped=True)
        if len(table) > limit:
            self._over_limit += 1
        else:
            self._over_limit = 0

    # -- changes ------------------------------------------------------------
    def keys_changed(self, keys, client):
        """The write path's key listener: ``keys`` were modified by
        ``client`` (None for an expiry or eviction); ``keys`` None means
        everything was flushed."""
        if keys is None:
            self.flushed()
            return
        if client is not None and client.kind == "script":
            # A script's write: the script's caller is the client running
            # its batch, as for a server-made deletion (NOLOOP, ordering).
            client = None
        if self.prefixes:
            self._note_for_broadcast(keys, client)
        if self.table:
            for key in keys:
                if key in self.table:
                    self.invalidate_key(key, client)

    def invalidate_key(self, key: bytes, writer, dropped=False):
        """Redis's trackingInvalidateKey for one key of the table.

        ``dropped``: the key did not change, the table lets it go (over
        tracking-table-max-keys, its slot left the node): every reader is
        told, NOLOOP or not, and at once unless its command is running."""
        ids = self.table.pop(key, None)
        if ids is None:
            return
        self.items -= len(ids)
        if self.by_slot is not None:
            slot = keyslot(key)
            keys_of_slot = self.by_slot.get(slot)
            if keys_of_slot is not None:
                keys_of_slot.pop(key, None)
                if not keys_of_slot:
                    del self.by_slot[slot]
        clients = self.server.clients
        array = None
        for cid in ids:
            target = clients.get(cid)
            if target is None:
                continue
            t = target.tracking
            if t is None or t.bcast:
                continue
            # The client whose command is running: the writer, or for a
            # server-made deletion (lazy expiry) the client in its batch.
            current = not dropped and (
                target is writer or (writer is None and target.in_batch))
            if t.noloop and current:
                continue
            if current or (target.in_batch and not dropped):
                self._hold(target, key)
            else:
                if array is None:
                    array = b"*1\r\n$%d\r\n%b\r\n" % (len(key), key)
                self.send(target, array)

    def flushed(self):
        """FLUSHALL / FLUSHDB: a null invalidation to every tracking
        client, and the table is emptied (trackingInvalidateKeysOnFlush)."""
        if self.clients:
            for target in list(self.server.clients.values()):
                if target.tracking is not None:
                    if target.in_batch:
                        self._hold(target, None)
                    else:
                        self.send(target, None)
        self.table = {}
        self.items = 0
        if self.by_slot is not None:
            self.by_slot = {}

    def slot_lost(self, slot: int):
        """The node's shard stopped serving ``slot``: its tracked keys are
        invalidated and forgotten (see the module docstring)."""
        if self.by_slot is None:
            return
        keys = self.by_slot.get(slot)
        if keys:
            for key in list(keys):
                self.invalidate_key(key, None, dropped=True)

    # -- BCAST ----------------------------------------------------------------
    def _note_for_broadcast(self, keys, client):
        prefixes = self.prefixes
        noted = False
        for key in keys:
            for size in self._lengths:
                if size <= len(key):
                    state = prefixes.get(key[:size])
                    if state is not None:
                        state.keys[key] = client
                        noted = True
        if noted:
            self._arm_turn()

    def broadcast(self):
        """Redis's trackingBroadcastInvalidationMessages: each prefix's
        changed keys (sorted, as Redis's radix tree lists them) to its
        subscribers, NOLOOP ones without the keys they changed; prefixes
        in sorted order, as Redis walks them."""
        prefixes = self.prefixes
        for prefix in sorted(prefixes):
            state = prefixes.get(prefix)
            if state is None:
                continue
            changed = state.keys
            if not changed:
                continue
            state.keys = {}
            keys = sorted(changed)
            common = None
            for target in list(state.clients):
                if target.tracking is None:
                    continue
                if target.tracking.noloop:
                    own = [k for k in keys if changed[k] is not target]
                    if own:
                        self.send(target, keys_array(own))
                    continue
                if common is None:
                    common = keys_array(keys)
                self.send(target, common)

    # -- delivery -------------------------------------------------------------
    def _hold(self, target, key):
        """Send after the running command's reply."""
        self._pending.append((target, key))
        self._arm_turn()

    def _send_pending(self):
        pending, self._pending = self._pending, []
        for target, key in pending:
            if target.tracking is not None and not target.closed:
                self.send(target, None if key is None
                          else keys_array((key,)))

    def _arm_turn(self):
        if self._turn_call is None:
            self._turn_call = self.server.clock.callLater(0, self._end_turn)

    def _end_turn(self):
        """Once per reactor turn with work: the held invalidations, BCAST
        batches, then one write per client that got messages."""
        try:
            if self._pending:
                self._send_pending()
            if self.prefixes:
                self.broadcast()
            unflushed, self._unflushed = self._unflushed, {}
            for client in unflushed:
                if not client.in_batch:
                    client.flush()
        finally:
            self._turn_call = None

    def send(self, c, keys):
        """Redis's sendTrackingMessage: ``keys`` an encoded array of keys
        (``keys_array``), or None for "everything" - written as the null
        of the *tracking* client's protocol, wherever it goes (so a RESP2
        redirect target of a RESP3 client gets ``_``, as from Redis)."""
        t = c.tracking
        if keys is None:
            keys = NULL3 if c.resp3 else NULL2
        dest = c
        redirected = False
        if t.redirect:
            dest = self.server.clients.get(t.redirect)
            if dest is None or dest.closed:
                t.broken = True
                if c.resp3:
                    self._deliver(c, REDIR_BROKEN % t.redirect)
                return
            redirected = True
        if dest.resp3:
            self._deliver(dest, PUSH_HEAD + keys)
        elif redirected and (dest.channels or dest.patterns
                             or dest.shard_channels):
            self._deliver(dest, MESSAGE_HEAD + keys)

    def _deliver(self, dest, data: bytes):
        """Queue an out-of-band message (CLIENT REPLY does not silence
        these).  A client running its batch writes it with its replies;
        the others are written once at the end of the turn, all their
        messages in one write (as Redis writes in beforeSleep)."""
        dest.out.append(data)
        if not dest.in_batch:
            self._unflushed[dest] = None
            self._arm_turn()


def keys_array(keys) -> bytes:
    parts = [b"*%d\r\n" % len(keys)]
    for key in keys:
        parts.append(b"$%d\r\n%b\r\n" % (len(key), key))
    return b"".join(parts)


# -- CLIENT TRACKING option parsing and checks (networking.c) ---------------
def _overlap(a: bytes, b: bytes) -> bool:
    size = min(len(a), len(b))
    return a[:size] == b[:size]


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "surrogateescape")


def tracking_command(c, argv):
    """CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN]
    [OPTOUT] [NOLOOP], with Redis 7.0's checks in its order."""
    server = c.server
    redirect = 0
    bcast = optin = optout = noloop = False
    prefixes: list = []
    j = 3
    while j < len(argv):
        option = argv[j].lower()
        more = len(argv) - 1 - j
        if option == b"redirect" and more:
            j += 1
            if redirect != 0:
                raise CommandError("ERR A client can only redirect to a "
                                   "single other client")
            redirect = parse_int(argv[j])
            if redirect not in server.clients:
                raise CommandError("ERR The client ID you want redirect to "
                                   "does not exist")
        elif option == b"bcast":
            bcast = True
        elif option == b"optin":
            optin = True
        elif option == b"optout":
            optout = True
        elif option == b"noloop":
            noloop = True
        elif option == b"prefix" and more:
            j += 1
            prefixes.append(argv[j])
        else:
            raise CommandError(SYNTAX)
        j += 1
    mode = argv[2].lower()
    if mode == b"off":
        if c.tracking is not None:
            server.tracking.disable(c)
        return
    if mode != b"on":
        raise CommandError(SYNTAX)
    current = c.tracking
    if not bcast and prefixes:
        raise CommandError("ERR PREFIX option requires BCAST mode to be "
                           "enabled")
    if current is not None and current.bcast != bcast:
        raise CommandError("ERR You can't switch BCAST mode on/off before "
                           "disabling tracking for this client, and then "
                           "re-enabling it with a different mode.")
    if bcast and (optin or optout):
        raise CommandError("ERR OPTIN and OPTOUT are not compatible with "
                           "BCAST")
    if optin and optout:
        raise CommandError("ERR You can't specify both OPTIN mode and "
                           "OPTOUT mode")
    if current is not None and ((optin and current.optout)
                                or (optout and current.optin)):
        raise CommandError("ERR You can't switch OPTIN/OPTOUT mode before "
                           "disabling tracking for this client, and then "
                           "re-enabling it with a different mode.")
    if bcast:
        _check_prefixes(current, prefixes)
    get(server).enable(c, redirect, bcast, optin, optout, noloop, prefixes)


# Above this many prefix comparisons, overlaps are found by sorting
# (O(n log n)) instead of Redis's pairwise loop, so that a request with
# thousands of prefixes can't stall the reactor.
_PAIRWISE_LIMIT = 100_000


def _check_prefixes(current, prefixes):
    """Redis's checkPrefixCollisionsOrReply.  (Redis 7.0 replies twice,
    the error then +OK, when the overlap is between two new prefixes
    other than the first one: here the error is the only reply.)"""
    existing = sorted(current.prefixes) if current is not None else []
    if len(prefixes) * (len(existing) + len(prefixes)) > _PAIRWISE_LIMIT:
        overlap = _sorted_overlap(existing, prefixes)
        if overlap is not None:
            _refuse_overlap(*overlap)
        return
    for i, prefix in enumerate(prefixes):
        for other in existing:
            if _overlap(other, prefix):
                _refuse_overlap(True, prefix, other)
        for other in prefixes[i + 1:]:
            if _overlap(prefix, other):
                _refuse_overlap(False, prefix, other)


def _sorted_overlap(existing, prefixes):
    """A pair that overlaps, or None.  Sorted, a prefix of ``s`` comes
    right before the strings that start with it, so neighbours suffice
    (the client's own prefixes don't overlap each other, but for the
    empty one, which overlaps everything)."""
    if existing and existing[0] == b"" and prefixes:
        return True, prefixes[0], b""
    for prefix in prefixes:
        at = bisect_left(existing, prefix)
        for other in existing[max(at - 1, 0):at + 1]:
            if _overlap(other, prefix):
                return True, prefix, other
    ordered = sorted(range(len(prefixes)), key=prefixes.__getitem__)
    for a, b in zip(ordered, ordered[1:]):
        if _overlap(prefixes[a], prefixes[b]):
            first, second = min(a, b), max(a, b)
            return False, prefixes[first], prefixes[second]
    return None


def _refuse_overlap(with_existing: bool, prefix: bytes, other: bytes):
    if with_existing:
        raise CommandError(
            "ERR Prefix '%s' overlaps with an existing prefix '%s'. "
            "Prefixes for a single client must not overlap."
            % (_text(prefix), _text(other)))
    raise CommandError(
        "ERR Prefix '%s' overlaps with another provided prefix '%s'. "
        "Prefixes for a single client must not overlap."
        % (_text(prefix), _text(other)))
