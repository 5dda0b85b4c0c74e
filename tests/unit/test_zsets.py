"""The sorted set type (rcluster/zset.py) and commands
(rcluster/commands/zsets.py) through a Server on a MemoryReactorClock:
ordering, exact replies and error texts, RESP2/RESP3 shapes, score parsing
and formatting, blocking pops (wake-ups, FIFO, timeouts, MULTI) and WATCH.
Expected bytes were checked against redis-server 7.0.15."""
import math

from twisted.trial.unittest import TestCase

from rcluster.commands.table import CommandError
from rcluster.commands.common import parse_float as parse_score
from rcluster.commands.zsets import (listpack_score,
                                     parse_score_range)
from rcluster.zset import LEX_MAX, LEX_MIN, LexRange, ScoreRange, ZSet
from tests.protocol.helpers import ServerTestCase, bulks
from tests.unit.test_sets import EMPTY, NOT_INT, SYNTAX, WRONGTYPE

NOT_FLOAT = b"-ERR value is not a valid float\r\n"
NOT_RANGE = b"-ERR min or max is not a float\r\n"
NOT_LEX = b"-ERR min or max not valid string range item\r\n"
POSITIVE = b"-ERR value is out of range, must be positive\r\n"
NULL_ARRAY = b"*-1\r\n"


def pair3(member, score) -> bytes:
    """A RESP3 [member, double] pair."""
    return b"*2\r\n%s,%s\r\n" % (bulks(member)[4:], score.encode())


class ZSetTypeTests(TestCase):
    def test_order_is_score_then_member_bytes(self):
        zs = ZSet()
        for member, score in ((b"b", 1), (b"ab", 1), (b"a", 1), (b"", 1),
                              (b"\xff", 1), (b"z", -math.inf), (b"c", 0.5)):
            zs.add(member, score)
        self.assertEqual([m for m, _ in zs],
                         [b"z", b"c", b"", b"a", b"ab", b"b", b"\xff"])
        self.assertEqual(zs.rank(b"ab"), 4)
        self.assertEqual(zs.rank(b"ab", reverse=True), 2)
        self.assertIsNone(zs.rank(b"nope"))

    def test_update_moves_a_member(self):
        zs = ZSet({b"a": 1.0, b"b": 2.0})
        zs.add(b"a", 3.0)
        self.assertEqual(list(zs), [(b"b", 2.0), (b"a", 3.0)])
        self.assertTrue(zs.remove(b"b"))
        self.assertFalse(zs.remove(b"b"))
        self.assertEqual(len(zs), 1)

    def test_spans(self):
        zs = ZSet({b"a": 1.0, b"b": 2.0, b"c": 2.0, b"d": 3.0})
        self.assertEqual(zs.score_span(ScoreRange(2, 2)), (1, 3))
        self.assertEqual(zs.score_span(ScoreRange(1, 3, True, True)), (1, 3))
        self.assertEqual(zs.score_span(ScoreRange(3, 1)), (3, 3))
        self.assertEqual(zs.score_span(ScoreRange(math.inf, math.inf, True)),
                         (4, 4))
        flat = ZSet(dict.fromkeys([b"a", b"b", b"c", b"d"], 0.0))
        self.assertEqual(flat.lex_span(LexRange(b"b", b"c")), (1, 3))
        self.assertEqual(flat.lex_span(LexRange(b"b", b"c", True, True)),
                         (2, 2))
        self.assertEqual(flat.lex_span(LexRange(LEX_MIN, LEX_MAX)), (0, 4))
        self.assertEqual(flat.lex_span(LexRange(LEX_MAX, LEX_MIN)), (4, 4))

    def test_pop_and_remove_span(self):
        zs = ZSet({b"a": 1.0, b"b": 2.0, b"c": 3.0, b"d": 4.0})
        self.assertEqual(zs.pop(1, highest=True), [(b"d", 4.0)])
        self.assertEqual(zs.remove_span(0, 2), 2)
        self.assertEqual(list(zs), [(b"c", 3.0)])
        self.assertEqual(zs.scores, {b"c": 3.0})

    def test_type_name_and_encoding(self):
        from rcluster.commands.common import type_name
        self.assertEqual(type_name(ZSet()), "zset")
        self.assertEqual(ZSet().encoding, "listpack")
        self.assertEqual(ZSet(compact=False).encoding, "skiplist")


class ParsingTests(TestCase):
    def test_scores_follow_string2d(self):
        self.assertEqual(parse_score(b"1.5"), 1.5)
        self.assertEqual(parse_score(b"0x10"), 16.0)
        self.assertEqual(parse_score(b"-INF"), -math.inf)
        self.assertEqual(parse_score(b"+infinity"), math.inf)
        self.assertEqual(parse_score(b".5e1"), 5.0)
        self.assertEqual(parse_score(b"1e-310"), 1e-310)   # denormal is fine
        for bad in (b"", b" 1", b"1 ", b"nan", b"1e400", b"1e-400",
                    b"1_0", b"abc", b"1e", b"0x"):
            self.assertRaises(CommandError, parse_score, bad)

    def test_range_ends_follow_strtod(self):
        self.assertEqual(parse_score_range(b"", b"("),
                         ScoreRange(0, 0, False, True))
        self.assertEqual(parse_score_range(b" 1", b"(1e400"),
                         ScoreRange(1, math.inf, False, True))
        for low, high in ((b"1 ", b"2"), (b"x", b"2"), (b"1", b"nan"),
                          (b"((1", b"2"), (b" ", b"2")):
            self.assertRaises(CommandError, parse_score_range, low, high)

    def test_listpack_score_format(self):
        self.assertEqual(listpack_score(1e18), b"1000000000000000000")
        self.assertEqual(listpack_score(2.0**62), b"4611686018427387904")
        self.assertEqual(listpack_score(2.0**63), b"9.2233720368547758e+18")
        self.assertEqual(listpack_score(0.1), b"0.10000000000000001")
        self.assertEqual(listpack_score(-math.inf), b"-inf")


