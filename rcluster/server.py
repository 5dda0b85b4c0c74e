"""The node's core, sans-IO: settings, keyspace, clients and command dispatch.

``Server.execute(client, argv)`` is Redis's processCommand: look the
command up in the one command table, check arity, authentication,
transaction state, cluster routing, pub/sub context and client pauses,
then ``call`` it.  ``call`` runs the handler and does the bookkeeping
every call shares (statistics, MONITOR); what a write changed goes
through the write path (``propagation.WritePath``): replicas and the AOF,
WATCH, clients blocked on the keys, tracking.

Time comes from the injected clock (``IReactorTime``): the server never
imports the reactor.
"""
from __future__ import annotations

import os
from time import perf_counter_ns as _clock_ns
from operator import attrgetter

from rcluster.blocking import BLOCKED, Blocking
from rcluster.client import Client
from rcluster.eviction import Evictor
from rcluster.commands.table import CommandError, CommandTable
from rcluster.databases import Databases
from rcluster.logs import logger
from rcluster.latency import counts_index, install as install_latency
from rcluster.notify import EXPIRED, notify, install as install_notify
from rcluster.propagation import WritePath
from rcluster.pubsub import PubSub
from rcluster.resp.codec import QUEUED, Error
from rcluster.stats import Stats

log = logger()

NOAUTH = Error("NOAUTH Authentication required.")
LOADING = Error("LOADING Redis is loading the dataset in memory")
# Commands that run, instead of being queued, inside MULTI.
_MULTI_CONTROL = frozenset(("exec", "discard", "multi", "watch", "quit",
                            "reset"))
# Commands that change what execute() checks about a connection (its
# authentication, MULTI, pub/sub mode, RESP version or kind): they always
# take the checked path, after which Client.plain is recomputed.
_CONNECTION_STATE = frozenset((
    "auth", "hello", "multi", "exec", "discard", "reset", "quit", "monitor",
    "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe",
    "sunsubscribe", "sync", "psync", "replconf"))
# Connections Redis flags CLIENT_SLAVE: replicas, and MONITOR clients.
_REPLICA_KINDS = frozenset(("replica", "monitor"))
_UNPAUSED = frozenset(("replica", "master"))
_CALLS = attrgetter("calls")
_ONE_SECOND = counts_index(1_000_000_000)     # the histograms' top
_PUBSUB_CONTEXT = frozenset(("ping", "subscribe", "ssubscribe", "unsubscribe",
                             "sunsubscribe", "psubscribe", "punsubscribe",
                             "quit", "reset"))


