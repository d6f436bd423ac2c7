"""The in-graph plateau, ``plateau_optax.reduce_on_plateau``, against the core and optax.

Expected values come from elsewhere than the code under test: the core on Python
floats (``plateau.simulate``), the host adapter (``plateau_optax.step``) and optax's
own ``optax.contrib.reduce_on_plateau``. Each test jits few programs -- one
``lax.scan`` over a stream, vmapped over many streams, per config -- since XLA's
CPU compiler tires after some hundreds. x64 is on only inside the ``x64`` fixture.
"""

from __future__ import annotations

import json
import random

import pytest

import plateau
from plateau import Decision, PlateauConfig, PlateauState

pytest.importorskip("optax")
import jax
import jax.numpy as jnp
import numpy as np
import optax

from plateau.adapters import optax as plateau_optax
from plateau.adapters.optax import ReduceOnPlateauState, reduce_on_plateau

DECISIONS = list(Decision)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def scan(tx, streams, params=None, *, batched=True):
    """The states after each update of `tx` on each stream, from one jitted scan per stream:
    vmapped, or (not `batched`) one after the other, as XLA compiles them differently."""

    def run(stream):
        def body(state, value):
            _, state = tx.update(params, state, params, value=value)
            return state, state

        return jax.lax.scan(body, tx.init(params), stream)[1]

    over_streams = jax.vmap(run) if batched else lambda streams: jax.lax.map(run, streams)
    return jax.device_get(jax.jit(over_streams)(jnp.asarray(streams)))


def at(states, *index):
    """One state of a stacked (streams, steps) ReduceOnPlateauState."""
    return ReduceOnPlateauState(*(leaf[index] for leaf in states))


def random_streams(rng, count, length):
    """Random walks on a coarse grid (ties, plateaus, both signs), with NaN and +-inf."""
    streams = np.round(rng.normal(size=(count, length)).cumsum(axis=1) * 0.4, 1)
    draw = rng.random(streams.shape)
    streams[draw < 0.02] = np.nan
    streams[(draw >= 0.02) & (draw < 0.03)] = np.inf
    streams[(draw >= 0.03) & (draw < 0.035)] = -np.inf
    return streams


def random_config(pick: random.Random) -> PlateauConfig:
    """A config the graph runs, drawn across every field it honours."""
    warmup = pick.choice([0, 0, 1, 3])
    return PlateauConfig(
        mode=pick.choice(["min", "max"]),
        factor=pick.choice([0.1, 0.5, 0.7, 1 / 3]),
        patience=pick.choice([0, 1, 2, 3]),
        threshold=pick.choice([0.0, 1e-4, 0.01, 0.1]),
        threshold_mode=pick.choice(["rel", "abs", "rel_abs"]),
        cooldown=pick.choice([0, 0, 1, 2]),
        min_lr=pick.choice([0.0, 0.01, (0.05,), 0.3]),
        eps=pick.choice([0.0, 1e-8, 0.02]),
        on_nonfinite=pick.choice(["bad", "skip"]),
        accumulation_size=pick.choice([1, 1, 2, 3]),
        ema_decay=pick.choice([None, None, 0.5, 0.9]),
        max_reductions=pick.choice([None, None, 0, 2]),
        warmup_epochs=warmup,
        warmup_start_factor=pick.choice([0.0, 0.25]) if warmup else 0.0,
    )


# --- x64: the core's states, bit for bit ---------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_x64_states_equal_simulate_on_random_streams(x64, seed):
    config = random_config(random.Random(seed))
    streams = random_streams(np.random.default_rng(seed), 24, 90)
    states = scan(reduce_on_plateau(config), streams, batched=seed % 2 == 0)
    assert states.scale.dtype == np.float64 and states.best.dtype == np.float64
    for i, stream in enumerate(streams):
        expected = plateau.simulate(stream.tolist(), config)
        assert states.scale[i].tolist() == [state.lrs[0] for state in expected]
        got = [at(states, i, t).to_plateau_state(config) for t in range(len(stream))]
        assert got == expected, config


