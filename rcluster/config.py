"""One typed settings object: defaults < config file < command line < CONFIG SET.

``DIRECTIVES`` is the single table of every directive rcluster knows, with
Redis 7.0's names, aliases, types, defaults and mutability.  ``Settings``
holds the current values as attributes (``settings.cluster_node_timeout``)
and implements the file syntax, CONFIG GET/SET and CONFIG REWRITE on top
of that table.  Directives rcluster accepts but does not act on (tuning
knobs of Redis internals) are in the table too, so an existing redis.conf
loads cleanly and CONFIG GET answers like Redis.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace

from rcluster.glob import compile_glob
from rcluster.resp.codec import split_args


class ConfigError(Exception):
    """A value or directive that can't be applied; the text says why."""


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    kind: str            # bool int memory str enum save bind obl replicaof list
    default: object
    mutable: bool = True
    aliases: tuple = ()
    low: int = None
    high: int = None
    choices: tuple = ()
    sensitive: bool = False
    # Settable at run time only as enable-protected-configs allows.
    protected: bool = False
    # Accepted (so redis.conf files load) but without effect here: a value
    # away from the default is warned about (``unhonoured_warning``).
    honoured: bool = True
    # Redis's HIDDEN_CONFIG: CONFIG GET with a pattern doesn't list it
    # (its exact name still answers).
    hidden: bool = False

    @property
    def attr(self) -> str:
        return self.name.replace("-", "_")


_I = 2**31 - 1
_L = 2**63 - 1


def _b(name, default, mutable=True, aliases=()):
    return Directive(name, "bool", default, mutable, aliases)


def _i(name, default, low, high, mutable=True, aliases=()):
    return Directive(name, "int", default, mutable, aliases, low, high)


def _m(name, default, low=0, high=_L, mutable=True, aliases=()):
    return Directive(name, "memory", default, mutable, aliases, low, high)


def _s(name, default="", mutable=True, aliases=(), sensitive=False):
    return Directive(name, "str", default, mutable, aliases,
                     sensitive=sensitive)


def _e(name, default, choices, mutable=True, aliases=()):
    return Directive(name, "enum", default, mutable, aliases,
                     choices=tuple(choices))


_PROTECTED = ("no", "yes", "local")


def _unhonoured(d: Directive) -> Directive:
    """The same row, flagged accepted-but-without-effect."""
    return replace(d, honoured=False)


def _hidden(d: Directive) -> Directive:
    """The same row, flagged HIDDEN_CONFIG."""
    return replace(d, hidden=True)


