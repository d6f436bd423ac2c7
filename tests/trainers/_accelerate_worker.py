"""Run by test_accelerate.py: ``python _accelerate_worker.py OUT_DIR``.

accelerate's debug_launcher forks two CPU processes (gloo, a file rendezvous); each
trains a tiny model for EPOCHS epochs under several setups and writes, per setup,
the lr of every epoch and the warnings raised to OUT_DIR/rank<N>.json.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import torch
from accelerate import Accelerator, debug_launcher

from plateau.adapters.torch import ReduceLROnPlateau

EPOCHS = 8
SCRIPTED = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8]
KWARGS = {"patience": 1, "factor": 0.5}
# name: (scheduler class, its keywords, prepare the scheduler?, step_scheduler_with_optimizer)
SETUPS = {
    "torch-prepared": (torch.optim.lr_scheduler.ReduceLROnPlateau, {}, True, True),
    "plateau-prepared": (ReduceLROnPlateau, {}, True, True),
    "plateau-prepared-skip": (ReduceLROnPlateau, {"on_repeat": "skip"}, True, True),
    "torch-not-with-optimizer": (torch.optim.lr_scheduler.ReduceLROnPlateau, {}, True, False),
    "plateau-not-with-optimizer": (ReduceLROnPlateau, {}, True, False),
    "plateau-not-prepared": (ReduceLROnPlateau, {}, False, True),
}


def train(cls, kwargs, prepare_scheduler, with_optimizer):
    accelerator = Accelerator(cpu=True, step_scheduler_with_optimizer=with_optimizer)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = cls(optimizer, **KWARGS, **kwargs)
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(1))
    data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    if prepare_scheduler:
        scheduler = accelerator.prepare(scheduler)
    lrs = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in range(EPOCHS):
            lrs.append(optimizer.param_groups[0]["lr"])
            for inputs, targets in loader:
                optimizer.zero_grad()
                accelerator.backward(torch.nn.functional.mse_loss(model(inputs), targets))
                optimizer.step()
            scheduler.step(SCRIPTED[epoch])  # the same validation metric on every rank
    lrs.append(optimizer.param_groups[0]["lr"])
    repeats = [str(w.message) for w in caught if "called again" in str(w.message)]
    return {"lrs": lrs, "repeat_warnings": len(repeats), "processes": accelerator.num_processes}


CLASSES = {"torch": torch.optim.lr_scheduler.ReduceLROnPlateau, "plateau": ReduceLROnPlateau}
# name: (class that trains the first half and saves, class that loads and trains on)
RESUMES = {f"resume-{a}-to-{b}": (a, b) for a in CLASSES for b in CLASSES}


SPLIT = 3  # mid-plateau: epoch 3 cuts only if the bad epoch counted at epoch 2 survives


def resumed(saver, loader_name, checkpoint):
    """SPLIT epochs under one class, accelerator.save_state, then a new run of the
    other class that load_state()s it and trains on: the lr of every epoch."""
    lrs = []
    for half, name in ((0, saver), (1, loader_name)):
        accelerator = Accelerator(cpu=True, step_scheduler_with_optimizer=False)
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = CLASSES[name](optimizer, **KWARGS)
        model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
        if half:
            accelerator.load_state(checkpoint)
        for epoch in range(SPLIT, EPOCHS) if half else range(SPLIT):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step(SCRIPTED[epoch])
        if not half:
            accelerator.save_state(checkpoint)
    lrs.append(optimizer.param_groups[0]["lr"])
    return {"lrs": lrs, "repeat_warnings": 0, "processes": accelerator.num_processes}


def run_all(out_dir):
    results = {name: train(*setup) for name, setup in SETUPS.items()}
    for name, (saver, loader_name) in RESUMES.items():
        results[name] = resumed(saver, loader_name, str(Path(out_dir, name)))
    rank = torch.distributed.get_rank()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    debug_launcher(run_all, args=(sys.argv[1],), num_processes=2)
