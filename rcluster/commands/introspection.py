"""Introspection: COMMAND (the command table as clients see it) and INFO.

COMMAND replies are built from the rows of the one command table, in the
shapes of Redis 7.0's addReplyCommandInfo, addReplyCommandDocs and
getKeysSubcommandImpl (server.c).  Cluster clients call COMMAND at start-up
to learn where each command's keys are, and COMMAND GETKEYS for the
commands whose keys move (``movablekeys``).

INFO is assembled from a registry of sections (``info_section``): each
builder takes the server and returns ordered ``(field, value)`` pairs.
Other layers add sections or extend existing ones (``extend_info_section``)
without touching this module.
"""
from __future__ import annotations

import hashlib
import os
import platform
import resource
import sys

from rcluster import REDIS_VERSION, __version__, memory
from rcluster.blocking import BlockedOn
from rcluster.commands.common import SYNTAX
from rcluster.commands.common import help_subcommand
from rcluster.commands.table import (KEY_FLAG_ORDER, CommandError,
                                     InvalidKeys, command)
from rcluster.glob import glob_match
from rcluster.resp.codec import Map, SetReply, Status, Verbatim
from rcluster.tracking import info_fields as tracking_info

_SERVER = dict(group="server", acl="connection")
_LOAD = "loading stale sentinel"


# -- COMMAND --------------------------------------------------------------


def describe(row):
    """One command's 10-element description (Redis's addReplyCommandInfo)."""
    if row is None:
        return None
    first, last, step = row.legacy_range
    subcommands = [describe(sub) for sub in row.subcommands.values()]
    return [
        row.name.encode(),
        row.arity,
        SetReply([Status(flag) for flag in row.info_flags]),
        first, last, step,
        SetReply([Status("@" + cat) for cat in row.acl_categories]),
        SetReply([tip.lower().encode() for tip in row.tips]),
        SetReply([spec.describe() for spec in row.key_specs]),
        # Redis answers an empty *set* when there are no subcommands.
        subcommands if subcommands else SetReply(),
    ]


def describe_docs(row) -> Map:
    """One command's documentation map (Redis's addReplyCommandDocs)."""
    pairs = []
    if row.summary:
        pairs.append((b"summary", row.summary.encode()))
    if row.since:
        pairs.append((b"since", row.since.encode()))
    pairs.append((b"group", row.group.encode()))
    if row.complexity:
        pairs.append((b"complexity", row.complexity.encode()))
    if row.doc_flags:
        pairs.append((b"doc_flags",
                      SetReply([Status(f) for f in row.doc_flags])))
    if row.deprecated_since:
        pairs.append((b"deprecated_since", row.deprecated_since.encode()))
    if row.replaced_by:
        pairs.append((b"replaced_by", row.replaced_by.encode()))
    if row.history:
        pairs.append((b"history", SetReply(
            [[version.encode(), change.encode()]
             for version, change in row.history])))
    if row.arguments:
        pairs.append((b"arguments", _argument_docs(row.arguments)))
    if row.subcommands:
        pairs.append((b"subcommands", Map(
            [(sub.name.encode(), describe_docs(sub))
             for sub in row.subcommands.values()])))
    return Map(pairs)


_ARG_FLAGS = ("optional", "multiple", "multiple_token")


def _argument_docs(arguments) -> list:
    """Argument docs (Redis's addReplyCommandArgList) from JSON-shaped
    dicts."""
    out = []
    for arg in arguments:
        pairs = [(b"name", arg["name"].encode()),
                 (b"type", arg["type"].encode())]
        if "key_spec_index" in arg:
            pairs.append((b"key_spec_index", arg["key_spec_index"]))
        for field in ("token", "summary", "since", "deprecated_since"):
            # (MIGRATE's empty_string has the token "": it is shown.)
            if arg.get(field) or (field == "token" and field in arg):
                pairs.append((field.encode(), arg[field].encode()))
        flags = [Status(f) for f in _ARG_FLAGS if arg.get(f)]
        if flags:
            pairs.append((b"flags", SetReply(flags)))
        if arg["type"] in ("oneof", "block"):
            pairs.append((b"arguments",
                          _argument_docs(arg.get("arguments", ()))))
        out.append(Map(pairs))
    return out


