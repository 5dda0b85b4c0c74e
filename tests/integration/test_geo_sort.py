"""Geo commands, SORT / SORT_RO and COPY against a real rcluster node,
driven by redis-py, with every expected value taken from Debian's
redis-server 7.0 running the same calls in the same test (no literals):
``same()`` sends one call to both servers and compares the replies
(or the error texts).  Random scenarios (seeded) cover searches all over
the globe, near the poles and the antimeridian, every unit and option,
ties under COUNT, and SORT's patterns.  The cluster-mode test compares
SORT's refusals and key extraction; the interop test moves geo sets both
ways with DUMP / RESTORE.
"""
import random
import time

import redis
from twisted.trial.unittest import TestCase

from tests.integration.harness import have, start_node

GEO = ("GEOADD", "GEOPOS", "GEODIST", "GEOHASH", "GEOSEARCH",
       "GEOSEARCHSTORE", "GEORADIUS", "GEORADIUS_RO", "GEORADIUSBYMEMBER",
       "GEORADIUSBYMEMBER_RO", "SORT", "SORT_RO")
UNITS = {"m": 1, "km": 1000, "mi": 1609.34, "ft": 0.3048}


def raw_client(node, **kwargs):
    """A redis-py client that returns replies as parsed off the wire (no
    response callbacks: GEOPOS keeps Redis's exact digits)."""
    client = node.client(**kwargs)
    client.response_callbacks.clear()
    return client


class Pair:
    """The same client on rcluster (rc) and redis-server (rs)."""

    def __init__(self, test, rc, rs):
        self.test, self.rc, self.rs = test, rc, rs
        self.calls = 0

    def same(self, *args):
        replies = []
        for client in (self.rc, self.rs):
            try:
                replies.append(client.execute_command(*args))
            except redis.ResponseError as e:
                replies.append(("error", str(e)))
        self.calls += 1
        self.test.assertEqual(replies[0], replies[1], args)
        return replies[1]


class DualTestCase(TestCase):
    def setUp(self):
        if not have("redis-server"):
            self.skipTest("redis-server not installed")

    def start_pair(self, **kwargs):
        rc = start_node(self, binary="rcluster", **kwargs)
        rs = start_node(self, binary="redis-server", **kwargs)
        return rc, rs

    def pair(self, rc, rs, **kwargs):
        a, b = raw_client(rc, **kwargs), raw_client(rs, **kwargs)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return Pair(self, a, b)


