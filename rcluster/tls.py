"""TLS for the client port, the cluster bus and replication links.

Redis's model (tls.c): the tls-* directives describe one server context,
used for every accepted connection, and one client context for outbound
links (bus, replication), which presents tls-client-cert-file/-key-file
if both are set and the node's own certificate otherwise.  Both verify
the peer against tls-ca-cert-file/-dir; nobody checks host names (Redis
doesn't), unless a caller of ``client_context`` passes one.

- ``server_context(settings, bus=False)``: for ``listenSSL``.  On the
  client port tls-auth-clients decides (yes: a CA-signed certificate is
  required, optional: verified if presented, no: not asked for); the
  cluster bus always requires one (mutual TLS).
- ``client_context(settings, hostname=None)``: for ``connectSSL`` /
  ``wrapClientTLS``; with a hostname, service_identity checks it too.

Both return connection creators that also answer ``getContext()``, and
build their OpenSSL context when called, so a bad file is a start-up
``ConfigError``.  Contexts are cached by the tls-* values, so a CONFIG SET
of a tls-* directive applies to new connections (``on_config_set``
validates it first, as Redis does).
"""
from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.interfaces import (IOpenSSLClientConnectionCreator,
                                         IOpenSSLServerConnectionCreator)
from zope.interface import implementer

from rcluster.config import ConfigError

_DEFAULT_PROTOCOLS = "TLSv1.2 TLSv1.3"
_PROTOCOL_OFF = {"tlsv1": SSL.OP_NO_TLSv1, "tlsv1.1": SSL.OP_NO_TLSv1_1,
                 "tlsv1.2": SSL.OP_NO_TLSv1_2, "tlsv1.3": SSL.OP_NO_TLSv1_3}
_VERIFY = {
    "no": SSL.VERIFY_NONE,
    "optional": SSL.VERIFY_PEER,
    "yes": SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
}
# Every directive a context is built from: the cache key.
_TLS_ATTRS = ("tls_cert_file", "tls_key_file", "tls_key_file_pass",
              "tls_client_cert_file", "tls_client_key_file",
              "tls_client_key_file_pass", "tls_ca_cert_file", "tls_ca_cert_dir",
              "tls_auth_clients", "tls_cluster", "tls_replication",
              "tls_protocols", "tls_ciphers", "tls_ciphersuites",
              "tls_prefer_server_ciphers", "tls_session_caching",
              "tls_session_cache_timeout", "tls_dh_params_file")
_contexts: dict = {}


def server_context(settings, bus=False):
    """The accepting side: client port (bus=False) or cluster bus."""
    return ServerTLS(settings, bus)


def client_context(settings, hostname=None):
    """The connecting side of bus and replication links."""
    return ClientTLS(settings, hostname)


def tls_in_use(settings) -> bool:
    return bool(settings.tls_port or settings.tls_cluster
                or settings.tls_replication)


def check(settings):
    """Build both contexts now: a ConfigError names what is wrong."""
    _context(settings, client=False)
    _context(settings, client=True)


def on_config_set(settings):
    """A Settings listener: reload (and validate) TLS after CONFIG SET
    tls-*, like Redis's applyTlsCfg.  A failure undoes the SET."""
    def listener(name, value):
        if not name.startswith("tls-") or not tls_in_use(settings):
            return
        _contexts.clear()       # re-read the files even if the names didn't change
        try:
            check(settings)
        except ConfigError:
            _contexts.clear()
            raise ConfigError(
                "Unable to update TLS configuration. Check server logs.")
    return listener


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    def __init__(self, settings, bus=False):
        self.settings = settings
        self.bus = bus
        self.getContext()

    def getContext(self) -> SSL.Context:
        return _context(self.settings, client=False)

    def verify_mode(self) -> int:
        # Read per connection: CONFIG SET tls-auth-clients applies at once.
        return _VERIFY["yes" if self.bus else self.settings.tls_auth_clients]

    def serverConnectionForTLS(self, protocol):
        connection = SSL.Connection(self.getContext(), None)
        connection.set_verify(self.verify_mode())
        return connection


@implementer(IOpenSSLClientConnectionCreator)
class ClientTLS:
    def __init__(self, settings, hostname=None):
        self.settings = settings
        self.hostname = hostname
        self.getContext()

    def getContext(self) -> SSL.Context:
        return _context(self.settings, client=True)

    def clientConnectionForTLS(self, protocol):
        connection = SSL.Connection(self.getContext(), None)
        if self.hostname is not None:
            if not _is_ip(self.hostname):
                connection.set_tlsext_host_name(self.hostname.encode("idna"))
            connection.set_verify(_VERIFY["yes"], _name_check(self.hostname))
        return connection


def _is_ip(host: str) -> bool:
    return isIPAddress(host) or isIPv6Address(host)


def _name_check(hostname: str):
    """An OpenSSL verify callback that also wants ``hostname`` (a DNS name
    or an IP address) in the peer certificate, via service_identity."""
    from service_identity.cryptography import (verify_certificate_hostname,
                                               verify_certificate_ip_address)
    matches = verify_certificate_ip_address if _is_ip(hostname) \
        else verify_certificate_hostname

    def callback(connection, certificate, errno, depth, ok):
        if not ok or depth != 0:
            return ok
        try:
            matches(certificate.to_cryptography(), hostname)
        except Exception:   # a mismatch, or a certificate without names:
            return False    # fail closed (exceptions die inside OpenSSL)
        return True
    return callback


