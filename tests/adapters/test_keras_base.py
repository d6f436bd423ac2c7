"""The Keras callback's warmup and its plateau over a LearningRateSchedule, in real fits.

What the optimizer trained at is measured, not read back from the callback: the
model carries a probe weight ``p`` whose loss term is ``p`` itself, so its
gradient is exactly 1 and plain SGD moves it by exactly ``-lr`` at every
iteration (in float32). Replaying ``p - lr`` with the lrs the pure core gives
for the recorded validation metric (``plateau.simulate``, ``plateau.scale_base``
on the schedule evaluated eagerly) must reproduce ``p`` after every iteration
(up to XLA fusing the product schedule * scale into the update: one rounding of
``p - lr`` instead of two; see :func:`assert_trained_at`). Replacing the tracked
scale by a free ``keras.Variable`` makes the first test fail at the first cut:
the jax trainer freezes such a variable into the compiled step.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import textwrap
import warnings

import attrs
import pytest

keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")  # keras depends on it; imported after the skip

import plateau  # noqa: E402
from plateau import Decision, PlateauConfig  # noqa: E402
from plateau.adapters.keras import ReduceLROnPlateau, ScaledSchedule  # noqa: E402

_rng = np.random.default_rng(7)
_W = np.array([[1.0], [-2.0], [0.5], [0.0]], dtype="float32")
X = _rng.normal(size=(64, 4)).astype("float32")
Y = X @ _W + _rng.normal(scale=0.5, size=(64, 1)).astype("float32")
XV = _rng.normal(size=(32, 4)).astype("float32")
YV = XV @ _W + _rng.normal(scale=0.5, size=(32, 1)).astype("float32")
BATCH = 16  # 4 iterations per epoch
STEPS = len(X) // BATCH
# Keras's arguments: patience 1 cuts at the first epoch that does not improve by 0.02.
ARGS = {"monitor": "val_mse", "mode": "min", "factor": 0.5, "patience": 1, "min_delta": 0.02}
TRACES: collections.Counter[int] = collections.Counter()


def f32(value):
    return float(np.float32(value))


@keras.saving.register_keras_serializable(package="plateau_tests")
class Probe(keras.layers.Layer):
    """Passes its input through and adds the loss ``p``: d(loss)/dp is exactly 1."""

    def build(self, input_shape):
        self.p = self.add_weight(shape=(), initializer="zeros", name="p")

    def call(self, x):
        self.add_loss(self.p + keras.ops.sum(x) * 0.0)
        return x


@keras.saving.register_keras_serializable(package="plateau_tests")
class Counting(keras.Sequential):
    """Counts how often its train step runs as Python: under jit, once per trace."""

    def train_step(self, *args, **kwargs):
        TRACES[id(self)] += 1
        return super().train_step(*args, **kwargs)


def make_model(learning_rate, cls=Counting):
    keras.utils.set_random_seed(1)
    model = cls([keras.Input((4,)), Probe(), keras.layers.Dense(1)])
    optimizer = learning_rate
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    model.compile(optimizer, loss="mse", metrics=["mse"])
    return model


class Recorder(keras.callbacks.Callback):
    """The probe weight after every iteration (the jax trainer syncs its state for it)."""

    def __init__(self):
        super().__init__()
        self.p = []

    def on_train_batch_end(self, batch, logs=None):
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # jax keeps the weights outside the variables during an epoch
            sync()
        self.p.append(float(self.model.layers[0].p.numpy()))


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.at:
            raise RuntimeError("interrupted")


def fit(model, callbacks, epochs, initial_epoch=0):
    return model.fit(
        X,
        Y,
        validation_data=(XV, YV),
        epochs=epochs,
        initial_epoch=initial_epoch,
        batch_size=BATCH,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    ).history


def assert_trained_at(recorded, lrs, p=0.0):
    """Each iteration moved the probe by -lr: ``recorded[t]`` is ``p - lrs[t]`` in float32.

    ``lrs[t]`` is the exact product schedule * scale (float64). XLA may fuse that
    product into the update (one rounding instead of two), so either rounding of
    ``p - lr`` is accepted; the walk goes on from the recorded value.
    """
    assert len(recorded) == len(lrs)
    for t, (got, lr) in enumerate(zip(recorded, lrs, strict=True)):
        twice, once = f32(p - f32(lr)), f32(p - lr)
        assert got in (twice, once), (t, got, twice, once)
        p = got


def core_states(metrics, config, lrs):
    """The pure core's state before each epoch, on the float32 metrics Keras compares."""
    states = plateau.simulate([f32(m) for m in metrics], config, lrs)
    return [plateau.init(lrs, config), *states]


