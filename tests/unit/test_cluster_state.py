"""The sans-IO cluster core: membership, gossip, failure detection, config
propagation.  Several ClusterStates talk through an in-memory bus (``Net``)
on a shared fake clock: deterministic, no sockets, no reactor."""
from __future__ import annotations

import random
import weakref
from collections import deque

from twisted.trial.unittest import TestCase

from rcluster.cluster import messages as m
from rcluster.cluster.gossip import select_gossip
from rcluster.cluster.messages import (NODE_FAIL, NODE_HANDSHAKE,
                                       NODE_MASTER, NODE_MEET, NODE_MYSELF,
                                       NODE_NOADDR, NODE_PFAIL, NODE_SLAVE,
                                       STATE_FAIL, STATE_OK, Gossip, Header,
                                       Message, PingBody)
from rcluster.cluster.nodesconf import describe_node
from rcluster.cluster.engine import ClusterEngine
from rcluster.cluster.state import ClusterState, Host
from rcluster.config import Settings

START = 1_700_000_000_000  # the shared clock starts here (unix ms)


class RecordingHost(Host):
    """A host with keys per slot and a log of what the cluster asked."""

    def __init__(self):
        self.keys = {}              # slot -> key count
        self.delivered = []
        self.deleted_slots = []
        self.removed_channel_slots = []
        self.replicating = []

    def count_keys_in_slot(self, slot):
        return self.keys.get(slot, 0)

    def delete_keys_in_slot(self, slot):
        self.deleted_slots.append(slot)
        return self.keys.pop(slot, 0)

    def db_size(self):
        return sum(self.keys.values())

    def deliver(self, channel, message, shard):
        self.delivered.append((channel, message, shard))

    def remove_channels_in_slot(self, slot):
        self.removed_channel_slots.append(slot)

    def replicate(self, node):
        self.replicating.append(node)


_ENGINES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def engine_of(state) -> ClusterEngine:
    """The engine that feeds events to a test's state."""
    engine = _ENGINES.get(state)
    if engine is None:
        engine = _ENGINES[state] = ClusterEngine(state)
    return engine


def make_state(port=7000, clock=None, seed=None, **directives) -> ClusterState:
    settings = Settings()
    settings.apply("port", [str(port)])
    settings.apply("cluster-node-timeout", ["1000"])
    for name, value in directives.items():
        settings.apply(name.replace("_", "-"), [str(value)])
    clock = clock if clock is not None else [START]
    state = ClusterState(settings, lambda: clock[0], RecordingHost(),
                         random.Random(port if seed is None else seed))
    state.create_myself()
    return state


