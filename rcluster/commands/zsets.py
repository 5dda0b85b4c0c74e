"""Sorted set commands.  Values are ``rcluster.zset.ZSet``.

Scores are doubles parsed with C's strtod rules (hex, inf, overflow and
underflow errors) because clients see the differences; they are replied
as ``Double`` (RESP3 double, RESP2 bulk string in %.17g form).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from rcluster.commands.common import (LLONG_MAX, RANDOM_TIP, SYNTAX,
                                      parse_float, parse_int, parse_mpop,
                                      parse_positive, parse_ranged,
                                      parse_timeout, propagate_as, rank_span,
                                      read, record_removal, store_result,
                                      strtod, write)
from rcluster.commands.scanning import (SCAN_COMPLEXITY, hash_window,
                                        parse_cursor, parse_scan_options)
from rcluster.commands.sets import NEGATIVE_LIMIT
from rcluster.commands.table import CommandError, KeySpec, command, key_range
from rcluster.notify import ZSET, notify
from rcluster.resp.codec import NULL_ARRAY, Double
from rcluster.zset import LEX_MAX, LEX_MIN, LexRange, ScoreRange, ZSet

_G = dict(group="sorted-set")
NOT_SCORE_RANGE = "ERR min or max is not a float"
NOT_LEX_RANGE = "ERR min or max not valid string range item"
NAN_SCORE = "ERR resulting score is not a number (NaN)"


# -- parsing ------------------------------------------------------------------

def _score_bound(arg: bytes):
    """One end of a score range: "1.5", "(1.5", "-inf"... (bare strtod, so
    an empty string is 0 and out-of-range values saturate)."""
    exclusive = arg[:1] == b"("
    text = arg[1:] if exclusive else arg
    if not text:
        return 0.0, exclusive
    parsed = strtod(text)
    if parsed is None:
        raise CommandError(NOT_SCORE_RANGE)
    return parsed[0], exclusive


def parse_score_range(low: bytes, high: bytes) -> ScoreRange:
    (lo, lo_ex), (hi, hi_ex) = _score_bound(low), _score_bound(high)
    return ScoreRange(lo, hi, lo_ex, hi_ex)


def _lex_bound(arg: bytes):
    if arg == b"-":
        return LEX_MIN, True
    if arg == b"+":
        return LEX_MAX, True
    if arg[:1] == b"(":
        return arg[1:], True
    if arg[:1] == b"[":
        return arg[1:], False
    raise CommandError(NOT_LEX_RANGE)


def parse_lex_range(low: bytes, high: bytes) -> LexRange:
    (lo, lo_ex), (hi, hi_ex) = _lex_bound(low), _lex_bound(high)
    return LexRange(lo, hi, lo_ex, hi_ex)


# -- helpers ------------------------------------------------------------------

def _read(c, key):
    return read(c, key, ZSet)


def _make_room(c, zs: ZSet, member: bytes):
    """Before inserting member: would it outgrow Redis's listpack encoding?"""
    settings = c.server.settings
    if zs.compact and (len(zs) + 1 > settings.zset_max_listpack_entries or
                       len(member) > settings.zset_max_listpack_value):
        zs.compact = False


def _new_zset(c, scores: dict) -> ZSet:
    """A computed sorted set (*STORE results), encoded as Redis would."""
    settings = c.server.settings
    compact = len(scores) <= settings.zset_max_listpack_entries and \
        all(len(m) <= settings.zset_max_listpack_value for m in scores)
    return ZSet(scores, compact)


def _flat(pairs) -> list:
    out = []
    for member, score in pairs:
        out += (member, Double(score))
    return out


def _nested(pairs) -> list:
    return [[member, Double(score)] for member, score in pairs]


def _pairs(c, pairs, withscores: bool) -> list:
    """Members, or members with scores: flat in RESP2, pairs in RESP3."""
    if not withscores:
        return [member for member, _ in pairs]
    return _nested(pairs) if c.resp3 else _flat(pairs)


def _window(span, offset: int, limit: int, reverse: bool):
    """LIMIT offset count applied to ranks [start, stop), walked forwards
    or backwards; a negative offset gives nothing (as in Redis), a
    negative count everything."""
    start, stop = span
    take = stop - start - offset
    if limit >= 0:
        take = min(take, limit)
    if offset < 0 or take <= 0:
        return 0, 0
    if reverse:
        return stop - offset - take, stop - offset
    return start + offset, start + offset + take


