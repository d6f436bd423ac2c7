"""Hostile input to the adapters (issue 9): a clear error, nothing changed, nothing lost.

torch's ``load_state_dict`` and constructor, a param-group lr set by hand, Keras's
``set_state`` and constructor, and optax's ``set_lrs`` / ``init`` / ``step`` get the
values of :mod:`hostile.values` plus a small fixed set of torch tensors and jax
arrays. A refusal is a TypeError / ValueError naming the field, and the scheduler,
callback or optimizer state is as it was. Each framework's tests skip without it.
"""

from __future__ import annotations

import json
import math
import numbers
import os

import pytest
from hostile.values import HUGE, check_message, hostile, refused
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plateau
from plateau import PlateauConfig, PlateauState
from plateau._checks import MAX_INT, is_int, is_real

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def framework_values():
    """A fixed handful of tensors and arrays: few distinct shapes and dtypes per process."""
    values = []
    try:
        import torch

        values += [torch.tensor([1.0, 2.0]), torch.tensor(0.5), torch.tensor(3), torch.zeros(2, 2)]
        values += [torch.tensor(True), torch.tensor([1j])]
    except ImportError:
        pass
    try:
        import jax.numpy as jnp

        values += [jnp.array([1.0, 2.0]), jnp.array(0.5), jnp.array(3), jnp.zeros((2, 2))]
    except ImportError:
        pass
    return values


FRAMEWORK_VALUES = framework_values()


def values():
    return hostile() | st.sampled_from(FRAMEWORK_VALUES) if FRAMEWORK_VALUES else hostile()


# --- torch ---------------------------------------------------------------------------


@pytest.fixture
def torch_scheduler():
    torch = pytest.importorskip("torch")
    from plateau.adapters.torch import ReduceLROnPlateau

    params = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    optimizer = torch.optim.SGD([{"params": [params[0]]}, {"params": [params[1]]}], lr=0.5)
    scheduler = ReduceLROnPlateau(optimizer, patience=1)
    for metric in (3.0, 2.0, 2.5):
        scheduler.step(metric)
    return scheduler


def torch_snapshot(scheduler):
    lrs = [group["lr"] for group in scheduler.optimizer.param_groups]
    return scheduler.state, scheduler.config, lrs, sorted(vars(scheduler))


def torch_state_dicts(scheduler):
    """Plateau's checkpoint, torch's own class's, and plateau's earlier (config, state) one."""
    import torch

    ours = scheduler.state_dict()
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(scheduler.optimizer, patience=1)
    theirs.step(2.0)
    earlier = json.loads(ours["plateau"])  # {"config": ..., "state": ...}
    return {"plateau": ours, "torch": theirs.state_dict(), "earlier": earlier}


def strict_json(scheduler):
    """The scheduler's ``plateau`` key, checked to be strict JSON."""
    return json.dumps(json.loads(scheduler.state_dict()["plateau"]), allow_nan=False)


@FUZZ
@given(data=st.data(), value=values())
def test_torch_load_state_dict_refuses_by_name_and_changes_nothing(torch_scheduler, data, value):
    dicts = torch_state_dicts(torch_scheduler)
    kind = data.draw(st.sampled_from(sorted(dicts)))
    good = dicts[kind]
    # A top-level key, or a field inside plateau's config / state.
    fields = [(key, None) for key in good] + [
        (sub, key) for sub in ("config", "state") if sub in good for key in good[sub]
    ]
    top, inner = data.draw(st.sampled_from(fields))
    broken = dict(good)
    if inner is None:
        broken[top] = value
    else:
        broken[top] = {**good[top], inner: value}
    before = torch_snapshot(torch_scheduler)
    try:
        torch_scheduler.load_state_dict(broken)
    except Exception as exc:
        check_message(exc, inner or top)
        assert torch_snapshot(torch_scheduler) == before
    else:
        # Accepted: what was loaded is a valid schedule, and saves to strict JSON.
        strict_json(torch_scheduler)
        torch_scheduler.load_state_dict(good)


@pytest.mark.parametrize("key", ["best", "num_bad_epochs", "cooldown_counter", "last_epoch"])
def test_torch_progress_keys_are_validated_before_they_are_compared(torch_scheduler, key):
    np = pytest.importorskip("numpy")
    import torch

    good = torch_scheduler.state_dict()
    before = torch_snapshot(torch_scheduler)
    for value in (np.array([1, 2]), torch.tensor([1.0, 2.0]), HUGE, True, np.array(2.0)):
        with pytest.raises((TypeError, ValueError), match=f"state_dict: '{key}'"):
            torch_scheduler.load_state_dict({**good, key: value})
        assert torch_snapshot(torch_scheduler) == before


