"""Differential test: ``PlateauConfig.from_optax`` + the core vs the real optax transformation.

``optax.contrib.reduce_on_plateau`` is driven with a dummy updates pytree and
``value=`` (float32 params, so its state is float32); the core replays the same
metrics with ``simulate(metrics, PlateauConfig.from_optax(...), 1.0)``. After every
step optax's (scale, best_value, plateau_count, cooldown_count) is compared with
the core's (lrs[0], best, num_bad_epochs, cooldown_counter).

Precision, stated rather than approximated:

* optax tests ``avg < (1 - rtol) * best - atol`` in float32, the core
  ``metric < best * (1 - threshold)`` (or ``best - threshold``) in float64. The
  exact tests use metrics, rtol, atol, factor and min_scale on a coarse dyadic
  grid, where every one of those products and differences is exact in float32
  and in float64, so the two comparisons are the same comparison, and ties at the
  threshold (which both treat as "not improved") are generated on purpose.
* Off that grid the two comparisons can disagree only for a metric within float32
  rounding of the threshold. ``test_only_float32_ties_differ`` pins that down:
  on streams crowded with such near-ties, the traces are identical up to the
  first step where the float32 and float64 comparisons disagree, and differ there.
* optax's scale is float32 (``scale * factor`` rounds each time); the core's lr is
  a float64 chain. With a dyadic factor both are exact and compared exactly;
  with factor 0.1 or 0.3 the scale is compared within the float32 rounding bound
  ``(2k + 2) * 2**-24`` relative after k reductions, while counters and best stay exact.

The patience, cooldown and min_scale are passed into one jitted scan as arrays
(optax accepts them as ArrayLike), so each (factor, rtol, atol) combination
compiles once; ``test_traced_arguments_match_python_constants`` checks that this
gives the same trace as constructing the transformation with Python numbers.
"""

from __future__ import annotations

import functools
import math
import random

import pytest

from plateau import Decision, PlateauConfig, simulate

pytest.importorskip("optax")
import jax
import jax.numpy as jnp
import numpy as np
import optax

STEPS = 40
F32_ULP = 2.0**-24  # unit roundoff of float32


def _scan_updates(tx, values):
    updates = {"w": jnp.ones(2, jnp.float32)}

    def body(state, value):
        _, state = tx.update(updates, state, value=value)
        return state, (state.scale, state.best_value, state.plateau_count, state.cooldown_count)

    return jax.lax.scan(body, tx.init(updates), values)[1]


@functools.partial(jax.jit, static_argnames=("factor", "rtol", "atol"))
def _optax_trace(values, patience, cooldown, min_scale, *, factor, rtol, atol):
    tx = optax.contrib.reduce_on_plateau(
        factor=factor,
        patience=patience,
        rtol=rtol,
        atol=atol,
        cooldown=cooldown,
        min_scale=min_scale,
    )
    return _scan_updates(tx, values)


def run_optax(metrics, *, factor, patience, rtol, atol, cooldown, min_scale):
    """optax's per-step (scale, best, plateau_count, cooldown_count) as numpy arrays."""
    values = np.asarray(metrics, dtype=np.float32)
    np.testing.assert_array_equal(values, metrics, err_msg="metrics must be float32 values")
    trace = _optax_trace(
        values,
        np.int32(patience),
        np.int32(cooldown),
        np.float32(min_scale),
        factor=factor,
        rtol=rtol,
        atol=atol,
    )
    return tuple(np.asarray(a) for a in trace)


def run_core(metrics, **optax_kwargs):
    states = simulate(metrics, PlateauConfig.from_optax(**optax_kwargs), 1.0)
    return states, (
        np.array([s.lrs[0] for s in states]),
        np.array([s.best for s in states]),
        np.array([s.num_bad_epochs for s in states]),
        np.array([s.cooldown_counter for s in states]),
    )


