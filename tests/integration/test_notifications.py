"""Keyspace notifications, side by side: the same script of commands runs
against an rcluster node and a redis-server 7.0 node, each with a
subscriber on every keyspace/keyevent channel (``notify-keyspace-events
KEA``), and the (channel, message) sequences must be equal.

Covers every family (strings, keys, lists, hashes, sets, sorted sets,
streams, bitmaps, HyperLogLog, geo, SORT, DUMP/RESTORE), expiry (lazy and
active) and, when rcluster has eviction, the ``evicted`` event.
"""
import importlib.util
import threading
import time

import redis
from twisted.trial import unittest

from tests.integration.harness import have, start_node

PATTERN = "__key*__:*"


def _script(r):
    """Commands whose events are deterministic (no randomness)."""
    r.set("s", "1")
    r.set("s", "2", ex=100)
    r.setnx("s", "3")
    r.incr("s")
    r.incrby("s", 5)
    r.decr("s")
    r.incrbyfloat("s", 1.5)
    r.append("s", "x")
    r.setrange("s", 1, "yz")
    r.getset("s", "q")
    r.mset({"m1": "a", "m2": "b"})
    r.msetnx({"m3": "c"})
    r.getex("s", px=100000)
    r.getex("s", persist=True)
    r.getdel("m3")
    r.expire("m1", 100)
    r.persist("m1")
    r.pexpire("m1", -1)             # a deadline in the past deletes
    r.rename("m2", "m2b")
    r.copy("m2b", "m2c")
    r.delete("m2b", "m2c", "nokey")
    r.unlink("s")
    # lists
    r.rpush("l", "a", "b", "c", "d")
    r.lpush("l", "z")
    r.lpushx("nol", "x")
    r.linsert("l", "before", "b", "a2")
    r.lset("l", 0, "zz")
    r.lrem("l", 1, "a2")
    r.ltrim("l", 0, 10)
    r.lpop("l")
    r.rpop("l", 2)
    r.lmove("l", "l2", "LEFT", "RIGHT")
    r.rpoplpush("l", "l2")
    r.lmpop(2, "l2", "l", direction="LEFT", count=5)
    # hashes
    r.hset("h", mapping={"a": "1", "b": "2"})
    r.hsetnx("h", "c", "3")
    r.hincrby("h", "a", 2)
    r.hincrbyfloat("h", "a", 0.5)
    r.hdel("h", "a", "b")
    r.hdel("h", "c")
    # sets
    r.sadd("st", "a", "b", "c")
    r.sadd("st", "a")
    r.srem("st", "a")
    r.smove("st", "st2", "b")
    r.sadd("st3", "b", "x")
    r.sinterstore("si", "st2", "st3")
    r.sunionstore("su", "st2", "st3")
    r.sdiffstore("sd", "st3", "st2")
    r.sinterstore("si", "st2", "nosuch")
    r.spop("st3", 5)
    # sorted sets
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4})
    r.zadd("z", {"a": 1})
    r.zincrby("z", 2, "a")
    r.zrem("z", "a")
    r.zadd("z2", {"b": 1, "e": 5})
    r.zunionstore("zu", ["z", "z2"])
    r.zinterstore("zi", ["z", "z2"])
    r.zdiffstore("zd", ["z", "z2"])
    r.zrangestore("zr", "z", 0, 0)
    r.zremrangebyscore("zu", 0, 1)
    r.zremrangebyrank("zu", 0, 0)
    r.zremrangebylex("zi", "-", "+")
    r.zpopmin("z")
    r.zpopmax("z", 5)
    r.bzpopmin("z2", 1)
    r.zmpop(1, ["z2"], max=True)
    # streams
    r.xadd("x", {"f": "v"}, id="1-0")
    r.xadd("x", {"f": "v"}, id="2-0", maxlen=1)
    r.xgroup_create("x", "g", id="0")
    r.xgroup_createconsumer("x", "g", "c1")
    r.xreadgroup("g", "c2", {"x": ">"})
    r.xgroup_setid("x", "g", id="0")
    r.xgroup_delconsumer("x", "g", "c1")
    r.xgroup_destroy("x", "g")
    r.xgroup_create("xs", "g", id="$", mkstream=True)
    r.xadd("x", {"f": "v"}, id="3-0")
    r.xdel("x", "2-0")
    r.xtrim("x", maxlen=0)
    r.execute_command("XSETID", "x", "5-0")
    # bitmaps and HyperLogLog
    r.setbit("b", 7, 1)
    r.setbit("b", 7, 1)
    r.bitfield("b").set("u8", 8, 255).execute()
    r.set("b2", "\xff")
    r.bitop("AND", "bo", "b", "b2")
    r.bitop("OR", "bo", "nosuch")
    r.pfadd("hll", "a", "b")
    r.pfadd("hll", "a")
    r.pfmerge("hll2", "hll")
    # geo and SORT
    r.geoadd("geo", (13.361389, 38.115556, "Palermo"),
             (15.087269, 37.502669, "Catania"))
    r.geosearchstore("gs", "geo", longitude=15, latitude=37, radius=200,
                     unit="km")
    r.georadius("geo", 15, 37, 200, unit="km", store="gr")
    r.geosearchstore("gs", "nogeo", longitude=15, latitude=37, radius=200,
                     unit="km")
    r.rpush("sl", 3, 1, 2)
    r.sort("sl", store="sorted")
    r.sort("nolist", store="sorted")
    # DUMP / RESTORE
    payload = r.dump("sl")
    r.restore("sr", 0, payload)
    r.restore("sr", 0, payload, replace=True)
    r.delete("sr")


