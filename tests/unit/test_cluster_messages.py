"""Tests for rcluster.cluster.messages, the cluster-bus wire format."""

import dataclasses
import os
import random
import struct

from twisted.trial.unittest import TestCase

from rcluster.cluster import messages as m
from rcluster.cluster.messages import (
    BusProtocolError, EmptyBody, Extension, FailBody, ForgottenNode,
    FrameDecoder, Gossip, Header, Message, ModuleBody, PingBody, PublishBody,
    UpdateBody, decode, encode)

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data", "bus")

NAME_A = b"5dc33bb259b65da5c7dc61be3a08a07c8ea84962"  # in the golden frames
NAME_B = b"d08a663364356be973d424ef62e511549f755d8e"
NAME_C = b"aa56a50947947867679c86b614d2516f47fa6915"
NAME_F = b"fa4e" * 10  # the fake node of the capture script
SLOTS_A = m.slots_to_bitmap(range(0, 8192))
SLOTS_F = m.slots_to_bitmap(range(8192, 16384))

N1 = b"1" * 40
N2 = b"2" * 40


def golden(name):
    with open(os.path.join(DATA, name + ".hex")) as f:
        return bytes.fromhex("".join(line for line in f
                                     if not line.startswith("#")))


GOLDEN = sorted(f[:-4] for f in os.listdir(DATA) if f.endswith(".hex"))


def header(msg_type, **kw):
    kw.setdefault("sender", N1)
    return Header(type=msg_type, **kw)


def sample_messages():
    """One message of every type, with non-default values everywhere."""
    full = dict(current_epoch=7, config_epoch=5, offset=123456789,
                myslots=m.slots_to_bitmap([0, 1, 5000, 16383]),
                slaveof=N2, myip="10.0.0.1", port=7000, pport=7100,
                cport=17000, flags=m.NODE_SLAVE | m.NODE_MYSELF,
                state=m.STATE_FAIL, mflags=m.MSGFLAG_PAUSED)
    g1 = Gossip(N2, ping_sent=1700000000, pong_received=1700000001,
                ip="fe80::1", port=7001, cport=17001,
                flags=m.NODE_MASTER | m.NODE_PFAIL, pport=7101)
    g2 = Gossip(b"3" * 40, ip="127.0.0.1", port=7002, cport=17002)
    return [
        Message(header(m.PING, **full), PingBody([g1, g2], hostname="h1")),
        Message(header(m.PONG), PingBody(
            [g2], hostname="node.example.com", human_nodename="alice",
            forgotten_nodes=[ForgottenNode(b"4" * 40, 60),
                             ForgottenNode(b"5" * 40, 2**64 - 1)],
            shard_id=b"6" * 40,
            unknown_extensions=[Extension(99, b"abcdefgh" * 2)])),
        Message(header(m.MEET), PingBody()),
        Message(header(m.FAIL, **full), FailBody(N2)),
        Message(header(m.PUBLISH), PublishBody(b"chan", b"x" * 1000)),
        Message(header(m.PUBLISHSHARD), PublishBody(b"", b"")),
        Message(header(m.FAILOVER_AUTH_REQUEST, mflags=m.MSGFLAG_FORCEACK),
                EmptyBody()),
        Message(header(m.FAILOVER_AUTH_ACK), EmptyBody()),
        Message(header(m.MFSTART, slaveof=N2, flags=m.NODE_SLAVE),
                EmptyBody()),
        Message(header(m.UPDATE), UpdateBody(9, N2, SLOTS_F)),
        Message(header(m.MODULE), ModuleBody(0x0123456789ABCDEF, 200,
                                             b"\0payload\xff")),
        Message(header(42), None),
    ]


def patch(frame, offset, fmt, value):
    """frame with a big-endian field overwritten."""
    out = bytearray(frame)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


