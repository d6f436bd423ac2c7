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

The tests after those need no framework (they run in the no-framework venv too):
the Keras callback's pure pieces in plateau._keras_format, its config, its
get_state / set_state dict and their checks, its messages and its backup file.
"""

from __future__ import annotations

import array
import json
import os
import warnings

import pytest

import plateau
from plateau import PlateauConfig
from plateau import _keras_format as fmt

try:
    import keras
    import numpy as np  # keras depends on it
except ImportError:  # the framework-free tests below still run, in the no-framework venv
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


# The callback's pure pieces: no framework below this line.

ARGS = {"factor": 0.5, "patience": 3, "min_delta": -0.25, "cooldown": 2, "min_lr": 0.05}


def float32(value):
    """`value` rounded to float32 by the standard library's array, not by _translate.f32."""
    return array.array("f", [value])[0]


def test_keras_config_is_the_torch_config_keras_arguments_mean():
    config = fmt.config_for("max", {**ARGS, "warmup_epochs": 2, "on_nonfinite": "skip"})
    # Built by hand from Keras's documented meanings: P-1, C-1, abs(min_delta), float32 floor.
    expected = PlateauConfig(
        mode="max",
        factor=0.5,
        patience=2,
        cooldown=1,
        threshold=0.25,
        threshold_mode="abs",
        min_lr=float32(0.05),
        eps=0.0,
        warmup_epochs=2,
        on_nonfinite="skip",
    )
    assert config == expected


def test_first_config_waits_for_the_model_but_not_for_bad_arguments():
    assert fmt.first_config("auto", "loss", ARGS).mode == "min"
    assert fmt.first_config("max", "val_acc", ARGS).mode == "max"
    assert fmt.first_config("auto", "val_acc", ARGS) is None
    with pytest.raises(ValueError, match="'mode' must be one of"):
        fmt.first_config("sideways", "val_acc", ARGS)
    with pytest.raises(ValueError, match="'factor'"):  # while the mode waits too
        fmt.first_config("auto", "val_acc", {**ARGS, "factor": 1.5})
    with pytest.raises(TypeError, match="'warmup_epochs'"):
        fmt.first_config("auto", "val_acc", {**ARGS, "warmup_epochs": 1.5})


@pytest.mark.parametrize(
    ("position", "field", "value"),
    [(0, "verbose", "1"), (1, "strict", 1), (2, "stop_when_exhausted", None), (3, "backup_dir", 3)],
)
def test_options_refuse_a_wrong_type_by_name(position, field, value):
    options = [0, False, False, None]
    options[position] = value
    with pytest.raises(TypeError, match=f"'{field}' must be a"):
        fmt.check_options(*options)


def test_options_give_the_backup_file_in_the_backup_dir(tmp_path):
    assert fmt.check_options(1, True, True, None) is None
    path = fmt.check_options(0, False, False, os.fspath(tmp_path))
    assert (path.parent, path.name) == (tmp_path, "plateau_state.json")


def test_state_dict_round_trips_through_strict_json():
    config = fmt.config_for("min", ARGS)
    state = plateau.simulate([1.0, 2.0, 2.0, 2.0, 2.0, float("nan")], config, lrs=(0.1, 1.0))[-1]
    for scaled in (None, [False, True]):
        d = json.loads(json.dumps(fmt.state_dict(config, state, scaled), allow_nan=False))
        assert ("scaled" in d) is (scaled is not None)
        assert fmt.read_state(d, config, ARGS) == (config, state, scaled)
    empty = fmt.state_dict(None, None, None)
    assert empty == {"config": None, "state": None}
    assert fmt.read_state(empty, config, ARGS) == (config, None, None)


def test_read_state_adopts_the_saved_mode_only_while_auto_is_unresolved():
    saved = fmt.state_dict(fmt.config_for("max", ARGS), None, None)
    assert fmt.read_state(saved, None, ARGS)[0].mode == "max"
    with pytest.raises(ValueError, match="is not this callback's config"):
        fmt.read_state(saved, fmt.config_for("min", ARGS), ARGS)
    with pytest.raises(ValueError, match="is not this callback's config"):
        fmt.read_state(saved, None, {**ARGS, "patience": 4})


@pytest.mark.parametrize(
    ("d", "error", "match"),
    [
        ([], TypeError, "'d' must be a mapping, got list"),
        ({"config": None}, ValueError, r"must have the keys \['config', 'state'\]"),
        ({"config": None, "state": None, "x": 1}, ValueError, r"got \['config', 'state', 'x'\]"),
        ({"config": None, "state": None, "scaled": [1]}, TypeError, "must be a list of bools"),
        ({"config": None, "state": None, "scaled": (True,)}, TypeError, "list of bools"),
        ({"config": 3, "state": None}, TypeError, r"^d\['config'\]: "),
        ({"config": None, "state": {"format": "x"}}, ValueError, r"^d\['state'\]: "),
    ],
)
def test_read_state_refuses_by_name(d, error, match):
    with pytest.raises(error, match=match):
        fmt.read_state(d, None, ARGS)


def test_restored_state_must_fit_the_model():
    state = plateau.init((0.1, 1.0), PlateauConfig())
    fmt.check_restored(state, None, [False, True])  # older states: no units
    fmt.check_restored(state, (False, True), [False, True])
    with pytest.raises(ValueError, match="holds 2 lrs but the model has 3 optimizers"):
        fmt.check_restored(state, None, [False, True, True])
    with pytest.raises(ValueError, match="holds 2 lrs but the model has 1 optimizers"):
        fmt.check_count(state, 1)
    with pytest.raises(
        ValueError, match=r"are \[an lr, a schedule's scale\] but .* take \[an lr, an lr\]"
    ):
        fmt.check_restored(state, [False, True], [False, False])


