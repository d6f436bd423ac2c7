"""The schedule's options, derived from :class:`~plateau.PlateauConfig`'s own fields.

Each init field of the config becomes ``--field-name`` (and a ``--compare`` key)
with the field's default, its type's parser and a help string, so a field added
to the config appears on the command line without a change here. The config
itself checks every value, so its messages are the command's.

How a field's type is read from the command line:

- ``int`` / ``float`` / ``str``: as is; ``bool``: ``true``/``false`` (also
  ``1``/``0``, ``yes``/``no``);
- a ``Literal`` of strings: one of them (the config says which are allowed);
- ``X | None``: ``none``, or an X;
- ``X | tuple[X, ...]`` (``min_lr``): repeat the option to give one value per lr.

Example:
    >>> [option.flag for option in schedule_options()][:3]
    ['--mode', '--factor', '--patience']
"""

from __future__ import annotations

import argparse
import functools
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import attrs

from .._checks import show
from .._config import PlateauConfig
from .numbers import parse_decimal, parse_integer

# One-line help for the fields this module knows; any other field's help comes
# from the Attributes section of PlateauConfig's docstring.
HELP = {
    "mode": "'min' when lower metrics are better, 'max' when higher are",
    "factor": "multiplier applied to the lr on a reduction",
    "patience": "bad epochs tolerated; the lr is cut on bad epoch PATIENCE+1",
    "threshold": "margin a metric must beat the best by to count as an improvement",
    "threshold_mode": (
        "'rel' (margin best*threshold, torch's), 'abs' (margin threshold) or "
        "'rel_abs' (margin threshold*|best|, safe for negative metrics)"
    ),
    "cooldown": "epochs after a reduction during which bad epochs are not counted",
    "min_lr": "floor of the lr; repeat to give one floor per --lr",
    "eps": "a cut of eps or less is not applied",
    "on_nonfinite": "what a nan/inf metric does: 'bad' (as torch), 'raise' or 'skip'",
}
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class UsageError(Exception):
    """Bad input to the command: reported as one line on stderr, exit code 2."""


class _Unset:
    """The default of every schedule option: the field was not given."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()


@attrs.frozen
class Option:
    """One PlateauConfig field as a command-line option.

    Attributes:
        name: The field's name (``threshold_mode``).
        flag: The option (``--threshold-mode``).
        parse: Reads one value from its text; raises ValueError for a bad one.
        kind: What `parse` takes, for messages (``an integer``).
        default: The field's default.
        repeatable: Given once per lr (a field that takes ``tuple[X, ...]``).
        metavar: How the help shows the value.
        help: One line of help.
    """

    name: str
    flag: str
    parse: Callable[[str], object]
    kind: str
    default: object
    repeatable: bool
    metavar: str
    help: str

    @property
    def dest(self) -> str:
        """The argparse destination; prefixed so that no field can clash with an option."""
        return "config_" + self.name


def _named(parse: Callable[[str], object], name: str) -> Callable[[str], object]:
    # argparse names the type in "invalid int value: 'x'" by the function's __name__.
    parse.__name__ = name
    return parse


def decimal_option(text: str) -> float:
    """An option's number, as the log readers read one (:func:`plateau.cli.numbers.parse_decimal`).

    Raises:
        argparse.ArgumentTypeError: not a number (``1_0``, non-ASCII digits, ``1e400``).
    """
    try:
        return parse_decimal(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def integer_option(text: str) -> int:
    """An option's integer: ASCII digits within 64 bits (:func:`plateau.cli.numbers.parse_integer`).

    Raises:
        argparse.ArgumentTypeError: not such an integer.
    """
    try:
        return parse_integer(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(text)


def _reader(hint: object) -> tuple[Callable[[str], object], str, bool, str | None]:
    """(parse, kind, repeatable, choices metavar) for a field's resolved type."""
    origin = get_origin(hint)
    if origin is Literal:
        choices = [str(choice) for choice in get_args(hint)]
        return str, "one of " + ", ".join(choices), False, "{" + ",".join(choices) + "}"
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in get_args(hint) if arg is not type(None)]
        tuples = [arg for arg in members if get_origin(arg) is tuple]
        scalars = [arg for arg in members if get_origin(arg) is not tuple]
        if len(scalars) == 1 and tuples:
            # X | tuple[X, ...]: one value, or one per lr by repeating the option.
            parse, kind, _, metavar = _reader(scalars[0])
            return parse, kind, True, metavar
        if len(members) == 1 and len(get_args(hint)) == 2:
            inner, kind, repeatable, metavar = _reader(members[0])

            def optional(text: str) -> object:
                return None if text.strip().lower() == "none" else inner(text)

            name = getattr(inner, "__name__", "value")
            return _named(optional, name), f"{kind} or none", repeatable, metavar
        return str, "a value", False, None
    if hint is bool:
        return _named(_parse_bool, "bool"), "true or false", False, "{true,false}"
    if hint is int:
        return integer_option, "an integer", False, None
    if hint is float:
        return decimal_option, "a number", False, None
    # Anything else: the text itself, for the config's converter and validator to judge.
    return str, "a value", False, None


