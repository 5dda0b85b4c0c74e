"""Hash commands.  Hashes are stored as ``dict`` (field bytes -> value bytes).

Python dicts keep insertion order, which is the order Redis lists a small
hash in (a listpack); a big Redis hash (a hash table) lists in no useful
order, so insertion order is as good as any.

HSCAN: a hash Redis would keep as a listpack (at most
hash-max-listpack-entries fields, none of them nor their values longer than
hash-max-listpack-value) is returned whole with cursor 0, whatever the
cursor and COUNT, as Redis does.  A bigger hash is walked by hash windows
(sets.hash_window, shared with SSCAN and ZSCAN): the cursor is a position in
the 64-bit space of the fields' hashes, and each step returns the fields
whose hash falls in the next window.  Windows tile that space, so a field
present for the whole iteration is returned exactly once, whatever is added
or removed meanwhile; MATCH filters a window after it is taken, so a step
may return nothing while the cursor is not yet 0 (as in Redis).
"""
from __future__ import annotations

import random

from rcluster.commands.common import (LLONG_MAX, LLONG_MIN, NOT_FLOAT,
                                      ORDER_TIP, RANDOM_TIP, SYNTAX,
                                      arity_error, increment, parse_int,
                                      propagate_as, read, record_removal,
                                      write, write_or_create)
from rcluster.commands.longdouble import (increment_long_double, is_inf,
                                          parse_long_double)
from rcluster.commands.scanning import (SCAN_COMPLEXITY, hash_window,
                                        parse_cursor, parse_scan_options)
from rcluster.commands.table import CommandError, command
from rcluster.notify import HASH, notify
from rcluster.resp.codec import OK, Map

_G = dict(group="hash")
NOT_INT_FIELD = "ERR hash value is not an integer"
NOT_FLOAT_FIELD = "ERR hash value is not a float"
COUNT_RANGE = ("ERR value is out of range, value must between %d and %d"
               % (-LLONG_MAX, LLONG_MAX))


def _store(c, key: bytes, h, field: bytes, value: bytes):
    """Set one field, creating the hash if it is missing (h is None)."""
    if h is None:
        h = write_or_create(c, key, dict)
    h[field] = value
    c.server.keyspace.touch(key)


def _is_listpack(c, h) -> bool:
    """Would Redis keep this hash as a listpack (a small, ordered hash)?"""
    settings = c.server.settings
    if len(h) > settings.hash_max_listpack_entries:
        return False
    limit = settings.hash_max_listpack_value
    return all(len(f) <= limit and len(v) <= limit for f, v in h.items())


# -- writes ------------------------------------------------------------------

