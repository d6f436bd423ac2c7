"""plateau.adapters.optax against real optax states and a real jitted JAX training loop."""

from __future__ import annotations

import math
import re

import attrs
import pytest

import plateau
from plateau import Decision, PlateauConfig

pytest.importorskip("optax")
import jax
import jax.numpy as jnp
import numpy as np
import optax

from plateau.adapters import optax as plateau_optax


def f32(x: float) -> float:
    return float(np.float32(x))


def injected_sgd(lr: float) -> optax.GradientTransformation:
    return optax.inject_hyperparams(optax.sgd)(learning_rate=lr)


PARAMS = {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}


# --- a small MLP trained with a validation loss each epoch -------------------------------

TRAIN_TRACES: list[int] = []


def mlp(params, x):
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return (hidden @ params["w2"] + params["b2"])[:, 0]


def mse(params, x, y):
    return jnp.mean((mlp(params, x) - y) ** 2)


def make_train_step(tx):
    @jax.jit
    def train_step(params, opt_state, x, y):
        TRAIN_TRACES.append(1)  # runs only while tracing
        grads = jax.grad(mse)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, grads, updates

    return train_step


def synthetic_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype(np.float32)
    y = (np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.3 * rng.normal(size=96)).astype(np.float32)
    return (x[:64], y[:64]), (x[64:], y[64:])


def init_mlp():
    keys = jax.random.split(jax.random.key(0), 2)
    return {
        "w1": jax.random.normal(keys[0], (4, 16)) * 0.5,
        "b1": jnp.zeros(16),
        "w2": jax.random.normal(keys[1], (16, 1)) * 0.5,
        "b2": jnp.zeros(1),
    }


def test_mlp_epoch_loop_follows_the_core_and_traces_once():
    (x, y), (x_val, y_val) = synthetic_data()
    params = init_mlp()
    # Weights and biases at different lrs: two lrs, in sorted-label order (bias, weight).
    labels = {k: "weight" if k.startswith("w") else "bias" for k in params}
    tx = optax.multi_transform({"weight": injected_sgd(0.2), "bias": injected_sgd(0.05)}, labels)
    opt_state = tx.init(params)
    assert plateau_optax.lr_paths(opt_state) == (
        ".inner_states['bias'].inner_state",
        ".inner_states['weight'].inner_state",
    )
    # A demanding threshold so that the lr is cut several times in a short run.
    config = PlateauConfig(patience=1, factor=0.5, threshold=0.05, min_lr=(0.0, 0.03))
    state = plateau_optax.init(opt_state, config)
    start_lrs = state.lrs
    assert start_lrs == (f32(0.05), f32(0.2))

    train_step = make_train_step(tx)
    evaluate = jax.jit(mse)
    TRAIN_TRACES.clear()
    val_losses, lrs_per_epoch = [], []
    for _ in range(14):
        for _ in range(5):
            used = plateau_optax.get_lrs(opt_state)
            params, opt_state, grads, updates = train_step(params, opt_state, x, y)
            # The jitted step really uses the lr set from the host (not a baked constant).
            for name, lr in (("b1", used[0]), ("w1", used[1])):
                expected = -np.float32(lr) * np.asarray(grads[name])
                np.testing.assert_allclose(np.asarray(updates[name]), expected, rtol=1e-6)
        val_loss = evaluate(params, x_val, y_val)  # a jax scalar, passed as is
        val_losses.append(float(val_loss))
        state, opt_state = plateau_optax.step(state, val_loss, config, opt_state)
        lrs_per_epoch.append(state.lrs)

    # The optimizer owns the lrs and stores them in float32: the core's schedule with
    # each new lr rounded to float32, as the arrays hold it.
    expected, reference = [], plateau.init(start_lrs, config)
    for loss in val_losses:
        reference, _ = plateau.step(reference, loss, config)
        reference = attrs.evolve(reference, lrs=tuple(f32(lr) for lr in reference.lrs))
        expected.append(reference)
    assert lrs_per_epoch == [s.lrs for s in expected]
    assert state == expected[-1]
    assert plateau_optax.get_lrs(opt_state) == expected[-1].lrs
    decisions = [s.decision for s in expected]
    assert decisions.count(Decision.REDUCED) >= 3, decisions
    assert expected[-1].lrs[1] == f32(0.03)  # the weights' lr reached its floor
    assert len(TRAIN_TRACES) == 1


