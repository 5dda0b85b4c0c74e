"""MIGRATE and redis-cli --cluster reshard between Debian's redis-server
7.0 and rcluster.

- MIGRATE every type (small and big encodings, with and without TTL) from
  redis-server to rcluster and from rcluster to redis-server: the contents
  arrive equal, the source keys are gone.
- A two-master mixed cluster (one redis-server, one rcluster):
  ``redis-cli --cluster reshard`` moves 1000 slots with their keys from
  redis-server to rcluster and back, and ``--cluster check`` stays clean.
"""
from __future__ import annotations

import subprocess

from twisted.trial.unittest import TestCase

from tests.integration.harness import NodeProcess, have
from tests.integration.test_cluster_formation import converged, wait_for
from tests.interop.test_dump_interop import contents, populate


def _cluster(*args) -> str:
    result = subprocess.run(["redis-cli", "--cluster", *args],
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError(result.stdout[-3000:] + result.stderr[-2000:])
    return result.stdout


class MigrateBothWays(TestCase):
    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        self.redis = NodeProcess(binary="redis-server")
        self.rcluster = NodeProcess()
        for node in (self.redis, self.rcluster):
            self.addCleanup(node.cleanup)
            node.start()

    def _move_all(self, src, dst):
        s, d = src.client(), dst.client()
        keys = populate(s)
        big = {"hash:big": None, "list:huge": None, "set:huge": None,
               "zset:huge": None}
        s.hset("hash:big", mapping={b"f%d" % i: b"v%d" % i
                                    for i in range(5000)})
        s.rpush("list:huge", *[b"e%d" % i for i in range(4000)])
        s.sadd("set:huge", *[b"m%d" % i for i in range(3000)])
        s.zadd("zset:huge", {b"z%d" % i: i / 3 for i in range(3000)})
        s.pexpire("hash:big", 600_000)
        s.xadd("stream", {"a": "1"}, id="1-1")
        s.xadd("stream", {"b": "2"}, id="2-1")
        keys = sorted(keys + list(big) + ["stream"])
        before = {k: contents(s, k) if k != "stream" else s.xrange(k)
                  for k in keys}
        ttls = {k: s.pttl(k) for k in keys}
        # One key alone, the rest with KEYS.
        self.assertEqual(s.execute_command(
            "MIGRATE", "127.0.0.1", dst.port, keys[0], 0, 5000), b"OK")
        self.assertEqual(s.execute_command(
            "MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS",
            *keys[1:]), b"OK")
        self.assertEqual(s.dbsize(), 0)
        after = {k: contents(d, k) if k != "stream" else d.xrange(k)
                 for k in keys}
        self.assertEqual(after, before)
        for k in keys:
            if ttls[k] > 0:
                self.assertTrue(0 < d.pttl(k) <= ttls[k], k)
            else:
                self.assertEqual(d.pttl(k), -1, k)
        self.assertEqual(s.execute_command(
            "MIGRATE", "127.0.0.1", dst.port, "missing", 0, 5000), b"NOKEY")

    def test_redis_to_rcluster(self):
        self._move_all(self.redis, self.rcluster)

    def test_rcluster_to_redis(self):
        self._move_all(self.rcluster, self.redis)

    def test_errors_like_redis(self):
        """The same replies from both for the same mistakes."""
        import redis as redispy
        for src, dst in ((self.redis, self.rcluster),
                         (self.rcluster, self.redis)):
            s, d = src.client(), dst.client()
            s.set("k", "1")
            d.set("k", "other")
            with self.assertRaises(redispy.ResponseError) as err:
                s.execute_command("MIGRATE", "127.0.0.1", dst.port, "k", 0,
                                  1000)
            self.assertEqual(str(err.exception), "Target instance replied "
                             "with error: BUSYKEY Target key name already "
                             "exists.")
            with self.assertRaises(redispy.ResponseError) as err:
                s.execute_command("MIGRATE", "127.0.0.1", dst.port, "k", 0,
                                  1000, "KEYS", "k")
            self.assertEqual(str(err.exception), "When using MIGRATE KEYS "
                             "option, the key argument must be set to the "
                             "empty string")
            with self.assertRaises(redispy.ResponseError) as err:
                s.execute_command("MIGRATE", "127.0.0.1", dst.port, "k", 0,
                                  1000, "AUTH", "nopass")
            self.assertIn("Target instance replied with error:",
                          str(err.exception))
            self.assertEqual(s.execute_command(
                "MIGRATE", "127.0.0.1", dst.port, "k", 0, 1000, "COPY",
                "REPLACE"), b"OK")
            self.assertEqual(s.get("k"), b"1")
            self.assertEqual(d.get("k"), b"1")
            s.delete("k")
            d.delete("k")


class ReshardMixed(TestCase):
    timeout = 300

    def setUp(self):
        if not (have("redis-server") and have("redis-cli")):
            self.skipTest("redis-server / redis-cli not installed")
        self.redis = NodeProcess(binary="redis-server", cluster=True)
        self.rcluster = NodeProcess(cluster=True)
        for node in (self.redis, self.rcluster):
            self.addCleanup(node.cleanup)
            node.start()

    def test_reshard_both_ways(self):
        r, c = self.redis, self.rcluster
        r.cli("cluster", "addslotsrange", "0", "8191")
        c.cli("cluster", "addslotsrange", "8192", "16383")
        r.cli("cluster", "meet", "127.0.0.1", str(c.port))
        wait_for(lambda: converged([r, c]), 30, "convergence")
        from redis.cluster import RedisCluster
        rc = RedisCluster(host="127.0.0.1", port=r.port, socket_timeout=10)
        self.addCleanup(rc.close)
        for i in range(3000):
            rc.set(f"key:{i}", i)
        rid = r.cli("cluster", "myid").strip()
        cid = c.cli("cluster", "myid").strip()
        for src, dst in ((rid, cid), (cid, rid)):
            _cluster("reshard", r.address, "--cluster-from", src,
                     "--cluster-to", dst, "--cluster-slots", "1000",
                     "--cluster-yes")
            wait_for(lambda: "[ERR]" not in _cluster("check", c.address)
                     and "[WARNING]" not in _cluster("check", c.address),
                     30, "a clean check")
            values = rc.mget_nonatomic([f"key:{i}" for i in range(3000)])
            self.assertEqual(values, [b"%d" % i for i in range(3000)])
        counts = (int(r.cli("dbsize")), int(c.cli("dbsize")))
        self.assertEqual(sum(counts), 3000)


class MigrateRowLikeRedis(TestCase):
    def test_command_info_docs_getkeys(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        ours, theirs = NodeProcess(), NodeProcess(binary="redis-server")
        for node in (ours, theirs):
            self.addCleanup(node.cleanup)
            node.start()
        for args in (("COMMAND", "INFO", "migrate"),
                     ("COMMAND", "DOCS", "migrate"),
                     ("COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "5",
                      "AUTH2", "u", "p", "KEYS", "a", "b"),
                     ("COMMAND", "GETKEYS", "MIGRATE", "h", "1", "k", "0",
                      "5", "COPY")):
            self.assertEqual(ours.cli(*args), theirs.cli(*args), args)
