"""The list commands (rcluster/commands/lists.py) through a Server on a
MemoryReactorClock: exact replies and error texts, RESP2 and RESP3 null
shapes, and the blocking commands (wake-ups, FIFO order, timeouts, BLMOVE
chains, MULTI, WATCH, disconnects).  Expected bytes were checked against
redis-server 7.0.15."""
from collections import deque

from tests.protocol.helpers import WRONGTYPE, ServerTestCase, parse, request


class PushPopTests(ServerTestCase):
    def test_push_order_and_lengths(self):
        self.assertEqual(self.raw("LPUSH", "k", "a", "b", "c"), b":3\r\n")
        self.assertEqual(self.raw("RPUSH", "k", "d", "e"), b":5\r\n")
        self.assertEqual(self.call("LRANGE", "k", 0, -1),
                         [b"c", b"b", b"a", b"d", b"e"])
        self.assertEqual(self.ks.lookup(b"k"),
                         deque([b"c", b"b", b"a", b"d", b"e"]))

    def test_pushx_only_on_existing_lists(self):
        self.assertEqual(self.raw("LPUSHX", "k", "a"), b":0\r\n")
        self.assertEqual(self.raw("RPUSHX", "k", "a", "b"), b":0\r\n")
        self.assertIsNone(self.ks.lookup(b"k"))
        self.call("RPUSH", "k", "x")
        self.assertEqual(self.raw("LPUSHX", "k", "a", "b"), b":3\r\n")
        self.assertEqual(self.raw("RPUSHX", "k", "y"), b":4\r\n")
        self.assertEqual(self.call("LRANGE", "k", 0, -1),
                         [b"b", b"a", b"x", b"y"])

    def test_pop_one(self):
        self.call("RPUSH", "k", "a", "b", "c")
        self.assertEqual(self.raw("LPOP", "k"), b"$1\r\na\r\n")
        self.assertEqual(self.raw("RPOP", "k"), b"$1\r\nc\r\n")
        self.assertEqual(self.raw("RPOP", "k"), b"$1\r\nb\r\n")
        self.assertIsNone(self.ks.lookup(b"k"))   # emptied: deleted
        self.assertEqual(self.raw("LPOP", "k"), b"$-1\r\n")

    def test_pop_with_count(self):
        self.call("RPUSH", "k", "a", "b", "c", "d", "e")
        self.assertEqual(self.call("LPOP", "k", 2), [b"a", b"b"])
        self.assertEqual(self.call("RPOP", "k", 2), [b"e", b"d"])
        self.assertEqual(self.raw("LPOP", "k", 0), b"*0\r\n")
        self.assertEqual(self.call("RPOP", "k", 10), [b"c"])
        self.assertIsNone(self.ks.lookup(b"k"))

    def test_pop_null_shapes(self):
        self.assertEqual(self.raw("LPOP", "nokey"), b"$-1\r\n")
        self.assertEqual(self.raw("LPOP", "nokey", 0), b"*-1\r\n")
        self.assertEqual(self.raw("RPOP", "nokey", 3), b"*-1\r\n")
        self.resp3()
        self.assertEqual(self.raw("LPOP", "nokey"), b"_\r\n")
        self.assertEqual(self.raw("RPOP", "nokey", 3), b"_\r\n")

    def test_pop_errors(self):
        self.call("SET", "s", "str")
        self.call("RPUSH", "k", "a")
        for count in ("-1", "x"):
            self.assertEqual(self.call("LPOP", "k", count),
                             "ERR value is out of range, must be positive")
        self.assertEqual(self.call("LPOP", "k", 1, 2),
                         "ERR wrong number of arguments for 'lpop' command")
        self.assertEqual(self.call("RPOP", "s"), WRONGTYPE)
        self.assertEqual(self.call("RPOP", "s", 1), WRONGTYPE)
        self.assertEqual(self.call("LRANGE", "k", 0, -1), [b"a"])


class ReadTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.call("RPUSH", "k", "a", "b", "c", "d", "e")
        self.call("SET", "s", "str")

    def test_llen(self):
        self.assertEqual(self.raw("LLEN", "k"), b":5\r\n")
        self.assertEqual(self.raw("LLEN", "nokey"), b":0\r\n")
        self.assertEqual(self.call("LLEN", "s"), WRONGTYPE)

    def test_lrange(self):
        cases = {(0, -1): b"abcde", (1, 2): b"bc", (-2, -1): b"de",
                 (-100, 100): b"abcde", (2, 1): b"", (5, 10): b"",
                 (-1, -2): b"", (3, 3): b"d", (0, -5): b"a", (0, -6): b"",
                 (-3, 3): b"cd"}
        for (start, end), expected in cases.items():
            self.assertEqual(self.call("LRANGE", "k", start, end),
                             [bytes([x]) for x in expected], (start, end))
        self.assertEqual(self.raw("LRANGE", "nokey", 0, -1), b"*0\r\n")

    def test_lrange_errors_in_redis_order(self):
        # The indexes are parsed first, then the key is looked up.
        self.assertEqual(self.call("LRANGE", "nokey", "x", 1),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.call("LRANGE", "s", 0, 1), WRONGTYPE)

    def test_lindex(self):
        self.assertEqual(self.raw("LINDEX", "k", 0), b"$1\r\na\r\n")
        self.assertEqual(self.raw("LINDEX", "k", -1), b"$1\r\ne\r\n")
        self.assertEqual(self.raw("LINDEX", "k", -5), b"$1\r\na\r\n")
        self.assertEqual(self.raw("LINDEX", "k", 5), b"$-1\r\n")
        self.assertEqual(self.raw("LINDEX", "k", -6), b"$-1\r\n")
        self.assertEqual(self.call("LINDEX", "k", "x"),
                         "ERR value is not an integer or out of range")
        # The key is looked up before the index is parsed.
        self.assertEqual(self.raw("LINDEX", "nokey", "x"), b"$-1\r\n")
        self.assertEqual(self.call("LINDEX", "s", "x"), WRONGTYPE)
        self.resp3()
        self.assertEqual(self.raw("LINDEX", "k", 9), b"_\r\n")

    def test_lpos(self):
        self.call("RPUSH", "p", "a", "b", "c", "1", "2", "3", "c", "c")
        cases = [
            (("c",), 2), (("c", "RANK", 2), 6), (("c", "rank", -1), 7),
            (("c", "RANK", -3), 2), (("c", "RANK", 4), None),
            (("c", "COUNT", 0), [2, 6, 7]), (("c", "COUNT", 2), [2, 6]),
            (("c", "RANK", 2, "COUNT", 0), [6, 7]),
            (("c", "RANK", -1, "COUNT", 0), [7, 6, 2]),
            (("c", "MAXLEN", 1), None), (("c", "MAXLEN", 3), 2),
            (("c", "COUNT", 0, "MAXLEN", 7), [2, 6]),
            (("c", "RANK", -1, "MAXLEN", 2), 7),
            (("x",), None), (("x", "COUNT", 0), []),
            # Redis 7.0 negates LLONG_MIN into itself: it acts as -1.
            (("c", "RANK", -2**63), 7),
            (("c", "RANK", 2**63 - 1), None),
        ]
        for args, expected in cases:
            self.assertEqual(self.call("LPOS", "p", *args), expected, args)

    def test_lpos_errors_and_missing_key(self):
        errors = [
            (("RANK", 0), "ERR RANK can't be zero: use 1 to start from the "
             "first match, 2 from the second ... or use negative to start "
             "from the end of the list"),
            (("RANK", "x"), "ERR value is not an integer or out of range"),
            (("COUNT", -1), "ERR COUNT can't be negative"),
            (("COUNT", "x"), "ERR COUNT can't be negative"),
            (("MAXLEN", -1), "ERR MAXLEN can't be negative"),
            (("MAXLEN", "x"), "ERR MAXLEN can't be negative"),
            (("FOO", 1), "ERR syntax error"),
            (("RANK",), "ERR syntax error"),
        ]
        for args, expected in errors:
            # Options are parsed before the key is looked up.
            self.assertEqual(self.call("LPOS", "nokey", "c", *args), expected)
        self.assertEqual(self.raw("LPOS", "nokey", "c"), b"$-1\r\n")
        self.assertEqual(self.raw("LPOS", "nokey", "c", "COUNT", 1), b"*0\r\n")
        self.assertEqual(self.call("LPOS", "s", "c"), WRONGTYPE)
        self.resp3()
        self.assertEqual(self.raw("LPOS", "k", "zz"), b"_\r\n")


class ChangeTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.call("SET", "s", "str")

    def test_lset(self):
        self.call("RPUSH", "k", "a", "b", "c")
        self.assertEqual(self.raw("LSET", "k", 0, "A"), b"+OK\r\n")
        self.assertEqual(self.raw("LSET", "k", -1, "C"), b"+OK\r\n")
        self.assertEqual(self.call("LRANGE", "k", 0, -1), [b"A", b"b", b"C"])
        self.assertEqual(self.call("LSET", "k", 3, "x"),
                         "ERR index out of range")
        self.assertEqual(self.call("LSET", "k", -4, "x"),
                         "ERR index out of range")
        self.assertEqual(self.call("LSET", "k", "x", "y"),
                         "ERR value is not an integer or out of range")
        # The key is looked up before the index is parsed.
        self.assertEqual(self.call("LSET", "nokey", "x", "y"),
                         "ERR no such key")
        self.assertEqual(self.call("LSET", "s", "x", "y"), WRONGTYPE)

    def test_linsert(self):
        self.call("RPUSH", "k", "a", "b", "a")
        self.assertEqual(self.raw("LINSERT", "k", "BEFORE", "a", "x"),
                         b":4\r\n")
        self.assertEqual(self.raw("LINSERT", "k", "after", "a", "y"),
                         b":5\r\n")
        self.assertEqual(self.call("LRANGE", "k", 0, -1),
                         [b"x", b"a", b"y", b"b", b"a"])
        self.assertEqual(self.raw("LINSERT", "k", "before", "zz", "q"),
                         b":-1\r\n")
        self.assertEqual(self.raw("LINSERT", "nokey", "before", "a", "q"),
                         b":0\r\n")
        self.assertIsNone(self.ks.lookup(b"nokey"))
        # The position word is checked before the key is looked up.
        self.assertEqual(self.call("LINSERT", "s", "middle", "a", "q"),
                         "ERR syntax error")
        self.assertEqual(self.call("LINSERT", "s", "before", "a", "q"),
                         WRONGTYPE)

    def test_lrem(self):
        for count, expected, left in ((2, 2, b"bcada"), (-2, 2, b"abacd"),
                                      (0, 4, b"bcd"), (9, 4, b"bcd")):
            self.call("DEL", "k")
            self.call("RPUSH", "k", *b"abacada".decode())
            self.assertEqual(self.call("LREM", "k", count, "a"), expected)
            self.assertEqual(self.call("LRANGE", "k", 0, -1),
                             [bytes([x]) for x in left], count)
        self.assertEqual(self.call("LREM", "k", 0, "zz"), 0)
        self.call("LREM", "k", 0, "b")
        self.call("LREM", "k", 0, "c")
        self.assertEqual(self.call("LREM", "k", 0, "d"), 1)
        self.assertIsNone(self.ks.lookup(b"k"))
        self.assertEqual(self.call("LREM", "nokey", 0, "a"), 0)
        self.assertEqual(self.call("LREM", "nokey", "x", "a"),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.call("LREM", "s", 0, "a"), WRONGTYPE)

    def test_ltrim(self):
        self.call("RPUSH", "k", 1, 2, 3, 4, 5, 6)
        self.assertEqual(self.raw("LTRIM", "k", 1, -2), b"+OK\r\n")
        self.assertEqual(self.call("LRANGE", "k", 0, -1),
                         [b"2", b"3", b"4", b"5"])
        self.assertEqual(self.raw("LTRIM", "k", -100, 100), b"+OK\r\n")
        self.assertEqual(self.call("LLEN", "k"), 4)
        self.assertEqual(self.raw("LTRIM", "k", 10, 20), b"+OK\r\n")
        self.assertIsNone(self.ks.lookup(b"k"))
        self.assertEqual(self.raw("LTRIM", "nokey", 0, 1), b"+OK\r\n")
        self.assertEqual(self.call("LTRIM", "s", "x", 1),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.call("LTRIM", "s", 0, 1), WRONGTYPE)

    def test_every_command_refuses_other_types(self):
        commands = [("LPUSH", "s", "a"), ("RPUSHX", "s", "a"),
                    ("LINSERT", "s", "before", "a", "b"), ("LLEN", "s"),
                    ("LINDEX", "s", 0), ("LRANGE", "s", 0, 1),
                    ("LPOS", "s", "a"), ("LSET", "s", 0, "a"),
                    ("LREM", "s", 0, "a"), ("LTRIM", "s", 0, 1),
                    ("LPOP", "s"), ("RPOP", "s", 2),
                    ("LMOVE", "s", "d", "left", "left"),
                    ("RPOPLPUSH", "s", "d"), ("LMPOP", 1, "s", "left"),
                    ("BLPOP", "s", 0), ("BRPOP", "s", 0),
                    ("BLMOVE", "s", "d", "left", "left", 0),
                    ("BRPOPLPUSH", "s", "d", 0),
                    ("BLMPOP", 0, 1, "s", "left")]
        for args in commands:
            self.assertEqual(self.call(*args), WRONGTYPE, args)
        self.assertEqual(self.ks.lookup(b"s"), b"str")
        self.assertIsNone(self.ks.lookup(b"d"))

    def test_writes_change_dirty_and_failures_do_not(self):
        self.call("RPUSH", "k", "a", "b", "c")
        writes = [("LPUSH", "k", "x"),
                  ("LSET", "k", 0, "y"),
                  ("LINSERT", "k", "before", "y", "z"),
                  ("LREM", "k", 1, "z"),
                  ("LTRIM", "k", 0, 2),
                  ("LPOP", "k"),
                  ("LMOVE", "k", "k2", "left", "left"),
                  ("LMPOP", 1, "k", "right")]
        for args in writes:
            dirty = self.ks.dirty
            self.call(*args)
            self.assertGreater(self.ks.dirty, dirty, args)
        failures = [("LSET", "k", 9, "y"),
                    ("LINSERT", "k", "before", "q", "z"),
                    ("LREM", "k", 1, "q"),
                    ("LMOVE", "k2", "s", "left", "left"),
                    ("LPOP", "nokey"),
                    ("LPOP", "k", 0)]
        for args in failures:
            dirty = self.ks.dirty
            self.call(*args)
            self.assertEqual(self.ks.dirty, dirty, args)


