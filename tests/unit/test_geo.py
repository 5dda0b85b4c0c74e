"""Geohash arithmetic (rcluster/types/geohash.py) and the geo commands
(rcluster/commands/geo.py) through a Server on a MemoryReactorClock.
Expected bytes were checked against redis-server 7.0.15; the integration
test (tests/integration/test_geo_sort.py) compares both servers live."""
import math

from twisted.trial.unittest import TestCase

from rcluster.types import geohash
from rcluster.types.geohash import Cell, Shape
from rcluster.zset import ZSet
from tests.protocol.helpers import ServerTestCase, bulks

PALERMO = (b"13.361389", b"38.115556", b"Palermo")
CATANIA = (b"15.087269", b"37.502669", b"Catania")
PALERMO_SCORE = 3479099956230698
CATANIA_SCORE = 3479447370796909
PALERMO_POS = (b"13.36138933897018433", b"38.11555639549629859")
CATANIA_POS = (b"15.08726745843887329", b"37.50266842333162032")


class GeohashTests(TestCase):
    def test_interleave_round_trip(self):
        for x, y in ((0, 0), (1, 0), (0, 1), (0xFFFFFFFF, 0), (12345, 67890),
                     (0xFFFFFFFF, 0xFFFFFFFF), (0xDEADBEEF, 0x12345678)):
            bits = geohash.interleave(x, y)
            self.assertLess(bits, 2**64)
            self.assertEqual(geohash.deinterleave(bits), x | (y << 32))
        self.assertEqual(geohash.interleave(1, 0), 1)
        self.assertEqual(geohash.interleave(0, 1), 2)
        self.assertEqual(geohash.interleave(3, 0), 5)

    def test_scores_of_known_places(self):
        self.assertEqual(geohash.lonlat_to_score(13.361389, 38.115556),
                         PALERMO_SCORE)
        self.assertEqual(geohash.lonlat_to_score(15.087269, 37.502669),
                         CATANIA_SCORE)
        lon, lat = geohash.score_to_lonlat(PALERMO_SCORE)
        self.assertEqual(geohash.format_coordinate(lon), PALERMO_POS[0])
        self.assertEqual(geohash.format_coordinate(lat), PALERMO_POS[1])
        self.assertEqual(geohash.geohash_string(PALERMO_SCORE), b"sqc8b49rny0")
        self.assertEqual(geohash.geohash_string(CATANIA_SCORE), b"sqdtr74hyu0")

    def test_encode_refuses_out_of_range(self):
        self.assertIsNone(geohash.encode(181, 0))
        self.assertIsNone(geohash.encode(0, 86))
        self.assertIsNone(geohash.encode(0, 0, 0))
        self.assertIsNone(geohash.encode(0, 0, 33))
        self.assertEqual(geohash.encode(0, 0, 1), Cell(3, 1))

    def test_odd_scores_decode_without_error(self):
        for score in (-1.0, 2.0**52, 2.0**63, 1e300, -1e300, math.inf,
                      -math.inf, 0.5):
            lon, lat = geohash.score_to_lonlat(score)
            self.assertTrue(-180 <= lon <= 180 and
                            geohash.LAT_MIN <= lat <= geohash.LAT_MAX)

    def test_distance(self):
        palermo = geohash.score_to_lonlat(PALERMO_SCORE)
        catania = geohash.score_to_lonlat(CATANIA_SCORE)
        self.assertEqual(
            geohash.format_distance(geohash.distance(*palermo, *catania)),
            b"166274.1516")
        self.assertEqual(geohash.distance(1, 10, 1, 11),
                         geohash.lat_distance(10, 11))
        self.assertEqual(geohash.format_distance(0.0), b"0.0000")
        self.assertEqual(geohash.format_distance(0.00005), b"0.0000")
        # 0.00015 * 10000 is 1.4999999999999998: llrint gives 1.
        self.assertEqual(geohash.format_distance(0.00015), b"0.0001")
        self.assertEqual(geohash.format_distance(0.00025), b"0.0002")
        self.assertEqual(geohash.format_distance(12.5), b"12.5000")
        self.assertEqual(geohash.format_distance(-1.25), b"-1.2500")

    def test_format_coordinate(self):
        self.assertEqual(geohash.format_coordinate(1.0), b"1")
        self.assertEqual(geohash.format_coordinate(-0.0), b"0")
        self.assertEqual(geohash.format_coordinate(0.5), b"0.5")
        self.assertEqual(geohash.format_coordinate(-1e-20), b"0")
        self.assertEqual(geohash.format_coordinate(0.1),
                         b"0.10000000000000001")

    def test_steps(self):
        self.assertEqual(geohash.estimate_steps(0, 0), 26)
        # 1 m doubles 25 times to pass MERCATOR_MAX: 26 - 2 = 24.
        self.assertEqual(geohash.estimate_steps(1, 0), 24)
        self.assertEqual(geohash.estimate_steps(1, 70), 23)
        self.assertEqual(geohash.estimate_steps(1, -81), 22)
        self.assertEqual(geohash.estimate_steps(1e9, 0), 1)

    def test_search_cells_cover_the_centre(self):
        shape = Shape(lon=15.0, lat=37.0, conversion=1000.0, radius=200.0)
        cells = geohash.search_cells(shape)
        self.assertEqual(len(cells), 9)
        centre = cells[0]
        low, high = geohash.cell_scores(centre)
        score = geohash.lonlat_to_score(15.0, 37.0)
        self.assertTrue(low <= score < high)
        box = Shape(lon=15.0, lat=37.0, conversion=1.0, width=10.0,
                    height=10.0)
        self.assertIsNone(box.contains(15.001, 37.0))
        self.assertIsNotNone(box.contains(15.00001, 37.00001))

    def test_search_limit_and_order(self):
        zs = ZSet({b"a": float(PALERMO_SCORE), b"b": float(CATANIA_SCORE)})
        shape = Shape(lon=15.0, lat=37.0, conversion=1000.0, radius=200.0)
        found = geohash.search(zs, shape)
        self.assertEqual(sorted(p.member for p in found), [b"a", b"b"])
        self.assertEqual(len(geohash.search(zs, shape, limit=1)), 1)


