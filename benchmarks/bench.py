"""Time plateau against torch's ReduceLROnPlateau in one process and print the ratios.

    python benchmarks/bench.py          # needs torch: pip install torch==2.13.0

Ceilings (a step runs once per epoch or batch, where a training step costs 100 us
to seconds: these say plateau is never what a user waits for, not how it compares
under a microscope). Each is printed with its verdict; none is asserted in a test.
- plateau.step at most 5x torch's ReduceLROnPlateau.step at one lr, and at most
  0.5x at 100 lrs (torch copies every group's lr on every call);
- plateau.step given a 0-d tensor (what Lightning passes) or a numpy float at
  most 5x torch's step given the same metric.
  (Issue 19 set 3x for these. Issue 23 then made step() run the one rule code
  the device steps run, plateau._core.advance, where a select is a Python call on
  floats: this command's step went from 1.8 us to 2.8 us (docs/performance.md),
  against a training step of 100 us or more. A second, float-only copy of the
  rules would win it back; one statement of the rules is worth more.)
- plateau.simulate at most 1.1x the same step loop written out, and at most 240
  bytes per state it keeps;
- ``import plateau`` at most 2.5x ``import attrs``, both loaded from bytecode
  compiled beforehand, as an installed package is (the same from source is
  printed beside it).
The torch adapter's step (``plateau.adapters.torch.ReduceLROnPlateau``) is
printed against torch's for information.

Every contender gets the same validation-loss-like metric stream (improving
stretches, then noisy plateaus, so cuts, cooldowns and the min_lr floor all
happen). Contenders are interleaved round by round, alternating who goes first.
Times are this process's CPU time (``time.process_time``), so other processes on a
shared machine do not count. The verdict is the ratio of the best times (load only
ever adds time, so the best of many rounds is the least disturbed measurement, as
timeit's docs advise);
the median of the per-round ratios is printed beside it as a check on drifting
load. Before timing, each pair is checked to compute the same lrs. Exits 1 only
if they do not; a missed ceiling is printed, not an error.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import plateau
from plateau.adapters.torch import ReduceLROnPlateau

ROUNDS = 40
STEPS = 2000
KWARGS = {"patience": 5, "cooldown": 2, "min_lr": 1e-6}
CONFIG = plateau.PlateauConfig(**KWARGS)


def metric_stream(n: int = STEPS, seed: int = 0) -> list[float]:
    """A validation-loss-like stream: improves, then plateaus with noise, so cuts happen."""
    rng = random.Random(seed)
    loss, out = 2.0, []
    for i in range(n):
        loss = max(0.2, loss * (0.97 if i % 200 < 60 else 1.0))
        out.append(loss + rng.uniform(0.0, 0.02))
    return out


METRICS = metric_stream()


def torch_optimizer(n_lrs: int) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(n_lrs)]
    return torch.optim.SGD(groups, lr=0.1)


# Each contender builds its scheduler untimed, then returns (seconds for the stream, lrs).
Contender = Callable[[], tuple[float, list[float]]]


def torch_class(cls: type, n_lrs: int, metrics: list[Any] = METRICS) -> Contender:
    def run() -> tuple[float, list[float]]:
        optimizer = torch_optimizer(n_lrs)
        step = cls(optimizer, **KWARGS).step
        start = time.process_time()
        for metric in metrics:
            step(metric)
        return time.process_time() - start, [float(g["lr"]) for g in optimizer.param_groups]

    return run


def core_loop(n_lrs: int, collect: bool = False, metrics: list[Any] = METRICS) -> Contender:
    def run() -> tuple[float, list[float]]:
        step, config, states = plateau.step, CONFIG, []
        state = plateau.init([0.1] * n_lrs, config)
        start = time.process_time()
        if collect:  # what simulate() does, written out
            for metric in metrics:
                state, _ = step(state, metric, config)
                states.append(state)
        else:
            for metric in metrics:
                state, _ = step(state, metric, config)
        return time.process_time() - start, list(state.lrs)

    return run


def core_simulate(n_lrs: int) -> Contender:
    def run() -> tuple[float, list[float]]:
        start = time.process_time()
        states = plateau.simulate(METRICS, CONFIG, [0.1] * n_lrs)
        return time.process_time() - start, list(states[-1].lrs)

    return run


def compare(name: str, base: Contender, ours: Contender, ceiling: float | None) -> bool:
    """Time `ours` against `base`; print one row; return whether the ceiling is kept.

    `ceiling`: None for a row printed as information (it is always "kept").
    """
    gc.collect()  # start every comparison from the same heap, whatever ran before
    if base()[1] != ours()[1]:
        print(f"{name}: the two compute different lrs; timing would be meaningless")
        sys.exit(1)
    base_t: list[float] = []
    ours_t: list[float] = []
    for i in range(ROUNDS):
        pair = (base, ours) if i % 2 == 0 else (ours, base)
        for fn in pair:
            (base_t if fn is base else ours_t).append(fn()[0])
    paired = statistics.median(o / b for o, b in zip(ours_t, base_t, strict=True))
    b_us, o_us = (min(t) / STEPS * 1e6 for t in (base_t, ours_t))
    ratio = o_us / b_us
    ok = ceiling is None or ratio <= ceiling
    goal, verdict = (
        ("", "(info)") if ceiling is None else (f"<= {ceiling}", "ok" if ok else "MISSED")
    )
    print(f"{name:<40}{b_us:>9.3f}{o_us:>9.3f}{ratio:>8.2f}{paired:>8.2f}{goal:>9}  {verdict}")
    return ok


def bytes_per_state(ceiling: float = 240.0, n: int = 200_000) -> bool:
    """Memory simulate() keeps per metric, traced by tracemalloc (the metrics list excluded)."""
    metrics = metric_stream(n)
    gc.collect()
    tracemalloc.start()
    states = plateau.simulate(metrics, CONFIG, 0.1)
    used = tracemalloc.get_traced_memory()[0] / len(states)
    tracemalloc.stop()
    ok = used <= ceiling
    print(
        f"{'simulate: bytes kept per state':<40}{'':>9}{used:>9.0f}{'':>8}{'':>8}"
        f"{f'<= {ceiling:.0f}':>9}  {'ok' if ok else 'MISSED'}"
    )
    return ok


def import_env(bytecode: str, cached: bool) -> dict[str, str]:
    """The environment of a timed import.

    `cached`: every module loads from bytecode compiled into `bytecode` once
    beforehand, as an installed package does (pip compiles at install): what a
    user's ``import`` costs. Else no bytecode is written, so plateau, run from a
    source checkout, is compiled on every import while attrs and the standard
    library load from the bytecode their installers wrote.
    """
    env = dict(os.environ)
    if cached:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = bytecode
    else:
        env.pop("PYTHONPYCACHEPREFIX", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def import_seconds(module: str, env: dict[str, str]) -> float:
    code = f"import time; t = time.process_time(); import {module}; print(time.process_time() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return float(out.stdout)


def compare_imports(ceiling: float | None = 2.5, runs: int = 24, cached: bool = True) -> bool:
    """``import plateau`` against ``import attrs``, each in `runs` fresh interpreters.

    `cached`: both from compiled bytecode (the ceiling's case, an installed package);
    else plateau compiled from source on every import (see :func:`import_env`),
    printed for information: the compile() of its ~2000 lines is most of the gap.
    """
    with tempfile.TemporaryDirectory(prefix="plateau-bench-pyc-") as bytecode:
        env = import_env(bytecode, cached)
        for module in ("attrs", "plateau"):  # compile into `bytecode` (if cached), untimed
            import_seconds(module, env)
        attrs_t: list[float] = []
        plateau_t: list[float] = []
        for i in range(runs):
            for module in ("attrs", "plateau") if i % 2 == 0 else ("plateau", "attrs"):
                (attrs_t if module == "attrs" else plateau_t).append(import_seconds(module, env))
    paired = statistics.median(p / a for p, a in zip(plateau_t, attrs_t, strict=True))
    a_ms, p_ms = min(attrs_t) * 1e3, min(plateau_t) * 1e3
    ratio = p_ms / a_ms
    ok = ceiling is None or ratio <= ceiling
    name = "import attrs -> import plateau (ms)" if cached else "  the same, plateau from source"
    goal, verdict = (
        ("", "(info)") if ceiling is None else (f"<= {ceiling}", "ok" if ok else "MISSED")
    )
    print(f"{name:<40}{a_ms:>9.1f}{p_ms:>9.1f}{ratio:>8.2f}{paired:>8.2f}{goal:>9}  {verdict}")
    return ok


def main() -> int:
    print(
        f"python {sys.version.split()[0]}, torch {torch.__version__}, plateau {plateau.__version__}"
    )
    print(f"best time per step (us) over {ROUNDS} interleaved rounds of {STEPS} steps")
    print("(imports: best of 24 fresh interpreters, ms, from bytecode compiled beforehand);")
    print("ratio = plateau / base, the verdict;")
    print("paired = median of the per-round ratios, a check on drifting load\n")
    print(
        f"{'case (base -> plateau)':<40}{'base':>9}{'plateau':>9}{'ratio':>8}{'paired':>8}"
        f"{'ceiling':>9}"
    )
    torch_rop = torch.optim.lr_scheduler.ReduceLROnPlateau
    tensors = [torch.tensor(m) for m in METRICS]  # float32 0-d tensors, as Lightning logs
    numpy_floats = [np.float64(m) for m in METRICS]
    results = [
        compare("torch step -> plateau.step, 1 lr", torch_class(torch_rop, 1), core_loop(1), 5.0),
        compare(
            "torch step -> plateau.step, 100 lrs", torch_class(torch_rop, 100), core_loop(100), 0.5
        ),
        compare(
            "torch step -> plateau.step, 0-d tensor",
            torch_class(torch_rop, 1, tensors),
            core_loop(1, metrics=tensors),
            5.0,
        ),
        compare(
            "torch step -> plateau.step, numpy float",
            torch_class(torch_rop, 1, numpy_floats),
            core_loop(1, metrics=numpy_floats),
            5.0,
        ),
        compare("step loop -> simulate, 1 lr", core_loop(1, collect=True), core_simulate(1), 1.1),
        compare(
            "step loop -> simulate, 100 lrs", core_loop(100, collect=True), core_simulate(100), 1.1
        ),
        bytes_per_state(),
        compare_imports(),
    ]
    compare_imports(ceiling=None, cached=False)
    compare(
        "torch step -> torch adapter step",
        torch_class(torch_rop, 1),
        torch_class(ReduceLROnPlateau, 1),
        None,
    )
    print("\nevery ceiling kept" if all(results) else "\nSOME CEILINGS MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
