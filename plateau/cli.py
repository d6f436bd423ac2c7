"""The ``plateau`` command line: replay a trainer's metric log through the schedule.

``plateau simulate LOG`` reads one metric per epoch from a log the trainer already
wrote (see :mod:`plateau._log` for the shapes it reads), runs
:func:`plateau.simulate` on it and prints, per epoch, the metric, the state and
the learning rate the schedule would have set. ``--compare`` replays the same
log under other configs side by side; ``--plot`` draws it (needs matplotlib).

Only the standard library and the core are imported here: matplotlib is imported
when ``--plot`` asks for it, so the command works without the ``plot`` extra.

Every bad input -- unreadable or empty log, a value that is not a number, an
unknown or ambiguous column, an invalid config -- ends the command with exit code
2 and one line on stderr that says what and where; never a traceback.

Example:
    >>> import contextlib, io, json, os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "log.json")
    ...     with open(path, "w") as f:
    ...         _ = f.write("[1.0, 0.9, 0.95, 0.95]")
    ...     out = io.StringIO()
    ...     with contextlib.redirect_stdout(out):
    ...         code = main(["simulate", path, "--patience", "1", "--format", "json"])
    >>> code, [row["lr"] for row in json.loads(out.getvalue())["rows"]]
    (0, [1.0, 1.0, 1.0, 0.1])
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import attrs

from . import __version__
from ._config import PlateauConfig
from ._core import PlateauState, init, simulate
from ._log import STDIN, LogError, MetricLog, read_log

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BASE_LABEL = "base"
FORMATS = ("table", "csv", "json")
PLOT_EXTRA = "plateau[plot]"

# Config field -> how to read its value from the command line. The names are
# PlateauConfig's; the values are checked by PlateauConfig itself.
CONFIG_FIELDS: dict[str, Callable[[str], object]] = {
    "mode": str,
    "factor": float,
    "patience": int,
    "threshold": float,
    "threshold_mode": str,
    "cooldown": int,
    "min_lr": float,
    "eps": float,
    "on_nonfinite": str,
}
_HELP = {
    "mode": "'min' when lower metrics are better, 'max' when higher are",
    "factor": "multiplier applied to the lr on a reduction",
    "patience": "bad epochs tolerated; the lr is cut on bad epoch PATIENCE+1",
    "threshold": "margin a metric must beat the best by to count as an improvement",
    "threshold_mode": "'rel' (margin best*threshold) or 'abs' (margin threshold)",
    "cooldown": "epochs after a reduction during which bad epochs are not counted",
    "min_lr": "floor of the lr; repeat to give one floor per --lr",
    "eps": "a cut of eps or less is not applied",
    "on_nonfinite": "what a nan/inf metric does: 'bad' (as torch), 'raise' or 'skip'",
}
_METAVAR = {
    "mode": "{min,max}",
    "threshold_mode": "{rel,abs}",
    "on_nonfinite": "{bad,raise,skip}",
}


class UsageError(Exception):
    """Bad input to the command: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


