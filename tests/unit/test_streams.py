"""Streams (rcluster/types/stream.py, rcluster/commands/streams.py,
rcluster/persistence/rdb_stream.py) through a Server on a
MemoryReactorClock: the data structure's node model, replies that depend
on the clock, propagation (what replicas and the AOF get), blocking
XREAD / XREADGROUP (wake-ups, order, timeouts, deleted / replaced keys,
destroyed groups) and the RDB codec.  Replies were checked against
redis-server 7.0.15; tests/integration/test_streams.py compares them live.
"""
from hypothesis import given, settings
from hypothesis import strategies as st
from sortedcontainers import SortedDict
from twisted.trial.unittest import TestCase

from rcluster.persistence.rdb import RdbError, dump_payload, load_payload
from rcluster.types.stream import (MAX64, MAX_ID, EntryTable, Stream,
                                   StreamIDError, decr_id, incr_id,
                                   lp_str_size, parse_id)
from tests.protocol.helpers import NOW, WRONGTYPE, ServerTestCase, parse

MS = NOW * 1000


def _entry(sid, *fields):
    return [sid.encode(), [f.encode() for f in fields]]


class IDTests(ServerTestCase):
    def test_parse(self):
        self.assertEqual(parse_id(b"5"), ((5, 0), True))
        self.assertEqual(parse_id(b"5", MAX64), ((5, MAX64), True))
        self.assertEqual(parse_id(b"5-7"), ((5, 7), True))
        self.assertEqual(parse_id(b"-"), ((0, 0), True))
        self.assertEqual(parse_id(b"+"), (MAX_ID, True))
        self.assertEqual(parse_id(b"5-*", seq_star=True), ((5, 0), False))
        self.assertEqual(parse_id(b"18446744073709551615-1")[0], (MAX64, 1))
        for bad in (b"x", b"5-x", b"-1", b"5-*", b"18446744073709551616",
                    b"1-2-3", b""):
            with self.assertRaises(StreamIDError, msg=bad):
                parse_id(bad)
        with self.assertRaises(StreamIDError):
            parse_id(b"+", strict=True)

    def test_incr_decr(self):
        self.assertEqual(incr_id((1, MAX64)), (2, 0))
        self.assertIsNone(incr_id(MAX_ID))
        self.assertEqual(decr_id((2, 0)), (1, MAX64))
        self.assertIsNone(decr_id((0, 0)))

    def test_listpack_sizes(self):
        self.assertEqual(lp_str_size(b"12"), 2)        # a 7-bit int
        self.assertEqual(lp_str_size(b"-5"), 3)        # a 13-bit int
        self.assertEqual(lp_str_size(b"007"), 5)       # a string
        self.assertEqual(lp_str_size(b"x" * 64), 67)


