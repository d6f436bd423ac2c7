"""Hypothesis property tests of the core.

Laws:
- lrs never increase;
- an lr never drops below min(its min_lr, its starting value);
- a metric that beats best by more than the threshold every step never reduces;
- step is deterministic;
- to_dict -> strict JSON -> from_dict at any point, then continuing, gives the
  identical trajectory (with the rules beyond torch's too, mid-block included).

- every state step() builds is one the state's own constructor accepts (step()
  builds its states without checking them again: this is the check that it may).

Beyond torch's rules (issue 12):
- the cap is never exceeded: at most max_reductions steps change an lr, and
  num_reductions counts exactly those steps;
- a cap never reached is no cap;
- ema_decay=0.0 (all weight on the newest value) gives the states of no
  smoothing, but for the ``smoothed`` field that records the last finite value;
- accumulation_size=K decides, on every K-th step, as the plain rules decide on
  the stream of block means;
- mirror law: with threshold_mode "rel_abs" (or "abs"), a stream x in min mode
  and the stream -x in max mode take the same decisions, lrs and counters, with
  best, smoothed, accumulated_mean and the window negated -- whatever the signs in x. For
  torch's "rel" this fails (a negative best's margin points the wrong way).
"""

from __future__ import annotations

import json
import math

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import metric_streams, setups

from plateau import Decision, PlateauConfig, PlateauState, init, simulate, step
from plateau._checks import MAX_INT

# 200 examples: of the core mutants these laws must catch (a cut that raises an lr, a
# field lost by to_dict, cooldown that does not forgive), the slowest to be found took
# 105 examples (first failure, 6 seeds); the suite's time budget (issue 8) bounds the rest.
SETTINGS = settings(max_examples=200, deadline=None)


@SETTINGS
@given(setups(), metric_streams)
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
@given(setups(), metric_streams)
def test_step_is_deterministic(setup, metrics):
    config, lrs = setup
    assert simulate(metrics, config, lrs) == simulate(list(metrics), config, list(lrs))


@SETTINGS
@given(setups(), metric_streams, st.integers(0, 60))
def test_json_round_trip_mid_run_resumes_identically(setup, metrics, cut):
    assert_strict_json_resume_is_exact(setup, metrics, cut)


def assert_strict_json_resume_is_exact(setup, metrics, cut):
    """Saved through strict JSON after `cut` steps, config and state resume the run exactly."""
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


@SETTINGS
@given(setups(beyond=True, warmup_epochs=st.integers(0, 4)), metric_streams, st.data())
def test_every_state_step_builds_is_one_the_constructor_accepts(setup, metrics, data):
    config, lrs = setup
    state = init(lrs, config)
    for metric in metrics:
        held = data.draw(
            st.none() | st.just(state.lrs) | st.lists(st.floats(0.0, 10.0), min_size=1, max_size=3)
        )
        try:
            state, _ = step(state, metric, config, lrs=held)
        except ValueError:  # a count that does not fit a per-lr min_lr
            continue
        assert PlateauState(**attrs.asdict(state, recurse=False)) == state


@SETTINGS
@given(setups(beyond=True), metric_streams, st.integers(0, 3))
def test_the_cap_is_never_exceeded(setup, metrics, cap):
    config, lrs = setup
    config = attrs.evolve(config, max_reductions=cap)
    previous, cuts = tuple(lrs), 0
    for state in simulate(metrics, config, lrs):
        cuts += state.lrs != previous
        assert state.num_reductions == cuts <= cap
        assert (state.decision is Decision.REDUCED) == (state.lrs != previous)
        previous = state.lrs


@SETTINGS
@given(setups(beyond=True), metric_streams)
def test_all_weight_on_the_newest_value_is_no_smoothing(setup, metrics):
    config, lrs = setup
    smoothed = simulate(metrics, attrs.evolve(config, ema_decay=0.0), lrs)
    plain = simulate(metrics, attrs.evolve(config, ema_decay=None), lrs)
    assert [attrs.evolve(s, smoothed=None) for s in smoothed] == plain


@SETTINGS
@given(setups(beyond=True), metric_streams)
def test_a_cap_never_reached_is_no_cap(setup, metrics):
    config, lrs = setup
    never = attrs.evolve(config, max_reductions=MAX_INT)
    assert simulate(metrics, never, lrs) == simulate(
        metrics, attrs.evolve(config, max_reductions=None), lrs
    )


@SETTINGS
@given(setups(beyond=True), st.lists(st.floats(-1e6, 1e6), max_size=60), st.integers(1, 4))
def test_accumulation_decides_on_the_block_means(setup, metrics, size):
    config, lrs = setup
    config = attrs.evolve(config, accumulation_size=size)
    means, mean = [], 0.0
    for i, metric in enumerate(metrics):  # optax's running mean, by hand
        n = i % size
        mean = (n * mean + metric) / (n + 1)
        if n + 1 == size:
            means.append(mean)
            mean = 0.0
    blocked = simulate(metrics, config, lrs)[size - 1 :: size]
    plain = simulate(means, attrs.evolve(config, accumulation_size=1), lrs)
    assert [attrs.evolve(s, last_epoch=0) for s in blocked] == [
        attrs.evolve(s, last_epoch=0) for s in plain
    ]


def _negated(value):
    return None if value is None else -value


@SETTINGS
@given(setups(beyond=True), metric_streams)
def test_rel_abs_mirrors_min_and_max(setup, metrics):
    config, lrs = setup
    if config.threshold_mode == "rel":
        config = attrs.evolve(config, threshold_mode="rel_abs")
    low = simulate(metrics, attrs.evolve(config, mode="min"), lrs)
    high = simulate([-m for m in metrics], attrs.evolve(config, mode="max"), lrs)
    for a, b in zip(low, high, strict=True):
        assert (
            attrs.evolve(
                b,
                best=-b.best,
                smoothed=_negated(b.smoothed),
                accumulated_mean=-b.accumulated_mean,
                window=tuple(-v for v in b.window),
            )
            == a
        )
        assert (a.lrs, a.decision, a.num_bad_epochs) == (b.lrs, b.decision, b.num_bad_epochs)


def test_torchs_rel_does_not_mirror():
    """The contrast that motivates rel_abs: -x in max mode is not x in min mode."""
    metrics = [10.0, 9.5, 9.0]
    config = PlateauConfig(threshold=0.1, patience=5)
    low = simulate(metrics, config)
    high = simulate([-m for m in metrics], attrs.evolve(config, mode="max"))
    assert [s.decision for s in low] != [s.decision for s in high]


@SETTINGS
@given(setups(beyond=True), metric_streams, st.integers(0, 60))
def test_json_round_trip_mid_run_resumes_identically_beyond_torch(setup, metrics, cut):
    assert_strict_json_resume_is_exact(setup, metrics, cut)
