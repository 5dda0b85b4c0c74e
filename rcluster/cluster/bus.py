"""The cluster bus on Twisted: a thin adapter between sockets and Links.

All protocol logic is in the sans-IO cluster engine (engine.py); this
module accepts peers on the bus port, opens the outbound links the cron asks for, and
moves bytes.  With ``tls-cluster yes`` both directions use TLS
(``rcluster.tls``).
"""
from __future__ import annotations

from functools import partial

from twisted.internet.protocol import ClientFactory, Factory, Protocol

from rcluster.logs import logger
from rcluster.memory import transport_pending
from rcluster.resp.protocol import is_plain_tcp, write_through

log = logger("rcluster.cluster")

# Redis's MAX_CLUSTER_ACCEPTS_PER_CALL: inbound bus connections accepted
# per cron period; beyond that the listening ports pause (the peers wait
# in the kernel's backlog) until the next cron.
MAX_CLUSTER_ACCEPTS_PER_CALL = 1000


class WriteBatcher:
    """Batches bus writes per link per reactor turn.

    ``Link.send`` calls ``BusProtocol.queue``: frames wait in the
    protocol's list until ``flush()``, which the bus runs after each event
    it hands to the engine (data received, cron, connection made).  Frames
    sent from anywhere else (a CLUSTER command, a PUBLISH) go at the end
    of the reactor turn, with ``reactor`` (else at once): after the
    client's reply, as in Redis, which writes replies before its next
    poll and bus messages when that poll finds the link writable.  So the
    PONG a target broadcasts for SETSLOT NODE reaches the source after
    redis-cli's own SETSLOT NODE to it, which then has nothing left to
    change (and fsync).  A flush writes each link's frames as one
    buffer, through resp/protocol.py's write_through: straight to the
    socket when Twisted's own buffer is empty (no EPOLLOUT registration
    and extra reactor turn per message), else ``transport.write``, so
    ordering is kept."""

    def __init__(self, reactor=None):
        self.dirty: list = []       # protocols with queued frames
        self.depth = 0              # inside an event the bus will flush
        self.reactor = reactor
        self.later = None           # the end-of-turn flush, when scheduled

    def queued(self, protocol):
        self.dirty.append(protocol)
        if self.depth == 0:
            # Not inside a bus event: at the end of this turn.
            if self.reactor is None:
                self.flush()
            elif self.later is None:
                self.later = self.reactor.callLater(0, self.flush)

    def flush(self):
        if self.later is not None:
            if self.later.active():
                self.later.cancel()
            self.later = None
        dirty, self.dirty = self.dirty, []
        for protocol in dirty:
            protocol.flush()

    def __enter__(self):
        self.depth += 1
        return self

    def __exit__(self, *exc):
        self.depth -= 1
        if self.depth == 0 and self.dirty:
            self.flush()
        return False


class BusProtocol(Protocol):
    """One bus connection, inbound or outbound."""

    def __init__(self, engine, link=None, batcher=None):
        self.engine = engine
        self.link = link            # given for outbound, made for inbound
        self.batcher = batcher if batcher is not None else WriteBatcher()
        self.out: list = []         # frames queued this reactor turn
        self._write = None          # resp/protocol.py's write_through

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
        self._write = write_through(transport)
        with self.batcher:
            self.link.attach(self.queue, self._close,
                             _host(transport.getHost()),
                             _host(transport.getPeer()))
            if is_plain_tcp(transport):
                # cluster-link-sendbuf-limit (rcluster/memory.py).
                self.link.queued = partial(transport_pending, transport)
                self.link.abort = transport.abortConnection
            if outbound:
                self.engine.link_connected(self.link)
            else:
                peer = transport.getPeer()
                log.info("Accepting cluster node connection from {peer}",
                         peer=f"{_host(peer)}:{getattr(peer, 'port', '?')}",
                         redis_level="verbose")

    def queue(self, frame):
        """Link.send's write: held until the batcher flushes this turn."""
        out = self.out
        out.append(frame)
        if len(out) == 1:
            self.batcher.queued(self)

    def flush(self):
        out = self.out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        transport = self.transport
        if transport is None or getattr(transport, "disconnected", False):
            return
        self._write(data)       # straight to the socket while it takes it

    def _close(self):
        """Link.close: what was queued still goes out first (as with
        transport.write then loseConnection)."""
        self.flush()
        self.transport.loseConnection()

    def dataReceived(self, data):
        link = self.link
        if link is not None and not link.closed:
            # The batcher's "with" spelled out: this runs per bus read.
            batcher = self.batcher
            batcher.depth += 1
            try:
                self.engine.link_data(link, data)
            finally:
                batcher.depth -= 1
                if batcher.depth == 0 and batcher.dirty:
                    batcher.flush()

    def connectionLost(self, reason):
        self.out.clear()
        link = self.link
        if link is not None and not link.closed:
            with self.batcher:
                self.engine.link_lost(link)


class BusServerFactory(Factory):
    """Accepts peers on the cluster bus port."""

    noisy = False

    def __init__(self, engine, batcher=None, ports=None):
        self.engine = engine
        self.batcher = batcher if batcher is not None else WriteBatcher()
        self.ports = ports          # () -> the listening ports, to pause
        self.accepted = 0           # this cron period
        self.paused: list = []

    def buildProtocol(self, addr):
        protocol = BusProtocol(self.engine, None, self.batcher)
        protocol.factory = self
        self.accepted += 1
        if self.accepted >= MAX_CLUSTER_ACCEPTS_PER_CALL and \
                not self.paused and self.ports is not None:
            for port in self.ports():
                # Twisted accepts up to numberAccepts per readable event.
                port.numberAccepts = min(port.numberAccepts,
                                         MAX_CLUSTER_ACCEPTS_PER_CALL)
                port.stopReading()
                self.paused.append(port)
        return protocol

    def cron(self):
        """A new cron period: accept again."""
        self.accepted = 0
        paused, self.paused = self.paused, []
        for port in paused:
            if getattr(port, "connected", False):
                port.startReading()


class LinkFactory(ClientFactory):
    """Connects one outbound link."""

    noisy = False

    def __init__(self, engine, link, batcher=None):
        self.engine = engine
        self.link = link
        self.batcher = batcher

    def buildProtocol(self, addr):
        protocol = BusProtocol(self.engine, self.link, self.batcher)
        protocol.factory = self
        return protocol

    def clientConnectionFailed(self, connector, reason):
        node = self.link.node
        log.info("Connection with Node {name} at {ip}:{port} failed: {why}",
                 name=node.name if node else "?",
                 ip=node.ip if node else "?", port=node.cport if node else 0,
                 why=reason.getErrorMessage(), redis_level="verbose")
        if not self.link.closed:
            if self.batcher is None:
                self.engine.link_lost(self.link)
                return
            with self.batcher:
                self.engine.link_lost(self.link)


class Connector:
    """Opens outbound links for the engine (installed as engine.connector)."""

    def __init__(self, engine, settings, reactor, batcher=None):
        self.engine = engine
        self.settings = settings
        self.reactor = reactor
        self.batcher = batcher

    def __call__(self, link):
        node = link.node
        factory = LinkFactory(self.engine, link, self.batcher)
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
