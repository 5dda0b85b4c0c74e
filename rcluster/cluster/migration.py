"""MIGRATE without blocking the reactor (Redis 7.0's migrateCommand).

Redis runs MIGRATE synchronously: the whole server waits while a big key
is serialized, written and acknowledged.  Here a MIGRATE is a job:

- the client that sent it is parked (``client.blocked``) until the job
  answers; every other client keeps being served;
- the RESTORE commands are written a slice at a time, one slice per
  reactor turn.  A collection bigger than ``CHUNK_ELEMENTS`` elements is
  sent as a RESTORE of its first slice (whose reply is awaited, so a
  BUSYKEY stops the job before anything else touches the target key)
  followed by RPUSH/SADD/HSET/ZADD commands of the next slices, so neither
  end ever serializes or decodes the whole value in one go;
- replies are parsed with the codec's hiredis reader (``new_reader``);
- connections to each target are cached (``LinkCache``): reused, closed
  after 10 s idle, at most 64 (a random one goes when full), and a broken
  cached link is retried once on a fresh connection, as Redis does;
- a key is deleted locally (and DEL propagated) only once the target
  acknowledged it.  While a key is in flight, writes to it wait
  (``Migrations.park``, called by the cluster router) and run once the
  job ends; a key a write changed anyway (non-cluster mode has no router)
  is sent again with REPLACE before it is deleted.

Errors use Redis's texts: ``+NOKEY``, ``-IOERR error or timeout
connecting to the client``, ``-IOERR error or timeout (reading|writing)
to target instance``, ``Target instance replied with error: ...``.
"""
from __future__ import annotations

import random
import struct
from collections import deque
from itertools import islice

import hiredis
from twisted.internet import protocol

from rcluster.blocking import BLOCKED
from rcluster.cluster.keyslot import SLOTS, keyslot
from rcluster.cluster.messages import NODE_FAIL
from rcluster.logs import logger
from rcluster.persistence.rdb import RdbError, dump_payload
from rcluster.persistence.snapshot import Snapshot
from rcluster.replication.backlog import encode_command
from rcluster.resp.codec import OK, Error, Status, new_reader
from rcluster.resp.protocol import write_through
from rcluster.timers import periodic
from rcluster.zset import ZSet

log = logger("rcluster.migration")

CACHE_ITEMS = 64          # MIGRATE_SOCKET_CACHE_ITEMS
CACHE_TTL = 10            # MIGRATE_SOCKET_CACHE_TTL, seconds
CHUNK_ELEMENTS = 1024     # elements per slice of a big collection
SLICE_BYTES = 64 * 1024   # bytes written per reactor turn
NOKEY = Status("NOKEY")
WHOLE = "whole"           # _plan: a key sent whole, in one RESTORE
CONNECT_ERROR = Error("IOERR error or timeout connecting to the client")


def io_error(writing: bool) -> Error:
    return Error("IOERR error or timeout %s to target instance"
                 % ("writing" if writing else "reading"))


class LinkLost(Exception):
    """The target connection closed or timed out."""

    def __init__(self, timeout=False, replied=0):
        super().__init__("timeout" if timeout else "connection lost")
        self.timeout = timeout
        self.replied = replied


# -- the target connection ---------------------------------------------------

class TargetProtocol(protocol.Protocol):
    """A RESP client connection: commands out, replies in FIFO order."""

    def __init__(self):
        self.reader = new_reader()
        self.waiting: deque = deque()   # one callback per expected reply
        self.lost = False
        self.link = None
        self.write = None

    def connectionMade(self):
        try:
            self.transport.setTcpNoDelay(True)
        except Exception:           # pragma: no cover - not a TCP transport
            pass
        # Sent at once when nothing is queued (not on the next reactor
        # turn): a MIGRATE is a round trip redis-cli waits for.
        self.write = write_through(self.transport)
        self.factory.connected(self)

    def send(self, argvs, callbacks):
        self.send_encoded(b"".join([encode_command(a) for a in argvs]),
                          callbacks)

    def send_encoded(self, data, callbacks):
        """Commands already in RESP, one callback per command."""
        self.waiting.extend(callbacks)
        self.write(data)

    def dataReceived(self, data):
        reader = self.reader
        try:
            reader.feed(data)
            while True:
                reply = reader.gets()
                if reply is False:
                    break
                if not self.waiting:
                    raise hiredis.ProtocolError("unexpected reply")
                self.waiting.popleft()(reply)
        except hiredis.ProtocolError:
            self.transport.abortConnection()

    def connectionLost(self, reason=None):
        self.lost = True
        waiting, self.waiting = self.waiting, deque()
        for callback in waiting:
            callback(LinkLost())
        if self.link is not None:
            self.link.closed()


class _ConnectFactory(protocol.ClientFactory):
    protocol = TargetProtocol

    def __init__(self, on_ready, on_failed):
        self.on_ready = on_ready
        self.on_failed = on_failed

    def connected(self, proto):
        self.on_ready(proto)

    def clientConnectionFailed(self, connector, reason):
        self.on_failed(reason)


class Link:
    """A cached connection to one target (Redis's migrateCachedSocket);
    one job uses it at a time, the others queue."""

    def __init__(self, cache, name):
        self.cache = cache
        self.name = name
        self.proto = None
        self.last_dbid = -1
        self.last_use = cache.clock.seconds()
        self.busy = False
        self.queue: deque = deque()
        self.dead = False

    def close(self):
        self.dead = True
        if self.proto is not None and not self.proto.lost:
            self.proto.transport.loseConnection()

    def closed(self):
        self.dead = True
        self.cache.forget(self)


