"""SLOWLOG and LATENCY against a real node, the same checks run on rcluster
and on redis-server 7.0 (reply shapes, a DEBUG SLEEP 0.2 in both, the
HISTOGRAM as redis-py and redis-cli parse it, COMMAND INFO rows)."""
import redis
from twisted.trial.unittest import TestCase

from tests.integration.harness import have, start_node


def _as_dict(reply):
    """A map reply as a dict, nested (RESP2 gives flat arrays)."""
    if isinstance(reply, list):
        reply = dict(zip(reply[0::2], reply[1::2]))
    return {k: _as_dict(v) if isinstance(v, (list, dict)) else v
            for k, v in reply.items()}


class Scenarios:
    binary = "rcluster"

    def setUp(self):
        if self.binary != "rcluster" and not have(self.binary):
            self.skipTest(f"{self.binary} not installed")
        self.node = start_node(self, binary=self.binary, directives=[
            ("enable-debug-command", "yes"),
            ("latency-monitor-threshold", "100")])
        self.r = self.node.client()
        self.addCleanup(self.r.close)

    def test_debug_sleep_in_slowlog_and_latency(self):
        r = self.r
        r.client_setname("sleeper")
        r.slowlog_reset()
        r.execute_command("DEBUG", "SLEEP", "0.2")
        entries = r.slowlog_get(10)
        sleeps = [e for e in entries
                  if e["command"].lower() == b"debug sleep 0.2"]
        self.assertEqual(len(sleeps), 1, entries)
        entry = sleeps[0]
        self.assertTrue(200_000 <= entry["duration"] < 2_000_000, entry)
        self.assertEqual(entry["client_name"], b"sleeper")
        self.assertTrue(entry["client_address"].startswith(b"127.0.0.1:"))
        self.assertIsInstance(entry["id"], int)
        self.assertIsInstance(entry["start_time"], int)
        self.assertGreaterEqual(r.slowlog_len(), 1)
        # Raw shape: 6 fields, argv an array of bulk strings.
        raw = r.execute_command("SLOWLOG", "GET", "1")
        self.assertEqual([type(x) for x in raw[0]],
                         [int, int, int, list, bytes, bytes])
        latest = r.execute_command("LATENCY", "LATEST")
        self.assertEqual(len(latest), 1)
        event, when, last, worst = latest[0]
        self.assertEqual(event, b"command")
        self.assertTrue(200 <= last < 2000 and worst >= last, latest)
        history = r.execute_command("LATENCY", "HISTORY", "command")
        self.assertEqual(len(history), 1)
        self.assertEqual(history[0][1], last)
        graph = r.execute_command("LATENCY", "GRAPH", "command")
        self.assertTrue(graph.startswith(b"command - high "), graph)
        self.assertIn(b"1. command: 1 latency spikes",
                      r.execute_command("LATENCY", "DOCTOR"))
        self.assertEqual(r.execute_command("LATENCY", "RESET"), 1)
        self.assertEqual(r.execute_command("LATENCY", "LATEST"), [])

    def test_histogram_shape(self):
        for _ in range(3):
            self.r.set("k", "v")
        # redis-py parses it (RESP2 and RESP3) into nested dicts with int
        # bucket keys.
        for protocol in (2, 3):
            client = redis.Redis(host="127.0.0.1", port=self.node.port,
                                 protocol=protocol)
            self.addCleanup(client.close)
            reply = _as_dict(client.execute_command(
                "LATENCY", "HISTOGRAM", "set", "get"))
            self.assertEqual(set(reply), {b"set"})
            self.assertEqual(reply[b"set"][b"calls"], 3)
            usec = reply[b"set"][b"histogram_usec"]
            self.assertTrue(usec)
            self.assertTrue(all(isinstance(k, int) for k in usec))
            self.assertEqual(max(usec.values()), 3)
        # redis-cli (RESP3, not a tty) prints the map's pairs.
        out = self.node.cli("-3", "LATENCY", "HISTOGRAM", "set")
        self.assertRegex(out, r"\Aset calls 3\nhistogram_usec \d+ \d+\n"
                              r"(\d+ \d+\n)*\Z")
        info = self.r.info("latencystats")
        self.assertEqual(set(info["latency_percentiles_usec_set"]),
                         {"p50", "p99", "p99.9"})

    def test_errors_and_help(self):
        r = self.r
        for args, text in (
                (("SLOWLOG", "GET", "-2"),
                 "count should be greater than or equal to -1"),
                (("SLOWLOG", "GET", "x"),
                 "count should be greater than or equal to -1"),
                (("SLOWLOG", "GET", "1", "2"),
                 "unknown subcommand or wrong number of arguments for 'GET'."
                 " Try SLOWLOG HELP."),
                (("SLOWLOG", "NOPE"),
                 "unknown subcommand 'NOPE'. Try SLOWLOG HELP."),
                (("LATENCY", "GRAPH", "nothing"),
                 "No samples available for event 'nothing'"),
                (("LATENCY", "NOPE"),
                 "unknown subcommand 'NOPE'. Try LATENCY HELP."),
                (("LATENCY", "HISTORY"),
                 "wrong number of arguments for 'latency|history' command"),
                (("SLOWLOG",),
                 "wrong number of arguments for 'slowlog' command")):
            with self.assertRaises(redis.ResponseError) as caught:
                r.execute_command(*args)
            self.assertEqual(str(caught.exception), text, args)
        self.assertEqual(len(r.execute_command("SLOWLOG", "HELP")), 12)
        self.assertEqual(len(r.execute_command("LATENCY", "HELP")), 17)


class RclusterSlowlogLatency(Scenarios, TestCase):
    def test_command_info_as_redis(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")
        ref = start_node(self, binary="redis-server")
        theirs = ref.client()
        self.addCleanup(theirs.close)
        names = ["slowlog", "latency"]
        subs = ["slowlog|%s" % s for s in ("get", "len", "reset", "help")] + \
            ["latency|%s" % s for s in ("doctor", "graph", "history",
                                        "latest", "reset", "histogram",
                                        "help")]
        for name in names + subs:
            ours = self.r.execute_command("COMMAND", "INFO", name)[name]
            want = theirs.execute_command("COMMAND", "INFO", name)[name]
            if name in names:   # the subcommand lists' order may differ
                ours["subcommands"].sort()
                want["subcommands"].sort()
            self.assertEqual(ours, want, name)


class RedisSlowlogLatency(Scenarios, TestCase):
    binary = "redis-server"
