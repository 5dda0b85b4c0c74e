"""Lua scripting: EVAL's script cache, FUNCTION libraries, and the run of
one script (Redis 7.0's eval.c, script.c, script_lua.c, functions.c).

``Scripting(server)`` is the server's ``scripts`` attribute.  Scripts run
in a sandboxed Lua 5.1 state (``engine.LuaEngine``; EVAL scripts and
function libraries each have their own, as in Redis).  ``redis.call`` runs
commands through ``Server.call`` on a script client (a Client that is not
connected), nested in the caller's EVAL: the write path records their
effects, and the EVAL row itself is not propagated (``no_propagation``),
so a script's writes reach replicas and the AOF as MULTI ... EXEC of its
effects.

Long scripts
------------
Redis stays responsive during a long script by re-entering its event
loop from a Lua count hook (processEventsWhileBlocked), and refusing the
other clients' commands with -BUSY.  We do the same, with these rules:

* A count hook (``debug.sethook``, every 100000 VM instructions, installed
  only when ``busy-reply-threshold`` > 0) calls ``Scripting.interrupt``.
  Before the threshold it only reads the clock.
* Past the threshold the run becomes *timed out*: the server's command
  rows all take the checked dispatch path, where ``Server.execute``
  answers -BUSY to any command without the ``allow_busy`` flag (SCRIPT
  KILL, FUNCTION KILL, SHUTDOWN NOSAVE... have it).  The caller is
  *protected*: marked blocked, so what it sends meanwhile is only buffered
  (as Redis's protectClient) and runs after the script.
* Each hook call then runs ``process_events`` once: by default the
  reactor's ``doIteration(0)``, i.e. only the ready file descriptors (no
  timers, so no server cron, no expiry, no cluster cron run under the
  script - the same restriction as Redis's AE_FILE_EVENTS|AE_DONT_WAIT).
  The cluster bus's PINGs are read and answered (its PONGs go out in the
  same call), so peers don't flag the node PFAIL; the clients get their
  -BUSY.  Nothing touches the keyspace: every command that could is
  refused, and the running script is the only writer.  Re-entrancy is
  bounded: a hook never runs while another hook's events are processed
  (Lua is not re-entered: a nested EVAL gets -BUSY too).
* SCRIPT KILL / FUNCTION KILL set ``killed``; the hook then raises the
  kill error, and re-arms itself on every line so pcall can't swallow it.
  A script that already wrote is UNKILLABLE.
* SHUTDOWN while timed out: plain SHUTDOWN gets -BUSY; SHUTDOWN NOSAVE
  runs the server's shutdown (the reactor stop is scheduled) and kills the
  script, so the stack unwinds and the reactor stops (Redis exits inside
  the hook; we can't, nor need to).
* The hook only ever runs file events, from inside the script's own
  handler: that is the one re-entry, and it is safe because every path it
  can take either answers -BUSY, reads the bus, or flips a flag the hook
  reads on return.
"""
from __future__ import annotations

from rcluster.client import Client
from rcluster.commands.table import CommandError
from rcluster.logs import logger
from rcluster.resp.codec import Error, Raw
from rcluster.scripting.engine import (HOOK_COUNT, LuaEngine, Rand48,
                                       ScriptError, sha1hex)

log = logger()

FLAG_NO_WRITES = "no-writes"
FLAG_ALLOW_OOM = "allow-oom"
FLAG_ALLOW_STALE = "allow-stale"
FLAG_NO_CLUSTER = "no-cluster"
FLAG_ALLOW_CROSS_SLOT = "allow-cross-slot-keys"
SCRIPT_FLAGS = (FLAG_NO_WRITES, FLAG_ALLOW_OOM, FLAG_ALLOW_STALE,
                FLAG_NO_CLUSTER, FLAG_ALLOW_CROSS_SLOT)
COMPAT = "eval-compat"     # an EVAL script without a shebang

NOSCRIPT = Error("NOSCRIPT No matching script. Please use EVAL.")
BUSY_EVAL = Error("BUSY Redis is busy running a script. You can only call "
                  "SCRIPT KILL or SHUTDOWN NOSAVE.")