class LinkCache:
    def __init__(self, reactor):
        self.clock = reactor
        self.reactor = reactor
        self.links: dict = {}

    def __len__(self):
        return len(self.links)

    def get(self, host: str, port: int, timeout: float, on_link, on_error):
        """on_link(link, fresh) when a connection is ready for this job,
        on_error() when connecting failed."""
        name = f"{host}:{port}"
        link = self.links.get(name)
        if link is not None and not link.dead:
            link.last_use = self.clock.seconds()
            self._acquire(link, on_link, False)
            return
        if len(self.links) >= CACHE_ITEMS:
            self.links.pop(random.choice(list(self.links))).close()
        link = Link(self, name)
        self.links[name] = link
        link.busy = True

        def ready(proto):
            proto.link = link
            link.proto = proto
            on_link(link, True)

        def failed(reason):
            self.forget(link)
            on_error()

        if not hasattr(self.reactor, "connectTCP") or not 0 < port < 65536:
            self.forget(link)
            on_error()
            return
        try:
            self.reactor.connectTCP(host, port, _ConnectFactory(ready, failed),
                                    timeout=max(timeout, 0.001))
        except Exception:
            self.forget(link)
            on_error()

    def _acquire(self, link, on_link, fresh):
        if link.busy:
            link.queue.append(on_link)
        else:
            link.busy = True
            on_link(link, fresh)

    def release(self, link):
        link.busy = False
        link.last_use = self.clock.seconds()
        if link.queue:
            nxt = link.queue.popleft()
            if link.dead:
                # The queued job connects again by itself.
                nxt(None, True)
            else:
                link.busy = True
                nxt(link, False)

    def forget(self, link):
        if self.links.get(link.name) is link:
            del self.links[link.name]
        waiting, link.queue = link.queue, deque()
        for nxt in waiting:
            nxt(None, True)

    def drop(self, link):
        self.forget(link)
        link.close()

    def close_idle(self):
        """Cron: close links idle for more than CACHE_TTL seconds."""
        now = self.clock.seconds()
        for link in list(self.links.values()):
            if not link.busy and now - link.last_use > CACHE_TTL:
                self.drop(link)

    def close_all(self):
        for link in list(self.links.values()):
            self.drop(link)


# -- serializing a key in slices --------------------------------------------

def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _float_arg(score: float) -> bytes:
    return repr(float(score)).encode()


def key_commands(key, value, ttl, replace, restore_cmd, settings):
    """The commands that recreate key on a target: (first, rest).  first
    is one RESTORE; rest (maybe empty) is a generator of append commands
    (each built when the writer asks for it: slices across turns)."""
    n = CHUNK_ELEMENTS
    extra = [b"REPLACE"] if replace else []
    big = False
    if isinstance(value, (dict, set, ZSet, deque)):
        big = len(value) > n
    if not big:
        return [restore_cmd, key, b"%d" % ttl,
                dump_payload(value, settings), *extra], None
    # A big collection: the first slice as RESTORE (no TTL: it is set at
    # the end, so the key can't expire half-built), then the rest.
    if isinstance(value, dict):
        # A private copy (C-level, no tuples made: a third of the time of
        # listing the items, the one step of a big hash that can't be
        # sliced), read a slice at a time.
        items = iter(value.copy().items())
        first = dict(islice(items, n))

        def rest():
            while True:
                part = list(islice(items, n))
                if not part:
                    return
                args = [b"HSET", key]
                for f, v in part:
                    args += (f, v)
                yield args
    elif isinstance(value, set):
        items = list(value)
        first = set(items[:n])

        def rest():
            for part in _chunks(items[n:], n):
                yield [b"SADD", key, *part]
    elif isinstance(value, ZSet):
        items = list(value)
        first = ZSet(dict(items[:n]), compact=False)

        def rest():
            for part in _chunks(items[n:], n):
                args = [b"ZADD", key]
                for member, score in part:
                    args += (_float_arg(score), member)
                yield args
    else:
        items = list(value)
        first = deque(items[:n])

        def rest():
            for part in _chunks(items[n:], n):
                yield [b"RPUSH", key, *part]

    def tail():
        yield from rest()
        if ttl:
            yield [b"PEXPIRE", key, b"%d" % ttl]
    return [restore_cmd, key, b"0", dump_payload(first, settings),
            *extra], tail()


# -- one MIGRATE ---------------------------------------------------------------

