"""Drive the learning rate of an optax optimizer from the host (the guide: docs/optax.md).

:func:`plateau.step` decides on the host, once per epoch, between jitted steps;
this module finds the lrs anywhere in an optax state (:func:`lr_paths`): the
``learning_rate`` of every ``optax.inject_hyperparams`` state or, over any optax
schedule, the scale of every :func:`scale_by_plateau` state (:func:`plateau.scale_base`
at reference 1.0). It reads them and writes new ones in their own dtype, shape and
weak type, so a jitted update is never retraced; the returned state records them
as their arrays store them (float32: 1e-3 reads as 0.0010000000474974513).

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

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, SupportsFloat

import attrs

import plateau
from plateau._checks import check_non_negative, got
from plateau._core import _as_tuple, changed
from plateau._optax_format import check_count, check_init_config, check_settable, driven, name

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


_NODES = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState, ScaleByPlateauState)


def _is_node(node: object) -> bool:
    return isinstance(node, _NODES)


@functools.cache
def _float_dtype(dtype: Any) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.floating))


def _entries(tree: Any, prefix: str = "") -> list[tuple[str, str, Any]]:
    """(state's path, kind, lr) of every injected lr and plateau scale, in the module's order."""
    found: list[tuple[str, str, Any]] = []
    for key_path, node in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_node)[0]:
        if not _is_node(node):
            continue
        path = prefix + jax.tree_util.keystr(key_path)
        if isinstance(node, ScaleByPlateauState):
            found.append((path, "scale", node.scale))
            continue
        if _LR in node.hyperparams:  # InjectHyperparamsState has no hyperparams_states
            scheduled = _LR in getattr(node, "hyperparams_states", {})
            found.append((path, "scheduled" if scheduled else "constant", node.hyperparams[_LR]))
        found += _entries(node.inner_state, path + ".inner_state")
    return found


def _targets(opt_state: Any, none_ok: bool = False) -> list[tuple[str, str, Any]]:
    """:func:`_entries` of the lrs the plateau drives; raises as :func:`get_lrs`."""
    found = _entries(opt_state)
    holder = None if none_ok else type(opt_state).__name__
    return [found[i] for i in driven([entry[:2] for entry in found], holder)]


def _where(opt_state: Any, index: int) -> str:
    return name(*_targets(opt_state)[index][:2])


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
    return tuple(path for path, _, _ in _targets(opt_state, none_ok=True))


def get_lrs(opt_state: Any) -> tuple[float, ...]:
    """The lrs the plateau drives in `opt_state`, as Python floats, even schedule-driven ones.

    The plateau scales if any, else every injected lr (``plateau._optax_format.driven``).

    Raises:
        TypeError: `opt_state` holds no lr, or a plateau scale next to a constant
            injected lr.
        ValueError: a learning rate holds more than one number.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.5)
        >>> get_lrs(tx.init(jnp.zeros(2)))
        (0.5,)
    """
    return _read(opt_state, [lr for _, _, lr in _targets(opt_state)])


def _read(opt_state: Any, stored: list[Any]) -> tuple[float, ...]:
    lrs = []
    # np.asarray per array: a tenth of jax.device_get's cost on a list of scalars.
    for i, value in enumerate(map(np.asarray, stored)):
        if value.size != 1:
            raise ValueError(
                f"{_where(opt_state, i)} must be a single number, got shape {value.shape}"
            )
        lrs.append(float(value.reshape(())))
    return tuple(lrs)


# An epoch's step at 100 lrs must cost about one jitted update, so the search runs once
# per optimizer structure: a treedef maps to its lrs' leaf positions, or to why not.
_LOCATED: dict[Any, tuple[int, ...] | TypeError] = {}


def _locate(opt_state: Any) -> tuple[list[Any], Any, tuple[int, ...]]:
    """The leaves and treedef of `opt_state`, and where its settable lrs are among them."""
    leaves, treedef = jax.tree_util.tree_flatten(opt_state)
    where = _LOCATED.get(treedef)
    if where is None:
        if len(_LOCATED) > 64:  # many structures: a loop that rebuilds its optimizer
            _LOCATED.clear()
        where = _LOCATED[treedef] = _search(opt_state)
    if isinstance(where, TypeError):
        raise where
    for i, index in enumerate(where):
        dtype = getattr(leaves[index], "dtype", None)
        if dtype is not None and not _float_dtype(dtype):
            raise TypeError(
                f"{_where(opt_state, i)} has dtype {dtype}, which cannot hold a reduced "
                "lr; inject it as a float"
            )
    return leaves, treedef, where


def _search(opt_state: Any) -> tuple[int, ...] | TypeError:
    flat = jax.tree_util.tree_flatten_with_path(opt_state)[0]
    paths = [jax.tree_util.keystr(key_path) for key_path, _ in flat]
    try:
        targets = _targets(opt_state)
        # The lr is one leaf, the hyperparameter (or scale) itself or inside a container
        # such as flax nnx's OptArray, then rebuilt around the new value: its type
        # survives, and nnx.jit does not retrace.
        inside = []
        for path, kind, _ in targets:
            lr = path + (".scale" if kind == "scale" else f".hyperparams['{_LR}']")
            within = (lr + ".", lr + "[")
            inside.append([i for i, p in enumerate(paths) if p == lr or p.startswith(within)])
        check_settable([target[:2] for target in targets], [len(found) for found in inside])
    except TypeError as exc:
        return exc
    return tuple(found[0] for found in inside)


def set_lrs(opt_state: Any, lrs: SupportsFloat | Sequence[SupportsFloat]) -> Any:
    """A new `opt_state` holding `lrs`, each in its old dtype, shape and weak type.

    A jitted update that took the old state is not retraced for the new one;
    `opt_state` is left unchanged, and every other leaf is shared, not copied.

    Args:
        opt_state: The state the lrs live in.
        lrs: One lr per lr of :func:`get_lrs`, in its order; a single number is
            accepted when there is exactly one.

    Raises:
        TypeError: no settable lr in `opt_state` (none, a plateau scale next to a
            constant injected lr, an injected lr driven by a schedule or of an
            integer dtype), or an lr that is not a real number.
        ValueError: a negative or non-finite lr, or not one per lr of `opt_state`.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> get_lrs(set_lrs(tx.init(jnp.zeros(2)), [0.25]))
        (0.25,)
    """
    items = _as_tuple(lrs)  # one lr or a sequence, read as plateau.init reads them
    new = [check_non_negative(f"lrs[{i}]", lr) for i, lr in enumerate(items)]
    leaves, treedef, where = _locate(opt_state)
    if len(new) != len(where):  # walk the state again only to name its lrs
        check_count(len(new), [target[:2] for target in _targets(opt_state)])
    return _write(leaves, treedef, where, dict(enumerate(new)))


def _write(leaves: list[Any], treedef: Any, where: tuple[int, ...], new: dict[int, float]) -> Any:
    """The state with lr i set to ``new[i]``, each in its old leaf's dtype, shape, weak type."""
    out = list(leaves)
    for i, lr in new.items():
        out[where[i]] = lr  # a Python float stays one; arrays are filled below
    arrays = [where[i] for i in new if hasattr(leaves[where[i]], "dtype")]
    if arrays:
        filled = _fill([leaves[index] for index in arrays], [out[index] for index in arrays])
        for index, value in zip(arrays, filled, strict=True):
            out[index] = value
    return jax.tree_util.tree_unflatten(treedef, out)


