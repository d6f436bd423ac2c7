"""The optax adapter on a JAX device mesh: a cut never recompiles the train step (issue 22).

Each run is a subprocess: the 8 CPU devices exist only if XLA_FLAGS is set before
jax is first imported, and this process may have imported it already. The child
trains a sharded model (params split over a 4-device mesh, the lr replicated) with
a jitted step, cuts the lr from the host with ``plateau_optax.step``, and prints
what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("optax")
pytest.importorskip("jax")

CHILD = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np, optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import plateau
from plateau.adapters import optax as plateau_optax


def train(axes, where, weak):
    devices = jax.devices()[:4]
    if axes == "explicit":  # jax.make_mesh's default axis types (Explicit) in jax 0.10
        mesh = jax.make_mesh((4,), ("data",), devices=devices)
    else:
        mesh = Mesh(np.array(devices), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    params = {"w": jax.device_put(jnp.ones(8), NamedSharding(mesh, PartitionSpec("data")))}
    if where == "scale":
        schedule = optax.cosine_decay_schedule(0.1, decay_steps=100)
        tx = optax.chain(optax.adam(schedule), plateau_optax.scale_by_plateau())
    else:
        tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    opt_state = tx.init(params)
    # The scalars (the lr, adam's count) replicated; mu and nu are sharded as the params.
    opt_state = jax.tree.map(lambda x: x if x.ndim else jax.device_put(x, replicated), opt_state)
    if weak == "weak":  # a weakly typed scale, as jnp.asarray(1.0) makes
        scale = plateau_optax.ScaleByPlateauState(jax.device_put(jnp.asarray(1.0), replicated))
        opt_state = (opt_state[0], scale)

    def lr_of(state):
        return state[1].scale if where == "scale" else state.hyperparams["learning_rate"]

    first = lr_of(opt_state)

    @jax.jit
    def train_step(params, opt_state):
        grads = jax.tree.map(jnp.ones_like, params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    config = plateau.PlateauConfig(patience=0, factor=0.5)
    state, opt_state = plateau_optax.start(opt_state, config)
    seen = []
    for metric in [1.0, 2.0, 3.0, 0.5, 0.6, 0.7]:
        params, opt_state = train_step(params, opt_state)
        state, opt_state = plateau_optax.step(state, metric, config, opt_state)
        lr = lr_of(opt_state)
        seen.append({
            "lr": float(lr),
            "decision": state.decision.value,
            "sharding": lr.sharding == first.sharding,
            "dtype": lr.dtype == first.dtype,
            "weak_type": lr.weak_type == first.weak_type,
        })
    params, opt_state = train_step(params, opt_state)
    return {"weak": bool(first.weak_type), "compiles": train_step._cache_size(), "epochs": seen}


results = {}
for case in sys.argv[1:]:
    try:
        results[case] = train(*case.split("-"))
    except Exception as exc:
        results[case] = {"error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(results))
"""

XLA_FLAGS = "--xla_force_host_platform_device_count=8"
# axes-where-weak: Auto axes (Mesh) or Explicit ones (jax.make_mesh's default in jax
# 0.10); an injected lr or scale_by_plateau's scale; a strong or weakly typed lr.
CASES = ["auto-inject-strong", "auto-scale-strong", "auto-scale-weak", "explicit-inject-strong"]


@pytest.fixture(scope="module")
def results():
    """Every case's run, from one child process (its jax import and compiles are shared)."""
    env = {**os.environ, "XLA_FLAGS": XLA_FLAGS, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *CASES], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", CASES)
def test_cuts_keep_the_lrs_sharding_dtype_and_weak_type_and_compile_once(results, case):
    result = results[case]
    assert "error" not in result, result["error"]
    epochs = result["epochs"]
    assert result["weak"] is case.endswith("-weak")
    # plateau.step's decisions on these metrics: the mesh changes nothing.
    assert [epoch["decision"] for epoch in epochs] == [
        "improved", "reduced", "reduced", "improved", "reduced", "reduced",
    ]  # fmt: skip
    lrs = [epoch["lr"] / epochs[0]["lr"] for epoch in epochs]
    assert lrs == pytest.approx([1.0, 0.5, 0.25, 0.25, 0.125, 0.0625], rel=1e-6)
    for epoch in epochs:
        assert (epoch["sharding"], epoch["dtype"], epoch["weak_type"]) == (True, True, True), epoch
    assert result["compiles"] == 1
