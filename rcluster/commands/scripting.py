"""Scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT *, FCALL, FCALL_RO,
FUNCTION * (Redis 7.0's eval.c and functions.c).  The work is done by
``server.scripts`` (rcluster/scripting); these rows carry Redis 7.0's
flags and key specs (numkeys-based, so cluster routing sees the keys:
CROSSSLOT / MOVED / ASK before a script runs).
"""
from __future__ import annotations

from rcluster.commands.common import help_subcommand, subcommand_syntax_error
from rcluster.commands.table import CommandError, KeySpec, command, container
from rcluster.glob import glob_match
from rcluster.resp.codec import OK, Map, SetReply, Status

_G = dict(group="scripting")
_EVAL_FLAGS = "noscript stale skip_monitor no_mandatory_keys may_replicate"
_RW_NOTE = ("We cannot tell how the keys will be used so we assume the "
            "worst, RW and UPDATE")
_RO_NOTE = ("We cannot tell how the keys will be used so we assume the "
            "worst, RO and ACCESS")


def _spec(ro: bool, notes=True) -> KeySpec:
    flags = ("RO", "access") if ro else ("RW", "access", "update")
    return KeySpec(flags=flags, index=2, keynumidx=0, firstkey=1, keystep=1,
                   notes=(_RO_NOTE if ro else _RW_NOTE) if notes else None)


def _scripts(c):
    return c.server.scripts


@command("eval", -3, _EVAL_FLAGS, specs=[_spec(False)], since="2.6.0",
         summary="Execute a Lua script server side",
         complexity="Depends on the script that is executed.", **_G)
def eval_(c, argv):
    return _scripts(c).eval(c, argv, evalsha=False, ro=False)


@command("evalsha", -3, _EVAL_FLAGS, specs=[_spec(False, False)],
         since="2.6.0", summary="Execute a Lua script server side",
         complexity="Depends on the script that is executed.", **_G)
def evalsha(c, argv):
    return _scripts(c).eval(c, argv, evalsha=True, ro=False)


@command("eval_ro", -3, "readonly " + _EVAL_FLAGS.replace(" may_replicate", ""),
         specs=[_spec(True)], since="7.0.0",
         summary="Execute a read-only Lua script server side",
         complexity="Depends on the script that is executed.", **_G)
def eval_ro(c, argv):
    return _scripts(c).eval(c, argv, evalsha=False, ro=True)


@command("evalsha_ro", -3,
         "readonly " + _EVAL_FLAGS.replace(" may_replicate", ""),
         specs=[_spec(True, False)], since="7.0.0",
         summary="Execute a read-only Lua script server side",
         complexity="Depends on the script that is executed.", **_G)
def evalsha_ro(c, argv):
    return _scripts(c).eval(c, argv, evalsha=True, ro=True)


# -- SCRIPT -------------------------------------------------------------------

container("script", "scripting", "A container for Lua scripts management "
          "commands", since="2.6.0")
_SUB = dict(parent="script", group="scripting")
_ALL_NODES = ("request_policy:all_nodes", "response_policy:all_succeeded")


@command("load", 3, "noscript stale", since="2.6.0", tips=_ALL_NODES,
         summary="Load the specified Lua script into the script cache.",
         complexity="O(N) with N being the length in bytes of the script "
                    "body.", **_SUB)
def script_load(c, argv):
    return _scripts(c).create(argv[2]).sha


@command("exists", -3, "noscript", since="2.6.0",
         tips=("request_policy:all_shards", "response_policy:agg_logical_and"),
         summary="Check existence of scripts in the script cache.",
         complexity="O(N) with N being the number of scripts to check (so "
                    "checking a single script is an O(1) operation).", **_SUB)
def script_exists(c, argv):
    scripts = _scripts(c).scripts
    return [1 if sha in scripts else 0 for sha in argv[2:]]


@command("flush", -2, "noscript", since="2.6.0", tips=_ALL_NODES,
         summary="Remove all the scripts from the script cache.",
         complexity="O(N) with N being the number of scripts in cache",
         history=(("6.2.0", "Added the `ASYNC` and `SYNC` flushing mode "
                            "modifiers."),), **_SUB)
