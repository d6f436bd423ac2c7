"""What every adapter does, written once: the step, the saved envelope, the lr count, the settings.

An adapter locates the lrs in its framework and hands them here; nothing in this
module imports a framework. Its step is always the same three moves (the core's
ownership rule, "Who owns the learning rates" in ``plateau._core``): read the lrs
the framework holds, :func:`plateau.step` with them, write back the ones that
changed -- :func:`advance`. The state then records what the framework stored,
which a float32 or bfloat16 lr rounds.

Example:
    >>> import plateau
    >>> config = plateau.PlateauConfig(patience=0)
    >>> held = [1.0]
    >>> def write(i, lr):
    ...     held[i] = lr
    ...     return lr
    >>> state = plateau.init(held, config)
    >>> for metric in [1.0, 2.0]:
    ...     state = advance(state, metric, config, lambda: tuple(held), write)
    >>> held, state.decision.value
    ([0.1], 'reduced')
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any, SupportsFloat, TypeVar

import attrs

import plateau
from plateau import Decision, PlateauConfig, PlateauState, changed
from plateau._checks import got, show
from plateau._ops import FLOATS, Ops

Read = Callable[[], tuple[float, ...]]
Init = TypeVar("Init", bound=Callable[..., None])
Write = Callable[[int, float], float]

_CUTS = (Decision.REDUCED, Decision.AT_FLOOR)
_PACKAGE = os.path.dirname(plateau.__file__) + os.sep


def advance(
    state: PlateauState,
    metric: SupportsFloat,
    config: PlateauConfig,
    read: Read,
    write: Write,
    *,
    cut: Callable[[list[tuple[int, float]]], None] | None = None,
) -> PlateauState:
    """One step of an adapter: read the lrs, :func:`plateau.step`, write the changed ones.

    `read` gives the lrs the framework holds; ``write(i, lr)`` writes lr `i` and
    returns the float the framework then holds (a float32 or bfloat16 lr rounds).
    The state returned records what was stored. A cut that stored nothing new --
    every changed lr read back as it was, which happens when its dtype cannot hold
    the cut (bfloat16 and ``factor=0.999``) -- is not a reduction: AT_FLOOR, and
    ``num_reductions`` does not count it, as for a cut under ``eps``.

    `cut`, if given, is the framework's own hook for a cut (torch's ``_reduce_lr``,
    which ignite overrides to cut one group): a step whose decision is REDUCED or
    AT_FLOOR calls ``cut(changes)`` instead of `write`, and the state records what
    `read` then gives, by the same rule.

    Raises:
        TypeError, ValueError: what :func:`plateau.step` raises; nothing is written.
    """
    held = read()
    new, lrs = plateau.step(state, metric, config, held)
    if lrs == held and (cut is None or new.decision not in _CUTS):
        return new  # nothing to write: most steps
    changes = changed(held, lrs)
    if cut is not None and new.decision in _CUTS:
        cut(changes)
        stored = read()
    else:
        kept = list(lrs)
        for i, lr in changes:
            kept[i] = write(i, lr)
        stored = tuple(kept)
    if stored == lrs:  # stored as decided (the common case): the state is the core's
        return new
    decision, reductions = record_stored(FLOATS, new.decision, new.num_reductions, held, stored)
    return attrs.evolve(new, lrs=stored, decision=decision, num_reductions=reductions)


def record_stored(ops: Ops, decision: Any, reductions: Any, held: Any, stored: Any) -> Any:
    """A step's decision and num_reductions, as the lrs the framework `stored` say.

    A cut that stored nothing new (each lr read back as `held`: its dtype cannot
    hold the cut) is AT_FLOOR and not counted, as a cut under eps; a cut that
    stored something is REDUCED; any other decision stands. Written over
    :class:`plateau._ops.Ops` for the host adapters' floats and the capturable
    torch step's tensors.

    Example:
        >>> from plateau._ops import FLOATS
        >>> record_stored(FLOATS, Decision.REDUCED, 1, (0.5,), (0.5,))  # bfloat16 kept 0.5
        (<Decision.AT_FLOOR: 'at_floor'>, 0)
    """
    reduced, at_floor = ops.decision((Decision.REDUCED,)), ops.decision((Decision.AT_FLOOR,))
    counted, moved = decision == reduced, ops.any_differ(stored, held)
    before = ops.select(counted, reductions - 1, reductions)  # the count without this cut
    return ops.select(
        counted | (decision == at_floor),
        (ops.select(moved, reduced, at_floor), before + moved),
        (decision, reductions),
    )


def saved(config: PlateauConfig, state: PlateauState) -> dict[str, Any]:
    """The envelope every adapter saves: ``{"config": ..., "state": ...}``, strict JSON.

    Example:
        >>> config = plateau.PlateauConfig()
        >>> sorted(saved(config, plateau.init(0.1, config)))
        ['config', 'state']
    """
    return {"config": config.to_dict(), "state": state.to_dict()}


def load_saved(d: object, name: str = "d") -> tuple[PlateauConfig, PlateauState]:
    """The config and state of :func:`saved`'s envelope `d` (other keys are the caller's).

    Raises:
        TypeError: `d` is not a mapping, or a field has the wrong type.
        ValueError: no "config" or "state" key, or a bad field; each message names
            the key, prefixed by `name` (``state_dict['config']: ...``).

    Example:
        >>> config = plateau.PlateauConfig(patience=3)
        >>> load_saved(saved(config, plateau.init(0.1, config)))[0].patience
        3
    """
    if not isinstance(d, Mapping):
        raise TypeError(f"'{name}' must be a dict, got {got(d)}")
    for key in ("config", "state"):
        if key not in d:
            raise ValueError(f"'{name}' must have the keys ['config', 'state'], got no {key!r}")
    loaded: list[Any] = []
    for key, kind in (("config", PlateauConfig), ("state", PlateauState)):
        try:
            loaded.append(kind.from_dict(d[key]))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}[{key!r}]: {exc}") from None
    return loaded[0], loaded[1]


def unset_best(config: PlateauConfig) -> float:
    """The best a state holds before any metric: inf in min mode, -inf in max mode.

    Example:
        >>> unset_best(plateau.PlateauConfig(mode="max"))
        -inf
    """
    return math.inf if config.mode == "min" else -math.inf


def check_count(state: PlateauState, count: int, holder: str, unit: str) -> None:
    """Refuse a `state` whose lrs are not `count`, the `unit` `holder` has (one lr each).

    Example:
        >>> config = plateau.PlateauConfig()
        >>> check_count(plateau.init([0.1, 0.2], config), 1, "the optimizer", "param groups")
        Traceback (most recent call last):
        ...
        ValueError: the saved state holds 2 lrs but the optimizer has 1 param groups
    """
    if len(state.lrs) != count:
        raise ValueError(
            f"the saved state holds {len(state.lrs)} lrs but {holder} has {count} {unit}"
        )


def config_parameters(skip: Collection[str] = ()) -> list[inspect.Parameter]:
    """A keyword-only parameter for each :class:`plateau.PlateauConfig` field not in `skip`.

    The one mapping of settings to constructor keywords: an adapter whose
    constructor takes ``**settings`` publishes these in its signature (where
    LightningCLI and ``inspect.signature`` read them) and builds its config with
    :func:`make_config`, so a field added to PlateauConfig is a keyword at once.

    Example:
        >>> [p.name for p in config_parameters(skip=("mode", "factor"))][:2]
        ['patience', 'threshold']
    """
    attrs.resolve_types(PlateauConfig)  # its annotations are strings (PEP 563)
    return [
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type
        )
        for f in attrs.fields(PlateauConfig)
        if f.init and f.name not in skip
    ]


def make_config(settings: Mapping[str, Any], config: object = None) -> PlateauConfig:
    """The :class:`plateau.PlateauConfig` of a constructor's `settings`, or its `config=`.

    `settings` are the config's fields by name, as the constructor got them. With
    `config`, the settings must all be left at their defaults: the config is
    the whole setting (the two are not merged, so nothing given is silently lost).

    Raises:
        TypeError: an unknown setting, a PlateauConfig passed as a setting, `config`
            not a PlateauConfig, or settings given beside it.
        ValueError: a bad value, named by :class:`plateau.PlateauConfig`.

    Example:
        >>> make_config({"patience": 2}).patience
        2
        >>> make_config({"patience": 10}, plateau.PlateauConfig(patience=3)).patience
        3
    """
    fields = {f.name: f for f in attrs.fields(PlateauConfig) if f.init}
    for name, value in settings.items():
        if isinstance(value, PlateauConfig):
            raise TypeError(
                f"'{name}' got a PlateauConfig: pass it as config=..., which takes the "
                "whole config (the positional arguments are torch's: mode, factor, ...)"
            )
        if name not in fields:
            raise TypeError(f"unknown setting {name!r}: the settings are {sorted(fields)}")
    if config is None:
        return PlateauConfig(**settings)
    if not isinstance(config, PlateauConfig):
        raise TypeError(f"'config' must be a plateau.PlateauConfig, got {got(config)}")
    given = [name for name, value in settings.items() if not _is_default(fields[name], value)]
    if given:
        raise TypeError(
            f"config= is the whole config, but {given} were given too "
            f"({', '.join(f'{n}={show(settings[n])}' for n in given)}): set them in the "
            "PlateauConfig instead"
        )
    return config


def _is_default(field: attrs.Attribute[Any], value: object) -> bool:
    default = field.default
    return type(value) is type(default) and value == default


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` at the user's line: the first frame outside the plateau package.

    Wherever in plateau a warning is raised, it names the line that called into
    plateau (the training loop's ``scheduler.step()``), as a framework's own
    warning does; no stacklevel is counted by hand.
    """
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def begin(config: PlateauConfig, read: Read, write: Write) -> PlateauState:
    """:func:`plateau.init` from the lrs `read` gives, writing the lrs it starts at.

    A warmup starts each lr at ``lr * warmup_start_factor``: ``write(i, lr)``
    writes it, as in :func:`advance`, and the state records what was stored.
    Without a warmup nothing is written.

    Example:
        >>> config = plateau.PlateauConfig(warmup_epochs=2, warmup_start_factor=0.5)
        >>> begin(config, lambda: (0.5,), lambda i, lr: lr).lrs
        (0.25,)
    """
    held = read()
    state = plateau.init(held, config)
    stored = list(state.lrs)
    for i, lr in changed(held, state.lrs):
        stored[i] = write(i, lr)
    return state if tuple(stored) == state.lrs else attrs.evolve(state, lrs=tuple(stored))


