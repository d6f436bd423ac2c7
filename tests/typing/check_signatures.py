"""Checked by mypy --strict in CI (never run): good calls pass, bad ones are flagged.

Each negative carries the exact error code it must raise; with warn_unused_ignores
(part of --strict) an ignore that is not needed -- a bad call mypy accepts -- fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # never run: pytest's doctest collection imports every module
    from typing_extensions import assert_type

    import plateau
    from plateau import Decision, PlateauConfig, PlateauState

    config = PlateauConfig(mode="max", factor=0.5, patience=3, min_lr=(0.0, 1e-5), cooldown=1)
    assert_type(config.factor, float)
    assert_type(config.patience, int)
    assert_type(config.min_lr, "float | tuple[float, ...]")
    assert_type(PlateauConfig(patience=2, threshold=1), PlateauConfig)  # an int is a float

    state = plateau.init([0.1, 0.01], config)
    assert_type(state, PlateauState)
    state, lrs = plateau.step(state, 0.5, config)
    assert_type(lrs, "tuple[float, ...]")
    state, lrs = plateau.step(state, 0.5, config, lrs=[0.1, 0.01])
    assert_type(state.decision, Decision)
    assert_type(plateau.simulate([1.0, 0.9], config), "list[PlateauState]")
    assert_type(PlateauConfig.from_keras(patience=3), PlateauConfig)

    PlateauConfig(patience="3")  # type: ignore[arg-type]
    PlateauConfig(factor=None)  # type: ignore[arg-type]
    PlateauConfig(mode="minn")  # type: ignore[arg-type]
    PlateauConfig(threshold_mode="relative")  # type: ignore[arg-type]
    PlateauConfig(min_lr="0.1")  # type: ignore[arg-type]
    PlateauConfig(on_nonfinite="ignore")  # type: ignore[arg-type]
    PlateauConfig(eps=[1e-8])  # type: ignore[arg-type]
    plateau.init("0.1", config)  # type: ignore[arg-type]
    plateau.step(state, "0.5", config)  # type: ignore[arg-type]
    plateau.step(state, 0.5, config, lrs="0.1")  # type: ignore[arg-type]

    # The opt-in fields beyond torch's, and the torch drop-in's constructor.
    import torch

    from plateau.adapters.torch import ReduceLROnPlateau

    beyond = PlateauConfig(accumulation_size=4, ema_decay=0.93, max_reductions=None)
    assert_type(beyond.ema_decay, "float | None")
    assert_type(PlateauConfig(warmup_epochs=5, warmup_start_factor=0.1).warmup_epochs, int)
    PlateauConfig(max_reductions="3")  # type: ignore[arg-type]
    PlateauConfig(warmup_epochs=2.5)  # type: ignore[arg-type]
    PlateauConfig(threshold_mode="rel_abs")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = ReduceLROnPlateau(optimizer, mode="max", patience=3, warmup_epochs=2)
    assert_type(scheduler.state, PlateauState)
    ReduceLROnPlateau(optimizer, mode="maximum")  # type: ignore[arg-type]
    ReduceLROnPlateau(optimizer, on_repeat="twice")  # type: ignore[arg-type]
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    on_base = ReduceLROnPlateau(optimizer, patience=2, base=cosine, base_with_metric=True)
    ReduceLROnPlateau(optimizer, base=lambda epoch: 0.9**epoch)
    ReduceLROnPlateau(optimizer, base=[lambda epoch: 1.0])
    assert_type(on_base.base, "torch.optim.lr_scheduler.LRScheduler | None")
    on_base.step()
    on_base.step(0.5)
    ReduceLROnPlateau(optimizer, base=0.5)  # type: ignore[arg-type]
    ReduceLROnPlateau(optimizer, base_with_metric="yes")  # type: ignore[arg-type]
