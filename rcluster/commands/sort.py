"""SORT and SORT_RO (Redis's sort.c).

Sorts a list, set or sorted set numerically (each element, or what BY's
pattern points to, parsed as a double) or ALPHA (bytes order: Redis uses
strcoll, which is byte order in the C / C.UTF-8 locales), with LIMIT, GET
patterns (``#`` is the element itself, ``key*->field`` a hash field),
ASC/DESC and STORE (the result as a list).  ``BY nosort`` (a pattern
without ``*``) skips sorting: lists and sorted sets keep their order.

Orders match redis-server's even where the comparison ties: a full sort is
glibc's qsort (a stable merge sort, as Python's sort), a BY sort with
LIMIT is Redis's partial quicksort, ported as ``pqsort``.

In cluster mode BY patterns and GET are refused, as Redis does (they name
keys in other slots).
"""
from __future__ import annotations

from collections import deque
from functools import cmp_to_key

from rcluster.commands.common import (SYNTAX, WRONGTYPE, parse_int,
                                      store_result, strtod)
from rcluster.commands.keys import lookup_read
from rcluster.commands.sets import ordered
from rcluster.commands.table import CommandError, KeySpec, command
from rcluster.notify import LIST
from rcluster.zset import ZSet

NOT_DOUBLE = "ERR One or more scores can't be converted into double"
BY_DENIED = "ERR BY option of SORT denied in Cluster mode."
GET_DENIED = "ERR GET option of SORT denied in Cluster mode."
_LONG_MIN, _LONG_MAX = -2**63, 2**63 - 1
_DBL_MIN = 2.2250738585072014e-308     # the smallest normal double


# -- Redis's partial quicksort (pqsort.c) -------------------------------------

def pqsort(items: list, cmp, lrange: int, rrange: int):
    """Sort items in place enough that positions lrange..rrange hold what a
    full sort would put there: Bentley & McIlroy's quicksort skipping the
    partitions outside the range, exactly as Redis's pqsort (so elements
    that compare equal end where redis-server puts them)."""
    _pqsort(items, 0, len(items), cmp, lrange, rrange)


def _med3(items, a, b, c, cmp):
    if cmp(items[a], items[b]) < 0:
        if cmp(items[b], items[c]) < 0:
            return b
        return c if cmp(items[a], items[c]) < 0 else a
    if cmp(items[b], items[c]) > 0:
        return b
    return a if cmp(items[a], items[c]) < 0 else c


def _swap(items, i, j):
    items[i], items[j] = items[j], items[i]


def _vecswap(items, i, j, n):
    for k in range(n):
        _swap(items, i + k, j + k)


def _pqsort(items, a, n, cmp, lrange, rrange):
    while True:
        if n < 7:
            for pm in range(a + 1, a + n):
                pl = pm
                while pl > a and cmp(items[pl - 1], items[pl]) > 0:
                    _swap(items, pl, pl - 1)
                    pl -= 1
            return
        pm = a + n // 2
        if n > 7:
            pl = a
            pn = a + n - 1
            if n > 40:
                d = n // 8
                pl = _med3(items, pl, pl + d, pl + 2 * d, cmp)
                pm = _med3(items, pm - d, pm, pm + d, cmp)
                pn = _med3(items, pn - 2 * d, pn - d, pn, cmp)
            pm = _med3(items, pl, pm, pn, cmp)
        _swap(items, a, pm)
        pa = pb = a + 1
        pc = pd = a + n - 1
        while True:
            while pb <= pc:
                result = cmp(items[pb], items[a])
                if result > 0:
                    break
                if result == 0:
                    _swap(items, pa, pb)
                    pa += 1
                pb += 1
            while pb <= pc:
                result = cmp(items[pc], items[a])
                if result < 0:
                    break
                if result == 0:
                    _swap(items, pc, pd)
                    pd -= 1
                pc -= 1
            if pb > pc:
                break
            _swap(items, pb, pc)
            pb += 1
            pc -= 1
        pn = a + n
        r = min(pa - a, pb - pa)
        _vecswap(items, a, pb - r, r)
        r = min(pd - pc, pn - pd - 1)
        _vecswap(items, pb, pn - r, r)
        r = pb - pa
        if r > 1 and not ((lrange < a and rrange < a) or
                          (lrange > a + r - 1 and rrange > a + r - 1)):
            _pqsort(items, a, r, cmp, lrange, rrange)
        r = pd - pc
        if r <= 1:
            return
        a, n = pn - r, r
        if (lrange < a and rrange < a) or \
                (lrange > a + r - 1 and rrange > a + r - 1):
            return


