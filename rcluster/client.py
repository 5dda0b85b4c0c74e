"""A client connection's state, sans-IO.

The Twisted protocol hands bytes to ``Client.feed`` and gives the client
two callables: ``write(bytes)`` and ``close()``.  The client parses the
requests, runs them through the server one by one, and writes the batch of
replies with one ``write``.

A client that blocks (BLPOP, CLIENT PAUSE) runs nothing more until it is
released: the requests already parsed wait in the parser, the bytes that
keep coming are only buffered (Redis leaves them in the query buffer, and
so do we: they count against client-query-buffer-limit, and a protocol
error in them shows when the client gets to them).  ``pending`` holds the
requests the server handed back (a command postponed by CLIENT PAUSE);
they run first.

A protocol error is answered after the requests that preceded it, then the
connection closes; so does QUIT, after its +OK.  Past
client-query-buffer-limit the connection closes without a reply.
"""
from __future__ import annotations

from collections import deque


from rcluster.resp.codec import (Error, ProtocolError, QueryBufferOverflow,
                                 Raw, RequestParser, encode)
from rcluster.logs import logger

log = logger()

# CLIENT REPLY modes.  SKIP is armed by CLIENT REPLY SKIP; the command
# after it runs in SKIPPING, silenced, then the mode is back ON.
ON, OFF, SKIP, SKIPPING = "on", "off", "skip", "skipping"
_BULK_HEADERS = [b"$%d\r\n" % size for size in range(1024)]


