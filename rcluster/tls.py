"""TLS contexts for the client port, the cluster bus and replication.

Placeholder API (implemented with pyOpenSSL / twisted.internet.ssl):
- server_context(settings, bus=False): the listening side; verifies client
  certificates against tls-ca-cert-file when tls-auth-clients (always on
  the bus).
- client_context(settings, hostname=None): the connecting side (bus links,
  replication), presenting our certificate and verifying the peer's.
"""


def server_context(settings, bus=False):
    raise NotImplementedError("TLS is not built yet")


def client_context(settings, hostname=None):
    raise NotImplementedError("TLS is not built yet")
