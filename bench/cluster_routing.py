#!/usr/bin/env python3
"""The cost of cluster routing on the hot path, in process (no sockets).

Feeds 16 pipelined SETs (then GETs) through a Client of a Server, N times
over, in three set-ups:

  standalone   cluster-enabled no: no router at all
  cluster      a single-node cluster (all 16384 slots on myself, state
               ok), with the Router that ClusterService installs
  cluster+mig  the same with one (other) slot MIGRATING: the fast path
               still applies to the slots that aren't open
  no-fastpath  the single-node cluster with the router's fast path off
               (every request through the full getNodeByQuery logic)

and prints requests/s and the cost per request relative to standalone.
Usage: bench/cluster_routing.py [--rounds 5000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from twisted.internet.task import Clock  # noqa: E402

from rcluster.cluster.messages import SLOTS, STATE_OK  # noqa: E402
from rcluster.cluster.routing import Router  # noqa: E402
from rcluster.cluster.state import ClusterState  # noqa: E402
from rcluster.config import Settings  # noqa: E402
from rcluster.server import Server  # noqa: E402

PIPELINE = 16


def make_server(cluster: bool, migrating: bool = False,
                fast_path: bool = True) -> Server:
    settings = Settings()
    settings.apply("cluster-enabled", ["yes" if cluster else "no"])
    clock = Clock()
    server = Server(settings, clock)
    if cluster:
        state = ClusterState(settings, lambda: int(clock.seconds() * 1000),
                             rng=random.Random(1))
        state.create_myself()
        for slot in range(SLOTS):
            state.add_slot(state.myself, slot)
        state.state = STATE_OK
        if migrating:
            other = state.create_node(None)
            state.add_node(other)
            state.migrating[0] = other
        server.cluster = state
        server.router = Router(state, server)
        if not fast_path:
            server.router._served_here = lambda cmd, argv: False
    return server


def batch(command: bytes) -> bytes:
    parts = []
    for i in range(PIPELINE):
        key = b"key:%06d" % i
        if command == b"SET":
            parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$3\r\nval\r\n"
                         % (len(key), key))
        else:
            parts.append(b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(key), key))
    return b"".join(parts)


def run(server, payload, rounds) -> float:
    """Requests per CPU second for ``rounds`` pipelined batches (CPU
    time, so that other processes on the machine matter less)."""
    out = []
    client = server.new_client("127.0.0.1:1", "127.0.0.1:6379", out.append)
    client.feed(payload)              # warm the command lookup cache
    start = time.process_time()
    for _ in range(rounds):
        client.feed(payload)
    elapsed = time.process_time() - start
    if b"-" in out[-1][:1] or b"MOVED" in out[-1]:
        raise RuntimeError(f"unexpected reply {out[-1][:60]!r}")
    return rounds * PIPELINE / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5,
                        help="best of this many runs")
    args = parser.parse_args()
    setups = {"standalone": (False, False, True),
              "cluster": (True, False, True),
              "cluster+mig": (True, True, True),
              "no-fastpath": (True, False, False)}
    print(f"{PIPELINE} pipelined commands x {args.rounds} rounds, best of "
          f"{args.repeat} (CPU time)")
    print(f"{'command':8} {'setup':12} {'req/s':>10} {'us/req':>8} "
          f"{'+us vs standalone':>18}")
    for command in (b"SET", b"GET"):
        payload = batch(command)
        servers = {name: make_server(*setup) for name, setup in setups.items()}
        best = dict.fromkeys(setups, 0.0)
        for _ in range(args.repeat):          # interleaved: fairer on a busy box
            for name, server in servers.items():
                best[name] = max(best[name], run(server, payload, args.rounds))
        base = None
        for name, rate in best.items():
            usec = 1e6 / rate
            base = usec if base is None else base
            print(f"{command.decode():8} {name:12} {rate:10.0f} {usec:8.2f} "
                  f"{usec - base:+18.2f}")


if __name__ == "__main__":
    main()
