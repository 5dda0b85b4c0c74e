"""The slow log (Redis's slowlog.c), sans-IO.

Commands that took at least ``slowlog-log-slower-than`` microseconds (a
negative value disables it) are kept, newest first, up to
``slowlog-max-len`` entries: id, unix time, duration in microseconds,
the arguments (at most 32, each at most 128 bytes, truncated with
Redis's texts), the client's address and name.

``Server.call`` hands every command to ``rcluster.latency.Observer``,
which checks the threshold (an int comparison) before anything is built.
"""
from __future__ import annotations

from collections import deque

MAX_ARGC = 32           # SLOWLOG_ENTRY_MAX_ARGC
MAX_STRING = 128        # SLOWLOG_ENTRY_MAX_STRING


def entry_argv(argv) -> list:
    """The arguments as an entry keeps them (slowlogCreateEntry)."""
    argc = len(argv)
    kept = min(argc, MAX_ARGC)
    out = []
    for j in range(kept):
        if kept != argc and j == kept - 1:
            out.append(b"... (%d more arguments)" % (argc - kept + 1))
            break
        arg = argv[j]
        if len(arg) > MAX_STRING:
            arg = bytes(arg[:MAX_STRING]) + b"... (%d more bytes)" % (
                len(arg) - MAX_STRING)
        out.append(bytes(arg))
    return out


class SlowLog:
    def __init__(self):
        self.entries: deque = deque()     # newest first
        self.next_id = 0

    def push(self, client, argv, duration_us: int, now: int, max_len: int):
        """Record one command (the caller checked the threshold)."""
        self.entries.appendleft((
            self.next_id, now, duration_us, entry_argv(argv),
            client.addr.encode() if isinstance(client.addr, str)
            else bytes(client.addr or b""),
            bytes(client.name or b"")))
        self.next_id += 1
        self.trim(max_len)

    def trim(self, max_len: int):
        entries = self.entries
        while len(entries) > max_len:
            entries.pop()

    def get(self, count: int) -> list:
        """SLOWLOG GET count (-1: all) as RESP arrays."""
        if count < 0:
            count = len(self.entries)
        out = []
        for entry in self.entries:
            if len(out) >= count:
                break
            out.append(list(entry))
        return out

    def __len__(self) -> int:
        return len(self.entries)

    def reset(self):
        self.entries.clear()
