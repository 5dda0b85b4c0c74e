"""Replication between real rcluster processes (standalone): full sync of
every type, the stream of every type, partial resynchronization after a
link break, WAIT, read-only replicas, DEBUG DIGEST on both sides, disk
and diskless transfers, min-replicas-to-write, and PING latency during a
big full sync (logged, not asserted)."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time

from twisted.trial.unittest import TestCase

from tests.integration.harness import start_node, wait_for

DEBUG = [("enable-debug-command", "yes")]
FAST_SYNC = [("repl-diskless-sync-delay", "0")] + DEBUG


def link_up(replica):
    info = replica.client().info("replication")
    return info.get("master_link_status") == "up" and \
        not info.get("master_sync_in_progress")


def wait_synced(master, replica, timeout=30.0):
    """The replica is connected and has processed the master's offset."""
    mc, rc = master.client(), replica.client()

    def caught_up():
        if not link_up(replica):
            return False
        return rc.info("replication")["master_repl_offset"] >= \
            mc.info("replication")["master_repl_offset"]
    wait_for(caught_up, timeout, "the replica to catch up")


def digest(node):
    return node.client().execute_command("DEBUG", "DIGEST")


def fill_every_type(r, prefix=b""):
    """A dataset with every type and encoding, and keys with expiries."""
    p = prefix
    r.set(p + b"str", b"hello")
    r.set(p + b"int", 12345)
    r.set(p + b"big", b"x" * 100_000)
    r.set(p + b"ttl", b"v", ex=1000)
    r.rpush(p + b"list", *[b"e%d" % i for i in range(20)])
    r.rpush(p + b"biglist", *[b"e%d" % i for i in range(2000)])
    r.sadd(p + b"intset", *range(10))
    r.sadd(p + b"set", *[b"m%d" % i for i in range(300)])
    r.zadd(p + b"zset", {b"a": 1.5, b"b": -2, b"c": 3e10})
    r.zadd(p + b"bigzset", {b"m%d" % i: i / 3 for i in range(300)})
    r.hset(p + b"hash", mapping={b"f1": b"v1", b"f2": b"2"})
    r.hset(p + b"bighash", mapping={b"f%d" % i: b"v" * (i % 100)
                                    for i in range(600)})
    r.pexpire(p + b"bighash", 10_000_000)
    r.xadd(p + b"stream", {b"a": b"1", b"b": b"2"}, id=b"1-1")
    r.xadd(p + b"stream", {b"a": b"3"}, id=b"2-0")
    r.xgroup_create(p + b"stream", b"g", id=b"0")
    r.xreadgroup(b"g", b"alice", {p + b"stream": b">"}, count=1)
    r.pfadd(p + b"hll", *[b"e%d" % i for i in range(100)])
    r.geoadd(p + b"geo", (13.361389, 38.115556, b"Palermo"))
    r.setbit(p + b"bits", 1000, 1)


def write_every_type(r, prefix=b"s:"):
    """The stream: commands of every family after the sync."""
    p = prefix
    r.set(p + b"str", b"a")
    r.append(p + b"str", b"bc")
    r.incr(p + b"n")
    r.incrbyfloat(p + b"f", 1.5)
    r.set(p + b"exp", b"v", px=500_000)
    r.lpush(p + b"list", b"a", b"b", b"c")
    r.rpop(p + b"list")
    r.lmove(p + b"list", p + b"list2", "LEFT", "RIGHT")
    r.sadd(p + b"set", b"x", b"y", b"z")
    r.spop(p + b"set")
    r.srem(p + b"set", b"x")
    r.zadd(p + b"zset", {b"a": 1, b"b": 2})
    r.zincrby(p + b"zset", 2.5, b"a")
    r.zpopmin(p + b"zset")
    r.hset(p + b"hash", mapping={b"f": b"v", b"g": b"w"})
    r.hdel(p + b"hash", b"g")
    r.hincrby(p + b"hash", b"n", 3)
    r.xadd(p + b"stream", {b"k": b"v"})
    r.xgroup_create(p + b"stream", b"grp", id=b"0")
    r.xreadgroup(b"grp", b"bob", {p + b"stream": b">"})
    r.pfadd(p + b"hll", b"a", b"b")
    r.geoadd(p + b"geo", (2.35, 48.85, b"Paris"))
    r.setbit(p + b"bits", 7, 1)
    pipe = r.pipeline(transaction=True)
    pipe.set(p + b"tx1", 1)
    pipe.incr(p + b"tx1")
    pipe.execute()
    r.eval("redis.call('set', KEYS[1], ARGV[1])", 1, p + b"lua", b"v")
    r.expire(p + b"hash", 100_000)
    r.delete(p + b"list2")
    r.copy(p + b"str", p + b"str2")
    r.rename(p + b"str2", p + b"str3")