def test_torch_checkpoint_fields_are_named_with_their_place(torch_scheduler):
    np = pytest.importorskip("numpy")
    good = torch_state_dicts(torch_scheduler)["earlier"]  # dicts, not a JSON str: any value
    cases = [
        ({**good, "config": {**good["config"], "format": np.array([1, 2])}}, "'config']: 'format'"),
        ({**good, "state": {**good["state"], "best": np.array([1.0, 2.0])}}, "'state']: 'best'"),
        ({**good, "state": {**good["state"], "version": np.array(1)}}, "'state']: 'version'"),
        ({**good, "state": {**good["state"], "lrs": [HUGE, 0.1]}}, "'lrs[0]' is too large"),
        ({**good, "config": 5}, "state_dict['config']: 'd' must be a mapping"),
        ({**torch_state_dicts(torch_scheduler)["torch"], "mode": np.array(["min"])}, "'mode'"),
        ({**torch_scheduler.state_dict(), "plateau": b"{}"}, "state_dict['plateau'] must be"),
    ]
    before = torch_snapshot(torch_scheduler)
    for broken, fragment in cases:
        with pytest.raises((TypeError, ValueError)) as info:
            torch_scheduler.load_state_dict(broken)
        assert fragment in str(info.value)
        assert torch_snapshot(torch_scheduler) == before


def test_torch_refuses_a_checkpoint_whose_lr_count_differs(torch_scheduler):
    good = torch_scheduler.state_dict()
    before = torch_snapshot(torch_scheduler)
    envelope = json.loads(good["plateau"])
    envelope["state"]["lrs"] = [0.1]
    broken = {**good, "plateau": json.dumps(envelope)}
    with pytest.raises(ValueError, match="holds 1 lrs but the optimizer has 2 param groups"):
        torch_scheduler.load_state_dict(broken)
    assert torch_snapshot(torch_scheduler) == before


@FUZZ
@given(
    field=st.sampled_from(
        ["mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr",
         "eps", "last_epoch", "on_nonfinite", "on_repeat", "sync_metric"]
    ),
    value=values(),
)  # fmt: skip
def test_torch_constructor_refuses_by_name(field, value):
    torch = pytest.importorskip("torch")
    from plateau.adapters.torch import ReduceLROnPlateau

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    if refused(lambda: ReduceLROnPlateau(optimizer, **{field: value}), field) is None:
        # Accepted: only a value the field takes, held as it was given.
        scheduler = ReduceLROnPlateau(optimizer, **{field: value})
        if field == "last_epoch":
            assert isinstance(value, numbers.Integral) and not isinstance(value, bool), value
            assert scheduler.last_epoch == value + 1
        elif field == "on_repeat":
            assert value in ("warn", "skip", "allow") and scheduler.on_repeat == value
        elif field == "sync_metric":
            assert isinstance(value, bool) and scheduler.sync_metric is value
        else:
            assert scheduler.config == PlateauConfig(**{field: value}), value
    assert optimizer.param_groups[0]["lr"] == 0.1


@FUZZ
@given(value=values())
def test_torch_a_param_group_lr_set_by_hand_is_refused_by_name(torch_scheduler, value):
    import torch

    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype.is_floating_point:
        return  # a one-element float tensor is a valid lr (torch's capturable optimizers)
    groups = torch_scheduler.optimizer.param_groups
    before = torch_scheduler.state, torch_scheduler.config
    groups[1]["lr"] = value
    try:
        if refused(lambda: torch_scheduler.step(1.0), "param_groups[1]['lr']") is None:
            strict_json(torch_scheduler)
        else:
            assert (torch_scheduler.state, torch_scheduler.config) == before
    finally:
        groups[1]["lr"] = 0.5


