"""plateau._torch_format without torch: the checkpoint format, which saved state wins,
torch's attribute names and the adapter's checks. Runs in the no-framework venv; the
same pieces under real torch are proven by tests/adapters/test_torch_*.py."""

from __future__ import annotations

import json
import math
import warnings
from types import SimpleNamespace

import attrs
import pytest

import plateau
from plateau import Decision, PlateauState
from plateau import _torch_format as fmt

CONFIG = plateau.PlateauConfig(patience=1)


def stepped(metrics, config=CONFIG, lrs=(0.1, 0.2)):
    state = plateau.init(lrs, config)
    for metric in metrics:
        state, _ = plateau.step(state, metric, config)
    return state


def never():
    raise AssertionError("the optimizer's lrs were read, but plateau's state wins")


# --- state_dict ---------------------------------------------------------------


def test_state_dict_is_strict_json_holding_both_formats():
    state = stepped([1.0, 2.0, 3.0])
    saved = json.loads(json.dumps(fmt.state_dict(CONFIG, state), allow_nan=False))
    assert plateau.PlateauState.from_dict(saved["state"]) == state
    assert plateau.PlateauConfig.from_dict(saved["config"]) == CONFIG
    for key in fmt.PROGRESS:
        assert saved[key] == getattr(state, key)
    assert saved["_last_lr"] == list(state.lrs)
    assert saved["min_lrs"] == [0.0, 0.0] and saved["default_min_lr"] == 0.0
    assert (saved["factor"], saved["patience"], saved["mode"]) == (0.1, 1, "min")


def test_an_infinite_best_is_left_out_of_torchs_keys_only():
    state = plateau.init([0.1], CONFIG)
    saved = fmt.state_dict(CONFIG, state)
    assert "best" not in saved and math.isinf(state.best)
    assert plateau.PlateauState.from_dict(saved["state"]).best == math.inf


def test_per_group_min_lr_has_no_default_min_lr():
    config = attrs.evolve(CONFIG, min_lr=(0.01, 0.02))
    saved = fmt.state_dict(config, plateau.init([0.1, 0.2], config))
    assert saved["min_lrs"] == [0.01, 0.02] and saved["default_min_lr"] is None


def test_a_base_entry_and_the_written_lrs():
    state = plateau.init([0.1], CONFIG)
    saved = fmt.state_dict(CONFIG, state, ("LambdaLR", {"last_epoch": 4}, (0.1,), (0.05,)))
    assert saved["_last_lr"] == [0.05]
    assert saved["base"] == {
        "state_dict": {"last_epoch": 4},
        "reference": [0.1],
        "type": "LambdaLR",
    }


# --- load_state: which saved state wins ------------------------------------------


def test_plateaus_state_wins_when_torchs_keys_agree():
    state = stepped([1.0, 2.0, 3.0])
    loaded = fmt.load_state(fmt.state_dict(CONFIG, state), CONFIG, 2, never)
    assert loaded == state


def test_plateaus_earlier_format_loads():
    state = stepped([1.0, 2.0])
    saved = {"config": CONFIG.to_dict(), "state": state.to_dict()}
    assert fmt.load_state(saved, CONFIG, 2, never) == state


def test_torchs_keys_win_when_torchs_class_stepped_since():
    saved = fmt.state_dict(CONFIG, stepped([1.0]))
    saved.update(best=0.5, num_bad_epochs=1, last_epoch=7)
    loaded = fmt.load_state(saved, CONFIG, 2, lambda: (0.3, 0.4))
    expected = plateau.PlateauState(
        lrs=(0.3, 0.4), best=0.5, num_bad_epochs=1, cooldown_counter=0, last_epoch=7
    )
    assert loaded == expected


def test_a_torch_checkpoint_takes_the_optimizers_lrs():
    saved = {"mode": "min", "best": 2.0, "num_bad_epochs": 0, "cooldown_counter": 0}
    saved["last_epoch"] = 3
    loaded = fmt.load_state(saved, CONFIG, 1, lambda: (0.25,))
    assert (loaded.lrs, loaded.best, loaded.last_epoch) == ((0.25,), 2.0, 3)