def scheduled_lrs(schedule, states, first_iteration=0):
    """Per iteration, the core's rule for a plateau over `schedule` (reference 1.0)."""
    lrs = []
    for epoch, state in enumerate(states[:-1]):
        for i in range(STEPS):
            base = f32(schedule(first_iteration + epoch * STEPS + i))
            lrs.append(plateau.scale_base(state, base)[0])  # exact: float32 * float32
    return lrs


def cosine():
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=40, alpha=0.1, warmup_target=0.3, warmup_steps=4
    )


def config_of(**extra):
    """The config the callback should hold, built from the core's own translation."""
    keras_args = {k: v for k, v in {**ARGS, **extra}.items() if k != "monitor"}
    warmup = {k: keras_args.pop(k) for k in ("warmup_epochs", "warmup_start_factor") if k in extra}
    return attrs.evolve(PlateauConfig.from_keras(**keras_args), **warmup)


# --- a cosine schedule under the plateau -------------------------------------------


def test_cosine_schedule_is_scaled_by_the_core_at_every_iteration():
    schedule = cosine()
    model = make_model(schedule)
    callback, recorder = ReduceLROnPlateau(**ARGS, min_lr=0.25), Recorder()
    history = fit(model, [callback, recorder], epochs=14)
    states = core_states(history["val_mse"], config_of(min_lr=0.25), 1.0)
    expected = scheduled_lrs(schedule, states)
    assert_trained_at(recorder.p, expected)
    assert callback.state == states[-1]
    scales = [s.lrs[0] for s in states]
    assert 0.25 in scales and len(set(scales)) >= 3  # cut twice, down to the floor
    first_cut = next(e for e, s in enumerate(scales) if s < 1.0)
    assert first_cut >= 2  # epochs before it trained at the schedule's lr, exactly:
    for i in range(first_cut * STEPS):
        assert expected[i] == f32(schedule(i))
    # The logged lr is what the optimizer trains at when the epoch ends.
    for epoch, lr in enumerate(history["learning_rate"]):
        assert lr == f32(f32(schedule((epoch + 1) * STEPS)) * scales[epoch])
    if keras.backend.backend() == "jax":
        assert TRACES[id(model)] == 1  # the scale is an input of the compiled step


def test_schedule_resumes_under_backup_and_restore_as_if_uninterrupted(tmp_path):
    whole_cb, whole_rec = ReduceLROnPlateau(**ARGS), Recorder()
    whole = fit(make_model(cosine()), [whole_cb, whole_rec], epochs=12)
    cuts = [s.decision for s in core_states(whole["val_mse"], config_of(), 1.0)[1:]]
    assert cuts[:6].count(Decision.REDUCED) >= 1  # interrupted after a cut

    backup = tmp_path / "backup"

    def run(*extra):
        # This callback before BackupAndRestore: the scale must still be restored by count.
        callback = ReduceLROnPlateau(**ARGS, backup_dir=backup)
        restore = keras.callbacks.BackupAndRestore(str(backup))
        return callback, fit(make_model(cosine()), [callback, restore, *extra], epochs=12)

    with pytest.raises(RuntimeError, match="interrupted"):
        run(Interrupt(6))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. "Skipping variable loading"
        recorder = Recorder()
        callback, resumed = run(recorder)
    assert resumed["learning_rate"] == whole["learning_rate"][6:]
    assert resumed["val_mse"] == whole["val_mse"][6:]
    assert recorder.p == whole_rec.p[6 * STEPS :]
    assert callback.state == whole_cb.state
    assert not backup.exists()


