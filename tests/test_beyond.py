"""The rules beyond torch's (issue 12): accumulation, smoothing, the cap, rel_abs, exhausted.

Each is checked against a hand computation or an independent recipe (torch's own
class fed nnU-Net's smoothed loss); the laws that relate them to torch's rules are
in tests/test_properties.py, optax's accumulation in tests/test_translation_optax.py.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import attrs
import pytest

from plateau import Decision, PlateauConfig, PlateauState, init, simulate, step

ROOT = Path(__file__).parents[1]
ACC, IMP, BAD = Decision.ACCUMULATING, Decision.IMPROVED, Decision.NO_IMPROVEMENT


def json_round_trip(state: PlateauState) -> PlateauState:
    return PlateauState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))


class TestAccumulation:
    def test_one_decision_per_block_on_its_running_mean(self):
        config = PlateauConfig(accumulation_size=3, patience=0, factor=0.5)
        states = simulate([3.0, 1.0, 2.0, 5.0, 4.0, 3.0, 9.0], config)
        assert [s.decision for s in states] == [ACC, ACC, IMP, ACC, ACC, Decision.REDUCED, ACC]
        # The running mean of each block, by hand: 3, (3+1)/2; then 5, (5+4)/2; then 9.
        assert [s.accumulated_mean for s in states] == [3.0, 2.0, 0.0, 5.0, 4.5, 0.0, 9.0]
        assert [s.num_accumulated for s in states] == [1, 2, 0, 1, 2, 0, 1]
        assert states[2].best == 2.0  # mean of 3, 1, 2
        assert [s.lrs[0] for s in states] == [1.0] * 5 + [0.5, 0.5]  # (5+4+3)/3 = 4 > 2
        assert [s.last_epoch for s in states] == list(range(1, 8))  # every step counts

    def test_the_accumulating_steps_change_nothing_else(self):
        config = PlateauConfig(accumulation_size=4, patience=1, cooldown=2)
        states = simulate([1.0, 1.0, 1.0, 1.0, 2.0, 2.0], config)
        decided = states[3]
        for state in states[4:]:
            assert state.decision is ACC
            assert attrs.evolve(
                state, last_epoch=decided.last_epoch, decision=decided.decision
            ) == attrs.evolve(decided, num_accumulated=state.num_accumulated, accumulated_mean=2.0)

    def test_decides_like_the_plain_rule_on_the_block_means(self):
        metrics = [5, 4, 4, 4, 3, 3, 3, 3, 2, 9, 9, 9, 9, 9, 8, 8, 8, 8]
        plain = PlateauConfig(patience=1, cooldown=1, factor=0.5)
        means = [sum(metrics[i : i + 2]) / 2 for i in range(0, len(metrics), 2)]
        blocked = simulate(metrics, attrs.evolve(plain, accumulation_size=2), [1.0, 0.5])
        expected = simulate(means, plain, [1.0, 0.5])
        assert [attrs.evolve(s, last_epoch=0) for s in blocked[1::2]] == [
            attrs.evolve(s, last_epoch=0) for s in expected
        ]

    def test_a_nan_in_a_block_makes_its_mean_nan_a_bad_epoch(self):
        """As optax: the NaN joins the running mean, which stays NaN to the block's end."""
        config = PlateauConfig(accumulation_size=3, patience=5)
        states = simulate([1.0, 1.0, 1.0, 0.5, math.nan, 0.0], config)
        assert math.isnan(states[4].accumulated_mean)
        assert states[5].decision is BAD and states[5].best == 1.0
        assert states[5].num_bad_epochs == 1 and states[5].accumulated_mean == 0.0
        # A state holding a NaN mean survives strict JSON, and equals its copy.
        again = json_round_trip(states[4])
        assert math.isnan(again.accumulated_mean) and again.num_accumulated == 2
        assert again == states[4] and hash(again) == hash(states[4])
        assert again != attrs.evolve(states[4], accumulated_mean=0.5)

    def test_infinities_in_a_block(self):
        config = PlateauConfig(accumulation_size=2, patience=5)
        plus = simulate([1.0, 1.0, math.inf, 0.0], config)
        assert plus[2].accumulated_mean == math.inf and plus[3].decision is BAD
        both = simulate([math.inf, -math.inf], config)
        assert both[1].decision is BAD and both[1].best == math.inf  # inf - inf is NaN
        minus = simulate([-math.inf, 5.0], config)
        assert minus[1].best == -math.inf  # -inf in min mode becomes best, as in torch

    def test_skip_keeps_a_non_finite_metric_out_of_the_block(self):
        config = PlateauConfig(accumulation_size=2, on_nonfinite="skip")
        states = simulate([1.0, math.nan, 3.0], config)
        assert [s.decision for s in states] == [ACC, Decision.SKIPPED, IMP]
        assert states[1].num_accumulated == 1 and states[2].best == 2.0

    def test_raise_changes_nothing(self):
        config = PlateauConfig(accumulation_size=2, on_nonfinite="raise")
        state, _ = step(init(1.0, config), 1.0, config)
        with pytest.raises(ValueError, match="'metric' must be finite"):
            step(state, math.inf, config)
        assert state.num_accumulated == 1 and state.accumulated_mean == 1.0

    def test_a_state_saved_mid_block_resumes_exactly(self):
        config = PlateauConfig(accumulation_size=3, patience=0, ema_decay=0.5)
        metrics = [0.3, 0.1, 0.7, 0.2, 0.9, 0.4, 0.8, 0.6]
        whole = simulate(metrics, config)
        for cut in range(1, len(metrics)):
            state = json_round_trip(whole[cut - 1])
            resumed = []
            for metric in metrics[cut:]:
                state, _ = step(state, metric, config)
                resumed.append(state)
            assert resumed == whole[cut:]

    def test_a_smaller_size_on_resume_decides_on_the_block_so_far(self):
        state = simulate([1.0, 2.0, 3.0], PlateauConfig(accumulation_size=5))[-1]
        config = PlateauConfig(accumulation_size=2)
        new, _ = step(state, 6.0, config)
        assert new.decision is IMP and new.best == 3.0  # (1 + 2 + 3 + 6) / 4


