"""Generic keyspace commands: DEL, EXISTS, TYPE, the EXPIRE family and the
TTL readers, RENAME, COPY, MOVE, KEYS, SCAN, RANDOMKEY, DBSIZE,
FLUSHALL/FLUSHDB, TOUCH and OBJECT.

Every path reads keys through ``Keyspace.lookup``, so a key past its
deadline is missing to all of them (and removed on the way), as Redis's
lookupKey does.  Only one database (0) exists: the DB arguments of COPY
and MOVE answer as a redis-server with ``databases 1`` would.
"""
from __future__ import annotations

from rcluster.commands.common import (LLONG_MAX, NO_KEY, SYNTAX,
                                      help_subcommand, parse_int,
                                      propagate_as, type_name)
from rcluster.commands.scanning import parse_cursor, parse_scan_options
from rcluster.commands.strings import EXPIRE_ERROR
from rcluster.commands.table import (CommandError, command, container,
                                     key_range)
from rcluster import eviction
from rcluster.commands import dbs
from rcluster.glob import compile_glob
from rcluster.notify import GENERIC, KEY_MISS, notify
from rcluster.persistence.rdb import hash_encoding, set_encoding
from rcluster.resp.codec import OK, Status
from rcluster.zset import ZSet

_G = dict(group="generic")
SAME_OBJECT = "ERR source and destination objects are the same"
MULTI_SHARD_SUM = ("request_policy:multi_shard", "response_policy:agg_sum")
ALL_SHARDS = "request_policy:all_shards"
NONDETERMINISTIC = "nondeterministic_output"
O1 = "O(1)"


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "replace")


def lookup_read(c, key: bytes):
    """The live value at key for a read of any type, counting keyspace
    hits and misses (Redis's lookupKeyRead), or None."""
    server = c.server
    value = server.keyspace.lookup(key)
    if value is None:
        server.stats.keyspace_misses += 1
        if server.notify_flags & KEY_MISS:
            notify(c, KEY_MISS, b"keymiss", key)
    else:
        server.stats.keyspace_hits += 1
    return value


# -- DEL, EXISTS, TYPE, TOUCH -----------------------------------------------

def _delete_keys(c, keys) -> int:
    ks = c.server.keyspace
    deleted = 0
    for key in keys:
        # lookup first: a key past its deadline expires, it is not deleted.
        if ks.lookup(key) is not None and ks.delete(key):
            deleted += 1
            notify(c, GENERIC, b"del", key)
    return deleted


@command("del", -2, "write",
         keys=(1, -1, 1, "RM delete"), tips=MULTI_SHARD_SUM,
         summary="Delete a key",
         complexity="O(N) where N is the number of keys that will be removed. "
         "When a key to remove holds a value other than a string, the "
         "individual complexity for this key is O(M) where M is the number "
         "of elements in the list, set, sorted set or hash. Removing a single "
         "key that holds a string value is O(1).", **_G)
def del_(c, argv):
    return _delete_keys(c, argv[1:])


@command("unlink", -2, "write fast",
         keys=(1, -1, 1, "RM delete"), tips=MULTI_SHARD_SUM,
         summary="Delete a key asynchronously in another thread. Otherwise "
                 "it is just as DEL, but non blocking.",
         complexity="O(1) for each key removed regardless of its size. Then "
         "the command does O(N) work in a different thread in order to "
         "reclaim memory, where N is the number of allocations the deleted "
         "objects where composed of.", since="4.0.0", **_G)
def unlink(c, argv):
    return _delete_keys(c, argv[1:])


@command("exists", -2, "readonly fast", keys=(1, -1, 1, "RO"),
         tips=MULTI_SHARD_SUM, summary="Determine if a key exists",
         complexity="O(N) where N is the number of keys to check.",
         history=(("3.0.3", "Accepts multiple `key` arguments."),), **_G)
def exists(c, argv):
    return sum(1 for key in argv[1:] if lookup_read(c, key) is not None)


@command("touch", -2, "readonly fast", keys=(1, -1, 1, "RO"),
         tips=MULTI_SHARD_SUM, since="3.2.1",
         summary="Alters the last access time of a key(s). Returns the "
                 "number of existing keys specified.",
         complexity="O(N) where N is the number of keys that will be "
         "touched.", **_G)
