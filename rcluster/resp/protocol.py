"""Twisted adapter for the client port: bytes in, bytes out.

All the logic lives in the sans-IO ``Client`` and ``Server``; this protocol
only wires a transport to a client.
"""
from __future__ import annotations

from twisted.internet.protocol import Factory, Protocol


def _address(addr) -> str:
    host = getattr(addr, "host", None)
    if host is None:
        return str(addr)
    # Redis writes IPv6 addresses in brackets (anetFormatAddr).
    if ":" in host:
        return f"[{host}]:{addr.port}"
    return f"{host}:{addr.port}"


class RespProtocol(Protocol):
    client = None

    def connectionMade(self):
        transport = self.transport
        server = self.factory.server
        if len(server.clients) >= server.settings.maxclients:
            server.stats.rejected_connections += 1
            transport.write(b"-ERR max number of clients reached\r\n")
            transport.loseConnection()
            return
        self.client = server.new_client(
            _address(transport.getPeer()), _address(transport.getHost()),
            transport.write, transport.loseConnection)
        self.client.tls = self.factory.tls
        handle = getattr(transport, "getHandle", None)
        if handle is not None:
            try:
                self.client.fd = transport.getHandle().fileno()
            except Exception:
                pass

    def dataReceived(self, data):
        client = self.client
        if client is not None:
            self.factory.server.stats.total_net_input_bytes += len(data)
            client.feed(data)

    def connectionLost(self, reason):
        if self.client is not None:
            self.factory.server.client_gone(self.client)
            self.client = None


class RespFactory(Factory):
    protocol = RespProtocol

    def __init__(self, server, tls=False):
        self.server = server
        self.tls = tls