def assert_same_trace(metrics, *, exact_scale, **kwargs):
    scale, best, plateau_count, cooldown_count = run_optax(metrics, **kwargs)
    states, (lr, core_best, bad, cooldown) = run_core(metrics, **kwargs)
    context = f"{kwargs} {metrics}"
    np.testing.assert_array_equal(plateau_count, bad, err_msg=context)
    np.testing.assert_array_equal(cooldown_count, cooldown, err_msg=context)
    np.testing.assert_array_equal(best.astype(np.float64), core_best, err_msg=context)
    if exact_scale:
        np.testing.assert_array_equal(scale.astype(np.float64), lr, err_msg=context)
    else:
        cuts = np.cumsum([s.decision in (Decision.REDUCED, Decision.AT_FLOOR) for s in states])
        bound = (2 * cuts + 2) * F32_ULP * lr
        assert np.all(np.abs(scale - lr) <= bound), context
    return states


# The dyadic grid: metrics are k/16, thresholds 2**-j or small multiples of 1/16,
# so best * (1 - rtol) and best - atol are exact in float32 and in float64.
DYADIC_RTOL = [2.0**-6, 2.0**-3, 0.25]
DYADIC_ATOL = [1 / 16, 3 / 16, 0.5]


def dyadic_stream(rng: random.Random, rtol: float, atol: float) -> list[float]:
    """A walk on the k/16 grid with plateaus, exact ties at the threshold, and a few non-finites."""
    value = rng.randint(-8, 64) / 16
    seen = [value]
    metrics = []
    for _ in range(STEPS):
        roll = rng.random()
        if roll < 0.2:
            # An exact tie with some earlier value's threshold: "not improved" in both.
            metrics.append((1 - rtol) * rng.choice(seen) - atol)
        elif roll < 0.23:
            metrics.append(rng.choice([math.inf, -math.inf, math.nan]))
        else:
            value += rng.choice([-3, -2, -1, 0, 0, 0, 0, 1, 2]) / 16
            metrics.append(value)
            seen.append(value)
    return metrics


def random_kwargs(rng: random.Random, factors, min_scales) -> dict:
    if rng.random() < 0.5:
        rtol, atol = rng.choice(DYADIC_RTOL), 0.0
    else:
        rtol, atol = 0.0, rng.choice(DYADIC_ATOL)
    return {
        "factor": rng.choice(factors),
        "patience": rng.randint(1, 4),
        "rtol": rtol,
        "atol": atol,
        "cooldown": rng.randint(0, 4),
        "min_scale": rng.choice(min_scales),
    }


def test_dyadic_streams_match_exactly():
    rng = random.Random(20240604)
    decisions = set()
    for _ in range(300):
        kwargs = random_kwargs(rng, factors=[0.5, 0.25], min_scales=[0.0, 2.0**-3, 2.0**-6])
        metrics = dyadic_stream(rng, kwargs["rtol"], kwargs["atol"])
        states = assert_same_trace(metrics, exact_scale=True, **kwargs)
        decisions.update(s.decision for s in states)
    # Not vacuous: the streams reach every branch the translation has to get right.
    assert decisions >= {
        Decision.IMPROVED,
        Decision.NO_IMPROVEMENT,
        Decision.COOLDOWN,
        Decision.REDUCED,
        Decision.AT_FLOOR,
    }


def test_non_dyadic_factor_matches_to_float32():
    rng = random.Random(7)
    for _ in range(150):
        kwargs = random_kwargs(rng, factors=[0.1, 0.3], min_scales=[0.0, 1e-3, 0.01])
        metrics = dyadic_stream(rng, kwargs["rtol"], kwargs["atol"])
        assert_same_trace(metrics, exact_scale=False, **kwargs)


def test_the_scale_really_is_float32_not_float64():
    """The reason scales off the dyadic grid are compared within a bound, not exactly."""
    kwargs = {"factor": 0.1, "patience": 1, "rtol": 0.25, "atol": 0.0, "cooldown": 0}
    metrics = [1.0, 2.0, 2.0, 2.0]  # patience 1: three cuts
    scale, *_ = run_optax(metrics, min_scale=0.0, **kwargs)
    _, (lr, *_) = run_core(metrics, min_scale=0.0, **kwargs)
    assert lr[-1] == 0.1 * 0.1 * 0.1  # the core's float64 chain, 0.0010000000000000002
    assert scale[-1] == np.float32(np.float32(np.float32(0.1) * np.float32(0.1)) * np.float32(0.1))
    assert float(scale[-1]) != lr[-1]


