"""sync_metric when ranks disagree: two gloo processes on 127.0.0.1 (issue 22).

Each rank is a new process running CHILD; it prints what its scheduler did as JSON.
The promises: the repeat guard cannot let ranks average different epochs' metrics;
a step count that differs between ranks fails within a bounded, configurable time,
naming the scheduler and the epoch; the mean of finite metrics is finite.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with the gloo backend is not available", allow_module_level=True)

pytestmark = pytest.mark.slow  # two pairs of torch processes: 15 to 40 s on two busy cores

CHILD = r"""
import json, os, pathlib, sys, time
from datetime import timedelta
import torch
import torch.distributed as dist
from plateau.adapters.torch import ReduceLROnPlateau

rank, port, scenario, signal = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
# The job's own timeout: what an unbounded wait would cost (gloo's default is 30 min).
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                        world_size=2, timeout=timedelta(seconds=12))
# Each rank validates on its own shard: different local metrics.
METRICS = [[1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86, 0.7, 0.75, 0.76],
           [1.1, 1.0, 0.9, 0.99, 0.98, 0.8, 0.82, 0.83, 0.7, 0.71]][rank]


def scheduler(**kwargs):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return ReduceLROnPlateau(optimizer, patience=1, factor=0.5, sync_metric=True, **kwargs)


def error(exc):
    return f"{type(exc).__name__}: {exc}"


results = {}
if scenario == "main":
    try:  # both ranks report 1e308: the mean is 1e308, not inf
        s = scheduler(on_nonfinite="raise")
        s.optimizer.step()
        s.step(1e308)
        results["huge"] = {"best": s.state.best, "decision": s.state.decision.value}
    except Exception as exc:
        results["huge"] = {"error": error(exc)}
    lrs = []
    try:  # rank 1 has no optimizer step before epoch 3's step(): a repeat there only
        s = scheduler(on_repeat="skip")
        for epoch, metric in enumerate(METRICS):
            if not (rank == 1 and epoch == 3):
                s.optimizer.step()
            s.step(metric)
            lrs.append(s.optimizer.param_groups[0]["lr"])
        results["skip"] = {"lrs": lrs}
    except Exception as exc:
        results["skip"] = {"lrs": lrs, "error": error(exc)}
else:  # "extra": rank 1 steps once more than rank 0, which stays alive meanwhile
    try:
        s = scheduler(sync_timeout=3.0)
        for metric in METRICS[:4]:
            s.optimizer.step()
            s.step(metric)
        if rank == 1:
            start = time.monotonic()
            try:
                s.optimizer.step()
                s.step(0.5)
                results["extra"] = {"error": None}
            except Exception as exc:
                results["extra"] = {"error": error(exc), "seconds": time.monotonic() - start}
    except Exception as exc:
        results["extra"] = {"error": error(exc), "seconds": None}
    if rank == 1:
        pathlib.Path(signal).write_text("done")
    deadline = time.monotonic() + 60
    while not os.path.exists(signal) and time.monotonic() < deadline:
        time.sleep(0.1)
print(json.dumps(results), flush=True)
os._exit(0)  # no destroy_process_group: a rank left in a collective must not hang it
"""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def two_ranks(scenario, signal):
    """Both ranks' results for `scenario`: a list of two dicts."""
    port = str(free_port())
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(rank), port, scenario, str(signal)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for rank in range(2)
    ]
    results = []
    for process in ranks:
        try:
            out, err = process.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            for other in ranks:
                other.kill()
            pytest.fail(f"the ranks of {scenario!r} did not finish within 150 s")
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    signal = tmp_path_factory.mktemp("ranks") / "done"
    with ThreadPoolExecutor(2) as pool:
        main, extra = pool.map(two_ranks, ["main", "extra"], [signal, signal])
    return {"main": main, "extra": extra}


def test_two_ranks_reporting_1e308_average_to_a_finite_mean(runs):
    for rank in runs["main"]:
        assert rank["huge"] == {"best": 1e308, "decision": "improved"}


def test_on_repeat_skip_cannot_let_the_ranks_diverge(runs):
    rank0, rank1 = (rank["skip"] for rank in runs["main"])
    if "error" in rank0 or "error" in rank1:  # a refusal, on both ranks, saying why
        for rank in (rank0, rank1):
            assert "on_repeat" in rank.get("error", "") and "sync_metric" in rank["error"], rank
        return
    assert rank0["lrs"] == rank1["lrs"]
    assert len(rank0["lrs"]) == 10 and len(set(rank0["lrs"])) >= 2


def test_an_extra_step_on_one_rank_fails_within_sync_timeout_naming_scheduler_and_epoch(runs):
    extra = runs["extra"][1]["extra"]
    assert extra["error"] is not None, "the extra step() went through"
    assert extra["seconds"] is not None and extra["seconds"] < 3.0 + 5.0, extra
    assert "ReduceLROnPlateau" in extra["error"] and "epoch 5" in extra["error"], extra
