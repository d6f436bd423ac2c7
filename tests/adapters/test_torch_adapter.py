"""plateau.adapters.torch.ReduceLROnPlateau against torch's own ReduceLROnPlateau."""

from __future__ import annotations

import copy
import gc
import io
import json
import logging
import math
import pickle
import random
import subprocess
import sys
import warnings

import pytest

torch = pytest.importorskip("torch")

import attrs  # noqa: E402

import plateau  # noqa: E402
from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TorchPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau


# --- building identical twins ------------------------------------------------------


def make_optimizer(lrs, tensor_lr=False):
    """An optimizer with one param group per lr; a tensor lr (float64, so values are exact,
    or float32, as torch's default) when asked."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    if tensor_lr:
        dtype = torch.float64 if tensor_lr == "float64" else torch.float32
        for group in groups:
            group["lr"] = torch.tensor(group["lr"], dtype=dtype)
        return torch.optim.Adam(groups, lr=torch.tensor(0.001))
    return torch.optim.SGD(groups, lr=0.001)


def random_case(rng):
    n_groups = rng.randint(1, 3)
    mode = rng.choice(["min", "max"])
    threshold_mode = rng.choice(["rel", "abs"])
    kwargs = {
        "mode": mode,
        "factor": rng.choice([0.1, 0.5, 0.9, 1 / 3]),
        "patience": rng.randint(0, 4),
        "threshold": rng.choice([0.0, 1e-4, 0.05] if threshold_mode == "rel" else [0.0, 0.5]),
        "threshold_mode": threshold_mode,
        "cooldown": rng.randint(0, 3),
        "eps": rng.choice([1e-8, 0.0, 1e-3]),
    }
    if rng.random() < 0.5:
        kwargs["min_lr"] = [rng.choice([0.0, 1e-4, 0.01]) for _ in range(n_groups)]
    else:
        kwargs["min_lr"] = rng.choice([0, 1e-4, 0.01])
    lrs = [rng.choice([1.0, 0.1, 0.03, 1e-3]) for _ in range(n_groups)]
    tensor_lr = rng.choice([False, False, "float32", "float64"])
    return kwargs, lrs, tensor_lr


def random_metrics(rng, n):
    """A stream with improvements, exact ties, plateaus, negatives and the odd NaN / inf."""
    value, out = rng.uniform(-2, 5), []
    for _ in range(n):
        r = rng.random()
        if r < 0.03:
            out.append(rng.choice([math.nan, math.inf, -math.inf]))
            continue
        if r < 0.35:
            value += rng.choice([-1, 1]) * rng.uniform(0, 1)
        elif r < 0.5:
            value = round(value, 1)
        out.append(value)
    return out


def as_metric(rng, value):
    """The metric as a float, an int (when whole) or a 0-d tensor, as trainers pass it."""
    kind = rng.random()
    if kind < 0.3:
        return torch.tensor(value, dtype=torch.float64)
    if kind < 0.4 and math.isfinite(value) and value == int(value):
        return int(value)
    return value


def lr_values(optimizer):
    return [group["lr"] for group in optimizer.param_groups]


def assert_same(ours, theirs, ours_opt, their_opt):
    """Same lrs, same lr types, same get_last_lr and the same counters as torch."""
    for mine, other in zip(lr_values(ours_opt), lr_values(their_opt), strict=True):
        assert type(mine) is type(other)
        assert float(mine) == float(other)
        if isinstance(mine, torch.Tensor):
            assert mine.dtype == other.dtype
    for mine, other in zip(ours.get_last_lr(), theirs.get_last_lr(), strict=True):
        assert type(mine) is type(other)
        assert float(mine) == float(other)
    assert ours.best == theirs.best or (math.isnan(ours.best) and math.isnan(theirs.best))
    assert ours.num_bad_epochs == theirs.num_bad_epochs
    assert ours.cooldown_counter == theirs.cooldown_counter
    assert ours.last_epoch == theirs.last_epoch


# --- differential ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(150))
def test_same_lrs_as_torch_on_random_streams(seed):
    rng = random.Random(seed)
    kwargs, lrs, tensor_lr = random_case(rng)
    ours_opt, their_opt = make_optimizer(lrs, tensor_lr), make_optimizer(lrs, tensor_lr)
    ours, theirs = ReduceLROnPlateau(ours_opt, **kwargs), TorchPlateau(their_opt, **kwargs)
    held = [group["lr"] for group in ours_opt.param_groups]
    by_hand = rng.randrange(10, 40)
    assert_same(ours, theirs, ours_opt, their_opt)
    for i, value in enumerate(random_metrics(rng, 60)):
        if i == by_hand:  # an lr changed by hand mid-run, as a user or another scheduler would
            for opt in (ours_opt, their_opt):
                group = opt.param_groups[-1]
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(0.7)
                else:
                    group["lr"] = 0.7
        metric = as_metric(rng, value)
        ours.step(metric)
        theirs.step(metric)
        assert_same(ours, theirs, ours_opt, their_opt)
    # Tensor lrs are filled in place, never replaced.
    for before, after in zip(held, lr_values(ours_opt), strict=True):
        assert after is before or not isinstance(before, torch.Tensor)


def test_the_random_cases_exercise_reductions_floors_and_tensors():
    """Guard against a vacuous differential: the streams do cut lrs, hit floors, use tensors."""
    decisions, tensors = set(), 0
    for seed in range(150):
        rng = random.Random(seed)
        kwargs, lrs, tensor_lr = random_case(rng)
        tensors += bool(tensor_lr)
        scheduler = ReduceLROnPlateau(make_optimizer(lrs, tensor_lr), **kwargs)
        for value in random_metrics(rng, 60):
            scheduler.step(value)
            decisions.add(scheduler.state.decision)
    assert decisions >= {
        plateau.Decision.REDUCED,
        plateau.Decision.AT_FLOOR,
        plateau.Decision.COOLDOWN,
        plateau.Decision.IMPROVED,
        plateau.Decision.NO_IMPROVEMENT,
    }
    assert tensors > 20


def test_float32_tensor_lr_keeps_the_fast_path():
    """A float32 tensor rounds each new lr; the state records what the tensor holds."""
    opt = make_optimizer([0.1], tensor_lr="float32")
    scheduler = ReduceLROnPlateau(opt, patience=0)
    for metric in [1.0, 2.0, 3.0]:
        scheduler.step(metric)
    assert scheduler.state.decision is plateau.Decision.REDUCED
    assert scheduler.state.lrs == (float(opt.param_groups[0]["lr"]),)
    assert scheduler.state.lrs != (0.1 * 0.1 * 0.1,)  # rounded to float32, not float64


def test_is_torchs_plateau_scheduler():
    scheduler = ReduceLROnPlateau(make_optimizer([0.1]))
    assert isinstance(scheduler, TorchPlateau)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    assert scheduler.optimizer.param_groups[0]["lr"] == 0.1


def test_construction_touches_no_param_group():
    """torch's LRScheduler base adds 'initial_lr' and wraps optimizer.step; neither class does."""
    opt = make_optimizer([0.1, 0.2])
    before = copy.deepcopy(opt.param_groups)
    ReduceLROnPlateau(opt)
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] == [
        {k: v for k, v in g.items() if k != "params"} for g in before
    ]
    assert not hasattr(opt.step, "_wrapped_by_lr_sched")