# -- patterns -----------------------------------------------------------------

def lookup_pattern(c, pattern: bytes, subst: bytes):
    """lookupKeyByPattern: "#" is subst itself; otherwise the first "*" is
    replaced by subst and the string (or, with "->field" after the "*",
    the hash field) at that key is returned; None when missing."""
    if pattern == b"#":
        return subst
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2:]
        key = pattern[:star] + subst + pattern[star + 1:arrow]
    else:
        key = pattern[:star] + subst + pattern[star + 1:]
    value = lookup_read(c, key)
    if value is None:
        return None
    if field is not None:
        return value.get(field) if value.__class__ is dict else None
    if value.__class__ is bytes or value.__class__ is bytearray:
        return bytes(value)
    return None


# -- SORT ---------------------------------------------------------------------

class _Options:
    __slots__ = ("desc", "alpha", "start", "count", "store", "by",
                 "dontsort", "gets")

    def __init__(self):
        self.desc = self.alpha = self.dontsort = False
        self.start, self.count = 0, -1
        self.store = self.by = None
        self.gets = []


def _parse(c, argv, readonly: bool) -> _Options:
    opts = _Options()
    cluster = c.server.settings.cluster_enabled
    j = 2
    while j < len(argv):
        option = argv[j].lower()
        left = len(argv) - j - 1
        if option == b"asc":
            opts.desc = False
        elif option == b"desc":
            opts.desc = True
        elif option == b"alpha":
            opts.alpha = True
        elif option == b"limit" and left >= 2:
            opts.start = parse_int(argv[j + 1], low=_LONG_MIN, high=_LONG_MAX)
            opts.count = parse_int(argv[j + 2], low=_LONG_MIN, high=_LONG_MAX)
            j += 2
        elif option == b"store" and left >= 1 and not readonly:
            opts.store = argv[j + 1]
            j += 1
        elif option == b"by" and left >= 1:
            opts.by = argv[j + 1]
            if b"*" not in opts.by:
                opts.dontsort = True
            elif cluster:
                raise CommandError(BY_DENIED)
            j += 1
        elif option == b"get" and left >= 1:
            if cluster:
                raise CommandError(GET_DENIED)
            opts.gets.append(argv[j + 1])
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    return opts


def _in_script(c) -> bool:
    return getattr(c, "kind", None) == "script"


def _elements(c, value, opts: _Options) -> tuple:
    """The vector to sort and the [start, end] window of it to output
    (sort.c's loading stage, with its shortcuts for BY nosort)."""
    if value is None:
        length = 0
    else:
        length = len(value)
    start = min(max(opts.start, 0), length)
    count = min(max(opts.count, -1), length)
    end = length - 1 if count < 0 else start + count - 1
    if start >= length:
        start, end = length - 1, length - 2
    if end >= length:
        end = length - 1
    if value is None:
        return [], start, end
    ordered_type = value.__class__ is deque or value.__class__ is ZSet
    if ordered_type and opts.dontsort:
        if end < start:
            return [], 0, end - start
        if value.__class__ is deque:
            items = list(value)
        else:
            items = [member for member, _ in value]
        if opts.desc:
            items.reverse()
        return items[start:end + 1], 0, end - start
    if value.__class__ is set:
        return ordered(c, value), start, end
    if value.__class__ is deque:
        return list(value), start, end
    return [member for member, _ in value], start, end


def _sort_keys(c, vector, opts: _Options):
    """(element, score or compare object) pairs; raises NOT_DOUBLE."""
    pairs = []
    bad = False
    for element in vector:
        if opts.by is not None:
            byval = lookup_pattern(c, opts.by, element)
            if byval is None:
                pairs.append((element, None if opts.alpha else 0.0))
                continue
        else:
            byval = element
        if opts.alpha:
            pairs.append((element, byval if opts.by is not None else None))
            continue
        text = byval.split(b"\0", 1)[0]       # strtod reads a C string
        parsed = strtod(text) if text else (0.0, False)
        # Redis refuses any ERANGE here, a subnormal result's included.
        if parsed is None or parsed[1] or parsed[0] != parsed[0] or \
                0 < abs(parsed[0]) < _DBL_MIN:
            bad = True
            pairs.append((element, 0.0))
        else:
            pairs.append((element, parsed[0]))
    return pairs, bad