@functools.cache
def _docstring_help() -> dict[str, str]:
    """Field -> first sentence of its entry in PlateauConfig's Attributes section."""
    doc = PlateauConfig.__doc__ or ""
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    entries: dict[str, str] = {}
    current: str | None = None
    for line in section.splitlines():
        match = re.match(r"^\s{8}(\w+): (.*)$", line)
        if match:
            current = match.group(1)
            entries[current] = match.group(2).strip()
        elif current is not None and line.startswith(" " * 12) and line.strip():
            entries[current] += " " + line.strip()
        elif line.strip() and not line.startswith(" " * 8):
            break
    return {name: text.split(". ")[0].rstrip(".") for name, text in entries.items()}


def help_for(name: str) -> str:
    """The help of field `name`: this module's, else the config docstring's, else generic.

    Example:
        >>> help_for("patience")
        'bad epochs tolerated; the lr is cut on bad epoch PATIENCE+1'
    """
    if name in HELP:
        return HELP[name]
    return _docstring_help().get(name) or f"PlateauConfig's {name}"


@functools.cache
def schedule_options() -> tuple[Option, ...]:
    """One :class:`Option` per init field of PlateauConfig, in field order."""
    hints = typing.get_type_hints(PlateauConfig)
    defaults = PlateauConfig()
    options = []
    for field in attrs.fields(PlateauConfig):
        if not field.init:
            continue
        parse, kind, repeatable, metavar = _reader(hints.get(field.name, str))
        options.append(
            Option(
                name=field.name,
                flag="--" + field.name.replace("_", "-"),
                parse=parse,
                kind=kind,
                default=getattr(defaults, field.name),
                repeatable=repeatable,
                metavar=metavar or field.name.upper(),
                help=help_for(field.name),
            )
        )
    return tuple(options)


def add_schedule_options(parser: argparse.ArgumentParser) -> None:
    """Add every schedule option to `parser`, in a group of their own."""
    group = parser.add_argument_group("schedule (PlateauConfig; defaults are torch's)")
    for option in schedule_options():
        group.add_argument(
            option.flag,
            dest=option.dest,
            type=option.parse,
            # append copies a non-list default before appending: None it is, for those.
            default=None if option.repeatable else UNSET,
            action="append" if option.repeatable else "store",
            metavar=option.metavar,
            help=f"{option.help} (default: {option.default})",
        )


def base_config(args: argparse.Namespace) -> PlateauConfig:
    """The config the options give; fields not given keep PlateauConfig's defaults.

    Raises:
        UsageError: the config rejects a value.
    """
    values: dict[str, Any] = {}
    for option in schedule_options():
        value = getattr(args, option.dest)
        if value is UNSET or (option.repeatable and value is None):
            continue
        if option.repeatable:
            value = value[0] if len(value) == 1 else tuple(value)
        values[option.name] = value
    try:
        return PlateauConfig(**values)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid config: {exc}") from None


def compare_config(base: PlateauConfig, text: str) -> PlateauConfig:
    """`base` with the fields named in `text` (``patience=5,factor=0.5``) changed.

    Raises:
        UsageError: malformed text, an unknown or repeated key, or a bad value.

    Example:
        >>> compare_config(PlateauConfig(), "patience=5,threshold-mode=abs").threshold_mode
        'abs'
    """
    options = {option.name: option for option in schedule_options()}
    overrides: dict[str, Any] = {}
    for item in text.split(","):
        key, equals, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise UsageError(f"--compare {show(text)}: expected KEY=VALUE, got {show(item)}")
        if key not in options:
            raise UsageError(
                f"--compare {show(text)}: unknown key {show(key)}; keys: {', '.join(options)}"
            )
        if key in overrides:
            raise UsageError(f"--compare {show(text)}: {key!r} given twice")
        option = options[key]
        try:
            overrides[key] = option.parse(raw.strip())
        except (ValueError, argparse.ArgumentTypeError):
            raise UsageError(
                f"--compare {show(text)}: {key!r} must be {option.kind}, got {show(raw.strip())}"
            ) from None
    try:
        return attrs.evolve(base, **overrides)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--compare {show(text)}: {exc}") from None
