"""SLOWLOG, LATENCY and INFO latencystats (rcluster/slowlog.py,
rcluster/latency.py, rcluster/commands/slowlog_latency.py), sans-IO."""
from twisted.trial.unittest import TestCase

from rcluster import latency as L
from rcluster.slowlog import entry_argv
from tests.protocol.helpers import NOW, ServerTestCase


class HistogramTests(TestCase):
    def test_layout_is_hdr_1ns_1s_2_digits(self):
        self.assertEqual(L.COUNTS_LEN, 3072)
        # Below 256 every value has its own slot; above, 2 digits.
        for value in (1, 2, 255, 256, 1000, 8031, 1_000_000, 10**9):
            index = L.counts_index(value)
            self.assertLess(index, L.COUNTS_LEN)
            low = L.value_at_index(index)
            self.assertLessEqual(low, value)
            self.assertLessEqual(value, L.highest_equivalent(low))
            self.assertLess(L.highest_equivalent(low) - low, value / 100 + 1)

    def test_percentiles_as_redis(self):
        h = L.Histogram()
        h.record(8031)          # what redis-server 7.0 showed for one SET
        self.assertEqual(L.format_percentiles(h, "50 99 99.9"),
                         "p50=8.031,p99=8.031,p99.9=8.031")
        for ns in range(1000, 101000, 1000):
            h.record(ns)
        self.assertEqual(h.total, 101)
        p50 = h.value_at_percentile(50)
        self.assertTrue(49_000 <= p50 <= 51_000, p50)
        self.assertGreaterEqual(h.value_at_percentile(100), 100_000)

    def test_cdf_matches_redis(self):
        # redis-server 7.0.15: one SET of 8031 ns -> histogram_usec {8: 1}.
        h = L.Histogram()
        h.record(8031)
        self.assertEqual(h.cdf(), [8, 1])
        h = L.Histogram()
        h.record(13183)
        self.assertEqual(h.cdf(), [16, 1])

    def test_cdf_is_cumulative_and_doubling(self):
        h = L.Histogram()
        for ns in (500, 1500, 3000, 3000, 70_000, 5 * 10**9):
            h.record(ns)
        cdf = h.cdf()
        usecs, counts = cdf[0::2], cdf[1::2]
        self.assertEqual(counts, sorted(counts))
        self.assertEqual(counts[-1], 6)
        self.assertEqual(usecs, sorted(usecs))
        self.assertEqual(usecs[-1], 1_000_000 + usecs[-1] - 1_000_000)
        self.assertLessEqual(len(usecs), 31)

    def test_clamped(self):
        h = L.Histogram()
        h.record(0)
        h.record(10**12)
        self.assertEqual(h.total, 2)
        self.assertEqual(h.value_at_percentile(0), 1)


class SlowlogArgvTests(TestCase):
    def test_truncation_as_redis(self):
        argv = [b"x"] * 40
        out = entry_argv(argv)
        self.assertEqual(len(out), 32)
        self.assertEqual(out[-1], b"... (9 more arguments)")
        out = entry_argv([b"SET", b"k", b"v" * 200])
        self.assertEqual(out[2], b"v" * 128 + b"... (72 more bytes)")
        self.assertEqual(entry_argv([b"GET", bytearray(b"k")]),
                         [b"GET", b"k"])


class SparklineTests(TestCase):
    def test_one_sample(self):
        # LATENCY GRAPH's body for one spike, as redis-server prints it.
        self.assertEqual(L.sparkline([(203, "0s")], 80, 4),
                         " \n \n \n_\n \n0\ns\n")

    def test_rises(self):
        text = L.sparkline([(0, ""), (50, ""), (100, "")], 80, 4)
        self.assertEqual(text.splitlines()[0], "  #")
        self.assertEqual(text.splitlines()[-1], "_||")


