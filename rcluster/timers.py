"""Periodic jobs that share their wake-ups.

A node runs several periodic jobs: the server cron (``hz``), the cluster
cron (100 ms), the persistence and AOF crons (``hz``, 100 ms) and the
replication cron (1 s).  As separate ``LoopingCall``s each starts its own
grid of call times (the time it was started, plus multiples of its
interval), so an idle node wakes up three or four times per 100 ms where
Redis wakes once (its crons all run inside serverCron).  A wake-up after a
sleep is what an idle node pays for most: on a small VM about 50 us of
kernel work before any Python runs, and the interpreter's cold caches
after it.

``AlignedLoopingCall`` is a ``LoopingCall`` whose grid is anchored to the
wall clock (multiples of its interval since the epoch, as reactor.seconds()
counts them): the calls of every aligned job whose interval is a multiple
of another's fall at the same instants, and the reactor runs them in one
iteration (one wake-up).  Nodes whose clocks agree (one machine, or NTP)
then also run their crons at the same instants: the PINGs a node sends
from its cron reach peers that are awake for theirs, or find their data
waiting when they wake, instead of waking them again later: in a local
30-node cluster that is about 20 wake-ups per node per second instead of
about 34 (the cluster protocol's timing is unchanged: Redis's cron phase
is arbitrary too).  Each job keeps its own interval and LoopingCall's
rules (a late call is not repeated; ``stop()``, ``running``,
``interval``).
"""
from __future__ import annotations

import math

from twisted.internet.task import LoopingCall

# Every aligned grid is PHASE + k * interval (seconds of the clock).
PHASE = 0.0


def anchor(when: float, interval: float, phase: float = PHASE) -> float:
    """The point of the grid phase + k * interval at or before ``when``."""
    if interval <= 0:
        return when
    return math.floor((when - phase) / interval) * interval + phase


class AlignedLoopingCall(LoopingCall):
    """A LoopingCall on the process's common grid (module docstring)."""

    def start(self, interval: float, now: bool = True):
        deferred = super().start(interval, now)
        if self.running and interval > 0:
            self.starttime = anchor(self.starttime, interval)
            if self.call is not None:
                self.call.cancel()
                self._scheduleFrom(self.clock.seconds())
        return deferred

    def reset(self) -> None:
        super().reset()
        if self.call is not None and self.interval:
            self.call.cancel()
            self.starttime = anchor(self.starttime, self.interval)
            self._scheduleFrom(self.clock.seconds())


def periodic(function, clock) -> AlignedLoopingCall:
    """``LoopingCall(function)`` on ``clock``, aligned (not started)."""
    call = AlignedLoopingCall(function)
    call.clock = clock
    return call