class StructureTests(ServerTestCase):
    def fill(self, n, key="s"):
        for i in range(1, n + 1):
            self.call("XADD", key, "%d-0" % i, "f", "v")

    def test_nodes_cut_at_max_entries_and_bytes(self):
        self.fill(250)
        stream = self.ks.lookup(b"s")
        self.assertEqual([n.valid for n in stream.nodes.values()],
                         [100, 100, 50])
        self.call("CONFIG", "SET", "stream-node-max-bytes", "200")
        self.call("XADD", "t", "1-0", "f", "x" * 150)
        self.call("XADD", "t", "2-0", "f", "x" * 150)
        self.assertEqual(len(self.ks.lookup(b"t").nodes), 2)

    def test_approximate_trim_drops_whole_nodes(self):
        self.fill(250)
        self.assertEqual(self.call("XTRIM", "s", "MAXLEN", "~", 120), 100)
        self.assertEqual(self.call("XLEN", "s"), 150)
        self.assertEqual(self.call("XTRIM", "s", "MAXLEN", "~", 120), 0)
        self.assertEqual(self.call("XTRIM", "s", "MAXLEN", 120), 30)
        self.assertEqual(self.call("XRANGE", "s", "-", "+", "COUNT", 1),
                         [_entry("131-0", "f", "v")])
        # MINID ~ drops a node whose last entry is below the ID.
        self.assertEqual(self.call("XTRIM", "s", "MINID", "~", "220"), 70)
        self.assertEqual(self.call("XTRIM", "s", "MINID", "~", "250"), 0)
        self.assertEqual(self.call("XTRIM", "s", "MAXLEN", "~", 0,
                                   "LIMIT", 10), 0)
        self.assertEqual(self.call("XTRIM", "s", "MAXLEN", "~", 0), 50)

    def test_xdel_emptying_a_node_removes_it(self):
        self.fill(3)
        self.assertEqual(self.call("XDEL", "s", "1-0", "2-0", "3-0", "4-0"),
                         3)
        stream = self.ks.lookup(b"s")
        self.assertEqual((len(stream), len(stream.nodes)), (0, 0))
        info = dict(zip(*[iter(self.call("XINFO", "STREAM", "s"))] * 2))
        self.assertEqual(info[b"max-deleted-entry-id"], b"3-0")
        self.assertEqual(info[b"recorded-first-entry-id"], b"0-0")
        self.assertEqual(info[b"radix-tree-nodes"], 1)

    def test_copy_is_deep(self):
        self.fill(3)
        self.call("XGROUP", "CREATE", "s", "g", "0")
        self.call("XREADGROUP", "GROUP", "g", "c", "COUNT", 2, "STREAMS",
                  "s", ">")
        self.assertEqual(self.call("COPY", "s", "t"), 1)
        self.assertEqual(self.call("OBJECT", "ENCODING", "t"), b"stream")
        self.assertEqual(self.raw("TYPE", "t"), b"+stream\r\n")
        self.call("XACK", "s", "g", "1-0")
        self.call("XADD", "s", "9-0", "a", "b")
        self.assertEqual(self.call("XLEN", "t"), 3)
        self.assertEqual(self.call("XPENDING", "t", "g")[0], 2)
        self.assertEqual(self.call("XPENDING", "s", "g")[0], 1)
        copied = self.ks.lookup(b"t")
        group = copied.groups[b"g"]
        self.assertIs(group.pel[(1, 0)], group.consumers[b"c"].pel[(1, 0)])

    def test_empty_stream_is_a_key(self):
        self.assertEqual(self.call("XGROUP", "CREATE", "s", "g", "$",
                                   "MKSTREAM"), b"OK")
        self.assertEqual(self.call("EXISTS", "s"), 1)
        self.assertEqual(self.call("XLEN", "s"), 0)


