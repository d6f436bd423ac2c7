"""plateau.adapters.transformers.PlateauCallback in real transformers Trainer runs on CPU.

A tiny BERT built from a config (nothing downloaded) trains on synthetic tokens;
the judged metric is scripted per epoch by ``compute_metrics``, so the cuts fall
at known evaluations, and a resumed run sees the same values.
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from trainers._tiny_bert import Dataset, tiny_bert  # noqa: E402

import plateau  # noqa: E402
from plateau import Decision, PlateauConfig  # noqa: E402
from plateau._log import DECISION_CODES  # noqa: E402
from plateau.adapters.transformers import PlateauCallback  # noqa: E402

EPOCHS = 8
SCRIPTED = [1.0, 0.8, 0.85, 0.8, 0.75, 0.8, 0.8, 0.8]
SETTINGS = {"patience": 1, "factor": 0.5, "min_lr": 0.02}
LR = 0.1
pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*(pin_memory|TRANSFORMERS_CACHE)"),
]


class Record(transformers.TrainerCallback):
    """The lr of each optimizer step, and the test's own copies at each new best."""

    def __init__(self, plateau_callback=None):
        self.plateau_callback = plateau_callback
        self.lrs = []  # (the lr the step trains with, the Trainer schedule's lr)
        self.best = None
        self.restores = 0

    def on_step_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        self.lrs.append((optimizer.param_groups[0]["lr"], lr_scheduler.get_last_lr()[0]))

    def on_evaluate(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self.plateau_callback is None:
            return
        decision = self.plateau_callback.plateau_state.decision
        if decision is Decision.IMPROVED:
            self.best = copy.deepcopy((model.state_dict(), optimizer.state_dict()["state"]))
        elif decision is Decision.REDUCED:
            weights, optimizer_state = self.best
            for name, value in model.state_dict().items():
                assert torch.equal(value, weights[name]), name
            for index, held in optimizer.state_dict()["state"].items():
                for key, value in held.items():
                    assert torch.equal(value, optimizer_state[index][key]), (index, key)
            self.restores += 1


def fit(
    callback, output_dir, schedule="constant", resume_from=None, record=None, save="no",
    restore_states=True,
):  # fmt: skip
    """Train the tiny BERT with Adam; return the Trainer."""
    model = tiny_bert()
    args = transformers.TrainingArguments(
        output_dir=str(output_dir), num_train_epochs=EPOCHS, per_device_train_batch_size=8,
        learning_rate=LR, lr_scheduler_type=schedule, eval_strategy="epoch",
        save_strategy=save, report_to=[], logging_strategy="no", use_cpu=True,
        disable_tqdm=True, seed=0, dataloader_num_workers=0,
        restore_callback_states_from_checkpoint=restore_states,
    )  # fmt: skip
    holder = {}

    def compute_metrics(predictions):
        return {"scripted": SCRIPTED[round(holder["trainer"].state.epoch) - 1]}

    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=Dataset(16, 1), eval_dataset=Dataset(4, 2),
        callbacks=[callback, record or Record()], compute_metrics=compute_metrics,
    )  # fmt: skip
    holder["trainer"] = trainer
    trainer.train(resume_from_checkpoint=resume_from)
    return trainer


def plateau_callback_of(trainer):
    """The Trainer's plateau callback (a resumed Trainer rebuilds it from the checkpoint)."""
    (found,) = [c for c in trainer.callback_handler.callbacks if isinstance(c, PlateauCallback)]
    return found


def record_of(trainer):
    (found,) = [c for c in trainer.callback_handler.callbacks if isinstance(c, Record)]
    return found


def evaluations(trainer):
    return [entry for entry in trainer.state.log_history if "eval_scripted" in entry]


