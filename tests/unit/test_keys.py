"""The generic keyspace commands (rcluster/commands/keys.py), through a
Server on a fake clock: exact replies, exact error texts, lazy and active
expiry driven by the clock."""
from collections import deque

from rcluster.cluster.keyslot import keyslot
from rcluster.zset import ZSet
from tests.protocol.helpers import NOT_INT, NOW, SYNTAX, ServerTestCase

NOW_MS = NOW * 1000


class DelExistsTypeTests(ServerTestCase):
    def test_del_counts_deleted_keys(self):
        self.call("MSET", "a", 1, "b", 2)
        self.assertEqual(self.raw("DEL", "a", "b", "c", "a"), b":2\r\n")
        self.assertEqual(self.call("DBSIZE"), 0)

    def test_unlink_is_del(self):
        self.call("SET", "a", 1)
        self.assertEqual(self.call("UNLINK", "a", "zz"), 1)
        self.assertEqual(self.call("EXISTS", "a"), 0)

    def test_del_of_an_expired_key_expires_it(self):
        self.call("SET", "a", 1, "PX", 100)
        self.clock.advance(1)
        self.assertEqual(self.call("DEL", "a"), 0)
        self.assertEqual(self.server.stats.expired_keys, 1)
        self.assertEqual(len(self.ks), 0)

    def test_del_arity(self):
        self.assertEqual(self.call("DEL"),
                         "ERR wrong number of arguments for 'del' command")

    def test_exists_counts_every_argument(self):
        self.call("SET", "a", 1)
        self.assertEqual(self.call("EXISTS", "a", "a", "b"), 2)
        self.assertEqual((self.server.stats.keyspace_hits,
                          self.server.stats.keyspace_misses), (2, 1))

    def test_touch_counts_existing_keys(self):
        self.call("MSET", "a", 1, "b", 2)
        self.assertEqual(self.call("TOUCH", "a", "b", "c"), 2)

    def test_type_of_each_kind(self):
        self.call("SET", "s", "v")
        self.ks.set(b"l", deque([b"x"]))
        self.ks.set(b"h", {b"f": b"v"})
        self.ks.set(b"S", {b"m"})
        self.ks.set(b"z", ZSet({b"m": 1.0}))
        for key, kind in ((b"s", b"+string"), (b"l", b"+list"),
                          (b"h", b"+hash"), (b"S", b"+set"),
                          (b"z", b"+zset"), (b"nokey", b"+none")):
            self.assertEqual(self.raw("TYPE", key), kind + b"\r\n")

    def test_expired_key_is_missing_everywhere(self):
        self.call("SET", "k", "v", "EX", 10)
        self.clock.advance(10)
        self.assertEqual(self.raw("TYPE", "k"), b"+none\r\n")
        self.assertEqual(self.call("EXISTS", "k"), 0)
        self.assertEqual(self.call("TTL", "k"), -2)
        self.assertEqual(self.call("PERSIST", "k"), 0)
        self.assertEqual(self.call("OBJECT", "ENCODING", "k"), None)
        self.assertEqual(self.call("DBSIZE"), 0)

    def test_active_expiry_removes_untouched_keys(self):
        for i in range(5):
            self.call("SET", f"k{i}", "v", "PX", 250 * (i + 1))
        self.call("SET", "forever", "v")
        self.clock.advance(0.75)   # binary fractions: exact on the fake clock
        self.server.cron()
        self.assertEqual(self.call("DBSIZE"), 3)
        self.assertEqual(self.server.stats.expired_keys, 3)
        self.clock.advance(1)
        self.server.cron()
        self.assertEqual(self.call("KEYS", "*"), [b"forever"])


class ExpireTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.call("SET", "k", "v")

    def test_expire_and_ttl_readers(self):
        self.assertEqual(self.call("EXPIRE", "k", 10), 1)
        self.assertEqual(self.call("TTL", "k"), 10)
        self.assertEqual(self.call("PTTL", "k"), 10000)
        self.assertEqual(self.call("EXPIRETIME", "k"), NOW + 10)
        self.assertEqual(self.call("PEXPIRETIME", "k"), NOW_MS + 10000)
        self.clock.advance(2.5)
        self.assertEqual(self.call("TTL", "k"), 8)   # 7.5 s rounds up
        self.assertEqual(self.call("PTTL", "k"), 7500)

    def test_each_variant_sets_the_same_deadline(self):
        for args in (("EXPIRE", 100), ("PEXPIRE", 100000),
                     ("EXPIREAT", NOW + 100), ("PEXPIREAT", NOW_MS + 100000)):
            self.call("PERSIST", "k")
            self.assertEqual(self.call(args[0], "k", args[1]), 1)
            self.assertEqual(self.call("PEXPIRETIME", "k"), NOW_MS + 100000)

    def test_ttl_rounds_to_the_nearest_second(self):
        self.call("PEXPIRE", "k", 1499)
        self.assertEqual(self.call("TTL", "k"), 1)
        self.call("PEXPIRE", "k", 1500)
        self.assertEqual(self.call("TTL", "k"), 2)

    def test_ttl_of_missing_and_persistent_keys(self):
        self.assertEqual(self.call("TTL", "nokey"), -2)
        self.assertEqual(self.call("PEXPIRETIME", "nokey"), -2)
        self.assertEqual(self.call("TTL", "k"), -1)
        self.assertEqual(self.call("EXPIRETIME", "k"), -1)

    def test_expire_on_a_missing_key(self):
        self.assertEqual(self.call("EXPIRE", "nokey", 10), 0)
        self.assertEqual(self.call("EXISTS", "nokey"), 0)

    def test_deadline_in_the_past_deletes(self):
        for args in (("EXPIRE", -1), ("PEXPIRE", 0), ("EXPIREAT", NOW - 1),
                     ("PEXPIREAT", NOW_MS)):
            self.call("SET", "k", "v")
            self.assertEqual(self.call(args[0], "k", args[1]), 1)
            self.assertEqual(self.call("EXISTS", "k"), 0)

    def test_key_expires_at_its_deadline(self):
        self.call("PEXPIRE", "k", 1000)
        self.clock.advance(0.75)
        self.assertEqual(self.call("GET", "k"), b"v")
        self.clock.advance(0.25)
        self.assertEqual(self.call("GET", "k"), None)
        self.assertEqual(self.server.stats.expired_keys, 1)

    def test_nx_and_xx(self):
        self.assertEqual(self.call("EXPIRE", "k", 10, "XX"), 0)
        self.assertEqual(self.call("EXPIRE", "k", 10, "NX"), 1)
        self.assertEqual(self.call("EXPIRE", "k", 20, "NX"), 0)
        self.assertEqual(self.call("EXPIRE", "k", 30, "xx"), 1)
        self.assertEqual(self.call("TTL", "k"), 30)

    def test_gt_treats_no_ttl_as_infinite(self):
        self.assertEqual(self.call("EXPIRE", "k", 10, "GT"), 0)
        self.assertEqual(self.call("TTL", "k"), -1)
        self.call("EXPIRE", "k", 10)
        self.assertEqual(self.call("EXPIRE", "k", 10, "GT"), 0)
        self.assertEqual(self.call("EXPIRE", "k", 20, "GT"), 1)
        self.assertEqual(self.call("TTL", "k"), 20)

    def test_lt_sets_a_ttl_on_a_persistent_key(self):
        self.assertEqual(self.call("EXPIRE", "k", 50, "LT"), 1)
        self.assertEqual(self.call("EXPIRE", "k", 50, "LT"), 0)
        self.assertEqual(self.call("EXPIRE", "k", 60, "LT"), 0)
        self.assertEqual(self.call("EXPIRE", "k", 40, "LT", "XX"), 1)
        self.assertEqual(self.call("TTL", "k"), 40)

    def test_option_errors(self):
        nx_error = ("ERR NX and XX, GT or LT options at the same time are "
                    "not compatible")
        for options in (("NX", "XX"), ("nx", "gt"), ("LT", "NX")):
            self.assertEqual(self.call("EXPIRE", "k", 10, *options), nx_error)
        self.assertEqual(self.call("PEXPIRE", "k", 10, "GT", "LT", "XX"),
                         "ERR GT and LT options at the same time are not "
                         "compatible")
        self.assertEqual(self.call("EXPIRE", "k", 10, "Foo"),
                         "ERR Unsupported option Foo")
        # Options are parsed before the time.
        self.assertEqual(self.call("EXPIRE", "k", "abc", "foo"),
                         "ERR Unsupported option foo")
        self.assertEqual(self.call("EXPIRE", "k", "abc", "NX"), NOT_INT)
        self.assertEqual(self.call("EXPIRE", "k", "1.5"), NOT_INT)
        self.assertEqual(self.call("TTL", "k"), -1)

    def test_overflow_checks(self):
        error = "ERR invalid expire time in '%s' command"
        self.assertEqual(self.call("EXPIRE", "k", 9223372036854776),
                         error % "expire")
        self.assertEqual(self.call("EXPIREAT", "k", -9223372036854776),
                         error % "expireat")
        self.assertEqual(self.call("PEXPIRE", "k", 2**63 - 1),
                         error % "pexpire")
        # Fits in ms, but not once the current time is added.
        self.assertEqual(self.call("EXPIRE", "k", 2**63 // 1000 - NOW + 1),
                         error % "expire")
        self.assertEqual(self.call("EXPIREAT", "k", 9223372036854775), 1)
        self.assertEqual(self.call("PEXPIRETIME", "k"), 9223372036854775000)
        self.assertEqual(self.call("PEXPIREAT", "k", 2**63 - 1), 1)
        self.assertEqual(self.call("PEXPIREAT", "k", -2**63), 1)
        self.assertEqual(self.call("EXISTS", "k"), 0)

    def test_propagated_as_pexpireat_or_del(self):
        sent = self.capture_propagation()
        self.call("EXPIRE", "k", 10, "NX")
        self.call("PEXPIRE", "k", 5000)
        self.call("PEXPIREAT", "k", NOW_MS + 4000)
        self.call("EXPIREAT", "k", NOW - 5)
        self.assertEqual(sent, [
            [b"PEXPIREAT", b"k", b"%d" % (NOW_MS + 10000), b"NX"],
            [b"PEXPIREAT", b"k", b"%d" % (NOW_MS + 5000)],
            [b"PEXPIREAT", b"k", b"%d" % (NOW_MS + 4000)],
            [b"DEL", b"k"]])

    def test_a_replica_keeps_keys_given_a_past_deadline(self):
        self.ks.replica_mode = True
        self.assertEqual(self.call("EXPIRE", "k", -10), 1)
        self.assertEqual(len(self.ks), 1)
        self.assertEqual(self.call("EXISTS", "k"), 0)

    def test_persist(self):
        self.assertEqual(self.call("PERSIST", "k"), 0)
        self.call("EXPIRE", "k", 10)
        self.assertEqual(self.call("PERSIST", "k"), 1)
        self.assertEqual(self.call("TTL", "k"), -1)
        self.assertEqual(self.call("PERSIST", "nokey"), 0)
        self.clock.advance(20)
        self.assertEqual(self.call("GET", "k"), b"v")


class RenameTests(ServerTestCase):
    def test_rename_moves_value_and_ttl(self):
        self.call("SET", "a", "v", "EX", 100)
        self.assertEqual(self.raw("RENAME", "a", "b"), b"+OK\r\n")
        self.assertEqual(self.call("GET", "a"), None)
        self.assertEqual(self.call("GET", "b"), b"v")
        self.assertEqual(self.call("TTL", "b"), 100)
        self.assertEqual(self.call("DBSIZE"), 1)

    def test_rename_overwrites_and_drops_the_old_ttl(self):
        self.call("SET", "a", "new")
        self.call("SET", "b", "old", "EX", 100)
        self.call("RENAME", "a", "b")
        self.assertEqual(self.call("GET", "b"), b"new")
        self.assertEqual(self.call("TTL", "b"), -1)

    def test_rename_a_missing_key(self):
        self.assertEqual(self.call("RENAME", "nokey", "b"), "ERR no such key")
        self.assertEqual(self.call("RENAMENX", "nokey", "b"),
                         "ERR no such key")
        self.assertEqual(self.call("RENAME", "nokey", "nokey"),
                         "ERR no such key")

    def test_rename_onto_itself(self):
        self.call("SET", "a", "v", "EX", 100)
        self.assertEqual(self.raw("RENAME", "a", "a"), b"+OK\r\n")
        self.assertEqual(self.call("RENAMENX", "a", "a"), 0)
        self.assertEqual(self.call("TTL", "a"), 100)

    def test_renamenx(self):
        self.call("MSET", "a", 1, "b", 2)
        self.assertEqual(self.call("RENAMENX", "a", "b"), 0)
        self.assertEqual(self.call("MGET", "a", "b"), [b"1", b"2"])
        self.assertEqual(self.call("RENAMENX", "a", "c"), 1)
        self.assertEqual(self.call("MGET", "a", "c"), [None, b"1"])

    def test_renamenx_over_an_expired_key(self):
        self.call("SET", "a", 1)
        self.call("SET", "b", 2, "PX", 10)
        self.clock.advance(1)
        self.assertEqual(self.call("RENAMENX", "a", "b"), 1)
        self.assertEqual(self.call("TTL", "b"), -1)

    def test_rename_of_an_expired_key(self):
        self.call("SET", "a", 1, "PX", 10)
        self.clock.advance(1)
        self.assertEqual(self.call("RENAME", "a", "b"), "ERR no such key")

    def test_rename_moves_containers(self):
        self.ks.set(b"l", deque([b"x", b"y"]))
        self.call("RENAME", "l", "m")
        self.assertEqual(self.ks.lookup(b"m"), deque([b"x", b"y"]))

    def test_key_specs(self):
        row = self.server.table.get("rename")
        argv = [b"RENAME", b"a", b"b"]
        self.assertEqual(row.keys(argv), [b"a", b"b"])
        self.assertEqual(row.write_keys(argv), [b"a", b"b"])


class CopyMoveTests(ServerTestCase):
    SAME = "ERR source and destination objects are the same"

    def test_copy_a_string_with_its_ttl(self):
        self.call("SET", "a", "v", "EX", 100)
        self.assertEqual(self.call("COPY", "a", "b"), 1)
        self.assertEqual(self.call("MGET", "a", "b"), [b"v", b"v"])
        self.assertEqual(self.call("TTL", "b"), 100)

    def test_copies_are_independent(self):
        values = {b"l": deque([b"x"]), b"h": {b"f": b"v"}, b"s": {b"m"},
                  b"z": ZSet({b"m": 1.0})}
        for key, value in values.items():
            self.ks.set(key, value)
            self.assertEqual(self.call("COPY", key, key + b"2"), 1)
            copy = self.ks.lookup(key + b"2")
            self.assertIsNot(copy, value)
            self.assertEqual(type(copy), type(value))
        self.ks.lookup(b"l2").append(b"y")
        self.ks.lookup(b"h2")[b"g"] = b"w"
        self.ks.lookup(b"s2").add(b"n")
        self.ks.lookup(b"z2").add(b"n", 2.0)
        self.assertEqual(values[b"l"], deque([b"x"]))
        self.assertEqual(values[b"h"], {b"f": b"v"})
        self.assertEqual(values[b"s"], {b"m"})
        self.assertEqual(list(values[b"z"]), [(b"m", 1.0)])
        self.assertEqual(list(self.ks.lookup(b"z2")), [(b"m", 1.0),
                                                       (b"n", 2.0)])

    def test_copy_onto_an_existing_key(self):
        self.call("MSET", "a", 1, "b", 2)
        self.call("EXPIRE", "b", 100)
        self.assertEqual(self.call("COPY", "a", "b"), 0)
        self.assertEqual(self.call("GET", "b"), b"2")
        self.assertEqual(self.call("COPY", "a", "b", "REPLACE"), 1)
        self.assertEqual(self.call("GET", "b"), b"1")
        self.assertEqual(self.call("TTL", "b"), -1)

    def test_copy_a_missing_key(self):
        self.assertEqual(self.call("COPY", "nokey", "b", "REPLACE"), 0)
        self.assertEqual(self.call("EXISTS", "b"), 0)

    def test_copy_db_option(self):
        self.call("SET", "a", 1)
        self.assertEqual(self.call("COPY", "a", "b", "DB", 0), 1)
        self.assertEqual(self.call("COPY", "a", "c", "DB", 16),
                         "ERR DB index is out of range")
        self.assertEqual(self.call("COPY", "a", "c", "db", -1),
                         "ERR DB index is out of range")
        self.assertEqual(self.call("COPY", "a", "c", "DB", "x"), NOT_INT)
        self.assertEqual(self.call("COPY", "a", "c", "DB", 2**31),
                         "ERR value is out of range, value must between "
                         "-2147483648 and 2147483647")
        self.assertEqual(self.call("EXISTS", "c"), 0)

    def test_copy_errors(self):
        self.call("SET", "a", 1)
        self.assertEqual(self.call("COPY", "a", "a"), self.SAME)
        self.assertEqual(self.call("COPY", "a", "b", "DB"), SYNTAX)
        self.assertEqual(self.call("COPY", "a", "b", "foo"), SYNTAX)
        self.assertEqual(self.call("COPY", "nokey", "nokey"), self.SAME)

    def test_copy_writes_only_its_destination(self):
        row = self.server.table.get("copy")
        argv = [b"COPY", b"a", b"b", b"REPLACE"]
        self.assertEqual(row.keys(argv), [b"a", b"b"])
        self.assertEqual(row.write_keys(argv), [b"b"])

    def test_move_with_a_single_database(self):
        self.call("SET", "a", 1)
        self.assertEqual(self.call("MOVE", "a", 0), self.SAME)
        self.assertEqual(self.call("MOVE", "a", 16),
                         "ERR DB index is out of range")
        self.assertEqual(self.call("MOVE", "a", "x"), NOT_INT)
        self.assertEqual(self.call("MOVE", "a", -2**31 - 1),
                         "ERR value is out of range, value must between "
                         "-2147483648 and 2147483647")
        self.assertEqual(self.call("GET", "a"), b"1")

    def test_move_in_cluster_mode(self):
        self.server.settings.cluster_enabled = True
        self.server.cluster_mode = True
        self.server.dbs.count = 1      # cluster-databases 1, the default
        self.server.router = lambda c, cmd, argv: None
        self.assertEqual(self.call("MOVE", "a", 1),
                         "ERR MOVE is not allowed in cluster mode")


class KeysScanTests(ServerTestCase):
    def fill(self, count):
        self.call("MSET", *[x for i in range(count) for x in (f"key:{i}", i)])

    def test_keys_glob(self):
        self.call("MSET", "hello", 1, "hallo", 2, "hxllo", 3, "world", 4)
        self.assertEqual(sorted(self.call("KEYS", "h[ae]llo")),
                         [b"hallo", b"hello"])
        self.assertEqual(sorted(self.call("KEYS", "h?llo")),
                         [b"hallo", b"hello", b"hxllo"])
        self.assertEqual(self.call("KEYS", "w*"), [b"world"])
        self.assertEqual(len(self.call("KEYS", "*")), 4)
        self.assertEqual(self.call("KEYS", "nothing*"), [])

    def test_keys_skips_expired_keys_without_removing_them(self):
        self.call("SET", "a", 1, "PX", 10)
        self.call("SET", "b", 2)
        self.clock.advance(1)
        self.assertEqual(self.call("KEYS", "*"), [b"b"])
        self.assertEqual(self.call("DBSIZE"), 2)

    def scan_all(self, *options):
        cursor, seen, calls = b"0", [], 0
        while True:
            cursor, keys = self.call("SCAN", cursor, *options)
            seen.extend(keys)
            calls += 1
            if cursor == b"0":
                return seen, calls

    def test_scan_returns_every_key(self):
        self.fill(1000)
        seen, calls = self.scan_all()
        self.assertEqual(sorted(seen), sorted(
            f"key:{i}".encode() for i in range(1000)))
        seen, fewer_calls = self.scan_all("COUNT", 500)
        self.assertEqual(len(set(seen)), 1000)
        self.assertLess(fewer_calls, calls)

    def test_scan_cursor_is_a_slot(self):
        self.call("SET", "a", 1)
        slot = keyslot(b"a")
        self.assertEqual(self.call("SCAN", slot, "COUNT", 1),
                         [b"%d" % (slot + 1), [b"a"]])
        self.assertEqual(self.call("SCAN", slot + 1, "COUNT", 10000),
                         [b"0", []])

    def test_scan_match_and_type(self):
        self.fill(20)
        self.ks.set(b"key:list", deque([b"x"]))
        seen, _ = self.scan_all("MATCH", "key:1*", "COUNT", 1000)
        self.assertEqual(sorted(seen), sorted(
            [b"key:1"] + [b"key:1%d" % i for i in range(10)]))
        seen, _ = self.scan_all("TYPE", "LIST", "COUNT", 1000)
        self.assertEqual(seen, [b"key:list"])
        seen, _ = self.scan_all("TYPE", "nosuchtype", "COUNT", 1000)
        self.assertEqual(seen, [])
        seen, _ = self.scan_all("MATCH", "*", "TYPE", "string")
        self.assertEqual(len(seen), 20)

    def test_scan_skips_and_removes_expired_keys(self):
        self.call("SET", "a", 1, "PX", 10)
        self.call("SET", "b", 2)
        self.clock.advance(1)
        seen, _ = self.scan_all("COUNT", 10000)
        self.assertEqual(seen, [b"b"])
        self.assertEqual(self.call("DBSIZE"), 1)

    def test_scan_cursor_forms(self):
        self.call("SET", "a", 1)
        self.assertEqual(self.call("SCAN", "", "COUNT", 10000), [b"0", [b"a"]])
        self.assertEqual(self.call("SCAN", "+0", "COUNT", 10000),
                         [b"0", [b"a"]])
        # -1 wraps around to 2**64 - 1: past every slot.
        self.assertEqual(self.call("SCAN", "-1"), [b"0", []])
        for bad in (" 1", "1 ", "x", "+", "18446744073709551616", "1.0"):
            self.assertEqual(self.call("SCAN", bad), "ERR invalid cursor")

    def test_scan_option_errors(self):
        self.assertEqual(self.call("SCAN", 0, "COUNT", 0), SYNTAX)
        self.assertEqual(self.call("SCAN", 0, "COUNT", "x"), NOT_INT)
        self.assertEqual(self.call("SCAN", 0, "MATCH"), SYNTAX)
        self.assertEqual(self.call("SCAN", 0, "FOO", "bar"), SYNTAX)
        self.assertEqual(self.call("SCAN", "x", "FOO"), "ERR invalid cursor")

    def test_randomkey(self):
        self.assertEqual(self.call("RANDOMKEY"), None)
        self.call("SET", "a", 1)
        self.assertEqual(self.call("RANDOMKEY"), b"a")
        self.fill(10)
        self.assertIn(self.call("RANDOMKEY"), self.call("KEYS", "*"))

    def test_randomkey_with_only_expired_keys(self):
        self.call("SET", "a", 1, "PX", 10)
        self.clock.advance(1)
        self.assertEqual(self.call("RANDOMKEY"), None)
        self.assertEqual(self.call("DBSIZE"), 0)

    def test_dbsize_counts_keys_not_yet_expired_away(self):
        self.fill(3)
        self.call("PEXPIRE", "key:0", 10)
        self.assertEqual(self.call("DBSIZE"), 3)
        self.clock.advance(1)
        self.assertEqual(self.call("DBSIZE"), 3)
        self.server.cron()
        self.assertEqual(self.call("DBSIZE"), 2)


class FlushTests(ServerTestCase):
    def test_flushall_and_flushdb(self):
        for args in (("FLUSHALL",), ("FLUSHDB",), ("FLUSHALL", "ASYNC"),
                     ("flushdb", "sync"), ("FLUSHALL", "Sync")):
            self.call("MSET", "a", 1, "b", 2)
            self.call("EXPIRE", "a", 10)
            self.assertEqual(self.raw(*args), b"+OK\r\n")
            self.assertEqual(self.call("DBSIZE"), 0)
            self.assertEqual(self.ks.expires, {})

    def test_flush_syntax(self):
        self.call("SET", "a", 1)
        for args in (("FLUSHALL", "x"), ("FLUSHALL", "SYNC", "ASYNC"),
                     ("FLUSHDB", "now")):
            self.assertEqual(self.call(*args), SYNTAX)
        self.assertEqual(self.call("DBSIZE"), 1)

    def test_flush_is_propagated_even_when_empty(self):
        sent = self.capture_propagation()
        self.call("FLUSHALL")
        self.call("FLUSHDB", "ASYNC")
        self.assertEqual(sent, [[b"FLUSHALL"], [b"FLUSHDB", b"ASYNC"]])


class ObjectTests(ServerTestCase):
    def encoding(self, key):
        return self.call("OBJECT", "ENCODING", key)

    def test_string_encodings(self):
        for value, expected in ((b"123", b"int"), (b"-5", b"int"),
                                (b"9223372036854775807", b"int"),
                                (b"9223372036854775808", b"embstr"),
                                (b"0123", b"embstr"), (b"1.5", b"embstr"),
                                (b"x" * 44, b"embstr"), (b"x" * 45, b"raw")):
            self.call("SET", "s", value)
            self.assertEqual(self.encoding("s"), expected, value)

    def test_list_is_always_a_quicklist(self):
        self.ks.set(b"l", deque([b"x"]))
        self.assertEqual(self.encoding("l"), b"quicklist")

    def test_hash_encodings_follow_the_thresholds(self):
        settings = self.server.settings
        settings.hash_max_listpack_entries = 2
        settings.hash_max_listpack_value = 5
        self.ks.set(b"h", {b"a": b"1", b"b": b"12345"})
        self.assertEqual(self.encoding("h"), b"listpack")
        self.ks.set(b"h", {b"a": b"1", b"b": b"2", b"c": b"3"})
        self.assertEqual(self.encoding("h"), b"hashtable")
        self.ks.set(b"h", {b"a": b"123456"})
        self.assertEqual(self.encoding("h"), b"hashtable")
        self.ks.set(b"h", {b"abcdef": b"1"})
        self.assertEqual(self.encoding("h"), b"hashtable")

    def test_set_encodings(self):
        self.server.settings.set_max_intset_entries = 3
        self.ks.set(b"s", {b"1", b"-2", b"3"})
        self.assertEqual(self.encoding("s"), b"intset")
        self.ks.set(b"s", {b"1", b"2", b"3", b"4"})
        self.assertEqual(self.encoding("s"), b"hashtable")
        self.ks.set(b"s", {b"1", b"a"})
        self.assertEqual(self.encoding("s"), b"hashtable")

    def test_zset_reports_its_own_encoding(self):
        self.ks.set(b"z", ZSet({b"m": 1.0}))
        self.assertEqual(self.encoding("z"), b"listpack")
        self.ks.set(b"z", ZSet({b"m": 1.0}, compact=False))
        self.assertEqual(self.encoding("z"), b"skiplist")

    def test_missing_key_is_null(self):
        for sub in ("ENCODING", "REFCOUNT", "IDLETIME", "FREQ"):
            self.assertEqual(self.raw("OBJECT", sub, "nokey"), b"$-1\r\n")

    def test_refcount_of_shared_integers(self):
        self.call("MSET", "small", 9999, "big", 10000, "neg", -1, "s", "x")
        self.assertEqual(self.call("OBJECT", "REFCOUNT", "small"), 2**31 - 1)
        for key in ("big", "neg", "s"):
            self.assertEqual(self.call("OBJECT", "REFCOUNT", key), 1)
        self.server.settings.maxmemory = 1 << 30
        self.server.settings.maxmemory_policy = "allkeys-lru"
        self.assertEqual(self.call("OBJECT", "REFCOUNT", "small"), 1)

    def test_idletime_and_freq_depend_on_the_policy(self):
        self.call("SET", "k", "v")
        self.assertEqual(self.call("OBJECT", "IDLETIME", "k"), 0)
        self.assertEqual(
            self.call("OBJECT", "FREQ", "k"),
            "ERR An LFU maxmemory policy is not selected, access frequency "
            "not tracked. Please note that when switching between policies "
            "at runtime LRU and LFU data will take some time to adjust.")
        self.server.settings.maxmemory_policy = "allkeys-lfu"
        self.assertEqual(self.call("OBJECT", "FREQ", "k"), 5)
        self.assertEqual(
            self.call("OBJECT", "IDLETIME", "k"),
            "ERR An LFU maxmemory policy is selected, idle time not tracked. "
            "Please note that when switching between policies at runtime LRU "
            "and LFU data will take some time to adjust.")

    def test_help(self):
        reply = self.raw("object", "help")
        self.assertTrue(reply.startswith(
            b"*15\r\n+OBJECT <subcommand> [<arg> [value] [opt] ...]. "
            b"Subcommands are:\r\n+ENCODING <key>\r\n+    Return the kind of "
            b"internal representation used in order to store the value\r\n"))
        self.assertTrue(reply.endswith(
            b"+    <key>.\r\n+HELP\r\n+    Prints this help.\r\n"))

    def test_subcommand_errors(self):
        self.assertEqual(self.call("OBJECT", "foo"),
                         "ERR unknown subcommand 'foo'. Try OBJECT HELP.")
        self.assertEqual(self.call("OBJECT", "ENCODING"),
                         "ERR wrong number of arguments for 'object|encoding' "
                         "command")
        self.assertEqual(self.call("OBJECT", "ENCODING", "a", "b"),
                         "ERR wrong number of arguments for 'object|encoding' "
                         "command")

    def test_object_key_position(self):
        row = self.server.table.lookup([b"OBJECT", b"ENCODING", b"k"])[0]
        self.assertEqual(row.keys([b"OBJECT", b"ENCODING", b"k"]), [b"k"])
