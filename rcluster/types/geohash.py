"""Geohashes as Redis computes them (geohash.c, geohash_helper.c, geo.c).

A geo set is a sorted set whose scores are 52-bit interleaved geohashes
(26 bits of latitude in the even bits, 26 of longitude in the odd ones,
latitudes limited to +-85.05112878 as in EPSG:900913).  Everything here
is pure arithmetic on Python floats and ints - IEEE doubles, the same
operations in the same order as the C code, so coordinates, distances and
the cells searched are bit for bit Redis's.

Search: a radius or box is covered by the cell holding its centre plus
the 8 neighbours, at a precision (step) estimated from the radius; the
sorted set is range-queried per cell and each candidate checked against
the exact shape (haversine on Redis's earth radius).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

STEP_MAX = 26                       # 26 * 2 = 52 bits
LAT_MIN = -85.05112878
LAT_MAX = 85.05112878
LONG_MIN = -180.0
LONG_MAX = 180.0
EARTH_RADIUS = 6372797.560856       # metres, quadratic mean radius
MERCATOR_MAX = 20037726.37
_D_R = math.pi / 180.0

# The ranges of Redis's internal geohash, and of the standard one (GEOHASH).
GEO_RANGES = ((LONG_MIN, LONG_MAX), (LAT_MIN, LAT_MAX))
STANDARD_RANGES = ((-180.0, 180.0), (-90.0, 90.0))

_M64 = (1 << 64) - 1
_LAT_SCALE = LAT_MAX - LAT_MIN
_LON_SCALE = LONG_MAX - LONG_MIN
_CELLS = float(1 << STEP_MAX)          # cells per coordinate at step 26
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA

# Units: name -> metres per unit (extractUnitOrReply).
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}


def _c_math(fn):
    """A libm function as C calls it: NaN out of its domain (cos(inf),
    asin(1.0000001)...), where Python raises ValueError."""
    def call(x: float) -> float:
        try:
            return fn(x)
        except ValueError:
            return math.nan
    return call


_sin, _cos, _asin, _sqrt = map(_c_math, (math.sin, math.cos, math.asin,
                                          math.sqrt))


def deg_rad(angle: float) -> float:
    return angle * _D_R


def rad_deg(angle: float) -> float:
    return angle / _D_R


# -- bits ---------------------------------------------------------------------

def interleave(x: int, y: int) -> int:
    """The bits of x (< 2**32) in the even positions, y's in the odd."""
    x = (x | (x << 16)) & 0x0000FFFF0000FFFF
    y = (y | (y << 16)) & 0x0000FFFF0000FFFF
    x = (x | (x << 8)) & 0x00FF00FF00FF00FF
    y = (y | (y << 8)) & 0x00FF00FF00FF00FF
    x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0F
    y = (y | (y << 4)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x << 2)) & 0x3333333333333333
    y = (y | (y << 2)) & 0x3333333333333333
    x = (x | (x << 1)) & _EVEN
    y = (y | (y << 1)) & _EVEN
    return x | (y << 1)


def deinterleave(bits: int) -> int:
    """interleave's inverse over 64 bits: even bits in the low 32 of the
    result, odd bits in the high 32."""
    x = bits
    y = bits >> 1
    x &= _EVEN
    y &= _EVEN
    x = (x | (x >> 1)) & 0x3333333333333333
    y = (y | (y >> 1)) & 0x3333333333333333
    x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0F
    y = (y | (y >> 2)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x >> 4)) & 0x00FF00FF00FF00FF
    y = (y | (y >> 4)) & 0x00FF00FF00FF00FF
    x = (x | (x >> 8)) & 0x0000FFFF0000FFFF
    y = (y | (y >> 8)) & 0x0000FFFF0000FFFF
    x = (x | (x >> 16)) & 0x00000000FFFFFFFF
    y = (y | (y >> 16)) & 0x00000000FFFFFFFF
    return x | (y << 32)


@dataclass(frozen=True, slots=True)
class Cell:
    """A geohash of ``step`` bits per coordinate (GeoHashBits); the zero
    cell (0, 0) stands for "no cell" (GZERO)."""
    bits: int
    step: int

    def __bool__(self):
        return bool(self.bits or self.step)


ZERO = Cell(0, 0)


@dataclass(frozen=True, slots=True)
class Area:
    """The box a cell covers (GeoHashArea)."""
    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float


