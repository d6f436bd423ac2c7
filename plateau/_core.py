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
   Beyond torch, ``detector`` (torch's "best" by default) can replace the test;
   the judged values then join ``window``, the last ``config.window`` of them,
   and best records the best judged value (never NaN), improvement or not:
   "window_best" applies the test above to the best of the previous values in
   the window (+-inf while it is empty) instead of best; "slope" improves when
   the least-squares slope over the window (x = 0, 1, ...) points the right way
   with a one-sided Student-t p-value below ``alpha`` (plateau._trend; no
   threshold), and while the window holds fewer than 3 values the test above
   decides against best.
3. Cooldown: if cooldown_counter > 0, decrement it and zero num_bad_epochs. The
   test runs *after* the improvement test, so best still moves during cooldown.
4. Reduction: if num_bad_epochs > patience (strictly: patience=10 cuts on the
   11th bad epoch), each lr becomes max(lr * factor, min_lr_i), applied only if
   lr - new > eps. An lr already under its floor is never raised. Then
   cooldown_counter = cooldown and num_bad_epochs = 0 -- even when no lr changed.
   A step where an lr changed adds one to num_reductions. Beyond torch: once
   num_reductions reaches ``max_reductions``, no cut is computed (CAPPED), and
   cooldown is entered all the same, as at the floor. Whenever patience runs
   out (a cut, the floor or the cap), "slope" empties its window: a new lr is a
   new regime.
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

One rule code
-------------

advance() runs the rules above in that order, each written once, for Python
floats and for arrays alike: what the config chooses is a Python branch, what
the values decide is a select over plateau._ops.Ops (``where``, ``maximum``,
comparisons), which :data:`~plateau._ops.FLOATS` does with an ``if`` and the
device adapters with torch's or jax's ops, so a step runs inside
``torch.compile(fullgraph=True)``, a CUDA graph or ``jax.jit`` and gives the
lrs step() gives. A rule beyond torch's is a no-op at its default, so a torch
config runs torch's rules exactly. step() is advance() on the host: values are
checked where they enter -- init, from_dict, a state built directly, the lrs
adopted from the optimizer, the metric -- and step() builds its states from
values derived from checked ones without checking them again (see
plateau._state). A state stepped under a config drops what that config does not
use: a partial block without accumulation, the average without smoothing. With
patience >= 0 (enforced by PlateauConfig) a reduction can only follow a bad
epoch outside cooldown: an improvement zeroes the count, and so does cooldown.

A product that a sum takes is ``ops.multiply`` and a quotient ``ops.divide``:
compilers fuse ``a * b + c`` into a multiply-add (one rounding, where Python
rounds twice) and turn ``a / b`` into ``a * (1 / b)``; those two keep Python's
roundings on a device.

Warmup
------

With W = ``config.warmup_epochs`` > 0 and f = ``config.warmup_start_factor``,
:func:`init` records the lrs it is given as ``base_lrs`` (b) and starts each lr
at ``b_i * f``; ``warmup_epoch`` (k) counts the warmup steps taken. Both are
None and 0 when no warmup is in progress. A step taken while ``base_lrs`` is set
and k < W is a warmup step, and runs instead of rules 1-4 (the lrs and the
optimizer's ownership are validated first, as always):

- the metric must be a real number, but is not observed, whatever its value
  (NaN and +-inf too, whatever on_nonfinite says): best and both counters stay
  as they are, the decision is ``warmup``, and last_epoch counts the step;
- k becomes k + 1 and each lr becomes ``b_i * (f + (1 - f) * k / W)``; min_lr
  does not apply (timm's ramp ignores its floor too). On step W the lrs are
  ``b_i`` itself, never a float expression that might round, and the warmup
  is over: ``base_lrs`` becomes None, so from step W + 1 on the
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
lrs held, which also clears ``base_lrs``.

Base schedules
--------------

A base schedule (a cosine, torch's LinearLR, a Keras or optax schedule) never
enters the rules: plateau._base.scale_base maps the state's lrs onto it, and
says why min_lr and eps apply at the base's reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, SupportsFloat

from ._checks import check_ordered, check_type, to_metric
from ._config import PlateauConfig
from ._ops import FLOATS, Ops
from ._state import Decision, LrsLike, PlateauState, check_lrs, replace
from ._trend import slope_improves, window_best

__all__ = [
    "Decision",
    "LrsLike",
    "PlateauState",
    "changed",
    "init",
    "simulate",
    "step",
]


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
    check_type("config", config, PlateauConfig)
    lrs = check_lrs(lrs)
    config.min_lrs(len(lrs))
    best = math.inf if config.mode == "min" else -math.inf
    if not config.warmup_epochs:
        return PlateauState(lrs=lrs, best=best)
    start = tuple(b * config.warmup_start_factor for b in lrs)  # the ramp starts at b_i * f
    return PlateauState(lrs=start, best=best, base_lrs=lrs)


def step(
    state: PlateauState,
    metric: SupportsFloat,
    config: PlateauConfig,
    lrs: LrsLike | None = None,
) -> tuple[PlateauState, tuple[float, ...]]:
    """Advance the schedule by one epoch: the new state and the lrs to use next.

    Pure: never mutates, prints or imports a framework. The rules are torch's,
    listed at the top of this module, and run in that order by :func:`advance`.

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
    if not (isinstance(state, PlateauState) and isinstance(config, PlateauConfig)):
        check_type("state", state, PlateauState)
        check_type("config", config, PlateauConfig)
    value = to_metric(metric)
    if lrs is None:
        lrs = state.lrs
    else:  # the ownership rule: the optimizer's lrs win
        adopted = check_lrs(lrs)
        lrs = state.lrs if adopted == state.lrs else adopted
    if isinstance(config.min_lr, tuple):  # a per-lr floor must fit the lrs (a scalar fits any)
        config.min_lrs(len(lrs))
    base, warming = state.base_lrs, False
    if base is not None:
        if state.warmup_epoch < config.warmup_epochs:
            warming = True
            if lrs is not state.lrs:  # the optimizer's lrs differ: rescale the bases they change
                base = _rebase(base, state.lrs, lrs, config, state.warmup_epoch)
        else:  # a config whose warmup_epochs is no longer above k ended the warmup
            state, base = replace(state, base_lrs=None, warmup_epoch=0), None
    if not (warming or math.isfinite(value)) and config.on_nonfinite == "raise":
        raise ValueError(f"'metric' must be finite (on_nonfinite='raise'), got {value!r}")
    smoothed = state.smoothed
    if config.ema_decay is not None and smoothed is None:
        smoothed = math.nan  # the rules' "no average yet"
    fields = advance(FLOATS, config, state, value, lrs, smoothed, warming, base)
    if fields[9] != fields[9]:  # NaN: no average, which a PlateauState writes None
        fields = (*fields[:9], None, *fields[10:])
    if warming and fields[11] == config.warmup_epochs:  # the warmup is over
        fields = (*fields[:10], None, 0, fields[12])
    new: PlateauState = object.__new__(PlateauState)  # set by attrs, unchecked (see _state)
    new.__attrs_init__(*fields)
    return new, new.lrs


Fields = tuple[Any, ...]
"""A state's fields in PlateauState's order: what :func:`advance` returns."""

# What a judged step decided, at improved + 2 * forgiven + 3 * fired + capped + 2 * cut
# (see advance): an improvement and a forgiven bad epoch exclude each other, and both
# leave no bad epoch, so neither is possible when patience ran out (fired); a capped
# step cuts nothing.
_OUTCOMES = (
    Decision.NO_IMPROVEMENT,
    Decision.IMPROVED,
    Decision.COOLDOWN,
    Decision.AT_FLOOR,
    Decision.CAPPED,
    Decision.REDUCED,
)


def advance(
    ops: Ops,
    config: PlateauConfig,
    state: Any,
    value: Any,
    lrs: Any,
    smoothed: Any,
    warming: Any,
    base: Any,
) -> Fields:
    """Rules 1-5 and warmup, written once for floats and arrays: the new state's fields.

    The fields come in PlateauState's order (:data:`Fields`). `state` holds the old
    ones by those names (a PlateauState, or a device adapter's state); `value` is
    the metric, `lrs` the lrs held now, `smoothed` the average with NaN for none,
    `warming` whether this is a warmup step and `base` its base lrs. What the
    config chooses is a Python branch; what the values decide is an ``ops``
    select, so the rules run in order and a step that ends early (a warmup step, a
    skipped metric, a block still filling) selects the fields it keeps. Checks,
    the ownership rule's rebase and on_nonfinite="raise" come first, on the host
    (:func:`step`).

    Example:
        >>> config = PlateauConfig(patience=0)
        >>> state = init(1.0, config)
        >>> advance(FLOATS, config, state, 5.0, state.lrs, math.nan, False, None)[:3]
        ((1.0,), 5.0, 0)
    """
    metric, epoch, done = value, state.last_epoch + 1, state.warmup_epoch

    # Rule 1a: accumulation, optax's running mean; the step ends here until the block is full.
    if config.accumulation_size > 1:
        count = state.num_accumulated + 1
        product = ops.multiply(state.num_accumulated, state.accumulated_mean)
        value = mean = ops.divide(product + value, count)

    # Rule 1b: smoothing, over finite values only. A config that does not smooth drops it.
    decay, average = config.ema_decay, ops.no_average
    if decay is not None:
        finite = ops.isfinite(value)
        averaged = ops.multiply(decay, smoothed) + ops.multiply(1.0 - decay, value)
        value = ops.select(finite & ops.isfinite(smoothed), averaged, value)
        average = ops.select(finite, ops.select(ops.isfinite(value), value, math.nan), smoothed)

    # Rule 2: the improvement test, by the config's detector.
    improved, best, window = _judge(ops, value, state, config)
    bad = ops.select(improved, 0, state.num_bad_epochs + 1)

    # Rule 3: cooldown, after the improvement test.
    cooling = state.cooldown_counter > 0
    forgiven = cooling & (bad > 0)
    cooldown, bad = ops.select(
        cooling, (state.cooldown_counter - 1, 0), (state.cooldown_counter, bad)
    )

    # Rule 4: reduction, under the cap.
    fired = bad > config.patience
    capped = False
    if config.max_reductions is not None:
        capped = fired & (state.num_reductions >= config.max_reductions)
    new_lrs, cut = ops.cond(fired ^ capped, _cut, _uncut, ops, lrs, config)  # ^: and not capped
    cooldown, bad = ops.select(fired, (config.cooldown, 0), (cooldown, bad))
    if config.detector == "slope":  # a new lr is a new regime: the trend starts over
        window = ops.select(fired, (), window)
    decision = ops.decision(_OUTCOMES, improved + 2 * forgiven + 3 * fired + capped + 2 * cut)

    # Rule 5: last_epoch counts the step; the block is empty.
    counters = (bad, cooldown, epoch, decision, state.num_reductions + cut)
    fields = (new_lrs, best, *counters, 0, 0.0, average, base, done, window)

    # The steps that end before rule 2 keep the fields they do not name.
    if config.accumulation_size > 1:
        kept = smoothed if decay is not None else ops.no_average
        block = (count, mean)
        filling = _kept(ops, state, lrs, epoch, Decision.ACCUMULATING, block, kept, base, done)
        fields = ops.select(count >= config.accumulation_size, fields, filling)
    if config.on_nonfinite == "skip":  # rule 1: a non-finite metric changes only the decision
        block = (state.num_accumulated, state.accumulated_mean)
        last = state.last_epoch
        skipped = _kept(ops, state, lrs, last, Decision.SKIPPED, block, smoothed, base, done)
        fields = ops.select(ops.isfinite(metric), fields, skipped)
    if config.warmup_epochs:  # see "Warmup": the ramp, the metric unseen
        fields = ops.cond(warming, _warmup, lambda *_: fields, ops, config, state, smoothed, base)
    return fields


def _kept(
    ops: Ops,
    state: Any,
    lrs: Any,
    epoch: Any,
    decision: Decision,
    block: tuple[Any, Any],
    smoothed: Any,
    base: Any,
    done: Any,
) -> Fields:
    """The fields of a step that ends before rule 2: `state`'s, but for those named."""
    old = (state.best, state.num_bad_epochs, state.cooldown_counter, epoch)
    code = ops.decision((decision,))
    return (lrs, *old, code, state.num_reductions, *block, smoothed, base, done, state.window)


def _warmup(ops: Ops, config: PlateauConfig, state: Any, smoothed: Any, base: Any) -> Fields:
    """A warmup step (see "Warmup"): each lr on the ramp, b_i itself at step W."""
    done = state.warmup_epoch + 1
    ramp, last = _ramp(ops, config, done), done >= config.warmup_epochs
    ramped = ops.each(lambda b: ops.select(last, b, b * ramp), base)
    block = (state.num_accumulated, state.accumulated_mean)
    return _kept(
        ops, state, ramped, state.last_epoch + 1, Decision.WARMUP, block, smoothed, base, done
    )


def _judge(ops: Ops, value: Any, state: Any, config: PlateauConfig) -> tuple[Any, Any, Any]:
    """Rule 2: whether `value` improves, the best after it, and the window of judged values.

    The trend detectors run on floats only (the device adapters refuse them).
    """
    if config.detector == "best":
        improved = _improves(ops, value, state.best, config)
        return improved, ops.select(improved, value, state.best), ()
    window = (*state.window, value)[-config.window :]
    best = min(state.best, value) if config.mode == "min" else max(state.best, value)  # not NaN
    if config.detector == "window_best":
        improved = _improves(ops, value, window_best(state.window, config.mode), config)
    elif len(window) < 3:
        improved = _improves(ops, value, state.best, config)
    else:
        improved = slope_improves(window, config.mode, config.alpha)
    return improved, best, window


def _improves(ops: Ops, value: Any, best: Any, config: PlateauConfig) -> Any:
    """Whether `value` beats `best` by the threshold, in torch's exact expressions."""
    threshold, minimize = config.threshold, config.mode == "min"
    if config.threshold_mode == "rel":
        bound = best * (1.0 - threshold) if minimize else best * (threshold + 1.0)
    elif config.threshold_mode == "abs":
        bound = best - threshold if minimize else best + threshold
    else:  # rel_abs: the margin threshold * |best|, so a negative best is judged as its mirror
        lower, upper = best * (1.0 - threshold), best * (threshold + 1.0)  # rel's bounds
        mirrored = ops.select((best >= 0.0) == minimize, lower, upper)
        bound = ops.select(ops.isfinite(best), mirrored, best)  # an infinite best is its own bound
    return value < bound if minimize else value > bound


def _cut(ops: Ops, lrs: Any, config: PlateauConfig) -> tuple[Any, Any]:
    """Rule 4's cut: each lr to max(lr * factor, its floor), unless that is <= eps.

    Also returns whether any lr changed (a cut, else the floor).
    """

    def cut(lr: Any, floor: Any) -> Any:
        new = ops.maximum(lr * config.factor, floor)
        return ops.select(lr - new > config.eps, new, lr)

    new_lrs = ops.each(cut, lrs, config.min_lrs(len(lrs)))
    return new_lrs, ops.any_differ(new_lrs, lrs)


def _uncut(ops: Ops, lrs: Any, config: PlateauConfig) -> tuple[Any, Any]:
    """Rule 4 when no cut is made: the lrs as they are, and that none changed."""
    return lrs, False


def _ramp(ops: Ops, config: PlateauConfig, done: Any) -> Any:
    """Warmup's factor on each base lr after `done` of its steps: f + (1 - f) * k / W."""
    start = config.warmup_start_factor
    return start + ops.divide((1.0 - start) * done, config.warmup_epochs)


def _rebase(
    base: tuple[float, ...],
    held: tuple[float, ...],
    lrs: tuple[float, ...],
    config: PlateauConfig,
    done: int,
) -> tuple[float, ...]:
    """Warmup's ownership rule: each lr that differs from the state's gets the base lr / ramp."""
    ramp = _ramp(FLOATS, config, done)
    new = []
    for i, lr in enumerate(lrs):
        if i < len(held) and lr == held[i]:
            new.append(base[i])
            continue
        rebased = lr / ramp if ramp else lr  # at ramp 0 nothing scales: the lr is the base
        if not math.isfinite(rebased):
            raise ValueError(
                f"'lrs[{i}]' = {lr!r}, set during warmup after {done} of its steps, would "
                f"need a base lr of {rebased!r} (lr / ramp factor {ramp!r})"
            )
        new.append(rebased)
    return tuple(new)


def changed(before: Sequence[float], after: Sequence[float]) -> list[tuple[int, float]]:
    """The (index, new lr) pairs an adapter must write: where `after` differs from `before`.

    Example:
        >>> changed((0.1, 0.2), (0.01, 0.2))
        [(0, 0.01)]
    """
    if before == after:
        return []
    return [(i, new) for i, (old, new) in enumerate(zip(before, after, strict=True)) if new != old]


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
