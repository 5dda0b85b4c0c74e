"""The node's entry points, without processes or sockets:

- ``twistd rcluster`` options: defaults < --config < options < --set,
  --tls, clean usage errors; NodeService assembly on a MemoryReactorClock;
- ``rcluster-server``: redis-server's argument grammar and config layering;
- rcluster.logs: Redis's log line format and loglevel filtering.
"""
import io
import os
import shutil
import subprocess
import tempfile

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from rcluster import launcher, tap
from rcluster.config import Settings
from rcluster.logs import RedisLogObserver, format_line, level_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse(*argv) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(argv))
    return options


class TempDirMixin:
    def tempdir(self) -> str:
        path = tempfile.mkdtemp(prefix="rcluster-tap-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def write(self, name, text) -> str:
        path = os.path.join(self.tempdir(), name)
        with open(path, "w") as fh:
            fh.write(text)
        return path


class SettingsLayeringTests(TempDirMixin, TestCase):
    def test_defaults(self):
        settings = parse().settings
        self.assertEqual(settings.port, 6379)
        self.assertTrue(settings.cluster_enabled)     # twistd rcluster: a cluster node
        self.assertEqual(settings.save, "")           # and no RDB snapshots
        self.assertEqual(settings.tls_port, 0)

    def test_config_file_over_defaults(self):
        conf = self.write("a.conf", "port 7001\nmaxclients 50\ncluster-enabled no\n")
        settings = parse("--config", conf).settings
        self.assertEqual((settings.port, settings.maxclients), (7001, 50))
        self.assertFalse(settings.cluster_enabled)
        self.assertEqual(settings.config_file, conf)

    def test_options_over_config_file_and_set_over_options(self):
        conf = self.write("a.conf", "port 7001\nbind 10.0.0.1\nmaxclients 50\n")
        settings = parse("--config", conf, "--port", "7002",
                         "--bind", "127.0.0.1 ::1").settings
        self.assertEqual(settings.port, 7002)
        self.assertEqual(settings.bind, ("127.0.0.1", "::1"))
        self.assertEqual(settings.maxclients, 50)
        settings = parse("--config", conf, "--port", "7002",
                         "--set", "port=7003", "-s", "maxclients=9").settings
        self.assertEqual((settings.port, settings.maxclients), (7003, 9))

    def test_set_takes_multi_word_values(self):
        settings = parse("--set", "save=900 1 300 10",
                         "--set", "bind=127.0.0.1 -::1").settings
        self.assertEqual(settings.save, "900 1 300 10")
        self.assertEqual(settings.bind, ("127.0.0.1", "-::1"))

    def test_standalone(self):
        self.assertFalse(parse("--standalone").settings.cluster_enabled)
        # --set comes last, so it wins over the shortcut.
        settings = parse("--standalone", "--set", "cluster-enabled=yes").settings
        self.assertTrue(settings.cluster_enabled)

    def test_bad_values_are_usage_errors(self):
        cases = [
            (["--port", "abc"],
             "--port abc: argument couldn't be parsed into an integer"),
            (["--port", "70000"],
             "--port 70000: argument must be between 0 and 65535 inclusive"),
            (["--set", "maxclients=lots"],
             "--set maxclients=lots: argument couldn't be parsed into an integer"),
            (["--set", "no-such-directive=1"],
             "--set no-such-directive=1: Bad directive or wrong number of arguments"),
            (["--set", "appendonly=maybe"],
             "--set appendonly=maybe: argument must be 'yes' or 'no'"),
            (["--tls-auth-clients", "sometimes"],
             "--tls-auth-clients sometimes: argument(s) must be one of the "
             "following: no, yes, optional"),
            (["--set", "port"], "--set takes directive=value"),
        ]
        for argv, message in cases:
            err = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertEqual(str(err), message)

    def test_bad_config_file_is_a_usage_error(self):
        conf = self.write("bad.conf", "port 7000\nmaxclients nope\n")
        err = self.assertRaises(usage.UsageError, parse, "--config", conf)
        self.assertEqual(str(err), f"{conf}:2: 'maxclients nope': argument "
                                   "couldn't be parsed into an integer")
        missing = os.path.join(self.tempdir(), "missing.conf")
        err = self.assertRaises(usage.UsageError, parse, "--config", missing)
        self.assertEqual(str(err), f"can't open config file '{missing}': "
                                   "No such file or directory")


class TLSOptionTests(TestCase):
    def test_tls_moves_the_client_port_to_tls(self):
        settings = parse("--port", "7000", "--tls").settings
        self.assertEqual((settings.port, settings.tls_port), (0, 7000))
        self.assertTrue(settings.tls_cluster)
        self.assertTrue(settings.tls_replication)

    def test_tls_with_a_tls_port_serves_both(self):
        settings = parse("--port", "7000", "--tls-port", "7100", "--tls").settings
        self.assertEqual((settings.port, settings.tls_port), (7000, 7100))
        self.assertTrue(settings.tls_cluster)

    def test_tls_port_alone_serves_both_without_tls_links(self):
        settings = parse("--port", "7000", "--set", "tls-port=7100").settings
        self.assertEqual((settings.port, settings.tls_port), (7000, 7100))
        self.assertFalse(settings.tls_cluster)
        self.assertFalse(settings.tls_replication)

    def test_tls_file_options(self):
        settings = parse("--tls", "--tls-cert-file", "n.crt", "--tls-key-file",
                         "n.key", "--tls-ca-cert-file", "ca.crt",
                         "--tls-auth-clients", "optional").settings
        self.assertEqual((settings.tls_cert_file, settings.tls_key_file,
                          settings.tls_ca_cert_file, settings.tls_auth_clients),
                         ("n.crt", "n.key", "ca.crt", "optional"))


class NodeServiceTests(TempDirMixin, TestCase):
    def node(self, *argv):
        options = parse("--standalone", "--bind", "127.0.0.1", "--port", "7000",
                        "--dir", self.tempdir(), *argv)
        reactor = MemoryReactorClock()
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        return tap.NodeService(options.settings, reactor), reactor

    def test_plain_listener(self):
        node, reactor = self.node()
        node.privilegedStartService()
        self.assertEqual([(p[0], p[3]) for p in reactor.tcpServers],
                         [(7000, "127.0.0.1")])
        self.assertEqual(reactor.sslServers, [])

    def test_tls_listener_and_both(self):
        if not shutil.which("openssl"):
            self.skipTest("openssl not installed")
        certs = self.tempdir()
        subprocess.run(["sh", os.path.join(ROOT, "etc", "tls", "gen-certs.sh"),
                        certs], check=True, capture_output=True, timeout=60)
        files = ["--tls-cert-file", os.path.join(certs, "node.crt"),
                 "--tls-key-file", os.path.join(certs, "node.key"),
                 "--tls-ca-cert-file", os.path.join(certs, "ca.crt")]
        node, reactor = self.node("--tls", *files)
        node.privilegedStartService()
        self.assertEqual(reactor.tcpServers, [])
        [(port, factory, context, _, interface)] = reactor.sslServers
        self.assertEqual((port, interface, factory.tls), (7000, "127.0.0.1", True))
        self.assertFalse(context.bus)
        node, reactor = self.node("--tls-port", "7100", *files)
        node.privilegedStartService()
        self.assertEqual([p[0] for p in reactor.tcpServers], [7000])
        self.assertEqual([p[0] for p in reactor.sslServers], [7100])

    def test_unusable_tls_files_stop_start_up_with_a_message(self):
        missing = os.path.join(self.tempdir(), "missing.crt")
        options = parse("--standalone", "--tls", "--tls-cert-file", missing,
                        "--tls-key-file", missing, "--tls-ca-cert-file", missing)
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        err = self.assertRaises(SystemExit, tap.makeService, options)
        self.assertEqual(str(err), f"rcluster: Failed to load certificate: "
                                   f"{missing}: No such file or directory")

    def test_bad_dir_stops_start_up_with_a_message(self):
        missing = os.path.join(self.tempdir(), "nowhere")
        err = self.assertRaises(SystemExit, tap.makeService,
                                parse("--standalone", "--dir", missing))
        self.assertEqual(str(err), f"rcluster: Can't chdir to '{missing}': "
                                   "No such file or directory")

    def test_pidfile_written_and_removed(self):
        pidfile = os.path.join(self.tempdir(), "node.pid")
        node, reactor = self.node("--set", f"pidfile={pidfile}")
        node.privilegedStartService()
        node.startService()
        with open(pidfile) as fh:
            self.assertEqual(fh.read(), f"{os.getpid()}\n")
        node.stopService()
        self.assertFalse(os.path.exists(pidfile))

    def test_logfile_directive_gets_redis_format_lines(self):
        logfile = os.path.join(self.tempdir(), "node.log")
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        made = tap.makeService(parse("--standalone", "--set", f"logfile={logfile}"))
        self.assertIsInstance(made.observer, RedisLogObserver)
        self.assertIsNone(tap.makeService(parse("--standalone")).observer)

        node, _ = self.node("--set", f"logfile={logfile}")
        node.observer = node.log_observer()
        node.startService()
        node.log.debug("not at notice level")
        node.stopService()
        node.log.info("after stop: not written")
        with open(logfile) as fh:
            lines = [line.split(" ", 6) for line in fh.read().splitlines()]
        self.assertEqual([(line[0], line[5], line[6]) for line in lines],
                         [(f"{os.getpid()}:M", "*", "Ready to accept connections"),
                          (f"{os.getpid()}:M", "#",
                           "rcluster is now ready to exit, bye bye...")])

    def test_role_letter(self):
        node, _ = self.node()
        self.assertEqual(node.role(), "M")
        node.server.role = "replica"
        self.assertEqual(node.role(), "S")


class LauncherArgumentTests(TempDirMixin, TestCase):
    def test_config_file_then_options(self):
        args = launcher.parse_args(["redis.conf", "--port", "7000", "--save", ""])
        self.assertEqual(args.config_file, os.path.abspath("redis.conf"))
        self.assertFalse(args.from_stdin)
        self.assertEqual(args.lines, ['port "7000" ', 'save "" '])

    def test_multi_word_values(self):
        # As redis-server: every argument up to the next --name is one more
        # argument of the directive, and a quoted one stays one argument.
        args = launcher.parse_args(["--save", "900", "1", "--save", "60 100",
                                    "--bind", "127.0.0.1", "-::1"])
        self.assertEqual(args.lines, ['save "900" "1" ', 'save "60 100" ',
                                      'bind "127.0.0.1" "-::1" '])
        settings = launcher.load_settings(
            launcher.parse_args(["--bind", "127.0.0.1", "-::1",
                                 "--client-output-buffer-limit", "pubsub 1mb 1mb 0"]))
        self.assertEqual(settings.bind, ("127.0.0.1", "-::1"))
        self.assertEqual(settings.client_output_buffer_limit["pubsub"],
                         (1024 * 1024, 1024 * 1024, 0))

    def test_bare_save_means_empty(self):
        self.assertEqual(launcher.parse_args(["--save", "--port", "1"]).lines,
                         ['save ""', 'port "1" '])
        self.assertEqual(launcher.parse_args(["--port", "1", "--save"]).lines,
                         ['port "1" ', 'save ""'])

    def test_name_and_value_in_one_argument(self):
        args = launcher.parse_args(["--port 7000", "--maxclients", "5"])
        self.assertEqual(args.lines, ["port 7000 ", 'maxclients "5" '])

    def test_values_starting_with_dashes_after_a_name(self):
        # The argument right after a bare --name is its value, even "--x".
        args = launcher.parse_args(["--requirepass", "--secret--"])
        self.assertEqual(args.lines, ['requirepass "--secret--" '])

    def test_quoting_survives_the_config_parser(self):
        value = 'a "quoted" \\ value\twith\x01bytes, caf\u00e9\n'
        settings = launcher.load_settings(launcher.parse_args(
            ["--requirepass", value]))
        self.assertEqual(settings.requirepass, value)

    def test_stdin_first_or_last(self):
        for argv in (["-", "--port", "7000"], ["conf", "--port", "7000", "-"]):
            self.assertTrue(launcher.parse_args(argv).from_stdin)

    def test_layering_file_stdin_options(self):
        conf = self.write("r.conf", "port 7001\nmaxclients 10\nhz 5\n")
        args = launcher.parse_args([conf, "--hz", "20", "-"])
        settings = launcher.load_settings(args, stdin=io.StringIO(
            "maxclients 20\nhz 15\n"))
        self.assertEqual((settings.port, settings.maxclients, settings.hz),
                         (7001, 20, 20))
        self.assertEqual(settings.config_file, conf)

    def test_no_cluster_by_default(self):
        settings = launcher.load_settings(launcher.parse_args(["--port", "7000"]))
        self.assertFalse(settings.cluster_enabled)
        self.assertEqual(settings.save, "3600 1 300 100 60 10000")

    def test_unknown_directives_are_warnings(self):
        conf = self.write("r.conf", "port 7001\nlocale-collate \"\"\n")
        settings = launcher.load_settings(launcher.parse_args([conf]))
        self.assertEqual(settings.warnings,
                         [f"{conf}:2: unknown directive 'locale-collate' ignored"])

    def test_config_errors_are_fatal_with_redis_banner(self):
        stderr = io.StringIO()
        self.patch(launcher.sys, "stderr", stderr)
        self.assertEqual(launcher.main(["--port", "nope"]), 1)
        self.assertEqual(stderr.getvalue(),
                         "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15, rcluster "
                         f"{launcher.VERSION}) ***\ncommand line:1: 'port \"nope\"': "
                         "argument couldn't be parsed into an integer\n")

    def test_version_and_help(self):
        stdout, stderr = io.StringIO(), io.StringIO()
        self.patch(launcher.sys, "stdout", stdout)
        self.patch(launcher.sys, "stderr", stderr)
        self.assertEqual(launcher.main(["--version"]), 0)
        self.assertTrue(stdout.getvalue().startswith(
            f"rcluster server v={launcher.VERSION} redis-compat=7.0.15 "))
        self.assertEqual(launcher.main(["-h"]), 1)
        self.assertTrue(stderr.getvalue().startswith(
            "Usage: rcluster-server [/path/to/redis.conf] [options] [-]\n"))

    def test_systemd_supervision(self):
        settings = Settings()
        for mode, environ, expected in (
                ("no", {"NOTIFY_SOCKET": "/run/x"}, False),
                ("auto", {}, False),
                ("auto", {"NOTIFY_SOCKET": "/run/x"}, True),
                ("systemd", {"NOTIFY_SOCKET": "@x"}, True),
                ("systemd", {}, False)):
            settings.supervised = mode
            self.assertEqual(launcher.supervised_by_systemd(settings, environ),
                             expected, (mode, environ))

    def test_notify_systemd_sends_one_datagram(self):
        import socket
        path = os.path.join(self.tempdir(), "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            self.assertTrue(launcher.notify_systemd("READY=1\n",
                                                    {"NOTIFY_SOCKET": path}))
            self.assertEqual(sock.recv(64), b"READY=1\n")
        self.assertFalse(launcher.notify_systemd("READY=1\n", {}))


