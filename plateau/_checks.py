"""The number checks every surface shares: config, core, adapters and log readers.

One contract, written once: a value of the wrong type is a TypeError, a value of
the right type that cannot be used is a ValueError, and either message names the
field and shows the value (shortened when huge, control characters escaped).
Numbers are bounded so that whatever passes can be written to strict JSON and
read back exactly: floats are finite where they must be, and integers fit in a
signed 64-bit integer (far below Python's 4300-digit ``int`` <-> ``str`` limit,
and what the frameworks' own counters hold).
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Iterable, Iterator, Mapping, Set
from contextlib import contextmanager
from math import isfinite
from typing import Any

MAX_INT = 2**63 - 1
# The version of the dicts PlateauConfig.to_dict and PlateauState.to_dict write.
FORMAT_VERSION = 1
_SHOW_LIMIT = 60


def show(value: object) -> str:
    """`value` as an error message shows it: a repr, shortened, one line, printable.

    Example:
        >>> show(10**400), show(0.5)
        ('an int of 1329 bits', '0.5')
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # repr() of an int over 4300 digits raises, and a long one says nothing.
        return f"an int of {value.bit_length()} bits"
    text = repr(value)
    if not text.isprintable():
        text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."


def show_keys(keys: Iterable[object]) -> str:
    """A mapping's keys as a message lists them: ``['a', 'b']``, each key :func:`show`-n, sorted.

    Example:
        >>> show_keys({"b": 1, "a": 2, 3: 4})
        "['a', 'b', 3]"
    """
    return "[" + ", ".join(sorted(show(key) for key in keys)) + "]"


def got(value: object) -> str:
    """``type: value``, the tail of every message about a value of the wrong type."""
    return f"{type(value).__name__}: {show(value)}"


def is_real(value: object) -> bool:
    """A real number and not a bool (Python's or numpy's): what every number field takes."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_int(value: object) -> bool:
    """An integer and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_real(name: str, value: object) -> float:
    """`value` as a float.

    Raises:
        TypeError: not a real number.
        ValueError: too large for a float (an int like ``10**400``).
    """
    if not is_real(value):
        raise TypeError(f"'{name}' must be a real number, got {got(value)}")
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise ValueError(f"'{name}' is too large for a float, got {show(value)}") from None


def check_non_negative(name: str, value: object) -> float:
    """`value` as a finite float >= 0, or a TypeError / ValueError naming `name`."""
    number = check_real(name, value)
    if not (isfinite(number) and number >= 0.0):
        raise ValueError(f"'{name}' must be finite and >= 0, got {show(value)}")
    return number


def check_int(name: str, value: object, minimum: int = 0) -> int:
    """`value` as an int in [minimum, MAX_INT], or a TypeError / ValueError naming `name`."""
    if not is_int(value):
        raise TypeError(f"'{name}' must be an int, got {got(value)}")
    number = operator.index(value)  # type: ignore[arg-type]
    if number < minimum:
        raise ValueError(f"'{name}' must be >= {minimum}, got {show(value)}")
    if number > MAX_INT:
        raise ValueError(f"'{name}' must be at most 2**63 - 1, got {show(value)}")
    return number


def to_float(value: float) -> float:
    """Converter: a real number becomes a Python float; anything else is left for the validator.

    Typed ``float`` (an int is one, statically) so that mypy flags a config field
    given a str or None; at run time the validator names what was given.
    """
    if is_real(value):
        try:
            return float(value)
        except OverflowError:  # an int too large for a float: the validator names the field
            return value
    return value


def to_int(value: int) -> int:
    """Converter: an integer (a numpy int too) becomes a Python int; anything else is left."""
    return int(value) if is_int(value) else value


def check_bool(name: str, value: object) -> bool:
    """`value` if it is a bool, else a TypeError naming `name` (an int is not a bool).

    Example:
        >>> check_bool("sync_metric", True)
        True
    """
    if not isinstance(value, bool):
        raise TypeError(f"'{name}' must be a bool, got {got(value)}")
    return value


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """`value` if it is one of the strings `allowed`, else a TypeError / ValueError naming `name`.

    Example:
        >>> check_choice("mode", "min", ("min", "max"))
        'min'
    """
    if not isinstance(value, str):
        raise TypeError(f"'{name}' must be a str, one of {allowed}, got {got(value)}")
    if value not in allowed:
        raise ValueError(f"'{name}' must be one of {allowed}, got {show(value)}")
    return value


