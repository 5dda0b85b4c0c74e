"""Memory accounting: what each key costs, estimated (Redis's used_memory).

CPython never gives memory back to the system in a way RSS would show, so
``used_memory`` is not RSS: the keyspace keeps a running total of
estimates (``Keyspace.used``), one per key, kept exact to the byte in the
sense that what was added for a key is what is taken away when it goes:

- a ``bytes`` value (immutable: the common SET/GET case) costs
  ``key_cost(key) + string_cost(value)``, recomputed from lengths, so the
  hot path stores nothing extra;
- any other value (containers, ``bytearray`` strings edited in place,
  streams) has its estimate stored in ``Keyspace.sizes`` when it is
  stored, and re-estimated by ``Keyspace.touch`` after an in-place change
  (every family calls it).  ``estimate`` is O(samples), not O(n): the
  container's own table is measured exactly (``sys.getsizeof`` is O(1)),
  its elements as ``len * average of a few samples``, as Redis's MEMORY
  USAGE does with SAMPLES;
- a TTL adds ``EXPIRE_COST`` (the expires dict entry, the deadline int, the
  heap entry).

The constants are CPython 3.11 64-bit object sizes (pymalloc rounds small
blocks to 16 bytes); ``bench/memory_estimate.py`` compares the estimate
with measured RSS growth for 1M keys of each type.

Client output buffers are counted on top (``client_buffers``), as Redis
counts them in used_memory.
"""
from __future__ import annotations

import sys
from collections import deque
from itertools import islice

# A dict entry in a big dict: 24-byte entry + index, at the average load
# factor (measured: 37-52 bytes, 42 at 1M entries).
DICT_ENTRY = 42
SET_ENTRY = 34
# Per key besides its name: its entry in the values dict and in its slot
# dict (which holds its access metadata: LRU clock / LFU counter).
KEY_OVERHEAD = 2 * DICT_ENTRY
# A TTL: expires entry, the deadline int (32), the heap's (when, key)
# tuple (64) and its list slot.
EXPIRE_COST = DICT_ENTRY + 32 + 64 + 8
PYMALLOC_MAX = 512
BYTES_HEADER = 33       # sys.getsizeof(b"")


def bytes_cost(n: int) -> int:
    """A bytes object of length n, as allocated (33-byte header)."""
    size = n + BYTES_HEADER
    if size <= PYMALLOC_MAX:
        return (size + 15) & -16
    return size + 16        # malloc's own header, roughly


# bytes_cost by table for the lengths pymalloc serves (most keys and
# values): a list lookup where SET and eviction pay it per key
# (Keyspace.set / evict_keys inline these lines; KEY_COST adds a key's
# dict entries).  Longer ones cost n + LONG_BYTES.
SHORT = PYMALLOC_MAX - BYTES_HEADER + 1
SHORT_COST = [bytes_cost(n) for n in range(SHORT)]
LONG_BYTES = BYTES_HEADER + 16
KEY_COST = [KEY_OVERHEAD + cost for cost in SHORT_COST]


def key_cost(key: bytes) -> int:
    n = len(key)
    return KEY_COST[n] if n < SHORT else KEY_OVERHEAD + n + LONG_BYTES


def string_cost(value: bytes) -> int:
    n = len(value)
    return SHORT_COST[n] if n < SHORT else n + LONG_BYTES


def _element(value) -> int:
    """An element inside a container (bytes mostly; ints and floats)."""
    cls = value.__class__
    if cls is bytes:
        return bytes_cost(len(value))
    if cls is tuple:
        return 64 + sum(_element(v) for v in value)
    if cls is int or cls is float:
        return 32
    return sys.getsizeof(value)


def _mean(values) -> float:
    total = n = 0
    for v in values:
        total += v
        n += 1
    return total / n if n else 0


def _sample(iterable, size: int, samples: int):
    """The first ``samples`` elements (all of them with samples 0)."""
    return iterable if samples <= 0 or size <= samples else \
        islice(iterable, samples)


def estimate(value, samples: int = 5) -> int:
    """The estimated footprint of a value (not its key) in bytes; for any
    value but ``bytes``, with its entry in ``Keyspace.sizes``."""
    cls = value.__class__
    if cls is bytes:
        return string_cost(value)
    return DICT_ENTRY + _estimate(value, cls, samples)