def test_x64_streams_reach_every_decision_the_graph_can_make(x64):
    """The random configs above are not vacuous: together they make each decision."""
    seen = set()
    for seed in range(10):
        config = random_config(random.Random(seed))
        for stream in random_streams(np.random.default_rng(seed), 24, 90):
            seen |= {state.decision for state in plateau.simulate(stream.tolist(), config)}
    assert seen == set(Decision) - {Decision.START}


# --- compiled once ---------------------------------------------------------------------------


def test_a_jitted_train_step_traces_once_however_the_plateau_moves():
    config = PlateauConfig(
        patience=0, factor=0.5, cooldown=1, warmup_epochs=2, accumulation_size=2,
        ema_decay=0.5, max_reductions=2, on_nonfinite="skip",
    )  # fmt: skip
    tx = optax.chain(optax.sgd(0.1), reduce_on_plateau(config))
    traces = []

    @jax.jit
    def train_step(params, opt_state, value):
        traces.append(value)  # runs when traced, not when called
        grads = jax.tree.map(jnp.ones_like, params)
        updates, opt_state = tx.update(grads, opt_state, params, value=value)
        return optax.apply_updates(params, updates), opt_state

    params = {"w": jnp.zeros(2), "b": jnp.zeros((), jnp.bfloat16)}
    opt_state = tx.init(params)
    decisions = []
    for value in [5, 4, 3, np.nan, 3, 4, 4, 5, 6, 7, 8, 9, 9, 9, 2, 1]:
        params, opt_state = train_step(params, opt_state, jnp.float32(value))
        decisions.append(DECISIONS[int(opt_state[1].decision)])
    assert len(traces) == 1
    assert {Decision.WARMUP, Decision.ACCUMULATING, Decision.SKIPPED} <= set(decisions)
    assert {Decision.REDUCED, Decision.COOLDOWN, Decision.CAPPED} <= set(decisions)
    assert params["b"].dtype == jnp.bfloat16  # the scale is applied in the update's dtype


# --- optax.contrib.reduce_on_plateau, where the rules coincide ---------------------------------
#
# The rules coincide exactly for the configs PlateauConfig.from_optax makes. optax's
# compiled running mean is not its expression, though: XLA fuses ``count * avg + value``
# into one multiply-add and, under vmap, divides by multiplying with a reciprocal. So
# with accumulation the streams lie on a dyadic grid (k/16, blocks of 2), where those
# are exact; without it, any stream.


def random_optax_arguments(pick: random.Random, accumulation_size: int) -> dict:
    """optax's arguments with a torch equivalent: PlateauConfig.from_optax accepts them."""
    relative = pick.random() < 0.5
    return {
        "factor": pick.choice([0.1, 0.5, 0.8, 1 / 3]),
        "patience": pick.choice([1, 2, 3, 4]),
        "rtol": pick.choice([1e-4, 0.01, 0.1]) if relative else 0.0,
        "atol": 0.0 if relative else pick.choice([0.01, 0.1, 0.5]),
        "cooldown": pick.choice([0, 1, 3]),
        "accumulation_size": accumulation_size,
        "min_scale": pick.choice([0.0, 0.01, 0.2]),
    }


def optax_streams(seed: int, accumulation_size: int):
    streams = random_streams(np.random.default_rng(seed), 32, 90)
    return streams * 1.37 if accumulation_size == 1 else np.round(streams * 16) / 16


def assert_equal_to_optax_contrib(arguments, streams, params):
    """Both transformations' scales and bests after each update, from one program."""
    theirs = optax.contrib.reduce_on_plateau(**arguments)
    ours = reduce_on_plateau(PlateauConfig.from_optax(**arguments))
    states = scan(optax.chain(theirs, ours), streams, params)  # both see each value
    np.testing.assert_array_equal(states[1].scale, states[0].scale)
    np.testing.assert_array_equal(states[1].best, states[0].best_value)
    assert states[1].scale.dtype == states[0].scale.dtype == params.dtype
    assert (states[1].scale < 1.0).any(), "no cut: the comparison is vacuous"
    return states[1]


@pytest.mark.parametrize(("seed", "accumulation_size"), [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2)])
def test_float32_equals_optax_contrib_where_the_rules_coincide(seed, accumulation_size):
    arguments = random_optax_arguments(random.Random(seed), accumulation_size)
    streams = optax_streams(seed, accumulation_size)
    assert_equal_to_optax_contrib(arguments, streams, jnp.zeros((), jnp.float32))


