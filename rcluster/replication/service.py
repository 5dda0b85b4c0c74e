"""The replication service: Twisted adapters around the sans-IO master
(master.py) and replica (replica.py) halves.

- Master side: the RDB of a full sync streams to the replica's socket as
  the point-in-time snapshot (persistence/snapshot.py) serializes slots,
  a slice per reactor turn, paused and resumed by the transport
  (IPushProducer): diskless ``$EOF:<mark>`` framing; with
  ``repl-diskless-sync no`` (or a replica without ``capa eof``) the
  snapshot goes to a temporary file first and is sent as ``$<len>``.
- Replica side: one outgoing connection to the master, the handshake
  state machine, the RDB loaded as it arrives (commands not flagged
  ``loading`` get ``-LOADING``), then the stream applied through the
  command table by a client of kind ``master`` (no replies), and
  proxied byte for byte to our own backlog and sub-replicas so offsets
  stay those of the master.  ``REPLCONF ACK`` every second,
  ``repl-timeout``, reconnection every second.

Hooks for the cluster layer: ``replicate_to(host, port)``,
``become_master()``, ``replica_offset()``.
"""
from __future__ import annotations

import gc
import os

from twisted.application import service
from twisted.internet import protocol
from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer

from rcluster.logs import logger
from rcluster.replication.backlog import (
    Backlog, ReplicationIds, command_size, encode_command, new_replid)
from rcluster.replication.master import (
    SEND_BULK, Master, disk_rdb_name)
from rcluster.replication.replica import Handshake
from rcluster.resp.codec import Error, RequestParser
from rcluster.timers import periodic

log = logger()

READONLY = Error("READONLY You can't write against a read only replica.")
MASTERDOWN = Error("MASTERDOWN Link with MASTER is down and "
                   "replica-serve-stale-data is set to 'no'.")
_SLICE = 0.005


def replication(server):
    """The server's ReplicationService, or None."""
    return server.extensions.get("replication")


def _transport_of(client):
    return getattr(client.close, "__self__", None)


# -- master side: sending the RDB ---------------------------------------------

@implementer(IPushProducer)
class DisklessTransfer:
    """$EOF:<mark>, the snapshot as it is taken, <mark>."""

    def __init__(self, svc, entry):
        self.svc = svc
        self.entry = entry
        self.transport = _transport_of(entry.client)
        self.mark = os.urandom(20).hex().encode()
        self.snapshot = None
        self.paused = False
        self.call = None
        self.done = False
        self.registered = False

    def start(self):
        entry = self.entry
        entry.state = SEND_BULK
        entry.send(b"$EOF:" + self.mark + b"\r\n")
        self.snapshot = self.svc.snapshot(entry.send)
        self.snapshot.start()
        if self.transport is not None and \
                getattr(self.transport, "producer", None) is None:
            try:
                self.transport.registerProducer(self, True)
                self.registered = True
            except RuntimeError:
                pass
        self._schedule()

    def _schedule(self):
        if self.call is None and not self.done and not self.paused:
            self.call = self.svc.reactor.callLater(0, self._slice)

    def _slice(self):
        self.call = None
        if self.done or self.paused:
            return
        if self.entry.client.closed:
            self.abort()
            return
        try:
            self.snapshot.step(_SLICE)
        except Exception as err:        # noqa: BLE001 - logged, link closed
            log.failure("Replication RDB failed: {err}", err=err)
            self.abort()
            self.entry.client.kill()
            return
        if self.snapshot.done:
            self.entry.send(self.mark)
            self._end()
            self.svc.master.transfer_done(self.entry)
            return
        self._schedule()

    def _end(self):
        self.done = True
        if self.registered:
            self.registered = False
            try:
                self.transport.unregisterProducer()
            except Exception:           # noqa: BLE001 - connection gone
                pass

    def abort(self):
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None
        if self.snapshot is not None and not self.snapshot.done:
            self.snapshot.abort()
        self._end()

    # IPushProducer
    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        self._schedule()

    def stopProducing(self):
        self.abort()