# -- ZADD / ZINCRBY -----------------------------------------------------------

_ZADD_FLAGS = (b"nx", b"xx", b"ch", b"incr", b"gt", b"lt")
ADDED, UPDATED = "added", "updated"


def _parse_zadd(argv, flags: set) -> list:
    """ZADD's options (into flags) -> its (score, member) pairs."""
    i = 2
    while i < len(argv) and argv[i].lower() in _ZADD_FLAGS:
        flags.add(argv[i].lower())
        i += 1
    args = argv[i:]
    if not args or len(args) % 2:
        raise CommandError(SYNTAX)
    nx, xx, gt, lt = (f in flags for f in (b"nx", b"xx", b"gt", b"lt"))
    if nx and xx:
        raise CommandError(
            "ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError(
            "ERR GT, LT, and/or NX options at the same time are not "
            "compatible")
    if b"incr" in flags and len(args) > 2:
        raise CommandError(
            "ERR INCR option supports a single increment-element pair")
    return list(zip([parse_float(score) for score in args[::2]], args[1::2]))


def _zadd_one(c, zs: ZSet, score: float, member: bytes, flags: set):
    """One pair, as Redis's zsetAdd -> (resulting score, or None when the
    options skip the member; ADDED, UPDATED or None)."""
    current = zs.score(member)
    if current is None:
        if b"xx" in flags:
            return None, None
        _make_room(c, zs, member)
        zs.add(member, score)
        return score, ADDED
    if b"nx" in flags:
        return None, None
    if b"incr" in flags:
        score += current
        if math.isnan(score):
            raise CommandError(NAN_SCORE)
    if (b"lt" in flags and score >= current) or \
            (b"gt" in flags and score <= current):
        return None, None
    if score == current:
        return score, None
    zs.add(member, score)
    return score, UPDATED


def _zadd(c, argv, flags: set):
    """ZADD and ZINCRBY (which is ZADD INCR)."""
    return zadd_pairs(c, argv[1], _parse_zadd(argv, flags), flags)


def zadd_pairs(c, key: bytes, pairs, flags: set):
    """ZADD's work once parsed: (score, member) pairs with the options
    (lower-case flags); its reply (GEOADD comes here too)."""
    zs = write(c, key, ZSet)
    created = zs is None
    if created:
        if b"xx" in flags:
            return None if b"incr" in flags else 0
        zs = ZSet()
    changes = []
    for score, member in pairs:
        score, change = _zadd_one(c, zs, score, member, flags)
        changes.append(change)
    added, updated = changes.count(ADDED), changes.count(UPDATED)
    ks = c.server.keyspace
    if created:
        ks.add(key, zs)
        ks.touch(key, added + updated - 1)
    elif added or updated:
        ks.touch(key, added + updated)
    if added or updated:
        notify(c, ZSET, b"zincr" if b"incr" in flags else b"zadd", key)
    if b"incr" in flags:   # a single pair: its new score, or nil
        return None if score is None else Double(score)
    return added + updated if b"ch" in flags else added


@command("zadd", -4, "write denyoom fast", keys=(1, 1, 1, "RW update"),
         summary="Add one or more members to a sorted set, or update its "
                 "score if it already exists", since="1.2.0",
         complexity="O(log(N)) for each item added, where N is the number of "
                    "elements in the sorted set.",
         **_G)
def zadd(c, argv):
    return _zadd(c, argv, set())


@command("zincrby", 4, "write denyoom fast",
         keys=(1, 1, 1, "RW access update"),
         summary="Increment the score of a member in a sorted set",
         since="1.2.0",
         complexity="O(log(N)) where N is the number of elements in the "
                    "sorted set.",
         **_G)
def zincrby(c, argv):
    return _zadd(c, argv, {b"incr"})


# -- removal ------------------------------------------------------------------

@command("zrem", -3, "write fast", keys=(1, 1, 1, "RW delete"),
         summary="Remove one or more members from a sorted set",
         since="1.2.0",
         complexity="O(M*log(N)) with N being the number of elements in the "
                    "sorted set and M the number of elements to be removed.",
         **_G)
def zrem(c, argv):
    key = argv[1]
    zs = write(c, key, ZSet)
    if zs is None:
        return 0
    removed = sum(zs.remove(member) for member in argv[2:])
    record_removal(c, key, zs, removed, ZSET, b"zrem")
    return removed


