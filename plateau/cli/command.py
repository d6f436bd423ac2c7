"""``plateau simulate``: parse the arguments, read the log, replay it, write the output.

Every bad input -- unreadable or empty log, a value that is not a number, an
unknown or ambiguous column, an invalid config -- ends the command with exit code
2 and one line on stderr that says what and where; never a traceback. All of it
is found before the first line of output is written.

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
import contextlib
import io
import math
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from .. import __version__
from .._checks import show
from .._config import PlateauConfig
from .._core import PlateauState, init, step
from . import restores
from .options import UsageError, add_schedule_options, base_config, compare_config, decimal_option
from .output import WRITERS
from .readers import STDIN, LogError, MetricLog, read_log
from .replay import BASE_LABEL, Run, replay


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


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
        out = sys.stdout
        if out is None or out.closed:  # started with stdout closed (`plateau ... >&-`)
            raise UsageError("cannot write the output: stdout is closed")
        simulate_command(args, out)
        out.flush()
    except (UsageError, LogError) as exc:
        _error(str(exc))
        return 2
    except BrokenPipeError:
        # The reader (e.g. `| head`) left early; say nothing more, as Unix tools do.
        _discard_stdout()
        return 1
    except OSError as exc:  # stdout unwritable: a full disk, a closed descriptor
        _discard_stdout()
        _error(f"cannot write the output: {exc.strerror or exc}")
        return 2
    return 0


def _error(message: str) -> None:
    """Print the one line of an error; with no stderr to print to, the exit code says it."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stderr closed, or None
        print(f"plateau: error: {_one_line(message)}", file=sys.stderr)


