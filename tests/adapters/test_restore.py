"""Reduce and roll back: after each cut, the best step's weights and optimizer state, exactly.

A tiny regression trains on synthetic data with SGD (momentum) or Adam; its
validation loss is scripted so that best is set and cuts fall at known epochs.
The test keeps its own copies of the model's and optimizer's state dicts whenever
the scheduler reports a new best, and compares after each cut.
"""

from __future__ import annotations

import copy
import json

import pytest

torch = pytest.importorskip("torch")

from plateau import Decision  # noqa: E402
from plateau.adapters.restore import BestCopy  # noqa: E402
from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

VAL_LOSSES = [1.0, 0.9, 0.95, 0.96, 0.97, 0.85, 0.86, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
OPTIMIZERS = {
    "sgd_momentum": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
    "adam": lambda params: torch.optim.Adam(params, lr=0.01),
}


def build(optimizer_name, restore_best=True):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())
    scheduler = ReduceLROnPlateau(optimizer, patience=2, factor=0.5, restore_best=restore_best)
    return model, optimizer, scheduler


def train_epoch(model, optimizer, epoch):
    generator = torch.Generator().manual_seed(epoch)  # the same batches after a resume
    for _ in range(3):
        x = torch.randn(16, 4, generator=generator)
        y = x.sum(1, keepdim=True)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()


def assert_same_tensors(actual, expected):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_same_tensors(actual[key], value)
        elif isinstance(value, torch.Tensor):
            assert torch.equal(actual[key], value), key
        else:
            assert actual[key] == value, key


def snapshot(model, optimizer):
    return copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()["state"])


@pytest.mark.parametrize("restore_best", [True, "cpu"])
@pytest.mark.parametrize("optimizer_name", list(OPTIMIZERS))
def test_each_cut_restores_the_weights_and_optimizer_state_of_the_best_epoch(
    optimizer_name, restore_best
):
    model, optimizer, scheduler = build(optimizer_name, restore_best)
    ours, cuts = None, []
    for epoch, val_loss in enumerate(VAL_LOSSES):
        train_epoch(model, optimizer, epoch)
        degraded = snapshot(model, optimizer)
        lr_before = optimizer.param_groups[0]["lr"]
        scheduler.step(val_loss)
        decision = scheduler.state.decision
        assert scheduler.restored is (decision is Decision.REDUCED)
        if decision is Decision.IMPROVED:
            ours = (snapshot(model, optimizer), scheduler.state.last_epoch)
        elif decision is Decision.REDUCED:
            (weights, state), best_epoch = ours
            assert_same_tensors(model.state_dict(), weights)
            assert_same_tensors(optimizer.state_dict()["state"], state)
            assert not torch.equal(model.state_dict()["0.weight"], degraded[0]["0.weight"])
            assert optimizer.param_groups[0]["lr"] == scheduler.state.lrs[0] == lr_before * 0.5
            assert scheduler.best_copy.best_epoch == best_epoch
            assert scheduler.best_copy.restored_at == scheduler.state.last_epoch
            cuts.append(epoch)
        else:  # neither: training goes on from where it is
            assert_same_tensors(model.state_dict(), degraded[0])
    assert len(cuts) >= 2
    if restore_best == "cpu":
        assert all(
            t.device.type == "cpu" for t in scheduler.best_copy.state_dict()["tensors"].values()
        )


def run(optimizer_name, epochs, checkpoint=None):
    """Train `epochs`; from a torch.save'd checkpoint's next epoch if one is given."""
    model, optimizer, scheduler = build(optimizer_name)
    start = 0
    if checkpoint is not None:
        saved = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        start = saved["epoch"] + 1
    for epoch in range(start, epochs):
        train_epoch(model, optimizer, epoch)
        scheduler.step(VAL_LOSSES[epoch])
    return model, optimizer, scheduler


