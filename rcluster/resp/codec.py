"""RESP2/RESP3 codec, sans-IO: request parsing and reply encoding.

Requests
--------
``RequestParser`` turns a client's byte stream into ``argv`` lists
(``list[bytes]``), under Redis's query buffer rules (processInlineBuffer /
processMultibulkBuffer in networking.c).  ``feed(data)`` takes a chunk and
returns the requests ready to run; ``take()`` returns more when the chunk
could not be parsed in one go.  A violation raises ``ProtocolError`` with
Redis's reply text - only once the requests before it have been taken, so
the client runs them first, as Redis does.

Two parsers, one behaviour.  ``hiredis.Reader`` (C) is the fast path: it
takes every chunk that starts on a request boundary, and its requests are
accepted as long as they are non-empty arrays of at most 128 bulk strings
(what client libraries send).  Where hiredis stops - a chunk ending
mid-request, an inline command, ``*0``, another type, a hiredis error - the
rest goes to ``_ExactParser``, which applies Redis's rules byte for byte:
lengths are checked when their header line arrives, before any payload is
buffered; lines end at the first CR (LF for inline commands) unless a NUL
comes first (Redis looks for them with strchr); the error texts are
Redis's.  It also takes everything from clients that must authenticate
and from blocked clients.  The exact parser hands out one request at a
time, so that a request changing how the next ones are parsed (AUTH,
RESET, CONFIG SET) takes effect in time, and gives the stream back to
hiredis once it stands on a request boundary again.  Where hiredis stopped
is known from its buffer length (it drops what it has read every 1 KiB):
the few requests since are re-read by the exact rules to find their end.

In a chunk hiredis parses completely, the fast path is more lenient than
Redis in two ways:

* an element sent as a simple string ``+x``, a big number ``(123`` or a
  verbatim string ``=5\r\ntxt:x`` is taken as the bulk ``x`` / ``123``
  (Redis answers ``-ERR Protocol error: expected '$', got '+'`` and
  closes the connection);
* a request after the first sent as a RESP3 set ``~N`` is taken as an
  array ``*N``, and a RESP3 attribute ``|N`` as an array of its 2N
  strings (Redis reads these lines as inline commands:
  ``-ERR unknown command '~1'`` ...).

Telling these apart would cost more than hiredis itself; no client sends
them.  In a chunk cut anywhere else, they get Redis's errors.

Replies
-------
Handlers return plain Python values; ``encode(reply, resp3)`` writes them:
``bytes`` -> bulk string, ``int`` (and ``bool``) -> integer, ``None`` ->
null, ``list``/``tuple`` -> array, ``dict`` -> map, ``set`` -> set,
``float`` -> double, and the wrapper classes below for the rest.
"""
from __future__ import annotations

import ctypes
import math
import re
from itertools import chain

import hiredis
from rcluster.logs import logger

log = logger()

# Redis's PROTO_INLINE_MAX_SIZE: the longest line (inline command or a
# length header) buffered while waiting for its end.
INLINE_MAX = 64 * 1024
# Redis's PROTO_MBULK_BIG_ARG: a bulk this big that is not complete yet is
# gathered chunk by chunk and joined once.
BIG_ARG = 32 * 1024
# hiredis drops the part of its buffer it has read once that reaches 1 KiB.
HIREDIS_TRIM = 1024
# The most hiredis parses in one go (not more than the smallest
# proto-max-bulk-len, so no bulk it accepts can be over the limit).
FAST_SLICE = 1024 * 1024
_PROBE = b":0\r\n"
# What _ExactParser._bulks_at_once gives hiredis at a time.
_AT_ONCE_FEED = 64 * 1024
# Limits for clients that still have to authenticate (authRequired()).
UNAUTH_MAX_ARGS = 10
UNAUTH_MAX_BULK = 16 * 1024
INT_MAX = 2**31 - 1
LLONG_MAX = 2**63 - 1
LLONG_MIN = -2**63


