"""The RDB codec (Redis 7.0, RDB version 10), sans-IO: bytes in, bytes out.

* ``dump_payload(value, settings)`` / ``load_payload(payload)``: DUMP and
  RESTORE payloads (type byte, value, 2-byte LE RDB version, CRC64 LE).
* ``RdbWriter``: an RDB file as a sequence of ``bytes`` pieces (header,
  functions, select-db, entries, footer) with a running CRC64.
* ``RdbReader``: an incremental decoder; ``feed`` any chunking of a file,
  get records (``Aux``, ``SelectDb``, ``ResizeDb``, ``Entry``, ``Function``,
  ``End``); ``finish`` checks it wasn't truncated.
* ``RdbError``: the one error any malformed input raises.

Values are the keyspace's Python types: ``bytes``/``bytearray`` (string),
``deque`` (list), ``dict`` (hash), ``set`` (set), ``ZSet`` (sorted set).

Encodings written are chosen as Redis 7.0 chooses them, with the same
thresholds (``hash_encoding``, ``set_encoding``, ``zset``'s own ``compact``
flag; OBJECT ENCODING uses the same functions): listpack hashes/zsets,
intset sets, quicklist-2 lists whose listpack nodes are filled as RPUSH
fills them (``list-max-listpack-size``, plain nodes for elements of
``packed_threshold`` bytes or more); strings int-encoded when they are
integers of 32 bits or less, LZF-compressed (``rdbcompression``) when
longer than 20 bytes and LZF saves 4 bytes.  For those encodings a DUMP is
byte-identical to redis-server's; hashtable-encoded hashes/sets differ
only in member order.  Every encoding Redis 7.0 (and older) writes is read:
strings raw/int/LZF; lists quicklist 2 (listpack + plain nodes),
quicklist 1, ziplist, linked list; hashes listpack, ziplist, zipmap, plain;
sets intset, listpack (7.2), plain; zsets listpack, ziplist, skiplist
(binary and string doubles).  Module values and module aux data raise
``RdbError`` naming the module type.  Loaded zsets are compact (listpack)
when they fit ``zset-max-listpack-*`` (pass ``settings`` to
``load_payload``/``RdbReader``; Redis's defaults otherwise).

Every length read is checked against the input actually present (a
declared 4 GB string in a 100-byte payload is an error, never an
allocation); ``LZF`` output is bounded by its declared length.
``RdbReader`` stays linear whatever the chunking: an incomplete record is
retried only once the bytes it lacked have arrived, and big containers
(plain lists/sets/hashes/zsets, quicklists) are consumed item by item
across feeds.  A registered decoder's record (a stream) is re-parsed from
its start each time more of it arrives.

Speed (bench/rdb_codec.py, 1M keys key:N -> value:N, CPU time): ~1.8M
keys/s encoded, ~1.5M keys/s decoded; small containers (10 elements)
~170K keys/s encoded, ~125K decoded.  LZF is liblzf (python-lzf) and
CRC64 crcmod-plus's C extension; the hot paths (``RdbWriter.entry``,
``encode_string``, ``lp_entry``, ``RdbReader._records`` for string keys,
``Cursor.string`` for short LZF strings) are inlined by hand -- keep them
in step with the general code next to them.

Type registry (how another value type plugs in without editing this file):

    register_encoder(cls, encoder)
        encoder(value, enc) -> (rdb_type, body)
    register_decoder(rdb_type, decoder)
        decoder(cur, rdb_type, settings) -> value

``enc`` is an ``Encoder`` (``enc.string(b)``, ``enc.length(n)``,
``enc.settings``; module helpers ``listpack_encode(items)``,
``encode_length``); ``cur`` is a ``Cursor`` over the input (``cur.length()``,
``cur.string()``, ``cur.byte()``, ``cur.read(n)``, ``cur.u64le()``...; it
raises for you when the input runs out) and ``listpack_entries(blob)``
decodes a listpack.  Decoders raise ``RdbError`` on bad data.
The stream codec (``rcluster/persistence/rdb_stream.py``) registers itself
this way; it is imported at the end of this module when present.
"""
from __future__ import annotations

import importlib.util
import re
import struct
from collections import deque, namedtuple

from rcluster.persistence.crc64 import crc64
from rcluster.persistence.lzf import compress as lzf_compress
from rcluster.persistence.lzf import raw_compress as _lzf_raw_compress
from rcluster.persistence.lzf import raw_decompress as _lzf_raw_decompress
from rcluster.zset import ZSet

RDB_VERSION = 10

# Value types
TYPE_STRING = 0
TYPE_LIST = 1
TYPE_SET = 2
TYPE_ZSET = 3
TYPE_HASH = 4
TYPE_ZSET_2 = 5
TYPE_MODULE = 6
TYPE_MODULE_2 = 7
TYPE_HASH_ZIPMAP = 9
TYPE_LIST_ZIPLIST = 10
TYPE_SET_INTSET = 11
TYPE_ZSET_ZIPLIST = 12
TYPE_HASH_ZIPLIST = 13
TYPE_LIST_QUICKLIST = 14
TYPE_STREAM_LISTPACKS = 15
TYPE_HASH_LISTPACK = 16
TYPE_ZSET_LISTPACK = 17
TYPE_LIST_QUICKLIST_2 = 18
TYPE_STREAM_LISTPACKS_2 = 19
TYPE_SET_LISTPACK = 20          # Redis 7.2 (RDB 11); read, never written

# Opcodes
OP_FUNCTION2 = 245
OP_FUNCTION = 246
OP_MODULE_AUX = 247
OP_IDLE = 248
OP_FREQ = 249
OP_AUX = 250
OP_RESIZEDB = 251
OP_EXPIRETIME_MS = 252
OP_EXPIRETIME = 253
OP_SELECTDB = 254
OP_EOF = 255

QUICKLIST_NODE_PLAIN = 1
QUICKLIST_NODE_PACKED = 2

BAD_FORMAT = "Bad data format"
BAD_PAYLOAD = "DUMP payload version or checksum are wrong"


class RdbError(Exception):
    """A malformed RDB file or DUMP payload; the message says what."""