class SlowlogCommandTests(ServerTestCase):
    directives = {"slowlog_log_slower_than": "0",
                  "enable_debug_command": "yes"}

    def test_get_len_reset(self):
        self.call("CLIENT", "SETNAME", "me")
        self.call("SET", "k", "v")
        entries = self.call("SLOWLOG", "GET", "1")
        self.assertEqual(len(entries), 1)
        ident, when, micros, argv, addr, name = entries[0]
        self.assertEqual(argv, [b"SET", b"k", b"v"])
        self.assertEqual((when, addr, name),
                         (NOW, b"127.0.0.1:40000", b"me"))
        self.assertGreaterEqual(micros, 0)
        self.assertEqual(self.call("SLOWLOG", "LEN"), 3)
        # Newest first, ids increasing.
        ids = [e[0] for e in self.call("SLOWLOG", "GET", "-1")]
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual(len(self.call("SLOWLOG", "GET")), 5)
        self.assertEqual(self.call("SLOWLOG", "RESET"), b"OK")
        self.assertEqual(self.call("SLOWLOG", "LEN"), 1)   # (RESET itself)

    def test_errors(self):
        err = "ERR count should be greater than or equal to -1"
        self.assertEqual(self.call("SLOWLOG", "GET", "-2"), err)
        self.assertEqual(self.call("SLOWLOG", "GET", "x"), err)
        self.assertTrue(self.call("SLOWLOG", "GET", "1", "2")
                        .startswith("ERR unknown subcommand or wrong number"))
        self.assertTrue(self.call("SLOWLOG", "NOPE")
                        .startswith("ERR unknown subcommand"))
        self.assertIn(b"    Reset the slowlog.", self.call("SLOWLOG", "HELP"))

    def test_threshold_max_len_and_disable(self):
        self.call("CONFIG", "SET", "slowlog-max-len", "2")
        for i in range(5):
            self.call("SET", "k%d" % i, "v")
        self.assertEqual(self.call("SLOWLOG", "LEN"), 2)
        self.call("CONFIG", "SET", "slowlog-log-slower-than", "-1")
        self.call("SLOWLOG", "RESET")
        self.call("SET", "k", "v")
        self.assertEqual(self.call("SLOWLOG", "LEN"), 0)
        self.call("CONFIG", "SET", "slowlog-log-slower-than", "1000000")
        self.call("SET", "k", "v")
        self.assertEqual(self.call("SLOWLOG", "LEN"), 0)

    def test_skip_slowlog_commands(self):
        self.call("SLOWLOG", "RESET")
        self.call("MULTI")
        self.call("SET", "a", "1")
        self.call("EXEC")
        names = [e[3][0] for e in self.call("SLOWLOG", "GET", "-1")]
        self.assertNotIn(b"EXEC", names)      # flag skip_slowlog
        self.assertIn(b"SET", names)          # the queued command is

    def test_debug_sleep_is_logged_with_its_duration(self):
        self.call("CONFIG", "SET", "latency-monitor-threshold", "100")
        self.call("SLOWLOG", "RESET")
        self.assertEqual(self.raw("DEBUG", "SLEEP", "0.2"), b"")
        self.clock.advance(0.2)
        self.assertEqual(self.transport.value(), b"+OK\r\n")
        self.transport.clear()
        entry = [e for e in self.call("SLOWLOG", "GET", "-1")
                 if e[3][0] == b"DEBUG"]
        self.assertEqual(len(entry), 1)
        self.assertEqual(entry[0][2], 200_000)
        latest = self.call("LATENCY", "LATEST")
        self.assertEqual(latest, [[b"command", int(NOW + 0.2), 200, 200]])