# hiredis allocates the list of an array as soon as it reads the header,
# at the announced size: "*2147483647\r\n" costs nothing until the reader
# is dropped half-way (a protocol error, a chunk ending mid-request), and
# then seconds of page faults - per request, up to 1024 nested levels
# deep.  hiredis can refuse big arrays (redisReader.maxelements) but
# hiredis-py does not expose the setting: it is written through ctypes,
# after the structure's layout has been checked on a test reader.  Bigger
# requests are parsed by the exact rules, as are nested arrays of any size
# (refused by Redis anyway).  With 128, the worst input costs about what
# plain requests of the same size do.
FAST_MAX_ELEMENTS = 128


class _RedisReaderHead(ctypes.Structure):
    """The first fields of hiredis's redisReader (read.h, hiredis >= 1.0)."""
    _fields_ = [("err", ctypes.c_int), ("errstr", ctypes.c_char * 128),
                ("buf", ctypes.c_void_p), ("pos", ctypes.c_size_t),
                ("len", ctypes.c_size_t), ("maxbuf", ctypes.c_size_t),
                ("maxelements", ctypes.c_longlong)]


def _reader_head(reader) -> _RedisReaderHead:
    # hiredis-py's Reader object: PyObject_HEAD, then redisReader *reader.
    address = ctypes.c_void_p.from_address(
        id(reader) + object.__basicsize__).value
    return _RedisReaderHead.from_address(address)


# hiredis-py releases whose Reader layout was checked (raw memory is read:
# an unknown release is not probed at all, it just runs unhardened).
_CHECKED_HIREDIS = ("2.", "3.")


def _can_limit_elements() -> bool:
    """Whether the layout is the expected one, checked on a test reader."""
    if not hiredis.__version__.startswith(_CHECKED_HIREDIS):
        return False
    try:
        reader = hiredis.Reader()
        if type(reader).__basicsize__ < object.__basicsize__ + 8:
            return False
        head = _reader_head(reader)
        reader.setmaxbuf(0x5EED)
        reader.feed(b"+OK\r\n+OK")
        reader.gets()
        if (head.err, head.maxbuf, head.pos, head.len, head.maxelements) != \
                (0, 0x5EED, 5, 8, 2**32 - 1):
            return False
        reader = hiredis.Reader()
        _reader_head(reader).maxelements = FAST_MAX_ELEMENTS
        reader.feed(b"*%d\r\n" % (FAST_MAX_ELEMENTS + 1))
        try:
            reader.gets()
        except hiredis.ProtocolError:
            return True
        return False
    except Exception:
        return False


HIREDIS_HARDENED = _can_limit_elements()
if not HIREDIS_HARDENED:
    log.warn("hiredis {version}: unknown Reader layout, big array headers "
             "can stall the node", version=hiredis.__version__)


def new_reader():
    """A hiredis Reader refusing arrays of more than FAST_MAX_ELEMENTS."""
    reader = hiredis.Reader()
    if HIREDIS_HARDENED:
        _reader_head(reader).maxelements = FAST_MAX_ELEMENTS
    return reader


_BULK = frozenset((bytes,))


def _taken(batch: list) -> int:
    """How many of hiredis's requests, from the first, the fast path
    takes: non-empty arrays of bulk strings only.  Checked per batch, in
    C, not per request (a bulk comes as bytes; every other type as
    something else)."""
    if all(batch) and _BULK.issuperset(map(type,
                                           chain.from_iterable(batch))):
        return len(batch)
    for index, argv in enumerate(batch):
        if not argv or not _BULK.issuperset(map(type, argv)):
            return index
    return len(batch)


def _on_boundary(reader) -> bool:
    """Whether a reader that has read every byte stands on a request
    boundary, not inside an array (after its header or an element): a
    probe comes back as a reply of its own only there."""
    if reader.has_data():
        return False
    reader.feed(_PROBE)
    try:
        return reader.gets().__class__ is int
    except hiredis.ProtocolError:
        return False


class ProtocolError(Exception):
    """A request the server refuses before closing the connection.

    ``reply`` is the error text to send after ``-ERR `` (None: close
    without a reply), ``reason`` the short form Redis logs."""

    def __init__(self, reply, reason=None):
        super().__init__(reply or reason)
        self.reply = reply
        self.reason = reason or reply


