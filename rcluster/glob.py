"""Redis's glob-style patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET).

Same rules as Redis's stringmatchlen: ``*``, ``?``, ``[abc]``, ``[^a]``,
``[a-z]`` (reversed ranges allowed), ``\\x`` escapes, an unterminated
``[`` closes at the end of the pattern.  Patterns are translated once to a
compiled regular expression and cached.
"""
from __future__ import annotations

import re
from functools import lru_cache


def _byte(value: int) -> bytes:
    return re.escape(bytes([value]))


@lru_cache(maxsize=1024)
def _compile(pattern: bytes, nocase: bool):
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 42:  # *
            while i + 1 < n and pattern[i + 1] == 42:
                i += 1
            out.append(b".*")
        elif c == 63:  # ?
            out.append(b".")
        elif c == 91:  # [
            i += 1
            negate = i < n and pattern[i] == 94
            if negate:
                i += 1
            items = []
            while i < n and pattern[i] != 93:
                if pattern[i] == 92 and i + 1 < n:
                    i += 1
                    items.append(_byte(pattern[i]))
                elif i + 2 < n and pattern[i + 1] == 45:
                    lo, hi = sorted((pattern[i], pattern[i + 2]))
                    items.append(_byte(lo) + b"-" + _byte(hi))
                    i += 2
                else:
                    items.append(_byte(pattern[i]))
                i += 1
            if items:
                out.append(b"[" + (b"^" if negate else b"") + b"".join(items) + b"]")
            else:
                out.append(b"." if negate else b"(?!)")
        elif c == 92 and i + 1 < n:  # backslash escape
            i += 1
            out.append(_byte(pattern[i]))
        else:
            out.append(_byte(c))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE if nocase else 0)
    return re.compile(b"".join(out) + b"\\Z", flags)


def glob_match(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    if pattern == b"*":
        return True
    return _compile(pattern, nocase).match(string) is not None


def compile_glob(pattern: bytes, nocase: bool = False):
    """A predicate for one pattern, for loops over many strings."""
    if pattern == b"*":
        return lambda string: True
    match = _compile(pattern, nocase).match
    return lambda string: match(string) is not None
