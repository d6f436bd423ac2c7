"""plateau.adapters.keras.ReduceLROnPlateau against Keras 3's own callback (jax backend).

Two kinds of evidence: real ``model.fit`` runs of one tiny regression model, the
same run once with each callback, whose histories (losses and learning rates)
must be identical; and many random metric streams fed epoch by epoch to both
callbacks, each holding a real compiled model's optimizer, whose learning rates
must be bit-identical after every epoch.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import json
import logging
import os
import subprocess
import sys
import warnings

import attrs
import pytest

keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")  # keras depends on it; imported after the skip

from trainers._compat import claim  # noqa: E402

from plateau import Decision, PlateauConfig  # noqa: E402
from plateau.adapters.keras import ReduceLROnPlateau  # noqa: E402

# This module's row in docs/compatibility.md (tests/trainers/make_table.py).
TRAINER = "Keras `BackupAndRestore` (Keras callback)"
TESTED_WITH = "keras==3.15.1"
NOTE = (
    "BackupAndRestore saves no callback state: pass the callback the same backup_dir; "
    "Keras's own callback restarts its counters after an interruption"
)

pytestmark = pytest.mark.filterwarnings(
    # Keras 3.15's own callback reads the lr through np.array(variable) under jax.
    "ignore:__array__ implementation:DeprecationWarning"
)

_rng = np.random.default_rng(7)
_W = np.array([[1.0], [-2.0], [0.5], [0.0]], dtype="float32")
X = _rng.normal(size=(96, 4)).astype("float32")
Y = X @ _W + _rng.normal(scale=0.5, size=(96, 1)).astype("float32")
XV = _rng.normal(size=(32, 4)).astype("float32")
YV = XV @ _W + _rng.normal(scale=0.5, size=(32, 1)).astype("float32")

# Cuts at several epochs and then the floor within 14 epochs of this model.
FIT_ARGS = {"patience": 1, "factor": 0.5, "min_delta": 1e-3, "cooldown": 1, "min_lr": 0.01}


def make_model(optimizer=None):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(
        optimizer or keras.optimizers.SGD(learning_rate=0.3),
        loss="mse",
        metrics=["mae", keras.metrics.R2Score()],
    )
    return model


def multi():
    """A MultiOptimizer: one SGD for the kernel, one for the bias."""
    kernel = keras.optimizers.SGD(0.3, name="kernel_sgd")
    bias = keras.optimizers.SGD(0.05, name="bias_sgd")
    return keras.optimizers.MultiOptimizer(
        lambda variable: kernel if "kernel" in variable.path else bias
    )


def fit(model, callback, epochs, initial_epoch=0):
    history = model.fit(
        X,
        Y,
        validation_data=(XV, YV),
        epochs=epochs,
        initial_epoch=initial_epoch,
        batch_size=16,
        shuffle=False,
        verbose=0,
        callbacks=[callback],
    )
    return history.history


def cuts(lrs):
    return sum(b < a for a, b in itertools.pairwise(lrs))


# --- real fits ------------------------------------------------------------------


@claim("works", "history")
def test_fit_history_matches_keras_callback():
    theirs = fit(make_model(), keras.callbacks.ReduceLROnPlateau(**FIT_ARGS), epochs=14)
    callback = ReduceLROnPlateau(**FIT_ARGS)
    ours = fit(make_model(), callback, epochs=14)
    assert ours == theirs
    assert cuts(ours["learning_rate"]) >= 3
    assert ours["learning_rate"][-1] == float(np.float32(0.01))
    assert callback.state is not None and callback.state.last_epoch == 14


@pytest.mark.parametrize(("monitor", "mode"), [("val_r2_score", "max"), ("val_mae", "min")])
def test_auto_mode_is_resolved_from_the_compiled_metric(monitor, mode):
    kwargs = {**FIT_ARGS, "monitor": monitor, "min_delta": 1e-4}
    theirs = fit(make_model(), keras.callbacks.ReduceLROnPlateau(**kwargs), epochs=10)
    callback = ReduceLROnPlateau(**kwargs)
    assert callback.config is None  # not a loss: Keras waits for the compiled metrics
    ours = fit(make_model(), callback, epochs=10)
    assert callback.config is not None and callback.config.mode == mode
    assert ours == theirs and cuts(ours["learning_rate"]) >= 1


def test_unresolvable_auto_mode_raises_like_keras():
    """A logged metric of no known direction: Keras's own words (a missing one: see below)."""
    model = make_model()
    errors = []
    for callback in (keras.callbacks.ReduceLROnPlateau, ReduceLROnPlateau):
        callback = callback(monitor="val_custom")
        callback.set_model(model)
        with pytest.raises(ValueError) as info:
            callback.on_epoch_end(0, {"val_custom": 1.0, "loss": 1.0})
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert "isn't able to automatically determine" in errors[1]


