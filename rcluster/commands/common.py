"""Helpers every command family shares: argument parsing, typed lookups,
and Redis's error texts (one place, so they stay identical everywhere)."""
from __future__ import annotations

import math
from collections import deque
from decimal import Decimal

from rcluster.commands.table import CommandError
from rcluster.resp.codec import Error

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INT = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
NO_KEY = "ERR no such key"
OUT_OF_RANGE = "ERR index out of range"
OVERFLOW = "ERR increment or decrement would overflow"
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"

LLONG_MIN = -2**63
LLONG_MAX = 2**63 - 1


def parse_int(arg: bytes, error: str = NOT_INT, low=LLONG_MIN,
              high=LLONG_MAX) -> int:
    """Redis's string2ll: an optional '-', digits, no leading zeros."""
    n = len(arg)
    if 0 < n <= 20:
        body = arg[1:] if arg[:1] == b"-" else arg
        if body.isdigit() and (body[:1] != b"0" or len(body) == 1) and \
                arg != b"-0":
            value = int(arg)
            if low <= value <= high:
                return value
    raise CommandError(error)


def parse_positive(arg: bytes, what="value") -> int:
    value = parse_int(arg)
    if value < 0:
        raise CommandError(f"ERR {what} is out of range, must be positive")
    return value


def parse_float(arg: bytes, error: str = NOT_FLOAT) -> float:
    """Redis's strtod checks: no spaces, no NaN; inf is allowed."""
    if not arg or arg[:1].isspace() or arg[-1:].isspace() or b"_" in arg:
        raise CommandError(error)
    try:
        value = float(arg)
    except ValueError:
        raise CommandError(error) from None
    if math.isnan(value):
        raise CommandError(error)
    return value


def format_float(value: float) -> bytes:
    """INCRBYFLOAT/HINCRBYFLOAT output: shortest form, never exponents."""
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text.encode()


def parse_timeout(arg: bytes, now_ms: int) -> int:
    """Blocking command timeout in seconds (float) -> relative ms, 0=forever."""
    try:
        seconds = parse_float(arg, TIMEOUT_NOT_FLOAT)
    except CommandError:
        raise
    if seconds < 0:
        raise CommandError(TIMEOUT_NEGATIVE)
    if math.isinf(seconds) or seconds * 1000 > LLONG_MAX - now_ms:
        raise CommandError(TIMEOUT_NOT_FLOAT)
    return int(seconds * 1000 + 0.5) if seconds else 0


def lower(arg: bytes) -> bytes:
    return arg.lower()


# -- typed access to the keyspace -----------------------------------------

def type_name(value) -> str:
    cls = value.__class__
    if cls is bytes:
        return "string"
    if cls is deque:
        return "list"
    if cls is dict:
        return "hash"
    if cls is set:
        return "set"
    return getattr(value, "TYPE_NAME", "none")


def read(c, key: bytes, cls):
    """The value at key for a read (counts hits/misses), or None;
    WRONGTYPE if it holds another type."""
    value = c.server.keyspace.lookup(key)
    stats = c.server.stats
    if value is None:
        stats.keyspace_misses += 1
        return None
    stats.keyspace_hits += 1
    if value.__class__ is not cls:
        raise CommandError(WRONGTYPE)
    return value


def write(c, key: bytes, cls):
    """The value at key for a write, or None; WRONGTYPE on another type."""
    value = c.server.keyspace.lookup(key)
    if value is not None and value.__class__ is not cls:
        raise CommandError(WRONGTYPE)
    return value


def write_or_create(c, key: bytes, cls):
    """The container at key, created empty (and stored) when missing."""
    ks = c.server.keyspace
    value = ks.lookup(key)
    if value is None:
        value = cls()
        ks.add(key, value)
        return value
    if value.__class__ is not cls:
        raise CommandError(WRONGTYPE)
    return value


def drop_if_empty(c, key: bytes, container) -> bool:
    """Containers never stay empty in Redis: delete the key if it is."""
    if not container:
        c.server.keyspace.delete(key)
        return True
    return False


def error(text: str) -> Error:
    return Error(text)