@command("command", -1, _LOAD, since="2.8.13",
         tips=("nondeterministic_output_order",),
         summary="Get array of Redis command details",
         complexity="O(N) where N is the total number of Redis commands",
         **_SERVER)
def command_(c, argv):
    return [describe(row) for row in c.server.table]


_SUB = dict(parent="command", **_SERVER)


@command("count", 2, _LOAD, since="2.8.13",
         summary="Get total number of Redis commands", complexity="O(1)",
         **_SUB)
def command_count(c, argv):
    return len(c.server.table)


@command("info", -2, _LOAD, since="2.8.13",
         tips=("nondeterministic_output_order",),
         summary="Get array of specific Redis command details, or all when "
                 "no argument is given.",
         complexity="O(N) where N is the number of commands to look up",
         history=(("7.0.0", "Allowed to be called with no argument to get "
                            "info on all commands."),),
         **_SUB)
def command_info_(c, argv):
    table = c.server.table
    if len(argv) == 2:
        return [describe(row) for row in table]
    return [describe(table.lookup_name(name)) for name in argv[2:]]


@command("docs", -2, _LOAD, since="7.0.0",
         tips=("nondeterministic_output_order",),
         summary="Get array of specific Redis command documentation",
         complexity="O(N) where N is the number of commands to look up",
         **_SUB)
def command_docs_(c, argv):
    table = c.server.table
    if len(argv) == 2:
        rows = list(table)
    else:
        rows = [row for row in map(table.lookup_name, argv[2:])
                if row is not None]
    return Map([(row.name.encode(), describe_docs(row)) for row in rows])


def _all_rows(table):
    """Every row, each command followed by its subcommands."""
    for row in table:
        yield row
        yield from row.subcommands.values()


def _list_filter(kind: bytes, arg: bytes):
    if kind == b"module":
        # Command providers are not modules: no command belongs to one.
        return lambda row: False
    if kind == b"aclcat":
        category = arg.decode("utf-8", "replace").lower()
        return lambda row: category in row.acl_categories
    if kind == b"pattern":
        return lambda row: glob_match(arg, row.name.encode(), nocase=True)
    raise CommandError(SYNTAX)


@command("list", -2, _LOAD, since="7.0.0",
         tips=("nondeterministic_output_order",),
         summary="Get an array of Redis command names",
         complexity="O(N) where N is the total number of Redis commands",
         **_SUB)
def command_list(c, argv):
    keep = None
    j = 2
    while j < len(argv):
        if argv[j].lower() != b"filterby" or len(argv) - 1 - j != 2:
            raise CommandError(SYNTAX)
        keep = _list_filter(argv[j + 1].lower(), argv[j + 2])
        j += 3
    return [row.name.encode() for row in _all_rows(c.server.table)
            if keep is None or keep(row)]


def _has_key_arguments(row) -> bool:
    """Redis's doesCommandHaveKeys: a getkeys function or a spec that is
    not a fake key (channel names are specs flagged not_key)."""
    return row.get_keys is not None or any(
        "not_key" not in spec.flags for spec in row.key_specs)


def keys_with_flags(row, argv) -> list:
    """(position, key-spec flags) of each key (getKeysFromCommandWithSpecs).

    The specs are used when they are reliable; a command whose specs can't
    locate its keys (incomplete, variable flags) uses its getkeys function.
    Raises InvalidKeys when neither can."""
    specs = [spec for spec in row.key_specs if "not_key" not in spec.flags]
    reliable = specs and not any("variable_flags" in spec.flags
                                 for spec in specs)
    if reliable:
        try:
            return [(pos, spec.flags) for spec in specs
                    for pos in spec.positions(argv)]
        except InvalidKeys:
            if row.get_keys is None:
                raise
    if row.get_keys is None:
        return []
    key_flags = getattr(row.get_keys, "key_flags", None)
    if key_flags is not None:       # flags from the getkeys function itself
        return key_flags(argv)
    return [(pos, _flags_at(specs, argv, pos))
            for pos in row.get_keys(argv)]


def _flags_at(specs, argv, pos) -> tuple:
    """The flags of the spec that finds the key at pos (else the first)."""
    for spec in specs:
        try:
            if pos in spec.positions(argv):
                return spec.flags
        except InvalidKeys:
            continue
    return specs[0].flags if specs else ()


