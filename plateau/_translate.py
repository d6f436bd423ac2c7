"""Keras's and optax's plateau arguments, translated to PlateauConfig fields.

Pure functions of the frameworks' arguments: no framework is imported. Each
returns the keyword arguments of a :class:`plateau.PlateauConfig` under which the
core takes the framework's decisions; ``PlateauConfig.from_keras`` and
``PlateauConfig.from_optax`` are their public faces, and the Keras adapter
resolves ``mode="auto"`` through :func:`keras_mode`. The Keras callback's other
framework-free pieces are here too (the ``keras_*`` functions at the end): its
config, its ``get_state`` / ``set_state`` dict and the checks on it, its messages
and its backup file, so that the adapter only moves numbers between Keras and them.

Keras 3 (``keras.callbacks.ReduceLROnPlateau``) counts ``wait >= patience`` after
decrementing its cooldown, so its patience P and cooldown C are torch's
``max(P-1, 0)`` and ``max(C-1, 0)`` (its 0 and 1 behave alike); its test is
absolute with ``abs(min_delta)``; it has no eps; its lr lives in a float32
variable, so min_lr is rounded to float32 as Keras compares it. Not reproduced
(documented in docs/semantics.md): a NaN or infinite metric on the very first
epoch becomes Keras's best; Keras compares in float32, so metrics closer than
float32 resolution to ``best - min_delta`` may be judged differently; at the floor
Keras keeps counting instead of entering cooldown (the lrs agree, the counters
do not).

optax (``optax.contrib.reduce_on_plateau``) reduces when its plateau count
*equals* patience, so its P is torch's ``P - 1``; its cooldown has no off-by-one;
its threshold ``(1 - rtol) * best - atol`` maps onto torch's "rel" (atol = 0) or
"abs" (rtol = 0); it has no eps and minimises only; its ``accumulation_size`` is
the core's. Not reproduced: optax compares and averages in float32.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._checks import (
    check_int,
    check_non_negative,
    check_real,
    got,
    show,
    show_keys,
    to_metric,
    within,
)
from ._config import PlateauConfig
from ._core import PlateauState, changed

if TYPE_CHECKING:  # pathlib and json cost more to import than the rest: only a backup needs them
    from pathlib import Path


def f32(value: float) -> float:
    """`value` rounded to float32, as Keras stores lrs and compares metrics (+/-inf beyond)."""
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:  # rounds to infinity, as numpy's float32 conversion does
        return math.copysign(math.inf, value)


def keras_mode(
    mode: object, monitor: object, model_direction: str | None = None, *, from_model: bool = False
) -> Literal["min", "max"]:
    """Keras's ``mode``, with "auto" resolved as Keras's ``MonitorCallback`` resolves it.

    "auto" is "min" for a monitor of "loss" or "val_loss"; otherwise the compiled
    metric's direction decides ("up" is "max"), which only a model can tell: the
    Keras adapter passes it as `model_direction`, with ``from_model=True`` so that
    an unresolvable mode raises Keras's own message.

    Raises:
        TypeError: `mode` or `monitor` is not a str.
        ValueError: an unknown mode, or "auto" that cannot be resolved.

    Example:
        >>> keras_mode("auto", "val_loss"), keras_mode("auto", "val_acc", "up", from_model=True)
        ('min', 'max')
    """
    for name, value in (("mode", mode), ("monitor", monitor)):
        if not isinstance(value, str):
            raise TypeError(f"'{name}' must be a str, got {type(value).__name__}: {show(value)}")
    if mode == "min" or mode == "max":
        return mode
    if mode != "auto":
        raise ValueError(f"'mode' must be one of ('auto', 'min', 'max'), got {show(mode)}")
    if str(monitor).removeprefix("val_") == "loss":
        return "min"
    if model_direction in ("up", "down"):
        return "max" if model_direction == "up" else "min"
    if from_model:  # word for word Keras's message
        raise ValueError(
            f"ReduceLROnPlateau callback received monitor={monitor}, but Keras isn't able to "
            "automatically determine whether that metric should be maximized or minimized. "
            "Pass `mode='max'` in order to monitor based on the highest metric value, or "
            "pass `mode='min'` in order to use the lowest value."
        )
    raise ValueError(
        "mode='auto' can only be resolved for monitor 'loss' or 'val_loss', got "
        f"monitor={show(monitor)}; pass mode='min' or mode='max' (Keras resolves it from "
        "the compiled metric, which a pure translation cannot see)"
    )


def keras_fields(
    *,
    factor: float,
    patience: int,
    min_delta: float,
    cooldown: int,
    min_lr: float,
    mode: Literal["min", "max"],
) -> dict[str, Any]:
    """PlateauConfig fields for Keras's arguments (`mode` already resolved)."""
    delta = abs(check_real("min_delta", min_delta))
    if not math.isfinite(delta):
        raise ValueError(f"'min_delta' must be finite, got {show(min_delta)}")
    floor = check_non_negative("min_lr", min_lr)
    if not math.isfinite(f32(floor)):
        raise ValueError(f"'min_lr' must fit in float32, as Keras stores it, got {show(min_lr)}")
    return {
        "mode": mode,
        "factor": factor,
        # Keras's 0 and 1 behave the same, so both map to torch's 0.
        "patience": max(check_int("patience", patience) - 1, 0),
        "cooldown": max(check_int("cooldown", cooldown) - 1, 0),
        "threshold": delta,
        "threshold_mode": "abs",
        "min_lr": f32(floor),
        "eps": 0.0,
    }