DIRECTIVES = (
    # Network and process.
    _i("port", 6379, 0, 65535, mutable=False),
    Directive("bind", "bind", ("*", "-::*")),
    _b("protected-mode", True),
    _i("tcp-backlog", 511, 0, _I, mutable=False),
    _i("timeout", 0, 0, _I),
    _i("tcp-keepalive", 300, 0, _I),
    _b("daemonize", False, mutable=False),
    _s("pidfile", mutable=False),
    _e("supervised", "no", ("upstart", "systemd", "auto", "no"), mutable=False),
    _e("loglevel", "notice", ("debug", "verbose", "notice", "warning")),
    _s("logfile", mutable=False),
    _unhonoured(_b("syslog-enabled", False, mutable=False)),
    _unhonoured(_s("syslog-ident", "redis", mutable=False)),
    _unhonoured(_e("syslog-facility", "local0", ["user"] + [f"local{i}" for i in range(8)],
                   mutable=False)),
    _i("databases", 16, 1, _I, mutable=False),
    _unhonoured(_b("always-show-logo", False, mutable=False)),
    _unhonoured(_b("set-proc-title", True, mutable=False)),
    _unhonoured(_s("proc-title-template", "{title} {listen-addr} {server-mode}")),
    _s("unixsocket", mutable=False),
    _unhonoured(Directive("unixsocketperm", "int", 0, False, (), 0, 0o777)),
    _i("maxclients", 10000, 1, 2**32 - 1),
    Directive("dir", "str", "", protected=True),
    _unhonoured(_s("ignore-warnings")),
    _e("enable-debug-command", "no", _PROTECTED, mutable=False),
    _e("enable-protected-configs", "no", _PROTECTED, mutable=False),
    _unhonoured(_e("enable-module-command", "no", _PROTECTED, mutable=False)),
    _i("hz", 10, 0, _I),
    _unhonoured(_b("dynamic-hz", True)),
    _unhonoured(_i("io-threads", 1, 1, 128, mutable=False)),
    _unhonoured(_b("io-threads-do-reads", False, mutable=False)),
    _unhonoured(_b("disable-thp", True, mutable=False)),
    _unhonoured(_i("shutdown-timeout", 10, 0, _I)),
    _unhonoured(_e("shutdown-on-sigint", "default", ("default", "save", "nosave", "now", "force"))),
    _e("shutdown-on-sigterm", "default", ("default", "save", "nosave", "now", "force")),
    _unhonoured(_b("crash-log-enabled", True)),
    _unhonoured(_b("crash-memcheck-enabled", True)),
    _unhonoured(_e("oom-score-adj", "no", ("no", "yes", "relative", "absolute"))),
    _unhonoured(Directive("oom-score-adj-values", "list", "0 200 800")),
    _unhonoured(_b("jemalloc-bg-thread", True)),
    _unhonoured(_s("server_cpulist", mutable=False)),
    _unhonoured(_s("bio_cpulist", mutable=False)),
    _unhonoured(_s("aof_rewrite_cpulist", mutable=False)),
    _unhonoured(_s("bgsave_cpulist", mutable=False)),
    _unhonoured(_i("socket-mark-id", 0, 0, 2**32 - 1, mutable=False)),
    _s("bind-source-addr"),
    # Security.
    _s("requirepass", sensitive=True),
    _s("masterauth", sensitive=True),
    _s("masteruser", sensitive=True),
    _unhonoured(_s("aclfile", mutable=False)),
    _unhonoured(_i("acllog-max-len", 128, 0, _L)),
    _unhonoured(_e("acl-pubsub-default", "resetchannels", ("allchannels", "resetchannels"))),
    _unhonoured(_e("sanitize-dump-payload", "no", ("no", "yes", "clients"))),
    # Limits and protocol.
    _m("proto-max-bulk-len", 512 * 1024 * 1024, 1024 * 1024),
    _m("client-query-buffer-limit", 1024**3, 1024 * 1024),
    Directive("client-output-buffer-limit", "obl",
              "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
    _m("maxmemory", 0),
    _e("maxmemory-policy", "noeviction",
       ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
        "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction")),
    _i("maxmemory-samples", 5, 1, _I),
    _i("maxmemory-eviction-tenacity", 10, 0, 100),
    _m("maxmemory-clients", 0),
    _i("lfu-log-factor", 10, 0, _I),
    _i("lfu-decay-time", 1, 0, _I),
    _unhonoured(_i("active-expire-effort", 1, 1, 10)),
    _b("lazyfree-lazy-eviction", False),
    _b("lazyfree-lazy-expire", False),
    _b("lazyfree-lazy-server-del", False),
    _b("lazyfree-lazy-user-del", False),
    _unhonoured(_b("lazyfree-lazy-user-flush", False)),
    _unhonoured(_b("activerehashing", True)),
    _unhonoured(_b("activedefrag", False)),
    _unhonoured(_i("active-defrag-cycle-min", 1, 1, 99)),
    _unhonoured(_i("active-defrag-cycle-max", 25, 1, 99)),
    _unhonoured(_i("active-defrag-threshold-lower", 10, 0, 1000)),
    _unhonoured(_i("active-defrag-threshold-upper", 100, 0, 1000)),
    _unhonoured(_m("active-defrag-ignore-bytes", 100 << 20, 1)),
    _unhonoured(_i("active-defrag-max-scan-fields", 1000, 1, _L)),
    _i("busy-reply-threshold", 5000, 0, _L, aliases=("lua-time-limit",)),
    _i("slowlog-log-slower-than", 10000, -1, _L),
    _i("slowlog-max-len", 128, 0, _L),
    _i("latency-monitor-threshold", 0, 0, _L),
    _b("latency-tracking", True),
    Directive("latency-tracking-info-percentiles", "list", "50 99 99.9"),
    Directive("notify-keyspace-events", "events", ""),
    _i("tracking-table-max-keys", 1000000, 0, _L),
    # Encodings (reported by OBJECT ENCODING).
    _i("hash-max-listpack-entries", 512, 0, _L, aliases=("hash-max-ziplist-entries",)),
    _m("hash-max-listpack-value", 64, aliases=("hash-max-ziplist-value",)),
    _i("list-max-listpack-size", -2, -2**31, _I, aliases=("list-max-ziplist-size",)),
    _i("list-compress-depth", 0, 0, _I),
    _i("set-max-intset-entries", 512, 0, _L),
    _i("zset-max-listpack-entries", 128, 0, _L, aliases=("zset-max-ziplist-entries",)),
    _m("zset-max-listpack-value", 64, aliases=("zset-max-ziplist-value",)),
    _m("hll-sparse-max-bytes", 3000),
    _i("stream-node-max-entries", 100, 0, _L),
    _m("stream-node-max-bytes", 4096),
    # Persistence.
    Directive("save", "save", "3600 1 300 100 60 10000"),
    Directive("dbfilename", "str", "dump.rdb", protected=True),
    _b("rdbcompression", True),
    _b("rdbchecksum", True, mutable=False),
    _unhonoured(_b("rdb-del-sync-files", False)),
    _b("rdb-save-incremental-fsync", True),
    _b("stop-writes-on-bgsave-error", True),
    _b("appendonly", False),
    _s("appendfilename", "appendonly.aof", mutable=False),
    _s("appenddirname", "appendonlydir", mutable=False),
    _e("appendfsync", "everysec", ("everysec", "always", "no")),
    _b("no-appendfsync-on-rewrite", False),
    _i("auto-aof-rewrite-percentage", 100, 0, _I),
    _m("auto-aof-rewrite-min-size", 64 * 1024 * 1024),
    _b("aof-load-truncated", True),
    _b("aof-use-rdb-preamble", True),
    _b("aof-timestamp-enabled", False),
    _b("aof-rewrite-incremental-fsync", True),
    _b("aof-disable-auto-gc", False),
    # Redis 7.0's HIDDEN_CONFIG directives (test and debug knobs, left out
    # of CONFIG GET patterns).  The delays and the loading interval act
    # (persistence/service.py); the other two have no effect here.
    _hidden(_i("rdb-key-save-delay", 0, -_I - 1, _I)),
    _hidden(_i("key-load-delay", 0, -_I - 1, _I)),
    _hidden(_i("loading-process-events-interval-bytes", 2 * 1024 * 1024,
               1024, _I)),
    _hidden(_unhonoured(_b("use-exit-on-panic", False))),
    _hidden(_unhonoured(_i("watchdog-period", 0, 0, _I))),
    # Replication.
    Directive("replicaof", "replicaof", "", False, ("slaveof",)),
    _b("replica-serve-stale-data", True, aliases=("slave-serve-stale-data",)),
    _b("replica-read-only", True, aliases=("slave-read-only",)),
    _unhonoured(_b("replica-lazy-flush", False, aliases=("slave-lazy-flush",))),
    _b("replica-ignore-maxmemory", True, aliases=("slave-ignore-maxmemory",)),
    _b("replica-announced", True),
    _unhonoured(_b("replica-ignore-disk-write-errors", False)),
    _i("replica-priority", 100, 0, _I, aliases=("slave-priority",)),
    _s("replica-announce-ip", aliases=("slave-announce-ip",)),
    _i("replica-announce-port", 0, 0, 65535, aliases=("slave-announce-port",)),
    _m("repl-backlog-size", 1024 * 1024, 1),
    _i("repl-backlog-ttl", 3600, 0, _L),
    _i("repl-timeout", 60, 1, _I),
    _i("repl-ping-replica-period", 10, 1, _I, aliases=("repl-ping-slave-period",)),
    _b("repl-diskless-sync", True),
    _i("repl-diskless-sync-delay", 5, 0, _I),
    _unhonoured(_i("repl-diskless-sync-max-replicas", 0, 0, _I)),
    _unhonoured(_e("repl-diskless-load", "disabled", ("disabled", "on-empty-db", "swapdb"))),
    _b("repl-disable-tcp-nodelay", False),
    _i("min-replicas-to-write", 0, 0, _I, aliases=("min-slaves-to-write",)),
    _i("min-replicas-max-lag", 10, 0, _I, aliases=("min-slaves-max-lag",)),
    _unhonoured(_e("propagation-error-behavior", "ignore", ("ignore", "panic", "panic-on-replicas"))),
    # Cluster.
    _b("cluster-enabled", False, mutable=False),
    # Valkey 9: databases in cluster mode (SELECT); 1 is Redis 7.0's rule.
    _i("cluster-databases", 1, 1, _I, mutable=False),
    _s("cluster-config-file", "nodes.conf", mutable=False),
    _i("cluster-node-timeout", 15000, 0, _L),
    _i("cluster-port", 0, 0, 65535, mutable=False),
    _s("cluster-announce-ip"),
    _i("cluster-announce-port", 0, 0, 65535),
    _i("cluster-announce-bus-port", 0, 0, 65535),
    _i("cluster-announce-tls-port", 0, 0, 65535),
    _s("cluster-announce-hostname"),
    _e("cluster-preferred-endpoint-type", "ip", ("ip", "hostname", "unknown-endpoint")),
    _b("cluster-require-full-coverage", True),
    _b("cluster-allow-reads-when-down", False),
    _b("cluster-allow-pubsubshard-when-down", True),
    _b("cluster-allow-replica-migration", True),
    _b("cluster-replica-no-failover", False, aliases=("cluster-slave-no-failover",)),
    _i("cluster-replica-validity-factor", 10, 0, _I, aliases=("cluster-slave-validity-factor",)),
    _i("cluster-migration-barrier", 1, 0, _I),
    _m("cluster-link-sendbuf-limit", 0),
    # TLS.
    _i("tls-port", 0, 0, 65535, mutable=False),
    _s("tls-cert-file"),
    _s("tls-key-file"),
    _s("tls-key-file-pass", sensitive=True),
    _s("tls-client-cert-file"),
    _s("tls-client-key-file"),
    _s("tls-client-key-file-pass", sensitive=True),
    _s("tls-dh-params-file"),
    _s("tls-ca-cert-file"),
    _s("tls-ca-cert-dir"),
    _e("tls-auth-clients", "yes", ("no", "yes", "optional")),
    _b("tls-cluster", False),
    _b("tls-replication", False),
    _s("tls-protocols"),
    _s("tls-ciphers"),
    _s("tls-ciphersuites"),
    _b("tls-prefer-server-ciphers", False),
    _b("tls-session-caching", True),
    _unhonoured(_i("tls-session-cache-size", 20 * 1024, 0, _I)),
    _i("tls-session-cache-timeout", 300, 0, _I),
)

