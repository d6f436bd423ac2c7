"""Base schedules: the plateau's cut carried onto a schedule that moves the lr.

Under a base schedule (a cosine or warmup-cosine, torch's LinearLR or an
``lr_lambda``, a Keras LearningRateSchedule, an optax schedule) the state's lrs p
are the plateau's own, measured at the base's *reference* r: the lr torch's
scheduler would hold if the base stood still at r. The optimizer gets
``scale_base(state, base, reference)``: for each lr, ``base_i`` while
``p_i == r_i`` (nothing cut: the base schedule itself, exactly), else
``p_i * (base_i / r_i)``. The reference is the base's own "1.0": torch's
schedulers scale each group's ``initial_lr``, so that is r there; a Keras or
optax schedule has no such value, so r = 1.0 and p is the scale, as in optax's
``reduce_on_plateau`` (min_lr is then optax's ``min_scale``).

``min_lr`` and ``eps`` apply to p, at the reference, not to the lr the base
moves: the floor under a moving base is ``min_lr * base / r``, and a cut is
applied when it changes p by more than eps. The alternative -- clamping the
product -- would raise a base that decays or warms up through min_lr above
what it asks for (breaking ``lr <= base``), would let eps refuse every cut
once a decaying base is small (turning the plateau off when it is needed), and
would make the plateau's decisions depend on where the base happened to be,
so a resume would need the base's history. With the rule as it is, the
state's decisions never depend on the base, the state round-trips without it,
and:

- a constant base (``base == r``) gives p itself: torch's lrs, bit for bit;
- the lr never exceeds the base: after a cut p < r, so ``p * (base / r)``
  rounds to at most ``base`` (the ``min`` in scale_base guards the subnormal
  range);
- a cut is never undone: p never increases and the base only multiplies; each
  change not made by the base is a change of p, a factor of ``factor`` or a
  clamp at min_lr (rule 4), or a warmup step.
"""

from __future__ import annotations

from ._checks import check_type, show
from ._state import LrsLike, PlateauState, check_lrs

__all__ = ["scale_base"]


def scale_base(
    state: PlateauState, base_lrs: LrsLike, reference_lrs: LrsLike = 1.0
) -> tuple[float, ...]:
    """The lrs under a base schedule: the base's lrs scaled by the plateau's cut.

    ``base_i`` while the state's lr equals its reference (no cut yet), else
    ``lr_i * (base_i / reference_i)``; this module's docstring says why min_lr
    and eps apply at the reference. A single base or reference applies to every lr.

    Args:
        state: the plateau's state; its lrs are measured at the reference.
        base_lrs: the base schedule's lrs now (one, or one per lr).
        reference_lrs: the base's reference (torch: each group's ``initial_lr``);
            1.0 when the state's lrs are a scale, as with a Keras or optax schedule.

    Raises:
        TypeError: `state` is not a PlateauState, or a base or reference is not a number.
        ValueError: a negative or non-finite base, a reference <= 0 or non-finite, or
            a count that is neither 1 nor the state's number of lrs.

    Example:
        >>> import plateau
        >>> config = plateau.PlateauConfig(patience=0, factor=0.5)
        >>> state = plateau.init(1.0, config)  # the plateau's scale on the schedule
        >>> scale_base(state, 0.3)  # nothing cut: the schedule's lr, exactly
        (0.3,)
        >>> state, _ = plateau.step(plateau.step(state, 1.0, config)[0], 2.0, config)
        >>> scale_base(state, 0.3)
        (0.15,)
    """
    check_type("state", state, PlateauState)
    lrs = state.lrs
    base = _per_lr("base_lrs", base_lrs, len(lrs))
    reference = _per_lr("reference_lrs", reference_lrs, len(lrs))
    for i, r in enumerate(reference):
        if not r > 0.0:
            raise ValueError(f"'reference_lrs[{i}]' must be > 0, got {show(r)}")
    return tuple(
        b if p == r else min(b, p * (b / r)) for p, b, r in zip(lrs, base, reference, strict=True)
    )


def _per_lr(name: str, value: LrsLike, count: int) -> tuple[float, ...]:
    """One finite float >= 0 per lr, each named; a single value applies to each lr."""
    values = check_lrs(value, name)
    if len(values) not in (1, count):
        raise ValueError(f"'{name}' must hold 1 or {count} values, got {len(values)}")
    return values if len(values) == count else values * count