class MigrateJob:
    def __init__(self, migrations, client, host, port, dbid, timeout_ms,
                 copy, replace, username, password, keys):
        self.m = migrations
        self.server = migrations.server
        self.client = client
        # The database the keys come from: the caller's (SELECT).
        self.source_db = client.db
        self.host = host
        self.port = port
        self.dbid = dbid
        self.timeout = timeout_ms / 1000.0
        self.copy = copy
        self.replace = replace
        self.username = username
        self.password = password
        self.keys = keys
        self.may_retry = True
        self.link = None
        self.timer = None
        self.replied = 0          # replies read this attempt
        self.error = None         # the first target error (reply text)
        self.acked: list = []     # keys the target acknowledged
        self.dirty: set = set()   # in-flight keys a write changed
        self.resend = False
        self.done = False
        self.bytes_sent = 0
        self.attempt = 0
        self.held = list(keys)
        self.sending: list = []

    # -- lifecycle -------------------------------------------------------
    def start(self):
        self.m.hold(self)
        self._connect()

    def _connect(self):
        self.m.cache.get(self.host, self.port, self.timeout,
                         self._on_link, self._connect_failed)

    def _connect_failed(self):
        self._finish(CONNECT_ERROR)

    def _on_link(self, link, fresh):
        if self.done:
            if link is not None:
                self.m.cache.release(link)
            return
        if link is None:          # the link we queued on died
            self._connect()
            return
        self.link = link
        self._send()

    # -- sending -----------------------------------------------------------
    def _plan(self):
        """Yield (argv or None, tag, barrier, closes): a command (an argv,
        or bytes already in RESP) and what it is for (a key, "auth",
        "select"), whether its reply is awaited before going on (or WHOLE:
        the key's one command, whose one reply settles it), whether the
        key's commands are all sent."""
        server = self.server
        ks = server.dbs[self.source_db]
        restore = b"RESTORE-ASKING" if server.cluster_mode else b"RESTORE"
        asking = server.cluster_mode
        if self.password is not None:
            auth = [b"AUTH"]
            if self.username is not None:
                auth.append(self.username)
            auth.append(self.password)
            yield auth, "auth", False, False
        if self.link.last_dbid != self.dbid:
            yield [b"SELECT", b"%d" % self.dbid], "select", False, False
        now = server.now_ms()
        settings = server.settings
        replace = self.replace or self.resend
        # A value sent whole: one RESTORE, encoded here (the common case).
        head = b"*%d\r\n$%d\r\n%b\r\n" % (5 if replace else 4, len(restore),
                                            restore)
        tail = b"$7\r\nREPLACE\r\n" if replace else b""
        keys, self.sending = self.keys, []
        for key in keys:
            value = ks.lookup(key)
            if value is None:
                continue
            ttl = 0
            when = ks.expire_time(key)
            if when is not None:
                ttl = when - now
                if ttl < 0:
                    continue
                ttl = max(ttl, 1)
            self.sending.append(key)
            if value.__class__ is bytes or not isinstance(value, _SLICED) \
                    or len(value) <= CHUNK_ELEMENTS:
                try:
                    payload = dump_payload(value, settings)
                except RdbError as err:
                    self.error = self.error or "ERR " + str(err)
                    continue
                ttl = b"%d" % ttl
                yield head + b"$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n%b" % (
                    len(key), key, len(ttl), ttl, len(payload), payload,
                    tail), key, WHOLE, True      # all of key, one reply
                continue
            try:
                first, rest = key_commands(key, value, ttl, replace, restore,
                                           settings)
            except RdbError as err:
                self.error = self.error or "ERR " + str(err)
                continue
            if rest is None:
                yield first, key, False, True    # all of key is sent
                continue
            # Wait for the first slice's reply before appending to it.
            yield first, key, True, False
            for argv in rest:
                if asking:
                    yield [b"ASKING"], None, False, False
                yield argv, key, False, False
            yield None, key, False, True

    def _send(self):
        self.attempt += 1
        self.replied = 0
        self.error = None
        self.prefix_failed = False
        self.expected = 0
        self.key_pending: dict = {}      # key -> replies still expected
        self.key_failed: set = set()
        self.key_closed: set = set()     # keys whose commands are all sent
        self.plan = self._plan()
        self.writing_done = False
        self.waiting_barrier = False
        self.whole_tags: deque = deque()    # keys sent WHOLE, in order
        self.whole_reply = self._whole_callback()
        self._arm_timer()
        self._write_more()

    def _write_more(self):
        if self.done or self.link is None:
            return
        proto = self.link.proto
        if proto is None or proto.lost:
            return
        chunks, callbacks = [], []
        size = 0
        pending = self.key_pending
        whole, whole_tags = self.whole_reply, self.whole_tags
        n_whole = 0
        for argv, tag, barrier, closes in self.plan:
            if barrier is WHOLE:
                # The common case, kept lean: one RESTORE, one reply.
                callbacks.append(whole)
                whole_tags.append(tag)
                chunks.append(argv)
                n_whole += 1
                size += len(argv)
                if size >= SLICE_BYTES:
                    break
                continue
            if argv is not None:
                callbacks.append(self._callback(tag))
                if argv.__class__ is not bytes:
                    argv = encode_command(argv)
                chunks.append(argv)
                self.expected += 1
                if tag.__class__ is bytes:
                    pending[tag] = pending.get(tag, 0) + 1
                size += len(argv)
            if closes:
                self.key_closed.add(tag)
                if not pending.get(tag) and \
                        tag not in self.key_failed and not self.prefix_failed:
                    self.acked.append(tag)
                if argv is None:
                    continue
            if barrier:
                self.waiting_barrier = True
                break
            if size >= SLICE_BYTES:
                break
        else:
            self.writing_done = True
        self.expected += n_whole
        if chunks:
            self.bytes_sent += size
            proto.send_encoded(b"".join(chunks), callbacks)
        if not self.writing_done and not self.waiting_barrier:
            self.server.clock.callLater(0, self._write_more)
        elif self.writing_done and self.expected == 0:
            self._replies_done()

    def _callback(self, tag):
        attempt = self.attempt

        def on_reply(reply):
            if attempt == self.attempt:
                self._on_reply(tag, reply)
        return on_reply

    def _whole_callback(self):
        """The one reply callback of this attempt's WHOLE keys: what
        _on_reply does for them, without its per-key bookkeeping (their
        replies come in the order whole_tags holds them)."""
        attempt = self.attempt
        tags = self.whole_tags
        seconds = self.server.clock.seconds

        def on_reply(reply):
            if attempt != self.attempt or self.done:
                return
            if reply.__class__ is LinkLost:
                self._socket_error(timeout=False)
                return
            tag = tags.popleft()
            self.replied += 1
            self.expected -= 1
            self.last_io = seconds()       # the armed timer reads it
            if reply.__class__ is hiredis.ReplyError:
                if self.error is None:
                    self.error = str(reply)
            elif not self.prefix_failed:
                self.acked.append(tag)
            if self.expected == 0:
                self._after_last_reply()
        return on_reply

    # -- replies -----------------------------------------------------------
    def _arm_timer(self):
        """The timeout runs from the last I/O: noted here (per reply), the
        timer itself is moved only when it fires early."""
        clock = self.server.clock
        self.last_io = clock.seconds()
        if self.timer is None or not self.timer.active():
            self.timer = clock.callLater(self.timeout, self._timed_out)

    def _timed_out(self):
        self.timer = None
        if self.done:
            return
        left = self.last_io + self.timeout - self.server.clock.seconds()
        if left > 0:
            self.timer = self.server.clock.callLater(left, self._timed_out)
            return
        self._socket_error(timeout=True)

    def _on_reply(self, tag, reply):
        if self.done:
            return
        if isinstance(reply, LinkLost):
            self._socket_error(timeout=False)
            return
        self.replied += 1
        self.expected -= 1
        self._arm_timer()
        failed = isinstance(reply, hiredis.ReplyError)
        if failed and self.error is None:
            self.error = str(reply)
        if tag.__class__ is bytes:
            if failed:
                self.key_failed.add(tag)
            left = self.key_pending[tag] - 1
            self.key_pending[tag] = left
            if left == 0 and tag in self.key_closed and \
                    tag not in self.key_failed and not self.prefix_failed:
                self.acked.append(tag)
        elif tag == "auth" or tag == "select":
            if failed:
                # An AUTH or SELECT error fails every key, as Redis reads it.
                self.prefix_failed = True
                self.link.last_dbid = -1
        if self.expected == 0:
            self._after_last_reply()

    def _after_last_reply(self):
        """Every reply so far is in: go past a barrier, or end."""
        if self.waiting_barrier:
            self.waiting_barrier = False
            if self.error is not None and not self.replace:
                # The first slice was refused (BUSYKEY...): stop here.
                self.plan = iter(())
                self.writing_done = True
            else:
                self._write_more()
                return
        if self.writing_done:
            self._replies_done()

    def _socket_error(self, timeout):
        link = self.link
        self.link = None
        # This attempt ends here: the other commands in flight on the
        # link report the same loss, and must not end the retry too.
        self.attempt += 1
        if link is not None:
            self.m.cache.drop(link)
        if self.acked:
            self._delete_acked()
        if not timeout and self.replied == 0 and self.may_retry \
                and not self.acked:
            self.may_retry = False
            self._cancel_timer()
            self._connect()
            return
        if self.error is not None:
            self._finish(Error("ERR Target instance replied with error: "
                               + self.error))
        else:
            self._finish(io_error(writing=False))

    # -- the end -------------------------------------------------------------
    def _replies_done(self):
        if self.error is not None:
            self.link.last_dbid = -1
        else:
            self.link.last_dbid = self.dbid
        # Keys a write changed while in flight go again (REPLACE).
        dirty = [k for k in self.acked if k in self.dirty]
        if dirty and not self.copy and self.error is None:
            self.dirty.clear()
            self.keys = dirty
            self.acked = [k for k in self.acked if k not in dirty]
            done = self.acked
            self.acked = []
            self._delete(done)
            self.resend = True
            self._send()
            return
        self._delete_acked()
        if self.error is not None:
            self._finish(Error("ERR Target instance replied with error: "
                               + self.error))
        else:
            self._finish(OK)

    def _delete_acked(self):
        acked, self.acked = self.acked, []
        self._delete(acked)

    def _delete(self, keys):
        if self.copy or not keys:
            return
        server = self.server
        previous = server.cur_db
        server.use_db(self.source_db)
        try:
            self._delete_in_db(keys)
        finally:
            server.use_db(previous)

    def _delete_in_db(self, keys):
        server = self.server
        ks = server.keyspace
        gone = [k for k in keys if ks.delete(k)]
        if not gone:
            return
        wp = server.write_path
        self.m.deleting = True
        try:
            if wp.active:
                wp.also_propagate([b"DEL", *gone])   # under its db's SELECT
            wp.touched(gone, self.client)
            wp.flush(wrap=False)
        finally:
            self.m.deleting = False
        self.m.keys_migrated += len(gone)

    def _cancel_timer(self):
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def _finish(self, reply):
        if self.done:
            return
        self.done = True
        self._cancel_timer()
        if self.link is not None:
            link, self.link = self.link, None
            self.m.cache.release(link)
        self.m.release(self)
        c = self.client
        if c.blocked is self and not c.closed:
            c.blocked = None
            c.complete(reply)


