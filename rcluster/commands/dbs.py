"""Multiple databases: SWAPDB, and the db side of SELECT, MOVE, COPY ... DB,
FLUSHDB / FLUSHALL (their rows live in connection.py and keys.py).

A client's database is ``Client.db``; ``Server.call`` makes it the keyspace
in use while the client's command runs (``Server.use_db``), so handlers
keep using ``c.server.keyspace``.  Work in *another* database (MOVE's
target, COPY ... DB, FLUSHALL) runs inside ``in_db`` so that expiry, the
write path (SELECT in the AOF and the replication stream), WATCH and
keyspace events see the right db.

Standalone: ``databases`` databases.  Cluster mode: ``cluster-databases``
(Valkey 9; 1, Redis 7.0's rule, by default); slot routing is the same in
every db.
"""
from __future__ import annotations

from contextlib import contextmanager

from rcluster.commands.common import parse_int, parse_ranged
from rcluster.commands.table import CommandError, command
from rcluster.notify import GENERIC, notify
from rcluster.resp.codec import OK

DB_OUT_OF_RANGE = "ERR DB index is out of range"
_INT = 2**31


@contextmanager
def in_db(server, index: int):
    """Run a block with database ``index`` in use, then go back."""
    previous = server.cur_db
    if previous == index:
        yield server.keyspace
        return
    server.use_db(index)
    try:
        yield server.keyspace
    finally:
        server.use_db(previous)


def parse_db(c, arg: bytes, error: str = None) -> int:
    """getIntFromObjectOrReply + selectDb: a db index that exists."""
    index = parse_ranged(arg, -_INT, _INT - 1, error)
    if not 0 <= index < len(c.server.dbs):
        raise CommandError(DB_OUT_OF_RANGE)
    return index


def multi_db_allowed(server) -> bool:
    return not server.cluster_mode or len(server.dbs) > 1


def select(c, argv):
    index = parse_int(argv[1])
    if not -_INT <= index < _INT:
        raise CommandError("ERR value is out of range, value must between "
                           "-2147483648 and 2147483647")
    server = c.server
    if index != 0 and not multi_db_allowed(server):
        raise CommandError("ERR SELECT is not allowed in cluster mode")
    if not 0 <= index < len(server.dbs):
        raise CommandError(DB_OUT_OF_RANGE)
    c.db = index
    return OK


def move(c, argv):
    server = c.server
    if not multi_db_allowed(server):
        raise CommandError("ERR MOVE is not allowed in cluster mode")
    key = argv[1]
    src_db = server.cur_db
    dst_db = parse_db(c, argv[2])
    if dst_db == src_db:
        raise CommandError("ERR source and destination objects are the same")
    src = server.keyspace
    value = src.lookup(key)
    if value is None:
        return 0
    when = src.expire_time(key)
    with in_db(server, dst_db) as dst:
        if dst.lookup(key) is not None:
            return 0
        dst.set(key, value)
        if when is not None:
            dst.set_expire(key, when)
    # The value object moves: no copy (as Redis's incrRefCount).
    src.delete(key)
    with in_db(server, dst_db):
        server.write_path.touched([key], c)
    notify(c, GENERIC, b"move_from", key, src_db)
    notify(c, GENERIC, b"move_to", key, dst_db)
    return 1


def copy_to_db(c, src_key, dst_key, dst_db, replace, duplicate):
    """COPY src dst DB n with n not the db in use."""
    server = c.server
    if server.cluster_mode and len(server.dbs) == 1:
        raise CommandError("ERR Copying to another database is not allowed "
                           "in cluster mode")
    src = server.keyspace
    value = src.lookup(src_key)
    if value is None:
        server.stats.keyspace_misses += 1
        return 0
    server.stats.keyspace_hits += 1
    when = src.expire_time(src_key)
    with in_db(server, dst_db) as dst:
        if dst.lookup(dst_key) is not None:
            if not replace:
                return 0
            dst.delete(dst_key)
        dst.set(dst_key, duplicate(value))
        if when is not None:
            dst.set_expire(dst_key, when)
        server.write_path.touched([dst_key], c)
        notify(c, GENERIC, b"copy_to", dst_key, dst_db)
    # The write is counted in the db in use (server.dirty is one counter).
    src.dirty += 1
    return 1


@command("swapdb", 3, "write fast", group="server", since="4.0.0",
         summary="Swaps two Redis databases", acl="keyspace dangerous",
         complexity="O(N) where N is the count of clients watching or "
         "blocking on keys from both databases.")
def swapdb(c, argv):
    server = c.server
    if server.cluster_mode:
        raise CommandError("ERR SWAPDB is not allowed in cluster mode")
    a = parse_ranged(argv[1], -_INT, _INT - 1, "ERR invalid first DB index")
    b = parse_ranged(argv[2], -_INT, _INT - 1, "ERR invalid second DB index")
    count = len(server.dbs)
    if not (0 <= a < count and 0 <= b < count):
        raise CommandError(DB_OUT_OF_RANGE)
    if a != b:
        # touchAllWatchedKeysInDb: watched keys that exist on either side.
        server.touch_all_watched((a, b))
        server.swap_dbs(a, b)
        server.touch_all_watched((a, b))
        blocking = server.blocking
        if blocking.keys:
            # scanDatabaseForReadyKeys: blocked clients look again.
            blocking.signal(list(blocking.keys))
        for listener in server.write_path.key_listeners:
            listener(None, c)
    server.keyspace.dirty += 1
    return OK


def flush(c, everything: bool):
    """FLUSHDB: the db in use; FLUSHALL: every db."""
    server = c.server
    if not everything:
        server.write_path.flushed(c)
        ks = server.keyspace
        removed = ks.flush()
    else:
        server.touch_all_watched(range(len(server.dbs)))
        server.write_path.flushed(c)
        removed = 0
        current = server.cur_db
        for index, ks in server.dbs.items():
            if index == current:
                removed += server.keyspace.flush()
            else:
                with in_db(server, index) as other:
                    removed += other.flush()
        ks = server.keyspace
    if not removed:
        # Redis propagates a flush of an empty keyspace too
        # (forceCommandPropagation): mark it as a write.
        ks.dirty += 1
    return OK


def info_lines(server):
    """INFO keyspace: a db<N> line per non-empty database."""
    lines = []
    now = server.keyspace.now or server.now_ms()
    for index, ks in server.dbs.items():
        if not ks.count:
            continue
        lines.append(("db%d" % index, "keys=%d,expires=%d,avg_ttl=%d"
                      % (ks.count, len(ks.expires), avg_ttl(ks, now))))
    return lines


def avg_ttl(ks, now) -> int:
    """An estimate of the mean remaining TTL (ms) of keys with one (Redis
    keeps a running sample; this samples up to 100 deadlines)."""
    expires = ks.expires
    if not expires:
        return 0
    total = n = 0
    for when in expires.values():
        if when > now:
            total += when - now
            n += 1
        if n >= 100:
            break
    return total // n if n else 0
