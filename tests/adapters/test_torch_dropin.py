"""Drop-in where real code takes it: torch's mutable attributes, every setting by keyword.

Each test runs torch's own class beside plateau's on the same optimizer setup and
steps, wherever torch's has the behaviour; the trainers' paths (accelerate's
prepared optimizer, transformers' create_scheduler, LightningCLI) are in
tests/trainers.
"""

from __future__ import annotations

import inspect
import warnings

import pytest

torch = pytest.importorskip("torch")

import attrs  # noqa: E402

import plateau  # noqa: E402
from plateau import Decision, PlateauConfig  # noqa: E402
from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TorchPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau


def make_optimizer(lrs):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=0.5)


def add_group(optimizer, lr=1.0):
    optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr})


def lrs_of(optimizer):
    return [float(group["lr"]) for group in optimizer.param_groups]


def twins(lrs, **kwargs):
    """Plateau's and torch's class, each on its own optimizer with the same groups."""
    ours_opt, their_opt = make_optimizer(lrs), make_optimizer(lrs)
    return ReduceLROnPlateau(ours_opt, **kwargs), TorchPlateau(their_opt, **kwargs)


def step_both(schedulers, metrics):
    for metric in metrics:
        for scheduler in schedulers:
            scheduler.step(metric)
    ours, theirs = schedulers
    assert lrs_of(ours.optimizer) == lrs_of(theirs.optimizer)
    assert ours.min_lrs == theirs.min_lrs


# --- torch's plain list: min_lrs -----------------------------------------------------


def test_appending_to_min_lrs_after_add_param_group_is_torchs_remedy():
    schedulers = twins([1.0, 1.0], patience=0, min_lr=[0.5, 0.05])
    step_both(schedulers, [1.0, 2.0])
    for scheduler in schedulers:
        add_group(scheduler.optimizer)
        scheduler.min_lrs.append(0.2)  # what torch's error message tells the user to do
    step_both(schedulers, [3.0, 4.0, 5.0])
    assert lrs_of(schedulers[0].optimizer) == [0.5, 0.05, 0.2]
    assert schedulers[0].config.min_lr == (0.5, 0.05, 0.2)


def test_appending_to_a_scalar_min_lrs_list_after_add_param_group_as_torch():
    """torch's list stays [default] until its next cut: appended to, it is per group."""
    schedulers = twins([1.0], patience=0, min_lr=0.01)
    step_both(schedulers, [1.0])
    for scheduler in schedulers:
        add_group(scheduler.optimizer)
        scheduler.min_lrs.append(0.3)
    step_both(schedulers, [2.0, 3.0, 4.0])
    assert lrs_of(schedulers[0].optimizer) == [pytest.approx(0.01), 0.3]


def test_an_item_of_min_lrs_set_in_place_takes_effect_as_in_torch():
    schedulers = twins([1.0, 1.0], patience=0)
    step_both(schedulers, [1.0])
    for scheduler in schedulers:
        scheduler.min_lrs[0] = 0.4
    step_both(schedulers, [2.0, 3.0])
    assert lrs_of(schedulers[0].optimizer) == [0.4, pytest.approx(0.01)]
    assert schedulers[0].default_min_lr is None and schedulers[0].min_lrs == [0.4, 0.0]


def test_an_unusable_min_lrs_edit_is_refused_at_the_next_step_and_changes_nothing():
    scheduler = ReduceLROnPlateau(make_optimizer([1.0]), patience=0)
    scheduler.step(1.0)
    before = scheduler.state
    scheduler.min_lrs[0] = -1.0
    with pytest.raises(ValueError, match=r"'min_lr\[0\]' must be finite and >= 0"):
        scheduler.step(2.0)
    assert scheduler.state is before


# --- scheduler.optimizer = another ---------------------------------------------------


def train_step(optimizer):
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = torch.ones_like(param)
    optimizer.step()


@pytest.mark.parametrize("on_repeat", ["warn", "skip"])
def test_assigning_the_optimizer_repoints_the_repeat_guard(on_repeat):
    """Code that rebuilds its optimizer (unfreezing, a reset, a ZeRO wrapper) assigns it."""
    ours = ReduceLROnPlateau(make_optimizer([1.0]), patience=0, factor=0.5, on_repeat=on_repeat)
    theirs = TorchPlateau(make_optimizer([1.0]), patience=0, factor=0.5)
    old = ours.optimizer
    for scheduler in (ours, theirs):
        scheduler.optimizer = make_optimizer([1.0])
    assert not old._optimizer_step_post_hooks  # ours left the old optimizer
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every step follows an optimizer step: no warning
        for metric in [1.0, 2.0, 3.0]:
            for scheduler in (ours, theirs):
                train_step(scheduler.optimizer)
                scheduler.step(metric)
    assert lrs_of(ours.optimizer) == lrs_of(theirs.optimizer) == [0.25]


