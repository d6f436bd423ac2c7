"""Drive the learning rate of an optax optimizer from the host (the guide: docs/optax.md).

:func:`plateau.step` decides on the host between jitted steps; this module finds the lrs in
an optax state (:func:`lr_paths`) and writes new ones in their sharding, dtype, shape and weak
type: a jitted update is never retraced. :func:`reduce_on_plateau` decides in the graph instead.

Example:
    >>> import jax.numpy as jnp, optax, plateau
    >>> from plateau.adapters import optax as plateau_optax
    >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
    >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
    >>> state, opt_state = plateau_optax.start(tx.init({"w": jnp.zeros(3)}), config)
    >>> for val_loss in [1.0, 2.0]:  # one validation loss per epoch
    ...     state, opt_state = plateau_optax.step(state, val_loss, config, opt_state)
    >>> plateau_optax.get_lrs(opt_state), state.decision.value
    ((0.25,), 'reduced')
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, SupportsFloat

import plateau
from plateau._checks import check_non_negative, got
from plateau.adapters import _shared

try:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from plateau.adapters import _state_pytree  # noqa: F401 (registers PlateauState as a pytree)
    from plateau.adapters.optax_graph import ReduceOnPlateauState, reduce_on_plateau
except ImportError as exc:  # pragma: no cover - exercised only without jax/optax
    raise ModuleNotFoundError(
        "plateau.adapters.optax requires optax; install 'plateau-lr[optax]'", name="optax"
    ) from exc

__all__ = [
    "ReduceOnPlateauState",
    "ScaleByPlateauState",
    "get_lrs",
    "init",
    "lr_paths",
    "reduce_on_plateau",
    "scale_by_plateau",
    "set_lrs",
    "start",
    "step",
]

_LR = "learning_rate"
_USE_SCALE = (
    "chain plateau_optax.scale_by_plateau() after the optimizer, "
    "e.g. optax.chain(optax.adam(schedule), plateau_optax.scale_by_plateau())"
)


class ScaleByPlateauState(NamedTuple):
    """The state of :func:`scale_by_plateau`: the plateau's scale on the updates."""

    scale: Any
    """A 0-d float array (held in flax nnx's own container inside an nnx.Optimizer)."""


def scale_by_plateau() -> optax.GradientTransformationExtraArgs:
    """Multiply the updates by a scale that :func:`step` sets from the host.

    Chain it after the optimizer, as ``optax.contrib.reduce_on_plateau`` is: the
    effective lr is ``schedule(count) * scale``, and the scale is the lr :func:`step`
    cuts (``min_lr`` is optax's ``min_scale``). It starts at 1.0, in the parameters'
    lowest float dtype (as reduce_on_plateau's, so the two multiply alike); the
    update is traced once however often it is cut.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.chain(optax.sgd(optax.cosine_decay_schedule(0.1, 100)), scale_by_plateau())
        >>> opt_state = set_lrs(tx.init({"w": jnp.zeros(2)}), 0.5)  # as a cut by step sets it
        >>> get_lrs(opt_state), tx.update({"w": jnp.ones(2)}, opt_state)[0]["w"].tolist()
        ((0.5,), [-0.05000000074505806, -0.05000000074505806])
    """

    def init_fn(params: Any) -> ScaleByPlateauState:
        floats = [leaf for leaf in jax.tree.leaves(params) if _is_float(jnp.result_type(leaf))]
        dtype = optax.tree.dtype(floats, "lowest") if floats else jnp.float32
        return ScaleByPlateauState(scale=jnp.asarray(1.0, dtype))

    def update_fn(
        updates: Any, state: ScaleByPlateauState, params: Any = None, **extra_args: Any
    ) -> tuple[Any, ScaleByPlateauState]:
        del params, extra_args
        return jax.tree.map(lambda update: state.scale * update, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@functools.cache
def _is_float(dtype: Any) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.floating))


