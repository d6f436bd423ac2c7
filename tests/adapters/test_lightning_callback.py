"""plateau.adapters.lightning.PlateauCallback in real Lightning fits on CPU.

The module's validation loss is scripted by the optimizer step it is logged at,
so that a run and its resume see the same values; with ``val_check_interval=0.5``
each epoch validates twice, and the callback must decide on each run's own value.
"""

from __future__ import annotations

import copy
import inspect

import attrs
import pytest

torch = pytest.importorskip("torch")
try:
    import lightning.pytorch as pl
except ImportError:
    pl = pytest.importorskip("pytorch_lightning")

import plateau  # noqa: E402
from plateau import Decision  # noqa: E402
from plateau._log import DECISION_CODES  # noqa: E402
from plateau.adapters.lightning import PlateauCallback  # noqa: E402

# One per validation run: two per epoch (4 batches, a validation every 2).
VALUES = [1.0, 0.9, 0.95, 0.92, 0.93, 0.8, 0.85, 0.85, 0.79, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
SETTINGS = {"patience": 1, "factor": 0.5, "cooldown": 1, "min_lr": 0.01}
LRS = (0.1, 0.05)  # the weight's group and the bias's
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:.*(num_workers|log_every_n_steps|does not have many workers)"
    ),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\)"),
]


class ScriptedModule(pl.LightningModule):
    """A tiny regression whose logged val_loss is VALUES[validation run], whatever it learns."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(3, 1)
        self.seen = []  # the values logged, one per validation run (not the sanity check)
        self.train_lrs = {}  # global step -> the lrs that step trained with

    def training_step(self, batch, batch_idx):
        x, y = batch
        groups = self.trainer.optimizers[0].param_groups
        self.train_lrs[self.trainer.global_step] = tuple(g["lr"] for g in groups)
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def scripted(self):
        # Lightning hands the callback a logged float as a float32 tensor.
        return torch.tensor(VALUES[max(self.trainer.global_step // 2 - 1, 0)])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.scripted())

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            self.seen.append(float(self.scripted()))

    def configure_optimizers(self):
        return torch.optim.SGD(
            [{"params": [self.layer.weight], "lr": LRS[0]}, {"params": [self.layer.bias]}],
            lr=LRS[1],
            momentum=0.9,
        )


class RecordingLogger(pl.loggers.Logger):
    def __init__(self):
        super().__init__()
        self.metrics = []

    name = "recording"
    version = 0

    def log_metrics(self, metrics, step=None):
        self.metrics.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs):
        pass


def loader():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=generator)
    dataset = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    return torch.utils.data.DataLoader(dataset, batch_size=8)


def fit(callbacks, max_epochs, module=None, ckpt_path=None):
    logger = RecordingLogger()
    trainer = pl.Trainer(
        max_epochs=max_epochs, val_check_interval=0.5, callbacks=callbacks, logger=[logger],
        accelerator="cpu", devices=1, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, deterministic=True,
    )  # fmt: skip
    module = module or ScriptedModule()
    trainer.fit(module, loader(), loader(), ckpt_path=ckpt_path)
    return trainer, module, logger


def plateau_logs(logger):
    return [metrics for _, metrics in logger.metrics if "plateau/decision" in metrics]


def test_it_decides_after_every_validation_and_its_lrs_are_simulate_s():
    callback = PlateauCallback("val_loss", **SETTINGS)
    _, module, logger = fit([callback], max_epochs=5)
    assert len(module.seen) == 10  # twice per epoch, the sanity check skipped
    expected = plateau.simulate(module.seen, plateau.PlateauConfig(**SETTINGS), lrs=LRS)
    logged = plateau_logs(logger)
    assert [(m["plateau/lr_0"], m["plateau/lr_1"]) for m in logged] == [s.lrs for s in expected]
    assert [m["plateau/decision"] for m in logged] == [DECISION_CODES[s.decision] for s in expected]
    assert callback.state == expected[-1]
    assert expected[-1].num_reductions >= 2
    # Each training step used the lrs of the decisions made before it (one every 2 steps).
    for step, lrs in module.train_lrs.items():
        assert lrs == (LRS if step < 2 else expected[step // 2 - 1].lrs), step


def test_it_stops_the_fit_when_the_schedule_is_exhausted():
    callback = PlateauCallback("val_loss", stop_when_exhausted=True, max_reductions=1, **SETTINGS)
    trainer, _, logger = fit([callback], max_epochs=8)
    decisions = [m["plateau/decision"] for m in plateau_logs(logger)]
    capped = DECISION_CODES[Decision.CAPPED]
    assert decisions[-1] == capped and capped not in decisions[:-1]
    assert trainer.should_stop and len(decisions) < 16  # stopped before max_epochs


class BestCopies(pl.Callback):
    """The test's own copies of the weights and optimizer state at each new best."""

    def __init__(self, plateau_callback):
        self.plateau_callback = plateau_callback
        self.best = None
        self.restores = []  # the last_epoch of each step that cut

    def on_validation_end(self, trainer, pl_module):
        state = self.plateau_callback.state
        if trainer.sanity_checking:
            return
        optimizer = trainer.optimizers[0]
        if state.decision is Decision.IMPROVED:
            self.best = copy.deepcopy((pl_module.state_dict(), optimizer.state_dict()["state"]))
        elif state.decision is Decision.REDUCED:
            weights, optimizer_state = self.best
            for name, value in pl_module.state_dict().items():
                assert torch.equal(value, weights[name]), name
            for index, held in optimizer.state_dict()["state"].items():
                buffer = optimizer_state[index]["momentum_buffer"]
                assert torch.equal(held["momentum_buffer"], buffer)
            assert tuple(g["lr"] for g in optimizer.param_groups) == state.lrs
            self.restores.append(state.last_epoch)


