"""What a reader keeps while it reads, and how the column and its values are chosen.

A reader adds each value to a :class:`Columns`, which keeps per value its number,
epoch or step and place (24 bytes), never the file; docs/cli.md says which values count.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Iterable, Mapping, Sequence

from ..._checks import MAX_INT, is_int, is_real, show
from ..numbers import parse_decimal
from ..replay import MetricLog

INDEX_COLUMNS = ("epoch", "step")
# Learning rates logged beside the metrics (Keras's, Lightning's lr-SGD): never the metric.
LR_COLUMNS, LR_PREFIXES = ("lr", "learning_rate"), ("learning_rate_", "lr-")
MISSING_CELLS = frozenset({"", "NA"})  # NA: keras.callbacks.CSVLogger's absent key
_LISTED = 12  # names in a message, at most: a log of 100,000 columns gets one short line


class LogError(ValueError):
    """A log that cannot be replayed. The message is one line saying what and where."""


def listing(names: Iterable[str]) -> str:
    """Names for a message, at most a dozen: ``a, b, ... (N more)``.

    Example:
        >>> listing(f"c{i}" for i in range(14))
        'c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, ... (2 more)'
    """
    names = list(names)
    shown = ", ".join(name if name.isprintable() else show(name) for name in names[:_LISTED])
    return shown + (f", ... ({len(names) - _LISTED} more)" if len(names) > _LISTED else "")


def number(value: object) -> float | None:
    """A cell's number, or None for a missing value.

    Raises:
        ValueError: the value is present but not a number (or too large for a float).

    Example:
        >>> number(" 1.5 "), number("NA"), number(None), number(2)
        (1.5, None, None, 2.0)
    """
    if type(value) is float:  # a JSON number: the common case, and no ABC to ask
        return value
    if isinstance(value, str):
        return None if value.strip(" \t") in MISSING_CELLS else parse_decimal(value)
    if value is None:
        return None
    if not is_real(value):
        raise ValueError(f"{show(value)} is not a number")
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise ValueError(f"{show(value)} is too large for a float") from None


def index_number(value: object) -> int | None:
    """`value` as an epoch or step (an integral number within 64 bits), or None.

    Example:
        >>> index_number("3"), index_number(4.0), index_number("one"), index_number(0.5)
        (3, 4, None, None)
    """
    if type(value) is int and abs(value) <= MAX_INT:  # the common cases first
        return value
    if type(value) is str and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    try:
        whole = int(value) if is_int(value) else number(value)  # type: ignore[call-overload]
    except ValueError:
        return None
    if whole is None or abs(whole) > MAX_INT or not float(whole).is_integer():
        return None
    return int(whole)


class _Column:
    """One column's values as read: value, index (-1 where none) and place of each."""

    def __init__(self) -> None:
        self.values, self.index, self.places = array("d"), array("q"), array("q")
        self.bad: tuple[int, str] | None = None  # the first value that is no number