def touch(c, argv):
    return exists(c, argv)


@command("type", 2, "readonly fast", keys=(1, 1, 1, "RO"),
         summary="Determine the type stored at key", complexity=O1, **_G)
def type_(c, argv):
    return Status(type_name(lookup_read(c, argv[1])))


# -- EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT -----------------------------------

# Bounds of a deadline in seconds that still fits in ms (C's LLONG_MAX/1000
# and LLONG_MIN/1000, which truncate towards zero).
_MAX_SECONDS = LLONG_MAX // 1000
_EXPIRE_OPTIONS = (b"nx", b"xx", b"gt", b"lt")


def _expire_options(argv) -> set:
    options = set()
    for arg in argv[3:]:
        option = arg.lower()
        if option not in _EXPIRE_OPTIONS:
            raise CommandError("ERR Unsupported option %s" % _text(arg))
        options.add(option)
    if b"nx" in options and len(options) > 1:
        raise CommandError("ERR NX and XX, GT or LT options at the same "
                           "time are not compatible")
    if b"gt" in options and b"lt" in options:
        raise CommandError("ERR GT and LT options at the same time are not "
                           "compatible")
    return options


def _expire_allowed(options, current, when) -> bool:
    """NX/XX/GT/LT against the current deadline (None = no TTL, which GT
    treats as infinite)."""
    if b"nx" in options and current is not None:
        return False
    if b"xx" in options and current is None:
        return False
    if b"gt" in options and (current is None or when <= current):
        return False
    if b"lt" in options and current is not None and when >= current:
        return False
    return True


def _expire(c, argv, name, relative, seconds):
    options = _expire_options(argv)
    ks = c.server.keyspace
    when = parse_int(argv[2])
    if seconds:
        if not -_MAX_SECONDS <= when <= _MAX_SECONDS:
            raise CommandError(EXPIRE_ERROR % name)
        when *= 1000
    base = ks.now if relative else 0
    if when > LLONG_MAX - base:
        raise CommandError(EXPIRE_ERROR % name)
    when += base
    key = argv[1]
    if ks.lookup(key) is None:
        return 0
    if not _expire_allowed(options, ks.expire_time(key), when):
        return 0
    # Replicas get an absolute deadline, or the deletion that was done.
    if when <= ks.now and not ks.replica_mode:
        ks.delete(key)
        lazy = c.server.settings.lazyfree_lazy_expire
        propagate_as(c, [b"UNLINK" if lazy else b"DEL", key])
        notify(c, GENERIC, b"del", key)
    else:
        ks.set_expire(key, when)
        propagate_as(c, [b"PEXPIREAT", key, b"%d" % when, *argv[3:]])
        notify(c, GENERIC, b"expire", key)
    return 1


_EXPIRE = dict(keys=(1, 1, 1, "RW update"), complexity=O1, history=(
    ("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."),), **_G)


@command("expire", -3, "write fast",
         summary="Set a key's time to live in seconds", **_EXPIRE)
def expire(c, argv):
    return _expire(c, argv, "expire", relative=True, seconds=True)


@command("pexpire", -3, "write fast", since="2.6.0",
         summary="Set a key's time to live in milliseconds", **_EXPIRE)
def pexpire(c, argv):
    return _expire(c, argv, "pexpire", relative=True, seconds=False)


@command("expireat", -3, "write fast", since="1.2.0",
         summary="Set the expiration for a key as a UNIX timestamp", **_EXPIRE)
def expireat(c, argv):
    return _expire(c, argv, "expireat", relative=False, seconds=True)


@command("pexpireat", -3, "write fast", since="2.6.0",
         summary="Set the expiration for a key as a UNIX timestamp "
                 "specified in milliseconds", **_EXPIRE)
def pexpireat(c, argv):
    return _expire(c, argv, "pexpireat", relative=False, seconds=False)


# -- TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST -----------------------------

def _ttl(c, key, ms, absolute) -> int:
    """-2 for a missing key, -1 without a deadline, else the remaining
    time (or the deadline) in the unit asked for, rounded."""
    if lookup_read(c, key) is None:
        return -2
    ks = c.server.keyspace
    when = ks.expire_time(key)
    if when is None:
        return -1
    value = max(when if absolute else when - ks.now, 0)
    return value if ms else (value + 500) // 1000


