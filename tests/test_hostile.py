"""Hostile input to the core (issue 9): a clear error, nothing changed, nothing lost.

Every field of ``PlateauConfig.from_dict`` and ``PlateauState.from_dict``, every
constructor argument, ``attrs.evolve``, ``init``, ``step`` (``lrs=`` too),
``simulate`` and the translations get values from :mod:`hostile.values`: a refusal
is a TypeError or a ValueError naming the field (one shortened printable line),
the input is left as it was, and whatever is accepted is valid -- it passes
strict JSON and comes back equal. The adapters' and the CLI's share of the issue
is in test_hostile_adapters.py and test_hostile_cli.py.
"""

from __future__ import annotations

import json
import math

import attrs
import pytest
from hostile.values import HUGE, LongRepr, check_message, hostile, refused, strict_json_round_trip
from hypothesis import given, settings
from hypothesis import strategies as st

import plateau
from plateau import PlateauConfig, PlateauState
from plateau._checks import check_int, show
from plateau.cli.numbers import parse_decimal, parse_integer

FUZZ = settings(max_examples=100, deadline=None)
CONFIG_FIELDS = list(PlateauConfig().to_dict())
STATE = plateau.simulate([3.0, 2.0, 2.5], PlateauConfig(patience=5))[-1]
STATE_FIELDS = list(STATE.to_dict())
# Mid-warmup: a state whose "base_lrs" is a list and "warmup_epoch" above 0.
WARMING = plateau.simulate([3.0], PlateauConfig(warmup_epochs=4))[-1]
NUMBER_FIELDS = ["factor", "patience", "threshold", "cooldown", "min_lr", "eps"]


def snapshot(d):
    """What a call may not change in a dict it was given: its keys and the objects under them."""
    return [(key, id(value)) for key, value in d.items()]


def assert_config_valid(config):
    d = config.to_dict()
    assert PlateauConfig.from_dict(strict_json_round_trip(d)) == config


def assert_state_valid(state):
    d = state.to_dict()
    back = PlateauState.from_dict(strict_json_round_trip(d))
    assert back == state
    assert [math.copysign(1.0, lr) for lr in back.lrs] == [
        math.copysign(1.0, lr) for lr in state.lrs
    ]


# --- the fuzz layer: every field of both from_dicts ---------------------------------


@FUZZ
@given(field=st.sampled_from(CONFIG_FIELDS), value=hostile())
def test_config_from_dict_refuses_by_name_or_accepts_a_valid_value(field, value):
    d = {**PlateauConfig().to_dict(), field: value}
    before = snapshot(d)
    try:
        config = PlateauConfig.from_dict(d)
    except Exception as exc:
        check_message(exc, field)
    else:
        assert_config_valid(config)
    assert snapshot(d) == before


@FUZZ
@given(field=st.sampled_from(STATE_FIELDS), value=hostile())
def test_state_from_dict_refuses_by_name_or_accepts_a_valid_value(field, value):
    d = {**STATE.to_dict(), field: value}
    before = snapshot(d)
    try:
        state = PlateauState.from_dict(d)
    except Exception as exc:
        check_message(exc, field)
    else:
        assert_state_valid(state)
    assert snapshot(d) == before


@FUZZ
@given(
    field=st.sampled_from([*NUMBER_FIELDS, "mode", "threshold_mode", "on_nonfinite"]),
    value=hostile(),
)
def test_config_constructor_and_evolve_refuse_by_name(field, value):
    base = PlateauConfig(patience=3)
    makers = (lambda: PlateauConfig(**{field: value}), lambda: attrs.evolve(base, **{field: value}))
    for make in makers:
        if refused(make, field) is None:
            assert_config_valid(make())
    assert base == PlateauConfig(patience=3)


