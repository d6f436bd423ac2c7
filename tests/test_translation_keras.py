"""PlateauConfig.from_keras + plateau.simulate against keras.callbacks.ReduceLROnPlateau.

The pure translation, with no adapter in between: the real Keras 3 callback is
driven epoch by epoch on a real compiled model's optimizer, and its learning-rate
trajectory is compared with the core's on the same stream. The core keeps its lr
in float64 and Keras in float32, so values are compared to 1e-6 relative; every
cut is by a factor <= 0.9, so a cut one epoch early or late cannot hide in that
tolerance.

Streams are float32 values, as Keras logs them: the float32 comparison Keras
makes (documented in from_keras, exercised by the adapter's tests) then agrees
with the core's float64 one except within half a float32 ulp of ``best -/+
min_delta``; integer streams make ties exact in both, and the seeded float
streams do not land in that window.
"""

from __future__ import annotations

import pytest

import plateau
from plateau import PlateauConfig

try:
    import keras
    import numpy as np  # keras depends on it
except ImportError:  # the tests without a model still run, in the no-framework venv
    keras = np = None

pytestmark = pytest.mark.filterwarnings(
    # Keras 3.15's own callback reads the lr through np.array(variable) under jax.
    "ignore:__array__ implementation:DeprecationWarning"
)

N_STREAMS = 400


@pytest.fixture(scope="module")
def model():
    if keras is None:
        pytest.skip("keras is not installed")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    return model


def keras_lrs(model, metrics, **kwargs):
    """The lr after each epoch end of Keras's own callback, starting from lr 1.0."""
    model.optimizer.learning_rate = 1.0
    callback = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", **kwargs)
    callback.set_model(model)
    callback.on_train_begin()
    lrs = []
    for epoch, metric in enumerate(metrics):
        callback.on_epoch_end(epoch, {"val_loss": metric})
        lrs.append(float(model.optimizer.learning_rate))
    return lrs


def random_case(rng):
    """A stream and Keras arguments: plateaus, ties, both modes, floors, P and C in 0..4."""
    length = int(rng.integers(5, 30))
    if rng.random() < 0.5:
        metrics = rng.integers(0, 5, size=length).astype(float)
        min_delta = float(rng.choice([0.0, 0.5, 1.0, 2.0, -1.0]))
    else:
        trend = np.linspace(1.0, 0.2, length) * rng.choice([1.0, -1.0])
        noise = rng.normal(scale=rng.choice([1e-3, 1e-2, 0.1]), size=length)
        metrics = (trend + noise).astype(np.float32).astype(float)
        min_delta = float(rng.choice([0.0, 1e-4, 1e-3, 1e-2]))
    kwargs = {
        "factor": float(rng.choice([0.1, 0.5, 0.9])),
        "patience": int(rng.integers(0, 5)),
        "cooldown": int(rng.integers(0, 5)),
        "min_delta": min_delta,
        "min_lr": float(rng.choice([0.0, 1e-3, 0.05, 0.3])),
        "mode": str(rng.choice(["min", "max", "auto"])),
    }
    return metrics.tolist(), kwargs


def test_from_keras_matches_keras_callback_on_random_streams(model):
    rng = np.random.default_rng(20240604)
    reductions = 0
    for _ in range(N_STREAMS):
        metrics, kwargs = random_case(rng)
        config = PlateauConfig.from_keras(monitor="val_loss", **kwargs)
        ours = [state.lrs[0] for state in plateau.simulate(metrics, config, lrs=1.0)]
        theirs = keras_lrs(model, metrics, **kwargs)
        assert np.allclose(ours, theirs, rtol=1e-6, atol=0), (metrics, kwargs, ours, theirs)
        reductions += sum(b < a for a, b in zip([1.0, *theirs], theirs))
    # The streams must exercise the schedule, not just agree on "never reduce".
    assert reductions > N_STREAMS


@pytest.mark.parametrize(
    ("keras_patience", "keras_cooldown", "patience", "cooldown"),
    [(0, 0, 0, 0), (1, 1, 0, 0), (2, 0, 1, 0), (3, 2, 2, 1), (10, 5, 9, 4)],
)
def test_patience_and_cooldown_shift_by_one(keras_patience, keras_cooldown, patience, cooldown):
    config = PlateauConfig.from_keras(patience=keras_patience, cooldown=keras_cooldown)
    assert (config.patience, config.cooldown) == (patience, cooldown)
    assert (config.threshold_mode, config.eps) == ("abs", 0.0)


def test_worked_trace_patience_2_cooldown_2(model):
    # values [3,2,2,2,1,1,1,1,1,1], Keras P=2, C=2, factor 0.5, min_delta 0: cuts at 3, 6, 9.
    metrics = [3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    kwargs = {"patience": 2, "cooldown": 2, "factor": 0.5, "min_delta": 0.0, "mode": "min"}
    config = PlateauConfig.from_keras(**kwargs)
    ours = [state.lrs[0] for state in plateau.simulate(metrics, config)]
    assert ours == keras_lrs(model, metrics, **kwargs)
    assert [s.decision.value for s in plateau.simulate(metrics, config)][3::3] == ["reduced"] * 3


def test_min_lr_is_compared_as_keras_stores_it(model):
    # 0.05 is not a float32: Keras clamps its float32 variable to f32(0.05) and then
    # stops, because f32(0.05) > np.float32(0.05) is False. An unrounded floor would
    # see the stored lr as still above 0.05 and cut it again forever.
    config = PlateauConfig.from_keras(patience=0, factor=0.5, min_lr=0.05, min_delta=0.0)
    assert config.min_lr == float(np.float32(0.05)) != 0.05
    metrics = [1.0] * 8
    states = plateau.simulate(metrics, config)
    theirs = keras_lrs(model, metrics, patience=0, factor=0.5, min_lr=0.05, min_delta=0.0)
    assert np.allclose([s.lrs[0] for s in states], theirs, rtol=1e-6, atol=0)
    assert states[-1].decision.value == "at_floor" and theirs[-1] == config.min_lr


def test_auto_mode_needs_a_loss_monitor():
    assert PlateauConfig.from_keras(mode="auto", monitor="val_loss").mode == "min"
    assert PlateauConfig.from_keras(mode="auto", monitor="loss").mode == "min"
    with pytest.raises(ValueError, match="val_accuracy"):
        PlateauConfig.from_keras(mode="auto", monitor="val_accuracy")


@pytest.mark.parametrize(
    ("metrics", "keras_only"),
    [
        # Documented in from_keras, not reproduced: a first non-finite metric becomes
        # Keras's best; the core counts it as a bad epoch, as torch does.
        ([float("nan"), 5.0, 4.0, 3.0, 2.0], [1.0, 1.0, 0.5, 0.5, 0.25]),
        ([float("inf")] * 3, [1.0, 1.0, 0.5]),
    ],
)
def test_first_nonfinite_metric_is_a_documented_difference(model, metrics, keras_only):
    kwargs = {"patience": 2, "factor": 0.5, "min_delta": 0.0, "mode": "min"}
    config = PlateauConfig.from_keras(**kwargs)
    assert keras_lrs(model, metrics, **kwargs) == keras_only
    assert [s.lrs[0] for s in plateau.simulate(metrics, config)] != keras_only