def test_torch_attribute_names_read_config_and_state():
    scheduler = ReduceLROnPlateau(make_optimizer([1.0, 0.5]), patience=0, min_lr=[0.1, 0.2])
    scheduler.step(1.0)
    scheduler.step(2.0)
    assert (scheduler.mode, scheduler.factor, scheduler.patience) == ("min", 0.1, 0)
    assert (scheduler.best, scheduler.num_bad_epochs, scheduler.last_epoch) == (1.0, 0, 2)
    assert scheduler.min_lrs == [0.1, 0.2]
    assert not scheduler.in_cooldown


# What torch's class accepts as an attribute write; each is drawn at random mid-run.
WRITES = {
    "factor": lambda rng: rng.choice([0.5, 0.25]),
    "patience": lambda rng: rng.randint(0, 3),
    "threshold": lambda rng: rng.choice([0.0, 0.01]),
    "threshold_mode": lambda rng: rng.choice(["rel", "abs"]),
    "cooldown": lambda rng: rng.randint(0, 2),
    "eps": lambda rng: rng.choice([0.0, 1e-8]),
    "best": lambda rng: rng.uniform(-1, 3),
    "num_bad_epochs": lambda rng: rng.randint(0, 4),
    "cooldown_counter": lambda rng: rng.randint(0, 2),
    "last_epoch": lambda rng: rng.randint(0, 100),
    "min_lrs": lambda rng: [rng.choice([0.0, 0.01, 0.2]), rng.choice([0.0, 0.05])],
    "mode": lambda rng: "min",  # the current mode: the only value that keeps best meaningful
}


@pytest.mark.parametrize("seed", range(40))
def test_attribute_writes_mean_what_they_mean_in_torch(seed):
    """timm writes best and last_epoch, ignite last_epoch += 1: any such write, then torch's lrs."""
    rng = random.Random(3000 + seed)
    ours_opt, their_opt = make_optimizer([1.0, 0.3]), make_optimizer([1.0, 0.3])
    ours, theirs = ReduceLROnPlateau(ours_opt, patience=1), TorchPlateau(their_opt, patience=1)
    for value in random_metrics(rng, 40):
        if rng.random() < 0.3:
            name = rng.choice(sorted(WRITES))
            written = WRITES[name](rng)
            for scheduler in (ours, theirs):
                setattr(scheduler, name, copy.copy(written))
            assert getattr(ours, name) == getattr(theirs, name)
        if rng.random() < 0.1:
            ours.last_epoch += 1
            theirs.last_epoch += 1
        ours.step(value)
        theirs.step(value)
        assert_same(ours, theirs, ours_opt, their_opt)
        assert ours.min_lrs == theirs.min_lrs
    assert ours.state.last_epoch == theirs.last_epoch


def test_attribute_writes_replace_config_and_state():
    scheduler = ReduceLROnPlateau(make_optimizer([1.0]), patience=5)
    state, config = scheduler.state, scheduler.config
    scheduler.patience = 0
    scheduler.best = 0.5
    assert scheduler.config == attrs.evolve(config, patience=0)
    assert scheduler.state == attrs.evolve(state, best=0.5)
    assert state.best == math.inf  # the old state is untouched: it is immutable
    scheduler.min_lrs = [0.0]  # the scalar default's value: stays a scalar, as torch's default
    assert scheduler.config.min_lr == 0.0
    scheduler.min_lrs = [0.25]
    assert scheduler.config.min_lr == (0.25,)
    scheduler.default_min_lr = None  # now per group, as in torch
    scheduler.mode_worse = math.inf


@pytest.mark.parametrize(
    ("name", "value", "error", "match"),
    [
        ("patience", -1, ValueError, "'patience' must be >= 0, got -1"),
        ("patience", 2.5, TypeError, "'patience' must be an int, got float: 2.5"),
        ("factor", 1.0, ValueError, "'factor' must be strictly between 0 and 1, got 1.0"),
        ("threshold_mode", "relative", ValueError, "'threshold_mode' must be one of"),
        ("eps", math.nan, ValueError, "'eps' must be finite and >= 0, got nan"),
        ("best", math.nan, ValueError, "'best' must be a float other than NaN, got nan"),
        ("best", "0.5", TypeError, "'best' must be a real number, got str: '0.5'"),
        ("num_bad_epochs", -1, ValueError, "'num_bad_epochs' must be >= 0, got -1"),
        ("last_epoch", 1.5, TypeError, "'last_epoch' must be an int, got float: 1.5"),
        ("cooldown_counter", True, TypeError, "'cooldown_counter' must be an int, got bool"),
        ("mode", "max", ValueError, "'mode' was assigned mode='max' but this scheduler has"),
        ("mode", 3, TypeError, "'mode' must be a str"),
        ("min_lrs", 0.1, TypeError, "'min_lrs' must be a list, one lr per param group"),
        ("min_lrs", [0.1], ValueError, "'min_lr' has 1 values but there are 2 lrs"),
        ("min_lrs", [0.1, -1.0], ValueError, r"'min_lr\[1\]' must be finite and >= 0"),
        ("default_min_lr", 0.5, ValueError, "'default_min_lr' follows scheduler.config"),
        ("mode_worse", 0.0, ValueError, "'mode_worse' follows scheduler.config"),
    ],
)
def test_a_bad_attribute_write_names_it_and_changes_nothing(name, value, error, match):
    scheduler = ReduceLROnPlateau(make_optimizer([1.0, 1.0]), patience=0)
    scheduler.step(1.0)
    state, config = scheduler.state, scheduler.config
    with pytest.raises(error, match=match):
        setattr(scheduler, name, value)
    assert scheduler.state is state
    assert scheduler.config is config
    with pytest.raises(AttributeError):
        scheduler.in_cooldown = True  # a property in torch too


