"""The libraries Redis bundles with its Lua: bit (LuaBitOp), cjson,
cmsgpack, struct - implemented in Python behind Lua tables.

``bit`` (LuaBitOp 1.0), ``cjson`` (lua-cjson 2.1's defaults as Redis
ships them: %.14g numbers, '/' escaped, sparse-array rule ratio 2 / safe
10, cjson.null), ``cmsgpack`` (lua-cmsgpack 0.4.0: pack / unpack /
unpack_one / unpack_limit, float32 when exact, 16 levels of nesting) and
``struct`` (pack / unpack / size, x86-64 sizes).  The cjson_* option
setters are accepted and ignored (Redis's defaults apply).
"""
from __future__ import annotations

import contextlib
import math
import re
import struct
import sys

from lupa import lua51 as _lua51

_lua_type = _lua51.lua_type


def _tobit(x) -> int:
    if x.__class__ is bool or x is None or not isinstance(x, (int, float)):
        raise TypeError("number expected")
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return 0
        x = round(x)
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


def _bit_library(lua):
    def band(*xs):
        r = -1
        for x in xs:
            r &= _tobit(x)
        return _tobit(r)

    def bor(*xs):
        r = 0
        for x in xs:
            r |= _tobit(x)
        return _tobit(r)

    def bxor(*xs):
        r = 0
        for x in xs:
            r ^= _tobit(x)
        return _tobit(r)

    def u32(x):
        return _tobit(x) & 0xFFFFFFFF

    def lshift(x, n):
        return _tobit(u32(x) << (_tobit(n) & 31))

    def rshift(x, n):
        return _tobit(u32(x) >> (_tobit(n) & 31))

    def arshift(x, n):
        return _tobit(_tobit(x) >> (_tobit(n) & 31))

    def rol(x, n):
        n = _tobit(n) & 31
        v = u32(x)
        return _tobit((v << n) | (v >> (32 - n)))

    def ror(x, n):
        n = _tobit(n) & 31
        v = u32(x)
        return _tobit((v >> n) | (v << (32 - n)))

    def bswap(x):
        return _tobit(int.from_bytes(u32(x).to_bytes(4, "little"), "big"))

    def tohex(x, n=8):
        n = 8 if n is None else _tobit(n)
        digits = "0123456789abcdef"
        if n < 0:
            n = -n
            digits = "0123456789ABCDEF"
        n = min(n, 8)
        v = u32(x)
        out = []
        for _ in range(n):
            out.append(digits[v & 15])
            v >>= 4
        return "".join(reversed(out)).encode()

    return lua.table_from({
        b"tobit": _tobit, b"bnot": lambda x: _tobit(~_tobit(x)),
        b"band": band, b"bor": bor, b"bxor": bxor, b"lshift": lshift,
        b"rshift": rshift, b"arshift": arshift, b"rol": rol, b"ror": ror,
        b"bswap": bswap, b"tohex": tohex})


# -- cjson ----------------------------------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b",
            "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(data: bytes) -> str:
    out = ['"']
    for ch in data.decode("latin-1"):
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _number(x) -> str:
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        raise ValueError("Cannot serialise number: must not be NaN or Inf")
    return "%.14g" % x


@contextlib.contextmanager
def _deep_recursion():
    """cjson nests up to 1000 levels (two Python frames each): room for
    that while one call runs (Python 3.11 frames don't use the C stack)."""
    limit = sys.getrecursionlimit()
    if limit < 4000:
        sys.setrecursionlimit(4000)
    try:
        yield
    finally:
        if limit < 4000:
            sys.setrecursionlimit(limit)