def encode(longitude: float, latitude: float, step: int = STEP_MAX,
           ranges=GEO_RANGES):
    """geohashEncode: the cell of step bits holding the point, or None
    outside the ranges (or Redis's own limits)."""
    (lon_lo, lon_hi), (lat_lo, lat_hi) = ranges
    if not 0 < step <= 32:
        return None
    if longitude > LONG_MAX or longitude < LONG_MIN or \
            latitude > LAT_MAX or latitude < LAT_MIN:
        return None
    if latitude < lat_lo or latitude > lat_hi or \
            longitude < lon_lo or longitude > lon_hi:
        return None
    lat_offset = (latitude - lat_lo) / (lat_hi - lat_lo)
    long_offset = (longitude - lon_lo) / (lon_hi - lon_lo)
    scale = float(1 << step)
    lat_offset *= scale
    long_offset *= scale
    # C converts the doubles to uint32_t: truncation, modulo 2**32.
    return Cell(interleave(int(lat_offset) & 0xFFFFFFFF,
                           int(long_offset) & 0xFFFFFFFF), step)


def decode(cell: Cell, ranges=GEO_RANGES) -> Area:
    """geohashDecode: the area a cell covers."""
    (lon_lo, lon_hi), (lat_lo, lat_hi) = ranges
    sep = deinterleave(cell.bits & _M64)
    lat_scale = lat_hi - lat_lo
    long_scale = lon_hi - lon_lo
    ilato = sep & 0xFFFFFFFF
    ilono = sep >> 32
    div = float(1 << cell.step)
    return Area(lon_lo + (ilono * 1.0 / div) * long_scale,
                lon_lo + ((ilono + 1) * 1.0 / div) * long_scale,
                lat_lo + (ilato * 1.0 / div) * lat_scale,
                lat_lo + ((ilato + 1) * 1.0 / div) * lat_scale)


def area_centre(area: Area):
    """geohashDecodeAreaToLongLat: (longitude, latitude), clamped."""
    lon = (area.lon_min + area.lon_max) / 2
    lon = min(max(lon, LONG_MIN), LONG_MAX)
    lat = (area.lat_min + area.lat_max) / 2
    lat = min(max(lat, LAT_MIN), LAT_MAX)
    return lon, lat


def score_bits(score: float) -> int:
    """C's (uint64_t) cast of a score as x86-64 code does it (values out
    of range give what the CPU gives, never an exception)."""
    if score != score or score in (math.inf, -math.inf):
        return 0 if score > 0 else 1 << 63
    if score < 2.0 ** 63:
        value = int(score)
        if value < -2 ** 63:
            return 1 << 63
        return value & _M64
    if score >= 2.0 ** 64:
        return 0
    return int(score)


def score_to_lonlat(score: float):
    """decodeGeohash: a geo set score -> (longitude, latitude); decode()
    and area_centre() inlined (this runs for every search candidate)."""
    if 0 <= score < 4503599627370496.0:     # 2**52: a score GEOADD makes
        bits = int(score)
    else:
        bits = score_bits(score)
    sep = deinterleave(bits)
    ilato = sep & 0xFFFFFFFF
    ilono = sep >> 32
    lat_min = LAT_MIN + (ilato * 1.0 / _CELLS) * _LAT_SCALE
    lat_max = LAT_MIN + ((ilato + 1) * 1.0 / _CELLS) * _LAT_SCALE
    lon_min = LONG_MIN + (ilono * 1.0 / _CELLS) * _LON_SCALE
    lon_max = LONG_MIN + ((ilono + 1) * 1.0 / _CELLS) * _LON_SCALE
    lon = (lon_min + lon_max) / 2
    if lon > LONG_MAX:
        lon = LONG_MAX
    elif lon < LONG_MIN:
        lon = LONG_MIN
    lat = (lat_min + lat_max) / 2
    if lat > LAT_MAX:
        lat = LAT_MAX
    elif lat < LAT_MIN:
        lat = LAT_MIN
    return lon, lat


_SPREAD = [interleave(i, 0) for i in range(1 << 13)]     # bits -> even bits


def lonlat_to_score(longitude: float, latitude: float) -> int:
    """GEOADD's score: the 52-bit cell of a valid point (encode at step
    26, the same double operations, interleaved through a table)."""
    lat = int((latitude - LAT_MIN) / _LAT_SCALE * _CELLS)
    lon = int((longitude - LONG_MIN) / _LON_SCALE * _CELLS)
    if (lat | lon) >> STEP_MAX:     # 180 or the top latitude: 27 bits
        return align52(encode(longitude, latitude))
    spread = _SPREAD
    return (spread[lat & 0x1FFF] | spread[lat >> 13] << 26 |
            (spread[lon & 0x1FFF] | spread[lon >> 13] << 26) << 1)


