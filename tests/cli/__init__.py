"""Helpers shared by the `plateau simulate` tests (tests/test_cli*.py)."""
