"""The log readers alone, in-process: what they pull out of each shape, and their errors.

Expected values are the ones each test wrote into the log.
"""

from __future__ import annotations

import io
import json
import math

import pytest
from cli.support import random_stream, same

from plateau.cli.readers import LogError, parse_log, read_log
from plateau.cli.readers.csv import read_csv
from plateau.cli.readers.json import read_json


def lightning_text(losses):
    lines = ["epoch,step,train_loss,val_loss"]
    for epoch, loss in enumerate(losses):
        lines += [
            f"{epoch},{10 * epoch + 4},{1.0 + epoch!r},",
            f"{epoch},{10 * epoch + 9},,{loss!r}",
        ]
    return "\n".join(lines) + "\n"


def test_csv_keeps_only_the_chosen_column_in_compact_arrays():
    losses = random_stream(1, n=50, nan_at=(3,))
    log = read_csv("m.csv", lambda: io.StringIO(lightning_text(losses)))
    assert (log.column, log.skipped, len(log)) == ("val_loss", 50, 50)
    assert same(list(log.metrics), losses)
    assert list(log.epochs) == list(range(50))
    # array('d') / array('q'): 8 bytes a value, whatever the other columns hold.
    assert (log.metrics.typecode, log.epochs.typecode) == ("d", "q")
    assert log.where(0) == "row 2 (line 3)" and log.where(49) == "row 100 (line 101)"


def test_csv_reads_each_pass_afresh_when_val_loss_is_all_na():
    opened = []

    def opener():
        opened.append(1)
        return io.StringIO("epoch,learning_rate,loss,val_loss\n0,0.1,2.0,NA\n1,0.1,1.5,NA\n")

    log = read_csv("k.csv", opener)
    assert log.column == "loss" and list(log.metrics) == [2.0, 1.5]
    assert len(opened) == 3  # a tentative val_loss pass, a scan, the read of loss
    # Asked for by name, one pass.
    opened.clear()
    assert list(read_csv("k.csv", opener, "loss").metrics) == [2.0, 1.5]
    assert len(opened) == 1


def test_csv_cells_epochs_and_blank_lines():
    text = "epoch , val_loss\n\n 3 , 1.5 \n4.0,NA\n5, \n1e1,inf\n"
    log = parse_log("c.csv", text)
    assert list(log.metrics) == [1.5, math.inf] and list(log.epochs) == [3, 10]
    assert log.skipped == 2


@pytest.mark.parametrize(
    ("epoch", "fragment"),
    [("9" * 30, "'999"), ("0.5", "'0.5'"), ("nan", "'nan'"), ("", "''")],
)
def test_csv_epochs_must_be_integers_within_64_bits(epoch, fragment):
    with pytest.raises(LogError, match="is not an epoch number") as info:
        parse_log("e.csv", f"epoch,val_loss\n0,1.0\n{epoch},2.0\n")
    assert "row 2 (line 3), column 'epoch'" in str(info.value) and fragment in str(info.value)


def test_byte_order_mark_and_stdin_bytes(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfepoch,val_loss\r\n0,1.0\r\n1,0.5\r\n")
    assert list(read_log(str(path)).metrics) == [1.0, 0.5]
    log = read_log("-", None, io.BytesIO(path.read_bytes()))
    assert log.source == "<stdin>" and list(log.metrics) == [1.0, 0.5]


def test_utf8_errors_name_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"epoch,val_loss\n" + b"0,1.0\n" * 5000 + b"5000,1.0\xe9\n")
    with pytest.raises(LogError, match=r"latin1.csv, line 5002: not UTF-8 text"):
        read_log(str(path))


def test_json_shapes():
    losses = random_stream(2, n=12, nan_at=(5,))
    assert same(list(read_json("l.json", json.dumps(losses)).metrics), losses)
    rows = [{"epoch": 2 * i, "val_loss": v} for i, v in enumerate(losses)]
    log = read_json("o.json", json.dumps(rows))
    assert same(list(log.metrics), losses) and list(log.epochs) == list(range(0, 24, 2))
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    log = read_json("o.jsonl", lines)
    assert same(list(log.metrics), losses) and log.where(1) == "line 2"
    columns = {"loss": [v + 1 for v in losses], "val_loss": losses}
    log = read_json("h.json", json.dumps(columns, indent=2), "loss")
    assert same(list(log.metrics), columns["loss"]) and log.where(3) == "index 3"


def test_json_overflowing_numbers_are_inf_as_json_reads_them():
    assert list(read_json("j.json", "[1, 1e999999]").metrics) == [1.0, math.inf]


def test_bare_list_nulls_skip_and_positions_count_kept_values():
    log = read_json("b.json", "[1.0, null, 0.5, 0.25]")
    assert list(log.metrics) == [1.0, 0.5, 0.25] and list(log.epochs) == [0, 1, 2]
    assert log.skipped == 1 and log.where(1) == "item 2"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[{"val_loss": 1e400}, {"val_loss": "x"}]', ["item 1", "'x'"]),
        # Nested past the recursion limit: json raises RecursionError, named here.
        ('{"val_loss": [1, ' + "[" * 100000 + "]}", ["nested too deeply"]),
        ("[" * 100000, ["nested too deeply"]),
        ('[{"val_loss": 1, "epoch": 10000000000000000000000}]', ["'epoch'", "epoch number"]),
    ],
)
def test_json_errors(text, fragments):
    with pytest.raises(LogError) as info:
        read_json("j.json", text)
    message = str(info.value)
    assert "\n" not in message and message.startswith("j.json")
    for fragment in fragments:
        assert fragment in message, message


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(LogError, match="no such file"):
        read_log(str(tmp_path / "nope.csv"))
    (tmp_path / "blank.csv").write_text(" \n" * 70000)  # blank beyond the first read
    with pytest.raises(LogError, match=r"blank\.csv: empty log"):
        read_log(str(tmp_path / "blank.csv"))
    with pytest.raises(LogError, match=r"<stdin>: empty log"):
        read_log("-", None, io.BytesIO(b""))
