"""PlateauState and the pure transition function: every rule of the schedule lives here.

Theory of operation
===================

The schedule is torch.optim.lr_scheduler.ReduceLROnPlateau (torch 2.13), step for
step and bit for bit. A step takes the previous state, one metric and the config,
and returns a new state; nothing is mutated, printed or imported. The rules, in
the order they run (the order is the semantics: implementations that swap them
reduce on different epochs):

1. The metric becomes a Python float. A non-finite metric is handled by
   ``config.on_nonfinite``: "bad" lets it through to be compared as a number, as
   torch does (NaN compares False, so it is a bad epoch; +inf in min mode never
   improves; -inf in min mode becomes best and nothing improves on it again);
   "raise" raises before anything changes; "skip" returns the state unchanged
   but for its decision.
   Beyond torch, each off by default (then this rule hands the raw metric on):
   1a. Accumulation (``accumulation_size`` K > 1, optax's): the value joins the
       running mean of the current block, ``mean = (n * mean + value) / (n + 1)``
       as optax writes it (in float64). Until the block holds K values the step
       ends here, decision ACCUMULATING: only the block and last_epoch move. The
       K-th value's step judges the block's mean and empties the block. A NaN in
       a block makes its mean NaN (a bad epoch, as in optax); +inf makes it +inf.
   1b. Smoothing (``ema_decay`` d): the value judged becomes the exponential
       average ``d * ema + (1.0 - d) * value`` (d is the weight kept on the old
       average, nnU-Net's 0.93); the first value starts it. Only finite values
       enter it: a non-finite one (possible only under "bad") is judged raw, as
       torch would judge it, and the average carries on without it (one that
       overflowed is judged as is, and the average restarts).
   Rule 2 and all that follow see the value from 1b (else 1a, else the metric):
   ``best`` records the judged, smoothed value.
2. Improvement test, in float64, strict, written exactly as torch writes it:
       min/rel  metric < best * (1.0 - threshold)
       min/abs  metric < best - threshold
       max/rel  metric > best * (threshold + 1.0)
       max/abs  metric > best + threshold
   (``best - best * threshold`` differs in the last bit and breaks parity.)
   "rel_abs", beyond torch, is "rel" with the margin ``threshold * |best|``, so a
   negative best is judged as its mirror image is: min/rel_abs tests
   ``best * (1.0 - threshold)`` for best >= 0 (torch's min/rel exactly) and
   ``best * (1.0 + threshold)`` for best < 0; max/rel_abs the reverse; an
   infinite best (the start) is its own bound.
   An improvement sets best and zeroes num_bad_epochs; otherwise it counts one
   more bad epoch. best starts at +inf (min) or -inf (max), so any finite first
   metric improves.
3. Cooldown: if cooldown_counter > 0, decrement it and zero num_bad_epochs. The
   test runs *after* the improvement test, so best still moves during cooldown.
4. Reduction: if num_bad_epochs > patience (strictly: patience=10 cuts on the
   11th bad epoch), each lr becomes max(lr * factor, min_lr_i), applied only if
   lr - new > eps. An lr already under its floor is never raised. Then
   cooldown_counter = cooldown and num_bad_epochs = 0 -- even when no lr changed.
   A step where an lr changed adds one to num_reductions. Beyond torch: once
   num_reductions reaches ``max_reductions``, no cut is computed (CAPPED), and
   cooldown is entered all the same, as at the floor.
5. last_epoch counts the steps taken (accumulating steps included).

Who owns the learning rates: the optimizer. ``step(..., lrs=current)`` takes the
lrs the optimizer holds now, and they win over the state's: an lr set by hand or
by another scheduler between two steps is the one the rules cut, and a param
group added mid-run joins (a scalar min_lr extends to it; a per-lr min_lr must
have one value per lr). That is what torch's class does, since it reads
``param_groups`` at every reduction. Every adapter's step is therefore the same
three moves -- read the lrs, ``step(..., lrs=read)``, write back
``changed(read, new)`` -- and this module is the one place that validates the lrs
read and decides which changed. Without ``lrs=`` the state's lrs are used: the
pure, framework-free case.

The decision recorded in the state says which rule ended the step (see
Decision): accumulating when rule 1a did, else reduced, at_floor or capped when
rule 4 fired, else improved when rule 2 did (in cooldown too), else cooldown
when rule 3 forgave the bad epoch, else no_improvement. at_floor and capped are
the stop signal, ``state.exhausted``: patience ran out once more with nothing
left to cut.

Torch's rules live in step() itself, the fast path; a config using a rule
beyond torch's (``config._beyond``) takes _step_beyond, the general path, which
runs every rule above and, on a torch config, gives exactly step()'s states
(tests/test_properties.py checks it). A state stepped under a config drops what
that config does not use: a partial block without accumulation, the average
without smoothing. With patience >= 0 (enforced by PlateauConfig) a reduction can
only follow a bad epoch outside cooldown: an improvement zeroes the count, and
so does cooldown.

Warmup
------

With W = ``config.warmup_epochs`` > 0 and f = ``config.warmup_start_factor``,
:func:`init` records the lrs it is given as ``base_lrs`` (b) and starts each lr
at ``b_i * f``; ``warmup_epoch`` (k) counts the warmup steps taken. The state
holds both in one field, ``warmup = (base_lrs, warmup_epoch)``, None when no
warmup is in progress (one slot: the common path writes one value more, not
two). A step taken while ``warmup`` is set and k < W is a warmup step, and runs
instead of rules 1-4 (the lrs and the optimizer's ownership are validated
first, as always):

- the metric must be a real number, but is not observed, whatever its value
  (NaN and +-inf too, whatever on_nonfinite says): best and both counters stay
  as they are, the decision is ``warmup``, and last_epoch counts the step;
- k becomes k + 1 and each lr becomes ``b_i * (f + (1 - f) * k / W)``; min_lr
  does not apply (timm's ramp ignores its floor too). On step W the lrs are
  ``b_i`` itself, never a float expression that might round, and the warmup
  is over: ``warmup`` becomes None, so from step W + 1 on the
  state is exactly the one torch's scheduler would hold had it been started at
  b at that point (step W + 1's metric sets best), but for last_epoch.

Ownership during warmup: an lr the optimizer holds that differs from the
state's (set by hand, a group added) rescales that lr's base, so the ramp
carries on from it proportionally: ``b_i = lr / (f + (1 - f) * k / W)``, the
ramp factor of the lr the state held. That is what torch's own LinearLR does
(it multiplies whatever lr the group holds), and it keeps the optimizer's word:
the lr set is the one the next ramp step scales, not one it overwrites. Where
that factor is 0 (before the first step with f = 0) nothing can be scaled, and
the lr set becomes the base itself. A config whose warmup_epochs is no longer
above k (replaced mid-warmup) ends the warmup: the step is a plain step at the
lrs held, which also clears ``warmup``.

Base schedules
--------------

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

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from math import isfinite as _isfinite
from typing import Any, SupportsFloat

import attrs

from ._checks import (
    check_int,
    check_non_negative,
    check_ordered,
    got,
    show,
    to_float,
    to_int,
    to_metric,
)
from ._config import FORMAT_VERSION, PlateauConfig, check_envelope

_INF = math.inf
_STATE_FORMAT = "plateau.PlateauState"
LrsLike = SupportsFloat | Sequence[SupportsFloat]


class Decision(str, enum.Enum):
    """What a step decided, so a trainer can log why its lr did (not) change."""

    START = "start"
    """No step taken yet."""
    IMPROVED = "improved"
    """The metric beat best by more than the threshold."""
    NO_IMPROVEMENT = "no_improvement"
    """A bad epoch, counted; patience not yet exceeded."""
    COOLDOWN = "cooldown"
    """No improvement, but in cooldown: the bad epoch is not counted. (An improvement
    during cooldown is recorded as IMPROVED; ``cooldown_counter`` shows the cooldown.)"""
    REDUCED = "reduced"
    """Patience was exceeded and at least one lr was cut."""
    AT_FLOOR = "at_floor"
    """Patience was exceeded but no lr changed: each was at min_lr or the cut was <= eps.
    Cooldown is entered all the same, as torch does."""
    SKIPPED = "skipped"
    """A non-finite metric with on_nonfinite="skip": nothing else changed."""
    ACCUMULATING = "accumulating"
    """The metric joined the current block (``accumulation_size``); no decision yet."""
    CAPPED = "capped"
    """Patience was exceeded but ``max_reductions`` cuts were already made: no lr changed.
    Cooldown is entered all the same, as at the floor."""
    WARMUP = "warmup"
    """A warmup step: the metric was not observed and the lrs followed the ramp."""

    def __str__(self) -> str:
        return self.value


_ADDED_STATE_KEYS = frozenset({"num_reductions", "num_accumulated", "accumulated_mean", "smoothed"})
_NONFINITE_TEXT = ("inf", "-inf", "nan")
# The fields step()'s fast path never writes, and the values they then read as.
_LAZY_DEFAULTS: dict[str, object] = {
    "num_accumulated": 0,
    "accumulated_mean": 0.0,
    "smoothed": None,
    "warmup": None,
}


def _float_to_json(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _nan_equal(value: float) -> tuple[bool, float]:
    """The equality and hash key of a float field where NaN equals NaN."""
    return (True, 0.0) if value != value else (False, value)


def _to_optional_float(value: float | None) -> float | None:
    return None if value is None else to_float(value)


def _check_lrs(value: LrsLike) -> tuple[float, ...]:
    items: Sequence[object] = _as_tuple(value)
    if not items:
        raise ValueError("'lrs' must hold at least one learning rate, got an empty sequence")
    return tuple(check_non_negative(f"lrs[{i}]", lr) for i, lr in enumerate(items))


def _check_warmup(value: object) -> tuple[tuple[float, ...], int] | None:
    """Warmup: None, or (base_lrs, warmup_epoch), each checked and named."""
    if value is None:
        return None
    if not (
        isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) == 2
    ):
        raise TypeError(
            f"'warmup' must be None or a (base_lrs, warmup_epoch) pair, got {got(value)}"
        )
    base, epoch = value
    items: Sequence[object] = _as_tuple(base)
    if not items:
        raise ValueError("'base_lrs' must hold at least one lr, got an empty sequence")
    lrs = tuple(check_non_negative(f"base_lrs[{i}]", lr) for i, lr in enumerate(items))
    return lrs, check_int("warmup_epoch", epoch)


@attrs.frozen(kw_only=True)
class PlateauState:
    """Everything a plateau schedule needs to resume: plain Python values only.

    States are made by :func:`init`, :func:`step` and :meth:`from_dict`;
    constructing one directly validates every field.

    Attributes:
        lrs: The current learning rates, one per parameter group.
        best: Best metric so far (+inf / -inf before the first improvement).
        num_bad_epochs: Bad epochs counted since the last improvement or reduction.
        cooldown_counter: Epochs of cooldown left.
        last_epoch: Steps taken.
        decision: What the step that made this state decided.
        num_reductions: Steps that cut at least one lr.
        num_accumulated: Values in the current block (``accumulation_size``).
        accumulated_mean: Their running mean (0.0 for an empty block; NaN or
            infinite once a NaN or an infinity joined it).
        smoothed: The exponential average (``ema_decay``) of the finite values
            judged so far; None before the first, or without smoothing.
        warmup: While a warmup is in progress, ``(base_lrs, warmup_epoch)``: the lrs it
            ramps to (one per lr) and the warmup steps taken; None otherwise. Read
            them as :attr:`base_lrs` and :attr:`warmup_epoch`.
    """

    lrs: tuple[float, ...] = attrs.field(converter=_check_lrs)
    best: float = attrs.field(converter=to_float)
    num_bad_epochs: int = attrs.field(default=0, converter=to_int)
    cooldown_counter: int = attrs.field(default=0, converter=to_int)
    last_epoch: int = attrs.field(default=0, converter=to_int)
    decision: Decision = Decision.START
    num_reductions: int = attrs.field(default=0, converter=to_int)
    num_accumulated: int = attrs.field(default=0, converter=to_int)
    # A NaN mean (a NaN in the block) compares equal to a NaN mean: a state equals its copy.
    accumulated_mean: float = attrs.field(default=0.0, converter=to_float, eq=_nan_equal)
    smoothed: float | None = attrs.field(default=None, converter=_to_optional_float)
    # Warmup: the ramp's targets and position, set only while a warmup is in progress
    # (a lazy slot, like the three above: step()'s fast path never writes it).
    warmup: tuple[tuple[float, ...], int] | None = attrs.field(
        default=None, converter=_check_warmup
    )

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.best, float) or math.isnan(self.best):
            raise (ValueError if isinstance(self.best, float) else TypeError)(
                f"'best' must be a float other than NaN, got {show(self.best)}"
            )
        for name in ("num_bad_epochs", "cooldown_counter", "last_epoch"):
            check_int(name, getattr(self, name))
        if not isinstance(self.decision, Decision):
            raise TypeError(f"'decision' must be a Decision, got {got(self.decision)}")
        check_int("num_reductions", self.num_reductions)
        check_int("num_accumulated", self.num_accumulated)
        if not isinstance(self.accumulated_mean, float):
            raise TypeError(f"'accumulated_mean' must be a float, got {got(self.accumulated_mean)}")
        if self.num_accumulated == 0 and self.accumulated_mean != 0.0:
            # optax's formula relies on it: (0 * mean + value) / 1 must be the value.
            raise ValueError(
                "'accumulated_mean' must be 0.0 when 'num_accumulated' is 0, got "
                f"{show(self.accumulated_mean)}"
            )
        if self.smoothed is not None:
            if not isinstance(self.smoothed, float):
                raise TypeError(f"'smoothed' must be None or a float, got {got(self.smoothed)}")
            if not math.isfinite(self.smoothed):
                raise ValueError(f"'smoothed' must be finite, got {show(self.smoothed)}")
        if self.warmup is not None and len(self.warmup[0]) != len(self.lrs):  # Warmup
            raise ValueError(
                f"'base_lrs' must hold one lr per lr ({len(self.lrs)}), got {len(self.warmup[0])}"
            )

    @property
    def exhausted(self) -> bool:
        """The stop signal: this step exceeded patience with nothing left to cut.

        True when the decision is AT_FLOOR (every lr at its floor, or each cut
        <= eps) or CAPPED (``max_reductions`` reached): the schedule has nothing
        left to give, and a training loop can stop on it. It is the step's, like
        the decision: with accumulation, the steps that follow read ACCUMULATING.

        Example:
            >>> config = PlateauConfig(patience=0, max_reductions=1)
            >>> [s.exhausted for s in simulate([3, 3, 3], config)]
            [False, False, True]
        """
        decision = self.decision
        return decision is _AT_FLOOR or decision is _CAPPED

    @property
    def base_lrs(self) -> tuple[float, ...] | None:
        """While a warmup is in progress, the lrs it ramps to; None otherwise."""
        return None if self.warmup is None else self.warmup[0]

    @property
    def warmup_epoch(self) -> int:
        """While a warmup is in progress, the warmup steps taken; 0 otherwise."""
        return 0 if self.warmup is None else self.warmup[1]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that passes ``json.dumps(d, allow_nan=False)`` and round-trips exactly.

        An infinite best (before the first improvement) is written as "inf" or "-inf",
        a non-finite accumulated_mean as "inf", "-inf" or "nan".

        Example:
            >>> import json
            >>> config = PlateauConfig()
            >>> state = init(0.1, config)
            >>> PlateauState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
            True
        """
        best: float | str = self.best if math.isfinite(self.best) else str(self.best)
        return {
            "format": _STATE_FORMAT,
            "version": FORMAT_VERSION,
            "lrs": list(self.lrs),
            "best": best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
            "last_epoch": self.last_epoch,
            "decision": self.decision.value,
            "num_reductions": self.num_reductions,
            "num_accumulated": self.num_accumulated,
            "accumulated_mean": _float_to_json(self.accumulated_mean),
            "smoothed": self.smoothed,
            **self._warmup_dict(),
        }

    def _warmup_dict(self) -> dict[str, Any]:
        """Warmup: its keys, only while one is in progress (older versions load the rest)."""
        if self.warmup is None:
            return {}
        return {"base_lrs": list(self.warmup[0]), "warmup_epoch": self.warmup[1]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlateauState:
        """Rebuild a state from :meth:`to_dict`'s output, validating every field.

        A dict saved before num_reductions, num_accumulated, accumulated_mean and
        smoothed existed (same version, without those keys) loads with their defaults.

        Raises:
            TypeError: `d` is not a mapping, or a field has the wrong type.
            ValueError: wrong format or version, missing or unknown keys, or a bad value.
        """
        warmup: tuple[Any, Any] | None = None
        if isinstance(d, Mapping) and ("base_lrs" in d or "warmup_epoch" in d):  # Warmup
            d = dict(d)
            base, epoch = d.pop("base_lrs", None), d.pop("warmup_epoch", 0)
            # {"base_lrs": None, "warmup_epoch": 0}: none. The epoch is compared only once
            # checked: an array's != is elementwise, and 0.0 or False is no int.
            if base is not None or check_int("warmup_epoch", epoch) != 0:
                if not isinstance(base, list):
                    raise TypeError(f"'base_lrs' must be a list, got {got(base)}")
                warmup = (base, epoch)
        names = [a.name for a in attrs.fields(cls) if a.name != "warmup"]
        fields = check_envelope(d, _STATE_FORMAT, names, optional=_ADDED_STATE_KEYS)
        best = fields["best"]
        if type(best) is str and best in ("inf", "-inf"):
            best = float(best)
        mean = fields.get("accumulated_mean")
        if type(mean) is str and mean in _NONFINITE_TEXT:  # `in` alone would compare arrays
            fields["accumulated_mean"] = float(mean)
        decision = fields["decision"]
        choices = [d.value for d in Decision]
        if type(decision) is not str:
            raise TypeError(f"'decision' must be a str, one of {choices}, got {got(decision)}")
        try:
            fields["decision"] = Decision(decision)
        except ValueError:
            raise ValueError(f"'decision' must be one of {choices}, got {show(decision)}") from None
        lrs = fields["lrs"]
        if not isinstance(lrs, list):
            raise TypeError(f"'lrs' must be a list, got {got(lrs)}")
        return cls(**{**fields, "best": best, "warmup": warmup})


# step() runs once per epoch, sometimes once per batch, and simulate() keeps one
# state per metric: the state has slots (about 130 bytes, no per-instance dict),
# and step() builds its result with _make (written out in step() itself), which
# writes the slots directly and skips the validators -- every value step() writes
# derives from already-validated ones. tests/test_core.py checks that _make sets
# every field and that step()'s states read every field.
_new = object.__new__
(
    _set_lrs, _set_best, _set_bad, _set_cooldown, _set_epoch, _set_decision,
    _set_reductions, _set_accumulated, _set_mean, _set_smoothed, _set_warmup,
) = (
    PlateauState.__dict__[name].__set__
    for name in (
        "lrs", "best", "num_bad_epochs", "cooldown_counter", "last_epoch", "decision",
        "num_reductions", "num_accumulated", "accumulated_mean", "smoothed", "warmup",
    )
)  # fmt: skip


class _DefaultWhenUnset:
    """A slot that reads as its field's default while never written.

    step()'s fast path (torch's rules) never writes num_accumulated,
    accumulated_mean and smoothed: writing three slots costs about 15% of a step,
    and that path always means their defaults. The slot's own descriptor is
    wrapped, so every other field stays a plain slot (a ``__getattr__`` on the
    class would slow every attribute read instead), writes go to the slot, and
    only reads of these three fields pay for a Python-level call.
    """

    __slots__ = ("default", "slot")

    def __init__(self, slot: Any, default: object) -> None:
        self.slot = slot
        self.default = default

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            return self.slot.__get__(obj, objtype)
        except AttributeError:
            return self.default

    def __set__(self, obj: object, value: object) -> None:
        self.slot.__set__(obj, value)

    def __delete__(self, obj: object) -> None:
        self.slot.__delete__(obj)


for _name, _default in _LAZY_DEFAULTS.items():
    setattr(PlateauState, _name, _DefaultWhenUnset(PlateauState.__dict__[_name], _default))


_attrs_setstate: Any = PlateauState.__setstate__  # type: ignore[attr-defined]  # attrs made it


def _setstate(self: PlateauState, state: Any) -> None:
    """Unpickle; a state pickled before num_reductions existed has made none counted.

    (The lazy fields need nothing: unset, they read as their defaults.)
    """
    _attrs_setstate(self, state)
    try:
        self.num_reductions  # noqa: B018
    except AttributeError:
        _set_reductions(self, 0)


PlateauState.__setstate__ = _setstate  # type: ignore[attr-defined]


def _make(
    lrs: tuple[float, ...],
    best: float,
    num_bad_epochs: int,
    cooldown_counter: int,
    last_epoch: int,
    decision: Decision,
    num_reductions: int,
    num_accumulated: int = 0,
    accumulated_mean: float = 0.0,
    smoothed: float | None = None,
    warmup: tuple[tuple[float, ...], int] | None = None,
) -> PlateauState:
    """A PlateauState from values known to be valid, without re-validating them."""
    state = _new(PlateauState)
    _set_lrs(state, lrs)
    _set_best(state, best)
    _set_bad(state, num_bad_epochs)
    _set_cooldown(state, cooldown_counter)
    _set_epoch(state, last_epoch)
    _set_decision(state, decision)
    _set_reductions(state, num_reductions)
    _set_accumulated(state, num_accumulated)
    _set_mean(state, accumulated_mean)
    _set_smoothed(state, smoothed)
    _set_warmup(state, warmup)  # Warmup
    return state


# Enum attribute access goes through the metaclass; plain globals are several times faster.
_IMPROVED = Decision.IMPROVED
_NO_IMPROVEMENT = Decision.NO_IMPROVEMENT
_COOLDOWN = Decision.COOLDOWN
_REDUCED = Decision.REDUCED
_AT_FLOOR = Decision.AT_FLOOR
_SKIPPED = Decision.SKIPPED
_ACCUMULATING = Decision.ACCUMULATING
_CAPPED = Decision.CAPPED
_WARMUP = Decision.WARMUP


def init(lrs: LrsLike, config: PlateauConfig) -> PlateauState:
    """The state before the first step.

    Args:
        lrs: One learning rate, or one per parameter group (each finite and >= 0).
        config: The schedule's config; a per-lr min_lr must have one value per lr.

    Raises:
        TypeError: an lr that is not a real number, or `config` not a PlateauConfig.
        ValueError: no lrs, a negative or non-finite lr, or a min_lr count mismatch.

    Example:
        >>> init([0.1, 0.01], PlateauConfig()).lrs
        (0.1, 0.01)
        >>> init([0.1, 0.01], PlateauConfig(warmup_epochs=5, warmup_start_factor=0.5)).lrs
        (0.05, 0.005)
    """
    if not isinstance(config, PlateauConfig):
        raise TypeError(f"'config' must be a PlateauConfig, got {type(config).__name__}")
    state = PlateauState(lrs=lrs, best=_INF if config.mode == "min" else -_INF)
    config.min_lrs(len(state.lrs))
    if config.warmup_epochs:  # Warmup: start at b_i * f, remember b.
        start = config.warmup_start_factor
        base = state.lrs
        lrs = tuple(b * start for b in base)
        state = _make(lrs, state.best, 0, 0, 0, state.decision, 0, warmup=(base, 0))
    return state


def step(
    state: PlateauState,
    metric: SupportsFloat,
    config: PlateauConfig,
    lrs: LrsLike | None = None,
) -> tuple[PlateauState, tuple[float, ...]]:
    """Advance the schedule by one epoch: the new state and the lrs to use next.

    Pure: never mutates, prints or imports a framework. The rules are torch's,
    listed at the top of this module.

    Args:
        state: The state after the previous step (or from :func:`init`).
        metric: One real number: int, float, Fraction, numpy scalar, 0-d tensor.
        config: The schedule's config.
        lrs: The lrs the optimizer holds now, if it may have changed them since the
            last step (set by hand, another scheduler, a group added): they replace
            the state's before the rules run. None: the state's lrs.

    Raises:
        TypeError: `metric` or an lr is not a single real number; wrong state or
            config type.
        ValueError: a non-finite metric with on_nonfinite="raise"; a negative or
            non-finite lr; a per-lr min_lr whose length differs from the lr count.
            Nothing is changed on error.

    Example:
        >>> config = PlateauConfig(patience=0)
        >>> state, lrs = step(init(1.0, config), 5.0, config)
        >>> state, lrs = step(state, 6.0, config)
        >>> lrs, state.decision
        ((0.1,), <Decision.REDUCED: 'reduced'>)
    """
    current = metric if type(metric) is float else to_metric(metric)
    # A zero-cost try: a state or config of the wrong type fails at its first
    # attribute read, and is reported as a TypeError that names it. An explicit
    # type check up front would cost the common path several percent.
    try:
        held = state.lrs
        if lrs is not None and lrs is not held:
            try:
                same = lrs == held  # a tuple of floats, read from the optimizer
            except Exception:  # an array or tensor among them: _adopt names it
                same = False
            if same is not True:
                held = _adopt(held, lrs, config)
        lrs = held
        if config._guarded:
            if type(config.min_lr) is tuple:
                config.min_lrs(len(lrs))
            # Warmup: steps 1..W ramp the lrs and do not observe the metric.
            if (warmup := state.warmup) is not None and warmup[1] < config.warmup_epochs:
                return _warmup_step(state, warmup, config, lrs)
            if not _isfinite(current) and config.on_nonfinite != "bad":
                return _nonfinite(state, current, config, lrs)
            if config._beyond:
                return _step_beyond(state, current, config, lrs)

        # Rule 2: improvement test, torch's exact expressions.
        best = state.best
        if config.mode == "min":
            if config.threshold_mode == "rel":
                improved = current < best * (1.0 - config.threshold)
            else:
                improved = current < best - config.threshold
        elif config.threshold_mode == "rel":
            improved = current > best * (config.threshold + 1.0)
        else:
            improved = current > best + config.threshold
        if improved:
            best = current
            bad = 0
            decision = _IMPROVED
        else:
            bad = state.num_bad_epochs + 1
            decision = _NO_IMPROVEMENT

        # Rule 3: cooldown, after the improvement test.
        cooldown = state.cooldown_counter
        if cooldown > 0:
            cooldown -= 1
            if bad:
                bad = 0
                decision = _COOLDOWN

        # Rule 4: reduction.
        reductions = state.num_reductions
        if bad > config.patience:
            reduced = _cut(lrs, config)
            if reduced != lrs:
                decision = _REDUCED
                reductions += 1
            else:
                decision = _AT_FLOOR
            lrs = reduced
            cooldown = config.cooldown
            bad = 0
        epoch = state.last_epoch + 1
    except AttributeError:
        _check_types(state, config)
        raise

    # _make written out: the call itself would cost about a tenth of the step.
    new_state = _new(PlateauState)
    _set_lrs(new_state, lrs)
    _set_best(new_state, best)
    _set_bad(new_state, bad)
    _set_cooldown(new_state, cooldown)
    _set_epoch(new_state, epoch)
    _set_decision(new_state, decision)
    _set_reductions(new_state, reductions)
    # num_accumulated, accumulated_mean and smoothed are left unset: they read as
    # their defaults (see _DefaultWhenUnset), which is what this path means.
    return new_state, lrs


def _cut(lrs: tuple[float, ...], config: PlateauConfig) -> tuple[float, ...]:
    """Rule 4's cut: each lr to max(lr * factor, its floor), unless that is <= eps."""
    factor = config.factor
    eps = config.eps
    new_lrs = []
    for lr, floor in zip(lrs, config.min_lrs(len(lrs)), strict=True):
        new = max(lr * factor, floor)
        new_lrs.append(new if lr - new > eps else lr)
    return tuple(new_lrs)


def _step_beyond(
    state: PlateauState, current: float, config: PlateauConfig, lrs: tuple[float, ...]
) -> tuple[PlateauState, tuple[float, ...]]:
    """Every rule, torch's and those beyond it: rules 1a to 5 of the module docstring.

    Called by step() once the metric is a float, the lrs adopted and rule 1's
    raise / skip applied. On a torch config it gives exactly step()'s result.
    """
    epoch = state.last_epoch + 1
    reductions = state.num_reductions

    # Rule 1a: accumulation, optax's running mean.
    size = config.accumulation_size
    value = current
    if size > 1:
        count = state.num_accumulated + 1
        mean = (state.num_accumulated * state.accumulated_mean + current) / count
        if count < size:
            return _make(
                lrs,
                state.best,
                state.num_bad_epochs,
                state.cooldown_counter,
                epoch,
                _ACCUMULATING,
                reductions,
                count,
                mean,
                state.smoothed if config.ema_decay is not None else None,
            ), lrs
        value = mean

    # Rule 1b: smoothing, over finite values only.
    decay = config.ema_decay
    smoothed = None
    if decay is not None:
        smoothed = state.smoothed
        if _isfinite(value):
            if smoothed is not None:
                value = decay * smoothed + (1.0 - decay) * value
            smoothed = value if _isfinite(value) else None

    # Rule 2: improvement test.
    best = state.best
    threshold = config.threshold
    if config.threshold_mode == "rel_abs":
        if not _isfinite(best):
            bound = best
        elif (best >= 0.0) is (config.mode == "min"):
            bound = best * (1.0 - threshold)
        else:
            bound = best * (threshold + 1.0)
        improved = value < bound if config.mode == "min" else value > bound
    elif config.mode == "min":
        if config.threshold_mode == "rel":
            improved = value < best * (1.0 - threshold)
        else:
            improved = value < best - threshold
    elif config.threshold_mode == "rel":
        improved = value > best * (threshold + 1.0)
    else:
        improved = value > best + threshold
    if improved:
        best = value
        bad = 0
        decision = _IMPROVED
    else:
        bad = state.num_bad_epochs + 1
        decision = _NO_IMPROVEMENT

    # Rule 3: cooldown.
    cooldown = state.cooldown_counter
    if cooldown > 0:
        cooldown -= 1
        if bad:
            bad = 0
            decision = _COOLDOWN

    # Rule 4: reduction, under the cap.
    if bad > config.patience:
        cap = config.max_reductions
        if cap is not None and reductions >= cap:
            decision = _CAPPED
        else:
            reduced = _cut(lrs, config)
            if reduced != lrs:
                decision = _REDUCED
                reductions += 1
            else:
                decision = _AT_FLOOR
            lrs = reduced
        cooldown = config.cooldown
        bad = 0

    return _make(lrs, best, bad, cooldown, epoch, decision, reductions, 0, 0.0, smoothed), lrs


def _warmup_step(
    state: PlateauState,
    warmup: tuple[tuple[float, ...], int],
    config: PlateauConfig,
    lrs: tuple[float, ...],
) -> tuple[PlateauState, tuple[float, ...]]:
    """One warmup step (see "Warmup" at the top of this module): the ramp, metric unseen.

    `warmup` is ``state.warmup``; `lrs` the lrs held now, already validated.
    """
    start = config.warmup_start_factor
    epochs = config.warmup_epochs
    base, done = warmup
    if lrs is not state.lrs:  # the optimizer's lrs differ: rescale the bases they change
        base = _rebase(base, state.lrs, lrs, start + (1.0 - start) * done / epochs, done)
    done += 1
    best, bad, cooldown = state.best, state.num_bad_epochs, state.cooldown_counter
    if done >= epochs:  # the last warmup step: exactly b, and the warmup is over
        epoch, reductions = state.last_epoch + 1, state.num_reductions
        return _make(base, best, bad, cooldown, epoch, _WARMUP, reductions), base
    ramp = start + (1.0 - start) * done / epochs
    new = tuple(b * ramp for b in base)
    epoch, reductions = state.last_epoch + 1, state.num_reductions
    return _make(new, best, bad, cooldown, epoch, _WARMUP, reductions, warmup=(base, done)), new


def _rebase(
    base: tuple[float, ...],
    held: tuple[float, ...],
    lrs: tuple[float, ...],
    ramp: float,
    done: int,
) -> tuple[float, ...]:
    """Warmup's ownership rule: each lr that differs from the state's gets the base lr / ramp."""
    new = []
    for i, lr in enumerate(lrs):
        if i < len(held) and lr == held[i]:
            new.append(base[i])
            continue
        rebased = lr / ramp if ramp else lr  # at ramp 0 nothing scales: the lr is the base
        if not _isfinite(rebased):
            raise ValueError(
                f"'lrs[{i}]' = {lr!r}, set during warmup after {done} of its steps, would "
                f"need a base lr of {rebased!r} (lr / ramp factor {ramp!r})"
            )
        new.append(rebased)
    return tuple(new)


def _adopt(held: tuple[float, ...], lrs: LrsLike, config: PlateauConfig) -> tuple[float, ...]:
    """The optimizer's lrs in place of the state's (the ownership rule), validated."""
    adopted = _check_lrs(lrs)
    if adopted == held:  # a list or a scalar equal to the state's
        return held
    config.min_lrs(len(adopted))
    return adopted


def _as_tuple(lrs: object) -> tuple[object, ...]:
    if isinstance(lrs, (str, bytes)) or not isinstance(lrs, Sequence):
        return (lrs,)
    return tuple(lrs)


def changed(before: Sequence[float], after: Sequence[float]) -> list[tuple[int, float]]:
    """The (index, new lr) pairs an adapter must write: where `after` differs from `before`.

    Example:
        >>> changed((0.1, 0.2), (0.01, 0.2))
        [(0, 0.01)]
    """
    if before == after:
        return []
    return [(i, new) for i, (old, new) in enumerate(zip(before, after, strict=True)) if new != old]


def scale_base(
    state: PlateauState, base_lrs: LrsLike, reference_lrs: LrsLike = 1.0
) -> tuple[float, ...]:
    """The lrs under a base schedule: the base's lrs scaled by the plateau's cut.

    ``base_i`` while the state's lr equals its reference (no cut yet), else
    ``lr_i * (base_i / reference_i)``; see "Base schedules" in the theory of
    operation for why min_lr and eps apply at the reference. A single base or
    reference applies to every lr.

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
        >>> config = PlateauConfig(patience=0, factor=0.5)
        >>> state = init(1.0, config)  # the plateau's scale on the schedule
        >>> scale_base(state, 0.3)  # nothing cut: the schedule's lr, exactly
        (0.3,)
        >>> state, _ = step(step(state, 1.0, config)[0], 2.0, config)
        >>> scale_base(state, 0.3)
        (0.15,)
    """
    if not isinstance(state, PlateauState):
        raise TypeError(f"'state' must be a PlateauState, got {type(state).__name__}")
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
    items = _as_tuple(value)
    if len(items) == 1:
        items = items * count
    if len(items) != count:
        raise ValueError(f"'{name}' must hold 1 or {count} values, got {len(items)}")
    return tuple(check_non_negative(f"{name}[{i}]", v) for i, v in enumerate(items))


def _check_types(state: object, config: object) -> None:
    if not isinstance(state, PlateauState):
        raise TypeError(f"'state' must be a PlateauState, got {type(state).__name__}")
    if not isinstance(config, PlateauConfig):
        raise TypeError(f"'config' must be a PlateauConfig, got {type(config).__name__}")


def _nonfinite(
    state: PlateauState, current: float, config: PlateauConfig, lrs: tuple[float, ...]
) -> tuple[PlateauState, tuple[float, ...]]:
    """Rule 1 for on_nonfinite "raise" and "skip"."""
    if config.on_nonfinite == "raise":
        raise ValueError(f"'metric' must be finite (on_nonfinite='raise'), got {current!r}")
    return _make(
        lrs,
        state.best,
        state.num_bad_epochs,
        state.cooldown_counter,
        state.last_epoch,
        _SKIPPED,
        state.num_reductions,
        state.num_accumulated,
        state.accumulated_mean,
        state.smoothed,
    ), lrs


def simulate(
    metrics: Iterable[SupportsFloat], config: PlateauConfig, lrs: LrsLike = 1.0
) -> list[PlateauState]:
    """Replay a metric sequence: one state per metric, identical to folding :func:`step`.

    With the default ``lrs=1.0`` each state's lr reads as the multiplier applied to
    the starting learning rate.

    Example:
        >>> config = PlateauConfig(patience=1, factor=0.5)
        >>> [s.lrs[0] for s in simulate([3, 2, 2, 2, 2], config)]
        [1.0, 1.0, 1.0, 0.5, 0.5]
    """
    check_ordered("metrics", metrics)
    state = init(lrs, config)
    states = []
    for metric in metrics:
        state, _ = step(state, metric, config)
        states.append(state)
    return states
