"""Torch's ReduceLROnPlateau surface over plateau's config and state, without torch.

Everything :mod:`plateau.adapters.torch` needs that no framework does: the
checkpoint format (:func:`state_dict` writes it, :func:`load_state` decides which
saved state wins, :func:`saved_base` validates a base's entry), torch's attribute
names (:class:`TorchSurface`), the checks of the adapter's own arguments, and its
refusals and warnings, decided from plain numbers. ``import plateau`` does not
import this module: the adapter does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ._checks import check_bool, check_int, check_non_negative, got, show, show_keys, within
from ._config import PlateauConfig
from ._core import Decision, PlateauState, scale_base

# The progress every torch (2.6-2.13) ReduceLROnPlateau.state_dict() holds.
PROGRESS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")
REPEATS = ("warn", "skip", "allow")
# The config torch's state_dict() holds under its own names (min_lrs and default_min_lr aside).
_TORCH_CONFIG = ("factor", "patience", "cooldown", "eps", "mode", "threshold", "threshold_mode")


class _Field:
    """Torch's name for a config or state field, read from it and written through.

    Assigning replaces the config or state by a validated copy with the new value;
    nothing changes on error.
    """

    def __init__(self, source: Literal["config", "state"]) -> None:
        self.source = source

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        return self if obj is None else getattr(getattr(obj, self.source), self.name)

    def __set__(self, obj: TorchSurface, value: object) -> None:
        new = attrs.evolve(getattr(obj, self.source), **{self.name: value})
        if self.name == "mode":
            check_mode("'mode' was assigned", value, obj.config.mode, obj.state.best)
        setattr(obj, self.source, new)


class TorchSurface:
    """Torch's ReduceLROnPlateau attributes, reading ``config`` and ``state``.

    ``factor``, ``patience``, ``threshold``, ``threshold_mode``, ``cooldown``,
    ``eps`` and ``min_lrs`` replace the config by a validated copy; ``best``,
    ``num_bad_epochs``, ``cooldown_counter`` and ``last_epoch`` the state (timm and
    ignite write them). ``mode``, ``default_min_lr`` and ``mode_worse`` take only
    their current value. A subclass sets ``_config``, ``state`` and ``optimizer``
    (anything with ``param_groups``).

    Example:
        >>> from types import SimpleNamespace
        >>> import plateau
        >>> surface = TorchSurface()
        >>> surface._config = plateau.PlateauConfig(min_lr=0.01)
        >>> surface.state = plateau.init([1.0, 0.5], surface._config)
        >>> surface.optimizer = SimpleNamespace(param_groups=[{}, {}])
        >>> surface.patience = 3
        >>> surface.config.patience, surface.min_lrs, surface.mode_worse
        (3, [0.01, 0.01], inf)
    """

    _config: PlateauConfig
    state: PlateauState
    optimizer: Any

    mode = _Field("config")
    factor = _Field("config")
    patience = _Field("config")
    threshold = _Field("config")
    threshold_mode = _Field("config")
    cooldown = _Field("config")
    eps = _Field("config")
    best = _Field("state")
    num_bad_epochs = _Field("state")
    cooldown_counter = _Field("state")
    last_epoch = _Field("state")

    @property
    def config(self) -> PlateauConfig:
        """The :class:`plateau.PlateauConfig`; assigning one checks it against this run.

        Raises:
            TypeError: not a PlateauConfig.
            ValueError: another ``mode`` (``best`` would be meaningless), or a per-group
                ``min_lr`` without one value per param group. Nothing changes on error.
        """
        return self._config

    @config.setter
    def config(self, config: PlateauConfig) -> None:
        if not isinstance(config, PlateauConfig):
            raise TypeError(
                f"'config' must be a plateau.PlateauConfig, got {got(config)}; "
                "build one with attrs.evolve(scheduler.config, ...)"
            )
        check_mode("'config' has", config.mode, self._config.mode, self.state.best)
        config.min_lrs(len(self.optimizer.param_groups))
        self._config = config

    @property
    def min_lrs(self) -> list[float]:
        """Torch's ``min_lrs``: the floor of each param group; assigning sets one per group."""
        return list(self._config.min_lrs(len(self.state.lrs)))

    @min_lrs.setter
    def min_lrs(self, value: Sequence[float]) -> None:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise TypeError(f"'min_lrs' must be a list, one lr per param group, got {got(value)}")
        new = attrs.evolve(self._config, min_lr=tuple(value))
        # Torch's default_min_lr stays for groups added later: a list of it changes nothing.
        if self.default_min_lr is None or set(new.min_lrs(len(value))) != {self.default_min_lr}:
            self.config = new

    @property
    def default_min_lr(self) -> float | None:
        """Torch's ``default_min_lr``: the scalar ``min_lr``, or None when it is per group."""
        return default_min_lr(self._config)

    @default_min_lr.setter
    def default_min_lr(self, value: float | None) -> None:
        check_unchanged("default_min_lr", value, self.default_min_lr, "min_lrs or the config")

    @property
    def mode_worse(self) -> float:
        """Torch's ``mode_worse``: the initial best, inf in min mode and -inf in max mode."""
        return math.inf if self._config.mode == "min" else -math.inf

    @mode_worse.setter
    def mode_worse(self, value: float) -> None:
        check_unchanged("mode_worse", value, self.mode_worse, "nothing: it follows the mode")

    @property
    def in_cooldown(self) -> bool:
        """Torch's ``in_cooldown``: whether bad epochs are currently not counted."""
        return self.state.cooldown_counter > 0

    @property
    def exhausted(self) -> bool:
        """The stop signal, :attr:`plateau.PlateauState.exhausted` of the last step.

        True when that step exceeded patience with nothing left to cut: every lr at
        its floor (or each cut <= eps), or ``max_reductions`` reached. A loop can stop
        on it; in Lightning, override ``lr_scheduler_step`` (docs/semantics.md).
        """
        return self.state.exhausted


