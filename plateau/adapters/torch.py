"""A drop-in torch ``ReduceLROnPlateau`` whose every decision is made by :func:`plateau.step`.

It subclasses torch's class and takes every argument, attribute write and checkpoint
torch's takes (what it adds: docs/torch.md). It only translates: a step hands the
lrs of ``param_groups`` to :func:`plateau.adapters._shared.advance`; torch's attribute
names read and replace ``config`` and ``state``. ``base=`` lives in ``_torch_base``,
``sync_metric`` in ``_torch_dist``, the checkpoint format in ``_torch_checkpoint`` and
``restore_best`` in :mod:`plateau.adapters.restore`.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal, SupportsFloat, TypeAlias

import attrs

import plateau
from plateau import Decision, PlateauConfig, PlateauState, _checks
from plateau._checks import check_int, got, show
from plateau._core import changed
from plateau.adapters import _shared
from plateau.adapters._shared import warn

try:
    import torch
    from torch.optim.lr_scheduler import LRScheduler
    from torch.optim.lr_scheduler import ReduceLROnPlateau as _TorchReduceLROnPlateau
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ModuleNotFoundError(
        "plateau.adapters.torch requires torch; install 'plateau-lr[torch]'", name="torch"
    ) from exc

from plateau.adapters import _torch_checkpoint, _torch_dist
from plateau.adapters._torch_base import Base, read_lrs, write
from plateau.adapters._torch_dist import mean_over_ranks
from plateau.adapters.restore import BestCopy, RestoreBest, best_copy_for

__all__ = ["ReduceLROnPlateau", "mean_over_ranks"]

# What ``base=`` takes: a torch schedule on the same optimizer, or LambdaLR's lr_lambda.
BaseLike: TypeAlias = LRScheduler | Callable[[int], float] | Sequence[Callable[[int], float]]


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

    Torch's attribute names (``factor``, ``best``, ``min_lrs``, ...) read and replace
    :attr:`config` and :attr:`state`; a bad argument is a TypeError or ValueError naming it.

    Args:
        optimizer: The ``torch.optim.Optimizer`` whose param groups' lrs are scheduled,
            or a wrapper of one that forwards ``param_groups`` (accelerate's).
        mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps: torch's.
            Every other :class:`plateau.PlateauConfig` field is a keyword too.
        config: A whole :class:`plateau.PlateauConfig` instead of the settings.
        last_epoch: The last epoch done (-1: a new run), as torch's other schedulers take.
        verbose: True prints a line per cut as Keras does; a ``logging.Logger`` logs it.
        on_repeat: A ``step()`` with no optimizer step since the last one (accelerate's
            prepared scheduler): "warn" (steps, as torch), "skip" or "allow".
        sync_metric: Average the metric over all ranks first (:func:`mean_over_ranks`);
            every rank must step alike, or every one raises (docs/torch.md).
        sync_timeout: Seconds a synced step waits for the other ranks before raising.
        restore_best: Keep the best step's parameters and optimizer state and put them
            back on each cut (:class:`plateau.adapters.restore.BestCopy`): True on
            their devices, "cpu" in host memory. :attr:`restored` says a step did.
        base: A schedule the plateau scales: a torch ``LRScheduler`` on
            `optimizer`, or an ``lr_lambda`` (or one per group) for a ``LambdaLR``.
            ``step()`` advances it, ``step(metric)`` applies the plateau rule.
        base_with_metric: Each ``step(metric)`` also advances the base (not ``step()``).
        capturable: True: the lrs are tensors and a step reads nothing back to the host,
            for ``torch.compile(fullgraph=True)`` and CUDA graphs (docs/torch.md,
            "capturable"); ``state_dtype`` is its state's, torch.float64 or float32.

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

    def __new__(cls, *args: Any, capturable: object = False, **kwargs: Any) -> ReduceLROnPlateau:
        """``capturable=True`` builds the capturable class (plateau.adapters._torch_capturable)."""
        if capturable is True and cls is ReduceLROnPlateau:
            from plateau.adapters._torch_capturable import CapturableReduceLROnPlateau

            cls = CapturableReduceLROnPlateau
        return super().__new__(cls)  # type: ignore[no-any-return,unused-ignore]

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
        sync_timeout: float = 300.0,
        restore_best: RestoreBest = False,
        base: BaseLike | None = None,
        base_with_metric: bool = False,
        capturable: bool = False,
        state_dtype: torch.dtype | None = None,
        **settings: Any,
    ) -> None:
        if capturable is not False or state_dtype is not None:  # not dispatched by __new__
            from plateau.adapters._torch_capturable import refuse

            refuse(type(self), capturable, state_dtype)
        if not isinstance(optimizer, torch.optim.Optimizer):
            # The type alone: the repr of a model passed by mistake runs to pages.
            raise TypeError(
                f"'optimizer' must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        _checks.check_bool("sync_metric", sync_metric)
        if not (_checks.check_non_negative("sync_timeout", sync_timeout) > 0):
            raise ValueError(f"'sync_timeout' must be > 0 seconds, got {sync_timeout!r}")
        self.best_copy: BestCopy | None = best_copy_for(optimizer, restore_best)
        _checks.check_choice("on_repeat", on_repeat, ("warn", "skip", "allow"))
        if _checks.check_bool("base_with_metric", base_with_metric) and base is None:
            raise ValueError("'base_with_metric' is True but there is no 'base' to advance")
        start = check_int("last_epoch", last_epoch, minimum=-1) + 1
        if not isinstance(verbose, (bool, logging.Logger)):
            raise TypeError(f"'verbose' must be a bool or a logging.Logger, got {got(verbose)}")
        settings.update(mode=mode, factor=factor, patience=patience, threshold=threshold)
        settings.update(threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr, eps=eps)
        config = _shared.make_config(settings, config)
        groups = optimizer.param_groups
        read_lrs(groups, check=True)
        self._base: Base | None = None
        if base is None:  # a warmup writes each group's first lr
            state = _shared.begin(config, partial(read_lrs, groups), partial(write, groups))
        else:
            config.min_lrs(len(groups))  # before a LambdaLR is built and writes the groups
            self._base = Base(optimizer, base, base_with_metric)
            state = plateau.init(self._base.reference, config)  # the plateau's own lrs
        self.state = attrs.evolve(state, last_epoch=start) if start else state
        self._config = config
        self._min_lrs = list(config.min_lrs(len(groups)))
        self._looked_at = self._min_lrs[:]  # torch's list as the config last took it
        self.verbose, self.on_repeat, self.sync_metric = verbose, on_repeat, sync_metric
        self.sync_timeout = float(sync_timeout)
        self._lock = threading.Lock()  # a step, and a load, is atomic across threads
        self._planned: list[tuple[int, float]] | None = None  # the cut _reduce_lr writes
        self._optimizer_steps = 0
        self._stepped_at = -1  # _optimizer_steps at the last step()
        self.optimizer = optimizer
        if self._base is not None:
            self._base.write(groups, self.state, advance=False)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimizer; assigning another re-points the repeat guard and the base to it."""
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self._optimizer = optimizer
        if self._base is not None:
            self._base.schedule.optimizer = optimizer
        if self.best_copy is not None:
            self.best_copy.optimizer = optimizer
        self._watch()

    def _watch(self) -> None:
        """Count the optimizer's steps to tell a repeated step(), by a hook holding us weakly.

        A wrapper that never ran ``Optimizer.__init__`` (accelerate's) has no hooks: the
        optimizer it wraps gets ours; with none at all the guard is off. A pickled or
        copied optimizer drops its hooks: ``__setstate__`` adds ours again.
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
        return {k: v for k, v in self.__dict__.items() if k not in ("_unwatch", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._watch()

    @property
    def config(self) -> PlateauConfig:
        """The :class:`plateau.PlateauConfig`, with :attr:`min_lrs`'s in-place edits.

        Assigning one checks it against this run: another ``mode`` (``best`` would be
        meaningless) or a per-group ``min_lr`` that does not fit the param groups is a
        ValueError, and changes nothing.
        """
        config, floors = self._config, self._min_lrs
        if floors == self._looked_at:  # untouched since the last look (most steps)
            return config
        if isinstance(config.min_lr, tuple):
            edited = floors != list(config.min_lr)
        else:  # a list of the scalar min_lr, of any length, is the scalar: as torch
            edited = floors.count(config.min_lr) != len(floors)
        if edited:
            self._config = config = attrs.evolve(config, min_lr=tuple(floors))
        self._looked_at = list(floors)
        return config

    @config.setter
    def config(self, config: PlateauConfig) -> None:
        if not isinstance(config, PlateauConfig):  # attrs.evolve(scheduler.config, ...) is one
            raise TypeError(f"'config' must be a plateau.PlateauConfig, got {got(config)}")
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
        new = attrs.evolve(self.config, min_lr=tuple(value))  # checked now: no stale list
        if set(new.min_lrs(len(value))) != {self.default_min_lr}:
            new.min_lrs(len(self._optimizer.param_groups))
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
        """The stop signal: :attr:`plateau.PlateauState.exhausted` of the last step."""
        return self.state.exhausted

    @property
    def restored(self) -> bool:
        """Whether the last step put the best step's weights back (``restore_best``)."""
        copy = self.best_copy
        return copy is not None and copy.restored_at == self.state.last_epoch

    @property
    def base(self) -> LRScheduler | None:
        """The base schedule (the ``LambdaLR`` built for an ``lr_lambda``), or None."""
        return None if self._base is None else self._base.schedule

    def __repr__(self) -> str:
        base = "" if self._base is None else f", base={type(self._base.schedule).__name__}"
        optimizer = type(self._optimizer).__name__
        return f"{type(self).__name__}({optimizer}, {self.config!r}, {self.state!r}{base})"

    def step(  # type: ignore[override,unused-ignore]
        self, metrics: SupportsFloat | None = None, epoch: int | None = None
    ) -> None:
        """One epoch: read the groups' lrs, :func:`plateau.step`, write the changed ones.

        `metrics` is a float, an int or a one-element tensor; without it a base steps.
        `epoch` is deprecated, as in torch: with a warning, it sets ``state.last_epoch``.
        What the core or a base refuses is a TypeError or ValueError that changes nothing.
        A step is atomic: two threads stepping one scheduler take turns.
        """
        with self._lock:
            self._step(metrics, epoch)

    def _step(self, metrics: SupportsFloat | None, epoch: int | None) -> None:
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
            repeat = bool(seen == self._stepped_at and seen) and self._skips_repeat()
            if self.sync_metric:  # every rank gathers, and decides a skip alike
                epoch_now = state.last_epoch + 1
                metrics, repeat = _torch_dist.agree(metrics, epoch_now, repeat, self.sync_timeout)
            if repeat:
                return
            if epoch is not None:
                warn("The epoch argument of ReduceLROnPlateau.step() is deprecated (as in torch)")
                check_int("last_epoch", epoch)
            if base is None:  # a cut goes through torch's _reduce_lr (see _cut)
                try:
                    read, write, cut = self._read, self._write, self._cut
                    state = _shared.advance(state, metrics, self.config, read, write, cut=cut)
                except ValueError:
                    read_lrs(groups, check=True)  # an unusable lr set by hand: named by its group
                    raise
            else:
                state = plateau.step(state, metrics, self.config)[0]
            if epoch is not None:
                state = attrs.evolve(state, last_epoch=epoch)
            if self.verbose and state.decision is Decision.REDUCED:
                self._report(state)
        if base is not None:
            base.warn_if_overwritten(groups)
            base.write(groups, state, advance=metrics is None or base.with_metric)
        before, self.state, self._stepped_at = self.state, state, seen
        if self.best_copy is not None:
            self.best_copy.on_step(before, state)

    def _read(self) -> tuple[float, ...]:
        groups = self._optimizer.param_groups
        if len(groups) == 1 and type(lr := groups[0].get("lr")) is float:
            return (lr,)  # the common case, at every step
        return read_lrs(groups)

    def _write(self, index: int, lr: float) -> float:
        return write(self._optimizer.param_groups, index, lr)

    def _cut(self, changes: list[tuple[int, float]]) -> None:
        """A cut, through torch's hook (where torch refreshes a scalar ``min_lrs``)."""
        groups, floor = len(self._optimizer.param_groups), self._config.min_lr
        if not isinstance(floor, tuple) and len(self._min_lrs) != groups:  # a group joined
            self._min_lrs[:] = [floor] * groups
        self._planned = changes
        try:
            self._reduce_lr(self.state.last_epoch + 1)  # the epoch being stepped
        finally:
            self._planned = None

    def _reduce_lr(self, epoch: int) -> None:
        """Torch's hook for the cut, which an override (ignite's) replaces: the cut planned."""
        if self._planned is None:
            raise RuntimeError("_reduce_lr() writes the cut step() decided; call step(metric)")
        for i, lr in self._planned:
            write(self._optimizer.param_groups, i, lr)

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
        """For ``verbose``, a line per lr the cut changed, as Keras's callback prints it."""
        say = self.verbose.info if isinstance(self.verbose, logging.Logger) else print
        for i, lr in changed(self.state.lrs, state.lrs):
            lr_of = f"learning rate of group {i}" if len(state.lrs) > 1 else "learning rate"
            say(f"Epoch {state.last_epoch}: ReduceLROnPlateau reducing {lr_of} to {lr}.")

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """Each group's lr after the last step, a tensor group's as a new tensor (as torch)."""
        lrs = self.state.lrs if self._base is None else self._base.written
        last: list[float | torch.Tensor] = [*lrs]
        for i, group in enumerate(self._optimizer.param_groups[: len(lrs)]):
            if isinstance(held := group["lr"], torch.Tensor):
                last[i] = held.detach().new_full(held.shape, lrs[i])
        return last

    def state_dict(self) -> dict[str, Any]:
        """Torch's every key, plus ``plateau``: both classes resume from it, under DCP too.

        The keys are the same in every state (torch.distributed.checkpoint loads into a
        fresh scheduler's): ``plateau`` is the config and state as one strict-JSON str;
        ``base`` the base's entry with a base; ``best_copy`` the best copy under
        ``restore_best`` (tensors beside a JSON ``meta``). See docs/torch.md.
        """
        config, state, base = self.config, self.state, self._base
        written = state.lrs if base is None else base.written
        saved = _torch_checkpoint.torch_keys(config, state, written)
        if base is not None:
            saved["base"] = base.state_dict()
        if self.best_copy is not None:
            saved["best_copy"] = _torch_checkpoint.save_copy(self.best_copy)
        return saved

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`'s output, or torch's ReduceLROnPlateau's.

        The constructor's config wins (docs/torch.md). Torch's progress keys win over
        ``plateau`` where they differ (torch's class loaded it and stepped since, or DCP
        kept a fresh template's ``plateau`` for torch's checkpoint), with the optimizer's
        lrs. With a
        base, the groups get the lrs the saved scheduler wrote. A ``best_copy`` needs
        ``restore_best``; without one in the checkpoint, no copy is kept yet. A bad
        checkpoint is a TypeError or ValueError naming the key, and changes nothing.
        """
        with self._lock:
            self._load(state_dict)

    def _load(self, state_dict: Mapping[str, Any]) -> None:
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"'state_dict' must be a dict, got {got(state_dict)}")
        groups, base, keys = self._optimizer.param_groups, self._base, set(state_dict)
        if (base is None) is ("base" in keys):
            how = "with" if base is None else "without"
            raise ValueError(
                f"'state_dict' was saved {how} a base schedule: build this scheduler {how} "
                "base= to resume it (its lrs mean another thing)"
            )
        copy = self.best_copy
        if copy is None and "best_copy" in keys:
            raise ValueError(
                "'state_dict' holds a best copy (saved with restore_best): build this "
                "scheduler with restore_best=True or 'cpu' to resume it, or drop the key"
            )
        lrs = partial(read_lrs, groups)
        saved_mode, state, _ = _torch_checkpoint.resume_point(state_dict, lrs, base is not None)
        config = self.config
        _check_mode("the checkpoint was saved with", saved_mode, config.mode, state.best)
        _shared.check_count(state, len(groups), "the optimizer", "param groups")
        config.min_lrs(len(state.lrs))
        if copy is not None:  # a new copy: a refused load leaves the old one
            copy = _torch_checkpoint.load_copy(state_dict.get("best_copy"), copy)
        if base is not None:
            base.load(state_dict["base"], state)  # everything is checked: it changes nothing
        self.state, self.best_copy = state, copy
        if base is not None:
            base.write(groups, state, advance=False)


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


_shared.publish_settings(ReduceLROnPlateau.__init__)
# inspect.signature() of a class with a __new__ reads __new__'s: show __init__'s.
ReduceLROnPlateau.__new__.__signature__ = inspect.signature(ReduceLROnPlateau.__init__)  # type: ignore[attr-defined]
