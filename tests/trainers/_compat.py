"""The claims docs/compatibility.md makes, each carried by the test that proves it.

A trainer test module sets ``TRAINER`` (its row's name), ``TESTED_WITH`` (the pip
requirement it ran with) and optionally ``NOTE``, and decorates each test with
``@claim(cell, ...)``: ``works`` (the trainer runs plateau's class where it runs
torch's), ``history`` (the same lr at every epoch as torch's class on the same
seeded run), ``resume`` (a checkpoint written by the trainer under either class
resumes under the other, exactly) and ``resume_from_plateau`` (one written under
plateau's class resumes under both; the trainer cannot write one under torch's).
make_table.py reads them from the source, importing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

CELLS = ("works", "history", "resume", "resume_from_plateau")
F = TypeVar("F", bound=Callable[..., object])


def claim(*cells: str) -> Callable[[F], F]:
    """Mark a test as the evidence for `cells` of its trainer's row; it runs unchanged."""
    unknown = set(cells) - set(CELLS)
    if unknown:
        raise ValueError(f"unknown compatibility cells {sorted(unknown)}; known: {CELLS}")

    def mark(test: F) -> F:
        test.compat = cells  # type: ignore[attr-defined]
        return test

    return mark
