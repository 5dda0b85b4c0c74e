"""List commands.  Lists are stored as ``collections.deque`` (head = left).

The blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) first do
what their non-blocking twins do.  When every key is empty they park the
client with ``Blocking.block`` and return BLOCKED; the server then runs the
very same command again each time one of its keys is written, until it
serves the client or its timeout fires (see rcluster/blocking.py).  Inside
MULTI ``block`` hands back the timeout reply at once, as Redis does.
"""
from __future__ import annotations

from collections import deque
from itertools import islice

from rcluster.commands.common import (LLONG_MIN, NO_KEY, OUT_OF_RANGE, SYNTAX,
                                      WRONGTYPE, arity_error, option_pairs,
                                      parse_int, parse_mpop, parse_positive,
                                      parse_timeout, propagate_as, rank_span,
                                      drop_if_empty, read, record_removal,
                                      write, write_or_create)
from rcluster.commands.table import CommandError, KeySpec, command, key_range
from rcluster.notify import LIST, notify
from rcluster.resp.codec import NULL_ARRAY, OK

_G = dict(group="list")
RANK_ZERO = ("ERR RANK can't be zero: use 1 to start from the first match, "
             "2 from the second ... or use negative to start from the end of "
             "the list")
# LPOP/RPOP count: Redis gives this text for a non-integer count too.

_MULTIPLE = "Accepts multiple `element` arguments."
_COUNT_ADDED = (("6.2.0", "Added the `count` argument."),)
_DOUBLE_TIMEOUT = (("6.0.0", "`timeout` is interpreted as a double instead "
                             "of an integer."),)

# The key specs of the commands that move an element from one list to another.
_MOVE_SPECS = (key_range(1, 1, 1, ("RW", "access", "delete")),
               key_range(2, 2, 1, ("RW", "insert")))


# -- helpers -----------------------------------------------------------------

def _where(arg: bytes) -> bool:
    """LEFT/RIGHT -> True for the head (left) end."""
    where = arg.lower()
    if where == b"left":
        return True
    if where == b"right":
        return False
    raise CommandError(SYNTAX)


def _push(lst: deque, values, left: bool):
    if left:
        lst.extendleft(values)
    else:
        lst.extend(values)


def _pop(c, key: bytes, lst: deque, left: bool, count: int) -> list:
    """Pop up to count elements from one end; delete the key if emptied."""
    take = lst.popleft if left else lst.pop
    popped = [take() for _ in range(min(count, len(lst)))]
    record_removal(c, key, lst, len(popped), LIST,
                   b"lpop" if left else b"rpop")
    return popped


def _slice(lst: deque, first: int, stop: int) -> list:
    """Elements [first, stop) (a rank_span), walked from the nearer end."""
    length = len(lst)
    if first > length - stop:
        tail = list(islice(reversed(lst), length - stop, length - first))
        tail.reverse()
        return tail
    return list(islice(lst, first, stop))


def _index(lst: deque, arg: bytes):
    """A list index argument (negative = from the tail) or None if outside."""
    index = parse_int(arg)
    if index < 0:
        index += len(lst)
    return index if 0 <= index < len(lst) else None


def _retrying(c) -> bool:
    """True while a blocked client's command runs again after a write."""
    return c.server.blocking.woken_by(c) is not None


def _source(c, key: bytes):
    """The list a (possibly blocking) pop reads from, or None.

    A woken client skips a key holding another type instead of failing:
    Redis only ever serves a blocked client from a key that holds a list."""
    value = c.server.keyspace.for_write(key)
    if value is None or value.__class__ is deque:
        return value
    if _retrying(c):
        return None
    raise CommandError(WRONGTYPE)


def _block(c, name: str, keys, timeout_ms: int, argv, timeout_reply):
    server = c.server
    return server.blocking.block(c, keys, timeout_ms, server.table.get(name),
                                 argv, timeout_reply)


# -- pushes ------------------------------------------------------------------