@attrs.frozen
class Run:
    """One config's replay of the log.

    Attributes:
        label: ``base`` for the config given by the options, else the --compare text.
        config: The config replayed.
        states: One state per metric of the log, as :func:`plateau.simulate` returns.
    """

    label: str
    config: PlateauConfig
    states: list[PlateauState]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``plateau`` command; return its exit code (0 ok, 2 bad input).

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when None.

    Example:
        >>> main(["simulate", "no-such-file.csv"])
        2
    """
    try:
        args = build_parser().parse_args(argv)
        output = _simulate_command(args)
    except (UsageError, LogError) as exc:
        print(f"plateau: error: {exc}", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(output)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (e.g. `| head`) left early; say nothing more, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``plateau`` command."""
    parser = _Parser(
        prog="plateau",
        description="A framework-agnostic ReduceLROnPlateau with torch's exact semantics.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"plateau {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sim = commands.add_parser(
        "simulate",
        help="replay a metric log and show the learning rates the schedule would set",
        description=(
            "Replay one metric per epoch from a trainer's log (CSV with a header, e.g. "
            "Lightning's or Keras's CSVLogger file; a JSON list of numbers or of objects; "
            "a JSON object of equal-length lists, e.g. json.dump(history.history) of a "
            "Keras History; JSON lines of objects; '-' for stdin) and print the "
            "schedule's state and lr per epoch. Rows where the metric's cell is empty "
            "are skipped."
        ),
        allow_abbrev=False,
    )
    sim.add_argument("log", metavar="LOG", help="the log file, or '-' to read stdin")
    sim.add_argument(
        "--column",
        metavar="NAME",
        help="the metric to replay (default: val_loss, else the only numeric column "
        "besides epoch, step and learning rates: lr, learning_rate, learning_rate_*, lr-*)",
    )
    sim.add_argument(
        "--lr",
        type=float,
        action="append",
        metavar="LR",
        help="starting learning rate; repeat for several (default: 1.0, so the lr "
        "column reads as the multiplier of yours)",
    )
    defaults = PlateauConfig()
    group = sim.add_argument_group("schedule (PlateauConfig; defaults are torch's)")
    for name, parse in CONFIG_FIELDS.items():
        default = getattr(defaults, name)
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=parse,
            default=None if name == "min_lr" else default,
            action="append" if name == "min_lr" else "store",
            metavar=_METAVAR.get(name, name.upper()),
            help=f"{_HELP[name]} (default: {default})",
        )
    sim.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="KEY=VAL[,KEY=VAL...]",
        help="also replay under the options' config with these fields changed, e.g. "
        "patience=5 or patience=10,factor=0.5; repeat to compare several",
    )
    sim.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table for people; csv and json carry every number exactly (default: table)",
    )
    sim.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw the metric and the lr against epoch into FILE (needs "
        f"matplotlib: {PLOT_EXTRA})",
    )
    return parser


def _simulate_command(args: argparse.Namespace) -> str:
    figure = _matplotlib_figure(args.plot) if args.plot is not None else None
    base = _base_config(args)
    lrs: tuple[float, ...] = tuple(args.lr) if args.lr else (1.0,)
    configs = [(BASE_LABEL, base)]
    for text in args.compare:
        if any(label == text for label, _ in configs):
            raise UsageError(f"--compare {text!r} given twice")
        configs.append((text, _compare_config(base, text)))
    try:
        init(lrs, PlateauConfig())
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--lr: {exc}") from None
    for label, config in configs:
        try:
            init(lrs, config)
        except (TypeError, ValueError) as exc:
            where = "invalid config" if label == BASE_LABEL else f"--compare {label!r}"
            raise UsageError(f"{where}: {exc}") from None

    log = read_log(args.log, args.column, sys.stdin.buffer if args.log == STDIN else None)
    runs = [Run(label, config, _replay(log, label, config, lrs)) for label, config in configs]
    if figure is not None:
        _plot(figure, args.plot, log, runs, lrs)
    if args.format == "csv":
        return format_csv(log, runs)
    if args.format == "json":
        return format_json(log, runs, lrs)
    return format_table(log, runs, lrs)


def _base_config(args: argparse.Namespace) -> PlateauConfig:
    values = {name: getattr(args, name) for name in CONFIG_FIELDS}
    min_lr = values.pop("min_lr")
    if min_lr is not None:
        values["min_lr"] = min_lr[0] if len(min_lr) == 1 else tuple(min_lr)
    try:
        return PlateauConfig(**values)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid config: {exc}") from None


def _compare_config(base: PlateauConfig, text: str) -> PlateauConfig:
    """`base` with the fields named in `text` ("patience=5,factor=0.5") changed."""
    overrides: dict[str, Any] = {}
    for item in text.split(","):
        key, equals, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise UsageError(f"--compare {text!r}: expected KEY=VALUE, got {item!r}")
        if key not in CONFIG_FIELDS:
            raise UsageError(
                f"--compare {text!r}: unknown key {key!r}; keys: {', '.join(CONFIG_FIELDS)}"
            )
        if key in overrides:
            raise UsageError(f"--compare {text!r}: {key!r} given twice")
        parse = CONFIG_FIELDS[key]
        try:
            overrides[key] = parse(raw.strip())
        except ValueError:
            kind = "an integer" if parse is int else "a number"
            raise UsageError(
                f"--compare {text!r}: {key!r} must be {kind}, got {raw.strip()!r}"
            ) from None
    try:
        return attrs.evolve(base, **overrides)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--compare {text!r}: {exc}") from None