def optax_fields(
    *,
    factor: float,
    patience: int,
    rtol: float,
    atol: float,
    cooldown: int,
    min_scale: float,
    accumulation_size: int = 1,
) -> dict[str, Any]:
    """PlateauConfig fields for ``optax.contrib.reduce_on_plateau``'s arguments."""
    rtol_f = check_non_negative("rtol", rtol)
    atol_f = check_non_negative("atol", atol)
    if rtol_f and atol_f:
        raise ValueError(
            f"optax's combined threshold (rtol={show(rtol)} and atol={show(atol)} both "
            "non-zero) has no torch equivalent; set one of them to 0"
        )
    if rtol_f >= 1.0:
        raise ValueError(
            "'rtol' must be < 1 (with best starting at +inf, (1 - rtol) * best is NaN or "
            f"-inf and nothing could ever improve), got {show(rtol)}"
        )
    if not (rtol_f or atol_f):
        raise ValueError("one of 'rtol' or 'atol' must be positive, got both 0")
    patience_i = check_int("patience", patience)
    if patience_i < 1:
        raise ValueError(
            "'patience' must be >= 1 for optax (its patience=0 reduces on every "
            f"improvement), got {show(patience)}"
        )
    if check_int("accumulation_size", accumulation_size) < 1:
        raise ValueError(
            "'accumulation_size' must be >= 1 (optax decides when its count equals it, "
            f"so it would never decide), got {show(accumulation_size)}"
        )
    if check_non_negative("min_scale", min_scale) > 1.0:
        raise ValueError(
            f"'min_scale' must be <= 1 (optax would raise its scale to it), got {show(min_scale)}"
        )
    return {
        "mode": "min",
        "factor": factor,
        "patience": patience_i - 1,
        "cooldown": cooldown,
        "threshold": rtol_f if rtol_f else atol_f,
        "threshold_mode": "rel" if rtol_f else "abs",
        "min_lr": min_scale,
        "eps": 0.0,
        "accumulation_size": accumulation_size,
    }


# The Keras callback's framework-free pieces (plateau.adapters.keras).

KERAS_BACKUP = "plateau_state.json"  # the callback's file in a BackupAndRestore's backup_dir
_KERAS_OWN = ("factor", "patience", "min_delta", "cooldown", "min_lr")  # from_keras's
_KERAS_KEYS = frozenset({"config", "state"})
_UNITS = "scaled"  # optional key: per lr, whether it is a schedule's scale (older states lack it)


def keras_options(
    verbose: object, strict: object, stop_when_exhausted: object, backup_dir: object, /
) -> Path | None:
    """Check the callback's arguments that are not the config's; its backup file, if any.

    Raises:
        TypeError: an argument of the wrong type, named.

    Example:
        >>> keras_options(0, False, False, "b").name, keras_options(0, False, False, None)
        ('plateau_state.json', None)
    """
    for name, value, kind in (
        ("verbose", verbose, int),
        ("strict", strict, bool),
        ("stop_when_exhausted", stop_when_exhausted, bool),
    ):
        if not isinstance(value, kind):
            raise TypeError(f"'{name}' must be a {kind.__name__}, got {got(value)}")
    if backup_dir is None:
        return None
    if not isinstance(backup_dir, (str, os.PathLike)):
        raise TypeError(f"'backup_dir' must be a path, got {got(backup_dir)}")
    from pathlib import Path

    return Path(backup_dir) / KERAS_BACKUP


