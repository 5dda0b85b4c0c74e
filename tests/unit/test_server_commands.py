"""TIME, LASTSAVE, SHUTDOWN, ROLE, MONITOR (rcluster/commands/server.py) and
DEBUG (rcluster/commands/debug.py) through a Server on a fake clock."""
from rcluster.commands import debug
from tests.protocol.helpers import NOW, ServerTestCase, request

NOT_ALLOWED = (
    "ERR DEBUG command not allowed. If the enable-debug-command option is set "
    "to \"local\", you can run it from a local connection, otherwise you need "
    "to set this option in the configuration file, and then restart the "
    "server.")


class SmallCommandsTests(ServerTestCase):
    def test_time(self):
        self.clock.advance(0.25)
        self.assertEqual(self.call("TIME"), [str(NOW).encode(), b"250000"])

    def test_lastsave_and_role(self):
        self.assertEqual(self.call("LASTSAVE"), NOW)
        self.assertEqual(self.raw("ROLE"), b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")


class ShutdownTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.requests = []
        self.server.shutdown_hook = \
            lambda save, force: self.requests.append((save, force))

    def test_shutdown_calls_the_hook_and_answers_nothing(self):
        self.proto.dataReceived(request("SHUTDOWN", "NOSAVE") + request("PING"))
        self.assertEqual(self.requests, [(False, False)])
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.raw("SHUTDOWN", client=self.connect()), b"")
        self.assertEqual(self.raw("shutdown", "save", "now", "force",
                                  client=self.connect()), b"")
        self.assertEqual(self.requests,
                         [(False, False), (None, False), (True, True)])

    def test_errors(self):
        for args, error in [(("SAVE", "NOSAVE"), "ERR syntax error"),
                            (("ABORT", "NOW"), "ERR syntax error"),
                            (("LATER",), "ERR syntax error"),
                            (("ABORT",), "ERR No shutdown in progress.")]:
            self.assertEqual(self.call("SHUTDOWN", *args), error)
        self.assertEqual(self.requests, [])
        self.server.shutdown_hook = lambda save, force: \
            "ERR Errors trying to SHUTDOWN. Check logs."
        self.assertEqual(self.call("SHUTDOWN"),
                         "ERR Errors trying to SHUTDOWN. Check logs.")

    def test_not_in_multi(self):
        self.call("MULTI")
        self.assertEqual(self.call("SHUTDOWN"),
                         "ERR Command not allowed inside a transaction")


