"""One sandboxed Lua 5.1 state (lupa.lua51) and the Redis <-> Lua bridge.

``LuaEngine`` owns a ``lupa.lua51.LuaRuntime`` set up by ``prelude.lua``
(the sandbox Redis 7.0 builds: protected globals, the redis.* API, the
libraries, Redis's pcall, the error handler).  Python supplies the
callables the prelude needs (redis.call, sha1hex, log, math.random...);
they live in upvalues the scripts can't reach, and every attribute lookup
on a Python object from Lua is refused (``attribute_filter``), so no
script can walk from a Python callable to the interpreter.

Conversions:

* Redis reply -> Lua (what redis.call returns): ``to_lua`` walks the
  Python reply value a handler returned, following script_lua.c's
  redisProtocolToLuaType rules for the script's RESP version (RESP2: nil
  bulk/array -> false, doubles -> strings; RESP3: null -> nil, {double=},
  {map=}, {set=}, {big_number=}, {verbatim_string=}, booleans).
* Lua -> client reply: done in Lua (prelude's ``reply``), which writes
  the RESP bytes for the caller's protocol exactly as luaReplyToRedisReply
  does; Python wraps them as ``Raw``.
"""
from __future__ import annotations

import hashlib
import os

import lupa.lua51 as lua51

from rcluster.resp.codec import (Attribute, BigNum, Bool, Double, Error, Map,
                                 NullArray, Push, Raw, SetReply, Status,
                                 Verbatim, format_double)

_PRELUDE = open(os.path.join(os.path.dirname(__file__), "prelude.lua"),
                "rb").read()
REDIS_VERSION = b"7.0.15"
REDIS_VERSION_NUM = 0x07000f
# Redis's luaMaskCountHook period (instructions).
HOOK_COUNT = 100000


def _deny_attributes(obj, name, is_setting):
    raise AttributeError("access denied")


class ScriptError(Exception):
    """redis.call's failure: carries the Lua error table (see prelude)."""

    def __init__(self, table):
        Exception.__init__(self, "script error")
        self.table = table


def _unwrap(error):
    """What a Python error raised into Lua stands for: redis.call's error
    table, or (a library function's failure, luaL_error-like) its message
    as bytes."""
    if error.__class__ is ScriptError:
        return error.table
    if isinstance(error, Exception):
        return str(error).encode("utf-8", "surrogateescape")
    return None


def sha1hex(data: bytes) -> bytes:
    return hashlib.sha1(data).hexdigest().encode()


class Rand48:
    """Redis's redisLrand48 / redisSrand48 (rand.c): lrand48's sequence,
    one state per process, never reseeded by Redis itself."""
    __slots__ = ("x",)
    A = 0x5DEECE66D
    MASK = (1 << 48) - 1

    def __init__(self):
        self.x = 0x1234ABCD330E

    def seed(self, value: int):
        value &= 0xFFFFFFFF
        self.x = ((value << 16) | 0x330E) & self.MASK

    def next(self) -> int:
        self.x = (self.A * self.x + 0xB) & self.MASK
        return self.x >> 17

    def random(self) -> float:
        max_ = 2**31 - 1
        return (self.next() % max_) / max_