def test_a_jitted_update_is_not_retraced_by_set_lrs():
    traces: list[int] = []
    tx = optax.chain(optax.clip(1.0), optax.inject_hyperparams(optax.adam)(learning_rate=1e-3))

    @jax.jit
    def update(grads, opt_state):
        traces.append(1)
        return tx.update(grads, opt_state)

    opt_state = tx.init(PARAMS)
    grads = jax.tree.map(jnp.ones_like, PARAMS)
    for lr in [1e-3, 1e-4, 1e-5, 3e-6]:
        opt_state = plateau_optax.set_lrs(opt_state, [lr])
        _, opt_state = update(grads, opt_state)
        assert plateau_optax.get_lrs(opt_state) == (f32(lr),)
    assert len(traces) == 1


# --- where the lrs are found, and in which order --------------------------------------------


def test_round_trip_under_chain():
    tx = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.inject_hyperparams(optax.adam)(learning_rate=0.1),
        injected_sgd(0.2),
    )
    opt_state = tx.init(PARAMS)
    assert plateau_optax.lr_paths(opt_state) == ("[1]", "[2]")
    assert plateau_optax.get_lrs(opt_state) == (f32(0.1), f32(0.2))
    new = plateau_optax.set_lrs(opt_state, (0.01, 0.02))
    assert plateau_optax.get_lrs(new) == (f32(0.01), f32(0.02))
    assert plateau_optax.get_lrs(plateau_optax.set_lrs(new, plateau_optax.get_lrs(new))) == (
        plateau_optax.get_lrs(new)
    )


def test_round_trip_under_multi_transform_in_sorted_label_order():
    labels = {"w": "zeta", "b": "alpha"}
    tx = optax.multi_transform({"zeta": injected_sgd(0.3), "alpha": injected_sgd(0.1)}, labels)
    opt_state = tx.init(PARAMS)
    assert plateau_optax.get_lrs(opt_state) == (f32(0.1), f32(0.3))  # alpha, zeta
    new = plateau_optax.set_lrs(opt_state, [0.5, 0.25])
    assert new.inner_states["alpha"].inner_state.hyperparams["learning_rate"] == 0.5
    assert new.inner_states["zeta"].inner_state.hyperparams["learning_rate"] == 0.25


def test_a_group_without_an_injected_lr_is_not_counted():
    tx = optax.multi_transform(
        {"w": injected_sgd(0.3), "b": optax.set_to_zero()}, {"w": "w", "b": "b"}
    )
    opt_state = tx.init(PARAMS)
    assert plateau_optax.lr_paths(opt_state) == (".inner_states['w'].inner_state",)


def test_round_trip_under_named_chain_in_insertion_order():
    tx = optax.named_chain(
        ("zeta", injected_sgd(0.3)), ("clip", optax.clip(1.0)), ("alpha", injected_sgd(0.1))
    )
    opt_state = tx.init(PARAMS)
    assert plateau_optax.lr_paths(opt_state) == ("['zeta']", "['alpha']")
    assert plateau_optax.get_lrs(opt_state) == (f32(0.3), f32(0.1))
    new = plateau_optax.set_lrs(opt_state, [0.5, 0.25])
    assert new["zeta"].hyperparams["learning_rate"] == 0.5
    assert list(new) == ["zeta", "clip", "alpha"]


def test_nested_injection_outer_lr_first():
    def factory(learning_rate):
        return optax.chain(injected_sgd(0.3), optax.scale(learning_rate))

    opt_state = optax.inject_hyperparams(factory)(learning_rate=0.5).init(PARAMS)
    assert plateau_optax.lr_paths(opt_state) == ("", ".inner_state[0]")
    new = plateau_optax.set_lrs(opt_state, [0.125, 0.0625])
    assert plateau_optax.get_lrs(new) == (0.125, 0.0625)


def test_set_lrs_never_mutates_and_shares_everything_else():
    tx = optax.chain(optax.inject_hyperparams(optax.adam)(learning_rate=0.1), injected_sgd(0.2))
    opt_state = tx.init(PARAMS)
    old_hyperparams = opt_state[0].hyperparams
    old_lr = old_hyperparams["learning_rate"]
    new = plateau_optax.set_lrs(opt_state, [0.5, 0.25])
    assert opt_state[0].hyperparams is old_hyperparams
    assert old_hyperparams["learning_rate"] is old_lr
    assert plateau_optax.get_lrs(opt_state) == (f32(0.1), f32(0.2))
    assert new[0].hyperparams is not old_hyperparams
    # The optimizer's moments are the same arrays, not copies.
    assert new[0].inner_state[0].mu["w"] is opt_state[0].inner_state[0].mu["w"]
    assert jax.tree.structure(new) == jax.tree.structure(opt_state)