@pytest.mark.parametrize(("seed", "accumulation_size"), [(5, 1), (6, 2)])
def test_x64_equals_optax_contrib_and_simulate(x64, seed, accumulation_size):
    arguments = random_optax_arguments(random.Random(seed), accumulation_size)
    streams = optax_streams(seed, accumulation_size)
    ours = assert_equal_to_optax_contrib(arguments, streams, jnp.zeros((), jnp.float64))
    config = PlateauConfig.from_optax(**arguments)
    for stream, scales in zip(streams, ours.scale):
        assert scales.tolist() == [s.lrs[0] for s in plateau.simulate(stream.tolist(), config)]


# --- float32: the documented differences ---------------------------------------------------


def test_float32_does_not_see_an_improvement_below_its_resolution(x64):
    config = PlateauConfig(patience=0, threshold=0.0, threshold_mode="abs")
    metrics = [1.0, 1.0 - 1e-9]  # equal in float32
    assert plateau.simulate(metrics, config)[1].decision is Decision.IMPROVED
    assert DECISIONS[scan(reduce_on_plateau(config), [metrics]).decision[0, 1]] is Decision.IMPROVED
    with jax.enable_x64(False):
        states = scan(reduce_on_plateau(config), [metrics])
    assert DECISIONS[states.decision[0, 1]] is Decision.REDUCED


def test_float32_scales_are_within_a_rounding_per_cut_of_simulate():
    """On integer metrics (no float32 near-ties) the decisions are the core's exactly,
    and after k cuts the float32 scale is within (2k + 1) float32 roundings of
    float64's: each cut rounds the factor and the product, and min_lr is rounded."""
    config = PlateauConfig(patience=1, factor=0.1, cooldown=1, min_lr=3e-7, eps=1e-9)
    rng = np.random.default_rng(0)
    streams = rng.integers(-20, 20, size=(32, 80)).astype(np.float64)
    states = scan(reduce_on_plateau(config), streams)
    assert states.scale.dtype == np.float32
    for i, stream in enumerate(streams):
        expected = plateau.simulate(stream.tolist(), config)
        assert [DECISIONS[d] for d in states.decision[i]] == [s.decision for s in expected]
        exact = np.array([s.lrs[0] for s in expected])
        bound = (2 * np.array([s.num_reductions for s in expected]) + 1) * 2.0**-24 * exact
        assert (np.abs(states.scale[i] - exact) <= bound).all()
    assert states.num_reductions.max() >= 4  # cuts down to the floor


# --- resume: the host adapter's checkpoints and back -----------------------------------------

RESUME_CONFIG = PlateauConfig(
    patience=1, factor=0.5, cooldown=1, warmup_epochs=3, warmup_start_factor=0.25,
    accumulation_size=2, ema_decay=0.5, max_reductions=3, min_lr=0.05,
)  # fmt: skip
RESUME_METRICS = [9.0, 8.0, 7.0, 7.5, 6.0, 6.5, 6.2, 6.4, 6.3, 6.6, 6.1, 6.9, 7.0, 7.1, 5.0]
RESUME_METRICS += [5.5, 5.6, 5.7, 5.8, 5.9, 6.0, 6.1, 6.2, 6.3, 6.4, 6.5]


RESUME_TX = optax.chain(optax.sgd(0.1), reduce_on_plateau(RESUME_CONFIG))
RESUME_UPDATE = jax.jit(RESUME_TX.update)  # one program for every cut point


def saved(state: PlateauState) -> PlateauState:
    """`state` through a JSON checkpoint."""
    return PlateauState.from_dict(json.loads(json.dumps(state.to_dict())))


def host_run(opt_state, state, metrics):
    """The host adapter's states, one per metric, and the opt_state after the last."""
    states = []
    for metric in metrics:
        state, opt_state = plateau_optax.step(state, metric, RESUME_CONFIG, opt_state)
        states.append(state)
    return states, opt_state


