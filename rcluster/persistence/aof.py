"""The append-only file: Redis 7.0's multi-part AOF.

Files (``appenddirname``, listed by the manifest, see manifest.py): a base
(an RDB image when ``aof-use-rdb-preamble yes``, else commands) and
incremental files of RESP-encoded commands, with ``SELECT`` when the
database changes and ``#TS:<unix time>`` annotations when
``aof-timestamp-enabled yes`` - byte for byte what redis-server writes,
so either server loads the other's directory.

Writing.  ``feed(db, ops)`` is the write path's sink (``server.write_path
.add_sink``): it queues the ops and schedules one flush for the end of
the reactor turn (``callLater(0)``: it runs after every connection that
was readable in this turn has run its requests, as Redis's beforeSleep).
The flush encodes and writes the turn's ops at once, then syncs by
``appendfsync``: ``always`` fdatasyncs there; ``everysec`` fdatasyncs in
a thread at most once a second; ``no`` leaves it to the kernel.  A failed
write (everysec/no) is retried by the cron and refuses writes with
``-MISCONF Errors writing to the AOF file: ...`` meanwhile (through
``server.write_refusal``); with ``always`` the node exits, as Redis.

Group commit (``appendfsync always``).  A client must not see the reply
to a write before that write is on disk.  The first write of a reactor
turn sets ``server.reply_barrier`` (a set); while it is set,
``Client.flush`` parks the client in it instead of writing its replies
(they stay queued in ``client.out``, in order).  The turn's flush writes
and fsyncs the AOF once for every client of the turn, clears the barrier,
and flushes the parked clients.  Replies queued before the first write of
the turn went out already (they depend on nothing unsynced); everything
after it waits, reads too, as Redis's replies all wait for beforeSleep.

Rewrite (BGREWRITEAOF, the auto-aof-rewrite-* triggers, CONFIG SET
appendonly yes).  As Redis: a new incr file takes the writes from the
instant of the rewrite on; the new base is that instant's dataset,
serialized without fork by ``snapshot.Snapshot`` a slice per reactor turn
(point in time through the keyspace's ``before_write`` hook), into
``temp-rewriteaof-bg-<pid>.aof`` (``rdb-key-save-delay`` spreads it, as
it slows Redis's child).  At the end the base is fsynced in a thread,
renamed into the directory, the manifest is switched atomically (temp
file, fsync, rename, directory fsync) and the old files deleted in a
thread.

Loading replays each command through the server's command table with a
fake client (Redis's createAOFClient): the handlers run directly, replies
and propagation dropped, as Redis calls cmd->proc; MULTI ... EXEC is
applied at EXEC, atomically.  As in Redis nothing expires while loading
(the keyspace's clock reads 0 and active expiry pauses), so a command
acts on a key as it was when it first ran.  ``load_sliced`` spreads the
load across reactor turns (the service's start-up; -LOADING meanwhile),
``load`` does it at once (DEBUG LOADAOF).  A file that ends mid-command (or inside MULTI) is truncated
at the last whole command with ``aof-load-truncated yes``, as Redis does;
anything else (garbage, a missing file, a corrupt base, an unknown
command) raises ``AofLoadError`` naming the file and offset, and the node
refuses to start.
"""
from __future__ import annotations

import os
import time

from twisted.python.failure import Failure

from rcluster.commands.table import CommandError
from rcluster.logs import logger
from rcluster.persistence.autosync import AutoSync
from rcluster.persistence.manifest import (BASE, AofInfo, Manifest,
                                           ManifestError)
from rcluster.timers import periodic

log = logger()

OFF, ON, WAIT_REWRITE = "off", "on", "wait_rewrite"
# Load results (aof.c's AOF_OK ... AOF_FAILED).
LOADED, NOT_EXIST, EMPTY, TRUNCATED = "ok", "not_exist", "empty", "truncated"

ANNOTATION_MAX = 1024       # AOF_ANNOTATION_LINE_MAX_LEN
MAX_ARGC = 1 << 31
READ_CHUNK = 1 << 16         # bytes read per slice of a load
CLIENT_ID_AOF = (1 << 64) - 1
RETRY_DELAY = 5             # seconds between failed rewrites retried


class AofLoadError(Exception):
    """The AOF can't be loaded: the node must not start (or DEBUG LOADAOF
    fails).  The message names the file and the offset."""


class AofFormatError(Exception):
    def __init__(self, offset: int, reason: str):
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


# -- encoding -----------------------------------------------------------------

_ARRAY_HEADERS = [b"*%d\r\n" % n for n in range(64)]
_BULK_HEADERS = [b"$%d\r\n" % n for n in range(1024)]


def encode_command(argv) -> bytes:
    """catAppendOnlyGenericCommand: a RESP array of bulk strings."""
    return b"".join(_encoded_parts([argv]))


def _encoded_parts(items) -> list:
    """The pieces of the AOF encoding of items: bytes as they are, argv
    lists as RESP arrays of bulk strings."""
    parts = []
    append, extend = parts.append, parts.extend
    arrays, bulks = _ARRAY_HEADERS, _BULK_HEADERS
    for argv in items:
        if argv.__class__ is bytes:
            append(argv)
            continue
        count = len(argv)
        append(arrays[count] if count < 64 else b"*%d\r\n" % count)
        for arg in argv:
            if arg.__class__ is not bytes:
                arg = bytes(arg) if isinstance(
                    arg, (bytearray, memoryview)) else str(arg).encode()
            size = len(arg)
            extend((bulks[size] if size < 1024 else b"$%d\r\n" % size,
                    arg, b"\r\n"))
    return parts


def select_command(db: int) -> bytes:
    text = b"%d" % db
    return b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%b\r\n" % (len(text), text)


def timestamp_annotation(seconds: int) -> bytes:
    return b"#TS:%d\r\n" % seconds


# -- parsing (sans-IO) --------------------------------------------------------