def test_each_evaluation_steps_the_plateau_and_the_lrs_are_simulate_s(tmp_path):
    callback = PlateauCallback("eval_scripted", **SETTINGS)
    trainer = fit(callback, tmp_path)
    groups = len(trainer.optimizer.param_groups)  # the Trainer's AdamW: decay and no decay
    expected = plateau.simulate(SCRIPTED, PlateauConfig(**SETTINGS), lrs=[LR] * groups)
    assert callback.plateau_state == expected[-1]
    assert expected[-1].num_reductions >= 2
    logged = evaluations(trainer)
    assert [e["plateau/lr_0"] for e in logged] == [s.lrs[0] for s in expected]
    assert [e["plateau/decision"] for e in logged] == [DECISION_CODES[s.decision] for s in expected]
    # Two steps per epoch; under the constant schedule, each trains at the plateau's lr.
    trained = [lr for lr, _ in record_of(trainer).lrs]
    assert trained == [LR] * 2 + [s.lrs[0] for s in expected[:-1] for _ in range(2)]


def test_under_the_trainer_s_linear_schedule_the_plateau_scales_it(tmp_path):
    callback = PlateauCallback("eval_scripted", **SETTINGS)
    trainer = fit(callback, tmp_path, schedule="linear")
    expected = [plateau.init(LR, callback.config)]
    expected += plateau.simulate(SCRIPTED, callback.config, lrs=LR)
    steps = record_of(trainer).lrs
    for step, (trained, scheduled) in enumerate(steps):
        assert trained == plateau.scale_base(expected[step // 2], scheduled, LR)[0], step
    assert steps[-1][0] < steps[-1][1] < LR  # cut below a schedule that decays


def test_it_stops_training_when_the_schedule_is_exhausted(tmp_path):
    callback = PlateauCallback(
        "eval_scripted", stop_when_exhausted=True, max_reductions=1, **SETTINGS
    )
    trainer = fit(callback, tmp_path)
    decisions = [e["plateau/decision"] for e in evaluations(trainer)]
    assert decisions[-1] == DECISION_CODES[Decision.CAPPED] and len(decisions) < EPOCHS


def test_restore_best_puts_back_the_best_weights_and_adam_state_on_each_cut(tmp_path):
    callback = PlateauCallback("eval_scripted", restore_best=True, **SETTINGS)
    record = Record(callback)
    fit(callback, tmp_path, record=record)
    assert record.restores == callback.plateau_state.num_reductions >= 2


def test_a_run_resumed_from_a_checkpoint_continues_exactly(tmp_path):
    whole = fit(PlateauCallback("eval_scripted", **SETTINGS), tmp_path / "whole", save="epoch")
    checkpoint = tmp_path / "whole" / "checkpoint-8"  # after epoch 4: 2 steps per epoch
    resumed = fit(
        PlateauCallback("eval_scripted", **SETTINGS), tmp_path / "resumed",
        resume_from=str(checkpoint), save="epoch",
    )  # fmt: skip
    assert plateau_callback_of(resumed).plateau_state == plateau_callback_of(whole).plateau_state
    assert record_of(resumed).lrs == record_of(whole).lrs[8:]
    timeless = [
        [{k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k} for e in run]
        for run in (evaluations(resumed)[-4:], evaluations(whole)[-4:])
    ]
    assert timeless[0] == timeless[1]
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, whole.model.state_dict()[name]), name
    # Without the Trainer restoring callback states, the plateau cannot resume: it says so.
    with pytest.warns(UserWarning, match="restore_callback_states_from_checkpoint=True"):
        fit(
            PlateauCallback("eval_scripted", **SETTINGS), tmp_path / "fresh",
            resume_from=str(checkpoint), restore_states=False,
        )  # fmt: skip


def test_bad_settings_and_the_trainer_s_own_plateau_are_refused(tmp_path):
    with pytest.raises(TypeError, match="'metric' must be a str, got int"):
        PlateauCallback(3)
    with pytest.raises(ValueError, match="factor"):
        PlateauCallback(factor=2.0)
    with pytest.raises(ValueError, match="reduce_lr_on_plateau"):
        fit(PlateauCallback("eval_scripted"), tmp_path, schedule="reduce_lr_on_plateau")