def script_flush(c, argv):
    if len(argv) > 3 or (len(argv) == 3 and
                         argv[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    _scripts(c).flush()
    return OK


@command("kill", 2, "noscript allow_busy", since="2.6.0",
         tips=("request_policy:all_shards", "response_policy:one_succeeded"),
         summary="Kill the script currently in execution.",
         complexity="O(1)", **_SUB)
def script_kill(c, argv):
    _scripts(c).kill(eval_mode=True)
    return OK


@command("debug", 3, "noscript", since="3.2.0",
         summary="Set the debug mode for executed scripts.",
         complexity="O(1)", **_SUB)
def script_debug(c, argv):
    mode = argv[2].lower()
    if mode == b"no":
        return OK
    if mode in (b"yes", b"sync"):
        raise CommandError("ERR SCRIPT DEBUG (the Lua debugger) is not "
                           "supported by rcluster")
    raise CommandError("ERR Use SCRIPT DEBUG YES/SYNC/NO")


help_subcommand([
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the "
    "script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is "
    "determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
], since="5.0.0", **_SUB)


# -- FCALL ------------------------------------------------------------------

def _fcall(c, argv, ro):
    scripts = _scripts(c)
    function = scripts.functions.functions.get(argv[1])
    if function is None:
        raise CommandError("ERR Function not found")
    try:
        numkeys = int(argv[2]) if argv[2].strip() == argv[2] else None
    except ValueError:
        numkeys = None
    if numkeys is None or not -2**63 <= numkeys < 2**63:
        raise CommandError("ERR Bad number of keys provided")
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number "
                           "of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    return scripts.run(c, function.fn, function.flags,
                       function.name.decode("utf-8", "surrogateescape"),
                       False, ro, argv[3:3 + numkeys], argv[3 + numkeys:],
                       argv)


@command("fcall", -3, _EVAL_FLAGS, specs=[_spec(False)], since="7.0.0",
         summary="Invoke a function",
         complexity="Depends on the function that is executed.", **_G)
def fcall(c, argv):
    return _fcall(c, argv, False)


@command("fcall_ro", -3,
         "readonly " + _EVAL_FLAGS.replace(" may_replicate", ""),
         specs=[_spec(True)], since="7.0.0",
         summary="Invoke a read-only function",
         complexity="Depends on the function that is executed.", **_G)
def fcall_ro(c, argv):
    return _fcall(c, argv, True)


# -- FUNCTION ---------------------------------------------------------------

container("function", "scripting", "A container for function commands",
          since="7.0.0")
_FSUB = dict(parent="function", group="scripting")
_ALL_SHARDS = ("request_policy:all_shards", "response_policy:all_succeeded")


def _changed(c):
    """A FUNCTION write counts as a change (replicated, saved)."""
    c.server.keyspace.dirty += 1


@command("load", -3, "write denyoom noscript", since="7.0.0", tips=_ALL_SHARDS,
         summary="Create a function with the given arguments (name, code, "
                 "description)",
         complexity="O(1) (considering compilation time is redundant)",
         **_FSUB)
def function_load(c, argv):
    replace = False
    pos = 2
    while pos < len(argv) - 1:
        arg = argv[pos]
        pos += 1
        if arg.lower() == b"replace":
            replace = True
            continue
        raise CommandError("ERR Unknown option given: %s"
                           % arg.decode("utf-8", "surrogateescape"))
    if pos >= len(argv):
        raise CommandError("ERR Function code is missing")
    timeout = c.kind != "master"
    name = _scripts(c).functions.load(argv[pos], replace, timeout)
    _changed(c)
    return name


@command("delete", 3, "write noscript", since="7.0.0", tips=_ALL_SHARDS,
         summary="Delete a function by name", complexity="O(1)", **_FSUB)
def function_delete(c, argv):
    _scripts(c).functions.delete(argv[2])
    _changed(c)
    return OK


@command("flush", -2, "write noscript", since="7.0.0", tips=_ALL_SHARDS,
         summary="Deleting all functions",
         complexity="O(N) where N is the number of functions deleted",
         **_FSUB)
def function_flush(c, argv):
    if len(argv) > 3:
        raise subcommand_syntax_error(argv)
    if len(argv) == 3 and argv[2].lower() not in (b"sync", b"async"):
        raise CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC "
                           "option")
    _scripts(c).functions.flush()
    _changed(c)
    return OK