class QueryBufferOverflow(ProtocolError):
    """More than client-query-buffer-limit bytes are waiting to be run:
    Redis closes such a client at once, without a reply."""

    def __init__(self, buffered: int, head: bytes):
        super().__init__(None, "reached max query buffer length")
        self.buffered = buffered
        self.head = head     # the first bytes of the buffer, for the log


class Limits:
    """The settings the parser reads (the server passes its Settings,
    which has the same attributes, so that CONFIG SET applies at once)."""
    proto_max_bulk_len = 512 * 1024 * 1024
    client_query_buffer_limit = 1024 ** 3


class RequestParser:
    """Splits a client's byte stream into argv lists.

    ``limits``: proto-max-bulk-len and client-query-buffer-limit.
    ``strict_auth``: the client still has to authenticate (at most 10
    arguments of at most 16 KiB each).  ``master``: the stream comes from
    our master (no length limits, no inline commands).  ``more``: take()
    may have requests (or an error) to give.
    """

    __slots__ = ("_reader", "_exact", "_ready", "more", "limits",
                 "strict_auth", "master")

    def __init__(self, limits=None):
        self._reader = new_reader()
        self._exact: _ExactParser | None = None
        self._ready: list | None = None   # parsed ahead, not taken yet
        self.more = False
        self.limits = limits if limits is not None else Limits()
        self.strict_auth = False
        self.master = False

    @property
    def buffered(self) -> int:
        """Bytes received and not parsed yet (CLIENT LIST qbuf)."""
        return self._exact.pending if self._exact is not None else 0

    def feed(self, data: bytes, fast: bool = True):
        """Take a chunk; return the requests it completes (a list), or ()
        when they must be pulled with take().  ``fast=False`` only buffers
        (the client is blocked: Redis leaves such input unparsed)."""
        if fast and not self.more and data[:1] == b"*" \
                and not self.strict_auth:
            batch = self._fast(data)
            if batch is not None:
                return batch
        if not data:
            return ()
        if self._exact is None:
            self._exact = _ExactParser(self)
            self.more = True
        self._exact.feed(data)
        return ()

    def take(self):
        """The next requests ready to run: a list of argv lists (an empty
        argv stands for '*0' or an empty inline line), or () if none."""
        try:
            if self._ready is not None:
                return self._take_ready()
            exact = self._exact
            if exact is None:
                return ()
            argv = exact.next_request()
            if argv is None:
                return ()
            if exact.argv is None:       # on a request boundary
                buf, pos = exact.buf, exact.pos
                if pos == len(buf):
                    self._exact = None
                elif exact.fresh and buf[pos] == 42 and not self.strict_auth:
                    # hiredis takes over again (once per chunk received,
                    # or per slice of a backlog).
                    exact.fresh = False
                    batch = self._fast_from(buf, pos)
                    if batch is not None:
                        batch.insert(0, argv)
                        return batch
            return [argv]
        finally:
            self.more = self._exact is not None or self._ready is not None

    def _take_ready(self):
        ready = self._ready
        if not self.strict_auth:
            self._ready = None
            return ready
        # The client lost its authentication (RESET) after these were
        # parsed: check them one by one, as Redis would have.
        argv = ready.pop(0)
        if not ready:
            self._ready = None
        if len(argv) > UNAUTH_MAX_ARGS:
            raise ProtocolError(
                "Protocol error: unauthenticated multibulk length",
                "unauth mbulk count")
        for arg in argv:
            if len(arg) > UNAUTH_MAX_BULK:
                raise ProtocolError(
                    "Protocol error: unauthenticated bulk length",
                    "unauth bulk length")
        return [argv]

    def unread(self, requests):
        """Give back requests taken but not run (the client blocked)."""
        requests = list(requests)
        if self._ready is not None:
            requests += self._ready
        if requests:
            self._ready = requests
            self.more = True

    # -- the fast path: hiredis ------------------------------------------
    def _fast(self, buf):
        """Parse a new chunk with hiredis.

        Returns the complete requests and leaves whatever follows them to
        the exact parser; or None - nothing consumed - if hiredis and the
        exact rules disagree on them."""
        if len(buf) > HIREDIS_TRIM:
            return self._fast_from(buf, 0)
        # One small chunk: the common case, kept lean.
        reader = self._reader
        reader.feed(buf)
        batch = []
        argv = None
        try:
            while True:
                argv = reader.gets()
                if argv.__class__ is not list:
                    break
                batch.append(argv)
        except hiredis.ProtocolError:
            argv = None         # hiredis stopped before the end
        taken = _taken(batch)
        if taken < len(batch):
            del batch[taken:]
            argv = None
        elif argv is False and _on_boundary(reader):
            return batch
        self._reader = new_reader()
        return self._resume_exact(buf, 0, batch, 0, argv is not False)

    def _fast_from(self, buf, start: int):
        """_fast for buf[start:] - a big chunk, or the rest of the exact
        parser's buffer - at most FAST_SLICE bytes of it."""
        reader = self._reader
        end = min(len(buf), start + FAST_SLICE)
        reader.feed(buf, start, end - start)
        batch = []
        # hiredis drops the bytes it has read once they reach 1 KiB: its
        # length then tells where the last request ended.
        last = reader.len()
        known = 0    # batch[:known] ends `left` bytes before `end`
        argv = None
        try:
            while True:
                argv = reader.gets()
                if argv.__class__ is not list:
                    break
                batch.append(argv)
                now = reader.len()
                if now < last:
                    last = left = now
                    known = len(batch)
        except hiredis.ProtocolError:
            argv = None         # hiredis stopped before the end
        taken = _taken(batch)
        if taken < len(batch):
            del batch[taken:]
            argv = None
            if known > taken:
                # The end seen lies past the cut: re-read from the start
                # (None if that is more than the probe takes: the exact
                # parser then has it all).
                known = 0
        elif argv is False and end == len(buf) and _on_boundary(reader):
            self._exact = None
            return batch
        self._reader = new_reader()
        return self._resume_exact(buf, end - left if known else start,
                                  batch, known,
                                  argv is not False or end < len(buf))

    def _resume_exact(self, buf, boundary, batch, known, retry):
        """The exact parser continues after the last request hiredis
        parsed; ``boundary`` is where batch[known:] starts.  ``retry``:
        hiredis stopped before the end of the data (at a request it
        does not take, or at the end of a slice), so it gets another go
        past that point."""
        if len(batch) > known:
            # Re-read the few requests hiredis parsed after that point,
            # by the exact rules, to find where they end.
            probe = _ExactParser(self)
            probe.buf = bytearray(buf[boundary:boundary + HIREDIS_TRIM])
            try:
                for expected in batch[known:]:
                    if probe.next_request() != expected:
                        return None
            except ProtocolError:
                return None
            boundary += probe.pos
        exact = self._exact
        if exact is None or exact.buf is not buf:
            exact = self._exact = _ExactParser(self)
            exact.buf = bytearray(buf[boundary:])
            self.more = True
        else:
            exact.pos = boundary
        exact.fresh = retry
        return batch