class ConstantsTests(TestCase):
    def test_sizes_match_cluster_h(self):
        self.assertEqual(m.HEADER_SIZE, 2256)   # CLUSTERMSG_MIN_LEN
        self.assertEqual(m.GOSSIP_SIZE, 104)    # clusterMsgDataGossip
        self.assertEqual(m.SLOTS, 16384)
        self.assertEqual(m.NAMELEN, 40)
        self.assertEqual(m.NULL_NAME, b"\0" * 40)

    def test_values(self):
        self.assertEqual((m.PING, m.PONG, m.MEET, m.FAIL, m.PUBLISH,
                          m.FAILOVER_AUTH_REQUEST, m.FAILOVER_AUTH_ACK,
                          m.UPDATE, m.MFSTART, m.MODULE, m.PUBLISHSHARD),
                         tuple(range(11)))
        self.assertEqual([m.NODE_MASTER, m.NODE_SLAVE, m.NODE_PFAIL,
                          m.NODE_FAIL, m.NODE_MYSELF, m.NODE_HANDSHAKE,
                          m.NODE_NOADDR, m.NODE_MEET, m.NODE_MIGRATE_TO,
                          m.NODE_NOFAILOVER], [1 << i for i in range(10)])
        self.assertEqual((m.MSGFLAG_PAUSED, m.MSGFLAG_FORCEACK,
                          m.MSGFLAG_EXT_DATA), (1, 2, 4))
        self.assertEqual((m.EXT_HOSTNAME, m.EXT_HUMAN_NODENAME,
                          m.EXT_FORGOTTEN_NODE, m.EXT_SHARDID), (0, 1, 2, 3))

    def test_type_names(self):
        self.assertEqual(
            [m.message_type_name(t) for t in range(11)],
            ["ping", "pong", "meet", "fail", "publish", "auth-req",
             "auth-ack", "update", "mfstart", "module", "publishshard"])
        self.assertEqual(m.message_type_name(11), "unknown")
        self.assertEqual(m.message_type_name(-1), "unknown")

    def test_slot_helpers(self):
        bitmap = m.slots_to_bitmap([0, 7, 8, 16383])
        self.assertEqual(bitmap, 1 | 1 << 7 | 1 << 8 | 1 << 16383)
        self.assertEqual(m.bitmap_to_slots(bitmap), [0, 7, 8, 16383])
        self.assertEqual(m.bitmap_to_slots(0), [])
        self.assertEqual(m.format_slots(m.slots_to_bitmap(
            [0, 1, 2, 5, 10, 11])), "0-2 5 10-11")
        self.assertRaises(ValueError, m.slots_to_bitmap, [16384])
        self.assertRaises(ValueError, m.slots_to_bitmap, [-1])

    def test_repr_of_full_bitmap(self):
        # A 16384-bit int cannot go through str() by default; the repr
        # shows ranges instead.
        h = Header(myslots=(1 << 16384) - 1)
        self.assertIn("myslots=<0-16383>", repr(h))
        self.assertIn("slots=<8192-16383>", repr(UpdateBody(1, N1, SLOTS_F)))


class RoundTripTests(TestCase):
    def test_every_type(self):
        for msg in sample_messages():
            frame = encode(msg)
            out = decode(frame)
            self.assertEqual(out.body, msg.body)
            self.assertEqual(out.header.totlen, len(frame))
            expected = dataclasses.replace(
                msg.header, totlen=len(frame), count=out.header.count,
                extensions=out.header.extensions, mflags=out.header.mflags)
            self.assertEqual(out.header, expected)
            self.assertEqual(encode(out), frame)

    def test_computed_counts(self):
        ping, pong = sample_messages()[:2]
        h = decode(encode(ping)).header
        self.assertEqual((h.count, h.extensions), (2, 1))
        self.assertEqual(h.mflags, m.MSGFLAG_PAUSED | m.MSGFLAG_EXT_DATA)
        h = decode(encode(pong)).header
        self.assertEqual((h.count, h.extensions), (1, 6))
        # Caller-supplied count/extensions/totlen are ignored.
        ping.header.count, ping.header.extensions = 99, 99
        ping.header.totlen = 5
        self.assertEqual(decode(encode(ping)).header.count, 2)

    def test_ext_data_flag_follows_extensions(self):
        msg = Message(header(m.PING, mflags=m.MSGFLAG_EXT_DATA), PingBody())
        self.assertEqual(decode(encode(msg)).header.mflags, 0)
        msg = Message(header(m.PING), PingBody(shard_id=N2))
        self.assertEqual(decode(encode(msg)).header.mflags,
                         m.MSGFLAG_EXT_DATA)

    def test_empty_hostname_is_sent(self):
        # None means "no extension"; "" is an extension with an empty name.
        frame = encode(Message(header(m.PING), PingBody(hostname="")))
        self.assertEqual(len(frame), m.HEADER_SIZE + 16)
        self.assertEqual(decode(frame).body.hostname, "")
        frame = encode(Message(header(m.PING), PingBody(hostname=None)))
        self.assertEqual(len(frame), m.HEADER_SIZE)

    def test_defaults(self):
        msg = decode(encode(Message(Header(type=m.MFSTART, sender=N1),
                                    EmptyBody())))
        h = msg.header
        self.assertEqual((h.sig, h.ver, h.flags, h.state, h.slaveof, h.myip),
                         (b"RCmb", 1, m.NODE_MASTER | m.NODE_MYSELF,
                          m.STATE_OK, None, ""))

    def test_non_ascii_text_round_trips(self):
        msg = Message(header(m.PING), PingBody(hostname="h\udcff\u00e9"))
        self.assertEqual(decode(encode(msg)).body.hostname, "h\udcff\u00e9")


