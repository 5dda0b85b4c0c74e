"""The write path: every change reaches replicas, the AOF, WATCH, blocked
clients and tracking from here, once (Redis's call() / alsoPropagate() /
propagatePendingCommands(), sans-IO).

What a command changed is recorded as *ops* (argv lists):

- ``Server.call`` records the command itself when it changed the dataset
  (``keyspace.dirty`` moved), as called or as the handler rewrote it with
  ``propagate_as`` - the deterministic form (EX -> PXAT, SPOP -> SREM,
  BLPOP -> LPOP, ...), unless the handler said ``no_propagation`` because
  it recorded its effects itself with ``also_propagate``;
- the server records deletions it makes on its own (lazy and active
  expiry, slot deletion, eviction) with ``deleted``.

Ops accumulate while a top-level execution unit runs (a command, with the
commands an EXEC or a script runs inside it) and are handed to the sinks
when it ends (``flush``): several ops are wrapped in MULTI ... EXEC once,
one op goes alone, as Redis 7.0 does.  Server-made deletions outside a
command (active expiry, slot deletion) are flushed unwrapped.

A rewrite is kept on the client that runs the command, not on a stack: a
nested call on the same client (a command inside EXEC) consumes its own
rewrite when it returns, so a command that runs others on its own client
calls ``no_propagation`` after them.  A script's commands run on the
script's client, so its caller may say so first.

The same place tells WATCH, blocked clients and the key listeners
(tracking) which keys changed: ``touched(keys, client)``, ``None`` keys
for "everything was flushed".
"""
from __future__ import annotations

MULTI = [b"MULTI"]
EXEC = [b"EXEC"]
# The marker a handler leaves on its client to stop its own argv.
PREVENT = object()


class WritePath:
    __slots__ = ("server", "sinks", "key_listeners", "pending", "marked",
                 "active", "db", "pending_db", "runs")

    def __init__(self, server):
        self.server = server
        self.sinks: list = []            # fn(db, ops)
        self.key_listeners: list = []    # fn(keys or None, client or None)
        self.pending: list = []          # ops of the running unit
        self.marked: list = []           # clients holding a rewrite
        # Anyone to feed ops to?  (Without sinks nothing is recorded.)
        self.active = False
        # The database in use (Server.use_db), the one of the last pending
        # op, and where the pending ops change database: [(index, db)].
        self.db = 0
        self.pending_db = None
        self.runs: list = []

    # -- registration -----------------------------------------------------
    def add_sink(self, sink):
        """sink(db, ops): the ops of one execution unit, in order."""
        self.sinks.append(sink)
        self.active = True

    def remove_sink(self, sink):
        if sink in self.sinks:
            self.sinks.remove(sink)
        self.active = bool(self.sinks)

    def add_key_listener(self, listener):
        """listener(keys, client): keys a command, an expiry or the server
        changed (None: the whole keyspace was flushed); client is the
        writer, None for the server's own deletions.  (The list is
        replaced, never changed in place: a listener may add or remove
        one while the listeners are being called.)"""
        self.key_listeners = [*self.key_listeners, listener]

    def remove_key_listener(self, listener):
        self.key_listeners = [f for f in self.key_listeners
                              if f != listener]

    # -- what handlers say (through commands/common.py) -------------------
    def propagate_as(self, c, argv):
        if self.active:
            c.propagation = argv
            self.marked.append(c)

    def no_propagation(self, c):
        if self.active:
            c.propagation = PREVENT
            self.marked.append(c)

    def also_propagate(self, argv):
        if self.active:
            self._record(argv)

    def _record(self, argv):
        if self.db != self.pending_db:
            self.runs.append((len(self.pending), self.db))
            self.pending_db = self.db
        self.pending.append(argv)

    # -- what the server records -----------------------------------------
    def command_done(self, c, cmd, argv):
        """After a call that changed the dataset: record its op, touch its
        keys (Server.call calls this only when something listens)."""
        if self.active:
            rewrite = c.propagation
            if rewrite is None:
                self._record(argv)
            else:
                c.propagation = None
                if rewrite is not PREVENT:
                    self._record(rewrite)
        server = self.server
        if server.watched_keys or server.blocking.keys or self.key_listeners:
            keys = cmd.write_keys(argv)
            if keys:
                self.touched(keys, c)

    def deleted(self, key: bytes, lazy: bool = False):
        """The server removed a key on its own (expiry, eviction, a slot
        leaving): DEL (UNLINK when lazily freed) and the key listeners.
        WATCH bookkeeping of expiry is the server's (it differs)."""
        if self.active:
            self._record([b"UNLINK" if lazy else b"DEL", key])
        if self.server.blocking.keys:
            # A blocked XREADGROUP fails when its stream goes (Redis's
            # dbGenericDelete signals the key).
            self.server.blocking.signal([key])
        for listener in self.key_listeners:
            listener([key], None)

    def touched(self, keys, client):
        """Keys a write changed: WATCH, blocked clients, key listeners."""
        server = self.server
        if server.watched_keys:
            server.touch_watched(keys)
        if server.blocking.keys:
            server.blocking.signal(keys)
        for listener in self.key_listeners:
            listener(keys, client)

    def flushed(self, client):
        """FLUSHALL / FLUSHDB emptied the keyspace."""
        self.server.touch_all_watched()
        blocking = self.server.blocking
        if blocking.keys:
            # scanDatabaseForDeletedStreams: blocked XREADGROUPs fail.
            blocking.signal(list(blocking.keys))
        for listener in self.key_listeners:
            listener(None, client)

    # -- the end of an execution unit --------------------------------------
    def discard(self):
        """Forget what the running unit recorded (commands replayed from
        the AOF are not propagated: Redis runs them outside call())."""
        self._take()

    def _take(self):
        """The running unit's (ops, runs), and a fresh start for the next:
        rewrites left unused (a handler that rewrote, then failed) are
        forgotten too."""
        if self.marked:
            for c in self.marked:
                c.propagation = None
            self.marked = []
        taken = self.pending, self.runs
        self.pending = []
        self.runs = []
        self.pending_db = None
        return taken

    def flush(self, wrap: bool = True):
        """Hand the pending ops to the sinks (MULTI ... EXEC around several
        when ``wrap``).  Every op went through _record, so ``runs`` starts
        at op 0 whenever there are ops."""
        ops, runs = self._take()
        if not ops:
            return
        if len(runs) == 1:
            if wrap and len(ops) > 1:
                ops = [MULTI, *ops, EXEC]
            db = runs[0][1]
            for sink in self.sinks:
                sink(db, ops)
            return
        # Ops in several databases (MOVE, SWAPDB, SELECT in a transaction,
        # expiry in several dbs): each run goes to the sinks with its db
        # (they write SELECT when it changes), MULTI in the first and EXEC
        # in the last.
        ends = [start for start, _ in runs[1:]] + [len(ops)]
        parts = [(db, ops[start:end])
                 for (start, db), end in zip(runs, ends)]
        if wrap:
            parts[0] = (parts[0][0], [MULTI, *parts[0][1]])
            parts[-1] = (parts[-1][0], [*parts[-1][1], EXEC])
        for sink in self.sinks:
            for db, part in parts:
                sink(db, part)
