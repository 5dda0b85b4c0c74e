"""RESP2/RESP3 codec, sans-IO: request parsing and reply encoding.

Requests
--------
``RequestParser.feed(data)`` returns the complete requests in ``data`` as a
list of ``argv`` lists (``list[bytes]``); a protocol violation raises
``ProtocolError`` carrying the exact Redis reply text, after the requests
that preceded it have been returned through ``ProtocolError.requests``.

Two parsers, one behaviour.  ``hiredis.Reader`` (C) is the fast path: a
chunk that starts at a request boundary and that hiredis parses completely
into lists of bytes is accepted as is - that is what every client library
sends.  Anything else (a chunk ending mid-request, inline commands, a
non-bulk element, a hiredis error, an unauthenticated client) is handed to
``_ExactParser``, a transcription of Redis's own query-buffer rules
(processInlineBuffer / processMultibulkBuffer in networking.c): lengths are
checked when their header line arrives, before any payload is buffered, and
the error texts are Redis's.  The exact parser keeps the stream until it
ends on a request boundary, then hiredis takes over again.

Replies
-------
Handlers return plain Python values; ``encode(reply, resp3)`` writes them:
``bytes`` -> bulk string, ``int`` -> integer, ``None`` -> null,
``list``/``tuple`` -> array, and the wrapper classes below for the rest.
"""
from __future__ import annotations

import hiredis

# Redis's PROTO_INLINE_MAX_SIZE: the longest line (inline command or a
# length header) buffered while waiting for its newline.
INLINE_MAX = 64 * 1024
# Redis's PROTO_MBULK_BIG_ARG: from this size on a bulk is gathered in
# chunks and joined once, instead of growing one buffer.
BIG_ARG = 32 * 1024
INT_MAX = 2**31 - 1


class ProtocolError(Exception):
    """A request the server must refuse and then close the connection.

    ``reply`` is the error line to send (without the leading ``-``),
    ``requests`` the complete requests parsed before the violation."""

    def __init__(self, reply: str, requests=()):
        super().__init__(reply)
        self.reply = reply
        self.requests = list(requests)


class QueryBufferOverflow(ProtocolError):
    """The client sent more than client-query-buffer-limit bytes of one
    request: Redis closes such a client without a reply."""


class RequestParser:
    """Splits a client's byte stream into argv lists.

    ``max_bulk`` is proto-max-bulk-len, ``max_query`` client-query-buffer-
    limit; ``strict_auth`` applies Redis's tighter limits for clients that
    still have to authenticate (10 arguments, 16 KiB per argument).
    """

    __slots__ = ("_reader", "_exact", "max_bulk", "max_query", "strict_auth")

    def __init__(self, max_bulk=512 * 1024 * 1024, max_query=1024**3):
        self._reader = hiredis.Reader()
        self._exact: _ExactParser | None = None
        self.max_bulk = max_bulk
        self.max_query = max_query
        self.strict_auth = False

    @property
    def buffered(self) -> int:
        """Bytes of a partial request held back (for CLIENT LIST qbuf)."""
        return self._exact.pending if self._exact is not None else 0

    def feed(self, data: bytes) -> list:
        if self._exact is None and data[:1] == b"*" and not self.strict_auth:
            requests = self._fast(data)
            if requests is not None:
                return requests
        if self._exact is None:
            self._exact = _ExactParser(self)
        exact = self._exact
        requests = exact.feed(data)
        if exact.pending == 0:
            # Back on a request boundary: hiredis takes the next chunk.
            self._exact = None
        return requests

    def _fast(self, data):
        reader = self._reader
        reader.feed(data)
        requests = []
        try:
            while True:
                argv = reader.gets()
                if argv is False:
                    break
                if argv.__class__ is not list:
                    return self._give_up()
                for arg in argv:
                    if arg.__class__ is not bytes:
                        return self._give_up()
                if argv:
                    requests.append(argv)
        except hiredis.ProtocolError:
            return self._give_up()
        if reader.has_data():
            # The chunk ends inside a request: its lengths must be checked
            # now, not when it completes - the exact parser redoes the chunk.
            return self._give_up()
        return requests

    def _give_up(self):
        self._reader = hiredis.Reader()
        return None


