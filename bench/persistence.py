#!/usr/bin/env python3
"""RDB persistence, rcluster vs redis-server, side by side on this machine.

Loads the same mixed dataset into both (N keys: 60% strings, 10% each of
lists, hashes, sets and sorted sets of 5 elements; 10% of the keys with a
TTL), then measures:

1. SAVE: seconds, and the rcluster/redis-server ratio.
2. RDB size: bytes, and the ratio.
3. Load at start-up: "DB loaded from disk: X seconds" from each log, and
   the ratio.
4. BGSAVE, twice (idle, then with a client overwriting random keys all
   along, where fork's copy-on-write shows): the longest PING round trip
   a concurrent client sees while the save runs (goal for rcluster:
   < 100 ms), and the peak extra memory during the save as a share of
   the dataset's memory (goal for rcluster: < 0.25x).  Memory is PSS (/proc/PID/smaps_rollup), summed over the
   server and its children: Redis's forked child shares pages with its
   parent, and PSS counts a shared page once, so the sum is the real
   footprint (RSS would count the shared pages twice).
The AOF's figures (BGREWRITEAOF, appendfsync throughput) are
bench/aof.py's.

Both servers run standalone on loopback, each pinned to CPU 0 when there
are two CPUs or more (the load generator and probes use the others).

Usage: bench/persistence.py [--keys N] [--quick]   (--quick: N = 100,000)
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.throughput import PIN, start_pinned  # noqa: E402
from tests.integration.harness import NodeProcess  # noqa: E402


def resp(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


def dataset_commands(n: int):
    """Batches of (payload, number of replies) building the dataset."""
    batch, count = [], 0
    for i in range(n):
        key = b"key:%010d" % i
        kind = i % 10
        if kind < 6:
            batch.append(resp(b"SET", key, b"value-%d-" % i + b"x" * 16))
        elif kind == 6:
            batch.append(resp(b"RPUSH", key, *[b"item-%d" % j
                                               for j in range(5)]))
        elif kind == 7:
            batch.append(resp(b"HSET", key, *[b"f%d" % (j // 2) if j % 2 == 0
                                              else b"v%d" % j
                                              for j in range(10)]))
        elif kind == 8:
            batch.append(resp(b"SADD", key, *[b"m%d" % j for j in range(5)]))
        else:
            batch.append(resp(b"ZADD", key, *[b"%d" % j if k == 0
                                              else b"m%d" % j
                                              for j in range(5)
                                              for k in range(2)]))
        count += 1
        if i % 10 == 3:
            batch.append(resp(b"PEXPIRE", key, b"86400000"))
            count += 1
        if count >= 5000:
            yield b"".join(batch), count
            batch, count = [], 0
    if batch:
        yield b"".join(batch), count


def _replies(sock, count):
    """Drain count simple replies (+OK, :n) - the dataset has no errors."""
    buf = b""
    seen = 0
    while seen < count:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("server closed the connection")
        if b"-" in chunk[:1] or b"\r\n-" in chunk:
            raise RuntimeError(f"error reply: {chunk[:200]!r}")
        buf += chunk
        seen = buf.count(b"\r\n")
    return buf


def load_dataset(port, n):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for payload, count in dataset_commands(n):
            sock.sendall(payload)
            _replies(sock, count)


def command(port, *args, timeout=3600) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(resp(*args))
        out = s.recv(1 << 16)
        while not out.endswith(b"\r\n"):
            out += s.recv(1 << 16)
        if out.startswith(b"$"):
            size = int(out[1:out.index(b"\r\n")])
            while len(out) < size + len(b"$%d\r\n\r\n" % size):
                out += s.recv(1 << 16)
        return out


def info_field(port, section, name) -> str:
    text = command(port, "INFO", section).decode()
    match = re.search(r"^%s:(.*)\r$" % re.escape(name), text, re.M)
    return match.group(1) if match else ""


def _children(pid) -> list:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def pss_bytes(pid) -> int:
    """PSS of pid and its children."""
    total = 0
    for p in [pid] + _children(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


class Prober:
    """While running: PING round trips (longest kept) and peak PSS; with
    ``n`` (keys), also a client overwriting random string keys (batches of
    100 SETs, about 5,000 a second)."""

    def __init__(self, port, pid, n=0):
        self.port, self.pid, self.n = port, pid, n
        self.longest = 0.0
        self.peak = 0
        self.pings = 0
        self.writes = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._ping, daemon=True),
                        threading.Thread(target=self._memory, daemon=True)]
        if n:
            self.threads.append(threading.Thread(target=self._write,
                                                 daemon=True))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def _ping(self):
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            while not self.stop.is_set():
                start = time.perf_counter()
                s.sendall(b"PING\r\n")
                got = b""
                while not got.endswith(b"\r\n"):
                    got += s.recv(64)
                self.longest = max(self.longest, time.perf_counter() - start)
                self.pings += 1
                time.sleep(0.002)

    def _write(self):
        import random
        strings = [i for i in range(min(self.n, 1_000_000)) if i % 10 < 6]
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            while not self.stop.is_set():
                batch = b"".join(
                    resp(b"SET", b"key:%010d" % random.choice(strings),
                         b"overwritten-" + b"y" * 20) for _ in range(100))
                s.sendall(batch)
                _replies(s, 100)
                self.writes += 100
                time.sleep(0.02)

    def _memory(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, pss_bytes(self.pid))
            time.sleep(0.01)


def measure(name, node, n) -> dict:
    out = {}
    start_pinned(node, timeout=600)
    port = node.port
    empty = pss_bytes(node.proc.pid)
    t0 = time.perf_counter()
    load_dataset(port, n)
    out["fill_s"] = time.perf_counter() - t0
    loaded = pss_bytes(node.proc.pid)
    out["dataset_bytes"] = loaded - empty
    print(f"  {name}: filled {n} keys in {out['fill_s']:.1f} s, dataset "
          f"{out['dataset_bytes'] / 2**20:.0f} MiB", flush=True)

    t0 = time.perf_counter()
    reply = command(port, "SAVE")
    out["save_s"] = time.perf_counter() - t0
    assert reply == b"+OK\r\n", reply
    path = os.path.join(node.workdir, "dump.rdb")
    out["rdb_bytes"] = os.path.getsize(path)

    # Baseline: the same writes and pings for 10 s, no save running.
    with Prober(port, node.proc.pid, n) as probe:
        time.sleep(10)
    out["baseline_longest_ping_ms"] = probe.longest * 1000
    for suffix, writers in (("", 0), ("_writes", n)):
        base = pss_bytes(node.proc.pid)
        with Prober(port, node.proc.pid, writers) as probe:
            time.sleep(0.2)
            t0 = time.perf_counter()
            reply = command(port, "BGSAVE")
            assert reply.startswith(b"+Background saving started"), reply
            time.sleep(0.05)
            while info_field(port, "persistence",
                             "rdb_bgsave_in_progress") != "0":
                time.sleep(0.02)
            out["bgsave_s" + suffix] = time.perf_counter() - t0
        assert info_field(port, "persistence",
                          "rdb_last_bgsave_status") == "ok"
        out["bgsave_longest_ping_ms" + suffix] = probe.longest * 1000
        out["bgsave_extra_bytes" + suffix] = max(probe.peak - base, 0)
        out["bgsave_pings" + suffix] = probe.pings
        out["bgsave_writes" + suffix] = probe.writes

    node.stop()
    # Restart on the file: the load time as the server logs it.
    log_before = len(node.output())
    start_pinned(node, timeout=600)
    match = None
    deadline = time.monotonic() + 60
    while match is None and time.monotonic() < deadline:
        match = re.search(r"DB loaded from disk: ([\d.]+) seconds",
                          node.output()[-4000:] if log_before else
                          node.output())
        time.sleep(0.05)
    out["load_s"] = float(match.group(1)) if match else float("nan")
    keys = command(port, "DBSIZE")
    out["keys_after_load"] = int(keys[1:-2])
    node.stop()
    return out


def report(results: dict, n: int):
    rc, rs = results["rcluster"], results["redis-server"]

    def row(label, key, unit, scale=1.0, fmt="%.3f"):
        a, b = rc[key] * scale, rs[key] * scale
        ratio = a / b if b else float("inf")
        print(f"{label:<34} {fmt % a:>12} {fmt % b:>14} {unit:<5} "
              f"{ratio:8.2f}x")

    print()
    print(f"RDB persistence, {n:,} keys of mixed types")
    print(f"{'':<34} {'rcluster':>12} {'redis-server':>14} {'':<5} "
          f"{'ratio':>9}")
    row("SAVE", "save_s", "s")
    row("load at start-up", "load_s", "s")
    row("RDB size", "rdb_bytes", "MiB", 1 / 2**20, "%.1f")
    row("BGSAVE duration", "bgsave_s", "s")
    row("BGSAVE: longest PING round trip", "bgsave_longest_ping_ms", "ms",
        1.0, "%.1f")
    row("BGSAVE: peak extra memory (PSS)", "bgsave_extra_bytes", "MiB",
        1 / 2**20, "%.1f")
    row("BGSAVE+writes: duration", "bgsave_s_writes", "s")
    row("BGSAVE+writes: longest PING", "bgsave_longest_ping_ms_writes",
        "ms", 1.0, "%.1f")
    row("BGSAVE+writes: peak extra (PSS)", "bgsave_extra_bytes_writes",
        "MiB", 1 / 2**20, "%.1f")
    row("writes, no save: longest PING", "baseline_longest_ping_ms", "ms",
        1.0, "%.1f")
    row("dataset memory (PSS)", "dataset_bytes", "MiB", 1 / 2**20, "%.1f")
    for name, res in results.items():
        for suffix, what in (("", "idle"), ("_writes", "under writes")):
            share = res["bgsave_extra_bytes" + suffix] / \
                max(res["dataset_bytes"], 1)
            print(f"{name}: BGSAVE {what}: extra memory = {share:.3f}x the "
                  f"dataset; longest PING "
                  f"{res['bgsave_longest_ping_ms' + suffix]:.1f} ms over "
                  f"{res['bgsave_pings' + suffix]} pings, "
                  f"{res['bgsave_writes' + suffix]} SETs")
        print(f"{name}: keys after reload {res['keys_after_load']}")
    goal_ping = max(rc["bgsave_longest_ping_ms"],
                    rc["bgsave_longest_ping_ms_writes"]) < 100
    goal_mem = max(rc["bgsave_extra_bytes"], rc["bgsave_extra_bytes_writes"]) \
        < 0.25 * rc["dataset_bytes"]
    print(f"rcluster goals: PING < 100 ms: {'met' if goal_ping else 'MISSED'}"
          f"; extra memory < 0.25x dataset: "
          f"{'met' if goal_mem else 'MISSED'}")
    print("AOF (BGREWRITEAOF, appendfsync): see bench/aof.py")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true",
                        help="100,000 keys")
    args = parser.parse_args()
    n = 100_000 if args.quick else args.keys
    if not shutil.which("redis-server"):
        sys.exit("redis-server is not installed")
    if PIN:
        os.sched_setaffinity(0, set(os.sched_getaffinity(0)) - {0})
    servers = {
        "rcluster": NodeProcess("rcluster", cluster=False,
                                directives=[("save", "")]),
        "redis-server": NodeProcess("redis-server", cluster=False,
                                    directives=[("save", "")])}
    results = {}
    try:
        for name, node in servers.items():
            print(f"{name} ...", flush=True)
            results[name] = measure(name, node, n)
        report(results, n)
    finally:
        for node in servers.values():
            node.cleanup()


if __name__ == "__main__":
    main()
