"""Test-session setup shared by tests/ and the doctests in plateau/."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from _pytest.doctest import DoctestModule

# Keras picks its backend once, at import; TensorFlow is never installed here.
os.environ.setdefault("KERAS_BACKEND", "jax")

# An adapter's doctests need its framework; skip collecting them when it is absent.
# (So does the distributed test's worker module, which only spawned ranks import.)
_NEEDS = {
    "plateau/adapters/torch.py": "torch",
    "plateau/adapters/_torch_capturable.py": "torch",
    "plateau/adapters/_torch_dist.py": "torch",
    "plateau/adapters/keras.py": "keras",
    "plateau/adapters/_keras_restore.py": "keras",
    "plateau/adapters/optax.py": "optax",
    "plateau/adapters/optax_restore.py": "optax",
    "plateau/adapters/optax_graph.py": "optax",
    "plateau/adapters/_state_pytree.py": "jax",
    "plateau/adapters/restore.py": "torch",
    "plateau/adapters/_trainer.py": "torch",
    "plateau/adapters/lightning.py": "pytorch_lightning",
    "plateau/adapters/transformers.py": "transformers",
    "tests/adapters/_torch_dist_worker.py": "torch",
}
_TESTS = Path(__file__).parent / "tests"
collect_ignore = [path for path, module in _NEEDS.items() if not importlib.util.find_spec(module)]


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Generator[None, Any, Any]:
    """No doctest collection under tests/: it would import each test module a second time."""
    collected = yield
    if _TESTS in file_path.parents:
        return [node for node in collected if not isinstance(node, DoctestModule)]
    return collected
