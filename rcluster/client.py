"""A client connection's state, sans-IO.

The Twisted protocol hands bytes to ``Client.feed`` and gives the client
two callables: ``write(bytes)`` and ``close()``.  The client parses the
requests, runs them through the server one by one, and writes the batch of
replies with one ``write``.  A client that blocks (BLPOP, CLIENT PAUSE)
keeps its later requests queued until it is released, as Redis keeps them
in the query buffer.
"""
from __future__ import annotations

from collections import deque

from rcluster.resp.codec import (Error, ProtocolError, QueryBufferOverflow,
                                 Raw, RequestParser, encode)

# Client flags reported by CLIENT LIST (Redis's one-letter codes).
FLAG_LETTERS = (("replica", "S"), ("master", "M"), ("pubsub", "P"),
                ("multi", "x"), ("blocked", "b"), ("dirty_cas", "d"),
                ("close_after_reply", "c"), ("readonly", "r"),
                ("no_evict", "e"), ("no_touch", "T"))


class Client:
    __slots__ = (
        "server", "id", "addr", "laddr", "name", "lib_name", "lib_ver",
        "resp3", "authenticated", "user", "created", "last_interaction",
        "parser", "pending", "out", "write", "close", "in_batch", "closing",
        "closed", "blocked", "multi", "multi_error", "dirty_cas", "watched",
        "channels", "patterns", "shard_channels", "asking", "readonly",
        "last_cmd", "kind", "no_evict", "no_touch", "tls", "reply_mode",
        "flags_extra", "fd", "__weakref__",
    )

    def __init__(self, server, client_id, addr="", laddr="",
                 write=None, close=None):
        self.server = server
        self.id = client_id
        self.addr = addr
        self.laddr = laddr
        self.fd = -1
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.resp3 = False
        self.authenticated = not server.requires_auth
        self.user = "default"
        now = server.clock.seconds()
        self.created = now
        self.last_interaction = now
        settings = server.settings
        self.parser = RequestParser(settings.proto_max_bulk_len,
                                    settings.client_query_buffer_limit)
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
        self.reply_mode = "on"    # CLIENT REPLY on|off|skip
        self.flags_extra = set()

    # -- input ------------------------------------------------------------
    def feed(self, data: bytes):
        if self.parser is None:
            return  # a protocol error already ended this stream
        self.last_interaction = self.server.clock.seconds()
        try:
            requests = self.parser.feed(data)
            failure = None
        except ProtocolError as err:
            requests, failure = err.requests, err
        self.in_batch = True
        try:
            if self.pending or self.blocked is not None:
                self.pending.extend(requests)
            else:
                execute = self.server.execute
                for index, argv in enumerate(requests):
                    execute(self, argv)
                    if self.blocked is not None or self.closing:
                        self.pending.extend(requests[index + 1:])
                        break
            if failure is not None:
                self.pending.append(failure)
                self.parser = None
                self._drain()
        finally:
            self.in_batch = False
        self.flush()

    def resume(self):
        """Run queued requests after the client stops being blocked."""
        if self.blocked is None and self.pending and not self.closed:
            self.in_batch = True
            try:
                self._drain()
            finally:
                self.in_batch = False
        self.flush()

    def _drain(self):
        pending = self.pending
        execute = self.server.execute
        while pending and self.blocked is None and not self.closing:
            item = pending.popleft()
            if isinstance(item, ProtocolError):
                if not isinstance(item, QueryBufferOverflow):
                    self.reply(Error("ERR " + item.reply))
                self.server.log_protocol_error(self, item)
                self.closing = True
                pending.clear()
                return
            execute(self, item)

    # -- output -----------------------------------------------------------
    def reply(self, value):
        """Queue a reply to the running command (flushed with the batch)."""
        if self.reply_mode != "on":
            if self.reply_mode == "skip":
                self.reply_mode = "on"
            return
        cls = value.__class__
        if cls is Raw:
            self.out.append(value)
        elif cls is bytes:
            self.out.append(b"$%d\r\n%b\r\n" % (len(value), value))
        else:
            self.out.append(encode(value, self.resp3))

    def push(self, value):
        """Deliver an out-of-band reply (pub/sub message, unblocked pop)."""
        self.out.append(encode(value, self.resp3))
        if not self.in_batch:
            self.flush()

    def flush(self):
        if self.out and not self.closed:
            data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
            self.out.clear()
            self.server.stats.net_output_bytes += len(data)
            self.write(data)
        elif self.out:
            self.out.clear()
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

    @property
    def query_buffer(self) -> int:
        return self.parser.buffered if self.parser is not None else 0

    def flag_letters(self) -> str:
        letters = []
        if self.kind == "replica":
            letters.append("S")
        if self.kind == "master":
            letters.append("M")
        if self.channels or self.patterns or self.shard_channels:
            letters.append("P")
        if self.multi is not None:
            letters.append("x")
        if self.blocked is not None:
            letters.append("b")
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
