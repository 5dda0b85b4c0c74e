"""Real processes on loopback for integration and interop tests.

``NodeProcess`` runs ``twistd -n rcluster`` (or, with ``binary=
'redis-server'``, Debian's redis-server) in a private temporary directory
on a free port; a test registers ``stop`` with ``addCleanup`` so every
process it starts is stopped, whatever happens.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def free_port(bus: bool = True) -> int:
    """A loopback port that is free, and (with bus) port+10000 too.

    Picked below the kernel's ephemeral range (32768 and up on Linux), so
    outgoing connections - bus links between nodes - can't take a port
    between the moment it is picked and the moment a node binds it; and
    never twice in this process (nodes started in parallel threads would
    otherwise share one, and the loser's readiness PING be answered by the
    winner)."""
    for _ in range(500):
        port = random.randrange(15000, 22000)
        wanted = (port, port + 10000) if bus else (port,)
        with _HANDED_LOCK:
            if any(p in _HANDED for p in wanted):
                continue
            try:
                for candidate in wanted:
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            _HANDED.update(wanted)
        return port
    raise RuntimeError("no free port pair found")


_HANDED: set = set()        # ports free_port gave out (see there)
_HANDED_LOCK = threading.Lock()


def wait_for(predicate, timeout=20.0, what="condition"):
    """Poll ``predicate`` until it returns a true value (returned) or time
    runs out (AssertionError naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def have(binary: str) -> bool:
    return shutil.which(binary) is not None


class NodeProcess:
    """One server process; ``args`` are extra directives as (name, value)."""

    def __init__(self, binary="rcluster", port=None, cluster=False,
                 directives=(), extra_args=(), workdir=None):
        self.binary = binary
        self.port = port or free_port()
        self.cluster = cluster
        self.directives = list(directives)
        self.extra_args = list(extra_args)
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"{binary}-{self.port}-")
        self._own_workdir = workdir is None
        self.proc = None
        self.log_path = os.path.join(self.workdir, "node.log")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list:
        directives = [("port", str(self.port)), ("bind", "127.0.0.1"),
                      ("cluster-enabled", "yes" if self.cluster else "no"),
                      ("save", ""), ("appendonly", "no"),
                      ("dir", self.workdir)] + self.directives
        if self.binary == "redis-server":
            args = ["redis-server"]
            for name, value in directives:
                args += [f"--{name}", value]
            return args + self.extra_args
        args = [TWISTD, "-n", "--pidfile=", "--logfile", self.log_path,
                "rcluster"]
        for name, value in directives:
            args += ["--set", f"{name}={value}"]
        return args + self.extra_args

    def start(self, timeout=20.0):
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        log = open(self.log_path + ".out", "wb")
        self.proc = subprocess.Popen(self.command(), cwd=self.workdir,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.binary} on {self.port} exited:\n"
                                   + self.output())
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.binary} on {self.port} not ready:\n" + self.output())

    def output(self) -> str:
        text = []
        for path in (self.log_path, self.log_path + ".out"):
            try:
                with open(path, errors="replace") as fh:
                    text.append(fh.read()[-4000:])
            except OSError:
                pass
        return "\n".join(text)

    def kill(self):
        """SIGKILL, as a crash would (the workdir stays for a restart)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def cleanup(self):
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def client(self, **kwargs):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port,
                           socket_timeout=10, **kwargs)

    def cli(self, *args, input=None, check=True) -> str:
        """Run redis-cli against this node; returns its stdout."""
        result = subprocess.run(["redis-cli", "-p", str(self.port), *args],
                                input=input, capture_output=True, text=True,
                                timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout


def start_node(test, **kwargs) -> NodeProcess:
    """Start a node for a trial TestCase and register its cleanup."""
    node = NodeProcess(**kwargs)
    test.addCleanup(node.cleanup)
    node.start()
    return node