def test_assigning_the_optimizer_repoints_the_base():
    optimizer = make_optimizer([1.0])
    scheduler = ReduceLROnPlateau(optimizer, base=lambda epoch: 0.5**epoch)
    train_step(optimizer)
    scheduler.step()
    new = make_optimizer([0.5])
    new.param_groups[0]["initial_lr"] = 1.0
    scheduler.optimizer = new
    train_step(new)
    scheduler.step()
    assert scheduler.base.optimizer is new and lrs_of(new) == [0.25]
    assert lrs_of(optimizer) == [0.5]  # the old one is no longer written


# --- every setting by keyword, or a whole config -------------------------------------


def test_every_config_field_is_a_keyword_with_the_configs_default():
    parameters = inspect.signature(ReduceLROnPlateau).parameters
    for field in attrs.fields(PlateauConfig):
        if field.init:
            assert parameters[field.name].default == field.default, field.name
            assert parameters[field.name].kind in (
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                inspect.Parameter.KEYWORD_ONLY,
            )
    torch_parameters = inspect.signature(TorchPlateau).parameters
    assert list(parameters)[: len(torch_parameters)] == list(torch_parameters)  # positions


def test_settings_beyond_torch_by_keyword_equal_the_same_config():
    beyond = {"max_reductions": 1, "ema_decay": 0.5, "accumulation_size": 2, "warmup_epochs": 2}
    beyond.update(warmup_start_factor=0.5, on_nonfinite="skip", threshold_mode="rel_abs")
    by_keyword = ReduceLROnPlateau(make_optimizer([1.0]), patience=0, **beyond)
    by_config = ReduceLROnPlateau(make_optimizer([1.0]), config=PlateauConfig(patience=0, **beyond))
    assert by_keyword.config == by_config.config == PlateauConfig(patience=0, **beyond)
    for metric in [3.0, 2.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 7.0]:
        by_keyword.step(metric)
        by_config.step(metric)
    assert by_keyword.state == by_config.state
    assert by_keyword.state.num_reductions == 1  # max_reductions took effect


def test_a_config_and_settings_together_are_refused_by_name():
    with pytest.raises(TypeError, match=r"config= is the whole config, but \['patience'\]"):
        ReduceLROnPlateau(make_optimizer([1.0]), patience=3, config=PlateauConfig())
    with pytest.raises(TypeError, match=r"'config' must be a plateau\.PlateauConfig, got dict"):
        ReduceLROnPlateau(make_optimizer([1.0]), config={"patience": 3})
    with pytest.raises(TypeError, match=r"unknown setting 'patiense'"):
        ReduceLROnPlateau(make_optimizer([1.0]), patiense=3)


def test_a_config_passed_positionally_says_to_use_config():
    with pytest.raises(TypeError, match=r"'mode' got a PlateauConfig: pass it as config="):
        ReduceLROnPlateau(make_optimizer([1.0]), PlateauConfig(patience=2))


# --- messages and reporting ----------------------------------------------------------


def test_a_forgotten_metric_says_so_plainly():
    scheduler = ReduceLROnPlateau(make_optimizer([1.0]))
    with pytest.raises(TypeError) as info:
        scheduler.step()
    assert "scheduler.step(val_loss)" in str(info.value)
    assert "base" not in str(info.value)


def test_repr_shows_the_config_and_the_state():
    scheduler = ReduceLROnPlateau(make_optimizer([1.0]), patience=0, max_reductions=3)
    scheduler.step(1.0)
    scheduler.step(2.0)
    text = repr(scheduler)
    assert text.startswith("ReduceLROnPlateau(SGD, PlateauConfig(")
    assert repr(scheduler.config) in text and repr(scheduler.state) in text
    assert "max_reductions=3" in text and "num_reductions=1" in text


# --- a cut the lr's dtype cannot hold ------------------------------------------------


def test_a_cut_a_bfloat16_lr_cannot_hold_is_not_a_reduction():
    """0.999 of a bfloat16 1.0 rounds back to 1.0: torch's class writes it, nothing moves."""

    def bfloat16_optimizer():
        optimizer = make_optimizer([1.0])
        optimizer.param_groups[0]["lr"] = torch.tensor(1.0, dtype=torch.bfloat16)
        return optimizer

    ours = ReduceLROnPlateau(bfloat16_optimizer(), patience=0, factor=0.999, max_reductions=1)
    theirs = TorchPlateau(bfloat16_optimizer(), patience=0, factor=0.999)
    decisions = []
    for metric in [1.0, 2.0, 3.0, 4.0]:
        ours.step(metric)
        theirs.step(metric)
        decisions.append(ours.state.decision)
    assert lrs_of(ours.optimizer) == lrs_of(theirs.optimizer) == [1.0]
    assert decisions == [Decision.IMPROVED, *[Decision.AT_FLOOR] * 3]  # never CAPPED
    assert ours.state.num_reductions == 0 and ours.exhausted
    assert ours.state == plateau.PlateauState(
        lrs=(1.0,), best=1.0, last_epoch=4, decision=Decision.AT_FLOOR
    )