def _zremrange(c, argv, span_of):
    """ZREMRANGEBY*: span_of(zs) gives the ranks to remove."""
    key = argv[1]
    zs = write(c, key, ZSet)
    if zs is None:
        return 0
    removed = zs.remove_span(*span_of(zs))
    # The event is the command's name (zremrangebyrank/score/lex).
    record_removal(c, key, zs, removed, ZSET, argv[0].lower())
    return removed


_REMRANGE = dict(keys=(1, 1, 1, "RW delete"),
                 complexity="O(log(N)+M) with N being the number of elements "
                            "in the sorted set and M the number of elements "
                            "removed by the operation.", **_G)


@command("zremrangebyrank", 4, "write", since="2.0.0",
         summary="Remove all members in a sorted set within the given indexes",
         **_REMRANGE)
def zremrangebyrank(c, argv):
    start, end = parse_int(argv[2]), parse_int(argv[3])
    return _zremrange(c, argv, lambda zs: rank_span(start, end, len(zs)))


@command("zremrangebyscore", 4, "write", since="1.2.0",
         summary="Remove all members in a sorted set within the given scores",
         **_REMRANGE)
def zremrangebyscore(c, argv):
    spec = parse_score_range(argv[2], argv[3])
    return _zremrange(c, argv, lambda zs: zs.score_span(spec))


@command("zremrangebylex", 4, "write", since="2.8.9",
         summary="Remove all members in a sorted set between the given "
                 "lexicographical range", **_REMRANGE)
def zremrangebylex(c, argv):
    spec = parse_lex_range(argv[2], argv[3])
    return _zremrange(c, argv, lambda zs: zs.lex_span(spec))


# -- single-member reads ------------------------------------------------------

@command("zcard", 2, "readonly fast", keys=(1, 1, 1, "RO"),
         summary="Get the number of members in a sorted set", since="1.2.0",
         complexity="O(1)",
         **_G)
def zcard(c, argv):
    zs = _read(c, argv[1])
    return 0 if zs is None else len(zs)


@command("zscore", 3, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Get the score associated with the given member in a sorted "
                 "set", since="1.2.0",
         complexity="O(1)",
         **_G)
def zscore(c, argv):
    zs = _read(c, argv[1])
    score = None if zs is None else zs.score(argv[2])
    return None if score is None else Double(score)


@command("zmscore", -3, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Get the score associated with the given members in a "
                 "sorted set", since="6.2.0",
         complexity="O(N) where N is the number of members being requested.",
         **_G)
def zmscore(c, argv):
    zs = _read(c, argv[1]) or ZSet()
    out = []
    for member in argv[2:]:
        score = zs.score(member)
        out.append(None if score is None else Double(score))
    return out


@command("zrank", 3, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Determine the index of a member in a sorted set",
         since="2.0.0",
         complexity="O(log(N))",
         **_G)
def zrank(c, argv):
    zs = _read(c, argv[1])
    return None if zs is None else zs.rank(argv[2])


@command("zrevrank", 3, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Determine the index of a member in a sorted set, with "
                 "scores ordered from high to low", since="2.0.0",
         complexity="O(log(N))",
         **_G)
def zrevrank(c, argv):
    zs = _read(c, argv[1])
    return None if zs is None else zs.rank(argv[2], reverse=True)


_LOG_N = "O(log(N)) with N being the number of elements in the sorted set."


def _zcount(c, argv, span_of):
    """ZCOUNT and ZLEXCOUNT: span_of(zs) gives the ranks to count."""
    zs = _read(c, argv[1])
    if zs is None:
        return 0
    start, stop = span_of(zs)
    return stop - start


@command("zcount", 4, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Count the members in a sorted set with scores within the "
                 "given values", since="2.0.0", complexity=_LOG_N, **_G)
def zcount(c, argv):
    spec = parse_score_range(argv[2], argv[3])
    return _zcount(c, argv, lambda zs: zs.score_span(spec))


@command("zlexcount", 4, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Count the number of members in a sorted set between a "
                 "given lexicographical range", since="2.8.9",
         complexity=_LOG_N, **_G)
def zlexcount(c, argv):
    spec = parse_lex_range(argv[2], argv[3])
    return _zcount(c, argv, lambda zs: zs.lex_span(spec))


