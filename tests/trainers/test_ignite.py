"""ignite's ReduceLROnPlateauScheduler with plateau's class inside, against torch's class.

ignite builds ``ReduceLROnPlateau`` (torch's, imported into its param_scheduler
module; the tests put plateau's there) and, with ``param_group_index``, installs
its own ``_reduce_lr`` on it to cut one param group only. Its ``Checkpoint`` saves
the scheduler's state_dict with torch.save and loads it with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import pickle
import warnings

import pytest

torch = pytest.importorskip("torch")
ignite_engine = pytest.importorskip("ignite.engine")

from _compat import claim  # noqa: E402
from ignite.handlers import Checkpoint, DiskSaver, param_scheduler  # noqa: E402

from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TorchPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau
Engine, Events = ignite_engine.Engine, ignite_engine.Events

TRAINER = "ignite"
TESTED_WITH = "pytorch-ignite==0.5.5"
NOTE = (
    "under torch's class ignite's Checkpoint cannot save the scheduler: torch's state_dict "
    "holds the _reduce_lr ignite installs, a bound method, which does not pickle (nor "
    "would torch.load(weights_only=True) take it); plateau's checkpoint resumes under both"
)

EPOCHS = 14
VAL_LOSSES = [1.0, 0.8, 0.8, 0.8, 0.7, 0.7, 0.75, 0.69, 0.7, 0.7, 0.7, 0.68, 0.68, 0.68]


def build(inner_cls, monkeypatch, checkpoint_dir=None):
    """A trainer, an evaluator scripted to VAL_LOSSES, and the scheduler on group 0 of 2."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(
        [{"params": [model.weight], "lr": 0.1}, {"params": [model.bias], "lr": 0.1}]
    )
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))

    def train_step(engine, batch):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[batch]), x[batch].sum(1, keepdim=True))
        loss.backward()
        optimizer.step()

    trainer = Engine(train_step)
    evaluator = Engine(lambda engine, batch: None)
    evaluator.add_event_handler(Events.COMPLETED, set_val_loss, trainer)
    with monkeypatch.context() as patch:
        patch.setattr(param_scheduler, "ReduceLROnPlateau", inner_cls)
        scheduler = param_scheduler.ReduceLROnPlateauScheduler(
            optimizer, metric_name="loss", trainer=trainer, param_group_index=0,
            save_history=True, patience=1, factor=0.5, cooldown=1, min_lr=0.01,
        )  # fmt: skip
    assert type(scheduler.scheduler) is inner_cls
    evaluator.add_event_handler(Events.COMPLETED, scheduler)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, run_evaluator, evaluator)
    lrs = []
    trainer.add_event_handler(Events.EPOCH_STARTED, record_lrs, optimizer, lrs)
    objects = {"trainer": trainer, "optimizer": optimizer, "scheduler": scheduler, "model": model}
    if checkpoint_dir is not None:
        saver = DiskSaver(checkpoint_dir, require_empty=False)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, Checkpoint(objects, saver, n_saved=None))
    return trainer, objects, lrs


def set_val_loss(evaluator, trainer):
    evaluator.state.metrics["loss"] = VAL_LOSSES[trainer.state.epoch - 1]


def run_evaluator(trainer, evaluator):
    evaluator.run([0])


def record_lrs(trainer, optimizer, lrs):
    lrs.append([group["lr"] for group in optimizer.param_groups])


def fit(trainer, lrs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no repeated-step warning
        trainer.run([[0, 1, 2, 3], [4, 5, 6, 7]], max_epochs=EPOCHS)
    return lrs


@claim("works", "history")
def test_ignite_param_group_index_cuts_one_group_as_with_torchs_class(monkeypatch):
    trainer, _, lrs = build(ReduceLROnPlateau, monkeypatch)
    ours = fit(trainer, lrs)
    trainer, _, lrs = build(TorchPlateau, monkeypatch)
    theirs = fit(trainer, lrs)
    assert ours == theirs
    assert {group[1] for group in ours} == {0.1}  # group 1 is never cut ...
    assert len({group[0] for group in ours}) >= 4  # ... group 0 is, three times


@claim("works", "history", "resume_from_plateau")
@pytest.mark.parametrize("resumed_by", ["plateau", "torch"])
@pytest.mark.parametrize("resume_after", [4, 9])
def test_ignite_checkpoint_resumes_exactly(monkeypatch, tmp_path, resume_after, resumed_by):
    """Resume from ignite's Checkpoint file, written under plateau's class, under either
    class: the rest of torch's uninterrupted run."""
    trainer, _, lrs = build(TorchPlateau, monkeypatch)
    expected = fit(trainer, lrs)
    trainer, _, lrs = build(ReduceLROnPlateau, monkeypatch, checkpoint_dir=tmp_path)
    assert fit(trainer, lrs) == expected
    cls = {"plateau": ReduceLROnPlateau, "torch": TorchPlateau}[resumed_by]
    trainer, objects, lrs = build(cls, monkeypatch)
    path = tmp_path / f"checkpoint_{resume_after * 2}.pt"  # ignite names it by iteration
    Checkpoint.load_objects(to_load=objects, checkpoint=str(path))  # weights_only=True
    assert objects["scheduler"].scheduler.last_epoch == resume_after
    assert fit(trainer, lrs) == expected[resume_after:]


def test_under_torchs_class_ignites_checkpoint_cannot_save_the_scheduler(monkeypatch, tmp_path):
    """The reason the table's resume cell is plateau's only: torch's class fails here."""
    trainer, _, lrs = build(TorchPlateau, monkeypatch, checkpoint_dir=tmp_path)
    with pytest.raises((pickle.PicklingError, TypeError), match=r"(?i)pickle"):
        fit(trainer, lrs)
    state_dict = build(TorchPlateau, monkeypatch)[1]["scheduler"].state_dict()
    assert callable(state_dict["scheduler"]["_reduce_lr"])  # ignite's bound method


@claim("works")
def test_ignite_warmup_wrapper_writes_last_epoch(monkeypatch):
    """create_lr_scheduler_with_warmup does lr_scheduler.last_epoch += 1."""
    schedulers = []
    for cls in (ReduceLROnPlateau, TorchPlateau):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = cls(optimizer)
        param_scheduler.create_lr_scheduler_with_warmup(
            scheduler, warmup_start_value=0.0, warmup_duration=3
        )
        schedulers.append(scheduler)
    assert schedulers[0].last_epoch == schedulers[1].last_epoch == 1
