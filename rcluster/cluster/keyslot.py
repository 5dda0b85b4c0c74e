"""Key -> hash slot, exactly as Redis Cluster computes it.

Redis uses CRC16-CCITT (XMODEM: polynomial 0x1021, init 0), which is what
``binascii.crc_hqx(data, 0)`` computes in C - no table of our own needed.
Only the part between the first ``{`` and the next ``}`` is hashed, when
that part is non-empty (hash tags).
"""
from binascii import crc_hqx

SLOTS = 16384
_MASK = SLOTS - 1


def keyslot(key: bytes) -> int:
    # "123 in key" (an int) is a plain memchr, far cheaper than a bytes
    # needle: most keys have no "{" at all.
    if 123 not in key:
        return crc_hqx(key, 0) & _MASK
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return crc_hqx(key, 0) & _MASK