# -- ZRANGE and its ancestors -------------------------------------------------

RANK, SCORE, LEX = "rank", "score", "lex"


@dataclass
class _RangeQuery:
    """What a ZRANGE-like command asks for; ``by`` and ``reverse`` are
    fixed by the old commands, None where options may set them."""
    by: str = None
    reverse: bool = None
    withscores: bool = False
    offset: int = 0
    limit: int = -1     # negative: no limit

    def parse_options(self, argv, start: int, store: bool):
        i = start
        while i < len(argv):
            option = argv[i].lower()
            if option == b"withscores" and not store:
                self.withscores = True
            elif option == b"limit" and i + 2 < len(argv):
                self.offset = parse_int(argv[i + 1])
                self.limit = parse_int(argv[i + 2])
                i += 2
            elif option == b"rev" and self.reverse is None:
                self.reverse = True
            elif option in (b"bylex", b"byscore") and self.by is None:
                self.by = LEX if option == b"bylex" else SCORE
            else:
                raise CommandError(SYNTAX)
            i += 1
        self.by = self.by or RANK
        self.reverse = bool(self.reverse)
        if self.limit != -1 and self.by == RANK:
            raise CommandError("ERR syntax error, LIMIT is only supported in "
                               "combination with either BYSCORE or BYLEX")
        if self.withscores and self.by == LEX:
            raise CommandError("ERR syntax error, WITHSCORES not supported "
                               "in combination with BYLEX")

    def parse_bounds(self, low: bytes, high: bytes):
        """min and max (given as max min when reversed by score or lex)."""
        if self.by == RANK:
            return parse_int(low), parse_int(high)
        if self.reverse:
            low, high = high, low
        if self.by == SCORE:
            return parse_score_range(low, high)
        return parse_lex_range(low, high)

    def select(self, zs: ZSet, bounds) -> list:
        """The (member, score) pairs of zs the query returns."""
        if self.by == RANK:
            first, stop = rank_span(*bounds, len(zs))
            if self.reverse:   # ranks count from the top
                first, stop = len(zs) - stop, len(zs) - first
            return zs.items(first, stop, self.reverse)
        span = zs.score_span(bounds) if self.by == SCORE else \
            zs.lex_span(bounds)
        window = _window(span, self.offset, self.limit, self.reverse)
        return zs.items(*window, self.reverse)


def _zrange(c, argv, src: int, by=None, reverse=None, store=None):
    """ZRANGE, ZRANGESTORE (``store`` is the destination) and the older
    Z[REV]RANGE[BYSCORE|BYLEX]; argv[src] is the source key."""
    query = _RangeQuery(by, reverse)
    query.parse_options(argv, src + 3, store is not None)
    bounds = query.parse_bounds(argv[src + 1], argv[src + 2])
    zs = _read(c, argv[src])
    pairs = [] if zs is None else query.select(zs, bounds)
    if store is not None:
        return store_result(c, store, _new_zset(c, dict(pairs)), ZSET,
                            b"zrangestore")
    return _pairs(c, pairs, query.withscores)


# Metadata the ZRANGE variants share (Redis's JSON files repeat it).
_RANGE = dict(keys=(1, 1, 1, "RO access"),
              complexity="O(log(N)+M) with N being the number of elements in "
                         "the sorted set and M the number of elements "
                         "returned.", **_G)
_RANGE_BY = dict(_RANGE,
                 complexity="O(log(N)+M) with N being the number of elements "
                            "in the sorted set and M the number of elements "
                            "being returned. If M is constant (e.g. always "
                            "asking for the first 10 elements with LIMIT), "
                            "you can consider it O(log(N)).")


@command("zrange", -4, "readonly", since="1.2.0",
         summary="Return a range of members in a sorted set", **_RANGE)
def zrange(c, argv):
    return _zrange(c, argv, 1)


@command("zrangestore", -5, "write denyoom",
         specs=[key_range(1, 1, 1, ("OW", "update")),
                key_range(2, 2, 1, ("RO", "access"))],
         summary="Store a range of members from sorted set into another key",
         since="6.2.0",
         complexity="O(log(N)+M) with N being the number of elements in the "
                    "sorted set and M the number of elements stored into the "
                    "destination key.",
         **_G)
def zrangestore(c, argv):
    return _zrange(c, argv, 2, store=argv[1])


