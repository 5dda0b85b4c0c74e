"""Helpers every command family shares: argument parsing, typed lookups,
and Redis's error texts (one place, so they stay identical everywhere)."""
from __future__ import annotations

import math
import re
from collections import deque

from rcluster.commands.longdouble import is_inf, parse_long_double
from rcluster.commands.table import CommandError, command
from rcluster.notify import GENERIC, KEY_MISS, notify
from rcluster.resp.codec import Error, Status

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INT = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
NO_KEY = "ERR no such key"
OUT_OF_RANGE = "ERR index out of range"
OVERFLOW = "ERR increment or decrement would overflow"
POSITIVE = "ERR value is out of range, must be positive"
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
NUMKEYS = "ERR numkeys should be greater than 0"
COUNT_POSITIVE = "ERR count should be greater than 0"

LLONG_MIN = -2**63
LLONG_MAX = 2**63 - 1

# Command tips (COMMAND DOCS) of the commands whose replies vary.
RANDOM_TIP = ("nondeterministic_output",)
ORDER_TIP = ("nondeterministic_output_order",)


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


def parse_ranged(arg: bytes, low: int, high: int, error: str = None) -> int:
    """Redis's getRangeLongFromObjectOrReply: with a custom error text, that
    text is also the reply to a non-integer."""
    value = parse_int(arg, error or NOT_INT)
    if not low <= value <= high:
        raise CommandError(error or "ERR value is out of range, value must "
                           "between %d and %d" % (low, high))
    return value


def parse_positive(arg: bytes, error: str = POSITIVE) -> int:
    """Redis's getPositiveLongFromObjectOrReply (counts...)."""
    return parse_ranged(arg, 0, LLONG_MAX, error)


_C_SPACE = b" \t\n\v\f\r"
_DECIMAL = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
                      rb"(?:[eE][+-]?[0-9]+)?\Z")
_HEX = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
                  rb"(?:[pP][+-]?[0-9]+)?\Z")
_INFINITY = re.compile(rb"[+-]?inf(?:inity)?\Z", re.IGNORECASE)


def strtod(text: bytes):
    """C's strtod over the whole of text -> (value, out of range), or None.

    Leading spaces are skipped as strtod does; NaN is refused (Redis
    refuses it everywhere); "out of range" is strtod's ERANGE: a finite
    number too big (inf) or too small (0) for a double."""
    body = text.lstrip(_C_SPACE)
    if _DECIMAL.match(body):
        value = float(body)
        mantissa = body.lower().split(b"e")[0]
        digits = b"123456789"
    elif _HEX.match(body):
        try:
            value = float.fromhex(body.decode())
        except OverflowError:
            value = -math.inf if body[:1] == b"-" else math.inf
        mantissa = body.lower().split(b"p")[0].split(b"x")[1]
        digits = b"123456789abcdef"
    elif _INFINITY.match(body):
        return float(body), False
    else:
        return None
    too_small = value == 0 and any(d in digits for d in mantissa)
    return value, math.isinf(value) or too_small


def parse_float(arg: bytes, error: str = NOT_FLOAT) -> float:
    """Redis's string2d / getDoubleFromObject: all of arg is a number (no
    leading space), hex allowed, NaN and overflow/underflow refused."""
    parsed = strtod(arg) if arg and arg[0] not in _C_SPACE else None
    if parsed is None or parsed[1]:
        raise CommandError(error)
    return parsed[0]


def parse_timeout(arg: bytes) -> int:
    """A blocking command's timeout in seconds -> milliseconds, 0 = forever
    (Redis's getTimeoutFromObjectOrReply: long double, rounded up; what
    doesn't fit a long long wraps negative on x86, hence "negative")."""
    seconds = parse_long_double(arg, TIMEOUT_NOT_FLOAT)
    if is_inf(seconds) or abs(seconds) * 1000 >= 2**63:
        raise CommandError(TIMEOUT_NEGATIVE)
    millis = math.ceil(seconds * 1000)
    if millis < 0:
        raise CommandError(TIMEOUT_NEGATIVE)
    return millis


