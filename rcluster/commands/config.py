"""CONFIG GET / SET / REWRITE / RESETSTAT / HELP on the node's Settings.

The directive table, value checks and the file rewriting live in
rcluster/config.py; these handlers only turn arguments and errors into
Redis's replies.  Settings read at each use (maxclients, timeout,
requirepass for new connections) change behaviour at once; the others are
applied by the listeners other layers register on ``Settings.listeners``.
"""
from __future__ import annotations


from rcluster.commands.clients import protected_action_allowed
from rcluster.commands.common import SYNTAX, help_subcommand
from rcluster.commands.table import CommandError, command, container
from rcluster.config import ConfigError
from rcluster.resp.codec import OK, Map
from rcluster.logs import logger

log = logger()

container("config", group="server", since="2.0.0",
          summary="A container for server configuration commands")

_SUB = dict(parent="config", group="server")
_ADMIN = "admin noscript loading stale"


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _config_error(err: ConfigError) -> CommandError:
    return CommandError("ERR " + str(err))


@command("get", -3, _ADMIN, since="2.0.0",
         summary="Get the values of configuration parameters",
         complexity="O(N) when N is the number of configuration parameters "
                    "provided",
         history=(("7.0.0", "Added the ability to pass multiple pattern "
                            "parameters in one call"),), **_SUB)
def config_get(c, argv):
    pairs = c.server.settings.config_get([_text(a) for a in argv[2:]])
    return Map([(_bytes(name), _bytes(value)) for name, value in pairs])


@command("set", -4, _ADMIN, since="2.0.0",
         tips=("request_policy:all_nodes", "response_policy:all_succeeded"),
         summary="Set configuration parameters to the given values",
         complexity="O(N) when N is the number of configuration parameters "
                    "provided",
         history=(("7.0.0", "Added the ability to set multiple parameters in "
                            "one call."),), **_SUB)
def config_set(c, argv):
    if len(argv) % 2:
        raise CommandError(SYNTAX)
    settings = c.server.settings
    pairs = [(_text(argv[j]), _text(argv[j + 1]))
             for j in range(2, len(argv), 2)]
    allowed = protected_action_allowed(settings.enable_protected_configs, c)
    try:
        settings.config_set(pairs, allow_protected=allowed)
    except ConfigError as err:
        raise _config_error(err) from None
    return OK


@command("rewrite", 2, _ADMIN, since="2.8.0",
         summary="Rewrite the configuration file with the in memory "
                 "configuration", complexity="O(1)", **_SUB)
def config_rewrite(c, argv):
    try:
        c.server.settings.rewrite()
    except ConfigError as err:
        if c.server.settings.config_file:
            log.warn("CONFIG REWRITE failed: {error}", error=str(err))
        raise _config_error(err) from None
    log.warn("CONFIG REWRITE executed with success.")
    return OK


def reset_stats(server):
    """CONFIG RESETSTAT: the INFO counters, command and error statistics."""
    server.stats.reset(server.clock.seconds())
    for row in server.table:
        for each in (row, *row.subcommands.values()):
            each.calls = each.usec = 0
            each.rejected_calls = each.failed_calls = 0


@command("resetstat", 2, _ADMIN, since="2.0.0",
         summary="Reset the stats returned by INFO", complexity="O(1)",
         **_SUB)
def config_resetstat(c, argv):
    reset_stats(c.server)
    return OK


_CONFIG_HELP = (
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
)


config_help = help_subcommand(_CONFIG_HELP, **_SUB)
