"""The stream type, sans-IO: entries, IDs, consumer groups, PELs, consumers.

Entries live in a SortedDict keyed by (ms, seq), so ranges, trims and
lookups cost O(log n + k).  Beside them the stream keeps a model of the
listpack nodes Redis 7.0 would hold (``nodes``: master ID -> Node with its
entry counts and byte size), because the observable behaviour of
approximate trimming (``MAXLEN ~``, ``MINID ~``: only whole nodes go) and
XINFO's ``radix-tree-keys`` depend on where Redis cuts nodes
(``stream-node-max-entries`` / ``stream-node-max-bytes``).  Byte sizes are
computed with listpack's element size rules (see ``lp_int_size`` /
``lp_str_size``), so nodes are cut where Redis cuts them.

IDs are (ms, seq) tuples of unsigned 64-bit integers.  Group and consumer
tables are plain dicts, listed in name order (Redis keeps them in radix
trees, which iterate in byte order).
"""
from __future__ import annotations

from sortedcontainers import SortedDict

MAX64 = 2**64 - 1
MIN_ID = (0, 0)
MAX_ID = (MAX64, MAX64)
INVALID_ENTRIES_READ = -1          # Redis's SCG_INVALID_ENTRIES_READ
LISTPACK_MAX_SIZE = (1 << 30)      # STREAM_LISTPACK_MAX_SIZE

# Listpack entry flags (t_stream.c).
FLAG_NONE = 0
FLAG_DELETED = 1
FLAG_SAMEFIELDS = 2


class StreamIDError(ValueError):
    """An argument that is not a valid stream ID."""


# -- IDs ----------------------------------------------------------------------

def format_id(sid) -> bytes:
    return b"%d-%d" % sid


def _string2ll(text: bytes):
    """Redis's string2ll, or None."""
    n = len(text)
    if not 0 < n <= 20:
        return None
    body = text[1:] if text[:1] == b"-" else text
    if not body.isdigit() or not body.isascii() or \
            (body[:1] == b"0" and len(body) > 1) or text == b"-0":
        return None
    value = int(text)
    if not -2**63 <= value < 2**63:
        return None
    return value


def _string2ull(text: bytes):
    """Redis's string2ull: string2ll, else strtoull over the whole text."""
    value = _string2ll(text)
    if value is not None:
        return value if value >= 0 else None
    body = text.lstrip(b" \t\n\v\f\r")
    negative = False
    if body[:1] in (b"+", b"-"):
        negative = body[:1] == b"-"
        body = body[1:]
    if not body or not body.isdigit() or not body.isascii():
        return None
    value = int(body)
    if value > MAX64:
        return None
    return (-value) % 2**64 if negative else value


def parse_id(arg: bytes, missing_seq: int = 0, strict: bool = False,
             seq_star: bool = False):
    """streamGenericParseIDOrReply -> (id, seq_given).

    ``strict`` refuses the bare ``-`` and ``+``; ``seq_star`` accepts
    ``ms-*`` (XADD), reported with seq_given False."""
    if len(arg) > 127:
        raise StreamIDError(arg)
    if arg == b"-" or arg == b"+":
        if strict:
            raise StreamIDError(arg)
        return (MIN_ID if arg == b"-" else MAX_ID), True
    if b"\0" in arg:
        arg = arg.split(b"\0", 1)[0]
    ms_part, dash, seq_part = arg.partition(b"-")
    ms = _string2ull(ms_part)
    if ms is None:
        raise StreamIDError(arg)
    if not dash:
        return (ms, missing_seq), True
    if seq_star and seq_part == b"*":
        return (ms, 0), False
    seq = _string2ull(seq_part)
    if seq is None:
        raise StreamIDError(arg)
    return (ms, seq), True


def incr_id(sid):
    """The next ID, or None past the last possible one."""
    ms, seq = sid
    if seq == MAX64:
        if ms == MAX64:
            return None
        return (ms + 1, 0)
    return (ms, seq + 1)


def decr_id(sid):
    """The previous ID, or None before 0-0."""
    ms, seq = sid
    if seq == 0:
        if ms == 0:
            return None
        return (ms - 1, MAX64)
    return (ms, seq - 1)


# -- listpack sizes (listpack.c) -------------------------------------------

def lp_int_size(value: int) -> int:
    """Bytes of an integer element in a listpack, backlen included."""
    if 0 <= value <= 127:
        return 2
    if -4096 <= value <= 4095:
        return 3
    if -32768 <= value <= 32767:
        return 4
    if -8388608 <= value <= 8388607:
        return 5
    if -2**31 <= value < 2**31:
        return 6
    return 10


def _backlen_size(length: int) -> int:
    if length <= 127:
        return 1
    if length < 16383:
        return 2
    if length < 2097151:
        return 3
    if length < 268435455:
        return 4
    return 5