@command("zrevrange", -4, "readonly", since="1.2.0",
         summary="Return a range of members in a sorted set, by index, with "
                 "scores ordered from high to low", **_RANGE)
def zrevrange(c, argv):
    return _zrange(c, argv, 1, RANK, True)


@command("zrangebyscore", -4, "readonly", since="1.0.5",
         summary="Return a range of members in a sorted set, by score",
         **_RANGE_BY)
def zrangebyscore(c, argv):
    return _zrange(c, argv, 1, SCORE, False)


@command("zrevrangebyscore", -4, "readonly", since="2.2.0",
         summary="Return a range of members in a sorted set, by score, with "
                 "scores ordered from high to low", **_RANGE_BY)
def zrevrangebyscore(c, argv):
    return _zrange(c, argv, 1, SCORE, True)


@command("zrangebylex", -4, "readonly", since="2.8.9",
         summary="Return a range of members in a sorted set, by "
                 "lexicographical range", **_RANGE_BY)
def zrangebylex(c, argv):
    return _zrange(c, argv, 1, LEX, False)


@command("zrevrangebylex", -4, "readonly", since="2.8.9",
         summary="Return a range of members in a sorted set, by "
                 "lexicographical range, ordered from higher to lower "
                 "strings.", **_RANGE_BY)
def zrevrangebylex(c, argv):
    return _zrange(c, argv, 1, LEX, True)


# -- popping ------------------------------------------------------------------

def _pop(c, key: bytes, zs: ZSet, count: int, highest: bool) -> list:
    pairs = zs.pop(count, highest)
    record_removal(c, key, zs, len(pairs), ZSET,
                   b"zpopmax" if highest else b"zpopmin")
    return pairs


def _first_zset(c, keys):
    """The first key holding a sorted set, and that set (or None, None);
    WRONGTYPE stops the search, as in Redis; a woken client tries the key
    that was written first."""
    for key in c.server.blocking.serve_order(c, keys):
        zs = write(c, key, ZSet)
        if zs is not None:
            return key, zs
    return None, None


def _zpop(c, argv, highest: bool):
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    count = parse_positive(argv[2]) if len(argv) == 3 else None
    key = argv[1]
    zs = write(c, key, ZSet)
    if zs is None or count == 0:
        return []
    if count is None:   # one flat pair, whatever the protocol
        return _flat(_pop(c, key, zs, 1, highest))
    return _pairs(c, _pop(c, key, zs, count, highest), True)


@command("zpopmin", -2, "write fast", keys=(1, 1, 1, "RW access delete"),
         summary="Remove and return members with the lowest scores in a "
                 "sorted set", since="5.0.0",
         complexity="O(log(N)*M) with N being the number of elements in the "
                    "sorted set, and M being the number of elements popped.",
         **_G)
def zpopmin(c, argv):
    return _zpop(c, argv, False)


@command("zpopmax", -2, "write fast", keys=(1, 1, 1, "RW access delete"),
         summary="Remove and return members with the highest scores in a "
                 "sorted set", since="5.0.0",
         complexity="O(log(N)*M) with N being the number of elements in the "
                    "sorted set, and M being the number of elements popped.",
         **_G)
def zpopmax(c, argv):
    return _zpop(c, argv, True)


def _bzpop(c, argv, highest: bool, name: str):
    timeout = parse_timeout(argv[-1])
    keys = argv[1:-1]
    key, zs = _first_zset(c, keys)
    if zs is None:
        return c.server.blocking.block(c, keys, timeout,
                                       c.server.table.get(name), argv,
                                       NULL_ARRAY)
    [(member, score)] = _pop(c, key, zs, 1, highest)
    propagate_as(c, [b"ZPOPMAX" if highest else b"ZPOPMIN", key])
    return [key, member, Double(score)]


_BZPOP_KEYS = (1, -2, 1, "RW access delete")


@command("bzpopmin", -3, "write noscript fast blocking", keys=_BZPOP_KEYS,
         summary="Remove and return the member with the lowest score from one "
                 "or more sorted sets, or block until one is available",
         since="5.0.0",
         complexity=_LOG_N, **_G)
def bzpopmin(c, argv):
    return _bzpop(c, argv, False, "bzpopmin")


