"""MIGRATE (Redis 7.0's migrateCommand), run as a job on the reactor by
``rcluster.cluster.migration``: the client waits for its reply, every
other client is served meanwhile.

Parsing and argument errors are Redis's; the job gives the rest of the
replies (+OK, +NOKEY, -IOERR ..., "Target instance replied with error").
"""
from __future__ import annotations

from rcluster.cluster.migration import migrations_of
from rcluster.commands.common import SYNTAX, parse_int
from rcluster.commands.table import CommandError, KeySpec, command
from rcluster.resp.codec import OK

KEYS_NOT_EMPTY = ("ERR When using MIGRATE KEYS option, the key argument "
                  "must be set to the empty string")


def migrate_get_keys(argv) -> list:
    """Redis's migrateGetKeys: argv[3], or what follows KEYS."""
    argc = len(argv)
    first, num = 3, 1
    i = 6
    while i < argc:
        opt = argv[i].lower()
        if opt == b"auth":
            i += 1
        elif opt == b"auth2":
            i += 2
        elif opt == b"keys":
            if argv[3]:
                return []
            first = i + 1
            num = argc - first
            break
        i += 1
    return list(range(first, first + num))


_SPECS = [
    KeySpec(flags=("RW", "access", "delete"), index=3),
    KeySpec(flags=("RW", "access", "delete", "incomplete"), keyword=b"KEYS",
            startfrom=-2, lastkey=-1),
]
_ARGS = (
    {"name": "host", "type": "string"},
    {"name": "port", "type": "integer"},
    {"name": "key_or_empty_string", "type": "oneof", "arguments": (
        {"name": "key", "type": "key", "key_spec_index": 0},
        {"name": "empty_string", "type": "pure-token", "token": ""})},
    {"name": "destination-db", "type": "integer"},
    {"name": "timeout", "type": "integer"},
    {"name": "copy", "type": "pure-token", "token": "COPY", "since": "3.0.0",
     "optional": True},
    {"name": "replace", "type": "pure-token", "token": "REPLACE",
     "since": "3.0.0", "optional": True},
    {"name": "authentication", "type": "oneof", "optional": True,
     "arguments": (
         {"name": "password", "type": "string", "token": "AUTH",
          "since": "4.0.7", "optional": True},
         {"name": "username_password", "type": "block", "token": "AUTH2",
          "since": "6.0.0", "optional": True, "arguments": (
              {"name": "username", "type": "string"},
              {"name": "password", "type": "string"})})},
    {"name": "key", "type": "key", "token": "KEYS", "since": "3.0.6",
     "optional": True, "multiple": True, "key_spec_index": 1},
)
_HISTORY = (("3.0.0", "Added the `COPY` and `REPLACE` options."),
            ("3.0.6", "Added the `KEYS` option."),
            ("4.0.7", "Added the `AUTH` option."),
            ("6.0.0", "Added the `AUTH2` option."))


def _get_keys(argv):
    return migrate_get_keys(argv)


@command("migrate", -6, "write", specs=_SPECS, get_keys=_get_keys,
         acl="keyspace dangerous", tips=("nondeterministic_output",),
         since="2.6.0", group="generic",
         summary="Atomically transfer a key from a Redis instance to another "
         "one.", complexity="This command actually executes a DUMP+DEL in "
         "the source instance, and a RESTORE in the target instance. See the "
         "pages of these commands for time complexity. Also an O(N) data "
         "transfer between the two instances is performed.",
         history=_HISTORY, arguments=_ARGS)
