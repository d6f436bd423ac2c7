"""The optax adapter over a base schedule (scale_by_plateau) and with a warmup (start).

Expected values come from elsewhere than the code under test: optax's own
``reduce_on_plateau`` and ``adam(schedule)``, and the pure core (``plateau.simulate``,
``plateau.step``, ``plateau.scale_base``) run separately on the same metrics. Each
test builds few jitted programs (XLA's CPU compiler tires after some hundreds).
"""

from __future__ import annotations

import json

import pytest

import plateau
from plateau import Decision, PlateauConfig

pytest.importorskip("optax")
import jax
import jax.numpy as jnp
import numpy as np
import optax

from plateau.adapters import optax as plateau_optax


def linear_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x @ rng.normal(size=4) + 0.3 * rng.normal(size=32)).astype(np.float32)
    params = {"w": jnp.zeros(4), "b": jnp.zeros(())}
    return params, jnp.asarray(x), jnp.asarray(y)


def mse(params, x, y):
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def assert_trees_equal(a, b):
    """Bit for bit: same structure, every leaf's bits equal (not merely close)."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for left, right in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(left), np.asarray(right))


# --- differential: optax's own reduce_on_plateau ------------------------------------------


def dyadic_stream(n: int, seed: int) -> list[float]:
    """Metrics k/16 that improve, then stall and wander: several cuts and the floor.

    On this grid optax's float32 tests and running means are exact, so they are the
    core's float64 ones (see tests/test_translation_optax.py).
    """
    rng = np.random.default_rng(seed)
    falling = [(40 - 2 * i) / 16 for i in range(8)]
    wandering = [int(k) / 16 for k in rng.integers(20, 30, size=n - len(falling))]
    return falling + wandering


def test_scale_by_plateau_is_optax_reduce_on_plateau_bit_for_bit():
    """Same scale at every update, updates and params identical to optax's own chain.

    optax's reduce_on_plateau reads the value in the update that it then scales; the
    adapter's step runs on the host before that update: the same order, so the same
    scale multiplies the same adam(schedule) updates. accumulation_size=2 on both
    sides: a decision every second value, on their running mean.
    """
    schedule = optax.warmup_cosine_decay_schedule(0.0, 0.05, 6, 80)
    optax_args = dict(factor=0.5, patience=2, rtol=2.0**-4, cooldown=1, accumulation_size=2)
    theirs = optax.chain(
        optax.adam(schedule), optax.contrib.reduce_on_plateau(**optax_args, min_scale=2.0**-4)
    )
    ours = optax.chain(optax.adam(schedule), plateau_optax.scale_by_plateau())
    config = PlateauConfig.from_optax(**optax_args, min_scale=2.0**-4)
    params, x, y = linear_problem()

    @jax.jit
    def their_step(params, opt_state, value):
        grads = jax.grad(mse)(params, x, y)
        updates, opt_state = theirs.update(grads, opt_state, params, value=value)
        return optax.apply_updates(params, updates), opt_state, updates

    @jax.jit
    def our_step(params, opt_state):
        grads = jax.grad(mse)(params, x, y)
        updates, opt_state = ours.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, updates

    their_params, their_state = params, theirs.init(params)
    our_params, our_opt_state = params, ours.init(params)
    state, our_opt_state = plateau_optax.start(our_opt_state, config)
    scales = []
    for value in dyadic_stream(60, seed=3):
        state, our_opt_state = plateau_optax.step(state, value, config, our_opt_state)
        our_params, our_opt_state, our_updates = our_step(our_params, our_opt_state)
        their_params, their_state, their_updates = their_step(
            their_params, their_state, jnp.float32(value)
        )
        scale = float(their_state[1].scale)
        assert plateau_optax.get_lrs(our_opt_state) == (scale,) == state.lrs
        assert_trees_equal(our_updates, their_updates)
        scales.append(scale)
    assert_trees_equal(our_params, their_params)
    assert_trees_equal(our_opt_state[0], their_state[0])  # adam's moments and count
    # The stream exercised cuts, cooldown and the floor, not only the start.
    assert sorted(set(scales), reverse=True) == [1.0, 0.5, 0.25, 0.125, 0.0625]
    assert state.num_reductions == 4 and state.exhausted is False


# --- a moving base: warmup_cosine_decay_schedule ------------------------------------------


def test_warmup_cosine_updates_are_the_schedule_s_times_the_core_s_scale_traced_once():
    """updates == adam(schedule)'s updates * scale, the scale simulate gives; no cut: equal.

    The bare adam(schedule) update is computed from the chain's own adam state and the
    same gradients, so the only difference between the two is the plateau's scale.
    """
    schedule = optax.warmup_cosine_decay_schedule(0.0, 0.2, 10, 300, end_value=0.01)
    adam = optax.adam(schedule)
    tx = optax.chain(adam, plateau_optax.scale_by_plateau())
    config = PlateauConfig(patience=1, factor=0.5, threshold=0.05, min_lr=0.125)
    params, x, y = linear_problem(1)
    x_val, y_val = x[:8] + 0.5, y[:8]
    traces: list[int] = []

    @jax.jit
    def train_step(params, opt_state):
        traces.append(1)  # runs only while tracing
        grads = jax.grad(mse)(params, x, y)
        bare, _ = adam.update(grads, opt_state[0], params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, updates, bare

    evaluate = jax.jit(mse)
    opt_state = tx.init(params)
    state, opt_state = plateau_optax.start(opt_state, config)
    val_losses, scale_per_epoch = [], []
    for _ in range(30):
        scale = plateau_optax.get_lrs(opt_state)[0]
        scale_per_epoch.append(scale)
        for _ in range(10):
            params, opt_state, updates, bare = train_step(params, opt_state)
            factor = np.float32(scale)
            expected = jax.tree.map(lambda u, factor=factor: factor * np.asarray(u), bare)
            assert_trees_equal(updates, expected)
            if scale == 1.0:  # no cut yet: the bare schedule's updates, exactly
                assert_trees_equal(updates, bare)
        val_losses.append(float(evaluate(params, x_val, y_val)))
        state, opt_state = plateau_optax.step(state, val_losses[-1], config, opt_state)

    # The core alone, on the same metrics: epoch e + 1 trains at the scale after epoch e.
    # (factor 0.5 and floor 0.125: every scale is exact in float32.)
    simulated = plateau.simulate(val_losses, config, 1.0)
    assert scale_per_epoch == [1.0] + [s.lrs[0] for s in simulated[:-1]]
    assert state == simulated[-1]
    assert [s.decision for s in simulated].count(Decision.REDUCED) >= 2
    assert scale_per_epoch.count(1.0) >= 3
    assert len(traces) == 1


def test_two_scales_under_multi_transform_follow_scale_base_traced_once():
    """Two groups, two scales and per-group floors; the sgd update is -scale_base(...) * g."""
    schedule = optax.cosine_decay_schedule(0.1, decay_steps=60, alpha=0.1)
    labels = {"w": "weights", "b": "bias"}
    group = optax.chain(optax.sgd(schedule), plateau_optax.scale_by_plateau())
    tx = optax.multi_transform({"weights": group, "bias": group}, labels)
    params, x, y = linear_problem(2)
    opt_state = tx.init(params)
    assert plateau_optax.lr_paths(opt_state) == (
        ".inner_states['bias'].inner_state[1]",
        ".inner_states['weights'].inner_state[1]",
    )
    config = PlateauConfig(patience=0, factor=0.5, min_lr=(0.25, 0.0))
    traces: list[int] = []

    @jax.jit
    def train_step(params, opt_state):
        traces.append(1)
        grads = jax.grad(mse)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, updates, grads

    state, opt_state = plateau_optax.start(opt_state, config)
    count = 0
    for metric in [5.0, 4.0, 4.0, 4.5, 3.0, 3.5, 3.5, 3.5]:
        for _ in range(3):
            params, opt_state, updates, grads = train_step(params, opt_state)
            # The rule of "Base schedules": the lr is scale_base(state, schedule(count)).
            lr_bias, lr_weights = plateau.scale_base(state, float(schedule(count)))
            np.testing.assert_allclose(updates["b"], -lr_bias * grads["b"], rtol=3e-7)
            np.testing.assert_allclose(updates["w"], -lr_weights * grads["w"], rtol=3e-7)
            count += 1
        state, opt_state = plateau_optax.step(state, metric, config, opt_state)
    # Five cuts each; the bias's scale stopped at its floor.
    assert (
        state.lrs
        == (0.25, 0.5**5)
        == plateau.simulate([5.0, 4.0, 4.0, 4.5, 3.0, 3.5, 3.5, 3.5], config, [1.0, 1.0])[-1].lrs
    )
    assert len(traces) == 1


def test_the_state_records_the_scale_as_the_float32_array_stores_it():
    """factor 0.3 does not round-trip float32: each cut is stored rounded, and recorded so."""
    tx = optax.chain(
        optax.sgd(optax.linear_schedule(0.1, 0.01, 50)), plateau_optax.scale_by_plateau()
    )
    opt_state = tx.init({"w": jnp.zeros(2)})
    config = PlateauConfig(patience=0, factor=0.3)
    state, opt_state = plateau_optax.start(opt_state, config)
    expected = 1.0
    for metric in [1.0, 2.0, 3.0, 4.0]:
        state, opt_state = plateau_optax.step(state, metric, config, opt_state)
        expected = expected if metric == 1.0 else float(np.float32(expected * 0.3))
        assert state.lrs == plateau_optax.get_lrs(opt_state) == (expected,)
    assert expected != 0.3**3  # the float64 chain would differ


# --- flax nnx ------------------------------------------------------------------------------


def test_nnx_optimizer_over_a_schedule_keeps_one_trace_and_optax_s_updates():
    """nnx.Optimizer with the chain under nnx.jit: one trace, the same params as plain optax."""
    nnx = pytest.importorskip("flax.nnx")

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.layer = nnx.Linear(4, 1, rngs=rngs)

        def __call__(self, x):
            return self.layer(x)[:, 0]

    schedule = optax.warmup_cosine_decay_schedule(0.0, 0.1, 4, 40)
    tx = optax.chain(optax.adam(schedule), plateau_optax.scale_by_plateau())
    model = Model(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    _, x, y = linear_problem(3)
    traces: list[int] = []

    @nnx.jit
    def train_step(model, optimizer):
        traces.append(1)
        grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)

    # The twin: the same chain in plain optax from the same params, same decisions.
    def loss(params):
        return jnp.mean((x @ params["kernel"] + params["bias"] - y[:, None]) ** 2)

    @jax.jit
    def twin_step(params, opt_state):
        updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    twin = {"kernel": model.layer.kernel[...], "bias": model.layer.bias[...]}
    twin_state = tx.init(twin)
    container = type(optimizer.opt_state[1].scale)
    config = PlateauConfig(patience=0, factor=0.5)
    state, optimizer.opt_state = plateau_optax.start(optimizer.opt_state, config)
    for metric in [3.0, 2.0, 2.5, 2.5, 1.0, 1.5]:
        for _ in range(4):
            train_step(model, optimizer)
            twin, twin_state = twin_step(twin, twin_state)
        state, optimizer.opt_state = plateau_optax.step(state, metric, config, optimizer.opt_state)
        twin_state = plateau_optax.set_lrs(twin_state, state.lrs)
        assert type(optimizer.opt_state[1].scale) is container
    np.testing.assert_allclose(model.layer.kernel[...], twin["kernel"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.layer.bias[...], twin["bias"], rtol=1e-6, atol=1e-7)
    assert plateau_optax.get_lrs(optimizer.opt_state) == (0.125,) == state.lrs  # three cuts
    assert len(traces) == 1


# --- warmup --------------------------------------------------------------------------------

B, F, W = 0.5, 0.25, 4  # dyadic: every ramp value b * (f + (1 - f) k / W) is exact
WARMUP = PlateauConfig(warmup_epochs=W, warmup_start_factor=F, patience=0, factor=0.5)
WARMUP_METRICS = [9.0, 8.0, float("nan"), 7.0, 3.0, 2.0, 2.5, 2.5, 1.0, 1.5]


def run_warmup(opt_state, state, metrics, train_step, params, grads):
    """Train one update per epoch, checking the update really uses the lr set; the lrs."""
    used = []
    for metric in metrics:
        lr = plateau_optax.get_lrs(opt_state)[0]
        params, opt_state, updates = train_step(params, opt_state)
        np.testing.assert_array_equal(updates["w"], -np.float32(lr) * np.asarray(grads["w"]))
        used.append(lr)
        state, opt_state = plateau_optax.step(state, metric, WARMUP, opt_state)
    return used, state, opt_state, params


def test_warmup_starts_at_b_times_f_ramps_then_plateaus_and_resumes_from_json():
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=B)
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.asarray([1.0, -2.0, 0.5])}

    @jax.jit
    def train_step(params, opt_state):
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, updates

    state, opt_state = plateau_optax.start(tx.init(params), WARMUP)
    used, final, _, _ = run_warmup(opt_state, state, WARMUP_METRICS, train_step, params, grads)

    # The ramp from its formula, then the pure core's plateau on the metrics after it.
    ramp = [B * (F + (1 - F) * k / W) for k in range(W)]
    assert used[:W] == ramp and used[0] == B * F == 0.125
    assert used[W] == B
    core = plateau.init(B, WARMUP)
    core_lrs = [core.lrs[0]]
    for metric in WARMUP_METRICS[:-1]:
        core, _ = plateau.step(core, metric, WARMUP)
        core_lrs.append(core.lrs[0])
    assert used == core_lrs
    assert used[W:] == [0.5, 0.5, 0.5, 0.25, 0.125, 0.125]  # epoch W + 1's metric sets best

    # Resume mid-warmup: the plateau state through strict JSON, the optimizer as saved.
    state, opt_state = plateau_optax.start(tx.init(params), WARMUP)
    first, state, opt_state, p = run_warmup(
        opt_state, state, WARMUP_METRICS[:2], train_step, params, grads
    )
    assert state.warmup_epoch == 2
    saved = json.dumps(state.to_dict(), allow_nan=False)
    resumed = plateau.PlateauState.from_dict(json.loads(saved))
    rest, resumed_final, _, _ = run_warmup(
        opt_state, resumed, WARMUP_METRICS[2:], train_step, p, grads
    )
    assert first + rest == used
    assert resumed_final == final


def test_warmup_under_scale_by_plateau_ramps_the_scale_on_the_schedule():
    """The scale ramps f -> 1 over the schedule, then the plateau: simulate's lrs at 1.0."""
    schedule = optax.linear_schedule(0.2, 0.1, 20)
    sgd = optax.sgd(schedule)
    tx = optax.chain(sgd, plateau_optax.scale_by_plateau())
    params = {"w": jnp.ones(2)}
    grads = {"w": jnp.asarray([1.0, -0.5])}

    @jax.jit
    def update(opt_state):
        bare, _ = sgd.update(grads, opt_state[0], params)
        return *tx.update(grads, opt_state, params), bare

    state, opt_state = plateau_optax.start(tx.init(params), WARMUP)
    scales = []
    for metric in WARMUP_METRICS:
        scale = plateau_optax.get_lrs(opt_state)[0]
        updates, opt_state, bare = update(opt_state)
        np.testing.assert_array_equal(updates["w"], np.float32(scale) * np.asarray(bare["w"]))
        scales.append(scale)
        state, opt_state = plateau_optax.step(state, metric, WARMUP, opt_state)
    simulated = plateau.simulate(WARMUP_METRICS, WARMUP, 1.0)
    assert scales == [F] + [s.lrs[0] for s in simulated[:-1]]
    assert scales[: W + 1] == [F + (1 - F) * k / W for k in range(W)] + [1.0]