@pytest.mark.parametrize("stop", [1, 3, 4, 9, 16])
def test_in_graph_resumes_a_host_checkpoint_and_back(x64, stop):
    params = {"w": jnp.zeros(2, jnp.float64)}
    host_tx = optax.chain(optax.sgd(0.1), plateau_optax.scale_by_plateau())
    first, host_opt_state = plateau_optax.start(host_tx.init(params), RESUME_CONFIG)
    uninterrupted, _ = host_run(host_opt_state, first, RESUME_METRICS)

    # Host for `stop` steps, a checkpoint, then the graph to the end.
    before, host_opt_state = host_run(host_opt_state, first, RESUME_METRICS[:stop])
    state = ReduceOnPlateauState.from_plateau_state(saved(before[-1]), RESUME_CONFIG)
    opt_state, resumed = (host_opt_state[0], state), []
    for metric in RESUME_METRICS[stop:]:
        _, opt_state = RESUME_UPDATE(params, opt_state, params, value=metric)
        resumed.append(opt_state[1].to_plateau_state(RESUME_CONFIG))
    assert before + resumed == uninterrupted

    # The graph for `stop` steps, a checkpoint, then the host to the end.
    opt_state = RESUME_TX.init(params)
    for metric in RESUME_METRICS[:stop]:
        _, opt_state = RESUME_UPDATE(params, opt_state, params, value=metric)
    checkpoint = saved(opt_state[1].to_plateau_state(RESUME_CONFIG))
    host_opt_state = plateau_optax.set_lrs(host_tx.init(params), checkpoint.lrs)
    after, _ = host_run(host_opt_state, checkpoint, RESUME_METRICS[stop:])
    assert uninterrupted[stop - 1] == checkpoint
    assert after == uninterrupted[stop:]


def test_a_checkpoint_mid_warmup_resumes_its_ramp(x64):
    """The conversion keeps the base and the ramp's step, which the cut points above pass."""
    states = plateau.simulate(RESUME_METRICS[:2], RESUME_CONFIG)
    assert states[-1].base_lrs == (1.0,) and states[-1].warmup_epoch == 2
    state = ReduceOnPlateauState.from_plateau_state(states[-1], RESUME_CONFIG)
    assert state.to_plateau_state(RESUME_CONFIG) == states[-1]


# --- what the graph refuses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"detector": "window_best"}, "'detector'"),
        ({"detector": "slope"}, "'detector'"),
        ({"on_nonfinite": "raise"}, "'on_nonfinite'"),
        ({"min_lr": (0.1, 0.2)}, "'min_lr'"),
    ],
)
def test_a_config_the_graph_cannot_run_is_refused_by_name(fields, named):
    config = PlateauConfig(**fields)
    with pytest.raises(ValueError, match=named):
        reduce_on_plateau(config)
    with pytest.raises(ValueError, match=named):
        ReduceOnPlateauState.from_plateau_state(plateau.init(1.0, PlateauConfig()), config)


def test_wrong_types_are_refused_by_name():
    with pytest.raises(TypeError, match="'config'"):
        reduce_on_plateau({"patience": 1})
    with pytest.raises(TypeError, match="'state'"):
        ReduceOnPlateauState.from_plateau_state({"lrs": [1.0]}, PlateauConfig())
    state = reduce_on_plateau(PlateauConfig()).init(None)
    with pytest.raises(TypeError, match="'config'"):
        state.to_plateau_state(None)


def test_a_state_of_several_lrs_is_refused():
    with pytest.raises(ValueError, match="'state' holds 2 lrs"):
        ReduceOnPlateauState.from_plateau_state(
            plateau.init([1.0, 0.5], PlateauConfig()), PlateauConfig()
        )


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (jnp.ones(2), ValueError, "'value' must be a single number, got shape \\(2,\\)"),
        (jnp.asarray(1 + 2j), TypeError, "'value' must be a real number, got dtype complex64"),
        (jnp.asarray(True), TypeError, "'value' must be a real number, got dtype bool"),
    ],
)
def test_a_value_that_is_not_one_real_number_is_refused(value, error, message):
    tx = reduce_on_plateau(PlateauConfig())
    with pytest.raises(error, match=message):
        tx.update(None, tx.init(None), value=value)


def test_a_one_element_value_is_the_number_it_holds():
    tx = reduce_on_plateau(PlateauConfig())
    _, state = tx.update(None, tx.init(None), value=jnp.full((1, 1), 2.5))
    assert float(state.best) == 2.5
