#!/usr/bin/env python3
"""rcluster vs redis-server on the newer data types, side by side.

redis-benchmark runs custom commands (-c 50 -n 200000, -P 1 and -P 16)
against both servers, started and pinned as bench/throughput.py does
(its helpers are reused): XADD (one stream), SETBIT (bit 1000 of random
keys among 10,000), PFADD (random elements into one HyperLogLog) and
GEOADD (random members at random coordinates into one geo set).
Prints requests/s and the rcluster/redis-server ratio.

A command rcluster does not know (COMMAND INFO gives nil) is skipped, and
the report says so.  Usage: bench/datatypes.py [--quick] [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.throughput import PIN, benchmark, start_pinned  # noqa: E402
from tests.integration.harness import NodeProcess  # noqa: E402

# name -> redis-benchmark arguments (-r: the __rand_int__ range).
COMMANDS = {
    "xadd": ["xadd", "bench:stream", "*", "field", "value"],
    # (__rand_int__ has leading zeros, which a bit offset refuses: the
    # random part is the key, 10,000 bitmaps of 126 bytes.)
    "setbit": ["-r", "10000", "setbit", "bench:bits:__rand_int__", "1000",
               "1"],
    "pfadd": ["-r", "100000000", "pfadd", "bench:hll", "__rand_int__"],
    "geoadd": ["-r", "1000000", "geoadd", "bench:geo", "13.__rand_int__",
               "38.__rand_int__", "m:__rand_int__"],
    # Not run by default: the sorted set path GEOADD rides on, for reference.
    "zadd": ["-r", "1000000", "zadd", "bench:z", "__rand_int__",
             "m:__rand_int__"],
}
DEFAULT = ["xadd", "setbit", "pfadd", "geoadd"]


def known(node, name: str) -> bool:
    client = node.client()
    client.response_callbacks.clear()       # the reply as sent
    try:
        return client.execute_command("COMMAND", "INFO", name)[0] is not None
    finally:
        client.close()


def flush(node):
    client = node.client()
    try:
        client.flushall()
    finally:
        client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="20000 requests (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat each run, keep the median")
    parser.add_argument("commands", nargs="*", metavar="command",
                        help="some of: %s (default: all but zadd)"
                             % " ".join(COMMANDS))
    args = parser.parse_args()
    unknown = set(args.commands) - set(COMMANDS)
    if unknown:
        parser.error("unknown: " + " ".join(sorted(unknown)))
    args.commands = args.commands or DEFAULT
    requests = 20_000 if args.quick else 200_000

    servers = {"rcluster": NodeProcess("rcluster", cluster=False),
               "redis-server": NodeProcess("redis-server", cluster=False)}
    try:
        for node in servers.values():
            start_pinned(node)
        print(f"data types: redis-benchmark -c 50 -n {requests}, median of "
              f"{args.rounds} runs" + (", servers on CPU 0, benchmark on CPU 1"
                                        if PIN else ""))
        print(f"{'test':<14}{'rcluster':>14}{'redis-server':>16}{'ratio':>9}")
        skipped = []
        for name in args.commands:
            if not known(servers["rcluster"], name):
                skipped.append(name)
                continue
            for pipeline in (1, 16):
                rates = {}
                for server, node in servers.items():
                    runs = []
                    for _ in range(args.rounds):
                        flush(node)
                        runs.append(benchmark(node.port, name, pipeline,
                                              requests,
                                              command=COMMANDS[name]))
                    rates[server] = statistics.median(runs)
                ratio = rates["rcluster"] / rates["redis-server"]
                label = f"{name.upper()} -P{pipeline}"
                print(f"{label:<14}{rates['rcluster']:>14,.0f}"
                      f"{rates['redis-server']:>16,.0f}{ratio:>9.2f}",
                      flush=True)
        for name in skipped:
            print(f"{name.upper()}: skipped, rcluster does not know it yet")
    finally:
        for node in servers.values():
            node.cleanup()


if __name__ == "__main__":
    main()
