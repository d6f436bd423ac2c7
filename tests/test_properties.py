"""Hypothesis property tests of the core.

Laws:
- lrs never increase;
- an lr never drops below min(its min_lr, its starting value);
- a metric that beats best by more than the threshold every step never reduces;
- step is deterministic;
- to_dict -> strict JSON -> from_dict at any point, then continuing, gives the
  identical trajectory.
"""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from plateau import Decision, PlateauConfig, PlateauState, init, simulate, step

SETTINGS = settings(max_examples=300, deadline=None)

metrics_st = st.lists(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0.0, 1.0, 1.0, 2.0, -1.0]),
    ),
    max_size=60,
)
lr_st = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)


@st.composite
def setups(draw):
    n = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["min", "max"]))
    threshold_mode = draw(st.sampled_from(["rel", "abs"]))
    top = 0.99 if (mode, threshold_mode) == ("min", "rel") else 5.0
    per_lr = draw(st.booleans())
    floor = st.floats(min_value=0.0, max_value=1.0)
    config = PlateauConfig(
        mode=mode,
        threshold_mode=threshold_mode,
        threshold=draw(st.floats(min_value=0.0, max_value=top)),
        factor=draw(st.floats(min_value=1e-3, max_value=0.999)),
        patience=draw(st.integers(0, 6)),
        cooldown=draw(st.integers(0, 4)),
        min_lr=draw(st.lists(floor, min_size=n, max_size=n)) if per_lr else draw(floor),
        eps=draw(st.sampled_from([0.0, 1e-8, 1e-3, 0.1])),
        on_nonfinite=draw(st.sampled_from(["bad", "skip"])),
    )
    lrs = draw(st.lists(lr_st, min_size=n, max_size=n))
    return config, lrs


@SETTINGS
@given(setups(), metrics_st)
def test_lrs_never_increase_nor_cross_their_floor(setup, metrics):
    config, lrs = setup
    floors = config.min_lrs(len(lrs))
    previous = tuple(lrs)
    for state in simulate(metrics, config, lrs):
        assert all(new <= old for new, old in zip(state.lrs, previous))
        assert all(new >= min(f, start) for new, f, start in zip(state.lrs, floors, lrs))
        previous = state.lrs


@SETTINGS
@given(setups(), st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=50))
def test_a_metric_improving_beyond_the_threshold_never_reduces(setup, steps):
    config, lrs = setup
    t = config.threshold
    state = init(lrs, config)
    metric = 1e6 if config.mode == "min" else -1e6
    for gap in steps:
        state, new_lrs = step(state, metric, config)
        assert new_lrs == tuple(lrs)
        assert state.decision is Decision.IMPROVED
        best = state.best
        if config.mode == "min":
            bound = best * (1.0 - t) if config.threshold_mode == "rel" else best - t
            metric = math.nextafter(bound, -math.inf) - gap
        else:
            bound = best * (t + 1.0) if config.threshold_mode == "rel" else best + t
            metric = math.nextafter(bound, math.inf) + gap


@SETTINGS
@given(setups(), metrics_st)
def test_step_is_deterministic(setup, metrics):
    config, lrs = setup
    assert simulate(metrics, config, lrs) == simulate(list(metrics), config, list(lrs))


@SETTINGS
@given(setups(), metrics_st, st.integers(0, 60))
def test_json_round_trip_mid_run_resumes_identically(setup, metrics, cut):
    config, lrs = setup
    cut = min(cut, len(metrics))
    uninterrupted = simulate(metrics, config, lrs)
    state = init(lrs, config) if cut == 0 else uninterrupted[cut - 1]
    state = PlateauState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))
    config = PlateauConfig.from_dict(json.loads(json.dumps(config.to_dict(), allow_nan=False)))
    resumed = []
    for metric in metrics[cut:]:
        state, _ = step(state, metric, config)
        resumed.append(state)
    assert resumed == uninterrupted[cut:]
