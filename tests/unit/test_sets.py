"""The set commands (rcluster/commands/sets.py) through a Server on a
MemoryReactorClock: exact replies and error texts, RESP2/RESP3 shapes,
Redis's intset ordering, SSCAN cursors and WATCH.  Expected bytes were
checked against redis-server 7.0.15."""
from rcluster.commands.scanning import hash_window, parse_cursor
from rcluster.commands.table import CommandError
from tests.protocol.helpers import ServerTestCase, bulks

WRONGTYPE = (b"-WRONGTYPE Operation against a key holding the wrong kind "
             b"of value\r\n")
SYNTAX = b"-ERR syntax error\r\n"
NOT_INT = b"-ERR value is not an integer or out of range\r\n"
EMPTY = b"*0\r\n"


class MembershipTests(ServerTestCase):
    def test_sadd_counts_new_members_only(self):
        self.assertEqual(self.raw("SADD", "s", "a", "b", "a"), b":2\r\n")
        self.assertEqual(self.raw("SADD", "s", "b", "c"), b":1\r\n")
        self.assertEqual(self.ks.lookup(b"s"), {b"a", b"b", b"c"})
        self.assertEqual(self.raw("SCARD", "s"), b":3\r\n")
        self.assertEqual(self.raw("SCARD", "nokey"), b":0\r\n")

    def test_srem_deletes_the_emptied_key(self):
        self.raw("SADD", "s", "a", "b")
        self.assertEqual(self.raw("SREM", "s", "a", "a", "x"), b":1\r\n")
        self.assertEqual(self.raw("SREM", "s", "b"), b":1\r\n")
        self.assertIsNone(self.ks.lookup(b"s"))
        self.assertEqual(self.raw("SREM", "s", "b"), b":0\r\n")

    def test_sismember_and_smismember(self):
        self.raw("SADD", "s", "a")
        self.assertEqual(self.raw("SISMEMBER", "s", "a"), b":1\r\n")
        self.assertEqual(self.raw("SISMEMBER", "s", "b"), b":0\r\n")
        self.assertEqual(self.raw("SISMEMBER", "nokey", "b"), b":0\r\n")
        self.assertEqual(self.raw("SMISMEMBER", "s", "b", "a"),
                         b"*2\r\n:0\r\n:1\r\n")
        self.assertEqual(self.raw("SMISMEMBER", "nokey", "a"), b"*1\r\n:0\r\n")

    def test_wrong_type(self):
        self.raw("SET", "str", "v")
        for args in (("SADD", "str", "a"), ("SREM", "str", "a"),
                     ("SCARD", "str"), ("SISMEMBER", "str", "a"),
                     ("SMISMEMBER", "str", "a"), ("SMEMBERS", "str"),
                     ("SPOP", "str"), ("SRANDMEMBER", "str"),
                     ("SINTER", "str"), ("SUNION", "nokey", "str"),
                     ("SSCAN", "str", 0)):
            self.assertEqual(self.raw(*args), WRONGTYPE, args)
        self.assertEqual(self.ks.lookup(b"str"), b"v")

    def test_arity(self):
        self.assertEqual(self.raw("SADD", "s"),
                         b"-ERR wrong number of arguments for 'sadd' "
                         b"command\r\n")


class ListingTests(ServerTestCase):
    def test_integer_sets_list_in_numeric_order(self):
        # Redis keeps them in a sorted intset.
        self.raw("SADD", "s", 10, 3, -5, 2)
        self.assertEqual(self.raw("SMEMBERS", "s"), bulks(-5, 2, 3, 10))
        self.assertEqual(self.raw("SUNION", "s"), bulks(-5, 2, 3, 10))

    def test_resp3_set_shapes(self):
        client = self.connect(resp3=True)
        self.raw("SADD", "s", 2, 1, client=client)
        self.assertEqual(self.raw("SMEMBERS", "s", client=client),
                         bulks(1, 2, prefix=b"~"))
        self.assertEqual(self.raw("SMEMBERS", "nokey", client=client),
                         b"~0\r\n")
        self.assertEqual(self.raw("SINTER", "s", "nokey", client=client),
                         b"~0\r\n")
        self.assertEqual(self.raw("SPOP", "s", 0, client=client), b"~0\r\n")
        self.assertEqual(self.raw("SPOP", "nokey", client=client), b"_\r\n")
        self.assertEqual(self.raw("SRANDMEMBER", "s", 5, client=client),
                         bulks(1, 2))
        self.assertEqual(self.raw("SPOP", "s", 5, client=client),
                         bulks(1, 2, prefix=b"~"))

    def test_smembers_of_a_missing_key(self):
        self.assertEqual(self.raw("SMEMBERS", "nokey"), EMPTY)

    def test_mixed_members(self):
        self.raw("SADD", "s", "b", "a", 1)
        self.assertEqual(sorted(self.call("SMEMBERS", "s")),
                         [b"1", b"a", b"b"])

    def test_intset_order_needs_canonical_integers(self):
        self.raw("SADD", "s", "3", "01")
        self.assertEqual(sorted(self.call("SMEMBERS", "s")), [b"01", b"3"])


class MoveTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.raw("SADD", "src", "a", "b")
        self.raw("SADD", "dst", "b")

    def test_smove(self):
        self.assertEqual(self.raw("SMOVE", "src", "dst", "a"), b":1\r\n")
        self.assertEqual(self.ks.lookup(b"src"), {b"b"})
        self.assertEqual(self.ks.lookup(b"dst"), {b"a", b"b"})

    def test_smove_member_already_there_and_last_member(self):
        self.raw("SREM", "src", "a")
        self.assertEqual(self.raw("SMOVE", "src", "dst", "b"), b":1\r\n")
        self.assertIsNone(self.ks.lookup(b"src"))
        self.assertEqual(self.ks.lookup(b"dst"), {b"b"})

    def test_smove_creates_the_destination(self):
        self.assertEqual(self.raw("SMOVE", "src", "new", "a"), b":1\r\n")
        self.assertEqual(self.ks.lookup(b"new"), {b"a"})

    def test_smove_missing_member_or_source(self):
        self.assertEqual(self.raw("SMOVE", "src", "dst", "x"), b":0\r\n")
        self.assertEqual(self.raw("SMOVE", "nokey", "dst", "a"), b":0\r\n")

    def test_smove_to_itself(self):
        self.assertEqual(self.raw("SMOVE", "src", "src", "a"), b":1\r\n")
        self.assertEqual(self.raw("SMOVE", "src", "src", "x"), b":0\r\n")
        self.assertEqual(self.ks.lookup(b"src"), {b"a", b"b"})

    def test_smove_wrong_types(self):
        self.raw("SET", "str", "v")
        # A missing source answers 0 before any type check, as in Redis.
        self.assertEqual(self.raw("SMOVE", "nokey", "str", "a"), b":0\r\n")
        self.assertEqual(self.raw("SMOVE", "src", "str", "a"), WRONGTYPE)
        self.assertEqual(self.raw("SMOVE", "str", "dst", "a"), WRONGTYPE)
        self.assertEqual(self.ks.lookup(b"src"), {b"a", b"b"})


class RandomTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.members = {b"%d" % i for i in range(20)}
        self.raw("SADD", "s", *sorted(self.members))

    def test_spop_one(self):
        popped = self.call("SPOP", "s")
        self.assertIn(popped, self.members)
        self.assertEqual(self.ks.lookup(b"s"), self.members - {popped})
        self.assertEqual(self.raw("SPOP", "nokey"), b"$-1\r\n")

    def test_spop_last_member_deletes_the_key(self):
        self.raw("SADD", "one", "x")
        self.assertEqual(self.raw("SPOP", "one"), b"$1\r\nx\r\n")
        self.assertIsNone(self.ks.lookup(b"one"))

    def test_spop_count(self):
        popped = self.call("SPOP", "s", 5)
        self.assertEqual(len(set(popped)), 5)
        self.assertEqual(self.ks.lookup(b"s") | set(popped), self.members)
        self.assertEqual(self.ks.lookup(b"s") & set(popped), set())

    def test_spop_count_larger_than_the_set(self):
        self.assertEqual(self.raw("SPOP", "s", 100),
                         bulks(*range(20)))
        self.assertIsNone(self.ks.lookup(b"s"))

    def test_spop_errors(self):
        self.assertEqual(self.raw("SPOP", "s", -1),
                         b"-ERR value is out of range, must be positive\r\n")
        self.assertEqual(self.raw("SPOP", "s", "x"),
                         b"-ERR value is out of range, must be positive\r\n")
        self.assertEqual(self.raw("SPOP", "s", 1, 2), SYNTAX)
        self.assertEqual(self.raw("SPOP", "s", 0), EMPTY)
        self.assertEqual(self.raw("SPOP", "nokey", 3), EMPTY)
        self.assertEqual(self.ks.lookup(b"s"), self.members)

    def test_srandmember(self):
        self.assertIn(self.call("SRANDMEMBER", "s"), self.members)
        self.assertEqual(self.raw("SRANDMEMBER", "nokey"), b"$-1\r\n")
        self.assertEqual(self.ks.lookup(b"s"), self.members)

    def test_srandmember_positive_count_is_distinct(self):
        picked = self.call("SRANDMEMBER", "s", 7)
        self.assertEqual(len(picked), 7)
        self.assertEqual(len(set(picked)), 7)
        self.assertTrue(set(picked) <= self.members)
        self.assertEqual(self.raw("SRANDMEMBER", "s", 20), bulks(*range(20)))
        self.assertEqual(self.raw("SRANDMEMBER", "s", 21), bulks(*range(20)))

    def test_srandmember_negative_count_repeats(self):
        self.raw("SADD", "one", "x")
        self.assertEqual(self.raw("SRANDMEMBER", "one", -3),
                         bulks("x", "x", "x"))
        picked = self.call("SRANDMEMBER", "s", -50)
        self.assertEqual(len(picked), 50)
        self.assertTrue(set(picked) <= self.members)

    def test_srandmember_count_edge_cases(self):
        self.assertEqual(self.raw("SRANDMEMBER", "s", 0), EMPTY)
        self.assertEqual(self.raw("SRANDMEMBER", "nokey", 5), EMPTY)
        self.assertEqual(self.raw("SRANDMEMBER", "s", "x"), NOT_INT)
        self.assertEqual(self.raw("SRANDMEMBER", "s", 1, 2), SYNTAX)
        self.assertEqual(
            self.raw("SRANDMEMBER", "s", -2**63),
            b"-ERR value is out of range, value must between "
            b"-9223372036854775807 and 9223372036854775807\r\n")

    def test_big_sets_pop_everything_exactly_once(self):
        members = {b"m%d" % i for i in range(1500)}
        self.raw("SADD", "big", *members)
        popped = [self.call("SPOP", "big") for _ in range(1500)]
        self.assertEqual(set(popped), members)
        self.assertIsNone(self.ks.lookup(b"big"))


class AlgebraTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.raw("SADD", "a", 1, 2, 3, 4)
        self.raw("SADD", "b", 3, 4, 5)
        self.raw("SADD", "c", 4, 6)

    def test_sinter(self):
        self.assertEqual(self.raw("SINTER", "a", "b"), bulks(3, 4))
        self.assertEqual(self.raw("SINTER", "a", "b", "c"), bulks(4))
        self.assertEqual(self.raw("SINTER", "a", "a"), bulks(1, 2, 3, 4))
        self.assertEqual(self.raw("SINTER", "a", "nokey"), EMPTY)

    def test_sintercard(self):
        self.assertEqual(self.raw("SINTERCARD", 2, "a", "b"), b":2\r\n")
        self.assertEqual(self.raw("SINTERCARD", 2, "a", "b", "LIMIT", 1),
                         b":1\r\n")
        self.assertEqual(self.raw("SINTERCARD", 2, "a", "b", "LIMIT", 0),
                         b":2\r\n")
        self.assertEqual(self.raw("SINTERCARD", 1, "nokey"), b":0\r\n")

    def test_sintercard_errors(self):
        numkeys = b"-ERR numkeys should be greater than 0\r\n"
        self.assertEqual(self.raw("SINTERCARD", 0, "a"), numkeys)
        self.assertEqual(self.raw("SINTERCARD", "x", "a"), numkeys)
        self.assertEqual(self.raw("SINTERCARD", 3, "a", "b"),
                         b"-ERR Number of keys can't be greater than number "
                         b"of args\r\n")
        self.assertEqual(self.raw("SINTERCARD", 1, "a", "LIMIT", -1),
                         b"-ERR LIMIT can't be negative\r\n")
        self.assertEqual(self.raw("SINTERCARD", 1, "a", "LIMIT"), SYNTAX)
        self.assertEqual(self.raw("SINTERCARD", 1, "a", "FOO", 1), SYNTAX)

    def test_sunion_and_sdiff(self):
        self.assertEqual(self.raw("SUNION", "a", "b", "nokey"),
                         bulks(1, 2, 3, 4, 5))
        self.assertEqual(self.raw("SDIFF", "a", "b", "c"), bulks(1, 2))
        self.assertEqual(self.raw("SDIFF", "a", "nokey"), bulks(1, 2, 3, 4))
        self.assertEqual(self.raw("SDIFF", "a", "a"), EMPTY)
        self.assertEqual(self.raw("SDIFF", "nokey", "a"), EMPTY)

    def test_store_commands(self):
        self.assertEqual(self.raw("SINTERSTORE", "d", "a", "b"), b":2\r\n")
        self.assertEqual(self.ks.lookup(b"d"), {b"3", b"4"})
        self.assertEqual(self.raw("SUNIONSTORE", "d", "b", "c"), b":4\r\n")
        self.assertEqual(self.ks.lookup(b"d"), {b"3", b"4", b"5", b"6"})
        self.assertEqual(self.raw("SDIFFSTORE", "d", "a", "b"), b":2\r\n")
        self.assertEqual(self.ks.lookup(b"d"), {b"1", b"2"})
        # The result is a copy, not the source itself.
        self.raw("SUNIONSTORE", "d", "a")
        self.raw("SADD", "a", 99)
        self.assertEqual(self.ks.lookup(b"d"), {b"1", b"2", b"3", b"4"})

    def test_store_an_empty_result_deletes_the_destination(self):
        self.raw("SET", "d", "v")
        self.assertEqual(self.raw("SINTERSTORE", "d", "a", "nokey"), b":0\r\n")
        self.assertIsNone(self.ks.lookup(b"d"))
        self.raw("SET", "d", "v")
        self.assertEqual(self.raw("SDIFFSTORE", "d", "a", "a"), b":0\r\n")
        self.assertIsNone(self.ks.lookup(b"d"))

    def test_store_replaces_any_type_and_clears_the_ttl(self):
        self.raw("SET", "d", "v")
        self.raw("EXPIRE", "d", 100)
        self.assertEqual(self.raw("SUNIONSTORE", "d", "c"), b":2\r\n")
        self.assertEqual(self.raw("TTL", "d"), b":-1\r\n")

    def test_sources_must_be_sets(self):
        self.raw("SET", "str", "v")
        for name in ("SINTER", "SUNION", "SDIFF"):
            self.assertEqual(self.raw(name, "a", "str"), WRONGTYPE)
            self.assertEqual(self.raw(name + "STORE", "d", "a", "str"),
                             WRONGTYPE)
        # Even after a missing key, which empties an intersection.
        self.assertEqual(self.raw("SINTER", "nokey", "str"), WRONGTYPE)
        self.assertEqual(self.raw("SINTERCARD", 2, "a", "str"), WRONGTYPE)
        self.assertIsNone(self.ks.lookup(b"d"))


