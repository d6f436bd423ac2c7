"""The hypothesis strategies the core's property tests share: configs, lrs and metric streams.

``setups()`` draws a ``(config, lrs)`` pair: torch's arguments at random (one to
three lrs, a scalar or per-lr min_lr), with keyword arguments that switch on
the rules beyond torch's, a warmup, or the non-finite policies a test can take.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from plateau import PlateauConfig

# Metric streams: any float (NaN and infinities too), with repeats, so that ties,
# bad epochs and cuts all happen.
metric_streams = st.lists(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0.0, 1.0, 1.0, 2.0, -1.0]),
    ),
    max_size=60,
)
lr_values = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)
positive_lr_values = st.floats(min_value=1e-6, max_value=10.0)
# warmup_start_factor: its bounds and a plain value drawn often, any fraction else.
start_factors = st.one_of(st.sampled_from([0.0, 1.0, 0.1]), st.floats(0.0, 1.0))
no_warmup = st.just(0)


@st.composite
def setups(
    draw: st.DrawFn,
    *,
    beyond: bool = False,
    warmup_epochs: st.SearchStrategy[int] = no_warmup,
    on_nonfinite: Sequence[str] = ("bad", "skip"),
    lrs: st.SearchStrategy[float] = lr_values,
) -> tuple[PlateauConfig, list[float]]:
    """A random config and its lrs.

    Args:
        draw: hypothesis's.
        beyond: also draw accumulation, smoothing, a cap, "rel_abs" and a trend
            detector, each on or off.
        warmup_epochs: the warmup's length (none by default).
        on_nonfinite: the policies to draw from ("raise" raises on a non-finite metric).
        lrs: each lr's values.
    """
    n = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["min", "max"]))
    threshold_mode = draw(st.sampled_from(["rel", "abs"]))
    top = 0.99 if (mode, threshold_mode) == ("min", "rel") else 5.0
    floor = st.floats(min_value=0.0, max_value=1.0)
    fields = {
        "mode": mode,
        "threshold_mode": threshold_mode,
        "threshold": draw(st.floats(min_value=0.0, max_value=top)),
        "factor": draw(st.floats(min_value=1e-3, max_value=0.999)),
        "patience": draw(st.integers(0, 6)),
        "cooldown": draw(st.integers(0, 4)),
        "min_lr": draw(st.lists(floor, min_size=n, max_size=n) if draw(st.booleans()) else floor),
        "eps": draw(st.sampled_from([0.0, 1e-8, 1e-3, 0.1])),
        "on_nonfinite": draw(st.sampled_from(on_nonfinite)),
        "warmup_epochs": draw(warmup_epochs),
        "warmup_start_factor": draw(start_factors),
    }
    if beyond and draw(st.booleans()):
        fields["accumulation_size"] = draw(st.integers(1, 4))
    if beyond and draw(st.booleans()):
        fields["ema_decay"] = draw(st.sampled_from([0.0, 0.5, 0.93]) | st.floats(0.0, 0.999))
    if beyond and draw(st.booleans()):
        fields["max_reductions"] = draw(st.integers(0, 3))
    if beyond and draw(st.booleans()):
        fields["threshold_mode"] = "rel_abs"
    if beyond and draw(st.booleans()):
        fields["detector"] = draw(st.sampled_from(["window_best", "slope"]))
        fields["window"] = draw(st.integers(3, 8))
        fields["alpha"] = draw(st.sampled_from([0.05, 0.2, 0.6]))
    return PlateauConfig(**fields), draw(st.lists(lrs, min_size=n, max_size=n))
