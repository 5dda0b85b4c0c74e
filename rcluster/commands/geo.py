"""Geo commands (Redis's geo.c): GEOADD, GEOPOS, GEODIST, GEOHASH,
GEOSEARCH, GEOSEARCHSTORE and the deprecated GEORADIUS family.

A geo set is a plain sorted set (``rcluster.zset.ZSet``) whose scores are
52-bit geohashes; the arithmetic lives in ``rcluster.types.geohash``.
GEOADD is ZADD with computed scores, and propagates as that ZADD, as
Redis does (replaceClientCommandVector).  Replies print numbers as Redis
does: coordinates "%.17Lf" with trailing zeros cut (RESP3 doubles),
distances with 4 decimals (bulk strings, in RESP3 too).
"""
from __future__ import annotations

import re

from rcluster.commands import zsets
from rcluster.commands.common import (NOT_INT, SYNTAX, parse_float,
                                      parse_int, propagate_as, read,
                                      store_result)
from rcluster.commands.sort import pqsort
from rcluster.commands.table import CommandError, KeySpec, command, key_range
from rcluster.notify import GENERIC, ZSET, notify
from rcluster.resp.codec import EMPTY_ARRAY, NULL_ARRAY, Raw
from rcluster.types import geohash
from rcluster.types.geohash import Shape
from rcluster.zset import ZSet

_G = dict(group="geo")
BAD_MEMBER = "ERR could not decode requested zset member"
BAD_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
_SEARCH_COMPLEXITY = (
    "O(N+log(M)) where N is the number of elements in the grid-aligned "
    "bounding box area around the shape provided as the filter and M is "
    "the number of items inside the shape")
_RADIUS_COMPLEXITY = (
    "O(N+log(M)) where N is the number of elements inside the bounding box "
    "of the circular area delimited by center and radius and M is the "
    "number of items inside the index.")
_ANY = ("6.2.0", "Added the `ANY` option for `COUNT`.")
_UPPER = ("7.0.0", "Added support for uppercase unit names.")


# -- arguments --------------------------------------------------------------

# Plain decimals parse the same with float() as with strtod (no hex, inf,
# spaces or underscores; too short to overflow): the fast path.
_PLAIN = re.compile(rb"-?[0-9]{1,12}(?:\.[0-9]{1,20})?\Z")


def parse_lonlat(lon: bytes, lat: bytes):
    """extractLongLatOrReply: two doubles inside Redis's limits."""
    plain = _PLAIN.match
    x = float(lon) if plain(lon) else parse_float(lon)
    y = float(lat) if plain(lat) else parse_float(lat)
    if x < geohash.LONG_MIN or x > geohash.LONG_MAX or \
            y < geohash.LAT_MIN or y > geohash.LAT_MAX:
        raise CommandError("ERR invalid longitude,latitude pair %f,%f"
                           % (x, y))
    return x, y


def parse_unit(arg: bytes) -> float:
    """extractUnitOrReply: metres per unit."""
    conversion = geohash.UNITS.get(arg.lower())
    if conversion is None:
        raise CommandError(BAD_UNIT)
    return conversion


def _parse_radius(shape: Shape, radius: bytes, unit: bytes):
    value = parse_float(radius, "ERR need numeric radius")
    if value < 0:
        raise CommandError("ERR radius cannot be negative")
    shape.radius = value
    shape.conversion = parse_unit(unit)


def _parse_box(shape: Shape, width: bytes, height: bytes, unit: bytes):
    w = parse_float(width, "ERR need numeric width")
    h = parse_float(height, "ERR need numeric height")
    if h < 0 or w < 0:
        raise CommandError("ERR height or width cannot be negative")
    shape.width, shape.height = w, h
    shape.radius = None
    shape.conversion = parse_unit(unit)


def _member_lonlat(zs: ZSet, member: bytes):
    score = zs.score(member)
    if score is None:
        raise CommandError(BAD_MEMBER)
    return geohash.score_to_lonlat(score)


# -- replies ------------------------------------------------------------------

def coordinate(c, value: float):
    """addReplyHumanLongDouble: a bulk string in RESP2, a double in RESP3."""
    text = geohash.format_coordinate(value)
    return Raw(b",%s\r\n" % text) if c.resp3 else text


def _position(c, lon: float, lat: float) -> list:
    return [coordinate(c, lon), coordinate(c, lat)]