@pytest.mark.parametrize(
    ("lr", "dtype"),
    [
        (jnp.asarray(0.1, jnp.float32), jnp.float32),
        (jnp.asarray([0.1], jnp.float32), jnp.float32),
        (jnp.asarray(0.1, jnp.bfloat16), jnp.bfloat16),
    ],
)
def test_dtype_and_shape_are_kept(lr, dtype):
    opt_state = optax.inject_hyperparams(optax.sgd)(learning_rate=lr).init(PARAMS)
    old = opt_state.hyperparams["learning_rate"]
    new = plateau_optax.set_lrs(opt_state, [0.01]).hyperparams["learning_rate"]
    assert (new.dtype, new.shape, new.weak_type) == (old.dtype, old.shape, old.weak_type)
    assert new.dtype == dtype
    assert plateau_optax.get_lrs(opt_state) == (float(jnp.asarray(0.1, dtype)),)


def test_a_weakly_typed_lr_stays_weak():
    opt_state = injected_sgd(0.1).init(PARAMS)
    weak = opt_state._replace(hyperparams={"learning_rate": jnp.asarray(0.1)})
    assert weak.hyperparams["learning_rate"].weak_type
    new = plateau_optax.set_lrs(weak, 0.01)
    assert new.hyperparams["learning_rate"].weak_type


def test_a_python_float_lr_stays_a_python_float():
    opt_state = injected_sgd(0.1).init(PARAMS)
    plain = opt_state._replace(hyperparams={"learning_rate": 0.1})
    assert plateau_optax.get_lrs(plain) == (0.1,)
    assert plateau_optax.set_lrs(plain, [0.01]).hyperparams["learning_rate"] == 0.01


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opt_state",
    [
        optax.adam(0.1).init(PARAMS),
        optax.inject_hyperparams(optax.scale_by_adam)(b1=0.9).init(PARAMS),
        optax.contrib.reduce_on_plateau().init(PARAMS),
    ],
    ids=["plain-adam", "injected-without-learning-rate", "reduce-on-plateau"],
)
def test_no_injectable_learning_rate_is_a_type_error_saying_how(opt_state):
    assert plateau_optax.lr_paths(opt_state) == ()  # nothing to name: not an error
    holder = rf"^opt_state \({type(opt_state).__name__}\) holds no injectable learning rate"
    for call in (
        lambda: plateau_optax.get_lrs(opt_state),
        lambda: plateau_optax.set_lrs(opt_state, [0.1]),
        lambda: plateau_optax.init(opt_state, PlateauConfig()),
    ):
        with pytest.raises(
            TypeError, match=r"wrap the optimizer with optax\.inject_hyperparams"
        ) as info:
            call()
        assert re.match(holder, str(info.value))
        assert "plateau_optax.scale_by_plateau()" in str(info.value)


def test_a_scheduled_learning_rate_cannot_be_driven():
    schedule = optax.linear_schedule(1.0, 0.0, 10)
    opt_state = optax.inject_hyperparams(optax.sgd)(learning_rate=schedule).init(PARAMS)
    assert plateau_optax.get_lrs(opt_state) == (1.0,)  # reading is harmless
    for call in (
        lambda: plateau_optax.set_lrs(opt_state, [0.1]),
        lambda: plateau_optax.init(opt_state, PlateauConfig()),
    ):
        with pytest.raises(TypeError, match="at opt_state is driven by a schedule"):
            call()


def test_without_a_scale_every_injected_lr_is_found_in_order_and_a_scheduled_one_refuses_writes():
    schedule = optax.linear_schedule(1.0, 0.0, 10)
    tx = optax.chain(
        injected_sgd(0.5), optax.inject_hyperparams(optax.sgd)(schedule), injected_sgd(0.25)
    )
    opt_state = tx.init(PARAMS)
    assert plateau_optax.lr_paths(opt_state) == ("[0]", "[1]", "[2]")
    assert plateau_optax.get_lrs(opt_state) == (0.5, 1.0, 0.25)
    match = r"^the learning rate at opt_state\[1\] is driven by a schedule"
    with pytest.raises(TypeError, match=match):
        plateau_optax.set_lrs(opt_state, [0.1, 0.1, 0.1])


