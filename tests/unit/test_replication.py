"""Replication, sans-IO: the backlog ring and offsets, the PSYNC decision
(+FULLRESYNC vs +CONTINUE, replid2 and the second offset), the replica's
handshake state machine fed bytes, the master side of a full and a
partial sync over StringTransports on a fake clock, WAIT, the replica
applying a stream, the READONLY / NOREPLICAS / LOADING gates, and DEBUG
DIGEST."""
from __future__ import annotations

from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from rcluster.persistence import rdb
from rcluster.persistence.snapshot import Snapshot
from rcluster.replication import digest
from rcluster.replication.backlog import (
    NO_REPLID, Backlog, ReplicationIds, command_size, encode_command,
    psync_decision)
from rcluster.replication.replica import EOF_MARK_SIZE, Handshake
from rcluster.replication.service import ReplicationService
from tests.protocol.helpers import ServerTestCase, request


class _Ids:
    def __init__(self, replid="a" * 40, replid2=NO_REPLID, second=-1,
                 offset=0):
        self.replid = replid
        self.replid2 = replid2
        self.second_repl_offset = second
        self.master_repl_offset = offset


class BacklogTest(ServerTestCase):
    def test_offsets_and_history(self):
        b = Backlog(10, 100)
        self.assertEqual((b.histlen, b.end, b.first_offset), (0, 100, 101))
        self.assertTrue(b.has(101))
        self.assertFalse(b.has(100))
        b.append(b"abcdef")
        self.assertEqual((b.histlen, b.end, b.first_offset), (6, 106, 101))
        self.assertEqual(b.since(101), b"abcdef")
        self.assertEqual(b.since(104), b"def")
        self.assertEqual(b.since(107), b"")

    def test_ring_keeps_the_last_size_bytes(self):
        b = Backlog(10, 0)
        data = bytes(range(65, 65 + 50))
        for i in range(0, 50, 3):
            b.append(data[i:i + 3])
        self.assertEqual(b.end, 50)
        self.assertEqual(b.histlen, 10)
        self.assertEqual(b.first_offset, 41)
        self.assertEqual(b.since(41), data[-10:])
        self.assertFalse(b.has(40))
        self.assertRaises(ValueError, b.since, 40)
        self.assertTrue(len(b.buf) <= 20)

    def test_resize(self):
        b = Backlog(100, 0)
        b.append(b"x" * 80)
        b.resize(30)
        self.assertEqual((b.histlen, b.first_offset), (30, 51))
        self.assertEqual(b.since(51), b"x" * 30)

    def test_command_encoding_and_size(self):
        argv = [b"SET", b"key", b"v" * 100]
        data = encode_command(argv)
        self.assertEqual(data, b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$100\r\n" +
                         b"v" * 100 + b"\r\n")
        self.assertEqual(command_size(argv), len(data))
        for n in (0, 1, 9, 10, 99, 100, 999, 1000, 12345):
            for argc in (1, 9, 10, 12):
                argv = [b"x" * n] * argc
                self.assertEqual(command_size(argv),
                                 len(encode_command(argv)))


class PsyncDecisionTest(ServerTestCase):
    def test_continue_inside_backlog(self):
        ids = _Ids(offset=50)
        b = Backlog(100, 0)
        b.append(b"x" * 50)
        self.assertEqual(psync_decision(ids, b, "a" * 40, 1), (True, None))
        self.assertEqual(psync_decision(ids, b, "A" * 40, 51), (True, None))
        ok, reason = psync_decision(ids, b, "a" * 40, 52)
        self.assertFalse(ok)
        self.assertIn("lack of backlog", reason)

    def test_full_resync_cases(self):
        ids = _Ids()
        b = Backlog(100, 0)
        self.assertEqual(psync_decision(ids, b, "?", -1),
                         (False, "Full resync requested by replica"))
        ok, reason = psync_decision(ids, b, "b" * 40, 1)
        self.assertFalse(ok)
        self.assertIn("Replication ID mismatch", reason)
        ok, reason = psync_decision(ids, None, "a" * 40, 1)
        self.assertFalse(ok)

    def test_replid2_up_to_the_second_offset(self):
        ids = _Ids(replid="c" * 40, replid2="a" * 40, second=31, offset=60)
        b = Backlog(100, 0)
        b.append(b"y" * 60)
        self.assertEqual(psync_decision(ids, b, "a" * 40, 31), (True, None))
        self.assertEqual(psync_decision(ids, b, "a" * 40, 20), (True, None))
        ok, reason = psync_decision(ids, b, "a" * 40, 32)
        self.assertFalse(ok)
        self.assertIn("Requested offset for second ID was 32", reason)

    def test_shift_replication_id(self):
        ids = _Ids(offset=77)
        ReplicationIds.shift(ids)
        self.assertEqual(ids.replid2, "a" * 40)
        self.assertEqual(ids.second_repl_offset, 78)
        self.assertNotEqual(ids.replid, "a" * 40)
        ReplicationIds.clear2(ids)
        self.assertEqual((ids.replid2, ids.second_repl_offset),
                         (NO_REPLID, -1))


