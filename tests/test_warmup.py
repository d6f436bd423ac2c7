"""Warmup in the pure core: the ramp, the unseen metrics, ownership, serialisation, laws.

Laws (hypothesis):
- warmup_epochs=0 is the identity, whatever warmup_start_factor is;
- after W steps the lrs are the lrs given to init, exactly;
- during warmup the lrs never decrease, and best and both counters never move;
- from step W + 1 on, the run is a plain run started at those lrs (but last_epoch);
- a strict-JSON round trip at any point mid-warmup resumes identically;
- simulate is folding step.
"""

from __future__ import annotations

import json
import math
import pickle

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import metric_streams, setups

from plateau import Decision, PlateauConfig, PlateauState, init, simulate, step

SETTINGS = settings(max_examples=200, deadline=None)


def ramp(base, f, k, w):
    """The issue's rule, written out: the lrs after warmup step k of w."""
    return tuple(b * (f + (1 - f) * k / w) for b in base)


def round_trip(state):
    return PlateauState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))


class TestConfig:
    @pytest.mark.parametrize(
        ("field", "value", "exc"),
        [
            ("warmup_epochs", -1, ValueError),
            ("warmup_epochs", 2**63, ValueError),
            ("warmup_epochs", 1.5, TypeError),
            ("warmup_epochs", 2.0, TypeError),
            ("warmup_epochs", "3", TypeError),
            ("warmup_epochs", True, TypeError),
            ("warmup_epochs", None, TypeError),
            ("warmup_start_factor", -0.1, ValueError),
            ("warmup_start_factor", 1.5, ValueError),
            ("warmup_start_factor", math.nan, ValueError),
            ("warmup_start_factor", math.inf, ValueError),
            ("warmup_start_factor", "0.1", TypeError),
            ("warmup_start_factor", None, TypeError),
            ("warmup_start_factor", False, TypeError),
        ],
    )
    def test_bad_value_is_a_clear_error_naming_field_and_value(self, field, value, exc):
        with pytest.raises(exc) as info:
            PlateauConfig(**{field: value})
        message = str(info.value)
        assert f"'{field}'" in message
        assert repr(value) in message or str(value) in message or "2**63" in message

    def test_bounds_are_accepted_and_numbers_normalised(self):
        np = pytest.importorskip("numpy")
        config = PlateauConfig(warmup_epochs=np.int64(3), warmup_start_factor=np.float32(0.5))
        assert type(config.warmup_epochs) is int and config.warmup_epochs == 3
        assert type(config.warmup_start_factor) is float and config.warmup_start_factor == 0.5
        for f in (0, 0.0, 1, 1.0):
            assert PlateauConfig(warmup_start_factor=f).warmup_start_factor == float(f)
        assert PlateauConfig(warmup_epochs=2**63 - 1).warmup_epochs == 2**63 - 1

    def test_defaults_are_no_warmup(self):
        config = PlateauConfig()
        assert (config.warmup_epochs, config.warmup_start_factor) == (0, 0.0)

    @pytest.mark.parametrize(
        "config",
        [
            PlateauConfig(warmup_epochs=5, warmup_start_factor=1 / 3),
            PlateauConfig(warmup_epochs=1),
            PlateauConfig(warmup_start_factor=0.25),  # no warmup, but f kept
        ],
    )
    def test_to_dict_round_trips_through_strict_json(self, config):
        text = json.dumps(config.to_dict(), allow_nan=False)
        assert PlateauConfig.from_dict(json.loads(text)) == config

    def test_every_key_is_saved_and_required(self):
        d = PlateauConfig(patience=3).to_dict()
        assert (d["warmup_epochs"], d["warmup_start_factor"]) == (0, 0.0)
        for key in ("warmup_epochs", "warmup_start_factor"):
            with pytest.raises(ValueError, match=f"missing keys \\['{key}'\\]"):
                PlateauConfig.from_dict({k: v for k, v in d.items() if k != key})

    def test_from_dict_validates_the_warmup_keys(self):
        d = PlateauConfig(warmup_epochs=2).to_dict()
        with pytest.raises(ValueError, match="'warmup_start_factor' must be between 0 and 1"):
            PlateauConfig.from_dict({**d, "warmup_start_factor": 2.0})
        with pytest.raises(TypeError, match="'warmup_epochs' must be an int"):
            PlateauConfig.from_dict({**d, "warmup_epochs": "2"})