@command("bzpopmax", -3, "write noscript fast blocking", keys=_BZPOP_KEYS,
         summary="Remove and return the member with the highest score from "
                 "one or more sorted sets, or block until one is available",
         since="5.0.0",
         complexity=_LOG_N, **_G)
def bzpopmax(c, argv):
    return _bzpop(c, argv, True, "bzpopmax")


def _parse_zmpop(argv, numkeys_at: int):
    """numkeys key... MIN|MAX [COUNT count] -> (keys, highest, count)."""
    keys, end, count = parse_mpop(argv, numkeys_at, (b"min", b"max"))
    return keys, end == b"max", count


def _mpop_reply(c, key, zs, count, highest):
    popped = _pop(c, key, zs, count, highest)
    # Replicated as ZPOPMIN/ZPOPMAX key count, blocking or not.
    propagate_as(c, [b"ZPOPMAX" if highest else b"ZPOPMIN", key,
                     b"%d" % len(popped)])
    return [key, _nested(popped)]


_MPOP_COMPLEXITY = ("O(K) + O(M*log(N)) where K is the number of provided "
                    "keys, N being the number of elements in the sorted set, "
                    "and M being the number of elements popped.")


@command("zmpop", -4, "write movablekeys",
         specs=[KeySpec(flags=("RW", "access", "delete"), index=1,
                        keynumidx=0)],
         summary="Remove and return members with scores in a sorted set",
         since="7.0.0",
         complexity=_MPOP_COMPLEXITY, **_G)
def zmpop(c, argv):
    keys, highest, count = _parse_zmpop(argv, 1)
    key, zs = _first_zset(c, keys)
    if zs is None:
        return NULL_ARRAY
    return _mpop_reply(c, key, zs, count, highest)


@command("bzmpop", -5, "write blocking movablekeys",
         specs=[KeySpec(flags=("RW", "access", "delete"), index=2,
                        keynumidx=0)],
         summary="Remove and return members with scores in a sorted set or "
                 "block until one is available", since="7.0.0",
         complexity=_MPOP_COMPLEXITY, **_G)
def bzmpop(c, argv):
    keys, highest, count = _parse_zmpop(argv, 2)
    timeout = parse_timeout(argv[1])
    key, zs = _first_zset(c, keys)
    if zs is None:
        return c.server.blocking.block(c, keys, timeout,
                                       c.server.table.get("bzmpop"), argv,
                                       NULL_ARRAY)
    return _mpop_reply(c, key, zs, count, highest)


# -- ZRANDMEMBER --------------------------------------------------------------

@command("zrandmember", -2, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get one or multiple random elements from a sorted set",
         since="6.2.0", tips=RANDOM_TIP,
         complexity="O(N) where N is the number of elements returned",
         **_G)
def zrandmember(c, argv):
    if len(argv) == 2:
        zs = _read(c, argv[1])
        return None if zs is None else zs.random_item()[0]
    count = parse_ranged(argv[2], -LLONG_MAX, LLONG_MAX)
    withscores = len(argv) == 4
    if len(argv) > 4 or (withscores and argv[3].lower() != b"withscores"):
        raise CommandError(SYNTAX)
    if withscores and abs(count) > LLONG_MAX // 2:
        raise CommandError("ERR value is out of range")
    zs = _read(c, argv[1])
    if zs is None or count == 0:
        return []
    if count < 0 or count == 1:
        # Repetitions allowed: each pick samples the whole set.
        pairs = [zs.random_item() for _ in range(abs(count))]
    elif count >= len(zs):
        pairs = list(zs)
    else:
        pairs = [zs.at(rank) for rank in random.sample(range(len(zs)), count)]
    return _pairs(c, pairs, withscores)


# -- ZUNION / ZINTER / ZDIFF --------------------------------------------------

UNION, INTER, DIFF = "union", "inter", "diff"


def _aggregate_sum(total, value):
    total += value
    return 0.0 if math.isnan(total) else total   # inf + -inf is 0 here


_AGGREGATES = {b"sum": _aggregate_sum,
               b"min": lambda total, value: value if value < total else total,
               b"max": lambda total, value: value if value > total else total}


def _sources(c, keys) -> list:
    """Each input key as a dict member -> score ({} if missing); plain sets
    count as sorted sets whose scores are all 1."""
    out = []
    for key in keys:
        found = c.server.keyspace.lookup(key)
        cls = set if found.__class__ is set else ZSet
        value = read(c, key, cls)   # counts the hit; WRONGTYPE if neither
        if value is None:
            out.append({})
        elif cls is set:
            out.append(dict.fromkeys(value, 1.0))
        else:
            out.append(value.scores)
    return out


