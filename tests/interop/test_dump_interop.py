"""DUMP payloads and RDB files between Debian's redis-server 7.0 and
rcluster: for every type and encoding, redis-server's DUMP restores on
rcluster and rcluster's on redis-server with equal contents (and, for
listpack/intset/quicklist encodings, rcluster's payload is byte-identical
to redis-server's); an RDB file redis-server SAVEs decodes with RdbReader
to the contents redis-server reports."""
from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from rcluster.persistence.rdb import Entry, RdbReader
from tests.integration.harness import NodeProcess, have

EXPIRE_AT = 4102444800123          # 2100-01-01, ms


def populate(r):
    """One key per type and encoding Redis 7.0 uses; returns their names."""
    r.set("str:raw", "hello world")
    r.set("str:int", "12345")
    r.set("str:bigint", "-9223372036854775808")
    r.set("str:lzf", "abcd" * 100)
    r.set("str:bin", bytes(range(256)) * 3)
    r.set("str:empty", "")
    r.rpush("list:small", "a", "1", "-5", "200", "70000", "x" * 70)
    r.rpush("list:nodes", *[b"elem%d" % i for i in range(5000)])
    r.rpush("list:big", *[b"y" * 5000 for _ in range(5)])
    r.hset("hash:lp", mapping={"f1": "v1", "n": "22", "neg": "-100000"})
    r.hset("hash:ht", mapping={b"f%d" % i: b"v%d" % i for i in range(600)})
    r.hset("hash:long", mapping={"f": "z" * 100})
    r.sadd("set:intset", 1, -3, 100000, 5000000000)
    r.sadd("set:ht", "a", "b", "c")
    r.sadd("set:bigint", *range(600))
    r.zadd("zset:lp", {"a": 1, "b": 2.5, "c": float("inf"), "d": -0.25,
                       "e": 1e20})
    r.zadd("zset:sl", {b"m%d" % i: i / 7 for i in range(300)})
    r.zadd("zset:long", {"q" * 80: 3})
    r.set("exp:str", "soon")
    r.pexpireat("exp:str", EXPIRE_AT)
    r.rpush("exp:list", "a")
    r.pexpireat("exp:list", EXPIRE_AT + 1)
    keys = [k.decode() for k in r.keys("*")]
    return sorted(keys)


def contents(r, key):
    kind = r.type(key).decode()
    if kind == "string":
        return kind, r.get(key)
    if kind == "list":
        return kind, r.lrange(key, 0, -1)
    if kind == "hash":
        return kind, r.hgetall(key)
    if kind == "set":
        return kind, sorted(r.smembers(key))
    return kind, r.zrange(key, 0, -1, withscores=True)


# Encodings whose DUMP rcluster reproduces byte for byte.
EXACT = {b"embstr", b"int", b"raw", b"listpack", b"intset", b"quicklist"}


class DumpInteropTests(TestCase):
    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        self.redis = NodeProcess(binary="redis-server")
        self.rcluster = NodeProcess(binary="rcluster")
        for node in (self.redis, self.rcluster):
            self.addCleanup(node.cleanup)
            node.start()
        self.r = self.redis.client()
        self.c = self.rcluster.client()
        self.addCleanup(self.r.close)
        self.addCleanup(self.c.close)

    def test_command_info_and_docs_match(self):
        for sub in ("info", "docs"):
            args = ("command", sub, "dump", "restore", "restore-asking")
            self.assertEqual(self.rcluster.cli(*args), self.redis.cli(*args))

    def test_lzf_strings_byte_identical(self):
        """Random compressible strings: the same LZF bytes as liblzf."""
        import random
        rng = random.Random(7)
        values = []
        for i in range(300):
            alphabet = rng.choice([b"ab", b"abcdef", b"0123456789abcdef",
                                   bytes(range(256))])
            size = rng.choice([21, 25, 40, 100, 1000, 5000, 20000])
            values.append(bytes(rng.choice(alphabet) for _ in range(size)))
        pipe = self.r.pipeline(transaction=False)
        for i, value in enumerate(values):
            pipe.set("lzf:%d" % i, value)
            pipe.dump("lzf:%d" % i)
        replies = pipe.execute()[1::2]
        from rcluster.persistence.rdb import dump_payload
        for value, theirs in zip(values, replies):
            self.assertEqual(dump_payload(value), theirs, value[:40])

    def test_payloads_both_ways(self):
        keys = populate(self.r)
        self.assertEqual(populate(self.c), keys)
        for key in keys:
            theirs = self.r.dump(key)
            ours = self.c.dump(key)
            encoding = self.r.object("encoding", key)
            self.assertEqual(self.c.object("encoding", key), encoding, key)
            if encoding in EXACT:
                self.assertEqual(ours, theirs, key)
            # redis-server -> rcluster
            self.assertTrue(self.c.restore(key + ":from-redis", 0, theirs))
            self.assertEqual(contents(self.c, key + ":from-redis"),
                             contents(self.r, key), key)
            # rcluster -> redis-server
            self.assertTrue(self.r.restore(key + ":from-rcluster", 0, ours))
            self.assertEqual(contents(self.r, key + ":from-rcluster"),
                             contents(self.r, key), key)
            self.assertEqual(self.r.object("encoding", key + ":from-rcluster"),
                             encoding, key)

    def test_redis_rdb_file_decodes(self):
        keys = populate(self.r)
        self.r.function_load("#!lua name=mylib\nredis.register_function("
                             "'f', function() return 1 end)")
        self.r.save()
        path = os.path.join(self.redis.workdir, "dump.rdb")
        reader = RdbReader()
        records = []
        with open(path, "rb") as fh:
            while True:
                chunk = fh.read(4096)
                if not chunk:
                    break
                records += reader.feed(chunk)
        reader.finish()
        entries = {r.key.decode(): r for r in records if isinstance(r, Entry)}
        self.assertEqual(sorted(entries), keys)
        aux = {r.name: r.value for r in records if type(r).__name__ == "Aux"}
        self.assertEqual(aux[b"redis-ver"], b"7.0.15")
        self.assertTrue(any(type(r).__name__ == "Function" and b"mylib" in
                            r.code for r in records))
        for key, entry in entries.items():
            # Restore each decoded value on rcluster through its own DUMP
            # path, then compare what both servers report.
            from rcluster.persistence.rdb import dump_payload
            self.c.restore(key + ":file", 0, dump_payload(entry.value))
            self.assertEqual(contents(self.c, key + ":file"),
                             contents(self.r, key), key)
            expected = self.r.pexpiretime(key)
            self.assertEqual(entry.expire_ms,
                             None if expected == -1 else expected, key)


