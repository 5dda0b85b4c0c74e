"""The persistence service: loading at start-up, SAVE/BGSAVE, save points,
saving at shutdown, and the state INFO persistence reports.

- Start-up: with ``appendonly yes`` and an AOF module present, the AOF is
  loaded (it takes precedence, as in Redis); otherwise ``dir/dbfilename``
  if it exists.  Loading is sliced across reactor turns
  (``loading-process-events-interval-bytes`` read per turn,
  ``key-load-delay`` spread as waits between turns, never as sleeps);
  meanwhile commands not flagged ``loading`` get ``-LOADING``.  A bad
  file stops the node with a message naming the file and the problem; it
  is never replaced by an empty dataset.
- SAVE writes synchronously; BGSAVE runs a point-in-time ``Snapshot``
  (snapshot.py) in slices.  Both write ``temp-<pid>.rdb`` (BGSAVE:
  ``temp-bg-<pid>.rdb``), fsync it (BGSAVE: in a thread) and rename it
  over ``dbfilename``.
- ``save <seconds> <changes>`` points are checked by a cron (``hz``), a
  failed background save is retried after 5 seconds, and with
  ``stop-writes-on-bgsave-error`` writes get ``-MISCONF`` until a save
  succeeds.
- SHUTDOWN [SAVE|NOSAVE] and SIGTERM save when save points are set (or
  SAVE is given), as Redis's prepareForShutdown.
"""
from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections import deque
from time import perf_counter

from twisted.application import service
from twisted.internet import defer

from rcluster.eviction import set_access
from rcluster.logs import logger
from rcluster.persistence.autosync import AutoSync
from rcluster.persistence.snapshot import (BackgroundSave, Snapshot,
                                           snapshot_of)
from rcluster.resp.codec import Error
from rcluster.timers import periodic

REDIS_VERSION = "7.0.15"
MISCONF = Error(
    "MISCONF Redis is configured to save RDB snapshots, but it's currently "
    "unable to persist to disk. Commands that may modify the data set are "
    "disabled, because this instance is configured to report errors during "
    "writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). "
    "Please check the Redis logs for details about the RDB error.")
BGSAVE_RETRY_DELAY = 5          # seconds (Redis's CONFIG_BGSAVE_RETRY_DELAY)
_FLUSH_AT = 1 << 20             # write buffered output in 1 MiB pieces
_BACKLOG = 16 << 20             # a background save waits above this queue
_LOAD_PIECE = 64 << 10          # bytes decoded at a time while loading


class LoadError(Exception):
    """The RDB file can't be loaded; the text names the file and why."""


class SaveError(Exception):
    """A foreground save failed (logged already)."""


def persistence(server):
    """The server's PersistenceService, or None (unit tests, plugins)."""
    return server.extensions.get("persistence")


def _rdb():
    # Imported late: the codec module is another layer's, and a node
    # without persistence doesn't need it.
    from rcluster.persistence import rdb
    return rdb


def save_points(text: str) -> list:
    numbers = [int(n) for n in text.split()]
    return list(zip(numbers[0::2], numbers[1::2]))


def rdb_aux(server, now: float) -> list:
    """The AUX fields Redis 7.0 writes at the start of an RDB."""
    from rcluster.commands.introspection import resident_memory
    return [(b"redis-ver", REDIS_VERSION.encode()),
            (b"redis-bits", b"64"),
            (b"ctime", b"%d" % int(now)),
            (b"used-mem", b"%d" % resident_memory()),
            (b"aof-base", b"0")]


def function_codes(server) -> list:
    """Library sources to save (FUNCTION LOAD order), if any: the
    scripting layer's ``server.scripts.function_codes()``."""
    return list(server.scripts.function_codes())


class _FileOut:
    """Buffered writes of a snapshot to an open file."""

    def __init__(self, fh, incremental_fsync: bool = False):
        self.fh = fh
        self.buffer = []
        self.size = 0
        self.autosync = AutoSync(fh, incremental_fsync)

    def __call__(self, data: bytes):
        self.buffer.append(data)
        self.size += len(data)
        if self.size >= _FLUSH_AT:
            self.flush()

    def flush(self):
        if self.buffer:
            self.fh.write(b"".join(self.buffer))
            self.autosync.wrote(self.size)
            self.buffer = []
            self.size = 0