@command("list", -2, "noscript", since="7.0.0",
         tips=("nondeterministic_output_order",),
         summary="List information about all the functions",
         complexity="O(N) where N is the number of functions", **_FSUB)
def function_list(c, argv):
    with_code = False
    pattern = None
    i = 2
    while i < len(argv):
        arg = argv[i].lower()
        if not with_code and arg == b"withcode":
            with_code = True
        elif pattern is None and arg == b"libraryname":
            if i >= len(argv) - 1:
                raise CommandError("ERR library name argument was not given")
            i += 1
            pattern = argv[i]
        else:
            raise CommandError("ERR Unknown argument %s"
                               % argv[i].decode("utf-8", "surrogateescape"))
        i += 1
    out = []
    for lib in _scripts(c).functions.libraries.values():
        if pattern is not None and not glob_match(pattern, lib.name):
            continue
        functions = [Map([
            (b"name", f.name), (b"description", f.desc),
            (b"flags", SetReply([Status(flag) for flag in _FLAG_ORDER
                                 if flag in f.flags]))])
            for f in lib.functions.values()]
        pairs = [(b"library_name", lib.name), (b"engine", b"LUA"),
                 (b"functions", functions)]
        if with_code:
            pairs.append((b"library_code", lib.code))
        out.append(Map(pairs))
    return out


_FLAG_ORDER = ("no-writes", "allow-oom", "allow-stale", "no-cluster",
               "allow-cross-slot-keys")


@command("dump", 2, "noscript", since="7.0.0",
         summary="Dump all functions into a serialized binary payload",
         complexity="O(N) where N is the number of functions", **_FSUB)
def function_dump(c, argv):
    return _scripts(c).functions.dump(c.server.settings.rdbcompression)


@command("restore", -3, "write denyoom noscript", since="7.0.0",
         tips=_ALL_SHARDS,
         summary="Restore all the functions on the given payload",
         complexity="O(N) where N is the number of functions on the payload",
         **_FSUB)
def function_restore(c, argv):
    if len(argv) > 4:
        raise subcommand_syntax_error(argv)
    policy = b"append"
    if len(argv) == 4:
        policy = argv[3].lower()
        if policy not in (b"append", b"replace", b"flush"):
            raise CommandError("ERR Wrong restore policy given, value should "
                               "be either FLUSH, APPEND or REPLACE.")
    _scripts(c).functions.restore(argv[2], policy)
    _changed(c)
    return OK


@command("stats", 2, "noscript allow_busy", since="7.0.0",
         tips=("nondeterministic_output", "request_policy:all_shards",
               "response_policy:special"),
         summary="Return information about the function currently running "
                 "(name, description, duration)",
         complexity="O(1)", **_FSUB)
def function_stats(c, argv):
    scripts = _scripts(c)
    ctx = scripts.ctx
    if ctx is not None and ctx.eval_mode:
        raise CommandError(str(scripts.busy_error() or
                               "BUSY Redis is busy running a script. You can "
                               "only call SCRIPT KILL or SHUTDOWN NOSAVE."))
    running = None
    if ctx is not None:
        running = Map([
            (b"name", ctx.name.encode()),
            (b"command", list(ctx.caller_argv or [])),
            (b"duration_ms", int((c.server.clock.seconds() - ctx.start)
                                 * 1000))])
    functions = scripts.functions
    return Map([
        (b"running_script", running),
        (b"engines", Map([(b"LUA", Map([
            (b"libraries_count", len(functions.libraries)),
            (b"functions_count", len(functions.functions))]))]))])


@command("kill", 2, "noscript allow_busy", since="7.0.0",
         tips=("request_policy:all_shards", "response_policy:one_succeeded"),
         summary="Kill the function currently in execution.",
         complexity="O(1)", **_FSUB)
def function_kill(c, argv):
    _scripts(c).kill(eval_mode=False)
    return OK


help_subcommand([
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using "
    "LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is "
    "determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can "
    "be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is "
    "possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. "
    "On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, "
    "On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option "
    "there is a chance of failure",
    "      in case of functions name collision with another library).",
], since="7.0.0", **_FSUB)