@dataclass
class _Combine:
    """How ZUNION / ZINTER / ZDIFF / ZINTERCARD combine their inputs."""
    weights: list
    aggregate: object = _aggregate_sum
    withscores: bool = False
    limit: int = 0      # ZINTERCARD's LIMIT; 0: none

    def parse_options(self, argv, i: int, op: str, store: bool,
                      cardinality: bool):
        numkeys = len(self.weights)
        combines = op != DIFF and not cardinality
        while i < len(argv):
            option, left = argv[i].lower(), len(argv) - i
            if combines and option == b"weights" and left > numkeys:
                self.weights = [
                    parse_float(w, "ERR weight value is not a float")
                    for w in argv[i + 1:i + 1 + numkeys]]
                i += 1 + numkeys
            elif combines and option == b"aggregate" and left >= 2:
                self.aggregate = _AGGREGATES.get(argv[i + 1].lower())
                if self.aggregate is None:
                    raise CommandError(SYNTAX)
                i += 2
            elif option == b"withscores" and not store and not cardinality:
                self.withscores = True
                i += 1
            elif option == b"limit" and cardinality and left >= 2:
                self.limit = parse_positive(argv[i + 1], NEGATIVE_LIMIT)
                i += 2
            else:
                raise CommandError(SYNTAX)


def _zsetop(c, argv, name: str, op: str, numkeys_index: int,
            dest=None, cardinality=False):
    """ZUNION, ZINTER, ZDIFF, ZINTERCARD and the *STORE forms."""
    numkeys = parse_int(argv[numkeys_index])
    if numkeys < 1:
        raise CommandError(
            f"ERR at least 1 input key is needed for '{name}' command")
    first_key = numkeys_index + 1
    if numkeys > len(argv) - first_key:
        raise CommandError(SYNTAX)
    # Types are checked before the options are parsed, as in Redis.
    sources = _sources(c, argv[first_key:first_key + numkeys])
    how = _Combine([1.0] * numkeys)
    how.parse_options(argv, first_key + numkeys, op, dest is not None,
                      cardinality)
    weighted = list(zip(sources, how.weights))
    if op == INTER:
        result = _inter(weighted, how.aggregate, how.limit)
    elif op == UNION:
        result = _union(weighted, how.aggregate)
    else:
        result = _diff(sources)
    if dest is not None:
        # The event is the command's name (zunionstore, zinterstore...).
        return store_result(c, dest, _new_zset(c, result), ZSET,
                            argv[0].lower())
    if cardinality:
        return len(result)
    return _pairs(c, ZSet(result), how.withscores)


def _weighted(score, weight):
    product = score * weight
    return 0.0 if math.isnan(product) else product   # 0 * inf is 0 here


def _inter(weighted, aggregate, limit=0) -> dict:
    weighted = sorted(weighted, key=lambda source: len(source[0]))
    (first, weight), others = weighted[0], weighted[1:]
    result = {}
    for member, score in first.items():
        total = _weighted(score, weight)
        for scores, other_weight in others:
            other = scores.get(member)
            if other is None:
                break
            total = aggregate(total, other * other_weight)
        else:
            result[member] = total
            if len(result) == limit:
                break
    return result


def _union(weighted, aggregate) -> dict:
    result = {}
    for scores, weight in sorted(weighted, key=lambda s: len(s[0])):
        for member, score in scores.items():
            score = _weighted(score, weight)
            total = result.get(member)
            result[member] = score if total is None else \
                aggregate(total, score)
    return result


def _diff(sources) -> dict:
    first, others = sources[0], [s for s in sources[1:] if s]
    return {member: score for member, score in first.items()
            if not any(member in other for other in others)}


# What the ZUNION / ZINTER / ZDIFF forms and their *STORE forms share.
_INTER_COMPLEXITY = ("O(N*K)+O(M*log(M)) worst case with N being the "
                     "smallest input sorted set, K being the number of input "
                     "sorted sets and M being the number of elements in the "
                     "resulting sorted set.")
_DIFF_COMPLEXITY = ("O(L + (N-K)log(N)) worst case where L is the total "
                    "number of elements in all the sets, N is the size of "
                    "the first set, and K is the size of the result set.")
