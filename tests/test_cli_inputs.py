"""Inputs people have: bare numbers, pipes, odd JSON lines, cut and compressed logs, wide CSVs."""

from __future__ import annotations

import gzip

from cli.support import assert_one_line_error, cli, csv_rows, ok


def test_a_file_of_bare_numbers_is_read_whole():
    rows = csv_rows("-", "--patience", "1", stdin="1.0\n0.9\n0.95\n0.95\n")
    assert [float(row["metric"]) for row in rows] == [1.0, 0.9, 0.95, 0.95]
    assert [row["row"] for row in rows] == ["0", "1", "2", "3"]
    assert [float(row["lr"]) for row in rows] == [1.0, 1.0, 1.0, 0.1]


def test_json_lines_split_on_newline_only():
    text = (
        '{"epoch": 0, "val_loss": 1.0, "note": "a\u2028b\u0085c"}\n{"epoch": 1, "val_loss": 0.5}\n'
    )
    rows = csv_rows("-", stdin=text)
    assert [float(row["metric"]) for row in rows] == [1.0, 0.5]


def test_a_last_line_cut_mid_number_is_warned_about_naming_it(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,val_loss\n0,1.0\n1,0.9\n2,0.")
    result = cli(path, "--format", "csv")
    assert result.returncode == 0
    assert result.stderr.startswith(
        f"plateau: warning: {path}, line 4: the last line has no line end"
    )
    assert len(result.stdout.splitlines()) == 4


def test_a_gzip_file_is_named_as_gzip(tmp_path):
    path = tmp_path / "metrics.csv.gz"
    path.write_bytes(gzip.compress(b"epoch,val_loss\n0,1.0\n"))
    assert_one_line_error(cli(path), "a gzip file", "gunzip")


def test_a_bad_byte_is_named_by_its_line(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"epoch,val_loss\n0,1.0\n1,0.9\xff\n")
    assert_one_line_error(cli(path), "line 3: not UTF-8 text")


def test_candidate_lists_in_errors_are_capped(tmp_path):
    path = tmp_path / "wide.csv"
    names = [f"metric_{i}" for i in range(100_000)]
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    result = cli(path)
    assert_one_line_error(result, "several metric columns", "(99988 more)")
    assert len(result.stderr) < 500


def test_the_output_says_when_values_of_an_epoch_were_not_replayed(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,val_loss\n0,1.0\n0,0.8\n1,0.9\n1,0.7\n")
    first = ok(cli(path)).splitlines()[0]
    assert first == (
        f"{path}: val_loss, the last value of each epoch: 2 values "
        "(2 earlier values of the same epoch not replayed: --every-row replays them)"
    )
    assert [float(r["metric"]) for r in csv_rows(path)] == [0.8, 0.7]
    assert [float(r["metric"]) for r in csv_rows(path, "--every-row")] == [1.0, 0.8, 0.9, 0.7]


def test_a_missing_optional_library_names_the_extra(tmp_path, monkeypatch):
    import sys

    def hide(package):  # as if not installed, even where another test imported it
        for name in [n for n in sys.modules if n.split(".")[0] == package] + [package]:
            monkeypatch.setitem(sys.modules, name, None)

    hide("tensorboard")
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(b"\x00" * 32)
    assert_one_line_error(cli(path), "needs 'plateau-lr[tensorboard]'")
    hide("mlflow")
    import sqlite3

    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.executescript(
            "CREATE TABLE runs(x); CREATE TABLE metrics(x); CREATE TABLE experiments(x);"
        )
    assert_one_line_error(cli(tmp_path / "mlflow.db"), "needs 'plateau-lr[mlflow]'")
