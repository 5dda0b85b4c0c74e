"""Replication ids, offsets and the backlog (sans-IO).

The backlog holds the last ``repl-backlog-size`` bytes of the replication
stream (what the master sent its replicas), so a replica that lost its
link can ask for the part it missed (``PSYNC replid offset``) instead of
a whole new dataset.  Offsets count bytes of that stream since the
replication id was created; ``offset`` in PSYNC is the next byte the
replica wants (its processed offset + 1), as in Redis.

Two ids, as Redis 7.0 (replication.c, "PSYNC2"): ``replid`` is the current
history, ``replid2`` the one it continues (a promoted replica keeps its
old master's id there), valid up to ``second_offset`` (exclusive): a
sibling that followed the old master can continue with the new one.
"""
from __future__ import annotations

import os

NO_REPLID = "0" * 40


def new_replid() -> str:
    return os.urandom(20).hex()


def encode_command(argv) -> bytes:
    """An argv as the multibulk a master sends (the canonical form: its
    length is what the command adds to the replication offset)."""
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        if arg.__class__ is not bytes:
            arg = bytes(arg) if not isinstance(arg, (int, str)) else \
                (b"%d" % arg if isinstance(arg, int) else arg.encode())
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)


def command_size(argv) -> int:
    """len(encode_command(argv)), without encoding."""
    n = len(argv)
    size = 4 if n < 10 else 3 + len(str(n))
    for arg in argv:
        k = len(arg)
        size += k + (6 if k < 10 else 7 if k < 100 else 8 if k < 1000
                     else 5 + len(str(k)))
    return size


class Backlog:
    """The circular backlog: the last ``size`` bytes of the stream, ending
    at ``end`` (the master's replication offset).

    Kept as a bytearray that may grow up to twice ``size`` before the
    front is dropped (amortised O(1) appends); only the last ``size``
    bytes count as history."""

    __slots__ = ("size", "buf", "end", "base")

    def __init__(self, size: int, offset: int):
        self.size = max(int(size), 1)
        self.buf = bytearray()
        self.end = offset           # offset of the last byte written
        self.base = offset + 1      # offset of buf[0]

    def append(self, data: bytes):
        self.buf += data
        self.end += len(data)
        excess = len(self.buf) - self.size
        if excess > self.size:
            del self.buf[:excess]
            self.base += excess

    @property
    def histlen(self) -> int:
        return min(len(self.buf), self.size)

    @property
    def first_offset(self) -> int:
        """Redis's repl_backlog_first_byte_offset."""
        return self.end - self.histlen + 1

    def resize(self, size: int):
        self.size = max(int(size), 1)
        excess = len(self.buf) - self.size
        if excess > 0:
            del self.buf[:excess]
            self.base += excess

    def has(self, offset: int) -> bool:
        """Can the stream be served from byte ``offset`` (PSYNC's)?"""
        return self.first_offset <= offset <= self.end + 1

    def since(self, offset: int) -> bytes:
        """The bytes from ``offset`` to the end (``has(offset)`` first)."""
        if not self.has(offset):
            raise ValueError("offset %d is not in the backlog" % offset)
        return bytes(self.buf[offset - self.base:])


class ReplicationIds:
    """replid, replid2 and second_offset of one node (kept on the Server as
    ``replid``, ``replid2``, ``second_repl_offset``)."""

    @staticmethod
    def shift(server):
        """Redis's shiftReplicationId: a new history that continues the
        current one (a replica becoming master): replicas of the old one
        can continue up to the current offset."""
        server.replid2 = server.replid
        server.second_repl_offset = server.master_repl_offset + 1
        server.replid = new_replid()

    @staticmethod
    def clear2(server):
        server.replid2 = NO_REPLID
        server.second_repl_offset = -1


def psync_decision(server, backlog, replid: str, offset: int):
    """Can the master continue the stream for ``PSYNC replid offset``?

    Returns (True, None) for +CONTINUE, or (False, reason) for a full
    resynchronisation, with Redis's reason texts
    (masterTryPartialResynchronization)."""
    second = server.second_repl_offset
    asked = replid.lower()
    if asked != server.replid and (asked != server.replid2
                                   or offset > second):
        if replid[:1] == "?":
            return False, "Full resync requested by replica"
        if asked != server.replid2:
            return False, (
                "Replication ID mismatch (Replica asked for '%s', my "
                "replication IDs are '%s' and '%s')"
                % (replid, server.replid, server.replid2))
        return False, (
            "Requested offset for second ID was %d, but I can reply up "
            "to %d" % (offset, second))
    if backlog is None or not backlog.has(offset):
        if backlog is None:
            return False, "Unable to partial resync with replica: no backlog"
        return False, (
            "Unable to partial resync with replica for lack of backlog "
            "(Replica request was: %d)." % offset)
    return True, None
