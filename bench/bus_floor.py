#!/usr/bin/env python3
"""The floor under bench/bus_idle_cpu.py: an idle cluster's bus traffic
with no cluster protocol at all.

N processes on a full mesh of loopback connections exchange the traffic
an idle rcluster cluster of N masters exchanges (measured with
bus_idle_cpu.py at N=30): a 10 Hz tick on the wall-clock grid (as
rcluster/timers.py runs the crons), about --pings PINGs per second per
node of --frame bytes to random peers, each answered at once by a PONG of
the same size, sent straight to the socket (as resp/protocol.py's
write_through).  Nothing is decoded, no state is kept: what is left is
what the event loop and the kernel cost.

  twisted  Twisted's epoll reactor, as twistd rcluster runs it
           (rcluster/fastpoll.py installed, a Protocol per connection);
  raw      a bare selectors.EpollSelector loop: CPython's own floor.

Prints, per mode, each node's on-CPU time (``/proc/PID/schedstat``: exact,
not tick-sampled) in ms per second, its wake-ups per second (voluntary
context switches) and the cost of one wake-up.  Compare with the
per-node figures bus_idle_cpu.py prints for redis-server and rcluster at
the same N: the distance from redis-server to the twisted floor is what
Twisted and CPython cost before any protocol work.

Usage: bench/bus_floor.py [--nodes 30] [--seconds 20] [--pings 21]
                          [--modes twisted raw]
"""
from __future__ import annotations

import argparse
import os
import random
import selectors
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = 0.1
SETTLE = 8.0        # seconds for every node to start and connect


def _next_tick(now: float) -> float:
    return (int(now / TICK) + 1) * TICK


def _pings_this_tick(per_tick: float) -> int:
    return int(per_tick) + (random.random() < per_tick % 1)


def run_twisted(me: int, peers: list, per_tick: float, frame: int):
    from twisted.internet import protocol, reactor

    sys.path.insert(0, os.path.dirname(HERE))
    from rcluster import fastpoll
    fastpoll.install(reactor)
    ping, pong = b"P" * frame, b"O" * frame
    outbound = []

    class Peer(protocol.Protocol):
        buffer = b""

        def connectionMade(self):
            self.transport.setTcpNoDelay(True)
            if self.factory.outbound:
                outbound.append(self.transport)

        def dataReceived(self, data):
            buffer = self.buffer + data
            while len(buffer) >= frame:
                if buffer[:1] == b"P":
                    self.transport.socket.send(pong)
                buffer = buffer[frame:]
            self.buffer = buffer

    def factory(outbound_side: bool):
        made = protocol.ClientFactory() if outbound_side \
            else protocol.Factory()
        made.protocol, made.outbound = Peer, outbound_side
        return made

    def tick():
        for transport in random.sample(
                outbound, min(_pings_this_tick(per_tick), len(outbound))):
            transport.socket.send(ping)
        now = time.time()
        reactor.callLater(_next_tick(now) - now, tick)

    reactor.listenTCP(me, factory(False), interface="127.0.0.1")
    for port in peers:
        reactor.callLater(2.0, reactor.connectTCP, "127.0.0.1", port,
                          factory(True))
    reactor.callLater(4.0, tick)
    reactor.run()


def run_raw(me: int, peers: list, per_tick: float, frame: int):
    ping, pong = b"P" * frame, b"O" * frame
    selector = selectors.EpollSelector()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", me))
    listener.listen(128)
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, None)
    buffers, outbound = {}, []

    def add(sock):
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffers[sock] = b""
        selector.register(sock, selectors.EVENT_READ, sock)

    time.sleep(2.0)
    for port in peers:
        sock = socket.create_connection(("127.0.0.1", port))
        add(sock)
        outbound.append(sock)
    due = _next_tick(time.time())
    while True:
        for key, _ in selector.select(max(0.0, due - time.time())):
            if key.data is None:
                add(listener.accept()[0])
                continue
            sock = key.data
            data = sock.recv(65536)
            if not data:
                selector.unregister(sock)
                sock.close()
                continue
            buffer = buffers[sock] + data
            while len(buffer) >= frame:
                if buffer[:1] == b"P":
                    sock.send(pong)
                buffer = buffer[frame:]
            buffers[sock] = buffer
        now = time.time()
        if now >= due:
            for sock in random.sample(
                    outbound, min(_pings_this_tick(per_tick), len(outbound))):
                sock.send(ping)
            due = _next_tick(now)


def sample(pid: int) -> tuple:
    """(ns on CPU, voluntary context switches) of a process."""
    with open(f"/proc/{pid}/schedstat") as fh:
        on_cpu = int(fh.read().split()[0])
    with open(f"/proc/{pid}/status") as fh:
        switches = next(int(line.split()[1]) for line in fh
                        if line.startswith("voluntary_ctxt_switches"))
    return on_cpu, switches


def measure(mode: str, nodes: int, seconds: float, pings: float,
            frame: int) -> tuple:
    base = 41000 + random.randrange(0, 5000)
    ports = ",".join(str(base + i) for i in range(nodes))
    procs = []
    try:
        for index in range(nodes):
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--node", mode, str(index), ports,
                 str(pings), str(frame)]))
        time.sleep(SETTLE)
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a {mode} node exited early")
        before = [sample(p.pid) for p in procs]
        start = time.monotonic()
        time.sleep(seconds)
        after = [sample(p.pid) for p in procs]
        elapsed = time.monotonic() - start
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
    on_cpu = sum(b[0] - a[0] for a, b in zip(before, after))
    woke = sum(b[1] - a[1] for a, b in zip(before, after))
    ms_per_s = on_cpu / 1e6 / elapsed / nodes
    wakeups = woke / elapsed / nodes
    return ms_per_s, wakeups


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--node":
        mode, index, ports, pings, frame = sys.argv[2:7]
        ports = [int(p) for p in ports.split(",")]
        me = ports[int(index)]
        peers = [p for p in ports if p != me]
        run = run_twisted if mode == "twisted" else run_raw
        run(me, peers, float(pings) * TICK, int(frame))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pings", type=float, default=21.0,
                        help="PINGs sent per node per second")
    parser.add_argument("--frame", type=int, default=2568,
                        help="bytes per PING and PONG (a 30-node cluster's)")
    parser.add_argument("--modes", nargs="+", default=["twisted", "raw"],
                        choices=["twisted", "raw"])
    args = parser.parse_args()
    print(f"{args.nodes} nodes, {args.pings:g} PINGs/s each of "
          f"{args.frame} bytes, answered by PONGs; {args.seconds:g} s")
    for mode in args.modes:
        ms, wakeups = measure(mode, args.nodes, args.seconds, args.pings,
                              args.frame)
        print(f"  {mode:8} {ms:6.2f} ms/s on CPU per node "
              f"({ms / 10:.2f}% of a core), {wakeups:5.1f} wake-ups/s, "
              f"{1000 * ms / max(wakeups, 1e-9):4.0f} us per wake-up; "
              f"load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: every node was stopped")