class ClockTests(ServerTestCase):
    def test_auto_ids_follow_the_clock(self):
        self.assertEqual(self.call("XADD", "s", "*", "f", "v"),
                         b"%d-0" % MS)
        self.assertEqual(self.call("XADD", "s", "*", "f", "v"),
                         b"%d-1" % MS)
        self.clock.advance(0.005)
        self.assertEqual(self.call("XADD", "s", "*", "f", "v"),
                         b"%d-0" % (MS + 5))
        self.call("XADD", "s", "%d-0" % (MS + 100), "f", "v")
        self.assertEqual(self.call("XADD", "s", "*", "f", "v"),
                         b"%d-1" % (MS + 100))
        self.assertEqual(self.call("XADD", "s", "%d-*" % (MS + 100), "f",
                                   "v"), b"%d-2" % (MS + 100))

    def test_exhausted(self):
        self.call("XADD", "s", "18446744073709551615-18446744073709551615",
                  "f", "v")
        self.assertEqual(self.call("XADD", "s", "*", "f", "v"),
                         "ERR The stream has exhausted the last possible ID, "
                         "unable to add more items")

    def test_idle_times(self):
        self.call("XADD", "s", "1-0", "f", "v")
        self.call("XADD", "s", "2-0", "f", "v")
        self.call("XGROUP", "CREATE", "s", "g", "0")
        self.call("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">")
        self.clock.advance(1.5)
        self.assertEqual(self.call("XPENDING", "s", "g", "-", "+", 10),
                         [[b"1-0", b"alice", 1500, 1],
                          [b"2-0", b"alice", 1500, 1]])
        self.assertEqual(self.call("XPENDING", "s", "g", "IDLE", 2000, "-",
                                   "+", 10), [])
        self.assertEqual(self.call("XINFO", "CONSUMERS", "s", "g"),
                         [[b"name", b"alice", b"pending", 2, b"idle", 1500]])
        # Only entries idle for 1 s move; the claim resets their idle time.
        self.assertEqual(self.call("XCLAIM", "s", "g", "bob", 1000, "1-0",
                                   "JUSTID"), [b"1-0"])
        self.assertEqual(self.call("XCLAIM", "s", "g", "bob", 1000, "1-0"),
                         [])
        self.assertEqual(self.call("XCLAIM", "s", "g", "bob", 0, "2-0",
                                   "IDLE", 500), [_entry("2-0", "f", "v")])
        self.assertEqual(self.call("XPENDING", "s", "g", "-", "+", 10),
                         [[b"1-0", b"bob", 0, 1], [b"2-0", b"bob", 500, 2]])
        self.assertEqual(self.call("XCLAIM", "s", "g", "carol", 0, "2-0",
                                   "TIME", MS - 100, "RETRYCOUNT", 9,
                                   "JUSTID"), [b"2-0"])
        self.assertEqual(self.call("XPENDING", "s", "g", "-", "+", 10,
                                   "carol"),
                         [[b"2-0", b"carol", 1600, 9]])
        self.assertEqual(self.call("XAUTOCLAIM", "s", "g", "dave", 1000,
                                   "0", "JUSTID"), [b"0-0", [b"2-0"], []])


class PropagationTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.sent = self.capture_propagation()

    def test_xadd_auto_and_partial_ids_propagate_explicit(self):
        self.call("XADD", "s", "*", "f", "v")
        self.call("XADD", "s", "%d-*" % MS, "f", "v")
        self.call("XADD", "s", "%d-5" % MS, "f", "v")
        self.assertEqual(self.sent, [
            [b"XADD", b"s", b"%d-0" % MS, b"f", b"v"],
            [b"XADD", b"s", b"%d-1" % MS, b"f", b"v"],
            [b"XADD", b"s", b"%d-5" % MS, b"f", b"v"]])

    def test_approximate_trims_propagate_exact(self):
        for i in range(1, 251):
            self.call("XADD", "s", "%d-0" % i, "f", "v")
        del self.sent[:]
        self.call("XADD", "s", "MAXLEN", "~", 100, "*", "f", "v")
        self.call("XTRIM", "s", "MINID", "~", "240", "LIMIT", 100)
        self.call("XTRIM", "s", "MINID", "~", "240")       # nothing trimmed
        self.call("XTRIM", "s", "MAXLEN", 10)
        self.assertEqual(self.sent, [
            [b"XADD", b"s", b"MAXLEN", b"=", b"151", b"%d-0" % MS, b"f",
             b"v"],
            [b"XTRIM", b"s", b"MINID", b"=", b"201-0", b"LIMIT", b"100"],
            [b"XTRIM", b"s", b"MAXLEN", b"10"]])

    def test_the_master_link_replays_trims_with_limit(self):
        for i in range(1, 251):
            self.call("XADD", "s", "%d-0" % i, "f", "v")
        self.assertEqual(self.call("XTRIM", "s", "MINID", "=", "201-0",
                                   "LIMIT", 100),
                         "ERR syntax error, LIMIT cannot be used without the "
                         "special ~ option")
        for client in self.server.clients.values():
            client.kind = "master"      # what a replica's master link runs
        self.assertEqual(self.call("XTRIM", "s", "MINID", "=", "201-0",
                                   "LIMIT", 100), 200)

    def test_xreadgroup_propagates_claims(self):
        self.call("XADD", "s", "1-0", "f", "v")
        self.call("XADD", "s", "2-0", "f", "v")
        self.call("XGROUP", "CREATE", "s", "g", "0")
        del self.sent[:]
        self.call("XREAD", "STREAMS", "s", "0")
        self.call("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
        claim = [b"XCLAIM", b"s", b"g", b"c", b"0", None, b"TIME",
                 b"%d" % MS, b"RETRYCOUNT", b"1", b"FORCE", b"JUSTID",
                 b"LASTID"]
        self.assertEqual(self.sent, [
            [b"MULTI"],
            claim[:5] + [b"1-0"] + claim[6:] + [b"1-0"],
            claim[:5] + [b"2-0"] + claim[6:] + [b"2-0"],
            [b"EXEC"]])

    def test_noack_propagates_consumer_and_last_id(self):
        self.call("XADD", "s", "1-0", "f", "v")
        self.call("XGROUP", "CREATE", "s", "g", "0")
        del self.sent[:]
        self.call("XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "s",
                  ">")
        self.assertEqual(self.sent, [
            [b"MULTI"], [b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"c"],
            [b"XGROUP", b"SETID", b"s", b"g", b"1-0", b"ENTRIESREAD", b"1"],
            [b"EXEC"]])

    def test_xclaim_and_xautoclaim(self):
        self.call("XADD", "s", "1-0", "f", "v")
        self.call("XADD", "s", "2-0", "f", "v")
        self.call("XGROUP", "CREATE", "s", "g", "0")
        self.call("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
        self.call("XDEL", "s", "1-0")
        del self.sent[:]
        self.assertEqual(self.call("XAUTOCLAIM", "s", "g", "d", 0, "0",
                                   "JUSTID"), [b"0-0", [b"2-0"], [b"1-0"]])
        self.assertEqual(self.call("XCLAIM", "s", "g", "e", 0, "2-0",
                                   "LASTID", "9-0", "JUSTID"), [b"2-0"])
        self.assertEqual(self.call("XCLAIM", "s", "g", "e", 0, "7-0",
                                   "LASTID", "10-0"), [])
        tail = [b"FORCE", b"JUSTID", b"LASTID"]
        self.assertEqual(self.sent, [
            [b"MULTI"],
            [b"XCLAIM", b"s", b"g", b"c", b"0", b"1-0", b"TIME", b"%d" % MS,
             b"RETRYCOUNT", b"1", *tail, b"2-0"],
            [b"XCLAIM", b"s", b"g", b"d", b"0", b"2-0", b"TIME", b"%d" % MS,
             b"RETRYCOUNT", b"1", *tail, b"2-0"],
            [b"EXEC"],
            [b"XCLAIM", b"s", b"g", b"e", b"0", b"2-0", b"TIME", b"%d" % MS,
             b"RETRYCOUNT", b"1", *tail, b"9-0"],
            [b"XGROUP", b"SETID", b"s", b"g", b"10-0", b"ENTRIESREAD",
             b"2"]])

    def test_a_read_in_multi_does_not_hide_the_next_write(self):
        self.call("XADD", "s", "1-0", "f", "v")
        self.call("MULTI")
        self.call("XREAD", "STREAMS", "s", "0")
        self.call("SET", "k", "v")
        self.call("EXEC")
        self.assertEqual(self.sent[-1], [b"SET", b"k", b"v"])


class BlockingTests(ServerTestCase):
    def block(self, *args, client):
        self.assertEqual(self.raw(*args, client=client), b"")

    def test_xread_wakeup_order(self):
        waiters = [self.connect() for _ in range(3)]
        for w in waiters:
            self.block("XREAD", "BLOCK", 0, "STREAMS", "s", "$", client=w)
        self.assertEqual(self.server.blocking.count, 3)
        self.call("XADD", "s", "1-0", "f", "v")
        replies = [parse(self.pending(w)) for w in waiters]
        self.assertEqual(replies, [[[b"s", [_entry("1-0", "f", "v")]]]] * 3)
        # $ is resolved when blocking: a later XADD is what they get.
        self.block("XREAD", "BLOCK", 0, "STREAMS", "s", "$",
                   client=waiters[0])
        self.call("XADD", "s", "2-0", "g", "w")
        self.assertEqual(parse(self.pending(waiters[0])),
                         [[b"s", [_entry("2-0", "g", "w")]]])

    def test_xreadgroup_clients_share_entries_in_order(self):
        self.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        a, b = self.connect(), self.connect()
        self.block("XREADGROUP", "GROUP", "g", "ca", "BLOCK", 0, "STREAMS",
                   "s", ">", client=a)
        self.block("XREADGROUP", "GROUP", "g", "cb", "BLOCK", 0, "STREAMS",
                   "s", ">", client=b)
        self.call("XADD", "s", "1-0", "f", "v")
        self.assertEqual(parse(self.pending(a)),
                         [[b"s", [_entry("1-0", "f", "v")]]])
        self.assertEqual(self.pending(b), b"")
        self.call("XADD", "s", "2-0", "f", "v")
        self.assertEqual(parse(self.pending(b)),
                         [[b"s", [_entry("2-0", "f", "v")]]])
        self.assertEqual(self.call("XPENDING", "s", "g")[3],
                         [[b"ca", b"1"], [b"cb", b"1"]])

    def test_timeouts(self):
        w = self.connect()
        self.block("XREAD", "BLOCK", 1500, "STREAMS", "s", "$", client=w)
        self.clock.advance(1.4)
        self.assertEqual(self.pending(w), b"")
        self.clock.advance(0.1)
        self.assertEqual(self.pending(w), b"*-1\r\n")
        self.resp3(w)
        self.block("XREAD", "BLOCK", 10, "STREAMS", "s", "$", client=w)
        self.clock.advance(0.01)
        self.assertEqual(self.pending(w), b"_\r\n")

    def test_key_deleted_or_replaced(self):
        self.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        reader, grouped = self.connect(), self.connect()
        self.block("XREAD", "BLOCK", 0, "STREAMS", "s", "$", client=reader)
        self.block("XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS",
                   "s", ">", client=grouped)
        self.call("DEL", "s")
        self.assertEqual(self.pending(grouped),
                         b"-UNBLOCKED the stream key no longer exists\r\n")
        self.assertEqual(self.pending(reader), b"")     # XREAD keeps waiting
        self.call("XADD", "s", "1-0", "f", "v")
        self.assertEqual(parse(self.pending(reader)),
                         [[b"s", [_entry("1-0", "f", "v")]]])
        self.call("XGROUP", "CREATE", "s", "g", "$")
        self.block("XREAD", "BLOCK", 0, "STREAMS", "s", "$", client=reader)
        self.block("XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS",
                   "s", ">", client=grouped)
        self.call("SET", "s", "now a string")
        self.assertEqual(self.pending(grouped),
                         b"-UNBLOCKED the stream key no longer exists\r\n")
        self.assertEqual(self.pending(reader), b"")
        self.assertEqual(self.server.blocking.count, 1)

    def test_flushall_and_expiry_fail_blocked_xreadgroup(self):
        for _ in range(2):
            self.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
            w = self.connect()
            self.block("XREADGROUP", "GROUP", "g", "c", "BLOCK", 0,
                       "STREAMS", "s", ">", client=w)
            self.call("FLUSHALL")
            self.assertEqual(self.pending(w), b"-UNBLOCKED the stream key "
                             b"no longer exists\r\n")
        self.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        self.call("PEXPIRE", "s", 100)
        w = self.connect()
        self.block("XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS",
                   "s", ">", client=w)
        self.clock.advance(0.2)
        self.assertEqual(self.call("EXISTS", "s"), 0)     # lazily expired
        self.assertEqual(self.pending(w), b"-UNBLOCKED the stream key no "
                         b"longer exists\r\n")

    def test_group_destroyed(self):
        self.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        w = self.connect()
        self.block("XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS",
                   "s", ">", client=w)
        self.call("XGROUP", "DESTROY", "s", "g")
        self.assertEqual(self.pending(w), b"-NOGROUP the consumer group this "
                         b"client was blocked on no longer exists\r\n")

    def test_multi_and_resp3(self):
        self.call("MULTI")
        self.call("XREAD", "BLOCK", 0, "STREAMS", "s", "$")
        self.assertEqual(parse(self.raw("EXEC")), [None])
        w = self.connect(resp3=True)
        self.block("XREAD", "BLOCK", 0, "STREAMS", "s", "0", client=w)
        self.call("XADD", "s", "1-0", "f", "v")
        self.assertEqual(self.pending(w), b"%1\r\n$1\r\ns\r\n*1\r\n*2\r\n"
                         b"$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n")

    def test_wrongtype(self):
        self.call("SET", "k", "v")
        self.assertEqual(self.call("XREAD", "BLOCK", 0, "STREAMS", "k", "$"),
                         WRONGTYPE)


class RdbTests(ServerTestCase):
    def build(self):
        for i in range(1, 160):
            self.call("XADD", "s", "%d-%d" % (i // 2, i % 2), "f", i,
                      "x" * (i % 70), "y")
        self.call("XDEL", "s", "3-0", "50-1")
        self.call("XGROUP", "CREATE", "s", "g", "0")
        self.call("XGROUP", "CREATE", "s", "h", "$")
        self.call("XREADGROUP", "GROUP", "g", "a", "COUNT", 5, "STREAMS", "s",
                  ">")
        self.call("XREADGROUP", "GROUP", "g", "b", "COUNT", 5, "STREAMS", "s",
                  ">")
        return self.ks.lookup(b"s")

    def test_roundtrip(self):
        stream = self.build()
        loaded = load_payload(dump_payload(stream))
        self.assertEqual(list(loaded.entries.items()),
                         list(stream.entries.items()))
        for attr in ("last_id", "first_id", "max_deleted_id",
                     "entries_added"):
            self.assertEqual(getattr(loaded, attr), getattr(stream, attr))
        self.assertEqual(sorted(loaded.groups), [b"g", b"h"])
        g = loaded.groups[b"g"]
        self.assertEqual(
            [(sid, n.consumer.name, n.delivery_count)
             for sid, n in g.pel.items()],
            [(sid, n.consumer.name, n.delivery_count)
             for sid, n in stream.groups[b"g"].pel.items()])
        self.assertEqual(loaded.groups[b"h"].entries_read, -1)
        self.assertEqual(list(loaded.nodes), list(stream.nodes))
        empty = Stream()
        self.assertEqual(len(load_payload(dump_payload(empty))), 0)

    def test_corrupt_payloads_raise_one_error(self):
        payload = dump_payload(self.build())
        body = payload[:-10]
        from rcluster.persistence.crc64 import crc64
        for cut in (1, 5, 20, 100, len(body) // 2, len(body) - 3):
            data = body[:cut] + payload[-10:-8]
            data += crc64(data).to_bytes(8, "little")
            with self.assertRaises(RdbError):
                load_payload(data)
        flipped = bytearray(body)
        for pos in range(1, len(body), 7):
            flipped[pos] ^= 0x5a
            data = bytes(flipped) + payload[-10:-8]
            data += crc64(data).to_bytes(8, "little")
            try:
                load_payload(data)
            except RdbError:
                pass
            flipped[pos] ^= 0x5a


class EntryTableTests(TestCase):
    """EntryTable.append (XADD's fast path into SortedList's internals)
    leaves the same table, with valid invariants, as plain inserts."""

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["append"] * 6 + [
        "insert", "del", "index"]), st.integers(0, 3)), max_size=2000),
           st.integers(4, 40))
    def test_same_as_sorted_dict(self, ops, load):
        table, reference = EntryTable(), SortedDict()
        table._list._reset(load)     # small sublists: splits happen
        reference._list._reset(load)
        top = 0
        for op, n in ops:
            if op == "append":       # mostly above every key: the fast path
                top += n
                key = (top, 0)
                table.append(key, top)
                reference[key] = top
            elif op == "insert":     # below the top: the plain insert
                key = (top // (n + 1), 1)
                table.append(key, n)
                reference[key] = n
            elif reference:
                key = reference.peekitem(n % len(reference))[0]
                if op == "del":
                    del table[key]
                    del reference[key]
                else:               # builds the index append must update
                    self.assertEqual(table.index(key), reference.index(key))
            table._list._check()
        self.assertEqual(list(table.items()), list(reference.items()))

    def test_append_keeps_the_positional_index(self):
        table = EntryTable()
        table._list._reset(4)
        for n in range(21):
            table.append((n, 0), n)
        self.assertEqual(table.index((5, 0)), 5)     # the index is built
        table.append((100, 0), 100)                   # no split: updated
        table._list._check()
        self.assertEqual(table.index((100, 0)), 21)
        self.assertEqual(table.peekitem(21), ((100, 0), 100))
