"""The hash commands (rcluster/commands/hashes.py) through a Server on a
MemoryReactorClock: exact replies and error texts, RESP2/RESP3 shapes,
HINCRBYFLOAT's long double arithmetic and the HSCAN cursor.  Expected bytes
were checked against redis-server 7.0.15."""
from fractions import Fraction

from rcluster.commands.longdouble import (format_long_double,
                                          parse_long_double)
from rcluster.commands.table import CommandError
from tests.protocol.helpers import NOT_INT, WRONGTYPE, ServerTestCase


class SetGetTests(ServerTestCase):
    def test_hset_counts_new_fields(self):
        self.assertEqual(self.raw("HSET", "h", "a", "1", "b", "2"), b":2\r\n")
        self.assertEqual(self.raw("HSET", "h", "a", "9", "c", "3"), b":1\r\n")
        self.assertEqual(self.raw("HSET", "h", "d", "1", "d", "2"), b":1\r\n")
        self.assertEqual(self.ks.lookup(b"h"),
                         {b"a": b"9", b"b": b"2", b"c": b"3", b"d": b"2"})

    def test_hmset_answers_ok(self):
        self.assertEqual(self.raw("HMSET", "h", "a", "1", "b", "2"),
                         b"+OK\r\n")
        self.assertEqual(self.call("HGET", "h", "b"), b"2")

    def test_odd_pairs_are_an_arity_error(self):
        self.assertEqual(self.call("HSET", "h", "a", "1", "b"),
                         "ERR wrong number of arguments for 'hset' command")
        self.assertEqual(self.call("HMSET", "h", "a"),
                         "ERR wrong number of arguments for 'hmset' command")
        self.assertIsNone(self.ks.lookup(b"h"))

    def test_hsetnx(self):
        self.assertEqual(self.raw("HSETNX", "h", "a", "1"), b":1\r\n")
        self.assertEqual(self.raw("HSETNX", "h", "a", "2"), b":0\r\n")
        self.assertEqual(self.call("HGET", "h", "a"), b"1")

    def test_hget_and_hmget(self):
        self.call("HSET", "h", "a", "1", "b", "2")
        self.assertEqual(self.raw("HGET", "h", "a"), b"$1\r\n1\r\n")
        self.assertEqual(self.raw("HGET", "h", "zz"), b"$-1\r\n")
        self.assertEqual(self.raw("HGET", "nokey", "a"), b"$-1\r\n")
        self.assertEqual(self.raw("HMGET", "h", "a", "zz", "b"),
                         b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n")
        self.assertEqual(self.raw("HMGET", "nokey", "a", "b"),
                         b"*2\r\n$-1\r\n$-1\r\n")
        self.resp3()
        self.assertEqual(self.raw("HGET", "h", "zz"), b"_\r\n")
        self.assertEqual(self.raw("HMGET", "h", "zz", "a"),
                         b"*2\r\n_\r\n$1\r\n1\r\n")

    def test_hdel(self):
        self.call("HSET", "h", "a", "1", "b", "2", "c", "3")
        self.assertEqual(self.raw("HDEL", "h", "a", "zz", "b"), b":2\r\n")
        self.assertEqual(self.raw("HDEL", "h", "zz"), b":0\r\n")
        self.assertEqual(self.raw("HDEL", "h", "c", "c"), b":1\r\n")
        self.assertIsNone(self.ks.lookup(b"h"))
        self.assertEqual(self.raw("HDEL", "h", "a"), b":0\r\n")

    def test_sizes_and_membership(self):
        self.call("HSET", "h", "a", "hello", "b", "")
        self.assertEqual(self.call("HLEN", "h"), 2)
        self.assertEqual(self.call("HLEN", "nokey"), 0)
        self.assertEqual(self.call("HSTRLEN", "h", "a"), 5)
        self.assertEqual(self.call("HSTRLEN", "h", "b"), 0)
        self.assertEqual(self.call("HSTRLEN", "h", "zz"), 0)
        self.assertEqual(self.call("HSTRLEN", "nokey", "a"), 0)
        self.assertEqual(self.call("HEXISTS", "h", "b"), 1)
        self.assertEqual(self.call("HEXISTS", "h", "zz"), 0)
        self.assertEqual(self.call("HEXISTS", "nokey", "a"), 0)

    def test_whole_hash_in_insertion_order(self):
        self.call("HSET", "h", "b", "1", "a", "2", "c", "3")
        self.call("HDEL", "h", "a")
        self.call("HSET", "h", "a", "4", "b", "5")
        self.assertEqual(self.call("HKEYS", "h"), [b"b", b"c", b"a"])
        self.assertEqual(self.call("HVALS", "h"), [b"5", b"3", b"4"])
        self.assertEqual(self.raw("HGETALL", "h"),
                         b"*6\r\n$1\r\nb\r\n$1\r\n5\r\n$1\r\nc\r\n$1\r\n3\r\n"
                         b"$1\r\na\r\n$1\r\n4\r\n")
        for command in ("HKEYS", "HVALS", "HGETALL"):
            self.assertEqual(self.raw(command, "nokey"), b"*0\r\n")
        self.resp3()
        self.assertEqual(self.raw("HGETALL", "h"),
                         b"%3\r\n$1\r\nb\r\n$1\r\n5\r\n$1\r\nc\r\n$1\r\n3\r\n"
                         b"$1\r\na\r\n$1\r\n4\r\n")
        self.assertEqual(self.raw("HGETALL", "nokey"), b"%0\r\n")
        self.assertEqual(self.raw("HKEYS", "nokey"), b"*0\r\n")

    def test_every_command_refuses_other_types(self):
        self.call("RPUSH", "l", "x")
        commands = [("HSET", "l", "a", "1"), ("HMSET", "l", "a", "1"),
                    ("HSETNX", "l", "a", "1"), ("HGET", "l", "a"),
                    ("HMGET", "l", "a"), ("HDEL", "l", "a"), ("HLEN", "l"),
                    ("HSTRLEN", "l", "a"), ("HEXISTS", "l", "a"),
                    ("HKEYS", "l"), ("HVALS", "l"), ("HGETALL", "l"),
                    ("HINCRBY", "l", "a", 1), ("HINCRBYFLOAT", "l", "a", 1),
                    ("HRANDFIELD", "l"), ("HRANDFIELD", "l", 2),
                    ("HSCAN", "l", 0)]
        for args in commands:
            self.assertEqual(self.call(*args), WRONGTYPE, args)
        self.assertEqual(self.call("LRANGE", "l", 0, -1), [b"x"])

    def test_writes_touch_watch_and_no_ops_do_not_dirty(self):
        self.call("HSET", "h", "a", "1")
        watcher = self.connect()
        self.call("WATCH", "h", client=watcher)
        dirty = self.ks.dirty
        self.call("HDEL", "h", "zz")
        self.call("HSETNX", "h", "a", "2")
        self.assertEqual(self.ks.dirty, dirty)
        self.call("HSET", "h", "a", "1")    # same value: still a write
        self.assertGreater(self.ks.dirty, dirty)
        self.call("MULTI", client=watcher)
        self.call("HGET", "h", "a", client=watcher)
        self.assertEqual(self.raw("EXEC", client=watcher), b"*-1\r\n")


class IncrementTests(ServerTestCase):
    def test_hincrby(self):
        self.assertEqual(self.raw("HINCRBY", "h", "n", 5), b":5\r\n")
        self.assertEqual(self.raw("HINCRBY", "h", "n", -15), b":-10\r\n")
        self.assertEqual(self.call("HGET", "h", "n"), b"-10")

    def test_hincrby_overflow(self):
        self.call("HSET", "h", "big", 2**63 - 1, "small", -2**63)
        overflow = "ERR increment or decrement would overflow"
        self.assertEqual(self.call("HINCRBY", "h", "big", 1), overflow)
        self.assertEqual(self.call("HINCRBY", "h", "small", -1), overflow)
        self.assertEqual(self.call("HINCRBY", "h", "big", -1), 2**63 - 2)
        self.assertEqual(self.call("HINCRBY", "h", "small", 0), -2**63)

    def test_hincrby_errors(self):
        self.call("HSET", "h", "s", "abc", "sp", " 1", "z", "01")
        for field in ("s", "sp", "z"):
            self.assertEqual(self.call("HINCRBY", "h", field, 1),
                             "ERR hash value is not an integer")
        self.assertEqual(self.call("HINCRBY", "h", "s", "x"), NOT_INT)
        self.assertEqual(self.call("HINCRBY", "h", "s", 2**63), NOT_INT)
        # The increment is parsed before the key is looked up...
        self.call("SET", "str", "x")
        self.assertEqual(self.call("HINCRBY", "str", "f", "x"), NOT_INT)
        # ...and a failure creates nothing.
        self.assertEqual(self.call("HINCRBY", "nokey", "f", "x"), NOT_INT)
        self.assertIsNone(self.ks.lookup(b"nokey"))

    def test_hincrbyfloat_computes_in_long_double(self):
        cases = [("c", "0.1", b"0.1"), ("c", "0.2", b"0.3"),
                 ("f", "10.50", b"10.5"), ("f", "0.1", b"10.6"),
                 ("f", "-5", b"5.6"),
                 ("f", "-5.0e3", b"-4994.39999999999999991"),
                 ("e", "5.0e3", b"5000"), ("e", "2.0e2", b"5200"),
                 ("t", "1e-20", b"0"), ("u", "-1e-20", b"0"),
                 ("v", "-0", b"0"), ("w", "+.5", b"0.5"), ("x", "5.", b"5"),
                 # "%.17Lf" rounds exact ties to even.
                 ("y", "3.814697265625e-06", b"0.00000381469726562"),
                 ("z", "1.1444091796875e-05", b"0.00001144409179688"),
                 ("big", "123456789012345678901234567890",
                  b"123456789012345678899921813504")]
        for field, delta, expected in cases:
            reply = self.raw("HINCRBYFLOAT", "h", field, delta)
            self.assertEqual(reply, b"$%d\r\n%s\r\n" % (len(expected),
                                                        expected),
                             (field, delta))
        self.assertEqual(self.call("HGET", "h", "c"), b"0.3")

    def test_hincrbyfloat_range(self):
        huge = self.call("HINCRBYFLOAT", "h", "n", "1e4932")
        self.assertEqual(len(huge), 4933)
        self.assertTrue(huge.startswith(b"100000000000000000000601894938"))
        self.assertEqual(self.call("HINCRBYFLOAT", "h", "n", "1e4932"),
                         "ERR increment would produce NaN or Infinity")
        for delta in ("1e4933", "1e-5000", "1e999999999999",
                      "1e99999999999999999999999"):
            self.assertEqual(self.call("HINCRBYFLOAT", "h", "m", delta),
                             "ERR value is not a valid float")
        # Subnormal long doubles are accepted.
        self.assertEqual(self.call("HINCRBYFLOAT", "h", "m", "1e-4950"), b"0")

    def test_hincrbyfloat_errors(self):
        self.call("HSET", "h", "s", "abc", "sp", " 2", "inf", "inf")
        for field in ("s", "sp"):
            self.assertEqual(self.call("HINCRBYFLOAT", "h", field, 1),
                             "ERR hash value is not a float")
        self.assertEqual(self.call("HINCRBYFLOAT", "h", "inf", 1),
                         "ERR increment would produce NaN or Infinity")
        for delta in ("abc", "nan", " 1", "1 ", "1_0", ".", "1e", ""):
            self.assertEqual(self.call("HINCRBYFLOAT", "h", "f", delta),
                             "ERR value is not a valid float", delta)
        for delta in ("inf", "-Infinity"):
            self.assertEqual(self.call("HINCRBYFLOAT", "h", "f", delta),
                             "ERR value is NaN or Infinity")
        self.assertEqual(self.call("HINCRBYFLOAT", "nokey", "f", "x"),
                         "ERR value is not a valid float")
        self.assertIsNone(self.ks.lookup(b"nokey"))

    def test_long_double_helpers(self):
        self.assertEqual(parse_long_double(b"1.5e3", "E"), Fraction(1500))
        # 0.1 rounded to a 64-bit significand, not to a double's 53 bits.
        self.assertEqual(parse_long_double(b"0.1", "E"),
                         Fraction(14757395258967641293, 2 ** 67))
        self.assertEqual(format_long_double(Fraction(-1, 2)), b"-0.5")
        self.assertEqual(format_long_double(Fraction(10 ** 30)),
                         b"1" + b"0" * 30)
        with self.assertRaises(CommandError):
            parse_long_double(b"1" * 5120, "E")


class RandomFieldTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.fields = {b"a": b"1", b"b": b"2", b"c": b"3", b"d": b"4"}
        self.call("HSET", "h", *[x for kv in self.fields.items() for x in kv])
        self.call("HSET", "one", "f", "v")

    def test_single_field(self):
        for _ in range(10):
            self.assertIn(self.call("HRANDFIELD", "h"), self.fields)
        self.assertEqual(self.raw("HRANDFIELD", "one"), b"$1\r\nf\r\n")
        self.assertEqual(self.raw("HRANDFIELD", "nokey"), b"$-1\r\n")
        self.resp3()
        self.assertEqual(self.raw("HRANDFIELD", "nokey"), b"_\r\n")

    def test_positive_count_gives_distinct_fields(self):
        for count in (1, 2, 3):
            reply = self.call("HRANDFIELD", "h", count)
            self.assertEqual(len(set(reply)), count)
            self.assertLessEqual(set(reply), set(self.fields))
        # As many as the hash or more: the whole hash, in its order.
        self.assertEqual(self.call("HRANDFIELD", "h", 4), list(self.fields))
        self.assertEqual(self.call("HRANDFIELD", "h", 99), list(self.fields))

    def test_negative_count_may_repeat(self):
        self.assertEqual(self.raw("HRANDFIELD", "one", -3),
                         b"*3\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf\r\n")
        reply = self.call("HRANDFIELD", "h", -20)
        self.assertEqual(len(reply), 20)
        self.assertLessEqual(set(reply), set(self.fields))

    def test_withvalues_shapes(self):
        self.assertEqual(self.raw("HRANDFIELD", "one", -2, "WITHVALUES"),
                         b"*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\nf\r\n$1\r\nv\r\n")
        flat = self.call("HRANDFIELD", "h", 3, "withvalues")
        pairs = dict(zip(flat[::2], flat[1::2]))
        self.assertEqual(len(pairs), 3)
        for field, value in pairs.items():
            self.assertEqual(self.fields[field], value)
        self.resp3()
        self.assertEqual(self.raw("HRANDFIELD", "one", -2, "WITHVALUES"),
                         b"*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
                         b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n")
        self.assertEqual(self.raw("HRANDFIELD", "one", 5, "WITHVALUES"),
                         b"*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n")

    def test_empty_answers(self):
        self.assertEqual(self.raw("HRANDFIELD", "h", 0), b"*0\r\n")
        self.assertEqual(self.raw("HRANDFIELD", "h", 0, "WITHVALUES"),
                         b"*0\r\n")
        self.assertEqual(self.raw("HRANDFIELD", "nokey", 5), b"*0\r\n")
        self.assertEqual(self.raw("HRANDFIELD", "nokey", -5, "WITHVALUES"),
                         b"*0\r\n")

    def test_errors(self):
        self.assertEqual(self.call("HRANDFIELD", "h", "x"), NOT_INT)
        self.assertEqual(self.call("HRANDFIELD", "h", -2**63),
                         "ERR value is out of range, value must between "
                         "-9223372036854775807 and 9223372036854775807")
        self.assertEqual(self.call("HRANDFIELD", "nokey", 1, "withvalue"),
                         "ERR syntax error")
        self.assertEqual(self.call("HRANDFIELD", "h", 1, "withvalues", "x"),
                         "ERR syntax error")
        self.assertEqual(self.call("HRANDFIELD", "h", 2**62, "withvalues"),
                         "ERR value is out of range")
        self.assertEqual(self.call("HRANDFIELD", "h", -2**62, "withvalues"),
                         "ERR value is out of range")


class ScanTests(ServerTestCase):
    def scan_all(self, key, *options, changes=None):
        """Walk a whole HSCAN iteration; changes(step) may edit the hash."""
        cursor, seen, step = b"0", [], 0
        while True:
            cursor, items = self.call("HSCAN", key, cursor, *options)
            seen += items[::2]
            self.assertEqual(len(items) % 2, 0)
            step += 1
            if changes is not None:
                changes(step)
            if cursor == b"0":
                return seen, step

    def test_small_hash_comes_whole(self):
        self.call("HSET", "h", "a", "1", "b", "2", "c", "3")
        expected = b"*2\r\n$1\r\n0\r\n*6\r\n$1\r\na\r\n$1\r\n1\r\n" \
                   b"$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n"
        self.assertEqual(self.raw("HSCAN", "h", 0), expected)
        # Like a listpack in Redis: cursor and COUNT make no difference.
        self.assertEqual(self.raw("HSCAN", "h", 17, "COUNT", 1), expected)
        self.assertEqual(self.raw("HSCAN", "h", "-1"), expected)
        self.assertEqual(self.call("HSCAN", "h", 0, "MATCH", "[bc]"),
                         [b"0", [b"b", b"2", b"c", b"3"]])

    def test_cursor_and_option_errors(self):
        self.call("HSET", "h", "a", "1")
        self.call("SET", "s", "str")
        for cursor in (" 0", "x", "18446744073709551616", "1x", "+"):
            self.assertEqual(self.call("HSCAN", "h", cursor),
                             "ERR invalid cursor", cursor)
        self.assertEqual(self.call("HSCAN", "h", "", "COUNT", 5),
                         [b"0", [b"a", b"1"]])
        for options, error in ((("COUNT", 0), "ERR syntax error"),
                               (("COUNT", "x"), NOT_INT),
                               (("FOO", 1), "ERR syntax error"),
                               (("MATCH",), "ERR syntax error"),
                               (("TYPE", "string"), "ERR syntax error"),
                               (("NOVALUES",), "ERR syntax error")):
            self.assertEqual(self.call("HSCAN", "h", 0, *options), error)
        # The cursor is checked first, then the key, then the options.
        self.assertEqual(self.call("HSCAN", "nokey", "x"),
                         "ERR invalid cursor")
        self.assertEqual(self.raw("HSCAN", "nokey", 0, "COUNT", 0),
                         b"*2\r\n$1\r\n0\r\n*0\r\n")
        self.assertEqual(self.call("HSCAN", "s", 0, "COUNT", 0), WRONGTYPE)

    def test_big_hash_is_walked_by_cursor(self):
        fields = [b"field:%d" % i for i in range(2000)]
        self.call("HSET", "h", *[x for f in fields for x in (f, f[6:])])
        seen, steps = self.scan_all("h", "COUNT", 100)
        self.assertEqual(sorted(seen), sorted(fields))
        self.assertGreater(steps, 1)

    def test_long_values_leave_the_listpack_form(self):
        self.call("HSET", "h", "a", "x" * 65, "b", "2", "c", "3")
        cursor, items = self.call("HSCAN", "h", 0, "COUNT", 1)
        self.assertNotEqual(cursor, b"0")
        seen, _ = self.scan_all("h", "COUNT", 1)
        self.assertEqual(sorted(seen), [b"a", b"b", b"c"])

    def test_fields_present_throughout_are_returned_once(self):
        fields = [b"f%d" % i for i in range(1000)]
        self.call("HSET", "h", *[x for f in fields for x in (f, b"v")])

        def churn(step):
            self.call("HSET", "h", b"new%d" % step, "v")
            self.call("HDEL", "h", b"f%d" % (900 + step))
        seen, steps = self.scan_all("h", "COUNT", 20, changes=churn)
        self.assertLess(steps, 100)
        for field in fields[:901]:      # never deleted
            self.assertEqual(seen.count(field), 1, field)
        for field in set(seen):         # none twice, even the new ones
            self.assertEqual(seen.count(field), 1, field)

    def test_match_filters_each_step(self):
        fields = [b"%s:%d" % (kind, i) for kind in (b"user", b"item")
                  for i in range(300)]
        self.call("HSET", "h", *[x for f in fields for x in (f, b"v")])
        seen, _ = self.scan_all("h", "MATCH", "user:*", "COUNT", 50)
        self.assertEqual(sorted(seen), sorted(f for f in fields
                                              if f.startswith(b"user:")))