@pytest.mark.parametrize(("lr", "count"), [(None, 0), ((jnp.float32(0.1), jnp.float32(0.2)), 2)])
def test_an_lr_that_is_not_one_array_is_refused_by_name(lr, count):
    opt_state = injected_sgd(0.1).init(PARAMS)
    odd = opt_state._replace(hyperparams={"learning_rate": lr})
    match = rf"^the learning rate at opt_state holds {count} arrays, not one number$"
    for call in (lambda: plateau_optax.get_lrs(odd), lambda: plateau_optax.set_lrs(odd, 0.1)):
        with pytest.raises(TypeError, match=match):
            call()


def test_wrong_number_of_lrs_names_both_counts():
    opt_state = optax.chain(injected_sgd(0.1), injected_sgd(0.2)).init(PARAMS)
    match = r"'lrs' has 3 values but opt_state holds 2 .*\(at opt_state\[0\], opt_state\[1\]\)"
    with pytest.raises(ValueError, match=match):
        plateau_optax.set_lrs(opt_state, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"'lrs' has 1 values but opt_state holds 2"):
        plateau_optax.set_lrs(opt_state, 0.1)


@pytest.mark.parametrize(
    ("lrs", "error", "match"),
    [
        ([0.1, -0.2], ValueError, r"'lrs\[1\]' must be finite and >= 0, got -0.2"),
        ([math.nan, 0.1], ValueError, r"'lrs\[0\]' must be finite and >= 0"),
        ([0.1, "0.2"], TypeError, r"'lrs\[1\]' must be a real number"),
    ],
)
def test_bad_lrs_are_rejected_before_anything_is_built(lrs, error, match):
    opt_state = optax.chain(injected_sgd(0.1), injected_sgd(0.2)).init(PARAMS)
    with pytest.raises(error, match=match):
        plateau_optax.set_lrs(opt_state, lrs)


def test_a_multi_valued_lr_is_rejected_by_name():
    opt_state = optax.inject_hyperparams(optax.sgd)(learning_rate=jnp.asarray([0.1, 0.2]))
    with pytest.raises(
        ValueError, match=r"learning rate at opt_state must be a single number, got shape \(2,\)"
    ):
        plateau_optax.get_lrs(opt_state.init(PARAMS["b"]))


# --- the metric ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_a_jax_scalar_metric_is_the_same_as_its_float(dtype):
    config = PlateauConfig(patience=0, factor=0.5)
    opt_state = injected_sgd(0.5).init(PARAMS)
    metrics = [jnp.asarray(v, dtype) for v in (3.0, 2.5, 2.75, 2.0, 2.25)]
    state = plateau_optax.init(opt_state, config)
    for metric in metrics:
        state, opt_state = plateau_optax.step(state, metric, config, opt_state)
    expected = plateau.simulate([float(m) for m in metrics], config, 0.5)[-1]
    assert state == expected
    assert expected.lrs == (0.125,)  # two cuts happened
    assert plateau_optax.get_lrs(opt_state) == (0.125,)


def test_step_inside_jit_is_a_clear_type_error():
    config = PlateauConfig()
    opt_state = injected_sgd(0.5).init(PARAMS)
    state = plateau_optax.init(opt_state, config)

    @jax.jit
    def inside(metric):
        plateau_optax.step(state, metric, config, opt_state)
        return metric

    with pytest.raises(TypeError, match="'metric' is a jax tracer"):
        inside(jnp.float32(1.0))


def test_step_returns_the_same_opt_state_when_no_lr_changes():
    config = PlateauConfig(patience=5)
    opt_state = injected_sgd(0.5).init(PARAMS)
    state = plateau_optax.init(opt_state, config)
    state, new = plateau_optax.step(state, 1.0, config, opt_state)
    assert new is opt_state
    assert state.decision == Decision.IMPROVED


def test_the_optimizer_owns_the_lr_count():
    """A rebuilt optimizer's lrs are the ones stepped; a per-lr min_lr must fit them."""
    one = injected_sgd(0.1).init(PARAMS)
    two = optax.chain(injected_sgd(0.1), injected_sgd(0.2)).init(PARAMS)
    config = PlateauConfig(patience=0)
    state = plateau_optax.init(one, config)
    state, _ = plateau_optax.step(state, 1.0, config, one)
    state, new = plateau_optax.step(state, 2.0, config, two)
    assert state.lrs == (f32(f32(0.1) * 0.1), f32(f32(0.2) * 0.1))
    assert plateau_optax.get_lrs(new) == state.lrs
    per_lr = PlateauConfig(patience=5, min_lr=(0.0, 0.0))
    state_two = plateau_optax.init(two, per_lr)
    before = plateau_optax.get_lrs(one)
    with pytest.raises(ValueError, match="'min_lr' has 2 values but there are 1 lrs"):
        plateau_optax.step(state_two, 1.0, per_lr, one)
    assert plateau_optax.get_lrs(one) == before


