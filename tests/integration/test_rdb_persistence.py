"""RDB persistence of real ``twistd rcluster`` nodes: SAVE and restart,
BGSAVE point-in-time under writes, save points, SHUTDOWN SAVE and SIGTERM,
DEBUG RELOAD, refusing corrupt files, -LOADING while loading, and RDB
files exchanged with Debian's redis-server 7.0.15 both ways."""
import os
import shutil
import socket
import time
from collections import deque

import redis
from twisted.trial.unittest import SkipTest, TestCase

from tests.integration.harness import NodeProcess, have, start_node, wait_for

FAR = 4_000_000_000_000          # an expiry (unix ms) far in the future
LIBRARY = ("#!lua name=rdblib\n"
           "redis.register_function('rdbtest', "
           "function() return 'from a library' end)")


def populate(r, prefix="k", far=FAR):
    """Every type, small and large encodings, some keys with expiries."""
    p = prefix
    r.set(f"{p}:str", "hello")
    r.set(f"{p}:int", 12345)
    r.set(f"{p}:neg", -7)
    r.set(f"{p}:big", "abc" * 5000)                 # LZF-compressible
    r.set(f"{p}:bin", bytes(range(256)))
    r.rpush(f"{p}:list", *[f"e{i}" for i in range(10)])
    r.rpush(f"{p}:biglist", *[f"element-{i}" * 3 for i in range(2000)])
    r.hset(f"{p}:hash", mapping={"a": "1", "b": "2"})
    r.hset(f"{p}:bighash", mapping={f"f{i}": f"v{i}" * 10 for i in range(700)})
    r.sadd(f"{p}:intset", *range(20))
    r.sadd(f"{p}:set", *[f"m{i}" for i in range(10)])
    r.sadd(f"{p}:bigset", *[f"m{i}" for i in range(1000)])
    r.zadd(f"{p}:zset", {"a": 1, "b": 2.5, "c": -3})
    r.zadd(f"{p}:bigzset", {f"m{i}": i / 3 for i in range(300)})
    r.xadd(f"{p}:stream", {"f": "v"}, id="1-1")
    r.xadd(f"{p}:stream", {"f": "w", "g": "x"}, id="2-0")
    for i in range(50):
        r.set(f"{p}:ttl:{i}", i)
        r.pexpireat(f"{p}:ttl:{i}", far + i)
    r.rpush(f"{p}:listttl", "a")
    r.pexpireat(f"{p}:listttl", far)


