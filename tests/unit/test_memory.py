"""Memory accounting (rcluster/memory.py): the keyspace's running estimate,
INFO memory, MEMORY USAGE/STATS/DOCTOR/MALLOC-STATS/PURGE, OBJECT
IDLETIME/FREQ and RESTORE's IDLETIME/FREQ."""
from rcluster import memory
from tests.protocol.helpers import ServerTestCase


def recount(ks) -> int:
    """used, recomputed from scratch from the stored estimates."""
    total = 0
    for key, value in ks.items():
        total += memory.key_cost(key)
        if value.__class__ is bytes:
            total += memory.string_cost(value)
        else:
            total += ks.sizes[key]
    return total + memory.EXPIRE_COST * len(ks.expires)


class AccountingTests(ServerTestCase):
    def assertConsistent(self):
        self.assertEqual(self.ks.used, recount(self.ks))

    def test_strings(self):
        self.call("SET", "k", "v" * 100)
        self.assertEqual(self.ks.used, memory.key_cost(b"k") +
                         memory.string_cost(b"v" * 100))
        self.call("SET", "k", "short")
        self.call("APPEND", "k", "more")          # bytearray, in place
        self.call("SETRANGE", "k", 100, "x")
        self.assertConsistent()
        self.assertGreater(self.ks.sizes[b"k"], 100)
        self.call("DEL", "k")
        self.assertEqual(self.ks.used, 0)
        self.assertEqual(self.ks.sizes, {})

    def test_containers_grow_and_shrink(self):
        self.call("RPUSH", "l", "a")
        small = self.ks.used
        self.call("RPUSH", "l", *["x" * 50] * 1000)
        self.assertGreater(self.ks.used, small + 50 * 1000)
        self.call("HSET", "h", *["f", "v"] * 1)
        self.call("HSET", "h", *[x for i in range(200)
                                 for x in (f"f{i}", "v" * 20)])
        self.call("SADD", "s", *range(300))
        self.call("ZADD", "z", *[x for i in range(300) for x in (i, f"m{i}")])
        self.call("XADD", "x", "*", "f", "v")
        self.assertConsistent()
        self.call("LTRIM", "l", 0, 9)
        self.call("SPOP", "s", 250)
        self.assertConsistent()
        # Containers replacing containers and strings, and the reverse.
        self.call("SADD", "s2", *range(100))
        self.call("SUNIONSTORE", "s", "s", "s2")
        self.call("SINTERSTORE", "s2", "s", "s2")
        self.call("SET", "str", "v")
        self.call("SUNIONSTORE", "str", "s2")
        self.call("SET", "s2", "now a string")
        self.call("COPY", "h", "h2")
        self.call("COPY", "z", "h2", "REPLACE")
        self.call("RENAME", "z", "s2")
        self.assertConsistent()
        for key in ("l", "h", "s", "x", "s2", "str", "h2"):
            self.call("DEL", key)
        self.assertEqual(self.ks.used, 0)

    def test_ttls_renames_and_flush(self):
        self.call("SET", "a", "1", "EX", 100)
        self.call("SET", "b", "2")
        self.call("EXPIRE", "b", 100)
        self.call("PERSIST", "a")
        self.assertConsistent()
        self.call("RENAME", "b", "c")
        self.call("SET", "c", "3")               # drops the TTL
        self.assertConsistent()
        self.call("SET", "d", "4", "PX", 10)
        self.clock.advance(1)
        self.assertIsNone(self.call("GET", "d"))  # lazily expired
        self.assertConsistent()
        self.call("SADD", "s", "m")
        self.call("FLUSHALL")
        self.assertEqual(self.ks.used, 0)

    def test_slot_deletion(self):
        for i in range(50):
            self.call("SET", "{t}%d" % i, "v", "EX", 100)
        self.call("SET", "other", "v")
        self.ks.delete_slot(self.server.keyspace.slots.index(
            next(t for t in self.ks.slots if b"{t}0" in t)))
        self.assertConsistent()
        self.assertEqual(self.ks.used, memory.key_cost(b"other") +
                         memory.string_cost(b"v"))

    def test_estimate_samples(self):
        big = {b"f%d" % i: b"v" * (1000 if i else 10) for i in range(100)}
        # The first element is small: one sample underestimates.
        self.assertGreater(memory.estimate(big, 0), memory.estimate(big, 1))
        self.assertGreater(memory.estimate(b"x" * 1000), 1000)


