"""The torch drop-in's ``base=``: a plateau over a torch schedule, in one scheduler object.

Every expected lr is derived from torch alone: the base's sequence from torch's own
scheduler stepped by itself on a fresh optimizer, the plateau's lrs from torch's own
ReduceLROnPlateau on a constant lr (the reference, each group's ``initial_lr``), and
the two combined by :func:`plateau.scale_base`, the core's rule.
"""

from __future__ import annotations

import doctest
import io
import json
import math
import re
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import plateau  # noqa: E402
from plateau import Decision, PlateauConfig, PlateauState  # noqa: E402
from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

sched = torch.optim.lr_scheduler
TorchReduceLROnPlateau = sched.ReduceLROnPlateau
SETTINGS = settings(max_examples=60, deadline=None)
# Our own warnings are errors here: a test that triggers one on purpose catches it.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")
GROUP_LRS = (0.1, 0.03)
TOTAL = 200  # OneCycleLR's total_steps: more than any test takes


def make_optimizer(lrs=GROUP_LRS):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=0.5)


def lrs_of(optimizer):
    return [float(group["lr"]) for group in optimizer.param_groups]


def half_cosine(epoch):
    return 0.5 * (1.0 + math.cos(math.pi * min(epoch, 30) / 30))


# Each base: optimizer -> what base= takes (a scheduler, or an lr_lambda).
BASES = {
    "cosine": lambda opt: sched.CosineAnnealingLR(opt, T_max=9, eta_min=1e-3),
    "linear": lambda opt: sched.LinearLR(opt, start_factor=0.2, total_iters=7),
    "onecycle": lambda opt: sched.OneCycleLR(
        opt, max_lr=[10 * lr for lr in lrs_of(opt)], total_steps=TOTAL, cycle_momentum=False
    ),
    "lambda": lambda opt: half_cosine,
    "lambdas": lambda opt: [half_cosine, lambda e: 0.9**e],
    "step": lambda opt: sched.StepLR(opt, step_size=4, gamma=0.5),
    "sequential": lambda opt: sched.SequentialLR(
        opt,
        [sched.LinearLR(opt, start_factor=0.1, total_iters=5), sched.CosineAnnealingLR(opt, 12)],
        milestones=[5],
    ),
}
CONSTANT_BASES = {
    "lambdalr": lambda opt: sched.LambdaLR(opt, lambda e: 1.0),
    "constantlr": lambda opt: sched.ConstantLR(opt, factor=1.0, total_iters=3),
    "callable": lambda opt: lambda e: 1.0,
}


def torch_base(factory, optimizer):
    """The base torch builds alone: a callable (or a list of them) becomes a LambdaLR."""
    base = factory(optimizer)
    return base if isinstance(base, sched.LRScheduler) else sched.LambdaLR(optimizer, base)


def events_of(metrics, iters):
    """`iters[i]` base steps, then the metric, per epoch: a list of None (base) or metrics."""
    out = []
    for metric, n in zip(metrics, iters, strict=True):
        out += [None] * n + [metric]
    return out


def run_ours(scheduler, optimizer, events):
    """The group lrs after each event; each base step follows an optimizer step."""
    history = []
    for event in events:
        optimizer.step()
        scheduler.step(event)
        history.append(lrs_of(optimizer))
        assert scheduler.get_last_lr() == history[-1]
    return history


def expected_lrs(factory, kwargs, events):
    """The lrs after each event, from torch alone: its base, its ReduceLROnPlateau, scale_base.

    The base steps on one fresh optimizer; torch's ReduceLROnPlateau steps on another
    whose lrs are the reference (each group's initial_lr as the base set it) and that
    nothing else touches.
    """
    base_opt = make_optimizer()
    base = torch_base(factory, base_opt)
    reference = [group["initial_lr"] for group in base_opt.param_groups]
    plateau_opt = make_optimizer(reference)
    rop = TorchReduceLROnPlateau(plateau_opt, **kwargs)
    history, cuts = [], []
    for event in events:
        if event is None:
            base_opt.step()
            base.step()
        else:
            rop.step(event)
        p = lrs_of(plateau_opt)
        lrs = plateau.scale_base(PlateauState(lrs=p, best=math.inf), lrs_of(base_opt), reference)
        history.append(list(lrs))
        cuts.append((p, lrs_of(base_opt), reference))
    return history, cuts


