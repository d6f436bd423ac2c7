"""The schedule's options: plain argparse options, read with one framework's rules.

``--rules torch`` (the default) takes PlateauConfig's own fields; ``--rules keras``
takes ``keras.callbacks.ReduceLROnPlateau``'s arguments (``--min-delta``) through
:meth:`~plateau.PlateauConfig.from_keras`, and ``--rules optax`` those of
``optax.contrib.reduce_on_plateau`` (``--rtol``, ``--atol``, ``--min-scale``)
through :meth:`~plateau.PlateauConfig.from_optax`. The config checks every value,
so its messages are the command's.

Example:
    >>> parser = argparse.ArgumentParser()
    >>> add_schedule_options(parser)
    >>> args = parser.parse_args(["--rules", "keras", "--patience", "3"])
    >>> base_config(args).patience  # Keras's patience 3 is torch's 2
    2
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import attrs

from .._checks import show
from .._config import PlateauConfig
from .numbers import parse_decimal, parse_integer

RULES = ("torch", "keras", "optax")
_BUILDERS: dict[str, Callable[..., PlateauConfig]] = {
    "torch": PlateauConfig,
    "keras": PlateauConfig.from_keras,
    "optax": PlateauConfig.from_optax,
}
_ALL, _TORCH, _KERAS, _OPTAX = (frozenset(r) for r in (RULES, ["torch"], ["keras"], ["optax"]))
# Rule 2's detector: PlateauConfig's fields under any rules (no framework has them).
_DETECTOR_FIELDS = ("detector", "window", "alpha")


class UsageError(Exception):
    """Bad input to the command: reported as one line on stderr, exit code 2."""


def _typed(parse: Callable[[str], object], name: str) -> Callable[[str], object]:
    def typed(text: str) -> object:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    typed.__name__ = name  # argparse names the type in "invalid NAME value"
    return typed


def _or_none(parse: Callable[[str], object]) -> Callable[[str], object]:
    return lambda text: None if text.strip().lower() == "none" else parse(text)


decimal_option = _typed(parse_decimal, "number")
integer_option = _typed(parse_integer, "integer")
# (name, type, rules that take it, help): one argparse option each, --name-with-dashes.
_OPTIONS: tuple[tuple[str, Callable[[str], object], frozenset[str], str], ...] = (
    ("mode", str, _ALL, "min: lower metrics are better; max: higher are (keras: also auto)"),
    ("factor", decimal_option, _ALL, "multiplier applied to the lr on a reduction"),
    ("patience", integer_option, _ALL, "epochs without improvement tolerated before a cut"),
    ("threshold", decimal_option, _TORCH, "margin a metric must beat the best by"),
    ("threshold_mode", str, _TORCH, "rel (margin best*threshold), abs or rel_abs"),
    ("min_delta", decimal_option, _KERAS, "Keras's absolute margin"),
    ("rtol", decimal_option, _OPTAX, "optax's relative margin"),
    ("atol", decimal_option, _OPTAX, "optax's absolute margin"),
    ("cooldown", integer_option, _ALL, "epochs after a cut during which none is counted bad"),
    ("min_lr", decimal_option, _TORCH | _KERAS, "floor of the lr; repeat: one per --lr"),
    ("min_scale", decimal_option, _OPTAX, "optax's floor of the lr scale"),
    ("eps", decimal_option, _TORCH, "a cut of eps or less is not applied"),
    ("on_nonfinite", str, _TORCH, "what a nan/inf metric does: bad (as torch), raise or skip"),
    ("accumulation_size", integer_option, _TORCH | _OPTAX, "values averaged per decision"),
    ("ema_decay", _or_none(decimal_option), _TORCH, "smooth the metric by this EMA decay, or none"),
    ("max_reductions", _or_none(integer_option), _TORCH, "cuts allowed at most, or none"),
    ("warmup_epochs", integer_option, _TORCH, "epochs of linear warmup before the plateau rule"),
    ("warmup_start_factor", decimal_option, _TORCH, "the warmup's first lr, as a fraction"),
    ("detector", str, _ALL, "the improvement test: best (torch's), window_best or slope"),
    ("window", integer_option, _ALL, "values window_best and slope judge over (default 10)"),
    ("alpha", decimal_option, _ALL, "the slope test's significance level (default 0.05)"),
)
_BY_NAME = {name: (parse, rules) for name, parse, rules, _ in _OPTIONS}


def add_schedule_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--rules`` and every schedule option to `parser`, in a group of their own."""
    group = parser.add_argument_group(
        "schedule (unset options keep the rules' defaults: torch's are PlateauConfig's)"
    )
    group.add_argument(
        "--rules",
        choices=RULES,
        default="torch",
        help="whose options these are: torch (PlateauConfig's fields), keras "
        "(ReduceLROnPlateau's, e.g. --min-delta) or optax (reduce_on_plateau's)",
    )
    for name, parse, rules, text in _OPTIONS:
        where = "" if rules == _ALL else f" [{', '.join(sorted(rules))}]"
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest="config_" + name,
            type=parse,
            action="append" if name == "min_lr" else "store",
            metavar=name.upper(),
            help=text + where,
        )


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The schedule options given on the command line, by field name."""
    values = {name: getattr(args, "config_" + name) for name in _BY_NAME}
    if values["min_lr"] is not None:
        values["min_lr"] = (
            values["min_lr"][0] if len(values["min_lr"]) == 1 else tuple(values["min_lr"])
        )
    return {name: value for name, value in values.items() if value is not None}


def build(rules: str, values: dict[str, Any], where: str = "invalid config") -> PlateauConfig:
    """The config `values` give under `rules`.

    Raises:
        UsageError: an option the rules do not take, or a value the config refuses.
    """
    for name in values:
        if rules not in _BY_NAME[name][1]:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{where}: {flag} does not apply under --rules {rules}")
    detector = {name: value for name, value in values.items() if name in _DETECTOR_FIELDS}
    framework = {name: value for name, value in values.items() if name not in _DETECTOR_FIELDS}
    try:
        config = _BUILDERS[rules](**framework)
        return attrs.evolve(config, **detector) if detector else config
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}") from None


def base_config(args: argparse.Namespace) -> PlateauConfig:
    """The config the options give.

    Raises:
        UsageError: an option the rules do not take, or a value the config refuses.
    """
    return build(args.rules, given(args))


def compare_config(args: argparse.Namespace, text: str) -> PlateauConfig:
    """The options' config with the fields named in `text` (``patience=5,factor=0.5``) changed.

    Raises:
        UsageError: malformed text, an unknown or repeated key, or a bad value.
    """
    values = given(args)
    changed: set[str] = set()
    for item in text.split(","):
        key, equals, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise UsageError(f"--compare {show(text)}: expected KEY=VALUE, got {show(item)}")
        if key not in _BY_NAME:
            raise UsageError(
                f"--compare {show(text)}: unknown key {show(key)}; keys: {', '.join(_BY_NAME)}"
            )
        if key in changed:
            raise UsageError(f"--compare {show(text)}: {key!r} given twice")
        changed.add(key)
        try:
            values[key] = _BY_NAME[key][0](raw.strip())
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise UsageError(f"--compare {show(text)}: {key!r}: {exc}") from None
    return build(args.rules, values, f"--compare {show(text)}")
