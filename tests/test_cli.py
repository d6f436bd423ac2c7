"""`plateau simulate` on real logs: `main([...])` in-process, output captured.

The expected numbers always come from `plateau.simulate` on metrics the test knows
independently of the CLI's reader (the values it handed to Lightning's or Keras's
own CSVLogger, or a plain `csv` read of the bundled log), never from the CLI itself.
The checks that need a real process (console script, `python -m`, a closed pipe)
are in test_cli_smoke.py; the readers alone are tested in test_cli_readers.py.
"""

from __future__ import annotations

import csv
import io
import json
import math
import struct
import sys
import zlib
from pathlib import Path

import attrs
import pytest
from cli.support import (
    BUNDLED,
    ROOT,
    assert_one_line_error,
    cli,
    column,
    csv_rows,
    json_doc,
    ok,
    random_stream,
    same,
    write_lightning_shaped,
)

import plateau
from plateau import PlateauConfig

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# The bundled log --------------------------------------------------------------


def bundled_val_loss():
    with open(BUNDLED, newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [row for row in rows if row["val_loss"] != ""]
    return rows, [int(r["epoch"]) for r in kept], [float(r["val_loss"]) for r in kept]


def test_bundled_log_is_lightning_shaped_and_plateaus():
    rows, epochs, losses = bundled_val_loss()
    assert list(rows[0]) == ["epoch", "step", "train_loss", "val_loss"]
    assert any(row["val_loss"] == "" and row["train_loss"] != "" for row in rows)
    assert epochs == list(range(len(epochs))) and len(epochs) >= 40
    # It plateaus: the last 10 epochs never improve on the best so far by torch's
    # default threshold, while the first half does improve.
    best_index = max(i for i, v in enumerate(losses) if v < min(losses[:i], default=math.inf))
    assert best_index < len(losses) - 10
    assert losses[len(losses) // 2] < losses[0] / 5


def test_bundled_log_replays_exactly_as_simulate():
    _, epochs, losses = bundled_val_loss()
    config = PlateauConfig(patience=3)
    states = plateau.simulate(losses, config)
    rows = csv_rows(BUNDLED, "--patience", "3")
    assert [int(r["epoch"]) for r in rows] == epochs
    assert column(rows, "metric") == losses
    assert column(rows, "best") == [s.best for s in states]
    assert [int(r["num_bad_epochs"]) for r in rows] == [s.num_bad_epochs for s in states]
    assert [int(r["cooldown_counter"]) for r in rows] == [s.cooldown_counter for s in states]
    assert [r["decision"] for r in rows] == [s.decision.value for s in states]
    assert column(rows, "lr") == [s.lrs[0] for s in states]
    assert "reduced" in {r["decision"] for r in rows}


# Logs written by the real frameworks ---------------------------------------------


def test_lightning_csv_logger_metrics_csv(tmp_path):
    loggers = pytest.importorskip("pytorch_lightning.loggers")
    losses = random_stream(1, n=30, nan_at=(17,))
    logger = loggers.CSVLogger(tmp_path, name="run")
    step = 0
    for epoch, loss in enumerate(losses):
        for _ in range(3):  # training-only rows: val_loss empty
            step += 5
            logger.log_metrics({"train_loss": 1.0 / step, "epoch": epoch}, step=step)
        logger.log_metrics({"val_loss": loss, "val_acc": 0.5, "epoch": epoch}, step=step)
    logger.save()
    path = Path(logger.log_dir) / "metrics.csv"
    text = path.read_text()
    assert text.startswith("epoch,step,train_loss,val_acc,val_loss") and ",,\n" in text

    for config in (PlateauConfig(patience=2), PlateauConfig(patience=1, on_nonfinite="skip")):
        rows = csv_rows(path, "--patience", config.patience, "--on-nonfinite", config.on_nonfinite)
        states = plateau.simulate(losses, config)
        assert [int(r["epoch"]) for r in rows] == list(range(len(losses)))
        assert same(column(rows, "metric"), losses)
        assert column(rows, "lr") == [s.lrs[0] for s in states]
        assert [r["decision"] for r in rows] == [s.decision.value for s in states]
        assert "reduced" in {r["decision"] for r in rows}


def test_keras_csv_logger_from_a_real_fit(tmp_path):
    keras = pytest.importorskip("keras")
    np = pytest.importorskip("numpy")
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    path = tmp_path / "training.log"
    history = model.fit(
        x,
        y,
        validation_split=0.25,
        validation_freq=2,  # epochs without validation: Keras writes val_loss as "NA"
        epochs=8,
        batch_size=16,
        verbose=0,
        callbacks=[keras.callbacks.CSVLogger(str(path))],
    )
    assert "NA" in path.read_text()
    val_loss = history.history["val_loss"]
    # A falling loss in mode=max is a bad epoch every time: cuts are guaranteed.
    config = PlateauConfig(mode="max", patience=0, factor=0.5)
    rows = csv_rows(path, "--mode", "max", "--patience", "0", "--factor", "0.5", "--lr", "0.01")
    assert [int(r["epoch"]) for r in rows] == [1, 3, 5, 7]
    assert column(rows, "metric") == val_loss
    assert column(rows, "lr") == [s.lrs[0] for s in plateau.simulate(val_loss, config, 0.01)]


def test_keras_csv_logger_with_nan_and_a_learning_rate_column(tmp_path):
    keras = pytest.importorskip("keras")
    path = tmp_path / "log.csv"
    logger = keras.callbacks.CSVLogger(str(path))
    losses = random_stream(2, n=25, nan_at=(9, 10))
    logger.on_train_begin()
    for epoch, loss in enumerate(losses):
        logs = {"learning_rate": 0.001, "loss": loss + 0.1, "val_loss": loss}
        logger.on_epoch_end(epoch, logs)
    logger.on_train_end()
    assert path.read_text().splitlines()[0] == "epoch,learning_rate,loss,val_loss"

    rows = csv_rows(path, "--patience", "2")
    assert column(rows, "lr") == [
        s.lrs[0] for s in plateau.simulate(losses, PlateauConfig(patience=2))
    ]
    # --column picks another metric.
    rows = csv_rows(path, "--column", "loss", "--patience", "2")
    expected = plateau.simulate([v + 0.1 for v in losses], PlateauConfig(patience=2))
    assert column(rows, "lr") == [s.lrs[0] for s in expected]


def test_keras_csv_logger_without_validation_picks_loss_not_learning_rate(tmp_path):
    keras = pytest.importorskip("keras")
    path = tmp_path / "log.csv"
    logger = keras.callbacks.CSVLogger(str(path))
    losses = random_stream(12, n=20)
    logger.on_train_begin()
    for epoch, loss in enumerate(losses):
        logger.on_epoch_end(epoch, {"learning_rate": 0.01, "loss": loss})
    logger.on_train_end()
    # Without validation Keras pads the header with val_ columns that are all NA.
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,learning_rate,loss,val_learning_rate,val_loss"
    assert lines[1].endswith(",NA,NA")
    rows = csv_rows(path, "--patience", "1")
    assert column(rows, "metric") == losses
    assert column(rows, "lr") == [
        s.lrs[0] for s in plateau.simulate(losses, PlateauConfig(patience=1))
    ]
    assert ok(cli(path)).startswith(
        f"{path}: loss, the last value of each epoch: {len(losses)} values\n"
    )


def test_lightning_lr_monitor_columns_are_not_metric_candidates(tmp_path):
    loggers = pytest.importorskip("pytorch_lightning.loggers")
    losses = random_stream(13, n=15)
    logger = loggers.CSVLogger(tmp_path, name="run")
    for epoch, loss in enumerate(losses):
        # The keys LearningRateMonitor logs for an SGD and a two-group Adam optimizer.
        lrs = {"lr-SGD": 0.1, "lr-Adam/pg1": 0.01, "lr-Adam/pg2": 0.02}
        logger.log_metrics({**lrs, "train_loss": loss, "epoch": epoch}, step=10 * epoch)
    logger.save()
    path = Path(logger.log_dir) / "metrics.csv"
    assert {"lr-SGD", "lr-Adam/pg1", "train_loss"} <= set(
        path.read_text().splitlines()[0].split(",")
    )
    rows = csv_rows(path, "--patience", "1")
    assert column(rows, "metric") == losses
    assert [int(r["epoch"]) for r in rows] == list(range(len(losses)))


def test_keras_history_dumped_as_json(tmp_path):
    keras = pytest.importorskip("keras")
    np = pytest.importorskip("numpy")
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    # Keras's own ReduceLROnPlateau puts a learning_rate column in the history.
    reduce = keras.callbacks.ReduceLROnPlateau(patience=100)
    fit = {"x": x, "y": y, "batch_size": 16, "verbose": 0, "validation_split": 0.25}
    history = model.fit(**fit, epochs=6, callbacks=[reduce]).history
    assert set(history) == {"loss", "val_loss", "learning_rate"}

    config = PlateauConfig(mode="max", patience=0, factor=0.5)  # a falling loss: cuts
    args = ("--mode", "max", "--patience", "0", "--factor", "0.5")
    for indent in (None, 2):  # json.dump's one line, and pretty-printed
        path = tmp_path / f"history-{indent}.json"
        with open(path, "w") as f:
            json.dump(history, f, indent=indent)
        rows = csv_rows(path, *args)
        assert [int(r["epoch"]) for r in rows] == list(range(6))
        assert column(rows, "metric") == history["val_loss"]
        assert column(rows, "lr") == [
            s.lrs[0] for s in plateau.simulate(history["val_loss"], config)
        ]
        rows = csv_rows(path, *args, "--column", "loss")
        assert column(rows, "metric") == history["loss"]

    # Without validation the only metric column left is loss, beside learning_rate.
    reduce = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=100)
    history = model.fit(x, y, batch_size=16, verbose=0, epochs=3, callbacks=[reduce]).history
    assert set(history) == {"loss", "learning_rate"}
    path = tmp_path / "train-only.json"
    path.write_text(json.dumps(history))
    assert column(csv_rows(path), "metric") == history["loss"]

    # validation_freq=2 leaves val_loss shorter than loss: no way to line rows up.
    history = model.fit(**fit, epochs=4, validation_freq=2).history
    assert (len(history["loss"]), len(history["val_loss"])) == (4, 2)
    path = tmp_path / "every-other.json"
    path.write_text(json.dumps(history))
    assert_one_line_error(
        cli(path), "every-other.json", "loss: 4", "val_loss: 2", "differ in length"
    )


# Hand-written files of the same shapes (no framework needed) ----------------------


def test_hand_written_lightning_shape(tmp_path):
    losses = random_stream(3, nan_at=(5,))
    path = tmp_path / "metrics.csv"
    write_lightning_shaped(path, losses)
    rows = csv_rows(path, "--patience", "2", "--cooldown", "1")
    states = plateau.simulate(losses, PlateauConfig(patience=2, cooldown=1))
    assert same(column(rows, "metric"), losses)
    assert column(rows, "lr") == [s.lrs[0] for s in states]
    assert [int(r["cooldown_counter"]) for r in rows] == [s.cooldown_counter for s in states]


def test_hand_written_keras_shape_with_na_cells(tmp_path):
    losses = random_stream(4)
    lines = ["epoch,learning_rate,loss,val_loss"]
    lines += [
        f"{e},0.001,{v + 1!r},{'NA' if e % 3 == 0 else repr(v)}" for e, v in enumerate(losses)
    ]
    path = tmp_path / "training.log"
    path.write_text("\n".join(lines) + "\n")
    kept = [(e, v) for e, v in enumerate(losses) if e % 3]
    rows = csv_rows(path, "--patience", "1", "--threshold-mode", "abs", "--threshold", "0.01")
    config = PlateauConfig(patience=1, threshold_mode="abs", threshold=0.01)
    assert [int(r["epoch"]) for r in rows] == [e for e, _ in kept]
    assert column(rows, "lr") == [s.lrs[0] for s in plateau.simulate([v for _, v in kept], config)]


def test_hand_written_keras_history_json(tmp_path):
    losses = random_stream(14, n=20, nan_at=(7,))
    history = {
        "loss": [v + 0.5 for v in losses],
        "val_loss": losses,
        "learning_rate": [0.01] * len(losses),
    }
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history))  # NaN, as json.dump writes a nan loss
    config = PlateauConfig(patience=1, factor=0.5)
    rows = csv_rows(path, "--patience", "1", "--factor", "0.5")
    assert [int(r["epoch"]) for r in rows] == list(range(len(losses)))
    assert same(column(rows, "metric"), losses)
    assert column(rows, "lr") == [s.lrs[0] for s in plateau.simulate(losses, config)]
    assert "reduced" in {r["decision"] for r in rows}

    # Without val_loss, learning_rate is no candidate: loss is the metric.
    del history["val_loss"]
    path.write_text(json.dumps(history, indent=4))
    assert same(column(csv_rows(path), "metric"), history["loss"])


