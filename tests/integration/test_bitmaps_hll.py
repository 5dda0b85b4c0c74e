"""Bitmaps and HyperLogLogs against a real rcluster node, driven by
redis-py, with every expected reply taken from Debian's redis-server 7.0
running the same calls in the same test (nothing hand-written): each call
goes to both servers and the replies (or error texts) must be equal.

Interop: HLLs (sparse and dense) copied both ways between the two servers
with GET/SET and DUMP/RESTORE count the same.
"""
import random

import redis
from twisted.trial.unittest import TestCase

from tests.integration.harness import have, start_node


def _outcome(client, args):
    try:
        if args[0] == "COMMAND":
            return ("ok", _raw(client, *args))
        return ("ok", client.execute_command(*args))
    except redis.ResponseError as exc:
        return ("error", str(exc))


def _raw(client, *args):
    """A reply as RESP parsed it, without redis-py's per-command parsing."""
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        client.connection_pool.release(conn)


class BothServers(TestCase):
    """An rcluster node and a redis-server, both standalone and empty."""

    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        self.ours = start_node(self).client()
        self.theirs = start_node(self, binary="redis-server").client()
        self.addCleanup(self.ours.close)
        self.addCleanup(self.theirs.close)

    def same(self, *args):
        """Run a command on both servers; the replies must be equal.
        Returns the reply (an error reply as ("error", text))."""
        expected = _outcome(self.theirs, args)
        got = _outcome(self.ours, args)
        self.assertEqual(got, expected, f"command {args!r}")
        return expected[1] if expected[0] == "ok" else expected

    def both(self, *args):
        """A setup call on both servers (replies not compared)."""
        self.ours.execute_command(*args)
        self.theirs.execute_command(*args)