def keras_config(mode: str, args: Mapping[str, Any]) -> PlateauConfig:
    """The callback's config for a resolved `mode`.

    `args` holds Keras's arguments (``factor``, ``patience``, ``min_delta``,
    ``cooldown``, ``min_lr``), translated by ``PlateauConfig.from_keras``, and any
    other PlateauConfig fields (warmup, ``on_nonfinite``), set as given.

    Example:
        >>> args = {"factor": 0.5, "patience": 3, "min_delta": 0.0, "cooldown": 0,
        ...         "min_lr": 0.0, "warmup_epochs": 2}
        >>> config = keras_config("max", args)
        >>> config.mode, config.patience, config.warmup_epochs
        ('max', 2, 2)
    """
    own = {key: args[key] for key in _KERAS_OWN}
    rest = {key: value for key, value in args.items() if key not in own}
    return attrs.evolve(PlateauConfig.from_keras(mode=mode, **own), **rest)


def keras_first_config(
    mode: object, monitor: object, args: Mapping[str, Any]
) -> PlateauConfig | None:
    """The config at construction; None while ``mode="auto"`` waits for the model's metrics.

    Every bad argument fails here, even when the mode must wait for the model.

    Example:
        >>> args = {"factor": 0.5, "patience": 3, "min_delta": 0.0, "cooldown": 0, "min_lr": 0.0}
        >>> keras_first_config("auto", "val_loss", args).mode
        'min'
        >>> keras_first_config("auto", "val_acc", args) is None  # the model will tell
        True
    """
    try:
        return keras_config(keras_mode(mode, monitor), args)
    except ValueError:
        keras_mode(mode, "loss")  # an unknown mode, rather than an unresolved "auto"
        keras_config("min", args)
        return None


def keras_state(
    config: PlateauConfig | None, state: PlateauState | None, scaled: Sequence[bool] | None
) -> dict[str, Any]:
    """The callback's ``get_state()``: a strict-JSON-safe dict for :func:`keras_read_state`.

    `scaled` says, per lr, whether it is a schedule's scale; None (not known yet)
    leaves the optional "scaled" key out.

    Example:
        >>> sorted(keras_state(None, None, [True]))
        ['config', 'scaled', 'state']
    """
    d: dict[str, Any] = {
        "config": None if config is None else config.to_dict(),
        "state": None if state is None else state.to_dict(),
    }
    if scaled is not None:
        d[_UNITS] = list(scaled)
    return d


def keras_read_state(
    d: object, config: PlateauConfig | None, args: Mapping[str, Any]
) -> tuple[PlateauConfig | None, PlateauState | None, list[bool] | None]:
    """The callback's ``set_state(d)`` checked: the (config, state, scaled) to hold.

    The saved config must be the callback's `config`, or, while that is None (an
    unresolved ``mode="auto"``), :func:`keras_config` of `args` in the saved mode.

    Raises:
        TypeError: `d` is not a mapping, or a field has the wrong type.
        ValueError: wrong keys, a bad field, or a config other than the callback's.

    Example:
        >>> args = {"factor": 0.5, "patience": 3, "min_delta": 0.0, "cooldown": 0, "min_lr": 0.0}
        >>> config = keras_config("min", args)
        >>> keras_read_state(keras_state(config, None, None), None, args) == (config, None, None)
        True
    """
    if not isinstance(d, Mapping):
        raise TypeError(f"'d' must be a mapping, got {got(d)}")
    if set(d) - {_UNITS} != _KERAS_KEYS:
        raise ValueError(
            f"'d' must have the keys {sorted(_KERAS_KEYS)} (and optionally "
            f"{_UNITS!r}), got {show_keys(d)}"
        )
    units = d.get(_UNITS)
    if units is not None and not (isinstance(units, list) and all(type(u) is bool for u in units)):
        raise TypeError(f"d[{_UNITS!r}] must be a list of bools, got {got(units)}")
    with within("d['config']"):
        saved = None if d["config"] is None else PlateauConfig.from_dict(d["config"])
    with within("d['state']"):
        state = None if d["state"] is None else PlateauState.from_dict(d["state"])
    if saved is None:
        return config, state, units
    expected = config if config is not None else keras_config(saved.mode, args)
    if saved != expected:
        raise ValueError(f"the saved config {saved} is not this callback's config {expected}")
    return saved, state, units


