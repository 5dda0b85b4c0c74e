"""HyperLogLog: the sans-IO representation (rcluster/types/hll.py) and the
commands (rcluster/commands/hyperloglog.py) on a Server with a fake clock.

Byte-for-byte agreement with redis-server is checked by
tests/integration/test_bitmaps_hll.py; here: the pieces, against simple
reference models, and the write-path behaviour."""
import random

from twisted.trial.unittest import TestCase

from rcluster.types import hll
from tests.protocol.helpers import ServerTestCase

# (element, register index, run length), recorded from redis-server 7.0.15
# (PFADD of the element to an empty key, then PFDEBUG DECODE).
RECORDED = [
    (b"a", 12711, 2), (b"hello", 9216, 1), (b"", 5938, 2),
    (b"12345678", 10579, 3), (b"123456789abcdef", 1977, 3),
    (b"\xff" * 17, 5506, 1),
]


def reference_get(value, index):
    """Register index of a dense HLL, bit by bit (LSB first)."""
    regs = int.from_bytes(bytes(value[hll.HDR_SIZE:]), "little")
    return (regs >> (6 * index)) & 63


def dense_from(raw):
    return bytearray(b"HYLL\x00\x00\x00\x00" + bytes(8)) + \
        hll.raw_to_dense(raw)


