"""Multiple databases on real nodes.

- SELECT / MOVE / SWAPDB / COPY ... DB / FLUSHDB behave as on redis-server
  7.0.15 in a standalone node (the dual pattern: the same checks run
  against both binaries);
- an RDB with keys in several databases round-trips: rcluster's file loads
  in redis-server and redis-server's in rcluster, each key in its db;
- the AOF carries SELECT: a node killed and restarted (and after an AOF
  rewrite) has every key in its db;
- a replica gets every db through the full sync and the stream;
- a cluster with ``cluster-databases 4``: a key in db 3 survives an atomic
  move (CLUSTER MIGRATESLOTS) of its slot.
"""
from __future__ import annotations

import time

from twisted.trial.unittest import TestCase

from tests.integration.dual import DualServerScenarios
from tests.integration.harness import NodeProcess, have, start_node


def in_db(node, db):
    """A redis-py client bound to one db (SELECT on its connections)."""
    return node.client(db=db)


def dataset(node, dbs=range(16)) -> dict:
    """{db: {key: (type, dumpable summary, has ttl)}} of a node."""
    out = {}
    for db in dbs:
        r = in_db(node, db)
        try:
            keys = sorted(r.keys("*"))
            if not keys:
                continue
            view = {}
            for key in keys:
                kind = r.type(key).decode()
                value = {"string": lambda k: r.get(k),
                         "list": lambda k: r.lrange(k, 0, -1),
                         "hash": lambda k: sorted(r.hgetall(k).items()),
                         "set": lambda k: sorted(r.smembers(k)),
                         "zset": lambda k: r.zrange(k, 0, -1,
                                                    withscores=True),
                         }[kind](key)
                view[key] = (kind, value, r.pttl(key) > 0)
            out[db] = view
        finally:
            r.close()
    return out


def fill(node):
    """Keys of several types in dbs 0, 3 and 15 (same names in several)."""
    for db in (0, 3, 15):
        r = in_db(node, db)
        try:
            r.set("name", f"db{db}")
            r.rpush(f"list:{db}", "a", "b", db)
            r.hset("h", mapping={"db": db, "f": "v"})
            r.sadd("s", db, "x")
            r.zadd("z", {"m": db})
            r.set(f"ttl:{db}", "v", ex=1000)
        finally:
            r.close()


class MultiDbScenarios(DualServerScenarios):
    def setUp(self):
        super().setUp()
        self.c0 = in_db(self.node, 0)
        self.c1 = in_db(self.node, 1)
        self.addCleanup(self.c0.close)
        self.addCleanup(self.c1.close)

    def test_select_move_swapdb_copy(self):
        import redis
        c0, c1 = self.c0, self.c1
        c0.flushall()
        c0.set("k", "zero")
        c1.set("k", "one")
        self.assertEqual((c0.get("k"), c1.get("k")), (b"zero", b"one"))
        self.assertEqual(c0.dbsize(), 1)
        # MOVE: refused onto an existing key, done onto a missing one.
        self.assertEqual(c0.move("k", 1), False)
        c0.set("m", "moving", px=100_000)
        self.assertEqual(c0.move("m", 1), True)
        self.assertIsNone(c0.get("m"))
        self.assertEqual(c1.get("m"), b"moving")
        self.assertGreater(c1.pttl("m"), 0)
        for args, error in ((("MOVE", "k", "0"),
                             "source and destination objects are the same"),
                            (("MOVE", "k", "16"), "DB index is out of range"),
                            (("MOVE", "k", "x"),
                             "value is not an integer or out of range"),
                            (("SELECT", "16"), "DB index is out of range"),
                            (("SWAPDB", "0", "16"),
                             "DB index is out of range"),
                            (("SWAPDB", "a", "1"), "invalid first DB index"),
                            (("COPY", "k", "k", "DB", "99"),
                             "DB index is out of range")):
            with self.assertRaises(redis.ResponseError) as caught:
                c0.execute_command(*args)
            self.assertEqual(str(caught.exception), error, args)
        # COPY ... DB
        c0.rpush("l", "a", "b")
        self.assertEqual(c0.copy("l", "l2", destination_db=1), True)
        self.assertEqual(c1.lrange("l2", 0, -1), [b"a", b"b"])
        self.assertEqual(c0.copy("l", "l2", destination_db=1), False)
        # SWAPDB: every connection sees the other data at once.
        self.assertEqual(c0.swapdb(0, 1), True)
        self.assertEqual((c0.get("k"), c1.get("k")), (b"one", b"zero"))
        self.assertEqual(c0.get("m"), b"moving")
        # FLUSHDB is per db; INFO keyspace lists each non-empty db.
        info = c0.info("keyspace")
        self.assertEqual(sorted(info), ["db0", "db1"])
        self.assertEqual((info["db0"]["keys"], info["db0"]["expires"]),
                         (3, 1))
        c1.flushdb()
        self.assertEqual(c1.dbsize(), 0)
        self.assertEqual(c0.dbsize(), 3)
        c1.set("again", 1)
        c0.flushall()
        self.assertEqual((c0.dbsize(), c1.dbsize()), (0, 0))

    def test_transaction_and_watch_across_dbs(self):
        c0, c1 = self.c0, self.c1
        c0.flushall()
        pipe = c0.pipeline(transaction=True)
        # (SELECT 0 at the end: the connection goes back to the pool.)
        pipe.set("a", 0).execute_command("SELECT", 2).set("a", 2) \
            .execute_command("SELECT", 0)
        self.assertEqual(pipe.execute(), [True, True, True, True])
        c2 = in_db(self.node, 2)
        self.addCleanup(c2.close)
        self.assertEqual((c0.get("a"), c2.get("a")), (b"0", b"2"))
        # A write to the same name in another db doesn't touch a WATCH.
        with c0.pipeline() as pipe:
            pipe.watch("a")
            c1.set("a", "other db")
            pipe.multi()
            pipe.set("a", "mine")
            self.assertEqual(pipe.execute(), [True])


