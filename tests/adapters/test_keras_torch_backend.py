"""The Keras adapter in a real fit under KERAS_BACKEND=torch, against Keras's own callback.

Keras chooses its backend once, at import, and this test session imports it with
jax; the torch run therefore happens in a fresh interpreter.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("keras")

SCRIPT = textwrap.dedent(
    """
    import json

    import keras
    import numpy as np

    from plateau.adapters.keras import ReduceLROnPlateau

    rng = np.random.default_rng(7)
    w = np.array([[1.0], [-2.0], [0.5], [0.0]], dtype="float32")
    x = rng.normal(size=(96, 4)).astype("float32")
    y = x @ w + rng.normal(scale=0.5, size=(96, 1)).astype("float32")
    xv = rng.normal(size=(32, 4)).astype("float32")
    yv = xv @ w + rng.normal(scale=0.5, size=(32, 1)).astype("float32")
    args = {"patience": 1, "factor": 0.5, "min_delta": 1e-3, "cooldown": 1, "min_lr": 0.01}

    def run(callback):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(learning_rate=0.3), loss="mse")
        history = model.fit(
            x, y, validation_data=(xv, yv), epochs=14, batch_size=16,
            shuffle=False, verbose=0, callbacks=[callback],
        )
        return history.history

    ours = ReduceLROnPlateau(**args)
    print(json.dumps({
        "backend": keras.backend.backend(),
        "ours": run(ours),
        "theirs": run(keras.callbacks.ReduceLROnPlateau(**args)),
        "decision": ours.state.decision.value,
    }))
    """
)


@pytest.mark.slow
def test_fit_under_torch_backend_matches_keras_callback():
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "torch"
    assert result["ours"] == result["theirs"]
    lrs = result["ours"]["learning_rate"]
    assert sum(b < a for a, b in itertools.pairwise(lrs)) >= 3
    assert lrs[-1] == 0.009999999776482582  # float32(0.01): the floor was reached
