"""The stream value in RDB files and DUMP payloads (Redis 7.0's
``RDB_TYPE_STREAM_LISTPACKS_2`` = 19; ``RDB_TYPE_STREAM_LISTPACKS`` = 15
is read too).  Registers itself with rcluster/persistence/rdb.py.

Layout (rdb.c rdbSaveObject / rdbLoadObject, t_stream.c):

    len(nodes), then per node: string(16-byte big-endian master ID),
                               string(listpack)
    len(length), len(last ms), len(last seq),
    [v2] len(first ms), len(first seq), len(max deleted ms),
         len(max deleted seq), len(entries added)
    len(groups), per group (name order):
        string(name), len(last ms), len(last seq),
        [v2] len(entries read, -1 as 2**64-1)
        len(PEL), per NACK: 16-byte ID, 8-byte LE delivery ms, len(count)
        len(consumers), per consumer: string(name), 8-byte LE seen ms,
            len(PEL), per entry: 16-byte ID (found in the group's PEL)

A node's listpack: the master entry ``count deleted num-fields field...
0``, then per entry ``flags ms-delta seq-delta [num-fields] [field] value
... lp-count`` (fields left out when flags has SAMEFIELDS).  Entries are
written live only (tombstones are not kept): each node is written with
its live entries, ``deleted`` 0.  Everything read is checked: IDs
increasing and inside their node, counts, lp-counts, PEL references.
"""
from __future__ import annotations

from rcluster.persistence.rdb import (
    TYPE_STREAM_LISTPACKS, TYPE_STREAM_LISTPACKS_2, RdbError, encode_length,
    listpack_entries, listpack_from_entries, lp_entry, lp_int_entry,
    register_decoder, register_encoder)
from rcluster.types.stream import (
    FLAG_DELETED, FLAG_SAMEFIELDS, INVALID_ENTRIES_READ, MAX64, MIN_ID, NACK,
    Consumer, Group, Node, Stream, lp_int_size)

_CORRUPT = "Stream listpack integrity check failed."


def _raw_id(sid) -> bytes:
    return sid[0].to_bytes(8, "big") + sid[1].to_bytes(8, "big")


