"""FUNCTION libraries (Redis 7.0's functions.c / function_lua.c).

A library is the code FUNCTION LOAD got (``#!lua name=<lib>`` first line);
running its body registers functions with ``redis.register_function``.
All libraries share one Lua state (the functions engine), separate from
EVAL's.  FUNCTION DUMP's payload is Redis's: for each library the opcode
RDB_OPCODE_FUNCTION2 (245) and the code as an RDB string (LZF-compressed
past 20 bytes when rdbcompression is on, as rdbSaveRawString does), then
the RDB version (2 bytes LE) and the CRC64 of all that (8 bytes LE): it
restores on redis-server and back.
"""
from __future__ import annotations

import re
import struct

from rcluster.commands.table import CommandError
from rcluster.scripting.engine import HOOK_COUNT, LuaEngine

OPCODE_FUNCTION2 = 245
OPCODE_FUNCTION_PRE_GA = 246
RDB_VERSION = 10
LOAD_TIMEOUT_MS = 500
_NAME = re.compile(rb"[A-Za-z0-9_]+\Z")
_NAME_ERROR = ("ERR Library names can only contain letters, numbers, or "
               "underscores(_) and must be at least one character long")


class Function:
    __slots__ = ("name", "fn", "desc", "flags", "library")

    def __init__(self, name, fn, desc, flags, library):
        self.name = name
        self.fn = fn
        self.desc = desc
        self.flags = flags
        self.library = library


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name, code):
        self.name = name
        self.code = code
        self.functions: dict = {}


def parse_metadata(code: bytes):
    """functionExtractLibMetaData -> (engine, name)."""
    if not code.startswith(b"#!"):
        raise CommandError("ERR Missing library metadata")
    end = code.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid library metadata")
    from rcluster.resp.codec import split_args
    try:
        parts = split_args(code[:end])
    except Exception:
        parts = None
    if not parts:
        raise CommandError("ERR Invalid library metadata")
    engine = parts[0][2:]
    name = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise CommandError("ERR Invalid metadata value, name argument "
                                   "was given multiple times")
            name = part[5:]
            continue
        raise CommandError("ERR Invalid metadata value given: %s"
                           % part.decode("utf-8", "surrogateescape"))
    if name is None:
        raise CommandError("ERR Library name was not given")
    return engine, name, end


