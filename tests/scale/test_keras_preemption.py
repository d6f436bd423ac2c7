"""Keras preemption: a fit killed anywhere resumes to the uninterrupted lr history (issue 22).

``BackupAndRestore`` and the callback's ``backup_dir`` file are two writes. Each
scenario kills a real ``model.fit`` subprocess (``os._exit``, no cleanup) at a point
between or around them, then runs the same script again in a new process, as a job
scheduler would. The resumed run must train every epoch at the uninterrupted run's
lr, or fail with a clear error naming the epoch; a silent shift is the bug.

The validation loss is scripted per epoch (a callback listed first writes it into
the logs), so the lrs depend only on which epochs' metrics the plateau has seen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("keras")
pytest.importorskip("jax")

pytestmark = pytest.mark.slow  # seven Keras processes: 30 to 90 s on two busy cores

CHILD = r"""
import errno, json, os, pathlib, sys
import numpy as np
import keras
from plateau.adapters.keras import ReduceLROnPlateau

# Bad epochs cut (patience=1 is Keras's: no bad epoch tolerated), improvements don't.
SCRIPT = [1.0, 0.9, 0.95, 0.8, 0.85, 0.87, 0.7, 0.75, 0.6, 0.65, 0.66, 0.5]


class Script(keras.callbacks.Callback):
    # Write the epoch's scripted val_loss, and record the lr the epoch trains at.
    def __init__(self, record):
        super().__init__()
        self.record = record

    def on_epoch_begin(self, epoch, logs=None):
        with open(self.record, "a") as f:
            f.write(json.dumps([epoch, float(self.model.optimizer.learning_rate)]) + "\n")

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = SCRIPT[epoch]


class Kill(keras.callbacks.Callback):
    # The fault: at `epoch` (and `batch`), fill the disk or die, as spec["kill"] says.
    def __init__(self, kill, backup_dir):
        super().__init__()
        self.kill, self.backup_dir = kill, backup_dir

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if self.kill["when"] == "disk_full" and epoch == self.kill["epoch"]:
            fill_disk()
        if self.kill["when"] == "epoch_begin" and epoch == self.kill["epoch"]:
            os._exit(17)

    def on_train_batch_end(self, batch, logs=None):
        kill = self.kill
        if kill["when"] == "batch_end" and self.epoch == kill["epoch"] and batch == kill["batch"]:
            os._exit(17)

    def on_epoch_end(self, epoch, logs=None):
        if self.kill["when"] == "epoch_end" and epoch == self.kill["epoch"]:
            if self.kill.get("corrupt"):  # the latest backup is unreadable: double_checkpoint
                pathlib.Path(self.backup_dir, "latest.weights.h5").write_bytes(b"not an h5 file")
            os._exit(17)


class Weights(keras.callbacks.Callback):
    # Listed last: the weights each epoch leaves for the next (after a roll-back).
    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        flat = [float(v) for w in self.model.get_weights() for v in w.ravel()]
        with open(self.path, "a") as f:
            f.write(json.dumps([epoch, flat]) + "\n")


