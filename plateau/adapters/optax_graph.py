"""The plateau in the graph: an optax transformation with torch's rules and no host sync.

:func:`reduce_on_plateau` is shaped like ``optax.contrib.reduce_on_plateau``: chain it
after an optimizer and pass the metric to ``update(..., value=loss)``; it multiplies
the updates by the plateau's scale. The decision runs inside the jitted update, so a
per-batch plateau costs no device-to-host read. Its rules are not a copy:
``update`` calls :func:`plateau._core.advance`, the one statement of rules 1-5 and
warmup, with :data:`_JAX`, the few operations it needs done on jax arrays (a select
is ``jnp.where``). The config chooses the code traced; the values decide by select,
so the update compiles once however the schedule moves.

Precision: the state holds the metric, best, the scale and the averages in JAX's
widest float: float64 with ``jax_enable_x64`` on, and the scale sequence then equals
:func:`plateau.simulate`'s bit for bit. Without x64 they are float32: the metric is
rounded to float32 before it is judged (an improvement smaller than float32's
resolution at best, ~6e-8 relative, is not seen), the bounds, the mean and the
average round in float32, ``min_lr`` and ``eps`` are rounded to float32, and the
scale after k cuts is within 2k + 1 float32 roundings (2**-24 each, relative) of
float64's. The updates are multiplied by the scale rounded to their own dtype.

Example:
    >>> import jax, jax.numpy as jnp, optax, plateau
    >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
    >>> tx = optax.chain(optax.sgd(0.1), reduce_on_plateau(config))
    >>> params = {"w": jnp.ones(2)}
    >>> opt_state = tx.init(params)
    >>> update = jax.jit(tx.update)
    >>> for loss in [1.0, 2.0, 3.0]:  # a bad step with patience 0 halves the scale
    ...     updates, opt_state = update({"w": jnp.ones(2)}, opt_state, value=loss)
    >>> float(opt_state[1].scale), updates["w"].tolist()
    (0.25, [-0.02500000037252903, -0.02500000037252903])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import plateau
from plateau._checks import got
from plateau._core import advance
from plateau._ops import Ops

try:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
except ImportError as exc:  # pragma: no cover - exercised only without jax/optax
    raise ModuleNotFoundError(
        "plateau.adapters.optax_graph requires optax; install 'plateau-lr[optax]'", name="optax"
    ) from exc

__all__ = ["ReduceOnPlateauState", "reduce_on_plateau"]

T = TypeVar("T")
_DECISIONS = list(plateau.Decision)


class ReduceOnPlateauState(NamedTuple):
    """The state of :func:`reduce_on_plateau`: a PlateauState's fields as 0-d jax arrays.

    Floats are JAX's widest (float64 with x64 on, else float32), counts its
    default int. Where a PlateauState writes None, this state holds a value:
    ``smoothed`` is NaN for "no average", and ``base_scale`` is always held, the
    warmup being over once ``warmup_epoch`` reaches ``config.warmup_epochs``
    (:meth:`to_plateau_state` and :meth:`from_plateau_state` translate).
    """

    scale: Any
    """The plateau's scale on the updates: the one lr of a PlateauState, from 1.0."""
    best: Any
    num_bad_epochs: Any
    cooldown_counter: Any
    last_epoch: Any
    decision: Any
    """The position of the step's :class:`plateau.Decision` in ``list(plateau.Decision)``."""
    num_reductions: Any
    num_accumulated: Any
    accumulated_mean: Any
    smoothed: Any
    base_scale: Any
    """The scale a warmup ramps to (1.0 from :func:`reduce_on_plateau`'s init)."""
    warmup_epoch: Any

    @classmethod
    def from_plateau_state(
        cls, state: plateau.PlateauState, config: plateau.PlateauConfig
    ) -> ReduceOnPlateauState:
        """The in-graph state that continues `state` under `config`: resume a host run.

        `state` is a PlateauState with one lr, the scale (the host adapter's, from
        ``plateau_optax.step`` with ``plateau_optax.scale_by_plateau()``, or
        :func:`plateau.simulate`'s): the next ``update`` takes the step
        :func:`plateau.step` would. Its floats are rounded to float32 without x64.

        Raises:
            TypeError: `state` is not a PlateauState, or `config` not a PlateauConfig.
            ValueError: a state with more than one lr, or a config the graph cannot run.

        Example:
            >>> import plateau
            >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
            >>> host = plateau.simulate([3.0, 4.0], config)[-1]
            >>> state = ReduceOnPlateauState.from_plateau_state(host, config)
            >>> float(state.scale), state.to_plateau_state(config) == host
            (0.5, True)
        """
        if not isinstance(state, plateau.PlateauState):
            raise TypeError(f"'state' must be a plateau.PlateauState, got {got(state)}")
        _check_config(config)
        if len(state.lrs) != 1:
            raise ValueError(
                f"'state' holds {len(state.lrs)} lrs {state.lrs!r}; reduce_on_plateau's state "
                "holds one, the scale"
            )
        warming = state.base_lrs is not None and state.warmup_epoch < config.warmup_epochs
        return _state(
            config,
            state.lrs[0],
            state.best,
            num_bad_epochs=state.num_bad_epochs,
            cooldown_counter=state.cooldown_counter,
            last_epoch=state.last_epoch,
            decision=_DECISIONS.index(state.decision),
            num_reductions=state.num_reductions,
            num_accumulated=state.num_accumulated,
            accumulated_mean=state.accumulated_mean,
            smoothed=math.nan if state.smoothed is None else state.smoothed,
            base_scale=state.base_lrs[0] if state.base_lrs and warming else 1.0,
            warmup_epoch=state.warmup_epoch if warming else config.warmup_epochs,
        )

    def to_plateau_state(self, config: plateau.PlateauConfig) -> plateau.PlateauState:
        """The PlateauState this state stands for, read to the host and checked field by field.

        The host adapter continues from it (``plateau_optax.step``, with the scale
        written by ``plateau_optax.set_lrs``), and it saves as any PlateauState does.

        Raises:
            TypeError: `config` is not a PlateauConfig.
            ValueError: a field no PlateauState can hold (named).

        Example:
            >>> import plateau
            >>> config = plateau.PlateauConfig(patience=0)
            >>> tx = reduce_on_plateau(config)
            >>> state = tx.init(None)
            >>> for loss in [3.0, 4.0]:
            ...     _, state = tx.update(None, state, value=loss)
            >>> state.to_plateau_state(config).decision
            <Decision.REDUCED: 'reduced'>
        """
        if not isinstance(config, plateau.PlateauConfig):
            raise TypeError(f"'config' must be a plateau.PlateauConfig, got {got(config)}")
        host = {name: np.asarray(leaf).item() for name, leaf in self._asdict().items()}
        if not 0 <= host["decision"] < len(_DECISIONS):
            raise ValueError(f"'decision' must index a plateau.Decision, got {host['decision']}")
        warming = host["warmup_epoch"] < config.warmup_epochs
        scale, base = host.pop("scale"), host.pop("base_scale")
        return plateau.PlateauState(
            **{
                **host,
                "lrs": scale,
                "decision": _DECISIONS[host["decision"]],
                "smoothed": None if math.isnan(host["smoothed"]) else host["smoothed"],
                "base_lrs": (base,) if warming else None,
                "warmup_epoch": host["warmup_epoch"] if warming else 0,
            },
        )

    @property
    def window(self) -> tuple[()]:
        """The trend detectors' window, which the in-graph rules never hold."""
        return ()


