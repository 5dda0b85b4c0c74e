"""One cluster node as this node sees it (Redis's ``clusterNode``), sans-IO.

Flags are the NODE_* bits of the bus protocol, so a node's flags go on the
wire as they are.  Slots are a 2048-byte bitmap (bit ``j`` of byte
``j >> 3`` is slot ``j``, the wire layout); ``bitmap`` gives it as the
``int`` that :mod:`rcluster.cluster.messages` uses.  Times are unix ms.
"""
from __future__ import annotations

import re
import struct

from rcluster.cluster.messages import (
    NODE_FAIL, NODE_HANDSHAKE, NODE_MASTER, NODE_MIGRATE_TO, NODE_MYSELF,
    NODE_NOADDR, NODE_NOFAILOVER, NODE_PFAIL, NODE_SLAVE, SLOTS)

# The flags CLUSTER NODES shows, in its order (MEET and MIGRATE_TO are
# internal and never shown).
FLAG_NAMES = (
    (NODE_MYSELF, "myself"), (NODE_MASTER, "master"), (NODE_SLAVE, "slave"),
    (NODE_PFAIL, "fail?"), (NODE_FAIL, "fail"), (NODE_HANDSHAKE, "handshake"),
    (NODE_NOADDR, "noaddr"), (NODE_NOFAILOVER, "nofailover"),
)
FLAG_BY_NAME = {name: bit for bit, name in FLAG_NAMES}
FLAG_BY_NAME["noflags"] = 0

_BITMAP_BYTES = SLOTS // 8
# Checked for every name a packet carries: a compiled pattern is cheap.
_NAME = re.compile("[0-9a-z]{40}")
_NAME_BYTES = re.compile(b"[0-9a-z]{40}")


def valid_name(name) -> bool:
    """Redis's verifyClusterNodeId: 40 characters of [a-z0-9]."""
    pattern = _NAME if isinstance(name, str) else _NAME_BYTES
    return pattern.fullmatch(name) is not None


def flags_text(flags: int) -> str:
    """'myself,master' - the flags column of CLUSTER NODES."""
    names = [name for bit, name in FLAG_NAMES if flags & bit]
    return ",".join(names) or "noflags"


class ClusterNode:
    """A node of the cluster.  ``link`` is our outbound bus link to it,
    ``inbound_link`` the one it opened to us (both Link objects or None)."""

    def __init__(self, name: str, flags: int = 0, now: int = 0):
        self.name = name
        self.flags = flags
        self.ctime = now
        self.config_epoch = 0
        self._slots = bytearray(_BITMAP_BYTES)
        self._bitmap = 0          # int view of _slots, kept in step
        self._slot_list = []      # slots as a list, None until recomputed
        self._ranges = []         # slots as (start, end) runs, likewise
        self.numslots = 0
        self.slots_version = 0    # bumped by every change of the slots
        # receive.py: (raw bitmap, shard master, its slots_version) of the
        # last slot claim of this node found equal to our view.
        self.claim_seen = None
        self.replicaof: ClusterNode | None = None
        self.replicas: list = []
        self.ping_sent = 0
        self.pong_received = 0
        self.data_received = 0
        self.fail_time = 0
        self.voted_time = 0
        self.repl_offset = 0
        self.repl_offset_time = 0
        self.orphaned_time = 0
        self.last_in_ping_gossip = 0
        self.reconnect_delay = 0       # ms; grows while connecting fails
        self.next_connect = 0          # no connection attempt before (ms)
        self.cron_seq = 0              # its current entry in the cron heap
        self.fail_reports: dict = {}   # reporting node -> time (ms)
        self.ip = ""
        self.port = 0
        self.cport = 0
        self.pport = 0
        self.hostname = ""
        self.link = None
        self.inbound_link = None

    def __repr__(self):
        return f"<ClusterNode {self.name[:8]} {flags_text(self.flags)}>"

    # -- flags ------------------------------------------------------------
    is_myself = property(lambda self: bool(self.flags & NODE_MYSELF))
    is_master = property(lambda self: bool(self.flags & NODE_MASTER))
    is_replica = property(lambda self: bool(self.flags & NODE_SLAVE))
    in_handshake = property(lambda self: bool(self.flags & NODE_HANDSHAKE))
    has_addr = property(lambda self: not self.flags & NODE_NOADDR)
    timed_out = property(lambda self: bool(self.flags & NODE_PFAIL))
    failed = property(lambda self: bool(self.flags & NODE_FAIL))
    cant_failover = property(lambda self: bool(self.flags & NODE_NOFAILOVER))

    @property
    def master(self):
        """The master of this node's shard: itself, or the node it
        replicates (None for a replica of an unknown master)."""
        return self if self.is_master else self.replicaof

    # -- slots ------------------------------------------------------------
    def has_slot(self, slot: int) -> bool:
        return bool(self._slots[slot >> 3] & (1 << (slot & 7)))

    def set_slot(self, slot: int) -> bool:
        """Set the bit; returns whether it was set before."""
        byte, bit = slot >> 3, 1 << (slot & 7)
        if self._slots[byte] & bit:
            return True
        self._slots[byte] |= bit
        self._slots_changed()
        self.numslots += 1
        return False

    def set_slots(self, slots) -> None:
        """set_slot for many slots, none of them set yet (state.add_slots):
        one change of the derived views instead of one per slot."""
        bits = self._slots
        for slot in slots:
            bits[slot >> 3] |= 1 << (slot & 7)
        self.numslots += len(slots)
        self._slots_changed()

    def clear_slot(self, slot: int) -> bool:
        """Clear the bit; returns whether it was set before."""
        byte, bit = slot >> 3, 1 << (slot & 7)
        if not self._slots[byte] & bit:
            return False
        self._slots[byte] &= ~bit
        self._slots_changed()
        self.numslots -= 1
        return True

    def _slots_changed(self):
        # The derived views are recomputed on demand: slots change rarely,
        # but every packet, CLUSTER NODES and nodes.conf save reads them.
        self._bitmap = self._slot_list = self._ranges = None
        self.slots_version += 1

    @property
    def bitmap(self) -> int:
        """The slots as the wire's int bitmap."""
        if self._bitmap is None:
            self._bitmap = int.from_bytes(self._slots, "little")
        return self._bitmap

    @property
    def slots(self) -> list:
        """The slot numbers this node serves, ascending (shared: don't
        modify it)."""
        if self._slot_list is None:
            self._slot_list = slot_list(self._slots)
        return self._slot_list

    @property
    def slot_ranges(self) -> list:
        """The slots as ascending (start, end) runs (shared, likewise)."""
        if self._ranges is None:
            self._ranges = bitmap_ranges(self._slots)
        return self._ranges

    # -- replicas ---------------------------------------------------------
    def add_replica(self, replica: "ClusterNode") -> bool:
        if replica in self.replicas:
            return False
        self.replicas.append(replica)
        self.flags |= NODE_MIGRATE_TO
        return True

    def remove_replica(self, replica: "ClusterNode") -> bool:
        if replica not in self.replicas:
            return False
        self.replicas.remove(replica)
        if not self.replicas:
            self.flags &= ~NODE_MIGRATE_TO
        return True

    def count_ok_replicas(self) -> int:
        return sum(1 for r in self.replicas if not r.failed)

    # -- failure reports --------------------------------------------------
    def add_failure_report(self, sender: "ClusterNode", now: int) -> bool:
        """Record (or refresh) sender's report; True if it is new."""
        new = sender not in self.fail_reports
        self.fail_reports[sender] = now
        return new

    def cleanup_failure_reports(self, max_age: int, now: int):
        for sender, when in list(self.fail_reports.items()):
            if now - when > max_age:
                del self.fail_reports[sender]

    def del_failure_report(self, sender: "ClusterNode", max_age: int,
                           now: int) -> bool:
        if self.fail_reports.pop(sender, None) is None:
            return False
        self.cleanup_failure_reports(max_age, now)
        return True

    def failure_reports_count(self, max_age: int, now: int) -> int:
        if not self.fail_reports:
            return 0            # the usual case: nothing to expire
        self.cleanup_failure_reports(max_age, now)
        return len(self.fail_reports)


