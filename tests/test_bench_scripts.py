"""Every bench script still loads against today's code: a bench that cannot start measures
nothing, and an API change elsewhere (issue 13 moved the flags into the profile) broke two
of them silently. Each is run as a user runs it, with `--help` (nothing is measured)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name != "fleet_sides.py")


def test_the_benches_are_all_here() -> None:
    assert {"console_startup.py", "fleet.py", "journal.py", "key_latency.py", "rollback_quick.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bench_starts(script: str) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=60, cwd=BENCH.parent
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout
