"""DUMP / RESTORE / RESTORE-ASKING through a Server on a fake clock: exact
replies and error texts of Redis 7.0, TTL handling and propagation."""
from __future__ import annotations

from rcluster.persistence import rdb
from tests.protocol.helpers import NOT_INT, NOW, SYNTAX, ServerTestCase

NOW_MS = NOW * 1000


class DumpRestoreTests(ServerTestCase):
    def dump(self, key):
        return self.call("DUMP", key)

    def test_dump_missing_key_is_nil(self):
        self.assertEqual(self.raw("DUMP", "nope"), b"$-1\r\n")

    def test_round_trip_every_type(self):
        self.call("SET", "s", "hello")
        self.call("RPUSH", "l", "a", "1", "b")
        self.call("HSET", "h", "f", "v", "n", "2")
        self.call("SADD", "si", "1", "2", "3")
        self.call("SADD", "ss", "a", "b")
        self.call("ZADD", "z", "1", "a", "2.5", "b")
        for key, reader in (("s", ("GET", "s")),
                            ("l", ("LRANGE", "l", 0, -1)),
                            ("h", ("HGETALL", "h")),
                            ("si", ("SMEMBERS", "si")),
                            ("ss", ("SMEMBERS", "ss")),
                            ("z", ("ZRANGE", "z", 0, -1, "WITHSCORES"))):
            payload = self.dump(key)
            self.assertEqual(self.call("RESTORE", key + "2", 0, payload),
                             b"OK")
            before = self.call(*reader)
            after = self.call(reader[0], key + "2", *reader[2:])
            if key.startswith("s") and key != "s":
                before, after = sorted(before), sorted(after)
            self.assertEqual(before, after, key)
            self.assertEqual(self.call("OBJECT", "ENCODING", key),
                             self.call("OBJECT", "ENCODING", key + "2"))

    def test_redis_payload_bytes(self):
        self.call("SET", "s", "hello")
        self.assertEqual(self.dump("s"),
                         bytes.fromhex("000568656c6c6f0a006372df766534200a"))

    def test_string_payloads_of_every_short_length(self):
        # Verbatim, integer-encoded and LZF strings around the 64-byte
        # fast path of load_payload (an LZF payload of 207 bytes has 0xC3
        # = 195 where a short string keeps its length).
        values = [b"x" * n for n in range(300)] + \
            [bytes(range(n)) for n in range(256)] + \
            [b"%d" % n for n in (0, -1, 127, 128, -32768, 2**31 - 1, 2**40)]
        values += [(b"ab" * 150 + bytes(range(n)))[:n + 100]
                   for n in range(60, 200)]
        for value in values:
            payload = rdb.dump_payload(value)
            self.assertEqual(rdb.load_payload(payload), value)
            self.assertEqual(payload, rdb.dump_payload(bytearray(value)))

    def test_busykey_and_replace(self):
        self.call("SET", "a", "1")
        self.call("SET", "b", "2")
        payload = self.dump("a")
        self.assertEqual(self.call("RESTORE", "b", 0, payload),
                         "BUSYKEY Target key name already exists.")
        self.assertEqual(self.call("RESTORE", "b", 0, payload, "REPLACE"),
                         b"OK")
        self.assertEqual(self.call("GET", "b"), b"1")

    def test_error_texts(self):
        self.call("SET", "a", "1")
        payload = self.dump("a")
        self.assertEqual(self.call("RESTORE", "x", -1, payload),
                         "ERR Invalid TTL value, must be >= 0")
        self.assertEqual(self.call("RESTORE", "x", "abc", payload), NOT_INT)
        self.assertEqual(self.call("RESTORE", "x", 0, payload[:-1] + b"\0"),
                         "ERR DUMP payload version or checksum are wrong")
        bad = b"\x63" + payload[1:-10]
        bad += b"\x0a\x00" + rdb.crc64(bad + b"\x0a\x00").to_bytes(8, "little")
        self.assertEqual(self.call("RESTORE", "x", 0, bad),
                         "ERR Bad data format")
        self.assertEqual(self.call("RESTORE", "x", 0, payload, "IDLETIME",
                                   -1),
                         "ERR Invalid IDLETIME value, must be >= 0")
        self.assertEqual(self.call("RESTORE", "x", 0, payload, "FREQ", 256),
                         "ERR Invalid FREQ value, must be >= 0 and <= 255")
        self.assertEqual(self.call("RESTORE", "x", 0, payload, "IDLETIME", 1,
                                   "FREQ", 1), SYNTAX)
        self.assertEqual(self.call("RESTORE", "x", 0, payload, "BOGUS"),
                         SYNTAX)
        self.assertEqual(self.call("RESTORE", "x", 0, payload, "IDLETIME"),
                         SYNTAX)
        self.assertEqual(self.call("RESTORE", "x", 0),
                         "ERR wrong number of arguments for 'restore' "
                         "command")
        self.assertEqual(self.call("EXISTS", "x"), 0)

    def test_options_accepted(self):
        self.call("SET", "a", "1")
        payload = self.dump("a")
        self.assertEqual(self.call("RESTORE", "x", 0, payload, "IDLETIME",
                                   10, "REPLACE"), b"OK")
        self.assertEqual(self.call("RESTORE", "y", 0, payload, "FREQ", 3),
                         b"OK")

    def test_relative_ttl_propagates_absolute(self):
        self.call("SET", "a", "1")
        payload = self.dump("a")
        sent = self.capture_propagation()
        self.assertEqual(self.call("RESTORE", "x", 5000, payload), b"OK")
        self.assertEqual(self.call("PTTL", "x"), 5000)
        self.assertEqual(sent, [[b"RESTORE", b"x", b"%d" % (NOW_MS + 5000),
                                 payload, b"ABSTTL"]])

    def test_absttl(self):
        self.call("SET", "a", "1")
        payload = self.dump("a")
        sent = self.capture_propagation()
        self.call("RESTORE", "x", NOW_MS + 1000, payload, "ABSTTL")
        self.assertEqual(self.call("PTTL", "x"), 1000)
        self.assertEqual(sent[0][-1], b"ABSTTL")
        self.assertEqual(len(sent[0]), 5)

    def test_past_ttl_does_not_create_and_replace_deletes(self):
        self.call("SET", "a", "1")
        payload = self.dump("a")
        sent = self.capture_propagation()
        self.assertEqual(self.call("RESTORE", "x", 1, payload, "ABSTTL"),
                         b"OK")
        self.assertEqual(self.call("EXISTS", "x"), 0)
        self.assertEqual(sent, [])
        self.assertEqual(self.call("RESTORE", "a", 1, payload, "ABSTTL",
                                   "REPLACE"), b"OK")
        self.assertEqual(self.call("EXISTS", "a"), 0)
        self.assertEqual(sent, [[b"DEL", b"a"]])

    def test_restore_asking_and_command_info(self):
        self.call("SET", "a", "1")
        payload = self.dump("a")
        self.assertEqual(self.call("RESTORE-ASKING", "b", 0, payload),
                         b"OK")
        info = self.call("COMMAND", "INFO", "restore-asking", "dump")
        self.assertEqual(info[0][:6], [b"restore-asking", -4,
                                       [b"write", b"denyoom", b"asking"],
                                       1, 1, 1])
        self.assertEqual(info[1][:6], [b"dump", 2, [b"readonly"], 1, 1, 1])
        self.assertEqual(info[0][6], [b"@keyspace", b"@write", b"@slow",
                                      b"@dangerous"])

    def test_object_encoding_agrees_with_dump(self):
        self.call("HSET", "h", "f", "x" * 65)
        self.assertEqual(self.call("OBJECT", "ENCODING", "h"), b"hashtable")
        self.assertEqual(self.dump("h")[0], rdb.TYPE_HASH)
        self.call("SADD", "s", "1", "2")
        self.assertEqual(self.call("OBJECT", "ENCODING", "s"), b"intset")
        self.assertEqual(self.dump("s")[0], rdb.TYPE_SET_INTSET)


class DebugPackedThresholdTests(ServerTestCase):
    directives = {"enable-debug-command": "yes"}

    def test_packed_threshold(self):
        self.addCleanup(rdb.set_packed_threshold, 0)
        self.assertEqual(self.call("DEBUG", "QUICKLIST-PACKED-THRESHOLD",
                                   "1k"), b"OK")
        self.assertEqual(rdb.packed_threshold, 1000)
        self.assertEqual(self.call("DEBUG", "QUICKLIST-PACKED-THRESHOLD",
                                   "5gb"),
                         "ERR argument must be a memory value bigger than 1 "
                         "and smaller than 4gb")
        self.assertEqual(self.call("DEBUG", "QUICKLIST-PACKED-THRESHOLD",
                                   "0"), b"OK")
        self.assertEqual(rdb.packed_threshold, 1 << 30)

    def test_debug_object_matches_redis(self):
        # redis-server 7.0.15's DEBUG OBJECT for the same lists.
        def fields(key):
            text = self.call("DEBUG", "OBJECT", key).decode()
            return dict(f.split(":", 1) for f in text.split()[2:]
                        if not f.startswith(("lru", "at:")))
        self.addCleanup(rdb.set_packed_threshold, 0)
        self.call("RPUSH", "l", "a", "b", "c")
        self.assertEqual(fields("l")["serializedlength"], "19")
        self.call("RPUSH", "m", *[b"x" * 1000] * 20)
        self.assertEqual(fields("m")["serializedlength"], "310")
        self.call("RPUSH", "n", *[b"%d" % i for i in range(3000)])
        self.assertEqual(
            [fields("n")[f] for f in ("serializedlength", "ql_nodes",
                                      "ql_avg_node", "ql_uncompressed_size")],
            ["8893", "2", "1500.00", "8886"])
        self.call("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100")
        self.call("RPUSH", "p", "a", "b" * 200, "c")
        self.assertEqual(
            [fields("p")[f] for f in ("serializedlength", "ql_nodes",
                                      "ql_avg_node", "ql_uncompressed_size")],
            ["39", "3", "1.00", "220"])