class HandshakeTest(ServerTestCase):
    def handshake(self, **kwargs):
        link = Handshake("a" * 40, 101, 6380, **kwargs)
        self.assertEqual(link.start(), [("send", encode_command([b"PING"]))])
        return link

    def test_handshake_then_full_sync_with_eof_mark(self):
        link = self.handshake(auth=("user", "pw"), ip="10.0.0.1")
        events = link.receive(b"+PONG\r\n")
        self.assertEqual(events, [("send", b"".join([
            encode_command([b"AUTH", b"user", b"pw"]),
            encode_command([b"REPLCONF", b"listening-port", b"6380"]),
            encode_command([b"REPLCONF", b"ip-address", b"10.0.0.1"]),
            encode_command([b"REPLCONF", b"capa", b"eof", b"capa",
                            b"psync2", b"capa", b"rcluster-setslot"])]))])
        self.assertEqual(link.receive(b"+OK\r\n+OK\r\n+OK\r\n+OK\r"), [])
        events = link.receive(b"\n")
        self.assertEqual(events, [("send", encode_command(
            [b"PSYNC", b"a" * 40, b"101"]))])
        mark = b"m" * EOF_MARK_SIZE
        events = link.receive(b"\n+FULLRESYNC " + b"b" * 40 + b" 500\r\n\n"
                              b"$EOF:" + mark + b"\r\nREDIS0010abc")
        self.assertEqual(events[0], ("fullresync", "b" * 40, 500))
        self.assertEqual(events[1], ("rdb_start", None))
        got = b"".join(e[1] for e in events if e[0] == "rdb")
        # The mark split across chunks; the stream right after it.
        events = link.receive(b"def" + mark[:10])
        got += b"".join(e[1] for e in events if e[0] == "rdb")
        events = link.receive(mark[10:] + b"*1\r\n$4\r\nPING\r\n")
        got += b"".join(e[1] for e in events if e[0] == "rdb")
        self.assertEqual(got, b"REDIS0010abcdef")
        self.assertEqual(events[-2:], [("rdb_end",),
                                       ("stream", b"*1\r\n$4\r\nPING\r\n")])
        self.assertEqual(link.receive(b"more"), [("stream", b"more")])

    def test_sized_payload(self):
        link = self.handshake()
        link.receive(b"+PONG\r\n")
        link.receive(b"+OK\r\n+OK\r\n")
        events = link.receive(b"+FULLRESYNC " + b"c" * 40 + b" 7\r\n$5\r\n"
                              b"ab")
        self.assertEqual(events[1:], [("rdb_start", 5), ("rdb", b"ab")])
        events = link.receive(b"cdeXY")
        self.assertEqual(events, [("rdb", b"cde"), ("rdb_end",),
                                  ("stream", b"XY")])

    def test_continue_and_errors(self):
        link = self.handshake()
        link.receive(b"-NOAUTH Authentication required.\r\n")
        link.receive(b"-ERR unknown\r\n+OK\r\n")   # not critical
        events = link.receive(b"+CONTINUE " + b"d" * 40 + b"\r\nabc")
        self.assertEqual(events, [("continue", "d" * 40),
                                  ("stream", b"abc")])
        link = self.handshake()
        events = link.receive(b"-ERR nope\r\n")
        self.assertEqual(events[0][0], "error")
        link = self.handshake()
        link.receive(b"+PONG\r\n+OK\r\n+OK\r\n")
        self.assertEqual(link.receive(b"-LOADING busy\r\n")[0][0], "retry")
        link = self.handshake(auth=(None, "pw"))
        link.receive(b"+PONG\r\n")
        self.assertEqual(link.receive(b"-WRONGPASS x\r\n")[0],
                         ("error", "Unable to AUTH to MASTER: -WRONGPASS x"))

    def test_first_sync_asks_for_a_full_one(self):
        link = Handshake(None, 1, 6380)
        link.start()
        link.receive(b"+PONG\r\n")
        events = link.receive(b"+OK\r\n+OK\r\n")
        self.assertEqual(events, [("send", encode_command(
            [b"PSYNC", b"?", b"-1"]))])


