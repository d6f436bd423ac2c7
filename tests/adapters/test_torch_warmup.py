"""The torch drop-in's warmup_epochs / warmup_start_factor: the core's rule, on param_groups."""

from __future__ import annotations

import io
import json
import math
import random

import pytest

torch = pytest.importorskip("torch")

import plateau  # noqa: E402
from plateau import Decision  # noqa: E402
from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402


def make_optimizer(lrs, dtype=None):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    if dtype is not None:
        for group in groups:
            group["lr"] = torch.tensor(group["lr"], dtype=dtype)
    return torch.optim.SGD(groups, lr=0.001)


def lrs_of(optimizer):
    return [float(group["lr"]) for group in optimizer.param_groups]


def train(optimizer, scheduler, metrics):
    """One optimizer step and one scheduler step per metric; the lrs after each."""
    history = []
    for metric in metrics:
        optimizer.step()
        scheduler.step(metric)
        history.append(lrs_of(optimizer))
    return history


def test_construction_sets_each_group_to_its_fraction():
    optimizer = make_optimizer([0.1, 0.4])
    scheduler = ReduceLROnPlateau(optimizer, warmup_epochs=5, warmup_start_factor=0.25)
    assert lrs_of(optimizer) == [0.1 * 0.25, 0.4 * 0.25] == scheduler.get_last_lr()
    assert scheduler.state.base_lrs == (0.1, 0.4)


def test_steps_follow_the_core_on_random_streams():
    rng = random.Random(5)
    for _ in range(60):
        lrs = [rng.choice([1.0, 0.1, 0.03]) for _ in range(rng.randint(1, 3))]
        kwargs = {
            "mode": rng.choice(["min", "max"]),
            "factor": rng.choice([0.1, 0.5]),
            "patience": rng.randint(0, 3),
            "cooldown": rng.randint(0, 2),
            "min_lr": rng.choice([0.0, 0.01]),
            "warmup_epochs": rng.randint(1, 6),
            "warmup_start_factor": rng.choice([0.0, 0.1, 1.0, rng.random()]),
        }
        metrics = [rng.choice([1.0, 0.9, 0.9, 0.8, math.nan]) for _ in range(30)]
        optimizer = make_optimizer(lrs)
        scheduler = ReduceLROnPlateau(optimizer, **kwargs)
        expected = plateau.simulate(metrics, plateau.PlateauConfig(**kwargs), lrs)
        assert train(optimizer, scheduler, metrics) == [list(s.lrs) for s in expected]
        assert scheduler.state == expected[-1]


@pytest.mark.parametrize("optimizer_first", [True, False])
def test_state_dict_resumes_mid_warmup(optimizer_first):
    """Saved at epoch 2 of 5, loaded into a fresh scheduler and optimizer: the same lrs."""
    metrics = [math.nan, 3.0, 2.0, 1.0, 1.0, 1.5, 1.5, 1.5, 1.5, 0.5, 2.0, 2.0]
    kwargs = {"patience": 1, "factor": 0.5, "warmup_epochs": 5, "warmup_start_factor": 0.1}
    torch.manual_seed(0)
    optimizer = make_optimizer([0.2, 0.05])
    scheduler = ReduceLROnPlateau(optimizer, **kwargs)
    uninterrupted = train(optimizer, scheduler, metrics)

    optimizer = make_optimizer([0.2, 0.05])
    scheduler = ReduceLROnPlateau(optimizer, **kwargs)
    before = train(optimizer, scheduler, metrics[:2])
    buffer = io.BytesIO()
    saved = {"scheduler": scheduler.state_dict(), "optimizer": optimizer.state_dict()}
    json.dumps(json.loads(saved["scheduler"]["plateau"]), allow_nan=False)  # strict JSON
    torch.save(saved, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)

    optimizer = make_optimizer([0.2, 0.05])
    scheduler = ReduceLROnPlateau(optimizer, **kwargs)  # sets the groups to lr * 0.1 again
    if optimizer_first:
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
    else:
        scheduler.load_state_dict(checkpoint["scheduler"])
        optimizer.load_state_dict(checkpoint["optimizer"])
    assert scheduler.state.warmup_epoch == 2 and scheduler.state.decision is Decision.WARMUP
    assert before + train(optimizer, scheduler, metrics[2:]) == uninterrupted
    assert uninterrupted[4] == [0.2, 0.05] and min(uninterrupted[-1]) < 0.05  # not vacuous


