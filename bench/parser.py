"""Micro-benchmark of the request parser and of Client.feed.

    .venv/bin/python bench/parser.py [--quick]

Prints the best time per request of several short runs (the machine may
be shared: the minimum is the figure to compare).  Cases:

* single     one SET per chunk (a client waiting for each reply)
* pipe16     16 pipelined SETs per chunk (redis-benchmark -P 16)
* stream     64 KiB chunks of a long pipeline, cut anywhere (bulk loads)
* inline     16 inline SETs per chunk (exact parser)
* client     Client.feed of 16 pipelined SETs, replies included
"""
from __future__ import annotations

import sys
import time

import hiredis
from twisted.internet.task import Clock

from rcluster.config import Settings
from rcluster.resp.codec import RequestParser
from rcluster.server import Server


def requests(count, size=10):
    return [hiredis.pack_command((b"SET", b"key:%d" % i, b"v" * size))
            for i in range(count)]


def best(run, repeat):
    result = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        result = min(result, (time.perf_counter() - start) / count)
    return result * 1e9


def parse_chunks(chunks, rounds):
    def run():
        parser = RequestParser()
        total = 0
        for _ in range(rounds):
            for chunk in chunks:
                total += len(parser.feed(chunk))
                while parser.more:
                    batch = parser.take()
                    if not batch:
                        break
                    total += len(batch)
        return total
    return run


def client_feed(chunk, per_chunk, rounds):
    server = Server(Settings(), Clock())
    client = server.new_client("127.0.0.1:1", "127.0.0.1:6379",
                               lambda data: None, lambda: None)

    def run():
        for _ in range(rounds):
            client.feed(chunk)
        return rounds * per_chunk
    return run


def main(quick=False):
    rounds, repeat = (500, 3) if quick else (3000, 7)
    single = requests(1)
    pipe16 = [b"".join(requests(16))]
    stream = b"".join(requests(20000, 20))
    stream_chunks = [stream[i:i + 65536] for i in range(0, len(stream), 65536)]
    inline = [b"".join(b"SET key:%d vvvvvvvvvv\r\n" % i for i in range(16))]
    cases = [
        ("single", parse_chunks(single, rounds * 16)),
        ("pipe16", parse_chunks(pipe16, rounds)),
        ("stream", parse_chunks(stream_chunks, max(rounds // 1000, 1))),
        ("inline", parse_chunks(inline, rounds // 4)),
        ("client", client_feed(pipe16[0], 16, rounds)),
    ]
    for name, run in cases:
        print(f"{name:8} {best(run, repeat):8.0f} ns/request")


if __name__ == "__main__":
    main("--quick" in sys.argv)
