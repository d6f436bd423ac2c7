"""A drop-in torch ``ReduceLROnPlateau`` whose every decision is made by :func:`plateau.step`.

Change one import line and keep the rest of the training loop::

    from plateau.adapters.torch import ReduceLROnPlateau

The class subclasses torch's, so code that recognises a plateau scheduler with
``isinstance`` (Lightning, transformers' Trainer, hand-written loops) passes it
the metric. It adds what torch's lacks: a strict-JSON state, a constructor
config that wins over a stale checkpoint, the decision of every step
(``scheduler.state.decision``), a non-finite policy, and ``sync_metric=True`` for
identical decisions on every rank of a distributed job (:func:`mean_over_ranks`,
which a custom loop can call too).

This module only translates. ``scheduler.config`` and ``scheduler.state`` are the
only schedule data, and torch's attribute names (``best``, ``num_bad_epochs``,
``patience``, ...) are read-only views of them. The learning rates are the
optimizer's (the core's ownership rule): each step reads ``param_groups``, hands
them to :func:`plateau.step` and writes back the ones that changed.

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
from collections.abc import Mapping, Sequence
from typing import Any, Literal, SupportsFloat

import attrs

import plateau
from plateau import PlateauConfig, PlateauState
from plateau._checks import check_real, got, to_metric
from plateau._core import changed

try:
    import torch
    import torch.distributed as dist
    from torch.optim.lr_scheduler import ReduceLROnPlateau as _TorchReduceLROnPlateau
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ModuleNotFoundError(
        "plateau.adapters.torch requires torch; install 'plateau-lr[torch]'", name="torch"
    ) from exc

__all__ = ["ReduceLROnPlateau", "mean_over_ranks"]

_core_step = plateau.step  # a global: step() may run once per batch

# Every key torch 2.6-2.13 writes in ReduceLROnPlateau.state_dict(), plus "verbose"
# (torch < 2.7); "default_min_lr" is absent before 2.6.
_TORCH_KEYS = frozenset(
    {
        "factor", "default_min_lr", "min_lrs", "patience", "cooldown", "eps", "last_epoch",
        "_last_lr", "mode_worse", "mode", "threshold", "threshold_mode", "best",
        "cooldown_counter", "num_bad_epochs", "verbose",
    }
)  # fmt: skip
_TORCH_REQUIRED = frozenset({"mode", "best", "num_bad_epochs", "cooldown_counter", "last_epoch"})


class _View:
    """Torch's name for a config or state field: readable, and assignable only by replacing."""

    def __init__(self, source: Literal["config", "state"], field: str) -> None:
        self.source, self.field = source, field

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        return self if obj is None else getattr(getattr(obj, self.source), self.field)

    def __set__(self, obj: object, value: object) -> None:
        raise AttributeError(
            f"'{self.name}' is read from scheduler.{self.source}; to change it, replace "
            f"the {self.source}: scheduler.{self.source} = "
            f"attrs.evolve(scheduler.{self.source}, {self.field}={value!r})"
        )


