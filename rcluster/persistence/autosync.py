"""Incremental fsync of a file being saved: ``rdb-save-incremental-fsync``
and ``aof-rewrite-incremental-fsync`` (Redis's rioSetAutoSync).  Every
4 MB written the file is fsynced, so the kernel never holds a big dirty
backlog that the final fsync pays at once, stalling the disk for every
other writer (the AOF's fsyncs among them)."""
from __future__ import annotations

import os

AUTOSYNC_BYTES = 4 * 1024 * 1024        # Redis's REDIS_AUTOSYNC_BYTES


class AutoSync:
    """Counts the bytes written to ``fh``; every AUTOSYNC_BYTES (when
    enabled) flushes it and calls ``fsync(fd)``: os.fsync where blocking
    is fine (SAVE, the background save's writer thread), or a function that
    syncs in a thread."""

    def __init__(self, fh, enabled: bool, fsync=None):
        self.fh = fh
        self.every = AUTOSYNC_BYTES if enabled else 0
        self.fsync = fsync or os.fsync
        self.pending = 0
        self.syncs = 0

    def wrote(self, n: int):
        if not self.every:
            return
        self.pending += n
        if self.pending >= self.every:
            self.pending = 0
            self.fh.flush()
            self.syncs += 1
            self.fsync(self.fh.fileno())
