"""Fork-less point-in-time snapshots (rcluster/persistence/snapshot.py).

Each test takes a snapshot in slices while the keyspace changes between
the slices (directly, or through commands), decodes the produced RDB
bytes with the RdbReader, and checks they hold the dataset as it was
when the snapshot started.
"""
from collections import deque

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from rcluster.cluster.keyslot import keyslot
from rcluster.config import Settings
from rcluster.keyspace import Keyspace
from rcluster.persistence.service import RdbLoad
from rcluster.persistence.snapshot import (BackgroundSave, Snapshot,
                                          snapshot_of)
from rcluster.zset import ZSet
from tests.protocol.helpers import ServerTestCase


def _rdb():
    from rcluster.persistence import rdb
    return rdb


def plain(value):
    """A value as a comparable Python object."""
    if isinstance(value, ZSet):
        return ("zset", dict(value.scores))
    if isinstance(value, deque):
        return ("list", list(value))
    if isinstance(value, dict):
        return ("hash", dict(value))
    if isinstance(value, set):
        return ("set", frozenset(value))
    if isinstance(value, bytes):
        return ("string", value)
    return (type(value).__name__, repr(value))


def contents(ks) -> dict:
    """key -> (value, expire) of every key of a keyspace."""
    return {key: (plain(value), ks.expires.get(key))
            for key, value in ks.items()}


def decode(data: bytes) -> dict:
    reader = _rdb().RdbReader()
    records = list(reader.feed(data))
    reader.finish()
    out = {}
    ends = 0
    for record in records:
        kind = record.__class__.__name__
        if kind == "Entry":
            assert record.key not in out, record.key
            out[record.key] = (plain(record.value), record.expire_ms)
        elif kind == "End":
            ends += 1
    assert ends == 1
    return out


def populate(ks, n=3000, now=1_000_000):
    ks.tick(now)
    for i in range(n):
        key = b"key:%d" % i
        kind = i % 5
        if kind == 0:
            ks.set(key, b"v%d" % i)
        elif kind == 1:
            ks.set(key, deque([b"a%d" % i, b"b", b"c"]))
        elif kind == 2:
            ks.set(key, {b"f": b"%d" % i, b"g": b"x"})
        elif kind == 3:
            ks.set(key, {b"m%d" % i, b"n"})
        else:
            ks.set(key, ZSet({b"z": float(i), b"y": 1.5}))
        if i % 7 == 0:
            ks.set_expire(key, now + 10_000_000 + i)


