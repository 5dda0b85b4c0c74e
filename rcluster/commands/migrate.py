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
    {"name": "key-selector", "type": "oneof", "arguments": (
        {"name": "key", "type": "key", "key_spec_index": 0},
        {"name": "empty-string", "type": "pure-token", "token": '""'})},
    {"name": "destination-db", "type": "integer"},
    {"name": "timeout", "type": "integer"},
    {"name": "copy", "type": "pure-token", "token": "COPY", "since": "3.0.0",
     "optional": True},
    {"name": "replace", "type": "pure-token", "token": "REPLACE",
     "since": "3.0.0", "optional": True},
    {"name": "authentication", "type": "oneof", "optional": True,
     "arguments": (
         {"name": "auth", "type": "string", "token": "AUTH",
          "since": "4.0.7"},
         {"name": "auth2", "type": "block", "token": "AUTH2",
          "since": "6.0.0", "arguments": (
              {"name": "username", "type": "string"},
              {"name": "password", "type": "string"})})},
    {"name": "keys", "type": "key", "token": "KEYS", "since": "3.0.6",
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