def check_type(name: str, value: object, kind: type) -> None:
    """Refuse `value` unless it is a `kind`, naming `name`."""
    if not isinstance(value, kind):
        raise TypeError(f"'{name}' must be a {kind.__name__}, got {type(value).__name__}")


def check_ordered(name: str, value: object) -> Iterable[object]:
    """`value` if it is an iterable with an order: not a str, bytes, set or mapping.

    A set has no order, and a mapping's iteration gives its keys, so a replay of
    either would silently be some other sequence than the one meant.

    Raises:
        TypeError: not an ordered iterable of values.
    """
    if isinstance(value, (Set, Mapping)):
        raise TypeError(
            f"'{name}' must be an iterable of numbers in order (a list, tuple, array or "
            f"generator), got {got(value)}: a {type(value).__name__} has no order of values"
        )
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Iterable):
        raise TypeError(f"'{name}' must be an iterable of numbers, got {got(value)}")
    return value


@contextmanager
def within(where: str) -> Iterator[None]:
    """Prefix a TypeError / ValueError raised inside with `where`, the field it concerns.

    Example:
        >>> with within("state_dict['state']"):
        ...     check_int("last_epoch", -1)
        Traceback (most recent call last):
        ...
        ValueError: state_dict['state']: 'last_epoch' must be >= 0, got -1
    """
    try:
        yield
    except TypeError as exc:
        raise TypeError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


# A dtype's verdict, cached: str(dtype) costs more than the whole rest of a step.
# Bools are 0 or 1, never a measurement; complex numbers have no order.
_DTYPE_REAL: dict[object, bool] = {}


def _real_dtype(dtype: object) -> bool:
    try:
        return _DTYPE_REAL[dtype]
    except KeyError:
        name = str(dtype)
        verdict = "bool" not in name and "complex" not in name
    except TypeError:  # an unhashable dtype: judge it every time
        name = str(dtype)
        return "bool" not in name and "complex" not in name
    _DTYPE_REAL[dtype] = verdict
    return verdict


def to_metric(metric: object) -> float:
    """`metric` as a float: a real number, or a one-element numpy / torch / jax array.

    Raises:
        TypeError: anything else, a bool or a complex number included; the message
            names 'metric'.

    Example:
        >>> to_metric(3), to_metric(0.5)
        (3.0, 0.5)
    """
    if isinstance(metric, float):  # a Python float, or numpy's float64 (a subclass of it)
        return float(metric)
    # Arrays (numpy, torch, jax) are judged by their dtype alone: an isinstance test
    # against a torch tensor costs as much as the conversion itself.
    dtype = getattr(metric, "dtype", None)
    if (
        _real_dtype(dtype)
        if dtype is not None
        else not (metric is None or isinstance(metric, (str, bytes, bool, complex)))
    ):
        try:
            return float(metric)  # type: ignore[arg-type]
        except (TypeError, ValueError, RuntimeError, OverflowError):
            pass
    raise TypeError(f"'metric' must be a single real number, got {got(metric)}")


def check_envelope(d: object, fmt: str, names: list[str]) -> dict[str, Any]:
    """Check a serialised dict's format, version and keys; return its fields.

    Raises:
        TypeError: `d` is not a mapping.
        ValueError: wrong format or version, missing or unknown keys.
    """
    if not isinstance(d, Mapping):
        raise TypeError(
            f"'d' must be a mapping: expected a dict from {fmt}.to_dict(), got {got(d)}"
        )
    # Compared only once known to be of the right type: an array's == is elementwise.
    form = d.get("format")
    if type(form) is not str or form != fmt:
        raise ValueError(f"'format' must be {fmt!r}, got {show(form)}")
    version = d.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ValueError(f"'version' must be {FORMAT_VERSION}, got {show(version)}")
    fields = {k: v for k, v in d.items() if not (type(k) is str and k in ("format", "version"))}
    missing = [n for n in names if n not in fields]
    unknown = [k for k in fields if not (type(k) is str and k in names)]
    if missing or unknown:
        raise ValueError(
            f"{fmt} dict has missing keys {missing} and unknown keys {show_keys(unknown)}"
        )
    return fields
