r"""Text logs, read once as a stream with the standard library: CSV, JSON, JSON lines.

Bytes are decoded line by line (split on ``\n`` only), so a bad byte is named by its
line; the shapes each format may take are docs/cli.md's.

Example:
    >>> import io
    >>> text = b"epoch,step,train_loss,val_loss\n0,9,2.0,\n0,19,1.5,1.3\n1,39,0.9,0.8\n"
    >>> log = text_columns("metrics.csv", io.BytesIO(text), None).choose(every_row=False)
    >>> log.column, list(log.metrics), list(log.index), log.index_name, log.skipped
    ('val_loss', [1.3, 0.8], [0, 1], 'epoch', 1)
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import BinaryIO

from ..._checks import show
from ..numbers import parse_decimal
from ._metrics import Columns, LogError, listing

_BOM = b"\xef\xbb\xbf"
_SPACE = re.compile(r"[ \t\n\r]*")
TRAINER_STATE = "trainer_state.json"
_NO_COLUMNS = "a list of bare numbers has no columns, so --column {!r} cannot apply"


class _Lines:
    r"""A binary stream's lines (split on ``\n`` only), decoded, counted as they go."""

    def __init__(self, source: str, stream: BinaryIO) -> None:
        self.source, self.stream, self.number, self.ended = source, stream, 0, True

    def __iter__(self) -> Iterator[str]:
        for raw in self.stream:
            self.number += 1
            if self.number == 1 and raw.startswith(_BOM):  # spreadsheets save CSV with one
                raw = raw[len(_BOM) :]
            self.ended = raw.endswith(b"\n")
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                where = f"{self.source}, line {self.number}"
                raise LogError(f"{where}: not UTF-8 text (byte {exc.start + 1})") from None


def text_columns(source: str, stream: BinaryIO, column: str | None) -> Columns:
    """The columns of a text log to choose from (`column` only, if given); LogError if malformed."""
    lines = _Lines(source, stream)
    rows = iter(lines)
    first = next((line for line in rows if line.strip()), None)
    if first is None:
        raise LogError(f"{source}: empty log")
    if first.lstrip()[:1] in ("[", "{"):
        columns = _json(source, first, rows, lines, column)
    else:
        columns = _csv(source, first, rows, lines, column)
    if columns.place == "line {}" and not lines.ended:  # line by line (CSV, JSON lines)
        cut = f"{source}, line {lines.number}: the last line has no line end, so it may be cut"
        columns.warnings.append(f"{cut} short (a log still being written?)")
    return columns


def _csv(
    source: str, first: str, rest: Iterator[str], lines: _Lines, column: str | None
) -> Columns:
    columns = Columns(source, "line {}", column)
    try:
        header = [name.strip() for name in next(csv.reader([first]))]
        if len(header) == 1 and _is_number(header[0]):  # bare numbers: no header to take
            if column is not None:
                raise LogError(f"{source}: {_NO_COLUMNS.format(column)}")
            columns.asked, rest, header = "metric", itertools.chain([first], rest), ["metric"]
        elif column is not None and column not in header:
            raise LogError(f"{source}: no column {column!r}; columns: {listing(header)}")
        elif len(set(header)) < len(header):
            twice = listing(name for name in header if header.count(name) > 1)
            raise LogError(f"{source}, line {lines.number}: duplicate columns {twice}")
        for cells in csv.reader(rest):
            if len(cells) != len(header) and cells:
                raise LogError(
                    f"{source}, line {lines.number}: {len(cells)} cells, but "
                    f"{'line 1' if header == ['metric'] else 'the header'} has {len(header)}"
                )
            if cells:
                columns.add_row(lines.number, dict(zip(header, cells, strict=True)))
    except csv.Error as exc:
        raise LogError(f"{source}, line {lines.number}: malformed CSV: {exc}") from None
    if not columns.rows:
        raise LogError(f"{source}: no rows under the header")
    return columns


def _is_number(text: str) -> bool:
    try:
        return parse_decimal(text) is not None
    except ValueError:
        return False


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """An object's keys, each once: json would keep only a repeated key's last value."""
    result = dict(pairs)
    if len(result) < len(pairs):
        keys = [key for key, _ in pairs]
        raise ValueError(f"duplicate key {show(next(k for k in keys if keys.count(k) > 1))}")
    return result


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


