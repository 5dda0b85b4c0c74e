"""maxmemory and eviction (Redis's evict.c), sans-IO.

``Evictor.before_command`` is Redis's processCommand step: with
``maxmemory`` set, a command first runs ``perform`` (evict until the
estimate, see memory.py, is under the limit), and a ``denyoom`` command
(or anything queued in MULTI) is refused with -OOM when nothing more can
be evicted.  ``Server.refresh_gates`` sends commands through the checked
path, where this runs, only while the evictor is ``gated``: from 90% of
maxmemory up, and after a batch of evictions only once a write crosses
maxmemory again (``arm``); with maxmemory unset the fast path pays
nothing.

Victims are chosen as Redis does: ``maxmemory-samples`` keys are sampled
per eviction (all keys, or keys with a TTL for volatile-*), scored (the
lower the better: last access time for LRU, decayed counter for LFU,
deadline for volatile-ttl) and merged into an eviction pool of 16 best
candidates; the best goes,
unless it was deleted or accessed since it was scored.  Sampling all
keys takes runs of consecutive slots from random ones (dictGetSomeKeys
with the slots as buckets); sampling TTL keys picks random entries of
the expiry heap (``Keyspace._heap``).

Evictions come in batches (``Evictor.batch``): when a command finds the
estimate over maxmemory, room is made for it and ``slack`` bytes more
(~1/1000 of maxmemory, at most 64 KiB), n keys' worth, with n rounds of
Redis's sampling done at once (n * maxmemory-samples keys, the n best
go, the next 16 stay as the pool).  Under a stream of writes the next
commands then find room (and take the fast path), instead of each
paying one round.  The estimate is never left over maxmemory by more
than the last command's own writes, as in Redis.

Access metadata is the value of a key's entry in its slot dict
(``Keyspace.slots``), an entry the key has anyway: the last access time
in ms as a float (LRU: ``Keyspace.clock``, one object shared by every key
touched in the same ms, see client.py), or under an LFU policy the packed
``(minutes << 8) | counter`` of Redis's LFU, updated with Redis's
formulas (``LFU``).  Creating a key always records it; reads
and overwrites only while ``Keyspace.track`` is on: under an LRU/LFU
policy, and from the first OBJECT IDLETIME on (so a GET on a node without
such a policy pays one attribute test).  Until then OBJECT IDLETIME
counts from the key's creation (or RESTORE ... IDLETIME).

A batch's victims go CHUNK at a time through ``Keyspace.evict_keys``
(delete's bookkeeping inlined, no call per key).  Eviction is bounded per
call by ``maxmemory-eviction-tenacity`` (Redis's evictionTimeLimitUs),
checked between chunks; past it, if the estimate is still over maxmemory,
the rest continues on later reactor turns (``clock.callLater(0)``, Redis's
evictionTimeProc) and commands still run meanwhile (once under it, the
batch just ends: the slack is ours, not Redis's target).  Each eviction
counts in ``evicted_keys``, is propagated as DEL (UNLINK with
lazyfree-lazy-eviction), touches WATCHers and raises the ``evicted``
keyspace event.
"""
from __future__ import annotations

import heapq
import random
from binascii import crc_hqx
from itertools import chain, islice
from operator import itemgetter
from time import perf_counter

from rcluster.cluster.keyslot import keyslot
from rcluster.logs import logger
from rcluster.memory import (STARTUP, abort_client, client_buffers,
                             client_memory, keyspaces)
from rcluster.notify import EVICTED, notify
from rcluster.resp.codec import Error

log = logger()

