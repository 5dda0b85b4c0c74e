"""Connection commands: PING, ECHO, AUTH, HELLO, SELECT, QUIT, RESET."""
from __future__ import annotations

import hmac

from rcluster import REDIS_VERSION
from rcluster.commands.common import SYNTAX, arity_error
from rcluster.commands import dbs
from rcluster.commands.table import CommandError, command
from rcluster.resp.codec import OK, PONG, Map, Status

_G = dict(group="connection")
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@command("ping", -1, "fast sentinel", summary="Ping the server",
         tips=("request_policy:all_shards", "response_policy:all_succeeded"), **_G)
def ping(c, argv):
    if len(argv) > 2:
        raise arity_error(argv)
    if not c.resp3 and (c.channels or c.patterns or c.shard_channels):
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return PONG if len(argv) == 1 else argv[1]


@command("echo", 2, "loading stale fast", summary="Echo the given string", **_G)
def echo(c, argv):
    return argv[1]


def check_password(c, username: bytes, password: bytes) -> bool:
    """Only the 'default' user exists; its password is requirepass."""
    if username != b"default":
        return False
    required = c.server.settings.requirepass
    if not required:
        return True
    return hmac.compare_digest(password, required.encode())


@command("auth", -2, "noscript loading stale fast no_auth allow_busy",
         summary="Authenticate to the server", **_G)
def auth(c, argv):
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    if len(argv) == 2:
        if not c.server.settings.requirepass:
            raise CommandError(
                "ERR AUTH <password> called without any password configured "
                "for the default user. Are you sure your configuration is "
                "correct?")
        username, password = b"default", argv[1]
    else:
        username, password = argv[1], argv[2]
    if not check_password(c, username, password):
        raise CommandError(WRONGPASS)
    c.set_authenticated(True)
    return OK


@command("hello", -1, "noscript loading stale fast no_auth sentinel allow_busy",
         summary="Handshake with Redis", since="6.0.0", **_G)
def hello(c, argv):
    version = 0
    j = 1
    if len(argv) >= 2:
        arg = argv[1]
        try:
            version = int(arg)
        except ValueError:
            raise CommandError(
                "ERR Protocol version is not an integer or out of range")
        if version < 2 or version > 3:
            raise CommandError("NOPROTO unsupported protocol version")
        j = 2
    name = None
    while j < len(argv):
        opt = argv[j].lower()
        more = len(argv) - 1 - j
        if opt == b"auth" and more >= 2:
            if not check_password(c, argv[j + 1], argv[j + 2]):
                raise CommandError(WRONGPASS)
            c.set_authenticated(True)
            j += 3
        elif opt == b"setname" and more >= 1:
            name = validate_client_name(argv[j + 1])
            j += 2
        else:
            raise CommandError("ERR Syntax error in HELLO option '%s'"
                               % argv[j].decode("utf-8", "replace"))
    if not c.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already "
            "authenticated, otherwise the HELLO AUTH <user> <pass> option can "
            "be used to authenticate the client and select the RESP protocol "
            "version at the same time")
    if name is not None:
        c.name = name
    if version:
        c.resp3 = version == 3
    server = c.server
    return Map([
        (b"server", b"redis"),
        (b"version", REDIS_VERSION.encode()),
        (b"proto", 3 if c.resp3 else 2),
        (b"id", c.id),
        (b"mode", b"cluster" if server.settings.cluster_enabled else b"standalone"),
        (b"role", b"replica" if server.role == "replica" else b"master"),
        (b"modules", []),
    ])


def validate_client_name(name: bytes) -> bytes:
    """Redis refuses spaces, newlines and non-printable names."""
    for ch in name:
        if ch < 33 or ch > 126:
            raise CommandError("ERR Client names cannot contain spaces, "
                               "newlines or special characters.")
    return name


@command("select", 2, "loading stale fast", summary="Change the selected database",
         **_G)
def select(c, argv):
    # databases / cluster-databases (commands/dbs.py).
    return dbs.select(c, argv)


@command("quit", -1, "noscript loading stale fast no_auth allow_busy",
         summary="Close the connection", **_G)
def quit_(c, argv):
    c.closing = True
    return OK


@command("reset", 1, "noscript loading stale fast no_auth allow_busy",
         summary="Reset the connection", since="6.2.0", **_G)
def reset(c, argv):
    server = c.server
    if c.kind in ("replica", "master"):
        raise CommandError("ERR can only reset normal client connections")
    c.kind = "normal"               # a MONITOR stops monitoring
    server.discard_transaction(c)
    server.pubsub.forget(c)
    if c.tracking is not None:
        server.tracking.disable(c)
    c.resp3 = False
    c.name = b""
    c.db = 0                        # selectDb(c, 0)
    c.asking = False
    c.readonly = False
    c.reply_mode = "on"
    c.no_evict = c.no_touch = False
    c.set_authenticated(not server.requires_auth)
    return Status("RESET")
