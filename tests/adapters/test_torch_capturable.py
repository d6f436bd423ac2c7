"""ReduceLROnPlateau(..., capturable=True): the core's lrs from a step that reads nothing back.

Compiled steps use the aot_eager backend (inductor once, for the dtype of the lr it
writes): a step compiles once per config, and hundreds of streams then run through
the same compiled step.
"""

from __future__ import annotations

import json
import logging
import math
import random

import pytest

torch = pytest.importorskip("torch")

import attrs  # noqa: E402

import plateau  # noqa: E402
from plateau import Decision, PlateauConfig  # noqa: E402
from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

STARTS = (0.5, 0.03)


def make_optimizer(lrs=STARTS, *, tensor=True, dtype=torch.float64, shape=()):
    groups = []
    for lr in lrs:
        held = torch.full(shape, lr, dtype=dtype) if tensor else lr
        groups.append({"params": [torch.nn.Parameter(torch.zeros(2))], "lr": held})
    return torch.optim.SGD(groups, lr=0.001)


def lrs_of(optimizer):
    return tuple(float(group["lr"]) for group in optimizer.param_groups)


def stream(rng, length, nonfinite):
    """A metric stream with plateaus, ties and negative values (float32, as a loss is)."""
    value, metrics = rng.uniform(-2.0, 2.0), []
    for _ in range(length):
        value += rng.choice((-0.3, -0.01, 0.0, 0.0, 0.01, 0.2))
        metric = round(value, 2)
        if nonfinite and rng.random() < 0.08:
            metric = rng.choice((math.nan, math.inf, -math.inf))
        metrics.append(float(torch.tensor(metric, dtype=torch.float32)))
    return metrics


CONFIGS = {
    "min rel cooldown per-group floor": dict(
        patience=2, cooldown=2, factor=0.5, min_lr=(0.01, 0.001)
    ),
    "max abs eps cap": dict(
        mode="max", threshold_mode="abs", threshold=0.05, patience=1, eps=0.02, max_reductions=3
    ),
    "min rel_abs warmup floor": dict(
        threshold_mode="rel_abs", threshold=0.1, patience=1, warmup_epochs=4, min_lr=0.004
    ),
    "max rel_abs accumulation skip": dict(
        mode="max", threshold_mode="rel_abs", patience=0, accumulation_size=3, on_nonfinite="skip"
    ),
    "min abs smoothing nonfinite bad": dict(
        threshold_mode="abs", patience=1, cooldown=1, ema_decay=0.7, factor=0.3
    ),
    "everything": dict(
        patience=1,
        cooldown=1,
        warmup_epochs=3,
        warmup_start_factor=0.2,
        accumulation_size=2,
        ema_decay=0.5,
        on_nonfinite="skip",
        max_reductions=4,
        min_lr=(0.0, 0.002),
    ),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_compiled_step_gives_simulates_lrs_over_random_streams(name):
    config = PlateauConfig(**CONFIGS[name])
    nonfinite = name.endswith(("skip", "bad")) or name == "everything"
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, config=config, capturable=True)
    step = torch.compile(scheduler.step, fullgraph=True, backend="aot_eager")
    rng = random.Random(name)
    reductions = 0
    step(torch.tensor(1.0))  # compiled here, once: the streams differ only in values
    for _ in range(60):  # 360 streams over the configs
        scheduler.state = plateau.init(STARTS, config)  # in place: the same compiled step
        for group, lr in zip(optimizer.param_groups, scheduler.state.lrs, strict=True):
            group["lr"].fill_(lr)
        metrics = stream(rng, rng.randint(5, 40), nonfinite)
        expected = plateau.simulate(metrics, config, STARTS)
        for metric, state in zip(metrics, expected, strict=True):
            with torch._dynamo.config.patch(error_on_recompile=True):
                step(torch.tensor(metric, dtype=torch.float32))
            assert lrs_of(optimizer) == state.lrs
        assert scheduler.state == expected[-1]
        reductions += expected[-1].num_reductions
    assert reductions > 20  # the streams do reach plateaus


