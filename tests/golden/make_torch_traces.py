"""Regenerate torch_traces.json by running torch's own ReduceLROnPlateau.

    python tests/golden/make_torch_traces.py

The traces are the reference's output, stored as data so the core's golden test
needs no framework; tests/test_golden.py also re-checks them against live torch
whenever torch is installed, so the data cannot drift from the reference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

CASES = [
    {
        "name": "torch-docs-patience-0",
        "note": (
            "torch's docstring walk-through for patience=0: a baseline, then every worse epoch "
            "reduces. Its sentence 'if the performance ... remains the same, the learning rate "
            "is not adjusted' is not what the code does: an equal metric is not an improvement "
            "(strict <), so epoch 5 (0.9 again) reduces too."
        ),
        "config": {"patience": 0},
        "lrs": [0.1],
        "metrics": [1.0, 1.5, 1.2, 0.9, 0.9, 0.8],
    },
    {
        "name": "default-patience-10-cuts-on-11th-bad-epoch",
        "config": {},
        "lrs": [0.1],
        "metrics": [1.0] * 14,
    },
    {
        "name": "cooldown-and-improvement-during-cooldown",
        "config": {"patience": 2, "cooldown": 3, "factor": 0.5},
        "lrs": [1.0],
        "metrics": [5, 4, 4, 4, 4, 3.9, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4],
    },
    {
        "name": "max-mode-absolute-threshold",
        "config": {"mode": "max", "threshold_mode": "abs", "threshold": 0.5, "patience": 1},
        "lrs": [0.01],
        "metrics": [0.1, 0.5, 0.9, 1.3, 1.5, 1.7, 2.5, 2.6, 2.9, 3.0, 3.0],
    },
    {
        "name": "per-group-min-lr-and-an-lr-already-under-it",
        "config": {"patience": 0, "factor": 0.5, "min_lr": [0.2, 0.05, 0.01]},
        "lrs": [1.0, 0.1, 0.001],
        "metrics": [1.0, 2.0, 2.0, 2.0, 2.0, 2.0],
    },
    {
        "name": "large-eps-skips-cut-but-enters-cooldown",
        "config": {"patience": 0, "factor": 0.5, "eps": 0.05, "cooldown": 1},
        "lrs": [1.0, 0.08],
        "metrics": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    },
    {
        "name": "nan-and-infinities",
        "config": {"patience": 1},
        "lrs": [1.0],
        "metrics": [math.nan, 1.0, math.nan, math.inf, 0.5, -math.inf, -1e308, 3.0, 2.0],
    },
    {
        "name": "negative-metrics-relative-threshold",
        "config": {"threshold": 0.1, "patience": 0},
        "lrs": [1.0],
        "metrics": [-10.0, -9.5, -9.0, -8.6, -8.0, -20.0, -19.0, -17.0],
    },
    {
        "name": "relative-threshold-ties",
        "config": {"threshold": 0.3, "patience": 0, "factor": 0.5},
        "lrs": [1.0],
        "metrics": [0.7, 0.48999999999999994, 0.4899999999999999, 0.3429999999999999, 0.3],
    },
]


def _encode(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def trace(case: dict) -> list[dict]:
    import torch

    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in case["lrs"]]
    optimizer = torch.optim.SGD(groups, lr=case["lrs"][0])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **case["config"])
    steps = []
    for metric in case["metrics"]:
        scheduler.step(metric)
        steps.append(
            {
                "lrs": [float(g["lr"]) for g in optimizer.param_groups],
                "best": _encode(scheduler.best),
                "num_bad_epochs": scheduler.num_bad_epochs,
                "cooldown_counter": scheduler.cooldown_counter,
            }
        )
    return steps


def main() -> None:
    import torch

    out = {"generated_by": f"torch {torch.__version__}", "cases": []}
    for case in CASES:
        encoded = dict(case, metrics=[_encode(m) for m in case["metrics"]])
        out["cases"].append({**encoded, "expected": trace(case)})
    path = Path(__file__).with_name("torch_traces.json")
    path.write_text(json.dumps(out, indent=1, allow_nan=False) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
