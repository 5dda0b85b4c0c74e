"""Elections, votes, manual failover and replica migration, deterministic.

Cluster states talk through the in-memory bus of test_cluster_state
(``Net``), with time from a ``MemoryReactorClock``: every delay, rank and
vote below is reproducible.  Replication itself is simulated by the host:
each replica has an ``offset`` the test sets, and ``replicate(None)`` (a
promotion) is recorded.
"""
from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from rcluster.cluster import failover, messages as m
from rcluster.cluster.messages import Header, Message
from rcluster.cluster.nodesconf import render
from rcluster.cluster.state import ClusterState
from rcluster.config import Settings
from tests.unit.test_cluster_state import (START, Net, RecordingHost,
                                           engine_of)

import random


class ReplicaHost(RecordingHost):
    """Replication as the cluster sees it: an offset, a data age, pauses."""

    def __init__(self):
        super().__init__()
        self.offset = 0
        self.age = 0
        self.paused_until = None
        self.unpaused = 0
        self.replication_available = True

    def repl_offset(self):
        return self.offset

    def repl_data_age(self):
        return self.age

    def pause_writes(self, until_ms):
        self.paused_until = until_ms

    def unpause_writes(self):
        self.paused_until = None
        self.unpaused += 1


class ClockNet(Net):
    """Net whose time is a MemoryReactorClock's, and whose nodes have a
    ReplicaHost."""

    def __init__(self, timeout=1000):
        super().__init__(timeout)
        self.reactor = MemoryReactorClock()
        self.reactor.advance(START / 1000)

    @property
    def now(self):
        return int(round(self.reactor.seconds() * 1000))

    def add(self, port, slots=None, seed=None, **directives):
        settings = Settings()
        settings.apply("port", [str(port)])
        settings.apply("cluster-node-timeout", [str(self.timeout)])
        for name, value in directives.items():
            settings.apply(name.replace("_", "-"), [str(value)])
        state = ClusterState(settings, lambda: self.now, ReplicaHost(),
                             random.Random(port if seed is None else seed))
        state.create_myself()
        engine_of(state).connector = \
            lambda link, st=state: self._connect(st, link)
        self.states[port] = state
        for slot in slots or ():
            state.add_slot(state.myself, slot)
        return state

    def tick(self, ms=100):
        for _ in range(ms // 100):
            self.reactor.advance(0.1)
            self.clock[0] = self.now
            for port, state in self.states.items():
                if port not in self.down:
                    engine_of(state).cron()
            self.run()


def shards(masters=3, replicas=(1, 1, 1), timeout=1000, **directives):
    """``masters`` masters with the slots split between them, and
    replicas[i] replicas for master i; formed and agreed."""
    net = ClockNet(timeout)
    per = m.SLOTS // masters
    ms = []
    for i in range(masters):
        end = m.SLOTS if i == masters - 1 else (i + 1) * per
        ms.append(net.add(7001 + i, range(i * per, end), **directives))
    rs = []
    port = 7001 + masters
    for i, count in enumerate(replicas):
        for _ in range(count):
            rs.append((net.add(port, **directives), ms[i]))
            port += 1
    net.meet_all()
    net.tick(3000)
    for replica, master in rs:
        engine_of(replica).replicate(replica.lookup(master.myself.name))
    net.tick(2000)
    return net, ms, [r for r, _ in rs]


def port_of(net, state):
    return net.port_of(state)


class Logs:
    def __init__(self, test):
        self.lines = []
        globalLogPublisher.addObserver(self._observe)
        test.addCleanup(globalLogPublisher.removeObserver, self._observe)

    def _observe(self, event):
        if event.get("log_namespace") == "rcluster.cluster":
            self.lines.append(formatEvent(event))

    def having(self, text):
        return [line for line in self.lines if text in line]


def view(state, of):
    """The node ``of`` (a state) as ``state`` sees it."""
    return state.lookup(of.myself.name)


class ReplicaTopologyTests(TestCase):
    def test_replicas_known_everywhere(self):
        net, (a, b, c), (ra, rb, rc) = shards()
        for state in (a, b, c, ra, rb, rc):
            node = view(state, ra)
            self.assertTrue(node.is_replica)
            self.assertIs(node.replicaof, view(state, a))
            self.assertIn(node, view(state, a).replicas)
        # Started by REPLICATE (and re-asserted by the cron: idempotent).
        self.assertEqual(set(ra.host.replicating), {ra.lookup(a.myself.name)})
        self.assertIn(f"myself,slave {a.myself.name} ", render(ra))
        # A replica's header carries its master's slots and epoch.
        header = ra.build_header(m.PING)
        self.assertEqual(header.slaveof, a.myself.name.encode())
        self.assertEqual(header.myslots, a.myself.bitmap)
        self.assertEqual(header.config_epoch, view(ra, a).config_epoch)

    def test_offset_in_header(self):
        net, (a, b, c), (ra, rb, rc) = shards()
        ra.host.offset = 1234
        net.tick(1000)
        # Every node pings every other within node-timeout/2.
        self.assertEqual(view(b, ra).repl_offset, 1234)


class AutomaticFailoverTests(TestCase):
    def elect(self, net, dead, ms=6000):
        net.kill(port_of(net, dead))
        net.tick(ms)

    def test_replica_takes_over_and_old_master_rejoins(self):
        net, (a, b, c), (ra, rb, rc) = shards()
        logs = Logs(self)
        slots = list(a.myself.slots)
        self.elect(net, a)
        self.assertTrue(ra.myself.is_master)
        self.assertEqual(ra.myself.slots, slots)
        self.assertEqual(ra.myself.config_epoch, ra.failover_auth_epoch)
        self.assertEqual(ra.host.replicating[-1], None)
        for state in (b, c, rb, rc):
            self.assertIs(state.slots[slots[0]], view(state, ra))
            self.assertTrue(view(state, ra).is_master)
        self.assertEqual(len(logs.having("Failover auth granted to "
                                         + ra.myself.name)), 2)
        self.assertTrue(logs.having("Failover election won: I'm the new "
                                    "master."))
        self.assertTrue(b.is_ok and c.is_ok and ra.is_ok)
        # The old master comes back: it learns it lost its slots and
        # follows the winner.
        net.revive(port_of(net, a))
        net.tick(3000)
        self.assertTrue(a.myself.is_replica)
        self.assertIs(a.myself.replicaof, view(a, ra))
        self.assertEqual(a.myself.numslots, 0)
        self.assertIs(a.host.replicating[-1], view(a, ra))
        self.assertTrue(view(b, a).is_replica)

    def test_quorum_is_a_majority_of_masters(self):
        net, (a, b, c), (ra, rb, rc) = shards()
        # ra can't reach c: b's vote alone is 1 < 3 // 2 + 1.
        net.cut(port_of(net, ra), port_of(net, c))
        net.kill(port_of(net, a))
        net.tick(3000)
        self.assertTrue(view(ra, a).failed)
        self.assertTrue(ra.failover_auth_sent)
        self.assertEqual(ra.failover_auth_count, 1)
        self.assertTrue(ra.myself.is_replica)
        # The election expires; the retry, with c reachable, wins.
        net.heal(port_of(net, ra), port_of(net, c))
        net.tick(6000)
        self.assertTrue(ra.myself.is_master)
        self.assertGreater(ra.failover_auth_epoch, 0)

    def test_replica_no_failover(self):
        net, (a, b, c), (ra, rb, rc) = shards(
            cluster_replica_no_failover="yes")
        self.elect(net, a)
        self.assertTrue(ra.myself.is_replica)
        self.assertEqual(ra.failover_auth_sent, False)
        self.assertTrue(view(b, ra).cant_failover)

    def test_data_age_too_old(self):
        net, (a, b, c), (ra, rb, rc) = shards(
            cluster_replica_validity_factor=1, repl_ping_replica_period=1)
        logs = Logs(self)
        # Limit: 1 s + 1 x node-timeout, after removing node-timeout.
        ra.host.age = 3001
        self.elect(net, a, 8000)
        self.assertTrue(ra.myself.is_replica)
        self.assertTrue(logs.having(
            "Currently unable to failover: Disconnected from master for "
            "longer than allowed."))
        ra.host.age = 3000
        net.tick(500)
        self.assertTrue(ra.myself.is_master)

    def test_election_starts_in_the_event_that_learns_fail(self):
        net, (a, b, c), (ra, rb, rc) = shards()
        net.kill(port_of(net, a))
        while not view(ra, a).failed:
            net.tick(100)
        # The election was scheduled before any cron ran again.
        self.assertNotEqual(ra.failover_auth_time, 0)
        self.assertLessEqual(ra.failover_auth_time - net.now, 66)

    def test_election_waits_for_cron_when_switched_off(self):
        self.patch(failover, "ELECTION_ON_FAIL", False)
        net, (a, b, c), (ra, rb, rc) = shards()
        net.kill(port_of(net, a))
        failed_at = None
        for _ in range(40):
            net.reactor.advance(0.1)
            net.clock[0] = net.now
            for port, state in net.states.items():
                if port not in net.down and state is not ra:
                    engine_of(state).cron()
            net.run()
            if view(ra, a).failed:
                failed_at = net.now
                break
        self.assertIsNotNone(failed_at)
        self.assertEqual(ra.failover_auth_time, 0)
        engine_of(ra).cron()
        self.assertNotEqual(ra.failover_auth_time, 0)

    def test_fixed_delay(self):
        net, (a, b, c), (ra, rb, rc) = shards(timeout=3000)
        net.kill(port_of(net, a))
        while not view(ra, a).failed:
            net.tick(100)
        delay = ra.failover_auth_time - net.now
        self.assertTrue(100 <= delay < 200, delay)    # 3000 / 30 + 0..99

    def test_redis_fixed_delay(self):
        self.patch(failover, "FAST_FIXED_DELAY", False)
        net, (a, b, c), (ra, rb, rc) = shards()
        net.kill(port_of(net, a))
        while not view(ra, a).failed:
            net.tick(100)
        delay = ra.failover_auth_time - net.now
        self.assertTrue(500 <= delay < 1000, delay)

    def test_auth_timeouts(self):
        net = ClockNet(1000)
        state = net.add(7001)
        self.assertEqual(failover.auth_timeouts(state), (2000, 4000))
        state.settings.apply("cluster-node-timeout", ["5000"])
        self.assertEqual(failover.auth_timeouts(state), (10000, 20000))


class RankTests(TestCase):
    def two_replicas(self, **directives):
        net, (a, b, c), rs = shards(replicas=(2, 0, 0), **directives)
        r1, r2 = sorted(rs, key=lambda s: s.myself.name)
        return net, a, r1, r2

    def test_rank_by_offset(self):
        net, a, r1, r2 = self.two_replicas()
        r1.host.offset, r2.host.offset = 100, 200
        net.tick(1000)
        self.assertEqual(failover.replica_rank(r1), 1)
        self.assertEqual(failover.replica_rank(r2), 0)
        net.kill(port_of(net, a))
        net.tick(6000)
        self.assertTrue(r2.myself.is_master)
        self.assertTrue(r1.myself.is_replica)
        self.assertIs(r1.myself.replicaof, view(r1, r2))

    def test_equal_offsets_ranked_by_name(self):
        net, a, r1, r2 = self.two_replicas()
        r1.host.offset = r2.host.offset = 50
        net.tick(1000)
        self.assertEqual((failover.replica_rank(r1),
                          failover.replica_rank(r2)), (0, 1))
        self.patch(failover, "RANK_TIE_BY_NAME", False)
        self.assertEqual((failover.replica_rank(r1),
                          failover.replica_rank(r2)), (0, 0))

    def test_nofailover_replicas_do_not_count(self):
        net, a, r1, r2 = self.two_replicas()
        r1.host.offset, r2.host.offset = 100, 200
        r2.settings.apply("cluster-replica-no-failover", ["yes"])
        net.tick(1000)
        self.assertEqual(failover.replica_rank(r1), 0)

    def test_rank_delay_and_rerank(self):
        net, a, r1, r2 = self.two_replicas()
        logs = Logs(self)
        r1.host.offset = r2.host.offset = 10
        net.tick(1000)
        net.kill(port_of(net, a))
        while not view(r1, a).failed:
            net.tick(100)
        # r1 scheduled its election in the event that told it (rank 0:
        # same offset as r2, smaller name); the clock has not moved since.
        self.assertEqual(r1.failover_auth_rank, 0)
        self.assertFalse(r1.failover_auth_sent)
        delay = r1.failover_auth_time - net.now
        self.assertTrue(33 <= delay < 66, delay)
        self.assertTrue(logs.having(f"Start of election delayed for {delay} "
                                    "milliseconds (rank #0, offset 10)."))
        # A better offset from r2 arrives before the election starts.
        view(r1, r2).repl_offset = 99
        failover.handle_replica_failover(r1)
        self.assertEqual(r1.failover_auth_rank, 1)
        self.assertEqual(r1.failover_auth_time - net.now, delay + 1000)
        self.assertTrue(logs.having("Replica rank updated to #1, added "
                                    "1000 milliseconds of delay."))
        # r2 (rank 1 until then) now goes first and wins.
        net.tick(3000)
        self.assertTrue(r2.myself.is_master)
        self.assertIs(r1.myself.replicaof, view(r1, r2))


class StaggerTests(TestCase):
    def test_two_masters_fail_together(self):
        net, ms, rs = shards(masters=5, replicas=(1, 1, 0, 0, 0))
        a, b = ms[0], ms[1]
        ra, rb = rs
        net.kill(port_of(net, a))
        net.kill(port_of(net, b))
        net.tick(8000)
        self.assertTrue(ra.myself.is_master and rb.myself.is_master)
        self.assertNotEqual(ra.myself.config_epoch, rb.myself.config_epoch)
        for state in ms[2:]:
            self.assertTrue(state.is_ok)

    def test_stagger_delay(self):
        net, ms, rs = shards(masters=5, replicas=(1, 1, 0, 0, 0))
        ra, rb = rs
        # rb's master fails while ra's is already FAIL: rb waits 500 ms more.
        for state in (ra, rb):
            for master in ms[:2]:
                node = view(state, master)
                node.flags |= m.NODE_FAIL
                node.fail_time = net.now
        for state in (ra, rb):
            failover.handle_replica_failover(state)
        names = sorted((ms[0].myself.name, ms[1].myself.name))
        later = rb if ms[1].myself.name == names[1] else ra
        sooner = ra if later is rb else rb
        self.assertGreaterEqual(later.failover_auth_time -
                                sooner.failover_auth_time, 500 - 33)
        self.patch(failover, "STAGGER_FAILED_MASTERS", False)
        self.assertEqual(failover.failed_master_rank(later), 1)


class VoteTests(TestCase):
    """The master side: requests fed straight to a master's state."""

    def setUp(self):
        self.net, (self.a, self.b, self.c), (self.ra, self.rb, self.rc) = \
            shards()
        self.logs = Logs(self)

    def request(self, voter, replica, mflags=0, **header):
        """A FAILOVER_AUTH_REQUEST from ``replica`` to ``voter``; returns
        the frames answered."""
        link = voter.lookup(replica.myself.name).inbound_link
        h = replica.build_header(m.FAILOVER_AUTH_REQUEST)
        h.mflags |= mflags
        for key, value in header.items():
            setattr(h, key, value)
        sent = len(self.net.frames)
        engine_of(voter).link_data(link, m.encode(Message(h, m.EmptyBody())))
        self.net.run()
        return [msg for s, d, msg in self.net.frames[sent:]
                if msg.header.type == m.FAILOVER_AUTH_ACK]

    def fail(self, voter, master):
        view(voter, master).flags |= m.NODE_FAIL

    def test_denied_when_master_is_up(self):
        self.assertEqual(self.request(self.b, self.ra), [])
        self.assertTrue(self.logs.having(
            f"Failover auth denied to {self.ra.myself.name}: its master is up"))

    def test_force_ack_votes_for_a_live_master(self):
        self.assertEqual(len(self.request(self.b, self.ra,
                                          m.MSGFLAG_FORCEACK)), 1)

    def test_denied_to_a_master(self):
        self.assertEqual(self.request(self.b, self.c), [])
        self.assertTrue(self.logs.having("it is a master node"))

    def test_denied_when_master_unknown(self):
        view(self.b, self.ra).replicaof = None
        self.assertEqual(self.request(self.b, self.ra), [])
        self.assertTrue(self.logs.having("I don't know its master"))

    def test_denied_for_an_old_epoch(self):
        self.b.current_epoch += 5
        self.fail(self.b, self.a)
        self.assertEqual(self.request(self.b, self.ra), [])
        self.assertTrue(self.logs.having(
            f"reqEpoch ({self.ra.current_epoch}) < "
            f"curEpoch({self.b.current_epoch})"))

    def test_vote_once_per_epoch(self):
        self.fail(self.b, self.a)
        self.ra.current_epoch += 1
        self.assertEqual(len(self.request(self.b, self.ra)), 1)
        self.assertEqual(self.b.last_vote_epoch, self.ra.current_epoch)
        self.assertTrue(self.logs.having(
            f"Failover auth granted to {self.ra.myself.name} for epoch "
            f"{self.ra.current_epoch}"))
        # Another replica, same epoch: refused.
        self.fail(self.b, self.c)
        self.rc.current_epoch = self.ra.current_epoch
        self.assertEqual(self.request(self.b, self.rc), [])
        self.assertTrue(self.logs.having(
            f"already voted for epoch {self.ra.current_epoch}"))

    def test_not_twice_for_one_master_within_two_timeouts(self):
        self.fail(self.b, self.a)
        self.ra.current_epoch += 1
        self.assertEqual(len(self.request(self.b, self.ra)), 1)
        self.net.reactor.advance(1.0)
        self.ra.current_epoch += 1
        self.assertEqual(self.request(self.b, self.ra), [])
        self.assertTrue(self.logs.having(
            "can't vote about this master before 1000 milliseconds"))
        self.net.reactor.advance(1.1)
        self.ra.current_epoch += 1
        self.assertEqual(len(self.request(self.b, self.ra)), 1)

    def test_denied_when_slots_have_a_newer_epoch(self):
        self.fail(self.b, self.a)
        self.ra.current_epoch += 1
        view(self.b, self.a).config_epoch = 50
        self.assertEqual(self.request(self.b, self.ra, config_epoch=3), [])
        self.assertTrue(self.logs.having(
            f"slot {self.a.myself.slots[0]} epoch (50) > reqEpoch (3)"))

    def test_replicas_and_empty_masters_do_not_vote(self):
        self.fail(self.rb, self.a)
        self.ra.current_epoch += 1
        self.assertEqual(self.request(self.rb, self.ra), [])

    def test_ack_counts_only_from_masters_with_slots(self):
        ra = self.ra
        ra.failover_auth_epoch = ra.current_epoch
        h = Header(type=m.FAILOVER_AUTH_ACK,
                   current_epoch=ra.current_epoch)
        failover.process_auth_ack(ra, view(ra, self.b), h)
        failover.process_auth_ack(ra, view(ra, self.rb), h)
        h.current_epoch -= 1
        failover.process_auth_ack(ra, view(ra, self.c), h)
        self.assertEqual(ra.failover_auth_count, 1)


class ManualFailoverTests(TestCase):
    def setUp(self):
        self.net, (self.a, self.b, self.c), (self.ra, self.rb, self.rc) = \
            shards()
        self.logs = Logs(self)

    def test_default_mode_handshake(self):
        a, ra, net = self.a, self.ra, self.net
        a.host.offset = 500
        ra.host.offset = 400
        engine_of(ra).manual_failover(force=False, takeover=False)
        net.run()
        # The master paused writers and sent its offset, flagged PAUSED.
        self.assertEqual(a.host.paused_until, net.now + 10000)
        self.assertIs(a.mf_replica, view(a, ra))
        self.assertTrue(self.logs.having("Manual failover requested by "
                                         "replica " + ra.myself.name))
        self.assertEqual(ra.mf_master_offset, 500)
        self.assertFalse(ra.mf_can_start)
        net.tick(300)
        self.assertTrue(ra.myself.is_replica)      # still catching up
        ra.host.offset = 500
        net.tick(200)
        self.assertTrue(self.logs.having("manual failover can start"))
        self.assertTrue(ra.myself.is_master)
        requests = net.sent(m.FAILOVER_AUTH_REQUEST, port_of(net, ra))
        self.assertTrue(requests[-1].header.mflags & m.MSGFLAG_FORCEACK)
        net.tick(1000)
        self.assertTrue(a.myself.is_replica)
        self.assertIs(a.myself.replicaof, view(a, ra))
        self.assertIsNone(a.host.paused_until)      # writers resumed
        self.assertEqual(a.mf_end, 0)

    def test_times_out_after_five_seconds(self):
        a, ra, net = self.a, self.ra, self.net
        a.host.offset, ra.host.offset = 500, 1
        engine_of(ra).manual_failover(force=False, takeover=False)
        net.run()
        net.tick(5100)
        self.assertTrue(self.logs.having("Manual failover timed out."))
        self.assertTrue(ra.myself.is_replica)
        self.assertEqual((ra.mf_end, a.mf_end), (0, 0))
        self.assertIsNone(a.host.paused_until)

    def test_force_without_the_master(self):
        a, ra, net = self.a, self.ra, self.net
        net.kill(port_of(net, a))
        engine_of(ra).manual_failover(force=True, takeover=False)
        # No handshake, no delay: the requests left with the command.
        self.assertTrue(ra.failover_auth_sent)
        net.run()
        self.assertEqual(ra.failover_auth_count, 2)
        net.tick(100)
        self.assertTrue(ra.myself.is_master)
        self.assertEqual(net.sent(m.MFSTART), [])

    def test_takeover_needs_no_votes(self):
        a, ra, net = self.a, self.ra, self.net
        epoch = ra.current_epoch
        net.kill(port_of(net, a))
        net.cut(port_of(net, ra), port_of(net, self.b))
        net.cut(port_of(net, ra), port_of(net, self.c))
        engine_of(ra).manual_failover(force=True, takeover=True)
        self.assertTrue(ra.myself.is_master)
        self.assertEqual(ra.myself.config_epoch, epoch + 1)
        self.assertEqual(net.sent(m.FAILOVER_AUTH_REQUEST, port_of(net, ra)),
                         [])
        self.assertTrue(self.logs.having("Taking over the master (user "
                                         "request)."))


class ReplicaMigrationTests(TestCase):
    def test_orphaned_master_gets_a_replica(self):
        net, (a, b, c), rs = shards(replicas=(2, 1, 1))
        ra1, ra2, rb, rc = rs
        logs = Logs(self)
        net.kill(port_of(net, rb))
        net.tick(3000)
        self.assertTrue(view(ra1, rb).failed)
        # After the orphaned master stayed orphaned for 5 s, the replica
        # with the smallest name among a's replicas moves.
        net.tick(6000)
        mover = min((ra1, ra2), key=lambda s: s.myself.name)
        stayer = ra2 if mover is ra1 else ra1
        self.assertIs(mover.myself.replicaof, view(mover, b))
        self.assertIs(stayer.myself.replicaof, view(stayer, a))
        self.assertTrue(logs.having("Migrating to orphaned master "
                                    + b.myself.name))
        net.tick(2000)
        self.assertIn(view(c, mover), view(c, b).replicas)

    def test_barrier_keeps_replicas(self):
        net, (a, b, c), rs = shards(replicas=(2, 1, 1),
                                    cluster_migration_barrier=2)
        ra1, ra2, rb, rc = rs
        net.kill(port_of(net, rb))
        net.tick(10000)
        self.assertIs(ra1.myself.replicaof, view(ra1, a))
        self.assertIs(ra2.myself.replicaof, view(ra2, a))

    def test_disallowed(self):
        net, (a, b, c), rs = shards(
            replicas=(2, 1, 1), cluster_allow_replica_migration="no")
        ra1, ra2, rb, rc = rs
        net.kill(port_of(net, rb))
        net.tick(10000)
        self.assertIs(ra1.myself.replicaof, view(ra1, a))
        self.assertIs(ra2.myself.replicaof, view(ra2, a))


class DropFilterTests(TestCase):
    def test_drop_filter(self):
        net, (a, b, c), (ra, rb, rc) = shards()
        logs = Logs(self)
        a.drop_packet_filter = m.PING
        received = a.stats_received[m.PING]
        net.tick(2000)
        self.assertEqual(a.stats_received[m.PING], received)
        self.assertTrue(logs.having("Dropping packet that matches debug "
                                    "drop filter"))
        a.drop_packet_filter = -1
        net.tick(1000)
        self.assertGreater(a.stats_received[m.PING], received)