def test_resumed_fit_continues_identically(tmp_path):
    whole = fit(make_model(), ReduceLROnPlateau(**FIT_ARGS), epochs=14)

    first = make_model()
    callback = ReduceLROnPlateau(**FIT_ARGS)
    head = fit(first, callback, epochs=5)
    first.save(tmp_path / "model.keras")
    saved = json.loads(json.dumps(callback.get_state(), allow_nan=False))

    resumed = ReduceLROnPlateau(**FIT_ARGS)
    resumed.set_state(saved)
    tail = fit(keras.models.load_model(tmp_path / "model.keras"), resumed, 14, initial_epoch=5)
    for key in ("learning_rate", "val_loss", "loss"):
        assert head[key] + tail[key] == whole[key]
    assert cuts(head["learning_rate"]) >= 1 and cuts(tail["learning_rate"]) >= 1

    # Without set_state a new fit starts afresh (as Keras 3.15 does), so the tail
    # differs: the restored counters are what made it identical.
    fresh = fit(
        keras.models.load_model(tmp_path / "model.keras"), ReduceLROnPlateau(**FIT_ARGS), 14, 5
    )
    assert fresh["learning_rate"] != tail["learning_rate"]


def test_restored_lr_is_written_into_a_fresh_optimizer():
    callback = ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5)
    callback.set_model(make_model())
    callback.on_train_begin()
    callback.on_epoch_end(0, {"loss": 1.0})
    callback.on_epoch_end(1, {"loss": 1.0})
    saved = callback.get_state()

    model = make_model()  # lr 0.3 again
    resumed = ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5)
    resumed.set_state(saved)
    resumed.set_model(model)
    resumed.on_train_begin()
    assert float(model.optimizer.learning_rate) == float(np.float32(np.float32(0.3) * 0.5))


def test_multi_optimizer_matches_keras_callback():
    kwargs = {**FIT_ARGS, "min_lr": 0.02}
    theirs = fit(make_model(multi()), keras.callbacks.ReduceLROnPlateau(**kwargs), epochs=12)
    callback = ReduceLROnPlateau(**kwargs)
    ours = fit(make_model(multi()), callback, epochs=12)
    assert ours == theirs
    lr_keys = sorted(key for key in ours if key.startswith("learning_rate_"))
    assert len(lr_keys) == 2 and all(cuts(ours[key]) >= 1 for key in lr_keys)
    assert callback.state is not None and len(callback.state.lrs) == 2


def test_missing_monitor_warns_and_skips_like_keras():
    model = make_model()
    callback = ReduceLROnPlateau(monitor="val_nope", mode="min", patience=0)
    with pytest.warns(UserWarning, match="`val_nope` which is not available.*val_loss"):
        history = fit(model, callback, epochs=3)
    assert history["learning_rate"] == [float(np.float32(0.3))] * 3
    assert callback.state is None


def test_missing_monitor_with_strict_raises_key_error_listing_keys():
    callback = ReduceLROnPlateau(monitor="val_nope", mode="min", strict=True)
    with pytest.raises(KeyError, match=r"'val_nope'.*available keys: .*val_loss"):
        fit(make_model(), callback, epochs=1)


@pytest.mark.parametrize("stop", [True, False])
def test_stop_when_exhausted_ends_a_real_fit(stop):
    """min_delta=1e3: nothing improves after epoch 0. Keras patience 1 cuts at every bad
    epoch: 0.3 -> 0.15 (epoch 1) -> 0.075 = min_lr (epoch 2); epoch 3 finds it at the floor."""
    kwargs = {"patience": 1, "factor": 0.5, "min_delta": 1e3, "min_lr": 0.075}
    callback = ReduceLROnPlateau(**kwargs, stop_when_exhausted=stop)
    history = fit(make_model(), callback, epochs=8)
    assert len(history["loss"]) == (4 if stop else 8)
    assert callback.state.decision.value == "at_floor"
    assert history["learning_rate"][-1] == pytest.approx(0.075)


# --- epoch by epoch against Keras's callback -------------------------------------


@pytest.fixture(scope="module")
def pair():
    """Two compiled models: one for Keras's callback, one for ours."""
    return make_model(), make_model()


