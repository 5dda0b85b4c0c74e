"""The LIST and HASH families against a real node, driven by redis-py
(RESP2 and RESP3) and redis-cli, including blocking pops woken by another
connection.

The same scenarios run against Debian's redis-server 7.0 when it is
installed: the expectations are Redis's own behaviour, checked both ways.
"""
import time

import redis
from twisted.trial.unittest import TestCase

from tests.integration.dual import DualServerScenarios
from tests.integration.harness import have


class Scenarios(DualServerScenarios):
    """The checks, for any server binary (mixed into a TestCase)."""

    def test_lists(self):
        self.run_checks(self.check_list_commands, self.check_list_errors)

    def test_blocking_lists(self):
        self.run_checks(
            self.check_blpop_woken_by_another_connection,
            self.check_blmove_wakes_a_client_waiting_on_its_destination,
            self.check_blocking_timeouts)

    def test_hashes(self):
        self.run_checks(self.check_hash_commands,
                        self.check_hscan_over_a_big_hash,
                        self.check_resp3_shapes)

    # -- lists --------------------------------------------------------------
    def check_list_commands(self):
        r = self.r
        self.assertEqual(r.rpush("l", "a", "b", "c", "b"), 4)
        self.assertEqual(r.lpush("l", "z"), 5)
        self.assertEqual(r.lrange("l", 0, -1), [b"z", b"a", b"b", b"c", b"b"])
        self.assertEqual(r.lpos("l", "b"), 2)
        self.assertEqual(r.lpos("l", "b", rank=-1), 4)
        self.assertEqual(r.lpos("l", "b", count=0), [2, 4])
        self.assertEqual(r.linsert("l", "BEFORE", "c", "x"), 6)
        self.assertTrue(r.lset("l", -1, "end"))
        self.assertEqual(r.lrem("l", 0, "b"), 1)
        self.assertTrue(r.ltrim("l", 1, -1))
        self.assertEqual(r.lrange("l", 0, -1), [b"a", b"x", b"c", b"end"])
        self.assertEqual(r.lindex("l", -2), b"c")
        self.assertEqual(r.lmove("l", "m", "LEFT", "RIGHT"), b"a")
        self.assertEqual(r.rpoplpush("l", "m"), b"end")
        self.assertEqual(r.lmpop(2, "none", "l", direction="RIGHT", count=5),
                         [b"l", [b"c", b"x"]])
        self.assertEqual(r.exists("l"), 0)
        self.assertEqual(r.lpop("m", 5), [b"end", b"a"])
        self.assertIsNone(r.lpop("m"))
        self.assertIsNone(r.rpop("m", 2))

    def check_list_errors(self):
        r = self.r
        r.set("s", "text")
        r.rpush("l", "a")
        cases = [(("LPUSH", "s", "a"), "WRONGTYPE Operation against a key "
                  "holding the wrong kind of value"),
                 (("LSET", "nokey", 0, "x"), "no such key"),
                 (("LSET", "l", 5, "x"), "index out of range"),
                 (("LPOP", "l", -1),
                  "value is out of range, must be positive"),
                 (("LPOS", "l", "a", "RANK", 0), "RANK can't be zero: use 1 "
                  "to start from the first match, 2 from the second ... or "
                  "use negative to start from the end of the list"),
                 (("LMPOP", 0, "l", "LEFT"),
                  "numkeys should be greater than 0"),
                 (("BLPOP", "l", -1), "timeout is negative"),
                 (("BLPOP", "l", "soon"),
                  "timeout is not a float or out of range"),
                 (("LMOVE", "l", "m", "UP", "LEFT"), "syntax error")]
        for args, message in cases:
            with self.assertRaises(redis.ResponseError) as caught:
                r.execute_command(*args)
            self.assertEqual(str(caught.exception), message, args)
        self.assertEqual(r.lrange("l", 0, -1), [b"a"])

    def check_blpop_woken_by_another_connection(self):
        done = self.in_background(lambda: self.r.blpop(["a", "k"], timeout=0))
        self.wait_blocked(1)
        self.assertEqual(self.other.rpush("k", "x", "y"), 2)
        self.assertEqual(done(), (b"k", b"x"))
        self.assertEqual(self.other.lrange("k", 0, -1), [b"y"])
        self.wait_blocked(0)

    def check_blmove_wakes_a_client_waiting_on_its_destination(self):
        popper = self.node.client()
        self.addCleanup(popper.close)
        popped = self.in_background(lambda: popper.brpop("dst", timeout=0))
        self.wait_blocked(1)
        moved = self.in_background(
            lambda: self.r.blmove("src", "dst", 0, "LEFT", "RIGHT"))
        self.wait_blocked(2)
        self.other.lpush("src", "job")
        self.assertEqual(moved(), b"job")
        self.assertEqual(popped(), (b"dst", b"job"))
        self.assertEqual(self.other.exists("src", "dst"), 0)

    def check_blocking_timeouts(self):
        start = time.monotonic()
        self.assertIsNone(self.r.blpop("k", timeout=0.2))
        self.assertIsNone(self.r.blmove("k", "d", 0.1, "LEFT", "LEFT"))
        self.assertIsNone(self.r.blmpop(0.1, 1, "k", direction="LEFT"))
        self.assertGreaterEqual(time.monotonic() - start, 0.35)
        pipe = self.r.pipeline(transaction=True)
        pipe.blpop("k", timeout=0).brpoplpush("k", "d", timeout=0)
        self.assertEqual(pipe.execute(), [None, None])

    # -- hashes -------------------------------------------------------------
    def check_hash_commands(self):
        r = self.r
        self.assertEqual(r.hset("h", mapping={"a": "1", "b": "2"}), 2)
        self.assertEqual(r.hsetnx("h", "a", "9"), 0)
        self.assertEqual(r.hget("h", "a"), b"1")
        self.assertEqual(r.hmget("h", "a", "zz", "b"), [b"1", None, b"2"])
        self.assertEqual(r.hgetall("h"), {b"a": b"1", b"b": b"2"})
        self.assertEqual(r.hincrby("h", "a", 41), 42)
        self.assertEqual(r.hincrbyfloat("h", "f", "0.1"), 0.1)
        self.assertEqual(r.hincrbyfloat("h", "f", "0.2"), 0.3)
        self.assertEqual(r.hget("h", "f"), b"0.3")     # long double sum
        self.assertEqual(r.hstrlen("h", "f"), 3)
        self.assertEqual(r.hkeys("h"), [b"a", b"b", b"f"])
        self.assertEqual(r.hvals("h"), [b"42", b"2", b"0.3"])
        self.assertEqual(r.hdel("h", "b", "zz"), 1)
        self.assertTrue(r.hexists("h", "f"))
        self.assertEqual(r.hlen("h"), 2)
        self.assertIn(r.hrandfield("h"), (b"a", b"f"))
        flat = r.hrandfield("h", -3, withvalues=True)
        self.assertEqual(len(flat), 6)
        for field, value in zip(flat[::2], flat[1::2]):
            self.assertEqual(r.hget("h", field), value)
        with self.assertRaises(redis.ResponseError) as caught:
            r.hincrby("h", "f", 1)
        self.assertEqual(str(caught.exception),
                         "hash value is not an integer")

    def check_hscan_over_a_big_hash(self):
        fields = {f"field:{i}".encode(): str(i).encode() for i in range(3000)}
        self.r.hset("big", mapping=fields)
        self.assertEqual(dict(self.r.hscan_iter("big", count=100)), fields)
        matched = dict(self.r.hscan_iter("big", match="field:1??"))
        self.assertEqual(len(matched), 100)
        cursor, page = self.r.hscan("big", 0, count=10)
        self.assertNotEqual(cursor, 0)

    def check_resp3_shapes(self):
        r3 = self.node.client(protocol=3)
        self.addCleanup(r3.close)
        r3.hset("h", "f", "v")
        self.assertEqual(r3.hgetall("h"), {b"f": b"v"})
        self.assertEqual(r3.hgetall("nokey"), {})
        self.assertEqual(r3.hrandfield("h", -2, withvalues=True),
                         [[b"f", b"v"], [b"f", b"v"]])
        self.assertIsNone(r3.lpop("nokey", 2))
        self.assertIsNone(r3.blpop("nokey", timeout=0.05))

    # -- redis-cli ------------------------------------------------------------
    def test_redis_cli(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")
        cli = self.node.cli
        self.assertEqual(cli("rpush", "l", "a", "b", "c"), "3\n")
        self.assertEqual(cli("lrange", "l", "0", "-1"), "a\nb\nc\n")
        self.assertEqual(cli("--no-raw", "lmpop", "1", "l", "left", "count",
                             "2"), '1) "l"\n2) 1) "a"\n   2) "b"\n')
        self.assertEqual(cli("--no-raw", "lpop", "nokey"), "(nil)\n")
        self.assertEqual(cli("--no-raw", "lset", "nokey", "0", "x"),
                         "(error) ERR no such key\n")
        self.assertEqual(cli("--no-raw", "blpop", "nokey", "0.1"), "(nil)\n")
        self.assertEqual(cli("hset", "h", "f", "v", "g", "w"), "2\n")
        self.assertEqual(cli("--no-raw", "hgetall", "h"),
                         '1) "f"\n2) "v"\n3) "g"\n4) "w"\n')
        self.assertEqual(cli("-3", "--no-raw", "hgetall", "h"),
                         '1# "f" => "v"\n2# "g" => "w"\n')
        self.assertEqual(cli("hincrbyfloat", "h", "n", "10.5"), "10.5\n")
        self.assertEqual(cli("hincrbyfloat", "h", "n", "-5.0e3"),
                         "-4989.5\n")


class RclusterListsHashesTests(Scenarios, TestCase):
    binary = "rcluster"


class RedisServerListsHashesTests(Scenarios, TestCase):
    """The same expectations, checked against the reference server."""
    binary = "redis-server"
