"""Trend detectors for rule 2: a least-squares slope test and a moving best.

The slope test. A window holds the last n >= 3 judged values y at x = 0, 1, ...,
n - 1. The least-squares line has slope ``b = Sxy / Sxx``, with
``Sxx = sum((x - mean x)**2) = n (n**2 - 1) / 12`` and
``Sxy = sum((x - mean x) (y - mean y))``; its residuals leave ``SSR``. With no
trend and independent Gaussian noise, ``t = b / sqrt(SSR / ((n - 2) Sxx))``
follows Student's t with n - 2 degrees of freedom, so in min mode the window
improves when b < 0 and the one-sided p-value P(T <= t) is below alpha (max mode:
b > 0 and P(T >= t)) -- the test of ``scipy.stats.linregress(x, y,
alternative="less" | "greater")``. A perfect fit (SSR == 0) has p = 0; equal
values have b = 0, and NaN or an infinity makes scipy's p-value NaN: neither
improves. The values are first scaled by the power of two that brings the largest
into [0.5, 1): exact, so the decision is the same at 1e-300 as at 1e300, and no
square overflows. SSR is summed from the residuals, not as ``Syy - Sxy**2 / Sxx``,
which cancels for a good fit.

The t distribution. For t < 0, P(T <= t) = I_x(df/2, 1/2) / 2 with
x = df / (df + t**2), the regularized incomplete beta function, and
P(T <= -t) = 1 - P(T <= t): the tail itself is computed, so a tiny p-value keeps
its relative accuracy. I_x(a, b) is ``x**a (1-x)**b / (a B(a, b))`` times a
continued fraction (Numerical Recipes' ``betacf``) that converges fast for
x < (a + 1) / (a + b + 2); beyond, I_x(a, b) = 1 - I_{1-x}(b, a). Both x and 1 - x
come from q = t**2 / df, neither as 1 minus the other. 1 / B(a, 1/2) is
Gamma(a + 1/2) / (Gamma(a) sqrt(pi)), and ``exp(lgamma(a + 1/2) - lgamma(a))``
would lose ``lgamma(a)`` ulps (1e-11 at df = 10 000): the ratio comes from
Stirling's series instead, its large terms cancelled by hand. Against mpmath at
40 digits (tests/test_trend.py), over df = 1 to 10 000 and |t| up to 1e6, the
relative error is below 1.5e-14 + |ln p| * 2**-51 (2e-14 at p = 1e-5, 2.7e-13 at
1e-250, where x's rounding, times df / 2, dominates; scipy's error is as large).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

_EPSILON = 2.0**-52
_TINY = 1e-300  # Numerical Recipes' FPMIN: keeps a zero denominator from stopping Lentz
_MAX_TERMS = 10_000  # the fraction takes under 70 terms up to df = 10**6


def _gamma_half_ratio(a: float) -> float:
    """Gamma(a + 1/2) / Gamma(a) for a >= 1/2, to a few ulps."""
    scale = 1.0
    while a < 16.0:  # below 16 the series' five terms are not enough: lift a by 1 at a time
        # Gamma(a + 1/2) / Gamma(a) = Gamma(a + 3/2) / Gamma(a + 1) * a / (a + 1/2)
        scale *= a / (a + 0.5)
        a += 1.0

    def series(z: float) -> float:  # Stirling: lgamma(z) - ((z - 1/2) ln z - z + ln(2 pi) / 2)
        w = 1.0 / (z * z)
        return (1 / 12 + w * (-1 / 360 + w * (1 / 1260 + w * (-1 / 1680 + w / 1188)))) / z

    # lgamma(a + 1/2) - lgamma(a) = a log1p(1/(2a)) - 1/2 + ln(a)/2 + series difference.
    log_ratio = a * math.log1p(0.5 / a) - 0.5 + series(a + 0.5) - series(a)
    return scale * math.sqrt(a) * math.exp(log_ratio)


def _nonzero(value: float) -> float:
    return value if abs(value) >= _TINY else _TINY


def _beta_fraction(a: float, b: float, x: float, y: float) -> float:
    """The continued fraction of I_x(a, b), y = 1 - x: Numerical Recipes' betacf, rearranged.

    Lentz's recurrences are Numerical Recipes', but for large a and x near 1 each odd
    term is close to -1, and the textbook ``1 + term * D`` cancels three digits at
    df = 10 000. So 1 + term is written out, (P - Q x) / P with its numerator in the
    form whose two parts have one sign ((P - Q) + Q y, or P - Q x), and the even
    step's D and C are carried as offsets from 1.
    """

    def odd(m: int) -> tuple[float, float]:  # the odd term, and 1 + it without cancelling
        p_m, q_m = (a + 2 * m) * (a + 2 * m + 1), (a + m) * (a + b + m)  # term = -q_m x / p_m
        return -q_m * x / p_m, ((p_m - q_m) + q_m * y if p_m >= q_m else p_m - q_m * x) / p_m

    c, d = 1.0, 1.0 / _nonzero(odd(0)[1])
    fraction = d
    for m in range(1, _MAX_TERMS):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d_even = 1.0 / _nonzero(1.0 + even * d)
        c_offset = even / c  # C - 1 after the even step
        c_even = _nonzero(1.0 + c_offset)
        fraction *= d_even * c_even
        term, one_plus_term = odd(m)
        # 1 + term * D = (1 + term) + term * (D - 1), and D - 1 = -even * d * d_even;
        # 1 + term / C = (1 + term) - term * (C - 1) / C.
        d = 1.0 / _nonzero(one_plus_term - term * even * d * d_even)
        c = _nonzero(one_plus_term - term * c_offset / c_even)
        fraction *= d * c
        if abs(d * c - 1.0) <= _EPSILON:
            return fraction
    raise ArithmeticError(f"the incomplete beta fraction did not converge: a={a}, b={b}, x={x}")


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t distribution with `df` > 0 degrees of freedom.

    Accurate to about 1e-14 relative, in the tails too (see the module docstring):
    ``student_t_cdf(-t, df)`` is the upper tail P(T >= t), computed directly rather
    than as 1 - P(T <= t).

    Example:
        >>> student_t_cdf(0.0, 5)
        0.5
        >>> round(student_t_cdf(-1.0, 1), 15)  # Cauchy: 1/2 - atan(1)/pi
        0.25
        >>> f"{student_t_cdf(-40.0, 30):.12e}"  # scipy.stats.t.cdf: 6.863022597203e-28
        '6.863022597203e-28'
    """
    if math.isnan(t):
        return t
    a = 0.5 * df
    q = t * t / df
    if q == 0.0:
        return 0.5
    x, y = 1.0 / (1.0 + q), 1.0 / (1.0 + 1.0 / q)  # x + y = 1, each with its own precision
    # x**a: pow's error is a times x's rounding; exp(-a ln(1 + q))'s is a ln(1 + q) ulps.
    x_to_a = math.exp(-a * math.log1p(q)) if q < 1.0 else x**a
    front = _gamma_half_ratio(a) / math.sqrt(math.pi) * x_to_a * math.sqrt(y)
    if x < (a + 1.0) / (a + 2.5):
        tail = 0.5 * front * _beta_fraction(a, 0.5, x, y) / a
    else:
        tail = 0.5 - front * _beta_fraction(0.5, a, y, x)  # (1 - I_y(1/2, a)) / 2
    return tail if t < 0.0 else 1.0 - tail


