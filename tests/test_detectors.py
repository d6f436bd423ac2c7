"""Rule 2's trend detectors (issue 25) against independent references.

- "slope" against ``scipy.stats.linregress(x, y, alternative="less" | "greater")``
  on hundreds of random noisy streams (both modes, several windows, alphas,
  patiences and cooldowns): identical decisions and lrs, streams with a p-value
  within 1e-12 of alpha excluded and counted;
- "window_best" against a plain reference written from the issue's rule;
- "best" (the default) is torch's rule: tests/test_differential_torch.py;
- a state saved mid-window resumes exactly through strict JSON (here, and in the
  property laws of tests/test_properties.py, which draw the detectors too).
"""

from __future__ import annotations

import json
import math
import random

import pytest

from plateau import PlateauConfig, PlateauState, simulate, step

stats = pytest.importorskip("scipy.stats")

THRESHOLD = 1e-4  # torch's default, "rel": the test while the slope window holds < 3 values


def beats(value, reference, mode):
    """torch's rel test, as torch writes it."""
    if mode == "min":
        return value < reference * (1.0 - THRESHOLD)
    return value > reference * (THRESHOLD + 1.0)


def reference_run(metrics, mode, detector, window, alpha, patience, cooldown, near):
    """(decision, lr) per step, by the issue's rules; `near` collects p-values near alpha."""
    best = math.inf if mode == "min" else -math.inf
    bad = cool = 0
    lr, values, out = 1.0, [], []
    for metric in metrics:
        previous = values
        values = ([*values, metric])[-window:]
        if detector == "window_best":
            pool = [v for v in previous if v == v]
            start = math.inf if mode == "min" else -math.inf  # before any value
            bound = (min if mode == "min" else max)(pool, default=start)
            improved = beats(metric, bound, mode)
        elif len(values) < 3:
            improved = beats(metric, best, mode)
        else:
            fit = stats.linregress(
                range(len(values)), values, alternative="less" if mode == "min" else "greater"
            )
            if abs(fit.pvalue - alpha) < 1e-12:
                near.append(fit.pvalue)
            right_way = fit.slope < 0 if mode == "min" else fit.slope > 0
            improved = bool(right_way and fit.pvalue < alpha)
        best = min(best, metric) if mode == "min" else max(best, metric)
        if improved:
            bad, decision = 0, "improved"
        else:
            bad, decision = bad + 1, "no_improvement"
        if cool > 0:
            cool -= 1
            if bad:
                bad, decision = 0, "cooldown"
        if bad > patience:
            new = max(lr * 0.5, 0.0)
            decision = "reduced" if lr - new > 1e-8 else "at_floor"
            lr = new if lr - new > 1e-8 else lr
            cool, bad = cooldown, 0
            if detector == "slope":
                values = []
        out.append((decision, lr))
    return out


def noisy_stream(rng, n):
    """A loss that falls, flattens and sometimes rises, with noise of several sizes."""
    level, slope, noise, out = (
        rng.uniform(1.0, 3.0),
        rng.uniform(-0.05, 0.01),
        rng.choice([1e-3, 0.01, 0.1]),
        [],
    )
    for _ in range(n):
        if rng.random() < 0.05:
            slope = rng.uniform(-0.05, 0.02)
        level += slope
        out.append(level + rng.gauss(0.0, noise) if rng.random() > 0.03 else level)
    return out


@pytest.mark.parametrize("detector", ["slope", "window_best"])
def test_decisions_and_lrs_match_the_reference(detector):
    rng = random.Random(25)
    near, runs = [], 0
    for _ in range(300):
        mode = rng.choice(["min", "max"])
        window = rng.randint(3 if detector == "slope" else 1, 12)
        alpha = rng.choice([0.01, 0.05, 0.2, 0.5, 0.8])
        patience, cooldown = rng.randint(0, 4), rng.randint(0, 3)
        metrics = noisy_stream(rng, rng.randint(5, 60))
        if mode == "max":
            metrics = [-m for m in metrics]
        config = PlateauConfig(
            mode=mode, factor=0.5, patience=patience, cooldown=cooldown,
            detector=detector, window=window, alpha=alpha,
        )  # fmt: skip
        seen = len(near)
        expected = reference_run(metrics, mode, detector, window, alpha, patience, cooldown, near)
        if len(near) > seen:
            continue  # a p-value within 1e-12 of alpha: either side is right
        runs += 1
        states = simulate(metrics, config)
        assert [(s.decision.value, s.lrs[0]) for s in states] == expected
    assert runs >= 290, (runs, near)


def test_a_state_saved_mid_window_resumes_exactly_through_strict_json():
    rng = random.Random(7)
    for detector in ("slope", "window_best"):
        config = PlateauConfig(patience=2, factor=0.5, detector=detector, window=6, alpha=0.2)
        metrics = [*noisy_stream(rng, 40), math.nan, math.inf, 1.0, 0.5]
        uninterrupted = simulate(metrics, config)
        for cut in range(1, len(metrics)):
            saved = json.loads(json.dumps(uninterrupted[cut - 1].to_dict(), allow_nan=False))
            state = PlateauState.from_dict(saved)
            for metric, expected in zip(metrics[cut:], uninterrupted[cut:]):
                state, _ = step(state, metric, config)
                assert state == expected


def test_the_slope_window_is_emptied_when_patience_runs_out_and_window_best_keeps_it():
    metrics = [5.0, 5.0, 5.0, 5.0, 5.0]
    slope = simulate(metrics, PlateauConfig(patience=1, detector="slope", window=4))
    assert [len(s.window) for s in slope] == [1, 2, 0, 1, 0]  # cut on steps 3 and 5
    kept = simulate(metrics, PlateauConfig(patience=1, detector="window_best", window=4))
    assert [len(s.window) for s in kept] == [1, 2, 3, 4, 4]


def test_best_records_the_best_judged_value_and_the_default_keeps_no_window():
    config = PlateauConfig(detector="slope", window=3, patience=10)
    states = simulate([3.0, 2.0, 2.5, math.nan, 1.0], config)
    assert [s.best for s in states] == [3.0, 2.0, 2.0, 2.0, 1.0]
    assert all(s.window == () for s in simulate([3.0, 2.0], PlateauConfig()))


@pytest.mark.parametrize(
    ("fields", "exc", "match"),
    [
        ({"detector": "trend"}, ValueError, "'detector' must be one of"),
        (
            {"detector": "slope", "window": 2},
            ValueError,
            "'window' must be >= 3 with detector='slope'",
        ),
        ({"window": 0}, ValueError, "'window' must be >= 1"),
        ({"window": 2.0}, TypeError, "'window' must be an int"),
        ({"alpha": 0.0}, ValueError, "'alpha' must be strictly between 0 and 1"),
        ({"alpha": math.nan}, ValueError, "'alpha' must be strictly between 0 and 1"),
        ({"alpha": "0.05"}, TypeError, "'alpha' must be a real number"),
    ],
)
def test_bad_detector_fields_are_refused_by_name(fields, exc, match):
    with pytest.raises(exc, match=match):
        PlateauConfig(**fields)


def test_a_window_value_that_is_no_number_is_refused_by_name():
    d = simulate([1.0, 2.0], PlateauConfig(detector="window_best", window=3))[-1].to_dict()
    with pytest.raises(TypeError, match=r"'window\[1\]' must be a real number"):
        PlateauState.from_dict({**d, "window": [1.0, "x"]})
    assert PlateauState.from_dict({**d, "window": ["nan", "-inf"]}).window[1] == -math.inf
