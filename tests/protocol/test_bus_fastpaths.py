"""The cluster bus's steady-state fast paths give what the full paths give.

- ``messages.FrameEncoder`` (the header kept encoded, patched while the
  node's configuration is unchanged) writes the bytes ``encode()`` writes,
  golden frames included.
- ``FrameDecoder`` reusing the last slot bitmap of a link (compared as
  bytes before decoding) decodes the messages ``decode()`` decodes.
- ``receive.claim_differs`` (a sender's claim equal to the last one seen,
  with our view of its shard unchanged, is not compared again) and the
  header template give the same state transitions and the same frames as
  the full paths, for random sequences of gossip messages (hypothesis).
- The cron's heap of deadlines acts in the same cron periods as the walk
  over every node.
- Claimed slots nobody owns are taken in bulk with the slot-by-slot result.
- Behaviour kept equal to Redis 7.0: a node whose reconnections are
  throttled is still pinged (claimed) when its pong gets old, so PFAIL
  comes when it would in Redis; nodes.conf is fsync'd where Redis fsyncs,
  only written where Redis only writes.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import TestCase

from rcluster.cluster import messages as m
from rcluster.cluster.engine import ClusterEngine
from rcluster.cluster.messages import (NODE_FAIL, NODE_MASTER, NODE_PFAIL,
                                       NODE_SLAVE, FrameDecoder, FrameEncoder,
                                       Gossip, Header, Message, PingBody)
from tests.unit.test_cluster_state import START, Net, engine_of, make_state

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data", "bus")
GOLDEN = sorted(name[:-4] for name in os.listdir(DATA) if name.endswith(".hex"))

NAME_ME = "0" * 40
NAME_X = "ab" * 20
NAME_Y = "cd" * 20
NAME_Z = "ef" * 20          # never known at first: learned from gossip
NAMES = (NAME_X, NAME_Y, NAME_Z)

BITMAPS = (0, m.slots_to_bitmap(range(0, 100)),
           m.slots_to_bitmap(range(100, 200)),
           m.slots_to_bitmap(range(0, 200)),
           m.slots_to_bitmap([5, 150, 16383]))


def golden(name) -> bytes:
    with open(os.path.join(DATA, name + ".hex")) as fh:
        return bytes.fromhex("".join(line for line in fh
                                     if not line.startswith("#")))


class FrameEncoderTests(TestCase):
    def test_golden_frames_byte_for_byte(self):
        self.assertTrue(GOLDEN)
        for name in GOLDEN:
            frame = golden(name)
            message = m.decode(frame)
            encoder = FrameEncoder()
            self.assertEqual(encoder.encode(message), frame, name)
            self.assertEqual(encoder.encode(message), frame, name)  # patched
            self.assertEqual((encoder.rebuilds, encoder.patched), (1, 1))
            self.assertEqual(m.encode(message), frame, name)

    @settings(max_examples=80, deadline=None)
    @given(st.lists(st.tuples(
        st.sampled_from([m.PING, m.PONG, m.MEET, m.FAIL, m.PUBLISH,
                         m.FAILOVER_AUTH_REQUEST, m.FAILOVER_AUTH_ACK,
                         m.UPDATE, m.MFSTART, m.PUBLISHSHARD]),
        st.integers(0, 2),                      # which configuration
        st.integers(0, 2**64 - 1),              # replication offset
        st.sampled_from([0, m.MSGFLAG_PAUSED, m.MSGFLAG_FORCEACK]),
        st.integers(0, 3),                      # gossip entries
        st.booleans()),                         # hostname extension
        min_size=1, max_size=30))
    def test_same_bytes_as_encode(self, steps):
        configs = [
            dict(sender=NAME_ME.encode(), current_epoch=3, config_epoch=2,
                 myslots=BITMAPS[1], port=7000, cport=17000),
            dict(sender=NAME_ME.encode(), current_epoch=4, config_epoch=2,
                 myslots=BITMAPS[1], port=7000, cport=17000,
                 myip="10.0.0.1"),
            dict(sender=NAME_ME.encode(), current_epoch=4, config_epoch=0,
                 myslots=BITMAPS[3], slaveof=NAME_X.encode(),
                 flags=m.NODE_SLAVE | m.NODE_MYSELF, state=m.STATE_FAIL,
                 port=7000, pport=7001, cport=17000),
        ]
        encoder = FrameEncoder()
        for msg_type, config, offset, mflags, count, hostname in steps:
            header = Header(type=msg_type, offset=offset, mflags=mflags,
                            **configs[config])
            body = {
                m.FAIL: lambda: m.FailBody(NAME_X.encode()),
                m.PUBLISH: lambda: m.PublishBody(b"ch", b"msg"),
                m.PUBLISHSHARD: lambda: m.PublishBody(b"c", b""),
                m.UPDATE: lambda: m.UpdateBody(5, NAME_Y.encode(), BITMAPS[2]),
            }.get(msg_type, lambda: m.EmptyBody())()
            if msg_type in (m.PING, m.PONG, m.MEET):
                body = PingBody([Gossip(NAMES[i].encode(), i, 7, "127.0.0.1",
                                        7000 + i, 17000 + i, NODE_MASTER)
                                 for i in range(count)],
                                hostname="h.example" if hostname else None)
            message = Message(header, body)
            self.assertEqual(encoder.encode(message), m.encode(message))
        self.assertEqual(encoder.rebuilds + encoder.patched, len(steps))
        self.assertLessEqual(encoder.rebuilds, len(steps))


class DecodeReuseTests(TestCase):
    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, len(BITMAPS) - 1),
                              st.sampled_from(NAMES)),
                    min_size=1, max_size=20))
    def test_same_messages_as_decode(self, steps):
        fast, full = FrameDecoder(), FrameDecoder(reuse_slots=False)
        frames = [m.encode(Message(Header(type=m.PONG, sender=name.encode(),
                                          myslots=BITMAPS[i]), PingBody()))
                  for i, name in steps]
        data = b"".join(frames)
        # Fed in odd pieces: the fast path must not depend on framing.
        for start in range(0, len(data), 1000):
            fast.feed(data[start:start + 1000])
            full.feed(data[start:start + 1000])
        got_fast, got_full = list(fast), list(full)
        self.assertEqual(got_fast, got_full)
        self.assertEqual([msg.header.myslots for msg in got_fast],
                         [BITMAPS[i] for i, _ in steps])
        for before, after in zip(got_fast, got_fast[1:]):
            if before.header.myslots_raw == after.header.myslots_raw:
                # Unchanged bytes: the int was not decoded again.
                self.assertIs(before.header.myslots, after.header.myslots)

    def test_golden_frames_decode_alike(self):
        fast = FrameDecoder()
        for name in GOLDEN:
            frame = golden(name)
            fast.feed(frame + frame)
            first, second = list(fast)
            self.assertEqual(first, m.decode(frame))
            self.assertEqual(second, m.decode(frame))


# -- state transitions: fast paths against full paths ------------------------

def _state(fast: bool, clock):
    state = make_state(7000, clock, seed=1)
    state.fast_paths = fast
    me = state.myself
    state.rename_node(me, NAME_ME)
    for slot in range(200, 300):
        state.add_slot(me, slot)
    me.config_epoch = 3
    for i, name in enumerate((NAME_X, NAME_Y)):
        node = state.create_node(name, NODE_MASTER)
        node.ip, node.port, node.cport = "127.0.0.1", 7001 + i, 17001 + i
        state.add_node(node)
    x = state.nodes[NAME_X]
    for slot in range(0, 100):
        state.add_slot(x, slot)
    x.config_epoch = 1
    state.nodes[NAME_Y].config_epoch = 2
    return state


def snapshot(state) -> dict:
    nodes = {}
    for node in state.nodes.values():
        nodes[node.name] = (
            node.flags, node.config_epoch, node.bitmap, node.numslots,
            node.replicaof.name if node.replicaof else None,
            sorted(r.name for r in node.replicas), node.ping_sent,
            node.pong_received, node.data_received,
            sorted(s.name for s in node.fail_reports), node.ip, node.port,
            node.cport, node.hostname)
    return dict(nodes=nodes, epoch=state.current_epoch,
                slots=[n.name if n else None for n in state.slots],
                not_claimed=sorted(state.not_claimed),
                importing=dict(state.importing), todo=state.todo,
                state=state.state, sent=list(state.stats_sent),
                received=list(state.stats_received))


message_steps = st.lists(st.tuples(
    st.sampled_from(["X", "Y", "update", "local", "tick"]),
    st.sampled_from([m.PING, m.PONG, m.MEET]),
    st.integers(0, len(BITMAPS) - 1),           # claimed slots
    st.integers(0, 6),                          # config epoch
    st.sampled_from([None, NAME_X, NAME_Y]),    # slaveof
    st.lists(st.tuples(st.sampled_from(NAMES + (NAME_ME,)),
                       st.sampled_from([NODE_MASTER, NODE_SLAVE,
                                        NODE_MASTER | NODE_PFAIL,
                                        NODE_MASTER | NODE_FAIL]),
                       st.integers(0, 3)), max_size=3),
    st.integers(0, 300)), min_size=1, max_size=25)


class ClaimFastPathTests(TestCase):
    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(message_steps)
    def test_random_gossip_same_state_and_frames(self, steps):
        runs = []
        for fast in (True, False):
            clock = [START]
            state = _state(fast, clock)
            engine = ClusterEngine(state)
            links, sent, views = {}, [], []
            for what, msg_type, bits, epoch, slaveof, gossip, ms in steps:
                if what == "tick":
                    clock[0] += ms
                    continue
                if what == "local":
                    # Our view of X's shard changes under the cache.
                    x = state.nodes.get(NAME_X)
                    if x is not None and state.slots[bits] in (None, x):
                        if state.slots[bits] is x:
                            state.del_slot(bits)
                        else:
                            state.add_slot(x, bits)
                    views.append(snapshot(state))
                    continue
                name = NAME_X if what in ("X", "update") else NAME_Y
                link = links.get(name)
                if link is None or link.closed:
                    link = links[name] = engine.accept_link()
                    link.attach(sent.append, lambda: None, "127.0.0.1",
                                "127.0.0.1")
                flags = NODE_SLAVE if slaveof else NODE_MASTER
                header = Header(
                    type=msg_type, sender=name.encode(), current_epoch=epoch,
                    config_epoch=epoch, myslots=BITMAPS[bits],
                    slaveof=slaveof.encode() if slaveof else None,
                    port=7001 if name == NAME_X else 7002,
                    cport=17001 if name == NAME_X else 17002, flags=flags)
                if what == "update":
                    header.type = m.UPDATE
                    body = m.UpdateBody(epoch, NAME_Y.encode(), BITMAPS[bits])
                else:
                    body = PingBody([Gossip(
                        g.encode(), 0, (START // 1000) + pong, "127.0.0.1",
                        7100 + i, 17100 + i, gflags)
                        for i, (g, gflags, pong) in enumerate(gossip)])
                engine.link_data(link, m.encode(Message(header, body)))
                views.append(snapshot(state))
            runs.append((views, sent))
        (fast_views, fast_sent), (full_views, full_sent) = runs
        self.assertEqual(len(fast_views), len(full_views))
        for fast_view, full_view in zip(fast_views, full_views):
            self.assertEqual(fast_view, full_view)
        self.assertEqual(fast_sent, full_sent)     # the same bytes

    def test_fast_path_taken_and_invalidated(self):
        clock = [START]
        state = _state(True, clock)
        engine = ClusterEngine(state)
        link = engine.accept_link()
        sent = []
        link.attach(sent.append, lambda: None, "127.0.0.1", "127.0.0.1")
        x = state.nodes[NAME_X]

        def pong(bitmap, epoch=1):
            header = Header(type=m.PONG, sender=NAME_X.encode(),
                            current_epoch=3, config_epoch=epoch,
                            myslots=bitmap, port=7001, cport=17001)
            engine.link_data(link, m.encode(Message(header, PingBody())))

        pong(BITMAPS[1])
        seen = x.claim_seen
        self.assertIsNotNone(seen)          # equal claim remembered
        pong(BITMAPS[1])
        self.assertIs(x.claim_seen, seen)   # ...and reused, not rebuilt
        # Our view of X changes (an UPDATE from elsewhere, say): the
        # remembered claim is stale and X's claim applies again.
        state.del_slot(50)
        self.assertFalse(x.has_slot(50))
        pong(BITMAPS[1], epoch=1)
        self.assertTrue(x.has_slot(50))
        pong(BITMAPS[1], epoch=1)           # equal again: remembered anew
        self.assertTrue(x.claim_seen is not seen)
        self.assertEqual(x.claim_seen[2], x.slots_version)
        # A different claim is never taken for the remembered one.
        pong(BITMAPS[3], epoch=4)
        self.assertEqual(x.bitmap, BITMAPS[3])


class CronHeapTests(TestCase):
    """One peer: the order in which the cron visits nodes can't matter,
    so the heap of deadlines and the walk must give the very same
    frames, at the same times, through pings, PFAIL, FAIL and recovery."""

    def run_scenario(self, fast: bool):
        net = Net(1000)
        a = net.add(7001, range(0, 8192), seed=5)
        b = net.add(7002, range(8192, 16384), seed=6)
        for state in (a, b):
            state.fast_paths = fast
        net.meet_all()
        trace = []

        def record():
            trace.append([(s, d, m.encode(msg)) for s, d, msg in net.frames])
            del net.frames[:]
            trace.append([snapshot(state) for state in (a, b)])
        net.tick(3000)
        record()
        net.kill(7002)
        for _ in range(30):
            net.tick(100)
            record()
        net.revive(7002)
        for _ in range(30):
            net.tick(100)
            record()
        return trace, a, b

    def test_heap_and_walk_agree(self):
        fast, a, b = self.run_scenario(True)
        full, _, _ = self.run_scenario(False)
        self.assertEqual(len(fast), len(full))
        for i, (one, two) in enumerate(zip(fast, full)):
            self.assertEqual(one, two, f"step {i}")
        # And the scenario did go through failure and recovery.
        self.assertFalse(a.nodes[b.myself.name].flags & (NODE_PFAIL | NODE_FAIL))
        self.assertTrue(any(
            view[0]["nodes"][b.myself.name][0] & NODE_PFAIL
            for view in fast if isinstance(view, list) and view
            and isinstance(view[0], dict)))

    def test_heap_bounded(self):
        net = Net(1000)
        a = net.add(7001, range(0, 16384), seed=5)
        for port in range(7002, 7008):
            net.add(port, seed=port)
        net.meet_all()
        net.tick(5000)
        heap = engine_of(a)._heap
        self.assertLessEqual(len(heap), 4 * len(a.nodes) + 64)
        self.assertEqual(a.cron_wakeups, [])


class ReconnectThrottleTests(TestCase):
    def test_dead_node_attempts_are_throttled(self):
        clock = [START]
        state = make_state(7000, clock, cluster_node_timeout=4000)
        attempts = []
        engine = ClusterEngine(state)

        def connector(link):
            attempts.append(clock[0])
            raise OSError("connection refused")
        engine.connector = connector
        node = state.create_node(NAME_X, NODE_MASTER)
        node.ip, node.port, node.cport = "127.0.0.1", 7001, 17001
        state.add_node(node)
        for _ in range(100):            # 10 s of cron
            clock[0] += 100
            engine.cron()
        # Every cron would be 100 attempts; doubling the delay up to a
        # quarter of the node timeout (1 s) leaves 13 or so.
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        self.assertEqual(gaps[:5], [100, 200, 400, 800, 1000])
        self.assertEqual(max(gaps), 1000)
        self.assertLessEqual(len(attempts), 15)
        # A connection that comes up resets the back-off.
        engine.connector = lambda link: None
        clock[0] += 1000
        engine.cron()
        link = node.link
        self.assertIsNotNone(link)
        link.attach(lambda data: None, lambda: None)
        engine.link_connected(link)
        self.assertEqual((node.reconnect_delay, node.next_connect), (0, 0))


class BulkSlotClaimTests(TestCase):
    """update_slots_config_with takes the claimed slots nobody owns in one
    go (fast path: a joining node learns whole shards from one PONG); the
    result is the slot-by-slot one."""

    def outcome(self, fast):
        from rcluster.cluster.slotconfig import update_slots_config_with
        state = make_state(7000)
        state.fast_paths = fast
        me = state.myself
        for slot in range(0, 10):
            state.add_slot(me, slot)
        me.config_epoch = 1
        x = state.create_node(NAME_X, NODE_MASTER)
        y = state.create_node(NAME_Y, NODE_MASTER)
        r = state.create_node(NAME_Z, NODE_SLAVE)
        for node in (x, y, r):
            state.add_node(node)
        r.replicaof = y
        y.add_replica(r)
        x.config_epoch, y.config_epoch = 5, 3
        for slot in range(100, 200):
            state.add_slot(y, slot)
        state.not_claimed.update({120, 7000})
        state.importing[60] = y
        claim = m.slots_to_bitmap(list(range(50, 150)) + [5000, 5001])
        update_slots_config_with(state, x, 5, claim)
        owners = [n.name if n is not None else None for n in state.slots]
        return (owners, x.numslots, x.bitmap, y.numslots, y.bitmap,
                x.flags, sorted(state.not_claimed), state.slots_assigned,
                state.todo)

    def test_same_as_slot_by_slot(self):
        fast, full = self.outcome(True), self.outcome(False)
        self.assertEqual(fast, full)
        owners = fast[0]
        self.assertEqual(owners[50], NAME_X)        # was free
        self.assertEqual(owners[60], None)          # importing: untouched
        self.assertEqual(owners[120], NAME_X)       # older epoch: taken
        self.assertEqual(owners[5001], NAME_X)
        self.assertTrue(fast[5] & m.NODE_MIGRATE_TO)


class ThrottledNodeStillPingedTests(TestCase):
    """Redis opens a link to a disconnected node at every cron and pings
    on it while it connects: once the last pong is older than half the
    node timeout, the ping is claimed even if the connection fails.  Our
    reconnections are throttled, so a cron without a link claims it too:
    PFAIL comes when it would in Redis, not at the next attempt."""

    def run_dead_node(self, fast_paths):
        clock = [START]
        state = make_state(7000, clock, cluster_node_timeout=2000)
        state.fast_paths = fast_paths
        engine = ClusterEngine(state)
        failed = []

        def connector(link):            # connecting... then refused
            failed.append(link)
        engine.connector = connector
        node = state.create_node(NAME_X, NODE_MASTER)
        node.ip, node.port, node.cport = "127.0.0.1", 7001, 17001
        node.pong_received = node.data_received = START
        state.add_node(node)
        claimed = pfail = None
        for _ in range(40):
            clock[0] += 100
            engine.cron()
            while failed:
                link = failed.pop()
                if not link.closed:
                    engine.link_lost(link)
            if claimed is None and node.ping_sent:
                claimed = clock[0]
            if pfail is None and node.flags & NODE_PFAIL:
                pfail = clock[0]
        return claimed, pfail, node

    def test_claimed_after_half_the_timeout(self):
        for fast in (True, False):
            claimed, pfail, node = self.run_dead_node(fast)
            # Not while the pong is recent; at the first cron after half
            # the node timeout, although reconnections are backing off.
            self.assertEqual(claimed, START + 1100)
            self.assertGreater(node.reconnect_delay, 100)
            self.assertEqual(pfail, START + 3200)


class LazySaveTests(TestCase):
    """nodes.conf is fsync'd where Redis asks for FSYNC_CONFIG, and only
    written where Redis saves without it (handshakes, other nodes' flags)."""

    def engine(self):
        state = make_state(7000)
        saves = []

        class Recorder:
            def save(self, text, fsync=True):
                saves.append(fsync)
        return state, ClusterEngine(state, config_file=Recorder()), saves

    def test_flags(self):
        from rcluster.cluster.state import TODO_SAVE_CONFIG, TODO_SAVE_LAZY
        state, engine, saves = self.engine()
        state.todo |= TODO_SAVE_LAZY
        engine.before_sleep()
        state.todo |= TODO_SAVE_LAZY | TODO_SAVE_CONFIG
        engine.before_sleep()
        state.todo |= TODO_SAVE_CONFIG
        engine.before_sleep()
        engine.before_sleep()                   # nothing to do
        self.assertEqual(saves, [False, True, True])
        self.assertEqual(state.todo & (TODO_SAVE_CONFIG | TODO_SAVE_LAZY), 0)

    def test_command_saves(self):
        # A command's save is fsync'd unless it says otherwise (SETSLOT,
        # as Redis saves after it); that doesn't carry over to the next.
        state, engine, saves = self.engine()
        engine.done(fsync=False)
        engine.done()
        self.assertEqual(saves, [False, True])

    def test_which_events_fsync(self):
        from rcluster.cluster import receive
        from rcluster.cluster.state import TODO_SAVE_CONFIG, TODO_SAVE_LAZY
        state, engine, saves = self.engine()
        node = state.create_node(NAME_X, NODE_MASTER)
        state.add_node(node)
        engine.before_sleep()
        del saves[:]
        header = Header(type=m.PING, sender=NAME_X.encode(), config_epoch=7,
                        current_epoch=7)
        # A newer config epoch of the sender: Redis fsyncs.
        receive.follow_epochs(state, node, header, START)
        self.assertTrue(state.todo & TODO_SAVE_CONFIG)
        engine.before_sleep()
        # A FAIL about another node: Redis doesn't.
        other = state.create_node(NAME_Y, NODE_MASTER)
        state.add_node(other)
        receive.process_fail(state, header, m.FailBody(NAME_Y.encode()),
                             node, START)
        self.assertTrue(other.flags & NODE_FAIL)
        self.assertEqual(state.todo & TODO_SAVE_CONFIG, 0)
        self.assertTrue(state.todo & TODO_SAVE_LAZY)
        engine.before_sleep()
        self.assertEqual(saves, [True, False])


class DirectWriteTests(TestCase):
    """The bus (and the client replies: resp/protocol.py's write_through)
    writes straight to the socket only for a plain TCP transport: never
    under TLS, whose wrapper forwards attributes (such as the socket) to
    the socket transport below the encryption."""

    def test_only_plain_tcp(self):
        from twisted.internet import tcp
        from twisted.internet.testing import StringTransport
        from rcluster.resp.protocol import is_plain_tcp

        class Forwarding:           # like twisted's BufferingTLSTransport
            def __init__(self, below):
                self._below = below

            def __getattr__(self, name):
                return getattr(self._below, name)

        plain = tcp.Server.__new__(tcp.Server)
        self.assertTrue(is_plain_tcp(plain))
        self.assertFalse(is_plain_tcp(Forwarding(plain)))
        self.assertFalse(is_plain_tcp(StringTransport()))
        tls = tcp.Client.__new__(tcp.Client)
        tls.TLS = True
        self.assertFalse(is_plain_tcp(tls))
