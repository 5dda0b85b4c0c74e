#!/usr/bin/env python3
"""How good is rcluster's used_memory estimate (rcluster/memory.py)?

For each type, a fresh node loads N keys (default 1,000,000) and the
growth of used_memory_dataset (the estimate) is compared with the growth
of the process's RSS (what it really cost).  Each key is small, as in
Redis's own benchmarks: a 16-byte string; a list, set, hash, sorted set
of 3 elements of 8 bytes; a stream with one 1-field entry.

Usage: bench/memory_estimate.py [--keys N] [--types string,list,...]
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tests.integration.harness import NodeProcess  # noqa: E402


def encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


def command_for(kind: str, i: int) -> bytes:
    key = b"key:%012d" % i
    if kind == "string":
        return encode(b"SET", key, b"v" * 16)
    if kind == "list":
        return encode(b"RPUSH", key, b"elem0001", b"elem0002", b"elem0003")
    if kind == "set":
        return encode(b"SADD", key, b"elem0001", b"elem0002", b"elem0003")
    if kind == "hash":
        return encode(b"HSET", key, b"field001", b"value001",
                      b"field002", b"value002", b"field003", b"value003")
    if kind == "zset":
        return encode(b"ZADD", key, b"1", b"elem0001", b"2", b"elem0002",
                      b"3", b"elem0003")
    if kind == "stream":
        return encode(b"XADD", key, b"1-1", b"field001", b"value001")
    raise ValueError(kind)


def load(port, kind, count, batch=5000):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for start in range(0, count, batch):
            n = min(batch, count - start)
            sock.sendall(b"".join(command_for(kind, i)
                                  for i in range(start, start + n)))
            lines = 0
            buf = b""
            while lines < n:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("connection closed")
                if b"-" in chunk[:1] or b"\r\n-" in chunk:
                    raise RuntimeError(f"error reply: {chunk[:200]!r}")
                buf += chunk
                lines = buf.count(b"\r\n")
                if kind == "stream":      # "$3\r\n1-1\r\n": two lines
                    lines //= 2


def rss(pid) -> int:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--types",
                        default="string,list,set,hash,zset,stream")
    args = parser.parse_args()
    print(f"{args.keys:,} keys per type, a fresh node each "
          f"(estimate = used_memory_dataset growth, real = RSS growth)")
    print(f"{'type':<8}{'estimate MiB':>14}{'RSS MiB':>10}{'error':>9}"
          f"{'est B/key':>11}{'RSS B/key':>11}")
    for kind in args.types.split(","):
        node = NodeProcess("rcluster", cluster=False)
        try:
            node.start()
            r = node.client()
            time.sleep(0.3)
            before_rss = rss(node.proc.pid)
            before = r.info("memory")["used_memory_dataset"]
            load(node.port, kind, args.keys)
            time.sleep(0.3)
            grown_rss = rss(node.proc.pid) - before_rss
            grown = r.info("memory")["used_memory_dataset"] - before
            assert r.dbsize() == args.keys, r.dbsize()
            error = (grown - grown_rss) / grown_rss * 100
            print(f"{kind:<8}{grown / 2**20:>14.1f}{grown_rss / 2**20:>10.1f}"
                  f"{error:>+8.1f}%{grown / args.keys:>11.0f}"
                  f"{grown_rss / args.keys:>11.0f}", flush=True)
        finally:
            node.cleanup()


if __name__ == "__main__":
    main()
