#!/usr/bin/env python3
"""Replication: rcluster vs redis-server, side by side on this machine.

1. SET throughput on a master with one replica attached (redis-benchmark
   -c 50, -P 1 and -P 16), requests/s and the rcluster/redis-server ratio.
2. Full-sync time: the master holds --keys string keys (16-byte values);
   a fresh replica is told REPLICAOF and timed until its link is up and
   it has processed the master's offset.  Seconds and the ratio.

Each kind replicates to its own kind (rcluster -> rcluster, redis-server
-> redis-server), diskless sync without delay, persistence off, on
loopback.  With two CPUs or more the servers run on CPU 0 and
redis-benchmark on CPU 1.

Usage: bench/replication.py [--keys N] [--requests N] [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from tests.integration.harness import NodeProcess  # noqa: E402
from throughput import PIN, benchmark, load_keys, start_pinned  # noqa: E402

DIRECTIVES = [("repl-diskless-sync-delay", "0"),
              ("repl-backlog-size", "64mb")]
KINDS = ("rcluster", "redis-server")


def start(kind):
    return start_pinned(NodeProcess(kind, cluster=False,
                                    directives=DIRECTIVES))


def synced(master, replica) -> bool:
    info = replica.client().info("replication")
    if info.get("master_link_status") != "up" or \
            info.get("master_sync_in_progress"):
        return False
    return info["master_repl_offset"] >= \
        master.client().info("replication")["master_repl_offset"]


def wait_synced(master, replica, timeout=600.0) -> float:
    started = time.monotonic()
    while not synced(master, replica):
        if time.monotonic() - started > timeout:
            raise RuntimeError("the replica never caught up")
        time.sleep(0.02)
    return time.monotonic() - started


def throughput(kind, requests, rounds) -> dict:
    master, replica = start(kind), start(kind)
    try:
        replica.client().replicaof("127.0.0.1", master.port)
        wait_synced(master, replica)
        rates = {}
        for pipeline in (1, 16):
            rates[pipeline] = statistics.median(
                benchmark(master.port, "set", pipeline, requests)
                for _ in range(rounds))
        wait_synced(master, replica)
        return rates
    finally:
        master.cleanup()
        replica.cleanup()


def full_sync(kind, keys) -> float:
    master = start(kind)
    replica = None
    try:
        load_keys(master.port, keys)
        replica = start(kind)
        started = time.monotonic()
        replica.client().replicaof("127.0.0.1", master.port)
        wait_synced(master, replica)
        took = time.monotonic() - started
        if replica.client().dbsize() != keys:
            raise RuntimeError("the replica has %d keys, not %d"
                               % (replica.client().dbsize(), keys))
        return took
    finally:
        master.cleanup()
        if replica is not None:
            replica.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000,
                        help="keys for the full-sync timing (1,000,000)")
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat each throughput run, keep the median")
    args = parser.parse_args()
    print(f"SET throughput with one replica attached: redis-benchmark -c 50 "
          f"-n {args.requests}, median of {args.rounds} runs" +
          (", servers on CPU 0, benchmark on CPU 1" if PIN else ""))
    rates = {kind: throughput(kind, args.requests, args.rounds)
             for kind in KINDS}
    print(f"{'test':<10}{'rcluster':>14}{'redis-server':>16}{'ratio':>9}")
    for pipeline in (1, 16):
        ours, theirs = rates["rcluster"][pipeline], \
            rates["redis-server"][pipeline]
        print(f"{'SET -P%d' % pipeline:<10}{ours:>14,.0f}{theirs:>16,.0f}"
              f"{ours / theirs:>9.2f}")
    times = {kind: full_sync(kind, args.keys) for kind in KINDS}
    print(f"full sync of {args.keys:,} keys (16-byte values), REPLICAOF to "
          f"caught up:")
    for kind, took in times.items():
        print(f"  {kind:<14}{took:>8.2f} s")
    print(f"  ratio rcluster/redis-server: "
          f"{times['rcluster'] / times['redis-server']:.2f}")


if __name__ == "__main__":
    main()