def _id_from_raw(raw: bytes):
    if len(raw) != 16:
        raise RdbError("Stream node key entry is not the size of a stream ID")
    return (int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big"))


def _int64(value: int) -> int:
    """A delta as listpacks hold it (int64)."""
    value &= MAX64
    return value - 2**64 if value >= 2**63 else value


# -- encoding -----------------------------------------------------------------

def node_listpack(stream: Stream, master_id, node) -> bytes:
    """The listpack of one node, its live entries only."""
    fields = node.fields
    nodes = stream.nodes
    following = nodes.bisect_right(master_id)
    if following < len(nodes):
        ids = stream.entries.irange(master_id, nodes.keys()[following],
                                    inclusive=(True, False))
    else:
        ids = stream.entries.irange(master_id)
    body = []
    live = 0
    mms, mseq = master_id
    for sid in ids:
        values = stream.entries[sid]
        names = values[0::2]
        same = tuple(names) == fields
        body.append(lp_int_entry(FLAG_SAMEFIELDS if same else 0))
        body.append(lp_int_entry(_int64(sid[0] - mms)))
        body.append(lp_int_entry(_int64(sid[1] - mseq)))
        if same:
            body.extend(lp_entry(v) for v in values[1::2])
            body.append(lp_int_entry(len(names) + 3))
        else:
            body.append(lp_int_entry(len(names)))
            body.extend(lp_entry(v) for v in values)
            body.append(lp_int_entry(len(names) * 2 + 4))
        live += 1
    head = [lp_int_entry(live), lp_int_entry(0), lp_int_entry(len(fields))]
    head.extend(lp_entry(f) for f in fields)
    head.append(lp_int_entry(0))
    return listpack_from_entries(head + body)


def encode_stream(stream: Stream, enc):
    parts = [encode_length(len(stream.nodes))]
    for master_id, node in stream.nodes.items():
        parts.append(enc.string(_raw_id(master_id)))
        parts.append(enc.string(node_listpack(stream, master_id, node)))
    length = encode_length
    parts += [length(len(stream)), length(stream.last_id[0]),
              length(stream.last_id[1]), length(stream.first_id[0]),
              length(stream.first_id[1]), length(stream.max_deleted_id[0]),
              length(stream.max_deleted_id[1]),
              length(stream.entries_added), length(len(stream.groups))]
    for name, group in stream.sorted_groups():
        parts += [enc.string(name), length(group.last_id[0]),
                  length(group.last_id[1]),
                  length(group.entries_read & MAX64),
                  length(len(group.pel))]
        for sid, nack in group.pel.items():
            parts += [_raw_id(sid),
                      (nack.delivery_time & MAX64).to_bytes(8, "little"),
                      length(nack.delivery_count & MAX64)]
        consumers = group.sorted_consumers()
        parts.append(length(len(consumers)))
        for consumer in consumers:
            parts += [enc.string(consumer.name),
                      (consumer.seen_time & MAX64).to_bytes(8, "little"),
                      length(len(consumer.pel))]
            parts.extend(_raw_id(sid) for sid in consumer.pel)
    return TYPE_STREAM_LISTPACKS_2, b"".join(parts)


# -- decoding -----------------------------------------------------------------

def _as_bytes(item) -> bytes:
    return b"%d" % item if item.__class__ is int else item


def _as_int(item) -> int:
    if item.__class__ is not int:
        raise RdbError(_CORRUPT)
    return item


def load_node(stream: Stream, master_id, blob: bytes, previous):
    """Add one node's entries; returns the node's last ID (tombstones
    included) for the ordering check."""
    items = listpack_entries(blob)
    if not items:
        raise RdbError("Empty listpack inside stream")
    try:
        valid = _as_int(items[0])
        deleted = _as_int(items[1])
        nfields = _as_int(items[2])
        if nfields < 0 or 3 + nfields >= len(items):
            raise RdbError(_CORRUPT)
        fields = tuple(_as_bytes(x) for x in items[3:3 + nfields])
        if items[3 + nfields] != 0:
            raise RdbError(_CORRUPT)
        p = 4 + nfields
        node = Node(master_id, fields)
        node.valid = valid
        node.deleted = deleted
        node.body_bytes = len(blob) - lp_int_size(valid) - \
            lp_int_size(deleted)
        seen_valid = seen_deleted = 0
        last = previous
        n = len(items)
        while p < n:
            start = p
            flags = _as_int(items[p])
            sid = ((master_id[0] + _as_int(items[p + 1])) & MAX64,
                   (master_id[1] + _as_int(items[p + 2])) & MAX64)
            p += 3
            if flags & FLAG_SAMEFIELDS:
                names = fields
                values = items[p:p + nfields]
                p += nfields
                if len(values) != nfields:
                    raise RdbError(_CORRUPT)
                pairs = []
                for name, value in zip(names, values):
                    pairs += [name, _as_bytes(value)]
            else:
                count = _as_int(items[p])
                p += 1
                if count < 0 or p + 2 * count > n:
                    raise RdbError(_CORRUPT)
                pairs = [_as_bytes(x) for x in items[p:p + 2 * count]]
                p += 2 * count
            if p >= n or _as_int(items[p]) != p - start:
                raise RdbError(_CORRUPT)
            p += 1
            if not pairs or (last is not None and sid <= last) or \
                    sid < master_id:
                raise RdbError(_CORRUPT)
            last = sid
            if flags & FLAG_DELETED:
                seen_deleted += 1
            else:
                seen_valid += 1
                stream.entries.append(sid, tuple(pairs))
        if seen_valid != valid or seen_deleted != deleted or not seen_valid:
            raise RdbError(_CORRUPT)
    except IndexError:
        raise RdbError(_CORRUPT) from None
    node.last_id = last
    stream.nodes[master_id] = node
    return last


def decode_stream(cur, rdb_type, settings=None) -> Stream:
    stream = Stream()
    previous = None
    for _ in range(cur.length()):
        master_id = _id_from_raw(cur.string())
        if previous is not None and master_id <= previous:
            raise RdbError("Listpack re-added with existing key")
        previous = load_node(stream, master_id, cur.string(), previous)
    length = cur.length()
    stream.last_id = (cur.length(), cur.length())
    if rdb_type == TYPE_STREAM_LISTPACKS_2:
        stream.first_id = (cur.length(), cur.length())
        stream.max_deleted_id = (cur.length(), cur.length())
        stream.entries_added = cur.length()
    else:
        stream.entries_added = length
        stream.first_id = stream.first_entry_id() or MIN_ID
    if length != len(stream.entries) or (
            stream.entries and stream.last_id < stream.last_valid_id()):
        raise RdbError("Stream length inconsistent with rax entries")
    for _ in range(cur.length()):
        name = cur.string()
        last_id = (cur.length(), cur.length())
        if rdb_type == TYPE_STREAM_LISTPACKS_2:
            entries_read = cur.length()
            if entries_read >= 2**63:
                entries_read -= 2**64
            if entries_read < INVALID_ENTRIES_READ:
                raise RdbError("Stream cgroup offset loading failed.")
        else:
            entries_read = stream.estimate_distance(last_id)
        if name in stream.groups:
            raise RdbError("Duplicated consumer group name")
        group = stream.groups[name] = Group(last_id, entries_read)
        for _ in range(cur.length()):
            sid = _id_from_raw(cur.read(16))
            delivery_time = cur.u64le()
            if delivery_time >= 2**63:
                delivery_time -= 2**64
            count = cur.length()
            if sid in group.pel:
                raise RdbError("Duplicated global PEL entry loading stream "
                               "consumer group")
            group.pel[sid] = NACK(None, delivery_time, count)
        for _ in range(cur.length()):
            cname = cur.string()
            if cname in group.consumers:
                raise RdbError("Duplicate stream consumer detected.")
            seen = cur.u64le()
            if seen >= 2**63:
                seen -= 2**64
            consumer = group.consumers[cname] = Consumer(cname, seen)
            for _ in range(cur.length()):
                sid = _id_from_raw(cur.read(16))
                nack = group.pel.get(sid)
                if nack is None:
                    raise RdbError("Consumer entry not found in group "
                                   "global PEL")
                if nack.consumer is not None:
                    raise RdbError("Duplicated consumer PEL entry loading a "
                                   "stream consumer group")
                nack.consumer = consumer
                consumer.pel[sid] = nack
        for nack in group.pel.values():
            if nack.consumer is None:
                raise RdbError("Stream CG PEL entry without consumer")
    return stream


register_encoder(Stream, encode_stream)
register_decoder(TYPE_STREAM_LISTPACKS, decode_stream)
register_decoder(TYPE_STREAM_LISTPACKS_2, decode_stream)