Aux = namedtuple("Aux", "name value")
SelectDb = namedtuple("SelectDb", "db")
ResizeDb = namedtuple("ResizeDb", "size expires")
Entry = namedtuple("Entry", "key value expire_ms idle freq")
_new_tuple = tuple.__new__      # Entry without namedtuple's Python __new__
Function = namedtuple("Function", "code")
End = namedtuple("End", "")


# -- thresholds (shared with OBJECT ENCODING) ---------------------------------

class _Defaults:
    rdbcompression = True
    rdbchecksum = True
    hash_max_listpack_entries = 512
    hash_max_listpack_value = 64
    list_max_listpack_size = -2
    set_max_intset_entries = 512
    zset_max_listpack_entries = 128
    zset_max_listpack_value = 64


DEFAULTS = _Defaults()

# Redis's quicklist packed_threshold (a process-wide static, set by DEBUG
# QUICKLIST-PACKED-THRESHOLD): elements this big get a plain node.
_PACKED_DEFAULT = 1 << 30
packed_threshold = _PACKED_DEFAULT


def set_packed_threshold(size: int) -> bool:
    """quicklistisSetPackedThreshold: 0 restores the default; refuses
    anything at or just below 4 GB."""
    global packed_threshold
    if size > (1 << 32) - (1 << 20):
        return False
    packed_threshold = size or _PACKED_DEFAULT
    return True


_INT = re.compile(rb"(?:0|-?[1-9][0-9]{0,18})\Z")
_LLONG_MIN = -2**63
_LLONG_MAX = 2**63 - 1


def _as_int(s):
    """string2ll: the integer s spells exactly, or None."""
    if 0 < len(s) <= 20 and _INT.match(s):
        v = int(s)
        if _LLONG_MIN <= v <= _LLONG_MAX:
            return v
    return None


def hash_encoding(value, settings) -> str:
    limit = settings.hash_max_listpack_value
    if len(value) <= settings.hash_max_listpack_entries and all(
            len(f) <= limit and len(v) <= limit for f, v in value.items()):
        return "listpack"
    return "hashtable"


def _intset_values(members, max_entries):
    """The sorted integers of a set Redis keeps as an intset, or None."""
    if len(members) > max_entries:
        return None
    out = []
    for m in members:
        v = _as_int(m)
        if v is None:
            return None
        out.append(v)
    out.sort()
    return out


def set_encoding(value, settings) -> str:
    if _intset_values(value, settings.set_max_intset_entries) is None:
        return "hashtable"
    return "intset"


def zset_fits_listpack(pairs_count: int, max_member: int, settings) -> bool:
    return pairs_count <= settings.zset_max_listpack_entries and \
        max_member <= settings.zset_max_listpack_value


# -- primitive encoders -------------------------------------------------------

_LEN1 = [bytes((n,)) for n in range(64)]
_LZF_HEAD = [bytes((0xc3, n)) for n in range(64)]   # + the raw length


def encode_length(n: int) -> bytes:
    if n < 64:
        return _LEN1[n]
    if n < 16384:
        return bytes((0x40 | (n >> 8), n & 0xff))
    if n <= 0xffffffff:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _encode_int(v: int):
    if -128 <= v <= 127:
        return b"\xc0" + v.to_bytes(1, "little", signed=True)
    if -32768 <= v <= 32767:
        return b"\xc1" + v.to_bytes(2, "little", signed=True)
    if -2**31 <= v < 2**31:
        return b"\xc2" + v.to_bytes(4, "little", signed=True)
    return None


def encode_string(s, compress: bool = True) -> bytes:
    """rdbSaveRawString: int-encoded, LZF, or verbatim."""
    n = len(s)
    # (an integer starts with '-' or a digit: skip the regex otherwise)
    if n <= 11 and n and 45 <= s[0] <= 57 and _INT.match(s):
        enc = _encode_int(int(s))
        if enc is not None:
            return enc
    if s.__class__ is not bytes:
        s = bytes(s)
    if n < 64:
        if n > 20 and compress:
            # lzf_compress(s, n, out, n - 4): python-lzf's max_length is
            # liblzf's out_len - 1 (n > 1 here).
            packed = _lzf_raw_compress(s, n - 5)
            if packed is not None:
                return _LZF_HEAD[len(packed)] + _LEN1[n] + packed
        return _LEN1[n] + s
    if compress:
        packed = lzf_compress(s, n - 4)
        if packed is not None:
            return b"\xc3" + encode_length(len(packed)) + \
                encode_length(n) + packed
    return encode_length(n) + s


# -- listpack / intset --------------------------------------------------------

def _backlen(n: int) -> bytes:
    if n <= 127:
        return bytes((n,))
    if n < 16383:
        return bytes((n >> 7, (n & 127) | 128))
    if n < 2097151:
        return bytes((n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128))
    if n < 268435455:
        return bytes((n >> 21, ((n >> 14) & 127) | 128,
                      ((n >> 7) & 127) | 128, (n & 127) | 128))
    return bytes((n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128,
                  ((n >> 7) & 127) | 128, (n & 127) | 128))


_SMALL_INT_ENTRIES = [bytes((v, 1)) for v in range(128)]


def lp_int_entry(v: int) -> bytes:
    if 0 <= v <= 127:
        return _SMALL_INT_ENTRIES[v]
    if -4096 <= v <= 4095:
        u = v & 0x1fff
        return bytes((0xc0 | (u >> 8), u & 0xff, 2))
    if -32768 <= v <= 32767:
        return b"\xf1" + v.to_bytes(2, "little", signed=True) + b"\x03"
    if -8388608 <= v <= 8388607:
        return b"\xf2" + v.to_bytes(3, "little", signed=True) + b"\x04"
    if -2**31 <= v < 2**31:
        return b"\xf3" + v.to_bytes(4, "little", signed=True) + b"\x05"
    return b"\xf4" + v.to_bytes(8, "little", signed=True) + b"\x09"


_LP_STR_HEAD = [bytes((0x80 | n,)) for n in range(64)]
_LP_STR_BACK = [bytes((n + 1,)) for n in range(64)]


def lp_entry(s) -> bytes:
    """One listpack entry for a string (an integer if it spells one)."""
    n = len(s)
    if n <= 20 and n and 45 <= s[0] <= 57 and _INT.match(s):
        v = int(s)
        if _LLONG_MIN <= v <= _LLONG_MAX:
            return lp_int_entry(v)
    if s.__class__ is not bytes:
        s = bytes(s)
    if n < 64:
        return _LP_STR_HEAD[n] + s + _LP_STR_BACK[n]
    if n < 4096:
        return bytes((0xe0 | (n >> 8), n & 0xff)) + s + _backlen(n + 2)
    return b"\xf0" + n.to_bytes(4, "little") + s + _backlen(n + 5)


