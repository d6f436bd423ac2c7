"""`plateau simulate` as a user runs it, in a real process: the few checks that need one.

The console script, `python -m plateau`, stdin, exit codes, a closed pipe and a
fresh interpreter's imports. Everything else runs in-process (test_cli.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli.support import BUNDLED, assert_one_line_error, random_stream

import plateau
from plateau import PlateauConfig


def run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "plateau", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_console_script_matches_python_dash_m():
    script = shutil.which("plateau", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the plateau console script is not installed next to this Python")
    args = ["simulate", str(BUNDLED), "--patience", "3", "--format", "json"]
    result = subprocess.run([script, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    by_module = run(*args)
    assert by_module.returncode == 0 and by_module.stderr == ""
    assert json.loads(result.stdout) == json.loads(by_module.stdout)


def test_stdin_and_exit_codes():
    losses = [0.9, 0.7, 0.69, 0.69, 0.7]
    result = run("simulate", "-", "--patience", "1", "--format", "json", stdin=json.dumps(losses))
    assert result.returncode == 0 and result.stderr == ""
    expected = plateau.simulate(losses, PlateauConfig(patience=1))
    assert [r["lr"] for r in json.loads(result.stdout)["rows"]] == [s.lrs[0] for s in expected]
    assert_one_line_error(
        run("simulate", "-", stdin="epoch,val_loss\n0,zero\n"), "<stdin>", "'zero'"
    )
    assert_one_line_error(run(), "COMMAND")  # no command: a usage error, exit 2


def test_cli_imports_no_framework_without_plot():
    script = (
        "import contextlib, io, sys\n"
        "from plateau.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main(['simulate', {str(BUNDLED)!r}, '--format', 'json'])\n"
        "heavy = ['matplotlib', 'numpy', 'torch', 'keras', 'jax', 'pytorch_lightning']\n"
        "print(code, [m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "0 []", result.stderr


@pytest.mark.skipif(os.name != "posix", reason="needs a POSIX pipe")
def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    path = tmp_path / "long.json"
    path.write_text(json.dumps(random_stream(9, n=20_000)))  # far more than a pipe buffers
    command = f"'{sys.executable}' -m plateau simulate '{path}' --format csv | head -n 2"
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines()[0].startswith("row,metric")  # a bare list: rows
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == ""
