"""Point-in-time snapshots of the keyspace without fork (BGSAVE, SAVE).

Redis forks and lets the kernel's copy-on-write keep the child's view of
memory frozen.  rcluster serializes in the server's own process, a slice
at a time between reactor turns, and keeps the snapshot point-in-time
itself (the idea Dragonfly uses): the keyspace stores one dict per hash
slot and the snapshot walks them in order, so

- a slot the snapshot reaches is serialized *whole*, in one go (keys,
  values and expiries as they are at that moment);
- before anything changes a slot the snapshot has not reached yet, the
  keyspace calls ``before_write(slot)`` (``Keyspace.before_write``, the
  one hook: set/add/delete/expiry/persist/flush/delete_slot); the
  snapshot then *preserves* the slot: a shallow copy of its dict and of
  its keys' expiries (C-level copies, microseconds), which the walk
  serializes later instead of the live dict;
- before a container is changed in place, ``Keyspace.for_write`` (which
  every in-place mutation goes through: common.write, write_or_create...)
  calls ``before_write(slot, key)``; if that value object is held by a
  preserved copy not serialized yet (its own slot's, or another one's
  after a RENAME moved it), that one entry is serialized right away.

So every key is serialized exactly once, as it was when the snapshot
started: the file is the dataset at that instant.  A write costs the
snapshot a slot copy (once per slot) and at most one entry; the extra
memory is the write buffer plus the old values that writes replaced in
preserved slots (kept until their slot is written), much as a forked
child's copy-on-write pages.

FLUSHALL (``before_write(None)``) while a snapshot runs costs nothing:
``Keyspace.flush`` puts a fresh values dict and slot dicts in place, so
the snapshot keeps the old ones (which nothing can reach or change any more) and carries on
without the hook.  The old data stays in memory until the snapshot ends,
as a forked child would keep it.

A slot is serialized in one go however many keys it holds: a dataset
where one hash tag holds most keys makes that one slice long.

The core here is sans-IO: ``Snapshot`` writes through ``out(bytes)`` and
``BackgroundSave`` drives it with an injected clock (``callLater``).
"""
from __future__ import annotations

from time import perf_counter

from rcluster.cluster.keyslot import SLOTS
from rcluster.eviction import saved_access


class _Hooks:
    """The keyspace's ``before_write`` while one or more snapshots run
    (a BGSAVE and an AOF rewrite can overlap)."""

    __slots__ = ("snapshots",)

    def __init__(self):
        self.snapshots = []

    def __call__(self, slot, key=None):
        for snapshot in list(self.snapshots):
            snapshot.before_write(slot, key)


def _attach(keyspace, snapshot):
    hooks = keyspace.before_write
    if hooks is None:
        hooks = keyspace.before_write = _Hooks()
    hooks.snapshots.append(snapshot)


def _detach(keyspace, snapshot):
    hooks = keyspace.before_write
    if hooks is None:
        return
    if snapshot in hooks.snapshots:
        hooks.snapshots.remove(snapshot)
    if not hooks.snapshots:
        keyspace.before_write = None


