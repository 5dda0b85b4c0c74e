"""Set commands.  Sets are stored as Python ``set`` objects of bytes.

Redis keeps a small set of integers as a sorted "intset" and lists it in
numeric order; any other set is a hash table with no useful order.  Every
listing here goes through ``ordered()``, which reproduces the intset order,
so SMEMBERS / SINTER / SSCAN answer byte for byte like Redis on such sets.

The cursor and option parsing of SSCAN (shared with ZSCAN) lives here too.
"""
from __future__ import annotations

import random
import re

from rcluster.commands.common import (LLONG_MAX, NUMKEYS, ORDER_TIP,
                                      RANDOM_TIP, SYNTAX, option_pairs,
                                      also_propagate, no_propagation,
                                      parse_positive, parse_ranged,
                                      propagate_as, read, record_removal,
                                      store_result, write)
from rcluster.commands.table import CommandError, KeySpec, command, key_range
from rcluster.notify import GENERIC, SET, notify
from rcluster.commands.scanning import (SCAN_COMPLEXITY, hash_window,
                                        parse_cursor, parse_scan_options)
from rcluster.resp.codec import SetReply

_G = dict(group="set")
NEGATIVE_LIMIT = "ERR LIMIT can't be negative"

# Sets this big pop in hash-table order (effectively random, as bytes hashes
# are salted per process) rather than paying O(N) for a uniform pick.
_BIG_SET = 1024


# -- set helpers --------------------------------------------------------------

_INT64 = re.compile(rb"(?:0|-?[1-9][0-9]{0,18})\Z")


def is_intset(members, max_entries: int) -> bool:
    """Would Redis keep these members in an intset?"""
    if len(members) > max_entries:
        return False
    for member in members:
        if _INT64.match(member) is None or \
                not -2**63 <= int(member) < 2**63:
            return False
    return True


def ordered(c, members) -> list:
    """The members in the order Redis lists them: numeric for an intset."""
    if is_intset(members, c.server.settings.set_max_intset_entries):
        return sorted(members, key=int)
    return list(members)


def _sets(c, keys) -> list:
    """The sets at keys (None for a missing key); WRONGTYPE if any key
    holds another type, whatever the others hold."""
    return [read(c, key, set) for key in keys]


# -- commands -----------------------------------------------------------------

@command("sadd", -3, "write denyoom fast", keys=(1, 1, 1, "RW insert"),
         summary="Add one or more members to a set",
         complexity="O(1) for each element added, so O(N) to add N elements "
                    "when the command is called with multiple arguments.",
         **_G)
def sadd(c, argv):
    key = argv[1]
    ks = c.server.keyspace
    members = write(c, key, set)
    if members is None:
        members = set(argv[2:])
        ks.add(key, members)
        ks.touch(key, len(members) - 1)   # Redis counts each member added
        notify(c, SET, b"sadd", key)
        return len(members)
    before = len(members)
    members.update(argv[2:])
    added = len(members) - before
    ks.touch(key, added)
    if added:
        notify(c, SET, b"sadd", key)
    return added


@command("srem", -3, "write fast", keys=(1, 1, 1, "RW delete"),
         summary="Remove one or more members from a set",
         complexity="O(N) where N is the number of members to be removed.",
         **_G)
def srem(c, argv):
    key = argv[1]
    members = write(c, key, set)
    if members is None:
        return 0
    removed = 0
    for member in argv[2:]:
        if member in members:
            members.remove(member)
            removed += 1
    record_removal(c, key, members, removed, SET, b"srem")
    return removed


@command("smove", 4, "write fast",
         specs=[key_range(1, 1, 1, ("RW", "access", "delete")),
                key_range(2, 2, 1, ("RW", "insert"))],
         summary="Move a member from one set to another",
         complexity="O(1)",
         **_G)
def smove(c, argv):
    source_key, dest_key, member = argv[1], argv[2], argv[3]
    source = write(c, source_key, set)
    if source is None:
        return 0
    dest = write(c, dest_key, set)
    if source is dest:
        return int(member in source)
    if member not in source:
        return 0
    ks = c.server.keyspace
    source.remove(member)
    record_removal(c, source_key, source, 1, SET, b"srem")
    if dest is None:
        ks.add(dest_key, {member})
    elif member not in dest:
        dest.add(member)
        ks.touch(dest_key)
    else:
        return 1
    notify(c, SET, b"sadd", dest_key)
    return 1