class GeoSortTests(DualTestCase):
    def setUp(self):
        super().setUp()
        self.rc, self.rs = self.start_pair()
        self.p = self.pair(self.rc, self.rs)
        self.rng = random.Random(20261201)

    # -- geo ----------------------------------------------------------------
    def point(self, near=None):
        rng = self.rng
        if near is None:
            return rng.uniform(-180, 180), rng.uniform(-85.05112878,
                                                       85.05112878)
        lon, lat = near
        return (max(-180, min(180, lon + rng.gauss(0, 0.5))),
                max(-85, min(85, lat + rng.gauss(0, 0.5))))

    def fill_geo(self):
        same = self.p.same
        args = []
        for i in range(400):
            lon, lat = self.point(None if i % 3 == 0 else (2.35, 48.85))
            args += [repr(lon), repr(lat), "m%d" % i]
        self.assertEqual(same("GEOADD", "g", *args), 400)
        self.assertEqual(same("GEOADD", "small", *args[:60]), 20)
        same("GEOADD", "g", 180, 85.05112878, "ne", -180, -85.05112878,
             "sw", 0, 0, "zero", 179.9999, 0, "am1", -179.9999, 0.001, "am2")
        same("OBJECT", "ENCODING", "small")
        same("OBJECT", "ENCODING", "g")

    def test_geoadd_pos_dist_hash(self):
        same = self.p.same
        self.fill_geo()
        same("ZRANGE", "g", 0, 20, "WITHSCORES")
        members = ["m%d" % i for i in range(0, 400, 9)] + [
            "ne", "sw", "zero", "am1", "am2", "nope"]
        same("GEOPOS", "g", *members)
        same("GEOHASH", "g", *members)
        same("GEOPOS", "nokey", "a", "b")
        same("GEOHASH", "nokey", "a")
        for _ in range(30):
            same("GEODIST", "g", "m%d" % self.rng.randrange(400),
                 "m%d" % self.rng.randrange(400),
                 self.rng.choice(list(UNITS) + ["KM", "Mi"]))
        same("GEODIST", "g", "m1", "nope")
        same("GEODIST", "nokey", "m1", "m2")
        # NX / XX / CH and the errors
        same("GEOADD", "g", "NX", "CH", 1, 1, "m1", 2, 2, "fresh")
        same("GEOADD", "g", "XX", "CH", 1, 1, "m1", 2, 2, "fresh2")
        same("GEOADD", "g", "XX", 1, 1, "m2")
        same("GEOADD", "g", "CH", 1, 1, "m2", 3, 3, "m3")
        same("GEOPOS", "g", "m1", "m2", "m3", "fresh", "fresh2")
        for args in (("NX", "XX", 1, 1, "a"), ("NX", 1, 2), ("GT", 1, 2, "a"),
                     ("GT", 1, 2), (181, 0, "a"), (0, 85.06, "a"),
                     (1, 2, "a", "x", 2, "b"), ("CH", "CH", "CH"),
                     (1, "1e400", "a")):
            same("GEOADD", "e", *args)
        same("EXISTS", "e")
        same("SET", "str", "x")
        for cmd in (("GEOADD", "str", 1, 2, "a"), ("GEOPOS", "str", "a"),
                    ("GEODIST", "str", "a", "b"), ("GEOHASH", "str", "a"),
                    ("GEOSEARCH", "str", "FROMLONLAT", 1, 2, "BYRADIUS", 1,
                     "km")):
            same(*cmd)
        same("GEODIST", "g", "m1", "m2", "yd")
        same("GEODIST", "g", "m1", "m2", "km", "x")
        # odd scores put there by ZADD decode as Redis decodes them
        same("ZADD", "w", 0, "a", -1, "b", 2**52, "c", 2**53 + 2, "d", 1e20,
             "e", "-inf", "f", "inf", "g", 4503599627370495.5, "h", 123.7,
             "i")
        same("GEOPOS", "w", *"abcdefghi")
        same("GEOHASH", "w", *"abcdefghi")
        same("GEOSEARCH", "w", "FROMMEMBER", "b", "BYRADIUS", 100000, "km",
             "WITHCOORD", "WITHHASH", "WITHDIST")

    def search_options(self):
        rng = self.rng
        opts = rng.sample(["WITHDIST", "WITHCOORD", "WITHHASH", "ASC",
                           "DESC"], rng.randrange(4))
        if rng.random() < 0.35:
            opts += ["COUNT", rng.randrange(1, 25)]
            if rng.random() < 0.3:
                opts.append("ANY")
        return opts

    def test_searches(self):
        same = self.p.same
        rng = self.rng
        self.fill_geo()
        for _ in range(120):
            key = rng.choice(["g", "small"])
            lon, lat = self.point(rng.choice([None, (2.35, 48.85)]))
            if rng.random() < 0.1:
                lat = rng.choice([84.9, -84.9, 70, -70, 81, -81, 0.0])
            if rng.random() < 0.05:
                lon = rng.choice([179.99, -179.99])
            unit = rng.choice(list(UNITS))
            radius = 10 ** rng.uniform(1, 7.3) / UNITS[unit]
            opts = self.search_options()
            if rng.random() < 0.5:
                same("GEOSEARCH", key, "FROMLONLAT", repr(lon), repr(lat),
                     "BYRADIUS", repr(radius), unit, *opts)
                same("GEORADIUS", key, repr(lon), repr(lat), repr(radius),
                     unit, *opts)
                same("GEORADIUS_RO", key, repr(lon), repr(lat),
                     repr(radius), unit.upper(), *opts)
            else:
                same("GEOSEARCH", key, "FROMLONLAT", repr(lon), repr(lat),
                     "BYBOX", repr(radius), repr(radius * rng.uniform(0.1, 4)),
                     unit, *opts)
            member = "m%d" % rng.randrange(60)
            if rng.random() < 0.3:
                same("GEOSEARCH", key, "FROMMEMBER", member, "BYBOX",
                     repr(radius), repr(radius), unit, *opts)
                same("GEORADIUSBYMEMBER", key, member, repr(radius), unit,
                     *opts)
                same("GEORADIUSBYMEMBER_RO", key, member, repr(radius), unit,
                     *opts)
        # RESP3: coordinates are doubles there
        p3 = self.pair(self.rc, self.rs, protocol=3)
        p3.same("GEOPOS", "g", "m1", "m2", "nope")
        p3.same("GEOSEARCH", "g", "FROMLONLAT", 2.3, 48.8, "BYRADIUS", 20,
                "km", "WITHCOORD", "WITHDIST", "WITHHASH", "ASC")
        p3.same("GEODIST", "g", "m1", "m2")
        p3.same("GEOHASH", "g", "m1", "nope")

    def test_search_ties_stores_and_errors(self):
        same = self.p.same
        rng = self.rng
        args = []
        for i in range(90):
            lon, lat = rng.choice([(1.0, 1.0), (1.001, 1.0), (1.0, 1.002)])
            args += [lon, lat, "t%03d" % i]
        same("GEOADD", "ties", *args)
        for count in (1, 3, 10, 45, 89, 200):
            for extra in ((), ("DESC",), ("ANY",), ("ANY", "ASC")):
                same("GEOSEARCH", "ties", "FROMLONLAT", 1, 1, "BYRADIUS",
                     1000, "km", "COUNT", count, *extra)
        same("GEOSEARCH", "ties", "FROMLONLAT", 1, 1, "BYRADIUS", 1000, "km",
             "DESC", "WITHDIST")
        # stores
        stores = [
            ("GEORADIUS", "ties", 1, 1, 500, "m", "STORE", "d"),
            ("GEORADIUS", "ties", 1, 1, 500, "m", "STOREDIST", "d", "COUNT",
             5),
            ("GEORADIUS", "ties", 1, 1, 500, "m", "STORE", "x", "STOREDIST",
             "d", "COUNT", 5, "DESC"),
            ("GEORADIUSBYMEMBER", "ties", "t001", 50, "km", "STORE", "d"),
            ("GEORADIUSBYMEMBER", "ties", "t001", 50, "km", "STOREDIST", "d",
             "COUNT", 2, "ANY"),
            ("GEOSEARCHSTORE", "d", "ties", "FROMLONLAT", 1, 1, "BYBOX", 1,
             1, "km"),
            ("GEOSEARCHSTORE", "d", "ties", "FROMMEMBER", "t002", "BYRADIUS",
             1, "mi", "STOREDIST", "COUNT", 7),
            ("GEOSEARCHSTORE", "d", "ties", "FROMLONLAT", 50, 50, "BYRADIUS",
             1, "m"),
            ("GEOSEARCHSTORE", "d", "nokey", "FROMLONLAT", 1, 1, "BYRADIUS",
             1, "m"),
            ("GEORADIUS", "nokey", 1, 1, 1, "m", "STORE", "d"),
        ]
        for store in stores:
            same("SET", "d", "old")
            same(*store)
            same("TYPE", "d")
            same("ZRANGE", "d", 0, -1, "WITHSCORES")
            same("OBJECT", "ENCODING", "d")
            same("TTL", "d")
        errors = [
            ("GEORADIUS", "ties", 1, 1, 1, "km", "ANY"),
            ("GEORADIUS", "ties", 1, 1, 1, "km", "COUNT", 0),
            ("GEORADIUS", "ties", 1, 1, 1, "km", "COUNT", -3),
            ("GEORADIUS", "ties", 1, 1, 1, "km", "COUNT", "x"),
            ("GEORADIUS", "ties", 1, 1, 1, "km", "COUNT"),
            ("GEORADIUS", "ties", 1, 1, -1, "km"),
            ("GEORADIUS", "ties", 1, 1, "x", "km"),
            ("GEORADIUS", "ties", 1, 1, 1, "yd"),
            ("GEORADIUS", "ties", 181, 1, 1, "km"),
            ("GEORADIUS", "ties", "x", 1, 1, "km"),
            ("GEORADIUS", "ties", 1, 1, 1, "km", "STORE", "d", "WITHHASH"),
            ("GEORADIUS", "ties", 1, 1, 1, "km", "STORE"),
            ("GEORADIUS", "ties", 1, 1, 1, "km", "FROMMEMBER", "x"),
            ("GEORADIUS_RO", "ties", 1, 1, 1, "km", "STORE", "d"),
            ("GEORADIUSBYMEMBER_RO", "ties", "t001", 1, "km", "STOREDIST",
             "d"),
            ("GEORADIUSBYMEMBER", "ties", "nope", 1, "km"),
            ("GEORADIUSBYMEMBER", "nokey", "nope", "x", "km"),
            ("GEOSEARCH", "ties", "BYBOX", 1, 1, "km", "ASC"),
            ("geosearch", "ties", "FROMLONLAT", 1, 2, "ASC", "ASC"),
            ("GEOSEARCH", "ties", "FROMMEMBER", "t001", "FROMLONLAT", 1, 2,
             "BYRADIUS", 1, "km"),
            ("GEOSEARCH", "ties", "FROMMEMBER", "nope", "BYRADIUS", 1, "km"),
            ("GEOSEARCH", "nokey", "FROMMEMBER", "nope", "BYRADIUS", 1, "km"),
            ("GEOSEARCH", "ties", "FROMLONLAT", 1, 2, "BYRADIUS", 1, "km",
             "BYBOX", 1, 1, "km"),
            ("GEOSEARCH", "ties", "FROMLONLAT", 1, 2, "BYBOX", -1, 1, "km"),
            ("GEOSEARCH", "ties", "FROMLONLAT", 1, 2, "BYBOX", "w", 1, "km"),
            ("GEOSEARCH", "ties", "FROMLONLAT", 1, 2, "BYBOX", 1, "h", "km"),
            ("GEOSEARCH", "ties", "FROMLONLAT", 1, 2, "BYBOX", 1, 1, "lb"),
            ("GEOSEARCH", "ties", "FROMLONLAT", 1, 2, "BYRADIUS", 1, "km",
             "STOREDIST"),
            ("GEOSEARCH", "ties", "FROMLONLAT", 1, 2, "BYRADIUS", 1, "km",
             "STORE", "d"),
            ("GEOSEARCHSTORE", "d", "ties", "FROMLONLAT", 1, 2, "BYRADIUS",
             1, "km", "WITHDIST"),
            ("GEOSEARCHSTORE", "d", "ties", "FROMLONLAT", 1, 2, "BYRADIUS",
             1, "km", "STORE", "x"),
            ("GEOSEARCH", "ties", "FROMLONLAT", 1, 2, "BYRADIUS", 1),
        ]
        for args in errors:
            same(*args)
        # extreme sizes: libm's NaNs and infinities, as C computes them
        same("GEOADD", "x", 1, 1, "a", 1.0001, 1, "b", -179, -80, "c")
        for args in (
                ("GEORADIUS", "x", 1, 1, "inf", "km", "WITHDIST"),
                ("GEORADIUS", "x", 1, 1, "1e308", "km", "WITHDIST"),
                ("GEORADIUS", "x", 1, 1, "1e-300", "m", "WITHDIST"),
                ("GEORADIUS", "x", 1, 1, "1e-400", "m"),
                ("GEORADIUS", "x", "0x1", "1", 1, "km"),
                ("GEORADIUS", "x", 1, 1, 1, "km", "COUNT",
                 9223372036854775807),
                ("GEORADIUS", "x", 1, 1, 1, "km", "COUNT",
                 9223372036854775808),
                ("GEOSEARCH", "x", "FROMLONLAT", 1, 1, "BYBOX", "inf", "inf",
                 "km", "WITHDIST"),
                ("GEOSEARCH", "x", "FROMLONLAT", 1, 1, "BYBOX", "1e308",
                 "1e308", "km", "COUNT", 1, "ANY"),
                ("GEOSEARCH", "x", "FROMLONLAT", "-0", "-0.0", "BYRADIUS",
                 "1e9", "km", "WITHCOORD"),
                ("GEOSEARCH", "x", "FROMMEMBER", "a", "BYRADIUS", 0, "m",
                 "WITHDIST"),
                ("GEOSEARCH", "x", "FROMMEMBER", "a", "BYBOX", 0, 0, "m",
                 "WITHDIST"),
                ("GEOSEARCH", "x", "FROMLONLAT", 180, 85.05112878,
                 "BYRADIUS", 20000, "km"),
                ("GEODIST", "x", "a", "c", "mi")):
            same(*args)
        for name in GEO:
            same("COMMAND", "INFO", name)
        for args in (
                ("GEORADIUS", "a", 1, 2, 3, "km", "STORE", "x", "STOREDIST",
                 "y"),
                ("GEORADIUS", "a", 1, 2, 3, "km", "STORE"),
                ("GEORADIUSBYMEMBER", "a", "m", 3, "km", "store", "x"),
                ("GEOSEARCHSTORE", "a", "b", "FROMMEMBER", "m", "BYRADIUS",
                 3, "km"),
                ("SORT", "a", "STORE", "b", "LIMIT", 0, 1, "STORE", "c"),
                ("SORT", "a", "BY", "store", "GET", "store"),
                ("SORT_RO", "a", "STORE", "x")):
            same("COMMAND", "GETKEYS", *args)
            same("COMMAND", "GETKEYSANDFLAGS", *args)

    # -- SORT ---------------------------------------------------------------
    def test_sort(self):
        same = self.p.same
        rng = self.rng
        same("RPUSH", "l", 3, 1, 2, 10, -5, 1.5, 3)
        for element in (3, 1, 2, 10, -5, 1.5):
            same("SET", f"w_{element}", rng.randrange(4))
            same("HSET", f"h_{element}", "f", rng.choice("abc"), "n",
                 rng.randrange(100))
            same("SET", f"o_{element}", f"obj{element}")
        calls = [
            (), ("DESC",), ("ALPHA",), ("ALPHA", "DESC"), ("LIMIT", 1, 3),
            ("LIMIT", -1, 3), ("LIMIT", 2, -1), ("LIMIT", 100, 2),
            ("LIMIT", 0, 0), ("BY", "nosort"), ("BY", "nosort", "DESC"),
            ("BY", "nosort", "LIMIT", 1, 2, "DESC"), ("BY", "w_*"),
            ("BY", "w_*", "DESC", "LIMIT", 1, 3), ("BY", "h_*->f", "ALPHA"),
            ("BY", "h_*->f", "ALPHA", "DESC", "LIMIT", 1, 3),
            ("BY", "h_*->n", "GET", "#", "GET", "o_*", "GET", "h_*->f",
             "GET", "missing_*"),
            ("BY", "missing_*", "ALPHA"), ("BY", "missing_*"),
            ("BY", "h_*->", "GET", "h_*->"), ("GET", "fixed"),
            ("GET",), ("LIMIT", 1), ("LIMIT", "a", 1), ("FOO",),
            ("ASC", "DESC", "ASC"),
        ]
        for args in calls:
            same("SORT", "l", *args)
            same("SORT_RO", "l", *args)
        for args in ((), ("GET", "o_*", "GET", "#"), ("BY", "w_*", "LIMIT", 0,
                                                      0),
                     ("BY", "nosort", "DESC"), ("ALPHA", "LIMIT", 2, 2)):
            same("SORT", "l", *args, "STORE", "dst")
            same("LRANGE", "dst", 0, -1)
        same("SORT", "nokey", "STORE", "dst")
        same("EXISTS", "dst")
        same("SORT_RO", "l", "STORE", "dst")
        # sets and sorted sets
        same("SADD", "s", 5, 3, 9, 1, 12)
        same("SORT", "s")
        same("SORT", "s", "BY", "nosort")
        same("SADD", "sa", "b", "a", "c", "aa")
        same("SORT", "sa", "ALPHA", "DESC")
        same("SORT", "sa", "BY", "nosort", "STORE", "d3")
        same("LRANGE", "d3", 0, -1)
        same("ZADD", "z", 1, "30", 2, "4", 3, "100", 4, "2")
        same("OBJECT", "ENCODING", "z")
        same("SORT_RO", "z")
        same("OBJECT", "ENCODING", "z")
        same("SORT", "z", "BY", "nosort", "DESC", "LIMIT", 1, 2)
        same("SORT", "z", "ALPHA", "DESC")
        # numbers as strtod reads them; errors
        same("RPUSH", "n", " 1", "0x10", "1e3", "inf", "-inf", "", "3")
        same("SORT", "n")
        for bad in ("1 ", "nan", "1e400", "1e-400", "1e-320", "x"):
            same("DEL", "m")
            same("RPUSH", "m", bad)
            same("SORT", "m")
            same("SORT", "m", "STORE", "dst2")
            same("EXISTS", "dst2")
        same("SET", "str", 1)
        same("SORT", "str")
        same("SORT", "str", "FOO")
        # ties under LIMIT: Redis's partial quicksort decides
        same("RPUSH", "big", *[str(rng.randrange(40)) for _ in range(250)])
        for i in range(40):
            same("SET", f"k{i}", rng.choice(["x", "y", "z", "1", "2"]))
        for start, count in ((0, 10), (5, 30), (100, 50), (0, 249),
                             (240, 100)):
            same("SORT", "big", "BY", "k*", "ALPHA", "LIMIT", start, count)
            same("SORT", "big", "BY", "k*", "ALPHA", "DESC", "LIMIT", start,
                 count)
            same("SORT", "big", "BY", "k*", "LIMIT", start, count, "GET", "#",
                 "GET", "k*")
        same("SORT", "big", "BY", "k*", "ALPHA")
        # From a script a set sorted BY nosort is sorted ALPHA; geo replies
        # convert to Lua (RESP2 and RESP3) as Redis's do.
        same("SADD", "sc", "b", "a", "c", "10", "x1")
        same("EVAL", "return redis.call('sort', KEYS[1], 'by', 'nosort')", 1,
             "sc")
        same("EVAL", "return redis.call('sort_ro', KEYS[1], 'by', 'nosort',"
             " 'desc')", 1, "sc")
        same("GEOADD", "{sc}g", 1, 2, "a")
        for resp in ("", "redis.setresp(3); "):
            same("EVAL", resp + "return redis.call('geopos', KEYS[1], 'a', "
                 "'b')", 1, "{sc}g")
            same("EVAL", resp + "return redis.call('geosearch', KEYS[1], "
                 "'fromlonlat', 1, 2, 'byradius', 10, 'km', 'withcoord', "
                 "'withdist', 'withhash')", 1, "{sc}g")

    def test_watch(self):
        """WATCH sees the key a SORT / GEO* STORE writes, not the one it
        reads; GEOADD touches its key."""
        def outcome(node, watched, *write):
            with node.client() as a, node.client() as b:
                a.rpush("l", 2, 1)
                a.geoadd("g", (1, 2, "m"))
                pipe = a.pipeline()
                pipe.watch(watched)
                b.execute_command(*write)
                pipe.multi()
                pipe.ping()
                try:
                    return pipe.execute()
                except redis.WatchError:
                    return "aborted"
                finally:
                    a.flushall()
        for watched, write in (
                ("l", ("SORT", "l", "STORE", "d")),
                ("d", ("SORT", "l", "STORE", "d")),
                ("g", ("GEOADD", "g", 3, 4, "n")),
                ("g", ("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", 1, 2,
                       "BYRADIUS", 1, "km")),
                ("d", ("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", 1, 2,
                       "BYRADIUS", 1, "km")),
                ("d", ("GEORADIUS", "g", 1, 2, 1, "km", "STORE", "d"))):
            self.assertEqual(outcome(self.rc, watched, *write),
                             outcome(self.rs, watched, *write),
                             (watched, write))

    def test_copy_every_type(self):
        same = self.p.same
        same("GEOADD", "src:geo", 13.361389, 38.115556, "Palermo")
        same("RPUSH", "src:list", "a", "b")
        same("HSET", "src:hash", "f", "v")
        same("SADD", "src:set", "m")
        same("SET", "src:str", "v")
        same("SETBIT", "src:bits", 7, 1)
        same("PFADD", "src:hll", "a", "b")
        same("XADD", "src:stream", "1-1", "f", "v")
        for kind in ("geo", "list", "hash", "set", "str", "bits", "hll",
                     "stream"):
            same("COPY", f"src:{kind}", f"dst:{kind}")
            same("TYPE", f"dst:{kind}")
            same("DUMP", f"dst:{kind}")
        same("SETBIT", "src:bits", 0, 1)
        same("GET", "dst:bits")
        same("GEOADD", "src:geo", 15.087269, 37.502669, "Catania")
        same("GEOPOS", "dst:geo", "Palermo", "Catania")


