"""COMMAND and INFO (rcluster/commands/introspection.py), through a Server on
a fake clock: exact bytes as Redis 7.0.15 sends them, and redis-py's
cluster CommandsParser fed from our COMMAND / COMMAND GETKEYS."""
from redis._parsers.commands import CommandsParser
from redis._parsers.helpers import parse_command
from redis.exceptions import ResponseError
from twisted.trial.unittest import TestCase
from zope.interface import provider

from rcluster.commands import introspection
from rcluster.commands.table import (Command, CommandTable, KeySpec,
                                     _legacy_range, key_range)
from rcluster.server import Server
from tests.protocol.helpers import NOW, ServerTestCase, connect


# Redis 7.0.15's own bytes (redis-server, COMMAND INFO get config|get nosuch).
GET_INFO = (
    b"*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
    b"*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n"
    b"*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n"
    b"$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\n"
    b"find_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n"
    b"$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n")
CONFIG_GET_INFO = (
    b"*10\r\n$10\r\nconfig|get\r\n:-3\r\n*4\r\n+admin\r\n+noscript\r\n"
    b"+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n*3\r\n+@admin\r\n+@slow\r\n"
    b"+@dangerous\r\n*0\r\n*0\r\n*0\r\n")
# The same in RESP3 (after HELLO 3): sets and maps where Redis uses them.
GET_INFO_RESP3 = (
    b"*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
    b"~3\r\n+@read\r\n+@string\r\n+@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n"
    b"~2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n"
    b"$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\n"
    b"find_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n"
    b"$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n")


class CommandInfoTests(ServerTestCase):
    def test_info_bytes_match_redis(self):
        self.assertEqual(self.raw("COMMAND", "INFO", "get", "config|get",
                                  "nosuch"),
                         b"*3\r\n" + GET_INFO + CONFIG_GET_INFO + b"$-1\r\n")

    def test_info_resp3(self):
        self.raw("HELLO", "3")
        self.assertEqual(self.raw("COMMAND", "INFO", "get"),
                         b"*1\r\n" + GET_INFO_RESP3)

    def test_unknown_names_and_subcommands_are_null(self):
        self.assertEqual(self.call("COMMAND", "INFO", "get|x", "config|nosuch",
                                   "config|get|x"), [None, None, None])

    def test_all_commands(self):
        everything = self.call("COMMAND")
        self.assertEqual(len(everything), len(self.server.table))
        self.assertEqual(self.call("COMMAND", "INFO"), everything)
        self.assertEqual(self.call("COMMAND", "COUNT"), len(everything))

    def test_container_lists_subcommands(self):
        config = self.call("COMMAND", "INFO", "config")[0]
        self.assertEqual(config[:7], [b"config", -2, [], 0, 0, 0, [b"@slow"]])
        self.assertIn([b"config|get", -3,
                       [b"admin", b"noscript", b"loading", b"stale"], 0, 0, 0,
                       [b"@admin", b"@slow", b"@dangerous"], [], [], []],
                      config[9])

    def test_legacy_range_and_movable_keys(self):
        info = {row[0]: row for row in self.call("COMMAND", "INFO", "mset",
                                                 "blpop", "smove",
                                                 "zunionstore")}
        self.assertEqual(info[b"mset"][3:6], [1, -1, 2])
        self.assertEqual(info[b"blpop"][3:6], [1, -2, 1])
        self.assertEqual(info[b"smove"][3:6], [1, 2, 1])  # two merged specs
        self.assertEqual(info[b"zunionstore"][2],
                         [b"write", b"denyoom", b"movablekeys"])
        self.assertEqual(info[b"zunionstore"][3:6], [1, 1, 1])

    def test_tips_and_not_key_specs(self):
        [spublish] = self.call("COMMAND", "INFO", "spublish")
        self.assertEqual(spublish[8][0][:2], [b"flags", [b"not_key"]])
        [config_set] = self.call("COMMAND", "INFO", "config|set")
        self.assertEqual(config_set[7], [b"request_policy:all_nodes",
                                         b"response_policy:all_succeeded"])


