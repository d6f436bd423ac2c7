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
2. Improvement test, in float64, strict, written exactly as torch writes it:
       min/rel  metric < best * (1.0 - threshold)
       min/abs  metric < best - threshold
       max/rel  metric > best * (threshold + 1.0)
       max/abs  metric > best + threshold
   (``best - best * threshold`` differs in the last bit and breaks parity.)
   An improvement sets best and zeroes num_bad_epochs; otherwise it counts one
   more bad epoch. best starts at +inf (min) or -inf (max), so any finite first
   metric improves.
3. Cooldown: if cooldown_counter > 0, decrement it and zero num_bad_epochs. The
   test runs *after* the improvement test, so best still moves during cooldown.
4. Reduction: if num_bad_epochs > patience (strictly: patience=10 cuts on the
   11th bad epoch), each lr becomes max(lr * factor, min_lr_i), applied only if
   lr - new > eps. An lr already under its floor is never raised. Then
   cooldown_counter = cooldown and num_bad_epochs = 0 -- even when no lr changed.
5. last_epoch counts the steps taken.

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
Decision): reduced or at_floor when rule 4 fired, else improved when rule 2 did
(in cooldown too), else cooldown when rule 3 forgave the bad epoch, else
no_improvement. With patience >= 0 (enforced by PlateauConfig) a reduction can
only follow a bad epoch outside cooldown: an improvement zeroes the count, and
so does cooldown.
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

    def __str__(self) -> str:
        return self.value


def _check_lrs(value: LrsLike) -> tuple[float, ...]:
    items: Sequence[object] = _as_tuple(value)
    if not items:
        raise ValueError("'lrs' must hold at least one learning rate, got an empty sequence")
    return tuple(check_non_negative(f"lrs[{i}]", lr) for i, lr in enumerate(items))


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
    """

    lrs: tuple[float, ...] = attrs.field(converter=_check_lrs)
    best: float = attrs.field(converter=to_float)
    num_bad_epochs: int = attrs.field(default=0, converter=to_int)
    cooldown_counter: int = attrs.field(default=0, converter=to_int)
    last_epoch: int = attrs.field(default=0, converter=to_int)
    decision: Decision = Decision.START

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.best, float) or math.isnan(self.best):
            raise (ValueError if isinstance(self.best, float) else TypeError)(
                f"'best' must be a float other than NaN, got {show(self.best)}"
            )
        for name in ("num_bad_epochs", "cooldown_counter", "last_epoch"):
            check_int(name, getattr(self, name))
        if not isinstance(self.decision, Decision):
            raise TypeError(f"'decision' must be a Decision, got {got(self.decision)}")

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that passes ``json.dumps(d, allow_nan=False)`` and round-trips exactly.

        An infinite best (before the first improvement) is written as "inf" or "-inf".

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
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlateauState:
        """Rebuild a state from :meth:`to_dict`'s output, validating every field.

        Raises:
            TypeError: `d` is not a mapping, or a field has the wrong type.
            ValueError: wrong format or version, missing or unknown keys, or a bad value.
        """
        fields = check_envelope(d, _STATE_FORMAT, [a.name for a in attrs.fields(cls)])
        best = fields["best"]
        if type(best) is str and best in ("inf", "-inf"):
            best = float(best)
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
        return cls(**{**fields, "best": best})


# step() runs once per epoch, sometimes once per batch, and simulate() keeps one
# state per metric: the state has slots (about 100 bytes, no per-instance dict),
# and step() builds its result with _make, which writes the slots directly and
# skips the validators -- every value step() writes derives from already-validated
# ones. tests/test_core.py checks that _make sets every field.
_new = object.__new__
(_set_lrs, _set_best, _set_bad, _set_cooldown, _set_epoch, _set_decision) = (
    PlateauState.__dict__[name].__set__
    for name in (
        "lrs", "best", "num_bad_epochs", "cooldown_counter", "last_epoch", "decision"
    )
)  # fmt: skip


def _make(
    lrs: tuple[float, ...],
    best: float,
    num_bad_epochs: int,
    cooldown_counter: int,
    last_epoch: int,
    decision: Decision,
) -> PlateauState:
    """A PlateauState from values known to be valid, without re-validating them."""
    state = _new(PlateauState)
    _set_lrs(state, lrs)
    _set_best(state, best)
    _set_bad(state, num_bad_epochs)
    _set_cooldown(state, cooldown_counter)
    _set_epoch(state, last_epoch)
    _set_decision(state, decision)
    return state


# Enum attribute access goes through the metaclass; plain globals are several times faster.
_IMPROVED = Decision.IMPROVED
_NO_IMPROVEMENT = Decision.NO_IMPROVEMENT
_COOLDOWN = Decision.COOLDOWN
_REDUCED = Decision.REDUCED
_AT_FLOOR = Decision.AT_FLOOR
_SKIPPED = Decision.SKIPPED


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
    """
    if not isinstance(config, PlateauConfig):
        raise TypeError(f"'config' must be a PlateauConfig, got {type(config).__name__}")
    state = PlateauState(lrs=lrs, best=_INF if config.mode == "min" else -_INF)
    config.min_lrs(len(state.lrs))
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
            if not _isfinite(current) and config.on_nonfinite != "bad":
                return _nonfinite(state, current, config, lrs)

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
        if bad > config.patience:
            factor = config.factor
            eps = config.eps
            new_lrs = []
            for lr, floor in zip(lrs, config.min_lrs(len(lrs)), strict=True):
                new = max(lr * factor, floor)
                new_lrs.append(new if lr - new > eps else lr)
            reduced = tuple(new_lrs)
            decision = _REDUCED if reduced != lrs else _AT_FLOOR
            lrs = reduced
            cooldown = config.cooldown
            bad = 0
        epoch = state.last_epoch + 1
    except AttributeError:
        _check_types(state, config)
        raise

    return _make(lrs, best, bad, cooldown, epoch, decision), lrs


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
        lrs, state.best, state.num_bad_epochs, state.cooldown_counter, state.last_epoch, _SKIPPED
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
