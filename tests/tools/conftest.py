"""Fixtures for tests/tools; the shared helpers live in toolkit.py (importable by name)."""

from toolkit import tool  # noqa: F401  (fixtures)