def test_a_saved_model_reloads_with_its_scale_and_set_state_resumes(tmp_path):
    whole_cb = ReduceLROnPlateau(**ARGS)
    whole = fit(make_model(cosine(), keras.Sequential), [whole_cb], epochs=12)

    model = make_model(cosine(), keras.Sequential)
    callback = ReduceLROnPlateau(**ARGS)
    head = fit(model, [callback], epochs=6)
    assert callback.state.lrs[0] < 1.0  # a cut before the save
    wrapper = model.optimizer._learning_rate
    assert isinstance(wrapper, ScaledSchedule) and not isinstance(wrapper.schedule, ScaledSchedule)
    model.save(tmp_path / "model.keras")
    saved = json.loads(json.dumps(callback.get_state(), allow_nan=False))

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # every optimizer variable loads
        loaded = keras.models.load_model(tmp_path / "model.keras")
    reloaded = loaded.optimizer._learning_rate
    assert isinstance(reloaded, ScaledSchedule) and isinstance(reloaded.schedule, type(cosine()))
    assert float(reloaded.scale.numpy()) == callback.state.lrs[0]
    assert int(loaded.optimizer.iterations.numpy()) == 6 * STEPS
    assert float(loaded.optimizer.learning_rate) == float(model.optimizer.learning_rate)

    resumed = ReduceLROnPlateau(**ARGS)
    resumed.set_state(saved)
    tail = fit(loaded, [resumed], epochs=12, initial_epoch=6)
    assert head["learning_rate"] + tail["learning_rate"] == whole["learning_rate"]
    assert head["val_mse"] + tail["val_mse"] == whole["val_mse"]
    assert resumed.state == whole_cb.state
    # Still one wrapper, its scale untracked again after the fit.
    assert not isinstance(loaded.optimizer._learning_rate.schedule, ScaledSchedule)
    names = [v.name for v in loaded.optimizer.variables]
    assert "plateau_scale" not in names


def test_wrapping_is_idempotent_across_fits_and_callbacks():
    model = make_model(cosine(), keras.Sequential)
    count = len(model.optimizer.variables)
    first, second = ReduceLROnPlateau(**ARGS), ReduceLROnPlateau(**ARGS)
    for callback in (first, second):
        callback.set_model(model)
        callback.on_train_begin()
    wrapper = model.optimizer._learning_rate
    assert isinstance(wrapper, ScaledSchedule) and not isinstance(wrapper.schedule, ScaledSchedule)
    assert len(model.optimizer.variables) == count + 1  # one scale, shared
    first.on_train_end()
    assert len(model.optimizer.variables) == count
    history = fit(model, [ReduceLROnPlateau(**ARGS)], epochs=2)
    assert not isinstance(model.optimizer._learning_rate.schedule, ScaledSchedule)
    assert len(model.optimizer.variables) == count
    assert history["learning_rate"][-1] == f32(cosine()(2 * STEPS))


@pytest.mark.parametrize(("min_lr", "min_scale"), [(0.0, 0.0), (0.05, 0.25)])
def test_a_constant_schedule_decides_as_the_float_lr(min_lr, min_scale):
    """PiecewiseConstantDecay with one value: the same fit as SGD(0.2), bit for bit.

    With a schedule min_lr is a scale: the floor 0.05 of the float lr 0.2 is 0.25.
    """
    constant = keras.optimizers.schedules.PiecewiseConstantDecay([10**6], [0.2, 0.2])
    by_float, by_schedule = (
        ReduceLROnPlateau(**ARGS, min_lr=min_lr),
        ReduceLROnPlateau(**ARGS, min_lr=min_scale),
    )
    floats = fit(make_model(0.2, keras.Sequential), [by_float], epochs=12)
    scheduled = fit(make_model(constant, keras.Sequential), [by_schedule], epochs=12)
    assert scheduled == floats  # losses, metrics and the lr trained at
    assert [f32(0.2) * s for s in by_schedule.state.lrs] == list(by_float.state.lrs)
    assert by_schedule.state.num_reductions == by_float.state.num_reductions >= 2