class LayoutTests(TestCase):
    """Byte positions, straight from cluster.h's static_asserts."""

    def setUp(self):
        self.frame = encode(Message(Header(
            type=m.PING, sender=N1, current_epoch=0x1112131415161718,
            config_epoch=0x2122232425262728, offset=0x3132333435363738,
            myslots=1 | 1 << 9 | 1 << 16383, slaveof=N2, myip="1.2.3.4",
            port=0x4142, pport=0x5152, cport=0x6162, flags=0x7172, state=1,
            mflags=0x030201), PingBody(hostname="abcdefg")))

    def field(self, offset, size):
        return int.from_bytes(self.frame[offset:offset + size], "big")

    def test_header_offsets(self):
        f = self.frame
        self.assertEqual(f[0:4], b"RCmb")
        self.assertEqual(self.field(4, 4), len(f))
        self.assertEqual(self.field(8, 2), 1)
        self.assertEqual(self.field(10, 2), 0x4142)
        self.assertEqual(self.field(12, 2), m.PING)
        self.assertEqual(self.field(14, 2), 0)
        self.assertEqual(self.field(16, 8), 0x1112131415161718)
        self.assertEqual(self.field(24, 8), 0x2122232425262728)
        self.assertEqual(self.field(32, 8), 0x3132333435363738)
        self.assertEqual(f[40:80], N1)
        # Slot j is bit j % 8 of byte j // 8.
        self.assertEqual(f[80:83], b"\x01\x02\x00")
        self.assertEqual(f[80 + 2047], 0x80)
        self.assertEqual(f[2128:2168], N2)
        self.assertEqual(f[2168:2214], b"1.2.3.4".ljust(46, b"\0"))
        self.assertEqual(self.field(2214, 2), 1)
        self.assertEqual(f[2216:2246], b"\0" * 30)
        self.assertEqual(self.field(2246, 2), 0x5152)
        self.assertEqual(self.field(2248, 2), 0x6162)
        self.assertEqual(self.field(2250, 2), 0x7172)
        self.assertEqual(f[2252], 1)
        # mflags[0] gets EXT_DATA added (the hostname extension is there).
        self.assertEqual(f[2253:2256], b"\x05\x02\x03")

    def test_hostname_extension(self):
        # length (incl. 8-byte ext header), type, unused, then the name,
        # NUL-terminated and zero-padded to 8 bytes.
        self.assertEqual(self.frame[2256:],
                         b"\0\0\0\x10\0\0\0\0abcdefg\0")
        frame = encode(Message(header(m.PING), PingBody(hostname="abcdefgh")))
        self.assertEqual(frame[2256:],
                         b"\0\0\0\x18\0\0\0\0abcdefgh" + b"\0" * 8)

    def test_72_extensions(self):
        frame = encode(Message(header(m.PING), PingBody(
            forgotten_nodes=[ForgottenNode(N2, 0x0102)], shard_id=N1)))
        exts = frame[m.HEADER_SIZE:]
        self.assertEqual(exts[:8], b"\0\0\0\x38\0\x02\0\0")
        self.assertEqual(exts[8:48], N2)
        self.assertEqual(exts[48:56], b"\0" * 6 + b"\x01\x02")
        self.assertEqual(exts[56:64], b"\0\0\0\x30\0\x03\0\0")
        self.assertEqual(exts[64:], N1)

    def test_gossip(self):
        g = Gossip(N2, ping_sent=0x01020304, pong_received=0x05060708,
                   ip="::1", port=0x1112, cport=0x1314, flags=0x1516,
                   pport=0x1718)
        frame = encode(Message(header(m.PONG), PingBody([g])))
        self.assertEqual(frame[14:16], b"\0\x01")
        self.assertEqual(frame[2256:], N2 + bytes.fromhex("0102030405060708")
                         + b"::1".ljust(46, b"\0")
                         + bytes.fromhex("11121314151617180000"))

    def test_bodies(self):
        frame = encode(Message(header(m.PUBLISH), PublishBody(b"ab", b"xyz")))
        self.assertEqual(frame[2256:], b"\0\0\0\x02\0\0\0\x03abxyz")
        self.assertEqual(len(frame), 2256 + 8 + 5)
        frame = encode(Message(header(m.UPDATE), UpdateBody(5, N2, 1 << 8)))
        self.assertEqual(len(frame), 2256 + 2096)
        self.assertEqual(frame[2256:2304], b"\0" * 7 + b"\x05" + N2)
        self.assertEqual(frame[2304:2306], b"\0\x01")
        frame = encode(Message(header(m.MODULE),
                               ModuleBody(0x0102, 7, b"pay")))
        # module_id is copied raw by Redis: little-endian on x86.
        self.assertEqual(frame[2256:], b"\x02\x01" + b"\0" * 6
                         + b"\0\0\0\x03" + b"\x07" + b"pay")
        frame = encode(Message(header(m.FAIL), FailBody(N2)))
        self.assertEqual(frame[2256:], N2)


