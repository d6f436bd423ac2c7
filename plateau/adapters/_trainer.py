"""What the Lightning and transformers callbacks share: the schedule a trainer callback holds.

A callback builds a :class:`Schedule` from its settings, starts it once the
trainer's optimizers exist (a fresh state from their lrs, or the checkpoint's),
and after each step hands it the states before and after, so that the best
copies keep or restore and the callback learns whether to stop. The callbacks
differ only in where the metric comes from and how the lrs are written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plateau
from plateau import PlateauConfig, PlateauState
from plateau._log import log_dict
from plateau.adapters._shared import check_count, load_saved, make_config, saved
from plateau.adapters.restore import BestCopy, RestoreBest, best_copy_for, check_restore_best

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ModuleNotFoundError(
        "plateau's trainer callbacks require torch; install 'plateau-lr[torch]'", name="torch"
    ) from exc


class Schedule:
    """A trainer callback's plateau: config, state, stop rule and best copies.

    Args:
        settings: PlateauConfig fields by name, as the callback got them.
        config: A whole PlateauConfig instead of `settings`.
        stop_when_exhausted: Whether an exhausted step (AT_FLOOR or CAPPED) stops training.
        restore_best: False, True or "cpu": keep a :class:`BestCopy` per optimizer.
        log_prefix: Put before the keys of :meth:`logged`.

    Raises:
        TypeError, ValueError: a bad setting or option, named.
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        config: PlateauConfig | None,
        stop_when_exhausted: bool,
        restore_best: RestoreBest,
        log_prefix: str,
    ) -> None:
        if not isinstance(log_prefix, str):
            raise TypeError(f"'log_prefix' must be a str, got {type(log_prefix).__name__}")
        if not isinstance(stop_when_exhausted, bool):
            raise TypeError(
                "'stop_when_exhausted' must be a bool, got " + type(stop_when_exhausted).__name__
            )
        self.config = make_config(settings, config)
        self.stop_when_exhausted = stop_when_exhausted
        self.restore_best = check_restore_best(restore_best)
        self.log_prefix = log_prefix
        self.state: PlateauState | None = None
        self.best_copies: list[BestCopy] = []
        self._saved_copies: list[Any] = []  # loaded before the optimizers existed

    def start(self, optimizers: Sequence[torch.optim.Optimizer], lrs: tuple[float, ...]) -> None:
        """Attach to the trainer's `optimizers`, whose lrs (all groups, in order) are `lrs`.

        A fresh schedule starts from `lrs`; one loaded from a checkpoint must hold as many.

        Raises:
            ValueError: a loaded state or best copies that do not fit the optimizers.
        """
        if self.state is None:
            self.state = plateau.init(lrs, self.config)
        else:
            check_count(self.state, len(lrs), "the trainer's optimizers", "param groups")
        copies = [best_copy_for(optimizer, self.restore_best) for optimizer in optimizers]
        self.best_copies = [copy for copy in copies if copy is not None]
        if self._saved_copies and len(self._saved_copies) != len(self.best_copies):
            raise ValueError(
                f"the checkpoint holds {len(self._saved_copies)} best copies but the trainer "
                f"has {len(self.best_copies)} optimizers to restore"
            )
        for copy, saved_copy in zip(self.best_copies, self._saved_copies, strict=False):
            copy.load_state_dict(saved_copy)
        self._saved_copies = []

    def stepped(self, before: PlateauState, after: PlateauState) -> bool:
        """Record `after`, keep or restore the best copies; whether training should stop."""
        self.state = after
        for copy in self.best_copies:
            copy.on_step(before, after)
        return self.stop_when_exhausted and after.exhausted

    def logged(self) -> dict[str, float | int]:
        """:func:`plateau._log.log_dict` of the state, under the log prefix."""
        assert self.state is not None  # a step made it
        return log_dict(self.state, self.log_prefix)

    def state_dict(self) -> dict[str, Any]:
        """``config`` and ``state`` (strict JSON), and ``best_copies`` under restore_best.

        Before :meth:`start` there is nothing to save: an empty dict.
        """
        if self.state is None:
            return {}
        saved_dict = saved(self.config, self.state)
        if self.restore_best:
            saved_dict["best_copies"] = [copy.state_dict() for copy in self.best_copies]
        return saved_dict

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`'s output; the constructor's config wins.

        The best copies are checked and loaded when the optimizers exist (:meth:`start`).

        An empty dict (saved before the start) leaves the schedule fresh.

        Raises:
            TypeError, ValueError: a bad checkpoint, named. Nothing changes on error.
        """
        if isinstance(state_dict, Mapping) and not state_dict:
            return
        _, state = load_saved(state_dict, "state_dict")
        copies = state_dict.get("best_copies", [])
        if not isinstance(copies, list):
            raise TypeError(f"'best_copies' must be a list, got {type(copies).__name__}")
        self.state, self._saved_copies = state, copies


class HoldsSchedule:
    """What both callbacks show of their :class:`Schedule` (each names its state itself)."""

    _schedule: Schedule

    @property
    def config(self) -> PlateauConfig:
        """The :class:`plateau.PlateauConfig`."""
        return self._schedule.config

    @property
    def best_copies(self) -> list[BestCopy]:
        """One :class:`plateau.adapters.restore.BestCopy` per optimizer under restore_best."""
        return self._schedule.best_copies