@FUZZ
@given(value=hostile())
def test_init_and_step_lrs_refuse_by_name_and_change_nothing(value):
    config = PlateauConfig(patience=0)
    state = plateau.init([0.5, 0.25], config)
    before = state.to_dict()
    if refused(lambda: plateau.init(value, config), "lrs") is None:
        assert_state_valid(plateau.init(value, config))
    if refused(lambda: plateau.step(state, 1.0, config, lrs=value), "lrs") is None:
        assert_state_valid(plateau.step(state, 1.0, config, lrs=value)[0])
    if refused(lambda: plateau.step(state, value, config), "metric") is None:
        assert_state_valid(plateau.step(state, value, config)[0])
    assert state.to_dict() == before


@FUZZ
@given(value=hostile())
def test_step_refuses_a_hostile_state_or_config_by_name(value):
    config = PlateauConfig()
    assert refused(lambda: plateau.step(value, 1.0, config), "state") is not None
    assert refused(lambda: plateau.step(STATE, 1.0, value), "config") is not None
    assert refused(lambda: plateau.init(0.1, value), "config") is not None


@FUZZ
@given(
    field=st.sampled_from(["factor", "patience", "min_delta", "cooldown", "min_lr", "mode"]),
    value=hostile(),
)
def test_from_keras_refuses_by_name(field, value):
    if refused(lambda: PlateauConfig.from_keras(**{field: value}), field) is None:
        assert_config_valid(PlateauConfig.from_keras(**{field: value}))


@FUZZ
@given(
    field=st.sampled_from(["factor", "patience", "rtol", "atol", "cooldown", "min_scale"]),
    value=hostile(),
)
def test_from_optax_refuses_by_name(field, value):
    if refused(lambda: PlateauConfig.from_optax(**{field: value}), field) is None:
        assert_config_valid(PlateauConfig.from_optax(**{field: value}))


# --- integers too large for a float, and beyond 64 bits --------------------------------


@pytest.mark.parametrize("field", ["factor", "threshold", "eps", "min_lr"])
@pytest.mark.parametrize("value", [HUGE, -HUGE])
def test_a_float_field_given_an_int_too_large_for_a_float_is_a_value_error(field, value):
    with pytest.raises(ValueError, match=f"'{field}' is too large for a float, got an int of"):
        PlateauConfig(**{field: value})
    with pytest.raises(ValueError, match=f"'{field}' is too large for a float"):
        PlateauConfig.from_dict({**PlateauConfig().to_dict(), field: value})


@pytest.mark.parametrize("field", ["patience", "cooldown"])
def test_an_int_field_beyond_64_bits_is_a_value_error(field):
    check_int(field, 2**63 - 1)
    with pytest.raises(ValueError, match=rf"'{field}' must be at most 2\*\*63 - 1"):
        PlateauConfig(**{field: 2**63})
    with pytest.raises(ValueError, match=rf"'{field}' must be at most 2\*\*63 - 1"):
        PlateauConfig(**{field: HUGE})


def test_a_huge_int_is_named_everywhere_a_number_is_taken():
    config = PlateauConfig()
    state = plateau.init(0.1, config)
    cases = [
        (lambda: PlateauConfig(min_lr=[0.0, HUGE]), "'min_lr[1]' is too large for a float"),
        (lambda: plateau.init([0.1, HUGE], config), "'lrs[1]' is too large for a float"),
        (lambda: plateau.step(state, 1.0, config, lrs=HUGE), "'lrs[0]' is too large"),
        (lambda: PlateauState(lrs=[0.1], best=HUGE), "'best'"),
        (lambda: PlateauState.from_dict({**state.to_dict(), "best": HUGE}), "'best'"),
        (lambda: PlateauState.from_dict({**state.to_dict(), "lrs": [HUGE]}), "'lrs[0]'"),
        (lambda: PlateauConfig.from_keras(min_lr=HUGE), "'min_lr' is too large"),
        (lambda: PlateauConfig.from_keras(min_delta=HUGE), "'min_delta' is too large"),
        (lambda: PlateauConfig.from_optax(rtol=HUGE), "'rtol' is too large"),
    ]
    for call, fragment in cases:
        with pytest.raises((TypeError, ValueError)) as info:
            call()
        assert fragment in str(info.value)
        assert len(str(info.value)) < 300  # the 401 digits are not printed