def _float() -> Any:
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _int() -> Any:
    return jax.dtypes.canonicalize_dtype(jnp.int64)


def _check_config(config: plateau.PlateauConfig) -> None:
    """Refuse, naming the field, what the rules cannot do in the graph."""
    if not isinstance(config, plateau.PlateauConfig):
        raise TypeError(f"'config' must be a plateau.PlateauConfig, got {got(config)}")
    if config.detector != "best":
        raise ValueError(
            f"'detector' = {config.detector!r} cannot run in the graph (its window has a "
            "length that changes); use detector='best', or the host adapter plateau_optax.step"
        )
    if config.on_nonfinite == "raise":
        raise ValueError(
            "'on_nonfinite' = 'raise' cannot run in the graph (raising needs the metric on "
            "the host); use 'bad' or 'skip', or the host adapter plateau_optax.step"
        )
    if isinstance(config.min_lr, tuple) and len(config.min_lr) != 1:
        raise ValueError(
            f"'min_lr' = {config.min_lr!r} holds {len(config.min_lr)} values, but "
            "reduce_on_plateau drives one scale: give one min_lr (the smallest scale)"
        )


def reduce_on_plateau(config: plateau.PlateauConfig) -> optax.GradientTransformationExtraArgs:
    """Scale the updates by a plateau that decides in the graph, with torch's rules.

    Chain it after an optimizer, as ``optax.contrib.reduce_on_plateau``; each
    ``update(updates, state, params=None, *, value)`` is one step of the plateau
    on `value` (a one-element metric, e.g. the batch's loss), then multiplies the
    updates by the scale. The scale is the one lr of :func:`plateau.simulate`
    (``lrs=1.0``): ``min_lr`` is the smallest scale, and every rule of the config
    applies (both modes, each threshold_mode, cooldown, eps, max_reductions,
    warmup, accumulation, smoothing, on_nonfinite "bad" or "skip").

    Raises:
        TypeError: `config` is not a PlateauConfig; at trace time, a `value` that
            is not a real number.
        ValueError: a config the graph cannot run, naming its field (a detector
            other than "best", on_nonfinite="raise", a min_lr of several values);
            at trace time, a `value` of more than one element.

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> tx = reduce_on_plateau(plateau.PlateauConfig(warmup_epochs=2))
        >>> state = tx.init({"w": jnp.zeros(2)})
        >>> updates, state = tx.update({"w": jnp.ones(2)}, state, value=1.0)
        >>> updates["w"].tolist(), plateau.Decision.WARMUP == list(plateau.Decision)[state.decision]
        ([0.5, 0.5], True)
    """
    _check_config(config)

    def init_fn(params: Any) -> ReduceOnPlateauState:
        del params
        return ReduceOnPlateauState.from_plateau_state(plateau.init(1.0, config), config)

    def update_fn(
        updates: Any,
        state: ReduceOnPlateauState,
        params: Any = None,
        *,
        value: Any,
        **extra_args: Any,
    ) -> tuple[Any, ReduceOnPlateauState]:
        del params, extra_args
        state = _step(state, _metric(value), config)
        return jax.tree.map(lambda u: jnp.asarray(state.scale, u.dtype) * u, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _metric(value: Any) -> Any:
    """`value` as a 0-d array of the state's float, refused if not one real number."""
    dtype = jnp.result_type(value)
    if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)):
        raise TypeError(f"'value' must be a real number, got dtype {dtype}")
    if jnp.size(value) != 1:
        raise ValueError(f"'value' must be a single number, got shape {jnp.shape(value)}")
    return jnp.asarray(value, _float()).reshape(())


