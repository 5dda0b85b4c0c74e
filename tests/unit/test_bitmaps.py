"""Bitmap commands (rcluster/commands/bitmaps.py) and strings held as
bytearrays, on a Server with a fake clock.

Redis's exact replies are checked against redis-server by
tests/integration/test_bitmaps_hll.py; here: the bit arithmetic against
bit-by-bit reference models, in-place editing, the write path, bounds."""
import random

from twisted.trial.unittest import TestCase

from rcluster.commands import bitmaps
from rcluster.resp.codec import encode
from tests.protocol.helpers import WRONGTYPE, ServerTestCase


def reference_get(data, offset, bits, signed):
    """bitops.c's getUnsignedBitfield/getSignedBitfield, bit by bit."""
    value = 0
    for j in range(bits):
        byte = (offset + j) >> 3
        bit = (data[byte] >> (7 - ((offset + j) & 7))) & 1 \
            if byte < len(data) else 0
        value = (value << 1) | bit
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def reference_set(data, offset, bits, value):
    for j in range(bits):
        bit = (value >> (bits - 1 - j)) & 1
        byte, shift = (offset + j) >> 3, 7 - ((offset + j) & 7)
        data[byte] = (data[byte] & ~(1 << shift)) | (bit << shift)


class FieldTests(TestCase):
    def test_get_and_set_fields(self):
        rng = random.Random(1)
        for _ in range(2000):
            size = rng.randint(0, 20)
            data = bytearray(rng.getrandbits(8) for _ in range(size))
            bits = rng.randint(1, 64)
            offset = rng.randint(0, 160)
            signed = rng.random() < 0.5
            self.assertEqual(bitmaps.get_field(data, offset, bits, signed),
                             reference_get(data, offset, bits, signed))
            need = (offset + bits + 7) // 8
            data += bytes(max(need - len(data), 0))
            expected = bytearray(data)
            value = rng.getrandbits(64)
            bitmaps.set_field(data, offset, bits, value)
            reference_set(expected, offset, bits, value)
            self.assertEqual(data, expected)

    def test_overflow_in_range(self):
        """WRAP is arithmetic modulo 2**bits, SAT clamps, for in-range
        values and increments."""
        rng = random.Random(2)
        for _ in range(3000):
            bits = rng.randint(1, 63)
            signed = rng.random() < 0.5
            if signed:
                low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
                check = bitmaps.signed_overflow
            else:
                low, high = 0, (1 << bits) - 1
                check = bitmaps.unsigned_overflow
            value = rng.randint(low, high)
            incr = rng.randint(-(1 << bits), 1 << bits)
            exact = value + incr
            hit, wrapped = check(value, incr, bits, bitmaps.WRAP)
            hit_sat, saturated = check(value, incr, bits, bitmaps.SAT)
            self.assertEqual(hit, not low <= exact <= high)
            self.assertEqual(hit_sat, hit)
            if hit:
                self.assertEqual((wrapped - exact) % (1 << bits), 0)
                self.assertTrue(low <= wrapped <= high)
                self.assertEqual(saturated, high if exact > high else low)

    def test_signed_64(self):
        top, bottom = 2 ** 63 - 1, -2 ** 63
        self.assertEqual(bitmaps.signed_overflow(top, 1, 64, bitmaps.WRAP),
                         (True, bottom))
        self.assertEqual(bitmaps.signed_overflow(bottom, -1, 64, bitmaps.SAT),
                         (True, bottom))
        self.assertEqual(bitmaps.signed_overflow(top, -1, 64, bitmaps.SAT),
                         (False, None))