OOM = Error("OOM command not allowed when used memory > 'maxmemory'.")
LFU_INIT_VAL = 5
POOL_SIZE = 16
# LRU scoring estimates its cut from every PROBE-th sample (_scored).
PROBE = 4
INF = float("inf")
EVICT_OK, EVICT_RUNNING, EVICT_FAIL = 0, 1, 2
SLOTS = 16384
GATE_AT = 0.9
NO_LIMIT = 1 << 62
# Sampling for a batch of evictions: runs of about RUN keys (sample_many);
# at most BATCH_MAX evictions per batch.
RUN = 32
BATCH_MAX = 128
# Candidates evicted at once (Keyspace.evict_keys) between two checks of
# the time limit (maxmemory-eviction-tenacity): Redis checks every 16.
CHUNK = 16
# Eviction makes room down to maxmemory minus 1/1024 (>> SLACK_SHIFT) of
# the room above memory.STARTUP, at most SLACK_MAX (Evictor.configure).
SLACK_SHIFT = 10
SLACK_MAX = 64 * 1024
# After a batch of at least this many evictions, commands take the fast
# path until the next write crosses maxmemory (Evictor.before_command):
# re-arming once costs about what the checked path costs a command or two,
# so a batch of a few keys (big values, a small maxmemory) pays for it.
UNGATE_AFTER = 4
_MULTI_ALLOWED = frozenset(("exec", "discard", "quit", "reset"))


# -- LFU (Redis's LFULogIncr / LFUDecrAndReturn) ---------------------------

class LFU:
    """Logarithmic access counters with decay, packed as
    ``(minutes & 0xffff) << 8 | counter`` per key."""

    __slots__ = ("keyspace", "log_factor", "decay_time", "random")

    def __init__(self, keyspace, log_factor=10, decay_time=1, rand=None):
        self.keyspace = keyspace
        self.log_factor = log_factor
        self.decay_time = decay_time
        self.random = rand or random.random

    def minutes(self) -> int:
        return _minutes(self.keyspace.now)

    def new(self) -> int:
        return (self.minutes() << 8) | LFU_INIT_VAL

    def elapsed(self, ldt: int) -> int:
        """LFUTimeElapsed: minutes since ldt, across the 16-bit wrap."""
        now = self.minutes()
        return now - ldt if now >= ldt else 65535 - ldt + now

    def decayed(self, packed) -> int:
        """LFUDecrAndReturn: the counter after the decay periods elapsed."""
        return _decayed(packed, self.minutes(), self.decay_time)

    def decayed_many(self, metas) -> list:
        """decayed for many keys (sampling): the clock read once."""
        now, period = self.minutes(), self.decay_time
        return [_decayed(packed, now, period) for packed in metas]

    def log_incr(self, counter: int) -> int:
        if counter == 255:
            return 255
        base = counter - LFU_INIT_VAL
        if base < 0:
            base = 0
        if self.random() < 1.0 / (base * self.log_factor + 1):
            counter += 1
        return counter

    def touch(self, access: dict, key: bytes):
        """updateLFU: decay, then a logarithmic increment."""
        counter = self.log_incr(self.decayed(access.get(key)))
        access[key] = (self.minutes() << 8) | counter

    def packed(self, freq: int) -> int:
        """RESTORE ... FREQ n."""
        return (self.minutes() << 8) | freq