def _getkeys(c, argv, with_flags):
    args = argv[2:]
    row = c.server.table.find(args)
    if row is None:
        raise CommandError("ERR Invalid command specified")
    if not _has_key_arguments(row):
        raise CommandError("ERR The command has no key arguments")
    if (row.arity > 0 and row.arity != len(args)) or len(args) < -row.arity:
        raise CommandError(
            "ERR Invalid number of arguments specified for command")
    try:
        keys = keys_with_flags(row, args)
    except InvalidKeys:
        keys = []
    if not keys:
        if "no_mandatory_keys" in row.flags:
            return []
        raise CommandError("ERR Invalid arguments specified for command")
    if not with_flags:
        return [args[pos] for pos, _ in keys]
    return [[args[pos], SetReply([Status(f) for f in KEY_FLAG_ORDER
                                  if f in flags])]
            for pos, flags in keys]


@command("getkeys", -4, _LOAD, since="2.8.13",
         summary="Extract keys given a full Redis command",
         complexity="O(N) where N is the number of arguments to the command",
         **_SUB)
def command_getkeys(c, argv):
    return _getkeys(c, argv, with_flags=False)


@command("getkeysandflags", -4, _LOAD, since="7.0.0",
         summary="Extract keys and access flags given a full Redis command",
         complexity="O(N) where N is the number of arguments to the command",
         **_SUB)
def command_getkeysandflags(c, argv):
    return _getkeys(c, argv, with_flags=True)


_COMMAND_HELP = (
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
)


command_help = help_subcommand(_COMMAND_HELP, _LOAD, **_SUB)


# -- INFO -----------------------------------------------------------------

class _Section:
    __slots__ = ("title", "builders", "default")

    def __init__(self, title, builder, default):
        self.title = title
        self.builders = [builder]
        self.default = default


_SECTIONS: dict = {}        # name -> _Section, in output order
_ALIASES = {"module_list": "modules"}


def info_section(name: str, title: str | None = None, default=True):
    """Register an INFO section builder: ``fn(server) -> [(field, value)]``.
    Sections are printed in registration order; ``default`` ones make up
    a plain INFO."""
    def register(builder):
        _SECTIONS[name] = _Section(title or name.capitalize(), builder,
                                   default)
        return builder
    return register


def extend_info_section(name: str, builder):
    """Add fields to a section: ``builder(server)`` returns pairs; a field
    already present is replaced in place, a new one is appended."""
    _SECTIONS[name].builders.append(builder)


def section_fields(server, name: str) -> list:
    fields: dict = {}
    for builder in _SECTIONS[name].builders:
        for field, value in builder(server):
            fields[field] = value
    return list(fields.items())


def selected_sections(args) -> list:
    """Section names to print for INFO's arguments (genInfoSectionDict)."""
    wanted = set()
    for arg in args or [b"default"]:
        name = arg.decode("utf-8", "replace").lower()
        if name == "default":
            wanted.update(n for n, s in _SECTIONS.items() if s.default)
        elif name in ("all", "everything"):
            # (default=None: a section shown only when asked by name.)
            wanted.update(n for n, s in _SECTIONS.items()
                          if s.default is not None)
        else:
            wanted.add(_ALIASES.get(name, name))
    return [name for name in _SECTIONS if name in wanted]


def info_text(server, args=()) -> str:
    """The INFO text for the given section arguments."""
    parts = []
    for name in selected_sections(args):
        lines = ["# " + _SECTIONS[name].title]
        lines += ["%s:%s" % item for item in section_fields(server, name)]
        parts.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(parts)


@command("info", -1, "loading stale sentinel", group="server",
         acl="dangerous", since="1.0.0",
         tips=("nondeterministic_output", "request_policy:all_shards",
               "response_policy:special"),
         summary="Get information and statistics about the server",
         complexity="O(1)",
         history=(("7.0.0", "Added support for taking multiple section "
                            "arguments."),))
def info(c, argv):
    return Verbatim(info_text(c.server, argv[1:]).encode())


# -- the built-in sections ----------------------------------------------------