class ZaddTests(ServerTestCase):
    def test_add_and_update(self):
        self.assertEqual(self.raw("ZADD", "z", 1, "a", 2, "b", 3, "a"),
                         b":2\r\n")
        self.assertEqual(self.call("ZRANGE", "z", 0, -1, "WITHSCORES"),
                         [b"b", b"2", b"a", b"3"])
        self.assertEqual(self.raw("ZADD", "z", 5, "a", 1, "c"), b":1\r\n")
        self.assertEqual(self.raw("ZADD", "z", "CH", 6, "a", 1, "c", 1, "d"),
                         b":2\r\n")

    def test_nx_xx_gt_lt(self):
        self.raw("ZADD", "z", 5, "a")
        self.assertEqual(self.raw("ZADD", "z", "NX", 1, "a", 1, "b"),
                         b":1\r\n")
        self.assertEqual(self.raw("ZADD", "z", "XX", "CH", 2, "a", 2, "c"),
                         b":1\r\n")
        self.assertEqual(self.raw("ZADD", "z", "GT", "CH", 1, "a", 9, "b"),
                         b":1\r\n")
        self.assertEqual(self.raw("ZADD", "z", "LT", "CH", 1, "a", 10, "b"),
                         b":1\r\n")
        self.assertEqual(self.raw("ZADD", "z", "GT", 1, "new"), b":1\r\n")
        self.assertEqual(self.call("ZRANGE", "z", 0, -1, "WITHSCORES"),
                         [b"a", b"1", b"new", b"1", b"b", b"9"])

    def test_incr(self):
        self.assertEqual(self.raw("ZADD", "z", "INCR", 1.5, "a"),
                         b"$3\r\n1.5\r\n")
        self.assertEqual(self.raw("ZADD", "z", "INCR", 1, "a"),
                         b"$3\r\n2.5\r\n")
        self.assertEqual(self.raw("ZADD", "z", "INCR", "NX", 1, "a"),
                         b"$-1\r\n")
        self.assertEqual(self.raw("ZADD", "z", "INCR", "XX", 1, "b"),
                         b"$-1\r\n")
        self.assertEqual(self.raw("ZADD", "z", "INCR", "GT", -1, "a"),
                         b"$-1\r\n")
        self.assertEqual(self.raw("ZADD", "nokey", "INCR", "XX", 1, "b"),
                         b"$-1\r\n")
        self.assertIsNone(self.ks.lookup(b"nokey"))

    def test_errors(self):
        self.raw("ZADD", "z", 1, "a")
        cases = {
            ("NX", "XX", 1, "a"):
                b"-ERR XX and NX options at the same time are not "
                b"compatible\r\n",
            ("NX", "GT", 1, "a"):
                b"-ERR GT, LT, and/or NX options at the same time are not "
                b"compatible\r\n",
            ("GT", "LT", 1, "a"):
                b"-ERR GT, LT, and/or NX options at the same time are not "
                b"compatible\r\n",
            ("INCR", 1, "a", 2, "b"):
                b"-ERR INCR option supports a single increment-element "
                b"pair\r\n",
            (1, "a", 2): SYNTAX,
            ("NX", "CH"): SYNTAX,
            ("x", "a"): NOT_FLOAT,
            (1, "a", "nan", "b"): NOT_FLOAT,
            ("1e999", "a"): NOT_FLOAT,
        }
        for args, reply in cases.items():
            self.assertEqual(self.raw("ZADD", "z", *args), reply, args)
        self.assertEqual(self.call("ZRANGE", "z", 0, -1, "WITHSCORES"),
                         [b"a", b"1"])

    def test_nan_result(self):
        self.raw("ZADD", "z", "inf", "a")
        self.assertEqual(self.raw("ZADD", "z", "INCR", "-inf", "a"),
                         b"-ERR resulting score is not a number (NaN)\r\n")
        self.assertEqual(self.raw("ZINCRBY", "z", "-inf", "a"),
                         b"-ERR resulting score is not a number (NaN)\r\n")
        self.assertEqual(self.raw("ZSCORE", "z", "a"), b"$3\r\ninf\r\n")

    def test_xx_on_a_missing_key_creates_nothing(self):
        self.assertEqual(self.raw("ZADD", "z", "XX", 1, "a"), b":0\r\n")
        self.assertIsNone(self.ks.lookup(b"z"))

    def test_zincrby(self):
        self.assertEqual(self.raw("ZINCRBY", "z", 2, "a"), b"$1\r\n2\r\n")
        self.assertEqual(self.raw("ZINCRBY", "z", "-0.5", "a"),
                         b"$3\r\n1.5\r\n")
        self.assertEqual(self.raw("ZINCRBY", "z", "x", "a"), NOT_FLOAT)
        # Options are parsed at the increment's place, as in Redis.
        self.assertEqual(self.raw("ZINCRBY", "z", "NX", "a"), SYNTAX)

    def test_wrong_type(self):
        self.raw("SET", "str", "v")
        for args in (("ZADD", "str", 1, "a"), ("ZINCRBY", "str", 1, "a"),
                     ("ZREM", "str", "a"), ("ZCARD", "str"),
                     ("ZSCORE", "str", "a"), ("ZMSCORE", "str", "a"),
                     ("ZRANK", "str", "a"), ("ZCOUNT", "str", 0, 1),
                     ("ZLEXCOUNT", "str", "-", "+"), ("ZRANGE", "str", 0, 1),
                     ("ZPOPMIN", "str"), ("ZRANDMEMBER", "str"),
                     ("ZSCAN", "str", 0), ("ZREMRANGEBYRANK", "str", 0, 1),
                     ("ZUNION", 1, "str"), ("ZMPOP", 1, "str", "MIN"),
                     ("BZPOPMIN", "str", 0)):
            self.assertEqual(self.raw(*args), WRONGTYPE, args)


class ReadTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.raw("ZADD", "z", 1, "a", 2, "b", 2, "c", 3, "d")

    def test_card_score_rank(self):
        self.assertEqual(self.raw("ZCARD", "z"), b":4\r\n")
        self.assertEqual(self.raw("ZCARD", "nokey"), b":0\r\n")
        self.assertEqual(self.raw("ZSCORE", "z", "c"), b"$1\r\n2\r\n")
        self.assertEqual(self.raw("ZSCORE", "z", "x"), b"$-1\r\n")
        self.assertEqual(self.raw("ZSCORE", "nokey", "x"), b"$-1\r\n")
        self.assertEqual(self.raw("ZMSCORE", "z", "a", "x", "d"),
                         b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n")
        self.assertEqual(self.raw("ZMSCORE", "nokey", "a"), b"*1\r\n$-1\r\n")
        self.assertEqual(self.raw("ZRANK", "z", "c"), b":2\r\n")
        self.assertEqual(self.raw("ZREVRANK", "z", "c"), b":1\r\n")
        self.assertEqual(self.raw("ZRANK", "z", "x"), b"$-1\r\n")
        self.assertEqual(self.raw("ZREVRANK", "nokey", "x"), b"$-1\r\n")

    def test_resp3_nulls_and_doubles(self):
        client = self.connect(resp3=True)
        self.assertEqual(self.raw("ZSCORE", "z", "a", client=client),
                         b",1\r\n")
        self.assertEqual(self.raw("ZSCORE", "z", "x", client=client), b"_\r\n")
        self.assertEqual(self.raw("ZRANK", "z", "x", client=client), b"_\r\n")
        self.assertEqual(self.raw("ZMSCORE", "z", "a", "x", client=client),
                         b"*2\r\n,1\r\n_\r\n")

    def test_double_formatting(self):
        client = self.connect(resp3=True)
        for score, text in (("1.5", b"1.5"), ("0.1", b"0.10000000000000001"),
                            ("1e300", b"1.0000000000000001e+300"),
                            ("1e17", b"1e+17"), ("3.0", b"3"),
                            ("+inf", b"inf"), ("-inf", b"-inf")):
            self.raw("ZADD", "f", score, "m")
            self.assertEqual(self.raw("ZSCORE", "f", "m"),
                             b"$%d\r\n%s\r\n" % (len(text), text))
            self.assertEqual(self.raw("ZSCORE", "f", "m", client=client),
                             b",%s\r\n" % text)

    def test_zcount(self):
        self.assertEqual(self.raw("ZCOUNT", "z", 2, 3), b":3\r\n")
        self.assertEqual(self.raw("ZCOUNT", "z", "(1", "(3"), b":2\r\n")
        self.assertEqual(self.raw("ZCOUNT", "z", "-inf", "+inf"), b":4\r\n")
        self.assertEqual(self.raw("ZCOUNT", "z", 3, 1), b":0\r\n")
        self.assertEqual(self.raw("ZCOUNT", "z", "(2", 2), b":0\r\n")
        self.assertEqual(self.raw("ZCOUNT", "z", "x", 1), NOT_RANGE)
        self.assertEqual(self.raw("ZCOUNT", "nokey", "x", 1), NOT_RANGE)
        self.assertEqual(self.raw("ZCOUNT", "nokey", 0, 1), b":0\r\n")

    def test_zlexcount(self):
        self.raw("ZADD", "l", 0, "a", 0, "b", 0, "c", 0, "d")
        self.assertEqual(self.raw("ZLEXCOUNT", "l", "-", "+"), b":4\r\n")
        self.assertEqual(self.raw("ZLEXCOUNT", "l", "[b", "(d"), b":2\r\n")
        self.assertEqual(self.raw("ZLEXCOUNT", "l", "(a", "[a"), b":0\r\n")
        self.assertEqual(self.raw("ZLEXCOUNT", "l", "+", "-"), b":0\r\n")
        self.assertEqual(self.raw("ZLEXCOUNT", "l", "a", "+"), NOT_LEX)
        self.assertEqual(self.raw("ZLEXCOUNT", "l", "-", "+x"), NOT_LEX)


class RangeTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.raw("ZADD", "z", 1, "a", 2, "b", 2, "c", 3, "d", "-inf", "min")

    def test_by_rank(self):
        self.assertEqual(self.raw("ZRANGE", "z", 0, -1),
                         bulks("min", "a", "b", "c", "d"))
        self.assertEqual(self.raw("ZRANGE", "z", -2, 100), bulks("c", "d"))
        self.assertEqual(self.raw("ZRANGE", "z", 3, 1), EMPTY)
        self.assertEqual(self.raw("ZRANGE", "z", 1, 2, "WITHSCORES"),
                         bulks("a", 1, "b", 2))
        self.assertEqual(self.raw("ZRANGE", "z", 0, 1, "REV"), bulks("d", "c"))
        self.assertEqual(self.raw("ZREVRANGE", "z", 0, 1, "WITHSCORES"),
                         bulks("d", 3, "c", 2))
        self.assertEqual(self.raw("ZRANGE", "nokey", 0, -1), EMPTY)

    def test_by_score(self):
        self.assertEqual(self.raw("ZRANGE", "z", "(1", 3, "BYSCORE"),
                         bulks("b", "c", "d"))
        self.assertEqual(self.raw("ZRANGE", "z", 3, "(1", "BYSCORE", "REV"),
                         bulks("d", "c", "b"))
        self.assertEqual(self.raw("ZRANGEBYSCORE", "z", "-inf", 2,
                                  "WITHSCORES"),
                         bulks("min", "-inf", "a", 1, "b", 2, "c", 2))
        self.assertEqual(self.raw("ZREVRANGEBYSCORE", "z", "+inf", "(2"),
                         bulks("d"))
        self.assertEqual(self.raw("ZRANGEBYSCORE", "z", 2, 1), EMPTY)

    def test_limit(self):
        self.assertEqual(
            self.raw("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", 1, 2),
            bulks("a", "b"))
        self.assertEqual(
            self.raw("ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV",
                     "LIMIT", 1, 2),
            bulks("c", "b"))
        self.assertEqual(
            self.raw("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", 3, -1),
            bulks("c", "d"))
        self.assertEqual(
            self.raw("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", -1, 2),
            EMPTY)
        self.assertEqual(
            self.raw("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", 9, 2),
            EMPTY)
        # A LIMIT whose count is -1 goes unnoticed by rank, as in Redis.
        self.assertEqual(self.raw("ZRANGE", "z", 0, 0, "LIMIT", 0, -1),
                         bulks("min"))

    def test_by_lex(self):
        self.raw("ZADD", "l", 0, "a", 0, "b", 0, "c", 0, "d", 0, "e")
        self.assertEqual(self.raw("ZRANGE", "l", "[b", "(d", "BYLEX"),
                         bulks("b", "c"))
        self.assertEqual(self.raw("ZRANGE", "l", "+", "(c", "BYLEX", "REV"),
                         bulks("e", "d"))
        self.assertEqual(self.raw("ZRANGEBYLEX", "l", "-", "+", "LIMIT", 1, 2),
                         bulks("b", "c"))
        self.assertEqual(
            self.raw("ZREVRANGEBYLEX", "l", "[d", "-", "LIMIT", 1, 10),
            bulks("c", "b", "a"))

    def test_resp3_withscores_are_pairs(self):
        client = self.connect(resp3=True)
        self.assertEqual(self.raw("ZRANGE", "z", 0, 1, "WITHSCORES",
                                  client=client),
                         b"*2\r\n" + pair3("min", "-inf") + pair3("a", "1"))
        self.assertEqual(self.raw("ZRANGE", "z", 0, 1, client=client),
                         bulks("min", "a"))

    def test_errors(self):
        cases = {
            (0, -1, "LIMIT", 0, 1):
                b"-ERR syntax error, LIMIT is only supported in combination "
                b"with either BYSCORE or BYLEX\r\n",
            ("-", "+", "BYLEX", "WITHSCORES"):
                b"-ERR syntax error, WITHSCORES not supported in combination "
                b"with BYLEX\r\n",
            (0, 1, "BYSCORE", "BYLEX"): SYNTAX,
            (0, 1, "REV", "REV"): SYNTAX,
            (0, 1, "LIMIT", 1): SYNTAX,
            (0, "x"): NOT_INT,
            (0, 1, "BYSCORE", "LIMIT", "x", 1): NOT_INT,
            ("x", 1, "BYSCORE"): NOT_RANGE,
            ("a", "b", "BYLEX"): NOT_LEX,
        }
        for args, reply in cases.items():
            self.assertEqual(self.raw("ZRANGE", "z", *args), reply, args)
        self.assertEqual(self.raw("ZREVRANGE", "z", 0, 1, "BYSCORE"), SYNTAX)
        self.assertEqual(self.raw("ZRANGEBYSCORE", "z", 0, 1, "REV"), SYNTAX)
        self.assertEqual(self.raw("ZRANGEBYLEX", "z", "-", "+", "WITHSCORES"),
                         b"-ERR syntax error, WITHSCORES not supported in "
                         b"combination with BYLEX\r\n")

    def test_zrangestore(self):
        self.assertEqual(self.raw("ZRANGESTORE", "d", "z", 1, 2), b":2\r\n")
        self.assertEqual(self.call("ZRANGE", "d", 0, -1, "WITHSCORES"),
                         [b"a", b"1", b"b", b"2"])
        self.assertEqual(
            self.raw("ZRANGESTORE", "d", "z", 3, "(1", "BYSCORE", "REV",
                     "LIMIT", 0, 1), b":1\r\n")
        self.assertEqual(self.call("ZRANGE", "d", 0, -1), [b"d"])
        self.assertEqual(self.raw("ZRANGESTORE", "d", "z", 0, -1,
                                  "WITHSCORES"),
                         SYNTAX)
        self.assertEqual(self.raw("ZRANGESTORE", "d", "z", 9, 10), b":0\r\n")
        self.assertIsNone(self.ks.lookup(b"d"))
        self.raw("SET", "str", "v")
        self.assertEqual(self.raw("ZRANGESTORE", "d", "str", 0, 1), WRONGTYPE)
        self.assertEqual(self.raw("ZRANGESTORE", "str", "z", 0, 0), b":1\r\n")
        self.assertEqual(self.raw("TYPE", "str"), b"+zset\r\n")


class RemoveTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.raw("ZADD", "z", 1, "a", 2, "b", 3, "c", 4, "d")

    def test_zrem(self):
        self.assertEqual(self.raw("ZREM", "z", "a", "a", "x"), b":1\r\n")
        self.assertEqual(self.raw("ZREM", "nokey", "a"), b":0\r\n")
        self.assertEqual(self.raw("ZREM", "z", "b", "c", "d"), b":3\r\n")
        self.assertIsNone(self.ks.lookup(b"z"))

    def test_remrange_by_rank(self):
        self.assertEqual(self.raw("ZREMRANGEBYRANK", "z", 1, -2), b":2\r\n")
        self.assertEqual(self.call("ZRANGE", "z", 0, -1), [b"a", b"d"])
        self.assertEqual(self.raw("ZREMRANGEBYRANK", "z", 5, 9), b":0\r\n")
        self.assertEqual(self.raw("ZREMRANGEBYRANK", "z", "x", 9), NOT_INT)
        self.assertEqual(self.raw("ZREMRANGEBYRANK", "z", 0, -1), b":2\r\n")
        self.assertIsNone(self.ks.lookup(b"z"))

    def test_remrange_by_score_and_lex(self):
        self.assertEqual(self.raw("ZREMRANGEBYSCORE", "z", "(1", 3), b":2\r\n")
        self.assertEqual(self.raw("ZREMRANGEBYSCORE", "z", "x", 3), NOT_RANGE)
        self.raw("ZADD", "l", 0, "a", 0, "b", 0, "c")
        self.assertEqual(self.raw("ZREMRANGEBYLEX", "l", "(a", "+"), b":2\r\n")
        self.assertEqual(self.raw("ZREMRANGEBYLEX", "l", "a", "+"), NOT_LEX)
        self.assertEqual(self.raw("ZREMRANGEBYLEX", "nokey", "-", "+"),
                         b":0\r\n")
        self.assertEqual(self.call("ZRANGE", "l", 0, -1), [b"a"])


class PopTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.raw("ZADD", "z", 1, "a", 2, "b", 3, "c")

    def test_zpopmin_and_zpopmax(self):
        self.assertEqual(self.raw("ZPOPMIN", "z"), bulks("a", 1))
        self.assertEqual(self.raw("ZPOPMAX", "z", 5), bulks("c", 3, "b", 2))
        self.assertIsNone(self.ks.lookup(b"z"))
        self.assertEqual(self.raw("ZPOPMIN", "z"), EMPTY)

    def test_zpop_errors_and_edges(self):
        self.assertEqual(self.raw("ZPOPMIN", "z", 0), EMPTY)
        self.assertEqual(self.raw("ZPOPMIN", "z", -1), POSITIVE)
        self.assertEqual(self.raw("ZPOPMIN", "z", "x"), POSITIVE)
        self.assertEqual(self.raw("ZPOPMIN", "z", 1, 2), SYNTAX)
        self.assertEqual(self.raw("ZCARD", "z"), b":3\r\n")

    def test_resp3_shapes(self):
        client = self.connect(resp3=True)
        # Without COUNT: one flat pair; with COUNT: nested pairs.
        self.assertEqual(self.raw("ZPOPMIN", "z", client=client),
                         b"*2\r\n$1\r\na\r\n,1\r\n")
        self.assertEqual(self.raw("ZPOPMAX", "z", 1, client=client),
                         b"*1\r\n" + pair3("c", "3"))

    def test_zmpop(self):
        self.raw("ZADD", "y", 10, "x")
        self.assertEqual(self.raw("ZMPOP", 2, "nokey", "z", "MAX", "COUNT", 2),
                         b"*2\r\n$1\r\nz\r\n*2\r\n" + bulks("c", 3) +
                         bulks("b", 2))
        self.assertEqual(self.raw("ZMPOP", 2, "z", "y", "MIN"),
                         b"*2\r\n$1\r\nz\r\n*1\r\n" + bulks("a", 1))
        self.assertEqual(self.raw("ZMPOP", 1, "z", "MIN"), NULL_ARRAY)
        client = self.connect(resp3=True)
        self.assertEqual(self.raw("ZMPOP", 1, "y", "MIN", client=client),
                         b"*2\r\n$1\r\ny\r\n*1\r\n" + pair3("x", "10"))
        self.assertEqual(self.raw("ZMPOP", 1, "y", "MIN", client=client),
                         b"_\r\n")

    def test_zmpop_errors(self):
        numkeys = b"-ERR numkeys should be greater than 0\r\n"
        self.assertEqual(self.raw("ZMPOP", 0, "z", "MIN"), numkeys)
        self.assertEqual(self.raw("ZMPOP", "x", "z", "MIN"), numkeys)
        self.assertEqual(self.raw("ZMPOP", 2, "z", "MIN"), SYNTAX)
        self.assertEqual(self.raw("ZMPOP", 1, "z", "FOO"), SYNTAX)
        self.assertEqual(self.raw("ZMPOP", 1, "z", "MIN", "COUNT", 0),
                         b"-ERR count should be greater than 0\r\n")
        self.assertEqual(self.raw("ZMPOP", 1, "z", "MIN", "COUNT", 1,
                                  "COUNT", 1),
                         SYNTAX)
        self.raw("SET", "str", "v")
        # The first existing key decides: a wrong type stops the search.
        self.assertEqual(self.raw("ZMPOP", 2, "str", "z", "MIN"), WRONGTYPE)
        self.assertEqual(self.raw("ZCARD", "z"), b":3\r\n")

    def test_zrandmember(self):
        self.assertIn(self.call("ZRANDMEMBER", "z"), [b"a", b"b", b"c"])
        self.assertEqual(self.raw("ZRANDMEMBER", "nokey"), b"$-1\r\n")
        self.assertEqual(self.raw("ZRANDMEMBER", "z", 5, "WITHSCORES"),
                         bulks("a", 1, "b", 2, "c", 3))
        picked = self.call("ZRANDMEMBER", "z", 2)
        self.assertEqual(len(set(picked)), 2)
        self.assertEqual(len(self.call("ZRANDMEMBER", "z", -7)), 7)
        self.assertEqual(self.raw("ZRANDMEMBER", "z", 0), EMPTY)
        self.assertEqual(self.raw("ZRANDMEMBER", "nokey", 3), EMPTY)
        self.raw("ZADD", "one", 5, "x")
        client = self.connect(resp3=True)
        self.assertEqual(
            self.raw("ZRANDMEMBER", "one", -2, "WITHSCORES", client=client),
            b"*2\r\n" + pair3("x", "5") + pair3("x", "5"))

    def test_zrandmember_errors(self):
        self.assertEqual(self.raw("ZRANDMEMBER", "z", 1, "FOO"), SYNTAX)
        self.assertEqual(self.raw("ZRANDMEMBER", "z", 1, "WITHSCORES", 1),
                         SYNTAX)
        self.assertEqual(self.raw("ZRANDMEMBER", "z", "x"), NOT_INT)
        self.assertEqual(self.raw("ZRANDMEMBER", "z", -2**62, "WITHSCORES"),
                         b"-ERR value is out of range\r\n")


class AlgebraTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.raw("ZADD", "a", 1, "x", 2, "y", 3, "z")
        self.raw("ZADD", "b", 10, "y", 20, "z", 30, "w")
        self.raw("SADD", "s", "y", "w", "q")

    def test_zunion(self):
        self.assertEqual(self.raw("ZUNION", 2, "a", "b", "WITHSCORES"),
                         bulks("x", 1, "y", 12, "z", 23, "w", 30))
        self.assertEqual(self.raw("ZUNION", 2, "a", "s", "WITHSCORES"),
                         bulks("q", 1, "w", 1, "x", 1, "y", 3, "z", 3))
        self.assertEqual(
            self.raw("ZUNION", 2, "a", "b", "WEIGHTS", 2, 0.5,
                     "AGGREGATE", "MAX",
                     "WITHSCORES"),
            bulks("x", 2, "y", 5, "z", 10, "w", 15))
        self.assertEqual(self.raw("ZUNION", 2, "a", "nokey"),
                         bulks("x", "y", "z"))

    def test_zinter_and_zintercard(self):
        self.assertEqual(
            self.raw("ZINTER", 3, "a", "b", "s", "AGGREGATE", "MIN",
                     "WITHSCORES"),
            bulks("y", 1))
        self.assertEqual(self.raw("ZINTER", 2, "a", "a", "WITHSCORES"),
                         bulks("x", 2, "y", 4, "z", 6))
        self.assertEqual(self.raw("ZINTER", 2, "a", "nokey"), EMPTY)
        self.assertEqual(self.raw("ZINTERCARD", 2, "a", "b"), b":2\r\n")
        self.assertEqual(self.raw("ZINTERCARD", 2, "a", "b", "LIMIT", 1),
                         b":1\r\n")

    def test_zdiff(self):
        self.assertEqual(self.raw("ZDIFF", 2, "b", "s", "WITHSCORES"),
                         bulks("z", 20))
        self.assertEqual(self.raw("ZDIFF", 2, "a", "a"), EMPTY)
        self.assertEqual(self.raw("ZDIFF", 2, "nokey", "a"), EMPTY)

    def test_infinities_combine_to_zero(self):
        self.raw("ZADD", "i", 1, "m")
        self.assertEqual(
            self.raw("ZUNION", 2, "i", "i", "WEIGHTS", "inf", "-inf",
                     "WITHSCORES"),
            bulks("m", 0))
        self.assertEqual(
            self.raw("ZUNION", 1, "i", "WEIGHTS", 0, "WITHSCORES"),
            bulks("m", 0))

    def test_store(self):
        self.assertEqual(self.raw("ZUNIONSTORE", "d", 2, "a", "b"), b":4\r\n")
        self.assertEqual(self.call("ZRANGE", "d", 0, -1, "WITHSCORES"),
                         [b"x", b"1", b"y", b"12", b"z", b"23", b"w", b"30"])
        self.assertEqual(
            self.raw("ZINTERSTORE", "d", 2, "a", "b", "WEIGHTS", 1, 2),
            b":2\r\n")
        self.assertEqual(self.call("ZRANGE", "d", 0, -1, "WITHSCORES"),
                         [b"y", b"22", b"z", b"43"])
        self.assertEqual(self.raw("ZDIFFSTORE", "d", 2, "a", "b"), b":1\r\n")
        self.assertEqual(self.raw("ZINTERSTORE", "d", 2, "a", "nokey"),
                         b":0\r\n")
        self.assertIsNone(self.ks.lookup(b"d"))

    def test_resp3_withscores(self):
        client = self.connect(resp3=True)
        self.assertEqual(self.raw("ZINTER", 2, "a", "b", "WITHSCORES",
                                  client=client),
                         b"*2\r\n" + pair3("y", "12") + pair3("z", "23"))

    def test_errors(self):
        self.raw("SET", "str", "v")
        cases = {
            ("ZUNION", 0, "a"):
                b"-ERR at least 1 input key is needed for 'zunion' "
                b"command\r\n",
            ("ZINTERCARD", 0, "a"):
                b"-ERR at least 1 input key is needed for 'zintercard' "
                b"command\r\n",
            ("ZUNIONSTORE", "d", -1, "a"):
                b"-ERR at least 1 input key is needed for 'zunionstore' "
                b"command\r\n",
            ("ZUNION", "x", "a"): NOT_INT,
            ("ZUNION", 3, "a", "b"): SYNTAX,
            ("ZUNION", 2, "a", "b", "WEIGHTS", 1): SYNTAX,
            ("ZUNION", 2, "a", "b", "WEIGHTS", 1, "x"):
                b"-ERR weight value is not a float\r\n",
            ("ZUNION", 2, "a", "b", "AGGREGATE", "AVG"): SYNTAX,
            ("ZUNIONSTORE", "d", 2, "a", "b", "WITHSCORES"): SYNTAX,
            ("ZDIFF", 2, "a", "b", "WEIGHTS", 1, 1): SYNTAX,
            ("ZINTERCARD", 2, "a", "b", "WITHSCORES"): SYNTAX,
            ("ZINTERCARD", 2, "a", "b", "LIMIT", -1):
                b"-ERR LIMIT can't be negative\r\n",
            ("ZINTER", 2, "a", "str"): WRONGTYPE,
            # Types are checked before the options.
            ("ZINTER", 2, "a", "str", "AGGREGATE", "AVG"): WRONGTYPE,
        }
        for args, reply in cases.items():
            self.assertEqual(self.raw(*args), reply, args)
        self.assertIsNone(self.ks.lookup(b"d"))

    def test_key_specs(self):
        table = self.server.table
        argv = [b"ZUNIONSTORE", b"d", b"2", b"a", b"b", b"WEIGHTS", b"1", b"2"]
        self.assertEqual(table.get("zunionstore").keys(argv),
                         [b"d", b"a", b"b"])
        self.assertEqual(table.get("zunionstore").write_keys(argv), [b"d"])
        self.assertIn("movablekeys", table.get("zunionstore").flags)
        self.assertEqual(table.get("zunionstore").legacy_range, (1, 1, 1))
        argv = [b"BZMPOP", b"0", b"2", b"a", b"b", b"MIN"]
        self.assertEqual(table.get("bzmpop").keys(argv), [b"a", b"b"])
        argv = [b"BZPOPMIN", b"a", b"b", b"0"]
        self.assertEqual(table.get("bzpopmin").keys(argv), [b"a", b"b"])


class EncodingAndScanTests(ServerTestCase):
    def test_small_zsets_scan_whole_in_listpack_form(self):
        self.raw("ZADD", "z", "1e18", "big", 0.1, "a", "-0", "zero")
        self.assertEqual(self.ks.lookup(b"z").encoding, "listpack")
        self.assertEqual(self.raw("ZSCAN", "z", 0),
                         b"*2\r\n$1\r\n0\r\n" +
                         bulks("zero", 0, "a", "0.10000000000000001",
                               "big", "1000000000000000000"))
        self.assertEqual(self.raw("ZSCAN", "z", 0, "MATCH", "b*"),
                         b"*2\r\n$1\r\n0\r\n" +
                         bulks("big", "1000000000000000000"))

    def test_encoding_follows_the_listpack_limits(self):
        pairs = [x for i in range(128) for x in (i, b"m%d" % i)]
        self.raw("ZADD", "z", *pairs)
        self.assertEqual(self.ks.lookup(b"z").encoding, "listpack")
        self.raw("ZADD", "z", 1, "one-more")
        self.assertEqual(self.ks.lookup(b"z").encoding, "skiplist")
        self.raw("ZREMRANGEBYRANK", "z", 0, -3)
        self.assertEqual(self.ks.lookup(b"z").encoding, "skiplist")
        self.raw("ZADD", "long", 1, b"x" * 65)
        self.assertEqual(self.ks.lookup(b"long").encoding, "skiplist")
        self.raw("ZUNIONSTORE", "copy", 1, "z")
        self.assertEqual(self.ks.lookup(b"copy").encoding, "listpack")

    def test_big_zsets_scan_in_steps(self):
        members = {b"m%d" % i: float(i) for i in range(500)}
        self.raw("ZADD", "z", *[x for m, s in members.items() for x in (s, m)])
        found, cursor, calls = {}, b"0", 0
        while True:
            cursor, page = self.call("ZSCAN", "z", cursor, "COUNT", 10)
            found.update(zip(page[::2], (float(s) for s in page[1::2])))
            calls += 1
            if cursor == b"0":
                break
        self.assertEqual(found, members)
        self.assertGreater(calls, 5)

    def test_scan_errors(self):
        self.raw("ZADD", "z", 1, "a")
        self.assertEqual(self.raw("ZSCAN", "z", "x"),
                         b"-ERR invalid cursor\r\n")
        self.assertEqual(self.raw("ZSCAN", "z", 0, "COUNT", 0), SYNTAX)
        self.assertEqual(self.raw("ZSCAN", "nokey", 0),
                         b"*2\r\n$1\r\n0\r\n*0\r\n")


class BlockingTests(ServerTestCase):
    def test_bzpopmin_serves_at_once(self):
        self.raw("ZADD", "z", 2, "b", 1, "a")
        self.assertEqual(self.raw("BZPOPMIN", "nokey", "z", 0),
                         bulks("z", "a", 1))
        self.assertEqual(self.raw("BZPOPMAX", "z", 0), bulks("z", "b", 2))
        self.assertIsNone(self.ks.lookup(b"z"))

    def test_bzpopmin_woken_by_zadd(self):
        waiter = self.connect()
        self.assertEqual(self.raw("BZPOPMIN", "k1", "z", 0, client=waiter),
                         b"")
        self.assertEqual(self.raw("ZADD", "z", 5, "a", 6, "b"), b":2\r\n")
        self.assertEqual(self.pending(waiter), bulks("z", "a", 5))
        self.assertEqual(self.call("ZRANGE", "z", 0, -1), [b"b"])
        self.assertEqual(self.raw("PING", client=waiter), b"+PONG\r\n")

    def test_waiters_are_served_in_arrival_order(self):
        first, second = self.connect(), self.connect()
        self.raw("BZPOPMAX", "z", 0, client=first)
        self.raw("BZPOPMAX", "z", 0, client=second)
        self.raw("ZADD", "z", 1, "a")
        self.assertEqual(self.pending(first), bulks("z", "a", 1))
        self.assertEqual(self.pending(second), b"")
        self.raw("ZADD", "z", 2, "b")
        self.assertEqual(self.pending(second), bulks("z", "b", 2))

    def test_timeout(self):
        waiter = self.connect()
        self.assertEqual(self.raw("BZPOPMIN", "z", "1.5", client=waiter), b"")
        self.clock.advance(1.4)
        self.assertEqual(self.pending(waiter), b"")
        self.clock.advance(0.2)
        self.assertEqual(self.pending(waiter), NULL_ARRAY)
        waiter3 = self.connect(resp3=True)
        self.raw("BZMPOP", 1, 1, "z", "MIN", client=waiter3)
        self.clock.advance(1)
        self.assertEqual(self.pending(waiter3), b"_\r\n")
        self.raw("ZADD", "z", 1, "a")
        self.assertEqual(self.pending(waiter), b"")
        self.assertEqual(self.raw("ZCARD", "z"), b":1\r\n")

    def test_bzmpop_woken_by_zadd(self):
        waiter = self.connect(resp3=True)
        self.assertEqual(self.raw("BZMPOP", 0, 2, "y", "z", "MAX", "COUNT", 2,
                                  client=waiter), b"")
        self.raw("ZADD", "z", 1, "a", 2, "b", 3, "c")
        self.assertEqual(self.pending(waiter),
                         b"*2\r\n$1\r\nz\r\n*2\r\n" + pair3("c", "3") +
                         pair3("b", "2"))

    def test_other_writes_leave_the_client_blocked(self):
        waiter = self.connect()
        self.raw("BZPOPMIN", "z", 0, client=waiter)
        self.raw("SET", "other", "v")
        self.raw("ZADD", "z", "XX", 1, "a")
        self.assertEqual(self.pending(waiter), b"")
        self.raw("ZADD", "z", 1, "a")
        self.assertEqual(self.pending(waiter), bulks("z", "a", 1))

    def test_inside_multi_it_does_not_block(self):
        self.raw("MULTI")
        self.raw("BZPOPMIN", "z", 0)
        self.raw("BZMPOP", 0, 1, "z", "MIN")
        self.assertEqual(self.raw("EXEC"), b"*2\r\n*-1\r\n*-1\r\n")

    def test_errors(self):
        self.assertEqual(self.raw("BZPOPMIN", "z", "x"),
                         b"-ERR timeout is not a float or out of range\r\n")
        self.assertEqual(self.raw("BZPOPMIN", "z", -1),
                         b"-ERR timeout is negative\r\n")
        self.assertEqual(self.raw("BZMPOP", 0, 0, "z", "MIN"),
                         b"-ERR numkeys should be greater than 0\r\n")
        self.assertEqual(self.raw("BZMPOP", "x", 1, "z", "MIN"),
                         b"-ERR timeout is not a float or out of range\r\n")
        self.assertEqual(self.raw("BZMPOP", 0, 1, "z", "MIN", "COUNT", 0),
                         b"-ERR count should be greater than 0\r\n")
        self.assertEqual(self.server.blocking.count, 0)


class WatchTests(ServerTestCase):
    def watch_then(self, *write):
        return self.exec_watching("z", ("ZCARD", "z"), *write)

    def test_zadd_invalidates_watch(self):
        self.raw("ZADD", "z", 1, "a")
        self.assertEqual(self.watch_then("ZADD", "z", 2, "a"), NULL_ARRAY)

    def test_zadd_that_changes_nothing_does_not(self):
        self.raw("ZADD", "z", 1, "a")
        self.assertEqual(self.watch_then("ZADD", "z", "NX", 2, "a"),
                         b"*1\r\n:1\r\n")
        self.assertEqual(self.watch_then("ZADD", "z", 1, "a"), b"*1\r\n:1\r\n")

    def test_store_and_pop_invalidate_watch(self):
        self.raw("ZADD", "src", 1, "a")
        self.assertEqual(self.watch_then("ZUNIONSTORE", "z", 1, "src"),
                         NULL_ARRAY)
        self.assertEqual(self.watch_then("ZPOPMIN", "z"), NULL_ARRAY)