def align52(cell: Cell) -> int:
    return (cell.bits << (52 - cell.step * 2)) & _M64


def cell_scores(cell: Cell):
    """scoresOfGeoHashBox: [min, max) of the scores inside a cell."""
    return align52(cell), align52(Cell(cell.bits + 1, cell.step))


GEOHASH_ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


def geohash_string(score: float) -> bytes:
    """GEOHASH's 11 characters: the point re-encoded on the standard
    -90..90 latitude range (the last character is always '0')."""
    lon, lat = score_to_lonlat(score)
    cell = encode(lon, lat, STEP_MAX, STANDARD_RANGES)
    bits = cell.bits if cell is not None else 0
    out = bytearray()
    for i in range(11):
        index = 0 if i == 10 else (bits >> (52 - (i + 1) * 5)) & 0x1F
        out.append(GEOHASH_ALPHABET[index])
    return bytes(out)


# -- neighbours ---------------------------------------------------------------

def _move_x(cell: Cell, d: int) -> Cell:
    if d == 0:
        return cell
    x = cell.bits & _ODD
    y = cell.bits & _EVEN
    zz = _EVEN >> (64 - cell.step * 2)
    if d > 0:
        x = x + (zz + 1)
    else:
        x = (x | zz) - (zz + 1)
    x &= _ODD >> (64 - cell.step * 2)
    return Cell((x | y) & _M64, cell.step)


def _move_y(cell: Cell, d: int) -> Cell:
    if d == 0:
        return cell
    x = cell.bits & _ODD
    y = cell.bits & _EVEN
    zz = _ODD >> (64 - cell.step * 2)
    if d > 0:
        y = y + (zz + 1)
    else:
        y = (y | zz) - (zz + 1)
    y &= _EVEN >> (64 - cell.step * 2)
    return Cell((x | y) & _M64, cell.step)


def neighbours(cell: Cell) -> dict:
    """geohashNeighbors: the 8 cells around one."""
    def move(dx, dy):
        return _move_y(_move_x(cell, dx), dy)
    return {"east": move(1, 0), "west": move(-1, 0),
            "south": move(0, -1), "north": move(0, 1),
            "north_west": move(-1, 1), "north_east": move(1, 1),
            "south_east": move(1, -1), "south_west": move(-1, -1)}


# -- distances ----------------------------------------------------------------

