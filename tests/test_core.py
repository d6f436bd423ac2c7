"""The pure core: each rule of step(), init(), the decision record, bad input, serialisation."""

from __future__ import annotations

import copy
import json
import math
import pickle
from decimal import Decimal
from fractions import Fraction

import attrs
import pytest

from plateau import Decision, PlateauConfig, PlateauState, init, simulate, step


def run(metrics, config, lrs=1.0):
    return [s.lrs for s in simulate(metrics, config, lrs)]


class TestImprovementTest:
    """Rule 2: strict comparisons, written exactly as torch writes them."""

    def test_first_finite_metric_always_improves(self):
        for mode in ("min", "max"):
            config = PlateauConfig(mode=mode)
            state, _ = step(init(1.0, config), 123.0, config)
            assert state.best == 123.0 and state.decision is Decision.IMPROVED

    def test_exact_tie_at_the_threshold_is_not_an_improvement(self):
        config = PlateauConfig(threshold=0.5, threshold_mode="abs", patience=5)
        state, _ = step(init(1.0, config), 2.0, config)
        state, _ = step(state, 1.5, config)  # 1.5 < 2.0 - 0.5 is False
        assert state.best == 2.0 and state.num_bad_epochs == 1
        state, _ = step(state, math.nextafter(1.5, 0.0), config)
        assert state.best < 1.5 and state.num_bad_epochs == 0

    def test_relative_threshold_uses_best_times_one_minus_threshold(self):
        """best * (1 - t) and best - best * t differ in the last bit; torch uses the former."""
        best, t = 0.7, 0.3
        boundary = best * (1.0 - t)
        assert boundary != best - best * t
        config = PlateauConfig(threshold=t, patience=5)
        state, _ = step(init(1.0, config), best, config)
        state, _ = step(state, boundary, config)
        assert state.best == best  # a tie with torch's boundary: not an improvement
        state, _ = step(state, math.nextafter(boundary, 0.0), config)
        assert state.best < best

    def test_max_mode_relative_and_absolute(self):
        rel = PlateauConfig(mode="max", threshold=0.1, patience=5)
        state, _ = step(init(1.0, rel), 10.0, rel)
        state, _ = step(state, 10.0 * (0.1 + 1.0), rel)
        assert state.num_bad_epochs == 1
        state, _ = step(state, 11.1, rel)
        assert state.best == 11.1
        absolute = PlateauConfig(mode="max", threshold=1.0, threshold_mode="abs", patience=5)
        state, _ = step(init(1.0, absolute), 10.0, absolute)
        state, _ = step(state, 11.0, absolute)
        assert state.best == 10.0
        state, _ = step(state, 11.5, absolute)
        assert state.best == 11.5

    def test_negative_metrics_in_relative_min_mode_follow_torch(self):
        """With best < 0, best * (1 - t) lies above best: slightly worse values 'improve'."""
        config = PlateauConfig(threshold=0.1, patience=5)
        states = simulate([-10.0, -9.5, -9.0, -8.6], config)
        assert [s.decision for s in states] == [Decision.IMPROVED] * 4