class Server:
    def __init__(self, settings, clock, table: CommandTable | None = None):
        self.settings = settings
        self.clock = clock
        self.table = table if table is not None else CommandTable.build()
        # Command rows by the name bytes as clients spell them (b"SET",
        # b"set"): spares lower-casing and decoding on every request.
        self._by_raw_name: dict = {}
        # Every row, subcommands included: statistics are sums over them.
        self._all_rows = [row for top in self.table for row in
                          (top, *top.subcommands.values())]
        for row in self._all_rows:
            row.plain = row.guard is None and \
                row.name.partition("|")[0] not in _CONNECTION_STATE
        # Databases (SELECT): ``databases`` of them standalone,
        # ``cluster-databases`` in cluster mode.  ``keyspace`` is the one
        # in use: db 0, or a client's db while call() runs its command.
        count = settings.cluster_databases if settings.cluster_enabled \
            else settings.databases
        self.dbs = Databases(count)
        self.dbs[0].on_expire = self._key_expired
        self.keyspace = self.dbs[0]
        self.cur_db = 0
        self.stats = Stats(clock.seconds())
        self.clients: dict = {}
        self._next_client_id = 1
        self.blocking = Blocking(self)
        self.pubsub = PubSub(self)
        self.watched_keys: dict = {}      # key -> set of watching clients
        self.in_exec = False
        self.pause_type = None            # None | "write" | "all"
        # Any gate up (refresh_gates): every command takes the checked path.
        self.gated = False
        self.pause_until = 0.0
        self.paused: list = []            # clients postponed by a pause
        # Cluster routing: a callable (client, command, argv) returning an
        # error reply to send instead of running, or None.  Installed by
        # the cluster layer; with cluster-enabled and none installed yet,
        # keyed commands answer CLUSTERDOWN.
        self.router = None
        self.cluster_mode = settings.cluster_enabled     # immutable directive
        self.cluster = None               # the cluster state, in cluster mode
        self.cluster_engine = None        # its engine (cluster/engine.py)
        # Where every change goes: sinks (AOF, replication) register here.
        self.write_path = WritePath(self)
        self.shutdown_hook = None   # callable(save: bool|None, force: bool)
        # MONITOR hook: called with (client, command, argv) after each call.
        self.monitor = None
        self.active_expire = True         # DEBUG SET-ACTIVE-EXPIRE
        self.cron_paused = False          # DEBUG PAUSE-CRON
        self.run_id = os.urandom(20).hex()
        # Replication identity (Redis's replid/replid2 and offset): a
        # master without replicas keeps its first id and offset 0.
        self.replid = os.urandom(20).hex()
        self.replid2 = "0" * 40
        self.master_repl_offset = 0
        self.started = clock.seconds()
        self.lastsave = int(clock.seconds())
        self.dirty_at_save = 0
        self.role = "master"
        self.extensions = {}              # per-plugin state, by name
        self.aof = None         # the Aof (persistence/aof.py), once made
        # Lua scripts and functions (rcluster/scripting).
        from rcluster.scripting import Scripting
        self.scripts = Scripting(self)
        # Client-side caching (tracking.Tracking), made by the first
        # CLIENT TRACKING on.
        self.tracking = None
        # Persistence gates (persistence/service.py): while loading, only
        # commands flagged "loading" run; write_refusal (an Error, e.g.
        # MISCONF after a failed background save) refuses writes and PING.
        self.loading = False
        self.write_refusal = None
        # Replication gates (replication/service.py): a callable (client,
        # command) -> Error or None (READONLY, MASTERDOWN, NOREPLICAS), set
        # only while one may apply; None otherwise.
        self.repl_gate = None
        self.second_repl_offset = -1
        # appendfsync always: a set while replies wait for the AOF fsync of
        # this reactor turn (Client.flush parks its client there; the AOF
        # flushes them after the fsync), else None.
        self.reply_barrier = None
        # Keyspace events (rcluster/notify.py): the enabled classes.
        self.notify_flags = 0
        install_notify(self)
        # Slow log, latency histograms and monitor (self.latency): call()
        # records into command rows' histograms while latency_on, and
        # calls latency.slow() for commands taking slow_ns or more.
        self.latency_on = False
        self.slow_ns = 1 << 62
        install_latency(self)
        # maxmemory and eviction (rcluster/eviction.py); with maxmemory
        # set, every command takes the checked path (refresh_gates).
        self.evictor = Evictor(self)
        self.refresh_gates()

    # -- clients ------------------------------------------------------------
    @property
    def requires_auth(self) -> bool:
        return bool(self.settings.requirepass)

    def new_client(self, addr="", laddr="", write=None, close=None) -> Client:
        client = Client(self, self._next_client_id, addr, laddr, write, close)
        self._next_client_id += 1
        self.clients[client.id] = client
        self.stats.total_connections_received += 1
        return client

    def client_gone(self, client: Client):
        client.closed = True
        self.clients.pop(client.id, None)
        self.blocking.forget(client)
        self.unwatch_all(client)
        self.pubsub.forget(client)
        if client.tracking is not None:
            self.tracking.disable(client)
        if client in self.paused:
            self.paused.remove(client)

    def log_protocol_error(self, client, error):
        log.info("Protocol error ({reason}) from client: id={id} addr={addr}",
                 reason=error.reason, id=client.id, addr=client.addr)

    def refresh_gates(self):
        """After a change of a gate (loading, write_refusal, repl_gate, a
        busy script, the evictor's): while any is set, every command takes
        the checked path (where they are enforced), so the fast path pays
        nothing for them (a CLIENT PAUSE is one too)."""
        self.gated = bool(
            self.loading or self.write_refusal is not None or
            self.repl_gate is not None or self.scripts.busy is not None or
            self.evictor.gated or self.pause_type is not None)

    # -- the command pipeline --------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock.seconds() * 1000)

    def execute(self, c: Client, argv):
        """Run one request from a client (Redis's processCommand).

        ``keyspace.now`` is set by the caller (once per batch of requests).
        A plain client running a plain command needs none of the
        per-connection checks; everything else goes through them, and the
        client's ``plain`` flag is refreshed after it."""
        # A command row by the exact bytes the client sent (b"SET", b"set"):
        # spares lower-casing and decoding on every request.
        cmd = self._by_raw_name.get(argv[0])
        if cmd is None or (cmd.arity != len(argv) if cmd.arity > 0
                           else len(argv) < -cmd.arity):
            cmd, error = self.table.lookup(argv)
            if cmd is None:
                if c.multi is not None and argv[0].lower() == b"exec":
                    self._abort_exec(c, error)
                else:
                    self._reject(c, Error(error))
                return
            if not cmd.name.count("|") and not cmd.subcommands and \
                    len(self._by_raw_name) < 4096:
                self._by_raw_name[argv[0]] = cmd
        if c.plain and cmd.plain and not self.gated:
            if cmd.keyed and self.cluster_mode and \
                    not self._route(c, cmd, argv):
                return
            self.call(c, cmd, argv)
        else:
            self._execute_checked(c, cmd, argv)
            c.refresh()
        if self.write_path.active:
            self.write_path.flush()
        if self.blocking.ready:
            self.blocking.serve_ready()

    def _route(self, c, cmd, argv) -> bool:
        """Cluster redirection: False (and the error replied) when another
        node serves the request."""
        router = self.router
        if router is not None:
            redirect = router(c, cmd, argv)
            if redirect is None:
                return True
            if redirect is False:
                return False    # parked: a key is in flight (MIGRATE)
            cmd.rejected_calls += 1
            if cmd.name == "exec":
                self.discard_transaction(c)
                c.reply(redirect)
            else:
                self._reject(c, redirect)
            return False
        if cmd.keyed and self.cluster_mode:
            # Cluster mode before the cluster layer is up.
            self._reject(c, Error("CLUSTERDOWN Hash slot not served"))
            return False
        return True

    def _execute_checked(self, c: Client, cmd, argv):
        if not c.authenticated and "no_auth" not in cmd.flags:
            self._reject(c, NOAUTH)
            return
        if cmd.guard is not None:
            refusal = cmd.guard(c)
            if refusal is not None:
                cmd.rejected_calls += 1
                self._reject(c, Error(refusal))
                return
        multi = c.multi
        if multi is not None and "no_multi" in cmd.flags:
            self._reject(c, Error("ERR Command not allowed inside a transaction"))
            return
        if (cmd.keyed or cmd.name == "exec") and c.kind != "master" and \
                not self._route(c, cmd, argv):
            return
        if self.evictor.active and c.kind != "master":
            refusal = self.evictor.before_command(c, cmd)
            if refusal is not None:
                self._reject(c, refusal)
                return
        if not c.resp3 and (c.channels or c.patterns or c.shard_channels) \
                and cmd.name not in _PUBSUB_CONTEXT:
            self._reject(c, Error(
                "ERR Can't execute '%s': only (P|S)SUBSCRIBE / "
                "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
                "context" % cmd.name))
            return
        if self.repl_gate is not None:
            refusal = self.repl_gate(c, cmd)
            if refusal is not None:
                self._reject(c, refusal)
                return
        if self.loading and "loading" not in cmd.flags:
            self._reject(c, LOADING)
            return
        if self.write_refusal is not None and c.kind != "master" and (
                "write" in cmd.flags or cmd.name == "ping"):
            self._reject(c, self.write_refusal)
            return
        if self.scripts.busy is not None and "allow_busy" not in cmd.flags:
            # A script past busy-reply-threshold (see rcluster/scripting).
            self._reject(c, self.scripts.busy_error())
            return
        if c.kind in _REPLICA_KINDS and (
                "write" in cmd.flags or "readonly" in cmd.flags
                or "may_replicate" in cmd.flags):
            self._reject(c, Error("ERR Replica can't interact with the keyspace"))
            return
        # Replicas are never paused, nor is our master's stream (parking
        # one of its commands would reorder the ones after it).
        if self.pause_type is not None and c.kind not in _UNPAUSED and \
                self._paused_for(cmd, c):
            c.pending.appendleft(argv)
            c.blocked = "pause"
            self.paused.append(c)
            return
        if multi is not None and cmd.name not in _MULTI_CONTROL:
            multi.append((cmd, argv))
            c.reply(QUEUED)
            return
        if c.no_touch and cmd.name != "touch":
            self._call_untouched(c, cmd, argv)
        else:
            self.call(c, cmd, argv)

    def _call_untouched(self, c, cmd, argv):
        """CLIENT NO-TOUCH (7.2): the command's reads leave the keys'
        access times alone (what it runs too: EXEC, scripts); TOUCH still
        touches.  A command that turned tracking on (OBJECT IDLETIME, a
        new policy) keeps it on."""
        dbs = list(self.dbs)
        tracked = [ks.track for ks in dbs]
        for ks in dbs:
            ks.track = False
        try:
            self.call(c, cmd, argv)
        finally:
            for ks, track in zip(dbs, tracked):
                ks.track = track or ks.track

    @property
    def cluster_connections(self) -> int:
        """Bus links, counted against maxclients as Redis does (two per
        known node besides myself)."""
        if self.cluster is None:
            return 0
        return 2 * (len(self.cluster.nodes) - 1)

    @property
    def total_commands_processed(self) -> int:
        # map/attrgetter: no Python frame per row (the cron reads it
        # ten times a second).
        return sum(map(_CALLS, self._all_rows))

    def _abort_exec(self, c, error: str):
        """EXEC refused before running: the transaction is discarded and
        the reason given (Redis's execCommandAbort)."""
        self.discard_transaction(c)
        reason = error[4:] if error.startswith("ERR ") else error
        self._reject(c, Error("EXECABORT Transaction discarded because of: "
                              + reason))

    def _reject(self, c, error):
        self.stats.count_error(error)
        if c.multi is not None:
            c.multi_error = True
        c.reply(error)

    def call(self, c: Client, cmd, argv, send=True):
        """Run a command and do the shared bookkeeping (Redis's call()).

        The reply is queued to the client unless ``send`` is false (a
        blocked client being retried gets it through Blocking.unblock)."""
        if c.db != self.cur_db:
            return self._call_in_db(c, cmd, argv, send)
        ks = self.keyspace
        dirty = ks.dirty
        start = _clock_ns()
        try:
            reply = cmd.handler(c, argv)
        except CommandError as err:
            reply = Error(str(err))
        elapsed = _clock_ns() - start
        cmd.usec += elapsed // 1000
        cmd.calls += 1
        c.last_cmd = cmd
        if reply.__class__ is Error:
            cmd.failed_calls += 1
            self.stats.count_error(reply)
        if ks.dirty != dirty:
            wp = self.write_path
            if wp.active or self.watched_keys or self.blocking.keys or \
                    wp.key_listeners:
                wp.command_done(c, cmd, argv)
        if self.monitor is not None:
            self.monitor(c, cmd, argv)
        # Latency histograms, slow log and latency monitor
        # (rcluster/latency.py), as Redis not for a command that blocked (it
        # is when served); a parked one (c.blocked a str: DEBUG SLEEP...) is
        # when it answers.
        if reply is not BLOCKED:
            if c.blocked.__class__ is not str:
                if self.latency_on:
                    counts = (cmd.histogram or
                              self.latency.histogram_for(cmd)).counts
                    # Histogram.record inlined (per command: the hot path).
                    if elapsed > 255:
                        # latency.counts_index: ((b + 1) << 7) + (ns >> b)
                        # - 128, ns at most 1 s
                        if elapsed < 1_000_000_000:
                            bucket = elapsed.bit_length() - 8
                            counts[(bucket << 7) + (elapsed >> bucket)] += 1
                        else:
                            counts[_ONE_SECOND] += 1
                    else:
                        counts[elapsed or 1] += 1
                if elapsed >= self.slow_ns:
                    self.latency.slow(c, cmd, argv, elapsed)
            if send:
                c.reply(reply)
        if c.tracking is not None:
            # Client-side caching: the keys it read, held invalidations.
            self.tracking.after_call(c, cmd, argv, send)
        return reply

    def _call_in_db(self, c, cmd, argv, send):
        """call() in the client's database, then back to the one in use."""
        previous = self.cur_db
        self.use_db(c.db)
        try:
            return self.call(c, cmd, argv, send)
        finally:
            self.use_db(previous)

    def use_db(self, index: int):
        """Make database ``index`` the keyspace in use.  The clock, the
        dirty counter (one for the server, as Redis's server.dirty) and
        the replica mode go with it."""
        old, new = self.keyspace, self.dbs[index]
        if new is not old:
            new.same_time(old)
            new.dirty = old.dirty
            new.replica_mode = old.replica_mode
            self.keyspace = new
        self.cur_db = index
        self.write_path.db = index

    def swap_dbs(self, a: int, b: int):
        """SWAPDB: the two keyspaces trade places."""
        dbs = self.dbs
        current = self.cur_db
        dbs.swap(a, b)
        if current in (a, b):
            self.keyspace = dbs[current]
            other = dbs[b if current == a else a]
            self.keyspace.same_time(other)
            self.keyspace.dirty = other.dirty
            self.keyspace.replica_mode = other.replica_mode

    def flush_all_dbs(self) -> int:
        """Empty every database (a full sync, DEBUG RELOAD, CLUSTER
        RESET...); the number of keys removed."""
        removed = 0
        for index, ks in self.dbs.items():
            dirty = ks.dirty
            gone = ks.flush()
            if ks is not self.keyspace:
                ks.dirty = dirty        # the counter is the one in use
                self.keyspace.dirty += gone
            removed += gone
        return removed

    def count_in_slot(self, slot: int) -> int:
        """Keys of a slot in every database (Valkey's COUNTKEYSINSLOT)."""
        return sum(ks.count_in_slot(slot) for ks in self.dbs)

    def watch_key(self, key: bytes):
        """The WATCH table's key for key in the database in use."""
        return key if not self.cur_db else (self.cur_db, key)

    # -- transactions and WATCH ------------------------------------------
    def discard_transaction(self, c: Client):
        c.multi = None
        c.multi_error = False
        c.dirty_cas = False
        self.unwatch_all(c)

    def watch(self, c: Client, key: bytes):
        expired = self.keyspace.is_expired(key)
        key = self.watch_key(key)
        if key in c.watched:
            return
        c.watched[key] = expired
        self.watched_keys.setdefault(key, set()).add(c)

    def unwatch_all(self, c: Client):
        for key in c.watched:
            watchers = self.watched_keys.get(key)
            if watchers is not None:
                watchers.discard(c)
                if not watchers:
                    del self.watched_keys[key]
        c.watched = {}

    def touch_watched(self, keys):
        watched = self.watched_keys
        db = self.cur_db
        for key in keys:
            if db:
                key = (db, key)
            watchers = watched.get(key)
            if watchers:
                for client in watchers:
                    client.dirty_cas = True

    def touch_all_watched(self, dbs=None):
        """FLUSHALL/FLUSHDB: every watched key that existed is touched
        (in the databases ``dbs``; default: the one in use)."""
        if dbs is None:
            dbs = (self.cur_db,)
        for key, watchers in self.watched_keys.items():
            db = 0
            if key.__class__ is tuple:
                db, key = key
            if db in dbs and self.dbs[db].lookup(key) is not None:
                for client in watchers:
                    client.dirty_cas = True

    def _key_expired(self, key: bytes):
        self.stats.expired_keys += 1
        watchers = self.watched_keys.get(self.watch_key(key))
        if watchers:
            wkey = self.watch_key(key)
            for client in watchers:
                if not client.watched.get(wkey):
                    client.dirty_cas = True
        self.write_path.deleted(key, self.settings.lazyfree_lazy_expire)
        if self.notify_flags:
            notify(self, EXPIRED, b"expired", key, self.cur_db)

    def _expire_other_dbs(self):
        """Active expiry in databases 1..n (db 0 is done by cron); each
        database's DELs are flushed while it is in use (SELECT)."""
        for index, ks in self.dbs.items():
            if index and ks.expires:
                self.write_path.flush(wrap=False)
                self.use_db(index)
                try:
                    self.keyspace.expire_cycle()
                    self.write_path.flush(wrap=False)
                finally:
                    self.use_db(0)

    # -- CLIENT PAUSE -----------------------------------------------------
    def _paused_for(self, cmd, c) -> bool:
        if self.clock.seconds() >= self.pause_until:
            self.unpause()
            return False
        if self.pause_type == "all":
            return True
        flags = cmd.flags
        if cmd.name == "exec" and c.multi:
            return any("write" in q.flags or "may_replicate" in q.flags
                       for q, _ in c.multi)
        return "write" in flags or "may_replicate" in flags

    def pause(self, kind: str, until: float):
        # A weaker pause never replaces a stronger one still running.
        if self.pause_type == "all" and kind == "write" and \
                self.pause_until > self.clock.seconds():
            self.pause_until = max(self.pause_until, until)
            return
        self.pause_type = kind
        self.pause_until = until
        self.refresh_gates()
        self.clock.callLater(max(until - self.clock.seconds(), 0),
                             self._pause_expired)

    def _pause_expired(self):
        if self.pause_type is not None and \
                self.clock.seconds() >= self.pause_until:
            self.unpause()

    def unpause(self):
        self.pause_type = None
        self.refresh_gates()
        waiting, self.paused = self.paused, []
        for client in waiting:
            if client.blocked == "pause":
                client.blocked = None
                client.resume()

    # -- periodic work ----------------------------------------------------
    def cron(self):
        """Called every 1/hz seconds: active expiry, idle clients, stats."""
        if self.cron_paused:
            return
        now = self.clock.seconds()
        self.keyspace.tick(int(now * 1000))
        if self.tracking is not None:
            self.tracking.cron()      # tracking-table-max-keys when idle
        if self.active_expire:
            started = _clock_ns()
            self.keyspace.expire_cycle()
            if len(self.dbs) > 1:
                self._expire_other_dbs()
            # LATENCY's "expire-cycle" event (latency-monitor-threshold).
            self.latency.add_sample_if_needed(
                "expire-cycle", (_clock_ns() - started) // 1_000_000)
            # Each expired key's DEL goes alone (no MULTI), as Redis does.
            self.write_path.flush(wrap=False)
            # Clients blocked on a key that expired (XREADGROUP) hear now.
            if self.blocking.ready:
                self.blocking.serve_ready()
        self.stats.sample(now, self.total_commands_processed)
        self.evictor.cron()
        timeout = self.settings.timeout
        if timeout:
            for client in list(self.clients.values()):
                if client.kind == "normal" and client.blocked is None and \
                        not (client.channels or client.patterns
                             or client.shard_channels) and \
                        now - client.last_interaction > timeout:
                    client.kill()
