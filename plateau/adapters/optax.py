"""Drive the learning rate of an optax optimizer from the host.

The plateau decision is made by :func:`plateau.step` on the host, once per epoch,
between jitted training steps. This module only finds the learning rates inside
an optax state, reads them, and writes new ones back without touching their
dtype, shape or weak type, so a jitted update is never retraced.

What the plateau drives, its "lrs", are one of two kinds:

- the ``learning_rate`` of every ``InjectStatefulHyperparamsState`` (or the
  older ``InjectHyperparamsState``), a constant lr injected with
  ``optax.inject_hyperparams``;
- the scale of every :func:`scale_by_plateau` state, chained after the
  optimizer, ``optax.chain(optax.adam(schedule), scale_by_plateau())``: a
  plateau over any optax schedule. The state's lrs are then the *scale*
  (start 1.0, reference 1.0; ``min_lr`` is optax's ``min_scale``) and the
  effective lr is ``schedule(count) * scale``, the core's
  :func:`plateau.scale_base` rule at reference 1.0 (see "Base schedules" in
  ``plateau._core``), applied in the graph to the updates.

An opt_state holding both a plateau scale and a constant injected lr is refused
as ambiguous (both would be cut); an injected lr driven by a schedule cannot be
set (optax recomputes it at every update) and is left to its schedule when a
plateau scale is present.

They are found anywhere in the state: inside ``optax.chain``,
``optax.named_chain``, ``optax.multi_transform`` / ``optax.partition``,
``optax.masked`` and the like. The order is ``jax.tree_util``'s flattening order,
depth first (``named_chain`` in insertion order, ``multi_transform``'s groups by
sorted label; an injected state before those nested in its ``inner_state``).
:func:`lr_paths` names each.

The optimizer owns the learning rates (the core's ownership rule): :func:`step`
reads them from `opt_state` (one device-to-host transfer), so an lr set by hand
with :func:`set_lrs` between epochs is the one the schedule cuts, then writes
back the ones that changed. Each is stored in its array's dtype (float32 by
default, so 1e-3 reads as 0.0010000000474974513), and the returned state records
the lrs as stored.

Start with :func:`start`, which returns ``(plateau_state, opt_state)``: with a
warmup (``config.warmup_epochs``) the first epoch trains at ``lr *
warmup_start_factor``, so that lr must be in `opt_state` before the first update.
:func:`init` returns the plateau state alone, and refuses a warmup config.

Example:
    >>> import jax.numpy as jnp, optax, plateau
    >>> from plateau.adapters import optax as plateau_optax
    >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
    >>> opt_state = tx.init({"w": jnp.zeros(3)})
    >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
    >>> state, opt_state = plateau_optax.start(opt_state, config)
    >>> for val_loss in [1.0, 2.0]:  # one validation loss per epoch
    ...     state, opt_state = plateau_optax.step(state, val_loss, config, opt_state)
    >>> plateau_optax.get_lrs(opt_state), state.decision.value
    ((0.25,), 'reduced')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, SupportsFloat

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

__all__ = [
    "ScaleByPlateauState",
    "get_lrs",
    "init",
    "lr_paths",
    "scale_by_plateau",
    "set_lrs",
    "start",
    "step",
]

_LR = "learning_rate"
_INJECTED = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)
_SCALE_BY_PLATEAU = (
    "chain plateau_optax.scale_by_plateau() after the optimizer, "
    "e.g. optax.chain(optax.adam(schedule), plateau_optax.scale_by_plateau())"
)
_NO_LR = (
    "holds no injectable learning rate and no plateau scale; wrap the optimizer with "
    "optax.inject_hyperparams, e.g. optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), "
    f"or, to keep a schedule, {_SCALE_BY_PLATEAU}; and pass its state"
)


class ScaleByPlateauState(NamedTuple):
    """The state of :func:`scale_by_plateau`: the plateau's scale on the updates."""

    scale: Any
    """A 0-d float array (held in flax nnx's own container inside an nnx.Optimizer)."""


