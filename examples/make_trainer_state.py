"""Write examples/trainer_state.json: a real Hugging Face Trainer run, tiny and offline.

    pip install torch==2.13.0 transformers accelerate
    python examples/make_trainer_state.py [--out examples/trainer_state.json]

A one-layer GPT-2 built from a config (nothing downloaded) learns a repeating
token pattern for 12 epochs at a constant learning rate, evaluating every epoch;
``Trainer.save_state()`` writes the ``trainer_state.json`` that ``plateau
simulate`` reads (``log_history``: training logs, ``eval_loss`` per epoch, and
the final summary). CPU, a few seconds. Another torch or BLAS build may move the
last digits of the losses, not their shape.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainingArguments,
    set_seed,
)

HERE = Path(__file__).resolve().parent


class Patterns(torch.utils.data.Dataset):
    """Sequences of a noisy repeating pattern: learnable, with a floor that makes a plateau."""

    def __init__(self, count: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        base = torch.arange(16) % 5
        noise = torch.randint(0, 20, (count, 16), generator=generator)
        keep = torch.rand(count, 16, generator=generator) < 0.8
        self.ids = torch.where(keep, base, noise)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "trainer_state.json")
    args = parser.parse_args()
    set_seed(0)
    torch.use_deterministic_algorithms(True)
    config = GPT2Config(vocab_size=20, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    model = GPT2LMHeadModel(config)
    with tempfile.TemporaryDirectory() as tmp:
        training = TrainingArguments(
            output_dir=tmp,
            num_train_epochs=12,
            per_device_train_batch_size=16,
            per_device_eval_batch_size=64,
            learning_rate=3e-3,
            lr_scheduler_type="constant",
            eval_strategy="epoch",
            logging_strategy="steps",
            logging_steps=2,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=0,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model,
            args=training,
            train_dataset=Patterns(64, seed=1),
            eval_dataset=Patterns(64, seed=2),
        )
        trainer.train()
        trainer.save_state()
        shutil.copyfile(Path(tmp) / "trainer_state.json", args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
