"""Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN...), sans-IO.

A blocked client waits on a set of keys with a deadline.  When a write
touches one of those keys (the server signals every key a write command
wrote), the clients waiting on it are retried in arrival order: the
blocking command simply runs again, and either serves the client or leaves
it waiting.  A deadline fires through the injected clock's callLater.
"""
from __future__ import annotations

from dataclasses import dataclass

from rcluster.resp.codec import Error

# Returned by a handler that left its client blocked: no reply yet.
BLOCKED = object()


@dataclass(eq=False)
class BlockedOn:
    keys: tuple
    cmd: object
    argv: list
    timeout_reply: object
    timer: object = None
    # While the command runs again after a write: the key written.
    ready_key: bytes = None


class Blocking:
    def __init__(self, server):
        self.server = server
        self.keys: dict = {}        # key -> list of waiting clients, FIFO
        self.ready: list = []       # keys written since the last serve
        self._ready_set: set = set()

    @property
    def count(self) -> int:
        """Clients waiting on keys now."""
        return sum(1 for c in self.server.clients.values()
                   if isinstance(c.blocked, BlockedOn))

    def block(self, client, keys, timeout_ms: int, cmd, argv, timeout_reply):
        """Park client on keys; timeout_ms is relative, 0 = forever.

        Called by a handler that found nothing to serve; it then returns
        BLOCKED.  Inside MULTI (or a retry) nothing is parked: the handler
        gets the timeout reply to return at once."""
        if self.server.in_exec:
            return timeout_reply
        current = client.blocked
        if isinstance(current, BlockedOn) and current.ready_key is not None:
            return BLOCKED
        entry = BlockedOn(tuple(keys), cmd, list(argv), timeout_reply)
        for key in entry.keys:
            waiting = self.keys.setdefault(key, [])
            if client not in waiting:
                waiting.append(client)
        if timeout_ms > 0:
            entry.timer = self.server.clock.callLater(
                timeout_ms / 1000.0, self._timed_out, client, entry)
        client.blocked = entry
        return BLOCKED

    def woken_by(self, client):
        """The written key a blocked client's command is being retried for,
        or None when the command runs normally."""
        entry = client.blocked
        if isinstance(entry, BlockedOn):
            return entry.ready_key
        return None

    def serve_order(self, client, keys):
        """Keys in the order a pop should try them: on a retry the key that
        was written comes first, as Redis serves the key that got ready."""
        key = self.woken_by(client)
        if key is None or key not in keys:
            return keys
        return [key] + [k for k in keys if k != key]

    def signal(self, keys):
        for key in keys:
            if key in self.keys and key not in self._ready_set:
                self._ready_set.add(key)
                self.ready.append(key)

    def serve_ready(self):
        """Retry the clients waiting on keys that were written."""
        server = self.server
        while self.ready:
            ready, self.ready = self.ready, []
            self._ready_set.clear()
            for key in ready:
                for client in list(self.keys.get(key, ())):
                    entry = client.blocked
                    if not isinstance(entry, BlockedOn):
                        continue
                    entry.ready_key = key
                    server.keyspace.tick(server.now_ms())
                    reply = server.call(client, entry.cmd, entry.argv, send=False)
                    entry.ready_key = None
                    # Each served client is an execution unit of its own.
                    if server.write_path.active:
                        server.write_path.flush()
                    if reply is not BLOCKED:
                        self.unblock(client, reply)

    def unblock(self, client, reply):
        entry = client.blocked
        self._detach(client, entry)
        client.blocked = None
        client.complete(reply)

    def _timed_out(self, client, entry):
        if client.blocked is entry:
            entry.timer = None
            self.unblock(client, entry.timeout_reply)

    def unblock_by_request(self, client, error: bool) -> bool:
        """CLIENT UNBLOCK: reply the timeout value or an UNBLOCKED error."""
        entry = client.blocked
        if not isinstance(entry, BlockedOn):
            return False
        reply = Error("UNBLOCKED client unblocked via CLIENT UNBLOCK") \
            if error else entry.timeout_reply
        self.unblock(client, reply)
        return True

    def forget(self, client):
        entry = client.blocked
        if isinstance(entry, BlockedOn):
            self._detach(client, entry)
        client.blocked = None

    def _detach(self, client, entry):
        if not isinstance(entry, BlockedOn):
            return
        if entry.timer is not None and entry.timer.active():
            entry.timer.cancel()
        for key in entry.keys:
            waiting = self.keys.get(key)
            if waiting and client in waiting:
                waiting.remove(client)
                if not waiting:
                    del self.keys[key]
