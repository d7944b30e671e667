"""The bad-input suite: every kind of hostile byte from outside, tried through the real CLI
(and the real console, with Pilot) against the real simulator.

Each kind asserts the exit code, a sentence naming what and where, no traceback, not the
crash guard's line (CRASH_MARKER: a bad input needs its own answer), nothing raw for the
terminal, no hang (a deadline per command) and, where something could change, that
nothing did. The HTTP-answer kinds live in tests/test_bad_input.py.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest

import tests.hostile  # noqa: F401  # registers the kinds
from console.simulator.world import Simulation
from tests.hostile.support import KINDS, Answer, Kind, assert_sane, counts, run

pytestmark = pytest.mark.slow

MIN_KINDS = 50  # non-HTTP kinds; with test_bad_input.py's HTTP answers the suite passes 60


class Ctx:
    """What a kind gets: a scratch directory, the shared read-only simulation, fresh ones."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.request = request
        self.tmp = tmp_path
        self.state = tmp_path / "state"  # XDG_STATE_HOME: a crash log here would be a failure

    @functools.cached_property
    def sim(self) -> Simulation:
        """The session's simulation: read-only (status and check only append to its logs)."""
        return self.request.getfixturevalue("simulation")

    def fresh(self, **kwargs: Any) -> Simulation:
        """A simulation of its own, to change at will (staging only unless asked)."""
        return self.request.getfixturevalue("make_simulation")(**kwargs)

    def run(self, config: Path | str | None, *args: str, **kwargs: Any) -> Answer:
        return run(config, *args, state=self.state, **kwargs)

    def config(self, text: str, name: str = "console.toml") -> Path:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path

    def fifo(self, name: str = "fifo") -> Path:
        path = self.tmp / name
        os.mkfifo(path)
        return path


@pytest.fixture
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Ctx:
    return Ctx(request, tmp_path)


@pytest.mark.parametrize("case", KINDS, ids=[k.id for k in KINDS])
def test_bad_input(case: Kind, ctx: Ctx) -> None:
    case.run(ctx)
    crashes = ctx.state / "rollback-console" / "crashes"
    assert not crashes.exists() or not any(crashes.iterdir()), f"a crash log was written: {list(crashes.iterdir())}"


def test_the_suite_covers_enough_kinds_in_every_family() -> None:
    per_family = counts()
    assert sum(per_family.values()) >= MIN_KINDS, per_family
    for family in ("config", "secret file", "env file", "log", "journal", "arguments", "console"):
        assert per_family.get(family, 0) >= 3, f"family {family!r} has {per_family.get(family, 0)} kinds"


# Sanity of the harness itself: it must be able to fail.
def test_the_harness_sees_a_raw_escape_a_traceback_and_the_crash_line() -> None:
    from console.cli.guard import CRASH_MARKER

    for bad in ("\x1b[31mred", "Traceback (most recent call last):", f"x: {CRASH_MARKER} (y)", "a\u202eb"):
        with pytest.raises(AssertionError):
            assert_sane(Answer(("x",), 0, bad, ""), code=0)
    with pytest.raises(AssertionError):
        assert_sane(Answer(("x",), 1, "fine", ""), code=0)
    assert_sane(Answer(("x",), 0, "fine \\x1b shown escaped", ""), code=0)
