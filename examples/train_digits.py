"""Train a small MLP on scikit-learn's digits and keep Lightning's own metrics.csv.

This script produced ``examples/digits_metrics.csv``, the log that the README's
first command replays (``plateau simulate examples/digits_metrics.csv ...``).

How it was produced: a two-layer MLP (64-128-10) trained with Adam at a *constant*
learning rate (no scheduler, so the log shows the raw plateau a scheduler would
react to) for 60 epochs on the 8x8 digits that ship inside scikit-learn (no
download). 80% of the 1797 images train, 20% validate. PyTorch Lightning's
``CSVLogger`` writes the file: ``train_loss`` every 10 steps on training-only
rows (their ``val_loss`` cell is empty) and ``val_loss`` once per epoch, exactly
as Lightning writes any metrics.csv. Everything runs on the CPU with a fixed seed
and deterministic algorithms, in well under a minute.

Rerun (from the repository root; needs ``torch``, ``pytorch-lightning`` and
``scikit-learn``)::

    python examples/train_digits.py            # rewrites examples/digits_metrics.csv
    python examples/train_digits.py --out other.csv --epochs 80

Different torch or BLAS builds may change the last digits of the losses; the
shape of the curve (a fast descent, then a noisy plateau from about epoch 15) does
not depend on them.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

SEED = 0
HERE = Path(__file__).resolve().parent


class DigitsMLP(pl.LightningModule):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        self.loss = nn.CrossEntropyLoss()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", self.loss(self.net(x), y), on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def loaders() -> tuple[DataLoader, DataLoader]:
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.2, random_state=SEED, stratify=y
    )
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(x_val, y_val), batch_size=512)
    return train, val


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "digits_metrics.csv")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    pl.seed_everything(SEED, workers=True)
    torch.set_num_threads(1)
    train, val = loaders()
    with tempfile.TemporaryDirectory() as tmp:
        logger = CSVLogger(tmp, name="digits")
        trainer = pl.Trainer(
            max_epochs=args.epochs,
            accelerator="cpu",
            devices=1,
            deterministic=True,
            logger=logger,
            log_every_n_steps=10,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(DigitsMLP(args.lr), train, val)
        shutil.copyfile(Path(logger.log_dir) / "metrics.csv", args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
