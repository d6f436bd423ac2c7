"""The per-rank body of test_torch_distributed, importable by spawned processes."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from plateau.adapters.torch import ReduceLROnPlateau

KWARGS = {"patience": 1, "factor": 0.5, "cooldown": 1}


def run(rank, world_size, port, streams, out_dir):
    """Step one scheduler with and one without sync_metric on this rank's local metrics.

    Rank 0 passes Python floats and rank 1 float64 0-d tensors, as trainers do.
    Writes {"sync": [lr per epoch], "local": [...]} to out_dir/rank<rank>.json.
    """
    # Gloo otherwise binds to the interface of the host's name, which may not be loopback.
    loopback = {"linux": "lo", "darwin": "lo0"}.get(sys.platform)
    if loopback:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=20),
    )
    try:
        history = {}
        for name, sync in (("sync", True), ("local", False)):
            optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
            scheduler = ReduceLROnPlateau(optimizer, **KWARGS, sync_metric=sync)
            lrs = []
            for value in streams[rank]:
                metric = value if rank == 0 else torch.tensor(value, dtype=torch.float64)
                scheduler.step(metric)
                lrs.append(optimizer.param_groups[0]["lr"])
            history[name] = lrs
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(history))
    finally:
        dist.destroy_process_group()
