"""TLS contexts: construction, errors, and real handshakes over memory BIOs.

The certificates come from etc/tls/gen-certs.sh (openssl), made once per
class in a temporary directory; handshakes run between two in-memory
OpenSSL connections, with no sockets.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from OpenSSL import SSL
from twisted.trial.unittest import TestCase

from rcluster import tls
from rcluster.config import ConfigError, Settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEN_CERTS = os.path.join(ROOT, "etc", "tls", "gen-certs.sh")


def make_certs() -> str:
    directory = tempfile.mkdtemp(prefix="rcluster-tls-")
    subprocess.run(["sh", GEN_CERTS, directory], check=True,
                   capture_output=True, timeout=60)
    return directory


def pump(client, server, rounds=10):
    """Run a handshake, then send b"PING" from client to server; returns
    what the server read.  Raises the first SSL.Error either side hits."""
    client.set_connect_state()
    server.set_accept_state()
    for _ in range(rounds):
        for side, other in ((client, server), (server, client)):
            try:
                side.do_handshake()
            except SSL.WantReadError:
                pass
            _move(side, other)
    client.send(b"PING")
    _move(client, server)
    return server.recv(64)


def _move(source, target):
    try:
        data = source.bio_read(65536)
    except SSL.WantReadError:
        return
    target.bio_write(data)


class FakeProtocol:
    pass


def common_name(certificate) -> str:
    from cryptography.x509.oid import NameOID
    names = certificate.to_cryptography().subject
    return names.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


class TLSTestCase(TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("openssl not installed")
        cls.certs = make_certs()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.certs, name)

    def settings(self, **values):
        settings = Settings()
        settings.tls_port = 7000
        settings.tls_cert_file = self.path("node.crt")
        settings.tls_key_file = self.path("node.key")
        settings.tls_ca_cert_file = self.path("ca.crt")
        for name, value in values.items():
            setattr(settings, name, value)
        return settings

    def client_connection(self, cert=None, key=None, ca="ca.crt", version=None):
        """A plain OpenSSL client (like redis-cli) with an optional cert,
        optionally speaking one TLS version only."""
        ctx = SSL.Context(SSL.TLS_METHOD)
        if version is not None:
            ctx.set_min_proto_version(version)
            ctx.set_max_proto_version(version)
        ctx.load_verify_locations(self.path(ca))
        ctx.set_verify(SSL.VERIFY_PEER)
        if cert:
            ctx.use_certificate_chain_file(self.path(cert))
            ctx.use_privatekey_file(self.path(key))
        return SSL.Connection(ctx, None)

    def serve(self, settings, bus=False):
        creator = tls.server_context(settings, bus=bus)
        return creator.serverConnectionForTLS(FakeProtocol())


class ClientAuthTests(TLSTestCase):
    def test_auth_clients_yes_accepts_a_ca_signed_client(self):
        server = self.serve(self.settings())
        client = self.client_connection("client.crt", "client.key")
        self.assertEqual(pump(client, server), b"PING")
        self.assertEqual(common_name(server.get_peer_certificate()),
                         "rcluster client")

    def test_auth_clients_yes_refuses_a_client_without_certificate(self):
        server = self.serve(self.settings())
        client = self.client_connection()
        self.assertRaises(SSL.Error, pump, client, server)

    def test_auth_clients_yes_refuses_a_certificate_of_another_ca(self):
        server = self.serve(self.settings())
        client = self.client_connection("other-client.crt", "other-client.key")
        self.assertRaises(SSL.Error, pump, client, server)

    def test_auth_clients_optional(self):
        settings = self.settings(tls_auth_clients="optional")
        self.assertEqual(pump(self.client_connection(), self.serve(settings)),
                         b"PING")
        other = self.client_connection("other-client.crt", "other-client.key")
        self.assertRaises(SSL.Error, pump, other, self.serve(settings))

    def test_auth_clients_no_does_not_ask(self):
        settings = self.settings(tls_auth_clients="no")
        server = self.serve(settings)
        self.assertEqual(pump(self.client_connection(), server), b"PING")
        self.assertIsNone(server.get_peer_certificate())

    def test_auth_clients_is_read_per_connection(self):
        settings = self.settings()
        creator = tls.server_context(settings)
        settings.tls_auth_clients = "no"
        server = creator.serverConnectionForTLS(FakeProtocol())
        self.assertEqual(pump(self.client_connection(), server), b"PING")

    def test_server_without_the_ca_is_refused_by_clients(self):
        server = self.serve(self.settings(tls_auth_clients="no"))
        client = self.client_connection(ca="other-ca.crt")
        self.assertRaises(SSL.Error, pump, client, server)


class BusTests(TLSTestCase):
    """The bus: mutual TLS whatever tls-auth-clients says."""

    def bus_settings(self, **values):
        return self.settings(tls_cluster=True, tls_auth_clients="no", **values)

    def test_node_to_node(self):
        settings = self.bus_settings()
        server = self.serve(settings, bus=True)
        client = tls.client_context(settings).clientConnectionForTLS(FakeProtocol())
        self.assertEqual(pump(client, server), b"PING")
        self.assertEqual(common_name(server.get_peer_certificate()),
                         "rcluster node")
        self.assertEqual(common_name(client.get_peer_certificate()),
                         "rcluster node")

    def test_bus_requires_a_client_certificate(self):
        server = self.serve(self.bus_settings(), bus=True)
        self.assertEqual(server.get_verify_mode(),
                         SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT)
        self.assertRaises(SSL.Error, pump, self.client_connection(), server)

    def test_bus_refuses_a_certificate_of_another_ca(self):
        server = self.serve(self.bus_settings(), bus=True)
        client = self.client_connection("other-client.crt", "other-client.key")
        self.assertRaises(SSL.Error, pump, client, server)

    def test_outbound_links_present_the_client_certificate_if_set(self):
        settings = self.bus_settings(
            tls_client_cert_file=self.path("client.crt"),
            tls_client_key_file=self.path("client.key"))
        server = self.serve(settings, bus=True)
        client = tls.client_context(settings).clientConnectionForTLS(FakeProtocol())
        self.assertEqual(pump(client, server), b"PING")
        self.assertEqual(common_name(server.get_peer_certificate()),
                         "rcluster client")

    def test_outbound_links_verify_the_peer(self):
        settings = self.bus_settings(tls_ca_cert_file=self.path("other-ca.crt"))
        server = self.serve(self.bus_settings(), bus=True)
        client = tls.client_context(settings).clientConnectionForTLS(FakeProtocol())
        self.assertRaises(SSL.Error, pump, client, server)

    def test_hostname_checked_when_given(self):
        settings = self.bus_settings()
        for name in ("localhost", "127.0.0.1", "::1"):
            creator = tls.client_context(settings, hostname=name)
            client = creator.clientConnectionForTLS(FakeProtocol())
            self.assertEqual(pump(client, self.serve(settings, bus=True)), b"PING")

    def test_wrong_hostname_refused(self):
        settings = self.bus_settings()
        for name in ("node.example.com", "10.1.2.3"):
            creator = tls.client_context(settings, hostname=name)
            client = creator.clientConnectionForTLS(FakeProtocol())
            self.assertRaises(SSL.Error, pump, client,
                              self.serve(settings, bus=True))


class ContextTests(TLSTestCase):
    def context_error(self, **values) -> str:
        """The ConfigError server_context raises for these settings."""
        return str(self.assertRaises(ConfigError, tls.server_context,
                                     self.settings(**values)))

    def test_protocols_default_to_tls12_and_tls13(self):
        settings = self.settings()
        for version, name in ((SSL.TLS1_2_VERSION, "TLSv1.2"),
                              (SSL.TLS1_3_VERSION, "TLSv1.3")):
            client = self.client_connection("client.crt", "client.key",
                                            version=version)
            server = self.serve(settings)
            self.assertEqual(pump(client, server), b"PING")
            self.assertEqual(server.get_protocol_version_name(), name)
        client = self.client_connection("client.crt", "client.key",
                                        version=SSL.TLS1_1_VERSION)
        self.assertRaises(SSL.Error, pump, client, self.serve(settings))

    def test_tls_protocols_honoured(self):
        settings = self.settings(tls_protocols="TLSv1.2")
        client = self.client_connection("client.crt", "client.key")
        server = self.serve(settings)
        self.assertEqual(pump(client, server), b"PING")
        self.assertEqual(server.get_protocol_version_name(), "TLSv1.2")
        client = self.client_connection("client.crt", "client.key",
                                        version=SSL.TLS1_3_VERSION)
        self.assertRaises(SSL.Error, pump, client, self.serve(settings))

    def test_bad_tls_protocols(self):
        self.assertEqual(self.context_error(tls_protocols="TLSv1.2 SSLv3"),
                         "Invalid tls-protocols specified. Use a combination "
                         "of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.")

    def test_ciphers_and_ciphersuites(self):
        for protocols, option, cipher in (
                ("TLSv1.3", "tls_ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"),
                ("TLSv1.2", "tls_ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256")):
            settings = self.settings(tls_protocols=protocols, **{option: cipher})
            server = self.serve(settings)
            self.assertEqual(pump(self.client_connection("client.crt",
                                                         "client.key"),
                                  server), b"PING")
            self.assertEqual(server.get_cipher_name(), cipher)

    def test_bad_ciphers(self):
        self.assertEqual(self.context_error(tls_ciphers="NO-SUCH-CIPHER"),
                         "Failed to configure ciphers: NO-SUCH-CIPHER")
        self.assertEqual(self.context_error(tls_ciphersuites="NOPE"),
                         "Failed to configure ciphersuites: NOPE")

    def test_missing_files_are_clear_errors(self):
        missing = self.path("missing.crt")
        self.assertEqual(self.context_error(tls_cert_file=missing),
                         f"Failed to load certificate: {missing}: "
                         "No such file or directory")
        self.assertEqual(self.context_error(tls_key_file=missing),
                         f"Failed to load private key: {missing}: "
                         "No such file or directory")

    def test_unusable_files_are_clear_errors(self):
        key = self.path("client.key")
        self.assertEqual(self.context_error(tls_key_file=key),
                         f"Failed to load private key: {key}: "
                         "key values mismatch")
        err = self.context_error(tls_ca_cert_file=self.path("node.key"))
        self.assertTrue(err.startswith(
            "Failed to configure CA certificate(s) file/directory: "), err)

    def test_required_settings(self):
        self.assertEqual(self.context_error(tls_cert_file=""),
                         "No tls-cert-file configured!")
        self.assertEqual(self.context_error(tls_key_file=""),
                         "No tls-key-file configured!")
        self.assertEqual(self.context_error(tls_ca_cert_file=""),
                         "Either tls-ca-cert-file or tls-ca-cert-dir "
                         "must be specified when tls-cluster, tls-replication "
                         "or tls-auth-clients are enabled!")
        # No CA is fine when nobody's certificate is checked (as Redis).
        tls.check(self.settings(tls_ca_cert_file="", tls_auth_clients="no"))
        self.assertRaises(ConfigError, tls.check, self.settings(
            tls_ca_cert_file="", tls_auth_clients="no", tls_replication=True))

    def test_encrypted_key_with_passphrase(self):
        encrypted = self.path("node-encrypted.key")
        subprocess.run(["openssl", "pkey", "-in", self.path("node.key"),
                        "-aes256", "-passout", "pass:s3cret", "-out", encrypted],
                       check=True, capture_output=True)
        settings = self.settings(tls_key_file=encrypted, tls_key_file_pass="s3cret")
        self.assertEqual(pump(self.client_connection("client.crt", "client.key"),
                              self.serve(settings)), b"PING")
        # Without (or with a wrong) passphrase: an error, never a prompt.
        for password in ("", "wrong"):
            self.assertRaises(ConfigError, tls.server_context,
                              self.settings(tls_key_file=encrypted,
                                            tls_key_file_pass=password))

    def test_contexts_are_shared_until_settings_change(self):
        settings = self.settings()
        first = tls.server_context(settings).getContext()
        self.assertIs(tls.server_context(settings).getContext(), first)
        settings.tls_protocols = "TLSv1.3"
        self.assertIsNot(tls.server_context(settings).getContext(), first)

    def test_config_set_validates_and_undoes(self):
        settings = self.settings()
        settings.listeners.append(tls.on_config_set(settings))
        settings.config_set([("tls-protocols", "TLSv1.3")])
        self.assertEqual(settings.tls_protocols, "TLSv1.3")
        err = self.assertRaises(ConfigError, settings.config_set,
                                [("tls-cert-file", self.path("missing.crt"))])
        self.assertEqual(str(err), "CONFIG SET failed (possibly related to "
                         "argument 'tls-cert-file') - Unable to update TLS "
                         "configuration. Check server logs.")
        self.assertEqual(settings.tls_cert_file, self.path("node.crt"))