class RepresentationTests(TestCase):
    def test_hash_and_pattern(self):
        for element, index, run in RECORDED:
            self.assertEqual(hll.pattern(element), (index, run))

    def test_new_is_redis_empty_hll(self):
        value = hll.new()
        self.assertEqual(bytes(value), b"HYLL\x01\x00\x00\x00" +
                         bytes(8) + b"\x7f\xff")
        self.assertTrue(hll.is_hll(value))
        self.assertEqual(hll.count(value), 0)
        self.assertEqual(hll.decode(value), b"Z:16384")

    def test_dense_layout(self):
        rng = random.Random(1)
        raw = bytes(rng.getrandbits(6) for _ in range(hll.REGISTERS))
        value = dense_from(raw)
        self.assertEqual(len(value), hll.DENSE_SIZE)
        self.assertEqual(bytes(hll.dense_to_raw(value)), raw)
        for index in list(range(20)) + [16380, 16381, 16382, 16383]:
            self.assertEqual(hll.dense_get(value, index),
                             reference_get(value, index))
            self.assertEqual(hll.dense_get(value, index), raw[index])

    def test_dense_set_only_raises(self):
        value = dense_from(bytes(hll.REGISTERS))
        self.assertEqual(hll.dense_set(value, 16383, 40), 1)
        self.assertEqual(hll.dense_set(value, 16383, 39), 0)
        self.assertEqual(hll.dense_set(value, 5, 63), 1)
        self.assertEqual(reference_get(value, 16383), 40)
        self.assertEqual(reference_get(value, 5), 63)
        self.assertEqual(reference_get(value, 4), 0)
        self.assertEqual(reference_get(value, 6), 0)

    def test_raw_max(self):
        rng = random.Random(5)
        for ceiling in (0, 1, 7, 32, 63):
            a = [rng.randint(0, ceiling) for _ in range(hll.REGISTERS)]
            b = [rng.randint(0, 63) for _ in range(hll.REGISTERS)]
            for x, y in ((a, b), (b, a), (a, a)):
                self.assertEqual(list(hll.raw_max(bytes(x), bytes(y))),
                                 [max(i, j) for i, j in zip(x, y)])

    def test_sparse_matches_dense(self):
        """The same elements in a sparse and a dense HLL: same registers,
        same count, until the sparse one outgrows hll-sparse-max-bytes."""
        rng = random.Random(2)
        sparse = hll.new()
        dense = dense_from(bytes(hll.REGISTERS))
        for n in range(1, 2001):
            element = b"%d" % rng.getrandbits(40)
            index, run = hll.pattern(element)
            changed_dense = hll.dense_set(dense, index, run)
            self.assertEqual(hll.add(sparse, (element,), 3000), changed_dense)
            if n % 250 == 0:
                self.assertEqual(hll.to_raw(sparse), hll.to_raw(dense))
                self.assertEqual(hll.count(sparse), hll.count(dense))
                self.assertLessEqual(len(sparse) if sparse[4] else 0, 3000)
        self.assertEqual(sparse[4], hll.DENSE)
        self.assertEqual(sparse, dense[:8] + sparse[8:16] + dense[16:])

    def test_sparse_promotes_on_big_run(self):
        value = hll.new()
        self.assertEqual(hll.sparse_set(value, 7, 33, 3000)[0], 1)
        self.assertEqual(value[4], hll.DENSE)
        self.assertEqual(hll.dense_get(value, 7), 33)

    def test_sparse_edits(self):
        value = hll.new()
        for index, count in ((5, 1), (6, 1), (7, 1), (8, 1), (9, 1),
                             (100, 3), (100, 2), (16383, 32)):
            hll.sparse_set(value, index, count, 3000)
        self.assertEqual(hll.decode(value),
                         b"z:5 v:1,4 v:1,1 Z:90 v:3,1 Z:16282 v:32,1")
        self.assertTrue(value[15] & 0x80)       # cache marked stale

    def test_merge_into_follows_sequential_sets(self):
        """merge_into's resumed walk gives the bytes of one sparse_set per
        register from the start (what Redis's PFMERGE does)."""
        rng = random.Random(3)
        for trial in range(60):
            max_bytes = rng.choice([40, 300, 3000])
            dest, source = hll.new(), hll.new()
            for _ in range(rng.randint(0, 300)):
                hll.add(dest, (b"%d" % rng.getrandbits(32),), max_bytes)
            for _ in range(rng.randint(0, 600)):
                if rng.random() < 0.5:
                    hll.sparse_set(source, rng.randrange(300),
                                   rng.randint(1, 4), 10 ** 6)
                else:
                    hll.add(source, (b"s%d" % rng.getrandbits(32),), 10 ** 6)
            raw = hll.to_raw(source)
            merged, expected = bytearray(dest), bytearray(dest)
            hll.merge_into(merged, raw, max_bytes)
            for index, count in enumerate(raw):
                if not count:
                    continue
                if expected[4] == hll.DENSE:
                    hll.dense_set(expected, index, count)
                else:
                    hll.sparse_set(expected, index, count, max_bytes)
            self.assertEqual(merged, expected, f"trial {trial}")

    def test_to_dense_keeps_header(self):
        value = hll.new()
        hll.add(value, (b"x",), 3000)
        hll.set_cached_count(value, 1)
        self.assertTrue(hll.to_dense(value))
        self.assertFalse(hll.to_dense(value))
        self.assertEqual(len(value), hll.DENSE_SIZE)
        self.assertEqual(hll.cached_count(value), 1)
        self.assertEqual(hll.count(value), 1)

    def test_corrupt_sparse(self):
        header = b"HYLL\x01\x00\x00\x00" + bytes(8)
        for body in (b"\x7f\xfe", b"\x7f\xff\x00", b"\xff" * 5000, b"\x7f",
                     b"", b"\x7f\xfb" + b"\xff" * 2):
            value = bytearray(header + body)
            with self.assertRaises(hll.CorruptHLL):
                hll.count(value)
            with self.assertRaises(hll.CorruptHLL):
                hll.to_raw(value)
            with self.assertRaises(hll.CorruptHLL):
                hll.to_dense(value)
            self.assertEqual(bytes(value), header + body)   # untouched

    def test_header_checks(self):
        self.assertFalse(hll.is_hll(b"HYLL"))
        self.assertFalse(hll.is_hll(b"HYLX" + bytes(20)))
        self.assertFalse(hll.is_hll(b"HYLL\x02" + bytes(20)))
        self.assertFalse(hll.is_hll(b"HYLL\x00" + bytes(20)))
        self.assertTrue(hll.is_hll(b"HYLL\x00" + bytes(hll.DENSE_SIZE - 5)))
        self.assertTrue(hll.is_hll(b"HYLL\x01" + bytes(11)))

    def test_estimator(self):
        self.assertEqual(hll.estimate([hll.REGISTERS] + [0] * 63), 0)
        full = [0] * 64
        full[63] = hll.REGISTERS          # no register below 51: z = 0
        self.assertEqual(hll.estimate(full), 1 << 63)
        value = hll.new()
        for n in range(1000):
            hll.add(value, (b"e%d" % n,), 3000)
        self.assertLess(abs(hll.count(value) - 1000), 1000 * 0.05)

    def test_selftest(self):
        self.assertIsNone(hll.selftest(3000, random.Random(4), cycles=2,
                                       elements=2000))