class RedisMultiDb(MultiDbScenarios, TestCase):
    binary = "redis-server"


class RclusterMultiDb(MultiDbScenarios, TestCase):
    binary = "rcluster"


class PersistenceTests(TestCase):
    timeout = 240

    def test_rdb_round_trips_with_redis_server(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        node = start_node(self)
        fill(node)
        expected = dataset(node)
        self.assertEqual(sorted(expected), [0, 3, 15])
        node.cli("save")
        node.stop()
        # rcluster's file in redis-server.
        peer = NodeProcess(binary="redis-server", workdir=node.workdir,
                           directives=[("dbfilename", "dump.rdb")])
        self.addCleanup(peer.cleanup)
        peer.start()
        self.assertEqual(dataset(peer), expected)
        # redis-server's file (same data, re-saved) back in rcluster.
        peer.cli("save")
        peer.stop()
        node.start()
        self.assertEqual(dataset(node), expected)
        # BGSAVE with writes meanwhile, DEBUG RELOAD: the same dataset.
        node.cli("bgsave")
        time.sleep(0.5)
        node.cli("debug", "reload")
        self.assertEqual(dataset(node), expected)

    def test_aof_carries_select(self):
        node = start_node(self, directives=[("appendonly", "yes")])
        fill(node)
        r = in_db(node, 5)
        pipe = r.pipeline(transaction=True)
        pipe.set("t", 5).execute_command("SELECT", 6).set("t", 6)
        pipe.execute()
        r.close()
        in_db(node, 3).move("name", 4)
        expected = dataset(node)
        self.assertEqual(sorted(expected), [0, 3, 4, 5, 6, 15])
        node.kill()
        node.start()
        self.assertEqual(dataset(node), expected)
        node.cli("bgrewriteaof")
        deadline = time.monotonic() + 30
        while "aof_rewrite_in_progress:1" in node.cli("info", "persistence"):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        in_db(node, 7).set("after-rewrite", 7)
        expected = dataset(node)
        node.kill()
        node.start()
        self.assertEqual(dataset(node), expected)
        self.assertIn(7, expected)


class ReplicationTests(TestCase):
    timeout = 240

    def test_replica_gets_every_db(self):
        master = start_node(self)
        fill(master)                       # full sync carries these
        replica = start_node(self)
        replica.cli("replicaof", "127.0.0.1", str(master.port))
        in_db(master, 9).set("streamed", 9)        # the stream: SELECT 9
        in_db(master, 3).move("name", 10)
        deadline = time.monotonic() + 30
        expected = dataset(master)
        while dataset(replica) != expected:
            self.assertLess(time.monotonic(), deadline,
                            (dataset(replica), expected))
            time.sleep(0.2)
        self.assertIn(9, expected)
        self.assertIn(10, expected)


class ClusterDatabasesTests(TestCase):
    timeout = 300

    def test_key_in_db3_survives_a_slot_move(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")
        from tests.integration.test_cluster_clients import create
        from tests.integration.test_cluster_formation import wait_for
        from tests.integration.test_reshard import (checked, move_done,
                                                    node_id)
        nodes = []
        for _ in range(3):
            node = NodeProcess(cluster=True, directives=[
                ("cluster-node-timeout", "2000"),
                ("cluster-databases", "4")])
            self.addCleanup(node.cleanup)
            node.start()
            nodes.append(node)
        create(nodes, 0)
        wait_for(lambda: checked(nodes[0]) and all(
            "cluster_state:ok" in n.cli("cluster", "info") for n in nodes),
            30)
        slot = int(nodes[0].cli("cluster", "keyslot", "{t}"))
        owner = next(n for n in nodes
                     if int(n.cli("cluster", "countkeysinslot", str(slot)))
                     == 0 and _serves(n, slot))
        target = next(n for n in nodes if n is not owner)
        r3 = in_db(owner, 3)
        r0 = in_db(owner, 0)
        r3.set("{t}k", "in db 3")
        r3.rpush("{t}l", *range(100))
        r0.set("{t}k", "in db 0")
        self.assertEqual(owner.cli("-n", "3", "cluster", "countkeysinslot",
                                   str(slot)).strip(), "2")
        out = owner.cli("cluster", "migrateslots", "slotsrange", str(slot),
                        str(slot), "node", node_id(target))
        self.assertIn("OK", out)
        wait_for(lambda: move_done(owner) is not None, 60)
        self.assertEqual(move_done(owner)["state"], "success",
                         move_done(owner))
        wait_for(lambda: _serves(target, slot), 30)
        t3, t0 = in_db(target, 3), in_db(target, 0)
        self.assertEqual(t3.get("{t}k"), b"in db 3")
        self.assertEqual(t3.lrange("{t}l", 0, -1),
                         [b"%d" % i for i in range(100)])
        self.assertEqual(t0.get("{t}k"), b"in db 0")
        # The source let go of the slot in every db.
        wait_for(lambda: all(
            owner.cli("-n", str(db), "dbsize").strip() == "0"
            for db in range(4)), 30)
        for c in (r3, r0, t3, t0):
            c.close()


def _serves(node, slot) -> bool:
    for line in node.cli("cluster", "nodes").splitlines():
        fields = line.split()
        if "myself" not in fields[2]:
            continue
        for spec in fields[8:]:
            if spec.startswith("["):
                continue
            lo, _, hi = spec.partition("-")
            if int(lo) <= slot <= int(hi or lo):
                return True
    return False