class LegacyRangeTests(TestCase):
    def test_one_range_spec(self):
        self.assertEqual(_legacy_range((key_range(1, -1, 2),)),
                         ((1, -1, 2), False))

    def test_consecutive_specs_merge(self):
        specs = (key_range(1, 1), key_range(2, 2), key_range(3, 3))
        self.assertEqual(_legacy_range(specs), ((1, 3, 1), False))

    def test_a_negative_last_key_wins(self):
        specs = (key_range(1, 1), key_range(2, -1))
        self.assertEqual(_legacy_range(specs), ((1, -1, 1), False))

    def test_keynum_keyword_and_incomplete_specs_are_movable(self):
        keynum = KeySpec(index=2, keynumidx=0, firstkey=1)
        self.assertEqual(_legacy_range((key_range(1, 1), keynum)),
                         ((1, 1, 1), True))
        keyword = KeySpec(keyword=b"store", startfrom=1)
        self.assertEqual(_legacy_range((keyword,)), ((0, 0, 0), True))
        incomplete = key_range(1, 1, flags=("RO", "incomplete"))
        self.assertEqual(_legacy_range((incomplete,)), ((1, 1, 1), True))

    def test_no_specs(self):
        self.assertEqual(_legacy_range(()), ((0, 0, 0), False))


class CommandDocsTests(ServerTestCase):
    def test_docs_map(self):
        self.assertEqual(
            self.raw("COMMAND", "DOCS", "time", "nosuch"),
            b"*2\r\n$4\r\ntime\r\n*8\r\n$7\r\nsummary\r\n$30\r\nReturn the "
            b"current server time\r\n$5\r\nsince\r\n$5\r\n2.6.0\r\n$5\r\n"
            b"group\r\n$6\r\nserver\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n")

    def test_history_and_subcommands(self):
        self.raw("HELLO", "3")
        docs = self.raw("COMMAND", "DOCS", "client|kill")
        self.assertTrue(docs.startswith(
            b"%1\r\n$11\r\nclient|kill\r\n%5\r\n$7\r\nsummary\r\n$31\r\nKill the "
            b"connection of a client\r\n$5\r\nsince\r\n$5\r\n2.4.0\r\n$5\r\n"
            b"group\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n$48\r\nO(N) "
            b"where N is the number of client connections\r\n$7\r\nhistory\r\n"
            b"~5\r\n*2\r\n$6\r\n2.8.12\r\n$24\r\nAdded new filter format.\r\n"), docs)
        config = self.call("COMMAND", "DOCS", "config", client=self.connect())
        self.assertEqual(config[0], b"config")
        self.assertIn(b"subcommands", config[1])

    def test_argument_docs(self):
        row = Command("x", None, 2, arguments=(
            {"name": "key", "type": "key", "key_spec_index": 0},
            {"name": "mode", "type": "oneof", "optional": True, "arguments": [
                {"name": "nx", "type": "pure-token", "token": "NX"}]}))
        self.assertEqual(introspection._argument_docs(row.arguments), [
            [(b"name", b"key"), (b"type", b"key"), (b"key_spec_index", 0)],
            [(b"name", b"mode"), (b"type", b"oneof"), (b"flags", ["optional"]),
             (b"arguments", [[(b"name", b"nx"), (b"type", b"pure-token"),
                              (b"token", b"NX")]])]])


