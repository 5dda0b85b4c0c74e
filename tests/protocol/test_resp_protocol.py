"""The client connection end to end, through RespProtocol on a
StringTransport: pipelining, protocol errors, blocked clients, CLIENT REPLY
modes, pushes, limits, and the admission checks of the protocol adapter.

Expected bytes were checked against redis-server 7.0.15.
"""
import random
import socket

import hiredis
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from rcluster.commands.table import Command, key_range
from rcluster.resp.codec import NO_REPLY, OK, Push
from rcluster.resp.protocol import (MAX_CLIENTS, MAX_CLIENTS_CLUSTER,
                                    PROTECTED_MODE, RespFactory)
from tests.protocol.helpers import (ServerTestCase, connect, exchange,
                                    make_server, request)


def replies(data: bytes) -> list:
    """Parse replies, insisting that they are complete and well formed."""
    reader = hiredis.Reader()
    reader.feed(data)
    out = []
    while True:
        reply = reader.gets()
        if reply is False:
            break
        out.append(reply)
    assert not reader.has_data(), data
    return out


def add_command(server, name, handler, arity=-1, flags="", keys=None):
    """A command for these tests only, in this server's table."""
    specs = (key_range(*keys),) if keys else ()
    row = Command(name, handler, arity, frozenset(flags.split()), specs)
    server.table.add(row)
    return row


def install_test_commands(server):
    """xblock KEY: the value, or wait until KEY is set.
    xreply on|off|skip: CLIENT REPLY.  xpush ID TEXT: push to a client."""
    def xblock(c, argv):
        value = c.server.keyspace.lookup(argv[1])
        if value is not None:
            return value
        return c.server.blocking.block(c, [argv[1]], 0, row, argv, None)
    row = add_command(server, "xblock", xblock, 2, "readonly", (1, 1, 1))

    def xreply(c, argv):
        c.set_reply_mode(argv[1].decode())
        return OK if argv[1] == b"on" else NO_REPLY
    add_command(server, "xreply", xreply, 2)

    def xpush(c, argv):
        c.server.clients[int(argv[1])].push(Push([b"message", argv[2]]))
        return b"pushed"
    add_command(server, "xpush", xpush, 3)


PIPELINE = (request(b"SET", b"k", b"v") + b"GET k\r\n" +
            request(b"ECHO", b"a\r\nb") + b"\r\n" + request(b"PING") +
            b"ECHO \"x\\x41\"\n" + request(b"APPEND", b"k", b"w") +
            request(b"GET", b"k"))
PIPELINE_REPLIES = (b"+OK\r\n$1\r\nv\r\n$4\r\na\r\nb\r\n+PONG\r\n"
                    b"$2\r\nxA\r\n:2\r\n$2\r\nvw\r\n")


class ServerWithTestCommands(ServerTestCase):
    """A server with the test commands above (no tests here)."""

    def setUp(self):
        super().setUp()
        install_test_commands(self.server)


