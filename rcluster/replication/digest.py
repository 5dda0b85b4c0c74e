"""DEBUG DIGEST and DEBUG DIGEST-VALUE, computed as Redis 7.0's debug.c
(xorDigest / mixDigest over SHA1): the same dataset gives the same digest
on rcluster and redis-server, so masters and replicas of either kind can
be compared.

- xor(d, data): d ^= SHA1(data)   (order-free: sets, hash fields, keys)
- mix(d, data): d = SHA1(d ^ SHA1(data))   (ordered: lists, streams)

A key's digest: mix(key), mix(type as a 32-bit big-endian int), the value
(strings: mix; lists: mix per element; sets: xor per member; sorted sets
and hashes: xor per element of mix(member), mix("%.17g" score) / mix(field),
mix(value); streams: per entry mix("ms.seq") then mix per field and
value), then xor("!!expire!!") when the key has an expiry.  The dataset's
digest xors the keys' digests after mixing the db number (0); an empty
dataset is forty zeros.
"""
from __future__ import annotations

import hashlib
from collections import deque

_OBJ_TYPES = {"string": 0, "list": 1, "set": 2, "zset": 3, "hash": 4,
              "stream": 6}
_sha1 = hashlib.sha1


def _xor(digest: bytearray, data: bytes):
    h = _sha1(data).digest()
    for i in range(20):
        digest[i] ^= h[i]


def _mix(digest: bytearray, data: bytes):
    _xor(digest, data)
    digest[:] = _sha1(bytes(digest)).digest()


def _type_code(value) -> int:
    cls = value.__class__
    if cls is bytes or cls is bytearray:
        return 0
    if cls is deque or isinstance(value, deque):
        return 1
    if cls is set or isinstance(value, set):
        return 2
    if cls is dict or isinstance(value, dict):
        return 4
    name = getattr(value, "TYPE_NAME", None)
    if name in _OBJ_TYPES:
        return _OBJ_TYPES[name]
    raise TypeError("no digest for values of type %r" % cls.__name__)


def _score(score: float) -> bytes:
    return b"%.17g" % score


def object_digest(digest: bytearray, value, has_expire: bool):
    code = _type_code(value)
    _mix(digest, code.to_bytes(4, "big"))
    if code == 0:
        _mix(digest, bytes(value))
    elif code == 1:
        for item in value:
            _mix(digest, item)
    elif code == 2:
        for member in value:
            _xor(digest, member)
    elif code == 3:
        for member, score in value:
            ele = bytearray(20)
            _mix(ele, member)
            _mix(ele, _score(score))
            _xor(digest, bytes(ele))
    elif code == 4:
        for field, val in value.items():
            ele = bytearray(20)
            _mix(ele, field)
            _mix(ele, val)
            _xor(digest, bytes(ele))
    elif code == 6:
        for (ms, seq), fields in value.entries.items():
            _mix(digest, b"%d.%d" % (ms, seq))
            for item in fields:
                _mix(digest, item)
    if has_expire:
        _xor(digest, b"!!expire!!")


def key_digest(keyspace, key: bytes) -> str:
    """DEBUG DIGEST-VALUE of one key (expired keys included, as Redis)."""
    digest = bytearray(20)
    value = _raw_lookup(keyspace, key)
    if value is not None:
        object_digest(digest, value, key in keyspace.expires)
    return digest.hex()


def _raw_lookup(keyspace, key: bytes):
    return keyspace.values.get(key)


def dataset_digest(keyspace) -> str:
    final = bytearray(20)
    if not keyspace.count:
        return final.hex()
    _mix(final, (0).to_bytes(4, "big"))
    expires = keyspace.expires
    for key, value in keyspace.items():
        digest = bytearray(20)
        _mix(digest, key)
        object_digest(digest, value, key in expires)
        _xor(final, bytes(digest))
    return final.hex()