@pytest.mark.parametrize("optimizer_name", list(OPTIMIZERS))
def test_a_resumed_run_continues_bit_for_bit(optimizer_name, tmp_path):
    whole = run(optimizer_name, len(VAL_LOSSES))
    # Saved after epoch 6: a best is kept (epoch 5's), and epochs 8-10's cut restores it.
    model, optimizer, scheduler = run(optimizer_name, 7)
    saved = scheduler.state_dict()
    assert json.loads(saved["best_copy"]["meta"])["copy"]["best_epoch"] == 6  # steps counted
    json.loads(saved["plateau"], parse_constant=pytest.fail)  # strict JSON
    path = tmp_path / "checkpoint.pt"
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": saved,
         "epoch": 6},
        path,
    )  # fmt: skip
    resumed = run(optimizer_name, len(VAL_LOSSES), checkpoint=path)
    assert_same_tensors(resumed[0].state_dict(), whole[0].state_dict())
    assert_same_tensors(resumed[1].state_dict(), whole[1].state_dict())
    assert resumed[2].state == whole[2].state
    assert resumed[2].best_copy.restored_at == whole[2].best_copy.restored_at is not None
    assert_same_tensors(
        resumed[2].best_copy.state_dict()["tensors"], whole[2].best_copy.state_dict()["tensors"]
    )


def test_a_cut_before_any_best_restores_nothing():
    model, optimizer, scheduler = build("sgd_momentum")
    for epoch in range(4):
        train_epoch(model, optimizer, epoch)
        before = snapshot(model, optimizer)
        scheduler.step(float("nan"))  # never improves: a cut after patience, nothing kept
        assert_same_tensors(model.state_dict(), before[0])
    assert scheduler.state.num_reductions == 1
    assert (scheduler.best_copy.best_epoch, scheduler.best_copy.restored_at) == (None, None)


def test_a_bad_checkpoint_is_refused_and_changes_nothing():
    model, optimizer, scheduler = build("adam")
    train_epoch(model, optimizer, 0)
    scheduler.step(1.0)
    saved = scheduler.state_dict()
    kept = {k: v.clone() for k, v in saved["best_copy"]["tensors"].items()}
    wrong = copy.deepcopy(saved)
    wrong["best_copy"]["tensors"]["param.0"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"'tensors\['param.0'\]' is torch.float32 \(3,\)"):
        scheduler.load_state_dict(wrong)
    wrong = copy.deepcopy(saved)
    wrong["best_copy"]["tensors"]["param.0"].fill_(7.0)  # a copy that would load ...
    schedule = json.loads(wrong["plateau"])
    schedule["state"]["num_bad_epochs"] = -1  # ... beside a schedule refused: neither loads
    wrong["plateau"] = json.dumps(schedule)
    with pytest.raises(ValueError, match="num_bad_epochs"):
        scheduler.load_state_dict(wrong)
    wrong = copy.deepcopy(saved)
    meta = json.loads(wrong["best_copy"]["meta"])
    meta["copy"]["best_epoch"] = -1
    wrong["best_copy"]["meta"] = json.dumps(meta)
    with pytest.raises(ValueError, match=r"\['best_copy'\]: 'best_epoch' must be >= 0, got -1"):
        scheduler.load_state_dict(wrong)
    wrong = copy.deepcopy(saved)
    del wrong["best_copy"]["tensors"]["state.0.exp_avg"]  # a DCP template without it
    with pytest.raises(ValueError, match=r"lacks the copy's tensors \['state.0.exp_avg'\]"):
        scheduler.load_state_dict(wrong)
    assert_same_tensors(scheduler.best_copy.state_dict()["tensors"], kept)
    assert scheduler.best_copy.best_epoch == 1


def test_a_checkpoint_with_a_copy_needs_restore_best_and_one_without_keeps_none_yet():
    model, optimizer, scheduler = build("adam")
    train_epoch(model, optimizer, 0)
    scheduler.step(1.0)
    saved = scheduler.state_dict()
    plain = ReduceLROnPlateau(optimizer, patience=2, factor=0.5)
    with pytest.raises(ValueError, match=r"holds a best copy .*restore_best=True or 'cpu'"):
        plain.load_state_dict(saved)
    assert plain.last_epoch == 0  # refused: nothing changed
    plain.step(1.0)
    resumed = build("adam")[2]
    resumed.load_state_dict(plain.state_dict())  # no copy saved: none kept yet
    assert resumed.state == plain.state
    assert (resumed.best_copy.best_epoch, resumed.restored) == (None, False)


