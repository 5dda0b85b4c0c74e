"""The master side of replication, sans-IO (Redis's replication.c, master
half).

- The write path hands every execution unit's ops to ``Master.sink``;
  they are encoded as the replication stream (a SELECT first when the db
  changes, as Redis), appended to the backlog (``server.master_repl_offset``
  advances) and written to every replica that is online; replicas whose
  full sync is running buffer them until their RDB is out.
- A replica connects as a client: REPLCONF (listening-port, ip-address,
  capa, ACK, GETACK), then PSYNC (or SYNC).  ``psync`` answers
  ``+CONTINUE`` from the backlog or starts a full sync: ``+FULLRESYNC
  <replid> <offset>`` and an RDB of the dataset at that offset, either
  diskless (``$EOF:<mark>`` ... ``<mark>``, streamed as the point-in-time
  snapshot is taken) or from a file (``$<len>``).  The transfer itself is
  the service's (service.py): this module calls ``transport.start_rdb``.
- WAIT blocks its client until enough replicas acknowledged its offset;
  min-replicas-to-write refuses writes while too few replicas are good.
"""
from __future__ import annotations

import os

from rcluster.blocking import BLOCKED
from rcluster.logs import logger
from rcluster.replication.backlog import (
    NO_REPLID, Backlog, ReplicationIds, encode_command, new_replid,
    psync_decision)
from rcluster.resp.codec import Error

log = logger()

WAIT_BGSAVE_START = "wait_bgsave_start"
WAIT_BGSAVE_END = "wait_bgsave_end"
SEND_BULK = "send_bulk"
WAIT_ACK = "wait_ack"          # diskless: RDB sent, stream starts on ACK
ONLINE = "online"
_STATE_TEXT = {WAIT_BGSAVE_START: "wait_bgsave", WAIT_BGSAVE_END:
               "wait_bgsave", SEND_BULK: "send_bulk", WAIT_ACK: "send_bulk",
               ONLINE: "online"}
NOREPLICAS = Error("NOREPLICAS Not enough good replicas to write.")
GETACK = encode_command([b"REPLCONF", b"GETACK", b"*"])
PING = encode_command([b"PING"])


class ReplicaEntry:
    """One replica attached to this master (Redis's slave client)."""

    __slots__ = ("client", "state", "port", "ip", "capa", "ack_offset",
                 "ack_time", "pending", "pending_size", "sync_offset",
                 "transfer", "diskless", "psync_initial", "start_timer",
                 "soft_since")

    def __init__(self, client):
        self.client = client
        self.state = WAIT_BGSAVE_START
        self.port = 0
        self.ip = None
        self.capa = set()
        self.ack_offset = 0
        self.ack_time = 0.0
        self.pending: list = []       # stream bytes while the RDB goes
        self.pending_size = 0
        self.sync_offset = 0
        self.transfer = None          # the running RDB transfer
        self.diskless = False
        self.psync_initial = 0
        self.start_timer = None
        self.soft_since = None

    @property
    def address(self) -> str:
        if self.ip:
            return self.ip
        return self.client.addr.rpartition(":")[0].strip("[]")

    def send(self, data: bytes):
        c = self.client
        if c.closed or c.closing:
            return
        if c.out:
            c.flush()
        c.server.stats.net_repl_output_bytes = getattr(
            c.server.stats, "net_repl_output_bytes", 0) + len(data)
        c.write(data)


class _Wait:
    __slots__ = ("client", "offset", "numreplicas", "timer")

    def __init__(self, client, offset, numreplicas):
        self.client = client
        self.offset = offset
        self.numreplicas = numreplicas
        self.timer = None


