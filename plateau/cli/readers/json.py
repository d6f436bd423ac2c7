"""JSON logs: a list of numbers or of objects, an object of columns, JSON lines.

Told apart by the first non-blank character:

- ``[``: a list of numbers (the metric itself) or a list of objects (rows);
- ``{``: an object of columns, every value a list, all of one length, as
  ``json.dump(history.history, f)`` writes a Keras ``History`` (row i holds the
  i-th element of each list, and is epoch i unless there is an ``epoch``
  column); or JSON lines, one object (row) per line. A single object spread over
  several lines is neither, and an error. An object with a ``log_history`` list
  is an HF Trainer ``trainer_state.json`` (see :mod:`.hf_trainer`).

Example:
    >>> log = read_json("history.json", '{"loss": [3, 2], "val_loss": [2.5, 2.0]}')
    >>> log.column, list(log.metrics), list(log.epochs)
    ('val_loss', [2.5, 2.0], [0, 1])
"""

from __future__ import annotations

import json
from array import array

from ..._checks import show
from . import hf_trainer
from ._metrics import LogError, MetricLog, Row, cell_number, finish, rows_log


def read_json(source: str, text: str, column: str | None = None) -> MetricLog:
    """Read the metric `column` (or the default one) from a JSON log's `text`.

    Raises:
        LogError: invalid JSON, a shape this module does not describe, no single
            column, or a value that is not a number.
    """
    start = text.lstrip()[:1]
    if start == "[":
        document = _load(source, text)
        if not isinstance(document, list):  # pragma: no cover - a '[' document is a list
            raise LogError(f"{source}: expected a JSON list")
        if not document:
            raise LogError(f"{source}: empty JSON list")
        first = next((item for item in document if item is not None), None)
        if not isinstance(first, dict):
            return _bare_list(source, document, column)
        columns, rows = _object_rows(source, document)
        return rows_log(source, columns, rows, column)
    return _object(source, text, column)


class _Refused(Exception):
    """A value :func:`_loads` refuses while parsing; the message says what."""


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """An object's keys, each once: json.loads would keep only a repeated key's last value."""
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"duplicate key {show(key)} in a JSON object")
        result[key] = value
    return result


def _integer(text: str) -> int:
    # int() of more than 4300 digits raises a bare ValueError; no logger writes one.
    if len(text) > 4300:
        raise _Refused(f"an integer of {len(text)} digits, too long to be a number")
    return int(text)


def _loads(source: str, text: str, where: str = "") -> object:
    """json.loads, refusing duplicate keys and integers too long for int() to read.

    Raises:
        json.JSONDecodeError: invalid JSON (the caller names the line).
        LogError: JSON nested too deeply, or a value refused above.
    """
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_int=_integer)
    except _Refused as exc:
        raise LogError(f"{source}{where}: {exc}") from None
    except RecursionError:
        raise LogError(f"{source}{where}: JSON nested too deeply") from None


def _load(source: str, text: str) -> object:
    try:
        return _loads(source, text)
    except json.JSONDecodeError as exc:
        raise LogError(
            f"{source}, line {exc.lineno} char {exc.colno}: invalid JSON: {exc.msg}"
        ) from None


def _bare_list(source: str, document: list[object], column: str | None) -> MetricLog:
    if column is not None:
        raise LogError(
            f"{source}: a JSON list of numbers has no columns, so --column {column!r} cannot apply"
        )
    metrics, epochs, kept = array("d"), array("q"), array("q")
    for index, item in enumerate(document):
        if isinstance(item, (dict, list)):
            raise LogError(
                f"{source}, item {index}: expected a number like the items before it, "
                f"got {show(item)}"
            )
        metric = cell_number(source, f"item {index}", "metric", item)
        if metric is not None:
            epochs.append(len(metrics))
            metrics.append(metric)
            kept.append(index)
    return finish(
        source, "metric", ["metric"], metrics, epochs, len(document), lambda i: f"item {kept[i]}"
    )


def _object_rows(source: str, document: list[object]) -> tuple[list[str], list[Row]]:
    columns: dict[str, None] = {}
    rows: list[Row] = []
    for index, item in enumerate(document):
        if item is None:
            continue
        if not isinstance(item, dict):
            raise LogError(
                f"{source}, item {index}: expected an object like the items before it, "
                f"got {show(item)}"
            )
        columns.update(dict.fromkeys(item))
        rows.append(Row(f"item {index}", item))
    return list(columns), rows


def _object(source: str, text: str, column: str | None) -> MetricLog:
    """An object of columns, a trainer_state.json, or JSON lines (see the module docstring)."""
    try:
        whole = _loads(source, text)
    except json.JSONDecodeError:
        # Several objects, or a broken one: _json_lines names the line.
        columns, rows = _json_lines(source, text)
        return rows_log(source, columns, rows, column)
    if isinstance(whole, dict):
        if hf_trainer.is_trainer_state(whole):
            return hf_trainer.read_trainer_state(source, whole, column)
        if any(isinstance(value, list) for value in whole.values()):
            columns, rows = _json_columns(source, whole)
            return rows_log(source, columns, rows, column)
        lines = len(text.strip().splitlines())
        if lines > 1:
            # Valid JSON lines never spread an object over lines, and one row is no log.
            raise LogError(
                f"{source}: one JSON object over {lines} lines is neither JSON lines (one "
                "object per epoch, each on its own line) nor an object of columns (each "
                "value a list, as json.dump(history.history, f) writes)"
            )
    columns, rows = _json_lines(source, text)
    return rows_log(source, columns, rows, column)


def _json_columns(source: str, document: dict[str, object]) -> tuple[list[str], list[Row]]:
    columns: dict[str, list[object]] = {}
    for name, values in document.items():
        if not isinstance(values, list):
            raise LogError(
                f"{source}: a JSON object of columns needs a list for every key; "
                f"{name!r} is {show(values)}"
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
        Row(f"index {i}", {name: values[i] for name, values in columns.items()}, epoch=i)
        for i in range(count)
    ]
    return list(columns), rows


def _json_lines(source: str, text: str) -> tuple[list[str], list[Row]]:
    columns: dict[str, None] = {}
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = _loads(source, line, f", line {number}")
        except json.JSONDecodeError as exc:
            raise LogError(
                f"{source}, line {number} char {exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        if not isinstance(item, dict):
            raise LogError(f"{source}, line {number}: expected a JSON object, got {show(item)}")
        columns.update(dict.fromkeys(item))
        rows.append(Row(f"line {number}", item))
    return list(columns), rows
