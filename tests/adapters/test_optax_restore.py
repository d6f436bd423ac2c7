"""plateau.adapters.optax_restore in a real jitted optax loop (issue 24, optax).

At each cut the loop must get back the params and optimizer state of the best step,
compared with copies the test took itself at that step, holding the new, cut lr;
and a run resumed from an orbax checkpoint must continue the uninterrupted one bit
for bit.
"""

from __future__ import annotations

import pytest

import plateau
from plateau import Decision

pytest.importorskip("optax")
import jax
import jax.numpy as jnp
import numpy as np
import optax

from plateau.adapters import optax as plateau_optax
from plateau.adapters.optax_restore import Best, keep_or_restore

CONFIG = plateau.PlateauConfig(patience=1, factor=0.5)
# Improved at steps 1, 2 and 5; cut at steps 4 and 7 (and nothing else restores).
VAL_LOSSES = [1.0, 0.8, 0.9, 0.95, 0.7, 0.75, 0.8, 0.85]
X = jax.random.normal(jax.random.key(0), (16, 3))
Y = X @ jnp.array([1.0, -2.0, 0.5]) + 0.3

# name: (the optimizer, the names of its state's buffers a restore brings back)
OPTIMIZERS = {
    "adam": (
        lambda: optax.inject_hyperparams(optax.adam)(learning_rate=0.1),
        ("mu", "nu", "count"),  # count: Adam's and inject_hyperparams's
    ),
    "sgd_momentum_scale": (
        lambda: optax.chain(optax.sgd(0.1, momentum=0.9), plateau_optax.scale_by_plateau()),
        ("trace",),
    ),
}


def new_run(name):
    """The jitted train step, and the params, optimizer and plateau states to start from."""
    tx = OPTIMIZERS[name][0]()
    traces = []

    @jax.jit
    def train_step(params, opt_state):
        traces.append(1)

        def loss(p):
            return jnp.mean((X @ p["w"] + p["b"] - Y) ** 2)

        updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    state, opt_state = plateau_optax.start(tx.init(params), CONFIG)
    return train_step, traces, params, opt_state, state


def run_steps(train_step, params, opt_state, state, best, val_losses):
    """Train, step and keep or restore once per loss; each step's host copies too."""
    history = []
    for val_loss in val_losses:
        params, opt_state = train_step(params, opt_state)
        state, opt_state = plateau_optax.step(state, val_loss, CONFIG, opt_state)
        trained = host_copy((params, opt_state))
        best, params, opt_state, restored = keep_or_restore(best, state, params, opt_state)
        history.append((state, best, trained, host_copy((params, opt_state)), restored))
    return params, opt_state, state, best, history


def buffers(opt_state, name):
    """Every leaf called `name` in `opt_state` (at least one)."""
    found = [value for _, value in optax.tree_utils.tree_get_all_with_path(opt_state, name)]
    assert found
    return found


def host_copy(tree):
    return jax.tree.map(np.array, tree)


def assert_equal_trees(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert np.asarray(a).dtype == np.asarray(e).dtype
        assert np.array_equal(a, e)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_cut_restores_the_best_steps_params_and_state_with_the_cut_lr(name):
    train_step, traces, params, opt_state, state = new_run(name)
    *_, history = run_steps(train_step, params, opt_state, state, None, VAL_LOSSES)

    restored_at, kept = [], None  # kept: the test's own copy at the last improvement
    for step_state, best, trained, (params, opt_state), restored in history:
        if step_state.decision is Decision.IMPROVED:
            kept = (step_state.last_epoch, *trained)
        assert best.epoch == kept[0]
        if not restored:
            assert_equal_trees((params, opt_state), trained)
            continue
        restored_at.append(step_state.last_epoch)
        _, best_params, best_opt_state = kept
        assert not np.array_equal(params["w"], trained[0]["w"])  # the cut changed something
        assert_equal_trees(params, best_params)
        for buffer in OPTIMIZERS[name][1]:
            assert_equal_trees(buffers(opt_state, buffer), buffers(best_opt_state, buffer))
        # The lr (or scale) is the new, cut one: half the best step's.
        assert plateau_optax.get_lrs(opt_state) == step_state.lrs
        assert step_state.lrs == (plateau_optax.get_lrs(best_opt_state)[0] * 0.5,)
    assert restored_at == [4, 7]
    assert traces == [1]  # the restored state fits the compiled step, which never retraces


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_run_resumed_from_an_orbax_checkpoint_continues_bit_for_bit(tmp_path, name):
    ocp = pytest.importorskip("orbax.checkpoint")
    train_step, _, *start = new_run(name)
    *_, uninterrupted = run_steps(train_step, *start, None, VAL_LOSSES)

    saved_at = 5  # after the improvement at step 5: the resumed run restores it at step 7
    *stopped, _ = run_steps(train_step, *start, None, VAL_LOSSES[:saved_at])
    keys = ["params", "opt_state", "plateau", "best"]  # run_steps's order
    saved = dict(zip(keys, stopped, strict=True))
    checkpointer = ocp.StandardCheckpointer()
    try:
        checkpointer.save(tmp_path / "ckpt", saved)
        checkpointer.wait_until_finished()
        # A new process has only a freshly built run, its best as one would hold it.
        _, _, params, opt_state, state = new_run(name)
        fresh = {"params": params, "opt_state": opt_state, "plateau": state}
        fresh["best"] = Best(0, params, opt_state)
        template = jax.tree.map(ocp.utils.to_shape_dtype_struct, fresh)
        restored = checkpointer.restore(tmp_path / "ckpt", template)
    finally:
        checkpointer.close()
    assert type(restored["best"].epoch) is int  # as the Best it was saved from
    assert restored["best"].epoch == saved["best"].epoch == saved_at
    *_, resumed = run_steps(train_step, *(restored[k] for k in keys), VAL_LOSSES[saved_at:])

    assert [restored for *_, restored in resumed] == [False, True, False]
    for (state, best, *trees), (expected_state, expected_best, *expected) in zip(
        resumed, uninterrupted[saved_at:], strict=True
    ):
        assert state == expected_state
        assert best.epoch == expected_best.epoch
        assert_equal_trees(trees, expected)
        assert_equal_trees(best[1:], expected_best[1:])


def test_nothing_is_restored_before_a_best_exists_or_without_a_cut():
    params, opt_state = {"w": jnp.ones(2)}, optax.inject_hyperparams(optax.sgd)(0.1).init({})
    for decision, best in [
        (Decision.REDUCED, None),
        (Decision.NO_IMPROVEMENT, Best(0, {"w": jnp.zeros(2)}, opt_state)),
    ]:
        state = plateau.PlateauState(lrs=[0.05], best=1.0, decision=decision)
        assert keep_or_restore(best, state, params, opt_state) == (best, params, opt_state, False)


@pytest.mark.parametrize(
    "best, state, message",
    [
        (None, "reduced", "'state' must be a plateau.PlateauState, got str: 'reduced'"),
        ((0, {}, {}), None, "'best' must be a Best or None, got tuple: (0, {}, {})"),
    ],
)
def test_bad_arguments_are_named(best, state, message):
    state = state or plateau.PlateauState(lrs=[0.1], best=1.0)
    with pytest.raises(TypeError) as raised:
        keep_or_restore(best, state, {}, {})
    assert str(raised.value) == message