def keras_check_count(state: PlateauState, optimizers: int) -> None:
    """A restored `state` must hold one lr per optimizer, or a ValueError says both counts."""
    if len(state.lrs) != optimizers:
        raise ValueError(
            f"the restored state holds {len(state.lrs)} lrs but the model has "
            f"{optimizers} optimizers"
        )


def keras_check_restored(
    state: PlateauState, held: Sequence[bool] | None, scaled: Sequence[bool]
) -> None:
    """A restored `state` must fit the model: one lr per optimizer, in the same units.

    `held` and `scaled` say, per lr, whether it is a schedule's scale: in the state
    (None: not recorded, as in older states) and in the model.

    Raises:
        ValueError: another count, or another kind of learning rate.

    Example:
        >>> from plateau import init
        >>> state = init((0.1, 1.0), PlateauConfig())
        >>> keras_check_restored(state, [False, True], [False, True])
        >>> keras_check_restored(state, None, [False])
        Traceback (most recent call last):
        ...
        ValueError: the restored state holds 2 lrs but the model has 1 optimizers
    """
    keras_check_count(state, len(scaled))
    if held is not None and list(held) != list(scaled):
        # A scale restored as an lr (or the reverse) would train 100x off.
        raise ValueError(
            f"the restored state's lrs are {_units(held)} but this model's optimizers "
            f"take {_units(scaled)}: it was saved with another kind of learning rate "
            "(a schedule or a float)"
        )


def _units(scaled: Sequence[bool]) -> str:
    return "[" + ", ".join("a schedule's scale" if s else "an lr" for s in scaled) + "]"


def keras_check_scale(shape: tuple[int, ...], dtype: object) -> None:
    """A ScaledSchedule's scale variable must be a scalar float32, or a TypeError says so.

    Example:
        >>> keras_check_scale((1,), "float32")
        Traceback (most recent call last):
        ...
        TypeError: 'scale' must be a scalar float32 keras.Variable, got shape (1,) and dtype float32
    """
    if shape != () or dtype != "float32":
        raise TypeError(
            f"'scale' must be a scalar float32 keras.Variable, got shape {shape} and dtype {dtype}"
        )


def keras_check_min_lr(
    min_lr: float, pairs: Sequence[tuple[str, object]], scaled: Sequence[bool]
) -> None:
    """`min_lr` must mean one thing for every optimizer: with a schedule it is a scale.

    `pairs` and `scaled` are, per optimizer, its (name, optimizer) and whether its
    learning rate is a schedule (the callback then holds the schedule's scale).

    Raises:
        ValueError: a scale's floor above 1.0, or a non-zero floor that would be a
            scale for some optimizers and an lr for others.

    Example:
        >>> pairs = [("a", None), ("b", None)]
        >>> keras_check_min_lr(0.5, pairs, [True, True])  # a floor at half the schedule
        >>> keras_check_min_lr(0.5, pairs, [True, False])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'min_lr'=0.5 would be a scale for the sub-optimizers with a schedule ...
    """
    if not any(scaled):
        return
    if min_lr > 1.0:
        raise ValueError(
            "'min_lr' is the floor of the schedule's scale, which starts at 1.0, "
            f"got {show(min_lr)}: with a LearningRateSchedule, give min_lr as a "
            "fraction of the schedule's lr (e.g. 0.01)"
        )
    if min_lr != 0.0 and not all(scaled):
        floats = [name for (name, _), s in zip(pairs, scaled, strict=True) if not s]
        raise ValueError(
            f"'min_lr'={show(min_lr)} would be a scale for the sub-optimizers with a "
            f"schedule but an lr for {floats}; use min_lr=0.0, or give every "
            "sub-optimizer a schedule or none"
        )


def keras_metric(logs: Mapping[str, object], monitor: str, strict: bool) -> float | None:
    """``logs[monitor]`` as Keras compares it, in float32 (beyond its range, +/-inf).

    A missing key is Keras's warning (then None: the epoch is skipped, as Keras
    skips it), or with `strict` a KeyError; both list the keys there are.

    Raises:
        KeyError: `monitor` is missing and `strict` is True.
        TypeError: the value is not a single real number; the message names it.

    Example:
        >>> keras_metric({"loss": 0.1}, "loss", strict=False) == f32(0.1) != 0.1
        True
    """
    current = logs.get(monitor)
    if current is None:
        available = ",".join(logs)
        if strict:
            raise KeyError(
                f"monitor {monitor!r} is not in the logs (strict=True); available keys: {available}"
            )
        warnings.warn(  # stacklevel: the caller of the callback's on_epoch_end
            f"Learning rate reduction is conditioned on metric `{monitor}` which "
            f"is not available. Available metrics are: {available}.",
            stacklevel=3,
        )
        return None
    try:
        return f32(to_metric(current))
    except TypeError as exc:
        raise TypeError(f"logs[{monitor!r}]: {exc}") from exc


