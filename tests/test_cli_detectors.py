"""``--detector``, ``--window`` and ``--alpha`` (issue 25): the trend detectors on the user's log.

Each replay is checked against ``plateau.simulate`` under the same config: the CLI
passes the fields through and decides nothing itself.
"""

from __future__ import annotations

import attrs
import pytest
from cli.support import BUNDLED, assert_one_line_error, cli, csv_rows, json_doc, ok

import plateau
from plateau import PlateauConfig

SLOPE = "detector=slope,window=8"
WINDOW_BEST = "detector=window_best,window=3"


def replayed(rows, column="lr"):
    return [float(row[column]) for row in rows]


def expected_lrs(rows, config):
    return [state.lrs[0] for state in plateau.simulate(replayed(rows, "metric"), config)]


@pytest.mark.parametrize(
    ("args", "config"),
    [
        (
            ["--detector", "window_best", "--window", "3"],
            PlateauConfig(detector="window_best", window=3),
        ),
        (["--detector", "slope", "--window", "8"], PlateauConfig(detector="slope", window=8)),
        (
            ["--detector", "slope", "--window", "5", "--alpha", "0.2"],
            PlateauConfig(detector="slope", window=5, alpha=0.2),
        ),
    ],
)
def test_each_detector_flag_replays_the_core_s_detector(args, config):
    config = attrs.evolve(config, patience=3)
    rows = csv_rows(BUNDLED, "--patience", "3", *args)
    assert replayed(rows) == expected_lrs(rows, config)
    # The detector changes the schedule on this noisy log: the flags are not ignored.
    assert replayed(rows) != expected_lrs(rows, PlateauConfig(patience=3))
    assert (
        PlateauConfig.from_dict(json_doc(BUNDLED, "--patience", "3", *args)["configs"]["base"])
        == config
    )


def test_the_detector_applies_under_keras_and_optax_rules_too():
    rows = csv_rows(
        BUNDLED, "--rules", "keras", "--patience", "3", "--detector", "slope", "--window", "8"
    )
    keras_slope = attrs.evolve(PlateauConfig.from_keras(patience=3), detector="slope", window=8)
    assert replayed(rows) == expected_lrs(rows, keras_slope)
    doc = json_doc(BUNDLED, "--rules", "optax", "--detector", "window_best", "--window", "4")
    expected = attrs.evolve(PlateauConfig.from_optax(), detector="window_best", window=4)
    assert PlateauConfig.from_dict(doc["configs"]["base"]) == expected


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--detector", "trend"], ["'detector'", "'trend'"]),
        (["--detector", "slope", "--window", "2"], ["'window'", "detector='slope'", "2"]),
        (["--window", "0"], ["'window'", "0"]),
        (["--window", "8.5"], ["--window", "'8.5'"]),
        (["--alpha", "1"], ["'alpha'", "1"]),
        (["--alpha", "0"], ["'alpha'", "0"]),
        (["--alpha", "five"], ["--alpha", "'five'"]),
        (
            ["--compare", "detector=slope,window=2"],
            ["--compare 'detector=slope,window=2'", "'window'"],
        ),
        (["--compare", "alpha=1.5"], ["--compare 'alpha=1.5'", "'alpha'", "1.5"]),
        (["--compare", "detector=best,detector=slope"], ["'detector' given twice"]),
    ],
)
def test_a_bad_detector_value_is_one_line_naming_the_flag_and_value(args, named):
    assert_one_line_error(cli(BUNDLED, *args), *named)


def test_compare_overlays_the_detectors_in_the_table():
    args = [BUNDLED, "--patience", "3", "--compare", WINDOW_BEST, "--compare", SLOPE]
    rows = csv_rows(*args)
    assert list(rows[0]) == ["epoch", "metric", "lr[base]", f"lr[{WINDOW_BEST}]", f"lr[{SLOPE}]"]
    configs = {
        "base": PlateauConfig(patience=3),
        WINDOW_BEST: PlateauConfig(patience=3, detector="window_best", window=3),
        SLOPE: PlateauConfig(patience=3, detector="slope", window=8),
    }
    for label, config in configs.items():
        assert replayed(rows, f"lr[{label}]") == expected_lrs(rows, config)
    # The table's last lines: one summary per config, each naming its cuts.
    table = ok(cli(*args)).splitlines()
    for label, config in configs.items():
        states = plateau.simulate(replayed(rows, "metric"), config)
        cuts = [r["epoch"] for r, s in zip(rows, states) if s.decision is plateau.Decision.REDUCED]
        summary = next(line for line in table if line.startswith(f"{label}: lr cut"))
        assert f"at epochs {', '.join(cuts)};" in summary


def test_compare_overlays_the_detectors_in_the_plot_titled_by_the_differing_fields(
    tmp_path, monkeypatch
):
    figure = pytest.importorskip("matplotlib.figure")
    saved = []
    monkeypatch.setattr(figure.Figure, "savefig", lambda fig, path: saved.append(fig))
    args = [BUNDLED, "--patience", "3", "--detector", "window_best", "--window", "3"]
    result = cli(*args, "--compare", SLOPE, "--plot", tmp_path / "detectors.png")
    assert result.returncode == 0, result.stderr
    rows = csv_rows(*args, "--compare", SLOPE)
    (fig,) = saved
    metric_ax, lr_ax = fig.axes
    title = metric_ax.get_title()
    for field in ("patience=3", "detector=window_best", "window=3", SLOPE):
        assert field in title
    assert "alpha" not in title and "factor" not in title  # the defaults are not listed
    lines = {line.get_label(): list(line.get_ydata()) for line in lr_ax.lines}
    assert lines["lr (base)"] == replayed(rows, "lr[base]")
    assert lines[f"lr ({SLOPE})"] == replayed(rows, f"lr[{SLOPE}]")
    assert lines["lr (base)"] != lines[f"lr ({SLOPE})"]