def migrate(c, argv):
    copy = replace = False
    username = password = None
    first_key, num_keys = 3, 1
    argc = len(argv)
    j = 6
    while j < argc:
        opt = argv[j].lower()
        more = argc - 1 - j
        if opt == b"copy":
            copy = True
        elif opt == b"replace":
            replace = True
        elif opt == b"auth":
            if not more:
                raise CommandError(SYNTAX)
            j += 1
            password = argv[j]
        elif opt == b"auth2":
            if more < 2:
                raise CommandError(SYNTAX)
            username, password = argv[j + 1], argv[j + 2]
            j += 2
        elif opt == b"keys":
            if argv[3]:
                raise CommandError(KEYS_NOT_EMPTY)
            first_key = j + 1
            num_keys = argc - j - 1
            break
        else:
            raise CommandError(SYNTAX)
        j += 1
    timeout = parse_int(argv[5])
    dbid = parse_int(argv[4])
    if timeout <= 0:
        timeout = 1000
    server = c.server
    if server.in_exec:
        # A job can't park a client inside MULTI/EXEC or a script (Redis
        # would block the whole server there): refuse loudly.
        raise CommandError("ERR MIGRATE inside MULTI/EXEC or a script is "
                           "not supported by rcluster")
    try:
        port = int(argv[2])
    except ValueError:
        port = 0
    host = argv[1].decode("utf-8", "replace")
    keys = argv[first_key:first_key + num_keys]
    return migrations_of(server).migrate(c, host, port, dbid, timeout, copy,
                                         replace, username, password, keys)


# -- atomic slot migration: CLUSTER MIGRATESLOTS and friends ------------------

def _cluster_sub(name, arity, flags, summary, **kw):
    return command(name, arity, flags, group="cluster", since="9.0.0",
                   parent="cluster", complexity="O(N) where N is the total "
                   "number of slots", summary=summary, **kw)


def _slot_arg(arg) -> int:
    from rcluster.commands.cluster import _slot
    return _slot(arg)


def _parse_moves(state, argv):
    """SLOTSRANGE s e [s e ...] NODE id [SLOTSRANGE ... NODE id ...] ->
    [(slots, node)]."""
    moves = []
    j = 2
    argc = len(argv)
    while j < argc:
        if argv[j].lower() != b"slotsrange":
            raise CommandError(SYNTAX)
        j += 1
        slots = []
        while j + 1 < argc and argv[j].lower() != b"node":
            start, end = _slot_arg(argv[j]), _slot_arg(argv[j + 1])
            if start > end:
                raise CommandError(f"ERR start slot number {start} is "
                                   f"greater than end slot number {end}")
            slots.extend(range(start, end + 1))
            j += 2
        if not slots or j + 1 >= argc or argv[j].lower() != b"node":
            raise CommandError(SYNTAX)
        node = state.lookup(argv[j + 1])
        if node is None:
            raise CommandError("ERR Unknown node %s"
                               % argv[j + 1].decode("utf-8", "replace"))
        moves.append((slots, node))
        j += 2
    return moves


@_cluster_sub("migrateslots", -6, "admin stale no_async_loading",
              "Migrate the given slots from this node to the specified "
              "node atomically.")
def cluster_migrateslots(c, argv):
    from rcluster.commands.cluster import cluster_of
    state = cluster_of(c)
    me = state.myself
    if not me.is_master:
        raise CommandError("ERR Please use MIGRATESLOTS only with masters.")
    moves = _parse_moves(state, argv)
    m = migrations_of(c.server)
    seen = set()
    for slots, node in moves:
        if node is me:
            raise CommandError("ERR Can't migrate slots to myself")
        if not node.is_master:
            raise CommandError("ERR Target node is not a master")
        for slot in slots:
            if state.slots[slot] is not me:
                raise CommandError(f"ERR I'm not the owner of hash slot {slot}")
            if slot in seen or m.exporting(slot) is not None:
                raise CommandError(f"ERR Slot {slot} is already being "
                                   "migrated")
            if state.migrating_to(slot) is not None or \
                    state.importing_from(slot) is not None:
                raise CommandError(f"ERR Slot {slot} has an open SETSLOT "
                                   "migration")
            seen.add(slot)
    for slots, node in moves:
        m.export(slots, node)
    return OK


