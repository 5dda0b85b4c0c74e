#!/usr/bin/env python3
"""Protocol-layer CPU of an idle converged cluster, in one process.

N sans-IO cluster states (the in-memory ``Net`` of
tests/unit/test_cluster_state.py: no Twisted, no sockets, one shared fake
clock), every node a master with its share of the slots and its own
config epoch, node timeout 2000 ms.  After the cluster has converged,
20 simulated seconds of cron and gossip are timed with
``time.process_time()``: the CPU the cluster protocol itself (encode,
decode, gossip, failure detection, the cron) costs per node per second,
without the reactor and kernel costs that bench/bus_idle_cpu.py includes.
Deterministic work (seeded), so far less noisy than bus_idle_cpu.py on a
shared machine; --full turns the fast paths off (state.fast_paths) to
compare.  The Net decodes every frame once more for its own record: that
cost is the same for both paths and is included.

Usage: bench/bus_protocol_cpu.py [--sizes 10 30 60] [--full] [--root DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(n: int, fast: bool, seconds: int = 20) -> float:
    from tests.unit.test_cluster_state import Net
    net = Net(2000)
    for i in range(n):
        state = net.add(7001 + i, range(i * 16384 // n, (i + 1) * 16384 // n),
                        seed=i)
        if hasattr(state, "fast_paths"):
            state.fast_paths = fast
        state.myself.config_epoch = i + 1
    net.meet_all()
    net.tick(15000)
    if not all(len(s.nodes) == n for s in net.states.values()):
        raise RuntimeError(f"N={n}: not converged after 15 simulated s")

    class Discard(list):
        def append(self, item):
            pass
    net.frames = Discard()
    start = time.process_time()
    net.tick(seconds * 1000)
    return 1000 * (time.process_time() - start) / n / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 60])
    parser.add_argument("--full", action="store_true",
                        help="fast paths off (the full decode/compare/walk)")
    parser.add_argument("--root", default=os.path.dirname(HERE),
                        help="the rcluster tree to measure (default: this)")
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.root))
    for n in args.sizes:
        ms = measure(n, not args.full)
        print(f"N={n:<4} {'full' if args.full else 'fast'} paths: "
              f"{ms:6.3f} ms CPU per node per second "
              f"({ms / 10:.3f}% of a core)", flush=True)


if __name__ == "__main__":
    main()
