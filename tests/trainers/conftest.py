from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "compat(*cells): evidence for docs/compatibility.md (see _compat.py)"
    )
