"""HyperLogLog, byte for byte as Redis 7.0 stores it (hyperloglog.c).

An HLL is an ordinary string value: a 16-byte header ("HYLL", the
encoding, three zero bytes, the cached cardinality as 8 little-endian
bytes whose top bit says "stale") and 16384 six-bit registers, either
*dense* (12288 bytes, register i in bits 6i..6i+5, least significant bit
first) or *sparse* (run-length opcodes: ZERO 00xxxxxx, XZERO 01xxxxxx
xxxxxxxx, VAL 1vvvvvxx).  So a value built here is the one redis-server
builds for the same calls, and either reads the other's (GET/SET, DUMP).

Sans-IO: functions take the value (``bytes`` to read, a ``bytearray`` to
edit in place) and raise ``CorruptHLL`` on a malformed sparse body.  Adding
an element to a dense HLL edits at most two bytes; a sparse edit walks the
opcodes, bounded by ``hll-sparse-max-bytes`` (past that, it turns dense).
Whole-register work (counting, merging, conversion) runs as bytes and big
integer operations in C, not as a Python loop over the 16384 registers.
"""
from __future__ import annotations

import math
import random
import re
import struct
from bisect import bisect_right
from collections import Counter
from itertools import accumulate

P = 14
Q = 64 - P
REGISTERS = 1 << P                  # 16384
P_MASK = REGISTERS - 1
REGISTER_MAX = 63
HDR_SIZE = 16
DENSE_BYTES = REGISTERS * 6 // 8    # 12288
DENSE_SIZE = HDR_SIZE + DENSE_BYTES
DENSE, SPARSE = 0, 1
MAGIC = b"HYLL"
VAL_MAX_VALUE = 32
VAL_MAX_LEN = 4
ZERO_MAX_LEN = 64
XZERO_MAX_LEN = 16384
ALPHA_INF = 0.721347520444481703680     # 0.5 / ln(2)
SEED = 0xadc83b19

INVALID_HLL = "INVALIDOBJ Corrupted HLL object detected"
NOT_HLL = "WRONGTYPE Key is not a valid HyperLogLog string value."

_M64 = (1 << 64) - 1
_MURMUR_M = 0xc6a4a7935bd1e995
_QWORDS = struct.Struct("<Q")


class CorruptHLL(ValueError):
    """A sparse body whose opcodes don't cover exactly 16384 registers."""


# -- hashing -------------------------------------------------------------

def murmurhash64a(data, seed: int = SEED) -> int:
    """MurmurHash2, 64-bit (Redis's endian-neutral MurmurHash64A)."""
    m = _MURMUR_M
    n = len(data)
    h = (seed ^ (n * m)) & _M64
    whole = n - (n & 7)
    if whole:
        for (k,) in _QWORDS.iter_unpack(data[:whole]):
            k = (k * m) & _M64
            k ^= k >> 47
            h ^= (k * m) & _M64
            h = (h * m) & _M64
    if n & 7:
        h ^= int.from_bytes(data[whole:], "little")
        h = (h * m) & _M64
    h ^= h >> 47
    h = (h * m) & _M64
    return h ^ (h >> 47)


def pattern(element) -> tuple:
    """(register index, run length of the 000..1 pattern) of an element
    (hllPatLen)."""
    h = murmurhash64a(element)
    rest = (h >> P) | (1 << Q)
    return h & P_MASK, (rest & -rest).bit_length()


# -- header --------------------------------------------------------------

def new() -> bytearray:
    """An empty HLL as PFADD creates it: sparse, one XZERO opcode."""
    return bytearray(b"HYLL\x01\x00\x00\x00" + bytes(8) + b"\x7f\xff")


def is_hll(value) -> bool:
    """Redis's isHLLObjectOrReply checks (header and dense length only)."""
    return (len(value) >= HDR_SIZE and value[:4] == MAGIC and
            value[4] <= SPARSE and
            (value[4] != DENSE or len(value) == DENSE_SIZE))


def cached_count(value):
    """The cached cardinality, or None when it is stale."""
    if value[15] & 0x80:
        return None
    return int.from_bytes(value[8:16], "little")


def set_cached_count(buf: bytearray, count: int):
    buf[8:16] = count.to_bytes(8, "little")


def invalidate(buf: bytearray):
    buf[15] |= 0x80


# -- register vectors ------------------------------------------------------
# A "raw" vector holds one register per byte (16384 bytes).  Dense <-> raw
# works on every third byte at once: 3 dense bytes hold 4 registers.

def _table(fn) -> bytes:
    return bytes(fn(b) & 0xff for b in range(256))


