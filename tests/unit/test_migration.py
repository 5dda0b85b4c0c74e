"""MIGRATE as a job on the reactor, sans-IO: the target connection is a
StringTransport on the MemoryReactorClock's recorded connectTCP; the test
reads the commands the source wrote (with the codec's request parser) and
answers as a target would."""
from __future__ import annotations

from collections import deque

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from rcluster.cluster import migration
from rcluster.cluster.migration import CHUNK_ELEMENTS, key_commands
from rcluster.commands.migrate import migrate_get_keys
from rcluster.persistence.rdb import load_payload
from rcluster.resp.codec import RequestParser
from rcluster.zset import ZSet
from twisted.trial.unittest import TestCase

from tests.protocol.helpers import SYNTAX, ServerTestCase, connect, exchange
from tests.unit.test_cluster_commands import command


class Target:
    """The far end of one connection the source opened."""

    def __init__(self, test, index=-1):
        host, port, factory, timeout, _ = test.clock.tcpClients[index]
        self.address = (host, port)
        self.timeout = timeout
        self.proto = factory.buildProtocol(IPv4Address("TCP", host, port))
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)
        self.parser = RequestParser()

    def commands(self) -> list:
        data = self.transport.value()
        self.transport.clear()
        if not data:
            return []
        out = [list(a) for a in self.parser.feed(data)]
        while self.parser.more:
            batch = self.parser.take()
            if not batch:
                break
            out += [list(a) for a in batch]
        return out

    def answer(self, *replies: bytes):
        self.proto.dataReceived(b"".join(replies))

    def drop(self):
        self.proto.connectionLost(Failure(ConnectionError("gone")))