def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS * abs(deg_rad(lat2) - deg_rad(lat1))


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance: haversine, in metres."""
    lon1r = deg_rad(lon1)
    lon2r = deg_rad(lon2)
    v = _sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r = deg_rad(lat1)
    lat2r = deg_rad(lat2)
    u = _sin((lat2r - lat1r) / 2)
    a = u * u + _cos(lat1r) * _cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS * _asin(_sqrt(a))


# -- shapes -------------------------------------------------------------------

@dataclass(slots=True)
class Shape:
    """A search area (GeoShape): a circle (radius) or a box (width and
    height), in ``unit``s of ``conversion`` metres, around (lon, lat)."""
    lon: float = 0.0
    lat: float = 0.0
    conversion: float = 1.0
    radius: float | None = None
    width: float = 0.0
    height: float = 0.0

    @property
    def circular(self) -> bool:
        return self.radius is not None

    def contains(self, lon: float, lat: float):
        """geoWithinShape for a decoded point: its distance from the
        centre in metres, or None when it is outside."""
        if self.circular:
            dist = distance(self.lon, self.lat, lon, lat)
            return None if dist > self.radius * self.conversion else dist
        width = self.width * self.conversion
        height = self.height * self.conversion
        if lat_distance(lat, self.lat) > height / 2:
            return None
        if distance(lon, lat, self.lon, lat) > width / 2:
            return None
        return distance(self.lon, self.lat, lon, lat)

    def bounding_box(self):
        """geohashBoundingBox: (min lon, min lat, max lon, max lat)."""
        lon, lat = self.lon, self.lat
        if self.circular:
            height = width = self.conversion * self.radius
        else:
            height = self.conversion * (self.height / 2)
            width = self.conversion * (self.width / 2)
        lat_delta = rad_deg(height / EARTH_RADIUS)
        long_delta_top = rad_deg(
            width / EARTH_RADIUS / _cos(deg_rad(lat + lat_delta)))
        long_delta_bottom = rad_deg(
            width / EARTH_RADIUS / _cos(deg_rad(lat - lat_delta)))
        delta = long_delta_bottom if lat < 0 else long_delta_top
        return lon - delta, lat - lat_delta, lon + delta, lat + lat_delta

    def radius_metres(self) -> float:
        if self.circular:
            radius = self.radius
        else:
            radius = _sqrt((self.width / 2) * (self.width / 2) +
                               (self.height / 2) * (self.height / 2))
        return radius * self.conversion


def estimate_steps(range_metres: float, lat: float) -> int:
    """geohashEstimateStepsByRadius."""
    if range_metres == 0:
        return 26
    step = 1
    while range_metres < MERCATOR_MAX:
        range_metres *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def search_cells(shape: Shape) -> list:
    """geohashCalculateAreasByShapeWGS84, in membersOfAllNeighbors' order:
    the centre cell, then N, S, E, W, NE, NW, SE, SW (ZERO when useless)."""
    min_lon, min_lat, max_lon, max_lat = shape.bounding_box()
    steps = estimate_steps(shape.radius_metres(), shape.lat)
    cell = encode(shape.lon, shape.lat, steps)
    around = neighbours(cell)
    area = decode(cell)
    if (decode(around["north"]).lat_max < max_lat or
            decode(around["south"]).lat_min > min_lat or
            decode(around["east"]).lon_max < max_lon or
            decode(around["west"]).lon_min > min_lon) and steps > 1:
        steps -= 1
        cell = encode(shape.lon, shape.lat, steps)
        around = neighbours(cell)
        area = decode(cell)
    if steps >= 2:
        doomed = set()
        if area.lat_min < min_lat:
            doomed.update(("south", "south_west", "south_east"))
        if area.lat_max > max_lat:
            doomed.update(("north", "north_east", "north_west"))
        if area.lon_min < min_lon:
            doomed.update(("west", "south_west", "north_west"))
        if area.lon_max > max_lon:
            doomed.update(("east", "south_east", "north_east"))
        for name in doomed:
            around[name] = ZERO
    return [cell] + [around[name] for name in (
        "north", "south", "east", "west", "north_east", "north_west",
        "south_east", "south_west")]


@dataclass(slots=True)
class GeoPoint:
    member: bytes
    score: float
    lon: float
    lat: float
    dist: float         # metres from the centre (in units once replied)


def search(zs, shape: Shape, limit: int = 0) -> list:
    """membersOfAllNeighbors: the zset's members inside the shape, in the
    order Redis finds them (cell by cell, score order inside a cell);
    ``limit`` > 0 stops once that many were found (COUNT n ANY)."""
    from rcluster.zset import ScoreRange
    found = []
    cells = search_cells(shape)
    last = 0
    for i, cell in enumerate(cells):
        if not cell:
            continue
        # Redis compares with the last processed cell only once one other
        # than the centre was processed (its "last_processed &&" test).
        if last and cell == cells[last]:
            continue
        if found and limit and len(found) >= limit:
            break
        low, high = cell_scores(cell)
        start, stop = zs.score_span(ScoreRange(low, high, False, True))
        for member, score in zs.items(start, stop):
            lon, lat = score_to_lonlat(score)
            dist = shape.contains(lon, lat)
            if dist is not None:
                found.append(GeoPoint(member, score, lon, lat, dist))
            if found and limit and len(found) >= limit:
                break
        last = i
    return found


# -- formatting ---------------------------------------------------------------

def format_coordinate(value: float) -> bytes:
    """addReplyHumanLongDouble: "%.17Lf" of the (exact) value, trailing
    zeros and point cut, "-0" as "0"."""
    if value in (math.inf, -math.inf):
        return b"inf" if value > 0 else b"-inf"
    text = b"%.17f" % value
    if b"." in text:
        text = text.rstrip(b"0").rstrip(b".")
    return b"0" if text == b"-0" else text


def format_distance(value: float) -> bytes:
    """addReplyDoubleDistance (fixedpoint_d2string, 4 digits): llrint of
    value * 10000 (ties to even), written with 4 decimals."""
    if value == 0:
        return b"0.0000"
    scaled = value * 10000.0
    if scaled != scaled or abs(scaled) >= 2.0 ** 63:
        fixed = -2 ** 63            # llrint's "invalid" result on x86-64
    else:
        fixed = round(scaled)       # ties to even, as llrint does
    sign = b"-" if fixed < 0 else b""
    digits = b"%05d" % abs(fixed)
    return sign + digits[:-4] + b"." + digits[-4:]