def test_init_refuses_a_warmup_config_and_names_start():
    opt_state = optax.inject_hyperparams(optax.sgd)(learning_rate=B).init({"w": jnp.zeros(2)})
    before = plateau_optax.get_lrs(opt_state)
    match = r"'config' has warmup_epochs=4: .*plateau_optax\.start\(opt_state, config\)"
    with pytest.raises(ValueError, match=match):
        plateau_optax.init(opt_state, WARMUP)
    assert plateau_optax.get_lrs(opt_state) == before
    # Without a warmup, start returns the very same opt_state and init's state.
    config = PlateauConfig()
    state, same = plateau_optax.start(opt_state, config)
    assert same is opt_state and state == plateau_optax.init(opt_state, config)


# --- bad input -----------------------------------------------------------------------------


def test_a_scale_next_to_a_constant_injected_lr_is_refused_naming_both():
    tx = optax.chain(
        optax.inject_hyperparams(optax.adam)(learning_rate=0.1), plateau_optax.scale_by_plateau()
    )
    opt_state = tx.init({"w": jnp.zeros(2)})
    match = (
        r"plateau scale \(at opt_state\[1\]\) and a constant injected learning rate "
        r"\(at opt_state\[0\]\)"
    )
    config = PlateauConfig()
    for call in (
        lambda: plateau_optax.get_lrs(opt_state),
        lambda: plateau_optax.lr_paths(opt_state),
        lambda: plateau_optax.set_lrs(opt_state, 0.5),
        lambda: plateau_optax.start(opt_state, config),
        lambda: plateau_optax.init(opt_state, config),
        lambda: plateau_optax.step(plateau.init(1.0, config), 1.0, config, opt_state),
    ):
        with pytest.raises(TypeError, match=match):
            call()