class CommandListTests(ServerTestCase):
    def test_list_includes_subcommands(self):
        names = self.call("COMMAND", "LIST")
        self.assertIn(b"config|get", names)
        self.assertLess(names.index(b"config"), names.index(b"config|get"))
        self.assertEqual(len(names), len(self.server.table) + sum(
            len(row.subcommands) for row in self.server.table))

    def test_filters(self):
        self.assertEqual(
            sorted(self.call("COMMAND", "LIST", "FILTERBY", "PATTERN",
                             "Config*")),
            [b"config", b"config|get", b"config|help", b"config|resetstat",
             b"config|rewrite", b"config|set"])
        pubsub = self.call("COMMAND", "LIST", "FILTERBY", "aclcat", "pubsub")
        self.assertIn(b"publish", pubsub)
        self.assertNotIn(b"get", pubsub)
        self.assertEqual(self.call("COMMAND", "LIST", "FILTERBY", "aclcat",
                                   "nosuch"), [])
        self.assertEqual(self.call("COMMAND", "LIST", "FILTERBY", "module",
                                   "x"), [])

    def test_syntax_errors(self):
        for args in (("FILTERBY",), ("FILTERBY", "pattern"),
                     ("FILTERBY", "foo", "x"), ("x", "y", "z")):
            self.assertEqual(self.call("COMMAND", "LIST", *args),
                             "ERR syntax error")


class GetKeysTests(ServerTestCase):
    def test_getkeys(self):
        self.assertEqual(self.call("COMMAND", "GETKEYS", "zunionstore", "d",
                                   "2", "a", "b", "weights", "1", "2"),
                         [b"d", b"a", b"b"])
        self.assertEqual(self.call("COMMAND", "GETKEYS", "mset", "a", "1",
                                   "b", "2"), [b"a", b"b"])

    def test_getkeysandflags(self):
        self.assertEqual(
            self.raw("COMMAND", "GETKEYSANDFLAGS", "lmove", "a", "b", "left",
                     "right"),
            b"*2\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n*2\r\n"
            b"$1\r\nb\r\n*2\r\n+RW\r\n+insert\r\n")

    def test_errors(self):
        self.assertEqual(self.call("COMMAND", "GETKEYS", "nosuch", "a"),
                         "ERR Invalid command specified")
        self.assertEqual(self.call("COMMAND", "GETKEYS", "ssubscribe", "a"),
                         "ERR The command has no key arguments")
        self.assertEqual(self.call("COMMAND", "GETKEYS", "get", "a", "b"),
                         "ERR Invalid number of arguments specified for "
                         "command")
        self.assertEqual(self.call("COMMAND", "GETKEYS", "zunionstore", "d",
                                   "x", "a"),
                         "ERR Invalid arguments specified for command")
        self.assertEqual(self.call("COMMAND", "GETKEYS", "get"),
                         "ERR wrong number of arguments for 'command|getkeys' "
                         "command")

    def test_getkeys_function_and_optional_keys(self):
        def after_keys(argv):
            return [j + 1 for j, arg in enumerate(argv) if arg == b"KEYS"]

        rows = [Command("opt", None, -2, frozenset({"no_mandatory_keys"}),
                        (KeySpec(keyword=b"keys", startfrom=1,
                                 flags=("RO", "incomplete")),),
                        get_keys=after_keys)]

        @provider()
        class Provider:
            @staticmethod
            def commands():
                return rows

        server = Server(self.server.settings, self.clock,
                        CommandTable.build([Provider]))
        client = connect(server)
        self.assertEqual(self.call("COMMAND", "GETKEYS", "opt", "KEYS", "k",
                                   client=client), [b"k"])
        self.assertEqual(self.call("COMMAND", "GETKEYS", "opt", "x",
                                   client=client), [])
        self.assertEqual(self.call("COMMAND", "GETKEYSANDFLAGS", "opt", "KEYS",
                                   "k", client=client),
                         [[b"k", [b"RO", b"incomplete"]]])


class HelpTests(ServerTestCase):
    def test_help(self):
        reply = self.raw("command", "help")
        self.assertTrue(reply.startswith(
            b"*21\r\n+COMMAND <subcommand> [<arg> [value] [opt] ...]. "
            b"Subcommands are:\r\n+(no subcommand)\r\n"), reply)
        self.assertTrue(reply.endswith(b"+HELP\r\n+    Prints this help.\r\n"))

    def test_unknown_subcommand(self):
        self.assertEqual(self.call("COMMAND", "FOO"),
                         "ERR unknown subcommand 'FOO'. Try COMMAND HELP.")