BY_NAME = {}
for _d in DIRECTIVES:
    BY_NAME[_d.name] = _d
    for _alias in _d.aliases:
        BY_NAME[_alias] = _d

# Directives taking several arguments (Redis's MULTI_ARG_CONFIG).
MULTI_ARG = frozenset(("save", "bind", "obl", "replicaof", "list"))
MIN_HZ, MAX_HZ = 1, 500     # Redis clamps hz to CONFIG_MIN_HZ..CONFIG_MAX_HZ
# Lines CONFIG REWRITE keeps although they are no directive it rewrites.
_KEPT_DIRECTIVES = ("include", "rename-command", "user", "loadmodule",
                    "sentinel")
REWRITE_SIGNATURE = "# Generated by CONFIG REWRITE"
_OBL_CLASSES = ("normal", "replica", "pubsub")
_OBL_NAMES = {"normal": "normal", "replica": "slave", "pubsub": "pubsub"}

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
          "g": 1000**3, "gb": 1024**3}


def parse_memory(text: str) -> int:
    """Redis's memtoull: digits then an optional unit (1k, 5mb, 2Gb)."""
    i = 0
    while i < len(text) and text[i].isdigit():
        i += 1
    unit = text[i:].lower()
    if i == 0 or unit not in _UNITS:
        raise ValueError(text)
    return int(text[:i]) * _UNITS[unit]