# -- the node's migrations --------------------------------------------------

class Migrations:
    """``server.extensions["migration"]``: MIGRATE jobs, in-flight keys,
    the link cache."""

    def __init__(self, server, reactor=None):
        self.server = server
        self.cache = LinkCache(reactor or server.clock)
        self.inflight: dict = {}      # key -> job
        self.busy_slots: dict = {}    # slot -> number of keys in flight
        self.parked: list = []
        self.deleting = False
        self.keys_migrated = 0
        self.jobs = 0
        self.exports: list = []       # SlotExport, newest last
        self.imports: dict = {}       # client id -> SlotImport
        self.paused_slots: dict = {}  # slot -> the SlotExport pausing it
        self.listening = False

    def _listen(self):
        """Hear of writes only while something is in flight or staged, so
        that ordinary writes pay nothing for migration."""
        wanted = bool(self.inflight or self.imports or
                      any(job.active for job in self.exports))
        if wanted != self.listening:
            self.listening = wanted
            wp = self.server.write_path
            if wanted:
                wp.add_key_listener(self._written)
            else:
                wp.remove_key_listener(self._written)

    # -- jobs -------------------------------------------------------------
    def migrate(self, c, host, port, dbid, timeout_ms, copy, replace,
                username, password, keys):
        ks = self.server.keyspace
        present = [k for k in keys if ks.lookup(k) is not None]
        if not present:
            return NOKEY
        job = MigrateJob(self, c, host, port, dbid, timeout_ms, copy,
                         replace, username, password, present)
        c.blocked = job
        self.jobs += 1
        job.start()
        return BLOCKED

    def hold(self, job):
        busy = self.busy_slots
        for key in job.held:
            self.inflight[key] = job
            slot = keyslot(key)
            busy[slot] = busy.get(slot, 0) + 1
        cluster = self.server.cluster
        if cluster is not None:
            cluster.busy_slots = busy
        self._listen()

    def release(self, job):
        busy = self.busy_slots
        for key in job.held:
            if self.inflight.get(key) is job:
                del self.inflight[key]
                slot = keyslot(key)
                n = busy.get(slot, 0) - 1
                if n > 0:
                    busy[slot] = n
                else:
                    busy.pop(slot, None)
        if self.parked:
            # Everyone parked tries again (a client still blocked by
            # another key or a paused slot parks again).
            self._unpark()
        self._listen()

    def _written(self, keys, client):
        if self.exports:
            self._export_written(keys)
        self._listen()
        if keys is None and self.imports:
            # FLUSHALL took what was staged: those imports can't finish.
            for imp in self.imports.values():
                imp.state = "flushed"
        if not self.inflight or self.deleting:
            return
        if keys is None:
            for job in set(self.inflight.values()):
                job.dirty.update(job.held)
            return
        for key in keys:
            job = self.inflight.get(key)
            if job is not None and client is not job.client:
                job.dirty.add(key)

    def _export_written(self, keys):
        """A flush ends a move (its ops go by the write path's sink)."""
        if keys is None:
            for job in [job for job in self.exports if job.active]:
                job._fail("the keyspace was flushed during the move")

    # -- atomic slot moves ----------------------------------------------------
    def export(self, slots, node) -> SlotExport:
        job = SlotExport(self, slots, node)
        # History for GETSLOTMIGRATIONS: the last 50 (running ones kept).
        done = [j for j in self.exports if not j.active and not j.deleting]
        for old in done[:max(len(self.exports) - 49, 0)]:
            self.exports.remove(old)
        job.start()
        self._listen()
        return job

    def deletes_slot(self, slot) -> bool:
        """An atomic move at (or past) its cut-over deletes this slot's
        keys itself, a slice per reactor turn."""
        for job in self.exports:
            if job.finishing and slot in job.slot_set and (
                    job.state == "finishing" or job.deleting):
                return True
        return False

    def exporting(self, slot):
        for job in self.exports:
            if job.active and slot in job.slot_set:
                return job
        return None

    def pause_slots(self, job):
        busy = self.busy_slots
        for slot in job.slots:
            self.paused_slots[slot] = job
            busy[slot] = busy.get(slot, 0) + 1
        cluster = self.server.cluster
        if cluster is not None:
            cluster.busy_slots = busy

    def unpause_slots(self, job):
        busy = self.busy_slots
        for slot in job.slots:
            if self.paused_slots.get(slot) is job:
                del self.paused_slots[slot]
                n = busy.get(slot, 0) - 1
                if n > 0:
                    busy[slot] = n
                else:
                    busy.pop(slot, None)
        if self.parked:
            self._unpark()

    def begin_import(self, c, source, slots) -> SlotImport:
        old = self.imports.pop(c.id, None)
        if old is not None:
            drop_staged(self.server, old.slots)
        drop_staged(self.server, slots)
        imp = self.imports[c.id] = SlotImport(c, source, slots)
        self._stage(imp.slots, True)
        self._listen()
        return imp

    def end_import(self, c, cancel: bool):
        imp = self.imports.pop(c.id, None)
        if imp is not None:
            self._stage(imp.slots, False)
            if cancel:
                drop_staged(self.server, imp.slots)
        self._listen()
        return imp

    def _stage(self, slots, staged: bool):
        """Keys of imported slots don't expire by themselves here (the
        set is every database's: Databases shares db 0's)."""
        if staged:
            self.server.dbs[0].staged.update(slots)
        else:
            self.server.dbs[0].staged.difference_update(slots)

    # -- writes to keys in flight wait -------------------------------------
    def park(self, c, calls, argv) -> bool:
        """True (and the client parked) when one of the calls writes a key
        that is in flight, or a key of a slot paused for its cut-over."""
        inflight = self.inflight
        paused = self.paused_slots
        for cmd, qargv in calls:
            flags = cmd.flags
            if cmd.name == "migrate" or not (
                    "write" in flags or "may_replicate" in flags):
                continue
            keys = cmd.write_keys(qargv) if "write" in flags \
                else cmd.keys(qargv)         # EVAL/FCALL: their keys
            for key in keys:
                if key in inflight or (paused and keyslot(key) in paused):
                    c.pending.appendleft(argv)
                    c.blocked = "migrate"
                    self.parked.append(c)
                    return True
        return False

    def _unpark(self):
        waiting, self.parked = self.parked, []
        for client in waiting:
            if client.blocked == "migrate" and not client.closed:
                client.blocked = None
                client.resume()

    def cron(self):
        self.cache.close_idle()
        for job in self.exports:
            job.check()
        for cid, imp in list(self.imports.items()):
            if imp.client.closed:
                # The source went away mid-move: what it staged goes.
                self.end_import(imp.client, cancel=True)

    def info(self):
        return [("migrate_cached_sockets", len(self.cache)),
                ("migrate_keys_in_flight", len(self.inflight)),
                ("migrate_keys_migrated", self.keys_migrated),
                ("slot_migrations_active",
                 sum(1 for j in self.exports if j.active)),
                ("slot_imports_active", len(self.imports))]


