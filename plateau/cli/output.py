"""The command's outputs: an aligned table for people, CSV and JSON for programs.

Each writer takes the replay's rows one at a time. CSV and JSON write each row as
it comes and keep nothing; the table needs every row's width before it prints
the first, so it keeps the formatted cells (and nothing else).

CSV and JSON carry the core's exact numbers: floats as ``repr``, non-finite ones
as ``nan``, ``inf``, ``-inf`` (in JSON as the strings ``"nan"``, ``"inf"`` and
``"-inf"``, as ``PlateauState.to_dict`` writes them, so that the JSON is strict).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from typing import TextIO

from .replay import MetricLog, ReplayRow, Run, cut, describe, start_lrs

# Rows are written in batches: one write call per row would cost more than the row.
_BATCH = 4096


def lr_names(runs: Sequence[Run], count: int) -> list[list[str]]:
    """Each run's lr column names: lr / lr_0, lr_1, ... and, comparing, [label]."""
    names = ["lr"] if count == 1 else [f"lr_{i}" for i in range(count)]
    if len(runs) == 1:
        return [names]
    return [[f"{name}[{run.label}]" for name in names] for run in runs]


def header(runs: Sequence[Run], count: int, index_name: str = "epoch") -> list[str]:
    """The output's column names.

    One run: epoch (or step, row), metric, best, num_bad_epochs, cooldown_counter,
    decision, lr(s). Several (--compare): epoch, metric, then each run's lr(s).

    Example:
        >>> from plateau import PlateauConfig
        >>> header([Run("base", PlateauConfig())], 2)[-3:]
        ['decision', 'lr_0', 'lr_1']
    """
    names = [index_name, "metric"]
    if len(runs) == 1:
        names += ["best", "num_bad_epochs", "cooldown_counter", "decision"]
    for run_names in lr_names(runs, count):
        names += run_names
    return names


def _values(row: ReplayRow, single: bool) -> list[object]:
    """A row's values, in header order, as the core computed them."""
    epoch, metric, states = row
    values: list[object] = [epoch, metric]
    if single:
        (state,) = states
        values += [state.best, state.num_bad_epochs, state.cooldown_counter, state.decision.value]
    for state in states:
        values += state.lrs
    return values


def write_csv(
    out: TextIO,
    log: MetricLog,
    runs: Sequence[Run],
    lrs: tuple[float, ...],
    rows: Iterable[ReplayRow],
) -> None:
    """CSV with a header; floats as ``repr`` (exact, and ``nan``/``inf`` for non-finite)."""
    # Labels may hold commas (patience=10,factor=0.5): the header goes through csv.
    csv.writer(out, lineterminator="\n").writerow(header(runs, len(lrs), log.index_name))
    # No value of a row needs quoting: numbers, and decisions that are plain words.
    # The f-strings are the hot loop of a long log: a row is formatted in one go.
    batch: list[str] = []
    add = batch.append
    if len(runs) == 1:
        # repr of a float is the dearest part of a row: best and the lrs change
        # rarely (and best, when it does, to the metric), so their text is reused.
        best: object = None
        lrs_now: object = None
        best_text = lr_text = ""
        for epoch, metric, (state,) in rows:
            metric_text = repr(metric)
            if state.best is not best:
                best = state.best
                best_text = metric_text if best is metric else repr(best)
            if state.lrs is not lrs_now:
                lrs_now = state.lrs
                lr_text = ",".join(map(repr, state.lrs))
            add(
                f"{epoch},{metric_text},{best_text},{state.num_bad_epochs},"
                f"{state.cooldown_counter},{state.decision._value_},{lr_text}\n"
            )
            if len(batch) == _BATCH:
                out.write("".join(batch))
                batch.clear()
    else:
        for epoch, metric, states in rows:
            lr_text = ",".join(repr(lr) for state in states for lr in state.lrs)
            add(f"{epoch},{metric!r},{lr_text}\n")
            if len(batch) == _BATCH:
                out.write("".join(batch))
                batch.clear()
    out.write("".join(batch))