class EncodeErrorTests(TestCase):
    def test_body_must_match_type(self):
        self.assertRaises(ValueError, encode,
                          Message(header(m.PING), FailBody(N2)))
        self.assertRaises(ValueError, encode, Message(header(m.FAIL), None))
        self.assertRaises(ValueError, encode,
                          Message(header(42), EmptyBody()))

    def test_bad_values(self):
        self.assertRaises(ValueError, encode,
                          Message(header(m.FAIL), FailBody(b"short")))
        self.assertRaises(ValueError, encode,
                          Message(header(m.MEET, sender=b"x"), PingBody()))
        self.assertRaises(ValueError, encode, Message(
            header(m.MEET, myip="1" * 46), PingBody()))
        self.assertRaises(ValueError, encode, Message(
            header(m.MEET), PingBody(hostname="a\0b")))
        self.assertRaises(ValueError, encode, Message(
            header(m.MEET), PingBody([Gossip(N2, ip="x" * 46)])))

    def test_gossip_checked_with_a_valid_entry_before(self):
        # Gossip addresses and names are remembered once checked: a bad
        # one is still refused after good ones went out.
        good = Message(header(m.PING), PingBody([Gossip(N2, ip="10.0.0.1")]))
        self.assertEqual(encode(good), encode(good))
        self.assertRaises(ValueError, encode, Message(
            header(m.PING), PingBody([Gossip(N2, ip="10.0.0.1"),
                                      Gossip(N2, ip="10.0\0.2")])))
        self.assertRaises(ValueError, encode, Message(
            header(m.PING), PingBody([Gossip(N2[:39], ip="10.0.0.1")])))