def ping_latency(node, stop, samples):
    """PING the node in a loop until stop is set; record latencies."""
    sock = socket.create_connection(("127.0.0.1", node.port), 5)
    try:
        while not stop.is_set():
            start = time.perf_counter()
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = sock.recv(64)
                if not chunk:
                    return
                data += chunk
            samples.append(time.perf_counter() - start)
            time.sleep(0.01)
    finally:
        sock.close()


class ReplicationTest(TestCase):
    timeout = 120

    def pair(self, master_directives=(), replica_directives=()):
        master = start_node(self, directives=FAST_SYNC +
                            list(master_directives))
        replica = start_node(self, directives=DEBUG +
                             list(replica_directives))
        return master, replica

    def test_full_sync_stream_digest_wait_readonly(self):
        master, replica = self.pair()
        mc, rc = master.client(), replica.client()
        fill_every_type(mc)
        self.assertEqual(rc.replicaof("127.0.0.1", master.port), b"OK")
        wait_synced(master, replica)
        self.assertEqual(rc.dbsize(), mc.dbsize())
        self.assertEqual(digest(replica), digest(master))
        self.assertEqual(rc.ttl(b"ttl") > 0, True)
        # The stream follows, every type.
        write_every_type(mc)
        wait_synced(master, replica)
        self.assertEqual(digest(replica), digest(master))
        self.assertEqual(rc.get(b"s:lua"), b"v")
        # WAIT counts the replica once it acknowledged.
        mc.set(b"w", b"1")
        self.assertEqual(mc.execute_command("WAIT", 1, 0), 1)
        # Read-only replica.
        with self.assertRaises(Exception) as ctx:
            rc.set(b"x", b"1")
        # redis-py maps the READONLY code to ReadOnlyError.
        self.assertEqual(type(ctx.exception).__name__, "ReadOnlyError")
        self.assertEqual(str(ctx.exception),
                         "You can't write against a read only replica.")
        # ROLE on both sides.
        role = mc.execute_command("ROLE")
        self.assertEqual(role[0], b"master")
        self.assertEqual(len(role[2]), 1)
        rrole = rc.execute_command("ROLE")
        self.assertEqual(rrole[:4], [b"slave", b"127.0.0.1", master.port,
                                     b"connected"])
        info = mc.info("replication")
        self.assertEqual(info["connected_slaves"], 1)
        self.assertEqual(info["slave0"]["state"], "online")
        rinfo = rc.info("replication")
        self.assertEqual(rinfo["role"], "slave")
        self.assertEqual(rinfo["master_replid"], info["master_replid"])
        # Promotion keeps the data.
        self.assertEqual(rc.replicaof("no", "one"), b"OK")
        self.assertEqual(rc.info("replication")["role"], "master")
        self.assertEqual(rc.info("replication")["master_replid2"],
                         info["master_replid"])
        rc.set(b"x", b"1")
        self.assertEqual(rc.get(b"x"), b"1")

    def test_partial_resync_after_link_break(self):
        master, replica = self.pair()
        mc, rc = master.client(), replica.client()
        fill_every_type(mc)
        rc.replicaof("127.0.0.1", master.port)
        wait_synced(master, replica)
        before = mc.info("stats")["sync_partial_ok"]
        full_before = mc.info("stats")["sync_full"]
        # Break the link; writes go on for 2 s meanwhile.
        mc.execute_command("CLIENT", "KILL", "TYPE", "replica")
        deadline = time.monotonic() + 2
        i = 0
        while time.monotonic() < deadline:
            mc.set(b"during%d" % i, i)
            i += 1
            time.sleep(0.01)
        write_every_type(mc, b"p:")
        wait_for(lambda: mc.info("stats")["sync_partial_ok"] > before,
                 20, "a partial resync")
        wait_synced(master, replica)
        self.assertEqual(mc.info("stats")["sync_full"], full_before)
        self.assertEqual(digest(replica), digest(master))
        self.assertIn("Partial resynchronization request from",
                      master.output())

    def test_disk_based_sync_and_sub_replica(self):
        master, replica = self.pair([("repl-diskless-sync", "no")],
                                    [("repl-diskless-sync-delay", "0")])
        sub = start_node(self, directives=DEBUG)
        mc, rc, sc = master.client(), replica.client(), sub.client()
        fill_every_type(mc)
        rc.replicaof("127.0.0.1", master.port)
        wait_synced(master, replica)
        sc.replicaof("127.0.0.1", replica.port)
        wait_for(lambda: link_up(sub), 30, "the sub-replica link")
        write_every_type(mc)
        wait_synced(master, replica)
        wait_for(lambda: sc.info("replication")["master_repl_offset"] ==
                 mc.info("replication")["master_repl_offset"], 20,
                 "the sub-replica offset")
        self.assertEqual(digest(sub), digest(master))
        self.assertEqual(digest(replica), digest(master))

    def test_replica_aof_holds_the_synced_dataset(self):
        master, replica = self.pair((), [("appendonly", "yes")])
        mc, rc = master.client(), replica.client()
        fill_every_type(mc)
        rc.replicaof("127.0.0.1", master.port)
        wait_synced(master, replica)
        write_every_type(mc)
        wait_synced(master, replica)
        expected = digest(master)
        wait_for(lambda: rc.info("persistence")["aof_rewrite_in_progress"]
                 == 0 and rc.info("persistence")["aof_enabled"] == 1, 20,
                 "the AOF rewrite")
        rc.replicaof("no", "one")
        replica.stop()
        replica.start()
        self.assertEqual(digest(replica), expected)

    def test_min_replicas_to_write(self):
        master, replica = self.pair([("min-replicas-to-write", "1"),
                                     ("min-replicas-max-lag", "10")])
        mc, rc = master.client(), replica.client()
        with self.assertRaises(Exception) as ctx:
            mc.set(b"k", b"v")
        self.assertIn("NOREPLICAS Not enough good replicas to write.",
                      str(ctx.exception))
        self.assertEqual(mc.get(b"k"), None)
        rc.replicaof("127.0.0.1", master.port)
        wait_synced(master, replica)
        wait_for(lambda: _set_ok(mc), 10, "writes accepted")
        self.assertEqual(mc.info("replication")["min_slaves_good_slaves"],
                         1)

    def test_ping_during_big_full_sync(self):
        master, replica = self.pair()
        mc, rc = master.client(), replica.client()
        mc.execute_command("DEBUG", "POPULATE", 200_000, "key", 16)
        stop = threading.Event()
        m_samples, r_samples = [], []
        threads = [threading.Thread(target=ping_latency,
                                    args=(node, stop, samples))
                   for node, samples in ((master, m_samples),
                                         (replica, r_samples))]
        for t in threads:
            t.start()
        try:
            started = time.monotonic()
            rc.replicaof("127.0.0.1", master.port)
            wait_synced(master, replica, timeout=100)
            took = time.monotonic() - started
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertEqual(rc.dbsize(), 200_000)
        print("\nfull sync of 200k keys: %.2f s; PING max latency master "
              "%.1f ms (%d samples), replica %.1f ms (%d samples)" % (
                  took, max(m_samples) * 1000, len(m_samples),
                  max(r_samples or [0]) * 1000, len(r_samples)))
        self.assertTrue(m_samples)


