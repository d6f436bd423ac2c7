"""The torch adapter's base schedules and param-group lr access (see :mod:`plateau.adapters.torch`).

A base schedule (``base=``) is a torch ``LRScheduler`` the plateau scales; :class:`Base`
holds it and its checks. The helpers read and write the groups' lrs as torch does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from torch.optim.lr_scheduler import ReduceLROnPlateau as _TorchReduceLROnPlateau

import plateau
from plateau import PlateauState, _checks
from plateau._checks import got, show, show_keys
from plateau.adapters._shared import warn

Groups: TypeAlias = list[dict[str, Any]]
_BASE_KEYS = ["reference", "state_dict", "type"]  # a checkpoint's "base" entry


class Base:
    """A base schedule the plateau scales: everything ``base=`` holds, and its checks.

    The plateau's own lrs are at the base's reference, each group's ``initial_lr``;
    the groups get :func:`plateau.scale_base` of the base's lrs ("Base schedules" in
    ``plateau._core``). The base steps from its own lrs, restored into the groups
    first: a chainable scheduler computes from the groups' (pytorch#82859).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, base: Any, with_metric: bool) -> None:
        groups, name = optimizer.param_groups, type(base).__name__
        if isinstance(base, _TorchReduceLROnPlateau):
            raise TypeError(
                f"'base' must be a schedule the plateau scales (CosineAnnealingLR, an lr_lambda, "
                f"...), got a {name}: pass its arguments to this scheduler instead"
            )
        if not isinstance(base, LRScheduler):
            lambdas = _lambdas(base, len(groups))
            _reference(groups)  # refused before LambdaLR writes the groups
            base = LambdaLR(optimizer, lambdas)
        self.schedule: LRScheduler = base
        if self.schedule.optimizer is not optimizer:
            raise ValueError(
                f"'base' must be a scheduler on this optimizer, got a {name} on another"
            )
        self.with_metric, self.reference = with_metric, _reference(groups)
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
            try:
                for i, lr in enumerate(self.last()):
                    write(groups, i, lr)
                self.schedule.step()
            except BaseException:
                for i, lr in enumerate(self.written):  # the groups as they were
                    write(groups, i, lr)
                raise
        lrs = plateau.scale_base(state, self.last(), self.reference)
        self.written = tuple(write(groups, i, lr) for i, lr in enumerate(lrs))
        self.steps = self.schedule.last_epoch

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's ``base`` entry."""
        name, reference = type(self.schedule).__name__, [*self.reference]
        return {"state_dict": self.schedule.state_dict(), "reference": reference, "type": name}

    def load(self, entry: object, state: PlateauState) -> None:
        """Load a checkpoint's ``base`` entry for `state`, checked before it changes anything."""
        name, count, keys = type(self.schedule).__name__, len(self.reference), _BASE_KEYS
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
        try:
            plateau.scale_base(state, last, reference)  # checks each of them
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"state_dict['base']: {exc}") from None
        # torch's load_state_dict pops and restores keys of the dict it is given: a copy.
        self.schedule.load_state_dict(dict(base_state))
        self.reference = tuple(float(r) for r in reference)


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


def write(groups: Groups, index: int, lr: float) -> float:
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