def keras_direction(monitor: str, metrics: Iterable[Any]) -> str | None:
    """The direction ("up"/"down") of the last of the compiled `metrics` named as `monitor`.

    `metrics` are the compiled metrics, where Keras's own callback looks; a name
    with no ``_direction`` (or none of that name) gives None.
    """
    name = monitor.removeprefix("val_")
    direction = None
    for metric in metrics:
        if metric.name == name and hasattr(metric, "_direction"):
            direction = metric._direction
    return direction


def keras_cut_messages(
    epoch: int,
    names: Sequence[str],
    scaled: Sequence[bool],
    read: Sequence[float],
    lrs: Sequence[float],
    min_lr: float,
    config: PlateauConfig,
) -> list[str]:
    """Keras's ``verbose=1`` lines for a cut from `read` to `lrs` at (0-based) `epoch`.

    Keras prints ``max(lr * factor, min_lr)`` before float32 rounding, so an lr at
    the config's (float32) floor is shown as the `min_lr` given.

    Example:
        >>> config = PlateauConfig.from_keras(min_lr=0.1)
        >>> for line in keras_cut_messages(4, ["", "b"], [False, True], (1.0, 1.0),
        ...                                (config.min_lr, 0.5), 0.1, config):
        ...     print(line.strip())
        Epoch 5: ReduceLROnPlateau reducing learning rate to 0.1.
        Epoch 5: ReduceLROnPlateau reducing b learning rate scale to 0.5.
    """
    return [
        f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing"
        f"{' ' + names[i] if names[i] else ''} "
        f"{'learning rate scale' if scaled[i] else 'learning rate'} to "
        f"{min_lr if new == config.min_lr else new}."
        for i, new in changed(read, lrs)
    ]


def keras_lr_source_error(optimizer: str, source: object) -> TypeError:
    """The error for an optimizer whose learning rate is neither a float nor a schedule."""
    return TypeError(
        f"optimizer {optimizer!r} gets its learning rate from a {type(source).__name__}, "
        "which is neither a float nor a keras.optimizers.schedules.LearningRateSchedule, "
        "so it cannot be reduced on a plateau; create the optimizer with a float "
        "learning_rate or a schedule"
    )


def keras_write_backup(path: Path, d: Mapping[str, Any]) -> None:
    """Write `d` to `path` as strict JSON, replacing the file atomically (never half-written)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(d, allow_nan=False))
    os.replace(temporary, path)


@contextmanager
def keras_resuming(path: Path) -> Iterator[Any]:
    """Yield the backup at `path` as JSON; any failure inside is a ValueError naming it.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / KERAS_BACKUP
        >>> keras_write_backup(path, {"state": None})
        >>> with keras_resuming(path) as d:
        ...     d
        {'state': None}
    """
    import json

    try:
        yield json.loads(path.read_text())
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: cannot resume from it: {exc}") from exc


def keras_import_error(exc: ImportError, backend: str | None) -> ModuleNotFoundError | None:
    """What ``import plateau.adapters.keras`` raises for `exc` (None: `exc` itself).

    Keras imports its backend (`backend` is ``KERAS_BACKEND``; TensorFlow unless told
    otherwise) when it is imported, so a missing backend surfaces as a missing
    module other than keras although keras itself is installed.

    Example:
        >>> print(keras_import_error(ModuleNotFoundError(name="keras"), None))
        plateau.adapters.keras requires keras; install 'plateau-lr[keras]'
    """
    if exc.name == "keras":
        return ModuleNotFoundError(
            "plateau.adapters.keras requires keras; install 'plateau-lr[keras]'", name="keras"
        )
    if isinstance(exc, ModuleNotFoundError) and not (exc.name or "keras").startswith("keras"):
        return ModuleNotFoundError(
            f"plateau.adapters.keras: keras is installed but could not import its backend "
            f"module {exc.name!r} (KERAS_BACKEND={backend!r}); install a Keras backend (jax "
            "or torch) and set KERAS_BACKEND=jax or KERAS_BACKEND=torch before keras is "
            "first imported",
            name=exc.name,
        )
    return None