class CommandTests(ServerTestCase):
    def test_setbit_edits_in_place(self):
        self.assertEqual(self.call("SETBIT", "k", 7, 1), 0)
        value = self.ks.lookup(b"k")
        self.assertIsInstance(value, bytearray)
        for offset in range(0, 800, 3):
            self.call("SETBIT", "k", offset, 1)
        self.assertIs(self.ks.lookup(b"k"), value)
        self.assertEqual(self.call("GETBIT", "k", 798), 1)
        self.assertEqual(self.call("GETBIT", "k", 799), 0)
        self.assertEqual(self.call("STRLEN", "k"), 100)
        reply = self.raw("GET", "k")
        self.assertTrue(reply.startswith(b"$100\r\n"))
        self.assertEqual(reply[6:-2], bytes(value))

    def test_bytes_value_becomes_bytearray(self):
        self.call("SET", "k", "hello")
        self.assertEqual(self.call("SETBIT", "k", 0, 1), 0)
        self.assertEqual(self.call("GET", "k"), b"\xe8ello")
        self.assertIsInstance(self.ks.lookup(b"k"), bytearray)
        self.assertEqual(self.call("OBJECT", "ENCODING", "k"), b"raw")
        self.assertEqual(self.call("TYPE", "k"), b"string")

    def test_strings_edited_in_place(self):
        self.call("SET", "k", "ab")
        self.call("APPEND", "k", "cd")
        value = self.ks.lookup(b"k")
        self.assertIsInstance(value, bytearray)
        self.call("APPEND", "k", "ef")
        self.call("SETRANGE", "k", 8, "z")
        self.assertIs(self.ks.lookup(b"k"), value)
        self.assertEqual(self.call("GET", "k"), b"abcdef\x00\x00z")
        self.assertEqual(self.call("MGET", "k", "nokey"),
                         [b"abcdef\x00\x00z", None])
        self.assertEqual(self.call("GETRANGE", "k", 0, 1), b"ab")
        self.assertEqual(self.call("SUBSTR", "k", 2, 3), b"cd")
        self.assertEqual(self.call("STRLEN", "k"), 9)
        self.assertEqual(self.call("INCR", "k"),
                         "ERR value is not an integer or out of range")
        self.call("SETRANGE", "n", 0, "41")
        self.assertEqual(self.call("INCR", "n"), 42)
        self.assertEqual(self.call("INCRBYFLOAT", "n", "0.5"), b"42.5")
        self.call("SETBIT", "c", 1, 1)
        self.assertEqual(self.call("COPY", "c", "c2"), 1)
        self.call("SETBIT", "c2", 2, 1)
        self.assertEqual(self.call("GET", "c"), b"@")
        self.assertEqual(self.call("GET", "c2"), b"`")
        self.assertEqual(self.call("GETSET", "c", "x"), b"@")
        self.assertEqual(self.call("SET", "c2", "y", "GET"), b"`")

    def test_replies_are_snapshots(self):
        """A live bytearray is never a reply: later edits in the same
        transaction don't show in earlier replies."""
        self.call("MULTI")
        for args in (("SETBIT", "k", 0, 1), ("GET", "k"),
                     ("SETBIT", "k", 1, 1), ("GETEX", "k"), ("MGET", "k"),
                     ("APPEND", "k", "x"), ("GETRANGE", "k", 0, -1),
                     ("SETRANGE", "k", 0, "A"), ("GET", "k")):
            self.call(*args)
        replies = self.call("EXEC")
        self.assertEqual(replies, [0, b"\x80", 0, b"\xc0", [b"\xc0"], 2,
                                   b"\xc0x", 2, b"Ax"])

    def test_codec_writes_bytearray_bulk(self):
        self.assertEqual(encode(bytearray(b"ab\x00")), b"$3\r\nab\x00\r\n")
        self.assertEqual(encode([bytearray(b"x")], True), b"*1\r\n$1\r\nx\r\n")

    def test_write_path(self):
        sent = self.capture_propagation()
        self.call("SETBIT", "k", 3, 1)
        self.call("SETBIT", "k", 3, 1)       # unchanged: not propagated
        self.call("SETBIT", "k", 100, 0)     # grows the string: propagated
        self.call("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", 0, 9)
        self.call("BITFIELD", "k", "SET", "u8", 0, 7)
        self.call("BITFIELD", "k", "SET", "u8", 0, 7)   # same value: not
        self.call("BITFIELD_RO", "k", "GET", "u8", 0)
        self.call("BITOP", "NOT", "d", "k")
        self.call("BITOP", "AND", "nothing", "nokey")  # no key: not
        ops = [argv[:3] for argv in sent
               if argv[0].upper() not in (b"MULTI", b"EXEC", b"SELECT")]
        self.assertEqual(ops, [[b"SETBIT", b"k", b"3"],
                               [b"SETBIT", b"k", b"100"],
                               [b"BITFIELD", b"k", b"SET"],
                               [b"BITOP", b"NOT", b"d"]])

    def test_offset_bound(self):
        self.server.settings.apply("proto-max-bulk-len", ["1048576"])
        error = "ERR bit offset is not an integer or out of range"
        self.assertEqual(self.call("SETBIT", "k", 8 * 1048576, 1), error)
        self.assertEqual(self.call("SETBIT", "k", 8 * 1048576 - 1, 1), 0)
        self.assertEqual(self.call("STRLEN", "k"), 1048576)
        self.assertEqual(self.call("GETBIT", "k", 8 * 1048576), error)
        self.assertEqual(self.call("BITFIELD", "k", "GET", "u8",
                                   "#1048576"), error)
        self.assertEqual(self.call("BITFIELD", "k", "GET", "u8", "#1048575"),
                         [1])
        self.assertEqual(self.call("BITCOUNT", "k"), 1)
        self.assertEqual(self.call("BITPOS", "k", 1), 8 * 1048576 - 1)

    def test_bitcount_bitpos_large(self):
        self.call("SETBIT", "k", 10 ** 6, 1)
        self.call("SETBIT", "k", 7, 1)
        self.assertEqual(self.call("BITCOUNT", "k"), 2)
        self.assertEqual(self.call("BITCOUNT", "k", 1, -1), 1)
        self.assertEqual(self.call("BITPOS", "k", 1, 1), 10 ** 6)
        self.assertEqual(self.call("BITPOS", "k", 0), 0)
        self.assertEqual(self.call("BITPOS", "k", 1, 8, -1, "BIT"), 10 ** 6)

    def test_bitop(self):
        self.call("SET", "a", b"\xff\x00")
        self.call("SET", "b", b"\x0f")
        self.assertEqual(self.call("BITOP", "XOR", "d", "a", "b"), 2)
        self.assertEqual(self.call("GET", "d"), b"\xf0\x00")
        self.assertEqual(self.call("BITOP", "NOT", "d", "b"), 1)
        self.assertEqual(self.call("GET", "d"), b"\xf0")
        self.assertEqual(self.call("BITOP", "AND", "d", "nokey"), 0)
        self.assertEqual(self.call("EXISTS", "d"), 0)
        self.call("RPUSH", "l", "x")
        self.assertEqual(self.call("BITOP", "OR", "d", "a", "l"), WRONGTYPE)
        self.assertEqual(self.call("SETBIT", "l", 0, 1), WRONGTYPE)
