"""Reduce and roll back: on a cut, continue from the best step's weights and optimizer state.

:class:`BestCopy` keeps a copy of every parameter an optimizer trains and of its
per-parameter state (momentum buffers, Adam's moments and step count) whenever a
plateau step sets ``best``, and puts both back when a step cuts the lr. The
param groups (lrs and every other hyperparameter) are never touched, so the lr a
restore leaves is the new, cut one. What it costs: one copy of the parameters
and of the optimizer state, on their own devices or on the CPU.

``plateau.adapters.torch.ReduceLROnPlateau(..., restore_best=True)`` attaches a copy;
the Lightning and transformers callbacks attach one per optimizer.
Only what the optimizer trains is restored: a module's buffers (batch-norm
running statistics) are not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from plateau import Decision, PlateauState
from plateau._checks import got, within

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ModuleNotFoundError(
        "plateau.adapters.restore requires torch; install 'plateau-lr[torch]'", name="torch"
    ) from exc

__all__ = [
    "BestCopy",
    "RestoreBest",
    "best_copy_for",
    "check_restore_best",
    "checkpoint_entry",
    "from_checkpoint_entry",
]

RestoreBest = bool | Literal["cpu"]
"""What ``restore_best=`` takes: False, True (the copy on the parameters' devices) or "cpu"."""

_FORMAT = "plateau.BestCopy"
_VERSION = 1
_META_KEYS = {"format", "version", "best_epoch", "restored_at", "count", "values"}
_Number = (bool, int, float, str, type(None))


class BestCopy:
    """A copy of an optimizer's parameters and per-parameter state, kept at the best step.

    Args:
        optimizer: The optimizer whose parameters (every param group's) and state are copied.
        device: "params" keeps each copy on its tensor's own device (GPU memory for a
            GPU model); "cpu" keeps them in host memory.

    Attributes:
        best_epoch: The ``last_epoch`` of the state whose step kept the copy; None
            before the first improvement.
        restored_at: The ``last_epoch`` of the last step that restored the copy; None
            while none has.

    Raises:
        TypeError: `optimizer` is not a ``torch.optim.Optimizer``.
        ValueError: `device` is neither "params" nor "cpu".

    Example:
        >>> import torch
        >>> weight = torch.nn.Parameter(torch.ones(2))
        >>> copy = BestCopy(torch.optim.SGD([weight], lr=0.1, momentum=0.9))
        >>> copy.keep(epoch=3)
        >>> with torch.no_grad():
        ...     _ = weight.add_(5.0)
        >>> copy.restore()
        >>> weight.tolist(), copy.best_epoch
        ([1.0, 1.0], 3)
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, device: Literal["params", "cpu"] = "params"
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"'optimizer' must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if device not in ("params", "cpu"):
            raise ValueError(f"'device' must be 'params' or 'cpu', got {device!r}")
        self.optimizer = optimizer
        self.device = device
        self.best_epoch: int | None = None
        self.restored_at: int | None = None
        self._params: list[torch.Tensor] = []
        self._states: list[dict[str, Any]] = []

    def on_step(self, before: PlateauState, after: PlateauState) -> None:
        """Keep a copy when the step from `before` to `after` set best; restore it when it cut.

        A step that changed nothing (`after` is `before`: a repeated ``step()`` skipped,
        or a base schedule's own step) does neither.
        """
        if after is before:
            return
        if after.decision is Decision.IMPROVED:
            self.keep(after.last_epoch)
        elif after.decision is Decision.REDUCED and self.best_epoch is not None:
            self.restore()
            self.restored_at = after.last_epoch

    def keep(self, epoch: int) -> None:
        """Copy the parameters and their optimizer state now, as the best of step `epoch`.

        The copies of the previous best are overwritten in place where they fit, so
        keeping never holds two copies at once.

        Raises:
            TypeError: an optimizer state value that is neither a tensor nor a plain
                number (LBFGS's lists): it could not be saved beside strict JSON.
        """
        params = _params_of(self.optimizer)
        held = [self.optimizer.state.get(p, {}) for p in params]
        for i, param_state in enumerate(held):  # all checked before any copy is overwritten
            for key, value in param_state.items():
                if not isinstance(value, torch.Tensor):
                    _check_plain(i, key, value)
        on_cpu = torch.device("cpu") if self.device == "cpu" else None
        with torch.no_grad():
            copies = [
                _copy(p, self._params[i] if i < len(self._params) else None, on_cpu)
                for i, p in enumerate(params)
            ]
            states = []
            for i, param_state in enumerate(held):
                old = self._states[i] if i < len(self._states) else {}
                states.append(
                    {k: _copy_value(v, old.get(k), on_cpu) for k, v in param_state.items()}
                )
        self._params, self._states, self.best_epoch = copies, states, epoch

    def restore(self) -> None:
        """Put the kept parameters and optimizer state back (nothing before the first keep).

        Each value is copied into the tensor the optimizer holds now where one of the
        same shape and dtype exists (its device and identity kept, as fused and
        capturable optimizers need); the param groups are left as they are.
        """
        params = _params_of(self.optimizer)
        state = self.optimizer.state
        with torch.no_grad():
            for p, kept, kept_state in zip(params, self._params, self._states, strict=False):
                p.copy_(kept)
                live = state.get(p, {})
                restored = {k: _put_back(v, live.get(k)) for k, v in kept_state.items()}
                if restored:
                    state[p] = restored
                else:  # no state at the best step (before the first optimizer step)
                    state.pop(p, None)

    def state_dict(self) -> dict[str, Any]:
        """``meta``, strict JSON, beside ``tensors``, a flat dict of string keys to tensors.

        ``torch.save`` and ``torch.load(weights_only=True)`` take it, and its flat keys
        (``param.3``, ``state.3.exp_avg``) are what torch.distributed.checkpoint's
        state dicts use. The tensors are the copies themselves, not clones.
        """
        tensors: dict[str, torch.Tensor] = {}
        values: list[dict[str, Any]] = []
        for i, (param, param_state) in enumerate(zip(self._params, self._states, strict=True)):
            tensors[f"param.{i}"] = param
            plain = {}
            for key, value in param_state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"state.{i}.{key}"] = value
                else:
                    plain[key] = value
            values.append(plain)
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "best_epoch": self.best_epoch,
            "restored_at": self.restored_at,
            "count": len(self._params),
            "values": values,
        }
        return {"meta": meta, "tensors": tensors}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`'s output, each tensor moved to this copy's device.

        Raises:
            TypeError: not a dict of ``meta`` and ``tensors``, or a field of the wrong type.
            ValueError: another format or version, more copies than the optimizer has
                parameters, a missing or unexpected tensor, or a parameter copy whose
                shape or dtype is not its parameter's. Nothing changes on error.
        """
        meta, tensors = _check_saved(state_dict)
        params = _params_of(self.optimizer)
        count = meta["count"]
        if count > len(params):
            raise ValueError(
                f"'count' = {count} copies, but the optimizer has {len(params)} parameters"
            )
        expected = {f"param.{i}" for i in range(count)}
        states: list[dict[str, Any]] = [dict(v) for v in meta["values"]]
        for name, tensor in tensors.items():
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(
                    f"'tensors[{name!r}]' must be a tensor, got {type(tensor).__name__}"
                )
            kind, _, rest = name.partition(".")
            index, _, key = rest.partition(".")
            if kind == "state" and index.isdigit() and int(index) < count and key:
                states[int(index)][key] = tensor
            elif name not in expected:
                raise ValueError(f"'tensors' has an unexpected key {name!r}")
        copies = []
        for i, param in enumerate(params[:count]):
            name = f"param.{i}"
            if name not in tensors:
                raise ValueError(f"'tensors' is missing {name!r}")
            saved = tensors[name]
            if saved.shape != param.shape or saved.dtype != param.dtype:
                raise ValueError(
                    f"'tensors[{name!r}]' is {saved.dtype} {tuple(saved.shape)}, but the "
                    f"optimizer's parameter {i} is {param.dtype} {tuple(param.shape)}"
                )
            # A copy, so that the copy never shares memory with the caller's tensors.
            target = param.device if self.device == "params" else torch.device("cpu")
            copies.append(saved.to(target, copy=True))
            states[i] = {k: _to(v, target) for k, v in states[i].items()}
        self._params, self._states = copies, states
        self.best_epoch, self.restored_at = meta["best_epoch"], meta["restored_at"]


def checkpoint_entry(copy: BestCopy) -> dict[str, Any]:
    """The scheduler checkpoint's ``best_copy`` entry: ``meta`` (a JSON str) and ``tensors``.

    One key set per optimizer, whatever the copy holds: tensors not yet copied have
    zero placeholders, so a fresh scheduler's keys (DCP's template) are a saved one's;
    ``meta`` names the tensors that are the copy's.
    """
    entry = copy.state_dict()
    tensors = dict(entry["tensors"])
    meta = {"copy": entry["meta"], "tensors": sorted(tensors)}
    optimizer = copy.optimizer
    on_cpu = torch.device("cpu") if copy.device == "cpu" else None
    for i, param in enumerate(p for group in optimizer.param_groups for p in group["params"]):
        tensors.setdefault(f"param.{i}", torch.zeros_like(param, device=on_cpu))
        for key, value in optimizer.state.get(param, {}).items():
            if isinstance(value, torch.Tensor):
                tensors.setdefault(f"state.{i}.{key}", torch.zeros_like(value, device=on_cpu))
    return {"meta": json.dumps(meta, allow_nan=False), "tensors": tensors}


def from_checkpoint_entry(entry: Any, copy: BestCopy) -> BestCopy:
    """A new :class:`BestCopy` like `copy`, holding :func:`checkpoint_entry`'s `entry`.

    None (a checkpoint saved without restore_best, or torch's) gives an empty copy.
    """
    loaded = BestCopy(copy.optimizer, copy.device)
    if entry is None:
        return loaded
    with within("state_dict['best_copy']"):
        if isinstance(entry, Mapping) and isinstance(entry.get("meta"), str):  # our JSON meta
            tensors = entry.get("tensors")
            try:
                parsed = json.loads(entry["meta"])
                meta, names = parsed["copy"], parsed["tensors"]
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"'meta' is not a saved copy: {exc}") from None
            if not isinstance(tensors, Mapping):
                raise TypeError(f"'tensors' must be a dict, got {got(tensors)}")
            if missing := sorted(set(names) - set(tensors)):
                raise ValueError(
                    f"it lacks the copy's tensors {missing}: a DCP template holds an optimizer "
                    "state tensor only once the optimizer has state; load the optimizer's state "
                    "before the scheduler's"
                )
            entry = {**entry, "meta": meta, "tensors": {name: tensors[name] for name in names}}
        loaded.load_state_dict(entry)  # which checks the rest
    return loaded


def check_restore_best(restore_best: object) -> RestoreBest:
    """`restore_best` itself if it is True, False or "cpu".

    Raises:
        TypeError: `restore_best` is neither a bool nor a str.
        ValueError: `restore_best` is a str other than "cpu".
    """
    if isinstance(restore_best, bool):
        return restore_best
    if not isinstance(restore_best, str):
        raise TypeError(
            f"'restore_best' must be True, False or 'cpu', got {type(restore_best).__name__}"
        )
    if restore_best != "cpu":
        raise ValueError(f"'restore_best' must be True, False or 'cpu', got {restore_best!r}")
    return "cpu"


def best_copy_for(optimizer: torch.optim.Optimizer, restore_best: RestoreBest) -> BestCopy | None:
    """The copy ``restore_best=`` asks for: None for False, on "cpu", or on the params' devices.

    Raises:
        TypeError, ValueError: as :func:`check_restore_best`.

    Example:
        >>> import torch
        >>> optimizer = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
        >>> best_copy_for(optimizer, "cpu").device, best_copy_for(optimizer, False)
        ('cpu', None)
    """
    restore_best = check_restore_best(restore_best)
    if restore_best is False:
        return None
    return BestCopy(optimizer, "cpu" if restore_best == "cpu" else "params")


def _params_of(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Every parameter the optimizer trains, group by group (groups are only appended)."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def _copy(
    value: torch.Tensor, into: torch.Tensor | None, device: torch.device | None
) -> torch.Tensor:
    """`value` copied to `device` (None: its own), into `into` where it fits."""
    target = value.device if device is None else device
    fits = (
        into is not None
        and into.shape == value.shape
        and into.dtype == value.dtype
        and into.device == target
    )
    if fits:
        assert into is not None
        return into.copy_(value)
    return value.detach().to(target, copy=True)


def _copy_value(value: object, into: object, device: torch.device | None) -> Any:
    """One optimizer state value copied: a tensor as :func:`_copy`, a plain number as is."""
    if isinstance(value, torch.Tensor):
        return _copy(value, into if isinstance(into, torch.Tensor) else None, device)
    return value


def _check_plain(index: int, key: str, value: object) -> None:
    """Refuse an optimizer state value that is no tensor and would not be strict JSON."""
    if isinstance(value, _Number) and not (isinstance(value, float) and not math.isfinite(value)):
        return
    raise TypeError(
        f"optimizer state {key!r} of parameter {index} is a {type(value).__name__}: a best "
        "copy holds tensors and finite plain numbers"
    )


def _put_back(kept: object, live: object) -> object:
    """`kept` copied into `live` where that is a tensor of its shape and dtype, else a clone."""
    if not isinstance(kept, torch.Tensor):
        return kept
    if isinstance(live, torch.Tensor) and live.shape == kept.shape and live.dtype == kept.dtype:
        return live.copy_(kept)
    return kept.clone()


def _to(value: object, device: torch.device) -> object:
    return value.to(device, copy=True) if isinstance(value, torch.Tensor) else value


def _check_saved(state_dict: object) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """The ``meta`` and ``tensors`` of a saved copy, every meta field checked and named."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"'best_copy' must be a dict, got {type(state_dict).__name__}")
    if set(state_dict) != {"meta", "tensors"}:
        raise ValueError(f"'best_copy' must hold 'meta' and 'tensors', got {sorted(state_dict)}")
    meta, tensors = state_dict["meta"], state_dict["tensors"]
    if not isinstance(meta, Mapping) or not isinstance(tensors, Mapping):
        raise TypeError("'best_copy' must map 'meta' and 'tensors' to dicts")
    if set(meta) != _META_KEYS:
        raise ValueError(f"'meta' must hold the keys {sorted(_META_KEYS)}, got {sorted(meta)}")
    if meta["format"] != _FORMAT or meta["version"] != _VERSION:
        raise ValueError(
            f"'meta' must be format {_FORMAT!r} version {_VERSION}, got "
            f"{meta['format']!r} version {meta['version']!r}"
        )
    for name in ("best_epoch", "restored_at", "count"):
        value = meta[name]
        if value is None and name != "count":
            continue
        if type(value) is not int:
            raise TypeError(f"'{name}' must be an int, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"'{name}' must be >= 0, got {value}")
    values = meta["values"]
    if not (isinstance(values, list) and len(values) == meta["count"]):
        raise ValueError(f"'values' must be a list of {meta['count']} dicts, got {values!r}")
    for i, plain in enumerate(values):
        if not isinstance(plain, Mapping):
            raise TypeError(f"'values[{i}]' must be a dict, got {type(plain).__name__}")
        for key, value in plain.items():
            _check_plain(i, key, value)
    return dict(meta), tensors
