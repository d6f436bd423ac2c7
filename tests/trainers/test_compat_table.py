"""docs/compatibility.md's table is what make_table.py builds from the tests' claims."""

from __future__ import annotations

import make_table
from _compat import CELLS


def test_the_doc_holds_the_generated_table():
    assert make_table.in_doc(make_table.DOC.read_text()) == make_table.render(), (
        "run: python tests/trainers/make_table.py --write"
    )


def test_the_readme_holds_the_compact_table():
    assert make_table.in_doc(make_table.README.read_text()) == make_table.render_compact(), (
        "run: python tests/trainers/make_table.py --write"
    )


def test_every_trainer_module_names_its_row_and_claims_something():
    for path in make_table.MODULES:
        if path.name.startswith("test_compat"):
            continue
        row = make_table.read(path)
        assert row is not None, f"{path.name} claims nothing"
        assert {"TRAINER", "TESTED_WITH"} <= set(row), path.name
        for cells in row["claims"].values():
            assert set(cells) <= set(CELLS), path.name