def slope_improves(values: Sequence[float], mode: Literal["min", "max"], alpha: float) -> bool:
    """Whether the window's least-squares slope improves, one-sided t-test at level `alpha`.

    Improving means a slope below 0 in min mode (above 0 in max mode) whose
    one-sided p-value, with ``len(values) - 2`` degrees of freedom, is below
    `alpha`: the decision of ``scipy.stats.linregress``. See the module docstring.

    Raises:
        ValueError: fewer than 3 values (no degree of freedom left for the noise).

    Example:
        >>> slope_improves([5.0, 4.1, 4.0, 3.2, 3.1], "min", 0.05)
        True
        >>> slope_improves([5.0, 3.0, 4.0, 5.0, 3.0], "min", 0.05)
        False
        >>> slope_improves([3.0, 2.0, 1.0], "max", 0.05)  # a perfect fit, wrong way
        False
    """
    n = len(values)
    if n < 3:
        raise ValueError(f"the slope test needs at least 3 values, got {n}")
    if not all(map(math.isfinite, values)) or max(values) == min(values):
        return False
    exponent = math.frexp(max(map(abs, values)))[1]
    ys = [math.ldexp(v, -exponent) for v in values]
    y_mean = math.fsum(ys) / n
    x_mean = (n - 1) / 2  # x - x_mean is exact: an integer or a half
    sxx = n * (n * n - 1) / 12
    slope = math.fsum((x - x_mean) * (y - y_mean) for x, y in enumerate(ys)) / sxx
    if not (slope < 0.0 if mode == "min" else slope > 0.0):
        return False
    ssr = math.fsum((y - y_mean - slope * (x - x_mean)) ** 2 for x, y in enumerate(ys))
    if ssr == 0.0:
        return True  # a perfect fit the right way: p = 0
    t = slope / math.sqrt(ssr / ((n - 2) * sxx))
    return student_t_cdf(t if mode == "min" else -t, n - 2) < alpha


def window_best(values: Sequence[float], mode: Literal["min", "max"]) -> float:
    """The best of `values`, the reference rule 2 compares with under ``detector="window_best"``.

    +inf (min mode) or -inf (max mode) when `values` is empty, as the best is at the
    start. NaN is never the best (it never improves), whatever its position.

    Example:
        >>> window_best([3.0, float("nan"), 1.0, 2.0], "min")
        1.0
        >>> window_best([], "max")
        -inf
    """
    numbers = [v for v in values if v == v]
    if mode == "min":
        return min(numbers, default=math.inf)
    return max(numbers, default=-math.inf)