class GoldenTests(TestCase):
    """Frames sent by a real redis-server 7.0.15 (see the .hex headers)."""

    def test_all_present(self):
        self.assertEqual(GOLDEN, [
            "auth_ack", "auth_request", "fail", "meet", "mfstart", "ping",
            "ping_announce_ip", "ping_hostname", "pong", "publish",
            "publishshard", "update"])

    def test_reencode_is_byte_identical(self):
        for name in GOLDEN:
            frame = golden(name)
            self.assertEqual(encode(decode(frame)), frame, name)

    def check_a(self, h, msg_type, **kw):
        """Header fields common to frames sent by node A."""
        expected = dict(type=msg_type, sender=NAME_A, config_epoch=1,
                        offset=0, myslots=SLOTS_A, slaveof=None, port=26101,
                        pport=0, cport=36101, flags=m.NODE_MASTER | m.NODE_MYSELF,
                        state=m.STATE_OK, mflags=0, count=0, extensions=0,
                        sig=b"RCmb", ver=1, myip="127.0.0.1")
        expected.update(kw)
        for key, value in expected.items():
            self.assertEqual(getattr(h, key), value, key)

    def test_meet(self):
        msg = decode(golden("meet"))
        self.check_a(msg.header, m.MEET, current_epoch=2, state=m.STATE_FAIL,
                     myip="", count=1, totlen=2360)
        self.assertEqual(msg.body, PingBody([Gossip(
            NAME_B, ping_sent=0, pong_received=1795315413, ip="127.0.0.1",
            port=26102, cport=36102, flags=m.NODE_MASTER, pport=0)]))

    def test_ping(self):
        msg = decode(golden("ping"))
        self.check_a(msg.header, m.PING, current_epoch=2, state=m.STATE_FAIL,
                     myip="", count=1, totlen=2360)
        self.assertEqual(msg.body.gossip[0].nodename, NAME_B)
        self.assertIsNone(msg.body.hostname)

    def test_ping_hostname(self):
        msg = decode(golden("ping_hostname"))
        self.check_a(msg.header, m.PING, current_epoch=2, myip="", count=1,
                     extensions=1, mflags=m.MSGFLAG_EXT_DATA, totlen=2384)
        self.assertEqual(msg.body, PingBody([Gossip(
            NAME_F, ping_sent=1795315415, pong_received=1795315414,
            ip="127.0.0.1", port=26109, cport=36109, flags=m.NODE_MASTER)],
            hostname="node-a.example"))

    def test_ping_announce_ip(self):
        msg = decode(golden("ping_announce_ip"))
        self.check_a(msg.header, m.PING, current_epoch=2, count=1,
                     extensions=1, mflags=m.MSGFLAG_EXT_DATA)
        self.assertEqual(msg.body.hostname, "node-a.example")

    def test_pong(self):
        msg = decode(golden("pong"))
        self.check_a(msg.header, m.PONG, current_epoch=2, count=1,
                     extensions=1, mflags=m.MSGFLAG_EXT_DATA)
        self.assertEqual(msg.body.gossip[0].nodename, NAME_F)
        self.assertEqual(msg.body.hostname, "node-a.example")

    def test_publish(self):
        msg = decode(golden("publish"))
        self.check_a(msg.header, m.PUBLISH, current_epoch=2, totlen=2279)
        self.assertEqual(msg.body, PublishBody(b"news", b"hello world"))

    def test_publishshard(self):
        msg = decode(golden("publishshard"))
        # A has a replica (F) now, so it is a migration target.
        self.check_a(msg.header, m.PUBLISHSHARD, current_epoch=2,
                     flags=m.NODE_MASTER | m.NODE_MYSELF | m.NODE_MIGRATE_TO)
        self.assertEqual(msg.body, PublishBody(b"bar", b"sharded hi"))

    def test_update(self):
        msg = decode(golden("update"))
        self.check_a(msg.header, m.UPDATE, current_epoch=2, totlen=4352)
        self.assertEqual(msg.body, UpdateBody(1, NAME_A, SLOTS_A))

    def test_auth_ack(self):
        msg = decode(golden("auth_ack"))
        self.check_a(msg.header, m.FAILOVER_AUTH_ACK, current_epoch=3,
                     flags=m.NODE_MASTER | m.NODE_MYSELF | m.NODE_MIGRATE_TO,
                     totlen=2256)
        self.assertEqual(msg.body, EmptyBody())

    def test_fail(self):
        msg = decode(golden("fail"))
        self.check_a(msg.header, m.FAIL, current_epoch=3, state=m.STATE_FAIL,
                     totlen=2296)
        self.assertEqual(msg.body, FailBody(NAME_B))

    def check_c(self, h, msg_type, **kw):
        expected = dict(type=msg_type, sender=NAME_C, config_epoch=10,
                        myslots=SLOTS_F, slaveof=NAME_F, myip="", port=26103,
                        cport=36103, flags=m.NODE_SLAVE | m.NODE_MYSELF,
                        state=m.STATE_OK, totlen=2256)
        expected.update(kw)
        for key, value in expected.items():
            self.assertEqual(getattr(h, key), value, key)

    def test_mfstart(self):
        msg = decode(golden("mfstart"))
        self.check_c(msg.header, m.MFSTART, current_epoch=10, mflags=0)
        self.assertEqual(msg.body, EmptyBody())

    def test_auth_request(self):
        msg = decode(golden("auth_request"))
        # The election bumped currentEpoch; manual failover sets FORCEACK.
        self.check_c(msg.header, m.FAILOVER_AUTH_REQUEST, current_epoch=11,
                     mflags=m.MSGFLAG_FORCEACK)

    def test_stream_of_all_frames_byte_by_byte(self):
        frames = [golden(name) for name in GOLDEN]
        decoder = FrameDecoder()
        out = []
        for byte in b"".join(frames):
            decoder.feed(bytes([byte]))
            out.extend(decoder)
        self.assertEqual([encode(msg) for msg in out], frames)
        self.assertEqual(decoder.buffered, 0)