# -- GEOADD -------------------------------------------------------------------

@command("geoadd", -5, "write denyoom", keys=(1, 1, 1, "RW update"),
         summary="Add one or more geospatial items in the geospatial index "
                 "represented using a sorted set", since="3.2.0",
         complexity="O(log(N)) for each item added, where N is the number of "
                    "elements in the sorted set.",
         history=(("6.2.0", "Added the `CH`, `NX` and `XX` options."),), **_G)
def geoadd(c, argv):
    first = 2
    nx = xx = False
    while first < len(argv):
        option = argv[first].lower()
        if option == b"nx":
            nx = True
        elif option == b"xx":
            xx = True
        elif option != b"ch":
            break
        first += 1
    if (len(argv) - first) % 3 or (nx and xx):
        raise CommandError(SYNTAX)
    if first == len(argv):      # ZADD with no pairs
        raise CommandError(SYNTAX)
    to_score = geohash.lonlat_to_score
    pairs = [(float(to_score(*parse_lonlat(argv[i], argv[i + 1]))),
              argv[i + 2]) for i in range(first, len(argv), 3)]
    flags = {arg.lower() for arg in argv[2:first]} if first > 2 else ()
    reply = zsets.zadd_pairs(c, argv[1], pairs, flags)
    if c.server.write_path.active:      # (the ZADD form only when it's used)
        zadd_argv = [b"zadd", *argv[1:first]]
        for score, member in pairs:
            zadd_argv += (b"%d" % score, member)
        propagate_as(c, zadd_argv)
    return reply


# -- GEOPOS, GEODIST, GEOHASH -------------------------------------------------

@command("geopos", -2, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Returns longitude and latitude of members of a geospatial "
                 "index", since="3.2.0",
         complexity="O(N) where N is the number of members requested.", **_G)
def geopos(c, argv):
    zs = read(c, argv[1], ZSet)
    out = []
    for member in argv[2:]:
        score = None if zs is None else zs.score(member)
        if score is None:
            out.append(NULL_ARRAY)
        else:
            out.append(_position(c, *geohash.score_to_lonlat(score)))
    return out


@command("geodist", -4, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Returns the distance between two members of a geospatial "
                 "index", since="3.2.0", complexity="O(log(N))", **_G)
def geodist(c, argv):
    conversion = 1.0
    if len(argv) == 5:
        conversion = parse_unit(argv[4])
    elif len(argv) > 5:
        raise CommandError(SYNTAX)
    zs = read(c, argv[1], ZSet)
    if zs is None:
        return None
    score1, score2 = zs.score(argv[2]), zs.score(argv[3])
    if score1 is None or score2 is None:
        return None
    lon1, lat1 = geohash.score_to_lonlat(score1)
    lon2, lat2 = geohash.score_to_lonlat(score2)
    return geohash.format_distance(
        geohash.distance(lon1, lat1, lon2, lat2) / conversion)


@command("geohash", -2, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Returns members of a geospatial index as standard geohash "
                 "strings", since="3.2.0",
         complexity="O(log(N)) for each member requested, where N is the "
                    "number of elements in the sorted set.", **_G)
def geohash_(c, argv):
    zs = read(c, argv[1], ZSet)
    out = []
    for member in argv[2:]:
        score = None if zs is None else zs.score(member)
        out.append(None if score is None else geohash.geohash_string(score))
    return out


# -- the searches (georadiusGeneric) -----------------------------------------

COORDS, MEMBER, NOSTORE, SEARCH, SEARCHSTORE = 1, 2, 4, 8, 16


class _Query:
    __slots__ = ("shape", "withdist", "withhash", "withcoord", "any",
                 "count", "sort", "store", "storedist", "from_member",
                 "from_lonlat", "by_radius", "by_box")

    def __init__(self):
        self.shape = Shape()
        self.withdist = self.withhash = self.withcoord = self.any = False
        self.count = 0
        self.sort = None            # None, "asc" or "desc"
        self.store = None
        self.storedist = False
        self.from_member = self.from_lonlat = False
        self.by_radius = self.by_box = False


