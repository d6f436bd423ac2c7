"""The trend detectors' arithmetic (issue 25): the t CDF and the slope test against scipy.

- ``student_t_cdf`` against ``scipy.stats.t`` (cdf and sf) on a grid of df = 1 to
  10 000 and |t| = 0.01 to 1e6 and on random draws, and against mpmath at 40
  digits: the bound in plateau/_trend.py's docstring.
- ``slope_improves`` decides as ``scipy.stats.linregress(x, y, alternative=...)``
  on hundreds of random noisy windows (n = 3 to 32, both modes, several alphas);
  a window whose p-value is within 1e-12 of alpha could go either way on the last
  bit and is left out, and counted.
- Laws that need no reference: a perfect fit, equal values, a non-finite value,
  scaling by a power of two (1e-300 to 1e300), the mirror (negate, or reverse, and
  swap the mode) and a larger alpha never refusing what a smaller one accepted.
- ``window_best``: the start's +-inf, NaN never the best.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plateau._trend import slope_improves, student_t_cdf, window_best

DFS = [1, 2, 3, 4, 5, 7, 10, 17, 30, 50, 100, 300, 1000, 3000, 10_000]
T_GRID = [0.01, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 30.0, 100.0, 1e3, 1e4, 1e6]
# Tails below this are subnormal or underflow in float64 for some (t, df): not compared.
SMALLEST = 1e-300


def _random_points(count: int) -> list[tuple[float, int]]:
    rng = random.Random(25)
    points = []
    for _ in range(count):
        df = rng.choice([rng.randint(1, 40), rng.randint(1, 500), rng.randint(1, 10_000)])
        points.append((rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-3, 6), df))
    return points


POINTS = [(sign * t, df) for df in DFS for t in T_GRID for sign in (-1.0, 1.0)]
POINTS += _random_points(1500)


def _error_over_bound(value: float, reference: float) -> float:
    """The relative error in units of the stated bound, 1.5e-14 + |ln p| * 2**-51.

    The |ln p| term: x = df / (df + t**2) must be rounded, and ln p is about
    -df/2 ln(1 + t**2 / df), so x's last bit is multiplied by df/2 in p.
    """
    bound = 1.5e-14 + abs(math.log(reference)) * 2.0**-51
    return abs(value - reference) / reference / bound


def test_t_cdf_matches_scipy_cdf_and_sf():
    stats = pytest.importorskip("scipy.stats")
    worst = 0.0
    for t, df in POINTS:
        for ours, theirs in (
            (student_t_cdf(t, df), float(stats.t.cdf(t, df))),
            (student_t_cdf(-t, df), float(stats.t.sf(t, df))),
        ):
            if theirs >= SMALLEST:
                worst = max(worst, _error_over_bound(ours, theirs))
    # scipy's own error is of the same size as ours (against mpmath, up to 2e-13 at
    # df = 2000 near p = 1e-190): twice the bound covers both.
    assert worst <= 2.0, worst


def test_t_cdf_within_its_stated_accuracy_of_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    worst = 0.0
    for t, df in POINTS[::2]:
        x = mpmath.mpf(df) / (df + mpmath.mpf(t) ** 2)
        tail = mpmath.betainc(mpmath.mpf(df) / 2, mpmath.mpf(1) / 2, 0, x, regularized=True) / 2
        for ours, exact in (
            (student_t_cdf(-abs(t), df), tail),
            (student_t_cdf(abs(t), df), 1 - tail),
        ):
            if exact >= SMALLEST:
                worst = max(worst, _error_over_bound(ours, float(exact)))
    assert worst <= 1.0, worst


def test_t_cdf_exact_values():
    assert student_t_cdf(0.0, 3) == 0.5
    assert student_t_cdf(-math.inf, 3) == 0.0
    assert student_t_cdf(math.inf, 3) == 1.0
    assert math.isnan(student_t_cdf(math.nan, 3))
    # df = 2 has a closed form: P(T <= t) = 1/2 + t / (2 sqrt(2 + t**2)).
    for t in (-3.0, -0.5, 0.25, 4.0):
        assert student_t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), rel=1e-15)


def _noisy_windows(count: int) -> list[tuple[list[float], str, float]]:
    """Random windows: a trend of either sign (or none) under Gaussian noise of any scale."""
    rng = random.Random(2025)
    windows = []
    for _ in range(count):
        n = rng.choice([3, 4, 5, 6, 8, 12, 16, 24, 32])
        trend = rng.choice([-1.0, 0.0, 1.0]) * rng.uniform(0.0, 0.5)
        noise = 10 ** rng.uniform(-2.0, 0.5)
        offset = rng.uniform(-100.0, 100.0)
        values = [offset + trend * i + noise * rng.gauss(0.0, 1.0) for i in range(n)]
        if rng.random() < 0.2:  # a log's few printed digits: ties and flat stretches
            values = [round(v, 1) for v in values]
        windows.append(
            (values, rng.choice(["min", "max"]), rng.choice([0.001, 0.01, 0.05, 0.2, 0.5]))
        )
    return windows


def _scipy_decision(stats, values: list[float], mode: str, alpha: float) -> tuple[bool, float]:
    result = stats.linregress(
        range(len(values)), values, alternative="less" if mode == "min" else "greater"
    )
    right_way = result.slope < 0 if mode == "min" else result.slope > 0
    return bool(right_way and result.pvalue < alpha), float(result.pvalue)


def test_slope_improves_decides_as_scipy_linregress():
    stats = pytest.importorskip("scipy.stats")
    compared = excluded = improved = 0
    for values, mode, alpha in _noisy_windows(800):
        expected, p_value = _scipy_decision(stats, values, mode, alpha)
        if abs(p_value - alpha) <= 1e-12:
            excluded += 1
            continue
        assert slope_improves(values, mode, alpha) is expected, (values, mode, alpha, p_value)
        compared += 1
        improved += expected
    # Both answers are common, so a detector stuck on either one fails.
    assert compared >= 790 and 150 <= improved <= compared - 150, (compared, improved)
    assert excluded <= 10, excluded


@pytest.mark.parametrize("scale", [1e-150, 1e-20, 1e20, 1e150])
def test_slope_improves_decides_as_scipy_at_huge_and_tiny_magnitudes(scale):
    stats = pytest.importorskip("scipy.stats")
    for values, mode, alpha in _noisy_windows(100):
        scaled = [v * scale for v in values]
        expected, p_value = _scipy_decision(stats, scaled, mode, alpha)
        if abs(p_value - alpha) > 1e-12:
            assert slope_improves(scaled, mode, alpha) is expected, (scaled, mode, alpha)


def test_slope_improves_on_a_small_trend_far_from_zero():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(7)
    for _ in range(100):
        values = [1e8 - 1e-4 * i + 1e-4 * rng.gauss(0.0, 1.0) for i in range(10)]
        expected, p_value = _scipy_decision(stats, values, "min", 0.05)
        if abs(p_value - 0.05) > 1e-12:
            assert slope_improves(values, "min", 0.05) is expected, values


@pytest.mark.parametrize(
    "values", [[3.0, 2.0, 1.0], [10.0, 7.5, 5.0, 2.5, 0.0], [-1.0, -3.0, -5.0, -7.0, -9.0]]
)
def test_a_perfect_fit_improves_the_right_way_only(values):
    # p = 0: accepted at any alpha, however small.
    assert slope_improves(values, "min", 1e-300)
    assert not slope_improves(values, "max", 0.999)
    assert slope_improves(values[::-1], "max", 1e-300)


def test_a_line_that_rounding_bends_still_improves():
    # 0.3, 0.2, 0.1 leave residuals of a few 1e-17: t is huge, p far below any alpha.
    assert slope_improves([0.3, 0.2, 0.1], "min", 1e-9)
    assert not slope_improves([0.3, 0.2, 0.1], "max", 0.999)


@pytest.mark.parametrize("n", [3, 4, 10, 32])
@pytest.mark.parametrize("value", [0.0, -2.5, 1e-310, 1e300, 0.1])
def test_equal_values_never_improve(n, value):
    for mode in ("min", "max"):
        assert not slope_improves([value] * n, mode, 0.999)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_never_improves(bad):
    values = [5.0, 4.0, 3.0, bad, 1.0]
    assert not slope_improves(values, "min", 0.999)
    assert not slope_improves(values, "max", 0.999)


def test_fewer_than_three_values_are_refused():
    with pytest.raises(ValueError, match="at least 3 values, got 2"):
        slope_improves([2.0, 1.0], "min", 0.05)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
windows = st.lists(finite, min_size=3, max_size=32)
modes = st.sampled_from(["min", "max"])
alphas = st.floats(min_value=1e-6, max_value=0.999)


@given(windows, modes, alphas, st.integers(min_value=-950, max_value=950))
def test_scaling_by_a_power_of_two_changes_nothing(values, mode, alpha, power):
    scaled = [math.ldexp(v, power) for v in values]
    # Only where the scaling is exact: no value leaves the normal range.
    if all(s == 0.0 or 2.0**-1022 <= abs(s) <= 2.0**1023 for s in scaled):
        assert slope_improves(scaled, mode, alpha) is slope_improves(values, mode, alpha)


@given(windows, alphas)
def test_mirror_images_decide_alike(values, alpha):
    # Negating the values, or reversing them, swaps the modes and nothing else.
    improves = slope_improves(values, "min", alpha)
    assert slope_improves([-v for v in values], "max", alpha) is improves
    assert slope_improves(values[::-1], "max", alpha) is improves


@given(windows, modes, alphas, alphas)
def test_a_larger_alpha_accepts_what_a_smaller_one_did(values, mode, alpha, other):
    low, high = sorted((alpha, other))
    if slope_improves(values, mode, low):
        assert slope_improves(values, mode, high)


@given(st.lists(st.floats(allow_nan=True), max_size=8), st.randoms())
def test_window_best_is_the_best_number_wherever_nan_sits(values, rng):
    shuffled = list(values)
    rng.shuffle(shuffled)
    numbers = [v for v in values if not math.isnan(v)]
    for mode, start, no_better in (
        ("min", math.inf, lambda best, v: best <= v),
        ("max", -math.inf, lambda best, v: best >= v),
    ):
        best = window_best(shuffled, mode)
        assert window_best(values, mode) == best  # the order does not matter
        if numbers:
            assert best in numbers and all(no_better(best, v) for v in numbers)
        else:
            assert best == start