def _set_ok(client):
    try:
        return client.set(b"k", b"v")
    except Exception:
        return False


class PromotionTest(TestCase):
    timeout = 120

    def test_siblings_and_old_master_continue_with_the_promoted_replica(self):
        """Redis's PSYNC2: after REPLICAOF NO ONE on one replica, its
        sibling and the old master follow it with partial resyncs (the
        promoted node keeps the old history as replid2)."""
        # No PING in the stream while roles change (a PING the old master
        # sends after the promotion would make its history diverge).
        quiet = FAST_SYNC + [("repl-ping-replica-period", "3600")]
        master = start_node(self, directives=quiet)
        r1 = start_node(self, directives=quiet)
        r2 = start_node(self, directives=quiet)
        mc, c1, c2 = master.client(), r1.client(), r2.client()
        fill_every_type(mc)
        for c in (c1, c2):
            c.replicaof("127.0.0.1", master.port)
        wait_synced(master, r1)
        wait_synced(master, r2)
        write_every_type(mc)
        wait_synced(master, r1)
        wait_synced(master, r2)
        old_id = mc.info("replication")["master_replid"]
        # The master stops taking writes; r1 takes over.
        c1.replicaof("no", "one")
        info = c1.info("replication")
        self.assertEqual(info["master_replid2"], old_id)
        c2.replicaof("127.0.0.1", r1.port)
        mc.replicaof("127.0.0.1", r1.port)
        wait_synced(r1, r2)
        wait_synced(r1, master)
        stats = c1.info("stats")
        self.assertEqual(stats["sync_full"], 0)
        self.assertEqual(stats["sync_partial_ok"], 2)
        write_every_type(c1, b"new:")
        wait_synced(r1, r2)
        wait_synced(r1, master)
        self.assertEqual(digest(r2), digest(r1))
        self.assertEqual(digest(master), digest(r1))


