"""The keyspace (db 0): values, expiries, and the per-slot key index.

Values live in one dict (``values``: key -> value).  Each key is also in
the dict of its hash slot (``slots[slot]``: key -> access metadata), so
counting or listing the keys of a slot (CLUSTER COUNTKEYSINSLOT,
GETKEYSINSLOT, resharding) costs O(keys in that slot).  The slot dict's
entry is the key's access metadata (eviction.py), which an access had to
store somewhere anyway, so the index costs no extra store per write, and
eviction samples keys with their metadata from a few small dicts.

Values are Python objects by type: ``bytes`` or ``bytearray`` (string; a
bytearray once a command edited it in place, see commands/common.py),
``collections.deque`` (list), ``dict`` (hash), ``set`` (set), ``ZSet``
(sorted set).

Time is a number the server sets (``tick``: ``now``, unix ms) before each
command, as Redis caches its clock per command; nothing here reads a
clock.  Expired keys are removed lazily on access and actively by
``expire_cycle``, which pops due entries from a heap of (deadline, key).
"""
from __future__ import annotations

import heapq
import random
from binascii import crc_hqx

from rcluster.cluster.keyslot import SLOTS, keyslot
from rcluster.memory import (EXPIRE_COST, KEY_COST, KEY_OVERHEAD, LONG_BYTES,
                             SHORT, SHORT_COST, estimate, key_cost,
                             string_cost)

_die = random.random