class _ExactParser:
    """Redis's query buffer rules, byte for byte; one request per call."""

    __slots__ = ("owner", "buf", "pos", "argv", "mbulk", "bulk", "parts",
                 "parts_len", "fresh")

    def __init__(self, owner: RequestParser):
        self.owner = owner
        self.buf = bytearray()
        self.pos = 0
        self.argv: list | None = None   # the multibulk being read
        self.mbulk = 0      # its elements still to read
        self.bulk = -1      # length of the element being read (-1: header)
        self.parts: list | None = None  # chunks of a big element
        self.parts_len = 0
        self.fresh = False  # data came in since hiredis last tried

    @property
    def pending(self) -> int:
        return len(self.buf) - self.pos + self.parts_len

    def feed(self, data: bytes):
        if self.parts is not None:
            data = self._gather(data)
        if self.pos:
            del self.buf[:self.pos]    # cheap: bytearray drops its head
            self.pos = 0
        self.buf += data
        self.fresh = True
        owner = self.owner
        if not owner.master and \
                self.pending > owner.limits.client_query_buffer_limit:
            head = self.parts[0][:64] if self.parts else bytes(self.buf[:64])
            raise QueryBufferOverflow(self.pending, head)

    def next_request(self):
        """A complete argv (empty for '*0', '*-1' or an empty line), or
        None if the buffer ends before the request does."""
        if self.parts is not None:
            return None
        if self.argv is None:
            buf = self.buf
            if self.pos >= len(buf):
                return None
            if buf[self.pos] != 42:   # not '*': an inline command
                return self._inline()
            if not self._multibulk_header():
                return None
            if self.argv is None:
                return []
        if self.mbulk and not self._bulks():
            return None
        argv, self.argv = self.argv, None
        return argv

    def _line_end(self, char: bytes) -> int:
        """Where the line at pos ends (its first ``char``), or -1: also
        when a NUL comes first, since Redis looks for it with strchr."""
        buf = self.buf
        end = buf.find(char, self.pos)
        if buf.find(b"\0", self.pos, end if end >= 0 else len(buf)) >= 0:
            return -1
        return end

    def _too_big(self) -> bool:
        return len(self.buf) - self.pos > INLINE_MAX

    def _inline(self):
        buf = self.buf
        pos = self.pos
        newline = self._line_end(b"\n")
        if newline < 0:
            if self._too_big():
                raise ProtocolError("Protocol error: too big inline request",
                                    "too big inline request")
            return None
        end = newline - 1 if newline > pos and buf[newline - 1] == 13 \
            else newline
        argv = split_args(bytes(buf[pos:end]))
        if argv is None:
            raise ProtocolError("Protocol error: unbalanced quotes in request",
                                "unbalanced quotes in inline request")
        if self.owner.master and end > pos:
            raise ProtocolError(None, "Master using the inline protocol. "
                                      "Desync?")
        self.pos = newline + 1
        return argv

    def _multibulk_header(self) -> bool:
        buf = self.buf
        pos = self.pos
        cr = self._line_end(b"\r")
        if cr < 0:
            if self._too_big():
                raise ProtocolError(
                    "Protocol error: too big mbulk count string",
                    "too big mbulk count string")
            return False
        if cr >= len(buf) - 1:
            return False    # the LF is still to come
        count = _parse_ll(buf[pos + 1:cr])
        if count is None or count > INT_MAX:
            raise ProtocolError("Protocol error: invalid multibulk length",
                                "invalid mbulk count")
        if count > UNAUTH_MAX_ARGS and self.owner.strict_auth:
            raise ProtocolError(
                "Protocol error: unauthenticated multibulk length",
                "unauth mbulk count")
        self.pos = cr + 2
        if count > 0:
            self.argv = []
            self.mbulk = count
            self.bulk = -1
        return True

    def _bulks(self) -> bool:
        if self.mbulk > FAST_MAX_ELEMENTS and not self.argv and \
                self.bulk < 0 and self._bulks_at_once():
            return True
        buf = self.buf
        owner = self.owner
        argv = self.argv
        while self.mbulk:
            if self.bulk < 0:
                pos = self.pos
                cr = self._line_end(b"\r")
                if cr < 0:
                    if self._too_big():
                        raise ProtocolError(
                            "Protocol error: too big bulk count string",
                            "too big bulk count string")
                    return False
                if cr >= len(buf) - 1:
                    return False
                if buf[pos] != 36:   # '$'
                    got = bytes(buf[pos:pos + 1]).decode("utf-8",
                                                         "surrogateescape")
                    raise ProtocolError(
                        "Protocol error: expected '$', got '%s'" % got,
                        "expected $ but got something else")
                size = _parse_ll(buf[pos + 1:cr])
                if size is None or size < 0 or (
                        not owner.master
                        and size > owner.limits.proto_max_bulk_len):
                    raise ProtocolError("Protocol error: invalid bulk length",
                                        "invalid bulk length")
                if size > UNAUTH_MAX_BULK and owner.strict_auth:
                    raise ProtocolError(
                        "Protocol error: unauthenticated bulk length",
                        "unauth bulk length")
                self.pos = cr + 2
                self.bulk = size
                if size >= BIG_ARG and len(buf) - self.pos < size + 2:
                    # Gather it chunk by chunk: no quadratic regrowth.
                    self.parts_len = len(buf) - self.pos
                    self.parts = [bytes(buf[self.pos:])] if self.parts_len \
                        else []
                    del buf[:]
                    self.pos = 0
                    return False
            end = self.pos + self.bulk
            if len(buf) < end + 2:
                return False
            argv.append(bytes(buf[self.pos:end]))
            self.pos = end + 2       # the CR LF is skipped unchecked
            self.bulk = -1
            self.mbulk -= 1
        return True

    def _bulks_at_once(self) -> bool:
        """The elements of a request too big for hiredis as an array
        (MSET of 1000 keys...), read in C all the same: to hiredis each
        element is a reply of its own.  Kept only when all of them are
        here, within the limits, and written canonically ($<len> CR LF
        <data> CR LF), which Redis's rules accept just as they are; else
        the loop reads them by the rules (and gives the exact error): the
        bytes are compared with the canonical form, since hiredis also
        takes "$05", "+PING" and RESP3 types that Redis refuses.  Needs
        the hardened reader, which bounds nested arrays."""
        buf, pos, count = self.buf, self.pos, self.mbulk
        end = len(buf)
        if end - pos < 6 * count or not HIREDIS_HARDENED:
            return False                # "$0\r\n\r\n" at least, each
        reader = new_reader()           # nested arrays stay small
        gets = reader.gets
        argv = []
        append = argv.append
        fed = pos
        try:
            for _ in range(count):
                arg = gets()
                while arg is False:
                    if fed >= end:
                        return False    # not all here yet
                    size = min(end - fed, _AT_ONCE_FEED)
                    reader.feed(buf, fed, size)
                    fed += size
                    arg = gets()
                if arg.__class__ is not bytes:
                    return False
                append(arg)
        except hiredis.ProtocolError:
            return False
        owner = self.owner
        if not owner.master and \
                max(map(len, argv)) > owner.limits.proto_max_bulk_len:
            return False
        canonical = b"".join([b"$%d\r\n%b\r\n" % (len(arg), arg)
                              for arg in argv])
        if buf[pos:pos + len(canonical)] != canonical:
            return False
        self.argv = argv
        self.pos = pos + len(canonical)
        self.mbulk = 0
        return True

    def _gather(self, data: bytes) -> bytes:
        """Add data to the big element; return what follows it."""
        need = self.bulk + 2 - self.parts_len
        parts = self.parts
        if len(data) < need:
            parts.append(data)
            self.parts_len += len(data)
            return b""
        parts.append(data[:need])
        # Drop the trailing CR LF (it may straddle two parts), join once.
        drop = 2
        while drop:
            last = parts.pop()
            if len(last) > drop:
                parts.append(last[:-drop])
                break
            drop -= len(last)
        self.argv.append(b"".join(parts))
        self.parts = None
        self.parts_len = 0
        self.bulk = -1
        self.mbulk -= 1
        return data[need:]