configs = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["min", "max"]),
        "factor": st.sampled_from([0.1, 0.5, 0.9]),
        "patience": st.integers(0, 3),
        "threshold": st.sampled_from([0.0, 1e-4, 0.05]),
        "threshold_mode": st.sampled_from(["rel", "abs"]),
        "cooldown": st.integers(0, 2),
        "min_lr": st.sampled_from([0.0, 1e-3, 0.02, [0.0, 0.01]]),
        "eps": st.sampled_from([1e-8, 0.0, 0.01]),
    }
)
# Few distinct values, so ties (no improvement) and plateaus are common.
metric_lists = st.lists(st.sampled_from([1.0, 0.9, 0.9, 0.8, 0.85, 2.0]), min_size=1, max_size=25)


@pytest.mark.parametrize("name", sorted(BASES))
def test_no_cut_is_the_base_schedule_bit_for_bit(name):
    """An improving metric never cuts: the lrs are torch's base alone, at every step."""
    iters = [3, 0, 1, 5, 2, 4, 1, 3, 2, 6]
    events = events_of([1.0 / (i + 1) for i in range(len(iters))], iters)
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, patience=0, base=BASES[name](optimizer))
    alone_opt = make_optimizer()
    alone = torch_base(BASES[name], alone_opt)
    assert lrs_of(optimizer) == lrs_of(alone_opt)  # after construction too
    expected = []
    for event in events:
        if event is None:
            alone_opt.step()
            alone.step()
        expected.append(lrs_of(alone_opt))
    assert run_ours(scheduler, optimizer, events) == expected
    assert scheduler.state.decision is Decision.IMPROVED
    assert scheduler.state.lrs == tuple(group["initial_lr"] for group in alone_opt.param_groups)


@SETTINGS
@given(
    configs,
    metric_lists,
    st.sampled_from(sorted(CONSTANT_BASES)),
    st.lists(st.integers(0, 3), min_size=25, max_size=25),
)
def test_a_constant_base_is_torch_reduce_lr_on_plateau(kwargs, metrics, name, iters):
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, base=CONSTANT_BASES[name](optimizer), **kwargs)
    torch_opt = make_optimizer()
    theirs = TorchReduceLROnPlateau(torch_opt, **kwargs)
    for metric, n in zip(metrics, iters, strict=False):
        for _ in range(n):
            optimizer.step()
            scheduler.step()
            assert lrs_of(optimizer) == lrs_of(torch_opt)
        optimizer.step()
        scheduler.step(metric)
        theirs.step(metric)
        assert lrs_of(optimizer) == lrs_of(torch_opt) == scheduler.get_last_lr()
        assert scheduler.state.lrs == tuple(lrs_of(torch_opt))
        assert scheduler.state.best == theirs.best
        assert scheduler.state.num_bad_epochs == theirs.num_bad_epochs
        assert scheduler.state.cooldown_counter == theirs.cooldown_counter


@SETTINGS
@given(
    configs,
    metric_lists,
    st.sampled_from(sorted(BASES)),
    st.lists(st.integers(0, 4), min_size=25, max_size=25),
)
def test_cuts_under_a_moving_base_are_scale_base_of_torchs_sequences(kwargs, metrics, name, iters):
    events = events_of(metrics, iters[: len(metrics)])
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, base=BASES[name](optimizer), **kwargs)
    expected, parts = expected_lrs(BASES[name], kwargs, events)
    got = run_ours(scheduler, optimizer, events)
    assert got == expected
    cut_seen = [False] * len(GROUP_LRS)
    for lrs, (p, base, reference) in zip(got, parts, strict=True):
        for i, (lr, b) in enumerate(zip(lrs, base, strict=True)):
            assert lr <= b  # never above the base
            cut_seen[i] = cut_seen[i] or p[i] < reference[i]
            if cut_seen[i] and b > 0.0:
                # Never undone: the lr stays the plateau's fraction of the base.
                assert lr < b
                assert math.isclose(lr / b, p[i] / reference[i], rel_tol=1e-12)