def _compare(opts: _Options):
    sign = -1 if opts.desc else 1
    if not opts.alpha:
        def cmp(x, y):
            if x[1] != y[1]:
                return sign if x[1] > y[1] else -sign
            return sign * ((x[0] > y[0]) - (x[0] < y[0]))
    elif opts.by is not None:
        def cmp(x, y):
            a, b = x[1], y[1]
            if a is None or b is None:
                if a is b:
                    return 0
                return -sign if a is None else sign
            return sign * ((a > b) - (a < b))
    else:
        def cmp(x, y):
            return sign * ((x[0] > y[0]) - (x[0] < y[0]))
    return cmp


def sort_generic(c, argv, readonly: bool):
    opts = _parse(c, argv, readonly)
    value = lookup_read(c, argv[1])
    if value is not None and value.__class__ not in (deque, set, ZSet):
        raise CommandError(WRONGTYPE)
    if value.__class__ is ZSet:
        value.compact = False   # Redis converts it to a skiplist to sort it
    if opts.dontsort and value.__class__ is set and \
            (opts.store is not None or _in_script(c)):
        # Sets have no order of their own: make it deterministic.
        opts.dontsort, opts.alpha, opts.by = False, True, None
    vector, start, end = _elements(c, value, opts)
    if not opts.dontsort:
        pairs, bad = _sort_keys(c, vector, opts)
        cmp = _compare(opts)
        if opts.by is not None and (start != 0 or end != len(pairs) - 1):
            pqsort(pairs, cmp, start, end)
        else:
            pairs.sort(key=cmp_to_key(cmp))
        if bad:
            raise CommandError(NOT_DOUBLE)
        vector = [element for element, _ in pairs]
    window = vector[start:end + 1] if end >= start else []
    if opts.store is None:
        if not opts.gets:
            return window
        return [lookup_pattern(c, pattern, element)
                for element in window for pattern in opts.gets]
    if opts.gets:
        found = (lookup_pattern(c, pattern, element)
                 for element in window for pattern in opts.gets)
        result = deque(b"" if v is None else v for v in found)
    else:
        result = deque(window)
    ks = c.server.keyspace
    if result:
        before = ks.dirty
        store_result(c, opts.store, result, LIST, b"sortstore")
        # Redis counts one change per element stored.
        ks.dirty = before + len(result)
    else:
        store_result(c, opts.store, result)
    return len(result)


def sort_get_keys(argv) -> list:
    """sortGetKeys: the sorted key, and the last STORE's key (options are
    skipped with their arguments, as Redis does)."""
    positions = [1]
    store = None
    skips = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        if option in skips:
            i += skips[option]
        elif option == b"store" and i + 1 < len(argv):
            store = i + 1
        i += 1
    return positions + ([store] if store is not None else [])


def _sort_key_flags(argv) -> list:
    """sortGetKeys' flags: the sorted key is read, the STORE key written
    (so a WATCH on the sorted key survives a SORT ... STORE)."""
    positions = sort_get_keys(argv)
    flags = [("RO", "access"), ("OW", "update")]
    return list(zip(positions, flags))


sort_get_keys.key_flags = _sort_key_flags


_SORT_KEY = KeySpec(flags=("RO", "access"), index=1)
_BY_GET = KeySpec(flags=("RO", "access"),
                  notes="For the optional BY/GET keyword. It is marked "
                        "'unknown' because the key names derive from the "
                        "content of the key we sort")
_STORE = KeySpec(flags=("OW", "update"),
                 notes="For the optional STORE keyword. It is marked "
                       "'unknown' because the keyword can appear anywhere "
                       "in the argument array")
_COMPLEXITY = ("O(N+M*log(M)) where N is the number of elements in the list "
               "or set to sort, and M the number of returned elements. When "
               "the elements are not sorted, complexity is O(N).")


@command("sort", -2, "write denyoom", specs=[_SORT_KEY, _BY_GET, _STORE],
         get_keys=sort_get_keys, acl="set sortedset list dangerous",
         summary="Sort the elements in a list, set or sorted set",
         complexity=_COMPLEXITY)
def sort(c, argv):
    return sort_generic(c, argv, readonly=False)


@command("sort_ro", -2, "readonly", specs=[_SORT_KEY, _BY_GET],
         get_keys=lambda argv: [1], acl="set sortedset list dangerous",
         summary="Sort the elements in a list, set or sorted set. "
                 "Read-only variant of SORT.", since="7.0.0",
         complexity=_COMPLEXITY)
def sort_ro(c, argv):
    return sort_generic(c, argv, readonly=True)