class FrameDecoderTests(TestCase):
    def test_every_split_point(self):
        frame = golden("ping_hostname")
        expected = decode(frame)
        for cut in range(len(frame) + 1):
            decoder = FrameDecoder()
            decoder.feed(frame[:cut])
            got = list(decoder)
            decoder.feed(frame[cut:])
            got += list(decoder)
            self.assertEqual(got, [expected], cut)

    def test_many_frames_one_feed(self):
        msgs = sample_messages()
        decoder = FrameDecoder()
        decoder.feed(b"".join(encode(msg) for msg in msgs) + b"RCmb")
        got = list(decoder)
        self.assertEqual([encode(x) for x in got], [encode(x) for x in msgs])
        self.assertIsNone(decoder.next_message())
        self.assertEqual(decoder.buffered, 4)

    def test_unknown_type_is_not_an_error(self):
        frame = encode(Message(header(m.PING), PingBody(hostname="x")))
        frame = patch(frame, 12, ">H", 11)  # a type from the future
        msg = decode(frame)
        self.assertEqual((msg.header.type, msg.body), (11, None))
        self.assertEqual(msg.header.extensions, 1)

    def test_unknown_extension_is_kept(self):
        body = PingBody(unknown_extensions=[Extension(1000, b"12345678")],
                        hostname="h")
        msg = decode(encode(Message(header(m.PONG), body)))
        self.assertEqual(msg.body.unknown_extensions,
                         [Extension(1000, b"12345678")])
        self.assertEqual(msg.body.hostname, "h")

    def test_extensions_ignored_without_ext_data_flag(self):
        # Like Redis: without the flag, totlen must be header + gossip, and
        # the extensions counter is not looked at.
        frame = encode(Message(header(m.PING), PingBody()))
        msg = decode(patch(frame, 2214, ">H", 3))
        self.assertEqual(msg.body, PingBody())
        frame = encode(Message(header(m.PING), PingBody(hostname="h")))
        self.assertRaises(BusProtocolError, decode,
                          patch(frame, 2253, ">B", 0))

    def test_max_frame_checked_on_the_prefix(self):
        frame = golden("update")  # 4352 bytes
        decoder = FrameDecoder(max_frame=4000)
        err = self.assertRaises(BusProtocolError, decoder.feed, frame[:8])
        self.assertTrue(err.framing)
        self.assertIn("4352", err.reason)
        self.assertEqual(decoder.buffered, 0)
        decoder = FrameDecoder(max_frame=4352)
        decoder.feed(frame)
        self.assertEqual(len(list(decoder)), 1)

    def test_default_max_frame(self):
        decoder = FrameDecoder()
        decoder.feed(b"RCmb" + (m.DEFAULT_MAX_FRAME).to_bytes(4, "big"))
        self.assertIsNone(decoder.next_message())
        decoder = FrameDecoder()
        self.assertRaises(BusProtocolError, decoder.feed, b"RCmb\xff\xff\xff\xff")


