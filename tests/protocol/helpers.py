"""Shared fixtures for protocol tests: a server on a fake clock, and
clients connected through StringTransport."""
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


def connect(server, peer=("127.0.0.1", 40000)):
    """A RespProtocol on a StringTransport; returns (protocol, transport)."""
    factory = RespFactory(server)
    from twisted.internet.address import IPv4Address
    proto = factory.buildProtocol(IPv4Address("TCP", *peer))
    transport = StringTransport(peerAddress=IPv4Address("TCP", *peer),
                                hostAddress=IPv4Address("TCP", "127.0.0.1", 6379))
    proto.makeConnection(transport)
    return proto, transport


def exchange(proto, transport, data: bytes) -> bytes:
    """Feed bytes, return what the server wrote in response."""
    transport.clear()
    proto.dataReceived(data)
    return transport.value()
