"""Which lrs of an optax state the plateau drives, and the refusals, decided without jax.

The optax adapter walks an optimizer state and hands over, in its order, the
``(path, kind)`` of every lr it found: kind "scale" for a ``scale_by_plateau``
state, "constant" for an injected constant ``learning_rate``, "scheduled" for an
injected lr a schedule recomputes at every update. Everything decided from those
alone lives here, with the adapter's messages; see docs/optax.md, "Which lrs are
driven".

Example:
    >>> driven([("[0]", "scheduled"), ("[1]", "scale")], "tuple")
    [1]
    >>> name("[1]", "scale")
    'the plateau scale at opt_state[1]'
"""

from __future__ import annotations

from collections.abc import Sequence

from ._config import PlateauConfig

Found = Sequence[tuple[str, str]]
"""``(path, kind)`` of each lr, in the adapter's order."""

SCALE_BY_PLATEAU = (
    "chain plateau_optax.scale_by_plateau() after the optimizer, "
    "e.g. optax.chain(optax.adam(schedule), plateau_optax.scale_by_plateau())"
)


def _what(kind: str) -> str:
    return "plateau scale" if kind == "scale" else "learning rate"


def name(path: str, kind: str) -> str:
    """The lr at `path` as a message names it."""
    return f"the {_what(kind)} at opt_state{path}"


def driven(found: Found, holder: str | None) -> list[int]:
    """Positions in `found` of the lrs the plateau drives: the plateau scales if any, else all.

    A scheduled lr next to a scale is left to its schedule; nothing found is ``[]``
    when `holder` is None, else an error naming `holder`, the state's type.

    Raises:
        TypeError: nothing found, or a plateau scale next to a constant injected lr
            (both would be cut, or one would be left alone: neither reading is safe).
    """
    if not found:
        if holder is None:
            return []
        raise TypeError(
            f"opt_state ({holder}) holds no injectable learning rate and no plateau scale; "
            "wrap the optimizer with optax.inject_hyperparams, e.g. "
            "optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), or, to keep a "
            f"schedule, {SCALE_BY_PLATEAU}; and pass its state"
        )
    scales = [i for i, (_, kind) in enumerate(found) if kind == "scale"]
    constant = [path for path, kind in found if kind == "constant"]
    if scales and constant:
        raise TypeError(
            f"opt_state holds a plateau scale (at opt_state{found[scales[0]][0]}) and a "
            f"constant injected learning rate (at opt_state{constant[0]}), which is "
            "ambiguous: drive one of them; drop inject_hyperparams to cut the scale, or "
            "scale_by_plateau() to cut the lr"
        )
    return scales or list(range(len(found)))


def check_settable(found: Found, arrays: Sequence[int]) -> None:
    """Refuse to set a driven lr a schedule overwrites, or one not held in one array.

    Args:
        found: The driven lrs.
        arrays: How many arrays each holds.

    Raises:
        TypeError: naming the first such lr.
    """
    for path, kind in found:
        if kind == "scheduled":
            raise TypeError(
                f"{name(path, kind)} is driven by a schedule, which overwrites it at every "
                "update; pass a constant learning_rate to optax.inject_hyperparams so "
                f"plateau can set it, or, to keep the schedule, {SCALE_BY_PLATEAU}"
            )
    for (path, kind), count in zip(found, arrays, strict=True):
        if count != 1:
            raise TypeError(f"{name(path, kind)} holds {count} arrays; it must be a single number")


def check_count(count: int, found: Found) -> None:
    """Refuse `count` new lrs for the driven lrs `found`, unless they are as many.

    Raises:
        ValueError: naming both counts and every path.
    """
    if count != len(found):
        raise ValueError(
            f"'lrs' has {count} values but opt_state holds {len(found)} "
            f"{_what(found[0][1])}s (at {', '.join('opt_state' + path for path, _ in found)})"
        )


def check_init_config(config: object) -> None:
    """Refuse a warmup config in the adapter's ``init``, which cannot write its first lr.

    The first epoch would silently train at the lr, not at lr * warmup_start_factor.

    Raises:
        ValueError: ``config.warmup_epochs`` > 0, naming ``start`` instead.
    """
    if isinstance(config, PlateauConfig) and config.warmup_epochs:
        raise ValueError(
            f"'config' has warmup_epochs={config.warmup_epochs}: the first epoch must train "
            f"at lr * warmup_start_factor ({config.warmup_start_factor!r}), which init "
            "cannot write into opt_state; use "
            "'plateau_state, opt_state = plateau_optax.start(opt_state, config)'"
        )
