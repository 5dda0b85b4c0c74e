"""rcluster/timers.py: periodic jobs on one wall-clock grid (fake clock)."""
from __future__ import annotations

import os
import tempfile

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import TestCase

from rcluster.timers import AlignedLoopingCall, driver, periodic


class GridTests(TestCase):
    def test_grid_points(self):
        # The next instant of a job's grid (multiples of its interval since
        # the epoch, in us) after a time.
        def after(interval, now_us):
            job = periodic(lambda: None, Clock())
            job.start(interval, now=False)
            try:
                return job.grid_after(now_us)
            finally:
                job.stop()
        self.assertEqual(after(0.1, 0), 100_000)
        self.assertEqual(after(0.1, 370_000), 400_000)
        self.assertEqual(after(1.0, 12_500_000), 13_000_000)
        self.assertEqual(after(0, 5_000_000), 5_000_000)   # interval 0


class AlignedLoopingCallTests(TestCase):
    def test_jobs_started_apart_share_their_instants(self):
        clock = Clock()
        fired = []
        clock.advance(0.03)
        fast = periodic(lambda: fired.append(("fast", clock.seconds())), clock)
        fast.start(0.1, now=False)
        clock.advance(0.04)
        slow = periodic(lambda: fired.append(("slow", clock.seconds())), clock)
        slow.start(1.0, now=False)
        # The fast job is due on the grid (0.1, not 0.13), the slow one at
        # 1.0, a point of the fast one's grid too.
        self.assertAlmostEqual(fast.call.getTime(), 0.1)
        self.assertAlmostEqual(slow.call.getTime(), 1.0)
        clock.advance(0.93)          # to 1.0: both run in this one step
        self.assertEqual(sorted(kind for kind, _ in fired), ["fast", "slow"])
        self.assertAlmostEqual(fast.call.getTime(), 1.1)
        self.assertAlmostEqual(slow.call.getTime(), 2.0)
        fast.stop()
        slow.stop()

    def test_looping_call_rules_kept(self):
        clock = Clock()
        calls = []
        job = periodic(lambda: calls.append(clock.seconds()), clock)
        self.assertIsInstance(job, AlignedLoopingCall)
        stopped = job.start(0.1, now=True)
        self.assertEqual(len(calls), 1)            # now=True runs at once
        self.assertTrue(job.running)
        self.assertEqual(job.interval, 0.1)
        clock.advance(0.35)                        # late: not repeated
        self.assertEqual(len(calls), 2)
        results = []
        stopped.addCallback(results.append)
        job.stop()
        self.assertEqual(results, [job])
        self.assertFalse(clock.getDelayedCalls())

    def test_reset_realigns(self):
        clock = Clock()
        calls = []
        job = periodic(lambda: calls.append(clock.seconds()), clock)
        job.start(0.1, now=False)
        clock.advance(0.05)
        job.reset()
        self.assertAlmostEqual(job.call.getTime(), 0.1)
        # The clock's one call is due then (a hair early: timers._SLACK).
        [call] = clock.getDelayedCalls()
        self.assertLess(abs(call.getTime() - 0.1), 0.002)
        job.stop()

    def test_an_error_stops_the_job_as_looping_call_does(self):
        clock = Clock()

        def boom():
            raise RuntimeError("boom")
        job = periodic(boom, clock)
        failed = []
        job.start(0.1, now=False).addErrback(failed.append)
        clock.advance(0.1)
        self.assertFalse(job.running)
        self.assertEqual(len(failed), 1)
        failed[0].trap(RuntimeError)


