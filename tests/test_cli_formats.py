"""`plateau simulate` on TensorBoard, MLflow and HF Trainer logs.

Real files come from the real writers (torch's SummaryWriter and tensorboard's
own EventFileWriter, the mlflow client with its file and SQLite stores, a
transformers Trainer run committed as examples/trainer_state.json); each test
skips cleanly when its package is absent. Hand-written files of the same
formats run everywhere. Expected numbers come from the values the test logged,
replayed by `plateau.simulate` and, where torch is installed, by torch's own
ReduceLROnPlateau (on float32 values where the format stores float32).
"""

from __future__ import annotations

import json
import struct

import pytest
from cli.support import ROOT, assert_one_line_error, cli, column, csv_rows, random_stream, same

import plateau
from plateau import PlateauConfig
from plateau.cli.readers import LogError, read_log

TRAINER_STATE = ROOT / "examples" / "trainer_state.json"


def f32(values):
    return [struct.unpack("<f", struct.pack("<f", v))[0] for v in values]


def torch_lrs(metrics, lr=1.0, **kwargs):
    """The lr torch's own ReduceLROnPlateau sets after each metric."""
    torch = pytest.importorskip("torch")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
    out = []
    for metric in metrics:
        scheduler.step(metric)
        out.append(optimizer.param_groups[0]["lr"])
    return out


def expected_lrs(metrics, **kwargs):
    return [s.lrs[0] for s in plateau.simulate(metrics, PlateauConfig(**kwargs))]


# Hand-written TensorBoard bytes ----------------------------------------------------


def test_torch_summary_writer_files_replay_as_torch_does(tmp_path):
    pytest.importorskip("tensorboard")
    torch = pytest.importorskip("torch")
    tensorboard_writer = pytest.importorskip("torch.utils.tensorboard")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    losses = random_stream(21, n=40, nan_at=(11,))
    writer = tensorboard_writer.SummaryWriter(tmp_path / "run")
    for epoch, loss in enumerate(losses):
        writer.add_scalar("train/loss", loss + 1, epoch * 50)
        writer.add_scalar("val_loss", loss, epoch)
        writer.add_scalar("new_style", loss, epoch, new_style=True)
    writer.add_text("note", "not a scalar", 0)
    writer.add_histogram("weights", torch.arange(3.0), 0)
    writer.close()

    # tensorboard's own reader sees the values this one does.
    accumulator = event_accumulator.EventAccumulator(str(tmp_path / "run"))
    accumulator.Reload()
    theirs = [e.value for e in accumulator.Scalars("val_loss")]
    assert same(theirs, f32(losses))

    for tag in ("val_loss", "new_style"):
        rows = csv_rows(tmp_path / "run", "--column", tag, "--patience", "2", "--factor", "0.5")
        assert [int(r["step"]) for r in rows] == list(range(40))
        assert same(column(rows, "metric"), f32(losses))
        assert column(rows, "lr") == torch_lrs(f32(losses), patience=2, factor=0.5)
        assert "0.5" in {r["lr"] for r in rows}
    assert_one_line_error(cli(tmp_path / "run", "--column", "weights"), "no column", "val_loss")