def _parse_options(q: _Query, argv, base: int, flags: int, zs):
    i = base
    argc = len(argv)
    search = bool(flags & SEARCH)
    may_store = not (flags & NOSTORE) and not search
    while i < argc:
        arg = argv[i].lower()
        left = argc - i - 1
        if arg == b"withdist":
            q.withdist = True
        elif arg == b"withhash":
            q.withhash = True
        elif arg == b"withcoord":
            q.withcoord = True
        elif arg == b"any":
            q.any = True
        elif arg == b"asc":
            q.sort = "asc"
        elif arg == b"desc":
            q.sort = "desc"
        elif arg == b"count" and left >= 1:
            q.count = parse_int(argv[i + 1], NOT_INT)
            if q.count <= 0:
                raise CommandError("ERR COUNT must be > 0")
            i += 1
        elif arg in (b"store", b"storedist") and left >= 1 and may_store:
            q.store = argv[i + 1]
            q.storedist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and search and flags & SEARCHSTORE:
            q.storedist = True
        elif arg == b"frommember" and left >= 1 and search and \
                not q.from_lonlat:
            if zs is not None:
                q.shape.lon, q.shape.lat = _member_lonlat(zs, argv[i + 1])
            q.from_member = True
            i += 1
        elif arg == b"fromlonlat" and left >= 2 and search and \
                not q.from_member:
            q.shape.lon, q.shape.lat = parse_lonlat(argv[i + 1], argv[i + 2])
            q.from_lonlat = True
            i += 2
        elif arg == b"byradius" and left >= 2 and search and not q.by_box:
            _parse_radius(q.shape, argv[i + 1], argv[i + 2])
            q.by_radius = True
            i += 2
        elif arg == b"bybox" and left >= 3 and search and not q.by_radius:
            _parse_box(q.shape, argv[i + 1], argv[i + 2], argv[i + 3])
            q.by_box = True
            i += 3
        else:
            raise CommandError(SYNTAX)
        i += 1


def _check_query(q: _Query, argv, flags: int):
    if q.store is not None and (q.withdist or q.withhash or q.withcoord):
        raise CommandError(
            "ERR %s is not compatible with WITHDIST, WITHHASH and WITHCOORD "
            "options" % ("GEOSEARCHSTORE" if flags & SEARCHSTORE
                         else "STORE option in GEORADIUS"))
    name = argv[0].decode("utf-8", "replace")
    if flags & SEARCH and not (q.from_member or q.from_lonlat):
        raise CommandError("ERR exactly one of FROMMEMBER or FROMLONLAT can "
                           "be specified for %s" % name)
    if flags & SEARCH and not (q.by_radius or q.by_box):
        raise CommandError("ERR exactly one of BYRADIUS and BYBOX can be "
                           "specified for %s" % name)
    if q.any and not q.count:
        raise CommandError("ERR the ANY argument requires COUNT argument")


def _sort_points(points: list, q: _Query, returned: int):
    if q.sort is None:
        return
    desc = q.sort == "desc"
    if returned == len(points):
        # glibc's qsort is a stable merge sort, as Python's sort is.
        points.sort(key=lambda p: p.dist, reverse=desc)
        return

    def cmp(a, b):
        result = (a.dist > b.dist) - (a.dist < b.dist)
        return -result if desc else result
    pqsort(points, cmp, 0, returned - 1)


def georadius_generic(c, argv, source: int, flags: int):
    zs = read(c, argv[source], ZSet)
    q = _Query()
    shape = q.shape
    if flags & COORDS:
        base = 6
        shape.lon, shape.lat = parse_lonlat(argv[2], argv[3])
        _parse_radius(shape, argv[4], argv[5])
    elif flags & MEMBER:
        base = 5
        if zs is not None:
            shape.lon, shape.lat = _member_lonlat(zs, argv[2])
            _parse_radius(shape, argv[3], argv[4])
    else:
        base = 2
        if flags & SEARCHSTORE:
            base = 3
            q.store = argv[1]
    _parse_options(q, argv, base, flags, zs)
    _check_query(q, argv, flags)
    if zs is None:
        if q.store is not None:
            if c.server.keyspace.delete(q.store):
                notify(c, GENERIC, b"del", q.store)
            return 0
        return EMPTY_ARRAY
    if q.count and q.sort is None and not q.any:
        q.sort = "asc"
    points = geohash.search(zs, shape, q.count if q.any else 0)
    if not points and q.store is None:
        return EMPTY_ARRAY
    returned = len(points) if not q.count else min(q.count, len(points))
    _sort_points(points, q, returned)
    points = points[:returned]
    for point in points:
        point.dist /= shape.conversion
    if q.store is not None:
        return _store(c, q, points, b"geosearchstore" if flags & SEARCH
                      else b"georadiusstore")
    return [_entry(c, q, point) for point in points]