class LogFormatTests(TempDirMixin, TestCase):
    # 2024-03-07 10:15:02.123 UTC; the line uses local time.
    STAMP = 1709806502.123

    def event(self, level=LogLevel.info, namespace="rcluster", **extra):
        event = {"log_format": "Hello {who}", "who": "world",
                 "log_level": level, "log_namespace": namespace,
                 "log_time": self.STAMP}
        event.update(extra)
        return event

    def test_line_format(self):
        import time
        when = time.strftime("%d %b %Y %H:%M:%S", time.localtime(self.STAMP))
        self.assertEqual(format_line(self.event(), "M", pid=42),
                         f"42:M {when}.123 * Hello world\n")
        self.assertEqual(format_line(self.event(LogLevel.warn), "S", pid=7),
                         f"7:S {when}.123 # Hello world\n")
        self.assertEqual(format_line(self.event(LogLevel.debug), "M", pid=7),
                         f"7:M {when}.123 . Hello world\n")

    def test_levels(self):
        self.assertEqual(level_of(self.event(LogLevel.debug)), 0)
        self.assertEqual(level_of(self.event(LogLevel.info)), 2)
        self.assertEqual(level_of(self.event(LogLevel.warn)), 3)
        self.assertEqual(level_of(self.event(LogLevel.error)), 3)
        self.assertEqual(level_of(self.event(LogLevel.critical)), 3)
        # Twisted's own chatter is verbose; an event may name its level.
        self.assertEqual(level_of(self.event(namespace="twisted.internet.base")), 1)
        self.assertEqual(level_of(self.event(redis_level="verbose")), 1)

    def test_failures_carry_their_traceback(self):
        try:
            1 / 0
        except ZeroDivisionError:
            failure = Failure()
        line = format_line(self.event(LogLevel.error, log_failure=failure), pid=1)
        self.assertIn(" # Hello world\nTraceback", line)
        self.assertIn("ZeroDivisionError", line)
        self.assertTrue(line.endswith("\n") and not line.endswith("\n\n"))

    def test_loglevel_filters_and_is_read_per_event(self):
        settings = Settings()
        stream = io.StringIO()
        observer = RedisLogObserver(settings, lambda: "M", stream)
        observer(self.event(LogLevel.debug))
        observer(self.event(namespace="twisted"))
        observer(self.event(LogLevel.info))
        self.assertEqual(len(stream.getvalue().splitlines()), 1)
        settings.loglevel = "debug"
        observer(self.event(LogLevel.debug))
        settings.loglevel = "warning"
        observer(self.event(LogLevel.info))
        observer(self.event(LogLevel.warn))
        marks = [line.split(" ")[5] for line in stream.getvalue().splitlines()]
        self.assertEqual(marks, ["*", ".", "#"])

    def test_logfile_wins_over_stream_and_none_drops(self):
        settings = Settings()
        settings.logfile = os.path.join(self.tempdir(), "r.log")
        stream = io.StringIO()
        RedisLogObserver(settings, lambda: "S", stream)(self.event())
        self.assertEqual(stream.getvalue(), "")
        with open(settings.logfile) as fh:
            self.assertTrue(fh.read().endswith(" * Hello world\n"))
        settings.logfile = ""
        RedisLogObserver(settings)(self.event())     # no stream: dropped


class ExampleConfigTests(TestCase):
    def test_etc_rcluster_conf_loads_cleanly(self):
        path = os.path.join(ROOT, "etc", "rcluster.conf")
        settings = launcher.load_settings(launcher.parse_args([path]))
        self.assertEqual(settings.warnings, [])
        self.assertTrue(settings.cluster_enabled)
        self.assertEqual((settings.port, settings.dir, settings.logfile),
                         (7000, "/var/lib/rcluster/7000", ""))
        self.assertFalse(settings.daemonize)


class CronServiceTests(TestCase):
    def test_hz_changes_take_effect_at_once(self):
        from twisted.internet.task import Clock

        from rcluster.config import Settings
        from rcluster.tap import CronService
        settings = Settings()
        clock = Clock()
        ticks = []
        cron = CronService(settings, lambda: ticks.append(clock.seconds()), clock)
        cron.startService()
        clock.advance(0.1)
        clock.advance(0.1)
        self.assertEqual(len(ticks), 2)           # hz 10
        settings.config_set([("hz", "100")])
        for _ in range(10):
            clock.advance(0.01)
        self.assertEqual(len(ticks), 12)          # hz 100
        cron.stopService()
        clock.advance(1)
        self.assertEqual(len(ticks), 12)