def migrations_of(server) -> Migrations:
    m = server.extensions.get("migration")
    if m is None:
        m = server.extensions["migration"] = Migrations(server)
        if hasattr(server.clock, "connectTCP"):
            # On the node's shared cron grid (timers.py): no wake-up of
            # its own.
            m.loop = periodic(m.cron, server.clock)
            m.loop.start(1.0, now=False)
    return m



# -- atomic slot migration (CLUSTER MIGRATESLOTS) ---------------------------
#
# rcluster to rcluster only.  The source opens a connection to the
# target's client port and speaks internal CLUSTER SYNCSLOTS subcommands
# (keyless: no routing on the target):
#
#   BEGIN <source-id> <start> <end> ...   the target drops what it may
#                                         hold of those slots (an earlier
#                                         attempt) and opens an import
#   RUN <command> <arg> ...               a keyed command (RESTORE ...
#                                         REPLACE, HSET..., DEL) run for a
#                                         key of those slots
#   LOAD <records>                        many small keys in one argument
#                                         (pack_load / unpack_load)
#   FINISH <source's current epoch>       the target takes the slots: epoch
#                                         bump past it + broadcast
#   CANCEL                                the target deletes what it staged
#
# The target stages keys in its own keyspace without serving them: it
# doesn't own the slots, so clients are redirected to the source as
# before.  The source streams a point-in-time snapshot of the slots
# (persistence/snapshot.py's fork-less Snapshot, with LOAD records for
# entries: _LoadWriter; a big value in slices), then the writes made to
# those slots since that instant, as the write path recorded them (its
# sink: the deterministic form replicas get), each as SYNCSLOTS RUN; the
# target runs them as a replica runs its master's stream (keys expire
# only when the source says so).  When the target has caught up, writes
# to those slots only wait (the router parks them), the last ops go,
# FINISH; then the source records the new owner, the parked clients get
# MOVED, and the source deletes the keys in slices.  No ASK and no
# TRYAGAIN at any time.

SYNC_WINDOW = 2000           # commands in flight to the target, at most
SYNC_BYTES = 8 << 20         # bytes in flight to the target, at most
PAUSE_LIMIT = 5.0            # seconds writes may wait at the cut-over
CATCH_UP = 64                # writes left to send before pausing writes
DELETE_SLICE = 1000          # keys the source deletes per reactor turn
LOAD_KEYS = 256              # keys per snapshot step (at least a slot)

# A SYNCSLOTS LOAD record: its kind, the key's length, the value's
# length, the ttl (ms to live, 0 none), then the key and the value: a DUMP
# payload (LOAD_DUMP), a string value as it is (LOAD_STRING: neither end
# encodes, checksums or decodes anything), or nothing (LOAD_GONE: the key
# is gone, DEL).  One bulk argument holds them all: the request parser
# reads one big argument much faster than hundreds of small ones.
LOAD_DUMP, LOAD_STRING, LOAD_GONE = 0, 1, 2
_LOAD_RECORD = struct.Struct("<BIIq")
_RECORD_PACK = _LOAD_RECORD.pack
_RECORD_SIZE = _LOAD_RECORD.size
BAD_LOAD = "ERR Invalid SYNCSLOTS LOAD records"