# The bit numbers set in each byte value.
_BITS_OF = [tuple(bit for bit in range(8) if value & (1 << bit))
            for value in range(256)]


def slot_list(bitmap) -> list:
    """Slot numbers set in a 2048-byte bitmap (bytes-like), ascending."""
    out = []
    raw = bytes(bitmap)
    bits_of = _BITS_OF
    # Eight bytes at a time: a node's slots are a few runs, so most
    # words are zero and skipped whole.
    for word_index, word in enumerate(_WORDS.unpack(raw)):
        if word:
            start = word_index << 3
            for byte_index in range(start, start + 8):
                byte = raw[byte_index]
                if byte:
                    base = byte_index << 3
                    out.extend([base + bit for bit in bits_of[byte]])
    return out


_WORDS = struct.Struct("<256Q")


# Each byte value as the 8 slot bits it holds, lowest slot first.
_BYTE_BITS = ["".join("1" if value & (1 << bit) else "0" for bit in range(8))
              for value in range(256)]
_RUN = re.compile("1+")


def bitmap_ranges(bitmap) -> list:
    """[(start, end), ...] runs of the slots set in a 2048-byte bitmap
    (a reshard saves nodes.conf per SETSLOT: this is its hot spot)."""
    value = int.from_bytes(bitmap, "little")
    # A bit at each slot that differs from the one before: run edges.
    edges = value ^ (value << 1)
    if edges.bit_count() <= 64:
        # Few runs (the usual case): walk the edges, lowest first.
        out = []
        while edges:
            low = edges & -edges
            edges ^= low
            end = edges & -edges
            edges ^= end
            out.append((low.bit_length() - 1, end.bit_length() - 2))
        return out
    bits = "".join([_BYTE_BITS[byte] for byte in bitmap])
    return [(m.start(), m.end() - 1) for m in _RUN.finditer(bits)]


def ranges_of(slots) -> list:
    """[(start, end), ...] runs of an ascending list of slots."""
    ranges = []
    for slot in slots:
        if ranges and ranges[-1][1] == slot - 1:
            ranges[-1] = (ranges[-1][0], slot)
        else:
            ranges.append((slot, slot))
    return ranges


def bitmap_slots(bitmap: int) -> list:
    """Slot numbers set in a wire int bitmap, ascending."""
    if bitmap.bit_count() <= 32:
        # Sparse (the slots a claim changes): lowest bits one by one.
        out = []
        while bitmap:
            low = bitmap & -bitmap
            out.append(low.bit_length() - 1)
            bitmap ^= low
        return out
    return slot_list(bitmap.to_bytes(_BITMAP_BYTES, "little"))