def _minutes(now_ms: int) -> int:
    """LFUGetTimeInMinutes: the LFU clock, 16 bits of minutes."""
    return (now_ms // 60000) & 65535


def _decayed(packed, now: int, period: int) -> int:
    """LFUDecrAndReturn for packed metadata (None: a key without, at
    LFU_INIT_VAL), ``now`` in LFU minutes, ``period`` lfu-decay-time."""
    if packed is None:
        return LFU_INIT_VAL
    counter = packed & 255
    if period:
        ldt = packed >> 8       # LFU.elapsed inlined: a call per key less
        periods = (now - ldt if now >= ldt else 65535 - ldt + now) // period
        if periods:
            return 0 if periods > counter else counter - periods
    return counter


def _reset_metas(ks, meta):
    """Every key's access metadata set to ``meta`` (a policy change
    between LRU and LFU)."""
    for table in ks.slots:
        if table:
            table.update(dict.fromkeys(table, meta))


def time_limit_us(tenacity: int) -> float:
    """evictionTimeLimitUs."""
    if tenacity <= 10:
        return 50.0 * tenacity
    if tenacity < 100:
        return 500.0 * 1.15 ** (tenacity - 10)
    return float("inf")


# -- sampling -----------------------------------------------------------------

def sample_keys(ks, count: int, rand=random.random) -> tuple:
    """Up to ``count`` random keys and their access metadata, as two
    lists: Redis's dictGetSomeKeys, with the hash slots as buckets: from a
    random slot on, the keys of consecutive slots (a random run of a big
    one), one lap at most.  One or two random numbers per call."""
    keys, metas = [], []
    if not ks.count:
        return keys, metas
    slots = ks.slots
    slot = int(rand() * SLOTS)
    # Empty slots are skipped in C (filter), in windows of the slots that
    # should hold ``count`` keys at the average density, growing.
    span = min(count * SLOTS // ks.count + 1, SLOTS)
    walked = 0
    while walked < SLOTS:
        end = slot + span
        part = slots[slot:end]
        if end > SLOTS:
            part += slots[:end - SLOTS]
        for table in filter(None, part):
            want = count - len(keys)
            if len(table) <= want:
                keys += table
                metas += table.values()
            else:
                first = int(rand() * (len(table) - want + 1))
                keys += islice(table, first, first + want)
                metas += islice(table.values(), first, first + want)
            if len(keys) >= count:
                return keys, metas
        walked += span
        slot = end & 16383
        span = min(2 * span, SLOTS - walked)
    return keys, metas


def sample_many(ks, count: int, rand=random.random) -> tuple:
    """About ``count`` random keys and their access metadata (two lists)
    for a batch of evictions: runs of consecutive slots holding about
    ``RUN`` keys each (whole slots), from random slots - sample_keys's
    contiguous buckets, many times over, each run gathered in C.  A key
    may come twice."""
    if count <= RUN:
        return sample_keys(ks, count, rand)
    n = ks.count
    slots = ks.slots
    if n <= count:
        part = list(filter(None, slots))
        return (list(chain.from_iterable(part)),
                list(chain.from_iterable(map(dict.values, part))))
    span = RUN * SLOTS // n + 1
    keys, metas = [], []
    for _ in range(4):
        # The runs still wanted (at span * n / SLOTS keys a run on
        # average), gathered at once (in C).
        runs = -(-(count - len(keys)) * SLOTS // (span * n))
        part = []
        for _ in range(runs):
            start = int(rand() * SLOTS)
            end = start + span
            part += slots[start:end]
            if end > SLOTS:
                part += slots[:end - SLOTS]
        if sum(map(len, part)) > 4 * RUN * runs:
            # Big slots (hash tags): a window in each run instead.
            for _ in range(runs):
                more_keys, more_metas = sample_keys(ks, RUN, rand)
                keys += more_keys
                metas += more_metas
        else:
            # The slot dicts are small: their keys and metadata are read
            # in C from a few cache lines each, no lookup in a big dict.
            keys += chain.from_iterable(part)
            metas += chain.from_iterable(map(dict.values, part))
        if len(keys) >= count:
            return keys, metas
    # Keys gathered in few slots (hash tags): walk to them.
    more_keys, more_metas = sample_keys(ks, count - len(keys), rand)
    return keys + more_keys, metas + more_metas


def sample_volatile(ks, count: int, rand=random.random) -> list:
    """Up to ``count`` random keys with a TTL (from the expiry heap)."""
    heap, expires = ks._heap, ks.expires
    if not expires:
        return []
    if len(heap) > 2 * len(expires) + 16:
        # Mostly stale entries (evicted or changed TTLs): rebuild, as
        # Keyspace.set_expire does.
        heap = ks._heap = [(w, k) for k, w in expires.items()]
        heapq.heapify(heap)
    size = len(heap)
    out = []
    # At least about half the entries are live (the rebuild above).
    for _ in range(4):
        picks = [heap[int(rand() * size)]
                 for _ in range(2 * (count - len(out)) + 8)]
        out += [key for when, key in picks if expires.get(key) == when]
        if len(out) >= count:
            del out[count:]
            break
    return out


# -- the evictor --------------------------------------------------------------

class Evictor:
    def __init__(self, server):
        self.server = server
        # Candidates (score, key, ks, metadata), best first (see batch).
        self.pool: list = []
        self.active = False           # maxmemory set
        self.policy = "noeviction"
        self.maxmemory = 0
        self.client_memory = 0        # normal clients' buffers, from cron
        self.timer_running = False
        self.lfu_mode = False
        self.peak = 0                 # used_memory_peak
        self.evicted_clients = 0
        # Commands take the checked path (where eviction runs) only while
        # used_memory is near maxmemory (GATE_AT of it): see arm().
        self.gated = False
        self.batched = 0              # keys the last perform evicted
        self.several = False          # the last batch spans databases
        # performEvictions failed before the running command (Redis's
        # pre_command_oom_state): scripts refuse denyoom commands then.
        self.oom_at_start = False
        self.oom_error = OOM
        self.configure(refresh=False)
        server.settings.listeners.append(self._setting_changed)

    # -- settings ---------------------------------------------------------
    _WATCHED = frozenset(("maxmemory", "maxmemory-policy", "lfu-log-factor",
                          "lfu-decay-time"))

    def _setting_changed(self, name, value):
        if name in self._WATCHED:
            self.configure()
            self.server.refresh_gates()
            if name == "maxmemory" and self.active:
                used = self.used()
                if used > self.maxmemory:
                    log.warn("WARNING: the new maxmemory value set via CONFIG "
                             "SET ({new}) is smaller than the current memory "
                             "usage ({used}). This will result in key "
                             "eviction and/or the inability to accept new "
                             "write commands depending on the "
                             "maxmemory-policy.", new=self.maxmemory,
                             used=used)
                # updateMaxmemory: start evicting now (evictionTimeProc).
                self._start_timer()

    def configure(self, refresh=True):
        settings = self.server.settings
        self.maxmemory = settings.maxmemory
        self.active = bool(self.maxmemory)
        # Room made beyond the command at hand, so that a stream of writes
        # evicts in batches (see perform) rather than a key per command.
        self.slack = min(max(self.maxmemory - STARTUP, 0) >> SLACK_SHIFT,
                         SLACK_MAX)
        if self.policy != settings.maxmemory_policy:
            self.pool = []
        self.policy = settings.maxmemory_policy
        self.volatile = self.policy.startswith("volatile")
        self.kind = self.policy.rpartition("-")[2]   # lru lfu random ttl
        lfu = self.kind == "lfu"
        for ks in keyspaces(self.server):
            # Reads update access times under LRU/LFU (and, once OBJECT
            # IDLETIME was asked, from then on: see Keyspace.track).
            ks.track = ks.track or self.kind in ("lru", "lfu")
            if lfu:
                if ks.lfu is None:
                    ks.lfu = LFU(ks)
                    _reset_metas(ks, ks.lfu.new())
                ks.lfu.log_factor = settings.lfu_log_factor
                ks.lfu.decay_time = settings.lfu_decay_time
            elif ks.lfu is not None:
                ks.lfu = None
                _reset_metas(ks, ks.clock)
        self.lfu_mode = lfu
        self.arm(refresh)

    def arm(self, refresh=True, threshold=None):
        """Gate (every command through the checked path, where eviction
        and -OOM happen) from ``threshold`` up: GATE_AT of maxmemory (of
        what is above memory.STARTUP), or maxmemory itself after a batch
        of evictions (see before_command); below, each keyspace calls
        ``_near_limit`` when its estimate crosses its share of the room
        left (one int comparison per write), and the cron ungates once
        back below.  Without maxmemory: never gated."""
        dbs = list(keyspaces(self.server))
        if not self.active:
            gated = False
            for ks in dbs:
                ks.limit, ks.on_limit = NO_LIMIT, None
        else:
            if threshold is None:
                # GATE_AT of the room above the fixed startup figure.
                threshold = self.maxmemory - int(
                    (1 - GATE_AT) * max(self.maxmemory - STARTUP, 0))
            used = self.used()
            gated = used >= threshold
            # The room left, shared between the databases (each only
            # sees its own writes).
            share = (threshold - used) // max(len(dbs), 1)
            for ks in dbs:
                ks.on_limit = self._near_limit
                ks.limit = NO_LIMIT if gated else ks.used + share
        if not gated:
            self.oom_at_start = False
        if gated != self.gated:
            self.gated = gated
            if refresh:
                self.server.refresh_gates()

    def _near_limit(self):
        for ks in keyspaces(self.server):
            ks.limit = NO_LIMIT
        if not self.gated:
            self.gated = True
            self.server.refresh_gates()

    # -- figures ----------------------------------------------------------
    def used(self) -> int:
        """The memory compared with maxmemory (replica buffers excluded,
        as Redis's mem_not_counted_for_evict)."""
        total = STARTUP + self.client_memory
        for ks in keyspaces(self.server):
            total += ks.used
        return total

    def cron(self):
        """Refresh the clients' share (O(clients): not per command), and
        evict clients over maxmemory-clients."""
        if self.server.settings.maxmemory_clients:
            self.evict_clients()
        if self.active:
            self.client_memory = client_buffers(self.server)[0]
            self.peak = max(self.peak, self.used())
            if self.used() > self.maxmemory and not self.timer_running:
                self._perform_and_flush()
            self.arm()

    def evict_clients(self) -> int:
        """maxmemory-clients (Redis's evictClients), checked every cron
        (100 ms; Redis checks before each command): while the normal and
        pub/sub clients' memory (query buffer + unsent output, see
        memory.client_memory) is over the limit, the biggest client not
        flagged CLIENT NO-EVICT is closed."""
        server = self.server
        limit = server.settings.maxmemory_clients
        candidates = [(client_memory(c), c) for c in server.clients.values()
                      if c.kind not in ("master", "replica") and
                      not c.closing]
        total = sum(size for size, _ in candidates)
        evicted = 0
        candidates.sort(key=lambda pair: pair[0], reverse=True)
        for size, client in candidates:
            if total <= limit:
                break
            if client.no_evict:
                continue
            from rcluster.commands.clients import info_line
            log.info("Evicting client: {info}",
                     info=info_line(client, server.clock.seconds()),
                     redis_level="verbose")
            abort_client(client)
            total -= size
            evicted += 1
        self.evicted_clients += evicted
        return evicted

    # -- the processCommand step ------------------------------------------
    def before_command(self, c, cmd):
        """None to run the command, or the OOM error to refuse it."""
        if self.perform() != EVICT_FAIL:
            self.oom_at_start = False
            self._flush()
            if self.batched >= UNGATE_AFTER and not self.timer_running:
                # A batch made room for many writes: they take the fast
                # path until one crosses maxmemory again (the keyspace's
                # limit), or the cron regates.
                self.batched = 0
                self.arm(threshold=self.maxmemory)
            return None
        self.oom_at_start = True
        self._flush()
        name = cmd.name
        if "denyoom" in cmd.flags or (
                c.multi is not None and name not in _MULTI_ALLOWED) or (
                name == "exec" and c.multi and
                any("denyoom" in q.flags for q, _ in c.multi)):
            return OOM
        return None

    def _flush(self):
        wp = self.server.write_path
        if wp.pending:
            # Each eviction's DEL goes alone, not wrapped with the command.
            wp.flush(wrap=False)

    def _perform_and_flush(self):
        self.perform()
        self._flush()

    # -- performEvictions -------------------------------------------------
    def safe(self) -> bool:
        """isSafeToPerformEvictions: not while loading or a script runs
        past its time, not on a replica (replica-ignore-maxmemory: it
        mirrors its master, whose DELs come), not during CLIENT PAUSE."""
        server = self.server
        if server.loading or server.scripts.busy is not None:
            return False
        if server.role != "master" and \
                server.settings.replica_ignore_maxmemory:
            return False
        return server.pause_type is None

    def perform(self) -> int:
        """Evict until the estimate is ``slack`` under maxmemory (see
        configure), in batches (``batch``); EVICT_FAIL if it stays over
        maxmemory with nothing left to evict."""
        if not self.maxmemory or not self.safe():
            return EVICT_OK
        over = self.used() - self.maxmemory
        if over <= 0:
            return EVICT_OK
        if self.policy == "noeviction":
            return EVICT_FAIL
        to_free = over + self.slack
        limit = time_limit_us(
            self.server.settings.maxmemory_eviction_tenacity) / 1e6
        start = perf_counter()
        freed = evicted = fruitless = 0
        while freed < to_free:
            batch = self.batch(to_free - freed)
            got = 0
            pos, end = 0, len(batch)
            while pos < end:
                # The next candidates of one database, CHUNK at most:
                # evicted together, the time limit checked after each.
                ks = batch[pos][2]
                stop = pos + CHUNK if pos + CHUNK < end else end
                if self.several:
                    for i in range(pos + 1, stop):
                        if batch[i][2] is not ks:
                            stop = i
                            break
                before = ks.used
                removed, consumed = self._evict_keys(
                    ks, list(map(_KEY, batch[pos:stop])), to_free - freed)
                freed += before - ks.used
                got += len(removed)
                evicted += len(removed)
                if freed >= to_free:
                    # The candidates left become the pool, best first.
                    self._keep(batch[pos + consumed:])
                    break
                pos = stop
                if perf_counter() - start > limit:
                    self._keep(batch[pos:])
                    if freed >= over:
                        # Under maxmemory (Redis's own target): the rest
                        # of the slack is for a later batch.
                        to_free = freed
                        break
                    # Continue on the next reactor turns (evictionTimeProc).
                    self._start_timer()
                    return EVICT_RUNNING
            else:
                self.pool = []
            if not got:
                fruitless += 1
                if not batch or fruitless >= 4:
                    break
        if freed < over:
            return EVICT_FAIL
        self.batched = evicted
        return EVICT_RUNNING if self.timer_running else EVICT_OK

    def _keep(self, rest: list):
        """The candidates a batch left become the pool (its best first)."""
        if self.kind != "random":
            self.pool = rest[:POOL_SIZE]

    def _start_timer(self):
        if not self.timer_running:
            self.timer_running = True
            self.server.clock.callLater(0, self._timer)

    def _timer(self):
        self.timer_running = False
        if self.perform() == EVICT_RUNNING and not self.timer_running:
            self._start_timer()
        self._flush()

    def _evict_keys(self, ks, keys: list, need: int):
        """Keyspace.evict_keys, with Redis's bookkeeping for each victim,
        in its database (made the one in use meanwhile: the DEL is
        propagated under its SELECT, WATCH and events see its number)."""
        server = self.server
        if ks is server.keyspace:
            removed, consumed = ks.evict_keys(keys, need)
            if removed:
                self._evicted(removed, server.cur_db)
            return removed, consumed
        previous = server.cur_db
        index = next(i for i, db in server.dbs.items() if db is ks)
        server.use_db(index)
        try:
            removed, consumed = ks.evict_keys(keys, need)
            if removed:
                self._evicted(removed, index)
        finally:
            server.use_db(previous)
        return removed, consumed

    def _evicted(self, keys: list, index: int):
        """Each eviction counts in evicted_keys, goes out as DEL (UNLINK
        with lazyfree-lazy-eviction), touches WATCHers and raises the
        ``evicted`` event; with no replica, AOF, blocked client, watcher
        or listener, the checks are all there is to it."""
        server = self.server
        server.stats.evicted_keys += len(keys)
        wp = server.write_path
        if wp.active or wp.key_listeners or server.blocking.keys:
            lazy = server.settings.lazyfree_lazy_eviction
            for key in keys:
                wp.deleted(key, lazy)
        if server.watched_keys:
            server.touch_watched(keys)
        if server.notify_flags & EVICTED:
            for key in keys:
                notify(server, EVICTED, b"evicted", key, index)

    def _unchanged(self, candidates: list) -> list:
        """The pool's candidates that still exist (under volatile-*, with
        their TTL) and were not accessed since they were scored: a key
        read since is no longer the best victim (Redis would evict it
        regardless).  A batch's fresh candidates need no check: nothing
        runs between their scoring and their eviction in perform, which
        keeps what a time limit leaves for the next batch (checked here)."""
        if self.kind == "ttl":
            return [c for c in candidates if c[2].expires.get(c[1]) == c[3]]
        # A key's access metadata is in its slot dict (keyspace.py).
        kept = [c for c in candidates if c[2].meta(c[1]) == c[3]]
        if self.volatile:
            return [c for c in kept if c[1] in c[2].expires]
        return kept

    # -- victims -------------------------------------------------------------
    def batch(self, to_free: int) -> list:
        """Candidates ``(score, key, keyspace, metadata)``, best victim
        first, for about as many evictions as ``to_free`` bytes take (at
        the average key size, at most BATCH_MAX).  The pool's candidates
        left from before are checked first (``_unchanged``).

        Redis evicts one key per round: maxmemory-samples keys sampled
        into the pool of 16, the best goes.  A batch of n does the same
        n rounds at once: n * maxmemory-samples keys sampled per database,
        merged with the pool, the n best go first and the next 16 stay as
        the pool.  n is 1 (Redis's round exactly) when one key makes room.
        Under a random policy: n sampled keys, in turn."""
        volatile = self.volatile
        dbs = [ks for ks in keyspaces(self.server)
               if (ks.expires if volatile else ks.count)]
        if not dbs:
            return []
        self.several = len(dbs) > 1
        current = self.server.keyspace
        used = count = 0
        for ks in dbs:
            ks.same_time(current)
            used += ks.used
            count += ks.count
        n = -(-to_free * count // used) if used > 0 else 1
        n = 1 if n < 1 else BATCH_MAX if n > BATCH_MAX else n
        if self.kind == "random":
            ks = random.choice(dbs)
            keys = sample_volatile(ks, n) if volatile else \
                sample_many(ks, n)[0]
            return [(0, key, ks, None) for key in keys]
        samples = n * self.server.settings.maxmemory_samples
        if self.pool:
            self.pool = self._unchanged(self.pool)
        for ks in dbs:
            self.populate(ks, samples, volatile, n + POOL_SIZE)
        batch = self.pool
        self.pool = []
        return batch

    def populate(self, ks, samples: int, volatile: bool,
                 keep: int = POOL_SIZE):
        """evictionPoolPopulate: score ``samples`` sampled keys into the
        pool, which keeps its ``keep`` best, best first."""
        if volatile:
            keys = sample_volatile(ks, samples)
            metas = None if self.kind == "ttl" else \
                _metas(ks, keys, ks.clock if self.kind == "lru" else None)
        else:
            keys, metas = sample_many(ks, samples)
        pool = self.pool
        pool += self._scored(ks, keys, metas, keep)
        pool.sort(key=_SCORE)
        del pool[keep:]

    def _scored(self, ks, keys, metas, keep: int) -> list:
        """The ``keep`` best of keys (``metas``: their access metadata) as
        (score, key, ks, metadata): the lower the score, the better a
        victim.  LRU: the last access time (the oldest is idle the
        longest); LFU: the decayed counter; volatile-ttl: the deadline.
        The metadata (access time, packed LFU counter, deadline) tells
        later whether the key was touched meanwhile."""
        kind = self.kind
        if kind == "lru":
            # Tuples only for the samples up to a cut at or past the
            # keep-th oldest: populate sorts them and keeps ``keep``, so
            # the cut may overshoot (ties, an estimate).  It is estimated
            # from every PROBE-th sample, a little beyond the keep-th (a
            # sort of plain floats, a quarter of them: the sorting was 4%
            # of an evicting SET's instructions), and found exactly in
            # the rare case that leaves fewer than keep.  (Picking the
            # tuples in C, compress(..., map(cut.__ge__, times)), costs
            # more: a method-wrapper call per sample.)
            times = metas
            if len(times) <= keep:
                return _accessed_by(ks, keys, times, INF)
            probe = sorted(times[::PROBE])
            best = _accessed_by(ks, keys, times, probe[
                min((keep + keep // 4) // PROBE + 1, len(probe) - 1)])
            if len(best) < keep:
                best = _accessed_by(ks, keys, times, sorted(times)[keep - 1])
            return best
        if kind == "lfu":
            return [(c, k, ks, a) for c, k, a in
                    zip(ks.lfu.decayed_many(metas), keys, metas)]
        get = ks.expires.get      # volatile-ttl: the soonest deadline first
        return [(w, k, ks, w) for k in keys if (w := get(k)) is not None]


def _accessed_by(ks, keys: list, times: list, cut: float) -> list:
    """LRU candidates (score, key, ks, metadata) of the keys last accessed
    at ``cut`` or before: the access time is both score and metadata."""
    return [(t, k, ks, t) for t, k in zip(times, keys) if t <= cut]


def _metas(ks, keys: list, default) -> list:
    """The access metadata of keys, from their slot dicts (``default``
    for a key gone)."""
    slots = ks.slots
    return [slots[keyslot(key) if 123 in key else crc_hqx(key, 0) & 16383]
            .get(key, default) for key in keys]


_SCORE, _KEY = itemgetter(0), itemgetter(1)


# -- OBJECT IDLETIME / FREQ, RESTORE IDLETIME / FREQ ----------------------

def idle_ms(ks, key: bytes) -> int:
    return _idle_ms(ks.meta(key), ks.clock)


def _idle_ms(meta, clock: float) -> int:
    """The ms since an LRU access time (0 for a key without)."""
    return 0 if meta is None else max(int(clock - meta), 0)


def frequency(ks, key: bytes) -> int:
    lfu = ks.lfu
    if lfu is None:
        return LFU_INIT_VAL
    return lfu.decayed(ks.meta(key))


def saved_access(server):
    """What an RDB saves of each key's access metadata under the policy in
    force (rdbSaveKeyValuePair), as a function of the metadata giving
    ``(idle seconds, counter)``: the idle time under an LRU policy, the
    decayed counter under LFU, measured at this instant; None under the
    other policies, which save neither."""
    settings = server.settings
    kind = settings.maxmemory_policy.rpartition("-")[2]
    ks = server.keyspace
    if kind == "lru":
        clock = ks.clock
        return lambda meta: (_idle_ms(meta, clock) // 1000, None)
    if kind == "lfu":
        minutes, period = _minutes(ks.now), settings.lfu_decay_time
        return lambda meta: (None, _decayed(meta, minutes, period))
    return None


def set_access(ks, key: bytes, idle_seconds=None, freq=None):
    """objectSetLRUOrLFU: RESTORE's IDLETIME (under LRU) / FREQ (LFU)."""
    if ks.lfu is not None:
        if freq is not None:
            ks.set_meta(key, ks.lfu.packed(freq))
    elif idle_seconds is not None:
        ks.set_meta(key, ks.clock - idle_seconds * 1000)