class TestPatienceAndReduction:
    """Rule 4: strictly more than `patience` bad epochs, max(lr * factor, min_lr), eps."""

    def test_patience_ten_reduces_on_the_eleventh_bad_epoch(self):
        config = PlateauConfig()
        lrs = run([1.0] + [1.0] * 11, config)
        assert lrs[10] == (1.0,)
        assert lrs[11] == (0.1,)

    def test_reduction_resets_the_count_and_enters_cooldown(self):
        config = PlateauConfig(patience=1, cooldown=2, factor=0.5)
        states = simulate([1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0], config)
        assert [s.decision.value for s in states] == [
            "improved",
            "no_improvement",
            "reduced",
            "cooldown",
            "cooldown",
            "no_improvement",
            "reduced",
        ]
        assert states[2].cooldown_counter == 2 and states[2].num_bad_epochs == 0
        assert [s.lrs[0] for s in states] == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]

    def test_best_still_moves_during_cooldown(self):
        config = PlateauConfig(patience=0, cooldown=3)
        states = simulate([5.0, 6.0, 1.0, 2.0], config)
        assert states[2].decision is Decision.IMPROVED  # an improvement is reported as such
        assert states[2].best == 1.0 and states[2].cooldown_counter == 2
        assert states[3].decision is Decision.COOLDOWN  # a bad epoch, forgiven

    def test_float64_chain_like_torch(self):
        config = PlateauConfig(patience=0)
        assert [lr[0] for lr in run([1, 2, 2, 2], config)] == [
            1.0,
            0.1,
            0.010000000000000002,
            0.0010000000000000002,
        ]

    def test_min_lr_floor_per_lr_and_never_raised(self):
        config = PlateauConfig(patience=0, factor=0.5, min_lr=[0.3, 0.0, 0.5])
        state = init([1.0, 1.0, 0.25], config)
        state, lrs = step(state, 1.0, config)
        state, lrs = step(state, 1.0, config)
        assert lrs == (0.5, 0.5, 0.25)  # third lr is under its floor: left alone
        state, lrs = step(state, 1.0, config)
        assert lrs == (0.3, 0.25, 0.25)

    def test_cut_not_larger_than_eps_is_skipped_but_cooldown_entered(self):
        config = PlateauConfig(patience=0, factor=0.5, eps=0.5, cooldown=2)
        state, _ = step(init(1.0, config), 1.0, config)
        state, lrs = step(state, 1.0, config)
        assert lrs == (1.0,)
        assert state.decision is Decision.AT_FLOOR
        assert state.cooldown_counter == 2 and state.num_bad_epochs == 0
        config = PlateauConfig(patience=0, factor=0.5, eps=0.4999)
        state, _ = step(init(1.0, config), 1.0, config)
        assert step(state, 1.0, config)[1] == (0.5,)

    def test_at_floor_when_every_lr_is_at_min_lr(self):
        config = PlateauConfig(patience=0, min_lr=0.1)
        states = simulate([1, 1, 1], config)
        assert [s.decision for s in states[1:]] == [Decision.REDUCED, Decision.AT_FLOOR]
        assert states[2].lrs == (0.1,)

    def test_partial_reduction_is_reduced(self):
        config = PlateauConfig(patience=0, min_lr=[0.5, 0.0], factor=0.5)
        states = simulate([1, 1, 1], config, [1.0, 1.0])
        assert states[2].decision is Decision.REDUCED
        assert states[2].lrs == (0.5, 0.25)

    def test_lrs_are_returned_and_stored_identically(self):
        config = PlateauConfig(patience=0)
        state, lrs = step(init([0.1, 0.2], config), 1.0, config)
        assert lrs is state.lrs


class TestNonFinite:
    """Rule 1: on_nonfinite."""

    def test_bad_is_torch_nan_counts_as_a_bad_epoch(self):
        config = PlateauConfig(patience=1)
        states = simulate([1.0, math.nan, math.nan], config)
        assert states[1].num_bad_epochs == 1 and states[1].best == 1.0
        assert states[2].decision is Decision.REDUCED

    def test_bad_plus_inf_first_never_improves(self):
        config = PlateauConfig(patience=0)
        state, lrs = step(init(1.0, config), math.inf, config)
        assert lrs == (0.1,) and state.best == math.inf

    def test_bad_minus_inf_becomes_best_and_freezes_improvement(self):
        config = PlateauConfig(patience=1)
        states = simulate([-math.inf, -1e300, -math.inf, 5.0], config)
        assert states[0].best == -math.inf
        assert [s.decision for s in states[1:]] == [
            Decision.NO_IMPROVEMENT,
            Decision.REDUCED,
            Decision.NO_IMPROVEMENT,
        ]

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
    def test_raise_names_the_value_and_advances_nothing(self, value):
        config = PlateauConfig(on_nonfinite="raise")
        state = init(1.0, config)
        with pytest.raises(ValueError, match=f"'metric' must be finite.*{value}"):
            step(state, value, config)
        assert state == init(1.0, config)

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
    def test_skip_returns_the_state_unchanged_but_for_its_decision(self, value):
        config = PlateauConfig(on_nonfinite="skip", patience=0)
        before, _ = step(init(1.0, config), 1.0, config)
        after, lrs = step(before, value, config)
        assert lrs == before.lrs
        assert after.decision is Decision.SKIPPED
        assert attrs.evolve(after, decision=before.decision) == before

    def test_finite_metrics_unaffected_by_policy(self):
        metrics = [3.0, 2.0, 2.5, 2.5, 2.5, 1.0, 1.2, 1.3, 1.4]
        base = PlateauConfig(patience=1)
        for policy in ("raise", "skip"):
            other = attrs.evolve(base, on_nonfinite=policy)
            assert simulate(metrics, other) == simulate(metrics, base)