def _parse_ll(text):
    """Redis's string2ll: an optional '-', digits without leading zeros
    (and no '-0'), within a signed 64-bit integer; else None."""
    if text.isdigit():
        if (text[0] == 48 and len(text) > 1) or len(text) > 19:
            return None
        value = int(text)
        return value if value <= LLONG_MAX else None
    if text[:1] == b"-" and text[1:].isdigit() and text[1] != 48 \
            and len(text) <= 20:
        value = int(text)
        return value if value >= LLONG_MIN else None
    return None


# isspace() in the C locale; an unquoted token ends at these, except that
# sdssplitargs lets \v and \f continue a token (they only lead as blanks).
_BLANKS = frozenset(b" \t\n\v\f\r")
_TOKEN_ENDS = frozenset(b" \t\n\r")
_PLAIN_TOKEN = re.compile(rb"[^ \t\n\v\f\r][^ \t\n\r]*")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8,
            ord("a"): 7}


def split_args(line: bytes):
    """Split a line like Redis's sdssplitargs (inline commands, config
    files): blanks separate arguments; double quotes take C escapes
    (\\n \\r \\t \\b \\a \\xHH, any other escaped character as is), single
    quotes only \\'; a closing quote must be followed by a blank or the
    end.  Returns the list of arguments, or None on unbalanced quotes."""
    if b"\0" in line:
        line = line[:line.index(b"\0")]   # a C string ends there
    if b'"' not in line and b"'" not in line:
        return _PLAIN_TOKEN.findall(line)
    args = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _BLANKS:
            i += 1
        if i >= n:
            return args
        token = bytearray()
        quote = 0
        while True:
            if quote == 34:          # inside "..."
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 3 < n and line[i + 1] == 120 and \
                        line[i + 2] in _HEX_DIGITS and line[i + 3] in _HEX_DIGITS:
                    token.append(int(line[i + 2:i + 4], 16))
                    i += 4
                elif c == 92 and i + 1 < n:
                    token.append(_ESCAPES.get(line[i + 1], line[i + 1]))
                    i += 2
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in _BLANKS:
                        return None
                    i += 1
                    break
                else:
                    token.append(c)
                    i += 1
            elif quote == 39:        # inside '...'
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    token.append(39)
                    i += 2
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _BLANKS:
                        return None
                    i += 1
                    break
                else:
                    token.append(c)
                    i += 1
            else:
                if i >= n or line[i] in _TOKEN_ENDS:
                    break
                c = line[i]
                if c == 34 or c == 39:
                    quote = c
                else:
                    token.append(c)
                i += 1
        args.append(bytes(token))


