#!/usr/bin/env python3
"""Failover time, rcluster vs redis-server, side by side on this machine.

For each kind, a 3 masters + 3 replicas cluster (redis-cli --cluster create
--cluster-replicas 1, cluster-node-timeout 2000) on loopback.  Then, N
times: ``kill -9`` a master, and measure the time until a SET to one of its
slots succeeds on its (promoted) replica; the killed node is restarted,
rejoins as a replica, and the cluster settles before the next kill (the
next victim is the master of another shard).  Prints the median and max
of each kind and the rcluster / redis-server ratio of the medians (below 1:
rcluster fails over faster).

Usage: bench/failover.py [--kills N] [--node-timeout MS] [--only rcluster|redis]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import redis  # noqa: E402

from rcluster.cluster.keyslot import keyslot  # noqa: E402
from tests.integration.harness import NodeProcess, have  # noqa: E402
from tests.integration.test_cluster_clients import create  # noqa: E402


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (OSError, redis.RedisError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def nodes_lines(node):
    client = redis.Redis(port=node.port, socket_timeout=2)
    try:
        text = client.execute_command("CLUSTER", "NODES")
    finally:
        client.close()
    if isinstance(text, bytes):
        text = text.decode()
    return [line.split() for line in text.splitlines() if line.strip()]


class BenchCluster:
    def __init__(self, binary, node_timeout):
        self.nodes = [NodeProcess(binary=binary, cluster=True, directives=[
            ("cluster-node-timeout", str(node_timeout))]) for _ in range(6)]
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda n: n.start(), self.nodes))
        create(self.nodes, 1)
        self.by_port = {n.port: n for n in self.nodes}
        self.settle()

    def live(self):
        return [n for n in self.nodes
                if n.proc is not None and n.proc.poll() is None]

    def settled(self):
        for node in self.live():
            client = redis.Redis(port=node.port, socket_timeout=2)
            try:
                if b"cluster_state:ok" not in \
                        client.execute_command("CLUSTER", "INFO"):
                    return False
                info = client.info("replication")
            finally:
                client.close()
            if info["role"] == "slave" and \
                    info.get("master_link_status") != "up":
                return False
        # Everybody agrees on who the masters are, and none is failing.
        views = {tuple(sorted((f[0], "master" in f[2], "fail" in f[2])
                              for f in nodes_lines(n))) for n in self.live()}
        return len(views) == 1 and not any(
            failing for _, _, failing in next(iter(views)))

    def settle(self):
        wait_for(self.settled, 60, "the cluster to settle")

    def shard(self, index):
        """(master, replica, a key the master serves) of the index-th shard
        (by the masters' ports)."""
        lines = nodes_lines(self.live()[0])
        port = {f[0]: int(f[1].split(":")[1].split("@")[0]) for f in lines}
        masters = sorted((f for f in lines if "master" in f[2]
                          and len(f) > 8), key=lambda f: port[f[0]])
        master = masters[index % len(masters)]
        replica = next(f for f in lines if f[3] == master[0])
        low = int(master[8].split("-")[0])
        key = next(b"k%d" % i for i in range(100000)
                   if keyslot(b"k%d" % i) == low)
        return self.by_port[port[master[0]]], self.by_port[port[replica[0]]], key

    def kill_and_time(self, index) -> float:
        master, replica, key = self.shard(index)
        client = redis.Redis(port=replica.port, socket_timeout=1)
        try:
            master.proc.kill()
            start = time.monotonic()
            master.proc.wait(10)
            while True:
                try:
                    if client.set(key, b"x"):
                        elapsed = time.monotonic() - start
                        break
                except redis.RedisError:
                    pass        # MOVED / CLUSTERDOWN / READONLY: not yet
                if time.monotonic() - start > 60:
                    raise RuntimeError("no failover within 60 s")
                time.sleep(0.005)
        finally:
            client.close()
        master.start()          # comes back as a replica
        self.settle()
        return elapsed

    def stop(self):
        for node in self.nodes:
            node.cleanup()


def run(binary, kills, node_timeout):
    cluster = BenchCluster(binary, node_timeout)
    try:
        return [cluster.kill_and_time(i) for i in range(kills)]
    finally:
        cluster.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--node-timeout", type=int, default=2000)
    parser.add_argument("--only", choices=("rcluster", "redis"))
    args = parser.parse_args()
    for tool in ("redis-cli", "redis-server"):
        if not have(tool):
            sys.exit(f"{tool} is needed")
    results = {}
    for name, binary in (("rcluster", "rcluster"), ("redis", "redis-server")):
        if args.only and args.only != name:
            continue
        times = run(binary, args.kills, args.node_timeout)
        results[name] = times
        print(f"{name:9s} kill -9 -> first write on the promoted replica: "
              f"median {statistics.median(times) * 1000:.0f} ms, "
              f"max {max(times) * 1000:.0f} ms over {len(times)} kills "
              f"(node-timeout {args.node_timeout} ms)", flush=True)
    if len(results) == 2:
        ratio = statistics.median(results["rcluster"]) / \
            statistics.median(results["redis"])
        print(f"ratio rcluster/redis-server (median): {ratio:.2f}")


if __name__ == "__main__":
    main()
