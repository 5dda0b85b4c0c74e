"""Scripting, sans-IO: EVAL through a Server on a fake clock - type
conversion in both RESP versions, redis.call vs redis.pcall error shapes,
the sandbox, the script cache, functions, effects propagation and the
busy-script machinery (count hook, -BUSY, SCRIPT KILL, UNKILLABLE).
The same replies are checked byte for byte against redis-server in
tests/interop/test_scripting_interop.py."""
from __future__ import annotations

from tests.protocol.helpers import connect, exchange, make_server, request
from twisted.trial.unittest import TestCase


class ScriptingTests(TestCase):
    def setUp(self):
        self.server, self.clock = make_server()
        self.proto, self.transport = connect(self.server)

    def ticking_clock(self):
        """Each clock read moves time on 50 ms (the script's hook reads it
        every 100000 instructions)."""
        now = [self.clock.seconds()]

        def seconds():
            now[0] += 0.05
            return now[0]
        self.clock.seconds = seconds

    def q(self, *args):
        return exchange(self.proto, self.transport, request(*args))

    def test_lua_to_resp2(self):
        self.assertEqual(self.q("EVAL", "return {1,2,3,'x',nil,4}", 0),
                         b"*4\r\n:1\r\n:2\r\n:3\r\n$1\r\nx\r\n")
        self.assertEqual(self.q("EVAL", "return 3.99", 0), b":3\r\n")
        self.assertEqual(self.q("EVAL", "return {true,false}", 0),
                         b"*2\r\n:1\r\n$-1\r\n")
        self.assertEqual(self.q("EVAL", "return {double=1.5}", 0),
                         b"$3\r\n1.5\r\n")
        self.assertEqual(self.q("EVAL", "return {map={a=1}}", 0),
                         b"*2\r\n$1\r\na\r\n:1\r\n")
        self.assertEqual(self.q("EVAL", "return {ok='FINE'}", 0),
                         b"+FINE\r\n")

    def test_lua_to_resp3(self):
        self.q("HELLO", "3")
        self.assertEqual(self.q("EVAL", "return {double=1.5}", 0),
                         b",1.5\r\n")
        self.assertEqual(self.q("EVAL", "return {map={a=1}}", 0),
                         b"%1\r\n$1\r\na\r\n:1\r\n")
        self.assertEqual(self.q("EVAL", "return {set={a=true}}", 0),
                         b"~1\r\n$1\r\na\r\n")
        self.assertEqual(self.q("EVAL", "redis.setresp(3) return true", 0),
                         b"#t\r\n")
        self.assertEqual(self.q("EVAL", "return nil", 0), b"_\r\n")

    def test_redis_to_lua(self):
        self.q("HSET", "h", "f", "v")
        self.assertEqual(self.q("EVAL", "return type(redis.call('hgetall', "
                                "'h'))", 0), b"$5\r\ntable\r\n")
        self.assertEqual(self.q("EVAL", "redis.setresp(3) return "
                                "redis.call('hgetall', 'h').map.f", 0),
                         b"$1\r\nv\r\n")
        self.assertEqual(self.q("EVAL", "return tostring(redis.call('get', "
                                "'nokey'))", 0), b"$5\r\nfalse\r\n")
        self.assertEqual(self.q("EVAL", "redis.setresp(3) return tostring("
                                "redis.call('get', 'nokey'))", 0),
                         b"$3\r\nnil\r\n")
        self.assertEqual(self.q("EVAL", "return redis.call('set', 'a', 'b')"
                                ".ok", 0), b"$2\r\nOK\r\n")

    def test_call_vs_pcall_errors(self):
        self.assertEqual(
            self.q("EVAL", "return redis.call('incr','a','b')", 0),
            b"-ERR Wrong number of args calling Redis command from script "
            b"script: 6eba4e311779d6008f131fae6b48c40f8247503f, on "
            b"@user_script:1.\r\n")
        self.assertEqual(
            self.q("EVAL", "return redis.pcall('incr','a','b')", 0),
            b"-ERR Wrong number of args calling Redis command from script"
            b"\r\n")
        self.assertEqual(
            self.q("EVAL", "local ok, e = pcall(redis.call, 'set') "
                   "return e", 0),
            b"$58\r\nERR Wrong number of args calling Redis command from "
            b"script\r\n")
        self.q("SET", "s", "x")
        self.assertEqual(
            self.q("EVAL", "return redis.pcall('incr', 's').err", 0),
            b"$43\r\nERR value is not an integer or out of range\r\n")

    def test_sandbox(self):
        self.assertIn(b"Attempt to modify a readonly table",
                      self.q("EVAL", "x = 1", 0))
        self.assertIn(b"Attempt to modify a readonly table",
                      self.q("EVAL", "rawset(_G, 'x', 1)", 0))
        self.assertIn(b"Attempt to modify a readonly table",
                      self.q("EVAL", "string.x = 1", 0))
        for name in ("loadfile", "dofile", "io", "os", "print", "debug",
                     "python", "require"):
            self.assertIn(b"nonexistent global variable '%s'" % name.encode(),
                          self.q("EVAL", "return %s" % name, 0))
        # Python objects behind the API expose no attributes.
        self.assertTrue(self.q("EVAL", "return redis.call.__class__", 0)
                        .startswith(b"-ERR user_script:1: access denied"))

    def test_script_cache_and_info(self):
        sha = self.q("SCRIPT", "LOAD", "return 7").split(b"\r\n")[1]
        self.assertEqual(self.q("EVALSHA", sha, 0), b":7\r\n")
        self.assertEqual(self.q("SCRIPT", "EXISTS", sha, "0" * 40),
                         b"*2\r\n:1\r\n:0\r\n")
        self.assertIn(b"number_of_cached_scripts:1", self.q("INFO", "memory"))
        self.assertEqual(self.q("SCRIPT", "FLUSH"), b"+OK\r\n")
        self.assertIn(b"NOSCRIPT", self.q("EVALSHA", sha, 0))
        self.assertIn(b"number_of_cached_scripts:0", self.q("INFO", "memory"))

    def test_effects_propagate_as_multi_exec(self):
        ops = []
        self.server.write_path.add_sink(lambda db, batch: ops.extend(batch))
        self.q("EVAL", "redis.call('set', KEYS[1], 'a') "
               "redis.call('incr', KEYS[2]) return 1", 2, "k", "n")
        self.assertEqual(ops, [[b"MULTI"], [b"set", b"k", b"a"],
                               [b"incr", b"n"], [b"EXEC"]])
        del ops[:]
        self.q("EVAL", "return redis.call('get', KEYS[1])", 1, "k")
        self.assertEqual(ops, [])

    def test_functions(self):
        self.assertEqual(self.q(
            "FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function("
            "'f', function(keys, args) return redis.call('incr', keys[1]) "
            "end)"), b"$3\r\nlib\r\n")
        self.assertEqual(self.q("FCALL", "f", 1, "c"), b":1\r\n")
        dump = self.server.scripts.functions.dump()
        self.q("FUNCTION", "FLUSH")
        self.assertIn(b"Function not found", self.q("FCALL", "f", 1, "c"))
        self.assertEqual(self.q("FUNCTION", "RESTORE", dump), b"+OK\r\n")
        self.assertEqual(self.q("FCALL", "f", 1, "c"), b":2\r\n")
        self.assertEqual(self.server.scripts.function_codes(),
                         [self.server.scripts.functions.libraries[b"lib"].code])

    def test_busy_script_gets_killed(self):
        """The count hook runs process_events past the threshold: there,
        another client gets -BUSY, SCRIPT KILL is served, and the script
        ends with the kill error."""
        self.server.settings.apply("busy-reply-threshold", ["100"])
        other, other_t = connect(self.server, ("127.0.0.1", 40001))
        seen = []

        self.ticking_clock()

        def events():
            if not seen:
                seen.append(exchange(other, other_t, request("PING")))
                seen.append(exchange(other, other_t,
                                     request("SCRIPT", "KILL")))
        self.server.scripts.process_events = events
        reply = self.q("EVAL", "while true do end", 0)
        self.assertTrue(seen[0].startswith(b"-BUSY Redis is busy running a "
                                           b"script. You can only call "
                                           b"SCRIPT KILL"))
        self.assertEqual(seen[1], b"+OK\r\n")
        self.assertTrue(reply.startswith(
            b"-ERR Script killed by user with SCRIPT KILL..."))
        self.assertEqual(self.q("PING"), b"+PONG\r\n")

    def test_busy_script_that_wrote_is_unkillable(self):
        self.server.settings.apply("busy-reply-threshold", ["100"])
        other, other_t = connect(self.server, ("127.0.0.1", 40001))
        seen = []

        self.ticking_clock()

        def events():
            if len(seen) < 1:
                seen.append(exchange(other, other_t,
                                     request("SCRIPT", "KILL")))
                # Let the script end on its own.
                self.server.scripts.ctx.dirty = True
        self.server.scripts.process_events = events
        reply = self.q("EVAL", "redis.call('set', 'x', 1) local i = 0 "
                       "while i < 300000 do i = i + 1 end return i", 0)
        self.assertTrue(seen[0].startswith(b"-UNKILLABLE Sorry the script "
                                           b"already executed write"))
        self.assertEqual(reply, b":300000\r\n")

    def test_function_load_timeout(self):
        self.ticking_clock()
        self.assertEqual(
            self.q("FUNCTION", "LOAD", "#!lua name=slow\nwhile true do end"),
            b"-ERR Error registering functions: ERR FUNCTION LOAD timeout\r\n")
        self.assertEqual(self.q("FUNCTION", "LIST"), b"*0\r\n")

    def test_read_only_replica(self):
        self.server.role = "replica"
        self.assertEqual(
            self.q("EVAL", "return redis.pcall('set', 'a', 'b')", 0),
            b"-READONLY You can't write against a read only replica.\r\n")
        self.assertEqual(self.q("EVAL", "return redis.call('get', 'a')", 0),
                         b"$-1\r\n")
        self.assertEqual(
            self.q("EVAL", "#!lua\nreturn 1", 0),
            b"-READONLY Can not run script with write flag on readonly "
            b"replica\r\n")
        self.assertEqual(
            self.q("EVAL", "#!lua flags=no-writes\nreturn 1", 0), b":1\r\n")
        self.assertEqual(self.q("EVAL_RO", "return 2", 0), b":2\r\n")