def _push_command(c, argv, left: bool, only_existing: bool):
    key = argv[1]
    if only_existing:
        lst = write(c, key, deque)
        if lst is None:
            return 0
    else:
        lst = write_or_create(c, key, deque)
    _push(lst, argv[2:], left)
    c.server.keyspace.touch(key, len(argv) - 2)
    notify(c, LIST, b"lpush" if left else b"rpush", key)
    return len(lst)


# Metadata the four pushes share (Redis's JSON files repeat it).
_PUSH = dict(keys=(1, 1, 1, "RW insert"),
             complexity="O(1) for each element added, so O(N) to add N "
                        "elements when the command is called with multiple "
                        "arguments.", **_G)


@command("lpush", -3, "write denyoom fast",
         summary="Prepend one or multiple elements to a list",
         history=(("2.4.0", _MULTIPLE),), **_PUSH)
def lpush(c, argv):
    return _push_command(c, argv, True, False)


@command("rpush", -3, "write denyoom fast",
         summary="Append one or multiple elements to a list",
         history=(("2.4.0", _MULTIPLE),), **_PUSH)
def rpush(c, argv):
    return _push_command(c, argv, False, False)


@command("lpushx", -3, "write denyoom fast", since="2.2.0",
         summary="Prepend an element to a list, only if the list exists",
         history=(("4.0.0", _MULTIPLE),), **_PUSH)
def lpushx(c, argv):
    return _push_command(c, argv, True, True)


@command("rpushx", -3, "write denyoom fast", since="2.2.0",
         summary="Append an element to a list, only if the list exists",
         history=(("4.0.0", _MULTIPLE),), **_PUSH)
def rpushx(c, argv):
    return _push_command(c, argv, False, True)


@command("linsert", 5, "write denyoom", keys=(1, 1, 1, "RW insert"),
         summary="Insert an element before or after another element in a "
                 "list", since="2.2.0",
         complexity="O(N) where N is the number of elements to traverse "
                    "before seeing the value pivot. This means that "
                    "inserting somewhere on the left end on the list (head) "
                    "can be considered O(1) and inserting somewhere on the "
                    "right end (tail) is O(N).", **_G)
def linsert(c, argv):
    key, where, pivot, element = argv[1:]
    where = where.lower()
    if where not in (b"before", b"after"):
        raise CommandError(SYNTAX)
    lst = write(c, key, deque)
    if lst is None:
        return 0
    try:
        index = lst.index(pivot)
    except ValueError:
        return -1
    lst.insert(index if where == b"before" else index + 1, element)
    c.server.keyspace.touch(key)
    notify(c, LIST, b"linsert", key)
    return len(lst)


# -- pops --------------------------------------------------------------------

def _pop_command(c, argv, left: bool):
    """LPOP/RPOP key [count]: a bulk string, or with a count an array."""
    if len(argv) > 3:
        raise arity_error(argv)
    count = parse_positive(argv[2]) if len(argv) == 3 else None
    key = argv[1]
    lst = write(c, key, deque)
    if lst is None:
        return None if count is None else NULL_ARRAY
    if count is None:
        return _pop(c, key, lst, left, 1)[0]
    return _pop(c, key, lst, left, count)


@command("lpop", -2, "write fast", keys=(1, 1, 1, "RW access delete"),
         summary="Remove and get the first elements in a list",
         complexity="O(N) where N is the number of elements returned",
         history=_COUNT_ADDED, **_G)
def lpop(c, argv):
    return _pop_command(c, argv, True)


@command("rpop", -2, "write fast", keys=(1, 1, 1, "RW access delete"),
         summary="Remove and get the last elements in a list",
         complexity="O(N) where N is the number of elements returned",
         history=_COUNT_ADDED, **_G)
def rpop(c, argv):
    return _pop_command(c, argv, False)


