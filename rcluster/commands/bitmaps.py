"""Bitmap commands (Redis 7.0's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS,
BITOP, BITFIELD, BITFIELD_RO.

They work on ordinary string values.  A write edits the value in place as
a ``bytearray`` (a ``bytes`` value is converted once), so SETBIT is O(1);
whole-string work (popcount, BITOP, bit search) runs in C through big
integers, regular expressions and memoryviews, never as a Python loop over
the bytes.  Offsets are bounded by ``proto-max-bulk-len`` as in Redis.
"""
from __future__ import annotations

import re

from rcluster.commands.common import (LLONG_MAX, SYNTAX, parse_int, read,
                                      unshare_string, write)
from rcluster.commands.table import CommandError, command, key_range
from rcluster.notify import GENERIC, STRING, notify

_G = dict(group="bitmap")
_BIT_RANGE_HISTORY = (("7.0.0", "Added the `BYTE|BIT` option."),)
OFFSET_ERROR = "ERR bit offset is not an integer or out of range"
BIT_ERROR = "ERR bit is not an integer or out of range"
TYPE_ERROR = ("ERR Invalid bitfield type. Use something like i16 u8. Note "
              "that u64 is not supported but i64 is.")

_M64 = (1 << 64) - 1
_SET_BYTE = re.compile(rb"[^\x00]")       # a byte with a 1 bit
_CLEAR_BYTE = re.compile(rb"[^\xff]")     # a byte with a 0 bit


def _u64(x: int) -> int:
    return x & _M64


def _s64(x: int) -> int:
    x &= _M64
    return x - (1 << 64) if x >> 63 else x


_OBEYED = ("master", "aof")


def parse_offset(c, arg: bytes, hash_ok: bool = False, bits: int = 0) -> int:
    """getBitOffsetFromArgument: a bit offset (``#n`` = n * bits for
    BITFIELD), below proto-max-bulk-len bytes except for our master and
    the AOF (mustObeyClient: they replay what was already accepted)."""
    use_hash = hash_ok and bits > 0 and arg[:1] == b"#"
    offset = parse_int(arg[1:] if use_hash else arg, OFFSET_ERROR)
    if use_hash:
        offset *= bits
    if offset < 0 or (offset >> 3 >= c.server.settings.proto_max_bulk_len
                      and c.kind not in _OBEYED):
        raise CommandError(OFFSET_ERROR)
    return offset


def _grow_for_write(c, key: bytes, size: int):
    """lookupStringForBitCommand: the string at key as a bytearray to edit,
    at least size bytes long (created zeroed if missing).  Returns (buffer,
    whether it was created or grew)."""
    old = write(c, key, bytes)
    if old is None:
        buf = bytearray(size)
        c.server.keyspace.add(key, buf)
        return buf, True
    buf = unshare_string(c, key, old)
    grown = len(buf) < size
    if grown:
        buf += bytes(size - len(buf))
    return buf, grown


# -- SETBIT / GETBIT -------------------------------------------------------

@command("setbit", 4, "write denyoom", keys=(1, 1, 1, "RW access update"),
         summary="Sets or clears the bit at offset in the string value "
         "stored at key", since="2.2.0", complexity="O(1)", **_G)
def setbit(c, argv):
    key = argv[1]
    offset = parse_offset(c, argv[2])
    on = parse_int(argv[3], BIT_ERROR)
    if on & ~1:
        raise CommandError(BIT_ERROR)
    byte = offset >> 3
    shift = 7 - (offset & 7)
    buf, dirty = _grow_for_write(c, key, byte + 1)
    was = (buf[byte] >> shift) & 1
    if was != on:
        buf[byte] ^= 1 << shift
    if was != on or dirty:
        c.server.keyspace.touch(key)
        notify(c, STRING, b"setbit", key)
    return was


@command("getbit", 3, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Returns the bit value at offset in the string value "
         "stored at key", since="2.2.0", complexity="O(1)", **_G)
def getbit(c, argv):
    offset = parse_offset(c, argv[2])
    value = read(c, argv[1], bytes)
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


# -- BITCOUNT / BITPOS -----------------------------------------------------

def _unit_is_bit(arg: bytes) -> bool:
    unit = arg.lower()
    if unit == b"bit":
        return True
    if unit == b"byte":
        return False
    raise CommandError(SYNTAX)