def test_torch_linear_warmup_then_cosine_under_ours():
    """torch's SequentialLR(LinearLR, CosineAnnealingLR) per batch, the plateau per epoch."""
    metrics = [1.0, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7, 0.6]
    kwargs = {"factor": 0.5, "patience": 1}
    events = events_of(metrics, [2] * len(metrics))
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, base=BASES["sequential"](optimizer), **kwargs)
    expected, parts = expected_lrs(BASES["sequential"], kwargs, events)
    assert run_ours(scheduler, optimizer, events) == expected
    assert scheduler.state.num_reductions == 2  # both cuts happened, under both phases
    assert [p for p, _, _ in parts][-1] == [lr * 0.25 for lr in GROUP_LRS]


def test_base_with_metric_is_one_call_per_epoch():
    """base_with_metric=True: step(metric) is step(metric) then step(), in one call."""
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6]
    kwargs = {"factor": 0.5, "patience": 1, "cooldown": 1}
    events = events_of(metrics, [0] * len(metrics))
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(
        optimizer, base=BASES["cosine"](optimizer), base_with_metric=True, **kwargs
    )
    once = run_ours(scheduler, optimizer, events)
    two_calls = [e for m in metrics for e in (m, None)]
    expected, _ = expected_lrs(BASES["cosine"], kwargs, two_calls)
    assert once == expected[1::2]
    with pytest.raises(ValueError, match="base_with_metric=True"):
        scheduler.step()


def test_warmup_ramps_the_plateau_scale_on_the_base():
    """The warmup is the core's, on the plateau's lrs at the reference: base * ramp."""
    metrics = [math.nan, 5.0, 4.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    kwargs = {"factor": 0.5, "patience": 1, "warmup_epochs": 3, "warmup_start_factor": 0.1}
    events = events_of(metrics, [2] * len(metrics))
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, base=BASES["cosine"](optimizer), **kwargs)
    base_opt = make_optimizer()
    base = torch_base(BASES["cosine"], base_opt)
    reference = [group["initial_lr"] for group in base_opt.param_groups]
    config = PlateauConfig(**kwargs)
    states = iter(plateau.simulate(metrics, config, reference))
    state = plateau.init(reference, config)
    assert lrs_of(optimizer) == list(plateau.scale_base(state, lrs_of(base_opt), reference))
    expected = []
    for event in events:
        if event is None:
            base_opt.step()
            base.step()
        else:
            state = next(states)
        expected.append(list(plateau.scale_base(state, lrs_of(base_opt), reference)))
    assert run_ours(scheduler, optimizer, events) == expected
    assert scheduler.state == state
    assert scheduler.state.num_reductions >= 1


def test_a_cut_survives_cosines_recursive_form():
    """CosineAnnealingLR's get_lr computes from the group's lr: it must see its own."""
    optimizer = make_optimizer([1.0])
    cosine = sched.CosineAnnealingLR(optimizer, T_max=10, eta_min=0.2)
    scheduler = ReduceLROnPlateau(optimizer, factor=0.5, patience=0, base=cosine)
    for metric in [1.0, 2.0]:  # a cut: the plateau's lr is 0.5 of the reference
        optimizer.step()
        scheduler.step(metric)
    alone_opt = make_optimizer([1.0])
    alone = sched.CosineAnnealingLR(alone_opt, T_max=10, eta_min=0.2)
    for _ in range(15):
        optimizer.step()
        scheduler.step()
        alone_opt.step()
        alone.step()
        assert cosine.get_last_lr() == lrs_of(alone_opt)  # the base saw only its own lrs
        assert lrs_of(optimizer) == [0.5 * lrs_of(alone_opt)[0]]


