"""The same scripts against redis-server 7.0 and rcluster: the same bytes
on the wire (raw sockets, RESP2 and RESP3), for type conversion both
ways, the error shapes of redis.call vs redis.pcall, the sandbox, shebang
flags, the libraries, and FUNCTION DUMP payloads restoring across both."""
from __future__ import annotations

import socket

from twisted.trial.unittest import TestCase

from tests.integration.harness import have, start_node


def _request(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(a), a))
    return b"".join(out)


class Raw:
    """A raw connection: send one request, read one whole reply."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.buf = b""

    def close(self):
        self.sock.close()

    def call(self, *args) -> bytes:
        self.sock.sendall(_request(*args))
        while True:
            end = _reply_end(self.buf, 0)
            if end is not None:
                reply, self.buf = self.buf[:end], self.buf[end:]
                return reply
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk


def _reply_end(buf, pos):
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return None
    kind, line = buf[pos:pos + 1], buf[pos + 1:eol]
    pos = eol + 2
    if kind in b"+-:_,#(":
        return pos
    if kind in b"$=":
        n = int(line)
        if n < 0:
            return pos
        return pos + n + 2 if len(buf) >= pos + n + 2 else None
    if kind in b"*~>%|":
        n = int(line)
        if kind in b"%|":
            n *= 2
        for _ in range(max(n, 0)):
            pos = _reply_end(buf, pos)
            if pos is None:
                return None
        return pos
    raise ValueError(buf[pos:pos + 20])


# (numkeys-and-args, script) pairs run with EVAL in each protocol.
SCRIPTS = [
    "return 1", "return 3.99", "return -3.99", "return 'str'", "return true",
    "return false", "return nil", "return {1,2,3,'x',nil,4}",
    "return {1,{2,{3}},'a'}", "return {}", "return {ok='FINE'}",
    "return {err='My Error'}", "return {err='-X y'}",
    "return redis.status_reply('FOO')", "return redis.error_reply('FOO bar')",
    "return redis.error_reply('-FOO bar')", "return redis.error_reply('x')",
    "return {double=1.5}", "return {double=0.1}", "return {double=1/0}",
    "return {big_number='123456789012345678901234567890'}",
    "return {map={a=1}}", "return {set={a=true}}",
    "return {verbatim_string={format='txt', string='hello'}}",
    "return {true, false, {ok='x'}, {err='ERR y'}}",
    # redis.call / pcall and their error shapes
    "return redis.call('set', KEYS[1], ARGV[1])",
    "return redis.call('get', KEYS[1])",
    "return redis.call('get', 'nokey')",
    "return redis.call('incr', KEYS[1])",
    "return redis.pcall('incr', KEYS[1])",
    "return redis.call('incr', 'a', 'b')",
    "return redis.pcall('incr', 'a', 'b')",
    "return redis.call('nosuchcommand')",
    "return redis.pcall('nosuchcommand')",
    "return redis.call()", "return redis.pcall()",
    "return redis.call('get', {})",
    "return redis.call('eval', 'return 1', 0)",
    "return redis.pcall('eval', 'return 1', 0)",
    "local ok, e = pcall(redis.call, 'set'); return {tostring(ok), e}",
    "local ok, e = pcall(error, 'x'); return e",
    "local ok, e = pcall(error, {err='x'}); return type(e)",
    "local t = redis.pcall('incr', KEYS[1]); return t.err",
    "local t = redis.call('set', 'k2', 'v'); return t.ok",
    "redis.call('rpush', 'l', 'a', 'b'); return redis.call('lrange', 'l', 0, -1)",
    "redis.call('hset', 'h', 'f', 'v'); return redis.call('hgetall', 'h')",
    "redis.setresp(3); redis.call('hset', 'h', 'f', 'v'); return redis.call('hgetall', 'h')",
    "redis.setresp(3); return redis.call('get', 'nokey')",
    "redis.setresp(3); local r = redis.call('hgetall', 'h'); return type(r)",
    "redis.call('zadd', 'z', 1.5, 'm'); return redis.call('zscore', 'z', 'm')",
    "redis.setresp(3); redis.call('zadd', 'z', 1.5, 'm'); return redis.call('zscore', 'z', 'm')",
    "redis.setresp(3); redis.call('zadd', 'z', 1.5, 'm'); return redis.call('zscore', 'z', 'm').double",
    "redis.call('sadd', 's', 'a'); return redis.call('smembers', 's')",
    "redis.setresp(3); redis.call('sadd', 's', 'a'); return redis.call('smembers', 's')",
    "return redis.call('ping')", "return redis.call('exists', 'nokey')",
    "return redis.setresp(4)", "return redis.setresp()",
    "return redis.sha1hex('')", "return redis.sha1hex('abc')",
    "return redis.REDIS_VERSION",
    "return redis.replicate_commands()", "return redis.set_repl(redis.REPL_ALL)",
    "return redis.set_repl(99)",
    "redis.log(redis.LOG_WARNING, 'hello from a script'); return 1",
    "return redis.log(99, 'x')", "return redis.log(1)",
    # sandbox
    "x = 1", "rawset(_G, 'x', 1) return x", "string.foo = 1",
    "redis.call = 1", "return y", "return loadfile", "return dofile",
    "return os", "return io", "return print", "return debug",
    "return type(coroutine)", "return type(loadstring)",
    "local f = loadstring('return 5'); return f()",
    "local f = loadstring('x = 5'); return f()",
    "return 'a' +", "error('boom')", "error({err='X boom'})", "error()",
    "return KEYS[1] .. ARGV[1]", "return #KEYS", "return #ARGV",
    "return tostring(math.random()) .. tostring(math.random(10)) .. "
    "tostring(math.random(5, 10))",
    "math.randomseed(7); return {math.random(100), math.random(100)}",
    # libraries
    "return bit.band(0xff, 0x0f, 0x3)", "return bit.bor(1, 2, 4)",
    "return bit.bxor(5, 3)", "return bit.bnot(0)", "return bit.lshift(1, 31)",
    "return bit.rshift(-1, 28)", "return bit.arshift(-256, 4)",
    "return bit.rol(0x12345678, 8)", "return bit.ror(0x12345678, 8)",
    "return bit.bswap(0x12345678)", "return bit.tohex(255)",
    "return bit.tohex(-1, -4)", "return bit.tobit(0xffffffff + 1)",
    "return cjson.encode({1, 2, 3})", "return cjson.encode({a='x/y'})",
    "return cjson.encode({})", "return cjson.encode('a\\nb\"')",
    "return cjson.encode(1.5)", "return cjson.encode({true, false})",
    "return cjson.encode(cjson.null)",
    "return cjson.encode(cjson.decode('[1,2,{\"a\":3}]'))",
    "return cjson.decode('{\"a\":[1,2]}').a[2]",
    "return tostring(cjson.decode('[null]')[1] == cjson.null)",
    # shebang
    "#!lua\nreturn 1", "#!lua flags=no-writes\nreturn 1",
    "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')",
    "#!lua flags=bad\nreturn 1", "#!lua name=x\nreturn 1", "#!python\nreturn 1",
    "#!lua", "#!lua flags=no-writes,allow-stale\nreturn redis.call('get', 'a')",
]


class ScriptingInterop(TestCase):
    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        self.ref = start_node(self, binary="redis-server")
        self.ours = start_node(self)

    def both(self, resp3=False):
        out = []
        for node in (self.ref, self.ours):
            conn = Raw(int(node.address.rsplit(":", 1)[1]))
            self.addCleanup(conn.close)
            if resp3:
                conn.call("HELLO", "3")
            out.append(conn)
        return out

    def compare(self, ref, ours, *args):
        expected = ref.call(*args)
        got = ours.call(*args)
        self.assertEqual(got, expected, "for %r" % (args,))

    def test_eval_same_bytes_resp2_and_resp3(self):
        for resp3 in (False, True):
            ref, ours = self.both(resp3)
            for script in SCRIPTS:
                for conn in (ref, ours):
                    conn.call("FLUSHALL")
                    conn.call("SET", "k", "v")
                self.compare(ref, ours, "EVAL", script, 1, "k", "v")

    def test_evalsha_script_commands(self):
        ref, ours = self.both()
        for args in [("SCRIPT", "LOAD", "return 'loaded'"),
                     ("EVALSHA", "0c2b2d2e8b8f6d1cd3f10ad1e9a4bd6d5e0bd4f6",
                      0),
                     ("EVALSHA", "abc", 0),
                     ("SCRIPT", "EXISTS", "1b936e3fe509bcbc9cd0664897bbe8fd0ac95a2b",
                      "ffffffffffffffffffffffffffffffffffffffff"),
                     ("SCRIPT", "LOAD", "return +"),
                     ("EVAL", "return 1", "x"), ("EVAL", "return 1", 2, "a"),
                     ("EVAL", "return 1", -1), ("SCRIPT", "FLUSH", "bad"),
                     ("SCRIPT", "KILL"), ("FUNCTION", "KILL"),
                     ("SCRIPT", "FLUSH"),
                     ("SCRIPT", "EXISTS", "1b936e3fe509bcbc9cd0664897bbe8fd0ac95a2b"),
                     ("EVAL_RO", "return redis.call('set', 'a', 'b')", 0),
                     ("EVAL_RO", "return redis.call('get', 'a')", 0),
                     ("EVAL_RO", "#!lua\nreturn 1", 0),
                     ("COMMAND", "INFO", "eval", "evalsha", "eval_ro",
                      "evalsha_ro", "fcall", "fcall_ro"),
                     ("COMMAND", "GETKEYS", "EVAL", "return 1", 2, "a", "b",
                      "c")]:
            self.compare(ref, ours, *args)
        # SCRIPT LOAD gives the sha EVALSHA then runs.
        ref.call("SCRIPT", "LOAD", "return 'loaded'")
        sha = ours.call("SCRIPT", "LOAD", "return 'loaded'").split(b"\r\n")[1]
        self.compare(ref, ours, "EVALSHA", sha, 0)
        self.compare(ref, ours, "EVALSHA", sha.upper(), 0)

    def test_functions(self):
        ref, ours = self.both()
        lib = ("#!lua name=mylib\n"
               "local function f(keys, args) return redis.call('get', keys[1]) end\n"
               "redis.register_function('myget', f)\n"
               "redis.register_function{function_name='myset', "
               "callback=function(keys, args) return redis.call('set', keys[1], args[1]) end, "
               "description='sets', flags={'allow-oom'}}\n"
               "redis.register_function{function_name='ro', "
               "callback=function(keys, args) return 1 end, flags={'no-writes'}}\n")
        for args in [("FUNCTION", "LOAD", lib), ("FUNCTION", "LOAD", lib),
                     ("FCALL", "myset", 1, "k", "v"),
                     ("FCALL", "myget", 1, "k"),
                     ("FCALL_RO", "myget", 1, "k"),
                     ("FCALL_RO", "ro", 0), ("FCALL", "nosuch", 0),
                     ("FCALL", "myget", "x"), ("FCALL", "myget", 5, "k"),
                     # (one function per listed library: Redis lists a
                     # library's functions in hash order)
                     ("FUNCTION", "LOAD", "#!lua name=one\n"
                      "redis.register_function{function_name='uno', "
                      "callback=function() return 1 end, description='d', "
                      "flags={'no-writes', 'allow-stale'}}"),
                     ("FUNCTION", "LIST", "LIBRARYNAME", "on*"),
                     ("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "one"),
                     ("FUNCTION", "LIST", "LIBRARYNAME"),
                     ("FUNCTION", "LIST", "bad"),
                     ("FUNCTION", "DELETE", "one"),
                     ("FUNCTION", "LIST", "LIBRARYNAME", "zz*"),
                     ("FUNCTION", "STATS"), ("FUNCTION", "DUMP"),
                     ("FUNCTION", "LOAD", "return 1"),
                     ("FUNCTION", "LOAD", "#!lua name=x\nreturn 1"),
                     ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('myget', function() end)"),
                     ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('a b', function() end)"),
                     ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function()"),
                     ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{function_name='q', callback=1}"),
                     ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{function_name='q', callback=function() end, flags={'bad'}}"),

                     ("FUNCTION", "LOAD", "#!lua name=x\nreturn +"),
                     ("FUNCTION", "LOAD", "#!lua name=x\nerror('nope')"),
                     ("FUNCTION", "LOAD", "#!lua name=x\nredis.call('ping')"),
                     ("FUNCTION", "LOAD", "#!lua name=x\nlocal v = string"),
                     ("FUNCTION", "LOAD", "#!lua name=x\nx = 1"),
                     ("FUNCTION", "LOAD", "#!lua name=envlib\n"
                      "local function helper() return string.rep('a', 3) .. "
                      "redis.call('ping').ok end\n"
                      "redis.log(redis.LOG_NOTICE, 'loading')\n"
                      "redis.register_function('envf', function() "
                      "return helper() end)"),
                     ("FCALL", "envf", 0),
                     ("FUNCTION", "LOAD", "#!lua name=envlib2\n"
                      "redis.register_function('envg', function() "
                      "return KEYS end)"),
                     ("FCALL", "envg", 0),
                     ("FUNCTION", "DELETE", "envlib"),
                     ("FUNCTION", "DELETE", "envlib2"),
                     ("FUNCTION", "LOAD", "#!lua\nreturn 1"),
                     ("FUNCTION", "LOAD", "#!lua name=a name=b\nreturn 1"),
                     ("FUNCTION", "LOAD", "#!js name=a\nreturn 1"),
                     ("FUNCTION", "LOAD", "#!lua name=a-b\nreturn 1"),
                     ("FUNCTION", "LOAD", "BAD", "x"),
                     ("FUNCTION", "DELETE", "nosuch"),
                     ("FUNCTION", "RESTORE", "garbage"),
                     ("FUNCTION", "DELETE", "mylib"), ("FUNCTION", "LIST"),
                     ("FUNCTION", "STATS"),
                     ("FUNCTION", "FLUSH")]:
            self.compare(ref, ours, *args)

    def test_function_dump_restores_across(self):
        ref, ours = self.both()
        lib = ("#!lua name=lib2\nredis.register_function('hello', "
               "function(keys, args) return 'hello ' .. (args[1] or 'world') "
               "end)\n")
        ref.call("FUNCTION", "LOAD", lib)
        ours.call("FUNCTION", "LOAD", lib)
        dumped_ref = ref.call("FUNCTION", "DUMP")
        self.assertEqual(ours.call("FUNCTION", "DUMP"), dumped_ref)
        payload = dumped_ref.split(b"\r\n", 1)[1][:-2]
        for conn in (ref, ours):
            self.assertEqual(conn.call("FUNCTION", "RESTORE", payload),
                             b"-ERR Library lib2 already exists\r\n")
            self.assertEqual(conn.call("FUNCTION", "RESTORE", payload,
                                       "REPLACE"), b"+OK\r\n")
            conn.call("FUNCTION", "FLUSH")
        # Each restores the other's payload.
        ours_payload = payload
        self.assertEqual(ours.call("FUNCTION", "RESTORE", payload), b"+OK\r\n")
        self.assertEqual(ref.call("FUNCTION", "RESTORE", ours_payload),
                         b"+OK\r\n")
        self.compare(ref, ours, "FCALL", "hello", 0, "you")
        bad = payload[:-1] + bytes([payload[-1] ^ 1])
        self.compare(ref, ours, "FUNCTION", "RESTORE", bad)


LIB_SCRIPTS = [
    "return cmsgpack.pack({1,2,3,{a=1}}, 'x', 1.5, 0.1, -1, -200, 70000, "
    "true, nil, 2^40, -2^40, 2^63, string.rep('y', 40), string.rep('z', 300))",
    "return cmsgpack.pack({1,nil,3})", "return cmsgpack.pack({[2]=1})",
    "return cmsgpack.pack({a={b={c={d={e={f={g={h={i={j={k={l={m={n={o={p="
    "{q={r=1}}}}}}}}}}}}}}}}})",
    "return cmsgpack.pack()", "return cmsgpack.pack(function() end)",
    "return {cmsgpack.unpack(cmsgpack.pack({1,2,3,{a=1}}, 'x', 7, -3, 1.5))}",
    "return cmsgpack.unpack('\\218')", "return cmsgpack.unpack('\\193')",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 0)}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 2)}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2, 0)}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 9)}",
    "return tostring(cmsgpack.unpack(cmsgpack.pack(0.1)))",
    "return struct.pack('>HiB', 1, -2, 3)", "return struct.pack('<d', 1.5)",
    "return struct.pack('!4 b i', 1, 2)", "return struct.pack('s', 'abc')",
    "return struct.pack('c5', 'abcdef')", "return struct.pack('c0', 'abc')",
    "return {struct.unpack('>HiB', struct.pack('>HiB', 1, -2, 3))}",
    "return {struct.unpack('s', 'ab\\0cd')}",
    "return {struct.unpack('Bc0', '\\3abcd')}",
    "return {struct.unpack('>I2', 'ab', 1)}",
    "return struct.size('>HiB')", "return struct.size('!8bd')",
    "return struct.pack('z')", "return struct.unpack('>I4', 'ab')",
    "return cjson.encode(function() end)",
    "return cjson.encode({[1]=1, [5]=5})", "return cjson.encode({[1]=1, [20]=5})",
    "return cjson.encode({1, 'a', {x=1}})",
    "return cjson.encode(0.1)", "return cjson.encode(1e20)",
    "return cjson.decode('\"\\\\u00e9\"')",
    "return cjson.decode('[1,')", "return cjson.decode('')",
    "return cjson.decode('{\"a\" 1}')", "return cjson.decode('{1:2}')",
    "return cjson.decode('[1 2]')", "return cjson.decode('\"abc')",
    "return cjson.decode('\"\\\\q\"')", "return cjson.decode('\"\\\\ud800\"')",
    "return cjson.decode('[1] x')", "return cjson.decode('tru')",
    "return cjson.decode('-')", "return cjson.decode('@')",
    "return cjson.decode('  [  ]  ')", "return cjson.decode('0x10')",
    "return tostring(cjson.decode('-0'))", "return cjson.decode('1e400') > 0",
    "return cjson.decode('[\"\\\\ud83d\\\\ude00\"]')[1]",
    "return cjson.decode(string.rep('[', 1001))",
    "return cjson.decode('{\"a\":{\"b\":[true,false,null,1.5]}}').a.b[4]",
    "return cjson.encode(cjson.decode('{\"a\":[1,2,{\"b\":null}]}'))",
]


class LibrariesInterop(ScriptingInterop):
    def test_libraries_same_bytes(self):
        ref, ours = self.both()
        for script in LIB_SCRIPTS:
            self.compare(ref, ours, "EVAL", script, 0)

    # Only the libraries here (the parent's tests run once).
    test_eval_same_bytes_resp2_and_resp3 = None
    test_evalsha_script_commands = None
    test_functions = None
    test_function_dump_restores_across = None
