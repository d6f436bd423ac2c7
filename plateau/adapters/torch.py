"""A drop-in torch ``ReduceLROnPlateau`` whose every decision is made by :func:`plateau.step`.

Change one import line and keep the rest of the training loop::

    from plateau.adapters.torch import ReduceLROnPlateau

The class subclasses torch's, so code that recognises a plateau scheduler with
``isinstance`` (Lightning, transformers' Trainer, skorch, ignite, hand-written
loops) passes it the metric, and it takes every argument, attribute write and
checkpoint torch's takes (docs/compatibility.md lists the trainers tested). It
adds what torch's lacks: a strict-JSON state, a constructor config that wins
over a stale checkpoint, the decision of every step (``scheduler.state.decision``),
a non-finite policy, a warning when ``step()`` repeats with no optimizer step
between (``on_repeat``), and ``sync_metric=True`` for identical decisions on every
rank of a distributed job (:func:`mean_over_ranks`, which a custom loop can call too),
and ``base=``: a plateau over a base schedule (a torch scheduler such as
``CosineAnnealingLR`` or an ``lr_lambda``) in one scheduler object.

This module only translates: ``scheduler.config`` and ``scheduler.state`` are the
only schedule data, torch's attribute names read them (an assignment replaces
them by a validated copy), and the lrs are the optimizer's (the core's ownership
rule): each step reads ``param_groups``, hands them to :func:`plateau.step` and
writes a cut back through torch's ``_reduce_lr`` hook. With a base the scheduler
owns the lrs instead: the groups get :func:`plateau.scale_base` of the base's lrs
(see "Base schedules" in ``plateau._core``), and the base always steps from its own.

Example:
    >>> import torch
    >>> from plateau.adapters.torch import ReduceLROnPlateau
    >>> optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> scheduler = ReduceLROnPlateau(optimizer, patience=0)
    >>> for val_loss in [1.0, 2.0]:
    ...     scheduler.step(val_loss)
    >>> scheduler.get_last_lr(), scheduler.state.decision.value
    ([0.010000000000000002], 'reduced')
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, SupportsFloat, TypeAlias

import attrs

import plateau
from plateau import Decision, PlateauConfig, PlateauState
from plateau._checks import check_int, check_non_negative, got, show, show_keys, to_metric, within
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
_REDUCED, _AT_FLOOR = Decision.REDUCED, Decision.AT_FLOOR
_WARMUP = Decision.WARMUP
# The progress every torch (2.6-2.13) ReduceLROnPlateau.state_dict() holds.
_PROGRESS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")
_REPEATS = ("warn", "skip", "allow")
_scale_base = plateau.scale_base
# What ``base=`` takes: a torch schedule on the same optimizer, or LambdaLR's lr_lambda.
BaseLike: TypeAlias = LRScheduler | Callable[[int], float] | Sequence[Callable[[int], float]]


class _Field:
    """Torch's name for a config or state field, read from it and written through.

    Assigning replaces the config or state by a validated copy with the new value;
    nothing changes on error.
    """

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

    torch's ``__init__`` is not called: it would keep a second copy of the config
    and counters, which would go stale. Torch's attribute names read
    :attr:`config` and :attr:`state`, and take assignments with torch's meaning
    (timm and ignite write ``best`` and ``last_epoch``): ``factor``, ``patience``,
    ``threshold``, ``threshold_mode``, ``cooldown``, ``eps``, ``min_lrs`` replace the
    config; ``best``, ``num_bad_epochs``, ``cooldown_counter``, ``last_epoch`` replace
    the state. Each is validated (a TypeError / ValueError naming it, nothing
    changed); ``mode``, ``default_min_lr`` and ``mode_worse`` take only their current
    value. ``in_cooldown``, ``optimizer`` and ``get_last_lr()`` are torch's.

    Args:
        optimizer: The ``torch.optim.Optimizer`` whose param groups' lrs are scheduled.
        mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps:
            torch's arguments and defaults, validated by :class:`plateau.PlateauConfig`
            (``min_lr``: a scalar, which extends to groups added later, or one per group).
        last_epoch: What torch's other schedulers take and skorch passes: the index of
            the last epoch done, -1 for a new run. ``self.last_epoch`` starts at
            ``last_epoch + 1``, as theirs does; best and counters start fresh.
        verbose: torch < 2.7's argument; ignored with a warning, as torch 2.6 did.
        on_nonfinite: What a NaN or infinite metric does: "bad" (torch's), "raise", "skip".
        on_repeat: What a ``step()`` does when the optimizer has stepped, but not since
            the last ``step()`` (accelerate's prepared scheduler, a hook called twice):
            "warn" (steps, as torch, with a warning), "skip" (ignores the call) or
            "allow" (steps silently).
        sync_metric: Average the metric over all ranks (:func:`mean_over_ranks`) before
            each step, so every rank takes the same decision. Every rank must then call
            :meth:`step` together; outside a process group nothing distributed is touched.
        warmup_epochs, warmup_start_factor: A linear warmup before the plateau rule
            (:class:`plateau.PlateauConfig`): each group's lr is set to ``lr *
            warmup_start_factor`` here, and the first ``warmup_epochs`` steps ramp it
            back to the lr it had, ignoring their metric. With a base, the warmup
            ramps the plateau's scale on the base, and counts ``step(metric)`` calls.
        base: A base schedule the plateau scales: a torch ``LRScheduler`` built on
            `optimizer` (``CosineAnnealingLR``, ``LinearLR``, ``OneCycleLR``,
            ``SequentialLR`` of them, ...), or an ``lr_lambda`` (one callable, or one
            per group) for which a torch ``LambdaLR`` is built. ``step()`` with no
            metric then advances the base (per batch or per epoch, as the base
            wants), ``step(metric)`` applies the plateau rule, and each group's lr
            is :func:`plateau.scale_base` of the base's lr at the reference
            ``initial_lr``: the base's lr itself until the first cut, then the
            plateau's factor times it. The scheduler then owns the lrs: one set by
            hand between steps is overwritten by the next, with a warning.
        base_with_metric: With a base, make each ``step(metric)`` also advance the
            base once (after the plateau rule), for an epoch-wise base under a
            trainer that only calls ``step(metric)``; ``step()`` alone is then refused.

    Attributes:
        config: The :class:`plateau.PlateauConfig`; replaceable between steps by one
            with the same ``mode`` (and, if per group, one ``min_lr`` per param group).
        state: The :class:`plateau.PlateauState` after the last step. With a base its
            lrs are the plateau's own, at the reference (each group's ``initial_lr``
            until the first cut), not the groups'.
        base: The base ``LRScheduler`` (the ``LambdaLR`` built for an ``lr_lambda``),
            or None.

    Raises:
        TypeError: `optimizer` is not a ``torch.optim.Optimizer``, a param group's lr is
            not a single real number, or an argument has the wrong type (`base` a
            ReduceLROnPlateau, or neither a scheduler nor callables).
        ValueError: an argument has a bad value, ``min_lr`` does not fit the groups,
            or `base` is a scheduler on another optimizer or has one lr_lambda per
            group for another number of groups.

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

    _config: PlateauConfig
    state: PlateauState
    sync_metric: bool
    on_repeat: str
    base_with_metric: bool
    # Class defaults: no base (and a pickle from before base= unpickles without one).
    _base: LRScheduler | None = None
    _reference: tuple[float, ...] = ()
    _written: tuple[float, ...] = ()  # with a base: the groups' lrs after the last write
    _base_steps: int | None = None  # with a base: its last_epoch after the last write

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
        if not isinstance(sync_metric, bool):
            raise TypeError(f"'sync_metric' must be a bool, got {got(sync_metric)}")
        if not isinstance(on_repeat, str) or on_repeat not in _REPEATS:
            error = ValueError if isinstance(on_repeat, str) else TypeError
            raise error(f"'on_repeat' must be one of {_REPEATS}, got {got(on_repeat)}")
        if not isinstance(base_with_metric, bool):
            raise TypeError(f"'base_with_metric' must be a bool, got {got(base_with_metric)}")
        if base_with_metric and base is None:
            raise ValueError("'base_with_metric' is True but there is no 'base' to advance")
        start = check_int("last_epoch", last_epoch, minimum=-1) + 1
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
        read = _read_lrs(optimizer.param_groups, check=True)
        if base is None:
            state = plateau.init(read, config)
            if state.lrs != read:  # Warmup: each group starts at lr * warmup_start_factor.
                state = _write_warmup(optimizer.param_groups, read, state)
        else:
            config.min_lrs(len(read))  # before a LambdaLR is built and writes the groups
            if not isinstance(base, LRScheduler):  # ... and the lrs it will scale
                _read_reference(optimizer.param_groups, default_to_lr=True)
            schedule = _as_base(optimizer, base)
            reference = _read_reference(optimizer.param_groups)
            state = plateau.init(reference, config)  # the plateau's lrs, at the reference
        if verbose != "deprecated":
            warnings.warn(
                "The verbose parameter is deprecated (torch removed it in 2.7); it is ignored. "
                "Use get_last_lr() or scheduler.state.decision.",
                UserWarning,
                stacklevel=2,
            )
        self.state = attrs.evolve(state, last_epoch=start) if start else state
        self._config = config
        self.optimizer = optimizer
        self.sync_metric = sync_metric
        self.on_repeat = on_repeat
        self._planned: tuple[tuple[float, ...], ...] | None = None  # (read, cut)
        self._optimizer_steps = 0
        self._stepped_at = -1  # _optimizer_steps at the last step()
        self._watch_optimizer()
        self.base_with_metric = base_with_metric
        if base is not None:
            self._base = schedule
            self._reference = reference
            self._write_on_base(_last_of(schedule))

    def _watch_optimizer(self) -> None:
        """Count the optimizer's steps (a post-step hook) to tell a repeated step().

        The hook holds the scheduler weakly and goes with it; an optimizer drops its
        hooks when pickled or copied, so ``__setstate__`` installs a new one.
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
    def config(self) -> PlateauConfig:
        """The :class:`plateau.PlateauConfig`; assigning one checks it against this run.

        Raises:
            TypeError: not a PlateauConfig.
            ValueError: another ``mode`` (``best`` would be meaningless), or a per-group
                ``min_lr`` without one value per param group. Nothing changes on error.
        """
        return self._config

    @config.setter
    def config(self, config: PlateauConfig) -> None:
        if not isinstance(config, PlateauConfig):
            raise TypeError(
                f"'config' must be a plateau.PlateauConfig, got {got(config)}; "
                "build one with attrs.evolve(scheduler.config, ...)"
            )
        _check_mode("'config' has", config.mode, self._config.mode, self.state.best)
        config.min_lrs(len(self.optimizer.param_groups))
        self._config = config

    @property
    def min_lrs(self) -> list[float]:
        """Torch's ``min_lrs``: the floor of each param group; assigning sets one per group."""
        return list(self._config.min_lrs(len(self.state.lrs)))

    @min_lrs.setter
    def min_lrs(self, value: Sequence[float]) -> None:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise TypeError(f"'min_lrs' must be a list, one lr per param group, got {got(value)}")
        new = attrs.evolve(self._config, min_lr=tuple(value))
        # Torch's default_min_lr stays for groups added later: a list of it changes nothing.
        if self.default_min_lr is None or set(new.min_lrs(len(value))) != {self.default_min_lr}:
            self.config = new

    @property
    def default_min_lr(self) -> float | None:
        """Torch's ``default_min_lr``: the scalar ``min_lr``, or None when it is per group."""
        min_lr = self._config.min_lr
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
        return self._base

    @property
    def in_cooldown(self) -> bool:
        """Torch's ``in_cooldown``: whether bad epochs are currently not counted."""
        return self.state.cooldown_counter > 0

    def step(  # type: ignore[override,unused-ignore]
        self, metrics: SupportsFloat | None = None, epoch: int | None = None
    ) -> None:
        """One epoch: read the param groups' lrs, :func:`plateau.step`, write a cut back.

        A cut is written by :meth:`_reduce_lr`, called whenever patience is exceeded.
        With a base, ``step()`` (no metric) advances the base and ``step(metric)``
        applies the plateau rule; either writes :func:`plateau.scale_base` of the
        base's lrs to the groups, and :meth:`_reduce_lr` is not called.

        Args:
            metrics: The monitored value: a float, an int or a one-element tensor.
                Omitted only with a base: then the base steps.
            epoch: Deprecated, as in torch: with a warning, it only sets ``state.last_epoch``.

        Raises:
            TypeError: `metrics` or a param group's lr is not a single real number
                (`metrics` omitted without a base), or `epoch` given without a metric.
            ValueError: what :func:`plateau.step` refuses (a non-finite metric with
                ``on_nonfinite="raise"``, an unusable lr set by hand, a per-group
                ``min_lr`` that no longer fits), or a negative `epoch`; with a base,
                a param group added, or ``step()`` with ``base_with_metric=True``.
                Nothing changes on error (but what the base's own step changed).
        """
        if self._base is not None:
            self._step_on_base(metrics, epoch)
            return
        seen = self._optimizer_steps
        if seen == self._stepped_at and seen and self.on_repeat != "allow":
            if self.on_repeat == "skip":
                return
            _warn_repeat(3)
        if self.sync_metric:
            metrics = mean_over_ranks(_required(metrics))
        groups = self.optimizer.param_groups
        lr = groups[0].get("lr") if len(groups) == 1 else None
        read = (lr,) if type(lr) is float else _read_lrs(groups)
        try:
            state, lrs = _core_step(self.state, metrics, self._config, read)
        except ValueError:
            _read_lrs(groups, check=True)  # an unusable lr set by hand: named by its group
            raise
        except TypeError:
            _required(metrics)
            raise
        if epoch is not None:
            _warn_epoch(3)
            state = attrs.evolve(state, last_epoch=epoch)
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
                decision = _REDUCED if held != read else _AT_FLOOR
                state = attrs.evolve(state, lrs=held, decision=decision)
        self.state = state
        self._stepped_at = seen

    def _step_on_base(self, metrics: SupportsFloat | None, epoch: int | None) -> None:
        """:meth:`step` with a base: the plateau rule on its own lrs, or the base's step.

        The plateau's state never reads the groups: its lrs are at the reference. The
        base steps from its own last lrs, restored into the groups first, since a
        chainable torch scheduler computes its next lr from the group's (that is what
        keeps a cut from being undone, pytorch#82859). The groups then get
        :func:`plateau.scale_base` of the base's lrs.
        """
        groups = self.optimizer.param_groups
        if len(groups) != len(self._reference):
            raise ValueError(
                f"the optimizer has {len(groups)} param groups but the base schedule "
                f"{type(self._base).__name__} was built for {len(self._reference)}; a "
                "param group cannot join a base schedule mid-run"
            )
        if metrics is None:
            if epoch is not None:
                raise TypeError(
                    "'epoch' goes with a metric: step() with no metric advances the base "
                    f"and takes no 'epoch', got epoch={got(epoch)}"
                )
            if self.base_with_metric:
                raise ValueError(
                    "step() with no metric would advance the base a second time: with "
                    "base_with_metric=True each step(metric) advances it"
                )
            self._check_written(groups)
            self._write_on_base(self._advance_base(groups))
            return
        seen = self._optimizer_steps
        if seen == self._stepped_at and seen and self.on_repeat != "allow":
            if self.on_repeat == "skip":
                return
            _warn_repeat(4)
        if self.sync_metric:
            metrics = mean_over_ranks(metrics)
        state, _ = _core_step(self.state, metrics, self._config)
        if epoch is not None:
            _warn_epoch(4)
            state = attrs.evolve(state, last_epoch=epoch)
        self._check_written(groups)
        schedule = self._base
        assert schedule is not None  # _step_on_base runs only with a base
        base = self._advance_base(groups) if self.base_with_metric else _last_of(schedule)
        self.state = state
        self._stepped_at = seen
        self._write_on_base(base)

    def _check_written(self, groups: list[dict[str, Any]]) -> None:
        """Refuse a base stepped outside; warn of an lr set by hand (the next write overwrites it).

        Raises:
            ValueError: the base was stepped since the last write, not by this
                scheduler: it then computed its lrs from the scaled ones, so the cut
                would be applied twice from then on.
        """
        base = self._base
        if (
            self._base_steps is not None
            and base is not None
            and base.last_epoch != self._base_steps
        ):
            raise ValueError(
                f"the base schedule {type(base).__name__} was stepped outside this "
                f"scheduler (its last_epoch is {base.last_epoch}, {self._base_steps} after "
                "the last step()): it then computes from the plateau's scaled lrs and "
                "cuts them twice. Call scheduler.step() instead of the base's step() "
                "(and do not hand the base to a trainer as a scheduler of its own)"
            )
        held = _read_lrs(groups)
        if held != self._written:
            index = next(
                i for i, (a, b) in enumerate(zip(held, self._written, strict=True)) if a != b
            )
            warnings.warn(
                f"optimizer.param_groups[{index}]['lr'] was set to {held[index]!r} since "
                f"the last step(), which wrote {self._written[index]!r}: with a base "
                "schedule the scheduler writes every lr at each step, so it is "
                "overwritten (the base steps from its own lrs). To change the lrs, "
                "change the base schedule.",
                UserWarning,
                stacklevel=4,
            )

    def _advance_base(self, groups: list[dict[str, Any]]) -> tuple[float, ...]:
        """Step the base from its own last lrs; its new lrs (the groups then hold them)."""
        base = self._base
        assert base is not None
        try:
            _fill(groups, base.get_last_lr())
            base.step()
        except BaseException:
            _fill(groups, self._written)  # the groups as they were: our last write
            raise
        return _last_of(base)

    def _write_on_base(self, base_lrs: tuple[float, ...]) -> None:
        """Write ``scale_base`` of `base_lrs` to the groups; record what they then hold."""
        groups = self.optimizer.param_groups
        lrs = _scale_base(self.state, base_lrs, self._reference)
        if _fill(groups, lrs):
            lrs = _read_lrs(groups)  # a float32 tensor rounds: record what it holds
        self._written = lrs
        self._base_steps = None if self._base is None else self._base.last_epoch

    def _reduce_lr(self, epoch: int) -> None:
        """Torch's hook for the cut: write the lrs :func:`plateau.step` decided.

        :meth:`step` calls it whenever patience is exceeded, as torch's does, so an
        override replaces the write (ignite's ``ReduceLROnPlateauScheduler`` installs
        one to cut a single group); the state then records the lrs the override left.
        A tensor lr is filled in place, as torch does: dtype, device and identity kept.

        Raises:
            RuntimeError: called outside :meth:`step`, where no cut was decided.
        """
        if self._planned is None:
            raise RuntimeError("_reduce_lr() writes the cut step() decided; call step(metric)")
        read, lrs = self._planned
        if not _write_lrs(self.optimizer.param_groups, changed(read, lrs)):
            self._planned = None  # written exactly: step() need not read the lrs back

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """The lr of each param group after the last step, as torch gives it.

        The values are ``state.lrs`` (with a base: the lrs last written, which the
        groups hold); a group whose lr is a tensor gets a new tensor of the same dtype
        and device (never an alias of the group's).
        """
        groups = self.optimizer.param_groups
        last: list[float | torch.Tensor] = []
        for i, lr in enumerate(self.state.lrs if self._base is None else self._written):
            held = groups[i]["lr"] if i < len(groups) else None
            if isinstance(held, torch.Tensor):
                last.append(held.detach().new_full(held.shape, lr))
            else:
                last.append(lr)
        return last

    def state_dict(self) -> dict[str, Any]:
        """``config`` and ``state``, plus torch's own keys: both classes can resume from it.

        Plain values only, so ``json.dumps(allow_nan=False)`` passes: an infinite best
        is left out of torch's keys (a new torch scheduler starts there) and written
        "inf" in ``state``. Torch's ``load_state_dict`` copies every key into the
        scheduler, so ``config`` and ``state`` ride along, and :meth:`load_state_dict`
        tells from torch's keys whether torch's class stepped since.

        With a base, ``base`` holds the base's own ``state_dict()`` (torch's format:
        ``torch.save`` and ``torch.load(weights_only=True)`` take it) and the
        reference, and ``_last_lr`` the groups' lrs.

        Example:
            >>> import json, torch
            >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
            >>> scheduler = ReduceLROnPlateau(opt)
            >>> saved = json.loads(json.dumps(scheduler.state_dict(), allow_nan=False))
            >>> saved["state"]["best"], saved["num_bad_epochs"], "best" in saved
            ('inf', 0, False)
            >>> torch.optim.lr_scheduler.ReduceLROnPlateau(opt).load_state_dict(saved)
        """
        state, config = self.state, self._config
        names = ("factor", "patience", "cooldown", "eps", "mode", "threshold", "threshold_mode")
        torch_keys = {name: getattr(config, name) for name in names}
        torch_keys.update(min_lrs=self.min_lrs, default_min_lr=self.default_min_lr)
        torch_keys.update({key: getattr(state, key) for key in _PROGRESS}, _last_lr=[*state.lrs])
        if not math.isfinite(state.best):
            del torch_keys["best"]
        saved = {"config": config.to_dict(), "state": state.to_dict(), **torch_keys}
        if self._base is not None:
            saved["_last_lr"] = [*self._written]
            saved["base"] = {
                "state_dict": self._base.state_dict(),
                "reference": [*self._reference],
                "type": type(self._base).__name__,
            }
        return saved

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`'s output, or from torch's own ReduceLROnPlateau's.

        Plateau's earlier format, ``config`` and ``state`` only, loads too.

        The constructor's config wins, so a run resumed with a new ``patience`` or
        ``factor`` uses the new one (torch's class silently takes the checkpoint's). A
        plateau checkpoint's config is validated, then only its ``mode`` is compared; a
        torch checkpoint's settings are not validated (torch accepts values
        PlateauConfig rejects, say ``factor=0``), only its ``mode`` is compared. The
        progress is restored and validated by :class:`plateau.PlateauState`: best,
        both counters, last_epoch and, from a plateau checkpoint, the lrs (from a
        torch one, the optimizer's; ``decision`` reads START until the next step).
        Torch's class keeps plateau's keys when it loads them: when its own keys
        differ from ``state``, it has stepped since and they win. Other keys (ignite's
        ``_reduce_lr``, which torch's state_dict then holds) are ignored.

        With a base, only a checkpoint saved with one loads (and a checkpoint saved
        with a base only into a scheduler with one): the base's state is loaded into
        :attr:`base` and the groups get the lrs the saved scheduler had written, so
        the run resumes bit for bit whichever of the optimizer and the scheduler is
        loaded first.

        Raises:
            TypeError: `state_dict` is not a mapping, or a field has the wrong type.
            ValueError: neither format, a bad value, a checkpoint whose mode differs
                from this scheduler's, or whose lr count is not the param groups'; a
                checkpoint with a base into a scheduler without one or the reverse,
                or one torch's class stepped since. Nothing changes on error (but what
                the base's own ``load_state_dict`` changed before raising).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"'state_dict' must be a dict, got {got(state_dict)}")
        keys = set(state_dict)
        if (self._base is None) is ("base" in keys):
            raise ValueError(
                "'state_dict' was saved with a base schedule: build this scheduler with "
                "base= to resume it"
                if self._base is None
                else "'state_dict' was saved without a base schedule, and this scheduler "
                f"has one ({type(self._base).__name__}); its lrs would mean another thing"
            )
        groups = self.optimizer.param_groups
        # torch's progress keys, validated before anything compares them (an array's
        # == is elementwise); their lrs are the optimizer's, read only if they win.
        theirs: PlateauState | None = None
        if keys.issuperset(("mode", *_PROGRESS)):
            progress = {key: state_dict[key] for key in _PROGRESS}
            with within("state_dict"):
                theirs = PlateauState(lrs=(0.0,), **progress)
        state: PlateauState | None = None
        if {"config", "state"} <= keys:
            with within("state_dict['config']"):
                saved_mode: object = PlateauConfig.from_dict(state_dict["config"]).mode
            with within("state_dict['state']"):
                state = PlateauState.from_dict(state_dict["state"])
            ours = tuple(getattr(state, key) for key in _PROGRESS)
            if theirs is not None and ours != tuple(getattr(theirs, key) for key in _PROGRESS):
                state = None
        elif theirs is None:
            raise ValueError(
                "'state_dict' must come from state_dict() of plateau's ReduceLROnPlateau "
                "(keys including ['config', 'state']) or of torch's (keys including "
                f"{sorted(('mode', *_PROGRESS))}), got keys {show_keys(keys)}"
            )
        if state is None:
            assert theirs is not None
            if self._base is not None:
                raise ValueError(
                    "'state_dict' holds a base schedule, but torch's ReduceLROnPlateau "
                    "has stepped since it was saved (its keys differ from 'state'): its "
                    "lrs are not the plateau's, so it cannot resume over a base"
                )
            saved_mode = state_dict["mode"]
            state = attrs.evolve(theirs, lrs=_read_lrs(groups))
        _check_mode("the checkpoint was saved with", saved_mode, self._config.mode, state.best)
        if len(state.lrs) != len(groups):
            raise ValueError(
                f"the checkpoint holds {len(state.lrs)} lrs but the optimizer has "
                f"{len(groups)} param groups"
            )
        self._config.min_lrs(len(state.lrs))
        if self._base is None:
            self.state = state
            return
        base_state, reference = _saved_base(state_dict["base"], self._base, len(groups))
        # Everything checked before anything is loaded: an error changes nothing.
        _scale_base(state, base_state.get("_last_lr", _last_of(self._base)), reference)
        self._base.load_state_dict(base_state)
        self.state, self._reference = state, reference
        self._write_on_base(_last_of(self._base))


def mean_over_ranks(metric: SupportsFloat) -> float:
    """`metric` averaged over all ranks in float64: every rank then decides alike.

    An all_reduce, so every rank must call it together. Outside an initialized
    ``torch.distributed`` process group it is ``float(metric)`` and touches nothing.

    Raises:
        TypeError: `metric` is not a single real number (checked before the
            collective, so a bad rank fails alone instead of hanging the others).
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
    """Each param group's lr as a float (a one-element tensor's value), or a TypeError.

    A float is taken as is (the core checks it) unless `check`: then an lr that is
    not finite and >= 0 is a ValueError naming its param group.
    """
    return tuple(_to_lr(i, group.get("lr"), check) for i, group in enumerate(groups))


def _to_lr(index: int, lr: object, check: bool = False, key: str = "lr") -> float:
    if type(lr) is float and not check:
        return lr
    name = f"optimizer.param_groups[{index}][{key!r}]"
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1 or lr.dtype in (torch.bool, torch.complex64, torch.complex128):
            raise TypeError(
                f"{name} must be a real number or a one-element real tensor, got a "
                f"{lr.dtype} tensor of shape {tuple(lr.shape)}"
            )
        lr = lr.item()
    try:
        return check_non_negative(name, lr)
    except TypeError:
        raise TypeError(
            f"{name} must be a real number or a one-element real tensor, got {got(lr)}"
        ) from None


def _write_warmup(
    groups: list[dict[str, Any]], read: tuple[float, ...], state: PlateauState
) -> PlateauState:
    """Write a warmup step's lrs; the state then holds what the groups hold.

    A tensor lr is filled in place, as :meth:`ReduceLROnPlateau._reduce_lr` does; a
    float32 one rounds, and the state records the rounded value, so that the next
    step does not take the rounding for an lr set by hand.
    """
    filled = _write_lrs(groups, changed(read, state.lrs))
    if filled and (held := _read_lrs(groups)) != state.lrs:
        state = attrs.evolve(state, lrs=held)
    return state


def _required(metrics: SupportsFloat | None) -> SupportsFloat:
    if metrics is None:
        raise TypeError(
            f"'metric' must be a single real number, got {got(metrics)}: step() with no "
            "metric advances a base schedule, and this scheduler has no base="
        )
    return metrics


def _warn_repeat(stacklevel: int) -> None:
    warnings.warn(
        "ReduceLROnPlateau.step() was called again with no optimizer step since its "
        "last call; it counts as another epoch, as in torch. A prepared accelerate "
        "scheduler steps once per process: see docs/compatibility.md. Pass "
        "on_repeat='skip' to ignore such calls, or on_repeat='allow' to silence this.",
        UserWarning,
        stacklevel=stacklevel,
    )


def _warn_epoch(stacklevel: int) -> None:
    warnings.warn(
        "The epoch argument of ReduceLROnPlateau.step() is deprecated (as in "
        "torch); it only sets state.last_epoch",
        UserWarning,
        stacklevel=stacklevel,
    )


def _fill(groups: list[dict[str, Any]], lrs: Sequence[float | torch.Tensor]) -> bool:
    """Write one lr per group (see :func:`_write_lrs`); True if a tensor was filled."""
    return _write_lrs(groups, zip(range(len(groups)), lrs, strict=True))


def _write_lrs(
    groups: list[dict[str, Any]], writes: Iterable[tuple[int, float | torch.Tensor]]
) -> bool:
    """Set ``groups[i]["lr"]`` for each (i, lr); True if a tensor was filled (it may round).

    A tensor lr is filled in place, as torch does: dtype, device and identity kept.
    """
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
    if isinstance(base, _TorchReduceLROnPlateau):
        raise TypeError(
            f"'base' must be a schedule the plateau scales (CosineAnnealingLR, LinearLR, "
            f"an lr_lambda, ...), got a {type(base).__name__}: a plateau cannot be a base; "
            "pass its arguments to this scheduler instead"
        )
    if isinstance(base, LRScheduler):
        if getattr(base, "optimizer", None) is not optimizer:
            raise ValueError(
                f"'base' must be a scheduler on this optimizer, got a {type(base).__name__} "
                "built on another one"
            )
        return base
    groups = len(optimizer.param_groups)
    if callable(base):
        return LambdaLR(optimizer, base)
    if (
        isinstance(base, Sequence)
        and not isinstance(base, (str, bytes))
        and base
        and all(callable(f) for f in base)
    ):
        if len(base) != groups:
            raise ValueError(
                f"'base' must hold one lr_lambda per param group ({groups}), got {len(base)}"
            )
        return LambdaLR(optimizer, list(base))
    raise TypeError(
        "'base' must be a torch LRScheduler on this optimizer, an lr_lambda or a list "
        f"of them (one per param group), got {got(base)}"
    )


def _saved_base(
    saved: object, base: LRScheduler, count: int
) -> tuple[dict[str, Any], tuple[float, ...]]:
    """A checkpoint's ``base`` entry, validated: the base's state_dict and the reference.

    ``type`` (the base's class name) is optional: checkpoints written before it lack it.
    """
    keys = {"state_dict", "reference"}
    if not isinstance(saved, Mapping) or not keys <= set(saved) <= keys | {"type"}:
        raise ValueError(
            "state_dict['base'] must be a dict with keys ['reference', 'state_dict'] "
            "(and optionally 'type'), got "
            + (f"keys {show_keys(set(saved))}" if isinstance(saved, Mapping) else got(saved))
        )
    base_state, reference = saved["state_dict"], saved["reference"]
    if not isinstance(base_state, Mapping):
        raise TypeError(f"state_dict['base']['state_dict'] must be a dict, got {got(base_state)}")
    saved_type = saved.get("type", type(base).__name__)
    if saved_type != type(base).__name__:
        raise ValueError(
            f"state_dict['base'] was saved from a {show(saved_type)} base, but this "
            f"scheduler's base is a {type(base).__name__}: its state would not fit"
        )
    last = base_state.get("_last_lr")
    if last is not None and (not isinstance(last, Sequence) or len(last) != count):
        raise ValueError(
            f"state_dict['base']['state_dict']['_last_lr'] must hold one lr per param "
            f"group ({count}), got {show(last)}"
        )
    name = "state_dict['base']['reference']"
    if isinstance(reference, (str, bytes)) or not isinstance(reference, Sequence):
        raise TypeError(f"{name} must be a list, one lr per param group, got {got(reference)}")
    if len(reference) != count:
        raise ValueError(f"{name} holds {len(reference)} lrs but the optimizer has {count} groups")
    checked = tuple(check_non_negative(f"{name}[{i}]", r) for i, r in enumerate(reference))
    for i, r in enumerate(checked):
        if not r > 0.0:
            raise ValueError(f"{name}[{i}] must be > 0, got {r!r}")
    # torch's load_state_dict pops and restores keys of the dict it is given: a copy.
    return dict(base_state), checked


def _read_reference(groups: list[dict[str, Any]], default_to_lr: bool = False) -> tuple[float, ...]:
    """Each group's ``initial_lr``, what torch's schedulers scale: the base's reference.

    `default_to_lr`: the lr where no ``initial_lr`` is set yet, as a LambdaLR about
    to be built will set it (checked first, so an error leaves the groups as they were).
    """
    reference = []
    for index, group in enumerate(groups):
        if default_to_lr and "initial_lr" not in group:
            group = {"initial_lr": group.get("lr")}
        if "initial_lr" not in group:
            raise ValueError(
                f"optimizer.param_groups[{index}] has no 'initial_lr', which a torch "
                "scheduler sets: build the base schedule on this optimizer first"
            )
        value = _to_lr(index, group["initial_lr"], check=True, key="initial_lr")
        if not value > 0.0:
            raise ValueError(
                f"optimizer.param_groups[{index}]['initial_lr'] must be > 0 under a base "
                f"schedule (the plateau scales the base by lr / initial_lr), got {value!r}"
            )
        reference.append(value)
    return tuple(reference)


def _check_mode(what: str, mode: object, current: str, best: float) -> None:
    if not isinstance(mode, str):
        raise TypeError(f"{what} 'mode' not a str: {got(mode)}")
    if mode != current:
        raise ValueError(
            f"{what} mode={show(mode)} but this scheduler has mode={current!r}; its best "
            f"({best!r}) cannot carry over: build a new scheduler to change the mode"
        )


def _check_unchanged(name: str, value: object, current: object, instead: str) -> None:
    """Torch's derived attributes: a write of the current value (a restore) is accepted."""
    try:
        same = bool(value == current)
    except Exception:  # an array's == is elementwise: not the current value
        same = False
    if not same:
        raise ValueError(
            f"'{name}' follows scheduler.config and can only be assigned its current value "
            f"{current!r}, got {show(value)}; to change the schedule, assign {instead}"
        )