def pack_load(key: bytes, ttl: int, value: bytes, kind=LOAD_DUMP) -> bytes:
    return _RECORD_PACK(kind, len(key), len(value), ttl) + key + value


def pack_gone(key: bytes) -> bytes:
    return _RECORD_PACK(LOAD_GONE, len(key), 0, 0) + key


def unpack_load(blob) -> list:
    """[(key, ttl, value, raw), ...] of a LOAD argument: ttl -1 for a key
    that is gone, raw for a string value (else a DUMP payload);
    ValueError(BAD_LOAD) when it is malformed (lengths past its end, an
    unknown kind, a negative ttl)."""
    if blob.__class__ is not bytes:
        blob = bytes(blob)
    out = []
    unpack = _LOAD_RECORD.unpack_from
    pos, end = 0, len(blob)
    while pos < end:
        if end - pos < _RECORD_SIZE:
            raise ValueError(BAD_LOAD)
        kind, klen, vlen, ttl = unpack(blob, pos)
        pos += _RECORD_SIZE
        stop = pos + klen + vlen
        if stop > end or ttl < 0 or kind > LOAD_GONE or \
                (kind == LOAD_GONE and (vlen or ttl)):
            raise ValueError(BAD_LOAD)
        out.append((blob[pos:pos + klen],
                    -1 if kind == LOAD_GONE else ttl,
                    blob[pos + klen:stop], kind == LOAD_STRING))
        pos = stop
    return out


_SLICED = (dict, set, ZSet, deque)    # big ones go in slices


class _LoadWriter:
    """What a SlotExport's Snapshot serializes with, in place of the RDB
    writer: a key is a SYNCSLOTS LOAD record (a string as it is, anything
    else as a DUMP payload; its TTL as ms to live), or, for a collection
    of more than CHUNK_ELEMENTS elements, its commands (key_commands,
    built now from the snapshot's value) put aside to go in slices."""

    def __init__(self, export, db):
        self.export = export
        self.db = db
        self.settings = export.server.settings

    def header(self, aux=()):
        return b""

    def function(self, code):
        return b""

    def select_db(self, db, keys, expires):
        return b""

    def footer(self):
        return b""

    def entry(self, key, value, expiry) -> bytes:
        ttl = 0
        if expiry is not None:
            ttl = max(expiry - self.export.server.now_ms(), 1)
        cls = value.__class__
        if cls is bytes or cls is bytearray:
            return pack_load(key, ttl, value, LOAD_STRING)
        if isinstance(value, _SLICED) and len(value) > CHUNK_ELEMENTS:
            first, rest = key_commands(key, value, ttl, True, b"RESTORE",
                                       self.settings)
            self.export.big.append((self.db, first, rest))
            return b""
        return pack_load(key, ttl, dump_payload(value, self.settings))


def format_ranges(slots) -> str:
    out, slots = [], sorted(slots)
    i = 0
    while i < len(slots):
        j = i
        while j + 1 < len(slots) and slots[j + 1] == slots[j] + 1:
            j += 1
        out.append(f"{slots[i]}-{slots[j]}" if j > i else f"{slots[i]}")
        i = j + 1
    return " ".join(out)