class Net:
    """An in-memory cluster bus between states on 127.0.0.1.

    Frames are queued and delivered by ``run()``; ``tick(ms)`` advances the
    clock in 100 ms cron steps.  ``kill``/``revive`` take a node off and
    back on the network (its state lives on, as after a partition);
    ``cut``/``heal`` block the traffic between two nodes."""

    def __init__(self, timeout=1000):
        self.clock = [START]
        self.timeout = timeout
        self.states: dict = {}       # port -> ClusterState
        self.down: set = set()
        self.cuts: set = set()
        self.queue = deque()
        self.pairs: list = []        # (state, out link, peer, in link)
        self.frames: list = []       # (from port, to port, Message)

    def add(self, port, slots=None, seed=None, **directives) -> ClusterState:
        state = make_state(port, self.clock, seed,
                           cluster_node_timeout=self.timeout, **directives)
        engine_of(state).connector = lambda link, st=state: self._connect(st, link)
        self.states[port] = state
        for slot in slots or ():
            state.add_slot(state.myself, slot)
        return state

    @property
    def now(self):
        return self.clock[0]

    def port_of(self, state):
        return next(p for p, s in self.states.items() if s is state)

    def _reachable(self, a: int, b: int) -> bool:
        return a not in self.down and b not in self.down and \
            frozenset((a, b)) not in self.cuts

    def _connect(self, state, link):
        src, dst = self.port_of(state), link.node.cport - 10000
        target = self.states.get(dst)
        if target is None or link.node.ip != "127.0.0.1" or \
                not self._reachable(src, dst):
            self.queue.append(lambda: link.closed or engine_of(state).link_lost(link))
            return

        def established():
            if link.closed:
                return
            inbound = engine_of(target).accept_link()
            link.attach(self._sender(src, target, inbound, dst),
                        lambda: self._lose(target, inbound),
                        "127.0.0.1", "127.0.0.1")
            inbound.attach(self._sender(dst, state, link, src),
                           lambda: self._lose(state, link),
                           "127.0.0.1", "127.0.0.1")
            self.pairs.append((state, link, target, inbound))
            engine_of(state).link_connected(link)
        self.queue.append(established)

    def _sender(self, src, receiver, link, dst):
        def write(data):
            self.frames.append((src, dst, m.decode(data)))

            def deliver():
                if not link.closed and self._reachable(src, dst):
                    engine_of(receiver).link_data(link, data)
            self.queue.append(deliver)
        return write

    def _lose(self, state, link):
        self.queue.append(lambda: link.closed or engine_of(state).link_lost(link))

    def run(self):
        while self.queue:
            self.queue.popleft()()

    def tick(self, ms=100):
        for _ in range(ms // 100):
            self.clock[0] += 100
            for port, state in self.states.items():
                if port not in self.down:
                    engine_of(state).cron()
            self.run()

    def _drop_links(self, a, b=None):
        """Close the connections of node a (with b only, if given)."""
        for st1, l1, st2, l2 in self.pairs:
            ports = {self.port_of(st1), self.port_of(st2)}
            if a in ports and (b is None or b in ports):
                for state, link in ((st1, l1), (st2, l2)):
                    if not link.closed:
                        engine_of(state).link_lost(link)
        self.run()

    def kill(self, port):
        self.down.add(port)
        self._drop_links(port)

    def revive(self, port):
        self.down.discard(port)

    def cut(self, a, b):
        self.cuts.add(frozenset((a, b)))
        self._drop_links(a, b)

    def heal(self, a, b):
        self.cuts.discard(frozenset((a, b)))

    def sent(self, msg_type, src=None, dst=None) -> list:
        return [msg for s, d, msg in self.frames
                if msg.header.type == msg_type and src in (None, s)
                and dst in (None, d)]

    def meet_all(self):
        """The first node meets every other one."""
        ports = list(self.states)
        first = self.states[ports[0]]
        for port in ports[1:]:
            first.start_handshake("127.0.0.1", port, port + 10000)

    def views(self):
        """Each state's nodes as {name: (flags text, slots)}, no myself."""
        return [{n.name: (n.flags & ~NODE_MYSELF, n.numslots)
                 for n in state.nodes.values()}
                for state in self.states.values()]


def three_masters(timeout=1000, **directives):
    net = Net(timeout)
    a = net.add(7001, range(0, 5461), **directives)
    b = net.add(7002, range(5461, 10923), **directives)
    c = net.add(7003, range(10923, 16384), **directives)
    net.meet_all()
    net.tick(3000)
    return net, a, b, c


def inbound_ping(state, sender: bytes, msg_type=m.PING, gossip=(), **header):
    """Feed a packet to the state on a new inbound link; returns the link."""
    link = engine_of(state).accept_link()
    frames = []
    link.attach(frames.append, lambda: None, "127.0.0.1", "127.0.0.1")
    link.frames = frames
    h = Header(type=msg_type, sender=sender, port=header.pop("port", 7100),
               cport=header.pop("cport", 17100), **header)
    engine_of(state).link_data(link, m.encode(Message(h, PingBody(list(gossip)))))
    return link


NAME_X = "ab" * 20
NAME_Y = "cd" * 20


class FreshNodeTests(TestCase):
    def test_new_identity(self):
        state = make_state(7000)
        me = state.myself
        self.assertEqual(len(me.name), 40)
        self.assertTrue(all(ch in "0123456789abcdef" for ch in me.name))
        self.assertEqual(me.flags, NODE_MYSELF | NODE_MASTER)
        self.assertEqual((me.ip, me.port, me.cport, me.pport), ("", 7000, 17000, 0))
        self.assertEqual(list(state.nodes), [me.name])
        self.assertEqual((state.state, state.size, state.current_epoch),
                         (STATE_FAIL, 1, 0))
        self.assertFalse(state.is_ok)

    def test_announced_ports(self):
        state = make_state(7000, cluster_port=7500, cluster_announce_port=8000,
                           cluster_announce_bus_port=9000)
        self.assertEqual(state.announced_ports(), (8000, 0, 9000))
        state = make_state(7000, tls_port=7443, tls_cluster="yes")
        self.assertEqual(state.announced_ports(), (7443, 7000, 17443))
        state = make_state(7000, tls_port=7443, tls_cluster="yes",
                           cluster_announce_tls_port=8443,
                           cluster_announce_port=8000)
        self.assertEqual(state.announced_ports(), (8443, 8000, 17443))

    def test_refresh_myself_follows_settings(self):
        state = make_state(7000)
        state.settings.cluster_announce_ip = "10.0.0.5"
        state.settings.cluster_announce_hostname = "a.example"
        state.settings.cluster_replica_no_failover = True
        state.refresh_myself()
        me = state.myself
        self.assertEqual((me.ip, me.hostname), ("10.0.0.5", "a.example"))
        self.assertEqual(me.flags & m.NODE_NOFAILOVER, m.NODE_NOFAILOVER)
        state.settings.cluster_announce_ip = ""
        state.refresh_myself()
        self.assertEqual(me.ip, "")  # back to discovery

    def test_header_carries_our_config(self):
        state = make_state(7000, cluster_announce_ip="10.0.0.5")
        state.add_slot(state.myself, 5)
        state.myself.config_epoch, state.current_epoch = 3, 4
        h = state.build_header(m.PING)
        self.assertEqual((h.sender, h.current_epoch, h.config_epoch, h.myslots,
                          h.slaveof, h.myip, h.port, h.cport, h.flags, h.state),
                         (state.myself.name.encode(), 4, 3, 1 << 5, None,
                          "10.0.0.5", 7000, 17000, NODE_MYSELF | NODE_MASTER,
                          STATE_FAIL))


class SlotTests(TestCase):
    def test_add_and_delete(self):
        state = make_state()
        me = state.myself
        self.assertTrue(state.add_slot(me, 0))
        self.assertTrue(state.add_slot(me, 16383))
        self.assertFalse(state.add_slot(me, 0))
        self.assertIs(state.slot_owner(0), me)
        self.assertEqual((me.numslots, me.slots, me.bitmap, state.slots_assigned),
                         (2, [0, 16383], 1 | 1 << 16383, 2))
        self.assertTrue(state.del_slot(0))
        self.assertFalse(state.del_slot(0))
        self.assertIsNone(state.slot_owner(0))
        self.assertEqual((me.slots, state.slots_assigned), ([16383], 1))
        # Our shard lost the slot: its shard channels must go.
        self.assertEqual(state.host.removed_channel_slots, [0])

    def test_derived_views_follow_changes(self):
        # slots, slot_ranges and bitmap are cached: every change shows.
        state = make_state()
        me = state.myself
        self.assertEqual((me.slots, me.slot_ranges, me.bitmap), ([], [], 0))
        for slot in (5, 1, 2, 3, 16383):
            state.add_slot(me, slot)
        self.assertEqual(me.slot_ranges, [(1, 3), (5, 5), (16383, 16383)])
        self.assertEqual(me.slots, [1, 2, 3, 5, 16383])
        state.del_slot(2)
        self.assertEqual(me.slot_ranges, [(1, 1), (3, 3), (5, 5), (16383, 16383)])
        self.assertEqual((me.slots, me.bitmap),
                         ([1, 3, 5, 16383], 0b101010 | 1 << 16383))

    def test_serves_directly(self):
        # The routing fast path: our slot, not migrating, cluster ok.
        state = make_state()
        other = state.create_node(NAME_X, NODE_MASTER)
        state.add_node(other)
        state.add_slot(state.myself, 1)
        state.add_slot(state.myself, 2)
        state.add_slot(other, 3)
        self.assertFalse(state.serves_directly(1))     # cluster_state:fail
        state.state = STATE_OK
        self.assertEqual([state.serves_directly(s) for s in (1, 2, 3, 4)],
                         [True, True, False, False])
        state.migrating[2] = other
        self.assertEqual([state.serves_directly(s) for s in (1, 2)], [True, False])

    def test_open_slots(self):
        state = make_state()
        other = state.create_node(NAME_X, NODE_MASTER)
        state.add_node(other)
        state.migrating[5] = other
        state.importing[6] = other
        self.assertIs(state.migrating_to(5), other)
        self.assertIsNone(state.migrating_to(6))
        self.assertIs(state.importing_from(6), other)
        state.del_node(other)
        self.assertEqual((state.migrating, state.importing), ({}, {}))


class HandshakeTests(TestCase):
    def test_meet_pong_rename(self):
        net = Net()
        a, b = net.add(7001), net.add(7002)
        self.assertTrue(a.start_handshake("127.0.0.1", 7002, 17002))
        # A second MEET for the same address while the first is going on.
        self.assertFalse(a.start_handshake("127.0.0.1", 7002, 17002))
        temp = [n for n in a.nodes.values() if n is not a.myself][0]
        self.assertEqual(temp.flags, NODE_HANDSHAKE | NODE_MEET)
        net.tick(100)
        # a sent MEET, b answered PONG: a renamed its node to b's name.
        self.assertEqual(len(net.sent(m.MEET, 7001, 7002)), 1)
        self.assertEqual(len(net.sent(m.PONG, 7002, 7001)), 1)
        node_b = a.nodes[b.myself.name]
        self.assertIs(node_b, temp)
        self.assertEqual(node_b.flags, NODE_MASTER)
        self.assertEqual((node_b.ip, node_b.port, node_b.cport),
                         ("127.0.0.1", 7002, 17002))
        # b learned its own address from the MEET, and started its own
        # handshake with a (a plain PING: a already knows b).
        self.assertEqual(b.myself.ip, "127.0.0.1")
        net.tick(200)
        self.assertIn(a.myself.name, b.nodes)
        self.assertEqual(b.nodes[a.myself.name].flags, NODE_MASTER)
        self.assertEqual(len(a.nodes), 2)
        self.assertEqual(len(b.nodes), 2)
        self.assertEqual(net.sent(m.MEET, 7002), [])
        self.assertIs(a.nodes[b.myself.name].inbound_link is not None, True)

    def test_invalid_meet_addresses(self):
        state = make_state()
        self.assertRaises(ValueError, state.start_handshake, "x", 7000, 17000)
        self.assertRaises(ValueError, state.start_handshake, "127.0.0.1", 0, 10000)
        self.assertRaises(ValueError, state.start_handshake, "127.0.0.1", 7000, 70000)
        # Addresses are normalized.
        state.start_handshake("::0001", 7000, 17000)
        self.assertIn("::1", [n.ip for n in state.nodes.values()])

    def test_handshake_times_out(self):
        net = Net(timeout=500)
        a = net.add(7001)
        a.start_handshake("127.0.0.1", 7999, 17999)  # nobody there
        net.tick(1000)
        self.assertEqual(len(a.nodes), 2)          # max(timeout, 1000 ms)
        net.tick(200)
        self.assertEqual(list(a.nodes), [a.myself.name])

    def test_meet_of_a_known_node_is_merged(self):
        net = Net()
        a, b = net.add(7001), net.add(7002)
        net.meet_all()
        net.tick(500)
        a.start_handshake("127.0.0.1", 7002, 17002)
        net.tick(300)
        self.assertEqual(sorted(a.nodes), sorted([a.myself.name, b.myself.name]))

    def test_mismatching_sender_marks_noaddr(self):
        net = Net()
        a, b = net.add(7001), net.add(7002)
        net.meet_all()
        net.tick(500)
        node_b = a.nodes[b.myself.name]
        # Another node now answers at b's address.
        net.kill(7002)
        c = net.add(7002, seed=1)
        net.revive(7002)
        net.tick(200)
        self.assertEqual(node_b.flags & NODE_NOADDR, NODE_NOADDR)
        self.assertEqual((node_b.ip, node_b.port, node_b.cport), ("", 0, 0))
        self.assertNotIn(c.myself.name, a.nodes)
        self.assertIn("noaddr", describe_node(a, node_b))


class GossipTests(TestCase):
    def test_third_node_learned_from_gossip(self):
        net = Net()
        a, b, c = net.add(7001), net.add(7002), net.add(7003)
        a.start_handshake("127.0.0.1", 7002, 17002)
        b.start_handshake("127.0.0.1", 7003, 17003)
        net.tick(2000)
        names = sorted(s.myself.name for s in (a, b, c))
        for state in (a, b, c):
            self.assertEqual(sorted(state.nodes), names)
            for node in state.nodes.values():
                self.assertEqual(node.flags & ~NODE_MYSELF, NODE_MASTER)
        # Nobody MEETs the third node: c was introduced by gossip.
        self.assertEqual(net.sent(m.MEET, 7001, 7003), [])

    def test_gossip_from_unknown_sender_is_not_trusted(self):
        state = make_state()
        g = Gossip(NAME_Y.encode(), ip="127.0.0.1", port=7200, cport=17200,
                   flags=NODE_MASTER)
        link = inbound_ping(state, NAME_X.encode(), gossip=[g])
        self.assertEqual(list(state.nodes), [state.myself.name])
        # A PING from a stranger still gets a PONG.
        self.assertEqual([m.decode(f).header.type for f in link.frames], [m.PONG])

    def test_meet_adds_a_handshake_node(self):
        state = make_state()
        inbound_ping(state, NAME_X.encode(), msg_type=m.MEET, port=7300,
                     cport=17300)
        (node,) = [n for n in state.nodes.values() if n is not state.myself]
        self.assertEqual((node.flags, node.ip, node.port, node.cport),
                         (NODE_HANDSHAKE, "127.0.0.1", 7300, 17300))
        self.assertEqual(state.myself.ip, "127.0.0.1")

    def test_gossip_selection(self):
        net, a, b, c = three_masters()
        # 3 nodes: at most 1 entry (all but myself and the receiver).
        self.assertEqual(len(select_gossip(a)), 1)
        for port in range(7004, 7020):
            net.add(port)
            a.start_handshake("127.0.0.1", port, port + 10000)
        net.tick(1500)
        self.assertEqual(len(a.nodes), 19)
        chosen = select_gossip(a)
        self.assertEqual(len(chosen), 3)               # max(19 // 10, 3)
        self.assertEqual(len(set(chosen)), 3)
        self.assertNotIn(a.myself, chosen)
        # Nothing is said to a node about itself (it can't learn from it).
        receiver = a.nodes[b.myself.name]
        for _ in range(50):
            self.assertNotIn(receiver, select_gossip(a, receiver))
        # PFAIL nodes are always added, on top.
        for node in list(a.nodes.values())[5:7]:
            node.flags |= NODE_PFAIL
        a.stats_pfail_nodes = 2
        chosen = select_gossip(a)
        self.assertEqual(sum(1 for n in chosen if n.flags & NODE_PFAIL), 2)
        self.assertEqual(len(chosen), 5)

    def test_hostname_extension(self):
        net = Net()
        a = net.add(7001, cluster_announce_hostname="a.example")
        b = net.add(7002)
        net.meet_all()
        net.tick(1000)
        self.assertEqual(b.nodes[a.myself.name].hostname, "a.example")
        self.assertIn(",a.example ", describe_node(b, b.nodes[a.myself.name]))
        a.settings.cluster_announce_hostname = ""
        net.tick(1000)
        self.assertEqual(b.nodes[a.myself.name].hostname, "")

    def test_publish_reaches_every_node(self):
        net, a, b, c = three_masters()
        a.propagate_publish(b"news", b"hello", shard=False)
        net.run()
        for state in (b, c):
            self.assertEqual(state.host.delivered, [(b"news", b"hello", False)])
        # SPUBLISH stays in the shard: a has no replica, nobody gets it.
        a.propagate_publish(b"s", b"x", shard=True)
        net.run()
        self.assertEqual(len(b.host.delivered), 1)
        self.assertEqual(net.sent(m.PUBLISHSHARD), [])


class FailureDetectionTests(TestCase):
    def test_cluster_forms_and_agrees(self):
        net, a, b, c = three_masters()
        for state in (a, b, c):
            self.assertEqual((state.state, state.size, len(state.nodes)),
                             (STATE_OK, 3, 3))
            self.assertEqual(state.slot_owner(0).name, a.myself.name)
            self.assertEqual(state.slot_owner(16383).name, c.myself.name)
        self.assertEqual(len({s.myself.config_epoch for s in (a, b, c)}), 3)

    def test_pfail_then_fail_by_quorum(self):
        net, a, b, c = three_masters()
        net.kill(7003)
        name = c.myself.name
        net.tick(1000)
        self.assertEqual(a.nodes[name].flags & (NODE_PFAIL | NODE_FAIL), 0)
        net.tick(2000)
        # Past node-timeout: PFAIL on both, then FAIL once a's PFAIL and
        # b's report make a majority of the 3 masters.
        for state in (a, b):
            self.assertEqual(state.nodes[name].flags & (NODE_PFAIL | NODE_FAIL),
                             NODE_FAIL)
            self.assertEqual(state.state, STATE_FAIL)  # slots uncovered
        fails = net.sent(m.FAIL)
        self.assertTrue(fails)
        self.assertEqual({f.body.nodename for f in fails}, {name.encode()})
        self.assertIn("master,fail", describe_node(a, a.nodes[name]))

    def test_no_fail_without_quorum(self):
        net, a, b, c = three_masters()
        net.cut(7001, 7003)   # only a loses c
        net.tick(3000)
        node = a.nodes[c.myself.name]
        self.assertEqual(node.flags & (NODE_PFAIL | NODE_FAIL), NODE_PFAIL)
        self.assertEqual(b.nodes[c.myself.name].flags & (NODE_PFAIL | NODE_FAIL), 0)
        self.assertEqual(a.failure_reports_count(node), 0)
        self.assertEqual(net.sent(m.FAIL), [])
        net.heal(7001, 7003)
        net.tick(1000)
        self.assertEqual(node.flags & NODE_PFAIL, 0)   # PFAIL undone by a PONG

    def test_failure_reports_expire(self):
        net, a, b, c = three_masters()
        node_c = a.nodes[c.myself.name]
        node_c.add_failure_report(a.nodes[b.myself.name], net.now)
        self.assertEqual(a.failure_reports_count(node_c), 1)
        net.clock[0] += 2001      # 2 x node-timeout
        self.assertEqual(a.failure_reports_count(node_c), 0)

    def test_fail_cleared_for_master_without_slots(self):
        net, a, b, c = three_masters()
        d = net.add(7004)
        a.start_handshake("127.0.0.1", 7004, 17004)
        net.tick(1500)
        net.kill(7004)
        net.tick(3000)
        node = a.nodes[d.myself.name]
        self.assertTrue(node.failed)
        self.assertEqual(a.state, STATE_OK)       # it served no slots
        net.revive(7004)
        net.tick(500)
        self.assertFalse(node.failed)

    def test_fail_cleared_for_master_with_slots_after_undo_time(self):
        net, a, b, c = three_masters()
        net.kill(7003)
        net.tick(2000)
        node = a.nodes[c.myself.name]
        self.assertTrue(node.failed)
        fail_time = node.fail_time
        net.revive(7003)
        net.tick(500)
        self.assertTrue(node.failed)    # nobody took its slots yet...
        while net.now - fail_time <= 2000:
            net.tick(100)
        net.tick(300)
        self.assertFalse(node.failed)   # ...and nobody will: clear FAIL
        net.tick(2000)
        self.assertEqual(a.state, STATE_OK)

    def test_fail_message_from_peer(self):
        net, a, b, c = three_masters()
        name = c.myself.name
        a.nodes[name].flags |= NODE_PFAIL
        from rcluster.cluster.failure import send_fail
        send_fail(b, name)
        net.run()
        self.assertTrue(a.nodes[name].failed)
        self.assertFalse(a.nodes[name].timed_out)
        # A FAIL about ourselves is ignored.
        send_fail(b, a.myself.name)
        net.run()
        self.assertFalse(a.myself.failed)

    def test_quiet_link_is_reconnected(self):
        net, a, b, c = three_masters()
        link = a.nodes[b.myself.name].link
        net.cuts.add(frozenset((7001, 7002)))   # traffic lost, links up
        net.tick(1600)
        self.assertTrue(link.closed)
        self.assertIsNot(a.nodes[b.myself.name].link, link)


class ConfigTests(TestCase):
    def test_epoch_collision_resolution(self):
        net = Net()
        a, b = net.add(7001, [0]), net.add(7002, [1])
        net.meet_all()
        net.tick(1000)
        low, high = sorted((a, b), key=lambda s: s.myself.name)
        # The node with the smaller name moves to a new epoch.
        self.assertEqual((low.myself.config_epoch, high.myself.config_epoch),
                         (1, 0))
        self.assertEqual((a.current_epoch, b.current_epoch), (1, 1))

    def test_max_epoch_and_bump(self):
        state = make_state()
        self.assertTrue(state.bump_epoch_without_consensus())
        self.assertEqual((state.myself.config_epoch, state.current_epoch), (1, 1))
        self.assertFalse(state.bump_epoch_without_consensus())  # already max
        other = state.create_node(NAME_X, NODE_MASTER)
        other.config_epoch = 7
        state.add_node(other)
        self.assertEqual(state.max_epoch(), 7)
        self.assertTrue(state.bump_epoch_without_consensus())
        self.assertEqual(state.myself.config_epoch, 2)

    def test_higher_epoch_claim_wins(self):
        net, a, b, c = three_masters()
        # c moves slot 0 to itself under a new, greater epoch.
        c.del_slot(0)
        c.add_slot(c.myself, 0)
        c.bump_epoch_without_consensus()
        net.tick(1000)
        for state in (a, b, c):
            self.assertEqual(state.slot_owner(0).name, c.myself.name)
        self.assertEqual(a.myself.numslots, 5460)

    def test_update_sent_to_stale_node(self):
        net, a, b, c = three_masters()
        net.kill(7003)
        net.tick(2000)
        # While c is away, a takes c's slot 16383 with a newer epoch.
        for state in (a, b):
            state.del_slot(16383)
            state.add_slot(state.nodes[a.myself.name], 16383)
        a.bump_epoch_without_consensus()
        epoch = a.myself.config_epoch
        net.tick(300)
        del net.frames[:]
        net.revive(7003)
        net.tick(1500)
        # c still claims 16383 under its old epoch: it is told about a.
        updates = net.sent(m.UPDATE, dst=7003)
        self.assertTrue(updates)
        self.assertEqual(updates[0].body.nodename, a.myself.name.encode())
        self.assertEqual(updates[0].body.config_epoch, epoch)
        self.assertEqual(c.slot_owner(16383).name, a.myself.name)
        self.assertEqual(c.myself.numslots, 16384 - 10923 - 1)

    def test_update_message_rebinds_slots(self):
        state = make_state()
        x = state.create_node(NAME_X, NODE_MASTER)
        x.config_epoch = 1
        state.add_node(x)
        for slot in range(10):
            state.add_slot(x, slot)
        sender = state.create_node(NAME_Y, NODE_MASTER)
        state.add_node(sender)
        link = engine_of(state).accept_link()
        link.attach(lambda d: None, lambda: None)
        state.set_inbound_link(sender, link)
        h = Header(type=m.UPDATE, sender=NAME_Y.encode())
        body = m.UpdateBody(5, NAME_X.encode(), m.slots_to_bitmap(range(20)))
        engine_of(state).link_data(link, m.encode(Message(h, body)))
        self.assertEqual((x.config_epoch, x.numslots), (5, 20))
        # An UPDATE that is not newer is ignored.
        body = m.UpdateBody(4, NAME_X.encode(), m.slots_to_bitmap([100]))
        engine_of(state).link_data(link, m.encode(Message(h, body)))
        self.assertEqual(x.numslots, 20)

    def test_losing_slots_with_keys_deletes_them(self):
        state = make_state()
        me = state.myself
        me.config_epoch = 1
        state.add_slot(me, 1)
        state.add_slot(me, 2)
        state.host.keys = {1: 3}
        x = state.create_node(NAME_X, NODE_MASTER)
        state.add_node(x)
        from rcluster.cluster.slotconfig import update_slots_config_with
        update_slots_config_with(state, x, 2, m.slots_to_bitmap([1]))
        self.assertIs(state.slot_owner(1), x)
        self.assertEqual(state.host.deleted_slots, [1])
        self.assertTrue(me.is_master)

    def test_losing_all_slots_makes_us_a_replica(self):
        state = make_state()
        me = state.myself
        me.config_epoch = 1
        state.add_slot(me, 1)
        x = state.create_node(NAME_X, NODE_MASTER)
        state.add_node(x)
        from rcluster.cluster.slotconfig import update_slots_config_with
        update_slots_config_with(state, x, 2, m.slots_to_bitmap([1]))
        self.assertTrue(me.is_replica)
        self.assertIs(me.replicaof, x)
        self.assertEqual(x.replicas, [me])
        self.assertEqual(state.host.replicating, [x])
        h = state.build_header(m.PING)
        self.assertEqual((h.slaveof, h.myslots, h.flags & NODE_SLAVE),
                         (NAME_X.encode(), 1 << 1, NODE_SLAVE))

    def test_role_switch_from_header(self):
        net, a, b, c = three_masters()
        node_c = a.nodes[c.myself.name]
        # c announces it replicates b (as after a failover): its slots go.
        c.del_node_slots(c.myself)
        c.set_master(c.nodes[b.myself.name])
        net.tick(1000)
        self.assertTrue(node_c.is_replica)
        self.assertIs(node_c.replicaof, a.nodes[b.myself.name])
        self.assertEqual(node_c.numslots, 0)
        self.assertIn(" slave " + b.myself.name + " ",
                      describe_node(a, node_c))


class BlacklistResetTests(TestCase):
    def test_forgotten_node_is_not_relearned_for_a_minute(self):
        net, a, b, c = three_masters()
        node_c = a.nodes[c.myself.name]
        a.blacklist_add(node_c)
        a.del_node(node_c)
        net.tick(5000)
        self.assertNotIn(c.myself.name, a.nodes)
        net.clock[0] += 60_000
        net.tick(3000)
        self.assertIn(c.myself.name, a.nodes)

    def test_reset(self):
        net, a, b, c = three_masters()
        name = a.myself.name
        a.migrating[0] = a.nodes[b.myself.name]
        a.reset(hard=False)
        self.assertEqual(list(a.nodes), [name])
        self.assertEqual((a.myself.numslots, a.migrating), (0, {}))
        self.assertNotEqual(a.current_epoch, 0)
        a.reset(hard=True)
        self.assertNotEqual(a.myself.name, name)
        self.assertEqual(list(a.nodes), [a.myself.name])
        self.assertEqual((a.current_epoch, a.myself.config_epoch), (0, 0))


class StateEvaluationTests(TestCase):
    def test_writable_delay_then_ok(self):
        clock = [START]
        state = make_state(clock=clock)
        for slot in range(16384):
            state.add_slot(state.myself, slot)
        state.update_state()
        self.assertEqual(state.state, STATE_FAIL)   # 2 s after the first call
        clock[0] += 1999
        state.update_state()
        self.assertEqual(state.state, STATE_FAIL)
        clock[0] += 1
        state.update_state()
        self.assertEqual((state.state, state.size), (STATE_OK, 1))

    def test_full_coverage(self):
        clock = [START]
        state = make_state(clock=clock)
        for slot in range(16383):
            state.add_slot(state.myself, slot)
        state.update_state()
        clock[0] += 5000
        state.update_state()
        self.assertEqual(state.state, STATE_FAIL)
        state.settings.cluster_require_full_coverage = False
        state.update_state()
        self.assertEqual(state.state, STATE_OK)

    def test_rejoin_delay(self):
        clock = [START]
        state = make_state(clock=clock)
        others = []
        for i, name in enumerate((NAME_X, NAME_Y)):
            node = state.create_node(name, NODE_MASTER)
            state.add_node(node)
            others.append(node)
        owners = [state.myself] + others
        for slot in range(16384):
            state.add_slot(owners[slot % 3], slot)
        state.update_state()
        clock[0] += 2000
        state.update_state()
        self.assertEqual((state.state, state.size), (STATE_OK, 3))
        for node in others:
            node.flags |= NODE_PFAIL
        state.update_state()
        self.assertEqual(state.state, STATE_FAIL)   # minority: 1 of 3
        left_minority = clock[0]
        for node in others:
            node.flags &= ~NODE_PFAIL
        clock[0] = left_minority + 999              # node-timeout is 1000
        state.update_state()
        self.assertEqual(state.state, STATE_FAIL)
        clock[0] = left_minority + 1000
        state.update_state()
        self.assertEqual(state.state, STATE_OK)

    def test_minority_partition(self):
        net, a, b, c = three_masters()
        self.assertEqual(a.state, STATE_OK)
        net.cut(7001, 7002)
        net.cut(7001, 7003)
        net.tick(2000)
        self.assertEqual(a.state, STATE_FAIL)   # 1 reachable master of 3
        net.heal(7001, 7002)
        net.heal(7001, 7003)
        net.tick(2000)
        self.assertEqual(a.state, STATE_OK)


class BadInputTests(TestCase):
    def test_bad_frame_drops_the_link(self):
        net, a, b, c = three_masters()
        node_b = a.nodes[b.myself.name]
        link = node_b.inbound_link
        engine_of(a).link_data(link, b"GET / HTTP/1.1\r\n\r\n")
        self.assertTrue(link.closed)
        self.assertIsNone(node_b.inbound_link)
        # The node itself stays known, and comes back on a new link.
        net.tick(2000)
        self.assertIsNotNone(node_b.inbound_link)
        self.assertEqual(a.state, STATE_OK)

    def test_truncated_gossip_drops_the_link(self):
        state = make_state()
        link = engine_of(state).accept_link()
        link.attach(lambda d: None, lambda: None)
        frame = bytearray(m.encode(Message(Header(type=m.PING,
                                                  sender=NAME_X.encode()),
                                           PingBody())))
        frame[14:16] = (3).to_bytes(2, "big")   # count=3, no entries
        engine_of(state).link_data(link, bytes(frame))
        self.assertTrue(link.closed)

    def test_invalid_sender_name_drops_the_link(self):
        state = make_state()
        good = inbound_ping(state, b"a" * 40)      # checked once, remembered
        self.assertFalse(good.closed)
        link = inbound_ping(state, b"A" * 40)      # upper case: not a name
        self.assertTrue(link.closed)
        self.assertEqual(link.frames, [])

    def test_gossip_with_invalid_names_is_skipped(self):
        net, a, b, c = three_masters()
        node_b = a.nodes[b.myself.name]
        link = node_b.inbound_link
        bad = Gossip(b"Z" * 40, ip="127.0.0.1", port=7300, cport=17300,
                     flags=NODE_MASTER)
        h = b.build_header(m.PING)
        for _ in range(2):
            engine_of(a).link_data(link, m.encode(Message(h, PingBody([bad]))))
        self.assertEqual(len(a.nodes), 3)
        self.assertFalse(link.closed)
