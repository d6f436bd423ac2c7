"""Warmup against timm's PlateauLRScheduler (timm 1.0.31), driven as timm's train loop drives it.

timm's ``train.py`` calls ``lr_scheduler.step(epoch + 1, metric)`` after each epoch
(its per-update ``step_update`` is a no-op for this scheduler). With
``warmup_t=W, warmup_lr_init=f * b`` and one param group, timm sets the lr to
``f * b`` at construction; ``step(k)`` for k <= W sets ``f*b + k * (b - f*b) / W`` and
does not step its inner torch ReduceLROnPlateau (the metric is not seen); from
k = W + 1 on it steps the inner scheduler, which cuts the lr the group holds. That
is plateau's warmup rule with ``warmup_epochs=W, warmup_start_factor=f``: the lrs
agree within float rounding on every epoch, and after warmup best and both
counters agree exactly.

Where timm differs, plateau follows its own rule, pinned below: several groups
(timm starts each at the one absolute ``warmup_lr_init``), the last warmup step
(timm's arithmetic may miss b by an ulp), an lr set by hand during warmup (timm
overwrites it), and ``last_epoch`` (timm's inner scheduler does not count warmup).

timm.scheduler is imported without timm's ``__init__`` (which needs torchvision),
by tests/trainers/test_timm.py's helper.
"""

from __future__ import annotations

import math
import random
import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).parent / "trainers"))
from test_timm import import_plateau_lr  # noqa: E402

import plateau  # noqa: E402
from plateau import Decision, PlateauConfig  # noqa: E402
from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

plateau_lr = import_plateau_lr()
SEEDS = 300


def optimizer_with(*lrs):
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups)


