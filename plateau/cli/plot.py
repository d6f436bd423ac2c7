"""``--plot``: the metric and the lr against epoch, drawn with matplotlib.

matplotlib is imported here, and this module only when ``--plot`` is given, so
the command works without the ``plot`` extra.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._core import PlateauState
from .options import UsageError
from .replay import MetricLog, ReplayRow, Run, cut, describe, start_lrs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOT_EXTRA = "plateau-lr[plot]"


def figure_class(path: str) -> type[Figure]:
    """Import matplotlib's Figure class, after checking that `path` is a file it can write.

    Raises:
        UsageError: no matplotlib, an image type it cannot write, or no such directory.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(f"--plot needs matplotlib; install '{PLOT_EXTRA}'") from None
    target = Path(path)
    supported = Figure().canvas.get_supported_filetypes()
    suffix = target.suffix.lower().lstrip(".")
    if suffix not in supported:
        raise UsageError(
            f"--plot {path!r}: unknown image type {suffix!r}; use one of "
            f"{', '.join(sorted(supported))} (e.g. schedule.png)"
        )
    if not target.parent.is_dir():
        raise UsageError(f"--plot {path!r}: directory {str(target.parent)!r} does not exist")
    # Typed here: without matplotlib's stubs (the core-only checks) Figure is Any.
    figure: type[Figure] = Figure
    return figure


def recording(rows: Iterable[ReplayRow], store: list[list[PlateauState]]) -> Iterator[ReplayRow]:
    """`rows` unchanged, each run's states appended to `store` on the way (for the plot)."""
    for row in rows:
        for run_states, state in zip(store, row[2], strict=True):
            run_states.append(state)
        yield row


def draw(
    figure: type[Figure],
    path: str,
    log: MetricLog,
    runs: Sequence[Run],
    states: Sequence[Sequence[PlateauState]],
    lrs: tuple[float, ...],
    *,
    log_y: bool = False,
) -> None:
    """Metric (left axis; log scale if `log_y`) and lr (right axis, log scale), cuts marked.

    Raises:
        UsageError: the image cannot be written.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    epochs = list(log.index)
    increasing = all(a < b for a, b in itertools.pairwise(epochs))
    x = epochs if increasing else list(range(len(epochs)))
    finite = [m if math.isfinite(m) else math.nan for m in log.metrics]

    fig = figure(figsize=(8, 4.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(x, finite, color="0.25", marker="o", markersize=2.5, linewidth=1, label=log.column)
    best = [s.best if math.isfinite(s.best) else math.nan for s in states[0]]
    best_label = "best" if len(runs) == 1 else f"best ({runs[0].label})"
    ax.plot(x, best, color="0.55", linestyle=":", linewidth=1.2, label=best_label)
    if log_y and all(m > 0 for m in finite if not math.isnan(m)):
        ax.set_yscale("log")
        positive = [m for m in finite if not math.isnan(m)]
        if positive and max(positive) / min(positive) <= 100:
            # A loss curve often spans a decade or so: label 1-2-5 ticks in plain numbers.
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(log.index_name if increasing else "replayed value #")
    ax.set_ylabel(log.column)
    ax.grid(True, which="major", alpha=0.3)

    lr_ax = ax.twinx()
    all_lrs = [lr for run_states in states for state in run_states for lr in state.lrs]
    all_lrs += lrs
    for run_index, (run, run_states) in enumerate(zip(runs, states, strict=True)):
        color = f"C{run_index}"
        previous = [start_lrs(run, lrs), *(state.lrs for state in run_states[:-1])]
        cuts = [cut(b, s.lrs) for b, s in zip(previous, run_states, strict=True)]
        for lr_index in range(len(lrs)):
            values = [state.lrs[lr_index] for state in run_states]
            name = "lr" if len(lrs) == 1 else f"lr_{lr_index}"
            label = name if len(runs) == 1 else f"{name} ({run.label})"
            lr_ax.plot(
                x,
                values,
                drawstyle="steps-post",
                color=color,
                # Configs often agree for a while: later ones are thinner, so shared
                # stretches show every colour instead of only the last one drawn.
                linewidth=max(2.6 - 0.7 * run_index, 0.8),
                linestyle=("-", "--", "-.", ":")[lr_index % 4],
                label=label,
            )
            cut_x = [xi for xi, c in zip(x, cuts, strict=True) if c[lr_index]]
            cut_y = [v for v, c in zip(values, cuts, strict=True) if c[lr_index]]
            first = run_index == 0 and lr_index == 0
            lr_ax.plot(
                cut_x,
                cut_y,
                "v",
                color=color,
                markersize=7,
                label="lr cut" if first else "_nolegend_",
            )
            if len(runs) == 1:
                for xi in cut_x:
                    ax.axvline(xi, color=color, alpha=0.25, linewidth=1)
    if all(lr > 0 for lr in all_lrs):
        lr_ax.set_yscale("log")
    lr_ax.set_ylabel("lr multiplier" if lrs == (1.0,) else "lr")

    handles, labels = ax.get_legend_handles_labels()
    lr_handles, lr_labels = lr_ax.get_legend_handles_labels()
    fig.legend(
        handles + lr_handles,
        labels + lr_labels,
        loc="outside lower center",
        ncols=min(len(labels) + len(lr_labels), 4),
        fontsize=8,
        frameon=False,
    )
    title = f"{log.column} from {Path(log.source).name}: {describe(runs[0].config)}"
    if len(runs) > 1:
        title += "; compared: " + "; ".join(run.label for run in runs[1:])
    ax.set_title(textwrap.shorten(title, 110, placeholder=" ..."), fontsize=9)
    try:
        fig.savefig(path)
    except OSError as exc:
        raise UsageError(f"--plot {path!r}: cannot write: {exc.strerror or exc}") from None