class MasterSideTest(ServerTestCase):
    directives = {"repl_diskless_sync_delay": 0}

    def setUp(self):
        super().setUp()
        self.svc = ReplicationService(self.server, self.server.settings,
                                      self.clock)

    def attach(self, replid="?", offset=-1):
        replica = self.connect()
        self.assertEqual(self.call("REPLCONF", "listening-port", 6380,
                                   client=replica), b"OK")
        self.assertEqual(self.call("REPLCONF", "capa", "eof", "capa",
                                   "psync2", client=replica), b"OK")
        proto, transport = replica
        transport.clear()
        proto.dataReceived(request("PSYNC", replid, offset))
        return replica

    def run_transfer(self):
        for _ in range(100):
            self.clock.advance(0)

    def test_full_sync_then_stream_after_ack(self):
        self.call("SET", "a", "1")
        self.call("RPUSH", "l", "x", "y")
        return self.full_sync({b"a", b"l"})

    def full_sync(self, expected_keys):
        proto, transport = replica = self.attach()
        self.run_transfer()
        data = transport.value()
        self.assertTrue(data.startswith(b"+FULLRESYNC " +
                                        self.server.replid.encode() + b" 0"))
        head, _, rest = data.partition(b"\r\n")
        self.assertTrue(rest.startswith(b"$EOF:"))
        mark = rest[5:45]
        body = rest[47:]
        self.assertTrue(body.endswith(mark))
        records = rdb.RdbReader().feed(body[:-40])
        keys = {r.key for r in records if type(r).__name__ == "Entry"}
        self.assertEqual(keys, expected_keys)
        # Writes made meanwhile wait for the replica's first ACK.
        transport.clear()
        self.call("SET", "b", "2")
        self.assertEqual(transport.value(), b"")
        info = self.call("INFO", "replication").decode()
        self.assertIn("slave0:ip=127.0.0.1,port=6380,state=send_bulk", info)
        proto.dataReceived(request("REPLCONF", "ACK", 0))
        self.assertEqual(transport.value(), request("SELECT", 0) +
                         request("SET", "b", "2"))
        self.assertEqual(self.server.master_repl_offset,
                         len(transport.value()))
        info = self.call("INFO", "replication").decode()
        self.assertIn("connected_slaves:1", info)
        self.assertIn("state=online", info)
        self.assertIn("repl_backlog_active:1", info)
        self.assertEqual(self.call("ROLE")[0], b"master")
        self.assertEqual(self.server.stats.sync_full, 1)
        return replica

    def test_partial_resync_after_disconnect(self):
        proto, transport = self.test_full_sync_then_stream_after_ack()
        offset = self.server.master_repl_offset
        self.disconnect((proto, transport))
        self.svc.master.reap()
        self.call("SET", "c", "3")
        proto, transport = self.attach(self.server.replid, offset + 1)
        self.assertEqual(transport.value(), b"+CONTINUE " +
                         self.server.replid.encode() + b"\r\n" +
                         request("SET", "c", "3"))
        self.assertEqual(self.server.stats.sync_partial_ok, 1)
        # A history this master never had: full resync.
        other = self.attach("f" * 40, 5)
        self.assertEqual(self.server.stats.sync_partial_err, 1)
        self.run_transfer()
        self.assertTrue(other[1].value().startswith(b"+FULLRESYNC"))

    def test_wait(self):
        proto, transport = self.test_full_sync_then_stream_after_ack()
        writer = self.connect()
        self.call("SET", "w", "1", client=writer)
        target = self.server.master_repl_offset
        self.assertEqual(self.raw("WAIT", 1, 0, client=writer), b"")
        self.clock.advance(0)
        # The master asked for an ACK.
        self.assertTrue(transport.value().endswith(
            request("REPLCONF", "GETACK", "*")))
        proto.dataReceived(request("REPLCONF", "ACK", target))
        self.assertEqual(self.pending(writer), b":1\r\n")
        # Not enough replicas: the timeout answers with the count.
        self.assertEqual(self.raw("WAIT", 2, 100, client=writer), b"")
        self.clock.advance(0.2)
        self.assertEqual(self.pending(writer), b":1\r\n")
        self.assertEqual(self.call("WAIT", 0, 0), 1)
        # Inside MULTI, WAIT answers at once.
        self.call("MULTI")
        self.call("WAIT", 5, 0)
        self.assertEqual(self.call("EXEC"), [1])
        self.assertEqual(self.call("WAIT", 1, -1),
                         "ERR timeout is negative")

    def test_min_replicas_to_write(self):
        self.call("CONFIG", "SET", "min-replicas-to-write", "1")
        self.assertEqual(self.call("SET", "k", "v"),
                         "NOREPLICAS Not enough good replicas to write.")
        self.assertEqual(self.call("GET", "k"), None)
        self.call("CONFIG", "SET", "min-replicas-to-write", "0")
        self.full_sync(set())
        self.call("CONFIG", "SET", "min-replicas-to-write", "1")
        self.assertEqual(self.call("SET", "k", "v"), b"OK")
        self.clock.advance(11)
        self.assertEqual(self.call("SET", "k", "v"),
                         "NOREPLICAS Not enough good replicas to write.")
        self.call("CONFIG", "SET", "min-replicas-to-write", "0")
        self.assertEqual(self.call("SET", "k", "v"), b"OK")

    def test_replconf_errors(self):
        self.assertEqual(self.call("REPLCONF", "bogus", "1"),
                         "ERR Unrecognized REPLCONF option: bogus")
        self.assertEqual(self.call("REPLCONF", "listening-port"),
                         "ERR syntax error")
        self.assertEqual(self.call("FAILOVER"),
                         "ERR FAILOVER requires connected replicas.")
        self.assertEqual(self.call("FAILOVER", "ABORT"),
                         "ERR No failover in progress.")


