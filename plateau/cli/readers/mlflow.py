"""MLflow runs: ``mlflow.db`` through mlflow's own client, the file store with the stdlib.

- SQLite store (``mlflow.db``, MLflow 3's default): read with
  ``mlflow.MlflowClient`` (needs ``plateau-lr[mlflow]``), which reads whatever
  schema its own migrations left. A NaN is NaN; MLflow stores +-inf as the largest
  float, which is what is replayed.
- File store (``mlruns/``, which MLflow 3 keeps in maintenance mode): each
  ``<experiment>/<run>/metrics/<key>`` holds one line per value,
  ``<timestamp_ms> <value> <step>``; a ``/`` in a key makes subfolders. PATH may be
  a run directory, an experiment directory or the ``mlruns`` root.

A store holding several runs needs ``--run`` (a run id or name); the error lists
the runs and the metrics each holds. A key's values are replayed in step order
(ties in logging order), each at its step; an ``epoch`` key tells each step's epoch.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..._checks import show
from ..numbers import parse_decimal, parse_integer
from ..replay import MetricLog
from ._metrics import Columns, LogError, listing

EXTRA = "plateau-lr[mlflow]"
SQLITE_MAGIC = b"SQLite format 3\x00"
# (run id, run name, metric keys) of each run of a store.
_Run = tuple[str, str, list[str]]


def is_run_dir(path: str) -> bool:
    """Whether `path` is a file-store run directory (``meta.yaml`` beside ``metrics/``)."""
    return os.path.isfile(os.path.join(path, "meta.yaml")) and os.path.isdir(
        os.path.join(path, "metrics")
    )


def run_dirs(path: str) -> list[str]:
    """The file-store runs at `path`: itself, its children, or its grandchildren."""
    if is_run_dir(path):
        return [path]
    for depth in (1, 2):
        pattern = "/".join(["[!.]*"] * depth)
        found = sorted(str(p) for p in Path(path).glob(pattern) if is_run_dir(str(p)))
        if found:
            return found
    return []


def pick(source: str, runs: Sequence[_Run], run: str | None, what: str = "metrics") -> int:
    """The index of the run asked for (id or name), or of the only one.

    Raises:
        LogError: no run, or several and none (or no single one) asked for; the
            message lists each run and what it holds.
    """
    if run is not None:
        matches = [i for i, (run_id, name, _) in enumerate(runs) if run in (run_id, name)]
        if len(matches) == 1:
            return matches[0]
    elif len(runs) == 1:
        return 0
    if not runs:
        raise LogError(f"{source}: no run logged any metric")
    listed = "; ".join(
        f"{run_id}{f' ({name})' if name else ''}: {listing(keys) or f'no {what}'}"
        for run_id, name, keys in runs[:6]
    ) + (f"; ... ({len(runs) - 6} more)" if len(runs) > 6 else "")
    asked = "choose one with --run" if run is None else f"none is {run!r}"
    raise LogError(f"{source}: {len(runs)} runs ({listed}); {asked}")


def described(source: str, run: _Run) -> str:
    """What the output names as replayed: the store and its run."""
    run_id, name, _ = run
    return f"{source}, run {run_id}" + (f" ({name})" if name else "")


def read_file_store(path: str, column: str | None, run: str | None, every_row: bool) -> MetricLog:
    """Read one metric of one run of an MLflow file store at `path`.

    Raises:
        LogError: no run, several runs and no ``--run``, a malformed metric file,
            or no single metric to replay.
    """
    runs = []
    for run_dir in run_dirs(path):
        metrics = os.path.join(run_dir, "metrics")
        keys = sorted(
            os.path.relpath(os.path.join(root, name), metrics).replace(os.sep, "/")
            for root, _, names in os.walk(metrics)
            for name in names
        )
        runs.append((os.path.basename(run_dir), _run_name(run_dir), keys))
    chosen = runs[pick(path, runs, run)]
    run_dir = next(d for d in run_dirs(path) if os.path.basename(d) == chosen[0])
    series = Columns(described(path, chosen), "line {}", column, index_columns=())
    series.index_name = "step"
    for key in chosen[2]:
        if column is None or key in (column, "epoch"):
            _metric_file(os.path.join(run_dir, "metrics", *key.split("/")), key, series)
    return series.choose(every_row, "epoch")


def _run_name(run_dir: str) -> str:
    try:
        with open(os.path.join(run_dir, "meta.yaml"), encoding="utf-8") as file:
            for line in file:
                if line.startswith("run_name:"):
                    return line.partition(":")[2].strip().strip("'\"")
    except (OSError, UnicodeDecodeError):
        pass
    return ""


def _metric_file(file: str, key: str, series: Columns) -> None:
    """Add a metric file's values to `series`, in step order (ties in logging order)."""
    steps, values, lines = array("q"), array("d"), array("q")
    try:
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                parts = line.split()
                try:
                    if len(parts) not in (0, 2, 3):
                        raise ValueError(line)
                    if parts:
                        parse_integer(parts[0])  # the timestamp: checked, not kept
                        values.append(parse_decimal(parts[1]))
                        steps.append(parse_integer(parts[2]) if len(parts) == 3 else 0)
                        lines.append(number)
                except ValueError:
                    raise LogError(
                        f"{file}, line {number}: expected '<timestamp> <value> <step>', "
                        f"got {show(line.strip())}"
                    ) from None
    except OSError as exc:
        raise LogError(f"{file}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LogError(f"{file}: not UTF-8 text") from None
    order: Iterable[int] = range(len(steps))
    if any(steps[i] > steps[i + 1] for i in range(len(steps) - 1)):  # rare: sort them
        order = sorted(order, key=steps.__getitem__)  # stable: ties in logging order
    for i in order:
        series.add(key, values[i], steps[i], lines[i])


def read_sqlite(path: str, column: str | None, run: str | None, every_row: bool) -> MetricLog:
    """Read one metric of one run of an MLflow SQLite store (``mlflow.db``).

    Raises:
        LogError: no ``mlflow``, not an MLflow store, several runs and no ``--run``,
            or no single metric to replay.
    """
    _check_tables(path)  # the client would create its tables in any other SQLite file
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise LogError(f"{path}: reading an MLflow SQLite store needs '{EXTRA}'") from None
    try:
        client = MlflowClient(tracking_uri=f"sqlite:///{Path(path).resolve()}")
        experiments = [e.experiment_id for e in client.search_experiments()]
        found = client.search_runs(experiments, max_results=50_000) if experiments else []
        runs = sorted((r.info.run_id, r.info.run_name or "", sorted(r.data.metrics)) for r in found)
        chosen = runs[pick(path, runs, run)]
        series = Columns(described(path, chosen), "step {}", column, index_columns=())
        series.index_name = "step"
        for key in chosen[2]:
            if column is None or key in (column, "epoch"):
                # Step order, ties in logging order (the sort is stable).
                history = client.get_metric_history(chosen[0], key)
                for metric in sorted(history, key=lambda m: (m.step, m.timestamp)):
                    series.add(key, metric.value, metric.step, metric.step)
    except MlflowException as exc:
        raise LogError(f"{path}: mlflow cannot read it: {exc.message}") from None
    return series.choose(every_row, "epoch")


def _check_tables(path: str) -> None:
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        raise LogError(f"{path}: not a readable SQLite file: {exc}") from None
    if not {"runs", "metrics", "experiments"} <= tables:
        raise LogError(f"{path}: an SQLite file without MLflow's tables (runs, metrics)")