def _context(settings, client: bool) -> SSL.Context:
    key = (client,) + tuple(getattr(settings, a) for a in _TLS_ATTRS)
    context = _contexts.get(key)
    if context is None:
        context = _contexts[key] = _build(settings, client)
    return context


def _build(settings, client: bool) -> SSL.Context:
    cert, key, password = (settings.tls_cert_file, settings.tls_key_file,
                           settings.tls_key_file_pass)
    if client and settings.tls_client_cert_file and settings.tls_client_key_file:
        cert, key, password = (settings.tls_client_cert_file,
                               settings.tls_client_key_file,
                               settings.tls_client_key_file_pass)
    if not cert:
        raise ConfigError("No tls-cert-file configured!")
    if not key:
        raise ConfigError("No tls-key-file configured!")
    ca_file, ca_dir = settings.tls_ca_cert_file, settings.tls_ca_cert_dir
    if not (ca_file or ca_dir) and (settings.tls_auth_clients != "no"
                                    or settings.tls_cluster
                                    or settings.tls_replication):
        raise ConfigError(
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when "
            "tls-cluster, tls-replication or tls-auth-clients are enabled!")

    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_options(SSL.OP_NO_SSLv2 | SSL.OP_NO_SSLv3 | SSL.OP_NO_COMPRESSION
                    | _protocols_off(settings.tls_protocols))
    ctx.set_verify(_VERIFY["yes"])
    _load(ctx.use_certificate_chain_file, cert, "Failed to load certificate")
    _load(lambda path: _use_key(ctx, path, password), key,
          "Failed to load private key")
    if ca_file or ca_dir:
        try:
            ctx.load_verify_locations(ca_file or None, ca_dir or None)
        except SSL.Error as err:
            raise ConfigError("Failed to configure CA certificate(s) "
                              f"file/directory: {_reason(err, ca_file or ca_dir)}")
    if settings.tls_ciphers:
        _set(ctx.set_cipher_list, settings.tls_ciphers, "ciphers")
    if settings.tls_ciphersuites:
        _set(ctx.set_tls13_ciphersuites, settings.tls_ciphersuites, "ciphersuites")
    if not client:
        _server_options(ctx, settings)
    return ctx


def _server_options(ctx, settings):
    ctx.set_options(SSL.OP_SINGLE_DH_USE)
    if settings.tls_prefer_server_ciphers:
        ctx.set_options(SSL.OP_CIPHER_SERVER_PREFERENCE)
    if settings.tls_session_caching:
        ctx.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
        ctx.set_timeout(settings.tls_session_cache_timeout)
        # Resumed sessions with client certificates need an id context.
        ctx.set_session_id(b"rcluster")
    else:
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    if settings.tls_dh_params_file:
        _load(ctx.load_tmp_dh, settings.tls_dh_params_file,
              "Failed to load DH params file")


def _protocols_off(text: str) -> int:
    """tls-protocols as OP_NO_* flags for the versions not listed."""
    wanted = (text or _DEFAULT_PROTOCOLS).lower().split()
    if not wanted or any(name not in _PROTOCOL_OFF for name in wanted):
        raise ConfigError("Invalid tls-protocols specified. Use a combination "
                          "of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.")
    off = 0
    for name, flag in _PROTOCOL_OFF.items():
        if name not in wanted:
            off |= flag
    return off


def _use_key(ctx, path, password):
    """Load a PEM private key, decrypting it with tls-key-file-pass.  We
    decrypt it ourselves: OpenSSL left alone would prompt on a terminal."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        key = load_pem_private_key(data, password.encode() if password else None)
    except (TypeError, ValueError) as err:
        # No, or a wrong, password; or not a PEM key at all.
        raise SSL.Error([("", "", str(err).rstrip("."))])
    try:
        ctx.use_privatekey(key)
    except TypeError:   # pyOpenSSL < 24.3 only takes its own PKey
        from OpenSSL.crypto import PKey
        ctx.use_privatekey(PKey.from_cryptography_key(key))


def _load(method, path, what):
    try:
        open(path, "rb").close()
    except OSError as err:
        raise ConfigError(f"{what}: {path}: {err.strerror}")
    try:
        method(path)
    except SSL.Error as err:
        raise ConfigError(f"{what}: {path}: {_reason(err, path)}")


def _set(method, value, what):
    try:
        method(value.encode())
    except SSL.Error:
        raise ConfigError(f"Failed to configure {what}: {value}")


def _reason(err: SSL.Error, subject) -> str:
    """OpenSSL's error queue as one line ('key values mismatch')."""
    reasons = [entry[2] for entry in (err.args[0] if err.args else ())
               if isinstance(entry, tuple) and len(entry) == 3 and entry[2]]
    return "; ".join(dict.fromkeys(reasons)) or f"can't use {subject}"