_LOW6 = _table(lambda b: b & 63)
_SHR6 = _table(lambda b: b >> 6)
_LOW4_SHL2 = _table(lambda b: (b & 15) << 2)
_SHR4 = _table(lambda b: b >> 4)
_LOW2_SHL4 = _table(lambda b: (b & 3) << 4)
_SHR2 = _table(lambda b: b >> 2)
_SHL6 = _table(lambda b: b << 6)
_SHL4 = _table(lambda b: b << 4)
_SHL2 = _table(lambda b: b << 2)


def _or(a: bytes, b: bytes) -> bytes:
    """Bytewise OR of equal-length strings."""
    n = len(a)
    return (int.from_bytes(a, "little") |
            int.from_bytes(b, "little")).to_bytes(n, "little")


def dense_to_raw(value) -> bytearray:
    regs = bytes(value[HDR_SIZE:DENSE_SIZE])
    b0, b1, b2 = regs[0::3], regs[1::3], regs[2::3]
    raw = bytearray(REGISTERS)
    raw[0::4] = b0.translate(_LOW6)
    raw[1::4] = _or(b0.translate(_SHR6), b1.translate(_LOW4_SHL2))
    raw[2::4] = _or(b1.translate(_SHR4), b2.translate(_LOW2_SHL4))
    raw[3::4] = b2.translate(_SHR2)
    return raw


def raw_to_dense(raw) -> bytes:
    """The 12288 dense register bytes of a raw vector (values <= 63)."""
    raw = bytes(raw)
    r0, r1, r2, r3 = raw[0::4], raw[1::4], raw[2::4], raw[3::4]
    out = bytearray(DENSE_BYTES)
    out[0::3] = _or(r0, r1.translate(_SHL6))
    out[1::3] = _or(r1.translate(_SHR2), r2.translate(_SHL4))
    out[2::3] = _or(r2.translate(_SHR4), r3.translate(_SHL2))
    return bytes(out)


_LANE_HIGH = int.from_bytes(b"\x80" * REGISTERS, "little")


def raw_max(a, b) -> bytearray:
    """Bytewise max of two raw vectors (lanes < 128), as big integers: a
    lane of (a | 0x80) - b keeps its top bit iff a >= b."""
    x = int.from_bytes(a, "little")
    y = int.from_bytes(b, "little")
    ge = (((x | _LANE_HIGH) - y) & _LANE_HIGH) >> 7
    keep = (ge << 8) - ge
    return bytearray(((x & keep) | (y & ~keep)).to_bytes(REGISTERS, "little"))


# -- dense registers ---------------------------------------------------------

def dense_get(buf, index: int) -> int:
    bit = index * 6
    at = HDR_SIZE + (bit >> 3)
    fb = bit & 7
    b1 = buf[at + 1] if at + 1 < DENSE_SIZE else 0
    return ((buf[at] >> fb) | (b1 << (8 - fb))) & 63


def dense_set(buf: bytearray, index: int, count: int) -> int:
    """Raise register index to count if it is lower: 1 if it changed."""
    bit = index * 6
    at = HDR_SIZE + (bit >> 3)
    fb = bit & 7
    b0 = buf[at]
    b1 = buf[at + 1] if at + 1 < DENSE_SIZE else 0
    if count <= ((b0 >> fb) | (b1 << (8 - fb))) & 63:
        return 0
    buf[at] = (b0 & ~(63 << fb) & 0xff) | ((count << fb) & 0xff)
    if at + 1 < DENSE_SIZE:
        fb8 = 8 - fb
        buf[at + 1] = (b1 & ~(63 >> fb8) & 0xff) | (count >> fb8)
    return 1


# -- sparse opcodes -----------------------------------------------------------

def _opcodes(value):
    """(kind, run, register value) for each opcode of a sparse body; kind
    0 ZERO, 1 XZERO, 2 VAL.  A truncated XZERO reads a 0 low byte (the
    string's terminator in C)."""
    p, end = HDR_SIZE, len(value)
    while p < end:
        b = value[p]
        if b & 0x80:
            yield 2, (b & 3) + 1, ((b >> 2) & 31) + 1
            p += 1
        elif b & 0x40:
            low = value[p + 1] if p + 1 < end else 0
            yield 1, ((b & 63) << 8 | low) + 1, 0
            p += 2
        else:
            yield 0, (b & 63) + 1, 0
            p += 1