def _threshold_tests(value: float, best: float, rtol: float, atol: float) -> tuple[bool, bool]:
    """The improvement test as the core writes it (float64) and as optax computes it (float32)."""
    core = value < (best * (1.0 - rtol) if rtol else best - atol)
    f32 = np.float32
    optax_threshold = f32(f32(1 - rtol) * f32(best)) - f32(atol)
    return bool(core), bool(f32(value) < optax_threshold)


def test_only_float32_ties_differ():
    """Off the dyadic grid, the traces agree until the two precisions disagree on a tie, no sooner.

    Streams are crowded with metrics a few float32 ulps either side of an earlier
    value's threshold. For each stream, find the first step where the float64 and
    float32 improvement tests disagree (following the core's best): the traces
    must be identical before it and must differ at it.
    """
    rng = random.Random(99)
    disagreements = 0
    for _ in range(200):
        rtol, atol = rng.choice([(1e-4, 0.0), (1e-3, 0.0), (0.0, 0.1), (0.0, 1e-3)])
        kwargs = {"factor": 0.5, "patience": 2, "rtol": rtol, "atol": atol, "cooldown": 1}
        seen = [float(np.float32(rng.uniform(1.0, 2.0)))]
        metrics = [seen[0]]
        for _ in range(STEPS - 1):
            if rng.random() < 0.5:
                target = np.float32((1 - rtol) * rng.choice(seen) - atol)
                metric = float(target + rng.randint(-2, 2) * np.spacing(target))
            else:
                metric = float(np.float32(metrics[-1] * rng.uniform(0.97, 1.02)))
                seen.append(metric)
            metrics.append(metric)

        scale, best, plateau_count, cooldown_count = run_optax(metrics, min_scale=0.0, **kwargs)
        states, _ = run_core(metrics, min_scale=0.0, **kwargs)
        previous_best = [math.inf] + [s.best for s in states]
        first = next(
            (
                t
                for t, value in enumerate(metrics)
                if len(set(_threshold_tests(value, previous_best[t], rtol, atol))) == 2
            ),
            STEPS,
        )
        for t in range(first):
            core = (states[t].lrs[0], states[t].best, states[t].num_bad_epochs)
            assert (scale[t], best[t], plateau_count[t]) == core, (kwargs, metrics, t)
            assert cooldown_count[t] == states[t].cooldown_counter
        if first < STEPS:
            disagreements += 1
            assert best[first] != states[first].best, (kwargs, metrics, first)
    # The adversarial streams do reach the float32/float64 disagreement they are about.
    assert disagreements >= 20


def test_a_float32_metric_at_a_relative_threshold_is_judged_differently():
    """The documented residual: 0.9999 after 1.0 with rtol=1e-4.

    optax sees float32(0.9999) == float32(1 - 1e-4) * 1.0, a tie; the core, given the
    same float32 value as a float (0.99989998...), sees it below 0.9999. Given the
    float64 0.9999 the core sees a tie too, like torch.
    """
    kwargs = {"factor": 0.5, "patience": 2, "rtol": 1e-4, "atol": 0.0, "cooldown": 0}
    metrics = [1.0, float(np.float32(0.9999))]
    _, best, plateau_count, _ = run_optax(metrics, min_scale=0.0, **kwargs)
    states, _ = run_core(metrics, min_scale=0.0, **kwargs)
    assert (best[1], plateau_count[1]) == (1.0, 1)
    assert (states[1].best, states[1].decision) == (metrics[1], Decision.IMPROVED)
    states64, _ = run_core([1.0, 0.9999], min_scale=0.0, **kwargs)
    assert states64[1].decision == Decision.NO_IMPROVEMENT