class TestSmoothing:
    def test_hand_computation(self):
        config = PlateauConfig(ema_decay=0.75, patience=5, threshold_mode="abs", threshold=0.0)
        states = simulate([4.0, 8.0, 0.0, 0.0], config)
        # 4; 0.75*4 + 0.25*8 = 5; 0.75*5 = 3.75; 0.75*3.75 = 2.8125
        assert [s.smoothed for s in states] == [4.0, 5.0, 3.75, 2.8125]
        assert [s.decision for s in states] == [IMP, BAD, IMP, IMP]
        assert [s.best for s in states] == [4.0, 4.0, 3.75, 2.8125]  # best is smoothed

    @pytest.mark.parametrize(("patience", "threshold"), [(30, 1e-3), (1, 5e-3)])
    def test_nnunet_recipe_through_torchs_own_class(self, patience, threshold):
        """nnU-Net v1 smooths the loss itself (0.93 on the old average) and feeds torch's class.

        Its scheduler: ReduceLROnPlateau(mode="min", factor=0.2, patience=30,
        threshold=1e-3, threshold_mode="abs"); patience=1 with threshold=5e-3 makes
        cuts happen on this 60-epoch curve.
        """
        torch = pytest.importorskip("torch")
        with open(ROOT / "examples" / "digits_metrics.csv", newline="") as f:
            losses = [float(row["val_loss"]) for row in csv.DictReader(f) if row["val_loss"]]
        kwargs = {"factor": 0.2, "patience": patience, "threshold": threshold}
        kwargs["threshold_mode"] = "abs"
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
        alpha, moving_average, theirs = 0.93, None, []
        for loss in losses:  # nnU-Net's update_train_loss_MA, by hand
            if moving_average is None:
                moving_average = loss
            else:
                moving_average = alpha * moving_average + (1 - alpha) * loss
            scheduler.step(moving_average)
            theirs.append((optimizer.param_groups[0]["lr"], scheduler.best, moving_average))
        states = simulate(losses, PlateauConfig(ema_decay=0.93, **kwargs), 0.01)
        assert [(s.lrs[0], s.best, s.smoothed) for s in states] == theirs
        if patience == 1:
            assert len({lr for lr, _, _ in theirs}) > 2  # not vacuous: cuts happened

    def test_a_non_finite_value_is_judged_raw_and_kept_out_of_the_average(self):
        config = PlateauConfig(ema_decay=0.5, patience=5)
        states = simulate([2.0, math.nan, math.inf, 4.0], config)
        assert [s.smoothed for s in states] == [2.0, 2.0, 2.0, 3.0]
        assert [s.decision for s in states] == [IMP, BAD, BAD, BAD]
        frozen = simulate([2.0, -math.inf, 0.0], config)
        assert frozen[1].best == -math.inf and frozen[2].decision is BAD  # torch's -inf

    def test_smooths_the_block_means(self):
        config = PlateauConfig(accumulation_size=2, ema_decay=0.5)
        states = simulate([1.0, 3.0, 5.0, 7.0], config)
        assert states[1].smoothed == 2.0 and states[3].smoothed == 0.5 * 2.0 + 0.5 * 6.0
        assert states[2].smoothed == 2.0  # carried through the accumulating step


