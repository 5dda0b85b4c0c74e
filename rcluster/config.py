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
from dataclasses import dataclass

from rcluster.glob import glob_match
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
    _b("syslog-enabled", False, mutable=False),
    _s("syslog-ident", "redis", mutable=False),
    _e("syslog-facility", "local0", ["user"] + [f"local{i}" for i in range(8)],
       mutable=False),
    _i("databases", 16, 1, _I, mutable=False),
    _b("always-show-logo", False, mutable=False),
    _b("set-proc-title", True, mutable=False),
    _s("proc-title-template", "{title} {listen-addr} {server-mode}"),
    _s("unixsocket", mutable=False),
    Directive("unixsocketperm", "int", 0, False, (), 0, 0o777),
    _i("maxclients", 10000, 1, 2**32 - 1),
    _s("dir", "", mutable=True),
    _s("ignore-warnings"),
    _e("enable-debug-command", "no", _PROTECTED, mutable=False),
    _e("enable-protected-configs", "no", _PROTECTED, mutable=False),
    _e("enable-module-command", "no", _PROTECTED, mutable=False),
    _i("hz", 10, 0, _I),
    _b("dynamic-hz", True),
    _i("io-threads", 1, 1, 128, mutable=False),
    _b("io-threads-do-reads", False, mutable=False),
    _b("disable-thp", True, mutable=False),
    _i("shutdown-timeout", 10, 0, _I),
    _e("shutdown-on-sigint", "default", ("default", "save", "nosave", "now", "force")),
    _e("shutdown-on-sigterm", "default", ("default", "save", "nosave", "now", "force")),
    _b("crash-log-enabled", True),
    _b("crash-memcheck-enabled", True),
    _e("oom-score-adj", "no", ("no", "yes", "relative", "absolute")),
    Directive("oom-score-adj-values", "list", "0 200 800"),
    _b("jemalloc-bg-thread", True),
    _s("bind-source-addr"),
    # Security.
    _s("requirepass", sensitive=True),
    _s("masterauth", sensitive=True),
    _s("masteruser", sensitive=True),
    _s("aclfile", mutable=False),
    _i("acllog-max-len", 128, 0, _L),
    _e("acl-pubsub-default", "resetchannels", ("allchannels", "resetchannels")),
    _e("sanitize-dump-payload", "no", ("no", "yes", "clients")),
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
    _i("active-expire-effort", 1, 1, 10),
    _b("lazyfree-lazy-eviction", False),
    _b("lazyfree-lazy-expire", False),
    _b("lazyfree-lazy-server-del", False),
    _b("lazyfree-lazy-user-del", False),
    _b("lazyfree-lazy-user-flush", False),
    _b("activerehashing", True),
    _b("activedefrag", False),
    _i("active-defrag-cycle-min", 1, 1, 99),
    _i("active-defrag-cycle-max", 25, 1, 99),
    _i("active-defrag-threshold-lower", 10, 0, 1000),
    _i("active-defrag-threshold-upper", 100, 0, 1000),
    _m("active-defrag-ignore-bytes", 100 << 20, 1),
    _i("active-defrag-max-scan-fields", 1000, 1, _L),
    _i("busy-reply-threshold", 5000, 0, _L, aliases=("lua-time-limit",)),
    _i("slowlog-log-slower-than", 10000, -1, _L),
    _i("slowlog-max-len", 128, 0, _L),
    _i("latency-monitor-threshold", 0, 0, _L),
    _b("latency-tracking", True),
    Directive("latency-tracking-info-percentiles", "list", "50 99 99.9"),
    Directive("notify-keyspace-events", "str", ""),
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
    _s("dbfilename", "dump.rdb"),
    _b("rdbcompression", True),
    _b("rdbchecksum", True, mutable=False),
    _b("rdb-del-sync-files", False),
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
    # Replication.
    Directive("replicaof", "replicaof", "", False, ("slaveof",)),
    _b("replica-serve-stale-data", True, aliases=("slave-serve-stale-data",)),
    _b("replica-read-only", True, aliases=("slave-read-only",)),
    _b("replica-lazy-flush", False, aliases=("slave-lazy-flush",)),
    _b("replica-ignore-maxmemory", True, aliases=("slave-ignore-maxmemory",)),
    _b("replica-announced", True),
    _b("replica-ignore-disk-write-errors", False),
    _i("replica-priority", 100, 0, _I, aliases=("slave-priority",)),
    _s("replica-announce-ip", aliases=("slave-announce-ip",)),
    _i("replica-announce-port", 0, 0, 65535, aliases=("slave-announce-port",)),
    _m("repl-backlog-size", 1024 * 1024, 1),
    _i("repl-backlog-ttl", 3600, 0, _L),
    _i("repl-timeout", 60, 1, _I),
    _i("repl-ping-replica-period", 10, 1, _I, aliases=("repl-ping-slave-period",)),
    _b("repl-diskless-sync", True),
    _i("repl-diskless-sync-delay", 5, 0, _I),
    _i("repl-diskless-sync-max-replicas", 0, 0, _I),
    _e("repl-diskless-load", "disabled", ("disabled", "on-empty-db", "swapdb")),
    _b("repl-disable-tcp-nodelay", False),
    _i("min-replicas-to-write", 0, 0, _I, aliases=("min-slaves-to-write",)),
    _i("min-replicas-max-lag", 10, 0, _I, aliases=("min-slaves-max-lag",)),
    _e("propagation-error-behavior", "ignore", ("ignore", "panic", "panic-on-replicas")),
    # Cluster.
    _b("cluster-enabled", False, mutable=False),
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
    _i("tls-session-cache-size", 20 * 1024, 0, _I),
    _i("tls-session-cache-timeout", 300, 0, _I),
)