_LP_HEADER = struct.Struct("<IH").pack


def listpack_from_entries(entries) -> bytes:
    body = b"".join(entries)
    n = len(entries)
    return b"".join((_LP_HEADER(len(body) + 7, n if n < 65535 else 65535),
                     body, b"\xff"))


def listpack_encode(items) -> bytes:
    """A listpack of strings (bytes) and ints."""
    return listpack_from_entries(
        [lp_int_entry(x) if x.__class__ is int else lp_entry(x)
         for x in items])


def _score_entry(score: float) -> bytes:
    """zzlInsertAt: integral scores (|s| <= LLONG_MAX/2) as integers,
    others as d2string's "%.17g"."""
    if -4611686018427387904.0 <= score <= 4611686018427387904.0 and \
            score == int(score):
        return lp_int_entry(int(score))
    if score == float("inf"):
        return lp_entry(b"inf")
    if score == float("-inf"):
        return lp_entry(b"-inf")
    return lp_entry(b"%.17g" % score)


def intset_encode(values) -> bytes:
    """values: sorted ints."""
    lo, hi = (values[0], values[-1]) if values else (0, 0)
    if -32768 <= lo and hi <= 32767:
        width, code = 2, "h"
    elif -2**31 <= lo and hi < 2**31:
        width, code = 4, "i"
    else:
        width, code = 8, "q"
    return struct.pack("<II", width, len(values)) + \
        struct.pack("<%d%s" % (len(values), code), *values)


# -- value encoders -----------------------------------------------------------

def compresses(settings) -> bool:
    """Whether strings are LZF-compressed (rdbcompression)."""
    return bool(getattr(settings if settings is not None else DEFAULTS,
                        "rdbcompression", True))


class Encoder:
    """Encoding context: settings and the string encoder."""
    __slots__ = ("settings", "compress")

    def __init__(self, settings=None):
        self.settings = settings if settings is not None else DEFAULTS
        self.compress = compresses(self.settings)

    def string(self, s) -> bytes:
        return encode_string(s, self.compress)

    length = staticmethod(encode_length)


def _enc_string(value, enc):
    return TYPE_STRING, encode_string(value, enc.compress)


_OPT_LEVEL = (4096, 8192, 16384, 32768, 65536)


def _quicklist_nodes(items, fill):
    """The nodes RPUSHing items one by one builds: lists of listpack
    entries (packed) or a bytes element (plain)."""
    threshold = packed_threshold
    nodes = []
    entries = None          # the tail packed node's entries
    size = 0                # its lpBytes
    if fill < 0:
        offset = -fill - 1
        size_limit = _OPT_LEVEL[offset] if offset < 5 else -1
    else:
        size_limit = -1
    if 0 < size_limit < threshold and items and \
            sum(map(len, items)) + 8 * len(items) + 7 <= size_limit:
        # Fast path: every RPUSH passes the size test (an entry is at
        # most 8 bytes longer than its element), so one packed node.
        return [[lp_entry(item) for item in items]]
    for item in items:
        sz = len(item)
        if sz >= threshold:
            nodes.append(bytes(item))
            entries = None
            continue
        if entries is not None:
            new_sz = size + sz + 8
            if new_sz <= size_limit:
                ok = True
            elif new_sz > 8192:
                ok = False
            else:
                ok = len(entries) < fill
        else:
            ok = False
        entry = lp_entry(item)
        if ok:
            entries.append(entry)
            size += len(entry)
        else:
            entries = [entry]
            size = 7 + len(entry)
            nodes.append(entries)
    return nodes


def quicklist_node_sizes(items, fill) -> list:
    """The byte size (lpBytes, or the element's for a plain node) of each
    node of the quicklist RPUSHing items builds (DEBUG OBJECT)."""
    return [len(node) if node.__class__ is bytes else
            7 + sum(map(len, node)) for node in _quicklist_nodes(items, fill)]


def _enc_list(value, enc):
    fill = getattr(enc.settings, "list_max_listpack_size", -2)
    nodes = _quicklist_nodes(value, fill)
    string = enc.string
    parts = [encode_length(len(nodes))]
    for node in nodes:
        if node.__class__ is bytes:
            parts.append(b"\x01")
            parts.append(string(node))
        else:
            parts.append(b"\x02")
            parts.append(string(listpack_from_entries(node)))
    return TYPE_LIST_QUICKLIST_2, b"".join(parts)


def _enc_hash(value, enc):
    settings = enc.settings
    if len(value) <= settings.hash_max_listpack_entries:
        # hash_encoding's test, folded into building the listpack
        limit = settings.hash_max_listpack_value
        entries = []
        append = entries.append
        for f, v in value.items():
            if len(f) > limit or len(v) > limit:
                break
            append(lp_entry(f))
            append(lp_entry(v))
        else:
            return TYPE_HASH_LISTPACK, \
                enc.string(listpack_from_entries(entries))
    string = enc.string
    parts = [encode_length(len(value))]
    for f, v in value.items():
        parts.append(string(f))
        parts.append(string(v))
    return TYPE_HASH, b"".join(parts)


def _enc_set(value, enc):
    ints = _intset_values(value, enc.settings.set_max_intset_entries)
    if ints is not None:
        return TYPE_SET_INTSET, enc.string(intset_encode(ints))
    string = enc.string
    return TYPE_SET, encode_length(len(value)) + \
        b"".join([string(m) for m in value])


def _enc_zset(value, enc):
    if value.compact:
        entries = []
        for member, score in value:
            entries.append(lp_entry(member))
            entries.append(_score_entry(score))
        return TYPE_ZSET_LISTPACK, enc.string(listpack_from_entries(entries))
    string = enc.string
    pack = struct.Struct("<d").pack
    parts = [encode_length(len(value))]
    for score, member in reversed(value.order):
        parts.append(string(member))
        parts.append(pack(score))
    return TYPE_ZSET_2, b"".join(parts)


ENCODERS: dict = {
    bytes: _enc_string,
    bytearray: _enc_string,
    deque: _enc_list,
    dict: _enc_hash,
    set: _enc_set,
    ZSet: _enc_zset,
}