class MalformedTests(TestCase):
    def assertRejected(self, frame, *words):
        err = self.assertRaises(BusProtocolError, decode, frame)
        for word in words:
            self.assertIn(word, err.reason)
        # And through the stream decoder, which skips the bad frame
        # (framing=False) when its length was sound.
        decoder = FrameDecoder()
        decoder.feed(frame)
        err2 = self.assertRaises(BusProtocolError, list, decoder)
        self.assertEqual(err2.reason, err.reason)
        return err

    def ping(self, **kw):
        return encode(Message(header(m.PING), PingBody(**kw)))

    def test_bad_signature(self):
        decoder = FrameDecoder()
        err = self.assertRaises(BusProtocolError, decoder.feed, b"RCmc\0\0\x08\xd0")
        self.assertTrue(err.framing)
        self.assertIn("signature", err.reason)
        # The link is dead: later calls keep failing.
        self.assertRaises(BusProtocolError, decoder.feed, self.ping())
        self.assertRaises(BusProtocolError, decoder.next_message)
        self.assertRaises(BusProtocolError, decode,
                          b"XCmb" + self.ping()[4:])

    def test_bad_signature_detected_before_totlen(self):
        decoder = FrameDecoder()
        decoder.feed(b"GET ")  # fewer than 8 bytes: nothing to say yet
        self.assertRaises(BusProtocolError, decoder.feed, b"/ HTTP/1.1\r\n")

    def test_totlen_below_header(self):
        decoder = FrameDecoder()
        err = self.assertRaises(BusProtocolError, decoder.feed,
                                b"RCmb" + (2255).to_bytes(4, "big"))
        self.assertTrue(err.framing)
        self.assertRaises(BusProtocolError, decode, self.ping()[:2255])

    def test_totlen_does_not_match_frame(self):
        frame = self.ping()
        self.assertRaises(BusProtocolError, decode, frame + b"\0")
        self.assertRaises(BusProtocolError, decode,
                          patch(frame, 4, ">I", len(frame) - 1))

    def test_bad_version(self):
        frame = patch(self.ping(), 8, ">H", 2)
        err = self.assertRejected(frame, "version 2")
        self.assertFalse(err.framing)
        # The stream is still in sync: the next frame decodes.
        decoder = FrameDecoder()
        decoder.feed(frame + self.ping())
        self.assertRaises(BusProtocolError, decoder.next_message)
        self.assertEqual(decoder.next_message().header.type, m.PING)

    def test_count_lies(self):
        frame = encode(Message(header(m.PING), PingBody([Gossip(N2)])))
        self.assertRejected(patch(frame, 14, ">H", 2), "gossip")
        self.assertRejected(patch(frame, 14, ">H", 0xFFFF), "gossip")
        # Fewer entries claimed than sent: trailing bytes.
        self.assertRejected(patch(frame, 14, ">H", 0), "expected length 2256")

    def test_truncated_gossip(self):
        frame = encode(Message(header(m.MEET), PingBody([Gossip(N2)] * 2)))
        short = patch(frame[:-1], 4, ">I", len(frame) - 1)
        self.assertRejected(short, "gossip")

    def test_extension_runs_past_end(self):
        frame = self.ping(hostname="abcdefg")  # one 16-byte extension
        self.assertRejected(patch(frame, 2256, ">I", 24), "past")
        self.assertRejected(patch(frame, 2256, ">I", 0xFFFFFFF8), "past")

    def test_extension_padding(self):
        frame = self.ping(hostname="abcdefg")
        self.assertRejected(patch(frame, 2256, ">I", 12), "padded")
        self.assertRejected(patch(frame, 2256, ">I", 0), "padded")

    def test_extension_count_lies(self):
        frame = self.ping(hostname="abcdefg")
        self.assertRejected(patch(frame, 2214, ">H", 2), "truncated")
        self.assertRejected(patch(frame, 2214, ">H", 0), "expected length")

    def test_short_72_extensions(self):
        frame = self.ping(shard_id=N2)  # 8 + 40 bytes
        frame = patch(frame, 2256, ">I", 40)[:-8]
        frame = patch(frame, 4, ">I", len(frame))
        self.assertRejected(frame, "shard-id")
        frame = self.ping(unknown_extensions=[Extension(m.EXT_FORGOTTEN_NODE,
                                                        b"x" * 40)])
        self.assertRejected(frame, "forgotten-node")

    def test_fixed_size_bodies(self):
        for msg in (Message(header(m.FAIL), FailBody(N2)),
                    Message(header(m.UPDATE), UpdateBody(1, N2, 1)),
                    Message(header(m.MFSTART), EmptyBody()),
                    Message(header(m.FAILOVER_AUTH_ACK), EmptyBody()),
                    Message(header(m.FAILOVER_AUTH_REQUEST), EmptyBody())):
            frame = encode(msg)
            longer = patch(frame + b"\0" * 8, 4, ">I", len(frame) + 8)
            self.assertRejected(longer, "expected length")
            if len(frame) > m.HEADER_SIZE:
                shorter = patch(frame[:-1], 4, ">I", len(frame) - 1)
                self.assertRejected(shorter, "expected length")

    def test_publish_lengths_lie(self):
        frame = encode(Message(header(m.PUBLISH), PublishBody(b"ch", b"msg")))
        self.assertRejected(patch(frame, 2256, ">I", 3), "expected length")
        self.assertRejected(patch(frame, 2260, ">I", 0xFFFFFFFF),
                            "expected length")
        # Lengths that would wrap around a 32-bit sum must not pass.
        self.assertRejected(patch(patch(frame, 2256, ">I", 0x80000000),
                                  2260, ">I", 0x80000005), "expected length")
        bare = patch(frame[:2260], 4, ">I", 2260)
        self.assertRejected(bare, "too short")

    def test_module_length_lies(self):
        frame = encode(Message(header(m.MODULE), ModuleBody(1, 2, b"abc")))
        self.assertRejected(patch(frame, 2264, ">I", 4), "expected length")
        bare = patch(frame[:2265], 4, ">I", 2265)
        self.assertRejected(bare, "too short")


