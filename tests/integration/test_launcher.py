"""``rcluster-server`` as redis-server is run: Debian's own redis.conf,
extra ``--directive value`` arguments, ``daemonize yes``, and its log."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import TestCase

from tests.integration.harness import ROOT, NodeProcess, free_port, have

LAUNCHER = os.path.join(os.path.dirname(sys.executable), "rcluster-server")
DEBIAN_CONF = "/etc/redis/redis.conf"
LOG_LINE = re.compile(r"^\d+:[MS] \d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3} [.\-*#] ")


class LauncherNode(NodeProcess):
    """rcluster-server CONF --port P ... in the foreground."""

    def __init__(self, conf=None, extra_args=(), **kwargs):
        super().__init__(**kwargs)
        self.conf = conf
        self.launcher_args = list(extra_args)

    def command(self):
        args = [LAUNCHER] + ([self.conf] if self.conf else [])
        return args + ["--port", str(self.port), "--dir", self.workdir,
                       "--daemonize", "no", "--supervised", "no",
                       "--pidfile", os.path.join(self.workdir, "node.pid"),
                       "--logfile", "", "--save", ""] + self.launcher_args


def environment():
    return dict(os.environ, PYTHONPATH=ROOT)


class LauncherTests(TestCase):
    def setUp(self):
        if not have("redis-cli"):
            self.skipTest("redis-cli not installed")

    def start(self, **kwargs):
        node = LauncherNode(**kwargs)
        self.addCleanup(node.cleanup)
        return node.start()

    def debian_conf(self, workdir):
        if not os.access(DEBIAN_CONF, os.R_OK):
            self.skipTest(f"{DEBIAN_CONF} not readable (redis-server not installed)")
        copy = os.path.join(workdir, "redis.conf")
        shutil.copy(DEBIAN_CONF, copy)
        return copy

    def test_debian_redis_conf(self):
        node = LauncherNode()
        self.addCleanup(node.cleanup)
        node.conf = self.debian_conf(node.workdir)
        node.start()
        self.assertEqual(node.cli("ping").strip(), "PONG")
        self.assertEqual(node.cli("set", "a", "1").strip(), "OK")
        self.assertEqual(node.cli("get", "a").strip(), "1")
        with open(os.path.join(node.workdir, "node.pid")) as fh:
            self.assertEqual(fh.read(), f"{node.proc.pid}\n")
        output = node.output()
        self.assertNotIn("FATAL", output)
        self.assertNotIn("Traceback", output)
        log = [line for line in output.splitlines() if LOG_LINE.match(line)]
        self.assertTrue(any(line.endswith("# Configuration loaded") for line in log),
                        output)
        self.assertTrue(any(line.endswith("* Ready to accept connections")
                            for line in log), output)

    def test_not_a_cluster_node_unless_configured(self):
        node = self.start()
        self.assertIn("cluster_enabled:0", node.cli("info", "cluster"))

    def test_config_from_stdin_and_multi_word_values(self):
        port = free_port()
        node = LauncherNode(port=port, extra_args=[
            "--bind", "127.0.0.1", "-::1", "-"])
        self.addCleanup(node.cleanup)
        env = environment()
        node.proc = subprocess.Popen(
            node.command(), cwd=node.workdir, env=env, stdin=subprocess.PIPE,
            stdout=open(node.log_path + ".out", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        node.proc.stdin.write(b"requirepass from-stdin\n")
        node.proc.stdin.close()
        node.wait_ready()
        self.assertEqual(node.cli("-a", "from-stdin", "--no-auth-warning",
                                  "ping").strip(), "PONG")
        self.assertIn("NOAUTH", node.cli("ping"))

    def test_daemonize_yes(self):
        node = LauncherNode()
        self.addCleanup(node.cleanup)
        pidfile = os.path.join(node.workdir, "daemon.pid")
        logfile = os.path.join(node.workdir, "daemon.log")
        command = [LAUNCHER, self.debian_conf(node.workdir),
                   "--port", str(node.port), "--dir", node.workdir,
                   "--daemonize", "yes", "--supervised", "no",
                   "--pidfile", pidfile, "--logfile", logfile, "--save", ""]
        result = subprocess.run(command, cwd=node.workdir, env=environment(),
                                capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout), (0, ""), result.stderr)
        with open(pidfile) as fh:
            pid = int(fh.read())
        self.addCleanup(_kill, pid)
        self.assertEqual(node.cli("ping").strip(), "PONG")
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid)
        self.assertFalse(os.path.exists(pidfile))
        with open(logfile) as fh:
            lines = fh.read().splitlines()
        self.assertTrue(lines and all(LOG_LINE.match(line) for line in lines), lines)
        self.assertTrue(all(line.startswith(f"{pid}:M ") for line in lines))
        self.assertIn("* Ready to accept connections", "\n".join(lines))

    def test_port_in_use_is_a_clean_error(self):
        node = self.start()
        result = subprocess.run([LAUNCHER, "--port", str(node.port), "--bind",
                                 "127.0.0.1", "--save", ""],
                                capture_output=True, text=True, timeout=60,
                                cwd=node.workdir, env=environment())
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"Failed listening on 127.0.0.1:{node.port}", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_bad_config_is_fatal(self):
        result = subprocess.run([LAUNCHER, "--port", "seventy"], capture_output=True,
                                text=True, timeout=60, env=environment())
        self.assertEqual(result.returncode, 1)
        self.assertIn("*** FATAL CONFIG FILE ERROR", result.stderr)
        self.assertIn("argument couldn't be parsed into an integer", result.stderr)


def _wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still running")


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class SystemdUnitTests(TestCase):
    UNIT = os.path.join(ROOT, "etc", "systemd", "rcluster@.service")

    def test_unit_runs_the_launcher_on_the_instance_config(self):
        with open(self.UNIT) as fh:
            unit = fh.read()
        self.assertIn("\nExecStart=/opt/rcluster/venv/bin/rcluster-server "
                      "/etc/rcluster/%i.conf --daemonize no --supervised no\n", unit)
        self.assertIn("\nType=simple\n", unit)
        self.assertIn("\nRestart=on-failure\n", unit)

    def test_systemd_analyze_verify(self):
        if not have("systemd-analyze"):
            self.skipTest("systemd-analyze not installed")
        workdir = tempfile.mkdtemp(prefix="rcluster-unit-")
        self.addCleanup(shutil.rmtree, workdir, True)
        with open(self.UNIT) as fh:
            # verify wants an ExecStart that exists: point it at this venv.
            unit = fh.read().replace("/opt/rcluster/venv/bin/rcluster-server",
                                     LAUNCHER)
        path = os.path.join(workdir, "rcluster@.service")
        with open(path, "w") as fh:
            fh.write(unit)
        result = subprocess.run(["systemd-analyze", "verify", path],
                                capture_output=True, text=True, timeout=60)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        self.assertEqual([line for line in output.splitlines()
                          if "rcluster@" in line], [], output)
