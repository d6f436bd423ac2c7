"""Time `plateau simulate` on a million-row log against a bare csv.reader pass.

    python benchmarks/bench_cli.py [--rows 1000000] [--rounds 3]

Generates two Lightning-style ``metrics.csv`` files in a temporary directory
(``epoch,step,train_loss,val_loss``, a train loss on every row):

- sparse: ``val_loss`` on every 1000th row (a validation per 1000 steps);
- dense: ``val_loss`` on every row.

For each, in this one process, it times a bare ``csv.reader`` pass over the file
(``for row in reader: pass``) and ``main(["simulate", FILE, "--format", "csv"])``
in-process with stdout going to /dev/null, interleaved, best of ``--rounds``.
Peak memory is measured separately: each replay runs once more in a fresh
subprocess that reports its own ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
(the whole interpreter's peak resident set, the figure a user sees).

Targets (the issue's): sparse <= 3x the bare pass and <= 150 MB; dense <= 10x
and <= 300 MB. A missed target is printed, not an error.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plateau.cli import main

TARGETS = {"sparse": (3.0, 150.0), "dense": (10.0, 300.0)}

PEAK = """
import contextlib, os, resource, sys, time
from plateau.cli import main
start = time.perf_counter()
with open(os.devnull, "w") as out, contextlib.redirect_stdout(out):
    code = main(["simulate", sys.argv[1], "--format", "csv"])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(code, seconds, peak / 1024)
"""


def write_log(path: Path, rows: int, every: int) -> None:
    rng = random.Random(0)
    loss = 2.0
    with path.open("w", newline="") as f:
        f.write("epoch,step,train_loss,val_loss\n")
        lines = []
        for step in range(rows):
            loss = max(0.2, loss * 0.99999) + rng.uniform(0.0, 0.01)
            val = repr(loss + 0.05) if step % every == every - 1 else ""
            lines.append(f"{step // 1000},{step},{loss!r},{val}\n")
            if len(lines) == 10_000:
                f.writelines(lines)
                lines.clear()
        f.writelines(lines)


def bare_pass(path: Path) -> float:
    start = time.perf_counter()
    with path.open(newline="") as f:
        for _ in csv.reader(f):
            pass
    return time.perf_counter() - start


def replay(path: Path) -> float:
    start = time.perf_counter()
    with open(os.devnull, "w") as out, contextlib.redirect_stdout(out):
        code = main(["simulate", str(path), "--format", "csv"])
    assert code == 0, code
    return time.perf_counter() - start


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, {args.rows:,} rows, best of {args.rounds}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, every in (("sparse", 1000), ("dense", 1)):
            path = Path(tmp) / f"{name}.csv"
            write_log(path, args.rows, every)
            size = path.stat().st_size / 1e6
            bare, full = [], []
            for _ in range(args.rounds):
                bare.append(bare_pass(path))
                full.append(replay(path))
            result = subprocess.run(
                [sys.executable, "-c", PEAK, str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            code, _, peak_text = result.stdout.split()
            assert code == "0", result.stderr
            peak = float(peak_text)
            ratio = min(full) / min(bare)
            max_ratio, max_peak = TARGETS[name]
            verdict = "ok" if ratio <= max_ratio and peak <= max_peak else "MISSED"
            print(
                f"{name:6} ({size:.0f} MB, val_loss every {every} row{'s' if every > 1 else ''}): "
                f"csv.reader {min(bare):.2f} s, replay {min(full):.2f} s = {ratio:.2f}x "
                f"(target <= {max_ratio:g}x); peak {peak:.0f} MB (target <= {max_peak:g}) "
                f"{verdict}"
            )


if __name__ == "__main__":
    main_()
