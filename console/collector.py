"""Fewer garbage collections in a console process (the CLI's and the dashboard's own).

CPython collects its youngest generation every 700 net allocations, and each collection
walks every young container; a command that speaks SSH to fifty hosts spent a fifth of its
CPU there (perf, `bench/fleet.py`), almost all of it on objects that live as long as the
process (modules, classes, the config, the profile). While a process of ours loads its
modules, ``hold`` keeps the collector off: the collections it made then (18 in a quick
rollback's start, about 90 in the dashboard's) only walked what the imports had just built,
all of it kept — a few milliseconds of each start (bench/README.md, stop 27). Once the
modules are loaded, ``settle`` moves everything so far out of the collector's sight, turns it
back on and collects the youngest generation every 10,000 allocations. Reference counting
frees everything else as before; cycles are still collected.

Only for a process of our own (``rollback-console``, ``python -m console``): frozen objects
are never collected, so a test that calls ``main()`` in its own process must not freeze.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # net allocations between collections of the youngest generation (Python's: 700)

_ours = False  # hold() was called: this process is the console's own (console/__main__.py)


def hold() -> None:
    """No collections until ``settle`` (or ``settle_held``): for a process of our own, while it
    loads its modules."""
    global _ours
    _ours = True
    gc.disable()


def hold_again() -> None:
    """``hold`` again, in a process that held before (the dashboard while Textual loads);
    elsewhere (a test's process) nothing."""
    if _ours:
        gc.disable()


def settle() -> None:
    """What is loaded so far lives as long as the process: out of the collector's sight; the
    collector on, its youngest generation collected every ``YOUNG_THRESHOLD`` allocations."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    gc.enable()


def settle_held() -> None:
    """``settle`` if the collector is held; otherwise (a test's process) nothing."""
    if _ours and not gc.isenabled():
        settle()