class _ExactParser:
    """Redis's query buffer rules, byte for byte (the slow, exact path)."""

    __slots__ = ("owner", "buf", "pos", "argv", "mbulk", "bulk", "parts",
                 "parts_len")

    def __init__(self, owner: RequestParser):
        self.owner = owner
        self.buf = bytearray()
        self.pos = 0
        self.argv: list = []
        self.mbulk = 0      # arguments still expected (0: between requests)
        self.bulk = -1      # length of the bulk being read (-1: header next)
        self.parts: list = []   # chunks of a big bulk being gathered
        self.parts_len = 0

    @property
    def pending(self) -> int:
        return len(self.buf) - self.pos + self.parts_len + (
            1 if self.mbulk or self.argv else 0)

    def feed(self, data: bytes) -> list:
        requests: list = []
        try:
            if self.parts:
                data = self._gather(data, requests)
                if data is None:
                    return requests
            self.buf += data
            self._parse(requests)
        except ProtocolError as err:
            err.requests[:0] = requests
            raise
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        if len(self.buf) + self.parts_len > self.owner.max_query:
            raise QueryBufferOverflow("query buffer limit", requests)
        return requests

    def _parse(self, requests):
        buf = self.buf
        while self.pos < len(buf):
            if self.mbulk == 0:
                if buf[self.pos] == 42:  # '*'
                    if not self._multibulk_header():
                        return
                    if self.mbulk == 0:
                        continue  # '*0' / '*-1': nothing to run
                else:
                    argv = self._inline()
                    if argv is None:
                        return
                    if argv:
                        requests.append(argv)
                    continue
            if not self._bulks():
                return
            requests.append(self.argv)
            self.argv = []

    def _line(self, what):
        """Return the line at pos (without CR LF) or None if incomplete."""
        buf = self.buf
        cr = buf.find(b"\r", self.pos)
        if cr == -1:
            if len(buf) - self.pos > INLINE_MAX:
                raise ProtocolError(f"Protocol error: too big {what}")
            return None
        if cr + 1 >= len(buf):
            return None   # the LF is still to come
        return cr

    def _multibulk_header(self) -> bool:
        cr = self._line("mbulk count string")
        if cr is None:
            return False
        count = _parse_ll(self.buf[self.pos + 1:cr])
        if count is None or count > INT_MAX:
            raise ProtocolError("Protocol error: invalid multibulk length")
        if count > 10 and self.owner.strict_auth:
            raise ProtocolError(
                "Protocol error: unauthenticated multibulk length")
        self.pos = cr + 2
        self.mbulk = max(count, 0)
        self.bulk = -1
        return True

    def _bulks(self) -> bool:
        buf = self.buf
        owner = self.owner
        while self.mbulk:
            if self.bulk == -1:
                cr = self._line("bulk count string")
                if cr is None:
                    return False
                if buf[self.pos] != 36:  # '$'
                    raise ProtocolError(
                        "Protocol error: expected '$', got '%s'"
                        % chr(buf[self.pos]))
                size = _parse_ll(buf[self.pos + 1:cr])
                if size is None or size < 0 or size > owner.max_bulk:
                    raise ProtocolError("Protocol error: invalid bulk length")
                if size > 16384 and owner.strict_auth:
                    raise ProtocolError(
                        "Protocol error: unauthenticated bulk length")
                self.pos = cr + 2
                self.bulk = size
                if size >= BIG_ARG and len(buf) - self.pos < size + 2:
                    # Gather a big argument chunk by chunk, join once.
                    self.parts = [bytes(buf[self.pos:])]
                    self.parts_len = len(buf) - self.pos
                    del buf[:]
                    self.pos = 0
                    return False
            end = self.pos + self.bulk
            if len(buf) < end + 2:
                return False
            self.argv.append(bytes(buf[self.pos:end]))
            self.pos = end + 2
            self.bulk = -1
            self.mbulk -= 1
        return True

    def _gather(self, data, requests):
        """Collect a big bulk; return the bytes after it, or None."""
        need = self.bulk + 2 - self.parts_len
        if len(data) < need:
            self.parts.append(data)
            self.parts_len += len(data)
            if self.parts_len > self.owner.max_query:
                raise QueryBufferOverflow("query buffer limit")
            return None
        self.parts.append(data[:need])
        value = b"".join(self.parts)
        self.parts = []
        self.parts_len = 0
        self.argv.append(value[:self.bulk])
        self.bulk = -1
        self.mbulk -= 1
        rest = data[need:]
        if self.mbulk == 0:
            requests.append(self.argv)
            self.argv = []
        return rest

    def _inline(self):
        buf = self.buf
        nl = buf.find(b"\n", self.pos)
        if nl == -1:
            if len(buf) - self.pos > INLINE_MAX:
                raise ProtocolError("Protocol error: too big inline request")
            return None
        end = nl - 1 if nl > self.pos and buf[nl - 1] == 13 else nl
        line = bytes(buf[self.pos:end])
        self.pos = nl + 1
        argv = split_args(line)
        if argv is None:
            raise ProtocolError("Protocol error: unbalanced quotes in request")
        return argv