@pytest.mark.parametrize(
    ("saved", "error", "match"),
    [
        ([1, 2], TypeError, "'state_dict' must be a dict, got list"),
        ({"foo": 1}, ValueError, r"got keys \['foo'\]"),
        (
            {"mode": "min", "best": 1.0, "num_bad_epochs": -1, "cooldown_counter": 0,
             "last_epoch": 0},
            ValueError,
            "state_dict: 'num_bad_epochs'",
        ),
    ],
)  # fmt: skip
def test_bad_checkpoints_are_named(saved, error, match):
    with pytest.raises(error, match=match):
        fmt.load_state(saved, CONFIG, 1, lambda: (0.1,))


def test_another_mode_or_lr_count_is_refused():
    saved = fmt.state_dict(CONFIG, stepped([1.0]))
    with pytest.raises(ValueError, match="saved with mode='min' but this scheduler has mode='max'"):
        fmt.load_state(saved, attrs.evolve(CONFIG, mode="max"), 2, never)
    with pytest.raises(ValueError, match="holds 2 lrs but the optimizer has 3 param groups"):
        fmt.load_state(saved, CONFIG, 3, never)


def test_a_base_in_only_one_of_checkpoint_and_scheduler_is_refused():
    saved = fmt.state_dict(CONFIG, stepped([1.0]))
    with pytest.raises(ValueError, match=r"saved without a base schedule.*\(LambdaLR\)"):
        fmt.load_state(saved, CONFIG, 2, never, "LambdaLR")
    with_base = {**saved, "base": {}}
    with pytest.raises(ValueError, match="saved with a base schedule: build this scheduler"):
        fmt.load_state(with_base, CONFIG, 2, never)
    with_base["num_bad_epochs"] = 1  # torch's class stepped since
    with pytest.raises(ValueError, match="torch's ReduceLROnPlateau has stepped since"):
        fmt.load_state(with_base, CONFIG, 2, never, "LambdaLR")


# --- saved_base -----------------------------------------------------------------


def test_saved_base_returns_a_copy_and_the_reference():
    base_state = {"last_epoch": 2, "_last_lr": [0.05]}
    state = plateau.init([0.1], CONFIG)
    got_state, reference = fmt.saved_base(
        {"state_dict": base_state, "reference": [0.1], "type": "LambdaLR"}, "LambdaLR", 1,
        state, (0.1,),
    )  # fmt: skip
    assert got_state == base_state and got_state is not base_state and reference == (0.1,)


@pytest.mark.parametrize(
    ("saved", "error", "match"),
    [
        ("x", ValueError, r"must be a dict with keys \['reference', 'state_dict'\]"),
        ({"state_dict": {}}, ValueError, r"got keys \['state_dict'\]"),
        ({"state_dict": [], "reference": [0.1]}, TypeError, r"\['state_dict'\] must be a dict"),
        ({"state_dict": {}, "reference": [0.1], "type": "StepLR"}, ValueError,
         "saved from a 'StepLR' base"),
        ({"state_dict": {"_last_lr": [1, 2]}, "reference": [0.1]}, ValueError,
         r"\['_last_lr'\] must hold one lr per param group \(1\)"),
        ({"state_dict": {}, "reference": 0.1}, TypeError, "must be a list"),
        ({"state_dict": {}, "reference": [0.1, 0.2]}, ValueError, "holds 2 lrs"),
        ({"state_dict": {}, "reference": [0.0]}, ValueError, r"\['reference'\]\[0\] must be > 0"),
        ({"state_dict": {}, "reference": [-1.0]}, ValueError, "finite and >= 0"),
        ({"state_dict": {"_last_lr": [-1.0]}, "reference": [0.1]}, ValueError,
         r"'base_lrs\[0\]' must be finite"),
    ],
)  # fmt: skip
def test_bad_base_entries_are_named(saved, error, match):
    state = plateau.init([0.1], CONFIG)
    with pytest.raises(error, match=match):
        fmt.saved_base(saved, "LambdaLR", 1, state, (0.1,))


