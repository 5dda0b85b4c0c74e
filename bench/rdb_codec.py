#!/usr/bin/env python3
"""The RDB codec's speed (rcluster/persistence/rdb.py), in process.

1. ``strings``: RdbWriter encodes N small string keys (key:%d -> value:%d,
   like DEBUG POPULATE) into a file image, RdbReader decodes it in 64 KB
   chunks; prints keys/s and MB/s for each direction.
2. ``containers``: the same with small hashes, lists, sets and zsets.
3. ``crc64`` and ``lzf``: MB/s of the checksum and of LZF on text.

With --redis, also times redis-server's SAVE and DEBUG RELOAD of the same
N string keys (DEBUG POPULATE) and prints the ratio.

Usage: bench/rdb_codec.py [-n 1000000] [--redis]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rcluster.persistence.crc64 import crc64  # noqa: E402
from rcluster.persistence.lzf import compress, decompress  # noqa: E402
from rcluster.persistence.rdb import (Entry, RdbReader,  # noqa: E402
                                      RdbWriter)
from rcluster.zset import ZSet  # noqa: E402


def encode(items):
    w = RdbWriter()
    parts = [w.header([(b"redis-ver", b"7.0.15")]),
             w.select_db(0, len(items), 0)]
    entry = w.entry
    for key, value in items:
        parts.append(entry(key, value))
    parts.append(w.footer())
    return b"".join(parts)


def decode(data, chunk=1 << 16):
    reader = RdbReader()
    count = 0
    for i in range(0, len(data), chunk):
        for record in reader.feed(data[i:i + chunk]):
            if record.__class__ is Entry:
                count += 1
    reader.finish()
    return count


def timed(label, n, fn, *args):
    """Wall-clock seconds (returned), and this process's CPU seconds (on
    a shared machine the CPU figure is the steadier one)."""
    start = time.perf_counter()
    cpu = time.process_time()
    out = fn(*args)
    took = time.perf_counter() - start
    cpu = time.process_time() - cpu
    size = len(out) if isinstance(out, bytes) else None
    extra = " %.1f MB/s" % (size / took / 1e6) if size else ""
    print("%-28s %8.2f s  %9.0f keys/s%s  (cpu %.2f s, %.0f keys/s)"
          % (label, took, n / took, extra, cpu, n / max(cpu, 1e-9)))
    return out, took


def strings(n):
    items = [(b"key:%d" % i, b"value:%d" % i) for i in range(n)]
    data, enc = timed("encode %d strings" % n, n, encode, items)
    print("  file: %.1f MB" % (len(data) / 1e6))
    count, dec = timed("decode %d strings" % n, n, decode, data)
    assert count == n
    return enc, dec


def containers(n):
    n //= 10
    items = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            value = {b"f%d" % j: b"v%d" % j for j in range(10)}
        elif kind == 1:
            value = deque(b"e%d" % j for j in range(10))
        elif kind == 2:
            value = {b"%d" % j for j in range(10)}
        else:
            value = ZSet({b"m%d" % j: float(j) for j in range(10)})
        items.append((b"c:%d" % i, value))
    data, _ = timed("encode %d containers" % n, n, encode, items)
    count, _ = timed("decode %d containers" % n, n, decode, data)
    assert count == n


def primitives():
    data = os.urandom(32 << 20)
    start = time.perf_counter()
    crc64(data)
    print("crc64 32 MB                  %.0f MB/s"
          % (32 / (time.perf_counter() - start)))
    text = b"".join(b"value:%d " % i for i in range(200000))
    start = time.perf_counter()
    packed = compress(text)
    took = time.perf_counter() - start
    print("lzf compress text            %.1f MB/s (ratio %.2f)"
          % (len(text) / took / 1e6, len(packed) / len(text)))
    start = time.perf_counter()
    decompress(packed, len(text))
    print("lzf decompress text          %.1f MB/s"
          % (len(text) / (time.perf_counter() - start) / 1e6))


def redis_reference(n):
    from tests.integration.harness import NodeProcess
    node = NodeProcess("redis-server",
                       directives=[("enable-debug-command", "yes")])
    node.start()
    try:
        r = node.client()
        r.execute_command("DEBUG", "POPULATE", n, "key")
        start = time.perf_counter()
        r.save()
        save = time.perf_counter() - start
        start = time.perf_counter()
        r.execute_command("DEBUG", "RELOAD", "NOSAVE")
        load = time.perf_counter() - start
        print("redis-server SAVE %d keys    %.2f s; DEBUG RELOAD NOSAVE %.2f s"
              % (n, save, load))
        return save, load
    finally:
        node.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--redis", action="store_true")
    args = parser.parse_args()
    enc, dec = strings(args.n)
    containers(args.n)
    primitives()
    if args.redis:
        save, load = redis_reference(args.n)
        print("ratio rcluster/redis-server: encode %.1fx, decode %.1fx"
              % (enc / save, dec / load))


if __name__ == "__main__":
    main()
