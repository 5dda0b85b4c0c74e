"""String commands.  Strings are stored as ``bytes``, or as a ``bytearray``
once edited in place (see common.py: is_string, as_bytes)."""
from __future__ import annotations

from rcluster.commands.common import (LLONG_MAX, LLONG_MIN, NOT_FLOAT,
                                      SYNTAX, WRONGTYPE, arity_error,
                                      as_bytes, increment, is_string,
                                      parse_int, propagate_as, read,
                                      unshare_string, write)
from rcluster.commands.longdouble import (increment_long_double,
                                          parse_long_double)
from rcluster.commands.table import CommandError, command, key_range
from rcluster.notify import GENERIC, KEY_MISS, STRING, notify
from rcluster.resp.codec import OK, Map

_G = dict(group="string")
EXPIRE_ERROR = "ERR invalid expire time in '%s' command"

# SET/GETEX option bits.
NX, XX, GET, KEEPTTL, EX, PX, EXAT, PXAT, PERSIST = (1 << i for i in range(9))
_EXPIRE_OPTS = {b"ex": EX, b"px": PX, b"exat": EXAT, b"pxat": PXAT}
_ANY_EXPIRE = EX | PX | EXAT | PXAT


def _check_size(c, size):
    if size > c.server.settings.proto_max_bulk_len:
        raise CommandError("ERR string exceeds maximum allowed size "
                           "(proto-max-bulk-len)")


def parse_string_options(argv, start, for_set, name):
    """SET/GETEX options -> (flags, deadline argument, unit flag)."""
    flags = 0
    expire = None
    j = start
    argc = len(argv)
    while j < argc:
        opt = argv[j].lower()
        has_next = j + 1 < argc
        if opt == b"nx" and for_set and not flags & XX:
            flags |= NX
        elif opt == b"xx" and for_set and not flags & NX:
            flags |= XX
        elif opt == b"get" and for_set:
            flags |= GET
        elif opt == b"keepttl" and for_set and not flags & (PERSIST | _ANY_EXPIRE):
            flags |= KEEPTTL
        elif opt == b"persist" and not for_set and not flags & (_ANY_EXPIRE | KEEPTTL):
            flags |= PERSIST
        elif opt in _EXPIRE_OPTS and has_next and \
                not flags & (KEEPTTL | PERSIST | (_ANY_EXPIRE & ~_EXPIRE_OPTS[opt])):
            flags |= _EXPIRE_OPTS[opt]
            expire = argv[j + 1]
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    return flags, expire


