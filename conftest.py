"""Test-session setup shared by tests/ and the doctests in plateau/."""

from __future__ import annotations

import importlib.util
import os

# Keras picks its backend once, at import; TensorFlow is never installed here.
os.environ.setdefault("KERAS_BACKEND", "jax")

# An adapter's doctests need its framework; skip collecting them when it is absent.
# (So does the distributed test's worker module, which only spawned ranks import.)
_NEEDS = {
    "plateau/adapters/torch.py": "torch",
    "plateau/adapters/keras.py": "keras",
    "plateau/adapters/optax.py": "optax",
    "tests/adapters/_torch_dist_worker.py": "torch",
}
collect_ignore = [path for path, module in _NEEDS.items() if not importlib.util.find_spec(module)]