# First bytes of a string string2ll may read as an integer.
_INT_START = frozenset(b"-0123456789")


def lp_str_size(data: bytes) -> int:
    """Bytes of a string element (integers-as-strings are stored as ints)."""
    n = len(data)
    if n <= 20 and n and data[0] in _INT_START:
        value = _string2ll(data)
        if value is not None:
            return lp_int_size(value)
    if n < 64:
        return n + 2        # 1-byte header, 1-byte backlen
    head = 2 if n < 4096 else 5
    return head + n + _backlen_size(head + n)


def _wrap64(value: int) -> int:
    """An unsigned delta stored as the int64 lpAppendInteger gets."""
    value &= MAX64
    return value - 2**64 if value >= 2**63 else value


def _delta_size(delta: int) -> int:
    """lp_int_size of an ID delta as stored (wrapped to int64)."""
    if 0 <= delta <= 127:
        return 2        # the usual case, spared the calls
    return lp_int_size(_wrap64(delta))


# -- groups -------------------------------------------------------------------

class NACK:
    """A pending entry: delivered, not acknowledged yet."""
    __slots__ = ("delivery_time", "delivery_count", "consumer")

    def __init__(self, consumer, delivery_time: int, delivery_count: int = 1):
        self.consumer = consumer
        self.delivery_time = delivery_time
        self.delivery_count = delivery_count


class Consumer:
    __slots__ = ("name", "seen_time", "pel")

    def __init__(self, name: bytes, seen_time: int):
        self.name = name
        self.seen_time = seen_time
        self.pel = SortedDict()          # id -> NACK (shared with the group)


class Group:
    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id, entries_read: int = INVALID_ENTRIES_READ):
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel = SortedDict()          # id -> NACK
        self.consumers = {}              # name -> Consumer

    def sorted_consumers(self):
        return [self.consumers[name] for name in sorted(self.consumers)]

    def consumer(self, name: bytes, now: int, refresh: bool = True):
        """streamLookupConsumer: the consumer or None (seen time refreshed)."""
        found = self.consumers.get(name)
        if found is not None and refresh:
            found.seen_time = now
        return found

    def create_consumer(self, name: bytes, now: int):
        """streamCreateConsumer: the new consumer, or None if it exists."""
        if name in self.consumers:
            return None
        consumer = self.consumers[name] = Consumer(name, now)
        return consumer

    def delete_consumer(self, consumer) -> int:
        pending = len(consumer.pel)
        for sid in consumer.pel:
            del self.pel[sid]
        del self.consumers[consumer.name]
        return pending

    def ack(self, sid) -> bool:
        nack = self.pel.pop(sid, None)
        if nack is None:
            return False
        if nack.consumer is not None:
            nack.consumer.pel.pop(sid, None)
        return True


# -- nodes --------------------------------------------------------------------

class Node:
    """The shape of one listpack node: what decides where Redis cuts."""
    __slots__ = ("master_id", "last_id", "fields", "valid", "deleted",
                 "body_bytes")

    def __init__(self, master_id, fields):
        self.master_id = master_id
        self.last_id = master_id
        self.fields = tuple(fields)
        self.valid = 0
        self.deleted = 0
        # Header (6) + end byte, num-fields, master fields, terminator 0.
        self.body_bytes = (7 + lp_int_size(len(fields)) + lp_int_size(0) +
                           sum(lp_str_size(f) for f in fields))

    @property
    def lp_bytes(self) -> int:
        valid, deleted = self.valid, self.deleted
        if valid <= 127 and deleted <= 127:
            return self.body_bytes + 4      # two 1-byte ints (lp_int_size)
        return self.body_bytes + lp_int_size(valid) + lp_int_size(deleted)

    def entry_size(self, sid, fields) -> int:
        """Bytes the entry takes in this node's listpack (and its flags)."""
        names = tuple(fields[0::2])
        master = self.master_id
        size = 2 + _delta_size(sid[0] - master[0]) + \
            _delta_size(sid[1] - master[1])
        numfields = len(names)
        if names == self.fields:
            size += sum(map(lp_str_size, fields[1::2]))
            size += lp_int_size(numfields + 3)
        else:
            size += lp_int_size(numfields)
            size += sum(map(lp_str_size, fields))
            size += lp_int_size(numfields * 2 + 4)
        return size

    def copy(self):
        node = Node.__new__(Node)
        node.master_id = self.master_id
        node.last_id = self.last_id
        node.fields = self.fields
        node.valid = self.valid
        node.deleted = self.deleted
        node.body_bytes = self.body_bytes
        return node


# -- the stream ---------------------------------------------------------------

_dict_set = dict.__setitem__