class TestRamp:
    def test_init_starts_each_lr_at_its_fraction(self):
        config = PlateauConfig(warmup_epochs=4, warmup_start_factor=0.25)
        state = init([0.1, 2.0], config)
        assert state.lrs == (0.1 * 0.25, 2.0 * 0.25)
        assert state.base_lrs == (0.1, 2.0) and state.warmup_epoch == 0
        assert state.decision is Decision.START and state.last_epoch == 0
        assert state.best == math.inf and state.num_bad_epochs == state.cooldown_counter == 0

    @pytest.mark.parametrize(("w", "f"), [(1, 0.0), (3, 0.1), (5, 0.0), (4, 1.0), (7, 1 / 3)])
    def test_each_step_follows_the_rule_and_ends_on_b_exactly(self, w, f):
        base = (0.1, 0.003, 1.7)
        config = PlateauConfig(warmup_epochs=w, warmup_start_factor=f, patience=0)
        states = simulate([1.0] * (w + 2), config, base)
        for k, state in enumerate(states[: w - 1], start=1):
            assert state.lrs == ramp(base, f, k, w)
            assert state.decision is Decision.WARMUP
            assert state.base_lrs == base and state.warmup_epoch == k
        end = states[w - 1]
        assert end.lrs == base and end.decision is Decision.WARMUP
        assert end.base_lrs is None and end.warmup_epoch == 0  # the warmup is over

    def test_step_after_warmup_sets_best_then_torchs_rules(self):
        config = PlateauConfig(warmup_epochs=2, patience=0, factor=0.5)
        states = simulate([0.1, 0.2, 5.0, 6.0], config, 1.0)
        assert states[2].decision is Decision.IMPROVED and states[2].best == 5.0
        assert states[3].decision is Decision.REDUCED and states[3].lrs == (0.5,)

    def test_the_ramp_ignores_min_lr(self):
        config = PlateauConfig(warmup_epochs=2, min_lr=0.5)
        states = [init(1.0, config), *simulate([1.0, 1.0], config, 1.0)]
        assert [s.lrs for s in states] == [(0.0,), (0.5,), (1.0,)]
        config = PlateauConfig(warmup_epochs=4, min_lr=0.6)
        assert simulate([1.0], config, 1.0)[0].lrs == (0.25,)  # under the floor

    @pytest.mark.parametrize("policy", ["bad", "raise", "skip"])
    @pytest.mark.parametrize("metric", [math.nan, math.inf, -math.inf, 1e300, -5, 0])
    def test_any_real_metric_is_ignored_whatever_on_nonfinite(self, policy, metric):
        config = PlateauConfig(warmup_epochs=3, on_nonfinite=policy, patience=0)
        start = init(0.5, config)
        state, lrs = step(start, metric, config)
        assert state.decision is Decision.WARMUP and lrs == ramp((0.5,), 0.0, 1, 3)
        assert (state.best, state.num_bad_epochs, state.cooldown_counter) == (math.inf, 0, 0)
        assert state.last_epoch == 1

    @pytest.mark.parametrize("metric", [None, "0.5", [0.5], 1j, True])
    def test_a_non_number_is_still_a_type_error(self, metric):
        config = PlateauConfig(warmup_epochs=3)
        with pytest.raises(TypeError, match="'metric' must be a single real number"):
            step(init(0.5, config), metric, config)

    def test_max_mode_starts_from_minus_inf(self):
        config = PlateauConfig(mode="max", warmup_epochs=1)
        state = simulate([math.nan, 3.0], config)[-1]
        assert state.best == 3.0 and state.decision is Decision.IMPROVED


