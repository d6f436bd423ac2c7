"""The torch adapter's ``sync_metric``: one bounded collective per step that every rank agrees on.

Each synced ``step()`` gathers every rank's metric, epoch and repeat flag on a process
group whose collectives time out after ``sync_timeout`` seconds, so a rank that steps
more often than the others fails within that time, naming the scheduler and the epoch,
instead of waiting for the job's timeout. Every rank computes the same mean and the same
repeat decision from the same gathered numbers.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, SupportsFloat

import torch
import torch.distributed as dist

from plateau._checks import to_metric

# One timeout-bounded group per (world group, timeout): new_group() is collective, so it
# is made at the first synced step, which every rank takes; a new world makes new ones.
_groups: dict[float, tuple[Any, Any]] = {}


def gather_steps(metric: float, epoch: int, repeat: bool, timeout: float) -> list[list[float]]:
    """Every rank's ``[metric, epoch, repeat]``, in rank order, gathered within `timeout` s.

    Outside a ``torch.distributed`` process group: this rank's alone.

    Raises:
        RuntimeError: a rank did not call it within `timeout` seconds (it stepped fewer
            times), naming the epoch this rank was stepping.
    """
    mine = [metric, float(epoch), float(repeat)]
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    world = dist.group.WORLD
    held = _groups.get(timeout)
    if held is None or held[0] is not world:
        held = _groups[timeout] = (world, dist.new_group(timeout=timedelta(seconds=timeout)))
    # NCCL gathers only CUDA tensors; every other backend takes CPU ones.
    on_cuda = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_cuda else None
    sent = torch.tensor(mine, dtype=torch.float64, device=device)
    parts = [torch.empty_like(sent) for _ in range(dist.get_world_size())]
    try:
        dist.all_gather(parts, sent, group=held[1])
    except RuntimeError as exc:  # gloo's timeout, or a peer gone
        raise RuntimeError(
            f"ReduceLROnPlateau.step() at epoch {epoch}: the other ranks did not step within "
            f"sync_timeout={timeout} s; with sync_metric=True every rank must call step() "
            f"once per epoch, and one stepped a different number of times ({exc})"
        ) from exc
    return [part.tolist() for part in parts]


def mean(values: list[float]) -> float:
    """The mean of `values`, summed in order; finite whenever every value is.

    Example:
        >>> mean([1e308, 1e308]), mean([0.25, 0.75])
        (1e+308, 0.5)
    """
    total = sum(values)
    if math.isfinite(total) or not all(math.isfinite(v) for v in values):
        return total / len(values)
    return sum(v / len(values) for v in values)  # the sum overflowed: divide first


def agree(metric: SupportsFloat, epoch: int, skip: bool, timeout: float) -> tuple[float, bool]:
    """The mean metric over the ranks, and whether every rank skips this step.

    `skip`: this rank would skip it (``on_repeat="skip"`` and no optimizer step since
    its last ``step()``).

    Raises:
        ValueError: the ranks are at different epochs, or only some of them would
            skip: that would average different epochs' metrics. Every rank raises alike.
    """
    parts = gather_steps(to_metric(metric), epoch, skip, timeout)
    epochs = [int(part[1]) for part in parts]
    if len(set(epochs)) > 1:
        raise ValueError(
            f"ReduceLROnPlateau.step() with sync_metric=True: the ranks are at different "
            f"epochs {epochs} (rank by rank); each must call step() once per epoch"
        )
    skipping = [rank for rank, part in enumerate(parts) if part[2]]
    if 0 < len(skipping) < len(parts):
        stepped = [rank for rank in range(len(parts)) if rank not in skipping]
        raise ValueError(
            f"on_repeat='skip' with sync_metric=True at epoch {epoch}: ranks {skipping} saw "
            f"no optimizer step since their last step(), ranks {stepped} did; skipping on "
            "some ranks only would average different epochs' metrics"
        )
    return mean([part[0] for part in parts]), len(skipping) == len(parts)


def mean_over_ranks(metric: SupportsFloat, timeout: float = 300.0) -> float:
    """`metric` averaged over all ranks in float64 (a collective every rank must call).

    Outside a ``torch.distributed`` process group: ``float(metric)``. A bad metric is a
    TypeError before the collective: that rank fails alone, and the others within
    `timeout` seconds. The mean of finite metrics is finite.

    Example:
        >>> mean_over_ranks(0.25)
        0.25
    """
    return mean([part[0] for part in gather_steps(to_metric(metric), 0, False, timeout)])
