"""Fixtures for tests/maps; the shared helpers live in mapkit.py (importable by name)."""

from mapkit import prog  # noqa: F401  (fixtures)
