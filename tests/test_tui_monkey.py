"""A monkey at the keyboard: thousands of random keys (fixed seed) on every screen of the
console must raise nothing.

The config is a throwaway: its restart commands are `true`, its pids `echo`, its API a
closed port, and its env files, journal, reports and locks live in a temp dir. Whatever
the keys start — a rollback, an approval request, an emergency override, a notification,
a report — changes nothing outside that dir (no webhook is configured).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import TabbedContent

from console.engine.plan import Remedy, StepFailed
from console.engine.runner import Failure
from console.journal import Journal
from console.plans.flags import AwaitEffect
from screens.app import RollbackConsole
from screens.modals import StepFailedModal
from tests import tui_data

SEED = 20261127
KEYS_PER_START = 200
KEYS = [
    *"abcdefghijklmnopqrstuvwxyz",
    *"0123456789",
    "space",
    "enter",
    "enter",
    "escape",
    "escape",
    "tab",
    "shift+tab",
    "up",
    "down",
    "left",
    "right",
    "pageup",
    "pagedown",
    "home",
    "end",
    "backspace",
    "delete",
    "ctrl+n",
    "ctrl+n",
    "ctrl+b",
    "ctrl+p",
    "ctrl+q",
    "ctrl+c",
    "f1",
    "question_mark",
    "full_stop",
    "minus",
    "slash",
    "r",
    "y",
]


async def _go(pilot: Pilot, *keys: str) -> None:
    await pilot.press(*keys)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def _failed_step(pilot: Pilot) -> None:
    failure = StepFailed(
        "the restart left the stale environment",
        issue="env-not-taking-effect",
        remedy=Remedy("Force a fresh start", ("true",), "env-not-taking-effect"),
    )
    pilot.app.push_screen(StepFailedModal(Failure(AwaitEffect(), {"local": failure}), "alice"))
    await pilot.pause()


async def _run(pilot: Pilot, how: str) -> None:
    """A production rollback started from the wizard: approved by bob (it runs), or a request
    for approval (it waits). The keys then land on a run that is active."""
    await _go(pilot, "down", "r", "ctrl+n", "ctrl+n")
    wizard = pilot.app.screen
    if how == "request":
        wizard.query_one("#auth-request").value = True
    else:
        wizard.query_one("#approver").value = "bob"
    await pilot.pause()
    await pilot.press("ctrl+n")
    await pilot.pause()
    await pilot.press("y")  # not _go: the run's worker goes on for minutes
    for _ in range(100):
        if pilot.app.screen.__class__.__name__ == "RunScreen":
            break
        await pilot.pause(0.05)


async def _tab(pilot: Pilot, tab: str) -> None:
    await _go(pilot, "down", "enter")
    pilot.app.screen.query_one(TabbedContent).active = tab
    await pilot.pause()


# Where each round of random keys starts: every screen of the console.
STARTS: dict[str, Callable[[Pilot], Awaitable[None]]] = {
    "dashboard": lambda p: _go(p),
    "environment-log": lambda p: _tab(p, "tab-log"),
    "environment-matrix": lambda p: _tab(p, "tab-matrix"),
    "environment-trouble": lambda p: _tab(p, "tab-trouble"),
    "wizard-staging": lambda p: _go(p, "r"),
    "wizard-production-authorize": lambda p: _go(p, "down", "r", "ctrl+n", "ctrl+n"),
    "history": lambda p: _go(p, "h"),
    "report": lambda p: _go(p, "h", "enter"),
    "checklist": lambda p: _go(p, "c"),
    "escalation": lambda p: _go(p, "e"),
    "keys": lambda p: _go(p, "f1"),
    "palette": lambda p: _go(p, "ctrl+p"),
    "failed-step": _failed_step,
    "run-running": lambda p: _run(p, "approved"),
    "run-pending": lambda p: _run(p, "request"),
    "watch-mode": lambda p: p.pause(0.3),  # its journal follower never completes: no waiting for workers
}


@pytest.mark.slow
@pytest.mark.parametrize("start", list(STARTS))
async def test_random_keys_on_every_screen_raise_nothing(tmp_path: Path, start: str) -> None:
    rng = random.Random(f"{SEED}-{start}")
    pressed, sessions = 0, 0
    root = tmp_path / "fixed"
    while pressed < KEYS_PER_START:
        sessions += 1
        config = tui_data.make_config(root=root)
        app = RollbackConsole(
            config,
            watch_only=start == "watch-mode",
            probe=False,
            who=tui_data.WHO,
        )
        app.animation_level = "none"
        size = rng.choice([(80, 24), (160, 48)])
        async with app.run_test(size=size) as pilot:
            tui_data.feed(app)
            await pilot.pause()
            await STARTS[start](pilot)
            while pressed < KEYS_PER_START and not app.quitting:
                await pilot.press(rng.choice(KEYS))
                pressed += 1
                if pressed % 50 == 0:
                    tui_data.feed(app)  # a probe round arrives meanwhile
        # run_test re-raises whatever the app raised; an exit code says the same.
        assert app.return_code in (None, 0), f"{start}: exit {app.return_code} after {pressed} keys"
        assert sessions < KEYS_PER_START, "the app quits at once every time: the keys reach nothing"
    assert Journal(root / "journal.jsonl").verify() == [], "whatever the keys did, the journal is intact"
