"""PlateauConfig: validation at construction, serialisation, framework translations."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import attrs
import pytest

from plateau import PlateauConfig

BAD_VALUES = [
    # (field, value, exception type)
    ("mode", "mni", ValueError),
    ("mode", "MIN", ValueError),
    ("mode", None, TypeError),
    ("threshold_mode", "relative", ValueError),
    ("threshold_mode", 1, TypeError),
    ("on_nonfinite", "ignore", ValueError),
    ("on_nonfinite", b"bad", TypeError),
    ("factor", 1.0, ValueError),
    ("factor", 1.5, ValueError),
    ("factor", 0.0, ValueError),
    ("factor", -0.1, ValueError),
    ("factor", math.nan, ValueError),
    ("factor", "0.5", TypeError),
    ("factor", True, TypeError),
    ("patience", -1, ValueError),
    ("patience", 2.0, TypeError),
    ("patience", "3", TypeError),
    ("patience", True, TypeError),
    ("cooldown", -2, ValueError),
    ("cooldown", 1.5, TypeError),
    ("threshold", -1e-4, ValueError),
    ("threshold", math.inf, ValueError),
    ("threshold", math.nan, ValueError),
    ("threshold", "1e-4", TypeError),
    ("eps", -1e-8, ValueError),
    ("eps", math.inf, ValueError),
    ("eps", None, TypeError),
    ("min_lr", -1e-6, ValueError),
    ("min_lr", math.nan, ValueError),
    ("min_lr", math.inf, ValueError),
    ("min_lr", (), ValueError),
    ("min_lr", [0.1, -0.1], ValueError),
    ("min_lr", [0.1, "x"], TypeError),
    ("min_lr", "0.1", TypeError),
    ("min_lr", None, TypeError),
    ("accumulation_size", 0, ValueError),
    ("accumulation_size", -3, ValueError),
    ("accumulation_size", 2.0, TypeError),
    ("accumulation_size", True, TypeError),
    ("accumulation_size", None, TypeError),
    ("ema_decay", 1.0, ValueError),
    ("ema_decay", -0.1, ValueError),
    ("ema_decay", math.nan, ValueError),
    ("ema_decay", "0.9", TypeError),
    ("ema_decay", True, TypeError),
    ("max_reductions", -1, ValueError),
    ("max_reductions", 2.0, TypeError),
    ("max_reductions", "3", TypeError),
    ("threshold_mode", "rel-abs", ValueError),
]


@pytest.mark.parametrize(("field", "value", "exc"), BAD_VALUES)
def test_bad_value_is_a_clear_error_naming_field_and_value(field, value, exc):
    with pytest.raises(exc) as info:
        PlateauConfig(**{field: value})
    message = str(info.value)
    assert f"'{field}" in message
    shown = value[-1] if isinstance(value, list) else value
    if shown != ():
        assert repr(shown) in message or str(shown) in message


def test_relative_threshold_of_one_in_min_mode_is_rejected():
    """inf * (1 - 1) is nan: no metric could ever improve, so the config is refused."""
    with pytest.raises(ValueError, match="'threshold' must be < 1"):
        PlateauConfig(threshold=1.0)
    # The same threshold is meaningful elsewhere: "must double" in max mode, or absolute.
    assert PlateauConfig(mode="max", threshold=1.0).threshold == 1.0
    assert PlateauConfig(threshold=1.0, threshold_mode="abs").threshold == 1.0


def test_numbers_are_normalised_to_plain_python_types():
    np = pytest.importorskip("numpy")
    config = PlateauConfig(
        factor=np.float32(0.5),
        patience=np.int64(3),
        threshold=0,
        cooldown=np.int8(1),
        min_lr=[0, Fraction(1, 4)],
        eps=0,
    )
    assert type(config.factor) is float and config.factor == 0.5
    assert type(config.patience) is int and config.patience == 3
    assert type(config.cooldown) is int
    assert type(config.threshold) is float
    assert config.min_lr == (0.0, 0.25)
    assert all(type(v) is float for v in config.min_lr)


def test_config_is_frozen_and_hashable():
    config = PlateauConfig()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.factor = 0.5  # type: ignore[misc]
    assert hash(config) == hash(PlateauConfig())
    assert config != PlateauConfig(patience=3)


def test_defaults_are_torchs():
    config = PlateauConfig()
    assert (config.mode, config.factor, config.patience, config.threshold) == ("min", 0.1, 10, 1e-4)
    assert (config.threshold_mode, config.cooldown, config.min_lr, config.eps) == (
        "rel",
        0,
        0.0,
        1e-8,
    )
    assert config.on_nonfinite == "bad"


def test_min_lrs_extends_a_scalar_and_checks_a_sequence():
    assert PlateauConfig(min_lr=0.01).min_lrs(3) == (0.01, 0.01, 0.01)
    assert PlateauConfig(min_lr=[0.1, 0.2]).min_lrs(2) == (0.1, 0.2)
    with pytest.raises(ValueError, match="'min_lr' has 2 values but there are 3 lrs"):
        PlateauConfig(min_lr=[0.1, 0.2]).min_lrs(3)


@pytest.mark.parametrize(
    "config",
    [
        PlateauConfig(),
        PlateauConfig(mode="max", threshold_mode="abs", min_lr=[1e-7, 0.1 + 0.2], eps=0.0),
        PlateauConfig(factor=1 / 3, patience=0, cooldown=7, threshold=0.1, on_nonfinite="skip"),
    ],
)
def test_to_dict_survives_strict_json_exactly(config):
    text = json.dumps(config.to_dict(), allow_nan=False)
    assert PlateauConfig.from_dict(json.loads(text)) == config


@pytest.mark.parametrize(
    ("mutate", "exc", "match"),
    [
        (lambda d: d.pop("patience"), ValueError, "missing keys \\['patience'\\]"),
        (lambda d: d.update(extra=1), ValueError, "unknown keys \\['extra'\\]"),
        (lambda d: d.update(version=2), ValueError, "'version' must be 1, got 2"),
        (lambda d: d.update(format="x"), ValueError, "'format' must be"),
        (lambda d: d.update(factor=7), ValueError, "'factor' must be strictly between"),
        (lambda d: d.update(patience="3"), TypeError, "'patience' must be an int"),
        (lambda d: d.update(min_lr=[]), ValueError, "'min_lr' must not be an empty"),
    ],
)
def test_from_dict_rejects_a_corrupt_dict(mutate, exc, match):
    d = PlateauConfig().to_dict()
    mutate(d)
    with pytest.raises(exc, match=match):
        PlateauConfig.from_dict(d)


def test_from_dict_rejects_a_non_mapping():
    with pytest.raises(TypeError, match="expected a dict"):
        PlateauConfig.from_dict([("mode", "min")])  # type: ignore[arg-type]


class TestFromKeras:
    def test_off_by_ones_and_absolute_threshold(self):
        config = PlateauConfig.from_keras(
            factor=0.5, patience=3, min_delta=-0.01, cooldown=2, min_lr=0.25
        )
        assert (config.patience, config.cooldown) == (2, 1)
        assert (config.threshold, config.threshold_mode, config.eps) == (0.01, "abs", 0.0)
        assert config.min_lr == 0.25

    def test_zero_patience_and_cooldown_mean_one(self):
        zero = PlateauConfig.from_keras(patience=0, cooldown=0)
        one = PlateauConfig.from_keras(patience=1, cooldown=1)
        assert zero == one

    def test_min_lr_is_rounded_to_float32_as_keras_compares_it(self):
        config = PlateauConfig.from_keras(min_lr=1e-5)
        assert config.min_lr != 1e-5
        assert abs(config.min_lr - 1e-5) < 1e-12

    def test_auto_mode_is_resolved_only_where_keras_needs_no_model(self):
        assert PlateauConfig.from_keras(mode="auto", monitor="val_loss").mode == "min"
        assert PlateauConfig.from_keras(mode="auto", monitor="loss").mode == "min"
        with pytest.raises(ValueError, match="monitor='val_accuracy'"):
            PlateauConfig.from_keras(mode="auto", monitor="val_accuracy")

    def test_unknown_mode_is_an_error_not_a_fallback(self):
        with pytest.raises(ValueError, match="'mode' must be one of"):
            PlateauConfig.from_keras(mode="minimum")

    def test_bad_patience_type(self):
        with pytest.raises(TypeError, match="'patience' must be an int"):
            PlateauConfig.from_keras(patience=2.5)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("kwargs", "exc", "match"),
        [
            ({"patience": -1}, ValueError, "'patience' must be >= 0, got -1"),
            ({"cooldown": -3}, ValueError, "'cooldown' must be >= 0, got -3"),
            ({"min_delta": math.nan}, ValueError, "'min_delta' must be finite, got nan"),
            ({"min_delta": -math.inf}, ValueError, "'min_delta' must be finite, got -inf"),
            ({"min_lr": 1e39}, ValueError, "'min_lr' must fit in float32.*got 1e\\+39"),
            ({"mode": "auto", "monitor": 3}, TypeError, "'monitor' must be a str, got int"),
        ],
    )
    def test_bad_keras_arguments_are_named_as_keras_names_them(self, kwargs, exc, match):
        """No silent clamping of a negative patience, no error naming a translated field."""
        with pytest.raises(exc, match=match):
            PlateauConfig.from_keras(**kwargs)


class TestFromOptax:
    def test_patience_off_by_one_and_no_eps(self):
        config = PlateauConfig.from_optax(factor=0.5, patience=4, rtol=1e-3, cooldown=2)
        assert (config.patience, config.cooldown, config.eps) == (3, 2, 0.0)
        assert (config.threshold, config.threshold_mode, config.mode) == (1e-3, "rel", "min")

    def test_atol_only_is_absolute(self):
        config = PlateauConfig.from_optax(rtol=0.0, atol=0.5, min_scale=0.01)
        assert (config.threshold, config.threshold_mode, config.min_lr) == (0.5, "abs", 0.01)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"rtol": 1e-4, "atol": 1e-3}, "both non-zero"),
            ({"rtol": 0.0, "atol": 0.0}, "one of 'rtol' or 'atol' must be positive"),
            ({"patience": 0}, "'patience' must be >= 1"),
            ({"min_scale": 2.0}, "'min_scale' must be <= 1"),
            ({"rtol": -1e-4}, "'rtol' must be finite and >= 0"),
            ({"rtol": 1.0}, "'rtol' must be < 1"),
        ],
    )
    def test_untranslatable_arguments_raise(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            PlateauConfig.from_optax(**kwargs)


def test_beyond_torch_defaults_turn_each_feature_off():
    config = PlateauConfig()
    assert (config.accumulation_size, config.ema_decay, config.max_reductions) == (1, None, None)
    np = pytest.importorskip("numpy")
    config = PlateauConfig(
        accumulation_size=np.int64(4), ema_decay=np.float32(0.5), max_reductions=0
    )
    assert type(config.accumulation_size) is int and type(config.ema_decay) is float
    assert config.max_reductions == 0


def test_rel_abs_takes_any_finite_threshold_in_min_mode():
    assert PlateauConfig(threshold=2.0, threshold_mode="rel_abs").threshold == 2.0


class TestFromOptaxAccumulation:
    def test_is_passed_through(self):
        assert PlateauConfig.from_optax(accumulation_size=8).accumulation_size == 8

    @pytest.mark.parametrize(
        ("value", "exc"), [(0, ValueError), (-1, ValueError), (2.5, TypeError)]
    )
    def test_bad_values_are_refused_by_name(self, value, exc):
        with pytest.raises(exc, match="'accumulation_size'"):
            PlateauConfig.from_optax(accumulation_size=value)
