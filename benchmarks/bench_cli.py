"""Time and measure `plateau simulate` on a million-row log of each format.

    python benchmarks/bench_cli.py [--rows 1000000] [--rounds 3] [--formats csv,jsonl,...]

For each format it writes a log of ``--rows`` values in a temporary directory and
times, in this one process, a plain pass over the same file by the format's own
library against ``main(["simulate", FILE, "--format", "csv"])`` with stdout going to
/dev/null (interleaved, best of ``--rounds``):

- csv (sparse): a Lightning-style ``metrics.csv`` (``epoch,step,train_loss,val_loss``),
  a train loss on every row, a val_loss on every 1000th; plain pass: ``csv.reader``;
- csv (dense): the same with a val_loss on every row;
- jsonl: one ``{"epoch", "val_loss"}`` object a line; plain pass: ``json.loads`` per line;
- tensorboard: a ``val_loss`` scalar a step, written by tensorboard's own
  ``EventFileWriter``; plain pass: its ``EventFileLoader``'s iteration (needs tensorboard);
- mlflow-files: an MLflow file-store run, one metric file; plain pass: ``str.split`` a line.

Peak memory is the ``VmHWM`` (Linux) of the same replay run once more in a fresh
subprocess (the whole interpreter's peak resident set, what a user sees), against
the target ``max(3 x the file's size, 150 MB)``. A missed target is printed, not an error.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from plateau.cli import main

# VmHWM, this process's own peak: Linux's ru_maxrss of a child can carry the parent's.
PEAK = """
import contextlib, os, sys
from plateau.cli import main
with open(os.devnull, "w") as out, contextlib.redirect_stdout(out):
    code = main(["simulate", sys.argv[1], "--format", "csv"])
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
print(code, peak / 1024)  # KiB
"""


def losses(rows: int):
    rng = random.Random(0)
    loss = 2.0
    for _ in range(rows):
        loss = max(0.2, loss * 0.99999) + rng.uniform(0.0, 0.01)
        yield loss


def write_csv(path: Path, rows: int, every: int) -> Path:
    with path.open("w", newline="") as f:
        f.write("epoch,step,train_loss,val_loss\n")
        for step, loss in enumerate(losses(rows)):
            val = repr(loss + 0.05) if step % every == every - 1 else ""
            f.write(f"{step // 1000},{step},{loss!r},{val}\n")
    return path


def write_jsonl(path: Path, rows: int) -> Path:
    with path.open("w") as f:
        for epoch, loss in enumerate(losses(rows)):
            f.write(json.dumps({"epoch": epoch, "val_loss": loss}) + "\n")
    return path


def write_events(path: Path, rows: int) -> Path:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(path))
    for step, loss in enumerate(losses(rows)):
        value = summary_pb2.Summary.Value(tag="val_loss", simple_value=loss)
        summary = summary_pb2.Summary(value=[value])
        writer.add_event(event_pb2.Event(step=step, wall_time=1.0, summary=summary))
    writer.close()
    (file,) = path.iterdir()
    return file


def write_mlflow_run(path: Path, rows: int) -> Path:
    run = path / "0" / "run1"
    (run / "metrics").mkdir(parents=True)
    (run / "meta.yaml").write_text("run_id: run1\nrun_name: bench\n")
    with (run / "metrics" / "val_loss").open("w") as f:
        for step, loss in enumerate(losses(rows)):
            f.write(f"{1_700_000_000_000 + step} {loss!r} {step}\n")
    return run


def csv_pass(path: Path) -> None:
    with path.open(newline="") as f:
        for _ in csv.reader(f):
            pass


def jsonl_pass(path: Path) -> None:
    with path.open("rb") as f:
        for line in f:
            json.loads(line)


def events_pass(path: Path) -> None:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    for _ in EventFileLoader(str(path)).Load():
        pass


def mlflow_pass(path: Path) -> None:
    with (path / "metrics" / "val_loss").open() as f:
        for line in f:
            line.split()


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def replay(path: Path) -> None:
    with open(os.devnull, "w") as out, contextlib.redirect_stdout(out):
        code = main(["simulate", str(path), "--format", "csv"])
    assert code == 0, code


def size_of(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def main_(argv: list[str] | None = None) -> None:
    formats = {
        "csv (sparse)": (lambda d, n: write_csv(d / "sparse.csv", n, 1000), csv_pass, "csv.reader"),
        "csv (dense)": (lambda d, n: write_csv(d / "dense.csv", n, 1), csv_pass, "csv.reader"),
        "jsonl": (lambda d, n: write_jsonl(d / "log.jsonl", n), jsonl_pass, "json.loads"),
        "tensorboard": (
            lambda d, n: write_events(d / "tb", n),
            events_pass,
            "EventFileLoader",
        ),
        "mlflow-files": (lambda d, n: write_mlflow_run(d / "mlruns", n), mlflow_pass, "split"),
    }
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", default=",".join(formats))
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, {args.rows:,} rows, best of {args.rounds}")
    print("format        | file MB | plain pass          | replay  | ratio | peak MB | target MB")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.formats.split(","):
            write, plain, plain_name = formats[name]
            (Path(tmp) / name.split()[0]).mkdir(exist_ok=True)
            path = write(Path(tmp) / name.split()[0], args.rows)
            size = size_of(path)
            bare, full = [], []
            for _ in range(args.rounds):
                bare.append(timed(lambda path=path, plain=plain: plain(path)))
                full.append(timed(lambda path=path: replay(path)))
            result = subprocess.run(
                [sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, check=True
            )
            code, peak_text = result.stdout.split()
            assert code == "0", result.stderr
            peak, target = float(peak_text), max(3 * size, 150.0)
            verdict = "ok" if peak <= target else "MISSED"
            print(
                f"{name:13} | {size:7.0f} | {plain_name:15} {min(bare):4.1f} s | "
                f"{min(full):5.1f} s | {min(full) / min(bare):4.1f}x | {peak:7.0f} | "
                f"{target:5.0f} {verdict}"
            )


if __name__ == "__main__":
    main_()
