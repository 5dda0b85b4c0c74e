"""The append-only file on real processes: nothing acknowledged is lost to
kill -9 (appendfsync always), a truncated tail loads with Redis's warning,
a corrupt file stops start-up naming it, and appendonlydirs move both
ways between redis-server 7.0 and rcluster with equal contents."""
import os
import random
import shutil
import socket
import tempfile
import threading
import time

import hiredis
from twisted.trial.unittest import TestCase

from tests.integration.harness import NodeProcess, have, start_node

AOF = [("appendonly", "yes"), ("appendfsync", "always")]


def restart(test, node, **kwargs):
    """A new process on the same directory and port."""
    again = NodeProcess(binary=node.binary, port=node.port,
                        workdir=node.workdir,
                        directives=kwargs.get("directives", node.directives))
    test.addCleanup(again.stop)
    return again


def wait_rewrite(client, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        info = client.info("persistence")
        if not info["aof_rewrite_in_progress"] and \
                not info["aof_rewrite_scheduled"]:
            return info
        if time.monotonic() > deadline:
            raise AssertionError("AOF rewrite did not finish")
        time.sleep(0.05)


class KillTests(TestCase):
    def test_kill_9_loses_nothing_acknowledged(self):
        node = start_node(self, directives=AOF)
        total, batch = 10_000, 20
        acked, sent = 0, 0
        # The node dies at a random point of the run, with writes in flight.
        target = random.randrange(500, 9500)
        progress = [0]

        def kill_when_due():
            deadline = time.monotonic() + 60
            while progress[0] < target and time.monotonic() < deadline:
                time.sleep(0.0005)
            node.kill()
        killer = threading.Thread(target=kill_when_due, daemon=True)
        sock = socket.create_connection(("127.0.0.1", node.port), 10)
        self.addCleanup(sock.close)
        reader = hiredis.Reader()
        killer.start()
        try:
            while sent < total:
                count = min(batch, total - sent)
                sock.sendall(b"*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n" * count)
                sent += count
                got = 0
                while got < count:
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("closed")
                    reader.feed(data)
                    while True:
                        reply = reader.gets()
                        if reply is False:
                            break
                        acked = max(acked, reply)
                        progress[0] = acked
                        got += 1
        except OSError:
            pass
        killer.join(70)
        self.assertGreater(acked, 0)
        again = restart(self, node)
        again.start()
        value = int(again.client().get("c") or 0)
        self.assertGreaterEqual(value, acked)
        self.assertLessEqual(value, sent)


    def test_kill_9_during_rewrite(self):
        """A crash in the middle of BGREWRITEAOF: the manifest still lists
        the old base and both incr files, and everything acknowledged
        (before and during the rewrite) loads."""
        node = start_node(self, directives=AOF)
        r = node.client()
        pipe = r.pipeline(transaction=False)
        for i in range(20_000):
            pipe.set("key:%d" % i, "v")
        pipe.execute()
        # 20,000 keys at 200 us each: the rewrite runs for 4 seconds.
        r.config_set("rdb-key-save-delay", 200)
        self.assertTrue(r.bgrewriteaof())
        for i in range(100):
            r.incr("during")
        self.assertEqual(r.info("persistence")["aof_rewrite_in_progress"], 1)
        node.kill()
        again = restart(self, node)
        again.start()
        r = again.client()
        self.assertEqual(r.dbsize(), 20_001)
        self.assertEqual(r.get("during"), b"100")
        self.assertEqual(r.get("key:19999"), b"v")


def _append(path, data: bytes):
    with open(path, "ab") as fh:
        fh.write(data)


def _incr_file(node) -> str:
    folder = os.path.join(node.workdir, "appendonlydir")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".incr.aof"))
    return os.path.join(folder, names[-1])


