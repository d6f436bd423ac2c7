"""Hypothesis strategies of hostile values, and the contract a refusal must keep.

``hostile()`` draws what a corrupt checkpoint, a hand-edited dict or a careless
caller passes: integers beyond a float or 64 bits, NaN and infinities, bools
(Python's and numpy's), strings with control characters, bytes, None, nested
containers, numpy arrays of several shapes and dtypes, and an object whose repr
is a hundred thousand characters. (An object whose own ``__float__``,
``__index__``, ``__eq__`` or ``__repr__`` raises is its author's bug, not input
a schedule defends against, and is not drawn.) The framework tests add a small
fixed set of torch tensors and jax arrays (XLA's compiler tires after many
hundreds of distinct small programs in one process).

``refused(call, field)`` runs a call that may refuse: a refusal must be a TypeError
or a ValueError whose message names the field, one printable line, shortened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import strategies as st

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy comes with every venv the suite runs in
    np = None  # type: ignore[assignment]

HUGE = 10**400  # too large for a float; repr() of 10**5000 raises
MESSAGE_LIMIT = 600


class LongRepr:
    """A repr of a hundred thousand characters and a newline: a message must shorten it."""

    def __repr__(self) -> str:
        return "x\n" * 50_000


def _arrays() -> st.SearchStrategy[Any]:
    if np is None:  # pragma: no cover
        return st.nothing()
    from hypothesis.extra import numpy as hnp

    dtypes = st.sampled_from(
        [np.float64, np.float32, np.int64, np.int8, np.bool_, np.complex128, np.uint64]
    )
    shapes = st.sampled_from([(), (1,), (2,), (2, 2), (0,), (1, 1)])
    return hnp.arrays(dtypes, shapes) | st.sampled_from(
        [np.float64("nan"), np.True_, np.str_("min"), np.array(["a", "b"]), np.complex64(1)]
    )


_scalars = st.one_of(
    st.integers(min_value=2**63, max_value=2**2000),
    st.integers(min_value=-(2**2000), max_value=-(2**63)),
    st.sampled_from([HUGE, -HUGE, 2**63, 2**1024, -1, 0, 1]),
    st.floats(),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 5e-324]),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["nan", "inf", "1e400", "min\n", "\x00", "max", "rel", "abs"]),
    st.binary(max_size=8),
    st.none(),
    st.complex_numbers(max_magnitude=10),
    st.builds(LongRepr),
)


def hostile() -> st.SearchStrategy[Any]:
    """Any hostile value: scalars, arrays, and containers nesting them."""
    leaves = _scalars | _arrays()
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.tuples(inner)
            | st.dictionaries(st.text(max_size=3), inner, max_size=2)
            | st.frozensets(st.integers(), max_size=2)
        ),
        max_leaves=4,
    )


def check_message(exc: BaseException, field: str) -> None:
    """A refusal: TypeError / ValueError, naming `field`, one printable line, shortened."""
    assert isinstance(exc, (TypeError, ValueError)), repr(exc)
    message = str(exc)
    assert field in message, (field, message)
    assert message.isprintable(), message
    assert len(message) <= MESSAGE_LIMIT, message[:200]


def refused(call: Callable[[], Any], field: str) -> BaseException | None:
    """Run `call`; if it refuses, check the refusal (:func:`check_message`) and return it.

    Any other exception (numpy's "truth value of an array is ambiguous" without
    the field, say) fails the test.
    """
    try:
        call()
    except (TypeError, ValueError) as exc:
        check_message(exc, field)
        return exc
    except Exception as exc:  # pragma: no cover - the contract's failure
        pytest.fail(f"{field}: {type(exc).__name__} instead of TypeError/ValueError: {exc}")
    return None


def strict_json_round_trip(d: dict[str, Any]) -> dict[str, Any]:
    """`d` through strict JSON and back: what a checkpoint on disk gives."""
    result: dict[str, Any] = json.loads(json.dumps(d, allow_nan=False))
    return result
