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

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

import plateau
from plateau import PlateauConfig, PlateauState
from plateau._checks import got, show_keys, to_metric, within
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

__all__ = ["ReduceLROnPlateau"]

_STATE_KEYS = frozenset({"config", "state"})
_BACKUP_NAME = "plateau_state.json"


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
        min_lr: Floor of the lr.
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

    Attributes:
        config: The translated :class:`plateau.PlateauConfig`; None until mode="auto"
            is resolved, for a monitor other than "loss" / "val_loss".
        state: The :class:`plateau.PlateauState` after the last epoch end; None before.

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
        self._on_nonfinite = on_nonfinite
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

    def _translate(self, mode: str) -> PlateauConfig:
        config = PlateauConfig.from_keras(mode=mode, **self._keras_args)
        return attrs.evolve(config, on_nonfinite=self._on_nonfinite)

    def _optimizers(self) -> list[tuple[str, Any]]:
        """(name, optimizer) pairs whose lrs the core holds; name is "" for a single one."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("ReduceLROnPlateau needs a compiled model with an optimizer")
        subs = getattr(optimizer, "optimizers", None)  # keras.optimizers.MultiOptimizer
        pairs = [(sub.name, sub) for sub in subs] if subs is not None else [("", optimizer)]
        for _, sub in pairs:
            if not isinstance(sub.learning_rate, keras.Variable):
                source = getattr(sub, "_learning_rate", None)
                kind = (
                    f"a LearningRateSchedule ({type(source).__name__})"
                    if isinstance(source, keras.optimizers.schedules.LearningRateSchedule)
                    else f"a {type(source).__name__}"
                )
                raise TypeError(
                    f"optimizer {sub.name!r} gets its learning rate from {kind}, which Keras "
                    "cannot set, so it cannot be reduced on a plateau; create the optimizer "
                    "with a float learning_rate"
                )
        return pairs

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Start afresh, as Keras 3.15 does at every fit(), unless set_state() came first.

        Raises:
            ValueError: the restored state holds a different number of lrs than the
                model has optimizers; the callback stays restored, so a corrected
                retry resumes.
        """
        optimizers = self._optimizers()
        if not self._restored and self._backup is not None and self._backup.exists():
            try:
                self.set_state(json.loads(self._backup.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                raise ValueError(f"{self._backup}: cannot resume from it: {exc}") from exc
        if not self._restored:
            self.state = None
            return
        if self.state is not None:
            _check_lr_count(self.state, optimizers)
            # A resumed fit may start from a freshly compiled optimizer that still holds
            # the initial lr: the restored lrs are the run's.
            for (_, opt), lr in zip(optimizers, self.state.lrs, strict=True):
                opt.learning_rate = lr
        self._restored = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Step the core on ``logs[monitor]``: read the lrs, step, write the changed ones."""
        if self.config is None:  # mode="auto": resolved once the model's metrics exist
            self.config = self._translate(
                keras_mode(self.mode, self.monitor, self._direction(), from_model=True)
            )
        config = self.config
        logs = logs or {}  # as Keras: an empty logs dict is not written to
        optimizers = self._optimizers()
        read = tuple(float(opt.learning_rate) for _, opt in optimizers)
        # Keras's callback adds the lr to the logs (History records it); so do we.
        for (name, _), lr in zip(optimizers, read, strict=True):
            logs[f"learning_rate_{name}" if name else "learning_rate"] = lr
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
        writes = changed(read, lrs)
        for index, new in writes:
            name, opt = optimizers[index]
            opt.learning_rate = new
            if self.verbose > 0:
                # Keras prints max(lr * factor, min_lr) before float32 rounding.
                shown = self.min_lr if new == config.min_lr else new
                print(
                    f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing"
                    f"{' ' + name if name else ''} learning rate to {shown}."
                )
        if writes:  # the variables round to float32: record what they hold
            state = attrs.evolve(state, lrs=tuple(float(o.learning_rate) for _, o in optimizers))
        self.state = state
        if self.stop_when_exhausted and state.exhausted:
            self.model.stop_training = True
        if self._backup is not None:
            self._backup.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._backup.with_suffix(".tmp")  # never a half-written backup
            temporary.write_text(json.dumps(self.get_state(), allow_nan=False))
            os.replace(temporary, self._backup)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """A completed fit removes its backup: the next fit starts afresh."""
        if self._backup is not None:
            self._backup.unlink(missing_ok=True)

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
        return {
            "config": None if self.config is None else self.config.to_dict(),
            "state": None if self.state is None else self.state.to_dict(),
        }

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
        if set(d) != _STATE_KEYS:
            keys = show_keys(d)
            raise ValueError(f"'d' must have exactly the keys {sorted(_STATE_KEYS)}, got {keys}")
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
            _check_lr_count(state, self._optimizers())
        self.config = saved if saved is not None else self.config
        self.state = state
        self._restored = True


def _check_lr_count(state: PlateauState, optimizers: Sequence[tuple[str, Any]]) -> None:
    if len(state.lrs) != len(optimizers):
        raise ValueError(
            f"the restored state holds {len(state.lrs)} lrs but the model has "
            f"{len(optimizers)} optimizers"
        )
