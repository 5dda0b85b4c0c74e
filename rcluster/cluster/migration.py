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
from collections import deque

import hiredis
from twisted.internet import protocol

from rcluster.blocking import BLOCKED
from rcluster.cluster.keyslot import keyslot
from rcluster.logs import logger
from rcluster.persistence.rdb import RdbError, dump_payload
from rcluster.resp.codec import OK, Error, Status, encode, new_reader
from rcluster.zset import ZSet

log = logger("rcluster.migration")

CACHE_ITEMS = 64          # MIGRATE_SOCKET_CACHE_ITEMS
CACHE_TTL = 10            # MIGRATE_SOCKET_CACHE_TTL, seconds
CHUNK_ELEMENTS = 1024     # elements per slice of a big collection
SLICE_BYTES = 64 * 1024   # bytes written per reactor turn
NOKEY = Status("NOKEY")
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

    def connectionMade(self):
        try:
            self.transport.setTcpNoDelay(True)
        except Exception:           # pragma: no cover - not a TCP transport
            pass
        self.factory.connected(self)

    def send(self, argvs, callbacks):
        self.waiting.extend(callbacks)
        self.transport.write(b"".join(encode(list(a)) for a in argvs))

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
        items = list(value.items())
        first = dict(items[:n])

        def rest():
            for part in _chunks(items[n:], n):
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
        """Yield ('cmd', argv, key_or_None, last_for_key, barrier)."""
        server = self.server
        ks = server.keyspace
        restore = b"RESTORE-ASKING" if server.cluster_mode else b"RESTORE"
        asking = server.cluster_mode
        if self.password is not None:
            auth = [b"AUTH"]
            if self.username is not None:
                auth.append(self.username)
            auth.append(self.password)
            yield auth, "auth", False
        if self.link.last_dbid != self.dbid:
            yield [b"SELECT", b"%d" % self.dbid], "select", False
        now = server.now_ms()
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
            replace = self.replace or self.resend
            try:
                first, rest = key_commands(key, value, ttl, replace, restore,
                                           server.settings)
            except RdbError as err:
                self.error = self.error or "ERR " + str(err)
                continue
            if rest is None:
                yield first, key, False
                continue
            # Wait for the first slice's reply before appending to it.
            yield first, key, True
            for argv in rest:
                if asking:
                    yield [b"ASKING"], None, False
                yield argv, key, False

    def _send(self):
        self.attempt += 1
        self.replied = 0
        self.error = None
        self.prefix_failed = False
        self.expected = 0
        self.key_pending: dict = {}      # key -> replies still expected
        self.key_failed: set = set()
        self.plan = self._plan()
        self.writing_done = False
        self.waiting_barrier = False
        self._arm_timer()
        self._write_more()

    def _write_more(self):
        if self.done or self.link is None:
            return
        proto = self.link.proto
        if proto is None or proto.lost:
            return
        argvs, callbacks = [], []
        size = 0
        for argv, tag, barrier in self.plan:
            callbacks.append(self._callback(tag))
            argvs.append(argv)
            self.expected += 1
            if isinstance(tag, bytes):
                self.key_pending[tag] = self.key_pending.get(tag, 0) + 1
            size += sum(len(a) for a in argv) + 16
            if barrier:
                self.waiting_barrier = True
                break
            if size >= SLICE_BYTES:
                break
        else:
            self.writing_done = True
        if argvs:
            self.bytes_sent += size
            proto.send(argvs, callbacks)
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

    # -- replies -----------------------------------------------------------
    def _arm_timer(self):
        if self.timer is not None and self.timer.active():
            self.timer.reset(self.timeout)
        else:
            self.timer = self.server.clock.callLater(self.timeout,
                                                     self._timed_out)

    def _timed_out(self):
        self.timer = None
        if self.done:
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
        if tag == "auth" or tag == "select":
            if failed:
                # An AUTH or SELECT error fails every key, as Redis reads it.
                self.prefix_failed = True
                self.link.last_dbid = -1
        elif isinstance(tag, bytes):
            if failed:
                self.key_failed.add(tag)
            left = self.key_pending[tag] - 1
            self.key_pending[tag] = left
            if left == 0 and tag not in self.key_failed and \
                    not self.prefix_failed:
                self.acked.append(tag)
        if self.waiting_barrier and self.expected == 0:
            self.waiting_barrier = False
            if self.error is not None and not self.replace:
                # The first slice was refused (BUSYKEY...): stop here.
                self.plan = iter(())
                self.writing_done = True
            else:
                self._write_more()
                return
        if self.writing_done and self.expected == 0:
            self._replies_done()

    def _socket_error(self, timeout):
        link = self.link
        self.link = None
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
        ks = server.keyspace
        gone = [k for k in keys if ks.delete(k)]
        if not gone:
            return
        wp = server.write_path
        self.m.deleting = True
        try:
            if wp.active:
                wp.pending.append([b"DEL", *gone])
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
        server.write_path.add_key_listener(self._written)

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
        if self.parked and not self.inflight:
            self._unpark()
        elif self.parked:
            self._unpark(only_free=True)

    def _written(self, keys, client):
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

    # -- writes to keys in flight wait -------------------------------------
    def park(self, c, calls) -> bool:
        """True (and the client parked) when one of the calls writes a key
        that is in flight."""
        inflight = self.inflight
        for cmd, argv in calls:
            if "write" not in cmd.flags or cmd.name == "migrate":
                continue
            for key in cmd.write_keys(argv):
                if key in inflight:
                    c.pending.appendleft(argv)
                    c.blocked = "migrate"
                    self.parked.append(c)
                    return True
        return False

    def _unpark(self, only_free=False):
        waiting, self.parked = self.parked, []
        for client in waiting:
            if client.blocked == "migrate" and not client.closed:
                client.blocked = None
                client.resume()

    def cron(self):
        self.cache.close_idle()

    def info(self):
        return [("migrate_cached_sockets", len(self.cache)),
                ("migrate_keys_in_flight", len(self.inflight)),
                ("migrate_keys_migrated", self.keys_migrated)]


def migrations_of(server) -> Migrations:
    m = server.extensions.get("migration")
    if m is None:
        m = server.extensions["migration"] = Migrations(server)
        cron = getattr(server.clock, "callLater", None)
        if cron is not None and hasattr(server.clock, "connectTCP"):
            from twisted.internet.task import LoopingCall
            loop = LoopingCall(m.cron)
            loop.clock = server.clock
            loop.start(1.0, now=False)
            m.loop = loop
    return m

