"""Drive the learning rate of an ``optax.inject_hyperparams`` optimizer from the host.

The plateau decision is made by :func:`plateau.step` on the host, once per epoch,
between jitted training steps. This module only finds the injected learning
rates inside an optax state, reads them, and writes new ones back without
touching their dtype, shape or weak type, so a jitted update is never retraced.

Where the lrs are found: every ``InjectStatefulHyperparamsState`` (or the older
``InjectHyperparamsState``) whose ``hyperparams`` has a ``"learning_rate"``,
anywhere in the state: inside ``optax.chain``, ``optax.named_chain``,
``optax.multi_transform`` / ``optax.partition``, ``optax.masked`` and the like.
The order is ``jax.tree_util``'s flattening order, depth first (``named_chain``
in insertion order, ``multi_transform``'s groups by sorted label; an injected
state before those nested in its ``inner_state``). :func:`lr_paths` names each.

The optimizer owns the learning rates (the core's ownership rule): :func:`step`
reads them from `opt_state` (one device-to-host transfer), so an lr set by hand
with :func:`set_lrs` between epochs is the one the schedule cuts, then writes
back the ones that changed. Each is stored in its array's dtype (float32 by
default, so 1e-3 reads as 0.0010000000474974513), and the returned state records
the lrs as stored.

Example:
    >>> import jax.numpy as jnp, optax, plateau
    >>> from plateau.adapters import optax as plateau_optax
    >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
    >>> opt_state = tx.init({"w": jnp.zeros(3)})
    >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
    >>> state = plateau_optax.init(opt_state, config)
    >>> for val_loss in [1.0, 2.0]:  # one validation loss per epoch
    ...     state, opt_state = plateau_optax.step(state, val_loss, config, opt_state)
    >>> plateau_optax.get_lrs(opt_state), state.decision.value
    ((0.25,), 'reduced')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import attrs

import plateau
from plateau._checks import check_non_negative, got
from plateau._core import _as_tuple, changed

try:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
except ImportError as exc:  # pragma: no cover - exercised only without jax/optax
    raise ModuleNotFoundError(
        "plateau.adapters.optax requires optax; install 'plateau-lr[optax]'", name="optax"
    ) from exc

__all__ = ["get_lrs", "init", "lr_paths", "set_lrs", "step"]

_LR = "learning_rate"
_INJECTED = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)
_NO_LR = (
    "holds no injectable learning rate; wrap the optimizer with optax.inject_hyperparams, "
    "e.g. optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), and pass its state"
)


def _is_injected(node: object) -> bool:
    return isinstance(node, _INJECTED)


def _nodes(tree: Any) -> list[Any]:
    """Every injected state holding a learning rate, in the module's order."""
    found = []
    for leaf in jax.tree_util.tree_leaves(tree, is_leaf=_is_injected):
        if _is_injected(leaf):
            if _LR in leaf.hyperparams:
                found.append(leaf)
            found += _nodes(leaf.inner_state)
    return found


def lr_paths(opt_state: Any) -> tuple[str, ...]:
    """Where each lr of :func:`get_lrs` lives in `opt_state`, as ``jax.tree_util.keystr`` paths.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.chain(optax.clip(1.0), optax.inject_hyperparams(optax.sgd)(0.1))
        >>> lr_paths(tx.init(jnp.zeros(2)))
        ('[1]',)
    """

    def walk(tree: Any, prefix: str) -> list[str]:
        paths = []
        flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_injected)
        for key_path, leaf in flat:
            if _is_injected(leaf):
                path = prefix + jax.tree_util.keystr(key_path)
                paths += [path] if _LR in leaf.hyperparams else []
                paths += walk(leaf.inner_state, path + ".inner_state")
        return paths

    return tuple(walk(opt_state, ""))


def _where(opt_state: Any, index: int) -> str:
    return "opt_state" + lr_paths(opt_state)[index]


# An epoch's step at 100 lrs must cost about one jitted update, so the search for
# the lrs runs once per optimizer structure: each treedef maps to the positions of
# its settable lrs among the leaves (or to why they cannot be set).
_LOCATED: dict[Any, tuple[int, ...] | TypeError] = {}


