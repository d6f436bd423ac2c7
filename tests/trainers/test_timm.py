"""timm's PlateauLRScheduler with plateau's class inside, against torch's class inside.

timm builds its inner scheduler as ``torch.optim.lr_scheduler.ReduceLROnPlateau(...)``,
looked up when the PlateauLRScheduler is constructed; the tests swap in plateau's
class for that one call. timm's own state_dict holds the inner scheduler's ``best``
and ``last_epoch`` only, and its load_state_dict writes them back as attributes.

timm's package ``__init__`` imports torchvision, which does not load beside the CPU
torch the tests pin: ``timm.scheduler`` (torch and numpy only) is imported under a
stand-in ``timm`` namespace package when the real one does not import.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import sys
import types
import warnings

import pytest

torch = pytest.importorskip("torch")

from _compat import claim  # noqa: E402

from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TorchPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau

TRAINER = "timm"
TESTED_WITH = "timm==1.0.31"
NOTE = (
    "timm's own state_dict keeps only best and last_epoch (num_bad_epochs and cooldown "
    "restart at 0), under both classes; import timm.scheduler without timm's __init__ "
    "(it needs torchvision)"
)

# Improves, plateaus, improves, plateaus: cuts and cooldowns at known epochs.
VAL_LOSSES = [1.0, 0.8, 0.7, 0.7, 0.71, 0.72, 0.69, 0.69, 0.7, 0.7, 0.7, 0.6, 0.6, 0.61, 0.6, 0.6]
KWARGS = {
    "decay_rate": 0.5,
    "patience_t": 1,
    "cooldown_t": 1,
    "mode": "min",
    "lr_min": 0.005,
    "warmup_t": 2,
    "warmup_lr_init": 0.01,
    "noise_range_t": (6, 12),  # timm perturbs the lrs, then restores them before each step
    "noise_seed": 42,
}


def import_plateau_lr():
    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm is not installed", allow_module_level=True)
    try:
        return importlib.import_module("timm.scheduler.plateau_lr")
    except (ImportError, RuntimeError):  # torchvision missing, or not loading
        for name in [name for name in sys.modules if name.split(".")[0] == "timm"]:
            del sys.modules[name]
    stub = types.ModuleType("timm")
    stub.__path__ = list(importlib.util.find_spec("timm").submodule_search_locations)
    sys.modules["timm"] = stub
    try:
        return importlib.import_module("timm.scheduler.plateau_lr")
    finally:
        del sys.modules["timm"]  # timm.scheduler stays importable; timm itself is not faked


plateau_lr = import_plateau_lr()


def build(inner_cls, monkeypatch):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with monkeypatch.context() as patch, warnings.catch_warnings():
        patch.setattr(torch.optim.lr_scheduler, "ReduceLROnPlateau", inner_cls)
        warnings.simplefilter("ignore", FutureWarning)  # PlateauLRScheduler is deprecated
        scheduler = plateau_lr.PlateauLRScheduler(optimizer, **KWARGS)
    assert type(scheduler.lr_scheduler) is inner_cls
    return model, optimizer, scheduler


def train(model, optimizer, scheduler, epochs):
    """timm's train.py loop: an epoch of updates, then step(epoch + 1, metric)."""
    lrs = []
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
    for epoch in epochs:
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True)).backward()
        optimizer.step()
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # no repeated-step warning
            scheduler.step(epoch + 1, VAL_LOSSES[epoch])
    return lrs


@claim("works", "history")
def test_timm_plateau_scheduler_gives_torchs_lr_history(monkeypatch):
    ours = train(*build(ReduceLROnPlateau, monkeypatch), range(len(VAL_LOSSES)))
    theirs = train(*build(TorchPlateau, monkeypatch), range(len(VAL_LOSSES)))
    assert ours == theirs
    assert ours[-1] < 0.05  # not vacuous: warmed up to 0.1, then cut to the floor


def saved_by(inner_cls, monkeypatch, epochs):
    """timm's checkpoint after `epochs` epochs: its scheduler and the optimizer, via torch.save."""
    model, optimizer, scheduler = build(inner_cls, monkeypatch)
    train(model, optimizer, scheduler, range(epochs))
    buffer = io.BytesIO()
    torch.save(
        {"scheduler": scheduler.state_dict(), "optimizer": optimizer.state_dict(),
         "model": model.state_dict()},
        buffer,
    )  # fmt: skip
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@claim("resume")
@pytest.mark.parametrize("written_by", ["plateau", "torch"])
@pytest.mark.parametrize("resumed_by", ["plateau", "torch"])
def test_timm_state_dict_round_trip(monkeypatch, written_by, resumed_by):
    """timm's load_state_dict writes best and last_epoch: torch's resumed run, either way."""
    classes = {"plateau": ReduceLROnPlateau, "torch": TorchPlateau}
    cut = 7
    checkpoint = saved_by(classes[written_by], monkeypatch, cut)
    reference = saved_by(TorchPlateau, monkeypatch, cut)
    runs = []
    for inner_cls, saved in [(classes[resumed_by], checkpoint), (TorchPlateau, reference)]:
        model, optimizer, scheduler = build(inner_cls, monkeypatch)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        assert scheduler.lr_scheduler.best == 0.69 and scheduler.lr_scheduler.last_epoch == 5
        runs.append(train(model, optimizer, scheduler, range(cut, len(VAL_LOSSES))))
    assert runs[0] == runs[1]
    assert len(set(runs[0])) >= 2