@pytest.mark.parametrize(
    ("dtype", "shape", "backend"),
    [
        (torch.float64, (), "eager"),
        (torch.float64, (), "aot_eager"),
        (torch.float64, (), "inductor"),
        (torch.float32, (), "eager"),
        (torch.float32, (), "aot_eager"),
        (torch.float64, (1,), "eager"),
        (torch.float64, (1,), "aot_eager"),
        (torch.bfloat16, (), "aot_eager"),
    ],
)
def test_each_lr_dtype_is_written_as_the_default_mode_writes_it(dtype, shape, backend):
    # torch 2.13's compiler drops some in-place writes to a 0-d float64 tensor.
    config = PlateauConfig(patience=0, factor=0.999, min_lr=0.001, warmup_epochs=2)
    reference = make_optimizer(dtype=dtype, shape=shape)
    default = ReduceLROnPlateau(reference, config=config)
    optimizer = make_optimizer(dtype=dtype, shape=shape)
    scheduler = ReduceLROnPlateau(optimizer, config=config, capturable=True)
    step = scheduler.step
    if backend != "eager":
        step = torch.compile(step, fullgraph=True, backend=backend)
    for metric in [3.0, 2.0, 1.0, 1.5, 1.6, 1.7, 0.5, 0.9, 0.9]:
        default.step(torch.tensor(metric))
        step(torch.tensor(metric))
        for ours, theirs in zip(optimizer.param_groups, reference.param_groups, strict=True):
            assert ours["lr"].dtype == dtype and ours["lr"].shape == shape
            assert torch.equal(ours["lr"], theirs["lr"])
        assert scheduler.state == default.state
    assert scheduler.state_dict() == default.state_dict()  # the same checkpoint
    # bfloat16 cannot hold a 0.999 cut: the default mode's AT_FLOOR, not a reduction
    assert (default.state.decision is Decision.AT_FLOOR) is (dtype == torch.bfloat16)


def test_float32_state_differs_only_by_float32_rounding():
    config = PlateauConfig(patience=0, factor=0.3)
    metrics = [1.0, 1.1, 0.7, 0.8, 0.9, 0.2]
    states = plateau.simulate(metrics, config, STARTS)
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(
        optimizer, config=config, capturable=True, state_dtype=torch.float32
    )
    for metric, expected in zip(metrics, states, strict=True):
        scheduler.step(torch.tensor(metric))
        assert scheduler.state.decision is expected.decision
        assert lrs_of(optimizer) == pytest.approx(expected.lrs, rel=2**-22)
    assert lrs_of(optimizer) != states[-1].lrs  # the cuts were computed in float32

    # A margin under float32's resolution is lost: 1 - 2e-9 improves on 1.0 in float64
    # (by threshold 1e-9), but rounds to 1.0 in float32, and so does the bound.
    config = PlateauConfig(threshold=1e-9, patience=5)
    decisions = {}
    for dtype in (torch.float64, torch.float32):
        scheduler = ReduceLROnPlateau(
            make_optimizer(), config=config, capturable=True, state_dtype=dtype
        )
        for metric in (1.0, 1.0 - 2e-9):
            scheduler.step(torch.tensor(metric, dtype=torch.float64))
        decisions[dtype] = scheduler.state.decision
    expected = plateau.simulate([1.0, 1.0 - 2e-9], config)[-1].decision
    assert decisions == {torch.float64: expected, torch.float32: Decision.NO_IMPROVEMENT}
    assert expected is Decision.IMPROVED


@pytest.fixture(autouse=True)
def fresh_compiler():
    """Each test's schedulers compile anew (dynamo caches up to 8 per code object)."""
    torch._dynamo.reset()


@pytest.mark.parametrize("optimizer_name", ["SGD", "Adam"])
def test_a_training_loop_with_a_per_batch_plateau_matches_the_default(optimizer_name):
    def run(capturable):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        lr = torch.tensor(0.05, dtype=torch.float64)  # either mode takes a tensor lr
        optimizer = getattr(torch.optim, optimizer_name)(model.parameters(), lr=lr)
        scheduler = ReduceLROnPlateau(
            optimizer, patience=2, factor=0.5, cooldown=2, ema_decay=0.8, capturable=capturable
        )
        plateau_step = scheduler.step
        if capturable:
            plateau_step = torch.compile(plateau_step, fullgraph=True, backend="aot_eager")
        data = torch.Generator().manual_seed(1)
        lrs = []
        for _ in range(60):
            inputs = torch.randn(8, 4, generator=data)
            noisy = inputs.sum(1, keepdim=True) + torch.randn(8, 1, generator=data)
            loss = torch.nn.functional.mse_loss(model(inputs), noisy)  # it plateaus
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            plateau_step(loss.detach())
            lrs.append(float(optimizer.param_groups[0]["lr"]))
        return lrs, scheduler.state, [p.detach().clone() for p in model.parameters()]

    lrs, state, params = run(capturable=True)
    expected_lrs, expected_state, expected_params = run(capturable=False)
    assert lrs == expected_lrs
    assert state == expected_state
    assert state.num_reductions >= 2
    assert all(torch.equal(a, b) for a, b in zip(params, expected_params, strict=True))


