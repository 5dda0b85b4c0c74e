"""HyperLogLog commands (Redis 7.0's hyperloglog.c): PFADD, PFCOUNT,
PFMERGE, PFDEBUG, PFSELFTEST.

An HLL is a string value in Redis's exact representation (see
rcluster/types/hll.py), edited in place as a ``bytearray``; so it can be
copied to and from redis-server with GET/SET or DUMP/RESTORE.
"""
from __future__ import annotations

from rcluster.commands.common import read, unshare_string, write
from rcluster.commands.table import CommandError, command, key_range
from rcluster.notify import STRING, notify
from rcluster.resp.codec import OK, Status
from rcluster.types import hll

_G = dict(group="hyperloglog", since="2.8.9")


def _check(value):
    """isHLLObjectOrReply (the type check is read/write's)."""
    if not hll.is_hll(value):
        raise CommandError(hll.NOT_HLL)


def _corrupt() -> CommandError:
    return CommandError(hll.INVALID_HLL)


def _as_long_long(card: int) -> int:
    """The uint64 count as addReplyLongLong shows it."""
    return card if card < 1 << 63 else card - (1 << 64)


def _max_bytes(c) -> int:
    return c.server.settings.hll_sparse_max_bytes


@command("pfadd", -2, "write denyoom fast", keys=(1, 1, 1, "RW insert"),
         summary="Adds the specified elements to the specified HyperLogLog.",
         complexity="O(1) to add every element.", **_G)
def pfadd(c, argv):
    key = argv[1]
    value = write(c, key, bytes)
    ks = c.server.keyspace
    updated = 0
    if value is None:
        buf = hll.new()
        ks.add(key, buf)
        updated = 1
    else:
        _check(value)
        buf = unshare_string(c, key, value)
    try:
        updated += hll.add(buf, argv[2:], _max_bytes(c))
    except hll.CorruptHLL:
        raise _corrupt() from None
    if updated:
        hll.invalidate(buf)
        ks.touch(key, updated)
        notify(c, STRING, b"pfadd", key)
    return 1 if updated else 0


def _union(c, keys):
    """The register-wise max of the HLLs at keys (missing keys are empty)
    -> (raw registers, whether one of them is dense)."""
    raw = bytearray(hll.REGISTERS)
    dense = False
    for key in keys:
        value = read(c, key, bytes)
        if value is None:
            continue
        _check(value)
        dense = dense or value[4] == hll.DENSE
        try:
            raw = hll.to_raw(value, raw)
        except hll.CorruptHLL:
            raise _corrupt() from None
    return raw, dense


@command("pfcount", -2, "readonly",
         specs=[key_range(1, -1, 1, ("RW", "access"),
                          "RW because it may change the internal "
                          "representation of the key, and propagate to "
                          "replicas")],
         summary="Return the approximated cardinality of the set(s) observed "
         "by the HyperLogLog at key(s).",
         complexity="O(1) with a very small average constant time when "
         "called with a single key. O(N) with N being the number of keys, "
         "and much bigger constant times, when called with multiple keys.",
         **_G)
def pfcount(c, argv):
    if len(argv) > 2:
        raw, _ = _union(c, argv[1:])
        return _as_long_long(hll.estimate(hll.raw_histogram(raw)))
    key = argv[1]
    value = read(c, key, bytes)
    if value is None:
        return 0
    _check(value)
    buf = unshare_string(c, key, c.server.keyspace.for_write(key))
    cached = hll.cached_count(buf)
    if cached is not None:
        return cached
    try:
        card = hll.count(buf)
    except hll.CorruptHLL:
        raise _corrupt() from None
    # The cache is part of the string: updating it is a write (propagated).
    hll.set_cached_count(buf, card)
    c.server.keyspace.touch(key)
    return _as_long_long(card)


@command("pfmerge", -2, "write denyoom",
         specs=[key_range(1, 1, 1, ("RW", "access", "insert")),
                key_range(2, -1, 1, ("RO", "access"))],
         summary="Merge N different HyperLogLogs into a single one.",
         complexity="O(N) to merge N HyperLogLogs, but with high constant "
         "times.", **_G)
def pfmerge(c, argv):
    # The destination is one of the sources, as in Redis.
    raw, dense = _union(c, argv[1:])
    key = argv[1]
    ks = c.server.keyspace
    value = write(c, key, bytes)
    if value is None:
        buf = hll.new()
        ks.add(key, buf)
    else:
        buf = unshare_string(c, key, value)
    try:
        if dense:
            hll.to_dense(buf)
        hll.merge_into(buf, raw, _max_bytes(c))
    except hll.CorruptHLL:
        raise _corrupt() from None
    hll.invalidate(buf)
    ks.touch(key)
    notify(c, STRING, b"pfadd", key)
    return OK


@command("pfselftest", 1, "admin",
         summary="An internal command for testing HyperLogLog values",
         complexity="N/A", doc_flags=("syscmd",), **_G)
def pfselftest(c, argv):
    failure = hll.selftest(_max_bytes(c))
    if failure is not None:
        raise CommandError("ERR " + failure)
    return OK


@command("pfdebug", 3, "write denyoom admin",
         specs=[key_range(2, 2, 1, ("RW", "access"))],
         summary="Internal commands for debugging HyperLogLog values",
         complexity="N/A", doc_flags=("syscmd",), **_G)
def pfdebug(c, argv):
    name = argv[1]
    key = argv[2]
    value = write(c, key, bytes)
    if value is None:
        raise CommandError("ERR The specified key does not exist")
    _check(value)
    buf = unshare_string(c, key, value)
    sub = name.lower()
    if sub in (b"getreg", b"todense"):
        try:
            converted = hll.to_dense(buf)
        except hll.CorruptHLL:
            raise _corrupt() from None
        if converted:
            c.server.keyspace.touch(key)    # propagate the new encoding
        if sub == b"todense":
            return int(converted)
        return list(hll.dense_to_raw(buf))
    if sub == b"decode":
        if buf[4] != hll.SPARSE:
            raise CommandError("ERR HLL encoding is not sparse")
        return hll.decode(buf)
    if sub == b"encoding":
        return Status("dense" if buf[4] == hll.DENSE else "sparse")
    raise CommandError("ERR Unknown PFDEBUG subcommand '%s'"
                       % name.decode("utf-8", "surrogateescape"))