def test_restore_best_puts_back_the_best_weights_and_optimizer_state_on_each_cut():
    callback = PlateauCallback("val_loss", restore_best=True, **SETTINGS)
    ours = BestCopies(callback)
    fit([callback, ours], max_epochs=5)
    assert len(ours.restores) == callback.state.num_reductions >= 2
    assert callback.best_copies[0].restored_at == ours.restores[-1]


def test_a_fit_resumed_from_a_lightning_checkpoint_continues_exactly(tmp_path):
    whole_callback = PlateauCallback("val_loss", restore_best=True, **SETTINGS)
    _, whole, whole_logger = fit([whole_callback], max_epochs=6)

    first_callback = PlateauCallback("val_loss", restore_best=True, **SETTINGS)
    trainer, _, _ = fit([first_callback], max_epochs=3)
    trainer.save_checkpoint(tmp_path / "epoch3.ckpt")
    callback = PlateauCallback("val_loss", restore_best=True, **SETTINGS)
    _, resumed, logger = fit([callback], max_epochs=6, ckpt_path=tmp_path / "epoch3.ckpt")

    assert callback.state == whole_callback.state
    assert plateau_logs(logger) == plateau_logs(whole_logger)[6:]
    for name, value in resumed.state_dict().items():
        assert torch.equal(value, whole.state_dict()[name]), name
    kept, whole_kept = (c.best_copies[0].state_dict() for c in (callback, whole_callback))
    assert kept["meta"] == whole_kept["meta"]
    for name, value in kept["tensors"].items():
        assert torch.equal(value, whole_kept["tensors"][name]), name


def test_bad_settings_are_named():
    with pytest.raises(TypeError, match="'monitor' must be a str, got NoneType"):
        PlateauCallback(None)
    with pytest.raises(ValueError, match="patience"):
        PlateauCallback("val_loss", patience=-1)
    with pytest.raises(TypeError, match="unknown setting 'pateince'"):
        PlateauCallback("val_loss", pateince=3)


def test_its_signature_lists_every_config_field_as_a_keyword():
    parameters = inspect.signature(PlateauCallback).parameters
    fields = [f.name for f in attrs.fields(plateau.PlateauConfig) if f.init]
    for name in fields:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    callback = PlateauCallback("val_loss", **{"warmup_epochs": 2, "ema_decay": 0.5})
    assert (callback.config.warmup_epochs, callback.config.ema_decay) == (2, 0.5)