def test_the_plateau_adds_no_graph_break_to_a_compiled_update():
    # torch's optimizer.step() breaks the graph on purpose (torch/optim/optimizer.py,
    # _use_grad): the update with the plateau breaks only where torch's does.
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.01))
    scheduler = ReduceLROnPlateau(optimizer, patience=1, capturable=True)
    model(torch.ones(2, 4)).sum().backward()

    def update(loss):
        optimizer.step()
        scheduler.step(loss)

    def update_alone(loss):  # any op after optimizer.step() is a graph of its own
        optimizer.step()
        return loss * 2.0

    with_plateau = torch._dynamo.explain(update)(torch.tensor(1.0))
    torch._dynamo.reset()
    alone = torch._dynamo.explain(update_alone)(torch.tensor(1.0))
    assert with_plateau.graph_break_count == alone.graph_break_count
    assert with_plateau.graph_count == alone.graph_count


def test_each_mode_resumes_the_others_checkpoint():
    config = PlateauConfig(patience=1, warmup_epochs=3, accumulation_size=2, ema_decay=0.6)
    metrics = stream(random.Random(7), 40, nonfinite=False)
    expected = plateau.simulate(metrics, config, STARTS)
    for first, second in ((False, True), (True, False)):
        for cut in (4, 21):  # in the warmup, and past it mid-block
            optimizer = make_optimizer(tensor=first)
            scheduler = ReduceLROnPlateau(optimizer, config=config, capturable=first)
            for metric in metrics[:cut]:
                scheduler.step(torch.tensor(metric))
            saved = json.loads(json.dumps(scheduler.state_dict()))  # strict JSON through
            resumed_optimizer = make_optimizer(tensor=second)
            resumed = ReduceLROnPlateau(resumed_optimizer, config=config, capturable=second)
            resumed.load_state_dict(saved)
            for group, lr in zip(resumed_optimizer.param_groups, lrs_of(optimizer), strict=True):
                group["lr"] = torch.tensor(lr, dtype=torch.float64) if second else lr
            assert resumed.state_dict() == saved
            for metric, state in zip(metrics[cut:], expected[cut:], strict=True):
                resumed.step(torch.tensor(metric))
                assert lrs_of(resumed_optimizer) == state.lrs
            assert resumed.state == expected[-1]


def test_the_state_and_torchs_attributes_read_and_write_the_device_state():
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, patience=5, capturable=True)
    scheduler.step(torch.tensor(1.0))
    assert (scheduler.best, scheduler.last_epoch) == (1.0, 1)
    scheduler.num_bad_epochs = 5  # patience runs out at the next bad epoch
    scheduler.step(torch.tensor(2.0))
    assert scheduler.state.decision is Decision.REDUCED
    assert lrs_of(optimizer) == (0.05, 0.003)
    assert [float(lr) for lr in scheduler.get_last_lr()] == [0.05, 0.003]


def test_a_config_assigned_later_is_the_one_the_step_uses():
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, patience=5, capturable=True)
    scheduler.step(torch.tensor(1.0))
    scheduler.patience = 0
    scheduler.step(torch.tensor(2.0))
    assert lrs_of(optimizer) == (0.05, 0.003)
    scheduler.config = attrs.evolve(scheduler.config, detector="window_best")
    with pytest.raises(ValueError, match="'detector' needs the host"):
        scheduler.step(torch.tensor(2.0))
    assert lrs_of(optimizer) == (0.05, 0.003)


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"detector": "slope"}, ValueError, "'detector' needs the host"),
        ({"on_nonfinite": "raise"}, ValueError, "'on_nonfinite' needs the host"),
        ({"config": PlateauConfig(detector="window_best")}, ValueError, "'detector'"),
        ({"sync_metric": True}, ValueError, "'sync_metric' needs the host"),
        ({"restore_best": True}, ValueError, "'restore_best' needs the host"),
        ({"base": lambda epoch: 1.0}, ValueError, "'base' needs the host"),
        ({"verbose": True}, ValueError, "'verbose' needs the host"),
        ({"verbose": logging.getLogger()}, ValueError, "'verbose' needs the host"),
        ({"on_repeat": "skip"}, ValueError, "'on_repeat' needs the host"),
        ({"state_dtype": torch.float16}, ValueError, "'state_dtype' must be torch.float64"),
        ({"warmup_epochs": 2, "detector": "slope"}, ValueError, "'detector'"),
    ],
)
def test_what_needs_the_host_is_refused_by_name_and_changes_nothing(settings, error, message):
    optimizer = make_optimizer()
    with pytest.raises(error, match=message):
        ReduceLROnPlateau(optimizer, capturable=True, **settings)
    assert lrs_of(optimizer) == STARTS


