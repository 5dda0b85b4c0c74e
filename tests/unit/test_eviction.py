"""maxmemory and eviction (rcluster/eviction.py), sans-IO: each policy's
victims, the pool, LFU counter math against Redis's formulas, -OOM."""
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from rcluster import eviction, memory
from rcluster.cluster.keyslot import keyslot
from rcluster.eviction import LFU, LFU_INIT_VAL, Evictor, time_limit_us
from rcluster.keyspace import Keyspace
from rcluster.persistence.crc64 import crc64
from rcluster.persistence.service import RdbLoad
from tests.protocol.helpers import ServerTestCase, make_server

OOM = "OOM command not allowed when used memory > 'maxmemory'."
VALUE = "v" * 200
# Room for about 100 keys of VALUE above the fixed startup figure (plus a
# client's share).
LIMIT = memory.STARTUP + 1024 * 4 + 100 * (memory.key_cost(b"key:000") +
                                           memory.string_cost(VALUE.encode()))

SLACK = memory.key_cost(b"xxxxxxxxxx") + memory.string_cost(VALUE.encode()) + \
    memory.EXPIRE_COST


class LFUMathTests(TestCase):
    def setUp(self):
        self.ks = Keyspace()
        self.ks.tick(1_700_000_000_000)

    def test_new_and_packing(self):
        lfu = LFU(self.ks)
        packed = lfu.new()
        self.assertEqual(packed & 255, LFU_INIT_VAL)
        self.assertEqual(packed >> 8, (self.ks.now // 60000) & 65535)

    def test_log_incr_probability(self):
        # p = 1 / ((counter - LFU_INIT_VAL) * lfu_log_factor + 1)
        for counter, factor, r, expected in (
                (0, 10, 0.99, 1),       # below INIT: always incremented
                (5, 10, 0.99, 6),       # base 0: p = 1
                (6, 10, 1 / 11 - 1e-9, 7), (6, 10, 1 / 11 + 1e-9, 6),
                (105, 10, 1 / 1001 - 1e-9, 106), (105, 10, 0.01, 105),
                (255, 10, 0.0, 255), (50, 0, 0.999, 51)):
            lfu = LFU(self.ks, log_factor=factor, rand=lambda: r)
            self.assertEqual(lfu.log_incr(counter), expected,
                             (counter, factor, r))

    def test_growth_matches_redis_table(self):
        # redis.conf's table: factor 10, 1K hits -> ~18, 100K -> ~142 (and
        # 1M -> 255); random, so a generous band around the figures.
        lfu = LFU(self.ks, log_factor=10, rand=random.Random(1).random)
        counter = LFU_INIT_VAL
        for _ in range(1000):
            counter = lfu.log_incr(counter)
        self.assertTrue(12 <= counter <= 26, counter)
        for _ in range(99000):
            counter = lfu.log_incr(counter)
        self.assertTrue(120 <= counter <= 165, counter)

    def test_decay(self):
        lfu = LFU(self.ks, decay_time=1)
        packed = (lfu.minutes() << 8) | 20
        self.assertEqual(lfu.decayed(packed), 20)
        self.ks.tick(self.ks.now + 3 * 60000)
        self.assertEqual(lfu.decayed(packed), 17)
        self.ks.tick(self.ks.now + 60 * 60000)
        self.assertEqual(lfu.decayed(packed), 0)
        lfu.decay_time = 0          # no decay
        self.assertEqual(lfu.decayed(packed), 20)
        lfu.decay_time = 2
        packed = (lfu.minutes() << 8) | 20
        self.ks.tick(self.ks.now + 5 * 60000)
        self.assertEqual(lfu.decayed(packed), 18)

    def test_decayed_many_matches_decayed(self):
        lfu = LFU(self.ks, decay_time=2)
        rnd = random.Random(3)
        metas = [None] + [(rnd.randrange(65536) << 8) | rnd.randrange(256)
                          for _ in range(500)]
        for decay_time in (0, 1, 2, 7):
            lfu.decay_time = decay_time
            self.assertEqual(lfu.decayed_many(metas),
                             [lfu.decayed(m) for m in metas])

    def test_elapsed_wraps(self):
        lfu = LFU(self.ks)
        now = lfu.minutes()
        self.assertEqual(lfu.elapsed(now), 0)
        ldt = (now + 10) & 65535     # "in the future": wrapped around
        self.assertEqual(lfu.elapsed(ldt), 65535 - ldt + now)

    def test_time_limit(self):
        self.assertEqual(time_limit_us(0), 0)
        self.assertEqual(time_limit_us(10), 500)
        self.assertAlmostEqual(time_limit_us(20), 500 * 1.15 ** 10)
        self.assertEqual(time_limit_us(100), float("inf"))


class EvictionTestCase(ServerTestCase):
    policy = "noeviction"

    def setUp(self):
        self.directives = {"maxmemory": LIMIT,
                           "maxmemory_policy": self.policy,
                           "maxmemory_eviction_tenacity": 100}
        super().setUp()
        self.sent = self.capture_propagation()

    def fill(self, n, prefix="key", ttl=None):
        for i in range(n):
            args = ("SET", "%s:%03d" % (prefix, i), VALUE)
            reply = self.call(*(args + (("EX", ttl) if ttl else ())))
            if reply != b"OK":
                return reply
        return b"OK"

    def keys(self, prefix):
        return [k for k in self.ks.iter_keys() if k.startswith(prefix)]

    def assertUnderLimit(self):
        # Eviction runs before each command (as in Redis): the last write
        # may leave the estimate one key over.
        self.assertLessEqual(self.server.evictor.used(), LIMIT + SLACK)


class NoEvictionTests(EvictionTestCase):
    def test_oom_and_nothing_lost(self):
        reply = self.fill(300)
        self.assertEqual(reply, OOM)
        kept = len(self.ks)
        self.assertGreater(kept, 50)
        self.assertEqual(self.call("GET", "key:000"), VALUE.encode())
        self.assertEqual(self.call("DEL", "key:000"), 1)   # not denyoom
        self.assertEqual(self.server.stats.evicted_keys, 0)
        self.assertEqual(len(self.ks), kept - 1)

    def test_multi_refused(self):
        self.fill(300)
        self.call("MULTI")
        self.assertEqual(self.call("GET", "key:001"), OOM)  # queueing
        self.assertTrue(self.call("EXEC").startswith("EXECABORT"))

    def test_gate_follows_usage_and_config(self):
        self.assertFalse(self.server.gated)     # empty: far below the limit
        self.fill(105)                          # past 90% of maxmemory
        self.assertTrue(self.server.evictor.gated)
        self.assertTrue(self.server.gated)      # the checked path for all
        self.call("FLUSHALL")
        self.server.cron()                      # the cron ungates
        self.assertFalse(self.server.evictor.gated)
        self.assertFalse(self.server.gated)
        self.fill(300)
        self.call("CONFIG", "SET", "maxmemory", 0)
        self.assertFalse(self.server.evictor.active)
        self.assertFalse(self.server.gated)
        self.assertEqual(self.fill(300), b"OK")


class AllKeysLRUTests(EvictionTestCase):
    policy = "allkeys-lru"

    def test_hot_set_survives(self):
        # Room for ~110 keys: 30 hot ones, then rounds of 30 new keys, so
        # that an exact LRU always finds older cold keys to evict.
        self.fill(30, "hot")
        for round_ in range(20):
            self.clock.advance(1)
            for i in range(30):
                self.call("GET", "hot:%03d" % i)
            self.clock.advance(1)
            self.fill(30, "cold%02d" % round_)
        self.assertUnderLimit()
        self.assertGreater(self.server.stats.evicted_keys, 300)
        self.assertGreaterEqual(len(self.keys(b"hot")), 27)

    def test_evictions_propagate_as_del(self):
        self.fill(150)
        dels = [op for op in self.sent if op[0] == b"DEL"]
        self.assertEqual(len(dels), self.server.stats.evicted_keys)
        self.assertNotIn(b"MULTI", [op[0] for op in self.sent])
        info = self.call("INFO", "stats").decode()
        self.assertIn("evicted_keys:%d" % self.server.stats.evicted_keys,
                      info)

    def test_lazyfree_lazy_eviction_propagates_unlink(self):
        self.call("CONFIG", "SET", "lazyfree-lazy-eviction", "yes")
        self.fill(150)
        ops = [op[0] for op in self.sent if op[0] in (b"DEL", b"UNLINK")]
        self.assertEqual(ops, [b"UNLINK"] * self.server.stats.evicted_keys)
        self.assertTrue(ops)

    def test_watch_is_touched(self):
        self.fill(10)
        self.call("WATCH", "key:000")
        self.clock.advance(5)
        other = self.connect()
        for i in range(600):
            self.call("SET", "new:%03d" % i, VALUE, client=other)
        self.assertIsNone(self.call("GET", "key:000"))
        self.call("MULTI")
        self.call("SET", "x", "1")
        self.assertEqual(self.raw("EXEC"), b"*-1\r\n")


class AllKeysLFUTests(EvictionTestCase):
    policy = "allkeys-lfu"

    def test_frequent_keys_survive(self):
        self.fill(30, "hot")
        for _ in range(30):
            for i in range(30):
                self.call("GET", "hot:%03d" % i)
        for round_ in range(5):
            self.fill(80, "cold%d" % round_)
        self.assertUnderLimit()
        self.assertGreaterEqual(len(self.keys(b"hot")), 27)


class AllKeysRandomTests(EvictionTestCase):
    policy = "allkeys-random"

    def test_takes_writes(self):
        self.assertEqual(self.fill(500), b"OK")
        self.assertUnderLimit()
        self.assertGreater(self.server.stats.evicted_keys, 300)


class VolatileTests(EvictionTestCase):
    policy = "volatile-lru"

    def test_only_ttl_keys(self):
        self.fill(40, "persistent")
        self.assertEqual(self.fill(300, "ttl", ttl=1000), b"OK")
        self.assertUnderLimit()
        self.assertEqual(len(self.keys(b"persistent")), 40)
        self.assertGreater(self.server.stats.evicted_keys, 0)

    def test_oom_without_ttl_keys(self):
        self.assertEqual(self.fill(300, "persistent"), OOM)


class VolatileRandomTests(VolatileTests):
    policy = "volatile-random"


class VolatileLFUTests(VolatileTests):
    policy = "volatile-lfu"


class VolatileTTLTests(VolatileTests):
    policy = "volatile-ttl"

    def test_soonest_deadline_first(self):
        for i in range(60):
            self.call("SET", "long:%03d" % i, VALUE, "EX", 100000)
        for i in range(300):
            self.call("SET", "short:%03d" % i, VALUE, "EX", 10 + i)
        # Sampling is approximate: the long-lived keys mostly survive.
        self.assertGreaterEqual(len(self.keys(b"long")), 50)


class PoolTests(EvictionTestCase):
    policy = "allkeys-lru"

    def populated(self):
        """The evictor, its pool filled from 100 keys a second apart."""
        self.server.settings.maxmemory = 0
        self.server.evictor.configure()
        for i in range(100):
            self.ks.tick(1_000_000 + i * 1000)
            self.ks.set(b"k%03d" % i, b"v")
        ev = self.server.evictor
        for _ in range(40):
            ev.populate(self.ks, 5, False)
        return ev

    def test_pool_keeps_the_best_sixteen(self):
        ev = self.populated()
        self.assertLessEqual(len(ev.pool), eviction.POOL_SIZE)
        # Best victim first; an LRU score is the last access time.
        idle = [self.ks.now - entry[0] for entry in ev.pool]
        self.assertEqual(idle, sorted(idle, reverse=True))
        # The oldest keys (idle the longest) gather at the front.
        self.assertGreater(idle[0], 50 * 1000)
        self.assertTrue(all(self.ks.now - self.ks.meta(key) == age
                            for age, (_, key, _, _) in zip(idle, ev.pool)))

    def test_pool_drops_keys_read_or_deleted_since(self):
        # The pool's leftovers are checked when the next batch starts: a
        # key read since it was scored is no longer the best victim, a
        # deleted one is gone; the others stay candidates.
        ev = self.populated()
        read, deleted = ev.pool[0][1], ev.pool[-1][1]
        # (Sampling may have put a key in the pool twice.)
        kept = [c[1] for c in ev.pool if c[1] not in (read, deleted)]
        self.ks.tick(self.ks.now + 1000)
        self.ks.lookup(read)
        self.ks.delete(deleted)
        self.assertEqual([c[1] for c in ev._unchanged(ev.pool)], kept)
        batch = ev.batch(1)
        self.assertNotIn(deleted, [c[1] for c in batch])
        # The read key may be sampled afresh: then scored by its new
        # access time, the newest, so not ahead of any other.
        self.assertNotEqual(batch[0][1], read)
        for score, key, _, meta in batch:
            if key == read:
                self.assertEqual(meta, self.ks.meta(read))
                self.assertEqual(score, max(c[0] for c in batch))

    def test_sampling(self):
        for i in range(20):
            self.ks.set(b"k%d" % i, b"v")
            if i % 2:
                self.ks.set_expire(b"k%d" % i, 10 ** 15)
        # More asked than there are: every key once (dictGetSomeKeys).
        keys, metas = eviction.sample_keys(self.ks, 50)
        self.assertEqual(sorted(keys), sorted(self.ks.iter_keys()))
        self.assertEqual(metas, [self.ks.meta(k) for k in keys])
        keys, metas = eviction.sample_keys(self.ks, 5)
        self.assertEqual(len(set(keys)), 5)
        self.assertTrue(all(k in self.ks for k in keys))
        self.assertEqual(metas, [self.ks.meta(k) for k in keys])
        volatile = eviction.sample_volatile(self.ks, 10)
        self.assertTrue(volatile and all(k in self.ks.expires
                                         for k in volatile))
        self.assertEqual(eviction.sample_keys(Keyspace(), 5), ([], []))


class TenacityTests(EvictionTestCase):
    policy = "allkeys-random"

    def test_eviction_continues_on_later_turns(self):
        self.server.settings.maxmemory = 0
        self.server.evictor.configure()
        self.fill(400)
        self.call("CONFIG", "SET", "maxmemory-eviction-tenacity", 0)
        self.call("CONFIG", "SET", "maxmemory", LIMIT)
        self.call("GET", "key:000")      # starts; time limit 0: 16 keys
        self.assertTrue(self.server.evictor.timer_running)
        self.assertGreaterEqual(self.server.stats.evicted_keys, 16)
        for _ in range(100):
            self.clock.advance(0)
        self.assertFalse(self.server.evictor.timer_running)
        self.assertUnderLimit()


class EvictedEventTests(EvictionTestCase):
    policy = "allkeys-lru"

    def test_evicted_keyspace_event(self):
        self.call("CONFIG", "SET", "notify-keyspace-events", "Ee")
        sub = self.connect()
        self.raw("SUBSCRIBE", "__keyevent@0__:evicted", client=sub)
        self.pending(sub)
        self.fill(150)
        received = self.pending(sub)
        self.assertIn(b"__keyevent@0__:evicted", received)
        self.assertEqual(received.count(b"$7\r\nmessage\r\n"),
                         self.server.stats.evicted_keys)


class ReplicaTests(EvictionTestCase):
    policy = "allkeys-lru"

    def test_replica_ignores_maxmemory(self):
        self.server.role = "replica"
        self.assertEqual(self.server.evictor.perform(), eviction.EVICT_OK)
        for i in range(300):
            self.ks.set(b"k%03d" % i, VALUE.encode())   # as from a master
        self.assertIsNone(self.server.evictor.before_command(
            self.server.clients[1], self.server.table.lookup([b"SET"])[0]))
        self.assertEqual(self.server.stats.evicted_keys, 0)


class DatabaseTests(EvictionTestCase):
    policy = "allkeys-random"

    def test_evicts_in_other_databases_with_select(self):
        if not hasattr(self.server, "dbs"):
            self.skipTest("no multiple databases")
        self.call("SELECT", 1)
        self.fill(60, "one")
        self.call("SELECT", 0)
        dels = []
        self.server.write_path.add_sink(lambda db, ops: dels.extend(
            (db, op[1]) for op in ops if op[0] == b"DEL"))
        self.fill(300, "zero")
        self.assertUnderLimit()
        self.assertLess(len(self.server.dbs[1]), 60)
        # Each DEL goes to the sinks with its database.
        self.assertTrue(dels)
        self.assertTrue(all((db == 1) == key.startswith(b"one")
                            for db, key in dels))
        self.assertIn(1, {db for db, _ in dels})


class ScriptTests(EvictionTestCase):
    def test_script_denyoom_commands_refused_when_oom(self):
        self.fill(300)                            # noeviction: now OOM
        reply = self.call("EVAL", "return redis.call('SET', 'x', 'y')", 0)
        # As redis-server 7.0.15: "... 'maxmemory'. script: <sha>, on
        # @user_script:1."
        self.assertTrue(reply.startswith(OOM + " script: "), reply)
        self.assertEqual(self.call("EVAL", "return redis.call('GET', "
                                   "'key:000')", 0), VALUE.encode())
        self.assertEqual(self.call("EVAL", "return redis.call('DEL', "
                                   "'key:000')", 0), 1)
        reply = self.call("EVAL", "#!lua flags=allow-oom\n"
                          "return redis.call('SET', 'x', 'y')", 0)
        self.assertEqual(reply, b"OK")


# -- batches, and the fast path between them ---------------------------------

# Room for about 2000 keys of VALUE; BatchTests makes eviction free ~60
# keys more than the command at hand (Evictor.slack), as ~1/1000 of
# maxmemory does with 60k keys, so that writes evict in batches.
BIG_LIMIT = memory.STARTUP + 1024 * 4 + 2000 * (
    memory.key_cost(b"key:0000") + memory.string_cost(VALUE.encode()))


class BatchTests(EvictionTestCase):
    policy = "allkeys-lru"

    def setUp(self):
        super().setUp()
        self.patch(eviction, "SLACK_SHIFT", 5)     # 1/32 of the room
        self.call("CONFIG", "SET", "maxmemory", BIG_LIMIT)
        self.ev = self.server.evictor

    def fill(self, n, prefix="key", ttl=None, start=0):
        for i in range(start, start + n):
            self.clock.advance(0.001)
            reply = self.call("SET", "%s:%04d" % (prefix, i), VALUE)
            if reply != b"OK":
                return reply
        return b"OK"

    def test_room_made_in_batches(self):
        self.assertGreater(self.ev.slack, 8 * len(VALUE))
        self.fill(2600)
        evicted = self.server.stats.evicted_keys
        self.assertGreater(evicted, 500)
        # Each run of evictions leaves the estimate slack under the limit,
        # so that the next writes find room.
        self.ev.perform()
        self.assertLessEqual(self.ev.used(), BIG_LIMIT)
        dels = [op for op in self.sent if op[0] == b"DEL"]
        self.assertEqual(len(dels), evicted)
        self.assertEqual(len(set(op[1] for op in dels)), evicted)
        self.assertEqual(len(self.ks) + evicted, 2600)

    def test_under_the_limit_after_each_batch(self):
        self.fill(2100)
        for i in range(300):
            self.call("SET", "more:%04d" % i, VALUE)
            # At most the command's own key over the limit.
            self.assertLessEqual(self.ev.used(), BIG_LIMIT + SLACK)

    def test_fast_path_between_batches(self):
        self.fill(2100)
        self.assertGreaterEqual(self.ev.slack // (len(VALUE) + 64),
                                eviction.UNGATE_AFTER)
        # Right after a batch: room for many writes, the fast path.
        self.call("SET", "probe", VALUE)
        if self.server.gated:       # this write crossed the limit again
            self.call("SET", "probe2", VALUE)
        self.assertFalse(self.server.gated)
        self.assertFalse(self.ev.gated)
        # Writes until one crosses maxmemory: gated again, and the next
        # command evicts.
        for i in range(200):
            self.call("SET", "x:%04d" % i, VALUE)
            if self.ev.gated:
                break
        self.assertTrue(self.ev.gated)
        self.assertTrue(self.server.gated)
        self.assertGreater(self.ev.used(), BIG_LIMIT)
        evicted = self.server.stats.evicted_keys
        self.call("GET", "x:0000")
        self.assertGreater(self.server.stats.evicted_keys, evicted)
        self.assertLessEqual(self.ev.used(), BIG_LIMIT)

    def test_hot_set_survives_batches(self):
        self.fill(100, "hot")
        for round_ in range(12):
            for i in range(100):
                self.call("GET", "hot:%04d" % i)
            self.fill(300, "cold%02d" % round_)
        self.assertGreater(self.server.stats.evicted_keys, 1000)
        self.assertGreaterEqual(len(self.keys(b"hot")), 95)

    def test_oldest_go_first(self):
        # Writes in order, no reads: an exact LRU would evict in write
        # order; the sampled one evicts mostly the oldest third.
        self.fill(1000, "old")
        self.fill(1000, "mid")
        self.fill(1000, "new")
        dels = [op[1] for op in self.sent if op[0] == b"DEL"]
        self.assertGreater(len(dels), 900)
        old = sum(key.startswith(b"old") for key in dels)
        # (Redis's round per eviction: 83-86% here, batches of ~60 alike.)
        self.assertGreater(old, 0.75 * len(dels))
        self.assertGreaterEqual(len(self.keys(b"new")), 995)

    def test_no_timer_once_under_maxmemory(self):
        # Past the time limit with the estimate under maxmemory, the rest
        # of the slack waits for the next batch (Redis would be done).
        self.fill(2100)
        self.server.settings.maxmemory_eviction_tenacity = 0
        evicted = self.server.stats.evicted_keys
        self.fill(300, "more")
        self.assertGreater(self.server.stats.evicted_keys, evicted + 200)
        self.assertFalse(self.ev.timer_running)
        self.assertLessEqual(self.ev.used(), BIG_LIMIT + SLACK)


class BatchLFUTests(BatchTests):
    policy = "allkeys-lfu"

    def test_oldest_go_first(self):
        self.skipTest("LFU ranks by frequency, not age")


class SamplingTests(TestCase):
    def setUp(self):
        self.ks = Keyspace()
        self.ks.tick(1_700_000_000_000)

    def test_sample_many(self):
        for i in range(5000):
            self.ks.tick(self.ks.now + i % 3)   # access times that differ
            self.ks.set(b"k%d" % i, b"v")
        keys, metas = eviction.sample_many(self.ks, 500)
        self.assertGreaterEqual(len(keys), 500)
        self.assertTrue(all(k in self.ks for k in keys))
        self.assertGreater(len(set(keys)), 400)
        # Each key with its own access metadata, in step.
        self.assertEqual(metas, [self.ks.meta(k) for k in keys])
        # Fewer keys than asked: each once.
        small = Keyspace()
        for i in range(40):
            small.set(b"s%d" % i, b"v")
        keys, metas = eviction.sample_many(small, 100)
        self.assertEqual(sorted(keys), sorted(small.iter_keys()))
        self.assertEqual(metas, [small.meta(k) for k in keys])

    def test_hash_tagged_keys(self):
        # Every key in one slot: sampling walks to it.
        for i in range(3000):
            self.ks.set(b"{user}:%d" % i, b"v")
        keys, metas = eviction.sample_many(self.ks, 200)
        self.assertGreaterEqual(len(keys), 200)
        self.assertTrue(all(k in self.ks for k in keys))
        self.assertEqual(metas, [self.ks.meta(k) for k in keys])
        self.assertEqual(len(eviction.sample_keys(self.ks, 5)[0]), 5)

    def test_sample_volatile(self):
        for i in range(300):
            self.ks.set(b"k%d" % i, b"v")
            self.ks.set_expire(b"k%d" % i, self.ks.now + 1000 + i)
        for i in range(200):
            self.ks.persist(b"k%d" % i)       # stale heap entries
        keys = eviction.sample_volatile(self.ks, 50)
        self.assertEqual(len(keys), 50)
        self.assertTrue(all(k in self.ks.expires for k in keys))


class DatabaseLRUTests(EvictionTestCase):
    policy = "allkeys-lru"

    def test_oldest_go_first_across_databases(self):
        self.call("SELECT", 1)
        self.fill(60, "one")
        self.clock.advance(10)
        self.call("SELECT", 0)
        dels = []
        self.server.write_path.add_sink(lambda db, ops: dels.extend(
            (db, op[1]) for op in ops if op[0] == b"DEL"))
        self.fill(120, "zero")
        self.assertUnderLimit()
        # db 1's keys are the older: they go first, each DEL with its db.
        self.assertLess(len(self.server.dbs[1]), 20)
        self.assertTrue(dels)
        self.assertTrue(all((db == 1) == key.startswith(b"one")
                            for db, key in dels))
        self.assertGreater(sum(db == 1 for db, _ in dels), 0.8 * len(dels))


class EvictKeysTests(TestCase):
    """Keyspace.evict_keys: Keyspace.delete's bookkeeping, many keys at
    once, stopping once enough is freed."""

    def setUp(self):
        self.ks = Keyspace()
        self.ks.tick(1_700_000_000_000)
        self.empty = self.ks.used

    def test_accounting_matches_delete(self):
        self.ks.set(b"a", b"v" * 10)
        self.ks.set(b"b", b"v" * 600)                  # a big string
        self.ks.set(b"c", {b"f": b"v"})                # a container
        self.ks.set(b"d", b"v")
        self.ks.set_expire(b"d", self.ks.now + 1000)
        dirty = self.ks.dirty
        removed, consumed = self.ks.evict_keys(
            [b"a", b"gone", b"b", b"c", b"d"], 1 << 40)
        self.assertEqual(removed, [b"a", b"b", b"c", b"d"])
        self.assertEqual(consumed, 5)
        self.assertEqual(self.ks.used, self.empty)
        self.assertEqual(len(self.ks), 0)
        self.assertEqual((self.ks.values, self.ks.sizes, self.ks.expires),
                         ({}, {}, {}))
        self.assertFalse(any(self.ks.slots))
        self.assertEqual(self.ks.dirty, dirty)     # not a write

    def test_stops_once_enough_is_freed(self):
        for i in range(10):
            self.ks.set(b"k%d" % i, b"v" * 100)
        one = self.ks.used // 10
        removed, consumed = self.ks.evict_keys(
            [b"k%d" % i for i in range(10)], 2 * one + 1)
        self.assertEqual(removed, [b"k0", b"k1", b"k2"])
        self.assertEqual(consumed, 3)
        self.assertEqual(len(self.ks), 7)

    def test_snapshot_hook_sees_each_slot(self):
        seen = []
        self.ks.set(b"a", b"v")
        self.ks.before_write = seen.append
        self.ks.evict_keys([b"a"], 1)
        self.assertEqual(seen, [keyslot(b"a")])


class ScoringTests(TestCase):
    def setUp(self):
        self.ks = Keyspace()
        self.ks.tick(1_000)

    def scored(self, keys, keep, kind="lru"):
        evictor = Evictor.__new__(Evictor)
        evictor.kind = kind
        metas = eviction._metas(self.ks, keys, self.ks.now)
        return evictor._scored(self.ks, keys, metas, keep)

    def test_lru_keeps_the_oldest(self):
        keys = []
        for i in range(50):
            self.ks.tick(1_000 + (i * 7) % 50)  # access times shuffled
            keys.append(b"k%d" % i)
            self.ks.set(keys[-1], b"v")
        best = self.scored(keys, 10)
        # The 10 oldest, maybe a few more (populate keeps 10).
        self.assertEqual(sorted(score for score, _, _, _ in best)[:10],
                         list(range(1_000, 1_010)))
        self.assertTrue(all(self.ks.meta(key) == meta
                            for _, key, _, meta in best))

    def test_lru_ties(self):
        # Keys tied at the cut may all come (populate keeps the best
        # ``keep``); every key older than the cut always does, wherever
        # it was sampled.
        keys = [b"k%d" % i for i in range(40)]
        for key in keys:
            self.ks.set(key, b"v")      # all at the same time
        self.ks.tick(900)
        older = [b"old%d" % i for i in range(5)]
        for key in older:
            self.ks.set(key, b"v")
        best = self.scored(keys + older, 16)
        self.assertGreaterEqual(len(best), 16)
        self.assertLessEqual(set(older), {key for _, key, _, _ in best})
        self.assertEqual({meta for _, key, _, meta in best
                          if key not in older}, {1_000.0})
        self.assertEqual(len(self.scored(keys[:10], 16)), 10)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.integers(0, 40), min_size=1, max_size=300),
           st.integers(1, 120))
    def test_lru_cut_keeps_every_best_candidate(self, ages, keep):
        # Whatever the cut estimated from a few samples gives, every
        # sample older than the keep-th oldest comes, and at least keep.
        ks = Keyspace()
        ks.tick(1_000)
        keys = [b"k%d" % i for i in range(len(ages))]
        times = [1_000.0 - age for age in ages]
        evictor = Evictor.__new__(Evictor)
        evictor.kind = "lru"
        best = evictor._scored(ks, keys, times, keep)
        self.assertGreaterEqual(len(best), min(keep, len(keys)))
        cut = sorted(times)[min(keep, len(times)) - 1]
        self.assertLessEqual({k for k, t in zip(keys, times) if t < cut},
                             {key for _, key, _, _ in best})
        self.assertTrue(all(score == times[keys.index(key)] == meta
                            for score, key, _, meta in best))

    def test_lru_cut_estimate_falling_short(self):
        # Every PROBE-th sample is among the oldest: the cut estimated
        # from them lets too few through, the exact one is used.
        keys = [b"k%d" % i for i in range(400)]
        times = [float(i) if i % eviction.PROBE else -float(i)
                 for i in range(400)]
        evictor = Evictor.__new__(Evictor)
        evictor.kind = "lru"
        best = evictor._scored(self.ks, keys, times, 200)
        self.assertGreaterEqual(len(best), 200)
        self.assertEqual(sorted(t for t, _, _, _ in best)[:200],
                         sorted(times)[:200])

    def test_populate_keeps_the_best_of_ties(self):
        evictor = Evictor.__new__(Evictor)
        evictor.kind, evictor.pool = "lru", []
        keys = [b"k%d" % i for i in range(40)]
        for key in keys:
            self.ks.set(key, b"v")
        self.ks.tick(900)
        self.ks.set(b"old", b"v")
        evictor.populate(self.ks, 41, False, keep=16)
        self.assertEqual(len(evictor.pool), 16)
        self.assertEqual(evictor.pool[0][1], b"old")

    def test_key_gone_counts_as_just_used(self):
        keys = [b"k%d" % i for i in range(20)]
        for key in keys:
            self.ks.set(key, b"v")
        self.ks.tick(5_000)
        self.ks.delete(b"k3")       # gone between sampling and scoring
        best = self.scored(keys, 19)
        self.assertNotIn(b"k3", [key for _, key, _, _ in best])