class TestOwnership:
    """An lr the optimizer changed during warmup rescales its base: the ramp scales it."""

    def test_an_lr_set_by_hand_rescales_its_base(self):
        config = PlateauConfig(warmup_epochs=4, warmup_start_factor=0.2)
        base = (1.0, 0.5)
        state, held = step(init(base, config), 0.0, config)  # after step 1
        factor = 0.2 + 0.8 * 1 / 4
        hand = (held[0] * 3.0, held[1])  # the first lr tripled by hand
        state, lrs = step(state, 0.0, config, lrs=hand)
        assert state.base_lrs == (hand[0] / factor, 0.5)
        assert lrs == ramp(state.base_lrs, 0.2, 2, 4)
        assert lrs[0] > hand[0]  # the ramp carries on from the lr set
        for _ in range(2):
            state, lrs = step(state, 0.0, config)
        assert lrs == (hand[0] / factor, 0.5)  # the other lr still ends on its b exactly

    def test_with_nothing_to_scale_the_lr_set_becomes_the_base(self):
        config = PlateauConfig(warmup_epochs=3)  # f = 0: every lr starts at 0
        state = init([0.4, 0.2], config)
        assert state.lrs == (0.0, 0.0)
        state, lrs = step(state, 0.0, config, lrs=[0.3, 0.0])
        assert state.base_lrs == (0.3, 0.2) and lrs == ramp((0.3, 0.2), 0.0, 1, 3)

    def test_a_group_added_during_warmup_ramps_from_its_lr(self):
        config = PlateauConfig(warmup_epochs=4, warmup_start_factor=0.5)
        state, held = step(init(1.0, config), 0.0, config)
        factor = 0.5 + 0.5 * 1 / 4
        state, lrs = step(state, 0.0, config, lrs=[*held, 0.01])
        assert state.base_lrs == (1.0, 0.01 / factor)
        assert lrs == ramp(state.base_lrs, 0.5, 2, 4)

    def test_unchanged_lrs_keep_the_base_exactly(self):
        config = PlateauConfig(warmup_epochs=3, warmup_start_factor=0.1)
        state = init([0.3, 0.7], config)
        for _ in range(3):
            state, lrs = step(state, 1.0, config, lrs=list(state.lrs))
        assert lrs == (0.3, 0.7)

    def test_a_base_that_would_overflow_is_refused_and_nothing_changes(self):
        config = PlateauConfig(warmup_epochs=10**6)
        state, _ = step(init(1.0, config), 0.0, config)
        with pytest.raises(ValueError, match=r"'lrs\[0\]' = 1e\+308, set during warmup"):
            step(state, 0.0, config, lrs=[1e308])
        assert state.warmup_epoch == 1 and state.base_lrs == (1.0,)

    def test_an_unusable_lr_is_refused_by_name_during_warmup(self):
        config = PlateauConfig(warmup_epochs=3)
        with pytest.raises(ValueError, match=r"'lrs\[0\]' must be finite and >= 0"):
            step(init(1.0, config), 0.0, config, lrs=[-1.0])

    def test_a_per_lr_min_lr_must_still_fit(self):
        config = PlateauConfig(warmup_epochs=3, min_lr=(0.0, 0.0))
        state = init([1.0, 1.0], config)
        with pytest.raises(ValueError, match="'min_lr' has 2 values but there are 3 lrs"):
            step(state, 0.0, config, lrs=[0.0, 0.0, 1.0])


class TestConfigReplaced:
    def test_warmup_epochs_no_longer_ahead_ends_the_warmup_at_the_lrs_held(self):
        config = PlateauConfig(warmup_epochs=4, patience=0)
        state, held = step(init(1.0, config), 0.0, config)
        for shorter in (
            attrs.evolve(config, warmup_epochs=0),
            attrs.evolve(config, warmup_epochs=1),
        ):
            after, lrs = step(state, 2.0, shorter)
            assert after.decision is Decision.IMPROVED and lrs == held
            assert after.base_lrs is None and after.warmup_epoch == 0

    def test_a_state_without_a_warmup_never_starts_one(self):
        plain = init(1.0, PlateauConfig())
        config = PlateauConfig(warmup_epochs=3)
        state, lrs = step(plain, 2.0, config)
        assert state.decision is Decision.IMPROVED and lrs == (1.0,)


