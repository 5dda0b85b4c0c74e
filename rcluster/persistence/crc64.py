"""Redis's CRC64 (Jones polynomial 0xad93d23594c935a9, reflected, init 0,
no final xor): the checksum of RDB files and DUMP payloads, computed by
crcmod-plus's C extension (``crcmod.mkCrcFun``; several hundred MB/s).

``crc64(data, crc=0)`` continues a running checksum over more bytes
(any bytes-like object).
``crc64_combine(crc_a, crc_b, len_b)`` is the checksum of A||B.
"""
from __future__ import annotations

import warnings

import crcmod
import crcmod.crcmod

POLY = 0xad93d23594c935a9

# crcmod wants the polynomial with its x^64 term.
crc64 = crcmod.mkCrcFun((1 << 64) | POLY, initCrc=0, rev=True, xorOut=0)
crc64.__doc__ = "crc64(data, crc=0): continue the running CRC64 crc over data."

if not getattr(crcmod.crcmod, "_usingExtension", False):
    warnings.warn("crcmod-plus's C extension is not available: CRC64 runs "
                  "in pure Python (RDB save/load will be very slow)",
                  RuntimeWarning, stacklevel=2)


# -- combining (the linear map "advance the state over zero bytes") --------

def _times(matrix, vector: int) -> int:
    out = 0
    k = 0
    while vector:
        if vector & 1:
            out ^= matrix[k]
        vector >>= 1
        k += 1
    return out


# _POWERS[j]: the matrix advancing the state over 2**j zero bytes.
_POWERS = [[crc64(b"\0", 1 << k) for k in range(64)]]


def _power(j: int):
    while len(_POWERS) <= j:
        last = _POWERS[-1]
        _POWERS.append([_times(last, column) for column in last])
    return _POWERS[j]


def crc64_combine(crc_a: int, crc_b: int, len_b: int) -> int:
    """The CRC64 of A||B from those of A and B and B's length."""
    j = 0
    while len_b and crc_a:
        if len_b & 1:
            crc_a = _times(_power(j), crc_a)
        len_b >>= 1
        j += 1
    return crc_a ^ crc_b
