"""The epoll reactor's poll step without Twisted's legacy log context.

Twisted's ``EPollReactor.doPoll`` hands every ready descriptor to
``_doReadOrWrite`` through ``twisted.python.log.callWithLogger``, which
pushes and pops a logging context (the selectable's ``logPrefix()``) for
the legacy ``log.msg`` API, around each event.  rcluster logs with
``twisted.logger`` and never reads that context, and for a node serving
one-request round trips (redis-cli resharding, the cluster bus, an idle
cron) the context costs more than our own handling of the request: a PING
answered by a live node took 12.1 us of CPU with it and 10.4 us without.

``install(reactor)`` gives an ``EPollReactor`` a ``doIteration`` that does
what Twisted's does minus the context: ``_doReadOrWrite`` still catches
and logs what a protocol raises and drops that connection; anything else
reaches the reactor's main loop, which logs it.  Any other reactor
(``twistd --reactor=select``...) or an EPollReactor without the private
attributes this relies on is left as it is.
"""
from __future__ import annotations

import errno
import types


def _do_poll(self, timeout):
    if timeout is None:
        timeout = -1            # wait until something happens
    try:
        events = self._poller.poll(timeout, len(self._selectables))
    except OSError as err:
        if err.errno == errno.EINTR:
            return
        raise
    handle = self._doReadOrWrite
    selectables = self._selectables
    for fd, event in events:
        selectable = selectables.get(fd)
        if selectable is not None:
            handle(selectable, fd, event)


def install(reactor) -> bool:
    """Use _do_poll for this reactor's iterations; whether it was."""
    try:
        from twisted.internet.epollreactor import EPollReactor
    except ImportError:         # pragma: no cover - not Linux
        return False
    if type(reactor) is not EPollReactor or not all(
            hasattr(reactor, name)
            for name in ("_poller", "_selectables", "_doReadOrWrite")):
        return False
    reactor.doIteration = types.MethodType(_do_poll, reactor)
    return True
