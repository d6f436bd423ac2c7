"""A Lightning callback that steps the plateau after every validation run, on fresh values.

Lightning steps a ``ReduceLROnPlateau`` returned by ``configure_optimizers`` on the
last value logged for its monitor, once per epoch (or per ``frequency``): with
``val_check_interval=0.5`` every other decision sees a stale value (Lightning
#5943, #2316). :class:`PlateauCallback` instead steps in ``on_validation_end``,
once per validation run, on the value that run logged; writes the lrs of all the
module's optimizers (every param group); stops the fit when the schedule is
exhausted, if asked; restores the best step's weights and optimizer state on a
cut, if asked; logs :func:`plateau._log.log_dict` to the trainer's loggers; and
is saved in Lightning's checkpoints.
"""

from __future__ import annotations

from typing import Any

from plateau import PlateauConfig, PlateauState
from plateau.adapters._shared import advance, publish_settings
from plateau.adapters._trainer import (
    HoldsSchedule,
    Schedule,
)
from plateau.adapters.restore import RestoreBest
from plateau.adapters.torch import read_lrs, write_lr

try:
    import lightning.pytorch as pl
except ImportError:
    try:
        import pytorch_lightning as pl
    except ImportError as exc:  # pragma: no cover - exercised only without Lightning
        raise ModuleNotFoundError(
            "plateau.adapters.lightning requires lightning or pytorch-lightning",
            name="lightning",
        ) from exc

__all__ = ["PlateauCallback"]


class PlateauCallback(HoldsSchedule, pl.Callback):  # type: ignore[misc,unused-ignore]
    """Reduce the lrs of a Lightning fit on a plateau of `monitor`, after every validation.

    Args:
        monitor: The logged metric to judge (``self.log("val_loss", ...)`` in the module).
        stop_when_exhausted: Set ``trainer.should_stop`` on a step that found nothing
            left to cut (``state.exhausted``: every lr at min_lr, or max_reductions made).
        restore_best: True (copies on the parameters' devices) or "cpu": on each cut,
            put back every optimizer's parameters and state of the best step
            (:class:`plateau.adapters.restore.BestCopy`); the cut lrs then apply.
        log_prefix: Put before the keys logged to the trainer's loggers.
        config: A whole :class:`plateau.PlateauConfig`, instead of the settings.
        **settings: Each :class:`plateau.PlateauConfig` field by name (mode, factor,
            patience, threshold, cooldown, min_lr, eps, warmup_epochs, ...).

    Attributes:
        state, config, best_copies: The schedule (state None before the fit).

    Raises:
        TypeError, ValueError: a bad setting or option, named.

    Example:
        >>> callback = PlateauCallback("val_loss", patience=2, factor=0.5)
        >>> callback.config.patience, callback.state
        (2, None)
    """

    @publish_settings
    def __init__(
        self,
        monitor: str,
        *,
        stop_when_exhausted: bool = False,
        restore_best: RestoreBest = False,
        log_prefix: str = "plateau/",
        config: PlateauConfig | None = None,
        **settings: Any,
    ) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"'monitor' must be a str, got {type(monitor).__name__}")
        self._schedule = Schedule(settings, config, stop_when_exhausted, restore_best, log_prefix)
        self.monitor = monitor

    @property
    def state(self) -> PlateauState | None:
        """The :class:`plateau.PlateauState` after the last step; None before the fit."""
        return self._schedule.state

    @property
    def state_key(self) -> str:
        """One per monitor, so that two callbacks on two metrics save apart."""
        return str(self._generate_state_key(monitor=self.monitor))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start from the optimizers' lrs (or the checkpoint's state); write a warmup's start."""
        groups = _groups(trainer)
        held = read_lrs(groups)
        self._schedule.start(trainer.optimizers, held)
        assert self.state is not None  # started
        for i, (old, new) in enumerate(zip(held, self.state.lrs, strict=True)):
            if new != old:
                write_lr(groups, i, new)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """One plateau step on the value this validation run logged for the monitor.

        Raises:
            ValueError: the monitor was not logged; what :func:`plateau.step` refuses.
        """
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise ValueError(
                f"'monitor' = {self.monitor!r} was not logged in validation; logged: "
                f"{sorted(metrics)}"
            )
        before = self.state
        assert before is not None  # on_train_start ran
        groups = _groups(trainer)
        after = advance(
            before,
            metrics[self.monitor],
            self.config,
            lambda: read_lrs(groups),
            lambda i, lr: write_lr(groups, i, lr),
        )
        if self._schedule.stepped(before, after):
            trainer.should_stop = True
        logged = self._schedule.logged()
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        """``config`` and ``state``, strict JSON; with restore_best, ``best_copies`` too."""
        return self._schedule.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from a checkpoint's :meth:`state_dict` (the constructor's config wins).

        Raises:
            TypeError, ValueError: a bad checkpoint, named. Nothing changes on error.
        """
        self._schedule.load_state_dict(state_dict)


def _groups(trainer: pl.Trainer) -> list[dict[str, Any]]:
    """Every param group of every optimizer of the fit, in order."""
    return [group for optimizer in trainer.optimizers for group in optimizer.param_groups]
