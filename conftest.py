"""Test-session setup shared by tests/ and the doctests in plateau/."""

from __future__ import annotations

import importlib.util
import os

# Keras picks its backend once, at import; TensorFlow is never installed here.
os.environ.setdefault("KERAS_BACKEND", "jax")

# An adapter's doctests need its framework; skip collecting them when it is absent.
collect_ignore = [
    f"plateau/adapters/{name}.py"
    for name, module in (("torch", "torch"), ("keras", "keras"), ("optax", "optax"))
    if importlib.util.find_spec(module) is None
]
