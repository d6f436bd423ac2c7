"""Hostile input to ``plateau simulate`` (issue 9): exit 2 and one line, never a traceback.

Targeted cases first (deep nesting, integers past int()'s 4300 digits, file names
with control characters, cells float() takes but no logger writes, duplicate JSON
keys, an unwritable output), then a fuzz layer that mutates valid CSV, JSON and
JSON-lines logs byte by byte: every run ends with exit 0 and no stderr, or exit 2
and exactly one line on stderr. ``plateau.cli.main`` runs in-process
(tests/cli/support.py), with stdout and stderr redirected.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import pytest
from cli.support import assert_one_line_error, cli, column, csv_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plateau.cli import main

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

CSV = b"epoch,step,train_loss,val_loss\n0,9,2.0,1.5\n1,19,1.5,1.3\n2,29,1.2,1.4\n"
JSON = b'[{"epoch": 0, "val_loss": 1.5}, {"epoch": 1, "val_loss": 1.3}]'
COLUMNS = b'{"loss": [2.0, 1.5], "val_loss": [1.5, 1.3]}'
JSONL = b'{"epoch": 0, "val_loss": 1.5}\n{"epoch": 1, "val_loss": 1.3}\n'
BARE = b"[1.5, 1.3, 1.4]"
VALID = [CSV, JSON, COLUMNS, JSONL, BARE]


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


# --- JSON the json module chokes on ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"val_loss": [' + "[" * 50_000 + "]" * 50_000 + "]}",
        '{"val_loss": 1}\n' + "[" * 100_000 + "\n",
    ],
    ids=["list", "object-of-columns", "json-lines"],
)
def test_deeply_nested_json_is_one_line(tmp_path, text):
    assert_one_line_error(cli(write(tmp_path, "deep.json", text)), "nested too deeply")


@pytest.mark.parametrize(
    "text",
    [
        "[" + "1" * 5000 + "]",
        '{"val_loss": [' + "7" * 4301 + "]}",
        '{"val_loss": ' + "9" * 5000 + "}\n",
        '[{"val_loss": 1.0, "epoch": ' + "1" * 5000 + "}]",
    ],
    ids=["bare", "columns", "json-lines", "epoch"],
)
def test_an_integer_past_4300_digits_is_one_line(tmp_path, text):
    assert_one_line_error(cli(write(tmp_path, "big.json", text)), "digits")


def test_an_integer_of_4300_digits_is_too_large_for_a_float(tmp_path):
    path = write(tmp_path, "big.json", "[" + "1" * 4300 + "]")
    assert_one_line_error(cli(path), "item 0", "too large for a float")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"val_loss": [1], "val_loss": [2]}', "'val_loss'"),
        ('[{"val_loss": 1, "epoch": 0, "epoch": 1}]', "'epoch'"),
        ('{"val_loss": 1, "val_loss": 2}\n{"val_loss": 3}\n', "'val_loss'"),
        ('{"val_loss": 1}\n{"a\\nb": 1, "a\\nb": 2}\n', "line 2: duplicate key 'a\\nb'"),
    ],
)
def test_a_duplicate_json_key_is_refused_naming_it(tmp_path, text, key):
    assert_one_line_error(cli(write(tmp_path, "dup.json", text)), "duplicate key", key)


# --- file names with control characters ------------------------------------------------


@pytest.mark.parametrize("name", ["a\nb.csv", "tab\there.csv", "bell\x07.csv", "esc\x1b[31m.csv"])
def test_a_file_name_with_control_characters_is_escaped_in_one_line(tmp_path, name):
    path = write(tmp_path, name, "epoch,val_loss\n0,x\n")
    result = cli(path)
    assert_one_line_error(result, "'x' is not a number")
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    missing = cli(str(tmp_path / ("no\nsuch" + name)))
    assert_one_line_error(missing, "no such file")


# --- cells float() reads but no logger writes ------------------------------------------


@pytest.mark.parametrize(
    "cell", ["1_0", "\u0661", "\uff11", "\u00a01.0", "1.0\u2003", '"1.0\n"', "\u0661.5"]
)
def test_a_cell_float_takes_but_no_logger_writes_is_refused(tmp_path, cell):
    path = write(tmp_path, "m.csv", f"epoch,val_loss\n0,1.0\n1,{cell}\n")
    assert_one_line_error(cli(path), "m.csv", "column 'val_loss'", "is not a number")


@pytest.mark.parametrize("cell", ["1_0", "\u0661", "\uff12", "1.5"])
def test_an_epoch_cell_that_is_no_ascii_integer_is_refused(tmp_path, cell):
    path = write(tmp_path, "m.csv", f"epoch,val_loss\n{cell},1.0\n")
    assert_one_line_error(cli(path), "line 2", "column 'epoch'", "is not a whole number")


@pytest.mark.parametrize("text", ['["1_0"]', '[{"val_loss": "\u0661"}]', '{"val_loss": ["1 0"]}'])
def test_a_json_string_float_takes_but_no_logger_writes_is_refused(tmp_path, text):
    assert_one_line_error(cli(write(tmp_path, "m.json", text)), "is not a number")


def test_what_loggers_write_is_read(tmp_path):
    # numpy.savetxt(fmt="%10.4f") pads with spaces; R and pandas write NaN and Inf;
    # C's printf writes -nan and 1e+05.
    text = "epoch,val_loss\n0,    1.5000\n1,\t1e+05\n2,NaN\n3,-Inf\n4,-nan\n5,1e400\n 6 ,2\n"
    rows = csv_rows(write(tmp_path, "m.csv", text))
    expected = [1.5, 1e5, float("nan"), float("-inf"), float("nan"), float("inf"), 2.0]
    assert [repr(v) for v in column(rows, "metric")] == [repr(v) for v in expected]
    assert [row["epoch"] for row in rows] == [str(i) for i in range(7)]


# --- options read numbers as the readers do --------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--patience", "1_0"], "--patience: '1_0' is not an integer"),
        (["--cooldown", "\u0663"], "--cooldown: '\u0663' is not an integer"),
        (["--factor", "\u0660.5"], "--factor: '\u0660.5' is not a number"),
        (["--lr", "1_0"], "--lr: '1_0' is not a number"),
        (["--patience", "9" * 5000], "--patience: '99999"),
        (["--patience", "9223372036854775808"], "beyond 2**63 - 1"),
        (["--compare", "patience=1_0"], "'1_0' is not an integer"),
        (["--compare", "factor=" + "9" * 5000], "'factor' must be strictly between 0 and 1"),
        (["--min-lr", "1", "--min-lr", "1e400"], "'min_lr[1]' must be finite"),
    ],
)
def test_an_option_float_or_int_takes_but_no_logger_writes_is_refused(tmp_path, args, fragment):
    path = write(tmp_path, "m.csv", CSV)
    result = cli(path, *args)
    assert_one_line_error(result, fragment)
    assert len(result.stderr) < 400


# --- an unwritable output --------------------------------------------------------------


def test_a_closed_stdout_is_one_line(tmp_path):
    path = write(tmp_path, "m.csv", CSV)
    out, err = io.StringIO(), io.StringIO()
    out.close()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["simulate", path])
    assert code == 2
    assert err.getvalue() == "plateau: error: cannot write the output: stdout is closed\n"


@pytest.mark.parametrize("redirect", ["closed", "full"])
def test_an_unwritable_stdout_in_a_real_process_is_one_line(tmp_path, redirect):
    if redirect == "full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    path = write(tmp_path, "m.csv", CSV)
    shell = '"$0" -m plateau simulate "$1" ' + (">&-" if redirect == "closed" else ">/dev/full")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        ["sh", "-c", shell, sys.executable, path], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("plateau: error: cannot write the output")


def test_a_plot_that_cannot_be_written_is_one_line(tmp_path):
    pytest.importorskip("matplotlib")
    path = write(tmp_path, "m.csv", CSV)
    (tmp_path / "taken.png").mkdir()  # a directory where the image should go
    result = cli(path, "--plot", str(tmp_path / "taken.png"))
    assert_one_line_error(result, "cannot write")


def test_a_plot_into_a_read_only_directory_is_one_line(tmp_path):
    pytest.importorskip("matplotlib")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    path = write(tmp_path, "m.csv", CSV)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert_one_line_error(cli(path, "--plot", str(locked / "x.png")), "cannot write")
    finally:
        locked.chmod(0o755)


# --- the fuzz layer: mutated logs ------------------------------------------------------

_HOSTILE_TEXT = st.sampled_from(
    [b"1_0", "\u0661".encode(), "\uff11".encode(), b"\x00", b"\n", b"\r", b'"', b",", b"[",
     b"{", b"}", b"]", b"NaN", b"1e400", b"9" * 5000, b"[" * 3000, b"\xff", b"\xef\xbb\xbf",
     b'"val_loss": 1, "val_loss"', b"null", b"true", b" "]
)  # fmt: skip


@st.composite
def mutated_logs(draw):
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "random"]))
        if kind == "insert":
            data[at:at] = draw(_HOSTILE_TEXT)
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "replace":
            data[at : at + draw(st.integers(1, 4))] = draw(_HOSTILE_TEXT)
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=6))
    return bytes(data)


def assert_exit_0_or_one_line(result):
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        assert result.stdout
        assert all(line.startswith("plateau: warning: ") for line in result.stderr.splitlines())
    else:
        assert result.returncode == 2, (result.returncode, result.stderr)
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("plateau: error: ") and result.stdout == ""


@FUZZ
@given(data=mutated_logs(), form=st.sampled_from(["table", "csv", "json"]))
def test_a_mutated_log_on_stdin_is_exit_0_or_one_line(data, form):
    assert_exit_0_or_one_line(cli("-", "--format", form, stdin=data))


@settings(max_examples=60, deadline=None)
@given(data=mutated_logs(), name=st.text(min_size=1, max_size=6))
def test_a_mutated_log_file_with_any_name_is_exit_0_or_one_line(tmp_path_factory, data, name):
    directory = tmp_path_factory.mktemp("fuzz")
    safe = name.replace("/", "_").replace("\x00", "_")
    path = directory / f"{safe}.log"
    try:
        path.write_bytes(data)
    except (OSError, UnicodeEncodeError):
        return  # a name the file system refuses
    assert_exit_0_or_one_line(cli(str(path)))


@FUZZ
@given(text=st.text(max_size=40))
def test_any_text_log_is_exit_0_or_one_line(text):
    assert_exit_0_or_one_line(cli("-", stdin=text.encode("utf-8", "surrogatepass")))


# --- TensorBoard event files and MLflow metric files -----------------------------------


@pytest.mark.parametrize(
    "line",
    ["1000 1_0 0", "1000 \u0661 0", "1_000 0.5 0", "1000 0.5 \u0662", "1000 0.5 " + "9" * 30],
)
def test_an_mlflow_metric_line_that_is_no_logger_number_is_refused(tmp_path, line):
    from test_cli_formats import write_file_store

    experiment = write_file_store(tmp_path, {"a1": {"val_loss": [(0, 1.0)]}})
    (experiment / "a1" / "metrics" / "val_loss").write_text(f"1001 0.5 1\n{line}\n")
    assert_one_line_error(cli(experiment / "a1"), "val_loss, line 2")