class LuaEngine:
    """A Lua state with Redis's sandbox.  ``bridge`` provides the
    callbacks: ``call(*args)`` (redis.call/pcall), ``log(level, text)``,
    ``setresp(v)``, ``set_repl(flags)``, ``interrupt()`` (the count hook),
    ``acl_check(*args)``, and ``rand`` (a Rand48)."""

    def __init__(self, bridge, libs=None, register=None):
        self.lua = lua51.LuaRuntime(
            encoding=None, unpack_returned_tuples=True, register_eval=False,
            register_builtins=False, attribute_filter=_deny_attributes)
        self.bridge = bridge
        table = self.lua.table_from
        self.table_from = table
        rand = bridge.rand
        py = table({
            b"call": bridge.call_raise,
            b"pcall": bridge.call_pcall,
            b"unwrap": _unwrap,
            b"sha1hex": bridge.sha1hex,
            b"log": bridge.log,
            b"setresp": bridge.setresp,
            b"set_repl": bridge.set_repl,
            b"interrupt": bridge.interrupt,
            b"acl_check": bridge.acl_check,
            b"random": rand.random,
            b"randomseed": rand.seed,
            b"version": REDIS_VERSION,
            b"version_num": REDIS_VERSION_NUM,
            b"libs": table(libs(self.lua) if libs else {}),
        })
        if register is not None:
            py[b"register"] = register
        loader = self.lua.execute(
            b"return function(src, py) return assert(loadstring(src, "
            b"'=rcluster'))(py) end")
        self.api = loader(_PRELUDE, py)
        self.run_eval = self.api[b"run_eval"]
        self.run_function = self.api[b"run_function"]
        self.load_library = self.api[b"load_library"]
        self.compile = self.api[b"compile"]
        self.errtable_lua = self.api[b"errtable"]
        self.redis = self.api[b"redis"]
        self.G = self.api[b"G"]
        self.rawset = self.api[b"rawset"]
        self._ok_table = None

    # -- Redis reply -> Lua -----------------------------------------------
    def error_table(self, text: str):
        """luaPushErrorBuff's table for an error text ("-CODE msg" keeps
        its code, plain text gets ERR)."""
        return self.errtable_lua(text.encode("utf-8", "surrogateescape"))

    def to_lua(self, value, resp3: bool):
        cls = value.__class__
        if cls is bytes:
            return value
        if cls is int:
            return value
        if cls is Raw:
            return self.to_lua(_parse_raw(value), resp3)
        if value is None or cls is NullArray:
            return None if resp3 else False
        if cls is list or cls is tuple or cls is Push:
            table = self.table_from([self.to_lua(v, resp3) for v in value])
            return table
        if cls is Status:
            return self.table_from({b"ok": value.encode(
                "utf-8", "surrogateescape")})
        if cls is Error:
            text = str(value)
            table = self.error_table(text if text[:1] == "-" else "-" + text)
            table[b"ignore_error_stats_update"] = True
            return table
        if cls is Map or cls is dict:
            pairs = value.items() if cls is dict else value
            if not resp3:
                flat = []
                for k, v in pairs:
                    flat.append(self.to_lua(k, resp3))
                    flat.append(self.to_lua(v, resp3))
                return self.table_from(flat)
            inner = self.lua.table()
            for k, v in pairs:
                inner[self.to_lua(k, resp3)] = self.to_lua(v, resp3)
            return self.table_from({b"map": inner})
        if cls is SetReply or cls is set or cls is frozenset:
            if not resp3:
                return self.table_from([self.to_lua(v, resp3) for v in value])
            inner = self.lua.table()
            for v in value:
                inner[self.to_lua(v, resp3)] = True
            return self.table_from({b"set": inner})
        if cls is Double or cls is float:
            if not resp3:
                return format_double(value)
            return self.table_from({b"double": float(value)})
        if cls is BigNum:
            if not resp3:
                return b"%d" % value
            return self.table_from({b"big_number": b"%d" % value})
        if cls is Verbatim:
            if not resp3:
                return bytes(value)
            return self.table_from({b"verbatim_string": self.table_from(
                {b"format": b"txt", b"string": bytes(value)})})
        if cls is Bool or cls is bool:
            return bool(value) if resp3 else int(value)
        if cls is str:
            return value.encode("utf-8", "surrogateescape")
        if cls is bytearray or cls is memoryview:
            return bytes(value)
        if cls is Attribute:
            return None
        if isinstance(value, int):
            return int(value)
        raise TypeError("reply type %s has no Lua form" % cls.__name__)

    def memory(self) -> int:
        return int(self.lua.execute(b"return collectgarbage('count')")
                   * 1024)


# -- RESP (a handler's pre-encoded Raw reply) -> Python reply values -------

def _parse_raw(raw: bytes):
    value, end = _parse(bytes(raw), 0)
    return value


def _parse(data: bytes, pos: int):
    kind = data[pos:pos + 1]
    eol = data.index(b"\r\n", pos)
    line = data[pos + 1:eol]
    pos = eol + 2
    if kind == b"+":
        return Status(line.decode("utf-8", "surrogateescape")), pos
    if kind == b"-":
        return Error(line.decode("utf-8", "surrogateescape")), pos
    if kind == b":":
        return int(line), pos
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, pos
        return data[pos:pos + n], pos + n + 2
    if kind in (b"*", b"~", b">", b"%"):
        n = int(line)
        if n < 0:
            return NullArray(), pos
        if kind == b"%":
            pairs = []
            for _ in range(n):
                k, pos = _parse(data, pos)
                v, pos = _parse(data, pos)
                pairs.append((k, v))
            return Map(pairs), pos
        items = []
        for _ in range(n):
            v, pos = _parse(data, pos)
            items.append(v)
        return (SetReply(items) if kind == b"~" else items), pos
    if kind == b"_":
        return None, pos
    if kind == b",":
        return Double(float(line)), pos
    if kind == b"#":
        return Bool(line == b"t"), pos
    if kind == b"(":
        return BigNum(int(line)), pos
    if kind == b"=":
        n = int(line)
        return Verbatim(data[pos + 4:pos + n]), pos + n + 2
    raise ValueError("unexpected reply type %r" % kind)
