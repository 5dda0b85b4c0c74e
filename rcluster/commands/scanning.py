"""SCAN-family helpers shared by SSCAN, HSCAN and ZSCAN: the cursor and
option parsing, and the hash-window walk over a container."""
from __future__ import annotations

import re

from rcluster.commands.common import SYNTAX, parse_int
from rcluster.commands.table import CommandError
from rcluster.glob import compile_glob

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


def parse_scan_options(argv, start: int):
    """COUNT and MATCH after the cursor -> (count, predicate or None)."""
    count, match = 10, None
    i = start
    while i < len(argv):
        option = argv[i].lower()
        if option == b"count" and i + 1 < len(argv):
            count = parse_int(argv[i + 1])
            if count < 1:
                raise CommandError(SYNTAX)
        elif option == b"match" and i + 1 < len(argv):
            match = None if argv[i + 1] == b"*" else compile_glob(argv[i + 1])
        else:
            raise CommandError(SYNTAX)
        i += 2
    return count, match


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
