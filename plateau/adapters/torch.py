"""A drop-in torch ``ReduceLROnPlateau`` whose every decision is made by :func:`plateau.step`.

Change one import line, ``from plateau.adapters.torch import ReduceLROnPlateau``,
and keep the training loop: it subclasses torch's class, so trainers that test
``isinstance`` pass it the metric, and it takes every argument, attribute write and
checkpoint torch's takes. What it adds is in docs/torch.md.

It only translates. The lrs are the optimizer's (the core's ownership rule): a
step reads ``param_groups`` and hands them to :func:`plateau.adapters._shared.advance`,
which steps the core and writes back the ones that changed (a cut through torch's
``_reduce_lr`` hook, which ignite overrides). torch's attribute names read and
replace :attr:`~ReduceLROnPlateau.config` and :attr:`~ReduceLROnPlateau.state`, the
only schedule data. ``base=`` lives in one object, :class:`_Base`.
"""

from __future__ import annotations

import inspect
import logging
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, SupportsFloat, TypeAlias

import attrs

import plateau
from plateau import Decision, PlateauConfig, PlateauState
from plateau._checks import (
    check_bool,
    check_choice,
    check_int,
    check_non_negative,
    got,
    show,
    show_keys,
    to_metric,
)
from plateau._core import changed
from plateau.adapters._shared import (
    advance,
    check_count,
    config_parameters,
    load_saved,
    make_config,
    saved,
    warn,
)

try:
    import torch
    import torch.distributed as dist
    from torch.optim.lr_scheduler import LambdaLR, LRScheduler
    from torch.optim.lr_scheduler import ReduceLROnPlateau as _TorchReduceLROnPlateau
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ModuleNotFoundError(
        "plateau.adapters.torch requires torch; install 'plateau-lr[torch]'", name="torch"
    ) from exc

__all__ = ["ReduceLROnPlateau", "mean_over_ranks"]

# What ``base=`` takes: a torch schedule on the same optimizer, or LambdaLR's lr_lambda.
BaseLike: TypeAlias = LRScheduler | Callable[[int], float] | Sequence[Callable[[int], float]]
Groups: TypeAlias = list[dict[str, Any]]

# The progress every torch (2.6-2.13) ReduceLROnPlateau.state_dict() holds, and the
# config it holds under its own names (min_lrs and default_min_lr aside).
_PROGRESS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")
_TORCH_CONFIG = ("factor", "patience", "cooldown", "eps", "mode", "threshold", "threshold_mode")
_REPEATS = ("warn", "skip", "allow")


class _Field:
    """Torch's name for a config or state field: read from it, written as a validated copy."""

    def __init__(self, source: Literal["config", "state"]) -> None:
        self.source = source

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        return self if obj is None else getattr(getattr(obj, self.source), self.name)

    def __set__(self, obj: ReduceLROnPlateau, value: object) -> None:
        new = attrs.evolve(getattr(obj, self.source), **{self.name: value})
        if self.name == "mode":
            _check_mode("'mode' was assigned", value, obj.config.mode, obj.state.best)
        setattr(obj, self.source, new)