class DamagedFileTests(TestCase):
    def test_truncated_tail_loads_with_warning(self):
        node = start_node(self, directives=AOF)
        r = node.client()
        r.set("a", "1")
        r.rpush("l", "x")
        node.stop()
        path = _incr_file(node)
        size = os.path.getsize(path)
        _append(path, b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$2\r\n1")
        again = restart(self, node)
        again.start()
        r = again.client()
        self.assertEqual(r.get("a"), b"1")
        self.assertEqual(r.lrange("l", 0, -1), [b"x"])
        self.assertIsNone(r.get("b"))
        output = again.output()
        name = os.path.basename(path)
        self.assertIn("!!! Warning: short read while loading the AOF file "
                      "%s!!!" % name, output)
        self.assertIn("!!! Truncating the AOF %s at offset %d !!!"
                      % (name, size), output)
        self.assertEqual(os.path.getsize(path), size)

    def test_corrupt_file_refuses_to_start(self):
        node = start_node(self, directives=AOF)
        r = node.client()
        r.set("a", "1")
        node.stop()
        path = _incr_file(node)
        size = os.path.getsize(path)
        _append(path, b"garbage\r\n*1\r\n$4\r\nPING\r\n")
        again = restart(self, node)
        with self.assertRaises(RuntimeError) as ctx:
            again.start()
        self.assertIn("%s at offset %d" % (path, size), str(ctx.exception))

    def test_missing_manifest_entry_refuses_to_start(self):
        node = start_node(self, directives=AOF)
        node.client().set("a", "1")
        node.stop()
        os.unlink(_incr_file(node))
        again = restart(self, node)
        with self.assertRaises(RuntimeError) as ctx:
            again.start()
        self.assertIn("appendonly.aof.1.incr.aof", str(ctx.exception))


def fill(r):
    """Every type, with expiries; a rewrite in the middle so that both
    the base and the incr file hold data."""
    r.set("str", "v")
    r.set("int", 12345)
    r.set("ttl", "x", px=600_000)
    r.rpush("list", *[b"e%d" % i for i in range(200)])
    r.hset("hash", mapping={"f%d" % i: "v%d" % i for i in range(10)})
    r.hset("bighash", mapping={"f%d" % i: "x" * 100 for i in range(200)})
    r.sadd("intset", 1, 2, 3)
    r.sadd("set", *["m%d" % i for i in range(300)])
    r.zadd("zset", {"a": 1.5, "b": -2, "c": float("inf")})
    r.zadd("bigzset", {"m%d" % i: i / 3 for i in range(200)})
    r.pfadd("hll", "a", "b", "c")
    r.setbit("bits", 100, 1)
    r.geoadd("geo", (13.361389, 38.115556, "Palermo"))
    r.xadd("stream", {"f": "v"}, id="1-1")
    r.xadd("stream", {"f": "w", "g": "z"}, id="2-1")
    r.xgroup_create("stream", "grp", id="0")
    r.xreadgroup("grp", "alice", {"stream": ">"}, count=1)
    r.xgroup_createconsumer("stream", "grp", "bob")
    r.expire("list", 900)
    r.bgrewriteaof()
    wait_rewrite(r)
    r.incr("int")
    r.rpush("list", "after")
    r.set("late", "1", ex=1000)
    r.hdel("hash", "f0")
    r.xadd("stream", {"f": "late"}, id="3-1")
    r.xack("stream", "grp", "1-1")
    r.zincrby("zset", 1, "a")
    r.set("gone", "1")
    r.delete("gone")
    r.execute_command("MULTI")
    r.execute_command("SET", "tx1", "a")
    r.execute_command("SET", "tx2", "b")
    r.execute_command("EXEC")


def snapshot(r) -> dict:
    """Every key's type, contents and expiry."""
    out = {}
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        if kind == b"string":
            value = r.get(key)
        elif kind == b"list":
            value = r.lrange(key, 0, -1)
        elif kind == b"hash":
            value = r.hgetall(key)
        elif kind == b"set":
            value = sorted(r.smembers(key))
        elif kind == b"zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == b"stream":
            groups = r.xinfo_groups(key)
            consumers = [sorted((c["name"], c["pending"])
                                for c in r.xinfo_consumers(key, g["name"]))
                         for g in groups]
            pending = r.xpending_range(key, "grp", "-", "+", 10)
            value = (r.xrange(key), groups, consumers,
                     [(p["message_id"], p["consumer"],
                       p["times_delivered"]) for p in pending])
        else:
            value = kind
        expire = r.pexpiretime(key)
        out[key] = (kind, value, expire > 0)
    return out


class InteropTests(TestCase):
    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")

    def copy_dir(self, src, dst):
        """Copy src's appendonlydir into dst; checks the base's kind."""
        folder = os.path.join(src.workdir, "appendonlydir")
        shutil.copytree(folder, os.path.join(dst, "appendonlydir"))
        commands = ("aof-use-rdb-preamble", "no") in src.directives
        base = [n for n in os.listdir(folder) if ".base." in n]
        self.assertEqual(len(base), 1)
        with open(os.path.join(folder, base[0]), "rb") as fh:
            head = fh.read(5)
        if commands:
            self.assertTrue(base[0].endswith(".base.aof"))
            stamped = ("aof-timestamp-enabled", "yes") in src.directives
            self.assertEqual(head[:4] == b"#TS:", stamped)
        else:
            self.assertTrue(base[0].endswith(".base.rdb"))
            self.assertEqual(head, b"REDIS")

    def redis_to_rcluster(self, directives):
        redis = start_node(self, binary="redis-server", directives=directives)
        r = redis.client()
        fill(r)
        expected = snapshot(r)
        self.assertEqual(len(expected), 17)
        workdir = tempfile.mkdtemp(prefix="rcluster-aof-")
        self.addCleanup(shutil.rmtree, workdir, True)
        self.copy_dir(redis, workdir)
        node = NodeProcess(workdir=os.path.abspath(workdir),
                           directives=directives)
        self.addCleanup(node.stop)
        node.start()
        mine = node.client()
        self.assertEqual(snapshot(mine), expected)
        self.assertEqual(mine.pexpiretime("ttl"), r.pexpiretime("ttl"))

    def rcluster_to_redis(self, directives):
        node = start_node(self, directives=directives)
        mine = node.client()
        fill(mine)
        expected = snapshot(mine)
        self.assertEqual(len(expected), 17)
        workdir = tempfile.mkdtemp(prefix="rcluster-aof-")
        self.addCleanup(shutil.rmtree, workdir, True)
        self.copy_dir(node, workdir)
        redis = NodeProcess(binary="redis-server", workdir=os.path.abspath(
            workdir), directives=directives)
        self.addCleanup(redis.stop)
        redis.start()
        r = redis.client()
        self.assertEqual(snapshot(r), expected)
        self.assertEqual(r.pexpiretime("ttl"), mine.pexpiretime("ttl"))

    def test_redis_appendonlydir_loads_in_rcluster(self):
        self.redis_to_rcluster(AOF)

    def test_rcluster_appendonlydir_loads_in_redis(self):
        self.rcluster_to_redis(AOF)

    def test_command_bases_and_timestamps_both_ways(self):
        """aof-use-rdb-preamble no (a .base.aof of commands) with #TS:
        annotations, written by each server and loaded by the other."""
        directives = AOF + [("aof-use-rdb-preamble", "no"),
                            ("aof-timestamp-enabled", "yes")]
        self.redis_to_rcluster(directives)
        self.rcluster_to_redis(directives)