def test_traced_arguments_match_python_constants():
    """Passing patience, cooldown and min_scale as arrays does not change optax's behaviour."""
    rng = random.Random(3)
    for kwargs in [
        {
            "factor": 0.5,
            "patience": 1,
            "rtol": 0.25,
            "atol": 0.0,
            "cooldown": 2,
            "min_scale": 0.125,
        },
        {"factor": 0.25, "patience": 3, "rtol": 0.0, "atol": 0.5, "cooldown": 0, "min_scale": 0.0},
    ]:
        metrics = dyadic_stream(rng, kwargs["rtol"], kwargs["atol"])
        tx = optax.contrib.reduce_on_plateau(**kwargs)
        constant = jax.jit(_scan_updates, static_argnums=0)(tx, np.asarray(metrics, np.float32))
        traced = run_optax(metrics, **kwargs)
        for a, b in zip(constant, traced, strict=True):
            np.testing.assert_array_equal(np.asarray(a), b)


class TestWhatFromOptaxRefuses:
    """The translation's errors describe optax's real behaviour, checked here against optax."""

    def test_patience_zero_cuts_on_every_improvement(self):
        kwargs = {"factor": 0.5, "patience": 0, "rtol": 0.25, "atol": 0.0, "cooldown": 0}
        scale, *_ = run_optax([4.0, 2.0, 2.0, 2.0, 1.0], min_scale=0.0, **kwargs)
        assert scale.tolist() == [0.5, 0.25, 0.25, 0.25, 0.125]
        with pytest.raises(ValueError, match="'patience' must be >= 1"):
            PlateauConfig.from_optax(**kwargs)

    def test_min_scale_above_one_raises_the_scale(self):
        kwargs = {"factor": 0.5, "patience": 1, "rtol": 0.25, "atol": 0.0, "cooldown": 0}
        scale, *_ = run_optax([1.0], min_scale=2.0, **kwargs)
        assert scale.tolist() == [2.0]
        with pytest.raises(ValueError, match="'min_scale' must be <= 1"):
            PlateauConfig.from_optax(min_scale=2.0, **kwargs)

    def test_combined_threshold_is_neither_rel_nor_abs(self):
        """rtol=0.25 with atol=0.5: after 4, only a value below 2.5 improves."""
        kwargs = {"factor": 0.5, "patience": 1, "rtol": 0.25, "atol": 0.5, "cooldown": 0}
        _, best, *_ = run_optax([4.0, 2.75, 2.5, 2.25], min_scale=0.0, **kwargs)
        # rel alone (threshold 3) would take 2.75; abs alone (3.5) would too.
        assert best.tolist() == [4.0, 4.0, 4.0, 2.25]
        with pytest.raises(ValueError, match="both non-zero"):
            PlateauConfig.from_optax(**kwargs)


# accumulation_size: optax keeps a float32 running mean, (count * avg + value) / (count + 1),
# decides when count reaches accumulation_size, then resets count and avg to 0. The core
# computes the same formula in float64. On the streams below every running mean is a
# k/1024 grid value (each block is built from its running means), so both are exact.
ACC_STEPS = 97  # not a multiple of 2, 3 or 4: every stream ends mid-block


def _scan_accumulating(tx, values):
    updates = {"w": jnp.ones(2, jnp.float32)}

    def body(state, value):
        scaled, state = tx.update(updates, state, value=value)
        return state, (
            scaled["w"][0],  # the scale optax applied to this very update
            state.best_value,
            state.plateau_count,
            state.cooldown_count,
            state.count,
            state.avg_value,
        )

    return jax.lax.scan(body, tx.init(updates), values)[1]


@functools.partial(jax.jit, static_argnames=("factor", "rtol", "atol"))
def _optax_accumulating_trace(values, patience, cooldown, min_scale, size, *, factor, rtol, atol):
    tx = optax.contrib.reduce_on_plateau(
        factor=factor,
        patience=patience,
        rtol=rtol,
        atol=atol,
        cooldown=cooldown,
        accumulation_size=size,
        min_scale=min_scale,
    )
    return _scan_accumulating(tx, values)


