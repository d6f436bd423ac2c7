"""On a GPU: a capturable plateau step syncs nothing, what it costs, and a CUDA graph of it.

    python benchmarks/gpu_check.py     # a CUDA build of torch 2.13 on a machine with a GPU

1. No host sync: under ``torch.cuda.set_sync_debug_mode("error")`` a capturable
   ``step(loss)``, and a whole train step with it (forward, backward, Adam with
   ``capturable=True``, the plateau), run without error; the default mode's step
   (``float(loss)``) is shown to sync.
2. Overhead per train step (wall time over many steps, synchronized at the end):
   no plateau, the default mode, ``capturable=True``, and the same step compiled.
3. A train step captured in a CUDA graph with the plateau inside, replayed; its
   lrs are checked against the same steps run eagerly.
On a machine without CUDA it says so, runs the capturable step on the CPU (where
nothing syncs), and skips the GPU parts. Exits 1 if a check fails.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import torch

from plateau.adapters.torch import ReduceLROnPlateau

STEPS = 200
KWARGS = {"patience": 5, "factor": 0.5, "cooldown": 2}


class Trainer:
    """A tiny model, capturable Adam with a tensor lr, and a plateau on every batch's loss."""

    def __init__(self, device: str, plateau: str | None) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Sequential(
            torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1)
        ).to(device)
        lr = torch.tensor(0.01, device=device)
        capturable = device == "cuda"
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, capturable=capturable)
        self.scheduler = None
        if plateau is not None:
            self.scheduler = ReduceLROnPlateau(
                self.optimizer, **KWARGS, capturable=plateau != "default"
            )
        self.plateau_step: Callable[[torch.Tensor], None] | None = None
        if self.scheduler is not None:
            self.plateau_step = self.scheduler.step
            if plateau == "compiled":
                self.plateau_step = torch.compile(self.scheduler.step, fullgraph=True)
        generator = torch.Generator(device="cpu").manual_seed(1)
        self.inputs = torch.randn(64, 256, generator=generator).to(device)
        self.target = torch.randn(64, 1, generator=generator).to(device)

    def step(self) -> None:
        loss = torch.nn.functional.mse_loss(self.model(self.inputs), self.target)
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        self.optimizer.step()
        self.loss = loss.detach()
        if self.plateau_step is not None:
            self.plateau_step(self.loss)

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


def seconds_per_step(trainer: Trainer, steps: int = STEPS) -> float:
    for _ in range(10):  # warm: compiles, allocates
        trainer.step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def check_no_sync() -> bool:
    trainer = Trainer("cuda", "capturable")
    trainer.step()  # the first Adam step allocates its state
    metric = torch.tensor(1.0, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        assert trainer.scheduler is not None
        trainer.scheduler.step(metric)
        trainer.step()
        ok = True
    except RuntimeError as exc:
        print(f"  FAILED: a capturable step synced: {exc}")
        ok = False
    finally:
        torch.cuda.set_sync_debug_mode("default")
    print(f"  capturable step and train step under sync debug mode 'error': {ok and 'no sync'}")
    default = Trainer("cuda", "default")
    default.step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        default.step()
        print("  default mode: no sync seen (unexpected: float(loss) reads the device)")
    except RuntimeError:
        print("  default mode: syncs (float(loss)), as expected")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return ok


def check_cuda_graph() -> bool:
    """Replay a captured train step; its lrs must be the default mode's on the losses it saw."""
    trainer = Trainer("cuda", "capturable")
    losses, lrs = [], []
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm on a side stream, as torch's docs capture
        for _ in range(3):
            trainer.step()
            losses.append(float(trainer.loss))
            lrs.append(trainer.lr())
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        trainer.step()
    for _ in range(STEPS):  # reading each replay's loss (the graph's own tensor)
        graph.replay()
        losses.append(float(trainer.loss))
        lrs.append(trainer.lr())
    # The default mode on the same losses, with the same float32 tensor lr.
    held = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=torch.tensor(0.01))
    reference = ReduceLROnPlateau(held, **KWARGS, on_repeat="allow")
    expected = []
    for loss in losses:
        reference.step(loss)
        expected.append(float(held.param_groups[0]["lr"]))
    same, cuts = lrs == expected, len(set(lrs)) - 1
    start = time.perf_counter()
    for _ in range(STEPS):
        graph.replay()
    torch.cuda.synchronize()
    replayed = (time.perf_counter() - start) / STEPS
    print(f"  replayed train step with the plateau: {replayed * 1e6:.1f} us")
    print(f"  {len(lrs)} steps, {cuts} cuts: lrs {'the' if same else 'NOT the'} default mode's")
    return same


def main() -> int:
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}")
    if not torch.cuda.is_available():
        trainer = Trainer("cpu", "capturable")
        for _ in range(STEPS):
            trainer.step()
        assert trainer.scheduler is not None
        state = trainer.scheduler.state
        print(f"no CUDA: {STEPS} capturable train steps on the CPU, lr {trainer.lr()!r}, {state}")
        print("the GPU parts (host syncs, overhead, CUDA graph) were skipped")
        return 0
    print(f"device: {torch.cuda.get_device_name()}")
    results = [part(title, check) for title, check in PARTS]
    print("all checks passed" if all(results) else "A CHECK FAILED")
    return 0 if all(results) else 1


def overhead() -> bool:
    for plateau in (None, "default", "capturable", "compiled"):
        seconds = seconds_per_step(Trainer("cuda", plateau))
        print(f"  {plateau or 'no plateau':<12}{seconds * 1e6:>9.1f}")
    return True


def part(title: str, check: Callable[[], bool]) -> bool:
    """Run one part; one that raises is reported, and the next parts still run."""
    print(title)
    try:
        return check()
    except Exception as exc:  # a GPU part failing must not hide the others' figures
        print(f"  FAILED: {type(exc).__name__}: {exc}")
        return False


PARTS = [
    ("1. host syncs", check_no_sync),
    (f"2. wall time per train step over {STEPS} steps (us)", overhead),
    ("3. CUDA graph", check_cuda_graph),
]

if __name__ == "__main__":
    sys.exit(main())
