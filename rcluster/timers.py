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

Every job's grid is therefore anchored to the wall clock (multiples of its
interval since the epoch, as reactor.seconds() counts them): the calls of
every job whose interval is a multiple of another's fall at the same
instants.  Nodes whose clocks agree (one machine, or NTP) then also run
their crons at the same instants: the PINGs a node sends from its cron
reach peers that are awake for theirs, or find their data waiting when
they wake, instead of waking them again later: in a local 30-node cluster
that is about 20 wake-ups per node per second instead of about 34 (the
cluster protocol's timing is unchanged: Redis's cron phase is arbitrary
too).

The jobs of one clock share one ``CronDriver``: a single reactor
``callLater`` for the next instant at which any job is due, which runs
every job due then, in the order they were started.  A LoopingCall per
job would pay, per call, a Deferred with two callbacks and a DelayedCall
of its own: on an idle node, as much CPU as the crons' own work.  Each job
keeps its own interval and LoopingCall's rules (a late call is not
repeated; ``start()`` returns a Deferred fired with the job by ``stop()``
or failed by an exception of the function, which stops the job;
``running``, ``interval``, ``reset()``).
"""
from __future__ import annotations

import weakref

from twisted.internet.defer import Deferred
from twisted.python import reflect
from twisted.python.failure import Failure

# Grid instants are whole microseconds (exact integers, so jobs of
# different intervals meet exactly).  The driver's call is set SLACK us
# before an instant and counts as on it: a clock whose float seconds drift
# (a test's reactor advanced by 0.1 again and again) still runs the jobs
# due at the instant it reaches.
_US = 1_000_000
_SLACK = 1000


def _clock_us(clock) -> int:
    """The clock's time in us, as the grid counts it (SLACK ahead)."""
    return int(clock.seconds() * _US) + _SLACK


class CronDriver:
    """The periodic jobs of one clock, run from one DelayedCall."""

    def __init__(self, clock):
        self.clock = clock
        self.jobs: list = []        # started jobs, in start order
        self.call = None            # the DelayedCall, when one is due
        self.due = None             # its instant (us)
        self._firing = False

    def add(self, job):
        self.jobs.append(job)
        self.schedule()

    def remove(self, job):
        if job in self.jobs:
            self.jobs.remove(job)
        self.schedule()

    def schedule(self):
        """One DelayedCall, at the earliest instant a job is due."""
        if self._firing:
            return                  # _fire() schedules when done
        due = min((job.next for job in self.jobs if job.next is not None),
                  default=None)
        call = self.call
        if call is not None:
            if due == self.due:
                return
            call.cancel()
            self.call = None
        self.due = due
        if due is not None:
            delay = max(0.0, (due - _SLACK) / _US - self.clock.seconds())
            self.call = self.clock.callLater(delay, self._fire)

    def _fire(self):
        self.call = None
        self._firing = True
        try:
            now = _clock_us(self.clock)
            ran = [job for job in self.jobs
                   if job.next is not None and job.next <= now]
            for job in ran:
                if job.running and job.next is not None:
                    job.next = None     # not due again while it runs
                    job._run()
            if ran:
                later = _clock_us(self.clock)
                for job in ran:
                    if job.running and job.next is None and not job.waiting:
                        job.next = job.grid_after(later)
        finally:
            self._firing = False
            self.due = None
            self.schedule()


_drivers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def driver(clock) -> CronDriver:
    """The CronDriver of a clock (a reactor, or a test's Clock)."""
    found = _drivers.get(clock)
    if found is None:
        found = _drivers[clock] = CronDriver(clock)
    return found


class AlignedLoopingCall:
    """A LoopingCall on the clock's common grid, run by its CronDriver
    (module docstring)."""

    def __init__(self, f, *a, **kw):
        self.f, self.a, self.kw = f, a, kw
        self.clock = None
        self.running = False
        self.interval = None
        self.next = None            # the grid instant it is due (us)
        self.waiting = False        # for the Deferred the function returned
        self._deferred = None
        self._step = 0              # the interval in us

    def start(self, interval: float, now: bool = True) -> Deferred:
        assert not self.running, "Tried to start an already running job."
        if interval < 0:
            raise ValueError("interval must be >= 0")
        if self.clock is None:
            from twisted.internet import reactor
            self.clock = reactor
        self.running = True
        self.interval = interval
        self._step = round(interval * _US)
        deferred = self._deferred = Deferred()
        self.next = None
        if now:
            self._run()
        if self.running and self.next is None and not self.waiting:
            self.next = self.grid_after(_clock_us(self.clock))
        if self.running:
            driver(self.clock).add(self)
        return deferred

    def stop(self) -> None:
        assert self.running, "Tried to stop a job that was not running."
        self.running = False
        self.next = None
        driver(self.clock).remove(self)
        deferred, self._deferred = self._deferred, None
        if deferred is not None and not self.waiting:
            deferred.callback(self)

    def reset(self) -> None:
        """Skip the next call: due at the grid's next instant from now."""
        assert self.running, "Tried to reset a job that was not running."
        if not self.waiting:
            self._due_next()

    @property
    def call(self):
        """Like LoopingCall.call: when the next call is due (getTime())."""
        return None if self.next is None else _Due(self.next / _US)

    def _due_next(self):
        """Due at the grid's next instant from now."""
        self.next = self.grid_after(_clock_us(self.clock))
        driver(self.clock).schedule()

    def grid_after(self, now_us: int) -> int:
        """The first instant of this job's grid after ``now_us``."""
        step = self._step
        if step <= 0:
            return now_us
        return (now_us // step + 1) * step

    def _run(self):
        try:
            result = self.f(*self.a, **self.kw)
        except BaseException:
            self._failed(Failure())
            return
        if result is not None and isinstance(result, Deferred):
            # As LoopingCall: not due again until the Deferred fires.
            self.waiting = True
            result.addCallbacks(self._resumed, self._failed_later)

    def _resumed(self, _):
        self.waiting = False
        if self.running:
            self._due_next()
        elif self._deferred is not None:
            deferred, self._deferred = self._deferred, None
            deferred.callback(self)

    def _failed_later(self, failure):
        self.waiting = False
        self._failed(failure)

    def _failed(self, failure):
        was_running, self.running = self.running, False
        self.next = None
        if was_running:
            driver(self.clock).remove(self)
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            deferred.errback(failure)

    def __repr__(self) -> str:
        func = getattr(self.f, "__qualname__", None) or reflect.safe_repr(self.f)
        return f"AlignedLoopingCall<{self.interval!r}>({func})"


class _Due:
    """The next call's time, for code that reads ``job.call.getTime()``."""

    __slots__ = ("time",)

    def __init__(self, time: float):
        self.time = time

    def getTime(self) -> float:
        return self.time


def periodic(function, clock) -> AlignedLoopingCall:
    """``LoopingCall(function)`` on ``clock``, aligned (not started)."""
    call = AlignedLoopingCall(function)
    call.clock = clock
    return call