def dataset(r) -> dict:
    """key -> (type, contents, pexpiretime), by iterating the server."""
    out = {}
    for key in r.scan_iter(count=1000):
        kind = r.type(key).decode()
        if kind == "string":
            value = r.get(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "hash":
            value = r.hgetall(key)
        elif kind == "set":
            value = sorted(r.smembers(key))
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = r.xrange(key)
        else:
            raise AssertionError(f"unexpected type {kind} for {key}")
        out[key] = (kind, value, r.execute_command("PEXPIRETIME", key))
    return out


def restart(node):
    node.stop()
    node.start()
    return node.client()


def rdb_path(node) -> str:
    return os.path.join(node.workdir, "dump.rdb")


def decode_file(path) -> dict:
    """The keys of an RDB file as key -> (type, contents, expire)."""
    from rcluster.persistence.rdb import RdbReader
    reader = RdbReader()
    with open(path, "rb") as fh:
        records = reader.feed(fh.read())
    reader.finish()
    out = {}
    for record in records:
        if record.__class__.__name__ != "Entry":
            continue
        value = record.value
        if isinstance(value, deque):
            value = list(value)
        elif isinstance(value, set):
            value = sorted(value)
        out[record.key] = (value, record.expire_ms)
    return out


class RdbTests(TestCase):
    def node(self, **directives):
        items = [("enable-debug-command", "local")] + list(directives.items())
        return start_node(self, directives=[(k.replace("_", "-"), str(v))
                                            for k, v in items])

    def test_save_and_restart_keep_every_type_and_expiry(self):
        node = self.node()
        r = node.client()
        populate(r)
        before = dataset(r)
        self.assertEqual(r.save(), True)
        self.assertTrue(os.path.exists(rdb_path(node)))
        info = r.info("persistence")
        self.assertEqual(info["rdb_changes_since_last_save"], 0)
        self.assertEqual(info["rdb_last_bgsave_status"], "ok")
        r = restart(node)
        self.assertEqual(dataset(r), before)
        info = r.info("persistence")
        self.assertEqual(info["rdb_last_load_keys_loaded"], len(before))
        self.assertIn("Done loading RDB, keys loaded: %d, keys expired: 0."
                      % len(before), node.output())

    def test_bgsave_is_point_in_time_under_writes(self):
        node = self.node(rdb_key_save_delay=2000)    # 2 ms a key
        r = node.client()
        pipe = r.pipeline(transaction=False)
        for i in range(400):
            pipe.set(f"s:{i}", f"v{i}")
            pipe.rpush(f"l:{i}", "a", "b")
            pipe.hset(f"h:{i}", "f", i)
        pipe.execute()
        r.pexpireat("s:1", FAR)
        expected = {k: v for k, v in decode_dataset_via_client(r).items()}
        self.assertEqual(r.bgsave(), True)
        with self.assertRaises(redis.ResponseError) as caught:
            r.bgsave()
        self.assertEqual(str(caught.exception),
                         "Background save already in progress")
        writes = 0
        while r.info("persistence")["rdb_bgsave_in_progress"]:
            i = writes % 400
            pipe = r.pipeline(transaction=False)
            pipe.set(f"s:{i}", "changed")
            pipe.lpush(f"l:{i}", "new")
            pipe.hset(f"h:{i}", "f", "changed")
            pipe.delete(f"s:{(i + 200) % 400}")
            pipe.set(f"fresh:{i}", "x")
            pipe.execute()
            self.assertTrue(r.ping())
            writes += 1
        self.assertGreater(writes, 10)      # writes did overlap the save
        info = r.info("persistence")
        self.assertEqual(info["rdb_last_bgsave_status"], "ok")
        self.assertEqual(decode_file(rdb_path(node)), expected)
        self.assertIn("Background saving terminated with success",
                      node.output())

    def test_save_points_trigger_a_background_save(self):
        node = self.node(save="1 1")
        r = node.client()
        r.set("a", 1)
        wait_for(lambda: os.path.exists(rdb_path(node)), 10,
                 "the save point's BGSAVE")
        wait_for(lambda: r.info("persistence")["rdb_changes_since_last_save"]
                 == 0, 10, "the save to finish")
        self.assertIn("1 changes in 1 seconds. Saving...", node.output())
        self.assertEqual(decode_file(rdb_path(node)), {b"a": (b"1", None)})

    def test_shutdown_save_nosave_and_sigterm(self):
        node = self.node()
        r = node.client()
        r.set("kept", "yes")
        # No save points: SHUTDOWN SAVE saves all the same.
        r.shutdown(save=True)        # redis-py swallows the closed link
        node.proc.wait(10)
        self.assertIn("Saving the final RDB snapshot before exiting.",
                      node.output())
        node.proc = None
        node.start()
        r = node.client()
        self.assertEqual(r.get("kept"), b"yes")
        # Save points, but SHUTDOWN NOSAVE: nothing saved.
        r.config_set("save", "3600 1")
        r.set("lost", "yes")
        r.shutdown(nosave=True)
        node.proc.wait(10)
        node.proc = None
        node.start()
        r = node.client()
        self.assertEqual(r.get("kept"), b"yes")
        self.assertIsNone(r.get("lost"))
        # SIGTERM saves when save points are set.
        r.config_set("save", "3600 1")
        r.rpush("l", "a", "b")
        r = restart(node)
        self.assertEqual(r.lrange("l", 0, -1), [b"a", b"b"])

    def test_debug_reload(self):
        node = self.node()
        r = node.client()
        populate(r)
        before = dataset(r)
        self.assertEqual(r.execute_command("DEBUG", "RELOAD"), b"OK")
        self.assertEqual(dataset(r), before)
        r.set("k:str", "changed")
        r.set("extra", "x")
        self.assertEqual(r.execute_command("DEBUG", "RELOAD", "NOSAVE"),
                         b"OK")
        self.assertEqual(dataset(r), before)
        r.set("extra", "x")
        self.assertEqual(r.execute_command("DEBUG", "RELOAD", "NOSAVE",
                                           "NOFLUSH", "MERGE"), b"OK")
        self.assertEqual(r.get("extra"), b"x")
        with self.assertRaises(redis.ResponseError) as caught:
            r.execute_command("DEBUG", "RELOAD", "NOSAVE", "NOFLUSH")
        self.assertEqual(str(caught.exception),
                         "Error trying to load the RDB dump")
        with self.assertRaises(redis.ResponseError) as caught:
            r.execute_command("DEBUG", "RELOAD", "BOGUS")
        self.assertEqual(str(caught.exception), "DEBUG RELOAD only supports "
                         "the MERGE, NOFLUSH and NOSAVE options.")

    def test_aof_takes_precedence_over_the_rdb(self):
        node = self.node()
        r = node.client()
        r.set("from-rdb", 1)
        r.save()
        node.directives.append(("appendonly", "yes"))
        r = restart(node)
        # As Redis 7.0: with appendonly yes only the AOF is loaded (here
        # none existed, so the dataset starts empty and an AOF is made).
        self.assertIsNone(r.get("from-rdb"))
        r.set("from-aof", 1)
        r = restart(node)
        self.assertEqual(r.get("from-aof"), b"1")
        self.assertIsNone(r.get("from-rdb"))

    def test_loading_answers_loading_and_info(self):
        node = self.node()
        r = node.client()
        pipe = r.pipeline(transaction=False)
        for i in range(1000):
            pipe.set(f"k{i}", i)
        pipe.execute()
        r.save()
        node.stop()
        node.directives.append(("key-load-delay", "1000"))   # 1 ms a key
        node.proc = None
        node_start_nowait(node)
        replies = set()
        loading_info = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            reply = raw_command(node.port, b"PING\r\n")
            replies.add(reply[:8])
            if reply.startswith(b"-LOADING"):
                self.assertEqual(reply, b"-LOADING Redis is loading the "
                                        b"dataset in memory\r\n")
                info = raw_command(node.port,
                                   b"INFO persistence\r\n", 4096)
                if b"loading:1" in info:
                    loading_info = info
            if reply.startswith(b"+PONG"):
                break
            time.sleep(0.05)
        self.assertIn(b"-LOADING", replies)
        self.assertIn(b"+PONG\r\n", replies)
        self.assertIsNotNone(loading_info)
        self.assertIn(b"loading_loaded_perc:", loading_info)
        self.assertEqual(node.client().dbsize(), 1000)

    def test_corrupt_rdb_refuses_to_start_naming_the_file(self):
        node = NodeProcess()
        self.addCleanup(node.cleanup)
        good = b"REDIS0010\xfe\x00\xfb\x01\x00\x00\x01k\x01v\xff"
        for data, reason in [
                (b"REDIS0010\xfe\x00\x00\x01k", "Short read"),
                (b"NOTREDIS00", "signature"),
                (good + b"\x00" * 7 + b"\x01", "checksum")]:
            with open(rdb_path(node), "wb") as fh:
                fh.write(data)
            with self.assertRaises(RuntimeError) as caught:
                node.start()
            text = str(caught.exception)
            self.assertIn(rdb_path(node), text)
            self.assertIn(reason, text)
            self.assertEqual(node.proc.returncode, 1)
            with open(rdb_path(node), "rb") as fh:   # never replaced
                self.assertEqual(fh.read(), data)
            node.proc = None

    def test_module_type_rdb_fails_clearly(self):
        node = NodeProcess()
        self.addCleanup(node.cleanup)
        # A key of type RDB_TYPE_MODULE_2 (7): its module id follows.
        data = (b"REDIS0010\xfe\x00\xfb\x01\x00\x07\x03key"
                + b"\x81" + (0x1234).to_bytes(8, "big") + b"\x00" * 16)
        with open(rdb_path(node), "wb") as fh:
            fh.write(data)
        with self.assertRaises(RuntimeError) as caught:
            node.start()
        text = str(caught.exception)
        self.assertIn(rdb_path(node), text)
        self.assertIn("module", text.lower())
        node.proc = None


class MisconfTests(TestCase):
    def test_misconf_when_the_save_fails(self):
        node = start_node(self, directives=[("save", "3600 1")])
        r = node.client()
        r.set("a", 1)
        # dbfilename inside a directory that doesn't exist: the rename of
        # the finished temp file fails, as a full or broken disk would.
        os.makedirs(os.path.join(node.workdir, "dump.rdb", "in-the-way"))
        r.bgsave()
        wait_for(lambda: r.info("persistence")["rdb_last_bgsave_status"]
                 == "err", 10, "the failed save")
        with self.assertRaises(redis.ResponseError) as caught:
            r.set("b", 2)
        self.assertTrue(str(caught.exception).startswith(
            "MISCONF Redis is configured to save RDB snapshots"))
        with self.assertRaises(redis.ResponseError):
            r.ping()
        self.assertEqual(r.get("a"), b"1")          # reads still work
        r.config_set("stop-writes-on-bgsave-error", "no")
        self.assertTrue(r.set("b", 2))


def decode_dataset_via_client(r) -> dict:
    """The strings, lists and hashes of a server, as decode_file gives them."""
    out = {}
    for key in r.scan_iter(count=1000):
        kind = r.type(key).decode()
        if kind == "string":
            value = r.get(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "hash":
            value = r.hgetall(key)
        else:
            raise AssertionError(kind)
        when = r.execute_command("PEXPIRETIME", key)
        out[key] = (value, None if when < 0 else when)
    return out


def node_start_nowait(node):
    """Start the process without waiting for PONG."""
    import subprocess
    from tests.integration.harness import ROOT
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    log = open(node.log_path + ".out", "ab")
    node.proc = subprocess.Popen(node.command(), cwd=node.workdir,
                                 stdout=log, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True)
    log.close()


def raw_command(port, data: bytes, size=256) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(data)
            out = s.recv(size)
            if size > 256:
                time.sleep(0.05)
                try:
                    s.settimeout(0.2)
                    out += s.recv(size)
                except OSError:
                    pass
            return out
    except OSError:
        return b""


class RedisServerInteropTests(TestCase):
    def setUp(self):
        if not have("redis-server"):
            raise SkipTest("redis-server is not installed")

    def test_redis_rdb_loads_in_rcluster(self):
        peer = start_node(self, binary="redis-server")
        r = peer.client()
        populate(r)
        r.pfadd("hll", *[f"e{i}" for i in range(100)])
        r.function_load(LIBRARY)
        before = dataset(r)
        r.save()
        node = NodeProcess()
        self.addCleanup(node.cleanup)
        shutil.copy(rdb_path(peer), rdb_path(node))
        node.start()
        loaded = node.client()
        self.assertEqual(dataset(loaded), before)
        self.assertEqual(loaded.fcall("rdbtest", 0), b"from a library")
        self.assertIn("Loading RDB produced by version 7.0.15", node.output())

    def test_rcluster_rdb_loads_in_redis(self):
        node = start_node(self)
        r = node.client()
        populate(r)
        r.function_load(LIBRARY)
        before = dataset(r)
        r.save()
        peer = NodeProcess(binary="redis-server")
        self.addCleanup(peer.cleanup)
        shutil.copy(rdb_path(node), rdb_path(peer))
        peer.start()
        loaded = peer.client()
        self.assertEqual(dataset(loaded), before)
        self.assertEqual(loaded.fcall("rdbtest", 0), b"from a library")
