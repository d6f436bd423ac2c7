"""The schedule options come from PlateauConfig's fields, so new fields need no CLI change."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from typing import Literal

import attrs
import pytest
from cli.support import BUNDLED

import plateau
from plateau import PlateauConfig
from plateau.cli import build_parser, main, options


def test_every_init_field_is_an_option_with_its_default():
    fields = [f for f in attrs.fields(PlateauConfig) if f.init]
    by_name = {option.name: option for option in options.schedule_options()}
    assert list(by_name) == [f.name for f in fields]
    defaults = PlateauConfig()
    for field in fields:
        option = by_name[field.name]
        assert option.flag == "--" + field.name.replace("_", "-")
        assert option.default == getattr(defaults, field.name)
        assert option.help  # known fields and new ones alike
    assert by_name["min_lr"].repeatable and not by_name["patience"].repeatable
    assert by_name["mode"].metavar == "{min,max}"


@attrs.frozen(kw_only=True)
class FutureConfig(PlateauConfig):
    """PlateauConfig with the fields other branches are adding.

    Attributes:
        warmup_epochs: Epochs of linear warmup before the schedule starts. More text.
        warmup_start_factor: Multiplier of the lr at the start of warmup.
        max_reductions: Cuts allowed at most; None for no limit.
        verbose: Whether to log each decision.
        style: A style.
    """

    warmup_epochs: int = 0
    warmup_start_factor: float = 0.1
    max_reductions: int | None = None
    verbose: bool = False
    style: Literal["a", "b"] = "a"


@pytest.fixture
def future(monkeypatch):
    monkeypatch.setattr(options, "PlateauConfig", FutureConfig)
    options.schedule_options.cache_clear()
    options._docstring_help.cache_clear()
    yield
    options.schedule_options.cache_clear()
    options._docstring_help.cache_clear()


def run_json(*args):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["simulate", str(BUNDLED), "--format", "json", *args])
    return code, out.getvalue(), err.getvalue()


def test_fields_added_later_appear_as_options_and_compare_keys(future):
    text = build_parser()._subparsers._group_actions[0].choices["simulate"].format_help()
    flat = " ".join(text.split())
    assert (
        "--warmup-epochs WARMUP_EPOCHS Epochs of linear warmup before the schedule starts" in flat
    )
    assert "--max-reductions MAX_REDUCTIONS" in flat and "(default: None)" in flat
    assert "--style {a,b}" in flat and "--verbose {true,false}" in flat

    code, out, err = run_json(
        "--warmup-epochs",
        "3",
        "--max-reductions",
        "2",
        "--verbose",
        "yes",
        "--compare",
        "max-reductions=none,warmup_start_factor=0.5",
    )
    assert (code, err) == (0, "")
    configs = json.loads(out)["configs"]
    base = configs["base"]
    assert (base["warmup_epochs"], base["max_reductions"], base["verbose"]) == (3, 2, True)
    other = configs["max-reductions=none,warmup_start_factor=0.5"]
    assert (other["max_reductions"], other["warmup_start_factor"]) == (None, 0.5)

    code, out, err = run_json("--compare", "warmup_epochs=x")
    assert code == 2 and "'warmup_epochs' must be an integer, got 'x'" in err
    code, out, err = run_json("--compare", "max_reductions=x")
    assert code == 2 and "must be an integer or none" in err
    code, out, err = run_json("--verbose", "maybe")
    assert code == 2 and "--verbose" in err and "'maybe'" in err


def test_fields_not_given_keep_the_config_defaults():
    args = build_parser().parse_args(["simulate", "x.csv", "--patience", "3"])
    assert options.base_config(args) == PlateauConfig(patience=3)
    args = build_parser().parse_args(["simulate", "x.csv", "--min-lr", "0.1", "--min-lr", "0"])
    assert options.base_config(args).min_lr == (0.1, 0.0)


def test_help_lists_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    defaults = PlateauConfig()
    for name in ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "eps"):
        assert f"--{name.replace('_', '-')}" in text
        assert f"(default: {getattr(defaults, name)})" in text
    assert "--run RUN" in text and "--column NAME" in text


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
    assert f"lr cut (*) at epoch{plural} {', '.join(map(str, cuts))};" in out.getvalue()
    assert out.getvalue().count("warmup") >= 2
