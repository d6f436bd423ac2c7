"""The README's complete code examples run as written, and say what they print."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).parents[1] / "README.md").read_text()


def first_python_block(heading: str) -> str:
    section = README.split(f"\n{heading}\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, f"no python block under {heading!r}"
    return match.group(1)


def run(code: str, tmp_path: Path) -> str:
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_quickstart_prints_what_the_readme_says(tmp_path):
    out = run(first_python_block("## Quickstart"), tmp_path).splitlines()
    assert out[-2:] == ["0.70  lr=0.05  reduced", "0.69  lr=0.05  improved"]
    claim = re.search(r"The last lines print `(.*?)` then `(.*?)`", README.replace("\n", " "))
    assert claim and [c.replace("  ", " ") for c in claim.groups()] == [
        line.replace("  ", " ") for line in out[-2:]
    ]


@pytest.mark.slow
def test_keras_example_runs(tmp_path):
    pytest.importorskip("keras")
    out = run(first_python_block("## Keras 3"), tmp_path)
    claim = re.search(r"prints Keras's own message, e.g.\s+`(Epoch [^`]*)`", README)
    assert claim and claim.group(1) in out
    assert (tmp_path / "plateau_state.json").exists()


@pytest.mark.slow
def test_optax_example_runs(tmp_path):
    pytest.importorskip("optax")
    out = run(first_python_block("## JAX / optax"), tmp_path)
    assert "reduced" in out
