"""Differential test: the core against the real torch.optim.lr_scheduler.ReduceLROnPlateau.

Thousands of seeded random streams and configs. After every step the lrs, best and
both counters must be identical -- not close: identical.
"""

from __future__ import annotations

import math
import random

import pytest

from plateau import PlateauConfig, init, step

torch = pytest.importorskip("torch")

STREAMS = 3000


def random_config(rng: random.Random, groups: int) -> dict:
    mode = rng.choice(["min", "max"])
    threshold_mode = rng.choice(["rel", "abs"])
    threshold = rng.choice([0.0, 1e-4, 0.01, 0.1, 0.5, 2.0])
    if mode == "min" and threshold_mode == "rel" and threshold >= 1.0:
        threshold = 0.3
    min_lr: float | list[float]
    if rng.random() < 0.5:
        min_lr = rng.choice([0.0, 1e-6, 0.01, 0.05])
    else:
        min_lr = [rng.choice([0.0, 1e-4, 0.01, 0.3]) for _ in range(groups)]
    return {
        "mode": mode,
        "factor": rng.choice([0.1, 0.5, 1 / 3, 0.9, 0.999]),
        "patience": rng.randint(0, 5),
        "threshold": threshold,
        "threshold_mode": threshold_mode,
        "cooldown": rng.randint(0, 4),
        "min_lr": min_lr,
        "eps": rng.choice([0.0, 1e-8, 1e-3, 0.05, 0.5]),
    }


def next_metric(rng: random.Random, best: float, config: dict) -> float:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice([math.nan, math.inf, -math.inf])
    if roll < 0.25 and math.isfinite(best):
        # Exactly at the improvement boundary, written as torch writes it: a tie.
        t = config["threshold"]
        if config["mode"] == "min":
            return best * (1.0 - t) if config["threshold_mode"] == "rel" else best - t
        return best * (t + 1.0) if config["threshold_mode"] == "rel" else best + t
    if roll < 0.6:
        return float(rng.choice([-3, -1, 0, 1, 2, 3, 5]))  # repeats make plateaus
    return rng.uniform(-10, 10)


@pytest.mark.parametrize("chunk", range(6))
def test_core_matches_torch_step_for_step(chunk):
    rng = random.Random(1234 + chunk)
    for _ in range(STREAMS // 6):
        groups = rng.randint(1, 3)
        kwargs = random_config(rng, groups)
        lrs = [rng.choice([1.0, 0.1, 0.003, 1e-9, 0.0, 0.2]) for _ in range(groups)]
        params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
        optimizer = torch.optim.SGD(params, lr=1.0)
        reference = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
        config = PlateauConfig(**kwargs)
        state = init(lrs, config)
        for epoch in range(rng.randint(1, 40)):
            metric = next_metric(rng, reference.best, kwargs)
            reference.step(metric)
            state, new_lrs = step(state, metric, config)
            expected = tuple(float(g["lr"]) for g in optimizer.param_groups)
            context = f"{kwargs} lrs={lrs} epoch={epoch} metric={metric!r}"
            assert new_lrs == expected, context
            assert state.lrs == expected, context
            assert state.best == reference.best or (
                math.isnan(state.best) and math.isnan(reference.best)
            ), context
            assert state.num_bad_epochs == reference.num_bad_epochs, context
            assert state.cooldown_counter == reference.cooldown_counter, context
            assert state.last_epoch == reference.last_epoch, context


def test_zero_d_tensor_metric_and_tensor_lrs_agree():
    config = PlateauConfig(patience=0)
    state = init(0.5, config)
    for value in (1.0, 2.0, 0.5, 0.5):
        state, lrs = step(state, torch.tensor(value), config)
    assert lrs == (0.5 * 0.1 * 0.1,)
    for bad in (torch.tensor([1.0, 2.0]), torch.tensor(True)):
        with pytest.raises(TypeError, match="'metric' must be a single real number"):
            step(state, bad, config)
