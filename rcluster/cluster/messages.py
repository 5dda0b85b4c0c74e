"""Redis 7.0 cluster-bus wire format (``clusterMsg``), sans-IO.

This module turns bytes into :class:`Message` objects and back; it knows
nothing about sockets, time or cluster state.  The layout is the one of Redis
7.0.15 ``src/cluster.h`` (bus protocol version 1), plus the ping extensions
that 7.2 peers send, so mixed clusters can be decoded too.

A frame is a fixed 2256-byte header followed by a type-specific body.  All
integers are big-endian (network order), except the MODULE message's module
id, which Redis copies raw from host memory (see :class:`ModuleBody`).

Field names are snake_case versions of the C ones:

    C (clusterMsg)          Python (Header)      notes
    ----------------------  -------------------  ------------------------------
    sig[4]                  sig                  always b"RCmb"
    totlen                  totlen               computed by encode()
    ver                     ver                  always 1
    port                    port                 TLS port when the bus is TLS
    type                    type                 PING ... PUBLISHSHARD
    count                   count                gossip entries; computed
    currentEpoch            current_epoch
    configEpoch             config_epoch         of the sender's master if slave
    offset                  offset               replication offset
    sender[40]              sender               40 hex ascii bytes
    myslots[2048]           myslots              int bitmap, bit j = slot j
    slaveof[40]             slaveof              None when all zero
    myip[46]                myip                 '' when not announced
    extensions              extensions           computed by encode()
    notused1[30]            -                    written as zeros
    pport                   pport                plaintext port when TLS
    cport                   cport                cluster bus port
    flags                   flags                NODE_* bits of the sender
    state                   state                STATE_OK / STATE_FAIL
    mflags[3]               mflags               int, byte 0 = bits 0-7

    clusterMsgDataGossip    Gossip               nodename, ping_sent,
                                                 pong_received (seconds), ip,
                                                 port, cport, flags, pport
    clusterMsgDataFail      FailBody             nodename
    clusterMsgDataPublish   PublishBody          channel, message
    clusterMsgDataUpdate    UpdateBody           configEpoch -> config_epoch,
                                                 nodename, slots
    clusterMsgModule        ModuleBody           module_id, type, payload
    clusterMsgPingExt       PingBody fields      see _decode_extension()
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields
from typing import Iterator, Optional, Union

# --- constants ---------------------------------------------------------------

SIG = b"RCmb"
PROTO_VER = 1
SLOTS = 16384
NAMELEN = 40
NULL_NAME = b"\0" * NAMELEN
IP_LEN = 46  # NET_IP_STR_LEN: room for an IPv6 text address plus NUL

# Message types.
PING = 0
PONG = 1
MEET = 2
FAIL = 3
PUBLISH = 4
FAILOVER_AUTH_REQUEST = 5
FAILOVER_AUTH_ACK = 6
UPDATE = 7
MFSTART = 8
MODULE = 9
PUBLISHSHARD = 10
TYPE_COUNT = 11

# Names used by CLUSTER INFO's cluster_stats_messages_<name>_sent/received.
MESSAGE_TYPE_NAMES = (
    "ping", "pong", "meet", "fail", "publish", "auth-req", "auth-ack",
    "update", "mfstart", "module", "publishshard",
)

# Node flags (header.flags, gossip.flags).
NODE_MASTER = 1
NODE_SLAVE = 2
NODE_PFAIL = 4
NODE_FAIL = 8
NODE_MYSELF = 16
NODE_HANDSHAKE = 32
NODE_NOADDR = 64
NODE_MEET = 128
NODE_MIGRATE_TO = 256
NODE_NOFAILOVER = 512

# Message flags (header.mflags; all of them live in mflags[0]).
MSGFLAG_PAUSED = 1 << 0    # master paused for manual failover
MSGFLAG_FORCEACK = 1 << 1  # vote for AUTH_REQUEST even if the master is up
MSGFLAG_EXT_DATA = 1 << 2  # ping extensions follow the gossip section

# Cluster state byte, from the sender's point of view.
STATE_OK = 0
STATE_FAIL = 1

# Ping extension types.  7.0 knows only HOSTNAME; the others come from 7.2.
EXT_HOSTNAME = 0
EXT_HUMAN_NODENAME = 1
EXT_FORGOTTEN_NODE = 2
EXT_SHARDID = 3

# Largest frame the decoder buffers.  Redis has no limit of its own; the
# largest legitimate frames are PUBLISH/MODULE messages, bounded in practice
# by the client query buffer (proto-max-bulk-len, 512 MiB) - far beyond what
# a sane bus link should have to hold.
DEFAULT_MAX_FRAME = 64 * 1024 * 1024

# --- layouts -----------------------------------------------------------------

# The header: offsets are fixed by static_asserts in cluster.h.
_HEADER = struct.Struct(
    ">4sI"       # sig, totlen            (the 8 bytes read first)
    "HHHH"       # ver, port, type, count
    "QQQ"        # currentEpoch, configEpoch, offset
    "40s2048s"   # sender, myslots
    "40s46s"     # slaveof, myip
    "H30x"       # extensions, notused1
    "HHHB3s"     # pport, cport, flags, state, mflags
)
HEADER_SIZE = _HEADER.size  # 2256 == CLUSTERMSG_MIN_LEN
_PREFIX = struct.Struct(">4sI")
_GOSSIP = struct.Struct(">40sII46sHHHH2x")  # trailing notused1
GOSSIP_SIZE = _GOSSIP.size  # 104
_EXT_HEADER = struct.Struct(">IHH")  # length (incl. this header), type, unused
_FORGOTTEN = struct.Struct(">40sQ")  # name, ttl in seconds
_FAIL = struct.Struct(">40s")
_PUBLISH = struct.Struct(">II")  # channel_len, message_len; then the bytes
_UPDATE = struct.Struct(">Q40s2048s")
# module_id is 8 raw bytes (host order of the sender), then len and type;
# the C struct's 3-byte bulk_data placeholder is where the payload starts.
_MODULE = struct.Struct(">8sIB")

assert HEADER_SIZE == 2256 and GOSSIP_SIZE == 104 and _UPDATE.size == 2096

_BITMAP_BYTES = SLOTS // 8


def message_type_name(msg_type: int) -> str:
    """The stats name Redis uses for a message type ("unknown" if none)."""
    if 0 <= msg_type < TYPE_COUNT:
        return MESSAGE_TYPE_NAMES[msg_type]
    return "unknown"


def slots_to_bitmap(slots) -> int:
    """An int bitmap with the given slot numbers set."""
    buf = bytearray(_BITMAP_BYTES)
    for slot in slots:
        if not 0 <= slot < SLOTS:
            raise ValueError(f"slot {slot} out of range")
        buf[slot >> 3] |= 1 << (slot & 7)
    return int.from_bytes(buf, "little")


def bitmap_to_slots(bitmap: int) -> list:
    """The slot numbers set in an int bitmap, ascending."""
    return [i for i, bit in enumerate(reversed(bin(bitmap)[2:])) if bit == "1"]


def format_slots(bitmap: int) -> str:
    """'0-8191 10000' - for logs and reprs (a 16384-bit int has too many
    digits for str())."""
    ranges, slots = [], bitmap_to_slots(bitmap)
    for slot in slots:
        if ranges and ranges[-1][1] == slot - 1:
            ranges[-1][1] = slot
        else:
            ranges.append([slot, slot])
    return " ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges)


def _repr_with_slots(*bitmap_fields):
    """A dataclass __repr__ showing slot bitmaps as ranges."""
    def __repr__(self):
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            shown = (f"<{format_slots(value)}>" if f.name in bitmap_fields
                     else repr(value))
            parts.append(f"{f.name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"
    return __repr__


class BusProtocolError(Exception):
    """A frame (or the byte stream) violates the bus protocol.

    ``framing`` is True when the stream itself cannot be followed any more
    (bad signature, impossible or oversized totlen): Redis drops the link.
    It is False when one complete frame was malformed; the decoder has
    skipped it and can go on (Redis logs and ignores such a frame).
    """

    def __init__(self, reason: str, framing: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.framing = framing


# --- data --------------------------------------------------------------------

@dataclass(slots=True)
class Header:
    """The fixed header of every frame; defaults describe a fresh master."""
    type: int = PING
    sender: bytes = NULL_NAME
    current_epoch: int = 0
    config_epoch: int = 0
    offset: int = 0
    myslots: int = 0
    slaveof: Optional[bytes] = None
    myip: str = ""
    port: int = 0
    pport: int = 0
    cport: int = 0
    flags: int = NODE_MASTER | NODE_MYSELF  # Redis sends myself->flags
    state: int = STATE_OK
    mflags: int = 0
    # Filled in by decode(); encode() computes its own.
    totlen: int = 0
    count: int = 0
    extensions: int = 0
    sig: bytes = SIG
    ver: int = PROTO_VER
    # decode(): the 2048 bitmap bytes as received (receive.py compares
    # them with the last claim seen from the sender); not part of equality.
    myslots_raw: Optional[bytes] = field(default=None, compare=False,
                                         repr=False)

    __repr__ = _repr_with_slots("myslots")


@dataclass(slots=True)
class Gossip:
    """What the sender knows about one other node."""
    nodename: bytes
    ping_sent: int = 0      # seconds (Redis sends ms // 1000), 0 = none
    pong_received: int = 0  # seconds
    ip: str = ""
    port: int = 0
    cport: int = 0
    flags: int = 0
    pport: int = 0


@dataclass(slots=True)
class ForgottenNode:
    """7.2 extension: a node removed with CLUSTER FORGET, and for how long."""
    name: bytes
    ttl: int  # seconds


@dataclass(slots=True)
class Extension:
    """A ping extension of a type we do not interpret, kept verbatim."""
    type: int
    data: bytes  # the payload after the 8-byte extension header


@dataclass(slots=True)
class PingBody:
    """PING, PONG and MEET: gossip entries and ping extensions.

    ``hostname`` (and 7.2's ``human_nodename``) is None when the extension is
    absent - which Redis reads as "no announced hostname".
    """
    gossip: list = field(default_factory=list)
    hostname: Optional[str] = None
    unknown_extensions: list = field(default_factory=list)
    # Extensions sent by 7.2 peers; encoded only when set.
    human_nodename: Optional[str] = None
    forgotten_nodes: list = field(default_factory=list)
    shard_id: Optional[bytes] = None


@dataclass(slots=True)
class FailBody:
    nodename: bytes


@dataclass(slots=True)
class PublishBody:
    """PUBLISH and PUBLISHSHARD."""
    channel: bytes
    message: bytes


@dataclass(slots=True)
class UpdateBody:
    config_epoch: int
    nodename: bytes
    slots: int

    __repr__ = _repr_with_slots("slots")


@dataclass(slots=True)
class ModuleBody:
    """A module message.  ``module_id`` travels in the sender's host byte
    order (Redis memcpy's it); it is read little-endian here, which is what
    x86/ARM Redis puts on the wire."""
    module_id: int
    type: int
    payload: bytes


@dataclass(slots=True)
class EmptyBody:
    """FAILOVER_AUTH_REQUEST, FAILOVER_AUTH_ACK and MFSTART carry no body."""


Body = Union[PingBody, FailBody, PublishBody, UpdateBody, ModuleBody,
             EmptyBody, None]


@dataclass(slots=True)
class Message:
    header: Header
    body: Body = None  # None only for unknown message types


_BODY_CLASS = {
    PING: PingBody, PONG: PingBody, MEET: PingBody,
    FAIL: FailBody,
    PUBLISH: PublishBody, PUBLISHSHARD: PublishBody,
    FAILOVER_AUTH_REQUEST: EmptyBody, FAILOVER_AUTH_ACK: EmptyBody,
    MFSTART: EmptyBody,
    UPDATE: UpdateBody,
    MODULE: ModuleBody,
}

# --- helpers -----------------------------------------------------------------


def _cstr(raw: bytes) -> str:
    """A NUL-terminated text field; never fails on odd bytes."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


_IP_CACHE: dict = {}     # raw address field -> text (a gossip section
_IP_CACHE_MAX = 4096     # names the same few addresses again and again)


def _ip(raw: bytes) -> str:
    """An address field; like Redis, the 46th byte is always a terminator."""
    text = _IP_CACHE.get(raw)
    if text is None:
        text = _cstr(raw[:IP_LEN - 1])
        if len(_IP_CACHE) >= _IP_CACHE_MAX:
            _IP_CACHE.clear()
        _IP_CACHE[raw] = text
    return text


def _text(value: str, what: str, room: Optional[int] = None) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise ValueError(f"{what} contains a NUL byte")
    if room is not None and len(raw) >= room:
        raise ValueError(f"{what} {value!r} longer than {room - 1} bytes")
    return raw


def _name(value: bytes, what: str) -> bytes:
    if len(value) != NAMELEN:
        raise ValueError(f"{what} must be {NAMELEN} bytes, got {value!r}")
    return value


def _bitmap(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


def _align8(n: int) -> int:
    return (n + 7) & ~7


# --- encoding ----------------------------------------------------------------


def _extension(ext_type: int, payload: bytes) -> bytes:
    padded = payload.ljust(_align8(len(payload)), b"\0")
    return _EXT_HEADER.pack(_EXT_HEADER.size + len(padded), ext_type, 0) + padded


def _encode_ping(body: PingBody, mflags: int):
    exts = []
    if body.hostname is not None:
        exts.append(_extension(EXT_HOSTNAME,
                               _text(body.hostname, "hostname") + b"\0"))
    if body.human_nodename is not None:
        exts.append(_extension(EXT_HUMAN_NODENAME,
                               _text(body.human_nodename, "human_nodename")
                               + b"\0"))
    for node in body.forgotten_nodes:
        exts.append(_extension(EXT_FORGOTTEN_NODE, _FORGOTTEN.pack(
            _name(node.name, "forgotten node name"), node.ttl)))
    if body.shard_id is not None:
        exts.append(_extension(EXT_SHARDID, _name(body.shard_id, "shard_id")))
    for ext in body.unknown_extensions:
        exts.append(_extension(ext.type, ext.data))
    # Redis sets EXT_DATA exactly when it appends extensions; receivers only
    # look at extensions when the flag is there.
    mflags &= ~MSGFLAG_EXT_DATA
    if exts:
        mflags |= MSGFLAG_EXT_DATA
    pack, ip_of = _GOSSIP.pack, _GOSSIP_IPS.get
    payload = b"".join(
        [pack(g.nodename if len(g.nodename) == NAMELEN
              else _name(g.nodename, "gossip nodename"),
              g.ping_sent, g.pong_received, ip_of(g.ip) or _gossip_ip(g.ip),
              g.port, g.cport, g.flags, g.pport)
         for g in body.gossip] + exts)
    return payload, len(body.gossip), len(exts), mflags


_GOSSIP_IPS: dict = {}   # address -> its checked bytes (same few, again)


def _gossip_ip(ip: str) -> bytes:
    raw = _text(ip, "gossip ip", IP_LEN)
    if len(_GOSSIP_IPS) >= _IP_CACHE_MAX:
        _GOSSIP_IPS.clear()
    _GOSSIP_IPS[ip] = raw
    return raw


def encode(message: Message) -> bytes:
    """One whole frame for ``message``.

    totlen, count and extensions are computed here (the values in the
    header are ignored), and so is the EXT_DATA bit of PING/PONG/MEET.
    Unused bytes are zero.  Programming errors (a body that does not match
    the type, out-of-range values) raise ValueError / struct.error.
    """
    h = message.header
    payload, count, extensions, mflags = _encode_body(message)
    return _encode_header(h, len(payload), count, extensions, mflags) + payload


def _encode_header(h: Header, payload_len: int, count: int, extensions: int,
                   mflags: int) -> bytes:
    slaveof = NULL_NAME if h.slaveof is None else _name(h.slaveof, "slaveof")
    return _HEADER.pack(
        h.sig, HEADER_SIZE + payload_len, h.ver, h.port, h.type, count,
        h.current_epoch, h.config_epoch, h.offset,
        _name(h.sender, "sender"), h.myslots.to_bytes(_BITMAP_BYTES, "little"),
        slaveof, _text(h.myip, "myip", IP_LEN), extensions,
        h.pport, h.cport, h.flags, h.state, mflags.to_bytes(3, "little"))


# The header as encode() writes it, with the configuration-dependent
# middle (sender, slots, slaveof, myip) and tail (pport ... state) as
# already-encoded byte strings (FrameEncoder).
_PATCHED = struct.Struct(">4sIHHHHQQQ2174sH37s3s")
_MIDDLE = slice(40, 2214)       # sender, myslots, slaveof, myip
_TAIL = slice(2216, 2253)       # notused1, pport, cport, flags, state
assert _PATCHED.size == HEADER_SIZE


class FrameEncoder:
    """encode() with the header kept as an encoded template.

    A node's headers differ from one frame to the next only by type,
    totlen, count, extensions, mflags and the replication offset while
    its configuration (epochs, slots, role, address, flags, state) stays
    the same: the encoded template (above all the 2 KB of sender, slot
    bitmap, slaveof and address) is rebuilt when one of those changes, and
    otherwise reused with the variable fields packed around it.  The
    frames are byte for byte those of encode()
    (tests/protocol/test_bus_fastpaths.py checks it)."""

    __slots__ = ("_key", "_middle", "_tail", "rebuilds", "patched")

    def __init__(self):
        self._key = None
        self._middle = self._tail = b""
        self.rebuilds = 0
        self.patched = 0

    def encode(self, message: Message) -> bytes:
        h = message.header
        payload, count, extensions, mflags = _encode_body(message)
        key = (h.sender, h.myslots, h.slaveof, h.myip, h.pport, h.cport,
               h.flags, h.state)
        if key != self._key:
            # Validates as encode() does.
            template = _encode_header(h, 0, 0, 0, 0)
            self._middle, self._tail = template[_MIDDLE], template[_TAIL]
            self._key = key
            self.rebuilds += 1
        else:
            self.patched += 1
        return _PATCHED.pack(
            h.sig, HEADER_SIZE + len(payload), h.ver, h.port, h.type, count,
            h.current_epoch, h.config_epoch, h.offset, self._middle,
            extensions, self._tail, mflags.to_bytes(3, "little")) + payload


def _encode_body(message: Message):
    """(payload, count, extensions, mflags) of a message's body."""
    h, body = message.header, message.body
    expected = _BODY_CLASS.get(h.type)
    if expected is None:
        if body is not None:
            raise ValueError(f"message type {h.type} is unknown; body must be None")
    elif not isinstance(body, expected):
        raise ValueError(f"{message_type_name(h.type)} needs a "
                         f"{expected.__name__}, got {type(body).__name__}")

    count = extensions = 0
    mflags = h.mflags
    if isinstance(body, PingBody):
        payload, count, extensions, mflags = _encode_ping(body, mflags)
    elif isinstance(body, FailBody):
        payload = _FAIL.pack(_name(body.nodename, "fail nodename"))
    elif isinstance(body, PublishBody):
        payload = (_PUBLISH.pack(len(body.channel), len(body.message))
                   + body.channel + body.message)
    elif isinstance(body, UpdateBody):
        payload = _UPDATE.pack(body.config_epoch,
                               _name(body.nodename, "update nodename"),
                               body.slots.to_bytes(_BITMAP_BYTES, "little"))
    elif isinstance(body, ModuleBody):
        payload = (_MODULE.pack(body.module_id.to_bytes(8, "little"),
                                len(body.payload), body.type)
                   + body.payload)
    else:  # EmptyBody, or an unknown type
        payload = b""
    return payload, count, extensions, mflags


# --- decoding ----------------------------------------------------------------


def _decode_extension(body: PingBody, ext_type: int, data: bytes, what: str):
    if ext_type == EXT_HOSTNAME:
        body.hostname = _cstr(data)  # the last one wins, as in Redis
    elif ext_type == EXT_HUMAN_NODENAME:
        body.human_nodename = _cstr(data)
    elif ext_type == EXT_FORGOTTEN_NODE:
        if len(data) < _FORGOTTEN.size:
            raise BusProtocolError(f"{what}: forgotten-node extension of "
                                   f"{len(data)} bytes is too short")
        body.forgotten_nodes.append(ForgottenNode(*_FORGOTTEN.unpack_from(data)))
    elif ext_type == EXT_SHARDID:
        if len(data) < NAMELEN:
            raise BusProtocolError(f"{what}: shard-id extension of "
                                   f"{len(data)} bytes is too short")
        body.shard_id = data[:NAMELEN]
    else:  # a newer peer's extension: skip it, keep it for the curious
        body.unknown_extensions.append(Extension(ext_type, data))


def _decode_ping(h: Header, frame: bytes) -> PingBody:
    pos = HEADER_SIZE + h.count * GOSSIP_SIZE
    if pos > h.totlen:
        raise BusProtocolError(f"{message_type_name(h.type)}: {h.count} "
                               f"gossip entries need {pos} bytes but the "
                               f"frame has {h.totlen}")
    body = PingBody()
    if pos > HEADER_SIZE:
        ip_of = _IP_CACHE.get
        body.gossip = [
            Gossip(name, ping, pong, ip_of(ip) or _ip(ip), port, cport,
                   flags, pport)
            for name, ping, pong, ip, port, cport, flags, pport
            in _GOSSIP.iter_unpack(frame[HEADER_SIZE:pos])]
    # Redis only walks the extensions when EXT_DATA says they are there.
    if h.mflags & MSGFLAG_EXT_DATA:
        what = message_type_name(h.type)
        for _ in range(h.extensions):
            if h.totlen - pos < _EXT_HEADER.size:
                raise BusProtocolError(f"{what}: extension header truncated at "
                                       f"byte {pos} of {h.totlen}")
            length, ext_type, _ = _EXT_HEADER.unpack_from(frame, pos)
            if length % 8 or length < _EXT_HEADER.size:
                raise BusProtocolError(f"{what}: extension length {length} is "
                                       f"not padded to 8 bytes")
            if length > h.totlen - pos:
                raise BusProtocolError(f"{what}: extension of {length} bytes at "
                                       f"byte {pos} runs past totlen {h.totlen}")
            _decode_extension(body, ext_type,
                              frame[pos + _EXT_HEADER.size:pos + length], what)
            pos += length
    if pos != h.totlen:
        raise BusProtocolError(f"{message_type_name(h.type)} packet of length "
                               f"{h.totlen} but expected length {pos}")
    return body


def _need(h: Header, size: int, what: str):
    if h.totlen < size:
        raise BusProtocolError(f"{what} packet of length {h.totlen} is too "
                               f"short for its body ({size} bytes)")


def _exact(h: Header, size: int):
    if h.totlen != size:
        raise BusProtocolError(f"{message_type_name(h.type)} packet of length "
                               f"{h.totlen} but expected length {size}")


def _decode_body(h: Header, frame: bytes) -> Body:
    t = h.type
    if t in (PING, PONG, MEET):
        return _decode_ping(h, frame)
    if t == FAIL:
        _exact(h, HEADER_SIZE + _FAIL.size)
        return FailBody(*_FAIL.unpack_from(frame, HEADER_SIZE))
    if t in (PUBLISH, PUBLISHSHARD):
        start = HEADER_SIZE + _PUBLISH.size
        _need(h, start, message_type_name(t))
        clen, mlen = _PUBLISH.unpack_from(frame, HEADER_SIZE)
        _exact(h, start + clen + mlen)
        return PublishBody(frame[start:start + clen],
                           frame[start + clen:start + clen + mlen])
    if t in (FAILOVER_AUTH_REQUEST, FAILOVER_AUTH_ACK, MFSTART):
        _exact(h, HEADER_SIZE)
        return EmptyBody()
    if t == UPDATE:
        _exact(h, HEADER_SIZE + _UPDATE.size)
        epoch, name, slots = _UPDATE.unpack_from(frame, HEADER_SIZE)
        return UpdateBody(epoch, name, _bitmap(slots))
    if t == MODULE:
        start = HEADER_SIZE + _MODULE.size
        _need(h, start, "module")
        module_id, plen, mtype = _MODULE.unpack_from(frame, HEADER_SIZE)
        _exact(h, start + plen)
        return ModuleBody(int.from_bytes(module_id, "little"), mtype,
                          frame[start:])
    return None  # unknown type: Redis accepts any length and ignores it


def decode(frame: bytes, last_slots=None) -> Message:
    """Decode exactly one whole frame; raises BusProtocolError if invalid.

    ``last_slots`` is a FrameDecoder's memory of the last slot bitmap it
    decoded, a list [raw bytes, int]: when this frame's 2048 bitmap bytes
    are the same, that int is reused instead of converting them again
    (and the list is updated otherwise)."""
    frame = bytes(frame)
    if len(frame) < HEADER_SIZE:
        raise BusProtocolError(f"frame of {len(frame)} bytes is shorter than "
                               f"the {HEADER_SIZE}-byte header")
    (sig, totlen, ver, port, msg_type, count, current_epoch, config_epoch,
     offset, sender, myslots, slaveof, myip, extensions, pport, cport, flags,
     state, mflags) = _HEADER.unpack_from(frame)
    if sig != SIG:
        raise BusProtocolError(f"bad signature {sig!r}")
    if totlen != len(frame):
        raise BusProtocolError(f"totlen {totlen} does not match the frame "
                               f"size {len(frame)}")
    if ver != PROTO_VER:
        raise BusProtocolError(f"unsupported bus protocol version {ver}")
    if last_slots is None:
        bitmap = _bitmap(myslots)
    elif last_slots[0] == myslots:          # unchanged: compared as bytes
        bitmap = last_slots[1]
    else:
        bitmap = _bitmap(myslots)
        last_slots[0], last_slots[1] = myslots, bitmap
    ip = _IP_CACHE.get(myip)
    if ip is None:
        ip = _ip(myip)
    # Positional (Header's field order): a frame per message, so it counts.
    header = Header(
        msg_type, sender, current_epoch, config_epoch, offset, bitmap,
        None if slaveof == NULL_NAME else slaveof, ip, port, pport,
        cport, flags, state, int.from_bytes(mflags, "little"), totlen,
        count, extensions, sig, ver, myslots)
    if msg_type <= MEET:            # PING, PONG, MEET: nearly every frame
        return Message(header, _decode_ping(header, frame))
    return Message(header, _decode_body(header, frame))


class FrameDecoder:
    """Incremental decoder for one bus link.

    ``feed()`` bytes as they arrive, then iterate (or call
    ``next_message()`` until it returns None) for complete messages.  Like
    Redis, the 8-byte prefix (signature, totlen) is checked as soon as it is
    there, so an oversized or garbage frame is refused before it is buffered.
    A framing error is final: every later call raises it again.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME,
                 reuse_slots: bool = True):
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._error: Optional[BusProtocolError] = None
        # The last slot bitmap decoded on this link (see decode()).
        self._last_slots = [None, 0] if reuse_slots else None

    def feed(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._buffer += data
        self._pending_length()

    def _pending_length(self) -> Optional[int]:
        """totlen of the frame at the buffer's head, once 8 bytes are in."""
        if self._error is not None:
            raise self._error
        if len(self._buffer) < _PREFIX.size:
            return None
        sig, totlen = _PREFIX.unpack_from(self._buffer)
        reason = None
        if sig != SIG:
            reason = f"bad signature {bytes(sig)!r}"
        elif totlen < HEADER_SIZE:
            reason = f"totlen {totlen} is below the {HEADER_SIZE}-byte minimum"
        elif totlen > self.max_frame:
            reason = f"totlen {totlen} exceeds the {self.max_frame}-byte limit"
        if reason is not None:
            self._buffer.clear()
            self._error = BusProtocolError(reason, framing=True)
            raise self._error
        return totlen

    def next_message(self) -> Optional[Message]:
        """The next complete message, or None if more bytes are needed."""
        totlen = self._pending_length()
        buffer = self._buffer
        if totlen is None or len(buffer) < totlen:
            return None
        if len(buffer) == totlen:       # the usual case: one whole frame
            frame = bytes(buffer)
            buffer.clear()
        else:
            with memoryview(buffer) as view:
                frame = bytes(view[:totlen])
            del buffer[:totlen]
        return decode(frame, self._last_slots)

    def __iter__(self) -> Iterator[Message]:
        while (message := self.next_message()) is not None:
            yield message

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buffer)