BY_NAME = {}
for _d in DIRECTIVES:
    BY_NAME[_d.name] = _d
    for _alias in _d.aliases:
        BY_NAME[_alias] = _d

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


def _convert(d: Directive, args: list):
    """Validate and convert the arguments of a directive to its value."""
    if d.kind in ("save", "bind", "obl", "replicaof", "list"):
        return _convert_multi(d, args)
    if len(args) != 1:
        raise ConfigError("wrong number of arguments")
    text = args[0]
    if d.kind == "bool":
        low = text.lower()
        if low not in ("yes", "no"):
            raise ConfigError("argument must be 'yes' or 'no'")
        return low == "yes"
    if d.kind in ("int", "memory"):
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
        return value
    if d.kind == "enum":
        low = text.lower()
        if low not in d.choices:
            raise ConfigError("argument(s) must be one of the following: "
                              + ", ".join(d.choices))
        return low
    return text


def _convert_multi(d: Directive, args: list):
    if d.kind == "save":
        text = " ".join(args).strip()
        parts = text.split()
        if text in ("", '""') or parts == [""]:
            return ""
        if len(parts) % 2 or not all(p.isdigit() for p in parts):
            raise ConfigError("Invalid save parameters")
        return " ".join(parts)
    if d.kind == "bind":
        parts = " ".join(args).split()
        if not parts or len(parts) > 16:
            raise ConfigError("Too many bind addresses specified.")
        return tuple(parts)
    if d.kind == "replicaof":
        parts = " ".join(args).split()
        if parts and [p.lower() for p in parts] == ["no", "one"]:
            return ""
        if len(parts) != 2 or not parts[1].isdigit():
            raise ConfigError("wrong number of arguments")
        return " ".join(parts)
    if d.kind == "obl":
        parts = " ".join(args).split()
        if len(parts) % 4:
            raise ConfigError("Wrong number of arguments in buffer limit configuration.")
        current = dict()
        for j in range(0, len(parts), 4):
            cls, hard, soft, secs = parts[j:j + 4]
            cls = {"slave": "replica"}.get(cls.lower(), cls.lower())
            if cls not in ("normal", "replica", "pubsub"):
                raise ConfigError("Invalid client class specified in buffer limit configuration.")
            try:
                current[cls] = (parse_memory(hard), parse_memory(soft), int(secs))
            except ValueError:
                raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        return current
    return " ".join(args)


def _format(d: Directive, value) -> str:
    """A value as CONFIG GET shows it."""
    if d.kind == "bool":
        return "yes" if value else "no"
    if d.kind in ("int", "memory"):
        return str(value)
    if d.kind == "bind":
        return " ".join(value)
    if d.kind == "obl":
        names = {"normal": "normal", "replica": "slave", "pubsub": "pubsub"}
        return " ".join("%s %d %d %d" % (names[k], *v) for k, v in value.items())
    return value


