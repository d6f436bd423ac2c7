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
from ..numbers import parse_decimal
from ._metrics import (
    DEFAULT_COLUMN,
    LogError,
    MetricLog,
    choose,
    epoch_number,
    finish,
    is_blank,
    is_candidate,
    is_number,
    is_present,
)

_NOT_A_NUMBER = float("nan")
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
        table = _Table(source, file)
        if column is not None or DEFAULT_COLUMN in table.columns:
            chosen = choose(source, table.columns, lambda _: True, lambda _: True, column)
            log = _extract(table, chosen, open_text, tentative=column is None)
            if log is not None:
                return log
    # No --column and no val_loss value: find the one numeric column, then read it.
    with open_text() as file:
        table = _Table(source, file)
        present, numeric = _scan(table)
        chosen = choose(source, table.columns, present.__contains__, numeric.__contains__, None)
    with open_text() as file:
        log = _extract(_Table(source, file), chosen, open_text, tentative=False)
        assert log is not None
        return log


class _Table:
    """A CSV file's header, and its rows under it."""

    def __init__(self, source: str, file: TextIO) -> None:
        # A byte that is not UTF-8 raises UnicodeDecodeError from the text file: the
        # caller, which has the bytes, names its line.
        self.source = source
        self.reader = csv.reader(file)
        try:
            header: list[str] = []
            while not header:
                header = next(self.reader)
        except StopIteration:
            raise LogError(f"{source}: empty log") from None
        except csv.Error as exc:
            raise self.malformed(exc) from None
        self.columns = [name.strip() for name in header]
        seen: set[str] = set()
        for name in self.columns:
            if name in seen:
                raise LogError(f"{source}, line {self.reader.line_num}: duplicate column {name!r}")
            seen.add(name)

    def malformed(self, exc: csv.Error) -> LogError:
        return LogError(f"{self.source}, line {self.reader.line_num}: malformed CSV: {exc}")

    def ragged(self, cells: list[str], count: int) -> LogError:
        return LogError(
            f"{self.source}, row {count} (line {self.reader.line_num}): "
            f"{len(cells)} cells, but the header has {len(self.columns)}"
        )

    def rows(self) -> Iterator[tuple[list[str], int, int]]:
        """(cells, row number, line number) of each row; the slow, simple way."""
        count, width = 0, len(self.columns)
        try:
            for cells in self.reader:
                if not cells:
                    continue
                count += 1
                if len(cells) != width:
                    raise self.ragged(cells, count)
                yield cells, count, self.reader.line_num
        except csv.Error as exc:
            raise self.malformed(exc) from None


def _scan(table: _Table) -> tuple[set[str], set[str]]:
    """The columns holding any value, and those holding any number."""
    present: set[str] = set()
    numeric: set[str] = set()
    open_ = [(i, name) for i, name in enumerate(table.columns) if is_candidate(name)]
    count = 0
    for cells, count, _ in table.rows():  # noqa: B007 - count is the rows' number after the loop
        for i, name in open_:
            if is_number(cells[i]):
                numeric.add(name)
            if is_present(cells[i]):
                present.add(name)
        open_ = [(i, name) for i, name in open_ if name not in numeric]
    if not count:
        raise LogError(f"{table.source}: no rows under the header")
    return present, numeric


def _extract(table: _Table, column: str, open_text: Opener, *, tentative: bool) -> MetricLog | None:
    """Pull `column`'s values; a `tentative` read of a column without values gives None.

    Only the values and the epochs are kept: where a value came from is found by
    reading the file again, for the rare message that names it (:class:`_Locator`).
    """
    source, columns, reader = table.source, table.columns, table.reader
    index, width = columns.index(column), len(columns)
    epoch_index = columns.index("epoch") if "epoch" in columns and column != "epoch" else -1
    metrics, epochs = array("d"), array("q")
    add_metric, add_epoch = metrics.append, epochs.append
    count = epoch = 0
    epoch_text: str | None = None
    try:
        # The hot loop of a big log: most rows of a Lightning log lack val_loss, so
        # the empty cell is tested before anything else is done with the row.
        for cells in reader:
            if not cells:
                continue
            count += 1
            if len(cells) != width:
                raise table.ragged(cells, count)
            cell = cells[index]
            if not cell or cell == "NA":
                continue
            try:
                metric = float(cell)
            except ValueError:
                metric = _NOT_A_NUMBER
            # float() takes more than loggers write (1_0, non-ASCII digits, Unicode
            # spaces): what is not plainly a finite ASCII number is judged the strict way.
            if metric - metric != 0.0 or "_" in cell or not (cell.isascii() and cell.isprintable()):
                if is_blank(cell):
                    continue
                try:
                    metric = parse_decimal(cell)
                except ValueError as exc:
                    raise LogError(
                        f"{source}, row {count} (line {reader.line_num}), column {column!r}: {exc}"
                    ) from None
            if epoch_index < 0:
                add_epoch(len(metrics))
            elif cells[epoch_index] == epoch_text:  # many rows share an epoch: parse once
                add_epoch(epoch)
            else:
                epoch_text = cells[epoch_index]
                try:
                    if not (epoch_text.isascii() and epoch_text.isdigit()):
                        raise ValueError(epoch_text)  # int() takes "1_0" and non-ASCII digits
                    epoch = int(epoch_text)
                    add_epoch(epoch)
                except (ValueError, OverflowError):  # "3.0", "1e3", "-1", or beyond 64 bits
                    parsed = epoch_number(epoch_text)
                    if parsed is None:
                        raise LogError(
                            f"{source}, row {count} (line {reader.line_num}), column 'epoch': "
                            f"{show(epoch_text)} is not an epoch number"
                        ) from None
                    epoch = parsed
                    add_epoch(epoch)
            add_metric(metric)
    except csv.Error as exc:
        raise table.malformed(exc) from None
    if not count:
        raise LogError(f"{source}: no rows under the header")
    if tentative and not metrics:
        return None
    where = _Locator(source, index, open_text)
    return finish(source, column, columns, metrics, epochs, count, where)


class _Locator:
    """Names the place of the i-th value read, by reading the rows again up to it."""

    def __init__(self, source: str, index: int, open_text: Opener) -> None:
        self.source, self.index, self.open_text = source, index, open_text

    def __call__(self, i: int) -> str:
        with self.open_text() as file:
            seen = -1
            for cells, count, line in _Table(self.source, file).rows():
                if not is_blank(cells[self.index]):
                    seen += 1
                    if seen == i:
                        return f"row {count} (line {line})"
        return f"value {i}"  # pragma: no cover - the file changed under us