def test_an_lr_set_by_hand_between_epochs_is_the_one_cut():
    config = PlateauConfig(patience=0, factor=0.5)
    opt_state = injected_sgd(0.5).init(PARAMS)
    state = plateau_optax.init(opt_state, config)
    state, opt_state = plateau_optax.step(state, 1.0, config, opt_state)
    opt_state = plateau_optax.set_lrs(opt_state, 0.125)  # by hand, between two epochs
    state, opt_state = plateau_optax.step(state, 2.0, config, opt_state)
    assert plateau_optax.get_lrs(opt_state) == (0.0625,) == state.lrs


def test_an_integer_lr_is_refused_rather_than_cut_to_zero():
    opt_state = optax.inject_hyperparams(optax.sgd)(learning_rate=jnp.array(1)).init(PARAMS)
    with pytest.raises(TypeError, match="has dtype int32, which cannot hold a reduced lr"):
        plateau_optax.init(opt_state, PlateauConfig())
    with pytest.raises(TypeError, match="has dtype int32"):
        plateau_optax.set_lrs(opt_state, 0.5)


@pytest.mark.parametrize("not_a_state", [None, {"lrs": [0.1]}, PlateauConfig()])
def test_step_given_something_other_than_a_plateau_state_is_a_type_error(not_a_state):
    opt_state = injected_sgd(0.5).init(PARAMS)
    with pytest.raises(TypeError, match=r"'plateau_state' must be a plateau\.PlateauState"):
        plateau_optax.step(not_a_state, 1.0, PlateauConfig(), opt_state)


def test_step_rejects_a_scheduled_lr_before_the_first_reduction():
    config = PlateauConfig(patience=5)
    constant = injected_sgd(1.0).init(PARAMS)
    scheduled = optax.inject_hyperparams(optax.sgd)(
        learning_rate=optax.linear_schedule(1.0, 0.0, 10)
    ).init(PARAMS)
    state = plateau_optax.init(constant, config)
    with pytest.raises(TypeError, match="at opt_state is driven by a schedule"):
        plateau_optax.step(state, 1.0, config, scheduled)


def test_the_returned_state_carries_the_stop_signal():
    """A loop stops on state.exhausted: max_reductions=2 on a flat loss, patience 0.

    Epoch 0 improves, epochs 1 and 2 cut (0.5 -> 0.25 -> 0.125), epoch 3 is capped.
    """
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
    opt_state = tx.init({"w": jnp.zeros(3)})
    config = PlateauConfig(patience=0, factor=0.5, max_reductions=2)
    state, epochs = plateau_optax.init(opt_state, config), 0
    while not state.exhausted:
        state, opt_state = plateau_optax.step(state, jnp.float32(1.0), config, opt_state)
        epochs += 1
    assert epochs == 4 and state.decision is Decision.CAPPED
    assert plateau_optax.get_lrs(opt_state) == (0.125,) and state.num_reductions == 2


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_a_cut_the_lr_dtype_cannot_hold_is_not_a_reduction(dtype):
    """bfloat16 holds 0.5 * 0.999 as 0.5: the cut stores nothing, as a cut under eps.

    Decision AT_FLOOR, num_reductions not counted (so max_reductions=1 never caps),
    and the opt_state comes back as it was. A float32 lr holds the same cut.
    """
    lr = jnp.asarray(0.5, dtype)
    opt_state = optax.inject_hyperparams(optax.sgd)(learning_rate=lr).init(PARAMS)
    config = PlateauConfig(patience=0, factor=0.999, max_reductions=1)
    state = plateau_optax.init(opt_state, config)
    decisions = []
    for metric in (1.0, 2.0, 3.0):
        state, new = plateau_optax.step(state, metric, config, opt_state)
        decisions.append(state.decision)
        if dtype == jnp.bfloat16:
            assert new is opt_state
        opt_state = new
    if dtype == jnp.bfloat16:
        assert decisions == [Decision.IMPROVED, Decision.AT_FLOOR, Decision.AT_FLOOR]
        assert state.num_reductions == 0 and state.exhausted
        assert state.lrs == plateau_optax.get_lrs(opt_state) == (0.5,)
    else:
        assert decisions == [Decision.IMPROVED, Decision.REDUCED, Decision.CAPPED]
        assert state.num_reductions == 1
        assert state.lrs == plateau_optax.get_lrs(opt_state) == (f32(0.5 * 0.999),)