@_cluster_sub("getslotmigrations", 2, "stale loading",
              "Get the status of ongoing and recently finished slot "
              "migrations.", tips=("nondeterministic_output",))
def cluster_getslotmigrations(c, argv):
    from rcluster.commands.cluster import cluster_of
    from rcluster.resp.codec import Map
    cluster_of(c)
    m = migrations_of(c.server)
    out = [job.describe() for job in m.exports]
    for imp in m.imports.values():
        from rcluster.cluster.migration import format_ranges
        out.append(Map([
            (b"operation", b"IMPORT"),
            (b"slot_ranges", format_ranges(imp.slots).encode()),
            (b"source_node", imp.source.name.encode()),
            (b"create_time", int(imp.created)),
            (b"state", imp.state.encode()),
            (b"keys_received", imp.keys)]))
    return out


@_cluster_sub("cancelslotmigrations", 2, "admin stale",
              "Cancel all the ongoing slot migrations of this node.")
def cluster_cancelslotmigrations(c, argv):
    from rcluster.commands.cluster import cluster_of
    cluster_of(c)
    m = migrations_of(c.server)
    for job in m.exports:
        job.cancel("canceled by CLUSTER CANCELSLOTMIGRATIONS")
    return OK


@_cluster_sub("syncslots", -3, "admin stale no_async_loading",
              "An internal command of atomic slot migration (rcluster to "
              "rcluster).", doc_flags=("syscmd",))
def cluster_syncslots(c, argv):
    from rcluster.commands.cluster import cluster_of, engine_of
    from rcluster.commands.common import no_propagation
    state = cluster_of(c)
    server = c.server
    m = migrations_of(server)
    sub = argv[2].lower()
    if sub == b"begin" and len(argv) >= 6 and len(argv) % 2 == 0:
        if not state.myself.is_master:
            raise CommandError("ERR Please use SYNCSLOTS only with masters.")
        source = state.lookup(argv[3])
        if source is None:
            raise CommandError("ERR Unknown node %s"
                               % argv[3].decode("utf-8", "replace"))
        slots = []
        for j in range(4, len(argv), 2):
            start, end = _slot_arg(argv[j]), _slot_arg(argv[j + 1])
            slots.extend(range(start, end + 1))
        for slot in slots:
            if state.slots[slot] is not source:
                raise CommandError(f"ERR Slot {slot} is not served by "
                                   f"{source.name}")
        m.begin_import(c, source, slots)
        return OK
    imp = m.imports.get(c.id)
    if imp is None:
        raise CommandError("ERR No slot import in progress on this "
                           "connection")
    if sub == b"run" and len(argv) >= 4:
        sub_argv = list(argv[3:])
        cmd, error = server.table.lookup(sub_argv)
        if cmd is None:
            raise CommandError(error)
        for key in cmd.keys(sub_argv):
            from rcluster.cluster.keyslot import keyslot
            if keyslot(key) not in imp.slots:
                raise CommandError("ERR Key outside of the imported slots")
        if not cmd.keys(sub_argv):
            raise CommandError("ERR SYNCSLOTS RUN needs a keyed command")
        # As a replica runs its master's stream: a staged key expires
        # when the source says so (its DEL), never by itself here.
        ks = server.keyspace
        mode, ks.replica_mode = ks.replica_mode, 2
        try:
            reply = server.call(c, cmd, sub_argv, send=False)
        finally:
            ks.replica_mode = mode
        no_propagation(c)
        imp.keys += 1
        return reply
    if sub == b"load" and (len(argv) == 4 or
                           len(argv) >= 6 and len(argv) % 3 == 0):
        return _syncslots_load(c, imp, argv)
    if sub == b"finish" and len(argv) in (3, 4):
        # FINISH [<the source's current epoch>]
        source_epoch = parse_int(argv[3]) if len(argv) == 4 else 0
        if imp.state != "importing":
            m.end_import(c, cancel=True)
            raise CommandError("ERR The import was flushed: it can't finish")
        m.end_import(c, cancel=False)
        engine_of(c).take_slots(sorted(imp.slots), source_epoch)
        return OK
    if sub == b"cancel" and len(argv) == 3:
        m.end_import(c, cancel=True)
        return OK
    raise CommandError(SYNTAX)