class EntryTable(SortedDict):
    """The entries: a SortedDict with ``append`` for an ID above all the
    others, which is what XADD always adds.  It skips SortedDict's
    membership test and bisection (about 40% of its insert) by appending
    to the last sublist of sortedcontainers 2.x's SortedList (``_lists``,
    ``_maxes``, ``_len``, ``_expand``, as its own ``add`` does; the
    invariants are checked in tests/unit/test_streams.py)."""

    def append(self, key, value):
        keys = self._list
        maxes = keys._maxes
        if not maxes or key <= maxes[-1]:
            self[key] = value
            return
        _dict_set(self, key, value)
        lists = keys._lists
        last = lists[-1]
        last.append(key)
        maxes[-1] = key
        keys._len += 1
        if keys._index or len(last) > keys._load << 1:
            keys._expand(len(lists) - 1)    # split, or the index updated


class Stream:
    TYPE_NAME = "stream"
    encoding = "stream"

    __slots__ = ("entries", "nodes", "last_id", "first_id", "max_deleted_id",
                 "entries_added", "groups", "_tail")

    def __init__(self):
        self.entries = EntryTable()       # (ms, seq) -> (f1, v1, f2, v2...)
        self.nodes = SortedDict()         # master id -> Node
        self.last_id = MIN_ID
        self.first_id = MIN_ID
        self.max_deleted_id = MIN_ID
        self.entries_added = 0
        self.groups = {}                  # name -> Group
        # The last node, as append made it: still the last one while it is
        # in ``nodes`` (nodes are only ever added after it).
        self._tail = None

    def __len__(self):
        return len(self.entries)

    def __bool__(self):
        # A stream is a key even when empty: never dropped for emptiness.
        return True

    # -- copies (COPY) --------------------------------------------------------
    def copy(self) -> "Stream":
        new = Stream()
        new.entries = EntryTable(self.entries)      # values are tuples
        new.nodes = SortedDict((k, n.copy()) for k, n in self.nodes.items())
        new.last_id = self.last_id
        new.first_id = self.first_id
        new.max_deleted_id = self.max_deleted_id
        new.entries_added = self.entries_added
        for name, group in self.groups.items():
            g = new.groups[name] = Group(group.last_id, group.entries_read)
            for cname, consumer in group.consumers.items():
                g.consumers[cname] = Consumer(cname, consumer.seen_time)
            for sid, nack in group.pel.items():
                owner = None
                if nack.consumer is not None:
                    owner = g.consumers[nack.consumer.name]
                copied = NACK(owner, nack.delivery_time, nack.delivery_count)
                g.pel[sid] = copied
                if owner is not None:
                    owner.pel[sid] = copied
        return new

    # -- appending ------------------------------------------------------------
    def next_id(self, now_ms: int):
        """streamNextID: the ID XADD * gives, or None when exhausted."""
        if now_ms > self.last_id[0]:
            return (now_ms, 0)
        return incr_id(self.last_id)

    def append(self, sid, fields, node_max_bytes: int = 4096,
               node_max_entries: int = 100, total: int = None):
        """Add an entry (sid > last_id, checked by the caller); ``total``:
        the byte length of fields, when the caller has it."""
        if total is None:
            total = sum(map(len, fields))
        if node_max_bytes <= 0 or node_max_bytes > LISTPACK_MAX_SIZE:
            node_max_bytes = LISTPACK_MAX_SIZE
        nodes = self.nodes
        node = self._tail
        if node is None or nodes.get(node.master_id) is not node:
            node = nodes.peekitem(-1)[1] if nodes else None
        if node is not None and (
                node.lp_bytes + total >= node_max_bytes or
                (node_max_entries and
                 node.valid + node.deleted >= node_max_entries)):
            node = None
        if node is None:
            node = Node(sid, fields[0::2])
            nodes[sid] = node
        self._tail = node
        node.body_bytes += node.entry_size(sid, fields)
        node.valid += 1
        node.last_id = sid
        self.entries.append(sid, tuple(fields))
        self.entries_added += 1
        self.last_id = sid
        if len(self.entries) == 1:
            self.first_id = sid

    # -- lookups --------------------------------------------------------------
    def _node_index(self, sid) -> int:
        return self.nodes.bisect_right(sid) - 1

    def range(self, start, end, count: int = 0, rev: bool = False):
        """[(id, fields)] for start <= id <= end, at most count (0: all)."""
        if start > end:
            return []
        ids = self.entries.irange(start, end, reverse=rev)
        out = []
        entries = self.entries
        for sid in ids:
            out.append((sid, entries[sid]))
            if count and len(out) >= count:
                break
        return out

    def get(self, sid):
        return self.entries.get(sid)

    def last_valid_id(self):
        if not self.entries:
            return MIN_ID
        return self.entries.peekitem(-1)[0]

    def first_entry_id(self):
        return self.entries.peekitem(0)[0] if self.entries else None

    def first_id_with_tombstones(self):
        """streamGetEdgeID(first, tombstones included): the first node's
        first entry (its master ID), MAX_ID when there is none."""
        if not self.nodes:
            return MAX_ID
        return self.nodes.peekitem(0)[0]

    def _recompute_first(self):
        self.first_id = self.entries.peekitem(0)[0] if self.entries else MIN_ID

    # -- deleting -------------------------------------------------------------
    def delete(self, sid) -> bool:
        """XDEL one ID (tombstone in its node; an emptied node goes)."""
        if sid not in self.entries:
            return False
        del self.entries[sid]
        index = self._node_index(sid)
        key, node = self.nodes.peekitem(index)
        if node.valid == 1:
            del self.nodes[key]
        else:
            node.valid -= 1
            node.deleted += 1
        return True

    def _drop_node(self, key, node):
        entries = self.entries
        following = self.nodes.bisect_right(key)
        stop = self.nodes.keys()[following] if following < len(self.nodes) \
            else None
        ids = list(entries.irange(key, stop, inclusive=(True, False))) \
            if stop is not None else list(entries.irange(key))
        for sid in ids:
            del entries[sid]
        del self.nodes[key]

    def trim(self, maxlen=None, minid=None, approx=False, limit=0) -> int:
        """streamTrim: by MAXLEN (maxlen) or MINID (minid); approx only
        drops whole nodes; limit caps the entries removed (0: none)."""
        deleted = 0
        while self.nodes:
            if maxlen is not None and len(self.entries) <= maxlen:
                break
            key, node = self.nodes.peekitem(0)
            entries = node.valid
            if limit and deleted + entries > limit:
                break
            if maxlen is not None:
                remove = len(self.entries) - entries >= maxlen
            else:
                remove = node.last_id < minid
            if remove:
                self._drop_node(key, node)
                deleted += entries
                continue
            if approx:
                break
            # Mark entries of this node deleted, from its head.
            following = self.nodes.bisect_right(key)
            stop = self.nodes.keys()[following] \
                if following < len(self.nodes) else None
            ids = self.entries.irange(key, stop, inclusive=(True, False)) \
                if stop is not None else self.entries.irange(key)
            doomed = []
            length = len(self.entries)
            for sid in ids:
                if maxlen is not None:
                    if length - len(doomed) <= maxlen:
                        break
                elif sid >= minid:
                    break
                doomed.append(sid)
            for sid in doomed:
                del self.entries[sid]
            node.valid -= len(doomed)
            node.deleted += len(doomed)
            deleted += len(doomed)
            break
        if not self.entries:
            self.first_id = MIN_ID
        elif deleted:
            self._recompute_first()
        return deleted

    # -- consumer-group arithmetic --------------------------------------------
    def range_has_tombstones(self, start=None, end=None) -> bool:
        if not self.entries or self.max_deleted_id == MIN_ID:
            return False
        if self.first_id > self.max_deleted_id:
            return False
        start = start if start is not None else MIN_ID
        end = end if end is not None else MAX_ID
        return start <= self.max_deleted_id <= end

    def estimate_distance(self, sid) -> int:
        """streamEstimateDistanceFromFirstEverEntry."""
        if not self.entries_added:
            return 0
        if not self.entries and sid <= self.last_id:
            return self.entries_added
        if sid == self.last_id:
            return self.entries_added
        if sid > self.last_id:
            return INVALID_ENTRIES_READ
        if self.max_deleted_id == MIN_ID or \
                self.max_deleted_id < self.first_id:
            if sid < self.first_id:
                return self.entries_added - len(self.entries)
            if sid == self.first_id:
                return self.entries_added - len(self.entries) + 1
        return INVALID_ENTRIES_READ

    def lag(self, group):
        """streamReplyWithCGLag: the group's lag, or None if unknown."""
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and \
                not self.range_has_tombstones(group.last_id, None):
            return self.entries_added - group.entries_read
        read = self.estimate_distance(group.last_id)
        if read != INVALID_ENTRIES_READ:
            return self.entries_added - read
        return None

    def deliver(self, group, sid):
        """Advance a group past sid when it is new (streamReplyWithRange):
        True if last_id moved."""
        if sid <= group.last_id:
            return False
        if group.entries_read != INVALID_ENTRIES_READ and \
                not self.range_has_tombstones(sid, None):
            group.entries_read += 1
        elif self.entries_added:
            group.entries_read = self.estimate_distance(sid)
        group.last_id = sid
        return True

    def sorted_groups(self):
        return [(name, self.groups[name]) for name in sorted(self.groups)]