_TTL = dict(keys=(1, 1, 1, "RO access"), complexity=O1, **_G)
_MINUS_TWO = (("2.8.0", "Added the -2 reply."),)


@command("ttl", 2, "readonly fast", tips=(NONDETERMINISTIC,),
         history=_MINUS_TWO,
         summary="Get the time to live for a key in seconds", **_TTL)
def ttl(c, argv):
    return _ttl(c, argv[1], ms=False, absolute=False)


@command("pttl", 2, "readonly fast", tips=(NONDETERMINISTIC,), since="2.6.0",
         history=_MINUS_TWO,
         summary="Get the time to live for a key in milliseconds", **_TTL)
def pttl(c, argv):
    return _ttl(c, argv[1], ms=True, absolute=False)


@command("expiretime", 2, "readonly fast", since="7.0.0",
         summary="Get the expiration Unix timestamp for a key", **_TTL)
def expiretime(c, argv):
    return _ttl(c, argv[1], ms=False, absolute=True)


@command("pexpiretime", 2, "readonly fast", since="7.0.0",
         summary="Get the expiration Unix timestamp for a key in "
                 "milliseconds", **_TTL)
def pexpiretime(c, argv):
    return _ttl(c, argv[1], ms=True, absolute=True)


@command("persist", 2, "write fast", keys=(1, 1, 1, "RW update"),
         since="2.2.0", summary="Remove the expiration from a key",
         complexity=O1, **_G)
def persist(c, argv):
    ks = c.server.keyspace
    if ks.lookup(argv[1]) is not None and ks.persist(argv[1]):
        notify(c, GENERIC, b"persist", argv[1])
        return 1
    return 0


# -- RENAME, RENAMENX, COPY, MOVE ---------------------------------------------

def _rename(c, argv, nx):
    src, dst = argv[1], argv[2]
    ks = c.server.keyspace
    value = ks.lookup(src)
    if value is None:
        raise CommandError(NO_KEY)
    if src == dst:
        return 0 if nx else OK
    if ks.lookup(dst) is not None and nx:
        return 0
    when = ks.expire_time(src)
    ks.delete(src)
    ks.set(dst, value)
    if when is not None:
        ks.set_expire(dst, when)
    notify(c, GENERIC, b"rename_from", src)
    notify(c, GENERIC, b"rename_to", dst)
    return 1 if nx else OK


def _rename_specs(dst_flags):
    return [key_range(1, 1, 1, ("RW", "access", "delete")),
            key_range(2, 2, 1, dst_flags)]


@command("rename", 3, "write", specs=_rename_specs(("OW", "update")),
         summary="Rename a key", complexity=O1, **_G)
def rename(c, argv):
    return _rename(c, argv, nx=False)


@command("renamenx", 3, "write fast", specs=_rename_specs(("OW", "insert")),
         summary="Rename a key, only if the new key does not exist",
         complexity=O1, history=(("3.2.0", "The command no longer returns an "
                                  "error when source and destination names "
                                  "are the same."),), **_G)
def renamenx(c, argv):
    return _rename(c, argv, nx=True)


def duplicate(value):
    """An independent copy of a value (bytes strings are immutable; a
    bytearray string is copied by .copy() like the containers)."""
    if value.__class__ is bytes:
        return value
    if value.__class__ is ZSet:
        return ZSet(value.scores, value.compact)
    return value.copy()


@command("copy", -3, "write denyoom", since="6.2.0", summary="Copy a key",
         specs=[key_range(1, 1, 1, ("RO", "access")),
                key_range(2, 2, 1, ("OW", "update"))],
         complexity="O(N) worst case for collections, where N is the number "
         "of nested items. O(1) for string values.", **_G)
