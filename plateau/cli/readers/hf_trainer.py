"""Hugging Face ``Trainer``'s ``trainer_state.json``: the ``log_history`` list.

``Trainer`` saves ``trainer_state.json`` in each checkpoint directory (and in the
output directory at the end). Its ``log_history`` holds one object per log
event: training logs (``loss``, ``grad_norm``, ``learning_rate``), evaluations
(``eval_``-prefixed keys: ``eval_loss``, ``eval_runtime``, ...) and the final
summary (``train_loss``, ``train_runtime``, ...), each with the ``epoch``
(a float: 0.5 is half-way through the first) and the global ``step``.

The default column is ``eval_loss``; an entry without the column (a training
log) is skipped. The epoch shown is the entry's ``step``.

Example:
    >>> log = read_trainer_state("trainer_state.json", {"log_history": [
    ...     {"loss": 2.0, "epoch": 0.5, "step": 5},
    ...     {"eval_loss": 1.5, "epoch": 1.0, "step": 10}]})
    >>> log.column, list(log.metrics), list(log.epochs), log.skipped
    ('eval_loss', [1.5], [10], 1)
"""

from __future__ import annotations

from collections.abc import Mapping

from ..._checks import show
from ._metrics import LogError, MetricLog, Row, rows_log

FILE_NAME = "trainer_state.json"
DEFAULT_COLUMN = "eval_loss"


def is_trainer_state(document: object) -> bool:
    """Whether a JSON document is a trainer_state.json: an object with a log_history list."""
    return isinstance(document, Mapping) and isinstance(document.get("log_history"), list)


def read_trainer_state(
    source: str, document: Mapping[str, object], column: str | None = None
) -> MetricLog:
    """Read one key of `document`'s ``log_history``.

    Raises:
        LogError: an entry that is not an object, no single column, or a value
            that is not a number.
    """
    history = document["log_history"]
    assert isinstance(history, list)
    if not history:
        raise LogError(f"{source}: log_history is empty (no logging step reached yet?)")
    columns: dict[str, None] = {}
    rows: list[Row] = []
    for index, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise LogError(f"{source}, log_history[{index}]: expected an object, got {show(entry)}")
        columns.update(dict.fromkeys(entry))
        rows.append(Row(f"log_history[{index}]", entry))
    return rows_log(
        source, list(columns), rows, column, default=DEFAULT_COLUMN, epoch_column="step"
    )
