"""The plateau over a moving base schedule: ``plateau.scale_base`` and its laws (issue 11).

Laws, over random configs, metric streams and base sequences (the rule is
plateau/_base.py):
- a constant base (base == reference) gives the state's lrs themselves, which
  are torch's (tests/test_differential_torch.py and the golden traces prove the
  core against torch), bit for bit -- warmup included;
- while nothing is cut the lrs are the base's, exactly, whatever it does;
- the lr never exceeds the base;
- at a fixed base a cut is never undone: the lr never rises once warmup is over;
- every change at a fixed base is a change of the plateau's lr, by a factor of
  ``factor`` or a clamp at min_lr (or a warmup step);
- the decisions never depend on the base: the state carries everything, so a
  strict-JSON round trip gives the same lrs under any base;
- min_lr and eps apply at the reference: the floor under a base b is
  ``min_lr * b / reference``.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import metric_streams, positive_lr_values, setups

import plateau
from plateau import Decision, PlateauConfig, PlateauState, init, scale_base, simulate, step

SETTINGS = settings(max_examples=100, deadline=None)

positive = positive_lr_values
bases_st = st.lists(st.floats(min_value=0.0, max_value=20.0), min_size=1, max_size=8)
# Reference lrs must be > 0; a warmup of up to three steps.
base_setups = setups(warmup_epochs=st.integers(0, 3), lrs=positive_lr_values)
plain_setups = setups(lrs=positive_lr_values)


def states(config, lrs, metrics):
    return [init(lrs, config), *simulate(metrics, config, lrs)]


@SETTINGS
@given(base_setups, metric_streams)
def test_a_constant_base_gives_the_plateaus_own_lrs_bit_for_bit(setup, metrics):
    config, lrs = setup
    for state in states(config, lrs, metrics):
        assert scale_base(state, lrs, lrs) == state.lrs


@SETTINGS
@given(plain_setups, metric_streams, st.data())
def test_until_the_first_cut_the_lrs_are_the_bases_exactly(setup, metrics, data):
    config, lrs = setup
    for state in states(config, lrs, metrics):
        base = data.draw(st.lists(positive, min_size=len(lrs), max_size=len(lrs)))
        scaled = scale_base(state, base, lrs)
        for p, r, b, lr in zip(state.lrs, lrs, base, scaled, strict=True):
            if p == r:
                assert lr == b


@SETTINGS
@given(base_setups, metric_streams, bases_st)
def test_the_lr_never_exceeds_the_base(setup, metrics, bases):
    config, lrs = setup
    for state in states(config, lrs, metrics):
        for b in bases:
            assert all(lr <= b for lr in scale_base(state, b, lrs))


@SETTINGS
@given(base_setups, metric_streams, bases_st)
def test_at_a_fixed_base_a_cut_is_never_undone_and_every_change_is_a_cut(setup, metrics, bases):
    config, lrs = setup
    floors = config.min_lrs(len(lrs))
    run = states(config, lrs, metrics)
    for before, after in itertools.pairwise(run):
        if after.decision is Decision.WARMUP:
            continue
        for b in bases:
            old, new = scale_base(before, b, lrs), scale_base(after, b, lrs)
            assert all(n <= o for o, n in zip(old, new, strict=True))
            for i, (o, n) in enumerate(zip(old, new, strict=True)):
                if n != o:  # the plateau's lr moved, by its own rule 4
                    p, q = before.lrs[i], after.lrs[i]
                    assert q == max(p * config.factor, floors[i])
                    assert after.decision is Decision.REDUCED


@SETTINGS
@given(base_setups, metric_streams, st.integers(0, 40), bases_st)
def test_the_state_alone_carries_the_plateau_under_any_base(setup, metrics, cut, bases):
    config, lrs = setup
    run = states(config, lrs, metrics)
    state = run[min(cut, len(run) - 1)]
    back = PlateauState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))
    for b in bases:
        assert scale_base(back, b, lrs) == scale_base(state, b, lrs)


def test_the_floor_under_a_moving_base_is_min_lr_at_the_reference():
    config = PlateauConfig(patience=0, factor=0.1, min_lr=0.05)
    state = init(1.0, config)
    for metric in [1.0, 2.0, 3.0, 4.0]:  # cut to 0.1, then clamped at 0.05, then at floor
        state, _ = step(state, metric, config)
    assert state.lrs == (0.05,) and state.decision is Decision.AT_FLOOR
    for base in [0.0, 0.3, 1.0, 2.0]:
        assert scale_base(state, base, 1.0) == (0.05 * base,)
    # The base may take the lr below min_lr (a cosine to zero does): min_lr bounds the cut.
    assert scale_base(state, 0.5, 1.0)[0] < config.min_lr


def test_eps_is_judged_on_the_plateaus_lr_not_on_the_base():
    # A cut of 0.5 -> 0.25 exceeds eps=0.1 at the reference, so it is made, even though
    # under a base of 1e-3 the lr moves by far less than eps.
    config = PlateauConfig(patience=0, factor=0.5, eps=0.1)
    state, _ = step(step(init(0.5, config), 1.0, config)[0], 2.0, config)
    assert state.decision is Decision.REDUCED
    assert scale_base(state, 1e-3, 0.5) == (0.25 * (1e-3 / 0.5),)


def test_scale_units_multiply_the_base():
    # Keras and optax schedules: the state's lr is the scale, the reference 1.0.
    config = PlateauConfig(patience=0, factor=0.5)
    state = init(1.0, config)
    assert scale_base(state, [0.3]) == (0.3,)
    state, _ = step(step(state, 1.0, config)[0], 1.0, config)
    assert state.lrs == (0.5,)
    assert scale_base(state, 0.3) == (0.5 * 0.3,)


def test_one_base_or_reference_applies_to_every_lr():
    config = PlateauConfig()
    state = init([0.1, 0.2], config)
    assert scale_base(state, 0.7, [0.1, 0.2]) == (0.7, 0.7)
    assert scale_base(state, [0.01, 0.02], [0.1, 0.2]) == (0.01, 0.02)


@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [
        ({"base_lrs": -0.1}, ValueError, "base_lrs[0]"),
        ({"base_lrs": float("nan")}, ValueError, "base_lrs[0]"),
        ({"base_lrs": float("inf")}, ValueError, "base_lrs[0]"),
        ({"base_lrs": "0.1"}, TypeError, "base_lrs[0]"),
        ({"base_lrs": [0.1, True]}, TypeError, "base_lrs[1]"),
        ({"base_lrs": [0.1, 0.2, 0.3]}, ValueError, "base_lrs"),
        ({"base_lrs": []}, ValueError, "base_lrs"),
        ({"base_lrs": 0.1, "reference_lrs": 0.0}, ValueError, "reference_lrs[0]"),
        ({"base_lrs": 0.1, "reference_lrs": [0.1, -1.0]}, ValueError, "reference_lrs[1]"),
        ({"base_lrs": 0.1, "reference_lrs": None}, TypeError, "reference_lrs[0]"),
    ],
)
def test_bad_base_or_reference_is_named(kwargs, error, named):
    state = init([0.1, 0.2], PlateauConfig())
    with pytest.raises(error, match=named.replace("[", r"\[").replace("]", r"\]")):
        scale_base(state, **kwargs)


def test_something_other_than_a_state_is_a_type_error():
    with pytest.raises(TypeError, match="'state' must be a PlateauState, got dict"):
        scale_base({"lrs": [0.1]}, 0.1)  # type: ignore[arg-type]


def test_scale_base_is_public():
    assert plateau.scale_base is scale_base and "scale_base" in plateau.__all__


def test_the_lr_stays_under_a_subnormal_base():
    # Rounding in the subnormal range: 1.89 * (1.5e-323 / 1.9) rounds to 2e-323, above the
    # base; scale_base's min() keeps the law there too.
    config = PlateauConfig(patience=0, factor=0.995)
    state, _ = step(step(init(1.9, config), 1.0, config)[0], 2.0, config)
    assert state.lrs == (1.9 * 0.995,)
    assert scale_base(state, 1.5e-323, 1.9) == (1.5e-323,)