class Client:
    __slots__ = (
        "server", "id", "addr", "laddr", "name",
        "resp3", "authenticated", "user", "created", "last_interaction",
        "parser", "pending", "out", "write", "close", "in_batch", "closing",
        "closed", "blocked", "multi", "multi_error", "dirty_cas", "watched",
        "channels", "patterns", "shard_channels", "asking", "readonly",
        "last_cmd", "kind", "no_evict", "no_touch", "tls", "reply_mode",
        "fd", "plain", "propagation", "tracking", "__weakref__",
        "output_pending", "obuf_soft_since", "db",
    )

    def __init__(self, server, client_id, addr="", laddr="",
                 write=None, close=None):
        self.server = server
        self.id = client_id
        self.db = 0               # the selected database (SELECT)
        self.addr = addr
        self.laddr = laddr
        self.fd = -1
        self.name = b""
        self.resp3 = False
        self.authenticated = not server.requires_auth
        self.user = "default"
        now = server.clock.seconds()
        self.created = now
        self.last_interaction = now
        # The parser reads its limits from the settings: CONFIG SET of
        # proto-max-bulk-len or client-query-buffer-limit applies at once.
        self.parser = RequestParser(server.settings)
        self.parser.strict_auth = not self.authenticated
        self.pending: deque = deque()
        self.out: list = []
        self.write = write or (lambda data: None)
        self.close = close or (lambda: None)
        self.in_batch = False
        self.closing = False      # close once the pending replies are out
        self.closed = False
        self.blocked = None       # what the client waits for, or None
        self.multi = None         # queued (command, argv) inside MULTI
        self.multi_error = False  # a queued command was rejected
        self.dirty_cas = False    # a WATCHed key was touched
        self.watched: dict = {}   # key -> was it expired at WATCH time
        self.channels: set = set()
        self.patterns: set = set()
        self.shard_channels: set = set()
        self.asking = False
        self.readonly = False
        self.last_cmd = None       # the last command row run
        self.kind = "normal"      # normal | replica | master | pubsub
        self.no_evict = False
        self.no_touch = False
        self.tls = False
        self.reply_mode = ON      # CLIENT REPLY: on | off | skip | skipping
        # How the running command propagates, when not as called (see
        # propagation.py): a rewritten argv, or PREVENT.
        self.propagation = None
        # CLIENT TRACKING settings (tracking.ClientTracking), None when off.
        self.tracking = None
        # Output buffer limits (rcluster/memory.py): a callable giving the
        # bytes the transport still holds for this client (None: not
        # measurable), and when the soft limit was first exceeded.
        self.output_pending = None
        self.obuf_soft_since = 0
        self.refresh()

    # -- input ------------------------------------------------------------
    def feed(self, data: bytes):
        """Bytes from the connection: run what they complete, reply once."""
        parser = self.parser
        if parser is None or self.closing:
            return    # Redis reads nothing more from a closing client
        server = self.server
        now = server.clock.seconds()
        self.last_interaction = now
        # Redis caches the time per command; per batch is as good (a batch
        # runs in microseconds) and spares a clock read per request.
        ms = int(now * 1000)
        ks = server.keyspace
        if ks.now != ms:
            # A new clock only when the ms changes: the keys written in the
            # same ms then share one access-time object (eviction.py reads
            # thousands of them at a time; fewer objects, fewer misses).
            ks.tick(ms)
        try:
            batch = parser.feed(data, self.blocked is None and not self.pending)
        except QueryBufferOverflow as err:
            self._overflow(err)
            return
        self.in_batch = True
        try:
            self._run(batch)
        finally:
            self.in_batch = False
        self.flush()

    def resume(self):
        """Run what waited while the client was blocked or paused."""
        if self.in_batch or self.closed:
            return    # the batch running now carries on by itself
        if self.blocked is None:
            self.in_batch = True
            self.server.keyspace.tick(self.server.now_ms())
            try:
                self._run()
            finally:
                self.in_batch = False
        self.flush()

    def complete(self, value):
        """Answer the command the client was blocked on (``blocked`` is
        already cleared), then run what it queued meanwhile: one write."""
        self.reply(value)
        if self.reply_mode != ON:
            self._command_done()
        self.resume()

    def _run(self, batch=()):
        """Run ``batch``, then what waits (the requests the server handed
        back, then the parser's), until nothing is left or the client
        stops: blocked, closing, or unauthenticated again (the requests
        already parsed must pass the stricter limits)."""
        execute = self.server.execute
        pending = self.pending
        parser = self.parser
        while True:
            for index, argv in enumerate(batch):
                if argv:
                    execute(self, argv)
                if self.blocked is None:
                    if self.reply_mode != ON:
                        self._command_done()
                    if not (self.closing or parser.strict_auth):
                        continue
                if index + 1 < len(batch):
                    parser.unread(batch[index + 1:])
                break
            if self.blocked is not None or self.closing:
                return
            if pending:
                batch = (pending.popleft(),)
            elif parser.more:
                try:
                    batch = parser.take()
                except ProtocolError as err:
                    self._protocol_error(err)
                    return
                if not batch:
                    return
            else:
                return

    def _command_done(self):
        """After each command (Redis's resetClient): CLIENT REPLY SKIP
        silences exactly the next one."""
        if self.reply_mode == SKIP:
            self.reply_mode = SKIPPING
        elif self.reply_mode == SKIPPING:
            self.reply_mode = ON

    def _protocol_error(self, err: ProtocolError):
        if err.reply is not None:
            self.server.stats.total_error_replies += 1
            self.reply(Error("ERR " + err.reply))
        self.server.log_protocol_error(self, err)
        self._stop_reading()

    def _overflow(self, err: QueryBufferOverflow):
        log.warn("Closing client that reached max query buffer length: "
                 "id={id} addr={addr} qbuf={qbuf} (qbuf initial bytes: "
                 "{head!r})", id=self.id, addr=self.addr, qbuf=err.buffered,
                 head=err.head)
        self._stop_reading()
        self.flush()

    def _stop_reading(self):
        self.closing = True
        self.parser = None
        self.pending.clear()

    # -- output -----------------------------------------------------------
    def reply(self, value):
        """Queue a reply to the running command (flushed with the batch)."""
        mode = self.reply_mode
        if mode != ON and mode != SKIP:
            return    # CLIENT REPLY OFF, or the command after SKIP
        cls = value.__class__
        if cls is Raw:
            self.out.append(value)
        elif cls is bytes:
            size = len(value)
            if size < 1024:
                # Pieces joined at flush: cheaper than formatting a copy.
                self.out.extend((_BULK_HEADERS[size], value, b"\r\n"))
            else:
                self.out.append(b"$%d\r\n%b\r\n" % (size, value))
        else:
            self.out.append(encode(value, self.resp3))

    def push(self, value):
        """Deliver an out-of-band reply (pub/sub message); CLIENT REPLY
        does not silence these, as in Redis."""
        self.out.append(encode(value, self.resp3))
        if not self.in_batch:
            self.flush()

    def flush(self):
        out = self.out
        if out:
            barrier = self.server.reply_barrier
            if barrier is not None and not self.closed:
                # appendfsync always: replies wait for this reactor turn's
                # AOF fsync, which flushes the client again (group commit,
                # see persistence/aof.py).
                barrier.add(self)
                return
            if not self.closed:
                data = b"".join(out) if len(out) > 1 else out[0]
                if data:
                    stats = self.server.stats
                    stats.net_output_bytes += len(data)
                    stats.total_writes_processed += 1
                    self.write(data)
            out.clear()
        if self.closing and not self.closed:
            self.closed = True
            self.close()

    def kill(self):
        """Close the connection now (CLIENT KILL, timeouts)."""
        self.closing = True
        self.pending.clear()
        if not self.in_batch:
            self.flush()

    # -- state ------------------------------------------------------------
    def set_authenticated(self, value: bool):
        self.authenticated = value
        if self.parser is not None:
            self.parser.strict_auth = not value
        self.refresh()

    def refresh(self):
        """Recompute ``plain``: a client whose requests need none of the
        per-connection checks (authenticated, outside MULTI, a normal
        connection, not in RESP2 pub/sub mode, not NO-TOUCH).  Called after anything
        that may change those: the server does after every command that
        is not plain itself, pub/sub after a subscription change."""
        self.plain = (self.authenticated and self.multi is None
                      and self.kind == "normal" and not self.no_touch
                      and (self.resp3 or not (self.channels or self.patterns
                                              or self.shard_channels)))

    def set_reply_mode(self, mode: str):
        """CLIENT REPLY ON|OFF|SKIP (lower case).  The command answers OK
        to ON and nothing (codec.NO_REPLY) to OFF and SKIP; SKIP does
        nothing while replies are OFF."""
        if mode == SKIP and self.reply_mode == OFF:
            return
        self.reply_mode = mode

    @property
    def query_buffer(self) -> int:
        return self.parser.buffered if self.parser is not None else 0

    def flag_letters(self) -> str:
        letters = []
        if self.kind == "replica":
            letters.append("S")
        if self.kind == "monitor":
            letters.append("O")
        if self.kind == "master":
            letters.append("M")
        if self.channels or self.patterns or self.shard_channels:
            letters.append("P")
        if self.multi is not None:
            letters.append("x")
        if self.blocked is not None:
            letters.append("b")
        tracking = self.tracking
        if tracking is not None:
            letters.append("t")
            if tracking.broken:
                letters.append("R")
            if tracking.bcast:
                letters.append("B")
        if self.dirty_cas:
            letters.append("d")
        if self.closing:
            letters.append("c")
        if self.readonly:
            letters.append("r")
        if self.no_evict:
            letters.append("e")
        if self.no_touch:
            letters.append("T")
        return "".join(letters) or "N"

    @property
    def subscriptions(self) -> int:
        return len(self.channels) + len(self.patterns)