class TestMetricTypes:
    @pytest.mark.parametrize("metric", [2, 2.0, Fraction(2, 1), Decimal("2")])
    def test_any_single_real_number(self, metric):
        config = PlateauConfig()
        state, _ = step(init(1.0, config), metric, config)
        assert state.best == 2.0 and type(state.best) is float

    def test_numpy_scalars_and_zero_d_arrays(self):
        np = pytest.importorskip("numpy")
        config = PlateauConfig()
        for metric in (np.float32(0.5), np.float64(0.5), np.int64(3), np.array(0.5)):
            state, _ = step(init(1.0, config), metric, config)
            assert type(state.best) is float

    @pytest.mark.parametrize(
        "metric", [None, "0.5", b"1", [0.5], (0.5,), 1j, {"loss": 1}, True, 10**400]
    )
    def test_not_a_single_real_number_is_a_type_error(self, metric):
        config = PlateauConfig()
        with pytest.raises(TypeError, match="'metric' must be a single real number"):
            step(init(1.0, config), metric, config)

    def test_array_bools_are_a_type_error(self):
        np = pytest.importorskip("numpy")
        config = PlateauConfig()
        for metric in (np.True_, np.array(False)):
            with pytest.raises(TypeError, match="'metric' must be a single real number"):
                step(init(1.0, config), metric, config)

    def test_multi_element_array_is_a_type_error(self):
        np = pytest.importorskip("numpy")
        config = PlateauConfig()
        with pytest.raises(TypeError, match="'metric' must be a single real number"):
            step(init(1.0, config), np.array([0.5, 0.6]), config)


class TestBadCalls:
    def test_wrong_state_or_config_type(self):
        config = PlateauConfig()
        state = init(1.0, config)
        with pytest.raises(TypeError, match="'state' must be a PlateauState, got dict"):
            step(state.to_dict(), 1.0, config)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'config' must be a PlateauConfig, got dict"):
            step(state, 1.0, config.to_dict())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'state' must be a PlateauState, got PlateauConfig"):
            step(config, 1.0, state)  # type: ignore[arg-type]

    def test_min_lr_sequence_must_match_the_state(self):
        config = PlateauConfig(min_lr=[0.0, 0.0])
        state = init([0.1, 0.1], config)
        other = PlateauConfig(min_lr=[0.0, 0.0, 0.0])
        with pytest.raises(ValueError, match="'min_lr' has 3 values but there are 2 lrs"):
            step(state, 1.0, other)

    @pytest.mark.parametrize(
        ("lrs", "exc", "match"),
        [
            ([], ValueError, "at least one learning rate"),
            (-0.1, ValueError, r"'lrs\[0\]' must be finite and >= 0, got -0.1"),
            ([0.1, math.nan], ValueError, r"'lrs\[1\]' must be finite"),
            ([math.inf], ValueError, r"'lrs\[0\]'"),
            ("0.1", TypeError, r"'lrs\[0\]' must be a real number"),
            ([0.1, None], TypeError, r"'lrs\[1\]' must be a real number"),
        ],
    )
    def test_init_rejects_bad_lrs(self, lrs, exc, match):
        with pytest.raises(exc, match=match):
            init(lrs, PlateauConfig())

    def test_init_rejects_min_lr_count_mismatch(self):
        with pytest.raises(ValueError, match="'min_lr' has 2 values but there are 3 lrs"):
            init([0.1] * 3, PlateauConfig(min_lr=[0.0, 0.0]))

    def test_init_rejects_a_non_config(self):
        with pytest.raises(TypeError, match="'config' must be a PlateauConfig"):
            init(0.1, {"mode": "min"})  # type: ignore[arg-type]


