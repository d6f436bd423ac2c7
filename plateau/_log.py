r"""Reading one metric out of a trainer's log, for ``plateau simulate``.

A log is text in one of these shapes, told apart by its first non-blank character:

- CSV with a header (anything else): Lightning's ``CSVLogger`` ``metrics.csv``,
  Keras's ``CSVLogger`` file, or any table with a header row;
- a JSON document starting with ``[``: a list of numbers (the metric itself) or a
  list of objects (rows);
- a JSON object of columns, starting with ``{``: every value a list, all of one
  length, as ``json.dump(history.history, f)`` writes a Keras ``History``; row i
  holds the i-th element of each list, and is epoch i unless there is an
  ``epoch`` column;
- JSON lines, starting with ``{``: one object (row) per line. A single object
  spread over several lines is neither, and an error.

Rows become a metric sequence with the same rules whatever the shape:

- A missing value -- an empty CSV cell, Keras's ``NA``, a JSON ``null`` or an
  absent key -- skips the row. Lightning writes training-only rows whose
  ``val_loss`` is empty, and Keras writes ``NA`` for an epoch without validation.
- ``nan`` and ``inf`` are numbers: what they do is the config's ``on_nonfinite``.
- Any other value that is not a number is an error naming file, row and column,
  never a skipped row: a log that silently loses epochs replays a wrong schedule.

The column: the one asked for; else ``val_loss`` when it holds any value (Keras's
``CSVLogger`` pads a run without validation with an all-``NA`` ``val_loss``);
else the only column that holds a number, not counting ``epoch``, ``step`` and the learning
rates trainers log beside their metrics (``lr``, ``learning_rate``, Keras's
``learning_rate_*``, Lightning ``LearningRateMonitor``'s ``lr-*``). Anything
else is an error that lists the columns.

Example:
    >>> log = parse_log("metrics.csv", "epoch,step,train_loss,val_loss\n"
    ...                 "0,9,2.0,\n0,19,1.5,1.3\n1,39,0.9,0.8\n")
    >>> log.column, log.metrics, log.epochs, log.skipped
    ('val_loss', (1.3, 0.8), (0, 1), 1)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import BinaryIO

import attrs

DEFAULT_COLUMN = "val_loss"
INDEX_COLUMNS = ("epoch", "step")
# Learning rates logged beside the metrics: the schedule's output, never its input.
LR_COLUMNS = ("lr", "learning_rate")
LR_PREFIXES = ("learning_rate_", "lr-")  # Keras; Lightning's LearningRateMonitor (lr-SGD)
# "NA" is what keras.callbacks.CSVLogger writes for a key absent from an epoch's logs.
MISSING_CELLS = frozenset({"", "NA"})
STDIN = "-"


class LogError(ValueError):
    """A log that cannot be replayed. The message is one line saying what and where."""


@attrs.frozen
class MetricLog:
    """The metric sequence read from a log, ready for :func:`plateau.simulate`.

    Attributes:
        source: The file name as given, or ``<stdin>``.
        column: The column the metrics came from (``metric`` for a bare JSON list).
        metrics: One value per replayed row, in file order; may hold nan or inf.
        epochs: The log's epoch for each metric; for a log without an epoch column,
            the row's index in a JSON object of columns, else 0, 1, 2, ...
        where: Each metric's row, as error messages name it (``row 3 (line 4)``).
        skipped: Rows skipped because the column was empty there.
    """

    source: str
    column: str
    metrics: tuple[float, ...]
    epochs: tuple[int, ...]
    where: tuple[str, ...]
    skipped: int


@attrs.frozen
class _Row:
    where: str
    cells: Mapping[str, object]
    # The epoch the row's position implies, when the shape fixes one.
    epoch: int | None = None


def read_log(path: str, column: str | None = None, stdin: BinaryIO | None = None) -> MetricLog:
    """Read `path` (``-`` for `stdin`) and pick its metric column.

    Raises:
        LogError: the file cannot be read or holds no usable metric; the message
            names the file and, for a bad value, the row and column.
    """
    if path == STDIN:
        source = "<stdin>"
        data = stdin.read() if stdin is not None else b""
    else:
        source = path
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            raise LogError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise LogError(f"{path}: is a directory, not a log file") from None
        except OSError as exc:
            raise LogError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        # utf-8-sig: spreadsheet programs save CSV with a byte-order mark.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LogError(f"{source}: not UTF-8 text (bad byte at offset {exc.start})") from None
    return parse_log(source, text, column)


def parse_log(source: str, text: str, column: str | None = None) -> MetricLog:
    """Parse a log's text; `source` names it in messages. See the module docstring.

    Raises:
        LogError: no usable metric, or a value that is not a number.
    """
    start = text.lstrip()[:1]
    if not start:
        raise LogError(f"{source}: empty log")
    if start == "[":
        document = _load_json(source, text)
        if not isinstance(document, list):  # pragma: no cover - a '[' document is a list
            raise LogError(f"{source}: expected a JSON list")
        if not document:
            raise LogError(f"{source}: empty JSON list")
        first = next((item for item in document if item is not None), None)
        if not isinstance(first, dict):
            return _bare_list(source, document, column)
        columns, rows = _json_rows(source, document)
    elif start == "{":
        columns, rows = _json_object(source, text)
    else:
        columns, rows = _csv_rows(source, text)
    if not rows:
        raise LogError(f"{source}: no rows under the header")
    return _extract(source, columns, rows, _choose(source, columns, rows, column))


def _number(value: object) -> float | None:
    """A cell's number, or None for a missing value.

    Raises:
        ValueError: the value is present but not a number.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return None if text in MISSING_CELLS else float(text)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"not a number: {value!r}")


