"""Client-side caching end to end: a small cache of GET results over a
redis-py RESP3 connection with an invalidation push handler, against a
real ``twistd rcluster`` node and a 3-node rcluster cluster (one cached
connection per node).  A write, an expiry or a flush from another client
invalidates the cached entry, and the next read is fresh; in the cluster,
a slot that leaves a node invalidates the keys of it cached there."""
from __future__ import annotations

import unittest

import redis
from twisted.trial.unittest import TestCase

from rcluster.cluster.keyslot import keyslot
from tests.integration.harness import have, start_node
from tests.integration.test_cluster_formation import (TIMEOUT, converged,
                                                      form, start_nodes,
                                                      wait_for)


class GetCache:
    """GET results, kept until the server says they changed."""

    def __init__(self, port: int):
        self.conn = redis.Connection(host="127.0.0.1", port=port,
                                     protocol=3, socket_timeout=10)
        self.conn.connect()
        self.conn._parser.set_invalidation_push_handler(self._invalidated)
        self.conn.send_command("CLIENT", "TRACKING", "ON")
        assert self.conn.read_response() == b"OK"
        self.values: dict = {}
        self.invalidations: list = []
        self.hits = self.reads = 0

    def _invalidated(self, push):
        keys = push[1]
        self.invalidations.append(keys)
        if keys is None:                 # a flush: everything
            self.values.clear()
        else:
            for key in keys:
                self.values.pop(key, None)

    def poll(self):
        """Take the invalidations that arrived."""
        while self.conn.can_read(timeout=0):
            self.conn.read_response(push_request=True)

    def get(self, key: bytes):
        self.poll()
        if key in self.values:
            self.hits += 1
            return self.values[key]
        self.reads += 1
        self.conn.send_command("GET", key)
        value = self.values[key] = self.conn.read_response()
        return value

    def wait_invalidated(self, key: bytes):
        """Until the entry is dropped (invalidations travel on their own
        connection: they may land just after the writer's reply)."""
        def dropped():
            self.poll()
            return key not in self.values
        wait_for(dropped, timeout=10, what=f"invalidation of {key!r}")

    def close(self):
        self.conn.disconnect()


class CacheScenario:
    """The same scenario on one node or on each node of a cluster."""

    def check_cache(self, cache: GetCache, writer, key: bytes):
        writer.set(key, b"v1")
        self.assertEqual(cache.get(key), b"v1")
        self.assertEqual(cache.get(key), b"v1")          # from the cache
        self.assertEqual(cache.hits, 1)
        # A write from another client.
        writer.set(key, b"v2")
        cache.wait_invalidated(key)
        self.assertEqual(cache.get(key), b"v2")
        # An expiry (active: nobody reads the key meanwhile).
        writer.set(key, b"v3", px=1500)
        cache.wait_invalidated(key)
        self.assertEqual(cache.get(key), b"v3")
        cache.wait_invalidated(key)
        self.assertEqual(cache.get(key), None)
        # The entry for a missing key is invalidated by its creation.
        writer.set(key, b"v4")
        cache.wait_invalidated(key)
        self.assertEqual(cache.get(key), b"v4")


class NodeTests(CacheScenario, TestCase):
    def setUp(self):
        self.node = start_node(self)
        self.cache = GetCache(self.node.port)
        self.addCleanup(self.cache.close)
        self.writer = self.node.client()
        self.addCleanup(self.writer.close)

    def test_write_expiry_and_recreation(self):
        self.check_cache(self.cache, self.writer, b"user:1")
        self.assertEqual(self.writer.info("clients")["tracking_clients"], 1)

    def test_flush_invalidates_everything(self):
        self.writer.mset({b"a": b"1", b"b": b"2"})
        self.assertEqual([self.cache.get(b"a"), self.cache.get(b"b")],
                         [b"1", b"2"])
        self.assertEqual(self.writer.info("stats")["tracking_total_keys"], 2)
        self.writer.flushall()
        wait_for(lambda: self.cache.poll() or not self.cache.values,
                 timeout=10, what="the null invalidation")
        self.assertEqual(self.cache.invalidations[-1], None)
        self.assertEqual(self.cache.get(b"a"), None)


class ClusterTests(CacheScenario, TestCase):
    def setUp(self):
        if not have("redis-cli"):
            raise unittest.SkipTest("redis-cli not installed")
        self.nodes = start_nodes(self, 3, directives=[TIMEOUT])
        form(self, self.nodes)
        self.caches = [GetCache(node.port) for node in self.nodes]
        for cache in self.caches:
            self.addCleanup(cache.close)
        from redis.cluster import ClusterNode, RedisCluster
        self.writer = RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", self.nodes[0].port)])
        self.addCleanup(self.writer.close)

    def owner(self, key: bytes) -> int:
        """Index of the node serving key (as form() spreads the slots)."""
        count = len(self.nodes)
        bounds = [i * 16384 // count for i in range(count + 1)]
        slot = keyslot(key)
        return next(i for i in range(count)
                    if bounds[i] <= slot < bounds[i + 1])

    def key_on(self, index: int) -> bytes:
        return next(b"key:%d" % i for i in range(1000)
                    if self.owner(b"key:%d" % i) == index)

    def test_one_cache_per_node(self):
        for index, cache in enumerate(self.caches):
            self.check_cache(cache, self.writer, self.key_on(index))
        for cache in self.caches:
            self.assertTrue(cache.invalidations)

    def test_slot_leaving_the_node_invalidates_its_keys(self):
        """A cached *missing* key whose slot moves away would otherwise
        stay cached forever: the next write happens on the new owner."""
        key = self.key_on(0)
        slot = keyslot(key)
        source, target = self.nodes[0], self.nodes[1]
        cache = self.caches[0]
        self.assertEqual(cache.get(key), None)
        target_id = target.cli("cluster", "myid").strip()
        target.cli("cluster", "bumpepoch")
        for node in (target, source, self.nodes[2]):
            self.assertEqual(node.cli("cluster", "setslot", str(slot),
                                      "node", target_id).strip(), "OK")
        cache.wait_invalidated(key)
        self.assertEqual(cache.invalidations[-1], [key])
        wait_for(lambda: converged(self.nodes), what="convergence")
        self.writer.set(key, b"moved")
        self.assertEqual(self.caches[1].get(key), b"moved")
