"""A drop-in torch ``ReduceLROnPlateau`` whose every decision is made by :func:`plateau.step`.

Change one import line and keep the rest of the training loop::

    from plateau.adapters.torch import ReduceLROnPlateau

The class subclasses torch's, so code that recognises a plateau scheduler with
``isinstance`` (Lightning, transformers' Trainer, hand-written loops) passes it
the metric. It adds what torch's lacks: a strict-JSON state, a constructor
config that wins over a stale checkpoint, the decision of every step
(``scheduler.state.decision``), a non-finite policy, and ``sync_metric=True`` for
identical decisions on every rank of a distributed job.

Where things live: ``scheduler.config`` (a :class:`plateau.PlateauConfig`) and
``scheduler.state`` (a :class:`plateau.PlateauState`) are the only schedule data;
torch's attribute names (``best``, ``num_bad_epochs``, ``patience``, ...) are
read-only views of them. The learning rates live in ``optimizer.param_groups``,
as in torch: each step reads them, so an lr set by hand or by another scheduler
is respected, and writes back the ones the core changed.

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
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal, SupportsFloat

import attrs

import plateau
from plateau import PlateauConfig, PlateauState
from plateau._checks import to_metric

try:
    import torch
    import torch.distributed as dist
    from torch.optim.lr_scheduler import ReduceLROnPlateau as _TorchReduceLROnPlateau
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ModuleNotFoundError(
        "plateau.adapters.torch requires torch; install 'plateau[torch]'", name="torch"
    ) from exc

__all__ = ["ReduceLROnPlateau"]

# A module global: step() runs per epoch or per batch, and an attribute lookup is not free.
_core_step = plateau.step

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
        self.source = source
        self.field = field

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, self.source), self.field)

    def __set__(self, obj: object, value: object) -> None:
        raise AttributeError(
            f"'{self.name}' is read from scheduler.{self.source}; to change it, replace "
            f"the {self.source}: scheduler.{self.source} = "
            f"attrs.evolve(scheduler.{self.source}, {self.field}={value!r})"
        )


class ReduceLROnPlateau(_TorchReduceLROnPlateau):
    """Torch's ReduceLROnPlateau: same arguments, same lrs, decided by :func:`plateau.step`.

    torch's ``__init__`` is not called: it would store a second copy of the
    config and counters that :attr:`config` and :attr:`state` already hold, and
    that copy would go stale. Torch's public attribute names (``mode``,
    ``factor``, ``patience``, ``threshold``, ``threshold_mode``, ``cooldown``,
    ``eps``, ``min_lrs``, ``default_min_lr``, ``mode_worse``, ``best``,
    ``num_bad_epochs``, ``cooldown_counter``, ``last_epoch``, ``in_cooldown``) are
    read-only views of them; ``optimizer`` is set (Lightning reads it) and
    ``get_last_lr()`` works as in torch.

    Args:
        optimizer: The ``torch.optim.Optimizer`` whose param groups' lrs are scheduled.
        mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps:
            torch's arguments and defaults, validated by :class:`plateau.PlateauConfig`
            (``min_lr`` is a scalar, which extends to param groups added later, or
            one value per param group).
        on_nonfinite: What a NaN or infinite metric does: "bad" (torch's behaviour),
            "raise" or "skip".
        sync_metric: Average the metric over all ranks before each step when
            ``torch.distributed`` is initialized, so every rank takes the same decision.
            The average is an all_reduce: every rank must call :meth:`step` together.
            Outside a process group nothing distributed is touched.

    Attributes:
        config: The :class:`plateau.PlateauConfig`. It may be replaced between steps
            (``scheduler.config = attrs.evolve(scheduler.config, patience=2)``) by one
            with the same ``mode`` and, if ``min_lr`` is per group, one value per
            param group.
        state: The :class:`plateau.PlateauState` after the last step; ``state.decision``
            says why the lr did or did not change.
        optimizer: The optimizer.
        sync_metric: As passed.

    Raises:
        TypeError: `optimizer` is not a ``torch.optim.Optimizer``, a param group's lr
            is not a single real number, or an argument has the wrong type.
        ValueError: an argument has a bad value, or ``min_lr`` is a sequence whose
            length is not the number of param groups.

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
            raise TypeError(
                f"'sync_metric' must be a bool, got {type(sync_metric).__name__}: {sync_metric!r}"
            )
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
        lrs = _read_lrs(optimizer.param_groups)
        try:
            self.state = plateau.init(lrs, config)
        except ValueError as exc:
            _check_min_lr_count(config, len(lrs))  # a count mismatch, told in param groups
            raise _unusable_lr(exc) from None
        self._config = config
        self.optimizer = optimizer
        self.sync_metric = sync_metric

    @property
    def config(self) -> PlateauConfig:
        """The :class:`plateau.PlateauConfig`; assigning one checks it against this run.

        Raises:
            TypeError: the new config is not a PlateauConfig.
            ValueError: its ``mode`` differs from the current one (``best`` would be
                meaningless), or its per-group ``min_lr`` does not have one value per
                param group. Nothing changes on error.
        """
        return self._config

    @config.setter
    def config(self, config: PlateauConfig) -> None:
        if not isinstance(config, PlateauConfig):
            raise TypeError(
                f"'config' must be a plateau.PlateauConfig, got {type(config).__name__}: "
                f"{config!r}; build one with attrs.evolve(scheduler.config, ...)"
            )
        if config.mode != self._config.mode:
            raise ValueError(
                f"'config' has mode={config.mode!r} but this scheduler has "
                f"mode={self._config.mode!r}; its best ({self.state.best!r}) cannot carry "
                "over: build a new scheduler to change the mode"
            )
        _check_min_lr_count(config, len(self.optimizer.param_groups))
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
        raise AttributeError(
            "'mode_worse' follows scheduler.config.mode, which cannot change mid-run"
        )

    @property
    def in_cooldown(self) -> bool:
        """Torch's ``in_cooldown``: whether bad epochs are currently not counted."""
        return self.state.cooldown_counter > 0

    def step(self, metrics: SupportsFloat, epoch: int | None = None) -> None:  # type: ignore[override]
        """One epoch of the schedule: read the lrs, ask :func:`plateau.step`, write back changes.

        Args:
            metrics: The monitored value: a float, an int or a one-element tensor.
            epoch: Deprecated, as in torch: with a warning, it becomes
                ``state.last_epoch`` and changes nothing else.

        Raises:
            TypeError: `metrics` is not a single real number, a param group's lr is not
                one, or `epoch` is not an int.
            ValueError: a non-finite metric with ``on_nonfinite="raise"``, an lr set by
                hand to a negative or non-finite value, a per-group ``min_lr`` whose
                length no longer matches the param groups, or a negative `epoch`.
                Nothing changes on error.
        """
        if self.sync_metric:
            metrics = _mean_over_ranks(metrics)
        groups = self.optimizer.param_groups
        # The common case, one param group holding a float, is read without a list.
        try:
            lr = groups[0]["lr"] if len(groups) == 1 else None
        except KeyError:
            lr = None  # _read_lrs names the group
        lrs = (lr,) if type(lr) is float else _read_lrs(groups)
        state = self.state
        old = state.lrs
        if lrs != old:
            state = self._adopt(lrs)
            old = state.lrs
        config = self._config
        try:
            new_state, new_lrs = _core_step(state, metrics, config)
        except ValueError:
            _check_min_lr_count(config, len(old))  # a count mismatch, told in param groups
            raise
        if epoch is not None:
            warnings.warn(
                "The epoch argument of ReduceLROnPlateau.step() is deprecated (as in "
                "torch); it only sets state.last_epoch",
                UserWarning,
                stacklevel=2,
            )
            new_state = attrs.evolve(new_state, last_epoch=epoch)
        # At the floor the core returns equal lrs in a new tuple: nothing to write.
        if new_lrs is not old and new_lrs != old:
            new_state = _write_lrs(groups, old, new_state)
        self.state = new_state

    def _adopt(self, lrs: tuple[float, ...]) -> PlateauState:
        """The state with the optimizer's lrs: set by hand or elsewhere, or a group added."""
        try:
            return attrs.evolve(self.state, lrs=lrs)
        except ValueError as exc:
            raise _unusable_lr(exc) from None

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """The lr of each param group after the last step, as torch gives it.

        The values are ``state.lrs``; a group whose lr is a tensor gets a new tensor of
        the same dtype and device (never an alias of the group's). Built on demand:
        keeping torch's eager copy would cost as much as a whole step.
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
        ``factor`` uses the new one (torch's class silently takes the checkpoint's).
        A plateau checkpoint's config is validated (it is plateau's own format) and
        then ignored; a torch checkpoint's settings are ignored unvalidated, as a
        legitimate torch checkpoint may hold values PlateauConfig rejects (say
        ``factor=0``). Of either, only ``mode`` is compared with this scheduler's.
        Only the schedule's progress is restored, validated by
        :class:`plateau.PlateauState`: best, num_bad_epochs, cooldown_counter and
        last_epoch, plus plateau's lrs. From a torch checkpoint the lrs are the
        optimizer's, as with torch, and ``state.decision`` reads START until the
        next step.

        Raises:
            TypeError: `state_dict` is not a mapping, or a field has the wrong type.
            ValueError: neither format, a bad value, or a checkpoint whose mode differs
                from this scheduler's (its ``best`` would be meaningless).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"'state_dict' must be a dict, got {type(state_dict).__name__}")
        keys = set(state_dict)
        if keys == {"config", "state"}:
            saved_mode: object = PlateauConfig.from_dict(state_dict["config"]).mode
            state = PlateauState.from_dict(state_dict["state"])
        elif _TORCH_REQUIRED <= keys <= _TORCH_KEYS:
            saved_mode = state_dict["mode"]
            state = PlateauState(
                lrs=_read_lrs(self.optimizer.param_groups),
                best=state_dict["best"],
                num_bad_epochs=state_dict["num_bad_epochs"],
                cooldown_counter=state_dict["cooldown_counter"],
                last_epoch=state_dict["last_epoch"],
            )
        else:
            raise ValueError(
                "'state_dict' must come from state_dict() of plateau's ReduceLROnPlateau "
                "(keys ['config', 'state']) or of torch's (keys including "
                f"{sorted(_TORCH_REQUIRED)}), got keys {sorted(map(str, keys))}"
            )
        if saved_mode != self._config.mode:
            raise ValueError(
                f"the checkpoint was saved with mode={saved_mode!r} but this scheduler has "
                f"mode={self._config.mode!r}; its best ({state.best!r}) cannot carry over"
            )
        _check_min_lr_count(self._config, len(state.lrs))
        self.state = state


def _read_lrs(groups: list[dict[str, Any]]) -> tuple[float, ...]:
    """Each param group's lr as a float, or a TypeError naming the group."""
    lrs: list[float] = []
    for group in groups:
        lr = group.get("lr")
        lrs.append(lr if type(lr) is float else _to_lr(len(lrs), lr))
    return tuple(lrs)


def _to_lr(index: int, lr: object) -> float:
    """A param group's lr as a float, if it is a real number or a one-element tensor."""
    value = lr
    if isinstance(lr, torch.Tensor):
        # item() gives a float, int, bool or complex, as the dtype is.
        value = lr.item() if lr.numel() == 1 else None
    if type(value) is float:
        return value
    # float() alone would take "0.5" and True.
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(lr, torch.Tensor):
        got = f"a {lr.dtype} tensor of shape {tuple(lr.shape)}"
    else:
        got = f"{type(lr).__name__}: {lr!r}"
    raise TypeError(
        f"optimizer.param_groups[{index}]['lr'] must be a real number or a one-element "
        f"real tensor, got {got}"
    )


def _write_lrs(
    groups: list[dict[str, Any]], old: tuple[float, ...], state: PlateauState
) -> PlateauState:
    """Write the lrs the core changed; return `state` with the lrs as the groups now hold them.

    A tensor lr is filled in place (its dtype, device and identity kept, as torch
    does). A float32 tensor rounds the value, and the state records the rounded
    value, so that the next step does not take it for an lr changed by hand.
    """
    filled = False
    for group, before, after in zip(groups, old, state.lrs, strict=True):
        if after != before:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(after)
                filled = True
            else:
                group["lr"] = after
    if not filled:
        return state
    held = _read_lrs(groups)
    return state if held == state.lrs else attrs.evolve(state, lrs=held)


def _check_min_lr_count(config: PlateauConfig, groups: int) -> None:
    """The core's min_lr count check, its error told in terms of param groups."""
    try:
        config.min_lrs(groups)
    except ValueError as exc:
        raise ValueError(
            f"{exc}, one per param group of the optimizer; pass one min_lr per param "
            "group, or a scalar min_lr, which extends to groups added later"
        ) from None


def _unusable_lr(exc: ValueError) -> ValueError:
    return ValueError(f"optimizer.param_groups hold an unusable lr: {exc}")


def _read_only(name: str, value: object) -> AttributeError:
    return AttributeError(
        f"'{name}' is read from scheduler.config; to change it, replace the config: "
        f"scheduler.config = attrs.evolve(scheduler.config, min_lr={value!r})"
    )


def _mean_over_ranks(metric: SupportsFloat) -> SupportsFloat:
    """The metric averaged over all ranks in float64, or `metric` itself outside a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return metric
    # Checked before the collective: a rank that failed after entering it would hang the others.
    value = to_metric(metric)
    # NCCL reduces only CUDA tensors; every other backend takes CPU ones.
    on_cuda = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_cuda else None
    total = torch.tensor(value, dtype=torch.float64, device=device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return float(total.item()) / dist.get_world_size()
