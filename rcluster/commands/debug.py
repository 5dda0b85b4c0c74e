"""DEBUG (Redis 7.0's debugCommand), allowed by enable-debug-command.

Subcommands are registered with ``debug_subcommand`` so that other layers
(persistence: RELOAD, LOADAOF; cluster: CLUSTERLINK...) add theirs, with
their HELP lines, without editing this module.

DEBUG SLEEP doesn't stop the reactor: the sleeping client is parked
(``client.blocked``) and answered by a ``clock.callLater`` when the time
is up; its pipelined requests wait, other clients are served meanwhile.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass


from rcluster.commands.clients import protected_action_allowed
from rcluster.commands.common import NO_KEY, parse_int
from rcluster.commands.keys import _refcount, encoding
from rcluster.commands.common import help_reply, subcommand_syntax_error
from rcluster.commands.table import CommandError, command
from rcluster.config import ConfigError
from rcluster.resp.codec import (NO_REPLY, OK, Bool, Double, Error, Map,
                                 Push, Raw, SetReply, Status, Verbatim)
from rcluster.logs import logger

log = logger()

NOT_ALLOWED = (
    "ERR DEBUG command not allowed. If the enable-debug-command option is "
    "set to \"local\", you can run it from a local connection, otherwise you "
    "need to set this option in the configuration file, and then restart "
    "the server.")


@dataclass(frozen=True)
class DebugSubcommand:
    handler: object
    min_args: int           # len(argv) bounds, DEBUG and the name included
    max_args: int | None
    help: tuple


_SUBCOMMANDS: dict = {}


def debug_subcommand(name: str, min_args: int, max_args: int | None = -1,
                     help=()):
    """Register ``DEBUG <name>``: ``handler(c, argv)`` runs when len(argv)
    is within [min_args, max_args] (max_args -1: exactly min_args; None:
    no limit); ``help`` are its lines for DEBUG HELP."""
    def register(handler):
        upper = min_args if max_args == -1 else max_args
        _SUBCOMMANDS[name] = DebugSubcommand(handler, min_args, upper,
                                             tuple(help))
        return handler
    return register


def debug_allowed(c):
    """Dispatch-time gate (so DEBUG is refused inside MULTI too)."""
    if not protected_action_allowed(c.server.settings.enable_debug_command, c):
        return NOT_ALLOWED
    return None


@command("debug", -2, "admin noscript loading stale protected",
         group="server", since="1.0.0", doc_flags=("syscmd",),
         summary="A container for debugging commands",
         complexity="Depends on subcommand.", guard=debug_allowed)
def debug(c, argv):
    entry = _SUBCOMMANDS.get(argv[1].decode("utf-8", "replace").lower())
    argc = len(argv)
    if entry is None or argc < entry.min_args or (
            entry.max_args is not None and argc > entry.max_args):
        raise subcommand_syntax_error(argv)
    return entry.handler(c, argv)


@debug_subcommand("help", 2)
def debug_help(c, argv):
    lines = [line for entry in _SUBCOMMANDS.values() for line in entry.help]
    return help_reply(argv, lines)


# -- the built-in subcommands, in DEBUG HELP's order --------------------------

@debug_subcommand("change-repl-id", 2, help=(
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication "
    "subsystem."))
def debug_change_repl_id(c, argv):
    log.warn("Changing replication IDs after receiving DEBUG change-repl-id")
    c.server.replid = os.urandom(20).hex()
    c.server.replid2 = "0" * 40
    return OK


@debug_subcommand("config-rewrite-force-all", 2, help=(
    "CONFIG-REWRITE-FORCE-ALL",
    "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default "
    "values."))
def debug_config_rewrite_force_all(c, argv):
    try:
        c.server.settings.rewrite(force_all=True)
    except ConfigError as err:
        reason = str(err).removeprefix("Rewriting config file: ")
        raise CommandError("ERR CONFIG-REWRITE-FORCE-ALL failed: " + reason)
    return OK


@debug_subcommand("error", 3, help=(
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for "
    "clients",
    "    unit tests to simulate Redis errors."))
def debug_error(c, argv):
    return Error(argv[2].decode("utf-8", "replace"))


@debug_subcommand("log", 3, help=(
    "LOG <message>",
    "    Write <message> to the server log."))
def debug_log(c, argv):
    log.warn("DEBUG LOG: {message}",
             message=argv[2].decode("utf-8", "replace"))
    return OK


@debug_subcommand("object", 3, help=(
    "OBJECT <key>",
    "    Show low level info about `key` and associated value."))
def debug_object(c, argv):
    server = c.server
    value = server.keyspace.lookup(argv[2])
    if value is None:
        raise CommandError(NO_KEY)
    settings = server.settings
    kind = encoding(value, settings).decode()
    extra = _quicklist_fields(value, settings) if kind == "quicklist" else ""
    lru = int(server.clock.seconds()) & (2**24 - 1)
    # Access times aren't tracked (idle 0, as OBJECT IDLETIME).
    return Status("Value at:%#x refcount:%d encoding:%s serializedlength:%d "
                  "lru:%d lru_seconds_idle:0%s"
                  % (id(value), _refcount(value, settings), kind,
                     _serialized_length(value, settings), lru, extra))


def _serialized_length(value, settings) -> int:
    """rdbSavedObjectLen: the value's RDB body, as DUMP encodes it."""
    from rcluster.persistence.rdb import RdbError, dump_payload
    try:
        return len(dump_payload(value, settings)) - 11
    except RdbError:
        return 0


