"""Generic keyspace commands and transactions against a real node, driven
by redis-py (pipelines, the WATCH retry loop) and redis-cli.

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

    # -- transactions ---------------------------------------------------------
    def test_transaction_pipeline(self):
        pipe = self.r.pipeline(transaction=True)
        pipe.set("a", 1).incr("a").get("a").expire("a", 100).ttl("a")
        self.assertEqual(pipe.execute(), [True, 2, b"2", True, 100])
        pipe = self.r.pipeline(transaction=True)
        pipe.set("s", "text").incr("s").set("t", 1)
        results = pipe.execute(raise_on_error=False)
        self.assertEqual(results[0], True)
        self.assertIsInstance(results[1], redis.ResponseError)
        self.assertEqual(str(results[1]),
                         "value is not an integer or out of range")
        self.assertEqual(results[2], True)
        self.assertEqual(self.r.get("t"), b"1")
        # An error while queuing discards the whole transaction.
        pipe = self.r.pipeline(transaction=True)
        pipe.set("x", 1).execute_command("GET")
        with self.assertRaises(redis.ResponseError) as caught:
            pipe.execute()
        self.assertIn("wrong number of arguments for 'get' command",
                      str(caught.exception))
        self.assertEqual(self.r.exists("x"), 0)

    def test_watch(self):
        self.r.set("counter", 10)
        attempts = []

        def add_five(pipe):
            value = int(pipe.get("counter"))
            if not attempts:
                self.other.incr("counter")     # a concurrent writer
            attempts.append(value)
            pipe.multi()
            pipe.set("counter", value + 5)

        self.r.transaction(add_five, "counter")
        self.assertEqual(attempts, [10, 11])
        self.assertEqual(self.r.get("counter"), b"16")
        # Without the retry loop, a touched key is a WatchError.
        self.r.set("k", 1)
        with self.r.pipeline() as pipe:
            pipe.watch("k")
            self.other.set("k", 2)
            pipe.multi()
            pipe.set("k", 3)
            with self.assertRaises(redis.WatchError):
                pipe.execute()
        self.assertEqual(self.r.get("k"), b"2")
        # A watched key reaching its deadline fails the EXEC too.
        self.r.set("k", 1, px=200)
        with self.r.pipeline() as pipe:
            pipe.watch("k")
            time.sleep(0.3)
            pipe.multi()
            pipe.set("other", 1)
            with self.assertRaises(redis.WatchError):
                pipe.execute()
        # FLUSHALL touches every watched key that existed.
        self.r.set("k", 1)
        with self.r.pipeline() as pipe:
            pipe.watch("k")
            self.other.flushall()
            pipe.multi()
            pipe.set("other", 1)
            with self.assertRaises(redis.WatchError):
                pipe.execute()

    # -- expiry ---------------------------------------------------------------
    def test_expire_family(self):
        r = self.r
        r.set("k", "v")
        self.assertEqual(r.ttl("k"), -1)
        self.assertTrue(r.expire("k", 100, nx=True))
        self.assertFalse(r.expire("k", 200, nx=True))
        self.assertFalse(r.expire("k", 50, gt=True))
        self.assertTrue(r.expire("k", 50, lt=True))
        self.assertEqual(r.ttl("k"), 50)
        self.assertTrue(49000 < r.pttl("k") <= 50000)
        self.assertTrue(r.pexpireat("k", 4102444800000))
        self.assertEqual(r.pexpiretime("k"), 4102444800000)
        self.assertEqual(r.expiretime("k"), 4102444800)
        self.assertTrue(r.persist("k"))
        self.assertEqual(r.ttl("k"), -1)
        self.assertEqual(r.ttl("missing"), -2)
        with self.assertRaises(redis.ResponseError) as caught:
            r.execute_command("EXPIRE", "k", 10, "NX", "XX")
        self.assertEqual(str(caught.exception), "NX and XX, GT or LT options "
                         "at the same time are not compatible")
        self.assertTrue(r.expire("k", -1))
        self.assertEqual(r.exists("k"), 0)
        r.set("short", "v", px=100)
        time.sleep(0.2)
        self.assertEqual(r.get("short"), None)
        self.assertEqual(r.type("short"), b"none")

    # -- keyspace -------------------------------------------------------------
    def test_keyspace_commands(self):
        r = self.r
        r.set("a", "v", ex=100)
        self.assertTrue(r.rename("a", "b"))
        self.assertEqual(r.ttl("b"), 100)
        with self.assertRaises(redis.ResponseError) as caught:
            r.rename("a", "c")
        self.assertEqual(str(caught.exception), "no such key")
        r.set("c", "other")
        self.assertFalse(r.renamenx("b", "c"))
        self.assertTrue(r.copy("b", "d"))
        self.assertFalse(r.copy("b", "c"))
        self.assertTrue(r.copy("b", "c", replace=True))
        self.assertEqual(r.mget("b", "c", "d"), [b"v", b"v", b"v"])
        self.assertEqual(r.type("c"), b"string")
        self.assertEqual(r.exists("b", "c", "nope"), 2)
        self.assertEqual(r.touch("b", "nope"), 1)
        self.assertEqual(r.delete("b", "nope"), 1)
        self.assertEqual(r.unlink("c", "d"), 2)
        self.assertEqual(r.dbsize(), 0)
        self.check_object_introspection()

    def test_scan_keys_flush(self):
        r = self.r
        r.mset({f"key:{i}": i for i in range(500)})
        r.set("other", 1)
        expected = {f"key:{i}".encode() for i in range(500)
                    if str(i).startswith("1")}
        self.assertEqual(set(r.scan_iter(match="key:1*")), expected)
        self.assertEqual(len(set(r.scan_iter(count=50))), 501)
        self.assertEqual(set(r.scan_iter(_type="string")), set(r.keys("*")))
        self.assertEqual(set(r.keys("key:1?")),
                         {f"key:1{i}".encode() for i in range(10)})
        self.assertIn(r.randomkey(), set(r.keys("*")))
        self.assertEqual(r.dbsize(), 501)
        self.assertTrue(r.flushall())
        self.assertEqual(r.dbsize(), 0)
        self.assertEqual(r.randomkey(), None)
        r.set("x", 1)
        self.assertTrue(r.flushdb(asynchronous=True))
        self.assertEqual(r.keys("*"), [])

    def check_object_introspection(self):
        r = self.r
        r.mset({"int": 12, "emb": "x" * 44, "raw": "x" * 45})
        self.assertEqual(r.object("encoding", "int"), b"int")
        self.assertEqual(r.object("encoding", "emb"), b"embstr")
        self.assertEqual(r.object("encoding", "raw"), b"raw")
        self.assertEqual(r.object("refcount", "int"), 2147483647)
        self.assertEqual(r.object("encoding", "missing"), None)
        with self.assertRaises(redis.ResponseError) as caught:
            r.object("freq", "int")
        self.assertIn("An LFU maxmemory policy is not selected",
                      str(caught.exception))

    # -- redis-cli ------------------------------------------------------------
    def test_redis_cli(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")
        node = self.node
        self.assertEqual(
            node.cli(input="MULTI\nSET a 1\nINCR a\nEXEC\nMULTI\nNOSUCH\n"
                           "EXEC\n"),
            "OK\nQUEUED\nQUEUED\nOK\n2\nOK\nERR unknown command 'NOSUCH', "
            "with args beginning with: \n\nEXECABORT Transaction discarded "
            "because of previous errors.\n\n")
        node.cli("mset", "key:1", "a", "key:2", "b", "other", "c")
        self.assertEqual(
            sorted(node.cli("--scan", "--pattern", "key:*").split()),
            ["key:1", "key:2"])
        self.assertEqual(node.cli("--no-raw", "ttl", "key:1"),
                         "(integer) -1\n")
        self.assertEqual(node.cli("--no-raw", "rename", "nokey", "x"),
                         "(error) ERR no such key\n")


class RclusterKeysTransactionsTests(Scenarios, TestCase):
    binary = "rcluster"


class RedisServerKeysTransactionsTests(Scenarios, TestCase):
    """The same expectations, checked against the reference server."""
    binary = "redis-server"
