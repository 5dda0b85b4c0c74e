"""TLS against real ``twistd rcluster`` processes: redis-cli --tls, redis-py
with ssl, the clients a node must refuse (no certificate, a certificate
from another CA), plain and TLS ports together, and the cluster bus over
mutual TLS."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from twisted.trial.unittest import TestCase

from tests.integration.harness import (ROOT, TWISTD, NodeProcess, free_port,
                                       have, wait_for)

GEN_CERTS = os.path.join(ROOT, "etc", "tls", "gen-certs.sh")


class TLSNode(NodeProcess):
    """A node whose client port may speak only TLS: readiness is a PING
    over TLS with the test client certificate."""

    def __init__(self, certs, **kwargs):
        super().__init__(**kwargs)
        self.certs = certs

    def cert(self, name):
        return os.path.join(self.certs, name)

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        context = ssl.create_default_context(cafile=self.cert("ca.crt"))
        context.load_cert_chain(self.cert("client.crt"), self.cert("client.key"))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node on {self.port} exited:\n" + self.output())
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as raw, \
                        context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except (OSError, ssl.SSLError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"node on {self.port} not ready:\n" + self.output())

    def tls_cli(self, *args, cert="client", port=None):
        """redis-cli --tls; cert=None presents no client certificate."""
        command = ["redis-cli", "--tls", "--cacert", self.cert("ca.crt"),
                   "-p", str(port or self.port)]
        if cert:
            command += ["--cert", self.cert(f"{cert}.crt"),
                        "--key", self.cert(f"{cert}.key")]
        return subprocess.run(command + list(args), capture_output=True,
                              text=True, timeout=30)

    def tls_client(self, cert="client", port=None):
        import redis
        kwargs = {}
        if cert:
            kwargs = {"ssl_certfile": self.cert(f"{cert}.crt"),
                      "ssl_keyfile": self.cert(f"{cert}.key")}
        # retry=None: a refused handshake fails at once, not after backoff.
        return redis.Redis(host="127.0.0.1", port=port or self.port,
                           socket_timeout=10, retry=None, ssl=True,
                           ssl_ca_certs=self.cert("ca.crt"), **kwargs)


def tls_args(certs, *extra):
    path = lambda name: os.path.join(certs, name)  # noqa: E731
    return ["--tls-cert-file", path("node.crt"), "--tls-key-file",
            path("node.key"), "--tls-ca-cert-file", path("ca.crt"), *extra]


class TLSTests(TestCase):
    """One ``--tls`` node shared by the class; tests that need another
    configuration start their own."""

    @classmethod
    def setUpClass(cls):
        if not (have("openssl") and have("redis-cli")):
            raise unittest.SkipTest("needs openssl and redis-cli")
        cls.certs = tempfile.mkdtemp(prefix="rcluster-tls-certs-")
        subprocess.run(["sh", GEN_CERTS, cls.certs], check=True,
                       capture_output=True, timeout=60)
        cls.node = TLSNode(cls.certs, extra_args=["--tls", *tls_args(cls.certs)])
        try:
            cls.node.start()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        shutil.rmtree(cls.certs, ignore_errors=True)

    def tls_args(self, *extra):
        return tls_args(self.certs, *extra)

    def start(self, node_class=TLSNode, extra_args=()):
        node = node_class(self.certs, extra_args=list(extra_args))
        self.addCleanup(node.cleanup)
        return node.start()

    def assertRefused(self, result):
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertNotIn("PONG", result.stdout)

    def test_tls_node_serves_redis_cli_and_redis_py(self):
        node = self.node
        result = node.tls_cli("ping")
        self.assertEqual((result.returncode, result.stdout), (0, "PONG\n"))
        self.assertEqual(node.tls_cli("set", "k", "v").stdout, "OK\n")
        r = node.tls_client()
        self.assertEqual(r.get("k"), b"v")
        self.assertTrue(r.set("k2", "x" * 100000))
        self.assertEqual(len(r.get("k2")), 100000)
        # --tls turned the plain port off.
        result = subprocess.run(["redis-cli", "-p", str(node.port), "ping"],
                                capture_output=True, text=True, timeout=30)
        self.assertRefused(result)

    def test_clients_without_or_with_a_foreign_certificate_are_refused(self):
        node = self.node
        self.assertRefused(node.tls_cli("ping", cert=None))
        self.assertRefused(node.tls_cli("ping", cert="other-client"))
        import redis
        for cert in (None, "other-client"):
            with self.assertRaises(redis.ConnectionError):
                node.tls_client(cert=cert).ping()
        # The node is unharmed.
        self.assertEqual(node.tls_cli("ping").stdout, "PONG\n")

    def test_auth_clients_optional_and_no(self):
        # tls-auth-clients is read per connection: CONFIG SET applies at once.
        node = self.node
        self.addCleanup(node.tls_cli, "config", "set", "tls-auth-clients", "yes")
        self.assertEqual(node.tls_cli("config", "set", "tls-auth-clients",
                                      "optional").stdout, "OK\n")
        self.assertEqual(node.tls_cli("ping", cert=None).stdout, "PONG\n")
        self.assertEqual(node.tls_cli("ping").stdout, "PONG\n")
        self.assertRefused(node.tls_cli("ping", cert="other-client"))
        self.assertEqual(node.tls_cli("config", "set", "tls-auth-clients",
                                      "no").stdout, "OK\n")
        self.assertEqual(node.tls_cli("ping", cert=None).stdout, "PONG\n")
        self.assertTrue(node.tls_client(cert=None).ping())

    def test_plain_and_tls_ports_together(self):
        tls_port = free_port(bus=False)
        node = self.start(_PlainReady,
                          extra_args=["--set", f"tls-port={tls_port}",
                                      *self.tls_args()])
        self.assertEqual(node.cli("set", "shared", "1").strip(), "OK")
        self.assertEqual(node.tls_cli("get", "shared", port=tls_port).stdout, "1\n")
        self.assertRefused(node.tls_cli("ping", port=tls_port, cert=None))

    def test_output_buffer_limit_cuts_off_a_tls_client_that_never_reads(self):
        node = self.start(extra_args=[
            "--tls", *self.tls_args(),
            "--set", "client-output-buffer-limit=normal 2mb 0 0"])
        r = node.tls_client()
        r.set("big", b"v" * (256 * 1024))
        context = ssl.create_default_context(cafile=node.cert("ca.crt"))
        context.load_cert_chain(node.cert("client.crt"), node.cert("client.key"))
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", node.port))
        lazy = context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.addCleanup(lazy.close)
        lazy.settimeout(10)
        request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 100
        try:
            for _ in range(10):      # 1000 replies: 256 MB unless cut off
                lazy.sendall(request)
        except OSError:
            pass                     # already dropped: as intended
        line = "scheduled to be closed ASAP for overcoming of output buffer"
        wait_for(lambda: line in node.output(), 15)
        wait_for(lambda: len(r.client_list()) == 1, 15)
        self.assertTrue(r.ping())

    def test_cluster_bus_over_mutual_tls(self):
        nodes = []
        for _ in range(2):
            node = TLSNode(self.certs, cluster=True,
                           extra_args=["--tls", *self.tls_args()])
            self.addCleanup(node.cleanup)
            nodes.append(node.start())
        a, b = nodes
        self.assertEqual(a.tls_cli("cluster", "meet", "127.0.0.1",
                                   str(b.port)).stdout, "OK\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            views = [node.tls_cli("cluster", "nodes").stdout for node in nodes]
            if all(view.count(" connected") == 2 for view in views):
                break
            time.sleep(0.2)
        self.assertTrue(all(view.count(" connected") == 2 for view in views), views)

    def test_missing_certificate_is_a_clean_start_up_error(self):
        missing = os.path.join(self.certs, "missing.crt")
        port = free_port()
        args = [TWISTD, "-n", "--pidfile=", "rcluster", "--standalone",
                "--port", str(port), "--tls", *self.tls_args(
                    "--tls-cert-file", missing)]
        env = dict(os.environ, PYTHONPATH=ROOT)
        result = subprocess.run(args, capture_output=True, text=True,
                                timeout=60, cwd=self.certs, env=env)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertIn(f"rcluster: Failed to load certificate: {missing}: "
                      "No such file or directory", output)
        self.assertNotIn("Traceback", output)


class _PlainReady(TLSNode):
    """Plain port + tls-port: the harness's plain readiness check works."""
    wait_ready = NodeProcess.wait_ready