def test_json_columns_keep_each_row_s_epoch(tmp_path):
    path = tmp_path / "columns.json"
    # A null skips its row; the epochs of the others are their positions.
    path.write_text('{"loss": [3, 2, 1, 0.5], "val_loss": [2.5, null, 2.0, 1.5]}')
    rows = csv_rows(path)
    assert [int(r["epoch"]) for r in rows] == [0, 2, 3]
    assert column(rows, "metric") == [2.5, 2.0, 1.5]
    # An epoch column wins over positions.
    path.write_text('{"epoch": [10, 11, 12], "val_loss": [2.5, 2.0, 1.5]}')
    assert [int(r["epoch"]) for r in csv_rows(path)] == [10, 11, 12]


def test_a_one_line_json_object_is_still_one_json_lines_row(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text('{"epoch": 4, "val_loss": 1.5}\n')
    rows = csv_rows(path)
    assert [(int(r["epoch"]), float(r["metric"])) for r in rows] == [(4, 1.5)]


def test_hand_written_keras_shape_without_validation(tmp_path):
    losses = random_stream(15, n=12)
    path = tmp_path / "training.log"
    path.write_text(
        "epoch,learning_rate,loss\n" + "".join(f"{e},0.01,{v!r}\n" for e, v in enumerate(losses))
    )
    assert column(csv_rows(path), "metric") == losses


def test_the_only_numeric_column_besides_epoch_and_step_is_chosen(tmp_path):
    losses = random_stream(5, n=15)
    path = tmp_path / "log.csv"
    path.write_text(
        "epoch,step,run,train_loss\n"
        + "".join(f"{e},{e * 7},name,{v!r}\n" for e, v in enumerate(losses))
    )
    rows = csv_rows(path, "--patience", "1")
    assert column(rows, "metric") == losses


# Other input shapes -------------------------------------------------------------


@pytest.mark.parametrize("shape", ["json_list", "json_objects", "json_lines", "csv"])
def test_json_and_stdin_inputs(tmp_path, shape):
    losses = random_stream(6, n=20, nan_at=(4,))
    epochs = list(range(0, 40, 2))
    if shape == "json_list":
        text = json.dumps(losses)
        epochs = list(range(20))
    elif shape == "json_objects":
        text = json.dumps([{"epoch": e, "val_loss": v} for e, v in zip(epochs, losses)])
    elif shape == "json_lines":
        objects = [{"epoch": e, "train_loss": 1.0} for e in epochs]
        objects += [{"epoch": e, "val_loss": v, "lr": 0.1} for e, v in zip(epochs, losses)]
        objects.sort(key=lambda o: o["epoch"])
        text = "".join(json.dumps(o) + "\n" for o in objects)
    else:
        text = "epoch,val_loss\n" + "".join(f"{e},{v!r}\n" for e, v in zip(epochs, losses))
    config = PlateauConfig(patience=1, factor=0.5)
    expected = [s.lrs[0] for s in plateau.simulate(losses, config)]
    path = tmp_path / "log.txt"
    path.write_text(text)
    for rows in (
        csv_rows(path, "--patience", "1", "--factor", "0.5"),
        csv_rows("-", "--patience", "1", "--factor", "0.5", stdin=text),
    ):
        index = "row" if shape == "json_list" else "epoch"  # a bare list has no epochs
        assert [int(r[index]) for r in rows] == epochs
        assert same(column(rows, "metric"), losses)
        assert column(rows, "lr") == expected


def test_json_nulls_and_absent_keys_skip_rows(tmp_path):
    path = tmp_path / "log.json"
    path.write_text(
        '[{"epoch": 0, "val_loss": 3}, {"epoch": 1, "val_loss": null}, {"epoch": 2}, '
        '{"epoch": 3, "val_loss": 2.5}]'
    )
    rows = csv_rows(path)
    assert [int(r["epoch"]) for r in rows] == [0, 3]
    assert column(rows, "metric") == [3.0, 2.5]


# Output formats -----------------------------------------------------------------


def test_formats_agree_and_json_is_strict(tmp_path):
    losses = [math.nan, 1.0, 0.9, 0.95, 0.97, 0.99, 1.2, math.inf, 0.5]
    path = tmp_path / "metrics.csv"
    write_lightning_shaped(path, losses)
    args = (path, "--patience", "1", "--cooldown", "1", "--lr", "0.3")
    config = PlateauConfig(patience=1, cooldown=1)
    states = plateau.simulate(losses, config, 0.3)

    def no_constants(name):
        raise AssertionError(f"non-strict JSON constant {name}")

    text = ok(cli(*args, "--format", "json"))
    document = json.loads(text, parse_constant=no_constants)
    assert document["log"] == str(path) and document["column"] == "val_loss"
    assert document["lrs"] == [0.3]
    assert PlateauConfig.from_dict(document["configs"]["base"]) == config
    json_rows = document["rows"]
    # Non-finite numbers are strings, as PlateauState.to_dict writes them.
    assert json_rows[0]["metric"] == "nan" and json_rows[0]["best"] == "inf"
    assert json_rows[7]["metric"] == "inf"
    assert [r["lr"] for r in json_rows] == [s.lrs[0] for s in states]
    assert [r["best"] for r in json_rows[1:]] == [s.best for s in states[1:]]

    rows = csv_rows(*args)
    assert list(rows[0]) == list(json_rows[0])
    for csv_row, json_row in zip(rows, json_rows):
        for key, value in json_row.items():
            if isinstance(value, str):
                assert csv_row[key] == value
            else:
                assert float(csv_row[key]) == value

    table = ok(cli(*args)).splitlines()
    header_at = next(i for i, line in enumerate(table) if line.split()[:2] == ["epoch", "metric"])
    assert table[header_at].split() == list(json_rows[0])
    body = table[header_at + 1 : header_at + 1 + len(losses)]
    for line, state in zip(body, states):
        cells = line.split()
        marked = cells[-1] == "*"
        lr_cell = cells[-2] if marked else cells[-1]
        assert float(lr_cell) == pytest.approx(state.lrs[0], rel=1e-5)
        assert cells[5] == state.decision.value
        assert marked == (state.decision is plateau.Decision.REDUCED)
    assert any(s.decision is plateau.Decision.REDUCED for s in states)


def test_several_learning_rates_and_per_lr_floors(tmp_path):
    losses = random_stream(7)
    path = tmp_path / "metrics.csv"
    write_lightning_shaped(path, losses)
    rows = csv_rows(
        path, "--patience", "0", "--lr", "0.1", "--lr", "0.01", "--min-lr", "0.002", "--min-lr", "0"
    )
    config = PlateauConfig(patience=0, min_lr=(0.002, 0.0))
    states = plateau.simulate(losses, config, (0.1, 0.01))
    assert "lr" not in rows[0]
    assert column(rows, "lr_0") == [s.lrs[0] for s in states]
    assert column(rows, "lr_1") == [s.lrs[1] for s in states]
    assert min(column(rows, "lr_0")) == 0.002  # the floor was reached


def test_compare_overlays_each_config(tmp_path):
    losses = random_stream(8, n=60)
    path = tmp_path / "metrics.csv"
    write_lightning_shaped(path, losses)
    base = PlateauConfig(patience=2, factor=0.5)
    compares = {
        "patience=5": {"patience": 5},
        "patience=1,factor=0.2": {"patience": 1, "factor": 0.2},
        "threshold-mode=abs,threshold=0.05": {"threshold_mode": "abs", "threshold": 0.05},
    }
    args = [path, "--patience", "2", "--factor", "0.5"]
    for text in compares:
        args += ["--compare", text]
    rows = csv_rows(*args)
    assert list(rows[0]) == ["epoch", "metric", "lr[base]", *(f"lr[{t}]" for t in compares)]
    configs = {"base": base} | {t: attrs.evolve(base, **o) for t, o in compares.items()}
    columns = {}
    for label, config in configs.items():
        columns[label] = column(rows, f"lr[{label}]")
        assert columns[label] == [s.lrs[0] for s in plateau.simulate(losses, config)]
    assert len({tuple(c) for c in columns.values()}) == len(configs)  # they do differ

    document = json_doc(*args)
    assert {k: PlateauConfig.from_dict(v) for k, v in document["configs"].items()} == configs
    table = ok(cli(*args))
    assert all(f"lr[{label}]" in table for label in configs)


# --plot -------------------------------------------------------------------------


def png_chunks(data):
    assert data[:8] == PNG_SIGNATURE
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def assert_matplotlib_png(path):
    chunks = png_chunks(path.read_bytes())
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert width > 300 and height > 200
    text = dict(body.split(b"\0", 1) for kind, body in chunks if kind == b"tEXt")
    assert b"matplotlib" in text[b"Software"].lower()


@pytest.mark.parametrize("compare", [False, True])
def test_plot_writes_a_matplotlib_png(tmp_path, compare):
    pytest.importorskip("matplotlib")
    out = tmp_path / "schedule.png"
    args = [BUNDLED, "--patience", "3"]
    if compare:
        args += ["--compare", "patience=5", "--compare", "patience=10,factor=0.5"]
    result = cli(*args, "--plot", out)
    assert result.returncode == 0, result.stderr
    # stdout is exactly the table; the one line on stderr says where the picture went.
    assert result.stdout == ok(cli(*args))
    assert result.stderr == f"plateau: wrote {out}\n"
    assert "reduced" in result.stdout or "*" in result.stdout
    assert_matplotlib_png(out)


def test_committed_readme_picture_is_a_small_matplotlib_png():
    picture = ROOT / "docs" / "schedule.png"
    assert picture.stat().st_size < 150_000
    assert_matplotlib_png(picture)


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.ticker"):
        monkeypatch.setitem(sys.modules, name, None)  # import matplotlib now fails
    out = tmp_path / "schedule.png"
    assert_one_line_error(cli(BUNDLED, "--plot", out), "matplotlib", "plateau-lr[plot]")
    assert not out.exists()
    # The same command without --plot runs without matplotlib.
    assert "val_loss" in ok(cli(BUNDLED))


# Bad input: exit 2, one line naming what and where ----------------------------------

LOG = "epoch,step,train_loss,val_loss\n0,4,2.0,\n0,9,,1.5\n1,14,1.0,\n1,19,,1.25\n"

BAD_LOGS = [
    # (file name, content or None for "do not create", extra args, fragments of the message)
    ("missing.csv", None, [], ["missing.csv", "no such file"]),
    ("empty.csv", "", [], ["empty.csv", "empty"]),
    ("blank.csv", "  \n\n", [], ["blank.csv", "empty"]),
    ("header.csv", "epoch,step,val_loss\n", [], ["header.csv", "no rows"]),
    (
        "cell.csv",
        LOG.replace("1.25", "abc"),
        [],
        ["cell.csv", "line 5", "'val_loss'", "'abc'"],
    ),
    (
        "epoch.csv",
        LOG.replace("1,19", "one,19"),
        [],
        ["epoch.csv", "line 5", "'epoch'", "'one'"],
    ),
    (
        "ragged.csv",
        LOG + "2,24,0.5\n",
        [],
        ["ragged.csv", "line 6", "3 cells", "header has 4"],
    ),
    (
        "dup.csv",
        "epoch,val_loss,val_loss\n0,1,2\n",
        [],
        ["dup.csv", "line 1", "duplicate columns val_loss"],
    ),
    (
        "unknown.csv",
        LOG,
        ["--column", "val_acc"],
        ["unknown.csv", "'val_acc'", "columns: epoch, step, train_loss, val_loss"],
    ),
    (
        "ambiguous.csv",
        "epoch,step,loss,acc\n0,1,0.5,0.9\n",
        [],
        ["ambiguous.csv", "loss, acc", "--column"],
    ),
    ("text.csv", "epoch,name\n0,a\n", [], ["text.csv", "no numeric column", "epoch, name"]),
    (
        "onlylr.csv",
        "epoch,step,lr-SGD,learning_rate\n0,1,0.1,0.1\n",
        [],
        ["onlylr.csv", "no numeric column", "learning rates", "--column"],
    ),
    (
        "lrs.csv",
        "epoch,lr,loss,acc\n0,0.1,0.5,0.9\n",
        [],
        ["lrs.csv", "several metric columns (loss, acc)", "--column"],
    ),
    (
        "unequal.json",
        '{"loss": [1, 2, 3], "val_loss": [1], "learning_rate": [0.1, 0.1, 0.1]}',
        [],
        ["unequal.json", "differ in length", "(loss: 3, val_loss: 1, learning_rate: 3)"],
    ),
    (
        "notalist.json",
        '{"loss": [1, 2], "name": "run"}',
        [],
        ["notalist.json", "JSON lines", "every value a list"],
    ),
    ("nolists.json", '{"loss": [], "val_loss": []}', [], ["nolists.json", "no rows"]),
    (
        "columncell.json",
        '{"val_loss": [1.0, "x"]}',
        [],
        ["columncell.json", "index 1", "'val_loss'", "'x'", "not a number"],
    ),
    (
        "pretty.json",
        '{\n  "epoch": 0,\n  "val_loss": 1.0\n}\n',
        [],
        ["pretty.json", "JSON lines", "history.history"],
    ),
    (
        "allempty.csv",
        "epoch,loss,val_loss\n0,1.0,NA\n1,0.9,NA\n",
        ["--column", "val_loss"],
        ["allempty.csv", "'val_loss'", "no values"],
    ),
    (
        "emptyval.csv",
        "epoch,loss,acc,val_loss\n0,1.0,0.5,NA\n",
        [],
        ["emptyval.csv", "several metric columns (loss, acc)", "val_loss has no values"],
    ),
    ("list.json", '[1.0, 0.5, "x"]', [], ["list.json", "item 2", "'x'"]),
    ("mixed.json", '[1.0, {"a": 1}]', [], ["mixed.json", "item 1"]),
    (
        "objects.json",
        '[{"val_loss": 1}, {"val_loss": true}]',
        [],
        ["objects.json", "item 1", "'val_loss'", "True"],
    ),
    ("broken.json", "[1.0, 0.5", [], ["broken.json", "line 1", "invalid JSON"]),
    # Two items without a comma: refused, not read as [1.0, 2.0] by skipping a digit.
    ("nocomma.json", "[1.0\n 22]", [], ["nocomma.json", "line 2", "invalid JSON", "','"]),
    (
        "lines.jsonl",
        '{"val_loss": 1}\n{"val_loss": "abc"}\n',
        [],
        ["lines.jsonl", "line 2", "'val_loss'", "'abc'"],
    ),
    ("badline.jsonl", '{"val_loss": 1}\n[2]\n', [], ["badline.jsonl", "line 2", "JSON object"]),
    ("bare.json", "[1.0, 0.5]", ["--column", "loss"], ["bare.json", "--column", "'loss'"]),
    (
        "nan.csv",
        LOG.replace("1.25", "nan"),
        ["--on-nonfinite", "raise"],
        ["nan.csv", "line 5", "'val_loss'", "on_nonfinite"],
    ),
    ("latin1.csv", b"epoch,val_loss\n0,1.0\xe9\n", [], ["latin1.csv", "UTF-8"]),
]


@pytest.mark.parametrize(
    ("name", "content", "extra", "fragments"), BAD_LOGS, ids=[b[0] for b in BAD_LOGS]
)
def test_bad_log(tmp_path, name, content, extra, fragments):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert_one_line_error(cli(path, *extra), *fragments)


def test_a_directory_is_not_a_log(tmp_path):
    assert_one_line_error(cli(tmp_path), str(tmp_path), "directory")


def test_bad_stdin_is_named_stdin():
    assert_one_line_error(cli("-", stdin="epoch,val_loss\n0,zero\n"), "<stdin>", "line 2", "'zero'")


BAD_OPTIONS = [
    (["--factor", "2"], ["invalid config", "'factor'", "2.0"]),
    (["--factor", "nan"], ["invalid config", "'factor'", "nan"]),
    (["--patience", "-1"], ["invalid config", "'patience'", "-1"]),
    (["--patience", "x"], ["--patience", "'x'"]),
    (["--patience", "2.5"], ["--patience", "'2.5'"]),
    (["--mode", "up"], ["invalid config", "'mode'", "'up'"]),
    (["--threshold-mode", "pct"], ["invalid config", "'threshold_mode'", "'pct'"]),
    (["--threshold", "-0.1"], ["invalid config", "'threshold'"]),
    (["--threshold", "1"], ["invalid config", "'threshold'", "must be < 1"]),
    (["--cooldown", "-2"], ["invalid config", "'cooldown'"]),
    (["--min-lr", "-1"], ["invalid config", "'min_lr'"]),
    (["--eps", "inf"], ["invalid config", "'eps'"]),
    (["--on-nonfinite", "ignore"], ["invalid config", "'on_nonfinite'", "'ignore'"]),
    (["--lr", "-0.1"], ["--lr", "'lrs[0]'", "-0.1"]),
    (["--lr", "0.1", "--lr", "nan"], ["--lr", "'lrs[1]'", "nan"]),
    (["--min-lr", "0", "--min-lr", "0"], ["invalid config", "'min_lr' has 2 values", "1 lrs"]),
    (["--format", "xml"], ["--format", "'xml'"]),
    (["--bogus"], ["--bogus"]),
    (["--compare", "pat=5"], ["--compare 'pat=5'", "unknown key 'pat'", "patience"]),
    (["--compare", "patience=x"], ["--compare 'patience=x'", "'patience'", "integer", "'x'"]),
    (["--compare", "factor=big"], ["--compare 'factor=big'", "'factor'", "number", "'big'"]),
    (["--compare", "factor=1.5"], ["--compare 'factor=1.5'", "'factor'", "1.5"]),
    (["--compare", "mode=up"], ["--compare 'mode=up'", "'mode'", "'up'"]),
    (["--compare", "patience"], ["--compare 'patience'", "KEY=VALUE"]),
    (["--compare", "patience=1,patience=2"], ["--compare", "'patience' given twice"]),
    (
        ["--compare", "patience=1", "--compare", "patience=1"],
        ["--compare 'patience=1' given twice"],
    ),
    (["--compare", "on_nonfinite=raise"], ["--compare 'on_nonfinite=raise'", "line 3"]),
]


@pytest.mark.parametrize(
    ("extra", "fragments"), BAD_OPTIONS, ids=[" ".join(b[0]) for b in BAD_OPTIONS]
)
def test_bad_options(tmp_path, extra, fragments):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,val_loss\n0,1.0\n1,nan\n")
    assert_one_line_error(cli(path, *extra), *fragments)


def test_bad_plot_targets(tmp_path):
    pytest.importorskip("matplotlib")
    assert_one_line_error(cli(BUNDLED, "--plot", tmp_path / "x.txt"), "x.txt", "'txt'", "png")
    missing = tmp_path / "nowhere" / "x.png"
    assert_one_line_error(cli(BUNDLED, "--plot", missing), "nowhere", "does not exist")


def test_table_counts_and_several_final_lrs_read_as_english(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,val_loss\n0,1.0\n1,\n2,1.0\n3,1.0\n")
    table = ok(cli(path, "--patience", "0", "--lr", "1e-4", "--lr", "1e-5"))
    lines = table.splitlines()
    assert (
        lines[0]
        == f"{path}: val_loss, the last value of each epoch: 3 values (1 row without it skipped)"
    )
    assert lines[1].endswith("; start lr 0.0001, 1e-05")
    states = plateau.simulate([1.0, 1.0, 1.0], PlateauConfig(patience=0), (1e-4, 1e-5))
    final = ", ".join(f"{lr:.6g}" for lr in states[-1].lrs)
    assert final == "1e-06, 1e-07"
    assert lines[-1] == f"lr cut (*) at epochs 2, 3; final lr {final}"
    path.write_text("epoch,val_loss\n0,1.0\n1,\n2,\n")
    assert ok(cli(path)).startswith(
        f"{path}: val_loss, the last value of each epoch: 1 value (2 rows without it skipped)\n"
    )


def test_csv_rows_are_written_as_the_replay_makes_them(tmp_path):
    from plateau.cli.output import write_csv
    from plateau.cli.readers import read_log
    from plateau.cli.replay import Run, replay

    losses = random_stream(30, n=10_000)
    log = read_log("-", stdin=io.BytesIO(json.dumps(losses).encode()))
    runs = [Run("base", PlateauConfig(patience=2))]
    out = io.StringIO()
    seen = []

    def watched():
        for i, row in enumerate(replay(log, runs, (1.0,))):
            seen.append((i, out.tell()))
            yield row

    write_csv(out, log, runs, (1.0,), watched())
    # Output had begun long before the last row was computed.
    assert any(position > 0 for i, position in seen if i < 5000)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    expected = plateau.simulate(losses, PlateauConfig(patience=2))
    assert column(rows, "lr") == [s.lrs[0] for s in expected]
    assert column(rows, "best") == [s.best for s in expected]
