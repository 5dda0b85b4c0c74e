"""LZF, format-compatible with liblzf 3.6 as Redis 7.0 builds it (HLOG 16,
VERY_FAST, no ULTRA_FAST): ``compress`` follows lzf_compress step by step
(same hash, same match search, same re-hashing after a match, same
out-of-room rules), so the output is byte-identical to Redis's for the
same input -- which keeps DUMP payloads and RDB files identical.

Format: ``000LLLLL`` + L+1 literal bytes; ``LLLooooo oooooooo`` a
back-reference of L+2 bytes (L < 7) at offset o+1; ``111ooooo LLLLLLLL
oooooooo`` the same with L+9 bytes.

``decompress(data, length)`` is bounded: it never produces more than
``length`` bytes, and raises ``LzfError`` on a reference before the start,
a truncated op, or an output that isn't exactly ``length`` bytes.

Speed (pure Python): compress ~2-7 MB/s (one loop turn per input byte
not covered by a match); inputs of 4 KB or more that zlib (level 1)
can't shrink below the allowed size are refused at once, without the
Python pass.  Decompress is faster (literals and back-references are
slice copies).
"""
from __future__ import annotations

import zlib

_PRECHECK_FROM = 4096
MAX_LIT = 1 << 5
MAX_OFF = 1 << 13
MAX_REF = (1 << 8) + (1 << 3)


class LzfError(ValueError):
    pass


def compress(data, out_len: int | None = None):
    """LZF-compress data; None if the result wouldn't fit out_len bytes
    (lzf_compress returning 0).  out_len None: no limit."""
    data = bytes(data)
    in_len = len(data)
    if out_len is None:
        out_len = in_len + in_len // 16 + 64
    if not in_len or not out_len:
        return None
    if in_len >= _PRECHECK_FROM and out_len < in_len and \
            len(zlib.compress(data, 1)) > out_len:
        # Incompressible for deflate (a stronger LZ77) at this size:
        # LZF's one-per-32-literals overhead can't fit either; skip the
        # slow pure-Python pass.
        return None
    out = bytearray()
    htab: dict = {}
    get = htab.get
    ip = 0
    lit = 0                 # literals in the current run
    lit_start = 0           # where the current run's literals start
    op = 1                  # output size counting the reserved run header
    end2 = in_len - 2
    hval = (data[0] << 8) | data[1] if in_len > 1 else data[0] << 8
    while ip < end2:
        hval = ((hval << 8) | data[ip + 2]) & 0xffffff
        slot = (((hval >> 8) & 0xffff) - hval * 5) & 0xffff
        ref = get(slot)
        htab[slot] = ip
        if ref is not None and ref > 0 and ip - ref - 1 < MAX_OFF and \
                data[ref + 2] == data[ip + 2] and \
                data[ref] == data[ip] and data[ref + 1] == data[ip + 1]:
            off = ip - ref - 1
            maxlen = in_len - ip - 2
            if maxlen > MAX_REF:
                maxlen = MAX_REF
            if op + 4 >= out_len and op - (not lit) + 4 >= out_len:
                return None
            # The match length exactly as lzf_compress's loops find it.
            limit = maxlen if maxlen > 19 else 19 if maxlen > 16 else maxlen
            length = 3
            while length < limit and data[ref + length] == data[ip + length]:
                length += 1
            if maxlen > 16:
                if length >= 19:
                    length = max(min(length, maxlen), 19)
            elif length < 3:
                length = 3
            # close the literal run (or drop its unused header)
            if lit:
                out.append(lit - 1)
                out += data[lit_start:ip]
            n = length - 2
            if n < 7:
                out.append((off >> 8) + (n << 5))
            else:
                out.append((off >> 8) + (7 << 5))
                out.append(n - 7)
            out.append(off & 0xff)
            lit = 0
            op = len(out) + 1
            ip += length
            lit_start = ip
            if ip >= end2:
                break
            ip -= 2
            hval = (data[ip] << 16) | (data[ip + 1] << 8) | data[ip + 2]
            htab[(((hval >> 8) & 0xffff) - hval * 5) & 0xffff] = ip
            ip += 1
            hval = ((hval << 8) | data[ip + 2]) & 0xffffff
            htab[(((hval >> 8) & 0xffff) - hval * 5) & 0xffff] = ip
            ip += 1
        else:
            if op >= out_len:
                return None
            lit += 1
            op += 1
            ip += 1
            if lit == MAX_LIT:
                out.append(MAX_LIT - 1)
                out += data[lit_start:ip]
                lit = 0
                lit_start = ip
                op += 1
    if op + 3 > out_len:
        return None
    while ip < in_len:
        lit += 1
        ip += 1
        if lit == MAX_LIT:
            out.append(MAX_LIT - 1)
            out += data[lit_start:ip]
            lit = 0
            lit_start = ip
    if lit:
        out.append(lit - 1)
        out += data[lit_start:ip]
    return bytes(out)


def decompress(data, length: int) -> bytes:
    """Decompress data that must expand to exactly length bytes."""
    data = bytes(data)
    n = len(data)
    out = bytearray()
    ip = 0
    while ip < n:
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:
            run = ctrl + 1
            if ip + run > n:
                raise LzfError("truncated literal run")
            if len(out) + run > length:
                raise LzfError("output longer than declared")
            out += data[ip:ip + run]
            ip += run
            continue
        run = ctrl >> 5
        if run == 7:
            if ip >= n:
                raise LzfError("truncated back reference")
            run += data[ip]
            ip += 1
        if ip >= n:
            raise LzfError("truncated back reference")
        back = ((ctrl & 0x1f) << 8) + data[ip] + 1
        ip += 1
        run += 2
        start = len(out) - back
        if start < 0:
            raise LzfError("back reference before the start")
        if len(out) + run > length:
            raise LzfError("output longer than declared")
        if back >= run:
            out += out[start:start + run]
        else:
            chunk = out[start:]
            out += (chunk * (run // back + 1))[:run]
    if len(out) != length:
        raise LzfError("output shorter than declared")
    return bytes(out)
