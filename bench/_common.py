"""Helpers shared by the benches: which interpreter runs a checkout, medians, goal lines.

A bench measures "before" (an older checkout, e.g. ``git worktree add /tmp/before f8a0d0e``
with its own ``.venv``) beside this checkout in the same run: each side runs as a fresh
process with the checkout's interpreter and the checkout first on ``sys.path``.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # this checkout


def python_of(checkout: Path) -> str:
    """The checkout's own venv interpreter if it has one, else ours."""
    own = checkout / ".venv" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


def env_for(checkout: Path, **extra: str) -> dict[str, str]:
    """An environment that imports ``console``/``screens`` from ``checkout``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(checkout)
    env.setdefault("TERM", "xterm-256color")
    env.pop("ROLLBACK_CONSOLE_THEME", None)
    env.update(extra)
    return env


def compile_checkout(checkout: Path) -> None:
    """Byte-compile the checkout, as an installed package is: otherwise we time the compiler."""
    dirs = [str(checkout / p) for p in ("console", "screens", "themes") if (checkout / p).exists()]
    subprocess.run(
        [python_of(checkout), "-m", "compileall", "-q", *dirs],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env_for(checkout),
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)] if ordered else math.nan


def goal(name: str, value: float, target: str, met: bool, fmt: str = "{:.2f}") -> str:
    """The closing line every bench prints per goal."""
    return f"goal {name}: {fmt.format(value)} (target {target}) {'met' if met else 'MISSED'}"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
