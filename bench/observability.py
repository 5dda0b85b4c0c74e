"""What keyspace notifications, the slow log and latency tracking cost on
the hot path (Server.execute of pipelined SET / GET / LPUSH).

    .venv/bin/python bench/observability.py [--quick]

Prints the best time per command over several runs for each setting, and
its ratio to the bare server (every feature off):

* off          notify-keyspace-events "", slowlog off, latency-tracking no
* defaults     Redis's defaults: slowlog-log-slower-than 10000 and
               latency-tracking yes (a histogram count per command)
* notify KEA   defaults + notify-keyspace-events KEA, nobody subscribed
* notify+sub   defaults + KEA with one pattern subscriber (each write
               publishes two messages)
* slowlog 0    defaults + slowlog-log-slower-than 0 (every command logged)
"""
from __future__ import annotations

import sys
import time

from twisted.internet.task import Clock

from rcluster.config import Settings
from rcluster.server import Server

CASES = (
    ("off", {"notify-keyspace-events": "", "slowlog-log-slower-than": "-1",
             "latency-tracking": "no"}),
    ("defaults", {}),
    ("notify KEA", {"notify-keyspace-events": "KEA"}),
    ("notify+sub", {"notify-keyspace-events": "KEA"}),
    ("slowlog 0", {"slowlog-log-slower-than": "0"}),
)


def make(directives, subscribe):
    settings = Settings()
    for name, value in directives.items():
        settings.apply(name, [value])
    server = Server(settings, Clock())
    client = server.new_client("127.0.0.1:1", write=lambda data: None)
    if subscribe:
        listener = server.new_client("127.0.0.1:2", write=lambda data: None)
        server.execute(listener, [b"PSUBSCRIBE", b"__key*__:*"])
    return server, client


def run(server, client, commands) -> int:
    execute = server.execute
    for argv in commands:
        execute(client, argv)
    return len(commands)


def best(server, client, commands, repeat):
    result = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        count = run(server, client, commands)
        result = min(result, (time.perf_counter() - start) / count)
    return result * 1e9


def main():
    quick = "--quick" in sys.argv
    n = 5_000 if quick else 50_000
    repeat = 3 if quick else 7
    workloads = {
        "SET": [[b"SET", b"key:%d" % (i % 1000), b"value"] for i in range(n)],
        "GET": [[b"GET", b"key:%d" % (i % 1000)] for i in range(n)],
        "LPUSH": [[b"LPUSH", b"list:%d" % (i % 100), b"x"] for i in range(n)],
    }
    print("%-12s %s" % ("case", "  ".join("%14s" % w for w in workloads)))
    base = {}
    for name, directives in CASES:
        server, client = make(directives, name == "notify+sub")
        cells = []
        for workload, commands in workloads.items():
            ns = best(server, client, commands, repeat)
            base.setdefault(workload, ns)
            cells.append("%6.0f ns x%4.2f" % (ns, ns / base[workload]))
        print("%-12s %s" % (name, "  ".join(cells)))


if __name__ == "__main__":
    main()
