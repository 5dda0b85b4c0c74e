"""Scenarios that run against rcluster and against Debian's redis-server.

A test module writes its checks once in a ``DualServerScenarios``
subclass and mixes it into two TestCases, one per ``binary``: the
expectations are Redis's own behaviour, checked both ways.
"""
import threading
import time

from tests.integration.harness import have, start_node


class DualServerScenarios:
    """A node of ``binary`` per test, with two redis-py clients: ``self.r``
    and ``self.other`` (mixed into a TestCase; no tests here)."""

    binary = "rcluster"

    def setUp(self):
        if self.binary != "rcluster" and not have(self.binary):
            self.skipTest(f"{self.binary} not installed")
        self.node = start_node(self, binary=self.binary)
        self.r = self.node.client()
        self.other = self.node.client()
        self.addCleanup(self.r.close)
        self.addCleanup(self.other.close)

    def run_checks(self, *checks):
        """Several checks per node (a node takes a second to start), each
        from an empty keyspace."""
        for check in checks:
            self.r.flushall()
            check()

    def in_background(self, call):
        """Run call() in a thread; returns a function that waits for it and
        gives its result."""
        result = []
        thread = threading.Thread(target=lambda: result.append(call()),
                                  daemon=True)
        thread.start()

        def join():
            thread.join(10)
            self.assertFalse(thread.is_alive())
            return result[0]
        return join

    def wait_blocked(self, count: int):
        """Until INFO shows count blocked clients (at most 5 s)."""
        deadline = time.monotonic() + 5
        while self.r.info("clients")["blocked_clients"] != count:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)