def _parse_mpop(argv, numkeys_at: int):
    """[B]LMPOP's `numkeys key... LEFT|RIGHT [COUNT count]` -> (keys, left,
    count)."""
    keys, end, count = parse_mpop(argv, numkeys_at, (b"left", b"right"))
    return keys, end == b"left", count


def _mpop(c, keys, left: bool, count: int):
    """[key, [elements]] from the first non-empty list, or None."""
    for key in c.server.blocking.serve_order(c, keys):
        lst = _source(c, key)
        if lst:
            popped = _pop(c, key, lst, left, count)
            # Replicated as [LR]POP key count, blocking or not.
            propagate_as(c, [b"LPOP" if left else b"RPOP", key,
                             b"%d" % len(popped)])
            return [key, popped]
    return None


def _mpop_spec(numkeys_at: int) -> KeySpec:
    """[B]LMPOP's keys: `numkeys` at numkeys_at, then that many keys."""
    return KeySpec(flags=("RW", "access", "delete"), index=numkeys_at,
                   keynumidx=0, firstkey=1, keystep=1)


@command("lmpop", -4, "write", specs=[_mpop_spec(1)],
         summary="Pop elements from a list", since="7.0.0",
         complexity="O(N+M) where N is the number of provided keys and M is "
                    "the number of elements returned.", **_G)
def lmpop(c, argv):
    keys, left, count = _parse_mpop(argv, 1)
    reply = _mpop(c, keys, left, count)
    return NULL_ARRAY if reply is None else reply


# -- reads -------------------------------------------------------------------

@command("llen", 2, "readonly fast", keys=(1, 1, 1, "RO"),
         summary="Get the length of a list", complexity="O(1)", **_G)
def llen(c, argv):
    lst = read(c, argv[1], deque)
    return 0 if lst is None else len(lst)


@command("lrange", 4, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get a range of elements from a list",
         complexity="O(S+N) where S is the distance of start offset from HEAD "
                    "for small lists, from nearest end (HEAD or TAIL) for "
                    "large lists; and N is the number of elements in the "
                    "specified range.", **_G)
def lrange(c, argv):
    start, end = parse_int(argv[2]), parse_int(argv[3])
    lst = read(c, argv[1], deque)
    if lst is None:
        return []
    return _slice(lst, *rank_span(start, end, len(lst)))


@command("lindex", 3, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get an element from a list by its index",
         complexity="O(N) where N is the number of elements to traverse to "
                    "get to the element at index. This makes asking for the "
                    "first or the last element of the list O(1).", **_G)
def lindex(c, argv):
    lst = read(c, argv[1], deque)
    if lst is None:
        return None
    index = _index(lst, argv[2])
    return None if index is None else lst[index]


def _parse_lpos_options(argv):
    """LPOS options -> (rank, count or None, maxlen)."""
    rank, count, maxlen = 1, None, 0
    for option, arg in option_pairs(argv, 3):
        if option == b"rank":
            rank = parse_int(arg)
            if rank == 0:
                raise CommandError(RANK_ZERO)
        elif option == b"count":
            count = parse_int(arg, "ERR COUNT can't be negative", low=0)
        elif option == b"maxlen":
            maxlen = parse_int(arg, "ERR MAXLEN can't be negative", low=0)
        else:
            raise CommandError(SYNTAX)
    return rank, count, maxlen


@command("lpos", -3, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Return the index of matching elements on a list",
         since="6.0.6",
         complexity="O(N) where N is the number of elements in the list, for "
                    "the average case. When searching for elements near the "
                    "head or the tail of the list, or when the MAXLEN option "
                    "is provided, the command may run in constant time.", **_G)
