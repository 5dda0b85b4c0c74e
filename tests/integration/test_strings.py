"""The STRING family against a real node, driven by redis-py (RESP2 and
RESP3) and redis-cli; the same scenarios run against Debian's redis-server
7.0, so the expectations are Redis's own behaviour."""
import redis
from twisted.trial.unittest import TestCase

from tests.integration.dual import DualServerScenarios
from tests.integration.harness import have


class Scenarios(DualServerScenarios):
    def test_strings(self):
        self.run_checks(self.check_set_get, self.check_counters,
                        self.check_ranges_and_multi, self.check_errors)

    def check_set_get(self):
        r = self.r
        self.assertTrue(r.set("k", "v"))
        self.assertIsNone(r.set("k", "w", nx=True))
        self.assertEqual(r.set("k", "w", xx=True, get=True), b"v")
        self.assertTrue(r.set("t", "1", ex=100))
        self.assertEqual(r.ttl("t"), 100)
        self.assertTrue(r.set("t", "2", keepttl=True))
        self.assertEqual(r.ttl("t"), 100)
        self.assertTrue(r.set("t", "3", px=50_000))
        self.assertLessEqual(r.pttl("t"), 50_000)
        # The legacy commands themselves (redis-py's methods are deprecated).
        self.assertTrue(r.execute_command("SETEX", "e", 10, "x"))
        self.assertTrue(r.execute_command("PSETEX", "p", 10_000, "y"))
        self.assertEqual(r.execute_command("SETNX", "e", "z"), 0)
        self.assertEqual(r.ttl("e"), 10)
        self.assertEqual(r.getset("k", "new"), b"w")
        self.assertEqual(r.getex("k", ex=30), b"new")
        self.assertEqual(r.ttl("k"), 30)
        self.assertEqual(r.getex("k", persist=True), b"new")
        self.assertEqual(r.ttl("k"), -1)
        self.assertEqual(r.getdel("k"), b"new")
        self.assertIsNone(r.get("k"))

    def check_counters(self):
        r = self.r
        self.assertEqual(r.incr("n"), 1)
        self.assertEqual(r.incrby("n", 41), 42)
        self.assertEqual(r.decr("n"), 41)
        self.assertEqual(r.decrby("n", 50), -9)
        self.assertEqual(r.incrbyfloat("f", "0.1"), 0.1)
        self.assertEqual(r.incrbyfloat("f", "0.2"), 0.3)
        self.assertEqual(r.get("f"), b"0.3")
        r.set("big", 2**63 - 1)
        with self.assertRaises(redis.ResponseError) as caught:
            r.incr("big")
        self.assertEqual(str(caught.exception),
                         "increment or decrement would overflow")

    def check_ranges_and_multi(self):
        r = self.r
        self.assertEqual(r.append("a", "hello"), 5)
        self.assertEqual(r.append("a", " world"), 11)
        self.assertEqual(r.strlen("a"), 11)
        self.assertEqual(r.getrange("a", -5, -1), b"world")
        self.assertEqual(r.setrange("a", 13, "!"), 14)
        self.assertEqual(r.get("a"), b"hello world\x00\x00!")
        self.assertTrue(r.mset({"x": "1", "y": "2"}))
        self.assertFalse(r.msetnx({"y": "3", "z": "4"}))
        self.assertEqual(r.mget("x", "y", "z"), [b"1", b"2", None])
        r.set("s1", "ohmytext")
        r.set("s2", "mynewtext")
        self.assertEqual(r.lcs("s1", "s2"), b"mytext")
        self.assertEqual(r.lcs("s1", "s2", len=True), 6)

    def check_errors(self):
        r = self.r
        r.rpush("list", "a")
        with self.assertRaises(redis.ResponseError) as caught:
            r.get("list")
        self.assertTrue(str(caught.exception).startswith("WRONGTYPE"))
        with self.assertRaises(redis.ResponseError) as caught:
            r.execute_command("SET", "k", "v", "EX", "0")
        self.assertEqual(str(caught.exception),
                         "invalid expire time in 'set' command")

    def test_resp3(self):
        r3 = redis.Redis(host="127.0.0.1", port=self.node.port, protocol=3)
        self.addCleanup(r3.close)
        r3.set("k", "v")
        self.assertEqual(r3.get("k"), b"v")
        self.assertIsNone(r3.get("missing"))
        self.assertEqual(r3.lcs("k", "k", idx=True),
                         {b"matches": [[[0, 0], [0, 0]]], b"len": 1})

    def test_redis_cli(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")
        cli = self.node.cli
        self.assertEqual(cli("set", "k", "v"), "OK\n")
        self.assertEqual(cli("get", "k"), "v\n")
        self.assertEqual(cli("--no-raw", "get", "nokey"), "(nil)\n")
        self.assertEqual(cli("incrby", "n", "5"), "5\n")
        self.assertEqual(cli("--no-raw", "incr", "k"),
                         "(error) ERR value is not an integer or out of range\n")
        self.assertEqual(cli("--no-raw", "mget", "k", "n", "nokey"),
                         '1) "v"\n2) "5"\n3) (nil)\n')
        self.assertEqual(cli("-x", "set", "piped", input="from stdin"), "OK\n")
        self.assertEqual(cli("get", "piped"), "from stdin\n")


class RclusterStringTests(Scenarios, TestCase):
    binary = "rcluster"


class RedisServerStringTests(Scenarios, TestCase):
    """The same expectations, checked against the reference server."""
    binary = "redis-server"