class _ThreadedOut:
    """A background save's output, written and fsynced by a thread of its
    own: a write() that blocks on a busy disk (dirty-page throttling) or
    the final fsync never stall the reactor (a forked Redis child has the
    same property).  Pieces of about 1 MiB are queued; ``backlog`` (bytes
    queued) lets the save slow down rather than queue without bound."""

    def __init__(self, fh, reactor, incremental_fsync: bool = False):
        self.fh = fh
        self.reactor = reactor
        self.autosync = AutoSync(fh, incremental_fsync)     # in the thread
        self.buffer = []
        self.size = 0
        self.queue = deque()
        self.queued = 0
        self.cond = threading.Condition()
        self.closing = False
        self.dropped = False
        self.error = None
        self.finished = None            # a Deferred, once close() is called
        self.thread = threading.Thread(target=self._run, name="rdb-writer",
                                       daemon=True)
        self.thread.start()

    def __call__(self, data: bytes):
        if self.error is not None:
            raise self.error
        self.buffer.append(data)
        self.size += len(data)
        if self.size >= _FLUSH_AT:
            self._hand_off()

    def _hand_off(self):
        if self.buffer:
            chunk = b"".join(self.buffer)
            self.buffer = []
            self.size = 0
            with self.cond:
                self.queue.append(chunk)
                self.queued += len(chunk)
                self.cond.notify()

    def backlog(self) -> int:
        return self.queued

    def close(self):
        """Write what is left, fsync, close: a Deferred (errback with the
        write error, if any)."""
        self.finished = defer.Deferred()
        self._hand_off()
        with self.cond:
            self.closing = True
            self.cond.notify()
        return self.finished

    def abort(self):
        """Stop writing (the file is closed by the thread, not synced)."""
        with self.cond:
            self.dropped = self.closing = True
            self.queue.clear()
            self.cond.notify()

    def _run(self):
        cond = self.cond
        while True:
            with cond:
                while not self.queue and not self.closing:
                    cond.wait()
                if not self.queue:
                    break
                chunk = self.queue.popleft()
            try:
                if self.error is None and not self.dropped:
                    self.fh.write(chunk)
                    self.autosync.wrote(len(chunk))
            except OSError as err:
                self.error = err
            with cond:
                self.queued -= len(chunk)
        try:
            if self.error is None and not self.dropped:
                self.fh.flush()
                os.fsync(self.fh.fileno())
        except OSError as err:
            self.error = err
        finally:
            try:
                self.fh.close()
            except OSError as err:
                self.error = self.error or err
        if self.finished is not None and not self.dropped:
            self.reactor.callFromThread(self._report)

    def _report(self):
        if self.error is not None:
            self.finished.errback(self.error)
        else:
            self.finished.callback(None)