def option_pairs(argv, start: int):
    """(option lower-cased, value) for each OPTION value pair of
    argv[start:], in order; an option without its value is a syntax error."""
    for i in range(start, len(argv), 2):
        if i + 1 >= len(argv):
            raise CommandError(SYNTAX)
        yield argv[i].lower(), argv[i + 1]


def parse_mpop(argv, numkeys_at: int, ends) -> tuple:
    """[B]LMPOP's and [B]ZMPOP's `numkeys key... END [COUNT count]`, END
    one of ``ends`` (lower case) -> (keys, end, count)."""
    numkeys = parse_int(argv[numkeys_at], NUMKEYS, low=1)
    end_at = numkeys_at + numkeys + 1
    if end_at >= len(argv) or argv[end_at].lower() not in ends:
        raise CommandError(SYNTAX)
    count = None
    for option, value in option_pairs(argv, end_at + 1):
        if option != b"count" or count is not None:
            raise CommandError(SYNTAX)
        count = parse_int(value, COUNT_POSITIVE, low=1)
    return argv[numkeys_at + 1:end_at], argv[end_at].lower(), count or 1


def arity_error(argv) -> CommandError:
    """The wrong-number-of-arguments error, for arity rules the command
    table can't express (pairs, an optional count)."""
    return CommandError("ERR wrong number of arguments for '%s' command"
                        % argv[0].lower().decode())


def lower(arg: bytes) -> bytes:
    return arg.lower()


def increment(value: int, delta: int) -> int:
    """value + delta, or Redis's error when it leaves the long long range
    (INCRBY, HINCRBY)."""
    if (delta < 0 and value < 0 and delta < LLONG_MIN - value) or \
            (delta > 0 and value > 0 and delta > LLONG_MAX - value):
        raise CommandError(OVERFLOW)
    return value + delta