class DiskTransfer:
    """The snapshot to a temporary file (sliced), then $<len> and the
    file (twisted's FileSender, a pull producer)."""

    def __init__(self, svc, entry):
        self.svc = svc
        self.entry = entry
        self.path = "%s-%d" % (disk_rdb_name(), entry.client.id)
        self.fh = None
        self.bgsave = None
        self.sending = None
        self.done = False

    def start(self):
        from rcluster.persistence.snapshot import BackgroundSave
        from rcluster.persistence.service import _FileOut
        self.fh = open(self.path, "wb")
        self.out = _FileOut(self.fh)
        self.bgsave = BackgroundSave(self.svc.snapshot(self.out),
                                     self.svc.reactor, self._saved)
        self.bgsave.start()

    def _saved(self, error):
        self.bgsave = None
        if self.done:
            return
        if error is not None:
            log.warn("Replication RDB failed: {err}", err=error)
            self.abort()
            self.entry.client.kill()
            return
        self.out.flush()
        self.fh.close()
        from twisted.protocols.basic import FileSender
        size = os.path.getsize(self.path)
        self.entry.state = SEND_BULK
        self.entry.send(b"$%d\r\n" % size)
        transport = _transport_of(self.entry.client)
        self.fh = open(self.path, "rb")
        if transport is None:
            self.entry.send(self.fh.read())
            self._sent(None)
            return
        self.sending = FileSender().beginFileTransfer(self.fh, transport)
        self.sending.addCallbacks(self._sent, lambda f: self.abort())

    def _sent(self, _):
        self._cleanup()
        if not self.done:
            self.done = True
            self.svc.master.transfer_done(self.entry)

    def _cleanup(self):
        if self.fh is not None:
            try:
                self.fh.close()
            except OSError:
                pass
            self.fh = None
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def abort(self):
        self.done = True
        if self.bgsave is not None:
            self.bgsave.cancel()
            self.bgsave = None
        self._cleanup()


# -- replica side -------------------------------------------------------------

class _LinkProtocol(protocol.Protocol):
    def connectionMade(self):
        self.factory.svc._link_made(self)

    def dataReceived(self, data):
        self.factory.svc._link_data(self, data)

    def connectionLost(self, reason):
        self.factory.svc._link_lost(self, reason)


class _LinkFactory(protocol.ClientFactory):
    protocol = _LinkProtocol
    noisy = False

    def __init__(self, svc):
        self.svc = svc

    def clientConnectionFailed(self, connector, reason):
        self.svc._link_failed(reason)


def _sizes(commands) -> int:
    return sum(map(command_size, commands))


def _replica_rdb_load(server, svc):
    from rcluster.persistence.service import RdbLoad

    class StreamLoad(RdbLoad):
        def error(self, err):
            from rcluster.persistence.service import LoadError
            return LoadError("Bad RDB from MASTER: %s" % err)

    return StreamLoad(server, "(replication)", merge=True, master=False,
                      log=log)


# FAILOVER states (INFO master_failover_state).
NO_FAILOVER = "no-failover"
WAIT_FOR_SYNC = "waiting-for-sync"
FAILOVER_IN_PROGRESS = "failover-in-progress"
_FAR = 10.0 ** 9                 # a pause "until further notice"

# Replica link states (Redis's repl_state, as ROLE names them).
NONE, CONNECT, CONNECTING, HANDSHAKE, TRANSFER, CONNECTED = (
    "none", "connect", "connecting", "handshake", "sync", "connected")