# --- torch's attribute names ------------------------------------------------------


def surface(config=CONFIG, lrs=(0.1, 0.2)):
    surface = fmt.TorchSurface()
    surface._config = config
    surface.state = plateau.init(lrs, config)
    surface.optimizer = SimpleNamespace(param_groups=[{} for _ in lrs])
    return surface


def test_fields_read_and_replace_config_and_state():
    s = surface()
    s.factor, s.num_bad_epochs = 0.5, 3
    assert s.config == attrs.evolve(CONFIG, factor=0.5)
    assert s.state.num_bad_epochs == 3 and s.num_bad_epochs == 3
    before = s.config
    with pytest.raises(ValueError, match="'patience'"):
        s.patience = -1
    assert s.config is before
    with pytest.raises(ValueError, match="'mode' was assigned mode='max'"):
        s.mode = "max"
    s.mode = "min"


def test_config_assignment_is_checked_against_the_run():
    s = surface()
    with pytest.raises(TypeError, match=r"'config' must be a plateau\.PlateauConfig, got dict"):
        s.config = {}
    with pytest.raises(ValueError, match="'config' has mode='max'"):
        s.config = attrs.evolve(CONFIG, mode="max")
    with pytest.raises(ValueError, match="'min_lr' has 3 values"):
        s.config = attrs.evolve(CONFIG, min_lr=(0.0, 0.0, 0.0))


def test_min_lrs_default_min_lr_mode_worse_in_cooldown():
    s = surface(attrs.evolve(CONFIG, min_lr=0.01))
    assert s.min_lrs == [0.01, 0.01] and s.default_min_lr == 0.01 and s.mode_worse == math.inf
    s.min_lrs = [0.01, 0.01]  # torch's restore: the scalar stays
    assert s.config.min_lr == 0.01
    s.min_lrs = [0.0, 0.02]
    assert s.config.min_lr == (0.0, 0.02) and s.default_min_lr is None
    with pytest.raises(TypeError, match="'min_lrs' must be a list"):
        s.min_lrs = "ab"
    s.default_min_lr = None
    with pytest.raises(ValueError, match=r"'default_min_lr' follows scheduler\.config"):
        s.default_min_lr = 0.5
    with pytest.raises(ValueError, match=r"'mode_worse' follows scheduler\.config"):
        s.mode_worse = 1.0
    assert not s.in_cooldown and not s.exhausted
    s.cooldown_counter = 2
    assert s.in_cooldown


# --- the adapter's own checks and messages ----------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((1, "warn", False, None, -1), TypeError, "'sync_metric' must be a bool, got int"),
        ((False, "never", False, None, -1), ValueError, "'on_repeat' must be one of"),
        ((False, None, False, None, -1), TypeError, "'on_repeat' must be one of"),
        ((False, "warn", 0, None, -1), TypeError, "'base_with_metric' must be a bool"),
        ((False, "warn", True, None, -1), ValueError, "no 'base' to advance"),
        ((False, "warn", False, None, -2), ValueError, "'last_epoch' must be >= -1"),
    ],
)
def test_check_options_names_the_argument(args, error, match):
    with pytest.raises(error, match=match):
        fmt.check_options(*args)


def test_check_options_returns_the_first_epoch():
    assert fmt.check_options(True, "skip", True, object(), 4) == 5


def test_repeat_policies():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fmt.skip_repeat("skip", 1) is True
        assert fmt.skip_repeat("allow", 1) is False
    with pytest.warns(UserWarning, match="called again with no optimizer step"):
        assert fmt.skip_repeat("warn", 1) is False


def test_deprecations_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fmt.warn_verbose("deprecated", 1)
    with pytest.warns(UserWarning, match="verbose parameter is deprecated"):
        fmt.warn_verbose(False, 1)
    with pytest.warns(UserWarning, match="epoch argument"):
        assert fmt.at_epoch(plateau.init(0.1, CONFIG), 9, 1).last_epoch == 9