def _quicklist_fields(items, settings) -> str:
    """DEBUG OBJECT's quicklist details: the nodes the RDB codec writes
    (RPUSH's fill rules, plain nodes past the packed threshold)."""
    from rcluster.persistence.rdb import quicklist_node_sizes
    fill = settings.list_max_listpack_size
    nodes = quicklist_node_sizes(items, fill)      # bytes of each node
    return (" ql_nodes:%d ql_avg_node:%.2f ql_listpack_max:%d "
            "ql_compressed:%d ql_uncompressed_size:%d"
            % (len(nodes), len(items) / len(nodes) if nodes else 0, fill,
               int(settings.list_compress_depth != 0), sum(nodes)))


@debug_subcommand("populate", 3, 5, help=(
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified "
    "then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to "
    "the",
    "    current node can be created in cluster mode."))
def debug_populate(c, argv):
    count = _positive(argv[2])
    size = _positive(argv[4]) if len(argv) == 5 else 0
    prefix = argv[3] if len(argv) >= 4 else b"key"
    server = c.server
    ks = server.keyspace
    added = []
    for j in range(count):
        key = b"%s:%d" % (prefix, j)
        if ks.lookup(key) is not None:
            continue
        value = b"value:%d" % j
        if size:
            value = value[:size].ljust(size, b"\0")
        ks.add(key, value)
        added.append(key)
    if server.watched_keys:
        server.touch_watched(added)
    return OK


def _positive(arg: bytes) -> int:
    value = parse_int(arg)
    if value < 0:
        raise CommandError("ERR value is out of range, must be positive")
    return value


_PROTOCOL_TYPES = "string|integer|double|bignum|null|array|set|map|attrib|" \
                  "push|verbatim|true|false"


@debug_subcommand("protocol", 3, help=(
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: "
    "string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, "
    "verbatim,",
    "    true, false."))
def debug_protocol(c, argv):
    kind = argv[2].lower()
    resp3 = c.resp3
    if kind == b"string":
        return b"Hello World"
    if kind == b"integer":
        return 12345
    if kind == b"double":
        return Double(3.141)
    if kind == b"bignum":
        digits = b"1234567999999999999999999999999999999"
        return Raw(b"(%s\r\n" % digits) if resp3 else digits
    if kind == b"null":
        return None
    if kind == b"array":
        return [0, 1, 2]
    if kind == b"set":
        return SetReply([0, 1, 2])
    if kind == b"map":
        return Map([(j, Bool(j == 1)) for j in range(3)])
    if kind == b"attrib":
        reply = b"Some real reply following the attribute"
        if not resp3:
            return reply
        return Raw(b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n"
                   b":90\r\n$%d\r\n%s\r\n" % (len(reply), reply))
    if kind == b"push":
        if not resp3:
            raise CommandError("ERR RESP2 is not supported by this command")
        c.push(Push([b"server-cpu-usage", 42]))
        return b"Some real reply following the push reply"
    if kind == b"true":
        return Bool(1)
    if kind == b"false":
        return Bool(0)
    if kind == b"verbatim":
        return Verbatim(b"This is a verbatim\nstring")
    raise CommandError("ERR Wrong protocol type name. Please use one of the "
                       "following: " + _PROTOCOL_TYPES)


@debug_subcommand("set-active-expire", 3, help=(
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are "
    "not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables "
    "back the",
    "    default."))
def debug_set_active_expire(c, argv):
    c.server.active_expire = bool(_atoi(argv[2]))
    return OK


@debug_subcommand("quicklist-packed-threshold", 3, help=(
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed "
    "nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores "
    "to default."))