def run_both(
    pair, metrics, lr=1.0, monitor="val_loss", same_logs=True, set_lr=None, counters=True, **kwargs
):
    """Feed both callbacks the same logs; return per epoch (Keras lr, our lr, Keras best,
    our state, Keras's best before the epoch). ``set_lr`` maps an epoch to an lr that
    something else (the user, another callback) writes into both optimizers before it.
    With `counters`, Keras's best, wait and cooldown_counter must read the same too."""
    callbacks = (
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, **kwargs),
        ReduceLROnPlateau(monitor=monitor, **kwargs),
    )
    for model, callback in zip(pair, callbacks):
        model.optimizer.learning_rate = lr
        callback.set_model(model)
        callback.on_train_begin()
    theirs, ours = callbacks
    rows, exhausted = [], False
    for epoch, metric in enumerate(metrics):
        best_before = theirs.best
        if set_lr and epoch in set_lr:
            for model in pair:
                model.optimizer.learning_rate = set_lr[epoch]
        logs = [{} if metric is None else {monitor: metric} for _ in callbacks]
        messages = []
        for callback, log in zip(callbacks, logs):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                callback.on_epoch_end(epoch, log)
            messages.append([str(w.message) for w in caught if w.category is UserWarning])
        assert messages[0] == messages[1], epoch
        assert logs[0] == logs[1] or not same_logs, epoch  # incl. the learning_rate added
        assert bool(messages[1]) == (metric is None)
        lrs = [float(model.optimizer.learning_rate) for model in pair]
        rows.append((*lrs, theirs.best, ours.state, best_before))
        # Keras's counters, as Keras reads them, until the first cut the core finds at the
        # floor (documented: Keras keeps counting there, the core enters cooldown).
        exhausted = exhausted or (ours.state is not None and ours.state.exhausted)
        if counters and not exhausted:
            assert_same_counters(theirs, ours, epoch)
    return rows


def assert_same_counters(theirs, ours, epoch):
    assert ours.wait == theirs.wait, epoch
    assert (ours.best is None) == (theirs.best is None), epoch
    assert ours.best is None or ours.best == np.float32(theirs.best), epoch
    pair = (ours.cooldown_counter, theirs.cooldown_counter)
    # Keras ends a cooldown at 1, the core at 0: after an improvement in its last epoch
    # only Keras's reads 1 (which it treats as 0).
    last_improved = ours.state.decision is Decision.IMPROVED and pair == (0, 1)
    assert pair[0] == pair[1] or last_improved, (epoch, pair)


