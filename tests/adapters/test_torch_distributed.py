"""sync_metric in a real two-process job: gloo over loopback, one process per rank.

Each rank sees a different local metric, as each rank of a data-parallel job
validates on its own shard. With sync_metric=True every rank must take the same
decisions, those of one process stepping on the mean metric; without it the
ranks drift apart, which is the bug sync_metric exists to prevent.
"""

from __future__ import annotations

import json
import random
import socket
import time

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with the gloo backend is not available", allow_module_level=True)

import _torch_dist_worker as worker  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

WORLD_SIZE = 2
EPOCHS = 30
TIMEOUT = 60.0


def local_streams(seed=0):
    """Rank 0's validation loss improves for 18 epochs; rank 1's plateaus from the start."""
    rng = random.Random(seed)
    steady = [2.0 * 0.95 ** min(i, 18) + rng.uniform(0, 0.01) for i in range(EPOCHS)]
    stalled = [1.0 + rng.uniform(0, 0.05) for _ in range(EPOCHS)]
    return [steady, stalled]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_process(cls, metrics):
    """The lr after each step of one scheduler in this process, no process group involved."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = cls(optimizer, **worker.KWARGS)
    lrs = []
    for metric in metrics:
        scheduler.step(metric)
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run the two ranks once; each rank's {"sync": lrs, "local": lrs}."""
    out_dir = tmp_path_factory.mktemp("ranks")
    streams = local_streams()
    context = mp.start_processes(
        worker.run,
        args=(WORLD_SIZE, free_port(), streams, str(out_dir)),
        nprocs=WORLD_SIZE,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + TIMEOUT
    try:
        while not context.join(timeout=1.0):  # raises if a rank failed
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD_SIZE} ranks did not finish within {TIMEOUT} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]


@pytest.mark.slow
def test_sync_metric_gives_every_rank_the_decisions_on_the_mean_metric(ranks):
    streams = local_streams()
    mean = [sum(values) / WORLD_SIZE for values in zip(*streams, strict=True)]
    expected = one_process(torch.optim.lr_scheduler.ReduceLROnPlateau, mean)
    assert one_process(ReduceLROnPlateau, mean) == expected
    for rank in range(WORLD_SIZE):
        assert ranks[rank]["sync"] == expected
        # ... which is neither rank's own schedule: the average did decide.
        assert expected != one_process(ReduceLROnPlateau, streams[rank])
    assert len(set(expected)) >= 3  # the mean metric does cut the lr


@pytest.mark.slow
def test_without_sync_metric_the_ranks_diverge(ranks):
    streams = local_streams()
    for rank in range(WORLD_SIZE):
        assert ranks[rank]["local"] == one_process(ReduceLROnPlateau, streams[rank])
    assert ranks[0]["local"] != ranks[1]["local"]
    assert ranks[0]["local"][-1] != ranks[1]["local"][-1]


def test_sync_metric_outside_a_process_group_touches_nothing_distributed():
    """Without init_process_group any collective would raise; stepping works and equals no sync."""
    assert not dist.is_initialized()
    metrics = local_streams()[1]
    synced = ReduceLROnPlateau(
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0),
        **worker.KWARGS,
        sync_metric=True,
    )
    lrs = []
    for metric in metrics:
        synced.step(torch.tensor(metric))
        lrs.append(synced.optimizer.param_groups[0]["lr"])
    assert lrs == one_process(ReduceLROnPlateau, [float(torch.tensor(m)) for m in metrics])
    assert not dist.is_initialized()
    with pytest.raises((RuntimeError, ValueError)):
        dist.all_reduce(torch.zeros(1))  # what sync_metric would have hit
