from twisted.trial.unittest import TestCase

from rcluster.cluster.keyslot import keyslot


class KeyslotTests(TestCase):
    def test_known_slots(self):
        # Values from Redis's CLUSTER KEYSLOT.
        self.assertEqual(keyslot(b"foo"), 12182)
        self.assertEqual(keyslot(b"bar"), 5061)
        self.assertEqual(keyslot(b"123456789"), 0x31C3 & 16383)

    def test_hash_tags(self):
        self.assertEqual(keyslot(b"{user1000}.following"), keyslot(b"user1000"))
        self.assertEqual(keyslot(b"foo{}{bar}"), keyslot(b"foo{}{bar}"))
        self.assertNotEqual(keyslot(b"foo{}{bar}"), keyslot(b"bar"))
        self.assertEqual(keyslot(b"foo{{bar}}zap"), keyslot(b"{bar"))
        self.assertEqual(keyslot(b"foo{bar}{zap}"), keyslot(b"bar"))
        self.assertEqual(keyslot(b"{}"), keyslot(b"{}"))
