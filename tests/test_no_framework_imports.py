"""`import plateau` and the whole core load no framework, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAMEWORKS = ["torch", "jax", "jaxlib", "optax", "keras", "tensorflow", "numpy", "matplotlib"]

SCRIPT = f"""
import sys
import plateau
config = plateau.PlateauConfig(patience=1, min_lr=[0.0, 0.1])
state = plateau.init([1.0, 0.5], config)
for metric in [3.0, 2.0, 2.5, 2.5, 2.5, float("nan")]:
    state, lrs = plateau.step(state, metric, config)
plateau.simulate([1, 2, 3], config, [1.0, 0.5])
plateau.PlateauState.from_dict(state.to_dict())
plateau.PlateauConfig.from_keras(patience=3)
plateau.PlateauConfig.from_optax(patience=3)
import plateau.adapters
loaded = [name for name in {FRAMEWORKS!r} if name in sys.modules]
print(",".join(loaded))
"""

# What the adapters share, which only they import.
SHARED = ["plateau.adapters._shared"]

# `import plateau` loads no adapter nor what they share (import time is a benchmark
# target); the shared module, imported alone, loads no framework either.
LAZY = """
import importlib
import sys
import plateau
lazy = [name for name in sys.modules if name.startswith("plateau.adapters.")]
for name in SHARED:
    importlib.import_module(name)
lazy += [name for name in FRAMEWORKS if name in sys.modules]
print(",".join(lazy))
"""


def test_core_loads_no_framework():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_the_check_itself_can_see_a_framework():
    """Guard against a vacuous test: the same script does report a framework it loaded."""
    pytest.importorskip("numpy")
    result = subprocess.run(
        [sys.executable, "-c", "import numpy\n" + SCRIPT],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "numpy"


def test_plateau_imports_no_adapter_nor_what_they_share():
    script = f"FRAMEWORKS = {FRAMEWORKS!r}\nSHARED = {SHARED!r}\n" + LAZY
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("module", SHARED)
def test_the_lazy_check_can_see_the_shared_module(module):
    """Guard against a vacuous test: a module imported first is reported."""
    script = f"FRAMEWORKS = {FRAMEWORKS!r}\nSHARED = {SHARED!r}\nimport {module}\n" + LAZY
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == module