def random_case(rng):
    length = int(rng.integers(5, 30))
    kind = rng.integers(3)
    if kind == 0:
        # float64 metrics closer together than float32 resolution (a custom float64
        # metric): Keras sees ties where float64 sees improvements; exact only
        # because the adapter rounds the metric to float32 as Keras compares it.
        level = np.repeat(rng.normal(size=length // 3 + 1), 3)[:length]
        metrics = (level * (1.0 + rng.integers(-4, 5, size=length) * 1e-8)).tolist()
        min_delta = 0.0
    elif kind == 1:  # float32 metrics, as Keras logs them
        trend = np.linspace(1.0, 0.2, length)
        noise = rng.normal(scale=rng.choice([1e-3, 1e-2, 0.1]), size=length)
        metrics = (trend + noise).astype(np.float32).astype(float).tolist()
        min_delta = float(rng.choice([1e-4, 1e-3, 1e-2, 0.0]))
    else:  # integers: ties everywhere, exact in float32 and float64
        metrics = rng.integers(0, 5, size=length).astype(float).tolist()
        min_delta = float(rng.choice([0.0, 0.5, 1.0, -1.0]))
    metrics = [-m for m in metrics] if rng.random() < 0.5 else metrics
    for i in range(1, length):
        # Missing keys anywhere; non-finite values after the first epoch (the first is
        # a documented difference, tested in test_translation_keras.py).
        if rng.random() < 0.08:
            metrics[i] = None
        elif rng.random() < 0.04:
            metrics[i] = float(rng.choice([np.nan, np.inf, -np.inf]))
    kwargs = {
        "factor": float(rng.choice([0.1, 0.3, 0.5, 0.9])),
        "patience": int(rng.integers(0, 5)),
        "cooldown": int(rng.integers(0, 5)),
        "min_delta": min_delta,
        "min_lr": float(rng.choice([0.0, 1e-3, 0.05, 0.3])),
        "mode": str(rng.choice(["min", "max"])),
    }
    # Not with a floor: once at it, Keras keeps counting bad epochs where the core (like
    # torch) enters cooldown, which shows after an external raise of the lr (pinned in
    # test_counters_at_the_floor_are_a_documented_difference).
    set_lr = {}
    if kind == 1 and kwargs["min_lr"] == 0.0:
        set_lr = {int(rng.integers(length)): float(rng.choice([0.7, 2e-3]))}
    return metrics, float(rng.choice([1.0, 0.1, 3e-4])), set_lr, kwargs


def test_same_lr_as_keras_every_epoch_on_random_streams(pair):
    rng = np.random.default_rng(1234)
    total_cuts = 0
    for _ in range(300):
        metrics, lr, set_lr, kwargs = random_case(rng)
        rows = run_both(pair, metrics, lr=lr, set_lr=set_lr, **kwargs)
        for epoch, (keras_lr, our_lr, keras_best, state, _) in enumerate(rows):
            assert our_lr == keras_lr, (epoch, metrics, lr, set_lr, kwargs)
            if metrics[epoch] is not None:  # a missing key leaves the state as it was
                assert state.lrs == (our_lr,)
                assert np.float32(keras_best) == state.best, (epoch, metrics, kwargs)
        total_cuts += cuts([lr] + [row[0] for row in rows])
    assert total_cuts > 300


def test_counters_at_the_floor_are_a_documented_difference(pair):
    # At the floor Keras does not reset its wait count; the core enters cooldown and
    # resets it, as torch does. The lrs agree while the lr stays at the floor; once
    # something else raises it, Keras cuts at the next bad epoch, the core after patience.
    metrics = [1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    kwargs = {"patience": 2, "factor": 0.5, "min_lr": 0.25, "min_delta": 0.0, "mode": "min"}
    rows = run_both(pair, metrics, lr=0.25, same_logs=False, set_lr={3: 1.0}, **kwargs)
    # Keras: at the floor at epoch 2 with wait=2, so epoch 3 (wait=3) cuts the raised lr.
    assert [row[0] for row in rows] == [0.25, 0.25, 0.25, 0.5, 0.5, 0.25]
    # The core: AT_FLOOR at epoch 2 resets the count; the next cut needs two bad epochs.
    assert [row[1] for row in rows] == [0.25, 0.25, 0.25, 1.0, 0.5, 0.5]
    assert rows[2][3].decision.value == "at_floor"


@pytest.mark.parametrize("off_grid", [False, True])
def test_float32_ties_are_the_only_residual_difference(pair, off_grid):
    """Accuracy-like metrics improving by exactly min_delta: Keras decides such a tie
    by rounding ``metric - min_delta`` to float32, the core in float64. Until the
    first epoch whose improvement test differs between those two, both callbacks set
    the same lrs; that epoch is always such a tie; and ties do occur. With min_delta
    off the metric's grid there are no ties and no differences."""
    rng = np.random.default_rng(99)
    diverged = 0
    for _ in range(60):
        samples = int(rng.choice([10, 50, 100]))
        steps = np.cumsum(rng.choice([0, 0, 1, 2], size=20))
        metrics = (np.minimum(steps, samples) / np.float32(samples)).astype(np.float32)
        min_delta = (float(rng.choice([1, 2])) - 0.5 * off_grid) / samples
        rows = run_both(
            pair,
            metrics.astype(float).tolist(),
            monitor="val_accuracy",
            same_logs=False,
            counters=False,  # best differs at the float32 tie, by design
            mode="max",
            patience=1,
            factor=0.5,
            min_delta=min_delta,
        )
        for epoch, (keras_lr, our_lr, keras_best, state, best_before) in enumerate(rows):
            if np.float32(keras_best) != np.float32(state.best):
                metric = float(metrics[epoch])
                keras_improved = np.float32(metric - min_delta) > np.float32(best_before)
                core_improved = metric > best_before + min_delta
                assert keras_improved != core_improved, (epoch, metrics, min_delta)
                diverged += 1
                break
            assert our_lr == keras_lr, (epoch, metrics, min_delta)
    assert diverged == 0 if off_grid else diverged > 0


def test_verbose_message_is_keras_message(pair, capsys):
    metrics = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    kwargs = {"patience": 1, "factor": 0.5, "min_lr": 0.05, "verbose": 1, "min_delta": 0.0}
    keras_cb = keras.callbacks.ReduceLROnPlateau(**kwargs)
    ours_cb = ReduceLROnPlateau(**kwargs)
    outputs = []
    for model, callback in zip(pair, (keras_cb, ours_cb)):
        model.optimizer.learning_rate = 0.3
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, metric in enumerate(metrics):
            callback.on_epoch_end(epoch, {"val_loss": metric})
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    expected = "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.15000000596046448.\n"
    assert expected in outputs[1]
    assert outputs[1].endswith("learning rate to 0.05.\n")  # the floor, as the user wrote it


def test_nonfinite_policies(pair):
    callback = ReduceLROnPlateau(patience=0, on_nonfinite="raise")
    callback.set_model(pair[1])
    callback.on_train_begin()
    callback.on_epoch_end(0, {"val_loss": 1.0})
    with pytest.raises(ValueError, match="finite"):
        callback.on_epoch_end(1, {"val_loss": float("nan")})

    callback = ReduceLROnPlateau(patience=0, on_nonfinite="skip")
    callback.set_model(pair[1])
    pair[1].optimizer.learning_rate = 0.5
    callback.on_train_begin()
    for epoch, metric in enumerate([1.0, float("nan"), float("inf"), 0.5]):
        callback.on_epoch_end(epoch, {"val_loss": metric})
    assert float(pair[1].optimizer.learning_rate) == 0.5
    assert callback.state is not None and callback.state.best == 0.5


@pytest.mark.parametrize("value", ["low", np.array([1.0, 2.0]), True, 10**400])
def test_metric_that_is_not_a_number_is_a_type_error(pair, value):
    callback = ReduceLROnPlateau(monitor="loss")
    callback.set_model(pair[1])
    callback.on_train_begin()
    with pytest.raises(TypeError, match=r"logs\['loss'\]: 'metric' must be a single real number"):
        callback.on_epoch_end(0, {"loss": value})
    assert callback.state is None


def test_metric_beyond_float32_range_is_infinite_as_keras_compares_it(pair):
    callback = ReduceLROnPlateau(monitor="loss", mode="max", patience=0)
    callback.set_model(pair[1])
    callback.on_train_begin()
    callback.on_epoch_end(0, {"loss": 1e39})
    assert callback.state is not None and callback.state.best == float("inf")


# --- construction and state --------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "up"}, ValueError, "'mode' must be one of"),
        ({"mode": None}, TypeError, "'mode' must be a str"),
        ({"monitor": 3}, TypeError, "'monitor' must be a str"),
        ({"factor": 1.0}, ValueError, "'factor' must be strictly between 0 and 1"),
        ({"patience": 2.5}, TypeError, "'patience' must be an int"),
        ({"patience": -1}, ValueError, "'patience' must be >= 0"),
        ({"min_lr": -1.0}, ValueError, "'min_lr' must be finite and >= 0"),
        ({"on_nonfinite": "ignore"}, ValueError, "'on_nonfinite' must be one of"),
        ({"strict": "yes"}, TypeError, "'strict' must be a bool"),
        ({"stop_when_exhausted": 1}, TypeError, "'stop_when_exhausted' must be a bool"),
        ({"verbose": "1"}, TypeError, "'verbose' must be an int"),
        ({"warmup_epochs": 1.5, "monitor": "val_acc"}, TypeError, "'warmup_epochs' must be an"),
        ({"factor": 1.5, "monitor": "val_acc"}, ValueError, "'factor' must be strictly"),
        ({"mode": "sideways", "monitor": "val_acc"}, ValueError, "'mode' must be one of"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ReduceLROnPlateau(**kwargs)


def test_config_is_the_torch_config_keras_arguments_mean():
    args = {"factor": 0.5, "patience": 3, "min_delta": -0.25, "cooldown": 2, "min_lr": 0.05}
    callback = ReduceLROnPlateau(mode="max", **args, warmup_epochs=2, on_nonfinite="skip")
    # Built by hand from Keras's documented meanings: P-1, C-1, abs(min_delta), float32 floor.
    assert callback.config == PlateauConfig(
        mode="max",
        factor=0.5,
        patience=2,
        cooldown=1,
        threshold=0.25,
        threshold_mode="abs",
        min_lr=float(np.float32(0.05)),
        eps=0.0,
        warmup_epochs=2,
        on_nonfinite="skip",
    )
    # mode="auto" waits for the compiled metric unless the monitor is a loss.
    assert ReduceLROnPlateau(monitor="loss").config.mode == "min"
    assert ReduceLROnPlateau(monitor="val_acc", mode="max").config.mode == "max"
    assert ReduceLROnPlateau(monitor="val_acc").config is None


def test_every_config_field_is_a_keyword_through_one_mapping():
    parameters = inspect.signature(ReduceLROnPlateau).parameters
    fields = {field.name for field in attrs.fields(PlateauConfig) if field.init}
    keras_own = {"mode", "factor", "patience", "cooldown", "min_lr"}
    by_min_delta = {"threshold", "threshold_mode", "eps"}  # Keras's: absolute, without eps
    settings = fields - keras_own - by_min_delta
    assert settings and settings <= set(parameters)
    assert not by_min_delta & set(parameters)
    for name in settings:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        default = parameters[name].default
        assert getattr(ReduceLROnPlateau(**{name: default}).config, name) == default, name
    beyond = ReduceLROnPlateau(ema_decay=0.5, accumulation_size=2, max_reductions=3).config
    assert (beyond.ema_decay, beyond.accumulation_size, beyond.max_reductions) == (0.5, 2, 3)
    with pytest.raises(TypeError, match="min_delta is an absolute threshold without eps"):
        ReduceLROnPlateau(threshold=0.1)
    with pytest.raises(TypeError, match="unknown setting 'nope'"):
        ReduceLROnPlateau(nope=1)


def test_a_plateau_config_is_taken_whole_and_fits_as_keras_callback():
    config = PlateauConfig.from_keras(**FIT_ARGS)
    callback = ReduceLROnPlateau(config=config)
    assert callback.config is config
    theirs = fit(make_model(), keras.callbacks.ReduceLROnPlateau(**FIT_ARGS), epochs=14)
    assert fit(make_model(), callback, epochs=14) == theirs
    with pytest.raises(TypeError, match=r"config= is the whole config, but Keras's \['patience'\]"):
        ReduceLROnPlateau(config=config, patience=3)
    with pytest.raises(TypeError, match=r"config= is the whole config, but \['warmup_epochs'\]"):
        ReduceLROnPlateau(config=config, warmup_epochs=2)
    with pytest.raises(TypeError, match=r"'config' must be a plateau\.PlateauConfig"):
        ReduceLROnPlateau(config={"patience": 2})


@pytest.mark.parametrize(
    ("d", "error", "match"),
    [
        ([], TypeError, "'d' must be a mapping, got list"),
        ({"config": None}, ValueError, r"must have the keys \['config', 'scaled', 'state'\]"),
        ({"config": None, "state": None, "scaled": None, "x": 1}, ValueError, r"'state', 'x'\]"),
        ({"config": None, "state": None, "scaled": [1]}, TypeError, "list of bools"),
        ({"config": None, "state": None, "scaled": (True,)}, TypeError, "list of bools"),
        ({"config": 3, "state": None, "scaled": None}, TypeError, r"^d\['config'\]: "),
        ({"config": {}, "state": {"format": "x"}, "scaled": None}, ValueError, r"^d\['config'\]"),
    ],
)
def test_set_state_refuses_bad_input_by_name_and_changes_nothing(d, error, match):
    callback = ReduceLROnPlateau(monitor="val_acc")
    with pytest.raises(error, match=match):
        callback.set_state(d)
    assert (callback.config, callback.state) == (None, None)


def stepped_state(monitor="val_loss", **kwargs):
    """get_state() after one epoch end on a compiled model: a state to resume."""
    callback = ReduceLROnPlateau(monitor=monitor, **kwargs)
    callback.set_model(make_model())
    callback.on_train_begin()
    callback.on_epoch_end(0, {monitor: 1.0})
    return callback.get_state()


def test_set_state_takes_only_this_callback_s_config():
    saved = stepped_state(patience=3)
    # The message names each field that differs, in the core's terms (Keras's 3 is torch's 2).
    differs = r"differs from this callback's config: patience=2 \(this callback's: 3\)"
    with pytest.raises(ValueError, match=differs):
        ReduceLROnPlateau(patience=4).set_state(saved)
    maximising = stepped_state(monitor="val_acc", mode="max")
    with pytest.raises(ValueError, match=r"mode='max' \(this callback's: 'min'\)"):
        ReduceLROnPlateau(monitor="val_acc", mode="min").set_state(maximising)
    with pytest.raises(ValueError, match="differs from this callback's config"):
        ReduceLROnPlateau(monitor="val_acc", patience=4).set_state(maximising)
    # Before its first epoch end a callback has nothing to resume: nothing is saved.
    assert ReduceLROnPlateau(patience=3).get_state() == {
        "config": None,
        "state": None,
        "scaled": None,
    }


def one_lr_state():
    """get_state() after two epochs of a single-optimizer model (one lr, one cut)."""
    callback = ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5)
    callback.set_model(make_model())
    callback.on_train_begin()
    callback.on_epoch_end(0, {"loss": 1.0})
    callback.on_epoch_end(1, {"loss": 1.0})
    return callback.get_state()


def test_failed_resume_changes_nothing_and_a_retry_still_resumes():
    saved = one_lr_state()
    callback = ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5)
    multi_model = make_model(multi())
    callback.set_model(multi_model)
    callback.set_state(saved)  # unbuilt: the MultiOptimizer has no sub-optimizers yet
    multi_model.optimizer.build(multi_model.trainable_variables)
    for _ in range(2):  # a retried fit() must fail the same way, not start afresh
        with pytest.raises(ValueError, match="holds 1 lrs but the model has 2 optimizers"):
            callback.on_train_begin()
        assert callback.get_state() == saved
    model = make_model()
    callback.set_model(model)
    callback.on_train_begin()
    assert float(model.optimizer.learning_rate) == saved["state"]["lrs"][0] != 0.3


def test_set_state_checks_the_lr_count_against_a_model_already_set():
    saved = one_lr_state()
    callback = ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5)
    multi_model = make_model(multi())
    multi_model.optimizer.build(multi_model.trainable_variables)
    callback.set_model(multi_model)
    before = callback.get_state()
    with pytest.raises(ValueError, match="holds 1 lrs but the model has 2 optimizers"):
        callback.set_state(saved)
    assert callback.get_state() == before
    callback.on_train_begin()  # not restored: starts afresh on the model's two lrs
    callback.on_epoch_end(0, {"loss": 1.0})
    assert callback.state is not None and len(callback.state.lrs) == 2


def test_unresolved_auto_mode_adopts_the_saved_mode():
    saved = stepped_state(monitor="val_acc", mode="max")
    callback = ReduceLROnPlateau(monitor="val_acc")
    callback.set_state(saved)
    assert callback.config is not None and callback.config.mode == "max"


def test_import_without_keras_names_the_extra():
    code = (
        "import sys; sys.modules['keras'] = None\n"
        "try:\n    import plateau.adapters.keras\n"
        "except ModuleNotFoundError as e:\n    print(e.name, '|', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "keras | plateau.adapters.keras requires keras; install 'plateau-lr[keras]'"
    )


@pytest.mark.parametrize(
    ("backend", "blocked"),
    [
        pytest.param(
            "tensorflow",
            "",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("tensorflow") is not None,
                reason="tensorflow is installed",
            ),
        ),
        ("jax", "jax"),  # an installed backend made unimportable
    ],
)
def test_import_without_the_backend_names_the_backend_not_the_extra(backend, blocked):
    # Keras is installed, but imports its backend module when it is itself imported.
    code = (
        f"import sys\nif {blocked!r}: sys.modules[{blocked!r}] = None\n"
        "try:\n    import plateau.adapters.keras\n"
        "except ModuleNotFoundError as e:\n    print(e.name, '|', e)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": backend}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    name, _, message = out.stdout.strip().partition(" | ")
    assert name == backend
    assert f"backend module '{backend}'" in message
    assert f"KERAS_BACKEND='{backend}'" in message
    assert "install a Keras backend (jax or torch)" in message
    assert "plateau-lr[keras]" not in message