# --------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------

class Raw(bytes):
    """An already encoded reply, written as is (same in RESP2 and RESP3)."""
    __slots__ = ()


class Status(str):
    """A simple string reply: ``+OK``."""
    __slots__ = ()


class Error(str):
    """An error reply; the text starts with its code (``ERR ...``).
    Kept on one line: CR and LF become spaces, as Redis does."""
    __slots__ = ()


class Map(list):
    """A map reply (RESP3 ``%``, RESP2 flat array): a list of pairs."""
    __slots__ = ()


class SetReply(list):
    """A set reply (RESP3 ``~``, RESP2 array)."""
    __slots__ = ()


class Push(list):
    """An out-of-band push (RESP3 ``>``, RESP2 array) - pub/sub messages."""
    __slots__ = ()


class Attribute(list):
    """An attribute (RESP3 ``|``, pairs like Map) preceding a reply;
    RESP2 has none: nothing is written."""
    __slots__ = ()


class Double(float):
    """A double (RESP3 ``,``, RESP2 bulk string), as addReplyDouble
    writes it: %.17g, inf, -inf, nan."""
    __slots__ = ()


class BigNum(int):
    """A big number (RESP3 ``(``, RESP2 bulk string of its digits)."""
    __slots__ = ()


class Verbatim(bytes):
    """A verbatim text (RESP3 ``=``, ``txt:`` format; RESP2 bulk string)."""
    __slots__ = ()


