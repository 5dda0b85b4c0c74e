"""The cluster layer as a Twisted service: nodes.conf, bus and cron.

Built by rcluster/tap.py when ``cluster-enabled yes``.  At construction it
locks and loads nodes.conf (or creates a new identity), exactly as Redis's
clusterInit does before serving anything: a config file in use by another
node or a corrupt one stops the process with Redis's message.  Starting
the service listens on the bus port and runs the 100 ms cron.

The state is published as ``server.cluster`` for the CLUSTER commands
and INFO, client redirection is installed as ``server.router``, and
PUBLISH/SPUBLISH reach the bus through ``server.pubsub.on_publish``.
"""
from __future__ import annotations

import os
import sys

from twisted.application import service
from twisted.internet.task import LoopingCall

from rcluster.cluster import nodesconf
from rcluster.cluster.bus import BusServerFactory, Connector
from rcluster.cluster.keyslot import keyslot
from rcluster.cluster.nodesconf import ConfigFile, NodesConfError
from rcluster.cluster.routing import Router
from rcluster.cluster.state import PORT_INCR, ClusterState, Host
from rcluster.logs import logger

log = logger("rcluster.cluster")

CRON_INTERVAL = 0.1


class ServerHost(Host):
    """The cluster's view of the node's keyspace, pub/sub and replication.

    Replication plugs in by setting ``on_replicate`` (called with the
    master ClusterNode, or None to become a master) and
    ``replication_available``; ``server.repl_offset`` is sent in headers
    when the server has one."""

    def __init__(self, server):
        self.server = server
        self.on_replicate = None

    def count_keys_in_slot(self, slot):
        return self.server.keyspace.count_in_slot(slot)

    def delete_keys_in_slot(self, slot):
        server = self.server
        keys = server.keyspace.keys_in_slot(slot, server.keyspace.count_in_slot(slot))
        delete = server.table.get("del")
        for key in keys:
            server.keyspace.delete(key)
            if server.propagate is not None:
                server.propagate(None, delete, [b"DEL", key])
        server.touch_watched(keys)
        return len(keys)

    def db_size(self):
        return len(self.server.keyspace)

    def empty_data(self):
        self.server.touch_all_watched()
        self.server.keyspace.flush()

    def deliver(self, channel, message, shard):
        self.server.pubsub.deliver(channel, message, shard)

    def remove_channels_in_slot(self, slot):
        pubsub = self.server.pubsub
        for channel in [c for c in pubsub.shard_channels if keyslot(c) == slot]:
            pubsub.unsubscribe_shard_channel_everywhere(channel)

    def repl_offset(self):
        return getattr(self.server, "repl_offset", 0)

    def replicate(self, node):
        if self.on_replicate is not None:
            self.on_replicate(node)


class ClusterService(service.MultiService):
    def __init__(self, server, settings, reactor):
        super().__init__()
        self.server = server
        self.settings = settings
        self.reactor = reactor
        self.host = ServerHost(server)
        self.state = state = ClusterState(
            settings, lambda: int(reactor.seconds() * 1000), self.host)
        self.config_file = ConfigFile(settings.cluster_config_file)
        try:
            self._load_config()
            self.bus_port = self._bus_port()
        except NodesConfError as err:
            _fatal(str(err))
        state.config_file = self.config_file
        state.fatal = _die
        state.connector = Connector(state, settings, reactor)
        server.cluster = state
        server.router = Router(state, server)
        server.pubsub.on_publish = state.propagate_publish
        self._listen()
        self._cron = LoopingCall(state.cron)
        self._cron.clock = reactor

    def _load_config(self):
        state, config = self.state, self.config_file
        config.lock()
        text = config.read()
        if text is None:
            state.create_myself()
            try:
                config.save(nodesconf.render(state))
            except OSError as err:
                raise NodesConfError("Fatal: can't update cluster config "
                                     f"file: {err}") from None
        else:
            nodesconf.load(state, text, config.path)
            state.refresh_myself()
            log.info("Node configuration loaded, I'm {name}",
                     name=state.myself.name)

    def _bus_port(self) -> int:
        s = self.settings
        port = s.tls_port if s.tls_cluster else s.port
        if not s.cluster_port and port > 65535 - PORT_INCR:
            raise NodesConfError(
                "Redis port number too high. Cluster communication port is "
                "10,000 port numbers higher than your Redis port. Your Redis "
                "port number must be 55535 or less.")
        return s.cluster_port or port + PORT_INCR

    def _listen(self):
        from rcluster.tap import Listener, _interface
        factory = BusServerFactory(self.state)
        reactor, port, s = self.reactor, self.bus_port, self.settings
        context = None
        if s.tls_cluster:
            from rcluster.tls import server_context
            context = server_context(s, bus=True)
        self.listeners = []
        for address in s.bind:
            interface = _interface(address.lstrip("-"))
            if context is None:
                def listen(interface=interface):
                    return reactor.listenTCP(port, factory, s.tcp_backlog,
                                             interface)
            else:
                def listen(interface=interface):
                    return reactor.listenSSL(port, factory, context,
                                             s.tcp_backlog, interface)
            listener = Listener(listen, optional=address.startswith("-"))
            listener.setServiceParent(self)
            self.listeners.append(listener)

    def startService(self):
        super().startService()
        self._cron.start(CRON_INTERVAL, now=False)

    def stopService(self):
        if self._cron.running:
            self._cron.stop()
        for link in self.state.links():
            self.state.free_link(link)
        return super().stopService()


def _fatal(message: str):
    """Start-up errors Redis exits on: so do we, with its message (on
    stderr, exit status 1: logging has not started yet)."""
    raise SystemExit(message)


def _die(message: str):
    """nodes.conf can't be written any more: a node that can't persist
    its configuration must not go on (Redis exits too)."""
    log.critical("{message}", message=message)
    print(message, file=sys.stderr, flush=True)
    os._exit(1)
