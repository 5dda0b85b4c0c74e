"""The command table: one row per command, the single source of truth.

A row (``Command``) carries the name, arity, flags, key specs and handler.
It drives dispatch, the arity and unknown-command errors, key extraction
(used by cluster routing, WATCH invalidation and COMMAND GETKEYS) and the
``COMMAND`` / ``COMMAND INFO`` / ``COMMAND DOCS`` replies.

Families declare their rows with the ``@command`` decorator, which files
them in the built-in registry; ``CommandTable.build()`` assembles the
built-ins plus whatever command-provider plugins add (see interfaces.py).

Key specs follow Redis 7's model (``begin_search`` + ``find_keys``) so that
extraction and introspection agree by construction.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

# Flags in the order Redis lists them in COMMAND INFO.
FLAG_ORDER = (
    "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
    "blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking",
    "fast", "no_auth", "no_mandatory_keys", "no_async_loading", "no_multi",
    "movablekeys", "allow_busy",
)
# Flags kept on the row but hidden from COMMAND INFO, as in Redis.
HIDDEN_FLAGS = ("may_replicate", "protected", "sentinel", "only_sentinel")
KEY_FLAG_ORDER = ("RO", "RW", "OW", "RM", "access", "update", "insert",
                  "delete", "not_key", "incomplete", "variable_flags")
GROUPS = ("generic", "string", "list", "set", "sorted-set", "hash", "pubsub",
          "transactions", "connection", "server", "scripting", "hyperloglog",
          "cluster", "sentinel", "geo", "stream", "bitmap", "module")
_GROUP_CATEGORY = {
    "generic": "keyspace", "string": "string", "list": "list", "set": "set",
    "sorted-set": "sortedset", "hash": "hash", "pubsub": "pubsub",
    "transactions": "transaction", "connection": "connection",
    "scripting": "scripting", "hyperloglog": "hyperloglog", "geo": "geo",
    "stream": "stream", "bitmap": "bitmap",
}
# ACL categories in the order Redis lists them (ACLCommandCategories).
CATEGORY_ORDER = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
    "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast",
    "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
)


class CommandError(Exception):
    """Raised by a handler for a client error; the text is the reply
    (e.g. ``ERR syntax error`` or ``WRONGTYPE ...``)."""


@dataclass(slots=True, frozen=True)
class KeySpec:
    """Where a command's keys are, in Redis 7 key-spec terms.

    begin_search: ``index`` (``index`` = position) or ``keyword``
    (``keyword`` searched from ``startfrom``; negative = from the end).
    find_keys: ``range`` (``lastkey`` relative to the first key, negative
    counts from the end; ``keystep``; ``limit``) or ``keynum`` (``keynumidx``
    relative to the begin position, then ``firstkey``, ``keystep``).
    """
    flags: tuple = ("RW",)
    index: int | None = None
    keyword: bytes | None = None
    startfrom: int = 0
    lastkey: int = 0
    keystep: int = 1
    limit: int = 0
    keynumidx: int | None = None
    firstkey: int = 1
    notes: str | None = None

    def positions(self, argv) -> list:
        """Key positions in argv; raises InvalidKeys where Redis's
        getKeysUsingKeySpecs gives up (bad numkeys, out of range)."""
        argc = len(argv)
        if self.index is not None:
            first = self.index
        elif self.keyword is not None:
            first = _find_keyword(argv, self.keyword, self.startfrom)
            if first is None:
                return []
        else:
            raise InvalidKeys()
        if self.keynumidx is not None:
            if self.keynumidx >= argc or first + self.keynumidx >= argc:
                raise InvalidKeys()
            numkeys = _parse_int(argv[first + self.keynumidx])
            if numkeys is None or numkeys < 0:
                raise InvalidKeys()
            first += self.firstkey
            last = first + numkeys - 1
        elif self.lastkey >= 0:
            last = first + self.lastkey
        elif not self.limit:
            last = argc + self.lastkey
        else:
            last = first + ((argc - first) // self.limit + self.lastkey)
        if last >= argc or last < first or first >= argc:
            raise InvalidKeys()
        if "incomplete" in self.flags:
            raise InvalidKeys()
        return list(range(first, last + 1, self.keystep))

    def describe(self):
        """The map COMMAND INFO shows for this spec."""
        from rcluster.resp.codec import Map, SetReply, Status
        if self.index is not None:
            begin = Map([(b"type", b"index"),
                         (b"spec", Map([(b"index", self.index)]))])
        elif self.keyword is not None:
            begin = Map([(b"type", b"keyword"),
                         (b"spec", Map([(b"keyword", self.keyword),
                                        (b"startfrom", self.startfrom)]))])
        else:
            begin = Map([(b"type", b"unknown"), (b"spec", Map([]))])
        if self.keynumidx is not None:
            find = Map([(b"type", b"keynum"), (b"spec", Map([
                (b"keynumidx", self.keynumidx), (b"firstkey", self.firstkey),
                (b"keystep", self.keystep)]))])
        elif self.index is not None or self.keyword is not None:
            find = Map([(b"type", b"range"), (b"spec", Map([
                (b"lastkey", self.lastkey), (b"keystep", self.keystep),
                (b"limit", self.limit)]))])
        else:
            find = Map([(b"type", b"unknown"), (b"spec", Map([]))])
        pairs = []
        if self.notes:
            pairs.append((b"notes", self.notes.encode()))
        pairs.append((b"flags", SetReply(
            [Status(f) for f in KEY_FLAG_ORDER if f in self.flags])))
        pairs.append((b"begin_search", begin))
        pairs.append((b"find_keys", find))
        return Map(pairs)

    @property
    def writes(self) -> bool:
        return "RO" not in self.flags


def _find_keyword(argv, keyword, startfrom):
    # As getKeysUsingKeySpecs: case-insensitive, and the search stops
    # before the last argument (or, backwards, before argv[1]).
    argc = len(argv)
    if startfrom > 0:
        indexes = range(startfrom, argc - 1)
    else:
        indexes = range(argc + startfrom, 1, -1)
    keyword = keyword.lower()
    for i in indexes:
        if 1 <= i < argc and argv[i].lower() == keyword:
            return i + 1
    return None


def _parse_int(arg):
    try:
        return int(arg) if arg.strip() == arg and arg else None
    except ValueError:
        return None


class InvalidKeys(Exception):
    """A call whose key arguments can't be located (bad numkeys...)."""


