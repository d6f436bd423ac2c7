"""Run `plateau simulate` in-process and read what it printed.

`cli(...)` calls `plateau.cli.main` in this process with stdout and stderr
captured (and stdin replaced when given), so that a test costs no interpreter
start-up. tests/test_cli_smoke.py keeps the few checks that need a real process.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import random
import sys
from pathlib import Path

import attrs

from plateau.cli import main

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "examples" / "digits_metrics.csv"


@attrs.frozen
class Result:
    returncode: int
    stdout: str
    stderr: str


def cli(*args, stdin=None):
    """`plateau simulate ARGS`, in-process: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    if stdin is not None:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(data))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["simulate", *map(str, args)])
    finally:
        sys.stdin = saved_stdin
    return Result(code, out.getvalue(), err.getvalue())


def ok(result):
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def csv_rows(*args, **kwargs):
    return list(csv.DictReader(io.StringIO(ok(cli(*args, "--format", "csv", **kwargs)))))


def json_doc(*args, **kwargs):
    return json.loads(ok(cli(*args, "--format", "json", **kwargs)))


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("plateau: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def column(rows, name):
    return [float(row[name]) for row in rows]


def same(a, b):
    """Bit-for-bit equality of float lists, NaN equal to NaN."""
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b)
    )


def random_stream(seed, n=40, nan_at=()):
    """A noisy, plateauing loss curve: reductions happen under small patience."""
    rng = random.Random(seed)
    values = [0.2 + 2.0 / (1 + epoch) + rng.uniform(0, 0.15) for epoch in range(n)]
    for i in nan_at:
        values[i] = math.nan
    return values


def write_lightning_shaped(path, losses):
    lines = ["epoch,step,train_loss,val_loss"]
    for epoch, loss in enumerate(losses):
        lines.append(f"{epoch},{10 * epoch + 4},{1.0 + epoch!r},")
        lines.append(f"{epoch},{10 * epoch + 9},,{loss!r}")
    path.write_text("\n".join(lines) + "\n")
