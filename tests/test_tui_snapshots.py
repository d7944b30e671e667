"""Snapshots of every screen at 80×24 and 160×48, on fixed data and a fixed clock.

Review a changed snapshot in snapshot_report.html before accepting it with
`pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TabbedContent

from console.engine.plan import Remedy, StepFailed
from console.engine.runner import Failure
from console.plans.flags import AwaitEffect
from screens.app import RollbackConsole
from screens.modals import StepFailedModal
from tests import tui_data

# pytest-xdist: the whole file on one worker: its fixed data lives in one directory, whose paths the snapshots show
pytestmark = pytest.mark.xdist_group("tui-fixed")

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


def make_app(**kw: object) -> RollbackConsole:
    config = tui_data.make_config(interrupted=bool(kw.pop("interrupted", False)))
    app = RollbackConsole(config, probe=False, clock=lambda: tui_data.T0, who=tui_data.WHO, **kw)  # type: ignore[arg-type]
    app.animation_level = "none"  # a sliding tab underline is caught mid-way otherwise
    return app


def steady(run_before: Callable[[Pilot], Awaitable[None]]) -> Callable[[Pilot], Awaitable[None]]:
    """Run the interaction, then stop cursors blinking: a snapshot must not catch a blink."""

    async def run(pilot: Pilot) -> None:
        await run_before(pilot)
        for screen in pilot.app.screen_stack:
            for widget in screen.query(Input):
                widget.cursor_blink = False
        await pilot.pause()

    return run


async def fed(pilot: Pilot) -> None:
    tui_data.feed(pilot.app)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_dashboard(snap_compare, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=steady(fed))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("tab", ["tab-latency", "tab-log", "tab-process", "tab-matrix", "tab-trouble"])
def test_environment_view(snap_compare, size, tab) -> None:
    async def open_tab(pilot: Pilot) -> None:
        await fed(pilot)
        await pilot.press("down", "enter")  # the production panel
        await pilot.pause()
        pilot.app.screen.query_one(TabbedContent).active = tab
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.2)  # tables size their columns after the cells arrive

    assert snap_compare(make_app(), terminal_size=size, run_before=steady(open_tab))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("page", ["assess", "plan", "authorize", "confirm"])
def test_wizard(snap_compare, size, page) -> None:
    async def go(pilot: Pilot) -> None:
        await fed(pilot)
        await pilot.press("down", "r")  # production: the approval path
        await pilot.pause()
        for _ in range(["assess", "plan", "authorize", "confirm"].index(page)):
            await pilot.press("ctrl+n")
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
        if page == "confirm":
            await pilot.press("ctrl+n")
            await pilot.pause()

    app = make_app()
    if page == "confirm":

        async def go_confirm(pilot: Pilot) -> None:
            await go(pilot)
            # Approved by someone else, so the confirmation shows.
            wizard = pilot.app.screen_stack[-1]
            if wizard.__class__.__name__ != "ConfirmRollback":
                wizard.query_one("#approver").value = "bob"
                await pilot.press("ctrl+n")
                await pilot.pause()

        assert snap_compare(app, terminal_size=size, run_before=steady(go_confirm))
    else:
        assert snap_compare(app, terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", ["history", "report", "checklist", "escalation"])
def test_record_screens(snap_compare, size, screen) -> None:
    keys = {"history": ["h"], "report": ["h", "down", "enter"], "checklist": ["h", "down", "c"], "escalation": ["e"]}[
        screen
    ]

    async def go(pilot: Pilot) -> None:
        await fed(pilot)
        for key in keys:  # each screen reads the journal off the event loop: let it land
            await pilot.press(key)
            await tui_data.settled(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
def test_watch_mode(snap_compare, size) -> None:
    async def go(pilot: Pilot) -> None:
        await pilot.pause(0.6)  # the follower replays the journal

    assert snap_compare(make_app(watch_only=True), terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
def test_interrupted_run_offered(snap_compare, size) -> None:
    assert snap_compare(make_app(interrupted=True), terminal_size=size, run_before=steady(fed))


@pytest.mark.parametrize("size", SIZES)
def test_step_failed_modal(snap_compare, size) -> None:
    async def go(pilot: Pilot) -> None:
        await fed(pilot)
        failure = StepFailed(
            "the restart left the stale environment: new pid 4344 still has the old flags",
            issue="env-not-taking-effect",
            remedy=Remedy(
                "Force a fresh start that re-reads the env file",
                ("sudo systemctl restart x",),
                "env-not-taking-effect",
                "Issue 1: Environment changes not taking effect",  # as the runner names it from the profile
            ),
        )
        failure.troubleshooting = "Issue 1: Environment changes not taking effect"
        pilot.app.push_screen(StepFailedModal(Failure(AwaitEffect(), {"local": failure}), "alice"))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=steady(go))


# --- states added with issue 11: the palette, the key help, questions, watch, 80×24 ------------


@pytest.mark.parametrize("size", SIZES)
def test_command_palette(snap_compare, size) -> None:
    async def go(pilot: Pilot) -> None:
        await fed(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"roll")
        await pilot.pause(0.5)

    assert snap_compare(make_app(), terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
def test_key_help(snap_compare, size) -> None:
    async def go(pilot: Pilot) -> None:
        await fed(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
def test_quit_while_a_run_is_active_asks(snap_compare, size) -> None:
    async def go(pilot: Pilot) -> None:
        from screens.modals import Choice

        await fed(pilot)
        pilot.app.push_screen(
            Choice(
                "Quit while a rollback is active?",
                "run r-20261127-190000-ab12 (Quick rollback: disable all advanced features on production) is "
                "running. Quitting now cuts it off mid-way: the journal marks it interrupted, and the next start "
                "offers to resume or undo it.",
                yes="Quit anyway (y)",
            )
        )
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
def test_watch_mode_pending_request(snap_compare, size) -> None:
    """A request waiting for approval: its id, who asked and when, nothing passed."""
    app = make_app(watch_only=True)
    tui_data.add_pending_request(app.config)

    async def go(pilot: Pilot) -> None:
        await pilot.pause(0.6)

    assert snap_compare(app, terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
def test_wizard_nothing_recommended(snap_compare, size) -> None:
    """Staging says "no action": no rollback is pre-selected, and the page says so."""

    async def go(pilot: Pilot) -> None:
        await fed(pilot)
        await pilot.press("r")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
def test_history_long_reasons(snap_compare, size) -> None:
    """Every column stays and every run id is whole when reasons are long."""
    app = make_app()
    tui_data.add_long_reason_run(app.config)

    async def go(pilot: Pilot) -> None:
        await fed(pilot)
        await pilot.press("h")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
def test_environment_troubleshooting_applies(snap_compare, size) -> None:
    async def open_tab(pilot: Pilot) -> None:
        await fed(pilot)
        await pilot.press("enter")  # staging: troubleshooting issue 1 applies
        await pilot.pause()
        pilot.app.screen.query_one(TabbedContent).active = "tab-trouble"
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=size, run_before=steady(open_tab))


# --- approvals and restore (issue 11 items 2 and 4) ------------------------------------------------


@pytest.fixture
def journal_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a fixed request has lapsed is judged at the fixed clock, not today."""
    import time
    import types

    import console.engine.approvals as approvals
    import console.journal.runs as runs

    fixed = types.SimpleNamespace(time=lambda: tui_data.T0, monotonic=time.monotonic)
    monkeypatch.setattr(runs, "time", fixed)
    monkeypatch.setattr(approvals, "time", fixed)


