#!/usr/bin/env python3
"""What client-side caching costs: rcluster vs redis-server.

redis-benchmark SET and GET (-c 50, -P 1 and -P 16, keys drawn from
``key:000000000000`` .. ``key:000000009999`` with -r 10000) run on each
server untracked and tracked, alternately: tracked, 50 other RESP3
connections with CLIENT TRACKING on have each read all 10,000 keys (a
tracking table of 10,000 keys and 500,000 client entries; re-read before
every tracked run, since SETs empty it: each first write of a key sends
50 invalidation pushes); untracked, the same connections sit idle with
tracking off.  The tracking connections are not read during a run (the
server buffers the pushes, as it would for a slow client); they are
drained before the next one.

Printed: requests/s untracked and tracked, tracked/untracked for each
server, and the goal's figure: rcluster's tracked/untracked divided by
redis-server's (>= 1.0: tracking costs rcluster no more than it costs
Redis, relative to each one's own untracked throughput).

Usage: bench/tracking.py [--quick] [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.throughput import PIN, benchmark, start_pinned  # noqa: E402
from tests.integration.harness import NodeProcess  # noqa: E402

KEYS = 10_000
TRACKERS = 50
CHUNK = 1000


def command(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


def key(i: int) -> bytes:
    return b"key:%012d" % i           # redis-benchmark's key:__rand_int__


class Tracker:
    """A RESP3 connection with CLIENT TRACKING on."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(command(b"HELLO", b"3"))
        self.until(b"modules\r\n*0\r\n")
        self.set_tracking(True)

    def until(self, tail: bytes):
        data = b""
        while not data.endswith(tail):
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("server closed a tracking connection")
            data += chunk
        return data

    def set_tracking(self, on: bool):
        """CLIENT TRACKING on|off (off: an idle connection, untracked)."""
        self.sock.sendall(command(b"CLIENT", b"TRACKING",
                                  b"on" if on else b"off"))
        self.until(b"+OK\r\n")

    def read_all_keys(self):
        """MGET every key (pushes from the last run are read on the way)."""
        for start in range(0, KEYS, CHUNK):
            self.sock.sendall(command(b"MGET", *[
                key(i) for i in range(start, start + CHUNK)]))
        self.sock.sendall(command(b"PING"))
        self.until(b"+PONG\r\n")

    def close(self):
        self.sock.close()


def measure(node, test, pipeline, requests, rounds, trackers):
    """(untracked, tracked) requests/s, medians; the two kinds of run
    alternate, so that a change in the machine's load hits both alike."""
    rates = ([], [])
    for _ in range(rounds):
        for tracked in (False, True):
            for tracker in trackers:
                tracker.set_tracking(tracked)
                if tracked:
                    tracker.read_all_keys()
            rates[tracked].append(benchmark(
                node.port, test, pipeline, requests,
                command=["-r", str(KEYS), "-t", test]))
    return statistics.median(rates[0]), statistics.median(rates[1])


def tracking_info(port) -> str:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(command(b"INFO", b"stats"))
        data = b""
        while b"tracking_total_prefixes" not in data:
            data += sock.recv(1 << 16)
    return " ".join(line for line in data.decode().split("\r\n")
                    if line.startswith("tracking_total_"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="20000 requests per run (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat each run, keep the median")
    args = parser.parse_args()
    requests = 20_000 if args.quick else 200_000

    servers = {"rcluster": NodeProcess("rcluster", cluster=False),
               "redis-server": NodeProcess("redis-server", cluster=False)}
    results = {}
    try:
        for node in servers.values():
            start_pinned(node)
        print(f"redis-benchmark -c 50 -n {requests} -r {KEYS}, median of "
              f"{args.rounds} runs; tracked: {TRACKERS} tracking clients "
              f"x {KEYS:,} keys" + (", servers on CPU 0, benchmark on CPU 1"
                                    if PIN else ""))
        for name, node in servers.items():
            trackers = [Tracker(node.port) for _ in range(TRACKERS)]
            try:
                for tracker in trackers:
                    tracker.read_all_keys()
                print(f"  {name} tracking table: {tracking_info(node.port)}")
                for pipeline in (1, 16):
                    for test in ("set", "get"):
                        (results[name, test, pipeline, False],
                         results[name, test, pipeline, True]) = measure(
                            node, test, pipeline, requests, args.rounds,
                            trackers)
            finally:
                for tracker in trackers:
                    tracker.close()
        print(f"{'test':<9}{'rcluster':>11}{'tracked':>11}{'ratio':>7}"
              f"{'redis':>11}{'tracked':>11}{'ratio':>7}{'goal':>7}")
        for pipeline in (1, 16):
            for test in ("set", "get"):
                row = []
                ratios = []
                for name in servers:
                    plain = results[name, test, pipeline, False]
                    tracked = results[name, test, pipeline, True]
                    ratios.append(tracked / plain)
                    row.append(f"{plain:>11,.0f}{tracked:>11,.0f}"
                               f"{tracked / plain:>7.2f}")
                label = f"{test.upper()} -P{pipeline}"
                print(f"{label:<9}{''.join(row)}{ratios[0] / ratios[1]:>7.2f}")
        print("ratio = tracked/untracked; goal = rcluster's ratio / "
              "redis-server's (>= 1.00 met)")
    finally:
        for node in servers.values():
            node.cleanup()


if __name__ == "__main__":
    main()