def _fsync_dir(path: str):
    fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RdbLoad:
    """Applies an RDB byte stream to a keyspace, one chunk at a time
    (sans-IO: the caller reads the file and schedules the turns).

    ``merge``: a key already present is replaced (DEBUG RELOAD MERGE);
    otherwise a duplicate key is an error, as in Redis.  ``master``: keys
    already expired are dropped and counted (a replica keeps them)."""

    def __init__(self, server, path: str, merge=False, master=True,
                 log=None):
        self.server = server
        self.keyspace = server.keyspace
        self.path = path
        self.merge = merge
        self.master = master
        self.log = log or logger()
        # The settings give loaded values their encodings (zset listpack
        # thresholds...).
        self.reader = _rdb().RdbReader(server.settings)
        self.pending = []
        self.loaded = 0
        self.expired = 0
        self.version = None
        self.functions = []

    def feed(self, data: bytes):
        try:
            self.pending.extend(self.reader.feed(data))
        except _rdb().RdbError as err:
            raise self.error(err) from None

    def finish(self):
        try:
            self.reader.finish()
        except _rdb().RdbError as err:
            raise self.error(err) from None
        self.apply()

    def error(self, err) -> LoadError:
        return LoadError("Bad RDB file '%s': %s" % (
            os.path.abspath(self.path), err))

    def apply(self, max_keys=None) -> int:
        """Apply pending records (at most max_keys entries); returns the
        number of entries applied."""
        done = 0
        pending = self.pending
        index = 0
        ks = self.keyspace
        now = ks.now
        while index < len(pending):
            record = pending[index]
            index += 1
            kind = record.__class__.__name__
            if kind == "Entry":
                done += 1
                self._entry(ks, record, now)
                if max_keys is not None and done >= max_keys:
                    break
            elif kind == "Aux":
                self._aux(record.name, record.value)
            elif kind == "SelectDb":
                dbs = self.server.dbs
                count = len(dbs)
                if not 0 <= record.db < count:
                    raise LoadError(
                        "Bad RDB file '%s': it holds keys of database %d, "
                        "and this node has %d database%s (databases / "
                        "cluster-databases)"
                        % (os.path.abspath(self.path), record.db, count,
                           "s" if count > 1 else ""))
                ks = self.keyspace = dbs[record.db]
                ks.tick(now)
            elif kind == "Function":
                self.functions.append(record.code)
        del pending[:index]
        return done

    def _entry(self, ks, record, now):
        key, when = record.key, record.expire_ms
        if when is not None and self.master and when < now:
            self.expired += 1
            return
        if not self.merge and ks.lookup(key) is not None:
            raise LoadError("Bad RDB file '%s': duplicated key '%s'" % (
                os.path.abspath(self.path),
                key.decode("utf-8", "backslashreplace")))
        ks.set(key, record.value)
        if when is not None:
            ks.set_expire(key, when)
        if record.idle is not None or record.freq is not None:
            # RDB_OPCODE_IDLE / FREQ (objectSetLRUOrLFU): whichever the
            # policy in force uses.
            set_access(ks, key, record.idle, record.freq)
        self.loaded += 1

    def _aux(self, name: bytes, value):
        text = value.decode("utf-8", "replace") \
            if isinstance(value, bytes) else str(value)
        if name == b"redis-ver":
            self.version = text
            self.log.info("Loading RDB produced by version {v}", v=text)
        elif name == b"ctime":
            try:
                age = int(time.time()) - int(text)
            except ValueError:
                return
            self.log.info("RDB age {age} seconds", age=max(age, 0))
        elif name == b"used-mem":
            try:
                self.log.info("RDB memory usage when created {mb:.2f} Mb",
                              mb=int(text) / 1024 / 1024)
            except ValueError:
                pass