def test_an_lr_set_by_hand_during_warmup_rescales_that_group():
    optimizer = make_optimizer([0.1, 0.1])
    scheduler = ReduceLROnPlateau(optimizer, warmup_epochs=4, warmup_start_factor=0.2)
    scheduler.step(1.0)
    held = lrs_of(optimizer)
    optimizer.param_groups[0]["lr"] = held[0] * 2.0
    for _ in range(3):
        scheduler.step(1.0)
    factor_1 = 0.2 + 0.8 * 1 / 4
    assert lrs_of(optimizer) == [held[0] * 2.0 / factor_1, 0.1]


def test_a_group_added_during_warmup_ramps_from_its_lr():
    optimizer = make_optimizer([0.1])
    scheduler = ReduceLROnPlateau(optimizer, warmup_epochs=2, warmup_start_factor=0.5)
    scheduler.step(1.0)  # the ramp is at factor 0.75
    optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.03})
    scheduler.step(1.0)
    assert lrs_of(optimizer) == [0.1, 0.03 / 0.75]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_lrs_are_filled_in_place_and_their_rounding_is_no_hand_change(dtype):
    optimizer = make_optimizer([0.1, 0.3], dtype=dtype)
    tensors = [group["lr"] for group in optimizer.param_groups]
    scheduler = ReduceLROnPlateau(optimizer, warmup_epochs=3, warmup_start_factor=0.1)
    config = scheduler.config
    state = plateau.init([float(torch.tensor(lr, dtype=dtype)) for lr in (0.1, 0.3)], config)
    for _ in range(3):
        scheduler.step(1.0)
        state, lrs = plateau.step(state, 1.0, config)
        expected = [float(torch.tensor(lr, dtype=dtype)) for lr in lrs]
        assert lrs_of(optimizer) == expected == list(scheduler.state.lrs)
    assert [group["lr"] for group in optimizer.param_groups] == tensors  # the same tensors
    assert all(t.dtype == dtype for t in tensors)
    assert scheduler.state.base_lrs is None


def test_warmup_does_not_go_through_reduce_lr():
    """_reduce_lr is torch's hook for a cut (ignite overrides it): the ramp is not one."""
    calls = []

    class Recording(ReduceLROnPlateau):
        def _reduce_lr(self, epoch):
            calls.append(epoch)
            super()._reduce_lr(epoch)

    optimizer = make_optimizer([0.1])
    scheduler = Recording(optimizer, patience=0, warmup_epochs=3)
    for metric in [1.0, 2.0, 3.0, 4.0, 5.0]:
        scheduler.step(metric)
    assert calls == [5]  # step 4 sets best, step 5 cuts


def test_no_warmup_leaves_the_optimizer_alone_whatever_the_factor():
    optimizer = make_optimizer([0.1])
    scheduler = ReduceLROnPlateau(optimizer, warmup_start_factor=0.5)
    assert lrs_of(optimizer) == [0.1] and scheduler.state == plateau.init(0.1, scheduler.config)


def test_last_epoch_argument_starts_the_warmup_fresh():
    optimizer = make_optimizer([0.1])
    scheduler = ReduceLROnPlateau(optimizer, warmup_epochs=2, last_epoch=4)
    assert scheduler.last_epoch == 5 and scheduler.state.warmup_epoch == 0
    scheduler.step(1.0)
    assert lrs_of(optimizer) == [0.05] and scheduler.state.decision is Decision.WARMUP


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"warmup_epochs": -1}, ValueError, "'warmup_epochs' must be >= 0, got -1"),
        ({"warmup_epochs": 2.5}, TypeError, "'warmup_epochs' must be an int, got float: 2.5"),
        ({"warmup_start_factor": 2.0}, ValueError, "'warmup_start_factor' must be between"),
        ({"warmup_start_factor": "0"}, TypeError, "'warmup_start_factor' must be a real"),
    ],
)
def test_bad_keywords_are_refused_by_name_and_the_optimizer_untouched(kwargs, exc, match):
    optimizer = make_optimizer([0.1])
    with pytest.raises(exc, match=match):
        ReduceLROnPlateau(optimizer, **{"warmup_epochs": 3, **kwargs})
    assert lrs_of(optimizer) == [0.1]
