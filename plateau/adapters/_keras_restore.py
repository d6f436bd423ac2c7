"""Reduce and roll back in Keras: the best epoch's weights and optimizer variables, put back.

:class:`BestWeights` is what ``ReduceLROnPlateau(..., restore_best_weights=True)``
keeps: a copy of the model's weights (``model.get_weights()``, non-trainable
ones included, as ``EarlyStopping`` copies them) and of its optimizer's
variables, taken at each epoch end that sets ``best`` and put back at each one
that cuts. Two kinds of optimizer variable are left as they are: the ones that
hold the lrs (the cut's new lr applies) and the iteration counters (the run's
progress: a base schedule and the logs count on them). What it costs: one copy of
the weights and of the optimizer variables, in host memory; with ``backup_dir``,
also one ``plateau_best.<epoch>.npz`` per kept backup state that names another
best epoch (3 at most), so that a fit restarted by ``BackupAndRestore`` puts back
the same weights as the run it continues.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from plateau import Decision

__all__ = ["BestWeights"]

_FILE = re.compile(r"plateau_best\.(-?\d+)\.npz")


class BestWeights:
    """A copy of a Keras model's weights and optimizer variables, kept at the best epoch.

    Args:
        model: The compiled model.
        leave: The variables that hold its lrs (or its schedules' scales), left alone.
        directory: Where each kept copy is also written (a ``BackupAndRestore``'s
            ``backup_dir``), or None to keep it in memory only.

    Attributes:
        best_epoch: The epoch whose end the copy was taken at; None before the first.
        restored_at: The epoch whose end last put it back; None while none has.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
        >>> model.optimizer.build(model.trainable_variables)
        >>> copy = BestWeights(model, leave=[model.optimizer.learning_rate])
        >>> copy.keep(3)
        >>> model.set_weights([w + 1.0 for w in model.get_weights()])
        >>> copy.restore(5)
        >>> all((w == k).all() for w, k in zip(model.get_weights(), copy.weights))
        True
    """

    def __init__(self, model: Any, leave: Collection[Any], directory: Path | None = None) -> None:
        self.model = model
        self._leave = {id(v) for v in leave}
        self.directory = directory
        self.best_epoch: int | None = None
        self.restored_at: int | None = None
        self.weights: list[np.ndarray[Any, Any]] = []
        self.variables: list[np.ndarray[Any, Any]] = []

    def on_step(self, epoch: int, decision: Decision) -> None:
        """After the step at `epoch`'s end: keep a copy if it set best, restore if it cut."""
        if decision is Decision.IMPROVED:
            self.keep(epoch)
        elif decision is Decision.REDUCED and self.best_epoch is not None:
            self.restore(epoch)

    def keep(self, epoch: int) -> None:
        """Copy the weights and optimizer variables now, as the best of `epoch` (and write them)."""
        self.weights = [np.array(w, copy=True) for w in self.model.get_weights()]
        self.variables = [np.array(v, copy=True) for v in self._optimizer_variables()]
        self.best_epoch = epoch
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = self.directory / f"plateau_best.{epoch}.tmp"
            with open(temporary, "wb") as f:
                np.savez(f, *self.weights, *self.variables)
            os.replace(temporary, self._path(epoch))

    def restore(self, epoch: int) -> None:
        """Put the kept weights and optimizer variables back, at `epoch`'s end."""
        self.model.set_weights(self.weights)
        for variable, value in zip(self._optimizer_variables(), self.variables, strict=True):
            variable.assign(value)
        self.restored_at = epoch

    def meta(self) -> dict[str, Any]:
        """``best_epoch`` and ``restored_at``, strict JSON, for :meth:`resume`."""
        return {"best_epoch": self.best_epoch, "restored_at": self.restored_at}

    def resume(self, meta: object, epoch: int) -> None:
        """Resume from :meth:`meta`'s output and the file of its best epoch, at `epoch`'s begin.

        If the step after ``epoch - 1`` restored the copy, it is put back again: a
        ``BackupAndRestore`` listed first saved the weights from before that restore.

        Raises:
            ValueError: a bad `meta`, or a file that does not fit the model.
            OSError: no file for its best epoch.
        """
        if not (isinstance(meta, Mapping) and set(meta) == {"best_epoch", "restored_at"}):
            raise ValueError(f"'best' must hold 'best_epoch' and 'restored_at', got {meta!r}")
        best, restored = meta["best_epoch"], meta["restored_at"]
        if not all(v is None or type(v) is int for v in (best, restored)):
            raise ValueError(f"'best' must hold ints or None, got {dict(meta)!r}")
        weights: list[np.ndarray[Any, Any]] = []
        variables: list[np.ndarray[Any, Any]] = []
        if best is not None:
            if self.directory is None:
                raise ValueError("a best copy to resume needs its directory")
            shapes = [w.shape for w in self.model.get_weights()]
            shapes += [tuple(v.shape) for v in self._optimizer_variables()]
            with np.load(self._path(best)) as saved:
                arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
            if [a.shape for a in arrays] != shapes:
                raise ValueError(
                    f"{self._path(best)} holds arrays of shapes {[a.shape for a in arrays]}, "
                    f"but the model's weights and optimizer variables are {shapes}"
                )
            count = len(self.model.get_weights())
            weights, variables = arrays[:count], arrays[count:]
        self.weights, self.variables = weights, variables
        self.best_epoch, self.restored_at = best, restored
        if best is not None and restored == epoch - 1:
            self.restore(restored)

    def prune(self, used: Collection[int]) -> None:
        """Delete the files of best epochs not in `used` (no longer named by a kept state)."""
        if self.directory is None or not self.directory.exists():
            return
        for path in self.directory.iterdir():
            match = _FILE.fullmatch(path.name)
            if match is not None and int(match.group(1)) not in used:
                path.unlink(missing_ok=True)

    def _path(self, epoch: int) -> Path:
        assert self.directory is not None
        return self.directory / f"plateau_best.{epoch}.npz"

    def _optimizer_variables(self) -> list[Any]:
        """The optimizer's variables but the lrs' and the iteration counters, in order."""
        optimizer = self.model.optimizer
        found = [optimizer]
        for one in found:  # the optimizer and every one it wraps (MultiOptimizer, loss scale)
            found.extend(getattr(one, "optimizers", None) or [])
            found.extend([one.inner_optimizer] if hasattr(one, "inner_optimizer") else [])
        # Private: the public iterations is divided under gradient accumulation.
        skip = self._leave | {id(getattr(o, "_iterations", None)) for o in found}
        return [v for v in optimizer.variables if id(v) not in skip]