class Snapshot:
    """One point-in-time serialization of ``keyspace`` in RDB format.

    ``writer`` is an ``RdbWriter``; ``out(data)`` receives the bytes in
    file order.  ``start()`` writes the header and takes the snapshot's
    instant; ``step()`` serializes slots for a bounded time; ``done`` is
    true once the footer is out.  ``access``: what to save of each key's
    access metadata (eviction.saved_access), or None."""

    def __init__(self, keyspace, writer, out, aux=(), functions=(), db=0,
                 part=False, access=None):
        self.keyspace = keyspace
        self.writer = writer
        self.out = out
        self.access = access
        # The database number written before the keys; ``part``: one
        # database of a MultiSnapshot (no header nor footer, and output
        # held back until its turn: ``held`` is a list until then).
        self.db = db
        self.part = part
        self.held = [] if part else None
        if part:
            # Until its turn a part encodes with a copy of the writer, so
            # that the real one (which checksums what it encodes, in
            # order) sees the held bytes when they are emitted.
            self.main_writer = writer
            self.writer = writer.sibling()
        self.aux = aux
        self.functions = functions
        self.slots = None
        self.values = None
        self.expires = None
        self.visited = bytearray(SLOTS)     # 1: the slot is serialized
        # slot -> (dict copy, {key: expiry}, its slot dict's copy: the
        # access metadata, with ``access`` only)
        self.preserved = {}
        self.shared = {}        # id(mutable value in a copy) -> (slot, key)
        self.written = {}       # slot -> keys of its copy already written
        self.cursor = 0
        self.keys_total = 0
        self.keys_saved = 0
        self.bytes_written = 0
        self.started = False
        self.done = False
        self.attached = False

    # -- life cycle -------------------------------------------------------
    def start(self):
        ks = self.keyspace
        # The instant: from now on every slot is saved as it is now.
        self.slots = ks.slots
        self.values = ks.values
        self.expires = ks.expires
        self.keys_total = ks.count
        writer = self.writer
        parts = [] if self.part else [writer.header(self.aux)]
        parts += [writer.function(code) for code in self.functions]
        if ks.count:
            parts.append(writer.select_db(self.db, ks.count,
                                          len(ks.expires)))
        self._emit(b"".join(parts))
        self.started = True
        _attach(ks, self)
        self.attached = True
        if not ks.count:
            self._finish()

    def abort(self):
        """Stop without finishing (the caller drops the output)."""
        self._unhook()
        self.done = True

    def _unhook(self):
        if self.attached:
            _detach(self.keyspace, self)
            self.attached = False

    def _finish(self):
        self._unhook()
        if not self.part:
            self._emit(self.writer.footer())
        self.done = True

    def _emit(self, data: bytes):
        if data:
            self.bytes_written += len(data)
            if self.held is not None:
                self.held.append(data)
            else:
                self.out(data)

    def release(self):
        """A part's turn: what it held back goes out, the rest follows."""
        held, self.held = self.held, None
        self.writer = self.main_writer
        if held:
            data = b"".join(held)
            self.writer.absorb(data)    # the checksum, in file order
            self.out(data)

    # -- the hook -----------------------------------------------------------
    def before_write(self, slot, key=None):
        """Called by the keyspace before slot changes (None: everything is
        about to be dropped); with ``key``, before that key's value is
        changed in place."""
        if slot is None:
            # FLUSHALL: the keyspace gets fresh dicts and ours stay as they
            # are, unreachable by commands: no need to watch any more.
            self._unhook()
            return
        if not self.visited[slot] and slot not in self.preserved:
            self._preserve(slot)
        if key is not None and self.shared:
            value = self.values.get(key)
            if value is not None:
                held = self.shared.pop(id(value), None)
                if held is not None:
                    self._write_early(*held)

    def _preserve(self, slot: int):
        table = self.slots[slot]
        if not table:
            self.visited[slot] = 1      # nothing to save, ever
            return
        copy = dict(zip(table, map(self.values.__getitem__, table)))
        expiries = {}
        if self.expires:
            get_expire = self.expires.get
            for key in copy:
                when = get_expire(key)
                if when is not None:
                    expiries[key] = when
        shared = self.shared
        for key, value in copy.items():
            if value.__class__ is not bytes:      # can change in place
                shared[id(value)] = (slot, key)
        self.preserved[slot] = (copy, expiries,
                                dict(table) if self.access else None)

    def _write_early(self, slot: int, key: bytes):
        """Serialize one key of a preserved slot before its value changes."""
        copy, expiries, metas = self.preserved[slot]
        access = () if metas is None else self.access(metas.get(key))
        self._emit(self.writer.entry(key, copy[key], expiries.get(key),
                                     *access))
        self.written.setdefault(slot, set()).add(key)
        self.keys_saved += 1

    def _save_slot(self, slot: int) -> int:
        self.visited[slot] = 1
        preserved = self.preserved.pop(slot, None)
        if preserved is None:
            keys = metas = self.slots[slot]
            table = dict(zip(keys, map(self.values.__getitem__, keys)))
            get_expire, done = self.expires.get, ()
        else:
            table, expiries, metas = preserved
            get_expire = expiries.get
            done = self.written.pop(slot, ())
            shared = self.shared
            for value in table.values():
                if value.__class__ is not bytes:
                    shared.pop(id(value), None)
        if not table:
            return 0
        entry = self.writer.entry
        access = self.access
        # Two copies of the loop: without access metadata to save (no
        # LRU/LFU policy), a key costs no extra call.
        if access is None:
            self._emit(b"".join([entry(key, value, get_expire(key))
                                 for key, value in table.items()
                                 if key not in done]))
        else:
            get_meta = metas.get
            self._emit(b"".join([entry(key, value, get_expire(key),
                                       *access(get_meta(key)))
                                 for key, value in table.items()
                                 if key not in done]))
        saved = len(table) - len(done)
        self.keys_saved += saved
        return saved

    # -- the walk -------------------------------------------------------------
    def step(self, budget: float = 0.005, max_keys: int | None = None,
             clock=perf_counter) -> int:
        """Serialize slots for about ``budget`` seconds (at least one
        non-empty slot), or until ``max_keys`` keys were saved; returns the
        number of keys saved.  The footer follows the last slot."""
        if self.done:
            return 0
        deadline = clock() + budget
        visited = self.visited
        saved = 0
        slot = self.cursor
        while slot < SLOTS:
            if not visited[slot]:
                saved += self._save_slot(slot)
            slot += 1
            if saved and (clock() >= deadline or
                          (max_keys is not None and saved >= max_keys)):
                break
        self.cursor = slot
        if slot >= SLOTS:
            self._finish()
        return saved

    def run(self):
        """Everything at once (SAVE, SHUTDOWN, DEBUG RELOAD)."""
        if not self.started:
            self.start()
        while not self.done:
            self.step(budget=3600.0)


