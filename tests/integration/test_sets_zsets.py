"""The SET and SORTED SET families against a real node, driven by redis-py
(RESP2 and RESP3) and redis-cli, including blocking pops woken by another
connection and WATCH.

The same scenarios run against Debian's redis-server 7.0 when it is
installed, so the expectations are checked to be Redis's own behaviour.
"""
import time

import redis
from twisted.trial.unittest import TestCase

from tests.integration.dual import DualServerScenarios
from tests.integration.harness import have


class Scenarios(DualServerScenarios):
    """The checks, for any server binary (mixed into a TestCase); redis-cli
    is needed too."""

    def setUp(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")
        super().setUp()

    def test_sets(self):
        self.run_checks(self.check_set_commands, self.check_set_random,
                        self.check_sscan)

    def test_zsets(self):
        self.run_checks(self.check_zset_commands, self.check_zset_ranges,
                        self.check_zset_algebra, self.check_zscan,
                        self.check_errors)

    def test_resp3(self):
        r3 = self.node.client(protocol=3)
        self.addCleanup(r3.close)
        r3.zadd("z", {"a": 1.5, "b": 2})
        self.assertEqual(r3.zrange("z", 0, -1, withscores=True),
                         [[b"a", 1.5], [b"b", 2.0]])
        self.assertEqual(r3.zscore("z", "a"), 1.5)
        self.assertEqual(r3.zpopmin("z", 1), [[b"a", 1.5]])
        r3.sadd("s", 3, 1, 2)
        self.assertEqual(r3.smembers("s"), {b"1", b"2", b"3"})

    def test_blocking_and_watch(self):
        join = self.in_background(lambda: self.other.bzpopmin(["k1", "z"], 5))
        self.wait_blocked(1)
        self.r.zadd("z", {"a": 1, "b": 2})
        self.assertEqual(join(), (b"z", b"a", 1.0))
        join = self.in_background(
            lambda: self.other.bzmpop(5, 1, ["q"], max=True, count=2))
        self.wait_blocked(1)
        self.r.zadd("q", {"x": 1, "y": 2, "z": 3})
        self.assertEqual(join(), [b"q", [[b"z", b"3"], [b"y", b"2"]]])
        started = time.monotonic()
        self.assertIsNone(self.other.bzpopmax("nokey", 0.2))
        self.assertGreaterEqual(time.monotonic() - started, 0.15)

        pipe = self.r.pipeline()
        pipe.watch("z")
        self.other.zadd("z", {"b": 10})
        pipe.multi()
        pipe.zcard("z")
        self.assertRaises(redis.WatchError, pipe.execute)

    def test_redis_cli(self):
        self.node.cli("zadd", "z", "1.5", "a", "0.1", "b", "3", "c")
        self.assertEqual(self.node.cli("zrange", "z", "0", "-1", "withscores"),
                         "b\n0.10000000000000001\na\n1.5\nc\n3\n")
        self.assertEqual(self.node.cli("-3", "zscore", "z", "a"), "1.5\n")
        reply = self.node.cli("zadd", "z", "nx", "xx", "1", "a")
        self.assertEqual(reply.strip(),
                         "ERR XX and NX options at the same time are not "
                         "compatible")
        self.node.cli("sadd", "s", "10", "2", "33")
        self.assertEqual(self.node.cli("smembers", "s"), "2\n10\n33\n")
        self.assertEqual(self.node.cli("sscan", "s", "0"), "0\n2\n10\n33\n")

    # -- sets --------------------------------------------------------------
    def check_set_commands(self):
        r = self.r
        self.assertEqual(r.sadd("a", 1, 2, 3, 4), 4)
        self.assertEqual(r.sadd("a", 4, 5), 1)
        r.sadd("b", 3, 4, 5, 6)
        self.assertEqual(r.scard("a"), 5)
        self.assertTrue(r.sismember("a", 1))
        self.assertEqual(r.smismember("a", [1, 9]), [1, 0])
        self.assertEqual(r.srem("a", 5, 9), 1)
        self.assertEqual(r.smembers("a"), {b"1", b"2", b"3", b"4"})
        self.assertEqual(r.sinter("a", "b"), {b"3", b"4"})
        self.assertEqual(r.sintercard(2, ["a", "b"], limit=1), 1)
        self.assertEqual(r.sunion("a", "b"), {b"%d" % i for i in range(1, 7)})
        self.assertEqual(r.sdiff("a", "b"), {b"1", b"2"})
        self.assertEqual(r.sinterstore("d", ["a", "b"]), 2)
        self.assertEqual(r.sunionstore("d", ["a", "b"]), 6)
        self.assertEqual(r.sdiffstore("d", ["a", "b"]), 2)
        self.assertEqual(r.smembers("d"), {b"1", b"2"})
        self.assertTrue(r.smove("a", "b", 1))
        self.assertFalse(r.smove("a", "b", 1))
        self.assertEqual(r.smembers("b"), {b"1", b"3", b"4", b"5", b"6"})
        self.assertEqual(r.sdiffstore("d", ["a", "a"]), 0)
        self.assertEqual(r.exists("d"), 0)

    def check_set_random(self):
        r = self.r
        members = {b"m%d" % i for i in range(50)}
        r.sadd("s", *members)
        self.assertIn(r.srandmember("s"), members)
        picked = r.srandmember("s", 10)
        self.assertEqual(len(set(picked)), 10)
        self.assertEqual(len(r.srandmember("s", -100)), 100)
        popped = set(r.spop("s", 20))
        self.assertEqual(len(popped), 20)
        self.assertEqual(r.smembers("s") | popped, members)
        self.assertEqual(set(r.spop("s", 100)) | popped, members)
        self.assertEqual(r.exists("s"), 0)
        self.assertIsNone(r.spop("s"))

    def check_sscan(self):
        members = {b"member:%d" % i for i in range(1000)}
        self.r.sadd("s", *members)
        self.assertEqual(sorted(self.r.sscan_iter("s", count=25)),
                         sorted(members))
        self.assertEqual(sorted(self.r.sscan_iter("s", match="member:99*")),
                         sorted(b"member:99%s" % d for d in
                                [b""] + [b"%d" % i for i in range(10)]))

    # -- sorted sets -----------------------------------------------------
    def check_zset_commands(self):
        r = self.r
        self.assertEqual(r.zadd("z", {"a": 1, "b": 2, "c": 3}), 3)
        self.assertEqual(r.zadd("z", {"a": 5, "d": 0}, nx=True), 1)
        self.assertEqual(r.zadd("z", {"a": 0.5, "b": 9}, gt=True, ch=True), 1)
        self.assertEqual(r.zadd("z", {"a": 2}, incr=True), 3.0)
        self.assertIsNone(r.zadd("z", {"zz": 2}, incr=True, xx=True))
        self.assertEqual(r.zincrby("z", 0.25, "d"), 0.25)
        self.assertEqual(r.zrange("z", 0, -1, withscores=True),
                         [(b"d", 0.25), (b"a", 3.0), (b"c", 3.0), (b"b", 9.0)])
        self.assertEqual(r.zscore("z", "a"), 3.0)
        self.assertEqual(r.zmscore("z", ["a", "nope"]), [3.0, None])
        self.assertEqual(r.zrank("z", "c"), 2)
        self.assertEqual(r.zrevrank("z", "c"), 1)
        self.assertEqual(r.zcard("z"), 4)
        self.assertEqual(r.zcount("z", "(0.25", 3), 2)
        self.assertEqual(r.zrem("z", "d", "nope"), 1)
        self.assertEqual(r.zpopmin("z"), [(b"a", 3.0)])
        self.assertEqual(r.zpopmax("z", 5), [(b"b", 9.0), (b"c", 3.0)])
        self.assertEqual(r.exists("z"), 0)
        r.zadd("z", {"x": 1, "y": 2})
        self.assertEqual(r.zmpop(2, ["nokey", "z"], min=True, count=5),
                         [b"z", [[b"x", b"1"], [b"y", b"2"]]])
        self.assertIsNone(r.zmpop(1, ["z"], max=True))
        r.zadd("z", {"x": 1, "y": 2})
        self.assertIn(r.zrandmember("z"), (b"x", b"y"))
        self.assertEqual(sorted(r.zrandmember("z", 5, withscores=True)),
                         [b"1", b"2", b"x", b"y"])

    def check_zset_ranges(self):
        r = self.r
        r.zadd("z", {m: s for s, m in enumerate("abcdefgh")})
        self.assertEqual(r.zrange("z", 2, 4), [b"c", b"d", b"e"])
        self.assertEqual(r.zrange("z", 0, 1, desc=True), [b"h", b"g"])
        self.assertEqual(r.zrangebyscore("z", "(2", 5, start=1, num=2),
                         [b"e", b"f"])
        self.assertEqual(r.zrevrangebyscore("z", "+inf", 6), [b"h", b"g"])
        self.assertEqual(r.zrange("z", 5, "(3", byscore=True, desc=True),
                         [b"f", b"e"])
        self.assertEqual(r.zrangestore("d", "z", 0, 2), 3)
        self.assertEqual(r.zrange("d", 0, -1), [b"a", b"b", b"c"])
        self.assertEqual(r.zremrangebyrank("z", 0, 1), 2)
        self.assertEqual(r.zremrangebyscore("z", 6, "+inf"), 2)
        self.assertEqual(r.zrange("z", 0, -1), [b"c", b"d", b"e", b"f"])
        r.zadd("l", {m: 0 for m in ["apple", "banana", "cherry", "date"]})
        self.assertEqual(r.zrangebylex("l", "[b", "(d"),
                         [b"banana", b"cherry"])
        self.assertEqual(r.zrevrangebylex("l", "+", "(b"),
                         [b"date", b"cherry", b"banana"])
        self.assertEqual(r.zlexcount("l", "-", "+"), 4)
        self.assertEqual(r.zremrangebylex("l", "-", "[b"), 1)
        # Equal scores are ordered by member bytes.
        r.zadd("eq", {"b": 1, "a": 1, "ab": 1, "B": 1})
        self.assertEqual(r.zrange("eq", 0, -1), [b"B", b"a", b"ab", b"b"])

    def check_zset_algebra(self):
        r = self.r
        r.zadd("a", {"x": 1, "y": 2, "z": 3})
        r.zadd("b", {"y": 10, "z": 20, "w": 30})
        r.sadd("s", "y", "q")
        self.assertEqual(r.zunion(["a", "b"], withscores=True),
                         [(b"x", 1.0), (b"y", 12.0), (b"z", 23.0),
                          (b"w", 30.0)])
        self.assertEqual(r.zinter({"a": 2, "b": 1}, aggregate="MAX",
                                  withscores=True),
                         [(b"y", 10.0), (b"z", 20.0)])
        self.assertEqual(r.zdiff(["b", "a"], withscores=True), [b"w", b"30"])
        self.assertEqual(r.zintercard(2, ["a", "b"]), 2)
        self.assertEqual(r.zunionstore("d", ["a", "s"]), 4)
        self.assertEqual(r.zrange("d", 0, -1, withscores=True),
                         [(b"q", 1.0), (b"x", 1.0), (b"y", 3.0), (b"z", 3.0)])
        self.assertEqual(r.zinterstore("d", ["a", "b"], aggregate="MIN"), 2)
        self.assertEqual(r.zdiffstore("d", ["a", "b"]), 1)
        self.assertEqual(r.zinterstore("d", ["a", "nokey"]), 0)
        self.assertEqual(r.exists("d"), 0)

    def check_zscan(self):
        scores = {b"m%d" % i: i / 4 for i in range(300)}
        self.r.zadd("z", scores)
        self.assertEqual(dict(self.r.zscan_iter("z", count=20)), scores)
        self.r.zadd("small", {"a": 1.5, "b": 1e18})
        self.assertEqual(self.r.zscan("small"),
                         (0, [(b"a", 1.5), (b"b", 1e18)]))

    def check_errors(self):
        r = self.r
        r.set("str", "v")
        r.zadd("z", {"a": 1})
        checks = [
            (("ZADD", "str", 1, "a"), "WRONGTYPE"),
            (("SADD", "str", "a"), "WRONGTYPE"),
            (("ZADD", "z", "GT", "LT", 1, "a"),
             "GT, LT, and/or NX options at the same time are not compatible"),
            (("ZADD", "z", "INCR", 1, "a", 2, "b"),
             "INCR option supports a single increment-element pair"),
            (("ZADD", "z", "nan", "a"), "value is not a valid float"),
            (("ZRANGE", "z", 0, 1, "LIMIT", 0, 1),
             "syntax error, LIMIT is only supported in combination with "
             "either BYSCORE or BYLEX"),
            (("ZRANGE", "z", "x", 1, "BYSCORE"), "min or max is not a float"),
            (("ZRANGE", "z", "a", "b", "BYLEX"),
             "min or max not valid string range item"),
            (("ZUNIONSTORE", "d", 0, "z"),
             "at least 1 input key is needed for 'zunionstore' command"),
            (("SINTERCARD", 0, "z"), "numkeys should be greater than 0"),
            (("SSCAN", "s", "x"), "invalid cursor"),
        ]
        for args, text in checks:
            with self.assertRaises(redis.ResponseError) as caught:
                r.execute_command(*args)
            self.assertIn(text, str(caught.exception), args)


class RclusterTests(Scenarios, TestCase):
    binary = "rcluster"


class RedisServerTests(Scenarios, TestCase):
    """The same scenarios against redis-server 7.0 (the reference)."""
    binary = "redis-server"
