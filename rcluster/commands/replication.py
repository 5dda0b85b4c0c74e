"""Replication commands: REPLICAOF/SLAVEOF, SYNC/PSYNC, REPLCONF, WAIT,
FAILOVER (standalone), and DEBUG DIGEST / DIGEST-VALUE.

The work is the replication service's (rcluster/replication/); a server
without it (unit tests of other families) answers as a master with no
replicas, and refuses what needs the service."""
from __future__ import annotations

from rcluster.commands.common import parse_int
from rcluster.commands.debug import debug_subcommand
from rcluster.commands.table import CommandError, command
from rcluster.replication import digest
from rcluster.resp.codec import NO_REPLY, OK, Status

_ADMIN = dict(group="server", acl="admin dangerous")
_REPLICAOF_ARGS = ({"name": "args", "type": "oneof", "arguments": (
    {"name": "host-port", "type": "block", "arguments": (
        {"name": "host", "type": "string"},
        {"name": "port", "type": "integer"})},
    {"name": "no-one", "type": "block", "arguments": (
        {"name": "no", "type": "pure-token", "token": "NO"},
        {"name": "one", "type": "pure-token", "token": "ONE"})})},)
_FAILOVER_ARGS = (
    {"name": "target", "token": "TO", "type": "block", "optional": True,
     "arguments": (
         {"name": "host", "type": "string"},
         {"name": "port", "type": "integer"},
         {"token": "FORCE", "name": "force", "type": "pure-token",
          "optional": True})},
    {"token": "ABORT", "name": "abort", "type": "pure-token",
     "optional": True},
    {"token": "TIMEOUT", "name": "milliseconds", "type": "integer",
     "optional": True})
_NO_SERVICE = "ERR replication is not running on this node"


def _service(c):
    from rcluster.replication.service import replication
    svc = replication(c.server)
    if svc is None:
        raise CommandError(_NO_SERVICE)
    return svc


@command("replicaof", 3, "admin noscript stale no_async_loading",
         since="5.0.0", complexity="O(1)",
         summary="Make the server a replica of another instance, or promote "
                 "it as master.", arguments=_REPLICAOF_ARGS, **_ADMIN)
def replicaof(c, argv):
    return _replicaof(c, argv)


@command("slaveof", 3, "admin noscript stale no_async_loading",
         since="1.0.0", complexity="O(1)", deprecated_since="5.0.0",
         replaced_by="`REPLICAOF`", doc_flags=("deprecated",),
         summary="Make the server a replica of another instance, or promote "
                 "it as master.", arguments=_REPLICAOF_ARGS, **_ADMIN)
def slaveof(c, argv):
    return _replicaof(c, argv)


def _replicaof(c, argv):
    if c.server.cluster_mode:
        raise CommandError("ERR REPLICAOF not allowed in cluster mode.")
    svc = _service(c)
    host, port = argv[1], argv[2]
    if host.lower() == b"no" and port.lower() == b"one":
        if svc.master_host is not None:
            svc.become_master()
        return OK
    if c.kind == "replica":
        raise CommandError("ERR Command is not valid when client is a "
                           "replica.")
    port = parse_int(port)
    if port < 0 or port > 65535:
        raise CommandError("ERR Invalid master port")
    host = host.decode("utf-8", "replace")
    if svc.master_host == host and svc.master_port == port:
        return Status("OK Already connected to specified master")
    svc.replicate_to(host, port)
    return OK


@command("sync", 1, "admin noscript no_async_loading no_multi",
         since="1.0.0", complexity="",
         summary="Internal command used for replication", **_ADMIN)
def sync(c, argv):
    return _reply(_service(c).master.psync(c, argv))


@command("psync", -3, "admin noscript no_async_loading no_multi",
         since="2.8.0", complexity="",
         summary="Internal command used for replication",
         arguments=({"name": "replicationid", "type": "string"},
                    {"name": "offset", "type": "integer"}), **_ADMIN)
def psync(c, argv):
    return _reply(_service(c).master.psync(c, argv))


def _reply(value):
    return NO_REPLY if value is None else value


@command("replconf", -1, "admin noscript loading stale allow_busy",
         since="3.0.0", complexity="O(1)", doc_flags=("syscmd",),
         summary="An internal command for configuring the replication "
                 "stream", **_ADMIN)
def replconf(c, argv):
    reply = _service(c).master.replconf(c, argv)
    if reply == "OK":
        return OK
    return _reply(reply)


@command("wait", 3, "noscript", group="generic", acl="connection",
         since="3.0.0", complexity="O(1)",
         tips=("request_policy:all_shards", "response_policy:agg_min"),
         summary="Wait for the synchronous replication of all the write "
                 "commands sent in the context of the current connection",
         arguments=({"name": "numreplicas", "type": "integer"},
                    {"name": "timeout", "type": "integer"}))
def wait(c, argv):
    svc = _service(c)
    if svc.master_host is not None:
        raise CommandError(
            "ERR WAIT cannot be used with replica instances. Please also "
            "note that since Redis 4.0 if a replica is configured to be "
            "writable (which is not the default) writes to replicas are "
            "just local and are not propagated.")
    numreplicas = parse_int(argv[1])
    timeout = parse_int(argv[2], "ERR timeout is not an integer or out of "
                                 "range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    return svc.master.wait(c, numreplicas, timeout)


@command("failover", -1, "admin noscript stale", since="6.2.0",
         complexity="O(1)",
         summary="Start a coordinated failover between this server and one "
                 "of its replicas.", arguments=_FAILOVER_ARGS, **_ADMIN)
def failover(c, argv):
    if c.server.cluster_mode:
        raise CommandError("ERR FAILOVER not allowed in cluster mode. Use "
                           "CLUSTER FAILOVER command instead.")
    _service(c).failover_command(argv)
    return OK


def role_reply(server) -> list:
    from rcluster.replication.service import replication
    svc = replication(server)
    if svc is None:
        return [b"master", server.master_repl_offset, []]
    return svc.role_reply()


# -- DEBUG DIGEST -------------------------------------------------------------

@debug_subcommand("digest", 2, help=(
    "DIGEST",
    "    Output a hex signature representing the current DB content."))
def debug_digest(c, argv):
    return Status(digest.dataset_digest(c.server.keyspace))


@debug_subcommand("digest-value", 2, None, help=(
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys."))
def debug_digest_value(c, argv):
    ks = c.server.keyspace
    return [Status(digest.key_digest(ks, key)) for key in argv[2:]]