def test_a_scheduled_injected_lr_is_left_to_its_schedule_next_to_a_scale():
    schedule = optax.linear_schedule(1.0, 0.0, 10)
    tx = optax.chain(
        optax.inject_hyperparams(optax.sgd)(learning_rate=schedule),
        plateau_optax.scale_by_plateau(),
    )
    opt_state = tx.init({"w": jnp.zeros(2)})
    assert plateau_optax.lr_paths(opt_state) == ("[1]",)
    assert plateau_optax.get_lrs(plateau_optax.set_lrs(opt_state, 0.25)) == (0.25,)


def test_a_scheduled_injected_lr_alone_points_to_scale_by_plateau():
    schedule = optax.linear_schedule(1.0, 0.0, 10)
    opt_state = optax.inject_hyperparams(optax.sgd)(learning_rate=schedule).init(jnp.zeros(2))
    with pytest.raises(
        TypeError, match=r"driven by a schedule.*plateau_optax\.scale_by_plateau\(\)"
    ):
        plateau_optax.start(opt_state, PlateauConfig())


def test_bad_scales_are_named():
    tx = optax.chain(optax.sgd(0.1), plateau_optax.scale_by_plateau())
    opt_state = tx.init({"w": jnp.zeros(2)})
    with pytest.raises(ValueError, match=r"'lrs\[0\]' must be finite and >= 0, got -0.5"):
        plateau_optax.set_lrs(opt_state, -0.5)
    with pytest.raises(
        ValueError,
        match=r"'lrs' has 2 values but opt_state holds 1 plateau scales \(at opt_state\[1\]\)",
    ):
        plateau_optax.set_lrs(opt_state, [0.5, 0.5])
    integer = (opt_state[0], opt_state[1]._replace(scale=jnp.asarray(1)))
    with pytest.raises(TypeError, match=r"plateau scale at opt_state\[1\] has dtype int32"):
        plateau_optax.start(integer, PlateauConfig())
    wide = (opt_state[0], opt_state[1]._replace(scale=jnp.ones(2)))
    with pytest.raises(
        ValueError, match=r"plateau scale at opt_state\[1\] must be a single number"
    ):
        plateau_optax.get_lrs(wide)
    with pytest.raises(TypeError, match="'config' must be a PlateauConfig"):
        plateau_optax.start(opt_state, {"patience": 0})


def test_the_scale_takes_the_params_lowest_float_dtype_as_reduce_on_plateau_does():
    params = {"a": jnp.zeros(2, jnp.bfloat16), "b": jnp.zeros(2), "n": jnp.zeros(2, jnp.int32)}
    scale = plateau_optax.scale_by_plateau().init(params).scale
    reference = optax.contrib.reduce_on_plateau().init({"a": params["a"], "b": params["b"]})
    assert scale.dtype == reference.scale.dtype == jnp.bfloat16
    assert plateau_optax.scale_by_plateau().init({"n": params["n"]}).scale.dtype == jnp.float32
