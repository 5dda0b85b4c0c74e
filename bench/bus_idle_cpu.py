#!/usr/bin/env python3
"""Idle cluster-bus CPU: rcluster vs redis-server.

For N local masters of each kind (cluster-node-timeout 2000, slots split
evenly, distinct config epochs, as bench/cluster_convergence.py builds
them), wait until the cluster has converged (every node lists N nodes,
none in handshake, cluster_state ok), let it settle, then measure the CPU
time (user + system, from /proc/<pid>/stat; the share in the kernel is
shown) used by all the nodes over
--seconds of idleness.  Prints total and per-node CPU as a percentage of
one core, the wake-ups per node per second (voluntary context switches:
on a small VM each costs far more than the work it does), and the
rcluster/redis-server per-node ratio.

With --profile DIR, three rcluster nodes of each size run cProfile over
the same window (the node's RCLUSTER_PROFILE hook: SIGUSR2 starts and
stops it); the stats go to DIR/bus-N-PID.prof and the top functions (own
and cumulative time) are printed.  The profiler slows the profiled nodes:
their CPU then counts in the total, so compare totals without --profile.

Usage: bench/bus_idle_cpu.py [--sizes 10 30 60] [--seconds 20] [--runs 1]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from cluster_convergence import KINDS, Cluster  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SETTLE = 3.0    # seconds after convergence before measuring
PROFILED = 3    # nodes profiled with --profile


def cpu_ticks(pid: int) -> tuple:
    """(user, system) CPU ticks of a process."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])     # utime, stime


def cpu_split(pids) -> tuple:
    ticks = [cpu_ticks(p) for p in pids]
    return sum(t[0] for t in ticks), sum(t[1] for t in ticks)


def wakeups(pid: int) -> int:
    """Voluntary context switches: how often the process slept and woke
    (an idle node's CPU is mostly what each wake-up costs)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])
    return 0


def converge(cluster: Cluster):
    first = cluster.nodes[0]
    for node in cluster.nodes[1:]:
        cluster.call(first, "CLUSTER", "MEET", "127.0.0.1", node.port)
    wanted = len(cluster.nodes)
    cluster.wait_all(cluster.nodes, lambda view: len(view) == wanted and not any(
        "handshake" in flags or "fail" in flags for flags in view.values()),
        "join")
    deadline = time.monotonic() + 60
    for node in cluster.nodes:
        while b"cluster_state:ok" not in cluster.call(node, "CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cluster.kind}: cluster_state not ok")
            time.sleep(0.1)


def summarize(paths, top: int = 30) -> str:
    """The top functions by own time, then by cumulative time, of the
    cProfile stats files of the profiled nodes (merged)."""
    import io
    import pstats
    out = io.StringIO()
    stats = pstats.Stats(*paths, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return "\n".join(line for line in out.getvalue().splitlines()
                     if line.strip())


def measure(kind: str, size: int, seconds: float, profile_dir=None):
    cluster = Cluster(kind, size)
    if profile_dir and kind == "rcluster":
        os.environ["RCLUSTER_PROFILE"] = os.path.join(
            os.path.abspath(profile_dir), f"bus-{size}-{{pid}}.prof")
    try:
        cluster.start()
        cluster.prepare()
        converge(cluster)
        # Close our admin connections: idle means nobody polls.
        for client in cluster.clients.values():
            client.close()
        cluster.clients.clear()
        time.sleep(SETTLE)
        pids = [n.proc.pid for n in cluster.nodes]
        profiled = []
        if profile_dir and kind == "rcluster":
            profiled = pids[:PROFILED]
            for pid in profiled:
                os.kill(pid, signal.SIGUSR2)        # start cProfile
        user0, sys0 = cpu_split(pids)
        woke = sum(wakeups(p) for p in pids)
        start = time.monotonic()
        time.sleep(seconds)
        user1, sys1 = cpu_split(pids)
        user, system = (user1 - user0) / CLK_TCK, (sys1 - sys0) / CLK_TCK
        used = user + system
        elapsed = time.monotonic() - start
        woke = (sum(wakeups(p) for p in pids) - woke) / elapsed / size
        if profiled:
            for pid in profiled:
                os.kill(pid, signal.SIGUSR2)        # stop and dump
            time.sleep(2)
            paths = [os.path.join(profile_dir, f"bus-{size}-{pid}.prof")
                     for pid in profiled]
            paths = [p for p in paths if os.path.exists(p)]
            print(f"  cProfile of {len(paths)} rcluster node(s), N={size} "
                  f"(idle {seconds:.0f} s, profiler overhead included):")
            print(summarize(paths), flush=True)
        total = 100.0 * used / elapsed
        return total, total / size, woke, 100.0 * system / max(used, 1e-9)
    finally:
        os.environ.pop("RCLUSTER_PROFILE", None)
        cluster.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 60])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS),
                        choices=KINDS)
    parser.add_argument("--profile", metavar="DIR")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    results = {}
    for size in args.sizes:
        for run in range(args.runs):
            for kind in args.kinds:
                total, per_node, woke, kernel = measure(
                    kind, size, args.seconds,
                    args.profile if run == 0 else None)
                print(f"  {kind:12} N={size:<3} run {run + 1}: all nodes "
                      f"{total:6.1f}% CPU, per node {per_node:5.2f}%, "
                      f"{woke:5.1f} wake-ups/s per node, {kernel:3.0f}% of "
                      f"it in the kernel", flush=True)
                results.setdefault((kind, size), []).append(per_node)
    print(f"\nidle {args.seconds:.0f} s, cluster-node-timeout 2000 ms, "
          f"{args.runs} run(s); per-node CPU in % of one core (median)")
    print(f"{'N':>4} " + "".join(f"{k:>14}" for k in args.kinds)
          + ("      ratio" if len(args.kinds) == 2 else ""))
    for size in args.sizes:
        meds = [statistics.median(results[k, size]) for k in args.kinds]
        line = f"{size:>4} " + "".join(f"{v:13.2f}%" for v in meds)
        if len(meds) == 2 and meds[1] > 0:
            line += f"{meds[0] / meds[1]:11.2f}"
        print(line)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: every node was stopped")