@command("sismember", 3, "readonly fast", keys=(1, 1, 1, "RO"),
         summary="Determine if a given value is a member of a set",
         complexity="O(1)",
         **_G)
def sismember(c, argv):
    members = read(c, argv[1], set)
    return int(members is not None and argv[2] in members)


@command("smismember", -3, "readonly fast", keys=(1, 1, 1, "RO access"),
         summary="Returns the membership associated with the given elements "
                 "for a set", since="6.2.0",
         complexity="O(N) where N is the number of elements being checked for"
                    " membership",
         **_G)
def smismember(c, argv):
    members = read(c, argv[1], set) or ()
    return [int(member in members) for member in argv[2:]]


@command("scard", 2, "readonly fast", keys=(1, 1, 1, "RO"),
         summary="Get the number of members in a set",
         complexity="O(1)",
         **_G)
def scard(c, argv):
    members = read(c, argv[1], set)
    return 0 if members is None else len(members)


@command("smembers", 2, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get all the members in a set", tips=ORDER_TIP,
         complexity="O(N) where N is the set cardinality.",
         **_G)
def smembers(c, argv):
    members = read(c, argv[1], set)
    return SetReply(ordered(c, members) if members else ())


@command("spop", -2, "write fast", keys=(1, 1, 1, "RW access delete"),
         summary="Remove and return one or multiple random members from a set",
         tips=RANDOM_TIP,
         complexity="Without the count argument O(1), otherwise O(N) where N "
                    "is the value of the passed count.",
         **_G)
def spop(c, argv):
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    if len(argv) == 3:
        return _spop_count(c, argv[1], parse_positive(argv[2]))
    key = argv[1]
    members = write(c, key, set)
    if members is None:
        return None
    if len(members) > _BIG_SET:
        member = members.pop()
    else:
        member = random.choice(tuple(members))
        members.remove(member)
    record_removal(c, key, members, 1, SET, b"spop")
    propagate_as(c, [b"SREM", key, member])
    return member


def _spop_count(c, key, count):
    members = write(c, key, set)
    if members is None or count == 0:
        return SetReply()
    ks = c.server.keyspace
    notify(c, SET, b"spop", key)
    if count >= len(members):
        popped = ordered(c, members)
        ks.delete(key)
        notify(c, GENERIC, b"del", key)
        ks.touch(key, len(popped) - 1)
        propagate_as(c, [b"DEL", key])
        return SetReply(popped)
    popped = random.sample(tuple(members), count)
    members.difference_update(popped)
    ks.touch(key, count)
    # One SREM per member (wrapped in MULTI/EXEC), as Redis does.
    for member in popped:
        also_propagate(c, [b"SREM", key, member])
    no_propagation(c)
    return SetReply(popped)


@command("srandmember", -2, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Get one or multiple random members from a set",
         tips=RANDOM_TIP,
         complexity="Without the count argument O(1), otherwise O(N) where N "
                    "is the absolute value of the passed count.",
         **_G)
def srandmember(c, argv):
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    if len(argv) == 2:
        members = read(c, argv[1], set)
        return None if members is None else random.choice(tuple(members))
    count = parse_ranged(argv[2], -LLONG_MAX, LLONG_MAX)
    members = read(c, argv[1], set)
    if members is None or count == 0:
        return []
    if count < 0 or count == 1:
        # Repetitions allowed: each pick samples the whole set.
        return random.choices(tuple(members), k=abs(count))
    if count >= len(members):
        return ordered(c, members)
    return random.sample(tuple(members), count)


# -- SINTER / SUNION / SDIFF ------------------------------------------------

def _intersection(c, keys, limit=0):
    """The members common to every set at keys, in Redis's order (that of
    the smallest set); stops after ``limit`` members if given."""
    sets = _sets(c, keys)
    if any(s is None for s in sets):
        return []
    sets.sort(key=len)
    first, others = sets[0], sets[1:]
    out = []
    for member in ordered(c, first):
        if all(member in other for other in others):
            out.append(member)
            if len(out) == limit:
                break
    return out


def _union(c, keys) -> set:
    result = set()
    for members in _sets(c, keys):
        if members:
            result |= members
    return result