def key_range(first, last, step=1, flags=("RW",), notes=None) -> KeySpec:
    """A spec from Redis's legacy (first, last, step) triple."""
    lastkey = last - first if last >= 0 else last
    return KeySpec(flags=tuple(flags), index=first, lastkey=lastkey,
                   keystep=step, notes=notes)


@dataclass(slots=True, eq=False)
class Command:
    name: str                     # lower case; "parent|sub" for subcommands
    handler: Callable | None
    arity: int
    flags: frozenset = frozenset()
    key_specs: tuple = ()
    get_keys: Callable | None = None   # argv -> key positions (movable keys)
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    complexity: str = ""
    tips: tuple = ()
    subcommands: dict = field(default_factory=dict)
    # Statistics (INFO commandstats).
    calls: int = 0
    usec: int = 0
    rejected_calls: int = 0
    failed_calls: int = 0
    # Optional details for COMMAND INFO / COMMAND DOCS, as in Redis's JSON
    # command files.  ``acl`` lists the explicit ACL categories (None: use
    # the one the group implies); ``arguments`` holds argument docs as
    # dicts shaped like the JSON's (name, type, token, optional, multiple,
    # arguments...); ``history`` holds (version, change) pairs.
    acl: tuple | None = None
    history: tuple = ()
    arguments: tuple = ()
    doc_flags: tuple = ()         # "deprecated", "syscmd"
    deprecated_since: str = ""
    replaced_by: str = ""
    # A check run at dispatch, before the command is queued or run: returns
    # an error text to refuse it (DEBUG's enable-debug-command gate).
    guard: Callable | None = None
    # Set by the server when it adopts the row: may this command skip the
    # per-connection checks when the client is plain (see Server.execute)?
    plain: bool = False
    # Has key arguments (cached: routing asks for every request).
    keyed: bool = field(init=False, default=False)
    # The latency histogram Server.call records into while latency-tracking
    # is on (rcluster/latency.py), else None.
    histogram: object = None

    def __post_init__(self):
        self.keyed = bool(self.key_specs) or self.get_keys is not None

    def key_positions(self, argv, include_not_keys=False) -> list:
        """Key positions; raises InvalidKeys when they can't be found.

        Specs flagged not_key (the channel of SPUBLISH...) are left out,
        except for cluster routing, which hashes them like keys."""
        if self.get_keys is not None:
            return self.get_keys(argv)
        specs = self.key_specs
        if len(specs) == 1 and (include_not_keys or
                                "not_key" not in specs[0].flags):
            return specs[0].positions(argv)
        positions = []
        for spec in specs:
            if include_not_keys or "not_key" not in spec.flags:
                positions.extend(spec.positions(argv))
        return positions

    def keys(self, argv) -> list:
        """The key arguments of a call, in order ([] if they can't be
        located: the handler then reports the syntax error)."""
        try:
            return [argv[i] for i in self.key_positions(argv)]
        except InvalidKeys:
            return []

    def write_keys(self, argv) -> list:
        """The keys this call may modify (for WATCH): non read-only specs."""
        if self.get_keys is not None:
            # A get_keys function may give each key's flags (its
            # ``key_flags``: argv -> [(position, flags)]), as SORT does:
            # only its STORE key is written, not the key it sorts.
            key_flags = getattr(self.get_keys, "key_flags", None)
            if key_flags is not None:
                return [argv[i] for i, flags in key_flags(argv)
                        if "RO" not in flags]
            return self.keys(argv)
        if len(self.key_specs) < 2:
            return self.keys(argv)
        out = []
        try:
            for spec in self.key_specs:
                if spec.writes and "not_key" not in spec.flags:
                    out.extend(argv[i] for i in spec.positions(argv))
        except InvalidKeys:
            pass
        return out

    @property
    def has_keys(self) -> bool:
        return self.keyed

    @property
    def legacy_range(self):
        """(first, last, step) for COMMAND INFO (Redis's legacy key range)."""
        return _legacy_range(self.key_specs)[0]

    @property
    def movable_keys(self) -> bool:
        """True when the legacy range can't describe the keys: COMMAND INFO
        then shows the ``movablekeys`` flag and clients ask GETKEYS."""
        if self.get_keys is not None and not self.key_specs:
            return True
        return _legacy_range(self.key_specs)[1]

    @property
    def info_flags(self) -> list:
        """The flags COMMAND INFO shows, in Redis's order."""
        flags = self.flags
        movable = self.movable_keys
        return [f for f in FLAG_ORDER if (f in flags and f != "movablekeys")
                or (f == "movablekeys" and movable)]

    @property
    def acl_categories(self) -> list:
        """The explicit categories (``acl``, or the group's) plus those the
        flags imply (Redis's setImplicitACLCategories), in Redis's order."""
        if self.acl is not None:
            cats = set(self.acl)
        elif self.group in _GROUP_CATEGORY:
            cats = {_GROUP_CATEGORY[self.group]}
        else:
            cats = set()
        flags = self.flags
        if "write" in flags:
            cats.add("write")
        if "readonly" in flags and "scripting" not in cats:
            cats.add("read")
        if "admin" in flags:
            cats.update(("admin", "dangerous"))
        if "pubsub" in flags:
            cats.add("pubsub")
        cats.add("fast" if "fast" in flags else "slow")
        if "blocking" in flags:
            cats.add("blocking")
        return [c for c in CATEGORY_ORDER if c in cats]