class Bool(int):
    """A boolean (RESP3 ``#t``/``#f``, RESP2 integer 1/0)."""
    __slots__ = ()


class NullArray:
    """The null array (RESP2 ``*-1``, RESP3 ``_``), e.g. a failed EXEC."""
    __slots__ = ()


NULL_ARRAY = NullArray()
OK = Raw(b"+OK\r\n")
QUEUED = Raw(b"+QUEUED\r\n")
PONG = Raw(b"+PONG\r\n")
EMPTY_ARRAY = Raw(b"*0\r\n")
# For a handler whose command answers nothing (CLIENT REPLY OFF|SKIP).
NO_REPLY = Raw(b"")
_INTS = [Raw(b":%d\r\n" % i) for i in range(-1, 1025)]


def format_double(value: float) -> bytes:
    """The text of Redis 7.0's addReplyDouble: printf's %.17g (so 1.5,
    0.10000000000000001, 1e+17, -0), inf and -inf; NaN prints as glibc
    does, with its sign."""
    if value != value:
        return b"-nan" if math.copysign(1.0, value) < 0 else b"nan"
    if value == math.inf:
        return b"inf"
    if value == -math.inf:
        return b"-inf"
    return b"%.17g" % value


def encode(reply, resp3: bool = False) -> bytes:
    cls = reply.__class__
    if cls is bytes:
        return b"$%d\r\n%b\r\n" % (len(reply), reply)
    if cls is Raw:
        return reply
    if cls is int:
        if -1 <= reply <= 1024:
            return _INTS[reply + 1]
        return b":%d\r\n" % reply
    if reply is None:
        return b"_\r\n" if resp3 else b"$-1\r\n"
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        for base, fn in _ENCODERS.items():
            if isinstance(reply, base):
                encoder = fn
                break
        else:
            raise TypeError(f"cannot encode {cls.__name__} as a reply")
    return encoder(reply, resp3)