class PipeliningTests(ServerTestCase):
    def feed(self, chunks, proto=None, transport=None):
        proto = proto or self.proto
        transport = transport or self.transport
        transport.clear()
        for chunk in chunks:
            proto.dataReceived(chunk)
        return transport.value()

    def test_one_chunk(self):
        self.assertEqual(self.feed([PIPELINE]), PIPELINE_REPLIES)

    def test_every_split_point(self):
        for i in range(len(PIPELINE) + 1):
            self.server.keyspace.flush()
            self.assertEqual(self.feed([PIPELINE[:i], PIPELINE[i:]]),
                             PIPELINE_REPLIES, i)

    def test_byte_by_byte(self):
        self.assertEqual(self.feed([PIPELINE[i:i + 1]
                                    for i in range(len(PIPELINE))]),
                         PIPELINE_REPLIES)

    def test_every_split_point_by_the_exact_rules(self):
        # A client that must authenticate is parsed by the exact rules
        # only; everything but AUTH gets NOAUTH.
        server, _ = make_server(requirepass="pw")
        proto, transport = connect(server)
        expected = b"-NOAUTH Authentication required.\r\n" * 7
        for i in range(len(PIPELINE) + 1):
            self.assertEqual(self.feed([PIPELINE[:i], PIPELINE[i:]], proto,
                                       transport), expected, i)

    def test_one_write_per_batch(self):
        writes = []
        self.proto.client.write = writes.append
        self.proto.dataReceived(PIPELINE)
        self.assertEqual(writes, [PIPELINE_REPLIES])
        # A request split across chunks: one write per chunk with replies.
        del writes[:]
        self.proto.dataReceived(PIPELINE[:30])
        self.proto.dataReceived(PIPELINE[30:])
        self.assertEqual(len(writes), 2)

    def test_authentication_mid_chunk_lifts_the_limits(self):
        # Redis parses the next request after running AUTH: its limits
        # no longer apply to what follows in the same chunk.
        server, _ = make_server(requirepass="pw")
        proto, transport = connect(server)
        big = request(b"ECHO", b"x" * 20000)
        many = request(b"MGET", *[b"k"] * 12)
        self.assertEqual(
            exchange(proto, transport, b"AUTH pw\r\n" + big + many),
            b"+OK\r\n$20000\r\n" + b"x" * 20000 + b"\r\n*12\r\n" +
            b"$-1\r\n" * 12)
        # RESET forgets the authentication: the limits are back for the
        # requests after it, even those already read.
        self.assertEqual(exchange(proto, transport, request(b"RESET") + many),
                         b"+RESET\r\n-ERR Protocol error: unauthenticated "
                         b"multibulk length\r\n")
        self.assertTrue(transport.disconnecting)


class ProtocolErrorTests(ServerTestCase):
    def test_error_after_the_requests_before_it(self):
        data = request(b"SET", b"k", b"1") + b"*1\r\n$x\r\n" + \
            request(b"SET", b"k", b"2")
        self.assertEqual(exchange(self.proto, self.transport, data),
                         b"+OK\r\n-ERR Protocol error: invalid bulk length\r\n")
        self.assertTrue(self.transport.disconnecting)
        # Nothing more is read from that connection.
        self.assertEqual(exchange(self.proto, self.transport,
                                  request(b"SET", b"k", b"3")), b"")
        self.assertEqual(self.server.keyspace.lookup(b"k"), b"1")
        self.assertEqual(self.server.stats.total_error_replies, 1)

    def test_every_error_text(self):
        big = b"x" * (64 * 1024 + 1)
        cases = [
            (b"*abc\r\n", b"invalid multibulk length"),
            (b"*3000000000\r\n", b"invalid multibulk length"),
            (b"*1\r\n$-1\r\n", b"invalid bulk length"),
            (b"*1\r\n$536870913\r\n", b"invalid bulk length"),
            (b"*1\r\n:1\r\n", b"expected '$', got ':'"),
            (b"*1\r\n\xff\r\n", b"expected '$', got '\xff'"),
            (big, b"too big inline request"),
            (b"*1" + big, b"too big mbulk count string"),
            (b"*1\r\n$1" + big, b"too big bulk count string"),
            (b"ECHO \"a\r\n", b"unbalanced quotes in request"),
        ]
        for data, text in cases:
            proto, transport = connect(self.server)
            self.assertEqual(exchange(proto, transport, data),
                             b"-ERR Protocol error: " + text + b"\r\n", data)
            self.assertTrue(transport.disconnecting)

    def test_unauthenticated_limits(self):
        server, _ = make_server(requirepass="pw")
        for data, text in ((request(*[b"a"] * 11), b"multibulk"),
                           (request(b"x" * 16385), b"bulk")):
            proto, transport = connect(server)
            self.assertEqual(exchange(proto, transport, data),
                             b"-ERR Protocol error: unauthenticated " + text +
                             b" length\r\n")

    def test_other_clients_keep_being_served(self):
        bad, bad_transport = self.proto, self.transport
        good, good_transport = connect(self.server, ("127.0.0.1", 40001))
        self.assertEqual(exchange(good, good_transport,
                                  request(b"SET", b"k", b"v")), b"+OK\r\n")
        self.assertEqual(exchange(bad, bad_transport, b"*1\r\n$4\r\nPING\r\n*x\r\n"),
                         b"+PONG\r\n-ERR Protocol error: invalid multibulk "
                         b"length\r\n")
        bad.connectionLost(None)
        self.assertEqual(exchange(good, good_transport, b"GET k\r\n"),
                         b"$1\r\nv\r\n")
        self.assertEqual(list(self.server.clients), [good.client.id])

    def test_resp3_client(self):
        exchange(self.proto, self.transport, b"HELLO 3\r\n")
        self.assertEqual(exchange(self.proto, self.transport, b"*1\r\n$\r\n"),
                         b"-ERR Protocol error: invalid bulk length\r\n")