def test_torch_a_huge_lr_is_named_in_the_constructor_and_the_step():
    torch = pytest.importorskip("torch")
    from plateau.adapters.torch import ReduceLROnPlateau

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="'factor' is too large for a float"):
        ReduceLROnPlateau(optimizer, factor=HUGE)
    with pytest.raises(ValueError, match=r"'min_lr\[0\]' is too large for a float"):
        ReduceLROnPlateau(optimizer, min_lr=[HUGE])
    with pytest.raises(ValueError, match=r"'last_epoch' must be at most 2\*\*63 - 1"):
        ReduceLROnPlateau(optimizer, last_epoch=HUGE)
    scheduler = ReduceLROnPlateau(optimizer)
    optimizer.param_groups[0]["lr"] = HUGE
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\]' is too large for a float"):
        scheduler.step(1.0)
    with pytest.raises(ValueError, match="'best'"):
        scheduler.best = float("nan")


@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf"), -(2**63)])
def test_torch_an_unusable_lr_set_by_hand_is_named_by_its_param_group(torch_scheduler, lr):
    import torch

    from plateau.adapters.torch import ReduceLROnPlateau

    before = torch_scheduler.state  # two param groups; the single one takes a fast path
    torch_scheduler.optimizer.param_groups[1]["lr"] = lr
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['lr'\]' must be finite and >= 0"):
        torch_scheduler.step(1.0)
    assert torch_scheduler.state == before
    single = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = ReduceLROnPlateau(single)
    single.param_groups[0]["lr"] = lr
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\]' must be finite and >= 0"):
        scheduler.step(1.0)
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\]' must be finite and >= 0"):
        ReduceLROnPlateau(single)


def test_torch_derived_attributes_refuse_an_array_by_name(torch_scheduler):
    np = pytest.importorskip("numpy")
    for name in ("default_min_lr", "mode_worse"):
        with pytest.raises(ValueError, match=f"'{name}' follows scheduler.config"):
            setattr(torch_scheduler, name, np.array([1.0, 2.0]))


# --- Keras ---------------------------------------------------------------------------


@pytest.fixture
def keras_callback():
    keras = pytest.importorskip("keras")
    from plateau.adapters.keras import ReduceLROnPlateau

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    callback = ReduceLROnPlateau(monitor="loss", patience=1)
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, loss in enumerate([3.0, 2.0, 2.5]):
        callback.on_epoch_end(epoch, {"loss": loss})
    return callback


def keras_snapshot(callback):
    return callback.state, callback.config, callback._restored


@FUZZ
@given(data=st.data(), value=values())
def test_keras_set_state_refuses_by_name_and_changes_nothing(keras_callback, data, value):
    good = keras_callback.get_state()
    fields = [(key, None) for key in good] + [
        (sub, key) for sub in good if isinstance(good[sub], dict) for key in good[sub]
    ]
    top, inner = data.draw(st.sampled_from(fields))
    broken = dict(good)
    broken[top] = value if inner is None else {**good[top], inner: value}
    before = keras_snapshot(keras_callback)
    try:
        keras_callback.set_state(broken)
    except Exception as exc:
        check_message(exc, inner or top)
        assert keras_snapshot(keras_callback) == before
    else:
        json.dumps(keras_callback.get_state(), allow_nan=False)
        keras_callback.set_state(good)


def test_keras_set_state_names_non_string_and_control_character_keys(keras_callback):
    good = keras_callback.get_state()
    before = keras_snapshot(keras_callback)
    with pytest.raises(ValueError) as info:
        keras_callback.set_state({**good, 3: None, "x\n": None})
    assert "got ['config', 'scaled', 'state', 'x\\n', 3]" in str(info.value)
    assert keras_snapshot(keras_callback) == before


@FUZZ
@given(
    field=st.sampled_from(
        ["monitor", "factor", "patience", "verbose", "mode", "min_delta", "cooldown", "min_lr",
         "strict", "on_nonfinite", "backup_dir"]
    ),
    value=values(),
)  # fmt: skip
def test_keras_constructor_refuses_by_name(field, value):
    pytest.importorskip("keras")
    from plateau.adapters.keras import ReduceLROnPlateau

    accepted = refused(lambda: ReduceLROnPlateau(**{field: value}), field) is None
    assert accepted == usable_keras_argument(field, value), (field, value)