class MigrateTests(ServerTestCase):
    def migrate(self, *args, client=None):
        return self.raw("MIGRATE", "127.0.0.1", 7777, *args, client=client)

    def pump(self, target):
        """Let the writer's reactor turns run; return what it wrote."""
        out = []
        for _ in range(100):
            self.clock.advance(0)
            got = target.commands()
            if not got and not self.clock.getDelayedCalls():
                break
            out += got
            if not got:
                break
        return out

    def cached_link(self):
        """A MIGRATE done: its target connection is cached (returned)."""
        self.call("SET", "k", "v")
        self.migrate("k", 0, 1000)
        target = Target(self)
        self.pump(target)
        target.answer(b"+OK\r\n+OK\r\n")
        self.pending((self.proto, self.transport))
        return target

    # -- argument checks (Redis's texts) -----------------------------------
    def test_argument_errors(self):
        self.assertEqual(self.call("MIGRATE", "h", 1, "k", 0),
                         "ERR wrong number of arguments for 'migrate' command")
        self.assertEqual(self.call("MIGRATE", "h", 1, "k", 0, 10, "BOGUS"),
                         SYNTAX)
        self.assertEqual(self.call("MIGRATE", "h", 1, "k", 0, 10, "AUTH"),
                         SYNTAX)
        self.assertEqual(self.call("MIGRATE", "h", 1, "k", 0, 10, "AUTH2",
                                   "u"), SYNTAX)
        self.assertEqual(self.call("MIGRATE", "h", 1, "k", 0, 10, "KEYS",
                                   "a"),
                         "ERR When using MIGRATE KEYS option, the key "
                         "argument must be set to the empty string")
        self.assertEqual(self.call("MIGRATE", "h", 1, "k", "x", 10),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.call("MIGRATE", "h", 1, "k", 0, "x"),
                         "ERR value is not an integer or out of range")

    def test_nokey_without_connecting(self):
        self.assertEqual(self.migrate("missing", 0, 100), b"+NOKEY\r\n")
        self.assertEqual(self.migrate("", 0, 100, "KEYS", "a", "b"),
                         b"+NOKEY\r\n")
        self.assertEqual(self.clock.tcpClients, [])

    def test_get_keys(self):
        self.assertEqual(migrate_get_keys([b"migrate", b"h", b"1", b"k",
                                           b"0", b"5"]), [3])
        argv = [b"migrate", b"h", b"1", b"", b"0", b"5", b"AUTH", b"keys",
                b"KEYS", b"a", b"b"]
        self.assertEqual(migrate_get_keys(argv), [9, 10])
        self.assertEqual(self.call("COMMAND", "GETKEYS", *argv[:-3],
                                   "KEYS", "x", "y"), [b"x", b"y"])

    def test_inside_multi_refused_loudly(self):
        self.call("SET", "k", "v")
        self.call("MULTI")
        self.call("MIGRATE", "h", 1, "k", 0, 10)
        reply = self.call("EXEC")
        self.assertIn("not supported by rcluster", str(reply[0]))

    # -- the job -----------------------------------------------------------
    def test_migrate_one_key_waits_then_deletes(self):
        self.call("SET", "k", "v")
        self.call("PEXPIRE", "k", 5000)
        self.assertEqual(self.migrate("k", 3, 2000), b"")
        target = Target(self)
        self.assertEqual(target.address, ("127.0.0.1", 7777))
        self.assertEqual(target.timeout, 2.0)
        sent = self.pump(target)
        self.assertEqual(sent[0], [b"SELECT", b"3"])
        self.assertEqual(sent[1][:3], [b"RESTORE", b"k", b"5000"])
        self.assertEqual(load_payload(sent[1][3]), b"v")
        # Others are served while the MIGRATE client waits.
        other = self.connect()
        self.assertEqual(self.call("GET", "k", client=other), b"v")
        self.assertEqual(self.pending((self.proto, self.transport)), b"")
        target.answer(b"+OK\r\n", b"+OK\r\n")
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"+OK\r\n")
        self.assertIsNone(self.ks.lookup(b"k"))
        # The cached link is reused, without SELECT this time.
        self.call("SET", "k2", "v")
        self.migrate("k2", 3, 2000)
        self.assertEqual(len(self.clock.tcpClients), 1)
        sent = self.pump(target)
        self.assertEqual([a[0] for a in sent], [b"RESTORE"])
        target.answer(b"+OK\r\n")
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"+OK\r\n")

    def test_copy_replace_auth2(self):
        self.call("SET", "k", "v")
        self.migrate("k", 0, 1000, "COPY", "REPLACE", "AUTH2", "u", "p")
        target = Target(self)
        sent = self.pump(target)
        self.assertEqual(sent[0], [b"AUTH", b"u", b"p"])
        self.assertEqual(sent[2][-1], b"REPLACE")
        target.answer(b"+OK\r\n+OK\r\n+OK\r\n")
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"+OK\r\n")
        self.assertEqual(self.call("GET", "k"), b"v")      # COPY keeps it

    def test_target_error_passed_through_and_key_kept(self):
        self.call("SET", "a", "1")
        self.call("SET", "b", "2")
        self.migrate("", 0, 1000, "KEYS", "a", "b")
        target = Target(self)
        self.pump(target)
        target.answer(b"+OK\r\n", b"+OK\r\n",
                      b"-BUSYKEY Target key name already exists.\r\n")
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"-ERR Target instance replied with error: BUSYKEY "
                         b"Target key name already exists.\r\n")
        self.assertIsNone(self.ks.lookup(b"a"))      # acknowledged: gone
        self.assertEqual(self.ks.lookup(b"b"), b"2")  # refused: kept

    def test_connect_error(self):
        self.call("SET", "k", "v")
        self.migrate("k", 0, 1000)
        _, _, factory, _, _ = self.clock.tcpClients[0]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"-IOERR error or timeout connecting to the "
                         b"client\r\n")
        self.assertEqual(self.call("GET", "k"), b"v")

    def test_timeout_reading(self):
        self.call("SET", "k", "v")
        self.migrate("k", 0, 500)
        target = Target(self)
        self.pump(target)
        self.clock.advance(0.6)
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"-IOERR error or timeout reading to target "
                         b"instance\r\n")
        self.assertEqual(self.call("GET", "k"), b"v")
        self.assertTrue(target.transport.disconnecting)

    def test_broken_cached_link_retried_once(self):
        first = self.cached_link()
        self.call("SET", "k", "v2")
        self.migrate("k", 0, 1000)
        self.pump(first)
        first.drop()                       # the cached link was dead
        self.assertEqual(len(self.clock.tcpClients), 2)
        second = Target(self)
        sent = self.pump(second)
        self.assertEqual(sent[0], [b"SELECT", b"0"])
        second.answer(b"+OK\r\n+OK\r\n")
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"+OK\r\n")
        # A second break is reported, not retried.
        self.call("SET", "k", "v3")
        self.migrate("k", 0, 1000)
        self.pump(second)
        second.drop()
        third = Target(self)
        self.pump(third)
        third.drop()
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"-IOERR error or timeout reading to target "
                         b"instance\r\n")

    def test_broken_cached_link_retried_with_many_keys(self):
        """Every command in flight on the dead link reports the loss: the
        job retries once, not once per command (Redis retries a MIGRATE
        of any number of keys)."""
        first = self.cached_link()
        self.call("MSET", "a{t}", "1", "b{t}", "2", "c{t}", "3")
        self.migrate("", 0, 1000, "KEYS", "a{t}", "b{t}", "c{t}")
        self.assertEqual(len(self.pump(first)), 3)
        first.drop()                       # the cached link was dead
        self.assertEqual(len(self.clock.tcpClients), 2)
        second = Target(self)
        sent = self.pump(second)
        self.assertEqual([a[0] for a in sent],
                         [b"SELECT", b"RESTORE", b"RESTORE", b"RESTORE"])
        second.answer(b"+OK\r\n" * 4)
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"+OK\r\n")
        self.assertIsNone(self.ks.lookup(b"a{t}"))

    def test_idle_links_closed_and_cache_bounded(self):
        m = migration.migrations_of(self.server)
        self.call("SET", "k", "v")
        self.migrate("k", 0, 1000)
        target = Target(self)
        self.pump(target)
        target.answer(b"+OK\r\n+OK\r\n")
        self.assertEqual(len(m.cache), 1)
        self.assertIn(b"migrate_cached_sockets:1\r\n",
                      self.call("INFO", "stats"))
        self.clock.advance(migration.CACHE_TTL + 2)
        m.cron()
        self.assertEqual(len(m.cache), 0)
        self.assertTrue(target.transport.disconnecting)

    def test_cache_bounded(self):
        self.patch(migration, "CACHE_ITEMS", 2)
        m = migration.migrations_of(self.server)
        targets = []
        for port in (7001, 7002, 7003):
            self.call("SET", "k", "v")
            self.raw("MIGRATE", "127.0.0.1", port, "k", 0, 1000)
            target = Target(self)
            self.pump(target)
            target.answer(b"+OK\r\n+OK\r\n")
            self.assertEqual(self.pending((self.proto, self.transport)),
                             b"+OK\r\n")
            targets.append(target)
        self.assertEqual(len(m.cache), 2)
        self.assertEqual(sum(t.transport.disconnecting for t in targets), 1)

    def test_write_during_flight_resent_before_delete(self):
        """Without the cluster router nothing parks the write: the key it
        changed is sent again (REPLACE) before the local copy goes."""
        self.call("SET", "k", "v1")
        self.migrate("k", 0, 1000)
        target = Target(self)
        self.pump(target)
        self.call("SET", "k", "v2", client=self.connect())
        target.answer(b"+OK\r\n+OK\r\n")
        sent = self.pump(target)
        self.assertEqual(sent[0][0], b"RESTORE")
        self.assertEqual(sent[0][-1], b"REPLACE")
        self.assertEqual(load_payload(sent[0][3]), b"v2")
        self.assertEqual(self.pending((self.proto, self.transport)), b"")
        target.answer(b"+OK\r\n")
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"+OK\r\n")
        self.assertIsNone(self.ks.lookup(b"k"))

    def test_big_value_sent_in_slices(self):
        n = CHUNK_ELEMENTS * 3 + 5
        self.ks.set(b"h", {b"f%d" % i: b"v%d" % i for i in range(n)})
        self.ks.set_expire(b"h", self.server.now_ms() + 9000)
        self.assertEqual(self.migrate("h", 0, 1000), b"")
        target = Target(self)
        sent = self.pump(target)
        # The first slice, then a wait for its reply (BUSYKEY must stop
        # the job before anything is appended).
        self.assertEqual([a[0] for a in sent], [b"SELECT", b"RESTORE"])
        self.assertEqual(len(load_payload(sent[1][3])), CHUNK_ELEMENTS)
        target.answer(b"+OK\r\n+OK\r\n")
        sent = self.pump(target)
        self.assertEqual([a[0] for a in sent], [b"HSET"] * 3 + [b"PEXPIRE"])
        got = {}
        for argv in sent[:3]:
            got.update(zip(argv[2::2], argv[3::2]))
        self.assertEqual(len(got), n - CHUNK_ELEMENTS)
        self.assertEqual(self.pending((self.proto, self.transport)), b"")
        target.answer(b":1024\r\n" * 3 + b":1\r\n")
        self.assertEqual(self.pending((self.proto, self.transport)),
                         b"+OK\r\n")
        self.assertIsNone(self.ks.lookup(b"h"))

    def test_big_value_busykey_stops(self):
        self.ks.set(b"s", set(b"m%d" % i for i in range(CHUNK_ELEMENTS * 2)))
        self.migrate("s", 0, 1000)
        target = Target(self)
        self.pump(target)
        target.answer(b"+OK\r\n-BUSYKEY Target key name already exists.\r\n")
        self.assertEqual(self.pump(target), [])
        self.assertIn(b"BUSYKEY", self.pending((self.proto, self.transport)))
        self.assertEqual(len(self.ks.lookup(b"s")), CHUNK_ELEMENTS * 2)

    def test_key_commands_every_type(self):
        n = CHUNK_ELEMENTS + 10
        z = ZSet({b"m%d" % i: i / 7 for i in range(n)}, compact=False)
        first, rest = key_commands(b"z", z, 0, False, b"RESTORE", None)
        rest = list(rest)
        self.assertEqual(rest[0][0], b"ZADD")
        self.assertEqual(float(rest[0][2]), (CHUNK_ELEMENTS) / 7)
        first, rest = key_commands(b"l", deque(b"%d" % i for i in range(n)), 50, True,
                                   b"RESTORE-ASKING", None)
        self.assertEqual(first[:3] + first[4:],
                         [b"RESTORE-ASKING", b"l", b"0", b"REPLACE"])
        self.assertEqual([a[0] for a in rest], [b"RPUSH", b"PEXPIRE"])
        first, rest = key_commands(b"x", b"small", 7, False, b"RESTORE", None)
        self.assertIsNone(rest)
        self.assertEqual(first[2], b"7")