def _plain_range(spec) -> bool:
    return spec.index is not None and spec.keynumidx is None


def _absolute_last(spec) -> int:
    return spec.lastkey + spec.index if spec.lastkey >= 0 else spec.lastkey


def _legacy_range(specs):
    """Redis's populateCommandLegacyRangeSpec: ((first, last, step), movable).

    One plain range spec is the legacy range; otherwise the consecutive
    step-1 range specs are merged, and anything else makes the keys
    movable."""
    if not specs:
        return (0, 0, 0), False
    if len(specs) == 1 and _plain_range(specs[0]):
        spec = specs[0]
        return ((spec.index, _absolute_last(spec), spec.keystep),
                "incomplete" in spec.flags)
    first = None
    last = prev_last = 0
    movable = False
    for spec in specs:
        if not _plain_range(spec) or spec.keystep != 1 or (
                prev_last and prev_last != spec.index - 1):
            movable = True
            continue
        if "incomplete" in spec.flags:
            movable = True
        first = spec.index if first is None else min(first, spec.index)
        # Redis compares as unsigned: a negative (from the end) last wins.
        last = max(last, _absolute_last(spec), key=lambda v: v % 2**32)
        prev_last = last
    if first is None:
        return (0, 0, 0), True
    return (first, last, 1), movable


_BUILTINS: list = []


def command(name, arity, flags="", keys=None, specs=(), get_keys=None,
            group="generic", summary="", since="1.0.0", complexity="",
            tips=(), parent=None, acl=None, **docs):
    """Declare a built-in command (or, with ``parent``, a subcommand).

    ``keys`` is Redis's legacy triple ``(first, last, step)``, optionally
    with key-spec flags as a fourth item; ``specs`` gives full KeySpecs.
    ``acl`` is the JSON's acl_categories, space separated ("dangerous");
    ``docs`` may give history, arguments, doc_flags, deprecated_since and
    replaced_by for COMMAND DOCS.
    """
    flagset = frozenset(flags.split())
    acl = tuple(acl.split()) if isinstance(acl, str) else acl

    def register(handler):
        key_specs = tuple(specs)
        if keys is not None:
            first, last, step, *rest = keys
            kflags = tuple(rest[0].split()) if rest else (
                ("RO", "access") if "readonly" in flagset else ("RW",))
            key_specs = (key_range(first, last, step, kflags),)
        fs = flagset
        if get_keys is not None:
            fs = fs | {"movablekeys"}
        full = f"{parent}|{name}" if parent else name
        row = Command(full, handler, arity, fs, key_specs, get_keys, group,
                      summary, since, complexity, tuple(tips), acl=acl,
                      **docs)
        _BUILTINS.append((parent, name, row))
        return handler
    return register


