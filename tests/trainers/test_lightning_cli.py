"""LightningCLI configured from YAML with plateau's class and a setting beyond torch's.

The LightningModule takes its scheduler as an ``LRSchedulerCallable`` (Lightning's
dependency injection) and returns it with a ``monitor``; the YAML names the class
by ``class_path`` and its settings by ``init_args``, which jsonargparse checks
against the constructor's signature. The same YAML with torch's class (and without
``max_reductions``, which torch's class does not take) is the reference run.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("jsonargparse")
try:
    import lightning.pytorch as pl
    from lightning.pytorch.cli import LightningCLI, LRSchedulerCallable
except ImportError:
    pl = pytest.importorskip("pytorch_lightning")
    from pytorch_lightning.cli import LightningCLI, LRSchedulerCallable

from _compat import claim  # noqa: E402

from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TRAINER = "LightningCLI (YAML config)"
TESTED_WITH = "pytorch-lightning==2.6.6"
NOTE = (
    "needs jsonargparse[signatures]; the module takes the scheduler as an "
    "LRSchedulerCallable and returns it with a monitor"
)

EPOCHS = 10
SCRIPTED = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]  # torch's class cuts 3 times
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*(num_workers|log_every_n_steps|does not have many)"),
    pytest.mark.filterwarnings(
        "ignore:(?s).*(deprecated in v4|args parameter is intended|LeafSpec)"
    ),
]
YAML = """
seed_everything: 0
trainer:
  accelerator: cpu
  max_epochs: {epochs}
  logger: false
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
model:
  scheduler:
    class_path: {class_path}
    init_args:
      patience: 1
      factor: 0.5
{more}"""


class ScriptedModule(pl.LightningModule):
    """A tiny regression whose logged val_loss is SCRIPTED[epoch]; it records each lr."""

    def __init__(self, scheduler: LRSchedulerCallable) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.layer = torch.nn.Linear(3, 1)
        self.lrs: list[float] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.tensor(SCRIPTED[self.current_epoch]))

    def on_train_epoch_start(self):
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = {"scheduler": self.scheduler(optimizer), "monitor": "val_loss"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def train_dataloader(self):
        x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
        return torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
        )

    val_dataloader = train_dataloader


def run(tmp_path, class_path, more=""):
    config = tmp_path / f"{class_path.rsplit('.', 2)[-3]}.yaml"
    config.write_text(YAML.format(epochs=EPOCHS, class_path=class_path, more=more))
    args = ["fit", "--config", str(config), f"--trainer.default_root_dir={tmp_path}"]
    cli = LightningCLI(ScriptedModule, args=args, save_config_callback=None)
    scheduler = cli.trainer.lr_scheduler_configs[0].scheduler
    return [*cli.model.lrs, cli.trainer.optimizers[0].param_groups[0]["lr"]], scheduler


@pytest.fixture(scope="module")
def torchs_run(tmp_path_factory):
    return run(tmp_path_factory.mktemp("torch"), "torch.optim.lr_scheduler.ReduceLROnPlateau")[0]


@claim("works", "history")
def test_yaml_configured_plateau_gives_torchs_lr_history(tmp_path, torchs_run):
    ours, scheduler = run(tmp_path, "plateau.adapters.torch.ReduceLROnPlateau")
    assert isinstance(scheduler, ReduceLROnPlateau)
    assert ours == torchs_run
    assert len(set(ours)) == 4  # not vacuous: cut three times


@claim("works")
def test_a_setting_beyond_torchs_is_taken_from_the_yaml(tmp_path, torchs_run):
    ours, scheduler = run(
        tmp_path, "plateau.adapters.torch.ReduceLROnPlateau", "      max_reductions: 2\n"
    )
    assert scheduler.config.max_reductions == 2
    assert scheduler.state.num_reductions == 2
    third_cut = torchs_run.index(min(torchs_run))  # the epoch whose lr torch's third cut set
    assert ours[:third_cut] == torchs_run[:third_cut]
    assert set(ours[third_cut:]) == {torchs_run[third_cut - 1]}  # capped: no third cut
