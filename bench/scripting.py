"""EVAL / EVALSHA throughput, rcluster vs redis-server (redis-benchmark).

    .venv/bin/python bench/scripting.py [-n 100000] [-c 50]

Runs ``redis-benchmark -n N -c C eval "return redis.call('set',KEYS[1],
ARGV[1])" 1 key:__rand_int__ val`` (and the same with EVALSHA, after
SCRIPT LOAD) against a standalone node of each and prints requests/s
and the ratio rcluster / redis-server (goal >= 0.3)."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.integration.harness import NodeProcess  # noqa: E402

SCRIPT = "return redis.call('set',KEYS[1],ARGV[1])"


def rps(port, n, c, *command) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-n", str(n), "-c", str(c),
         "-r", "100000", "-q", *command],
        capture_output=True, text=True, timeout=600).stdout
    found = re.findall(r"([\d.]+) requests per second", out)
    return float(found[-1]) if found else 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=100000)
    parser.add_argument("-c", type=int, default=50)
    args = parser.parse_args()
    results = {}
    for binary in ("redis-server", "rcluster"):
        node = NodeProcess(binary=binary)
        node.start()
        try:
            sha = node.cli("script", "load", SCRIPT).strip()
            results[binary] = (
                rps(node.port, args.n, args.c, "eval", SCRIPT, "1",
                    "key:__rand_int__", "val"),
                rps(node.port, args.n, args.c, "evalsha", sha, "1",
                    "key:__rand_int__", "val"))
        finally:
            node.cleanup()
    for i, name in enumerate(("EVAL", "EVALSHA")):
        ref, ours = results["redis-server"][i], results["rcluster"][i]
        print("%-8s redis-server %10.0f rps   rcluster %10.0f rps   ratio %.2f"
              % (name, ref, ours, ours / ref if ref else 0))


if __name__ == "__main__":
    main()
