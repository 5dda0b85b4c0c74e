"""Shared fixtures for protocol tests: a server on a fake clock, and
clients connected through StringTransport."""
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from rcluster.config import Settings
from rcluster.resp.protocol import RespFactory
from rcluster.server import Server


def make_server(**directives):
    """A standalone server on a MemoryReactorClock; directives as kwargs
    with underscores (cluster_enabled='no' is the default here)."""
    settings = Settings()
    for name, value in directives.items():
        settings.apply(name.replace("_", "-"), str(value).split())
    reactor = MemoryReactorClock()
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
