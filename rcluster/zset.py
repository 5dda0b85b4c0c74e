"""The sorted set value type.

A ``ZSet`` is a dict member -> score plus an ordered index of
``(score, member)`` pairs, so members sort exactly as in Redis: by score,
then by member bytes (memcmp order, a prefix first).  Ranks, score ranges
and lexicographic ranges are bisections of that index.

``compact`` mirrors Redis's encoding (listpack while the set is small,
skiplist once it outgrew ``zset-max-listpack-*``; never back), because
ZSCAN and OBJECT ENCODING show it.  The commands decide when it flips.
"""
from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from operator import itemgetter

from sortedcontainers import SortedList

_score = itemgetter(0)
_member = itemgetter(1)


@dataclass(frozen=True, slots=True)
class ScoreRange:
    """min/max scores; ``*_ex`` for an open ("(1.5") end."""
    min: float
    max: float
    min_ex: bool = False
    max_ex: bool = False


# The "-" and "+" ends of a lexicographic range: below and above any member.
LEX_MIN = object()
LEX_MAX = object()


@dataclass(frozen=True, slots=True)
class LexRange:
    """min/max members (bytes, LEX_MIN or LEX_MAX); ``*_ex`` for "(a"."""
    min: object
    max: object
    min_ex: bool = False
    max_ex: bool = False


def _listpack_zero(score: float) -> float:
    """A listpack stores -0 as the integer 0."""
    return 0.0 if score == 0 else score


class ZSet:
    TYPE_NAME = "zset"
    __slots__ = ("scores", "order", "compact")

    def __init__(self, scores=None, compact=True):
        scores = dict(scores or ())
        if compact:
            scores = {m: _listpack_zero(s) for m, s in scores.items()}
        self.scores: dict = scores        # member -> score
        self.order = SortedList((s, m) for m, s in self.scores.items())
        self.compact = compact

    @property
    def encoding(self) -> str:
        return "listpack" if self.compact else "skiplist"

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, member) -> bool:
        return member in self.scores

    def __iter__(self):
        """(member, score) pairs, in order."""
        for score, member in self.order:
            yield member, score

    def __repr__(self):
        return f"ZSet({list(self)!r})"

    def score(self, member):
        return self.scores.get(member)

    # -- changes --------------------------------------------------------
    def add(self, member: bytes, score: float):
        """Insert member, or move it to a new score."""
        if self.compact:
            score = _listpack_zero(score)
        old = self.scores.get(member)
        if old is not None:
            if old == score:
                return
            self.order.remove((old, member))
        self.scores[member] = score
        self.order.add((score, member))

    def remove(self, member: bytes) -> bool:
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self.order.remove((score, member))
        return True

    def remove_span(self, start: int, stop: int) -> int:
        """Remove the members at ranks [start, stop); returns how many."""
        doomed = self.order[start:stop]
        del self.order[start:stop]
        for _, member in doomed:
            del self.scores[member]
        return len(doomed)

    def pop(self, count: int, highest: bool) -> list:
        """Remove and return up to count (member, score) pairs from one end."""
        out = []
        for _ in range(min(count, len(self.order))):
            score, member = self.order.pop(-1 if highest else 0)
            del self.scores[member]
            out.append((member, score))
        return out

    # -- positions ------------------------------------------------------
    def rank(self, member: bytes, reverse: bool = False):
        score = self.scores.get(member)
        if score is None:
            return None
        rank = self.order.bisect_left((score, member))
        return len(self.order) - 1 - rank if reverse else rank

    def items(self, start: int, stop: int, reverse: bool = False) -> list:
        """(member, score) pairs at ranks [start, stop), backwards if
        reverse."""
        pairs = self.order.islice(start, stop, reverse=reverse)
        return [(m, s) for s, m in pairs]

    def at(self, rank: int):
        """The (member, score) pair at a rank."""
        score, member = self.order[rank]
        return member, score

    def random_item(self):
        return self.at(random.randrange(len(self.order)))

    def score_span(self, spec: ScoreRange):
        """Ranks [start, stop) of the members whose score is in spec."""
        order = self.order
        find = bisect_right if spec.min_ex else bisect_left
        start = find(order, spec.min, key=_score)
        find = bisect_left if spec.max_ex else bisect_right
        stop = find(order, spec.max, key=_score)
        return start, max(start, stop)

    def lex_span(self, spec: LexRange):
        """Ranks [start, stop) of the members in a lexicographic range (its
        meaning assumes equal scores, as in Redis)."""
        start = self._lex_bound(spec.min, spec.min_ex)
        stop = self._lex_bound(spec.max, not spec.max_ex)
        return start, max(start, stop)

    def _lex_bound(self, value, after: bool) -> int:
        """The first rank whose member is > value (after) or >= value."""
        if value is LEX_MIN:
            return 0
        if value is LEX_MAX:
            return len(self.order)
        find = bisect_right if after else bisect_left
        return find(self.order, value, key=_member)