def _estimate(value, cls, samples: int) -> int:
    if cls is bytearray:
        return (sys.getsizeof(value) + 15) & -16
    n = len(value)
    if cls is dict:
        per = _mean(_element(k) + _element(v) for k, v in
                    _sample(iter(value.items()), n, samples))
        return sys.getsizeof(value) + int(n * per)
    if cls is set:
        per = _mean(_element(m) for m in _sample(iter(value), n, samples))
        return sys.getsizeof(value) + int(n * per)
    if cls is deque:
        if samples <= 0 or n <= 2 * samples:
            picked = value
        else:
            half = max(samples // 2, 1)
            picked = [value[i] for i in range(half)] + \
                [value[-1 - i] for i in range(half)]
        per = _mean(_element(v) for v in picked) + 8   # block pointer
        return sys.getsizeof(value) + int(n * per)
    name = getattr(value, "TYPE_NAME", None)
    if name == "zset":
        # scores dict entry + the order list's (score, member) tuple, its
        # slot and index share + the float: per member, plus the member.
        per = _mean(_element(m) for m in
                    _sample(iter(value.scores), n, samples))
        # The ZSet and its SortedList's own lists (measured: ~450 bytes).
        return sys.getsizeof(value.scores) + 450 + \
            int(n * (per + 64 + 32 + 12))
    if name == "stream":
        # entries: SortedDict entry, (ms, seq) key tuple with its ints,
        # the field/value tuple; plus consumer groups' PEL entries.
        per = _mean(stream_entry_cost(v) for v in
                    _sample(iter(value.entries.values()), n, samples))
        pel = sum(len(g.pel) for g in value.groups.values())
        # The Stream, its two SortedDicts and first node (measured with
        # tracemalloc for a one-entry stream: ~4 KB).
        return 4000 + int(n * per) + pel * 200 + \
            len(value.groups) * 512
    if hasattr(value, "__len__"):
        return sys.getsizeof(value) + n * 64
    return sys.getsizeof(value)


def stream_entry_cost(fields, total: int = None) -> int:
    """One stream entry: its SortedDict entry, the (ms, seq) key tuple with
    its two ints (128), the fields tuple (40 + 8 a slot) and its strings
    (~41 bytes of header and padding each, plus total, their length).
    XADD adds it as is (Keyspace.grew) instead of re-estimating the stream."""
    if total is None:
        total = sum(map(len, fields))
    return DICT_ENTRY + 8 + 128 + 40 + 49 * len(fields) + total


def key_footprint(key: bytes, value, has_ttl: bool, samples: int = 5) -> int:
    """MEMORY USAGE: a key with its value (and TTL)."""
    return key_cost(key) + estimate(value, samples) + \
        (EXPIRE_COST if has_ttl else 0)


# -- server-wide figures ------------------------------------------------------

def client_buffers(server) -> tuple:
    """(normal clients' bytes, replica clients' bytes): replies not yet
    sent (our queue plus the transport's), and query buffers."""
    normal = replicas = 0
    for client in list(server.clients.values()):
        size = client_memory(client)
        if client.kind == "replica":
            replicas += size
        else:
            normal += size
    return normal, replicas


def client_memory(client) -> int:
    pending = client.output_pending
    size = 1024 + (pending() if pending is not None else 0)
    return size + client.query_buffer


STARTUP = 16384 * 64 + 1024 * 1024   # empty slot dicts, tables, scripts


def used_memory(server) -> int:
    """used_memory: the keyspace's estimate, clients' buffers, startup."""
    normal, replicas = client_buffers(server)
    return STARTUP + dataset(server) + normal + replicas


def dataset(server) -> int:
    total = 0
    for ks in keyspaces(server):
        total += ks.used
    return total


def keyspaces(server):
    """Every database's keyspace made so far (rcluster/databases.py), in
    no particular order: this runs before every command under maxmemory."""
    return server.dbs.made.values()


def human(n: int) -> str:
    """Redis's bytesToHuman."""
    n = float(n)
    for unit, scale in (("B", 1), ("K", 1024), ("M", 1024 ** 2),
                        ("G", 1024 ** 3), ("T", 1024 ** 4),
                        ("P", 1024 ** 5)):
        if n < scale * 1024 or unit == "P":
            if unit == "B":
                return "%dB" % n
            return "%.2f%s" % (n / scale, unit)


def figures(server) -> dict:
    """The INFO memory / MEMORY STATS figures, and the peak kept up."""
    clients, replicas = client_buffers(server)
    data = dataset(server)
    used = STARTUP + data + clients + replicas
    evictor = server.evictor
    peak = evictor.peak = max(evictor.peak, used)
    return {"used": used, "peak": peak, "startup": STARTUP,
            "dataset": data, "clients": clients, "replicas": replicas,
            "overhead": used - data,
            "dataset_perc": data * 100.0 / max(used - STARTUP, 1),
            "keys": sum(ks.count for ks in keyspaces(server))}


# -- client-output-buffer-limit -------------------------------------------------
# What a client's output buffer is: the bytes Twisted still holds for its
# TCP (or unix socket) transport, i.e. what the peer hasn't read yet:
# ``transport.dataBuffer`` past ``transport.offset`` (being sent) plus
# ``transport._tempDataLen`` (queued since).  rcluster's own reply list
# (``Client.out``) is emptied at the end of every batch, so it never
# holds more than one batch.  Replies go straight to the socket while it
# takes them (resp/protocol.py write_through); only when the kernel
# buffer is full does Twisted queue, and that is when the limits are
# checked (``check_output_limits``), as Redis checks on each reply added.
# A TLS connection (a memory BIO in front of the TCP transport) encrypts
# each reply at once: its buffer is the ciphertext its TCP transport holds
# plus the cleartext OpenSSL could not take yet (``_appSendBuffer``), and
# it is checked after every write (Twisted always queues TCP writes).

def transport_pending(transport) -> int:
    return len(transport.dataBuffer) - transport.offset + \
        transport._tempDataLen


def tls_pending(tls) -> int:
    """transport_pending of a TLSMemoryBIOProtocol over TCP."""
    return transport_pending(tls.transport) + \
        sum(map(len, tls._appSendBuffer))


def output_class(client) -> str:
    """getClientType for the limits: a master counts as normal, a MONITOR
    client too."""
    if client.kind == "replica":
        return "replica"
    if client.channels or client.patterns or client.shard_channels:
        return "pubsub"
    return "normal"


def over_output_limit(client, used: int, now: float) -> bool:
    """checkClientOutputBufferLimits: the hard limit, or the soft one
    exceeded continuously for longer than its seconds."""
    limits = client.server.settings.client_output_buffer_limit
    hard, soft, seconds = limits.get(output_class(client), (0, 0, 0))
    if hard and used >= hard:
        return True
    if soft and used >= soft:
        if not client.obuf_soft_since:
            client.obuf_soft_since = now
            return False
        return now - client.obuf_soft_since > seconds
    client.obuf_soft_since = 0
    return False


def abort_client(client):
    """Close a client now, dropping what it was still to be sent (a
    client that doesn't read would never let loseConnection finish)."""
    client.closing = True
    client.pending.clear()
    client.out.clear()
    client.parser = None
    pending = client.output_pending
    transport = getattr(pending, "args", (None,))[0]    # the partial's
    if transport is not None:
        transport.abortConnection()
    else:
        client.closed = True
        client.close()


def check_output_limits(client, transport) -> bool:
    """After bytes were queued for client: close it at once (dropping
    what is queued) if it is over its class's limit.  True if closed."""
    if client.closing or client.closed or client.output_pending is None:
        return False
    used = client.output_pending()
    server = client.server
    if not over_output_limit(client, used, server.clock.seconds()):
        return False
    from rcluster.commands.clients import info_line
    from rcluster.logs import logger
    logger().warn("Client {info} scheduled to be closed ASAP for "
                  "overcoming of output buffer limits.",
                  info=info_line(client, server.clock.seconds()))
    abort_client(client)
    return True


# -- cluster-link-sendbuf-limit --------------------------------------------------
# A bus link's send buffer: frames waiting for the connection
# (``Link.pending_bytes``) plus what its TCP transport still holds
# (``link.queued``, set by cluster/bus.py, as for clients above).

def link_send_buffer(link) -> int:
    queued = getattr(link, "queued", None)
    return link.pending_bytes + (queued() if queued is not None and
                                 not link.closed else 0)


def free_links_over_limit(state, limit: int) -> int:
    """clusterNodeCronFreeLinkOnBufferLimitReached, for every link: drop
    (abort) the ones whose send buffer is over ``limit``; counted in
    total_cluster_links_buffer_limit_exceeded.  Returns how many."""
    if not limit:
        return 0
    freed = 0
    for link in state.links():
        used = link_send_buffer(link)
        if used <= limit:
            continue
        from rcluster.logs import logger
        logger().warn(
            "Freeing cluster link({direction} node {name}, used memory: "
            "{used}) due to exceeding send buffer memory limit.",
            direction="from" if link.inbound else "to",
            name=link.node.name if link.node is not None else "", used=used)
        abort = getattr(link, "abort", None)
        if abort is not None:
            link.closer = abort     # don't wait for a peer that won't read
        state.free_link(link)
        state.links_buffer_limit_exceeded += 1
        freed += 1
    return freed