def failover_scenario(test, master_kind, replica_kind):
    """FAILOVER on the master: roles swap, nothing acknowledged is lost,
    the old master follows the new one with a partial resync."""
    master = start_node(test, binary=master_kind, directives=FAST_SYNC)
    replica = start_node(test, binary=replica_kind, directives=FAST_SYNC)
    mc, rc = master.client(), replica.client()
    fill_every_type(mc)
    rc.replicaof("127.0.0.1", master.port)
    wait_synced(master, replica)
    write_every_type(mc)
    test.assertEqual(mc.execute_command("FAILOVER", "TO", "127.0.0.1",
                                        replica.port, "TIMEOUT", 10000),
                     b"OK")
    wait_for(lambda: rc.info("replication")["role"] == "master" and
             link_up(master), 30, "the roles to swap")
    test.assertEqual(mc.info("replication")["master_failover_state"],
                     "no-failover")
    test.assertEqual(rc.info("stats")["sync_partial_ok"], 1)
    test.assertEqual(rc.info("stats")["sync_full"], 0)
    rc.set(b"after-failover", b"1")
    wait_synced(replica, master)
    test.assertEqual(mc.get(b"after-failover"), b"1")
    test.assertEqual(digest(master), digest(replica))


class FailoverCommandTest(TestCase):
    timeout = 120

    def test_failover_swaps_roles(self):
        failover_scenario(self, "rcluster", "rcluster")

    def test_failover_errors(self):
        master = start_node(self, directives=FAST_SYNC)
        mc = master.client()

        def error(*args):
            try:
                mc.execute_command("FAILOVER", *args)
            except Exception as err:    # noqa: BLE001
                return str(err)
            return None
        self.assertEqual(error(), "FAILOVER requires connected replicas.")
        self.assertEqual(error("ABORT"), "No failover in progress.")
        self.assertEqual(error("TIMEOUT", 0),
                         "FAILOVER timeout must be greater than 0")
        self.assertEqual(error("bogus"), "syntax error")
        replica = start_node(self, directives=FAST_SYNC)
        replica.client().replicaof("127.0.0.1", master.port)
        wait_synced(master, replica)
        self.assertEqual(error("TO", "127.0.0.1", 1, "FORCE"),
                         "FAILOVER with force option requires both a "
                         "timeout and target HOST and IP.")
        self.assertEqual(error("TO", "127.0.0.1", 1),
                         "FAILOVER target HOST and PORT is not a replica.")
        # The replica is frozen (SIGSTOP) and a write follows: it can't
        # catch up, so the failover waits; ABORT and a timeout end it and
        # writes resume.
        os.kill(replica.proc.pid, signal.SIGSTOP)
        self.addCleanup(_resume, replica)
        mc.set(b"k", b"1")
        self.assertEqual(mc.execute_command("FAILOVER", "TIMEOUT", 100000),
                         b"OK")
        self.assertEqual(error(), "FAILOVER already in progress.")
        self.assertEqual(mc.info("replication")["master_failover_state"],
                         "waiting-for-sync")
        self.assertEqual(mc.execute_command("FAILOVER", "ABORT"), b"OK")
        self.assertEqual(mc.set(b"k", b"2"), True)
        self.assertEqual(mc.execute_command("FAILOVER", "TIMEOUT", 300),
                         b"OK")
        wait_for(lambda: mc.info("replication")["master_failover_state"] ==
                 "no-failover", 10, "the failover to time out")
        self.assertEqual(mc.set(b"k", b"3"), True)
        self.assertEqual(mc.info("replication")["role"], "master")


def _resume(node):
    if node.proc is not None and node.proc.poll() is None:
        os.kill(node.proc.pid, signal.SIGCONT)
