"""Scripts from real clients against real rcluster processes: redis-py's
Lock (acquire / extend / release are Lua scripts), register_script
(EVALSHA, falling back to EVAL on NOSCRIPT), RedisCluster scripts routed
by their keys on a three-master cluster, and a busy script: -BUSY for the
others past busy-reply-threshold, SCRIPT KILL ending it, and the cluster
peers (cluster-node-timeout 2000) never flagging the node PFAIL."""
from __future__ import annotations

import socket
import subprocess
import time
import unittest

import redis
from twisted.trial.unittest import TestCase

from tests.integration.harness import NodeProcess, have, start_node
from tests.integration.test_cluster_formation import converged, wait_for


class StandaloneScripts(TestCase):
    def setUp(self):
        self.node = start_node(self)
        self.r = self.node.client()
        self.addCleanup(self.r.close)

    def test_lock_acquire_extend_release(self):
        lock = self.r.lock("resource", timeout=10)
        self.assertTrue(lock.acquire(blocking=False))
        other = self.r.lock("resource", timeout=10)
        self.assertFalse(other.acquire(blocking=False))
        self.assertTrue(lock.extend(5))
        self.assertGreater(self.r.pttl("resource"), 10000)
        self.assertTrue(lock.reacquire())
        lock.release()
        self.assertIsNone(self.r.get("resource"))
        self.assertRaises(redis.exceptions.LockError, lock.release)

    def test_register_script(self):
        incr_by = self.r.register_script(
            "return redis.call('incrby', KEYS[1], ARGV[1])")
        self.assertEqual(incr_by(keys=["n"], args=[5]), 5)
        self.r.script_flush()           # NOSCRIPT -> EVAL fallback
        self.assertEqual(incr_by(keys=["n"], args=[2]), 7)
        self.assertEqual(self.r.script_exists(incr_by.sha), [True])
        info = self.r.info("memory")
        self.assertEqual(info["number_of_cached_scripts"], 1)
        self.assertGreater(info["used_memory_scripts"], 0)

    def test_functions_and_dump(self):
        self.r.function_load("#!lua name=lib\nredis.register_function("
                             "'double', function(k, a) return a[1] * 2 end)")
        self.assertEqual(self.r.fcall("double", 0, 21), 42)
        payload = self.r.function_dump()
        self.r.function_flush()
        self.assertEqual(self.r.function_restore(payload), True)
        self.assertEqual(self.r.fcall("double", 0, 4), 8)


class BusyShutdown(TestCase):
    def test_shutdown_nosave_during_busy_script(self):
        node = start_node(self, directives=[("busy-reply-threshold", "300")])
        busy = socket.create_connection(("127.0.0.1", node.port), 30)
        self.addCleanup(busy.close)
        busy.sendall(b"*3\r\n$4\r\nEVAL\r\n$17\r\nwhile true do end\r\n"
                     b"$1\r\n0\r\n")
        other = socket.create_connection(("127.0.0.1", node.port), 10)
        self.addCleanup(other.close)
        deadline = time.monotonic() + 10
        while True:
            other.sendall(b"PING\r\n")
            reply = other.recv(200)
            if reply.startswith(b"-BUSY"):
                break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        other.sendall(b"SHUTDOWN\r\n")
        self.assertTrue(other.recv(200).startswith(b"-BUSY"))
        other.sendall(b"SHUTDOWN NOSAVE\r\n")
        self.assertEqual(node.proc.wait(10), 0)


def _pfail_flags(node) -> str:
    return node.cli("cluster", "nodes")