class GeoCommandTests(ServerTestCase):
    def add_sicily(self):
        return self.raw("GEOADD", "Sicily", *PALERMO, *CATANIA)

    def test_geoadd_is_zadd(self):
        self.assertEqual(self.add_sicily(), b":2\r\n")
        self.assertEqual(self.call("ZSCORE", "Sicily", "Palermo"),
                         b"%d" % PALERMO_SCORE)
        self.assertEqual(self.call("TYPE", "Sicily"), b"zset")
        self.assertEqual(self.raw("GEOADD", "Sicily", "CH", *PALERMO[:2],
                                  "Palermo", 1, 2, "new"), b":1\r\n")
        self.assertEqual(self.raw("GEOADD", "Sicily", "CH", "XX", 1, 2,
                                  "Palermo", 1, 2, "newer"), b":1\r\n")
        self.assertEqual(self.raw("GEOADD", "Sicily", "NX", 3, 4,
                                  "Palermo"), b":0\r\n")
        self.assertEqual(self.call("ZCARD", "Sicily"), 3)

    def test_geoadd_errors(self):
        self.assertEqual(self.raw("GEOADD", "k", 181, 0, "x"),
                         b"-ERR invalid longitude,latitude pair "
                         b"181.000000,0.000000\r\n")
        self.assertEqual(self.raw("GEOADD", "k", 0, 85.06, "x"),
                         b"-ERR invalid longitude,latitude pair "
                         b"0.000000,85.060000\r\n")
        self.assertEqual(self.call("GEOADD", "k", "NX", "XX", 1, 2, "x"),
                         "ERR syntax error")
        self.assertEqual(self.call("GEOADD", "k", "NX", 1, 2),
                         "ERR syntax error")
        self.assertEqual(self.call("GEOADD", "k", "CH", "CH", "CH"),
                         "ERR syntax error")
        self.assertEqual(self.call("GEOADD", "k", "GT", 1, 2, "x"),
                         "ERR syntax error")
        self.assertEqual(self.call("GEOADD", "k", "GT", 1, 2),
                         "ERR value is not a valid float")
        self.assertEqual(self.call("GEOADD", "k", 1, 2, "a", 1, 99, "b"),
                         "ERR invalid longitude,latitude pair "
                         "1.000000,99.000000")
        self.assertEqual(self.call("EXISTS", "k"), 0)
        self.call("SET", "s", "x")
        self.assertTrue(self.call("GEOADD", "s", 1, 2, "a").startswith(
            "WRONGTYPE"))

    def test_geopos_geohash_geodist(self):
        self.add_sicily()
        self.assertEqual(self.raw("GEOPOS", "Sicily", "Palermo", "nope"),
                         b"*2\r\n" + bulks(*PALERMO_POS) + b"*-1\r\n")
        self.assertEqual(self.raw("GEOPOS", "nokey", "a"), b"*1\r\n*-1\r\n")
        self.assertEqual(self.raw("GEOHASH", "Sicily", "Palermo", "Catania",
                                  "x"),
                         b"*3\r\n$11\r\nsqc8b49rny0\r\n$11\r\nsqdtr74hyu0\r\n"
                         b"$-1\r\n")
        self.assertEqual(self.call("GEODIST", "Sicily", "Palermo", "Catania"),
                         b"166274.1516")
        self.assertEqual(self.call("GEODIST", "Sicily", "Palermo", "Catania",
                                   "KM"), b"166.2742")
        self.assertEqual(self.call("GEODIST", "Sicily", "Palermo", "Catania",
                                   "mi"), b"103.3182")
        self.assertEqual(self.call("GEODIST", "Sicily", "Palermo", "Catania",
                                   "ft"), b"545518.8700")
        self.assertIsNone(self.call("GEODIST", "Sicily", "Palermo", "x"))
        self.assertIsNone(self.call("GEODIST", "nokey", "Palermo", "x"))
        self.assertEqual(self.call("GEODIST", "Sicily", "a", "b", "yd"),
                         "ERR unsupported unit provided. please use M, KM, "
                         "FT, MI")
        self.assertEqual(self.call("GEODIST", "Sicily", "a", "b", "m", "x"),
                         "ERR syntax error")

    def test_resp3_shapes(self):
        self.add_sicily()
        self.resp3()
        self.assertEqual(self.raw("GEOPOS", "Sicily", "Palermo", "nope"),
                         b"*2\r\n*2\r\n,13.36138933897018433\r\n"
                         b",38.11555639549629859\r\n_\r\n")
        self.assertEqual(self.raw("GEODIST", "Sicily", "Palermo", "Catania"),
                         b"$11\r\n166274.1516\r\n")
        self.assertEqual(self.raw("GEOHASH", "Sicily", "nope"),
                         b"*1\r\n_\r\n")
        self.assertEqual(
            self.raw("GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYRADIUS",
                     100, "km", "WITHCOORD", "WITHDIST"),
            b"*1\r\n*3\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n*2\r\n"
            b",15.08726745843887329\r\n,37.50266842333162032\r\n")

    def test_searches(self):
        self.add_sicily()
        self.assertEqual(
            self.raw("GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYRADIUS",
                     200, "km", "ASC", "WITHCOORD", "WITHDIST", "WITHHASH"),
            b"*2\r\n*4\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n"
            b":3479447370796909\r\n*2\r\n" + bulks(*CATANIA_POS)[4:] +
            b"*4\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n:3479099956230698\r\n"
            b"*2\r\n" + bulks(*PALERMO_POS)[4:])
        self.assertEqual(
            self.call("GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYBOX",
                      400, 400, "km", "DESC"), [b"Palermo", b"Catania"])
        self.assertEqual(
            self.call("GEORADIUS", "Sicily", 15, 37, 200, "km", "COUNT", 1,
                      "WITHDIST"), [[b"Catania", b"56.4413"]])
        self.assertEqual(
            self.call("GEORADIUSBYMEMBER", "Sicily", "Palermo", 100, "km"),
            [b"Palermo"])
        self.assertEqual(
            self.call("GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", 200, "km",
                      "DESC"), [b"Catania", b"Palermo"])
        self.assertEqual(
            self.call("GEORADIUS_RO", "Sicily", 15, 37, 1, "km"), [])
        self.assertEqual(
            self.call("GEOSEARCH", "nokey", "FROMMEMBER", "x", "BYRADIUS", 1,
                      "km"), [])
        self.assertEqual(
            self.call("GEORADIUSBYMEMBER", "nokey", "x", "bad", "km"), [])

    def test_search_errors(self):
        self.add_sicily()
        cases = [
            (("GEORADIUS", "Sicily", 15, 37, 200, "km", "ANY"),
             "ERR the ANY argument requires COUNT argument"),
            (("GEORADIUS", "Sicily", 15, 37, 200, "km", "COUNT", 0),
             "ERR COUNT must be > 0"),
            (("GEORADIUS", "Sicily", 15, 37, 200, "km", "COUNT", "x"),
             "ERR value is not an integer or out of range"),
            (("GEORADIUS", "Sicily", 15, 37, -1, "km"),
             "ERR radius cannot be negative"),
            (("GEORADIUS", "Sicily", 15, 37, "x", "km"),
             "ERR need numeric radius"),
            (("GEORADIUS", "Sicily", 15, 37, 1, "yd"),
             "ERR unsupported unit provided. please use M, KM, FT, MI"),
            (("GEORADIUS", "Sicily", 15, 37, 1, "km", "STORE", "d",
              "WITHDIST"),
             "ERR STORE option in GEORADIUS is not compatible with WITHDIST, "
             "WITHHASH and WITHCOORD options"),
            (("GEORADIUS_RO", "Sicily", 15, 37, 1, "km", "STORE", "d"),
             "ERR syntax error"),
            (("GEORADIUSBYMEMBER", "Sicily", "nope", 1, "km"),
             "ERR could not decode requested zset member"),
            (("GEOSEARCH", "Sicily", "BYBOX", 1, 1, "km", "ASC"),
             "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified "
             "for GEOSEARCH"),
            (("geosearch", "Sicily", "FROMLONLAT", 1, 2, "ASC", "ASC"),
             "ERR exactly one of BYRADIUS and BYBOX can be specified for "
             "geosearch"),
            (("GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMLONLAT",
              1, 2, "BYRADIUS", 1, "km"), "ERR syntax error"),
            (("GEOSEARCH", "Sicily", "FROMLONLAT", 1, 2, "BYRADIUS", 1, "km",
              "BYBOX", 1, 1, "km"), "ERR syntax error"),
            (("GEOSEARCH", "Sicily", "FROMLONLAT", 1, 2, "BYBOX", -1, 1,
              "km"), "ERR height or width cannot be negative"),
            (("GEOSEARCH", "Sicily", "FROMLONLAT", 1, 2, "BYBOX", "w", 1,
              "km"), "ERR need numeric width"),
            (("GEOSEARCH", "Sicily", "FROMLONLAT", 1, 2, "BYBOX", 1, "h",
              "km"), "ERR need numeric height"),
            (("GEOSEARCH", "Sicily", "FROMLONLAT", 1, 2, "BYRADIUS", 1, "km",
              "STORE", "d"), "ERR syntax error"),
            (("GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", 1, 2, "BYRADIUS",
              1, "km", "WITHCOORD"),
             "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH "
             "and WITHCOORD options"),
        ]
        for args, error in cases:
            self.assertEqual(self.call(*args), error, args)
        self.call("SET", "str", "x")
        self.assertTrue(self.call("GEOSEARCH", "str", "FROMLONLAT", 1, 2,
                                  "BYRADIUS", 1, "km").startswith("WRONGTYPE"))

    def test_store(self):
        self.add_sicily()
        self.assertEqual(self.call("GEORADIUS", "Sicily", 15, 37, 200, "km",
                                   "STORE", "d"), 2)
        self.assertEqual(self.call("ZRANGE", "d", 0, -1, "WITHSCORES"),
                         [b"Palermo", b"%d" % PALERMO_SCORE,
                          b"Catania", b"%d" % CATANIA_SCORE])
        self.assertEqual(self.call("GEOSEARCHSTORE", "d", "Sicily",
                                   "FROMLONLAT", 15, 37, "BYRADIUS", 200,
                                   "km", "STOREDIST", "COUNT", 1), 1)
        self.assertEqual(self.call("ZRANGE", "d", 0, -1, "WITHSCORES"),
                         [b"Catania", b"56.441257870158204"])
        self.assertEqual(self.call("OBJECT", "ENCODING", "d"), b"listpack")
        self.assertEqual(self.call("GEOSEARCHSTORE", "d", "Sicily",
                                   "FROMLONLAT", 0, 0, "BYRADIUS", 1, "km"),
                         0)
        self.assertEqual(self.call("EXISTS", "d"), 0)
        self.call("SET", "d", "x")
        self.assertEqual(self.call("GEORADIUSBYMEMBER", "nokey", "m", 1, "km",
                                   "STOREDIST", "d"), 0)
        self.assertEqual(self.call("EXISTS", "d"), 0)

    def test_count_any_ties_follow_redis(self):
        # Equal distances: COUNT sorts with Redis's partial quicksort, so
        # which of the tied members come first is Redis's choice (checked
        # against redis-server 7.0.15).
        args = []
        for i in range(12):
            args += [1, 1, "t%02d" % i]
        self.call("GEOADD", "ties", *args)
        self.assertEqual(
            self.call("GEOSEARCH", "ties", "FROMLONLAT", 1, 1, "BYRADIUS", 10,
                      "km", "COUNT", 3),
            [b"t11", b"t01", b"t02"])
        self.assertEqual(
            len(self.call("GEOSEARCH", "ties", "FROMLONLAT", 1, 1, "BYRADIUS",
                          10, "km", "COUNT", 3, "ANY")), 3)

    def test_propagation(self):
        sent = self.capture_propagation()
        self.call("GEOADD", "g", "CH", *PALERMO)
        self.call("GEOADD", "g", *PALERMO)      # no change: nothing sent
        self.call("GEORADIUS", "g", 13, 38, 100, "km", "STORE", "d")
        self.call("GEOSEARCHSTORE", "d2", "g", "FROMMEMBER", "Palermo",
                  "BYRADIUS", 1, "km", "STOREDIST")
        self.call("GEOSEARCHSTORE", "d3", "nokey", "FROMMEMBER", "Palermo",
                  "BYRADIUS", 1, "km")
        self.assertEqual(sent, [
            [b"zadd", b"g", b"CH", b"%d" % PALERMO_SCORE, b"Palermo"],
            [b"GEORADIUS", b"g", b"13", b"38", b"100", b"km", b"STORE",
             b"d"],
            [b"GEOSEARCHSTORE", b"d2", b"g", b"FROMMEMBER", b"Palermo",
             b"BYRADIUS", b"1", b"km", b"STOREDIST"]])

    def test_watch_sees_geoadd_and_store(self):
        self.assertEqual(self.exec_watching("g", ("PING",), "GEOADD", "g",
                                            *PALERMO), b"*-1\r\n")
        self.assertEqual(self.exec_watching(
            "d", ("PING",), "GEORADIUS", "g", 13, 38, 100, "km", "STORE",
            "d"), b"*-1\r\n")

    def test_copy_of_a_geo_set_is_independent(self):
        self.add_sicily()
        self.assertEqual(self.call("COPY", "Sicily", "copy"), 1)
        self.call("ZREM", "Sicily", "Palermo")
        self.assertEqual(self.call("GEOHASH", "copy", "Palermo"),
                         [b"sqc8b49rny0"])

    def test_command_info(self):
        info = self.call("COMMAND", "INFO", "georadius", "geosearchstore")
        self.assertEqual(info[0][:6], [b"georadius", -6,
                                       [b"write", b"denyoom", b"movablekeys"],
                                       1, 1, 1])
        self.assertEqual(info[1][:6], [b"geosearchstore", -8,
                                       [b"write", b"denyoom"], 1, 2, 1])
        self.assertEqual(self.call("COMMAND", "GETKEYS", "GEORADIUS", "k", 1,
                                   2, 3, "km", "store", "a", "STOREDIST",
                                   "b"), [b"k", b"a", b"b"])
        self.assertEqual(self.call("COMMAND", "GETKEYS", "GEORADIUS", "k", 1,
                                   2, 3, "km", "STORE"), [b"k"])


