"""Where ``restore_best=True`` would have rolled the weights back, for ``--restore-best``.

A scheduler built with ``restore_best`` keeps a copy of the weights at each
improvement and puts it back on each cut (docs/restore.md). A replay knows both
from the decisions alone: each REDUCED step restores the weights of the last
IMPROVED step before it. This module watches the replay's rows as they pass to
the table, so the log is still read once, and says after the table where each
roll-back would have happened.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .._core import Decision
from .replay import ReplayRow, Run


class Recording:
    """The replay's rows, passed on unchanged, noting each run's roll-backs on the way.

    Example:
        >>> import plateau
        >>> config = plateau.PlateauConfig(patience=0)
        >>> states = plateau.simulate([3.0, 2.0, 2.5], config)
        >>> rows = [(epoch, 0.0, (state,)) for epoch, state in enumerate(states)]
        >>> recording = Recording(iter(rows), [Run(config, "base")], "epoch")
        >>> _ = list(recording)
        >>> print(recording.summary(), end="")
        restore_best: at epoch 2 back to epoch 1's weights
    """

    def __init__(self, rows: Iterator[ReplayRow], runs: Sequence[Run], index_name: str) -> None:
        self._rows = rows
        self._runs = runs
        self._index_name = index_name
        self._last_best: list[int | None] = [None] * len(runs)
        self._restores: list[list[tuple[int, int]]] = [[] for _ in runs]

    def __iter__(self) -> Iterator[ReplayRow]:
        for row in self._rows:
            epoch, _, states = row
            for run, state in enumerate(states):
                best = self._last_best[run]
                if state.decision is Decision.IMPROVED:
                    self._last_best[run] = epoch
                elif state.decision is Decision.REDUCED and best is not None:
                    self._restores[run].append((epoch, best))
            yield row

    def summary(self) -> str:
        """One line per run: at which epochs each cut would roll back, and to which epoch."""
        name = self._index_name
        lines = []
        for run, restores in zip(self._runs, self._restores, strict=True):
            label = "restore_best" if len(self._runs) == 1 else f"{run.label}: restore_best"
            if not restores:
                lines.append(f"{label}: no cut, nothing restored")
                continue
            (at, best), *rest = restores
            each = [f"at {name} {at} back to {name} {best}'s weights"]
            each += [f"{at} to {best}" for at, best in rest]
            lines.append(f"{label}: {', '.join(each)}")
        return "\n".join(lines) + "\n"
