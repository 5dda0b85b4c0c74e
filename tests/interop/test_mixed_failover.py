"""Elections in a mixed cluster: votes from redis-server 7.0 and rcluster
masters elect the replica, whichever kind it is.

Four masters - A and B rcluster, C and D redis-server - and two replicas:
RA (rcluster) of A and RC (redis-server) of C, so each replication link
joins two nodes of one kind.  Killing A needs the votes of B, C and D
(quorum 3 of 4): two come from redis-server.  Then killing C needs the
votes of the new master RA, B and D: two come from rcluster.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from twisted.trial.unittest import TestCase

from tests.integration.harness import NodeProcess, have
from tests.integration.test_cluster_formation import (TIMEOUT, converged,
                                                      wait_for)


def role(node, viewer):
    """'master' or 'slave <master name>' of node, as viewer sees it."""
    name = node.cli("cluster", "myid").strip()
    for line in viewer.cli("cluster", "nodes").splitlines():
        fields = line.split()
        if fields[0] == name:
            flags = fields[2].split(",")
            return "master" if "master" in flags else "slave " + fields[3]
    return None


class MixedFailoverTests(TestCase):
    def setUp(self):
        if not (have("redis-server") and have("redis-cli")):
            self.skipTest("redis-server / redis-cli not installed")
        kinds = ["rcluster", "rcluster", "redis-server", "redis-server",
                 "rcluster", "redis-server"]
        self.nodes = [NodeProcess(binary=kind, cluster=True,
                                  directives=[TIMEOUT]) for kind in kinds]
        for node in self.nodes:
            self.addCleanup(node.cleanup)
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.start(), self.nodes))

    def test_both_kinds_vote(self):
        a, b, c, d, ra, rc = self.nodes
        bounds = [i * 16384 // 4 for i in range(5)]
        for epoch, (node, low, high) in enumerate(
                zip((a, b, c, d), bounds, bounds[1:]), start=1):
            node.cli("cluster", "addslotsrange", str(low), str(high - 1))
            node.cli("cluster", "set-config-epoch", str(epoch))
        for node in (b, c, d, ra, rc):
            a.cli("cluster", "meet", "127.0.0.1", str(node.port))
        wait_for(lambda: converged(self.nodes), timeout=30,
                 what="convergence")
        a_id = a.cli("cluster", "myid").strip()
        c_id = c.cli("cluster", "myid").strip()
        self.assertEqual(ra.cli("cluster", "replicate", a_id).strip(), "OK")
        self.assertEqual(rc.cli("cluster", "replicate", c_id).strip(), "OK")
        for replica, master_id in ((ra, a_id), (rc, c_id)):
            wait_for(lambda r=replica, m=master_id: all(
                role(r, v) == "slave " + m for v in self.nodes), timeout=20,
                what="every node to see the replica")
            wait_for(lambda r=replica: "master_link_status:up" in
                     r.cli("info", "replication"), timeout=20,
                     what="the replica to sync")
        a.cli("set", "{a}k", "1")  # may be MOVED: the data is not the point

        # A dies: RA needs the votes of B, C and D (two redis-server).
        a.kill()
        live = [b, c, d, ra, rc]
        wait_for(lambda: all(role(ra, v) == "master" for v in live),
                 timeout=20, what="RA elected and known by all")
        self.assertIn("Failover auth granted to " + ra.cli(
            "cluster", "myid").strip(), c.output() + d.output())

        # C dies: RC needs the votes of RA, B and D (two rcluster).
        c.kill()
        live = [b, d, ra, rc]
        wait_for(lambda: all(role(rc, v) == "master" for v in live),
                 timeout=20, what="RC elected and known by all")
        check = b.cli("--cluster", "check", b.address)
        self.assertIn("[OK] All 16384 slots covered.", check)
        self.assertIn("[OK] All nodes agree about slots configuration.", check)
