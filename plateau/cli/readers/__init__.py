r"""Reading one metric out of a trainer's log, for ``plateau simulate``.

:func:`read_log` tells the format from the path and the first bytes, and hands
the log to the reader of that family:

- :mod:`.csv`: CSV with a header row (Lightning's and Keras's ``CSVLogger``);
- :mod:`.json`: a JSON list of numbers or of objects, an object of columns (a
  Keras ``History``), JSON lines;
- :mod:`.hf_trainer`: an HF Trainer ``trainer_state.json`` (or a checkpoint
  directory holding one);
- :mod:`.tensorboard`: a TensorBoard event file, or a log directory of them;
- :mod:`.mlflow`: an MLflow run, experiment or ``mlruns`` directory of the file
  store, or an ``mlflow.db`` SQLite store (``run`` picks the run).

Every reader follows the rules of :mod:`._metrics` (missing values skip the row,
``nan``/``inf`` are numbers, anything else that is not a number is an error) and
raises :class:`LogError` with a one-line message naming the file and the place.

Example:
    >>> log = parse_log("metrics.csv", "epoch,step,train_loss,val_loss\n"
    ...                 "0,9,2.0,\n0,19,1.5,1.3\n1,39,0.9,0.8\n")
    >>> log.column, list(log.metrics), list(log.epochs), log.skipped
    ('val_loss', [1.3, 0.8], [0, 1], 1)
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, TextIO

from . import mlflow, tensorboard
from ._metrics import (
    DEFAULT_COLUMN,
    INDEX_COLUMNS,
    LR_COLUMNS,
    LR_PREFIXES,
    MISSING_CELLS,
    LogError,
    MetricLog,
    is_lr_column,
)
from .csv import Opener, read_csv
from .hf_trainer import FILE_NAME as TRAINER_STATE
from .json import read_json

__all__ = [
    "DEFAULT_COLUMN",
    "INDEX_COLUMNS",
    "LR_COLUMNS",
    "LR_PREFIXES",
    "MISSING_CELLS",
    "STDIN",
    "LogError",
    "MetricLog",
    "is_lr_column",
    "parse_log",
    "read_log",
]

STDIN = "-"
_BOM = b"\xef\xbb\xbf"
_PEEK = 1 << 16


def read_log(
    path: str,
    column: str | None = None,
    stdin: BinaryIO | None = None,
    run: str | None = None,
) -> MetricLog:
    """Read `path` (``-`` for `stdin`) and pick its metric column.

    Args:
        path: The log: a file, a directory (TensorBoard, MLflow, an HF checkpoint),
            or ``-`` for `stdin`.
        column: The metric to replay; None to choose as the format says.
        stdin: What ``-`` reads.
        run: The MLflow run (id or name), when the store holds several.

    Raises:
        LogError: the file cannot be read or holds no usable metric; the message
            names the file and, for a bad value, the place and column.
    """
    if path == STDIN:
        _no_run("<stdin>", run)
        data = stdin.read() if stdin is not None else b""
        return _from_bytes("<stdin>", data, column)
    if os.path.isdir(path):
        return _directory(path, column, run)
    try:
        with open(path, "rb") as file:
            head = _head(file)
            if head.startswith(mlflow.SQLITE_MAGIC):
                return mlflow.read_sqlite(path, column, run)
            _no_run(path, run)
            if tensorboard.is_event_file(path, head):
                return tensorboard.read_tensorboard(path, [path], column)
            if head[:1] not in (b"[", b"{"):
                # CSV streams from the file, pass by pass.
                return _csv(path, column, _opener(path))
            data = head + file.read()
    except FileNotFoundError:
        raise LogError(f"{path}: no such file") from None
    except IsADirectoryError:  # pragma: no cover - caught by isdir above, bar a race
        raise LogError(f"{path}: is a directory, not a log file") from None
    except OSError as exc:
        raise LogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return read_json(path, _decode(path, data), column)


def _directory(path: str, column: str | None, run: str | None) -> MetricLog:
    """A directory: an HF checkpoint, a TensorBoard log directory, or an MLflow store."""
    state = os.path.join(path, TRAINER_STATE)
    if os.path.isfile(state):
        _no_run(path, run)
        return read_log(state, column)
    if mlflow.run_dirs(path):
        return mlflow.read_file_store(path, column, run)
    database = os.path.join(path, "mlflow.db")
    if os.path.isfile(database):
        return mlflow.read_sqlite(database, column, run)
    files = tensorboard.event_files(path)
    if files:
        _no_run(path, run)
        return tensorboard.read_tensorboard(path, files, column)
    raise LogError(
        f"{path}: is a directory, not a log file, and holds no log plateau reads "
        f"(TensorBoard event files, an MLflow run, mlflow.db, {TRAINER_STATE})"
    )


def _no_run(source: str, run: str | None) -> None:
    """A --run given for a log that is no MLflow store is an error, found before reading."""
    if run is not None:
        raise LogError(f"{source}: --run {run!r} applies to MLflow stores only")


def parse_log(source: str, text: str, column: str | None = None) -> MetricLog:
    """Read a log held in `text`; `source` names it in messages.

    Raises:
        LogError: no usable metric, or a value that is not a number.
    """
    return _from_bytes(source, text.encode("utf-8"), column)


def _opener(path: str) -> Opener:
    def open_text() -> TextIO:
        # read_csv closes what this opens, one pass at a time.
        return open(path, encoding="utf-8-sig", newline="")

    return open_text


def _head(file: BinaryIO) -> bytes:
    """The file's bytes from its first non-blank one on (at least one, if any)."""
    chunk = file.read(_PEEK)
    if chunk.startswith(_BOM):  # spreadsheet programs save CSV with a byte-order mark
        chunk = chunk[len(_BOM) :]
    while chunk and not chunk.lstrip():
        chunk = file.read(_PEEK)
    head = chunk.lstrip()
    if not head:
        raise LogError(f"{file.name}: empty log")
    return head


def _from_bytes(source: str, data: bytes, column: str | None) -> MetricLog:
    if tensorboard.is_event_file("", data):
        return tensorboard.read_tensorboard(source, [source], column, data=data)
    head = data[len(_BOM) :] if data.startswith(_BOM) else data
    head = head.lstrip()
    if not head:
        raise LogError(f"{source}: empty log")
    if head[:1] in (b"[", b"{"):
        return read_json(source, _decode(source, data), column)
    return _csv(
        source,
        column,
        lambda: io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=""),
        data,
    )


def _csv(source: str, column: str | None, opener: Opener, data: bytes | None = None) -> MetricLog:
    try:
        return read_csv(source, opener, column)
    except UnicodeDecodeError:
        # The text file decodes ahead of the rows: find the bad byte in the bytes.
        if data is None:
            with open(source, "rb") as file:
                data = file.read()
        _decode(source, data)
        raise  # pragma: no cover - the bytes decoded after all


def _decode(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LogError(
            f"{source}, line {line}: not UTF-8 text (bad byte at offset {exc.start})"
        ) from None