class CommandTests(ServerTestCase):
    def test_pfadd_pfcount(self):
        self.assertEqual(self.call("PFADD", "h"), 1)
        self.assertEqual(self.call("PFADD", "h"), 0)
        self.assertEqual(self.call("PFADD", "h", "a", "b", "c"), 1)
        self.assertEqual(self.call("PFADD", "h", "a"), 0)
        self.assertEqual(self.call("PFCOUNT", "h"), 3)
        self.assertEqual(self.call("PFCOUNT", "h", "nokey"), 3)
        self.assertEqual(self.call("PFCOUNT", "nokey"), 0)
        self.assertEqual(self.call("TYPE", "h"), b"string")
        self.assertEqual(self.call("OBJECT", "ENCODING", "h"), b"raw")
        self.assertIsInstance(self.ks.lookup(b"h"), bytearray)
        self.assertEqual(self.raw("PFDEBUG", "ENCODING", "h"), b"+sparse\r\n")

    def test_edits_in_place(self):
        self.call("PFADD", "h", "a")
        value = self.ks.lookup(b"h")
        for n in range(3000):
            self.call("PFADD", "h", "e%d" % n)
        self.assertIs(self.ks.lookup(b"h"), value)
        self.assertEqual(value[4], hll.DENSE)
        self.assertEqual(self.call("PFCOUNT", "h"), hll.count(value))

    def test_copied_bytes_value(self):
        """An HLL written with SET (bytes) is used, then edited in place."""
        source = hll.new()
        hll.add(source, (b"x",), 3000)
        self.call("SET", "h", bytes(source))
        self.assertEqual(self.call("PFCOUNT", "h"), 1)
        self.assertEqual(self.call("PFADD", "h", "y"), 1)
        self.assertEqual(self.call("PFCOUNT", "h"), 2)
        self.assertEqual(self.call("GET", "h")[:4], b"HYLL")

    def test_propagation(self):
        sent = self.capture_propagation()
        self.call("PFADD", "h", "a")
        self.call("PFADD", "h", "a")         # no change: not propagated
        self.call("PFCOUNT", "h")            # cache written: propagated
        self.call("PFCOUNT", "h")            # from the cache: not
        self.call("PFMERGE", "m", "h")
        self.call("PFDEBUG", "TODENSE", "m")
        self.call("PFDEBUG", "TODENSE", "m")  # already dense: not
        names = [argv[0].upper() for argv in sent
                 if argv[0].upper() not in (b"MULTI", b"EXEC", b"SELECT")]
        self.assertEqual(names, [b"PFADD", b"PFCOUNT", b"PFMERGE",
                                 b"PFDEBUG"])

    def test_errors(self):
        self.call("SET", "s", "not an hll at all")
        not_hll = "WRONGTYPE Key is not a valid HyperLogLog string value."
        self.assertEqual(self.call("PFADD", "s", "a"), not_hll)
        self.assertEqual(self.raw("PFCOUNT", "s"),
                         b"-" + not_hll.encode() + b"\r\n")
        self.call("SET", "bad", b"HYLL\x01" + bytes(10) + b"\x80\x7f\xfe")
        corrupt = "INVALIDOBJ Corrupted HLL object detected"
        self.assertEqual(self.call("PFCOUNT", "bad"), corrupt)
        self.assertEqual(self.call("PFMERGE", "d", "bad"), corrupt)
        self.assertEqual(self.call("PFDEBUG", "GETREG", "bad"), corrupt)
        self.call("RPUSH", "l", "x")
        self.assertTrue(self.call("PFADD", "l", "a").startswith("WRONGTYPE "
                                                                "Operation"))
        self.assertEqual(self.call("PFDEBUG", "ENCODING", "nokey"),
                         "ERR The specified key does not exist")
        self.call("PFADD", "h", "a")
        self.assertEqual(self.call("PFDEBUG", "what", "h"),
                         "ERR Unknown PFDEBUG subcommand 'what'")
        self.call("PFDEBUG", "TODENSE", "h")
        self.assertEqual(self.call("PFDEBUG", "DECODE", "h"),
                         "ERR HLL encoding is not sparse")

    def test_multi_reply_is_a_snapshot(self):
        self.call("MULTI")
        self.call("PFADD", "h", "a")
        self.call("GET", "h")
        self.call("PFADD", "h", "b")
        self.call("GET", "h")
        first, _, _, second = [r for r in self.call("EXEC")]
        self.assertNotEqual(first, second)
        self.assertEqual(second, bytes(self.ks.lookup(b"h")))