# Each one-byte opcode as the registers it stands for.
_EXPAND = [bytes(((b >> 2) & 31) + 1 for _ in range((b & 3) + 1))
           if b & 0x80 else bytes((b & 63) + 1) if b < 0x40 else b""
           for b in range(256)]


def sparse_to_raw(value, raw: bytearray = None) -> bytearray:
    """The registers of a sparse HLL (maxed into raw if given), as
    hllMerge reads them; CorruptHLL unless the runs cover 16384 registers
    exactly (a run past the end too: Debian's 7.0.15 carries the
    CVE-2025-32023 fix, which refuses what the original code skipped).
    Opcodes are expanded by table lookups in C, not a Python loop."""
    pieces = []
    total = 0
    for token in _TOKENS.finditer(value, HDR_SIZE):
        s, e = token.span()
        if token.group(1) is not None:
            low = value[s + 1] if e - s == 2 else 0
            run = ((value[s] & 63) << 8 | low) + 1
            total += run
            if total > REGISTERS:
                raise CorruptHLL()
            pieces.append(bytes(run))
        else:
            piece = b"".join(map(_EXPAND.__getitem__, value[s:e]))
            total += len(piece)
            if total > REGISTERS:
                raise CorruptHLL()
            pieces.append(piece)
    if total != REGISTERS:
        raise CorruptHLL()
    mine = bytearray(b"".join(pieces))
    return mine if raw is None else raw_max(raw, mine)


def to_raw(value, raw: bytearray = None) -> bytearray:
    """The registers of a valid-header HLL (maxed into raw if given)."""
    if value[4] == DENSE:
        mine = dense_to_raw(value)
        return mine if raw is None else raw_max(raw, mine)
    return sparse_to_raw(value, raw)


def to_dense(buf: bytearray) -> bool:
    """Convert buf to the dense encoding in place (keeping the header's
    cached cardinality); False if it already was.  CorruptHLL if the
    sparse body is invalid (buf is then unchanged)."""
    if buf[4] == DENSE:
        return False
    raw = sparse_to_raw(buf)
    header = bytearray(buf[:HDR_SIZE])
    header[4] = DENSE
    buf[:] = header + raw_to_dense(raw)
    return True


def _val(value: int, run: int) -> int:
    return ((value - 1) << 2 | (run - 1)) | 0x80


def _zeros(run: int) -> bytes:
    if run > ZERO_MAX_LEN:
        return bytes((((run - 1) >> 8) | 0x40, (run - 1) & 0xff))
    return bytes((run - 1,))


# A sparse body as tokens: an XZERO opcode (2 bytes; a truncated one at the
# end reads a 0 low byte), or a run of one-byte opcodes (ZERO and VAL).
_TOKENS = re.compile(rb"([\x40-\x7f][\x00-\xff]?)|[\x00-\x3f\x80-\xff]+")
_BLOCK = 256
# The registers a one-byte opcode covers (0 for an XZERO's first byte).
_SPAN = bytes((b & 63) + 1 if b < 0x40 else (b & 3) + 1 if b >= 0x80 else 0
              for b in range(256))


def _locate(buf, index, p, first, prev, pprev):
    """The opcode covering register index, walking from opcode p (which
    covers registers from first; prev is the opcode before it, pprev the
    one before that, None if not known).  Runs of one-byte opcodes are
    summed and searched in C, so a 3000-byte body costs a few C passes,
    not a Python step per opcode.  -> (p, first, span, opcode length,
    prev, first register of prev or None, pprev); CorruptHLL if no opcode
    covers index."""
    prev_first = None
    for token in _TOKENS.finditer(buf, p):
        s, e = token.span()
        if token.group(1) is not None:
            low = buf[s + 1] if e - s == 2 else 0
            span = ((buf[s] & 63) << 8 | low) + 1
            if index < first + span:
                return s, first, span, 2, prev, prev_first, pprev
            pprev, prev, prev_first = prev, s, first
            first += span
            continue
        spans = buf[s:e].translate(_SPAN)
        # Whole blocks of opcodes before the one wanted are only summed.
        for b0 in range(0, e - s, _BLOCK):
            block = spans[b0:b0 + _BLOCK]
            total = sum(block)
            if index >= first + total:
                b1 = s + b0 + len(block)
                pprev = b1 - 2 if b1 - 2 >= s else prev
                prev, prev_first = b1 - 1, first + total - block[-1]
                first += total
                continue
            sums = list(accumulate(block))
            k = bisect_right(sums, index - first)
            at = s + b0 + k
            if k >= 1:
                pprev = at - 2 if at - 2 >= s else prev
                prev = at - 1
                prev_first = first + (sums[k - 2] if k >= 2 else 0)
            start = first + (sums[k - 1] if k else 0)
            return at, start, block[k], 1, prev, prev_first, pprev
    raise CorruptHLL()