class ReplicationService(service.Service):
    name = "replication"

    def __init__(self, server, settings, reactor):
        self.server = server
        self.settings = settings
        self.reactor = reactor
        server.extensions["replication"] = self
        self.master = Master(server, settings, reactor)
        self.master.start_transfer = self._start_transfer
        self.master.link_up = lambda: self.state == CONNECTED
        self.master.failing_over = \
            lambda: self.failover_state != NO_FAILOVER
        self.master.promote = self.become_master
        # FAILOVER (standalone), Redis's failover_state and friends.
        self.failover_state = NO_FAILOVER
        self.failover_target = None     # (host, port) or None: any
        self.failover_end = 0.0
        self.failover_force = False
        self.failover_call = None
        self._sink = False
        # Replica side
        self.master_host = None
        self.master_port = 0
        self.state = NONE
        self.link = None                # the _LinkProtocol
        self.handshake = None
        self.master_client = None
        self.parser = None
        self.raw = bytearray()
        self.read_offset = 0
        self.last_io = 0.0
        self.down_since = 0.0
        self.loader = None
        self.transfer_size = -1
        self.transfer_read = 0
        self.pending_sync = None
        self.connector = None
        self.reconnect_call = None
        self.cron = None
        self.aof_stopped = False
        settings.listeners.append(self._config_changed)
        self.update_gate()

    # -- service --------------------------------------------------------------
    def startService(self):
        super().startService()
        # Aligned with the node's other crons: one wake-up (timers.py).
        self.cron = periodic(self.tick, self.reactor)
        self.cron.start(1.0, now=False)
        if self.settings.replicaof and not self.server.cluster_mode:
            host, _, port = self.settings.replicaof.partition(" ")
            self.reactor.callLater(0, self.replicate_to, host, int(port))

    def stopService(self):
        super().stopService()
        if self.cron is not None and self.cron.running:
            self.cron.stop()
        self._drop_link()
        for entry in list(self.master.replicas):
            if entry.transfer is not None:
                entry.transfer.abort()

    def snapshot(self, out):
        """A point-in-time RDB snapshot writing to out (for a full sync)."""
        from rcluster.persistence import rdb
        from rcluster.persistence.service import function_codes, rdb_aux
        from rcluster.persistence.snapshot import snapshot_of
        server = self.server
        aux = rdb_aux(server, self.reactor.seconds()) + [
            (b"repl-stream-db", b"0"),
            (b"repl-id", server.replid.encode()),
            (b"repl-offset", b"%d" % server.master_repl_offset)]
        writer = rdb.RdbWriter(self.settings)
        if hasattr(writer, "_BATCH"):
            writer._BATCH = 64 << 10
        return snapshot_of(server, writer, out, aux,
                           function_codes(server))

    def _start_transfer(self, entry, diskless):
        self._ensure_sink()
        transfer = DisklessTransfer(self, entry) if diskless else \
            DiskTransfer(self, entry)
        entry.transfer = transfer
        try:
            transfer.start()
        except OSError as err:
            log.warn("Can't start the replication RDB: {err}", err=err)
            transfer.abort()
            entry.client.kill()

    def _ensure_sink(self):
        if not self._sink:
            self._sink = True
            self.server.write_path.add_sink(self.master.sink)

    def tick(self):
        """replicationCron: every second."""
        self.master.cron()
        if self.master.backlog is not None:
            self._ensure_sink()
        if self.master_host is None:
            return
        now = self.reactor.seconds()
        if self.state in (CONNECTING, HANDSHAKE, TRANSFER, CONNECTED) and \
                now - self.last_io > self.settings.repl_timeout:
            what = {CONNECTED: "MASTER timeout: no data nor PING received...",
                    TRANSFER: "Timeout receiving bulk data from MASTER... "
                              "If the problem persists try to set the "
                              "'repl-timeout' parameter in redis.conf to a "
                              "larger value."}.get(
                self.state, "Timeout connecting to the MASTER...")
            log.warn(what)
            self._drop_link()
            self._schedule_connect()
            return
        if self.state == CONNECTED:
            self.send_ack()
        elif self.state == CONNECT and self.reconnect_call is None:
            self._connect()

    # -- the gates (READONLY, MASTERDOWN, NOREPLICAS) -------------------------
    def update_gate(self):
        s = self.settings
        server = self.server
        wanted = None
        if self.master_host is not None or (
                s.min_replicas_to_write and s.min_replicas_max_lag):
            wanted = self._gate
        if server.repl_gate != wanted:
            server.repl_gate = wanted
            server.refresh_gates()

    def _gate(self, c, cmd):
        if c.kind == "master":
            return None
        flags = cmd.flags
        write = "write" in flags or (
            cmd.name == "exec" and c.multi is not None and
            any("write" in q.flags for q, _ in c.multi))
        if self.master_host is None:
            if write:
                return self.master.refuse_write()
            return None
        if write and self.settings.replica_read_only:
            return READONLY
        if self.state != CONNECTED and \
                not self.settings.replica_serve_stale_data and \
                "stale" not in flags:
            return MASTERDOWN
        return None

    def _config_changed(self, name, value):
        if name in ("min-replicas-to-write", "min-replicas-max-lag",
                    "replica-read-only", "replica-serve-stale-data"):
            self.update_gate()

    # -- role changes (REPLICAOF, the cluster) --------------------------------
    def replicate_to(self, host: str, port: int):
        """Become a replica of host:port (Redis's replicationSetMaster)."""
        server = self.server
        was_master = self.master_host is None
        self._drop_link()
        if self.reconnect_call is not None and self.reconnect_call.active():
            self.reconnect_call.cancel()
        self.reconnect_call = None
        self.master_host = host
        self.master_port = int(port)
        server.role = "replica"
        server.keyspace.replica_mode = True
        # Sub-replicas resync with us (they may continue partially).
        self.master.drop_all()
        self.master.ensure_backlog()
        self._ensure_sink()
        if was_master:
            # Block WAITs; clients blocked in WAIT are answered now.
            for w in list(self.master.waits):
                self.master._finish_wait(w, self.master.acked(w.offset))
        self.state = CONNECT
        self.down_since = self.reactor.seconds()
        log.info("Connecting to MASTER {host}:{port}", host=host, port=port)
        self.update_gate()
        self._connect()

    def become_master(self):
        """Stop replicating; keep the data and continue the history under a
        new id (Redis's replicationUnsetMaster / shiftReplicationId)."""
        if self.master_host is None:
            return
        server = self.server
        self._drop_link()
        if self.reconnect_call is not None and self.reconnect_call.active():
            self.reconnect_call.cancel()
        self.reconnect_call = None
        self.master_host = None
        self.master_port = 0
        self.state = NONE
        self.master.ensure_backlog()
        ReplicationIds.shift(server)
        server.role = "master"
        server.keyspace.replica_mode = False
        self.master.drop_all()
        self.master.last_db = -1
        log.info("Setting secondary replication ID to {id2}, valid up to "
                 "offset: {off}. New replication ID is {id}",
                 id2=server.replid2, off=server.second_repl_offset,
                 id=server.replid)
        log.info("MASTER MODE enabled")
        self.update_gate()

    def on_replicate(self, node):
        """ServerHost.on_replicate (cluster mode): node None = master."""
        if node is None:
            self.become_master()
            return
        host = getattr(node, "ip", None) or getattr(node, "host", "")
        port = getattr(node, "port", 0)
        if self.master_host == host and self.master_port == port:
            return
        self.replicate_to(host, port)

    def replica_offset(self) -> int:
        """The offset this replica processed (cluster failover ranking)."""
        return self.server.master_repl_offset

    # -- FAILOVER (standalone) ------------------------------------------------
    def failover_command(self, argv):
        """FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (Redis's
        failoverCommand); returns "OK" or raises CommandError."""
        from rcluster.commands.common import parse_int
        from rcluster.commands.table import CommandError
        if len(argv) == 2 and argv[1].lower() == b"abort":
            if self.failover_state == NO_FAILOVER:
                raise CommandError("ERR No failover in progress.")
            self.abort_failover("Failover manually aborted")
            return "OK"
        timeout = 0
        force = False
        host = None
        port = 0
        i = 1
        while i < len(argv):
            word = argv[i].lower()
            if word == b"timeout" and i + 1 < len(argv) and not timeout:
                timeout = parse_int(argv[i + 1])
                if timeout <= 0:
                    raise CommandError("ERR FAILOVER timeout must be greater "
                                       "than 0")
                i += 2
            elif word == b"to" and i + 2 < len(argv) and host is None:
                port = parse_int(argv[i + 2])
                host = argv[i + 1].decode("utf-8", "replace")
                i += 3
            elif word == b"force" and not force:
                force = True
                i += 1
            else:
                raise CommandError("ERR syntax error")
        if self.failover_state != NO_FAILOVER:
            raise CommandError("ERR FAILOVER already in progress.")
        if self.master_host is not None:
            raise CommandError("ERR FAILOVER is not valid when server is a "
                               "replica.")
        if not self.master.replicas:
            raise CommandError("ERR FAILOVER requires connected replicas.")
        if force and (not timeout or host is None):
            raise CommandError("ERR FAILOVER with force option requires both "
                               "a timeout and target HOST and IP.")
        if host is not None:
            entry = self._find_replica(host, port)
            if entry is None:
                raise CommandError("ERR FAILOVER target HOST and PORT is not "
                                   "a replica.")
            if entry.state != "online":
                raise CommandError("ERR FAILOVER target replica is not "
                                   "online.")
            self.failover_target = (host, port)
            log.info("FAILOVER requested to {h}:{p}.", h=host, p=port)
        else:
            self.failover_target = None
            log.info("FAILOVER requested to any replica.")
        now = self.reactor.seconds()
        self.failover_end = now + timeout / 1000.0 if timeout else 0.0
        self.failover_force = force
        self.failover_state = WAIT_FOR_SYNC
        self.server.pause("write", now + _FAR)
        self._schedule_failover_check()
        return "OK"

    def _find_replica(self, host, port):
        for entry in self.master.replicas:
            if entry.address == host and entry.port == port:
                return entry
        return None

    def _schedule_failover_check(self):
        if self.failover_call is None:
            self.failover_call = self.reactor.callLater(0.1,
                                                        self._failover_check)

    def _failover_check(self):
        """Redis's updateFailoverStatus (every 100 ms while waiting)."""
        self.failover_call = None
        if self.failover_state != WAIT_FOR_SYNC:
            return
        now = self.reactor.seconds()
        offset = self.server.master_repl_offset
        if self.failover_end and self.failover_end <= now:
            if self.failover_force:
                host, port = self.failover_target
                log.info("FAILOVER to {h}:{p} time out exceeded, failing "
                         "over.", h=host, p=port)
                self._failover_start(host, port)
            else:
                self.abort_failover("Replica never caught up before timeout")
            return
        target = None
        if self.failover_target is not None:
            entry = self._find_replica(*self.failover_target)
            if entry is not None and entry.ack_offset == offset:
                target = self.failover_target
        else:
            for entry in self.master.replicas:
                if entry.state == "online" and entry.ack_offset == offset:
                    target = (entry.address, entry.port)
                    break
        if target is not None:
            log.info("Failover target {h}:{p} is synced, failing over.",
                     h=target[0], p=target[1])
            self._failover_start(*target)
            return
        self._schedule_failover_check()

    def _failover_start(self, host, port):
        self.failover_target = (host, port)
        self.failover_state = FAILOVER_IN_PROGRESS
        self.replicate_to(host, port)

    def clear_failover(self):
        if self.failover_state == NO_FAILOVER:
            return
        self.failover_state = NO_FAILOVER
        self.failover_target = None
        self.failover_end = 0.0
        self.failover_force = False
        if self.failover_call is not None and self.failover_call.active():
            self.failover_call.cancel()
        self.failover_call = None
        self.server.unpause()

    def abort_failover(self, why: str):
        if self.failover_state == NO_FAILOVER:
            return
        if self.failover_target is not None:
            log.info("FAILOVER to {h}:{p} aborted: {why}",
                     h=self.failover_target[0], p=self.failover_target[1],
                     why=why)
        else:
            log.info("FAILOVER to any replica aborted: {why}", why=why)
        if self.failover_state == FAILOVER_IN_PROGRESS:
            self.become_master()
        self.clear_failover()

    # -- the link -------------------------------------------------------------
    def _connect(self):
        self.reconnect_call = None
        if self.master_host is None:
            return
        self.state = CONNECTING
        self.last_io = self.reactor.seconds()
        self.connector = self.reactor.connectTCP(
            self.master_host, self.master_port, _LinkFactory(self),
            timeout=self.settings.repl_timeout)

    def _schedule_connect(self):
        if self.master_host is None:
            return
        self.state = CONNECT
        if self.reconnect_call is None:
            self.reconnect_call = self.reactor.callLater(1.0, self._connect)

    def _link_failed(self, reason):
        log.warn("Error condition on socket for SYNC: {r}",
                 r=reason.getErrorMessage())
        if self.failover_state == FAILOVER_IN_PROGRESS:
            self.connector = None
            self.abort_failover("Failover target unreachable")
            return
        self.connector = None
        self._schedule_connect()

    def _link_made(self, link):
        if self.master_host is None or self.state != CONNECTING:
            link.transport.loseConnection()
            return
        log.info("MASTER <-> REPLICA sync started")
        self.link = link
        nodelay = getattr(link.transport, "setTcpNoDelay", None)
        if nodelay is not None:
            nodelay(not self.settings.repl_disable_tcp_nodelay)
        self.state = HANDSHAKE
        self.last_io = self.reactor.seconds()
        server = self.server
        s = self.settings
        auth = (s.masteruser or None, s.masterauth) if s.masterauth else None
        port = s.replica_announce_port or s.port or s.tls_port
        self.handshake = Handshake(
            server.replid, server.master_repl_offset + 1, port, auth=auth,
            ip=s.replica_announce_ip or None,
            failover=self.failover_state == FAILOVER_IN_PROGRESS)
        self._events(self.handshake.start())

    def _link_data(self, link, data):
        if link is not self.link:
            return
        self.last_io = self.reactor.seconds()
        if self.master_client is not None:
            self.master_client.last_interaction = self.last_io
        try:
            self._events(self.handshake.receive(data))
        except Exception as err:        # noqa: BLE001 - drop, never crash
            log.failure("Replication link error: {err}", err=err)
            self._drop_link()
            self._schedule_connect()

    def _link_lost(self, link, reason):
        if link is not self.link:
            return
        self.link = None
        was = self.state
        self._cleanup_link()
        if self.master_host is not None:
            if was == CONNECTED:
                log.info("Connection with master lost.")
                self.down_since = self.reactor.seconds()
            self._schedule_connect()

    def _drop_link(self):
        link, self.link = self.link, None
        if link is not None and link.transport is not None:
            link.transport.loseConnection()
        if self.connector is not None and self.link is None and \
                self.state == CONNECTING:
            try:
                self.connector.disconnect()
            except Exception:           # noqa: BLE001
                pass
        self.connector = None
        self._cleanup_link()

    def _cleanup_link(self):
        if self.state == CONNECTED:
            self.down_since = self.reactor.seconds()
        if self.master_client is not None:
            mc, self.master_client = self.master_client, None
            mc.closing = True
            self.server.client_gone(mc)
        if self.loader is not None:
            # A full sync cut short: what was loaded stays (Redis empties
            # it; the next sync replaces everything anyway).
            self.loader = None
            self.server.loading = False
            self.server.refresh_gates()
        self.handshake = None
        self.parser = None
        self.raw = bytearray()
        if self.master_host is not None:
            self.state = CONNECT

    def _send(self, data: bytes):
        if self.link is not None and self.link.transport is not None:
            self.link.transport.write(data)

    def send_ack(self):
        self._send(encode_command([b"REPLCONF", b"ACK", b"%d" %
                                   self.server.master_repl_offset]))

    def _events(self, events):
        for event in events:
            kind = event[0]
            if kind == "send":
                self._send(event[1])
            elif kind == "stream":
                self._stream(event[1])
            elif kind == "rdb":
                self._rdb(event[1])
            elif kind == "fullresync":
                self.clear_failover()
                self.pending_sync = (event[1], event[2])
                log.info("Full resync from master: {id}:{off}",
                         id=event[1], off=event[2])
            elif kind == "rdb_start":
                self._rdb_start(event[1])
            elif kind == "rdb_end":
                self._rdb_end()
            elif kind == "continue":
                self._continued(event[1])
            elif kind in ("error", "retry"):
                log.warn("{text}", text=event[1])
                if self.failover_state == FAILOVER_IN_PROGRESS:
                    self.abort_failover("Failover target rejected psync "
                                        "request")
                    return
                self._drop_link()
                self._schedule_connect()
                return

    # -- full sync ------------------------------------------------------------
    def _rdb_start(self, size):
        server = self.server
        self.state = TRANSFER
        self.transfer_size = size if size is not None else -1
        self.transfer_read = 0
        log.info("MASTER <-> REPLICA sync: receiving {what}",
                 what="streamed RDB from master with EOF to disk"
                 if size is None else "%d bytes from master to disk" % size)
        log.info("MASTER <-> REPLICA sync: Flushing old data")
        server.keyspace.tick(server.now_ms())
        server.flush_all_dbs()
        server.write_path.flushed(None)
        server.loading = True
        server.refresh_gates()
        self._stop_aof()
        self.loader = _replica_rdb_load(server, self)
        log.info("MASTER <-> REPLICA sync: Loading DB in memory")

    def _rdb(self, data):
        loader = self.loader
        if loader is None:
            return
        self.transfer_read += len(data)
        loader.feed(data)
        # The reader checksums in 1 MiB batches (~100 ms of pure-Python
        # CRC64 in one go); a batch per chunk keeps each turn short.
        flush_crc = getattr(loader.reader, "_flush_crc", None)
        if flush_crc is not None:
            flush_crc()
        loader.apply()
        # The loaded values are long-lived: moved out of the cyclic GC's
        # generations, so a full collection never walks the whole dataset
        # in one reactor turn (they are still freed by reference counts).
        gc.freeze()

    def _rdb_end(self):
        from rcluster.persistence.service import LoadError, persistence
        server = self.server
        loader, self.loader = self.loader, None
        try:
            loader.finish()
            svc = persistence(server)
            if svc is not None and loader.functions:
                svc._install_functions(loader.functions)
        except LoadError as err:
            log.warn("Failed trying to load the MASTER synchronization DB "
                     "from socket: {err}", err=err)
            server.loading = False
            server.refresh_gates()
            self._drop_link()
            self._schedule_connect()
            return
        server.loading = False
        server.refresh_gates()
        replid, offset = self.pending_sync
        self.pending_sync = None
        server.replid = replid
        server.master_repl_offset = offset
        ReplicationIds.clear2(server)
        self.master.backlog = Backlog(self.settings.repl_backlog_size,
                                      offset)
        self.master.drop_all()
        self._ensure_sink()
        log.info("MASTER <-> REPLICA sync: Finished with success")
        self._restart_aof()
        self._connected(offset)
        # The master starts the stream once it knows the EOF mark was seen.
        self.send_ack()

    def _aof(self):
        from rcluster.persistence.service import persistence
        svc = persistence(self.server)
        return getattr(svc, "aof", None) if svc is not None else None

    def _stop_aof(self):
        """The dataset is replaced: the AOF stops while it loads
        (readSyncBulkPayload's stopAppendOnly)..."""
        aof = self._aof()
        if aof is not None and self.settings.appendonly:
            aof.stop_appending()
            self.aof_stopped = True

    def _restart_aof(self):
        """...and restarts with a rewrite of the new dataset
        (restartAOFAfterSYNC)."""
        if not self.aof_stopped:
            return
        self.aof_stopped = False
        try:
            self._aof().enable()
        except Exception as err:        # noqa: BLE001 - logged loudly
            log.warn("Failed enabling the AOF after successful master "
                     "synchronization! Trying it again in one second: "
                     "{err}", err=err)
            self.reactor.callLater(1.0, self._retry_aof)

    def _retry_aof(self):
        self.aof_stopped = True
        self._restart_aof()

    def _continued(self, new_replid):
        self.clear_failover()
        server = self.server
        log.info("Successful partial resynchronization with master.")
        if new_replid and new_replid != server.replid:
            # The master's history continues ours under a new id.
            server.replid2 = server.replid
            server.second_repl_offset = server.master_repl_offset + 1
            server.replid = new_replid
            log.info("Master replication ID changed to {id}", id=new_replid)
            self.master.drop_all()
        self.master.ensure_backlog()
        self._ensure_sink()
        self._connected(server.master_repl_offset)
        log.info("MASTER <-> REPLICA sync: Master accepted a Partial "
                 "Resynchronization.")

    def _connected(self, offset):
        server = self.server
        self.state = CONNECTED
        self.read_offset = offset
        c = server.new_client(
            "%s:%d" % (self.master_host, self.master_port), "",
            lambda data: None, self._drop_link)
        c.kind = "master"
        c.set_authenticated(True)
        c.reply_mode = "off"
        c.refresh()
        self.master_client = c
        self.parser = RequestParser(self.settings)
        self.parser.master = True
        self.raw = bytearray()

    # -- the stream -----------------------------------------------------------
    def _stream(self, data):
        c = self.master_client
        if c is None:
            return
        self.read_offset += len(data)
        self.raw += data
        parser = self.parser
        server = self.server
        ks = server.keyspace
        ks.tick(server.now_ms())
        # The master's commands see keys until the master deletes them.
        ks.replica_mode = 2
        try:
            self._apply(c, parser, data)
        finally:
            if ks.replica_mode == 2:
                ks.replica_mode = self.master_host is not None

    def _apply(self, c, parser, data):
        """Run the commands data completes; the bytes they took go on to
        our backlog.  Their sizes are summed only when needed (a GETACK,
        a request cut at the end of data): otherwise they took all the
        bytes received."""
        server = self.server
        raw = self.raw      # kept even if the link goes meanwhile
        done = []           # commands applied, not yet proxied
        batch = parser.feed(data)
        while True:
            for argv in batch:
                if not argv:
                    continue
                if argv[0].lower() == b"replconf" and len(argv) > 1 and \
                        argv[1].lower() == b"getack":
                    self._proxy(raw, _sizes(done))
                    done = []
                    self.send_ack()
                else:
                    try:
                        server.execute(c, argv)
                    except Exception:   # noqa: BLE001 - logged; go on
                        log.failure("Error applying a command from the "
                                    "master: {cmd!r}", cmd=argv[0])
                done.append(argv)
                if self.master_client is not c:
                    # The link went (a command dropped it): what was
                    # applied still counts.
                    self._proxy(raw, _sizes(done))
                    return
            if not parser.more:
                break
            batch = parser.take()
            if not batch:
                break
        if getattr(parser, "_exact", True) is None:
            self._proxy(raw, len(raw))      # no request left half-read
        else:
            self._proxy(raw, _sizes(done))

    def _proxy(self, raw, n):
        """The n stream bytes just applied go to our backlog and
        sub-replicas, unchanged (offsets stay the master's)."""
        if n <= 0:
            return
        data = bytes(raw[:n])
        del raw[:n]
        self.master.feed(data)

    # -- introspection --------------------------------------------------------
    def info_fields(self) -> list:
        self.master.reap()
        server = self.server
        s = self.settings
        now = self.reactor.seconds()
        fields = [("role", "master" if self.master_host is None else "slave")]
        if self.master_host is not None:
            connected = self.state == CONNECTED
            mc = self.master_client
            fields += [
                ("master_host", self.master_host),
                ("master_port", self.master_port),
                ("master_link_status", "up" if connected else "down"),
                ("master_last_io_seconds_ago",
                 int(now - self.last_io) if mc is not None else -1),
                ("master_sync_in_progress", int(self.state == TRANSFER)),
                ("slave_read_repl_offset",
                 self.read_offset if mc is not None else
                 server.master_repl_offset),
                ("slave_repl_offset", server.master_repl_offset),
            ]
            if self.state == TRANSFER:
                size = self.transfer_size
                read = self.transfer_read
                perc = read * 100.0 / size if size > 0 else 0.0
                fields += [("master_sync_total_bytes", size),
                           ("master_sync_read_bytes", read),
                           ("master_sync_left_bytes", size - read),
                           ("master_sync_perc", "%.2f" % perc),
                           ("master_sync_last_io_seconds_ago",
                            int(now - self.last_io))]
            if not connected:
                fields.append(("master_link_down_since_seconds",
                               int(now - self.down_since)
                               if self.down_since else -1))
            fields += [("slave_priority", s.replica_priority),
                       ("slave_read_only", int(s.replica_read_only)),
                       ("replica_announced", int(s.replica_announced))]
        fields.append(("connected_slaves", len(self.master.replicas)))
        fields += self.master.info_lines()
        fields += [
            ("master_failover_state", self.failover_state),
            ("master_replid", server.replid),
            ("master_replid2", server.replid2),
            ("master_repl_offset", server.master_repl_offset),
            ("second_repl_offset", server.second_repl_offset),
        ]
        fields += self.master.backlog_fields()
        return fields

    def role_reply(self) -> list:
        self.master.reap()
        server = self.server
        if self.master_host is None:
            return [b"master", server.master_repl_offset,
                    self.master.role_list()]
        offset = server.master_repl_offset if self.state == CONNECTED \
            else -1
        return [b"slave", self.master_host.encode(), self.master_port,
                self.state.encode(), offset]


__all__ = ["ReplicationService", "replication", "new_replid"]