def _decode(source: str, text: str, start: int, line: int = 0) -> tuple[object, int]:
    """The JSON value at `start` of `text` and where it ends; errors name the line."""
    try:
        return _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        where = f"line {line or exc.lineno} char {exc.colno}"
        raise LogError(f"{source}, {where}: invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # a duplicate key, too many digits, nesting
        what = "JSON nested too deeply" if isinstance(exc, RecursionError) else exc
        at = line or text.count("\n", 0, start) + 1
        raise LogError(f"{source}, line {at}: {what}") from None


def _json(
    source: str, first: str, rest: Iterator[str], lines: _Lines, column: str | None
) -> Columns:
    if first.lstrip().startswith("{"):
        try:
            item = _DECODER.decode(first)
        except (ValueError, RecursionError):
            item = None  # an object over several lines: one document
        # A row, not a whole log: a History dump's or trainer_state.json's values are lists.
        if isinstance(item, dict) and not any(isinstance(v, list) for v in item.values()):
            after = (
                (lines.number, _decode(source, line.strip(), 0, lines.number)[0])
                for line in rest
                if line.strip()
            )
            table = Columns(source, "line {}", column)
            return _add_rows(table, itertools.chain([(lines.number, item)], after))
    # One document: a list is read item by item from its text, never held as objects.
    text = first + "".join(rest)
    start = len(text) - len(text.lstrip())
    if text[start] == "[":
        return _json_list(source, text, start + 1, column)
    document, end = _decode(source, text, start)
    if text[end:].strip() or not isinstance(document, dict):
        at = text.count("\n", 0, end) + 1
        raise LogError(f"{source}, line {at}: more than one JSON value, or not an object")
    if isinstance(document.get("log_history"), list):  # HF Trainer's trainer_state.json
        rows = document["log_history"]
        table = Columns(source, "log_history[{}]", column, ("step",), "eval_loss")
    elif document and all(isinstance(values, list) for values in document.values()):
        lengths = {name: len(values) for name, values in document.items()}
        if len(set(lengths.values())) > 1:
            raise LogError(
                f"{source}: the JSON object's columns differ in length "
                f"({listing(f'{k}: {n}' for k, n in lengths.items())}): Keras's History under "
                "validation_freq > 1; its CSVLogger file lines the epochs up (NA where none)"
            )
        count, table = max(lengths.values()), Columns(source, "index {}", column)
        rows = [{"epoch": i, **{k: v[i] for k, v in document.items()}} for i in range(count)]
    else:
        raise LogError(
            f"{source}: a JSON object is read as JSON lines (one object per line) or as "
            "an object of columns (every value a list, as json.dump(history.history, f) writes)"
        )
    if not rows:
        raise LogError(f"{source}: no rows (log_history is empty, or the columns are)")
    return _add_rows(table, enumerate(rows))


def _add_rows(table: Columns, rows: Iterable[tuple[int, object]]) -> Columns:
    """Add each (place, row) to `table`; every row must be a JSON object."""
    for place, row in rows:
        if not isinstance(row, Mapping):
            where = f"{table.source}, {table.place.format(place)}"
            raise LogError(f"{where}: expected a JSON object, got {show(row)}")
        table.add_row(place, row)
    return table


def _json_list(source: str, text: str, start: int, column: str | None) -> Columns:
    """A JSON list's items, decoded one at a time: objects (rows), or bare numbers."""
    items = _items(source, text, start)
    first = next(items, None)
    if first is None:
        raise LogError(f"{source}: empty JSON list")
    if isinstance(first[1], dict):
        return _add_rows(Columns(source, "item {}", column), itertools.chain([first], items))
    if column is not None:
        raise LogError(f"{source}: {_NO_COLUMNS.format(column)}")
    numbers = Columns(source, "item {}", "metric")
    for number, item in itertools.chain([first], items):
        numbers.add_row(number, {"metric": item})  # not a number: refused, naming the item
    return numbers


def _items(source: str, text: str, start: int) -> Iterator[tuple[int, object]]:
    """Each item, numbered, of the JSON list whose first item is at `start` of `text`."""
    number, position = 0, _skip(text, start)
    while text[position : position + 1] != "]":
        if number:
            if text[position : position + 1] != ",":
                line = text.count("\n", 0, position) + 1
                raise LogError(f"{source}, line {line}: invalid JSON: expected ',' or ']'")
            position = _skip(text, position + 1)
        item, position = _decode(source, text, position)
        yield number, item
        position = _skip(text, position)
        number += 1


def _skip(text: str, position: int) -> int:
    match = _SPACE.match(text, position)
    return match.end() if match else position
