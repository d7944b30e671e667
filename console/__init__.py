"""Rollback Console engine: everything that works without a screen.

Nothing in this package may import textual (tests/test_layout.py checks it).
"""

__version__ = "0.1.0"