def test_required_metric():
    assert fmt.required(0.5) == 0.5
    with pytest.raises(TypeError, match="this scheduler has no base="):
        fmt.required(None)


def test_base_step_checks():
    fmt.check_base_step(2, 2, "LambdaLR", with_metric=False, epoch=None, base_with_metric=False)
    # step(metric, epoch) is torch's; base_with_metric only refuses step() alone.
    fmt.check_base_step(2, 2, "LambdaLR", with_metric=True, epoch=3, base_with_metric=True)
    with pytest.raises(ValueError, match="has 3 param groups but the base schedule LambdaLR"):
        fmt.check_base_step(3, 2, "LambdaLR", with_metric=True, epoch=None, base_with_metric=False)
    with pytest.raises(TypeError, match="'epoch' goes with a metric"):
        fmt.check_base_step(2, 2, "LambdaLR", with_metric=False, epoch=3, base_with_metric=False)
    with pytest.raises(ValueError, match="base_with_metric=True"):
        fmt.check_base_step(2, 2, "LambdaLR", with_metric=False, epoch=None, base_with_metric=True)


def test_a_base_stepped_outside_or_an_lr_set_by_hand():
    fmt.check_untouched("StepLR", 3, 3)
    fmt.check_untouched("StepLR", 3, None)  # a pickle from before the count
    with pytest.raises(ValueError, match="stepped outside this scheduler"):
        fmt.check_untouched("StepLR", 4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fmt.warn_overwritten((0.1, 0.2), (0.1, 0.2), 1)
    with pytest.warns(UserWarning, match=r"param_groups\[1\]\['lr'\] was set to 0.5"):
        fmt.warn_overwritten((0.1, 0.5), (0.1, 0.2), 1)


def test_lambdas_and_scheduler_bases():
    def f(epoch):
        return 1.0

    assert fmt.lambdas(f, 2) is f
    assert fmt.lambdas((f, f), 2) == [f, f]
    with pytest.raises(ValueError, match=r"one lr_lambda per param group \(2\), got 1"):
        fmt.lambdas([f], 2)
    for bad in ([], "f", 3):
        with pytest.raises(TypeError, match="must be a torch LRScheduler"):
            fmt.lambdas(bad, 2)
    fmt.check_scheduler("StepLR", False, True)
    with pytest.raises(TypeError, match="a plateau cannot be a base"):
        fmt.check_scheduler("ReduceLROnPlateau", True, True)
    with pytest.raises(ValueError, match="built on another one"):
        fmt.check_scheduler("StepLR", False, False)


def test_lr_and_reference_checks():
    name = "optimizer.param_groups[0]['lr']"
    assert fmt.check_lr(name, 1) == 1.0
    with pytest.raises(TypeError, match=r"\['lr'\] must be a real number .*got str: 'a'"):
        fmt.check_lr(name, "a")
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        fmt.check_lr(name, -1.0)
    assert fmt.initial_lr_of(0, {"lr": 0.3}, True) == 0.3
    assert fmt.initial_lr_of(0, {"lr": 0.3, "initial_lr": 0.2}, True) == 0.2
    with pytest.raises(ValueError, match="has no 'initial_lr'"):
        fmt.initial_lr_of(0, {"lr": 0.3}, False)
    assert fmt.check_reference(1, 0.5) == 0.5
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['initial_lr'\] must be > 0"):
        fmt.check_reference(1, 0.0)


def test_after_cut_records_what_the_optimizer_holds():
    # The core cut both lrs 1.0 -> 0.1; an override cut only the first (ignite's).
    cut = PlateauState(lrs=(0.1, 0.1), best=1.0, num_reductions=1, decision=Decision.REDUCED)
    one = fmt.after_cut(cut, (1.0, 1.0), (0.1, 1.0))
    assert one == attrs.evolve(cut, lrs=(0.1, 1.0))
    # An override that wrote nothing: nothing was cut, the lrs are at their floor as read.
    none = fmt.after_cut(cut, (1.0, 1.0), (1.0, 1.0))
    assert (none.lrs, none.decision) == ((1.0, 1.0), Decision.AT_FLOOR)