def accumulating_stream(rng: random.Random, size: int, rtol: float, atol: float) -> list[float]:
    """Blocks of `size` values whose block means follow dyadic_stream (ties and non-finites)."""
    means = dyadic_stream(rng, rtol, atol) * 3
    values: list[float] = []
    for target in means:
        last = target if math.isfinite(target) else rng.randint(-16, 64) / 16
        running = [rng.randint(-16, 64) / 16 for _ in range(size - 1)] + [last]
        block, previous = [], 0.0
        for n, mean in enumerate(running, start=1):
            block.append(n * mean - (n - 1) * previous)  # so the running mean is `mean`
            previous = mean
        if not math.isfinite(target):
            block[rng.randrange(size)] = target  # from there on, the mean is `target`
        values += block
    return values[:ACC_STEPS]


def test_accumulation_matches_optax_at_every_update():
    """optax's scale after every update (between decisions too), best, counters, count, mean."""
    rng = random.Random(12)
    decisions = set()
    for _ in range(60):
        kwargs = random_kwargs(rng, factors=[0.5, 0.25], min_scales=[0.0, 2.0**-3])
        size = rng.randint(2, 4)
        metrics = accumulating_stream(rng, size, kwargs["rtol"], kwargs["atol"])
        values = np.asarray(metrics, dtype=np.float32)
        np.testing.assert_array_equal(values, metrics)
        trace = _optax_accumulating_trace(
            values,
            np.int32(kwargs["patience"]),
            np.int32(kwargs["cooldown"]),
            np.float32(kwargs["min_scale"]),
            np.int32(size),
            factor=kwargs["factor"],
            rtol=kwargs["rtol"],
            atol=kwargs["atol"],
        )
        scale, best, plateau_count, cooldown_count, count, avg = (np.asarray(a) for a in trace)
        config = PlateauConfig.from_optax(accumulation_size=size, **kwargs)
        states = simulate(metrics, config, 1.0)
        context = f"{kwargs} size={size} {metrics}"
        np.testing.assert_array_equal(scale, [s.lrs[0] for s in states], err_msg=context)
        np.testing.assert_array_equal(best, [s.best for s in states], err_msg=context)
        np.testing.assert_array_equal(plateau_count, [s.num_bad_epochs for s in states])
        np.testing.assert_array_equal(cooldown_count, [s.cooldown_counter for s in states])
        np.testing.assert_array_equal(count, [s.num_accumulated for s in states])
        # NaN inside a block: optax's running mean is NaN too (assert_array_equal matches NaNs).
        np.testing.assert_array_equal(avg, [s.accumulated_mean for s in states], err_msg=context)
        decisions.update(s.decision for s in states)
    assert decisions >= {
        Decision.ACCUMULATING,
        Decision.IMPROVED,
        Decision.NO_IMPROVEMENT,
        Decision.COOLDOWN,
        Decision.REDUCED,
        Decision.AT_FLOOR,
    }


def test_a_nan_in_a_block_is_a_bad_decision_in_optax_too():
    kwargs = {"factor": 0.5, "patience": 2, "rtol": 0.25, "atol": 0.0, "cooldown": 0}
    metrics = [1.0, 1.0, math.nan, 0.5, 2.0, 2.0]
    tx = optax.contrib.reduce_on_plateau(accumulation_size=2, **kwargs)
    trace = jax.jit(_scan_accumulating, static_argnums=0)(tx, np.asarray(metrics, np.float32))
    avg, plateau_count = np.asarray(trace[5]), np.asarray(trace[2])
    states = simulate(metrics, PlateauConfig.from_optax(accumulation_size=2, **kwargs), 1.0)
    assert np.isnan(avg[2]) and math.isnan(states[2].accumulated_mean)
    assert states[3].decision is Decision.NO_IMPROVEMENT  # mean(nan, 0.5) is NaN
    assert plateau_count.tolist() == [s.num_bad_epochs for s in states]
    assert plateau_count[3] == 1 and states[5].decision is Decision.REDUCED
