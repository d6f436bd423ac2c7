"""PlateauState: the record a plateau schedule resumes from, checked where it enters.

The rules that move it are in :mod:`plateau._core` (its theory of operation
says what each field means to them). Here: the fields, their checks, and the
strict-JSON form. A state built directly -- and so by ``attrs.evolve`` and
:meth:`PlateauState.from_dict` -- checks every field, and a refusal names it.
step() builds its states with attrs's own ``__attrs_init__`` instead (directly,
or through :func:`replace`): every value it writes derives from checked ones, and
a state built at every step should not pay for checking them again
(tests/test_properties.py checks that each state step() builds is one the
constructor accepts).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

import attrs

from ._checks import (
    FORMAT_VERSION,
    check_envelope,
    check_int,
    check_non_negative,
    check_real,
    got,
    show,
)

_STATE_FORMAT = "plateau.PlateauState"
_NONFINITE_TEXT = ("inf", "-inf", "nan")
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


def as_tuple(lrs: object) -> tuple[object, ...]:
    """One value, or a sequence of values (not a str), as a tuple."""
    if isinstance(lrs, (str, bytes)) or not isinstance(lrs, Sequence):
        return (lrs,)
    return tuple(lrs)


def check_lrs(value: LrsLike, name: str = "lrs") -> tuple[float, ...]:
    """One lr or a sequence of lrs as a non-empty tuple of finite floats >= 0, each named."""
    items = as_tuple(value)
    if not items:
        raise ValueError(f"'{name}' must hold at least one learning rate, got an empty sequence")
    return tuple(check_non_negative(f"{name}[{i}]", lr) for i, lr in enumerate(items))


def _nan_equal(value: float) -> tuple[bool, float]:
    """The equality and hash key of a float field where NaN equals NaN."""
    return (True, 0.0) if value != value else (False, value)


def _float_to_json(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _float_from_json(value: object) -> object:
    """The strings "inf", "-inf" and "nan" as floats; anything else as it is, for the checks."""
    # Compared only once known to be a str: an array's `in` is elementwise.
    return float(value) if type(value) is str and value in _NONFINITE_TEXT else value


@attrs.frozen(init=False)  # __init__ below is keyword-only; step() sets the fields in order
class PlateauState:
    """Everything a plateau schedule needs to resume: plain Python values only.

    States are made by :func:`init`, :func:`step` and :meth:`from_dict`.
    Constructing one directly (or with ``attrs.evolve``) checks every field: a
    refusal is a TypeError or ValueError that names it.

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
        base_lrs: While a warmup is in progress, the lrs it ramps to (one per lr);
            None otherwise.
        warmup_epoch: While a warmup is in progress, the warmup steps taken; 0 otherwise.
        window: The last judged values, oldest first, that ``detector="window_best"``
            or ``"slope"`` looks at; empty under torch's detector.

    Example:
        >>> PlateauState(lrs=[0.1], best=2).lrs
        (0.1,)
        >>> PlateauState(lrs=[0.1], best=2, num_bad_epochs=-1)
        Traceback (most recent call last):
        ...
        ValueError: 'num_bad_epochs' must be >= 0, got -1
    """

    lrs: tuple[float, ...]
    best: float
    num_bad_epochs: int = 0
    cooldown_counter: int = 0
    last_epoch: int = 0
    decision: Decision = Decision.START
    num_reductions: int = 0
    num_accumulated: int = 0
    # A NaN (a NaN in the block or window) equals a NaN there: a state equals its copy.
    accumulated_mean: float = attrs.field(default=0.0, eq=_nan_equal)
    smoothed: float | None = None
    base_lrs: tuple[float, ...] | None = None
    warmup_epoch: int = 0
    window: tuple[float, ...] = attrs.field(default=(), eq=lambda w: tuple(map(_nan_equal, w)))

    def __init__(
        self,
        *,
        lrs: LrsLike,
        best: SupportsFloat,
        num_bad_epochs: int = 0,
        cooldown_counter: int = 0,
        last_epoch: int = 0,
        decision: Decision = Decision.START,
        num_reductions: int = 0,
        num_accumulated: int = 0,
        accumulated_mean: SupportsFloat = 0.0,
        smoothed: SupportsFloat | None = None,
        base_lrs: LrsLike | None = None,
        warmup_epoch: int = 0,
        window: Sequence[SupportsFloat] = (),
    ) -> None:
        """Check each field (a refusal names it), then let attrs set them.

        step() sets its states with ``__attrs_init__``: its values derive from checked ones.
        """
        self.__attrs_init__(
            lrs=check_lrs(lrs),
            best=check_real("best", best),
            num_bad_epochs=check_int("num_bad_epochs", num_bad_epochs),
            cooldown_counter=check_int("cooldown_counter", cooldown_counter),
            last_epoch=check_int("last_epoch", last_epoch),
            decision=decision,
            num_reductions=check_int("num_reductions", num_reductions),
            num_accumulated=check_int("num_accumulated", num_accumulated),
            accumulated_mean=check_real("accumulated_mean", accumulated_mean),
            smoothed=None if smoothed is None else check_real("smoothed", smoothed),
            base_lrs=None if base_lrs is None else check_lrs(base_lrs, "base_lrs"),
            warmup_epoch=check_int("warmup_epoch", warmup_epoch),
            window=tuple(check_real(f"window[{i}]", v) for i, v in enumerate(as_tuple(window))),
        )
        if math.isnan(self.best):
            raise ValueError("'best' must be a float other than NaN, got nan")
        if not isinstance(self.decision, Decision):
            raise TypeError(f"'decision' must be a Decision, got {got(self.decision)}")
        if self.smoothed is not None and not math.isfinite(self.smoothed):
            raise ValueError(f"'smoothed' must be None or finite, got {self.smoothed}")
        if self.num_accumulated == 0 and self.accumulated_mean != 0.0:
            # optax's formula relies on it: (0 * mean + value) / 1 must be the value.
            raise ValueError(
                "'accumulated_mean' must be 0.0 when 'num_accumulated' is 0, got "
                f"{show(self.accumulated_mean)}"
            )
        if self.base_lrs is None and self.warmup_epoch != 0:
            raise ValueError(
                "'warmup_epoch' must be 0 when 'base_lrs' is None (no warmup in progress), "
                f"got {self.warmup_epoch}"
            )
        if self.base_lrs is not None and len(self.base_lrs) != len(self.lrs):
            raise ValueError(
                f"'base_lrs' must hold one lr per lr ({len(self.lrs)}), got {len(self.base_lrs)}"
            )

    @property
    def exhausted(self) -> bool:
        """The stop signal: this step exceeded patience with nothing left to cut.

        True when the decision is AT_FLOOR (every lr at its floor, or each cut
        <= eps) or CAPPED (``max_reductions`` reached): the schedule has nothing
        left to give, and a training loop can stop on it. It is the step's, like
        the decision: with accumulation, the steps that follow read ACCUMULATING.

        Example:
            >>> from plateau import PlateauConfig, simulate
            >>> config = PlateauConfig(patience=0, max_reductions=1)
            >>> [s.exhausted for s in simulate([3, 3, 3], config)]
            [False, False, True]
        """
        return self.decision in (Decision.AT_FLOOR, Decision.CAPPED)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that passes ``json.dumps(d, allow_nan=False)`` and round-trips exactly.

        A non-finite best, accumulated_mean or window value is written as "inf",
        "-inf" or "nan".

        Example:
            >>> import json
            >>> state = PlateauState(lrs=[0.1], best=float("inf"))
            >>> state.to_dict()["best"]
            'inf'
            >>> PlateauState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
            True
        """
        return {
            "format": _STATE_FORMAT,
            "version": FORMAT_VERSION,
            **attrs.asdict(self, recurse=False),
            "lrs": list(self.lrs),
            "best": _float_to_json(self.best),
            "decision": self.decision.value,
            "accumulated_mean": _float_to_json(self.accumulated_mean),
            "base_lrs": None if self.base_lrs is None else list(self.base_lrs),
            "window": [_float_to_json(value) for value in self.window],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlateauState:
        """Rebuild a state from :meth:`to_dict`'s output, validating every field.

        Raises:
            TypeError: `d` is not a mapping, or a field has the wrong type.
            ValueError: wrong format or version, missing or unknown keys, or a bad value.
        """
        fields = check_envelope(d, _STATE_FORMAT, [a.name for a in attrs.fields(cls)])
        for name in ("best", "accumulated_mean"):
            fields[name] = _float_from_json(fields[name])
        if type(fields["window"]) is list:
            fields["window"] = [_float_from_json(value) for value in fields["window"]]
        decision = fields["decision"]
        choices = [d.value for d in Decision]
        if type(decision) is not str:
            raise TypeError(f"'decision' must be a str, one of {choices}, got {got(decision)}")
        if decision not in choices:
            raise ValueError(f"'decision' must be one of {choices}, got {show(decision)}")
        return cls(**{**fields, "decision": Decision(decision)})


def replace(state: PlateauState, **changes: Any) -> PlateauState:
    """`state` with `changes` derived from checked values (step()'s), set without checking again."""
    new: PlateauState = object.__new__(PlateauState)
    new.__attrs_init__(**{**attrs.asdict(state, recurse=False), **changes})
    return new