class CronDriverTests(TestCase):
    """The jobs of one clock share one DelayedCall."""

    def test_one_delayed_call_for_jobs_due_together(self):
        clock = Clock()
        fired = []
        jobs = [periodic(lambda i=i: fired.append(i), clock)
                for i in range(3)]
        for job, interval in zip(jobs, (0.1, 0.1, 1.0)):
            job.start(interval, now=False)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(0.1)
        self.assertEqual(fired, [0, 1])
        clock.advance(0.9)                       # late: not repeated
        self.assertEqual(fired, [0, 1, 0, 1, 2])  # at 1.0, together
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        for job in jobs:
            job.stop()
        self.assertFalse(clock.getDelayedCalls())

    def test_a_failing_job_does_not_stop_the_others(self):
        clock = Clock()
        fired = []

        def boom():
            raise RuntimeError("boom")
        bad = periodic(boom, clock)
        good = periodic(lambda: fired.append(clock.seconds()), clock)
        failed = []
        bad.start(0.1, now=False).addErrback(failed.append)
        good.start(0.1, now=False)
        clock.advance(0.1)
        clock.advance(0.1)
        self.assertEqual(len(fired), 2)
        self.assertEqual(len(failed), 1)
        self.assertFalse(bad.running)
        good.stop()

    def test_restart_from_inside_the_job(self):
        # What CONFIG SET hz does to a running cron: stop, start again.
        clock = Clock()
        calls = []
        job = periodic(lambda: calls.append(clock.seconds()), clock)

        def restart():
            job.stop()
            job.start(0.5, now=False)
        other = periodic(restart, clock)
        job.start(0.1, now=False)
        other.start(0.1, now=False)
        clock.advance(0.1)
        other.stop()
        self.assertTrue(job.running)
        self.assertEqual(job.interval, 0.5)
        self.assertAlmostEqual(job.call.getTime(), 0.5)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        job.stop()
        self.assertFalse(clock.getDelayedCalls())

    def test_a_late_call_is_not_repeated_and_stays_on_the_grid(self):
        clock = Clock()
        calls = []
        job = periodic(lambda: calls.append(clock.seconds()), clock)
        job.start(0.1, now=False)
        clock.advance(0.37)
        self.assertEqual(len(calls), 1)
        self.assertAlmostEqual(job.call.getTime(), 0.4)
        job.stop()

    def test_a_deferred_result_is_waited_for(self):
        from twisted.internet.defer import Deferred
        clock = Clock()
        pending = []

        def slow():
            pending.append(Deferred())
            return pending[-1]
        job = periodic(slow, clock)
        job.start(0.1, now=False)
        clock.advance(0.1)
        clock.advance(0.3)
        self.assertEqual(len(pending), 1)       # still waiting
        pending[0].callback(None)
        self.assertAlmostEqual(job.call.getTime(), 0.5)
        clock.advance(0.1)
        self.assertEqual(len(pending), 2)
        job.stop()
        self.assertFalse(clock.getDelayedCalls())


class NodeCronsTests(TestCase):
    """A cluster node's crons (server, cluster, persistence, AOF,
    replication) all fall on one grid: one wake-up per 100 ms."""

    def test_one_instant_for_every_cron(self):
        from rcluster import tap
        workdir = tempfile.mkdtemp()
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        options = tap.Options()
        options.parseOptions(["--bind", "127.0.0.1", "--port", "7000",
                              "--dir", workdir, "--set", "save=",
                              "--set", "appendonly=no"])
        reactor = MemoryReactorClock()
        reactor.advance(1234.567)
        node = tap.NodeService(options.settings, reactor)
        node.privilegedStartService()
        node.startService()
        self.addCleanup(node.stopService)
        reactor.advance(0.5)
        jobs = driver(reactor).jobs
        self.assertGreaterEqual(len(jobs), 4)
        names = " ".join(repr(job) for job in jobs)
        for name in ("Server.cron", "ClusterService._run_cron",
                     "PersistenceService.tick", "ReplicationService.tick"):
            self.assertIn(name, names)
        # The 100 ms crons are due together; the 1 s one at a multiple.
        tenth = {round(job.call.getTime(), 6) for job in jobs
                 if "ReplicationService" not in repr(job)}
        self.assertEqual(len(tenth), 1)
        [due] = tenth
        self.assertAlmostEqual(due * 10, round(due * 10), places=5)
        # One reactor DelayedCall for all of them, at that instant.
        [call] = [c for c in reactor.getDelayedCalls()
                  if "CronDriver" in repr(c)]
        self.assertLess(abs(call.getTime() - due), 0.002)
