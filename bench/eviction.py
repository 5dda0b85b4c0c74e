#!/usr/bin/env python3
"""SET throughput while allkeys-lru evicts continuously: rcluster vs
redis-server, side by side.

Both servers run standalone with ``maxmemory`` (default 16mb) and
``maxmemory-policy allkeys-lru``; they are first filled past the limit,
then redis-benchmark runs SET with random keys over a keyspace far larger
than fits (-r 10,000,000, 64-byte values), so nearly every SET adds a key
and makes room by evicting one.  Prints requests/s for -c 50 with -P 1 and
-P 16, the rcluster/redis-server ratio (goal: at least 0.3), the CPU
time the VM's host stole during each server's rounds (bench/machine.py),
and the evicted_keys / used_memory each ended with.

Usage: bench/eviction.py [--requests N] [--rounds N] [--maxmemory 16mb]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from machine import Steal  # noqa: E402
from throughput import benchmark, start_pinned  # noqa: E402

from tests.integration.harness import NodeProcess  # noqa: E402

SET_RANDOM = ["-r", "10000000", "-d", "64", "set", "key:__rand_int__",
              "__data__"]


def info(node, section):
    return node.client().info(section)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--maxmemory", default="16mb")
    args = parser.parse_args()
    directives = [("maxmemory", args.maxmemory),
                  ("maxmemory-policy", "allkeys-lru")]
    servers = {"rcluster": NodeProcess("rcluster", directives=directives),
               "redis-server": NodeProcess("redis-server",
                                           directives=directives)}
    try:
        for node in servers.values():
            start_pinned(node)
            # Fill past the limit: evicting from here on.
            benchmark(node.port, None, 16, 400_000, command=SET_RANDOM)
            assert info(node, "stats")["evicted_keys"] > 0, node.binary
        print(f"SET with allkeys-lru evicting, maxmemory {args.maxmemory}: "
              f"redis-benchmark -c 50 -n {args.requests} -r 10000000 -d 64, "
              f"median of {args.rounds}")
        print(f"{'test':<10}{'rcluster':>14}{'redis-server':>16}{'ratio':>9}")
        for pipeline in (1, 16):
            runs = {name: [] for name in servers}
            steal = {name: Steal() for name in servers}
            for _ in range(args.rounds):
                # Alternated, so that a noisy moment hits both.
                for name, node in servers.items():
                    steal[name].start()
                    runs[name].append(benchmark(
                        node.port, None, pipeline, args.requests,
                        command=SET_RANDOM))
                    steal[name].stop()
            rates = {name: statistics.median(r) for name, r in runs.items()}
            ratio = rates["rcluster"] / rates["redis-server"]
            label = f"SET -P{pipeline}"
            spread = "; ".join(f"{name} {min(r):,.0f}-{max(r):,.0f}, "
                               f"{steal[name]}"
                               for name, r in runs.items())
            print(f"{label:<10}{rates['rcluster']:>14,.0f}"
                  f"{rates['redis-server']:>16,.0f}{ratio:>9.2f}"
                  f"   ({spread})")
        for name, node in servers.items():
            stats, mem = info(node, "stats"), info(node, "memory")
            print(f"  {name:<14} evicted_keys {stats['evicted_keys']:>9,}  "
                  f"used_memory {mem['used_memory_human']:>8}  "
                  f"rss {mem['used_memory_rss_human']:>8}  "
                  f"keys {node.client().dbsize():,}")
    finally:
        for node in servers.values():
            node.cleanup()


if __name__ == "__main__":
    main()
