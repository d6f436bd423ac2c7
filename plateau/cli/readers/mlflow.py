"""MLflow runs: ``mlflow.db`` through mlflow's own client, the file store with the stdlib.

The file store's ``<experiment>/<run>/metrics/<key>`` holds a line ``<timestamp_ms>
<value> <step>`` per value. A key's values are replayed in step order (ties in logging
order); an ``epoch`` key tells each step's epoch.
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


def run_dirs(path: str) -> list[str]:
    """The file-store runs (``meta.yaml`` beside ``metrics/``) at `path` or up to 2 below."""
    for depth in (0, 1, 2):
        found = sorted(
            str(p)
            for p in ([Path(path)] if depth == 0 else Path(path).glob("/".join(["[!.]*"] * depth)))
            if (p / "meta.yaml").is_file() and (p / "metrics").is_dir()
        )
        if found:
            return found
    return []


def pick(source: str, runs: Sequence[_Run], run: str | None) -> _Run:
    """The run asked for (by id or name), or the only one.

    Raises:
        LogError: no single run: the message lists each run and the metrics it holds.
    """
    matches = [r for r in runs if run in r[:2]] if run is not None else list(runs)
    if len(matches) == 1:
        return matches[0]
    if not runs:
        raise LogError(f"{source}: no run logged any metric")
    listed = "; ".join(
        f"{run_id}{f' ({name})' if name else ''}: {listing(keys) or 'no metrics'}"
        for run_id, name, keys in runs[:6]
    ) + (f"; ... ({len(runs) - 6} more)" if len(runs) > 6 else "")
    asked = "choose one with --run" if run is None else f"none is {run!r}"
    raise LogError(f"{source}: {len(runs)} runs ({listed}); {asked}")


def _series(path: str, chosen: _Run, column: str | None, place: str) -> Columns:
    """Where the chosen run's values go: named as the output names what it replayed."""
    run_id, name, _ = chosen
    return Columns(f"{path}, run {run_id}" + (f" ({name})" if name else ""), place, column, ())


def read_file_store(path: str, column: str | None, run: str | None, every_row: bool) -> MetricLog:
    """Read one metric of one run of an MLflow file store at `path`.

    Raises:
        LogError: no single run or metric to replay, or a malformed metric file.
    """
    dirs = {os.path.basename(run_dir): run_dir for run_dir in run_dirs(path)}
    runs = [(run_id, _run_name(run_dir), _keys(run_dir)) for run_id, run_dir in dirs.items()]
    chosen = pick(path, runs, run)
    series, run_dir = _series(path, chosen, column, "line {}"), dirs[chosen[0]]
    for key in chosen[2]:
        if column is None or key in (column, "epoch"):
            _metric_file(os.path.join(run_dir, "metrics", *key.split("/")), key, series)
    return series.choose(every_row)


def _keys(run_dir: str) -> list[str]:
    """A run's metric keys: the files below its ``metrics/`` (a key may hold ``/``)."""
    metrics = Path(run_dir, "metrics")
    return sorted(p.relative_to(metrics).as_posix() for p in metrics.rglob("*") if p.is_file())


def _run_name(run_dir: str) -> str:
    meta = os.path.join(run_dir, "meta.yaml")
    with contextlib.suppress(OSError, UnicodeDecodeError), open(meta, encoding="utf-8") as file:
        for line in file:
            if line.startswith("run_name:"):
                return line.partition(":")[2].strip().strip("'\"")
    return ""  # unnamed, or no readable meta.yaml: the run is named by its id


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
        LogError: no ``mlflow``, not an MLflow store, or no single run or metric to replay.
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
        chosen = pick(path, runs, run)
        series = _series(path, chosen, column, "step {}")
        for key in chosen[2]:
            if column is None or key in (column, "epoch"):
                # Step order, ties in logging order (the sort is stable).
                history = client.get_metric_history(chosen[0], key)
                for metric in sorted(history, key=lambda m: (m.step, m.timestamp)):
                    series.add(key, metric.value, metric.step, metric.step)
    except MlflowException as exc:
        raise LogError(f"{path}: mlflow cannot read it: {exc.message}") from None
    return series.choose(every_row)


def _check_tables(path: str) -> None:
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        raise LogError(f"{path}: not a readable SQLite file: {exc}") from None
    if not {"runs", "metrics", "experiments"} <= tables:
        raise LogError(f"{path}: an SQLite file without MLflow's tables (runs, metrics)")
