"""Twisted adapter for the client port: bytes in, bytes out.

All the logic lives in the sans-IO ``Client`` and ``Server``; this protocol
only wires a transport to a client, after the admission checks Redis makes
when it accepts a connection (acceptCommonHandler, clientAcceptHandler):
maxclients, then protected mode.
"""
from __future__ import annotations

import socket
from functools import partial

from twisted.internet import tcp
from twisted.internet.address import UNIXAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOProtocol

from rcluster.memory import (check_output_limits, tls_pending,
                             transport_pending)

MAX_CLIENTS = b"-ERR max number of clients reached\r\n"
MAX_CLIENTS_CLUSTER = (b"-ERR max number of clients + cluster connections "
                       b"reached\r\n")
PROTECTED_MODE = (
    b"-DENIED Redis is running in protected mode because protected "
    b"mode is enabled and no password is set for the default user. "
    b"In this mode connections are only accepted from the loopback interface. "
    b"If you want to connect from external computers to Redis you "
    b"may adopt one of the following solutions: "
    b"1) Just disable protected mode sending the command "
    b"'CONFIG SET protected-mode no' from the loopback interface "
    b"by connecting to Redis from the same host the server is "
    b"running, however MAKE SURE Redis is not publicly accessible "
    b"from internet if you do so. Use CONFIG REWRITE to make this "
    b"change permanent. "
    b"2) Alternatively you can just disable the protected mode by "
    b"editing the Redis configuration file, and setting the protected "
    b"mode option to 'no', and then restarting the server. "
    b"3) If you started the server manually just for testing, restart "
    b"it with the '--protected-mode no' option. "
    b"4) Setup a an authentication password for the default user. "
    b"NOTE: You only need to do one of the above things in order for "
    b"the server to start accepting connections from the outside.\r\n")


def format_address(addr, unixsocket="") -> str:
    """An address as CLIENT LIST shows it: ip:port, [ipv6]:port, or the
    unix socket path with port 0."""
    if isinstance(addr, UNIXAddress):
        return f"{unixsocket}:0"
    host = getattr(addr, "host", None)
    if host is None:
        return str(addr)
    # Redis writes IPv6 addresses in brackets (anetFormatAddr).
    if ":" in host:
        return f"[{host}]:{addr.port}"
    return f"{host}:{addr.port}"


def is_local(addr) -> bool:
    """Redis's islocalClient: a unix socket, or 127.0.0.1 / ::1 exactly."""
    if isinstance(addr, UNIXAddress):
        return True
    return getattr(addr, "host", None) in ("127.0.0.1", "::1")


def set_keepalive(transport, interval: int):
    """Redis's anetKeepAlive: probe after `interval` idle seconds, then
    every interval/3 seconds, 3 probes before giving up."""
    set_option = getattr(transport, "setTcpKeepAlive", None)
    if set_option is None:
        return
    set_option(1)
    handle = getattr(transport, "getHandle", None)
    sock = handle() if handle is not None else None
    setsockopt = getattr(sock, "setsockopt", None)
    if setsockopt is None or not hasattr(socket, "TCP_KEEPIDLE"):
        return
    try:
        setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
        setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL,
                   max(interval // 3, 1))
        setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:
        pass    # not a TCP socket after all: keepalive is best effort


def is_tls_over_tcp(transport) -> bool:
    """A TLSMemoryBIOProtocol (listenSSL's) in front of a TCP transport."""
    return isinstance(transport, TLSMemoryBIOProtocol) and \
        isinstance(transport.transport, tcp.Connection)


def is_plain_tcp(transport) -> bool:
    """A Twisted TCP (or unix socket) transport whose socket we may write
    to directly: not TLS.  An isinstance test, not attribute probing: a
    TLS wrapper (twisted's BufferingTLSTransport) forwards unknown
    attributes to the socket transport under it, whose socket would
    bypass the encryption."""
    return isinstance(transport, tcp.Connection) and \
        not getattr(transport, "TLS", False)


def write_through(transport, queued=None):
    """transport.write, sending at once when nothing is queued.

    Twisted queues every write for the next reactor pass, which costs two
    epoll_ctl calls and a loop iteration per reply; a request/reply client
    (redis-benchmark -P 1) mostly finds the socket writable right away.
    Anything not sent goes through transport.write, which keeps order and
    flow control.  TLS and in-memory transports are used as they are.
    (The client connections' replies; the cluster bus's frames too.)"""
    if not is_plain_tcp(transport):
        if queued is not None and is_tls_over_tcp(transport):
            def write_tls(data):
                transport.write(data)
                queued()
            return write_tls
        return transport.write      # unix sockets, tests
    send = transport.socket.send
    # ``queued()`` runs after bytes were left queued (output buffer
    # limits, rcluster/memory.py): never on the fast path.

    def write(data):
        if not transport.dataBuffer and not transport._tempDataBuffer \
                and transport.connected and not transport.disconnecting:
            try:
                sent = send(data)
            except OSError:
                sent = 0        # EAGAIN or worse: transport.write decides
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)
        if queued is not None:
            queued()
    return write


class RespProtocol(Protocol):
    client = None

    def connectionMade(self):
        transport = self.transport
        server = self.factory.server
        settings = server.settings
        peer = transport.getPeer()
        refusal = self._refusal(server, peer)
        if refusal is not None:
            server.stats.rejected_connections += 1
            # Redis writes nothing to a TLS client it turns away before
            # the handshake (maxclients); protected mode comes after it.
            if refusal is PROTECTED_MODE or not self.factory.tls:
                transport.write(refusal)
            transport.loseConnection()
            return
        set_nodelay = getattr(transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            set_nodelay(True)
        if settings.tcp_keepalive:
            set_keepalive(transport, settings.tcp_keepalive)
        unixsocket = settings.unixsocket
        self.client = server.new_client(
            format_address(peer, unixsocket),
            format_address(transport.getHost(), unixsocket),
            write_through(transport, self._output_queued),
            transport.loseConnection)
        if is_plain_tcp(transport):
            self.client.output_pending = partial(transport_pending, transport)
        elif is_tls_over_tcp(transport):
            self.client.output_pending = partial(tls_pending, transport)
        self.client.tls = self.factory.tls
        handle = getattr(transport, "getHandle", None)
        if handle is not None:
            try:
                self.client.fd = handle().fileno()
            except Exception:
                pass    # no file descriptor (TLS over memory BIO, tests)

    @staticmethod
    def _refusal(server, peer):
        """The error to greet a connection with before closing it, or None."""
        settings = server.settings
        # The cluster layer counts its bus links (Redis adds two per known
        # node to the clients when it checks maxclients).
        links = server.cluster_connections
        if len(server.clients) + links >= settings.maxclients:
            return MAX_CLIENTS_CLUSTER if settings.cluster_enabled \
                else MAX_CLIENTS
        if settings.protected_mode and not settings.requirepass \
                and not is_local(peer):
            return PROTECTED_MODE
        return None

    def _output_queued(self):
        """client-output-buffer-limit (rcluster/memory.py)."""
        if self.client is not None:
            check_output_limits(self.client, self.transport)

    def dataReceived(self, data):
        client = self.client
        if client is not None:
            stats = self.factory.server.stats
            stats.total_net_input_bytes += len(data)
            stats.total_reads_processed += 1
            client.feed(data)

    def connectionLost(self, reason):
        if self.client is not None:
            self.factory.server.client_gone(self.client)
            self.client = None


class RespFactory(Factory):
    protocol = RespProtocol
    noisy = False       # no "Starting factory" lines in the Redis-style log

    def __init__(self, server, tls=False):
        self.server = server
        self.tls = tls
