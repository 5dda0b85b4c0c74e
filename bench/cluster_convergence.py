#!/usr/bin/env python3
"""Cluster convergence and failure detection: rcluster vs redis-server.

For N local nodes of each kind (``twistd rcluster`` and Debian's
redis-server 7.0), cluster-node-timeout 2000, every node a master with
its share of the slots and its own config epoch (as ``redis-cli
--cluster create`` leaves them):

  join  time from the CLUSTER MEET of the last node (all MEETs are sent
        by the first node) until every node's CLUSTER NODES lists N
        nodes, none in handshake;
  fail  time from SIGKILL of one node until every other node flags it
        ``fail``.

Both are random processes (gossip picks its entries at random, pings
go to random nodes), so each size runs --runs times per kind, the kinds
taking turns; the table shows the median, mean and range, and the
rcluster/redis-server ratios of the medians and of the means.  Every
process started is stopped, even on Ctrl-C.
Usage: bench/cluster_convergence.py [--sizes 10 30] [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rcluster.admin import AdminClient  # noqa: E402
from tests.integration.harness import NodeProcess  # noqa: E402

NODE_TIMEOUT = 2000
SLOTS = 16384
KINDS = ("rcluster", "redis-server")
# Seconds between two polling rounds: a CLUSTER NODES costs a Python node
# far more CPU than redis-server, and 30 nodes share two cores, so polling
# harder would slow the very thing it measures.
POLL = 0.05
DEADLINE = 120.0     # give up on a phase after this long


class Cluster:
    """N cluster nodes of one kind, each with a persistent admin connection."""

    def __init__(self, kind, size):
        self.kind = kind
        self.size = size
        self.nodes = []
        self.created = []       # every NodeProcess, for stop()
        self.clients = {}

    def new_node(self) -> NodeProcess:
        node = NodeProcess(binary=self.kind, cluster=True, directives=[
            ("cluster-node-timeout", str(NODE_TIMEOUT))])
        self.created.append(node)
        return node

    def start_node(self, attempts=3) -> NodeProcess:
        """Start a node on a free port; a port taken between its choice and
        the start (the other nodes' bus connections use ephemeral ports
        too) is retried on another one."""
        for attempt in range(attempts):
            node = self.new_node()
            try:
                return node.start(60)
            except RuntimeError:
                node.cleanup()
                if attempt == attempts - 1:
                    raise

    def start(self):
        with ThreadPoolExecutor(8) as pool:
            self.nodes = list(pool.map(lambda _: self.start_node(),
                                       range(self.size)))
        for node in self.nodes:
            self.clients[node] = AdminClient(port=node.port, timeout=10)

    def call(self, node, *args):
        return self.clients[node].call(*args)

    def prepare(self):
        """Slots and distinct config epochs, as redis-cli --cluster create."""
        size = len(self.nodes)
        bounds = [i * SLOTS // size for i in range(size + 1)]
        for i, node in enumerate(self.nodes):
            self.call(node, "CLUSTER", "ADDSLOTSRANGE", bounds[i], bounds[i + 1] - 1)
            self.call(node, "CLUSTER", "SET-CONFIG-EPOCH", i + 1)

    def join(self) -> float:
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.call(first, "CLUSTER", "MEET", "127.0.0.1", node.port)
        start = time.monotonic()
        wanted = len(self.nodes)
        self.wait_all(self.nodes, lambda view: len(view) == wanted and not any(
            "handshake" in flags for flags in view.values()), "join")
        return time.monotonic() - start

    def fail_one(self) -> float:
        victim = self.nodes[-1]
        name = self.call(victim, "CLUSTER", "MYID").decode()
        self.clients.pop(victim).close()
        victim.kill()
        start = time.monotonic()
        self.wait_all(self.nodes[:-1],
                      lambda view: "fail" in view.get(name, "").split(","),
                      "fail")
        return time.monotonic() - start

    def view(self, node) -> dict:
        """CLUSTER NODES as {name: flags}."""
        text = self.call(node, "CLUSTER", "NODES").decode()
        return {line.split()[0]: line.split()[2] for line in text.splitlines()}

    def wait_all(self, nodes, done, what):
        """Poll every node until ``done(view)`` holds for each of them
        (a node that got there is not asked again)."""
        pending = list(nodes)
        deadline = time.monotonic() + DEADLINE
        while pending:
            pending = [n for n in pending if not done(self.view(n))]
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind}: {what} not reached after "
                                   f"{DEADLINE:.0f} s on {len(pending)} nodes")
            time.sleep(POLL)

    def stop(self):
        for client in self.clients.values():
            client.close()
        self.clients.clear()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: n.cleanup(), self.created))


def measure(kind, size) -> tuple:
    cluster = Cluster(kind, size)
    try:
        cluster.start()
        cluster.prepare()
        join = cluster.join()
        fail = cluster.fail_one()
        return join, fail
    finally:
        cluster.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS),
                        choices=KINDS)
    args = parser.parse_args()
    # A SIGTERM stops the run like Ctrl-C: the finally clauses clean up.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    runs = {(kind, size): [] for kind in args.kinds for size in args.sizes}
    for size in args.sizes:
        for run in range(args.runs):
            for kind in args.kinds:
                join, fail = measure(kind, size)
                print(f"  {kind:12} N={size:<3} run {run + 1}: join {join:6.2f} s"
                      f"  fail {fail:6.2f} s", flush=True)
                runs[kind, size].append((join, fail))

    print(f"\ncluster-node-timeout {NODE_TIMEOUT} ms, {args.runs} run(s) per "
          f"kind and size, seconds")
    print(f"{'N':>4} {'phase':5} {'':13}{'median':>8}{'mean':>8}{'min':>8}"
          f"{'max':>8}")
    for size in args.sizes:
        for index, phase in enumerate(("join", "fail")):
            stats = {}
            for kind in args.kinds:
                values = [r[index] for r in runs[kind, size]]
                stats[kind] = (statistics.median(values), statistics.mean(values))
                print(f"{size:>4} {phase:5} {kind:13}{stats[kind][0]:8.2f}"
                      f"{stats[kind][1]:8.2f}{min(values):8.2f}{max(values):8.2f}")
            if len(stats) == 2:
                ours, theirs = stats["rcluster"], stats["redis-server"]
                print(f"{'':4} {'':5} {'ratio':13}{ours[0] / theirs[0]:8.2f}"
                      f"{ours[1] / theirs[1]:8.2f}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: every node was stopped")