class TestState:
    def test_mid_warmup_round_trips_through_strict_json(self):
        config = PlateauConfig(warmup_epochs=5, warmup_start_factor=1 / 3)
        state = simulate([1.0, 2.0], config, [0.1, 1e-300])[-1]
        d = state.to_dict()
        assert (d["base_lrs"], d["warmup_epoch"]) == ([0.1, 1e-300], 2)
        assert round_trip(state) == state

    def test_no_warmup_in_progress_is_saved_as_none_and_zero(self):
        for config in (PlateauConfig(), PlateauConfig(warmup_epochs=2)):
            for state in simulate([3.0, 2.0, 2.0], config, [0.1, 0.2])[-1:]:
                d = state.to_dict()
                assert (d["base_lrs"], d["warmup_epoch"]) == (None, 0)
                assert round_trip(state) == state

    def test_states_without_warmup_equal_todays(self):
        config = PlateauConfig(warmup_start_factor=0.7, patience=0)
        assert init([1, 2], config) == PlateauState(lrs=(1.0, 2.0), best=math.inf)
        states = simulate([1.0, 2.0], config)
        assert states[1] == PlateauState(
            lrs=(0.1,), best=1.0, last_epoch=2, decision=Decision.REDUCED, num_reductions=1
        )

    @pytest.mark.parametrize(
        ("changes", "exc", "match"),
        [
            ({"base_lrs": "x"}, TypeError, r"'base_lrs\[0\]' must be a real number, got str"),
            ({"base_lrs": [-1.0]}, ValueError, r"'base_lrs\[0\]' must be finite and >= 0"),
            ({"base_lrs": [math.nan]}, ValueError, r"'base_lrs\[0\]'"),
            ({"base_lrs": []}, ValueError, "'base_lrs' must hold at least one"),
            ({"base_lrs": [1.0, 1.0]}, ValueError, "'base_lrs' must hold one lr per lr"),
            ({"warmup_epoch": -1}, ValueError, "'warmup_epoch' must be >= 0"),
            ({"warmup_epoch": 1.0}, TypeError, "'warmup_epoch' must be an int"),
            (
                {"base_lrs": None, "warmup_epoch": 2},
                ValueError,
                "'warmup_epoch' must be 0 when 'base_lrs' is None",
            ),
            ({"warmup": [[1.0], 1]}, ValueError, r"unknown keys \['warmup'\]"),
            ({"decision": "warmed"}, ValueError, "'decision' must be one of"),
        ],
    )
    def test_from_dict_rejects_corrupt_warmup_keys(self, changes, exc, match):
        config = PlateauConfig(warmup_epochs=4)
        d = simulate([1.0], config)[-1].to_dict()
        with pytest.raises(exc, match=match):
            PlateauState.from_dict({**d, **changes})

    def test_direct_construction_validates_the_warmup_fields(self):
        with pytest.raises(TypeError, match=r"'base_lrs\[0\]' must be a real number"):
            PlateauState(lrs=(0.1,), best=1.0, base_lrs=("0.1",))
        with pytest.raises(ValueError, match="'base_lrs' must hold one lr per lr"):
            PlateauState(lrs=(0.1,), best=1.0, base_lrs=(1.0, 2.0))
        with pytest.raises(TypeError, match="'warmup_epoch' must be an int"):
            PlateauState(lrs=(0.1,), best=1.0, base_lrs=(1.0,), warmup_epoch="3")
        with pytest.raises(ValueError, match="'warmup_epoch' must be 0 when 'base_lrs' is None"):
            PlateauState(lrs=(0.1,), best=1.0, warmup_epoch=3)
        state = PlateauState(lrs=(0.1,), best=1.0, base_lrs=[1], warmup_epoch=3)
        assert (state.base_lrs, state.warmup_epoch) == ((1.0,), 3)
        plain = PlateauState(lrs=(0.1,), best=1.0)
        assert (plain.base_lrs, plain.warmup_epoch) == (None, 0)

    def test_a_state_mid_warmup_pickles(self):
        mid = simulate([1.0], PlateauConfig(warmup_epochs=3))[0]
        assert pickle.loads(pickle.dumps(mid)) == mid and mid.base_lrs == (1.0,)

    def test_decision_warmup_is_a_string(self):
        assert Decision.WARMUP == "warmup" and json.dumps(Decision.WARMUP) == '"warmup"'


def test_from_step_w_plus_one_it_is_torchs_scheduler_started_at_b():
    """Bit for bit, several groups and per-group min_lr, against torch's own class."""
    torch = pytest.importorskip("torch")
    import random

    rng = random.Random(11)
    for _ in range(40):
        w = rng.randint(1, 6)
        base = [rng.choice([0.1, 0.3, 1e-3, 1.0]) for _ in range(rng.randint(1, 3))]
        kwargs = {
            "patience": rng.randint(0, 3),
            "cooldown": rng.randint(0, 2),
            "factor": rng.choice([0.1, 0.5, 1 / 3]),
            "min_lr": [rng.choice([0.0, 1e-3, 0.05]) for _ in base],
        }
        config = PlateauConfig(warmup_epochs=w, warmup_start_factor=rng.random(), **kwargs)
        metrics = [rng.choice([1.0, 0.9, 0.8, math.nan, 1.1]) for _ in range(w + 30)]
        states = simulate(metrics, config, base)
        groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": b} for b in base]
        optimizer = torch.optim.SGD(groups)
        theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
        for metric, state in zip(metrics[w:], states[w:], strict=True):
            theirs.step(metric)
            assert list(state.lrs) == [g["lr"] for g in optimizer.param_groups]
            assert (state.best, state.num_bad_epochs, state.cooldown_counter) == (
                theirs.best,
                theirs.num_bad_epochs,
                theirs.cooldown_counter,
            )


