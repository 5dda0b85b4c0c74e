"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7.0's multi.c).

While ``c.multi`` is a list, Server.execute queues each command with its
argv and answers +QUEUED; a command it rejects while queuing sets
``c.multi_error``, and EXEC then aborts.  A write to a watched key (or its
expiry, or a FLUSHALL) sets ``c.dirty_cas`` through the server's WATCH
bookkeeping, and EXEC then answers the null array.
"""
from __future__ import annotations

from rcluster.commands.common import no_propagation
from rcluster.commands.table import CommandError, command
from rcluster.resp.codec import NULL_ARRAY, OK, Error

_G = dict(group="transactions")
_CONTROL = "noscript loading stale fast allow_busy"
EXECABORT = Error("EXECABORT Transaction discarded because of previous "
                  "errors.")


@command("multi", 1, _CONTROL, since="1.2.0",
         summary="Mark the start of a transaction block", complexity="O(1)",
         **_G)
def multi(c, argv):
    if c.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    c.multi = []
    return OK


@command("discard", 1, _CONTROL, since="2.0.0",
         summary="Discard all commands issued after MULTI",
         complexity="O(N), when N is the number of queued commands", **_G)
def discard(c, argv):
    if c.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    c.server.discard_transaction(c)
    return OK


def _watched_key_expired(c) -> bool:
    """Has a watched key reached its deadline since WATCH?  Keys already
    expired when they were watched don't count (multi.c's
    isWatchedKeyExpired)."""
    is_expired = c.server.keyspace.is_expired
    return any(not expired_at_watch and is_expired(key)
               for key, expired_at_watch in c.watched.items())


@command("exec", 1, "noscript loading stale skip_slowlog", since="1.2.0",
         summary="Execute all commands issued after MULTI",
         complexity="Depends on commands in the transaction", **_G)
def exec_(c, argv):
    if c.multi is None:
        raise CommandError("ERR EXEC without MULTI")
    server = c.server
    queued, aborted = c.multi, c.multi_error
    dirty = c.dirty_cas or _watched_key_expired(c)
    # The client leaves MULTI (and unwatches) before its commands run.
    server.discard_transaction(c)
    if aborted:
        return EXECABORT
    if dirty:
        return NULL_ARRAY
    # in_exec: blocking commands answer at once instead of blocking.
    server.in_exec = True
    try:
        replies = [server.call(c, cmd, args, send=False)
                   for cmd, args in queued]
    finally:
        server.in_exec = False
    # The queued commands propagated themselves (wrapped in MULTI/EXEC
    # once, when the unit ends); EXEC itself never is.
    no_propagation(c)
    return replies


@command("watch", -2, _CONTROL, keys=(1, -1, 1, "RO"), since="2.2.0",
         summary="Watch the given keys to determine execution of the "
                 "MULTI/EXEC block", complexity="O(1) for every key.", **_G)
def watch(c, argv):
    if c.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    # Once dirty, the next EXEC fails anyway: no point in watching more.
    if not c.dirty_cas:
        for key in argv[1:]:
            c.server.watch(c, key)
    return OK


@command("unwatch", 1, _CONTROL, since="2.2.0",
         summary="Forget about all watched keys", complexity="O(1)", **_G)
def unwatch(c, argv):
    c.server.unwatch_all(c)
    c.dirty_cas = False
    return OK
