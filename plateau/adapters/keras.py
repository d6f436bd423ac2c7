"""A drop-in for ``keras.callbacks.ReduceLROnPlateau`` (Keras 3) driven by the pure core.

The callback only translates: Keras's arguments become a :class:`plateau.PlateauConfig`
once (``PlateauConfig.from_keras``), every decision is :func:`plateau.step`'s, and the
framework-free pieces (the state dict and its checks, the messages, the backup file)
are ``plateau._keras_format``'s. At each epoch end it reads the lrs back from the
optimizer (Keras's float32 chain; a change made elsewhere is respected), rounds the
metric to float32 as Keras compares it, steps and writes the lrs that changed. An
optimizer whose learning rate is a ``LearningRateSchedule`` is scaled instead of set
(:class:`ScaledSchedule`). docs/keras.md tells the rest: resuming with ``set_state``
or ``BackupAndRestore``, ``MultiOptimizer``, warmup, and Keras's quirks not reproduced.

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
import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

import plateau
from plateau import Decision, PlateauConfig, PlateauState, _translate
from plateau import _keras_format as fmt
from plateau._checks import check_non_negative
from plateau._config import OnNonFinite
from plateau._core import changed

try:
    import keras
except ImportError as exc:  # pragma: no cover - exercised in subprocesses
    error = fmt.import_error(exc, os.environ.get("KERAS_BACKEND"))
    if error is None:
        raise
    raise error from exc

__all__ = ["ReduceLROnPlateau", "ScaledSchedule"]

_SCALE_NAME = "plateau_scale"
_Schedule = keras.optimizers.schedules.LearningRateSchedule


@keras.saving.register_keras_serializable(package="plateau")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """A ``LearningRateSchedule`` scaled by the plateau: ``schedule(step) * scale``.

    :class:`ReduceLROnPlateau` installs it in place of an optimizer's schedule. Its
    ``scale``, a float32 ``keras.Variable`` (a cut is an assignment a compiled step
    reads), is the core's lr at the reference 1.0 (see ``plateau.scale_base``). It
    serializes with the scale's value (registered as ``plateau>ScaledSchedule``).

    Args:
        schedule: The ``LearningRateSchedule`` to scale, not a ScaledSchedule.
        scale: The starting scale (a float >= 0), or the scalar float32
            ``keras.Variable`` to hold it, e.g. one made by ``optimizer.add_variable``.

    Raises:
        TypeError: a wrong `schedule`, or a `scale` of the wrong type, shape or dtype.
        ValueError: a negative or non-finite `scale`.

    Example:
        >>> import keras
        >>> base = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
        >>> scaled = ScaledSchedule(base, 0.25)
        >>> float(scaled(10)) == float(base(10)) * 0.25
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
            fmt.check_scale(tuple(scale.shape), scale.dtype)
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
        monitor, factor, patience, verbose, mode, min_delta, cooldown: Keras's, with
            Keras's meanings (docs/keras.md); `factor` is strictly between 0 and 1, and
            mode="auto" for a monitor other than "loss" / "val_loss" is resolved from
            the compiled metric's direction at the first epoch end, as Keras does.
        min_lr: Floor of the lr; with a ``LearningRateSchedule``, of its scale (<= 1.0).
        strict: A missing ``monitor`` key raises KeyError instead of Keras's warning.
        on_nonfinite: "bad", "raise" or "skip"; see :class:`plateau.PlateauConfig`.
        backup_dir: A ``keras.callbacks.BackupAndRestore``'s ``backup_dir``: the state
            is saved there (``plateau_state.json``) at every epoch end, a fit that finds
            it resumes from it, and a fit that completes removes it.
        stop_when_exhausted: Set ``model.stop_training`` once ``state.exhausted``.
        warmup_epochs, warmup_start_factor: A linear warmup (:class:`plateau.PlateauConfig`):
            train begin sets each lr (or scale) to ``lr * warmup_start_factor``.

    Attributes:
        config: The translated :class:`plateau.PlateauConfig`; None until mode="auto"
            is resolved, for a monitor other than "loss" / "val_loss".
        state: The :class:`plateau.PlateauState` after the last epoch end (with warmup,
            from train begin); its lrs are the optimizers' lrs or schedules' scales.

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
        self._backup = fmt.check_options(verbose, strict, stop_when_exhausted, backup_dir)
        self.monitor, self.mode, self.verbose, self.strict = monitor, mode, verbose, strict
        self.stop_when_exhausted, self.min_lr = stop_when_exhausted, min_lr
        self._args: dict[str, Any] = dict(  # PlateauConfig.from_keras's, then the core's
            factor=factor,
            patience=patience,
            min_delta=min_delta,
            cooldown=cooldown,
            min_lr=min_lr,
            on_nonfinite=on_nonfinite,
            warmup_epochs=warmup_epochs,
            warmup_start_factor=warmup_start_factor,
        )
        self.config: PlateauConfig | None = fmt.first_config(mode, monitor, self._args)
        self.state: PlateauState | None = None
        self._restored = False
        # Per lr of the state held: a schedule's scale (True) or an lr; None: not known.
        self._scaled: list[bool] | None = None

    def _resolved(self) -> PlateauConfig:
        """The config, resolving mode="auto" from the compiled metrics on first use."""
        if self.config is None:
            direction = fmt.direction(self.monitor, self._compiled_metrics())
            mode = _translate.keras_mode(self.mode, self.monitor, direction, from_model=True)
            self.config = fmt.config_for(mode, self._args)
        return self.config

    def set_model(self, model: Any) -> None:
        """Keras's, wrapping a schedule already: ``on_train_begin`` names anything wrong.

        The scale is then an optimizer variable before a ``BackupAndRestore`` listed
        ahead restores them (by count).
        """
        super().set_model(model)
        with contextlib.suppress(TypeError, ValueError):
            self._slots()

    def _slots(self) -> list[_Slot]:
        """One slot per lr the core holds; all is checked before a schedule is wrapped."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("ReduceLROnPlateau needs a compiled model with an optimizer")
        pairs = _pairs(optimizer)
        scaled = [_is_scheduled(sub) for _, sub in pairs]
        fmt.check_min_lr(self._args["min_lr"], pairs, scaled)
        return [_slot(name, sub) for name, sub in pairs]

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Start afresh, as Keras 3.15 does at every fit(), unless restored (set_state, backup).

        Schedules are wrapped in a :class:`ScaledSchedule` (once); a restored state's
        lrs are written; with warmup, a fresh start writes ``plateau.init``'s lrs.

        Raises:
            TypeError: a learning rate that is neither a float nor a LearningRateSchedule.
            ValueError: a restored state that does not fit the model (the callback stays
                restored, for a corrected retry), or a ``min_lr`` that cannot be a scale.
        """
        slots = self._slots()
        scaled = [slot.scaled for slot in slots]
        if not self._restored and self._backup is not None and self._backup.exists():
            with fmt.resuming(self._backup) as d:
                self.set_state(d)
        if not self._restored:
            self.state, self._scaled = None, scaled
            if self._args["warmup_epochs"] > 0:
                read = _read(slots)
                self.state = _write(slots, read, plateau.init(read, self._resolved()))
            return
        if self.state is not None:
            fmt.check_restored(self.state, self._scaled, scaled)
            # A resumed fit may start from a freshly compiled optimizer that still holds
            # the initial lr (or scale 1.0): the restored lrs are the run's.
            for slot, lr in zip(slots, self.state.lrs, strict=True):
                slot.variable.assign(lr)
        self._scaled, self._restored = scaled, False

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
        metric = fmt.metric_from_logs(logs, self.monitor, self.strict)
        if metric is None:  # missing: Keras's warning, and the epoch is skipped
            return
        state = self.state if self.state is not None else plateau.init(read, config)
        state, lrs = plateau.step(state, metric, config, read)
        if self.verbose > 0 and state.decision is Decision.REDUCED:
            names, scaled = [s.name for s in slots], [s.scaled for s in slots]
            for line in fmt.cut_messages(epoch, names, scaled, read, lrs, self.min_lr, config):
                print(line)
        self.state = state = _write(slots, read, state)
        if self.stop_when_exhausted and state.exhausted:
            self.model.stop_training = True
        if self._backup is not None:
            fmt.write_backup(self._backup, self.get_state())

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """A completed fit removes its backup; the scales leave the optimizers' variables.

        A model saved now holds the variables Keras rebuilds (the scale is in the config).
        """
        if self._backup is not None:
            self._backup.unlink(missing_ok=True)
        optimizer = getattr(self.model, "optimizer", None)
        for _, sub in [] if optimizer is None else _pairs(optimizer):
            source = getattr(sub, "_learning_rate", None)
            if isinstance(source, ScaledSchedule) and _tracks(sub, source.scale):
                # Keras has no public way to untrack an optimizer variable.
                sub._untrack_variable(source.scale)

    def _compiled_metrics(self) -> list[Any]:
        """The compiled metrics, where Keras's own callback looks for a metric's direction."""
        # Private, imported here only: Keras exports no way to find a compiled metric.
        from keras.src.trainers.compile_utils import CompileMetrics, MetricsList

        groups = getattr(self.model, "metrics", [])
        return [
            m for g in groups if isinstance(g, (CompileMetrics, MetricsList)) for m in g.metrics
        ]

    def get_state(self) -> dict[str, Any]:
        """The config and state as a strict-JSON-safe dict, for :meth:`set_state`.

        Example:
            >>> import json
            >>> callback = ReduceLROnPlateau()
            >>> json.dumps(callback.get_state(), allow_nan=False)[:30]
            '{"config": {"format": "plateau'
        """
        return fmt.state_dict(self.config, self.state, self._scaled)

    def set_state(self, d: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`'s output: the next fit(), even of a fresh model, continues.

        Nothing changes unless every check passes.

        Raises:
            TypeError: `d` is not a mapping, or a field has the wrong type.
            ValueError: wrong keys, a config other than this callback's arguments give,
                or (with a compiled model set) a state whose lr count is not the model's.
        """
        config, state, scaled = fmt.read_state(d, self.config, self._args)
        optimizer = getattr(self.model, "optimizer", None)
        # A MultiOptimizer learns its sub-optimizers when built: until then only
        # on_train_begin can count them.
        countable = optimizer is not None and (
            optimizer.built or not hasattr(optimizer, "optimizers")
        )
        if state is not None and countable:
            fmt.check_count(state, len(_pairs(optimizer)))
        self.config, self.state, self._scaled, self._restored = config, state, scaled, True


def _pairs(optimizer: Any) -> list[tuple[str, Any]]:
    """(name, optimizer) per lr the core holds: a MultiOptimizer's subs, else ("", it)."""
    subs = getattr(optimizer, "optimizers", None)  # keras.optimizers.MultiOptimizer
    pairs = [(sub.name, sub) for sub in subs] if subs is not None else [("", optimizer)]
    # A LossScaleOptimizer (mixed precision) holds the lr in its inner optimizer; its
    # own _learning_rate is a placeholder 0.0.
    return [(name, getattr(sub, "inner_optimizer", sub)) for name, sub in pairs]


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
    raise fmt.lr_source_error(optimizer.name, source)


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
    return attrs.evolve(state, lrs=_read(slots)) if writes else state