def _set_fields(c, argv) -> int:
    """HSET/HMSET: store the field/value pairs; the count of new fields."""
    if len(argv) % 2:
        raise arity_error(argv)
    key = argv[1]
    h = write_or_create(c, key, dict)
    before = len(h)
    pairs = iter(argv[2:])
    h.update(zip(pairs, pairs))
    c.server.keyspace.touch(key, (len(argv) - 2) // 2)
    notify(c, HASH, b"hset", key)
    return len(h) - before


@command("hset", -4, "write denyoom fast", keys=(1, 1, 1, "RW update"),
         summary="Set the string value of a hash field", since="2.0.0",
         complexity="O(1) for each field/value pair added, so O(N) to add N "
                    "field/value pairs when the command is called with "
                    "multiple field/value pairs.",
         history=(("4.0.0", "Accepts multiple `field` and `value` "
                            "arguments."),), **_G)
def hset(c, argv):
    return _set_fields(c, argv)


@command("hmset", -4, "write denyoom fast", keys=(1, 1, 1, "RW update"),
         summary="Set multiple hash fields to multiple values", since="2.0.0",
         complexity="O(N) where N is the number of fields being set.",
         doc_flags=("deprecated",), deprecated_since="4.0.0",
         replaced_by="`HSET` with multiple field-value pairs", **_G)
def hmset(c, argv):
    _set_fields(c, argv)
    return OK


@command("hsetnx", 4, "write denyoom fast", keys=(1, 1, 1, "RW insert"),
         summary="Set the value of a hash field, only if the field does not "
                 "exist", since="2.0.0", complexity="O(1)", **_G)
def hsetnx(c, argv):
    key, field = argv[1], argv[2]
    h = write(c, key, dict)
    if h is not None and field in h:
        return 0
    _store(c, key, h, field, argv[3])
    notify(c, HASH, b"hset", key)
    return 1


@command("hdel", -3, "write fast", keys=(1, 1, 1, "RW delete"),
         summary="Delete one or more hash fields", since="2.0.0",
         complexity="O(N) where N is the number of fields to be removed.",
         history=(("2.4.0", "Accepts multiple `field` arguments."),),
         **_G)
def hdel(c, argv):
    key = argv[1]
    h = write(c, key, dict)
    if h is None:
        return 0
    deleted = 0
    for field in argv[2:]:
        if h.pop(field, None) is not None:
            deleted += 1
    record_removal(c, key, h, deleted, HASH, b"hdel")
    return deleted


@command("hincrby", 4, "write denyoom fast",
         keys=(1, 1, 1, "RW access update"),
         summary="Increment the integer value of a hash field by the given "
                 "number", since="2.0.0", complexity="O(1)", **_G)
def hincrby(c, argv):
    key, field = argv[1], argv[2]
    delta = parse_int(argv[3])
    h = write(c, key, dict)
    old = None if h is None else h.get(field)
    value = 0 if old is None else parse_int(old, NOT_INT_FIELD)
    value = increment(value, delta)
    _store(c, key, h, field, b"%d" % value)
    notify(c, HASH, b"hincrby", key)
    return value


@command("hincrbyfloat", 4, "write denyoom fast",
         keys=(1, 1, 1, "RW access update"),
         summary="Increment the float value of a hash field by the given "
                 "amount", since="2.6.0", complexity="O(1)", **_G)
def hincrbyfloat(c, argv):
    key, field = argv[1], argv[2]
    delta = parse_long_double(argv[3], NOT_FLOAT)
    if is_inf(delta):
        raise CommandError("ERR value is NaN or Infinity")
    h = write(c, key, dict)
    old = None if h is None else h.get(field)
    value = 0 if old is None else parse_long_double(old, NOT_FLOAT_FIELD)
    text = increment_long_double(value, delta)
    _store(c, key, h, field, text)
    notify(c, HASH, b"hincrbyfloat", key)
    propagate_as(c, [b"HSET", key, field, text])
    return text


# -- reads -------------------------------------------------------------------

@command("hget", 3, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Get the value of a hash field", since="2.0.0",
         complexity="O(1)", **_G)
def hget(c, argv):
    h = read(c, argv[1], dict)
    return None if h is None else h.get(argv[2])


@command("hmget", -3, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Get the values of all the given hash fields", since="2.0.0",
         complexity="O(N) where N is the number of fields being requested.",
         **_G)
def hmget(c, argv):
    h = read(c, argv[1], dict) or {}
    return [h.get(field) for field in argv[2:]]


@command("hlen", 2, "readonly fast", keys=(1, 1, 1, "RO"),
         summary="Get the number of fields in a hash", since="2.0.0",
         complexity="O(1)", **_G)
def hlen(c, argv):
    h = read(c, argv[1], dict)
    return 0 if h is None else len(h)


@command("hstrlen", 3, "readonly fast", keys=(1, 1, 1, "RO"),
         summary="Get the length of the value of a hash field", since="3.2.0",
         complexity="O(1)", **_G)
def hstrlen(c, argv):
    h = read(c, argv[1], dict)
    value = None if h is None else h.get(argv[2])
    return 0 if value is None else len(value)


@command("hexists", 3, "readonly fast", keys=(1, 1, 1, "RO"),
         summary="Determine if a hash field exists", since="2.0.0",
         complexity="O(1)", **_G)
def hexists(c, argv):
    h = read(c, argv[1], dict)
    return int(h is not None and argv[2] in h)


@command("hkeys", 2, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get all the fields in a hash", since="2.0.0",
         complexity="O(N) where N is the size of the hash.", tips=ORDER_TIP,
         **_G)
def hkeys(c, argv):
    h = read(c, argv[1], dict)
    return [] if h is None else list(h)


@command("hvals", 2, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get all the values in a hash", since="2.0.0",
         complexity="O(N) where N is the size of the hash.", tips=ORDER_TIP,
         **_G)
def hvals(c, argv):
    h = read(c, argv[1], dict)
    return [] if h is None else list(h.values())


@command("hgetall", 2, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get all the fields and values in a hash", since="2.0.0",
         complexity="O(N) where N is the size of the hash.", tips=ORDER_TIP,
         **_G)
def hgetall(c, argv):
    h = read(c, argv[1], dict)
    return Map([] if h is None else list(h.items()))


# -- random fields and scans -------------------------------------------------

def _parse_hrandfield_count(argv):
    """HRANDFIELD's `count [WITHVALUES]` -> (count, withvalues)."""
    count = parse_int(argv[2])
    if count == LLONG_MIN:
        raise CommandError(COUNT_RANGE)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
        raise CommandError(SYNTAX)
    withvalues = len(argv) == 4
    if withvalues and abs(count) > LLONG_MAX // 2:
        raise CommandError("ERR value is out of range")
    return count, withvalues


def _random_fields(h, count: int) -> list:
    """count >= 0: distinct fields (all of them if count >= the size);
    count < 0: -count fields drawn independently (repeats allowed)."""
    if count < 0:
        return random.choices(list(h), k=-count)
    if count >= len(h):
        return list(h)
    return random.sample(list(h), count)


@command("hrandfield", -2, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get one or multiple random fields from a hash",
         since="6.2.0",
         complexity="O(N) where N is the number of fields returned",
         tips=RANDOM_TIP, **_G)
def hrandfield(c, argv):
    if len(argv) == 2:
        h = read(c, argv[1], dict)
        return None if h is None else random.choice(list(h))
    count, withvalues = _parse_hrandfield_count(argv)
    h = read(c, argv[1], dict)
    if h is None or count == 0:
        return []
    fields = _random_fields(h, count)
    if not withvalues:
        return fields
    if c.resp3:   # RESP3: one [field, value] pair per entry
        return [[field, h[field]] for field in fields]
    return [item for field in fields for item in (field, h[field])]


@command("hscan", -3, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Incrementally iterate hash fields and associated values",
         since="2.8.0",
         complexity=SCAN_COMPLEXITY, tips=RANDOM_TIP, **_G)
def hscan(c, argv):
    cursor = parse_cursor(argv[2])
    h = read(c, argv[1], dict)
    if h is None:
        return [b"0", []]
    count, match, _ = parse_scan_options(argv, 3)
    if _is_listpack(c, h):
        cursor, fields = 0, list(h)
    else:
        cursor, fields = hash_window(h, cursor, count)
    out = []
    for field in fields:
        if match is None or match(field):
            out += (field, h[field])
    return [b"%d" % cursor, out]