class BitmapTests(BothServers):
    def test_setbit_getbit(self):
        same = self.same
        for offset, bit in ((7, 1), (7, 1), (0, 1), (7, 0), (100, 0),
                            (101, 1), (5000, 1), (5000, 1)):
            same("SETBIT", "b", offset, bit)
        for offset in (0, 1, 7, 100, 101, 5000, 5001, 10 ** 6):
            same("GETBIT", "b", offset)
        same("GET", "b")
        same("STRLEN", "b")
        same("OBJECT", "ENCODING", "b")
        same("GETBIT", "missing", 3)
        # Int-encoded and embstr strings read as their text.
        same("SET", "n", "12")
        for offset in range(16):
            same("GETBIT", "n", offset)
        same("SETBIT", "n", 6, 0)
        same("GET", "n")
        same("OBJECT", "ENCODING", "n")
        same("SET", "e", "hello")
        same("SETBIT", "e", 1, 1)        # unchanged bit: still unshared
        same("OBJECT", "ENCODING", "e")
        same("GET", "e")
        # Errors, in Redis's order and words.
        for args in (("b", -1, 1), ("b", "x", 1), ("b", 2 ** 32, 1),
                     ("b", 2 ** 32 - 1, 2), ("b", 1, -1), ("b", 1, "x")):
            same("SETBIT", *args)
        same("GETBIT", "b", 2 ** 32)
        same("GETBIT", "b", -1)
        same("RPUSH", "list", "a")
        same("SETBIT", "list", 1, 1)
        same("GETBIT", "list", 1)
        same("SETBIT", "b")
        # Offsets are bounded by proto-max-bulk-len (512 MB by default).
        same("CONFIG", "SET", "proto-max-bulk-len", "1mb")
        same("SETBIT", "big", 8 * 2 ** 20, 1)
        same("SETBIT", "big", 8 * 2 ** 20 - 1, 1)
        same("BITFIELD", "big", "GET", "u8", "#1048576")
        same("BITFIELD", "big", "SET", "u8", "#1048575", 3)
        same("STRLEN", "big")
        same("BITCOUNT", "big")
        same("BITPOS", "big", 1)

    def test_strings_stay_strings(self):
        """Values edited in place still behave as strings everywhere."""
        same = self.same
        same("SETBIT", "k", 3, 1)
        same("APPEND", "k", "xyz")
        same("SETRANGE", "k", 10, "tail")
        same("SETBIT", "k", 0, 1)
        same("GET", "k")
        same("GETRANGE", "k", 1, 5)
        same("TYPE", "k")
        same("OBJECT", "ENCODING", "k")
        same("MGET", "k", "nokey")
        same("SET", "a", "abc")
        same("APPEND", "a", "def")
        same("OBJECT", "ENCODING", "a")
        same("SETRANGE", "r", 3, "x")
        same("OBJECT", "ENCODING", "r")
        same("GET", "r")
        same("INCR", "r2")
        same("SETRANGE", "r2", 0, "5")
        same("INCR", "r2")
        same("GETEX", "k", "EX", 100)
        same("GETSET", "k", "plain")
        same("SETBIT", "k2", 1, 1)
        same("COPY", "k2", "k3")
        same("SETBIT", "k3", 2, 1)
        same("GET", "k2")
        same("GET", "k3")
        same("SET", "k2", "x", "GET")
        same("SETBIT", "k4", 9, 1)
        same("GETDEL", "k4")
        same("EXISTS", "k4")
        same("STRLEN", "k3")
        same("LCS", "k3", "k2")
        # A reply is a snapshot: later edits in the same transaction
        # don't change an earlier GET's reply.
        for client in (self.ours, self.theirs):
            pipe = client.pipeline(transaction=True)
            pipe.setbit("t", 0, 1).get("t").setbit("t", 1, 1).get("t")
            pipe.append("t", "!").getrange("t", 0, -1).mget("t")
            pipe.bitfield("t").set("u8", 0, 255).execute()
            pipe.get("t")
            pipe.set("t", "v", get=True)
            if client is self.ours:
                ours = pipe.execute()
            else:
                theirs = pipe.execute()
        self.assertEqual(ours, theirs)

    def test_bitcount_bitpos(self):
        same = self.same
        rng = random.Random(7)
        values = [b"", b"\x00", b"\xff", b"foobar", b"\xff\xf0\x00",
                  b"\x00\x00\x01", b"\xff" * 40, b"\x00" * 40 + b"\x10",
                  bytes(rng.getrandbits(8) for _ in range(37))]
        for i, value in enumerate(values):
            self.both("SET", f"v{i}", value)
        ranges = [(0, 0), (1, 1), (0, -1), (-1, -1), (-5, -1), (2, 1),
                  (-1, -5), (-100, 100), (5, 30), (3, 3), (7, 8), (1, -2)]
        for i in range(len(values)):
            key = f"v{i}"
            same("BITCOUNT", key)
            for bit in (0, 1):
                same("BITPOS", key, bit)
            for start, end in ranges + [(rng.randint(-50, 50),
                                         rng.randint(-50, 50))
                                        for _ in range(6)]:
                same("BITCOUNT", key, start, end)
                for unit in ("BYTE", "BIT", "bit"):
                    same("BITCOUNT", key, start, end, unit)
                for bit in (0, 1):
                    same("BITPOS", key, bit, start)
                    same("BITPOS", key, bit, start, end)
                    for unit in ("BYTE", "BIT"):
                        same("BITPOS", key, bit, start, end, unit)
        same("BITCOUNT", "missing", "x", "y")
        same("BITCOUNT", "v3", 0)
        same("BITCOUNT", "missing", 0)
        same("BITCOUNT", "v3", 0, 1, "bits")
        same("BITCOUNT", "v3", "a", 1)
        same("BITCOUNT", "v3", 0, 1, "BIT", "extra")
        same("BITPOS", "v3", 2)
        same("BITPOS", "v3", "x")
        same("BITPOS", "missing", 1, "junk")
        same("BITPOS", "v3", 1, 0, 1, "words")
        same("BITPOS", "v3", 1, 0, 1, "BIT", "more")
        same("BITPOS", "v3", 1, "a")
        same("BITPOS", "v3", 1, 0, "b")
        same("LPUSH", "list", "x")
        same("BITCOUNT", "list")
        same("BITPOS", "list", 1)

    def test_bitop(self):
        same = self.same
        self.both("SET", "a", b"\xff\x0f\x55")
        self.both("SET", "b", b"\xf0")
        self.both("SET", "c", b"\x01\x02\x03\x04\x05\x06\x07\x08" * 5)
        self.both("SET", "e", "")
        for op in ("AND", "OR", "XOR", "and", "Or"):
            same("BITOP", op, "d", "a", "b", "c", "missing")
            same("GET", "d")
            same("BITOP", op, "d", "c", "a")
            same("GET", "d")
            same("BITOP", op, "d", "a")
            same("GET", "d")
        same("BITOP", "NOT", "d", "a")
        same("GET", "d")
        same("OBJECT", "ENCODING", "d")
        same("BITOP", "NOT", "d", "c")
        same("GET", "d")
        same("SET", "d", "x", "EX", 100)
        same("BITOP", "OR", "d", "a")
        same("TTL", "d")
        same("BITOP", "AND", "d", "missing", "e")
        same("EXISTS", "d")
        same("BITOP", "NOT", "d", "a", "b")
        same("BITOP", "NAND", "d", "a")
        same("LPUSH", "list", "x")
        same("BITOP", "AND", "d", "a", "list")
        same("BITOP", "AND", "list", "a")
        same("TYPE", "list")
        same("BITOP", "AND", "d")

    def test_bitfield(self):
        same = self.same
        rng = random.Random(11)
        types = [f"i{n}" for n in (1, 2, 5, 8, 13, 31, 32, 33, 63, 64)] + \
            [f"u{n}" for n in (1, 2, 5, 8, 13, 31, 32, 33, 62, 63)]
        edges = [0, 1, -1, 2 ** 63 - 1, -2 ** 63, 127, -128, 255, 256,
                 2 ** 31, -2 ** 31 - 1, 2 ** 62]
        for round_ in range(40):
            args = ["BITFIELD", "f"]
            for _ in range(rng.randint(1, 6)):
                kind = rng.choice(["GET", "SET", "INCRBY", "OVERFLOW"])
                if kind == "OVERFLOW":
                    args += ["OVERFLOW", rng.choice(["WRAP", "SAT", "FAIL",
                                                     "sat", "fail"])]
                    continue
                type_ = rng.choice(types)
                offset = rng.choice([str(rng.randint(0, 200)),
                                     "#%d" % rng.randint(0, 5)])
                args += [kind, type_, offset]
                if kind != "GET":
                    args.append(rng.choice(edges + [rng.randint(-10 ** 6,
                                                                10 ** 6)]))
            same(*args)
            if round_ % 8 == 0:
                same("GET", "f")
        same("GET", "f")
        same("BITFIELD_RO", "f", "GET", "i8", 0, "GET", "u63", "#1")
        same("BITFIELD_RO", "missing", "GET", "i8", 0)
        same("BITFIELD", "missing", "GET", "u4", 0)
        same("EXISTS", "missing")
        same("BITFIELD", "missing")
        same("BITFIELD", "new", "OVERFLOW", "FAIL", "SET", "u2", 100, 7)
        same("GET", "new")
        same("BITFIELD", "f", "INCRBY", "i64", 0, 2 ** 63 - 1, "INCRBY",
             "i64", 0, 1, "OVERFLOW", "SAT", "INCRBY", "i64", 0, -1)
        same("BITFIELD", "f", "OVERFLOW", "SAT", "SET", "i8", 0, -2 ** 63)
        same("BITFIELD", "f", "OVERFLOW", "WRAP", "SET", "u8", 0, -1)
        same("BITFIELD", "f", "OVERFLOW", "SAT", "SET", "u8", 0, -1)
        # Errors.
        for args in (("GET", "u64", 0), ("GET", "i65", 0), ("GET", "x8", 0),
                     ("GET", "i0", 0), ("GET", "I8", 0), ("GET", "i8", -1),
                     ("GET", "i8", "#-1"), ("GET", "i8", 2 ** 32),
                     ("GET", "i8"), ("SET", "i8", 0), ("SET", "i8", 0, "x"),
                     ("OVERFLOW", "FOO"), ("OVERFLOW",), ("FOO", "i8", 0),
                     ("INCRBY", "u8", "#x", 1)):
            same("BITFIELD", "f", *args)
        same("BITFIELD_RO", "f", "SET", "i8", 0, 1)
        same("BITFIELD_RO", "f", "GET", "i8", 0, "INCRBY", "i8", 0, 1)
        same("BITFIELD_RO", "f", "OVERFLOW", "SAT")
        same("LPUSH", "list", "x")
        same("BITFIELD", "list", "GET", "i8", 0)
        same("BITFIELD", "list", "SET", "i8", 0, 1)

    def test_resp3_and_watch(self):
        """RESP3 replies (BITFIELD's null), and which calls invalidate a
        WATCH: only those that change the value (PFCOUNT writing its
        cache does)."""
        results = []
        for server in ("theirs", "ours"):
            client = getattr(self, server)
            r3 = redis.Redis(port=client.connection_pool.connection_kwargs[
                "port"], protocol=3)
            self.addCleanup(r3.close)
            got = [r3.bitfield("f").set("u4", 0, 9).overflow("FAIL")
                   .incrby("u4", 0, 10).get("i4", 0).execute(),
                   r3.execute_command("PFADD", "h", "a"),
                   r3.execute_command("PFDEBUG", "ENCODING", "h"),
                   r3.get("f")]
            for key, write in (("f", ("SETBIT", "f", 0, 1)),
                               ("f", ("SETBIT", "f", 0, 0)),
                               ("f", ("BITFIELD", "f", "SET", "u4", 0, 9)),
                               ("f", ("BITFIELD", "f", "SET", "u4", 0, 9)),
                               ("f", ("SETBIT", "f", 200, 0)),
                               ("h", ("PFADD", "h", "a")),
                               ("h", ("PFCOUNT", "h")),
                               ("h", ("PFCOUNT", "h")),
                               ("h", ("PFADD", "h", "zz"))):
                pipe = client.pipeline(transaction=True)
                pipe.watch(key)
                r3.execute_command(*write)
                pipe.multi()
                pipe.get(key)
                try:
                    got.append(pipe.execute())
                except redis.WatchError:
                    got.append("watch error")
            results.append(got)
        self.assertEqual(results[1], results[0])

    def test_command_info(self):
        for name in ("setbit", "getbit", "bitcount", "bitpos", "bitop",
                     "bitfield", "bitfield_ro", "pfadd", "pfcount",
                     "pfmerge", "pfdebug", "pfselftest"):
            self.same("COMMAND", "INFO", name)
            theirs = _raw(self.theirs, "COMMAND", "DOCS", name)
            ours = _raw(self.ours, "COMMAND", "DOCS", name)
            doc_t, doc_o = _only_doc(theirs), _only_doc(ours)
            for field in (b"summary", b"since", b"group", b"complexity",
                          b"history", b"doc_flags"):
                self.assertEqual(
                    _doc_field(doc_o, field), _doc_field(doc_t, field),
                    f"{name} {field}")
        self.same("COMMAND", "GETKEYS", "BITOP", "AND", "d", "a", "b")
        self.same("COMMAND", "GETKEYS", "PFMERGE", "d", "a", "b")
        self.same("COMMAND", "GETKEYS", "PFCOUNT", "a", "b")


