"""transformers' Trainer with plateau's class passed in ``optimizers=``, against torch's class.

The Trainer recognises a plateau scheduler by ``isinstance`` and steps it after each
evaluation with ``metrics["eval_" + metric_for_best_model]``; it saves
``scheduler.pt`` with torch.save and loads it with ``torch.load(weights_only=True)``.
The model is a tiny BERT built from a config (nothing downloaded), and the
monitored metric is scripted per epoch so that the cuts fall at known epochs.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from _compat import claim  # noqa: E402
from _tiny_bert import Dataset, tiny_bert  # noqa: E402

from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TorchPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau

TRAINER = "transformers Trainer"
TESTED_WITH = "transformers==5.23.0"

EPOCHS = 10
SCRIPTED = [1.0, 0.8, 0.8, 0.8, 0.7, 0.7, 0.71, 0.69, 0.69, 0.69]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*(pin_memory|TRANSFORMERS_CACHE)"),
]


class RecordLrs(transformers.TrainerCallback):
    def __init__(self):
        self.lrs = []

    def on_epoch_begin(self, args, state, control, optimizer=None, **kwargs):
        self.lrs.append(optimizer.param_groups[0]["lr"])


def fit(scheduler_cls, output_dir, resume_from=None):
    """Train the tiny BERT; return the lr of every epoch it trained and the scheduler."""
    model = tiny_bert()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = scheduler_cls(optimizer, patience=1, factor=0.5)
    args = transformers.TrainingArguments(
        output_dir=str(output_dir), num_train_epochs=EPOCHS, per_device_train_batch_size=8,
        eval_strategy="epoch", save_strategy="epoch", metric_for_best_model="scripted",
        greater_is_better=False, report_to=[], logging_strategy="no", use_cpu=True,
        disable_tqdm=True, seed=0, dataloader_num_workers=0,
    )  # fmt: skip
    record = RecordLrs()
    holder = {}

    def compute_metrics(predictions):
        return {"scripted": SCRIPTED[round(holder["trainer"].state.epoch) - 1]}

    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=Dataset(16, 1), eval_dataset=Dataset(4, 2),
        optimizers=(optimizer, scheduler), callbacks=[record], compute_metrics=compute_metrics,
    )  # fmt: skip
    holder["trainer"] = trainer
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*called again with no optimizer step")
        trainer.train(resume_from_checkpoint=resume_from)
    assert trainer.lr_scheduler is scheduler
    return [*record.lrs, optimizer.param_groups[0]["lr"]], scheduler


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory):
    """Both classes, uninterrupted, each saving a checkpoint at every epoch."""
    runs = {}
    for name, cls in [("plateau", ReduceLROnPlateau), ("torch", TorchPlateau)]:
        output_dir = tmp_path_factory.mktemp(name)
        runs[name] = (*fit(cls, output_dir), output_dir)
    return runs


@claim("works", "history")
def test_trainer_gives_torchs_lr_history(full_runs):
    ours, scheduler, _ = full_runs["plateau"]
    theirs, _, _ = full_runs["torch"]
    assert ours == theirs
    assert len(set(ours)) >= 3  # not vacuous: cut twice
    assert isinstance(scheduler, ReduceLROnPlateau)
    assert scheduler.last_epoch == EPOCHS  # stepped once per evaluation


@claim("resume")
@pytest.mark.parametrize(
    ("written_by", "resumed_by"),
    [("torch", ReduceLROnPlateau), ("plateau", TorchPlateau), ("plateau", ReduceLROnPlateau)],
    ids=["torch-to-plateau", "plateau-to-torch", "plateau-to-plateau"],
)
def test_resume_from_checkpoint_either_way(full_runs, tmp_path, written_by, resumed_by):
    """resume_from_checkpoint after epoch 4: the rest of the uninterrupted run, exactly."""
    expected, _, _ = full_runs["torch"]
    checkpoint = full_runs[written_by][2] / "checkpoint-8"  # 2 steps per epoch
    resumed, scheduler = fit(resumed_by, tmp_path, resume_from=str(checkpoint))
    assert scheduler.last_epoch == EPOCHS
    assert resumed == expected[4:]
    assert len(set(resumed)) >= 2