# --- warmup with a float lr ----------------------------------------------------------

WARMUP = {"warmup_epochs": 3, "warmup_start_factor": 0.25}


def warmup_lrs(b, f, w, states):
    """Per epoch: b * (f + (1 - f) * k / W) for k < W, then the core's plateau lrs."""
    ramp = [b * (f + (1 - f) * k / w) for k in range(w)]
    return [f32(lr) for lr in ramp] + [f32(s.lrs[0]) for s in states[w:-1]]


def test_warmup_epochs_train_on_the_ramp_then_the_plateau():
    model = make_model(0.2)
    callback, recorder = ReduceLROnPlateau(**ARGS, **WARMUP), Recorder()
    history = fit(model, [callback, recorder], epochs=12)
    b = f32(0.2)
    states = core_states(history["val_mse"], config_of(**WARMUP), b)
    expected = warmup_lrs(b, 0.25, 3, states)
    assert expected[:4] == [f32(b * 0.25), f32(b * 0.5), f32(b * 0.75), b]
    assert history["learning_rate"] == expected
    assert_trained_at(recorder.p, [lr for lr in expected for _ in range(STEPS)])
    assert [s.decision for s in states[1:4]] == [Decision.WARMUP] * 3
    assert callback.state == attrs.evolve(states[-1], lrs=(f32(states[-1].lrs[0]),))
    assert min(expected[3:]) < b  # the plateau cut after the warmup


@pytest.mark.parametrize("how", ["set_state", "backup_and_restore"])
def test_warmup_resumes_mid_warmup_exactly(tmp_path, how):
    whole_cb = ReduceLROnPlateau(**ARGS, **WARMUP)
    whole = fit(make_model(0.2, keras.Sequential), [whole_cb], epochs=10)
    assert whole_cb.state.num_reductions >= 1
    if how == "set_state":
        model = make_model(0.2, keras.Sequential)
        callback = ReduceLROnPlateau(**ARGS, **WARMUP)
        head = fit(model, [callback], epochs=2)
        assert callback.state.warmup_epoch == 2
        model.save(tmp_path / "model.keras")
        saved = json.loads(json.dumps(callback.get_state(), allow_nan=False))
        resumed = ReduceLROnPlateau(**ARGS, **WARMUP)
        resumed.set_state(saved)
        loaded = keras.models.load_model(tmp_path / "model.keras")
        tail = fit(loaded, [resumed], epochs=10, initial_epoch=2)
        assert head["learning_rate"] + tail["learning_rate"] == whole["learning_rate"]
    else:
        backup = tmp_path / "backup"

        def run(*extra):
            callback = ReduceLROnPlateau(**ARGS, **WARMUP, backup_dir=backup)
            restore = keras.callbacks.BackupAndRestore(str(backup))
            model = make_model(0.2, keras.Sequential)
            return callback, fit(model, [restore, callback, *extra], epochs=10)

        with pytest.raises(RuntimeError, match="interrupted"):
            run(Interrupt(2))
        resumed, tail = run()
        assert tail["learning_rate"] == whole["learning_rate"][2:]
    assert resumed.state == whole_cb.state


def test_warmup_over_a_schedule_ramps_the_scale():
    schedule = cosine()
    callback, recorder = ReduceLROnPlateau(**ARGS, **WARMUP), Recorder()
    history = fit(make_model(schedule), [callback, recorder], epochs=8)
    states = core_states(history["val_mse"], config_of(**WARMUP), 1.0)
    assert [s.lrs[0] for s in states[:4]] == [0.25, 0.5, 0.75, 1.0]
    assert_trained_at(recorder.p, scheduled_lrs(schedule, states))


