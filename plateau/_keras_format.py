"""The Keras callback's framework-free pieces, for :mod:`plateau.adapters.keras`.

Its config (from ``PlateauConfig.from_keras``'s arguments, with ``mode="auto"``
resolved by :func:`plateau._translate.keras_mode`), its ``get_state`` /
``set_state`` dict and the checks on it, the metric read from Keras's logs, its
messages and its backup file: the adapter only moves numbers between Keras and
these. ``import plateau`` does not import this module: the adapter does.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from ._checks import check_bool, got, show, show_keys, to_metric, within
from ._config import PlateauConfig
from ._core import PlateauState, changed
from ._translate import f32, keras_mode

if TYPE_CHECKING:  # pathlib and json cost more to import than the rest: only a backup needs them
    from pathlib import Path


BACKUP_NAME = "plateau_state.json"  # the callback's file in a BackupAndRestore's backup_dir
_KERAS_OWN = ("factor", "patience", "min_delta", "cooldown", "min_lr")  # from_keras's
_KERAS_KEYS = frozenset({"config", "state"})
_UNITS = "scaled"  # optional key: per lr, whether it is a schedule's scale (older states lack it)


def check_options(
    verbose: object, strict: object, stop_when_exhausted: object, backup_dir: object, /
) -> Path | None:
    """Check the callback's arguments that are not the config's; its backup file, if any.

    Raises:
        TypeError: an argument of the wrong type, named.

    Example:
        >>> check_options(0, False, False, "b").name, check_options(0, False, False, None)
        ('plateau_state.json', None)
    """
    if not isinstance(verbose, int):
        raise TypeError(f"'verbose' must be an int, got {got(verbose)}")
    check_bool("strict", strict)
    check_bool("stop_when_exhausted", stop_when_exhausted)
    if backup_dir is None:
        return None
    if not isinstance(backup_dir, (str, os.PathLike)):
        raise TypeError(f"'backup_dir' must be a path, got {got(backup_dir)}")
    from pathlib import Path

    return Path(backup_dir) / BACKUP_NAME


def config_for(mode: str, args: Mapping[str, Any]) -> PlateauConfig:
    """The callback's config for a resolved `mode`.

    `args` holds Keras's arguments (``factor``, ``patience``, ``min_delta``,
    ``cooldown``, ``min_lr``), translated by ``PlateauConfig.from_keras``, and any
    other PlateauConfig fields (warmup, ``on_nonfinite``), set as given.

    Example:
        >>> args = {"factor": 0.5, "patience": 3, "min_delta": 0.0, "cooldown": 0,
        ...         "min_lr": 0.0, "warmup_epochs": 2}
        >>> config = config_for("max", args)
        >>> config.mode, config.patience, config.warmup_epochs
        ('max', 2, 2)
    """
    own = {key: args[key] for key in _KERAS_OWN}
    rest = {key: value for key, value in args.items() if key not in own}
    return attrs.evolve(PlateauConfig.from_keras(mode=mode, **own), **rest)


def first_config(mode: object, monitor: object, args: Mapping[str, Any]) -> PlateauConfig | None:
    """The config at construction; None while ``mode="auto"`` waits for the model's metrics.

    Every bad argument fails here, even when the mode must wait for the model.

    Example:
        >>> args = {"factor": 0.5, "patience": 3, "min_delta": 0.0, "cooldown": 0, "min_lr": 0.0}
        >>> first_config("auto", "val_loss", args).mode
        'min'
        >>> first_config("auto", "val_acc", args) is None  # the model will tell
        True
    """
    try:
        return config_for(keras_mode(mode, monitor), args)
    except ValueError:
        keras_mode(mode, "loss")  # an unknown mode, rather than an unresolved "auto"
        config_for("min", args)
        return None


def state_dict(
    config: PlateauConfig | None, state: PlateauState | None, scaled: Sequence[bool] | None
) -> dict[str, Any]:
    """The callback's ``get_state()``: a strict-JSON-safe dict for :func:`read_state`.

    `scaled` says, per lr, whether it is a schedule's scale; None (not known yet)
    leaves the optional "scaled" key out.

    Example:
        >>> sorted(state_dict(None, None, [True]))
        ['config', 'scaled', 'state']
    """
    d: dict[str, Any] = {
        "config": None if config is None else config.to_dict(),
        "state": None if state is None else state.to_dict(),
    }
    if scaled is not None:
        d[_UNITS] = list(scaled)
    return d


def read_state(
    d: object, config: PlateauConfig | None, args: Mapping[str, Any]
) -> tuple[PlateauConfig | None, PlateauState | None, list[bool] | None]:
    """The callback's ``set_state(d)`` checked: the (config, state, scaled) to hold.

    The saved config must be the callback's `config`, or, while that is None (an
    unresolved ``mode="auto"``), :func:`config_for` of `args` in the saved mode.

    Raises:
        TypeError: `d` is not a mapping, or a field has the wrong type.
        ValueError: wrong keys, a bad field, or a config other than the callback's.

    Example:
        >>> args = {"factor": 0.5, "patience": 3, "min_delta": 0.0, "cooldown": 0, "min_lr": 0.0}
        >>> config = config_for("min", args)
        >>> read_state(state_dict(config, None, None), None, args) == (config, None, None)
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
    expected = config if config is not None else config_for(saved.mode, args)
    if saved != expected:
        raise ValueError(f"the saved config {saved} is not this callback's config {expected}")
    return saved, state, units