class FuzzTests(TestCase):
    """Whatever a client sends, the node answers well-formed replies and
    no exception escapes."""

    SAMPLE = (request(b"SET", b"key", b"value") + b"GET key\r\n" +
              request(b"APPEND", b"key", b"\x00\xff\r\n") +
              request(b"MGET", b"key", b"nokey") + b"ECHO 'a b' \"\\x41\"\r\n" +
              request(b"INCR", b"n") + request(b"PING") + b"\r\n*0\r\n" +
              request(b"STRLEN", b"key"))

    INSERTS = [b"*", b"$", b"\r", b"\n", b"-", b"0", b"9", b"\x00", b"\"",
               b"*2147483647\r\n", b"$999999\r\n", b"*1\r\n" * 3, b"+x\r\n"]

    def setUp(self):
        self.server, _ = make_server()

    def check(self, chunks):
        proto, transport = connect(self.server)
        for chunk in chunks:
            proto.dataReceived(chunk)
        proto.connectionLost(None)
        out = replies(transport.value())
        if transport.disconnecting and out:
            last = out[-1]
            self.assertTrue(last == b"OK" or isinstance(last, hiredis.ReplyError)
                            and str(last).startswith("ERR Protocol error: "),
                            (chunks, out))
        return out

    def test_random_bytes(self):
        rng = random.Random(1)
        alphabet = b"*$+-:\r\n0123456789 \"'\\x\x00\xffPINGSETabc"
        for _ in range(1500):
            data = bytes(rng.choice(alphabet)
                         for _ in range(rng.randrange(1, 80)))
            self.check([data])

    def test_truncations_and_cuts(self):
        rng = random.Random(2)
        for _ in range(500):
            data = self.SAMPLE[:rng.randrange(len(self.SAMPLE) + 1)]
            cut = rng.randrange(len(data) + 1)
            self.check([data[:cut], data[cut:]])

    def test_mutations(self):
        rng = random.Random(3)
        for _ in range(1500):
            data = bytearray(self.SAMPLE)
            for _ in range(rng.randrange(1, 4)):
                pos = rng.randrange(len(data))
                action = rng.randrange(3)
                if action == 0:
                    data[pos] = rng.randrange(256)
                elif action == 1:
                    del data[pos]
                else:
                    data[pos:pos] = rng.choice(self.INSERTS)
            cut = rng.randrange(len(data) + 1)
            self.check([bytes(data[:cut]), bytes(data[cut:])])