def _masks(start: int, end: int):
    """BIT ranges: bit start/end -> byte start/end and the masks of the
    bits outside the range in the first and last byte."""
    first = ~((1 << (8 - (start & 7))) - 1) & 0xff
    last = (1 << (7 - (end & 7))) - 1
    return start >> 3, end >> 3, first, last


_CHUNK = 1 << 20


def _popcount(value, start: int, end: int) -> int:
    """Set bits in value[start:end + 1], a megabyte at a time (as big
    integers: C speed, bounded memory)."""
    count = 0
    with memoryview(value) as view:
        for at in range(start, end + 1, _CHUNK):
            piece = view[at:min(at + _CHUNK, end + 1)]
            count += int.from_bytes(piece, "big").bit_count()
            piece.release()
    return count


@command("bitcount", -2, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Count set bits in a string", since="2.6.0",
         complexity="O(N)", history=_BIT_RANGE_HISTORY, **_G)
def bitcount(c, argv):
    value = read(c, argv[1], bytes)
    if value is None:
        return 0
    size = len(value)
    first_mask = last_mask = 0
    if len(argv) in (4, 5):
        start = parse_int(argv[2])
        end = parse_int(argv[3])
        if start < 0 and end < 0 and start > end:
            return 0
        is_bit = len(argv) == 5 and _unit_is_bit(argv[4])
        total = size * 8 if is_bit else size
        start = max(start + total if start < 0 else start, 0)
        end = max(end + total if end < 0 else end, 0)
        end = min(end, total - 1)
        if is_bit and start <= end:
            start, end, first_mask, last_mask = _masks(start, end)
    elif len(argv) == 2:
        start, end = 0, size - 1
    else:
        raise CommandError(SYNTAX)
    if start > end:
        return 0
    count = _popcount(value, start, end)
    if first_mask:
        count -= (value[start] & first_mask).bit_count()
    if last_mask:
        count -= (value[end] & last_mask).bit_count()
    return count


def _first_bit(data, start: int, count: int, bit: int) -> int:
    """redisBitpos over count bytes of data from start: the offset of the
    first bit equal to bit, -1 if none is 1, count * 8 if none is 0."""
    found = (_SET_BYTE if bit else _CLEAR_BYTE).search(data, start,
                                                       start + count)
    if found is None:
        return -1 if bit else count * 8
    at = found.start()
    byte = data[at] if bit else data[at] ^ 0xff
    return (at - start) * 8 + 8 - byte.bit_length()


@command("bitpos", -3, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Find first bit set or clear in a string", since="2.8.7",
         complexity="O(N)", history=_BIT_RANGE_HISTORY, **_G)
def bitpos(c, argv):
    bit = parse_int(argv[2])
    if bit not in (0, 1):
        raise CommandError("ERR The bit argument must be 1 or 0.")
    value = read(c, argv[1], bytes)
    if value is None:
        return -1 if bit else 0
    size = len(value)
    argc = len(argv)
    end_given = False
    first_mask = last_mask = 0
    if 4 <= argc <= 6:
        start = parse_int(argv[3])
        is_bit = argc == 6 and _unit_is_bit(argv[5])
        if argc >= 5:
            end = parse_int(argv[4])
            end_given = True
        else:
            end = size * 8 + 7 if is_bit else size - 1
        total = size * 8 if is_bit else size
        start = max(start + total if start < 0 else start, 0)
        end = max(end + total if end < 0 else end, 0)
        end = min(end, total - 1)
        if is_bit and start <= end:
            start, end, first_mask, last_mask = _masks(start, end)
    elif argc == 3:
        start, end = 0, size - 1
    else:
        raise CommandError(SYNTAX)
    if start > end:
        return -1
    with memoryview(value) as view:
        pos, start, count = _bitpos_range(view, start, end, bit, first_mask,
                                          last_mask)
    if end_given and bit == 0 and pos == count * 8:
        return -1
    return pos + start * 8 if pos != -1 else -1


def _bitpos_range(data, start, end, bit, first_mask, last_mask):
    """bitposCommand's search of bytes start..end with the edge masks ->
    (position relative to the returned start byte, that start, the number
    of bytes left from it)."""
    count = end - start + 1
    if first_mask:
        byte = data[start] & ~first_mask if bit else data[start] | first_mask
        if last_mask and count == 1:
            byte = byte & ~last_mask if bit else byte | last_mask
        pos = _first_bit(bytes((byte & 0xff,)), 0, 1, bit)
        if count == 1 or (pos != -1 and pos != 8):
            return pos, start, count
        start += 1
        count -= 1
    middle = count - (1 if last_mask else 0)
    if middle > 0:
        pos = _first_bit(data, start, middle, bit)
        if count == middle or (pos != -1 and pos != middle * 8):
            return pos, start, count
        start += middle
        count -= middle
    byte = data[end] & ~last_mask if bit else data[end] | last_mask
    return _first_bit(bytes((byte & 0xff,)), 0, 1, bit), start, count


