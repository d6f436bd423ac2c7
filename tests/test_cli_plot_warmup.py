"""``plateau simulate --warmup-epochs ... --plot``: the picture shows the ramp (issue 11).

The figure is caught as it is saved, and its lr line is read back: it is the
replay's lrs, the ramp included, and no cut is marked on the ramp.
"""

from __future__ import annotations

import pytest
from cli.support import BUNDLED, cli, json_doc

WARMUP = ["--patience", "3", "--warmup-epochs", "4", "--warmup-start-factor", "0.1"]


def test_the_plot_draws_the_warmup_ramp_and_marks_no_cut_on_it(tmp_path, monkeypatch):
    figure = pytest.importorskip("matplotlib.figure")
    saved = []
    monkeypatch.setattr(figure.Figure, "savefig", lambda fig, path: saved.append(fig))
    result = cli(BUNDLED, *WARMUP, "--plot", tmp_path / "ramp.png")
    assert result.returncode == 0, result.stderr
    rows = json_doc(BUNDLED, *WARMUP)["rows"]
    (fig,) = saved
    _metric_ax, lr_ax = fig.axes
    lr_line, cut_markers = lr_ax.lines[:2]
    assert list(lr_line.get_ydata()) == [row["lr"] for row in rows]
    # The ramp: 1.0 * (0.1 + 0.9 * k / 4) after warmup steps k = 1..4, then the plateau.
    assert [row["decision"] for row in rows[:4]] == ["warmup"] * 4
    assert list(lr_line.get_ydata())[:4] == pytest.approx([0.325, 0.55, 0.775, 1.0])
    cut_epochs = list(cut_markers.get_xdata())
    assert cut_epochs == [row["epoch"] for row in rows if row["decision"] == "reduced"]
    assert cut_epochs and min(cut_epochs) > 3