def deadline_ms(c, arg, flags, name):
    """An EX/PX/EXAT/PXAT argument as an absolute unix time in ms."""
    value = parse_int(arg)
    seconds = flags & (EX | EXAT)
    if value <= 0 or (seconds and value > LLONG_MAX // 1000):
        raise CommandError(EXPIRE_ERROR % name)
    if seconds:
        value *= 1000
    if flags & (EX | PX):
        value += c.server.keyspace.now
    if value <= 0 or value > LLONG_MAX:
        raise CommandError(EXPIRE_ERROR % name)
    return value


@command("set", -3, "write denyoom",
         specs=[key_range(1, 1, 1, ("RW", "access", "update", "variable_flags"),
                          "RW and ACCESS due to the optional `GET` argument")],
         summary="Set the string value of a key", **_G)
def set_(c, argv):
    ks = c.server.keyspace
    if len(argv) == 3:
        if ks.expires:
            # lookupKeyWrite: a key past its deadline expires first (its
            # DEL and "expired" event), then a new one is set.
            ks.lookup(argv[1])
        ks.set(argv[1], argv[2])
        if c.server.notify_flags:
            notify(c, STRING, b"set", argv[1])
        return OK
    flags, expire = parse_string_options(argv, 3, True, "set")
    key = argv[1]
    return _set_generic(c, key, argv[2], flags, expire, "set", OK, None, argv)


def _set_generic(c, key, value, flags, expire, name, ok_reply, abort_reply,
                 argv=None):
    ks = c.server.keyspace
    when = deadline_ms(c, expire, flags, name) if expire is not None else None
    old = ks.lookup(key)
    if flags & GET:
        if old is not None and not is_string(old):
            raise CommandError(WRONGTYPE)
        old = as_bytes(old)
    found = old is not None
    if (flags & NX and found) or (flags & XX and not found):
        return old if flags & GET else abort_reply
    ks.set(key, value, keepttl=bool(flags & KEEPTTL))
    notify(c, STRING, b"set", key)
    if when is not None:
        ks.set_expire(key, when)
        notify(c, GENERIC, b"expire", key)
        propagate_as(c, [b"SET", key, value, b"PXAT", b"%d" % when])
    elif flags & GET:
        propagate_as(c, argv[:3] + [a for a in argv[3:] if a.lower() != b"get"])
    return old if flags & GET else ok_reply


@command("setnx", 3, "write denyoom fast", keys=(1, 1, 1, "OW insert"),
         summary="Set the value of a key, only if the key does not exist", **_G)
def setnx(c, argv):
    return _set_generic(c, argv[1], argv[2], NX, None, "setnx", 1, 0)


@command("setex", 4, "write denyoom", keys=(1, 1, 1, "OW update"),
         summary="Set the value and expiration of a key", since="2.0.0", **_G)
def setex(c, argv):
    return _set_generic(c, argv[1], argv[3], EX, argv[2], "setex", OK, None)


@command("psetex", 4, "write denyoom", keys=(1, 1, 1, "OW update"),
         summary="Set the value and expiration in milliseconds of a key",
         since="2.6.0", **_G)
def psetex(c, argv):
    return _set_generic(c, argv[1], argv[3], PX, argv[2], "psetex", OK, None)


@command("get", 2, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Get the value of a key", **_G)
def get(c, argv):
    server = c.server
    value = server.keyspace.lookup(argv[1])
    if value is None:
        server.stats.keyspace_misses += 1
        if server.notify_flags & KEY_MISS:
            notify(c, KEY_MISS, b"keymiss", argv[1])
        return None
    server.stats.keyspace_hits += 1
    if value.__class__ is not bytes:
        if value.__class__ is bytearray:
            return bytes(value)
        raise CommandError(WRONGTYPE)
    return value


@command("getex", -2, "write fast",
         specs=[key_range(1, 1, 1, ("RW", "access", "update"),
                          "RW and UPDATE because it changes the TTL")],
         summary="Get the value of a key and optionally set its expiration",
         since="6.2.0", **_G)
def getex(c, argv):
    flags, expire = parse_string_options(argv, 2, False, "getex")
    key = argv[1]
    value = read(c, key, bytes)
    if value is None:
        return None
    ks = c.server.keyspace
    if expire is not None:
        when = deadline_ms(c, expire, flags, "getex")
        if flags & (EXAT | PXAT) and when <= ks.now:
            ks.delete(key)
            lazy = c.server.settings.lazyfree_lazy_expire
            propagate_as(c, [b"UNLINK" if lazy else b"DEL", key])
            notify(c, GENERIC, b"del", key)
        else:
            ks.set_expire(key, when)
            propagate_as(c, [b"PEXPIREAT", key, b"%d" % when])
            notify(c, GENERIC, b"expire", key)
    elif flags & PERSIST and ks.persist(key):
        propagate_as(c, [b"PERSIST", key])
        notify(c, GENERIC, b"persist", key)
    return as_bytes(value)


@command("getdel", 2, "write fast", keys=(1, 1, 1, "RW access delete"),
         summary="Get the value of a key and delete the key", since="6.2.0", **_G)
def getdel(c, argv):
    value = read(c, argv[1], bytes)
    if value is not None:
        c.server.keyspace.delete(argv[1])
        lazy = c.server.settings.lazyfree_lazy_user_del
        propagate_as(c, [b"UNLINK" if lazy else b"DEL", argv[1]])
        notify(c, GENERIC, b"del", argv[1])
    return as_bytes(value)


@command("getset", 3, "write denyoom fast", keys=(1, 1, 1, "RW access update"),
         summary="Set the string value of a key and return its old value", **_G)
def getset(c, argv):
    old = read(c, argv[1], bytes)
    c.server.keyspace.set(argv[1], argv[2])
    notify(c, STRING, b"set", argv[1])
    propagate_as(c, [b"SET", argv[1], argv[2]])
    return as_bytes(old)


@command("mget", -2, "readonly fast", keys=(1, -1, 1, "RO access"),
         tips=("request_policy:multi_shard",),
         summary="Get the values of all the given keys", **_G)
def mget(c, argv):
    lookup = c.server.keyspace.lookup
    out = []
    for key in argv[1:]:
        value = lookup(key)
        out.append(value if value.__class__ is bytes else bytes(value)
                   if value.__class__ is bytearray else None)
    if c.server.notify_flags & KEY_MISS:
        for key, value in zip(argv[1:], out):
            if value is None and lookup(key) is None:   # not a WRONGTYPE
                notify(c, KEY_MISS, b"keymiss", key)
    return out


def _mset(c, argv, nx):
    if len(argv) % 2 == 0:
        raise arity_error(argv)
    ks = c.server.keyspace
    if nx:
        for j in range(1, len(argv), 2):
            if ks.lookup(argv[j]) is not None:
                return 0
    for j in range(1, len(argv), 2):
        if ks.expires:
            ks.lookup(argv[j])      # lookupKeyWrite: expire a due key first
        ks.set(argv[j], argv[j + 1])
        notify(c, STRING, b"set", argv[j])
    return 1 if nx else OK


@command("mset", -3, "write denyoom", keys=(1, -1, 2, "OW update"),
         tips=("request_policy:multi_shard", "response_policy:all_succeeded"),
         summary="Set multiple keys to multiple values", since="1.0.1", **_G)
def mset(c, argv):
    return _mset(c, argv, False)


@command("msetnx", -3, "write denyoom", keys=(1, -1, 2, "OW insert"),
         tips=("request_policy:multi_shard", "response_policy:agg_min"),
         summary="Set multiple keys to multiple values, only if none of the keys exist",
         since="1.0.1", **_G)
def msetnx(c, argv):
    return _mset(c, argv, True)


def _incr(c, key, delta):
    ks = c.server.keyspace
    old = write(c, key, bytes)
    value = 0 if old is None else parse_int(old)
    value = increment(value, delta)
    ks.set(key, b"%d" % value, keepttl=True)
    notify(c, STRING, b"incrby", key)
    return value


@command("incr", 2, "write denyoom fast", keys=(1, 1, 1, "RW access update"),
         summary="Increment the integer value of a key by one", **_G)
def incr(c, argv):
    return _incr(c, argv[1], 1)


@command("decr", 2, "write denyoom fast", keys=(1, 1, 1, "RW access update"),
         summary="Decrement the integer value of a key by one", **_G)
def decr(c, argv):
    return _incr(c, argv[1], -1)


@command("incrby", 3, "write denyoom fast", keys=(1, 1, 1, "RW access update"),
         summary="Increment the integer value of a key by the given amount", **_G)
def incrby(c, argv):
    return _incr(c, argv[1], parse_int(argv[2]))


@command("decrby", 3, "write denyoom fast", keys=(1, 1, 1, "RW access update"),
         summary="Decrement the integer value of a key by the given number", **_G)
def decrby(c, argv):
    delta = parse_int(argv[2])
    if delta == LLONG_MIN:
        raise CommandError("ERR decrement would overflow")
    return _incr(c, argv[1], -delta)


@command("incrbyfloat", 3, "write denyoom fast", keys=(1, 1, 1, "RW access update"),
         summary="Increment the float value of a key by the given amount",
         since="2.6.0", **_G)
def incrbyfloat(c, argv):
    key = argv[1]
    old = write(c, key, bytes)
    value = 0 if old is None else parse_long_double(old, NOT_FLOAT)
    text = increment_long_double(value, parse_long_double(argv[2], NOT_FLOAT))
    c.server.keyspace.set(key, text, keepttl=True)
    notify(c, STRING, b"incrbyfloat", key)
    # Replicas get the result, not a float computation to redo.
    propagate_as(c, [b"SET", key, text, b"KEEPTTL"])
    return text


@command("append", 3, "write denyoom fast", keys=(1, 1, 1, "RW insert"),
         summary="Append a value to a key", since="2.0.0", **_G)
def append(c, argv):
    key, extra = argv[1], argv[2]
    ks = c.server.keyspace
    old = write(c, key, bytes)
    if old is None:
        ks.set(key, extra)
        notify(c, STRING, b"append", key)
        return len(extra)
    _check_size(c, len(old) + len(extra))
    buf = unshare_string(c, key, old)
    buf += extra
    ks.touch(key)
    notify(c, STRING, b"append", key)
    return len(buf)


@command("strlen", 2, "readonly fast", keys=(1, 1, 1, "RO"),
         summary="Get the length of the value stored in a key", since="2.2.0", **_G)
def strlen(c, argv):
    value = read(c, argv[1], bytes)
    return 0 if value is None else len(value)


@command("setrange", 4, "write denyoom", keys=(1, 1, 1, "RW update"),
         summary="Overwrite part of a string at key starting at the specified offset",
         since="2.2.0", **_G)
def setrange(c, argv):
    key, chunk = argv[1], argv[3]
    offset = parse_int(argv[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    old = write(c, key, bytes)
    if old is None:
        if not chunk:
            return 0
    elif not chunk:
        return len(old)
    _check_size(c, offset + len(chunk))
    if old is None:
        buf = bytearray(offset)
        buf += chunk
        c.server.keyspace.add(key, buf)
        notify(c, STRING, b"setrange", key)
        return len(buf)
    buf = unshare_string(c, key, old)
    if len(buf) < offset:
        buf += bytes(offset - len(buf))
    buf[offset:offset + len(chunk)] = chunk
    c.server.keyspace.touch(key)
    notify(c, STRING, b"setrange", key)
    return len(buf)


@command("getrange", 4, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get a substring of the string stored at a key", since="2.4.0", **_G)
def getrange(c, argv):
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    value = read(c, argv[1], bytes)
    if value is None:
        return b""
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(size + start, 0)
    if end < 0:
        end = max(size + end, 0)
    end = min(end, size - 1)
    if start > end or size == 0:
        return b""
    return as_bytes(value[start:end + 1])


@command("substr", 4, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get a substring of the string stored at a key", **_G)
def substr(c, argv):
    return getrange(c, argv)


@command("lcs", -3, "readonly", keys=(1, 2, 1, "RO access"),
         summary="Find longest common substring", since="7.0.0", **_G)
def lcs(c, argv):
    a = read(c, argv[1], bytes) or b""
    b = read(c, argv[2], bytes) or b""
    want_len = want_idx = with_len = False
    min_len = 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        if opt == b"idx":
            want_idx = True
        elif opt == b"len":
            want_len = True
        elif opt == b"withmatchlen":
            with_len = True
        elif opt == b"minmatchlen" and j + 1 < len(argv):
            min_len = max(parse_int(argv[j + 1]), 0)
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    if want_len and want_idx:
        raise CommandError("ERR If you want both the length and indexes, "
                           "please just use IDX.")
    # Dynamic programming table, as Redis does (O(len(a) * len(b))).
    rows, cols = len(a) + 1, len(b) + 1
    table = [[0] * cols for _ in range(rows)]
    for i in range(1, rows):
        ai = a[i - 1]
        row, prev = table[i], table[i - 1]
        for k in range(1, cols):
            row[k] = prev[k - 1] + 1 if ai == b[k - 1] else \
                max(prev[k], row[k - 1])
    length = table[-1][-1]
    if want_len:
        return length
    out = bytearray(length)
    matches = []
    i, k = len(a), len(b)
    idx = length
    current = None
    while i > 0 and k > 0:
        if a[i - 1] == b[k - 1]:
            out[idx - 1] = a[i - 1]
            idx -= 1
            if current is None:
                current = [i - 1, i - 1, k - 1, k - 1]
            elif current[0] == i and current[2] == k:
                current[0] -= 1
                current[2] -= 1
            else:
                _lcs_emit(matches, current, min_len)
                current = [i - 1, i - 1, k - 1, k - 1]
            i -= 1
            k -= 1
        elif table[i - 1][k] > table[i][k - 1]:
            i -= 1
        else:
            k -= 1
    if current is not None:
        _lcs_emit(matches, current, min_len)
    if not want_idx:
        return bytes(out)
    rendered = []
    for a0, a1, b0, b1 in matches:
        item = [[a0, a1], [b0, b1]]
        if with_len:
            item.append(a1 - a0 + 1)
        rendered.append(item)
    return Map([(b"matches", rendered), (b"len", length)])


def _lcs_emit(matches, current, min_len):
    if current[1] - current[0] + 1 >= min_len:
        matches.append(tuple(current))