def lpos(c, argv):
    element = argv[2]
    rank, count, maxlen = _parse_lpos_options(argv)
    lst = read(c, argv[1], deque)
    if lst is None:
        return None if count is None else []
    from_tail = rank < 0
    # Redis 7.0 negates LLONG_MIN into itself, so it acts as rank -1.
    rank = 1 if rank == LLONG_MIN else abs(rank)
    scan = reversed(lst) if from_tail else iter(lst)
    if maxlen:
        scan = islice(scan, maxlen)
    last = len(lst) - 1
    found = []
    seen = 0
    for offset, item in enumerate(scan):
        if item != element:
            continue
        seen += 1
        if seen < rank:
            continue
        found.append(last - offset if from_tail else offset)
        if count is None or len(found) == count:
            break
    if count is None:
        return found[0] if found else None
    return found


# -- in-place changes --------------------------------------------------------

@command("lset", 4, "write denyoom", keys=(1, 1, 1, "RW update"),
         summary="Set the value of an element in a list by its index",
         complexity="O(N) where N is the length of the list. Setting either "
                    "the first or the last element of the list is O(1).", **_G)
def lset(c, argv):
    key = argv[1]
    lst = write(c, key, deque)
    if lst is None:
        raise CommandError(NO_KEY)
    index = _index(lst, argv[2])
    if index is None:
        raise CommandError(OUT_OF_RANGE)
    lst[index] = argv[3]
    c.server.keyspace.touch(key)
    notify(c, LIST, b"lset", key)
    return OK


@command("lrem", 4, "write", keys=(1, 1, 1, "RW delete"),
         summary="Remove elements from a list",
         complexity="O(N+M) where N is the length of the list and M is the "
                    "number of elements removed.", **_G)
def lrem(c, argv):
    key, element = argv[1], argv[3]
    limit = parse_int(argv[2])
    lst = write(c, key, deque)
    if lst is None:
        return 0
    from_tail = limit < 0
    limit = abs(limit)
    kept = []
    removed = 0
    for item in (reversed(lst) if from_tail else lst):
        if item == element and (not limit or removed < limit):
            removed += 1
        else:
            kept.append(item)
    if removed:
        if from_tail:
            kept.reverse()
        lst.clear()
        lst.extend(kept)
        record_removal(c, key, lst, removed, LIST, b"lrem")
    return removed


@command("ltrim", 4, "write", keys=(1, 1, 1, "RW delete"),
         summary="Trim a list to the specified range",
         complexity="O(N) where N is the number of elements to be removed by "
                    "the operation.", **_G)
def ltrim(c, argv):
    key = argv[1]
    start, end = parse_int(argv[2]), parse_int(argv[3])
    lst = write(c, key, deque)
    if lst is None:
        return OK
    first, stop = rank_span(start, end, len(lst))
    head, tail = first, len(lst) - stop
    for _ in range(head):
        lst.popleft()
    for _ in range(tail):
        lst.pop()
    c.server.keyspace.touch(key, head + tail)
    notify(c, LIST, b"ltrim", key)     # even when nothing was trimmed
    drop_if_empty(c, key, lst)
    return OK


# -- moves -------------------------------------------------------------------

def _move(c, source: bytes, destination: bytes, from_left: bool,
          to_left: bool):
    """Pop from source, push onto destination, return the element."""
    lst = write(c, source, deque)
    if lst is None:
        return None
    target = write(c, destination, deque)   # WRONGTYPE before any change
    value = lst.popleft() if from_left else lst.pop()
    if target is None:
        target = write_or_create(c, destination, deque)
    _push(target, (value,), to_left)
    c.server.keyspace.touch(destination)
    notify(c, LIST, b"lpush" if to_left else b"rpush", destination)
    record_removal(c, source, lst, 1, LIST,
                   b"lpop" if from_left else b"rpop")
    return value


@command("lmove", 5, "write denyoom", specs=_MOVE_SPECS,
         summary="Pop an element from a list, push it to another list and "
                 "return it", since="6.2.0", complexity="O(1)", **_G)
def lmove(c, argv):
    from_left, to_left = _where(argv[3]), _where(argv[4])
    return _move(c, argv[1], argv[2], from_left, to_left)


