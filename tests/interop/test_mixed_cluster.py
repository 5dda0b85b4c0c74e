"""A mixed cluster: three Debian redis-server 7.0 nodes and three rcluster
nodes MEET each other in both directions, agree on the configuration, and
both kinds detect failures of both kinds."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from twisted.trial.unittest import TestCase

from tests.integration.harness import NodeProcess, have
from tests.integration.test_cluster_formation import (TIMEOUT, cluster_view,
                                                      converged, flags_of,
                                                      info, wait_for)


class MixedClusterTests(TestCase):
    def setUp(self):
        if not (have("redis-server") and have("redis-cli")):
            self.skipTest("redis-server / redis-cli not installed")
        kinds = ["redis-server", "rcluster"] * 3
        self.nodes = [NodeProcess(binary=kind, cluster=True,
                                  directives=[TIMEOUT]) for kind in kinds]
        for node in self.nodes:
            self.addCleanup(node.cleanup)
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.start(), self.nodes))

    def meet(self, a, b):
        self.assertEqual(a.cli("cluster", "meet", "127.0.0.1",
                               str(b.port)).strip(), "OK")

    def test_mixed_cluster_forms_agrees_and_detects_failures(self):
        nodes = self.nodes     # redis, rcluster, redis, rcluster, ...
        bounds = [i * 16384 // 6 for i in range(7)]
        for node, low, high in zip(nodes, bounds, bounds[1:]):
            node.cli("cluster", "addslotsrange", str(low), str(high - 1))
        # Both directions: redis-server meets rcluster and vice versa; the
        # rest is learned from gossip.
        self.meet(nodes[0], nodes[1])
        self.meet(nodes[3], nodes[2])
        self.meet(nodes[2], nodes[5])
        self.meet(nodes[5], nodes[4])
        self.meet(nodes[1], nodes[4])
        wait_for(lambda: converged(nodes), timeout=30, what="convergence")
        view = cluster_view(nodes[0])
        self.assertEqual(len(view), 6)
        self.assertEqual({flags for _, flags, _, _ in view}, {"master"})
        self.assertEqual(len({info(n)["cluster_my_epoch"] for n in nodes}), 6)
        check = nodes[3].cli("--cluster", "check", nodes[3].address)
        self.assertIn("[OK] All nodes agree about slots configuration.", check)
        self.assertIn("[OK] All 16384 slots covered.", check)

        # Kill one node of each kind: the survivors of both kinds mark both
        # FAIL (4 of 6 masters remain: a majority).
        victims = [nodes[0], nodes[1]]
        names = [v.cli("cluster", "myid").strip() for v in victims]
        for victim in victims:
            victim.kill()
        for node in nodes[2:]:
            for name in names:
                wait_for(lambda: "fail" in flags_of(node, name).split(","),
                         what=f"{node.binary} marking {name} as failing")
            self.assertEqual(info(node)["cluster_state"], "fail")