def _replay(
    log: MetricLog, label: str, config: PlateauConfig, lrs: tuple[float, ...]
) -> list[PlateauState]:
    try:
        return simulate(log.metrics, config, lrs)
    except ValueError as exc:
        # The only error simulate can raise on a validated config and lrs is a
        # non-finite metric under on_nonfinite="raise": point at its row.
        bad = [i for i, m in enumerate(log.metrics) if not math.isfinite(m)]
        if config.on_nonfinite != "raise" or not bad:  # pragma: no cover - a core bug
            raise
        config_name = "" if label == BASE_LABEL else f" (--compare {label!r})"
        raise UsageError(
            f"{log.source}, {log.where[bad[0]]}, column {log.column!r}{config_name}: {exc}"
        ) from None


# Output ----------------------------------------------------------------------


def describe(config: PlateauConfig) -> str:
    """The config as ``key=value`` pairs, in field order.

    Example:
        >>> describe(PlateauConfig(patience=3))[:30]
        'mode=min factor=0.1 patience=3'
    """
    fields = config.to_dict()
    del fields["format"], fields["version"]
    return " ".join(
        f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in fields.items()
    )


def _lr_names(runs: Sequence[Run], count: int) -> list[list[str]]:
    """Each run's lr column names: lr / lr_0, lr_1, ... and, comparing, [label]."""
    names = ["lr"] if count == 1 else [f"lr_{i}" for i in range(count)]
    if len(runs) == 1:
        return [names]
    return [[f"{name}[{run.label}]" for name in names] for run in runs]


def records(log: MetricLog, runs: Sequence[Run]) -> tuple[list[str], list[dict[str, object]]]:
    """The output's column names and one row per metric, holding the core's exact values.

    One run: epoch, metric, best, num_bad_epochs, cooldown_counter, decision, lr(s).
    Several (--compare): epoch, metric, then each run's lr(s).
    """
    count = len(runs[0].states[0].lrs)
    lr_names = _lr_names(runs, count)
    single = len(runs) == 1
    header = ["epoch", "metric"]
    if single:
        header += ["best", "num_bad_epochs", "cooldown_counter", "decision"]
    for names in lr_names:
        header += names
    rows: list[dict[str, object]] = []
    for i, (epoch, metric) in enumerate(zip(log.epochs, log.metrics, strict=True)):
        row: dict[str, object] = {"epoch": epoch, "metric": metric}
        if single:
            state = runs[0].states[i]
            row["best"] = state.best
            row["num_bad_epochs"] = state.num_bad_epochs
            row["cooldown_counter"] = state.cooldown_counter
            row["decision"] = state.decision.value
        for run, names in zip(runs, lr_names, strict=True):
            row.update(zip(names, run.states[i].lrs, strict=True))
        rows.append(row)
    return header, rows


def format_csv(log: MetricLog, runs: Sequence[Run]) -> str:
    """CSV with a header; floats as ``repr`` (exact, and ``nan``/``inf`` for non-finite)."""
    header, rows = records(log, runs)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row.values()])
    return out.getvalue()


def _json_value(value: object) -> object:
    # Strict JSON has no nan/inf; write them as PlateauState.to_dict writes best.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def format_json(log: MetricLog, runs: Sequence[Run], lrs: tuple[float, ...]) -> str:
    """Strict JSON: the log, the configs (``PlateauConfig.to_dict``) and the rows.

    Floats are exact (``json`` writes ``repr``); non-finite ones are the strings
    ``"nan"``, ``"inf"`` and ``"-inf"``, as in ``PlateauState.to_dict``.
    """
    _, rows = records(log, runs)
    document = {
        "log": log.source,
        "column": log.column,
        "lrs": list(lrs),
        "configs": {run.label: run.config.to_dict() for run in runs},
        "rows": [{key: _json_value(value) for key, value in row.items()} for row in rows],
    }
    return json.dumps(document, allow_nan=False) + "\n"


def _cut(states: Sequence[PlateauState], lrs: tuple[float, ...]) -> list[tuple[bool, ...]]:
    """For each state, which lrs its step cut."""
    previous = [lrs, *(state.lrs for state in states[:-1])]
    return [
        tuple(new < old for new, old in zip(state.lrs, before, strict=True))
        for state, before in zip(states, previous, strict=True)
    ]


def _summary(run: Run, log: MetricLog, lrs: tuple[float, ...]) -> str:
    epochs = [
        str(epoch) for epoch, cut in zip(log.epochs, _cut(run.states, lrs), strict=True) if any(cut)
    ]
    final = run.states[-1].lrs
    final_text = " ".join(f"{v:.6g}" for v in final)
    if not epochs:
        return f"no reduction; final lr {final_text}"
    plural = "s" if len(epochs) > 1 else ""
    return f"lr cut (*) at epoch{plural} {', '.join(epochs)}; final lr {final_text}"


