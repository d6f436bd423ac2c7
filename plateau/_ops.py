"""The few operations the rules apply to values, so one rule code serves floats and arrays.

plateau._core writes rules 1-5 once (see "One rule code" in its theory of
operation) over an :class:`Ops`: :data:`FLOATS` here runs them on Python floats,
the capturable torch scheduler on tensors and the in-graph optax transformation
on jax arrays. Like the core, it imports no framework (only the standard library
and plateau._state, for Decision).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from ._state import Decision

__all__ = ["FLOATS", "Ops"]

T = TypeVar("T")


class Ops(Protocol):
    """The few operations the rules apply to values, so that one rule code serves all.

    :data:`FLOATS` does them on Python floats and tuples of them (a select is an
    ``if``); the device adapters do them on torch tensors and jax arrays (a select
    is ``where``). See "One rule code" in plateau._core.
    """

    no_average: Any
    """What a state holds for "no average yet" (``smoothed``): None on floats, else NaN."""

    def select(self, condition: Any, if_true: Any, if_false: Any) -> Any:
        """`if_true` where `condition` holds, else `if_false`; tuples pair up item by item."""

    def cond(
        self,
        condition: Any,
        if_true: Callable[..., T],
        if_false: Callable[..., T],
        *operands: Any,
    ) -> T:
        """``select(condition, if_true(*operands), if_false(*operands))``, as jax.lax.cond.

        On floats only the branch taken runs.
        """

    def maximum(self, a: Any, b: Any) -> Any:
        """The larger of `a` and `b`, item by item."""

    def multiply(self, a: Any, b: Any) -> Any:
        """``a * b``, rounded on its own before a sum takes it.

        A compiler (XLA does) may fuse a product into the addition that follows,
        a multiply-add that rounds once where Python rounds twice.
        """

    def divide(self, a: Any, b: Any) -> Any:
        """``a / b``, correctly rounded: never ``a * (1 / b)``, which rounds twice.

        XLA makes that rewrite for a constant `b`, or one shared by a vmapped batch.
        """

    def isfinite(self, value: Any) -> Any:
        """Whether `value` is neither infinite nor NaN."""

    def each(self, function: Callable[..., Any], *columns: Any) -> Any:
        """`function` applied per lr: mapped over tuples of floats, called once on arrays."""

    def any_differ(self, a: Any, b: Any) -> Any:
        """Whether any lr in `a` differs from its counterpart in `b`."""

    def decision(self, table: tuple[Decision, ...], index: Any = 0) -> Any:
        """``table[index]``: the Decision on floats, its position in Decision on a device."""


def _select(condition: Any, if_true: Any, if_false: Any) -> Any:
    return if_true if condition else if_false


def _cond(
    condition: Any, if_true: Callable[..., T], if_false: Callable[..., T], *operands: Any
) -> T:
    return (if_true if condition else if_false)(*operands)


def _each(function: Callable[..., Any], *columns: Any) -> Any:
    return tuple(map(function, *columns))


def _decision(table: tuple[Decision, ...], index: Any = 0) -> Any:
    return table[index]


class _FloatOps:
    """:class:`Ops` on Python floats: ``if``, ``max``, ``math.isfinite``, ``!=``, ``*``, ``/``."""

    def __init__(self) -> None:  # plain functions, called without binding
        self.no_average = None
        self.select, self.cond, self.each, self.decision = _select, _cond, _each, _decision
        self.maximum, self.isfinite, self.any_differ = max, math.isfinite, operator.ne
        self.multiply, self.divide = operator.mul, operator.truediv


FLOATS: Ops = _FloatOps()
"""The rules' operations on Python floats, which :func:`step` runs them with."""
