r"""CSV logs with a header row: Lightning's and Keras's ``CSVLogger`` files, any table.

The file is read as a stream, never whole: the pass that pulls the metric out
keeps only that column's values (and the epochs beside them), so a log of a
million rows replays in about the time ``csv.reader`` takes to walk it. When no
``--column`` is given and the log has no ``val_loss`` with a value, one more pass
first finds which column holds numbers.

Example:
    >>> import io
    >>> text = "epoch,step,train_loss,val_loss\n0,9,2.0,\n0,19,1.5,1.3\n1,39,0.9,0.8\n"
    >>> log = read_csv("metrics.csv", lambda: io.StringIO(text))
    >>> log.column, list(log.metrics), list(log.epochs), log.skipped
    ('val_loss', [1.3, 0.8], [0, 1], 1)
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Callable, Iterator
from typing import TextIO

from ..._checks import show
from ._metrics import (
    DEFAULT_COLUMN,
    MISSING_CELLS,
    LogError,
    MetricLog,
    choose,
    epoch_number,
    finish,
    is_candidate,
    is_number,
    is_present,
)

# Opens the log's text afresh for each pass (newline="" as the csv module wants).
Opener = Callable[[], TextIO]


def read_csv(source: str, open_text: Opener, column: str | None = None) -> MetricLog:
    """Read the metric `column` (or the default one) from a CSV log.

    Args:
        source: Names the log in messages.
        open_text: Opens the log's text; called once per pass over it.
        column: The column asked for, or None to choose as the module says.

    Raises:
        LogError: a malformed file, no single column, or a cell that is not a number.
    """
    with open_text() as file:
        columns, rows = _start(source, file)
        if column is not None or DEFAULT_COLUMN in columns:
            chosen = choose(source, columns, lambda _: True, lambda _: True, column)
            log = _extract(source, columns, rows, chosen, tentative=column is None)
            if log is not None:
                return log
    # No --column and no val_loss value: find the one numeric column, then read it.
    with open_text() as file:
        columns, rows = _start(source, file)
        present, numeric = _scan(source, columns, rows)
        chosen = choose(source, columns, present.__contains__, numeric.__contains__, None)
    with open_text() as file:
        columns, rows = _start(source, file)
        log = _extract(source, columns, rows, chosen, tentative=False)
        assert log is not None
        return log


_Rows = Iterator[tuple[list[str], int, int]]


def _start(source: str, file: TextIO) -> tuple[list[str], _Rows]:
    """The header, and an iterator of (cells, row number, line number) under it."""
    reader = csv.reader(file)

    # A byte that is not UTF-8 raises UnicodeDecodeError from the text file: the
    # caller, which has the bytes, names its line.
    def fail(exc: csv.Error) -> LogError:
        return LogError(f"{source}, line {reader.line_num}: malformed CSV: {exc}")

    try:
        header: list[str] = []
        while not header:
            header = next(reader)
    except StopIteration:
        raise LogError(f"{source}: empty log") from None
    except csv.Error as exc:
        raise fail(exc) from None
    columns = [name.strip() for name in header]
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise LogError(f"{source}, line {reader.line_num}: duplicate column {name!r}")
        seen.add(name)
    width = len(columns)

    def rows() -> _Rows:
        count = 0
        try:
            for cells in reader:
                if not cells:
                    continue
                count += 1
                if len(cells) != width:
                    raise LogError(
                        f"{source}, row {count} (line {reader.line_num}): "
                        f"{len(cells)} cells, but the header has {width}"
                    )
                yield cells, count, reader.line_num
        except csv.Error as exc:
            raise fail(exc) from None

    return columns, rows()


def _scan(source: str, columns: list[str], rows: _Rows) -> tuple[set[str], set[str]]:
    """The columns holding any value, and those holding any number."""
    present: set[str] = set()
    numeric: set[str] = set()
    open_ = [(i, name) for i, name in enumerate(columns) if is_candidate(name)]
    count = 0
    for cells, _, _ in rows:
        count += 1
        for i, name in open_:
            if is_number(cells[i]):
                numeric.add(name)
            if is_present(cells[i]):
                present.add(name)
        open_ = [(i, name) for i, name in open_ if name not in numeric]
    if not count:
        raise LogError(f"{source}: no rows under the header")
    return present, numeric


def _extract(
    source: str, columns: list[str], rows: _Rows, column: str, *, tentative: bool
) -> MetricLog | None:
    """Pull `column`'s values; a `tentative` read of a column without values gives None."""
    index = columns.index(column)
    epoch_index = columns.index("epoch") if "epoch" in columns and column != "epoch" else -1
    metrics, epochs = array("d"), array("q")
    row_numbers, line_numbers = array("q"), array("q")
    count = 0
    # The hot loop of a big log: most rows of a Lightning log lack val_loss, so the
    # empty cell is tested before anything else is done with the row.
    for cells, count, line in rows:  # count, read after the loop, is the number of rows
        cell = cells[index]
        if not cell or cell == "NA":
            continue
        try:
            metric = float(cell)
        except ValueError:
            if cell.strip() in MISSING_CELLS:
                continue
            raise LogError(
                f"{source}, row {count} (line {line}), column {column!r}: "
                f"{show(cell)} is not a number"
            ) from None
        if epoch_index >= 0:
            text = cells[epoch_index]
            try:
                epochs.append(int(text))
            except (ValueError, OverflowError):  # "3.0", "1e3", or beyond 64 bits
                parsed = epoch_number(text)
                if parsed is None:
                    raise LogError(
                        f"{source}, row {count} (line {line}), column 'epoch': "
                        f"{show(text)} is not an epoch number"
                    ) from None
                epochs.append(parsed)
        else:
            epochs.append(len(metrics))
        metrics.append(metric)
        row_numbers.append(count)
        line_numbers.append(line)
    if not count:
        raise LogError(f"{source}: no rows under the header")
    if tentative and not metrics:
        return None

    def where(i: int) -> str:
        return f"row {row_numbers[i]} (line {line_numbers[i]})"

    return finish(source, column, columns, metrics, epochs, count, where)
