"""A real Lightning Trainer.fit on CPU drives plateau's scheduler exactly as it drives torch's.

The LightningModule returns the scheduler from ``configure_optimizers`` with
``monitor="val_loss"`` and overrides nothing: Lightning recognises it as a plateau
scheduler by ``isinstance`` and passes it the logged metric after each validation.
The logged val_loss is scripted to improve and then plateau, so reductions and
cooldowns happen at known epochs.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
try:
    import lightning.pytorch as pl
except ImportError:
    pl = pytest.importorskip("pytorch_lightning")

from trainers._compat import claim  # noqa: E402

import plateau  # noqa: E402
from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TorchPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau

TRAINER = "Lightning"
TESTED_WITH = "pytorch-lightning==2.6.6"
NOTE = (
    "Lightning writes epoch k's checkpoint before that epoch's plateau step and does not "
    "redo it on resume, under both classes"
)

EPOCHS = 16
# Improves, plateaus (a reduction after patience), improves within cooldown, plateaus again.
VAL_LOSSES = [1.0, 0.8, 0.7, 0.7, 0.71, 0.7, 0.69, 0.65, 0.66, 0.66, 0.65, 0.66, 0.6, 0.6, 0.6, 0.6]
KWARGS = {"patience": 1, "factor": 0.5, "cooldown": 1, "min_lr": 0.02}
# Lightning's own advice and deprecations, about the tiny setup, not about schedulers.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:.*(num_workers|log_every_n_steps|does not have many workers)"
    ),
    pytest.mark.filterwarnings("ignore:.*callbacks used to create the checkpoint"),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\)"),
]


class ScriptedModule(pl.LightningModule):
    """A tiny regression; its logged val_loss is VAL_LOSSES[epoch], whatever the model does."""

    def __init__(self, scheduler_cls):
        super().__init__()
        self.scheduler_cls = scheduler_cls
        self.layer = torch.nn.Linear(3, 1)
        self.lrs = {}  # epoch -> lr used for training in that epoch
        self.at_start = None  # the scheduler's progress when training starts (after a restore)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.tensor(VAL_LOSSES[self.current_epoch]))

    def on_train_start(self):
        # torch's attribute names, which plateau's scheduler mirrors.
        scheduler = self.trainer.lr_scheduler_configs[0].scheduler
        names = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")
        self.at_start = {name: getattr(scheduler, name) for name in names}

    def on_train_epoch_start(self):
        self.lrs[self.current_epoch] = self.trainer.optimizers[0].param_groups[0]["lr"]

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = self.scheduler_cls(optimizer, **KWARGS)
        return {"optimizer": optimizer, "lr_scheduler": scheduler, "monitor": "val_loss"}


def loader():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=generator)
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    return torch.utils.data.DataLoader(data, batch_size=8)


def fit(scheduler_cls, max_epochs=EPOCHS, ckpt_path=None, checkpoint_dir=None, module_cls=None):
    """Train; return the module (with its per-epoch lrs) and the trainer."""
    callbacks = []
    if checkpoint_dir is not None:
        callbacks.append(
            pl.callbacks.ModelCheckpoint(
                dirpath=checkpoint_dir, filename="{epoch}", save_top_k=-1, every_n_epochs=1
            )
        )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=checkpoint_dir is not None,
        callbacks=callbacks,
        num_sanity_val_steps=0,
    )
    module = (module_cls or ScriptedModule)(scheduler_cls)
    trainer.fit(module, loader(), loader(), ckpt_path=ckpt_path)
    return module, trainer


def history(module, trainer):
    """The lr trained with at each epoch, then the lr left after the last validation."""
    return [*module.lrs.values(), trainer.optimizers[0].param_groups[0]["lr"]]


@claim("works", "history")
def test_fit_gives_torchs_lr_history():
    ours, ours_trainer = fit(ReduceLROnPlateau)
    theirs, their_trainer = fit(TorchPlateau)
    assert list(ours.lrs) == list(range(EPOCHS))
    assert history(ours, ours_trainer) == history(theirs, their_trainer)
    # Not vacuous: the script cuts the lr several times, down to the floor.
    assert len(set(history(ours, ours_trainer))) >= 3
    assert history(ours, ours_trainer)[-1] == KWARGS["min_lr"]
    # Lightning stepped our scheduler once per epoch with the logged val_loss.
    scheduler = ours_trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, ReduceLROnPlateau)
    assert ours_trainer.lr_scheduler_configs[0].reduce_on_plateau
    assert scheduler.state.last_epoch == EPOCHS
    config = plateau.PlateauConfig(**KWARGS)
    script = [float(torch.tensor(v)) for v in VAL_LOSSES]  # as logged: float32
    assert scheduler.state == plateau.simulate(script, config, 0.1)[-1]
    assert ours.at_start == theirs.at_start == {
        "best": float("inf"), "num_bad_epochs": 0, "cooldown_counter": 0, "last_epoch": 0
    }  # fmt: skip


@claim("resume")
@pytest.mark.parametrize(
    ("saved_with", "resumed_with"),
    [
        (ReduceLROnPlateau, ReduceLROnPlateau),
        (TorchPlateau, ReduceLROnPlateau),
        (ReduceLROnPlateau, TorchPlateau),
    ],
    ids=["plateau-to-plateau", "torch-to-plateau", "plateau-to-torch"],
)
@pytest.mark.parametrize("resume_after", [4, 9])
def test_resume_from_lightnings_checkpoint_as_torch_does(
    tmp_path, saved_with, resumed_with, resume_after
):
    """Resume mid-run with ckpt_path: the rest of the run is torch's resumed run, epoch for epoch.

    The checkpoint is Lightning's own (ModelCheckpoint, every epoch), written under
    plateau's class or torch's, and resumed under the other (or plateau's again).
    """
    for cls in {saved_with, TorchPlateau}:
        fit(cls, checkpoint_dir=tmp_path / cls.__module__)
    name = f"epoch={resume_after}.ckpt"
    theirs, their_trainer = fit(TorchPlateau, ckpt_path=tmp_path / TorchPlateau.__module__ / name)
    ours, ours_trainer = fit(resumed_with, ckpt_path=tmp_path / saved_with.__module__ / name)
    assert isinstance(ours_trainer.lr_scheduler_configs[0].scheduler, resumed_with)
    assert list(ours.lrs) == list(range(resume_after + 1, EPOCHS))
    # The restored progress is torch's, and it is progress: not a fresh schedule.
    assert ours.at_start == theirs.at_start
    # Lightning writes the epoch's checkpoint before that epoch's plateau step and does
    # not redo the step on resume: the restored schedule has seen epochs 0..k-1 only.
    # (docs/torch.md says so; torch's class is affected the same way.)
    assert ours.at_start["last_epoch"] == resume_after
    assert ours.at_start["best"] < 1.0
    assert history(ours, ours_trainer) == history(theirs, their_trainer)
    assert len(set(history(ours, ours_trainer))) >= 2


class StopWhenExhausted(ScriptedModule):
    """The docs/torch.md recipe: Lightning steps the scheduler through this hook."""

    def lr_scheduler_step(self, scheduler, metric):
        scheduler.step(metric)
        if scheduler.exhausted:
            self.trainer.should_stop = True

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.tensor(1.0))  # flat from the start

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = ReduceLROnPlateau(optimizer, patience=1, factor=0.5, min_lr=0.025)
        return {"optimizer": optimizer, "lr_scheduler": scheduler, "monitor": "val_loss"}


def test_exhausted_stops_a_real_fit():
    """patience=1, factor=0.5, lr 0.1, min_lr 0.025, a flat loss, by torch's rules:
    epoch 0 improves, cuts at epochs 2 and 4 (to 0.05, 0.025), epoch 6 at the floor."""
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=50,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    module = StopWhenExhausted(ReduceLROnPlateau)
    trainer.fit(module, loader(), loader())
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert list(module.lrs) == list(range(7))  # epochs 0..6 trained, then stopped
    assert scheduler.exhausted and scheduler.state.decision is plateau.Decision.AT_FLOOR
    assert scheduler.state.last_epoch == 7 and scheduler.get_last_lr() == [0.025]


# --- warmup, then the plateau (issue 11; Lightning #10759) ----------------------------

WARMUP = {"warmup_epochs": 3, "warmup_start_factor": 0.1}
# NaN during warmup: not observed. Then the plateau of VAL_LOSSES from epoch 3 on.
WARMUP_LOSSES = [5.0, float("nan"), 4.0, *VAL_LOSSES[3:]]


class WarmupModule(ScriptedModule):
    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.tensor(WARMUP_LOSSES[self.current_epoch]))

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = ReduceLROnPlateau(optimizer, **KWARGS, **WARMUP)
        return {"optimizer": optimizer, "lr_scheduler": scheduler, "monitor": "val_loss"}


def fit_warmup(**kwargs):
    return fit(ReduceLROnPlateau, module_cls=WarmupModule, **kwargs)


def core_lrs(script):
    """The lr of each epoch and the last, by the pure core: init's lr, then after each step."""
    config = plateau.PlateauConfig(**KWARGS, **WARMUP)
    logged = [float(torch.tensor(v)) for v in script]  # as logged: float32
    return [
        plateau.init(0.1, config).lrs[0],
        *(s.lrs[0] for s in plateau.simulate(logged, config, 0.1)),
    ]


def test_lightning_fit_with_warmup_then_plateau():
    module, trainer = fit_warmup()
    lrs = history(module, trainer)
    assert lrs == core_lrs(WARMUP_LOSSES)
    # Not vacuous: the ramp 0.01 -> 0.1 over three epochs (epoch 0 trains at 0.1 * 0.1),
    # then the plateau's cuts, down to min_lr.
    assert lrs[:4] == pytest.approx([0.01, 0.04, 0.07, 0.1]) and lrs[3] == 0.1
    assert lrs[-1] == KWARGS["min_lr"] and len(set(lrs[4:])) >= 3


@pytest.mark.parametrize("resume_after", [1, 6], ids=["mid-warmup", "after-warmup"])
def test_lightning_resume_with_warmup_from_ckpt_path(tmp_path, resume_after):
    """ckpt_path mid-warmup and after it: the restored schedule carries on, as the core does.

    As without warmup (above), Lightning's epoch-k checkpoint holds the schedule after
    epochs 0..k-1, and the resumed fit trains from epoch k+1: so the resumed run is the
    core's run on the losses without epoch k's.
    """
    fit_warmup(checkpoint_dir=tmp_path)
    module, trainer = fit_warmup(ckpt_path=tmp_path / f"epoch={resume_after}.ckpt")
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert module.at_start["last_epoch"] == resume_after
    assert list(module.lrs) == list(range(resume_after + 1, EPOCHS))
    skipped = WARMUP_LOSSES[:resume_after] + WARMUP_LOSSES[resume_after + 1 :]
    assert history(module, trainer) == core_lrs(skipped)[resume_after:]
    assert scheduler.state.last_epoch == EPOCHS - 1


# --- a plateau over an epoch-wise base (issue 11), as Lightning steps it --------------


class CosineBaseModule(ScriptedModule):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
        scheduler = ReduceLROnPlateau(optimizer, **KWARGS, base=cosine, base_with_metric=True)
        return {"optimizer": optimizer, "lr_scheduler": scheduler, "monitor": "val_loss"}


def test_lightning_steps_a_plateau_over_a_cosine_with_base_with_metric():
    """Lightning calls only step(metric): with base_with_metric each call also advances
    the cosine. Expected from torch alone: the cosine on its own optimizer, torch's
    ReduceLROnPlateau on a constant lr, combined by scale_base."""
    module, trainer = fit(ReduceLROnPlateau, module_cls=CosineBaseModule)
    lrs = history(module, trainer)

    alone = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(alone, T_max=EPOCHS)
    still = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    theirs = TorchPlateau(still, **KWARGS)
    expected = [0.1]
    for loss in VAL_LOSSES:
        theirs.step(float(torch.tensor(loss)))  # as logged: float32
        alone.step()
        cosine.step()
        plateau_lr = still.param_groups[0]["lr"]
        state = plateau.init(plateau_lr, plateau.PlateauConfig())  # the plateau's lr, as a state
        expected.append(plateau.scale_base(state, cosine.get_last_lr()[0], 0.1)[0])
    assert lrs == expected
    # Not vacuous: cuts happened, and under them the cosine kept decaying.
    assert still.param_groups[0]["lr"] < 0.1 and lrs[-1] < lrs[-2] < 0.1
