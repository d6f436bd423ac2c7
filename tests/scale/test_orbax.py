"""A PlateauState saves and restores inside a standard orbax-checkpoint tree (issue 22).

Flax and optax users keep their whole train state in one pytree and save it with
orbax's standard handlers; the plateau state goes beside the optimizer state. A
restore (into the abstract tree, as orbax asks) must give the same state, and the
run resumed from it the uninterrupted run's lrs and decisions.
"""

from __future__ import annotations

import attrs
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
ocp = pytest.importorskip("orbax.checkpoint")

import jax.numpy as jnp  # noqa: E402

import plateau  # noqa: E402
from plateau.adapters import optax as plateau_optax  # noqa: E402

METRICS = [1.0, 0.9, 0.8, 0.85, 0.86, 0.87, 0.7, 0.6, 0.65, 0.66, 0.67, 0.68, 0.5, 0.55, 0.56]
BASE = {"patience": 1, "factor": 0.5, "cooldown": 1}

# name: (config fields beyond BASE, epochs stepped before the save)
CASES = {
    "fresh": ({}, 0),
    "mid_warmup": ({"warmup_epochs": 3, "warmup_start_factor": 0.1}, 1),
    "cut": ({}, 5),
    "mid_block": ({"accumulation_size": 2}, 5),
    "smoothed": ({"ema_decay": 0.5}, 5),
    "capped": ({"max_reductions": 1}, 6),
    # A fresh template still holds base_lrs (the warmup's); the checkpoint has None.
    "warmup_ended": ({"warmup_epochs": 3, "warmup_start_factor": 0.1}, 5),
    # The window holds 3 of its 5 values (a fresh template's holds none).
    "slope_mid_window": ({"detector": "slope", "window": 5}, 8),
    "window_best_full": ({"detector": "window_best", "window": 3}, 6),
}


def new_run(case):
    """The config, the plateau state and an optax state as a new process builds them."""
    config = plateau.PlateauConfig(**BASE, **CASES[case][0])
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    state, opt_state = plateau_optax.start(tx.init({"w": jnp.ones(3)}), config)
    return config, state, opt_state


def run(config, state, opt_state, metrics):
    """Step on each metric: (the states after, each epoch's lrs and decision)."""
    history = []
    for metric in metrics:
        state, opt_state = plateau_optax.step(state, metric, config, opt_state)
        history.append((plateau_optax.get_lrs(opt_state), state.decision.value))
    return state, opt_state, history


def saved_mid_run(case):
    config, state, opt_state = new_run(case)
    state, opt_state, _ = run(config, state, opt_state, METRICS[: CASES[case][1]])
    return config, {"opt_state": opt_state, "plateau": state}


def abstract(tree):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def assert_resumes(case, config, saved, restored):
    """`restored` equals `saved`, field for field, and runs on as the uninterrupted run."""
    assert restored["plateau"] == saved["plateau"]
    assert repr(restored["plateau"]) == repr(saved["plateau"])  # the types too: plain Python
    assert plateau_optax.get_lrs(restored["opt_state"]) == plateau_optax.get_lrs(saved["opt_state"])
    cut_at = CASES[case][1]
    *_, expected = run(*new_run(case), METRICS)
    *_, resumed = run(config, restored["plateau"], restored["opt_state"], METRICS[cut_at:])
    assert resumed == expected[cut_at:]
    assert {decision for _, decision in resumed} & {"reduced", "capped"}  # it decided


@pytest.mark.parametrize("case", list(CASES))
def test_standard_checkpointer_restores_the_plateau_state_exactly(tmp_path, case):
    config, saved = saved_mid_run(case)
    checkpointer = ocp.StandardCheckpointer()
    try:
        checkpointer.save(tmp_path / "ckpt", saved)
        checkpointer.wait_until_finished()
        # A new process has only the abstract tree of a freshly built run.
        _, state, opt_state = new_run(case)
        template = abstract({"opt_state": opt_state, "plateau": state})
        restored = checkpointer.restore(tmp_path / "ckpt", template)
    finally:
        checkpointer.close()
    assert_resumes(case, config, saved, restored)


def test_checkpoint_manager_with_standard_save_restores_the_latest_step(tmp_path):
    case = "smoothed"
    config, saved = saved_mid_run(case)
    with ocp.CheckpointManager(tmp_path / "run") as manager:
        _, state, opt_state = new_run(case)
        manager.save(0, args=ocp.args.StandardSave({"opt_state": opt_state, "plateau": state}))
        manager.save(CASES[case][1], args=ocp.args.StandardSave(saved))
        manager.wait_until_finished()
        template = abstract(saved)
        restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(template))
    assert_resumes(case, config, saved, restored)


def test_a_flax_train_state_holding_the_plateau_state_round_trips(tmp_path):
    train_state = pytest.importorskip("flax.training.train_state")

    class TrainState(train_state.TrainState):
        plateau: plateau.PlateauState

    config = plateau.PlateauConfig(**BASE)
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    params = {"w": jnp.ones(3)}
    first = TrainState.create(apply_fn=None, params=params, tx=tx, plateau=None)
    state, opt_state = plateau_optax.start(first.opt_state, config)
    saved = first.replace(opt_state=opt_state, plateau=state)
    for metric in METRICS[:5]:
        state, opt_state = plateau_optax.step(saved.plateau, metric, config, saved.opt_state)
        saved = saved.replace(opt_state=opt_state, plateau=state)
    checkpointer = ocp.StandardCheckpointer()
    try:
        checkpointer.save(tmp_path / "ckpt", saved)
        checkpointer.wait_until_finished()
        restored = checkpointer.restore(tmp_path / "ckpt", abstract(saved))
    finally:
        checkpointer.close()
    assert restored.plateau == saved.plateau
    assert attrs.asdict(restored.plateau) == attrs.asdict(saved.plateau)
    assert plateau_optax.get_lrs(restored.opt_state) == plateau_optax.get_lrs(saved.opt_state)


def test_the_cases_save_what_their_names_say():
    """Guard against vacuous cases: the saved states hold what each case is there for."""
    saved = {case: saved_mid_run(case)[1]["plateau"] for case in CASES}
    assert saved["mid_warmup"].base_lrs is not None
    assert saved["warmup_ended"].base_lrs is None
    assert new_run("warmup_ended")[1].base_lrs is not None
    assert saved["smoothed"].smoothed is not None
    assert saved["mid_block"].num_accumulated == 1
    assert len(saved["slope_mid_window"].window) == 3
    assert len(saved["window_best_full"].window) == 3


def test_a_restored_value_the_state_refuses_is_named():
    """A checkpoint's values are checked as the constructor checks them."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(new_run("cut")[1])
    names = [jax.tree_util.keystr(path) for path, _ in flat]
    leaves = [-1 if name == ".num_bad_epochs" else leaf for name, (_, leaf) in zip(names, flat)]
    assert ".num_bad_epochs" in names
    with pytest.raises(ValueError, match="'num_bad_epochs' must be >= 0, got -1"):
        jax.tree.unflatten(treedef, leaves)


def test_a_state_returned_by_a_jitted_function_is_refused_by_step():
    """Through jit its numbers come back as float32 arrays: step says so, not a wrong cut."""
    config, state, opt_state = new_run("cut")
    traced = jax.jit(lambda tree: tree)({"plateau": state})["plateau"]
    with pytest.raises(TypeError, match=r"went through jax\.jit or jax\.device_put"):
        plateau_optax.step(traced, 1.0, config, opt_state)
    assert plateau_optax.step(state, 1.0, config, opt_state)[0].last_epoch == 1
