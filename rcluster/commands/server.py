"""Small server commands: TIME, LASTSAVE, SHUTDOWN, ROLE and MONITOR.

MONITOR streams every command the server runs to the monitoring clients,
formatted as Redis's replicationFeedMonitors does::

    +1700000000.123456 [0 127.0.0.1:5000] "set" "k" "v"

Server.call invokes ``server.monitor(client, command, argv)`` after each
command while a monitor is attached.
"""
from __future__ import annotations

from rcluster.commands.clients import unix_socket_client
from rcluster.commands.common import SYNTAX
from rcluster.commands.table import CommandError, command
from rcluster.config import repr_bytes
from rcluster.resp.codec import NO_REPLY, OK, Raw

_G = dict(group="server")


@command("time", 1, "loading stale fast", since="2.6.0", complexity="O(1)",
         tips=("nondeterministic_output",),
         summary="Return the current server time", **_G)
def time_(c, argv):
    usec = int(c.server.clock.seconds() * 1_000_000)
    seconds, micros = divmod(usec, 1_000_000)
    return [b"%d" % seconds, b"%d" % micros]


@command("lastsave", 1, "loading stale fast", acl="admin dangerous",
         since="1.0.0", complexity="O(1)", tips=("nondeterministic_output",),
         summary="Get the UNIX time stamp of the last successful save to "
                 "disk", **_G)
def lastsave(c, argv):
    return c.server.lastsave


@command("role", 1, "noscript loading stale fast sentinel",
         acl="admin dangerous", since="2.8.12", complexity="O(1)",
         summary="Return the role of the instance in the context of "
                 "replication", **_G)
def role(c, argv):
    from rcluster.commands.replication import role_reply
    return role_reply(c.server)


_SHUTDOWN_FLAGS = (b"nosave", b"save", b"now", b"force")


@command("shutdown", -1,
         "admin noscript loading stale no_multi sentinel allow_busy",
         since="1.0.0",
         summary="Synchronously save the dataset to disk and then shut down "
                 "the server",
         complexity="O(N) when saving, where N is the total number of keys "
                    "in all databases when saving data, otherwise O(1)",
         history=(("7.0.0", "Added the `NOW`, `FORCE` and `ABORT` "
                            "modifiers."),), **_G)
def shutdown(c, argv):
    flags = set()
    abort = False
    for arg in argv[1:]:
        option = arg.lower()
        if option in _SHUTDOWN_FLAGS:
            flags.add(option)
        elif option == b"abort":
            abort = True
        else:
            raise CommandError(SYNTAX)
    if (abort and flags) or {b"save", b"nosave"} <= flags:
        raise CommandError(SYNTAX)
    if abort:
        # Shutdowns here don't wait for lagging replicas: none to abort.
        raise CommandError("ERR No shutdown in progress.")
    save = True if b"save" in flags else False if b"nosave" in flags else None
    busy = c.server.scripts.busy
    if busy is not None:
        # A script past busy-reply-threshold: only SHUTDOWN NOSAVE, which
        # ends it (Redis exits at once; here the reactor stops once the
        # script unwinds).
        if save is not False:
            raise CommandError(str(c.server.scripts.busy_error()))
        busy.killed = True
    hook = c.server.shutdown_hook
    failure = hook(save, b"force" in flags) if hook is not None else \
        "ERR Errors trying to SHUTDOWN. Check logs."
    if failure:
        raise CommandError(failure)
    # The server is going away: no reply (as Redis exits), and nothing
    # more is run for this client.
    c.blocked = "shutdown"
    return NO_REPLY


# -- MONITOR ----------------------------------------------------------------

# Commands Redis never shows to monitors.
_HIDDEN = frozenset(("admin", "skip_monitor"))
# Arguments Redis redacts (redactClientCommandArgument): how many values
# follow each secret-bearing option.
_SECRETS = {b"hello": {b"auth": 2}, b"migrate": {b"auth": 1, b"auth2": 2}}


def redacted(argv) -> list:
    """argv with passwords replaced by "(redacted)"."""
    name = argv[0].lower()
    if name == b"auth":
        return [argv[0]] + [b"(redacted)"] * (len(argv) - 1)
    options = _SECRETS.get(name)
    if not options:
        return argv
    out = list(argv)
    j = 1
    while j < len(out):
        count = options.get(out[j].lower(), 0)
        for k in range(j + 1, min(j + 1 + count, len(out))):
            out[k] = b"(redacted)"
        j += 1 + count
    return out


def monitor_line(now: float, origin: str, argv, db: int = 0) -> bytes:
    usec = int(now * 1_000_000)
    seconds, micros = divmod(usec, 1_000_000)
    args = " ".join(repr_bytes(arg) for arg in redacted(argv))
    return b"+%d.%06d [%d %s] %s\r\n" % (seconds, micros, db,
                                         origin.encode(), args.encode())


def _origin(c) -> str:
    """Who ran a command, as MONITOR shows it: ip:port or unix:path."""
    if unix_socket_client(c):
        return "unix:" + c.server.settings.unixsocket
    return c.addr


class Monitors:
    """The clients in MONITOR mode; installed as ``server.monitor``."""

    def __init__(self, server):
        self.server = server
        self.clients: list = []

    def add(self, client):
        client.kind = "monitor"
        self.clients.append(client)
        self.server.monitor = self

    def __call__(self, c, cmd, argv):
        if not _HIDDEN.isdisjoint(cmd.flags):
            return
        if self.server.blocking.woken_by(c) is not None:
            return      # a blocked command retried: shown when first run
        watching = [m for m in self.clients
                    if m.kind == "monitor" and not m.closed]
        if len(watching) != len(self.clients):
            self.clients = watching
            if not watching:
                self.server.monitor = None
                return
        line = Raw(monitor_line(self.server.clock.seconds(), _origin(c),
                                argv, c.db))
        for m in watching:
            m.push(line)


def monitors(server) -> Monitors:
    return server.extensions.setdefault("monitors", Monitors(server))


@command("monitor", 1, "admin noscript loading stale", since="1.0.0",
         summary="Listen for all requests received by the server in real "
                 "time", **_G)
def monitor(c, argv):
    if c.server.in_exec:
        raise CommandError("ERR MONITOR isn't allowed for DENY BLOCKING "
                           "client")
    if c.kind in ("monitor", "replica"):
        return NO_REPLY         # already streaming: ignored, no reply
    monitors(c.server).add(c)
    return OK
