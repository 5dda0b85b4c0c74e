"""Redis's glob-style patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET).

Same rules as Redis's stringmatchlen: ``*``, ``?``, ``[abc]``, ``[^a]``,
``[a-z]`` (reversed ranges allowed), ``\\x`` escapes, an unterminated
``[`` closes at the end of the pattern.

A pattern is compiled once (and cached) into the fixed-length pieces
between its stars, each a small regular expression without repetition.
Matching anchors the first piece at the start and the last at the end, and
finds the middle ones left to right: leftmost is always right because every
piece has a fixed length, so no backtracking is needed and hostile patterns
(``*a*a*a*a*b``) cost O(len(pattern) * len(string)) instead of blowing up.
"""
from __future__ import annotations

import re
from functools import lru_cache


def _byte(value: int) -> bytes:
    return re.escape(bytes([value]))


def _char_class(pattern: bytes, i: int):
    """The regex for a [...] class starting after its '[' at i, and the
    index of its closing ']' (or the pattern's end)."""
    n = len(pattern)
    negate = i < n and pattern[i] == 94    # ^
    if negate:
        i += 1
    items = []
    while i < n and pattern[i] != 93:      # ]
        if pattern[i] == 92 and i + 1 < n:  # backslash escape
            i += 1
            items.append(_byte(pattern[i]))
        elif i + 2 < n and pattern[i + 1] == 45:    # a-z, or z-a
            low, high = sorted((pattern[i], pattern[i + 2]))
            items.append(_byte(low) + b"-" + _byte(high))
            i += 2
        else:
            items.append(_byte(pattern[i]))
        i += 1
    if not items:
        return (b"." if negate else b"(?!)"), i
    return b"[" + (b"^" if negate else b"") + b"".join(items) + b"]", i


def _pieces(pattern: bytes) -> list:
    """The pattern as lists of one-byte regexes, split at its stars."""
    pieces = [[]]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 42:                         # *
            if pieces[-1]:
                pieces.append([])
            elif len(pieces) == 1:
                pieces.append([])           # a leading star
        elif c == 63:                       # ?
            pieces[-1].append(b".")
        elif c == 91:                       # [
            fragment, i = _char_class(pattern, i + 1)
            pieces[-1].append(fragment)
        elif c == 92 and i + 1 < n:         # backslash escape
            i += 1
            pieces[-1].append(_byte(pattern[i]))
        else:
            pieces[-1].append(_byte(c))
        i += 1
    return pieces


@lru_cache(maxsize=1024)
def _compile(pattern: bytes, nocase: bool):
    flags = re.DOTALL | (re.IGNORECASE if nocase else 0)
    pieces = [(re.compile(b"".join(piece), flags), len(piece))
              for piece in _pieces(pattern)]
    if len(pieces) == 1:                    # no star: the whole string
        fullmatch = pieces[0][0].fullmatch
        return lambda string: fullmatch(string) is not None
    (first, first_len), *middle, (last, last_len) = pieces
    shortest = sum(length for _, length in pieces)

    def match(string: bytes) -> bool:
        end = len(string) - last_len
        if end < first_len or len(string) < shortest or not string:
            return False
        if first_len and first.match(string) is None:
            return False
        if last_len and last.fullmatch(string, end) is None:
            return False
        pos = first_len
        for piece, _ in middle:
            found = piece.search(string, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True
    return match


def glob_match(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    # "*" matches everything, as Redis's callers short-cut it (KEYS *, SCAN
    # MATCH *); stringmatchlen itself matches no other pattern to "".
    if pattern == b"*":
        return True
    return _compile(pattern, nocase)(string)


def compile_glob(pattern: bytes, nocase: bool = False):
    """A predicate for one pattern, for loops over many strings."""
    if pattern == b"*":
        return lambda string: True
    return _compile(pattern, nocase)