def _info_migrations(server):
    """INFO slot_migrations (only when asked by name: Redis has none):
    MIGRATE's counters and a line per atomic move, newest last."""
    m = server.extensions.get("migration")
    if m is None:
        return [("migrate_cached_sockets", 0), ("migrate_keys_in_flight", 0),
                ("migrate_keys_migrated", 0), ("slot_migrations_active", 0),
                ("slot_imports_active", 0)]
    from rcluster.cluster.migration import format_ranges
    fields = list(m.info())
    for i, job in enumerate(m.exports):
        elapsed = max(job.updated - job.created, 1e-3)
        fields.append((f"migration{i}", ",".join([
            f"name={job.name}", f"state={job.state}",
            f"slots={format_ranges(job.slots).replace(' ', ';')}",
            f"target={job.node.name}", f"keys_sent={job.keys_sent}",
            f"keys_left={job.keys_left()}", f"bytes={job.bytes_sent}",
            f"keys_per_sec={int(job.keys_sent / elapsed)}"])))
    return fields


def _register_info():
    from rcluster.commands.introspection import info_section
    info_section("slot_migrations", "Slot Migrations",
                 default=None)(_info_migrations)


_register_info()


def _syncslots_load(c, imp, argv):
    """SYNCSLOTS LOAD <records> (migration.pack_load), or LOAD key ttl
    payload [key ttl payload ...]: many small keys in one command (ttl in
    ms, 0 none, -1 = the key is gone: DEL).  Each key reaches
    replicas/AOF as RESTORE ... REPLACE [ABSTTL], SET ... [PXAT] (a
    string sent as it is) or DEL."""
    from rcluster.cluster.keyslot import keyslot
    from rcluster.cluster.migration import unpack_load
    from rcluster.commands.common import also_propagate, no_propagation
    from rcluster.persistence.rdb import RdbError, load_payload
    server = c.server
    ks = server.keyspace
    settings = server.settings
    if len(argv) == 4:
        try:
            triples = unpack_load(argv[3])
        except ValueError as err:
            raise CommandError(str(err))
    else:
        triples = [(argv[j], parse_int(argv[j + 1]), argv[j + 2], False)
                   for j in range(3, len(argv), 3)]
    values = []
    slots = imp.slots
    for key, ttl, payload, raw in triples:
        if keyslot(key) not in slots:
            raise CommandError("ERR Key outside of the imported slots")
        if ttl < 0:
            values.append(None)
            continue
        if raw:                 # a string value as it is
            values.append(payload)
            continue
        try:
            values.append(load_payload(payload, settings))
        except RdbError as err:
            raise CommandError("ERR " + str(err))
    now = ks.now
    for (key, ttl, payload, raw), value in zip(triples, values):
        if value is None:
            if ks.delete(key):
                also_propagate(c, [b"DEL", key])
            continue
        ks.set(key, value)
        if ttl > 0:
            ks.set_expire(key, now + ttl)
            deadline = b"%d" % (now + ttl)
            also_propagate(c, [b"SET", key, value, b"PXAT", deadline]
                           if raw else
                           [b"RESTORE", key, deadline, payload, b"REPLACE",
                            b"ABSTTL"])
        elif raw:
            also_propagate(c, [b"SET", key, value])
        else:
            also_propagate(c, [b"RESTORE", key, b"0", payload, b"REPLACE"])
    no_propagation(c)
    server.write_path.touched([t[0] for t in triples], c)
    imp.keys += len(triples)
    return len(triples)