class _Cjson:
    def __init__(self, lua):
        self.lua = lua
        self.null = lua.eval("newproxy(false)")
        self.is_null = lua.eval("function(n) return function(v) return "
                                "rawequal(v, n) end end")(self.null)

    def encode(self, *args):
        if len(args) != 1:
            raise ValueError("bad argument #1 to 'encode' (expected 1 "
                             "argument)")
        with _deep_recursion():
            return self._encode(args[0], 0).encode("latin-1")

    def _encode(self, v, depth):
        if depth > 1000:
            raise ValueError("Cannot serialise, excessive nesting (1001)")
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, (int, float)):
            return _number(v)
        if isinstance(v, bytes):
            return _escape(v)
        kind = _lua_type(v)
        if kind == "userdata" and self.is_null(v):
            return "null"
        if kind != "table":
            raise ValueError("Cannot serialise %s: type not supported" % kind)
        items = list(v.items())
        size = self._array_size(items)
        if size > 0 or (size == 0 and not items):
            if not items:
                return "{}"
            return "[" + ",".join(
                self._encode(v[i], depth + 1) if i in v.keys() or True
                else "null" for i in range(1, size + 1)) + "]"
        parts = []
        for k, x in items:
            if isinstance(k, bytes):
                key = _escape(k)
            elif isinstance(k, (int, float)):
                key = '"' + _number(k) + '"'
            else:
                raise ValueError("Cannot serialise %s: table key must be a "
                                 "number or string" % _lua_type(k))
            parts.append(key + ":" + self._encode(x, depth + 1))
        return "{" + ",".join(parts) + "}"

    @staticmethod
    def _array_size(items) -> int:
        """lua_array_length: >0 array size, -1 not an array."""
        biggest = 0
        count = 0
        for k, _ in items:
            if isinstance(k, (int, float)) and not isinstance(k, bool) and \
                    k >= 1 and float(k).is_integer():
                biggest = max(biggest, int(k))
                count += 1
            else:
                return -1
        if biggest > 10 and biggest > count * 2:
            raise ValueError("Cannot serialise table: excessively sparse "
                             "array")
        return biggest

    def decode(self, *args):
        if len(args) != 1:
            raise LibError("bad argument #1 to 'decode' (expected 1 "
                           "argument)")
        text = args[0]
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = b"%.14g" % text
        if not isinstance(text, bytes):
            raise LibError("bad argument #1 to 'decode' (string expected, "
                           "got %s)" % _typename(text))
        with _deep_recursion():
            return _JsonDecoder(self, text).decode()


# lua_cjson.c's decoder, token for token (its error texts included).
_T_NAMES = {"{": "T_OBJ_BEGIN", "}": "T_OBJ_END", "[": "T_ARR_BEGIN",
            "]": "T_ARR_END", ":": "T_COLON", ",": "T_COMMA"}
_ESC = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b",
        ord("t"): b"\t", ord("n"): b"\n", ord("f"): b"\f", ord("r"): b"\r"}