class RdbFileInteropTests(TestCase):
    def test_our_rdb_file_loads_on_redis(self):
        """A file RdbWriter writes (every type, expiries, a function) is
        what redis-server loads at start-up."""
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        source = NodeProcess(binary="redis-server")
        self.addCleanup(source.cleanup)
        source.start()
        r = source.client()
        self.addCleanup(r.close)
        keys = populate(r)
        from rcluster.persistence.rdb import RdbWriter, load_payload
        writer = RdbWriter()
        parts = [writer.header([(b"redis-ver", b"7.0.15"),
                                (b"redis-bits", 64), (b"ctime", 1700000000),
                                (b"used-mem", 1000000), (b"aof-base", 0)]),
                 writer.function(b"#!lua name=mylib\nredis.register_function"
                                 b"('f', function() return 1 end)"),
                 writer.select_db(0, len(keys), 2)]
        for key in keys:
            expire = r.pexpiretime(key)
            value = load_payload(r.dump(key))
            parts.append(writer.entry(key.encode(), value,
                                      None if expire == -1 else expire))
        parts.append(writer.footer())
        target = NodeProcess(binary="redis-server")
        self.addCleanup(target.cleanup)
        with open(os.path.join(target.workdir, "dump.rdb"), "wb") as fh:
            fh.write(b"".join(parts))
        target.start()
        t = target.client()
        self.addCleanup(t.close)
        self.assertEqual(sorted(k.decode() for k in t.keys("*")), keys)
        for key in keys:
            self.assertEqual(contents(t, key), contents(r, key), key)
            self.assertEqual(t.pexpiretime(key), r.pexpiretime(key), key)
            self.assertEqual(t.object("encoding", key),
                             r.object("encoding", key), key)
        self.assertEqual(t.fcall("f", 0), 1)


class RandomByteIdentityTests(TestCase):
    """Random lists (every fill), hashes, zsets and intsets: rcluster's
    payload is byte for byte redis-server's."""

    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        self.redis = NodeProcess(binary="redis-server")
        self.addCleanup(self.redis.cleanup)
        self.redis.start()
        self.r = self.redis.client()
        self.addCleanup(self.r.close)

    def test_random_values(self):
        import random
        from collections import deque
        from types import SimpleNamespace

        from rcluster.persistence import rdb
        from rcluster.zset import ZSet
        rng = random.Random(12)

        def elem(big=False):
            k = rng.random()
            if k < 0.3:
                return b"%d" % rng.randrange(-2**63, 2**63)
            if k < 0.5:
                return b"%d" % rng.randrange(-5000, 5000)
            if big and k < 0.6:
                return b"z" * rng.choice([127, 128, 4095, 4096, 9000])
            return bytes(rng.choice(b"abc") for _ in range(rng.randrange(66)))

        settings = SimpleNamespace(**{k: v for k, v in vars(
            rdb._Defaults).items() if not k.startswith("_")})
        r = self.r
        for fill in (-1, -2, -5, 1, 5, 128):
            r.config_set("list-max-listpack-size", fill)
            settings.list_max_listpack_size = fill
            for _ in range(10):
                items = [elem(True) for _ in range(rng.randrange(1, 300))]
                r.delete("l")
                r.rpush("l", *items)
                self.assertEqual(rdb.dump_payload(deque(items), settings),
                                 r.dump("l"), fill)
        scores = [1e300, -1e-300, 2.0**62, 2.0**61, -(2.0**62), 0.1,
                  float("inf"), -0.0]
        for _ in range(40):
            h = {elem(): elem() for _ in range(rng.randrange(1, 40))}
            r.delete("h")
            r.hset("h", mapping=h)
            if r.object("encoding", "h") == b"listpack":
                self.assertEqual(rdb.dump_payload(h), r.dump("h"))
            z = {elem(): rng.choice([rng.uniform(-1e6, 1e6),
                                     float(rng.randrange(-10**6, 10**6)),
                                     rng.choice(scores)])
                 for _ in range(rng.randrange(1, 40))}
            r.delete("z")
            r.zadd("z", z)
            compact = r.object("encoding", "z") == b"listpack"
            self.assertEqual(compact, max(map(len, z)) <= 64)
            value = ZSet(z, compact=compact)
            if compact:
                self.assertEqual(rdb.dump_payload(value), r.dump("z"))
            else:
                self.assertEqual(list(rdb.load_payload(r.dump("z"))),
                                 list(value))
            s = {b"%d" % rng.randrange(-2**63, 2**63) for _ in range(5)}
            r.delete("s")
            r.sadd("s", *s)
            self.assertEqual(rdb.dump_payload(s), r.dump("s"))