def test_a_metric_too_large_for_a_float_is_a_type_error_naming_metric():
    with pytest.raises(TypeError, match="'metric' must be a single real number, got int: an int"):
        plateau.step(STATE, HUGE, PlateauConfig())


@FUZZ
@given(field=st.sampled_from(["base_lrs", "warmup_epoch"]), value=hostile(), warming=st.booleans())
def test_warmup_keys_refuse_by_name_or_accept_a_valid_value(field, value, warming):
    """The warmup's keys, in a warming state's dict and a plain one's."""
    d = {**(WARMING if warming else STATE).to_dict(), field: value}
    before = snapshot(d)
    try:
        state = PlateauState.from_dict(d)
    except Exception as exc:
        check_message(exc, field)
    else:
        assert_state_valid(state)
    assert snapshot(d) == before


@pytest.mark.parametrize(
    ("epoch", "exc"), [(0.0, TypeError), (False, TypeError), (-1, ValueError), (2**63, ValueError)]
)
def test_a_warmup_epoch_without_base_lrs_is_checked_before_it_is_compared(epoch, exc):
    """Found by the fuzz above: 0.0 and False loaded as "no warmup"."""
    d = {**STATE.to_dict(), "warmup_epoch": epoch}
    with pytest.raises(exc, match="'warmup_epoch' must be"):
        PlateauState.from_dict(d)


def test_a_warmup_epoch_array_without_base_lrs_is_refused_by_name():
    np = pytest.importorskip("numpy")
    for epoch in (np.array([1, 2]), np.array([0, 0]), np.array(0.0)):
        with pytest.raises(TypeError, match="'warmup_epoch' must be an int, got ndarray"):
            PlateauState.from_dict({**STATE.to_dict(), "warmup_epoch": epoch})


# --- arrays where a scalar belongs (numpy's "truth value ... is ambiguous") ------------


@pytest.mark.parametrize("field", ["format", "version", "best", "mode", "threshold_mode"])
def test_a_numpy_array_field_in_from_dict_is_refused_by_name(field):
    np = pytest.importorskip("numpy")
    for value in (np.array([1, 2]), np.array(["a", "b"]), np.array(1.0), np.zeros((2, 2))):
        config_d = {**PlateauConfig().to_dict(), field: value}
        state_d = {**STATE.to_dict(), field: value}
        if field in config_d and field != "best":
            with pytest.raises((TypeError, ValueError), match=f"'{field}'"):
                PlateauConfig.from_dict(config_d)
        if field in ("format", "version", "best"):
            with pytest.raises((TypeError, ValueError), match=f"'{field}'"):
                PlateauState.from_dict(state_d)


def test_step_lrs_as_an_array_is_refused_by_name_even_when_equal_to_the_state():
    np = pytest.importorskip("numpy")
    config = PlateauConfig()
    state = plateau.init([0.1], config)
    for lrs in (np.array([0.1]), np.array([0.1, 0.2]), (np.array([0.1, 0.2]),)):
        with pytest.raises(TypeError, match=r"'lrs\[0\]' must be a real number"):
            plateau.step(state, 1.0, config, lrs=lrs)


# --- objects that are no number, one with a huge repr ---------------------------------


@pytest.mark.parametrize("value", [object(), LongRepr()])
def test_an_object_that_is_no_number_is_refused_with_the_field_named(value):
    for field in NUMBER_FIELDS:
        assert refused(lambda field=field: PlateauConfig(**{field: value}), field) is not None
    assert refused(lambda: plateau.init(value, PlateauConfig()), "lrs") is not None
    assert refused(lambda: plateau.step(STATE, value, PlateauConfig()), "metric") is not None
    assert refused(lambda: PlateauState(lrs=[0.1], best=value), "best") is not None


def test_show_shortens_a_huge_repr_to_one_printable_line():
    text = show(LongRepr())
    assert text.isprintable() and len(text) <= 60


# --- simulate: a set has no order, a dict gives its keys ------------------------------


