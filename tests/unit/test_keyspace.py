"""rcluster/keyspace.py on its own: the per-slot index, deadlines, lazy
and active expiry (the heap), SCAN's slot cursor, random keys."""
import random
from collections import deque

from twisted.trial.unittest import TestCase

from rcluster.cluster.keyslot import SLOTS, keyslot
from rcluster.keyspace import Keyspace

NOW = 1_700_000_000_000


class KeyspaceTestCase(TestCase):
    def setUp(self):
        self.ks = Keyspace()
        self.ks.tick(NOW)
        self.expired = []
        self.ks.on_expire = self.expired.append


class StorageTests(KeyspaceTestCase):
    def test_set_lookup_delete(self):
        ks = self.ks
        ks.set(b"a", b"1")
        ks.set(b"a", b"2")
        self.assertEqual((ks.lookup(b"a"), len(ks)), (b"2", 1))
        self.assertIn(b"a", ks)
        self.assertTrue(ks.delete(b"a"))
        self.assertFalse(ks.delete(b"a"))
        self.assertEqual((ks.lookup(b"a"), len(ks)), (None, 0))

    def test_every_change_bumps_dirty(self):
        ks = self.ks
        steps = [lambda: ks.set(b"a", b"1"), lambda: ks.add(b"l", deque()),
                 lambda: ks.touch(b"l"), lambda: ks.set_expire(b"a", NOW + 5),
                 lambda: ks.persist(b"a"), lambda: ks.delete(b"a")]
        for step in steps:
            before = ks.dirty
            step()
            self.assertEqual(ks.dirty, before + 1)
        ks.touch(b"l", 5)
        self.assertEqual(ks.dirty, len(steps) + 5)

    def test_no_ops_leave_dirty_alone(self):
        ks = self.ks
        ks.set(b"a", b"1")
        before = ks.dirty
        ks.delete(b"missing")
        ks.persist(b"a")
        ks.lookup(b"missing")
        self.assertEqual(ks.dirty, before)

    def test_per_slot_index(self):
        ks = self.ks
        tagged = [b"{user1}:%d" % i for i in range(50)]
        for key in tagged + [b"other"]:
            ks.set(key, b"v")
        slot = keyslot(b"user1")
        self.assertEqual(ks.count_in_slot(slot), 50)
        self.assertEqual(ks.count_in_slot(keyslot(b"other")), 1)
        self.assertEqual(ks.keys_in_slot(slot, 10), tagged[:10])
        self.assertEqual(ks.keys_in_slot(slot, 100), tagged)
        ks.delete(tagged[0])
        self.assertEqual(ks.count_in_slot(slot), 49)
        self.assertEqual(sum(ks.count_in_slot(s) for s in range(SLOTS)),
                         len(ks))

    def test_set_drops_the_ttl_unless_kept(self):
        ks = self.ks
        ks.set(b"a", b"1")
        ks.set_expire(b"a", NOW + 100)
        ks.set(b"a", b"2", keepttl=True)
        self.assertEqual(ks.expire_time(b"a"), NOW + 100)
        ks.set(b"a", b"3")
        self.assertEqual(ks.expire_time(b"a"), None)

    def test_flush(self):
        ks = self.ks
        for i in range(10):
            ks.set(b"k%d" % i, b"v")
        ks.set_expire(b"k1", NOW + 5)
        before = ks.dirty
        self.assertEqual(ks.flush(), 10)
        self.assertEqual((len(ks), ks.expires, ks.dirty), (0, {}, before + 10))
        self.assertEqual(list(ks.iter_keys()), [])

    def test_delete_slot(self):
        ks = self.ks
        for i in range(5):
            ks.set(b"{a}%d" % i, b"v")
            ks.set_expire(b"{a}%d" % i, NOW + 10)
        ks.set(b"b", b"v")
        before = ks.dirty
        self.assertEqual(ks.delete_slot(keyslot(b"a")), 5)
        self.assertEqual((len(ks), ks.dirty), (1, before + 5))
        self.assertEqual(ks.expires, {})
        self.assertEqual(list(ks.iter_keys()), [b"b"])
        # Stale heap entries of the dropped keys expire nothing later.
        ks.tick(NOW + 20)
        self.assertEqual(ks.expire_cycle(), 0)
        self.assertEqual(len(ks), 1)

    def test_items_and_iter_keys_cover_everything(self):
        ks = self.ks
        data = {b"k%d" % i: b"%d" % i for i in range(100)}
        for key, value in data.items():
            ks.set(key, value)
        self.assertEqual(dict(ks.items()), data)
        self.assertEqual(sorted(ks.iter_keys()), sorted(data))