# -- BITOP -----------------------------------------------------------------

_OPS = (b"and", b"or", b"xor", b"not")


@command("bitop", -4, "write denyoom",
         specs=[key_range(2, 2, 1, ("OW", "update")),
                key_range(3, -1, 1, ("RO", "access"))],
         summary="Perform bitwise operations between strings", since="2.6.0",
         complexity="O(N)", **_G)
def bitop(c, argv):
    op = argv[1].lower()
    if op not in _OPS:
        raise CommandError(SYNTAX)
    if op == b"not" and len(argv) != 4:
        raise CommandError("ERR BITOP NOT must be called with a single "
                           "source key.")
    values = [read(c, key, bytes) for key in argv[3:]]
    longest = max(len(v) if v is not None else 0 for v in values)
    ks = c.server.keyspace
    dest = argv[2]
    if not longest:
        if ks.delete(dest):
            notify(c, GENERIC, b"del", dest)
        return 0
    # Each string as a big-endian integer, zero-padded on the right.
    numbers = [int.from_bytes(v, "big") << (8 * (longest - len(v)))
               if v else 0 for v in values]
    result = numbers[0]
    if op == b"not":
        result = ~result & ((1 << (8 * longest)) - 1)
    elif op == b"and":
        for n in numbers[1:]:
            result &= n
    elif op == b"or":
        for n in numbers[1:]:
            result |= n
    else:
        for n in numbers[1:]:
            result ^= n
    ks.set(dest, bytearray(result.to_bytes(longest, "big")))
    notify(c, STRING, b"set", dest)
    return longest


# -- BITFIELD --------------------------------------------------------------

WRAP, SAT, FAIL = 0, 1, 2
_OVERFLOW = {b"wrap": WRAP, b"sat": SAT, b"fail": FAIL}
GET, SET, INCRBY = 0, 1, 2
_OPCODES = {b"get": (GET, 2), b"set": (SET, 3), b"incrby": (INCRBY, 3)}


def _parse_type(arg: bytes):
    """getBitfieldTypeFromArgument: i1..i64, u1..u63 -> (signed, bits)."""
    sign = arg[:1]
    if sign not in (b"i", b"u"):
        raise CommandError(TYPE_ERROR)
    bits = parse_int(arg[1:], TYPE_ERROR)
    if bits < 1 or bits > (64 if sign == b"i" else 63):
        raise CommandError(TYPE_ERROR)
    return sign == b"i", bits


def parse_bitfield(c, argv):
    """BITFIELD's operations, as Redis checks them, in order:
    (opcode, signed, bits, offset, argument, overflow) tuples."""
    ops = []
    overflow = WRAP
    j, argc = 2, len(argv)
    while j < argc:
        remaining = argc - j - 1
        name = argv[j].lower()
        if name == b"overflow" and remaining >= 1:
            overflow = _OVERFLOW.get(argv[j + 1].lower())
            if overflow is None:
                raise CommandError("ERR Invalid OVERFLOW type specified")
            j += 2
            continue
        opcode, needs = _OPCODES.get(name, (None, 0))
        if opcode is None or remaining < needs:
            raise CommandError(SYNTAX)
        signed, bits = _parse_type(argv[j + 1])
        offset = parse_offset(c, argv[j + 2], True, bits)
        value = parse_int(argv[j + 3]) if opcode != GET else 0
        ops.append((opcode, signed, bits, offset, value, overflow))
        j += 1 + needs
    return ops


def get_field(data, offset: int, bits: int, signed: bool) -> int:
    """The bits-wide integer at bit offset of data (zero past its end)."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    chunk = bytes(data[first:last + 1])
    width = last - first + 1
    if len(chunk) < width:
        chunk += bytes(width - len(chunk))
    shift = width * 8 - (offset & 7) - bits
    value = (int.from_bytes(chunk, "big") >> shift) & ((1 << bits) - 1)
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def set_field(buf: bytearray, offset: int, bits: int, value: int):
    """Store the low bits of value at bit offset of buf (long enough)."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    width = last - first + 1
    shift = width * 8 - (offset & 7) - bits
    mask = ((1 << bits) - 1) << shift
    word = int.from_bytes(buf[first:last + 1], "big")
    word = (word & ~mask) | (((value & ((1 << bits) - 1)) << shift))
    buf[first:last + 1] = word.to_bytes(width, "big")