class Columns:
    """The columns of one log, filled row by row (tables) or value by value (series).

    `place` names a place with ``{}`` for its number (``line {}``); `column` is the one
    asked for (None keeps all, to choose at the end); a row's index is the first of
    `index_columns` it has; `default` is the format's default metric.
    """

    def __init__(
        self,
        source: str,
        place: str,
        column: str | None,
        index_columns: Sequence[str] = INDEX_COLUMNS,
        default: str = "val_loss",
    ) -> None:
        self.source, self.place, self.asked, self.default = source, place, column, default
        # A series (no index columns: TensorBoard's, MLflow's) is by step.
        self.index_columns, self.index_name = index_columns, "row" if index_columns else "step"
        self.rows = 0  # rows added (tables): those without the chosen column were skipped
        self.columns: dict[str, _Column] = {}
        self.warnings: list[str] = []

    def add_row(self, place: int, cells: Mapping[str, object]) -> None:
        """Add a table row: each column's value at the row's epoch (or step)."""
        self.rows += 1
        if self.asked is not None and cells.get(self.asked) in ("", None):
            return  # nothing to keep (a training-only row), so its index is not read either
        index = -1
        for name in self.index_columns:
            if cells.get(name) not in (None, ""):
                found = index_number(cells[name])
                if found is None:
                    where = f"{self.source}, {self.place.format(place)}, column {name!r}"
                    raise LogError(f"{where}: {show(cells[name])} is not a whole number")
                index, self.index_name = found, name
                break
        if self.asked is not None:
            self.add(self.asked, cells[self.asked], index, place)
            return
        for name, value in cells.items():
            if name not in self.index_columns:  # the index is no metric to keep
                self.add(name, value, index, place)
            else:
                self.seen(name)
        default = self.columns.get(self.default)
        if default is not None and default.values:  # the default will be chosen: keep it only
            self.asked = self.default

    def seen(self, name: str) -> None:
        """Note that the log has column `name`, without keeping its values."""
        if name not in self.columns:
            self.columns[name] = _Column()

    def add(self, name: str, value: object, index: int, place: int) -> None:
        """Add one value of column `name`, logged at `index` (-1: none)."""
        column = self.columns.get(name) or self.columns.setdefault(name, _Column())
        try:
            metric = number(value)
        except ValueError as exc:
            column.bad = column.bad or (place, str(exc))
            return
        if metric is not None:
            column.values.append(metric)
            column.index.append(index)
            column.places.append(place)

    def candidates(self) -> list[str]:
        """The columns that may be the metric when none is asked for."""
        return [
            name
            for name, column in self.columns.items()
            if name not in (*INDEX_COLUMNS, *LR_COLUMNS)
            and not name.startswith(LR_PREFIXES)
            and column.values
        ]

    def choose(self, every_row: bool) -> MetricLog:
        """The chosen column's values; the last of each epoch unless `every_row`.

        A series' (TensorBoard's, MLflow's) ``epoch`` tag gives each step's epoch.

        Raises:
            LogError: no single column to choose, or one holding no number or a non-number.
        """
        name = self._chosen()
        column = self.columns[name]
        if column.bad is not None:
            place, message = column.bad
            raise LogError(f"{self.source}, {self.place.format(place)}, column {name!r}: {message}")
        if not column.values:
            raise LogError(f"{self.source}: column {name!r} has no values ({self.rows} rows)")
        index_name, index = self.index_name, column.index
        if not self.index_columns and "epoch" in self.columns and name != "epoch":
            steps, marks = self.columns["epoch"].index, self.columns["epoch"].values
            at = (max(bisect.bisect_right(steps, step) - 1, 0) for step in index)
            index_name, index = "epoch", array("q", (int(marks[i]) for i in at))
        if -1 in index:  # some rows have no index: number the values instead
            index_name, index = "row", array("q", range(len(column.values)))
        values, places = column.values, column.places
        last_of_epoch = index_name == "epoch" and not every_row
        if last_of_epoch:  # of each run of values logged in one epoch, the last
            last = [i + 1 == len(index) or index[i + 1] != e for i, e in enumerate(index)]
            values = array("d", itertools.compress(values, last))
            index = array("q", itertools.compress(index, last))
            places = array("q", itertools.compress(places, last))
        skipped = max(self.rows - len(column.values), 0)
        superseded = len(column.values) - len(values)
        return MetricLog(
            self.source, name, values, index, index_name, skipped, superseded, places,
            self.place, tuple(self.warnings), last_of_epoch,
        )  # fmt: skip

    def _chosen(self) -> str:
        names = list(self.columns)
        if self.asked is not None:
            if self.asked not in self.columns:
                raise LogError(
                    f"{self.source}: no column {self.asked!r}; columns: {listing(names)}"
                )
            return self.asked
        default = self.columns.get(self.default)
        if default is not None and (default.values or default.bad):
            return self.default
        candidates = self.candidates()
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise LogError(
                f"{self.source}: no numeric column besides epoch, step and learning rates; "
                f"columns: {listing(names)}; choose one with --column"
            )
        no_default = f"{self.default} has no values" if default else f"no {self.default}"
        raise LogError(
            f"{self.source}: several metric columns ({listing(candidates)}) and {no_default}; "
            "choose one with --column"
        )