def debug_quicklist_packed_threshold(c, argv):
    # Process-wide, like Redis's static: it decides plain vs packed nodes
    # in the lists the RDB codec writes (DUMP, SAVE) and DEBUG OBJECT.
    from rcluster.config import parse_memory
    from rcluster.persistence import rdb
    try:
        size = parse_memory(argv[2].decode("utf-8", "replace"))
    except ValueError:
        size = None
    if size is None or not rdb.set_packed_threshold(size):
        raise CommandError("ERR argument must be a memory value bigger than "
                           "1 and smaller than 4gb")
    return OK


@debug_subcommand("sleep", 3, help=(
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed."))
def debug_sleep(c, argv):
    seconds = _strtod(argv[2])
    server = c.server
    if seconds <= 0 or server.in_exec:
        return OK       # inside EXEC the reply can't be deferred
    c.blocked = "sleep"
    server.clock.callLater(seconds, _wake, c, argv, server.clock.seconds())
    return NO_REPLY


def _wake(c, argv, started):
    if c.closed or c.blocked != "sleep":
        return
    c.blocked = None
    # The slow log and latency monitor see the time it took to answer, as
    # in Redis where DEBUG SLEEP stops the server that long.
    server = c.server
    server.latency.record_completed(
        c, server.table.get("debug"), argv,
        round((server.clock.seconds() - started) * 1e9))
    c.complete(OK)


@debug_subcommand("htstats", 3, help=(
    "HTSTATS <dbid>",
    "    Return hash table statistics of the specified Redis database."))
def debug_htstats(c, argv):
    dbid = parse_int(argv[2])
    if dbid != 0:
        raise CommandError("ERR Out of range database")
    ks = c.server.keyspace
    used = sum(1 for table in ks.slots if table)
    # Honest figures for rcluster's layout, not Redis's dictGetStats.
    return Verbatim((
        "[Dictionary HT]\n"
        "Keys are kept in one Python dict per hash slot.\n"
        f" number of elements: {len(ks)}\n"
        f" slot dicts: {len(ks.slots)} ({used} not empty)\n"
        "[Expires HT]\n"
        f" number of elements: {len(ks.expires)}\n").encode())


@debug_subcommand("htstats-key", 3, help=(
    "HTSTATS-KEY <key>",
    "    Like HTSTATS but for the hash table stored at <key>'s value."))
def debug_htstats_key(c, argv):
    value = c.server.keyspace.lookup(argv[2])
    if value is None:
        raise CommandError(NO_KEY)
    if encoding(value, c.server.settings) not in (b"hashtable", b"skiplist"):
        raise CommandError("ERR The value stored at the specified key is not "
                           "represented using an hash table")
    return Verbatim((
        "Hash table stats (a Python dict):\n"
        f" number of elements: {len(value)}\n").encode())


@debug_subcommand("pause-cron", 3, help=(
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing."))
def debug_pause_cron(c, argv):
    c.server.cron_paused = bool(_atoi(argv[2]))
    return OK


@debug_subcommand("replybuffer", 4, help=(
    "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
    "    Not supported: replies go straight to Twisted's transport buffers,",
    "    which have no peak tracking or resize cron.",
    "REPLYBUFFER RESIZING <0|1>",
    "    Not supported, as above."))
def debug_replybuffer(c, argv):
    option = argv[2].lower()
    if option == b"peak-reset-time":
        if argv[3].lower() not in (b"never", b"reset"):
            parse_int(argv[3])
    elif option != b"resizing":
        raise subcommand_syntax_error(argv)
    raise CommandError(
        "ERR DEBUG REPLYBUFFER is not supported: rcluster writes replies to "
        "Twisted's transport buffers, which have no peak reset or resizing")


def _refuse_crash(c, argv):
    raise CommandError(
        "ERR DEBUG %s is refused: rcluster does not crash or dump its heap "
        "on request" % argv[1].decode("utf-8", "replace").upper())


# (JMAP, gone from Redis 7.0, gets its unknown-subcommand error.)
for _name in ("segfault", "panic", "oom", "assert"):
    debug_subcommand(_name, 2)(_refuse_crash)


_LEADING_FLOAT = re.compile(rb"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_LEADING_INT = re.compile(rb"\s*[+-]?\d+")


def _strtod(arg: bytes) -> float:
    """C's strtod: the longest leading number, 0 when there is none."""
    match = _LEADING_FLOAT.match(arg)
    return float(match.group()) if match else 0.0


def _atoi(arg: bytes) -> int:
    match = _LEADING_INT.match(arg)
    return int(match.group()) if match else 0