def test_warmup_resolves_an_auto_mode_at_train_begin():
    callback = ReduceLROnPlateau(**{**ARGS, "mode": "auto"}, **WARMUP)
    assert callback.config is None  # val_mse: Keras's direction comes from the model
    seen = []

    class AtTrainBegin(keras.callbacks.Callback):  # runs after ours, before any epoch
        def on_train_begin(self, logs=None):
            seen.append((callback.config, float(self.model.optimizer.learning_rate)))

    fit(make_model(0.2, keras.Sequential), [callback, AtTrainBegin()], epochs=1)
    assert seen == [(config_of(**WARMUP), f32(f32(0.2) * 0.25))]


# --- bad input -------------------------------------------------------------------------


def test_bad_input_is_named_and_changes_nothing():
    with pytest.raises(TypeError, match=r"'warmup_epochs' must be an int, got float: 2\.5"):
        ReduceLROnPlateau(warmup_epochs=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'warmup_epochs' must be >= 0, got -1"):
        ReduceLROnPlateau(warmup_epochs=-1)
    with pytest.raises(ValueError, match="'warmup_start_factor' must be between 0 and 1"):
        ReduceLROnPlateau(warmup_epochs=2, warmup_start_factor=1.5)
    with pytest.raises(TypeError, match=r"'schedule' must be a keras\.optimizers\.schedules"):
        ScaledSchedule(0.1)
    with pytest.raises(TypeError, match="other than a ScaledSchedule, got ScaledSchedule"):
        ScaledSchedule(ScaledSchedule(cosine()))
    with pytest.raises(ValueError, match="'scale' must be"):
        ScaledSchedule(cosine(), -1.0)
    with pytest.raises(TypeError, match=r"'scale' must be a scalar float32 keras\.Variable"):
        ScaledSchedule(cosine(), keras.Variable(np.zeros(2, "float32")))

    model = make_model(cosine(), keras.Sequential)
    count = len(model.optimizer.variables)
    callback = ReduceLROnPlateau(**ARGS, min_lr=2.0)
    callback.set_model(model)  # nothing to report yet: on_train_begin names it
    with pytest.raises(ValueError, match=r"'min_lr' is the floor of the schedule's scale.*2\.0"):
        callback.on_train_begin()
    assert not isinstance(model.optimizer._learning_rate, ScaledSchedule)
    assert len(model.optimizer.variables) == count

    model.optimizer.learning_rate = lambda: 0.1  # a callable, not a schedule
    callback = ReduceLROnPlateau(**ARGS)
    callback.set_model(model)
    with pytest.raises(TypeError, match="from a function, which is neither a float nor"):
        callback.on_train_begin()


def test_a_multi_optimizer_mixing_floats_and_schedules_refuses_a_floor():
    kernel = keras.optimizers.SGD(cosine(), name="kernel_sgd")
    bias = keras.optimizers.SGD(0.05, name="bias_sgd")
    multi = keras.optimizers.MultiOptimizer(
        lambda variable: kernel if "kernel" in variable.path else bias
    )
    model = make_model(multi, keras.Sequential)
    multi.build(model.trainable_variables)  # a MultiOptimizer knows its subs once built
    callback = ReduceLROnPlateau(**ARGS, min_lr=0.01)
    callback.set_model(model)
    with pytest.raises(ValueError, match=r"a scale for the sub-optimizers.*\['bias_sgd'\]"):
        callback.on_train_begin()
    assert not isinstance(kernel._learning_rate, ScaledSchedule)
    # Without a floor the units never meet: each sub-optimizer's number is its own.
    callback = ReduceLROnPlateau(**ARGS)
    history = fit(model, [callback], epochs=8)
    scale, lr = callback.state.lrs
    assert scale < 1.0 and lr < f32(0.05)  # both cut: a scale and an lr
    assert history["learning_rate_bias_sgd"][0] == f32(0.05)
    assert history["learning_rate_kernel_sgd"][0] == f32(cosine()(STEPS))
    assert isinstance(kernel._learning_rate, ScaledSchedule)


# --- the torch backend -------------------------------------------------------------------

TORCH_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {tests!r})
    import keras
    from adapters.test_keras_base import (
        ARGS, Recorder, assert_trained_at, config_of, core_states, cosine, fit, make_model,
        scheduled_lrs,
    )
    from plateau.adapters.keras import ReduceLROnPlateau

    schedule = cosine()
    callback, recorder = ReduceLROnPlateau(**ARGS, min_lr=0.25), Recorder()
    history = fit(make_model(schedule, keras.Sequential), [callback, recorder], epochs=12)
    states = core_states(history["val_mse"], config_of(min_lr=0.25), 1.0)
    print(json.dumps({{
        "backend": keras.backend.backend(),
        "same": assert_trained_at(recorder.p, scheduled_lrs(schedule, states)) is None,
        "state": callback.state == states[-1],
        "cuts": callback.state.num_reductions,
    }}))
    """
)


@pytest.mark.slow
def test_torch_backend_scales_the_schedule_too():
    pytest.importorskip("torch")
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    done = subprocess.run(
        [sys.executable, "-c", TORCH_SCRIPT.format(tests=tests)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"backend": "torch", "same": True, "state": True, "cuts": result["cuts"]}
    assert result["cuts"] >= 2


# --- mixed precision, and the units a saved state holds (review findings) ---------------


def test_a_loss_scale_optimizer_is_cut_through_its_inner_optimizer():
    """Mixed precision wraps the optimizer: its own lr is a placeholder 0.0, the inner's is used."""
    for learning_rate in (0.5, cosine()):
        inner = keras.optimizers.SGD(learning_rate=learning_rate)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.LossScaleOptimizer(inner), loss="mse")
        callback = ReduceLROnPlateau(monitor="val_loss", factor=0.25, patience=0)
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, loss in enumerate([1.0, 2.0, 3.0]):
            callback.on_epoch_end(epoch, {"val_loss": loss})
        start = 0.5 if learning_rate == 0.5 else 1.0  # an lr, or a schedule's scale
        assert callback.state.lrs == (start * 0.25 * 0.25,)
        assert callback.state.decision is plateau.Decision.REDUCED
        if learning_rate == 0.5:
            assert float(inner.learning_rate) == 0.5 * 0.25 * 0.25
        else:
            assert isinstance(inner._learning_rate, ScaledSchedule)