# Laws -------------------------------------------------------------------------------

warmup_setups = setups(warmup_epochs=st.integers(1, 12), on_nonfinite=("bad", "raise", "skip"))


def finite_after(config, metrics):
    """With on_nonfinite="raise", the metrics after warmup made finite (warmup takes any)."""
    if config.on_nonfinite != "raise":
        return metrics
    w = config.warmup_epochs
    return metrics[:w] + [m if math.isfinite(m) else 0.5 for m in metrics[w:]]


@SETTINGS
@given(warmup_setups, metric_streams)
def test_zero_warmup_epochs_is_the_identity_for_any_factor(setup, metrics):
    config, lrs = setup
    config = attrs.evolve(config, on_nonfinite="bad")
    plain = attrs.evolve(config, warmup_epochs=0, warmup_start_factor=0.0)
    zero = attrs.evolve(config, warmup_epochs=0)
    states, plain_states = simulate(metrics, zero, lrs), simulate(metrics, plain, lrs)
    assert init(lrs, zero) == init(lrs, plain)
    assert states == plain_states
    assert all((s.base_lrs, s.warmup_epoch) == (None, 0) for s in states)
    assert [s.to_dict() for s in states] == [s.to_dict() for s in plain_states]


@SETTINGS
@given(warmup_setups, metric_streams)
def test_after_w_steps_the_lrs_are_b_exactly(setup, metrics):
    config, lrs = setup
    w = config.warmup_epochs
    metrics = finite_after(config, (metrics + [0.0] * w)[: w + 5])
    states = simulate(metrics, config, lrs)
    assert states[w - 1].lrs == tuple(lrs)
    assert all(type(x) is float for x in states[w - 1].lrs)


@SETTINGS
@given(warmup_setups, metric_streams)
def test_during_warmup_lrs_never_decrease_and_best_and_counters_never_move(setup, metrics):
    config, lrs = setup
    w = config.warmup_epochs
    start = init(lrs, config)
    previous = start.lrs
    for state in simulate(metrics[:w], config, lrs):
        assert all(new >= old for new, old in zip(state.lrs, previous, strict=True))
        assert all(new <= b for new, b in zip(state.lrs, lrs, strict=True))
        assert (state.best, state.num_bad_epochs, state.cooldown_counter) == (
            start.best,
            start.num_bad_epochs,
            start.cooldown_counter,
        )
        assert state.decision is Decision.WARMUP
        previous = state.lrs


@SETTINGS
@given(warmup_setups, metric_streams)
def test_after_warmup_it_is_a_plain_run_started_at_b(setup, metrics):
    config, lrs = setup
    w = config.warmup_epochs
    metrics = finite_after(config, metrics)
    warmed = simulate(metrics, config, lrs)[w:]
    plain = attrs.evolve(config, warmup_epochs=0, warmup_start_factor=0.0)
    expected = [
        attrs.evolve(s, last_epoch=s.last_epoch + w) for s in simulate(metrics[w:], plain, lrs)
    ]
    assert warmed == expected


@SETTINGS
@given(warmup_setups, metric_streams, st.integers(0, 40))
def test_json_round_trip_at_any_point_resumes_identically(setup, metrics, cut):
    config, lrs = setup
    metrics = finite_after(config, metrics)
    cut = min(cut, len(metrics), config.warmup_epochs)  # mid-warmup, or its end
    uninterrupted = simulate(metrics, config, lrs)
    state = init(lrs, config) if cut == 0 else uninterrupted[cut - 1]
    state = round_trip(state)
    config = PlateauConfig.from_dict(json.loads(json.dumps(config.to_dict(), allow_nan=False)))
    resumed = []
    for metric in metrics[cut:]:
        state, _ = step(state, metric, config)
        resumed.append(state)
    assert resumed == uninterrupted[cut:]


@SETTINGS
@given(warmup_setups, metric_streams)
def test_simulate_is_folding_step(setup, metrics):
    config, lrs = setup
    metrics = finite_after(config, metrics)
    state = init(lrs, config)
    folded = []
    for metric in metrics:
        state, new = step(state, metric, config)
        assert new is state.lrs
        folded.append(state)
    assert simulate(metrics, config, lrs) == folded
