"""The claims docs/compatibility.md makes, each backed by the test that carries it.

A trainer test module sets ``TRAINER`` (the name in the table), ``TESTED_WITH`` (the
pip requirement it was run with) and optionally ``NOTE``, and marks each test with
``@claim(cell, ...)``: ``works`` (the trainer runs our class where it runs torch's),
``history`` (the same lr at every epoch as torch's class on the same seeded run) and
``resume`` (a checkpoint written under either class resumes under the other, exactly).
make_table.py reads them from the source, without importing any trainer.
"""

from __future__ import annotations

import pytest

CELLS = ("works", "history", "resume")


def claim(*cells: str) -> pytest.MarkDecorator:
    """Mark a test as the evidence for `cells` of its trainer's row."""
    unknown = set(cells) - set(CELLS)
    if unknown:
        raise ValueError(f"unknown compatibility cells {sorted(unknown)}; known: {CELLS}")
    return pytest.mark.compat(*cells)