def _json_value(value: object) -> object:
    # Strict JSON has no nan/inf; write them as PlateauState.to_dict writes best.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(
    out: TextIO,
    log: MetricLog,
    runs: Sequence[Run],
    lrs: tuple[float, ...],
    rows: Iterable[ReplayRow],
) -> None:
    """Strict JSON: the log, the configs (``PlateauConfig.to_dict``) and the rows.

    The text is what ``json.dumps`` writes for the whole document, with ``rows``
    last; it is written row by row.
    """
    document = {
        "log": log.source,
        "column": log.column,
        "index": log.index_name,
        "superseded": log.superseded,
        "lrs": list(lrs),
        "configs": {run.label: run.config.to_dict() for run in runs},
    }
    names = header(runs, len(lrs), log.index_name)
    single = len(runs) == 1
    out.write(json.dumps(document, allow_nan=False)[:-1] + ', "rows": [')
    separator = ""
    for row in rows:
        values = {name: _json_value(v) for name, v in zip(names, _values(row, single), strict=True)}
        out.write(separator + json.dumps(values, allow_nan=False))
        separator = ", "
    out.write("]}\n")


def _summary(cut_at: Sequence[int], final: tuple[float, ...], index_name: str) -> str:
    final_text = ", ".join(f"{v:.6g}" for v in final)
    if not cut_at:
        return f"no reduction; final lr {final_text}"
    plural = "s" if len(cut_at) > 1 else ""
    return (
        f"lr cut (*) at {index_name}{plural} {', '.join(map(str, cut_at))}; final lr {final_text}"
    )


def about(log: MetricLog) -> str:
    """The table's first line: what was replayed, and which of its values.

    Example:
        >>> from array import array
        >>> log = MetricLog("metrics.csv", "val_loss", array("d", [1.0, 0.5]), array("q", [0, 1]),
        ...                 "epoch", 3, 2, (0, 1), last_of_epoch=True)
        >>> about(log)[:54]
        'metrics.csv: val_loss, the last value of each epoch: 2'
    """
    count = f"{len(log)} value{'s' if len(log) > 1 else ''}"
    if log.last_of_epoch:
        count = f"the last value of each epoch: {count}"
    elif log.index_name == "step":
        count = f"{count}, one per logged step"
    notes = []
    if log.superseded:
        notes.append(
            f"{log.superseded} earlier value{'s' if log.superseded > 1 else ''} of the same "
            "epoch not replayed: --every-row replays them"
        )
    if log.skipped:
        notes.append(f"{log.skipped} row{'s' if log.skipped > 1 else ''} without it skipped")
    return f"{log.source}: {log.column}, {count}" + (f" ({'; '.join(notes)})" if notes else "")


def write_table(
    out: TextIO,
    log: MetricLog,
    runs: Sequence[Run],
    lrs: tuple[float, ...],
    rows: Iterable[ReplayRow],
) -> None:
    """Aligned columns for people: numbers to 6 significant digits, cut lrs marked ``*``."""
    names = header(runs, len(lrs), log.index_name)
    single = len(runs) == 1
    before = [start_lrs(run, lrs) for run in runs]  # a warmup's first step is no cut
    cut_epochs: list[list[int]] = [[] for _ in runs]
    cells: list[list[str]] = []
    for row in rows:
        epoch, metric, states = row
        line = [str(epoch), f"{metric:.6g}"]
        if single:
            (state,) = states
            line += [
                f"{state.best:.6g}",
                str(state.num_bad_epochs),
                str(state.cooldown_counter),
                state.decision.value,
            ]
        for index, state in enumerate(states):
            marks = cut(before[index], state.lrs)
            if any(marks):
                cut_epochs[index].append(epoch)
            line += [
                f"{lr:.6g}" + (" *" if mark else "  ")
                for lr, mark in zip(state.lrs, marks, strict=True)
            ]
            before[index] = state.lrs
        cells.append(line)
    widths = [max(len(h), *(len(line[c]) for line in cells)) for c, h in enumerate(names)]
    left = names.index("decision") if single else -1

    def render(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if c == left else v.rjust(w)
            for c, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    lr_text = ", ".join(f"{lr:g}" for lr in lrs)
    lines = [about(log)]
    # One config is "config:"; compared configs are named by their labels.
    labels = ["config"] if single else [run.label for run in runs]
    lines += [
        f"{label}: {describe(run.config)}; start lr {lr_text}"
        for label, run in zip(labels, runs, strict=True)
    ]
    lines += ["", render(names)]
    lines += [render(line) for line in cells]
    lines.append("")
    if single:
        lines.append(_summary(cut_epochs[0], before[0], log.index_name))
    else:
        lines += [
            f"{run.label}: {_summary(epochs, final, log.index_name)}"
            for run, epochs, final in zip(runs, cut_epochs, before, strict=True)
        ]
    out.write("\n".join(lines) + "\n")


# Each --format's writer, by name; the first is the default.
WRITERS = {"table": write_table, "csv": write_csv, "json": write_json}
