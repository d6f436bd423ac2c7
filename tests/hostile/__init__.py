"""Hostile values and the contract every entry point keeps when given one (issue 9)."""
