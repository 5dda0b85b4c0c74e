"""SORT and SORT_RO (rcluster/commands/sort.py) through a Server on a
MemoryReactorClock, Redis's partial quicksort, and COPY of every value
type.  Expected replies were checked against redis-server 7.0.15; the
integration test (tests/integration/test_geo_sort.py) compares both
servers live."""
import random
from collections import deque
from functools import cmp_to_key

from twisted.trial.unittest import TestCase

from rcluster.commands.keys import duplicate
from rcluster.commands.sort import lookup_pattern, pqsort, sort_get_keys
from tests.protocol.helpers import ServerTestCase


class PqsortTests(TestCase):
    def test_window_matches_a_full_sort(self):
        rng = random.Random(5)

        def cmp(a, b):
            return (a > b) - (a < b)
        for n in (0, 1, 5, 7, 8, 40, 41, 200):
            for _ in range(20):
                items = [rng.randrange(30) for _ in range(n)]
                if not n:
                    pqsort(items, cmp, 0, -1)
                    continue
                low = rng.randrange(n)
                high = rng.randrange(low, n)
                got = list(items)
                pqsort(got, cmp, low, high)
                self.assertEqual(got[low:high + 1],
                                 sorted(items)[low:high + 1])
                self.assertEqual(sorted(got), sorted(items))

    def test_full_range_sorts_everything(self):
        items = list(range(100, 0, -1))
        pqsort(items, lambda a, b: (a > b) - (a < b), 0, 99)
        self.assertEqual(items, sorted(items, key=cmp_to_key(
            lambda a, b: (a > b) - (a < b))))


class SortGetKeysTests(TestCase):
    def test_store_is_found_past_options(self):
        self.assertEqual(sort_get_keys([b"SORT", b"k"]), [1])
        self.assertEqual(sort_get_keys(
            [b"SORT", b"k", b"BY", b"store", b"STORE", b"a", b"LIMIT", b"0",
             b"1", b"store", b"b"]), [1, 10])
        self.assertEqual(sort_get_keys([b"SORT", b"k", b"GET", b"store",
                                        b"x"]), [1])
        self.assertEqual(sort_get_keys([b"SORT", b"k", b"STORE"]), [1])