def fill_disk():
    # From now on every write of plateau's own file in backup_dir fails: ENOSPC.
    real_open = pathlib.Path.open

    def full_open(self, mode="r", *args, **kwargs):
        if self.name.startswith("plateau") and any(c in mode for c in "wax+"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_open(self, mode, *args, **kwargs)

    pathlib.Path.open = full_open
    import builtins, io
    real_builtin = builtins.open

    def full_builtin(file, mode="r", *args, **kwargs):
        name = os.path.basename(os.fspath(file)) if isinstance(file, (str, os.PathLike)) else ""
        if name.startswith("plateau") and any(c in mode for c in "wax+"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        return real_builtin(file, mode, *args, **kwargs)

    builtins.open = io.open = full_builtin


def fit(spec):
    backup_dir = spec["backup_dir"]
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    restore = keras.callbacks.BackupAndRestore(
        backup_dir,
        save_freq=spec.get("save_freq", "epoch"),
        double_checkpoint=spec.get("double", False),
    )
    plateau = ReduceLROnPlateau(
        patience=1,
        factor=0.5,
        min_delta=0.0,
        backup_dir=backup_dir,
        restore_best_weights=spec.get("restore_best", False),
    )
    kill = Kill(spec.get("kill") or {"when": None}, backup_dir)
    pair = [restore, plateau] if spec["order"] == "backup_first" else [plateau, restore]
    # The fault strikes between the two saves, or after both ("last").
    between = not (spec.get("kill") or {}).get("last")
    callbacks = [Script(spec["record"]), *([pair[0], kill, pair[1]] if between else [*pair, kill])]
    if spec.get("restore_best"):
        callbacks.append(Weights(spec["weights"]))
    try:
        model.fit(x, y, epochs=len(SCRIPT), batch_size=8, shuffle=False, verbose=0,
                  callbacks=callbacks)
    except Exception as exc:  # the outcome of this run; the next run goes on
        outcome = f"{type(exc).__name__}: {exc}"
    else:
        outcome = ["end", float(model.optimizer.learning_rate)]
    with open(spec["record"], "a") as f:
        f.write(json.dumps(outcome) + "\n")


for spec in json.loads(sys.argv[1]):  # in order, in this process
    fit(spec)
"""

EPOCHS = 12
# name: (callback order, the fault, BackupAndRestore's save_freq and double_checkpoint).
# The faults hit an epoch whose metric, counted twice or not at all, moves a cut.
SCENARIOS = {
    # A kill before either save of an epoch: both backups describe the same epoch.
    "control_epoch_begin": ("plateau_first", {"when": "epoch_begin", "epoch": 5}, {}),
    # plateau's file holds epoch 3, BackupAndRestore's epoch 2: epoch 3 runs twice.
    "between_saves_plateau_first": ("plateau_first", {"when": "epoch_end", "epoch": 3}, {}),
    # BackupAndRestore holds epoch 4, plateau's file epoch 3: epoch 4's metric is lost.
    "between_saves_backup_first": ("backup_first", {"when": "epoch_end", "epoch": 4}, {}),
    # 6 batches an epoch, a save every 4 batches: epoch 4 is killed before its first
    # save, so the last one is from inside epoch 3 (its batch 5), and epoch 3 runs
    # again, after plateau stepped on it.
    "mid_epoch_save_freq": (
        "backup_first",
        {"when": "batch_end", "epoch": 4, "batch": 1},
        {"save_freq": 4},
    ),
    # Epoch 4's end: BackupAndRestore saves, then plateau's write fails with ENOSPC.
    "disk_full": ("backup_first", {"when": "disk_full", "epoch": 4}, {}),
    # Epoch 3 saved by both, then the latest weights are unreadable: Keras falls back
    # to its previous backup (epoch 2), plateau's file holds epoch 3.
    "double_checkpoint_fallback": (
        "plateau_first",
        {"when": "epoch_end", "epoch": 3, "corrupt": True, "last": True},
        {"double": True},
    ),
    # restore_best_weights: each cut puts back the best epoch's weights. Epoch 3 sets
    # best, its end saved by plateau only: the resume from epoch 2 needs epoch 1's copy.
    "best_between_saves_plateau_first": (
        "plateau_first",
        {"when": "epoch_end", "epoch": 3},
        {"restore_best": True},
    ),
    # Epoch 7 cuts: BackupAndRestore, listed first, saved the weights from before the
    # roll-back; the resume must put the copy back again (epoch 8 is no cut, which
    # would roll back anyway).
    "best_after_a_cut_backup_first": (
        "backup_first",
        {"when": "epoch_begin", "epoch": 8},
        {"restore_best": True},
    ),
}  # Epochs whose metric BackupAndRestore saved past but the plateau never stepped on:
# no file can hold it, so these resume to a ValueError naming the epochs; the others exactly.
LOST = {"between_saves_backup_first", "disk_full"}


def spec(tmp_path, name, run, order, kill=None, options=None):
    return {
        "backup_dir": str(tmp_path / name / "backup"),
        "record": str(tmp_path / f"{name}-{run}.jsonl"),
        "weights": str(tmp_path / f"{name}-{run}.weights.jsonl"),
        "order": order,
        "kill": kill,
        **(options or {}),
    }


def run_child(specs):
    """Run `specs` in order in one new process; each one's record: [epoch, lr]..., outcome."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(specs)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    return done, [read_jsonl(one["record"]) for one in specs]


def read_jsonl(name):
    path = Path(name)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The uninterrupted run, and each scenario's killed and resumed runs."""
    tmp_path = tmp_path_factory.mktemp("preemption")

    def killed(name):  # one process each: it dies
        order, kill, options = SCENARIOS[name]
        done, (record,) = run_child([spec(tmp_path, name, "killed", order, kill, options)])
        return name, (done.returncode, done.stderr, record)

    with ThreadPoolExecutor(2) as pool:
        kills = dict(pool.map(killed, SCENARIOS))
    # Each resume is a fresh model and fresh callbacks; one process runs them all.
    specs = [spec(tmp_path, "whole", "whole", "plateau_first")]
    specs += [spec(tmp_path, "whole_best", "whole", "plateau_first", None, {"restore_best": True})]
    specs += [
        spec(tmp_path, n, "resumed", order, None, opts) for n, (order, _, opts) in SCENARIOS.items()
    ]
    done, (whole, _, *resumed) = run_child(specs)
    assert done.returncode == 0, done.stderr[-3000:]
    weights = {one["record"]: read_jsonl(one["weights"]) for one in specs}
    return whole, kills, dict(zip(SCENARIOS, resumed)), [weights[one["record"]] for one in specs]


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_killed_fit_resumes_to_the_uninterrupted_lrs_or_a_clear_error(runs, name):
    whole, kills, resumed, _ = runs
    *epochs, outcome = whole
    assert outcome[0] == "end"
    expected = dict(epochs)
    assert len(set(expected.values())) >= 4  # the scripted metric does cut, repeatedly
    killed_code, killed_stderr, killed = kills[name]
    # It died (os._exit(17)), or its fit raised the disk's error: it did not end.
    assert killed_code == 17 or killed[-1].startswith("OSError: [Errno 28]"), killed_stderr[-2000:]
    assert ["end"] not in [entry[:1] for entry in killed]
    *epochs, outcome = resumed[name]
    if name in LOST:
        assert [epoch for epoch, _ in epochs] == [5]  # refused as its first epoch began
        assert outcome.startswith("ValueError: ") and "was never seen" in outcome, outcome
        where = "none after epoch 4: the fit resumes at epoch 5, and the metric of epochs [4]"
        assert where in outcome, outcome
        return
    assert [epoch for epoch, _ in epochs] == list(range(epochs[0][0], EPOCHS))
    assert epochs == [[epoch, expected[epoch]] for epoch, _ in epochs]
    assert outcome == ["end", whole[-1][1]]


BEST = [name for name, (_, _, options) in SCENARIOS.items() if options.get("restore_best")]


@pytest.mark.parametrize("name", BEST)
def test_a_killed_fit_with_restore_best_weights_resumes_to_the_uninterrupted_weights(runs, name):
    *_, weights = runs
    whole = dict(weights[1])  # epoch: the weights it left, in the uninterrupted fit
    assert whole[2] == whole[1] and whole[4] == whole[3]  # its cuts rolled back
    resumed = weights[2 + list(SCENARIOS).index(name)]
    assert [epoch for epoch, _ in resumed] == list(range(resumed[0][0], EPOCHS))
    assert resumed == [[epoch, whole[epoch]] for epoch, _ in resumed]
