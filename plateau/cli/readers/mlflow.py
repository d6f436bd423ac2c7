"""MLflow runs: the file store's directories and the SQLite store, read with the stdlib.

- File store (``mlruns/``): ``<experiment>/<run>/metrics/<key>`` holds one line
  per logged value, ``<timestamp_ms> <value> <step>`` (older MLflow wrote no
  step: 0); a ``/`` in a key makes subfolders. PATH may be a run directory, an
  experiment directory or the ``mlruns`` root.
- SQLite store (``mlflow.db``, MLflow 3's default): table
  ``metrics(key, value, timestamp, run_uuid, step, is_nan)``; a NaN is stored as
  0.0 with ``is_nan`` 1, and MLflow stores +-inf as +-1.7976931348623157e308 (the
  largest float), which is what is replayed.

A store holding several runs needs ``--run`` (a run id or name); the error lists
the runs. Each metric key is one series, in step order (ties in logging order);
the epoch shown is the logged step.
"""

from __future__ import annotations

import math
import os
import sqlite3
from array import array
from collections.abc import Sequence
from pathlib import Path

from ..._checks import is_real, show
from ..numbers import parse_decimal, parse_integer
from ._metrics import LogError, MetricLog, choose, finish

SQLITE_MAGIC = b"SQLite format 3\x00"
# (step, timestamp, value, where) of each logged value of one key.
_Point = tuple[int, int, float, str]


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
        found = sorted(
            str(candidate)
            for candidate in Path(path).glob("/".join(["[!.]*"] * depth))
            if is_run_dir(str(candidate))
        )
        if found:
            return found
    return []


def _run_name(run_dir: str) -> str:
    try:
        with open(os.path.join(run_dir, "meta.yaml"), encoding="utf-8") as file:
            for line in file:
                if line.startswith("run_name:"):
                    return line.partition(":")[2].strip().strip("'\"")
    except (OSError, UnicodeDecodeError):
        pass
    return ""


def _pick(source: str, runs: Sequence[tuple[str, str]], run: str | None) -> int:
    """The index of the run asked for (id or name), or the only one."""
    if run is not None:
        matches = [i for i, (run_id, name) in enumerate(runs) if run in (run_id, name)]
        if len(matches) == 1:
            return matches[0]
    elif len(runs) == 1:
        return 0
    listed = ", ".join(f"{run_id} ({name})" if name else run_id for run_id, name in runs)
    if run is None:
        raise LogError(f"{source}: {len(runs)} runs ({listed}); choose one with --run")
    raise LogError(f"{source}: no single run {run!r}; runs: {listed}")


def read_file_store(path: str, column: str | None = None, run: str | None = None) -> MetricLog:
    """Read one metric of one run of an MLflow file store at `path`.

    Raises:
        LogError: no run, several runs and no ``--run``, a malformed metric file,
            or no single metric to replay.
    """
    dirs = run_dirs(path)
    if not dirs:
        raise LogError(f"{path}: no MLflow run (a directory with meta.yaml and metrics/)")
    chosen_dir = dirs[_pick(path, [(os.path.basename(d), _run_name(d)) for d in dirs], run)]
    metrics_dir = os.path.join(chosen_dir, "metrics")
    series: dict[str, list[_Point]] = {}
    for root, _, names in sorted(os.walk(metrics_dir)):
        for name in sorted(names):
            file = os.path.join(root, name)
            key = os.path.relpath(file, metrics_dir).replace(os.sep, "/")
            series[key] = _metric_file(file)
    return _log(path, series, column)


def _metric_file(file: str) -> list[_Point]:
    points: list[_Point] = []
    try:
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) not in (2, 3):
                    raise LogError(
                        f"{file}, line {number}: expected '<timestamp> <value> <step>', "
                        f"got {show(line.strip())}"
                    )
                try:
                    timestamp, value = parse_integer(parts[0]), parse_decimal(parts[1])
                    step = parse_integer(parts[2]) if len(parts) == 3 else 0
                except ValueError:
                    raise LogError(
                        f"{file}, line {number}: {show(line.strip())} is not "
                        "'<timestamp> <value> <step>' numbers"
                    ) from None
                points.append((step, timestamp, value, f"line {number} (step {step})"))
    except OSError as exc:
        raise LogError(f"{file}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LogError(f"{file}: not UTF-8 text") from None
    return points


def read_sqlite(path: str, column: str | None = None, run: str | None = None) -> MetricLog:
    """Read one metric of one run of an MLflow SQLite store (``mlflow.db``).

    Raises:
        LogError: not an MLflow store, several runs and no ``--run``, or no single
            metric to replay.
    """
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise LogError(f"{path}: cannot open the SQLite file: {exc}") from None
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if "metrics" not in tables:
            raise LogError(f"{path}: an SQLite file without MLflow's metrics table")
        names: dict[str, str] = {}
        if "runs" in tables:
            names = dict(connection.execute("SELECT run_uuid, COALESCE(name, '') FROM runs"))
        ids = [row[0] for row in connection.execute("SELECT DISTINCT run_uuid FROM metrics")]
        runs = sorted((str(run_id), names.get(run_id, "")) for run_id in ids)
        if not runs:
            raise LogError(f"{path}: no metrics logged")
        run_id = runs[_pick(path, runs, run)][0]
        rows = connection.execute(
            "SELECT key, step, timestamp, value, is_nan FROM metrics WHERE run_uuid = ?",
            (run_id,),
        ).fetchall()
    except sqlite3.Error as exc:
        raise LogError(f"{path}: not a readable MLflow store: {exc}") from None
    finally:
        connection.close()
    series: dict[str, list[_Point]] = {}
    for key, step, timestamp, value, is_nan in rows:
        if not (is_real(value) and isinstance(step, int) and isinstance(timestamp, int)):
            raise LogError(
                f"{path}, run {run_id}, metric {key!r} step {show(step)}: "
                f"{show(value)} is not a number"
            )
        number = math.nan if is_nan else float(value)
        series.setdefault(str(key), []).append(
            (step, timestamp, number, f"run {run_id} step {step}")
        )
    return _log(path, series, column)


def _log(source: str, series: dict[str, list[_Point]], column: str | None) -> MetricLog:
    keys = sorted(series)
    if not keys:
        raise LogError(f"{source}: the run logged no metrics")
    chosen = choose(
        source, keys, lambda k: bool(series[k]), lambda k: bool(series[k]), column, kind="metric"
    )
    # Step order, ties by time then by logging order (sort is stable).
    points = sorted(series[chosen], key=lambda p: (p[0], p[1]))
    values = array("d", (p[2] for p in points))
    steps = array("q", (p[0] for p in points))
    where = [p[3] for p in points]
    return finish(source, chosen, keys, values, steps, len(points), where.__getitem__)