# --- keras.callbacks.BackupAndRestore ------------------------------------------------


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("interrupted")


def _fit_with_backup(model, callback, backup_dir, epochs=14, interrupt_at=None):
    extra = [] if interrupt_at is None else [_Interrupt(interrupt_at)]
    history = model.fit(
        X,
        Y,
        validation_data=(XV, YV),
        epochs=epochs,
        batch_size=16,
        shuffle=False,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(str(backup_dir)), callback, *extra],
    )
    return history.history


@claim("works", "resume_from_plateau")
@pytest.mark.parametrize("interrupt_at", [3, 6, 9])
def test_an_interrupted_fit_under_backup_and_restore_resumes_as_if_uninterrupted(
    tmp_path, interrupt_at
):
    whole = _fit_with_backup(
        make_model(), ReduceLROnPlateau(**FIT_ARGS, backup_dir=tmp_path / "a"), tmp_path / "a"
    )
    assert cuts(whole["learning_rate"]) >= 2
    backup = tmp_path / "b"
    with pytest.raises(RuntimeError, match="interrupted"):
        _fit_with_backup(
            make_model(),
            ReduceLROnPlateau(**FIT_ARGS, backup_dir=backup),
            backup,
            interrupt_at=interrupt_at,
        )
    assert (backup / "plateau_state.json").exists()
    # A new process would build everything again: a fresh model, fresh callbacks.
    resumed = _fit_with_backup(
        make_model(), ReduceLROnPlateau(**FIT_ARGS, backup_dir=backup), backup
    )
    assert resumed["learning_rate"] == whole["learning_rate"][interrupt_at:]
    assert not backup.exists()  # a completed fit leaves no backup behind


