"""A plateau per batch in an optax loop: in the graph against the host adapter, as ratios.

    python benchmarks/bench_optax_graph.py          # needs jax and optax

Each contender trains the same small linear model for STEPS batches with adam,
one jitted train step per batch, and gets the batch's training loss as the metric:

- "no plateau": the train step alone, the reference every ratio divides by;
- "in the graph": ``plateau_optax.reduce_on_plateau(config)`` chained after adam,
  the loss passed as ``value=`` inside the jitted step (nothing read back);
- "optax.contrib": ``optax.contrib.reduce_on_plateau`` chained the same way, with
  the arguments of ``PlateauConfig.from_optax`` (the same rules);
- "host step": ``plateau_optax.step`` after each jitted step, with
  ``scale_by_plateau()`` in the chain: the loss is read to the host every batch.

Before timing, "in the graph" and "host step" are checked to make the same cuts
(the in-graph scale applies from the same batch, the host's from the next).
Contenders are interleaved round by round; the verdict is the ratio of the best
wall-clock times (a host sync is what is measured, so not CPU time). On a GPU the
host step also waits for the device at every batch, which CPU runs do not show.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import plateau
from plateau.adapters import optax as plateau_optax

ROUNDS = 7
STEPS = 1000
OPTAX_ARGUMENTS = {"factor": 0.5, "patience": 20, "rtol": 1e-4, "cooldown": 10}
CONFIG = plateau.PlateauConfig.from_optax(**OPTAX_ARGUMENTS)

rng = np.random.default_rng(0)
X = jnp.asarray(rng.normal(size=(STEPS, 32, 8)), jnp.float32)
Y = X @ jnp.asarray(rng.normal(size=8), jnp.float32) + 0.3 * jnp.asarray(
    rng.normal(size=(STEPS, 32)), jnp.float32
)
PARAMS = {"w": jnp.zeros(8), "b": jnp.zeros(())}


def loss_fn(params, x, y):
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def graph_loop(tx):
    """A loop of jitted steps where `tx` takes the batch's loss as ``value=`` (or ignores it)."""

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params, value=loss)
        return optax.apply_updates(params, updates), opt_state

    def run():
        params, opt_state = PARAMS, tx.init(PARAMS)
        for i in range(STEPS):
            params, opt_state = train_step(params, opt_state, X[i], Y[i])
        return jax.block_until_ready(opt_state)

    return run


def host_loop():
    tx = optax.chain(optax.adam(0.05), plateau_optax.scale_by_plateau())

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def run():
        params = PARAMS
        state, opt_state = plateau_optax.start(tx.init(PARAMS), CONFIG)
        for i in range(STEPS):
            params, opt_state, loss = train_step(params, opt_state, X[i], Y[i])
            state, opt_state = plateau_optax.step(state, loss, CONFIG, opt_state)
        return state

    return run


def main() -> int:
    contenders = {
        "no plateau": graph_loop(optax.adam(0.05)),
        "in the graph": graph_loop(
            optax.chain(optax.adam(0.05), plateau_optax.reduce_on_plateau(CONFIG))
        ),
        "optax.contrib": graph_loop(
            optax.chain(optax.adam(0.05), optax.contrib.reduce_on_plateau(**OPTAX_ARGUMENTS))
        ),
        "host step": host_loop(),
    }
    graph_state, host_state = contenders["in the graph"]()[1], contenders["host step"]()
    cuts = graph_state.to_plateau_state(CONFIG).num_reductions
    if not cuts or cuts != host_state.num_reductions:
        print(f"the in-graph run cut {cuts} times, the host run {host_state.num_reductions}")
        return 1
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(ROUNDS):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    print(f"{STEPS} batches, {cuts} cuts, best of {ROUNDS} rounds, on {jax.devices()[0]}")
    for name, seconds in best.items():
        ratio = seconds / best["no plateau"]
        print(f"{name:14} {seconds / STEPS * 1e6:8.1f} us/batch  {ratio:5.2f}x no plateau")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