def copy(c, argv):
    replace = False
    db = c.server.cur_db
    j = 3
    while j < len(argv):
        option = argv[j].lower()
        if option == b"replace":
            replace = True
        elif option == b"db" and j + 1 < len(argv):
            db = dbs.parse_db(c, argv[j + 1])
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    src, dst = argv[1], argv[2]
    if db != c.server.cur_db:
        return dbs.copy_to_db(c, src, dst, db, replace, duplicate)
    if src == dst:
        raise CommandError(SAME_OBJECT)
    value = lookup_read(c, src)
    if value is None:
        return 0
    ks = c.server.keyspace
    if ks.lookup(dst) is not None and not replace:
        return 0
    ks.set(dst, duplicate(value))
    when = ks.expire_time(src)
    if when is not None:
        ks.set_expire(dst, when)
    notify(c, GENERIC, b"copy_to", dst)
    return 1


@command("move", 3, "write fast", keys=(1, 1, 1, "RW access update"),
         summary="Move a key to another database", complexity=O1, **_G)
def move(c, argv):
    return dbs.move(c, argv)


# -- KEYS, SCAN, RANDOMKEY, DBSIZE --------------------------------------------

@command("keys", 2, "readonly", tips=(ALL_SHARDS,
                                      "nondeterministic_output_order"),
         summary="Find all keys matching the given pattern",
         acl="keyspace dangerous",
         complexity="O(N) with N being the number of keys in the database, "
         "under the assumption that the key names in the database and the "
         "given pattern have limited length.", **_G)
def keys(c, argv):
    ks = c.server.keyspace
    match = compile_glob(argv[1])
    # Keys past their deadline are skipped, not removed (as Redis's KEYS).
    return [key for key in ks.iter_keys()
            if match(key) and not ks.is_expired(key)]


@command("scan", -2, "readonly touches_arbitrary_keys", since="2.8.0",
         tips=(NONDETERMINISTIC, "request_policy:special"),
         summary="Incrementally iterate the keys space",
         complexity="O(1) for every call. O(N) for a complete iteration, "
         "including enough command calls for the cursor to return back to 0. "
         "N is the number of elements inside the collection.",
         history=(("6.0.0", "Added the `TYPE` subcommand."),), **_G)
def scan(c, argv):
    cursor = parse_cursor(argv[1])
    count, match, type_filter = parse_scan_options(argv, 2,
                                                   with_type=True)
    ks = c.server.keyspace
    cursor, found = ks.scan(cursor, count)
    keys = []
    for key in found:
        if match is not None and not match(key):
            continue
        if type_filter is not None and \
                type_name(lookup_read(c, key)).encode() != type_filter:
            continue
        if ks.lookup(key) is None:   # expired: removed and left out
            continue
        keys.append(key)
    return [b"%d" % cursor, keys]


@command("randomkey", 1, "readonly touches_arbitrary_keys",
         tips=(ALL_SHARDS, NONDETERMINISTIC),
         summary="Return a random key from the keyspace", complexity=O1,
         **_G)
def randomkey(c, argv):
    return c.server.keyspace.random_key()


@command("dbsize", 1, "readonly fast", group="server",
         tips=(ALL_SHARDS, "response_policy:agg_sum"),
         summary="Return the number of keys in the selected database",
         acl="keyspace", complexity=O1)
def dbsize(c, argv):
    return len(c.server.keyspace)


# -- FLUSHALL, FLUSHDB --------------------------------------------------------

def _flush(c, argv, everything=False):
    if len(argv) > 2 or (len(argv) == 2 and
                         argv[1].lower() not in (b"sync", b"async")):
        raise CommandError(SYNTAX)
    # FLUSHDB the db in use, FLUSHALL every db (commands/dbs.py).
    return dbs.flush(c, everything)


_FLUSH = dict(group="server", acl="keyspace dangerous",
              tips=(ALL_SHARDS, "response_policy:all_succeeded"),
              history=(("4.0.0", "Added the `ASYNC` flushing mode modifier."),
                       ("6.2.0", "Added the `SYNC` flushing mode modifier.")))


@command("flushall", -1, "write",
         summary="Remove all keys from all databases",
         complexity="O(N) where N is the total number of keys in all "
         "databases", **_FLUSH)
def flushall(c, argv):
    return _flush(c, argv, True)


@command("flushdb", -1, "write",
         summary="Remove all keys from the current database",
         complexity="O(N) where N is the number of keys in the selected "
         "database", **_FLUSH)
def flushdb(c, argv):
    return _flush(c, argv)


# -- OBJECT -------------------------------------------------------------------