def sparse_set(buf: bytearray, index: int, count: int, max_bytes: int,
               hint=None):
    """hllSparseSet: raise register index to count in a sparse HLL,
    turning it dense when count doesn't fit a VAL opcode or the body would
    outgrow max_bytes.  Returns (1 if changed else 0, hint).

    ``hint`` (from the previous call) lets a caller setting registers in
    increasing index order resume the opcode walk where the last edit
    was, instead of from the start (PFMERGE): everything before the
    previous call's "prev" opcode is unchanged by an edit."""
    if count > VAL_MAX_VALUE:
        return _promote(buf, index, count), None
    if hint is None:
        start, first, prev, pprev = HDR_SIZE, 0, -1, -1
    else:
        (start, first, prev), pprev = hint, None
    p, first, span, oplen, prev, prev_first, pprev = _locate(
        buf, index, start, first, prev, pprev)
    b = buf[p]
    # Where a following call with a larger index may start: this call's
    # prev opcode (edits below leave its start and everything before it
    # alone), with the opcode before it.
    next_hint = (prev, prev_first, pprev) if prev >= 0 and \
        prev_first is not None and pprev is not None else None
    if b & 0x80:
        old = ((b >> 2) & 31) + 1
        if old >= count:
            return 0, next_hint
        if span == 1:
            buf[p] = _val(count, 1)
            _merge_vals(buf, prev)
            return 1, next_hint
    elif not b & 0x40 and span == 1:
        buf[p] = _val(count, 1)
        _merge_vals(buf, prev)
        return 1, next_hint
    last = first + span - 1
    if not b & 0x80:            # split a ZERO or XZERO run
        seq = bytearray()
        if index != first:
            seq += _zeros(index - first)
        seq.append(_val(count, 1))
        if index != last:
            seq += _zeros(last - index)
    else:                       # split a VAL run
        current = ((b >> 2) & 31) + 1
        seq = bytearray()
        if index != first:
            seq.append(_val(current, index - first))
        seq.append(_val(count, 1))
        if index != last:
            seq.append(_val(current, last - index))
    if len(seq) > oplen and len(buf) + len(seq) - oplen > max_bytes:
        return _promote(buf, index, count), None
    buf[p:p + oplen] = seq
    _merge_vals(buf, prev)
    return 1, next_hint


def _merge_vals(buf: bytearray, prev: int):
    """Step 4 of hllSparseSet: merge adjacent VAL opcodes of equal value
    (up to 5 opcodes from prev), then mark the cached count stale."""
    p = prev if prev >= 0 else HDR_SIZE
    end = len(buf)
    scan = 5
    while p < end and scan:
        scan -= 1
        b = buf[p]
        if not b & 0x80:
            p += 2 if b & 0x40 else 1
            continue
        if p + 1 < end and buf[p + 1] & 0x80:
            c = buf[p + 1]
            if (b >> 2) & 31 == (c >> 2) & 31:
                run = (b & 3) + (c & 3) + 2
                if run <= VAL_MAX_LEN:
                    buf[p + 1] = _val(((b >> 2) & 31) + 1, run)
                    del buf[p]
                    end -= 1
                    continue
        p += 1
    buf[15] |= 0x80


def _promote(buf: bytearray, index: int, count: int) -> int:
    to_dense(buf)
    return dense_set(buf, index, count)


def add(buf: bytearray, elements, max_bytes: int) -> int:
    """hllAdd of each element: how many changed a register (the cache is
    NOT marked stale: PFADD does that once)."""
    updated = 0
    for element in elements:
        index, count = pattern(element)
        if buf[4] == DENSE:
            updated += dense_set(buf, index, count)
        else:
            updated += sparse_set(buf, index, count, max_bytes)[0]
    return updated


def merge_into(buf: bytearray, raw, max_bytes: int):
    """PFMERGE's write: raise every register of buf (a valid HLL) to raw's
    value, sparse-set by sparse-set while buf stays sparse, as Redis does
    (so the bytes match)."""
    if buf[4] == DENSE:
        buf[HDR_SIZE:] = raw_to_dense(raw_max(dense_to_raw(buf), raw))
        return
    hint = None
    nonzero = re.compile(rb"[^\x00]")
    for match in nonzero.finditer(raw):
        index = match.start()
        if buf[4] == DENSE:
            dense_set(buf, index, raw[index])
        else:
            hint = sparse_set(buf, index, raw[index], max_bytes, hint)[1]