_KEYNUM_RO = KeySpec(flags=("RO", "access"), index=1, keynumidx=0)
_STORE_SPECS = [key_range(1, 1, 1, ("OW", "update")),
                KeySpec(flags=("RO", "access"), index=2, keynumidx=0)]


@command("zunionstore", -4, "write denyoom movablekeys", specs=_STORE_SPECS,
         summary="Add multiple sorted sets and store the resulting sorted set "
                 "in a new key", since="2.0.0",
         complexity="O(N)+O(M log(M)) with N being the sum of the sizes of "
                    "the input sorted sets, and M being the number of "
                    "elements in the resulting sorted set.",
         **_G)
def zunionstore(c, argv):
    return _zsetop(c, argv, "zunionstore", UNION, 2, dest=argv[1])


@command("zinterstore", -4, "write denyoom movablekeys", specs=_STORE_SPECS,
         summary="Intersect multiple sorted sets and store the resulting "
                 "sorted set in a new key", since="2.0.0",
         complexity=_INTER_COMPLEXITY, **_G)
def zinterstore(c, argv):
    return _zsetop(c, argv, "zinterstore", INTER, 2, dest=argv[1])


@command("zdiffstore", -4, "write denyoom movablekeys", specs=_STORE_SPECS,
         summary="Subtract multiple sorted sets and store the resulting "
                 "sorted set in a new key", since="6.2.0",
         complexity=_DIFF_COMPLEXITY, **_G)
def zdiffstore(c, argv):
    return _zsetop(c, argv, "zdiffstore", DIFF, 2, dest=argv[1])


@command("zunion", -3, "readonly movablekeys", specs=[_KEYNUM_RO],
         summary="Add multiple sorted sets", since="6.2.0",
         complexity="O(N)+O(M*log(M)) with N being the sum of the sizes of "
                    "the input sorted sets, and M being the number of "
                    "elements in the resulting sorted set.",
         **_G)
def zunion(c, argv):
    return _zsetop(c, argv, "zunion", UNION, 1)


@command("zinter", -3, "readonly movablekeys", specs=[_KEYNUM_RO],
         summary="Intersect multiple sorted sets", since="6.2.0",
         complexity=_INTER_COMPLEXITY, **_G)
def zinter(c, argv):
    return _zsetop(c, argv, "zinter", INTER, 1)


@command("zintercard", -3, "readonly movablekeys", specs=[_KEYNUM_RO],
         summary="Intersect multiple sorted sets and return the cardinality "
                 "of the result", since="7.0.0",
         complexity="O(N*K) worst case with N being the smallest input sorted"
                    " set, K being the number of input sorted sets.",
         **_G)
def zintercard(c, argv):
    return _zsetop(c, argv, "zintercard", INTER, 1, cardinality=True)


@command("zdiff", -3, "readonly movablekeys", specs=[_KEYNUM_RO],
         summary="Subtract multiple sorted sets", since="6.2.0",
         complexity=_DIFF_COMPLEXITY, **_G)
def zdiff(c, argv):
    return _zsetop(c, argv, "zdiff", DIFF, 1)


# -- ZSCAN --------------------------------------------------------------------

def listpack_score(score: float) -> bytes:
    """A score as a listpack stores it (Redis's d2string): integers in
    long long range without exponent, the rest %.17g."""
    if math.isfinite(score) and abs(score) <= 2**62 and score == int(score):
        return b"%d" % int(score)
    return b"%.17g" % score


@command("zscan", -3, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Incrementally iterate sorted sets elements and associated "
                 "scores", since="2.8.0", tips=RANDOM_TIP,
         complexity=SCAN_COMPLEXITY, **_G)
def zscan(c, argv):
    cursor = parse_cursor(argv[2])
    zs = _read(c, argv[1])
    if zs is None:
        return [b"0", []]
    count, match, _ = parse_scan_options(argv, 3)
    if zs.compact:   # a listpack is returned whole, in order
        cursor, pairs = 0, [(m, listpack_score(s)) for m, s in zs]
    else:
        cursor, members = hash_window(zs.scores, cursor, count)
        pairs = [(m, b"%.17g" % zs.scores[m]) for m in members]
    out = []
    for member, score in pairs:
        if match is None or match(member):
            out += (member, score)
    return [b"%d" % cursor, out]
