"""plateau's log_dict: a state as the flat dict of numbers experiment trackers take."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import attrs
import pytest

import plateau
from plateau import Decision, PlateauConfig
from plateau._log import DECISION_CODES, log_dict

DOCS = Path(__file__).parents[1] / "docs" / "restore.md"
CONFIG = PlateauConfig(patience=1, factor=0.5, cooldown=1, min_lr=0.02)
METRICS = [1.0, 0.9, 0.95, 0.95, 0.8] + [0.8] * 12


def test_each_step_logs_its_lrs_counters_and_decision_code():
    states = plateau.simulate(METRICS, CONFIG, lrs=[0.1, 0.04])
    for state in states:
        logged = log_dict(state)
        assert [logged["plateau/lr_0"], logged["plateau/lr_1"]] == list(state.lrs)
        assert logged["plateau/best"] == state.best
        assert logged["plateau/num_bad_epochs"] == state.num_bad_epochs
        assert logged["plateau/cooldown_counter"] == state.cooldown_counter
        assert logged["plateau/num_reductions"] == state.num_reductions
        assert logged["plateau/decision"] == DECISION_CODES[state.decision]
    assert {log_dict(s)["plateau/decision"] for s in states} >= {
        DECISION_CODES[d] for d in (Decision.IMPROVED, Decision.REDUCED, Decision.AT_FLOOR)
    }


def test_one_lr_is_logged_as_lr_under_the_prefix_given():
    state = plateau.init(0.1, CONFIG)
    assert log_dict(state, prefix="sched.") == {
        "sched.lr": 0.1,
        "sched.num_bad_epochs": 0,
        "sched.cooldown_counter": 0,
        "sched.num_reductions": 0,
        "sched.decision": DECISION_CODES[Decision.START],
    }


def test_every_decision_is_logged_as_the_code_the_docs_table_gives_it():
    rows = re.findall(r"^\| (\d+) \| (\w+) \|$", DOCS.read_text(), flags=re.MULTILINE)
    documented = {Decision(name): int(code) for code, name in rows}
    assert set(documented) == set(Decision)  # every decision, each once
    assert len(set(documented.values())) == len(Decision)
    state = plateau.init(0.1, CONFIG)
    for decision, code in documented.items():
        assert log_dict(attrs.evolve(state, decision=decision))["plateau/decision"] == code


@pytest.mark.parametrize("mode, metric", [("min", -math.inf), ("max", math.inf)])
def test_values_are_strict_json_numbers_even_when_best_is_infinite(mode, metric):
    config = PlateauConfig(mode=mode, patience=0)
    states = [plateau.init(0.1, config), *plateau.simulate([metric, 1.0, 1.0], config, lrs=0.1)]
    for state in states:
        logged = log_dict(state)
        json.dumps(logged, allow_nan=False)
        assert all(type(v) in (int, float) and math.isfinite(v) for v in logged.values())
        assert "plateau/best" not in logged  # infinite throughout: left out


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="'state' must be a PlateauState, got dict"):
        log_dict({"lrs": [0.1]})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'prefix' must be a str, got NoneType"):
        log_dict(plateau.init(0.1, CONFIG), prefix=None)  # type: ignore[arg-type]


@pytest.mark.slow  # mlflow creates its database: about 8 s
def test_mlflow_and_tensorboard_take_it_as_it_is(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    tensorboard = pytest.importorskip("torch.utils.tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    states = plateau.simulate(METRICS, CONFIG, lrs=0.1)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # An experiment of this store: another test in this process may have made another active.
    experiment = mlflow.create_experiment("log_dict")
    with mlflow.start_run(experiment_id=experiment) as run:
        for epoch, state in enumerate(states):
            mlflow.log_metrics(log_dict(state), step=epoch)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "plateau/lr")
    assert [m.value for m in history] == [s.lrs[0] for s in states]

    writer = tensorboard.SummaryWriter(str(tmp_path / "tb"))
    for epoch, state in enumerate(states):
        writer.add_scalars("plateau", log_dict(state, prefix=""), epoch)
    writer.close()
    decisions = EventAccumulator(str(tmp_path / "tb" / "plateau_decision")).Reload()
    codes = [int(e.value) for e in decisions.Scalars("plateau")]
    assert codes == [DECISION_CODES[s.decision] for s in states]