class Master:
    """Replication state of a node acting as master (and, as a replica,
    of its own sub-replicas: the backlog and ``feed`` serve both)."""

    def __init__(self, server, settings, clock):
        self.server = server
        self.settings = settings
        self.clock = clock
        self.backlog: Backlog | None = None
        self.replicas: list = []
        self.last_db = -1              # Redis's slaveseldb
        self.waits: list = []
        self.write_offset = 0
        self.outgoing: list = []        # stream bytes not yet written
        self.flush_call = None
        self.getack_pending = False
        self.no_replicas_since = clock.seconds()
        self.last_ping = clock.seconds()
        # REPLCONF's announcements (listening-port, ip-address, capa) by
        # client id, until that client's PSYNC makes it a replica.
        self.handshakes: dict = {}
        # Set by the service: start_transfer(entry, diskless) begins the
        # RDB of a full sync (the IO part); None in unit tests.
        self.start_transfer = None
        # Set by the service: is our own master link up (a replica serves
        # SYNC only then)?  Is a FAILOVER running?  promote(): become a
        # master (PSYNC ... FAILOVER from our master).
        self.link_up = lambda: True
        self.failing_over = lambda: False
        self.promote = None

    # -- the stream -----------------------------------------------------------
    def ensure_backlog(self):
        if self.backlog is None:
            self.backlog = Backlog(self.settings.repl_backlog_size,
                                   self.server.master_repl_offset)

    def feed(self, data: bytes):
        """Append stream bytes: backlog, offset, replicas."""
        backlog = self.backlog
        if backlog is None:
            return
        backlog.append(data)
        self.server.master_repl_offset = backlog.end
        if not self.replicas:
            return
        # Online replicas get the stream once per reactor turn (one write
        # for all the commands of the turn, as Redis's output buffers).
        self.outgoing.append(data)
        if self.flush_call is None:
            self.flush_call = self.clock.callLater(0, self.flush_stream)
        over = None
        for entry in self.replicas:
            state = entry.state
            if state != ONLINE and state != WAIT_BGSAVE_START:
                entry.pending.append(data)
                entry.pending_size += len(data)
                if self._over_limit(entry):
                    over = (over or []) + [entry]
        for entry in over or ():
            log.warn("Client id={id} addr={addr} scheduled to be closed "
                     "ASAP for overcoming of output buffer limits.",
                     id=entry.client.id, addr=entry.client.addr)
            entry.client.kill()
            self.replica_gone(entry)

    def _over_limit(self, entry) -> bool:
        """client-output-buffer-limit replica, on the stream a syncing
        replica has not been sent yet (hard at once, soft for seconds)."""
        limits = getattr(self.settings, "client_output_buffer_limit", None)
        hard, soft, seconds = (limits or {}).get("replica", (0, 0, 0))
        size = entry.pending_size
        if hard and size >= hard:
            return True
        if soft and size >= soft:
            now = self.clock.seconds()
            if entry.soft_since is None:
                entry.soft_since = now
            return now - entry.soft_since > seconds
        entry.soft_since = None
        return False

    def flush_stream(self):
        """Write the stream gathered this turn to the online replicas."""
        self.flush_call = None
        out, self.outgoing = self.outgoing, []
        if not out:
            return
        data = b"".join(out) if len(out) > 1 else out[0]
        for entry in self.replicas:
            if entry.state == ONLINE:
                entry.send(data)

    def sink(self, db, ops):
        """The write path's sink: the ops of one execution unit."""
        if self.backlog is None or self.server.role != "master":
            return      # a replica proxies its master's stream instead
        parts = []
        if db != self.last_db:
            parts.append(encode_command([b"SELECT", b"%d" % db]))
            self.last_db = db
        parts.extend(encode_command(argv) for argv in ops)
        self.feed(b"".join(parts))
        # WAIT's target: the end of the last write (Redis keeps it per
        # client, c->woff; the last write overall is at or after it).
        self.write_offset = self.server.master_repl_offset

    # -- the handshake (REPLCONF) ---------------------------------------------
    def entry_for(self, client):
        for entry in self.replicas:
            if entry.client is client:
                return entry
        return None

    def replconf(self, c, argv):
        """REPLCONF option value ...; returns the reply (None: none)."""
        if len(argv) % 2 == 0:
            return Error("ERR syntax error")
        state = self._handshake_state(c)
        for i in range(1, len(argv), 2):
            option = argv[i].lower()
            value = argv[i + 1]
            if option == b"listening-port":
                try:
                    state["port"] = int(value)
                except ValueError:
                    return Error("ERR value is not an integer or out of range")
            elif option == b"ip-address":
                if len(value) >= 46:
                    return Error("ERR REPLCONF ip-address provided by "
                                 "replica instance is too long: %d bytes"
                                 % len(value))
                state["ip"] = value.decode("utf-8", "replace")
            elif option == b"capa":
                state["capa"].add(value.lower().decode("utf-8", "replace"))
            elif option == b"ack":
                entry = self.entry_for(c)
                if entry is None:
                    return None
                try:
                    offset = int(value)
                except ValueError:
                    return None
                self.ack(entry, offset)
                return None
            elif option == b"getack":
                # Only a master's GETACK means something (replica side).
                return None
            elif option == b"rdb-only":
                if value not in (b"0", b"1"):
                    return Error("ERR value is not an integer or out of "
                                 "range")
            elif option == b"rdb-filter-only":
                pass
            else:
                return Error("ERR Unrecognized REPLCONF option: %s"
                             % argv[i].decode("utf-8", "replace"))
        return "OK"

    def _handshake_state(self, c):
        return self.handshakes.setdefault(
            c.id, {"port": 0, "ip": None, "capa": set()})

    def ack(self, entry, offset: int):
        if offset > entry.ack_offset:
            entry.ack_offset = offset
        entry.ack_time = self.clock.seconds()
        if entry.state == WAIT_ACK:
            self._online(entry)
        if self.waits:
            self.check_waits()

    # -- PSYNC / SYNC ---------------------------------------------------------
    def psync(self, c, argv):
        """PSYNC replid offset, or SYNC (argv of length 1).  Returns the
        reply for the command (NO_REPLY when the answer was written)."""
        server = self.server
        if c.kind == "replica":
            return None        # already a replica: ignored, as Redis
        if len(argv) > 3 and argv[0].lower() == b"psync" and \
                argv[3].lower() == b"failover":
            log.warn("Failover request received for replid {id}.",
                     id=argv[1].decode("latin-1"))
            if server.role == "master":
                return Error("ERR PSYNC FAILOVER can't be sent to a master.")
            if argv[1].decode("latin-1").lower() != server.replid or \
                    self.promote is None:
                return Error("ERR PSYNC FAILOVER replid must match my "
                             "replid.")
            self.promote()
            log.info("MASTER MODE enabled (failover request from "
                     "'{addr}')", addr=c.addr)
        if self.failing_over():
            return Error("NOMASTERLINK Can't SYNC while failing over")
        if server.role != "master" and not self.link_up():
            return Error("NOMASTERLINK Can't SYNC while not connected with "
                         "my master")
        if c.out:
            return Error("ERR SYNC and PSYNC are invalid with pending "
                         "output")
        hs = self.handshakes.pop(c.id, None) or \
            {"port": 0, "ip": None, "capa": set()}
        entry = ReplicaEntry(c)
        entry.port, entry.ip, entry.capa = hs["port"], hs["ip"], hs["capa"]
        entry.ack_time = self.clock.seconds()
        if argv[0].lower() == b"psync":
            replid = argv[1].decode("latin-1")
            try:
                offset = int(argv[2])
            except ValueError:
                offset = -1
            ok, reason = psync_decision(server, self.backlog, replid, offset)
            if ok:
                self._continue(c, entry, offset)
                return None
            if replid != "?":
                log.info("Partial resynchronization not accepted: {reason}",
                         reason=reason)
                self.server.stats.sync_partial_err += 1
            else:
                log.info("Full resync requested by replica {addr}",
                         addr=entry.address)
            entry.psync_initial = 1
        c.kind = "replica"
        c.refresh()
        self.server.stats.sync_full += 1
        self.replicas.append(entry)
        self.no_replicas_since = None
        if len(self.replicas) == 1 and self.backlog is None:
            # The first replica of a master: a new history (syncCommand).
            server.replid = new_replid()
            ReplicationIds.clear2(server)
            self.ensure_backlog()
            log.info("Replication backlog created, my new replication IDs "
                     "are '{a}' and '{b}'", a=server.replid, b=server.replid2)
        diskless = self.settings.repl_diskless_sync and "eof" in entry.capa
        entry.diskless = diskless
        delay = self.settings.repl_diskless_sync_delay if diskless else 0
        log.info("Replica {addr}:{port} asks for synchronization",
                 addr=entry.address, port=entry.port)
        if delay:
            entry.start_timer = self.clock.callLater(delay, self.start_sync,
                                                     entry)
        else:
            self.start_sync(entry)
        return None

    def _continue(self, c, entry, offset):
        self.flush_stream()
        c.kind = "replica"
        c.refresh()
        entry.state = ONLINE
        entry.ack_offset = offset - 1
        self.replicas.append(entry)
        self.no_replicas_since = None
        self.server.stats.sync_partial_ok += 1
        data = self.backlog.since(offset)
        line = b"+CONTINUE %s\r\n" % self.server.replid.encode() \
            if "psync2" in entry.capa else b"+CONTINUE\r\n"
        entry.send(line)
        if data:
            entry.send(data)
        log.info("Partial resynchronization request from {addr} accepted. "
                 "Sending {n} bytes of backlog starting from offset "
                 "{offset}.", addr=entry.address, n=len(data), offset=offset)

    def start_sync(self, entry):
        """The snapshot starts now: +FULLRESYNC with the offset it is
        taken at, then the RDB (the service streams it)."""
        entry.start_timer = None
        if entry.client.closed or entry not in self.replicas:
            return
        self.ensure_backlog()
        # The replica's db is unknown: the stream starts with a SELECT.
        self.last_db = -1
        entry.sync_offset = self.server.master_repl_offset
        entry.state = WAIT_BGSAVE_END
        if entry.psync_initial:
            entry.send(b"+FULLRESYNC %s %d\r\n" % (
                self.server.replid.encode(), entry.sync_offset))
        log.info("Starting BGSAVE for SYNC with target: {t}",
                 t="replicas sockets" if entry.diskless else "disk")
        if self.start_transfer is not None:
            self.start_transfer(entry, entry.diskless)

    def transfer_done(self, entry):
        """The RDB is out: disk-based replicas go online now, diskless
        ones on their first ACK (they must see the EOF mark first)."""
        entry.transfer = None
        if entry.client.closed:
            return
        log.info("Synchronization with replica {addr}:{port} succeeded",
                 addr=entry.address, port=entry.port)
        if entry.diskless:
            entry.state = WAIT_ACK
        else:
            self._online(entry)

    def _online(self, entry):
        # What was gathered this turn is already in entry.pending.
        self.flush_stream()
        entry.state = ONLINE
        entry.ack_time = self.clock.seconds()
        pending, entry.pending, entry.pending_size = entry.pending, [], 0
        if pending:
            entry.send(b"".join(pending))

    def replica_gone(self, entry):
        if entry in self.replicas:
            self.replicas.remove(entry)
            log.info("Connection with replica {addr}:{port} lost.",
                     addr=entry.address, port=entry.port)
        if entry.start_timer is not None and entry.start_timer.active():
            entry.start_timer.cancel()
        transfer = entry.transfer
        entry.transfer = None
        if transfer is not None:
            transfer.abort()
        if not self.replicas:
            self.no_replicas_since = self.clock.seconds()
        if self.waits:
            self.check_waits()

    def drop_all(self):
        """Close every replica link (a new history: they must resync)."""
        for entry in list(self.replicas):
            entry.client.kill()
            self.replica_gone(entry)

    def reap(self):
        for entry in list(self.replicas):
            if entry.client.closed:
                self.replica_gone(entry)

    # -- WAIT -----------------------------------------------------------------
    def acked(self, offset: int) -> int:
        return sum(1 for e in self.replicas
                   if e.state == ONLINE and e.ack_offset >= offset
                   and not e.client.closed)

    def wait(self, c, numreplicas: int, timeout_ms: int):
        server = self.server
        offset = min(self.write_offset, server.master_repl_offset)
        count = self.acked(offset)
        if count >= numreplicas or server.in_exec or c.multi is not None:
            return count
        w = _Wait(c, offset, numreplicas)
        if timeout_ms > 0:
            w.timer = self.clock.callLater(timeout_ms / 1000.0,
                                           self._wait_timeout, w)
        self.waits.append(w)
        c.blocked = w
        self.request_acks()
        return BLOCKED

    def request_acks(self):
        """GETACK to the replicas, once per reactor turn (Redis sends it
        in beforeSleep)."""
        if not self.getack_pending:
            self.getack_pending = True
            self.clock.callLater(0, self._send_getack)

    def _send_getack(self):
        self.getack_pending = False
        if self.waits and self.backlog is not None and \
                self.server.role == "master" and \
                self.server.pause_type is None:
            self.feed(GETACK)

    def _wait_timeout(self, w):
        w.timer = None
        self._finish_wait(w, self.acked(w.offset))

    def _finish_wait(self, w, count):
        if w in self.waits:
            self.waits.remove(w)
        if w.timer is not None and w.timer.active():
            w.timer.cancel()
        c = w.client
        if c.blocked is w and not c.closed:
            c.blocked = None
            c.complete(count)

    def check_waits(self):
        for w in list(self.waits):
            if w.client.closed or w.client.blocked is not w:
                self.waits.remove(w)
                if w.timer is not None and w.timer.active():
                    w.timer.cancel()
                continue
            count = self.acked(w.offset)
            if count >= w.numreplicas:
                self._finish_wait(w, count)

    # -- min-replicas-to-write ------------------------------------------------
    def good_replicas(self) -> int:
        now = self.clock.seconds()
        lag = self.settings.min_replicas_max_lag
        return sum(1 for e in self.replicas
                   if e.state == ONLINE and now - e.ack_time <= lag)

    def refuse_write(self):
        s = self.settings
        if s.min_replicas_to_write and s.min_replicas_max_lag and \
                self.good_replicas() < s.min_replicas_to_write:
            return NOREPLICAS
        return None

    # -- cron -----------------------------------------------------------------
    def cron(self):
        """Every second (replicationCron, master half)."""
        now = self.clock.seconds()
        self.reap()
        handshakes = self.handshakes
        if handshakes:
            for cid in [cid for cid in handshakes
                        if cid not in self.server.clients]:
                del handshakes[cid]
        period = self.settings.repl_ping_replica_period
        if self.replicas and self.server.role == "master" and \
                now - self.last_ping >= period:
            self.last_ping = now
            if self.server.pause_type is None:
                self.feed(PING)
        else:
            if not self.replicas:
                self.last_ping = now
        for entry in self.replicas:
            if entry.state in (WAIT_BGSAVE_START, WAIT_BGSAVE_END):
                # Keep the link alive while it waits (a newline).
                entry.send(b"\n")
        timeout = self.settings.repl_timeout
        for entry in list(self.replicas):
            if entry.state == ONLINE and now - entry.ack_time > timeout:
                log.warn("Disconnecting timedout replica (streaming sync): "
                         "{addr}:{port}", addr=entry.address,
                         port=entry.port)
                entry.client.kill()
                self.replica_gone(entry)
        ttl = self.settings.repl_backlog_ttl
        if self.backlog is not None and not self.replicas and ttl and \
                self.server.role == "master" and \
                self.no_replicas_since is not None and \
                now - self.no_replicas_since > ttl:
            # The backlog goes; a new id so nobody continues a history
            # with a gap (Redis's freeReplicationBacklog path).
            self.backlog = None
            self.server.replid = new_replid()
            ReplicationIds.clear2(self.server)
            log.info("Replication backlog freed after {ttl} seconds without "
                     "connected replicas.", ttl=ttl)
        if self.backlog is not None and \
                self.backlog.size != self.settings.repl_backlog_size:
            self.backlog.resize(self.settings.repl_backlog_size)
        if self.waits:
            self.check_waits()

    # -- introspection --------------------------------------------------------
    def info_lines(self) -> list:
        now = self.clock.seconds()
        fields = []
        s = self.settings
        if s.min_replicas_to_write and s.min_replicas_max_lag:
            fields.append(("min_slaves_good_slaves", self.good_replicas()))
        for i, e in enumerate(self.replicas):
            lag = int(now - e.ack_time) if e.state == ONLINE else 0
            fields.append(("slave%d" % i,
                           "ip=%s,port=%d,state=%s,offset=%d,lag=%d" % (
                               e.address, e.port, _STATE_TEXT[e.state],
                               e.ack_offset, lag)))
        return fields

    def backlog_fields(self) -> list:
        b = self.backlog
        return [
            ("repl_backlog_active", int(b is not None)),
            ("repl_backlog_size", self.settings.repl_backlog_size),
            ("repl_backlog_first_byte_offset",
             b.first_offset if b is not None else 0),
            ("repl_backlog_histlen", b.histlen if b is not None else 0),
        ]

    def role_list(self) -> list:
        return [[e.address.encode(), b"%d" % e.port, b"%d" % e.ack_offset]
                for e in self.replicas if e.state == ONLINE]


def disk_rdb_name() -> str:
    return "temp-repl-%d.rdb" % os.getpid()


__all__ = ["Master", "ReplicaEntry", "NOREPLICAS", "NO_REPLID"]