BUSY_FUNCTION = Error("BUSY Redis is busy running a script. You can only "
                      "call FUNCTION KILL or SHUTDOWN NOSAVE.")
ROSLAVE = "READONLY You can't write against a read only replica."
_LOG_LEVELS = {0: "debug", 1: "info", 2: "info", 3: "warn"}


class Script:
    __slots__ = ("sha", "body", "flags", "fn")

    def __init__(self, sha, body, flags, fn):
        self.sha = sha
        self.body = body
        self.flags = flags
        self.fn = fn


class RunContext:
    """One script run (Redis's scriptRunCtx)."""
    __slots__ = ("caller", "client", "name", "flags", "eval_mode", "ro",
                 "start", "dirty", "killed", "timedout", "slot", "repl",
                 "in_events", "caller_argv")

    def __init__(self, caller, client, name, flags, eval_mode, ro, start,
                 slot):
        self.caller = caller
        self.client = client
        self.name = name
        self.flags = flags
        self.eval_mode = eval_mode
        self.ro = ro
        self.start = start
        self.dirty = False
        self.killed = False
        self.timedout = False
        self.slot = slot
        self.repl = 3
        self.in_events = False
        self.caller_argv = None


def parse_shebang(body: bytes):
    """evalExtractShebangFlags -> (flags frozenset, shebang length);
    raises CommandError with Redis's texts."""
    if not body.startswith(b"#!"):
        return frozenset((COMPAT,)), 0
    end = body.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid script shebang")
    parts = body[:end].split()
    if not parts:
        raise CommandError("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise CommandError("ERR Unexpected engine in script shebang: %s"
                           % _text(parts[0]))
    flags = set()
    for part in parts[1:]:
        if part.startswith(b"flags="):
            for flag in part[6:].split(b","):
                name = _text(flag)
                if name not in SCRIPT_FLAGS:
                    raise CommandError(
                        "ERR Unexpected flag in script shebang: %s" % name)
                flags.add(name)
        else:
            raise CommandError("ERR Unknown lua shebang option: %s"
                               % _text(part))
    return frozenset(flags), end


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


