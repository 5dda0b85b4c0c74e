"""maxmemory and eviction (Redis's evict.c), sans-IO.

``Evictor.before_command`` is Redis's processCommand step: with
``maxmemory`` set, every command first runs ``perform`` (evict until the
estimate, see memory.py, is under the limit), and a ``denyoom`` command
(or anything queued in MULTI) is refused with -OOM when nothing more can
be evicted.  With maxmemory set, ``Server.refresh_gates`` sends every
command through the checked path, where this runs; with it unset the fast
path pays nothing.

Victims are chosen as Redis does: ``maxmemory-samples`` keys are sampled
(all keys, or keys with a TTL for volatile-*), scored (idle time for LRU,
255 - decayed counter for LFU, -deadline for volatile-ttl) and merged into
an eviction pool of 16 best candidates; the best still existing goes.
Sampling all keys picks a random slot, then a random key in it; sampling
TTL keys picks random entries of the expiry heap (``Keyspace._heap``).

Access metadata is ``Keyspace.access``: key -> last access time in ms (LRU;
the ``now`` int object is shared by every key touched in a batch, so it
costs a dict entry per key and one store per access), or under an LFU
policy the packed ``(minutes << 8) | counter`` of Redis's LFU, updated
with Redis's formulas (``LFU``).  Creating a key always records it; reads
and overwrites only while ``Keyspace.track`` is on: under an LRU/LFU
policy, and from the first OBJECT IDLETIME on (so a GET on a node without
such a policy pays one attribute test).  Until then OBJECT IDLETIME
counts from the key's creation (or RESTORE ... IDLETIME).

Eviction is bounded per call by ``maxmemory-eviction-tenacity`` (Redis's
evictionTimeLimitUs); past it, the rest continues on later reactor turns
(``clock.callLater(0)``, Redis's evictionTimeProc) and commands still run
meanwhile.  Each eviction counts in ``evicted_keys``, is propagated as DEL
(UNLINK with lazyfree-lazy-eviction), touches WATCHers and raises the
``evicted`` keyspace event.
"""
from __future__ import annotations

