"""Golden traces: metric streams and torch's recorded answers, kept as data in tests/golden/.

The core must reproduce every recorded step exactly (no framework needed). When
torch is installed the recorded answers are re-derived from live torch, so the
data itself is checked against the reference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from plateau import PlateauConfig, simulate

GOLDEN = json.loads(Path(__file__).with_name("golden").joinpath("torch_traces.json").read_text())
CASES = {case["name"]: case for case in GOLDEN["cases"]}


def _decode(x):
    return float(x) if isinstance(x, str) else x


def _observed(case):
    config = PlateauConfig(**case["config"])
    states = simulate([_decode(m) for m in case["metrics"]], config, case["lrs"])
    return [
        {
            "lrs": list(s.lrs),
            "best": s.best if math.isfinite(s.best) else str(s.best),
            "num_bad_epochs": s.num_bad_epochs,
            "cooldown_counter": s.cooldown_counter,
        }
        for s in states
    ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_core_reproduces_the_recorded_trace_exactly(name):
    case = CASES[name]
    assert _observed(case) == case["expected"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_trace_is_still_what_torch_does(name):
    pytest.importorskip("torch")
    from golden.make_torch_traces import trace

    case = CASES[name]
    metrics = [_decode(m) for m in case["metrics"]]
    assert trace({**case, "metrics": metrics}) == case["expected"]


def test_docs_walk_through_reads_as_the_documentation_describes():
    """patience=0: baseline, then a cut at the end of every epoch worse than best."""
    lrs = [step["lrs"][0] for step in CASES["torch-docs-patience-0"]["expected"]]
    cut = [later < earlier for earlier, later in zip([0.1, *lrs], lrs)]
    # 1.0 baseline, 1.5 worse, 1.2 worse, 0.9 better, 0.9 equal (not better), 0.8 better
    assert cut == [False, True, True, False, True, False]


def test_patience_ten_cuts_on_the_eleventh_bad_epoch():
    case = CASES["default-patience-10-cuts-on-11th-bad-epoch"]
    lrs = [step["lrs"][0] for step in case["expected"]]
    # step 1 sets best; steps 2..11 are bad epochs 1..10; step 12 is the 11th.
    assert lrs.index(min(lrs)) == 11