class BlockedClientTests(ServerWithTestCommands):
    def setUp(self):
        super().setUp()
        self.other, self.other_transport = connect(self.server,
                                                   ("127.0.0.1", 40001))

    def wake(self, value=b"v"):
        exchange(self.other, self.other_transport,
                 request(b"SET", b"k", value))

    def test_requests_wait_and_resume_in_order(self):
        data = request(b"ECHO", b"1") + request(b"XBLOCK", b"k") + \
            request(b"ECHO", b"2") + b"ECHO 3\r\n"
        self.assertEqual(exchange(self.proto, self.transport, data),
                         b"$1\r\n1\r\n")
        self.assertEqual(exchange(self.proto, self.transport,
                                  request(b"ECHO", b"4")), b"")
        self.transport.clear()
        self.wake()
        self.assertEqual(self.transport.value(),
                         b"$1\r\nv\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n")
        self.assertIsNone(self.proto.client.blocked)

    def test_input_is_only_buffered_while_blocked(self):
        exchange(self.proto, self.transport, request(b"XBLOCK", b"k"))
        data = request(b"ECHO", b"later") * 3
        self.assertEqual(exchange(self.proto, self.transport, data), b"")
        self.assertEqual(self.proto.client.query_buffer, len(data))
        self.wake()
        self.assertEqual(self.proto.client.query_buffer, 0)

    def test_protocol_error_sent_while_blocked(self):
        exchange(self.proto, self.transport, request(b"XBLOCK", b"k"))
        self.assertEqual(exchange(self.proto, self.transport,
                                  request(b"ECHO", b"a") + b"*1\r\n$x\r\n"), b"")
        self.assertFalse(self.transport.disconnecting)
        self.transport.clear()
        self.wake()
        self.assertEqual(self.transport.value(),
                         b"$1\r\nv\r\n$1\r\na\r\n"
                         b"-ERR Protocol error: invalid bulk length\r\n")
        self.assertTrue(self.transport.disconnecting)

    def test_query_buffer_limit_while_blocked(self):
        self.server.settings.apply("client-query-buffer-limit", ["1mb"])
        exchange(self.proto, self.transport, request(b"XBLOCK", b"k"))
        chunk = request(b"ECHO", b"x" * 60000)
        for _ in range(17):
            self.assertEqual(exchange(self.proto, self.transport, chunk), b"")
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(exchange(self.proto, self.transport, chunk), b"")
        self.assertTrue(self.transport.disconnecting)

    def test_complete_answers_and_resumes_with_one_write(self):
        writes = []
        self.proto.client.write = writes.append
        self.proto.dataReceived(request(b"XBLOCK", b"k") + request(b"PING"))
        client = self.proto.client
        self.server.blocking.forget(client)     # as Blocking.unblock does
        client.complete(b"done")
        self.assertEqual(writes, [b"$4\r\ndone\r\n+PONG\r\n"])

    def test_paused_client_resumes_in_order(self):
        self.server.pause("write", self.server.clock.seconds() + 10)
        data = request(b"ECHO", b"1") + request(b"SET", b"k", b"v") + \
            request(b"ECHO", b"2")
        self.assertEqual(exchange(self.proto, self.transport, data),
                         b"$1\r\n1\r\n")
        self.transport.clear()
        self.server.unpause()
        self.assertEqual(self.transport.value(), b"+OK\r\n$1\r\n2\r\n")


class ReplyModeTests(ServerWithTestCommands):
    def send(self, data):
        return exchange(self.proto, self.transport, data)

    def test_off_and_on(self):
        self.assertEqual(self.send(b"XREPLY off\r\nPING\r\nECHO a\r\n"), b"")
        self.assertEqual(self.send(b"XREPLY on\r\nPING\r\n"), b"+OK\r\n+PONG\r\n")

    def test_skip_silences_exactly_the_next_command(self):
        self.assertEqual(self.send(b"XREPLY skip\r\nECHO a\r\nECHO b\r\n"),
                         b"$1\r\nb\r\n")
        # Across chunks too.
        self.assertEqual(self.send(b"XREPLY skip\r\n"), b"")
        self.assertEqual(self.send(b"ECHO c\r\n"), b"")
        self.assertEqual(self.send(b"ECHO d\r\n"), b"$1\r\nd\r\n")

    def test_empty_request_uses_up_a_skip(self):
        # Redis resets the client after an empty line or '*0' as well.
        self.assertEqual(self.send(b"XREPLY skip\r\n\r\nECHO a\r\n"),
                         b"$1\r\na\r\n")
        self.assertEqual(self.send(b"XREPLY skip\r\n*0\r\nECHO b\r\n"),
                         b"$1\r\nb\r\n")

    def test_skip_while_off_stays_off(self):
        self.assertEqual(self.send(b"XREPLY off\r\nXREPLY skip\r\nECHO a\r\n"
                                   b"ECHO b\r\n"), b"")

    def test_pushes_are_not_silenced(self):
        client_id = b"%d" % self.proto.client.id
        self.assertEqual(self.send(b"XREPLY off\r\nXPUSH " + client_id +
                                   b" hi\r\n"),
                         b"*2\r\n$7\r\nmessage\r\n$2\r\nhi\r\n")

    def test_protocol_error_when_off_closes_silently(self):
        self.assertEqual(self.send(b"XREPLY off\r\n*x\r\n"), b"")
        self.assertTrue(self.transport.disconnecting)

    def test_blocked_command_after_skip_is_silent(self):
        other, other_transport = connect(self.server, ("127.0.0.1", 40001))
        self.assertEqual(self.send(b"XREPLY skip\r\nXBLOCK k\r\nECHO a\r\n"), b"")
        self.transport.clear()
        client = self.proto.client
        self.server.blocking.forget(client)
        client.complete(b"v")
        self.assertEqual(self.transport.value(), b"$1\r\na\r\n")