def test_config_can_be_replaced_between_steps():
    opt = make_optimizer([1.0])
    scheduler = ReduceLROnPlateau(opt, patience=5)
    scheduler.step(1.0)
    scheduler.config = attrs.evolve(scheduler.config, patience=0)
    scheduler.step(2.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_a_config_with_another_mode_is_rejected_and_changes_nothing():
    """best=inf from min mode would make every max-mode epoch a bad one."""
    opt = make_optimizer([1.0])
    scheduler = ReduceLROnPlateau(opt, patience=0)
    scheduler.step(1.0)
    before = scheduler.config
    with pytest.raises(
        ValueError, match="'config' has mode='max' but this scheduler has mode='min'"
    ):
        scheduler.config = attrs.evolve(scheduler.config, mode="max")
    assert scheduler.config is before
    scheduler.step(0.5)
    assert scheduler.state.decision is plateau.Decision.IMPROVED


@pytest.mark.parametrize(
    "not_a_config",
    [{"patience": 2}, None, plateau.PlateauConfig().to_dict()],
    ids=["dict", "None", "to_dict"],
)
def test_a_config_that_is_not_a_plateau_config_is_a_type_error(not_a_config):
    scheduler = ReduceLROnPlateau(make_optimizer([1.0]), patience=0)
    before = scheduler.config
    name = type(not_a_config).__name__
    with pytest.raises(TypeError, match=f"'config' must be a plateau.PlateauConfig, got {name}"):
        scheduler.config = not_a_config
    assert scheduler.config is before
    scheduler.step(1.0)
    scheduler.step(2.0)
    assert scheduler.state.decision is plateau.Decision.REDUCED


def test_a_config_with_a_min_lr_per_group_must_fit_the_param_groups():
    opt = make_optimizer([1.0, 1.0])
    scheduler = ReduceLROnPlateau(opt, patience=0)
    before = scheduler.config
    with pytest.raises(ValueError, match="'min_lr' has 3 values but there are 2 lrs"):
        scheduler.config = attrs.evolve(before, min_lr=(0.1, 0.1, 0.1))
    assert scheduler.config is before
    # The count is the optimizer's, even before a step has seen a group added.
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0})
    scheduler.config = attrs.evolve(before, min_lr=(0.5, 0.05, 0.5))
    scheduler.step(1.0)
    scheduler.step(2.0)
    assert lr_values(opt) == [0.5, pytest.approx(0.1), 0.5]
    assert scheduler.min_lrs == [0.5, 0.05, 0.5]


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("min_lr", [0, 0.01, [0.0, 0.02]], ids=["int", "float", "per-group"])
def test_default_min_lr_and_mode_worse_are_torchs(mode, min_lr):
    ours = ReduceLROnPlateau(make_optimizer([1.0, 1.0]), mode=mode, min_lr=min_lr)
    theirs = TorchPlateau(make_optimizer([1.0, 1.0]), mode=mode, min_lr=min_lr)
    assert ours.default_min_lr == theirs.default_min_lr
    assert type(ours.default_min_lr) is type(theirs.default_min_lr) or isinstance(min_lr, int)
    assert ours.mode_worse == theirs.mode_worse


def test_copy_and_pickle_keep_the_schedule():
    scheduler = ReduceLROnPlateau(make_optimizer([1.0]), patience=0)
    scheduler.step(1.0)
    scheduler.step(2.0)
    for clone in (copy.deepcopy(scheduler), pickle.loads(pickle.dumps(scheduler))):
        assert clone.state == scheduler.state
        assert clone.config == scheduler.config
        clone.step(3.0)
        assert clone.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


# --- param groups added after construction -----------------------------------------


def test_added_group_with_scalar_min_lr_matches_torch():
    ours_opt, their_opt = make_optimizer([1.0]), make_optimizer([1.0])
    ours = ReduceLROnPlateau(ours_opt, patience=0, min_lr=0.05)
    theirs = TorchPlateau(their_opt, patience=0, min_lr=0.05)
    for value in [3.0, 2.0]:
        ours.step(value)
        theirs.step(value)
    for opt in (ours_opt, their_opt):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.3})
    for value in [2.5, 2.5, 1.0, 4.0, 4.0]:
        ours.step(value)
        theirs.step(value)
        assert_same(ours, theirs, ours_opt, their_opt)
    assert ours.state.lrs == (0.05, 0.05)
    assert ours.min_lrs == [0.05, 0.05]