class MigrateClusterParkingTests(ServerTestCase):
    """Writes to a key in flight wait for the MIGRATE (the router parks
    them); reads are served."""

    def test_write_waits_and_runs_after(self):
        from rcluster.cluster.routing import Router

        class State:          # just what the router consults
            busy_slots: dict = {}
            migrating: dict = {}
            importing: dict = {}
            is_ok = True
            nodes: dict = {}

            def serves_directly(self, slot):
                return not self.busy_slots

            def slot_owner(self, slot):
                return self.myself

            def migrating_to(self, slot):
                return None

            def importing_from(self, slot):
                return None

        state = State()
        state.myself = object()
        self.server.cluster = state
        self.server.router = Router(state, self.server)
        self.server.cluster_mode = True
        self.call("SET", "k", "1")
        self.raw("MIGRATE", "127.0.0.1", 7777, "k", 0, 1000)
        self.assertEqual(state.busy_slots, {7629: 1})
        target = Target(self)
        self.clock.advance(0)
        sent = target.commands()
        self.assertEqual(sent[1][0], b"RESTORE-ASKING")
        other = self.connect()
        self.assertEqual(self.raw("INCR", "k", client=other), b"")
        self.assertEqual(self.call("GET", "k", client=self.connect()), b"1")
        target.answer(b"+OK\r\n+OK\r\n")
        self.assertEqual(state.busy_slots, {})
        # The parked INCR ran after the key left: a new key here.
        self.assertEqual(self.pending(other), b":1\r\n")