@command("rpoplpush", 3, "write denyoom", specs=_MOVE_SPECS,
         summary="Remove the last element in a list, prepend it to another "
                 "list and return it", since="1.2.0", complexity="O(1)",
         doc_flags=("deprecated",), deprecated_since="6.2.0",
         replaced_by="`LMOVE` with the `RIGHT` and `LEFT` arguments",
         **_G)
def rpoplpush(c, argv):
    return _move(c, argv[1], argv[2], False, True)


# -- blocking variants -------------------------------------------------------

def _blocking_pop(c, argv, left: bool, name: str):
    """BLPOP/BRPOP key [key ...] timeout -> [key, element]."""
    timeout = parse_timeout(argv[-1])
    keys = argv[1:-1]
    for key in c.server.blocking.serve_order(c, keys):
        lst = _source(c, key)
        if lst:
            element = _pop(c, key, lst, left, 1)[0]
            propagate_as(c, [b"LPOP" if left else b"RPOP", key])
            return [key, element]
    return _block(c, name, keys, timeout, argv, NULL_ARRAY)


@command("blpop", -3, "write noscript blocking",
         keys=(1, -2, 1, "RW access delete"),
         summary="Remove and get the first element in a list, or block until "
                 "one is available", since="2.0.0",
         complexity="O(N) where N is the number of provided keys.",
         history=_DOUBLE_TIMEOUT, **_G)
def blpop(c, argv):
    return _blocking_pop(c, argv, True, "blpop")


@command("brpop", -3, "write noscript blocking",
         keys=(1, -2, 1, "RW access delete"),
         summary="Remove and get the last element in a list, or block until "
                 "one is available", since="2.0.0",
         complexity="O(N) where N is the number of provided keys.",
         history=_DOUBLE_TIMEOUT, **_G)
def brpop(c, argv):
    return _blocking_pop(c, argv, False, "brpop")


def _blocking_move(c, argv, from_left, to_left, timeout_arg, name):
    timeout = parse_timeout(timeout_arg)
    source = argv[1]
    if _source(c, source) is None:
        return _block(c, name, (source,), timeout, argv, None)
    value = _move(c, source, argv[2], from_left, to_left)
    if value is not None:
        propagate_as(c, [b"RPOPLPUSH", source, argv[2]]
                     if name == "brpoplpush" else [b"LMOVE", *argv[1:5]])
    return value


@command("blmove", 6, "write denyoom noscript blocking", specs=_MOVE_SPECS,
         summary="Pop an element from a list, push it to another list and "
                 "return it; or block until one is available",
         since="6.2.0", complexity="O(1)", **_G)
def blmove(c, argv):
    from_left, to_left = _where(argv[3]), _where(argv[4])
    return _blocking_move(c, argv, from_left, to_left, argv[5], "blmove")


@command("brpoplpush", 4, "write denyoom noscript blocking",
         specs=_MOVE_SPECS,
         summary="Pop an element from a list, push it to another list and "
                 "return it; or block until one is available",
         since="2.2.0", complexity="O(1)",
         doc_flags=("deprecated",), deprecated_since="6.2.0",
         replaced_by="`BLMOVE` with the `RIGHT` and `LEFT` arguments",
         history=_DOUBLE_TIMEOUT, **_G)
def brpoplpush(c, argv):
    return _blocking_move(c, argv, False, True, argv[3], "brpoplpush")


@command("blmpop", -5, "write blocking", specs=[_mpop_spec(2)],
         summary="Pop elements from a list, or block until one is available",
         since="7.0.0",
         complexity="O(N+M) where N is the number of provided keys and M is "
                    "the number of elements returned.", **_G)
def blmpop(c, argv):
    keys, left, count = _parse_mpop(argv, 2)
    timeout = parse_timeout(argv[1])
    reply = _mpop(c, keys, left, count)
    if reply is None:
        return _block(c, "blmpop", keys, timeout, argv, NULL_ARRAY)
    return reply