def _is_present(value: object) -> bool:
    if value is None:
        return False
    return not (isinstance(value, str) and value.strip() in MISSING_CELLS)


def _is_number(value: object) -> bool:
    try:
        return _number(value) is not None
    except (ValueError, OverflowError):
        return False


def is_lr_column(name: str) -> bool:
    """Whether `name` is a learning rate logged beside the metrics, never a default metric.

    Example:
        >>> [is_lr_column(n) for n in ("lr", "learning_rate", "lr-Adam/pg1", "val_loss")]
        [True, True, True, False]
    """
    return name in LR_COLUMNS or name.startswith(LR_PREFIXES)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _choose(source: str, columns: list[str], rows: list[_Row], column: str | None) -> str:
    listed = ", ".join(columns)
    if column is not None:
        if column not in columns:
            raise LogError(f"{source}: no column {column!r}; columns: {listed}")
        return column
    default_present = DEFAULT_COLUMN in columns
    if default_present and any(_is_present(row.cells.get(DEFAULT_COLUMN)) for row in rows):
        return DEFAULT_COLUMN
    candidates = [
        name
        for name in columns
        if name not in INDEX_COLUMNS
        and not is_lr_column(name)
        and any(_is_number(row.cells.get(name)) for row in rows)
    ]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise LogError(
            f"{source}: no numeric column besides epoch, step and learning rates; "
            f"columns: {listed}; choose one with --column"
        )
    no_default = "val_loss has no values" if default_present else "no val_loss"
    raise LogError(
        f"{source}: several metric columns ({', '.join(candidates)}) and {no_default}; "
        "choose one with --column"
    )


def _extract(source: str, columns: list[str], rows: list[_Row], column: str) -> MetricLog:
    has_epoch = "epoch" in columns and column != "epoch"
    metrics: list[float] = []
    epochs: list[int] = []
    where: list[str] = []
    for row in rows:
        value = row.cells.get(column)
        try:
            metric = _number(value)
        except (ValueError, OverflowError):
            raise LogError(
                f"{source}, {row.where}, column {column!r}: {_show(value)} is not a number"
            ) from None
        if metric is None:
            continue
        if has_epoch:
            epochs.append(_epoch(source, row))
        else:
            epochs.append(len(metrics) if row.epoch is None else row.epoch)
        metrics.append(metric)
        where.append(row.where)
    if not metrics:
        raise LogError(
            f"{source}: column {column!r} has no values ({len(rows)} rows, all empty); "
            f"columns: {', '.join(columns)}"
        )
    return MetricLog(
        source=source,
        column=column,
        metrics=tuple(metrics),
        epochs=tuple(epochs),
        where=tuple(where),
        skipped=len(rows) - len(metrics),
    )


def _epoch(source: str, row: _Row) -> int:
    value = row.cells.get("epoch")
    try:
        number = _number(value)
    except (ValueError, OverflowError):
        number = None
    if number is None or not number.is_integer():
        raise LogError(
            f"{source}, {row.where}, column 'epoch': {_show(value)} is not an epoch number"
        )
    return int(number)