class SlotExport:
    """One CLUSTER MIGRATESLOTS ... NODE <id> on the source."""

    def __init__(self, migrations, slots, node):
        self.name = "%040x" % random.getrandbits(160)
        self.m = migrations
        self.server = migrations.server
        self.cluster = self.server.cluster
        self.engine = self.server.cluster_engine
        self.slots = sorted(slots)
        self.slot_set = set(slots)
        self.node = node
        self.state = "connecting"
        self.message = ""
        self.created = self.server.clock.seconds()
        self.updated = self.created
        self.proto = None
        # The snapshot: one Snapshot per database holding keys of the
        # slots (cluster-databases), streamed in turn; what they serialize
        # waits in ``loads`` (db, LOAD records) and ``big`` (db, key's
        # commands: a value sent in slices), the ops since in ``ops``.
        self.snapshots: deque = deque()
        self.loads: deque = deque()
        self.big: deque = deque()
        self.ops: deque = deque()         # (db, argv) since the instant
        self.outstanding = 0
        self.outstanding_bytes = 0
        self.keys_done = 0                # keys of finished snapshots
        self.ranges_text = format_ranges(self.slots).encode()
        self.bytes_sent = 0
        self.paused_at = None
        self.pause_timer = None
        self.pumping = False
        self.finishing = False
        self.deleting: deque = deque()
        self.current = None               # the key being sent (generator)

    # -- progress -----------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state not in ("success", "failed", "canceled")

    @property
    def keys_sent(self) -> int:
        """Keys of the snapshot serialized so far."""
        return self.keys_done + sum(snap.keys_saved
                                    for _, snap in self.snapshots)

    def keys_left(self) -> int:
        """Keys of the snapshot not serialized yet, plus the writes made
        since that are still to go."""
        if self.state in ("success",):
            return 0
        left = sum(snap.keys_total - snap.keys_saved
                   for _, snap in self.snapshots)
        return left + len(self.big) + len(self.ops)

    def describe(self):
        from rcluster.resp.codec import Map
        elapsed = max(self.updated - self.created, 1e-3)
        return Map([
            (b"name", self.name.encode()),
            (b"operation", b"EXPORT"),
            (b"slot_ranges", self.ranges_text),
            (b"target_node", self.node.name.encode()),
            (b"source_node", self.cluster.myself.name.encode()),
            (b"create_time", int(self.created)),
            (b"last_update_time", int(self.updated)),
            (b"state", self.state.encode()),
            (b"message", self.message.encode()),
            (b"keys_sent", self.keys_sent),
            (b"keys_left", self.keys_left()),
            (b"bytes_sent", self.bytes_sent),
            (b"keys_per_sec", int(self.keys_sent / elapsed)),
        ])

    # -- start ---------------------------------------------------------------
    def start(self):
        reactor = self.m.cache.reactor
        if not hasattr(reactor, "connectTCP"):
            self._fail("no reactor to connect with")
            return
        self.m.exports.append(self)
        factory = _ConnectFactory(self._connected, self._connect_failed)
        reactor.connectTCP(self.node.ip, self.node.port, factory,
                           timeout=5)

    def _connect_failed(self, reason):
        self._fail("can't connect to the target")

    def _connected(self, proto):
        if not self.active:
            proto.transport.loseConnection()
            return
        self.proto = proto
        proto.link = self
        self.state = "snapshot"
        # The target may want a password: the cluster's (masterauth).
        password = self.server.settings.masterauth
        cmds = []
        if password:
            cmds.append([b"AUTH", password.encode()
                         if isinstance(password, str) else password])
        begin = [b"CLUSTER", b"SYNCSLOTS", b"BEGIN",
                 self.cluster.myself.name.encode()]
        for s in self.slots:
            begin += [b"%d" % s, b"%d" % s]
        cmds.append(begin)
        self._send(cmds)
        self._take_snapshot()
        self._pump()

    def _take_snapshot(self):
        """The instant: every database's keys of the slots as they are
        now, and from now on the writes to those slots."""
        marks = bytearray(b"\x01" * SLOTS)
        for slot in self.slots:
            marks[slot] = 0
        for db, ks in self.server.dbs.items():
            total = sum([len(ks.slots[s]) for s in self.slots])
            if not total:
                continue
            snap = Snapshot(ks, _LoadWriter(self, db),
                            lambda data, db=db: self.loads.append((db, data)))
            snap.visited[:] = marks         # only our slots
            snap.start()
            snap.keys_total = total
            self.snapshots.append((db, snap))
        self.server.write_path.add_sink(self._sink)

    def _sink(self, db, ops):
        """The write path's ops: those of our slots go after the snapshot
        (a keyless one - MULTI, EXEC, FUNCTION LOAD... - is no data of
        ours; SWAPDB would be, and ends the move)."""
        table = self.server.table
        mine = self.slot_set
        for argv in ops:
            cmd, _ = table.lookup(argv)
            if cmd is None:
                continue
            keys = cmd.keys(argv)
            if keys:
                if keyslot(keys[0]) in mine:
                    self.ops.append((db, argv))
            elif cmd.name == "swapdb":
                self._fail("SWAPDB during the move")
                return
        if self.ops and self.proto is not None and not self.finishing:
            self._schedule()

    def _stop_recording(self):
        for _, snap in self.snapshots:
            snap.abort()
            self.keys_done += snap.keys_saved
        self.snapshots.clear()
        self.server.write_path.remove_sink(self._sink)

    def closed(self):
        """Link.closed(): the target connection went away."""
        if self.active:
            self._fail("connection to the target lost")

    # -- sending ---------------------------------------------------------------
    def _send(self, cmds):
        if self.proto is None or self.proto.lost:
            return
        size = sum(len(a) for c in cmds for a in c) + 16 * len(cmds)
        self.outstanding += len(cmds)
        self.outstanding_bytes += size
        self.bytes_sent += size
        per = size // max(len(cmds), 1)
        self.proto.send(cmds, [self._reply(per) for _ in cmds])

    def _reply(self, size):
        def on_reply(reply):
            self.outstanding -= 1
            self.outstanding_bytes -= size
            if isinstance(reply, LinkLost):
                return            # closed() reports it
            if isinstance(reply, hiredis.ReplyError):
                if self.active:
                    self._fail("target replied: %s" % reply)
                return
            self.updated = self.server.clock.seconds()
            if self.active:
                self._schedule()
        return on_reply

    def _schedule(self):
        if not self.pumping:
            self.pumping = True
            self.server.clock.callLater(0, self._pump)

    def _window_full(self) -> bool:
        return self.outstanding >= SYNC_WINDOW or \
            self.outstanding_bytes >= SYNC_BYTES

    def _big_cmds(self, db, first, rest):
        """A big value's commands, a slice at a time (another database's
        between SELECTs)."""
        if db:
            yield [b"SELECT", b"%d" % db]
        yield [b"CLUSTER", b"SYNCSLOTS", b"RUN", *first]
        for argv in rest or ():
            yield [b"CLUSTER", b"SYNCSLOTS", b"RUN", *argv]
        if db:
            yield [b"SELECT", b"0"]

    @staticmethod
    def _in_db(db, cmd) -> list:
        if not db:
            return [cmd]
        return [[b"SELECT", b"%d" % db], cmd, [b"SELECT", b"0"]]

    @property
    def snapshot_sent(self) -> bool:
        return not (self.snapshots or self.loads or self.big or
                    self.current is not None)

    def _pump(self):
        """Send what the window allows: the snapshot (what it serialized,
        then another step of it), then the writes made since; at the
        end, pause and cut over."""
        self.pumping = False
        if not self.active or self.proto is None or self.finishing:
            return
        batch, size = [], 0
        while size < SLICE_BYTES and not self._window_full():
            if self.current is not None:          # a big value, sliced
                argv = next(self.current, None)
                if argv is None:
                    self.current = None
                else:
                    batch.append(argv)
                    size += sum(len(a) for a in argv)
                continue
            if self.big:
                self.current = self._big_cmds(*self.big.popleft())
                continue
            if self.loads:
                # A step's slots (one piece each) go as one LOAD.
                loads = self.loads
                db, data = loads.popleft()
                parts, n = [data], len(data)
                while loads and loads[0][0] == db and n < SLICE_BYTES:
                    data = loads.popleft()[1]
                    parts.append(data)
                    n += len(data)
                batch += self._in_db(db, [b"CLUSTER", b"SYNCSLOTS", b"LOAD",
                                          b"".join(parts)])
                size += n
                continue
            if self.snapshots:
                db, snap = self.snapshots[0]
                snap.step(budget=0.002, max_keys=LOAD_KEYS)
                if snap.done:
                    self.snapshots.popleft()
                    self.keys_done += snap.keys_saved
                continue
            if self.ops:
                db, argv = self.ops.popleft()
                batch += self._in_db(db, [b"CLUSTER", b"SYNCSLOTS", b"RUN",
                                          *argv])
                size += sum(len(a) for a in argv)
                continue
            break
        if batch:
            self._send(batch)
        if not self.snapshot_sent:
            if not self._window_full():
                self._schedule()
            return
        self.state = "streaming" if self.paused_at is None else "paused"
        if self.paused_at is None and len(self.ops) <= CATCH_UP and \
                self.outstanding <= CATCH_UP:
            # Caught up: the last writes go while new ones wait.
            self._pause()
        if self.paused_at is not None and not self.ops and \
                self.outstanding == 0:
            self._finish()
        elif self.ops and not self._window_full():
            self._schedule()

    # -- cut-over --------------------------------------------------------------
    def _pause(self):
        self.paused_at = self.server.clock.seconds()
        self.state = "paused"
        self.m.pause_slots(self)
        self.pause_timer = self.server.clock.callLater(
            PAUSE_LIMIT, self._pause_too_long)

    def _pause_too_long(self):
        self.pause_timer = None
        if self.active and not self.finishing:
            self._fail("the target did not catch up within %gs" % PAUSE_LIMIT)

    def _finish(self):
        self.finishing = True
        self.state = "finishing"
        callbacks = []

        def done(reply):
            self.outstanding -= 1
            if not self.active:
                return
            if isinstance(reply, (LinkLost, hiredis.ReplyError)):
                self._fail("FINISH refused: %s" % reply)
                return
            self._cut_over()
        callbacks.append(done)
        self.outstanding += 1
        # Our current epoch goes along: the target's new config epoch
        # must pass it (engine.take_slots).
        self.proto.send([[b"CLUSTER", b"SYNCSLOTS", b"FINISH",
                          b"%d" % self.cluster.current_epoch]], callbacks)

    def _cut_over(self):
        if self.pause_timer is not None and self.pause_timer.active():
            self.pause_timer.cancel()
        self.pause_timer = None
        me = self.cluster.myself
        if not me.is_master:
            self._fail("this node is no longer a master")
            return
        self._stop_recording()
        self.engine.give_slots(self.slots, self.node)
        self.state = "success"
        self.updated = self.server.clock.seconds()
        self.m.unpause_slots(self)
        if self.proto is not None:
            self.proto.link = None
            self.proto.transport.loseConnection()
        log.info("Slot migration {name} of {n} slots to {target} done",
                 name=self.name, n=len(self.slots), target=self.node.name)
        self.deleting.extend(self.slots)
        self.server.clock.callLater(0, self._delete_some)

    def _delete_some(self):
        """The source deletes the moved keys, a slice per reactor turn,
        in every database."""
        server = self.server
        for db, other in server.dbs.items():
            if db and other.count:
                previous = server.cur_db
                server.use_db(db)
                try:
                    self._delete_slice(list(self.deleting))
                finally:
                    server.use_db(previous)
        self._delete_slice(self.deleting)
        if self.deleting:
            server.clock.callLater(0, self._delete_some)

    def _delete_slice(self, deleting):
        """Delete up to DELETE_SLICE keys of the slots in ``deleting``
        (consumed as they empty) from the database in use."""
        server = self.server
        ks = server.keyspace
        wp = server.write_path
        lazy = server.settings.lazyfree_lazy_server_del
        budget = DELETE_SLICE
        gone = []
        while deleting and budget > 0:
            slot = deleting[0]
            if self.cluster.slots[slot] is self.cluster.myself:
                deleting.pop(0) if deleting.__class__ is list \
                    else deleting.popleft()    # ours again: not to delete
                continue
            keys = ks.keys_in_slot(slot, budget)
            if not keys:
                if deleting is self.deleting and \
                        server.count_in_slot(slot):
                    break       # another database's keys: next turn
                deleting.pop(0) if deleting.__class__ is list \
                    else deleting.popleft()
                continue
            for key in keys:
                ks.delete(key)
                wp.deleted(key, lazy)
            gone.extend(keys)
            budget -= len(keys)
        if gone:
            server.touch_watched(gone)
            wp.flush(wrap=False)

    # -- the end ----------------------------------------------------------------
    def cancel(self, message="canceled"):
        if not self.active:
            return False
        self._stop("canceled", message)
        return True

    def _fail(self, message):
        log.warn("Slot migration {name} failed: {message}", name=self.name,
                 message=message)
        self._stop("failed", message)

    def _stop(self, state, message):
        self.state = state
        self.message = message
        self._stop_recording()
        self.updated = self.server.clock.seconds()
        if self.pause_timer is not None and self.pause_timer.active():
            self.pause_timer.cancel()
        self.pause_timer = None
        self.m.unpause_slots(self)
        if self.finishing:
            # FINISH went out: the target may own the slots now (its
            # gossip says so); what we no longer own is deleted in slices.
            self.deleting.extend(self.slots)
            self.server.clock.callLater(0, self._delete_some)
        proto, self.proto = self.proto, None
        if proto is not None:
            proto.link = None
            if not proto.lost and not self.finishing:
                proto.send([[b"CLUSTER", b"SYNCSLOTS", b"CANCEL"]],
                           [lambda reply: None])
                proto.transport.loseConnection()

    def check(self):
        """Cron: a failover of either end cancels the move (not once
        FINISH is sent: the target may already own the slots, and its
        gossip may reach us before its reply)."""
        if not self.active or self.finishing:
            return
        me = self.cluster.myself
        if not me.is_master:
            self._fail("this node became a replica")
        elif not self.node.is_master or self.node.flags & NODE_FAIL:
            self._fail("the target failed or is no longer a master")
        elif any(self.cluster.slots[s] is not me for s in self.slots):
            self._fail("the slots changed owner")


class SlotImport:
    """The target's side of one move: which slots this connection stages."""

    def __init__(self, client, source, slots):
        self.client = client
        self.source = source
        self.slots = set(slots)
        self.created = client.server.clock.seconds()
        self.keys = 0
        self.state = "importing"


def drop_staged(server, slots):
    """Delete the keys of slots this node doesn't own (an import that was
    canceled, or left over by a failed attempt)."""
    gone = 0
    for db, ks in server.dbs.items():
        previous = server.cur_db
        server.use_db(db)
        try:
            gone += _drop_staged_in_db(server, slots)
        finally:
            server.use_db(previous)
    return gone


def _drop_staged_in_db(server, slots):
    cluster = server.cluster
    ks = server.keyspace
    wp = server.write_path
    gone = []
    for slot in slots:
        if cluster.slots[slot] is cluster.myself:
            continue
        keys = ks.keys_in_slot(slot, ks.count_in_slot(slot))
        for key in keys:
            ks.delete(key)
            wp.deleted(key)
        gone.extend(keys)
    if gone:
        server.touch_watched(gone)
        wp.flush(wrap=False)
    return len(gone)