class NotificationsSideBySide(unittest.TestCase):
    """One rcluster node and one redis-server node, the same script."""

    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        self.nodes = {}
        for binary in ("rcluster", "redis-server"):
            node = start_node(self, binary=binary, directives=[
                ("enable-debug-command", "yes")])
            r = node.client()
            self.addCleanup(r.close)
            r.config_set("notify-keyspace-events", "KEA")
            self.nodes[binary] = r

    def _events(self, run, settle=0.3):
        """Run ``run(r)`` against both nodes; their event sequences."""
        out = {}
        for binary, r in self.nodes.items():
            sub = r.pubsub()
            self.addCleanup(sub.close)
            sub.psubscribe(PATTERN)
            self.assertEqual(sub.get_message(timeout=5)["type"],
                             "psubscribe")
            run(r)
            time.sleep(settle)
            events = []
            while True:     # until the subscriber has been quiet a while
                msg = sub.get_message(timeout=0.5)
                if msg is None:
                    break
                events.append((msg["channel"], msg["data"]))
            out[binary] = events
        return out

    def _compare(self, out):
        ours, theirs = out["rcluster"], out["redis-server"]
        self.assertTrue(theirs)
        self.assertEqual(ours, theirs)
        return len(theirs)

    def test_every_family(self):
        # Every family's events, in Redis's order (well over 200 pairs).
        self.assertGreater(self._compare(self._events(_script)), 200)

    def test_config_get_flags(self):
        for binary, r in self.nodes.items():
            for given, shown in (("KEA", "AKE"), ("AKEn", "AKE"),
                                 ("Egx$", "g$xE"), ("Km", "Km"),
                                 ("nd", "dn"), ("", "")):
                r.config_set("notify-keyspace-events", given)
                self.assertEqual(
                    r.config_get("notify-keyspace-events"),
                    {"notify-keyspace-events": shown}, (binary, given))

    def test_expiry_lazy_and_active(self):
        def run(r):
            r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
            r.set("lazy", "v", px=20)
            time.sleep(0.1)
            self.assertIsNone(r.get("lazy"))        # lazy expiry
            for key in ("over", "mover"):
                r.set(key, "v", px=20)
            time.sleep(0.1)
            r.set("over", "w")                      # SET over an expired key
            r.mset({"mover": "w"})
            r.delete("over", "mover")
            r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
            r.set("active", "v", px=20)
            deadline = time.monotonic() + 5
            while r.dbsize() and time.monotonic() < deadline:
                time.sleep(0.05)                    # active expiry (cron)
        out = self._events(run)
        self.assertIn((b"__keyevent@0__:expired", b"lazy"), out["rcluster"])
        self.assertIn((b"__keyevent@0__:expired", b"active"), out["rcluster"])
        self._compare(out)

    def test_blocked_clients_served(self):
        def run(r):
            waiter = redis.Redis(host="127.0.0.1",
                                 port=r.connection_pool.connection_kwargs[
                                     "port"], socket_timeout=10)
            self.addCleanup(waiter.close)
            for block, push in (
                    (lambda: waiter.blpop(["bl"], 5),
                     lambda: r.rpush("bl", "a")),
                    (lambda: waiter.blmove("bm", "dst", 5, "LEFT", "RIGHT"),
                     lambda: r.lpush("bm", "x", "y")),
                    (lambda: waiter.bzpopmin(["bz"], 5),
                     lambda: r.zadd("bz", {"m": 1})),
                    (lambda: waiter.xread({"bx": "$"}, block=5000),
                     lambda: r.xadd("bx", {"f": "v"}, id="1-0"))):
                result = []
                thread = threading.Thread(
                    target=lambda: result.append(block()), daemon=True)
                thread.start()
                deadline = time.monotonic() + 5
                while r.info("clients")["blocked_clients"] != 1:
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.01)
                push()
                thread.join(10)
                self.assertTrue(result and result[0])
        self._compare(self._events(run))

    def test_new_and_keymiss(self):
        def run(r):
            r.config_set("notify-keyspace-events", "KEAnm")
            r.set("n1", "v")
            r.get("missing")
            r.mget("n1", "missing2", "missing3")
            r.rpush("n2", "a")
            r.hget("missing", "f")
            r.config_set("notify-keyspace-events", "KEA")
        self._compare(self._events(run))

    def test_eviction(self):
        if importlib.util.find_spec("rcluster.eviction") is None:
            self.skipTest("no rcluster/eviction.py yet")

        def run(r):
            r.set("victim", "v")
            r.config_set("maxmemory-policy", "allkeys-lru")
            r.config_set("maxmemory", "1")
            try:
                r.set("other", "v")
            except Exception:
                pass
            r.config_set("maxmemory", "0")
        out = self._events(run)
        self.assertIn((b"__keyevent@0__:evicted", b"victim"), out["rcluster"])
        self._compare(out)
