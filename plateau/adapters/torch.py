"""A drop-in torch ``ReduceLROnPlateau`` whose every decision is made by :func:`plateau.step`.

Change one import line, ``from plateau.adapters.torch import ReduceLROnPlateau``,
and keep the training loop: it subclasses torch's class, so trainers that test
``isinstance`` pass it the metric, and it takes every argument, attribute write and
checkpoint torch's takes. What it adds is in docs/torch.md.

It only translates: ``config`` and ``state`` are the only schedule data, torch's
attribute names and checkpoint format are :mod:`plateau._torch_format`'s, and the
lrs are the optimizer's (the core's ownership rule): a step reads ``param_groups``,
calls :func:`plateau.step` and writes a cut through torch's ``_reduce_lr`` hook.
With a base the groups get :func:`plateau.scale_base` of the base's lrs ("Base
schedules" in ``plateau._core``), and the base steps from its own.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, SupportsFloat, TypeAlias

import attrs

import plateau
from plateau import Decision, PlateauConfig, PlateauState
from plateau import _torch_format as fmt
from plateau._checks import to_metric
from plateau._core import changed

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

# A global: step() may run once per batch. Typed loosely: the fast path hands it a
# metric that may be None, for the core to refuse (step() then names 'metrics').
_core_step: Callable[..., tuple[PlateauState, tuple[float, ...]]] = plateau.step
_REDUCED, _AT_FLOOR, _WARMUP = Decision.REDUCED, Decision.AT_FLOOR, Decision.WARMUP
_scale_base = plateau.scale_base
# What ``base=`` takes: a torch schedule on the same optimizer, or LambdaLR's lr_lambda.
BaseLike: TypeAlias = LRScheduler | Callable[[int], float] | Sequence[Callable[[int], float]]


class ReduceLROnPlateau(fmt.TorchSurface, _TorchReduceLROnPlateau):  # type: ignore[misc,unused-ignore]
    """Torch's ReduceLROnPlateau: same arguments, same lrs, decided by :func:`plateau.step`.

    Not torch's ``__init__`` (its copy of the config would go stale): torch's attribute
    names read and replace :attr:`config` and :attr:`state` (see docs/torch.md).

    Args:
        optimizer: The ``torch.optim.Optimizer`` whose param groups' lrs are scheduled.
        mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps:
            torch's, validated by :class:`plateau.PlateauConfig` (``min_lr``: a scalar,
            which extends to groups added later, or one per group).
        last_epoch: The last epoch done (-1: a new run), as torch's other schedulers take.
        verbose: torch < 2.7's; ignored with a warning, as torch 2.6 did.
        on_nonfinite: A NaN or infinite metric: "bad" (torch's), "raise" or "skip".
        on_repeat: A ``step()`` with no optimizer step since the last one (accelerate's
            prepared scheduler): "warn" (steps, as torch), "skip" or "allow".
        sync_metric: Average the metric over all ranks first (:func:`mean_over_ranks`).
        warmup_epochs, warmup_start_factor: A linear warmup from ``lr *
            warmup_start_factor`` back to each group's lr (:class:`plateau.PlateauConfig`).
        base: A base schedule the plateau scales: a torch ``LRScheduler`` on `optimizer`,
            or an ``lr_lambda`` (one, or one per group) for a ``LambdaLR``. ``step()``
            advances it, ``step(metric)`` applies the plateau rule; each group's lr is
            :func:`plateau.scale_base` of the base's at the reference ``initial_lr``.
        base_with_metric: Each ``step(metric)`` also advances the base (not ``step()``).

    Attributes:
        state: The :class:`plateau.PlateauState` after the last step (with a base, the
            plateau's own lrs, at the reference). :attr:`config` and :attr:`base` too.

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

    # Class defaults for pickles from before base=; __init__ sets them on the instance,
    # faster for the per-batch step to read.
    _base: LRScheduler | None = None
    _reference: tuple[float, ...] = ()
    _written: tuple[float, ...] = ()  # with a base: the groups' lrs after the last write
    _base_steps: int | None = None  # with a base: its last_epoch after the last write

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        mode: Literal["min", "max"] = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs"] = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
        *,
        last_epoch: int = -1,
        verbose: bool | str = "deprecated",
        on_nonfinite: Literal["bad", "raise", "skip"] = "bad",
        on_repeat: Literal["warn", "skip", "allow"] = "warn",
        sync_metric: bool = False,
        warmup_epochs: int = 0,
        warmup_start_factor: float = 0.0,
        base: BaseLike | None = None,
        base_with_metric: bool = False,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            # The type alone: the repr of a model passed by mistake runs to pages.
            raise TypeError(
                f"'optimizer' must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        start = fmt.check_options(sync_metric, on_repeat, base_with_metric, base, last_epoch)
        config = PlateauConfig(
            mode=mode,
            factor=factor,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
            min_lr=min_lr,
            eps=eps,
            on_nonfinite=on_nonfinite,
            warmup_epochs=warmup_epochs,
            warmup_start_factor=warmup_start_factor,
        )
        groups = optimizer.param_groups
        read = _read_lrs(groups, check=True)
        schedule: LRScheduler | None = None
        reference: tuple[float, ...] = ()
        if base is None:
            state = plateau.init(read, config)
            if state.lrs != read:  # Warmup: each group starts at lr * warmup_start_factor.
                state = _write_warmup(groups, read, state)
        else:
            config.min_lrs(len(read))  # before a LambdaLR is built and writes the groups
            if not isinstance(base, LRScheduler):  # ... and the lrs it will scale
                _read_reference(groups, default_to_lr=True)
            schedule = _as_base(optimizer, base)
            reference = _read_reference(groups)
            state = plateau.init(reference, config)  # the plateau's lrs, at the reference
        fmt.warn_verbose(verbose, 2)
        self.state = attrs.evolve(state, last_epoch=start) if start else state
        self._config = config
        self.optimizer = optimizer
        self.sync_metric = sync_metric
        self.on_repeat = on_repeat
        self.base_with_metric = base_with_metric
        self._planned: tuple[tuple[float, ...], ...] | None = None  # (read, cut)
        self._optimizer_steps = 0
        self._stepped_at = -1  # _optimizer_steps at the last step()
        self._base, self._reference, self._written, self._base_steps = schedule, reference, (), None
        self._watch_optimizer()
        if schedule is not None:
            self._write_on_base(_last_of(schedule))

    def _watch_optimizer(self) -> None:
        """Count the optimizer's steps to tell a repeated step(): a hook holding us weakly.

        An optimizer drops its hooks when pickled or copied: ``__setstate__`` adds one.
        """
        ref = weakref.ref(self)

        def count(optimizer: object, args: object, kwargs: object) -> None:
            scheduler = ref()
            if scheduler is not None:
                scheduler._optimizer_steps += 1

        weakref.finalize(self, self.optimizer.register_step_post_hook(count).remove)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._watch_optimizer()

    @property
    def base(self) -> LRScheduler | None:
        """The base schedule (the ``LambdaLR`` built for an ``lr_lambda``), or None."""
        return self._base

    def step(  # type: ignore[override,unused-ignore]
        self, metrics: SupportsFloat | None = None, epoch: int | None = None
    ) -> None:
        """One epoch: read the groups' lrs, :func:`plateau.step`, cut by :meth:`_reduce_lr`.

        Args:
            metrics: A float, an int or a one-element tensor; omitted, a base steps.
            epoch: Deprecated, as in torch: with a warning, it only sets ``state.last_epoch``.

        Raises:
            TypeError: `metrics` or a group's lr is not a single real number.
            ValueError: what :func:`plateau.step` or a base refuses (a param group added,
                ``step()`` under ``base_with_metric=True``). Nothing changes on error.
        """
        if self._base is not None:
            self._step_on_base(metrics, epoch)
            return
        seen = self._optimizer_steps
        if seen == self._stepped_at and seen and fmt.skip_repeat(self.on_repeat, 2):
            return
        if self.sync_metric:
            metrics = mean_over_ranks(fmt.required(metrics))
        groups = self.optimizer.param_groups
        lr = groups[0].get("lr") if len(groups) == 1 else None
        read = (lr,) if type(lr) is float else _read_lrs(groups)
        try:
            state, lrs = _core_step(self.state, metrics, self._config, read)
        except ValueError:
            _read_lrs(groups, check=True)  # an unusable lr set by hand: named by its group
            raise
        except TypeError:
            fmt.required(metrics)
            raise
        if epoch is not None:
            state = fmt.at_epoch(state, epoch, 2)
        decision = state.decision
        if decision is _WARMUP:  # the ramp: not a cut, so not _reduce_lr's to write
            state = _write_warmup(groups, read, state)
        elif decision is _REDUCED or decision is _AT_FLOOR:
            self._planned = (read, lrs)
            try:
                self._reduce_lr(state.last_epoch)
            finally:
                # Ours consumes the plan; an override (or a float32 tensor's rounding)
                # leaves it, and the state records what the optimizer then holds.
                planned, self._planned = self._planned, None
            if planned is not None and (held := _read_lrs(groups)) != lrs:
                state = fmt.after_cut(state, read, held)
        self.state = state
        self._stepped_at = seen

    def _step_on_base(self, metrics: SupportsFloat | None, epoch: int | None) -> None:
        """:meth:`step` with a base: the plateau rule on its own lrs (at the reference).

        The base steps from its own lrs, restored into the groups first: a chainable
        scheduler computes from the groups' (pytorch#82859).
        """
        base = self._base
        assert base is not None  # _step_on_base runs only with a base
        groups = self.optimizer.param_groups
        fmt.check_base_step(
            len(groups),
            len(self._reference),
            type(base).__name__,
            with_metric=metrics is not None,
            epoch=epoch,
            base_with_metric=self.base_with_metric,
        )
        state, seen = self.state, self._stepped_at
        if metrics is not None:
            seen = self._optimizer_steps
            if seen == self._stepped_at and seen and fmt.skip_repeat(self.on_repeat, 3):
                return
            if self.sync_metric:
                metrics = mean_over_ranks(metrics)
            state, _ = _core_step(self.state, metrics, self._config)
            if epoch is not None:
                state = fmt.at_epoch(state, epoch, 3)
        fmt.check_untouched(type(base).__name__, base.last_epoch, self._base_steps)
        fmt.warn_overwritten(_read_lrs(groups), self._written, 3)
        advance = metrics is None or self.base_with_metric
        lrs = self._advance_base(base, groups) if advance else _last_of(base)
        self.state, self._stepped_at = state, seen
        self._write_on_base(lrs)

    def _advance_base(self, base: LRScheduler, groups: list[dict[str, Any]]) -> tuple[float, ...]:
        """Step the base from its own last lrs; its new lrs (the groups then hold them)."""
        try:
            _write_lrs(groups, enumerate(base.get_last_lr()))
            base.step()
        except BaseException:
            _write_lrs(groups, enumerate(self._written))  # the groups as they were: our last write
            raise
        return _last_of(base)

    def _write_on_base(self, base_lrs: tuple[float, ...]) -> None:
        """Write ``scale_base`` of `base_lrs` to the groups; record what they then hold."""
        groups = self.optimizer.param_groups
        lrs = _scale_base(self.state, base_lrs, self._reference)
        self._written = _write_held(groups, enumerate(lrs), lrs)
        self._base_steps = None if self._base is None else self._base.last_epoch

    def _reduce_lr(self, epoch: int) -> None:
        """Torch's hook for the cut: an override (ignite's) replaces the write we planned.

        Raises:
            RuntimeError: called outside :meth:`step`, where no cut was decided.
        """
        if self._planned is None:
            raise RuntimeError("_reduce_lr() writes the cut step() decided; call step(metric)")
        read, lrs = self._planned
        if not _write_lrs(self.optimizer.param_groups, changed(read, lrs)):
            self._planned = None  # written exactly: step() need not read the lrs back

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """Each group's lr after the last step, a tensor group's as a new tensor (as torch)."""
        lrs = self.state.lrs if self._base is None else self._written
        last: list[float | torch.Tensor] = [*lrs]
        for i, group in enumerate(self.optimizer.param_groups[: len(lrs)]):
            if isinstance(held := group["lr"], torch.Tensor):
                last[i] = held.detach().new_full(held.shape, lrs[i])
        return last

    def state_dict(self) -> dict[str, Any]:
        """``config`` and ``state``, plus torch's own keys: both classes can resume from it.

        Strict JSON (:func:`plateau._torch_format.state_dict`); with a base, ``base``
        holds the base's ``state_dict()`` and the reference.

        Example:
            >>> import json, torch
            >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
            >>> scheduler = ReduceLROnPlateau(opt)
            >>> saved = json.loads(json.dumps(scheduler.state_dict(), allow_nan=False))
            >>> saved["state"]["best"], saved["num_bad_epochs"], "best" in saved
            ('inf', 0, False)
            >>> torch.optim.lr_scheduler.ReduceLROnPlateau(opt).load_state_dict(saved)
        """
        base = self._base
        if base is None:
            return fmt.state_dict(self._config, self.state)
        saved = (type(base).__name__, base.state_dict(), self._reference, self._written)
        return fmt.state_dict(self._config, self.state, saved)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`'s output, or torch's ReduceLROnPlateau's.

        The constructor's config wins; which saved progress wins and what is refused
        is :func:`plateau._torch_format.load_state`'s. With a base, the groups get the
        lrs the saved scheduler wrote, whichever of optimizer and scheduler loads first.

        Raises:
            TypeError: `state_dict` is not a mapping, or a field has the wrong type.
            ValueError: a bad checkpoint for this scheduler. Nothing changes on error
                (but what the base's own ``load_state_dict`` changed).
        """
        groups = self.optimizer.param_groups
        base = self._base
        name = None if base is None else type(base).__name__
        state = fmt.load_state(
            state_dict, self._config, len(groups), lambda: _read_lrs(groups), name
        )
        if base is None:
            self.state = state
            return
        assert name is not None
        base_state, reference = fmt.saved_base(
            state_dict["base"], name, len(groups), state, _last_of(base)
        )
        base.load_state_dict(base_state)  # everything is checked: an error changes nothing
        self.state, self._reference = state, reference
        self._write_on_base(_last_of(base))


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


def _read_lrs(groups: list[dict[str, Any]], *, check: bool = False) -> tuple[float, ...]:
    """Each group's lr as a float; if `check`, a float not finite and >= 0 is a ValueError."""
    return tuple(_to_lr(i, group.get("lr"), check) for i, group in enumerate(groups))


def _to_lr(index: int, lr: object, check: bool = False, key: str = "lr") -> float:
    """A group's lr (a one-element tensor's value) as a float, named by its group on error."""
    if type(lr) is float and not check:
        return lr  # the core checks it
    name = f"optimizer.param_groups[{index}][{key!r}]"
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1 or lr.dtype in (torch.bool, torch.complex64, torch.complex128):
            raise fmt.lr_error(name, f"a {lr.dtype} tensor of shape {tuple(lr.shape)}")
        lr = lr.item()
    return fmt.check_lr(name, lr)


def _read_reference(groups: list[dict[str, Any]], default_to_lr: bool = False) -> tuple[float, ...]:
    """Each group's ``initial_lr``, the base's reference (`default_to_lr`: a LambdaLR's to be)."""
    reference = []
    for i, group in enumerate(groups):
        initial_lr = _to_lr(i, fmt.initial_lr_of(i, group, default_to_lr), True, "initial_lr")
        reference.append(fmt.check_reference(i, initial_lr))
    return tuple(reference)


def _write_warmup(
    groups: list[dict[str, Any]], read: tuple[float, ...], state: PlateauState
) -> PlateauState:
    """Write a warmup step's lrs; the state then records what the groups hold."""
    held = _write_held(groups, changed(read, state.lrs), state.lrs)
    return state if held == state.lrs else attrs.evolve(state, lrs=held)


def _write_held(
    groups: list[dict[str, Any]],
    writes: Iterable[tuple[int, float | torch.Tensor]],
    lrs: tuple[float, ...],
) -> tuple[float, ...]:
    """:func:`_write_lrs`; the lrs the groups then hold: `lrs`, unless a float32 tensor rounded."""
    return _read_lrs(groups) if _write_lrs(groups, writes) else lrs


def _write_lrs(
    groups: list[dict[str, Any]], writes: Iterable[tuple[int, float | torch.Tensor]]
) -> bool:
    """Set each ``groups[i]["lr"]``, a tensor in place (as torch); True if one was (it rounds)."""
    filled = False
    for index, lr in writes:
        if isinstance(groups[index]["lr"], torch.Tensor):
            groups[index]["lr"].fill_(lr)
            filled = True
        else:
            groups[index]["lr"] = lr
    return filled


def _last_of(base: LRScheduler) -> tuple[float, ...]:
    """The base's last lrs as floats (torch keeps a tensor group's as a tensor copy)."""
    return tuple(_to_lr(i, lr) for i, lr in enumerate(base.get_last_lr()))


def _as_base(optimizer: torch.optim.Optimizer, base: object) -> LRScheduler:
    """`base` as a torch LRScheduler on `optimizer`: itself, or a LambdaLR built for it."""
    if not isinstance(base, (LRScheduler, _TorchReduceLROnPlateau)):
        return LambdaLR(optimizer, fmt.lambdas(base, len(optimizer.param_groups)))
    plateau_base = isinstance(base, _TorchReduceLROnPlateau)
    on_it = getattr(base, "optimizer", None) is optimizer
    fmt.check_scheduler(type(base).__name__, plateau_base, on_it)
    return base  # type: ignore[return-value,unused-ignore]