def scale_by_plateau() -> optax.GradientTransformationExtraArgs:
    """Multiply the updates by a scale that :func:`step` sets from the host.

    A plateau over any optax schedule: chain it after the optimizer, as
    ``optax.contrib.reduce_on_plateau`` is chained, and the effective lr is
    ``schedule(count) * scale``. The scale is what :func:`get_lrs` reads and
    :func:`step` cuts; it starts at 1.0, so until the first cut the updates are the
    schedule's exactly. It is an array leaf of the state in the parameters' lowest
    float dtype (reduce_on_plateau's choice, so the two multiply alike), and the
    update is ``scale * update`` for each leaf, traced once however often it is cut.

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> schedule = optax.cosine_decay_schedule(0.1, decay_steps=100)
        >>> tx = optax.chain(optax.sgd(schedule), scale_by_plateau())
        >>> opt_state = tx.init({"w": jnp.zeros(2)})
        >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
        >>> state, opt_state = start(opt_state, config)
        >>> state, opt_state = step(state, 1.0, config, opt_state)
        >>> state, opt_state = step(state, 2.0, config, opt_state)
        >>> get_lrs(opt_state)  # the scale
        (0.5,)
        >>> updates, _ = tx.update({"w": jnp.ones(2)}, opt_state)
        >>> updates["w"].tolist()  # -schedule(0) * 1.0 * scale
        [-0.05000000074505806, -0.05000000074505806]
    """

    def init_fn(params: Any) -> ScaleByPlateauState:
        floats = [leaf for leaf in jax.tree.leaves(params) if _float_dtype(jnp.result_type(leaf))]
        dtype = optax.tree.dtype(floats, "lowest") if floats else jnp.float32
        return ScaleByPlateauState(scale=jnp.asarray(1.0, dtype))

    def update_fn(
        updates: Any, state: ScaleByPlateauState, params: Any = None, **extra_args: Any
    ) -> tuple[Any, ScaleByPlateauState]:
        del params, extra_args
        scale = state.scale
        return jax.tree.map(lambda update: scale * update, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


_NODES = (*_INJECTED, ScaleByPlateauState)


def _is_node(node: object) -> bool:
    return isinstance(node, _NODES)


def _is_scale(node: object) -> bool:
    return isinstance(node, ScaleByPlateauState)


def _scheduled(node: Any) -> bool:
    return not _is_scale(node) and _LR in getattr(node, "hyperparams_states", {})


def _entries(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(path, state) of every injected lr and every plateau scale, in the module's order."""
    found = []
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_node)
    for key_path, node in flat:
        if _is_node(node):
            path = prefix + jax.tree_util.keystr(key_path)
            if _is_scale(node):
                found.append((path, node))
                continue
            if _LR in node.hyperparams:
                found.append((path, node))
            found += _entries(node.inner_state, path + ".inner_state")
    return found


def _targets(opt_state: Any) -> list[tuple[str, Any]]:
    """(path, state) of the lrs the plateau drives: the plateau scales if any, else the lrs.

    Raises:
        TypeError: neither kind, or a plateau scale next to a constant injected lr.
    """
    entries = _entries(opt_state)
    if not entries:
        raise TypeError(f"opt_state ({type(opt_state).__name__}) {_NO_LR}")
    scales = [(path, node) for path, node in entries if _is_scale(node)]
    if not scales:
        return entries
    constant = [path for path, node in entries if not _is_scale(node) and not _scheduled(node)]
    if constant:
        # Both would be cut, or one would be left alone: neither reading is safe.
        raise TypeError(
            f"opt_state holds a plateau scale (at opt_state{scales[0][0]}) and a constant "
            f"injected learning rate (at opt_state{constant[0]}), which is ambiguous: drive "
            "one of them; drop inject_hyperparams to cut the scale, or scale_by_plateau() "
            "to cut the lr"
        )
    return scales


def _value(node: Any) -> Any:
    return node.scale if _is_scale(node) else node.hyperparams[_LR]


def _what(node: Any) -> str:
    return "plateau scale" if _is_scale(node) else "learning rate"


def lr_paths(opt_state: Any) -> tuple[str, ...]:
    """Where each lr of :func:`get_lrs` lives in `opt_state`, as ``jax.tree_util.keystr`` paths.

    Each names an injected state, or a :class:`ScaleByPlateauState`; none: ``()``.

    Raises:
        TypeError: a plateau scale next to a constant injected lr (ambiguous).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.chain(optax.clip(1.0), optax.inject_hyperparams(optax.sgd)(0.1))
        >>> lr_paths(tx.init(jnp.zeros(2)))
        ('[1]',)
    """
    if not _entries(opt_state):
        return ()
    return tuple(path for path, _ in _targets(opt_state))


def _where(opt_state: Any, index: int) -> str:
    path, node = _targets(opt_state)[index]
    return f"the {_what(node)} at opt_state{path}"


# An epoch's step at 100 lrs must cost about one jitted update, so the search for
# the lrs runs once per optimizer structure: each treedef maps to the positions of
# its settable lrs among the leaves (or to why they cannot be set).
_LOCATED: dict[Any, tuple[int, ...] | TypeError] = {}


def _locate(opt_state: Any) -> tuple[list[Any], Any, tuple[int, ...]]:
    """The leaves and treedef of `opt_state` and where its settable lrs are among them.

    Raises:
        TypeError: no lr, an ambiguous pair, an injected lr driven by a schedule, or
            one of an integer dtype.
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
                f"{_where(opt_state, i)} has dtype {dtype}, which cannot hold a reduced "
                "lr; inject it as a float"
            )
    return leaves, treedef, found


def _search(opt_state: Any) -> tuple[int, ...] | TypeError:
    try:
        targets = _targets(opt_state)
    except TypeError as exc:
        return exc
    for path, node in targets:
        if _scheduled(node):
            return TypeError(
                f"the learning rate at opt_state{path} is driven by a schedule, which "
                "overwrites it at every update; pass a constant learning_rate to "
                f"optax.inject_hyperparams so plateau can set it, or, to keep the "
                f"schedule, {_SCALE_BY_PLATEAU}"
            )
    leaf_paths = [
        jax.tree_util.keystr(key_path)
        for key_path, _ in jax.tree_util.tree_flatten_with_path(opt_state)[0]
    ]
    found = []
    for path, node in targets:
        # The lr is one leaf, at the hyperparameter (or scale) itself or, when a
        # container such as flax nnx's OptArray holds it, inside it: the container is
        # then rebuilt around the new value, so its type survives a cut and nnx.jit
        # does not retrace.
        lr_path = path + (".scale" if _is_scale(node) else f".hyperparams['{_LR}']")
        inside = [
            i
            for i, leaf_path in enumerate(leaf_paths)
            if leaf_path == lr_path or leaf_path.startswith((lr_path + ".", lr_path + "["))
        ]
        if len(inside) != 1:
            return TypeError(
                f"the {_what(node)} at opt_state{path} holds {len(inside)} arrays; "
                "it must be a single number"
            )
        found.append(inside[0])
    return tuple(found)


_FLOAT_DTYPES: dict[Any, bool] = {}


def _float_dtype(dtype: Any) -> bool:
    if dtype not in _FLOAT_DTYPES:
        _FLOAT_DTYPES[dtype] = bool(jnp.issubdtype(dtype, jnp.floating))
    return _FLOAT_DTYPES[dtype]


def get_lrs(opt_state: Any) -> tuple[float, ...]:
    """The lrs the plateau drives in `opt_state`, as Python floats, in the module's order.

    The plateau scales of :func:`scale_by_plateau` if there are any, else the
    injected learning rates (read even when a schedule drives them).

    Raises:
        TypeError: `opt_state` holds neither, or a plateau scale next to a constant
            injected lr.
        ValueError: a learning rate holds more than one number.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.5)
        >>> get_lrs(tx.init(jnp.zeros(2)))
        (0.5,)
    """
    return _read(opt_state, [_value(node) for _, node in _targets(opt_state)])


def _read(opt_state: Any, stored: list[Any]) -> tuple[float, ...]:
    lrs = []
    # np.asarray per array: a tenth of jax.device_get's cost on a list of scalars.
    for i, value in enumerate(map(np.asarray, stored)):
        if getattr(value, "size", 1) != 1:
            raise ValueError(
                f"{_where(opt_state, i)} must be a single number, got shape {value.shape}"
            )
        lrs.append(float(value.reshape(()) if hasattr(value, "reshape") else value))
    return tuple(lrs)


def set_lrs(opt_state: Any, lrs: SupportsFloat | Sequence[SupportsFloat]) -> Any:
    """A new `opt_state` holding `lrs`; `opt_state` itself is left unchanged.

    Each lr keeps its dtype, shape and weak type (``jax.lax.full_like``), so a
    jitted update that took the old state is not retraced for the new one; every
    other leaf is shared, not copied.

    Args:
        opt_state: A state holding injected learning rates or plateau scales.
        lrs: One lr per lr of :func:`get_lrs`, in its order; a single number is
            accepted when there is exactly one.

    Raises:
        TypeError: no lr in `opt_state`, a plateau scale next to a constant injected
            lr, an injected lr driven by a schedule or one of an integer dtype (it
            cannot be set), or an lr that is not a real number.
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
            f"'lrs' has {len(new)} values but opt_state holds {len(where)} "
            f"{_what(_targets(opt_state)[0][1])}s "
            f"(at {', '.join('opt_state' + p for p in lr_paths(opt_state))})"
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


