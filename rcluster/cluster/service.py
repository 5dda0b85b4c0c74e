"""The cluster layer as a Twisted service: nodes.conf, bus and cron.

Built by rcluster/tap.py when ``cluster-enabled yes``.  At construction it
locks and loads nodes.conf (or creates a new identity), exactly as Redis's
clusterInit does before serving anything: a config file in use by another
node or a corrupt one stops the process with Redis's message.  Starting
the service listens on the bus port and runs the 100 ms cron.

The state (the model) is published as ``server.cluster`` and the engine
(where events and CLUSTER commands enter) as ``server.cluster_engine``;
client redirection is installed as ``server.router``, and PUBLISH/SPUBLISH
reach the bus through ``server.pubsub.on_publish``.
"""
from __future__ import annotations

import os
import sys

from twisted.application import service

from rcluster.cluster import nodesconf
from rcluster.cluster.bus import BusServerFactory, Connector, WriteBatcher
from rcluster.cluster.engine import ClusterEngine
from rcluster.cluster.keyslot import keyslot
from rcluster.cluster.nodesconf import ConfigFile, NodesConfError
from rcluster.cluster.routing import Router
from rcluster.cluster.state import PORT_INCR, ClusterState, Host, bus_port
from rcluster.logs import logger
from rcluster.replication.service import CONNECTED
from rcluster.timers import periodic

log = logger("rcluster.cluster")

CRON_INTERVAL = 0.1


class ServerHost(Host):
    """The cluster's view of the node's keyspace, pub/sub and replication.

    Replication plugs in by setting ``on_replicate`` (called with the
    master ClusterNode, or None to become a master); the replication
    service (``server.extensions["replication"]``) gives the offset sent
    in headers and the data age of a replica."""

    def __init__(self, server):
        self.server = server
        self.on_replicate = None

    @property
    def _replication(self):
        return self.server.extensions.get("replication")

    @property
    def replication_available(self):
        return self.on_replicate is not None

    def count_keys_in_slot(self, slot):
        return self.server.count_in_slot(slot)

    def delete_keys_in_slot(self, slot):
        server = self.server
        migrations = server.extensions.get("migration")
        if migrations is not None and migrations.deletes_slot(slot):
            return 0    # an atomic slot move deletes them, in slices
        deleted = 0
        for index, ks in server.dbs.items():
            if ks.count_in_slot(slot):
                previous = server.cur_db
                server.use_db(index)
                try:
                    deleted += self._delete_slot_keys(slot)
                finally:
                    server.use_db(previous)
        return deleted

    def _delete_slot_keys(self, slot):
        server = self.server
        keys = server.keyspace.keys_in_slot(slot, server.keyspace.count_in_slot(slot))
        write_path = server.write_path
        lazy = server.settings.lazyfree_lazy_server_del
        for key in keys:
            server.keyspace.delete(key)
            write_path.deleted(key, lazy)
        server.touch_watched(keys)
        write_path.flush(wrap=False)
        return len(keys)

    def db_size(self):
        return sum(len(ks) for ks in self.server.dbs)

    def empty_data(self):
        self.server.write_path.flushed(None)
        self.server.flush_all_dbs()

    def deliver(self, channel, message, shard):
        self.server.pubsub.deliver(channel, message, shard)

    def remove_channels_in_slot(self, slot):
        pubsub = self.server.pubsub
        for channel in [c for c in pubsub.shard_channels if keyslot(c) == slot]:
            pubsub.unsubscribe_shard_channel_everywhere(channel)
        # Our shard lost the slot: the keys of it that clients track are
        # invalidated too (a choice of rcluster's: see tracking.py).
        if self.server.tracking is not None:
            self.server.tracking.slot_lost(slot)

    def repl_offset(self):
        service = self._replication
        if service is not None and self.server.role == "replica":
            return service.replica_offset()
        return self.server.master_repl_offset

    def repl_data_age(self):
        service = self._replication
        if service is None:
            return 0
        now = service.reactor.seconds()
        if service.state == CONNECTED:
            since = service.last_io
        else:
            since = service.down_since
        # Redis counts whole seconds here (server.unixtime); a replica that
        # never had a link has data as old as the epoch, as in Redis.
        return int(now - since) * 1000 if since else int(now) * 1000

    def replicate(self, node):
        if self.on_replicate is not None:
            self.on_replicate(node)

    def pause_writes(self, until_ms):
        self.server.pause("write", until_ms / 1000.0)

    def unpause_writes(self):
        self.server.unpause()


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
        self.engine = engine = ClusterEngine(state, None, self.config_file,
                                             _die)
        # Bus writes are batched per link per reactor turn (bus.py).
        self.batcher = WriteBatcher(reactor)
        engine.connector = Connector(engine, settings, reactor, self.batcher)
        server.cluster = state
        server.cluster_engine = engine
        server.router = Router(state, server)
        server.pubsub.on_publish = state.propagate_publish
        self._listen()
        # On the wall-clock grid of the node's other crons: one wake-up
        # for all of them (rcluster/timers.py).
        self._cron = periodic(self._run_cron, reactor)

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
        return bus_port(s)

    def _listen(self):
        from rcluster.tap import listen_everywhere
        s = self.settings
        context = None
        if s.tls_cluster:
            from rcluster.tls import server_context
            context = server_context(s, bus=True)
        self.bus_factory = BusServerFactory(
            self.engine, self.batcher,
            lambda: [l.port for l in self.listeners if l.port is not None])
        self.listeners = listen_everywhere(
            self, self.reactor, s, self.bus_port, self.bus_factory, context)

    def _run_cron(self):
        self.bus_factory.cron()
        with self.batcher:
            self.engine.cron()

    def startService(self):
        super().startService()
        self._cron.start(CRON_INTERVAL, now=False)
        if os.environ.get("RCLUSTER_PROFILE"):
            _install_profile_toggle(os.environ["RCLUSTER_PROFILE"])

    def stopService(self):
        if self._cron.running:
            self._cron.stop()
        for link in self.state.links():
            self.state.free_link(link)
        return super().stopService()


def _install_profile_toggle(path: str):
    """Profiling only (bench/bus_idle_cpu.py --profile): with the
    RCLUSTER_PROFILE environment variable set, SIGUSR2 starts cProfile and
    a second SIGUSR2 stops it and writes the stats to that path.  It
    times CPU (user + system), not wall time: on a loaded machine a send
    that wakes a peer would otherwise be charged for the peer's turn."""
    import cProfile
    import signal
    import time
    box = []

    def toggle(signum, frame):
        if not box:
            box.append(cProfile.Profile(time.process_time))
            box[0].enable()
        else:
            profile = box.pop()
            profile.disable()
            profile.dump_stats(path.replace("{pid}", str(os.getpid())))

    signal.signal(signal.SIGUSR2, toggle)


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