def _step(
    state: ReduceOnPlateauState, value: Any, config: plateau.PlateauConfig
) -> ReduceOnPlateauState:
    """One step of :func:`plateau._core.advance` on the arrays of `state`."""
    scale, base = state.scale.reshape(1), state.base_scale.reshape(1)  # ops.each's columns
    warming = state.warmup_epoch < config.warmup_epochs
    fields = advance(_JAX, config, state, value, scale, state.smoothed, warming, base)
    # Each field back in its old dtype and shape (not weak-typed): jit sees one state type.
    return ReduceOnPlateauState(
        *(
            jnp.asarray(new, old.dtype).reshape(())
            for new, old in zip(fields[:-1], state, strict=True)
        )
    )


def _state(
    config: plateau.PlateauConfig, scale: float, best: float, **fields: Any
) -> ReduceOnPlateauState:
    """A state of arrays: `fields` by name over the defaults of a fresh plateau."""
    values = {
        "num_bad_epochs": 0,
        "cooldown_counter": 0,
        "last_epoch": 0,
        "decision": _DECISIONS.index(plateau.Decision.START),
        "num_reductions": 0,
        "num_accumulated": 0,
        "accumulated_mean": 0.0,
        "smoothed": math.nan,
        "base_scale": 1.0,
        "warmup_epoch": 0,
        **fields,
    }
    floats = ("accumulated_mean", "smoothed", "base_scale")
    return ReduceOnPlateauState(
        scale=jnp.asarray(scale, _float()),
        best=jnp.asarray(best, _float()),
        **{k: jnp.asarray(v, _float() if k in floats else _int()) for k, v in values.items()},
    )


class _JaxOps:
    """:class:`~plateau._ops.Ops` on jax arrays: ``jnp.where`` is the select."""

    no_average = math.nan

    def select(self, condition: Any, if_true: Any, if_false: Any) -> Any:
        if if_true is if_false:
            return if_true
        if isinstance(if_true, tuple):
            return tuple(
                self.select(condition, a, b) for a, b in zip(if_true, if_false, strict=True)
            )
        return jnp.where(condition, if_true, if_false)

    def cond(
        self, condition: Any, if_true: Callable[..., T], if_false: Callable[..., T], *operands: Any
    ) -> T:
        # Both branches are traced and selected, as lax.cond does under vmap.
        selected: T = self.select(condition, if_true(*operands), if_false(*operands))
        return selected

    maximum = staticmethod(jnp.maximum)

    # XLA fuses a product into the add that takes it (an FMA: one rounding), and turns a
    # division by a constant or a broadcast value into a multiplication by its reciprocal
    # (two); it folds most no-op ops away, but keeps a select on NaN. So the product goes
    # through one, and the divisor is selected per dividend (x / NaN and NaN / x are NaN).

    @staticmethod
    def multiply(a: Any, b: Any) -> Any:
        product = jnp.multiply(a, b)
        return jnp.where(jnp.isnan(product), jnp.nan, product)

    @staticmethod
    def divide(a: Any, b: Any) -> Any:
        return a / jnp.where(jnp.isnan(a), jnp.nan, b)

    isfinite = staticmethod(jnp.isfinite)

    @staticmethod
    def each(function: Callable[..., Any], *columns: Any) -> Any:
        return function(*(jnp.asarray(column, _float()) for column in columns))

    @staticmethod
    def any_differ(a: Any, b: Any) -> Any:
        return jnp.any(a != b)

    @staticmethod
    def decision(table: tuple[plateau.Decision, ...], index: Any = 0) -> Any:
        return jnp.asarray([_DECISIONS.index(d) for d in table], _int())[index]


_JAX: Ops = _JaxOps()
"""The rules' operations on jax arrays, which :func:`reduce_on_plateau` runs them with."""
