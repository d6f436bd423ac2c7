r"""Reading one metric out of a trainer's log, for ``plateau simulate``: one way through.

:func:`read_log` finds the format, that format's reader yields the values into a
:class:`~._metrics.Columns`, which chooses the column, and the result is a
:class:`MetricLog` to replay:

- a directory: HF Trainer's ``trainer_state.json`` or Lightning ``CSVLogger``'s
  ``metrics.csv`` in it, an ``mlflow.db``, an MLflow file store, or runs below it
  (directories of TensorBoard event files or of a ``metrics.csv``; ``--run`` picks one);
- a file starting with SQLite's header: an MLflow store (:mod:`.mlflow`);
- an event file (``*.tfevents.*``, or starting with TensorBoard's first record):
  :mod:`.tensorboard`;
- anything else, a pipe and ``-`` included, is text (:mod:`.text`): CSV, JSON or
  JSON lines, read once, as it streams.

Every reader raises :class:`LogError` with one line naming the file and the place.

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

from . import mlflow, tensorboard, text
from ._metrics import LogError, MetricLog

__all__ = ["STDIN", "LogError", "MetricLog", "read_log"]

STDIN = "-"
_GZIP_MAGIC = b"\x1f\x8b"
_EVENT_MAGIC = b"brain.Event:"  # the file_version of an event file's first record


def read_log(
    path: str,
    column: str | None = None,
    run: str | None = None,
    every_row: bool = False,
    stdin: BinaryIO | None = None,
) -> MetricLog:
    """Read `path` (``-`` for `stdin`) and pick its metric column.

    Args:
        path: The log: a file, a pipe, a directory, or ``-`` for `stdin`.
        column: The metric to replay; None to choose as the format says.
        run: The run, where the log holds several (an MLflow run id or name, a
            directory below `path`).
        every_row: Replay every value, not only the last of each epoch.
        stdin: What ``-`` reads.

    Raises:
        LogError: the log cannot be read or holds no usable metric; the message
            names the file and, for a bad value, the place and column.
    """
    if path == STDIN:
        return _stream("<stdin>", stdin or io.BytesIO(), column, run, every_row)
    if os.path.isdir(path):
        return _directory(path, column, run, every_row)
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, or by _stream
    except FileNotFoundError:
        raise LogError(f"{path}: no such file") from None
    except OSError as exc:
        raise LogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with stream:
        if stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            head = stream.peek(len(mlflow.SQLITE_MAGIC) + 64)
            if head.startswith(mlflow.SQLITE_MAGIC):
                return mlflow.read_sqlite(path, column, run, every_row)
            if tensorboard.is_event_file(path) or _EVENT_MAGIC in head[:64]:
                _no_run(path, run)
                return tensorboard.read_tensorboard(path, [path], column, every_row)
        return _stream(path, stream, column, run, every_row)


def _stream(
    source: str, stream: BinaryIO, column: str | None, run: str | None, every_row: bool
) -> MetricLog:
    """A log read once from `stream` (a pipe, stdin, a file): text, refused otherwise."""
    _no_run(source, run)
    if not hasattr(stream, "peek"):  # a BytesIO: buffered, so that its head can be seen
        stream = io.BufferedReader(stream)  # type: ignore[type-var]
    head: bytes = stream.peek(64)
    if head.startswith(_GZIP_MAGIC):
        raise LogError(
            f"{source}: a gzip file; decompress it first (gunzip -c FILE | plateau simulate -)"
        )
    if head.startswith(mlflow.SQLITE_MAGIC) or _EVENT_MAGIC in head[:64]:
        what = (
            "an MLflow SQLite store" if head.startswith(b"SQLite") else "a TensorBoard event file"
        )
        raise LogError(f"{source}: {what} is read from its path, not from a pipe")
    return text.read_text(source, stream, column, every_row)


def _directory(path: str, column: str | None, run: str | None, every_row: bool) -> MetricLog:
    """A directory: a log file in it, an MLflow store, or runs below it."""
    for name in (text.TRAINER_STATE, "metrics.csv"):
        if os.path.isfile(os.path.join(path, name)):
            return read_log(os.path.join(path, name), column, run, every_row)
    if os.path.isfile(os.path.join(path, "mlflow.db")):
        return mlflow.read_sqlite(os.path.join(path, "mlflow.db"), column, run, every_row)
    if mlflow.run_dirs(path):
        return mlflow.read_file_store(path, column, run, every_row)
    runs = _runs_below(path)
    if not runs:
        raise LogError(
            f"{path}: is a directory, and holds no log plateau reads (TensorBoard event "
            f"files, metrics.csv, an MLflow run, mlflow.db, {text.TRAINER_STATE})"
        )
    if len(runs) == 1 and run is None:
        name, files = next(iter(runs.items()))
    else:
        listed = [(name, "", _holds(path, name, files)) for name, files in runs.items()]
        name = listed[mlflow.pick(path, listed, run, what="metric")][0]
        files = runs[name]
    if tensorboard.is_event_file(files[0]):
        return tensorboard.read_tensorboard(os.path.dirname(files[0]), files, column, every_row)
    return read_log(files[0], column, None, every_row)


def _runs_below(path: str) -> dict[str, list[str]]:
    """The directories below `path` holding a run's log: event files, or a metrics.csv."""
    runs = {}
    for root, dirs, names in os.walk(path):
        dirs.sort()
        events = sorted(os.path.join(root, n) for n in names if tensorboard.is_event_file(n))
        if not events and "metrics.csv" in names:
            events = [os.path.join(root, "metrics.csv")]
        if events:
            runs[os.path.relpath(root, path)] = events
    return runs


def _holds(path: str, name: str, files: list[str]) -> list[str]:
    """The metric columns (tags) a run below `path` holds, for an error listing runs."""
    try:
        if tensorboard.is_event_file(files[0]):
            return tensorboard.read_events(name, files, None).candidates()
        with open(files[0], "rb") as stream:
            return text.text_columns(name, stream, None).candidates()
    except LogError as exc:
        return [f"unreadable: {str(exc).partition(': ')[2]}"]


def _no_run(source: str, run: str | None) -> None:
    """A --run given for a log of one run is an error, found before reading."""
    if run is not None:
        raise LogError(f"{source}: --run {run!r} applies to logs of several runs only")
