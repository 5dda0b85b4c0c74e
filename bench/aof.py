#!/usr/bin/env python3
"""The append-only file, rcluster vs redis-server on this machine.

1. ``set_throughput``: redis-benchmark -c 50 -P 1 -t set against both
   servers with ``appendonly yes`` and ``appendfsync everysec``, then
   ``always``; prints requests/s and the rcluster/redis-server ratio.
2. ``rewrite_stall``: loads string keys into each server (appendonly yes),
   then runs BGREWRITEAOF while a client PINGs in a loop; prints the
   longest PING round trip during the rewrite, how long the rewrite took,
   and the extra memory: rcluster's peak RSS growth over its RSS before
   the rewrite, Redis's aof_last_cow_size (its forked child's
   copy-on-write).

Usage: bench/aof.py [--quick] [--skip-throughput] [--skip-rewrite]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from tests.integration.harness import NodeProcess  # noqa: E402
from throughput import (benchmark, load_keys, rss_bytes,  # noqa: E402
                        start_pinned)


def _servers(directives):
    return {"rcluster": NodeProcess("rcluster", directives=directives),
            "redis-server": NodeProcess("redis-server",
                                        directives=directives)}


def _start(servers):
    for node in servers.values():
        start_pinned(node)


def set_throughput(requests: int, rounds: int):
    print(f"AOF SET throughput: redis-benchmark -c 50 -P 1 -t set -n "
          f"{requests}, median of {rounds} runs")
    print(f"{'appendfsync':<14}{'rcluster':>12}{'redis-server':>16}"
          f"{'ratio':>9}")
    for policy in ("everysec", "always"):
        servers = _servers([("appendonly", "yes"), ("appendfsync", policy)])
        try:
            _start(servers)
            rates = {name: statistics.median(
                benchmark(node.port, "set", 1, requests)
                for _ in range(rounds)) for name, node in servers.items()}
        finally:
            for node in servers.values():
                node.cleanup()
        print(f"{policy:<14}{rates['rcluster']:>12,.0f}"
              f"{rates['redis-server']:>16,.0f}"
              f"{rates['rcluster'] / rates['redis-server']:>9.2f}")


def _info(sock_file, sock, section):
    sock.sendall(b"*2\r\n$4\r\nINFO\r\n$%d\r\n%b\r\n"
                 % (len(section), section))
    header = sock_file.readline()
    size = int(header[1:])
    body = sock_file.read(size + 2)
    fields = {}
    for line in body.decode().split("\r\n"):
        if ":" in line:
            name, _, value = line.partition(":")
            fields[name] = value
    return fields


def _measure_rewrite(node):
    """(longest PING ms, rewrite seconds, extra bytes)."""
    sock = socket.create_connection(("127.0.0.1", node.port))
    sock_file = sock.makefile("rb")
    before = rss_bytes(node.proc.pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], rss_bytes(node.proc.pid))
            except (OSError, RuntimeError):
                return
            time.sleep(0.005)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sock.sendall(b"*1\r\n$12\r\nBGREWRITEAOF\r\n")
    reply = sock_file.readline()
    if not reply.startswith(b"+"):
        raise RuntimeError(f"BGREWRITEAOF: {reply!r}")
    started = time.monotonic()
    worst = 0.0
    while True:
        t0 = time.perf_counter()
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        if sock_file.readline() != b"+PONG\r\n":
            raise RuntimeError("bad PING reply")
        worst = max(worst, time.perf_counter() - t0)
        info = _info(sock_file, sock, b"persistence")
        if info.get("aof_rewrite_in_progress") == "0" and \
                info.get("aof_rewrite_scheduled") == "0":
            break
        time.sleep(0.001)
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    extra = peak[0] - before
    if node.binary == "redis-server":
        extra = int(info.get("aof_last_cow_size", 0))
    sock.close()
    return worst * 1000, elapsed, extra


def rewrite_stall(keys: int):
    servers = _servers([("appendonly", "yes"), ("appendfsync", "everysec")])
    try:
        _start(servers)
        results = {}
        for name, node in servers.items():
            load_keys(node.port, keys)
            time.sleep(1.5)         # the everysec fsync of the load
            results[name] = _measure_rewrite(node)
    finally:
        for node in servers.values():
            node.cleanup()
    print(f"BGREWRITEAOF of {keys:,} string keys while PINGing")
    print(f"{'':<14}{'longest PING':>14}{'rewrite':>10}{'extra memory':>15}")
    for name, (worst, elapsed, extra) in results.items():
        label = "peak RSS" if name == "rcluster" else "COW"
        print(f"{name:<14}{worst:>11.1f} ms{elapsed:>9.2f}s"
              f"{extra / 2**20:>9.1f} MiB ({label})")
    ratio = results["rcluster"][0] / max(results["redis-server"][0], 1e-6)
    print(f"longest PING ratio rcluster/redis-server: {ratio:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="20000 requests and 100000 keys (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-rewrite", action="store_true")
    args = parser.parse_args()
    if not args.skip_throughput:
        set_throughput(20_000 if args.quick else 100_000,
                       1 if args.quick else args.rounds)
    if not args.skip_rewrite:
        rewrite_stall(100_000 if args.quick else 1_000_000)


if __name__ == "__main__":
    main()
