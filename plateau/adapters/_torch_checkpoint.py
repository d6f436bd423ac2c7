"""The torch adapter's checkpoint format: one key set in every state, for DCP and torch.save.

torch.distributed.checkpoint (DCP) loads a checkpoint into the keys of a freshly built
scheduler's ``state_dict()``, so the keys never depend on the state: torch's own keys are
always all present (``best`` and ``mode_worse`` may be infinite, as in torch's), and
plateau's config and state are one strict-JSON string, ``plateau``, which DCP stores
whole. With ``base=``, ``base`` holds the base's entry; with ``restore_best``,
``best_copy`` holds the best copy's tensors beside its strict-JSON ``meta``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import torch

from plateau import PlateauConfig, PlateauState
from plateau._checks import got, show_keys
from plateau.adapters import _shared
from plateau.adapters.restore import BestCopy

# What torch's (2.6-2.13) state_dict() holds: progress, and config (min_lrs aside).
PROGRESS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")
TORCH_CONFIG = ("factor", "patience", "cooldown", "eps", "mode", "threshold", "threshold_mode")


def torch_keys(
    config: PlateauConfig, state: PlateauState, written: tuple[float, ...]
) -> dict[str, Any]:
    """Torch's every ``state_dict()`` key, `written` the groups' lrs after the last step."""
    saved: dict[str, Any] = {name: getattr(config, name) for name in TORCH_CONFIG}
    min_lr = config.min_lr
    saved.update(min_lrs=list(config.min_lrs(len(state.lrs))), _last_lr=[*written])
    saved.update(default_min_lr=None if isinstance(min_lr, tuple) else min_lr)
    saved.update({key: getattr(state, key) for key in PROGRESS})
    saved["mode_worse"] = float("inf") if config.mode == "min" else float("-inf")
    saved["plateau"] = json.dumps(_shared.saved(config, state), allow_nan=False)
    return saved


def resume_point(
    saved: Mapping[str, Any], lrs: Callable[[], tuple[float, ...]], has_base: bool
) -> tuple[object, PlateauState, bool]:
    """The mode, state and whether it is plateau's own (not torch's keys) to resume from.

    ``plateau`` is resumed from only if torch's progress keys agree with it (the
    epoch counts every step): torch's class keeps it unchanged when it loads our
    checkpoint and steps on, and DCP's ``allow_partial_load`` leaves a fresh template's
    there when the checkpoint is torch's; either way torch's keys then win, with the
    optimizer's lrs (`lrs`). Older checkpoints' ``config``/``state`` dicts load too.
    """
    keys = set(saved)
    theirs: PlateauState | None = None
    if keys.issuperset(("mode", *PROGRESS)):
        try:  # validated before anything compares them (an array's == is elementwise)
            theirs = PlateauState(lrs=(0.0,), **{key: saved[key] for key in PROGRESS})
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"state_dict: {exc}") from None
    envelope, name = None, "state_dict"
    if "plateau" in keys:
        if not isinstance(text := saved["plateau"], str):
            raise TypeError(f"state_dict['plateau'] must be a JSON str, got {got(text)}")
        try:
            envelope, name = json.loads(text), "state_dict['plateau']"
        except ValueError as exc:
            raise ValueError(f"state_dict['plateau'] is not JSON: {exc}") from None
    elif {"config", "state"} <= keys:
        envelope = saved
    if envelope is not None:
        config, state = _shared.load_saved(envelope, name)
        if theirs is None or all(getattr(state, k) == getattr(theirs, k) for k in PROGRESS):
            return config.mode, state, True
    elif theirs is None:
        wanted = f"['plateau'] or {sorted(('mode', *PROGRESS))}"
        raise ValueError(
            f"'state_dict' must come from state_dict() of plateau's or torch's "
            f"ReduceLROnPlateau (keys including {wanted}), got keys {show_keys(keys)}"
        )
    assert theirs is not None
    if has_base:
        raise ValueError(
            "'state_dict' holds a base schedule, but its torch keys differ from its "
            "'plateau' state (torch's ReduceLROnPlateau stepped since it was saved): "
            "it cannot resume one"
        )
    return saved["mode"], attrs.evolve(theirs, lrs=lrs()), False


def save_copy(copy: BestCopy) -> dict[str, Any]:
    """The ``best_copy`` entry: ``meta`` (a JSON str) and ``tensors``, one key set per optimizer.

    Before a copy is kept, each parameter and optimizer state tensor has a zero
    placeholder of its shape, so a fresh scheduler's keys (DCP's template) are a saved
    one's; ``meta`` names the tensors that are the copy's.
    """
    entry = copy.state_dict()
    tensors = dict(entry["tensors"])
    meta = {"copy": entry["meta"], "tensors": sorted(tensors)}
    optimizer = copy.optimizer
    params = [p for group in optimizer.param_groups for p in group["params"]]
    on_cpu = torch.device("cpu") if copy.device == "cpu" else None
    for i, param in enumerate(params):
        tensors.setdefault(f"param.{i}", torch.zeros_like(param, device=on_cpu))
        for key, value in optimizer.state.get(param, {}).items():
            if isinstance(value, torch.Tensor):
                tensors.setdefault(f"state.{i}.{key}", torch.zeros_like(value, device=on_cpu))
    return {"meta": json.dumps(meta, allow_nan=False), "tensors": tensors}


def load_copy(entry: object, copy: BestCopy) -> BestCopy:
    """A new :class:`BestCopy` like `copy` holding :func:`save_copy`'s `entry` (None: none).

    Raises:
        TypeError, ValueError: a malformed entry, or a copy's tensor that was not
            loaded (a DCP template without it), named. Nothing changes on error.
    """
    loaded = BestCopy(copy.optimizer, copy.device)
    if entry is None:  # a checkpoint saved without restore_best, or torch's
        return loaded
    if not isinstance(entry, Mapping) or set(entry) != {"meta", "tensors"}:
        shown = f"keys {show_keys(entry)}" if isinstance(entry, Mapping) else got(entry)
        raise ValueError(f"state_dict['best_copy'] must hold 'meta' and 'tensors', got {shown}")
    meta, tensors = entry["meta"], entry["tensors"]
    if isinstance(meta, str):  # else BestCopy.state_dict()'s own output
        try:
            parsed = json.loads(meta)
            meta, names = parsed["copy"], parsed["tensors"]
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(
                f"state_dict['best_copy']['meta'] is not a saved copy: {exc}"
            ) from None
        if not isinstance(tensors, Mapping):
            raise TypeError(
                f"state_dict['best_copy']['tensors'] must be a dict, got {got(tensors)}"
            )
        if missing := sorted(set(names) - set(tensors)):
            raise ValueError(
                f"state_dict['best_copy'] lacks the copy's tensors {missing}: a DCP template "
                "holds an optimizer state tensor only once the optimizer has state; load "
                "the optimizer's state before the scheduler's"
            )
        tensors = {name: tensors[name] for name in names}
    try:
        loaded.load_state_dict({"meta": meta, "tensors": tensors})
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"state_dict['best_copy']: {exc}") from None
    return loaded