def register_encoder(cls, encoder):
    ENCODERS[cls] = encoder


def encode_value(value, enc: Encoder):
    """(rdb_type, body) of a value."""
    encoder = ENCODERS.get(value.__class__)
    if encoder is None:
        raise RdbError("Can't encode a value of type %s"
                       % value.__class__.__name__)
    return encoder(value, enc)


def value_type_name(value) -> str:
    cls = value.__class__
    if cls in (bytes, bytearray):
        return "string"
    return {deque: "list", dict: "hash", set: "set"}.get(
        cls, getattr(value, "TYPE_NAME", "none"))


# -- DUMP / RESTORE -----------------------------------------------------------

_VERSION_LE = RDB_VERSION.to_bytes(2, "little")
_STRING_TYPE = bytes((TYPE_STRING,))


def dump_payload(value, settings=None) -> bytes:
    if value.__class__ is bytes:
        # The common case (every key of a MIGRATE of strings), without
        # building an Encoder.
        data = _STRING_TYPE + encode_string(value, compresses(settings)) + \
            _VERSION_LE
    else:
        rdb_type, body = encode_value(value, Encoder(settings))
        data = bytes((rdb_type,)) + body + _VERSION_LE
    return data + crc64(data).to_bytes(8, "little")


def load_payload(payload: bytes, settings=None):
    """The value of a RESTORE payload; RdbError(BAD_PAYLOAD) for a wrong
    version or checksum, RdbError(BAD_FORMAT) for anything else wrong."""
    payload = bytes(payload)
    n = len(payload)
    if n < 10:
        raise RdbError(BAD_PAYLOAD)
    if int.from_bytes(payload[n - 10:n - 8], "little") > RDB_VERSION:
        raise RdbError(BAD_PAYLOAD)
    if crc64(payload[:n - 8]) != int.from_bytes(payload[n - 8:], "little"):
        raise RdbError(BAD_PAYLOAD)
    if payload[0] == TYPE_STRING and payload[1] < 64 and \
            payload[1] == n - 12:
        # A verbatim string of under 64 bytes (its length in 6 bits, so
        # equal to what the payload holds): nothing to decode.
        return payload[2:n - 10]
    cur = Cursor(payload, n - 10)
    try:
        rdb_type = cur.byte()
        value = decode_value(cur, rdb_type, settings)
    except (RdbError, _NeedMore) as err:
        raise RdbError(BAD_FORMAT) from err
    if _is_empty(value):
        raise RdbError(BAD_FORMAT)
    return value


def _is_empty(value) -> bool:
    cls = value.__class__
    if cls in _CONTAINERS:
        return not value
    if cls is bytes:
        return False
    # A stream may be empty (XGROUP CREATE ... MKSTREAM, XDEL): it is a key.
    if getattr(value, "TYPE_NAME", None) == "stream":
        return False
    return value.__class__ not in (bytes, bytearray) and \
        hasattr(value, "__len__") and len(value) == 0


_CONTAINERS = frozenset((deque, dict, set, list, ZSet))


# -- RDB files: writer --------------------------------------------------------

_TYPE_BYTE = [bytes((n,)) for n in range(256)]
_EXPIRE_MS = struct.Struct("<Bq").pack

class RdbWriter:
    """Encodes an RDB file piece by piece; keeps the running CRC64 (batched
    over pieces, so many small entries cost one checksum pass)."""

    _BATCH = 1 << 20

    def __init__(self, settings=None):
        self.enc = Encoder(settings)
        self.checksum = bool(getattr(self.enc.settings, "rdbchecksum", True))
        self.crc = 0
        self._pending = []
        self._pending_size = 0

    def _out(self, data: bytes) -> bytes:
        if self.checksum:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= self._BATCH:
                self._flush_crc()
        return data

    def _flush_crc(self):
        if self._pending:
            self.crc = crc64(b"".join(self._pending), self.crc)
            self._pending = []
            self._pending_size = 0

    def sibling(self) -> "RdbWriter":
        """A writer that encodes alike, with a checksum of its own (for
        bytes encoded ahead of their place in the file)."""
        return RdbWriter(self.enc.settings)

    def absorb(self, data: bytes):
        """Bytes encoded elsewhere (by a sibling) that go into this file
        here: counted in its checksum, in file order."""
        self._out(data)

    def header(self, aux=()) -> bytes:
        parts = [b"REDIS%04d" % RDB_VERSION]
        string = self.enc.string
        for name, value in aux:
            if value.__class__ is int:
                value = b"%d" % value
            elif value.__class__ is str:
                value = value.encode()
            if name.__class__ is str:
                name = name.encode()
            parts.append(b"\xfa" + string(name) + string(value))
        return self._out(b"".join(parts))

    def function(self, code: bytes) -> bytes:
        return self._out(b"\xf5" + self.enc.string(code))

    def select_db(self, db: int, size: int, expires: int) -> bytes:
        return self._out(b"\xfe" + encode_length(db) + b"\xfb" +
                         encode_length(size) + encode_length(expires))

    def entry(self, key: bytes, value, expire_ms=None, idle=None,
              freq=None) -> bytes:
        """One key (rdbSaveKeyValuePair): its expiry, the idle seconds
        (LRU policies) or counter (LFU) Redis saves, type, key, value."""
        compress = self.enc.compress
        if value.__class__ is bytes:
            data = b"\x00" + encode_string(key, compress) + \
                encode_string(value, compress)
        else:
            rdb_type, body = encode_value(value, self.enc)
            data = _TYPE_BYTE[rdb_type] + encode_string(key, compress) + body
        if freq is not None:
            data = _TYPE_BYTE[OP_FREQ] + _TYPE_BYTE[freq] + data
        if idle is not None:
            data = _TYPE_BYTE[OP_IDLE] + encode_length(idle) + data
        if expire_ms is not None:
            data = _EXPIRE_MS(OP_EXPIRETIME_MS, expire_ms) + data
        if self.checksum:       # _out, inlined
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= self._BATCH:
                self._flush_crc()
        return data

    def footer(self) -> bytes:
        self._out(b"\xff")
        if not self.checksum:
            return b"\xff" + bytes(8)
        self._flush_crc()
        return b"\xff" + self.crc.to_bytes(8, "little")