class _Lr(NamedTuple):
    """One lr found in an optax state; ``str()`` names it as messages do."""

    path: str  # the optax state holding it, as a jax.tree_util.keystr path
    kind: str  # "scale" (scale_by_plateau); injected: "constant" or "scheduled"
    leaf: int  # its position among the opt_state's leaves

    @property
    def what(self) -> str:
        return "plateau scale" if self.kind == "scale" else "learning rate"

    def __str__(self) -> str:
        return f"the {self.what} at opt_state{self.path}"


_INJECTED = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)
_NODES = (*_INJECTED, ScaleByPlateauState)


def _walk(tree: Any, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(state's path, kind, the lr's own path) of every lr in `tree`, outer before inner."""
    nodes = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: isinstance(x, _NODES))
    for key_path, node in nodes[0]:
        path = prefix + jax.tree_util.keystr(key_path)
        if isinstance(node, ScaleByPlateauState):
            yield path, "scale", path + ".scale"
        elif isinstance(node, _INJECTED):
            if _LR in node.hyperparams:  # InjectHyperparamsState has no hyperparams_states
                scheduled = _LR in getattr(node, "hyperparams_states", {})
                kind = "scheduled" if scheduled else "constant"
                yield path, kind, f"{path}.hyperparams['{_LR}']"
            yield from _walk(node.inner_state, path + ".inner_state")


def _find(
    opt_state: Any, *, none_ok: bool = False, writes: bool = False
) -> tuple[list[Any], Any, tuple[_Lr, ...]]:
    """`opt_state`'s leaves and treedef, and the lrs it drives: the scales if any, else all.

    Each lr is one leaf: the number, or inside a container (flax nnx's OptArray).
    With `writes`, an lr that a write could not change is refused.
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(opt_state)
    paths = {jax.tree_util.keystr(key): i for i, (key, _) in enumerate(flat)}
    found = []
    for path, kind, at in _walk(opt_state):  # the leaf at `at`, else those inside it (nnx's)
        sub = (at + ".", at + "[")
        where = [paths[at]] if at in paths else [i for p, i in paths.items() if p.startswith(sub)]
        if len(where) != 1:
            raise TypeError(f"{_Lr(path, kind, -1)} holds {len(where)} arrays, not one number")
        found.append(_Lr(path, kind, where[0]))
    scales = [lr for lr in found if lr.kind == "scale"]
    constant = [lr for lr in found if lr.kind == "constant"]
    if scales and constant:
        raise TypeError(
            f"opt_state holds a plateau scale (at opt_state{scales[0].path}) and a constant "
            f"injected learning rate (at opt_state{constant[0].path}), which is ambiguous: "
            "drop inject_hyperparams to cut the scale, or scale_by_plateau() to cut the lr"
        )
    if not found and not none_ok:
        raise TypeError(
            f"opt_state ({type(opt_state).__name__}) holds no injectable learning rate and "
            "no plateau scale; wrap the optimizer with optax.inject_hyperparams, e.g. "
            "optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), or, to keep a "
            f"schedule, {_USE_SCALE}; and pass its state"
        )
    leaves, driven = [leaf for _, leaf in flat], tuple(scales or found)
    for lr in driven if writes else ():
        if lr.kind == "scheduled":
            raise TypeError(
                f"{lr} is driven by a schedule, which overwrites it at every update; pass a "
                "constant learning_rate to optax.inject_hyperparams so plateau can set it, "
                f"or, to keep the schedule, {_USE_SCALE}"
            )
        dtype = getattr(leaves[lr.leaf], "dtype", None)
        if dtype is not None and not _is_float(dtype):
            raise TypeError(
                f"{lr} has dtype {dtype}, which cannot hold a reduced lr; inject it as a float"
            )
    return leaves, treedef, driven


def _read(leaves: list[Any], found: tuple[_Lr, ...]) -> tuple[float, ...]:
    lrs = []
    for lr in found:
        value = np.asarray(leaves[lr.leaf])  # per array: a tenth of jax.device_get's cost
        if value.size != 1:
            raise ValueError(f"{lr} must be a single number, got shape {value.shape}")
        lrs.append(float(value.reshape(())))
    return tuple(lrs)


def _write(leaves: list[Any], treedef: Any, found: tuple[_Lr, ...], new: dict[int, float]) -> Any:
    """The opt_state with lr i set to ``new[i]``, like its old leaf (sharding, dtype, weak type)."""
    out = list(leaves)
    for i, lr in new.items():
        old = out[found[i].leaf]
        if hasattr(old, "dtype"):  # eager: a jitted fill lands on one device, not old's mesh
            lr = jax.device_put(jax.lax.full_like(old, lr), getattr(old, "sharding", None))
        out[found[i].leaf] = lr
    return jax.tree_util.tree_unflatten(treedef, out)


def lr_paths(opt_state: Any) -> tuple[str, ...]:
    """Where each lr of :func:`get_lrs` lives in `opt_state`, as ``jax.tree_util.keystr`` paths.

    Each names an injected state, or a :class:`ScaleByPlateauState`; none: ``()``.

    Raises:
        TypeError: a plateau scale next to a constant injected lr (ambiguous), or
            an lr not held in one array.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.chain(optax.clip(1.0), optax.inject_hyperparams(optax.sgd)(0.1))
        >>> lr_paths(tx.init(jnp.zeros(2)))
        ('[1]',)
    """
    return tuple(lr.path for lr in _find(opt_state, none_ok=True)[2])


def get_lrs(opt_state: Any) -> tuple[float, ...]:
    """The lrs the plateau drives in `opt_state`, as Python floats, even schedule-driven ones.

    Raises:
        TypeError: `opt_state` holds no lr, or as :func:`lr_paths`.
        ValueError: a learning rate holds more than one number.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.5)
        >>> get_lrs(tx.init(jnp.zeros(2)))
        (0.5,)
    """
    leaves, _, found = _find(opt_state)
    return _read(leaves, found)


def set_lrs(opt_state: Any, lrs: SupportsFloat | Sequence[SupportsFloat]) -> Any:
    """A new `opt_state` holding `lrs`, each in its old dtype, shape and weak type.

    A jitted update that took the old state is not retraced for the new one;
    `opt_state` is left unchanged, and every other leaf is shared, not copied.

    `lrs` holds one lr per lr of :func:`get_lrs`, in its order (or is one number).

    Raises:
        TypeError: no settable lr in `opt_state` (none, a scale next to a constant
            injected lr, an injected lr a schedule drives, an integer dtype), or
            an lr that is not a real number.
        ValueError: a negative or non-finite lr, or not one per lr of `opt_state`.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> get_lrs(set_lrs(tx.init(jnp.zeros(2)), [0.25]))
        (0.25,)
    """
    items = lrs if isinstance(lrs, (list, tuple)) else (lrs,)
    new = [check_non_negative(f"lrs[{i}]", lr) for i, lr in enumerate(items)]
    leaves, treedef, found = _find(opt_state, writes=True)
    if len(new) != len(found):
        raise ValueError(
            f"'lrs' has {len(new)} values but opt_state holds {len(found)} "
            f"{found[0].what}s (at {', '.join('opt_state' + lr.path for lr in found)})"
        )
    return _write(leaves, treedef, found, dict(enumerate(new)))


def start(opt_state: Any, config: plateau.PlateauConfig) -> tuple[plateau.PlateauState, Any]:
    """The plateau state from `opt_state`'s lrs, and `opt_state` holding the first epoch's lrs.

    Use it before the first update, whatever the config: a warmup's first lr
    (``lr * warmup_start_factor``; under :func:`scale_by_plateau`, of the scale) is
    written here; without a warmup `opt_state` is returned as is.

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
    return _drive(opt_state, lambda read, write: _shared.begin(config, read, write))


def init(opt_state: Any, config: plateau.PlateauConfig) -> plateau.PlateauState:
    """:func:`start`'s plateau state alone, for a config without warmup.

    Raises:
        TypeError, ValueError: as :func:`start`; a ValueError for a warmup config, whose
            first epoch's lrs init cannot write into `opt_state`.

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> init(tx.init(jnp.zeros(2)), plateau.PlateauConfig()).lrs
        (0.5,)
    """
    if isinstance(config, plateau.PlateauConfig) and config.warmup_epochs:
        raise ValueError(
            f"'config' has warmup_epochs={config.warmup_epochs}: the first epoch must train at "
            f"lr * warmup_start_factor ({config.warmup_start_factor!r}), which init cannot "
            "write into opt_state; use plateau_optax.start(opt_state, config)"
        )
    return start(opt_state, config)[0]  # without warmup, start writes nothing


def step(
    plateau_state: plateau.PlateauState,
    metric: SupportsFloat,
    config: plateau.PlateauConfig,
    opt_state: Any,
) -> tuple[plateau.PlateauState, Any]:
    """One epoch: read `opt_state`'s lrs, :func:`plateau.step`, write back the changed ones.

    Call it on the host between jitted steps, with `plateau_state` from :func:`start`
    or the last step, and the epoch's `metric`, typically the validation loss (a real
    number or a one-element jax array, read once to the host). `opt_state` comes
    back as is unless an lr changed (see :func:`set_lrs`).

    Raises:
        TypeError: `plateau_state` is not a PlateauState (or one through ``jax.jit``),
            `metric` is a tracer (a call inside ``jax.jit``), or as :func:`set_lrs`
            and :func:`plateau.step`.
        ValueError: as :func:`plateau.step` (e.g. a per-lr ``min_lr`` that does not
            fit the lrs `opt_state` holds).

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
        >>> state, opt_state = start(tx.init(jnp.zeros(2)), config)
        >>> for metric in (1.0, 1.5):  # a jax scalar, or a float
        ...     state, opt_state = step(state, jnp.float32(metric), config, opt_state)
        >>> get_lrs(opt_state)
        (0.25,)
    """
    if not isinstance(plateau_state, plateau.PlateauState):
        raise TypeError(f"'plateau_state' must be a plateau.PlateauState, got {got(plateau_state)}")
    if not isinstance(plateau_state.decision, plateau.Decision):  # see _state_pytree
        raise TypeError(
            f"'plateau_state' holds {got(plateau_state.decision)} for its decision: it went "
            "through jax.jit or jax.device_put in a pytree; keep it out of jitted functions"
        )
    if isinstance(metric, jax.core.Tracer):
        raise TypeError(
            "'metric' is a jax tracer: plateau_optax.step runs on the host between jitted "
            "steps; return the metric from the jitted function and pass the result"
        )
    return _drive(
        opt_state,
        lambda read, write: _shared.advance(plateau_state, metric, config, read, write),
    )


def _drive(
    opt_state: Any, advance: Callable[[_shared.Read, _shared.Write], plateau.PlateauState]
) -> tuple[plateau.PlateauState, Any]:
    """Run `advance(read, write)` on `opt_state`'s lrs; the new opt_state holds what it wrote."""
    leaves, treedef, found = _find(opt_state, writes=True)
    held, new = _read(leaves, found), dict[int, float]()

    def write(i: int, lr: float) -> float:  # the lr as stored: rounded to the array's dtype
        new[i], old = lr, leaves[found[i].leaf]
        return float(np.asarray(lr, dtype=old.dtype)) if hasattr(old, "dtype") else lr

    state = advance(lambda: held, write)
    # Unchanged unless an lr stored changed (a cut its dtype cannot hold stores nothing).
    return state, opt_state if state.lrs == held else _write(leaves, treedef, found, new)
