"""PlateauState as a JAX pytree, so Orbax saves it inside a train state's checkpoint tree.

Importing this module (the optax adapter does) registers the class; ``import plateau``
never does. The leaf set is fixed -- one leaf per field, in the field order, whatever
the state -- because Orbax restores into the structure of a freshly built run's
template, and a structure that changed with the state (a warmup ended, a window
filled) would restore the template's values. So a field that may be None or has a
variable length is one leaf that says which: ``smoothed`` is NaN for None (a set one
is finite); ``lrs`` is a float64 array; ``base_lrs`` and ``window`` are float64
arrays of their length then their values (Orbax saves no empty array), a length 0
meaning None for ``base_lrs`` (which is never empty); ``decision`` is its index in
:class:`Decision`. Orbax restores Python numbers and numpy arrays exactly, each
array in its saved shape, whatever the template's.

A state is rebuilt, checked field by field, from host numbers only; other leaves
(Orbax's ``ShapeDtypeStruct`` placeholders, jit tracers, device arrays) are kept
as they came, in a state only flattening reads, so a tree holding a PlateauState
can be made abstract, restored or traced.

Example:
    >>> import jax, plateau
    >>> state = plateau.PlateauState(lrs=[0.1], best=0.5, window=[0.7, 0.5])
    >>> leaves, treedef = jax.tree.flatten(state)
    >>> len(leaves), jax.tree.unflatten(treedef, leaves) == state
    (13, True)
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import jax
import numpy as np

from plateau import Decision, PlateauState

_DECISIONS = list(Decision)  # saved as an index: a new Decision goes last, or old ones move
_FIELDS = [field.name for field in attrs.fields(PlateauState)]
_HOST = (int, float, np.ndarray, np.generic)  # numbers as Orbax restores them


def _counted(values: tuple[float, ...]) -> Any:
    return np.asarray((len(values), *values), np.float64)


def _uncounted(leaf: Any) -> list[float]:
    """The values of a :func:`_counted` array (their count first)."""
    counted: list[float] = np.asarray(leaf).tolist()
    return counted[1 : 1 + int(counted[0])]


def _flatten(state: PlateauState) -> tuple[list[tuple[Any, Any]], None]:
    """One leaf per field, by name: a real state's encoded, a placeholder's as stored."""
    if isinstance(state.decision, Decision):
        leaves = {
            **attrs.asdict(state, recurse=False),
            "lrs": np.asarray(state.lrs, np.float64),
            "decision": _DECISIONS.index(state.decision),
            "smoothed": math.nan if state.smoothed is None else state.smoothed,
            "base_lrs": _counted(state.base_lrs or ()),
            "window": _counted(state.window),
        }
    else:
        leaves = attrs.asdict(state, recurse=False)
    return [(jax.tree_util.GetAttrKey(name), leaves[name]) for name in _FIELDS], None


def _unflatten(_: None, leaves: Any) -> PlateauState:
    """The state of `leaves` (in field order), checked; a placeholder if any is not a number."""
    fields = dict(zip(_FIELDS, leaves, strict=True))
    if not all(isinstance(leaf, _HOST) for leaf in fields.values()):
        placeholder: PlateauState = object.__new__(PlateauState)
        placeholder.__attrs_init__(**fields)
        return placeholder
    decision, base_lrs = int(fields["decision"]), _uncounted(fields["base_lrs"])
    if not 0 <= decision < len(_DECISIONS):
        raise ValueError(
            f"'decision' must index a Decision (0 to {len(_DECISIONS) - 1}), got {decision}"
        )
    return PlateauState(
        **{
            **fields,
            "lrs": np.asarray(fields["lrs"]).tolist(),
            "decision": _DECISIONS[decision],
            "smoothed": None if math.isnan(fields["smoothed"]) else fields["smoothed"],
            "base_lrs": base_lrs or None,
            "window": _uncounted(fields["window"]),
        }
    )


jax.tree_util.register_pytree_with_keys(PlateauState, _flatten, _unflatten)