def _discard_stdout() -> None:
    """Point the stdout descriptor at /dev/null, so that the flush at exit cannot fail too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no descriptor (a StringIO, None)
        pass


def _one_line(message: str) -> str:
    r"""`message` with control characters escaped: a column name may hold a newline.

    Example:
        >>> _one_line("no column 'a\nb'")
        "no column 'a\\nb'"
    """
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


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
            "Replay a metric from a trainer's log (CSV with a header, e.g. Lightning's or "
            "Keras's CSVLogger file, or a file of bare numbers; a JSON list, a Keras "
            "History dump, JSON lines; TensorBoard event files; an MLflow store; HF "
            "Trainer's trainer_state.json; '-' for stdin) and print the schedule's state "
            "and lr at each value. Where the log has epochs, the last value of each "
            "epoch is replayed, as an epoch-level scheduler is given it."
        ),
        allow_abbrev=False,
    )
    sim.add_argument(
        "log",
        metavar="LOG",
        help="the log: a file or a pipe, a Lightning or TensorBoard log directory, an "
        "MLflow run, experiment or mlruns directory, mlflow.db, an HF checkpoint "
        "directory; '-' reads stdin",
    )
    sim.add_argument(
        "--column",
        metavar="NAME",
        help="the metric to replay (default: val_loss, else the only numeric column "
        "besides epoch, step and learning rates: lr, learning_rate, learning_rate_*, lr-*; "
        "eval_loss for trainer_state.json); a tag for TensorBoard, a key for MLflow",
    )
    sim.add_argument(
        "--run",
        metavar="RUN",
        help="the run, where the log holds several: an MLflow run id or name, or a "
        "directory below LOG",
    )
    sim.add_argument(
        "--every-row",
        action="store_true",
        help="replay every logged value, not only the last of each epoch",
    )
    sim.add_argument(
        "--lr",
        type=decimal_option,
        action="append",
        metavar="LR",
        help="starting learning rate; repeat for several (default: 1.0, so the lr "
        "column reads as the multiplier of yours)",
    )
    add_schedule_options(sim)
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
        choices=tuple(WRITERS),
        default="table",
        help="table for people; csv and json carry every number exactly (default: table)",
    )
    sim.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw the metric and the lr into FILE (needs matplotlib: plateau-lr[plot])",
    )
    sim.add_argument(
        "--log-y",
        action="store_true",
        help="draw the metric on a log scale in the plot",
    )
    sim.add_argument(
        "--restore-best",
        action="store_true",
        help="also say, after the table, where restore_best=True would have put back the "
        "best epoch's weights: at each cut, those of the last improvement",
    )
    return parser


def simulate_command(args: argparse.Namespace, out: TextIO) -> None:
    """Run ``plateau simulate`` with parsed `args`, writing the output to `out`.

    Raises:
        UsageError: a bad option.
        LogError: a log that cannot be replayed.
    """
    if args.plot is not None:
        from . import plot  # matplotlib only for --plot

        figure = plot.figure_class(args.plot)
    runs = _runs(args)
    lrs: tuple[float, ...] = tuple(args.lr) if args.lr else (1.0,)
    _check_lrs(runs, lrs)
    stdin = sys.stdin.buffer if args.log == STDIN else None
    log = read_log(args.log, args.column, args.run, args.every_row, stdin)
    for warning in log.warnings:
        print(f"plateau: warning: {warning}", file=sys.stderr)
    _check_nonfinite(log, runs, lrs)

    if args.restore_best and args.format != "table":
        raise UsageError(
            "--restore-best marks the table; csv and json already carry each row's decision"
        )
    rows = replay(log, runs, lrs)
    rollbacks = None
    if args.restore_best:
        rollbacks = restores.Recording(rows, runs, log.index_name)
        rows = iter(rollbacks)
    if args.plot is None:
        WRITERS[args.format](out, log, runs, lrs, rows)
        if rollbacks is not None:
            out.write(rollbacks.summary())
        return
    # The plot needs every state; the output waits for it, so that a plot that
    # cannot be written leaves stdout empty like every other error.
    states: list[list[PlateauState]] = [[] for _ in runs]
    text = io.StringIO()
    WRITERS[args.format](text, log, runs, lrs, plot.recording(rows, states))
    plot.draw(figure, args.plot, log, runs, states, lrs, log_y=args.log_y)
    out.write(text.getvalue())
    if rollbacks is not None:
        out.write(rollbacks.summary())
    print(f"plateau: wrote {args.plot}", file=sys.stderr)


def _runs(args: argparse.Namespace) -> list[Run]:
    base = base_config(args)
    runs = [Run(BASE_LABEL, base)]
    for text in args.compare:
        if any(run.label == text for run in runs):
            raise UsageError(f"--compare {show(text)} given twice")
        runs.append(Run(text, compare_config(args, text)))
    return runs


def _check_lrs(runs: Sequence[Run], lrs: tuple[float, ...]) -> None:
    try:
        init(lrs, PlateauConfig())
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--lr: {exc}") from None
    for run in runs:
        try:
            init(lrs, run.config)
        except (TypeError, ValueError) as exc:
            where = "invalid config" if run.label == BASE_LABEL else f"--compare {run.label!r}"
            raise UsageError(f"{where}: {exc}") from None


def _check_nonfinite(log: MetricLog, runs: Sequence[Run], lrs: tuple[float, ...]) -> None:
    """Under on_nonfinite="raise", a nan/inf metric is an error naming its row, found now."""
    raising = [run for run in runs if run.config.on_nonfinite == "raise"]
    if not raising:
        return
    bad = next((i for i, m in enumerate(log.metrics) if not math.isfinite(m)), None)
    if bad is None:
        return
    run = raising[0]
    try:
        step(init(lrs, run.config), log.metrics[bad], run.config)
    except ValueError as exc:
        # The core's own message, e.g. "'metric' must be finite (on_nonfinite='raise')".
        config_name = "" if run.label == BASE_LABEL else f" (--compare {run.label!r})"
        raise UsageError(
            f"{log.source}, {log.where(bad)}, column {log.column!r}{config_name}: {exc}"
        ) from None
    raise AssertionError("on_nonfinite='raise' let a non-finite metric through")  # pragma: no cover