class ClusterScripts(TestCase):
    """Three masters (cluster-node-timeout 2000)."""

    @classmethod
    def setUpClass(cls):
        if not have("redis-cli"):
            raise unittest.SkipTest("redis-cli not installed")
        cls.nodes = [NodeProcess(cluster=True, directives=[
            ("cluster-node-timeout", "2000"),
            ("busy-reply-threshold", "500")]) for _ in range(3)]
        for node in cls.nodes:
            cls.addClassCleanup(node.cleanup)
        for node in cls.nodes:
            node.start()
        result = subprocess.run(
            ["redis-cli", "--cluster", "create",
             *[n.address for n in cls.nodes], "--cluster-replicas", "0",
             "--cluster-yes"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        wait_for(lambda: converged(cls.nodes), timeout=30,
                 what="convergence")

    def test_redis_cluster_scripts(self):
        rc = redis.RedisCluster(host="127.0.0.1", port=self.nodes[0].port)
        self.addCleanup(rc.close)
        script = rc.register_script(
            "redis.call('set', KEYS[1], ARGV[1]); "
            "return redis.call('get', KEYS[1])")
        for i in range(30):
            key = "key:%d" % i
            self.assertEqual(script(keys=[key], args=[i]), str(i).encode())
            self.assertEqual(rc.get(key), str(i).encode())
        self.assertEqual(rc.eval("return redis.call('mget', KEYS[1], "
                                 "KEYS[2])", 2, "{t}a", "{t}b"), [None, None])
        with self.assertRaises(redis.exceptions.ResponseError) as err:
            rc.eval("return redis.call('get', 'other-key-9')", 1, "{t}a")
        self.assertIn("Script attempted to access", str(err.exception))
        lock = rc.lock("cluster-lock", timeout=5)
        self.assertTrue(lock.acquire(blocking=False))
        lock.release()

    def test_crossslot_and_no_cluster(self):
        r = self.nodes[0].client()
        self.addCleanup(r.close)
        with self.assertRaises(redis.exceptions.ResponseError) as err:
            r.eval("return 1", 2, "a", "b")
        self.assertIn("hash to the same slot", str(err.exception))
        with self.assertRaises(redis.exceptions.ResponseError) as err:
            r.eval("#!lua flags=no-cluster\nreturn 1", 0)
        self.assertIn("'no-cluster' flag is set", str(err.exception))

    def test_busy_script_killed_node_not_pfail(self):
        node = self.nodes[1]
        busy = socket.create_connection(("127.0.0.1", node.port), 30)
        self.addCleanup(busy.close)
        busy.sendall(b"*3\r\n$4\r\nEVAL\r\n$22\r\nwhile true do end\r\n\r\n"
                     b"$1\r\n0\r\n".replace(b"$22\r\nwhile true do end\r\n\r\n",
                                            b"$17\r\nwhile true do end\r\n"))
        other = node.client()
        self.addCleanup(other.close)
        deadline = time.monotonic() + 10
        while True:
            try:
                other.ping()
            except redis.exceptions.BusyLoadingError as e:
                self.assertIn("SCRIPT KILL", str(e))
                break
            except redis.exceptions.ResponseError as e:
                self.assertIn("BUSY", str(e))
                break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        # Busy for longer than cluster-node-timeout: peers still get PONGs.
        time.sleep(3.5)
        for peer in (self.nodes[0], self.nodes[2]):
            line = next(l for l in _pfail_flags(peer).splitlines()
                        if ":%d@" % node.port in l)
            self.assertNotIn("fail", line.split()[2])
        self.assertEqual(other.execute_command("SCRIPT", "KILL"), b"OK")
        reply = busy.recv(4096)
        self.assertTrue(reply.startswith(b"-ERR Script killed by user"),
                        reply)
        self.assertTrue(other.ping())


class ScriptReplication(TestCase):
    def test_effects_reach_the_replica_not_the_script(self):
        master = start_node(self, directives=[
            ("repl-diskless-sync-delay", "0")])
        replica = start_node(self, directives=[
            ("replicaof", "127.0.0.1 %d" % master.port)])
        m, r = master.client(), replica.client()
        self.addCleanup(m.close)
        self.addCleanup(r.close)
        deadline = time.monotonic() + 20
        while r.info("replication").get("master_link_status") != "up":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        m.eval("redis.call('set', KEYS[1], ARGV[1]) "
               "redis.call('incrby', KEYS[2], 5) return 1", 2, "a", "n", "v")
        m.function_load("#!lua name=rl\nredis.register_function('f', "
                        "function(k, a) return redis.call('rpush', k[1], "
                        "a[1]) end)")
        m.fcall("f", 1, "l", "x")
        deadline = time.monotonic() + 10
        while r.lrange("l", 0, -1) != [b"x"]:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual(r.get("a"), b"v")
        self.assertEqual(r.get("n"), b"5")
        # The replica ran the effects (and FUNCTION LOAD), never a script.
        stats = r.info("commandstats")
        self.assertIn("cmdstat_set", stats)
        self.assertIn("cmdstat_incrby", stats)
        self.assertNotIn("cmdstat_eval", stats)
        self.assertNotIn("cmdstat_fcall", stats)
        listed = r.function_list()
        self.assertEqual(len(listed), 1)
        self.assertIn(b"rl", listed[0])
        # Read-only scripts run on the replica, writes are refused there.
        self.assertEqual(r.eval_ro("return redis.call('get', KEYS[1])", 1,
                                   "a"), b"v")
        with self.assertRaises(redis.exceptions.ResponseError) as err:
            r.eval("return redis.call('set', 'a', 'b')", 0)
        self.assertIn("read only replica", str(err.exception))