class ReduceLROnPlateau(_TorchReduceLROnPlateau):  # type: ignore[misc,unused-ignore]
    """Torch's ReduceLROnPlateau: same arguments, same lrs, decided by :func:`plateau.step`.

    Not torch's ``__init__`` (its copy of the config would go stale): torch's attribute
    names (``factor``, ``best``, ``min_lrs``, ...) read and replace :attr:`config` and
    :attr:`state`, as docs/torch.md lists.

    Args:
        optimizer: The ``torch.optim.Optimizer`` whose param groups' lrs are scheduled,
            or a wrapper of one that forwards ``param_groups`` (accelerate's).
        mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps:
            torch's (``min_lr``: a scalar, which extends to groups added later, or one
            per group). These and every other :class:`plateau.PlateauConfig` field
            (``max_reductions``, ``ema_decay``, ``warmup_epochs``, ...) are keywords.
        config: A whole :class:`plateau.PlateauConfig` instead of the settings.
        last_epoch: The last epoch done (-1: a new run), as torch's other schedulers take.
        verbose: True prints a line for each cut, as Keras's callback does; a
            ``logging.Logger`` logs it at INFO.
        on_repeat: A ``step()`` with no optimizer step since the last one (accelerate's
            prepared scheduler): "warn" (steps, as torch), "skip" or "allow".
        sync_metric: Average the metric over all ranks first (:func:`mean_over_ranks`).
        base: A base schedule the plateau scales: a torch ``LRScheduler`` on `optimizer`,
            or an ``lr_lambda`` (one, or one per group) for a ``LambdaLR``. ``step()``
            advances it, ``step(metric)`` applies the plateau rule; each group's lr is
            :func:`plateau.scale_base` of the base's at the reference ``initial_lr``.
        base_with_metric: Each ``step(metric)`` also advances the base (not ``step()``).

    Raises:
        TypeError: an argument of the wrong type, or a param group's lr not a real number.
        ValueError: a bad value, a ``min_lr`` that does not fit the groups, or a `base`
            on another optimizer or with lr_lambdas for another group count.

    Example:
        >>> import torch
        >>> params = [torch.zeros(1, requires_grad=True)]
        >>> scheduler = ReduceLROnPlateau(torch.optim.SGD(params, lr=1.0), patience=1)
        >>> for val_loss in [0.5, 0.6, 0.7, 0.4]:
        ...     scheduler.step(torch.tensor(val_loss))
        ...     print(scheduler.state.decision.value, scheduler.get_last_lr())
        improved [1.0]
        no_improvement [1.0]
        reduced [0.1]
        improved [0.1]
        >>> scheduler.patience = 3  # a validated copy of the config
        >>> scheduler.config.patience
        3
    """

    mode = _Field("config")
    factor = _Field("config")
    patience = _Field("config")
    threshold = _Field("config")
    threshold_mode = _Field("config")
    cooldown = _Field("config")
    eps = _Field("config")
    best = _Field("state")
    num_bad_epochs = _Field("state")
    cooldown_counter = _Field("state")
    last_epoch = _Field("state")

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        mode: Literal["min", "max"] = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs", "rel_abs"] = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
        *,
        config: PlateauConfig | None = None,
        last_epoch: int = -1,
        verbose: bool | logging.Logger = False,
        on_repeat: Literal["warn", "skip", "allow"] = "warn",
        sync_metric: bool = False,
        base: BaseLike | None = None,
        base_with_metric: bool = False,
        **settings: Any,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            # The type alone: the repr of a model passed by mistake runs to pages.
            raise TypeError(
                f"'optimizer' must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        check_bool("sync_metric", sync_metric)
        check_choice("on_repeat", on_repeat, _REPEATS)
        check_bool("base_with_metric", base_with_metric)
        if base_with_metric and base is None:
            raise ValueError("'base_with_metric' is True but there is no 'base' to advance")
        start = check_int("last_epoch", last_epoch, minimum=-1) + 1
        if not isinstance(verbose, (bool, logging.Logger)):
            raise TypeError(f"'verbose' must be a bool or a logging.Logger, got {got(verbose)}")
        settings.update(mode=mode, factor=factor, patience=patience, threshold=threshold)
        settings.update(threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr, eps=eps)
        config = make_config(settings, config)
        groups = optimizer.param_groups
        read = _read_lrs(groups, check=True)
        self._base: _Base | None = None
        if base is None:
            state = plateau.init(read, config)
            if state.lrs != read:  # Warmup: each group starts at lr * warmup_start_factor.
                for i, lr in changed(read, state.lrs):
                    _write(groups, i, lr)
                state = attrs.evolve(state, lrs=_read_lrs(groups))  # as they hold it
        else:
            self._base = _Base(optimizer, base, config, base_with_metric)
            state = plateau.init(self._base.reference, config)  # the plateau's own lrs
        self.state = attrs.evolve(state, last_epoch=start) if start else state
        self._config = config
        self._min_lrs = list(config.min_lrs(len(groups)))
        self.verbose, self.on_repeat, self.sync_metric = verbose, on_repeat, sync_metric
        self._planned: list[tuple[int, float]] | None = None  # the cut _reduce_lr writes
        self._optimizer_steps = 0
        self._stepped_at = -1  # _optimizer_steps at the last step()
        self.optimizer = optimizer
        if self._base is not None:
            self._base.write(groups, self.state, advance=False)

    # --- the optimizer, and the repeat guard on it -------------------------------------

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimizer; assigning another re-points the repeat guard and the base to it."""
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self._optimizer = optimizer
        if self._base is not None:
            self._base.schedule.optimizer = optimizer
        self._watch()

    def _watch(self) -> None:
        """Count the optimizer's steps to tell a repeated step(): a hook holding us weakly.

        A wrapper that never ran ``Optimizer.__init__`` (accelerate's) has no hooks:
        the one it wraps, which its ``step()`` calls, gets ours; an optimizer without
        any leaves the guard off. An optimizer drops its hooks when pickled or copied:
        ``__setstate__`` adds ours again.
        """
        if (unwatch := self.__dict__.pop("_unwatch", None)) is not None:
            unwatch()
        watched: Any = self._optimizer
        while not hasattr(watched, "_optimizer_step_post_hooks"):
            if (watched := getattr(watched, "optimizer", None)) is None:
                return
        ref = weakref.ref(self)

        def count(optimizer: object, args: object, kwargs: object) -> None:
            if (scheduler := ref()) is not None:
                scheduler._optimizer_steps += 1

        handle = watched.register_step_post_hook(count)
        self._unwatch = weakref.finalize(self, handle.remove)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_unwatch", None)  # the hook stays with the optimizer it is on
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._watch()

    # --- torch's attributes over config and state --------------------------------------

    @property
    def config(self) -> PlateauConfig:
        """The :class:`plateau.PlateauConfig`; assigning one checks it against this run.

        In-place edits of :attr:`min_lrs` (torch's plain list) are part of it.

        Raises:
            TypeError: not a PlateauConfig.
            ValueError: another ``mode`` (``best`` would be meaningless), or a per-group
                ``min_lr`` without one value per param group. Nothing changes on error.
        """
        config, floors = self._config, self._min_lrs
        edited = (
            floors != list(config.min_lr)
            if isinstance(config.min_lr, tuple)
            else floors.count(config.min_lr) != len(floors)
        )
        if edited:
            self._config = config = attrs.evolve(config, min_lr=tuple(floors))
        return config

    @config.setter
    def config(self, config: PlateauConfig) -> None:
        if not isinstance(config, PlateauConfig):
            raise TypeError(
                f"'config' must be a plateau.PlateauConfig, got {got(config)}; "
                "build one with attrs.evolve(scheduler.config, ...)"
            )
        _check_mode("'config' has", config.mode, self.config.mode, self.state.best)
        self._min_lrs[:] = config.min_lrs(len(self._optimizer.param_groups))
        self._config = config

    @property
    def min_lrs(self) -> list[float]:
        """Torch's ``min_lrs``: each group's floor, a list whose in-place edits take effect."""
        return self._min_lrs

    @min_lrs.setter
    def min_lrs(self, value: Sequence[float]) -> None:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise TypeError(f"'min_lrs' must be a list, one lr per param group, got {got(value)}")
        new = attrs.evolve(self.config, min_lr=tuple(value))
        # Torch's default_min_lr stays for groups added later: a list of it changes nothing.
        if self.default_min_lr is None or set(new.min_lrs(len(value))) != {self.default_min_lr}:
            self.config = new
        self._min_lrs = value if isinstance(value, list) else list(value)

    @property
    def default_min_lr(self) -> float | None:
        """Torch's ``default_min_lr``: the scalar ``min_lr``, or None when it is per group."""
        min_lr = self.config.min_lr
        return None if isinstance(min_lr, tuple) else min_lr

    @default_min_lr.setter
    def default_min_lr(self, value: float | None) -> None:
        _check_unchanged("default_min_lr", value, self.default_min_lr, "min_lrs or the config")

    @property
    def mode_worse(self) -> float:
        """Torch's ``mode_worse``: the initial best, inf in min mode and -inf in max mode."""
        return math.inf if self._config.mode == "min" else -math.inf

    @mode_worse.setter
    def mode_worse(self, value: float) -> None:
        _check_unchanged("mode_worse", value, self.mode_worse, "nothing: it follows the mode")

    @property
    def in_cooldown(self) -> bool:
        """Torch's ``in_cooldown``: whether bad epochs are currently not counted."""
        return self.state.cooldown_counter > 0

    @property
    def exhausted(self) -> bool:
        """The stop signal, :attr:`plateau.PlateauState.exhausted` of the last step.

        True when that step exceeded patience with nothing left to cut: every lr at
        its floor (or each cut <= eps), or ``max_reductions`` reached. A loop can stop
        on it; in Lightning, override ``lr_scheduler_step`` (docs/semantics.md).
        """
        return self.state.exhausted

    @property
    def base(self) -> LRScheduler | None:
        """The base schedule (the ``LambdaLR`` built for an ``lr_lambda``), or None."""
        return None if self._base is None else self._base.schedule

    def __repr__(self) -> str:
        base = "" if self._base is None else f", base={type(self._base.schedule).__name__}"
        return (
            f"{type(self).__name__}({type(self._optimizer).__name__}, "
            f"config={self.config!r}, state={self.state!r}{base})"
        )

    # --- stepping ----------------------------------------------------------------------

    def step(  # type: ignore[override,unused-ignore]
        self, metrics: SupportsFloat | None = None, epoch: int | None = None
    ) -> None:
        """One epoch: read the groups' lrs, :func:`plateau.step`, write the changed ones.

        Args:
            metrics: A float, an int or a one-element tensor; omitted, a base steps.
            epoch: Deprecated, as in torch: with a warning, it only sets ``state.last_epoch``.

        Raises:
            TypeError: `metrics` or a group's lr is not a single real number.
            ValueError: what :func:`plateau.step` or a base refuses (a param group added,
                ``step()`` under ``base_with_metric=True``). Nothing changes on error.
        """
        groups, base = self._optimizer.param_groups, self._base
        if base is not None:
            base.check_step(groups, metrics is not None, epoch)
        elif metrics is None:
            raise TypeError(
                "'metric' must be a single real number, got NoneType: None: pass the "
                "metric this scheduler watches, as in scheduler.step(val_loss)"
            )
        state, seen = self.state, self._stepped_at
        if metrics is not None:
            seen = self._optimizer_steps
            if seen == self._stepped_at and seen and self._skips_repeat():
                return
            if self.sync_metric:
                metrics = mean_over_ranks(metrics)
            if epoch is not None:
                warn(
                    "The epoch argument of ReduceLROnPlateau.step() is deprecated (as in "
                    "torch); it only sets state.last_epoch"
                )
                check_int("last_epoch", epoch)
            if base is None:
                state = self._advance(groups, metrics, epoch)
            else:
                state = plateau.step(state, metrics, self.config)[0]
            if epoch is not None:
                state = attrs.evolve(state, last_epoch=epoch)
            self._report(state)
        if base is not None:
            base.warn_if_overwritten(groups)
            base.write(groups, state, advance=metrics is None or base.with_metric)
        self.state, self._stepped_at = state, seen

    def _advance(self, groups: Groups, metrics: SupportsFloat, epoch: int | None) -> PlateauState:
        """The plateau step on the groups' lrs, a cut written through :meth:`_reduce_lr`."""
        at = self.state.last_epoch + 1 if epoch is None else epoch

        def cut(changes: list[tuple[int, float]]) -> None:
            if (default := self.default_min_lr) is not None and len(self._min_lrs) != len(groups):
                self._min_lrs[:] = [default] * len(groups)  # a group joined: as torch does
            self._planned = changes
            try:
                self._reduce_lr(at)
            finally:
                self._planned = None

        try:
            return advance(
                self.state,
                metrics,
                self.config,
                lambda: _read_lrs(groups),
                lambda i, lr: _write(groups, i, lr),
                cut=cut,
            )
        except ValueError:
            _read_lrs(groups, check=True)  # an unusable lr set by hand: named by its group
            raise

    def _reduce_lr(self, epoch: int) -> None:
        """Torch's hook for the cut: an override (ignite's) replaces the write we planned.

        Raises:
            RuntimeError: called outside :meth:`step`, where no cut was decided.
        """
        if self._planned is None:
            raise RuntimeError("_reduce_lr() writes the cut step() decided; call step(metric)")
        for i, lr in self._planned:
            _write(self._optimizer.param_groups, i, lr)

    def _skips_repeat(self) -> bool:
        """``on_repeat`` for a step() with no optimizer step since the last one: True to skip."""
        if self.on_repeat == "warn":
            warn(
                "ReduceLROnPlateau.step() was called again with no optimizer step since its "
                "last call; it counts as another epoch, as in torch. A prepared accelerate "
                "scheduler steps once per process: see docs/compatibility.md. Pass "
                "on_repeat='skip' to ignore such calls, or on_repeat='allow' to silence this."
            )
        return self.on_repeat == "skip"

    def _report(self, state: PlateauState) -> None:
        """With ``verbose``, a line per lr a cut changed, as Keras's callback prints it."""
        if not self.verbose or state.decision is not Decision.REDUCED:
            return
        for i, lr in changed(self.state.lrs, state.lrs):
            line = f"Epoch {state.last_epoch}: ReduceLROnPlateau reducing learning rate"
            line += f" of group {i} to {lr}." if len(state.lrs) > 1 else f" to {lr}."
            if isinstance(self.verbose, logging.Logger):
                self.verbose.info(line)
            else:
                print(line)

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """Each group's lr after the last step, a tensor group's as a new tensor (as torch)."""
        lrs = self.state.lrs if self._base is None else self._base.written
        last: list[float | torch.Tensor] = [*lrs]
        for i, group in enumerate(self._optimizer.param_groups[: len(lrs)]):
            if isinstance(held := group["lr"], torch.Tensor):
                last[i] = held.detach().new_full(held.shape, lrs[i])
        return last

    # --- checkpoints -------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``config`` and ``state``, plus torch's own keys: both classes can resume from it.

        Plain values only, so strict JSON takes it: an infinite best is left out of
        torch's keys (a new torch scheduler starts there) and is "inf" in ``state``.
        With a base, ``base`` holds its ``state_dict()``, type and reference.

        Example:
            >>> import json, torch
            >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
            >>> scheduler = ReduceLROnPlateau(opt)
            >>> saved = json.loads(json.dumps(scheduler.state_dict(), allow_nan=False))
            >>> saved["state"]["best"], saved["num_bad_epochs"], "best" in saved
            ('inf', 0, False)
            >>> torch.optim.lr_scheduler.ReduceLROnPlateau(opt).load_state_dict(saved)
        """
        config, state, base = self.config, self.state, self._base
        d: dict[str, Any] = {name: getattr(config, name) for name in _TORCH_CONFIG}
        d.update(min_lrs=list(config.min_lrs(len(state.lrs))), default_min_lr=self.default_min_lr)
        d.update({key: getattr(state, key) for key in _PROGRESS})
        d.update(_last_lr=[*(state.lrs if base is None else base.written)], **saved(config, state))
        if not math.isfinite(state.best):
            del d["best"]
        if base is not None:
            d["base"] = base.state_dict()
        return d

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`'s output, or torch's ReduceLROnPlateau's.

        The constructor's config wins (docs/torch.md). Torch's class keeps plateau's
        keys when it loads a checkpoint: its own keys differing from ``state`` say it
        stepped since, and then they win, with the optimizer's lrs. With a base, the
        groups get the lrs the saved scheduler wrote, whichever loads first.

        Raises:
            TypeError: `state_dict` is not a mapping, or a field has the wrong type.
            ValueError: neither format, a bad value, another mode, another lr count,
                a base in only one of checkpoint and scheduler. Nothing changes on error.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"'state_dict' must be a dict, got {got(state_dict)}")
        groups, base, keys = self._optimizer.param_groups, self._base, set(state_dict)
        if (base is None) is ("base" in keys):
            raise ValueError(
                "'state_dict' was saved with a base schedule: build this scheduler with "
                "base= to resume it"
                if base is None
                else "'state_dict' was saved without a base schedule, and this scheduler "
                f"has one ({type(base.schedule).__name__}); its lrs would mean another thing"
            )
        # torch's progress keys, validated before anything compares them (an array's
        # == is elementwise); their lrs are the optimizer's, read only if they win.
        theirs: PlateauState | None = None
        if keys.issuperset(("mode", *_PROGRESS)):
            try:
                theirs = PlateauState(lrs=(0.0,), **{key: state_dict[key] for key in _PROGRESS})
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"state_dict: {exc}") from None
        state: PlateauState | None = None
        if {"config", "state"} <= keys:
            saved_config, state = load_saved(state_dict, "state_dict")
            saved_mode: object = saved_config.mode
            if theirs is not None and _progress(state) != _progress(theirs):
                state = None
        elif theirs is None:
            raise ValueError(
                "'state_dict' must come from state_dict() of plateau's ReduceLROnPlateau "
                "(keys including ['config', 'state']) or of torch's (keys including "
                f"{sorted(('mode', *_PROGRESS))}), got keys {show_keys(keys)}"
            )
        if state is None:
            assert theirs is not None
            if base is not None:
                raise ValueError(
                    "'state_dict' holds a base schedule, but torch's ReduceLROnPlateau "
                    "has stepped since it was saved (its keys differ from 'state'): its "
                    "lrs are not the plateau's, so it cannot resume over a base"
                )
            saved_mode, state = state_dict["mode"], attrs.evolve(theirs, lrs=_read_lrs(groups))
        config = self.config
        _check_mode("the checkpoint was saved with", saved_mode, config.mode, state.best)
        check_count(state, len(groups), "the optimizer", "param groups")
        config.min_lrs(len(state.lrs))
        if base is not None:
            base.load(state_dict["base"], state)  # everything is checked: it changes nothing
        self.state = state
        if base is not None:
            base.write(groups, state, advance=False)


class _Base:
    """A base schedule the plateau scales: everything ``base=`` holds, and its checks.

    The plateau's own lrs are at the base's reference, each group's ``initial_lr``;
    the groups get :func:`plateau.scale_base` of the base's lrs ("Base schedules" in
    ``plateau._core``). The base steps from its own lrs, restored into the groups
    first: a chainable scheduler computes from the groups' (pytorch#82859).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        base: object,
        config: PlateauConfig,
        with_metric: bool,
    ) -> None:
        groups = optimizer.param_groups
        config.min_lrs(len(groups))  # before a LambdaLR is built and writes the groups
        name = type(base).__name__
        if isinstance(base, _TorchReduceLROnPlateau):
            raise TypeError(
                f"'base' must be a schedule the plateau scales (CosineAnnealingLR, LinearLR, "
                f"an lr_lambda, ...), got a {name}: a plateau cannot be a base; "
                "pass its arguments to this scheduler instead"
            )
        if isinstance(base, LRScheduler):
            if base.optimizer is not optimizer:
                raise ValueError(
                    f"'base' must be a scheduler on this optimizer, got a {name} built on "
                    "another one"
                )
            schedule = base
        else:
            lambdas = _lambdas(base, len(groups))
            _reference(groups)  # refused before LambdaLR writes the groups
            schedule = LambdaLR(optimizer, lambdas)
        self.schedule, self.with_metric = schedule, with_metric
        self.reference = _reference(groups)
        self.written: tuple[float, ...] = ()  # the groups' lrs after the last write
        self.steps = schedule.last_epoch  # its last_epoch after the last write

    def last(self) -> tuple[float, ...]:
        """The base's last lrs as floats (torch keeps a tensor group's as a tensor copy)."""
        return tuple(_to_lr(i, lr) for i, lr in enumerate(self.schedule.get_last_lr()))

    def check_step(self, groups: Groups, with_metric: bool, epoch: object) -> None:
        """Refuse a step: a group joined, the base stepped outside, a misplaced argument."""
        name = type(self.schedule).__name__
        if len(groups) != len(self.reference):
            raise ValueError(
                f"the optimizer has {len(groups)} param groups but the base schedule {name} "
                f"was built for {len(self.reference)}; a param group cannot join it mid-run"
            )
        if self.schedule.last_epoch != self.steps:
            raise ValueError(
                f"the base schedule {name} was stepped outside this scheduler (its "
                f"last_epoch is {self.schedule.last_epoch}, {self.steps} after the last "
                "step()): it then computes from the plateau's scaled lrs and cuts them "
                "twice. Call scheduler.step() instead of the base's step() (and do not "
                "hand the base to a trainer as a scheduler of its own)"
            )
        if with_metric:
            return
        if epoch is not None:
            raise TypeError(
                "'epoch' goes with a metric: step() with no metric advances the base "
                f"and takes no 'epoch', got epoch={got(epoch)}"
            )
        if self.with_metric:
            raise ValueError(
                "step() with no metric would advance the base a second time: with "
                "base_with_metric=True each step(metric) advances it"
            )

    def warn_if_overwritten(self, groups: Groups) -> None:
        """Warn of an lr set by hand since the last write: the next write overwrites it."""
        if (held := _read_lrs(groups)) != self.written:
            i = next(i for i, (a, b) in enumerate(zip(held, self.written, strict=True)) if a != b)
            warn(
                f"optimizer.param_groups[{i}]['lr'] was set to {held[i]!r} since the last "
                f"step(), which wrote {self.written[i]!r}: with a base schedule the scheduler "
                "writes every lr at each step, so it is overwritten (the base steps from "
                "its own lrs). To change the lrs, change the base schedule."
            )

    def write(self, groups: Groups, state: PlateauState, *, advance: bool) -> None:
        """Write ``scale_base`` of the base's lrs (stepped first if `advance`) to the groups."""
        if advance:
            try:
                for i, lr in enumerate(self.last()):
                    _write(groups, i, lr)
                self.schedule.step()
            except BaseException:
                for i, lr in enumerate(self.written):  # the groups as they were
                    _write(groups, i, lr)
                raise
        lrs = plateau.scale_base(state, self.last(), self.reference)
        self.written = tuple(_write(groups, i, lr) for i, lr in enumerate(lrs))
        self.steps = self.schedule.last_epoch

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's ``base`` entry."""
        name = type(self.schedule).__name__
        return {
            "state_dict": self.schedule.state_dict(),
            "reference": [*self.reference],
            "type": name,
        }

    def load(self, entry: object, state: PlateauState) -> None:
        """Load a checkpoint's ``base`` entry for `state`, checked before it changes anything."""
        keys = {"state_dict", "reference", "type"}
        if not isinstance(entry, Mapping) or set(entry) != keys:
            raise ValueError(
                f"state_dict['base'] must be a dict with keys {sorted(keys)}, got "
                + (f"keys {show_keys(set(entry))}" if isinstance(entry, Mapping) else got(entry))
            )
        base_state, reference, name = entry["state_dict"], entry["reference"], entry["type"]
        if not isinstance(base_state, Mapping):
            raise TypeError(
                f"state_dict['base']['state_dict'] must be a dict, got {got(base_state)}"
            )
        if name != type(self.schedule).__name__:
            raise ValueError(
                f"state_dict['base'] was saved from a {show(name)} base, but this scheduler's "
                f"base is a {type(self.schedule).__name__}: its state would not fit"
            )
        count, last = len(self.reference), base_state.get("_last_lr", self.last())
        if not isinstance(last, Sequence) or len(last) != count:
            raise ValueError(
                "state_dict['base']['state_dict']['_last_lr'] must hold one lr per param "
                f"group ({count}), got {show(last)}"
            )
        where = "state_dict['base']['reference']"
        if isinstance(reference, (str, bytes)) or not isinstance(reference, Sequence):
            raise TypeError(f"{where} must be a list, one lr per param group, got {got(reference)}")
        if len(reference) != count:
            raise ValueError(
                f"{where} holds {len(reference)} lrs but the optimizer has {count} param groups"
            )
        checked = tuple(check_non_negative(f"{where}[{i}]", r) for i, r in enumerate(reference))
        for i, r in enumerate(checked):
            if not r > 0.0:
                raise ValueError(f"{where}[{i}] must be > 0, got {r!r}")
        plateau.scale_base(state, last, checked)  # the saved _last_lr, checked
        # torch's load_state_dict pops and restores keys of the dict it is given: a copy.
        self.schedule.load_state_dict(dict(base_state))
        self.reference = checked


def mean_over_ranks(metric: SupportsFloat) -> float:
    """`metric` averaged over all ranks in float64 (an all_reduce every rank must call).

    Outside an initialized ``torch.distributed`` process group: ``float(metric)``.

    Raises:
        TypeError: `metric` is not a single real number (before the collective, so a
            bad rank fails alone instead of hanging the others).
    """
    value = to_metric(metric)
    if not (dist.is_available() and dist.is_initialized()):
        return value
    # NCCL reduces only CUDA tensors; every other backend takes CPU ones.
    on_cuda = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_cuda else None
    total = torch.tensor(value, dtype=torch.float64, device=device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return float(total.item()) / int(dist.get_world_size())


def _read_lrs(groups: Groups, *, check: bool = False) -> tuple[float, ...]:
    """Each group's lr as a float; if `check`, a float not finite and >= 0 is a ValueError."""
    return tuple(
        lr if type(lr := group.get("lr")) is float and not check else _to_lr(i, lr)
        for i, group in enumerate(groups)
    )


def _to_lr(index: int, lr: object, key: str = "lr") -> float:
    """A group's lr (a one-element tensor's value) as a float >= 0, named by its group."""
    name = f"optimizer.param_groups[{index}][{key!r}]"
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1 or lr.dtype in (torch.bool, torch.complex64, torch.complex128):
            what = f"a {lr.dtype} tensor of shape {tuple(lr.shape)}"
            raise TypeError(
                f"{name} must be a real number or a one-element real tensor, got {what}"
            )
        lr = lr.item()
    try:
        return check_non_negative(name, lr)
    except TypeError:
        raise TypeError(
            f"{name} must be a real number or a one-element real tensor, got {got(lr)}"
        ) from None


def _write(groups: Groups, index: int, lr: float) -> float:
    """Set a group's lr, a tensor in place (as torch); the float it then holds (it rounds)."""
    held = groups[index]["lr"]
    if isinstance(held, torch.Tensor):
        held.fill_(lr)
        return float(held.item())
    groups[index]["lr"] = lr
    return lr


def _reference(groups: Groups) -> tuple[float, ...]:
    """Each group's ``initial_lr``, the base's reference (before a LambdaLR sets it: its lr)."""
    reference = []
    for i, group in enumerate(groups):
        value = _to_lr(i, group.get("initial_lr", group.get("lr")), "initial_lr")
        if not value > 0.0:
            raise ValueError(
                f"optimizer.param_groups[{i}]['initial_lr'] must be > 0 under a base "
                f"schedule (the plateau scales the base by lr / initial_lr), got {value!r}"
            )
        reference.append(value)
    return tuple(reference)


def _lambdas(base: object, groups: int) -> Any:
    """`base` as LambdaLR's ``lr_lambda``: one callable, or a list of one per group."""
    if callable(base):
        return base
    listed = base if isinstance(base, Sequence) and not isinstance(base, (str, bytes)) else ()
    if not (listed and all(callable(f) for f in listed)):
        raise TypeError(
            "'base' must be a torch LRScheduler on this optimizer, an lr_lambda or a list "
            f"of them (one per param group), got {got(base)}"
        )
    if len(listed) != groups:
        raise ValueError(
            f"'base' must hold one lr_lambda per param group ({groups}), got {len(listed)}"
        )
    return list(listed)


def _progress(state: PlateauState) -> tuple[object, ...]:
    return tuple(getattr(state, key) for key in _PROGRESS)


def _check_mode(what: str, mode: object, current: str, best: float) -> None:
    """Refuse another mode than `current`: `best` would not carry over."""
    if not isinstance(mode, str):
        raise TypeError(f"{what} 'mode' not a str: {got(mode)}")
    if mode != current:
        raise ValueError(
            f"{what} mode={show(mode)} but this scheduler has mode={current!r}; its best "
            f"({best!r}) cannot carry over: build a new scheduler to change the mode"
        )


def _check_unchanged(name: str, value: object, current: object, instead: str) -> None:
    """Torch's derived attributes: a write of the current value (a restore) is accepted."""
    if not (value is current or (type(value) in (int, float) and value == current)):
        raise ValueError(
            f"'{name}' follows scheduler.config and can only be assigned its current value "
            f"{current!r}, got {show(value)}; to change the schedule, assign {instead}"
        )


def _publish_settings() -> None:
    """The constructor's signature names every PlateauConfig field (LightningCLI reads it)."""
    init: Any = ReduceLROnPlateau.__init__
    signature = inspect.signature(init)
    explicit = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    more = config_parameters(skip=[p.name for p in explicit])
    init.__signature__ = signature.replace(parameters=[*explicit, *more])


_publish_settings()