class TestState:
    def test_init_state(self):
        assert init(0.1, PlateauConfig()) == PlateauState(lrs=(0.1,), best=math.inf)
        state = init([1, 2], PlateauConfig(mode="max"))
        assert state.lrs == (1.0, 2.0) and all(type(x) is float for x in state.lrs)
        assert state.best == -math.inf and state.decision is Decision.START

    def test_step_never_mutates_its_inputs(self):
        config = PlateauConfig(patience=0)
        state = init([0.1, 0.2], config)
        for metric in (1.0, 2.0, 0.5, 3.0):
            snapshot = copy.deepcopy((state, config))
            fields = attrs.asdict(state, recurse=False)
            new, _ = step(state, metric, config)
            assert (state, config) == snapshot
            assert attrs.asdict(state, recurse=False) == fields
            assert new != state
            state = new

    def test_state_is_frozen_pickles_and_compares(self):
        config = PlateauConfig(patience=0)
        state = simulate([1.0, 2.0], config)[-1]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            state.best = 0.0  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(state)) == state
        assert hash(state) == hash(pickle.loads(pickle.dumps(state)))
        assert state == PlateauState(**attrs.asdict(state, recurse=False))

    @pytest.mark.parametrize(
        ("changes", "exc"),
        [
            ({"best": math.nan}, ValueError),
            ({"best": "inf"}, TypeError),
            ({"num_bad_epochs": -1}, ValueError),
            ({"cooldown_counter": 1.0}, TypeError),
            ({"num_bad_epochs": "1"}, TypeError),
            ({"last_epoch": True}, TypeError),
            ({"decision": "reduced"}, TypeError),
            ({"lrs": (0.1, -1.0)}, ValueError),
        ],
    )
    def test_direct_construction_validates(self, changes, exc):
        with pytest.raises(exc, match=f"'{next(iter(changes))}"):
            attrs.evolve(init(0.1, PlateauConfig()), **changes)
        with pytest.raises(exc, match=f"'{next(iter(changes))}"):
            PlateauState(**{"lrs": (0.1,), "best": 1.0, **changes})

    def test_direct_construction_normalises_numbers(self):
        np = pytest.importorskip("numpy")
        state = PlateauState(lrs=[1, np.float32(0.5)], best=np.int64(2), last_epoch=np.int64(3))
        assert state == PlateauState(lrs=(1.0, 0.5), best=2.0, last_epoch=3)
        assert [type(x) for x in (*state.lrs, state.best, state.last_epoch)] == [float] * 3 + [int]

    def test_direct_construction_refuses_unknown_and_missing_fields(self):
        with pytest.raises(TypeError, match="warmup"):
            PlateauState(lrs=(0.1,), best=1.0, warmup=None)
        with pytest.raises(TypeError, match="best"):
            PlateauState(lrs=(0.1,))

    def test_to_dict_is_strict_json_and_round_trips_infinite_best(self):
        for mode in ("min", "max"):
            state = init([0.1, 1e-300], PlateauConfig(mode=mode))
            text = json.dumps(state.to_dict(), allow_nan=False)
            assert PlateauState.from_dict(json.loads(text)) == state

    def test_to_dict_round_trips_floats_exactly(self):
        config = PlateauConfig(patience=0, factor=1 / 3)
        state = simulate([0.1 + 0.2, 1.0, 1.0, 1.0], config, [0.7, 1e-7])[-1]
        again = PlateauState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))
        assert again == state and again.lrs == state.lrs and again.best == 0.1 + 0.2

    @pytest.mark.parametrize("key", list(init(0.1, PlateauConfig()).to_dict()))
    def test_every_key_is_required(self, key):
        d = init(0.1, PlateauConfig()).to_dict()
        del d[key]
        with pytest.raises(ValueError, match=f"'{key}'" if key in ("format", "version") else key):
            PlateauState.from_dict(d)

    @pytest.mark.parametrize(
        ("mutate", "exc", "match"),
        [
            (lambda d: d.update(best="nan"), ValueError, "'best' must be a float other than NaN"),
            (lambda d: d.update(best="1.0"), TypeError, "'best' must be a real number"),
            (lambda d: d.update(best=None), TypeError, "'best'"),
            (lambda d: d.update(lrs=[-0.1]), ValueError, r"'lrs\[0\]'"),
            (lambda d: d.update(lrs="0.1"), TypeError, r"'lrs\[0\]' must be a real number"),
            (lambda d: d.update(lrs=[]), ValueError, "at least one"),
            (lambda d: d.update(num_bad_epochs=-3), ValueError, "'num_bad_epochs' must be >= 0"),
            (lambda d: d.update(cooldown_counter=0.5), TypeError, "'cooldown_counter'"),
            (lambda d: d.update(decision="shrunk"), ValueError, "'decision' must be one of"),
            (lambda d: d.pop("last_epoch"), ValueError, "missing keys"),
            (lambda d: d.update(version="1"), ValueError, "'version' must be 1"),
            (lambda d: d.update(format="plateau.PlateauConfig"), ValueError, "'format'"),
        ],
    )
    def test_from_dict_rejects_a_corrupt_dict(self, mutate, exc, match):
        d = simulate([1.0, 2.0], PlateauConfig())[-1].to_dict()
        mutate(d)
        with pytest.raises(exc, match=match):
            PlateauState.from_dict(d)

    def test_from_dict_accepts_an_integral_best(self):
        d = simulate([1.0], PlateauConfig())[-1].to_dict()
        d["best"] = 1
        assert PlateauState.from_dict(d).best == 1.0


