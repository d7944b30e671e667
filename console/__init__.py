"""Rollback Console engine: everything that works without a screen.

Nothing in this package may import textual (tests/test_layout.py checks it).
"""

import sys

__version__ = "0.1.0"

# httpx loads its own command-line tool (click, rich, pygments: ~35 ms) at import whenever
# those happen to be installed; the console never uses it. None in sys.modules makes that
# import fail as it does where they are absent, and httpx falls back as designed.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
