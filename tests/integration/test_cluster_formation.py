"""Real ``twistd rcluster`` processes forming a cluster on loopback:
CLUSTER MEET, redis-cli --cluster create/check, the nodes.conf lock,
failure detection, restart from nodes.conf, and the bus over TLS."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

from twisted.trial.unittest import TestCase

from tests.integration.harness import (ROOT, NodeProcess, free_port, have,
                                       wait_for)

TIMEOUT = ("cluster-node-timeout", "1000")


def start_nodes(test, count, **kwargs) -> list:
    """Start ``count`` cluster nodes in parallel; all stopped at cleanup."""
    nodes = [NodeProcess(cluster=True, **kwargs) for _ in range(count)]
    for node in nodes:
        test.addCleanup(node.cleanup)
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(lambda n: n.start(), nodes))
    return nodes


def cluster_view(node) -> set:
    """CLUSTER NODES as a set of (name, flags without myself, master,
    slots): what every node of a healthy cluster agrees on."""
    view = set()
    for line in node.cli("cluster", "nodes").splitlines():
        fields = line.split()
        flags = ",".join(f for f in fields[2].split(",") if f != "myself")
        view.add((fields[0], flags, fields[3], tuple(fields[8:])))
    return view


def info(node) -> dict:
    text = node.cli("cluster", "info")
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def converged(nodes) -> bool:
    if any(info(n)["cluster_state"] != "ok" for n in nodes):
        return False
    views = [cluster_view(n) for n in nodes]
    return all(v == views[0] for v in views) and len(views[0]) == len(nodes)


def flags_of(node, name) -> str:
    for line in node.cli("cluster", "nodes").splitlines():
        if line.startswith(name):
            return line.split()[2]
    return ""


def form(test, nodes, bus_port=None):
    """Spread the slots over the nodes and MEET them all from the first
    (on their TLS port and bus port when ``bus_port`` is given)."""
    bounds = [i * 16384 // len(nodes) for i in range(len(nodes) + 1)]
    for node, low, high in zip(nodes, bounds, bounds[1:]):
        test.assertEqual(node.cli("cluster", "addslotsrange", str(low),
                                  str(high - 1)).strip(), "OK")
    for node in nodes[1:]:
        address = [str(node.port)] if bus_port is None else \
            [str(node.meet_port), str(bus_port(node))]
        test.assertEqual(nodes[0].cli("cluster", "meet", "127.0.0.1",
                                      *address).strip(), "OK")
    wait_for(lambda: converged(nodes), what="convergence")


class ClusterFormationTests(TestCase):
    def setUp(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")

    def test_meet_fail_and_restart(self):
        nodes = start_nodes(self, 3, directives=[TIMEOUT])
        form(self, nodes)
        first = info(nodes[0])
        self.assertEqual((first["cluster_known_nodes"], first["cluster_size"],
                          first["cluster_slots_assigned"]), ("3", "3", "16384"))
        epochs = {info(n)["cluster_my_epoch"] for n in nodes}
        self.assertEqual(len(epochs), 3)      # collisions were resolved

        # A second node can't run on the same nodes.conf.
        twin = NodeProcess(cluster=True, workdir=nodes[0].workdir)
        self.addCleanup(twin.stop)
        self.assertRaises(RuntimeError, twin.start, 20)
        self.assertIn("is already used by a different Redis Cluster node",
                      twin.output())

        # A killed node is marked FAIL by the others (quorum of masters).
        victim = nodes[2]
        name = victim.cli("cluster", "myid").strip()
        victim.kill()
        for node in nodes[:2]:
            wait_for(lambda: "fail" in flags_of(node, name).split(","),
                     what="FAIL flag")
            wait_for(lambda: info(node)["cluster_state"] == "fail",
                     what="cluster_state:fail")

        # Restarted from its nodes.conf, it rejoins under the same name,
        # with its slots and epoch, and the FAIL flag is cleared.
        victim.start()
        self.assertEqual(victim.cli("cluster", "myid").strip(), name)
        self.assertEqual(info(victim)["cluster_known_nodes"], "3")
        wait_for(lambda: converged(nodes), timeout=30, what="rejoin")
        self.assertNotIn("fail", flags_of(nodes[0], name))

    def test_redis_cli_cluster_create_and_check(self):
        nodes = start_nodes(self, 3, directives=[TIMEOUT])
        addresses = [n.address for n in nodes]
        out = nodes[0].cli("--cluster", "create", *addresses,
                           "--cluster-replicas", "0", "--cluster-yes")
        self.assertIn("[OK] All 16384 slots covered.", out)
        wait_for(lambda: converged(nodes), what="convergence")
        check = nodes[1].cli("--cluster", "check", nodes[1].address)
        self.assertIn("[OK] All nodes agree about slots configuration.", check)
        self.assertIn("[OK] All 16384 slots covered.", check)
        self.assertNotIn("[ERR]", check)
        # redis-cli gave each node its own config epoch.
        self.assertEqual(sorted(info(n)["cluster_my_epoch"] for n in nodes),
                         ["1", "2", "3"])


class TLSBusTests(TestCase):
    """tls-cluster yes: the bus speaks TLS (clients stay on plaintext)."""

    def setUp(self):
        if not (have("redis-cli") and have("openssl")):
            self.skipTest("redis-cli or openssl not installed")
        self.certs = tempfile.mkdtemp(prefix="rcluster-tls-")
        self.addCleanup(shutil.rmtree, self.certs, True)
        subprocess.run(["sh", os.path.join(ROOT, "etc", "tls", "gen-certs.sh"),
                        self.certs], check=True, capture_output=True, timeout=60)

    def test_cluster_forms_over_tls(self):
        def cert(name):
            return os.path.join(self.certs, name)
        nodes = []
        for _ in range(3):
            tls_port, bus_port = free_port(bus=False), free_port(bus=False)
            node = NodeProcess(cluster=True, directives=[
                TIMEOUT, ("tls-port", str(tls_port)), ("tls-cluster", "yes"),
                ("cluster-port", str(bus_port)),
                ("tls-cert-file", cert("node.crt")),
                ("tls-key-file", cert("node.key")),
                ("tls-ca-cert-file", cert("ca.crt")),
                ("tls-auth-clients", "optional")])
            node.meet_port, node.bus_port = tls_port, bus_port
            self.addCleanup(node.cleanup)
            nodes.append(node)
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda n: n.start(), nodes))
        form(self, nodes, bus_port=lambda n: n.bus_port)
        # Plaintext clients see plaintext ports; the bus ports are TLS.
        line = [ln for ln in nodes[0].cli("cluster", "nodes").splitlines()
                if "myself" in ln][0]
        self.assertIn(f"127.0.0.1:{nodes[0].port}@{nodes[0].bus_port} ", line)
        tls_cli = ("--tls", "--cacert", cert("ca.crt"), "-p",
                   str(nodes[1].meet_port))
        out = subprocess.run(["redis-cli", *tls_cli, "cluster", "info"],
                             capture_output=True, text=True, timeout=30)
        self.assertIn("cluster_state:ok", out.stdout)
