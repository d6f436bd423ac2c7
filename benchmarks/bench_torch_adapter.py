"""Time the torch adapter's step against torch's own ReduceLROnPlateau.step; print the ratio.

    python benchmarks/bench_torch_adapter.py        # needs torch (pip install 'plateau[torch]')

Target (issue #3): the adapter's step <= 1.3x torch's step with one param group.
Both schedulers get the same validation-loss-like metric stream (improving
stretches, then noisy plateaus, so reductions, cooldowns and the min_lr floor all
happen). The two are interleaved round by round, so both see the same machine
load; each round builds a fresh optimizer and scheduler outside the timed loop.
Printed: the minimum and the median time per step of each, and the verdict's
ratio, the median over rounds of plateau's time / torch's time in the same round:
pairing the two runs of a round cancels load that drifts during the benchmark,
which the ratio of the two minimums does not. Exits 0 whether or not the target
is met (1 only if the two schedulers disagree on the stream).
"""

from __future__ import annotations

import random
import statistics
import sys
import time

import torch

import plateau
from plateau.adapters.torch import ReduceLROnPlateau

ROUNDS = 60
STEPS = 2000
TARGET = 1.3
KWARGS = {"patience": 5, "cooldown": 2, "min_lr": 1e-6}


def metric_stream(n: int, seed: int = 0) -> list[float]:
    """A validation-loss-like stream: improves, then plateaus with noise, so cuts happen."""
    rng = random.Random(seed)
    loss, out = 2.0, []
    for i in range(n):
        loss = max(0.2, loss * (0.97 if i % 200 < 60 else 1.0))
        out.append(loss + rng.uniform(0.0, 0.02))
    return out


def time_steps(scheduler_cls: type, metrics: list[float]) -> float:
    """Seconds per step of `scheduler_cls` on `metrics`, construction excluded."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    step = scheduler_cls(optimizer, **KWARGS).step
    start = time.perf_counter()
    for metric in metrics:
        step(metric)
    return (time.perf_counter() - start) / len(metrics)


def same_lrs(metrics: list[float]) -> bool:
    """Guard against timing two different computations: both must produce the same lrs."""
    lrs = []
    for cls in (torch.optim.lr_scheduler.ReduceLROnPlateau, ReduceLROnPlateau):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = cls(optimizer, **KWARGS)
        trace = []
        for metric in metrics:
            scheduler.step(metric)
            trace.append(optimizer.param_groups[0]["lr"])
        lrs.append(trace)
    return lrs[0] == lrs[1] and len(set(lrs[0])) > 3


def main() -> int:
    print(
        f"python {sys.version.split()[0]}, torch {torch.__version__}, plateau {plateau.__version__}"
    )
    metrics = metric_stream(STEPS)
    if not same_lrs(metrics):
        print("the two schedulers disagree on the benchmark stream; timing would be meaningless")
        return 1
    contenders = {"torch": torch.optim.lr_scheduler.ReduceLROnPlateau, "plateau": ReduceLROnPlateau}
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(ROUNDS):
        # Alternate who goes first, so neither always runs on a warmer cache.
        order = list(contenders) if i % 2 == 0 else list(reversed(contenders))
        for name in order:
            times[name].append(time_steps(contenders[name], metrics))
    best = {name: min(ts) * 1e6 for name, ts in times.items()}
    median = {name: statistics.median(ts) * 1e6 for name, ts in times.items()}
    paired = statistics.median(p / t for p, t in zip(times["plateau"], times["torch"], strict=True))
    print(f"per-step times over {ROUNDS} interleaved rounds of {STEPS} steps, one param group\n")
    print(f"{'':<8}{'torch us':>10}{'plateau us':>12}{'ratio':>8}")
    for label, t in (("min", best), ("median", median)):
        ratio = t["plateau"] / t["torch"]
        print(f"{label:<8}{t['torch']:>10.3f}{t['plateau']:>12.3f}{ratio:>8.2f}")
    print(f"\nplateau / torch, median of per-round ratios: {paired:.2f} (target <= {TARGET})")
    print("target met" if paired <= TARGET else "TARGET MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