def test_bad_options_are_named():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="'restore_best' must be True, False or 'cpu', got 'gpu'"):
        ReduceLROnPlateau(optimizer, restore_best="gpu")
    with pytest.raises(TypeError, match="'restore_best' must be True, False or 'cpu', got int"):
        ReduceLROnPlateau(optimizer, restore_best=1)
    with pytest.raises(TypeError, match=r"'optimizer' must be a torch\.optim\.Optimizer, got list"):
        BestCopy([])


def test_optimizer_state_it_cannot_save_is_refused_before_the_copy_changes():
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    weight.grad = torch.ones(2)
    optimizer.step()
    best = BestCopy(optimizer)
    best.keep(epoch=1)
    kept = weight.detach().clone()
    optimizer.step()
    optimizer.state[weight]["history"] = [torch.zeros(2)]  # as LBFGS keeps
    with pytest.raises(TypeError, match="optimizer state 'history' of parameter 0 is a list"):
        best.keep(epoch=2)
    best.restore()
    assert torch.equal(weight.detach(), kept) and best.best_epoch == 1


@pytest.mark.filterwarnings("ignore:torch.distributed is disabled")
def test_the_copy_round_trips_through_torch_distributed_checkpoint(tmp_path):
    dcp = pytest.importorskip("torch.distributed.checkpoint")
    model, optimizer, scheduler = build("adam")
    for epoch in range(2):
        train_epoch(model, optimizer, epoch)
        scheduler.step(VAL_LOSSES[epoch])
    dcp.save(scheduler.best_copy.state_dict(), checkpoint_id=tmp_path)
    # DCP loads into the tensors of the dict it is given: a copy kept once has them.
    other = build("adam")
    train_epoch(other[0], other[1], 0)
    loaded = BestCopy(other[1])
    loaded.keep(epoch=0)
    saved = loaded.state_dict()
    dcp.load(saved, checkpoint_id=tmp_path)
    loaded.load_state_dict(saved)
    assert loaded.best_epoch == scheduler.best_copy.best_epoch == 2
    assert_same_tensors(loaded.state_dict()["tensors"], scheduler.best_copy.state_dict()["tensors"])


@pytest.mark.filterwarnings("ignore:torch.distributed is disabled")
@pytest.mark.parametrize("restore_best", [True, "cpu"])
def test_a_scheduler_with_its_copy_resumes_from_dcp_into_a_freshly_built_one(
    tmp_path, restore_best
):
    dcp = pytest.importorskip("torch.distributed.checkpoint")
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    def checkpoint(model, optimizer, scheduler):
        # get_state_dict gives a fresh optimizer its state tensors: DCP's template
        model_state, optimizer_state = get_state_dict(model, optimizer)
        return {"model": model_state, "optimizer": optimizer_state, "scheduler": scheduler}

    whole = build("adam", restore_best)
    for epoch, val_loss in enumerate(VAL_LOSSES):
        train_epoch(whole[0], whole[1], epoch)
        whole[2].step(val_loss)
    model, optimizer, scheduler = build("adam", restore_best)
    for epoch in range(7):
        train_epoch(model, optimizer, epoch)
        scheduler.step(VAL_LOSSES[epoch])
    dcp.save(checkpoint(model, optimizer, scheduler), checkpoint_id=tmp_path, no_dist=True)
    model, optimizer, scheduler = build("adam", restore_best)
    loaded = checkpoint(model, optimizer, scheduler)
    dcp.load(loaded, checkpoint_id=tmp_path, no_dist=True)
    set_state_dict(
        model, optimizer, model_state_dict=loaded["model"], optim_state_dict=loaded["optimizer"]
    )
    assert scheduler.best_copy.best_epoch == 6
    restored = []
    for epoch in range(7, len(VAL_LOSSES)):
        train_epoch(model, optimizer, epoch)
        scheduler.step(VAL_LOSSES[epoch])
        restored.append(scheduler.restored)
    assert any(restored)
    assert scheduler.state == whole[2].state
    assert_same_tensors(model.state_dict(), whole[0].state_dict())
    assert_same_tensors(optimizer.state_dict(), whole[1].state_dict())
