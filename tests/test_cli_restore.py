"""`plateau simulate --restore-best`: where restore_best=True would have rolled back.

The reference is independent of the CLI: plateau.simulate's decisions on the same
values, and, where torch is installed, the real torch scheduler with restore_best,
whose copy records the epochs it restored.
"""

from __future__ import annotations

import csv
import re

import pytest

import plateau
from tests.cli.support import BUNDLED, cli


def bundled_values():
    with BUNDLED.open() as f:
        return [float(row["val_loss"]) for row in csv.DictReader(f) if row["val_loss"]]


def rollbacks_printed(stdout, label="restore_best"):
    (line,) = [text for text in stdout.splitlines() if text.startswith(label + ":")]
    return [(int(a), int(b)) for a, b in re.findall(r"(\d+) (?:back )?to (?:epoch )?(\d+)", line)]


def expected_rollbacks(values, config):
    last_best, rollbacks = None, []
    for epoch, state in enumerate(plateau.simulate(values, config)):
        if state.decision is plateau.Decision.IMPROVED:
            last_best = epoch
        elif state.decision is plateau.Decision.REDUCED:
            rollbacks.append((epoch, last_best))
    return rollbacks


@pytest.mark.parametrize("patience", [0, 3, 6])
def test_each_cut_rolls_back_to_the_last_improvement(patience):
    result = cli(str(BUNDLED), "--patience", str(patience), "--restore-best")
    assert result.returncode == 0, result.stderr
    expected = expected_rollbacks(bundled_values(), plateau.PlateauConfig(patience=patience))
    assert expected, "the bundled log must cut at least once"
    assert rollbacks_printed(result.stdout) == expected


def test_compared_runs_each_say_where_they_roll_back():
    result = cli(str(BUNDLED), "--patience", "3", "--compare", "patience=6", "--restore-best")
    assert result.returncode == 0, result.stderr
    values = bundled_values()
    assert rollbacks_printed(result.stdout, "base: restore_best") == expected_rollbacks(
        values, plateau.PlateauConfig(patience=3)
    )
    assert rollbacks_printed(result.stdout, "patience=6: restore_best") == expected_rollbacks(
        values, plateau.PlateauConfig(patience=6)
    )


def test_without_the_flag_nothing_is_said_and_csv_refuses_it():
    assert "restore_best" not in cli(str(BUNDLED), "--patience", "3").stdout
    refused = cli(str(BUNDLED), "--patience", "3", "--restore-best", "--format", "csv")
    assert refused.returncode != 0
    assert "--restore-best" in refused.stderr
    assert refused.stdout == ""


def test_the_epochs_are_those_torch_restore_best_restores():
    torch = pytest.importorskip("torch")
    from plateau.adapters.torch import ReduceLROnPlateau

    values = bundled_values()
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = ReduceLROnPlateau(optimizer, patience=3, restore_best=True)
    seen = []
    for value in values:
        optimizer.step()
        scheduler.step(value)
        if scheduler.best_copy.restored_at == scheduler.state.last_epoch:
            # last_epoch counts the steps taken: the row index is one less
            seen.append((scheduler.state.last_epoch - 1, scheduler.best_copy.best_epoch - 1))
    assert seen, "the bundled log must cut at least once"
    printed = rollbacks_printed(cli(str(BUNDLED), "--patience", "3", "--restore-best").stdout)
    assert seen == printed
