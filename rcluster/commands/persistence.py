"""SAVE, BGSAVE, DEBUG RELOAD and INFO persistence.

The work is done by the node's PersistenceService
(``rcluster/persistence/service.py``, ``server.extensions["persistence"]``);
a server without one (sans-IO tests, embedders) answers these commands
with an error saying so, never with a fake OK.
"""
from __future__ import annotations

from rcluster.commands.debug import debug_subcommand
from rcluster.commands.introspection import extend_info_section
from rcluster.commands.table import CommandError, command
from rcluster.logs import logger
from rcluster.resp.codec import OK, Status

log = logger()
_G = dict(group="server", acl="admin dangerous")


def _service(c):
    from rcluster.persistence.service import persistence
    service = persistence(c.server)
    if service is None:
        raise CommandError("ERR persistence is not available on this node")
    return service


@command("save", 1, "admin noscript no_async_loading no_multi",
         since="1.0.0", summary="Synchronously save the dataset to disk",
         complexity="O(N) where N is the total number of keys in all "
                    "databases", **_G)
def save(c, argv):
    from rcluster.persistence.service import SaveError
    service = _service(c)
    if service.bgsave_in_progress:
        raise CommandError("ERR Background save already in progress")
    try:
        service.save_now()
    except SaveError:
        raise CommandError("ERR")
    return OK


@command("bgsave", -1, "admin noscript no_async_loading", since="1.0.0",
         summary="Asynchronously save the dataset to disk",
         complexity="O(1)",
         history=(("3.2.2", "Added the `SCHEDULE` option."),),
         arguments=({"name": "schedule", "type": "pure-token",
                     "token": "SCHEDULE", "since": "3.2.2",
                     "optional": True},), **_G)
def bgsave(c, argv):
    schedule = False
    if len(argv) > 1:
        if len(argv) == 2 and argv[1].lower() == b"schedule":
            schedule = True
        else:
            raise CommandError("ERR syntax error")
    service = _service(c)
    if service.bgsave_in_progress:
        raise CommandError("ERR Background save already in progress")
    aof_busy = service.aof.rewrite_in_progress
    if c.server.in_exec or aof_busy:
        if schedule or c.server.in_exec:
            service.bgsave_scheduled = True
            return Status("Background saving scheduled")
        raise CommandError(
            "ERR Another child process is active (AOF?): can't BGSAVE right "
            "now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE "
            "whenever possible.")
    if not service.start_bgsave():
        raise CommandError("ERR")
    return Status("Background saving started")


@debug_subcommand("reload", 2, None, help=(
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> "
    "values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, "
    "but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush "
    "and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the "
    "contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an "
    "existing RDB",
    "      file to the database."))
def debug_reload(c, argv):
    from rcluster.persistence.service import LoadError, SaveError
    merge, flush, save_first = False, True, True
    for arg in argv[2:]:
        option = arg.lower()
        if option == b"merge":
            merge = True
        elif option == b"noflush":
            flush = False
        elif option == b"nosave":
            save_first = False
        else:
            raise CommandError("ERR DEBUG RELOAD only supports the MERGE, "
                               "NOFLUSH and NOSAVE options.")
    service = _service(c)
    if save_first:
        if service.bgsave_in_progress:
            raise CommandError("ERR Background save already in progress")
        try:
            service.save_now()
        except SaveError:
            raise CommandError("ERR")
    server = c.server
    if flush:
        server.flush_all_dbs()
    try:
        # NOFLUSH without MERGE: a key in both is an error (Redis kills
        # the server there; here the load stops and says so).
        service.load_rdb_now(server.settings.dbfilename, merge=merge)
    except LoadError as err:
        log.warn("{err}", err=err)
        raise CommandError("ERR Error trying to load the RDB dump")
    log.warn("DB reloaded by DEBUG RELOAD")
    return OK


def _persistence_fields(server):
    from rcluster.persistence.service import persistence
    service = persistence(server)
    if service is None:
        return []
    return service.info_fields()


extend_info_section("persistence", _persistence_fields)