class RdbAccessTests(TestCase):
    """RDB_OPCODE_IDLE / FREQ, which Redis writes under an LRU / LFU
    policy, give the keys loaded their idle time / counter
    (objectSetLRUOrLFU): the one the policy in force uses."""
    BODY = (b"REDIS0009" + b"\xf8\x05\x00\x01a\x01b" +      # idle 5 s
            b"\xf9\x07\x00\x01c\x01d" + b"\xff")            # freq 7

    def load(self, policy):
        server, _ = make_server(now=1_700_000_000, maxmemory_policy=policy)
        server.keyspace.tick(server.now_ms())
        load = RdbLoad(server, "dump.rdb")
        load.feed(self.BODY + crc64(self.BODY).to_bytes(8, "little"))
        load.finish()
        return server.keyspace

    def test_idle_under_lru(self):
        ks = self.load("allkeys-lru")
        self.assertEqual(eviction.idle_ms(ks, b"a"), 5000)
        self.assertEqual(eviction.idle_ms(ks, b"c"), 0)

    def test_freq_under_lfu(self):
        ks = self.load("allkeys-lfu")
        self.assertEqual(eviction.frequency(ks, b"c"), 7)
        self.assertEqual(eviction.frequency(ks, b"a"), LFU_INIT_VAL)
