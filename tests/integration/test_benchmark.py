"""redis-benchmark runs its standard tests cleanly against a standalone node.

Not a performance test: 2000 requests per test, and the assertion is that
every command works (exit 0, no error line), whatever the speed.
redis-benchmark 7.0 stops at the first error reply ("Error from server:
...", exit 1), and warns when it can't read CONFIG GET save/appendonly.
"""
import subprocess

from twisted.trial.unittest import TestCase

from tests.integration.harness import have, start_node

TESTS = "ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange,mset"


class BenchmarkTests(TestCase):
    def test_redis_benchmark_standard_tests(self):
        if not have("redis-benchmark"):
            self.skipTest("redis-benchmark not installed")
        node = start_node(self)
        result = subprocess.run(
            ["redis-benchmark", "-h", "127.0.0.1", "-p", str(node.port),
             "-t", TESTS, "-q", "-n", "2000", "-c", "10"],
            capture_output=True, text=True, timeout=300)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        lines = [line.strip() for line in output.replace("\r", "\n").splitlines()]
        errors = [line for line in lines
                  if line and ("error" in line.lower() or "ERR" in line
                               or "WARNING" in line)]
        self.assertEqual(errors, [], output)
        # One summary line per test (LRANGE is four: 100, 300, 500, 600).
        summaries = [line.split(":")[0] for line in lines
                     if "requests per second" in line]
        self.assertEqual(summaries, [
            "PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "RPUSH",
            "LPOP", "RPOP", "SADD", "HSET", "SPOP", "ZADD", "ZPOPMIN",
            "LPUSH (needed to benchmark LRANGE)", "LRANGE_100 (first 100 elements)",
            "LRANGE_300 (first 300 elements)", "LRANGE_500 (first 500 elements)",
            "LRANGE_600 (first 600 elements)", "MSET (10 keys)"], output)
