"""torch.distributed.checkpoint (DCP) resumes the torch drop-in exactly (issue 22).

DCP, what FSDP and torchtitan-style trainers save with, loads a checkpoint into the
keys of a freshly built scheduler's ``state_dict()``: a key the template lacks is not
loaded, and one the checkpoint lacks is an error (or, under ``allow_partial_load``,
keeps the template's value). Each test saves mid-run, builds everything afresh as a
new process would, loads, and runs on: the lrs and decisions must be the
uninterrupted run's. ``no_dist=True``: one process, no process group.
"""

from __future__ import annotations

import warnings

import attrs
import pytest

torch = pytest.importorskip("torch")
dcp = pytest.importorskip("torch.distributed.checkpoint")

from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TorchReduceLROnPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau

# Improves, stalls (a cut), improves, stalls again: every case below cuts on both
# sides of its save.
METRICS = [1.0, 0.9, 0.8, 0.85, 0.86, 0.87, 0.7, 0.6, 0.65, 0.66, 0.67, 0.68, 0.5, 0.55, 0.56]
TORCH_ARGS = {"patience": 1, "factor": 0.5, "cooldown": 1}

# name: (constructor keywords beyond TORCH_ARGS, config fields set afterwards, epochs
# stepped before the save)
CASES = {
    "fresh": ({}, {}, 0),
    "mid_warmup": ({"warmup_epochs": 3, "warmup_start_factor": 0.1}, {}, 1),
    "warmup_ended": ({"warmup_epochs": 2, "warmup_start_factor": 0.1}, {}, 5),
    "mid_block": ({}, {"accumulation_size": 2}, 5),
    "smoothed": ({}, {"ema_decay": 0.5}, 5),
    "capped": ({}, {"max_reductions": 1}, 6),
    "base_scheduled": ({"base": lambda epoch: 0.9**epoch, "base_with_metric": True}, {}, 5),
    # the copy's tensors (tests/adapters/test_restore.py checks what they hold)
    "restore_best_fresh": ({"restore_best": True}, {}, 0),
    "restore_best": ({"restore_best": "cpu"}, {}, 5),
}


def new_optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)


def build(case):
    """A plateau scheduler for `case`, on a new optimizer, as a new process builds it."""
    kwargs, fields, _ = CASES[case]
    scheduler = ReduceLROnPlateau(new_optimizer(), **TORCH_ARGS, **kwargs)
    if fields:
        scheduler.config = attrs.evolve(scheduler.config, **fields)
    return scheduler


def run(scheduler, metrics):
    """Step on each metric; per epoch, the optimizer's lr and what was decided."""
    history = []
    for metric in metrics:
        scheduler.optimizer.step()  # no gradients: it steps nothing, but it is a step
        scheduler.step(metric)
        plateaus = isinstance(scheduler, ReduceLROnPlateau)
        decision = scheduler.state.decision.value if plateaus else None
        history.append(
            (scheduler.optimizer.param_groups[0]["lr"], scheduler.num_bad_epochs, decision)
        )
    return history


def torch_view(history):
    """A history without plateau's decisions, to compare with torch's class."""
    return [(lr, bad) for lr, bad, _ in history]


def dcp_save(scheduler, path):
    with warnings.catch_warnings():  # DCP's note that no process group is initialized
        warnings.simplefilter("ignore")
        dcp.save(
            {"optim": scheduler.optimizer, "sched": scheduler}, checkpoint_id=path, no_dist=True
        )


def dcp_load(scheduler, path, **planner):
    load_planner = dcp.DefaultLoadPlanner(**planner) if planner else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.load(
            {"optim": scheduler.optimizer, "sched": scheduler},
            checkpoint_id=path,
            planner=load_planner,
            no_dist=True,
        )


def assert_sound(case):
    """The case cuts (or is capped) after its save point, else a resume proves little."""
    history = run(build(case), METRICS)
    decisions = {decision for _, _, decision in history[CASES[case][2] :]}
    assert decisions & {"reduced", "capped"}, history