class QuitAndPushTests(ServerWithTestCommands):
    def test_quit_flushes_ok_then_closes(self):
        writes = []
        self.proto.client.write = writes.append
        self.proto.dataReceived(b"PING\r\nQUIT\r\nSET k v\r\n")
        self.assertEqual(writes, [b"+PONG\r\n+OK\r\n"])
        self.assertTrue(self.transport.disconnecting)
        self.assertIsNone(self.server.keyspace.lookup(b"k"))
        self.proto.dataReceived(b"SET k v\r\n")
        self.assertEqual(writes, [b"+PONG\r\n+OK\r\n"])

    def test_push_to_another_client_is_written_at_once(self):
        other, other_transport = connect(self.server, ("127.0.0.1", 40001))
        exchange(self.proto, self.transport,
                 b"XPUSH %d one\r\nXPUSH %d two\r\n" % ((other.client.id,) * 2))
        self.assertEqual(other_transport.value(),
                         b"*2\r\n$7\r\nmessage\r\n$3\r\none\r\n"
                         b"*2\r\n$7\r\nmessage\r\n$3\r\ntwo\r\n")

    def test_push_to_a_client_in_its_batch_keeps_the_order(self):
        writes = []
        self.proto.client.write = writes.append
        exchange(self.proto, self.transport, b"HELLO 3\r\n")
        del writes[:]
        self.proto.dataReceived(b"PING\r\nXPUSH %d hi\r\nPING\r\n"
                                % self.proto.client.id)
        self.assertEqual(writes, [b"+PONG\r\n>2\r\n$7\r\nmessage\r\n$2\r\nhi\r\n"
                                  b"$6\r\npushed\r\n+PONG\r\n"])


class LimitTests(ServerTestCase):
    def test_proto_max_bulk_len_applies_to_connected_clients(self):
        self.server.settings.apply("proto-max-bulk-len", ["1mb"])
        self.assertEqual(exchange(self.proto, self.transport,
                                  b"*2\r\n$4\r\nECHO\r\n$1048577\r\n"),
                         b"-ERR Protocol error: invalid bulk length\r\n")

    def test_query_buffer_limit_closes_without_reply(self):
        self.server.settings.apply("client-query-buffer-limit", ["1mb"])
        self.server.settings.apply("proto-max-bulk-len", ["4mb"])
        self.assertEqual(exchange(self.proto, self.transport,
                                  b"PING\r\n*2\r\n$3\r\nSET\r\n$2000000\r\n"),
                         b"+PONG\r\n")
        chunk = b"x" * 65536
        for _ in range(16):
            self.assertEqual(exchange(self.proto, self.transport, chunk), b"")
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(exchange(self.proto, self.transport, b"x"), b"")
        self.assertTrue(self.transport.disconnecting)

    def test_big_argument(self):
        value = bytes(range(256)) * 4096      # 1 MiB
        data = request(b"SET", b"k", value) + request(b"STRLEN", b"k")
        self.transport.clear()
        for i in range(0, len(data), 65536):
            self.proto.dataReceived(data[i:i + 65536])
        self.assertEqual(self.transport.value(), b"+OK\r\n:1048576\r\n")
        self.assertEqual(self.server.keyspace.lookup(b"k"), value)

    def test_network_statistics(self):
        stats = self.server.stats
        before = stats.total_net_input_bytes, stats.net_output_bytes
        exchange(self.proto, self.transport, b"PING\r\nPING\r\n")
        self.assertEqual(stats.total_net_input_bytes - before[0], 12)
        self.assertEqual(stats.net_output_bytes - before[1], 14)


class FakeSocket:
    def __init__(self):
        self.options = []

    def setsockopt(self, level, option, value):
        self.options.append((level, option, value))

    def fileno(self):
        return 42


