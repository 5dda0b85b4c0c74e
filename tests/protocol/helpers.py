"""Shared fixtures for protocol and unit tests: a server on a fake clock,
clients connected through StringTransport, RESP requests and parsed
replies, and ``ServerTestCase``, the base of the command-family tests."""
import hiredis
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from rcluster.config import Settings
from rcluster.resp.protocol import RespFactory
from rcluster.server import Server

NOW = 1_700_000_000          # ServerTestCase's clock starts here, unix seconds

# Redis's error texts, as ServerTestCase.call returns them.
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INT = "ERR value is not an integer or out of range"


def make_server(now=0, **directives):
    """A standalone server on a MemoryReactorClock that reads ``now`` (unix
    seconds) when the server is made; directives as kwargs with
    underscores (cluster_enabled='no' is the default here)."""
    settings = Settings()
    for name, value in directives.items():
        settings.apply(name.replace("_", "-"), str(value).split())
    reactor = MemoryReactorClock()
    reactor.advance(now)
    return Server(settings, reactor), reactor


def address(peer):
    """An IAddress from (host, port), or the address itself."""
    if not isinstance(peer, tuple):
        return peer
    host, port = peer
    return IPv6Address("TCP", host, port) if ":" in host \
        else IPv4Address("TCP", host, port)


def connect(server, peer=("127.0.0.1", 40000), factory=None, transport=None):
    """A RespProtocol on a StringTransport; returns (protocol, transport).

    ``peer``: (host, port) or an address; ``factory``: a RespFactory (TLS
    or not) to share between connections; ``transport``: a transport to
    use instead of a new StringTransport."""
    factory = factory or RespFactory(server)
    peer = address(peer)
    proto = factory.buildProtocol(peer)
    if transport is None:
        transport = StringTransport(
            peerAddress=peer,
            hostAddress=IPv4Address("TCP", "127.0.0.1", 6379))
    proto.makeConnection(transport)
    return proto, transport


def exchange(proto, transport, data: bytes) -> bytes:
    """Feed bytes, return what the server wrote in response."""
    transport.clear()
    proto.dataReceived(data)
    return transport.value()


def bulks(*items, prefix=b"*") -> bytes:
    """An aggregate of bulk strings (prefix b"~" for a RESP3 set); each
    item is bytes, or anything str() spells."""
    parts = [b"%b%d\r\n" % (prefix, len(items))]
    for item in items:
        item = item if isinstance(item, bytes) else str(item).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(item), item))
    return b"".join(parts)


def request(*args) -> bytes:
    """A RESP request: an array of bulk strings."""
    return bulks(*args)


def parse(data: bytes):
    """The one reply in data: errors as str, the rest as hiredis gives it
    (bytes, int, list, None)."""
    reader = hiredis.Reader()
    reader.feed(data)
    reply = reader.gets()
    assert reader.gets() is False, data
    return str(reply) if isinstance(reply, hiredis.ReplyError) else reply


class ServerTestCase(TestCase):
    """A server born at NOW on a fake clock, and clients talking RESP to it
    (no tests here: the command-family test modules build on it).

    ``self.proto, self.transport`` is the first client (127.0.0.1:40000);
    ``raw`` returns the exact bytes written back, ``call`` the parsed
    reply (errors as str)."""

    directives: dict = {}

    def setUp(self):
        self.server, self.clock = make_server(now=NOW, **self.directives)
        self.ks = self.server.keyspace
        self.proto, self.transport = connect(self.server)

    def connect(self, host="127.0.0.1", resp3=False):
        """Another client, on the next port (40002, 40003...)."""
        client = connect(self.server,
                         (host, 40001 + len(self.server.clients)))
        if resp3:
            self.resp3(client)
        return client

    def resp3(self, client=None):
        self.assertTrue(self.raw("HELLO", 3, client=client).startswith(b"%"))

    def raw(self, *args, client=None) -> bytes:
        proto, transport = client or (self.proto, self.transport)
        return exchange(proto, transport, request(*args))

    def call(self, *args, client=None):
        return parse(self.raw(*args, client=client))

    def pending(self, client) -> bytes:
        """What a (blocked) client was sent since it was last read."""
        transport = client[1]
        data = transport.value()
        transport.clear()
        return data

    def disconnect(self, client):
        proto, transport = client
        transport.loseConnection()
        proto.connectionLost(Failure(ConnectionError("gone")))

    def exec_watching(self, key, queued, *write) -> bytes:
        """WATCH key, another client runs ``write``, then MULTI, the
        ``queued`` command, EXEC: EXEC's reply."""
        self.raw("WATCH", key)
        self.raw(*write, client=self.connect())
        self.raw("MULTI")
        self.raw(*queued)
        return self.raw("EXEC")

    def capture_propagation(self) -> list:
        """The argv of every op the write path hands its sinks from now on
        (MULTI and EXEC included)."""
        sent = []
        self.server.write_path.add_sink(
            lambda db, ops: sent.extend(list(argv) for argv in ops))
        return sent