class LatencyCommandTests(ServerTestCase):
    directives = {"latency_monitor_threshold": "1",
                  "enable_debug_command": "yes"}

    def sleep(self, seconds):
        self.raw("DEBUG", "SLEEP", str(seconds))
        self.clock.advance(seconds)
        self.transport.clear()

    def test_history_latest_reset(self):
        self.assertEqual(self.call("LATENCY", "LATEST"), [])
        # (+0.5 ms: the fake clock's float seconds near 1.7e9 are coarse)
        self.sleep(0.0505)
        self.sleep(0.0305)      # same second: the bigger sample stays
        self.clock.advance(1)
        self.sleep(0.0205)
        history = self.call("LATENCY", "HISTORY", "command")
        self.assertEqual([latency for _, latency in history], [50, 20])
        self.assertEqual(self.call("LATENCY", "HISTORY", "nope"), [])
        [[event, _, last, worst]] = self.call("LATENCY", "LATEST")
        self.assertEqual((event, last, worst), (b"command", 20, 50))
        self.assertEqual(self.call("LATENCY", "RESET", "nope"), 0)
        self.assertEqual(self.call("LATENCY", "RESET", "COMMAND"), 1)
        self.assertEqual(self.call("LATENCY", "RESET"), 0)

    def test_graph_and_doctor(self):
        self.assertEqual(self.call("LATENCY", "GRAPH", "command"),
                         "ERR No samples available for event 'command'")
        self.sleep(0.2)
        graph = self.call("LATENCY", "GRAPH", "command")
        self.assertTrue(graph.startswith(
            b"command - high 200 ms, low 200 ms (all time high 200 ms)\n"
            + b"-" * 80 + b"\n"))
        doctor = self.call("LATENCY", "DOCTOR")
        self.assertIn(b"1. command: 1 latency spikes (average 200ms", doctor)
        self.call("LATENCY", "RESET")
        self.call("CONFIG", "SET", "latency-monitor-threshold", "0")
        self.assertTrue(self.call("LATENCY", "DOCTOR").startswith(
            b"I'm sorry, Dave, I can't do that."))

    def test_histogram_shape(self):
        self.call("SET", "a", "1")
        self.call("SET", "a", "2")
        self.call("CONFIG", "GET", "maxmemory")
        reply = self.call("LATENCY", "HISTOGRAM", "set", "config", "nosuch")
        as_dict = dict(zip(reply[0::2], reply[1::2]))
        self.assertEqual(set(as_dict), {b"set", b"config|get"})
        body = dict(zip(as_dict[b"set"][0::2], as_dict[b"set"][1::2]))
        self.assertEqual(body[b"calls"], 2)
        buckets = body[b"histogram_usec"]
        self.assertEqual(buckets[-1], 2)      # cumulative
        self.resp3()
        raw = self.raw("LATENCY", "HISTOGRAM", "set")
        self.assertTrue(raw.startswith(
            b"%1\r\n$3\r\nset\r\n%2\r\n$5\r\ncalls\r\n:2\r\n"
            b"$14\r\nhistogram_usec\r\n%"), raw)
        everything = self.call("LATENCY", "HISTOGRAM")
        self.assertIn(b"set", everything)

    def test_latencystats_info(self):
        self.call("SET", "a", "1")
        info = self.call("INFO", "latencystats")
        self.assertIn(b"# Latencystats\r\nlatency_percentiles_usec_", info)
        self.assertRegex(info.decode(), r"latency_percentiles_usec_set:"
                         r"p50=\d+\.\d{3},p99=\d+\.\d{3},p99\.9=\d+\.\d{3}")
        self.call("CONFIG", "SET", "latency-tracking-info-percentiles",
                  "0 99.99")
        self.assertRegex(self.call("INFO", "latencystats").decode(),
                         r"usec_set:p0=\d+\.\d{3},p99\.99=")
        self.call("CONFIG", "SET", "latency-tracking", "no")
        self.assertEqual(self.call("INFO", "latencystats"),
                         b"# Latencystats\r\n")

    def test_observer_off_when_everything_is(self):
        server = self.server
        self.assertTrue(server.latency_on)
        self.call("CONFIG", "SET", "latency-tracking", "no")
        self.assertFalse(server.latency_on)
        self.call("CONFIG", "SET", "latency-monitor-threshold", "5")
        self.assertEqual(server.slow_ns, 5_000_000)    # below the slow log's
        self.call("CONFIG", "SET", "latency-monitor-threshold", "0")
        self.call("CONFIG", "SET", "slowlog-log-slower-than", "-1")
        self.assertEqual(server.slow_ns, 1 << 62)       # nothing is slow
        self.call("GET", "k")
        self.assertTrue(all(row.histogram is None for row in server._all_rows))
        self.call("CONFIG", "SET", "latency-tracking", "yes")
        self.call("GET", "k")
        self.assertEqual(server.table.get("get").histogram.total, 1)

    def test_other_layers_add_samples(self):
        self.server.latency.add_sample_if_needed("expire-cycle", 5)
        self.server.latency.add_sample_if_needed("eviction-cycle", 0)
        self.assertEqual([e[0] for e in self.call("LATENCY", "LATEST")],
                         [b"expire-cycle"])