def _locate(opt_state: Any) -> tuple[list[Any], Any, tuple[int, ...]]:
    """The leaves and treedef of `opt_state` and where its settable lrs are among them.

    Raises:
        TypeError: no injected lr, or one driven by a schedule or of an integer dtype.
    """
    leaves, treedef = jax.tree_util.tree_flatten(opt_state)
    found = _LOCATED.get(treedef)
    if found is None:
        found = _search(opt_state)
        if len(_LOCATED) > 64:  # many structures: a loop that rebuilds its optimizer
            _LOCATED.clear()
        _LOCATED[treedef] = found
    if isinstance(found, TypeError):
        raise found
    for i, index in enumerate(found):
        dtype = getattr(leaves[index], "dtype", None)
        if dtype is not None and not _float_dtype(dtype):
            raise TypeError(
                f"the learning rate at {_where(opt_state, i)} has dtype {dtype}, which "
                "cannot hold a reduced lr; inject it as a float"
            )
    return leaves, treedef, found


def _search(opt_state: Any) -> tuple[int, ...] | TypeError:
    nodes, paths = _nodes(opt_state), lr_paths(opt_state)
    if not nodes:
        return TypeError(f"opt_state ({type(opt_state).__name__}) {_NO_LR}")
    for node, path in zip(nodes, paths, strict=True):
        if _LR in getattr(node, "hyperparams_states", {}):
            return TypeError(
                f"the learning rate at opt_state{path} is driven by a schedule, which "
                "overwrites it at every update; pass a constant learning_rate to "
                "optax.inject_hyperparams so plateau can set it"
            )
    leaf_paths = [
        jax.tree_util.keystr(key_path)
        for key_path, _ in jax.tree_util.tree_flatten_with_path(opt_state)[0]
    ]
    found = []
    for path in paths:
        # The lr is one leaf, at the hyperparameter itself or, when a container such as
        # flax nnx's OptArray holds it, inside it: the container is then rebuilt around
        # the new value, so its type survives a cut and nnx.jit does not retrace.
        lr_path = f"{path}.hyperparams['{_LR}']"
        inside = [
            i
            for i, leaf_path in enumerate(leaf_paths)
            if leaf_path == lr_path or leaf_path.startswith((lr_path + ".", lr_path + "["))
        ]
        if len(inside) != 1:
            return TypeError(
                f"the learning rate at opt_state{path} holds {len(inside)} arrays; "
                "inject a single number"
            )
        found.append(inside[0])
    return tuple(found)


_FLOAT_DTYPES: dict[Any, bool] = {}


def _float_dtype(dtype: Any) -> bool:
    if dtype not in _FLOAT_DTYPES:
        _FLOAT_DTYPES[dtype] = bool(jnp.issubdtype(dtype, jnp.floating))
    return _FLOAT_DTYPES[dtype]


def get_lrs(opt_state: Any) -> tuple[float, ...]:
    """The injected learning rates of `opt_state` as Python floats, in the module's order.

    Raises:
        TypeError: `opt_state` holds no injected ``learning_rate``.
        ValueError: an injected learning rate holds more than one number.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.5)
        >>> get_lrs(tx.init(jnp.zeros(2)))
        (0.5,)
    """
    nodes = _nodes(opt_state)
    if not nodes:
        raise TypeError(f"opt_state ({type(opt_state).__name__}) {_NO_LR}")
    return _read(opt_state, [node.hyperparams[_LR] for node in nodes])


def _read(opt_state: Any, stored: list[Any]) -> tuple[float, ...]:
    lrs = []
    # np.asarray per array: a tenth of jax.device_get's cost on a list of scalars.
    for i, value in enumerate(map(np.asarray, stored)):
        if getattr(value, "size", 1) != 1:
            raise ValueError(
                f"the learning rate at {_where(opt_state, i)} must be a single number, "
                f"got shape {value.shape}"
            )
        lrs.append(float(value.reshape(()) if hasattr(value, "reshape") else value))
    return tuple(lrs)


def set_lrs(opt_state: Any, lrs: SupportsFloat | Sequence[SupportsFloat]) -> Any:
    """A new `opt_state` holding `lrs`; `opt_state` itself is left unchanged.

    Each lr keeps its dtype, shape and weak type (``jax.lax.full_like``), so a
    jitted update that took the old state is not retraced for the new one; every
    other leaf is shared, not copied.

    Args:
        opt_state: A state holding injected learning rates.
        lrs: One lr per injected learning rate, in :func:`get_lrs`'s order; a
            single number is accepted when there is exactly one.

    Raises:
        TypeError: no injected ``learning_rate`` in `opt_state`, one driven by a
            schedule or of an integer dtype (it cannot be set), or an lr that is not
            a real number.
        ValueError: a negative or non-finite lr, or a count different from
            `opt_state`'s.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> get_lrs(set_lrs(tx.init(jnp.zeros(2)), [0.25]))
        (0.25,)
    """
    items = _as_tuple(lrs)  # one lr or a sequence, read as plateau.init reads them
    new = [check_non_negative(f"lrs[{i}]", lr) for i, lr in enumerate(items)]
    leaves, treedef, where = _locate(opt_state)
    if len(new) != len(where):
        raise ValueError(
            f"'lrs' has {len(new)} values but opt_state holds {len(where)} injected "
            f"learning rates (at {', '.join('opt_state' + p for p in lr_paths(opt_state))})"
        )
    return _write(leaves, treedef, where, dict(enumerate(new)))


