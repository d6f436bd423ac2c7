"""Drive the learning rate of an ``optax.inject_hyperparams`` optimizer from the host.

The plateau decision is made by :func:`plateau.step` on the host, once per epoch,
between jitted training steps. This module only finds the injected learning
rates inside an optax state, reads them, and writes new ones back without
touching their dtype, shape or weak type, so a jitted update is never retraced.

Where the lrs are found: every ``InjectStatefulHyperparamsState`` (or the older
``InjectHyperparamsState``) whose ``hyperparams`` has a ``"learning_rate"``,
anywhere in the state: inside ``optax.chain`` (a tuple), ``optax.named_chain``
(an OrderedDict), ``optax.multi_transform`` / ``optax.partition`` (one per
label), ``optax.masked`` and the like. The order is ``jax.tree_util``'s
flattening order, depth first: tuples in order, ``named_chain`` in its insertion
order, plain dicts (``multi_transform``'s groups) by sorted label; an injected
state comes before any injected state nested in its ``inner_state``.
:func:`lr_paths` names each one.

The :class:`plateau.PlateauState` is the source of truth: :func:`step` writes its
lrs into the optimizer state when they change. The state's lrs start from the
values stored in the optimizer (float32 by default, so 1e-3 reads as
0.0010000000474974513), and each is written back rounded to its array's dtype.
:func:`step` does check, at every call, that the optimizer state holds as many
settable lrs as the plateau state (one traversal of its structure; no values are
read from the device), so an optimizer rebuilt with another layout fails at the
epoch it is passed in, not at the first reduction.

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

from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat

import plateau
from plateau._checks import check_non_negative

try:
    import jax
    import optax
except ImportError as exc:  # pragma: no cover - exercised only without jax/optax
    raise ModuleNotFoundError(
        "plateau.adapters.optax requires optax; install 'plateau[optax]'", name="optax"
    ) from exc

__all__ = ["get_lrs", "init", "lr_paths", "set_lrs", "step"]

_LR = "learning_rate"
_INJECTED = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)

# Called with (path, old lr) for each lr in the documented order; returns the lr to store.
_Visit = Callable[[str, Any], Any]


def _is_injected(node: object) -> bool:
    return isinstance(node, _INJECTED)


def _rebuild(tree: Any, visit: _Visit, writing: bool, prefix: str = "") -> Any:
    """`tree` with each injected lr replaced by ``visit(path, lr)``; `tree` is not touched.

    Readers and writers share this one traversal, so both see the same order.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_injected)
    new_leaves = []
    for key_path, leaf in leaves:
        if _is_injected(leaf):
            path = prefix + jax.tree_util.keystr(key_path)
            hyperparams = dict(leaf.hyperparams)
            if _LR in hyperparams:
                if writing and _LR in getattr(leaf, "hyperparams_states", {}):
                    raise TypeError(
                        f"the learning rate at opt_state{path} is driven by "
                        "a schedule, which overwrites it at every update; pass a constant "
                        "learning_rate to optax.inject_hyperparams so plateau can set it"
                    )
                hyperparams[_LR] = visit(path, hyperparams[_LR])
            inner = _rebuild(leaf.inner_state, visit, writing, f"{path}.inner_state")
            leaf = leaf._replace(hyperparams=hyperparams, inner_state=inner)
        new_leaves.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, new_leaves)


def _collect(opt_state: Any, writing: bool) -> tuple[list[str], list[Any]]:
    """The path and stored value of every injected lr, or the TypeError saying how to get one."""
    paths: list[str] = []
    values: list[Any] = []

    def record(path: str, lr: Any) -> Any:
        paths.append(path)
        values.append(lr)
        return lr

    _rebuild(opt_state, record, writing)
    if not values:
        raise TypeError(
            f"opt_state ({type(opt_state).__name__}) holds no injectable learning rate; "
            "wrap the optimizer with optax.inject_hyperparams, e.g. "
            "optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), and pass its state"
        )
    return paths, values


def _check_count(name: str, count: int, opt_state: Any) -> None:
    """Raise the ValueError naming both counts unless `opt_state` holds `count` settable lrs."""
    paths, _ = _collect(opt_state, writing=True)
    if count != len(paths):
        raise ValueError(
            f"{name} has {count} values but opt_state holds {len(paths)} injected "
            f"learning rates (at {', '.join('opt_state' + p for p in paths)})"
        )