class ReduceLROnPlateau(_TorchReduceLROnPlateau):  # type: ignore[misc, unused-ignore]
    """Torch's ReduceLROnPlateau: same arguments, same lrs, decided by :func:`plateau.step`.

    torch's ``__init__`` is not called: it would keep a second copy of the config
    and counters, which would go stale. Torch's attribute names (``mode``,
    ``factor``, ``patience``, ``threshold``, ``threshold_mode``, ``cooldown``,
    ``eps``, ``min_lrs``, ``default_min_lr``, ``mode_worse``, ``best``,
    ``num_bad_epochs``, ``cooldown_counter``, ``last_epoch``, ``in_cooldown``) read
    :attr:`config` and :attr:`state`; ``optimizer`` and ``get_last_lr()`` are torch's.

    Args:
        optimizer: The ``torch.optim.Optimizer`` whose param groups' lrs are scheduled.
        mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps:
            torch's arguments and defaults, validated by :class:`plateau.PlateauConfig`
            (``min_lr``: a scalar, which extends to groups added later, or one per group).
        on_nonfinite: What a NaN or infinite metric does: "bad" (torch's), "raise", "skip".
        sync_metric: Average the metric over all ranks (:func:`mean_over_ranks`) before
            each step, so every rank takes the same decision. Every rank must then call
            :meth:`step` together; outside a process group nothing distributed is touched.

    Attributes:
        config: The :class:`plateau.PlateauConfig`; replaceable between steps by one
            with the same ``mode`` (and, if per group, one ``min_lr`` per param group).
        state: The :class:`plateau.PlateauState` after the last step.

    Raises:
        TypeError: `optimizer` is not a ``torch.optim.Optimizer``, a param group's lr is
            not a single real number, or an argument has the wrong type.
        ValueError: an argument has a bad value, or ``min_lr`` does not fit the groups.

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
    """

    _config: PlateauConfig
    state: PlateauState
    sync_metric: bool

    mode = _View("config", "mode")
    factor = _View("config", "factor")
    patience = _View("config", "patience")
    threshold = _View("config", "threshold")
    threshold_mode = _View("config", "threshold_mode")
    cooldown = _View("config", "cooldown")
    eps = _View("config", "eps")
    best = _View("state", "best")
    num_bad_epochs = _View("state", "num_bad_epochs")
    cooldown_counter = _View("state", "cooldown_counter")
    last_epoch = _View("state", "last_epoch")

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
        on_nonfinite: Literal["bad", "raise", "skip"] = "bad",
        sync_metric: bool = False,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            # The type alone: the repr of a model passed by mistake runs to pages.
            raise TypeError(
                f"'optimizer' must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if not isinstance(sync_metric, bool):
            raise TypeError(f"'sync_metric' must be a bool, got {got(sync_metric)}")
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
        )
        self.state = plateau.init(_read_lrs(optimizer.param_groups), config)
        self._config = config
        self.optimizer = optimizer
        self.sync_metric = sync_metric

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
        """Torch's ``min_lrs``: the floor of each param group, read from the config."""
        return list(self._config.min_lrs(len(self.state.lrs)))

    @min_lrs.setter
    def min_lrs(self, value: list[float]) -> None:
        raise _read_only("min_lrs", value)

    @property
    def default_min_lr(self) -> float | None:
        """Torch's ``default_min_lr``: the scalar ``min_lr``, or None when it is per group."""
        min_lr = self._config.min_lr
        return None if isinstance(min_lr, tuple) else min_lr

    @default_min_lr.setter
    def default_min_lr(self, value: float | None) -> None:
        raise _read_only("default_min_lr", value)

    @property
    def mode_worse(self) -> float:
        """Torch's ``mode_worse``: the initial best, inf in min mode and -inf in max mode."""
        return math.inf if self._config.mode == "min" else -math.inf

    @mode_worse.setter
    def mode_worse(self, value: float) -> None:
        raise AttributeError("'mode_worse' follows scheduler.config.mode, which cannot change")

    @property
    def in_cooldown(self) -> bool:
        """Torch's ``in_cooldown``: whether bad epochs are currently not counted."""
        return self.state.cooldown_counter > 0

    def step(self, metrics: SupportsFloat, epoch: int | None = None) -> None:  # type: ignore[override, unused-ignore]
        """One epoch: read the param groups' lrs, :func:`plateau.step`, write back changes.

        Args:
            metrics: The monitored value: a float, an int or a one-element tensor.
            epoch: Deprecated, as in torch: with a warning, it only sets ``state.last_epoch``.

        Raises:
            TypeError: `metrics` or a param group's lr is not a single real number.
            ValueError: what :func:`plateau.step` refuses (a non-finite metric with
                ``on_nonfinite="raise"``, an unusable lr set by hand, a per-group
                ``min_lr`` that no longer fits), or a negative `epoch`. Nothing
                changes on error.
        """
        if self.sync_metric:
            metrics = mean_over_ranks(metrics)
        groups = self.optimizer.param_groups
        lr = groups[0].get("lr") if len(groups) == 1 else None
        read = (lr,) if type(lr) is float else _read_lrs(groups)
        state, lrs = _core_step(self.state, metrics, self._config, read)
        if epoch is not None:
            warnings.warn(
                "The epoch argument of ReduceLROnPlateau.step() is deprecated (as in "
                "torch); it only sets state.last_epoch",
                UserWarning,
                stacklevel=2,
            )
            state = attrs.evolve(state, last_epoch=epoch)
        filled = False
        for index, new in changed(read, lrs):
            group = groups[index]
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(new)  # in place, as torch: dtype, device, identity kept
                filled = True
            else:
                group["lr"] = new
        # A float32 tensor rounds the lr it is given: the state records what it holds.
        self.state = attrs.evolve(state, lrs=_read_lrs(groups)) if filled else state

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """The lr of each param group after the last step, as torch gives it.

        The values are ``state.lrs``; a group whose lr is a tensor gets a new tensor of
        the same dtype and device (never an alias of the group's).
        """
        groups = self.optimizer.param_groups
        last: list[float | torch.Tensor] = []
        for i, lr in enumerate(self.state.lrs):
            held = groups[i]["lr"] if i < len(groups) else None
            if isinstance(held, torch.Tensor):
                last.append(held.detach().new_full(held.shape, lr))
            else:
                last.append(lr)
        return last

    def state_dict(self) -> dict[str, Any]:
        """``{"config": ..., "state": ...}``, plain values: ``json.dumps(allow_nan=False)`` passes.

        Example:
            >>> import json, torch
            >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
            >>> scheduler = ReduceLROnPlateau(opt)
            >>> saved = json.dumps(scheduler.state_dict(), allow_nan=False)
            >>> sorted(json.loads(saved)), json.loads(saved)["state"]["best"]
            (['config', 'state'], 'inf')
            >>> scheduler.load_state_dict(json.loads(saved))
        """
        return {"config": self.config.to_dict(), "state": self.state.to_dict()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`'s output, or from torch's own ReduceLROnPlateau's.

        The constructor's config wins, so a run resumed with a new ``patience`` or
        ``factor`` uses the new one (torch's class silently takes the checkpoint's). A
        plateau checkpoint's config is validated, then only its ``mode`` is compared; a
        torch checkpoint's settings are not validated (torch accepts values
        PlateauConfig rejects, say ``factor=0``), only its ``mode`` is compared. The
        progress is restored and validated by :class:`plateau.PlateauState`: best,
        both counters, last_epoch and, from a plateau checkpoint, the lrs (from a
        torch one, the optimizer's; ``decision`` reads START until the next step).

        Raises:
            TypeError: `state_dict` is not a mapping, or a field has the wrong type.
            ValueError: neither format, a bad value, a checkpoint whose mode differs
                from this scheduler's, or whose lr count is not the param groups'.
                Nothing changes on error.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"'state_dict' must be a dict, got {type(state_dict).__name__}")
        keys = set(state_dict)
        groups = self.optimizer.param_groups
        if keys == {"config", "state"}:
            saved_mode: object = PlateauConfig.from_dict(state_dict["config"]).mode
            state = PlateauState.from_dict(state_dict["state"])
        elif _TORCH_REQUIRED <= keys <= _TORCH_KEYS:
            saved_mode = state_dict["mode"]
            fields = {key: state_dict[key] for key in _TORCH_REQUIRED - {"mode"}}
            state = PlateauState(lrs=_read_lrs(groups), **fields)
        else:
            raise ValueError(
                "'state_dict' must come from state_dict() of plateau's ReduceLROnPlateau "
                "(keys ['config', 'state']) or of torch's (keys including "
                f"{sorted(_TORCH_REQUIRED)}), got keys {sorted(map(str, keys))}"
            )
        _check_mode("the checkpoint was saved with", saved_mode, self._config.mode, state.best)
        if len(state.lrs) != len(groups):
            raise ValueError(
                f"the checkpoint holds {len(state.lrs)} lrs but the optimizer has "
                f"{len(groups)} param groups"
            )
        self._config.min_lrs(len(state.lrs))
        self.state = state


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
    return float(total.item()) / float(dist.get_world_size())


def _read_lrs(groups: list[dict[str, Any]]) -> tuple[float, ...]:
    """Each param group's lr as a float (a one-element tensor's value), or a TypeError."""
    return tuple(_to_lr(i, group.get("lr")) for i, group in enumerate(groups))


def _to_lr(index: int, lr: object) -> float:
    if type(lr) is float:
        return lr
    name = f"optimizer.param_groups[{index}]['lr']"
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1 or lr.dtype in (torch.bool, torch.complex64, torch.complex128):
            raise TypeError(
                f"{name} must be a real number or a one-element real tensor, got a "
                f"{lr.dtype} tensor of shape {tuple(lr.shape)}"
            )
        lr = lr.item()
    try:
        return check_real(name, lr)
    except TypeError:
        raise TypeError(
            f"{name} must be a real number or a one-element real tensor, got {got(lr)}"
        ) from None


def _check_mode(what: str, mode: object, current: str, best: float) -> None:
    if mode != current:
        raise ValueError(
            f"{what} mode={mode!r} but this scheduler has mode={current!r}; its best "
            f"({best!r}) cannot carry over: build a new scheduler to change the mode"
        )


def _read_only(name: str, value: object) -> AttributeError:
    return AttributeError(
        f"'{name}' is read from scheduler.config; to change it, replace the config: "
        f"scheduler.config = attrs.evolve(scheduler.config, min_lr={value!r})"
    )
