"""What the command line reads as a number: what loggers write, and nothing else.

Shared by the log readers and the options. It lives with the CLI, not in the core's
checks, so that ``import plateau`` does not pay for compiling its patterns.
"""

from __future__ import annotations

import math
import re

from .._checks import MAX_INT, show

# What a logger writes for a number, and so all the CLI reads as one: Python's
# repr / str of a float or an int, numpy's, C's printf (``%g``, ``-nan``), R's and
# pandas' (``NaN``, ``Inf``), JSON's ``Infinity``; padded with spaces or tabs, as
# ``numpy.savetxt(fmt="%10.4f")`` pads. Python's own float() and int() accept more
# that no logger writes and that is more likely a typo or a corrupt file:
# underscores (``1_0``), non-ASCII digits (``\u0661``, fullwidth), other Unicode
# whitespace; they are refused.
_DECIMAL = re.compile(
    r"[ \t]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)[ \t]*",
    re.IGNORECASE,
)
_INTEGER = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")


def parse_decimal(text: str) -> float:
    """`text` as a float, if it is a number as loggers write them (see above).

    A number beyond a float's range (``1e400``) is infinite, as float(), json and
    pandas read it; what an infinite metric does is the config's ``on_nonfinite``.

    Raises:
        ValueError: anything else.

    Example:
        >>> parse_decimal(" 1e-05"), parse_decimal("-Inf"), parse_decimal("NaN")
        (1e-05, -inf, nan)
        >>> parse_decimal("1_0")
        Traceback (most recent call last):
        ...
        ValueError: '1_0' is not a number
    """
    try:  # the fast way first: float() of what loggers write
        number = float(text) if type(text) is str else math.nan
    except ValueError:
        number = math.nan
    # float() takes more than loggers write (1_0, non-ASCII digits, Unicode spaces):
    # what is not plainly a finite ASCII number is judged by the pattern.
    if number - number == 0.0 and text.isascii() and text.isprintable() and "_" not in text:
        return number
    if not (isinstance(text, str) and _DECIMAL.fullmatch(text)):
        raise ValueError(f"{show(text)} is not a number")
    return float(text)


def parse_integer(text: str) -> int:
    """`text` as an int in [-(2**63 - 1), 2**63 - 1], if written in ASCII digits.

    Raises:
        ValueError: anything else: ``1_0``, ``3.0``, non-ASCII digits, too many digits.

    Example:
        >>> parse_integer(" 42"), parse_integer("-3")
        (42, -3)
    """
    if type(text) is str and text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)  # the common case: plain digits, within 64 bits
    if not (isinstance(text, str) and _INTEGER.fullmatch(text)):
        raise ValueError(f"{show(text)} is not an integer")
    digits = text.strip(" \t").lstrip("+-").lstrip("0")
    if len(digits) > 19 or abs(value := int(text)) > MAX_INT:
        raise ValueError(f"{show(text)} is beyond 2**63 - 1 in magnitude")
    return value