@jax.jit  # type: ignore[untyped-decorator, unused-ignore]
def _fill(olds: list[Any], lrs: list[float]) -> list[Any]:
    """Arrays like `olds` (dtype, shape, weak type) holding `lrs`: one dispatch for all."""
    return [jax.lax.full_like(old, lr) for old, lr in zip(olds, lrs, strict=True)]


def _drive(
    opt_state: Any, advance: Callable[[tuple[float, ...]], plateau.PlateauState]
) -> tuple[plateau.PlateauState, Any]:
    """Read `opt_state`'s lrs, `advance` them, write back the changed ones; record them stored."""
    leaves, treedef, where = _locate(opt_state)
    read = _read(opt_state, [leaves[i] for i in where])
    new_state = advance(read)
    writes = dict(changed(read, new_state.lrs))
    if not writes:
        return new_state, opt_state
    # The lrs as the arrays store them (rounded to their dtype), computed on the host.
    stored = list(new_state.lrs)
    for i, lr in writes.items():
        old = leaves[where[i]]
        stored[i] = float(np.asarray(lr, dtype=old.dtype)) if hasattr(old, "dtype") else lr
    return attrs.evolve(new_state, lrs=tuple(stored)), _write(leaves, treedef, where, writes)


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
    return _drive(opt_state, lambda read: plateau.init(read, config))


def init(opt_state: Any, config: plateau.PlateauConfig) -> plateau.PlateauState:
    """:func:`start`'s plateau state alone, for a config without warmup.

    Raises:
        TypeError: as :func:`start`.
        ValueError: as :func:`start`, or ``config.warmup_epochs`` > 0 (init cannot
            write the first epoch's lrs into `opt_state`: use :func:`start`).

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        >>> init(tx.init(jnp.zeros(2)), plateau.PlateauConfig()).lrs
        (0.5,)
    """
    check_init_config(config)
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
        TypeError: `plateau_state` is not a PlateauState, `metric` is a tracer
            (``step`` was called inside ``jax.jit``), no settable lr in `opt_state`
            (see :func:`set_lrs`), or as :func:`plateau.step`.
        ValueError: as :func:`plateau.step` (e.g. a per-lr ``min_lr`` that does not
            fit the lrs `opt_state` holds).

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
    return _drive(opt_state, lambda read: plateau.step(plateau_state, metric, config, read)[0])