class Functions:
    def __init__(self, scripting):
        self.scripting = scripting
        self.libraries: dict = {}     # name -> Library
        self.functions: dict = {}     # name -> Function
        self._engine = None
        self._loading = None          # the Library being loaded
        self.load_started = None

    @property
    def engine(self) -> LuaEngine:
        if self._engine is None:
            from rcluster.scripting.libs import load_libraries
            self._engine = LuaEngine(self.scripting, load_libraries,
                                     register=self._register)
        return self._engine

    @property
    def engine_memory(self) -> int:
        return self._engine.memory() if self._engine is not None else 0

    def _register(self, name, fn, desc, *flags):
        lib = self._loading
        if not _NAME.match(name):
            return _NAME_ERROR[4:].encode()
        if name in lib.functions:
            return b"Function already exists in the library"
        lib.functions[name] = Function(name, fn, desc, frozenset(
            f.decode() for f in flags), lib)
        return None

    # -- loading ----------------------------------------------------------
    def load(self, code: bytes, replace: bool, timeout=True) -> bytes:
        engine_name, name, end = parse_metadata(code)
        if not _NAME.match(name):
            raise CommandError(_NAME_ERROR)
        if engine_name != b"lua" and engine_name.upper() != b"LUA":
            raise CommandError("ERR Engine '%s' not found"
                               % engine_name.decode("utf-8", "replace"))
        old = self.libraries.get(name)
        if old is not None and not replace:
            raise CommandError("ERR Library '%s' already exists"
                               % name.decode("utf-8", "replace"))
        lib = self._compile(name, code, end, timeout)
        for fname in lib.functions:
            other = self.functions.get(fname)
            if other is not None and other.library is not old:
                raise CommandError("ERR Function %s already exists"
                                   % fname.decode("utf-8", "replace"))
        if old is not None:
            self._unlink(old)
        self._link(lib)
        return name

    def _compile(self, name, code, end, timeout) -> Library:
        engine = self.engine
        fn, err = engine.compile(code[end:], b"@user_function")
        if fn is None:
            raise CommandError("ERR Error compiling function: %s"
                               % err.decode("utf-8", "surrogateescape"))
        lib = Library(name, code)
        self._loading = lib
        self.load_started = self.scripting.server.clock.seconds() \
            if timeout else None
        try:
            result = engine.load_library(fn, HOOK_COUNT if timeout else 0)
        finally:
            self._loading = None
            self.load_started = None
        ok = result[0] if isinstance(result, tuple) else result
        if not ok:
            raise CommandError("ERR Error registering functions: %s"
                               % result[1].decode("utf-8", "surrogateescape"))
        if not lib.functions:
            raise CommandError("ERR No functions registered")
        return lib

    def load_timed_out(self) -> bool:
        if self.load_started is None:
            return False
        clock = self.scripting.server.clock
        return (clock.seconds() - self.load_started) * 1000 > LOAD_TIMEOUT_MS

    def _link(self, lib):
        self.libraries[lib.name] = lib
        for fname, f in lib.functions.items():
            self.functions[fname] = f

    def _unlink(self, lib):
        self.libraries.pop(lib.name, None)
        for fname in lib.functions:
            self.functions.pop(fname, None)

    def delete(self, name: bytes):
        lib = self.libraries.get(name)
        if lib is None:
            raise CommandError("ERR Library not found")
        self._unlink(lib)

    def flush(self):
        self.libraries = {}
        self.functions = {}
        self._engine = None

    def codes(self) -> list:
        return [lib.code for lib in self.libraries.values()]

    # -- DUMP / RESTORE ---------------------------------------------------
    def dump(self, compress=True) -> bytes:
        from rcluster.persistence.crc64 import crc64
        out = bytearray()
        for lib in self.libraries.values():
            out.append(OPCODE_FUNCTION2)
            out += rdb_string(lib.code, compress)
        out += struct.pack("<H", RDB_VERSION)
        out += struct.pack("<Q", crc64(bytes(out)))
        return bytes(out)

    def restore(self, payload: bytes, policy: bytes):
        from rcluster.persistence.crc64 import crc64
        if len(payload) < 10:
            raise CommandError("ERR DUMP payload version or checksum are wrong")
        version = struct.unpack("<H", payload[-10:-8])[0]
        if version > RDB_VERSION or \
                struct.unpack("<Q", payload[-8:])[0] != crc64(payload[:-8]):
            raise CommandError("ERR DUMP payload version or checksum are wrong")
        body = payload[:-10]
        codes = []
        pos = 0
        while pos < len(body):
            kind = body[pos]
            pos += 1
            if kind != OPCODE_FUNCTION2:
                if kind == OPCODE_FUNCTION_PRE_GA:
                    raise CommandError("ERR Pre-GA function format not "
                                       "supported, please upgrade to the "
                                       "GA version")
                raise CommandError("ERR given type is not a function")
            try:
                code, pos = read_rdb_string(body, pos)
            except (ValueError, IndexError):
                raise CommandError("ERR failed loading the given functions "
                                   "payload")
            codes.append(code)
        # Build the restored set aside, then join (libraryJoin).
        saved = (self.libraries, self.functions, self._engine)
        if policy == b"flush":
            self.libraries, self.functions = {}, {}
            self._engine = None
        try:
            staged = []
            for code in codes:
                engine_name, name, end = parse_metadata(code)
                if name in [lib.name for lib in staged]:
                    raise CommandError("ERR Library '%s' already exists"
                                       % name.decode("utf-8", "replace"))
                staged.append(self._compile(name, code, end, False))
            for lib in staged:
                old = self.libraries.get(lib.name)
                if old is not None:
                    if policy != b"replace":
                        raise CommandError("ERR Library %s already exists"
                                           % lib.name.decode("utf-8",
                                                             "replace"))
                    self._unlink(old)
                for fname in lib.functions:
                    if fname in self.functions:
                        raise CommandError("ERR Function %s already exists"
                                           % fname.decode("utf-8", "replace"))
                self._link(lib)
        except CommandError:
            self.libraries, self.functions, self._engine = \
                dict(saved[0]), dict(saved[1]), saved[2]
            raise


def rdb_string(data: bytes, compress=True) -> bytes:
    """rdbSaveRawString for a non-integer string."""
    if compress and len(data) > 20:
        from rcluster.persistence.lzf import compress as lzf
        packed = lzf(data, len(data) - 4)
        if packed:
            return b"\xc3" + rdb_length(len(packed)) + \
                rdb_length(len(data)) + bytes(packed)
    return rdb_length(len(data)) + data


def rdb_length(n: int) -> bytes:
    if n < 1 << 6:
        return bytes((n,))
    if n < 1 << 14:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + struct.pack(">I", n)
    return b"\x81" + struct.pack(">Q", n)


def _read_length(data, pos):
    first = data[pos]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F, pos + 1, False
    if kind == 1:
        return ((first & 0x3F) << 8) | data[pos + 1], pos + 2, False
    if first == 0x80:
        return struct.unpack(">I", data[pos + 1:pos + 5])[0], pos + 5, False
    if first == 0x81:
        return struct.unpack(">Q", data[pos + 1:pos + 9])[0], pos + 9, False
    if kind == 3:
        return first & 0x3F, pos + 1, True
    raise ValueError("bad length")


def read_rdb_string(data: bytes, pos: int):
    n, pos, encoded = _read_length(data, pos)
    if not encoded:
        if pos + n > len(data):
            raise ValueError("truncated")
        return bytes(data[pos:pos + n]), pos + n
    if n == 0:
        return b"%d" % struct.unpack("<b", data[pos:pos + 1])[0], pos + 1
    if n == 1:
        return b"%d" % struct.unpack("<h", data[pos:pos + 2])[0], pos + 2
    if n == 2:
        return b"%d" % struct.unpack("<i", data[pos:pos + 4])[0], pos + 4
    if n == 3:
        from rcluster.persistence.lzf import decompress
        clen, pos, _ = _read_length(data, pos)
        ulen, pos, _ = _read_length(data, pos)
        if pos + clen > len(data) or ulen > 512 * 1024 * 1024:
            raise ValueError("truncated")
        return decompress(data[pos:pos + clen], ulen), pos + clen
    raise ValueError("unknown encoding")
