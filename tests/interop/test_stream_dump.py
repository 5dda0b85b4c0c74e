"""Streams between Debian's redis-server 7.0 and rcluster: DUMP payloads
(RDB_TYPE_STREAM_LISTPACKS_2, with consumer groups, PELs, consumers,
tombstones, several listpack nodes, empty streams) restore both ways with
equal contents - XINFO STREAM FULL, delivery and seen times included -
redis-server checking rcluster's payloads with sanitize-dump-payload yes
(deep listpack validation); and a stream in an RDB file redis-server
SAVEs decodes with RdbReader to what redis-server reports."""
from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from rcluster.persistence.rdb import Entry, RdbReader, dump_payload
from tests.integration.harness import NodeProcess, have


def populate(r):
    """The same streams on either server; returns their names."""
    for i in range(1, 400):
        fields = {"f": i} if i % 4 else {"g": "x" * (i % 80), "h": -i}
        r.xadd("big", fields, id="%d-%d" % (i // 3, i % 3))
    r.xdel("big", "10-0", "10-1", "100-2", "133-0")
    r.xtrim("big", maxlen=350)
    r.xgroup_create("big", "readers", id="0")
    r.xgroup_create("big", "late", id="$")
    r.execute_command("XGROUP", "CREATE", "big", "counted", "50-0",
                      "ENTRIESREAD", 10)
    r.xreadgroup("readers", "alice", {"big": ">"}, count=20)
    r.xreadgroup("readers", "bob", {"big": ">"}, count=5)
    r.xreadgroup("readers", "carol", {"big": ">"}, count=3, noack=True)
    r.xgroup_createconsumer("big", "readers", "idle")
    r.xack("big", "readers", "17-1", "17-2")
    r.xclaim("big", "readers", "dave", 0, ["18-0"], retrycount=4)
    r.xdel("big", "18-1")                  # a pending entry deleted
    r.xadd("small", {"a": "1"}, id="1-1")
    r.xadd("small", {"a": "2", "b": "3"}, id="1-2")
    r.xgroup_create("empty", "g", id="$", mkstream=True)
    r.xadd("drained", {"x": "y"}, id="5-5")
    r.xdel("drained", "5-5")
    r.execute_command("XSETID", "drained", "7-0", "ENTRIESADDED", 9,
                      "MAXDELETEDID", "6-0")
    return ["big", "drained", "empty", "small"]


def contents(r, key):
    return r.execute_command("XINFO", "STREAM", key, "FULL", "COUNT", 0,
                             NEVER_DECODE=True)


def _entries(reply):
    """The entries of a one-stream XREAD[GROUP] reply."""
    if isinstance(reply, dict):
        return list(reply.values())[0]
    return reply[0][1]


class StreamDumpInteropTests(TestCase):
    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        self.redis = NodeProcess(binary="redis-server",
                                 directives=[("sanitize-dump-payload",
                                              "yes")])
        self.rcluster = NodeProcess(binary="rcluster")
        for node in (self.redis, self.rcluster):
            self.addCleanup(node.cleanup)
            node.start()
        self.r = self.redis.client()
        self.c = self.rcluster.client()
        for client in (self.r, self.c):
            client.response_callbacks.clear()
            self.addCleanup(client.close)

    def test_payloads_both_ways(self):
        keys = populate(self.r)
        self.assertEqual(populate(self.c), keys)
        for key in keys:
            theirs = self.r.dump(key)
            ours = self.c.dump(key)
            # redis-server -> rcluster: the restored copy is what redis has.
            self.assertEqual(self.c.restore(key + ":from-redis", 0, theirs),
                             b"OK")
            self.assertEqual(contents(self.c, key + ":from-redis"),
                             contents(self.r, key), key)
            # rcluster -> redis-server (deep-sanitized there).
            self.assertEqual(self.r.restore(key + ":from-rcluster", 0, ours),
                             b"OK")
            self.assertEqual(contents(self.r, key + ":from-rcluster"),
                             contents(self.c, key), key)
            self.assertEqual(self.r.execute_command(
                "OBJECT", "ENCODING", key + ":from-rcluster"), b"stream")
            # ... and back: rcluster's payload of the copy restores as well.
            again = self.r.dump(key + ":from-rcluster")
            self.assertEqual(self.c.restore(key + ":again", 0, again), b"OK")
            self.assertEqual(contents(self.c, key + ":again"),
                             contents(self.c, key), key)
        # The copies keep working as streams with their groups.
        served = [_entries(client.execute_command(
            "XREADGROUP", "GROUP", "readers", "erin", "COUNT", 2, "STREAMS",
            key, ">")) for client, key in ((self.r, "big:from-rcluster"),
                                           (self.c, "big:from-redis"))]
        self.assertEqual(served[0], served[1])
        self.assertEqual(len(served[0]), 2)

    def test_redis_rdb_file_decodes(self):
        keys = populate(self.r)
        self.r.save()
        reader = RdbReader()
        records = []
        with open(os.path.join(self.redis.workdir, "dump.rdb"), "rb") as fh:
            while True:
                chunk = fh.read(1000)
                if not chunk:
                    break
                records += reader.feed(chunk)
        reader.finish()
        entries = {r.key.decode(): r for r in records if isinstance(r, Entry)}
        self.assertEqual(sorted(entries), keys)
        for key, entry in entries.items():
            self.assertEqual(self.c.restore(key + ":file", 0,
                                            dump_payload(entry.value)),
                             b"OK")
            self.assertEqual(contents(self.c, key + ":file"),
                             contents(self.r, key), key)
