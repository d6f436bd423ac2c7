"""log_dict: a state as the flat dict of numbers that experiment trackers take.

One call per step gives what changed the lr and why, for
``SummaryWriter.add_scalars``, ``wandb.log``, ``mlflow.log_metrics`` and
Lightning's ``log_dict``: every value is an int or a finite float, and every
key is ``prefix`` plus a fixed name. The decision is an integer code from
:data:`DECISION_CODES`, a table that only ever grows: a code once given is
never renumbered or reused, so plots from old runs read the same.
"""

from __future__ import annotations

import math

from ._core import Decision, PlateauState

__all__ = ["DECISION_CODES", "log_dict"]

DECISION_CODES: dict[Decision, int] = {
    Decision.START: 0,
    Decision.IMPROVED: 1,
    Decision.NO_IMPROVEMENT: 2,
    Decision.COOLDOWN: 3,
    Decision.REDUCED: 4,
    Decision.AT_FLOOR: 5,
    Decision.SKIPPED: 6,
    Decision.ACCUMULATING: 7,
    Decision.CAPPED: 8,
    Decision.WARMUP: 9,
}
"""Each decision's code in :func:`log_dict`; new decisions get new numbers at the end."""


def log_dict(state: PlateauState, prefix: str = "plateau/") -> dict[str, float | int]:
    """The state's numbers under fixed keys, each an int or a finite float.

    Keys (after `prefix`): ``lr`` for a single lr, else ``lr_0``, ``lr_1``, ... one
    per lr in the state's order; ``best``; ``num_bad_epochs``; ``cooldown_counter``;
    ``num_reductions``; ``decision``, the code :data:`DECISION_CODES` gives it.
    ``best`` is left out while it is infinite (before the first improvement, or
    after a -inf metric in min mode), so that every value passes strict JSON and
    trackers that refuse or clip infinities never see one.

    Args:
        state: The state to log, usually the one a step just returned.
        prefix: Put before every key ("plateau/" groups them in TensorBoard and wandb).

    Raises:
        TypeError: `state` is not a PlateauState or `prefix` not a str.

    Example:
        >>> import plateau
        >>> config = plateau.PlateauConfig(patience=0)
        >>> state, _ = plateau.step(plateau.init(0.1, config), 0.5, config)
        >>> log_dict(state)
        {'plateau/lr': 0.1, 'plateau/best': 0.5, 'plateau/num_bad_epochs': 0, \
'plateau/cooldown_counter': 0, 'plateau/num_reductions': 0, 'plateau/decision': 1}
    """
    if not isinstance(state, PlateauState):
        raise TypeError(f"'state' must be a PlateauState, got {type(state).__name__}")
    if not isinstance(prefix, str):
        raise TypeError(f"'prefix' must be a str, got {type(prefix).__name__}")
    lrs = state.lrs
    if len(lrs) == 1:
        logged: dict[str, float | int] = {f"{prefix}lr": lrs[0]}
    else:
        logged = {f"{prefix}lr_{i}": lr for i, lr in enumerate(lrs)}
    if math.isfinite(state.best):
        logged[f"{prefix}best"] = state.best
    logged[f"{prefix}num_bad_epochs"] = state.num_bad_epochs
    logged[f"{prefix}cooldown_counter"] = state.cooldown_counter
    logged[f"{prefix}num_reductions"] = state.num_reductions
    logged[f"{prefix}decision"] = DECISION_CODES[state.decision]
    return logged