def _difference(c, keys) -> set:
    sets = _sets(c, keys)
    if sets[0] is None:
        return set()
    result = set(sets[0])
    for members in sets[1:]:
        if members:
            result -= members
    return result


_INTER_COMPLEXITY = ("O(N*M) worst case where N is the cardinality of the "
                     "smallest set and M is the number of sets.")


@command("sinter", -2, "readonly", keys=(1, -1, 1, "RO access"),
         summary="Intersect multiple sets", tips=ORDER_TIP,
         complexity=_INTER_COMPLEXITY, **_G)
def sinter(c, argv):
    return SetReply(_intersection(c, argv[1:]))


@command("sintercard", -3, "readonly movablekeys",
         specs=[KeySpec(flags=("RO", "access"), index=1, keynumidx=0)],
         summary="Intersect multiple sets and return the cardinality of the "
                 "result", since="7.0.0",
         complexity=_INTER_COMPLEXITY, **_G)
def sintercard(c, argv):
    numkeys = parse_ranged(argv[1], 1, LLONG_MAX, NUMKEYS)
    if numkeys > len(argv) - 2:
        raise CommandError(
            "ERR Number of keys can't be greater than number of args")
    limit = 0
    for option, value in option_pairs(argv, 2 + numkeys):
        if option != b"limit":
            raise CommandError(SYNTAX)
        limit = parse_positive(value, NEGATIVE_LIMIT)
    return len(_intersection(c, argv[2:2 + numkeys], limit))


_STORE_SPECS = [key_range(1, 1, 1, ("OW", "update")),
                key_range(2, -1, 1, ("RO", "access"))]


@command("sinterstore", -3, "write denyoom",
         specs=[key_range(1, 1, 1, ("RW", "update")), _STORE_SPECS[1]],
         summary="Intersect multiple sets and store the resulting set in a "
                 "key",
         complexity=_INTER_COMPLEXITY, **_G)
def sinterstore(c, argv):
    return store_result(c, argv[1], set(_intersection(c, argv[2:])), SET,
                        b"sinterstore")


_UNION_DIFF_COMPLEXITY = ("O(N) where N is the total number of elements in "
                          "all given sets.")


@command("sunion", -2, "readonly", keys=(1, -1, 1, "RO access"),
         summary="Add multiple sets", tips=ORDER_TIP,
         complexity=_UNION_DIFF_COMPLEXITY, **_G)
def sunion(c, argv):
    return SetReply(ordered(c, _union(c, argv[1:])))


@command("sunionstore", -3, "write denyoom", specs=_STORE_SPECS,
         summary="Add multiple sets and store the resulting set in a key",
         complexity=_UNION_DIFF_COMPLEXITY, **_G)
def sunionstore(c, argv):
    return store_result(c, argv[1], _union(c, argv[2:]), SET,
                        b"sunionstore")


@command("sdiff", -2, "readonly", keys=(1, -1, 1, "RO access"),
         summary="Subtract multiple sets", tips=ORDER_TIP,
         complexity=_UNION_DIFF_COMPLEXITY, **_G)
def sdiff(c, argv):
    return SetReply(ordered(c, _difference(c, argv[1:])))


@command("sdiffstore", -3, "write denyoom", specs=_STORE_SPECS,
         summary="Subtract multiple sets and store the resulting set in a key",
         complexity=_UNION_DIFF_COMPLEXITY, **_G)
def sdiffstore(c, argv):
    return store_result(c, argv[1], _difference(c, argv[2:]), SET,
                        b"sdiffstore")


@command("sscan", -3, "readonly", keys=(1, 1, 1, "RO access"),
         summary="Incrementally iterate Set elements", since="2.8.0",
         tips=RANDOM_TIP,
         complexity=SCAN_COMPLEXITY, **_G)
def sscan(c, argv):
    cursor = parse_cursor(argv[2])
    members = read(c, argv[1], set)
    if members is None:
        return [b"0", []]
    count, match, _ = parse_scan_options(argv, 3)
    if is_intset(members, c.server.settings.set_max_intset_entries):
        cursor, found = 0, sorted(members, key=int)
    else:
        cursor, found = hash_window(members, cursor, count)
    if match is not None:
        found = [member for member in found if match(member)]
    return [b"%d" % cursor, found]