def _entry(c, q: _Query, point):
    if not (q.withdist or q.withhash or q.withcoord):
        return point.member
    entry = [point.member]
    if q.withdist:
        entry.append(geohash.format_distance(point.dist))
    if q.withhash:
        entry.append(int(point.score))
    if q.withcoord:
        entry.append(_position(c, point.lon, point.lat))
    return entry


def _store(c, q: _Query, points, event: bytes) -> int:
    scores = {}
    for point in points:
        scores[point.member] = point.dist if q.storedist else point.score
    ks = c.server.keyspace
    if scores:
        result = zsets._new_zset(c, scores)
        before = ks.dirty
        store_result(c, q.store, result, ZSET, event)
        ks.dirty = before + len(points)     # Redis counts one per member
    else:
        store_result(c, q.store, scores)
    return len(points)


def _radius_specs(startfrom: int):
    return [KeySpec(flags=("RO", "access"), index=1),
            KeySpec(flags=("OW", "update"), keyword=b"STORE",
                    startfrom=startfrom),
            KeySpec(flags=("OW", "update"), keyword=b"STOREDIST",
                    startfrom=startfrom)]


@command("geosearch", -7, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Query a sorted set representing a geospatial index to "
                 "fetch members inside an area of a box or a circle.",
         since="6.2.0", complexity=_SEARCH_COMPLEXITY, history=(_UPPER,),
         **_G)
def geosearch(c, argv):
    return georadius_generic(c, argv, 1, SEARCH)


@command("geosearchstore", -8, "write denyoom",
         specs=[key_range(1, 1, 1, ("OW", "update")),
                key_range(2, 2, 1, ("RO", "access"))],
         summary="Query a sorted set representing a geospatial index to "
                 "fetch members inside an area of a box or a circle, and "
                 "store the result in another key.",
         since="6.2.0", complexity=_SEARCH_COMPLEXITY, history=(_UPPER,),
         **_G)
def geosearchstore(c, argv):
    return georadius_generic(c, argv, 2, SEARCH | SEARCHSTORE)


@command("georadius", -6, "write denyoom", specs=_radius_specs(6),
         summary="Query a sorted set representing a geospatial index to "
                 "fetch members matching a given maximum distance from a "
                 "point", since="3.2.0", complexity=_RADIUS_COMPLEXITY,
         history=(_ANY, _UPPER), doc_flags=("deprecated",),
         deprecated_since="6.2.0",
         replaced_by="`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` "
                     "argument", **_G)
def georadius(c, argv):
    return georadius_generic(c, argv, 1, COORDS)


@command("georadius_ro", -6, "readonly", keys=(1, 1, 1, "RO access"),
         summary="A read-only variant for GEORADIUS", since="3.2.10",
         complexity=_RADIUS_COMPLEXITY, history=(_ANY,),
         doc_flags=("deprecated",), deprecated_since="6.2.0",
         replaced_by="`GEOSEARCH` with the `BYRADIUS` argument", **_G)
def georadius_ro(c, argv):
    return georadius_generic(c, argv, 1, COORDS | NOSTORE)


@command("georadiusbymember", -5, "write denyoom", specs=_radius_specs(5),
         summary="Query a sorted set representing a geospatial index to "
                 "fetch members matching a given maximum distance from a "
                 "member", since="3.2.0", complexity=_RADIUS_COMPLEXITY,
         history=(_UPPER,), doc_flags=("deprecated",),
         deprecated_since="6.2.0",
         replaced_by="`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` "
                     "and `FROMMEMBER` arguments", **_G)
def georadiusbymember(c, argv):
    return georadius_generic(c, argv, 1, MEMBER)


@command("georadiusbymember_ro", -5, "readonly",
         keys=(1, 1, 1, "RO access"),
         summary="A read-only variant for GEORADIUSBYMEMBER", since="3.2.10",
         complexity=_RADIUS_COMPLEXITY, doc_flags=("deprecated",),
         deprecated_since="6.2.0",
         replaced_by="`GEOSEARCH` with the `BYRADIUS` and `FROMMEMBER` "
                     "arguments", **_G)
def georadiusbymember_ro(c, argv):
    return georadius_generic(c, argv, 1, MEMBER | NOSTORE)
