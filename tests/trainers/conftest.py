"""Collection for tests/trainers."""

from __future__ import annotations

# Run only by test_accelerate.py in a subprocess; importing it needs torch and accelerate.
collect_ignore = ["_accelerate_worker.py"]