def timm_scheduler(optimizer, timm_kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PlateauLRScheduler is deprecated
        return plateau_lr.PlateauLRScheduler(optimizer, **timm_kwargs)


def lr_of(optimizer):
    return [float(group["lr"]) for group in optimizer.param_groups]


def random_case(seed):
    """(b, timm's kwargs, the equivalent PlateauConfig, metrics): ties, NaN in warmup, floors."""
    rng = random.Random(seed)
    b = rng.choice([0.1, 0.3, 1e-3, 1.0, 0.7, rng.uniform(1e-4, 2.0)])
    f = rng.choice([0.0, 1.0, 0.1, 1 / 3, rng.random()])
    w = rng.randint(1, 8)
    mode = rng.choice(["min", "max"])
    decay = rng.choice([0.1, 0.5, 1 / 3, rng.uniform(0.05, 0.95)])
    patience = rng.randint(0, 4)
    cooldown = rng.randint(0, 3)
    threshold = rng.choice([0.0, 1e-4, 0.01, 0.1])
    lr_min = rng.choice([0.0, 0.0, b * 0.05, b * 0.3, b * f * 2 + 1e-6])
    timm_kwargs = {
        "decay_rate": decay,
        "patience_t": patience,
        "threshold": threshold,
        "cooldown_t": cooldown,
        "warmup_t": w,
        "warmup_lr_init": f * b,
        "lr_min": lr_min,
        "mode": mode,
    }
    config = PlateauConfig(
        mode=mode,
        factor=decay,
        patience=patience,
        threshold=threshold,
        cooldown=cooldown,
        min_lr=lr_min,
        warmup_epochs=w,
        warmup_start_factor=f,
    )
    values = [1.0, 0.9, 0.9, 0.8, 1.1, 0.9] + [rng.uniform(0.5, 1.5) for _ in range(3)]
    warmup = [rng.choice([*values, math.nan, math.nan, math.inf, -math.inf]) for _ in range(w)]
    after = [rng.choice([*values, math.nan]) for _ in range(rng.randint(10, 40))]
    return b, timm_kwargs, config, warmup + after


@pytest.mark.parametrize("chunk", range(3))
def test_one_group_lrs_match_timm_on_every_epoch(chunk):
    seen = {"reduced": 0, "cooldown": 0, "at_floor": 0, "nan_in_warmup": 0, "inexact_end": 0}
    for seed in range(chunk * SEEDS // 3, (chunk + 1) * SEEDS // 3):
        b, timm_kwargs, config, metrics = random_case(seed)
        w = config.warmup_epochs
        theirs_opt = optimizer_with(b)
        theirs = timm_scheduler(theirs_opt, timm_kwargs)
        drop_in_opt = optimizer_with(b)
        drop_in = ReduceLROnPlateau(
            drop_in_opt,
            mode=config.mode,
            factor=config.factor,
            patience=config.patience,
            threshold=config.threshold,
            cooldown=config.cooldown,
            min_lr=config.min_lr,
            warmup_epochs=w,
            warmup_start_factor=config.warmup_start_factor,
        )
        state = plateau.init(b, config)
        assert state.lrs == tuple(lr_of(theirs_opt)) == tuple(lr_of(drop_in_opt))
        for epoch, metric in enumerate(metrics):
            theirs.step(epoch + 1, metric)  # timm's train loop
            drop_in.step(metric)
            state, lrs = plateau.step(state, metric, config)
            assert lr_of(drop_in_opt) == list(lrs), (seed, epoch)
            assert math.isclose(lrs[0], lr_of(theirs_opt)[0], rel_tol=1e-12), (seed, epoch)
            inner = theirs.lr_scheduler
            if epoch < w:
                assert state.decision is Decision.WARMUP
                seen["nan_in_warmup"] += math.isnan(metric)
                assert inner.last_epoch == 0  # timm's inner scheduler saw nothing
            else:
                assert (state.best, state.num_bad_epochs, state.cooldown_counter) == (
                    inner.best,
                    inner.num_bad_epochs,
                    inner.cooldown_counter,
                ), (seed, epoch)
                seen[state.decision.value] = seen.get(state.decision.value, 0) + 1
            if epoch == w - 1:
                assert lrs == (b,)
                seen["inexact_end"] += lr_of(theirs_opt)[0] != b
    assert all(seen.values()), seen  # not vacuous: each feature happened


def test_several_groups_ramp_from_their_own_fraction_timm_from_one_start():
    """timm's warmup_lr_init is one absolute start for every group; plateau's is b_i * f."""
    b, f, w = (0.1, 0.02), 0.5, 4
    theirs_opt = optimizer_with(*b)
    timm_scheduler(theirs_opt, {"warmup_t": w, "warmup_lr_init": f * b[0], "mode": "min"})
    ours = ReduceLROnPlateau(optimizer_with(*b), warmup_epochs=w, warmup_start_factor=f)
    assert lr_of(theirs_opt) == [f * b[0], f * b[0]]  # the second group starts above its b
    assert ours.get_last_lr() == [b[0] * f, b[1] * f]


def test_the_last_warmup_step_is_b_exactly_where_timms_arithmetic_rounds():
    """timm's lr after step W is ``s + W * ((b - s) / W)``, which can miss b by an ulp."""
    cases = [(0.3, 0.1, 3), (0.7, 1 / 3, 5), (2.5, 0.01, 7)]
    missed = 0
    for b, f, w in cases:
        theirs_opt = optimizer_with(b)
        theirs = timm_scheduler(theirs_opt, {"warmup_t": w, "warmup_lr_init": f * b, "mode": "min"})
        config = PlateauConfig(warmup_epochs=w, warmup_start_factor=f)
        state = plateau.init(b, config)
        for epoch in range(w):
            theirs.step(epoch + 1, 1.0)
            state, lrs = plateau.step(state, 1.0, config)
        assert lrs == (b,)
        assert math.isclose(lr_of(theirs_opt)[0], b, rel_tol=1e-15)
        missed += lr_of(theirs_opt)[0] != b
    assert missed  # timm's end is not exactly b in at least one of them


def test_an_lr_set_by_hand_during_warmup_is_overwritten_by_timm_rescaled_by_plateau():
    b, f, w = 0.1, 0.2, 4
    theirs_opt = optimizer_with(b)
    theirs = timm_scheduler(theirs_opt, {"warmup_t": w, "warmup_lr_init": f * b, "mode": "min"})
    ours_opt = optimizer_with(b)
    ours = ReduceLROnPlateau(ours_opt, warmup_epochs=w, warmup_start_factor=f)
    theirs.step(1, 1.0)
    ours.step(1.0)
    factor_1, factor_2 = f + (1 - f) * 1 / w, f + (1 - f) * 2 / w
    for optimizer in (theirs_opt, ours_opt):
        optimizer.param_groups[0]["lr"] *= 3.0  # by hand
    hand = lr_of(ours_opt)[0]
    theirs.step(2, 1.0)
    ours.step(1.0)
    assert math.isclose(lr_of(theirs_opt)[0], f * b + 2 * (b - f * b) / w)  # hand lr lost
    assert lr_of(ours_opt)[0] == (hand / factor_1) * factor_2  # the ramp carried on from it
    for epoch in (3, 4):
        theirs.step(epoch, 1.0)
        ours.step(1.0)
    assert math.isclose(lr_of(theirs_opt)[0], b)
    assert lr_of(ours_opt)[0] == hand / factor_1  # its base was rescaled


def test_last_epoch_counts_the_warmup_steps_timms_inner_scheduler_does_not():
    w = 3
    theirs = timm_scheduler(optimizer_with(0.1), {"warmup_t": w, "mode": "min"})
    ours = ReduceLROnPlateau(optimizer_with(0.1), warmup_epochs=w)
    for epoch in range(w + 2):
        theirs.step(epoch + 1, 1.0)
        ours.step(1.0)
    assert theirs.lr_scheduler.last_epoch == 2
    assert ours.last_epoch == w + 2
