"""The node's databases (SELECT n): a Keyspace per database, made on first
use (an empty Keyspace holds 16384 slot dicts: ``databases 16`` would cost
every node ~1 MB and ~80 ms before anyone selects anything).

Iterating yields the databases made so far, in index order (the others
are empty); ``items()`` gives (index, keyspace) pairs."""
from __future__ import annotations

from rcluster.keyspace import Keyspace


class Databases:
    __slots__ = ("count", "made", "on_made")

    def __init__(self, count: int, on_made=None):
        self.count = max(1, count)
        self.made: dict = {0: Keyspace()}
        # Called with each keyspace made after the first (hooks, LFU...).
        self.on_made = on_made

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Keyspace:
        ks = self.made.get(index)
        if ks is None:
            if not 0 <= index < self.count:
                raise IndexError(index)
            ks = self.made[index] = Keyspace()
            first = self.made[0]
            ks.same_time(first)
            ks.on_expire = first.on_expire
            ks.on_new = first.on_new
            ks.track = first.track      # access times (eviction.py)
            ks.staged = first.staged    # one set for the node
            if first.lfu is not None:
                lfu = first.lfu
                ks.lfu = lfu.__class__(ks, lfu.log_factor, lfu.decay_time)
            if self.on_made is not None:
                self.on_made(ks)
        return ks

    def __setitem__(self, index: int, ks: Keyspace):
        self.made[index] = ks

    def __iter__(self):
        made = self.made
        return iter([made[i] for i in sorted(made)])

    def items(self):
        made = self.made
        return [(i, made[i]) for i in sorted(made)]

    def swap(self, a: int, b: int):
        ka, kb = self[a], self[b]
        self.made[a], self.made[b] = kb, ka