@pytest.mark.parametrize(
    "name, kwargs, cut_at",
    [
        ("cosine", {"factor": 0.5, "patience": 1}, 13),
        ("onecycle", {"factor": 0.5, "patience": 1, "min_lr": [0.0, 0.01]}, 20),
        ("sequential", {"factor": 0.5, "patience": 0, "cooldown": 1}, 9),
        ("lambdas", {"factor": 0.5, "patience": 1}, 14),
        ("step", {"patience": 1, "warmup_epochs": 4, "warmup_start_factor": 0.25}, 6),
    ],
)
@pytest.mark.parametrize("optimizer_first", [True, False])
def test_state_dict_resumes_bit_for_bit(name, kwargs, cut_at, optimizer_first):
    """Saved mid-run (mid-epoch too), through torch.save / torch.load(weights_only=True)."""
    metrics = [1.0, 0.9, 0.9, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7]
    events = events_of(metrics, [3, 1, 2, 3, 0, 2, 3, 1, 2, 3, 1, 2])
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, base=BASES[name](optimizer), **kwargs)
    uninterrupted = run_ours(scheduler, optimizer, events)
    assert scheduler.state.num_reductions >= 1

    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, base=BASES[name](optimizer), **kwargs)
    before = run_ours(scheduler, optimizer, events[:cut_at])
    buffer = io.BytesIO()
    saved = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    torch.save(saved, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)

    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, base=BASES[name](optimizer), **kwargs)
    if optimizer_first:
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
    else:
        scheduler.load_state_dict(checkpoint["scheduler"])
        optimizer.load_state_dict(checkpoint["optimizer"])
    assert lrs_of(optimizer) == before[-1] == scheduler.get_last_lr()
    assert before + run_ours(scheduler, optimizer, events[cut_at:]) == uninterrupted


def test_state_dict_is_json_with_a_cosine_base():
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, patience=0, base=BASES["cosine"](optimizer))
    events = events_of([1.0, 2.0, 2.0], [2, 2, 2])
    run_ours(scheduler, optimizer, events)
    saved = json.loads(json.dumps(scheduler.state_dict()))  # mode_worse is Infinity
    assert saved["_last_lr"] == lrs_of(optimizer)
    reference = [group["initial_lr"] for group in optimizer.param_groups]
    assert saved["base"] == {
        "state_dict": scheduler.base.state_dict(),
        "reference": reference,
        "type": "CosineAnnealingLR",
    }
    fresh_opt = make_optimizer()
    fresh = ReduceLROnPlateau(fresh_opt, patience=0, base=BASES["cosine"](fresh_opt))
    fresh.load_state_dict(saved)
    assert lrs_of(fresh_opt) == lrs_of(optimizer)
    assert fresh.state == scheduler.state
    assert fresh.base.last_epoch == scheduler.base.last_epoch == 6