class SnapshotTests(TestCase):
    def setUp(self):
        self.ks = Keyspace()
        populate(self.ks)
        self.before = contents(self.ks)
        self.out = bytearray()
        self.snap = Snapshot(self.ks, _rdb().RdbWriter(Settings()),
                             self.out.extend)

    def finish(self):
        while not self.snap.done:
            self.snap.step(max_keys=50)
        self.assertIsNone(self.ks.before_write)
        return decode(bytes(self.out))

    def test_whole_snapshot_decodes_to_the_dataset(self):
        self.snap.run()
        self.assertEqual(decode(bytes(self.out)), self.before)
        self.assertEqual(self.snap.keys_saved, 3000)

    def test_empty_keyspace(self):
        snap = Snapshot(Keyspace(), _rdb().RdbWriter(Settings()),
                        self.out.extend)
        snap.run()
        self.assertTrue(snap.done)
        self.assertEqual(decode(bytes(self.out)), {})

    def test_slices_are_bounded(self):
        self.snap.start()
        saved = self.snap.step(max_keys=10)
        self.assertGreaterEqual(saved, 1)
        self.assertLess(saved, 40)      # a slot or so, not everything
        self.assertFalse(self.snap.done)
        self.assertEqual(self.finish(), self.before)

    def test_writes_between_slices_keep_the_point_in_time(self):
        ks = self.ks
        self.snap.start()
        keys = [b"key:%d" % i for i in range(3000)]
        for round_ in range(30):
            self.snap.step(max_keys=40)
            for i in range(round_, 3000, 97):
                key = keys[i]
                value = ks.for_write(key)
                if isinstance(value, deque):
                    value.appendleft(b"new")
                    ks.touch(key)
                elif isinstance(value, dict):
                    value[b"f"] = b"changed"
                    ks.touch(key)
                elif isinstance(value, set):
                    value.add(b"added")
                    ks.touch(key)
                elif isinstance(value, bytes):
                    ks.set(key, b"overwritten")
                elif value is not None:
                    ks.delete(key)
            ks.set(b"new-key:%d" % round_, b"x")
            ks.delete(keys[(round_ * 31) % 3000])
            ks.set_expire(keys[(round_ * 17 + 1) % 3000], 5)
            ks.persist(keys[(round_ * 7 * 7) % 3000])
        self.assertNotEqual(contents(ks), self.before)
        self.assertEqual(self.finish(), self.before)

    def test_a_write_costs_a_slot_copy_and_one_entry(self):
        ks = self.ks
        self.snap.start()
        key = b"key:1"                           # a list
        slot = keyslot(key)
        ks.for_write(key).append(b"more")
        self.assertIn(slot, self.snap.preserved)
        self.assertEqual(self.snap.keys_saved, 1)     # that key alone
        ks.for_write(key).append(b"again")      # already written: nothing
        ks.set(b"key:0", b"replaced")
        self.assertEqual(self.snap.keys_saved, 1)
        self.assertEqual(self.finish(), self.before)

    def test_a_value_moved_by_rename_then_changed(self):
        ks = self.ks
        self.snap.start()
        src, dst = b"key:6", b"elsewhere:{x}"   # a list, another slot
        self.assertNotEqual(keyslot(src), keyslot(dst))
        value = ks.lookup(src)
        ks.delete(src)
        ks.set(dst, value)
        ks.for_write(dst).appendleft(b"changed")
        while not self.snap.done:                # dst's slot first or not
            self.snap.step(max_keys=50)
        self.assertEqual(decode(bytes(self.out)), self.before)

    def test_expiry_during_the_snapshot(self):
        ks = self.ks
        self.snap.start()
        self.snap.step(max_keys=10)
        # Every key with a TTL is now due; active and lazy expiry remove them.
        ks.tick(10**13)
        self.assertGreater(ks.expire_cycle(), 0)
        self.assertEqual(self.finish(), self.before)

    def test_flushall_during_the_snapshot(self):
        self.snap.start()
        self.snap.step(max_keys=100)
        self.ks.flush()
        self.assertIsNone(self.ks.before_write)     # detached at once
        self.ks.set(b"after", b"flush")
        self.assertEqual(self.finish(), self.before)

    def test_delete_slot_during_the_snapshot(self):
        self.snap.start()
        slot = keyslot(b"key:2999")
        self.ks.delete_slot(slot)
        self.assertEqual(self.finish(), self.before)

    def test_two_snapshots_at_once(self):
        other_out = bytearray()
        other = Snapshot(self.ks, _rdb().RdbWriter(Settings()),
                         other_out.extend)
        self.snap.start()
        self.snap.step(max_keys=100)
        self.ks.set(b"key:0", b"between")
        after_first = contents(self.ks)
        other.start()
        self.ks.set(b"key:1", b"later")
        self.ks.delete(b"key:2")
        other.run()
        self.assertEqual(self.finish(), self.before)
        self.assertEqual(decode(bytes(other_out)), after_first)
        self.assertIsNone(self.ks.before_write)

    def test_abort_detaches(self):
        self.snap.start()
        self.snap.abort()
        self.assertIsNone(self.ks.before_write)


class BackgroundSaveTests(TestCase):
    def test_key_delay_spreads_the_work_over_the_clock(self):
        ks = Keyspace()
        populate(ks, 200)
        before = contents(ks)
        out = bytearray()
        clock = Clock()
        results = []
        job = BackgroundSave(Snapshot(ks, _rdb().RdbWriter(Settings()),
                                      out.extend),
                             clock, results.append, key_delay_us=1000)
        job.start()
        turns = 0
        while not results:
            clock.advance(0.005)
            ks.set(b"key:%d" % (turns % 10), b"changed")
            turns += 1
        self.assertEqual(results, [None])
        # 200 keys at 1 ms each (less the few saved early by the writes).
        self.assertGreaterEqual(clock.seconds(), 0.15)
        self.assertGreater(turns, 20)
        self.assertEqual(decode(bytes(out)), before)

    def test_slices_wait_while_the_output_is_backed_up(self):
        ks = Keyspace()
        populate(ks, 100)
        out = bytearray()
        clock = Clock()
        results = []
        backed_up = [True]
        job = BackgroundSave(Snapshot(ks, _rdb().RdbWriter(Settings()),
                                      out.extend),
                             clock, results.append,
                             ready=lambda: not backed_up[0])
        job.start()
        written = len(out)              # the header
        for _ in range(20):
            clock.advance(0.01)
        self.assertEqual(len(out), written)
        self.assertEqual(results, [])
        backed_up[0] = False
        while not results:
            clock.advance(0.01)
        self.assertEqual(results, [None])
        self.assertEqual(len(decode(bytes(out))), 100)

    def test_an_error_is_reported_once(self):
        ks = Keyspace()
        populate(ks, 50)
        results = []

        def broken(data):
            raise OSError(28, "No space left on device")
        job = BackgroundSave(Snapshot(ks, _rdb().RdbWriter(Settings()),
                                      broken), Clock(), results.append)
        job.start()
        self.assertEqual(len(results), 1)
        self.assertIsInstance(results[0], OSError)
        self.assertIsNone(ks.before_write)