def lr_paths(opt_state: Any) -> tuple[str, ...]:
    """Where each lr of :func:`get_lrs` lives in `opt_state`, as ``jax.tree_util.keystr`` paths.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.chain(optax.clip(1.0), optax.inject_hyperparams(optax.sgd)(0.1))
        >>> lr_paths(tx.init(jnp.zeros(2)))
        ('[1]',)
    """
    return tuple(_collect(opt_state, writing=False)[0])


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
    paths, values = _collect(opt_state, writing=False)
    lrs = []
    # One device-to-host transfer for all of them.
    for path, value in zip(paths, jax.device_get(values), strict=True):
        if getattr(value, "size", 1) != 1:
            raise ValueError(
                f"the learning rate at opt_state{path} must be a single number, "
                f"got shape {value.shape}"
            )
        lrs.append(float(value.reshape(()) if hasattr(value, "reshape") else value))
    return tuple(lrs)


def set_lrs(opt_state: Any, lrs: SupportsFloat | Sequence[SupportsFloat]) -> Any:
    """A new `opt_state` holding `lrs`; `opt_state` itself is left unchanged.

    Each lr keeps its dtype, shape and weak type (``jax.lax.full_like``), so a
    jitted update that took the old state is not retraced for the new one.

    Args:
        opt_state: A state holding injected learning rates.
        lrs: One lr per injected learning rate, in :func:`get_lrs`'s order; a
            single number is accepted when there is exactly one.

    Raises:
        TypeError: no injected ``learning_rate`` in `opt_state`, one driven by a
            schedule (it cannot be set), or an lr that is not a real number.
        ValueError: a negative or non-finite lr, or a count different from
            `opt_state`'s.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> get_lrs(set_lrs(tx.init(jnp.zeros(2)), [0.25]))
        (0.25,)
    """
    items: Sequence[object] = (
        lrs if isinstance(lrs, Sequence) and not isinstance(lrs, (str, bytes)) else (lrs,)
    )
    new = [check_non_negative(f"lrs[{i}]", lr) for i, lr in enumerate(items)]
    _check_count("'lrs'", len(new), opt_state)
    values = iter(new)

    def write(path: str, old: Any) -> Any:
        lr = next(values)
        return jax.lax.full_like(old, lr) if hasattr(old, "dtype") else lr

    return _rebuild(opt_state, write, writing=True)


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
    _collect(opt_state, writing=True)  # fail now, not at the first reduction
    return plateau.init(get_lrs(opt_state), config)


def step(
    plateau_state: plateau.PlateauState,
    metric: SupportsFloat,
    config: plateau.PlateauConfig,
    opt_state: Any,
) -> tuple[plateau.PlateauState, Any]:
    """One epoch of the schedule: the new plateau state and the optimizer state to train on.

    Call it on the host between jitted steps, typically with the validation loss.
    `opt_state` is returned as is unless an lr changed; then it is a new state
    made by :func:`set_lrs`.

    Args:
        plateau_state: From :func:`init` or the previous :func:`step`.
        metric: A real number or a one-element jax array (read once to the host).
        config: The schedule's config.
        opt_state: The optimizer state the lrs live in.

    Raises:
        TypeError: `metric` is a tracer (``step`` was called inside ``jax.jit``), no
            settable injected ``learning_rate`` in `opt_state`, or anything
            :func:`plateau.step` raises.
        ValueError: `opt_state` holds a different number of injected learning rates
            than `plateau_state` (checked at every call, before anything is computed),
            or anything :func:`plateau.step` raises.

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
    if isinstance(metric, jax.core.Tracer):
        raise TypeError(
            "'metric' is a jax tracer: plateau_optax.step runs on the host between jitted "
            "steps; return the metric from the jitted function and pass the result"
        )
    # Only the count and settability: the plateau state, not opt_state, holds the lrs'
    # values, and reading them would cost a device-to-host transfer per epoch.
    _check_count("'plateau_state.lrs'", len(plateau_state.lrs), opt_state)
    new_state, lrs = plateau.step(plateau_state, metric, config)
    if lrs != plateau_state.lrs:
        opt_state = set_lrs(opt_state, lrs)
    return new_state, opt_state