def test_an_lr_set_by_hand_is_overwritten_with_a_warning():
    """With a base the scheduler writes every lr: the base steps from its own, as if unset."""
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, patience=0, base=BASES["cosine"](optimizer))
    events = events_of([1.0, 2.0, 2.0], [2, 2, 2])
    expected, _ = expected_lrs(BASES["cosine"], {"patience": 0}, events)
    got = run_ours(scheduler, optimizer, events[:3])
    optimizer.param_groups[1]["lr"] = 0.5
    with pytest.warns(UserWarning, match=r"param_groups\[1\]\['lr'\] was set to 0.5"):
        got += run_ours(scheduler, optimizer, events[3:4])
    got += run_ours(scheduler, optimizer, events[4:])
    assert got == expected


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tensor_lrs_are_filled_in_place(dtype):
    """A tensor lr keeps its identity and dtype, and holds scale_base of torch's sequences."""

    def tensor_optimizer(lrs=GROUP_LRS):
        optimizer = make_optimizer(lrs)
        for group in optimizer.param_groups:
            group["lr"] = torch.tensor(group["lr"], dtype=dtype)
        return optimizer

    optimizer = tensor_optimizer()
    tensors = [group["lr"] for group in optimizer.param_groups]
    kwargs = {"factor": 0.5, "patience": 0}
    scheduler = ReduceLROnPlateau(optimizer, base=half_cosine, **kwargs)
    alone_opt = tensor_optimizer()
    alone = sched.LambdaLR(alone_opt, half_cosine)
    reference = [float(group["initial_lr"]) for group in alone_opt.param_groups]
    plateau_opt = make_optimizer(reference)
    rop = TorchReduceLROnPlateau(plateau_opt, **kwargs)
    for event in events_of([1.0, 0.5, 0.6, 0.6], [2, 2, 2, 2]):
        optimizer.step()
        scheduler.step(event)
        alone_opt.step()
        if event is None:
            alone.step()
        else:
            rop.step(event)
        lrs = plateau.scale_base(
            PlateauState(lrs=lrs_of(plateau_opt), best=math.inf), lrs_of(alone_opt), reference
        )
        assert lrs_of(optimizer) == [float(torch.tensor(lr, dtype=dtype)) for lr in lrs]
        assert all(group["lr"].dtype == dtype for group in optimizer.param_groups)
    assert all(a is g["lr"] for a, g in zip(tensors, optimizer.param_groups, strict=True))
    assert scheduler.state.num_reductions >= 1


def test_a_failing_base_step_leaves_the_groups_as_written():
    optimizer = make_optimizer()
    onecycle = sched.OneCycleLR(optimizer, max_lr=1.0, total_steps=3, cycle_momentum=False)
    scheduler = ReduceLROnPlateau(optimizer, factor=0.5, patience=0, base=onecycle)
    for metric in [1.0, 2.0]:  # a cut: the groups hold half the base's lrs
        optimizer.step()
        scheduler.step(metric)
    with pytest.raises(ValueError, match="Tried to step"):  # past total_steps
        for _ in range(5):
            held = lrs_of(optimizer)
            optimizer.step()
            scheduler.step()
    assert lrs_of(optimizer) == held == scheduler.get_last_lr()
    assert held[0] < onecycle.get_last_lr()[0]  # the cut is still there


# Bad input ------------------------------------------------------------------------


def other_optimizer_scheduler(opt):
    return sched.CosineAnnealingLR(make_optimizer(), T_max=3)


@pytest.mark.parametrize(
    "base, error, match",
    [
        (lambda opt: TorchReduceLROnPlateau(opt), TypeError, "'base' must be a schedule"),
        (lambda opt: ReduceLROnPlateau(opt), TypeError, "got a ReduceLROnPlateau"),
        (other_optimizer_scheduler, ValueError, "'base' must be a scheduler on this optimizer"),
        (lambda opt: 0.5, TypeError, "'base' must be a torch LRScheduler.*got float"),
        (lambda opt: "cosine", TypeError, "'base' must be a torch LRScheduler.*got str"),
        (lambda opt: [], TypeError, "'base' must be a torch LRScheduler"),
        (lambda opt: [half_cosine], ValueError, r"one lr_lambda per param group \(2\), got 1"),
        (lambda opt: [half_cosine, 1.0], TypeError, "'base' must be a torch LRScheduler"),
    ],
)
def test_bad_base_is_named_and_builds_nothing(base, error, match):
    optimizer = make_optimizer()
    argument = base(optimizer)
    before = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    with pytest.raises(error, match=match):
        ReduceLROnPlateau(optimizer, base=argument)
    assert [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups] == before


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"base_with_metric": 1}, TypeError, "'base_with_metric' must be a bool, got int"),
        ({"base_with_metric": True}, ValueError, "'base_with_metric' is True but there is no"),
        ({"base": half_cosine, "min_lr": [0.0]}, ValueError, "min_lr"),
    ],
)
def test_bad_base_arguments(kwargs, error, match):
    optimizer = make_optimizer()
    with pytest.raises(error, match=match):
        ReduceLROnPlateau(optimizer, **kwargs)
    assert lrs_of(optimizer) == list(GROUP_LRS)
    assert all("initial_lr" not in group for group in optimizer.param_groups)