class GeoFuzzTests(ServerTestCase):
    """Random argument vectors (numbers at the edges: inf, 1e308, -0, hex,
    NaN; keywords in any place) never break a handler: every call gets
    one well-formed reply."""

    TOKENS = [b"0", b"1", b"-1", b"180", b"-180", b"85.05112878", b"90",
              b"inf", b"-inf", b"nan", b"1e308", b"1e-320", b"-0", b"0x10",
              b"", b" 1", b"12345678901234567890", b"m", b"km", b"ft", b"mi",
              b"WITHDIST", b"WITHCOORD", b"WITHHASH", b"ASC", b"DESC",
              b"COUNT", b"ANY", b"STORE", b"STOREDIST", b"FROMMEMBER",
              b"FROMLONLAT", b"BYRADIUS", b"BYBOX", b"BY", b"GET", b"LIMIT",
              b"ALPHA", b"#", b"w_*", b"h_*->f", b"nosort", b"NX", b"XX",
              b"CH", b"g", b"l", b"a", b"b", b"dst"]
    COMMANDS = [b"GEOADD", b"GEOPOS", b"GEODIST", b"GEOHASH", b"GEOSEARCH",
                b"GEOSEARCHSTORE", b"GEORADIUS", b"GEORADIUS_RO",
                b"GEORADIUSBYMEMBER", b"GEORADIUSBYMEMBER_RO", b"SORT",
                b"SORT_RO"]

    def test_random_calls(self):
        import random
        rng = random.Random(11)
        self.call("GEOADD", "g", 1, 1, "a", 2, 2, "b", -179, 84, "c")
        self.call("RPUSH", "l", 3, "a", 1)
        self.call("ZADD", "z", "-inf", "a", "inf", "b", 1e20, "c")
        for _ in range(3000):
            command = rng.choice(self.COMMANDS)
            key = rng.choice([b"g", b"l", b"z", b"nokey"])
            args = [rng.choice(self.TOKENS)
                    for _ in range(rng.randrange(1, 12))]
            reply = self.raw(command, key, *args)
            self.assertTrue(reply[:1] in b"+-:$*_,%~", (command, args))