class CommandTests(ServerTestCase):
    def test_memory_usage(self):
        self.call("SET", "foo", "bar")
        usage = self.call("MEMORY", "USAGE", "foo")
        self.assertEqual(usage, memory.key_cost(b"foo") +
                         memory.string_cost(b"bar"))
        self.assertEqual(self.call("MEMORY", "USAGE", "foo", "SAMPLES", 0),
                         usage)
        self.assertIsNone(self.call("MEMORY", "USAGE", "nokey"))
        self.assertEqual(self.call("MEMORY", "USAGE", "foo", "SAMPLES"),
                         "ERR syntax error")
        self.assertEqual(self.call("MEMORY", "USAGE", "foo", "SAMPLES", -1),
                         "ERR syntax error")
        self.call("EXPIRE", "foo", 100)
        self.assertEqual(self.call("MEMORY", "USAGE", "foo"),
                         usage + memory.EXPIRE_COST)

    def test_info_memory(self):
        self.call("SET", "foo", "x" * 1000)
        info = dict(line.split(":", 1) for line in
                    self.call("INFO", "memory").decode().splitlines()
                    if ":" in line)
        self.assertEqual(int(info["used_memory_dataset"]), self.ks.used)
        self.assertGreaterEqual(int(info["used_memory"]),
                                memory.STARTUP + self.ks.used)
        self.assertGreaterEqual(int(info["used_memory_peak"]),
                                int(info["used_memory"]))
        self.assertIn("mem_fragmentation_ratio", info)
        self.assertEqual(info["maxmemory_policy"], "noeviction")

    def test_stats_doctor_malloc_purge(self):
        self.call("SET", "foo", "bar")
        stats = self.call("MEMORY", "STATS")
        fields = dict(zip(stats[::2], stats[1::2]))
        self.assertEqual(fields[b"keys.count"], 1)
        self.assertEqual(fields[b"dataset.bytes"], self.ks.used)
        self.assertTrue(self.call("MEMORY", "DOCTOR").startswith(
            b"Hi Sam, this instance is empty"))
        self.assertIn(b"CPython", self.call("MEMORY", "MALLOC-STATS"))
        self.assertEqual(self.call("MEMORY", "PURGE"), b"OK")
        self.assertEqual(len(self.call("MEMORY", "HELP")), 14)


class AccessTests(ServerTestCase):
    def test_idletime(self):
        self.call("SET", "foo", "bar")
        self.clock.advance(7)
        self.assertEqual(self.call("OBJECT", "IDLETIME", "foo"), 7)
        self.assertEqual(self.call("OBJECT", "IDLETIME", "foo"), 7)  # notouch
        self.call("GET", "foo")
        self.assertEqual(self.call("OBJECT", "IDLETIME", "foo"), 0)
        self.assertIsNone(self.call("OBJECT", "IDLETIME", "nokey"))
        self.assertTrue(self.call("OBJECT", "FREQ", "foo").startswith(
            "ERR An LFU maxmemory policy is not selected"))

    def test_freq_under_lfu(self):
        self.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
        self.call("SET", "foo", "bar")
        self.assertEqual(self.call("OBJECT", "FREQ", "foo"), 5)
        for _ in range(200):
            self.call("GET", "foo")
        self.assertGreater(self.call("OBJECT", "FREQ", "foo"), 5)
        self.assertTrue(self.call("OBJECT", "IDLETIME", "foo").startswith(
            "ERR An LFU maxmemory policy is selected"))

    def test_restore_idletime_and_freq(self):
        self.call("SET", "foo", "bar")
        payload = self.call("DUMP", "foo")
        self.call("RESTORE", "k1", 0, payload, "IDLETIME", 1000)
        self.assertEqual(self.call("OBJECT", "IDLETIME", "k1"), 1000)
        self.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
        self.call("RESTORE", "k2", 0, payload, "FREQ", 100)
        self.assertEqual(self.call("OBJECT", "FREQ", "k2"), 100)