class TestCap:
    def test_cuts_stop_at_the_cap_and_say_so(self):
        config = PlateauConfig(patience=0, cooldown=1, factor=0.5, max_reductions=2)
        states = simulate([1.0] * 9, config)
        assert [s.decision.value for s in states] == [
            "improved",
            "reduced",
            "cooldown",
            "reduced",
            "cooldown",
            "capped",
            "cooldown",
            "capped",
            "cooldown",
        ]
        assert states[-1].lrs == (0.25,) and states[-1].num_reductions == 2
        assert states[5].cooldown_counter == 1  # cooldown entered, as at the floor

    def test_zero_never_cuts(self):
        states = simulate([1.0, 1.0, 1.0], PlateauConfig(patience=0, max_reductions=0))
        assert [s.decision for s in states[1:]] == [Decision.CAPPED] * 2
        assert states[-1].lrs == (1.0,)

    def test_num_reductions_counts_cuts_not_floors_in_torchs_rules_too(self):
        config = PlateauConfig(patience=0, min_lr=0.1)
        states = simulate([1.0] * 5, config)
        assert [s.num_reductions for s in states] == [0, 1, 1, 1, 1]
        assert states[2].decision is Decision.AT_FLOOR


class TestExhausted:
    def test_at_floor_and_capped_are_the_stop_signal(self):
        floor = simulate([1.0] * 4, PlateauConfig(patience=0, min_lr=0.1))
        assert [s.exhausted for s in floor] == [False, False, True, True]
        capped = simulate([1.0] * 4, PlateauConfig(patience=1, max_reductions=1))
        assert [s.decision for s in capped] == [IMP, BAD, Decision.REDUCED, BAD]
        assert not any(s.exhausted for s in capped)
        capped = simulate([1.0] * 5, PlateauConfig(patience=1, max_reductions=1))
        assert capped[-1].decision is Decision.CAPPED and capped[-1].exhausted

    def test_a_loop_stops_on_it(self):
        config = PlateauConfig(patience=1, factor=0.5, min_lr=0.25)
        state, epochs = init(1.0, config), 0
        while not state.exhausted:
            state, _ = step(state, 1.0, config)  # a flat loss
            epochs += 1
        # 1: improved; cuts at 3 and 5 (to 0.5, 0.25); at the floor at 7.
        assert epochs == 7 and state.lrs == (0.25,)