def usable_keras_argument(field, value):
    """What each Keras keyword takes (the oracle, written from docs/keras.md, not the code)."""
    try:
        if field in ("monitor", "backup_dir"):
            return isinstance(value, (str, os.PathLike)) and (
                field == "backup_dir" or isinstance(value, str)
            )
        if field in ("mode", "on_nonfinite"):
            allowed = ("auto", "min", "max") if field == "mode" else ("bad", "raise", "skip")
            return isinstance(value, str) and value in allowed
        if field in ("strict", "stop_when_exhausted"):
            return isinstance(value, bool)
        if field == "verbose":
            return isinstance(value, int)
        if field in ("patience", "cooldown"):
            return is_int(value) and 0 <= value <= MAX_INT
        number = float(value) if is_real(value) else math.nan
        if field == "factor":
            return 0.0 < number < 1.0
        if field == "min_delta":
            return math.isfinite(number)
        return 0.0 <= number < math.inf and abs(number) < 3.4028235e38  # min_lr, in float32
    except Exception:  # a hostile dunder, or an int too large for a float
        return False


def test_keras_constructor_names_a_huge_int():
    pytest.importorskip("keras")
    from plateau.adapters.keras import ReduceLROnPlateau

    for field in ("factor", "min_delta", "min_lr"):
        with pytest.raises(ValueError, match=f"'{field}' is too large for a float"):
            ReduceLROnPlateau(**{field: HUGE})
    for field in ("patience", "cooldown"):
        with pytest.raises(ValueError, match=rf"'{field}' must be at most 2\*\*63 - 1"):
            ReduceLROnPlateau(**{field: HUGE})


# --- optax ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def optax_state():
    pytest.importorskip("optax")
    import jax.numpy as jnp
    import optax

    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
    return tx.init({"w": jnp.zeros(3)})


def usable_lr(value):
    """A real number, finite and >= 0: what an lr may be (the oracle, written independently)."""
    try:
        return is_real(value) and 0.0 <= float(value) < math.inf
    except Exception:  # a hostile __float__, or an int too large for a float
        return False


@FUZZ
@given(value=values())
def test_optax_set_lrs_init_and_step_refuse_by_name(optax_state, value):
    import numpy as np

    from plateau.adapters import optax as plateau_optax

    config = PlateauConfig(patience=0)
    state = plateau_optax.init(optax_state, config)
    lrs = plateau_optax.get_lrs(optax_state)
    # No hostile value is a plateau state or a config: each of these must refuse.
    for call, field in [
        (lambda: plateau_optax.step(value, 1.0, config, optax_state), "plateau_state"),
        (lambda: plateau_optax.step(state, 1.0, value, optax_state), "config"),
        (lambda: plateau_optax.init(optax_state, value), "config"),
    ]:
        assert refused(call, field) is not None, field
    # An lr or a metric may be a usable number; then, and only then, it is accepted.
    one = value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value
    for argument, usable in ((value, usable_lr(one)), ([value], usable_lr(value))):
        call = lambda lrs=argument: plateau_optax.set_lrs(optax_state, lrs)  # noqa: E731
        assert (refused(call, "lrs") is None) == usable, argument
    if refused(lambda: plateau_optax.step(state, value, config, optax_state), "metric") is None:
        # A Python int of any size is a real number (numpy holds one past int64 as an object).
        number = np.asarray(value)
        assert is_real(value) or (number.size == 1 and number.dtype.kind in "iuf"), value
    assert plateau_optax.get_lrs(optax_state) == lrs


def test_optax_huge_lr_and_integer_dtype_are_refused(optax_state):
    import jax.numpy as jnp
    import optax

    from plateau.adapters import optax as plateau_optax

    with pytest.raises(ValueError, match=r"'lrs\[0\]' is too large for a float"):
        plateau_optax.set_lrs(optax_state, HUGE)
    integer = optax.inject_hyperparams(optax.sgd)(learning_rate=jnp.array(1, dtype=jnp.int32))
    with pytest.raises(TypeError, match="has dtype int32"):
        plateau_optax.init(integer.init({"w": jnp.zeros(3)}), PlateauConfig())
    with pytest.raises(TypeError, match=r"'plateau_state' must be a plateau\.PlateauState"):
        plateau_optax.step({"lrs": [0.5]}, 1.0, PlateauConfig(), optax_state)


def test_complex_numpy_metric_is_refused_everywhere():
    np = pytest.importorskip("numpy")
    config = PlateauConfig()
    state = plateau.init(0.1, config)
    for metric in (np.complex128(1.0), np.array([1j]), np.array(True)):
        with pytest.raises(TypeError, match="'metric' must be a single real number"):
            plateau.step(state, metric, config)


def test_a_state_from_any_adapter_round_trips(torch_scheduler):
    back = json.loads(strict_json(torch_scheduler))
    assert PlateauState.from_dict(back["state"]) == torch_scheduler.state