def bytes_to_human(n: int) -> str:
    """Redis's bytesToHuman: 100B, 2.00K, 1.50M..."""
    if n < 1024:
        return "%dB" % n
    for unit in "KMGTPE":
        n /= 1024
        if n < 1024 or unit == "E":
            return "%.2f%s" % (n, unit)


def resident_memory() -> int:
    """This process's resident set size in bytes."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_memory()


def peak_memory() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _system_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return 0


def _multiplexing_api(clock) -> str:
    name = type(clock).__name__.lower()
    return name.replace("reactor", "") or name


def _gcc_version() -> str:
    compiler = platform.python_compiler()
    if compiler.startswith("GCC "):
        return compiler.split()[1]
    return "0.0.0"


_BUILD_ID = hashlib.sha1(__version__.encode()).hexdigest()[:16]


@info_section("server")
def _server(server):
    settings = server.settings
    now = server.clock.seconds()
    uptime = int(now - server.started)
    uname = os.uname()
    return [
        ("redis_version", REDIS_VERSION),
        ("rcluster_version", __version__),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", _BUILD_ID),
        ("redis_mode", "cluster" if settings.cluster_enabled
         else "standalone"),
        ("os", f"{uname.sysname} {uname.release} {uname.machine}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", _multiplexing_api(server.clock)),
        ("atomicvar_api", "python-gil"),
        ("gcc_version", _gcc_version()),
        ("process_id", os.getpid()),
        ("process_supervised", "no" if settings.supervised == "no"
         else settings.supervised),
        ("run_id", server.run_id),
        ("tcp_port", settings.port or settings.tls_port),
        ("server_time_usec", int(now * 1_000_000)),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", settings.hz),
        ("configured_hz", settings.hz),
        ("lru_clock", int(now) & (2**24 - 1)),
        ("executable", os.path.abspath(sys.argv[0]) if sys.argv[0] else ""),
        ("config_file", settings.config_file or ""),
        ("io_threads_active", 0),
    ]


@info_section("clients")
def _clients(server):
    clients = server.clients.values()
    return [
        ("connected_clients",
         sum(1 for c in clients if c.kind != "replica")),
        ("cluster_connections", server.cluster_connections),
        ("maxclients", server.settings.maxclients),
        ("client_recent_max_input_buffer",
         max((c.query_buffer for c in clients), default=0)),
        ("client_recent_max_output_buffer", 0),
        ("blocked_clients", sum(1 for c in clients if c.blocked is not None)),
        ("tracking_clients", tracking_info(server)["tracking_clients"]),
        ("clients_in_timeout_table",
         sum(1 for c in clients if isinstance(c.blocked, BlockedOn)
             and c.blocked.timer is not None)),
    ]


def _scripting_memory(server):
    """The scripting fields (server.scripts: rcluster/scripting)."""
    scripts = server.scripts
    functions = scripts.functions
    vm_eval = scripts.eval_memory
    vm_functions = functions.engine_memory
    eval_scripts = scripts.scripts_memory
    function_code = sum(len(lib.code) for lib in functions.libraries.values())
    return [
        ("used_memory_lua", vm_eval),
        ("used_memory_vm_eval", vm_eval),
        ("used_memory_lua_human", bytes_to_human(vm_eval)),
        ("used_memory_scripts_eval", eval_scripts),
        ("number_of_cached_scripts", len(scripts.scripts)),
        ("number_of_functions", len(functions.functions)),
        ("number_of_libraries", len(functions.libraries)),
        ("used_memory_vm_functions", vm_functions),
        ("used_memory_vm_total", vm_eval + vm_functions),
        ("used_memory_vm_total_human",
         bytes_to_human(vm_eval + vm_functions)),
        ("used_memory_functions", function_code),
        ("used_memory_scripts", eval_scripts + function_code),
        ("used_memory_scripts_human",
         bytes_to_human(eval_scripts + function_code)),
    ]


@info_section("memory")
def _memory(server):
    settings = server.settings
    # used_memory is the keyspace's estimate (rcluster/memory.py), not
    # RSS, which CPython never gives back; RSS shows in used_memory_rss.
    figures = memory.figures(server)
    used, peak = figures["used"], figures["peak"]
    rss = resident_memory()
    system = _system_memory()
    return [
        ("used_memory", used),
        ("used_memory_human", bytes_to_human(used)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", bytes_to_human(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", bytes_to_human(peak)),
        ("used_memory_peak_perc", "%.2f%%" % (used * 100 / peak)),
        ("used_memory_overhead", figures["overhead"]),
        ("used_memory_startup", figures["startup"]),
        ("used_memory_dataset", figures["dataset"]),
        ("used_memory_dataset_perc", "%.2f%%" % figures["dataset_perc"]),
        ("total_system_memory", system),
        ("total_system_memory_human", bytes_to_human(system)),
        *_scripting_memory(server),
        ("maxmemory", settings.maxmemory),
        ("maxmemory_human", bytes_to_human(settings.maxmemory)),
        ("maxmemory_policy", settings.maxmemory_policy),
        ("mem_fragmentation_ratio", "%.2f" % (rss / used)),
        ("mem_fragmentation_bytes", rss - used),
        ("mem_not_counted_for_evict", figures["replicas"]),
        ("mem_replication_backlog", 0),
        ("mem_total_replication_buffers", figures["replicas"]),
        ("mem_clients_slaves", figures["replicas"]),
        ("mem_clients_normal", figures["clients"]),
        ("mem_cluster_links", 0),
        ("mem_aof_buffer", 0),
        ("mem_allocator", "libc"),
        ("active_defrag_running", 0),
        ("lazyfree_pending_objects", 0),
        ("lazyfreed_objects", 0),
    ]


@info_section("persistence")
def _persistence(server):
    return [
        ("loading", 0),
        ("async_loading", 0),
        ("current_cow_peak", 0),
        ("current_cow_size", 0),
        ("current_cow_size_age", 0),
        ("current_fork_perc", "0.00"),
        ("current_save_keys_processed", 0),
        ("current_save_keys_total", 0),
        ("rdb_changes_since_last_save",
         server.keyspace.dirty - server.dirty_at_save),
        ("rdb_bgsave_in_progress", 0),
        ("rdb_last_save_time", server.lastsave),
        ("rdb_last_bgsave_status", "ok"),
        ("rdb_last_bgsave_time_sec", -1),
        ("rdb_current_bgsave_time_sec", -1),
        ("rdb_saves", 0),
        ("rdb_last_cow_size", 0),
        ("rdb_last_load_keys_expired", 0),
        ("rdb_last_load_keys_loaded", 0),
        ("aof_enabled", int(server.settings.appendonly)),
        ("aof_rewrite_in_progress", 0),
        ("aof_rewrite_scheduled", 0),
        ("aof_last_rewrite_time_sec", -1),
        ("aof_current_rewrite_time_sec", -1),
        ("aof_last_bgrewrite_status", "ok"),
        ("aof_rewrites", 0),
        ("aof_rewrites_consecutive_failures", 0),
        ("aof_last_write_status", "ok"),
        ("aof_last_cow_size", 0),
        ("module_fork_in_progress", 0),
        ("module_fork_last_cow_size", 0),
    ]


@info_section("stats")
def _stats(server):
    stats = server.stats
    pubsub = server.pubsub
    tracked = tracking_info(server)
    return [
        ("total_connections_received", stats.total_connections_received),
        ("total_commands_processed", server.total_commands_processed),
        ("instantaneous_ops_per_sec", stats.instantaneous_ops_per_sec),
        ("total_net_input_bytes", stats.total_net_input_bytes),
        ("total_net_output_bytes", stats.net_output_bytes),
        ("total_net_repl_input_bytes", 0),
        ("total_net_repl_output_bytes", 0),
        ("instantaneous_input_kbps", "%.2f" % stats.instantaneous_input_kbps),
        ("instantaneous_output_kbps",
         "%.2f" % stats.instantaneous_output_kbps),
        ("instantaneous_input_repl_kbps", "0.00"),
        ("instantaneous_output_repl_kbps", "0.00"),
        ("rejected_connections", stats.rejected_connections),
        ("sync_full", stats.sync_full),
        ("sync_partial_ok", stats.sync_partial_ok),
        ("sync_partial_err", stats.sync_partial_err),
        ("expired_keys", stats.expired_keys),
        ("expired_stale_perc", "0.00"),
        ("expired_time_cap_reached_count", 0),
        ("expire_cycle_cpu_milliseconds", 0),
        ("evicted_keys", stats.evicted_keys),
        ("evicted_clients", server.evictor.evicted_clients),
        ("total_eviction_exceeded_time", 0),
        ("current_eviction_exceeded_time", 0),
        ("keyspace_hits", stats.keyspace_hits),
        ("keyspace_misses", stats.keyspace_misses),
        ("pubsub_channels", len(pubsub.channels)),
        ("pubsub_patterns", len(pubsub.patterns)),
        ("pubsubshard_channels", len(pubsub.shard_channels)),
        ("latest_fork_usec", 0),
        ("total_forks", 0),
        ("migrate_cached_sockets", len(server.extensions["migration"].cache)
         if "migration" in server.extensions else 0),
        ("slave_expires_tracked_keys", 0),
        ("active_defrag_hits", 0),
        ("active_defrag_misses", 0),
        ("active_defrag_key_hits", 0),
        ("active_defrag_key_misses", 0),
        ("total_active_defrag_time", 0),
        ("current_active_defrag_time", 0),
        ("tracking_total_keys", tracked["tracking_total_keys"]),
        ("tracking_total_items", tracked["tracking_total_items"]),
        ("tracking_total_prefixes", tracked["tracking_total_prefixes"]),
        ("unexpected_error_replies", 0),
        ("total_error_replies", stats.total_error_replies),
        ("dump_payload_sanitizations", 0),
        ("total_reads_processed", stats.total_reads_processed),
        ("total_writes_processed", stats.total_writes_processed),
        ("io_threaded_reads_processed", 0),
        ("io_threaded_writes_processed", 0),
        ("reply_buffer_shrinks", 0),
        ("reply_buffer_expands", 0),
    ]


@info_section("replication")
def _replication(server):
    from rcluster.replication.service import replication
    svc = replication(server)
    if svc is not None:
        return svc.info_fields()
    return [
        ("role", "master" if server.role == "master" else "slave"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", server.replid),
        ("master_replid2", server.replid2),
        ("master_repl_offset", server.master_repl_offset),
        ("second_repl_offset", -1),
        ("repl_backlog_active", 0),
        ("repl_backlog_size", server.settings.repl_backlog_size),
        ("repl_backlog_first_byte_offset", 0),
        ("repl_backlog_histlen", 0),
    ]


@info_section("cpu", "CPU")
def _cpu(server):
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    fields = [
        ("used_cpu_sys", "%.6f" % own.ru_stime),
        ("used_cpu_user", "%.6f" % own.ru_utime),
        ("used_cpu_sys_children", "%.6f" % children.ru_stime),
        ("used_cpu_user_children", "%.6f" % children.ru_utime),
    ]
    if hasattr(resource, "RUSAGE_THREAD"):
        thread = resource.getrusage(resource.RUSAGE_THREAD)
        fields += [("used_cpu_sys_main_thread", "%.6f" % thread.ru_stime),
                   ("used_cpu_user_main_thread", "%.6f" % thread.ru_utime)]
    return fields


@info_section("modules")
def _modules(server):
    return []


def _safe_name(name: str) -> str:
    """Redis's getSafeInfoString: no ':', '#' or line breaks in a field."""
    for ch in "#:\n\r":
        name = name.replace(ch, "_")
    return name


@info_section("commandstats", default=False)
def _commandstats(server):
    fields = []
    for row in _all_rows(server.table):
        if row.calls or row.failed_calls or row.rejected_calls:
            per_call = row.usec / row.calls if row.calls else 0
            fields.append((
                "cmdstat_" + _safe_name(row.name),
                "calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,"
                "failed_calls=%d" % (row.calls, row.usec, per_call,
                                     row.rejected_calls, row.failed_calls)))
    return fields


@info_section("errorstats")
def _errorstats(server):
    return [("errorstat_" + _safe_name(code), "count=%d" % count)
            for code, count in sorted(server.stats.errors.items())]


@info_section("latencystats", default=False)
def _latencystats(server):
    # Per-command percentiles (rcluster/latency.py), when latency-tracking.
    return server.latency.latencystats()


@info_section("cluster")
def _cluster(server):
    return [("cluster_enabled", int(server.settings.cluster_enabled))]


@info_section("keyspace")
def _keyspace(server):
    from rcluster.commands.dbs import info_lines
    return info_lines(server)
