"""Settings (rcluster/config.py) and the CONFIG command
(rcluster/commands/config.py): Redis 7.0.15's replies and error texts."""
import os
import tempfile

from twisted.trial.unittest import TestCase

from rcluster.config import ConfigError, Settings, format_memory, repr_bytes
from tests.protocol.helpers import ServerTestCase


class ConfigGetTests(ServerTestCase):
    def test_exact_names_answer_as_spelled(self):
        self.assertEqual(self.call("CONFIG", "GET", "MAXCLIENTS", "maxclients",
                                   "maxc*"), [b"MAXCLIENTS", b"10000"])
        self.assertEqual(self.call("CONFIG", "GET", "slaveof", "replicaof",
                                   "nosuch"),
                         [b"slaveof", b"", b"replicaof", b""])

    def test_patterns_match_names_and_aliases(self):
        reply = self.call("CONFIG", "GET", "hash-max-*")
        self.assertEqual(dict(zip(reply[::2], reply[1::2])), {
            b"hash-max-listpack-entries": b"512",
            b"hash-max-ziplist-entries": b"512",
            b"hash-max-listpack-value": b"64",
            b"hash-max-ziplist-value": b"64"})

    def test_everything(self):
        reply = self.call("CONFIG", "GET", "*")
        values = dict(zip(reply[::2], reply[1::2]))
        self.assertEqual(len(values), len(reply) // 2)
        # The value formats of redis-server 7.0.15's defaults.
        self.assertEqual(values[b"client-output-buffer-limit"],
                         b"normal 0 0 0 slave 268435456 67108864 60 "
                         b"pubsub 33554432 8388608 60")
        self.assertEqual(values[b"save"], b"3600 1 300 100 60 10000")
        self.assertEqual(values[b"appendonly"], b"no")
        self.assertEqual(values[b"dir"], os.getcwd().encode())
        self.assertEqual(values[b"oom-score-adj-values"], b"0 200 800")

    def test_resp3_map(self):
        self.raw("HELLO", "3")
        self.assertEqual(self.raw("CONFIG", "GET", "maxclients"),
                         b"%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n")

    def test_arity(self):
        self.assertEqual(self.call("CONFIG", "GET"),
                         "ERR wrong number of arguments for 'config|get' "
                         "command")
        self.assertEqual(self.call("CONFIG"),
                         "ERR wrong number of arguments for 'config' command")


class ConfigSetTests(ServerTestCase):
    def get(self, name):
        return self.call("CONFIG", "GET", name)[1]

    def test_set_several(self):
        self.assertEqual(self.call("CONFIG", "SET", "maxclients", "50",
                                   "timeout", "30", "loglevel", "WARNING"),
                         b"OK")
        self.assertEqual([self.get("maxclients"), self.get("timeout"),
                          self.get("loglevel")], [b"50", b"30", b"warning"])

    def test_all_or_nothing(self):
        self.assertEqual(self.call("CONFIG", "SET", "hz", "5", "maxclients",
                                   "abc"),
                         "ERR CONFIG SET failed (possibly related to argument "
                         "'maxclients') - argument couldn't be parsed into an "
                         "integer")
        self.assertEqual(self.get("hz"), b"10")

    def test_errors(self):
        cases = [
            (("nosuch", "1", "maxclients", "5"),
             "ERR Unknown option or number of arguments for CONFIG SET - "
             "'nosuch'"),
            (("maxclients", "10", "MAXCLIENTS", "11"),
             "ERR CONFIG SET failed (possibly related to argument "
             "'MAXCLIENTS') - duplicate parameter"),
            (("port", "1"), "ERR CONFIG SET failed (possibly related to "
             "argument 'port') - can't set immutable config"),
            (("enable-debug-command", "yes"), "ERR CONFIG SET failed "
             "(possibly related to argument 'enable-debug-command') - can't "
             "set immutable config"),
            (("dir", "/tmp"), "ERR CONFIG SET failed (possibly related to "
             "argument 'dir') - can't set protected config"),
            (("save", "100 1 200"), "ERR CONFIG SET failed (possibly related "
             "to argument 'save') - Invalid save parameters"),
            (("maxmemory", "1x"), "ERR CONFIG SET failed (possibly related "
             "to argument 'maxmemory') - argument must be a memory value"),
            (("appendfsync", "foo"), "ERR CONFIG SET failed (possibly "
             "related to argument 'appendfsync') - argument(s) must be one of "
             "the following: everysec, always, no"),
            (("protected-mode", "maybe"), "ERR CONFIG SET failed (possibly "
             "related to argument 'protected-mode') - argument must be 'yes' "
             "or 'no'"),
            (("maxclients", "0"), "ERR CONFIG SET failed (possibly related "
             "to argument 'maxclients') - argument must be between 1 and "
             "4294967295 inclusive"),
            (("client-output-buffer-limit", "normal 1 2"), "ERR CONFIG SET "
             "failed (possibly related to argument 'client-output-buffer-"
             "limit') - Wrong number of arguments in buffer limit "
             "configuration."),
            (("slave-read-only", "x"), "ERR CONFIG SET failed (possibly "
             "related to argument 'replica-read-only') - argument must be "
             "'yes' or 'no'"),
            (("notify-keyspace-events", "Q"), "ERR CONFIG SET failed "
             "(possibly related to argument 'notify-keyspace-events') - "
             "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
            (("a", "b", "c"), "ERR syntax error"),
        ]
        for args, error in cases:
            self.assertEqual(self.call("CONFIG", "SET", *args), error)

    def test_normalised_values(self):
        for name, value, shown in [
                ("hz", "1000", b"500"), ("hz", "0", b"1"),
                ("maxmemory", "1GB", b"1073741824"),
                ("save", "", b""), ("save", "900 1 300 10", b"900 1 300 10"),
                ("notify-keyspace-events", "KEA", b"AKE"),
                ("notify-keyspace-events", "nA", b"A"),
                ("notify-keyspace-events", "mtdKx$", b"$xtdKm"),
                ("client-output-buffer-limit", "slave 1 2 3",
                 b"normal 0 0 0 slave 1 2 3 pubsub 33554432 8388608 60"),
                ("latency-tracking-info-percentiles", "50.5 99 100",
                 b"50.5 99 100")]:
            self.assertEqual(self.call("CONFIG", "SET", name, value), b"OK")
            self.assertEqual(self.get(name), shown, name)

    def test_protected_configs_when_allowed(self):
        self.server.settings.enable_protected_configs = "local"
        self.server.settings.protected_mode = False
        remote = self.connect(host="10.0.0.1")
        self.assertEqual(self.call("CONFIG", "SET", "dbfilename", "x.rdb",
                                   client=remote),
                         "ERR CONFIG SET failed (possibly related to argument "
                         "'dbfilename') - can't set protected config")
        self.assertEqual(self.call("CONFIG", "SET", "dbfilename", "x.rdb"),
                         b"OK")
        self.assertEqual(self.call("CONFIG", "SET", "dbfilename", "a/b"),
                         "ERR CONFIG SET failed (possibly related to argument "
                         "'dbfilename') - dbfilename can't be a path, just a "
                         "filename")

    def test_requirepass_applies_to_new_connections(self):
        self.assertEqual(self.call("CONFIG", "SET", "requirepass", "s3cret"),
                         b"OK")
        self.assertEqual(self.call("PING"), b"PONG")
        newcomer = self.connect()
        self.assertEqual(self.call("PING", client=newcomer),
                         "NOAUTH Authentication required.")
        self.assertEqual(self.call("AUTH", "s3cret", client=newcomer), b"OK")

    def test_timeout_is_live(self):
        self.call("CONFIG", "SET", "timeout", "10")
        idle_proto, idle_transport = self.connect()
        self.clock.advance(11)
        self.server.cron()
        self.assertTrue(idle_transport.disconnecting)

    def test_listener_failure_undoes_everything(self):
        def refuse(name, value):
            if name == "timeout":
                raise ConfigError("nope")
        self.server.settings.listeners.append(refuse)
        self.assertEqual(self.call("CONFIG", "SET", "maxclients", "7",
                                   "timeout", "3"),
                         "ERR CONFIG SET failed (possibly related to argument "
                         "'timeout') - nope")
        self.assertEqual((self.get("maxclients"), self.get("timeout")),
                         (b"10000", b"0"))


class ConfigMiscTests(ServerTestCase):
    def test_resetstat(self):
        self.call("SET", "a", "1")
        self.call("NOSUCH")
        self.call("GET", "a")
        self.assertEqual(self.call("CONFIG", "RESETSTAT"), b"OK")
        info = self.call("INFO", "stats", "commandstats",
                         "errorstats").decode()
        self.assertIn("total_commands_processed:1\r\n", info)  # RESETSTAT
        self.assertIn("keyspace_hits:0\r\n", info)
        self.assertIn("total_error_replies:0\r\n", info)
        self.assertNotIn("cmdstat_set", info)
        self.assertNotIn("errorstat_", info)
        self.assertIn("cmdstat_config|resetstat:calls=1,", info)

    def test_help(self):
        self.assertEqual(self.call("CONFIG", "HELP"), [
            b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"GET <pattern>",
            b"    Return parameters matching the glob-like <pattern> and their "
            b"values.",
            b"SET <directive> <value>",
            b"    Set the configuration <directive> to <value>.",
            b"RESETSTAT",
            b"    Reset statistics reported by the INFO command.",
            b"REWRITE",
            b"    Rewrite the configuration file.",
            b"HELP",
            b"    Prints this help."])

    def test_rewrite_without_file(self):
        self.assertEqual(self.call("CONFIG", "REWRITE"),
                         "ERR The server is running without a config file")

    def test_rewrite_through_the_command(self):
        path = os.path.join(tempfile.mkdtemp(), "node.conf")
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        with open(path, "w") as fh:
            fh.write("# mine\nmaxclients 100\n")
        self.server.settings.config_file = path
        self.call("CONFIG", "SET", "maxclients", "200")
        self.assertEqual(self.call("CONFIG", "REWRITE"), b"OK")
        with open(path) as fh:
            self.assertEqual(fh.read().splitlines()[:2],
                             ["# mine", "maxclients 200"])


class RewriteTests(TestCase):
    """CONFIG REWRITE on a temporary file, line for line as Redis 7.0.15
    rewrote the same file (checked with redis-server)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "r.conf")
        self.cwd = os.getcwd()
        os.chdir(self.dir)
        self.addCleanup(os.chdir, self.cwd)

    def tearDown(self):
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def write(self, text):
        with open(self.path, "w") as fh:
            fh.write(text)

    def read(self):
        with open(self.path) as fh:
            return fh.read()

    def test_rewrite_like_redis(self):
        self.write("# my comment\nport 7720\n  maxmemory 100mb  \nsave 100 1\n"
                   "save 200 2\n\n\n\nhash-max-ziplist-entries 100\n"
                   "include /dev/null\nhz 10\nbind 127.0.0.1\n")
        settings = Settings()
        settings.load_file(self.path)
        self.assertEqual(settings.save, "100 1 200 2")   # lines add up
        with open(self.path, "a") as fh:       # edited while running
            fh.write("foo-unknown 1 2\nmaxmemory 5\nrename-command FOO BAR\n")
        settings.config_set([("maxmemory", "1gb"), ("timeout", "5"),
                             ("requirepass", 'a b"c'), ("save", "")])
        settings.rewrite()
        self.assertEqual(self.read(), (
            "# my comment\n"
            "port 7720\n"
            "maxmemory 1gb\n"
            'save ""\n'
            "\n"
            "hash-max-listpack-entries 100\n"
            "include /dev/null\n"
            "hz 10\n"
            "bind 127.0.0.1\n"
            "# ??? foo-unknown 1 2\n"
            "\n"
            "rename-command FOO BAR\n"
            "\n"
            "# Generated by CONFIG REWRITE\n"
            "timeout 5\n"
            f'dir "{os.getcwd()}"\n'
            'requirepass "a b\\"c"\n'
            "latency-tracking-info-percentiles 50 99 99.9\n"))
        # A second rewrite keeps the file as it is.
        settings.rewrite()
        self.assertEqual(self.read().count("# Generated by CONFIG REWRITE"), 1)
        again = Settings()
        again.load_file(self.path)
        self.assertEqual((again.maxmemory, again.timeout, again.requirepass,
                          again.save), (1 << 30, 5, 'a b"c', ""))

    def test_missing_file_is_created(self):
        settings = Settings()
        settings.config_set([("maxclients", "5"),
                             ("client-output-buffer-limit",
                              "pubsub 64mb 16mb 30")])
        settings.rewrite(self.path)
        lines = self.read().splitlines()
        self.assertEqual(lines[0], "# Generated by CONFIG REWRITE")
        self.assertIn("maxclients 5", lines)
        self.assertIn("client-output-buffer-limit pubsub 64mb 16mb 30", lines)
        self.assertNotIn("client-output-buffer-limit normal 0 0 0", lines)

    def test_force_all(self):
        Settings().rewrite(self.path, force_all=True)
        lines = self.read().splitlines()
        self.assertIn("maxclients 10000", lines)
        self.assertIn("appendonly no", lines)

    def test_unwritable(self):
        os.chmod(self.dir, 0o500)
        self.addCleanup(os.chmod, self.dir, 0o700)
        if os.access(self.dir, os.W_OK):
            self.skipTest("running as root: permissions are not enforced")
        err = self.assertRaises(ConfigError, Settings().rewrite, self.path)
        self.assertEqual(str(err), "Rewriting config file: Permission denied")


class HelpersTests(TestCase):
    def test_format_memory(self):
        self.assertEqual([format_memory(v) for v in
                          (0, 1000, 1024, 3 << 20, 1 << 30, 1536)],
                         ["0", "1000", "1kb", "3mb", "1gb", "1536"])

    def test_repr_bytes(self):
        self.assertEqual(repr_bytes(b'a"b\\c\n\x00\xff'),
                         '"a\\"b\\\\c\\n\\x00\\xff"')