class LoopbackRedis:
    """What redis-py's CommandsParser needs from a connection, over our
    in-memory server."""

    def __init__(self, case):
        self.case = case

    def command(self):
        return parse_command(self.execute_command("COMMAND"))

    def execute_command(self, *args):
        pieces = [piece for arg in args
                  for piece in (arg.split() if arg == "COMMAND GETKEYS"
                                else [arg])]
        reply = self.case.call(*pieces)
        if isinstance(reply, str):
            raise ResponseError(reply)
        return reply


class RedisPyCommandsParserTests(ServerTestCase):
    """redis-py's cluster client learns key positions from COMMAND at
    start-up, and asks COMMAND GETKEYS for movable keys."""

    def setUp(self):
        super().setUp()
        self.redis = LoopbackRedis(self)
        self.parser = CommandsParser(self.redis)

    def keys(self, *args):
        return self.parser.get_keys(self.redis, *args)

    def test_fixed_positions(self):
        self.assertEqual(self.keys("SET", "k", "v", "EX", "5"), ["k"])
        self.assertEqual(self.keys("MSET", "a", "1", "b", "2"), ["a", "b"])
        self.assertEqual(self.keys("BLPOP", "l1", "l2", "0"), ["l1", "l2"])

    def test_movable_keys(self):
        self.assertEqual(self.keys("ZUNIONSTORE", "dst", "2", "a", "b",
                                   "WEIGHTS", "1", "2"),
                         [b"dst", b"a", b"b"])

    def test_pubsub_and_keyless(self):
        self.assertEqual(self.keys("PUBLISH", "ch", "msg"), ["ch"])
        self.assertIsNone(self.keys("PING", "x"))