def test_a_zero_initial_lr_is_named():
    optimizer = make_optimizer([0.1, 0.0])
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['initial_lr'\] must be > 0"):
        ReduceLROnPlateau(optimizer, base=sched.LinearLR(optimizer))
    # An lr_lambda: refused before its LambdaLR is built, so the groups are untouched.
    optimizer = make_optimizer([0.1, 0.0])
    step_method = optimizer.step
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['initial_lr'\] must be > 0"):
        ReduceLROnPlateau(optimizer, base=lambda epoch: 0.5)
    assert [dict(g, params=None) for g in optimizer.param_groups] == [
        dict(g, params=None) for g in make_optimizer([0.1, 0.0]).param_groups
    ]
    assert optimizer.step == step_method


def test_bad_steps_are_named_and_change_nothing():
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, patience=0, base=BASES["cosine"](optimizer))
    optimizer.step()
    scheduler.step(1.0)
    state, lrs, epoch = scheduler.state, lrs_of(optimizer), scheduler.base.last_epoch
    with pytest.raises(TypeError, match="'epoch' goes with a metric"):
        scheduler.step(epoch=3)
    optimizer.step()
    with pytest.raises(TypeError, match="'metric' must be a single real number, got str"):
        scheduler.step("0.5")
    optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1})
    with pytest.raises(ValueError, match="the optimizer has 3 param groups but the base"):
        scheduler.step()
    with pytest.raises(ValueError, match="the optimizer has 3 param groups but the base"):
        scheduler.step(1.0)
    assert scheduler.state is state and lrs_of(optimizer)[:2] == lrs
    assert scheduler.base.last_epoch == epoch


def test_no_base_step_without_a_metric_is_named():
    scheduler = ReduceLROnPlateau(make_optimizer())
    with pytest.raises(TypeError, match=r"pass the metric this scheduler watches, as in"):
        scheduler.step()


def test_checkpoints_with_and_without_a_base_do_not_mix():
    plain_opt = make_optimizer()
    plain = ReduceLROnPlateau(plain_opt)
    based_opt = make_optimizer()
    based = ReduceLROnPlateau(based_opt, base=BASES["cosine"](based_opt))
    torch_saved = TorchReduceLROnPlateau(make_optimizer()).state_dict()
    with pytest.raises(ValueError, match="saved with a base schedule: build this scheduler"):
        plain.load_state_dict(based.state_dict())
    with pytest.raises(ValueError, match="saved without a base schedule"):
        based.load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match="saved without a base schedule"):
        based.load_state_dict(torch_saved)
    # Torch's class loads ours (it copies every key) and steps: its keys then win.
    theirs = TorchReduceLROnPlateau(make_optimizer())
    theirs.load_state_dict(based.state_dict())
    theirs.step(1.0)
    with pytest.raises(ValueError, match="torch's ReduceLROnPlateau stepped since"):
        based.load_state_dict(theirs.state_dict())


