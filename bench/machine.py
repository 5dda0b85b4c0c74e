"""What the machine did to a bench while it ran.

On a shared VM the host takes CPU time away from the guest ("steal",
the eighth figure of /proc/stat's cpu line).  A run during which much
was stolen measures the neighbours as much as the code: the benches
print it beside their figures so such runs can be told apart.
"""
from __future__ import annotations

import os

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def steal_seconds():
    """CPU seconds stolen from this machine (all CPUs) since boot, or None
    where /proc/stat doesn't say."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if fields[0] != "cpu" or len(fields) < 9:
        return None
    return int(fields[8]) / _TICK


class Steal:
    """Seconds stolen between start() and stop(), summed over intervals."""

    def __init__(self):
        self.total = 0.0
        self._since = None

    def start(self):
        self._since = steal_seconds()

    def stop(self):
        now = steal_seconds()
        if now is not None and self._since is not None:
            self.total += now - self._since
        self._since = None

    def __str__(self):
        return f"host steal {self.total:4.1f} s"
