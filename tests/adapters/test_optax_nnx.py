"""The optax adapter inside flax nnx: an nnx.Optimizer's state, a cut, and nnx.jit traced once."""

from __future__ import annotations

import pytest

import plateau

pytest.importorskip("optax")
pytest.importorskip("flax.nnx")
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from trainers._compat import claim

from plateau.adapters import optax as plateau_optax

# This module's row in docs/compatibility.md (tests/trainers/make_table.py).
TRAINER = "flax nnx `nnx.Optimizer` (optax adapter)"
TESTED_WITH = "flax==0.12.8"
NOTE = "the lr's OptArray container is kept, so nnx.jit traces the train step once"


class Linear(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.layer = nnx.Linear(3, 1, rngs=rngs)

    def __call__(self, x):
        return self.layer(x)


@claim("works")
def test_a_cut_keeps_nnx_s_container_and_the_jitted_step_uses_it_untraced():
    model = Linear(nnx.Rngs(0))
    optimizer = nnx.Optimizer(
        model, optax.inject_hyperparams(optax.sgd)(learning_rate=0.5), wrt=nnx.Param
    )
    container = type(optimizer.opt_state.hyperparams["learning_rate"])
    traces: list[int] = []
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 3)), jnp.float32)
    y = jnp.zeros((8, 1))

    @nnx.jit
    def train_step(model, optimizer):
        traces.append(1)  # runs only while tracing
        grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)
        return grads

    config = plateau.PlateauConfig(patience=0, factor=0.5)
    state = plateau_optax.init(optimizer.opt_state, config)
    used = []
    for val_loss in [1.0, 2.0, 3.0, 0.5, 4.0]:
        lr = plateau_optax.get_lrs(optimizer.opt_state)[0]
        before = np.asarray(model.layer.kernel[...])
        grads = train_step(model, optimizer)
        step_taken = np.asarray(model.layer.kernel[...]) - before
        # The jitted update really uses the lr set from the host.
        np.testing.assert_allclose(step_taken, -lr * np.asarray(grads.layer.kernel[...]), rtol=1e-5)
        used.append(lr)
        state, optimizer.opt_state = plateau_optax.step(
            state, val_loss, config, optimizer.opt_state
        )
        assert type(optimizer.opt_state.hyperparams["learning_rate"]) is container
    assert used == [0.5, 0.5, 0.25, 0.125, 0.125]
    assert state.lrs == (0.0625,)
    assert len(traces) == 1