class FuzzTests(TestCase):
    """Whatever comes in, only BusProtocolError or valid messages come out,
    and whatever is decoded can be encoded again."""

    def run_stream(self, data, chunk):
        decoder = FrameDecoder(max_frame=1 << 20)
        try:
            for i in range(0, len(data), chunk):
                decoder.feed(data[i:i + chunk])
                while True:
                    try:
                        msg = decoder.next_message()
                    except BusProtocolError as e:
                        if e.framing:
                            raise
                        continue
                    if msg is None:
                        break
                    self.assertIsInstance(msg, Message)
                    encode(msg)
        except BusProtocolError as e:
            self.assertTrue(e.reason)

    def test_random_bytes(self):
        rnd = random.Random(1234)
        for _ in range(300):
            data = rnd.randbytes(rnd.randrange(0, 5000))
            if rnd.random() < 0.5:  # a valid prefix, random rest
                data = b"RCmb" + rnd.randrange(2256, 5000).to_bytes(4, "big") + data
            self.run_stream(data, rnd.randrange(1, 3000))

    def test_truncations(self):
        for msg in sample_messages():
            frame = encode(msg)
            for cut in range(0, len(frame), 7):
                self.assertRaises(BusProtocolError, decode, frame[:cut])
                self.run_stream(frame[:cut], 100)

    def test_bit_flips(self):
        rnd = random.Random(99)
        frames = [encode(msg) for msg in sample_messages()]
        frames += [golden(name) for name in GOLDEN]
        for _ in range(3000):
            frame = bytearray(rnd.choice(frames))
            for _ in range(rnd.randrange(1, 4)):
                # Favour the interesting places: header and first body bytes.
                pos = rnd.choice([rnd.randrange(0, 16),
                                  rnd.randrange(2200, min(len(frame), 2400)),
                                  rnd.randrange(len(frame))])
                frame[pos] ^= 1 << rnd.randrange(8)
            frame = bytes(frame)
            try:
                msg = decode(frame)
            except BusProtocolError:
                pass
            else:
                self.assertIsInstance(msg, Message)
                encode(msg)
            self.run_stream(frame + frames[0], rnd.randrange(1, 5000))
