"""The replay: every config stepped through the log's metrics in lockstep, row by row.

Rows are produced one at a time, so an output that writes each row as it comes
keeps nothing of the replay but the current states.

Example:
    >>> from array import array
    >>> log = MetricLog("log", "val_loss", array("d", [1.0, 0.9, 0.95, 0.95]),
    ...                 array("q", range(4)), "epoch", 0, 0, range(4))
    >>> runs = [Run("base", PlateauConfig(patience=1))]
    >>> [states[0].lrs for _, _, states in replay(log, runs, (1.0,))]
    [(1.0,), (1.0,), (1.0,), (0.1,)]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs

from .._config import PlateauConfig
from .._core import PlateauState, init, step


@attrs.frozen
class MetricLog:
    """The metric sequence read from a log, ready for :func:`plateau.simulate`.

    Attributes:
        source: What was replayed: the file, and the run of a store
            (``mlflow.db, run 3f2a... (brave-owl)``).
        column: The column (tag, key) replayed (``metric`` for bare numbers).
        metrics: One value per replayed row, in log order; may hold nan or inf.
        index: The epoch, step or position shown beside each metric.
        index_name: ``epoch``, ``step``, or ``row`` (a position: the log has neither).
        skipped: Rows without a value in the column.
        superseded: Values replaced by a later one of the same epoch.
        places: Each metric's place in the log, a number for `place`.
        place: How a place is named, ``{}`` for its number (``line {}``).
        warnings: What is worth saying but does not stop the replay.
        last_of_epoch: Only the last value of each epoch was kept.

    Example:
        >>> from array import array
        >>> log = MetricLog("a.json", "metric", array("d", [0.5]), array("q", [0]), "row",
        ...                 0, 0, array("q", [0]), "item {}")
        >>> log.where(0), len(log)
        ('item 0', 1)
    """

    source: str
    column: str
    metrics: Sequence[float]
    index: Sequence[int]
    index_name: str
    skipped: int
    superseded: int
    places: Sequence[int] = attrs.field(repr=False)
    place: str = "line {}"
    warnings: tuple[str, ...] = ()
    last_of_epoch: bool = False

    def where(self, index: int) -> str:
        """The place of metric number `index` in the log."""
        return self.place.format(self.places[index])

    def __len__(self) -> int:
        return len(self.metrics)


BASE_LABEL = "base"

# One replayed row: the epoch (step, row) shown, the metric, and each run's state after it.
ReplayRow = tuple[int, float, tuple[PlateauState, ...]]


@attrs.frozen
class Run:
    """One config replayed over the log.

    Attributes:
        label: ``base`` for the config given by the options, else the --compare text.
        config: The config replayed.
    """

    label: str
    config: PlateauConfig


def replay(log: MetricLog, runs: Sequence[Run], lrs: tuple[float, ...]) -> Iterator[ReplayRow]:
    """Each metric of `log`, with every run's state after stepping on it.

    The states are those :func:`plateau.simulate` returns for each config.
    """
    configs = [run.config for run in runs]
    if len(configs) == 1:
        (config,) = configs
        state = init(lrs, config)
        for epoch, metric in zip(log.index, log.metrics, strict=True):
            state = step(state, metric, config)[0]
            yield epoch, metric, (state,)
        return
    states = [init(lrs, config) for config in configs]
    for epoch, metric in zip(log.index, log.metrics, strict=True):
        states = [
            step(state, metric, config)[0] for state, config in zip(states, configs, strict=True)
        ]
        yield epoch, metric, tuple(states)


def cut(before: tuple[float, ...], after: tuple[float, ...]) -> tuple[bool, ...]:
    """Which lrs a step cut.

    Example:
        >>> cut((1.0, 0.5), (0.1, 0.5))
        (True, False)
    """
    return tuple(new < old for new, old in zip(after, before, strict=True))


def start_lrs(run: Run, lrs: tuple[float, ...]) -> tuple[float, ...]:
    """The lrs before the first step: `lrs`, or where a warmup starts them (lr * factor)."""
    return init(lrs, run.config).lrs


def describe(config: PlateauConfig) -> str:
    """The fields of `config` that differ from PlateauConfig's defaults, as ``key=value``.

    Example:
        >>> describe(PlateauConfig(patience=3, factor=0.5))
        'factor=0.5 patience=3'
        >>> describe(PlateauConfig())
        'defaults'
    """
    fields, defaults = config.to_dict(), PlateauConfig().to_dict()
    changed = [
        f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in fields.items()
        if value != defaults.get(key)
    ]
    return " ".join(changed) or "defaults"