def test_a_corrupt_backup_is_a_clear_error(tmp_path):
    (tmp_path / "plateau_state.json").write_text("{not json")
    callback = ReduceLROnPlateau(**FIT_ARGS, backup_dir=tmp_path)
    callback.set_model(make_model())
    with pytest.raises(ValueError, match=r"plateau_state\.json: cannot resume from it"):
        callback.on_train_begin()


def test_backup_dir_must_be_a_path():
    with pytest.raises(TypeError, match="'backup_dir' must be a path, got int: 3"):
        ReduceLROnPlateau(backup_dir=3)  # type: ignore[arg-type]


# --- Keras's public surface (issue 21) -----------------------------------------------


def test_verbose_messages_reach_the_log_when_interactive_logging_is_off(pair, caplog, capsys):
    """Cluster jobs turn interactive logging off: Keras's print_msg then logs through absl."""
    kwargs = {"patience": 1, "factor": 0.5, "min_lr": 0.05, "verbose": 1, "min_delta": 0.0}
    callbacks = (keras.callbacks.ReduceLROnPlateau(**kwargs), ReduceLROnPlateau(**kwargs))
    logged = []
    keras.config.disable_interactive_logging()
    try:
        for model, callback in zip(pair, callbacks):
            model.optimizer.learning_rate = 0.3
            callback.set_model(model)
            callback.on_train_begin()
            caplog.clear()
            with caplog.at_level(logging.INFO):
                for epoch in range(6):
                    callback.on_epoch_end(epoch, {"val_loss": 1.0})
            messages = [record.getMessage() for record in caplog.records]
            logged.append([m for m in messages if "ReduceLROnPlateau" in m])
    finally:
        keras.config.enable_interactive_logging()
    assert logged[0] == logged[1] and len(logged[1]) >= 2
    assert logged[1][-1].endswith("learning rate to 0.05.")
    assert capsys.readouterr().out == ""  # none of it went to stdout


