"""The torch adapter's ``capturable=True`` mode: a plateau step that never reads the device.

``ReduceLROnPlateau(optimizer, ..., capturable=True)`` builds a
:class:`CapturableReduceLROnPlateau`. Its param groups' lrs are tensors; its state
lives in tensors on their device; ``step(metric)`` with a 0-d tensor runs the
core's rules (:func:`plateau._core.advance`) on tensors through :data:`TensorOps`,
so it reads nothing back to the host and runs inside ``torch.compile(fullgraph=True)``
and a captured CUDA graph. :attr:`state` syncs once when read; the checkpoint is
the default mode's, so each mode resumes the other. See docs/torch.md, "capturable".

Why the state is held in (1,)-shaped tensors: torch 2.13's compiler drops an
in-place write to a 0-d float64 tensor held on an object, and writes a (1,)-shaped
one. A group's lr is written through a (1,)-shaped view for the same reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple, TypeGuard

import torch

from plateau import Decision, PlateauConfig, PlateauState
from plateau._checks import got, to_metric
from plateau._core import advance
from plateau.adapters._shared import record_stored
from plateau.adapters.torch import ReduceLROnPlateau

__all__ = ["CapturableReduceLROnPlateau", "TensorOps", "capturable_class"]

_POSITION = {decision: i for i, decision in enumerate(Decision)}


class TensorOps:
    """:class:`plateau._ops.Ops` on torch tensors of one dtype and device: a select is ``where``.

    Example:
        >>> ops = TensorOps(torch.float64, torch.device("cpu"))
        >>> ops.select(torch.tensor(True), (torch.tensor(1.0), ()), (torch.tensor(2.0), ()))
        (tensor(1.), ())
    """

    no_average = math.nan

    def __init__(self, dtype: torch.dtype, device: torch.device) -> None:
        self.dtype, self.device = dtype, device

    def select(self, condition: Any, if_true: Any, if_false: Any) -> Any:
        if isinstance(if_true, tuple):
            return tuple(map(partial(self.select, condition), if_true, if_false))
        return if_true if if_true is if_false else torch.where(condition, if_true, if_false)

    def cond(
        self, condition: Any, if_true: Callable[..., Any], if_false: Callable[..., Any], *args: Any
    ) -> Any:
        return self.select(condition, if_true(*args), if_false(*args))

    def maximum(self, a: Any, b: Any) -> Any:
        return torch.maximum(a, b)

    def multiply(self, a: Any, b: Any) -> Any:  # torch keeps a * b + c two roundings (tested)
        return a * b

    def divide(self, a: Any, b: Any) -> Any:
        return a / b

    def isfinite(self, value: Any) -> Any:
        return torch.isfinite(value)

    def each(self, function: Callable[..., Any], *columns: Any) -> Any:
        return function(*map(self._column, columns))

    def any_differ(self, a: Any, b: Any) -> Any:
        return (a != b).any()

    def decision(self, table: tuple[Decision, ...], index: Any = 0) -> Any:
        """The position of ``table[index]`` in Decision, a 0-d int64 tensor (fills only)."""
        code = self._full(_POSITION[table[0]], torch.int64)
        for i, decision in enumerate(table[1:], 1):
            code = torch.where(index == i, _POSITION[decision], code)
        return code

    def _column(self, column: Any) -> torch.Tensor:
        """A per-lr column (config.min_lrs) as a tensor, by fills: no host-to-device copy."""
        if isinstance(column, torch.Tensor):
            return column
        return torch.stack([self._full(value, self.dtype) for value in column])

    def _full(self, value: float, dtype: torch.dtype) -> torch.Tensor:
        return torch.full((), value, dtype=dtype, device=self.device)


class _Tensors(NamedTuple):
    """The state's fields on the device (PlateauState's order), each (1,)-shaped but the lrs'."""

    lrs: torch.Tensor
    best: torch.Tensor
    num_bad_epochs: torch.Tensor
    cooldown_counter: torch.Tensor
    last_epoch: torch.Tensor
    decision: torch.Tensor
    num_reductions: torch.Tensor
    num_accumulated: torch.Tensor
    accumulated_mean: torch.Tensor
    smoothed: torch.Tensor
    base_lrs: torch.Tensor
    warmup_epoch: torch.Tensor  # the state's dtype (the ramp's k / W); inf: no warmup
    window: tuple[()] = ()


