"""The cluster bus on Twisted: a thin adapter between sockets and Links.

All protocol logic is in the sans-IO cluster engine (engine.py); this
module accepts peers on the bus port, opens the outbound links the cron asks for, and
moves bytes.  With ``tls-cluster yes`` both directions use TLS
(``rcluster.tls``).
"""
from __future__ import annotations

from twisted.internet.protocol import ClientFactory, Factory, Protocol
from rcluster.logs import logger

log = logger("rcluster.cluster")


class BusProtocol(Protocol):
    """One bus connection, inbound or outbound."""

    def __init__(self, engine, link=None):
        self.engine = engine
        self.link = link            # given for outbound, made for inbound

    def connectionMade(self):
        transport = self.transport
        outbound = self.link is not None
        if outbound and self.link.closed:
            # The engine gave up on this link while we were connecting.
            transport.loseConnection()
            return
        if not outbound:
            self.link = self.engine.accept_link()
        for name in ("setTcpNoDelay", "setTcpKeepAlive"):
            option = getattr(transport, name, None)  # TCP transports only
            if option is not None:
                option(True)
        self.link.attach(transport.write, transport.loseConnection,
                         _host(transport.getHost()), _host(transport.getPeer()))
        if outbound:
            self.engine.link_connected(self.link)
        else:
            peer = transport.getPeer()
            log.info("Accepting cluster node connection from {peer}",
                     peer=f"{_host(peer)}:{getattr(peer, 'port', '?')}",
                     redis_level="verbose")

    def dataReceived(self, data):
        if self.link is not None and not self.link.closed:
            self.engine.link_data(self.link, data)

    def connectionLost(self, reason):
        link = self.link
        if link is not None and not link.closed:
            self.engine.link_lost(link)


class BusServerFactory(Factory):
    """Accepts peers on the cluster bus port."""

    noisy = False

    def __init__(self, engine):
        self.engine = engine

    def buildProtocol(self, addr):
        protocol = BusProtocol(self.engine)
        protocol.factory = self
        return protocol


class LinkFactory(ClientFactory):
    """Connects one outbound link."""

    noisy = False

    def __init__(self, engine, link):
        self.engine = engine
        self.link = link

    def buildProtocol(self, addr):
        protocol = BusProtocol(self.engine, self.link)
        protocol.factory = self
        return protocol

    def clientConnectionFailed(self, connector, reason):
        node = self.link.node
        log.info("Connection with Node {name} at {ip}:{port} failed: {why}",
                 name=node.name if node else "?",
                 ip=node.ip if node else "?", port=node.cport if node else 0,
                 why=reason.getErrorMessage(), redis_level="verbose")
        if not self.link.closed:
            self.engine.link_lost(self.link)


class Connector:
    """Opens outbound links for the engine (installed as engine.connector)."""

    def __init__(self, engine, settings, reactor):
        self.engine = engine
        self.settings = settings
        self.reactor = reactor

    def __call__(self, link):
        node = link.node
        factory = LinkFactory(self.engine, link)
        timeout = max(self.settings.cluster_node_timeout / 1000.0, 1.0)
        bind = self.settings.bind_source_addr or None
        bind_address = (bind, 0) if bind else None
        if self.settings.tls_cluster:
            from rcluster.tls import client_context
            connector = self.reactor.connectSSL(
                node.ip, node.cport, factory, client_context(self.settings),
                timeout, bind_address)
        else:
            connector = self.reactor.connectTCP(
                node.ip, node.cport, factory, timeout, bind_address)
        # Until the connection is up, closing the link stops connecting.
        link.closer = connector.disconnect


def _host(address) -> str:
    return getattr(address, "host", "") or ""