@pytest.mark.parametrize("case", list(CASES))
def test_dcp_resumes_each_case_into_a_freshly_built_scheduler(tmp_path, case):
    assert_sound(case)
    cut_at = CASES[case][2]
    whole = build(case)
    expected = run(whole, METRICS)
    saved = build(case)
    run(saved, METRICS[:cut_at])
    dcp_save(saved, tmp_path)
    resumed = build(case)
    dcp_load(resumed, tmp_path)
    assert resumed.state == saved.state
    if saved.best_copy is not None:
        assert resumed.best_copy.best_epoch == saved.best_copy.best_epoch
    assert run(resumed, METRICS[cut_at:]) == expected[cut_at:]
    assert resumed.state == whole.state


@pytest.mark.parametrize("cut_at", [0, 5])
def test_torch_class_loads_plateaus_dcp_checkpoint_as_is(tmp_path, cut_at):
    expected = run(TorchReduceLROnPlateau(new_optimizer(), **TORCH_ARGS), METRICS)
    saved = ReduceLROnPlateau(new_optimizer(), **TORCH_ARGS)
    run(saved, METRICS[:cut_at])
    dcp_save(saved, tmp_path)
    resumed = TorchReduceLROnPlateau(new_optimizer(), **TORCH_ARGS)
    dcp_load(resumed, tmp_path)  # torch's fixed key set: no partial load needed
    assert torch_view(run(resumed, METRICS[cut_at:])) == torch_view(expected[cut_at:])


@pytest.mark.parametrize("cut_at", [3, 5, 9])
def test_plateau_loads_torchs_dcp_checkpoint_from_torchs_keys(tmp_path, cut_at):
    expected = run(TorchReduceLROnPlateau(new_optimizer(), **TORCH_ARGS), METRICS)
    saved = TorchReduceLROnPlateau(new_optimizer(), **TORCH_ARGS)
    run(saved, METRICS[:cut_at])
    dcp_save(saved, tmp_path)
    resumed = ReduceLROnPlateau(new_optimizer(), **TORCH_ARGS)
    # Plateau's own keys are not in torch's checkpoint: they keep the template's values,
    # which must not be what it resumes from.
    dcp_load(resumed, tmp_path, allow_partial_load=True)
    assert resumed.last_epoch == saved.last_epoch
    assert (resumed.best, resumed.num_bad_epochs) == (saved.best, saved.num_bad_epochs)
    assert resumed.cooldown_counter == saved.cooldown_counter
    assert torch_view(run(resumed, METRICS[cut_at:])) == torch_view(expected[cut_at:])


def torch_save_load(scheduler, path):
    torch.save({"optim": scheduler.optimizer.state_dict(), "sched": scheduler.state_dict()}, path)
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("case", list(CASES))
def test_torch_save_and_weights_only_load_resume_every_case(tmp_path, case):
    cut_at = CASES[case][2]
    expected = run(build(case), METRICS)
    saved = build(case)
    run(saved, METRICS[:cut_at])
    loaded = torch_save_load(saved, tmp_path / "ckpt.pt")
    resumed = build(case)
    resumed.optimizer.load_state_dict(loaded["optim"])
    resumed.load_state_dict(loaded["sched"])
    assert run(resumed, METRICS[cut_at:]) == expected[cut_at:]


@pytest.mark.parametrize("plateau_saves", [True, False])
def test_torch_save_and_weights_only_load_work_both_ways_with_torchs_class(tmp_path, plateau_saves):
    saving, loading = (
        (ReduceLROnPlateau, TorchReduceLROnPlateau)
        if plateau_saves
        else (TorchReduceLROnPlateau, ReduceLROnPlateau)
    )
    cut_at = 5
    expected = run(TorchReduceLROnPlateau(new_optimizer(), **TORCH_ARGS), METRICS)
    saved = saving(new_optimizer(), **TORCH_ARGS)
    run(saved, METRICS[:cut_at])
    loaded = torch_save_load(saved, tmp_path / "ckpt.pt")
    resumed = loading(new_optimizer(), **TORCH_ARGS)
    resumed.optimizer.load_state_dict(loaded["optim"])
    resumed.load_state_dict(loaded["sched"])
    assert torch_view(run(resumed, METRICS[cut_at:])) == torch_view(expected[cut_at:])