# -- decoding -----------------------------------------------------------------

class _NeedMore(Exception):
    """The input ended inside a record (more may come)."""


class Cursor:
    """Reads RDB primitives from buf[pos:end]."""
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, end=None, pos: int = 0):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def byte(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise _NeedMore(pos + 1)
        self.pos = pos + 1
        return self.buf[pos]

    def read(self, n: int) -> bytes:
        pos = self.pos
        stop = pos + n
        if stop > self.end:
            raise _NeedMore(stop)
        self.pos = stop
        return self.buf[pos:stop]

    def u64le(self) -> int:
        return int.from_bytes(self.read(8), "little")

    def length(self) -> int:
        b = self.byte()
        kind = b >> 6
        if kind == 0:
            return b
        if kind == 1:
            return ((b & 0x3f) << 8) | self.byte()
        if b == 0x80:
            return int.from_bytes(self.read(4), "big")
        if b == 0x81:
            return int.from_bytes(self.read(8), "big")
        raise RdbError("Unknown length encoding %d in rdbLoadLen()" % b)

    def string(self) -> bytes:
        pos = self.pos
        end = self.end
        if pos >= end:
            raise _NeedMore(pos + 1)
        buf = self.buf
        b = buf[pos]
        if b < 64:              # the common case: a short verbatim string
            stop = pos + 1 + b
            if stop > end:
                raise _NeedMore(stop)
            self.pos = stop
            return buf[pos + 1:stop]
        if b == 0xc3 and pos + 2 < end and buf[pos + 1] < 64 and \
                buf[pos + 2] < 64:
            # LZF with two short lengths (compressed, then raw), inlined
            clen = buf[pos + 1]
            ulen = buf[pos + 2]
            start = pos + 3
            stop = start + clen
            if ulen and ulen <= clen * 88:
                if stop > end:
                    raise _NeedMore(stop)
                try:
                    out = _lzf_raw_decompress(buf[start:stop], ulen)
                except ValueError:
                    out = None
                if out is None or len(out) != ulen:
                    raise RdbError("Invalid LZF compressed string")
                self.pos = stop
                return out
        if b >> 6 != 3:
            n = self.length()
            return self.read(n)
        self.pos = pos + 1
        kind = b & 0x3f
        if kind == 0:
            return b"%d" % int.from_bytes(self.read(1), "little", signed=True)
        if kind == 1:
            return b"%d" % int.from_bytes(self.read(2), "little", signed=True)
        if kind == 2:
            return b"%d" % int.from_bytes(self.read(4), "little", signed=True)
        if kind == 3:
            clen = self.length()
            ulen = self.length()
            if ulen > clen * 88 or not ulen:
                if ulen or clen:
                    raise RdbError("Invalid LZF compressed string")
                return b""
            packed = self.read(clen)
            try:
                out = _lzf_raw_decompress(packed, ulen)
            except ValueError:
                out = None
            if out is None or len(out) != ulen:
                raise RdbError("Invalid LZF compressed string")
            return out
        raise RdbError("Unknown RDB string encoding type %d" % kind)

def _bad(what):
    raise RdbError(what)


def listpack_entries(blob: bytes) -> list:
    """The entries of a listpack: ints and bytes.  Validates the header,
    every entry's bounds, the back-lengths' size and the end byte."""
    n = len(blob)
    if n < 7:
        _bad("Listpack integrity check failed.")
    total, count = struct.unpack_from("<IH", blob)
    if total != n or blob[n - 1] != 0xff:
        _bad("Listpack integrity check failed.")
    out = []
    append = out.append
    p = 6
    last = n - 1
    try:
        while p < last:
            b = blob[p]
            if b < 0x80:
                append(b)
                p += 2
                continue
            if b < 0xc0:
                size = b & 0x3f
                append(blob[p + 1:p + 1 + size])
                elen = 1 + size
            elif b < 0xe0:
                u = ((b & 0x1f) << 8) | blob[p + 1]
                append(u - 0x2000 if u >= 0x1000 else u)
                elen = 2
            elif b < 0xf0:
                size = ((b & 0x0f) << 8) | blob[p + 1]
                append(blob[p + 2:p + 2 + size])
                elen = 2 + size
            elif b == 0xf0:
                size = int.from_bytes(blob[p + 1:p + 5], "little")
                append(blob[p + 5:p + 5 + size])
                elen = 5 + size
            elif b == 0xf1:
                append(int.from_bytes(blob[p + 1:p + 3], "little",
                                      signed=True))
                elen = 3
            elif b == 0xf2:
                append(int.from_bytes(blob[p + 1:p + 4], "little",
                                      signed=True))
                elen = 4
            elif b == 0xf3:
                append(int.from_bytes(blob[p + 1:p + 5], "little",
                                      signed=True))
                elen = 5
            elif b == 0xf4:
                append(int.from_bytes(blob[p + 1:p + 9], "little",
                                      signed=True))
                elen = 9
            else:
                _bad("Listpack integrity check failed.")
            blen = 1 if elen <= 127 else 2 if elen < 16383 else \
                3 if elen < 2097151 else 4 if elen < 268435455 else 5
            p += elen + blen
    except IndexError:
        _bad("Listpack integrity check failed.")
    if p != last or (count != 65535 and count != len(out)):
        _bad("Listpack integrity check failed.")
    return out


def _ziplist_entries(blob: bytes) -> list:
    n = len(blob)
    if n < 11:
        _bad("Ziplist integrity check failed.")
    total, _tail, count = struct.unpack_from("<IIH", blob)
    if total != n or blob[n - 1] != 0xff:
        _bad("Ziplist integrity check failed.")
    out = []
    p = 10
    last = n - 1
    try:
        while p < last:
            p += 1 if blob[p] < 254 else 5
            b = blob[p]
            kind = b >> 6
            if kind == 0:
                size, p = b & 0x3f, p + 1
            elif kind == 1:
                size, p = ((b & 0x3f) << 8) | blob[p + 1], p + 2
            elif kind == 2:
                size = int.from_bytes(blob[p + 1:p + 5], "big")
                p += 5
            else:
                if b == 0xc0:
                    width = 2
                elif b == 0xd0:
                    width = 4
                elif b == 0xe0:
                    width = 8
                elif b == 0xf0:
                    width = 3
                elif b == 0xfe:
                    width = 1
                elif 0xf1 <= b <= 0xfd:
                    out.append((b & 0x0f) - 1)
                    p += 1
                    continue
                else:
                    _bad("Ziplist integrity check failed.")
                if p + 1 + width > last:
                    _bad("Ziplist integrity check failed.")
                out.append(int.from_bytes(blob[p + 1:p + 1 + width], "little",
                                          signed=True))
                p += 1 + width
                continue
            if p + size > last:
                _bad("Ziplist integrity check failed.")
            out.append(blob[p:p + size])
            p += size
    except IndexError:
        _bad("Ziplist integrity check failed.")
    if p != last or (count != 65535 and count != len(out)):
        _bad("Ziplist integrity check failed.")
    return out


def _intset_members(blob: bytes) -> list:
    if len(blob) < 8:
        _bad("Intset integrity check failed.")
    width, count = struct.unpack_from("<II", blob)
    code = {2: "h", 4: "i", 8: "q"}.get(width)
    if code is None or len(blob) != 8 + width * count or count == 0:
        _bad("Intset integrity check failed.")
    return list(struct.unpack_from("<%d%s" % (count, code), blob, 8))


def _text(x) -> bytes:
    return b"%d" % x if x.__class__ is int else x


def _pairs_to_dict(items, what) -> dict:
    if len(items) % 2:
        _bad("%s with odd number of elements" % what)
    out = dict(zip([x if x.__class__ is bytes else b"%d" % x
                    for x in items[0::2]],
                   [x if x.__class__ is bytes else b"%d" % x
                    for x in items[1::2]]))
    if len(out) * 2 != len(items):
        _bad("Duplicate hash fields detected")
    return out


_FLOAT = re.compile(rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
                    rb"(?:[eE][+-]?[0-9]+)?"
                    rb"|inf|infinity)\Z", re.IGNORECASE)


def _parse_score(x) -> float:
    if x.__class__ is int:
        return float(x)
    if not _FLOAT.match(x):
        _bad("Zset with invalid score")
    return float(x)


def _zset_from_pairs(pairs, settings) -> ZSet:
    scores = dict(pairs)
    total = sum(scores.values())
    if len(scores) == len(pairs) and total == total:   # no NaN, no dup
        maxlen = max(map(len, scores)) if scores else 0
        settings = settings if settings is not None else DEFAULTS
        return ZSet(scores, compact=zset_fits_listpack(len(scores), maxlen,
                                                       settings))
    return _zset_from_pairs_checked(pairs, settings)


def _zset_from_pairs_checked(pairs, settings) -> ZSet:
    scores = {}
    maxlen = 0
    for member, score in pairs:
        if score != score:
            _bad("Zset with NAN score detected")
        scores[member] = score
        if len(member) > maxlen:
            maxlen = len(member)
    if len(scores) != len(pairs):
        _bad("Duplicate zset fields detected")
    settings = settings if settings is not None else DEFAULTS
    return ZSet(scores, compact=zset_fits_listpack(len(scores), maxlen,
                                                   settings))


def _zset_flat(items, settings) -> ZSet:
    if len(items) % 2:
        _bad("Zset listpack with odd number of elements")
    pairs = list(zip([x if x.__class__ is bytes else b"%d" % x
                      for x in items[0::2]],
                     [float(x) if x.__class__ is int else _parse_score(x)
                      for x in items[1::2]]))
    return _zset_from_pairs(pairs, settings)


def _dec_string(cur, rdb_type, settings):
    return cur.string()


def _dec_list(cur, rdb_type, settings):
    n = cur.length()
    string = cur.string
    out = deque()
    for _ in range(n):
        out.append(string())
    return out


def _dec_set(cur, rdb_type, settings):
    n = cur.length()
    string = cur.string
    out = set()
    for _ in range(n):
        out.add(string())
    if len(out) != n:
        _bad("Duplicate set members detected")
    return out


def _read_double(cur) -> float:
    n = cur.byte()
    if n == 253:
        return float("nan")
    if n == 254:
        return float("inf")
    if n == 255:
        return float("-inf")
    text = cur.read(n)
    try:
        return _parse_score(text)
    except RdbError:
        raise RdbError("Invalid double value")


_UNPACK_DOUBLE = struct.Struct("<d").unpack


def _dec_zset(cur, rdb_type, settings):
    n = cur.length()
    pairs = []
    string = cur.string
    for _ in range(n):
        member = string()
        if rdb_type == TYPE_ZSET_2:
            score = _UNPACK_DOUBLE(cur.read(8))[0]
        else:
            score = _read_double(cur)
        pairs.append((member, score))
    return _zset_from_pairs(pairs, settings)


def _dec_hash(cur, rdb_type, settings):
    n = cur.length()
    string = cur.string
    out = {}
    for _ in range(n):
        field = string()
        out[field] = string()
    if len(out) != n:
        _bad("Duplicate hash fields detected")
    return out


def _dec_zipmap(cur, rdb_type, settings):
    blob = cur.string()
    out = {}
    n = len(blob)
    p = 1
    try:
        while True:
            items = []
            for _ in range(2):
                b = blob[p]
                if b == 255:
                    if items:
                        _bad("Zipmap integrity check failed.")
                    if p != n - 1:
                        _bad("Zipmap integrity check failed.")
                    return out
                if b < 254:
                    size, p = b, p + 1
                else:
                    size = int.from_bytes(blob[p + 1:p + 5], "little")
                    p += 5
                free = 0
                if items:
                    free = blob[p]
                    p += 1
                if p + size + free > n:
                    _bad("Zipmap integrity check failed.")
                items.append(blob[p:p + size])
                p += size + free
            if items[0] in out:
                _bad("Hash zipmap with dup elements")
            out[items[0]] = items[1]
    except IndexError:
        _bad("Zipmap integrity check failed.")


def _dec_list_ziplist(cur, rdb_type, settings):
    return deque(_text(x) for x in _ziplist_entries(cur.string()))


def _check_unique_set(members, count):
    if len(members) != count:
        _bad("Duplicate set members detected")


def _dec_set_intset(cur, rdb_type, settings):
    values = _intset_members(cur.string())
    members = {b"%d" % x for x in values}
    _check_unique_set(members, len(values))
    return members


def _dec_set_listpack(cur, rdb_type, settings):
    items = listpack_entries(cur.string())
    members = {_text(x) for x in items}
    _check_unique_set(members, len(items))
    return members


def _dec_zset_ziplist(cur, rdb_type, settings):
    return _zset_flat(_ziplist_entries(cur.string()), settings)


def _dec_zset_listpack(cur, rdb_type, settings):
    return _zset_flat(listpack_entries(cur.string()), settings)


def _dec_hash_ziplist(cur, rdb_type, settings):
    return _pairs_to_dict(_ziplist_entries(cur.string()), "Hash ziplist")


def _dec_hash_listpack(cur, rdb_type, settings):
    return _pairs_to_dict(listpack_entries(cur.string()), "Hash listpack")


def _dec_quicklist(cur, rdb_type, settings):
    nodes = cur.length()
    out = deque()
    extend = out.extend
    for _ in range(nodes):
        if rdb_type == TYPE_LIST_QUICKLIST_2:
            container = cur.length()
            if container == QUICKLIST_NODE_PLAIN:
                out.append(cur.string())
                continue
            if container != QUICKLIST_NODE_PACKED:
                _bad("Quicklist integrity check failed.")
            items = listpack_entries(cur.string())
        else:
            items = _ziplist_entries(cur.string())
        extend([b"%d" % x if x.__class__ is int else x for x in items])
    return out


_MODULE_CHARSET = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789-_")


def module_type_name(module_id: int) -> str:
    module_id >>= 10
    name = []
    for _ in range(9):
        name.append(_MODULE_CHARSET[module_id & 63])
        module_id >>= 6
    return "".join(reversed(name))


def _dec_module(cur, rdb_type, settings):
    if rdb_type == TYPE_MODULE:
        _bad("The RDB file contains module data I can't load: "
             "pre-release module format not supported")
    name = module_type_name(cur.length())
    _bad("The RDB file contains module data I can't load: no matching "
         "module type '%s'" % name)


def _dec_stream_missing(cur, rdb_type, settings):
    _bad("The RDB file contains a stream (type %d) and no stream codec is "
         "installed" % rdb_type)


DECODERS: dict = {
    TYPE_STRING: _dec_string,
    TYPE_LIST: _dec_list,
    TYPE_SET: _dec_set,
    TYPE_ZSET: _dec_zset,
    TYPE_ZSET_2: _dec_zset,
    TYPE_HASH: _dec_hash,
    TYPE_MODULE: _dec_module,
    TYPE_MODULE_2: _dec_module,
    TYPE_HASH_ZIPMAP: _dec_zipmap,
    TYPE_LIST_ZIPLIST: _dec_list_ziplist,
    TYPE_SET_INTSET: _dec_set_intset,
    TYPE_ZSET_ZIPLIST: _dec_zset_ziplist,
    TYPE_HASH_ZIPLIST: _dec_hash_ziplist,
    TYPE_LIST_QUICKLIST: _dec_quicklist,
    TYPE_STREAM_LISTPACKS: _dec_stream_missing,
    TYPE_HASH_LISTPACK: _dec_hash_listpack,
    TYPE_ZSET_LISTPACK: _dec_zset_listpack,
    TYPE_LIST_QUICKLIST_2: _dec_quicklist,
    TYPE_STREAM_LISTPACKS_2: _dec_stream_missing,
    TYPE_SET_LISTPACK: _dec_set_listpack,
}


def register_decoder(rdb_type: int, decoder):
    DECODERS[rdb_type] = decoder


def decode_value(cur, rdb_type: int, settings=None):
    decoder = DECODERS.get(rdb_type)
    if decoder is None:
        raise RdbError("Unknown RDB encoding type %d" % rdb_type)
    return decoder(cur, rdb_type, settings)


# -- RDB files: reader --------------------------------------------------------

def _item_list(cur, container):
    container.append(cur.string())


def _item_set(cur, container):
    member = cur.string()
    if member in container:
        _bad("Duplicate set members detected")
    container.add(member)


def _item_hash(cur, container):
    field = cur.string()
    value = cur.string()
    if field in container:
        _bad("Duplicate hash fields detected")
    container[field] = value


def _item_zset2(cur, container):
    member = cur.string()
    container.append((member, _UNPACK_DOUBLE(cur.read(8))[0]))


def _item_zset(cur, container):
    member = cur.string()
    container.append((member, _read_double(cur)))


def _item_quicklist2(cur, container):
    kind = cur.length()
    if kind == QUICKLIST_NODE_PLAIN:
        container.append(cur.string())
        return
    if kind != QUICKLIST_NODE_PACKED:
        _bad("Quicklist integrity check failed.")
    container.extend([b"%d" % x if x.__class__ is int else x
                      for x in listpack_entries(cur.string())])


def _item_quicklist(cur, container):
    container.extend([b"%d" % x if x.__class__ is int else x
                      for x in _ziplist_entries(cur.string())])


# Container types read item by item, so a big key fed in small chunks
# never re-parses from its start: rdb type -> (new container, item reader).
_RESUMABLE = {
    TYPE_LIST: (deque, _item_list),
    TYPE_SET: (set, _item_set),
    TYPE_HASH: (dict, _item_hash),
    TYPE_ZSET_2: (list, _item_zset2),
    TYPE_ZSET: (list, _item_zset),
    TYPE_LIST_QUICKLIST_2: (deque, _item_quicklist2),
    TYPE_LIST_QUICKLIST: (deque, _item_quicklist),
}


class RdbReader:
    """Incremental RDB decoder.  ``feed(data)`` returns the records
    complete so far; ``finish()`` raises if the file was truncated (or its
    checksum was wrong).  Once ``done`` (EOF and checksum read), ``rest``
    holds what was fed past the RDB's end.  Keys holding empty containers
    are skipped, as Redis does (``empty_keys_skipped`` counts them).

    Cost stays linear in the input whatever the chunking: an incomplete
    record is retried only once the bytes it was missing arrived, and big
    containers (plain lists/sets/hashes/zsets, quicklists) are consumed
    item by item across feeds."""

    def __init__(self, settings=None):
        self.settings = settings
        self._chunks = []
        self._size = 0
        self._crc = 0
        self._crc_pending = []      # consumed bytes not yet checksummed
        self._crc_pending_size = 0
        self._header = False
        self._done = False
        self._start = 0
        self._retry_at = 0
        self._partial = None
        self.version = None
        self.checksum = None
        self.empty_keys_skipped = 0
        self.rest = b""             # bytes fed past the end of the RDB

    @property
    def done(self) -> bool:
        """The EOF opcode (and checksum) were read."""
        return self._done

    def feed(self, data) -> list:
        if self._done:
            self.rest += data       # past the RDB (an AOF preamble's tail)
            return []
        if not data:
            return []
        self._chunks.append(bytes(data))
        self._size += len(data)
        if self._size < self._retry_at:
            return []
        buf = self._chunks[0] if len(self._chunks) == 1 else \
            b"".join(self._chunks)
        records = []
        cur = Cursor(buf)
        self._start = 0
        self._retry_at = 0
        try:
            if not self._header:
                self._read_header(cur)
                self._start = cur.pos
            self._records(cur, records)
        except _NeedMore as more:
            self._retry_at = more.args[0] - self._start if more.args else 0
        start = self._start
        if start and not self._done:
            self._crc_pending.append(buf[:start])
            self._crc_pending_size += start
            if self._crc_pending_size >= 1 << 20:
                self._flush_crc()
        rest = buf[start:] if start else buf
        if self._done:
            self.rest = bytes(rest)
            self._chunks = []
            self._size = 0
        else:
            self._chunks = [rest] if rest else []
            self._size = len(rest)
        return records

    def _flush_crc(self):
        if self._crc_pending:
            self._crc = crc64(b"".join(self._crc_pending), self._crc)
            self._crc_pending = []
            self._crc_pending_size = 0

    def _read_header(self, cur):
        head = cur.read(9)
        if head[:5] != b"REDIS":
            raise RdbError("Wrong signature trying to load DB from file")
        if not head[5:].isdigit():
            raise RdbError("Wrong signature trying to load DB from file")
        version = int(head[5:])
        if version < 1 or version > RDB_VERSION:
            raise RdbError("Can't handle RDB format version %d" % version)
        self.version = version
        self._header = True

    def _continue(self, cur, append):
        partial = self._partial
        key, expire, idle, freq, rdb_type, remaining, container = partial
        item = _RESUMABLE[rdb_type][1]
        start = self._start
        try:
            while remaining:
                item(cur, container)
                remaining -= 1
                start = cur.pos
        finally:
            # the items read so far stay read (a _NeedMore resumes here)
            partial[5] = remaining
            self._start = start
        if rdb_type in (TYPE_ZSET, TYPE_ZSET_2):
            container = _zset_from_pairs(container, self.settings)
        self._partial = None
        if _is_empty(container):
            self.empty_keys_skipped += 1
        else:
            append(_new_tuple(Entry, (key, container, expire, idle, freq)))

    def _records(self, cur, records):
        """Parse whole records, moving self._start past each."""
        settings = self.settings
        append = records.append
        string = cur.string
        buf = cur.buf
        end = cur.end
        new = _new_tuple
        expire = idle = freq = None
        if self._partial is not None:
            self._continue(cur, append)
        while True:
            pos = cur.pos
            if pos >= end:
                raise _NeedMore(pos + 1)
            op = buf[pos]
            pos += 1
            if op == TYPE_STRING:       # the common case, inlined
                # a short verbatim key (and value) is sliced right here
                if pos < end and buf[pos] < 64 and \
                        (stop := pos + 1 + buf[pos]) < end:
                    key = buf[pos + 1:stop]
                    b = buf[stop]
                    if b < 64 and (vstop := stop + 1 + b) <= end:
                        value = buf[stop + 1:vstop]
                        cur.pos = vstop
                    else:
                        cur.pos = stop
                        value = string()
                else:
                    cur.pos = pos
                    key = string()
                    value = string()
                append(new(Entry, (key, value, expire, idle, freq)))
                expire = idle = freq = None
                self._start = cur.pos
                continue
            cur.pos = pos
            if op < 245:
                key = string()
                resumable = _RESUMABLE.get(op)
                if resumable is not None:
                    count = cur.length()
                    self._partial = [key, expire, idle, freq, op, count,
                                     resumable[0]()]
                    self._start = cur.pos
                    self._continue(cur, append)
                else:
                    value = decode_value(cur, op, settings)
                    if _is_empty(value):
                        self.empty_keys_skipped += 1
                    else:
                        append(new(Entry, (key, value, expire, idle, freq)))
                expire = idle = freq = None
                self._start = cur.pos
            elif op == OP_EXPIRETIME_MS:
                expire = int.from_bytes(cur.read(8), "little", signed=True)
            elif op == OP_EXPIRETIME:
                expire = int.from_bytes(cur.read(4), "little",
                                        signed=True) * 1000
            elif op == OP_IDLE:
                idle = cur.length()
            elif op == OP_FREQ:
                freq = cur.byte()
            elif op == OP_SELECTDB:
                append(SelectDb(cur.length()))
                self._start = cur.pos
            elif op == OP_RESIZEDB:
                append(ResizeDb(cur.length(), cur.length()))
                self._start = cur.pos
            elif op == OP_AUX:
                append(Aux(cur.string(), cur.string()))
                self._start = cur.pos
            elif op == OP_FUNCTION2:
                append(Function(cur.string()))
                self._start = cur.pos
            elif op == OP_FUNCTION:
                raise RdbError("Pre-release function format not supported.")
            elif op == OP_MODULE_AUX:
                name = module_type_name(cur.length())
                raise RdbError("The RDB file contains AUX module data I can't "
                               "load: no matching module '%s'" % name)
            else:   # EOF
                end = cur.pos
                if self.version >= 5:
                    expected = cur.u64le()
                    self._flush_crc()
                    crc = crc64(cur.buf[:end], self._crc)
                    if expected and crc != expected:
                        raise RdbError(
                            "Wrong RDB checksum expected: (%x) but got (%x). "
                            "Aborting now." % (expected, crc))
                    self.checksum = expected
                self._done = True
                self._start = cur.pos
                append(End())
                return

    def finish(self):
        if not self._done:
            raise RdbError("Short read or OOM loading DB. Unrecoverable "
                           "error, aborting now.")


# A stream codec registers itself (see the docstring) when installed.
if importlib.util.find_spec("rcluster.persistence.rdb_stream") is not None:
    importlib.import_module("rcluster.persistence.rdb_stream")