def test_best_wait_and_cooldown_counter_are_writable_as_keras_s_and_reset_at_train_begin(pair):
    """User code writes the same values into both callbacks mid-run: same lrs, same reads."""
    kwargs = {"patience": 2, "cooldown": 3, "factor": 0.5, "min_delta": 0.0, "mode": "min"}
    callbacks = (keras.callbacks.ReduceLROnPlateau(**kwargs), ReduceLROnPlateau(**kwargs))
    for model, callback in zip(pair, callbacks):
        model.optimizer.learning_rate = 1.0
        callback.set_model(model)
        callback.on_train_begin()
    metrics = [3.0, 2.0, 2.0, 2.0, 2.5, 2.5, 1.0, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]
    writes = {4: {"cooldown_counter": 2}, 7: {"best": 0.5}, 9: {"wait": 1}, 11: {"best": None}}
    lrs = []
    for epoch, metric in enumerate(metrics):
        for callback in callbacks:
            for name, value in writes.get(epoch, {}).items():
                setattr(callback, name, value)
        for callback in callbacks:
            callback.on_epoch_end(epoch, {"val_loss": metric})
        lrs.append([float(model.optimizer.learning_rate) for model in pair])
        assert lrs[-1][0] == lrs[-1][1], epoch
        assert_same_counters(*callbacks, epoch)
    assert cuts([1.0] + [theirs for theirs, _ in lrs]) >= 2
    with pytest.raises(TypeError, match="'wait' must be an int"):
        callbacks[1].wait = 1.5
    for callback in callbacks:
        callback.on_train_begin()
        assert (callback.best, callback.wait, callback.cooldown_counter) == (None, 0, 0)


def test_a_cut_float32_cannot_hold_is_not_a_reduction(pair):
    """1.0 * (1 - 2**-30) rounds back to 1.0 in Keras's float32 variable: as a cut under eps."""
    rows = run_both(pair, [1.0, 2.0, 3.0, 4.0], patience=0, factor=1 - 2**-30, mode="min")
    assert [row[0] for row in rows] == [row[1] for row in rows] == [1.0] * 4
    states = [row[3] for row in rows]
    assert [s.decision for s in states] == [Decision.IMPROVED] + [Decision.AT_FLOOR] * 3
    assert states[-1].num_reductions == 0 and states[-1].exhausted


def test_a_misspelt_monitor_with_auto_mode_names_the_metrics_there_are():
    callback = ReduceLROnPlateau(monitor="val_los")
    match = r"monitor=val_los, which is not a metric of this fit: available metrics are loss, "
    with pytest.raises(ValueError, match=match) as ours:
        fit(make_model(), callback, epochs=1)
    assert "val_loss" in str(ours.value)
    with pytest.raises(ValueError, match="isn't able to automatically determine"):  # Keras's
        fit(make_model(), keras.callbacks.ReduceLROnPlateau(monitor="val_los"), epochs=1)