class InfoTests(ServerTestCase):
    def headers(self, *args):
        text = self.call("INFO", *args).decode()
        return [line for line in text.split("\r\n") if line.startswith("#")]

    def fields(self, *args) -> dict:
        text = self.call("INFO", *args).decode()
        return dict(line.split(":", 1) for line in text.split("\r\n")
                    if line and not line.startswith("#"))

    def test_default_sections(self):
        default = ["# Server", "# Clients", "# Memory", "# Persistence",
                   "# Stats", "# Replication", "# CPU", "# Modules",
                   "# Errorstats", "# Cluster", "# Keyspace"]
        self.assertEqual(self.headers(), default)
        self.assertEqual(self.headers("default"), default)

    def test_all_and_everything(self):
        every = ["# Server", "# Clients", "# Memory", "# Persistence",
                 "# Stats", "# Replication", "# CPU", "# Modules",
                 "# Commandstats", "# Errorstats", "# Latencystats",
                 "# Cluster", "# Keyspace"]
        self.assertEqual(self.headers("all"), every)
        self.assertEqual(self.headers("everything"), every)

    def test_sections_in_fixed_order_any_case(self):
        self.assertEqual(self.headers("KEYSPACE", "server", "Module_List"),
                         ["# Server", "# Modules", "# Keyspace"])
        self.assertEqual(self.raw("INFO", "nosuch"), b"$0\r\n\r\n")

    def test_layout(self):
        self.assertEqual(self.raw("INFO", "cluster", "modules"),
                         b"$43\r\n# Modules\r\n\r\n# Cluster\r\n"
                         b"cluster_enabled:0\r\n\r\n")
        self.raw("HELLO", "3")
        self.assertEqual(self.raw("INFO", "cluster"),
                         b"=34\r\ntxt:# Cluster\r\ncluster_enabled:0\r\n\r\n")

    def test_server_section(self):
        fields = self.fields("server")
        self.assertEqual(fields["redis_version"], "7.0.15")
        self.assertEqual(fields["rcluster_version"], "0.1.0")
        self.assertEqual(fields["redis_mode"], "standalone")
        self.assertEqual(fields["run_id"], self.server.run_id)
        self.assertEqual(fields["tcp_port"], "6379")
        self.assertEqual(fields["server_time_usec"], str(NOW * 1_000_000))
        self.clock.advance(2 * 86400 + 5)
        fields = self.fields("server")
        self.assertEqual((fields["uptime_in_seconds"],
                          fields["uptime_in_days"]), (str(2 * 86400 + 5), "2"))

    def test_clients_and_memory(self):
        self.connect()
        fields = self.fields("clients", "memory")
        self.assertEqual(fields["connected_clients"], "2")
        self.assertEqual(fields["blocked_clients"], "0")
        self.assertGreater(int(fields["used_memory"]), 1 << 20)
        self.assertEqual(fields["maxmemory_policy"], "noeviction")

    def test_keyspace(self):
        self.assertEqual(self.fields("keyspace"), {})
        self.raw("SET", "a", "1")
        self.raw("SET", "b", "1", "EX", "100")
        self.assertEqual(self.fields("keyspace"),
                         {"db0": "keys=2,expires=1,avg_ttl=100000"})

    def test_stats(self):
        self.raw("SET", "a", "1")
        self.raw("GET", "a")
        self.raw("GET", "missing")
        self.raw("SET", "e", "1", "PX", "10")
        self.clock.advance(1)
        self.raw("GET", "e")
        fields = self.fields("stats")
        self.assertEqual(fields["total_commands_processed"], "5")
        self.assertEqual((fields["keyspace_hits"], fields["keyspace_misses"],
                          fields["expired_keys"]), ("1", "2", "1"))
        self.assertEqual(fields["total_connections_received"], "1")

    def test_instantaneous_ops_per_sec(self):
        for _ in range(20):         # 5 commands every 100 ms
            for _ in range(5):
                self.raw("PING")
            self.clock.advance(0.1)
            self.server.cron()
        self.assertEqual(self.fields("stats")["instantaneous_ops_per_sec"],
                         "50")

    def test_commandstats_and_errorstats(self):
        self.raw("SET", "a", "1")
        self.raw("SET", "a", "1", "XX", "NX")
        self.raw("NOSUCH")
        self.raw("LPUSH", "a", "x")
        self.raw("CONFIG", "GET", "maxclients")
        fields = self.fields("commandstats", "errorstats")
        self.assertRegex(fields["cmdstat_set"],
                         r"^calls=2,usec=\d+,usec_per_call=\d+\.\d\d,"
                         r"rejected_calls=0,failed_calls=1$")
        self.assertTrue(fields["cmdstat_config|get"].startswith("calls=1,"))
        self.assertEqual(fields["errorstat_ERR"], "count=2")
        self.assertEqual(fields["errorstat_WRONGTYPE"], "count=1")
        self.assertNotIn("cmdstat_get", fields)

    def test_registry(self):
        introspection.info_section("extra", "Extra", default=False)(
            lambda server: [("answer", 42)])
        self.addCleanup(introspection._SECTIONS.pop, "extra")
        introspection.extend_info_section(
            "cluster", lambda server: [("cluster_enabled", 7), ("more", "x")])
        self.addCleanup(introspection._SECTIONS["cluster"].builders.pop)
        self.assertEqual(self.raw("INFO", "extra", "cluster"),
                         b"$60\r\n# Cluster\r\ncluster_enabled:7\r\nmore:x\r\n"
                         b"\r\n# Extra\r\nanswer:42\r\n\r\n")
        fields = self.fields("cluster", "extra")
        self.assertEqual(fields, {"cluster_enabled": "7", "more": "x",
                                  "answer": "42"})
        self.assertNotIn("# Extra", self.headers())
        self.assertIn("# Extra", self.headers("all"))

    def test_bytes_to_human(self):
        human = introspection.bytes_to_human
        self.assertEqual([human(0), human(1023), human(1024), human(1536),
                          human(3 << 20), human(5 << 30)],
                         ["0B", "1023B", "1.00K", "1.50K", "3.00M", "5.00G"])