def format_table(log: MetricLog, runs: Sequence[Run], lrs: tuple[float, ...]) -> str:
    """Aligned columns for people: numbers to 6 significant digits, cut lrs marked ``*``."""
    header, rows = records(log, runs)
    cuts = [_cut(run.states, lrs) for run in runs]
    lr_names = _lr_names(runs, len(lrs))
    cells: list[list[str]] = []
    for i, row in enumerate(rows):
        line = []
        for key, value in row.items():
            text = f"{value:.6g}" if isinstance(value, float) else str(value)
            for run_index, names in enumerate(lr_names):
                if key in names:
                    text += " *" if cuts[run_index][i][names.index(key)] else "  "
            line.append(text)
        cells.append(line)
    widths = [max(len(h), *(len(line[c]) for line in cells)) for c, h in enumerate(header)]
    left = {header.index("decision")} if "decision" in header else set()

    def render(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if c in left else v.rjust(w)
            for c, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    skipped = f" ({log.skipped} rows without it skipped)" if log.skipped else ""
    lr_text = ", ".join(f"{lr:g}" for lr in lrs)
    lines = [f"{log.source}: {log.column}, {len(log.metrics)} values{skipped}"]
    # One config is "config:"; compared configs are named by their labels.
    names = ["config"] if len(runs) == 1 else [run.label for run in runs]
    lines += [
        f"{name}: {describe(run.config)}; start lr {lr_text}"
        for name, run in zip(names, runs, strict=True)
    ]
    lines += ["", render(header)]
    lines += [render(line) for line in cells]
    lines.append("")
    if len(runs) == 1:
        lines.append(_summary(runs[0], log, lrs))
    else:
        lines += [f"{run.label}: {_summary(run, log, lrs)}" for run in runs]
    return "\n".join(lines) + "\n"


# Plot --------------------------------------------------------------------------


def _matplotlib_figure(path: str) -> type[Figure]:
    """Import matplotlib's Figure class, after checking that `path` is a file it can write."""
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
    return Figure


def _plot(
    figure_class: type[Figure],
    path: str,
    log: MetricLog,
    runs: Sequence[Run],
    lrs: tuple[float, ...],
) -> None:
    """Metric (left axis) and lr (right axis, log scale) against epoch, cuts marked."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    epochs = list(log.epochs)
    increasing = all(a < b for a, b in itertools.pairwise(epochs))
    x = epochs if increasing else list(range(len(epochs)))
    finite = [m if math.isfinite(m) else math.nan for m in log.metrics]

    fig = figure_class(figsize=(8, 4.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(x, finite, color="0.25", marker="o", markersize=2.5, linewidth=1, label=log.column)
    best = [s.best if math.isfinite(s.best) else math.nan for s in runs[0].states]
    best_label = "best" if len(runs) == 1 else f"best ({runs[0].label})"
    ax.plot(x, best, color="0.55", linestyle=":", linewidth=1.2, label=best_label)
    if all(m > 0 for m in finite if not math.isnan(m)):
        ax.set_yscale("log")
        positive = [m for m in finite if not math.isnan(m)]
        if positive and max(positive) / min(positive) <= 100:
            # A loss curve often spans a decade or so: label 1-2-5 ticks in plain numbers.
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("epoch" if increasing else "replayed value #")
    ax.set_ylabel(log.column)
    ax.grid(True, which="major", alpha=0.3)

    lr_ax = ax.twinx()
    all_lrs = [lr for run in runs for state in run.states for lr in state.lrs] + list(lrs)
    for run_index, run in enumerate(runs):
        color = f"C{run_index}"
        cuts = _cut(run.states, lrs)
        for lr_index in range(len(lrs)):
            values = [state.lrs[lr_index] for state in run.states]
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
            cut_x = [xi for xi, cut in zip(x, cuts, strict=True) if cut[lr_index]]
            cut_y = [v for v, cut in zip(values, cuts, strict=True) if cut[lr_index]]
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
        title += "\ncompared: " + "; ".join(run.label for run in runs[1:])
    ax.set_title("\n".join(textwrap.fill(part, 95) for part in title.split("\n")), fontsize=9)
    try:
        fig.savefig(path)
    except OSError as exc:
        raise UsageError(f"--plot {path!r}: cannot write: {exc.strerror or exc}") from None