class ScanTests(ServerTestCase):
    def test_small_integer_set_in_one_call(self):
        self.raw("SADD", "s", 3, 1, 2)
        self.assertEqual(self.raw("SSCAN", "s", 0),
                         b"*2\r\n$1\r\n0\r\n" + bulks(1, 2, 3))
        self.assertEqual(self.raw("SSCAN", "s", 0, "MATCH", "[12]",
                                  "COUNT", 1),
                         b"*2\r\n$1\r\n0\r\n" + bulks(1, 2))

    def test_full_iteration_returns_every_member_once(self):
        members = {b"member:%d" % i for i in range(1000)}
        self.raw("SADD", "s", *members)
        seen, cursor, calls = [], b"0", 0
        while True:
            cursor, found = self.call("SSCAN", "s", cursor, "COUNT", 20)
            seen += found
            calls += 1
            if cursor == b"0":
                break
        self.assertEqual(sorted(seen), sorted(members))
        self.assertGreater(calls, 10)

    def test_members_present_throughout_are_returned(self):
        members = {b"m%d" % i for i in range(600)}
        self.raw("SADD", "s", *members)
        seen, cursor = set(), b"0"
        extra = 0
        while True:
            cursor, found = self.call("SSCAN", "s", cursor)
            seen.update(found)
            self.raw("SADD", "s", b"new%d" % extra)
            self.raw("SREM", "s", b"new%d" % (extra - 5))
            extra += 1
            if cursor == b"0":
                break
        self.assertTrue(members <= seen)

    def test_match(self):
        self.raw("SADD", "s", *[b"k%d" % i for i in range(300)], "other")
        found, cursor = [], b"0"
        while True:
            cursor, page = self.call("SSCAN", "s", cursor, "MATCH", "k1?")
            found += page
            if cursor == b"0":
                break
        self.assertEqual(sorted(found), sorted(b"k1%d" % i for i in range(10)))

    def test_errors(self):
        self.raw("SADD", "s", "a")
        self.assertEqual(self.raw("SSCAN", "s", "x"),
                         b"-ERR invalid cursor\r\n")
        self.assertEqual(self.raw("SSCAN", "s", " 1"),
                         b"-ERR invalid cursor\r\n")
        self.assertEqual(self.raw("SSCAN", "s", 0, "COUNT", 0), SYNTAX)
        self.assertEqual(self.raw("SSCAN", "s", 0, "COUNT", "x"), NOT_INT)
        self.assertEqual(self.raw("SSCAN", "s", 0, "FOO"), SYNTAX)
        self.assertEqual(self.raw("SSCAN", "s", 0, "MATCH"), SYNTAX)
        # A missing key answers before the options are looked at.
        self.assertEqual(self.raw("SSCAN", "nokey", 0, "COUNT", 0),
                         b"*2\r\n$1\r\n0\r\n*0\r\n")

    def test_cursor_parsing_follows_strtoul(self):
        self.assertEqual(parse_cursor(b""), 0)
        self.assertEqual(parse_cursor(b"+7"), 7)
        self.assertEqual(parse_cursor(b"-1"), 2**64 - 1)
        self.assertEqual(parse_cursor(b"18446744073709551615"), 2**64 - 1)
        for bad in (b"18446744073709551616", b"+", b"-", b"1 ", b"0x1"):
            self.assertRaises(CommandError, parse_cursor, bad)

    def test_hash_window_tiles_the_cursor_space(self):
        members = [b"%d" % i for i in range(5000)]
        seen, cursor = [], 0
        while True:
            cursor, found = hash_window(members, cursor, 10)
            seen += found
            if cursor == 0:
                break
        self.assertEqual(sorted(seen), sorted(members))


class WatchTests(ServerTestCase):
    def watch_then(self, *write):
        return self.exec_watching("s", ("SCARD", "s"), *write)

    def test_sadd_invalidates_watch(self):
        self.raw("SADD", "s", "a")
        self.assertEqual(self.watch_then("SADD", "s", "b"), b"*-1\r\n")

    def test_sadd_of_a_present_member_does_not(self):
        self.raw("SADD", "s", "a")
        self.assertEqual(self.watch_then("SADD", "s", "a"), b"*1\r\n:1\r\n")

    def test_store_destination_invalidates_watch(self):
        self.raw("SADD", "x", "a")
        self.assertEqual(self.watch_then("SUNIONSTORE", "s", "x"), b"*-1\r\n")

    def test_spop_invalidates_watch(self):
        self.raw("SADD", "s", "a", "b")
        self.assertEqual(self.watch_then("SPOP", "s"), b"*-1\r\n")


class CommandTableTests(ServerTestCase):
    def keys(self, *argv):
        row, error = self.server.table.lookup([str(a).encode() for a in argv])
        return [k.decode() for k in row.keys([str(a).encode() for a in argv])]

    def test_key_positions(self):
        self.assertEqual(self.keys("SINTERCARD", 2, "a", "b", "LIMIT", 1),
                         ["a", "b"])
        self.assertEqual(self.keys("SINTERSTORE", "d", "a", "b"),
                         ["d", "a", "b"])
        self.assertEqual(self.keys("SMOVE", "a", "b", "m"), ["a", "b"])

    def test_write_keys_of_store_commands_are_the_destination(self):
        row = self.server.table.get("sunionstore")
        self.assertEqual(row.write_keys([b"SUNIONSTORE", b"d", b"a", b"b"]),
                         [b"d"])

    def test_flags(self):
        row = self.server.table.get("sintercard")
        self.assertEqual(row.flags, {"readonly", "movablekeys"})
        self.assertEqual(row.group, "set")
        self.assertEqual(self.server.table.get("spop").tips,
                         ("nondeterministic_output",))