def check_count(state: PlateauState, optimizers: int) -> None:
    """A restored `state` must hold one lr per optimizer, or a ValueError says both counts."""
    if len(state.lrs) != optimizers:
        raise ValueError(
            f"the restored state holds {len(state.lrs)} lrs but the model has "
            f"{optimizers} optimizers"
        )


def check_restored(
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
        >>> check_restored(state, [False, True], [False, True])
        >>> check_restored(state, None, [False])
        Traceback (most recent call last):
        ...
        ValueError: the restored state holds 2 lrs but the model has 1 optimizers
    """
    check_count(state, len(scaled))
    if held is not None and list(held) != list(scaled):
        # A scale restored as an lr (or the reverse) would train 100x off.
        raise ValueError(
            f"the restored state's lrs are {_units(held)} but this model's optimizers "
            f"take {_units(scaled)}: it was saved with another kind of learning rate "
            "(a schedule or a float)"
        )


def _units(scaled: Sequence[bool]) -> str:
    return "[" + ", ".join("a schedule's scale" if s else "an lr" for s in scaled) + "]"


def check_scale(shape: tuple[int, ...], dtype: object) -> None:
    """A ScaledSchedule's scale variable must be a scalar float32, or a TypeError says so.

    Example:
        >>> check_scale((1,), "float32")
        Traceback (most recent call last):
        ...
        TypeError: 'scale' must be a scalar float32 keras.Variable, got shape (1,) and dtype float32
    """
    if shape != () or dtype != "float32":
        raise TypeError(
            f"'scale' must be a scalar float32 keras.Variable, got shape {shape} and dtype {dtype}"
        )


def check_min_lr(
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
        >>> check_min_lr(0.5, pairs, [True, True])  # a floor at half the schedule
        >>> check_min_lr(0.5, pairs, [True, False])  # doctest: +ELLIPSIS
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


def metric_from_logs(logs: Mapping[str, object], monitor: str, strict: bool) -> float | None:
    """``logs[monitor]`` as Keras compares it, in float32 (beyond its range, +/-inf).

    A missing key is Keras's warning (then None: the epoch is skipped, as Keras
    skips it), or with `strict` a KeyError; both list the keys there are.

    Raises:
        KeyError: `monitor` is missing and `strict` is True.
        TypeError: the value is not a single real number; the message names it.

    Example:
        >>> metric_from_logs({"loss": 0.1}, "loss", strict=False) == f32(0.1) != 0.1
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


def direction(monitor: str, metrics: Iterable[Any]) -> str | None:
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


def cut_messages(
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
        >>> for line in cut_messages(4, ["", "b"], [False, True], (1.0, 1.0),
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


def lr_source_error(optimizer: str, source: object) -> TypeError:
    """The error for an optimizer whose learning rate is neither a float nor a schedule."""
    return TypeError(
        f"optimizer {optimizer!r} gets its learning rate from a {type(source).__name__}, "
        "which is neither a float nor a keras.optimizers.schedules.LearningRateSchedule, "
        "so it cannot be reduced on a plateau; create the optimizer with a float "
        "learning_rate or a schedule"
    )


def write_backup(path: Path, d: Mapping[str, Any]) -> None:
    """Write `d` to `path` as strict JSON, replacing the file atomically (never half-written)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(d, allow_nan=False))
    os.replace(temporary, path)


@contextmanager
def resuming(path: Path) -> Iterator[Any]:
    """Yield the backup at `path` as JSON; any failure inside is a ValueError naming it.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / BACKUP_NAME
        >>> write_backup(path, {"state": None})
        >>> with resuming(path) as d:
        ...     d
        {'state': None}
    """
    import json

    try:
        yield json.loads(path.read_text())
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: cannot resume from it: {exc}") from exc


def import_error(exc: ImportError, backend: str | None) -> ModuleNotFoundError | None:
    """What ``import plateau.adapters.keras`` raises for `exc` (None: `exc` itself).

    Keras imports its backend (`backend` is ``KERAS_BACKEND``; TensorFlow unless told
    otherwise) when it is imported, so a missing backend surfaces as a missing
    module other than keras although keras itself is installed.

    Example:
        >>> print(import_error(ModuleNotFoundError(name="keras"), None))
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