def standing_app(who=tui_data.WHO, *, pending: bool = False, rolled_back: bool = False) -> RollbackConsole:
    config = tui_data.make_config(rolled_back=rolled_back)
    if pending:
        tui_data.add_pending_request(config)
    app = RollbackConsole(config, probe=False, clock=lambda: tui_data.T0, who=who)
    app.animation_level = "none"
    return app


async def with_standing(pilot: Pilot) -> None:
    """Fed, and the journal's side of each panel shown (the standing watcher has looked)."""
    await fed(pilot)
    app = pilot.app
    for _ in range(100):
        if app.standing:
            break
        await pilot.pause(0.1)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_pending_request(snap_compare, size, journal_clock) -> None:
    """A production request waiting: who asked, when it lapses, the approve command whole."""
    app = standing_app(pending=True)

    async def go(pilot: Pilot) -> None:
        await with_standing(pilot)
        await pilot.press("down")

    assert snap_compare(app, terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
def test_approvers_view(snap_compare, size, journal_clock) -> None:
    """Bob, a second person, reviews alice's request: the reason, the plan, approve or reject."""
    app = standing_app(tui_data.BOB, pending=True)

    async def go(pilot: Pilot) -> None:
        await with_standing(pilot)
        await pilot.press("down", "a")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=steady(go))


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_rolled_back(snap_compare, size, journal_clock) -> None:
    """Staging is rolled back: by which run, when, by whom, and R to restore."""
    app = standing_app(rolled_back=True)
    assert snap_compare(app, terminal_size=size, run_before=steady(with_standing))


@pytest.mark.parametrize("size", SIZES)
def test_restore_preview(snap_compare, size, journal_clock) -> None:
    """R on the rolled-back panel: the restore's exact edits, the same path as a rollback."""
    app = standing_app(rolled_back=True)

    async def go(pilot: Pilot) -> None:
        await with_standing(pilot)
        await pilot.press("R")
        for _ in range(100):
            if getattr(pilot.app.screen, "plan", None) is not None:
                break
            await pilot.pause(0.1)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=steady(go))
