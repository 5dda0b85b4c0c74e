"""SCAN-family helpers shared by SCAN, SSCAN, HSCAN and ZSCAN: the cursor
and option parsing, and the hash-window walk over a container."""
from __future__ import annotations

import re

from rcluster.commands.common import SYNTAX, option_pairs, parse_int
from rcluster.commands.table import CommandError
from rcluster.glob import compile_glob

SCAN_COMPLEXITY = ("O(1) for every call. O(N) for a complete iteration, "
                   "including enough command calls for the cursor to return "
                   "back to 0. N is the number of elements inside the "
                   "collection..")
_SCAN_SPACE = 1 << 64
_CURSOR = re.compile(rb"([+-]?)([0-9]*)\Z")


def parse_cursor(arg: bytes) -> int:
    """Redis's strtoul rules: a sign is allowed ("-1" wraps around), an
    empty string is cursor 0, spaces and overflow are not."""
    match = _CURSOR.match(arg)
    if match is None or (match.group(1) and not match.group(2)):
        raise CommandError("ERR invalid cursor")
    value = int(match.group(2) or b"0")
    if value >= _SCAN_SPACE:
        raise CommandError("ERR invalid cursor")
    return -value % _SCAN_SPACE if match.group(1) == b"-" else value


def parse_scan_options(argv, start: int, with_type: bool = False):
    """COUNT and MATCH after the cursor (and TYPE, for SCAN ``with_type``)
    -> (count, match predicate or None, type name or None)."""
    count, match, type_name = 10, None, None
    for option, value in option_pairs(argv, start):
        if option == b"count":
            count = parse_int(value)
            if count < 1:
                raise CommandError(SYNTAX)
        elif option == b"match":
            match = None if value == b"*" else compile_glob(value)
        elif option == b"type" and with_type:
            type_name = value.lower()
        else:
            raise CommandError(SYNTAX)
    return count, match, type_name


def hash_window(members, cursor: int, count: int):
    """One SCAN step over a big container: (next cursor, members).

    The cursor is a position in the 64-bit space of member hashes; a step
    returns the members whose hash falls in [cursor, next).  Windows tile
    the space, so every member present for a whole iteration is returned
    exactly once whatever is added or removed meanwhile.  A step costs
    O(N), so windows hold at least N/64 members (COUNT is only a hint)."""
    size = len(members)
    width = max(1, _SCAN_SPACE * max(count, size // 64) // size)
    end = cursor + width
    picked = [m for m in members if cursor <= hash(m) % _SCAN_SPACE < end]
    return (0 if end >= _SCAN_SPACE else end), picked