def publish_settings(init: Init, skip: Collection[str] = ()) -> Init:
    """`init` with its ``**settings`` shown as one keyword per PlateauConfig field.

    For a constructor that takes the settings as ``**settings`` (and builds its config
    with :func:`make_config`): ``inspect.signature``, LightningCLI and an IDE then see
    each field not in `skip` and not already a parameter, after its own parameters.
    A call, or a decorator (``@publish_settings``).
    """
    signature = inspect.signature(init)
    explicit = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    more = config_parameters(skip=[*skip, *(p.name for p in explicit)])
    init.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*explicit, *more]
    )
    return init


def check_same_config(saved: PlateauConfig, expected: PlateauConfig, name: str, whose: str) -> None:
    """Refuse a saved config that differs from `expected`, naming each field that differs.

    Example:
        >>> check_same_config(PlateauConfig(patience=2), PlateauConfig(), "d['config']", "this")
        Traceback (most recent call last):
        ...
        ValueError: d['config'] differs from this config: patience=2 (this: 10)
    """
    if saved != expected:
        differ = ", ".join(
            f"{f.name}={show(getattr(saved, f.name))} ({whose}: {show(getattr(expected, f.name))})"
            for f in attrs.fields(PlateauConfig)
            if getattr(saved, f.name) != getattr(expected, f.name)
        )
        raise ValueError(f"{name} differs from {whose} config: {differ}")