class MoveTests(ServerTestCase):
    def test_lmove_directions(self):
        self.call("RPUSH", "src", "a", "b", "c", "d")
        self.assertEqual(self.raw("LMOVE", "src", "dst", "LEFT", "RIGHT"),
                         b"$1\r\na\r\n")
        self.assertEqual(self.raw("LMOVE", "src", "dst", "right", "left"),
                         b"$1\r\nd\r\n")
        self.assertEqual(self.call("LMOVE", "src", "dst", "left", "left"),
                         b"b")
        self.assertEqual(self.call("LMOVE", "src", "dst", "right", "right"),
                         b"c")
        self.assertEqual(self.call("LRANGE", "dst", 0, -1),
                         [b"b", b"d", b"a", b"c"])
        self.assertIsNone(self.ks.lookup(b"src"))

    def test_rotation_on_one_key(self):
        self.call("RPUSH", "k", "a", "b", "c")
        self.assertEqual(self.call("LMOVE", "k", "k", "left", "right"), b"a")
        self.assertEqual(self.call("RPOPLPUSH", "k", "k"), b"a")
        self.assertEqual(self.call("LRANGE", "k", 0, -1), [b"a", b"b", b"c"])
        self.call("RPUSH", "one", "x")
        self.assertEqual(self.call("LMOVE", "one", "one", "left", "left"),
                         b"x")
        self.assertEqual(self.call("LRANGE", "one", 0, -1), [b"x"])

    def test_rpoplpush(self):
        self.call("RPUSH", "src", "a", "b")
        self.assertEqual(self.call("RPOPLPUSH", "src", "dst"), b"b")
        self.assertEqual(self.call("RPOPLPUSH", "src", "dst"), b"a")
        self.assertEqual(self.call("LRANGE", "dst", 0, -1), [b"a", b"b"])
        self.assertEqual(self.raw("RPOPLPUSH", "src", "dst"), b"$-1\r\n")

    def test_errors_leave_both_lists_alone(self):
        self.call("RPUSH", "src", "a")
        self.call("SET", "s", "str")
        self.assertEqual(self.call("LMOVE", "src", "s", "left", "left"),
                         WRONGTYPE)
        self.assertEqual(self.call("LRANGE", "src", 0, -1), [b"a"])
        self.assertEqual(self.call("LMOVE", "src", "d", "up", "left"),
                         "ERR syntax error")
        self.assertEqual(self.call("LMOVE", "src", "d", "left", "down"),
                         "ERR syntax error")
        # A missing source answers null without looking at the destination.
        self.assertEqual(self.raw("LMOVE", "nokey", "s", "left", "left"),
                         b"$-1\r\n")
        self.resp3()
        self.assertEqual(self.raw("RPOPLPUSH", "nokey", "d"), b"_\r\n")