class MonitorTests(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.monitor_proto, self.monitor = self.connect()
        self.assertEqual(self.raw("MONITOR", client=(self.monitor_proto,
                                                     self.monitor)), b"+OK\r\n")
        self.monitor.clear()

    def lines(self):
        return self.monitor.value().decode().splitlines()

    def test_format(self):
        self.clock.advance(0.123456)
        self.raw("set", "k", 'a\x00\n"b')
        self.raw("GET", "k")
        self.assertEqual(self.lines(), [
            '+1700000000.123456 [0 127.0.0.1:40000] "set" "k" "a\\x00\\n\\"b"',
            '+1700000000.123456 [0 127.0.0.1:40000] "GET" "k"'])

    def test_hidden_and_redacted(self):
        self.raw("CONFIG", "GET", "maxclients")
        self.raw("DEBUG", "SLEEP", "0")
        self.raw("AUTH", "user", "secret")
        self.raw("HELLO", "2", "AUTH", "default", "pw", "SETNAME", "x")
        self.raw("NOSUCHCOMMAND")
        self.assertEqual([line.split("] ", 1)[1] for line in self.lines()], [
            '"AUTH" "(redacted)" "(redacted)"',
            '"HELLO" "2" "AUTH" "(redacted)" "(redacted)" "SETNAME" "x"'])

    def test_transactions_show_in_execution_order(self):
        self.proto.dataReceived(request("MULTI") + request("SET", "a", "1") +
                                request("INCR", "a") + request("EXEC"))
        self.assertEqual([line.split("] ", 1)[1] for line in self.lines()],
                         ['"MULTI"', '"SET" "a" "1"', '"INCR" "a"', '"EXEC"'])

    def test_blocked_commands_show_once(self):
        waiter = self.connect()
        self.raw("BLPOP", "q", "0", client=waiter)
        self.raw("RPUSH", "q", "x")
        self.assertEqual([line.split("] ", 1)[1] for line in self.lines()],
                         ['"BLPOP" "q" "0"', '"RPUSH" "q" "x"'])

    def test_monitor_again_and_leaving(self):
        monitor_client = (self.monitor_proto, self.monitor)
        self.assertEqual(self.raw("MONITOR", client=monitor_client), b"")
        self.assertIn(b" flags=O ", self.call("CLIENT", "LIST"))
        self.monitor_proto.connectionLost(None)
        self.raw("PING")
        self.assertIsNone(self.server.monitor)

    def test_unix_socket_clients(self):
        self.server.settings.unixsocket = "/tmp/redis.sock"
        self.proto.client.addr = "/tmp/redis.sock:0"
        self.raw("PING")
        self.assertEqual(self.lines()[0].split(" ", 1)[1],
                         '[0 unix:/tmp/redis.sock] "PING"')

    def test_monitor_in_multi(self):
        self.call("MULTI")
        self.call("MONITOR")
        self.assertEqual(self.raw("EXEC"),
                         b"*1\r\n-ERR MONITOR isn't allowed for DENY BLOCKING "
                         b"client\r\n")


class DebugGateTests(ServerTestCase):
    def test_disabled_by_default(self):
        self.assertEqual(self.call("DEBUG", "SLEEP", "0"), NOT_ALLOWED)

    def test_local(self):
        self.server.settings.enable_debug_command = "local"
        self.server.settings.protected_mode = False
        self.assertEqual(self.call("DEBUG", "SLEEP", "0"), b"OK")
        remote = self.connect(host="10.1.2.3")
        self.assertEqual(self.call("DEBUG", "SLEEP", "0", client=remote),
                         NOT_ALLOWED)
        self.server.settings.unixsocket = "/tmp/redis.sock"
        remote[0].client.addr = "/tmp/redis.sock:0"
        self.assertEqual(self.call("DEBUG", "SLEEP", "0", client=remote),
                         b"OK")


class DebugTests(ServerTestCase):
    directives = {"enable_debug_command": "yes"}

    def test_sleep_parks_only_its_client(self):
        sleeper_proto, sleeper = self.connect()
        sleeper_proto.dataReceived(request("DEBUG", "SLEEP", "1.5") +
                                   request("PING"))
        self.assertEqual(sleeper.value(), b"")
        self.assertEqual(self.call("PING"), b"PONG")      # the reactor runs
        self.clock.advance(1.4)
        self.assertEqual(sleeper.value(), b"")
        self.clock.advance(0.1)
        self.assertEqual(sleeper.value(), b"+OK\r\n+PONG\r\n")

    def test_sleep_parsing(self):
        self.assertEqual(self.call("DEBUG", "SLEEP", "abc"), b"OK")
        sleeper = self.connect()
        self.assertEqual(self.raw("DEBUG", "SLEEP", "0.5s", client=sleeper),
                         b"")
        self.clock.advance(0.5)
        self.assertEqual(sleeper[1].value(), b"+OK\r\n")

    def test_object(self):
        self.call("SET", "n", "123")
        self.call("RPUSH", "l", "a", "b", "c")
        self.assertRegex(self.call("DEBUG", "OBJECT", "n").decode(),
                         r"^Value at:0x[0-9a-f]+ refcount:2147483647 "
                         r"encoding:int serializedlength:2 lru:\d+ "
                         r"lru_seconds_idle:0$")
        self.assertRegex(self.call("DEBUG", "OBJECT", "l").decode(),
                         r" encoding:quicklist .* ql_nodes:1 ql_avg_node:3.00 "
                         r"ql_listpack_max:-2 ql_compressed:0 "
                         r"ql_uncompressed_size:16$")
        self.assertEqual(self.call("DEBUG", "OBJECT", "missing"),
                         "ERR no such key")

    def test_quicklist_estimate_matches_redis(self):
        # redis-server 7.0.15: 20 elements of 1000 bytes.
        self.call("RPUSH", "l", *[b"x" * 1000] * 20)
        self.assertTrue(self.call("DEBUG", "OBJECT", "l").endswith(
            b" ql_nodes:3 ql_avg_node:6.67 ql_listpack_max:-2 "
            b"ql_compressed:0 ql_uncompressed_size:20101"))

    def test_set_active_expire(self):
        self.call("SET", "k", "v", "PX", "100")
        self.assertEqual(self.call("DEBUG", "SET-ACTIVE-EXPIRE", "0"), b"OK")
        self.clock.advance(1)
        self.server.cron()
        self.assertEqual(self.server.keyspace.count, 1)
        self.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        self.server.cron()
        self.assertEqual(self.server.keyspace.count, 0)

    def test_populate(self):
        self.call("SET", "key:1", "mine")
        self.assertEqual(self.call("DEBUG", "POPULATE", "3"), b"OK")
        self.assertEqual(self.call("MGET", "key:0", "key:1", "key:2"),
                         [b"value:0", b"mine", b"value:2"])
        self.call("DEBUG", "POPULATE", "2", "p", "3")
        self.assertEqual(self.call("GET", "p:1"), b"val")
        self.call("DEBUG", "POPULATE", "1", "z", "10")
        self.assertEqual(self.call("GET", "z:0"), b"value:0\x00\x00\x00")
        self.assertEqual(self.call("DEBUG", "POPULATE", "-1"),
                         "ERR value is out of range, must be positive")

    def test_protocol(self):
        self.assertEqual(self.raw("DEBUG", "PROTOCOL", "map"),
                         b"*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n")
        self.assertEqual(self.raw("DEBUG", "PROTOCOL", "bignum"),
                         b"$37\r\n1234567999999999999999999999999999999\r\n")
        self.assertEqual(self.call("DEBUG", "PROTOCOL", "push"),
                         "ERR RESP2 is not supported by this command")
        self.raw("HELLO", "3")
        self.assertEqual(self.raw("DEBUG", "PROTOCOL", "map"),
                         b"%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n")
        self.assertEqual(self.raw("DEBUG", "PROTOCOL", "double"),
                         b",3.141\r\n")
        self.assertEqual(self.raw("DEBUG", "PROTOCOL", "push"),
                         b">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n$40\r\nSome "
                         b"real reply following the push reply\r\n")
        self.assertEqual(self.raw("DEBUG", "PROTOCOL", "verbatim"),
                         b"=29\r\ntxt:This is a verbatim\nstring\r\n")

    def test_error_and_log(self):
        self.assertEqual(self.raw("DEBUG", "ERROR", "FOO bar\nbaz"),
                         b"-FOO bar baz\r\n")
        self.assertEqual(self.call("DEBUG", "LOG", "hello"), b"OK")

    def test_change_repl_id(self):
        before = self.call("INFO", "replication")
        self.assertEqual(self.call("DEBUG", "CHANGE-REPL-ID"), b"OK")
        self.assertNotEqual(self.call("INFO", "replication"), before)

    def test_help_and_unknown(self):
        lines = self.call("DEBUG", "HELP")
        self.assertEqual(lines[0], b"DEBUG <subcommand> [<arg> [value] [opt] "
                                   b"...]. Subcommands are:")
        self.assertIn(b"SLEEP <seconds>", lines)
        self.assertEqual(self.call("DEBUG", "JMAP"),
                         "ERR unknown subcommand or wrong number of arguments "
                         "for 'JMAP'. Try DEBUG HELP.")
        self.assertEqual(self.call("debug", "sleep"),
                         "ERR unknown subcommand or wrong number of arguments "
                         "for 'sleep'. Try DEBUG HELP.")

    def test_registry(self):
        @debug.debug_subcommand("answer", 2, 3, help=("ANSWER [<x>]",
                                                      "    Answers."))
        def answer(c, argv):
            return 42
        self.addCleanup(debug._SUBCOMMANDS.pop, "answer")
        self.assertEqual(self.call("DEBUG", "ANSWER"), 42)
        self.assertEqual(self.call("DEBUG", "ANSWER", "x"), 42)
        self.assertIn(b"ANSWER [<x>]", self.call("DEBUG", "HELP"))
