"""A drop-in torch ``ReduceLROnPlateau`` whose every decision is made by :func:`plateau.step`.

It subclasses torch's class and only translates (what it adds, its checkpoint: docs/torch.md).
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal, SupportsFloat, TypeAlias

import attrs

import plateau
from plateau import Decision, PlateauConfig, PlateauState, _checks, changed
from plateau._checks import check_int, got, show, show_keys, within
from plateau.adapters import _shared
from plateau.adapters._shared import warn

try:
    import torch
    from torch.optim.lr_scheduler import LambdaLR, LRScheduler
    from torch.optim.lr_scheduler import ReduceLROnPlateau as _TorchReduceLROnPlateau
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ModuleNotFoundError(
        "plateau.adapters.torch requires torch; install 'plateau-lr[torch]'", name="torch"
    ) from exc

from plateau.adapters._torch_dist import agree, mean_over_ranks
from plateau.adapters.restore import (
    BestCopy,
    RestoreBest,
    best_copy_for,
    checkpoint_entry,
    from_checkpoint_entry,
)

__all__ = ["ReduceLROnPlateau", "mean_over_ranks"]

Groups: TypeAlias = list[dict[str, Any]]
# What torch's (2.6-2.13) state_dict() holds: progress, and config (min_lrs aside).
_PROGRESS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")
_TORCH_CONFIG = ("factor", "patience", "cooldown", "eps", "mode", "threshold", "threshold_mode")


class _Field:
    """Torch's name for a config or state field: read from it, written as a validated copy."""

    def __init__(self, source: str, name: str) -> None:
        self.source, self.name = source, name

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
        optimizer: The ``torch.optim.Optimizer`` (or a wrapper forwarding ``param_groups``).
        mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps: torch's.
            Every other :class:`plateau.PlateauConfig` field is a keyword too.
        config: A whole :class:`plateau.PlateauConfig` instead of the settings.
        last_epoch: The last epoch done (-1: a new run), as torch's other schedulers take.
        verbose: True prints a line per cut as Keras does; a ``logging.Logger`` logs it.
        on_repeat: A ``step()`` with no optimizer step since the last one (accelerate's
            prepared scheduler): "warn" (steps, as torch), "skip" or "allow".
        sync_metric, sync_timeout: Average the metric over all ranks first
            (:func:`mean_over_ranks`), waiting at most `sync_timeout` seconds.
        restore_best: Keep the best step's parameters and optimizer state and put them
            back on each cut: True on their devices, "cpu" in host memory.
        base: A schedule the plateau scales (a torch ``LRScheduler`` on `optimizer`, or
            ``LambdaLR``'s ``lr_lambda``): ``step()`` advances it, ``step(metric)`` cuts.
        base_with_metric: Each ``step(metric)`` also advances the base (not ``step()``).
        capturable: True: the lrs are tensors and a step reads nothing back to the host,
            for ``torch.compile(fullgraph=True)`` and CUDA graphs (docs/torch.md,
            "capturable"); ``state_dtype`` is its state's, torch.float64 or float32.

    Example:
        >>> import torch
        >>> params = [torch.zeros(1, requires_grad=True)]
        >>> scheduler = ReduceLROnPlateau(torch.optim.SGD(params, lr=1.0), patience=1)
        >>> for val_loss in [0.5, 0.6, 0.7]:
        ...     scheduler.step(torch.tensor(val_loss))
        ...     print(scheduler.state.decision.value, scheduler.get_last_lr())
        improved [1.0]
        no_improvement [1.0]
        reduced [0.1]
        >>> scheduler.patience = 3  # a validated copy of the config
        >>> scheduler.config.patience
        3
    """

    def __new__(cls, *args: Any, capturable: object = False, **kwargs: Any) -> ReduceLROnPlateau:
        """``capturable=True`` builds plateau.adapters._torch_capturable's scheduler."""
        if capturable is not False or kwargs.get("state_dtype") is not None:
            from plateau.adapters._torch_capturable import capturable_class

            cls = capturable_class(cls, capturable, kwargs.get("state_dtype"))
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
        base: LRScheduler | Callable[[int], float] | Sequence[Callable[[int], float]] | None = None,
        base_with_metric: bool = False,
        capturable: bool = False,
        state_dtype: torch.dtype | None = None,
        **settings: Any,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            # The type alone: the repr of a model passed by mistake runs to pages.
            raise TypeError(
                f"'optimizer' must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        self.sync_metric = _checks.check_bool("sync_metric", sync_metric)
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
        self._min_lrs = list(config.min_lrs(len(groups)))  # before a LambdaLR writes the groups
        self._base = None if base is None else _Base(optimizer, base, base_with_metric)
        if self._base is None:  # a warmup writes each group's first lr
            state = _shared.begin(config, partial(read_lrs, groups), partial(write_lr, groups))
        else:
            state = plateau.init(self._base.reference, config)  # the plateau's own lrs
            self._base.write(groups, state, advance=False)
        self.state = attrs.evolve(state, last_epoch=start) if start else state
        self._config = config
        self.verbose, self.on_repeat, self.sync_timeout = verbose, on_repeat, float(sync_timeout)
        self._lock = threading.Lock()  # a step, and a load, is atomic across threads
        self._planned: list[tuple[int, float]] | None = None  # the cut _reduce_lr writes
        self._optimizer_steps, self._stepped_at = 0, -1  # the count, and at the last step()
        self.optimizer = optimizer

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

        A wrapper without hooks (accelerate's) has the optimizer it wraps watched; with
        none the guard is off. A pickled or copied optimizer drops hooks: see __setstate__.
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

        Assigning another ``mode``, or a per-group ``min_lr`` that does not fit the param
        groups, is a ValueError that changes nothing.
        """
        config, floors = self._config, self._min_lrs
        if isinstance(config.min_lr, tuple):
            edited = floors != list(config.min_lr)
        else:  # a list of the scalar min_lr, of any length, is the scalar: as torch
            edited = floors.count(config.min_lr) != len(floors)
        if edited:
            self._config = config = attrs.evolve(config, min_lr=tuple(floors))
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
        return None if isinstance(self.config.min_lr, tuple) else self.config.min_lr

    @default_min_lr.setter
    def default_min_lr(self, value: float | None) -> None:
        _check_unchanged("default_min_lr", value, self.default_min_lr, "min_lrs or the config")

    @property
    def mode_worse(self) -> float:
        """Torch's ``mode_worse``: the initial best, inf in min mode and -inf in max mode."""
        return _shared.unset_best(self._config)

    @mode_worse.setter
    def mode_worse(self, value: float) -> None:
        _check_unchanged("mode_worse", value, self.mode_worse, "nothing: it follows the mode")

    @property
    def exhausted(self) -> bool:
        """The stop signal: :attr:`plateau.PlateauState.exhausted` of the last step."""
        return self.state.exhausted

    @property
    def restored(self) -> bool:
        """Whether the last step put the best step's weights back (``restore_best``)."""
        return self.best_copy is not None and self.best_copy.restored_at == self.state.last_epoch

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
        A refused step is a TypeError or ValueError that changes nothing; a step is atomic.
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
            repeat = bool(seen == self._stepped_at and seen)  # no optimizer step since the last
            if repeat and self.on_repeat == "warn":
                warn(
                    "ReduceLROnPlateau.step() was called again with no optimizer step since its "
                    "last call; it counts as another epoch, as in torch. A prepared accelerate "
                    "scheduler steps once per process: see docs/compatibility.md. Pass "
                    "on_repeat='skip' to ignore such calls, or on_repeat='allow' to silence this."
                )
            repeat = repeat and self.on_repeat == "skip"
            if self.sync_metric:  # every rank gathers, and decides a skip alike
                metrics, repeat = agree(metrics, state.last_epoch + 1, repeat, self.sync_timeout)
            if repeat:
                return
            if epoch is not None:
                warn("The epoch argument of ReduceLROnPlateau.step() is deprecated (as in torch)")
                check_int("last_epoch", epoch)
            if base is None:  # a cut goes through torch's _reduce_lr (see _cut)
                read, write = partial(read_lrs, groups), partial(write_lr, groups)
                try:
                    state = _shared.advance(state, metrics, self.config, read, write, cut=self._cut)
                except ValueError:
                    read_lrs(groups, check=True)  # an unusable lr set by hand: named by its group
                    raise
            else:
                state = plateau.step(state, metrics, self.config)[0]
            if epoch is not None:
                state = attrs.evolve(state, last_epoch=epoch)
            if self.verbose and state.decision is Decision.REDUCED:  # a line per cut lr, as Keras
                say = self.verbose.info if isinstance(self.verbose, logging.Logger) else print
                for i, lr in changed(self.state.lrs, state.lrs):
                    lr_of = f"learning rate of group {i}" if len(state.lrs) > 1 else "learning rate"
                    say(f"Epoch {state.last_epoch}: ReduceLROnPlateau reducing {lr_of} to {lr}.")
        if base is not None:
            base.warn_if_overwritten(groups)
            base.write(groups, state, advance=metrics is None or base.with_metric)
        before, self.state, self._stepped_at = self.state, state, seen
        if self.best_copy is not None:
            self.best_copy.on_step(before, state)

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
            write_lr(self._optimizer.param_groups, i, lr)

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """Each group's lr after the last step, a tensor group's as a new tensor (as torch)."""
        lrs = self.state.lrs if self._base is None else self._base.written
        last: list[float | torch.Tensor] = [*lrs]
        for i, group in enumerate(self._optimizer.param_groups[: len(lrs)]):
            if isinstance(held := group["lr"], torch.Tensor):
                last[i] = held.detach().new_full(held.shape, lrs[i])
        return last

    def state_dict(self) -> dict[str, Any]:
        """Torch's every key, plus ``plateau`` (and ``base``, ``best_copy``): docs/torch.md.

        Both classes resume from it; its keys are the same in every state, as DCP needs.
        """
        config, state, base = self.config, self.state, self._base
        saved: dict[str, Any] = {name: getattr(config, name) for name in _TORCH_CONFIG}
        written = state.lrs if base is None else base.written
        saved.update(min_lrs=list(config.min_lrs(len(state.lrs))), _last_lr=[*written])
        saved.update(default_min_lr=self.default_min_lr, mode_worse=self.mode_worse)
        saved.update({key: getattr(state, key) for key in _PROGRESS})
        saved["plateau"] = json.dumps(_shared.saved(config, state), allow_nan=False)
        if base is not None:
            saved["base"] = base.state_dict()
        if self.best_copy is not None:
            saved["best_copy"] = checkpoint_entry(self.best_copy)
        return saved

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`'s output, or torch's ReduceLROnPlateau's.

        The constructor's config wins (docs/torch.md). A bad checkpoint is a TypeError
        or ValueError naming the key, and changes nothing.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"'state_dict' must be a dict, got {got(state_dict)}")
        with self._lock:
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
            saved_mode, state = _resume_point(state_dict, groups, base is not None)
            _check_mode("the checkpoint was saved with", saved_mode, self.config.mode, state.best)
            _shared.check_count(state, len(groups), "the optimizer", "param groups")
            self.config.min_lrs(len(state.lrs))
            if copy is not None:  # a new copy: a refused load leaves the old one
                copy = from_checkpoint_entry(state_dict.get("best_copy"), copy)
            if base is not None:  # everything else is checked: a refused load changes nothing
                base.load(state_dict["base"], state, groups)
            self.state, self.best_copy = state, copy


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


class _Base:
    """A base schedule the plateau scales: everything ``base=`` holds, and its checks.

    The plateau's lrs are at the reference (each group's ``initial_lr``); the groups get
    :func:`plateau.scale_base` of the base's (``plateau._base``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, base: Any, with_metric: bool) -> None:
        groups, name = optimizer.param_groups, type(base).__name__
        if isinstance(base, _TorchReduceLROnPlateau):
            raise TypeError(
                f"'base' must be a schedule the plateau scales (CosineAnnealingLR, an lr_lambda, "
                f"...), got a {name}: pass its arguments to this scheduler instead"
            )
        # Each group's initial_lr (before a LambdaLR sets it: its lr), refused before one writes.
        reference = tuple(
            _to_lr(i, group.get("initial_lr", group.get("lr")), "initial_lr")
            for i, group in enumerate(groups)
        )
        if 0.0 in reference:
            raise ValueError(
                f"optimizer.param_groups[{reference.index(0.0)}]['initial_lr'] must be > 0 under "
                f"a base schedule (the plateau scales the base by lr / initial_lr), got 0.0"
            )
        if not isinstance(base, LRScheduler):  # LambdaLR's lr_lambda, or one per group
            if not callable(base):
                listed = base if isinstance(base, Sequence) else ()
                if not (listed and all(callable(f) for f in listed)):
                    raise TypeError(
                        "'base' must be a torch LRScheduler on this optimizer, an lr_lambda or "
                        f"a list of them (one per param group), got {got(base)}"
                    )
                if len(listed) != len(groups):
                    raise ValueError(
                        f"'base' must hold one lr_lambda per param group ({len(groups)}), "
                        f"got {len(listed)}"
                    )
                base = list(listed)
            base = LambdaLR(optimizer, base)
        if base.optimizer is not optimizer:
            raise ValueError(
                f"'base' must be a scheduler on this optimizer, got a {name} on another"
            )
        self.schedule: LRScheduler = base
        self.with_metric, self.reference = with_metric, reference
        self.written: tuple[float, ...] = ()  # the groups' lrs after the last write
        self.steps = self.schedule.last_epoch  # its last_epoch after the last write

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
                f"the base schedule {name} was stepped outside this scheduler (last_epoch "
                f"{self.schedule.last_epoch}, not {self.steps}): it would cut the scaled lrs "
                "twice. Step only the plateau (do not hand its base to a trainer)"
            )
        if not with_metric and epoch is not None:
            raise TypeError(
                f"'epoch' goes with a metric (step() advances the base), got {got(epoch)}"
            )
        if not with_metric and self.with_metric:
            raise ValueError(
                "step() with no metric under base_with_metric=True: step(metric) "
                "advances the base already"
            )

    def warn_if_overwritten(self, groups: Groups) -> None:
        """Warn of an lr set by hand since the last write: the next write overwrites it."""
        if (held := read_lrs(groups)) != self.written:
            i = next(i for i, (a, b) in enumerate(zip(held, self.written, strict=True)) if a != b)
            warn(
                f"optimizer.param_groups[{i}]['lr'] was set to {held[i]!r} since the last "
                f"step(), which wrote {self.written[i]!r}: with a base schedule every step "
                "writes every lr, so it is overwritten. To change the lrs, change the base."
            )

    def write(self, groups: Groups, state: PlateauState, *, advance: bool) -> None:
        """Write ``scale_base`` of the base's lrs (stepped first if `advance`) to the groups."""
        if advance:
            try:  # from its own lrs: a chainable scheduler reads the groups' (pytorch#82859)
                for i, lr in enumerate(self.last()):
                    write_lr(groups, i, lr)
                self.schedule.step()
            except BaseException:
                for i, lr in enumerate(self.written):  # the groups as they were
                    write_lr(groups, i, lr)
                raise
        lrs = plateau.scale_base(state, self.last(), self.reference)
        self.written = tuple(write_lr(groups, i, lr) for i, lr in enumerate(lrs))
        self.steps = self.schedule.last_epoch

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's ``base`` entry."""
        name, reference = type(self.schedule).__name__, [*self.reference]
        return {"state_dict": self.schedule.state_dict(), "reference": reference, "type": name}

    def load(self, entry: object, state: PlateauState, groups: Groups) -> None:
        """Load a checkpoint's ``base`` entry for `state`, checked first, and write the groups."""
        name, count = type(self.schedule).__name__, len(self.reference)
        keys = ["reference", "state_dict", "type"]
        if not isinstance(entry, Mapping) or sorted(entry) != keys:
            shown = f"keys {show_keys(entry)}" if isinstance(entry, Mapping) else got(entry)
            raise ValueError(f"state_dict['base'] must be a dict with keys {keys}, got {shown}")
        base_state, reference = entry["state_dict"], entry["reference"]
        if not isinstance(base_state, Mapping):
            raise TypeError(
                f"state_dict['base']['state_dict'] must be a dict, got {got(base_state)}"
            )
        if entry["type"] != name:
            raise ValueError(
                f"state_dict['base'] was saved from a {show(entry['type'])} base, but this "
                f"scheduler's base is a {name}: its state would not fit"
            )
        last = base_state.get("_last_lr", self.last())
        for key, lrs in (("['reference']", reference), ("['state_dict']['_last_lr']", last)):
            if isinstance(lrs, (str, bytes)) or not isinstance(lrs, Sequence) or len(lrs) != count:
                raise ValueError(
                    f"state_dict['base']{key} must hold one lr per param group ({count}), "
                    f"got {show(lrs)}"
                )
        with within("state_dict['base']"):
            plateau.scale_base(state, last, reference)  # checks each of them
        # torch's load_state_dict pops and restores keys of the dict it is given: a copy.
        self.schedule.load_state_dict(dict(base_state))
        self.reference = tuple(float(r) for r in reference)
        self.write(groups, state, advance=False)


def read_lrs(groups: Groups, *, check: bool = False) -> tuple[float, ...]:
    """Each group's lr as a float; if `check`, a float not finite and >= 0 is a ValueError."""
    return tuple(
        lr if type(lr := group.get("lr")) is float and not check else _to_lr(i, lr)
        for i, group in enumerate(groups)
    )


def _to_lr(index: int, lr: object, key: str = "lr") -> float:
    """A group's lr (a one-element tensor's value) as a float >= 0, named by its group."""
    name = f"optimizer.param_groups[{index}][{key!r}]"
    value = lr.item() if isinstance(lr, torch.Tensor) and lr.numel() == 1 else lr
    if not _checks.is_real(value):
        what = got(lr)
        if isinstance(lr, torch.Tensor):
            what = f"a {lr.dtype} tensor of shape {tuple(lr.shape)}"
        raise TypeError(f"{name} must be a real number or a one-element real tensor, got {what}")
    return _checks.check_non_negative(name, value)


def write_lr(groups: Groups, index: int, lr: float) -> float:
    """Set a group's lr, a tensor in place (as torch); the float it then holds (it rounds)."""
    held = groups[index]["lr"]
    if isinstance(held, torch.Tensor):
        held.fill_(lr)
        return float(held.item())
    groups[index]["lr"] = lr
    return lr


def _resume_point(
    saved: Mapping[str, Any], groups: Groups, has_base: bool
) -> tuple[object, PlateauState]:
    """The mode and state a checkpoint resumes from: plateau's, or torch's progress keys.

    ``plateau`` only if torch's keys agree with it: torch's class loads and steps on
    without it, DCP keeps a template's for torch's checkpoint. Else with the groups' lrs.
    """
    keys, theirs, envelope, name = set(saved), None, None, "state_dict"
    if keys.issuperset(("mode", *_PROGRESS)):
        with within("state_dict"):  # validated before anything compares them (arrays)
            theirs = PlateauState(lrs=(0.0,), **{key: saved[key] for key in _PROGRESS})
    if "plateau" in keys:
        if not isinstance(text := saved["plateau"], str):
            raise TypeError(f"state_dict['plateau'] must be a JSON str, got {got(text)}")
        try:
            envelope, name = json.loads(text), "state_dict['plateau']"
        except ValueError as exc:
            raise ValueError(f"state_dict['plateau'] is not JSON: {exc}") from None
    elif {"config", "state"} <= keys:  # an earlier plateau checkpoint
        envelope = saved
    elif theirs is None:
        wanted = f"['plateau'] or {sorted(('mode', *_PROGRESS))}"
        raise ValueError(
            f"'state_dict' must come from state_dict() of plateau's or torch's "
            f"ReduceLROnPlateau (keys including {wanted}), got keys {show_keys(keys)}"
        )
    if envelope is not None:
        config, state = _shared.load_saved(envelope, name)
        if theirs is None or all(getattr(state, k) == getattr(theirs, k) for k in _PROGRESS):
            return config.mode, state
    assert theirs is not None
    if has_base:
        raise ValueError(
            "'state_dict' holds a base schedule, but its torch keys differ from its "
            "'plateau' state (torch's ReduceLROnPlateau stepped since it was saved): "
            "it cannot resume one"
        )
    return saved["mode"], attrs.evolve(theirs, lrs=read_lrs(groups))


for _source, _names in (("config", _TORCH_CONFIG), ("state", _PROGRESS)):
    for _name in _names:  # torch's attribute names
        setattr(ReduceLROnPlateau, _name, _Field(_source, _name))
_shared.publish_settings(ReduceLROnPlateau.__init__)
# inspect.signature() of a class with a __new__ reads __new__'s: show __init__'s.
ReduceLROnPlateau.__new__.__signature__ = ReduceLROnPlateau.__init__.__signature__  # type: ignore[attr-defined]