class Scripting:
    def __init__(self, server):
        self.server = server
        self.rand = Rand48()
        self.scripts: dict = {}          # sha (lower hex bytes) -> Script
        self.scripts_memory = 0
        self.ctx = None                  # the running script's RunContext
        self.busy = None                 # the RunContext once timed out
        self.client = None               # the script client (lazily)
        # Runs ready I/O events once while a script is timed out (see the
        # module docstring); None: taken from the clock if it is a reactor.
        self.process_events = None
        self._eval_engine = None
        self._write_rows: dict = {}
        from rcluster.scripting.functions import Functions
        self.functions = Functions(self)

    # -- engines ------------------------------------------------------------
    @property
    def eval_engine(self) -> LuaEngine:
        if self._eval_engine is None:
            self._eval_engine = self.new_engine()
        return self._eval_engine

    def new_engine(self) -> LuaEngine:
        from rcluster.scripting.libs import load_libraries
        return LuaEngine(self, load_libraries)

    def script_client(self) -> Client:
        if self.client is None:
            server = self.server
            # addr "lua": how MONITOR names the commands a script runs.
            client = Client(server, 0, "lua", "")
            client.kind = "script"
            client.name = b""
            self.client = client
        return self.client

    # -- the script cache (EVAL / SCRIPT) ---------------------------------
    def create(self, body: bytes) -> Script:
        """luaCreateFunction: compile and cache body (or find it)."""
        sha = sha1hex(body)
        script = self.scripts.get(sha)
        if script is not None:
            return script
        flags, shebang_len = parse_shebang(body)
        engine = self.eval_engine
        # The shebang line is dropped but its line feed kept (line numbers).
        fn, err = engine.compile(body[shebang_len:], b"@user_script")
        if fn is None:
            raise CommandError("ERR Error compiling script (new function): %s"
                               % _text(err))
        script = Script(sha, body, flags, fn)
        self.scripts[sha] = script
        self.scripts_memory += len(body) + 40 + 64
        return script

    def lookup(self, sha: bytes):
        return self.scripts.get(sha.lower()) if len(sha) == 40 else None

    def flush(self):
        """SCRIPT FLUSH: a new Lua state, an empty cache."""
        self.scripts = {}
        self.scripts_memory = 0
        self._eval_engine = None

    @property
    def eval_memory(self) -> int:
        return self._eval_engine.memory() if self._eval_engine else 0

    # -- running ----------------------------------------------------------
    def eval(self, c, argv, evalsha: bool, ro: bool):
        numkeys = parse_numkeys(argv)
        if evalsha:
            script = self.lookup(argv[1])
            if script is None:
                return NOSCRIPT
        else:
            script = self.create(argv[1])
        return self.run(c, script.fn, script.flags, script.sha.decode(),
                        True, ro, argv[3:3 + numkeys], argv[3 + numkeys:],
                        argv)

    def run(self, c, fn, flags, name, eval_mode, ro, keys, args, argv=None):
        """Run one script or function for caller c; returns the reply."""
        from rcluster.commands.common import no_propagation
        server = self.server
        if self.ctx is not None:
            # A script can't run another (EVAL is noscript; this guards the
            # events processed under a timed-out script too).
            return BUSY_EVAL if self.ctx.eval_mode else BUSY_FUNCTION
        refusal = self._refuse(c, flags, ro)
        if refusal is not None:
            return refusal
        if c.readonly and server.cluster_mode and COMPAT not in flags and \
                FLAG_NO_WRITES not in flags and argv is not None:
            # A script that may write is a write command (Redis's
            # evalGetCommandFlags): a READONLY replica redirects it.
            redirect = self._route_as_write(c, argv)
            if redirect is not None:
                return redirect
        no_propagation(c)
        if server.monitor is not None and argv is not None:
            self._feed_monitors(c, argv)
        client = self.script_client()
        client.resp3 = False
        client.readonly = c.readonly
        client.asking = c.asking
        client.user = c.user
        client.db = c.db            # a script runs in its caller's db
        slot = None
        if keys and server.cluster_mode:
            from rcluster.cluster.keyslot import keyslot
            slot = keyslot(keys[0])
        read_only = ro or (COMPAT not in flags and FLAG_NO_WRITES in flags)
        ctx = RunContext(c, client, name, flags, eval_mode, read_only,
                         server.clock.seconds(), slot)
        ctx.caller_argv = argv
        self.ctx = ctx
        in_exec = server.in_exec
        server.in_exec = True      # no blocking from scripts (DENY_BLOCKING)
        threshold = server.settings.busy_reply_threshold
        hook = HOOK_COUNT if threshold > 0 else 0
        engine = self.eval_engine if eval_mode else self.functions.engine
        try:
            runner = engine.run_eval if eval_mode else engine.run_function
            result = runner(fn, c.resp3, hook, len(keys), *keys, *args)
        finally:
            server.in_exec = in_exec
            self.ctx = None
            if ctx.timedout:
                self._leave_busy(ctx)
        kind = result[0]
        if kind == b"ok":
            return Raw(result[1])
        msg = _text(result[1])
        source, line = result[2], result[3]
        if msg.startswith("-"):
            msg = "-" + msg    # written as is: Redis's "-%s" of "-X y"
        if source is not None and line is not None:
            msg += " script: %s, on %s:%s." % (
                name, _text(source), _line(line))
        return Error(msg)

    def _route_as_write(self, c, argv):
        server = self.server
        router = server.router
        row = server.table.lookup(argv)[0]
        if router is None or row is None:
            return None
        import dataclasses
        write_row = self._write_rows.get(row.name)
        if write_row is None:
            write_row = self._write_rows[row.name] = dataclasses.replace(
                row, flags=row.flags | {"write"})
        return router(c, write_row, argv)

    def _feed_monitors(self, c, argv):
        """MONITOR shows EVAL/FCALL before the commands the script runs
        (evalCommand's explicit replicationFeedMonitors: the rows are
        skip_monitor, so the server's own hook, which runs after a call,
        doesn't show them)."""
        from rcluster.commands.server import _origin, monitor_line
        monitor = self.server.monitor
        clients = getattr(monitor, "clients", ())
        line = Raw(monitor_line(self.server.clock.seconds(), _origin(c),
                                argv, c.db))
        for m in clients:
            if m.kind == "monitor" and not m.closed:
                m.push(line)

    def _refuse(self, c, flags, ro):
        """scriptPrepareForRun's checks -> an Error, or None."""
        server = self.server
        if COMPAT in flags:
            return None
        if FLAG_NO_CLUSTER in flags and server.cluster_mode:
            return Error("ERR Can not run script on cluster, 'no-cluster' "
                         "flag is set.")
        if FLAG_NO_WRITES not in flags:
            if server.role == "replica" and \
                    server.settings.replica_read_only and c.kind != "master":
                return Error("READONLY Can not run script with write flag on "
                             "readonly replica")
            if ro:
                return Error("ERR Can not execute a script with write flag "
                             "using *_ro command.")
        return None

    # -- the bridge the Lua state calls ---------------------------------
    def call_raise(self, *args):
        """redis.call: the value, or raise the error table."""
        value = self.call(*args)
        if value.__class__ is tuple:
            raise ScriptError(value[0])
        return value

    def call_pcall(self, *args):
        """redis.pcall: the value or the error table."""
        value = self.call(*args)
        if value.__class__ is tuple:
            return value[0]
        return value

    def call(self, *args):
        """redis.call / redis.pcall: (value) or (error table, True)."""
        ctx = self.ctx
        engine = self.eval_engine if ctx is None or ctx.eval_mode \
            else self.functions.engine
        if ctx is None:
            return engine.error_table(
                "redis.call/pcall can only be called inside a script "
                "invocation"), True
        if not args:
            return engine.error_table(
                "Please specify at least one argument for this redis lib "
                "call"), True
        argv = []
        for arg in args:
            cls = arg.__class__
            if cls is bytes:
                argv.append(arg)
            elif cls is int or cls is float:
                argv.append(b"%.17g" % arg)
            else:
                return engine.error_table(
                    "Lua redis lib command arguments must be strings or "
                    "integers"), True
        server = self.server
        client = ctx.client
        error = None
        cmd, _ = server.table.lookup(argv)
        if cmd is None:
            row = server.table.find(argv) if argv[0] else None
            if row is None or (row.subcommands and len(argv) >= 2 and
                               row.name.find("|") < 0):
                error = "Unknown Redis command called from script"
            else:
                error = "Wrong number of args calling Redis command from " \
                        "script"
        else:
            error = self._check(ctx, cmd, argv)
        if error is not None:
            if cmd is not None:
                cmd.rejected_calls += 1
            server.stats.count_error(Error(error if error[:1] != "-" else
                                           error[1:]))
            table = engine.error_table(error)
            table[b"ignore_error_stats_update"] = True
            return table, True
        reply = server.call(client, cmd, argv, send=False)
        if ctx.caller.tracking is not None and "readonly" in cmd.flags and \
                ctx.caller_argv is not None:
            # Client-side caching: the script's keys, for its caller.
            server.tracking.script_read(ctx.caller, ctx.caller_argv)
        if client.out:
            client.out.clear()
        if reply.__class__ is Error:
            return engine.to_lua(reply, client.resp3), True
        return engine.to_lua(reply, client.resp3)

    def _check(self, ctx, cmd, argv):
        """scriptCall's checks -> an error text, or None."""
        flags = cmd.flags
        if "noscript" in flags:
            return "This Redis command is not allowed from script"
        write = "write" in flags
        if ctx.ro and (write or "may_replicate" in flags):
            return "Write commands are not allowed from read-only scripts."
        server = self.server
        if write and not ctx.dirty:
            if server.role == "replica" and \
                    server.settings.replica_read_only and \
                    ctx.caller.kind != "master":
                return "-" + ROSLAVE
            refusal = server.write_refusal
            if refusal is not None:
                return "-" + str(refusal)
        if "denyoom" in flags and not ctx.dirty and \
                FLAG_ALLOW_OOM not in ctx.flags and \
                ctx.caller.kind != "master" and server.evictor.oom_at_start:
            # scriptVerifyOOM: out of memory when the script started, and
            # nothing written yet (rcluster/eviction.py).
            return "-" + str(server.evictor.oom_error)
        if write:
            ctx.dirty = True
        if server.cluster_mode and cmd.keyed and ctx.caller.kind != "master":
            return self._check_cluster(ctx, cmd, argv)
        return None

    def _check_cluster(self, ctx, cmd, argv):
        server = self.server
        client = ctx.client
        client.readonly = ctx.caller.readonly
        client.asking = ctx.caller.asking
        router = server.router
        if router is not None:
            redirect = router(client, cmd, argv)
            if redirect is not None:
                text = str(redirect)
                if text.startswith("CLUSTERDOWN") and "read" in text:
                    return "Script attempted to execute a write command " \
                           "while the cluster is down and readonly"
                if text.startswith("CLUSTERDOWN"):
                    return "Script attempted to execute a command while " \
                           "the cluster is down"
                return "Script attempted to access a non local key in a " \
                       "cluster node"
        keys = cmd.keys(argv)
        if keys and (COMPAT in ctx.flags or
                     FLAG_ALLOW_CROSS_SLOT in ctx.flags):
            return None
        if keys:
            from rcluster.cluster.keyslot import keyslot
            slot = keyslot(keys[0])
            if ctx.slot is None:
                ctx.slot = slot
            elif ctx.slot != slot:
                return "Script attempted to access keys that do not hash " \
                       "to the same slot"
        return None

    # Python-side redis.* functions: C functions for Lua (see call_raise);
    # their errors are raised as ScriptError with the error table.
    def _fail(self, text):
        raise ScriptError(self._engine_now().error_table(text))

    def _engine_now(self):
        ctx = self.ctx
        if ctx is not None and not ctx.eval_mode:
            return self.functions.engine
        if ctx is None and self.functions._loading is not None:
            return self.functions.engine
        return self.eval_engine

    def sha1hex(self, *args):
        if len(args) != 1:
            self._fail("wrong number of arguments")
        value = args[0]
        if value.__class__ is bytes:
            return sha1hex(value)
        if value.__class__ in (int, float) and value.__class__ is not bool:
            return sha1hex(_lua_number(value))
        return sha1hex(b"")

    def log(self, *args):
        if len(args) < 2:
            self._fail("redis.log() requires two arguments or more.")
        level = _lua_tonumber(args[0])
        if level is None:
            self._fail("First argument must be a number (log level).")
        level = int(level)
        if not 0 <= level <= 3:
            self._fail("Invalid debug level.")
        parts = [a if a.__class__ is bytes else _lua_number(a)
                 for a in args[1:]
                 if a.__class__ is bytes or (a.__class__ in (int, float))]
        method = getattr(log, _LOG_LEVELS.get(level, "info"))
        method("{text}", text=_text(b" ".join(parts)))

    def setresp(self, *args):
        ctx = self.ctx
        if ctx is None:
            self._fail("redis.setresp can only be called inside a script "
                       "invocation")
        if len(args) != 1:
            self._fail("redis.setresp() requires one argument.")
        version = _lua_tonumber(args[0])
        if version not in (2, 3):
            self._fail("RESP version must be 2 or 3.")
        ctx.client.resp3 = version == 3
        engine = self._engine_now()
        engine.api[b"state"][b"resp"] = int(version)

    def set_repl(self, *args):
        ctx = self.ctx
        if ctx is None:
            self._fail("redis.set_repl can only be called inside a script "
                       "invocation")
        if len(args) != 1:
            self._fail("redis.set_repl() requires two arguments.")
        flags = _lua_tonumber(args[0])
        flags = 0 if flags is None else int(flags)
        if flags & ~3:
            self._fail("Invalid replication flags. Use REPL_AOF, "
                       "REPL_REPLICA, REPL_ALL or REPL_NONE.")
        ctx.repl = flags
        if flags != 3:
            log.warn("redis.set_repl({flags}): rcluster always propagates "
                     "a script's effects", flags=flags)

    def acl_check(self, *args):
        argv = [a if a.__class__ is bytes else b"%.17g" % a for a in args
                if a.__class__ in (bytes, int, float)]
        cmd, _ = self.server.table.lookup(argv) if argv else (None, None)
        if cmd is None:
            return None
        return True          # a single default user: everything allowed

    # -- long scripts -------------------------------------------------------
    def interrupt(self):
        """The count hook: None to continue, or the kill error text."""
        ctx = self.ctx
        if ctx is None:
            if self.functions.load_timed_out():
                return b"FUNCTION LOAD timeout"
            return None
        if ctx.in_events:
            return None
        server = self.server
        if not ctx.timedout:
            elapsed = (server.clock.seconds() - ctx.start) * 1000
            threshold = server.settings.busy_reply_threshold
            if threshold <= 0 or elapsed < threshold:
                return None
            log.warn("Slow script detected: still in execution after "
                     "{elapsed} milliseconds. You can try killing the script "
                     "using the {kill} command. Script name is: {name}.",
                     elapsed=int(elapsed), name=ctx.name,
                     kill="SCRIPT KILL" if ctx.eval_mode else "FUNCTION KILL")
            self._enter_busy(ctx)
        self._events(ctx)
        if ctx.killed:
            log.warn("Lua script killed by user with SCRIPT KILL.")
            return b"Script killed by user with SCRIPT KILL..."
        return None

    def _enter_busy(self, ctx):
        ctx.timedout = True
        self.busy = ctx
        server = self.server
        # Every command takes the checked path, where -BUSY is given.
        server.refresh_gates()
        caller = ctx.caller
        if caller.blocked is None:
            caller.blocked = "script"       # protectClient
        # (SHUTDOWN checks ``busy`` itself: only NOSAVE, which kills it.)

    def _leave_busy(self, ctx):
        self.busy = None
        server = self.server
        server.refresh_gates()
        if ctx.caller.blocked == "script":
            ctx.caller.blocked = None

    def _events(self, ctx):
        events = self.process_events
        if events is None:
            iterate = getattr(self.server.clock, "doIteration", None)
            if iterate is None:
                return
            events = self.process_events = lambda: iterate(0)
        ctx.in_events = True
        try:
            events()
        finally:
            ctx.in_events = False

    def busy_error(self):
        """The -BUSY reply while a script is timed out, else None."""
        ctx = self.busy
        if ctx is None:
            return None
        return BUSY_EVAL if ctx.eval_mode else BUSY_FUNCTION

    def kill(self, eval_mode: bool):
        """SCRIPT KILL / FUNCTION KILL (scriptKill)."""
        ctx = self.ctx
        if ctx is None:
            raise CommandError("NOTBUSY No scripts in execution right now.")
        if ctx.caller.kind == "master":
            raise CommandError(
                "UNKILLABLE The busy script was sent by a master instance in "
                "the context of replication and cannot be killed.")
        if ctx.dirty:
            raise CommandError(
                "UNKILLABLE Sorry the script already executed write commands "
                "against the dataset. You can either wait the script "
                "termination or kill the server in a hard way using the "
                "SHUTDOWN NOSAVE command.")
        if eval_mode and not ctx.eval_mode:
            raise CommandError(str(BUSY_FUNCTION))
        if not eval_mode and ctx.eval_mode:
            raise CommandError(str(BUSY_EVAL))
        ctx.killed = True

    # -- persistence (the snapshot helper calls these) --------------------
    def function_codes(self) -> list:
        """The code of every function library (for the RDB)."""
        return self.functions.codes()

    def load_function_code(self, code: bytes, replace: bool = False):
        """Load one library from an RDB/AOF (raises CommandError)."""
        self.functions.load(code, replace)


def _lua_number(value) -> bytes:
    """Lua's tostring of a number (%.14g)."""
    return b"%.14g" % value


def _lua_tonumber(value):
    if value.__class__ in (int, float):
        return value
    if value.__class__ is bytes:
        try:
            return float(value.strip()) if value.strip() else None
        except ValueError:
            try:
                return int(value.strip(), 16)
            except ValueError:
                return None
    return None


def _line(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) if not isinstance(value, bytes) else _text(value)


def parse_numkeys(argv) -> int:
    """EVAL/FCALL's numkeys with Redis's errors."""
    from rcluster.commands.common import parse_int
    numkeys = parse_int(argv[2])
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number "
                           "of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    return numkeys