class CommandsDuringSnapshotTests(ServerTestCase):
    """Writes made by commands between slices: every family's in-place
    mutation path must let the snapshot save the slot first."""

    def test_commands_between_slices(self):
        for i in range(400):
            self.call("RPUSH", "list:%d" % i, "a", "b")
            self.call("HSET", "hash:%d" % i, "f", "v")
            self.call("SADD", "set:%d" % i, "m")
            self.call("ZADD", "zset:%d" % i, "1", "m")
            self.call("SET", "str:%d" % i, "v")
            self.call("SET", "num:%d" % i, "10")
            if i % 3 == 0:
                self.call("EXPIRE", "str:%d" % i, "1000")
        before = contents(self.ks)
        out = bytearray()
        snap = Snapshot(self.ks, _rdb().RdbWriter(Settings()), out.extend)
        snap.start()
        step = 0
        while not snap.done:
            snap.step(max_keys=20)
            i = step % 400
            step += 1
            for args in (("LPUSH", "list:%d" % i, "x"),
                         ("LPOP", "list:%d" % ((i + 1) % 400)),
                         ("LSET", "list:%d" % ((i + 2) % 400), "0", "y"),
                         ("HSET", "hash:%d" % i, "f", "changed"),
                         ("HDEL", "hash:%d" % ((i + 1) % 400), "f"),
                         ("SADD", "set:%d" % i, "n"),
                         ("SPOP", "set:%d" % ((i + 1) % 400)),
                         ("ZADD", "zset:%d" % i, "5", "m"),
                         ("ZINCRBY", "zset:%d" % ((i + 1) % 400), "2", "m"),
                         ("INCR", "num:%d" % i),
                         ("APPEND", "str:%d" % i, "more"),
                         ("RENAME", "str:%d" % ((i + 5) % 400),
                          "renamed:%d" % i),
                         ("PERSIST", "str:%d" % ((i + 3) % 400)),
                         ("EXPIRE", "hash:%d" % i, "50"),
                         ("DEL", "set:%d" % ((i + 7) % 400)),
                         ("SET", "fresh:%d" % i, "v")):
                self.call(*args)
        self.assertNotEqual(contents(self.ks), before)
        self.assertEqual(decode(bytes(out)), before)
        self.assertIsNone(self.ks.before_write)

    def test_flushall_between_slices(self):
        for i in range(300):
            self.call("RPUSH", "list:%d" % i, "a")
        before = contents(self.ks)
        out = bytearray()
        snap = Snapshot(self.ks, _rdb().RdbWriter(Settings()), out.extend)
        snap.start()
        snap.step(max_keys=20)
        self.call("FLUSHALL")
        self.call("RPUSH", "list:1", "new")
        while not snap.done:
            snap.step(max_keys=20)
        self.assertEqual(decode(bytes(out)), before)


class AccessMetadataTests(ServerTestCase):
    """Under an LRU / LFU policy each key's idle seconds / counter go in
    the snapshot (RDB_OPCODE_IDLE / FREQ), as the snapshot's instant had
    them, and come back on load."""
    directives = {"maxmemory_policy": "allkeys-lru"}

    def save(self, between=None, raw=False):
        out = bytearray()
        snap = snapshot_of(self.server, _rdb().RdbWriter(Settings()),
                           out.extend)
        snap.start()
        if between is not None:
            between()
        snap.run()
        if raw:
            return bytes(out)
        reader = _rdb().RdbReader()
        records = reader.feed(bytes(out))
        reader.finish()
        return {r.key: (r.idle, r.freq) for r in records
                if r.__class__.__name__ == "Entry"}

    def later(self, ms):
        self.clock.advance(ms / 1000)
        self.ks.tick(self.server.now_ms())

    def test_idle_seconds_under_lru(self):
        self.call("SET", "old", "v")
        self.later(7_500)
        self.call("SET", "new", "v")
        self.assertEqual(self.save(), {b"old": (7, None), b"new": (0, None)})

    def test_a_key_written_during_the_snapshot_keeps_its_idle_time(self):
        self.call("SET", "old", "v")
        self.later(9_000)
        saved = self.save(between=lambda: self.call("SET", "old", "w"))
        self.assertEqual(saved, {b"old": (9, None)})

    def test_counter_under_lfu(self):
        self.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
        self.call("SET", "k", "v")
        for _ in range(50):
            self.call("GET", "k")
        self.call("SET", "cold", "v")
        counter = self.server.keyspace.meta(b"k") & 255
        self.assertGreater(counter, 5)
        self.assertEqual(self.save(), {b"k": (None, counter),
                                       b"cold": (None, 5)})

    def test_neither_under_other_policies(self):
        self.call("CONFIG", "SET", "maxmemory-policy", "volatile-ttl")
        self.call("SET", "k", "v")
        self.assertEqual(self.save(), {b"k": (None, None)})

    def test_round_trip(self):
        self.call("SET", "k", "v")
        self.later(12_000)
        data = self.save(raw=True)
        self.ks.delete(b"k")
        load = RdbLoad(self.server, "dump.rdb")
        load.feed(data)
        load.finish()
        self.assertEqual(self.call("OBJECT", "IDLETIME", "k"), 12)
