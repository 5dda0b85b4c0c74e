"""Counters behind INFO stats (names as Redis prints them)."""
from __future__ import annotations

from collections import deque


class Stats:
    def __init__(self, now: float):
        self.reset(now)

    def reset(self, now: float):
        self.total_connections_received = 0
        self.total_net_input_bytes = 0
        self.net_output_bytes = 0
        self.rejected_connections = 0
        self.expired_keys = 0
        self.evicted_keys = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.total_error_replies = 0
        self.total_reads_processed = 0
        self.total_writes_processed = 0
        self.sync_full = 0
        self.sync_partial_ok = 0
        self.sync_partial_err = 0
        self.errors: dict = {}        # error code -> count (INFO errorstats)
        # (time, commands) samples for instantaneous_ops_per_sec.
        self._samples = deque(maxlen=16)
        self._samples.append((now, 0, 0, 0))

    def count_error(self, text: str):
        """An error reply: counted by its code, the first word (Redis's
        afterErrorReply; 'ERR' when there is no space in the first 32)."""
        self.total_error_replies += 1
        space = text.find(" ", 0, 32)
        code = text[:space] if space != -1 else "ERR"
        self.errors[code] = self.errors.get(code, 0) + 1

    def sample(self, now: float, commands: int):
        last = self._samples[-1]
        if now - last[0] >= 0.1:
            self._samples.append((now, commands,
                                  self.total_net_input_bytes,
                                  self.net_output_bytes))

    def _rate(self, index: int) -> float:
        first, last = self._samples[0], self._samples[-1]
        span = last[0] - first[0]
        return (last[index] - first[index]) / span if span > 0 else 0.0

    @property
    def instantaneous_ops_per_sec(self) -> int:
        return int(self._rate(1))

    @property
    def instantaneous_input_kbps(self) -> float:
        return self._rate(2) / 1024

    @property
    def instantaneous_output_kbps(self) -> float:
        return self._rate(3) / 1024