def _text(text: str) -> bytes:
    """A status or error line: trimmed of CR LF, no CR LF inside (raw
    bytes survive when the text was decoded with surrogateescape)."""
    return text.strip("\r\n").replace("\r", " ").replace("\n", " ").encode(
        "utf-8", "surrogateescape")


def _array(items, resp3, prefix=b"*"):
    parts = [b"%s%d\r\n" % (prefix, len(items))]
    for item in items:
        parts.append(encode(item, resp3))
    return b"".join(parts)


def _map(pairs, resp3, prefix=b"%"):
    if resp3:
        parts = [b"%s%d\r\n" % (prefix, len(pairs))]
    else:
        parts = [b"*%d\r\n" % (2 * len(pairs))]
    for key, value in pairs:
        parts.append(encode(key, resp3))
        parts.append(encode(value, resp3))
    return b"".join(parts)


def _attribute(pairs, resp3):
    return _map(pairs, resp3, b"|") if resp3 else b""


def _status(text, resp3):
    return b"+%s\r\n" % _text(text)


def _error(text, resp3):
    text = _text(text)
    return b"%s\r\n" % text if text[:1] == b"-" else b"-%s\r\n" % text


def _double(value, resp3):
    text = format_double(value)
    if resp3:
        return b",%s\r\n" % text
    return b"$%d\r\n%b\r\n" % (len(text), text)


def _bignum(value, resp3):
    digits = b"%d" % value
    if resp3:
        return b"(%s\r\n" % digits
    return b"$%d\r\n%b\r\n" % (len(digits), digits)


def _verbatim(text, resp3):
    if resp3:
        return b"=%d\r\ntxt:%b\r\n" % (len(text) + 4, text)
    return b"$%d\r\n%b\r\n" % (len(text), text)


def _bool(value, resp3):
    if resp3:
        return b"#t\r\n" if value else b"#f\r\n"
    return b":1\r\n" if value else b":0\r\n"


def _bulk(value, resp3):
    return b"$%d\r\n%b\r\n" % (len(value), value)


_ENCODERS = {
    list: _array,
    tuple: _array,
    Status: _status,
    Error: _error,
    Map: _map,
    SetReply: lambda items, resp3: _array(items, resp3, b"~" if resp3 else b"*"),
    Push: lambda items, resp3: _array(items, resp3, b">" if resp3 else b"*"),
    Attribute: _attribute,
    Double: _double,
    BigNum: _bignum,
    Verbatim: _verbatim,
    Bool: _bool,
    NullArray: lambda value, resp3: b"_\r\n" if resp3 else b"*-1\r\n",
    bytearray: _bulk,
    memoryview: lambda value, resp3: _bulk(value.tobytes(), resp3),
    str: lambda value, resp3: _bulk(value.encode("utf-8", "surrogateescape"),
                                    resp3),
    float: _double,
    bool: lambda value, resp3: b":1\r\n" if value else b":0\r\n",
    dict: lambda value, resp3: _map(list(value.items()), resp3),
    set: lambda items, resp3: _array(list(items), resp3,
                                     b"~" if resp3 else b"*"),
    frozenset: lambda items, resp3: _array(list(items), resp3,
                                           b"~" if resp3 else b"*"),
}
