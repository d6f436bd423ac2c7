"""Plateau's class built on accelerate's prepared optimizer, against torch's on the same run.

``accelerator.prepare(optimizer)`` returns an ``AcceleratedOptimizer``: a
``torch.optim.Optimizer`` that never ran ``Optimizer.__init__`` and forwards
``param_groups`` to the optimizer it wraps. A scheduler built after ``prepare`` --
in a plain accelerate loop, and by skorch's ``AccelerateMixin``, whose LRScheduler
callback builds its policy on ``net.optimizer_`` -- is built on that wrapper.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
accelerate = pytest.importorskip("accelerate")

from _compat import claim  # noqa: E402

from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TorchPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau

TRAINER = "accelerate, built on the prepared optimizer (also skorch's AccelerateMixin)"
TESTED_WITH = "accelerate==1.15.0"
NOTE = "the repeat guard counts the steps of the optimizer the AcceleratedOptimizer wraps"

SCRIPTED = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8]
KWARGS = {"patience": 1, "factor": 0.5}
pytestmark = pytest.mark.slow


def train(scheduler_cls, repeat=False, **kwargs):
    """One process; the scheduler built after prepare. The lr of every epoch, the scheduler."""
    accelerator = accelerate.Accelerator(cpu=True)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    model, optimizer = accelerator.prepare(model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert isinstance(optimizer, accelerate.optimizer.AcceleratedOptimizer)
    scheduler = scheduler_cls(optimizer, **KWARGS, **kwargs)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    lrs = []
    for metric in SCRIPTED:
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad()
        accelerator.backward(torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True)))
        optimizer.step()
        scheduler.step(metric)
        if repeat:  # a second step with no optimizer step: the guard must see it
            scheduler.step(metric)
    return [*lrs, optimizer.param_groups[0]["lr"]], scheduler


@claim("works", "history")
def test_built_after_prepare_gives_torchs_lr_history():
    expected, _ = train(TorchPlateau)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one step per optimizer step: no repeat warning
        ours, scheduler = train(ReduceLROnPlateau)
    assert ours == expected
    assert len(set(ours)) >= 3  # not vacuous: cut twice
    assert scheduler.state.num_reductions == 2


@claim("works", "history")
def test_the_repeat_guard_counts_the_wrapped_optimizers_steps():
    expected, _ = train(TorchPlateau)
    skipped, scheduler = train(ReduceLROnPlateau, repeat=True, on_repeat="skip")
    assert skipped == expected
    assert scheduler.last_epoch == len(SCRIPTED)  # every repeat skipped
    with pytest.warns(UserWarning, match="called again with no optimizer step"):
        train(ReduceLROnPlateau, repeat=True)


@claim("works", "history")
def test_skorch_accelerate_mixin_gives_torchs_lr_history():
    skorch = pytest.importorskip("skorch")
    from skorch.callbacks import LRScheduler
    from skorch.hf import AccelerateMixin

    class AcceleratedNet(AccelerateMixin, skorch.NeuralNetRegressor):
        pass

    def fit(policy):
        torch.manual_seed(0)
        scheduler = LRScheduler(policy, monitor="valid_loss", event_name="event_lr", **KWARGS)
        net = AcceleratedNet(
            torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)),
            accelerator=accelerate.Accelerator(cpu=True), device=None, max_epochs=12, lr=2.0,
            optimizer=torch.optim.SGD, callbacks=[("plateau", scheduler)], verbose=0,
            train_split=skorch.dataset.ValidSplit(4),
        )  # fmt: skip
        x = torch.randn(64, 4, generator=torch.Generator().manual_seed(2))
        net.fit(x.numpy(), x.sum(1, keepdim=True).numpy())
        return list(net.history[:, "event_lr"]), dict(net.callbacks_)["plateau"].lr_scheduler_

    ours, scheduler = fit(ReduceLROnPlateau)
    assert ours == fit(TorchPlateau)[0]
    assert len(set(ours)) >= 2  # not vacuous: cut at least once
    assert isinstance(scheduler.optimizer, accelerate.optimizer.AcceleratedOptimizer)