def _commit(
    new_state: plateau.PlateauState,
    read: tuple[float, ...],
    leaves: list[Any],
    treedef: Any,
    where: tuple[int, ...],
    opt_state: Any,
) -> tuple[plateau.PlateauState, Any]:
    """Write `new_state`'s lrs that differ from `read`; the state records them as stored."""
    lrs = new_state.lrs
    writes = dict(changed(read, lrs))
    if not writes:
        return new_state, opt_state
    # Record the lrs as the arrays store them (rounded to their dtype), computed on the host.
    stored = list(lrs)
    for i, lr in writes.items():
        old = leaves[where[i]]
        stored[i] = float(np.asarray(lr, dtype=old.dtype)) if hasattr(old, "dtype") else lr
    return attrs.evolve(new_state, lrs=tuple(stored)), _write(leaves, treedef, where, writes)


def start(opt_state: Any, config: plateau.PlateauConfig) -> tuple[plateau.PlateauState, Any]:
    """The plateau state from `opt_state`'s lrs, and `opt_state` holding the first epoch's lrs.

    Use it before the first update, whatever the config: with a warmup
    (``config.warmup_epochs``) the first epoch trains at ``lr *
    warmup_start_factor``, which is written here (``(plateau_state, opt_state)``
    as :func:`step` returns them); without one `opt_state` is returned as is.
    Under :func:`scale_by_plateau` the lr is the scale, so a warmup ramps the
    scale from ``warmup_start_factor`` to 1.0 over the schedule.

    Raises:
        TypeError: no settable lr in `opt_state` (see :func:`set_lrs`), or `config`
            is not a PlateauConfig.
        ValueError: a per-lr ``min_lr`` whose length differs from the lr count.

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> config = plateau.PlateauConfig(warmup_epochs=2, warmup_start_factor=0.5)
        >>> state, opt_state = start(tx.init(jnp.zeros(2)), config)
        >>> state.lrs, get_lrs(opt_state), state.base_lrs
        ((0.25,), (0.25,), (0.5,))
    """
    leaves, treedef, where = _locate(opt_state)
    read = _read(opt_state, [leaves[i] for i in where])
    return _commit(plateau.init(read, config), read, leaves, treedef, where, opt_state)


