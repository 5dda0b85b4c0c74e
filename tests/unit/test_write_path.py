"""The write path (rcluster/propagation.py): what each command hands the
sinks (AOF, replicas), exactly.  The expected streams were recorded from
redis-server 7.0.15 with ``redis-cli --replica`` for the same commands."""
from rcluster.commands.table import Command
from tests.protocol.helpers import NOW, ServerTestCase

MS = NOW * 1000


class RewriteTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.sent = self.capture_propagation()

    def ops(self, *commands, client=None):
        """Run commands; the ops they propagated (and forget them)."""
        for command in commands:
            self.call(*command.split(), client=client)
        sent, self.sent[:] = list(self.sent), []
        return sent

    def test_plain_writes_propagate_as_called(self):
        self.assertEqual(self.ops("set k v", "get k", "rpush l a b"),
                         [[b"set", b"k", b"v"], [b"rpush", b"l", b"a", b"b"]])

    def test_nothing_written_nothing_propagated(self):
        self.call("SET", "k", "v")
        self.sent.clear()
        self.assertEqual(self.ops("set k x nx", "getex k", "spop none",
                                  "expire none 10", "del none"), [])

    def test_set_relative_expiry_becomes_pxat(self):
        for option, value, deadline in (("ex", "100", MS + 100_000),
                                        ("px", "1500", MS + 1500),
                                        ("exat", str(NOW + 7), MS + 7000),
                                        ("pxat", str(MS + 9), MS + 9)):
            self.assertEqual(self.ops(f"set k v {option} {value}"),
                             [[b"SET", b"k", b"v", b"PXAT", b"%d" % deadline]])
        self.assertEqual(self.ops("setex k 10 v"),
                         [[b"SET", b"k", b"v", b"PXAT", b"%d" % (MS + 10_000)]])
        self.assertEqual(self.ops("psetex k 10 v"),
                         [[b"SET", b"k", b"v", b"PXAT", b"%d" % (MS + 10)]])
        # NX/XX/GET are decided already: the stream carries the result.
        self.assertEqual(self.ops("set n v nx get ex 1"),
                         [[b"SET", b"n", b"v", b"PXAT", b"%d" % (MS + 1000)]])

    def test_set_get_drops_get(self):
        self.assertEqual(self.ops("set b 1 get", "set b 2 get keepttl"),
                         [[b"set", b"b", b"1"], [b"set", b"b", b"2", b"keepttl"]])

    def test_getex_getdel_getset(self):
        self.call("SET", "a", "1")
        self.sent.clear()
        self.assertEqual(self.ops("getex a ex 5"),
                         [[b"PEXPIREAT", b"a", b"%d" % (MS + 5000)]])
        self.assertEqual(self.ops("getex a persist", "getex a persist"),
                         [[b"PERSIST", b"a"]])
        self.assertEqual(self.ops(f"getex a pxat {MS - 1}"), [[b"DEL", b"a"]])
        self.call("SET", "b", "1")
        self.sent.clear()
        self.assertEqual(self.ops("getdel b", "getset g v"),
                         [[b"DEL", b"b"], [b"SET", b"g", b"v"]])

    def test_expire_family_becomes_pexpireat(self):
        self.call("SET", "k", "v")
        self.sent.clear()
        self.assertEqual(
            self.ops("expire k 10", "pexpire k 20 lt", f"expireat k {NOW + 30}",
                     f"pexpireat k {MS + 40}"),
            [[b"PEXPIREAT", b"k", b"%d" % (MS + 10_000)],
             [b"PEXPIREAT", b"k", b"%d" % (MS + 20), b"lt"],
             [b"PEXPIREAT", b"k", b"%d" % (MS + 30_000)],
             [b"PEXPIREAT", b"k", b"%d" % (MS + 40)]])

    def test_expire_in_the_past_is_a_del(self):
        self.call("SET", "e", "1")
        self.sent.clear()
        self.assertEqual(self.ops("expire e -1"), [[b"DEL", b"e"]])
        self.call("CONFIG", "SET", "lazyfree-lazy-expire", "yes")
        self.call("SET", "e", "1")
        self.sent.clear()
        self.assertEqual(self.ops("pexpireat e 1"), [[b"UNLINK", b"e"]])

    def test_spop_becomes_srem(self):
        self.call("SADD", "s", *range(10))
        self.sent.clear()
        [op] = self.ops("spop s")
        self.assertEqual(op[:2], [b"SREM", b"s"])
        popped = self.ops("spop s 2")
        self.assertEqual(popped[0], [b"MULTI"])
        self.assertEqual(popped[-1], [b"EXEC"])
        self.assertEqual([op[:2] for op in popped[1:-1]], [[b"SREM", b"s"]] * 2)
        self.assertEqual(self.ops("spop s 100"), [[b"DEL", b"s"]])

    def test_float_increments_become_sets(self):
        self.assertEqual(self.ops("incrbyfloat f 1.5", "hincrbyfloat h f 2.5"),
                         [[b"SET", b"f", b"1.5", b"KEEPTTL"],
                          [b"HSET", b"h", b"f", b"2.5"]])

    def test_pops_served_at_once_become_plain_pops(self):
        self.call("RPUSH", "l", "a", "b", "c", "d")
        self.call("ZADD", "z", 1, "a", 2, "b", 3, "c")
        self.sent.clear()
        self.assertEqual(
            self.ops("blpop l 0", "brpop l 0", "lmpop 1 l left count 5",
                     "bzpopmin z 0", "bzpopmax z 0", "bzmpop 0 1 z min count 9"),
            [[b"LPOP", b"l"], [b"RPOP", b"l"], [b"LPOP", b"l", b"2"],
             [b"ZPOPMIN", b"z"], [b"ZPOPMAX", b"z"], [b"ZPOPMIN", b"z", b"1"]])
        self.call("RPUSH", "src", "x", "y")
        self.sent.clear()
        self.assertEqual(self.ops("blmove src dst left right 0",
                                  "brpoplpush src dst 0"),
                         [[b"LMOVE", b"src", b"dst", b"left", b"right"],
                          [b"RPOPLPUSH", b"src", b"dst"]])

    def test_blocked_pop_served_later_becomes_a_plain_pop(self):
        waiter = self.connect()
        self.raw("BLPOP", "q", 0, client=waiter)
        self.raw("BLMPOP", 0, 1, "q2", "right", "count", 3,
                 client=self.connect())
        self.assertEqual(self.ops("rpush q x", "rpush q2 a b"),
                         [[b"rpush", b"q", b"x"], [b"LPOP", b"q"],
                          [b"rpush", b"q2", b"a", b"b"], [b"RPOP", b"q2", b"2"]])

    def test_transaction_wrapped_once(self):
        """Expiry, SPOP and INCRBYFLOAT inside MULTI: one MULTI ... EXEC."""
        self.call("SADD", "s", "m")
        self.sent.clear()
        ops = self.ops("multi", "set a 1 ex 10", "get a", "spop s",
                       "incrbyfloat f 0.5", "expire a 20", "exec")
        self.assertEqual(ops, [
            [b"MULTI"],
            [b"SET", b"a", b"1", b"PXAT", b"%d" % (MS + 10_000)],
            [b"SREM", b"s", b"m"],
            [b"SET", b"f", b"0.5", b"KEEPTTL"],
            [b"PEXPIREAT", b"a", b"%d" % (MS + 20_000)],
            [b"EXEC"]])

    def test_transaction_with_one_write_is_not_wrapped(self):
        self.assertEqual(self.ops("multi", "set x 1", "get x", "exec"),
                         [[b"set", b"x", b"1"]])
        self.assertEqual(self.ops("multi", "get x", "exec"), [])

    def test_lazy_expiry_is_a_del_before_the_command(self):
        self.call("SET", "p", "1", "PX", "1")
        self.clock.advance(1)
        self.sent.clear()
        self.assertEqual(self.ops("get p"), [[b"DEL", b"p"]])
        self.call("SET", "p", "1", "PX", "1")
        self.clock.advance(1)
        self.sent.clear()
        # Within a write, both go in one unit (Redis 7.0 wraps them).
        self.assertEqual(self.ops("incr p"), [[b"MULTI"], [b"DEL", b"p"],
                                              [b"incr", b"p"], [b"EXEC"]])

    def test_active_expiry_dels_go_alone(self):
        self.call("SET", "a", "1", "PX", "100")
        self.call("SET", "b", "1", "PX", "100")
        self.call("CONFIG", "SET", "lazyfree-lazy-expire", "yes")
        self.sent.clear()
        self.clock.advance(1)
        self.server.cron()
        self.assertEqual(sorted(self.sent), [[b"UNLINK", b"a"], [b"UNLINK", b"b"]])

    def test_publish_propagates_in_standalone_mode(self):
        self.assertEqual(self.ops("publish ch m"), [[b"publish", b"ch", b"m"]])

    def test_flushall_propagates_even_when_empty(self):
        self.assertEqual(self.ops("flushall", "flushall"),
                         [[b"flushall"], [b"flushall"]])

    def test_nested_call_propagates_once(self):
        """A command that runs another on its own client (as EXEC and
        scripts do) propagates the inner effects once, not itself."""
        server = self.server

        def twice(c, argv):
            incr = server.table.get("incr")
            server.call(c, incr, [b"INCR", argv[1]], send=False)
            server.call(c, incr, [b"INCR", argv[1]], send=False)
            from rcluster.commands.common import no_propagation
            no_propagation(c)
            return b"done"
        server.table.add(Command("twice", twice, 2, frozenset({"write"})))
        self.assertEqual(self.ops("twice n"), [[b"MULTI"], [b"INCR", b"n"],
                                               [b"INCR", b"n"], [b"EXEC"]])
        self.assertEqual(self.call("GET", "n"), b"2")

    def test_unused_rewrite_is_forgotten(self):
        """A handler that rewrote and then wrote nothing leaves no rewrite
        behind for the client's next command."""
        from rcluster.commands.common import propagate_as

        def fickle(c, argv):
            propagate_as(c, [b"DEL", b"zzz"])
            return 0
        self.server.table.add(Command("fickle", fickle, 1, frozenset({"write"})))
        self.assertEqual(self.ops("fickle", "set k v"), [[b"set", b"k", b"v"]])


class KeyListenerTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.seen = []
        self.server.write_path.add_key_listener(
            lambda keys, client: self.seen.append(
                (keys, client.id if client is not None else None)))

    def test_writes_expiry_and_flush_reach_listeners(self):
        me = self.proto.client.id
        self.call("MSET", "a", 1, "b", 2)
        self.call("GET", "a")
        self.call("SET", "t", 1, "PX", 1)
        self.clock.advance(1)
        self.call("GET", "t")
        self.call("FLUSHALL")
        self.assertEqual(self.seen, [([b"a", b"b"], me), ([b"t"], me),
                                     ([b"t"], None), (None, me)])

    def test_watch_is_touched_through_the_write_path(self):
        self.call("WATCH", "w")
        self.call("SET", "w", 1, client=self.connect())
        self.call("MULTI")
        self.call("SET", "x", 1)
        self.assertEqual(self.raw("EXEC"), b"*-1\r\n")


class DebugForPersistenceTests(ServerTestCase):
    directives = {"enable_debug_command": "yes"}

    def test_pause_cron_stops_active_expiry(self):
        self.call("SET", "k", 1, "PX", 100)
        self.assertEqual(self.call("DEBUG", "PAUSE-CRON", 1), b"OK")
        self.clock.advance(1)
        self.server.cron()
        self.assertIn(b"k", self.ks.slots[self.ks_slot(b"k")])
        self.call("DEBUG", "PAUSE-CRON", 0)
        self.server.cron()
        self.assertNotIn(b"k", self.ks.slots[self.ks_slot(b"k")])

    def ks_slot(self, key):
        from rcluster.cluster.keyslot import keyslot
        return keyslot(key)

    def test_htstats(self):
        self.call("SET", "a", 1, "EX", 100)
        text = self.call("DEBUG", "HTSTATS", 0)
        self.assertIn(b"number of elements: 1", text)
        self.assertEqual(self.call("DEBUG", "HTSTATS", 1),
                         "ERR Out of range database")
        self.call("SADD", "s", "x")
        self.assertEqual(self.call("DEBUG", "HTSTATS-KEY", "a"),
                         "ERR The value stored at the specified key is not "
                         "represented using an hash table")
        self.assertEqual(self.call("DEBUG", "HTSTATS-KEY", "nope"),
                         "ERR no such key")

    def test_refusals_are_clear(self):
        for name in ("SEGFAULT", "PANIC"):
            self.assertIn("is refused", self.call("DEBUG", name))
        self.assertTrue(self.call("DEBUG", "JMAP").startswith(
            "ERR unknown subcommand"))
        self.assertIn("not supported",
                      self.call("DEBUG", "REPLYBUFFER", "RESIZING", 0))
        self.assertTrue(self.call("DEBUG", "REPLYBUFFER", "BAD", 0)
                        .startswith("ERR unknown subcommand"))
