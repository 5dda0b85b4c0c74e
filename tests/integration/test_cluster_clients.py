"""Real cluster clients against real ``twistd rcluster`` processes on
loopback: ``redis-cli --cluster create --cluster-replicas 1`` over six
nodes, then, on the cluster it leaves, redis-py ``RedisCluster``
following MOVED, ``redis-cli -c``, cluster-wide PUBLISH and sharded
pub/sub routed by slot.

(``redis-cli --cluster create/check`` with --cluster-replicas 0 is covered
by test_cluster_formation.)"""
from __future__ import annotations

import socket
import subprocess
import unittest
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from twisted.trial.unittest import TestCase

from rcluster.admin import AdminClient, ReplyError
from rcluster.cluster.keyslot import keyslot
from tests.integration.harness import NodeProcess, have
from tests.integration.test_cluster_formation import (TIMEOUT, converged,
                                                      info, wait_for)

KEYS = 10_000


def create(nodes, replicas) -> str:
    """redis-cli --cluster create; returns its output."""
    result = subprocess.run(
        ["redis-cli", "--cluster", "create", *[n.address for n in nodes],
         "--cluster-replicas", str(replicas), "--cluster-yes"],
        capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError("redis-cli --cluster create failed:\n"
                             + result.stdout + result.stderr)
    return result.stdout


def roles(node) -> dict:
    """CLUSTER NODES as {port: (flags without myself, master id, name,
    serves slots)}."""
    out = {}
    for line in node.cli("cluster", "nodes").splitlines():
        fields = line.split()
        port = int(fields[1].split(":")[1].split("@")[0])
        flags = ",".join(f for f in fields[2].split(",") if f != "myself")
        out[port] = (flags, fields[3], fields[0], len(fields) > 8)
    return out


def all_linked(nodes) -> bool:
    """Every node has its bus link to every other up (cluster-wide
    PUBLISH goes over those links)."""
    return all(line.split()[7] == "connected"
               for node in nodes
               for line in node.cli("cluster", "nodes").splitlines())


def slot_owners(node) -> list:
    """CLUSTER SLOTS as [(start, end, port of the master)]."""
    client = node.client()
    try:
        return [(start, end, int(master[1])) for start, end, master, *_
                in client.execute_command("CLUSTER", "SLOTS")]
    finally:
        client.close()


def errorstat(node, code) -> int:
    client = node.client()
    try:
        return client.info("errorstats").get(f"errorstat_{code}", {}).get("count", 0)
    finally:
        client.close()


class ClusterClientsTests(TestCase):
    """One six-node cluster, built by redis-cli, for the whole class."""

    @classmethod
    def setUpClass(cls):
        if not have("redis-cli"):
            raise unittest.SkipTest("redis-cli not installed")
        cls.nodes = [NodeProcess(cluster=True, directives=[TIMEOUT])
                     for _ in range(6)]
        for node in cls.nodes:
            cls.addClassCleanup(node.cleanup)
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda n: n.start(), cls.nodes))
        cls.create_output = create(cls.nodes, replicas=1)
        wait_for(lambda: converged(cls.nodes) and all_linked(cls.nodes),
                 timeout=30, what="convergence")
        cls.owners = slot_owners(cls.nodes[0])
        cls.by_port = {n.port: n for n in cls.nodes}
        cls.masters = [cls.by_port[port] for port in
                       sorted({port for _, _, port in cls.owners})]

    def owner(self, key: bytes) -> NodeProcess:
        slot = keyslot(key)
        return next(self.by_port[port] for start, end, port in self.owners
                    if start <= slot <= end)

    def test_create_with_replicas(self):
        """Three masters with one replica each, as every node sees it."""
        self.assertIn("[OK] All 16384 slots covered.", self.create_output)
        view = roles(self.nodes[0])
        replicas = [port for port, (flags, *_) in view.items() if flags == "slave"]
        self.assertEqual(len(replicas), 3)
        self.assertEqual(len({view[port][1] for port in replicas}), 3)
        self.assertEqual(len(self.masters), 3)
        for node in self.nodes:
            fields = info(node)
            self.assertEqual((fields["cluster_state"], fields["cluster_known_nodes"],
                              fields["cluster_size"]), ("ok", "6", "3"))
        check = self.nodes[3].cli("--cluster", "check", self.nodes[3].address)
        self.assertIn("[OK] All nodes agree about slots configuration.", check)
        self.assertIn("[OK] All 16384 slots covered.", check)
        self.assertNotIn("[ERR]", check)

    def test_redis_py_cluster_follows_moved(self):
        from redis.cluster import ClusterNode, RedisCluster
        first = self.masters[0]
        cluster = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", first.port)],
                               reinitialize_steps=10 ** 9, socket_timeout=10)
        self.addCleanup(cluster.close)
        # A stale slot map - everything on the first master - so that each
        # slot served elsewhere costs exactly one MOVED, which the client
        # follows (and remembers: the slot map is never reloaded).
        manager = cluster.nodes_manager
        first_node = manager.get_node("127.0.0.1", first.port)
        for slot in range(16384):
            manager.slots_cache[slot] = [first_node]
        for node in self.masters:         # the counts below are exact
            node.cli("flushall")
        moved_before = errorstat(first, "MOVED")
        keys = [b"key:%05d" % i for i in range(KEYS)]
        for key in keys:
            self.assertTrue(cluster.set(key, key[::-1]))
        foreign_slots = {keyslot(k) for k in keys if self.owner(k) is not first}
        self.assertEqual(errorstat(first, "MOVED") - moved_before,
                         len(foreign_slots))
        pipe = cluster.pipeline()
        for key in keys:
            pipe.get(key)
        self.assertEqual(pipe.execute(), [key[::-1] for key in keys])

        # Each key is on its slot's owner and its replica, and only there.
        per_slot = Counter(keyslot(k) for k in keys)
        slots = sorted(per_slot)
        for node in self.nodes:
            client = node.client()
            self.addCleanup(client.close)
            shard = self.master_of(node)
            expected = [per_slot[slot] if self.owner_of_slot(slot) is shard
                        else 0 for slot in slots]
            # A replica may still be applying the stream.
            wait_for(lambda: client.dbsize() == sum(expected), timeout=10,
                     what=f"{sum(expected)} keys on {node.port}")
            pipe = client.pipeline(transaction=False)
            for slot in slots:
                pipe.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)
            self.assertEqual(pipe.execute(), expected)

    def master_of(self, node) -> NodeProcess:
        """The node itself if a master, else the master it replicates."""
        flags, master_id, *_ = roles(node)[node.port]
        if flags != "slave":
            return node
        return next(n for n in self.masters
                    if roles(n)[n.port][2] == master_id)

    def owner_of_slot(self, slot) -> NodeProcess:
        return next(self.by_port[port] for start, end, port in self.owners
                    if start <= slot <= end)

    def test_redis_cli_follows_redirects(self):
        first = self.masters[0]
        key = next(k for k in (b"cli:%d" % i for i in range(100))
                   if self.owner(k) is not first)
        owner = self.owner(key)
        self.assertEqual(first.cli("-c", "set", key.decode(), "hello").strip(), "OK")
        self.assertEqual(first.cli("-c", "get", key.decode()).strip(), "hello")
        self.assertEqual(owner.cli("get", key.decode()).strip(), "hello")
        # Without -c, redis-cli shows the redirection.
        self.assertEqual(first.cli("get", key.decode()).strip(),
                         f"MOVED {keyslot(key)} 127.0.0.1:{owner.port}")

    def subscriber(self, node, command, channel) -> AdminClient:
        client = AdminClient(port=node.port, timeout=10)
        self.addCleanup(client.close)
        self.assertEqual(client.call(command, channel),
                         [command.lower().encode(), channel, 1])
        return client

    def test_publish_reaches_every_node(self):
        channel = b"news"
        subscribers = [self.subscriber(n, "SUBSCRIBE", channel) for n in self.nodes]
        with AdminClient(port=self.nodes[1].port) as publisher:
            self.assertEqual(publisher.call("PUBLISH", channel, "hi all"), 1)
        for client in subscribers:
            self.assertEqual(client.read(), [b"message", channel, b"hi all"])

    def test_sharded_pubsub_routed_by_slot(self):
        channel = b"orders"
        owner = self.owner(channel)
        moved = f"MOVED {keyslot(channel)} 127.0.0.1:{owner.port}"
        for node in self.nodes:
            # The owner's replica serves shard channels too (as Redis).
            if self.master_of(node) is owner:
                continue
            with AdminClient(port=node.port) as client:
                for command in (("SSUBSCRIBE", channel), ("SPUBLISH", channel, "x")):
                    with self.assertRaises(ReplyError) as caught:
                        client.call(*command)
                    self.assertEqual(str(caught.exception), moved)
        subscriber = self.subscriber(owner, "SSUBSCRIBE", channel)
        with AdminClient(port=owner.port) as publisher:
            self.assertEqual(publisher.call("SPUBLISH", channel, "order 1"), 1)
        self.assertEqual(subscriber.read(), [b"smessage", channel, b"order 1"])
        # Nothing else reaches it: the redirected SPUBLISHes went nowhere.
        subscriber.sock.settimeout(0.3)
        self.assertRaises(socket.timeout, subscriber.read)