class MultiSnapshot:
    """A Snapshot of several databases: the header, then each non-empty
    database as a part (its SELECTDB and keys), then the footer.  Every
    part takes its instant at ``start`` (all at once, point-in-time across
    databases); a part whose turn has not come holds what its hook writes
    early, and releases it after its SELECTDB when its turn comes."""

    def __init__(self, dbs, writer, out, aux=(), functions=(), access=None):
        self.writer = writer
        self.out = out
        self.aux = aux
        self.functions = functions
        self.parts = [Snapshot(ks, writer, out, db=index, part=True,
                               access=access)
                      for index, ks in dbs if ks.count]
        self.current = 0
        self.started = False
        self.done = False
        self.footer_bytes = 0
        self.head_bytes = 0

    @property
    def keys_total(self) -> int:
        return sum(p.keys_total for p in self.parts)

    @property
    def keys_saved(self) -> int:
        return sum(p.keys_saved for p in self.parts)

    @property
    def bytes_written(self) -> int:
        return self.head_bytes + self.footer_bytes + \
            sum(p.bytes_written for p in self.parts)

    def start(self):
        writer = self.writer
        head = b"".join([writer.header(self.aux)] +
                        [writer.function(code) for code in self.functions])
        self.head_bytes = len(head)
        self.out(head)
        for part in self.parts:
            part.start()
        self.started = True
        self._advance()

    def _advance(self):
        """Release the current part; move past finished ones."""
        while self.current < len(self.parts):
            part = self.parts[self.current]
            if part.held is not None:
                part.release()
            if not part.done:
                return
            self.current += 1
        self._finish()

    def _finish(self):
        if not self.done:
            footer = self.writer.footer()
            self.footer_bytes = len(footer)
            self.out(footer)
            self.done = True

    def step(self, budget: float = 0.005, max_keys: int | None = None,
             clock=perf_counter) -> int:
        if self.done:
            return 0
        saved = 0
        if self.current < len(self.parts):
            saved = self.parts[self.current].step(budget, max_keys, clock)
        self._advance()
        return saved

    def abort(self):
        for part in self.parts:
            part.abort()
        self.done = True

    def run(self):
        if not self.started:
            self.start()
        while not self.done:
            self.step(budget=3600.0)


def snapshot_of(server, writer, out, aux=(), functions=()):
    """The snapshot of every database of server: a plain Snapshot when only
    db 0 may hold keys, else a MultiSnapshot.  Under an LRU or LFU policy
    each key's idle time or counter goes with it, as Redis saves them."""
    dbs = server.dbs
    made = dbs.items()
    access = saved_access(server)
    if all(not ks.count for index, ks in made if index):
        return Snapshot(dbs[0], writer, out, aux, functions, access=access)
    return MultiSnapshot(made, writer, out, aux, functions, access=access)


class BackgroundSave:
    """Drives a Snapshot across reactor turns: one ``step`` per turn.

    ``key_delay_us`` (rdb-key-save-delay, microseconds per key; negative:
    nanoseconds) spreads the work as Redis's child sleeps after each key,
    without ever sleeping in the reactor: a slice that saved n keys waits
    n * delay before the next one.  ``on_done(error)`` is called once:
    with None when the footer was written, else with the exception.
    ``ready()``, if given, is asked before each slice: False (the output
    is backed up) postpones the slice a little."""

    RETRY = 0.005

    def __init__(self, snapshot, clock, on_done, budget: float = 0.005,
                 key_delay_us: int = 0, ready=None):
        self.ready = ready
        self.snapshot = snapshot
        self.clock = clock
        self.on_done = on_done
        self.budget = budget
        self.key_delay = (key_delay_us / 1e6 if key_delay_us >= 0
                          else -key_delay_us / 1e9)
        self.call = None
        self.finished = False

    def start(self):
        try:
            self.snapshot.start()
        except Exception as err:       # noqa: BLE001 - reported, not raised
            self._end(err)
            return
        self._schedule(0)

    def _schedule(self, delay):
        if self.snapshot.done:
            self._end(None)
        else:
            self.call = self.clock.callLater(delay, self._slice)

    def _slice(self):
        self.call = None
        if self.ready is not None and not self.ready():
            self.call = self.clock.callLater(self.RETRY, self._slice)
            return
        max_keys = None
        if self.key_delay:
            # At most budget's worth of delay per slice (one slot at least).
            max_keys = max(1, int(self.budget / self.key_delay))
        try:
            saved = self.snapshot.step(self.budget, max_keys)
        except Exception as err:       # noqa: BLE001 - reported, not raised
            self.snapshot.abort()
            self._end(err)
            return
        self._schedule(saved * self.key_delay)

    def cancel(self):
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None
        self.snapshot.abort()
        self.finished = True

    def _end(self, error):
        if not self.finished:
            self.finished = True
            self.on_done(error)