class FakeTCPTransport(StringTransport):
    """A StringTransport with the TCP knobs of a real connection."""

    def __init__(self, peer):
        super().__init__(peerAddress=peer,
                         hostAddress=IPv4Address("TCP", "127.0.0.1", 6379))
        self.socket = FakeSocket()
        self.keepalive = self.nodelay = None

    def setTcpKeepAlive(self, enabled):
        self.keepalive = enabled

    def setTcpNoDelay(self, enabled):
        self.nodelay = enabled

    def getHandle(self):
        return self.socket


class AdmissionTests(TestCase):
    REMOTE = ("10.1.2.3", 50000)

    def test_protected_mode_refuses_remote_clients(self):
        server, _ = make_server()
        proto, transport = connect(server, self.REMOTE)
        self.assertEqual(transport.value(), PROTECTED_MODE)
        self.assertTrue(PROTECTED_MODE.startswith(
            b"-DENIED Redis is running in protected mode because protected "
            b"mode is enabled and no password is set for the default user."))
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(proto.client)
        self.assertEqual(server.clients, {})
        self.assertEqual(server.stats.rejected_connections, 1)
        self.assertEqual(server.stats.total_connections_received, 0)
        proto.dataReceived(b"PING\r\n")      # ignored
        proto.connectionLost(None)

    def test_protected_mode_lets_local_clients_in(self):
        server, _ = make_server()
        for peer in (("127.0.0.1", 1), ("::1", 2), UNIXAddress(None)):
            proto, transport = connect(server, peer)
            self.assertEqual(exchange(proto, transport, b"PING\r\n"),
                             b"+PONG\r\n", peer)
        # Only those two addresses count as loopback, as in Redis.
        for peer in (("::ffff:127.0.0.1", 3), ("127.0.0.2", 4)):
            proto, transport = connect(server, peer)
            self.assertEqual(transport.value(), PROTECTED_MODE, peer)

    def test_password_or_protected_mode_off_lets_remote_clients_in(self):
        for directives in ({"requirepass": "pw"}, {"protected_mode": "no"}):
            server, _ = make_server(**directives)
            proto, transport = connect(server, self.REMOTE)
            self.assertEqual(transport.value(), b"")
            self.assertIsNotNone(proto.client)

    def test_maxclients(self):
        server, _ = make_server(maxclients=2)
        first, _ = connect(server)
        connect(server)
        proto, transport = connect(server)
        self.assertEqual(transport.value(), MAX_CLIENTS)
        self.assertEqual(MAX_CLIENTS, b"-ERR max number of clients reached\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(server.clients), 2)
        first.connectionLost(None)
        proto, transport = connect(server)
        self.assertEqual(exchange(proto, transport, b"PING\r\n"), b"+PONG\r\n")

    def test_maxclients_in_cluster_mode_and_over_tls(self):
        server, _ = make_server(maxclients=1, cluster_enabled="yes")
        connect(server)
        proto, transport = connect(server)
        self.assertEqual(transport.value(), MAX_CLIENTS_CLUSTER)
        self.assertEqual(MAX_CLIENTS_CLUSTER, b"-ERR max number of clients + "
                                              b"cluster connections reached\r\n")
        # Redis turns TLS clients away before the handshake: no message.
        proto, transport = connect(server, factory=RespFactory(server, tls=True))
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)

    def test_keepalive_and_nodelay(self):
        server, _ = make_server(tcp_keepalive=60)
        transport = FakeTCPTransport(IPv4Address("TCP", "127.0.0.1", 1))
        proto, _ = connect(server, transport=transport)
        self.assertEqual((transport.keepalive, transport.nodelay), (1, True))
        self.assertEqual(transport.socket.options, [
            (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60),
            (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 20),
            (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)])
        self.assertEqual(proto.client.fd, 42)
        server, _ = make_server(tcp_keepalive=0)
        transport = FakeTCPTransport(IPv4Address("TCP", "127.0.0.1", 1))
        connect(server, transport=transport)
        self.assertIsNone(transport.keepalive)

    def test_addresses(self):
        server, _ = make_server(unixsocket="/tmp/r.sock")
        proto, _ = connect(server, ("::1", 5000))
        self.assertEqual(proto.client.addr, "[::1]:5000")
        self.assertEqual(proto.client.laddr, "127.0.0.1:6379")
        proto, _ = connect(server, UNIXAddress(None))
        self.assertEqual(proto.client.addr, "/tmp/r.sock:0")
