"""Time plateau's core against torch's ReduceLROnPlateau, in one process, and print ratios.

    python benchmarks/bench_core.py            # needs torch (pip install torch==2.13.0)

Targets (issue #2): plateau.step <= 1.0x torch's step with 1 lr and <= 0.3x with
100 lrs; simulate() at most 10% over the plain step loop; `import plateau` at most
1.5x `import attrs`. Each timing interleaves the contenders and keeps the best of
many rounds, because a shared machine's noise only ever adds time.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import timeit

import torch

import plateau

ROUNDS = 40
STEPS = 2000


def metric_stream(n: int, seed: int = 0) -> list[float]:
    """A validation-loss-like stream: improves, then plateaus with noise, so cuts happen."""
    rng = random.Random(seed)
    loss, out = 2.0, []
    for i in range(n):
        loss = max(0.2, loss * (0.97 if i % 200 < 60 else 1.0))
        out.append(loss + rng.uniform(0.0, 0.02))
    return out


def best_per_step(contenders: dict, rounds: int = ROUNDS) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            times[name].append(timeit.timeit(fn, number=1))
    return {name: min(ts) / STEPS * 1e6 for name, ts in times.items()}


def step_vs_torch(n_lrs: int) -> dict[str, float]:
    metrics = metric_stream(STEPS)
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(n_lrs)]
    kwargs = {"patience": 5, "cooldown": 2, "min_lr": 1e-6}

    def torch_loop() -> None:
        optimizer = torch.optim.SGD(groups, lr=0.1)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
        for m in metrics:
            scheduler.step(m)

    config = plateau.PlateauConfig(**kwargs)
    step = plateau.step

    def plateau_loop() -> None:
        state = plateau.init([0.1] * n_lrs, config)
        for m in metrics:
            state, _ = step(state, m, config)

    def collecting_loop() -> None:
        # What simulate() does, written out: the baseline for its overhead.
        state = plateau.init([0.1] * n_lrs, config)
        states = []
        for m in metrics:
            state, _ = step(state, m, config)
            states.append(state)

    def simulate() -> None:
        plateau.simulate(metrics, config, [0.1] * n_lrs)

    # torch_loop's optimizer construction is inside the timing; measure and remove it.
    def torch_setup() -> None:
        optimizer = torch.optim.SGD(groups, lr=0.1)
        torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)

    t = best_per_step(
        {
            "torch": torch_loop,
            "torch_setup": torch_setup,
            "plateau": plateau_loop,
            "loop": collecting_loop,
            "simulate": simulate,
        }
    )
    t["torch"] -= t.pop("torch_setup")
    return t


def import_cost(module: str, runs: int = 25) -> list[float]:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    return [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]


def main() -> int:
    print(
        f"python {sys.version.split()[0]}, torch {torch.__version__}, plateau {plateau.__version__}"
    )
    print(f"per-step times, best of {ROUNDS} interleaved rounds of {STEPS} steps\n")
    print(f"{'case':<34}{'base us':>10}{'plateau us':>12}{'ratio':>8}{'target':>9}")
    print("(base: torch's step; for simulate, the same step loop collecting its states)")
    verdicts = []
    for n_lrs, target in ((1, 1.0), (100, 0.3)):
        t = step_vs_torch(n_lrs)
        ratio = t["plateau"] / t["torch"]
        verdicts.append(ratio <= target)
        print(
            f"{f'step, {n_lrs} lr(s)':<34}{t['torch']:>10.3f}{t['plateau']:>12.3f}"
            f"{ratio:>8.2f}{f'<= {target}':>9}"
        )
        sim = t["simulate"] / t["loop"]
        verdicts.append(sim <= 1.1)
        print(
            f"{f'simulate vs step loop, {n_lrs} lr(s)':<34}{t['loop']:>10.3f}"
            f"{t['simulate']:>12.3f}{sim:>8.2f}{'<= 1.1':>9}"
        )
    # Interleave the two imports so both see the same machine load.
    attrs_t: list[float] = []
    plateau_t: list[float] = []
    for _ in range(3):
        attrs_t += import_cost("attrs", 8)
        plateau_t += import_cost("plateau", 8)
    a, p = statistics.median(attrs_t), statistics.median(plateau_t)
    verdicts.append(p / a <= 1.5)
    print(
        f"{'import (median ms): attrs / plateau':<34}{a * 1e3:>10.1f}{p * 1e3:>12.1f}"
        f"{p / a:>8.2f}{'<= 1.5':>9}"
    )
    print("\nall targets met" if all(verdicts) else "\nSOME TARGETS MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
