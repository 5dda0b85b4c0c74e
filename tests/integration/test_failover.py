"""Failover for real: ``twistd rcluster`` processes on loopback, built by
``redis-cli --cluster create ... --cluster-replicas 1``, with replication
links between them.

- A master is SIGKILLed while a writer confirms each write with WAIT 1 0:
  a replica takes over within node-timeout + 2 s, ``redis-cli --cluster
  check`` is clean, every acknowledged write is readable, and the killed
  node comes back as a replica of the new master and syncs.
- CLUSTER FAILOVER, FORCE and TAKEOVER each swap the roles while a client
  writes; nothing acknowledged is lost in the default mode.
- Replica migration: with 3 masters and 4 replicas, killing the only
  replica of a master makes a replica of the two-replica master move.
"""
from __future__ import annotations

import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from twisted.trial.unittest import TestCase

from rcluster.cluster.keyslot import keyslot
from tests.integration.harness import NodeProcess, have
from tests.integration.test_cluster_clients import create, roles
from tests.integration.test_cluster_formation import wait_for

NODE_TIMEOUT = 1000
DIRECTIVES = [("cluster-node-timeout", str(NODE_TIMEOUT))]


def nodes_view(node) -> dict:
    """{name: (port, flags without myself, master name)} from CLUSTER NODES."""
    out = {}
    for line in node.cli("cluster", "nodes").splitlines():
        fields = line.split()
        port = int(fields[1].split(":")[1].split("@")[0])
        flags = {f for f in fields[2].split(",") if f != "myself"}
        out[fields[0]] = (port, flags, fields[3])
    return out


class Cluster:
    """masters + replicas nodes built by redis-cli, stopped at cleanup."""

    def __init__(self, test, count=6, replicas=1):
        if not have("redis-cli"):
            raise unittest.SkipTest("redis-cli not installed")
        self.nodes = [NodeProcess(cluster=True, directives=DIRECTIVES)
                      for _ in range(count)]
        for node in self.nodes:
            test.addCleanup(node.cleanup)
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda n: n.start(), self.nodes))
        create(self.nodes, replicas)
        self.by_port = {n.port: n for n in self.nodes}
        wait_for(self.settled, timeout=40, what="cluster ok, replicas synced")

    def settled(self) -> bool:
        for node in self.live():
            if "cluster_state:ok" not in node.cli("cluster", "info"):
                return False
            info = node.cli("info", "replication")
            if "role:slave" in info and "master_link_status:up" not in info:
                return False
        return True

    def live(self):
        return [n for n in self.nodes
                if n.proc is not None and n.proc.poll() is None]

    def role_of(self, node, viewer=None):
        """('master', None) or ('slave', master NodeProcess), as
        ``viewer`` (default: the node itself) sees it."""
        view = roles(viewer or node)
        flags, master_id, *_ = view[node.port]
        if flags.startswith("master"):
            return "master", None
        port = next(p for p, (_, _, name, _) in view.items()
                    if name == master_id)
        return "slave", self.by_port[port]

    def masters(self):
        return [n for n in self.live() if self.role_of(n)[0] == "master"]

    def replicas_of(self, master):
        return [n for n in self.live() if n is not master and
                self.role_of(n) == ("slave", master)]

    def key_for(self, master, prefix="k") -> bytes:
        """A hash tag served by ``master`` (keys {tag}:N share its slot)."""
        owned = set()
        for line in master.cli("cluster", "nodes").splitlines():
            fields = line.split()
            if "myself" in fields[2]:
                for part in fields[8:]:
                    if "-" in part and not part.startswith("["):
                        low, high = part.split("-")
                        owned.update(range(int(low), int(high) + 1))
                    elif part.isdigit():
                        owned.add(int(part))
        return next(b"%s%d" % (prefix.encode(), i) for i in range(100000)
                    if keyslot(b"%s%d" % (prefix.encode(), i)) in owned)

    def check(self, node) -> str:
        out = node.cli("--cluster", "check", node.address)
        return out


class Writer(threading.Thread):
    """SET {tag}:N then WAIT 1 0 (with a short timeout) against one node,
    until stopped or the node goes away; ``acked`` holds the keys whose
    write a replica acknowledged."""

    def __init__(self, node, tag: bytes):
        super().__init__(daemon=True)
        import redis
        self.client = redis.Redis(host="127.0.0.1", port=node.port,
                                  socket_timeout=2)
        self.tag = tag
        self.acked = []
        self.errors = []
        self.stopping = threading.Event()

    def run(self):
        i = 0
        while not self.stopping.is_set():
            key = b"{%s}:%d" % (self.tag, i)
            try:
                self.client.set(key, b"v%d" % i)
                if self.client.execute_command("WAIT", 1, 0) >= 1:
                    self.acked.append(key)
            except Exception as err:   # the master died / moved
                self.errors.append(err)
                return
            i += 1

    def stop(self):
        self.stopping.set()
        self.join(10)
        self.client.close()