class Keyspace:
    __slots__ = ("values", "slots", "expires", "now", "clock",
                 "dirty", "on_expire", "_heap", "replica_mode",
                 "before_write", "on_new", "used", "sizes", "lfu", "track",
                 "limit", "on_limit", "staged")

    def __init__(self):
        self.values: dict = {}
        # Access metadata (rcluster/eviction.py), in each key's slot dict:
        # the ``clock`` of the last access (LRU), or with ``lfu`` (an LFU
        # policy) the packed (minutes << 8 | counter); it serves OBJECT
        # IDLETIME / FREQ too.
        self.slots = [{} for _ in range(SLOTS)]
        self.expires: dict = {}     # key -> deadline, unix ms
        self.now = 0            # see tick
        self.clock = 0.0
        # Bumped by every change (Redis's server.dirty): tells the server a
        # command wrote, for WATCH, replication and rdb_changes_since_last_save.
        self.dirty = 0
        # Called with the key each time a key is removed because it expired.
        self.on_expire = None
        self._heap: list = []
        # A replica never expires keys itself: it reports them missing and
        # waits for its master's DEL (Redis's behaviour).
        self.replica_mode = False
        # Slots an atomic move is importing here (cluster/migration.py):
        # their keys expire when the source's DEL comes, as a replica's.
        self.staged: set = set()
        # Called with a slot number (None: every slot) before anything in
        # that slot changes, and with (slot, key) before key's value is
        # changed in place (for_write), while a snapshot runs
        # (persistence/snapshot.py: point-in-time saves without fork);
        # None otherwise.
        self.before_write = None
        # Called with the key when a key is created (the 'new' keyspace
        # event, rcluster/notify.py); None unless that event is enabled.
        self.on_new = None
        # Memory accounting (rcluster/memory.py): the running estimate of
        # every key's footprint, and the estimate stored for each value
        # that is not ``bytes`` (re-estimated by touch).
        self.used = 0
        self.sizes: dict = {}
        self.lfu = None     # an eviction.LFU when an LFU policy is set
        # Reads and overwrites record an access only with ``track`` on (an
        # LRU/LFU policy, or once OBJECT IDLETIME asked): the GET and SET
        # paths pay one attribute test otherwise.  Creating a key always
        # records it.
        self.track = False
        # maxmemory (eviction.py): on_limit() runs when ``used`` grows past
        # ``limit`` (near maxmemory), which sends commands through the
        # checked path where eviction runs; far below it, they don't pay.
        self.limit = 1 << 62
        self.on_limit = None

    def tick(self, ms: int, access_ms: float | None = None):
        """The time of the commands that follow, in unix ms (Redis caches
        its clock per command): ``now`` for expiry, and ``clock``, the same
        instant as a float, which a key's LRU metadata records.  Eviction
        sorts and compares thousands of them: floats take CPython's fast
        paths there, where ints past 2**30 (every ms time) don't.
        ``access_ms``: a different time for ``clock`` (an AOF replays with
        ``now`` 0, so that nothing expires, and real access times)."""
        self.now = ms
        self.clock = float(ms if access_ms is None else access_ms)

    def same_time(self, other: "Keyspace"):
        """Take another keyspace's time (a database coming into use, or
        one made later, has a stale clock)."""
        self.now, self.clock = other.now, other.clock

    # -- reading --------------------------------------------------------
    def lookup(self, key: bytes):
        """The live value of key, or None (expiring it if it is due)."""
        value = self.values.get(key)
        if value is None:
            return None
        if self.expires:
            when = self.expires.get(key)
            if when is not None and when <= self.now:
                if self.replica_mode:
                    # 2: running our master's stream, where keys are never
                    # expired (they go with the master's DEL), as Redis.
                    return value if self.replica_mode == 2 else None
                self._expire(key)
                return None
        if self.track:
            # keyslot() inlined: this is the hottest path of the server.
            if 123 in key:     # a "{": maybe a hash tag (int test: memchr)
                table = self.slots[keyslot(key)]
            else:
                table = self.slots[crc_hqx(key, 0) & 16383]
            if self.lfu is None:
                table[key] = self.clock
            else:
                self.lfu.touch(table, key)
        return value

    def peek(self, key: bytes):
        """lookup without recording an access (Redis's LOOKUP_NOTOUCH:
        OBJECT, TYPE, TTL...)."""
        track, self.track = self.track, False
        try:
            return self.lookup(key)
        finally:
            self.track = track

    def meta(self, key: bytes):
        """key's access metadata (None for a missing key)."""
        return self.slots[keyslot(key)].get(key)

    def set_meta(self, key: bytes, meta):
        table = self.slots[keyslot(key)]
        if key in table:
            table[key] = meta

    def for_write(self, key: bytes):
        """The live value of key, about to be changed in place (or None):
        lookup, after the snapshot hook had its chance to save the value."""
        if self.before_write is not None:
            self.before_write(keyslot(key), key)
        return self.lookup(key)

    def __contains__(self, key: bytes) -> bool:
        return self.lookup(key) is not None

    def __len__(self) -> int:
        """How many keys (expired ones not removed yet included)."""
        return len(self.values)

    count = property(__len__)

    def ttl(self, key: bytes):
        """Milliseconds to live: None for a key without TTL (check
        existence first)."""
        when = self.expires.get(key)
        if when is None:
            return None
        return max(when - self.now, 0)

    def expire_time(self, key: bytes):
        return self.expires.get(key)

    def is_expired(self, key: bytes) -> bool:
        when = self.expires.get(key)
        return when is not None and when <= self.now

    # -- writing --------------------------------------------------------
    def set(self, key: bytes, value, keepttl: bool = False):
        """Store value under key (a new or replaced key)."""
        if 123 in key:     # a "{": maybe a hash tag (int test: memchr)
            slot = keyslot(key)
        else:
            slot = crc_hqx(key, 0) & 16383
        if self.before_write is not None:
            self.before_write(slot)
        values = self.values
        old = values.get(key)
        if value.__class__ is bytes:
            # memory.string_cost, inlined: this is SET's path.
            n = len(value)
            size = SHORT_COST[n] if n < SHORT else n + LONG_BYTES
            stored = None
        else:
            size = stored = estimate(value)
        if old is None:
            if stored is not None:
                self.sizes[key] = stored
            values[key] = value
            self.slots[slot][key] = self.clock if self.lfu is None else \
                self.lfu.new()
            self.dirty += 1
            n = len(key)        # memory.key_cost, inlined
            self.used += size + (KEY_COST[n] if n < SHORT else
                                 KEY_OVERHEAD + n + LONG_BYTES)
            if self.used > self.limit:
                self.on_limit()
            if self.on_new is not None:
                self.on_new(key)
            return
        if old.__class__ is bytes:
            if stored is not None or len(old) != len(value):
                self.used += size - string_cost(old)
        else:
            self.used += size - self.sizes.pop(key, 0)
        if self.used > self.limit:
            self.on_limit()
        if stored is not None:
            self.sizes[key] = stored
        if not keepttl and self.expires and \
                self.expires.pop(key, None) is not None:
            self.used -= EXPIRE_COST
        values[key] = value
        self.dirty += 1
        if self.track and self.lfu is None:
            self.slots[slot][key] = self.clock

    def add(self, key: bytes, value):
        """Store a value under a key known to be absent (fresh containers)."""
        slot = keyslot(key)
        if self.before_write is not None:
            self.before_write(slot)
        self.values[key] = value
        self.slots[slot][key] = self.clock if self.lfu is None else \
            self.lfu.new()
        self.dirty += 1
        size = string_cost(value) if value.__class__ is bytes else \
            estimate(value)
        if value.__class__ is not bytes:
            self.sizes[key] = size
        self.used += key_cost(key) + size
        if self.used > self.limit:
            self.on_limit()
        if self.on_new is not None:
            self.on_new(key)

    def touch(self, key: bytes, changes: int = 1):
        """Record an in-place change of key's value (LPUSH on a list...).

        The change is already made: a command mutating a container in
        place gets it through ``for_write`` (or common.write), which runs
        the snapshot hook first; this call is only a safety net."""
        slot = keyslot(key)
        if self.before_write is not None:
            self.before_write(slot)
        self.dirty += changes
        # Re-estimate the changed value (O(samples), see memory.py): a big
        # container changed by one element is re-estimated on one touch in
        # 16, by a die (the dirty counter would starve a key always touched
        # on the same phase), which bounds the drift to a few elements while
        # sparing ZADD/LPUSH/SADD... on big values the cost.
        value = self.values.get(key)
        if value is not None and value.__class__ is not bytes and (
                changes > 1 or len(value) < 128 or _die() < 0.0625):
            size = estimate(value)
            self.used += size - self.sizes.get(key, 0)
            self.sizes[key] = size
            if self.used > self.limit:
                self.on_limit()

    def grew(self, key: bytes, nbytes: int):
        """touch for a container whose change the caller has costed
        (nbytes more, as memory.estimate counts them): no re-estimate."""
        if self.before_write is not None:
            self.before_write(keyslot(key))
        self.dirty += 1
        self.sizes[key] = self.sizes.get(key, 0) + nbytes
        self.used += nbytes
        if self.used > self.limit:
            self.on_limit()

    def delete(self, key: bytes) -> bool:
        # keyslot() inlined, as in set: DEL, evictions and expiries.
        slot = keyslot(key) if 123 in key else crc_hqx(key, 0) & 16383
        if self.before_write is not None:
            self.before_write(slot)
        value = self.values.pop(key, None)
        if value is None:
            return False
        del self.slots[slot][key]
        self._forget(key, value)
        if self.expires and self.expires.pop(key, None) is not None:
            self.used -= EXPIRE_COST
        self.dirty += 1
        return True

    def evict_keys(self, keys, need: int):
        """Evictions: remove keys in turn (absent ones skipped) until
        ``need`` bytes are freed.  Not a write (dirty is left alone, as
        Redis does); the caller does the DEL/notify bookkeeping.  Returns
        (keys removed, how many of ``keys`` were consumed).  delete and
        _forget inlined: this runs once per evicted key."""
        slots, values, expires, sizes, before_write = (
            self.slots, self.values, self.expires, self.sizes,
            self.before_write)
        used = self.used
        target = used - need
        removed = []
        consumed = 0
        for consumed, key in enumerate(keys, 1):
            slot = keyslot(key) if 123 in key else crc_hqx(key, 0) & 16383
            if before_write is not None:
                before_write(slot)
            value = values.pop(key, None)
            if value is None:
                continue
            del slots[slot][key]
            # key_cost + string_cost (or the stored estimate), inlined.
            if value.__class__ is bytes:
                n = len(value)
                used -= SHORT_COST[n] if n < SHORT else n + LONG_BYTES
            else:
                used -= sizes.pop(key, 0)
            n = len(key)
            used -= KEY_COST[n] if n < SHORT else \
                KEY_OVERHEAD + n + LONG_BYTES
            if expires and expires.pop(key, None) is not None:
                used -= EXPIRE_COST
            removed.append(key)
            if used <= target:
                break
        self.used = used
        return removed, consumed

    def _forget(self, key, value):
        """Memory accounting of a removed key."""
        if value.__class__ is bytes:
            self.used -= key_cost(key) + string_cost(value)
        else:
            self.used -= key_cost(key) + self.sizes.pop(key, 0)

    def set_expire(self, key: bytes, when_ms: int):
        """Give an existing key a deadline (unix ms)."""
        if self.before_write is not None:
            self.before_write(keyslot(key))
        if key not in self.expires:
            self.used += EXPIRE_COST
        self.expires[key] = when_ms
        heap = self._heap
        heapq.heappush(heap, (when_ms, key))
        if len(heap) > 2 * len(self.expires) + 1024:
            # Stale entries (changed or removed TTLs) pile up; rebuild.
            self._heap = [(w, k) for k, w in self.expires.items()]
            heapq.heapify(self._heap)
        self.dirty += 1

    def persist(self, key: bytes) -> bool:
        if self.before_write is not None and key in self.expires:
            self.before_write(keyslot(key))
        if self.expires.pop(key, None) is None:
            return False
        self.used -= EXPIRE_COST
        self.dirty += 1
        return True

    def flush(self) -> int:
        if self.before_write is not None:
            self.before_write(None)
        removed = self.count
        self.values = {}
        self.slots = [{} for _ in range(SLOTS)]
        self.expires = {}
        self._heap = []
        self.used = 0
        self.sizes = {}
        self.dirty += removed
        return removed

    def _expire(self, key, slot=None):
        if slot is None:
            slot = keyslot(key)
        if self.before_write is not None:
            self.before_write(slot)
        value = self.values.pop(key, None)
        self.slots[slot].pop(key, None)
        if value is not None:
            self._forget(key, value)
        if self.expires.pop(key, None) is not None:
            self.used -= EXPIRE_COST
        # Not a write of the running command (Redis leaves server.dirty
        # alone): on_expire does the WATCH and replication bookkeeping.
        if self.on_expire is not None:
            self.on_expire(key)

    def expire_cycle(self, limit: int = 10_000) -> int:
        """Remove up to ``limit`` keys whose deadline has passed."""
        if self.replica_mode:
            return 0
        heap, expires, now = self._heap, self.expires, self.now
        staged, kept = self.staged, []
        removed = 0
        while heap and heap[0][0] <= now and removed < limit:
            when, key = heapq.heappop(heap)
            if expires.get(key) == when:
                slot = keyslot(key)
                if staged and slot in staged:
                    kept.append((when, key))
                    continue
                self._expire(key, slot)
                removed += 1
        for item in kept:
            heapq.heappush(heap, item)
        return removed

    # -- slots and iteration --------------------------------------------
    def count_in_slot(self, slot: int) -> int:
        return len(self.slots[slot])

    def keys_in_slot(self, slot: int, count: int) -> list:
        out = []
        for key in self.slots[slot]:
            if len(out) >= count:
                break
            out.append(key)
        return out

    def delete_slot(self, slot: int) -> int:
        """Drop every key of a slot (CLUSTER DELSLOTS after a reshard...)."""
        if self.before_write is not None:
            self.before_write(slot)
        table = self.slots[slot]
        removed = len(table)
        expires, values = self.expires, self.values
        for key in table:
            self._forget(key, values.pop(key))
            if expires and expires.pop(key, None) is not None:
                self.used -= EXPIRE_COST
        self.slots[slot] = {}
        self.dirty += removed
        return removed

    def iter_keys(self):
        """Every key, expired or not (callers check liveness if needed)."""
        for table in self.slots:
            if table:
                yield from list(table)

    def items(self):
        values = self.values
        for table in self.slots:
            if table:
                yield from list(zip(table, map(values.__getitem__, table)))

    def scan(self, cursor: int, count: int):
        """(next cursor, keys) - the cursor is the next slot to visit.

        Every key present for the whole iteration is returned at least
        once, as SCAN promises; a slot is returned whole.  Empty slots
        cost next to nothing, so they don't count against the budget."""
        slots = self.slots
        out = []
        slot = cursor
        while slot < SLOTS:
            table = slots[slot]
            slot += 1
            if table:
                out.extend(table)
                if len(out) >= count:
                    break
        return (0 if slot >= SLOTS else slot), out

    def random_key(self):
        """A random live key, or None.

        Picks a random non-empty slot, then a random key in it; an expired
        pick is removed by lookup, so the loop ends.  A replica removes
        nothing: it gives up after a bounded number of expired picks."""
        tries = 0
        while self.count:
            start = random.randrange(SLOTS)
            for offset in range(SLOTS):
                table = self.slots[(start + offset) % SLOTS]
                if table:
                    break
            index = random.randrange(len(table))
            for position, key in enumerate(table):
                if position == index:
                    break
            if self.lookup(key) is not None:
                return key
            tries += 1
            if self.replica_mode and tries >= 100:
                return key
        return None
