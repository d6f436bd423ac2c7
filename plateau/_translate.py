"""Keras's and optax's plateau arguments, translated to PlateauConfig fields.

Pure functions of the frameworks' arguments: no framework is imported. Each
returns the keyword arguments of a :class:`plateau.PlateauConfig` under which the
core takes the framework's decisions; ``PlateauConfig.from_keras`` and
``PlateauConfig.from_optax`` are their public faces, and the Keras adapter
resolves ``mode="auto"`` through :func:`keras_mode`.

Keras 3 (``keras.callbacks.ReduceLROnPlateau``) counts ``wait >= patience`` after
decrementing its cooldown, so its patience P and cooldown C are torch's
``max(P-1, 0)`` and ``max(C-1, 0)`` (its 0 and 1 behave alike); its test is
absolute with ``abs(min_delta)``; it has no eps; its lr lives in a float32
variable, so min_lr is rounded to float32 as Keras compares it. Not reproduced
(documented in docs/semantics.md): a NaN or infinite metric on the very first
epoch becomes Keras's best; Keras compares in float32, so metrics closer than
float32 resolution to ``best - min_delta`` may be judged differently; at the floor
Keras keeps counting instead of entering cooldown (the lrs agree, the counters
do not).

optax (``optax.contrib.reduce_on_plateau``) reduces when its plateau count
*equals* patience, so its P is torch's ``P - 1``; its cooldown has no off-by-one;
its threshold ``(1 - rtol) * best - atol`` maps onto torch's "rel" (atol = 0) or
"abs" (rtol = 0); it has no eps and minimises only; its ``accumulation_size`` is
the core's. Not reproduced: optax compares and averages in float32.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Literal

from ._checks import check_int, check_non_negative, check_real, show


def f32(value: float) -> float:
    """`value` rounded to float32, as Keras stores lrs and compares metrics (+/-inf beyond)."""
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:  # rounds to infinity, as numpy's float32 conversion does
        return math.copysign(math.inf, value)


def keras_mode(
    mode: object, monitor: object, model_direction: str | None = None, *, from_model: bool = False
) -> Literal["min", "max"]:
    """Keras's ``mode``, with "auto" resolved as Keras's ``MonitorCallback`` resolves it.

    "auto" is "min" for a monitor of "loss" or "val_loss"; otherwise the compiled
    metric's direction decides ("up" is "max"), which only a model can tell: the
    Keras adapter passes it as `model_direction`, with ``from_model=True`` so that
    an unresolvable mode raises Keras's own message.

    Raises:
        TypeError: `mode` or `monitor` is not a str.
        ValueError: an unknown mode, or "auto" that cannot be resolved.

    Example:
        >>> keras_mode("auto", "val_loss"), keras_mode("auto", "val_acc", "up", from_model=True)
        ('min', 'max')
    """
    for name, value in (("mode", mode), ("monitor", monitor)):
        if not isinstance(value, str):
            raise TypeError(f"'{name}' must be a str, got {type(value).__name__}: {show(value)}")
    if mode == "min" or mode == "max":
        return mode
    if mode != "auto":
        raise ValueError(f"'mode' must be one of ('auto', 'min', 'max'), got {show(mode)}")
    if str(monitor).removeprefix("val_") == "loss":
        return "min"
    if model_direction in ("up", "down"):
        return "max" if model_direction == "up" else "min"
    if from_model:  # word for word Keras's message
        raise ValueError(
            f"ReduceLROnPlateau callback received monitor={monitor}, but Keras isn't able to "
            "automatically determine whether that metric should be maximized or minimized. "
            "Pass `mode='max'` in order to monitor based on the highest metric value, or "
            "pass `mode='min'` in order to use the lowest value."
        )
    raise ValueError(
        "mode='auto' can only be resolved for monitor 'loss' or 'val_loss', got "
        f"monitor={show(monitor)}; pass mode='min' or mode='max' (Keras resolves it from "
        "the compiled metric, which a pure translation cannot see)"
    )


def keras_fields(
    *,
    factor: float,
    patience: int,
    min_delta: float,
    cooldown: int,
    min_lr: float,
    mode: Literal["min", "max"],
) -> dict[str, Any]:
    """PlateauConfig fields for Keras's arguments (`mode` already resolved)."""
    delta = abs(check_real("min_delta", min_delta))
    if not math.isfinite(delta):
        raise ValueError(f"'min_delta' must be finite, got {show(min_delta)}")
    floor = check_non_negative("min_lr", min_lr)
    if not math.isfinite(f32(floor)):
        raise ValueError(f"'min_lr' must fit in float32, as Keras stores it, got {show(min_lr)}")
    return {
        "mode": mode,
        "factor": factor,
        # Keras's 0 and 1 behave the same, so both map to torch's 0.
        "patience": max(check_int("patience", patience) - 1, 0),
        "cooldown": max(check_int("cooldown", cooldown) - 1, 0),
        "threshold": delta,
        "threshold_mode": "abs",
        "min_lr": f32(floor),
        "eps": 0.0,
    }


def optax_fields(
    *,
    factor: float,
    patience: int,
    rtol: float,
    atol: float,
    cooldown: int,
    min_scale: float,
    accumulation_size: int = 1,
) -> dict[str, Any]:
    """PlateauConfig fields for ``optax.contrib.reduce_on_plateau``'s arguments."""
    rtol_f = check_non_negative("rtol", rtol)
    atol_f = check_non_negative("atol", atol)
    if rtol_f and atol_f:
        raise ValueError(
            f"optax's combined threshold (rtol={show(rtol)} and atol={show(atol)} both "
            "non-zero) has no torch equivalent; set one of them to 0"
        )
    if rtol_f >= 1.0:
        raise ValueError(
            "'rtol' must be < 1 (with best starting at +inf, (1 - rtol) * best is NaN or "
            f"-inf and nothing could ever improve), got {show(rtol)}"
        )
    if not (rtol_f or atol_f):
        raise ValueError("one of 'rtol' or 'atol' must be positive, got both 0")
    patience_i = check_int("patience", patience)
    if patience_i < 1:
        raise ValueError(
            "'patience' must be >= 1 for optax (its patience=0 reduces on every "
            f"improvement), got {show(patience)}"
        )
    if check_int("accumulation_size", accumulation_size) < 1:
        raise ValueError(
            "'accumulation_size' must be >= 1 (optax decides when its count equals it, "
            f"so it would never decide), got {show(accumulation_size)}"
        )
    if check_non_negative("min_scale", min_scale) > 1.0:
        raise ValueError(
            f"'min_scale' must be <= 1 (optax would raise its scale to it), got {show(min_scale)}"
        )
    return {
        "mode": "min",
        "factor": factor,
        "patience": patience_i - 1,
        "cooldown": cooldown,
        "threshold": rtol_f if rtol_f else atol_f,
        "threshold_mode": "rel" if rtol_f else "abs",
        "min_lr": min_scale,
        "eps": 0.0,
        "accumulation_size": accumulation_size,
    }