def container(name, group, summary, since="1.0.0", flags="",
              complexity="Depends on subcommand."):
    """Declare a command that only dispatches to subcommands (CONFIG...).
    Like Redis's containers it has no ACL category of its own (@slow)."""
    _BUILTINS.append((None, name, Command(name, None, -2,
                                          frozenset(flags.split()), (),
                                          None, group, summary, since,
                                          complexity, acl=())))


class CommandTable:
    """Lookup by lower-case name, with subcommand dispatch."""

    def __init__(self, rows=()):
        self.commands: dict = {}
        for parent, name, row in rows:
            self.add(row, parent)

    @classmethod
    def build(cls, providers=None) -> "CommandTable":
        """The built-in families, then each command provider's rows."""
        import rcluster.commands  # noqa: F401 - registers the families
        # Each table gets its own rows: statistics are per server.
        table = cls((parent, name, _copy(row))
                    for parent, name, row in _BUILTINS)
        if providers is None:
            from rcluster.interfaces import discover_providers
            providers = discover_providers()
        for provider in providers:
            for row in provider.commands():
                if row.name in table.commands:
                    # A plugin extends the table; it never replaces a row.
                    from rcluster.logs import logger
                    logger().warn(
                        "Command provider {provider}: '{name}' already "
                        "exists, ignored", provider=getattr(
                            provider, "name", provider), name=row.name)
                    continue
                table.add(_copy(row), None)
        return table

    def add(self, row: Command, parent: str | None = None):
        if parent is None:
            existing = self.commands.get(row.name)
            if existing is not None and existing.handler is None:
                row.subcommands = existing.subcommands
            self.commands[row.name] = row
        else:
            container_row = self.commands.get(parent)
            if container_row is None:
                container_row = Command(parent, None, -2)
                self.commands[parent] = container_row
            container_row.subcommands[row.name.split("|", 1)[1]] = row

    def get(self, name: str):
        return self.commands.get(name)

    def lookup(self, argv):
        """(command, error text): the row argv runs, or why there is none."""
        try:
            name = argv[0].lower().decode()
        except UnicodeDecodeError:
            name = None
        row = self.commands.get(name) if name is not None else None
        if row is None:
            return None, unknown_command_error(argv)
        # A container alone (CONFIG) fails the arity check below; a command
        # that also runs alone (COMMAND) is its own row.
        if row.subcommands and len(argv) >= 2:
            try:
                sub = row.subcommands.get(argv[1].lower().decode())
            except UnicodeDecodeError:
                sub = None
            if sub is None:
                return None, "ERR unknown subcommand '%s'. Try %s HELP." % (
                    _text(argv[1])[:128], row.name.upper())
            row = sub
        arity = row.arity
        if (arity > 0 and arity != len(argv)) or len(argv) < -arity:
            return None, f"ERR wrong number of arguments for '{row.name}' command"
        return row, None

    def find(self, argv):
        """The row argv names, arity unchecked, or None (COMMAND GETKEYS)."""
        row = self.commands.get(_text(argv[0]).lower())
        if row is not None and row.subcommands and len(argv) >= 2:
            row = row.subcommands.get(_text(argv[1]).lower())
        return row

    def lookup_name(self, name: bytes):
        """The row for 'name' or 'parent|sub' (COMMAND INFO/DOCS)."""
        text = _text(name).lower()
        parent, _, sub = text.partition("|")
        row = self.commands.get(parent)
        if row is not None and sub:
            row = row.subcommands.get(sub)
        return row

    def __iter__(self):
        return iter(self.commands.values())

    def __len__(self):
        return len(self.commands)


def _copy(row: Command) -> Command:
    """A fresh row (own statistics) for one server's table."""
    return dataclasses.replace(
        row, subcommands={name: _copy(sub) for name, sub in row.subcommands.items()},
        calls=0, usec=0, rejected_calls=0, failed_calls=0, histogram=None)


def _text(arg: bytes) -> str:
    # surrogateescape: the codec writes the client's own bytes back in
    # error texts, as Redis does.
    return arg.decode("utf-8", "surrogateescape")


def unknown_command_error(argv) -> str:
    args = ""
    for arg in argv[1:]:
        if len(args) >= 128:
            break
        args += "'%s' " % _text(arg)[:128 - len(args)]
    return "ERR unknown command '%s', with args beginning with: %s" % (
        _text(argv[0])[:128], args)