def test_a_state_saved_in_scale_units_is_refused_by_a_float_lr_and_the_reverse():
    def started(learning_rate):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mse")
        callback = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=0)
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, loss in enumerate([1.0, 2.0]):
            callback.on_epoch_end(epoch, {"val_loss": loss})
        return model, callback

    scale_model, scale_run = started(cosine())
    float_model, float_run = started(0.01)
    assert scale_run.get_state()["scaled"] == [True] and float_run.get_state()["scaled"] == [False]
    for (model, _), saved in [
        ((float_model, float_run), scale_run.get_state()),
        ((scale_model, scale_run), float_run.get_state()),
    ]:
        before = float(model.optimizer.learning_rate)
        resumed = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=0)
        resumed.set_model(model)
        resumed.set_state(saved)
        with pytest.raises(ValueError, match="another kind of learning rate"):
            resumed.on_train_begin()
        assert float(model.optimizer.learning_rate) == before  # nothing written
    # The units are part of the saved state (format 1): required, and checked.
    saved = float_run.get_state()
    resumed = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=0)
    resumed.set_model(float_model)
    without = {k: v for k, v in saved.items() if k != "scaled"}
    with pytest.raises(ValueError, match=r"must have the keys \['config', 'scaled', 'state'\]"):
        resumed.set_state(without)
    with pytest.raises(TypeError, match=r"d\['scaled'\] must be None or a list of bools"):
        resumed.set_state({**saved, "scaled": "yes"})
    assert resumed.state is None  # both refused: nothing changed