@pytest.mark.parametrize(
    "entry, error, match",
    [
        ([1.0], ValueError, r"state_dict\['base'\] must be a dict with keys"),
        ({"state_dict": {}}, ValueError, r"state_dict\['base'\] must be a dict with keys"),
        ({"state_dict": 1, "reference": [0.1, 0.1]}, TypeError, r"\['state_dict'\] must be"),
        ({"state_dict": {}, "reference": 0.1}, ValueError, r"\['reference'\] must hold one lr"),
        ({"state_dict": {}, "reference": [0.1]}, ValueError, r"one lr per param group \(2\)"),
        ({"state_dict": {}, "reference": [0.1, 0.0]}, ValueError, r"\[1\]' must be > 0"),
        ({"state_dict": {}, "reference": [0.1, "a"]}, TypeError, r"'reference_lrs\[1\]'"),
        ({"state_dict": {}, "reference": [-1.0, 0.1]}, ValueError, r"\[0\]' must be finite and"),
        (
            {"state_dict": {"_last_lr": [-1.0, 0.1]}, "reference": [0.1, 0.1]},
            ValueError,
            r"'base_lrs\[0\]' must be finite and >= 0",
        ),
    ],
)
def test_bad_base_entry_is_named_and_changes_nothing(entry, error, match):
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, base=BASES["cosine"](optimizer))
    saved = scheduler.state_dict()
    before = (scheduler.state, scheduler.base.state_dict(), lrs_of(optimizer))
    if isinstance(entry, dict) and len(entry) == 2:
        entry = {**entry, "type": "CosineAnnealingLR"}
    with pytest.raises(error, match=match):
        scheduler.load_state_dict({**saved, "base": entry})
    assert (scheduler.state, scheduler.base.state_dict(), lrs_of(optimizer)) == before


# The docs' example ------------------------------------------------------------------


def test_the_docs_example_runs_and_prints_what_it_shows():
    """docs/torch.md's "Base schedules" example, a doctest: its output is checked."""
    page = (Path(__file__).parents[2] / "docs" / "torch.md").read_text()
    section = page.split("## Base schedules", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```pycon\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1
    test = doctest.DocTestParser().get_doctest(blocks[0], {}, "docs/torch.md", None, 0)
    assert len(test.examples) >= 5
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runner.run(test)
    assert runner.failures == 0


def test_a_base_stepped_outside_the_scheduler_is_refused_before_it_cuts_twice():
    """The usual migration slip: cosine.step() called directly (or by a trainer) as well."""
    optimizer = make_optimizer()
    cosine = BASES["cosine"](optimizer)
    scheduler = ReduceLROnPlateau(optimizer, patience=0, factor=0.5, base=cosine)
    scheduler.step(1.0)
    scheduler.step(2.0)  # a cut: the groups hold half the cosine
    assert scheduler.state.decision is plateau.Decision.REDUCED
    state = scheduler.state
    optimizer.step()
    cosine.step()  # from the scaled lrs: it would carry the cut into its own chain
    for call in (scheduler.step, lambda: scheduler.step(3.0)):
        with pytest.raises(ValueError, match="stepped outside this scheduler"):
            call()
    assert scheduler.state == state


def test_a_checkpoint_of_another_base_type_or_lr_count_is_refused_and_changes_nothing():
    optimizer = make_optimizer()
    saved = ReduceLROnPlateau(optimizer, patience=0, base=BASES["cosine"](optimizer))
    saved.step(1.0)
    saved.step(2.0)
    checkpoint = saved.state_dict()
    assert checkpoint["base"]["type"] == "CosineAnnealingLR"

    target_optimizer = make_optimizer()
    target = ReduceLROnPlateau(
        target_optimizer, patience=0, base=sched.StepLR(target_optimizer, step_size=2)
    )
    before = (target.state, target.base.state_dict(), lrs_of(target_optimizer))
    with pytest.raises(ValueError, match="saved from a 'CosineAnnealingLR' base"):
        target.load_state_dict(checkpoint)
    bad_count = {**checkpoint, "base": {**checkpoint["base"], "type": "StepLR"}}
    bad_count["base"]["state_dict"] = {**checkpoint["base"]["state_dict"], "_last_lr": [0.1] * 3}
    with pytest.raises(ValueError, match=r"\['_last_lr'\] must hold one lr per param group"):
        target.load_state_dict(bad_count)
    assert (target.state, target.base.state_dict(), lrs_of(target_optimizer)) == before
