"""DUMP, RESTORE and RESTORE-ASKING (Redis 7.0's cluster.c).

Payloads come from ``rcluster.persistence.rdb`` (byte-identical to
redis-server's for listpack/intset/quicklist encodings).  RESTORE with a
relative TTL propagates with the absolute deadline and ABSTTL, and a
REPLACE whose TTL is already past propagates as DEL, as Redis does.

IDLETIME and FREQ are parsed and checked exactly as in Redis and set the
key's access metadata (rcluster/eviction.py: IDLETIME under an LRU-clock
policy, FREQ under an LFU one, as objectSetLRUOrLFU).
"""
from __future__ import annotations

from rcluster.eviction import set_access

from rcluster.commands.common import SYNTAX, parse_int, propagate_as
from rcluster.commands.keys import lookup_read
from rcluster.commands.table import CommandError, command, key_range
from rcluster.notify import GENERIC, notify
from rcluster.persistence.rdb import RdbError, dump_payload, load_payload
from rcluster.resp.codec import OK

BUSYKEY = "BUSYKEY Target key name already exists."
BAD_TTL = "ERR Invalid TTL value, must be >= 0"
BAD_IDLETIME = "ERR Invalid IDLETIME value, must be >= 0"
BAD_FREQ = "ERR Invalid FREQ value, must be >= 0 and <= 255"

_RESTORE_COMPLEXITY = (
    "O(1) to create the new key and additional O(N*M) to reconstruct the "
    "serialized value, where N is the number of Redis objects composing the "
    "value and M their average size. For small string values the time "
    "complexity is thus O(1)+O(1*M) where M is small, so simply O(1). "
    "However for sorted set values the complexity is O(N*M*log(N)) because "
    "inserting values into sorted sets is O(log(N)).")
_RESTORE_HISTORY = (("3.0.0", "Added the `REPLACE` modifier."),
                    ("5.0.0", "Added the `ABSTTL` modifier."),
                    ("5.0.0", "Added the `IDLETIME` and `FREQ` options."))
_KEY_ARG = {"name": "key", "type": "key", "key_spec_index": 0}
_RESTORE_ARGS = (
    _KEY_ARG,
    {"name": "ttl", "type": "integer"},
    {"name": "serialized-value", "type": "string"},
    {"name": "replace", "type": "pure-token", "token": "REPLACE",
     "since": "3.0.0", "optional": True},
    {"name": "absttl", "type": "pure-token", "token": "ABSTTL",
     "since": "5.0.0", "optional": True},
    {"name": "seconds", "type": "integer", "token": "IDLETIME",
     "since": "5.0.0", "optional": True},
    {"name": "frequency", "type": "integer", "token": "FREQ",
     "since": "5.0.0", "optional": True},
)
_RESTORE = dict(specs=[key_range(1, 1, 1, ("OW", "update"))],
                acl="keyspace dangerous", complexity=_RESTORE_COMPLEXITY,
                history=_RESTORE_HISTORY, arguments=_RESTORE_ARGS)


@command("dump", 2, "readonly", keys=(1, 1, 1, "RO access"),
         tips=("nondeterministic_output",), since="2.6.0",
         summary="Return a serialized version of the value stored at the "
         "specified key.",
         complexity="O(1) to access the key and additional O(N*M) to "
         "serialize it, where N is the number of Redis objects composing the "
         "value and M their average size. For small string values the time "
         "complexity is thus O(1)+O(1*M) where M is small, so simply O(1).",
         group="generic", arguments=(_KEY_ARG,))
def dump(c, argv):
    value = lookup_read(c, argv[1])
    if value is None:
        return None
    try:
        return dump_payload(value, c.server.settings)
    except RdbError as err:
        raise CommandError("ERR " + str(err))


def _options(argv):
    """(replace, absttl, idle, freq) from RESTORE's trailing options."""
    replace = absttl = False
    idle = freq = None
    j = 4
    argc = len(argv)
    while j < argc:
        option = argv[j].lower()
        more = argc - j - 1
        if option == b"replace":
            replace = True
        elif option == b"absttl":
            absttl = True
        elif option == b"idletime" and more >= 1 and freq is None:
            idle = parse_int(argv[j + 1])
            if idle < 0:
                raise CommandError(BAD_IDLETIME)
            j += 1
        elif option == b"freq" and more >= 1 and idle is None:
            freq = parse_int(argv[j + 1])
            if not 0 <= freq <= 255:
                raise CommandError(BAD_FREQ)
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    return replace, absttl, idle, freq


def restore(c, argv):
    replace, absttl, idle, freq = _options(argv)
    ks = c.server.keyspace
    key = argv[1]
    if not replace and ks.lookup(key) is not None:
        raise CommandError(BUSYKEY)
    ttl = parse_int(argv[2])
    if ttl < 0:
        raise CommandError(BAD_TTL)
    try:
        value = load_payload(argv[3], c.server.settings)
    except RdbError as err:
        raise CommandError("ERR " + str(err))
    deleted = replace and ks.delete(key)
    if ttl and not absttl:
        ttl += ks.now
    if ttl and ttl <= ks.now and not ks.replica_mode:
        # Already expired: the key is not created (a replaced one is gone).
        if deleted:
            propagate_as(c, [b"DEL", key])
            notify(c, GENERIC, b"del", key)
        return OK
    ks.set(key, value)
    if idle is not None or freq is not None:
        set_access(ks, key, idle, freq)
    if ttl:
        ks.set_expire(key, ttl)
        if not absttl:
            propagate_as(c, [argv[0], key, b"%d" % ttl, *argv[3:], b"ABSTTL"])
    notify(c, GENERIC, b"restore", key)
    return OK


command("restore", -4, "write denyoom", since="2.6.0",
        summary="Create a key using the provided serialized value, "
        "previously obtained using DUMP.", group="generic",
        **_RESTORE)(restore)
command("restore-asking", -4, "write denyoom asking", since="3.0.0",
        summary="An internal command for migrating keys in a cluster",
        group="server", doc_flags=("syscmd",), **_RESTORE)(restore)