# -- counting -----------------------------------------------------------------

def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if previous == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if previous == z:
            return z / 3


def estimate(histogram) -> int:
    """hllCount's estimator (Ertl's improved raw estimator) from the
    register histogram, rounded as llroundl does."""
    m = float(REGISTERS)
    z = m * _tau((m - histogram[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    if z == 0:
        # ALPHA*m*m/0 is inf; llroundl(inf) gives LLONG_MIN on x86-64.
        return 1 << 63
    e = ALPHA_INF * m * m / z
    whole = math.floor(e)
    return int(whole) + 1 if e - whole >= 0.5 else int(whole)


def raw_histogram(raw) -> list:
    raw = bytes(raw)
    return [raw.count(v) for v in range(64)]


def sparse_histogram(value) -> list:
    """hllSparseRegHisto; CorruptHLL unless the runs cover 16384.  The
    one-byte opcodes are tallied by byte value in C (Counter)."""
    hist = [0] * 64
    singles = []
    for token in _TOKENS.finditer(value, HDR_SIZE):
        s, e = token.span()
        if token.group(1) is not None:
            low = value[s + 1] if e - s == 2 else 0
            hist[0] += ((value[s] & 63) << 8 | low) + 1
        else:
            singles.append(value[s:e])
    for byte, n in Counter(b"".join(singles)).items():
        if byte & 0x80:
            hist[((byte >> 2) & 31) + 1] += n * ((byte & 3) + 1)
        else:
            hist[0] += n * ((byte & 63) + 1)
    if sum(hist) != REGISTERS:
        raise CorruptHLL()
    return hist


def count(value) -> int:
    """The estimated cardinality of a valid-header HLL (ignoring the
    cache); CorruptHLL for an invalid sparse body."""
    if value[4] == DENSE:
        return estimate(raw_histogram(dense_to_raw(value)))
    return estimate(sparse_histogram(value))


def decode(value) -> bytes:
    """PFDEBUG DECODE's text of a sparse HLL."""
    parts = []
    for kind, run, val in _opcodes(value):
        if kind == 2:
            parts.append(b"v:%d,%d" % (val, run))
        else:
            parts.append(b"%s:%d" % (b"Z" if kind else b"z", run))
    return b" ".join(parts)


# -- PFSELFTEST ---------------------------------------------------------------

def selftest(max_bytes: int, rng=None, cycles: int = 10,
             elements: int = 10_000):
    """Redis's PFSELFTEST checks, scaled to a Python server: register
    access (``cycles`` rounds over all registers, dense encode/decode and
    the single-register accessors), then dense and sparse HLLs fed the
    same ``elements`` elements, agreeing with each other and within 6
    standard errors at each power of ten.  None, or the failure text."""
    rng = rng or random.Random()
    dense = bytearray(b"HYLL" + bytes(DENSE_SIZE - 4))
    for cycle in range(cycles):
        raw = rng.randbytes(REGISTERS).translate(_LOW6)
        dense[HDR_SIZE:] = raw_to_dense(raw)
        back = dense_to_raw(dense)
        # The single-register accessors on the first round only.
        for i in range(REGISTERS) if cycle == 0 else ():
            if dense_get(dense, i) != raw[i]:
                return "TESTFAILED Register %d should be %d but is %d" % (
                    i, raw[i], dense_get(dense, i))
        if back != raw:
            i = next(i for i in range(REGISTERS) if back[i] != raw[i])
            return "TESTFAILED Register %d should be %d but is %d" % (
                i, raw[i], back[i])
    dense[HDR_SIZE:] = bytes(DENSE_BYTES)
    sparse = new()
    relerr = 1.04 / math.sqrt(REGISTERS)
    checkpoint = 1
    seed = rng.getrandbits(64)
    for j in range(1, elements + 1):
        element = (j ^ seed).to_bytes(8, "little")
        index, run = pattern(element)
        dense_set(dense, index, run)
        add(sparse, (element,), max_bytes)
        if j == checkpoint:
            if j < max_bytes // 2 and sparse[4] != SPARSE:
                return "TESTFAILED sparse encoding not used"
            card = count(dense)
            if card != count(sparse):
                return "TESTFAILED dense/sparse disagree"
            maxerr = 1 if j == 10 else math.ceil(relerr * 6 * checkpoint)
            if abs(checkpoint - card) > maxerr:
                return "TESTFAILED Too big error. card:%d abserr:%d" % (
                    checkpoint, abs(checkpoint - card))
            checkpoint *= 10
    return None