@pytest.mark.parametrize("metrics", [{1.0, 2.0}, frozenset({1.0}), {1.0: 2.0}, {}.keys()])
def test_simulate_refuses_an_unordered_iterable(metrics):
    with pytest.raises(TypeError, match="'metrics' must be an iterable of numbers in order"):
        plateau.simulate(metrics, PlateauConfig())


def test_simulate_takes_ordered_iterables():
    config = PlateauConfig(patience=0)
    expected = plateau.simulate([3.0, 4.0], config)
    assert plateau.simulate((3.0, 4.0), config) == expected
    assert plateau.simulate(iter([3.0, 4.0]), config) == expected
    assert plateau.simulate({"a": 3.0, "b": 4.0}.values(), config) == expected


# --- everything valid serialises to strict JSON and back exactly ----------------------

finite_lr = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
positive_floats = st.floats(min_value=0.0, max_value=1e300, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    factor=st.floats(min_value=5e-324, max_value=1.0, exclude_max=True),
    patience=st.integers(0, 2**63 - 1),
    threshold=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    cooldown=st.integers(0, 2**63 - 1),
    min_lr=finite_lr | st.lists(finite_lr, min_size=1, max_size=3) | st.tuples(finite_lr),
    eps=finite_lr,
    mode=st.sampled_from(["min", "max"]),
    on_nonfinite=st.sampled_from(["bad", "raise", "skip"]),
)
def test_every_valid_config_round_trips_strict_json_exactly(**fields):
    config = PlateauConfig(**fields)
    d = config.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = PlateauConfig.from_dict(json.loads(text))
    assert back == config
    assert repr(back) == repr(config)  # -0.0 and subnormals kept, tuples stay tuples


@settings(max_examples=200, deadline=None)
@given(
    lrs=st.lists(finite_lr, min_size=1, max_size=3),
    best=st.floats(allow_nan=False),
    counters=st.tuples(*[st.integers(0, 2**63 - 1)] * 3),
    decision=st.sampled_from(list(plateau.Decision)),
)
def test_every_valid_state_round_trips_strict_json_exactly(lrs, best, counters, decision):
    state = PlateauState(
        lrs=lrs,
        best=best,
        num_bad_epochs=counters[0],
        cooldown_counter=counters[1],
        last_epoch=counters[2],
        decision=decision,
    )
    back = PlateauState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))
    assert back == state and repr(back) == repr(state)
    assert math.copysign(1.0, back.best) == math.copysign(1.0, best)


def test_edge_floats_round_trip():
    for value in (-0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308):
        state = PlateauState(lrs=[abs(value), -0.0], best=value)
        back = PlateauState.from_dict(strict_json_round_trip(state.to_dict()))
        assert repr(back) == repr(state)
    config = PlateauConfig(min_lr=(0.0, -0.0, 5e-324), eps=-0.0)
    assert repr(PlateauConfig.from_dict(strict_json_round_trip(config.to_dict()))) == repr(config)


# --- the CLI's number grammar (the readers and options share it) ----------------------


@pytest.mark.parametrize(
    "text", ["1", "-2.5", "1e-05", "1E+30", ".5", "1.", "nan", "-nan", "NaN", "inf", "-Infinity",
             " 1e5 ", "\t0.5", "1e400"],
)  # fmt: skip
def test_parse_decimal_reads_what_loggers_write_as_float_does(text):
    assert repr(parse_decimal(text)) == repr(float(text))


@pytest.mark.parametrize(
    "text", ["1_0", "\u0661", "\uff11", "\u00a01", "1\n", "0x10", "1e", "", " ", "one", "1,5"]
)
def test_parse_decimal_refuses_what_float_takes_but_no_logger_writes(text):
    with pytest.raises(ValueError, match="is not a number"):
        parse_decimal(text)


def test_parse_integer_is_ascii_and_64_bit():
    assert parse_integer(" 7 ") == 7 and parse_integer("-9223372036854775807") == -(2**63 - 1)
    for text in ["1_0", "\u0663", "3.0", "9223372036854775808", "1" * 5000]:
        with pytest.raises(ValueError):
            parse_integer(text)
