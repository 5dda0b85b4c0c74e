"""maxmemory and every maxmemory-policy on a real node (rcluster/eviction.py).

Each policy gets its own node with ``maxmemory 50mb`` and takes 200 MB of
4 KB writes (pipelined, 500 a batch).  After the writes: the node answers, its
used_memory is within 10% of the limit, the policy's victims are the
expected kind, and the RSS the node grew by stays under 2x the limit.
RSS itself is compared from the node's RSS at start: CPython with Twisted,
lupa and hiredis loaded already sits at ~50 MB before any key, which
used_memory (the dataset estimate, see rcluster/memory.py) doesn't count.
"""
import redis
from twisted.trial.unittest import TestCase

from tests.integration.harness import start_node

MB = 1024 * 1024
LIMIT = 50 * MB
WRITE_MB = 200
VALUE = b"x" * 4096
BATCH = 500


def rss(node) -> int:
    with open(f"/proc/{node.proc.pid}/statm") as fh:
        return int(fh.read().split()[1]) * 4096


class EvictionPolicyTests(TestCase):
    def node(self, policy):
        node = start_node(self, directives=[
            ("maxmemory", str(LIMIT)), ("maxmemory-policy", policy)])
        return node, node.client(), rss(node)

    def write(self, r, prefix, megabytes, ttl=None, between=None):
        """SETs of VALUE in pipelined batches; the number that succeeded,
        and the errors."""
        total = megabytes * MB // len(VALUE)
        ok, errors = 0, set()
        self.written = []
        for start in range(0, total, BATCH):
            pipe = r.pipeline(transaction=False)
            keys = [b"%s:%d" % (prefix, i)
                    for i in range(start, min(start + BATCH, total))]
            for key in keys:
                pipe.set(key, VALUE, ex=ttl)
            for key, reply in zip(keys, pipe.execute(raise_on_error=False)):
                if isinstance(reply, Exception):
                    errors.add(str(reply))
                else:
                    ok += 1
                    self.written.append(key)
            if between is not None:
                between()
        return ok, errors

    def check_memory(self, node, r, start_rss, evicting=True):
        self.assertTrue(r.ping())
        info = r.info("memory")
        used = info["used_memory"]
        self.assertLessEqual(used, LIMIT * 1.1)
        if evicting:
            self.assertGreaterEqual(used, LIMIT * 0.9)
            self.assertGreater(r.info("stats")["evicted_keys"], 0)
        self.assertLess(rss(node) - start_rss, 2 * LIMIT)

    def count(self, r, pattern) -> int:
        return sum(1 for _ in r.scan_iter(match=pattern, count=1000))

    # -- allkeys-* ----------------------------------------------------------
    def test_allkeys_lru_keeps_the_hot_set(self):
        node, r, start = self.node("allkeys-lru")
        hot = [b"hot:%d" % i for i in range(200)]
        for key in hot:
            r.set(key, VALUE)

        def read_hot():
            pipe = r.pipeline(transaction=False)
            for key in hot:
                pipe.get(key)
            self.assertTrue(all(pipe.execute()))

        ok, errors = self.write(r, b"cold", WRITE_MB, between=read_hot)
        self.assertEqual(errors, set())
        self.check_memory(node, r, start)
        self.assertEqual(sum(r.exists(key) for key in hot), len(hot))

    def test_allkeys_lfu_keeps_the_frequent_keys(self):
        node, r, start = self.node("allkeys-lfu")
        hot = [b"hot:%d" % i for i in range(200)]
        for key in hot:
            r.set(key, VALUE)
        for _ in range(20):
            pipe = r.pipeline(transaction=False)
            for key in hot:
                pipe.get(key)
            pipe.execute()
        ok, errors = self.write(r, b"cold", WRITE_MB)
        self.assertEqual(errors, set())
        self.check_memory(node, r, start)
        self.assertGreaterEqual(sum(r.exists(key) for key in hot),
                                0.95 * len(hot))

    def test_allkeys_random(self):
        node, r, start = self.node("allkeys-random")
        ok, errors = self.write(r, b"k", WRITE_MB)
        self.assertEqual(errors, set())
        self.check_memory(node, r, start)

    # -- volatile-* ---------------------------------------------------------
    def check_volatile(self, policy):
        node, r, start = self.node(policy)
        kept, errors = self.write(r, b"persistent", 10)
        self.assertEqual(errors, set())
        ok, errors = self.write(r, b"ttl", WRITE_MB - 10, ttl=100000)
        self.assertEqual(errors, set())
        self.check_memory(node, r, start)
        # Only keys with a TTL were evicted.
        self.assertEqual(self.count(r, "persistent:*"), kept)
        self.assertEqual(r.info("keyspace")["db0"]["keys"] -
                         r.info("keyspace")["db0"]["expires"], kept)

    def test_volatile_lru(self):
        self.check_volatile("volatile-lru")

    def test_volatile_lfu(self):
        self.check_volatile("volatile-lfu")

    def test_volatile_random(self):
        self.check_volatile("volatile-random")

    def test_volatile_ttl(self):
        self.check_volatile("volatile-ttl")

    # -- noeviction -----------------------------------------------------------
    def test_noeviction_answers_oom_and_loses_nothing(self):
        node, r, start = self.node("noeviction")
        ok, errors = self.write(r, b"k", 80)
        # redis-py strips the "OOM " prefix (its OutOfMemoryError).
        self.assertEqual(errors, {"command not allowed when used memory "
                                  "> 'maxmemory'."})
        # Every write that was answered OK is there (which ones succeed
        # near the limit varies: the client's query buffer counts too).
        self.assertEqual(r.dbsize(), ok)
        pipe = r.pipeline(transaction=False)
        for key in self.written:
            pipe.exists(key)
        self.assertEqual(sum(pipe.execute()), ok)
        self.assertEqual(r.get(b"k:0"), VALUE)
        with self.assertRaises(redis.exceptions.ResponseError):
            r.set(b"one-more", VALUE)
        self.assertEqual(r.delete(b"k:0"), 1)      # not denyoom
        self.assertEqual(r.info("stats")["evicted_keys"], 0)
        self.check_memory(node, r, start, evicting=False)
