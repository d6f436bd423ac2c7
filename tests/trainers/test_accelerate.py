"""accelerate with 2 CPU processes: a prepared scheduler steps once per process per call.

With ``split_batches=False`` (the default) accelerate's AcceleratedScheduler calls
the wrapped scheduler's step ``num_processes`` times for each call, so torch's
class counts every epoch twice on 2 processes and cuts at half its patience. The
tests run accelerate's own debug_launcher (2 forked CPU processes, gloo) in a
subprocess and compare each setup's lrs with torch's class in one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from _compat import claim  # noqa: E402

TorchPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau

TRAINER = "accelerate (2 processes)"
TESTED_WITH = "accelerate==1.15.0"
NOTE = (
    "a prepared scheduler is stepped once per process: use "
    "Accelerator(step_scheduler_with_optimizer=False), do not prepare it, or "
    "on_repeat='skip'; plateau's class warns otherwise"
)
WORKER = Path(__file__).with_name("_accelerate_worker.py")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("accelerate")
    repo = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": f"{repo}:{WORKER.parent}"}
    subprocess.run(
        [sys.executable, str(WORKER), str(out)], check=True, timeout=300, env=env, cwd=out
    )
    ranks = [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0] == ranks[1]  # every rank takes the same decisions
    assert all(result["processes"] == 2 for result in ranks[0].values())
    return ranks[0]


def single_process():
    """Torch's class stepped once per epoch: the history every setup should give."""
    sys.path.insert(0, str(WORKER.parent))
    from _accelerate_worker import KWARGS, SCRIPTED

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler, lrs = TorchPlateau(optimizer, **KWARGS), []
    for metric in SCRIPTED:
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step(metric)
    return [*lrs, optimizer.param_groups[0]["lr"]]


def test_a_prepared_scheduler_steps_twice_per_epoch_and_plateau_warns(results):
    """The issue: torch's class cuts at half its patience; ours does the same, and warns."""
    expected = single_process()
    assert results["torch-prepared"]["lrs"] != expected
    assert results["plateau-prepared"]["lrs"] == results["torch-prepared"]["lrs"]
    assert results["plateau-prepared"]["repeat_warnings"] > 0
    assert results["torch-prepared"]["repeat_warnings"] == 0


@claim("works", "history")
@pytest.mark.parametrize(
    "setup",
    ["torch-not-with-optimizer", "plateau-not-with-optimizer", "plateau-not-prepared",
     "plateau-prepared-skip"],
)  # fmt: skip
def test_each_way_to_step_once_per_epoch_gives_torchs_single_process_history(results, setup):
    assert results[setup]["lrs"] == single_process()
    assert len(set(results[setup]["lrs"])) >= 3
    assert results[setup]["repeat_warnings"] == 0


@claim("resume")
@pytest.mark.parametrize(
    "setup",
    ["resume-torch-to-torch", "resume-torch-to-plateau", "resume-plateau-to-torch",
     "resume-plateau-to-plateau"],
)  # fmt: skip
def test_save_state_and_load_state_resume_either_way(results, setup):
    """accelerator.save_state under one class, load_state under the other: the run goes on."""
    from _accelerate_worker import KWARGS, SCRIPTED, SPLIT

    assert results[setup]["lrs"] == single_process()
    # The split is where a lost scheduler state shows: restarted there, no cut at SPLIT.
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    fresh = TorchPlateau(optimizer, **KWARGS)
    lrs = single_process()[: SPLIT + 1]
    for metric in SCRIPTED[SPLIT:]:
        fresh.step(metric)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs != single_process()
