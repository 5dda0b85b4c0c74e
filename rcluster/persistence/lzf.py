"""LZF for RDB strings and DUMP payloads, through python-lzf (a C extension
bundling liblzf 3.6, the same lzf_c.c/lzf_d.c Redis 7.0 vendors, with the
same HLOG 16 / VERY_FAST / no ULTRA_FAST settings), so compressed strings
are byte-identical to redis-server's (tests/interop/test_dump_interop.py).

This module keeps the codec's semantics on top of python-lzf's API:

* ``compress(data, out_len=None)``: the LZF bytes, or None when they
  wouldn't fit out_len bytes (``lzf_compress`` returning 0, which is what
  Redis's ``rdbSaveLzfStringObject`` asks with out_len = len - 4).
  python-lzf passes liblzf ``max_length + 1`` (``+ 2`` for a 1-byte
  input); the offset is undone here so out_len means liblzf's out_len.
* ``decompress(data, length)``: exactly ``length`` bytes or ``LzfError``.
  ``length`` is checked before python-lzf allocates it: at most 88 output
  bytes per input byte (LZF's best case, a 3-byte op copying 264 bytes)
  and under 2 GB (liblzf's lengths are ``unsigned int``).  liblzf checks
  every op against both buffers (CHECK_INPUT), so truncated ops,
  references before the start and over-long output are errors, never
  reads or writes out of bounds.
"""
from __future__ import annotations

import lzf as _lzf

# liblzf 3.6 (as python-lzf builds it) takes unsigned int lengths and
# python-lzf a C long: keep every length well inside both.
_MAX_LEN = (1 << 31) - 1
# The largest expansion an LZF stream can encode: 264 bytes from 3.
_MAX_RATIO = 88


class LzfError(ValueError):
    pass


# python-lzf itself, for hot paths that checked the arguments already
# (the RDB codec's short strings): raw_compress(data: bytes, max_length)
# runs lzf_compress with out_len = max_length + 1 (data longer than 1
# byte, max_length > 0); raw_decompress(data: bytes, length) returns None
# (or raises ValueError) on bad data and may return fewer bytes.
raw_compress = _lzf.compress
raw_decompress = _lzf.decompress


def compress(data, out_len: int | None = None):
    """LZF-compress data; None if the result wouldn't fit out_len bytes
    (lzf_compress returning 0).  out_len None: no limit."""
    if data.__class__ is not bytes:
        data = bytes(data)
    n = len(data)
    if out_len is None:
        out_len = n + n // 16 + 64
    if not n or n > _MAX_LEN:
        return None
    limit = out_len - (2 if n == 1 else 1)
    if limit <= 0:
        return None
    return _lzf.compress(data, limit if limit < _MAX_LEN else _MAX_LEN)


def decompress(data, length: int) -> bytes:
    """Decompress data that must expand to exactly length bytes."""
    if data.__class__ is not bytes:
        data = bytes(data)
    if length <= 0:
        if length == 0 and not data:
            return b""
        raise LzfError("output longer than declared" if length == 0
                       else "negative length")
    if length > len(data) * _MAX_RATIO or length > _MAX_LEN:
        raise LzfError("declared length impossible for the input")
    try:
        out = _lzf.decompress(data, length)
    except ValueError as err:      # EINVAL: a reference before the start
        raise LzfError("invalid LZF data") from err
    if out is None:                 # E2BIG: truncated op or output too long
        raise LzfError("truncated LZF data or output longer than declared")
    if len(out) != length:
        raise LzfError("output shorter than declared")
    return out