class ReplicaSetslotTests(TestCase):
    """Replicas learn SETSLOT from their master's stream (Valkey 8): the
    state survives a failover; typed by a user it is still refused."""
    from tests.unit.test_cluster_commands import ClusterCommandTests as _C
    setUp = _C.setUp
    call = _C.call
    add_node = _C.add_node
    saved = _C.saved
    del _C

    def test_replica_records_master_setslot(self):
        from tests.unit.test_cluster_commands import OTHER, REPLICA
        master = self.add_node()
        third = self.add_node(REPLICA, port=7002)
        self.state.add_slot(master, 5)
        self.state.set_master(master)
        self.assertEqual(self.call("CLUSTER", "SETSLOT", "5", "MIGRATING",
                                   REPLICA),
                         b"-ERR Please use SETSLOT only with masters.\r\n")
        self.proto.client.kind = "master"      # our master's stream
        self.call("CLUSTER", "SETSLOT", "5", "MIGRATING", REPLICA)
        self.assertIs(self.state.migrating_to(5), third)
        self.assertIn(f" [5->-{REPLICA}]", self.saved())
        self.call("CLUSTER", "SETSLOT", "6", "IMPORTING", REPLICA)
        self.assertIs(self.state.importing_from(6), third)
        self.call("CLUSTER", "SETSLOT", "5", "NODE", REPLICA)
        self.assertIsNone(self.state.migrating_to(5))
        self.assertIs(self.state.slot_owner(5), third)
        self.call("CLUSTER", "SETSLOT", "6", "STABLE")
        self.assertIsNone(self.state.importing_from(6))
        self.assertEqual(OTHER, master.name)