class AutomaticFailoverTests(TestCase):
    def test_kill_a_master_no_acknowledged_write_lost(self):
        cluster = Cluster(self)
        victim = cluster.masters()[0]
        replica = cluster.replicas_of(victim)[0]
        tag = cluster.key_for(victim)
        writer = Writer(victim, tag)
        writer.start()
        wait_for(lambda: len(writer.acked) >= 200, timeout=20,
                 what="200 acknowledged writes")
        victim.kill()
        killed_at = time.monotonic()
        writer.stop()
        observer = next(n for n in cluster.live() if n is not replica)
        wait_for(lambda: cluster.role_of(replica)[0] == "master",
                 timeout=NODE_TIMEOUT / 1000 + 2,
                 what="the replica promoted within node-timeout + 2 s")
        promoted_after = time.monotonic() - killed_at
        wait_for(lambda: cluster.role_of(replica, observer)[0] == "master",
                 timeout=10, what="the others to see the new master")
        wait_for(lambda: "[ERR]" not in cluster.check(observer), timeout=10,
                 what="a clean redis-cli --cluster check")
        check = cluster.check(observer)
        self.assertIn("[OK] All 16384 slots covered.", check)
        self.assertIn("[OK] All nodes agree about slots configuration.", check)
        client = replica.client()
        self.addCleanup(client.close)
        values = client.mget(writer.acked)
        lost = [k for k, v in zip(writer.acked, values) if v is None]
        self.assertEqual(lost, [], f"promoted after {promoted_after:.2f} s")
        # The old master restarts from its nodes.conf: a replica of the
        # new master, synced.
        victim.start()
        wait_for(lambda: cluster.role_of(victim) == ("slave", replica),
                 timeout=20, what="the old master to follow the new one")
        wait_for(lambda: "master_link_status:up" in
                 victim.cli("info", "replication"), timeout=20,
                 what="the old master to sync")
        old = victim.client()
        self.addCleanup(old.close)
        old.execute_command("READONLY")
        wait_for(lambda: old.dbsize() == client.dbsize(), timeout=10,
                 what="the same keys on the rejoined node")


class ManualFailoverTests(TestCase):
    def test_failover_force_takeover_swap_roles(self):
        cluster = Cluster(self)
        master = cluster.masters()[0]
        replica = cluster.replicas_of(master)[0]
        tag = cluster.key_for(master)
        from redis.cluster import ClusterNode, RedisCluster
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1",
                                                     master.port)],
                          socket_timeout=10)
        self.addCleanup(rc.close)
        acked = []
        stop = threading.Event()

        def write():
            i = 0
            while not stop.is_set():
                key = b"{%s}:%d" % (tag, i)
                try:
                    rc.set(key, b"x")
                    acked.append(key)
                except Exception:
                    time.sleep(0.05)
                i += 1
        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        self.addCleanup(stop.set)
        wait_for(lambda: len(acked) > 100, timeout=20, what="writes")
        for mode in ((), ("force",), ("takeover",)):
            old_master, new_master = master, replica
            self.assertEqual(
                new_master.cli("cluster", "failover", *mode).strip(), "OK")
            wait_for(lambda: cluster.role_of(new_master)[0] == "master" and
                     cluster.role_of(old_master) == ("slave", new_master),
                     timeout=15, what=f"roles swapped by FAILOVER {mode}")
            count = len(acked)
            wait_for(lambda: len(acked) > count + 50, timeout=20,
                     what="writes going on after the switch")
            master, replica = new_master, old_master
            if not mode:
                # Default mode: every write acknowledged so far is there.
                client = new_master.client()
                values = client.mget(acked[:count])
                client.close()
                self.assertEqual([k for k, v in zip(acked, values)
                                  if v is None], [])
        stop.set()
        thread.join(10)
        wait_for(lambda: cluster.settled(), timeout=20, what="settled")


class ReplicaMigrationTests(TestCase):
    def test_orphaned_master_gets_a_replica(self):
        cluster = Cluster(self, count=6, replicas=1)
        # A seventh node: a second replica for the first master.
        rich = cluster.masters()[0]
        extra = NodeProcess(cluster=True, directives=DIRECTIVES)
        self.addCleanup(extra.cleanup)
        extra.start()
        cluster.nodes.append(extra)
        cluster.by_port[extra.port] = extra
        rich_id = rich.cli("cluster", "myid").strip()
        out = extra.cli("--cluster", "add-node", extra.address, rich.address,
                        "--cluster-slave", "--cluster-master-id", rich_id)
        self.assertIn("[OK] New node added correctly.", out)
        wait_for(lambda: len(cluster.replicas_of(rich)) == 2 and
                 cluster.settled(), timeout=30, what="a second replica")
        poor = next(m for m in cluster.masters() if m is not rich)
        (only,) = cluster.replicas_of(poor)
        only.kill()
        candidates = cluster.replicas_of(rich)
        wait_for(lambda: any(cluster.role_of(r) == ("slave", poor)
                             for r in candidates),
                 timeout=30, what="a replica to migrate to the orphan")
        mover = next(r for r in candidates
                     if cluster.role_of(r) == ("slave", poor))
        names = {r: r.cli("cluster", "myid").strip() for r in candidates}
        self.assertEqual(names[mover], min(names.values()))
        self.assertEqual(len(cluster.replicas_of(rich)), 1)
