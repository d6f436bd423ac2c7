"""The trend detectors reach every surface: torch's and Keras's keywords, the optax adapter.

Each adapter's lrs on a noisy stream equal plateau.simulate's under the same config,
so a detector set on a surface is the core's detector, not a look-alike.
"""

from __future__ import annotations

import random

import pytest

import plateau

DETECTORS = [
    {"detector": "window_best", "window": 3},
    {"detector": "slope", "window": 6, "alpha": 0.2},
]


def noisy_stream(seed, n=60):
    rng = random.Random(seed)
    return [1.0 / (1 + 0.2 * i) + rng.gauss(0.0, 0.05) for i in range(n)]


@pytest.mark.parametrize("fields", DETECTORS, ids=lambda f: f["detector"])
@pytest.mark.parametrize("seed", range(5))
def test_the_torch_scheduler_takes_the_detector_as_keywords(fields, seed):
    torch = pytest.importorskip("torch")
    from plateau.adapters.torch import ReduceLROnPlateau

    values = noisy_stream(seed)
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
    scheduler = ReduceLROnPlateau(optimizer, patience=2, factor=0.5, **fields)
    lrs = []
    for value in values:
        optimizer.step()
        scheduler.step(value)
        lrs.append(optimizer.param_groups[0]["lr"])
    config = plateau.PlateauConfig(patience=2, factor=0.5, **fields)
    assert lrs == [state.lrs[0] for state in plateau.simulate(values, config)]
    assert scheduler.state.window == plateau.simulate(values, config)[-1].window


@pytest.mark.parametrize("fields", DETECTORS, ids=lambda f: f["detector"])
def test_the_optax_adapter_follows_the_detector(fields):
    pytest.importorskip("optax")
    import jax.numpy as jnp
    import optax

    from plateau.adapters import optax as plateau_optax

    values = noisy_stream(7)
    config = plateau.PlateauConfig(patience=2, factor=0.5, **fields)
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=1.0)
    opt_state = tx.init({"w": jnp.zeros(2)})
    state = plateau_optax.init(opt_state, config)
    lrs = []
    for value in values:
        state, opt_state = plateau_optax.step(state, value, config, opt_state)
        lrs.append(plateau_optax.get_lrs(opt_state)[0])
    assert lrs == [s.lrs[0] for s in plateau.simulate(values, config)]


def test_the_keras_callback_takes_the_detector_as_keywords():
    pytest.importorskip("keras")
    import inspect

    from plateau.adapters.keras import ReduceLROnPlateau

    callback = ReduceLROnPlateau(patience=3, detector="slope", window=5, alpha=0.1)
    assert {"detector", "window", "alpha"} <= set(inspect.signature(ReduceLROnPlateau).parameters)
    assert (callback.config.detector, callback.config.window, callback.config.alpha) == (
        "slope",
        5,
        0.1,
    )