def _only_doc(reply):
    if isinstance(reply, dict):
        return next(iter(reply.values()))
    return reply[1]


def _doc_field(doc, field):
    if isinstance(doc, dict):
        return doc.get(field)
    pairs = dict(zip(doc[0::2], doc[1::2]))
    return pairs.get(field)


class HyperLogLogTests(BothServers):
    def test_pfadd_pfcount_exact_bytes(self):
        same = self.same
        rng = random.Random(3)
        same("PFADD", "h")
        same("GET", "h")
        same("PFADD", "h")
        same("PFCOUNT", "h")
        same("GET", "h")                 # the cache was written
        for size in (1, 3, 20, 200, 700, 1500, 4000):
            elements = [b"el:%d" % rng.randrange(10 ** 9)
                        for _ in range(size)]
            key = f"h{size}"
            while elements:
                chunk, elements = elements[:rng.randint(1, 64)], \
                    elements[64:]
                same("PFADD", key, *chunk)
            same("PFADD", key, b"el:x")
            same("PFADD", key, b"el:x")
            same("PFDEBUG", "ENCODING", key)
            same("GET", key)               # byte for byte, sparse or dense
            same("PFCOUNT", key)
            same("PFCOUNT", key)           # from the cache
            same("GET", key)
            same("OBJECT", "ENCODING", key)
        same("PFCOUNT", "h1", "h20", "h700", "missing")
        same("PFCOUNT", "h1500", "h4000")
        same("PFCOUNT", "missing")
        same("PFCOUNT", "missing", "missing2")

    def test_pfmerge(self):
        same = self.same
        rng = random.Random(5)
        for name, size in (("s1", 30), ("s2", 90), ("s3", 400),
                           ("d1", 5000)):
            elements = [b"m:%d" % rng.randrange(10 ** 9)
                        for _ in range(size)]
            for i in range(0, size, 100):
                same("PFADD", name, *elements[i:i + 100])
        same("PFMERGE", "m1", "s1", "s2")
        same("GET", "m1")
        same("PFCOUNT", "m1")
        same("PFMERGE", "m1", "s3")            # into an existing sparse HLL
        same("GET", "m1")
        same("PFMERGE", "m2", "s1", "d1")      # a dense source: dense result
        same("PFDEBUG", "ENCODING", "m2")
        same("GET", "m2")
        same("PFMERGE", "s2", "d1")            # sparse dest made dense
        same("GET", "s2")
        same("PFMERGE", "empty")
        same("GET", "empty")
        same("PFMERGE", "empty2", "missing")
        same("PFCOUNT", "empty2")
        same("PFMERGE", "d1", "s1", "s3")
        same("PFCOUNT", "d1")
        same("CONFIG", "SET", "hll-sparse-max-bytes", "40")
        same("PFMERGE", "small", "s1", "s2")   # outgrows 40 bytes: dense
        same("PFDEBUG", "ENCODING", "small")
        same("GET", "small")
        same("PFADD", "tiny", "a", "b", "c", "d", "e", "f", "g", "h", "i")
        same("PFDEBUG", "ENCODING", "tiny")
        same("GET", "tiny")

    def test_pfdebug_selftest_errors(self):
        same = self.same
        same("PFADD", "h", "a", "b", "c")
        same("PFDEBUG", "DECODE", "h")
        same("PFDEBUG", "ENCODING", "h")
        regs = same("PFDEBUG", "GETREG", "h")
        self.assertEqual(len(regs), 16384)
        same("PFDEBUG", "ENCODING", "h")       # GETREG made it dense
        same("PFDEBUG", "DECODE", "h")
        same("PFADD", "g", "x")
        same("PFDEBUG", "TODENSE", "g")
        same("PFDEBUG", "TODENSE", "g")
        same("GET", "g")
        same("PFDEBUG", "nope", "g")
        same("PFDEBUG", "ENCODING", "missing")
        same("PFDEBUG", "GETREG")
        same("PFSELFTEST")
        same("PFSELFTEST", "x")
        # Not an HLL, and corrupted HLLs.
        same("SET", "str", "hello world, not an HLL")
        for command in (("PFADD", "str", "a"), ("PFCOUNT", "str"),
                        ("PFCOUNT", "str", "h"), ("PFMERGE", "str", "h"),
                        ("PFMERGE", "x", "str"),
                        ("PFDEBUG", "GETREG", "str")):
            same(*command)
        same("SET", "num", "12345")
        same("PFADD", "num", "a")
        same("LPUSH", "list", "x")
        same("PFADD", "list", "a")
        same("PFCOUNT", "list")
        same("PFMERGE", "list", "h")
        header = b"HYLL\x01\x00\x00\x00" + b"\x00" * 7 + b"\x80"
        corrupt = {
            "short": header + b"\x7f\xfe",           # 16383 registers
            "long": header + b"\x7f\xff\x00",        # 16385 registers
            "val": header + b"\xff" * 5000,          # runs past the end
            "cut": header + b"\x7f",                 # truncated XZERO
            "dense_len": b"HYLL\x00" + b"\x00" * 11 + b"\x00" * 100,
            "encoding": b"HYLL\x02" + b"\x00" * 30,
        }
        for name, payload in corrupt.items():
            self.both("SET", name, payload)
            same("PFCOUNT", name)
            same("PFADD", name, "a", "b")
            same("PFCOUNT", name, "h")
            same("PFMERGE", "dst", name)
            same("PFDEBUG", "TODENSE", name)
            same("PFDEBUG", "DECODE", name)
        # A valid header with a stale cache on a dense value of max
        # registers (the estimator's edge).
        dense = b"HYLL\x00\x00\x00\x00" + b"\x00" * 7 + b"\x80" + \
            b"\xff" * 12288
        self.both("SET", "full", dense)
        same("PFCOUNT", "full")
        same("PFCOUNT", "full", "h")

    def test_interop_copies(self):
        """HLLs built on one server, copied to the other with GET/SET and
        DUMP/RESTORE, count the same there."""
        rng = random.Random(9)
        pairs = ((self.theirs, self.ours), (self.ours, self.theirs))
        for size in (5, 300, 3000, 20000):
            for source, target in pairs:
                key = f"i{size}"
                elements = [b"x:%d" % rng.randrange(10 ** 12)
                            for _ in range(size)]
                for i in range(0, size, 500):
                    source.pfadd(key, *elements[i:i + 500])
                count = source.pfcount(key)
                data = source.get(key)
                target.set("copy", data)
                self.assertEqual(target.pfcount("copy"), count)
                target.delete("copy")
                target.set("copy", data)
                target.pfadd("copy", b"one-more")
                source.pfadd(key, b"one-more")
                self.assertEqual(target.get("copy"), source.get(key))
                self.assertEqual(target.pfcount("copy"), source.pfcount(key))
                payload = source.dump(key)
                target.restore("restored", 0, payload, replace=True)
                self.assertEqual(target.pfcount("restored"),
                                 source.pfcount(key))
                self.assertEqual(target.get("restored"), source.get(key))
                target.pfmerge("merged", "restored", "copy")
                self.assertEqual(target.pfcount("merged"),
                                 source.pfcount(key))
                source.delete(key)
                target.delete("copy", "restored", "merged")
