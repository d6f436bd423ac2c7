"""Time a per-batch plateau in a CPU training loop: the default mode against ``capturable=True``.

    python benchmarks/bench_capturable.py     # needs torch: pip install torch==2.13.0

Each contender trains the same tiny model (``nn.Linear(32, 1)``, SGD with a float64
tensor lr, batches of 64) and steps a plateau on every batch's loss: torch's
ReduceLROnPlateau, the default mode (``float(loss)``: a device sync on a GPU, none
on a CPU), ``capturable=True`` eager, and ``capturable=True`` with its step
compiled (``torch.compile(fullgraph=True)``, inductor). A loop with no plateau is
the base of the overhead column. On a CPU nothing syncs, so this measures what
the capturable step costs in work (a dozen tiny tensor ops against a few float
operations), not what it saves on a GPU: benchmarks/gpu_check.py measures that.

Contenders are interleaved round by round, alternating the order; times are this
process's CPU time (``time.process_time``), the best of the rounds. Before timing,
every plateau is checked to give the same lrs as the default mode. Exits 1 if not.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable

import torch

import plateau
from plateau.adapters.torch import ReduceLROnPlateau

ROUNDS = 10
BATCHES = 400
KWARGS = {"patience": 10, "factor": 0.5, "cooldown": 5}
torch.set_num_threads(1)  # a shared 2-core machine: one thread each, steadier times

Plateau = Callable[[torch.Tensor], None]
Contender = Callable[[], tuple[float, list[float]]]


def loop(make: Callable[[torch.optim.Optimizer], Plateau | None]) -> Contender:
    """A training loop whose plateau `make` builds (None: no plateau): (seconds, lrs)."""

    def run() -> tuple[float, list[float]]:
        torch.manual_seed(0)
        model = torch.nn.Linear(32, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=torch.tensor(0.05, dtype=torch.float64))
        step = make(optimizer)
        data = torch.Generator().manual_seed(1)
        batches = []
        for _ in range(BATCHES):
            inputs = torch.randn(64, 32, generator=data)
            target = inputs.sum(1, keepdim=True) + torch.randn(64, 1, generator=data)
            batches.append((inputs, target))
        lrs = []
        start = time.process_time()
        for inputs, target in batches:
            loss = torch.nn.functional.mse_loss(model(inputs), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step is not None:
                step(loss.detach())
            lrs.append(float(optimizer.param_groups[0]["lr"]))  # untimed below
        elapsed = time.process_time() - start
        return elapsed, lrs

    return run


def torch_default(optimizer: torch.optim.Optimizer) -> Plateau:
    step: Plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **KWARGS).step
    return step


def default_mode(optimizer: torch.optim.Optimizer) -> Plateau:
    return ReduceLROnPlateau(optimizer, **KWARGS).step


def capturable(optimizer: torch.optim.Optimizer) -> Plateau:
    return ReduceLROnPlateau(optimizer, **KWARGS, capturable=True).step


def compiled(optimizer: torch.optim.Optimizer) -> Plateau:
    torch._dynamo.reset()  # a new scheduler each round: compile anew, within dynamo's cache
    scheduler = ReduceLROnPlateau(optimizer, **KWARGS, capturable=True)
    step: Plateau = torch.compile(scheduler.step, fullgraph=True)
    start, lr = scheduler.state, optimizer.param_groups[0]["lr"].clone()
    step(torch.tensor(1.0))  # it compiles here, untimed; then back to the start
    scheduler.state = start
    optimizer.param_groups[0]["lr"].copy_(lr)
    return step


def main() -> int:
    print(
        f"python {sys.version.split()[0]}, torch {torch.__version__}, plateau {plateau.__version__}"
    )
    print(f"best CPU time per batch (us) over {ROUNDS} interleaved rounds of {BATCHES} batches\n")
    contenders = {
        "no plateau": loop(lambda optimizer: None),
        "torch's ReduceLROnPlateau": loop(torch_default),
        "plateau, default mode": loop(default_mode),
        "plateau, capturable=True": loop(capturable),
        "plateau, capturable=True, compiled": loop(compiled),
    }
    _, expected = contenders["plateau, default mode"]()
    for name, run in contenders.items():
        if name != "no plateau" and run()[1] != expected:
            print(f"{name}: its lrs differ from the default mode's; timing would be meaningless")
            return 1
    if min(expected) == max(expected):
        print("the stream made no cut: nothing was compared")
        return 1
    # (the lrs read back each batch are a float(): they count in every contender alike)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for i in range(ROUNDS):
        gc.collect()
        for name in names if i % 2 == 0 else reversed(names):
            times[name].append(contenders[name]()[0])
    best = {name: min(t) / BATCHES * 1e6 for name, t in times.items()}
    base, default = best["no plateau"], best["plateau, default mode"]
    print(f"{'loop':<38}{'us/batch':>9}{'plateau us':>11}{'/ default':>10}{'paired':>8}")
    for name in names:
        paired = statistics.median(
            t / d for t, d in zip(times[name], times["plateau, default mode"], strict=True)
        )
        overhead = f"{best[name] - base:>11.1f}" if name != "no plateau" else f"{'':>11}"
        print(f"{name:<38}{best[name]:>9.1f}{overhead}{best[name] / default:>10.2f}{paired:>8.2f}")
    print(f"\nlrs checked equal to the default mode's ({len(set(expected))} distinct, per batch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
