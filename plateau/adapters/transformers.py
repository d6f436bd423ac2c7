"""A transformers ``TrainerCallback`` that steps the plateau on each evaluation.

:class:`PlateauCallback` judges ``metrics[metric]`` (``"eval_loss"`` by default)
after every evaluation of a ``Trainer.train()``, sets
``control.should_training_stop`` when the schedule is exhausted if asked, restores
the best step's weights and optimizer state on a cut if asked, and adds
:func:`plateau._log.log_dict` to the evaluation's metrics.

The Trainer has its own lr schedule (``lr_scheduler_type``, linear decay by
default), which sets every param group's lr after each optimizer step. The
plateau scales it, as under any base schedule (``plateau.scale_base``): the
state's lrs are the plateau's own at the schedule's reference, each group's
``initial_lr``, and after each optimizer step and each evaluation every group
gets the schedule's lr times ``state lr / initial_lr``. With
``lr_scheduler_type="constant"`` the lrs are the plateau's, exactly; with any
other type, the plateau cuts the schedule's curve. The Trainer's own
``"reduce_lr_on_plateau"`` type is refused: it would be a second plateau.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

import plateau
from plateau import PlateauConfig, PlateauState
from plateau.adapters._shared import publish_settings, warn
from plateau.adapters._trainer import HoldsSchedule, Schedule
from plateau.adapters.restore import RestoreBest
from plateau.adapters.torch import write_lr

try:
    import torch
    import transformers  # type: ignore[import-not-found,unused-ignore]
    from transformers.trainer_callback import (  # type: ignore[import-not-found,unused-ignore]
        ExportableState,
    )
except ImportError as exc:  # pragma: no cover - exercised only without transformers
    raise ModuleNotFoundError(
        "plateau.adapters.transformers requires transformers and torch", name="transformers"
    ) from exc

__all__ = ["PlateauCallback"]


class PlateauCallback(HoldsSchedule, transformers.TrainerCallback, ExportableState):  # type: ignore[misc,unused-ignore]
    """Reduce a Trainer's lrs on a plateau of an evaluation metric, at each evaluation.

    Args:
        metric: The key of the evaluation metrics to judge ("eval_loss"; a
            ``compute_metrics`` key gets the ``eval_`` prefix, as the Trainer writes it).
        stop_when_exhausted: Set ``control.should_training_stop`` on a step that found
            nothing left to cut (``exhausted``: every lr at min_lr, or max_reductions made).
        restore_best: True (copies on the parameters' devices) or "cpu": on each cut,
            put back the parameters and optimizer state of the best evaluation. The
            copy lives in memory only: a resumed run keeps one at its next best.
        log_prefix: Put before the keys added to each evaluation's metrics.
        config: A whole :class:`plateau.PlateauConfig`, instead of the settings.
        **settings: Each :class:`plateau.PlateauConfig` field by name (mode, factor,
            patience, threshold, cooldown, min_lr, eps, warmup_epochs, ...).

    Attributes:
        plateau_state: The :class:`plateau.PlateauState` after the last step (None
            before training); ``state()`` is the Trainer's name for what it saves.
        config, best_copies: The config, and the best copy under restore_best.

    A run resumed with ``resume_from_checkpoint`` resumes the schedule when
    ``TrainingArguments(restore_callback_states_from_checkpoint=True)``: the Trainer
    then replaces this callback by one rebuilt from the checkpoint.

    Raises:
        TypeError, ValueError: a bad setting or option, named.

    Example:
        >>> callback = PlateauCallback(patience=2, factor=0.5)
        >>> callback.metric, callback.config.patience
        ('eval_loss', 2)
    """

    @publish_settings
    def __init__(
        self,
        metric: str = "eval_loss",
        *,
        stop_when_exhausted: bool = False,
        restore_best: RestoreBest = False,
        log_prefix: str = "plateau/",
        config: PlateauConfig | None = None,
        **settings: Any,
    ) -> None:
        if not isinstance(metric, str):
            raise TypeError(f"'metric' must be a str, got {type(metric).__name__}")
        self._schedule = Schedule(settings, config, stop_when_exhausted, restore_best, log_prefix)
        self.metric = metric
        self._reference: tuple[float, ...] = ()
        self._training = False

    @property
    def plateau_state(self) -> PlateauState | None:
        """The :class:`plateau.PlateauState` after the last step; None before training."""
        return self._schedule.state

    def on_train_begin(
        self,
        args: transformers.TrainingArguments,
        state: transformers.TrainerState,
        control: transformers.TrainerControl,
        optimizer: torch.optim.Optimizer | None = None,
        lr_scheduler: Any = None,
        **kwargs: Any,
    ) -> None:
        """Start at the groups' ``initial_lr`` (or the checkpoint's state), under the schedule.

        Raises:
            ValueError: the Trainer's own plateau schedule, or a state that does not fit.
        """
        assert optimizer is not None  # the Trainer passes its own
        if isinstance(lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            raise ValueError(
                "lr_scheduler_type='reduce_lr_on_plateau' is a second plateau schedule: use "
                "another type ('constant' gives the plateau's lrs exactly)"
            )
        if self.plateau_state is None and state.global_step > 0:
            warn(
                f"the run resumes at step {state.global_step} but the plateau starts afresh: "
                "pass TrainingArguments(restore_callback_states_from_checkpoint=True)"
            )
        groups = optimizer.param_groups
        self._reference = tuple(float(g.get("initial_lr", g["lr"])) for g in groups)
        self._schedule.start([optimizer], self._reference)
        self._training = True
        self._write(optimizer, lr_scheduler)

    def on_step_end(
        self,
        *_: Any,  # args, state, control: unused
        optimizer: torch.optim.Optimizer | None = None,
        lr_scheduler: Any = None,
        **__: Any,
    ) -> None:
        """Scale the lrs the Trainer's schedule has just set for the next step."""
        self._write(optimizer, lr_scheduler)

    def on_evaluate(
        self,
        args: transformers.TrainingArguments,
        state: transformers.TrainerState,
        control: transformers.TrainerControl,
        metrics: dict[str, Any] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        lr_scheduler: Any = None,
        **kwargs: Any,
    ) -> None:
        """One plateau step on ``metrics[metric]``; an evaluation outside training is not one.

        The numbers of :func:`plateau._log.log_dict` join `metrics` and the evaluation's
        entry in ``state.log_history`` (what ``trainer_state.json`` keeps). The Trainer
        has already handed the metrics to its reporting integrations by then.

        Raises:
            ValueError: `metric` is not among the metrics; what :func:`plateau.step` refuses.
        """
        before = self.plateau_state
        if not self._training or before is None or metrics is None:
            return
        if self.metric not in metrics:
            raise ValueError(
                f"'metric' = {self.metric!r} is not among the evaluation metrics: {sorted(metrics)}"
            )
        after, _ = plateau.step(before, metrics[self.metric], self.config)
        if self._schedule.stepped(before, after):
            control.should_training_stop = True
        self._write(optimizer, lr_scheduler)
        logged = self._schedule.logged()
        metrics.update(logged)
        if state.log_history and self.metric in state.log_history[-1]:
            state.log_history[-1].update(logged)

    def on_train_end(self, *_: Any, **__: Any) -> None:
        """Later evaluations (``trainer.evaluate()``) do not step."""
        self._training = False

    def _write(self, optimizer: torch.optim.Optimizer | None, lr_scheduler: Any) -> None:
        """Each group's lr: the schedule's last, scaled by the plateau (the state's, alone)."""
        state = self.plateau_state
        if optimizer is None or state is None or not self._training:
            return
        lrs = state.lrs
        if lr_scheduler is not None:
            lrs = plateau.scale_base(state, lr_scheduler.get_last_lr(), self._reference)
        for i, lr in enumerate(lrs):
            write_lr(optimizer.param_groups, i, lr)

    def state(self) -> dict[str, Any]:
        """What the Trainer saves in ``trainer_state.json``: the settings and the schedule.

        Strict JSON: the best copy (tensors) is not saved.
        """
        saved = self._schedule.state_dict()
        saved.pop("best_copies", None)
        settings = {
            field.name: getattr(self.config, field.name)
            for field in attrs.fields(PlateauConfig)
            if field.init
        }
        return {
            "args": {
                "metric": self.metric,
                "stop_when_exhausted": self._schedule.stop_when_exhausted,
                "restore_best": self._schedule.restore_best,
                "log_prefix": self._schedule.log_prefix,
                **settings,
            },
            "attributes": {"saved": saved},
        }

    @property
    def saved(self) -> Mapping[str, Any]:
        """The schedule's saved form; setting it (the Trainer does, on resume) loads it."""
        return self._schedule.state_dict()

    @saved.setter
    def saved(self, value: Mapping[str, Any]) -> None:
        self._schedule.load_state_dict(value)