class SortTests(ServerTestCase):
    def fill(self):
        self.call("RPUSH", "l", 3, 1, 2, 10, -5, 1.5)
        self.call("MSET", "w_3", 1, "w_1", 3, "w_2", 2, "w_10", 0)
        for element, field in ((3, "c"), (1, "a"), (2, "b")):
            self.call("HSET", f"h_{element}", "f", field)

    def test_numeric_alpha_desc_limit(self):
        self.fill()
        self.assertEqual(self.call("SORT", "l"),
                         [b"-5", b"1", b"1.5", b"2", b"3", b"10"])
        self.assertEqual(self.call("SORT", "l", "DESC", "LIMIT", 1, 3),
                         [b"3", b"2", b"1.5"])
        self.assertEqual(self.call("SORT", "l", "ALPHA"),
                         [b"-5", b"1", b"1.5", b"10", b"2", b"3"])
        self.assertEqual(self.call("SORT", "l", "LIMIT", 100, 2), [])
        self.assertEqual(self.call("SORT", "l", "LIMIT", -3, 2),
                         [b"-5", b"1"])
        self.assertEqual(self.call("SORT", "l", "LIMIT", 4, -1),
                         [b"3", b"10"])
        self.assertEqual(self.call("SORT", "nokey"), [])

    def test_by_and_get_patterns(self):
        self.fill()
        self.assertEqual(
            self.call("SORT", "l", "BY", "w_*", "GET", "#", "GET", "h_*->f"),
            [b"-5", None, b"1.5", None, b"10", None, b"3", b"c", b"2", b"b",
             b"1", b"a"])
        self.assertEqual(
            self.call("SORT", "l", "BY", "h_*->f", "ALPHA", "LIMIT", 0, 3),
            [b"10", b"-5", b"1.5"])
        self.assertEqual(self.call("SORT", "l", "BY", "nosort", "DESC",
                                   "LIMIT", 1, 2), [b"-5", b"10"])

    def test_lookup_pattern(self):
        self.fill()
        c = next(iter(self.server.clients.values()))
        self.assertEqual(lookup_pattern(c, b"#", b"x"), b"x")
        self.assertEqual(lookup_pattern(c, b"w_*", b"3"), b"1")
        self.assertEqual(lookup_pattern(c, b"h_*->f", b"3"), b"c")
        self.assertIsNone(lookup_pattern(c, b"h_*->", b"3"))
        self.assertIsNone(lookup_pattern(c, b"w_*->f", b"3"))   # not a hash
        self.assertIsNone(lookup_pattern(c, b"h_*", b"3"))      # not a string
        self.assertIsNone(lookup_pattern(c, b"fixed", b"3"))

    def test_store(self):
        self.fill()
        self.assertEqual(self.call("SORT", "l", "BY", "w_*", "GET", "#",
                                   "GET", "h_*->f", "STORE", "d"), 12)
        self.assertEqual(self.call("LRANGE", "d", 0, -1),
                         [b"-5", b"", b"1.5", b"", b"10", b"", b"3", b"c",
                          b"2", b"b", b"1", b"a"])
        self.assertEqual(self.call("SORT", "nokey", "STORE", "d"), 0)
        self.assertEqual(self.call("EXISTS", "d"), 0)
        self.call("SADD", "s", "b", "a", "c")
        # A set sorted BY nosort into a key is sorted ALPHA (determinism).
        self.assertEqual(self.call("SORT", "s", "BY", "nosort", "STORE",
                                   "d2"), 3)
        self.assertEqual(self.call("LRANGE", "d2", 0, -1), [b"a", b"b", b"c"])

    def test_sorted_sets(self):
        self.call("ZADD", "z", 1, "30", 2, "4", 3, "100")
        self.assertEqual(self.call("OBJECT", "ENCODING", "z"), b"listpack")
        self.assertEqual(self.call("SORT_RO", "z"), [b"4", b"30", b"100"])
        # Redis converts the sorted set to a skiplist to sort it.
        self.assertEqual(self.call("OBJECT", "ENCODING", "z"), b"skiplist")
        self.assertEqual(self.call("SORT", "z", "BY", "nosort", "DESC"),
                         [b"100", b"4", b"30"])

    def test_errors(self):
        self.fill()
        self.call("RPUSH", "bad", "a", "1")
        self.assertEqual(self.call("SORT", "bad"),
                         "ERR One or more scores can't be converted into "
                         "double")
        self.assertEqual(self.call("SORT", "bad", "STORE", "d"),
                         "ERR One or more scores can't be converted into "
                         "double")
        self.assertEqual(self.call("EXISTS", "d"), 0)
        self.assertEqual(self.call("SORT", "l", "GET"), "ERR syntax error")
        self.assertEqual(self.call("SORT", "l", "LIMIT", 1),
                         "ERR syntax error")
        self.assertEqual(self.call("SORT", "l", "LIMIT", "a", 1),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.call("SORT_RO", "l", "STORE", "x"),
                         "ERR syntax error")
        self.call("SET", "str", "x")
        self.assertTrue(self.call("SORT", "str").startswith("WRONGTYPE"))
        # Options are checked before the type.
        self.assertEqual(self.call("SORT", "str", "FOO"), "ERR syntax error")

    def test_numbers_parse_like_strtod(self):
        self.call("RPUSH", "n", " 1", "0x10", "1e3", "inf", "-inf", "", "3")
        self.assertEqual(self.call("SORT", "n"),
                         [b"-inf", b"", b" 1", b"3", b"0x10", b"1e3",
                          b"inf"])
        for bad in ("1 ", "nan", "1e400", "1e-400", "1e-320"):
            self.call("DEL", "m")
            self.call("RPUSH", "m", bad)
            self.assertEqual(self.call("SORT", "m"),
                             "ERR One or more scores can't be converted "
                             "into double", bad)

    def test_cluster_mode_refuses_by_and_get(self):
        self.fill()
        self.server.settings.cluster_enabled = True
        self.server.router = lambda c, cmd, argv: None
        self.assertEqual(self.call("SORT", "l", "BY", "w_*"),
                         "ERR BY option of SORT denied in Cluster mode.")
        self.assertEqual(self.call("SORT_RO", "l", "GET", "#"),
                         "ERR GET option of SORT denied in Cluster mode.")
        self.assertEqual(self.call("SORT", "l", "BY", "nosort", "LIMIT", 0,
                                   2), [b"3", b"1"])

    def test_propagation_and_watch(self):
        self.fill()
        sent = self.capture_propagation()
        self.call("SORT", "l", "STORE", "d")
        self.call("SORT", "l")
        self.call("SORT", "l", "LIMIT", 0, 0, "STORE", "d")
        self.call("SORT", "l", "LIMIT", 0, 0, "STORE", "d")   # no change
        self.assertEqual(sent, [
            [b"SORT", b"l", b"STORE", b"d"],
            [b"SORT", b"l", b"LIMIT", b"0", b"0", b"STORE", b"d"]])
        self.assertEqual(self.exec_watching("d", ("PING",), "SORT", "l",
                                            "STORE", "d"), b"*-1\r\n")
        # The sorted key is only read: a WATCH on it survives.
        self.assertEqual(self.exec_watching("l", ("PING",), "SORT", "l",
                                            "STORE", "d3"),
                         b"*1\r\n+PONG\r\n")

    def test_command_info_and_getkeys(self):
        info = self.call("COMMAND", "INFO", "sort", "sort_ro")
        self.assertEqual(info[0][:6], [b"sort", -2, [b"write", b"denyoom",
                                                     b"movablekeys"], 1, 1, 1])
        self.assertEqual(info[1][:6], [b"sort_ro", -2, [b"readonly",
                                                        b"movablekeys"],
                                       1, 1, 1])
        self.assertEqual(self.call("COMMAND", "GETKEYS", "SORT", "a", "STORE",
                                   "b"), [b"a", b"b"])
        self.assertEqual(self.call("COMMAND", "GETKEYS", "SORT_RO", "a",
                                   "STORE", "b"), [b"a"])


class CopyTests(ServerTestCase):
    def test_duplicate_every_type(self):
        for value in (deque([b"a"]), {b"f": b"v"}, {b"m"},
                      bytearray(b"bits")):
            copy = duplicate(value)
            self.assertEqual(copy, value)
            self.assertIsNot(copy, value)
            self.assertIs(copy.__class__, value.__class__)
        self.assertEqual(duplicate(b"s"), b"s")

    def test_copy_of_a_bytearray_string(self):
        self.ks.set(b"b", bytearray(b"abc"))
        self.assertEqual(self.call("COPY", "b", "c"), 1)
        self.ks.lookup(b"b")[0] = ord("x")
        self.assertEqual(bytes(self.ks.lookup(b"c")), b"abc")