class ClusterModeTests(DualTestCase):
    def test_sort_patterns_refused(self):
        rc, rs = self.start_pair(cluster=True)
        p = self.pair(rc, rs)
        for client in (p.rc, p.rs):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        for node in (rc, rs):
            client = node.client()
            self.addCleanup(client.close)
            for _ in range(200):
                if client.cluster("info")["cluster_state"] == "ok":
                    break
                time.sleep(0.05)
        p.same("RPUSH", "l", 3, 1, 2)
        for args in (("BY", "w_*"), ("GET", "#"), ("BY", "nosort"),
                     ("BY", "nosort", "GET", "x"), ("BY", "w_*", "GET", "#"),
                     ("ALPHA", "DESC")):
            p.same("SORT", "l", *args)
            p.same("SORT_RO", "l", *args)
        p.same("SORT", "l", "STORE", "{l}dst")
        p.same("LRANGE", "{l}dst", 0, -1)
        p.same("GEOADD", "{l}g", 1, 2, "a")
        p.same("GEOSEARCHSTORE", "{l}d", "{l}g", "FROMLONLAT", 1, 2,
               "BYRADIUS", 1, "km")
        p.same("COMMAND", "GETKEYS", "SORT", "l", "STORE", "x")


class DumpRestoreInteropTests(DualTestCase):
    def test_geo_sets_both_ways(self):
        rc, rs = self.start_pair()
        p = self.pair(rc, rs)
        rng = random.Random(9)
        args = []
        for i in range(300):
            args += [repr(rng.uniform(-180, 180)), repr(rng.uniform(-85, 85)),
                     f"p{i}"]
        # A small geo set (listpack) and a big one (skiplist), both ways.
        for key, count in (("small", 20), ("big", 300)):
            p.same("GEOADD", key, *args[:3 * count])
            for source, target in ((p.rc, p.rs), (p.rs, p.rc)):
                payload = source.execute_command("DUMP", key)
                target.execute_command("RESTORE", f"{key}:moved", 0, payload,
                                       "REPLACE")
            p.same("OBJECT", "ENCODING", f"{key}:moved")
            p.same("GEOPOS", f"{key}:moved", "p0", "p7", "p19")
            p.same("GEOSEARCH", f"{key}:moved", "FROMLONLAT", 0, 0,
                   "BYRADIUS", 5000, "km", "WITHCOORD", "WITHDIST", "ASC")
            p.same("ZRANGE", f"{key}:moved", 0, -1, "WITHSCORES")
