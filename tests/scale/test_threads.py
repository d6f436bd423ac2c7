"""Two threads stepping one torch scheduler lose no step (issue 22).

One scheduler per optimizer is the supported use, but a step must still be atomic
(read the lrs, step, write): torch's own class loses nothing here. The metric is the
same on every call, so the serial run of as many steps is the expected state, in
whatever order the threads interleave. It is read as a GPU tensor's ``.item()`` is,
releasing the GIL, so the other thread runs in the middle of a step.
"""

from __future__ import annotations

import copy
import pickle
import threading
import time

import pytest

torch = pytest.importorskip("torch")

from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

STEPS = 1000  # per thread
KWARGS = {"patience": 50, "factor": 0.5}


def new_scheduler(cls=ReduceLROnPlateau):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    if cls is ReduceLROnPlateau:  # no optimizer steps here: not a repeat to warn of
        return cls(optimizer, **KWARGS, on_repeat="allow")
    return cls(optimizer, **KWARGS)


class SyncedMetric:
    """1.0, read as a device sync is: the GIL is released while it waits."""

    def __float__(self):
        time.sleep(0)
        return 1.0


def step_from_two_threads(scheduler):
    """Each thread steps `STEPS` times at once; the errors the threads raised."""
    start = threading.Barrier(2)
    errors = []

    def work():
        start.wait()
        try:
            for _ in range(STEPS):
                scheduler.step(SyncedMetric())
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_torchs_class_loses_no_step_from_two_threads():
    """The reference: torch's class under the same load."""
    scheduler = new_scheduler(torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert step_from_two_threads(scheduler) == []
    assert scheduler.last_epoch == 2 * STEPS


def test_two_threads_stepping_one_scheduler_lose_no_step():
    scheduler = new_scheduler()
    errors = step_from_two_threads(scheduler)
    assert errors == []
    assert scheduler.last_epoch == 2 * STEPS
    serial = new_scheduler()
    for _ in range(2 * STEPS):
        serial.step(1.0)
    assert scheduler.state == serial.state
    assert scheduler.optimizer.param_groups[0]["lr"] == serial.optimizer.param_groups[0]["lr"]
    assert serial.state.num_reductions >= 5  # the count decides several cuts


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_pickled_or_copied_scheduler_is_still_atomic_across_threads(how):
    original = new_scheduler()
    original.step(1.0)
    copied = {
        "pickle": lambda: pickle.loads(pickle.dumps(original)),
        "deepcopy": lambda: copy.deepcopy(original),
    }
    scheduler = copied[how]()
    assert step_from_two_threads(scheduler) == []
    assert scheduler.last_epoch == 2 * STEPS + 1
    assert original.last_epoch == 1  # the copy steps alone