def format_memory(value: int) -> str:
    """A byte count as CONFIG REWRITE writes it: 1gb, 64mb, 3kb or plain."""
    for unit, size in (("gb", 1024**3), ("mb", 1024**2), ("kb", 1024)):
        if value and value % size == 0:
            return "%d%s" % (value // size, unit)
    return str(value)


def repr_bytes(data: bytes) -> str:
    """Redis's sdscatrepr: a double-quoted string with C escapes."""
    out = ['"']
    for byte in data:
        ch = chr(byte)
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append("\\x%02x" % byte)
    out.append('"')
    return "".join(out)


_C_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a",
              "\b": "\\b"}


def _repr(text: str) -> str:
    return repr_bytes(text.encode("utf-8", "surrogateescape"))


# notify-keyspace-events classes, in the order Redis prints them; 'A' is
# every class but 'n' (new keys) and 'm' (misses).
_EVENT_CLASSES = "g$lshzxetdn"
_EVENT_ALL = "g$lshzxetd"
_EVENT_KINDS = "KEm"


def _parse_events(text: str) -> str:
    chars = set()
    for ch in text:
        if ch == "A":
            chars.update(_EVENT_ALL)
        elif ch in _EVENT_CLASSES or ch in _EVENT_KINDS:
            chars.add(ch)
        else:
            raise ConfigError(
                "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    if chars.issuperset(_EVENT_ALL):
        # 'n' is kept (it is not part of A) but not shown: see _format.
        out = "A" + ("n" if "n" in chars else "")
    else:
        out = "".join(ch for ch in _EVENT_CLASSES if ch in chars)
    return out + "".join(ch for ch in _EVENT_KINDS if ch in chars)


def _strict_int(text: str):
    """strtoll that must consume the whole argument, or None."""
    body = text[1:] if text[:1] in "+-" else text
    return int(text) if body.isdigit() else None


def _convert(d: Directive, args: list, current=None):
    """Validate and convert the arguments of a directive to its value."""
    if d.kind in MULTI_ARG:
        return _convert_multi(d, args, current)
    if len(args) != 1:
        raise ConfigError("wrong number of arguments")
    text = args[0]
    if d.kind == "bool":
        low = text.lower()
        if low not in ("yes", "no"):
            raise ConfigError("argument must be 'yes' or 'no'")
        return low == "yes"
    if d.kind in ("int", "memory"):
        return _convert_number(d, text)
    if d.kind == "enum":
        low = text.lower()
        if low not in d.choices:
            raise ConfigError("argument(s) must be one of the following: "
                              + ", ".join(d.choices))
        return low
    if d.kind == "events":
        return _parse_events(text)
    if d.name == "dbfilename" and os.path.basename(text) != text:
        raise ConfigError("dbfilename can't be a path, just a filename")
    return text


def _convert_number(d: Directive, text: str) -> int:
    try:
        value = parse_memory(text) if d.kind == "memory" else int(text)
    except ValueError:
        if d.kind == "memory":
            raise ConfigError("argument must be a memory value")
        raise ConfigError("argument couldn't be parsed into an integer")
    if (d.low is not None and value < d.low) or (
            d.high is not None and value > d.high):
        raise ConfigError("argument must be between %d and %d inclusive"
                          % (d.low, d.high))
    if d.name == "hz":
        value = min(max(value, MIN_HZ), MAX_HZ)
    return value


def _convert_multi(d: Directive, args: list, current=None):
    if d.kind == "save":
        return _convert_save(args)
    if d.kind == "bind":
        parts = [a for a in args if a]
        if len(parts) > 16:
            raise ConfigError("Too many bind addresses specified.")
        return tuple(parts)
    if d.kind == "replicaof":
        parts = [a for a in args if a]
        if [p.lower() for p in parts] == ["no", "one"]:
            return ""
        if len(parts) != 2 or not parts[1].isdigit():
            raise ConfigError("wrong number of arguments")
        return " ".join(parts)
    if d.kind == "obl":
        return _convert_obl(args, current)
    if d.name == "oom-score-adj-values":
        return _convert_oom_values(args)
    if d.name == "latency-tracking-info-percentiles":
        return _convert_percentiles(args)
    return " ".join(args)


def _convert_save(args) -> str:
    """Save points as "seconds changes ..." ("" for none)."""
    if args == [""]:
        return ""
    numbers = [_strict_int(a) for a in args]
    if len(args) % 2 or any(
            n is None or n < (1 if j % 2 == 0 else 0)
            for j, n in enumerate(numbers)):
        raise ConfigError("Invalid save parameters")
    return " ".join(map(str, numbers))


def _convert_obl(args, current) -> dict:
    """client-output-buffer-limit: the classes given replace theirs."""
    if len(args) % 4:
        raise ConfigError(
            "Wrong number of arguments in buffer limit configuration.")
    limits = dict(current or {})
    for j in range(0, len(args), 4):
        cls, hard, soft, seconds = args[j:j + 4]
        cls = {"slave": "replica"}.get(cls.lower(), cls.lower())
        if cls not in _OBL_CLASSES:
            raise ConfigError("Invalid client class specified in buffer "
                              "limit configuration.")
        try:
            limits[cls] = (parse_memory(hard), parse_memory(soft),
                           int(seconds))
        except ValueError:
            raise ConfigError("Error in hard, soft or soft_seconds setting "
                              "in buffer limit configuration.")
    return {cls: limits[cls] for cls in _OBL_CLASSES if cls in limits}


def _convert_oom_values(args) -> str:
    if len(args) != 3:
        raise ConfigError("wrong number of arguments")
    values = [_strict_int(a) for a in args]
    if any(v is None or not -2000 <= v <= 2000 for v in values):
        raise ConfigError("Invalid oom-score-adj-values, elements must be "
                          "between -2000 and 2000.")
    return " ".join(map(str, values))


def _convert_percentiles(args) -> str:
    if args == [""]:
        return ""
    out = []
    for arg in args:
        try:
            value = float(arg)
        except ValueError:
            raise ConfigError(
                "Invalid latency-tracking-info-percentiles parameters")
        if not 0.0 <= value <= 100.0:
            raise ConfigError("latency-tracking-info-percentiles parameters "
                              "should sit between [0.0,100.0]")
        out.append(("%f" % value).rstrip("0").rstrip("."))
    return " ".join(out)


def _split_single(d: Directive, args: list) -> list:
    """A several-argument directive given one argument ("save '900 1'",
    --set bind="a b") has it split like a config line, as Redis does."""
    if d.kind in MULTI_ARG and len(args) == 1 and args[0]:
        parts = split_args(args[0].encode("utf-8", "surrogateescape")) or ()
        return [a.decode("utf-8", "surrogateescape") for a in parts]
    return args


def _split_set_value(d: Directive, value: str) -> list:
    """CONFIG SET's single value as arguments: several-argument directives
    split on single spaces (sdssplitlen), the others take it whole."""
    if d.kind in MULTI_ARG:
        return value.split(" ") if value else []
    return [value]


def _format(d: Directive, value) -> str:
    """A value as CONFIG GET shows it."""
    if d.kind == "bool":
        return "yes" if value else "no"
    if d.kind in ("int", "memory"):
        return "%o" % value if d.name == "unixsocketperm" else str(value)
    if d.kind == "events" and value.startswith("A"):
        return value.replace("n", "")     # as keyspaceEventsFlagsToString
    if d.kind == "bind":
        return " ".join(value)
    if d.kind == "obl":
        return " ".join("%s %d %d %d" % (_OBL_NAMES[k], *v)
                        for k, v in value.items())
    return value


def _set_error(name: str, reason) -> ConfigError:
    return ConfigError("CONFIG SET failed (possibly related to argument "
                       "'%s') - %s" % (name, reason))


class Settings:
    """The node's settings; attributes are the directive names with
    underscores (``settings.cluster_node_timeout``)."""

    def __init__(self):
        self.config_file: str | None = None
        self.changed = set()          # directives set away from default
        self.warnings: list = []      # unknown directives seen in files
        self.listeners = []           # callables(name, value) after a SET
        self._save_loaded = False     # a config file gave save points
        for d in DIRECTIVES:
            setattr(self, d.attr, _default(d))

    # -- reading --------------------------------------------------------
    def unhonoured_warnings(self) -> list:
        """Warnings for directives set away from their default that have
        no effect here (logged at start-up and by CONFIG SET)."""
        out = []
        for d in DIRECTIVES:
            text = unhonoured_warning(d, getattr(self, d.attr))
            if text is not None:
                out.append(text)
        return out

    def get(self, name: str):
        return getattr(self, BY_NAME[name].attr)

    def config_get(self, patterns) -> list:
        """(name, text) pairs for CONFIG GET.  An exact name answers under
        the spelling asked; a glob matches names and aliases."""
        found: dict = {}      # lower-case name -> (name, text)
        for pattern in patterns:
            low = pattern.lower()
            if not any(ch in pattern for ch in "*?["):
                d = BY_NAME.get(low)
                if d is not None and low not in found:
                    found[low] = (pattern, self._show(d))
                continue
            matcher = compile_glob(pattern.encode("utf-8", "surrogateescape"),
                                   nocase=True)
            for d in DIRECTIVES:
                if d.hidden:
                    continue
                for name in (d.name,) + d.aliases:
                    if name not in found and matcher(name.encode()):
                        found[name] = (name, self._show(d))
        return list(found.values())

    def _show(self, d):
        if d.name == "dir":
            return os.getcwd()
        return _format(d, getattr(self, d.attr))

    # -- writing --------------------------------------------------------
    def apply(self, name: str, args, source="config"):
        """Set one directive from its textual arguments."""
        d = BY_NAME.get(name.lower())
        if d is None:
            raise ConfigError("Bad directive or wrong number of arguments")
        value = _convert(d, _split_single(d, list(args)),
                         getattr(self, d.attr))
        setattr(self, d.attr, value)
        self.changed.add(d.name)
        return d

    def config_set(self, pairs, allow_protected=True):
        """CONFIG SET name value [name value ...]: all or nothing.

        ``allow_protected`` tells whether the caller may set protected
        directives (enable-protected-configs, checked by the command)."""
        staged = self._check_names(pairs, allow_protected)
        converted = []
        for d, value in staged:
            try:
                converted.append((d, _convert(d, _split_set_value(d, value),
                                              getattr(self, d.attr))))
            except ConfigError as err:
                raise _set_error(d.name, err) from None
        old = [(d, getattr(self, d.attr)) for d, _ in converted]
        cwd = os.getcwd()
        failed = None
        try:
            for d, value in converted:
                failed = d
                if d.name == "dir":
                    _chdir(value)
                setattr(self, d.attr, value)
            for d, value in converted:
                failed = d
                for listener in self.listeners:
                    listener(d.name, value)
        except ConfigError as err:
            self._restore(old, cwd)
            raise _set_error(failed.name, err) from None
        self.changed.update(d.name for d, _ in converted)
        for d, value in converted:
            text = unhonoured_warning(d, value)
            if text is not None:
                from rcluster.logs import logger
                logger().warn("{warning}", warning=text)

    def _check_names(self, pairs, allow_protected) -> list:
        """Redis's first pass: unknown, immutable, protected, duplicates."""
        staged, seen = [], set()
        for name, value in pairs:
            d = BY_NAME.get(name.lower())
            if d is None:
                raise ConfigError("Unknown option or number of arguments "
                                  "for CONFIG SET - '%s'" % name)
            if not d.mutable:
                raise _set_error(name, "can't set immutable config")
            if d.protected and not allow_protected:
                raise _set_error(name, "can't set protected config")
            if d.name in seen:
                raise _set_error(name, "duplicate parameter")
            seen.add(d.name)
            staged.append((d, value))
        return staged

    def _restore(self, old, cwd):
        """Undo a failed CONFIG SET and re-apply the old values."""
        os.chdir(cwd)
        for d, value in old:
            setattr(self, d.attr, value)
        for d, value in old:
            for listener in self.listeners:
                try:
                    listener(d.name, value)
                except ConfigError:
                    pass

    def load_file(self, path: str):
        """Read a redis.conf-syntax file (``include`` supported)."""
        self.config_file = os.path.abspath(path)
        self.load_text(_read(path), path)

    def load_text(self, text: str, origin="<string>"):
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            argv = split_args(line.encode("utf-8", "surrogateescape"))
            if argv is None:
                raise ConfigError(f"{origin}:{lineno}: Unbalanced quotes in configuration line")
            if not argv:
                continue
            name = argv[0].decode("utf-8", "surrogateescape").lower()
            args = [a.decode("utf-8", "surrogateescape") for a in argv[1:]]
            if name == "include":
                if len(args) != 1:
                    raise ConfigError(f"{origin}:{lineno}: include takes one file")
                self.load_text(_read(args[0]), args[0])
                continue
            if name not in BY_NAME:
                self.warnings.append(
                    f"{origin}:{lineno}: unknown directive '{name}' ignored")
                continue
            try:
                self._load_directive(name, args)
            except ConfigError as err:
                raise ConfigError(
                    f"{origin}:{lineno}: '{line}': {err}") from None

    def _load_directive(self, name, args):
        d = BY_NAME[name]
        if d.kind == "save":
            # The first save line replaces the defaults, later ones add
            # save points; save "" clears them.
            points = _convert_save(_split_single(d, args))
            if self._save_loaded and points:
                points = " ".join(filter(None, (self.save, points)))
            self._save_loaded = True
            self.save = points
            self.changed.add("save")
            return
        self.apply(name, args)

    # -- CONFIG REWRITE ---------------------------------------------------
    def rewrite(self, path: str | None = None, force_all=False):
        """Rewrite the config file as Redis does: directives are updated
        in place (an alias by its name), the ones away from their default
        are appended after a signature, duplicates are blanked, comments
        and include/rename-command lines are kept, and lines naming no
        directive are kept commented out ("# ??? ...")."""
        path = path or self.config_file
        if not path:
            raise ConfigError("The server is running without a config file")
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                text = fh.read()
        except FileNotFoundError:
            text = ""
        except OSError as err:
            raise ConfigError(f"Rewriting config file: {err.strerror}")
        state = _RewriteState(text)
        for d in DIRECTIVES:
            state.rewrite(d.name, self._rewrite_lines(d), force_all)
        _overwrite(path, state.content())

    def _rewrite_lines(self, d) -> list:
        """(line, force) pairs for a directive: force writes the line even
        when the file didn't mention the directive.  No pair at all drops
        the directive's lines from the file."""
        value = getattr(self, d.attr)
        name = d.name
        changed = value != _default(d)
        if d.kind == "save":
            if not value:
                return [('save ""', True)]
            points = value.split()
            return [("save %s %s" % (points[j], points[j + 1]), True)
                    for j in range(0, len(points), 2)]
        if d.kind == "bind":
            if not changed:
                return []
            return [("bind " + (" ".join(value) or '""'), True)]
        if d.kind == "replicaof":
            if self.cluster_enabled or not value:
                return []
            return [("replicaof " + value, True)]
        if d.kind == "obl":
            defaults = _default(d)
            return [("%s %s %s %s %d" % (name, cls, format_memory(hard),
                                         format_memory(soft), seconds),
                     (hard, soft, seconds) != defaults[cls])
                    for cls, (hard, soft, seconds) in value.items()]
        if name == "dir":
            return [("dir " + _repr(os.getcwd()), True)]
        if name == "latency-tracking-info-percentiles":
            return [(f"{name} {value or chr(34) * 2}", True)]
        if d.kind == "events":
            return [(f"{name} {_repr(_format(d, value))}", bool(value))]
        if d.kind == "str":
            return [(f"{name} {_repr(value)}", changed)] if value else []
        if d.kind == "memory":
            return [(f"{name} {format_memory(value)}", changed)]
        return [(f"{name} {_format(d, value)}", changed)]


def unhonoured_warning(d: Directive, value):
    """The warning for a directive rcluster accepts but does not act on,
    set to ``value``; None when it is honoured or left at its default."""
    if d.honoured or value == _default(d):
        return None
    return (f"Directive '{d.name}' is accepted but has no effect in "
            f"rcluster (set to '{_format(d, value)}')")


def _default(d: Directive):
    """A directive's default value, converted like a configured one."""
    value = d.default
    if d.kind in MULTI_ARG and isinstance(value, str) and value:
        return _convert_multi(d, value.split())
    return value


class _RewriteState:
    """The old file's lines, and where each directive appears in them
    (Redis's rewriteConfigState)."""

    def __init__(self, text: str):
        self.lines: list = []
        self.option_lines: dict = {}      # directive -> its line numbers
        self.processed: set = set()
        self.needs_signature = True
        for raw in (text.split("\n") if text else ()):
            self._add_old_line(raw.strip("\r\n\t "))

    def _add_old_line(self, line: str):
        if not line or line.startswith("#"):
            if line == REWRITE_SIGNATURE:
                self.needs_signature = False
            self.lines.append(line)
            return
        argv = split_args(line.encode("utf-8", "surrogateescape"))
        name = argv[0].decode("utf-8", "surrogateescape").lower() \
            if argv else None
        d = BY_NAME.get(name)
        if d is None and name not in _KEPT_DIRECTIVES:
            self.lines.append("# ??? " + line)
            return
        option = d.name if d is not None else name
        self.option_lines.setdefault(option, []).append(len(self.lines))
        self.lines.append(line)

    def rewrite(self, option: str, new_lines, force_all=False):
        self.processed.add(option)
        for line, force in new_lines:
            numbers = self.option_lines.get(option)
            if numbers:
                self.lines[numbers.pop(0)] = line
            elif force or force_all:
                if self.needs_signature:
                    self.lines.append(REWRITE_SIGNATURE)
                    self.needs_signature = False
                self.lines.append(line)

    def content(self) -> str:
        for option, numbers in self.option_lines.items():
            if option in self.processed:
                for number in numbers:
                    self.lines[number] = ""     # orphaned duplicates
        out, was_empty = [], False
        for line in self.lines:
            if not line and was_empty:
                continue
            was_empty = not line
            out.append(line + "\n")
        return "".join(out)


def _overwrite(path: str, content: str):
    """Replace the file atomically: temp file, fsync, rename, fsync dir."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".",
                                   dir=directory)
    except OSError as err:
        raise ConfigError(f"Rewriting config file: {err.strerror}")
    try:
        with os.fdopen(fd, "w", encoding="utf-8",
                       errors="surrogateescape") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ConfigError(f"Rewriting config file: {err.strerror}")


def _chdir(path: str):
    try:
        os.chdir(path)
    except OSError as err:
        raise ConfigError(err.strerror)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return fh.read()
    except OSError as err:
        raise ConfigError(f"can't open config file '{path}': {err.strerror}")
