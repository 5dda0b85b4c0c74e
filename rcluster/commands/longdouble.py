"""C long double arithmetic, as Redis's INCRBYFLOAT and HINCRBYFLOAT do it.

Redis adds in C's long double - on x86-64 the x87 80-bit format: a 64-bit
significand, exponents down to 2**-16445 (subnormal) and up to 2**16384
(excluded) - and prints the sum with "%.17Lf", trailing zeros cut.  The
replies show it ("0.1" + "0.2" is "0.3"; 5.6 - 5000 is
"-4994.39999999999999991"), so sums are computed exactly with Fractions and
rounded as the x87 would.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

from rcluster.commands.table import CommandError


_LD_MIN_QUANTUM = -16445            # exponent of the smallest subnormal
_LD_OVERFLOW = Fraction(2) ** 16384
_LD_MAX_CHARS = 5 * 1024            # string2ld's buffer, MAX_LONG_DOUBLE_CHARS
_DIGITS_CHUNK = 10 ** 4000
_LD_SYNTAX = re.compile(rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
                        rb"(?:[eE][+-]?[0-9]+)?|inf|infinity)\Z", re.I)


def _round_long_double(x: Fraction):
    """x rounded to the nearest long double (ties to even); +-inf when it
    overflows."""
    if not x:
        return x
    size = abs(x)
    exponent = size.numerator.bit_length() - size.denominator.bit_length()
    if size < Fraction(2) ** exponent:
        exponent -= 1            # now 2**exponent <= size < 2**(exponent+1)
    quantum = Fraction(2) ** max(exponent - 63, _LD_MIN_QUANTUM)
    size = round(size / quantum) * quantum
    if size >= _LD_OVERFLOW:
        return math.inf if x > 0 else -math.inf
    return size if x > 0 else -size


def parse_long_double(arg: bytes, error: str):
    """Redis's string2ld: strtold's decimal syntax (no spaces, no NaN),
    refusing what overflows or underflows to zero.  A Fraction, or a
    float +-inf for "inf"/"infinity".  (Hexadecimal floats are refused.)"""
    if len(arg) >= _LD_MAX_CHARS or not _LD_SYNTAX.match(arg):
        raise CommandError(error)
    try:
        number = Decimal(arg.decode())
    except ArithmeticError:     # an exponent beyond Decimal's own limits
        raise CommandError(error) from None
    if number.is_infinite():
        return math.inf if number > 0 else -math.inf
    if not number:
        return Fraction(0)
    # Far out of range: refuse before building a huge Fraction.
    if not -4952 <= number.adjusted() <= 4933:
        raise CommandError(error)
    value = _round_long_double(Fraction(number))
    if not value or is_inf(value):
        raise CommandError(error)
    return value


def is_inf(value) -> bool:
    """Long doubles are Fractions, the infinities floats (math.isinf would
    overflow converting a big Fraction)."""
    return value.__class__ is float


def format_long_double(value: Fraction) -> bytes:
    """Redis's ld2string LD_STR_HUMAN: "%.17Lf", trailing zeros and point
    cut, "-0" written "0"."""
    digits = _decimal_digits(round(abs(value) * 10 ** 17)).rjust(18, b"0")
    text = (digits[:-17] + b"." + digits[-17:]).rstrip(b"0").rstrip(b".")
    return b"-" + text if value < 0 and text != b"0" else text


def _decimal_digits(n: int) -> bytes:
    """str(n) for any size (Python refuses more than 4300 digits at once;
    the largest long double has 4933)."""
    if n < _DIGITS_CHUNK:
        return b"%d" % n
    high, low = divmod(n, _DIGITS_CHUNK)
    return _decimal_digits(high) + b"%04000d" % low


def add(value, delta):
    """value + delta as C computes it in long double (inf/nan propagate)."""
    if is_inf(value) or is_inf(delta):
        return float(value) + float(delta)
    return _round_long_double(value + delta)


def increment_long_double(value, delta) -> bytes:
    """INCRBYFLOAT and HINCRBYFLOAT: value + delta, formatted as Redis
    stores it; a NaN or infinite sum is an error."""
    value = add(value, delta)
    if is_inf(value) or value != value:
        raise CommandError("ERR increment would produce NaN or Infinity")
    return format_long_double(value)
