"""MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE (Redis's object.c),
on the estimates of rcluster/memory.py."""
from __future__ import annotations

import gc

from rcluster import memory
from rcluster.commands.common import SYNTAX, help_subcommand, parse_int
from rcluster.commands.table import CommandError, command, container
from rcluster.resp.codec import OK, Double, Verbatim

_G = dict(group="server")
_SPECIAL = ("nondeterministic_output", "request_policy:all_shards",
            "response_policy:special")

container("memory", summary="A container for memory diagnostics commands",
          since="4.0.0", **_G)
_MEMORY = dict(parent="memory", since="4.0.0", **_G)


@command("usage", -3, "readonly", keys=(2, 2, 1, "RO"),
         summary="Estimate the memory usage of a key",
         complexity="O(N) where N is the number of samples.", **_MEMORY)
def memory_usage(c, argv):
    samples = 5
    j = 3
    while j < len(argv):
        if argv[j].lower() == b"samples" and j + 1 < len(argv):
            samples = parse_int(argv[j + 1])
            if samples < 0:
                raise CommandError(SYNTAX)
            j += 2
        else:
            raise CommandError(SYNTAX)
    ks = c.server.keyspace
    key = argv[2]
    value = ks.peek(key)
    if value is None:
        return None
    return memory.key_footprint(key, value, key in ks.expires, samples)


def _stats(server) -> list:
    f = memory.figures(server)
    used = f["used"]
    out = [b"peak.allocated", f["peak"],
           b"total.allocated", used,
           b"startup.allocated", f["startup"],
           b"replication.backlog", 0,
           b"clients.slaves", f["replicas"],
           b"clients.normal", f["clients"],
           b"cluster.links", 0,
           b"aof.buffer", 0,
           b"lua.caches", 0,
           b"functions.caches", 0]
    for db, ks in server.dbs.items():
        if ks.count:
            out += [b"db.%d" % db,
                    [b"overhead.hashtable.main",
                     ks.count * memory.DICT_ENTRY,
                     b"overhead.hashtable.expires",
                     len(ks.expires) * memory.DICT_ENTRY]]
    net = max(used - f["startup"], 1)
    out += [b"overhead.hashtable.slot-to-keys", 0,
            b"overhead.total", f["overhead"],
            b"keys.count", f["keys"],
            b"keys.bytes-per-key", net // f["keys"] if f["keys"] else 0,
            b"dataset.bytes", f["dataset"],
            b"dataset.percentage", Double(f["dataset_perc"]),
            b"peak.percentage", Double(used * 100.0 / max(f["peak"], 1))]
    from rcluster.commands.introspection import resident_memory
    rss = resident_memory()
    out += [b"allocator.allocated", used,
            b"allocator.active", used,
            b"allocator.resident", rss,
            b"allocator-fragmentation.ratio", Double(1.0),
            b"allocator-fragmentation.bytes", 0,
            b"allocator-rss.ratio", Double(rss / max(used, 1)),
            b"allocator-rss.bytes", rss - used,
            b"rss-overhead.ratio", Double(1.0),
            b"rss-overhead.bytes", 0,
            b"fragmentation", Double(rss / max(used, 1)),
            b"fragmentation.bytes", rss - used]
    return out


@command("stats", 2, "", summary="Show memory usage details",
         complexity="O(1)", tips=_SPECIAL, **_MEMORY)
def memory_stats(c, argv):
    return _stats(c.server)


EMPTY = ("Hi Sam, this instance is empty or is using very little memory, "
         "my issues detector can't be used in these conditions. Please, "
         "leave for your mission on Earth and fill it with some data. The "
         "new Sam and I will be back to our programming as soon as I "
         "finished rebooting.\n")
FINE = ("Hi Sam, I can't find any memory issue in your instance. I can only "
        "account for what occurs on this base.\n")
PEAK = (" * Peak memory: In the past this instance used more than 150% the "
        "memory that is currently using. The allocator is normally not able "
        "to release memory after a peak, so you can expect to see a big "
        "fragmentation ratio, however this is actually harmless and is only "
        "due to the memory peak, and if the Redis instance Resident Set Size "
        "(RSS) is currently bigger than expected, the memory will be used as "
        "soon as you fill the Redis instance with more data. If the memory "
        "peak was only occasional and you want to try to reclaim memory, "
        "please try the MEMORY PURGE command, otherwise the only other "
        "option is to shutdown and restart the instance.\n\n")
BIG_CLIENTS = (" * Big client buffers: The clients output buffers in this "
               "instance are greater than 200K per client (on average). "
               "This may result from different causes, like Pub/Sub clients "
               "subscribed to channels bot not receiving data fast enough, "
               "so that data piles on the Redis instance output buffer, or "
               "clients sending commands with large replies or very large "
               "sequences of commands in the same pipeline. Please use the "
               "CLIENT LIST command in order to investigate the issue if it "
               "causes problems in your instance, or to understand better "
               "why certain clients are using a big amount of memory.\n\n")


def doctor_report(server) -> str:
    """getMemoryDoctorReport, on the figures rcluster has (no allocator
    fragmentation figures: CPython's are not observable)."""
    f = memory.figures(server)
    if f["used"] < 5 * 1024 * 1024:
        return EMPTY
    issues = []
    if f["peak"] / f["used"] > 1.5:
        issues.append(PEAK)
    normal = max(len(server.clients), 1)
    if f["clients"] / normal > 200 * 1024:
        issues.append(BIG_CLIENTS)
    if not issues:
        return FINE
    return ("Sam, I detected a few issues in this Redis instance memory "
            "implants:\n\n" + "".join(issues) +
            "I'm here to keep you safe, Sam. I want to help you.\n")


@command("doctor", 2, "", summary="Outputs memory problems report",
         complexity="O(1)", tips=_SPECIAL, **_MEMORY)
def memory_doctor(c, argv):
    return Verbatim(doctor_report(c.server).encode())


@command("malloc-stats", 2, "", summary="Show allocator internal stats",
         complexity="Depends on how much memory is allocated, could be "
         "slow", tips=_SPECIAL, **_MEMORY)
def memory_malloc_stats(c, argv):
    counts = gc.get_count()
    text = ("rcluster runs on CPython's allocator (pymalloc for objects up "
            "to 512 bytes, libc malloc above); it keeps no jemalloc-style "
            "statistics. used_memory is rcluster's own estimate of the "
            "dataset (see MEMORY STATS); RSS is in INFO memory.\n"
            "gc generation counts: %d %d %d\n" % counts)
    return Verbatim(text.encode())


@command("purge", 2, "", summary="Ask the allocator to release memory",
         complexity="Depends on how much memory is allocated, could be "
         "slow", tips=("request_policy:all_shards",
                       "response_policy:all_succeeded"), **_MEMORY)
def memory_purge(c, argv):
    # A full collection; then glibc's malloc_trim gives free heap pages back.
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return OK


help_subcommand((
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values "
    "are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
), parent="memory", since="4.0.0", **_G)
