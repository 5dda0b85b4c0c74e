"""BGREWRITEAOF and DEBUG LOADAOF (the append-only file, persistence/aof.py).

The AOF is the node's ``Aof`` (``server.aof``, made by the persistence
service); a server without one answers with an error saying so.
"""
from __future__ import annotations

from rcluster.commands.common import no_propagation
from rcluster.commands.debug import debug_subcommand
from rcluster.commands.table import CommandError, command
from rcluster.logs import logger
from rcluster.resp.codec import OK, Status

log = logger()


def _aof(c):
    aof = c.server.aof
    if aof is None:
        raise CommandError("ERR the append only file is not available on "
                           "this node")
    return aof


@command("bgrewriteaof", 1, "admin noscript no_async_loading",
         group="server", acl="admin dangerous", since="1.0.0",
         summary="Asynchronously rewrite the append-only file",
         complexity="O(1)")
def bgrewriteaof(c, argv):
    return Status(_aof(c).rewrite())


@debug_subcommand("loadaof", 2, help=(
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory."))
def debug_loadaof(c, argv):
    from rcluster.persistence.aof import AofLoadError
    aof = _aof(c)
    try:
        aof.debug_loadaof()
    except AofLoadError as err:
        log.warn("{err}", err=str(err))
        raise CommandError("ERR Error loading the append only file: %s"
                           % err) from None
    finally:
        # The reload is no write to propagate (Redis zeroes server.dirty).
        no_propagation(c)
    return OK
