"""What every reader hands on, and the rules every reader shares.

A reader turns a log into a :class:`MetricLog`: the chosen metric's values, the
epoch shown beside each, and where each came from (for messages). The values are
kept in compact arrays, 8 bytes each, so a log of millions of rows costs a few
tens of megabytes whatever its other columns hold.

Shared rules:

- A missing value -- an empty CSV cell, Keras's ``NA``, a JSON ``null`` or an
  absent key -- skips the row.
- ``nan`` and ``inf`` are numbers: what they do is the config's ``on_nonfinite``.
- A number in text is one as loggers write it (:func:`plateau.cli.numbers.parse_decimal`):
  ASCII digits, no underscores, padded with spaces or tabs at most.
- Any other value that is not a number is an error naming file, row and column.
- The column, unless asked for: the format's default (``val_loss``; ``eval_loss``
  for HF Trainer) when it holds any value; else the only column that holds a
  number, not counting ``epoch``, ``step`` and learning rates.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from ..._checks import MAX_INT, is_int, is_real, show
from ..numbers import parse_decimal

DEFAULT_COLUMN = "val_loss"
INDEX_COLUMNS = ("epoch", "step")
# Learning rates logged beside the metrics: the schedule's output, never its input.
LR_COLUMNS = ("lr", "learning_rate")
LR_PREFIXES = ("learning_rate_", "lr-")  # Keras; Lightning's LearningRateMonitor (lr-SGD)
# "NA" is what keras.callbacks.CSVLogger writes for a key absent from an epoch's logs.
MISSING_CELLS = frozenset({"", "NA"})


class LogError(ValueError):
    """A log that cannot be replayed. The message is one line saying what and where."""


@attrs.frozen
class MetricLog:
    """The metric sequence read from a log, ready for :func:`plateau.simulate`.

    Attributes:
        source: The file name as given, or ``<stdin>``.
        column: The column (tag, key) the metrics came from (``metric`` for a bare
            JSON list).
        metrics: One value per replayed row, in log order; may hold nan or inf.
        epochs: The epoch (or logged step) shown beside each metric.
        skipped: Rows skipped because the column was empty there.
        where_of: Maps a metric's index to its place, as messages name it
            (``row 3 (line 4)``).

    Example:
        >>> log = MetricLog("a.json", "metric", array("d", [0.5]), array("q", [0]), 0,
        ...                 lambda i: f"item {i}")
        >>> log.where(0), len(log)
        ('item 0', 1)
    """

    source: str
    column: str
    metrics: Sequence[float]
    epochs: Sequence[int]
    skipped: int
    where_of: Callable[[int], str] = attrs.field(repr=False)

    def where(self, index: int) -> str:
        """The place of metric number `index` in the log."""
        return self.where_of(index)

    def __len__(self) -> int:
        return len(self.metrics)


def number(value: object) -> float | None:
    """A cell's number, or None for a missing value.

    Raises:
        ValueError: the value is present but not a number (or too large for a float).

    Example:
        >>> number(" 1.5 "), number("NA"), number(None), number(2)
        (1.5, None, None, 2.0)
    """
    if value is None:
        return None
    if isinstance(value, str):
        return None if is_blank(value) else parse_decimal(value)
    if is_real(value):
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            raise ValueError(f"{show(value)} is too large for a float") from None
    raise ValueError(f"{show(value)} is not a number")


def is_blank(text: str) -> bool:
    """Whether a text cell is a missing value: empty, ``NA``, or only spaces and tabs around it."""
    return text.strip(" \t") in MISSING_CELLS


def is_present(value: object) -> bool:
    """Whether a cell holds a value at all (a number or not)."""
    if value is None:
        return False
    return not (isinstance(value, str) and is_blank(value))


def is_number(value: object) -> bool:
    """Whether a cell holds a number."""
    try:
        return number(value) is not None
    except ValueError:
        return False


def is_lr_column(name: str) -> bool:
    """Whether `name` is a learning rate logged beside the metrics, never a default metric.

    Example:
        >>> [is_lr_column(n) for n in ("lr", "learning_rate", "lr-Adam/pg1", "val_loss")]
        [True, True, True, False]
    """
    return name in LR_COLUMNS or name.startswith(LR_PREFIXES)


def is_candidate(name: str) -> bool:
    """Whether `name` may be the metric when none is asked for: not an index nor an lr."""
    return name not in INDEX_COLUMNS and not is_lr_column(name)


def epoch_number(value: object) -> int | None:
    """`value` as an epoch (an integral number within 64 bits), or None.

    Example:
        >>> epoch_number("3"), epoch_number(4.0), epoch_number("one"), epoch_number(0.5)
        (3, 4, None, None)
    """
    if is_int(value):
        number_ = int(value)  # type: ignore[call-overload]
    else:
        try:
            parsed = number(value)
        except ValueError:
            return None
        if parsed is None or not parsed.is_integer():
            return None
        number_ = int(parsed)
    return number_ if -MAX_INT <= number_ <= MAX_INT else None


def choose(
    source: str,
    columns: Sequence[str],
    present: Callable[[str], bool],
    numeric: Callable[[str], bool],
    column: str | None,
    *,
    default: str = DEFAULT_COLUMN,
    kind: str = "column",
) -> str:
    """The column to replay: `column`, else `default` if `present`, else the only candidate.

    Args:
        source: Names the log in messages.
        columns: Every column, in log order.
        present: Whether a column holds any value.
        numeric: Whether a column holds any number.
        column: The column asked for (``--column``), or None.
        default: The format's default metric.
        kind: What the format calls a column (``tag``, ``metric``), for messages.

    Raises:
        LogError: the column asked for does not exist, or there is no single choice.
    """
    listed = ", ".join(columns)
    if column is not None:
        if column not in columns:
            raise LogError(f"{source}: no {kind} {column!r}; {kind}s: {listed}")
        return column
    default_present = default in columns
    if default_present and present(default):
        return default
    candidates = [name for name in columns if is_candidate(name) and numeric(name)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise LogError(
            f"{source}: no numeric {kind} besides epoch, step and learning rates; "
            f"{kind}s: {listed}; choose one with --column"
        )
    no_default = f"{default} has no values" if default_present else f"no {default}"
    raise LogError(
        f"{source}: several metric {kind}s ({', '.join(candidates)}) and {no_default}; "
        "choose one with --column"
    )


@attrs.frozen
class Row:
    """One row of a log held in memory (JSON shapes, trainer_state.json).

    Attributes:
        where: The row's place, as messages name it.
        cells: The row's values by column.
        epoch: The epoch the row's position implies, when the shape fixes one.
    """

    where: str
    cells: Mapping[str, object]
    epoch: int | None = None


def rows_log(
    source: str,
    columns: Sequence[str],
    rows: Sequence[Row],
    column: str | None,
    *,
    default: str = DEFAULT_COLUMN,
    epoch_column: str = "epoch",
) -> MetricLog:
    """Choose the column of in-memory `rows` and pull its values out.

    The epoch shown is the row's `epoch_column` when the log has that column, else
    the row's own epoch, else the metric's position.

    Raises:
        LogError: no rows, no single column, or a value that is not a number.
    """
    if not rows:
        raise LogError(f"{source}: no rows under the header")

    def present(name: str) -> bool:
        return any(is_present(row.cells.get(name)) for row in rows)

    def numeric(name: str) -> bool:
        return any(is_number(row.cells.get(name)) for row in rows)

    chosen = choose(source, columns, present, numeric, column, default=default)
    has_epoch = epoch_column in columns and chosen != epoch_column
    metrics, epochs, where = array("d"), array("q"), []
    for row in rows:
        value = row.cells.get(chosen)
        metric = cell_number(source, row.where, chosen, value)
        if metric is None:
            continue
        if has_epoch:
            epoch = epoch_number(row.cells.get(epoch_column))
            if epoch is None:
                raise LogError(
                    f"{source}, {row.where}, column {epoch_column!r}: "
                    f"{show(row.cells.get(epoch_column))} is not an epoch number"
                )
        else:
            epoch = len(metrics) if row.epoch is None else row.epoch
        metrics.append(metric)
        epochs.append(epoch)
        where.append(row.where)
    return finish(source, chosen, columns, metrics, epochs, len(rows), where.__getitem__)


def cell_number(source: str, where: str, column: str, value: object) -> float | None:
    """:func:`number`, with a :class:`LogError` naming file, place and column."""
    try:
        return number(value)
    except ValueError as exc:
        raise LogError(f"{source}, {where}, column {column!r}: {exc}") from None


def finish(
    source: str,
    column: str,
    columns: Iterable[str],
    metrics: Sequence[float],
    epochs: Sequence[int],
    rows: int,
    where_of: Callable[[int], str],
) -> MetricLog:
    """The :class:`MetricLog`, or a :class:`LogError` if the column had no value."""
    if not metrics:
        raise LogError(
            f"{source}: column {column!r} has no values ({rows} rows, all empty); "
            f"columns: {', '.join(columns)}"
        )
    return MetricLog(source, column, metrics, epochs, rows - len(metrics), where_of)