def test_added_group_with_per_group_min_lr_is_a_clear_error():
    opt = make_optimizer([1.0, 1.0])
    scheduler = ReduceLROnPlateau(opt, min_lr=[0.1, 0.2])
    scheduler.step(1.0)
    before = scheduler.state
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.3})
    with pytest.raises(
        ValueError, match=r"'min_lr' has 2 values but there are 3 lrs \(one per param group"
    ):
        scheduler.step(0.5)
    assert scheduler.state is before


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "not_an_optimizer",
    [None, "sgd", torch.nn.Linear(1, 1), [torch.nn.Parameter(torch.zeros(1))]],
    ids=["None", "str", "module", "param-list"],
)
def test_a_non_optimizer_is_a_type_error_naming_it(not_an_optimizer):
    name = type(not_an_optimizer).__name__
    with pytest.raises(TypeError, match=f"must be a torch.optim.Optimizer, got {name}$"):
        ReduceLROnPlateau(not_an_optimizer)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"factor": 1.0}, ValueError, "'factor' must be strictly between 0 and 1, got 1.0"),
        ({"factor": 0.0}, ValueError, "'factor'"),
        ({"patience": -1}, ValueError, "'patience' must be >= 0, got -1"),
        ({"patience": 2.5}, TypeError, "'patience' must be an int"),
        ({"mode": "MIN"}, ValueError, "'mode' must be one of"),
        ({"threshold_mode": "relative"}, ValueError, "'threshold_mode'"),
        ({"min_lr": -0.1}, ValueError, "'min_lr' must be finite and >= 0"),
        (
            {"min_lr": [0.1, 0.2, 0.3]},
            ValueError,
            r"'min_lr' has 3 values but there are 2 lrs \(one per param group",
        ),
        ({"eps": math.nan}, ValueError, "'eps'"),
        ({"on_nonfinite": "ignore"}, ValueError, "'on_nonfinite'"),
        ({"sync_metric": 1}, TypeError, "'sync_metric' must be a bool, got int"),
        ({"sync_timeout": 0.0}, ValueError, "'sync_timeout' must be > 0 seconds, got 0.0"),
        ({"sync_timeout": math.inf}, ValueError, "'sync_timeout' must be finite and >= 0"),
        ({"sync_timeout": "300"}, TypeError, "'sync_timeout' must be a real number"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ReduceLROnPlateau(make_optimizer([0.1, 0.2]), **kwargs)


@pytest.mark.parametrize(
    "metric",
    [None, "0.5", b"1", True, torch.tensor([1.0, 2.0]), [1.0]],
    ids=["None", "str", "bytes", "bool", "2-element-tensor", "list"],
)
def test_bad_metric_is_a_type_error_and_changes_nothing(metric):
    opt = make_optimizer([0.1])
    scheduler = ReduceLROnPlateau(opt, patience=0)
    scheduler.step(1.0)
    before = scheduler.state
    with pytest.raises(TypeError, match="'metric' must be a single real number"):
        scheduler.step(metric)
    assert scheduler.state is before
    assert opt.param_groups[0]["lr"] == 0.1


def test_nonfinite_policies():
    opt = make_optimizer([0.1])
    raising = ReduceLROnPlateau(opt, patience=0, on_nonfinite="raise")
    raising.step(1.0)
    with pytest.raises(ValueError, match="'metric' must be finite"):
        raising.step(math.nan)
    assert raising.state.last_epoch == 1
    skipping = ReduceLROnPlateau(opt, patience=0, on_nonfinite="skip")
    skipping.step(1.0)
    skipping.step(math.inf)
    assert skipping.state.decision is plateau.Decision.SKIPPED
    assert opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize(
    ("lr", "error", "match"),
    [
        (-0.1, ValueError, r"param_groups\[0\]\['lr'\]' must be finite and >= 0, got -0.1"),
        (math.nan, ValueError, r"param_groups\[0\]\['lr'\]' must be finite and >= 0, got nan"),
        (None, TypeError, r"param_groups\[0\]\['lr'\] must be a real number.*NoneType"),
        ("fast", TypeError, r"param_groups\[0\]\['lr'\] must be a real number.*str"),
        ("0.5", TypeError, r"param_groups\[0\]\['lr'\] must be a real number.*str: '0.5'"),
        (True, TypeError, r"param_groups\[0\]\['lr'\] must be a real number.*bool: True"),
        (
            torch.tensor([0.1, 0.2]),
            TypeError,
            r"one-element real tensor, got a torch.float32 tensor of shape \(2,\)",
        ),
        (torch.tensor(True), TypeError, "got a torch.bool tensor of shape"),
    ],
    ids=[
        "negative",
        "nan",
        "None",
        "str",
        "numeric-str",
        "bool",
        "2-element-tensor",
        "bool-tensor",
    ],
)
@pytest.mark.parametrize("n_groups", [1, 2])
def test_an_unusable_lr_set_by_hand_is_a_clear_error(lr, error, match, n_groups):
    """float() takes "0.5" and True; neither is an lr. One group and several are read apart."""
    opt = make_optimizer([0.1] * n_groups)
    scheduler = ReduceLROnPlateau(opt)
    scheduler.step(1.0)
    before = scheduler.state
    opt.param_groups[0]["lr"] = lr
    with pytest.raises(error, match=match):
        scheduler.step(1.0)
    assert scheduler.state is before
    with pytest.raises(error, match=match):
        ReduceLROnPlateau(opt)


def test_a_param_group_without_an_lr_is_a_clear_error():
    opt = make_optimizer([0.1])
    scheduler = ReduceLROnPlateau(opt)
    del opt.param_groups[0]["lr"]
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['lr'\] must be a real number"):
        scheduler.step(1.0)


def test_real_lrs_of_other_types_are_taken_as_torch_takes_them():
    """An int, a numpy float32 or a 0-d float64 tensor set by hand: the same lrs as torch."""
    np = pytest.importorskip("numpy")
    for lr in [1, np.float32(0.5), np.float64(0.25), torch.tensor(0.5, dtype=torch.float64)]:
        ours_opt, their_opt = make_optimizer([1.0, 1.0]), make_optimizer([1.0, 1.0])
        ours = ReduceLROnPlateau(ours_opt, patience=0)
        theirs = TorchPlateau(their_opt, patience=0)
        for i, value in enumerate([1.0, 2.0, 3.0, 4.0]):
            if i == 1:
                for opt in (ours_opt, their_opt):
                    for group in opt.param_groups:
                        group["lr"] = copy.deepcopy(lr)
            ours.step(value)
            theirs.step(value)
            assert_same(ours, theirs, ours_opt, their_opt)
        assert ours.state.decision is plateau.Decision.REDUCED


def test_epoch_argument_is_deprecated_as_in_torch():
    ours_opt, their_opt = make_optimizer([1.0]), make_optimizer([1.0])
    ours, theirs = ReduceLROnPlateau(ours_opt, patience=0), TorchPlateau(their_opt, patience=0)
    for epoch, value in [(5, 1.0), (9, 2.0), (3, 3.0)]:
        with pytest.warns(UserWarning, match="deprecated"):
            ours.step(value, epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs.step(value, epoch)
        assert_same(ours, theirs, ours_opt, their_opt)
    before = ours.state
    with pytest.raises(ValueError, match="'last_epoch' must be >= 0"), pytest.warns(UserWarning):
        ours.step(4.0, -1)
    assert ours.state is before
    assert ours_opt.param_groups[0]["lr"] == their_opt.param_groups[0]["lr"]


def test_missing_torch_names_the_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "try:\n"
        "    import plateau.adapters.torch\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc.name, '|', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "torch | plateau.adapters.torch requires torch; install 'plateau-lr[torch]'"
    )


# --- state_dict --------------------------------------------------------------------


def run(scheduler, metrics):
    lrs = []
    for metric in metrics:
        scheduler.step(metric)
        lrs.append([float(lr) for lr in lr_values(scheduler.optimizer)])
    return lrs


def resume(scheduler_cls, kwargs, lrs, tensor_lr, optimizer_state, scheduler_state):
    """A fresh optimizer and scheduler restored as a training script would restore them."""
    opt = make_optimizer(lrs, tensor_lr)
    opt.load_state_dict(optimizer_state)
    scheduler = scheduler_cls(opt, **kwargs)
    scheduler.load_state_dict(scheduler_state)
    return scheduler


@pytest.mark.parametrize("seed", range(40))
def test_json_round_trip_mid_run(seed):
    rng = random.Random(1000 + seed)
    kwargs, lrs, tensor_lr = random_case(rng)
    metrics = random_metrics(rng, 50)
    cut = rng.randrange(0, 30)
    reference = TorchPlateau(make_optimizer(lrs, tensor_lr), **kwargs)
    expected = run(reference, metrics)

    first = ReduceLROnPlateau(make_optimizer(lrs, tensor_lr), **kwargs)
    head = run(first, metrics[:cut])
    saved = json.loads(json.dumps(first.state_dict()))  # best may be Infinity, as torch's
    second = resume(ReduceLROnPlateau, kwargs, lrs, tensor_lr, first.optimizer.state_dict(), saved)
    assert second.state == first.state
    assert head + run(second, metrics[cut:]) == expected


def refuse_non_finite(name):
    raise ValueError(f"not strict JSON: {name}")


def test_the_plateau_key_is_strict_json_before_any_improvement():
    scheduler = ReduceLROnPlateau(make_optimizer([0.1]), mode="max")
    scheduler.step(math.nan)
    saved = scheduler.state_dict()
    plateau_key = json.loads(saved["plateau"], parse_constant=refuse_non_finite)
    assert plateau_key["state"]["best"] == "-inf"
    assert saved["best"] == saved["mode_worse"] == -math.inf  # torch's keys, as torch's
    clone = ReduceLROnPlateau(make_optimizer([0.1]), mode="max")
    clone.load_state_dict(torch_round_trip(saved))
    assert clone.state == scheduler.state


@pytest.mark.parametrize("seed", range(40))
def test_loads_torchs_own_state_dict_mid_run(seed):
    rng = random.Random(2000 + seed)
    kwargs, lrs, tensor_lr = random_case(rng)
    metrics = random_metrics(rng, 50)
    cut = rng.randrange(1, 30)
    reference = TorchPlateau(make_optimizer(lrs, tensor_lr), **kwargs)
    expected = run(reference, metrics)

    checkpointed = TorchPlateau(make_optimizer(lrs, tensor_lr), **kwargs)
    head = run(checkpointed, metrics[:cut])
    ours = resume(
        ReduceLROnPlateau,
        kwargs,
        lrs,
        tensor_lr,
        checkpointed.optimizer.state_dict(),
        checkpointed.state_dict(),
    )
    assert ours.best == checkpointed.best or math.isnan(checkpointed.best)
    assert ours.num_bad_epochs == checkpointed.num_bad_epochs
    assert ours.cooldown_counter == checkpointed.cooldown_counter
    assert ours.last_epoch == checkpointed.last_epoch
    assert head + run(ours, metrics[cut:]) == expected


def test_a_torch_checkpoint_s_settings_are_ignored_unvalidated():
    """torch accepts factor=0 and negative eps; its checkpoint still carries the progress."""
    theirs = TorchPlateau(make_optimizer([1.0]), patience=1, factor=0.0, eps=-1.0)
    for value in [1.0, 2.0]:
        theirs.step(value)
    ours = ReduceLROnPlateau(make_optimizer([1.0]), patience=1)
    ours.load_state_dict(theirs.state_dict())
    assert (ours.best, ours.num_bad_epochs, ours.last_epoch) == (1.0, 1, 2)
    assert ours.config == plateau.PlateauConfig(patience=1)


def test_loads_an_older_torch_state_dict():
    """torch < 2.6 wrote no default_min_lr; torch < 2.7 wrote verbose."""
    theirs = TorchPlateau(make_optimizer([1.0]), patience=1)
    for value in [1.0, 2.0]:
        theirs.step(value)
    old = theirs.state_dict()
    del old["default_min_lr"]
    old["verbose"] = False
    ours = ReduceLROnPlateau(make_optimizer([1.0]), patience=1)
    ours.load_state_dict(old)
    assert (ours.best, ours.num_bad_epochs, ours.last_epoch) == (1.0, 1, 2)


def test_the_constructors_config_wins_on_resume():
    """torch's class takes the checkpoint's patience; ours keeps the one it was built with."""
    metrics = [1.0, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    first = ReduceLROnPlateau(make_optimizer([1.0]), patience=5)
    run(first, metrics[:3])
    saved = json.loads(json.dumps(first.state_dict()))

    ours = ReduceLROnPlateau(make_optimizer([1.0]), patience=1, factor=0.5)
    ours.load_state_dict(saved)
    assert ours.config == plateau.PlateauConfig(patience=1, factor=0.5)
    assert ours.state.num_bad_epochs == 1  # the progress did carry over

    # The reference: torch with patience=1 and factor=0.5 at the same point of the run.
    theirs = TorchPlateau(make_optimizer([1.0]), patience=1, factor=0.5)
    run(theirs, metrics[:3])
    assert run(ours, metrics[3:]) == run(theirs, metrics[3:])

    # What torch itself does with the equivalent checkpoint: the checkpoint's settings win.
    torch_first = TorchPlateau(make_optimizer([1.0]), patience=5)
    run(torch_first, metrics[:3])
    torch_resumed = TorchPlateau(make_optimizer([1.0]), patience=1, factor=0.5)
    torch_resumed.load_state_dict(torch_first.state_dict())
    assert (torch_resumed.patience, torch_resumed.factor) == (5, 0.1)
    # ... while ours, given the same torch checkpoint, keeps its own.
    ours.load_state_dict(torch_first.state_dict())
    assert (ours.patience, ours.factor) == (1, 0.5)


@pytest.mark.parametrize("source", ["plateau", "torch"])
def test_a_checkpoint_from_the_other_mode_is_rejected(source):
    cls = ReduceLROnPlateau if source == "plateau" else TorchPlateau
    saved = cls(make_optimizer([0.1]), mode="max")
    saved.step(3.0)
    scheduler = ReduceLROnPlateau(make_optimizer([0.1]), mode="min")
    before = scheduler.state
    with pytest.raises(
        ValueError, match=r"saved with mode='max' but this scheduler has mode='min'"
    ):
        scheduler.load_state_dict(saved.state_dict())
    assert scheduler.state is before


@pytest.mark.parametrize(
    ("state_dict", "error", "match"),
    [
        ([1, 2], TypeError, "'state_dict' must be a dict, got list"),
        ({}, ValueError, r"must come from state_dict\(\).*got keys \[\]"),
        ({"best": 1.0, "num_bad_epochs": 0}, ValueError, r"got keys \['best', 'num_bad_epochs'\]"),
        ({"config": {}, "state": {}}, ValueError, "'format' must be 'plateau.PlateauConfig'"),
        ({"plateau": {}}, TypeError, r"state_dict\['plateau'\] must be a JSON str, got dict"),
        ({"plateau": "{"}, ValueError, r"state_dict\['plateau'\] is not JSON"),
    ],
)
def test_a_foreign_state_dict_is_rejected(state_dict, error, match):
    scheduler = ReduceLROnPlateau(make_optimizer([0.1]))
    with pytest.raises(error, match=match):
        scheduler.load_state_dict(state_dict)


@pytest.mark.parametrize(
    ("where", "key", "value", "error", "match"),
    [
        ("state", "num_bad_epochs", -1, ValueError, "'num_bad_epochs' must be >= 0"),
        ("state", "best", None, TypeError, "'best'"),
        ("config", "patience", "ten", TypeError, "'patience' must be an int"),
        ("torch", "num_bad_epochs", 1.5, TypeError, "'num_bad_epochs' must be an int"),
        ("torch", "best", math.nan, ValueError, "'best' must be a float other than NaN"),
    ],
)
def test_a_corrupt_checkpoint_is_rejected_and_changes_nothing(where, key, value, error, match):
    if where == "torch":
        state_dict = TorchPlateau(make_optimizer([0.1])).state_dict()
        state_dict[key] = value
    else:
        state_dict = ReduceLROnPlateau(make_optimizer([0.1])).state_dict()
        envelope = json.loads(state_dict["plateau"])
        envelope[where][key] = value
        state_dict["plateau"] = json.dumps(envelope)
    scheduler = ReduceLROnPlateau(make_optimizer([0.1]))
    scheduler.step(1.0)
    before = scheduler.state
    with pytest.raises(error, match=match):
        scheduler.load_state_dict(state_dict)
    assert scheduler.state is before


# --- torch's keyword arguments and hooks that trainers use ---------------------------


@pytest.mark.parametrize("last_epoch", [-1, 0, 4])
def test_last_epoch_argument_counts_as_torchs_other_schedulers_do(last_epoch):
    """skorch passes last_epoch=len(history) - 1 to every policy that is not torch's class."""
    opt = make_optimizer([0.1])
    for group in opt.param_groups:
        group["initial_lr"] = group["lr"]  # what StepLR needs to resume; plateau does not
    step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=3, last_epoch=last_epoch)
    ours = ReduceLROnPlateau(make_optimizer([0.1]), last_epoch=last_epoch)
    assert ours.last_epoch == step_lr.last_epoch
    assert (ours.best, ours.num_bad_epochs) == (math.inf, 0)
    with pytest.raises(ValueError, match="'last_epoch' must be >= -1, got -2"):
        ReduceLROnPlateau(make_optimizer([0.1]), last_epoch=-2)
    with pytest.raises(TypeError, match="'last_epoch' must be an int, got float"):
        ReduceLROnPlateau(make_optimizer([0.1]), last_epoch=1.0)


@pytest.mark.parametrize("groups", [[1.0], [1.0, 0.5]])
def test_verbose_reports_each_cut_as_keras_does(groups, capsys, caplog):
    """Keras prints 'Epoch N: ReduceLROnPlateau reducing learning rate to X.' per cut."""
    kwargs = {"patience": 0, "factor": 0.5}
    printing = ReduceLROnPlateau(make_optimizer(groups), verbose=True, **kwargs)
    logger = logging.getLogger("test_verbose")
    logging_one = ReduceLROnPlateau(make_optimizer(groups), verbose=logger, **kwargs)
    silent = ReduceLROnPlateau(make_optimizer(groups), **kwargs)
    with caplog.at_level(logging.INFO, logger="test_verbose"):
        for value in [1.0, 2.0, 0.5, 0.6]:  # a cut on epochs 2 and 4
            for scheduler in (printing, logging_one, silent):
                scheduler.step(value)
    if len(groups) == 1:
        expected = [
            "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.5.",
            "Epoch 4: ReduceLROnPlateau reducing learning rate to 0.25.",
        ]
    else:
        expected = [
            "Epoch 2: ReduceLROnPlateau reducing learning rate of group 0 to 0.5.",
            "Epoch 2: ReduceLROnPlateau reducing learning rate of group 1 to 0.25.",
            "Epoch 4: ReduceLROnPlateau reducing learning rate of group 0 to 0.25.",
            "Epoch 4: ReduceLROnPlateau reducing learning rate of group 1 to 0.125.",
        ]
    assert capsys.readouterr().out.splitlines() == expected  # the silent one printed nothing
    assert [record.getMessage() for record in caplog.records] == expected
    with pytest.raises(TypeError, match=r"'verbose' must be a bool or a logging\.Logger, got str"):
        ReduceLROnPlateau(make_optimizer(groups), verbose="deprecated")


@pytest.mark.parametrize(
    ("value", "error"), [("never", ValueError), (None, TypeError), (True, TypeError)]
)
def test_on_repeat_is_validated(value, error):
    with pytest.raises(error, match="'on_repeat' must be"):
        ReduceLROnPlateau(make_optimizer([0.1]), on_repeat=value)


def cut_first_group_only(scheduler):
    """ignite's ReduceLROnPlateauScheduler(param_group_index=0): its own _reduce_lr."""

    def _reduce_lr(epoch):
        group = scheduler.optimizer.param_groups[0]
        old_lr = float(group["lr"])
        new_lr = max(old_lr * scheduler.factor, scheduler.min_lrs[0])
        if old_lr - new_lr > scheduler.eps:
            group["lr"] = new_lr
        scheduler.epochs_cut.append(epoch)

    scheduler.epochs_cut = []
    scheduler._reduce_lr = _reduce_lr


@pytest.mark.parametrize("seed", range(20))
def test_an_instance_reduce_lr_override_replaces_the_cut_as_in_torch(seed):
    rng = random.Random(4000 + seed)
    kwargs, _, _ = random_case(rng)
    kwargs["min_lr"] = rng.choice([0.0, 0.01])
    ours_opt, their_opt = make_optimizer([1.0, 0.5]), make_optimizer([1.0, 0.5])
    ours, theirs = ReduceLROnPlateau(ours_opt, **kwargs), TorchPlateau(their_opt, **kwargs)
    cut_first_group_only(ours)
    cut_first_group_only(theirs)
    for value in random_metrics(rng, 40):
        ours.step(value)
        theirs.step(value)
        assert_same(ours, theirs, ours_opt, their_opt)
        assert ours.state.lrs == tuple(lr_values(ours_opt))
    assert ours.epochs_cut == theirs.epochs_cut
    assert lr_values(ours_opt)[1] == 0.5  # the second group was never cut


def test_the_override_s_cut_is_recorded_reduced_or_at_floor():
    opt = make_optimizer([1.0, 1.0])
    scheduler = ReduceLROnPlateau(opt, patience=0, min_lr=0.5)
    cut_first_group_only(scheduler)
    decisions = []
    for value in [1.0, 2.0, 3.0]:
        scheduler.step(value)
        decisions.append(scheduler.state.decision)
    assert decisions == [
        plateau.Decision.IMPROVED,
        plateau.Decision.REDUCED,
        plateau.Decision.AT_FLOOR,
    ]
    assert scheduler.state.lrs == (0.5, 1.0)


def test_reduce_lr_outside_step_is_a_clear_error():
    scheduler = ReduceLROnPlateau(make_optimizer([1.0]))
    with pytest.raises(RuntimeError, match=r"writes the cut step\(\) decided"):
        scheduler._reduce_lr(1)


# --- repeated steps ------------------------------------------------------------------


def train_step(opt):
    for group in opt.param_groups:
        for param in group["params"]:
            param.grad = torch.ones_like(param)
    opt.step()


def test_a_repeated_step_warns_and_still_steps_as_torch():
    ours_opt, their_opt = make_optimizer([1.0]), make_optimizer([1.0])
    ours, theirs = ReduceLROnPlateau(ours_opt, patience=1), TorchPlateau(their_opt, patience=1)
    for value in [1.0, 2.0]:
        for opt in (ours_opt, their_opt):
            train_step(opt)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once per epoch: no warning
            ours.step(value)
        theirs.step(value)
        with pytest.warns(UserWarning, match="called again with no optimizer step"):
            ours.step(value)  # as accelerate does with two processes
        theirs.step(value)
        assert_same(ours, theirs, ours_opt, their_opt)
    assert ours.state.lrs == (pytest.approx(0.1),)  # cut on the repeat: patience 1, 2 epochs


def test_on_repeat_skip_steps_once_per_optimizer_step():
    once_opt, twice_opt = make_optimizer([1.0]), make_optimizer([1.0])
    once = TorchPlateau(once_opt, patience=1)
    twice = ReduceLROnPlateau(twice_opt, patience=1, on_repeat="skip")
    for value in [1.0, 2.0, 2.0, 2.0, 0.5]:
        train_step(once_opt)
        train_step(twice_opt)
        once.step(value)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            twice.step(value)
            twice.step(value)
        assert_same(twice, once, twice_opt, once_opt)


def test_no_warning_without_optimizer_steps_or_with_allow():
    """A replay of metrics (no training) steps freely; on_repeat='allow' is torch, silent."""
    replay = ReduceLROnPlateau(make_optimizer([1.0]))
    opt = make_optimizer([1.0])
    allowed = ReduceLROnPlateau(opt, on_repeat="allow")
    train_step(opt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in [1.0, 1.0, 1.0]:
            replay.step(value)
            allowed.step(value)
    assert allowed.last_epoch == replay.last_epoch == 3


def test_copies_count_their_optimizer_s_steps():
    """An optimizer drops its hooks when copied; the copy of the scheduler adds its own."""
    opt = make_optimizer([1.0])
    scheduler = ReduceLROnPlateau(opt, on_repeat="skip")
    train_step(opt)
    scheduler.step(1.0)
    for clone in (copy.deepcopy(scheduler), pickle.loads(pickle.dumps(scheduler))):
        clone.step(1.0)  # a repeat: skipped
        assert clone.last_epoch == 1
        train_step(clone.optimizer)
        clone.step(1.0)
        assert clone.last_epoch == 2
    assert scheduler.last_epoch == 1
    del scheduler
    gc.collect()
    assert not opt._optimizer_step_post_hooks  # the hook went with its scheduler


# --- checkpoints both ways -------------------------------------------------------------


def torch_round_trip(state_dict):
    """torch.save, then torch.load(weights_only=True): what trainers do with checkpoints."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("seed", range(40))
def test_torchs_class_resumes_from_our_state_dict(seed):
    """Back to torch's class mid-run: same best, counters, epoch, and the same lrs after."""
    rng = random.Random(5000 + seed)
    kwargs, lrs, tensor_lr = random_case(rng)
    metrics = random_metrics(rng, 50)
    cut = rng.randrange(0, 30)
    expected = run(TorchPlateau(make_optimizer(lrs, tensor_lr), **kwargs), metrics)

    ours = ReduceLROnPlateau(make_optimizer(lrs, tensor_lr), **kwargs)
    head = run(ours, metrics[:cut])
    saved = json.loads(json.dumps(ours.state_dict()))  # best may be Infinity, as torch's
    if rng.random() < 0.5:
        saved = torch_round_trip(saved)
    theirs = resume(TorchPlateau, kwargs, lrs, tensor_lr, ours.optimizer.state_dict(), saved)
    assert theirs.best == ours.best
    assert theirs.num_bad_epochs == ours.num_bad_epochs
    assert theirs.cooldown_counter == ours.cooldown_counter
    assert theirs.last_epoch == ours.last_epoch
    assert theirs.min_lrs == ours.min_lrs
    assert head + run(theirs, metrics[cut:]) == expected


@pytest.mark.parametrize("seed", range(30))
def test_ours_then_torchs_then_ours_again(seed):
    """Torch's class keeps our keys when it loads them; ours takes its newer progress."""
    rng = random.Random(6000 + seed)
    kwargs, lrs, tensor_lr = random_case(rng)
    metrics = random_metrics(rng, 60)
    first, second = sorted(rng.sample(range(0, 40), 2))
    expected = run(TorchPlateau(make_optimizer(lrs, tensor_lr), **kwargs), metrics)

    ours = ReduceLROnPlateau(make_optimizer(lrs, tensor_lr), **kwargs)
    part1 = run(ours, metrics[:first])
    saved = torch_round_trip(ours.state_dict())
    theirs = resume(TorchPlateau, kwargs, lrs, tensor_lr, ours.optimizer.state_dict(), saved)
    part2 = run(theirs, metrics[first:second])
    saved = torch_round_trip(theirs.state_dict())
    assert "plateau" in saved  # torch's class carried ours along
    again = resume(ReduceLROnPlateau, kwargs, lrs, tensor_lr, theirs.optimizer.state_dict(), saved)
    assert (again.best, again.num_bad_epochs, again.cooldown_counter, again.last_epoch) == (
        theirs.best, theirs.num_bad_epochs, theirs.cooldown_counter, theirs.last_epoch
    )  # fmt: skip
    assert part1 + part2 + run(again, metrics[second:]) == expected


def test_an_infinite_best_other_than_torchs_start_carries_over_to_torchs_class():
    """-inf becomes best in min mode (torch compares it as a number)."""
    ours = ReduceLROnPlateau(make_optimizer([1.0]))
    ours.step(-math.inf)
    saved = torch_round_trip(ours.state_dict())
    theirs = TorchPlateau(make_optimizer([1.0]))
    theirs.load_state_dict(saved)
    assert ours.best == theirs.best == -math.inf
    again = ReduceLROnPlateau(make_optimizer([1.0]))
    again.load_state_dict(saved)
    assert again.state == ours.state


def test_our_state_dict_has_torchs_every_key_and_one_strict_json_string_in_every_state():
    opt = make_optimizer([0.1, 0.2], tensor_lr="float32")
    scheduler = ReduceLROnPlateau(opt, min_lr=[0.0, 0.01])
    torch_keys = set(TorchPlateau(make_optimizer([0.1, 0.2])).state_dict())
    fresh = scheduler.state_dict()
    assert set(fresh) == torch_keys | {"plateau"}
    assert fresh["best"] == fresh["mode_worse"] == math.inf  # as torch's, before a best
    scheduler.step(torch.tensor(0.5))
    saved = scheduler.state_dict()
    assert set(saved) == torch_keys | {"plateau"}
    json.loads(saved["plateau"], parse_constant=refuse_non_finite)
    assert saved["best"] == 0.5 and saved["min_lrs"] == [0.0, 0.01]
    assert torch_round_trip(saved) == saved


@pytest.mark.parametrize("min_lr", [0.01, [0.0, 0.02]], ids=["scalar", "per-group"])
def test_state_dict_holds_the_progress_and_settings_under_torchs_names(min_lr):
    ours = ReduceLROnPlateau(make_optimizer([1.0, 0.5]), patience=1, min_lr=min_lr)
    theirs = TorchPlateau(make_optimizer([1.0, 0.5]), patience=1, min_lr=min_lr)
    for value in [1.0, 2.0, 3.0, 0.5]:
        ours.step(value)
        theirs.step(value)
    saved, torch_saved = ours.state_dict(), theirs.state_dict()
    for key in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "_last_lr"):
        assert saved[key] == torch_saved[key]
    for key in ("factor", "patience", "cooldown", "eps", "mode", "threshold", "threshold_mode"):
        assert saved[key] == torch_saved[key]
    assert saved["min_lrs"] == torch_saved["min_lrs"]
    assert saved["default_min_lr"] == torch_saved["default_min_lr"]
    envelope = json.loads(saved["plateau"])
    assert plateau.PlateauState.from_dict(envelope["state"]) == ours.state
    assert plateau.PlateauConfig.from_dict(envelope["config"]) == ours.config


def test_in_cooldown_and_exhausted_read_the_state():
    scheduler = ReduceLROnPlateau(make_optimizer([1.0]), patience=0, cooldown=1, min_lr=1.0)
    assert not scheduler.in_cooldown and not scheduler.exhausted
    scheduler.step(1.0)
    scheduler.step(2.0)  # nothing to cut: at the floor, then in cooldown
    assert scheduler.in_cooldown and scheduler.exhausted
    scheduler.cooldown_counter = 0
    assert not scheduler.in_cooldown


def test_yesterdays_plateau_state_dict_still_loads():
    scheduler = ReduceLROnPlateau(make_optimizer([1.0]), patience=0)
    scheduler.step(1.0)
    scheduler.step(2.0)
    old = {"config": scheduler.config.to_dict(), "state": scheduler.state.to_dict()}
    clone = ReduceLROnPlateau(make_optimizer([0.1]), patience=0)
    clone.load_state_dict(old)
    assert clone.state == scheduler.state


def test_keys_other_than_torchs_are_ignored():
    """ignite puts its own _reduce_lr in torch's scheduler, so in its state_dict."""
    theirs = TorchPlateau(make_optimizer([1.0]), patience=1)
    theirs.step(1.0)
    saved = {**theirs.state_dict(), "_reduce_lr": print, "_get_lr_called_within_step": False}
    ours = ReduceLROnPlateau(make_optimizer([1.0]), patience=1)
    ours.load_state_dict(saved)
    assert (ours.best, ours.last_epoch) == (1.0, 1)
    assert "_reduce_lr" not in vars(ours)