class PersistenceService(service.Service):
    """Owns the RDB (and drives the AOF when there is one) for a node."""

    name = "persistence"

    def __init__(self, server, settings, reactor):
        self.server = server
        self.settings = settings
        self.reactor = reactor
        self.log = logger()
        server.extensions["persistence"] = self
        self.aof = self._make_aof()
        self.bgsave = None              # the running BackgroundSave
        self.bgsave_file = None
        self.bgsave_target = None
        self.bgsave_started = None
        self.bgsave_dirty = 0
        self.bgsave_scheduled = False
        self.lastbgsave_ok = True
        self.lastbgsave_try = 0.0
        self.last_bgsave_time = -1
        self.rdb_saves = 0
        self.loading = None             # the running RdbLoad
        self.loading_info = {}
        self.load_keys = (0, 0)         # (loaded, expired) of the last load
        self.loaded = False             # start-up load done (or nothing)
        self.fatal = False
        self.shutdown_saved = False
        self.cron = None
        self.load_done = defer.Deferred()
        settings.listeners.append(self._config_changed)

    def _make_aof(self):
        from rcluster.persistence.aof import Aof
        return Aof(self.server, self.settings, self.reactor)

    # -- start and stop -----------------------------------------------------
    def startService(self):
        super().startService()
        # Aligned with the node's other crons: one wake-up (timers.py).
        self.cron = periodic(self.tick, self.reactor)
        self.cron.start(1.0 / max(1, min(self.settings.hz, 500)), now=False)
        if self.settings.appendonly or os.path.exists(self.settings.dbfilename):
            # Clients connecting before the first slice already get
            # -LOADING (the listeners are up before the reactor runs).
            self._set_loading(True)
        self.reactor.callLater(0, self._load_at_startup)

    def stopService(self):
        super().stopService()
        if self.cron is not None and self.cron.running:
            self.cron.stop()
        if self.fatal or not self.loaded:
            # Never write over a file that failed to load (or wasn't
            # loaded yet) with a partial dataset.
            self._kill_bgsave()
            return None
        if not self.shutdown_saved:
            mode = self.settings.shutdown_on_sigterm
            save = True if mode == "save" else \
                False if mode == "nosave" else None
            failure = self.prepare_shutdown(save, force=True)
            if failure:
                self.log.warn("{failure}", failure=failure)
        return None

    def prepare_shutdown(self, save=None, force=False):
        """Redis's prepareForShutdown: stop a background save, and save
        when asked to or when save points are set (unless NOSAVE).
        Returns an error text when the save failed (and not force)."""
        if self.fatal or not self.loaded or self.loading is not None:
            # Never write a half-loaded dataset over the file (Redis turns
            # SHUTDOWN into SHUTDOWN NOSAVE while loading).
            save = False
        self._kill_bgsave()
        if save or (save is None and self.settings.save):
            self.log.info("Saving the final RDB snapshot before exiting.")
            try:
                self.save_now()
            except SaveError:
                self.log.warn("Error trying to save the DB, can't exit.")
                if not force:
                    return "ERR Errors trying to SHUTDOWN. Check logs."
        self.aof.shutdown()
        self.shutdown_saved = True
        return None

    def _kill_bgsave(self):
        if self.bgsave is not None:
            self.log.warn("There is a child saving an .rdb. Killing it!")
            self.bgsave.cancel()
            self._drop_bgsave_file()
            self.bgsave = None

    def _fail_startup(self, message: str):
        self.fatal = True
        self.log.critical("{message}", message=message)
        self.log.critical("Terminating server after rdb file reading "
                          "failure.")
        self.reactor.addSystemEventTrigger("after", "shutdown",
                                           self._exit_failure)
        self.reactor.stop()

    @staticmethod
    def _exit_failure():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(1)

    # -- loading --------------------------------------------------------------
    def _load_at_startup(self):
        started = time.monotonic()
        if self.settings.appendonly:
            self._set_loading(True)
            d = self.aof.load_sliced()

            def loaded(_):
                self._set_loading(False)
                self.log.info("DB loaded from append only file: {s:.3f} "
                              "seconds", s=time.monotonic() - started)
                self._loaded()

            def failed(failure):
                self._fail_startup("Fatal error loading the append only "
                                   "file: %s" % failure.getErrorMessage())
            d.addCallbacks(loaded, failed)
            return
        path = self.settings.dbfilename
        if not os.path.exists(path):
            self._loaded()
            return
        d = self.load_rdb(path)

        def done(_):
            self.log.info("DB loaded from disk: {s:.3f} seconds",
                          s=time.monotonic() - started)
            self._loaded()

        d.addCallbacks(done, lambda f: self._fail_startup(
            f.getErrorMessage()))

    def _loaded(self):
        """Start-up loading is over (or there was nothing to load): the
        AOF starts appending, save points and BGSAVE may run."""
        self.loaded = True
        self.aof.start()
        self.server.lastsave = int(self.reactor.seconds())
        self.server.dirty_at_save = self.server.keyspace.dirty
        if not self.load_done.called:
            self.load_done.callback(None)

    def _set_loading(self, on: bool):
        self.server.loading = on
        self.server.refresh_gates()

    def load_rdb(self, path: str, merge=False):
        """Load path into the keyspace in slices; a Deferred fires when
        done (errback with LoadError)."""
        try:
            fh = open(path, "rb")
        except OSError as err:
            return defer.fail(LoadError("Can't open the RDB file '%s': %s"
                                        % (os.path.abspath(path),
                                           err.strerror)))
        ks = self.server.keyspace
        ks.tick(self.server.now_ms())
        load = RdbLoad(self.server, path, merge=merge,
                       master=self.server.role == "master", log=self.log)
        self.loading = load
        total = os.fstat(fh.fileno()).st_size
        self.loading_info = {"start": int(self.reactor.seconds()),
                             "total": total, "read": 0}
        self._set_loading(True)
        result = defer.Deferred()
        delay = self.settings.key_load_delay
        key_delay = delay / 1e6 if delay >= 0 else -delay / 1e9
        budget = 0.02

        def turn():
            # One reactor turn: apply what is pending (key-load-delay: a
            # bounded number of keys, then wait their delay), else read and
            # apply pieces until the turn used its time or read
            # loading-process-events-interval-bytes, whichever is first.
            limit = max(1, int(budget / key_delay)) if key_delay else None
            try:
                if load.pending:
                    applied = load.apply(limit)
                else:
                    applied = 0
                    interval = \
                        self.settings.loading_process_events_interval_bytes
                    deadline = perf_counter() + budget
                    turn_bytes = 0
                    while turn_bytes < interval and perf_counter() < deadline:
                        chunk = fh.read(min(_LOAD_PIECE,
                                            interval - turn_bytes))
                        if not chunk:
                            load.finish()
                            end(None)
                            return
                        turn_bytes += len(chunk)
                        self.loading_info["read"] += len(chunk)
                        load.feed(chunk)
                        applied += load.apply(limit)
                        if load.pending:
                            break       # key-load-delay: wait first
            except LoadError as err:
                end(err)
                return
            except Exception as err:        # noqa: BLE001 - never a reset
                end(load.error("%s: %s" % (type(err).__name__, err)))
                return
            self.reactor.callLater(applied * key_delay, turn)

        def end(error):
            fh.close()
            self.loading = None
            if error is None:
                try:
                    self._install_functions(load.functions)
                except LoadError as err:
                    error = load.error(err)
            if error is not None:
                # Still "loading" until the node exits: nothing may be
                # served from a half-loaded dataset.
                result.errback(error)
                return
            self._set_loading(False)
            self.load_keys = (load.loaded, load.expired)
            self.log.info("Done loading RDB, keys loaded: {n}, keys "
                          "expired: {m}.", n=load.loaded, m=load.expired)
            # The loaded values are long-lived: out of the cyclic GC's
            # generations, so a full collection never walks the whole
            # dataset in one reactor turn (reference counts still free
            # them), as the replication layer does after a full sync.
            gc.freeze()
            result.callback(load)

        self.reactor.callLater(0, turn)
        return result

    def load_rdb_now(self, path: str, merge=False):
        """Load synchronously (DEBUG RELOAD); raises LoadError."""
        self.server.keyspace.tick(self.server.now_ms())
        load = RdbLoad(self.server, path, merge=merge,
                       master=self.server.role == "master", log=self.log)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as err:
            raise LoadError("Can't open the RDB file '%s': %s"
                            % (os.path.abspath(path), err.strerror))
        load.feed(data)
        load.finish()
        try:
            self._install_functions(load.functions)
        except LoadError as err:
            raise load.error(err) from None
        self.load_keys = (load.loaded, load.expired)
        self.log.info("Done loading RDB, keys loaded: {n}, keys expired: "
                      "{m}.", n=load.loaded, m=load.expired)
        return load

    def _install_functions(self, codes):
        if not codes:
            return
        from rcluster.commands.table import CommandError
        for code in codes:
            try:
                self.server.scripts.load_function_code(code, replace=True)
            except CommandError as err:
                raise LoadError("Failed loading library, %s" % err) from None

    # -- saving ---------------------------------------------------------------
    def _snapshot(self, out) -> Snapshot:
        rdb = _rdb()
        now = self.reactor.seconds()
        writer = rdb.RdbWriter(self.settings)
        return snapshot_of(self.server, writer, out,
                           rdb_aux(self.server, now),
                           function_codes(self.server))

    def save_now(self):
        """SAVE: write the dataset synchronously (raises SaveError)."""
        path = self.settings.dbfilename
        tmp = "temp-%d.rdb" % os.getpid()
        try:
            with open(tmp, "wb") as fh:
                out = _FileOut(fh, self.settings.rdb_save_incremental_fsync)
                self._run_blocking(self._snapshot(out))
                out.flush()
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_dir(path)
        except Exception as err:    # noqa: BLE001 - disk or encoding error
            self.log.warn("Write error saving DB on disk: {err}",
                          err=getattr(err, "strerror", None) or err)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            self.lastbgsave_ok = False
            self._update_gate()
            raise SaveError(str(err)) from None
        self.log.info("DB saved on disk")
        self.server.lastsave = int(self.reactor.seconds())
        self.server.dirty_at_save = self.server.keyspace.dirty
        self.lastbgsave_ok = True
        self._update_gate()

    def _run_blocking(self, snapshot):
        """A whole snapshot now (SAVE blocks, as in Redis); with
        rdb-key-save-delay, sleeping that long after each key as Redis's
        rdbSaveRio does (a test knob: it stalls the node)."""
        delay = self.settings.rdb_key_save_delay
        if not delay:
            snapshot.run()
            return
        per_key = delay / 1e6 if delay > 0 else -delay / 1e9
        snapshot.start()
        while not snapshot.done:
            time.sleep(snapshot.step(budget=3600.0, max_keys=1) * per_key)

    def start_bgsave(self) -> bool:
        """Start a background save; False (logged) if it can't start."""
        if self.bgsave is not None:
            return False
        self.lastbgsave_try = self.reactor.seconds()
        # Absolute paths, fixed now: a CONFIG SET dir or dbfilename while
        # the save runs applies to the next save (as Redis's child keeps
        # the directory it was forked in).
        tmp = os.path.abspath("temp-bg-%d.rdb" % os.getpid())
        self.bgsave_target = os.path.abspath(self.settings.dbfilename)
        try:
            fh = open(tmp, "wb")
        except OSError as err:
            self.log.warn("Failed opening the temp RDB file {tmp} (in "
                          "server root dir {dir}) for saving: {err}",
                          tmp=tmp, dir=os.getcwd(), err=err.strerror)
            self.lastbgsave_ok = False
            self._update_gate()
            return False
        out = _ThreadedOut(fh, self.reactor,
                           self.settings.rdb_save_incremental_fsync)
        self.bgsave_file = (tmp, fh, out)
        self.bgsave_started = self.reactor.seconds()
        self.bgsave_dirty = self.server.keyspace.dirty
        self.rdb_saves += 1
        self.bgsave = BackgroundSave(
            self._snapshot(out), self.reactor, self._bgsave_done,
            key_delay_us=self.settings.rdb_key_save_delay,
            ready=lambda: out.backlog() < _BACKLOG)
        self.log.info("Background saving started")
        self.bgsave.start()
        return True

    def _bgsave_done(self, error):
        if self.bgsave is None or self.bgsave_file is None:
            return
        tmp, fh, out = self.bgsave_file
        if error is not None:
            self._bgsave_failed(error)
            return
        d = out.close()
        job = self.bgsave

        def synced(_):
            if self.bgsave is not job:
                return      # cancelled meanwhile (shutdown)
            os.replace(tmp, self.bgsave_target)
            _fsync_dir(self.bgsave_target)
            self.log.info("DB saved on disk")
            self.log.info("Background saving terminated with success")
            self.server.dirty_at_save = self.bgsave_dirty
            self.server.lastsave = int(self.reactor.seconds())
            self.last_bgsave_time = int(self.reactor.seconds()
                                        - self.bgsave_started)
            self.lastbgsave_ok = True
            self.bgsave = None
            self.bgsave_file = None
            self._update_gate()

        def failed(failure):
            if self.bgsave is job:      # not cancelled meanwhile
                self._bgsave_failed(failure.value)

        d.addCallback(synced)
        d.addErrback(failed)

    def _bgsave_failed(self, error):
        self.log.warn("Write error saving DB on disk: {err}", err=error)
        self.log.warn("Background saving error")
        self._drop_bgsave_file()
        self.last_bgsave_time = int(self.reactor.seconds()
                                    - (self.bgsave_started or 0))
        self.bgsave = None
        self.lastbgsave_ok = False
        self._update_gate()

    def _drop_bgsave_file(self):
        if self.bgsave_file is None:
            return
        tmp, fh, out = self.bgsave_file
        self.bgsave_file = None
        out.abort()         # its thread closes the file
        try:
            os.unlink(tmp)
        except OSError:
            pass

    @property
    def bgsave_in_progress(self) -> bool:
        return self.bgsave is not None

    # -- the cron -------------------------------------------------------------
    def tick(self):
        if not self.loaded or self.fatal:
            return
        now = self.reactor.seconds()
        if self.bgsave is not None:
            return
        changes = self.server.keyspace.dirty - self.server.dirty_at_save
        may_retry = self.lastbgsave_ok or \
            now - self.lastbgsave_try > BGSAVE_RETRY_DELAY
        if self.bgsave_scheduled and may_retry:
            self.bgsave_scheduled = False
            self.start_bgsave()
            return
        for seconds, wanted in save_points(self.settings.save):
            if changes >= wanted and now - self.server.lastsave > seconds \
                    and may_retry:
                self.log.info("{n} changes in {s} seconds. Saving...",
                              n=wanted, s=seconds)
                self.start_bgsave()
                return

    # -- state ----------------------------------------------------------------
    def _update_gate(self):
        refuse = (self.settings.stop_writes_on_bgsave_error
                  and bool(self.settings.save) and not self.lastbgsave_ok)
        wanted = MISCONF if refuse else None
        if self.server.write_refusal is not wanted:
            self.server.write_refusal = wanted
            self.server.refresh_gates()

    def _config_changed(self, name, value):
        if name in ("save", "stop-writes-on-bgsave-error"):
            self._update_gate()
        if name == "hz" and self.cron is not None and self.cron.running:
            self.cron.stop()
            self.cron.start(1.0 / max(1, min(value, 500)), now=False)

    def info_fields(self) -> list:
        now = self.reactor.seconds()
        server = self.server
        loading = self.loading is not None or (
            server.loading and not self.loaded)
        fields = [("loading", int(bool(loading))), ("async_loading", 0)]
        progress = []       # last, as Redis prints them
        if self.loading is not None:
            info = self.loading_info
            total, read = info["total"], info["read"]
            elapsed = max(now - info["start"], 0)
            perc = read * 100.0 / total if total else 0.0
            eta = int((total - read) / (read / elapsed)) \
                if read and elapsed else 1
            progress += [("loading_start_time", info["start"]),
                       ("loading_total_bytes", total),
                       ("loading_rdb_used_mem", 0),
                       ("loading_loaded_bytes", read),
                       ("loading_loaded_perc", "%.2f" % perc),
                       ("loading_eta_seconds", eta)]
        snapshot = self.bgsave.snapshot if self.bgsave is not None else None
        fields += [
            ("current_cow_peak", 0),
            ("current_cow_size", 0),
            ("current_cow_size_age", 0),
            ("current_fork_perc", "%.2f" % (
                snapshot.keys_saved * 100.0 / snapshot.keys_total
                if snapshot is not None and snapshot.keys_total else 0.0)),
            ("current_save_keys_processed",
             snapshot.keys_saved if snapshot is not None else 0),
            ("current_save_keys_total",
             snapshot.keys_total if snapshot is not None else 0),
            ("rdb_changes_since_last_save",
             server.keyspace.dirty - server.dirty_at_save),
            ("rdb_bgsave_in_progress", int(self.bgsave is not None)),
            ("rdb_last_save_time", server.lastsave),
            ("rdb_last_bgsave_status", "ok" if self.lastbgsave_ok else "err"),
            ("rdb_last_bgsave_time_sec", self.last_bgsave_time),
            ("rdb_current_bgsave_time_sec",
             int(now - self.bgsave_started) if self.bgsave is not None
             else -1),
            ("rdb_saves", self.rdb_saves),
            ("rdb_last_cow_size", 0),
            ("rdb_last_load_keys_expired", self.load_keys[1]),
            ("rdb_last_load_keys_loaded", self.load_keys[0]),
        ]
        return fields + list(self.aof.info_fields()) + progress