class LmpopTests(ServerTestCase):
    def test_first_non_empty_key(self):
        self.call("RPUSH", "b", "1", "2", "3")
        self.call("RPUSH", "c", "x")
        self.assertEqual(self.raw("LMPOP", 3, "a", "b", "c", "LEFT"),
                         b"*2\r\n$1\r\nb\r\n*1\r\n$1\r\n1\r\n")
        self.assertEqual(self.call("LMPOP", 2, "a", "b", "right", "COUNT", 5),
                         [b"b", [b"3", b"2"]])
        self.assertIsNone(self.ks.lookup(b"b"))
        self.assertEqual(self.call("LMPOP", 2, "b", "c", "left", "count", 1),
                         [b"c", [b"x"]])

    def test_nothing_to_pop(self):
        self.assertEqual(self.raw("LMPOP", 2, "a", "b", "left"), b"*-1\r\n")
        self.resp3()
        self.assertEqual(self.raw("LMPOP", 2, "a", "b", "left"), b"_\r\n")
        self.assertEqual(self.raw("LMPOP", 1, "a", "left", "COUNT", 3),
                         b"_\r\n")

    def test_errors(self):
        self.call("RPUSH", "l", "a")
        self.call("SET", "s", "str")
        numkeys = "ERR numkeys should be greater than 0"
        count = "ERR count should be greater than 0"
        errors = [((0, "l", "left"), numkeys), ((-1, "l", "left"), numkeys),
                  (("x", "l", "left"), numkeys),
                  ((3, "l", "left"), "ERR syntax error"),
                  ((1, "l", "middle"), "ERR syntax error"),
                  ((1, "l", "left", "count", 0), count),
                  ((1, "l", "left", "count", "x"), count),
                  ((1, "l", "left", "count", 1, "count", 1),
                   "ERR syntax error"),
                  ((1, "l", "left", "count"), "ERR syntax error"),
                  ((1, "l", "left", "foo"), "ERR syntax error"),
                  ((2, "s", "l", "left"), WRONGTYPE)]
        for args, expected in errors:
            self.assertEqual(self.call("LMPOP", *args), expected, args)
        self.assertEqual(self.call("LRANGE", "l", 0, -1), [b"a"])
        # A key of another type after the one served is never looked at.
        self.assertEqual(self.call("LMPOP", 2, "l", "s", "left"),
                         [b"l", [b"a"]])

    def test_key_specs_find_the_keys(self):
        table = self.server.table
        argv = [b"LMPOP", b"2", b"a", b"b", b"LEFT", b"COUNT", b"2"]
        self.assertEqual(table.get("lmpop").keys(argv), [b"a", b"b"])
        argv = [b"BLMPOP", b"0", b"2", b"a", b"b", b"LEFT"]
        self.assertEqual(table.get("blmpop").keys(argv), [b"a", b"b"])
        argv = [b"BLPOP", b"a", b"b", b"0"]
        self.assertEqual(table.get("blpop").keys(argv), [b"a", b"b"])
        argv = [b"BLMOVE", b"a", b"b", b"LEFT", b"LEFT", b"0"]
        self.assertEqual(table.get("blmove").write_keys(argv), [b"a", b"b"])