def _write(leaves: list[Any], treedef: Any, where: tuple[int, ...], new: dict[int, float]) -> Any:
    """The state with lr i set to ``new[i]``, each in its old leaf's dtype, shape, weak type."""
    leaves = list(leaves)
    arrays = [(where[i], lr) for i, lr in new.items() if hasattr(leaves[where[i]], "dtype")]
    for i, lr in new.items():
        if not hasattr(leaves[where[i]], "dtype"):
            leaves[where[i]] = lr  # a Python float stays one
    if arrays:
        filled = _fill([leaves[index] for index, _ in arrays], [lr for _, lr in arrays])
        for (index, _), value in zip(arrays, filled, strict=True):
            leaves[index] = value
    return jax.tree_util.tree_unflatten(treedef, leaves)


@jax.jit  # type: ignore[untyped-decorator, unused-ignore]
def _fill(olds: list[Any], lrs: list[float]) -> list[Any]:
    """Arrays like `olds` (dtype, shape, weak type) holding `lrs`: one dispatch for all."""
    return [jax.lax.full_like(old, lr) for old, lr in zip(olds, lrs, strict=True)]


def init(opt_state: Any, config: plateau.PlateauConfig) -> plateau.PlateauState:
    """The plateau state starting from `opt_state`'s learning rates, as stored.

    Raises:
        TypeError: no settable injected ``learning_rate`` in `opt_state` (see
            :func:`set_lrs`), or `config` is not a PlateauConfig.
        ValueError: a per-lr ``min_lr`` whose length differs from the lr count.

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> init(tx.init(jnp.zeros(2)), plateau.PlateauConfig()).lrs
        (0.5,)
    """
    leaves, _, where = _locate(opt_state)
    return plateau.init(_read(opt_state, [leaves[i] for i in where]), config)


def step(
    plateau_state: plateau.PlateauState,
    metric: SupportsFloat,
    config: plateau.PlateauConfig,
    opt_state: Any,
) -> tuple[plateau.PlateauState, Any]:
    """One epoch: read `opt_state`'s lrs, :func:`plateau.step`, write back the changed ones.

    Call it on the host between jitted steps, typically with the validation loss.
    `opt_state` is returned as is unless an lr changed; then it is a new state
    (see :func:`set_lrs`).

    Args:
        plateau_state: From :func:`init` or the previous :func:`step`.
        metric: A real number or a one-element jax array (read once to the host).
        config: The schedule's config.
        opt_state: The optimizer state the lrs live in.

    Raises:
        TypeError: `plateau_state` is not a PlateauState, `metric` is a tracer
            (``step`` was called inside ``jax.jit``), no settable injected
            ``learning_rate`` in `opt_state`, or anything :func:`plateau.step` raises.
        ValueError: anything :func:`plateau.step` raises (e.g. a per-lr ``min_lr``
            that does not fit the lrs `opt_state` holds).

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> opt_state = tx.init(jnp.zeros(2))
        >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
        >>> state = init(opt_state, config)
        >>> state, opt_state = step(state, jnp.float32(1.0), config, opt_state)
        >>> state, opt_state = step(state, jnp.float32(1.5), config, opt_state)
        >>> get_lrs(opt_state)
        (0.25,)
    """
    if not isinstance(plateau_state, plateau.PlateauState):
        raise TypeError(f"'plateau_state' must be a plateau.PlateauState, got {got(plateau_state)}")
    if isinstance(metric, jax.core.Tracer):
        raise TypeError(
            "'metric' is a jax tracer: plateau_optax.step runs on the host between jitted "
            "steps; return the metric from the jitted function and pass the result"
        )
    leaves, treedef, where = _locate(opt_state)
    read = _read(opt_state, [leaves[i] for i in where])
    new_state, lrs = plateau.step(plateau_state, metric, config, read)
    writes = dict(changed(read, lrs))
    if not writes:
        return new_state, opt_state
    # Record the lrs as the arrays store them (rounded to their dtype), computed on the host.
    stored = list(lrs)
    for i, lr in writes.items():
        old = leaves[where[i]]
        stored[i] = float(np.asarray(lr, dtype=old.dtype)) if hasattr(old, "dtype") else lr
    return attrs.evolve(new_state, lrs=tuple(stored)), _write(leaves, treedef, where, writes)
