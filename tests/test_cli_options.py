"""The schedule options: PlateauConfig's fields, or Keras's and optax's arguments under --rules."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest
from cli.support import BUNDLED, assert_one_line_error, cli, csv_rows

import plateau
from plateau import PlateauConfig
from plateau.cli import build_parser, main, options


def config_of(*args):
    return options.base_config(build_parser().parse_args(["simulate", "x.csv", *args]))


def test_fields_not_given_keep_the_config_defaults():
    assert config_of("--patience", "3") == PlateauConfig(patience=3)
    assert config_of("--min-lr", "0.1", "--min-lr", "0").min_lr == (0.1, 0.0)
    assert config_of("--ema-decay", "none", "--max-reductions", "2").max_reductions == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--rules", "keras", "--patience", "3", "--min-delta", "0.01", "--cooldown", "2"],
            PlateauConfig.from_keras(patience=3, min_delta=0.01, cooldown=2),
        ),
        (
            ["--rules", "optax", "--patience", "5", "--rtol", "0.001", "--min-scale", "0.01"],
            PlateauConfig.from_optax(patience=5, rtol=0.001, min_scale=0.01),
        ),
    ],
)
def test_rules_take_each_framework_s_own_arguments(args, expected):
    assert config_of(*args) == expected
    rows = csv_rows(BUNDLED, *args)
    states = plateau.simulate([float(row["metric"]) for row in rows], expected)
    assert [float(row["lr"]) for row in rows] == [s.lrs[0] for s in states]


def test_an_option_of_other_rules_is_refused_naming_it():
    assert_one_line_error(
        cli(BUNDLED, "--rules", "keras", "--threshold", "0.1"),
        "--threshold does not apply under --rules keras",
    )
    assert_one_line_error(cli(BUNDLED, "--min-delta", "0.1"), "--min-delta", "--rules torch")
    assert_one_line_error(
        cli(BUNDLED, "--rules", "keras", "--compare", "eps=0.1"), "--compare 'eps=0.1'", "--eps"
    )


def test_compare_changes_the_rules_arguments():
    rows = csv_rows(BUNDLED, "--rules", "keras", "--patience", "3", "--compare", "patience=5")
    slower = PlateauConfig.from_keras(patience=5)
    states = plateau.simulate([float(row["metric"]) for row in rows], slower)
    assert [float(row["lr[patience=5]"]) for row in rows] == [s.lrs[0] for s in states]


def test_help_is_plain_text_naming_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--rules", "--min-delta", "--rtol", "--every-row", "--log-y", "--run RUN"):
        assert flag in text
    assert "``" not in text and ":class:" not in text and ":meth:" not in text


def test_a_warmup_ramp_is_shown_and_not_marked_as_a_cut(tmp_path):
    metrics = [3.0, 2.0, 1.0, 1.0, 1.0]
    log = tmp_path / "log.json"
    log.write_text(json.dumps(metrics))
    args = ["--warmup-epochs", "2", "--warmup-start-factor", "0.5", "--patience", "0"]
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["simulate", str(log), *args])
    assert code == 0
    config = PlateauConfig(warmup_epochs=2, warmup_start_factor=0.5, patience=0)
    expected = plateau.simulate(metrics, config)
    assert [s.lrs[0] for s in expected[:2]] == [0.75, 1.0]  # the ramp: no cut
    cuts = [i for i, s in enumerate(expected) if s.decision is plateau.Decision.REDUCED]
    plural = "s" if len(cuts) > 1 else ""
    assert f"lr cut (*) at row{plural} {', '.join(map(str, cuts))};" in out.getvalue()
    assert out.getvalue().count("warmup") >= 2