class ExpiryTests(KeyspaceTestCase):
    def test_ttl_and_deadline(self):
        ks = self.ks
        ks.set(b"a", b"v")
        self.assertEqual((ks.ttl(b"a"), ks.expire_time(b"a")), (None, None))
        ks.set_expire(b"a", NOW + 1500)
        self.assertEqual((ks.ttl(b"a"), ks.expire_time(b"a")),
                         (1500, NOW + 1500))
        self.assertFalse(ks.is_expired(b"a"))
        ks.tick(NOW + 1500)
        self.assertTrue(ks.is_expired(b"a"))
        self.assertEqual(ks.ttl(b"a"), 0)

    def test_lazy_expiry_on_lookup(self):
        ks = self.ks
        ks.set(b"a", b"v")
        ks.set_expire(b"a", NOW + 10)
        ks.tick(NOW + 9)
        self.assertEqual(ks.lookup(b"a"), b"v")
        ks.tick(NOW + 10)
        before = ks.dirty
        self.assertEqual(ks.lookup(b"a"), None)
        self.assertEqual((len(ks), ks.expires, self.expired), (0, {}, [b"a"]))
        # An expiry is not a write of whoever looked the key up.
        self.assertEqual(ks.dirty, before)

    def test_persist(self):
        ks = self.ks
        ks.set(b"a", b"v")
        ks.set_expire(b"a", NOW + 10)
        self.assertTrue(ks.persist(b"a"))
        self.assertFalse(ks.persist(b"a"))
        ks.tick(NOW + 20)
        self.assertEqual(ks.expire_cycle(), 0)
        self.assertEqual(ks.lookup(b"a"), b"v")

    def test_expire_cycle_removes_due_keys_in_deadline_order(self):
        ks = self.ks
        deadlines = list(range(1, 21))
        random.Random(7).shuffle(deadlines)
        for n in deadlines:
            ks.set(b"k%d" % n, b"v")
            ks.set_expire(b"k%d" % n, NOW + n)
        ks.set(b"forever", b"v")
        ks.tick(NOW + 10)
        self.assertEqual(ks.expire_cycle(), 10)
        self.assertEqual(self.expired, [b"k%d" % n for n in range(1, 11)])
        self.assertEqual(len(ks), 11)

    def test_expire_cycle_limit(self):
        ks = self.ks
        for n in range(10):
            ks.set(b"k%d" % n, b"v")
            ks.set_expire(b"k%d" % n, NOW + n)
        ks.tick(NOW + 100)
        self.assertEqual(ks.expire_cycle(limit=4), 4)
        self.assertEqual(ks.expire_cycle(limit=4), 4)
        self.assertEqual(ks.expire_cycle(limit=4), 2)
        self.assertEqual(len(ks), 0)

    def test_expire_cycle_skips_stale_deadlines(self):
        ks = self.ks
        ks.set(b"moved", b"v")
        ks.set_expire(b"moved", NOW + 10)
        ks.set_expire(b"moved", NOW + 30)      # a later deadline
        ks.set(b"replaced", b"v")
        ks.set_expire(b"replaced", NOW + 10)
        ks.set(b"replaced", b"w")              # SET drops the TTL
        ks.set(b"deleted", b"v")
        ks.set_expire(b"deleted", NOW + 10)
        ks.delete(b"deleted")
        ks.set(b"deleted", b"again")
        ks.tick(NOW + 20)
        self.assertEqual(ks.expire_cycle(), 0)
        self.assertEqual(len(ks), 3)
        ks.tick(NOW + 30)
        self.assertEqual(ks.expire_cycle(), 1)
        self.assertEqual(self.expired, [b"moved"])

    def test_heap_is_rebuilt_when_stale_entries_pile_up(self):
        ks = self.ks
        ks.set(b"a", b"v")
        for n in range(5000):
            ks.set_expire(b"a", NOW + 1000 + n)
            self.assertLessEqual(len(ks._heap), 2 * len(ks.expires) + 1025)
        ks.tick(NOW + 1000 + 4998)
        self.assertEqual(ks.expire_cycle(), 0)
        ks.tick(ks.now + 1)
        self.assertEqual(ks.expire_cycle(), 1)
        self.assertEqual(self.expired, [b"a"])

    def test_replica_mode_reports_but_keeps_expired_keys(self):
        ks = self.ks
        ks.replica_mode = True
        ks.set(b"a", b"v")
        ks.set_expire(b"a", NOW)
        self.assertEqual(ks.lookup(b"a"), None)
        self.assertEqual(ks.expire_cycle(), 0)
        self.assertEqual((len(ks), self.expired), (1, []))


