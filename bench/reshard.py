#!/usr/bin/env python3
"""Resharding speed, rcluster vs redis-server on this machine.

For each kind, a two-master cluster: A owns slots 0-8191, B 8192-16383;
KEYS string keys are loaded into slots 0-4095 (all on A).  Then
``redis-cli --cluster reshard --cluster-from A --cluster-to B
--cluster-slots 4096 --cluster-yes`` moves those slots (SETSLOT + MIGRATE,
key by key in batches of --cluster-pipeline), while a client on each end
PINGs in a loop.  Printed: seconds, keys/s, the rcluster/redis-server
ratio (goal >= 0.5), the longest PING round trip on either end, and
the CPU time the VM's host stole meanwhile (bench/machine.py: a run with
seconds of it measured the neighbours too).

Then the same data moved by rcluster's atomic ``CLUSTER MIGRATESLOTS
SLOTSRANGE 0 4095 NODE B`` (goal: >= 3x faster than redis-server's
key-by-key reshard), with the longest PING on either end.

Usage: bench/reshard.py [--keys N] [--slots N] [--pipeline N] [--atomic-only]

--slots N (default 4096) moves slots 0..N-1, which hold the keys: with
--keys 20000 --slots 400 (the same 49 keys per slot) a quick run while
iterating.  The machine is shared: figures move by 2x from one run to
the next; compare ratios taken in the same run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from machine import Steal  # noqa: E402

from rcluster.cluster.keyslot import keyslot  # noqa: E402
from tests.integration.harness import NodeProcess  # noqa: E402
from tests.integration.test_cluster_formation import (converged,  # noqa: E402
                                                      wait_for)


def keys_in_first_slots(n: int, below: int = 4096) -> list:
    out, i = [], 0
    while len(out) < n:
        key = b"key:%d" % i
        if keyslot(key) < below:
            out.append(key)
        i += 1
    return out


class Pinger(threading.Thread):
    def __init__(self, node):
        super().__init__(daemon=True)
        self.client = node.client()
        self.worst = 0.0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                self.client.ping()
            except Exception:           # noqa: BLE001 - a stall, counted
                pass
            self.worst = max(self.worst, time.monotonic() - t)
            time.sleep(0.005)


def run(kind: str, keys: list, pipeline: int, atomic: bool = False,
        slots: int = 4096):
    a = NodeProcess(kind, cluster=True)
    b = NodeProcess(kind, cluster=True)
    try:
        for n in (a, b):
            n.start()
        a.cli("cluster", "addslotsrange", "0", "8191")
        b.cli("cluster", "addslotsrange", "8192", "16383")
        a.cli("cluster", "meet", "127.0.0.1", str(b.port))
        wait_for(lambda: converged([a, b]), 30, "convergence")
        r = a.client()
        for start in range(0, len(keys), 5000):
            p = r.pipeline(transaction=False)
            for key in keys[start:start + 5000]:
                p.set(key, b"x" * 16)
            p.execute()
        pingers = [Pinger(a), Pinger(b)]
        for p in pingers:
            p.start()
        aid = a.cli("cluster", "myid").strip()
        bid = b.cli("cluster", "myid").strip()
        steal = Steal()
        steal.start()
        t0 = time.monotonic()
        if atomic:
            r.execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", 0,
                              slots - 1, "NODE", bid)
            while True:
                jobs = r.execute_command("CLUSTER", "GETSLOTMIGRATIONS")
                job = jobs[-1]
                if not isinstance(job, dict):
                    job = dict(zip(job[::2], job[1::2]))
                state = job[b"state"]
                if state in (b"success", b"failed", b"canceled"):
                    break
                time.sleep(0.01)
            assert state == b"success", job
            result = subprocess.CompletedProcess([], 0, "", "")
        else:
            result = subprocess.run(
                ["redis-cli", "--cluster", "reshard", a.address,
                 "--cluster-from", aid, "--cluster-to", bid,
                 "--cluster-slots", str(slots), "--cluster-yes",
                 "--cluster-pipeline", str(pipeline)],
                capture_output=True, text=True, timeout=3600)
        took = time.monotonic() - t0
        steal.stop()
        for p in pingers:
            p.stop.set()
            p.join(5)
        if result.returncode != 0:
            raise RuntimeError(result.stdout[-2000:] + result.stderr)
        moved = int(b.cli("dbsize"))
        assert moved == len(keys), (moved, len(keys))
        return took, max(p.worst for p in pingers), steal
    finally:
        a.cleanup()
        b.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--slots", type=int, default=4096)
    ap.add_argument("--pipeline", type=int, default=10)
    ap.add_argument("--atomic-only", action="store_true")
    args = ap.parse_args()
    if not 0 < args.slots <= 8192:
        ap.error("--slots must be within 1..8192 (A's slots)")
    keys = keys_in_first_slots(args.keys, args.slots)
    slots = args.slots
    if args.atomic_only:
        took, stall, steal = run("rcluster", keys, args.pipeline,
                                 atomic=True, slots=slots)
        print(f"  rcluster MIGRATESLOTS of {len(keys)} keys: {took:.1f} s "
              f"{len(keys) / took:.0f} keys/s  longest PING "
              f"{stall * 1000:.0f} ms  {steal}")
        return
    print(f"redis-cli --cluster reshard of {slots} slots holding "
          f"{len(keys)} keys (--cluster-pipeline {args.pipeline})")
    results = {}
    for kind in ("rcluster", "redis-server"):
        took, stall, steal = run(kind, keys, args.pipeline, slots=slots)
        results[kind] = took
        print(f"  {kind:<13} {took:7.1f} s  {len(keys) / took:9.0f} keys/s  "
              f"longest PING {stall * 1000:6.0f} ms  {steal}")
    print(f"  ratio rcluster/redis-server (keys/s): "
          f"{results['redis-server'] / results['rcluster']:.2f}x")
    took, stall, steal = run("rcluster", keys, args.pipeline, atomic=True,
                             slots=slots)
    print(f"  rcluster MIGRATESLOTS {took:7.1f} s  {len(keys) / took:9.0f} "
          f"keys/s  longest PING {stall * 1000:6.0f} ms  {steal}")
    print(f"  MIGRATESLOTS vs redis-server's redis-cli reshard: "
          f"{results['redis-server'] / took:.2f}x faster")


if __name__ == "__main__":
    main()