class ReplicaSideTest(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.svc = ReplicationService(self.server, self.server.settings,
                                      self.clock)

    def link(self):
        self.assertEqual(self.call("REPLICAOF", "127.0.0.1", 7000), b"OK")
        host, port, factory, _, _ = self.clock.tcpClients[-1]
        self.assertEqual((host, port), ("127.0.0.1", 7000))
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        self.assertEqual(transport.value(), encode_command([b"PING"]))
        proto.dataReceived(b"+PONG\r\n")
        proto.dataReceived(b"+OK\r\n+OK\r\n")
        self.assertTrue(transport.value().endswith(encode_command(
            [b"PSYNC", self.server.replid.encode(), b"1"])))
        transport.clear()
        return proto, transport

    def master_rdb(self):
        from tests.protocol.helpers import make_server
        other, _ = make_server()
        other.keyspace.set(b"k1", b"v1")
        other.keyspace.set(b"h", {b"f": b"v"})
        other.keyspace.set(b"e", b"old")
        other.keyspace.set_expire(b"e", 1000)       # long expired
        out = []
        Snapshot(other.keyspace, rdb.RdbWriter(), out.append).run()
        return b"".join(out)

    def test_full_sync_stream_and_gates(self):
        self.call("SET", "stale", "1")
        proto, transport = self.link()
        mark = b"z" * 40
        proto.dataReceived(b"+FULLRESYNC " + b"e" * 40 + b" 1000\r\n$EOF:" +
                           mark + b"\r\n")
        body = self.master_rdb()
        proto.dataReceived(body[:20])
        # Loading: commands not flagged loading get -LOADING.
        self.assertEqual(self.call("GET", "k1"),
                         "LOADING Redis is loading the dataset in memory")
        self.assertIn(b"master_sync_in_progress:1",
                      self.raw("INFO", "replication"))
        proto.dataReceived(body[20:] + mark)
        self.assertEqual(transport.value(), encode_command(
            [b"REPLCONF", b"ACK", b"1000"]))
        self.assertEqual(self.server.replid, "e" * 40)
        self.assertEqual(self.call("GET", "stale"), None)
        self.assertEqual(self.call("GET", "k1"), b"v1")
        # An expired key is kept for the master's DEL, reported missing.
        self.assertEqual(self.call("GET", "e"), None)
        self.assertIn(b"e", self.ks.expires)
        stream = request("SELECT", 0) + request("SET", "k2", "v2") + \
            request("MULTI") + request("INCR", "n") + request("EXEC")
        proto.dataReceived(stream[:17])
        proto.dataReceived(stream[17:])
        self.assertEqual(self.call("GET", "k2"), b"v2")
        self.assertEqual(self.call("GET", "n"), b"1")
        self.assertEqual(self.server.master_repl_offset, 1000 + len(stream))
        self.assertEqual(self.svc.replica_offset(), 1000 + len(stream))
        # The master's commands see a key its replica's clock expired.
        proto.dataReceived(request("APPEND", "e", "+"))
        stream += request("APPEND", "e", "+")
        self.assertEqual(self.call("GET", "e"), None)
        self.assertEqual(self.ks.values[b"e"], b"old+")
        # GETACK is answered with the processed offset.
        transport.clear()
        proto.dataReceived(request("REPLCONF", "GETACK", "*"))
        self.assertEqual(transport.value(), encode_command(
            [b"REPLCONF", b"ACK", b"%d" % (1000 + len(stream))]))
        # Read-only.
        self.assertEqual(self.call("SET", "x", "1"),
                         "READONLY You can't write against a read only "
                         "replica.")
        self.call("MULTI")
        self.assertEqual(self.call("INCR", "x"),
                         "READONLY You can't write against a read only "
                         "replica.")
        self.call("DISCARD")
        role = self.call("ROLE")
        self.assertEqual(role[:4], [b"slave", b"127.0.0.1", 7000,
                                    b"connected"])
        info = self.call("INFO", "replication").decode()
        self.assertIn("master_link_status:up", info)
        self.assertIn("slave_repl_offset:%d" % (1000 + len(stream) + 37),
                      info)
        # The link breaks: stale data is still served (default).
        proto.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual(self.call("GET", "k1"), b"v1")
        self.call("CONFIG", "SET", "replica-serve-stale-data", "no")
        self.assertEqual(self.call("GET", "k1"),
                         "MASTERDOWN Link with MASTER is down and "
                         "replica-serve-stale-data is set to 'no'.")
        # Promotion: the history continues under a new id.
        old = self.server.replid
        offset = self.server.master_repl_offset
        self.assertEqual(self.call("REPLICAOF", "NO", "ONE"), b"OK")
        self.assertEqual(self.server.replid2, old)
        self.assertEqual(self.server.second_repl_offset, offset + 1)
        self.assertEqual(self.call("SET", "x", "1"), b"OK")
        self.assertEqual(self.call("GET", "k1"), b"v1")

    def test_partial_resync_with_a_new_id(self):
        self.server.replid = "a" * 40
        proto, transport = self.link()
        proto.dataReceived(b"+CONTINUE " + b"b" * 40 + b"\r\n" +
                           request("SET", "k", "v"))
        self.assertEqual(self.server.replid, "b" * 40)
        self.assertEqual(self.server.replid2, "a" * 40)
        self.assertEqual(self.server.second_repl_offset, 1)
        self.assertEqual(self.call("GET", "k"), b"v")

    def test_replicaof_arguments(self):
        self.assertEqual(self.call("REPLICAOF", "127.0.0.1", "x"),
                         "ERR value is not an integer or out of range")
        self.assertEqual(self.call("REPLICAOF", "no", "one"), b"OK")
        self.assertEqual(self.call("WAIT", 0, 0), 0)


class DigestTest(ServerTestCase):
    directives = {"enable_debug_command": "yes"}

    def test_digests_equal_redis_servers(self):
        # The values redis-server 7.0.15 prints for the same commands.
        self.assertEqual(self.call("DEBUG", "DIGEST"), b"0" * 40)
        self.call("SET", "a", "1")
        self.call("RPUSH", "l", "x", "y")
        self.call("SADD", "s", "a", "b", "7")
        self.call("ZADD", "z", "1.5", "m", "2", "n")
        self.call("HSET", "h", "f", "v")
        self.call("XADD", "x", "1-1", "f", "v")
        self.call("SET", "e", "v", "EX", "100")
        self.assertEqual(self.call("DEBUG", "DIGEST-VALUE", "a", "l", "s",
                                   "z", "h", "x", "e", "missing"), [
            b"b4fc66738120fba0b5aa500ab5c2bf89cea1c5da",
            b"a3b14a34cfbd69f970cd30aff36fd797e07b4dbc",
            b"4db2915dc242371e719444ddc8b328e38ac18e1c",
            b"908aeffe4e922542b456cb5c8f5b1961a763d7dd",
            b"90c76e9e9f4c62d642a34fc97c7dad503b51f906",
            b"2ed9a7a81688084b1f7eae33456ef7727d357031",
            b"311b17018163335616e089f6b951c82c477335ac",
            b"0" * 40])
        self.assertEqual(self.call("DEBUG", "DIGEST"),
                         b"912d2c145a73c783f533023d5d72e7f3778eb73e")
        self.assertEqual(digest.dataset_digest(self.ks),
                         "912d2c145a73c783f533023d5d72e7f3778eb73e")


class PsyncFailoverTest(ServerTestCase):
    directives = {"repl_diskless_sync_delay": 0}

    def setUp(self):
        super().setUp()
        self.svc = ReplicationService(self.server, self.server.settings,
                                      self.clock)

    def test_psync_failover(self):
        self.assertEqual(self.call("PSYNC", self.server.replid, 1,
                                   "FAILOVER"),
                         "ERR PSYNC FAILOVER can't be sent to a master.")
        ReplicaSideTest.link(self)
        proto = self.svc.link
        proto.dataReceived(b"+CONTINUE\r\n" + request("SET", "k", "v"))
        replid = self.server.replid
        offset = self.server.master_repl_offset
        self.assertEqual(self.call("PSYNC", "f" * 40, offset + 1,
                                   "FAILOVER"),
                         "ERR PSYNC FAILOVER replid must match my replid.")
        # Our master hands over: we become master and it continues.
        old = self.connect()
        self.call("REPLCONF", "capa", "psync2", client=old)
        old[1].clear()
        old[0].dataReceived(request("PSYNC", replid, offset + 1,
                                    "FAILOVER"))
        self.assertEqual(self.server.role, "master")
        self.assertEqual(self.server.replid2, replid)
        self.assertEqual(old[1].value(), b"+CONTINUE " +
                         self.server.replid.encode() + b"\r\n")
        self.assertEqual(self.call("SET", "x", "1"), b"OK")
        self.assertEqual(self.call("FAILOVER", "TO", "127.0.0.1", 1),
                         "ERR FAILOVER target HOST and PORT is not a "
                         "replica.")


class OutputLimitTest(ServerTestCase):
    directives = {"repl_diskless_sync_delay": 0}

    def test_syncing_replica_past_the_hard_limit_is_dropped(self):
        self.call("CONFIG", "SET", "client-output-buffer-limit",
                  "replica 1000 0 0")
        svc = ReplicationService(self.server, self.server.settings,
                                 self.clock)
        replica = MasterSideTest.attach(self)
        self.clock.advance(0)
        self.assertEqual(len(svc.master.replicas), 1)
        self.call("SET", "big", "x" * 2000)
        self.assertEqual(svc.master.replicas, [])
        self.assertTrue(replica[0].client.closing)