class CommandParser:
    """Commands out of AOF bytes, fed in pieces.

    ``next()`` returns ``("cmd", argv, end)``, ``("ts", seconds, end)`` for
    an annotation, or None when more bytes are needed; ``end`` is the file
    offset just past the item (where a truncation may cut).  Malformed
    input raises AofFormatError with the offset of the bad item.  Every
    length is bounded (``max_bulk``)."""

    def __init__(self, max_bulk: int = 512 * 1024 * 1024, offset: int = 0):
        self.buf = bytearray()
        self.pos = 0
        self.base = offset      # file offset of buf[0]
        self.max_bulk = max_bulk
        # A command cut by the end of the bytes so far: [argc, argv, file
        # offset of its next argument] - parsing resumes there, so a
        # command of many arguments fed in pieces costs linear time.
        self.partial = None

    @property
    def offset(self) -> int:
        return self.base + self.pos

    @property
    def pending(self) -> bool:
        """Bytes of an incomplete item are buffered."""
        return self.pos < len(self.buf)

    def feed(self, data: bytes):
        if self.pos > (1 << 20) and self.pos * 2 > len(self.buf):
            del self.buf[:self.pos]
            self.base += self.pos
            self.pos = 0
        self.buf += data

    def _line(self, start: int):
        """(line without CRLF, index after it) or None if incomplete."""
        buf = self.buf
        end = buf.find(b"\n", start, start + ANNOTATION_MAX)
        if end < 0:
            if len(buf) - start >= ANNOTATION_MAX:
                raise AofFormatError(self.base + start, "line too long")
            return None
        line = bytes(buf[start:end])
        if line.endswith(b"\r"):
            line = line[:-1]
        return line, end + 1

    def next(self):
        buf, start = self.buf, self.pos
        if start >= len(buf):
            return None
        head = buf[start]
        if head == 0x23:        # '#': an annotation
            got = self._line(start)
            if got is None:
                return None
            line, after = got
            self.pos = after
            if line.startswith(b"#TS:"):
                try:
                    return "ts", int(line[4:]), self.base + after
                except ValueError:
                    pass
            return "note", line, self.base + after
        partial = self.partial
        if partial is not None:
            argc, argv, at = partial
            at -= self.base
        else:
            if head != 0x2A:        # '*'
                raise AofFormatError(
                    self.base + start,
                    "expected '*', got %r" % bytes(buf[start:start + 1]))
            got = self._line(start)
            if got is None:
                return None
            line, at = got
            argc = _parse_int(line[1:])
            if argc is None or argc < 1 or argc > MAX_ARGC:
                raise AofFormatError(self.base + start, "bad argument count")
            argv = []
            self.partial = partial = [argc, argv, 0]
        while len(argv) < argc:
            partial[2] = self.base + at
            if at >= len(buf):
                return None
            if buf[at] != 0x24:     # '$'
                raise AofFormatError(self.base + at, "expected '$'")
            got = self._line(at)
            if got is None:
                return None
            line, data_at = got
            size = _parse_int(line[1:])
            if size is None or size < 0 or size > self.max_bulk:
                raise AofFormatError(self.base + at, "bad bulk length")
            end = data_at + size
            if end + 2 > len(buf):
                return None
            if buf[end:end + 2] != b"\r\n":
                raise AofFormatError(self.base + end,
                                     "bulk not followed by CRLF")
            argv.append(bytes(buf[data_at:end]))
            at = end + 2
        self.partial = None
        self.pos = at
        return "cmd", argv, self.base + at


def _parse_int(text: bytes):
    try:
        return int(text)
    except ValueError:
        return None


# -- rewriting as commands (aof-use-rdb-preamble no) --------------------------

ITEMS_PER_CMD = 64          # AOF_REWRITE_ITEMS_PER_CMD


class CommandWriter:
    """The ``RdbWriter`` interface (header/function/select_db/entry/footer)
    writing commands instead: Redis's rewriteAppendOnlyFileRio, so a
    ``Snapshot`` serializes the dataset as a ``.base.aof``."""

    def __init__(self, timestamp=None):
        self.timestamp = timestamp      # seconds, for #TS:, or None

    def header(self, aux=()) -> bytes:
        if self.timestamp is None:
            return b""
        return timestamp_annotation(self.timestamp)

    def function(self, code: bytes) -> bytes:
        return encode_command([b"FUNCTION", b"LOAD", code])

    def select_db(self, db: int, size: int = 0, expires: int = 0) -> bytes:
        return select_command(db)

    def footer(self) -> bytes:
        return b""

    def entry(self, key: bytes, value, expire_ms=None) -> bytes:
        out = []
        _rewrite_value(out, key, value)
        if expire_ms is not None:
            out.append(encode_command([b"PEXPIREAT", key, b"%d" % expire_ms]))
        return b"".join(out)


def _batched(out, head, key, items, width=1):
    items = list(items)
    step = ITEMS_PER_CMD * width
    for start in range(0, len(items), step):
        out.append(encode_command(head + [key] + items[start:start + step]))


def _rewrite_value(out, key, value):
    from collections import deque
    from rcluster.zset import ZSet
    if isinstance(value, (bytes, bytearray)):
        out.append(encode_command([b"SET", key, bytes(value)]))
    elif isinstance(value, deque):
        _batched(out, [b"RPUSH"], key, value)
    elif isinstance(value, set):
        _batched(out, [b"SADD"], key, value)
    elif isinstance(value, dict):
        flat = [part for pair in value.items() for part in pair]
        _batched(out, [b"HMSET"], key, flat, 2)
    elif isinstance(value, ZSet):
        flat = []
        for score, member in value.order:
            flat += [_format_score(score), member]
        _batched(out, [b"ZADD"], key, flat, 2)
    elif getattr(value, "TYPE_NAME", None) == "stream":
        out.extend(encode_command(argv) for argv in _stream_commands(key,
                                                                     value))
    else:
        raise ValueError(
            "AOF rewrite with aof-use-rdb-preamble no can't write a key of "
            "type %r as commands: use aof-use-rdb-preamble yes"
            % getattr(value, "TYPE_NAME", type(value).__name__))


def _stream_commands(key, stream):
    """rewriteStreamObject: XADDs, XSETID, then each group with its
    consumers and pending entries."""
    sid = b"%d-%d".__mod__
    if len(stream):
        for entry_id, fields in stream.entries.items():
            yield [b"XADD", key, sid(entry_id), *fields]
    else:
        # An empty stream: create it, then drop the entry (MAXLEN 0).
        yield [b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]
    yield [b"XSETID", key, sid(stream.last_id), b"ENTRIESADDED",
           b"%d" % stream.entries_added, b"MAXDELETEDID",
           sid(stream.max_deleted_id)]
    for name in sorted(stream.groups):
        group = stream.groups[name]
        yield [b"XGROUP", b"CREATE", key, name, sid(group.last_id),
               b"ENTRIESREAD", b"%d" % group.entries_read]
        for cname in sorted(group.consumers):
            consumer = group.consumers[cname]
            if not consumer.pel:
                yield [b"XGROUP", b"CREATECONSUMER", key, name, cname]
                continue
            for entry_id, nack in consumer.pel.items():
                yield [b"XCLAIM", key, name, cname, b"0", sid(entry_id),
                       b"TIME", b"%d" % nack.delivery_time, b"RETRYCOUNT",
                       b"%d" % nack.delivery_count, b"JUSTID", b"FORCE"]


def _format_score(score: float) -> bytes:
    """rioWriteBulkDouble: %.17g, with inf/-inf spelled Redis's way."""
    if score == float("inf"):
        return b"inf"
    if score == float("-inf"):
        return b"-inf"
    return (b"%.17g" % score)


# -- the AOF ------------------------------------------------------------------