def test_lrs_that_are_not_tensors_on_one_device_are_refused_by_group():
    with pytest.raises(TypeError, match=r"param_groups\[1\]\['lr'\] must be a one-element"):
        ReduceLROnPlateau(make_optimizer((torch.tensor(0.1), 0.2), tensor=False), capturable=True)
    optimizer = make_optimizer()
    optimizer.param_groups[1]["lr"] = torch.tensor(0.1, device="meta")
    with pytest.raises(ValueError, match="on one device"):
        ReduceLROnPlateau(optimizer, capturable=True)
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['lr'\] must be a one-element"):
        ReduceLROnPlateau(make_optimizer(dtype=torch.int64), capturable=True)


def test_misplaced_capturable_arguments_are_refused():
    optimizer = make_optimizer()
    with pytest.raises(ValueError, match="'state_dtype' goes with capturable=True"):
        ReduceLROnPlateau(optimizer, state_dtype=torch.float32)
    with pytest.raises(TypeError, match="'capturable' must be a bool"):
        ReduceLROnPlateau(optimizer, capturable=1)

    class Mine(ReduceLROnPlateau):
        pass

    with pytest.raises(TypeError, match="subclass Mine cannot"):
        Mine(optimizer, capturable=True)


def test_a_step_it_cannot_take_is_refused_and_changes_nothing():
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, patience=0, capturable=True)
    scheduler.step(torch.tensor(1.0))
    before = scheduler.state_dict()
    with pytest.raises(TypeError, match="takes the metric alone"):
        scheduler.step()
    with pytest.raises(TypeError, match="'metric' must be a single real number"):
        scheduler.step(torch.tensor(True))
    optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1})
    with pytest.raises(ValueError, match="a group cannot join it mid-run"):
        scheduler.step(torch.tensor(2.0))
    with pytest.raises(TypeError, match=r"'state' must be a plateau\.PlateauState, got dict"):
        scheduler.state = before
    optimizer.param_groups.pop()
    optimizer.param_groups[0]["lr"] = 0.05  # a float set by hand in place of the tensor
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['lr'\] must be a one-element"):
        scheduler.step(torch.tensor(2.0))
    optimizer.param_groups[0]["lr"] = torch.tensor(STARTS[0], dtype=torch.float64)
    assert scheduler.state_dict() == before
    assert lrs_of(optimizer) == STARTS


def test_a_compiled_step_goes_on_after_a_load_without_recompiling():
    config = PlateauConfig(patience=1, cooldown=1)
    metrics = stream(random.Random(3), 30, nonfinite=False)
    expected = plateau.simulate(metrics, config, STARTS)
    saved_from = ReduceLROnPlateau(make_optimizer(tensor=False), config=config)
    for metric in metrics[:12]:
        saved_from.step(metric)
    optimizer = make_optimizer()
    scheduler = ReduceLROnPlateau(optimizer, config=config, capturable=True)
    step = torch.compile(scheduler.step, fullgraph=True, backend="aot_eager")
    step(torch.tensor(9.0))  # compiled on a state the load then replaces
    scheduler.load_state_dict(saved_from.state_dict())
    for group, lr in zip(optimizer.param_groups, expected[11].lrs, strict=True):
        group["lr"].fill_(lr)  # the optimizer's own checkpoint would restore these
    for metric, state in zip(metrics[12:], expected[12:], strict=True):
        with torch._dynamo.config.patch(error_on_recompile=True):
            step(torch.tensor(metric, dtype=torch.float32))
        assert lrs_of(optimizer) == state.lrs
    assert scheduler.state == expected[-1]


def test_a_warmup_ended_by_a_config_change_stays_over_as_in_the_default_mode():
    # step() clears base_lrs when a config with warmup_epochs <= k replaces the warmup's:
    # a config that warms up again later does not resume it.
    warming = PlateauConfig(patience=0, warmup_epochs=3)
    plain = attrs.evolve(warming, warmup_epochs=0)
    runs = []
    for capturable in (False, True):
        optimizer = make_optimizer()
        scheduler = ReduceLROnPlateau(optimizer, config=warming, capturable=capturable)
        for config in (warming, plain, warming, warming):
            scheduler.config = config
            scheduler.step(torch.tensor(1.0))
        runs.append((lrs_of(optimizer), scheduler.state))
    assert runs[1] == runs[0]
    assert runs[0][1].decision is not Decision.WARMUP