def unsigned_overflow(value: int, incr: int, bits: int, overflow: int):
    """checkUnsignedBitfieldOverflow, in 64-bit arithmetic -> (overflowed,
    the wrapped or saturated value)."""
    top = (1 << bits) - 1
    max_incr = _s64(top - value)
    min_incr = _s64(-value)
    if value > top or (incr > 0 and incr > max_incr):
        limit = top
    elif incr < 0 and incr < min_incr:
        limit = 0
    else:
        return False, None
    if overflow == WRAP:
        limit = _u64(value + incr) & top
    return True, limit


def signed_overflow(value: int, incr: int, bits: int, overflow: int):
    """checkSignedBitfieldOverflow, in 64-bit arithmetic (its quirks too)."""
    top = LLONG_MAX if bits == 64 else (1 << (bits - 1)) - 1
    bottom = -top - 1
    max_incr = _s64(top - value)
    min_incr = _s64(bottom - value)
    if value > top or (bits != 64 and incr > max_incr) or \
            (value >= 0 and incr > 0 and incr > max_incr):
        limit = top
    elif value < bottom or (bits != 64 and incr < min_incr) or \
            (value < 0 and incr < 0 and incr < min_incr):
        limit = bottom
    else:
        return False, None
    if overflow == WRAP:
        result = _u64(value + incr)
        if bits < 64:
            high = (_M64 << bits) & _M64
            result = result | high if result >> (bits - 1) & 1 \
                else result & ~high
        limit = _s64(result)
    return True, limit


def _write_op(buf, opcode, signed, bits, offset, arg, overflow):
    """One SET or INCRBY -> (reply, changed)."""
    old = get_field(buf, offset, bits, signed)
    if signed:
        if opcode == INCRBY:
            hit, limit = signed_overflow(old, arg, bits, overflow)
            new = limit if hit else old + arg
        else:
            hit, limit = signed_overflow(arg, 0, bits, overflow)
            new = limit if hit else arg
    else:
        if opcode == INCRBY:
            hit, limit = unsigned_overflow(old, arg, bits, overflow)
            new = limit if hit else _u64(old + arg)
        else:
            hit, limit = unsigned_overflow(_u64(arg), 0, bits, overflow)
            new = limit if hit else _u64(arg)
    if hit and overflow == FAIL:
        return None, False
    set_field(buf, offset, bits, new)
    stored = get_field(buf, offset, bits, signed)
    return (new if opcode == INCRBY else old), stored != old


def _bitfield(c, argv, readonly_command: bool):
    ops = parse_bitfield(c, argv)
    writes = [op for op in ops if op[0] != GET]
    key = argv[1]
    if not writes:
        value = read(c, key, bytes)
        data = value if value is not None else b""
        return [get_field(data, op[3], op[2], op[1]) for op in ops]
    if readonly_command:
        raise CommandError("ERR BITFIELD_RO only supports the GET subcommand")
    highest = max(op[3] + op[2] - 1 for op in writes)
    buf, grown = _grow_for_write(c, key, (highest >> 3) + 1)
    replies = []
    changes = 0
    for opcode, signed, bits, offset, arg, overflow in ops:
        if opcode == GET:
            replies.append(get_field(buf, offset, bits, signed))
            continue
        reply, changed = _write_op(buf, opcode, signed, bits, offset, arg,
                                   overflow)
        replies.append(reply)
        if reply is not None and (grown or changed):
            changes += 1
    if changes:
        c.server.keyspace.touch(key, changes)
        notify(c, STRING, b"setbit", key)
    return replies


@command("bitfield", -2, "write denyoom",
         specs=[key_range(1, 1, 1, ("RW", "access", "update",
                                    "variable_flags"),
                          "This command allows both access and "
                          "modification of the key")],
         summary="Perform arbitrary bitfield integer operations on strings",
         since="3.2.0", complexity="O(1) for each subcommand specified",
         **_G)
def bitfield(c, argv):
    return _bitfield(c, argv, False)


@command("bitfield_ro", -2, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Perform arbitrary bitfield integer operations on strings. "
         "Read-only variant of BITFIELD", since="6.0.0",
         complexity="O(1) for each subcommand specified", **_G)
def bitfield_ro(c, argv):
    return _bitfield(c, argv, True)