class Aof:
    """One node's append-only file (see the module docstring).

    Used by the persistence service: ``load()`` at start-up (before the
    listeners accept clients), ``start()`` / ``stop()`` with the service,
    ``rewrite()`` for BGREWRITEAOF, ``info_fields()`` for INFO
    persistence.  ``server.aof`` points here."""

    def __init__(self, server, settings, reactor, exit=None):
        self.server = server
        self.settings = settings
        self.reactor = reactor
        self.exit = exit or (lambda code: os._exit(code))
        self.state = OFF
        self.manifest = Manifest()
        self.fd = -1
        self.fd_name = None
        # Pending output: encoded bytes (SELECT, #TS:) and argv lists.
        self.buf: list = []
        self.selected_db = -1
        self.cur_timestamp = 0
        self.current_size = 0
        self.base_size = 0          # aof_rewrite_base_size
        self.last_incr_size = 0
        self.fsynced_offset = 0     # aof_last_incr_fsync_offset
        self.last_fsync = 0
        self.fsync_in_progress = 0
        self.delayed_fsync = 0
        self.flush_call = None
        self.loop = None
        self.loading = False
        # Rewrite state.
        self.rewrite_job = None
        self.rewrite_tmp = None
        self.rewrite_fh = None
        self.autosync_busy = False      # an incremental fsync in a thread
        self.rewrite_scheduled = False
        self.rewrite_time_start = -1
        self.rewrite_time_last = -1
        self.rewrite_ok = True
        self.rewrites = 0
        self.rewrite_failures = 0
        self.rewrite_failed_at = 0.0
        self.last_write_ok = True
        self.refusal = None         # our -MISCONF, while it is up
        self.sink_installed = False
        self.on_rewrite_done = []   # callables(ok) for tests/waiters
        server.aof = self
        settings.listeners.append(self._config_changed)

    # -- paths ----------------------------------------------------------------
    @property
    def dirname(self) -> str:
        return self.settings.appenddirname

    @property
    def filename(self) -> str:
        return self.settings.appendfilename

    def path(self, name: str) -> str:
        return os.path.join(self.dirname, name)

    def shown(self, name: str) -> str:
        """A file's absolute path, as errors name it."""
        return os.path.abspath(self.path(name))

    @property
    def manifest_name(self) -> str:
        return self.filename + ".manifest"

    # -- loading --------------------------------------------------------------
    def read_manifest(self) -> Manifest:
        """aofLoadManifestFromDisk: the manifest on disk, or an empty one."""
        path = self.path(self.manifest_name)
        if not os.path.isdir(self.dirname):
            return Manifest()
        if not os.path.exists(path):
            # Redis would start empty and write a new base over these:
            # never a silent reset.
            prefix = self.filename + "."
            orphans = sorted(
                name for name in os.listdir(self.dirname)
                if name.startswith(prefix) and name.endswith((".aof", ".rdb")))
            if orphans:
                raise AofLoadError(
                    "The AOF directory %s holds AOF files (%s) but no "
                    "manifest %s: restore the manifest or move the files "
                    "away" % (os.path.abspath(self.dirname),
                              ", ".join(orphans), self.manifest_name))
            return Manifest()
        try:
            with open(path, "rb") as fh:
                text = fh.read(1 << 24)
        except OSError as err:
            raise AofLoadError(
                "Fatal error: can't open the AOF manifest file %s for "
                "reading: %s" % (path, err.strerror)) from None
        try:
            return Manifest.parse(text)
        except ManifestError as err:
            log.warn("*** FATAL AOF MANIFEST FILE ERROR ***")
            if err.line:
                log.warn("Reading the manifest file, at line {line}",
                         line=err.line)
                log.warn(">>> '{text}'", text=err.text)
            log.warn("{reason}", reason=err.reason)
            raise AofLoadError(err.describe(path)) from None

    def load(self) -> str:
        """Load the AOF into the (empty) keyspace, all at once: LOADED,
        TRUNCATED, EMPTY or NOT_EXIST; AofLoadError when it can't."""
        steps = self._load_steps()
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    def load_sliced(self, budget: float = 0.01):
        """The same load across reactor turns (about ``budget`` seconds of
        work per turn): a Deferred firing with the result, or failing with
        AofLoadError.  The caller keeps ``server.loading`` set meanwhile
        (commands get -LOADING)."""
        from twisted.internet import defer
        result = defer.Deferred()
        steps = self._load_steps()

        def turn():
            deadline = time.monotonic() + budget
            try:
                next(steps)             # at least one piece per turn
                while time.monotonic() < deadline:
                    next(steps)
            except StopIteration as done:
                result.callback(done.value)
                return
            except Exception:           # noqa: BLE001 - handed over
                result.errback()
                return
            self.reactor.callLater(0, turn)
        self.reactor.callLater(0, turn)
        return result

    def _load_steps(self):
        """A generator doing the load a piece at a time (it yields between
        pieces); its return value is the result."""
        self.manifest = self.read_manifest()
        self._upgrade_if_needed()
        return (yield from self._load_files(self.manifest))

    def _upgrade_if_needed(self):
        """aofUpgradePrepare: an old-style single AOF in the working
        directory moves into the AOF directory as the base."""
        am, name = self.manifest, self.filename
        if not os.path.exists(name):
            return
        if not (not os.path.isdir(self.dirname)
                or (am.base is None and not am.incrs)
                or (am.base is not None and not am.incrs
                    and am.base.name == name
                    and not os.path.exists(self.path(name)))):
            return
        os.makedirs(self.dirname, exist_ok=True)
        upgraded = Manifest()
        upgraded.base = AofInfo(name, 1, BASE)
        upgraded.base_seq = 1
        self._persist_manifest(upgraded)
        os.rename(name, self.path(name))
        self.manifest = upgraded
        log.info("Successfully migrated an old-style AOF file ({name}) into "
                 "the AOF directory ({dir}).", name=name, dir=self.dirname)

    def _load_files(self, am: Manifest) -> str:
        files = am.files
        if not files:
            return NOT_EXIST
        total = 0
        for info in files:
            try:
                total += os.stat(self.path(info.name)).st_size
            except OSError as err:
                log.warn("Unable to obtain the AOF file {name} length. "
                         "stat: {error}", name=info.name, error=err.strerror)
                raise AofLoadError(
                    "The AOF file %s listed in the manifest %s is missing or "
                    "unreadable (%s)" % (self.shown(info.name),
                                         self.manifest_name, err.strerror)
                ) from None
        if total == 0:
            return EMPTY
        server = self.server
        self.loading = True
        was_loading = server.loading
        server.loading = True
        # As Redis while loading: nothing expires (a command of the file
        # acts on the key as it was when it ran); time stands still at 0
        # for the keyspace, and active expiry waits for the end.
        was_expiring = server.active_expire
        server.active_expire = False
        result = LOADED
        try:
            for index, info in enumerate(files):
                last = index == len(files) - 1
                started = time.monotonic()
                status = yield from self.load_file(info.name, last)
                if status == TRUNCATED and not last:
                    log.warn("Fatal error: the truncated file is not the "
                             "last file")
                    raise AofLoadError(
                        "AOF file %s is truncated and is not the last file"
                        % self.shown(info.name))
                if status in (LOADED, TRUNCATED):
                    log.info("DB loaded from {kind} file {name}: {secs:.3f} "
                             "seconds", kind="base" if info.type == BASE
                             else "incr", name=info.name,
                             secs=time.monotonic() - started)
                if status == TRUNCATED:
                    result = TRUNCATED
        finally:
            self.loading = False
            server.loading = was_loading
            server.active_expire = was_expiring
            server.keyspace.tick(server.now_ms())
        self.current_size = sum(self._size(i.name) for i in files)
        self.base_size = self._size(am.base.name) if am.base else 0
        return result

    def _size(self, name: str) -> int:
        try:
            return os.stat(self.path(name)).st_size
        except OSError:
            return 0

    def _replay_time(self):
        """Nothing expires while a file is replayed (Redis doesn't expire
        keys while loading): ``now`` is 0; the keys loaded are stamped
        with the real time as their last access (LRU)."""
        server = self.server
        server.keyspace.tick(0, server.now_ms())

    def load_file(self, name: str, last: bool = True) -> str:
        """loadSingleAppendOnlyFile: replay one file into the keyspace."""
        path = self.shown(name)
        try:
            fh = open(path, "rb")
        except OSError as err:
            raise AofLoadError(
                "Fatal error: can't open the append log file %s for "
                "reading: %s" % (path, err.strerror)) from None
        with fh:
            head = fh.read(5)
            if not head and os.fstat(fh.fileno()).st_size == 0:
                return EMPTY
            self._replay_time()
            offset = 0
            if head == b"REDIS":
                fh.seek(0)
                old_style = name == self.filename
                log.info("Reading RDB preamble from AOF file..." if old_style
                         else "Reading RDB base file on AOF loading...")
                # As Redis: whatever follows the RDB is read as commands
                # (an old-style preamble AOF's tail).
                offset, tail = yield from self._load_rdb(fh, path)
                if old_style:
                    log.info("Reading the remaining AOF tail...")
            else:
                fh.seek(0)
                tail = b""
            return (yield from self._replay(fh, path, name, offset, tail,
                                            last))

    def _load_rdb(self, fh, path):
        """The RDB part of a base file, through the persistence service's
        RdbLoad: (offset after it, bytes read past it - an old-style
        preamble AOF's command tail)."""
        from rcluster.persistence.service import LoadError, RdbLoad
        load = RdbLoad(self.server, path, merge=False, master=True, log=log)
        reader = load.reader
        consumed = chunk_start = 0
        try:
            while True:
                chunk = fh.read(READ_CHUNK)
                if not chunk:
                    break
                chunk_start = consumed
                consumed += len(chunk)
                self._replay_time()
                load.feed(chunk)
                load.apply()
                if reader.done:
                    break
                yield
            load.finish()
        except LoadError as err:
            log.warn("Error reading the RDB base file {name}, AOF loading "
                     "aborted", name=os.path.basename(path))
            raise AofLoadError(
                "Bad RDB base of the append only file %s (in bytes %d-%d): %s"
                % (path, chunk_start, consumed, str(err).split(": ", 1)[-1])
            ) from None
        self._install_functions(load.functions)
        rest = reader.rest
        return consumed - len(rest), rest

    def _install_functions(self, codes):
        if not codes:
            return
        for code in codes:
            try:
                self.server.scripts.load_function_code(code, replace=True)
            except CommandError as err:
                raise AofLoadError("a FUNCTION library of the AOF base does "
                                   "not load: %s" % err) from None

    def _replay(self, fh, path, name, offset, first, last) -> str:
        """Run the commands of a file from ``offset`` (``first``: bytes
        already read from there)."""
        fake = self.fake_client()
        parser = CommandParser(max(self.settings.proto_max_bulk_len,
                                   512 * 1024 * 1024), offset)
        valid_up_to = offset
        multi = None                # queued commands inside MULTI
        before_multi = offset
        data = first
        eof = False
        while True:
            if data:
                parser.feed(data)
            self._replay_time()
            while True:
                try:
                    item = parser.next()
                except AofFormatError as err:
                    log.warn("Bad file format reading the append only file "
                             "{name}: make a backup of your AOF file, then "
                             "use ./redis-check-aof --fix <filename.manifest>",
                             name=name)
                    raise AofLoadError(
                        "Bad file format reading the append only file %s at "
                        "offset %d (%s)" % (path, err.offset, err.reason)
                    ) from None
                if item is None:
                    break
                kind, value, end = item
                if kind != "cmd":
                    if multi is None:
                        valid_up_to = end
                    continue
                argv = value
                lower = argv[0].lower()
                if lower == b"multi":
                    if multi is not None:
                        raise self._bad(path, name, end, "nested MULTI")
                    multi = []
                    before_multi = valid_up_to
                    continue
                if lower == b"exec":
                    if multi is None:
                        raise self._bad(path, name, end, "EXEC without MULTI")
                    for queued in multi:
                        self._run(fake, queued, path, name)
                    multi = None
                    valid_up_to = end
                    continue
                if lower == b"select":
                    db = _parse_int(argv[1]) if len(argv) == 2 else None
                    count = len(self.server.dbs)
                    if db is None or not 0 <= db < count:
                        raise AofLoadError(
                            "The append only file %s selects database %s at "
                            "offset %d: this node has %d database(s) "
                            "(databases / cluster-databases)"
                            % (path, argv[1:2] and argv[1].decode(
                                "utf-8", "replace"), end, count))
                    if multi is not None:
                        multi.append(argv)
                    else:
                        fake.db = db
                        valid_up_to = end
                    continue
                if multi is not None:
                    self._check_known(argv, path, name, end)
                    multi.append(argv)
                    continue
                self._run(fake, argv, path, name, end)
                valid_up_to = end
            if eof:
                break
            yield
            data = fh.read(READ_CHUNK)
            if not data:
                eof = True
        if multi is not None:
            log.warn("Revert incomplete MULTI/EXEC transaction in AOF file "
                     "{name}", name=name)
            return self._truncated(path, name, before_multi, last)
        if parser.pending:
            return self._truncated(path, name, valid_up_to, last)
        return LOADED

    def _bad(self, path, name, end, reason):
        log.warn("Bad file format reading the append only file {name}: make "
                 "a backup of your AOF file, then use ./redis-check-aof --fix "
                 "<filename.manifest>", name=name)
        return AofLoadError("Bad file format reading the append only file %s "
                            "before offset %d (%s)" % (path, end, reason))

    def _truncated(self, path, name, valid_up_to, last) -> str:
        """uxeof: the file ends inside a command (or a MULTI)."""
        if self.settings.aof_load_truncated and last:
            log.warn("!!! Warning: short read while loading the AOF file "
                     "{name}!!!", name=name)
            log.warn("!!! Truncating the AOF {name} at offset {offset} !!!",
                     name=name, offset=valid_up_to)
            try:
                os.truncate(path, valid_up_to)
            except OSError as err:
                log.warn("Error truncating the AOF file {name}: {error}",
                         name=name, error=err.strerror)
            else:
                log.warn("AOF {name} loaded anyway because aof-load-truncated "
                         "is enabled", name=name)
                return TRUNCATED
        if self.settings.aof_load_truncated and not last:
            log.warn("Fatal error: the truncated file is not the last file")
            raise AofLoadError(
                "Unexpected end of file reading the append only file %s at "
                "offset %d, and it is not the last file" % (path, valid_up_to))
        log.warn("Unexpected end of file reading the append only file {name}. "
                 "You can: 1) Make a backup of your AOF file, then use "
                 "./redis-check-aof --fix <filename.manifest>. 2) "
                 "Alternatively you can set the 'aof-load-truncated' "
                 "configuration option to yes and restart the server.",
                 name=name)
        raise AofLoadError(
            "Unexpected end of file reading the append only file %s after "
            "offset %d (aof-load-truncated is no)" % (path, valid_up_to))

    def fake_client(self):
        """createAOFClient: a client whose replies go nowhere."""
        from rcluster.client import Client
        fake = Client(self.server, CLIENT_ID_AOF)
        fake.name = b""
        fake.kind = "aof"
        return fake

    def _check_known(self, argv, path, name, end):
        cmd, error = self.server.table.lookup(argv)
        if cmd is None:
            self._unknown(argv, path, name, end, error)
        return cmd

    def _unknown(self, argv, path, name, end, error):
        if self.server.table.find(argv) is None:
            log.warn("Unknown command '{cmd}' reading the append only file "
                     "{name}", cmd=argv[0].decode("utf-8", "replace"),
                     name=name)
            raise AofLoadError("Unknown command '%s' reading the append only "
                               "file %s before offset %d" % (
                                   argv[0].decode("utf-8", "replace"), path,
                                   end))
        raise AofLoadError("Bad command reading the append only file %s "
                           "before offset %d: %s" % (path, end, error))

    def _run(self, fake, argv, path, name, end=0):
        """Run one loaded command as Redis does: the handler, directly,
        its reply dropped (no propagation, no statistics)."""
        cmd, error = self.server.table.lookup(argv)
        if cmd is None:
            self._unknown(argv, path, name, end, error)
        server = self.server
        previous = server.cur_db
        if fake.db != previous:
            server.use_db(fake.db)      # SELECT n earlier in the file
        try:
            cmd.handler(fake, argv)
        except CommandError:
            pass                # a failing command changed nothing
        finally:
            if server.cur_db != previous:
                server.use_db(previous)
        fake.out.clear()
        # Loaded commands are not propagated (Redis runs them outside call()).
        self.server.write_path.discard()

    # -- start / stop ---------------------------------------------------------
    def start(self):
        """aofOpenIfNeededOnServerStart, after load(): open (or create) the
        incr file to append to, creating a base for an empty AOF."""
        if self.settings.appendonly and self.state == OFF:
            self._install_sink()
            self.state = ON
            try:
                self._open_on_start()
            except OSError as err:
                # Redis exits here: a node must not run without the AOF
                # it was configured to keep.
                log.critical("Can't open or create the append only file in "
                             "{dir}: {error}. Exiting...",
                             dir=os.path.abspath(self.dirname),
                             error=err.strerror or str(err))
                self.state = OFF
                self._remove_sink()
                self.exit(1)
                return
        self._start_cron()

    def _start_cron(self):
        if self.loop is not None and self.loop.running:
            return
        # Aligned with the node's other crons: one wake-up (timers.py).
        self.loop = periodic(self.cron, self.reactor)
        self.loop.start(0.1, now=False)

    def _install_sink(self):
        """The write path feeds the AOF only while it is on (or waiting
        for its first rewrite): with appendonly no, writes pay nothing."""
        if not self.sink_installed:
            self.sink_installed = True
            self.server.write_path.add_sink(self.feed)

    def _remove_sink(self):
        if self.sink_installed:
            self.sink_installed = False
            self.server.write_path.remove_sink(self.feed)

    def _open_on_start(self):
        os.makedirs(self.dirname, exist_ok=True)
        am = self.manifest
        if am.base is None and not am.incrs:
            name = am.new_base(self.filename,
                               self.settings.aof_use_rdb_preamble)
            self._write_base_now(self.path(name))
            log.info("Creating AOF base file {name} on server start",
                     name=name)
        had_incr = bool(am.incrs)
        name = am.last_incr(self.filename)
        self._open_fd(name, append=True)
        self._persist_manifest(am)
        self.last_incr_size = self._size(name)
        self.fsynced_offset = self.last_incr_size
        self.current_size = sum(self._size(i.name) for i in am.files)
        if not self.base_size and am.base is not None:
            self.base_size = self._size(am.base.name)
        log.info("{what} AOF incr file {name} on server start",
                 what="Opening" if had_incr else "Creating", name=name)

    def _open_fd(self, name, append=True):
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append
                                            else os.O_TRUNC)
        try:
            fd = os.open(self.path(name), flags, 0o644)
        except OSError as err:
            log.warn("Can't open the append-only file {name}: {error}",
                     name=name, error=err.strerror)
            raise
        if self.fd != -1:
            self._fsync_and_close(self.fd)
        self.fd = fd
        self.fd_name = name
        self.selected_db = -1

    def shutdown(self, force=True):
        """prepareForShutdown's AOF part: a running rewrite is stopped and
        everything written is fsynced (the file stays open: a SHUTDOWN
        that fails goes on appending).  Returns Redis's refusal text when
        the first base of CONFIG SET appendonly yes is still being
        written and not ``force``, else None."""
        if self.rewrite_job is not None:
            if self.state == WAIT_REWRITE:
                if not force:
                    log.warn("Writing initial AOF, can't exit.")
                    return "ERR Errors trying to SHUTDOWN. Check logs."
                log.warn("Writing initial AOF. Exit anyway.")
            log.warn("There is a child rewriting the AOF. Killing it!")
            self._cancel_rewrite()
        if self.state != OFF:
            self._flush(force=True)
            if self.fd != -1:
                try:
                    os.fsync(self.fd)
                except OSError as err:
                    log.warn("Fail to fsync the AOF file: {error}",
                             error=err.strerror)
        return None

    def stop(self):
        """Flush, fsync and close (appendonly no, tests)."""
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.loop = None
        waiting = self.state == WAIT_REWRITE
        self._cancel_rewrite()
        if self.state == OFF and self.fd == -1:
            return
        self._flush(force=True)
        if self.fd != -1:
            try:
                os.fsync(self.fd)
            except OSError as err:
                log.warn("Fail to fsync the AOF file: {error}",
                         error=err.strerror)
            os.close(self.fd)
        if waiting:
            _unlink(self.path("temp-%s.incr" % self.filename))
        self.fd = -1
        self.fd_name = None
        self.state = OFF
        self._remove_sink()
        self.selected_db = -1
        self.rewrite_scheduled = False
        self.last_incr_size = self.fsynced_offset = 0
        self.buf = []
        self.last_write_ok = True
        self._gate(None)
        self._release_replies()

    # -- writing --------------------------------------------------------------
    def feed(self, db, ops):
        """The write path's sink: ops (argv lists) ran on database db.

        Hot path: the argv lists are kept as they are and encoded once per
        reactor turn, at the flush (one join for the whole turn)."""
        if self.state is not ON and (
                self.state is OFF or self.rewrite_job is None):
            return          # WAIT_REWRITE records only while a rewrite runs
        if self.loading:
            return
        buf = self.buf
        if self.settings.aof_timestamp_enabled:
            now = int(self.reactor.seconds())
            if self.cur_timestamp < now:
                self.cur_timestamp = now
                buf.append(timestamp_annotation(now))
        if db != self.selected_db:
            buf.append(select_command(db))
            self.selected_db = db
        buf.extend(ops)
        if self.flush_call is None:
            self.flush_call = self.reactor.callLater(0, self._turn_end)
            if self.settings.appendfsync == "always" and \
                    self.server.reply_barrier is None:
                self.server.reply_barrier = set()

    def _turn_end(self):
        self.flush_call = None
        self._flush(force=False)

    def _flush(self, force=False):
        """flushAppendOnlyFile: write the buffer, sync by policy, then let
        the replies held for it go."""
        try:
            if self.buf and self.fd != -1:
                if not self._write_buffer():
                    return
            self._sync()
        finally:
            if not (self.buf and self.settings.appendfsync == "always"):
                self._release_replies()

    @property
    def buf_len(self) -> int:
        """aof_buffer_length: bytes waiting for the next write."""
        return sum(len(part) for part in _encoded_parts(self.buf))

    def _write_buffer(self) -> bool:
        data = b"".join(_encoded_parts(self.buf))
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self.fd, view[written:])
        except OSError as err:
            return self._write_failed(err, written, data)
        self.buf.clear()
        self.current_size += written
        self.last_incr_size += written
        if not self.last_write_ok:
            log.warn("AOF write error looks solved, Redis can write again.")
            self.last_write_ok = True
            self._gate(None)
        return True

    def _gate(self, refusal):
        """-MISCONF for writes while the AOF can't be written (Redis's
        writeCommandsDeniedByDiskError), through the server's write gate;
        lifted only if it is still ours."""
        server = self.server
        current = server.write_refusal
        if refusal is None:
            if current is not None and current is self.refusal:
                server.write_refusal = None
                server.refresh_gates()
            self.refusal = None
            return
        if current is None or current is self.refusal:
            self.refusal = refusal
            server.write_refusal = refusal
            server.refresh_gates()

    def _write_failed(self, err, written, data) -> bool:
        log.warn("Error writing to the AOF file: {error}", error=err.strerror)
        if self.settings.appendfsync == "always":
            log.warn("Can't recover from AOF write error when the AOF fsync "
                     "policy is 'always'. Exiting...")
            self.exit(1)
            return False
        self.last_write_ok = False
        from rcluster.resp.codec import Error
        self._gate(Error("MISCONF Errors writing to the AOF file: %s"
                         % (err.strerror or err)))
        if written:
            self.current_size += written
            self.last_incr_size += written
            self.buf = [data[written:]]
        return False

    def _sync(self):
        policy = self.settings.appendfsync
        if self.fd == -1 or self.fsynced_offset == self.last_incr_size:
            return
        if self.settings.no_appendfsync_on_rewrite and \
                self.rewrite_job is not None:
            return
        now = int(self.reactor.seconds())
        if policy == "always":
            try:
                os.fdatasync(self.fd)
            except OSError as err:
                log.warn("Can't persist AOF for fsync error when the AOF "
                         "fsync policy is 'always': {error}. Exiting...",
                         error=err.strerror)
                self.exit(1)
                return
            self.fsynced_offset = self.last_incr_size
            self.last_fsync = now
        elif policy == "everysec" and now > self.last_fsync:
            if not self.fsync_in_progress:
                self._background(os.fdatasync, self.fd)
                self.fsynced_offset = self.last_incr_size
            self.last_fsync = now

    def _release_replies(self):
        barrier = self.server.reply_barrier
        if barrier is None:
            return
        self.server.reply_barrier = None
        for client in barrier:
            client.flush()

    def _background(self, fn, *args, fsync=True):
        """Run fn(*args) in the reactor's thread pool (bio), or inline on a
        reactor without threads (tests).  ``fsync`` jobs count as
        aof_pending_bio_fsync (and delay the next everysec fsync)."""
        call_in_thread = getattr(self.reactor, "callInThread", None)
        if call_in_thread is None:
            try:
                fn(*args)
            except OSError as err:
                log.warn("AOF background job failed: {error}",
                         error=err.strerror)
            return
        if fsync:
            self.fsync_in_progress += 1
        call_from_thread = self.reactor.callFromThread

        def job():
            try:
                fn(*args)
            except OSError as err:
                call_from_thread(log.warn, "AOF background job failed: "
                                 "{error}", error=err.strerror)
            finally:
                if fsync:
                    call_from_thread(self._background_done)
        call_in_thread(job)

    def _background_done(self):
        self.fsync_in_progress -= 1

    def _fsync_and_close(self, fd):
        def job(fd=fd):
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._background(job)

    # -- periodic work --------------------------------------------------------
    def cron(self):
        """serverCron's AOF part: retry a failed write, the everysec fsync
        of an idle file, scheduled and automatic rewrites."""
        if self.rewrite_job is None and self.rewrite_scheduled and \
                time.time() - self.rewrite_failed_at >= RETRY_DELAY:
            self._start_rewrite()
            return
        if self.state == OFF:
            return
        if self.buf and self.flush_call is None:
            self._flush()
        elif self.settings.appendfsync == "everysec":
            self._sync()
        perc = self.settings.auto_aof_rewrite_percentage
        if self.state == ON and self.rewrite_job is None and perc and \
                self.current_size > self.settings.auto_aof_rewrite_min_size:
            base = self.base_size or 1
            growth = self.current_size * 100 // base - 100
            if growth >= perc:
                log.info("Starting automatic rewriting of AOF on {growth}% "
                         "growth", growth=growth)
                self._start_rewrite()

    # -- rewrite --------------------------------------------------------------
    def rewrite(self):
        """BGREWRITEAOF: the status reply text, or CommandError."""
        if self.rewrite_job is not None:
            raise CommandError("ERR Background append only file rewriting "
                               "already in progress")
        if self.server.in_exec:
            self.rewrite_scheduled = True
            self.rewrite_failures = 0
            self._start_cron()
            return "Background append only file rewriting scheduled"
        if not self._start_rewrite():
            raise CommandError("ERR Can't execute an AOF background "
                               "rewriting. Please check the server logs for "
                               "more information.")
        return "Background append only file rewriting started"

    @property
    def rewrite_in_progress(self) -> bool:
        return self.rewrite_job is not None

    def _start_rewrite(self) -> bool:
        """rewriteAppendOnlyFileBackground."""
        from rcluster.persistence.snapshot import BackgroundSave, snapshot_of
        try:
            os.makedirs(self.dirname, exist_ok=True)
        except OSError as err:
            log.warn("Can't open or create append-only dir {dir}: {error}",
                     dir=self.dirname, error=err.strerror)
            self.rewrite_ok = False
            return False
        self.selected_db = -1
        self._flush(force=True)
        try:
            self._open_new_incr()
        except OSError:
            self.rewrite_ok = False
            return False
        self.rewrites += 1
        tmp = "temp-rewriteaof-bg-%d.aof" % os.getpid()
        try:
            fh = open(tmp, "wb")
        except OSError as err:
            log.warn("Opening the temp file for AOF rewrite failed: {error}",
                     error=err.strerror)
            self.rewrite_ok = False
            return False
        self.rewrite_tmp, self.rewrite_fh = tmp, fh
        autosync = AutoSync(fh, self.settings.aof_rewrite_incremental_fsync,
                            self._fsync_behind)

        def write(data):
            fh.write(data)
            autosync.wrote(len(data))
        snapshot = snapshot_of(self.server, self._base_writer(), write,
                               aux=self._aux(), functions=self._functions())
        self.rewrite_job = BackgroundSave(
            snapshot, self.reactor, self._rewrite_done,
            key_delay_us=self.settings.rdb_key_save_delay)
        self.rewrite_scheduled = False
        self.rewrite_time_start = time.time()
        log.info("Background append only file rewriting started")
        self.rewrite_job.start()
        return True

    def _open_new_incr(self):
        """openNewIncrAofForAppend."""
        if self.state == OFF:
            return
        if self.state == WAIT_REWRITE:
            name = "temp-%s.incr" % self.filename
            self._open_fd(name, append=False)
        else:
            am = self.manifest.copy()
            name = am.new_incr(self.filename)
            fd = os.open(self.path(name), os.O_WRONLY | os.O_CREAT
                         | os.O_TRUNC, 0o644)
            try:
                self._persist_manifest(am)
            except OSError:
                os.close(fd)
                raise
            if self.fd != -1:
                self._fsync_and_close(self.fd)
            self.fd, self.fd_name = fd, name
            self.manifest = am
        log.info("Creating AOF incr file {name} on background rewrite",
                 name=name)
        self.selected_db = -1
        self.last_incr_size = 0
        self.fsynced_offset = 0

    def _rewrite_done(self, error):
        """The snapshot is out: fsync the temp base in a thread, then
        install it (backgroundRewriteDoneHandler).  The rewrite counts as
        in progress until then."""
        job, fh = self.rewrite_job, self.rewrite_fh
        if error is not None:
            self._rewrite_end(job, error)
            return
        try:
            fh.flush()
        except OSError as err:
            self._rewrite_end(job, err)
            return
        d = self._in_thread(_fsync_close, fh)
        d.addCallbacks(lambda _: self._rewrite_end(job, None),
                       lambda failure: self._rewrite_end(job, failure.value))

    def _rewrite_end(self, job, error):
        if job is None or self.rewrite_job is not job:
            return          # cancelled meanwhile (appendonly no, shutdown)
        fh, tmp = self.rewrite_fh, self.rewrite_tmp
        self.rewrite_job = None
        self.rewrite_fh = self.rewrite_tmp = None
        elapsed = time.time() - self.rewrite_time_start
        self.rewrite_time_start = -1
        self.rewrite_time_last = int(elapsed)
        try:
            if error is not None:
                raise error
            log.info("Background AOF rewrite terminated with success")
            self._install_base(tmp)
        except Exception as err:        # noqa: BLE001 - reported
            try:
                fh.close()
            except Exception:           # noqa: BLE001
                pass
            _unlink(tmp)
            self.rewrite_ok = False
            self.rewrite_failures += 1
            self.rewrite_failed_at = time.time()
            log.warn("Background AOF rewrite terminated with error: {error}",
                     error=str(err))
            # CONFIG SET appendonly yes still waits for its base: retried
            # by the cron (writes meanwhile go to the next rewrite's base).
            self.rewrite_scheduled = self.state == WAIT_REWRITE
            ok = False
        else:
            self.rewrite_ok = True
            self.rewrite_failures = 0
            log.info("Background AOF rewrite finished successfully")
            ok = True
        for callback in list(self.on_rewrite_done):
            callback(ok)

    def _fsync_behind(self, fd: int):
        """An incremental fsync of the rewrite's file, in a thread: the
        reactor goes on writing (at most one in flight; one asked for
        meanwhile is skipped, the next 4 MB asks again)."""
        if self.autosync_busy:
            return
        self.autosync_busy = True

        def done(result):
            self.autosync_busy = False
            if isinstance(result, Failure):
                result.trap(OSError)        # the file went (cancelled)
        self._in_thread(os.fsync, fd).addBoth(done)

    def _in_thread(self, fn, *args):
        """A Deferred of fn(*args) run in the reactor's thread pool (inline
        on a reactor without threads: tests)."""
        from twisted.internet import defer, threads
        if getattr(self.reactor, "callInThread", None) is None:
            return defer.maybeDeferred(fn, *args)
        return threads.deferToThreadPool(self.reactor,
                                         self.reactor.getThreadPool(),
                                         fn, *args)

    def _install_base(self, tmp):
        am = self.manifest.copy()
        base = am.new_base(self.filename, self.settings.aof_use_rdb_preamble)
        os.rename(tmp, self.path(base))
        log.info("Successfully renamed the temporary AOF base file {tmp} into "
                 "{base}", tmp=tmp, base=base)
        incr_renamed = None
        if self.state == WAIT_REWRITE:
            temp_incr = "temp-%s.incr" % self.filename
            incr = am.new_incr(self.filename)
            try:
                os.rename(self.path(temp_incr), self.path(incr))
            except OSError:
                _unlink(self.path(base))
                raise
            incr_renamed = incr
            self.fd_name = incr
            log.info("Successfully renamed the temporary AOF incr file "
                     "{tmp} into {incr}", tmp=temp_incr, incr=incr)
        am.mark_rewritten_incrs(keep_last=self.fd != -1)
        try:
            self._persist_manifest(am)
        except OSError:
            _unlink(self.path(base))
            if incr_renamed:
                _unlink(self.path(incr_renamed))
            raise
        self.manifest = am
        if self.state != OFF:
            self.current_size = self._size(base) + self.last_incr_size
            self.base_size = self.current_size
        self._delete_history()
        if self.state == WAIT_REWRITE:
            self.state = ON

    def _delete_history(self):
        am = self.manifest
        if self.settings.aof_disable_auto_gc or not am.history:
            return
        for info in am.history:
            log.info("Removing the history file {name} in the background",
                     name=info.name)
            self._background(_unlink, self.path(info.name), fsync=False)
        am.history = []
        self._persist_manifest(am)

    def _cancel_rewrite(self):
        job = self.rewrite_job
        if job is None:
            return
        self.rewrite_job = None
        job.cancel()
        if self.rewrite_fh is not None:
            self.rewrite_fh.close()
        if self.rewrite_tmp:
            _unlink(self.rewrite_tmp)
        self.rewrite_fh = self.rewrite_tmp = None
        self.rewrite_time_start = -1

    def _base_writer(self):
        settings = self.settings
        if settings.aof_use_rdb_preamble:
            from rcluster.persistence.rdb import RdbWriter
            return RdbWriter(settings)
        stamp = int(time.time()) if settings.aof_timestamp_enabled else None
        return CommandWriter(stamp)

    def _aux(self):
        """RDB aux fields of a base (rdbSaveInfoAuxFields, aof-base 1)."""
        from rcluster.persistence.service import rdb_aux
        aux = [(name, value) for name, value in
               rdb_aux(self.server, self.reactor.seconds())
               if name != b"aof-base"]
        return aux + [(b"aof-base", b"1")]

    def _functions(self):
        """Function library codes to save (FUNCTION LOAD order)."""
        from rcluster.persistence.service import function_codes
        return function_codes(self.server)

    def _write_base_now(self, path):
        """rewriteAppendOnlyFile in the foreground (start-up, or an empty
        AOF): the current dataset into ``path``, atomically."""
        from rcluster.persistence.snapshot import snapshot_of
        tmp = "temp-rewriteaof-%d.aof" % os.getpid()
        with open(tmp, "wb") as fh:
            snapshot_of(self.server, self._base_writer(), fh.write,
                        aux=self._aux(), functions=self._functions()).run()
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, path)

    def _persist_manifest(self, am: Manifest):
        """writeAofManifestFile: temp file, fsync, rename, fsync the dir."""
        tmp = self.path("temp-" + self.manifest_name)
        final = self.path(self.manifest_name)
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
        try:
            data = am.format()
            view = memoryview(data)
            written = 0
            while written < len(data):
                written += os.write(fd, view[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
        dfd = os.open(self.dirname, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    # -- CONFIG SET appendonly ------------------------------------------------
    def _config_changed(self, name, value):
        if name != "appendonly":
            return
        if value and self.state == OFF:
            self.enable()
        elif not value and self.state != OFF:
            self.stop_appending()

    def enable(self):
        """startAppendOnly: write into a temp incr file while a rewrite
        makes the base; the AOF is ON when the rewrite ends."""
        from rcluster.config import ConfigError
        self._install_sink()
        try:
            self.manifest = self.read_manifest()
        except AofLoadError as err:
            log.warn("{err}", err=str(err))
            raise ConfigError("Failed to enable AOF: %s" % err) from None
        self.state = WAIT_REWRITE
        if self.server.in_exec:
            # Ops of the transaction so far reach the sinks after it: the
            # base must be taken after them (Redis schedules it too).
            log.warn("AOF was enabled during a transaction. An AOF "
                     "background was scheduled to start when possible.")
            self._cancel_rewrite()
            self.rewrite_scheduled = True
            self._start_cron()
            self.last_fsync = int(self.reactor.seconds())
            return
        if self.rewrite_job is not None:
            log.warn("AOF was enabled but there is already an AOF rewriting "
                     "in background. Stopping background AOF and starting a "
                     "rewrite now.")
            self._cancel_rewrite()
        if not self._start_rewrite():
            self.state = OFF
            self._remove_sink()
            log.warn("Redis needs to enable the AOF but can't trigger a "
                     "background AOF rewrite operation. Check the above logs "
                     "for more info about the error.")
            raise ConfigError("Failed to enable AOF")
        self._start_cron()
        self.last_fsync = int(self.reactor.seconds())

    def stop_appending(self):
        """stopAppendOnly (CONFIG SET appendonly no)."""
        self.stop()

    # -- DEBUG LOADAOF --------------------------------------------------------
    def debug_loadaof(self):
        """DEBUG LOADAOF: flush the AOF, empty the keyspace, load it."""
        if self.state == ON:
            self._flush(force=True)
            if self.fd != -1:
                os.fsync(self.fd)
        self.server.flush_all_dbs()
        result = self.load()
        log.info("Append Only File loaded by DEBUG LOADAOF")
        return result

    # -- INFO -----------------------------------------------------------------
    def info_fields(self) -> list:
        """INFO persistence's aof_* fields in Redis 7.0's order (with the
        module_fork_* pair Redis prints between them), then, with
        appendonly yes, the size fields."""
        now = time.time()
        fields = [
            ("aof_enabled", int(self.state != OFF)),
            ("aof_rewrite_in_progress", int(self.rewrite_job is not None)),
            ("aof_rewrite_scheduled", int(self.rewrite_scheduled)),
            ("aof_last_rewrite_time_sec", self.rewrite_time_last),
            ("aof_current_rewrite_time_sec",
             int(now - self.rewrite_time_start)
             if self.rewrite_job is not None else -1),
            ("aof_last_bgrewrite_status", "ok" if self.rewrite_ok else "err"),
            ("aof_rewrites", self.rewrites),
            ("aof_rewrites_consecutive_failures", self.rewrite_failures),
            ("aof_last_write_status", "ok" if self.last_write_ok else "err"),
            ("aof_last_cow_size", 0),
            ("module_fork_in_progress", 0),
            ("module_fork_last_cow_size", 0),
        ]
        if self.settings.appendonly:
            fields += [
                ("aof_current_size", self.current_size),
                ("aof_base_size", self.base_size),
                ("aof_pending_rewrite", int(self.rewrite_scheduled)),
                ("aof_buffer_length", self.buf_len),
                ("aof_pending_bio_fsync", self.fsync_in_progress),
                ("aof_delayed_fsync", self.delayed_fsync),
            ]
        return fields


def _fsync_close(fh):
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass
