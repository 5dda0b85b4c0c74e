"""``twistd rcluster``: command-line options and service assembly.

Settings are layered: rcluster's defaults, then ``--config FILE``
(redis.conf syntax), then command-line options, then CONFIG SET at run
time.  ``makeService`` builds the sans-IO server and wraps it in Twisted
services: the client listeners (TCP and TLS), the cron, and the cluster
bus when ``cluster-enabled yes``.
"""
from __future__ import annotations

import os
import sys

from twisted.application import service
from twisted.logger import globalLogPublisher
from twisted.python import usage

from rcluster import tls
from rcluster.config import ConfigError, Settings
from rcluster.logs import GATE, RedisLogObserver, logger
from rcluster.timers import periodic


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = ("Run a Redis Cluster 7.0 compatible node. Clients speak RESP "
                "on --port; peers speak the cluster bus on port+10000. "
                "Options are Redis directives: anything in redis.conf can be "
                "given with --config FILE or --set directive=value.")

    optParameters = [
        ["config", "c", None, "A redis.conf-syntax configuration file."],
        ["port", "p", None, "TCP port for clients (directive 'port', default 6379)."],
        ["bind", "b", None, "Addresses to listen on, space separated (directive 'bind')."],
        ["dir", "d", None, "Working directory: nodes.conf and data files go here."],
        ["requirepass", None, None, "Password clients must AUTH with."],
        ["cluster-config-file", None, None, "Cluster state file (default nodes.conf)."],
        ["cluster-node-timeout", None, None, "Milliseconds before a silent node is PFAIL."],
        ["cluster-port", None, None, "Cluster bus port (default: port + 10000)."],
        ["tls-port", None, None, "Serve TLS clients on this port (directive 'tls-port')."],
        ["tls-cert-file", None, None, "PEM certificate of this node."],
        ["tls-key-file", None, None, "PEM private key of this node."],
        ["tls-ca-cert-file", None, None, "PEM CA bundle that signs clients and peers."],
        ["tls-auth-clients", None, None, "yes (default): clients need a CA-signed "
                                         "certificate; optional: verified if sent; no."],
        ["loglevel", None, None, "debug, verbose, notice (default) or warning."],
    ]
    optFlags = [
        ["tls", None, "TLS everywhere: clients on --port speak TLS (unless "
                      "tls-port is given: then both are served), and so do "
                      "the cluster bus and replication links (tls-cluster, "
                      "tls-replication)."],
        ["standalone", None, "Shortcut for --set cluster-enabled=no."],
    ]

    def __init__(self):
        super().__init__()
        self["set"] = []

    def opt_set(self, assignment):
        """Set any Redis directive: --set directive=value (repeatable)."""
        name, sep, value = assignment.partition("=")
        if not sep:
            raise usage.UsageError("--set takes directive=value")
        self["set"].append((name.strip(), value))

    opt_s = opt_set

    def postOptions(self):
        try:
            self.settings = build_settings(self)
        except ConfigError as err:
            raise usage.UsageError(str(err))


# Options that map one-to-one onto a directive of the same name.
_DIRECT = ("port", "bind", "dir", "requirepass", "cluster-config-file",
           "cluster-node-timeout", "cluster-port", "tls-port", "tls-cert-file",
           "tls-key-file", "tls-ca-cert-file", "tls-auth-clients", "loglevel")


def build_settings(options) -> Settings:
    """defaults < --config FILE < options < --set, then --tls."""
    settings = Settings()
    # rcluster's own defaults, where they differ from redis-server's: a
    # node is a cluster node unless told otherwise.
    settings.apply("cluster-enabled", ["yes"])
    settings.apply("save", [""])
    if options.get("config"):
        settings.load_file(options["config"])
    for name in _DIRECT:
        value = options.get(name)
        if value is not None:
            _apply(settings, name, value, f"--{name} {value}")
    if options.get("standalone"):
        settings.apply("cluster-enabled", ["no"])
    for name, value in options.get("set", ()):
        _apply(settings, name, value, f"--set {name}={value}")
    if options.get("tls"):
        _tls_everywhere(settings)
    return settings


def _apply(settings, name, value, given):
    try:
        settings.apply(name, [value])
    except ConfigError as err:
        raise ConfigError(f"{given}: {err}") from None


def _tls_everywhere(settings):
    """--tls: the client port speaks TLS (unless a tls-port was given:
    then both ports are served), and so do bus and replication links."""
    if not settings.tls_port:
        settings.tls_port, settings.port = settings.port, 0
    settings.tls_cluster = True
    settings.tls_replication = True
    settings.changed.update(("tls-port", "port", "tls-cluster", "tls-replication"))


def makeService(options) -> service.IService:
    from twisted.internet import reactor

    from rcluster import fastpoll
    fastpoll.install(reactor)
    try:
        node = NodeService(options.settings, reactor)
    except ConfigError as err:
        # A clear message and exit status 1, not a traceback.
        raise SystemExit(f"rcluster: {err}")
    if node.settings.logfile:
        # Redis-format lines in the 'logfile' directive's file, next to
        # whatever twistd's own --logfile gets.
        node.observer = node.log_observer()
    return node


class NodeService(service.MultiService):
    """One rcluster node: its listeners, cron and cluster bus.

    Raises ConfigError for settings it can't run with (a 'dir' it can't
    enter, unusable TLS files).  ``observer``, if set, is a log observer
    added to the global publisher while the node runs."""

    observer = None

    def __init__(self, settings: Settings, reactor):
        super().__init__()
        from rcluster.resp.protocol import RespFactory
        from rcluster.server import Server

        self.log = logger()
        GATE.settings = settings
        self.settings = settings
        self.reactor = reactor
        if settings.dir:
            try:
                os.chdir(settings.dir)
            except OSError as err:
                raise ConfigError(
                    f"Can't chdir to '{settings.dir}': {err.strerror}")
        if tls.tls_in_use(settings):
            tls.check(settings)
        settings.listeners.append(tls.on_config_set(settings))
        self.server = Server(settings, reactor)
        self.server.shutdown_hook = self.shutdown
        self.ports = []
        if settings.port:
            self._listen(settings.port, RespFactory(self.server))
        if settings.tls_port:
            self._listen(settings.tls_port, RespFactory(self.server, tls=True),
                         tls.server_context(settings))
        CronService(settings, self.server.cron, reactor).setServiceParent(self)
        from rcluster.persistence.service import PersistenceService
        self.persistence = PersistenceService(self.server, settings, reactor)
        self.persistence.setServiceParent(self)
        from rcluster.replication.service import ReplicationService
        self.replication = ReplicationService(self.server, settings, reactor)
        self.replication.setServiceParent(self)
        if settings.cluster_enabled:
            from rcluster.cluster.service import ClusterService
            self.cluster = ClusterService(self.server, settings, reactor)
            self.cluster.setServiceParent(self)
            # Replication follows the cluster's role decisions
            # (CLUSTER REPLICATE, failover): node None = become a master.
            host = getattr(self.cluster, "host", None)
            if host is not None:
                host.on_replicate = self.replication.on_replicate

    def role(self) -> str:
        """The role letter of Redis's log lines: M(aster) or S (replica)."""
        return "S" if self.server.role == "replica" else "M"

    def log_observer(self, stream=None):
        """A Redis-format log observer for this node (rcluster.logs)."""
        return RedisLogObserver(self.settings, self.role, stream)

    def _listen(self, port, factory, tls_context=None):
        self.ports += listen_everywhere(self, self.reactor, self.settings,
                                        port, factory, tls_context)

    def startService(self):
        if self.observer is not None:
            globalLogPublisher.addObserver(self.observer)
        super().startService()
        for warning in self.settings.warnings + \
                self.settings.unhonoured_warnings():
            self.log.warn("{warning}", warning=warning)
        if self.settings.pidfile:
            with open(self.settings.pidfile, "w") as fh:
                fh.write(f"{os.getpid()}\n")
        self.log.info("Ready to accept connections")

    def stopService(self):
        result = super().stopService()
        if self.settings.pidfile:
            self.log.info("Removing the pid file.")
            try:
                os.unlink(self.settings.pidfile)
            except OSError:
                pass
        self.log.warn("rcluster is now ready to exit, bye bye...")
        if self.observer is not None:
            globalLogPublisher.removeObserver(self.observer)
        return result

    def shutdown(self, save=None, force=False):
        """SHUTDOWN: stop the reactor (twistd stops the services)."""
        self.log.info("User requested shutdown...")
        failure = self.persistence.prepare_shutdown(save, force=force)
        if failure:
            return failure
        self.reactor.callLater(0, self.reactor.stop)


def listen_everywhere(parent, reactor, settings, port, factory,
                      tls_context=None) -> list:
    """A Listener service under ``parent`` for each 'bind' address (the
    client ports and the cluster bus share it)."""
    backlog, listeners = settings.tcp_backlog, []
    for address in settings.bind:
        interface = _interface(address.lstrip("-"))
        if tls_context is None:
            def listen(interface=interface):
                return reactor.listenTCP(port, factory, backlog, interface)
        else:
            def listen(interface=interface):
                return reactor.listenSSL(port, factory, tls_context,
                                         backlog, interface)
        listener = Listener(listen, optional=address.startswith("-"))
        listener.setServiceParent(parent)
        listeners.append(listener)
    return listeners


def _interface(address: str) -> str:
    if address == "*":
        return "0.0.0.0"
    if address == "::*":
        return "::"
    return address


class CronService(service.Service):
    """Runs the server's cron ``hz`` times a second (a LoopingCall);
    CONFIG SET hz takes effect at once, as in Redis."""

    def __init__(self, settings, tick, clock):
        self.settings = settings
        self.tick = tick
        self.clock = clock
        self.loop = None
        settings.listeners.append(self._config_changed)

    @property
    def interval(self) -> float:
        return 1.0 / max(1, min(self.settings.hz, 500))

    def startService(self):
        super().startService()
        self._start()

    def stopService(self):
        super().stopService()
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.loop = None

    def _start(self):
        # Aligned with the node's other crons: one wake-up (timers.py).
        self.loop = periodic(self.tick, self.clock)
        self.loop.start(self.interval, now=False)

    def _config_changed(self, name, value):
        if name == "hz" and self.running and self.loop is not None:
            if self.loop.interval != self.interval:
                self.loop.stop()
                self._start()


class Listener(service.Service):
    """A listening port as a service.  A failure to bind is tolerated for
    '-'-prefixed addresses, as Redis does for its default 'bind * -::*'."""

    def __init__(self, listen, optional: bool):
        self.listen = listen
        self.optional = optional
        self.port = None

    def privilegedStartService(self):
        from twisted.internet.error import CannotListenError
        try:
            self.port = self.listen()
        except CannotListenError:
            if not self.optional:
                raise
        super().privilegedStartService()

    def stopService(self):
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()


if __name__ == "__main__":  # pragma: no cover - manual use
    sys.exit("run with: twistd -n rcluster [options]")
