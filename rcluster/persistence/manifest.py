"""The multi-part AOF manifest (Redis 7.0's aofManifest), sans-IO.

``appenddirname/<appendfilename>.manifest`` lists the files that make
the append-only file, one per line::

    file appendonly.aof.1.base.rdb seq 1 type b
    file appendonly.aof.1.incr.aof seq 1 type i

``b`` is the base (an RDB image, ``.base.rdb``, or commands,
``.base.aof``), ``i`` the incremental files in sequence order, ``h``
history files a rewrite made obsolete (deleted right after).  A name that
needs quoting is written the way Redis's sdscatrepr does.  Parsing
follows aofLoadManifestFromFile: comments (``#``), pairs of
``key value`` in any order (unknown keys ignored, for forward
compatibility), and the same fatal errors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rcluster.config import repr_bytes
from rcluster.resp.codec import split_args

BASE, HISTORY, INCR = "b", "h", "i"
MAX_LINE = 1024
_NEEDS_REPR = frozenset(b'\\"\n\r\t\a\b ')


class ManifestError(Exception):
    """A manifest Redis would refuse: ``str()`` is Redis's reason, and
    ``line``/``text`` locate it (0/"" for whole-file errors)."""

    def __init__(self, reason: str, line: int = 0, text: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.text = text

    def describe(self, path: str) -> str:
        where = f" at line {self.line} ('{self.text}')" if self.line else ""
        return f"Bad AOF manifest {path}{where}: {self.reason}"


@dataclass
class AofInfo:
    name: str
    seq: int
    type: str

    def format(self) -> str:
        raw = self.name.encode("utf-8", "surrogateescape")
        name = repr_bytes(raw) if any(
            b in _NEEDS_REPR or not 32 <= b < 127 for b in raw) else self.name
        return f"file {name} seq {self.seq} type {self.type}\n"


@dataclass
class Manifest:
    base: AofInfo | None = None
    history: list = field(default_factory=list)
    incrs: list = field(default_factory=list)
    base_seq: int = 0
    incr_seq: int = 0

    # -- text --------------------------------------------------------------
    @classmethod
    def parse(cls, text: bytes) -> "Manifest":
        am = cls()
        maxseq = 0
        lines = text.split(b"\n")
        if not text:
            raise ManifestError("Found an empty AOF manifest")
        for number, raw in enumerate(lines, 1):
            if number == len(lines) and not raw:
                break       # the newline ending the last line
            if raw.startswith(b"#"):
                continue
            shown = raw.strip(b" \t\r\n").decode("utf-8", "replace")
            if len(raw) + 1 > MAX_LINE:
                raise ManifestError(
                    "The AOF manifest file contains too long line", number,
                    shown)
            if number == len(lines):
                # No newline after it: fgets read a partial line.
                raise ManifestError(
                    "The AOF manifest file contains too long line", number,
                    shown)
            line = raw.strip(b" \t\r\n")
            argv = split_args(line) if line else None
            if not argv or len(argv) < 6 or len(argv) % 2:
                raise ManifestError("Invalid AOF manifest file format",
                                    number, shown)
            name = seq = kind = None
            for key, value in zip(argv[::2], argv[1::2]):
                key = key.lower()
                if key == b"file":
                    name = value.decode("utf-8", "surrogateescape")
                    if "/" in name or name in ("", ".", ".."):
                        raise ManifestError(
                            "File can't be a path, just a filename", number,
                            shown)
                elif key == b"seq":
                    seq = _atoll(value)
                elif key == b"type":
                    kind = value[:1].decode("latin-1")
            if not name or not seq or not kind:
                raise ManifestError("Invalid AOF manifest file format",
                                    number, shown)
            info = AofInfo(name, seq, kind)
            if kind == BASE:
                if am.base is not None:
                    raise ManifestError(
                        "Found duplicate base file information", number,
                        shown)
                am.base = info
                am.base_seq = seq
            elif kind == HISTORY:
                am.history.append(info)
            elif kind == INCR:
                if seq <= maxseq:
                    raise ManifestError(
                        "Found a non-monotonic sequence number", number,
                        shown)
                am.incrs.append(info)
                am.incr_seq = maxseq = seq
            else:
                raise ManifestError("Unknown AOF file type", number, shown)
        return am

    def format(self) -> bytes:
        out = []
        if self.base is not None:
            out.append(self.base.format())
        out.extend(info.format() for info in self.history)
        out.extend(info.format() for info in self.incrs)
        return "".join(out).encode("utf-8", "surrogateescape")

    # -- changes (each on a copy first, then swapped in) ---------------------
    def copy(self) -> "Manifest":
        return Manifest(
            None if self.base is None else AofInfo(**vars(self.base)),
            [AofInfo(**vars(i)) for i in self.history],
            [AofInfo(**vars(i)) for i in self.incrs],
            self.base_seq, self.incr_seq)

    def new_base(self, filename: str, rdb: bool) -> str:
        """getNewBaseFileNameAndMarkPreAsHistory."""
        if self.base is not None:
            self.base.type = HISTORY
            self.history.insert(0, self.base)
        self.base_seq += 1
        name = "%s.%d.base.%s" % (filename, self.base_seq,
                                  "rdb" if rdb else "aof")
        self.base = AofInfo(name, self.base_seq, BASE)
        return name

    def new_incr(self, filename: str) -> str:
        """getNewIncrAofName."""
        self.incr_seq += 1
        name = "%s.%d.incr.aof" % (filename, self.incr_seq)
        self.incrs.append(AofInfo(name, self.incr_seq, INCR))
        return name

    def last_incr(self, filename: str) -> str:
        """getLastIncrAofName: the one being appended to, or a new one."""
        if not self.incrs:
            return self.new_incr(filename)
        return self.incrs[-1].name

    def mark_rewritten_incrs(self, keep_last: bool):
        """markRewrittenIncrAofAsHistory: every incr file but the open one
        (``keep_last``) becomes history."""
        keep = self.incrs[-1:] if keep_last else []
        done = self.incrs[:-1] if keep_last else self.incrs
        for info in reversed(done):
            self.history.insert(0, AofInfo(info.name, info.seq, HISTORY))
        self.incrs = keep

    @property
    def files(self) -> list:
        """The files to load, in order: the base, then the incr files."""
        return ([self.base] if self.base is not None else []) + self.incrs


def _atoll(value: bytes) -> int:
    """C's atoll: leading digits, 0 when there are none."""
    text = value.decode("latin-1").strip()
    sign = 1
    if text[:1] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0
