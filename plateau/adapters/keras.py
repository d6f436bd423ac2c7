"""A drop-in for ``keras.callbacks.ReduceLROnPlateau`` (Keras 3) driven by the pure core.

Keras's arguments are translated once by :meth:`plateau.PlateauConfig.from_keras`
(patience and cooldown shifted by one, an absolute ``abs(min_delta)`` threshold,
no eps, ``min_lr`` rounded to float32); every decision is :func:`plateau.step`'s.
The callback only moves numbers between Keras and the core:

- The optimizer owns the lr (the core's ownership rule): it is read back at every
  epoch end (Keras keeps it in a float32 variable), so the core works on exactly
  the float32 chain Keras's own callback works on, and a change made by anything
  else is respected.
- The metric is rounded to float32 before the step, because Keras compares in
  float32. With ``min_delta=0`` every decision is then Keras's; with
  ``min_delta > 0`` the two can disagree only on exact float32 ties (see
  docs/keras.md, with Keras's other quirks: a first-epoch NaN, counting at the floor).

Like Keras 3.15, every ``fit()`` starts afresh; call :meth:`ReduceLROnPlateau.set_state`
before a ``fit()`` to resume instead. ``keras.callbacks.BackupAndRestore`` restores the
weights and the optimizer, not the callbacks' counters: give this callback the same
``backup_dir`` and it saves its state there at every epoch end and resumes from it.
With a ``keras.optimizers.MultiOptimizer`` the core holds one lr per sub-optimizer, in
``optimizer.optimizers`` order.

Warmup (``warmup_epochs``, ``warmup_start_factor``) is the core's: ``plateau.init``'s lrs
are written at train begin, so the first epoch trains at ``lr * warmup_start_factor``.
An optimizer whose learning rate is a ``LearningRateSchedule`` is scaled, not set: at
train begin its schedule is wrapped in a :class:`ScaledSchedule`, whose ``scale``
variable holds the core's lr, as in optax's ``reduce_on_plateau`` (the reference is
1.0, see "Base schedules" in the core's theory of operation): the optimizer trains at
``schedule(iteration) * scale``, and ``min_lr`` is the smallest scale.

Example:
    >>> import keras
    >>> from plateau.adapters.keras import ReduceLROnPlateau
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    >>> callback = ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5)
    >>> callback.set_model(model)
    >>> callback.on_train_begin()
    >>> for epoch, loss in enumerate([1.0, 1.0]):
    ...     callback.on_epoch_end(epoch, {"loss": loss})
    >>> float(model.optimizer.learning_rate), callback.state.decision.value
    (0.25, 'reduced')
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

import plateau
from plateau import Decision, PlateauConfig, PlateauState
from plateau._checks import check_non_negative, got, show, show_keys, to_metric, within
from plateau._config import OnNonFinite
from plateau._core import changed
from plateau._translate import f32, keras_mode

try:
    import keras
except ImportError as exc:  # pragma: no cover - exercised in subprocesses
    if exc.name == "keras":
        raise ModuleNotFoundError(
            "plateau.adapters.keras requires keras; install 'plateau-lr[keras]'", name="keras"
        ) from exc
    if isinstance(exc, ModuleNotFoundError) and not (exc.name or "keras").startswith("keras"):
        # Keras imports its backend at import time (TensorFlow unless told otherwise),
        # so a missing backend surfaces here although keras itself is installed.
        raise ModuleNotFoundError(
            f"plateau.adapters.keras: keras is installed but could not import its backend "
            f"module {exc.name!r} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}); "
            "install a Keras backend (jax or torch) and set KERAS_BACKEND=jax or "
            "KERAS_BACKEND=torch before keras is first imported",
            name=exc.name,
        ) from exc
    raise

__all__ = ["ReduceLROnPlateau", "ScaledSchedule"]

_STATE_KEYS = frozenset({"config", "state"})
_UNITS = "scaled"  # optional key: per lr, whether it is a schedule's scale (older states lack it)
_BACKUP_NAME = "plateau_state.json"
_SCALE_NAME = "plateau_scale"
_Schedule = keras.optimizers.schedules.LearningRateSchedule


@keras.saving.register_keras_serializable(package="plateau")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """A ``LearningRateSchedule`` scaled by the plateau: ``schedule(step) * scale``.

    :class:`ReduceLROnPlateau` installs it in place of an optimizer's schedule; its
    ``scale`` is a float32 ``keras.Variable``, so a cut is an assignment that a
    compiled train step reads without being traced again. ``scale`` is the core's
    lr at the reference 1.0 (the core's ``scale_base``): while it is 1.0 the product
    is the schedule's lr exactly, and below 1.0 it never exceeds it. It serializes
    (``get_config`` / ``from_config``, registered as ``plateau>ScaledSchedule``) with
    the scale's value, so a saved model reloads at the lr it was saved at once
    ``plateau.adapters.keras`` is imported.

    Args:
        schedule: The ``keras.optimizers.schedules.LearningRateSchedule`` to scale
            (not a ScaledSchedule: the plateau scales a schedule once).
        scale: The starting scale (a float >= 0), or the float32 ``keras.Variable``
            to hold it, e.g. one made by ``optimizer.add_variable``.

    Raises:
        TypeError: `schedule` is not a LearningRateSchedule or is a ScaledSchedule,
            or `scale` is neither a real number nor a scalar float32 Variable.
        ValueError: a negative or non-finite `scale`.

    Example:
        >>> import keras
        >>> base = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
        >>> scaled = ScaledSchedule(base, 0.25)
        >>> float(scaled(10)) == float(base(10)) * 0.25
        True
        >>> _ = scaled.scale.assign(1.0)  # what a cut assigns; a compiled step reads it
        >>> float(scaled(10)) == float(base(10))
        True
        >>> type(ScaledSchedule.from_config(scaled.get_config()).schedule).__name__
        'ExponentialDecay'
    """

    def __init__(self, schedule: Any, scale: float | Any = 1.0) -> None:
        if isinstance(schedule, ScaledSchedule) or not isinstance(schedule, _Schedule):
            raise TypeError(
                "'schedule' must be a keras.optimizers.schedules.LearningRateSchedule other "
                f"than a ScaledSchedule, got {type(schedule).__name__}"
            )
        if isinstance(scale, keras.Variable):
            if tuple(scale.shape) != () or scale.dtype != "float32":
                raise TypeError(
                    f"'scale' must be a scalar float32 keras.Variable, got shape "
                    f"{tuple(scale.shape)} and dtype {scale.dtype}"
                )
        else:
            value = check_non_negative("scale", scale)
            scale = keras.Variable(value, dtype="float32", trainable=False, name=_SCALE_NAME)
        self.schedule = schedule
        self.scale = scale

    def __call__(self, step: Any) -> Any:
        """The schedule's lr at `step` times the scale, in float32."""
        lr = keras.ops.cast(self.schedule(step), "float32")
        return keras.ops.multiply(lr, self.scale)

    def get_config(self) -> dict[str, Any]:
        """The schedule's serialized config and the scale's current value."""
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "scale": float(self.scale.numpy()),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ScaledSchedule:
        """Rebuild from :meth:`get_config`'s output, with a new variable for the scale."""
        schedule = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(schedule, config["scale"])


@attrs.frozen
class _Slot:
    """Where one of the core's lrs lives: an optimizer's lr variable, or its schedule's scale."""

    name: str  # the sub-optimizer's name; "" for a single optimizer
    optimizer: Any
    variable: Any  # the float32 keras.Variable that holds the core's number
    scaled: bool  # True: the variable is a ScaledSchedule's scale, not the lr


class ReduceLROnPlateau(keras.callbacks.Callback):  # type: ignore[misc]
    """Keras's ReduceLROnPlateau callback, with every decision made by :func:`plateau.step`.

    Args:
        monitor: The logs key to watch, e.g. "val_loss".
        factor: Multiplier applied to the lr on a reduction; strictly between 0 and 1.
        patience: Epochs without improvement before a cut (Keras's meaning).
        verbose: 0 quiet; 1 prints Keras's message at each cut.
        mode: "min", "max" or "auto": a "loss"/"val_loss" monitor is minimised,
            otherwise the compiled metric's direction decides at the first epoch end,
            as Keras does; unresolvable is a ValueError there.
        min_delta: An improvement must beat best by more than ``abs(min_delta)``.
        cooldown: Epochs after a cut during which bad epochs are not counted (Keras's meaning).
        min_lr: Floor of the lr. For an optimizer whose learning rate is a
            ``LearningRateSchedule``, the floor of its scale (at most 1.0): the lr then
            never goes below ``min_lr * schedule(iteration)``.
        strict: A missing ``monitor`` key raises KeyError instead of Keras's warning.
        backup_dir: The ``backup_dir`` of a ``keras.callbacks.BackupAndRestore`` in the
            same fit: the state is saved there (``plateau_state.json``, strict JSON) at
            every epoch end, a fit that finds it resumes from it, and a fit that
            completes removes it, as BackupAndRestore removes its backup.
        on_nonfinite: "bad" (a NaN or inf metric is compared as a number, as torch does),
            "raise" or "skip"; see :class:`plateau.PlateauConfig`.
        stop_when_exhausted: Set ``model.stop_training`` when the schedule is exhausted
            (``state.exhausted``: patience exceeded again with the lr at ``min_lr``),
            so ``fit()`` ends after that epoch.
        warmup_epochs, warmup_start_factor: A linear warmup before the plateau rule
            (:class:`plateau.PlateauConfig`, the torch adapter's keywords): at train
            begin each lr is set to ``lr * warmup_start_factor``, and the first
            ``warmup_epochs`` epoch ends ramp it back to the lr it had, ignoring the
            metric. With a schedule, the scale ramps from ``warmup_start_factor`` to 1.

    Attributes:
        config: The translated :class:`plateau.PlateauConfig`; None until mode="auto"
            is resolved, for a monitor other than "loss" / "val_loss".
        state: The :class:`plateau.PlateauState` after the last epoch end; None before
            (with warmup, the state from train begin). Its lrs are the optimizers'
            lrs, or the scales of those whose learning rate is a schedule.

    Raises:
        TypeError: An argument of the wrong type.
        ValueError: An unknown mode or a value the core rejects (e.g. factor >= 1).

    Example:
        >>> callback = ReduceLROnPlateau(patience=3, cooldown=2)
        >>> callback.config.patience, callback.config.cooldown  # Keras's off-by-ones
        (2, 1)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        *,
        strict: bool = False,
        on_nonfinite: OnNonFinite = "bad",
        backup_dir: str | os.PathLike[str] | None = None,
        stop_when_exhausted: bool = False,
        warmup_epochs: int = 0,
        warmup_start_factor: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value, kind in (
            ("verbose", verbose, int),
            ("strict", strict, bool),
            ("stop_when_exhausted", stop_when_exhausted, bool),
        ):
            if not isinstance(value, kind):
                raise TypeError(f"'{name}' must be a {kind.__name__}, got {got(value)}")
        if backup_dir is not None and not isinstance(backup_dir, (str, os.PathLike)):
            raise TypeError(f"'backup_dir' must be a path, got {got(backup_dir)}")
        self.monitor, self.mode, self.verbose, self.strict = monitor, mode, verbose, strict
        self._backup = None if backup_dir is None else Path(backup_dir) / _BACKUP_NAME
        self.stop_when_exhausted = stop_when_exhausted
        self.min_lr = min_lr
        self._keras_args: dict[str, Any] = {
            "factor": factor,
            "patience": patience,
            "min_delta": min_delta,
            "cooldown": cooldown,
            "min_lr": min_lr,
        }
        self._extra: dict[str, Any] = {
            "on_nonfinite": on_nonfinite,
            "warmup_epochs": warmup_epochs,
            "warmup_start_factor": warmup_start_factor,
        }
        # Every bad argument fails here, even when mode="auto" must wait for the model.
        try:
            config = self._translate(keras_mode(mode, monitor))
        except ValueError:
            keras_mode(mode, "loss")  # an unknown mode, rather than an unresolved "auto"
            config = None
            self._translate("min")
        self.config: PlateauConfig | None = config
        self.state: PlateauState | None = None
        self._restored = False
        # Per lr of the state held: a schedule's scale (True) or an lr; None: not known.
        self._scaled: list[bool] | None = None

    def _translate(self, mode: str) -> PlateauConfig:
        config = PlateauConfig.from_keras(mode=mode, **self._keras_args)
        return attrs.evolve(config, **self._extra)

    def _resolved(self) -> PlateauConfig:
        """The config, resolving mode="auto" from the compiled metrics on first use."""
        if self.config is None:
            self.config = self._translate(
                keras_mode(self.mode, self.monitor, self._direction(), from_model=True)
            )
        return self.config

    def set_model(self, model: Any) -> None:
        """Keras's set_model; a schedule is wrapped here already when the optimizer exists.

        ``fit()`` sets the model on every callback before any ``on_train_begin``, so
        the scale joins the optimizer's variables before a ``BackupAndRestore`` listed
        ahead of this callback restores them (it restores by count). Anything wrong is
        left for ``on_train_begin`` to name.
        """
        super().set_model(model)
        with contextlib.suppress(TypeError, ValueError):
            self._slots()

    def _slots(self) -> list[_Slot]:
        """One slot per lr the core holds, wrapping each schedule in a ScaledSchedule.

        Everything is checked before any schedule is wrapped: an error changes nothing.
        """
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("ReduceLROnPlateau needs a compiled model with an optimizer")
        pairs = _pairs(optimizer)
        scaled = [_is_scheduled(sub) for _, sub in pairs]
        if any(scaled):
            min_lr = self._keras_args["min_lr"]
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
        return [_slot(name, sub) for name, sub in pairs]

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Start afresh, as Keras 3.15 does at every fit(), unless set_state() came first.

        A schedule is wrapped in a :class:`ScaledSchedule` first (once: a second fit or
        callback reuses it). With warmup, a fresh start writes ``plateau.init``'s lrs
        (or scales) now, so the first epoch trains at ``lr * warmup_start_factor``.

        Raises:
            TypeError: an optimizer's learning rate is a callable that is not a
                LearningRateSchedule.
            ValueError: the restored state holds a different number of lrs than the
                model has optimizers (the callback stays restored, so a corrected
                retry resumes), or a ``min_lr`` that cannot be a schedule's scale.
        """
        slots = self._slots()
        scaled = [slot.scaled for slot in slots]
        if not self._restored and self._backup is not None and self._backup.exists():
            try:
                self.set_state(json.loads(self._backup.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                raise ValueError(f"{self._backup}: cannot resume from it: {exc}") from exc
        if not self._restored:
            self.state = None
            self._scaled = scaled
            if self._extra["warmup_epochs"] > 0:
                read = _read(slots)
                self.state = _write(slots, read, plateau.init(read, self._resolved()))
            return
        if self.state is not None:
            _check_lr_count(self.state, slots)
            if self._scaled is not None and self._scaled != scaled:
                # A scale restored as an lr (or the reverse) would train 100x off.
                raise ValueError(
                    f"the restored state's lrs are {_units(self._scaled)} but this "
                    f"model's optimizers take {_units(scaled)}: it was saved with "
                    "another kind of learning rate (a schedule or a float)"
                )
            # A resumed fit may start from a freshly compiled optimizer that still holds
            # the initial lr (or scale 1.0): the restored lrs are the run's.
            for slot, lr in zip(slots, self.state.lrs, strict=True):
                slot.variable.assign(lr)
        self._scaled = scaled
        self._restored = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Step the core on ``logs[monitor]``: read the lrs, step, write the changed ones."""
        config = self._resolved()  # mode="auto": resolved once the model's metrics exist
        logs = logs or {}  # as Keras: an empty logs dict is not written to
        slots = self._slots()
        read = _read(slots)
        # Keras's callback adds the lr to the logs (History records it); so do we: the
        # lr the optimizer trains at, the schedule's times the scale where scaled.
        for slot in slots:
            lr = float(slot.optimizer.learning_rate)
            logs[f"learning_rate_{slot.name}" if slot.name else "learning_rate"] = lr
        current = logs.get(self.monitor)
        if current is None:
            available = ",".join(logs)
            if self.strict:
                raise KeyError(
                    f"monitor {self.monitor!r} is not in the logs (strict=True); "
                    f"available keys: {available}"
                )
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which "
                f"is not available. Available metrics are: {available}.",
                stacklevel=2,
            )
            return
        state = self.state if self.state is not None else plateau.init(read, config)
        state, lrs = plateau.step(state, self._float32(current), config, read)
        if self.verbose > 0 and state.decision is Decision.REDUCED:
            for index, new in changed(read, lrs):
                slot = slots[index]
                # Keras prints max(lr * factor, min_lr) before float32 rounding.
                shown = self.min_lr if new == config.min_lr else new
                what = "learning rate scale" if slot.scaled else "learning rate"
                print(
                    f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing"
                    f"{' ' + slot.name if slot.name else ''} {what} to {shown}."
                )
        self.state = state = _write(slots, read, state)
        if self.stop_when_exhausted and state.exhausted:
            self.model.stop_training = True
        if self._backup is not None:
            self._backup.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._backup.with_suffix(".tmp")  # never a half-written backup
            temporary.write_text(json.dumps(self.get_state(), allow_nan=False))
            os.replace(temporary, self._backup)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """A completed fit removes its backup: the next fit starts afresh.

        The scales leave the optimizers' variables again, so a model saved after the
        fit holds the variables Keras rebuilds when it loads it (the scale is saved
        in the schedule's config).
        """
        if self._backup is not None:
            self._backup.unlink(missing_ok=True)
        optimizer = getattr(self.model, "optimizer", None)
        for _, sub in [] if optimizer is None else _pairs(optimizer):
            source = getattr(sub, "_learning_rate", None)
            if isinstance(source, ScaledSchedule) and _tracks(sub, source.scale):
                # Keras has no public way to untrack an optimizer variable.
                sub._untrack_variable(source.scale)

    def _float32(self, value: object) -> float:
        """The metric as Keras compares it: rounded to float32 (beyond its range, +/-inf)."""
        try:
            return f32(to_metric(value))
        except TypeError as exc:
            raise TypeError(f"logs[{self.monitor!r}]: {exc}") from exc

    def _direction(self) -> str | None:
        """The compiled metric's direction ("up"/"down"), where Keras's own callback looks."""
        # Keras exports no public way to find a compiled metric by name.
        from keras.src.trainers.compile_utils import CompileMetrics, MetricsList

        name = self.monitor.removeprefix("val_")
        direction = None
        for group in getattr(self.model, "metrics", []):
            if isinstance(group, (CompileMetrics, MetricsList)):
                for metric in group.metrics:
                    if metric.name == name and hasattr(metric, "_direction"):
                        direction = metric._direction
        return direction

    def get_state(self) -> dict[str, Any]:
        """The config and state as a strict-JSON-safe dict, for :meth:`set_state`.

        Example:
            >>> import json
            >>> callback = ReduceLROnPlateau()
            >>> json.dumps(callback.get_state(), allow_nan=False)[:30]
            '{"config": {"format": "plateau'
        """
        d: dict[str, Any] = {
            "config": None if self.config is None else self.config.to_dict(),
            "state": None if self.state is None else self.state.to_dict(),
        }
        if self._scaled is not None:
            d[_UNITS] = list(self._scaled)
        return d

    def set_state(self, d: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`'s output; the next fit() continues from it.

        The next ``on_train_begin`` writes the restored lrs into the optimizer, so a
        resumed fit may start from a freshly compiled model. Nothing changes unless
        every check passes.

        Raises:
            TypeError: `d` is not a mapping, or a field has the wrong type.
            ValueError: wrong keys, a config other than this callback's arguments give,
                or (once a compiled model is set) a state whose lr count is not the
                model's optimizer count.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"'d' must be a mapping, got {got(d)}")
        if set(d) - {_UNITS} != _STATE_KEYS:
            keys = show_keys(d)
            raise ValueError(
                f"'d' must have the keys {sorted(_STATE_KEYS)} (and optionally "
                f"{_UNITS!r}), got {keys}"
            )
        units = d.get(_UNITS)
        if units is not None and not (
            isinstance(units, list) and all(type(u) is bool for u in units)
        ):
            raise TypeError(f"d[{_UNITS!r}] must be a list of bools, got {got(units)}")
        with within("d['config']"):
            saved = None if d["config"] is None else PlateauConfig.from_dict(d["config"])
        with within("d['state']"):
            state = None if d["state"] is None else PlateauState.from_dict(d["state"])
        if saved is not None:
            # An unresolved mode="auto" accepts whichever mode the saved run resolved.
            expected = self.config if self.config is not None else self._translate(saved.mode)
            if saved != expected:
                raise ValueError(
                    f"the saved config {saved} is not this callback's config {expected}"
                )
        optimizer = getattr(self.model, "optimizer", None)
        # A MultiOptimizer learns its sub-optimizers when built; until then only
        # on_train_begin can count them.
        countable = optimizer is not None and (
            optimizer.built or not hasattr(optimizer, "optimizers")
        )
        if state is not None and countable:
            _check_lr_count(state, _pairs(optimizer))
        self.config = saved if saved is not None else self.config
        self.state = state
        self._scaled = units
        self._restored = True


def _pairs(optimizer: Any) -> list[tuple[str, Any]]:
    """(name, optimizer) per lr the core holds: a MultiOptimizer's subs, else ("", it)."""
    subs = getattr(optimizer, "optimizers", None)  # keras.optimizers.MultiOptimizer
    pairs = [(sub.name, sub) for sub in subs] if subs is not None else [("", optimizer)]
    # A LossScaleOptimizer (mixed precision) holds the lr in its inner optimizer; its
    # own _learning_rate is a placeholder 0.0.
    return [(name, getattr(sub, "inner_optimizer", sub)) for name, sub in pairs]


def _units(scaled: Sequence[bool]) -> str:
    return "[" + ", ".join("a schedule's scale" if s else "an lr" for s in scaled) + "]"


def _tracks(optimizer: Any, variable: Any) -> bool:
    return any(v is variable for v in optimizer.variables)


def _is_scheduled(optimizer: Any) -> bool:
    """True for a schedule, False for a float lr (a Variable); else a TypeError naming it."""
    # Private: the public learning_rate evaluates a schedule; Keras does not return it.
    source = getattr(optimizer, "_learning_rate", None)
    if isinstance(source, keras.Variable):
        return False
    if isinstance(source, _Schedule):
        return True
    raise TypeError(
        f"optimizer {optimizer.name!r} gets its learning rate from a "
        f"{type(source).__name__}, which is neither a float nor a "
        "keras.optimizers.schedules.LearningRateSchedule, so it cannot be reduced on a "
        "plateau; create the optimizer with a float learning_rate or a schedule"
    )


def _slot(name: str, optimizer: Any) -> _Slot:
    """The variable holding `optimizer`'s lr for the core; a schedule is wrapped once."""
    source = optimizer._learning_rate  # checked by _is_scheduled
    if isinstance(source, keras.Variable):
        return _Slot(name, optimizer, source, scaled=False)
    if isinstance(source, ScaledSchedule):
        if _tracks(optimizer, source.scale):
            return _Slot(name, optimizer, source.scale, scaled=True)  # installed already
        base, start = source.schedule, float(source.scale.numpy())  # reloaded, or a 2nd fit
    else:
        base, start = source, 1.0
    # The scale must be one of the optimizer's variables: the jax trainer hands a
    # compiled train step only those, and would freeze any other into it as a constant.
    scale = optimizer.add_variable(
        (), initializer=keras.initializers.Constant(start), dtype="float32", name=_SCALE_NAME
    )
    optimizer.learning_rate = ScaledSchedule(base, scale)  # the setter takes a schedule
    return _Slot(name, optimizer, scale, scaled=True)


def _read(slots: Sequence[_Slot]) -> tuple[float, ...]:
    return tuple(float(slot.variable) for slot in slots)


def _write(slots: Sequence[_Slot], read: tuple[float, ...], state: PlateauState) -> PlateauState:
    """Write the lrs that changed; the state then records what the float32 variables hold."""
    writes = changed(read, state.lrs)
    for index, new in writes:
        slots[index].variable.assign(new)
    if not writes:
        return state
    return attrs.evolve(state, lrs=_read(slots))


def _check_lr_count(state: PlateauState, optimizers: Sequence[object]) -> None:
    if len(state.lrs) != len(optimizers):
        raise ValueError(
            f"the restored state holds {len(state.lrs)} lrs but the model has "
            f"{len(optimizers)} optimizers"
        )