_STRTOD = re.compile(
    rb"[+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
    rb"(?:[pP][+-]?[0-9]+)?|(?:inf(?:inity)?)|nan(?:\([0-9A-Za-z_]*\))?|"
    rb"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.IGNORECASE)
_DECIMAL_EXP = re.compile(rb"[eE][+-]?[0-9]+\Z")


def _strtod(data: bytes, pos: int):
    """C strtod on data[pos:] -> (value, end), end == pos if no number."""
    m = _STRTOD.match(data, pos)
    if not m:
        return 0.0, pos
    text = m.group(0)
    body = text.lstrip(b"+-")
    negative = text[:1] == b"-"
    low = body.lower()
    if low.startswith(b"0x"):
        value = float.fromhex(body.decode())
    elif low.startswith(b"inf"):
        value = math.inf
    elif low.startswith(b"nan"):
        value = math.nan
    else:
        value = float(body)
    return (-value if negative else value), m.end()


class _JsonDecoder:
    T_STRING, T_NUMBER, T_BOOLEAN, T_NULL, T_END, T_ERROR = (
        "T_STRING", "T_NUMBER", "T_BOOLEAN", "T_NULL", "T_END", "T_ERROR")

    def __init__(self, cj, data: bytes):
        self.cj = cj
        # The C parser stops at the first NUL (its string is C-terminated).
        nul = data.find(b"\0")
        self.data = data if nul < 0 else data[:nul]
        self.full = data
        self.ptr = 0
        self.depth = 0

    def decode(self):
        d = self.full
        if len(d) >= 2 and (not d[0] or not d[1]):
            raise LibError("JSON parser does not support UTF-16 or UTF-32")
        value = self.value(self.next())
        token = self.next()
        if token[0] != self.T_END:
            self.fail("the end", token)
        return value

    def fail(self, expected, token):
        kind, index, value = token
        found = value if kind == self.T_ERROR else kind
        raise LibError("Expected %s but found %s at character %d"
                       % (expected, found, index + 1))

    def error(self, what):
        return (self.T_ERROR, self.ptr, what)

    def next(self):
        d = self.data
        n = len(d)
        while self.ptr < n and d[self.ptr] in b" \t\n\r":
            self.ptr += 1
        index = self.ptr
        if index >= n:
            return (self.T_END, index, None)
        ch = chr(d[index])
        if ch in _T_NAMES:
            self.ptr += 1
            return (_T_NAMES[ch], index, None)
        if ch == '"':
            return self.string(index)
        if ch == "-" or ch.isdigit():
            return self.number(index)
        if d.startswith(b"true", index):
            self.ptr += 4
            return (self.T_BOOLEAN, index, True)
        if d.startswith(b"false", index):
            self.ptr += 5
            return (self.T_BOOLEAN, index, False)
        if d.startswith(b"null", index):
            self.ptr += 4
            return (self.T_NULL, index, None)
        if ch in "+iInN" and self.invalid_number():
            return self.number(index)
        return (self.T_ERROR, index, "invalid token")

    def invalid_number(self) -> bool:
        d, p = self.data, self.ptr
        if d[p:p + 1] == b"+":
            return True
        if d[p:p + 1] == b"-":
            p += 1
        if d[p:p + 1] == b"0":
            ch2 = d[p + 1:p + 2]
            return ch2 in (b"x", b"X") or ch2.isdigit()
        if d[p:p + 1] and d[p] <= ord("9"):
            return False
        low = d[p:p + 3].lower()
        return low in (b"inf", b"nan")

    def number(self, index):
        value, end = _strtod(self.data, self.ptr)
        if end == self.ptr:
            return (self.T_ERROR, self.ptr, "invalid number")
        self.ptr = end
        return (self.T_NUMBER, index, value)

    def string(self, index):
        d = self.data
        n = len(d)
        p = self.ptr + 1
        out = bytearray()
        while True:
            if p >= n:
                self.ptr = p
                return (self.T_ERROR, p, "unexpected end of string")
            ch = d[p]
            if ch == 0x22:
                break
            if ch == 0x5C:
                esc = d[p + 1] if p + 1 < n else 0
                if esc == ord("u"):
                    decoded, length = self.unicode(p)
                    if decoded is None:
                        self.ptr = p
                        return (self.T_ERROR, p, "invalid unicode escape code")
                    out += decoded
                    p += length
                    continue
                mapped = _ESC.get(esc)
                if mapped is None:
                    self.ptr = p
                    return (self.T_ERROR, p, "invalid escape code")
                out += mapped
                p += 2
                continue
            out.append(ch)
            p += 1
        self.ptr = p + 1
        return (self.T_STRING, index, bytes(out))

    def unicode(self, p):
        d = self.data

        def hex4(at):
            chunk = d[at:at + 4]
            if len(chunk) < 4 or not all(c in b"0123456789abcdefABCDEF"
                                         for c in chunk):
                return -1
            return int(chunk, 16)
        code = hex4(p + 2)
        if code < 0:
            return None, 0
        length = 6
        if code & 0xF800 == 0xD800:
            if code & 0x400:
                return None, 0
            if d[p + 6:p + 8] != b"\\u":
                return None, 0
            low = hex4(p + 8)
            if low < 0 or low & 0xFC00 != 0xDC00:
                return None, 0
            code = (((code & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000
            length = 12
        if code <= 0x7F:
            return bytes((code,)), length
        if code <= 0x7FF:
            return bytes(((code >> 6) | 0xC0, (code & 0x3F) | 0x80)), length
        if code <= 0xFFFF:
            return bytes(((code >> 12) | 0xE0, ((code >> 6) & 0x3F) | 0x80,
                          (code & 0x3F) | 0x80)), length
        return bytes(((code >> 18) | 0xF0, ((code >> 12) & 0x3F) | 0x80,
                      ((code >> 6) & 0x3F) | 0x80, (code & 0x3F) | 0x80)), \
            length

    def descend(self):
        self.depth += 1
        if self.depth > 1000:
            raise LibError("Found too many nested data structures (%d) at "
                           "character %d" % (self.depth, self.ptr))

    def value(self, token):
        kind, index, value = token
        if kind == self.T_STRING or kind == self.T_BOOLEAN:
            return value
        if kind == self.T_NUMBER:
            if value.is_integer() and abs(value) < 2**53:
                return int(value) if value or math.copysign(1, value) > 0 \
                    else value
            return value
        if kind == self.T_NULL:
            return self.cj.null
        if kind == "T_OBJ_BEGIN":
            return self.obj()
        if kind == "T_ARR_BEGIN":
            return self.arr()
        self.fail("value", token)

    def obj(self):
        self.descend()
        table = self.cj.lua.table()
        token = self.next()
        if token[0] == "T_OBJ_END":
            self.depth -= 1
            return table
        while True:
            if token[0] != self.T_STRING:
                self.fail("object key string", token)
            key = token[2]
            token = self.next()
            if token[0] != "T_COLON":
                self.fail("colon", token)
            table[key] = self.value(self.next())
            token = self.next()
            if token[0] == "T_OBJ_END":
                self.depth -= 1
                return table
            if token[0] != "T_COMMA":
                self.fail("comma or object end", token)
            token = self.next()

    def arr(self):
        self.descend()
        table = self.cj.lua.table()
        token = self.next()
        if token[0] == "T_ARR_END":
            self.depth -= 1
            return table
        i = 1
        while True:
            table[i] = self.value(token)
            i += 1
            token = self.next()
            if token[0] == "T_ARR_END":
                self.depth -= 1
                return table
            if token[0] != "T_COMMA":
                self.fail("comma or array end", token)
            token = self.next()


class LibError(Exception):
    """A library function's error: the message Lua sees (luaL_error's,
    no position)."""


def _is_int64(x) -> bool:
    if isinstance(x, int):
        return -2**63 <= x < 2**63
    return not (math.isinf(x) or math.isnan(x)) and x.is_integer() and \
        -2**63 <= x < 2**63


# -- cmsgpack (lua_cmsgpack 0.4.0 as Redis bundles it) ---------------------

_MAX_NESTING = 16


class _Cmsgpack:
    def __init__(self, lua):
        self.lua = lua

    def pack(self, *args):
        if not args:
            raise LibError("bad argument #0 to 'pack' (MessagePack pack "
                           "needs input.)")
        out = bytearray()
        for value in args:
            self._encode(value, out, 0)
        return bytes(out)

    def _encode(self, v, out, level):
        if v is None:
            out.append(0xC0)
        elif v is True or v is False:
            out.append(0xC3 if v else 0xC2)
        elif isinstance(v, (int, float)):
            if _is_int64(v):
                self._int(int(v), out)
            else:
                f = struct.unpack(">f", struct.pack(">f", v))[0] \
                    if abs(v) < 3.5e38 or math.isinf(v) or math.isnan(v) \
                    else None
                if f is not None and (f == v):
                    out.append(0xCA)
                    out += struct.pack(">f", v)
                else:
                    out.append(0xCB)
                    out += struct.pack(">d", v)
        elif isinstance(v, bytes):
            n = len(v)
            if n < 32:
                out.append(0xA0 | n)
            elif n <= 0xFF:
                out += bytes((0xD9, n))
            elif n <= 0xFFFF:
                out.append(0xDA)
                out += struct.pack(">H", n)
            else:
                out.append(0xDB)
                out += struct.pack(">I", n)
            out += v
        elif _lua_type(v) == "table" and level < _MAX_NESTING:
            items = list(v.items())
            count, top = 0, 0
            array = True
            for k, _ in items:
                if isinstance(k, bool) or not isinstance(k, (int, float)) \
                        or k <= 0 or not float(k).is_integer() \
                        or k >= 2**31:
                    array = False
                    break
                top = max(top, int(k))
                count += 1
            if array and top == count:
                self._header(count, out, 0x90, 0xDC, 0xDD)
                for i in range(1, count + 1):
                    self._encode(v[i], out, level + 1)
            else:
                self._header(len(items), out, 0x80, 0xDE, 0xDF)
                for k, x in items:
                    self._encode(k, out, level + 1)
                    self._encode(x, out, level + 1)
        else:
            out.append(0xC0)

    @staticmethod
    def _header(n, out, fix, b16, b32):
        if n < 16:
            out.append(fix | n)
        elif n <= 0xFFFF:
            out.append(b16)
            out += struct.pack(">H", n)
        else:
            out.append(b32)
            out += struct.pack(">I", n)

    @staticmethod
    def _int(n, out):
        if n >= 0:
            if n <= 127:
                out.append(n)
            elif n <= 0xFF:
                out += bytes((0xCC, n))
            elif n <= 0xFFFF:
                out.append(0xCD)
                out += struct.pack(">H", n)
            elif n <= 0xFFFFFFFF:
                out.append(0xCE)
                out += struct.pack(">I", n)
            else:
                out.append(0xCF)
                out += struct.pack(">Q", n)
        elif n >= -32:
            out.append(n & 0xFF)
        elif n >= -128:
            out.append(0xD0)
            out += struct.pack(">b", n)
        elif n >= -32768:
            out.append(0xD1)
            out += struct.pack(">h", n)
        elif n >= -2**31:
            out.append(0xD2)
            out += struct.pack(">i", n)
        else:
            out.append(0xD3)
            out += struct.pack(">q", n)

    # decoding
    def unpack(self, *args):
        return self._unpack_full(args, 0, 0)

    def unpack_one(self, *args):
        offset = _optint(args, 1, 0)
        return self._unpack_full(args[:1], 1, offset)

    def unpack_limit(self, *args):
        if len(args) < 2 or _tonum(args[1]) is None:
            raise LibError("bad argument #2 to 'unpack_limit' (number "
                           "expected, got %s)" % _typename(
                               args[1] if len(args) > 1 else None))
        limit = int(_tonum(args[1]))
        offset = _optint(args, 2, 0)
        return self._unpack_full(args[:1], limit, offset)

    def _unpack_full(self, args, limit, offset):
        if not args or not isinstance(args[0], (bytes, int, float)) or \
                isinstance(args[0], bool):
            raise LibError("bad argument #1 to 'unpack' (string expected, "
                           "got %s)" % _typename(args[0] if args else None))
        data = args[0] if isinstance(args[0], bytes) else \
            (b"%.14g" % args[0])
        decode_all = not limit and not offset
        if offset < 0 or limit < 0:
            raise LibError("Invalid request to unpack with offset of %d and "
                           "limit of %d." % (offset, len(data)))
        if offset > len(data):
            raise LibError("Start offset %d greater than input length %d."
                           % (offset, len(data)))
        if decode_all:
            limit = 2**31 - 1
        pos = offset
        values = []
        while pos < len(data) and len(values) < limit:
            try:
                value, pos = self._decode(data, pos, 0)
            except IndexError:
                raise LibError("Missing bytes in input.")
            values.append(value)
        if not decode_all:
            values.insert(0, -1 if pos >= len(data) else pos)
        return tuple(values) if len(values) != 1 else (values[0], )

    def _decode(self, d, pos, depth):
        if pos >= len(d):
            raise IndexError
        b = d[pos]
        pos += 1

        def take(n):
            if pos + n > len(d):
                raise IndexError
            return d[pos:pos + n]
        if b <= 0x7F:
            return b, pos
        if b >= 0xE0:
            return b - 256, pos
        if 0xA0 <= b <= 0xBF:
            n = b & 0x1F
            return take(n), pos + n
        if 0x90 <= b <= 0x9F:
            return self._array(d, pos, b & 0xF, depth)
        if 0x80 <= b <= 0x8F:
            return self._map(d, pos, b & 0xF, depth)
        fixed = {0xCC: ">B", 0xD0: ">b", 0xCD: ">H", 0xD1: ">h",
                 0xCE: ">I", 0xD2: ">i", 0xCF: ">Q", 0xD3: ">q",
                 0xCA: ">f", 0xCB: ">d"}
        if b in fixed:
            fmt = fixed[b]
            size = struct.calcsize(fmt)
            value = struct.unpack(fmt, take(size))[0]
            if isinstance(value, int) and value >= 2**53:
                value = float(value)
            return value, pos + size
        if b == 0xC0:
            return None, pos
        if b == 0xC3:
            return True, pos
        if b == 0xC2:
            return False, pos
        if b in (0xD9, 0xC4):
            n = take(1)[0]
            return take_at(d, pos + 1, n), pos + 1 + n
        if b in (0xDA, 0xC5):
            n = struct.unpack(">H", take(2))[0]
            return take_at(d, pos + 2, n), pos + 2 + n
        if b in (0xDB, 0xC6):
            n = struct.unpack(">I", take(4))[0]
            return take_at(d, pos + 4, n), pos + 4 + n
        if b == 0xDC:
            return self._array(d, pos + 2, struct.unpack(">H", take(2))[0],
                               depth)
        if b == 0xDD:
            return self._array(d, pos + 4, struct.unpack(">I", take(4))[0],
                               depth)
        if b == 0xDE:
            return self._map(d, pos + 2, struct.unpack(">H", take(2))[0],
                             depth)
        if b == 0xDF:
            return self._map(d, pos + 4, struct.unpack(">I", take(4))[0],
                             depth)
        raise LibError("Bad data format in input.")

    def _array(self, d, pos, n, depth):
        table = self.lua.table()
        for i in range(1, n + 1):
            value, pos = self._decode(d, pos, depth + 1)
            if value is not None:
                table[i] = value
        return table, pos

    def _map(self, d, pos, n, depth):
        table = self.lua.table()
        for _ in range(n):
            key, pos = self._decode(d, pos, depth + 1)
            value, pos = self._decode(d, pos, depth + 1)
            if key is None:
                raise LibError("table index is nil")
            table[key] = value
        return table, pos


def take_at(d, pos, n):
    if pos + n > len(d):
        raise IndexError
    return d[pos:pos + n]


def _tonum(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, bytes):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _optint(args, i, default):
    if len(args) <= i or args[i] is None:
        return default
    v = _tonum(args[i])
    if v is None:
        raise LibError("bad argument #%d (number expected, got %s)"
                       % (i + 1, _typename(args[i])))
    return int(v)


def _typename(v) -> str:
    if v is None:
        return "no value"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, bytes):
        return "string"
    return _lua_type(v) or "userdata"


# -- struct (Roberto Ierusalimschy's struct library) ------------------------

_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "l": 8, "L": 8, "T": 8, "f": 4,
          "d": 8, "x": 1}
_MAXALIGN = 8


def _fmt_items(fmt: bytes):
    """(option, size) per format item; controls as (opt, None)."""
    i = 0
    text = fmt.decode("latin-1")
    while i < len(text):
        opt = text[i]
        i += 1
        digits = ""
        if opt in "ciI!":
            while i < len(text) and text[i].isdigit():
                digits += text[i]
                i += 1
        if opt in _SIZES:
            yield opt, _SIZES[opt]
        elif opt == "c":
            yield opt, int(digits) if digits else 1
        elif opt in "iI":
            size = int(digits) if digits else 4
            if size > 32:
                raise LibError("integral size %d is larger than limit of 32"
                               % size)
            yield opt, size
        elif opt == "!":
            a = int(digits) if digits else _MAXALIGN
            if a & (a - 1):
                raise LibError("alignment %d is not a power of 2" % a)
            yield "!", a
        elif opt in " <>s":
            yield opt, 0
        else:
            raise LibError("bad argument #1 to 'pack' (invalid format "
                           "option '%s')" % opt)


def _toalign(pos, align, opt, size):
    if size == 0 or opt == "c":
        return 0
    size = min(size, align)
    return (size - (pos & (size - 1))) & (size - 1)


class _Struct:
    def pack(self, *args):
        if not args or not isinstance(args[0], bytes):
            raise LibError("bad argument #1 to 'pack' (string expected, got "
                           "%s)" % _typename(args[0] if args else None))
        out = bytearray()
        little, align, arg = True, 1, 1
        for opt, size in _fmt_items(args[0]):
            if opt in "<> !":
                if opt == "<":
                    little = True
                elif opt == ">":
                    little = False
                elif opt == "!":
                    align = size
                continue
            pad = _toalign(len(out), align, opt, size)
            out += b"\0" * pad
            if opt == "x":
                out.append(0)
                continue
            value = args[arg] if arg < len(args) else None
            arg += 1
            if opt in "bBhHlLTiI":
                n = _tonum(value)
                if n is None:
                    raise LibError("bad argument #%d to 'pack' (number "
                                   "expected, got %s)" % (arg, _typename(value)))
                n = int(n) & ((1 << 64) - 1)
                out += (n & ((1 << (8 * size)) - 1)).to_bytes(
                    size, "little" if little else "big") if size <= 8 else \
                    n.to_bytes(size, "little" if little else "big")
            elif opt in "fd":
                n = _tonum(value)
                if n is None:
                    raise LibError("bad argument #%d to 'pack' (number "
                                   "expected, got %s)" % (arg, _typename(value)))
                out += struct.pack(("<" if little else ">") + opt, n)
            elif opt in "cs":
                if isinstance(value, (int, float)) and \
                        not isinstance(value, bool):
                    value = b"%.14g" % value
                if not isinstance(value, bytes):
                    raise LibError("bad argument #%d to 'pack' (string "
                                   "expected, got %s)" % (arg, _typename(value)))
                n = size if size else len(value)
                if len(value) < n:
                    raise LibError("bad argument #%d to 'pack' (string too "
                                   "short)" % arg)
                out += value[:n]
                if opt == "s":
                    out.append(0)
        return bytes(out)

    def unpack(self, *args):
        if len(args) < 2 or not isinstance(args[0], bytes) or \
                not isinstance(args[1], bytes):
            raise LibError("bad argument #%d to 'unpack' (string expected, "
                           "got %s)" % ((1, _typename(args[0] if args else
                                                      None))
                                        if not args or not isinstance(
                                            args[0], bytes)
                                        else (2, _typename(args[1] if len(
                                            args) > 1 else None))))
        data = args[1]
        pos = _optint(args, 2, 1)
        if pos <= 0:
            raise LibError("bad argument #3 to 'unpack' (offset must be 1 or "
                           "greater)")
        pos -= 1
        little, align = True, 1
        out = []
        for opt, size in _fmt_items(args[0]):
            if opt in "<> !":
                if opt == "<":
                    little = True
                elif opt == ">":
                    little = False
                elif opt == "!":
                    align = size
                continue
            pos += _toalign(pos, align, opt, size)
            if not (size <= len(data) and pos <= len(data) - size):
                raise LibError("bad argument #2 to 'unpack' (data string too "
                               "short)")
            chunk = data[pos:pos + size]
            if opt in "bBhHlLTiI":
                n = int.from_bytes(chunk, "little" if little else "big",
                                   signed=opt.islower())
                out.append(float(n) if abs(n) >= 2**53 else n)
            elif opt in "fd":
                out.append(struct.unpack(("<" if little else ">") + opt,
                                         chunk)[0])
            elif opt == "c":
                if size == 0:
                    if not out or not isinstance(out[-1], (int, float)):
                        raise LibError("format 'c0' needs a previous size")
                    size = int(out.pop())
                    if not (size <= len(data) and pos <= len(data) - size):
                        raise LibError("bad argument #2 to 'unpack' (data "
                                       "string too short)")
                out.append(data[pos:pos + size])
            elif opt == "s":
                end = data.find(b"\0", pos)
                if end < 0:
                    raise LibError("unfinished string in data")
                size = end - pos + 1
                out.append(data[pos:end])
            pos += size
        out.append(pos + 1)
        return tuple(out)

    def size(self, *args):
        if not args or not isinstance(args[0], bytes):
            raise LibError("bad argument #1 to 'size' (string expected, got "
                           "%s)" % _typename(args[0] if args else None))
        pos, align = 0, 1
        for opt, size in _fmt_items(args[0]):
            if opt == "!":
                align = size
                continue
            if opt in "<> ":
                continue
            if opt == "s" or (opt == "c" and size == 0):
                raise LibError("bad argument #1 to 'size' (options 'c0' - "
                               "'s' have undefined sizes)")
            pos += _toalign(pos, align, opt, size) + size
        return pos


_CJSON_WRAP = b"""
local c = ...
return {encode = c.encode, decode = c.decode, null = c.null,
        encode_keep_buffer = function() end,
        encode_max_depth = function() end, decode_max_depth = function() end,
        encode_number_precision = function() end,
        encode_sparse_array = function() end,
        encode_invalid_numbers = function() end,
        decode_invalid_numbers = function() end,
        _NAME = "cjson", _VERSION = "2.1.0"}
"""


def load_libraries(lua) -> dict:
    cj = _Cjson(lua)
    raw = lua.table_from({b"encode": cj.encode, b"decode": cj.decode,
                          b"null": cj.null})
    load = lua.execute(b"return function(src, ...) return assert(loadstring("
                       b"src, '=rcluster'))(...) end")
    cjson = load(_CJSON_WRAP, raw)
    mp = _Cmsgpack(lua)
    st = _Struct()
    return {
        b"bit": _bit_library(lua),
        b"cjson": cjson,
        b"cmsgpack": lua.table_from({
            b"pack": mp.pack, b"unpack": mp.unpack,
            b"unpack_one": mp.unpack_one, b"unpack_limit": mp.unpack_limit,
            b"_NAME": b"cmsgpack", b"_VERSION": b"lua-cmsgpack 0.4.0"}),
        b"struct": lua.table_from({
            b"pack": st.pack, b"unpack": st.unpack, b"size": st.size}),
    }
