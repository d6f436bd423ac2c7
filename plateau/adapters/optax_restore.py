"""Reduce and roll back in an optax loop: on a cut, continue from the best step's pytrees.

:func:`keep_or_restore` runs on the host after :func:`plateau.adapters.optax.step`:
a step that improved keeps the params and optimizer state as the :class:`Best`; a
step that cut hands the best ones back for the loop to swap in, holding the new,
cut lrs. JAX arrays are immutable, so keeping them is keeping the references: the
cost is that the best step's params and optimizer state stay alive (one copy of
each, on their own devices). :class:`Best` is a pytree (a NamedTuple), so it goes
in a checkpoint beside the params, the optimizer state and the PlateauState.

Example:
    >>> import jax.numpy as jnp, optax, plateau
    >>> from plateau.adapters import optax as plateau_optax
    >>> tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
    >>> params = {"w": jnp.zeros(2)}
    >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
    >>> state, opt_state = plateau_optax.start(tx.init(params), config)
    >>> best = None
    >>> for val_loss in [1.0, 2.0]:  # one train step stands in for an epoch
    ...     updates, opt_state = tx.update({"w": jnp.ones(2)}, opt_state)
    ...     params = optax.apply_updates(params, updates)
    ...     state, opt_state = plateau_optax.step(state, val_loss, config, opt_state)
    ...     best, params, opt_state, restored = keep_or_restore(best, state, params, opt_state)
    >>> best.epoch, params["w"].tolist(), plateau_optax.get_lrs(opt_state), restored
    (1, [-0.5, -0.5], (0.25,), True)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import plateau
from plateau._checks import got
from plateau.adapters import optax as plateau_optax

__all__ = ["Best", "keep_or_restore"]


class Best(NamedTuple):
    """The params and optimizer state of the best step, and which step that was."""

    epoch: int
    """The PlateauState's ``last_epoch`` after the step that improved: the step to continue from."""
    params: Any
    opt_state: Any


def keep_or_restore(
    best: Best | None, state: plateau.PlateauState, params: Any, opt_state: Any
) -> tuple[Best | None, Any, Any, bool]:
    """``(best, params, opt_state, restored)`` after a plateau step returned `state`.

    Call it with the `opt_state` :func:`plateau.adapters.optax.step` returned and the
    params trained with it, and `best` from the last call (None at first). If `state`
    improved, they become the new best. If it cut and a best exists, the best's params
    and optimizer state come back, its lrs (or :func:`~plateau.adapters.optax.scale_by_plateau`
    scales) set to the cut ones `opt_state` holds; every other leaf, step counts
    included, is the best step's. Otherwise all come back as given. ``restored`` says
    whether the best came back.

    Raises:
        TypeError: `state` is not a PlateauState, `best` is neither a Best nor None,
            or, on a restore, as :func:`plateau.adapters.optax.set_lrs`.

    Example:
        >>> import jax.numpy as jnp, optax, plateau
        >>> tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
        >>> opt_state = tx.init({"w": jnp.zeros(2)})
        >>> improved = plateau.PlateauState(lrs=[0.1], best=1.0, decision=plateau.Decision.IMPROVED)
        >>> best, *_, restored = keep_or_restore(None, improved, {"w": jnp.ones(2)}, opt_state)
        >>> best.epoch, best.params["w"].tolist(), restored
        (0, [1.0, 1.0], False)
    """
    if not isinstance(state, plateau.PlateauState):
        raise TypeError(f"'state' must be a plateau.PlateauState, got {got(state)}")
    if best is not None and not isinstance(best, Best):
        raise TypeError(f"'best' must be a Best or None, got {got(best)}")
    if state.decision is plateau.Decision.IMPROVED:
        return Best(state.last_epoch, params, opt_state), params, opt_state, False
    if state.decision is plateau.Decision.REDUCED and best is not None:
        cut = plateau_optax.set_lrs(best.opt_state, plateau_optax.get_lrs(opt_state))
        return best, best.params, cut, True
    return best, params, opt_state, False