def test_the_stop_loop_in_the_docs_runs_and_prints_what_they_say(capsys):
    text = (ROOT / "docs" / "semantics.md").read_text()
    section = text.split("## The stop signal", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/semantics.md", "exec"), {})
    printed = section.split("prints `", 1)[1].split("`", 1)[0]
    assert capsys.readouterr().out.strip() == printed


class TestRelAbs:
    def test_negative_metrics_need_a_real_improvement(self):
        """torch's rel takes -9.5 after -10 as an improvement; rel_abs does not."""
        metrics = [-10.0, -9.5, -10.5, -11.6]
        rel = simulate(metrics, PlateauConfig(threshold=0.1, patience=5))
        assert [s.decision for s in rel] == [IMP] * 4
        rel_abs = simulate(metrics, PlateauConfig(threshold=0.1, threshold_mode="rel_abs"))
        # -10.5 is not below -10 - 1; -11.6 is below -11.
        assert [s.decision for s in rel_abs] == [IMP, BAD, BAD, IMP]

    def test_max_mode_rewards(self):
        config = PlateauConfig(mode="max", threshold=0.1, threshold_mode="rel_abs", patience=5)
        states = simulate([-10.0, -9.5, -8.9, 2.0, 2.1, 2.3], config)
        assert [s.decision for s in states] == [IMP, BAD, IMP, IMP, BAD, IMP]

    def test_is_torchs_rel_exactly_on_a_positive_best(self):
        """Ties at torch's boundary best * (1 - t), not best - best * t."""
        best, t = 0.7, 0.3
        boundary = best * (1.0 - t)
        config = PlateauConfig(threshold=t, threshold_mode="rel_abs", patience=5)
        states = simulate([best, boundary, math.nextafter(boundary, 0.0)], config)
        assert [s.decision for s in states] == [IMP, BAD, IMP]

    def test_a_threshold_of_one_or_more_is_allowed(self):
        """Meaningful for signed metrics: in min mode, a positive best must be beaten below 0."""
        config = PlateauConfig(threshold=1.0, threshold_mode="rel_abs", patience=5)
        states = simulate([2.0, 0.0, -0.5, -0.9, -1.1], config)
        assert [s.decision for s in states] == [IMP, BAD, IMP, BAD, IMP]


class TestSerialisation:
    def test_a_config_dict_without_a_key_is_refused_naming_it(self):
        d = PlateauConfig(patience=3).to_dict()
        for key in ("accumulation_size", "ema_decay", "max_reductions"):
            with pytest.raises(ValueError, match=f"missing keys \\['{key}'\\]"):
                PlateauConfig.from_dict({k: v for k, v in d.items() if k != key})

    def test_new_fields_round_trip(self):
        config = PlateauConfig(
            accumulation_size=3, ema_decay=0.9, max_reductions=4, threshold_mode="rel_abs"
        )
        assert PlateauConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
        state = simulate([0.1, 0.2, 0.3, 0.4, math.inf], config)[-1]
        assert state.accumulated_mean == math.inf
        assert json_round_trip(state) == state

    @pytest.mark.parametrize(
        ("changes", "exc", "match"),
        [
            ({"num_reductions": -1}, ValueError, "'num_reductions' must be >= 0"),
            ({"num_reductions": 1.0}, TypeError, "'num_reductions' must be an int"),
            ({"num_accumulated": "2"}, TypeError, "'num_accumulated' must be an int"),
            ({"accumulated_mean": 1.5}, ValueError, "'accumulated_mean' must be 0.0"),
            ({"accumulated_mean": "x"}, TypeError, "'accumulated_mean' must be a real number"),
            ({"smoothed": math.inf}, ValueError, "'smoothed' must be None or finite, got inf"),
            ({"smoothed": "0.5"}, TypeError, "'smoothed' must be a real number"),
        ],
    )
    def test_bad_new_fields_are_refused_by_name(self, changes, exc, match):
        d = init(0.1, PlateauConfig()).to_dict()
        d.update(changes)
        with pytest.raises(exc, match=match):
            PlateauState.from_dict(d)
