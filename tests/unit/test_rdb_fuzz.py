"""Property tests of the RDB codec: random values of every type round-trip
through DUMP payloads and files (any chunking), and mutated payloads or
files raise RdbError and nothing else."""
from __future__ import annotations

from collections import deque
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from rcluster.persistence import rdb
from rcluster.persistence.crc64 import crc64
from rcluster.persistence.rdb import (Entry, RdbError, RdbReader, RdbWriter,
                                      dump_payload, load_payload)
from rcluster.zset import ZSet

FAST = hsettings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])

ints = st.integers(-2**63, 2**63 - 1).map(lambda v: b"%d" % v)
small = st.one_of(st.binary(max_size=30), ints,
                  st.sampled_from([b"", b"0", b"-0", b"007", b"x" * 70]))
elements = st.one_of(small, st.binary(min_size=60, max_size=300))
scores = st.one_of(st.floats(allow_nan=False),
                   st.integers(-2**53, 2**53).map(float))

strings = elements
lists = st.lists(elements, min_size=1, max_size=40).map(deque)
hashes = st.dictionaries(small, elements, min_size=1, max_size=30)
sets = st.one_of(st.sets(ints, min_size=1, max_size=30),
                 st.sets(small, min_size=1, max_size=30))
zsets = st.tuples(st.dictionaries(small, scores, min_size=1, max_size=30),
                  st.booleans()).map(lambda t: ZSet(t[0], compact=t[1]))
values = st.one_of(strings, lists, hashes, sets, zsets)

config = st.builds(
    lambda c, n, f: SimpleNamespace(
        rdbcompression=c, rdbchecksum=True, hash_max_listpack_entries=n,
        hash_max_listpack_value=64, list_max_listpack_size=f,
        set_max_intset_entries=n, zset_max_listpack_entries=128,
        zset_max_listpack_value=64),
    st.booleans(), st.sampled_from([0, 4, 512]),
    st.sampled_from([-2, -1, 1, 5]))


def equal(a, b) -> bool:
    if isinstance(a, ZSet):
        return isinstance(b, ZSet) and list(a) == list(b)
    if isinstance(a, deque):
        return isinstance(b, deque) and list(a) == list(b)
    return a == b


class RoundTripTests(TestCase):
    @FAST
    @given(values, config)
    def test_payload_round_trip(self, value, cfg):
        back = load_payload(dump_payload(value, cfg))
        self.assertTrue(equal(value, back), (value, back))

    @FAST
    @given(st.lists(st.tuples(small, values), min_size=1, max_size=8,
                    unique_by=lambda kv: kv[0]),
           st.integers(1, 50), config)
    def test_file_round_trip(self, items, chunk, cfg):
        w = RdbWriter(cfg)
        data = w.header([(b"redis-ver", b"7.0.15")]) + w.select_db(
            0, len(items), 0)
        for key, value in items:
            data += w.entry(key, value)
        data += w.footer()
        reader = RdbReader()
        records = []
        for i in range(0, len(data), chunk):
            records += reader.feed(data[i:i + chunk])
        reader.finish()
        got = [(r.key, r.value) for r in records if isinstance(r, Entry)]
        self.assertEqual([k for k, _ in got], [k for k, _ in items])
        for (_, a), (_, b) in zip(items, got):
            self.assertTrue(equal(a, b))


def _refresh_crc(payload: bytes) -> bytes:
    body = payload[:-8]
    return body + crc64(body).to_bytes(8, "little")


class MutationTests(TestCase):
    @FAST
    @given(values, st.data())
    def test_mutated_payloads_raise_only_rdberror(self, value, data):
        payload = bytearray(dump_payload(value))
        body_len = len(payload) - 10
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, max(body_len - 1, 0)))
            payload[pos] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, body_len))
        if data.draw(st.booleans()):
            payload = payload[:cut] + payload[body_len:]
        payload = _refresh_crc(bytes(payload))
        try:
            load_payload(payload)
        except RdbError:
            pass

    @FAST
    @given(st.lists(st.tuples(small, values), min_size=1, max_size=4),
           st.data())
    def test_mutated_files_raise_only_rdberror(self, items, data):
        w = RdbWriter(rdb.DEFAULTS)
        out = bytearray(w.header([(b"a", 1)]) + w.select_db(0, 1, 0))
        for key, value in items:
            out += w.entry(key, value, 123)
        out += w.footer()
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, len(out) - 1))
            out[pos] = data.draw(st.integers(0, 255))
        out = out[:data.draw(st.integers(0, len(out)))]
        reader = RdbReader()
        try:
            reader.feed(bytes(out))
            reader.finish()
        except RdbError:
            pass

    @FAST
    @given(st.binary(max_size=200), st.integers(0, 255))
    def test_random_bodies(self, body, rdb_type):
        data = bytes((rdb_type,)) + body + b"\x0a\x00"
        try:
            load_payload(data + crc64(data).to_bytes(8, "little"))
        except RdbError:
            pass