def test_min_lr_must_be_one_kind_of_floor():
    one, two = [("a", object())], [("a", object()), ("b", object())]
    fmt.check_min_lr(5.0, one, [False])  # an lr's floor: no bound
    fmt.check_min_lr(1.0, two, [True, True])
    fmt.check_min_lr(0.0, two, [True, False])
    with pytest.raises(ValueError, match=r"floor of the schedule's scale.*got 1\.5"):
        fmt.check_min_lr(1.5, one, [True])
    with pytest.raises(ValueError, match=r"a scale for the sub-optimizers .* lr for \['b'\]"):
        fmt.check_min_lr(0.5, two, [True, False])


def test_metric_is_rounded_to_float32_and_a_missing_one_is_keras_warning():
    assert fmt.metric_from_logs({"loss": 0.1}, "loss", strict=False) == float32(0.1) != 0.1
    assert fmt.metric_from_logs({"loss": 1e39}, "loss", strict=False) == float("inf")
    with pytest.warns(UserWarning, match="`val_loss` which is not available.*: loss,lr\\.$"):
        assert fmt.metric_from_logs({"loss": 1.0, "lr": 0.1}, "val_loss", strict=False) is None
    with pytest.raises(KeyError, match=r"'val_loss' is not in the logs .*available keys: loss"):
        fmt.metric_from_logs({"loss": 1.0}, "val_loss", strict=True)
    for bad in ("0.5", True, [1.0, 2.0]):
        with pytest.raises(TypeError, match=r"logs\['loss'\]: 'metric' must be a single real"):
            fmt.metric_from_logs({"loss": bad}, "loss", strict=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a present key warns nothing
        assert fmt.metric_from_logs({"acc": 2}, "acc", strict=True) == 2.0


class Metric:
    def __init__(self, name, direction=None):
        self.name = name
        if direction is not None:
            self._direction = direction


def test_direction_is_the_last_compiled_metric_of_that_name():
    metrics = [Metric("mae", "down"), Metric("acc", "up"), Metric("auc")]
    assert fmt.direction("val_acc", metrics) == "up"
    assert fmt.direction("mae", metrics) == "down"
    assert fmt.direction("val_auc", metrics) is None  # no direction: unresolved
    assert fmt.direction("nope", metrics) is None
    assert fmt.direction("acc", [*metrics, Metric("acc", "down")]) == "down"


def test_cut_messages_are_keras_words_with_the_floor_as_given():
    config = fmt.config_for("min", ARGS)
    read, lrs = (1.0, 1.0, 0.5), (0.5, float32(0.05), 0.5)
    lines = fmt.cut_messages(6, ["", "b", "c"], [False, True, False], read, lrs,
                                          0.05, config)  # fmt: skip
    # Keras's: f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}."
    assert lines == [
        "\nEpoch 7: ReduceLROnPlateau reducing learning rate to 0.5.",
        "\nEpoch 7: ReduceLROnPlateau reducing b learning rate scale to 0.05.",
    ]


def test_backup_round_trips_and_a_bad_one_names_the_file(tmp_path):
    path = tmp_path / "sub" / "plateau_state.json"
    d = fmt.state_dict(fmt.config_for("min", ARGS), None, [True])
    fmt.write_backup(path, d)
    with fmt.resuming(path) as loaded:
        assert loaded == d
    with pytest.raises(ValueError, match="Out of range float values"):
        fmt.write_backup(path, {"x": float("nan")})  # strict JSON, refused
    assert json.loads(path.read_text()) == d  # ... and the backup is untouched
    for problem in ("{not json", None):
        if problem is None:
            path.unlink()  # an OSError too
        else:
            path.write_text(problem)
        bad = pytest.raises(ValueError, match=r"plateau_state\.json: cannot resume from it")
        with bad, fmt.resuming(path):
            pass
    path.write_text("{}")
    bad = pytest.raises(ValueError, match=r"cannot resume from it: 'd' must have the keys")
    with bad, fmt.resuming(path) as loaded:
        fmt.read_state(loaded, None, ARGS)  # what set_state raises, named


def test_scale_variable_must_be_a_float32_scalar():
    fmt.check_scale((), "float32")
    for shape, dtype in (((1,), "float32"), ((), "float64")):
        with pytest.raises(TypeError, match=r"'scale' must be a scalar float32 keras\.Variable"):
            fmt.check_scale(shape, dtype)


def test_import_errors_name_the_extra_or_the_backend():
    missing = fmt.import_error(ModuleNotFoundError(name="keras"), "jax")
    assert (missing.name, str(missing)) == (
        "keras",
        "plateau.adapters.keras requires keras; install 'plateau-lr[keras]'",
    )
    backend = fmt.import_error(ModuleNotFoundError(name="tensorflow"), None)
    assert backend.name == "tensorflow"
    assert "could not import its backend module 'tensorflow' (KERAS_BACKEND=None)" in str(backend)
    assert fmt.import_error(ModuleNotFoundError(name="keras.src.x"), None) is None
    assert fmt.import_error(ImportError("cannot import name"), None) is None
