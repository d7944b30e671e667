"""Fewer garbage collections in a console process (the CLI's and the dashboard's own).

CPython collects its youngest generation every 700 net allocations, and each collection
walks every young container; a command that speaks SSH to fifty hosts spent a fifth of its
CPU there (perf, `bench/fleet.py`), almost all of it on objects that live as long as the
process (modules, classes, the config, the profile). ``settle`` moves what is loaded so far
out of the collector's sight and collects the youngest generation every 10,000 allocations.
Reference counting frees everything else as before; cycles are still collected.

Only for a process of our own (``rollback-console``, ``python -m console``): frozen objects
are never collected, so a test that calls ``main()`` in its own process must not freeze.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # net allocations between collections of the youngest generation (Python's: 700)


def settle() -> None:
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
