"""transformers' Trainer building plateau's class in a ``create_scheduler`` override.

``Trainer.create_scheduler`` runs after ``accelerator.prepare``: the optimizer it
is given is accelerate's ``AcceleratedOptimizer``. Both classes are built there,
with the same arguments, on the same seeded run of the tiny BERT of
test_transformers.py; the monitored metric is scripted per epoch.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
accelerate = pytest.importorskip("accelerate")

from _compat import claim  # noqa: E402
from test_transformers import EPOCHS, SCRIPTED, Dataset, RecordLrs  # noqa: E402

from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TorchPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau

TRAINER = "transformers Trainer, `create_scheduler` override"
TESTED_WITH = "transformers==5.23.0"
NOTE = "built on the AcceleratedOptimizer the Trainer prepared"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*(pin_memory|TRANSFORMERS_CACHE)"),
]


def fit(scheduler_cls, output_dir):
    """Train with `scheduler_cls` built by create_scheduler; the lr of every epoch."""
    transformers.set_seed(0)
    config = transformers.BertConfig(
        vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=8, num_labels=2,
    )  # fmt: skip
    args = transformers.TrainingArguments(
        output_dir=str(output_dir), num_train_epochs=EPOCHS, per_device_train_batch_size=8,
        eval_strategy="epoch", save_strategy="no", metric_for_best_model="scripted",
        greater_is_better=False, report_to=[], logging_strategy="no", use_cpu=True,
        disable_tqdm=True, seed=0, dataloader_num_workers=0, learning_rate=0.1,
    )  # fmt: skip

    class PlateauTrainer(transformers.Trainer):
        def create_scheduler(self, num_training_steps, optimizer=None):
            if self.lr_scheduler is None:
                optimizer = self.optimizer if optimizer is None else optimizer
                self.lr_scheduler = scheduler_cls(optimizer, patience=1, factor=0.5)
            return self.lr_scheduler

    record, holder = RecordLrs(), {}
    trainer = PlateauTrainer(
        model=transformers.BertForSequenceClassification(config), args=args,
        train_dataset=Dataset(16, 1), eval_dataset=Dataset(4, 2), callbacks=[record],
        optimizer_cls_and_kwargs=(torch.optim.SGD, {"lr": 0.1}),
        compute_metrics=lambda _: {"scripted": SCRIPTED[round(holder["t"].state.epoch) - 1]},
    )  # fmt: skip
    holder["t"] = trainer
    trainer.train()
    optimizer = trainer.lr_scheduler.optimizer
    return [*record.lrs, optimizer.param_groups[0]["lr"]], trainer.lr_scheduler


@claim("works", "history")
def test_create_scheduler_override_gives_torchs_lr_history(tmp_path):
    ours, scheduler = fit(ReduceLROnPlateau, tmp_path / "plateau")
    theirs, _ = fit(TorchPlateau, tmp_path / "torch")
    assert ours == theirs
    assert len(set(ours)) >= 3  # not vacuous: cut twice
    assert isinstance(scheduler.optimizer, accelerate.optimizer.AcceleratedOptimizer)
    assert scheduler.last_epoch == EPOCHS  # stepped once per evaluation, never repeated