class ClientEvictionTests(ServerTestCase):
    directives = {"maxmemory_clients": 1024 * 1024}

    def test_biggest_client_goes_but_not_no_evict(self):
        big_proto, big = self.connect()
        kept_proto, kept = self.connect()
        self.call("CLIENT", "NO-EVICT", "on", client=(kept_proto, kept))
        head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n"
        kept_proto.dataReceived(head + b"x" * 800000)   # biggest: NO-EVICT
        big_proto.dataReceived(head + b"x" * 500000)
        third_proto, third = self.connect()
        third_proto.dataReceived(head + b"x" * 400000)
        self.server.cron()
        # 1.7 MB for a 1 MB limit: the biggest is NO-EVICT, so the next
        # two go; the small ones stay.
        self.assertTrue(big.disconnecting)
        self.assertTrue(third.disconnecting)
        self.assertFalse(kept.disconnecting)
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(self.server.evictor.evicted_clients, 2)
        info = self.call("INFO", "stats").decode()
        self.assertIn("evicted_clients:2", info)


class OutputLimitTests(ServerTestCase):
    def test_hard_and_soft_limits(self):
        client = next(iter(self.server.clients.values()))
        self.call("CONFIG", "SET", "client-output-buffer-limit",
                  "normal 1000 100 10")
        over = memory.over_output_limit
        self.assertFalse(over(client, 50, 0.0))
        self.assertTrue(over(client, 1000, 0.0))            # hard
        self.assertFalse(over(client, 200, 100.0))          # soft: starts
        self.assertFalse(over(client, 200, 110.0))          # 10 s: not yet
        self.assertTrue(over(client, 200, 110.5))           # > 10 s
        self.assertFalse(over(client, 50, 111.0))           # back under
        self.assertFalse(over(client, 200, 112.0))          # restarts
        self.call("SUBSCRIBE", "ch")
        self.assertEqual(memory.output_class(client), "pubsub")
        self.assertFalse(over(client, 2000, 0.0))    # pubsub: 32mb hard


class RandomOpsTests(ServerTestCase):
    """Whatever the commands, used stays the sum of what each key was
    charged (no drift), and returns to 0 once every key is gone."""

    OPS = (
        ("SET", "{k}", "{v}"), ("SET", "{k}", "{v}", "EX", "100"),
        ("APPEND", "{k}", "{v}"), ("SETRANGE", "{k}", "3", "{v}"),
        ("INCR", "{k}"), ("GETDEL", "{k}"), ("DEL", "{k}"),
        ("EXPIRE", "{k}", "50"), ("PERSIST", "{k}"),
        ("RPUSH", "{k}", "{v}", "{v}"), ("LPOP", "{k}"),
        ("SADD", "{k}", "{v}", "{v}"), ("SPOP", "{k}"),
        ("HSET", "{k}", "{v}", "{v}"), ("HDEL", "{k}", "{v}"),
        ("ZADD", "{k}", "1", "{v}"), ("ZPOPMIN", "{k}"),
        ("XADD", "{k}", "*", "f", "{v}"), ("XTRIM", "{k}", "MAXLEN", "0"),
        ("RENAME", "{k}", "{k}"), ("COPY", "{k}", "{k}", "REPLACE"),
        ("SUNIONSTORE", "{k}", "{k}", "{k}"), ("PFADD", "{k}", "{v}"),
        ("SETBIT", "{k}", "100", "1"), ("LMOVE", "{k}", "{k}", "LEFT",
                                          "RIGHT"),
    )

    def test_no_drift(self):
        import random
        rand = random.Random(7)
        keys = ["key%d" % i for i in range(8)]
        for step in range(1500):
            op = rand.choice(self.OPS)
            args = [a.replace("{k}", rand.choice(keys))
                    .replace("{v}", "v" * rand.randrange(1, 80))
                    for a in op]
            self.call(*args)
            if step % 50 == 0:
                self.clock.advance(20)
            self.assertEqual(self.ks.used, recount(self.ks), args)
        self.call("FLUSHALL")
        self.assertEqual(self.ks.used, 0)