def default_min_lr(config: PlateauConfig) -> float | None:
    """Torch's ``default_min_lr`` of `config`: its scalar ``min_lr``, or None per group."""
    return None if isinstance(config.min_lr, tuple) else config.min_lr


def check_options(
    sync_metric: object,
    on_repeat: object,
    base_with_metric: object,
    base: object,
    last_epoch: object,
) -> int:
    """The adapter's own arguments checked; the ``last_epoch`` a new run starts at.

    Example:
        >>> check_options(False, "warn", False, None, -1)  # the defaults
        0
    """
    check_bool("sync_metric", sync_metric)
    if not isinstance(on_repeat, str) or on_repeat not in REPEATS:
        error = ValueError if isinstance(on_repeat, str) else TypeError
        raise error(f"'on_repeat' must be one of {REPEATS}, got {got(on_repeat)}")
    check_bool("base_with_metric", base_with_metric)
    if base_with_metric and base is None:
        raise ValueError("'base_with_metric' is True but there is no 'base' to advance")
    return check_int("last_epoch", last_epoch, minimum=-1) + 1


def warn_verbose(verbose: object, stacklevel: int) -> None:
    """Torch < 2.7's ``verbose``: ignored, with a warning when given."""
    if verbose != "deprecated":
        warnings.warn(
            "The verbose parameter is deprecated (torch removed it in 2.7); it is ignored. "
            "Use get_last_lr() or scheduler.state.decision.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def skip_repeat(on_repeat: str, stacklevel: int) -> bool:
    """``on_repeat`` for a step() with no optimizer step since the last one: True to skip it."""
    if on_repeat == "skip":
        return True
    if on_repeat == "warn":
        warnings.warn(
            "ReduceLROnPlateau.step() was called again with no optimizer step since its "
            "last call; it counts as another epoch, as in torch. A prepared accelerate "
            "scheduler steps once per process: see docs/compatibility.md. Pass "
            "on_repeat='skip' to ignore such calls, or on_repeat='allow' to silence this.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
    return False


def at_epoch(state: PlateauState, epoch: int, stacklevel: int) -> PlateauState:
    """Torch's deprecated ``step(metric, epoch)``: `state` at ``last_epoch=epoch``, warned."""
    warnings.warn(
        "The epoch argument of ReduceLROnPlateau.step() is deprecated (as in "
        "torch); it only sets state.last_epoch",
        UserWarning,
        stacklevel=stacklevel + 1,
    )
    return attrs.evolve(state, last_epoch=epoch)


def required(metrics: Any) -> Any:
    """`metrics` unless it is None: a step() with no metric and no base."""
    if metrics is None:
        raise TypeError(
            f"'metric' must be a single real number, got {got(metrics)}: step() with no "
            "metric advances a base schedule, and this scheduler has no base="
        )
    return metrics


def after_cut(
    state: PlateauState, read: tuple[float, ...], held: tuple[float, ...]
) -> PlateauState:
    """`state` once the optimizer holds `held` after the cut decided from `read`.

    An override of ``_reduce_lr`` (ignite's cuts one group) or a float32 tensor's
    rounding leaves other lrs than the core decided: the state records what the
    optimizer holds, REDUCED if any lr moved from `read`, else AT_FLOOR.

    Example:
        >>> cut = PlateauState(lrs=(0.1, 0.1), best=1.0, decision=Decision.REDUCED)
        >>> after_cut(cut, (1.0, 1.0), (1.0, 1.0)).decision.value
        'at_floor'
    """
    decision = Decision.REDUCED if held != read else Decision.AT_FLOOR
    return attrs.evolve(state, lrs=held, decision=decision)


def check_base_step(
    groups: int,
    built_for: int,
    base: str,
    *,
    with_metric: bool,
    epoch: object,
    base_with_metric: bool,
) -> None:
    """Refuse a step over a base: `with_metric` is step(metric), else step() advancing it.

    Raises:
        ValueError: a param group joined; ``step()`` under ``base_with_metric=True``.
        TypeError: ``step(epoch=...)`` with no metric.
    """
    if groups != built_for:
        raise ValueError(
            f"the optimizer has {groups} param groups but the base schedule {base} was "
            f"built for {built_for}; a param group cannot join a base schedule mid-run"
        )
    if with_metric:
        return
    if epoch is not None:
        raise TypeError(
            "'epoch' goes with a metric: step() with no metric advances the base "
            f"and takes no 'epoch', got epoch={got(epoch)}"
        )
    if base_with_metric:
        raise ValueError(
            "step() with no metric would advance the base a second time: with "
            "base_with_metric=True each step(metric) advances it"
        )


def check_untouched(base: str, base_steps: int, expected: int | None) -> None:
    """Refuse a base whose ``last_epoch`` is not `expected`, the one after the last write.

    Raises:
        ValueError: the base was stepped outside: it then computed its lrs from the
            scaled ones, and would apply the cut twice from then on.
    """
    if expected is not None and base_steps != expected:
        raise ValueError(
            f"the base schedule {base} was stepped outside this scheduler (its "
            f"last_epoch is {base_steps}, {expected} after the last step()): it then "
            "computes from the plateau's scaled lrs and cuts them twice. Call "
            "scheduler.step() instead of the base's step() (and do not hand the base "
            "to a trainer as a scheduler of its own)"
        )


def warn_overwritten(held: Sequence[float], written: Sequence[float], stacklevel: int) -> None:
    """Warn of an lr set by hand over a base: `held` is not what was `written`."""
    if held != written:
        i = next(i for i, (a, b) in enumerate(zip(held, written, strict=True)) if a != b)
        warnings.warn(
            f"optimizer.param_groups[{i}]['lr'] was set to {held[i]!r} since the last "
            f"step(), which wrote {written[i]!r}: with a base schedule the scheduler "
            "writes every lr at each step, so it is overwritten (the base steps from "
            "its own lrs). To change the lrs, change the base schedule.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def check_scheduler(base: str, is_plateau: bool, on_optimizer: bool) -> None:
    """Refuse a torch scheduler as the base: a plateau, or one on another optimizer."""
    if is_plateau:
        raise TypeError(
            f"'base' must be a schedule the plateau scales (CosineAnnealingLR, LinearLR, "
            f"an lr_lambda, ...), got a {base}: a plateau cannot be a base; "
            "pass its arguments to this scheduler instead"
        )
    if not on_optimizer:
        raise ValueError(
            f"'base' must be a scheduler on this optimizer, got a {base} built on another one"
        )


def lambdas(base: object, groups: int) -> Any:
    """`base` as LambdaLR's ``lr_lambda``: one callable, or a list of one per group.

    Raises:
        TypeError: neither (the message also offers a torch scheduler).
        ValueError: a list of another length than `groups`.
    """
    if callable(base):
        return base
    if (
        isinstance(base, Sequence)
        and not isinstance(base, (str, bytes))
        and base
        and all(callable(f) for f in base)
    ):
        if len(base) != groups:
            raise ValueError(
                f"'base' must hold one lr_lambda per param group ({groups}), got {len(base)}"
            )
        return list(base)
    raise TypeError(
        "'base' must be a torch LRScheduler on this optimizer, an lr_lambda or a list "
        f"of them (one per param group), got {got(base)}"
    )


def lr_error(name: str, what: str) -> TypeError:
    """The error for a param group's lr (`name`) that is not a number: `what` it was."""
    return TypeError(f"{name} must be a real number or a one-element real tensor, got {what}")


def check_lr(name: str, lr: object) -> float:
    """A param group's lr (`name`) as a finite float >= 0, or a TypeError / ValueError.

    Example:
        >>> check_lr("optimizer.param_groups[0]['lr']", 0.1)
        0.1
    """
    try:
        return check_non_negative(name, lr)
    except TypeError:
        raise lr_error(name, got(lr)) from None


def initial_lr_of(index: int, group: Mapping[str, Any], default_to_lr: bool) -> object:
    """A group's ``initial_lr`` as it is set (its lr if `default_to_lr` and none is set).

    Raises:
        ValueError: no ``initial_lr`` (and not `default_to_lr`), naming the group.
    """
    if default_to_lr and "initial_lr" not in group:
        return group.get("lr")
    if "initial_lr" not in group:
        raise ValueError(
            f"optimizer.param_groups[{index}] has no 'initial_lr', which a torch "
            "scheduler sets: build the base schedule on this optimizer first"
        )
    return group["initial_lr"]


def check_reference(index: int, value: float) -> float:
    """`value`, a group's ``initial_lr``, if it is > 0: the plateau divides by it."""
    if not value > 0.0:
        raise ValueError(
            f"optimizer.param_groups[{index}]['initial_lr'] must be > 0 under a base "
            f"schedule (the plateau scales the base by lr / initial_lr), got {value!r}"
        )
    return value


def check_mode(what: str, mode: object, current: str, best: float) -> None:
    """Refuse another mode than `current`: `best` would not carry over."""
    if not isinstance(mode, str):
        raise TypeError(f"{what} 'mode' not a str: {got(mode)}")
    if mode != current:
        raise ValueError(
            f"{what} mode={show(mode)} but this scheduler has mode={current!r}; its best "
            f"({best!r}) cannot carry over: build a new scheduler to change the mode"
        )


def check_unchanged(name: str, value: object, current: object, instead: str) -> None:
    """Torch's derived attributes: a write of the current value (a restore) is accepted."""
    try:
        same = bool(value == current)
    except Exception:  # an array's == is elementwise: not the current value
        same = False
    if not same:
        raise ValueError(
            f"'{name}' follows scheduler.config and can only be assigned its current value "
            f"{current!r}, got {show(value)}; to change the schedule, assign {instead}"
        )


def state_dict(
    config: PlateauConfig,
    state: PlateauState,
    base: tuple[str, Mapping[str, Any], Sequence[float], Sequence[float]] | None = None,
) -> dict[str, Any]:
    """``config`` and ``state``, plus torch's own keys: both classes can resume from it.

    Plain values only, so strict JSON takes it: an infinite best is left out of
    torch's keys (a new torch scheduler starts there) and is "inf" in ``state``.
    `base`: the base's class name, ``state_dict()``, reference and the lrs last
    written (then ``_last_lr``).

    Example:
        >>> import plateau
        >>> config = plateau.PlateauConfig()
        >>> saved = state_dict(config, plateau.init(0.1, config))
        >>> saved["state"]["best"], saved["num_bad_epochs"], "best" in saved
        ('inf', 0, False)
    """
    torch_keys: dict[str, Any] = {name: getattr(config, name) for name in _TORCH_CONFIG}
    torch_keys.update(
        min_lrs=list(config.min_lrs(len(state.lrs))), default_min_lr=default_min_lr(config)
    )
    torch_keys.update({key: getattr(state, key) for key in PROGRESS}, _last_lr=[*state.lrs])
    if not math.isfinite(state.best):
        del torch_keys["best"]
    saved = {"config": config.to_dict(), "state": state.to_dict(), **torch_keys}
    if base is not None:
        name, base_state, reference, written = base
        saved["_last_lr"] = [*written]
        saved["base"] = {"state_dict": base_state, "reference": [*reference], "type": name}
    return saved


def load_state(
    saved: object,
    config: PlateauConfig,
    groups: int,
    read_lrs: Callable[[], tuple[float, ...]],
    base: str | None = None,
) -> PlateauState:
    """The state a checkpoint resumes: plateau's ``state``, or torch's keys if they moved.

    Torch's class keeps plateau's keys when it loads a checkpoint: its own keys
    differing from ``state`` say it stepped since, and then they win, with the lrs
    `read_lrs` gives (the optimizer's). `base`: this scheduler's base class name.

    Raises:
        TypeError: `saved` is not a mapping, or a field has the wrong type.
        ValueError: neither format, a bad value, another mode, not `groups` lrs, a
            per-group min_lr that does not fit, or a base in only one of the
            checkpoint and this scheduler (or torch's class stepped over a base).

    Example:
        >>> import plateau
        >>> config = plateau.PlateauConfig()
        >>> saved = state_dict(config, plateau.init(0.1, config))
        >>> saved.update(num_bad_epochs=2, best=0.5)  # torch's class stepped since
        >>> load_state(saved, config, 1, lambda: (0.1,)).num_bad_epochs
        2
    """
    if not isinstance(saved, Mapping):
        raise TypeError(f"'state_dict' must be a dict, got {got(saved)}")
    keys = set(saved)
    if (base is None) is ("base" in keys):
        raise ValueError(
            "'state_dict' was saved with a base schedule: build this scheduler with "
            "base= to resume it"
            if base is None
            else "'state_dict' was saved without a base schedule, and this scheduler "
            f"has one ({base}); its lrs would mean another thing"
        )
    # torch's progress keys, validated before anything compares them (an array's
    # == is elementwise); their lrs are the optimizer's, read only if they win.
    theirs: PlateauState | None = None
    if keys.issuperset(("mode", *PROGRESS)):
        with within("state_dict"):
            theirs = PlateauState(lrs=(0.0,), **{key: saved[key] for key in PROGRESS})
    state: PlateauState | None = None
    if {"config", "state"} <= keys:
        with within("state_dict['config']"):
            saved_mode: object = PlateauConfig.from_dict(saved["config"]).mode
        with within("state_dict['state']"):
            state = PlateauState.from_dict(saved["state"])
        ours = tuple(getattr(state, key) for key in PROGRESS)
        if theirs is not None and ours != tuple(getattr(theirs, key) for key in PROGRESS):
            state = None
    elif theirs is None:
        raise ValueError(
            "'state_dict' must come from state_dict() of plateau's ReduceLROnPlateau "
            "(keys including ['config', 'state']) or of torch's (keys including "
            f"{sorted(('mode', *PROGRESS))}), got keys {show_keys(keys)}"
        )
    if state is None:
        assert theirs is not None
        if base is not None:
            raise ValueError(
                "'state_dict' holds a base schedule, but torch's ReduceLROnPlateau "
                "has stepped since it was saved (its keys differ from 'state'): its "
                "lrs are not the plateau's, so it cannot resume over a base"
            )
        saved_mode = saved["mode"]
        state = attrs.evolve(theirs, lrs=read_lrs())
    check_mode("the checkpoint was saved with", saved_mode, config.mode, state.best)
    if len(state.lrs) != groups:
        raise ValueError(
            f"the checkpoint holds {len(state.lrs)} lrs but the optimizer has {groups} param groups"
        )
    config.min_lrs(len(state.lrs))
    return state


def saved_base(
    saved: object, base: str, count: int, state: PlateauState, current: Sequence[float]
) -> tuple[dict[str, Any], tuple[float, ...]]:
    """A checkpoint's ``base`` entry, validated: the base's state_dict and the reference.

    `base` is this scheduler's base class name, and `current` its last lrs, which a
    saved ``_last_lr`` replaces: :func:`plateau.scale_base` must then take them with
    `state`, the state resumed. ``type`` (the saved base's) is optional: checkpoints
    written before it lack it.

    Example:
        >>> import plateau
        >>> state = plateau.init(0.1, plateau.PlateauConfig())
        >>> saved = {"state_dict": {"last_epoch": 3}, "reference": [0.1]}
        >>> saved_base(saved, "LambdaLR", 1, state, [0.05])
        ({'last_epoch': 3}, (0.1,))
    """
    keys = {"state_dict", "reference"}
    if not isinstance(saved, Mapping) or not keys <= set(saved) <= keys | {"type"}:
        raise ValueError(
            "state_dict['base'] must be a dict with keys ['reference', 'state_dict'] "
            "(and optionally 'type'), got "
            + (f"keys {show_keys(set(saved))}" if isinstance(saved, Mapping) else got(saved))
        )
    base_state, reference = saved["state_dict"], saved["reference"]
    if not isinstance(base_state, Mapping):
        raise TypeError(f"state_dict['base']['state_dict'] must be a dict, got {got(base_state)}")
    saved_type = saved.get("type", base)
    if saved_type != base:
        raise ValueError(
            f"state_dict['base'] was saved from a {show(saved_type)} base, but this "
            f"scheduler's base is a {base}: its state would not fit"
        )
    last = base_state.get("_last_lr")
    if last is not None and (not isinstance(last, Sequence) or len(last) != count):
        raise ValueError(
            f"state_dict['base']['state_dict']['_last_lr'] must hold one lr per param "
            f"group ({count}), got {show(last)}"
        )
    name = "state_dict['base']['reference']"
    if isinstance(reference, (str, bytes)) or not isinstance(reference, Sequence):
        raise TypeError(f"{name} must be a list, one lr per param group, got {got(reference)}")
    if len(reference) != count:
        raise ValueError(f"{name} holds {len(reference)} lrs but the optimizer has {count} groups")
    checked = tuple(check_non_negative(f"{name}[{i}]", r) for i, r in enumerate(reference))
    for i, r in enumerate(checked):
        if not r > 0.0:
            raise ValueError(f"{name}[{i}] must be > 0, got {r!r}")
    scale_base(state, base_state.get("_last_lr", current), checked)
    # torch's load_state_dict pops and restores keys of the dict it is given: a copy.
    return dict(base_state), checked