def _parse_ll(digits):
    """Redis's string2ll: optional '-', no leading zeros, no '+' or spaces."""
    if not digits or len(digits) > 20:
        return None
    body = digits[1:] if digits[0] == 45 else digits
    if not body or not body.isdigit() or (body[0] == 48 and len(body) > 1):
        return None
    if digits[0] == 45 and body == b"0":
        return None
    value = int(digits)
    if not -2**63 <= value < 2**63:
        return None
    return value


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes):
    """Split an inline command like Redis's sdssplitargs.

    Double quotes take C escapes (\\n, \\xHH, ...), single quotes only \\';
    a closing quote must be followed by a space.  Returns None on unbalanced
    quotes."""
    args = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \n\r\t\v\f":
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        inq = insq = False
        while True:
            if inq:
                if i >= n:
                    return None
                c = line[i]
                if (c == 92 and i + 3 < n and line[i + 1] == 120
                        and line[i + 2] in _HEX and line[i + 3] in _HEX):
                    cur.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in b" \n\r\t\v\f":
                        return None
                    i += 1
                    break
                else:
                    cur.append(c)
            elif insq:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in b" \n\r\t\v\f":
                        return None
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \n\r\t\v\f":
                    break
                if c == 34:
                    inq = True
                elif c == 39:
                    insq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


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
    """An error reply; the text starts with its code (``ERR ...``)."""
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


class Double(float):
    """A double (RESP3 ``,``, RESP2 bulk string in Redis's %.17g form)."""
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
_INTS = [Raw(b":%d\r\n" % i) for i in range(-1, 1025)]


def format_double(value: float) -> bytes:
    """Redis's human formatting of doubles (%.17g, inf, -inf, nan)."""
    if value != value:
        return b"nan"
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    if value == int(value) and abs(value) < 1e17:
        return b"%d" % int(value)
    return (b"%.17g" % value)


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


def _array(items, resp3, prefix=b"*"):
    parts = [b"%s%d\r\n" % (prefix, len(items))]
    for item in items:
        parts.append(encode(item, resp3))
    return b"".join(parts)


def _map(pairs, resp3):
    if resp3:
        parts = [b"%%%d\r\n" % len(pairs)]
    else:
        parts = [b"*%d\r\n" % (2 * len(pairs))]
    for key, value in pairs:
        parts.append(encode(key, resp3))
        parts.append(encode(value, resp3))
    return b"".join(parts)


def _status(text, resp3):
    return b"+%s\r\n" % text.encode()


def _error(text, resp3):
    # An error must stay on one line, or it would desync the client.
    text = text.replace("\r", " ").replace("\n", " ")
    return b"-%s\r\n" % text.encode()


def _double(value, resp3):
    text = format_double(value)
    if resp3:
        return b",%s\r\n" % text
    return b"$%d\r\n%b\r\n" % (len(text), text)


def _verbatim(text, resp3):
    if resp3:
        return b"=%d\r\ntxt:%b\r\n" % (len(text) + 4, text)
    return b"$%d\r\n%b\r\n" % (len(text), text)


def _bool(value, resp3):
    if resp3:
        return b"#t\r\n" if value else b"#f\r\n"
    return b":1\r\n" if value else b":0\r\n"


_ENCODERS = {
    list: _array,
    tuple: _array,
    Status: _status,
    Error: _error,
    Map: _map,
    SetReply: lambda items, resp3: _array(items, resp3, b"~" if resp3 else b"*"),
    Push: lambda items, resp3: _array(items, resp3, b">" if resp3 else b"*"),
    Double: _double,
    Verbatim: _verbatim,
    Bool: _bool,
    NullArray: lambda value, resp3: b"_\r\n" if resp3 else b"*-1\r\n",
    bytearray: lambda value, resp3: b"$%d\r\n%b\r\n" % (len(value), value),
    str: lambda value, resp3: encode(value.encode(), resp3),
    float: _double,
    bool: _bool,
    dict: lambda value, resp3: _map(list(value.items()), resp3),
}
