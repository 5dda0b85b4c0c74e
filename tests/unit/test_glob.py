"""Glob patterns (rcluster/glob.py) against Redis's stringmatchlen rules."""
import random

from twisted.trial.unittest import TestCase

from rcluster.glob import compile_glob, glob_match


def stringmatch(pattern: bytes, string: bytes, nocase=False) -> bool:
    """A direct transcription of Redis 7.0's stringmatchlen (util.c), used
    as the oracle: slow and recursive, but obviously faithful."""
    def low(c):
        return c + 32 if nocase and 65 <= c <= 90 else c

    p = s = 0
    while p < len(pattern) and s < len(string):
        c = pattern[p]
        if c == 42:                                     # *
            while p + 1 < len(pattern) and pattern[p + 1] == 42:
                p += 1
            if p + 1 == len(pattern):
                return True
            return any(stringmatch(pattern[p + 1:], string[k:], nocase)
                       for k in range(s, len(string)))
        if c == 63:                                     # ?
            s += 1
        elif c == 91:                                   # [
            p += 1
            negate = p < len(pattern) and pattern[p] == 94
            if negate:
                p += 1
            match = False
            while True:
                if p < len(pattern) and pattern[p] == 92 and \
                        len(pattern) - p >= 2:
                    p += 1
                    match |= pattern[p] == string[s]
                elif p < len(pattern) and pattern[p] == 93:
                    break
                elif p >= len(pattern):
                    p -= 1
                    break
                elif len(pattern) - p >= 3 and pattern[p + 1] == 45:
                    start, end = sorted((pattern[p], pattern[p + 2]))
                    match |= low(start) <= low(string[s]) <= low(end)
                    p += 2
                else:
                    match |= low(pattern[p]) == low(string[s])
                p += 1
            if negate:
                match = not match
            if not match:
                return False
            s += 1
        else:
            if c == 92 and len(pattern) - p >= 2:       # backslash
                p += 1
                c = pattern[p]
            if low(c) != low(string[s]):
                return False
            s += 1
        p += 1
        if s == len(string):
            while p < len(pattern) and pattern[p] == 42:
                p += 1
            break
    return p == len(pattern) and s == len(string)


class GlobTests(TestCase):
    def check(self, pattern, string, expected, nocase=False):
        self.assertEqual(glob_match(pattern, string, nocase), expected,
                         (pattern, string))
        self.assertEqual(stringmatch(pattern, string, nocase), expected,
                         (pattern, string, "oracle"))

    def test_stars_and_question_marks(self):
        self.assertTrue(glob_match(b"*", b""))      # KEYS *'s shortcut
        self.check(b"**", b"", False)                 # stringmatchlen's rule
        self.check(b"h?llo", b"hello", True)
        self.check(b"h*llo", b"hllo", True)
        self.check(b"h*llo", b"heeeello", True)
        self.check(b"a*b*c", b"axxbyyc", True)
        self.check(b"a*b*c", b"axxbyy", False)
        self.check(b"**a**", b"xay", True)
        self.check(b"", b"", True)
        self.check(b"", b"a", False)
        self.check(b"*\n", b"line\n", True)

    def test_classes(self):
        self.check(b"h[ae]llo", b"hallo", True)
        self.check(b"h[^e]llo", b"hello", False)
        self.check(b"h[a-b]llo", b"hbllo", True)
        self.check(b"h[b-a]llo", b"hallo", True)        # reversed range
        self.check(b"[]x", b"]x", False)                # empty class
        self.check(b"[^]x", b"zx", True)
        self.check(b"a[bc", b"ac", True)                # unterminated
        self.check(b"[a-]", b"]", True)                 # a range up to ']'
        self.check(b"[*]", b"*", True)
        self.check(b"[\\]]", b"]", True)

    def test_escapes(self):
        self.check(b"a\\*b", b"a*b", True)
        self.check(b"a\\*b", b"axb", False)
        self.check(b"a\\", b"a\\", True)                # trailing backslash

    def test_nocase(self):
        self.check(b"HeLLo*", b"hello world", True, nocase=True)
        self.check(b"[A-C]x", b"bx", True, nocase=True)
        self.check(b"HeLLo*", b"hello world", False)

    def test_compile_glob(self):
        match = compile_glob(b"news.*")
        self.assertEqual([match(b"news.art"), match(b"sport")], [True, False])
        self.assertTrue(compile_glob(b"*")(b"anything"))

    def test_same_answers_as_redis(self):
        rng = random.Random(7)
        alphabet = b"ab*?[]^-\\"
        for _ in range(4000):
            pattern = bytes(rng.choice(alphabet)
                            for _ in range(rng.randrange(8)))
            string = bytes(rng.choice(b"ab]^-*\\")
                           for _ in range(rng.randrange(7)))
            nocase = rng.random() < 0.2
            if pattern == b"*":
                continue        # match-all, like Redis's KEYS * shortcut
            self.assertEqual(glob_match(pattern, string, nocase),
                             stringmatch(pattern, string, nocase),
                             (pattern, string, nocase))

    def test_hostile_pattern_is_linear(self):
        # Backtracking matchers take seconds (or forever) here.
        self.assertFalse(glob_match(b"*a*a*a*a*a*a*a*b", b"a" * 5000))
        self.assertTrue(glob_match(b"*a*a*a*a*a*a*a*b", b"a" * 5000 + b"b"))