class AtomicMoveTests(TestCase):
    """CLUSTER MIGRATESLOTS on the source and CLUSTER SYNCSLOTS on the
    target, sans-IO (the target connection is a StringTransport)."""
    from tests.unit.test_cluster_commands import ClusterCommandTests as _C
    call = _C.call
    add_node = _C.add_node
    del _C

    def setUp(self):  # the borrowed setUp, then our nodes
        from tests.unit.test_cluster_commands import ClusterCommandTests
        ClusterCommandTests.setUp(self)
        from tests.unit.test_cluster_commands import OTHER
        self.other = self.add_node()
        self.other_id = OTHER
        self.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        self.ks = self.server.keyspace
        self.clock = self.reactor
        self.reactor.advance(3)          # past the rejoin delay
        self.state.update_state()
        self.assertTrue(self.state.is_ok)

    def give(self, slot):
        self.state.del_slot(slot)
        self.state.add_slot(self.other, slot)

    def finish(self):
        """The source's FINISH: with its current epoch."""
        return [b"CLUSTER", b"SYNCSLOTS", b"FINISH",
                b"%d" % self.state.current_epoch]

    def keys_in(self, slot, n):
        from rcluster.cluster.keyslot import keyslot
        out, i = [], 0
        while len(out) < n:
            key = b"k%d" % i
            if keyslot(key) == slot:
                out.append(key)
            i += 1
        return out

    def test_argument_checks(self):
        from tests.unit.test_cluster_commands import REPLICA
        self.assertEqual(self.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE",
                                   "0", "10", "NODE", "nope"),
                         b"-ERR Unknown node nope\r\n")
        self.give(100)
        self.assertEqual(self.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE",
                                   "0", "200", "NODE", self.other_id),
                         b"-ERR I'm not the owner of hash slot 100\r\n")
        self.assertEqual(self.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE",
                                   "0", "1", "NODE", self.me.name),
                         b"-ERR Can't migrate slots to myself\r\n")
        self.assertEqual(self.call("CLUSTER", "MIGRATESLOTS", "SLOTS", "0",
                                   "1", "NODE", self.other_id),
                         b"-ERR syntax error\r\n")
        self.call("CLUSTER", "SETSLOT", "5", "MIGRATING", self.other_id)
        self.assertEqual(self.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE",
                                   "5", "5", "NODE", self.other_id),
                         b"-ERR Slot 5 has an open SETSLOT migration\r\n")
        self.add_node(REPLICA, port=7002)
        self.assertEqual(self.call("CLUSTER", "GETSLOTMIGRATIONS"),
                         b"*0\r\n")
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "RUN", "SET", "a",
                                   "b"),
                         b"-ERR No slot import in progress on this "
                         b"connection\r\n")

    def test_move_cuts_over_after_catching_up(self):
        self.patch(migration, "CATCH_UP", 0)
        keys = self.keys_in(3, 5)
        for key in keys:
            self.ks.set(key, b"v" + key)
        self.assertEqual(self.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE",
                                   "3", "4", "NODE", self.other_id),
                         b"+OK\r\n")
        target = Target(self)
        self.assertEqual(target.address, ("127.0.0.1", 7001))
        sent = target.commands()
        self.assertEqual(sent[0], [b"CLUSTER", b"SYNCSLOTS", b"BEGIN",
                                   self.me.name.encode(), b"3", b"3", b"4",
                                   b"4"])
        self.clock.advance(0)
        sent += target.commands()
        # Small keys go batched: SYNCSLOTS LOAD <records>.
        loads = [a for a in sent if a[2] == b"LOAD"]
        self.assertEqual(len(loads), 1)
        self.assertEqual(len(loads[0]), 4)
        records = migration.unpack_load(loads[0][3])
        self.assertEqual(sorted(r[0] for r in records), sorted(keys))
        # Strings go as they are (no DUMP payload), without TTL here.
        self.assertEqual({r[1] for r in records}, {0})
        for key, _, value, raw in records:
            self.assertEqual((value, raw), (b"v" + key, True))
        # A write after the snapshot: its op follows, as replicas get it.
        other = connect(self.server, ("127.0.0.1", 40009))
        exchange(*other, command("SET", keys[0], "new", "EX", "100"))
        target.answer(b"+OK\r\n" * len(sent))
        self.clock.advance(0)
        more = target.commands()
        deadline = b"%d" % (self.server.now_ms() + 100_000)
        self.assertEqual(more, [[b"CLUSTER", b"SYNCSLOTS", b"RUN", b"SET",
                                 keys[0], b"new", b"PXAT", deadline]])
        # A transaction queued before the pause...
        tx = connect(self.server, ("127.0.0.1", 40011))
        exchange(*tx, command("MULTI"))
        self.assertEqual(exchange(*tx, command("SET", keys[3], "t")),
                         b"+QUEUED\r\n")
        # Caught up: writes to those slots now wait, FINISH goes...
        target.answer(b"+OK\r\n")
        self.clock.advance(0)
        m = migration.migrations_of(self.server)
        self.assertEqual(set(m.paused_slots), {3, 4})
        self.assertEqual(target.commands(),
                         [self.finish()])
        self.assertEqual(exchange(*other, command("SET", keys[1], "x")), b"")
        self.assertEqual(exchange(*tx, command("EXEC")), b"")   # waits too
        # ...reads don't.
        reader = connect(self.server, ("127.0.0.1", 40010))
        self.assertEqual(exchange(*reader, command("GET", keys[2])),
                         b"$%d\r\nv%s\r\n" % (len(keys[2]) + 1, keys[2]))
        target.answer(b"+OK\r\n")
        self.assertIs(self.state.slot_owner(3), self.other)
        self.assertIs(self.state.slot_owner(4), self.other)
        # The parked write is redirected, never ASK/TRYAGAIN.
        self.assertEqual(other[1].value()[-30:], b"-MOVED 3 127.0.0.1:7001\r\n")
        self.assertEqual(tx[1].value()[-30:], b"-MOVED 3 127.0.0.1:7001\r\n")
        self.assertEqual(self.ks.lookup(keys[3]), b"v" + keys[3])
        self.clock.advance(0)
        self.assertEqual(self.ks.count_in_slot(3), 0)
        self.assertIn(b"success", self.call("CLUSTER", "GETSLOTMIGRATIONS"))
        info = self.call("INFO", "slot_migrations")
        self.assertIn(b"# Slot Migrations\r\n", info)
        self.assertIn(b",state=success,slots=3-4,", info)
        self.assertIn(b",keys_sent=5,keys_left=0,", info)

    def test_snapshot_is_point_in_time_then_ops(self):
        """Writes to a slot the snapshot has not reached yet: the snapshot
        still sends the values of the instant it started, and the writes
        follow as ops, in the order they ran."""
        self.patch(migration, "CATCH_UP", 0)
        self.patch(migration, "SLICE_BYTES", 1)     # a command per turn
        self.patch(migration, "LOAD_KEYS", 1)       # a slot per step
        a, b = self.keys_in(3, 2), self.keys_in(4, 2)
        for key in a + b:
            self.ks.set(key, b"old")
        self.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "3", "4", "NODE",
                  self.other_id)
        target = Target(self)
        sent = target.commands()
        self.assertEqual([c[2] for c in sent], [b"BEGIN", b"LOAD"])
        self.assertEqual(sorted(r[0] for r in
                                migration.unpack_load(sent[1][3])), sorted(a))
        other = connect(self.server, ("127.0.0.1", 40009))
        for argv in (("APPEND", b[0], "+1"), ("DEL", b[1]),
                     ("APPEND", a[0], "+2"), ("SET", b"{%s}x" % b[0], "n")):
            self.assertNotEqual(exchange(*other, command(*argv))[:1], b"-")
        target.answer(b"+OK\r\n" * len(sent))
        rest = []
        for _ in range(20):
            self.clock.advance(0)
            got = target.commands()
            rest += got
            target.answer(b"+OK\r\n" * len(got))
            if self.finish() in got:
                break
        self.assertEqual(rest[0][2], b"LOAD")
        self.assertEqual(sorted((r[0], r[2]) for r in
                                migration.unpack_load(rest[0][3])),
                         sorted([(b[0], b"old"), (b[1], b"old")]))
        self.assertEqual([c[3:] for c in rest[1:-1]],
                         [[b"APPEND", b[0], b"+1"], [b"DEL", b[1]],
                          [b"APPEND", a[0], b"+2"],
                          [b"SET", b"{%s}x" % b[0], b"n"]])
        self.assertEqual(rest[-1], self.finish())
        self.assertIs(self.state.slot_owner(4), self.other)

    def test_random_writes_during_a_move_arrive_exactly(self):
        """Random writes to every type while a move streams a couple of
        commands a turn (big values in slices): the target's data - the records
        and ops it was sent, applied in order to an empty server - is the
        source's at the cut-over, key by key, TTLs included."""
        import random

        from tests.protocol.helpers import make_server, parse, request
        self.patch(migration, "CATCH_UP", 0)
        self.patch(migration, "SYNC_WINDOW", 2)     # two commands a turn
        self.patch(migration, "SLICE_BYTES", 64)
        self.patch(migration, "LOAD_KEYS", 2)
        self.patch(migration, "CHUNK_ELEMENTS", 4)
        rnd = random.Random(7)
        keys = self.keys_in(3, 15) + self.keys_in(4, 15)
        kinds = {}
        writer = connect(self.server, ("127.0.0.1", 40009))

        def write(*argv):
            exchange(*writer, request(*argv))

        for i, key in enumerate(keys):
            kinds[key] = i % 5
            write(*[("SET", key, "v%d" % i),
                    ("HSET", key, *[x for j in range(9) for x in
                                    ("f%d" % j, "x")]),
                    ("RPUSH", key, *["e%d" % j for j in range(9)]),
                    ("SADD", key, *["m%d" % j for j in range(7)]),
                    ("ZADD", key, *[x for j in range(6) for x in
                                    (str(j), "z%d" % j)])][i % 5])
            if i % 3 == 0:
                write("PEXPIRE", key, 100000 + i)

        def random_write():
            key = rnd.choice(keys)
            n = rnd.randrange(100)
            write(*[("APPEND", key, "+%d" % n), ("HSET", key, "f%d" % n, n),
                    ("LPUSH", key, "n%d" % n), ("SADD", key, "s%d" % n),
                    ("ZINCRBY", key, n, "z%d" % (n % 8))][kinds[key]])
            if n < 8:
                write("DEL", key)
                kinds[key] = 0
            elif n < 14:
                write("SET", key, "fresh%d" % n, "EX", 500)
                kinds[key] = 0
            elif n < 18:
                write("PERSIST", key)

        self.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "3", "4", "NODE",
                  self.other_id)
        target = Target(self)
        copy, _ = make_server(now=self.server.clock.seconds())
        copy_client = connect(copy)

        def run(*argv):
            return parse(exchange(*copy_client, request(*argv)))

        ran = []        # the RUN commands: big values' slices, then ops

        def apply(cmds):
            for argv in cmds:
                if argv[:2] != [b"CLUSTER", b"SYNCSLOTS"]:
                    continue
                if argv[2] == b"LOAD":
                    for key, ttl, payload, raw in \
                            migration.unpack_load(argv[3]):
                        if ttl < 0:
                            run("DEL", key)
                        elif raw:
                            run("SET", key, payload,
                                *(("PX", ttl) if ttl else ()))
                        else:
                            run("RESTORE", key, ttl, payload, "REPLACE")
                elif argv[2] == b"RUN":
                    reply = run(*argv[3:])
                    self.assertFalse(isinstance(reply, str), (argv, reply))
                    ran.append(argv[3])

        def content(call, key):
            kind = call("TYPE", key)
            read = {"string": ("GET",), "hash": ("HGETALL",),
                    "list": ("LRANGE", 0, -1), "set": ("SMEMBERS",),
                    "zset": ("ZRANGE", 0, -1, "WITHSCORES")}.get(
                        kind if isinstance(kind, str) else kind.decode())
            value = call(*read[:1], key, *read[1:]) if read else None
            if kind in (b"set", "set", b"hash", "hash"):
                value = sorted(value)
            return kind, value, call("PTTL", key)

        def source(*argv):
            return parse(exchange(self.proto, self.transport,
                                  request(*argv)))

        for _ in range(500):
            for _ in range(rnd.randrange(5)):
                random_write()
            self.clock.advance(0)
            got = target.commands()
            apply(got)
            if self.finish() in got:
                break
            target.answer(b"+OK\r\n" * len(got))
        else:
            self.fail("the move never finished")
        for key in keys:
            self.assertEqual(content(run, key), content(source, key), key)
        self.assertGreater(copy.keyspace.count, 10)
        # Slices of big values, and writes made during the move, went.
        self.assertIn(b"HSET", ran)
        self.assertGreater(len([c for c in ran if c in (
            b"APPEND", b"LPUSH", b"ZINCRBY", b"DEL", b"SET")]), 20)

    def test_target_runs_ops_as_a_replica(self):
        """A staged key past its deadline is not expired by an op the
        source sent: it goes when the source's DEL comes."""
        self.give(200)
        key = self.keys_in(200, 1)[0]
        self.call("CLUSTER", "SYNCSLOTS", "BEGIN", self.other_id, "200",
                  "200")
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "LOAD", key,
                                   "1000", migration.dump_payload(b"5")),
                         b":1\r\n")
        self.reactor.advance(2)
        self.server.keyspace.tick(self.server.now_ms())
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "RUN", "INCR",
                                   key), b":6\r\n")
        # Nor by the active expiry cycle while the import runs.
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "RUN", "SET", key,
                                   "x", "PX", "1"), b"+OK\r\n")
        self.reactor.advance(1)
        self.server.keyspace.tick(self.server.now_ms())
        self.assertEqual(self.server.keyspace.expire_cycle(), 0)
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "RUN", "DEL",
                                   key), b":1\r\n")
        self.call("CLUSTER", "SYNCSLOTS", "CANCEL")
        self.assertEqual(self.server.keyspace.staged, set())

    def test_target_lost_cancels(self):
        keys = self.keys_in(7, 3)
        for key in keys:
            self.ks.set(key, b"v")
        self.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "7", "7", "NODE",
                  self.other_id)
        target = Target(self)
        self.clock.advance(0)
        target.drop()
        self.assertIs(self.state.slot_owner(7), self.me)
        self.assertEqual(self.ks.count_in_slot(7), 3)
        reply = self.call("CLUSTER", "GETSLOTMIGRATIONS")
        self.assertIn(b"failed", reply)
        self.assertIn(b"connection to the target lost", reply)
        # It can run again.
        self.assertEqual(self.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE",
                                   "7", "7", "NODE", self.other_id),
                         b"+OK\r\n")
        self.assertEqual(self.call("CLUSTER", "CANCELSLOTMIGRATIONS"),
                         b"+OK\r\n")
        self.assertIn(b"canceled", self.call("CLUSTER", "GETSLOTMIGRATIONS"))

    def test_target_side_stages_then_takes(self):
        """SYNCSLOTS on the target: staged keys are not served (MOVED),
        FINISH takes the slots with an epoch bump; CANCEL drops them."""
        from rcluster.cluster.keyslot import keyslot
        self.give(200)
        self.give(201)
        key = self.keys_in(200, 1)[0]
        src = self.other_id
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "BEGIN", src,
                                   "200", "201"), b"+OK\r\n")
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "RUN", "SET", key,
                                   "v"), b"+OK\r\n")
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "RUN", "SET", "x",
                                   "v"),
                         b"-ERR Key outside of the imported slots\r\n")
        # LOAD: many small keys at once (ttl -1: the key is gone).
        more = self.keys_in(201, 2)
        from rcluster.persistence.rdb import dump_payload
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "LOAD",
                                   more[0], "5000", dump_payload(b"a"),
                                   more[1], "0", dump_payload(b"b")),
                         b":2\r\n")
        self.assertEqual(self.ks.lookup(more[0]), b"a")
        self.assertGreater(self.ks.ttl(more[0]), 0)
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "LOAD", more[1],
                                   "-1", ""), b":1\r\n")
        self.assertIsNone(self.ks.lookup(more[1]))
        # The records form (what a source sends); a malformed one is
        # refused whole.  Replicas and the AOF get RESTORE (a DUMP
        # payload) or SET (a string sent as it is), with absolute TTLs.
        ops = []
        self.server.write_path.add_sink(lambda db, batch: ops.extend(batch))
        blob = migration.pack_load(more[0], 0, dump_payload(b"c")) + \
            migration.pack_load(more[1], 7000, b"d", migration.LOAD_STRING)
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "LOAD", blob),
                         b":2\r\n")
        deadline = b"%d" % (self.ks.now + 7000)
        self.assertEqual([list(op) for op in ops],
                         [[b"MULTI"],
                          [b"RESTORE", more[0], b"0", dump_payload(b"c"),
                           b"REPLACE"],
                          [b"SET", more[1], b"d", b"PXAT", deadline],
                          [b"EXEC"]])
        self.assertEqual(self.ks.lookup(more[0]), b"c")
        self.assertIsNone(self.ks.ttl(more[0]))
        self.assertEqual(self.ks.lookup(more[1]), b"d")
        self.assertGreater(self.ks.ttl(more[1]), 6000)
        gone = migration.pack_gone(more[0])
        for bad in (blob[:-1], gone + b"\0" * 5,
                    migration.pack_load(more[0], 0, b"x", 2),
                    migration.pack_load(more[0], 0, b"", 3),
                    migration.pack_load(more[0], -2, b"", 1)):
            self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "LOAD", bad),
                             b"-ERR Invalid SYNCSLOTS LOAD records\r\n")
        self.assertEqual(self.ks.lookup(more[0]), b"c")
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "LOAD",
                                   gone + migration.pack_gone(more[1])),
                         b":2\r\n")
        self.assertIsNone(self.ks.lookup(more[0]))
        self.assertIsNone(self.ks.lookup(more[1]))
        self.assertEqual(self.ks.lookup(key), b"v")
        self.assertTrue(self.call("GET", key).startswith(b"-MOVED 200 "))
        epoch = self.me.config_epoch
        # The source's current epoch comes with FINISH: a claim it took
        # that gossip has not brought here yet must not outrank ours.
        ahead = self.state.current_epoch + 5
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "FINISH",
                                   str(ahead)), b"+OK\r\n")
        self.assertIs(self.state.slot_owner(200), self.me)
        self.assertGreater(self.me.config_epoch, epoch)
        self.assertGreater(self.me.config_epoch, ahead)
        self.assertEqual(self.call("GET", key), b"$1\r\nv\r\n")
        # A canceled import leaves nothing behind.
        self.give(300)
        key2 = self.keys_in(300, 1)[0]
        self.call("CLUSTER", "SYNCSLOTS", "BEGIN", src, "300", "300")
        self.call("CLUSTER", "SYNCSLOTS", "RUN", "SET", key2, "v")
        self.assertEqual(self.ks.count_in_slot(300), 1)
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "CANCEL"),
                         b"+OK\r\n")
        self.assertEqual(self.ks.count_in_slot(300), 0)
        self.assertEqual(keyslot(key2), 300)
        # FLUSHALL on the target during an import: FINISH is refused.
        self.call("CLUSTER", "SYNCSLOTS", "BEGIN", src, "300", "300")
        self.call("CLUSTER", "SYNCSLOTS", "RUN", "SET", key2, "v")
        self.call("FLUSHALL")
        self.assertEqual(self.call("CLUSTER", "SYNCSLOTS", "FINISH"),
                         b"-ERR The import was flushed: it can't finish\r\n")
        self.assertIs(self.state.slot_owner(300), self.other)
