"""Keyspace notifications (rcluster/notify.py), sans-IO."""
import hiredis
from twisted.trial.unittest import TestCase

from rcluster import notify as N
from tests.protocol.helpers import NOW, ServerTestCase


class FlagsTests(TestCase):
    def test_string_to_flags(self):
        self.assertEqual(N.string_to_flags(""), 0)
        self.assertEqual(N.string_to_flags("KEA"),
                         N.KEYSPACE | N.KEYEVENT | N.ALL)
        self.assertEqual(N.string_to_flags("g$lshzxetmdnKE"),
                         N.ALL | N.KEY_MISS | N.NEW | N.KEYSPACE | N.KEYEVENT)
        self.assertEqual(N.string_to_flags("KEq"), -1)

    def test_flags_to_string(self):
        # A hides n (as Redis); K, E and m always come last in that order.
        for given, shown in (("KEA", "AKE"), ("AnKE", "AKE"),
                             ("Egx$", "g$xE"), ("mK", "Km"),
                             ("nd", "dn"), ("g$lshzxetd", "A"),
                             ("et", "et"), ("", "")):
            self.assertEqual(N.flags_to_string(N.string_to_flags(given)),
                             shown, given)

    def test_all_excludes_new_and_miss(self):
        self.assertFalse(N.ALL & N.NEW)
        self.assertFalse(N.ALL & N.KEY_MISS)


class NotifyTests(ServerTestCase):
    directives = {"notify_keyspace_events": "KEA"}

    def setUp(self):
        super().setUp()
        self.sub = self.connect()
        self.raw("PSUBSCRIBE", "__key*__:*", client=self.sub)
        self.pending(self.sub)

    def events(self):
        """(channel, message) pairs the subscriber got since last asked."""
        data = self.pending(self.sub)
        out = []
        reader = hiredis.Reader()
        reader.feed(data)
        while True:
            msg = reader.gets()
            if msg is False:
                return out
            self.assertEqual(msg[0], b"pmessage")
            out.append((msg[2], msg[3]))

    def test_set_and_del(self):
        self.call("SET", "k", "v")
        self.call("DEL", "k", "nokey")
        self.assertEqual(self.events(), [
            (b"__keyspace@0__:k", b"set"), (b"__keyevent@0__:set", b"k"),
            (b"__keyspace@0__:k", b"del"), (b"__keyevent@0__:del", b"k")])

    def test_disabled_by_default_and_by_config_set(self):
        self.call("CONFIG", "SET", "notify-keyspace-events", "")
        self.assertEqual(self.server.notify_flags, 0)
        self.call("SET", "k", "v")
        self.assertEqual(self.events(), [])

    def test_only_keyevent_channel(self):
        self.call("CONFIG", "SET", "notify-keyspace-events", "El")
        self.call("SET", "k", "v")
        self.call("RPUSH", "l", "a")
        self.assertEqual(self.events(), [(b"__keyevent@0__:rpush", b"l")])

    def test_container_emptied_raises_del_after_event(self):
        self.call("SADD", "s", "a")
        self.call("SREM", "s", "a")
        self.assertEqual([m for ch, m in self.events()
                          if ch.startswith(b"__keyspace")],
                         [b"sadd", b"srem", b"del"])
        self.call("HSET", "h", "f", "v")
        self.call("HDEL", "h", "f")
        self.assertEqual(self.events(), [
            (b"__keyspace@0__:h", b"hset"), (b"__keyevent@0__:hset", b"h"),
            (b"__keyspace@0__:h", b"hdel"), (b"__keyevent@0__:hdel", b"h"),
            (b"__keyspace@0__:h", b"del"), (b"__keyevent@0__:del", b"h")])

    def test_lazy_and_active_expiry(self):
        self.call("SET", "a", "v", "PX", "100")
        self.call("SET", "b", "v", "PX", "100")
        self.events()
        self.clock.advance(1)
        self.server.keyspace.tick(int((NOW + 1) * 1000))
        self.assertIsNone(self.call("GET", "a"))        # lazy
        self.assertEqual(self.events(), [
            (b"__keyspace@0__:a", b"expired"),
            (b"__keyevent@0__:expired", b"a")])
        self.server.cron()                              # active
        self.assertEqual(self.events(), [
            (b"__keyspace@0__:b", b"expired"),
            (b"__keyevent@0__:expired", b"b")])

    def test_new_and_keymiss(self):
        self.call("CONFIG", "SET", "notify-keyspace-events", "Enm")
        self.call("SET", "k", "v")
        self.call("SET", "k", "w")      # not new
        self.call("GET", "nokey")
        self.call("HGET", "nohash", "f")
        self.assertEqual(self.events(), [
            (b"__keyevent@0__:new", b"k"),
            (b"__keyevent@0__:keymiss", b"nokey"),
            (b"__keyevent@0__:keymiss", b"nohash")])
        self.call("CONFIG", "SET", "notify-keyspace-events", "E$")
        self.assertIsNone(self.server.keyspace.on_new)

    def test_config_get_shows_redis_format(self):
        self.call("CONFIG", "SET", "notify-keyspace-events", "KEAn")
        self.assertEqual(self.call("CONFIG", "GET", "notify-keyspace-events"),
                         [b"notify-keyspace-events", b"AKE"])
        self.assertTrue(self.server.notify_flags & N.NEW)
        self.assertTrue(str(self.call("CONFIG", "SET",
                                      "notify-keyspace-events", "Q"))
                        .startswith("ERR"))

    def test_events_stay_local(self):
        # Keyspace events never reach the cluster hook (bus publishing).
        sent = []
        self.server.pubsub.on_publish = lambda *a: sent.append(a)
        self.call("SET", "k", "v")
        self.assertEqual(sent, [])
        self.assertEqual(len(self.events()), 2)

    def test_inside_multi_and_lua(self):
        self.call("MULTI")
        self.call("INCR", "n")
        self.call("EXPIRE", "n", "100")
        self.call("EXEC")
        self.call("EVAL", "redis.call('LPUSH', KEYS[1], 'a')", 1, "l")
        self.assertEqual([m for ch, m in self.events()
                          if ch.startswith(b"__keyevent")],
                         [b"n", b"n", b"l"])