def test_simulate_rejects_a_non_iterable():
    with pytest.raises(TypeError, match="'metrics' must be an iterable of numbers, got NoneType"):
        simulate(None, PlateauConfig())  # type: ignore[arg-type]


def test_simulate_is_folding_step():
    config = PlateauConfig(patience=1, cooldown=1, factor=0.5)
    metrics = [5, 4, 4, 4, 3, 3, 3, 3, 2, 9, 9]
    state = init([1.0, 0.5], config)
    folded = []
    for metric in metrics:
        state, _ = step(state, metric, config)
        folded.append(state)
    assert simulate(metrics, config, [1.0, 0.5]) == folded
    assert simulate([], config) == []


def test_decision_is_a_string_enum():
    assert Decision.REDUCED == "reduced" and str(Decision.REDUCED) == "reduced"
    assert json.dumps(Decision.AT_FLOOR) == '"at_floor"'


class TestOwnership:
    """The optimizer owns the lrs: step(lrs=...) adopts what it holds now."""

    def test_an_lr_set_by_hand_is_the_one_cut(self):
        config = PlateauConfig(patience=0, factor=0.5)
        state, _ = step(init(1.0, config), 1.0, config)
        state, lrs = step(state, 2.0, config, lrs=[0.3])
        assert lrs == (0.15,) and state.lrs == (0.15,)

    def test_unchanged_lrs_keep_the_state_exactly(self):
        config = PlateauConfig(patience=3)
        state = init([0.1, 0.2], config)
        new, lrs = step(state, 1.0, config, lrs=(0.1, 0.2))
        assert lrs is state.lrs and new.lrs is state.lrs
        assert step(state, 1.0, config, lrs=[0.1, 0.2]) == step(state, 1.0, config)

    def test_a_group_added_joins_with_a_scalar_min_lr(self):
        config = PlateauConfig(patience=0, min_lr=0.05)
        state, _ = step(init(1.0, config), 1.0, config)
        state, lrs = step(state, 2.0, config, lrs=[1.0, 0.3])
        assert lrs == (0.1, 0.05)

    def test_a_count_that_does_not_fit_a_per_lr_min_lr_is_refused(self):
        config = PlateauConfig(min_lr=(0.1, 0.2))
        state = init([1.0, 1.0], config)
        with pytest.raises(ValueError, match="'min_lr' has 2 values but there are 3 lrs"):
            step(state, 1.0, config, lrs=[1.0, 1.0, 1.0])

    @pytest.mark.parametrize(
        ("lrs", "error", "match"),
        [
            ([-1.0], ValueError, r"'lrs\[0\]' must be finite and >= 0, got -1.0"),
            ([math.nan], ValueError, r"'lrs\[0\]' must be finite and >= 0, got nan"),
            (["0.1"], TypeError, r"'lrs\[0\]' must be a real number, got str"),
            ([10**400], ValueError, r"'lrs\[0\]' is too large for a float"),
            ([], ValueError, "at least one learning rate"),
        ],
    )
    def test_unusable_lrs_are_refused_by_name(self, lrs, error, match):
        config = PlateauConfig()
        with pytest.raises(error, match=match):
            step(init(0.1, config), 1.0, config, lrs=lrs)

    def test_changed_names_only_the_lrs_to_write(self):
        from plateau._core import changed

        assert changed((0.1, 0.2), (0.1, 0.2)) == []
        assert changed((0.1, 0.2, 0.3), (0.01, 0.2, 0.03)) == [(0, 0.01), (2, 0.03)]