class Settings:
    """The node's settings; attributes are the directive names with
    underscores (``settings.cluster_node_timeout``)."""

    def __init__(self):
        self.config_file: str | None = None
        self.changed = set()          # directives set away from default
        self.warnings: list = []      # unknown directives seen in files
        for d in DIRECTIVES:
            value = d.default
            if d.kind in ("save", "bind", "obl", "replicaof", "list") \
                    and isinstance(value, str):
                value = _convert_multi(d, value.split()) if value else value
            setattr(self, d.attr, value)
        # The default save rules only apply to redis-server without a
        # config file; rcluster's own entry points pass 'save' explicitly.
        self.listeners = []           # callables(name, value) after a SET

    # -- reading --------------------------------------------------------
    def get(self, name: str):
        return getattr(self, BY_NAME[name].attr)

    def config_get(self, patterns) -> list:
        """(name, text) pairs for CONFIG GET, Redis's order: as matched."""
        seen = {}
        for pattern in patterns:
            low = pattern.lower()
            if not any(ch in low for ch in "*?["):
                d = BY_NAME.get(low)
                if d is not None:
                    seen.setdefault(low if low in BY_NAME else d.name,
                                    self._show(d))
                continue
            for d in DIRECTIVES:
                for name in (d.name,) + d.aliases:
                    if glob_match(low.encode(), name.encode(), nocase=True):
                        seen.setdefault(name, self._show(d))
        return list(seen.items())

    def _show(self, d):
        value = getattr(self, d.attr)
        if d.name == "dir":
            return os.getcwd()
        return _format(d, value)

    # -- writing --------------------------------------------------------
    def apply(self, name: str, args, source="config"):
        """Set one directive from its textual arguments."""
        d = BY_NAME.get(name.lower())
        if d is None:
            raise ConfigError(f"Bad directive or wrong number of arguments")
        value = _convert(d, list(args))
        setattr(self, d.attr, value)
        self.changed.add(d.name)
        return d

    def config_set(self, pairs):
        """CONFIG SET name value [name value ...]: all or nothing."""
        staged = []
        seen = set()
        for name, value in pairs:
            d = BY_NAME.get(name.lower())
            if d is None:
                raise ConfigError(
                    "Unknown option or number of arguments for CONFIG SET - '%s'" % name)
            if not d.mutable:
                raise ConfigError(
                    "CONFIG SET failed (possibly related to argument '%s') - "
                    "can't set immutable config" % name)
            if d.name in seen:
                raise ConfigError(
                    "CONFIG SET failed (possibly related to argument '%s') - "
                    "duplicate parameter" % name)
            seen.add(d.name)
            args = value.split() if d.kind in ("save", "bind", "obl", "list") else [value]
            if d.kind == "save" and not value.strip():
                args = []
            try:
                staged.append((d, _convert(d, args)))
            except ConfigError as err:
                raise ConfigError(
                    "CONFIG SET failed (possibly related to argument '%s') - %s"
                    % (name, err))
        for d, value in staged:
            if d.name == "dir":
                try:
                    os.chdir(value)
                except OSError as err:
                    raise ConfigError(
                        "CONFIG SET failed (possibly related to argument 'dir') - %s"
                        % err.strerror)
            old = getattr(self, d.attr)
            setattr(self, d.attr, value)
            self.changed.add(d.name)
            for listener in self.listeners:
                try:
                    listener(d.name, value)
                except ConfigError as err:
                    setattr(self, d.attr, old)
                    raise ConfigError(
                        "CONFIG SET failed (possibly related to argument '%s') - %s"
                        % (d.name, err))

    def load_file(self, path: str):
        """Read a redis.conf-syntax file (``include`` supported)."""
        self.config_file = os.path.abspath(path)
        self.load_text(_read(path), path)

    def load_text(self, text: str, origin="<string>"):
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            argv = split_args(line.encode())
            if argv is None:
                raise ConfigError(f"{origin}:{lineno}: Unbalanced quotes in configuration line")
            if not argv:
                continue
            name = argv[0].decode().lower()
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
                self.apply(name, args)
            except ConfigError as err:
                raise ConfigError(
                    f"{origin}:{lineno}: '{line}': {err}") from None

    # -- CONFIG REWRITE ---------------------------------------------------
    def rewrite(self, path: str | None = None):
        """Rewrite the config file: keep comments and unknown lines,
        update directives in place, append the rest, drop duplicates."""
        path = path or self.config_file
        if not path:
            raise ConfigError("The server is running without a config file")
        try:
            lines = _read(path).splitlines()
        except ConfigError:
            lines = []
        out, written = [], set()
        for raw in lines:
            argv = split_args(raw.strip().encode()) if raw.strip() and \
                not raw.strip().startswith("#") else None
            d = BY_NAME.get(argv[0].decode().lower()) if argv else None
            if d is None:
                out.append(raw)
                continue
            if d.name in written:
                continue
            written.add(d.name)
            line = self._rewrite_line(d)
            if line is not None:
                out.append(line)
        extra = [d for d in DIRECTIVES if d.name not in written
                 and d.name in self.changed
                 and self._rewrite_line(d) is not None]
        if extra:
            out.append("# Generated by CONFIG REWRITE")
            out.extend(self._rewrite_line(d) for d in extra)
        content = "\n".join(out) + "\n"
        tmp = path + ".tmp-rewrite"
        with open(tmp, "w") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _rewrite_line(self, d):
        value = getattr(self, d.attr)
        if d.name == "dir":
            return "dir " + _quote(os.getcwd())
        if d.kind == "save":
            return 'save ""' if not value else "save " + value
        if d.kind == "replicaof":
            return "replicaof " + value if value else None
        text = _format(d, value)
        if d.kind == "str" and text == "" and value == d.default:
            return None
        return f"{d.name} {_quote(text)}" if d.kind in ("str",) else \
            f"{d.name} {text}"


def _quote(text: str) -> str:
    if text and not any(c in text for c in ' "\'\\\t\r\n'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return fh.read()
    except OSError as err:
        raise ConfigError(f"can't open config file '{path}': {err.strerror}")