def rank_span(start: int, end: int, length: int):
    """Redis's index rules for ranges of a list or sorted set: inclusive
    start and end (negatives count from the end) -> the positions
    [first, stop) inside the container, (0, 0) when the range is empty."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    start = max(start, 0)
    if start > end or start >= length:
        return 0, 0
    return start, min(end, length - 1) + 1


# -- typed access to the keyspace -----------------------------------------
# A string value is ``bytes``, or a ``bytearray`` once a command edits it in
# place (SETBIT, SETRANGE, APPEND, BITFIELD, PFADD...: O(1), no copy).  Both
# are "string" everywhere; read/write(c, key, bytes) accept either.  A live
# bytearray is never a reply (the key may change before the reply is
# written, e.g. later in the same MULTI): reply ``as_bytes(value)``.
STRING_TYPES = (bytes, bytearray)


def is_string(value) -> bool:
    cls = value.__class__
    return cls is bytes or cls is bytearray


def as_bytes(value):
    """A stored string as an immutable reply (a bytearray is copied)."""
    return bytes(value) if value.__class__ is bytearray else value


def unshare_string(c, key: bytes, value) -> bytearray:
    """Redis's dbUnshareStringValue: the string at key (value, from
    ``write``) as a bytearray to edit in place; a bytes value is replaced
    by a bytearray copy, which is not a change by itself.  Count the edits
    with ``keyspace.touch``."""
    if value.__class__ is bytearray:
        return value
    buf = bytearray(value)
    ks = c.server.keyspace
    ks.set(key, buf, keepttl=True)
    ks.dirty -= 1       # same value, another object
    return buf


def type_name(value) -> str:
    cls = value.__class__
    if cls is bytes or cls is bytearray:
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
        if c.server.notify_flags & KEY_MISS:
            notify(c, KEY_MISS, b"keymiss", key)
        return None
    stats.keyspace_hits += 1
    if value.__class__ is not cls and \
            (cls is not bytes or value.__class__ is not bytearray):
        raise CommandError(WRONGTYPE)
    return value


def write(c, key: bytes, cls):
    """The value at key for a write, or None; WRONGTYPE on another type.
    (Keyspace.for_write: a running snapshot saves the slot first.)"""
    value = c.server.keyspace.for_write(key)
    if value is not None and value.__class__ is not cls and \
            (cls is not bytes or value.__class__ is not bytearray):
        raise CommandError(WRONGTYPE)
    return value


def write_or_create(c, key: bytes, cls):
    """The container at key, created empty (and stored) when missing."""
    ks = c.server.keyspace
    value = ks.for_write(key)
    if value is None:
        value = cls()
        ks.add(key, value)
        return value
    if value.__class__ is not cls:
        raise CommandError(WRONGTYPE)
    return value


def drop_if_empty(c, key: bytes, container) -> bool:
    """Containers never stay empty in Redis: delete the key if it is (and
    raise the "del" keyspace event, after the command's own event)."""
    if not container:
        c.server.keyspace.delete(key)
        notify(c, GENERIC, b"del", key)
        return True
    return False


def record_removal(c, key: bytes, container, count: int = 1,
                   event_class: int = 0, event: bytes = b""):
    """After count elements were removed in place from the container at
    key: count the changes (raising ``event`` when count > 0), and delete
    the key if the container is empty."""
    c.server.keyspace.touch(key, count)
    if event and count:
        notify(c, event_class, event, key)
    drop_if_empty(c, key, container)


def store_result(c, key: bytes, container, event_class: int = 0,
                 event: bytes = b"") -> int:
    """A *STORE command's result replaces key (an empty result deletes
    it); returns the result's size.  The keyspace event: ``event`` for a
    stored result, "del" for a deleted key."""
    ks = c.server.keyspace
    if container:
        ks.set(key, container)
        if event:
            notify(c, event_class, event, key)
    elif ks.delete(key):
        notify(c, GENERIC, b"del", key)
    return len(container)


def error(text: str) -> Error:
    return Error(text)


# -- the write path (rcluster/propagation.py) ---------------------------------

def propagate_as(c, argv):
    """The running command reaches replicas and the AOF as argv (a list of
    bytes), not as called: the deterministic form (EX -> PXAT, SPOP ->
    SREM...).  Call it once the write happened."""
    c.server.write_path.propagate_as(c, argv)


def also_propagate(c, argv):
    """Record one more op, before the command's own (Redis's
    alsoPropagate); with no_propagation, the ops are its whole effect."""
    c.server.write_path.also_propagate(argv)


def no_propagation(c):
    """The running command's own argv is not propagated (its effects were
    recorded with also_propagate).  A command running others on its own
    client (EXEC) says so after them."""
    c.server.write_path.no_propagation(c)


# -- replies shared by container commands ----------------------------------

def help_reply(argv, lines) -> list:
    """Redis's addReplyHelp: a usage line, the lines, then HELP itself."""
    name = argv[0].decode("utf-8", "replace").upper()
    return [Status(f"{name} <subcommand> [<arg> [value] [opt] ...]. "
                   "Subcommands are:"),
            *map(Status, lines),
            Status("HELP"), Status("    Prints this help.")]


def help_subcommand(lines, flags="loading stale", since="5.0.0", **metadata):
    """Declare a container's HELP subcommand (``metadata`` names its parent,
    group...), which replies help_reply with these lines; returns its
    handler."""
    @command("help", 2, flags, since=since, complexity="O(1)",
             summary="Show helpful text about the different subcommands",
             **metadata)
    def help_(c, argv):
        return help_reply(argv, lines)
    return help_


def subcommand_syntax_error(argv) -> CommandError:
    """Redis's addReplySubcommandSyntaxError (a known subcommand given the
    wrong arguments, for commands parsing their own subcommands)."""
    return CommandError(
        "ERR unknown subcommand or wrong number of arguments for '%s'. "
        "Try %s HELP." % (argv[1].decode("utf-8", "replace")[:128],
                          argv[0].decode("utf-8", "replace").upper()))