def init(opt_state: Any, config: plateau.PlateauConfig) -> plateau.PlateauState:
    """The plateau state starting from `opt_state`'s lrs, as stored; no warmup.

    :func:`start` does the same and also returns the `opt_state` to train with; use
    it for a warmup config, which this function refuses (it cannot put the first
    epoch's lrs into `opt_state`).

    Raises:
        TypeError: no settable lr in `opt_state` (see :func:`set_lrs`), or `config`
            is not a PlateauConfig.
        ValueError: a config with ``warmup_epochs`` > 0, or a per-lr ``min_lr`` whose
            length differs from the lr count.

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> init(tx.init(jnp.zeros(2)), plateau.PlateauConfig()).lrs
        (0.5,)
    """
    if isinstance(config, plateau.PlateauConfig) and config.warmup_epochs:
        # The first epoch would silently train at the lr, not at lr * start factor.
        raise ValueError(
            f"'config' has warmup_epochs={config.warmup_epochs}: the first epoch must train "
            f"at lr * warmup_start_factor ({config.warmup_start_factor!r}), which init "
            "cannot write into opt_state; use "
            "'plateau_state, opt_state = plateau_optax.start(opt_state, config)'"
        )
    return start(opt_state, config)[0]  # without warmup, start writes nothing


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
        plateau_state: From :func:`start` or the previous :func:`step`.
        metric: A real number or a one-element jax array (read once to the host).
        config: The schedule's config.
        opt_state: The optimizer state the lrs live in.

    Raises:
        TypeError: `plateau_state` is not a PlateauState, `metric` is a tracer
            (``step`` was called inside ``jax.jit``), no settable lr in `opt_state`
            (see :func:`set_lrs`), or anything :func:`plateau.step` raises.
        ValueError: anything :func:`plateau.step` raises (e.g. a per-lr ``min_lr``
            that does not fit the lrs `opt_state` holds).

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
        >>> state, opt_state = start(tx.init(jnp.zeros(2)), config)
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
    new_state, _ = plateau.step(plateau_state, metric, config, read)
    return _commit(new_state, read, leaves, treedef, where, opt_state)
