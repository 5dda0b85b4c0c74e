"""``rcluster-cluster start|stop|status|clean`` for real: daemonized twistd
nodes in a temporary run directory on free loopback ports."""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile

from twisted.trial.unittest import TestCase

from rcluster import localcluster
from rcluster.admin import AdminClient, info_fields
from tests.integration.harness import ROOT, have

SCRIPT = os.path.join(os.path.dirname(sys.executable), "rcluster-cluster")


def free_base_port(count: int) -> int:
    """A base port with ``count`` free ports from it, and their bus ports."""
    for _ in range(200):
        base = random.randrange(20000, 45000)
        ports = [p for port in range(base, base + count)
                 for p in (port, port + 10000)]
        if not any(localcluster.port_in_use(p) for p in ports):
            return base
    raise RuntimeError("no free range of ports found")


class LocalClusterTests(TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rcluster-localcluster-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        # Whatever a test does, every node it started is stopped.
        self.addCleanup(localcluster.stop_nodes, self.dir)
        self.base = free_base_port(3)
        self.ports = [self.base + i for i in range(3)]

    def run_tool(self, *args, expect=0):
        command = [SCRIPT] if os.path.exists(SCRIPT) else \
            [sys.executable, "-m", "rcluster.localcluster"]
        result = subprocess.run(
            command + list(args) + ["--dir", self.dir, "--base-port", str(self.base),
                                    "--node-timeout", "1000"],
            capture_output=True, text=True, timeout=120, cwd=ROOT)
        self.assertEqual(result.returncode, expect, result.stdout + result.stderr)
        return result.stdout + result.stderr

    def info(self, port) -> dict:
        with AdminClient(port=port) as client:
            return info_fields(client.call("CLUSTER", "INFO"))

    def myids(self) -> list:
        ids = []
        for port in self.ports:
            with AdminClient(port=port) as client:
                ids.append(client.call("CLUSTER", "MYID"))
        return ids

    def test_start_status_stop_restart_clean(self):
        out = self.run_tool("start", "--replicas", "0")
        self.assertIn(f"3 masters on 127.0.0.1:{self.base}-{self.base + 2} "
                      "(created), cluster_state:ok", out)
        self.assertIn(f"redis-cli -c -p {self.base}", out)
        for port in self.ports:
            fields = self.info(port)
            self.assertEqual((fields["cluster_state"], fields["cluster_known_nodes"],
                              fields["cluster_slots_assigned"], fields["cluster_size"]),
                             ("ok", "3", "16384", "3"))
        self.assertEqual(sorted(self.info(p)["cluster_my_epoch"] for p in self.ports),
                         ["1", "2", "3"])
        if have("redis-cli"):
            # What the printed hint says works: redis-cli -c follows MOVED.
            for key in ("a", "b", "c", "d"):
                cli = ["redis-cli", "-c", "-p", str(self.base)]
                subprocess.run(cli + ["set", key, key * 3], check=True,
                               capture_output=True, timeout=30)
                got = subprocess.run(cli + ["get", key], capture_output=True,
                                     text=True, timeout=30).stdout.strip()
                self.assertEqual(got, key * 3)
        names = self.myids()
        pids = localcluster.running_nodes(self.dir)
        self.assertEqual(sorted(pids), self.ports)

        # Starting twice is refused and changes nothing.
        out = self.run_tool("start", "--replicas", "0", expect=1)
        self.assertIn(f"is already running (ports {self.base}-{self.base + 2}); "
                      f"'rcluster-cluster stop --dir {self.dir}' stops it", out)
        self.assertEqual(localcluster.running_nodes(self.dir), pids)

        out = self.run_tool("status")
        for port in self.ports:
            self.assertIn(f"127.0.0.1:{port} pid {pids[port]} cluster_state:ok "
                          "known_nodes:3 slots_assigned:16384", out)

        out = self.run_tool("stop")
        self.assertIn(f"stopped 3 nodes (127.0.0.1:{self.base}-{self.base + 2})", out)
        self.assertTrue(all(localcluster.process_gone(pid) for pid in pids.values()))
        self.assertIn("no cluster is running", self.run_tool("stop"))
        self.assertIn("no cluster is running", self.run_tool("status", expect=1))

        # The next start brings the same cluster back from nodes.conf.
        out = self.run_tool("start", "--replicas", "0")
        self.assertIn("(restarted from its nodes.conf files), cluster_state:ok", out)
        self.assertEqual(self.myids(), names)
        self.run_tool("clean")
        self.assertEqual(localcluster.running_nodes(self.dir), {})
        self.assertFalse(os.path.exists(self.dir))

    def test_busy_port_is_refused_cleanly(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", self.base + 1 + 10000))
            sock.listen()
            out = self.run_tool("start", "--replicas", "0", expect=1)
        self.assertIn(f"port(s) {self.base + 1 + 10000} already in use", out)
        self.assertEqual(localcluster.running_nodes(self.dir), {})
        self.assertEqual(localcluster.node_ports(self.dir), [])

    def test_other_cluster_in_run_dir_is_refused(self):
        # A run directory that holds a cluster on other ports.
        other = os.path.join(self.dir, str(self.base + 7))
        os.makedirs(other)
        with open(os.path.join(other, "nodes.conf"), "w") as fh:
            fh.write("vars currentEpoch 0 lastVoteEpoch 0\n")
        out = self.run_tool("start", "--replicas", "0", expect=1)
        self.assertIn(f"holds a cluster on ports {self.base + 7}", out)
        self.assertIn(f"'rcluster-cluster clean --dir {self.dir}' first", out)
        self.assertEqual(localcluster.running_nodes(self.dir), {})

    def test_bad_arguments(self):
        out = self.run_tool("start", "--nodes", "0", expect=2)
        self.assertIn("--nodes must be between 1 and 100", out)

    def test_default_is_three_masters_three_replicas(self):
        if not have("redis-cli"):
            raise __import__("unittest").SkipTest("redis-cli not installed")
        self.base = free_base_port(6)
        ports = [self.base + i for i in range(6)]
        out = self.run_tool("start")
        self.assertIn(f"3 masters + 3 replicas on 127.0.0.1:{self.base}-"
                      f"{self.base + 5} (created), cluster_state:ok", out)
        out = self.run_tool("status")
        for port in ports[:3]:
            self.assertRegex(out, rf"127.0.0.1:{port} pid \d+ cluster_state:ok "
                             r"known_nodes:6 slots_assigned:16384 role:master")
        for port in ports[3:]:
            self.assertIn(f"slots_assigned:16384 role:replica of {port - 3} "
                          "link:up", out)
        check = subprocess.run(
            ["redis-cli", "--cluster", "check", f"127.0.0.1:{self.base}"],
            capture_output=True, text=True, timeout=30).stdout
        self.assertIn("[OK] All nodes agree about slots configuration.", check)
        self.assertIn("[OK] All 16384 slots covered.", check)
        # Each master's summary line: "... | 1 slaves."
        self.assertEqual(check.count("| 1 slaves."), 3)
        self.assertNotIn("[ERR]", check)
        result = subprocess.run(
            ["redis-cli", "-c", "-p", str(self.base), "set", "foo", "bar"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(result.stdout.strip(), "OK")
