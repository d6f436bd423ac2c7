r"""One metric out of a trainer's log, in one pass: the format, its reader, the column.

:func:`read_log` finds the format; its reader (:mod:`.text`, :mod:`.tensorboard`,
:mod:`.mlflow`) adds the values to a :class:`~._metrics.Columns`, which chooses the
column. Errors are :class:`LogError`: one line naming the file and place.

Example:
    >>> import io
    >>> log = read_log("-", stdin=io.BytesIO(b"1.0\n0.9\n0.95\n"))
    >>> log.source, log.column, list(log.metrics), log.index_name
    ('<stdin>', 'metric', [1.0, 0.9, 0.95], 'row')
"""

from __future__ import annotations

import io
import os
import stat
from typing import BinaryIO

from ..replay import MetricLog
from . import mlflow, tensorboard, text
from ._metrics import LogError

__all__ = ["STDIN", "LogError", "MetricLog", "read_log"]

STDIN = "-"
_EVENT_MAGIC = b"brain.Event:"  # the file_version of an event file's first record


def read_log(
    path: str,
    column: str | None = None,
    run: str | None = None,
    every_row: bool = False,
    stdin: BinaryIO | None = None,
) -> MetricLog:
    """Read `path` (a file, a pipe, a directory, or ``-`` for `stdin`); pick its metric column.

    `column`, `run` and `every_row` are the options ``--column``, ``--run`` and
    ``--every-row``: None (False) chooses as docs/cli.md says.

    Raises:
        LogError: the log cannot be read or holds no usable metric.
    """
    if path == STDIN:
        source, stream = "<stdin>", stdin or io.BytesIO()
    elif os.path.isdir(path):
        return _directory(path, column, run, every_row)
    else:
        try:
            source, stream = path, open(path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            raise LogError(f"{path}: no such file") from None
        except OSError as exc:
            raise LogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not hasattr(stream, "peek"):  # a BytesIO: buffered, so that its head can be seen
        stream = io.BufferedReader(stream)  # type: ignore[type-var]
    with stream:
        head: bytes = stream.peek(80)[:80]
        sqlite = head.startswith(mlflow.SQLITE_MAGIC)
        events = _EVENT_MAGIC in head[:64] or tensorboard.is_event_file(source)
        regular = path != STDIN and stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
        if (sqlite or events) and not regular:  # their libraries open the path
            what = "an MLflow SQLite store" if sqlite else "a TensorBoard event file"
            raise LogError(f"{source}: {what} is read from its path, not from a pipe")
        if sqlite:
            return mlflow.read_sqlite(path, column, run, every_row)
        if run is not None:
            raise LogError(f"{source}: --run {run!r} applies to logs of several runs only")
        if events:
            return tensorboard.read_events(path, [path], column).choose(every_row)
        if head.startswith(b"\x1f\x8b"):
            raise LogError(
                f"{source}: a gzip file; decompress it first (gunzip -c FILE | plateau simulate -)"
            )
        return text.text_columns(source, stream, column).choose(every_row)


def _directory(path: str, column: str | None, run: str | None, every_row: bool) -> MetricLog:
    for name in (text.TRAINER_STATE, "metrics.csv", "mlflow.db"):
        if os.path.isfile(os.path.join(path, name)):
            return read_log(os.path.join(path, name), column, run, every_row)
    if mlflow.run_dirs(path):
        return mlflow.read_file_store(path, column, run, every_row)
    runs = {}  # the directories below holding a run's log: event files, or a metrics.csv
    for root, dirs, names in os.walk(path):
        dirs.sort()
        files = sorted(os.path.join(root, n) for n in names if tensorboard.is_event_file(n))
        if files or "metrics.csv" in names:
            runs[os.path.relpath(root, path)] = files or [os.path.join(root, "metrics.csv")]
    if not runs:
        raise LogError(
            f"{path}: a directory holding no log plateau reads (TensorBoard event files, "
            f"metrics.csv, an MLflow run, mlflow.db, {text.TRAINER_STATE})"
        )
    name = next(iter(runs))
    if len(runs) > 1 or run is not None:
        listed = [(name, "", _holds(name, files)) for name, files in runs.items()]
        name = mlflow.pick(path, listed, run)[0]
    if not tensorboard.is_event_file(runs[name][0]):
        return read_log(runs[name][0], column, None, every_row)
    source = os.path.join(path, name)
    return tensorboard.read_events(source, runs[name], column).choose(every_row)


def _holds(name: str, files: list[str]) -> list[str]:
    """The metric columns (tags) a run holds, for an error that lists the runs."""
    try:
        if tensorboard.is_event_file(files[0]):
            return tensorboard.read_events(name, files, None).candidates()
        with open(files[0], "rb") as stream:
            return text.text_columns(name, stream, None).candidates()
    except LogError as exc:
        return [f"unreadable: {str(exc).partition(': ')[2]}"]