class ScanTests(KeyspaceTestCase):
    def scan_all(self, count):
        cursor, seen, calls = 0, [], 0
        while True:
            cursor, keys = self.ks.scan(cursor, count)
            seen.extend(keys)
            calls += 1
            if cursor == 0:
                return seen, calls

    def test_scan_covers_every_key_once(self):
        keys = [b"key:%d" % i for i in range(3000)]
        for key in keys:
            self.ks.set(key, b"v")
        for count in (1, 10, 1000):
            seen, _ = self.scan_all(count)
            self.assertEqual(sorted(seen), sorted(keys))

    def test_scan_returns_whole_slots(self):
        for i in range(30):
            self.ks.set(b"{tag}%d" % i, b"v")
        slot = keyslot(b"tag")
        self.assertEqual(self.ks.scan(slot, 5), (slot + 1, [
            b"{tag}%d" % i for i in range(30)]))

    def test_scan_of_an_empty_keyspace_ends_at_once(self):
        self.assertEqual(self.ks.scan(0, 10), (0, []))
        self.assertEqual(self.ks.scan(SLOTS - 50, 10), (0, []))
        self.assertEqual(self.ks.scan(2**64 - 1, 10), (0, []))

    def test_keys_present_throughout_are_returned_despite_changes(self):
        stable = [b"stable:%d" % i for i in range(500)]
        for key in stable:
            self.ks.set(key, b"v")
        cursor, seen, n = 0, set(), 0
        while True:
            cursor, keys = self.ks.scan(cursor, 20)
            seen.update(keys)
            self.ks.set(b"new:%d" % n, b"v")   # writes during the scan
            self.ks.delete(b"new:%d" % (n - 3))
            n += 1
            if cursor == 0:
                break
        self.assertLessEqual(set(stable), seen)


class RandomKeyTests(KeyspaceTestCase):
    def test_empty(self):
        self.assertEqual(self.ks.random_key(), None)

    def test_returns_live_keys(self):
        keys = {b"k%d" % i for i in range(50)} | {b"{t}%d" % i
                                                 for i in range(100)}
        for key in keys:
            self.ks.set(key, b"v")
        picked = {self.ks.random_key() for _ in range(200)}
        self.assertLessEqual(picked, keys)
        self.assertGreater(len(picked), 1)

    def test_expired_keys_are_removed_not_returned(self):
        self.ks.set(b"live", b"v")
        for i in range(20):
            self.ks.set(b"dead%d" % i, b"v")
            self.ks.set_expire(b"dead%d" % i, NOW)
        for _ in range(20):
            self.assertEqual(self.ks.random_key(), b"live")

    def test_only_expired_keys(self):
        self.ks.set(b"dead", b"v")
        self.ks.set_expire(b"dead", NOW)
        self.assertEqual(self.ks.random_key(), None)
        self.assertEqual((len(self.ks), self.expired), (0, [b"dead"]))