# Redis 7.0's encoding thresholds that don't come from the settings.
EMBSTR_SIZE_LIMIT = 44
SHARED_INTEGERS = 10000
SHARED_REFCOUNT = 2**31 - 1
LFU_INIT_VAL = 5


def _is_long(value: bytes) -> bool:
    try:
        parse_int(value)
    except CommandError:
        return False
    return True


def encoding(value, settings) -> bytes:
    """The encoding Redis 7.0 reports for a value: strings and hashes by
    their content and the settings' thresholds (as a hash built by adding
    fields converts, one way), sets by the SMEMBERS-order rule of sets.py."""
    kind = type_name(value)
    if kind == "string":
        if value.__class__ is bytearray:
            return b"raw"     # edited in place: Redis unshared it as raw
        if len(value) <= 20 and _is_long(value):
            return b"int"
        return b"embstr" if len(value) <= EMBSTR_SIZE_LIMIT else b"raw"
    if kind == "list":
        return b"quicklist"   # 7.0 reports quicklist for every list
    # Containers: the encoding the RDB codec writes (same thresholds).
    if kind == "hash":
        return hash_encoding(value, settings).encode()
    if kind == "set":
        return set_encoding(value, settings).encode()
    # A type that tracks its encoding itself (ZSet) says it.
    return getattr(value, "encoding", "unknown").encode()


def _uses_lfu(settings) -> bool:
    return settings.maxmemory_policy.endswith("-lfu")


def _refcount(value, settings) -> int:
    """Small integers are shared objects in Redis, unless maxmemory with an
    LRU/LFU policy needs a private access clock per value."""
    policy = settings.maxmemory_policy
    shared_ok = not settings.maxmemory or not policy.endswith(("-lru", "-lfu"))
    if value.__class__ is bytes and shared_ok and len(value) <= 20 and \
            _is_long(value) and 0 <= int(value) < SHARED_INTEGERS:
        return SHARED_REFCOUNT
    return 1


container("object", summary="A container for object introspection commands",
          since="2.2.3", **_G)

_OBJECT = dict(parent="object", keys=(2, 2, 1, "RO"),
               tips=(NONDETERMINISTIC,), complexity=O1, **_G)


@command("encoding", 3, "readonly", since="2.2.3",
         summary="Inspect the internal encoding of a Redis object", **_OBJECT)
def object_encoding(c, argv):
    value = lookup_read(c, argv[2])
    return None if value is None else encoding(value, c.server.settings)


@command("refcount", 3, "readonly", since="2.2.3",
         summary="Get the number of references to the value of the key",
         **_OBJECT)
def object_refcount(c, argv):
    value = lookup_read(c, argv[2])
    return None if value is None else _refcount(value, c.server.settings)


@command("idletime", 3, "readonly", since="2.2.3",
         summary="Get the time since a Redis object was last accessed",
         **_OBJECT)
def object_idletime(c, argv):
    ks = c.server.keyspace
    ks.track = True     # reads are recorded from now on (eviction.py)
    if ks.peek(argv[2]) is None:    # LOOKUP_NOTOUCH: no access recorded
        return None
    if _uses_lfu(c.server.settings):
        raise CommandError(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. "
            "Please note that when switching between policies at runtime LRU "
            "and LFU data will take some time to adjust.")
    return eviction.idle_ms(ks, argv[2]) // 1000


@command("freq", 3, "readonly", since="4.0.0",
         summary="Get the logarithmic access frequency counter of a Redis "
                 "object", **_OBJECT)
def object_freq(c, argv):
    ks = c.server.keyspace
    if ks.peek(argv[2]) is None:    # LOOKUP_NOTOUCH: no access recorded
        return None
    if not _uses_lfu(c.server.settings):
        raise CommandError(
            "ERR An LFU maxmemory policy is not selected, access frequency "
            "not tracked. Please note that when switching between policies "
            "at runtime LRU and LFU data will take some time to adjust.")
    return eviction.frequency(ks, argv[2])


_OBJECT_HELP = (
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store "
    "the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer "
    "is",
    "    proportional to the logarithm of the recent access frequency of the "
    "key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number "
    "of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the "
    "specified",
    "    <key>.",
)


object_help = help_subcommand(_OBJECT_HELP, parent="object", since="6.2.0",
                              **_G)