def _bare_list(source: str, document: list[object], column: str | None) -> MetricLog:
    if column is not None:
        raise LogError(
            f"{source}: a JSON list of numbers has no columns, so --column {column!r} cannot apply"
        )
    rows: list[_Row] = []
    for index, item in enumerate(document):
        if isinstance(item, (dict, list)):
            raise LogError(
                f"{source}, item {index}: expected a number like the items before it, "
                f"got {_show(item)}"
            )
        rows.append(_Row(f"item {index}", {"metric": item}))
    return _extract(source, ["metric"], rows, "metric")


def _load_json(source: str, text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LogError(
            f"{source}, line {exc.lineno} char {exc.colno}: invalid JSON: {exc.msg}"
        ) from None


def _json_rows(source: str, document: list[object]) -> tuple[list[str], list[_Row]]:
    columns: dict[str, None] = {}
    rows: list[_Row] = []
    for index, item in enumerate(document):
        if item is None:
            continue
        if not isinstance(item, dict):
            raise LogError(
                f"{source}, item {index}: expected an object like the items before it, "
                f"got {_show(item)}"
            )
        columns.update(dict.fromkeys(item))
        rows.append(_Row(f"item {index}", item))
    return list(columns), rows


def _json_object(source: str, text: str) -> tuple[list[str], list[_Row]]:
    """Rows of a JSON object of columns, or of JSON lines (see the module docstring)."""
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        # Several objects, or a broken one: _json_lines names the line.
        return _json_lines(source, text)
    if isinstance(whole, dict):
        if any(isinstance(value, list) for value in whole.values()):
            return _json_columns(source, whole)
        lines = len(text.strip().splitlines())
        if lines > 1:
            # Valid JSON lines never spread an object over lines, and one row is no log.
            raise LogError(
                f"{source}: one JSON object over {lines} lines is neither JSON lines (one "
                "object per epoch, each on its own line) nor an object of columns (each "
                "value a list, as json.dump(history.history, f) writes)"
            )
    return _json_lines(source, text)


def _json_columns(source: str, document: dict[str, object]) -> tuple[list[str], list[_Row]]:
    columns: dict[str, list[object]] = {}
    for name, values in document.items():
        if not isinstance(values, list):
            raise LogError(
                f"{source}: a JSON object of columns needs a list for every key; "
                f"{name!r} is {_show(values)}"
            )
        columns[name] = values
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        listed = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
        raise LogError(
            f"{source}: the JSON object's columns differ in length ({listed}), so row i "
            "cannot be lined up across them (Keras's history.history does this under "
            "validation_freq > 1; its CSVLogger file marks those epochs NA instead)"
        )
    (count,) = lengths
    if count == 0:
        raise LogError(f"{source}: the JSON object's columns are empty lists")
    rows = [
        _Row(f"index {i}", {name: values[i] for name, values in columns.items()}, epoch=i)
        for i in range(count)
    ]
    return list(columns), rows


def _json_lines(source: str, text: str) -> tuple[list[str], list[_Row]]:
    columns: dict[str, None] = {}
    rows: list[_Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LogError(
                f"{source}, line {number} char {exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        if not isinstance(item, dict):
            raise LogError(f"{source}, line {number}: expected a JSON object, got {_show(item)}")
        columns.update(dict.fromkeys(item))
        rows.append(_Row(f"line {number}", item))
    return list(columns), rows


def _csv_rows(source: str, text: str) -> tuple[list[str], list[_Row]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header: list[str] = []
        while not header:
            header = next(reader)
        columns = [name.strip() for name in header]
        seen: set[str] = set()
        for name in columns:
            if name in seen:
                raise LogError(f"{source}, line {reader.line_num}: duplicate column {name!r}")
            seen.add(name)
        rows: list[_Row] = []
        for cells in reader:
            if not cells:
                continue
            where = f"row {len(rows) + 1} (line {reader.line_num})"
            if len(cells) != len(columns):
                raise LogError(
                    f"{source}, {where}: {len(cells)} cells, but the header has {len(columns)}"
                )
            rows.append(_Row(where, dict(zip(columns, cells, strict=True))))
    except csv.Error as exc:
        raise LogError(f"{source}, line {reader.line_num}: malformed CSV: {exc}") from None
    return columns, rows