import heapq
import random
from bisect import insort
from itertools import islice
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
EVICT_OK, EVICT_RUNNING, EVICT_FAIL = 0, 1, 2
SLOTS = 16384
GATE_AT = 0.9
NO_LIMIT = 1 << 62
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
        return (self.keyspace.now // 60000) & 65535

    def new(self) -> int:
        return (self.minutes() << 8) | LFU_INIT_VAL

    def elapsed(self, ldt: int) -> int:
        now = self.minutes()
        return now - ldt if now >= ldt else 65535 - ldt + now

    def decayed(self, packed) -> int:
        """LFUDecrAndReturn: the counter after the decay periods elapsed."""
        if packed is None:
            return LFU_INIT_VAL
        counter = packed & 255
        periods = self.elapsed(packed >> 8) // self.decay_time \
            if self.decay_time else 0
        if periods:
            return 0 if periods > counter else counter - periods
        return counter

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


def time_limit_us(tenacity: int) -> float:
    """evictionTimeLimitUs."""
    if tenacity <= 10:
        return 50.0 * tenacity
    if tenacity < 100:
        return 500.0 * 1.15 ** (tenacity - 10)
    return float("inf")


# -- sampling -----------------------------------------------------------------

def sample_keys(ks, count: int, rand=random.random) -> list:
    """Up to ``count`` random keys: Redis's dictGetSomeKeys, with the hash
    slots as buckets: from a random slot on, the keys of consecutive
    slots (a random run of a big one), one lap at most.  One or two
    random numbers per call."""
    out = []
    if not ks.count:
        return out
    slots = ks.slots
    slot = int(rand() * SLOTS)
    for _ in range(SLOTS):
        table = slots[slot]
        if table:
            want = count - len(out)
            if len(table) <= want:
                out.extend(table)
            else:
                first = int(rand() * (len(table) - want + 1))
                out.extend(islice(table, first, first + want))
            if len(out) >= count:
                break
        slot = (slot + 1) & 16383
    return out


def sample_volatile(ks, count: int, rand=random.random) -> list:
    """Up to ``count`` random keys with a TTL (from the expiry heap)."""
    out = []
    heap, expires = ks._heap, ks.expires
    if not expires:
        return out
    if len(heap) > 2 * len(expires) + 16:
        # Mostly stale entries (evicted or changed TTLs): rebuild, as
        # Keyspace.set_expire does.
        heap = ks._heap = [(w, k) for k, w in expires.items()]
        heapq.heapify(heap)
    for _ in range(3 * count + 64):
        when, key = heap[int(rand() * len(heap))]
        if expires.get(key) == when:
            out.append(key)
            if len(out) >= count:
                break
    return out


# -- the evictor --------------------------------------------------------------

class Evictor:
    def __init__(self, server):
        self.server = server
        self.pool: list = []          # (score, key) ascending, best last
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
                    init = ks.lfu.new()
                    ks.access = dict.fromkeys(ks.access, init)
                ks.lfu.log_factor = settings.lfu_log_factor
                ks.lfu.decay_time = settings.lfu_decay_time
            elif ks.lfu is not None:
                ks.lfu = None
                ks.access = dict.fromkeys(ks.access, ks.now)
        self.lfu_mode = lfu
        self.arm(refresh)

    def arm(self, refresh=True):
        """Gate (every command through the checked path, where eviction
        and -OOM happen) from GATE_AT of maxmemory up (of what is above
        memory.STARTUP); below, each
        keyspace calls ``_near_limit`` when its estimate crosses its share
        of that threshold (one int comparison per write), and the cron
        ungates once back below.  Without maxmemory: never gated."""
        dbs = list(keyspaces(self.server))
        if not self.active:
            gated = False
            for ks in dbs:
                ks.limit, ks.on_limit = NO_LIMIT, None
        else:
            # GATE_AT of the room above the fixed startup figure.
            threshold = self.maxmemory - int(
                (1 - GATE_AT) * max(self.maxmemory - STARTUP, 0))
            used = self.used()
            gated = used >= threshold
            for ks in dbs:
                ks.on_limit = self._near_limit
                ks.limit = NO_LIMIT if gated else threshold - (used - ks.used)
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
        if not self.maxmemory or not self.safe():
            return EVICT_OK
        to_free = self.used() - self.maxmemory
        if to_free <= 0:
            return EVICT_OK
        if self.policy == "noeviction":
            return EVICT_FAIL
        settings = self.server.settings
        limit = time_limit_us(settings.maxmemory_eviction_tenacity) / 1e6
        start = perf_counter()
        freed = evicted = 0
        while freed < to_free:
            found = self.pick()
            if found is None:
                return EVICT_FAIL
            ks, key = found
            before = ks.used
            self.evict(ks, key)
            freed += before - ks.used
            evicted += 1
            if evicted % 16 == 0 and perf_counter() - start > limit:
                # Continue on the next reactor turns (evictionTimeProc).
                self._start_timer()
                return EVICT_RUNNING
        return EVICT_RUNNING if self.timer_running else EVICT_OK

    def _start_timer(self):
        if not self.timer_running:
            self.timer_running = True
            self.server.clock.callLater(0, self._timer)

    def _timer(self):
        self.timer_running = False
        if self.perform() == EVICT_RUNNING and not self.timer_running:
            self._start_timer()
        self._flush()

    def evict(self, ks, key: bytes):
        """Delete one victim, with Redis's bookkeeping, in its database
        (made the one in use meanwhile: the DEL is propagated under its
        SELECT, WATCH and events see its number)."""
        server = self.server
        previous = index = server.cur_db
        if ks is not server.keyspace:
            index = next(i for i, db in server.dbs.items() if db is ks)
            server.use_db(index)
        try:
            dirty = ks.dirty
            ks.delete(key)
            ks.dirty = dirty      # not a write (Redis leaves dirty alone)
            server.stats.evicted_keys += 1
            server.write_path.deleted(key,
                                      server.settings.lazyfree_lazy_eviction)
            if server.watched_keys:
                server.touch_watched([key])
            if server.notify_flags:
                notify(server, EVICTED, b"evicted", key, index)
        finally:
            if index != previous:
                server.use_db(previous)

    # -- victims -------------------------------------------------------------
    def pick(self):
        """(keyspace, key) of the next victim under the policy, or None."""
        volatile = self.volatile
        dbs = [ks for ks in keyspaces(self.server)
               if (ks.expires if volatile else ks.count)]
        if not dbs:
            return None
        now = self.server.keyspace.now
        for ks in dbs:
            ks.now = now          # a database not in use has a stale clock
        if self.kind == "random":
            ks = random.choice(dbs)
            keys = sample_volatile(ks, 1) if volatile else sample_keys(ks, 1)
            return (ks, keys[0]) if keys else None
        samples = self.server.settings.maxmemory_samples
        for attempt in range(4):
            for ks in dbs:
                self.populate(ks, samples, volatile)
            pool = self.pool
            budget = 2 * POOL_SIZE
            while pool and budget:
                budget -= 1
                score, key, ks = pool.pop()
                if key in (ks.expires if volatile else
                           ks.slots[keyslot(key)]):
                    # A candidate read since it was scored goes back with
                    # its fresh score (Redis would evict it regardless).
                    fresh = self.score(ks, key)
                    if fresh < score and pool and fresh < pool[-1][0]:
                        insort(pool, (fresh, key, ks), key=_score_key)
                        continue
                    return ks, key
        return None

    def score(self, ks, key: bytes):
        """A candidate's score: the higher, the better a victim."""
        kind = self.kind
        if kind == "lru":
            return ks.now - ks.access.get(key, ks.now)
        if kind == "lfu":
            return 255 - ks.lfu.decayed(ks.access.get(key))
        return -ks.expires[key]

    def populate(self, ks, samples: int, volatile: bool):
        """evictionPoolPopulate: score the sampled keys into the pool."""
        keys = sample_volatile(ks, samples) if volatile else \
            sample_keys(ks, samples)
        kind = self.kind
        pool = self.pool
        access = ks.access
        if kind == "lru":
            now = ks.now
            scores = [(now - access.get(k, now), k) for k in keys]
        elif kind == "lfu":
            lfu = ks.lfu
            scores = [(255 - lfu.decayed(access.get(k)), k) for k in keys]
        else:    # volatile-ttl: the sooner the deadline, the better
            expires = ks.expires
            scores = [(-expires[k], k) for k in keys]
        for score, key in scores:
            if len(pool) >= POOL_SIZE and score <= pool[0][0]:
                continue
            insort(pool, (score, key, ks), key=_score_key)
            if len(pool) > POOL_SIZE:
                pool.pop(0)


def _score_key(entry):
    return entry[0]


# -- OBJECT IDLETIME / FREQ, RESTORE IDLETIME / FREQ ----------------------

def idle_ms(ks, key: bytes) -> int:
    when = ks.access.get(key)
    return 0 if when is None else max(ks.now - when, 0)


def frequency(ks, key: bytes) -> int:
    lfu = ks.lfu
    if lfu is None:
        return LFU_INIT_VAL
    return lfu.decayed(ks.access.get(key))


def set_access(ks, key: bytes, idle_seconds=None, freq=None):
    """objectSetLRUOrLFU: RESTORE's IDLETIME (under LRU) / FREQ (LFU)."""
    if ks.lfu is not None:
        if freq is not None:
            ks.access[key] = ks.lfu.packed(freq)
    elif idle_seconds is not None:
        ks.access[key] = ks.now - idle_seconds * 1000
