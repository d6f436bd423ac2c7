"""PlateauConfig: the validated, immutable settings of a plateau schedule.

Every field is checked once, at construction, and the object can never hold a
value the core would misbehave on. Converters only normalise types that mean
the same number (an int or a numpy float becomes a Python float); the
validators decide, and their messages name the field and the value received.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ._checks import (
    FORMAT_VERSION,
    check_choice,
    check_envelope,
    check_int,
    check_non_negative,
    check_real,
    got,
    is_real,
    show,
    to_float,
    to_int,
)

Mode = Literal["min", "max"]
ThresholdMode = Literal["rel", "abs", "rel_abs"]
OnNonFinite = Literal["bad", "raise", "skip"]
Detector = Literal["best", "window_best", "slope"]

_CONFIG_FORMAT = "plateau.PlateauConfig"


def _to_min_lr(value: float | Sequence[float]) -> float | tuple[float, ...]:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return tuple(to_float(v) for v in value)
    return to_float(value)  # type: ignore[arg-type]  # a str is left for the validator


def _named(check: Callable[..., object], *args: Any) -> Any:
    """An attrs validator running ``check(field name, value, *args)``: the message names it."""

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check(attribute.name, value, *args)

    return validate


def _check_ema_decay(name: str, value: object) -> None:
    if value is None:
        return
    if not is_real(value):
        raise TypeError(f"'{name}' must be None or a real number in [0, 1), got {got(value)}")
    if not 0.0 <= check_real(name, value) < 1.0:
        raise ValueError(
            f"'{name}' must be in [0, 1) (the weight kept on the old average), got {show(value)}"
        )


def _check_fraction(name: str, value: object) -> None:
    if not 0.0 < check_real(name, value) < 1.0:
        raise ValueError(f"'{name}' must be strictly between 0 and 1, got {show(value)}")


def _check_optional_int(name: str, value: object) -> None:
    if value is not None:
        check_int(name, value)


@attrs.frozen(kw_only=True)
class PlateauConfig:
    """How a plateau schedule decides; torch's ReduceLROnPlateau arguments and defaults.

    Attributes:
        mode: "min" when lower metrics are better, "max" when higher are.
        factor: Multiplier applied to each lr on a reduction; strictly between 0 and 1.
        patience: Bad epochs tolerated; the lr is cut on bad epoch ``patience + 1``.
        threshold: Margin a metric must beat ``best`` by to count as an improvement.
        threshold_mode: "rel" (margin ``best * threshold``), "abs" (margin ``threshold``)
            or "rel_abs" (margin ``threshold * abs(best)``: sign-safe for negative metrics).
        cooldown: Epochs after a reduction during which bad epochs are not counted.
        min_lr: Floor for every lr, or one floor per lr.
        eps: A cut of ``eps`` or less is not applied.
        on_nonfinite: What a NaN or infinite metric does: "bad" (torch: compared as a
            number, so NaN is a bad epoch), "raise" (ValueError) or "skip" (no effect).
        accumulation_size: Observations averaged into one decision, as optax's
            accumulation_size; 1 (torch) decides on every observation.
        ema_decay: Weight kept on the old average when smoothing the judged value,
            ``ema = ema_decay * ema + (1 - ema_decay) * value`` (nnU-Net uses 0.93);
            None (torch) judges the raw value.
        max_reductions: Cuts allowed, after which patience exceeded records "capped"
            and no lr changes; None (torch) is no cap.
        warmup_epochs: Steps of linear warmup before the plateau rule starts (0: none).
            They do not observe the metric; the lrs ramp from ``lr * warmup_start_factor``
            to the lrs given to :func:`plateau.init`, reached exactly on the last one.
        warmup_start_factor: The fraction of each lr that warmup starts from, in [0, 1].
        detector: Rule 2's improvement test: "best" (torch's: beat the best ever),
            "window_best" (beat the best of the previous ``window`` judged values) or
            "slope" (a one-sided t-test of the least-squares slope over the last
            ``window`` judged values, at level ``alpha``).
        window: The judged values "window_best" and "slope" look at (>= 3 for "slope").
        alpha: The slope test's significance level, strictly between 0 and 1.

    Example:
        >>> PlateauConfig(patience=2, factor=0.5).patience
        2
        >>> PlateauConfig(factor=1.0)
        Traceback (most recent call last):
        ...
        ValueError: 'factor' must be strictly between 0 and 1, got 1.0
    """

    mode: Mode = attrs.field(default="min", validator=_named(check_choice, ("min", "max")))
    factor: float = attrs.field(default=0.1, converter=to_float, validator=_named(_check_fraction))
    patience: int = attrs.field(default=10, converter=to_int, validator=_named(check_int))
    threshold: float = attrs.field(default=1e-4, converter=to_float)
    threshold_mode: ThresholdMode = attrs.field(
        default="rel", validator=_named(check_choice, ("rel", "abs", "rel_abs"))
    )
    cooldown: int = attrs.field(default=0, converter=to_int, validator=_named(check_int))
    min_lr: float | tuple[float, ...] = attrs.field(default=0.0, converter=_to_min_lr)
    eps: float = attrs.field(default=1e-8, converter=to_float, validator=_named(check_non_negative))
    on_nonfinite: OnNonFinite = attrs.field(
        default="bad", validator=_named(check_choice, ("bad", "raise", "skip"))
    )
    # Beyond torch: each default turns its feature off, and then torch's rules run exactly.
    accumulation_size: int = attrs.field(
        default=1, converter=to_int, validator=_named(check_int, 1)
    )
    ema_decay: float | None = attrs.field(
        default=None,
        converter=attrs.converters.optional(to_float),
        validator=_named(_check_ema_decay),
    )
    max_reductions: int | None = attrs.field(
        default=None,
        converter=attrs.converters.optional(to_int),
        validator=_named(_check_optional_int),
    )
    # Steps of linear ramp before the plateau rule (see plateau._core, "Warmup").
    warmup_epochs: int = attrs.field(default=0, converter=to_int, validator=_named(check_int))
    warmup_start_factor: float = attrs.field(default=0.0, converter=to_float)
    # Rule 2's detector (see plateau._core, rule 2); "best" is torch's test.
    detector: Detector = attrs.field(
        default="best", validator=_named(check_choice, ("best", "window_best", "slope"))
    )
    window: int = attrs.field(default=10, converter=to_int, validator=_named(check_int, 1))
    alpha: float = attrs.field(default=0.05, converter=to_float, validator=_named(_check_fraction))

    @threshold.validator
    def _check_threshold(self, attribute: attrs.Attribute[float], value: object) -> None:
        number = check_non_negative("threshold", value)
        # best starts at +inf and inf * (1 - t) is nan or -inf for t >= 1: no metric
        # could ever improve, so the schedule would cut blindly every patience + 1 steps.
        # threshold_mode is validated after this field: compare it only if it is a str.
        rel = type(self.threshold_mode) is str and self.threshold_mode == "rel"
        if self.mode == "min" and rel and number >= 1.0:
            raise ValueError(
                f"'threshold' must be < 1 with mode='min' and threshold_mode='rel' "
                f"(nothing could ever improve), got {show(value)}"
            )

    @window.validator
    def _check_window(self, attribute: attrs.Attribute[int], value: int) -> None:
        if self.detector == "slope" and value < 3:
            raise ValueError(
                f"'window' must be >= 3 with detector='slope' (a line through fewer values "
                f"leaves no noise to test), got {show(value)}"
            )

    @warmup_start_factor.validator
    def _check_warmup_start_factor(self, attribute: attrs.Attribute[float], value: object) -> None:
        number = check_real("warmup_start_factor", value)
        if not 0.0 <= number <= 1.0:
            raise ValueError(f"'warmup_start_factor' must be between 0 and 1, got {show(value)}")

    @min_lr.validator
    def _check_min_lr(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, tuple):
            if not value:
                raise ValueError("'min_lr' must not be an empty sequence")
            for i, item in enumerate(value):
                check_non_negative(f"min_lr[{i}]", item)
        else:
            check_non_negative("min_lr", value)

    def min_lrs(self, count: int) -> tuple[float, ...]:
        """The floor of each of `count` lrs: a scalar min_lr extends to any count.

        Raises:
            ValueError: min_lr is a sequence whose length is not `count`.
        """
        if isinstance(self.min_lr, tuple):
            if len(self.min_lr) != count:
                raise ValueError(
                    f"'min_lr' has {len(self.min_lr)} values but there are {count} lrs "
                    "(one per param group or optimizer); give one min_lr per lr, or a "
                    "scalar min_lr, which extends to any count"
                )
            return self.min_lr
        return (self.min_lr,) * count

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that passes ``json.dumps(d, allow_nan=False)`` and round-trips exactly."""
        d: dict[str, Any] = {"format": _CONFIG_FORMAT, "version": FORMAT_VERSION}
        d.update(attrs.asdict(self, recurse=False))
        if isinstance(self.min_lr, tuple):
            d["min_lr"] = list(self.min_lr)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlateauConfig:
        """Rebuild a config from :meth:`to_dict`'s output, validating every field.

        Raises:
            TypeError: `d` is not a mapping, or a field has the wrong type.
            ValueError: wrong format or version, missing or unknown keys, or a bad value.
        """
        return cls(**check_envelope(d, _CONFIG_FORMAT, [a.name for a in attrs.fields(cls)]))

    @classmethod
    def from_keras(
        cls,
        *,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "min",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> PlateauConfig:
        """The config under which the core follows ``keras.callbacks.ReduceLROnPlateau``.

        Keras 3 counts ``wait >= patience`` after decrementing its cooldown, so its
        patience P and cooldown C are torch's ``max(P-1, 0)`` and ``max(C-1, 0)``; its
        test is absolute with ``abs(min_delta)``; it has no eps; its lr lives in a
        float32 variable, so min_lr is rounded to float32 as Keras compares it.
        See :mod:`plateau._translate` for what is not reproduced.

        Args (in the order of Keras's own signature):
            monitor: The monitored name; only used to resolve mode="auto".
            factor: Keras's factor.
            patience: Keras's patience (epochs with no improvement before a cut).
            mode: "min", "max", or "auto" (resolved as Keras does for a `monitor` of
                "loss" or "val_loss"; any other name must give mode explicitly, since
                Keras resolves it from the compiled metric's direction).
            min_delta: Keras's min_delta; its absolute value is used, as Keras does.
            cooldown: Keras's cooldown.
            min_lr: Keras's min_lr.

        Example:
            >>> PlateauConfig.from_keras(patience=3, cooldown=2).patience
            2
        """
        from . import _translate  # here, not at the top: most imports never translate

        return cls(
            **_translate.keras_fields(
                factor=factor,
                patience=patience,
                min_delta=min_delta,
                cooldown=cooldown,
                min_lr=min_lr,
                mode=_translate.keras_mode(mode, monitor),
            )
        )

    @classmethod
    def from_optax(
        cls,
        *,
        factor: float = 0.1,
        patience: int = 10,
        rtol: float = 1e-4,
        atol: float = 0.0,
        cooldown: int = 0,
        accumulation_size: int = 1,
        min_scale: float = 0.0,
    ) -> PlateauConfig:
        """The config under which the core follows ``optax.contrib.reduce_on_plateau``.

        Use it with ``init(1.0, config)``: optax's learning-rate *scale* starts at 1.0.
        optax reduces when its plateau count *equals* patience, so its patience P is
        torch's ``P - 1``; its cooldown has no off-by-one; it has no eps. optax
        minimises only. Its ``accumulation_size`` is the core's: one decision per
        that many values, on their running mean (the states between decisions
        record ``Decision.ACCUMULATING``, and the scale optax applies then is the
        state's lr).

        Raises:
            ValueError: both rtol and atol non-zero (optax's combined threshold has no
                torch equivalent), both zero, patience < 1 (optax's patience=0 cuts on
                every *improvement*), rtol >= 1 (nothing could ever improve),
                accumulation_size < 1 (optax would never decide), or min_scale > 1
                (optax would raise the scale).

        Example:
            >>> PlateauConfig.from_optax(patience=5, rtol=1e-3).patience
            4
        """
        from . import _translate  # here, not at the top: most imports never translate

        return cls(
            **_translate.optax_fields(
                factor=factor,
                patience=patience,
                rtol=rtol,
                atol=atol,
                cooldown=cooldown,
                accumulation_size=accumulation_size,
                min_scale=min_scale,
            )
        )
