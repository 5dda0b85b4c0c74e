"""Live resharding of a 3-master rcluster cluster with redis-cli.

While a redis-py ``RedisCluster`` client INCRs a counter on each of
KEYS keys in a loop (remembering the last acknowledged value of each),
``redis-cli --cluster reshard --cluster-slots 4096`` (RESHARD_SLOTS, 1024 by
default, see below) and then
``redis-cli --cluster rebalance --cluster-use-empty-masters`` (onto a
fourth, empty master) move slots with SETSLOT + MIGRATE.  Afterwards every
key holds exactly its last acknowledged value, ``--cluster check`` is
clean and the client saw no error it did not retry.

A big hash migrating with MIGRATE: PINGs on both ends are timed (the
longest is logged, not asserted) and no node gets flagged PFAIL.  It has
BIG_HASH_FIELDS fields (200,000 by default; the issue's 1,000,000 with
RCLUSTER_BIG_HASH_FIELDS=1000000).
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from twisted.trial.unittest import TestCase

from rcluster.localcluster import masters_of
from tests.integration.harness import NodeProcess, have
from tests.integration.test_cluster_clients import create
from tests.integration.test_cluster_formation import wait_for

KEYS = 20_000
# The scenario moves 4096 slots; on a loaded 2-core machine
# redis-cli's slot-by-slot reshard takes minutes, so the default is
# smaller: RCLUSTER_RESHARD_SLOTS=4096 runs the full one.
RESHARD_SLOTS = int(os.environ.get("RCLUSTER_RESHARD_SLOTS", "1024"))
BIG_HASH_FIELDS = int(os.environ.get("RCLUSTER_BIG_HASH_FIELDS", "200000"))
DIRECTIVES = [("cluster-node-timeout", "2000")]


def cli_cluster(*args, timeout=900) -> str:
    result = subprocess.run(["redis-cli", "--cluster", *args],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"redis-cli --cluster {args[0]} failed:\n"
                             + result.stdout[-3000:] + result.stderr[-2000:])
    return result.stdout


def node_id(node) -> str:
    return node.cli("cluster", "myid").strip()


def checked(node) -> bool:
    out = subprocess.run(["redis-cli", "--cluster", "check", node.address],
                         capture_output=True, text=True, timeout=60).stdout
    return "[ERR]" not in out and "[WARNING]" not in out and \
        "All 16384 slots covered" in out


class Writer(threading.Thread):
    """INCR every key in turn, forever, until stopped."""

    def __init__(self, port):
        super().__init__(daemon=True)
        import redis
        from redis.cluster import RedisCluster
        self.rc = RedisCluster(host="127.0.0.1", port=port,
                               socket_timeout=10)
        self.errors = []
        self.last = {}
        self.stop_flag = False
        self.rounds = 0
        self.redis = redis

    def run(self):
        keys = [f"counter:{i}" for i in range(KEYS)]
        try:
            while not self.stop_flag:
                for key in keys:
                    if self.stop_flag:
                        break
                    try:
                        self.last[key] = self.rc.incr(key)
                    except Exception as err:   # noqa: BLE001 - recorded
                        self.errors.append(repr(err))
                        if len(self.errors) > 50:
                            return
                self.rounds += 1
        finally:
            self.rc.close()


class ReshardTests(TestCase):
    timeout = 1800

    def setUp(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")
        self.nodes = []
        for _ in range(4):
            node = NodeProcess(cluster=True, directives=DIRECTIVES)
            self.addCleanup(node.cleanup)
            node.start()
            self.nodes.append(node)
        create(self.nodes[:3], 0)
        wait_for(lambda: checked(self.nodes[0]) and all(
            "cluster_state:ok" in n.cli("cluster", "info")
            for n in self.nodes[:3]), 30)

    def test_live_reshard_and_rebalance(self):
        a, b, c, d = self.nodes
        # Fill every key once before moving anything.
        writer = Writer(a.port)
        writer.start()
        self.addCleanup(setattr, writer, "stop_flag", True)
        wait_for(lambda: writer.rounds >= 1 or writer.errors, 120)
        self.assertEqual(writer.errors, [])
        t0 = time.monotonic()
        cli_cluster("reshard", a.address, "--cluster-from", node_id(a),
                    "--cluster-to", node_id(b), "--cluster-slots",
                    str(RESHARD_SLOTS), "--cluster-yes")
        reshard_s = time.monotonic() - t0
        # The fourth node joins empty, then rebalance fills it.
        cli_cluster("add-node", d.address, a.address)
        wait_for(lambda: all(f":{d.port}@" in n.cli("cluster", "nodes")
                             for n in (a, b, c)) and checked(a) and
                 "cluster_state:ok" in d.cli("cluster", "info"), 30)
        t0 = time.monotonic()
        cli_cluster("rebalance", a.address, "--cluster-use-empty-masters")
        rebalance_s = time.monotonic() - t0
        writer.stop_flag = True
        writer.join(60)
        print(f"reshard {RESHARD_SLOTS} slots: {reshard_s:.1f}s, rebalance: "
              f"{rebalance_s:.1f}s, writer rounds: {writer.rounds}")
        self.assertEqual(writer.errors, [])
        wait_for(lambda: checked(a), 30)
        # Every key holds its last acknowledged value.
        from redis.cluster import RedisCluster
        rc = RedisCluster(host="127.0.0.1", port=a.port, socket_timeout=10)
        try:
            keys = sorted(writer.last)
            self.assertEqual(len(keys), KEYS)
            values = rc.mget_nonatomic(keys)
            wrong = [(k, v, writer.last[k]) for k, v in zip(keys, values)
                     if v is None or int(v) != writer.last[k]]
            self.assertEqual(wrong[:10], [])
        finally:
            rc.close()
        # The slots really moved: the new master serves about a quarter.
        counts = [int(n.cli("dbsize").strip()) for n in self.nodes]
        self.assertEqual(sum(counts), KEYS)
        self.assertTrue(all(n > 0 for n in counts), counts)

    def test_big_hash_migrate_keeps_both_ends_responsive(self):
        a = self.nodes[0]
        key = "bighash"
        owner_port = _owner(a, key)
        src = next(n for n in self.nodes if n.port == owner_port)
        dst = next(n for n in self.nodes[:3] if n is not src)
        r = src.client()
        fields = BIG_HASH_FIELDS
        for start in range(0, fields, 10_000):
            r.hset(key, mapping={b"field:%d" % i: b"value:%d" % i
                                 for i in range(start, start + 10_000)})
        slot = int(src.cli("cluster", "keyslot", key).strip())
        dst.cli("cluster", "setslot", str(slot), "importing", node_id(src))
        src.cli("cluster", "setslot", str(slot), "migrating", node_id(dst))
        worst = {src.port: 0.0, dst.port: 0.0}
        stop = threading.Event()

        def pinger(node):
            cl = node.client()
            while not stop.is_set():
                t = time.monotonic()
                cl.ping()
                worst[node.port] = max(worst[node.port], time.monotonic() - t)
                time.sleep(0.01)
            cl.close()

        threads = [threading.Thread(target=pinger, args=(n,), daemon=True)
                   for n in (src, dst)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        reply = r.execute_command("MIGRATE", "127.0.0.1", dst.port, key, 0,
                                  30000)
        took = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join(10)
        self.assertEqual(reply, b"OK")
        for n in (src, dst):
            n.cli("cluster", "setslot", str(slot), "node", node_id(dst))
        print(f"MIGRATE of a {fields}-field hash: {took:.2f}s; longest PING "
              f"source {worst[src.port] * 1000:.0f} ms, target "
              f"{worst[dst.port] * 1000:.0f} ms")
        self.assertEqual(dst.client().hlen(key), fields)
        self.assertEqual(r.execute_command("CLUSTER", "COUNTKEYSINSLOT",
                                           slot), 0)
        for n in self.nodes:
            self.assertNotIn("fail", n.cli("cluster", "nodes"))
        # And back, atomically: MIGRATESLOTS of that slot.
        wait_for(lambda: _owner(src, key) == dst.port, 30)
        worst = {src.port: 0.0, dst.port: 0.0}
        stop.clear()
        threads = [threading.Thread(target=pinger, args=(n,), daemon=True)
                   for n in (src, dst)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        dst.cli("cluster", "migrateslots", "slotsrange", str(slot), str(slot),
                "node", node_id(src))
        job = wait_for(lambda: move_done(dst), 120, "the move")
        took = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join(10)
        self.assertEqual(job["state"], "success", job)
        print(f"MIGRATESLOTS of a {fields}-field hash: {took:.2f}s; longest "
              f"PING source {worst[dst.port] * 1000:.0f} ms, target "
              f"{worst[src.port] * 1000:.0f} ms")
        self.assertEqual(r.hlen(key), fields)
        wait_for(lambda: dst.client().execute_command(
            "CLUSTER", "COUNTKEYSINSLOT", slot) == 0, 30)
        for n in self.nodes:
            self.assertNotIn("fail", n.cli("cluster", "nodes"))


def tool(*args) -> str:
    import sys
    result = subprocess.run([sys.executable, "-m", "rcluster.localcluster",
                             *args], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        raise AssertionError(f"rcluster-cluster {args[0]} failed:\n"
                             + result.stdout + result.stderr)
    return result.stdout


def errorstat(node, code) -> int:
    client = node.client()
    try:
        return client.info("errorstats").get(f"errorstat_{code}",
                                             {}).get("count", 0)
    finally:
        client.close()


def migrations(node) -> list:
    client = node.client()
    try:
        out = []
        for entry in client.execute_command("CLUSTER", "GETSLOTMIGRATIONS"):
            if isinstance(entry, list):
                entry = dict(zip(entry[::2], entry[1::2]))
            out.append({k.decode(): v.decode() if isinstance(v, bytes) else v
                        for k, v in entry.items()})
        return out
    finally:
        client.close()


def move_done(node):
    jobs = [j for j in migrations(node) if j["operation"] == "EXPORT"]
    if jobs and jobs[-1]["state"] in ("success", "failed", "canceled"):
        return jobs[-1]
    return None


class AtomicMoveTests(TestCase):
    """CLUSTER MIGRATESLOTS under a live writer: no ASK, no TRYAGAIN."""
    timeout = 600

    def setUp(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")
        self.nodes = []
        for _ in range(3):
            node = NodeProcess(cluster=True, directives=DIRECTIVES)
            self.addCleanup(node.cleanup)
            node.start()
            self.nodes.append(node)
        create(self.nodes, 0)
        wait_for(lambda: checked(self.nodes[0]) and all(
            "cluster_state:ok" in n.cli("cluster", "info")
            for n in self.nodes), 30)

    def verify(self, writer, a):
        from redis.cluster import RedisCluster
        rc = RedisCluster(host="127.0.0.1", port=a.port, socket_timeout=10)
        try:
            keys = sorted(writer.last)
            values = rc.mget_nonatomic(keys)
            wrong = [(k, v, writer.last[k]) for k, v in zip(keys, values)
                     if v is None or int(v) != writer.last[k]]
            self.assertEqual(wrong[:10], [])
        finally:
            rc.close()
        self.assertEqual(sum(int(n.cli("dbsize")) for n in self.nodes
                             if n.proc is not None), len(writer.last))

    def test_atomic_move_under_writes(self):
        a, b, c = self.nodes
        writer = Writer(a.port)
        writer.start()
        self.addCleanup(setattr, writer, "stop_flag", True)
        wait_for(lambda: writer.rounds >= 1 or writer.errors, 120)
        t0 = time.monotonic()
        out = tool("reshard", "--port", str(a.port), "--from", node_id(a),
                   "--to", node_id(b), "--slots", "4096")
        self.assertIn("(atomic)", out)
        job = move_done(a)
        took = time.monotonic() - t0
        self.assertEqual(job["state"], "success", job)
        t0 = time.monotonic()
        out = tool("rebalance", "--port", str(a.port))
        rebalance_s = time.monotonic() - t0
        rounds = writer.rounds
        wait_for(lambda: writer.rounds >= rounds + 1 or writer.errors, 120)
        writer.stop_flag = True
        writer.join(60)
        print(f"rcluster-cluster reshard (MIGRATESLOTS) of 4096 slots: "
              f"{took:.1f}s, {job}; rebalance {rebalance_s:.1f}s:\n{out}")
        self.assertEqual(writer.errors, [])
        counts = sorted(len(m[3]) for m in masters_of(a.port))
        self.assertEqual(counts, [5461, 5461, 5462])
        wait_for(lambda: checked(a), 30)
        self.verify(writer, a)
        for n in self.nodes:
            self.assertEqual(errorstat(n, "ASK"), 0)
            self.assertEqual(errorstat(n, "TRYAGAIN"), 0)
        self.assertEqual(int(a.cli("cluster", "countkeysinslot", "100")), 0)

    def test_target_killed_mid_move(self):
        a, b, c = self.nodes
        r = a.client()
        # Enough data in slots 0-4095 for the move to take a while.
        big = b"x" * 2000
        keys = []
        i = 0
        from rcluster.cluster.keyslot import keyslot
        while len(keys) < 20_000:
            key = b"big:%d" % i
            if keyslot(key) < 4096:
                keys.append(key)
            i += 1
        for start in range(0, len(keys), 5000):
            p = r.pipeline(transaction=False)
            for key in keys[start:start + 5000]:
                p.set(key, big)
            p.execute()
        # Freeze the target so that the move is surely half done when it
        # dies: connected, data sent, nothing acknowledged.
        b_id = node_id(b)
        os.kill(b.proc.pid, signal.SIGSTOP)
        a.cli("cluster", "migrateslots", "slotsrange", "0", "4095", "node",
              b_id)
        wait_for(lambda: migrations(a)[-1]["keys_sent"] > 0, 30)
        self.assertEqual(migrations(a)[-1]["state"], "snapshot")
        b.kill()
        job = wait_for(lambda: move_done(a), 60, "the move to fail")
        self.assertEqual(job["state"], "failed", job)
        # The slots stayed with the source, every key still there.
        self.assertEqual(_owner(a, keys[0].decode()), a.port)
        self.assertEqual(int(a.cli("dbsize")), len(keys))
        self.assertEqual(a.client().execute_command(
            "CLUSTER", "COUNTKEYSINSLOT", keyslot(keys[0])),
            sum(1 for k in keys if keyslot(k) == keyslot(keys[0])))
        # Restart the target: the move can be run again, and succeeds.
        b.start()
        wait_for(lambda: "cluster_state:ok" in a.cli("cluster", "info") and
                 "cluster_state:ok" in b.cli("cluster", "info"), 60)
        a.cli("cluster", "migrateslots", "slotsrange", "0", "4095", "node",
              b_id)
        job = wait_for(lambda: move_done(a), 120, "the second move")
        self.assertEqual(job["state"], "success", job)
        wait_for(lambda: checked(a), 30)
        self.assertEqual(int(b.cli("dbsize")), len(keys))
        # The source deletes the moved keys in slices after the cut-over.
        wait_for(lambda: int(a.cli("dbsize")) == 0, 30, "the source emptied")


def _owner(node, key) -> int:
    slot = int(node.cli("cluster", "keyslot", key).strip())
    for start, end, master, *_ in node.client().execute_command(
            "CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return int(master[1])
    raise AssertionError("slot not served")