_PER_LR = (_Tensors._fields.index("lrs"), _Tensors._fields.index("base_lrs"))
_COUNTERS = (
    "num_bad_epochs",
    "cooldown_counter",
    "last_epoch",
    "num_reductions",
    "num_accumulated",
)


def capturable_class(cls: type, capturable: object, state_dtype: object) -> type:
    """The class ``ReduceLROnPlateau(..., capturable=, state_dtype=)`` builds, or a clear error."""
    if not isinstance(capturable, bool):
        raise TypeError(f"'capturable' must be a bool, got {got(capturable)}")
    if not capturable:
        raise ValueError(f"'state_dtype' goes with capturable=True, got {got(state_dtype)}")
    if cls is not ReduceLROnPlateau:
        raise TypeError(
            f"'capturable=True' builds plateau's own capturable ReduceLROnPlateau; the "
            f"subclass {cls.__name__} cannot be built with it"
        )
    return CapturableReduceLROnPlateau


class CapturableReduceLROnPlateau(ReduceLROnPlateau):
    """:class:`plateau.adapters.torch.ReduceLROnPlateau` with ``capturable=True``.

    Every group's lr must be a one-element floating tensor, all on one device;
    ``state_dtype`` (torch.float64 by default, or torch.float32) is the dtype of the
    state's floats. A float64 state writes the default mode's lrs bit for bit.

    Example:
        >>> import torch
        >>> params = [torch.zeros(1, requires_grad=True)]
        >>> optimizer = torch.optim.SGD(params, lr=torch.tensor(1.0))
        >>> scheduler = ReduceLROnPlateau(optimizer, patience=0, capturable=True)
        >>> for loss in [0.5, 0.6]:
        ...     scheduler.step(torch.tensor(loss))
        >>> optimizer.param_groups[0]["lr"], scheduler.state.decision
        (tensor(0.1000), <Decision.REDUCED: 'reduced'>)
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *args: Any,
        capturable: bool = True,  # ReduceLROnPlateau.__new__ chose this class for it
        state_dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> None:
        self._dtype = torch.float64 if state_dtype is None else state_dtype
        if self._dtype not in (torch.float64, torch.float32):
            raise ValueError(
                f"'state_dtype' must be torch.float64 or torch.float32, got {got(state_dtype)}"
            )
        for name, allowed in _HOST_ARGUMENTS.items():
            if kwargs.get(name, allowed[0]) not in allowed:
                raise ValueError(
                    f"'{name}' needs the host at every step; capturable=True takes {name} "
                    f"in {allowed}, got {got(kwargs[name])}"
                )
        given = kwargs.get("config")
        if not isinstance(given, PlateauConfig):  # the settings' (PlateauConfig checks them)
            given = PlateauConfig(**{k: v for k, v in kwargs.items() if k in _HOST_RULES})
        _check_rules(given)
        self._tensors: _Tensors | None = None
        self._device = _lr_device(optimizer)
        self._ops = TensorOps(self._dtype, self._device)
        self._host_state: PlateauState | None = None
        super().__init__(optimizer, *args, **kwargs)

    @property
    def state(self) -> PlateauState:
        """The decision record as a :class:`plateau.PlateauState`: one sync, then kept until a step.

        Assigning one writes it into the device state, in place (a captured graph
        keeps reading the same tensors).
        """
        if self._host_state is None:
            self._host_state = self._to_host(self.config)
        return self._host_state

    @state.setter
    def state(self, state: PlateauState) -> None:
        if not isinstance(state, PlateauState):
            raise TypeError(f"'state' must be a plateau.PlateauState, got {got(state)}")
        new = self._to_tensors(state)
        if self._tensors is None:  # from ReduceLROnPlateau.__init__
            self._tensors = new
        elif len(state.lrs) != len(self._tensors.lrs):
            raise ValueError(
                f"'state' has {len(state.lrs)} lrs but this scheduler {len(self._tensors.lrs)}"
            )
        else:  # in place: a compiled step or a captured graph keeps reading these tensors
            for held, value in zip(self._tensors[:-1], new[:-1], strict=True):
                held.copy_(value)
        self._host_state = None

    def step(  # type: ignore[override,unused-ignore]
        self, metrics: torch.Tensor | float | None = None, epoch: int | None = None
    ) -> None:
        """One step on the device: the core's rules on tensors, the groups' lrs written in place.

        `metrics` is a one-element real tensor (a Python number works, but a
        compiled step recompiles for each value). Nothing is read back to the host.
        """
        if metrics is None or epoch is not None:
            raise TypeError(
                "capturable=True: step(metric) takes the metric alone, a one-element tensor"
            )
        groups, config, held = self._optimizer.param_groups, self.config, self._tensors
        assert held is not None
        _check_rules(config)  # a config assigned since
        if len(groups) != len(held.lrs):
            raise ValueError(
                f"the optimizer has {len(groups)} param groups but this capturable scheduler "
                f"was built for {len(held.lrs)}; a group cannot join it mid-run"
            )
        lrs = [group["lr"] for group in groups]
        if not all(map(_is_tensor_lr, lrs)):  # replaced since (a float set by hand)
            _lr_device(self._optimizer)  # raises, naming the group
        read = torch.stack([lr.reshape(()) for lr in lrs]).to(self._dtype)
        views: list[Any] = [t if i in _PER_LR else t.reshape(()) for i, t in enumerate(held[:-1])]
        state = _Tensors(*views)  # 0-d views of the scalars, for the rules
        warming = state.warmup_epoch < config.warmup_epochs
        value, base = self._metric(metrics), state.base_lrs
        fields = advance(self._ops, config, state, value, read, state.smoothed, warming, base)
        new = fields[0]
        # Each lr as its group stores it (a float32 lr rounds): the state records that,
        # and a cut that stored nothing new is AT_FLOOR, as in the default mode.
        stored = torch.stack([new[i].to(lr.dtype).to(self._dtype) for i, lr in enumerate(lrs)])
        decision, reductions = record_stored(self._ops, fields[5], fields[6], read, stored)
        for i, lr in enumerate(lrs):
            lr.view(1).copy_(new[i].view(1))
        # A warmup that ends (its last step, or a config with warmup_epochs <= k) is over
        # for good, as step() clears base_lrs: k = inf, so a later config cannot resume it.
        done = torch.where(fields[11] < config.warmup_epochs, fields[11], math.inf)
        fields = (stored, *fields[1:5], decision, reductions, *fields[7:11], done, fields[12])
        for target, old, value in zip(held[:-1], state[:-1], fields[:-1], strict=True):
            if value is old:  # unchanged (and a view of target)
                continue
            if isinstance(value, torch.Tensor):
                target.copy_(value)
            else:  # a Python number the rules wrote as is (0, 0.0, NaN)
                target.fill_(value)
        self._host_state = None

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """Each group's lr after the last step, as a new tensor (read without a sync)."""
        return [group["lr"].detach().clone() for group in self._optimizer.param_groups]

    def _metric(self, metric: object) -> torch.Tensor:
        """The metric as a 0-d tensor of the state's dtype on its device."""
        if isinstance(metric, torch.Tensor) and metric.numel() == 1:
            if metric.dtype.is_complex or metric.dtype == torch.bool:
                raise TypeError(f"'metric' must be a single real number, got {got(metric)}")
            return metric.detach().reshape(()).to(self._device, self._dtype)
        return torch.full((), to_metric(metric), dtype=self._dtype, device=self._device)

    def _to_tensors(self, state: PlateauState) -> _Tensors:
        """`state` on the device; with no warmup in progress, warmup_epoch is inf."""
        over = state.base_lrs is None  # no warmup in progress: k = inf is never < W
        ints = {name: getattr(state, name) for name in _COUNTERS}
        ints["decision"] = _POSITION[state.decision]
        floats = {
            "lrs": state.lrs,
            "best": state.best,
            "accumulated_mean": state.accumulated_mean,
            "smoothed": math.nan if state.smoothed is None else state.smoothed,
            "base_lrs": state.lrs if over else state.base_lrs,
            "warmup_epoch": math.inf if over else state.warmup_epoch,
        }

        def put(value: Any, dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor(value, dtype=dtype, device=self._device).reshape(-1)

        made: dict[str, Any] = {name: put(value, torch.int64) for name, value in ints.items()}
        made.update({name: put(value, self._dtype) for name, value in floats.items()})
        return _Tensors(**made)

    def _to_host(self, config: PlateauConfig) -> PlateauState:
        """The device state as a PlateauState, read in one transfer."""
        held = self._tensors
        assert held is not None
        count = len(held.lrs)
        values = torch.cat([t.to(torch.float64) for t in held[:-1]]).tolist()
        lrs, rest = values[:count], values[count:]
        (best, bad, cooling, epoch, decision, reductions, accumulated, mean, smoothed) = rest[:9]
        base, done = rest[9 : 9 + count], rest[-1]
        warming = done < config.warmup_epochs  # else the warmup is over (inf: none)
        return PlateauState(
            lrs=lrs,
            best=best,
            num_bad_epochs=int(bad),
            cooldown_counter=int(cooling),
            last_epoch=int(epoch),
            decision=list(Decision)[int(decision)],
            num_reductions=int(reductions),
            num_accumulated=int(accumulated),
            accumulated_mean=mean,
            smoothed=None if smoothed != smoothed else smoothed,
            base_lrs=base if warming else None,
            warmup_epoch=int(done) if warming else 0,
        )


# What a step would need the host for: arguments, and config fields (with what they may be).
# (The repeat guard is off: a replayed graph runs no hook; on_repeat="warn" does not warn.)
_HOST_ARGUMENTS: dict[str, tuple[object, ...]] = {
    "sync_metric": (False,),
    "restore_best": (False,),
    "base": (None,),
    "verbose": (False,),
    "on_repeat": ("warn", "allow"),
}
_HOST_RULES = {"detector": ("best",), "on_nonfinite": ("bad", "skip")}


def _check_rules(config: PlateauConfig) -> None:
    """Refuse a config whose rules need the host: a trend detector, on_nonfinite='raise'."""
    for name, allowed in _HOST_RULES.items():
        if (value := getattr(config, name)) not in allowed:
            raise ValueError(
                f"'{name}' needs the host at every step; capturable=True takes {name} "
                f"in {allowed}, got {value!r}"
            )


def _lr_device(optimizer: object) -> torch.device:
    """The device of the groups' lrs, each a one-element floating tensor (named if not)."""
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not groups:
        return torch.device("cpu")  # ReduceLROnPlateau.__init__ names the bad optimizer
    devices = set()
    for i, group in enumerate(groups):
        if not _is_tensor_lr(lr := group.get("lr")):
            raise TypeError(
                f"optimizer.param_groups[{i}]['lr'] must be a one-element floating tensor "
                f"under capturable=True (lr=torch.tensor(0.01)), got {got(lr)}"
            )
        devices.add(lr.device)
    if len(devices) > 1:
        raise ValueError(
            f"the param groups' lrs must be on one device under capturable=True, got "
            f"{sorted(map(str, devices))}"
        )
    return devices.pop()


def _is_tensor_lr(lr: object) -> TypeGuard[torch.Tensor]:
    """Whether a group's `lr` is one capturable=True writes in place: a one-element float tensor."""
    return isinstance(lr, torch.Tensor) and lr.numel() == 1 and lr.dtype.is_floating_point
