#!/usr/bin/env python3
"""rcluster vs redis-server, side by side on this machine.

1. Throughput: redis-benchmark with the same flags against both servers
   (-c 50 -n 200000, SET and GET, with -P 1 and -P 16); prints requests/s
   and the rcluster/redis-server ratio.
2. Memory: loads 1,000,000 string keys (16-byte values) into each server
   and prints the resident memory each grew by, and the ratio.

Both servers run standalone (cluster-enabled no) on loopback with
persistence off.  Usage: bench/throughput.py [--quick] [--skip-memory]
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tests.integration.harness import NodeProcess  # noqa: E402


# With two CPUs or more, each server runs on CPU 0 and redis-benchmark on
# CPU 1: both servers get the same conditions, and runs vary far less.
PIN = len(os.sched_getaffinity(0)) >= 2


def start_pinned(node, **kwargs):
    """Start a server (NodeProcess.start's arguments), on CPU 0 when PIN."""
    node.start(**kwargs)
    if PIN:
        os.sched_setaffinity(node.proc.pid, {0})
    return node


def benchmark(port, test, pipeline, requests, clients=50, command=()):
    """requests/s of one redis-benchmark run: the built-in ``test``, or
    with ``command`` (its argv, e.g. ["-r", "1000", "setbit", ...]) a
    custom command instead."""
    what = list(command) if command else ["-t", test]
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
         "-n", str(requests), "-P", str(pipeline), "-q", *what],
        capture_output=True, text=True, timeout=600,
        preexec_fn=(lambda: os.sched_setaffinity(0, {1})) if PIN else None).stdout
    match = re.findall(r"([\d.]+) requests per second", out.replace("\r", "\n"))
    if not match:
        raise RuntimeError(f"redis-benchmark printed nothing usable:\n{out}")
    return float(match[-1])


def rss_bytes(pid) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def load_keys(port, count, value_size=16, batch=10_000):
    """SET key:%012d <value> for count keys, pipelined, replies drained."""
    value = b"v" * value_size
    with socket.create_connection(("127.0.0.1", port)) as sock:
        expected = b"+OK\r\n" * batch
        for start in range(0, count, batch):
            n = min(batch, count - start)
            payload = b"".join(
                b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$%d\r\n%b\r\n"
                % (i, value_size, value) for i in range(start, start + n))
            sock.sendall(payload)
            want = len(expected) if n == batch else 5 * n
            got = b""
            while len(got) < want:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("server closed the connection")
                got += chunk
            if got != b"+OK\r\n" * n:
                raise RuntimeError(f"unexpected replies: {got[:80]!r}")


def memory(node, count):
    time.sleep(0.5)
    before = rss_bytes(node.proc.pid)
    load_keys(node.port, count)
    time.sleep(0.5)
    after = rss_bytes(node.proc.pid)
    return after - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="20000 requests and 100000 keys (a smoke run)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat each throughput run, keep the median")
    args = parser.parse_args()
    requests = 20_000 if args.quick else 200_000
    keys = 100_000 if args.quick else 1_000_000

    servers = {"rcluster": NodeProcess("rcluster", cluster=False),
               "redis-server": NodeProcess("redis-server", cluster=False)}
    try:
        for node in servers.values():
            start_pinned(node)
        print(f"throughput: redis-benchmark -c 50 -n {requests}, median of "
              f"{args.rounds} runs" + (", servers on CPU 0, benchmark on CPU 1"
                                        if PIN else ""))
        print(f"{'test':<10}{'rcluster':>14}{'redis-server':>16}{'ratio':>9}")
        for pipeline in (1, 16):
            for test in ("set", "get"):
                rates = {}
                for name, node in servers.items():
                    rates[name] = statistics.median(
                        benchmark(node.port, test, pipeline, requests)
                        for _ in range(args.rounds))
                ratio = rates["rcluster"] / rates["redis-server"]
                label = f"{test.upper()} -P{pipeline}"
                print(f"{label:<10}{rates['rcluster']:>14,.0f}"
                      f"{rates['redis-server']:>16,.0f}{ratio:>9.2f}")
        if not args.skip_memory:
            grown = {name: memory(node, keys) for name, node in servers.items()}
            ratio = grown["rcluster"] / grown["redis-server"]
            print(f"memory: {keys:,} string keys, 16-byte values (RSS growth)")
            for name, value in grown.items():
                print(f"  {name:<14}{value / 2**20:>10.1f} MiB"
                      f"  ({value / keys:.0f} bytes/key)")
            print(f"  ratio rcluster/redis-server: {ratio:.2f}")
    finally:
        for node in servers.values():
            node.cleanup()


if __name__ == "__main__":
    main()
