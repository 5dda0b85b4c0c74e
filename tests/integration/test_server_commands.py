"""Server commands against a real ``twistd rcluster`` node, driven by
redis-py and redis-cli: INFO, CONFIG, COMMAND, CLIENT, pub/sub, MONITOR,
DEBUG SLEEP and SHUTDOWN."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import redis
from twisted.trial.unittest import TestCase

from tests.integration.harness import have, start_node


class RedisPyTests(TestCase):
    def setUp(self):
        self.node = start_node(self, directives=[
            ("enable-debug-command", "local")])
        self.r = self.node.client()

    def test_info_config_command(self):
        self.r.set("k", "v")
        self.r.set("t", "v", ex=100)
        info = self.r.info()
        self.assertEqual(info["redis_version"], "7.0.15")
        self.assertEqual(info["tcp_port"], self.node.port)
        self.assertEqual(info["role"], "master")
        db0 = info["db0"]
        self.assertEqual((db0["keys"], db0["expires"]), (2, 1))
        # An estimate of the mean remaining TTL in ms (Redis keeps a
        # running sample that starts at 0).
        self.assertTrue(0 <= db0["avg_ttl"] <= 100_000, db0)
        self.assertEqual(info["cluster_enabled"], 0)
        self.assertGreater(info["used_memory"], 1 << 20)
        stats = self.r.info("commandstats")
        self.assertEqual(stats["cmdstat_set"]["calls"], 2)
        self.assertIn("cmdstat_info", stats)
        self.assertIn("executable", self.r.info("server"))
        self.check_config()
        self.check_command()

    def check_config(self):
        self.assertEqual(self.r.config_get("maxclients"),
                         {"maxclients": "10000"})
        self.assertTrue(self.r.config_set("maxclients", 50))
        everything = self.r.config_get("*")
        self.assertEqual(everything["maxclients"], "50")
        self.assertEqual(everything["port"], str(self.node.port))
        self.assertEqual(self.r.execute_command("CONFIG", "SET", "timeout",
                                                "100", "hz", "20"), b"OK")
        self.assertEqual(self.r.config_get("timeout"), {"timeout": "100"})
        with self.assertRaises(redis.ResponseError) as caught:
            self.r.config_set("port", 1)
        self.assertEqual(str(caught.exception),
                         "CONFIG SET failed (possibly related to argument "
                         "'port') - can't set immutable config")

    def check_command(self):
        commands = self.r.command()
        self.assertEqual(commands["get"]["first_key_pos"], 1)
        self.assertEqual(commands["mset"]["step_count"], 2)
        self.assertIn("movablekeys", commands["zunionstore"]["flags"])
        self.assertEqual(self.r.command_count(), len(commands))
        self.assertEqual(self.r.command_getkeys("ZUNIONSTORE", "d", 2, "a",
                                                "b"), ["d", "a", "b"])

    def test_pubsub(self):
        sub = self.r.pubsub()
        sub.subscribe("news")
        sub.psubscribe("sp*")
        self.assertEqual(sub.get_message(timeout=5)["type"], "subscribe")
        self.assertEqual(sub.get_message(timeout=5)["type"], "psubscribe")
        self.assertEqual(self.r.publish("news", "hello"), 1)
        self.assertEqual(self.r.publish("sport", "goal"), 1)
        message = sub.get_message(timeout=5)
        self.assertEqual((message["type"], message["channel"],
                          message["data"]), ("message", b"news", b"hello"))
        message = sub.get_message(timeout=5)
        self.assertEqual((message["type"], message["pattern"],
                          message["channel"], message["data"]),
                         ("pmessage", b"sp*", b"sport", b"goal"))
        self.assertEqual(self.r.pubsub_numsub("news"), [(b"news", 1)])
        self.assertEqual(self.r.pubsub_numpat(), 1)
        sub.close()
        self.check_pubsub_resp3()

    def check_pubsub_resp3(self):
        r3 = self.node.client(protocol=3)
        sub = r3.pubsub()
        sub.ssubscribe("shard")
        self.assertEqual(sub.get_sharded_message(timeout=5)["type"],
                         "ssubscribe")
        self.assertEqual(self.r.spublish("shard", "x"), 1)
        message = sub.get_sharded_message(timeout=5)
        self.assertEqual((message["type"], message["data"]),
                         ("smessage", b"x"))
        sub.close()

    def test_client_kill_list_and_debug_sleep(self):
        victim = socket.create_connection(("127.0.0.1", self.node.port), 10)
        self.addCleanup(victim.close)
        victim.sendall(b"CLIENT SETNAME victim\r\nCLIENT ID\r\n")
        replies = b""
        while replies.count(b"\r\n") < 2:
            replies += victim.recv(100)
        victim_id = int(replies.split(b"\r\n")[1][1:])
        names = [c["name"] for c in self.r.client_list()]
        self.assertIn("victim", names)
        self.assertEqual(self.r.client_kill_filter(_id=victim_id), 1)
        self.assertEqual(victim.recv(100), b"")          # closed
        self.assertNotIn("victim", [c["name"] for c in self.r.client_list()])
        self.check_debug_sleep()

    def check_debug_sleep(self):
        sleeper = self.node.client()
        started = time.monotonic()
        thread = threading.Thread(target=sleeper.execute_command,
                                  args=("DEBUG", "SLEEP", "1"))
        thread.start()
        time.sleep(0.2)
        self.assertTrue(self.r.ping())          # served meanwhile
        self.assertLess(time.monotonic() - started, 0.9)
        thread.join(10)
        self.assertGreaterEqual(time.monotonic() - started, 1.0)


class RedisCliTests(TestCase):
    def setUp(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")

    def test_info_config_monitor(self):
        self.node = start_node(self)
        info = self.node.cli("info")
        # (text mode: the \r\n line ends read as \n)
        self.assertTrue(info.startswith("# Server\nredis_version:7.0.15\n"),
                        info[:80])
        self.assertIn("# Keyspace", info)
        listing = self.node.cli("--no-raw", "config", "get", "maxclients")
        self.assertEqual(listing, '1) "maxclients"\n2) "10000"\n')
        everything = self.node.cli("--no-raw", "config", "get", "*")
        self.assertIn('"appendonly"\n', everything)
        self.check_monitor()

    def check_monitor(self):
        monitor = subprocess.Popen(["redis-cli", "-p", str(self.node.port),
                                    "monitor"], stdout=subprocess.PIPE,
                                   text=True)
        self.addCleanup(monitor.wait, 10)
        self.addCleanup(monitor.kill)
        self.assertEqual(monitor.stdout.readline(), "OK\n")
        r = self.node.client()
        r.set("k", "v")
        r.get("k")
        lines = []      # after redis-py's own handshake (HELLO...)
        while not lines or '"GET"' not in lines[-1]:
            lines.append(monitor.stdout.readline())
        self.assertRegex(lines[-2], r'^\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] '
                                    r'"SET" "k" "v"\n$')
        self.assertRegex(lines[-1], r'"GET" "k"\n$')

    def test_config_rewrite(self):
        workdir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, workdir, True)
        conf = os.path.join(workdir, "node.conf")
        with open(conf, "w") as fh:
            fh.write("# kept\nmaxclients 100\n")
        node = start_node(self, extra_args=["--config", conf])
        self.assertEqual(node.cli("config", "set", "maxclients", "200"),
                         "OK\n")
        self.assertEqual(node.cli("config", "rewrite"), "OK\n")
        with open(conf) as fh:
            self.assertEqual(fh.read().splitlines()[:2],
                             ["# kept", "maxclients 200"])

    def test_shutdown(self):
        node = start_node(self)
        node.cli("shutdown", "nosave", check=False)
        self.assertEqual(node.proc.wait(20), 0)