class BlockingTests(ServerTestCase):
    """Blocked clients wait on a MemoryReactorClock: no sleeps."""

    def setUp(self):
        super().setUp()
        self.waiter = self.connect()

    def test_served_at_once_when_a_list_has_elements(self):
        self.call("RPUSH", "b", "x", "y")
        self.assertEqual(self.raw("BLPOP", "a", "b", 0),
                         b"*2\r\n$1\r\nb\r\n$1\r\nx\r\n")
        self.assertEqual(self.raw("BRPOP", "a", "b", 0),
                         b"*2\r\n$1\r\nb\r\n$1\r\ny\r\n")
        self.assertIsNone(self.ks.lookup(b"b"))
        self.assertEqual(self.server.blocking.keys, {})

    def test_blpop_woken_by_a_push(self):
        self.assertEqual(self.raw("BLPOP", "a", "k", 0, client=self.waiter),
                         b"")
        self.assertEqual(self.server.blocking.count, 1)
        self.assertEqual(self.raw("RPUSH", "k", "x", "y"), b":2\r\n")
        self.assertEqual(self.pending(self.waiter),
                         b"*2\r\n$1\r\nk\r\n$1\r\nx\r\n")
        self.assertEqual(self.call("LRANGE", "k", 0, -1), [b"y"])
        self.assertEqual(self.server.blocking.count, 0)
        self.assertEqual(self.server.blocking.keys, {})

    def test_brpop_emptying_the_list_deletes_the_key(self):
        self.raw("BRPOP", "k", 0, client=self.waiter)
        self.call("LPUSH", "k", "x")
        self.assertEqual(self.pending(self.waiter),
                         b"*2\r\n$1\r\nk\r\n$1\r\nx\r\n")
        self.assertIsNone(self.ks.lookup(b"k"))

    def test_waiters_are_served_in_arrival_order(self):
        waiters = [self.connect() for _ in range(3)]
        for waiter in waiters:
            self.raw("BLPOP", "k", 0, client=waiter)
        self.call("RPUSH", "k", "a", "b")
        replies = [self.pending(w) for w in waiters]
        self.assertEqual([parse(r) if r else None for r in replies],
                         [[b"k", b"a"], [b"k", b"b"], None])
        self.call("RPUSH", "k", "c")
        self.assertEqual(parse(self.pending(waiters[2])), [b"k", b"c"])

    def test_timeout(self):
        self.raw("BLPOP", "k", "1.5", client=self.waiter)
        self.clock.advance(1.4)
        self.assertEqual(self.pending(self.waiter), b"")
        self.clock.advance(0.1)
        self.assertEqual(self.pending(self.waiter), b"*-1\r\n")
        self.assertEqual(self.server.blocking.keys, {})
        # A push after the timeout stays in the list.
        self.call("RPUSH", "k", "x")
        self.assertEqual(self.call("LLEN", "k"), 1)

    def test_timeout_null_shapes(self):
        self.resp3(self.waiter)
        for args in (("BLPOP", "k", 1), ("BLMPOP", 1, 1, "k", "left"),
                     ("BLMOVE", "k", "d", "left", "left", 1),
                     ("BRPOPLPUSH", "k", "d", 1)):
            self.raw(*args, client=self.waiter)
            self.clock.advance(1)
            self.assertEqual(self.pending(self.waiter), b"_\r\n", args)
        resp2 = self.connect()
        for args, null in ((("BRPOP", "k", 1), b"*-1\r\n"),
                           (("BLMPOP", 1, 1, "k", "left"), b"*-1\r\n"),
                           (("BLMOVE", "k", "d", "left", "left", 1),
                            b"$-1\r\n"),
                           (("BRPOPLPUSH", "k", "d", 1), b"$-1\r\n")):
            self.raw(*args, client=resp2)
            self.clock.advance(1)
            self.assertEqual(self.pending(resp2), null, args)

    def test_zero_timeout_waits_forever(self):
        self.raw("BLPOP", "k", 0, client=self.waiter)
        self.clock.advance(10 ** 7)
        self.assertEqual(self.pending(self.waiter), b"")
        self.call("LPUSH", "k", "late")
        self.assertEqual(parse(self.pending(self.waiter)), [b"k", b"late"])

    def test_timeout_errors(self):
        self.assertEqual(self.call("BLPOP", "k", -1),
                         "ERR timeout is negative")
        self.assertEqual(self.call("BLPOP", "k", "x"),
                         "ERR timeout is not a float or out of range")
        self.assertEqual(self.call("BLMOVE", "k", "d", "left", "left", "-1"),
                         "ERR timeout is negative")
        self.assertEqual(self.call("BRPOPLPUSH", "k", "d", "nan"),
                         "ERR timeout is not a float or out of range")
        # BLMPOP checks numkeys, direction and count before the timeout.
        self.assertEqual(self.call("BLMPOP", "x", 0, "k", "left"),
                         "ERR numkeys should be greater than 0")
        self.assertEqual(self.call("BLMPOP", "x", 1, "k", "left"),
                         "ERR timeout is not a float or out of range")
        self.assertEqual(self.call("BLMOVE", "k", "d", "up", "left", "x"),
                         "ERR syntax error")
        self.assertEqual(self.server.blocking.count, 0)

    def test_blmpop(self):
        self.raw("BLMPOP", 0, 2, "a", "b", "RIGHT", "COUNT", 2,
                 client=self.waiter)
        self.call("RPUSH", "b", "1", "2", "3")
        self.assertEqual(self.pending(self.waiter),
                         b"*2\r\n$1\r\nb\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n")
        self.resp3(self.waiter)
        self.assertEqual(self.call("BLMPOP", 0, 1, "b", "left", "count", 9,
                                   client=self.waiter), [b"b", [b"1"]])

    def test_blmove_woken_by_a_push(self):
        self.raw("BLMOVE", "src", "dst", "RIGHT", "LEFT", 0,
                 client=self.waiter)
        self.call("RPUSH", "src", "a", "b")
        self.assertEqual(self.pending(self.waiter), b"$1\r\nb\r\n")
        self.assertEqual(self.call("LRANGE", "src", 0, -1), [b"a"])
        self.assertEqual(self.call("LRANGE", "dst", 0, -1), [b"b"])

    def test_blmove_wakes_a_client_waiting_on_its_destination(self):
        popper = self.connect()
        self.raw("BLPOP", "dst", 0, client=popper)
        self.raw("BLMOVE", "src", "dst", "left", "right", 0,
                 client=self.waiter)
        self.call("LPUSH", "src", "x")
        self.assertEqual(self.pending(self.waiter), b"$1\r\nx\r\n")
        self.assertEqual(self.pending(popper),
                         b"*2\r\n$3\r\ndst\r\n$1\r\nx\r\n")
        for key in (b"src", b"dst"):
            self.assertIsNone(self.ks.lookup(key))
        self.assertEqual(self.server.blocking.keys, {})

    def test_blmove_chain(self):
        first, second, last = self.connect(), self.connect(), self.connect()
        self.raw("BLMOVE", "a", "b", "left", "left", 0, client=first)
        self.raw("BRPOPLPUSH", "b", "c", 0, client=second)
        self.raw("BRPOP", "c", 0, client=last)
        self.call("RPUSH", "a", "x")
        self.assertEqual(self.pending(first), b"$1\r\nx\r\n")
        self.assertEqual(self.pending(second), b"$1\r\nx\r\n")
        self.assertEqual(parse(self.pending(last)), [b"c", b"x"])
        self.assertEqual(self.ks.count, 0)

    def test_non_blocking_push_into_own_source_is_served(self):
        # A client blocked on a key it also writes through BLMOVE (src=dst).
        self.raw("BLMOVE", "k", "k", "left", "right", 0, client=self.waiter)
        self.call("RPUSH", "k", "a", "b")
        self.assertEqual(self.pending(self.waiter), b"$1\r\na\r\n")
        self.assertEqual(self.call("LRANGE", "k", 0, -1), [b"b", b"a"])

    def test_a_key_of_another_type_does_not_wake_or_fail(self):
        self.raw("BLPOP", "k1", "k2", 0, client=self.waiter)
        self.call("SET", "k1", "str")
        self.assertEqual(self.pending(self.waiter), b"")
        self.call("LPUSH", "k2", "x")
        self.assertEqual(parse(self.pending(self.waiter)), [b"k2", b"x"])

    def test_blmove_served_onto_a_destination_of_another_type(self):
        self.call("SET", "dst", "str")
        self.raw("BLMOVE", "src", "dst", "left", "left", 0,
                 client=self.waiter)
        self.call("LPUSH", "src", "x")
        self.assertEqual(parse(self.pending(self.waiter)), WRONGTYPE)
        self.assertEqual(self.call("LRANGE", "src", 0, -1), [b"x"])
        self.assertEqual(self.server.blocking.count, 0)

    def test_pipelined_commands_wait_for_the_blocked_one(self):
        proto, transport = self.waiter
        proto.dataReceived(request("BLPOP", "k", 0) + request("PING"))
        self.assertEqual(self.pending(self.waiter), b"")
        self.call("LPUSH", "k", "x")
        self.assertEqual(self.pending(self.waiter),
                         b"*2\r\n$1\r\nk\r\n$1\r\nx\r\n+PONG\r\n")

    def test_inside_multi_answers_the_timeout_reply_at_once(self):
        self.assertEqual(self.raw("MULTI"), b"+OK\r\n")
        for args in (("BLPOP", "k", 0), ("BRPOP", "k", 1),
                     ("BLMOVE", "k", "d", "left", "left", 0),
                     ("BRPOPLPUSH", "k", "d", 0),
                     ("BLMPOP", 0, 1, "k", "left", "COUNT", 2)):
            self.assertEqual(self.raw(*args), b"+QUEUED\r\n")
        self.assertEqual(self.raw("EXEC"),
                         b"*5\r\n*-1\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n")
        self.assertEqual(self.server.blocking.count, 0)
        self.resp3()
        self.raw("MULTI")
        self.raw("BLPOP", "k", 0)
        self.raw("RPUSH", "k", "x")
        self.raw("BLPOP", "k", 0)
        self.assertEqual(self.raw("EXEC"),
                         b"*3\r\n_\r\n:1\r\n*2\r\n$1\r\nk\r\n$1\r\nx\r\n")

    def test_a_transaction_wakes_waiters_once_it_is_done(self):
        # MULTI/EXEC is isolated from the point of view of BLPOP.
        self.raw("BLPOP", "k", 0, client=self.waiter)
        self.raw("MULTI")
        for value in ("a", "b", "c"):
            self.raw("LPUSH", "k", value)
        self.raw("EXEC")
        self.assertEqual(parse(self.pending(self.waiter)), [b"k", b"c"])
        self.assertEqual(self.call("LRANGE", "k", 0, -1), [b"b", b"a"])

    def test_push_and_delete_in_a_transaction_wakes_nobody(self):
        self.raw("BLPOP", "k", 0, client=self.waiter)
        self.raw("MULTI")
        self.raw("LPUSH", "k", "a")
        self.raw("DEL", "k")
        self.raw("SET", "k", "foo")
        self.raw("EXEC")
        self.assertEqual(self.pending(self.waiter), b"")
        self.call("DEL", "k")
        self.call("LPUSH", "k", "b")
        self.assertEqual(parse(self.pending(self.waiter)), [b"k", b"b"])

    def test_disconnect_while_blocked(self):
        other = self.connect()
        self.raw("BLPOP", "k", 0, client=self.waiter)
        self.raw("BLPOP", "k", 0, client=other)
        self.disconnect(self.waiter)
        self.assertEqual(self.server.blocking.count, 1)
        self.call("RPUSH", "k", "x", "y")
        self.assertEqual(parse(self.pending(other)), [b"k", b"x"])
        self.assertEqual(self.call("LRANGE", "k", 0, -1), [b"y"])
        self.assertEqual(self.server.blocking.keys, {})

    def test_disconnect_cancels_the_timeout(self):
        self.raw("BRPOP", "k", 5, client=self.waiter)
        self.disconnect(self.waiter)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_watch_is_invalidated_by_a_push(self):
        self.raw("WATCH", "k")
        self.call("LPUSH", "k", "x", client=self.waiter)
        self.raw("MULTI")
        self.raw("LPOP", "k")
        self.assertEqual(self.raw("EXEC"), b"*-1\r\n")
        self.assertEqual(self.call("LLEN", "k"), 1)

    def test_watch_is_invalidated_by_a_served_blmove(self):
        # The woken client's write goes through the same bookkeeping.
        self.raw("BLMOVE", "src", "dst", "left", "left", 0,
                 client=self.waiter)
        self.raw("WATCH", "dst")
        self.call("RPUSH", "src", "x", client=self.connect())
        self.assertEqual(self.pending(self.waiter), b"$1\r\nx\r\n")
        self.raw("MULTI")
        self.raw("LLEN", "dst")
        self.assertEqual(self.raw("EXEC"), b"*-1\r\n")
