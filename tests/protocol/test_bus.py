"""The bus transport driven through StringTransport and MemoryReactorClock,
fed with frames captured from a real redis-server 7.0.15 (tests/data/bus).

In those captures node A (5dc33bb2..., 127.0.0.1:26101, slots 0-8191,
epoch 1) talks to a fake node F (fa4efa4e..., 127.0.0.1:26109, bus port
36109), and B (d08a6633..., 127.0.0.1:26102) is A's other peer.  Here our
node plays F: its nodes.conf gives it F's name and address.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import TestCase

from rcluster.cluster import messages as m
from rcluster.cluster.messages import (NODE_FAIL, NODE_HANDSHAKE, NODE_MASTER,
                                       FrameDecoder)
from rcluster.cluster.service import ClusterService
from rcluster.config import Settings
from rcluster.server import Server
from tests.protocol.helpers import connect, exchange

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data", "bus")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME_F = "fa4e" * 10
NAME_A = "5dc33bb259b65da5c7dc61be3a08a07c8ea84962"
NAME_B = "d08a663364356be973d424ef62e511549f755d8e"
START = 1_795_315_400.0   # seconds, just before the captures were made


def golden(name) -> bytes:
    with open(os.path.join(DATA, name + ".hex")) as fh:
        return bytes.fromhex("".join(line for line in fh
                                     if not line.startswith("#")))


def frames(transport) -> list:
    """The bus messages written on a StringTransport (and clears it)."""
    decoder = FrameDecoder()
    decoder.feed(transport.value())
    transport.clear()
    return list(decoder)


class BusTestCase(TestCase):
    nodes_conf = (f"{NAME_F} 127.0.0.1:26109@36109 myself,master - 0 0 0 "
                  "connected\nvars currentEpoch 0 lastVoteEpoch 0\n")
    directives = ()

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        path = os.path.join(self.dir, "nodes.conf")
        with open(path, "w") as fh:
            fh.write(self.nodes_conf)
        settings = Settings()
        for name, value in (("cluster-enabled", "yes"), ("port", "26109"),
                            ("bind", "127.0.0.1"), ("cluster-config-file", path),
                            ("cluster-node-timeout", "1000"),
                            *self.directives):
            settings.apply(name, [value])
        self.reactor = MemoryReactorClock()
        self.reactor.advance(START)
        self.server = Server(settings, self.reactor)
        self.service = ClusterService(self.server, settings, self.reactor)
        self.addCleanup(self.service.config_file.close)
        self.service.privilegedStartService()
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.state = self.service.state

    def inbound(self, peer_port=50000):
        """A peer connects to our bus port: (protocol, transport)."""
        port, factory = self.reactor.tcpServers[0][:2]
        self.assertEqual(port, 36109)
        peer = IPv4Address("TCP", "127.0.0.1", peer_port)
        protocol = factory.buildProtocol(peer)
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 36109), peerAddress=peer)
        protocol.makeConnection(transport)
        return protocol, transport

    def outbound(self, index=-1):
        """Complete the last connection the cron started: (protocol,
        transport, (host, port))."""
        host, port, factory = self.reactor.tcpClients[index][:3]
        address = IPv4Address("TCP", host, port)
        protocol = factory.buildProtocol(address)
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 40000),
            peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport, (host, port)

    def tick(self, seconds=0.1):
        for _ in range(round(seconds / 0.1)):
            self.reactor.advance(0.1)

    def join_a(self):
        """A MEETs us and we complete the handshake, as in the captures."""
        proto, transport = self.inbound()
        proto.dataReceived(golden("meet"))
        self.tick()
        out_proto, out_transport, _ = self.outbound()
        out_transport.clear()
        out_proto.dataReceived(golden("pong"))
        proto.dataReceived(golden("ping"))
        transport.clear()
        return proto, transport, out_proto, out_transport


class HandshakeWithRedisTests(BusTestCase):
    def test_meet_from_redis_is_answered(self):
        proto, transport = self.inbound()
        proto.dataReceived(golden("meet"))
        (pong,) = frames(transport)
        h = pong.header
        self.assertEqual((h.type, h.sender, h.port, h.cport, h.flags),
                         (m.PONG, NAME_F.encode(), 26109, 36109,
                          m.NODE_MYSELF | NODE_MASTER))
        # A is a handshake node until it answers our own PING.
        (node,) = [n for n in self.state.nodes.values() if n.name != NAME_F]
        self.assertEqual((node.flags, node.ip, node.port, node.cport),
                         (NODE_HANDSHAKE, "127.0.0.1", 26101, 36101))
        # B, gossiped by a sender we don't know yet, is not trusted.
        self.assertNotIn(NAME_B, self.state.nodes)
        self.assertEqual(self.state.stats_received[m.MEET], 1)
        self.assertEqual(self.state.stats_sent[m.PONG], 1)

    def test_handshake_completes_with_redis(self):
        proto, transport = self.inbound()
        proto.dataReceived(golden("meet"))
        self.tick()
        self.assertEqual(self.reactor.tcpClients[-1][:2], ("127.0.0.1", 36101))
        out_proto, out_transport, _ = self.outbound()
        (ping,) = frames(out_transport)
        self.assertEqual(ping.header.type, m.PING)
        out_proto.dataReceived(golden("pong"))
        # Renamed to A's real name on its first PONG.
        node = self.state.nodes[NAME_A]
        self.assertEqual(node.flags, NODE_MASTER)
        self.assertEqual(len(self.state.nodes), 2)
        # A's next PING carries its slots, epoch and gossip about B.
        proto.dataReceived(golden("ping"))
        self.assertEqual((node.config_epoch, node.numslots), (1, 8192))
        self.assertIs(self.state.slot_owner(8191), node)
        self.assertEqual(self.state.current_epoch, 2)
        b = self.state.nodes[NAME_B]
        self.assertEqual((b.flags, b.ip, b.port, b.cport),
                         (NODE_MASTER, "127.0.0.1", 26102, 36102))
        self.assertIs(node.inbound_link, proto.link)
        self.assertEqual([f.header.type for f in frames(transport)],
                         [m.PONG, m.PONG])

    def test_hostname_extension_from_redis(self):
        proto, transport, _, _ = self.join_a()
        proto.dataReceived(golden("ping_hostname"))
        self.assertEqual(self.state.nodes[NAME_A].hostname, "node-a.example")
        line = [ln for ln in self.cluster_nodes() if ln.startswith(NAME_A)][0]
        self.assertTrue(line.startswith(
            f"{NAME_A} 127.0.0.1:26101@36101,node-a.example master - "))

    def cluster_nodes(self):
        from rcluster.cluster.nodesconf import describe_nodes
        return describe_nodes(self.state).splitlines()

    def test_fail_from_redis(self):
        proto, transport, _, _ = self.join_a()
        proto.dataReceived(golden("fail"))
        self.assertEqual(self.state.nodes[NAME_B].flags, NODE_MASTER | NODE_FAIL)

    def test_update_from_redis(self):
        proto, transport, _, _ = self.join_a()
        a, b = self.state.nodes[NAME_A], self.state.nodes[NAME_B]
        # The captured UPDATE is about its sender, A, whose header already
        # told us its epoch: nothing new.
        self.state.add_slot(self.state.myself, 8192)
        proto.dataReceived(golden("update"))
        self.assertEqual((a.config_epoch, a.numslots), (1, 8192))
        # An UPDATE about B with a greater epoch rebinds B's slots, ours too.
        update = m.decode(golden("update"))
        update.body = m.UpdateBody(3, NAME_B.encode(),
                                   m.slots_to_bitmap([0, 1, 8192]))
        proto.dataReceived(m.encode(update))
        self.assertEqual(b.config_epoch, 3)
        self.assertEqual(b.slots, [0, 1, 8192])
        self.assertEqual((a.numslots, self.state.myself.numslots), (8190, 0))
        # Left without slots, we follow the node that took them.
        self.assertIs(self.state.myself.replicaof, b)

    def test_stale_claim_gets_an_update(self):
        # B claims A's slot 0 under an older epoch: we tell B about A, on
        # our own link to B.
        proto, transport, _, _ = self.join_a()
        self.tick()
        _, b_transport, address = self.outbound()
        self.assertEqual(address, ("127.0.0.1", 36102))
        b_transport.clear()
        frame = m.decode(golden("ping").replace(NAME_A.encode(),
                                                NAME_B.encode()))
        frame.header.config_epoch = 0
        frame.header.myslots = 1
        frame.header.port, frame.header.cport = 26102, 36102
        proto2, transport2 = self.inbound(50001)
        proto2.dataReceived(m.encode(frame))
        self.assertEqual([f.header.type for f in frames(transport2)], [m.PONG])
        (update,) = frames(b_transport)
        self.assertEqual(update.header.type, m.UPDATE)
        self.assertEqual((update.body.nodename, update.body.config_epoch,
                          m.format_slots(update.body.slots)),
                         (NAME_A.encode(), 1, "0-8191"))
        self.assertIs(self.state.slot_owner(0), self.state.nodes[NAME_A])


class PublishTests(BusTestCase):
    def test_publish_from_redis_reaches_our_subscribers(self):
        proto, transport, _, _ = self.join_a()
        client, client_transport = connect(self.server)
        exchange(client, client_transport, b"SUBSCRIBE news\r\n")
        client_transport.clear()
        proto.dataReceived(golden("publish"))
        self.assertEqual(client_transport.value(),
                         b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n"
                         b"$11\r\nhello world\r\n")

    def test_publishshard_from_redis(self):
        proto, transport, _, _ = self.join_a()
        client, client_transport = connect(self.server)
        # (SSUBSCRIBE itself needs the router, which is not installed here.)
        self.server.pubsub.subscribe(client.client, b"bar", shard=True)
        proto.dataReceived(golden("publishshard"))
        self.assertEqual(client_transport.value(),
                         b"*3\r\n$8\r\nsmessage\r\n$3\r\nbar\r\n"
                         b"$10\r\nsharded hi\r\n")

    def test_our_publish_goes_on_the_bus(self):
        proto, transport, out_proto, out_transport = self.join_a()
        self.server.pubsub.publish(b"news", b"hello world")
        # Sent from outside a bus event: at the end of the reactor turn.
        self.assertEqual(out_transport.value(), b"")
        self.reactor.advance(0)
        (msg,) = frames(out_transport)
        self.assertEqual((msg.header.type, msg.body.channel, msg.body.message),
                         (m.PUBLISH, b"news", b"hello world"))
        self.assertEqual(transport.value(), b"")   # not on inbound links


class BadInputTests(BusTestCase):
    def test_garbage_drops_the_link(self):
        proto, transport = self.inbound()
        proto.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertTrue(proto.link.closed)

    def test_oversized_frame_drops_the_link(self):
        proto, transport = self.inbound()
        proto.dataReceived(b"RCmb" + (2**31).to_bytes(4, "big"))
        self.assertTrue(transport.disconnecting)

    def test_bad_version_drops_the_link(self):
        proto, transport = self.inbound()
        frame = bytearray(golden("meet"))
        frame[8:10] = (2).to_bytes(2, "big")
        proto.dataReceived(bytes(frame))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.state.nodes), 1)

    def test_byte_by_byte_is_fine(self):
        proto, transport = self.inbound()
        for byte in golden("meet"):
            proto.dataReceived(bytes([byte]))
        self.assertFalse(transport.disconnecting)
        self.assertEqual([f.header.type for f in frames(transport)], [m.PONG])

    def test_known_node_link_error_keeps_the_node(self):
        proto, transport, out_proto, out_transport = self.join_a()
        out_proto.dataReceived(b"\0" * 8)
        self.assertTrue(out_transport.disconnecting)
        node = self.state.nodes[NAME_A]
        self.assertIsNone(node.link)
        clients = len(self.reactor.tcpClients)
        self.tick()
        self.assertIn(("127.0.0.1", 36101),
                      [c[:2] for c in self.reactor.tcpClients[clients:]])


class LinkTests(BusTestCase):
    def test_connection_refused_is_retried(self):
        self.state.start_handshake("127.0.0.1", 26101, 36101)
        self.tick()
        host, port, factory = self.reactor.tcpClients[-1][:3]
        from twisted.internet.error import ConnectionRefusedError
        from twisted.python.failure import Failure
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        (node,) = [n for n in self.state.nodes.values() if n.in_handshake]
        self.assertIsNone(node.link)
        self.tick()
        self.assertEqual(len(self.reactor.tcpClients), 2)
        # With nobody answering, the handshake node expires (1 s minimum).
        self.tick(1.0)
        self.assertEqual(list(self.state.nodes), [NAME_F])

    def test_first_frame_of_a_meet_node_is_meet(self):
        self.state.start_handshake("127.0.0.1", 26101, 36101)
        self.tick()
        _, transport, address = self.outbound()
        self.assertEqual(address, ("127.0.0.1", 36101))
        (meet,) = frames(transport)
        self.assertEqual(meet.header.type, m.MEET)

    def test_stop_closes_links(self):
        proto, transport, out_proto, out_transport = self.join_a()
        self.service.stopService()
        self.assertTrue(transport.disconnecting)
        self.assertTrue(out_transport.disconnecting)
        self.assertEqual(self.state.links(), [])

    def test_connection_lost_frees_the_link(self):
        proto, transport, out_proto, out_transport = self.join_a()
        node = self.state.nodes[NAME_A]
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure
        proto.connectionLost(Failure(ConnectionDone()))
        out_proto.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(node.link)
        self.assertIsNone(node.inbound_link)

    def test_cron_pings_peers(self):
        proto, transport, out_proto, out_transport = self.join_a()
        self.tick(1.0)
        sent = [f.header.type for f in frames(out_transport)]
        self.assertIn(m.PING, sent)
        self.assertGreater(self.state.iteration, 9)


class AnnounceTests(BusTestCase):
    directives = (("cluster-announce-ip", "10.1.2.3"),
                  ("cluster-announce-port", "7000"),
                  ("cluster-announce-bus-port", "17000"),
                  ("cluster-announce-hostname", "f.example"))

    def test_announced_address_in_our_frames(self):
        proto, transport = self.inbound()
        proto.dataReceived(golden("meet"))
        (pong,) = frames(transport)
        h = pong.header
        self.assertEqual((h.myip, h.port, h.cport), ("10.1.2.3", 7000, 17000))
        self.assertEqual(pong.body.hostname, "f.example")
        # The announced IP is ours; a MEET does not override it.
        self.assertEqual(self.state.myself.ip, "10.1.2.3")


class TLSBusTests(BusTestCase):
    """With tls-cluster yes both directions of the bus use TLS."""

    @classmethod
    def setUpClass(cls):
        if shutil.which("openssl") is None:
            raise __import__("unittest").SkipTest("openssl not installed")
        cls.certs = tempfile.mkdtemp(prefix="rcluster-bus-tls-")
        subprocess.run(["sh", os.path.join(ROOT, "etc", "tls", "gen-certs.sh"),
                        cls.certs], check=True, capture_output=True, timeout=60)
        cls.directives = (
            ("tls-port", "26109"), ("port", "0"), ("tls-cluster", "yes"),
            ("tls-cert-file", os.path.join(cls.certs, "node.crt")),
            ("tls-key-file", os.path.join(cls.certs, "node.key")),
            ("tls-ca-cert-file", os.path.join(cls.certs, "ca.crt")))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def test_listen_and_connect_with_tls(self):
        self.assertEqual(self.reactor.tcpServers, [])
        port, factory, context = self.reactor.sslServers[0][:3]
        self.assertEqual(port, 36109)
        self.assertIsNotNone(context)
        self.state.start_handshake("127.0.0.1", 26101, 36101)
        self.tick()
        host, port = self.reactor.sslClients[-1][:2]
        self.assertEqual((host, port), ("127.0.0.1", 36101))
        # The TLS port is the one we announce; pport the plaintext one.
        self.assertEqual(self.state.announced_ports(), (26109, 0, 36109))
