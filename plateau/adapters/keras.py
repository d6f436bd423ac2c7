"""A drop-in for ``keras.callbacks.ReduceLROnPlateau`` (Keras 3) driven by the pure core.

The callback only translates: Keras's arguments become a :class:`plateau.PlateauConfig`,
and each epoch end is ``_shared.advance`` over the optimizers' float32 lr variables (a
``LearningRateSchedule``'s :class:`ScaledSchedule` scale), on the metric rounded to
float32 as Keras compares it. The guide: docs/keras.md.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

import plateau
from plateau import Decision, PlateauConfig, PlateauState, _checks, _translate
from plateau._checks import check_bool, check_int, check_non_negative, check_real, got, show, within
from plateau.adapters import _shared

try:
    import keras
except ImportError as exc:  # pragma: no cover - exercised in subprocesses
    if exc.name == "keras":
        message = "plateau.adapters.keras requires keras; install 'plateau-lr[keras]'"
        raise ModuleNotFoundError(message, name="keras") from exc
    if isinstance(exc, ModuleNotFoundError) and not (exc.name or "keras").startswith("keras"):
        raise ModuleNotFoundError(  # Keras imports its backend as it is imported
            f"plateau.adapters.keras: keras is installed but could not import its backend "
            f"module {exc.name!r} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}); "
            "install a Keras backend (jax or torch) and set KERAS_BACKEND=jax or "
            "KERAS_BACKEND=torch before keras is first imported",
            name=exc.name,
        ) from exc
    raise

from keras.optimizers.schedules import LearningRateSchedule
from keras.src.utils import io_utils  # print_msg: stdout, or absl logging when not interactive

from plateau.adapters._keras_backup import Backup
from plateau.adapters._keras_restore import BestWeights

__all__ = ["ReduceLROnPlateau", "ScaledSchedule"]

_BACKUP_NAME = "plateau_state.json"  # the callback's file in a BackupAndRestore's backup_dir
_SCALE_NAME = "plateau_scale"  # a ScaledSchedule's variable
_KEYS = {"config", "state", "scaled"}  # get_state's
# Keras's arguments that make the config, and the fields they set: not settings.
_KERAS_ARGS = ("mode", "factor", "patience", "min_delta", "cooldown", "min_lr")
_TRANSLATED = {*_KERAS_ARGS, "threshold", "threshold_mode", "eps"} - {"min_delta"}


@keras.saving.register_keras_serializable(package="plateau")
class ScaledSchedule(LearningRateSchedule):  # type: ignore[misc]
    """A ``LearningRateSchedule`` scaled by the plateau: ``schedule(step) * scale``.

    :class:`ReduceLROnPlateau` installs it in place of an optimizer's schedule. Its ``scale``
    (a float >= 0, or a scalar float32 ``keras.Variable``) is the core's lr at the reference
    1.0 (``plateau.scale_base``). A bad argument is a TypeError or ValueError naming it.

    Example:
        >>> base = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
        >>> scaled = ScaledSchedule(base, 0.25)
        >>> float(scaled(10)) == float(base(10)) * 0.25
        True
        >>> type(ScaledSchedule.from_config(scaled.get_config()).schedule).__name__
        'ExponentialDecay'
    """

    def __init__(self, schedule: Any, scale: float | Any = 1.0) -> None:
        if isinstance(schedule, ScaledSchedule) or not isinstance(schedule, LearningRateSchedule):
            raise TypeError(
                "'schedule' must be a keras.optimizers.schedules.LearningRateSchedule other "
                f"than a ScaledSchedule, got {type(schedule).__name__}"
            )
        if not isinstance(scale, keras.Variable):
            value = check_non_negative("scale", scale)
            scale = keras.Variable(value, dtype="float32", trainable=False, name=_SCALE_NAME)
        elif tuple(scale.shape) != () or scale.dtype != "float32":
            raise TypeError(
                "'scale' must be a scalar float32 keras.Variable, got shape "
                f"{tuple(scale.shape)} and dtype {scale.dtype}"
            )
        self.schedule, self.scale = schedule, scale

    def __call__(self, step: Any) -> Any:
        """The schedule's lr at `step` times the scale, in float32."""
        return keras.ops.multiply(keras.ops.cast(self.schedule(step), "float32"), self.scale)

    def get_config(self) -> dict[str, Any]:
        """The schedule's serialized config and the scale's current value."""
        schedule = keras.saving.serialize_keras_object(self.schedule)
        return {"schedule": schedule, "scale": float(self.scale.numpy())}

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

    Keras's arguments have Keras's meanings (docs/keras.md); ``min_lr`` under a
    ``LearningRateSchedule`` is the floor of its scale (<= 1.0). Beyond Keras: ``config``
    (a whole PlateauConfig), ``strict`` (a missing monitor is a KeyError), ``backup_dir``
    (a ``BackupAndRestore``'s, saved to and resumed from), ``stop_when_exhausted``,
    ``restore_best_weights`` (each cut first puts the best epoch's weights back) and every
    other PlateauConfig field by name. A bad argument is a TypeError or ValueError naming it.

    Attributes:
        config: The PlateauConfig; None while mode="auto" waits for the model.
        state: The :class:`plateau.PlateauState` of the last epoch end (or warmup's start).
        best_weights: With ``restore_best_weights``, the fit's copy of the best weights.

    Example:
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile(keras.optimizers.SGD(learning_rate=0.5), loss="mse")
        >>> callback = ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5)
        >>> callback.set_model(model)
        >>> callback.on_train_begin()
        >>> for epoch, loss in enumerate([1.0, 1.0]):
        ...     callback.on_epoch_end(epoch, {"loss": loss})
        >>> float(model.optimizer.learning_rate), callback.state.decision.value, callback.wait
        (0.25, 'reduced', 0)
        >>> callback.config.patience  # Keras's patience=1 is the core's 0 (docs/keras.md)
        0
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
        config: PlateauConfig | None = None,
        strict: bool = False,
        backup_dir: str | os.PathLike[str] | None = None,
        stop_when_exhausted: bool = False,
        restore_best_weights: bool = False,
        **settings: Any,
    ) -> None:
        super().__init__()
        if not isinstance(verbose, int):
            raise TypeError(f"'verbose' must be an int, got {got(verbose)}")
        self.strict = check_bool("strict", strict)
        self.stop_when_exhausted = check_bool("stop_when_exhausted", stop_when_exhausted)
        self.restore_best_weights = check_bool("restore_best_weights", restore_best_weights)
        self.best_weights: BestWeights | None = None
        if backup_dir is not None and not isinstance(backup_dir, (str, os.PathLike)):
            raise TypeError(f"'backup_dir' must be a path, got {got(backup_dir)}")
        self._backup = None if backup_dir is None else Backup(Path(backup_dir) / _BACKUP_NAME)
        if clash := sorted(settings.keys() & _TRANSLATED):  # the others are named parameters
            raise TypeError(
                f"ReduceLROnPlateau got {clash[0]}={show(settings[clash[0]])}: Keras's min_delta "
                "is an absolute threshold without eps; for torch's, pass config=PlateauConfig(...)"
            )
        self.monitor, self.mode, self.verbose, self.cooldown = monitor, mode, verbose, cooldown
        self.factor, self.patience, self.min_delta = factor, patience, min_delta
        self.min_lr: float | tuple[float, ...] = min_lr
        self._keras = {"factor": factor, "patience": patience, "min_delta": min_delta}
        self._keras.update(cooldown=cooldown, min_lr=min_lr)
        self._settings = settings
        try:
            known: str | None = _translate.keras_mode(mode, monitor)
        except ValueError:  # an unknown mode, or "auto" that waits for the model's metrics
            _translate.keras_mode(mode, "loss")
            known = None
        self.config: PlateauConfig | None = self._config_for(known or "min")  # checks all
        if config is not None:
            self.config = _shared.make_config(settings, config)
            args, defaults = {"mode": mode, **self._keras}, inspect.signature(type(self)).parameters
            # By repr: a patience of 10.0, or a numpy 10, is not the default 10.
            if given := [n for n in _KERAS_ARGS if repr(args[n]) != repr(defaults[n].default)]:
                raise TypeError(f"config= is the whole config, but Keras's {given} were given too")
            self.mode, self.min_lr = self.config.mode, self.config.min_lr
        elif known is None:
            self.config = None
        self.state: PlateauState | None = None
        self._restored = False
        self._scaled: list[bool] | None = None  # per lr: a schedule's scale, or an lr

    def _config_for(self, mode: str) -> PlateauConfig:
        fields = _translate.keras_fields(mode=mode, **self._keras)  # type: ignore[arg-type]
        return _shared.make_config({**fields, **self._settings})

    def _resolved(self, logs: Mapping[str, Any] | None = None) -> PlateauConfig:
        """The config, resolving mode="auto" from the compiled metrics on first use."""
        if self.config is None:
            # Private, imported here only: Keras exports no way to find a compiled metric.
            from keras.src.trainers.compile_utils import CompileMetrics, MetricsList

            name, direction = self.monitor.removeprefix("val_"), None
            groups = getattr(self.model, "metrics", [])
            compiled = (g for g in groups if isinstance(g, (CompileMetrics, MetricsList)))
            for metric in (metric for group in compiled for metric in group.metrics):
                if metric.name == name and hasattr(metric, "_direction"):
                    direction = metric._direction
            if direction is None and logs is not None and self.monitor not in logs:
                raise ValueError(
                    f"ReduceLROnPlateau callback received monitor={self.monitor}, which is not "
                    f"a metric of this fit: available metrics are {', '.join(logs)}"
                )
            mode = _translate.keras_mode(self.mode, self.monitor, direction, from_model=True)
            self.config = self._config_for(mode)
        return self.config

    @property
    def best(self) -> float | None:
        """Keras's best: the best metric so far (float32, as compared); None before one."""
        state, config = self.state, self.config
        unset = state is None or config is None or state.best == _shared.unset_best(config)
        return None if unset else state.best  # type: ignore[union-attr]

    @best.setter
    def best(self, value: float | None) -> None:
        best = _shared.unset_best(self._resolved()) if value is None else check_real("best", value)
        self._set(best=best)

    @property
    def wait(self) -> int:
        """Keras's wait: the bad epochs counted towards patience (the core's num_bad_epochs)."""
        return 0 if self.state is None else self.state.num_bad_epochs

    @wait.setter
    def wait(self, value: int) -> None:
        self._set(num_bad_epochs=check_int("wait", value))

    @property
    def cooldown_counter(self) -> int:
        """Keras's cooldown_counter: the core's plus one while a cooldown runs (docs/keras.md)."""
        state = self.state
        if state is None:
            return 0
        cut = state.decision is Decision.REDUCED and self.cooldown != 0
        running = state.cooldown_counter or state.decision is Decision.COOLDOWN or cut
        return state.cooldown_counter + 1 if running else 0

    @cooldown_counter.setter
    def cooldown_counter(self, value: int) -> None:
        self._set(cooldown_counter=max(check_int("cooldown_counter", value) - 1, 0))

    def _set(self, **changes: Any) -> None:
        state = self.state or _shared.begin(self._resolved(), *_io(self._slots()))
        self.state = attrs.evolve(state, **changes)

    def set_model(self, model: Any) -> None:
        """Keras's; a schedule is wrapped before a ``BackupAndRestore`` restores by count."""
        super().set_model(model)
        with contextlib.suppress(TypeError, ValueError):
            self._slots()

    def _slots(self) -> list[_Slot]:
        """One slot per lr the core holds; all is checked before a schedule is wrapped."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("ReduceLROnPlateau needs a compiled model with an optimizer")
        pairs = _pairs(optimizer)
        for _, sub in pairs:  # private: the public learning_rate evaluates a schedule
            source = getattr(sub, "_learning_rate", None)
            if not isinstance(source, (keras.Variable, LearningRateSchedule)):
                raise TypeError(
                    f"optimizer {sub.name!r} gets its learning rate from a "
                    f"{type(source).__name__}, which is neither a float nor a "
                    "LearningRateSchedule: it cannot be reduced on a plateau"
                )
        scaled = [isinstance(sub._learning_rate, LearningRateSchedule) for _, sub in pairs]
        floor = self.min_lr  # with a schedule, of its scale
        floors = floor if isinstance(floor, tuple) else (floor,) * len(pairs)
        if any(s and f > 1.0 for s, f in zip(scaled, floors, strict=True)):
            raise ValueError(
                f"'min_lr' is the floor of the schedule's scale, which starts at 1.0, got "
                f"{show(floor)}: give it as a fraction of the schedule's lr (e.g. 0.01)"
            )
        if floor != 0.0 and not isinstance(floor, tuple) and any(scaled) and not all(scaled):
            floats = [name for (name, _), s in zip(pairs, scaled, strict=True) if not s]
            raise ValueError(
                f"'min_lr'={show(floor)} would be a scale for the sub-optimizers with a "
                f"schedule but an lr for {floats}; use 0.0, or a schedule for all or none"
            )
        return [_slot(name, sub) for name, sub in pairs]

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Start afresh, as Keras 3.15 does at every fit(), unless restored (set_state, backup).

        A restored state's lrs are written (a ValueError if they do not fit the model);
        with warmup, a fresh start writes the first.
        """
        slots = self._slots()
        self.best_weights = None
        if self.restore_best_weights:  # a fresh copy each fit; resumed from backup_dir's
            where = None if self._backup is None else self._backup.path.parent
            self.best_weights = BestWeights(self.model, [s.variable for s in slots], where)
        if self._backup is not None:
            self._backup.best = self.best_weights
            self._backup.open(resuming=not self._restored)
            if (newest := self._backup.newest()) is not None:
                self._resume(newest, self._backup.path)
                return
        if self._restored:
            self._write_restored(slots)
            return
        self.state, self._scaled = None, [slot.scaled for slot in slots]
        if (self.config or self._config_for("min")).warmup_epochs > 0:  # whatever the mode
            self.state = _shared.begin(self._resolved(), *_io(slots))

    def _write_restored(self, slots: list[_Slot]) -> None:
        """Write the restored state's lrs into `slots`, once checked to fit them."""
        scaled = [slot.scaled for slot in slots]
        if self.state is not None:
            _shared.check_count(self.state, len(slots), "the model", "optimizers")
            if self._scaled != scaled:  # a scale restored as an lr would train 100x off
                raise ValueError(
                    f"the restored state's lrs are {_units(self._scaled)} but this model's "
                    f"optimizers take {_units(scaled)}: it was saved with another kind of "
                    "learning rate (a schedule or a float)"
                )
            # A fresh optimizer holds the initial lr (or scale 1.0): the run's is restored.
            for slot, lr in zip(slots, self.state.lrs, strict=True):
                slot.variable.assign(lr)
        self._scaled, self._restored = scaled, False

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """With ``backup_dir``, a fit's first epoch resumes from the state after ``epoch - 1``.

        That is the epoch ``BackupAndRestore`` restored, in either callbacks' order.
        """
        backup = self._backup
        if backup is None or not backup.waiting:
            return
        if (saved := backup.resume_at(epoch)) is not None:
            self._resume(saved, backup.path)
        backup.save(epoch - 1, self.get_state())

    def _resume(self, saved: Mapping[str, Any], path: Path) -> None:
        """Resume from a state of the ``backup_dir`` file `path`, and write its lrs."""
        try:
            self.set_state(saved)
            self._write_restored(self._slots())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: cannot resume from it: {exc}") from exc

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Step on ``logs[monitor]``, keep or restore the best weights, save to ``backup_dir``."""
        before = self.state
        self._step(epoch, logs)
        if self.best_weights is not None and self.state is not before and self.state is not None:
            self.best_weights.on_step(epoch, self.state.decision)
        if self._backup is not None:
            self._backup.save(epoch, self.get_state())

    def _step(self, epoch: int, logs: dict[str, Any] | None) -> None:
        """Read the lrs, step, write the changed ones; a missing monitor warns and skips."""
        logs = logs or {}  # as Keras: an empty logs dict is not written to
        config = self._resolved(logs)
        slots = self._slots()
        for slot in slots:  # as Keras's callback: the lr trained at, for History
            lr = float(slot.optimizer.learning_rate)
            logs[f"learning_rate_{slot.name}" if slot.name else "learning_rate"] = lr
        current, available = logs.get(self.monitor), ",".join(logs)
        if current is None and self.strict:
            message = f"monitor {self.monitor!r} is not in the logs (strict=True); available keys"
            raise KeyError(f"{message}: {available}")
        if current is None:  # Keras's warning, and the epoch is skipped
            _shared.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which "
                f"is not available. Available metrics are: {available}."
            )
            return
        with within(f"logs[{self.monitor!r}]"):
            metric = _translate.f32(_checks.to_metric(current))  # as Keras compares it
        read, write = _io(slots)
        cuts: list[tuple[int, float]] = []  # each lr written, before float32 rounds it

        def logged(i: int, lr: float) -> float:
            cuts.append((i, lr))
            return write(i, lr)

        state = self.state or plateau.init(read(), config)
        self.state = state = _shared.advance(state, metric, config, read, logged)
        for i, new in cuts if self.verbose > 0 and state.decision is Decision.REDUCED else ():
            floor = self.min_lr  # Keras prints a floor as given, not as its float32
            shown = floor if not isinstance(floor, tuple) and new == _translate.f32(floor) else new
            what = "learning rate scale" if slots[i].scaled else "learning rate"
            name = f" {slots[i].name}" if slots[i].name else ""
            io_utils.print_msg(
                f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing{name} {what} to {shown}."
            )
        if self.stop_when_exhausted and state.exhausted:
            self.model.stop_training = True

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """A completed fit removes its backup; the scales leave the optimizers' variables."""
        if self._backup is not None:
            self._backup.remove()
        optimizer = getattr(self.model, "optimizer", None)
        for _, sub in [] if optimizer is None else _pairs(optimizer):
            source = getattr(sub, "_learning_rate", None)
            if isinstance(source, ScaledSchedule) and any(v is source.scale for v in sub.variables):
                sub._untrack_variable(source.scale)  # a saved model holds what Keras rebuilds

    def get_state(self) -> dict[str, Any]:
        """The config, state and per-lr units as a strict-JSON-safe dict, for :meth:`set_state`.

        Example:
            >>> ReduceLROnPlateau().get_state()  # nothing to resume before an epoch end
            {'config': None, 'state': None, 'scaled': None}
        """
        d: dict[str, Any] = {"config": None, "state": None, "scaled": self._scaled}
        if self.config is not None and self.state is not None:
            d.update(_shared.saved(self.config, self.state))
        return d

    def set_state(self, d: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`'s output: the next fit(), even of a fresh model, continues.

        A bad `d`, a config other than this callback's or (with a compiled model set)
        another lr count is a TypeError or ValueError naming it, and changes nothing.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"'d' must be a mapping, got {got(d)}")
        if set(d) != _KEYS:
            raise ValueError(f"'d' must have the keys {sorted(_KEYS)}, got {_checks.show_keys(d)}")
        scaled = d["scaled"]
        bools = isinstance(scaled, list) and set(map(type, scaled)) <= {bool}
        if not (scaled is None or bools):
            raise TypeError(f"d['scaled'] must be None or a list of bools, got {got(scaled)}")
        saved, state = self.config, None
        if d["config"] is not None or d["state"] is not None:
            saved, state = _shared.load_saved(d, "d")
            expected = self.config or self._config_for(saved.mode)
            _shared.check_same_config(saved, expected, "d['config']", "this callback's")
        # A MultiOptimizer learns its sub-optimizers when built; until then on_train_begin counts.
        optimizer = getattr(self.model, "optimizer", None)
        unbuilt = optimizer is None or (not optimizer.built and hasattr(optimizer, "optimizers"))
        if state is not None and not unbuilt:
            _shared.check_count(state, len(_pairs(optimizer)), "the model", "optimizers")
        self.config, self.state, self._scaled, self._restored = saved, state, scaled, True


def _units(scaled: Sequence[bool] | None) -> str:
    return "[" + ", ".join("a schedule's scale" if s else "an lr" for s in scaled or ()) + "]"


def _pairs(optimizer: Any) -> list[tuple[str, Any]]:
    """(name, optimizer) per lr the core holds: a MultiOptimizer's subs, else ("", it)."""
    subs = getattr(optimizer, "optimizers", None)  # keras.optimizers.MultiOptimizer
    pairs = [(sub.name, sub) for sub in subs] if subs is not None else [("", optimizer)]
    # A LossScaleOptimizer (mixed precision) holds the lr in its inner optimizer.
    return [(name, getattr(sub, "inner_optimizer", sub)) for name, sub in pairs]


def _slot(name: str, optimizer: Any) -> _Slot:
    """The variable holding `optimizer`'s lr for the core; a schedule is wrapped once."""
    source = optimizer._learning_rate  # checked by _slots
    if isinstance(source, keras.Variable):
        return _Slot(name, optimizer, source, scaled=False)
    if isinstance(source, ScaledSchedule):
        if any(v is source.scale for v in optimizer.variables):
            return _Slot(name, optimizer, source.scale, scaled=True)  # installed already
        base, start = source.schedule, float(source.scale.numpy())  # reloaded, or a 2nd fit
    else:
        base, start = source, 1.0
    # An optimizer variable: the jax trainer would freeze any other into its compiled step.
    scale = optimizer.add_variable(
        (), initializer=keras.initializers.Constant(start), dtype="float32", name=_SCALE_NAME
    )
    optimizer.learning_rate = ScaledSchedule(base, scale)  # the setter takes a schedule
    return _Slot(name, optimizer, scale, scaled=True)


def _io(slots: Sequence[_Slot]) -> tuple[_shared.Read, _shared.Write]:
    def write(i: int, lr: float) -> float:
        slots[i].variable.assign(lr)
        return float(slots[i].variable)  # as float32 holds it

    return lambda: tuple(float(slot.variable) for slot in slots), write


_shared.publish_settings(ReduceLROnPlateau.__init__, skip=_TRANSLATED)