def test_tensorboard_event_file_writer_tensors(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    losses = random_stream(22, n=20)
    writer = EventFileWriter(str(tmp_path))
    for step, loss in enumerate(losses):
        values = [
            summary_pb2.Summary.Value(
                tag="float_val", tensor=tensor_pb2.TensorProto(dtype=1, float_val=[loss])
            ),
            summary_pb2.Summary.Value(
                tag="double_content",
                tensor=tensor_pb2.TensorProto(dtype=2, tensor_content=struct.pack("<d", loss)),
            ),
            summary_pb2.Summary.Value(
                tag="int64", tensor=tensor_pb2.TensorProto(dtype=9, int64_val=[-step])
            ),
        ]
        summary = summary_pb2.Summary(value=values)
        writer.add_event(event_pb2.Event(step=step * 3, wall_time=1.0, summary=summary))
    writer.close()
    rows = csv_rows(tmp_path, "--column", "double_content", "--patience", "1")
    assert [int(r["step"]) for r in rows] == list(range(0, 60, 3))
    assert column(rows, "metric") == losses
    assert column(rows, "lr") == torch_lrs(losses, patience=1)
    assert column(csv_rows(tmp_path, "--column", "float_val"), "metric") == f32(losses)
    assert column(csv_rows(tmp_path, "--column", "int64"), "metric") == [-s for s in range(20)]


# MLflow --------------------------------------------------------------------------


def write_file_store(root, runs):
    """An mlruns/ tree as MLflow's file store lays it out: {run_id: {key: [(step, value)]}}."""
    experiment = root / "mlruns" / "123"
    experiment.mkdir(parents=True)
    (experiment / "meta.yaml").write_text("name: exp\nexperiment_id: '123'\n")
    for run_id, metrics in runs.items():
        run = experiment / run_id
        (run / "metrics").mkdir(parents=True)
        (run / "meta.yaml").write_text(f"run_id: {run_id}\nrun_name: name-{run_id}\n")
        for key, points in metrics.items():
            path = run / "metrics" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{1000 + i} {v!r} {s}\n" for i, (s, v) in enumerate(points)))
    return experiment


def test_hand_written_mlflow_file_store(tmp_path):
    losses = random_stream(23, n=30, nan_at=(4,))
    points = [(step, v) for step, v in enumerate(losses)]
    experiment = write_file_store(
        tmp_path,
        {"a1": {"val_loss": points[::-1], "loss/train": points}, "b2": {"val_loss": points[:5]}},
    )
    # Logged in reverse: replayed in step order.
    rows = csv_rows(experiment / "a1", "--patience", "1")
    assert [int(r["step"]) for r in rows] == list(range(30))
    assert same(column(rows, "metric"), losses)
    assert column(rows, "lr") == expected_lrs(losses, patience=1)
    assert same(column(csv_rows(experiment / "a1", "--column", "loss/train"), "metric"), losses)
    # An experiment (or the mlruns root) with two runs needs --run, by id or name.
    for path in (experiment, tmp_path / "mlruns"):
        assert_one_line_error(cli(path), "2 runs", "a1 (name-a1)", "b2", "--run")
    assert len(csv_rows(experiment, "--run", "b2")) == 5
    assert len(csv_rows(tmp_path / "mlruns", "--run", "name-b2")) == 5
    assert_one_line_error(cli(experiment, "--run", "zz"), "none is 'zz'", "a1")
    (experiment / "a1" / "metrics" / "val_loss").write_text("1000 0.5 0\n1001 abc 1\n")
    assert_one_line_error(cli(experiment / "a1"), "val_loss, line 2", "'1001 abc 1'")


def test_run_applies_to_mlflow_only(tmp_path):
    path = tmp_path / "log.json"
    path.write_text("[1.0, 0.5]")
    assert_one_line_error(cli(path, "--run", "x"), "--run 'x' applies to logs of several runs only")


@pytest.fixture
def mlflow(monkeypatch, tmp_path):
    module = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 wants it for ./mlruns
    yield module
    module.set_tracking_uri(None)


@pytest.mark.parametrize("store", ["file", "sqlite"])
def test_real_mlflow_runs_replay_as_torch_does(mlflow, tmp_path, store):
    losses = random_stream(25, n=30, nan_at=(6,))
    uri = (
        f"file:{tmp_path / 'mlruns'}" if store == "file" else f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("plateau")
    with mlflow.start_run() as run:
        for epoch, loss in enumerate(losses):
            mlflow.log_metric("val_loss", loss, step=epoch)
            mlflow.log_metric("train/loss", loss + 1, step=epoch * 10)
    with mlflow.start_run(run_name="other"):
        mlflow.log_metric("val_loss", 1.0, step=0)
    path = tmp_path / "mlruns" if store == "file" else tmp_path / "mlflow.db"
    history = mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, "val_loss")
    assert same([m.value for m in history], losses)

    assert_one_line_error(cli(path), run.info.run_id, "other", "--run")
    rows = csv_rows(path, "--run", run.info.run_id, "--patience", "1", "--factor", "0.5")
    assert [int(r["step"]) for r in rows] == list(range(30))
    assert same(column(rows, "metric"), losses)
    assert column(rows, "lr") == torch_lrs(losses, patience=1, factor=0.5)
    rows = csv_rows(path, "--run", run.info.run_id, "--column", "train/loss")
    assert [int(r["step"]) for r in rows] == list(range(0, 300, 10))


# HF Trainer's trainer_state.json ------------------------------------------------------


def test_committed_trainer_state_replays_its_eval_loss():
    history = json.loads(TRAINER_STATE.read_text())["log_history"]
    evals = [(e["step"], e["eval_loss"]) for e in history if "eval_loss" in e]
    assert len(evals) >= 10 and any("loss" in e and "eval_loss" not in e for e in history)
    losses = [v for _, v in evals]
    rows = csv_rows(TRAINER_STATE, "--patience", "0", "--mode", "max")  # falling: cuts
    assert [int(r["step"]) for r in rows] == [s for s, _ in evals]
    assert column(rows, "metric") == losses
    assert column(rows, "lr") == expected_lrs(losses, patience=0, mode="max")
    table = ok_table(TRAINER_STATE)
    skipped = len(history) - len(evals)
    assert table.startswith(
        f"{TRAINER_STATE}: eval_loss, {len(evals)} values, one per logged step ({skipped} rows"
    )
    # The training loss, and the checkpoint directory holding the file.
    train = [e["loss"] for e in history if "loss" in e]
    assert column(csv_rows(TRAINER_STATE.parent, "--column", "loss"), "metric") == train


def test_committed_trainer_state_matches_torch():
    history = json.loads(TRAINER_STATE.read_text())["log_history"]
    losses = [e["eval_loss"] for e in history if "eval_loss" in e]
    rows = csv_rows(TRAINER_STATE, "--patience", "0", "--mode", "max", "--factor", "0.5")
    assert column(rows, "lr") == torch_lrs(losses, patience=0, mode="max", factor=0.5)


def ok_table(*args):
    result = cli(*args)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("state", "extra", "fragments"),
    [
        ({"log_history": []}, [], ["log_history is empty"]),
        ({"log_history": [{"loss": 1.0, "step": 1}, 3]}, [], ["log_history[1]", "3"]),
        (
            {"log_history": [{"loss": 1.0, "grad_norm": 2.0, "learning_rate": 0.1, "step": 1}]},
            [],
            ["several metric columns (loss, grad_norm)", "no eval_loss"],
        ),
        ({"log_history": [{"eval_loss": "x", "step": 1}]}, [], ["log_history[0]", "'x'"]),
        ({"log_history": [{"eval_loss": 1.0, "step": 1.5}]}, [], ["'step'", "1.5"]),
    ],
)
def test_hand_made_trainer_states(tmp_path, state, extra, fragments):
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state))
    assert_one_line_error(cli(path, *extra), "trainer_state.json", *fragments)


def test_a_trainer_state_without_evaluation_replays_the_asked_column(tmp_path):
    losses = random_stream(26, n=12)
    history = [
        {"loss": v, "learning_rate": 0.01, "epoch": (i + 1) / 2, "step": 5 * (i + 1)}
        for i, v in enumerate(losses)
    ]
    path = tmp_path / "checkpoint-60"
    path.mkdir()
    (path / "trainer_state.json").write_text(json.dumps({"log_history": history}, indent=2))
    rows = csv_rows(path, "--column", "loss", "--patience", "1")
    assert [int(r["step"]) for r in rows] == [5 * (i + 1) for i in range(12)]
    assert column(rows, "lr") == expected_lrs(losses, patience=1)
    # Only one candidate (learning_rate is an lr): chosen without --column.
    assert column(csv_rows(path), "metric") == losses


def test_unreadable_directories_and_binary_files(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli(tmp_path / "empty"), "directory", "TensorBoard", "MLflow")
    blob = tmp_path / "model.bin"
    blob.write_bytes(bytes(range(256)) * 4)
    assert_one_line_error(cli(blob), "model.bin", "UTF-8")
    with pytest.raises(LogError):
        read_log(str(blob))
