"""The distribution: one source for the version, and an sdist that can test itself.

.ci/run runs this file from an unpacked sdist too, where the file checks below are
the real check of pyproject.toml's sdist include list.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

import plateau

ROOT = Path(__file__).parents[1]
DISTRIBUTION = "plateau-lr"  # the name on the package index; the import is `plateau`


def test_version_is_the_installed_distributions():
    try:
        installed = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"the {DISTRIBUTION} distribution is not installed")
    assert plateau.__version__ == installed


def test_pyproject_reads_the_version_from_the_package():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == DISTRIBUTION
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "plateau/__init__.py"


# What the tests read beyond tests/: conftest.py sets KERAS_BACKEND (without it the
# Keras tests skip), tests/test_docs.py reads README.md and docs/, test_cli.py the
# bundled log and docs/schedule.png.
NEEDED = [
    "conftest.py",
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "CONTRIBUTING.md",
    "docs/index.md",
    "docs/schedule.png",
    "examples/digits_metrics.csv",
    "examples/train_digits.py",
    "benchmarks/bench.py",
    "tests/golden/torch_traces.json",
]


@pytest.mark.parametrize("path", NEEDED)
def test_the_tree_carries_what_the_tests_read(path):
    assert (ROOT / path).is_file(), f"{path} is missing (the sdist include list?)"


def test_the_sdist_include_list_covers_what_the_tests_read():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = set(pyproject["tool"]["hatch"]["build"]["targets"]["sdist"]["include"])
    missing = {path.split("/")[0] for path in NEEDED} - include
    assert not missing, f"add to [tool.hatch.build.targets.sdist] include: {sorted(missing)}"
