"""`plateau simulate` on logs the real tools wrote in this test: Lightning, Keras, torch, MLflow.

Each log is written once per module (a tiny model on synthetic data, seconds), and
the replay is checked against what the run's own scheduler did, where it had one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from cli.support import assert_one_line_error, cli, csv_rows, ok

PATIENCE = 1


@pytest.fixture(scope="module")
def lightning_run(tmp_path_factory):
    """A Lightning fit validating twice per epoch, logged by CSVLogger and TensorBoardLogger.

    Its ReduceLROnPlateau (torch's) is stepped once per epoch on the epoch's last
    val_loss; its lr history is what a replay must reproduce.
    """
    pl = pytest.importorskip("pytorch_lightning")
    pytest.importorskip("tensorboard")
    torch = pytest.importorskip("torch")

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)
            self.lrs = []

        def training_step(self, batch, _):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def on_train_epoch_start(self):  # the lr the scheduler left after the last epoch
            self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.5)
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=PATIENCE)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"},
            }

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x.sum(1, keepdim=True) + 2.0 * torch.randn(64, 1)  # noisy: the val loss plateaus
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    root = tmp_path_factory.mktemp("lightning")
    model = Module()
    trainer = pl.Trainer(
        max_epochs=8,
        val_check_interval=0.5,
        logger=[
            pl.loggers.CSVLogger(root, name="csv"),
            pl.loggers.TensorBoardLogger(root, name="tb"),
        ],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, loader, loader)
    return root, [*model.lrs[1:], trainer.optimizers[0].param_groups[0]["lr"]]


def lrs_of(rows):
    return [float(row["lr"]) for row in rows]


def test_lightning_csv_directory_replays_what_its_scheduler_saw(lightning_run):
    root, lrs = lightning_run
    version = root / "csv" / "version_0"
    rows = csv_rows(version, "--patience", PATIENCE, "--lr", "0.5")
    assert [int(row["epoch"]) for row in rows] == list(range(8))
    assert lrs_of(rows) == lrs  # the lr at each epoch's end, as the run's scheduler set it
    table = ok(cli(version, "--patience", PATIENCE))
    first = table.splitlines()[0]
    assert first.startswith(f"{version / 'metrics.csv'}: val_loss, the last value of each epoch: 8")
    assert "8 earlier values of the same epoch not replayed: --every-row" in first


def test_every_row_replays_both_validations_of_each_epoch(lightning_run):
    root, _ = lightning_run
    rows = csv_rows(root / "csv" / "version_0", "--every-row")
    assert [int(row["epoch"]) for row in rows] == [e for e in range(8) for _ in (0, 1)]


def test_lightning_tensorboard_directory_replays_per_epoch_through_its_epoch_tag(lightning_run):
    root, lrs = lightning_run
    rows = csv_rows(root / "tb" / "version_0", "--patience", PATIENCE, "--lr", "0.5")
    assert [int(row["epoch"]) for row in rows] == list(range(8))
    assert lrs_of(rows) == lrs


def test_several_runs_are_listed_with_what_each_holds(lightning_run):
    root, _ = lightning_run
    result = cli(root)
    assert_one_line_error(result, "2 runs", "csv/version_0: ", "tb/version_0: ", "--run")
    line = result.stderr
    assert "val_loss" in line and "lr-" not in line and "epoch," not in line
    rows = csv_rows(root, "--run", "tb/version_0")
    assert len(rows) == 8


def test_keras_csvlogger_and_history_replay_under_keras_rules(tmp_path):
    keras = pytest.importorskip("keras")
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x.sum(1, keepdims=True) + 2.0 * rng.normal(size=(64, 1))).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.3), loss="mse")
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(patience=2, min_delta=0.01),
        keras.callbacks.CSVLogger(str(tmp_path / "training.log")),
    ]
    history = model.fit(x, y, validation_split=0.25, epochs=12, verbose=0, callbacks=callbacks)
    (tmp_path / "history.json").write_text(__import__("json").dumps(history.history))
    keras_lrs = [float(lr) / 0.3 for lr in history.history["learning_rate"][1:]]
    for log in ("training.log", "history.json"):
        rows = csv_rows(
            tmp_path / log, "--rules", "keras", "--patience", "2", "--min-delta", "0.01"
        )
        # Keras logs each epoch's lr before its callback acts: row i's lr is epoch i+1's.
        assert lrs_of(rows)[:-1] == pytest.approx(keras_lrs, rel=1e-6)


def test_torch_summary_writer_file_and_its_truncated_copy(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(tmp_path / "run")
    for step, value in enumerate([1.0, 0.5, 0.6, 0.6, 0.7]):
        writer.add_scalar("val_loss", value, step)
    writer.close()
    (event_file,) = (tmp_path / "run").iterdir()
    rows = csv_rows(event_file, "--patience", "1")
    assert [row["step"] for row in rows] == ["0", "1", "2", "3", "4"]  # no epoch tag: steps
    table = ok(cli(event_file, "--patience", "1"))
    assert ", one per logged step" in table.splitlines()[0]
    assert "lr cut (*) at step 3;" in table
    assert lrs_of(rows) == [1.0, 1.0, 1.0, 0.1, 0.1]
    cut = tmp_path / "cut.tfevents.1"
    cut.write_bytes(event_file.read_bytes()[:-7])
    result = cli(cut, "--format", "csv")
    assert result.returncode == 0
    assert "plateau: warning: " in result.stderr and "truncated or damaged record" in result.stderr
    assert len(result.stdout.splitlines()) == 1 + 4


@pytest.fixture(scope="module")
def mlflow_stores(tmp_path_factory):
    """Two runs, logged by the real mlflow client into the file store and into SQLite."""
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    stores = {"file": root / "mlruns", "sqlite": root / "mlflow.db"}
    uris = {"file": stores["file"].as_uri(), "sqlite": f"sqlite:///{stores['sqlite']}"}
    for uri in uris.values():
        client = MlflowClient(tracking_uri=uri)
        experiment = client.create_experiment("exp")
        for name, values in (("brave-owl", [1.0, 0.5, 0.6, 0.6]), ("calm-fox", [2.0, 1.0])):
            run = client.create_run(experiment, run_name=name).info.run_id
            for step, value in enumerate(values):
                client.log_metric(run, "val_loss", value, step=step)
                client.log_metric(run, "epoch", step, step=step)
            client.set_terminated(run)
    return stores


@pytest.mark.parametrize("store", ["file", "sqlite"])
def test_mlflow_stores_name_the_run_replayed_and_list_runs(mlflow_stores, store):
    path = mlflow_stores[store]
    assert_one_line_error(
        cli(path), "2 runs", "(brave-owl): epoch, val_loss", "(calm-fox)", "--run"
    )
    out = ok(cli(path, "--run", "brave-owl", "--patience", "1"))
    assert out.splitlines()[0].startswith(f"{path}, run ")
    assert "(brave-owl): val_loss, the last value of each epoch: 4 values" in out.splitlines()[0]
    assert out.rstrip().endswith("lr cut (*) at epoch 3; final lr 0.1")


def test_a_fifo_is_read_once(tmp_path):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("epoch,val_loss\n0,1.0\n1,0.9\n"))
    writer.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "plateau", "simulate", str(fifo), "--format", "csv"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        writer.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
