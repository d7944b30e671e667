"""Approvals and restore in the console, with Pilot: a requester and an approver, each in their
own console (two apps, two ``Who``s, one shared journal), against the real simulator; the
withdraw, the lapse and the requester's own view on fixed data.

Nothing runs without someone at the keyboard: approved while the requester is on the run
screen, it goes ahead; approved while they are elsewhere, their console asks first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Static

from console.config import load_config
from console.journal import Journal, Who
from screens.app import RollbackConsole
from screens.approvals import RequestsScreen
from screens.dashboard import DashboardScreen
from screens.history import HistoryScreen, ReportScreen
from screens.modals import Choice, ConfirmRollback, TextPrompt
from screens.run_screen import RunScreen
from screens.widgets.run_view import RunView
from screens.wizard import RollbackWizard
from tests import tui_data
from tests.engine_support import cli, process_flags, run_id_in
from tests.phase4 import ALL_OFF, ALL_ON
from tests.screen_text import screen_text

ALICE = Who(user="alice", ssh_client="10.0.0.7", host="bastion-test", pid=1)
BOB = Who(user="bob", ssh_client="10.0.0.9", host="bastion-test", pid=2)


async def until(pilot, predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{screen_text(pilot.app)}"
        await pilot.pause(0.1)


def console_of(config_path: Path, who: Who) -> RollbackConsole:
    app = RollbackConsole(load_config(config_path), who=who)
    app.animation_level = "none"
    return app


async def request_approval(app: RollbackConsole, pilot, env: str = "production") -> RunScreen:
    """The wizard on ``env``: quick rollback, "Request approval", confirm; the run screen waiting."""
    await until(pilot, lambda: all(live.snapshot is not None for live in app.live.values()), "a first probe round")
    app.action_rollback(env)
    await until(pilot, lambda: isinstance(app.screen, RollbackWizard) and app.screen.is_mounted, "the wizard")
    await pilot.pause()
    wizard = app.screen
    if wizard.query_one("#action").pressed_button is None:  # type: ignore[union-attr]
        wizard.query_one("#action-quick").value = True  # type: ignore[union-attr]
    wizard.query_one("#reason").value = "p95 over 5s since 03:10"  # type: ignore[union-attr]
    await pilot.press("ctrl+n")
    await until(pilot, lambda: wizard.plan is not None, "the plan")  # type: ignore[union-attr]
    await pilot.press("ctrl+n")
    await pilot.pause()
    wizard.query_one("#auth-request").value = True  # type: ignore[union-attr]
    await pilot.pause()
    await pilot.press("ctrl+n")
    await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), "the confirmation")
    assert "Request approval (y)" in screen_text(app)
    await pilot.press("y")
    await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "pending", "pending")
    return app.screen  # type: ignore[return-value]


def outcome(screen: RunScreen) -> str | None:
    return screen.query_one(RunView).outcome


async def test_an_approver_in_their_own_console_approves_and_the_requester_is_asked_first(make_simulation) -> None:
    sim = make_simulation(environments=("staging", "production"))
    host = sim.host("production")
    alice, bob = console_of(sim.config_path, ALICE), console_of(sim.config_path, BOB)
    # Two consoles in one test: each is driven inside its own app context (Textual finds "the
    # app" through a context variable), as each would run in its own process.
    async with alice.run_test(size=(80, 24)) as pa, bob.run_test(size=(80, 24)) as pb:
        with alice._context():
            run = await request_approval(alice, pa)
            run_id = run.run_id
            assert run_id is not None
            shown = screen_text(alice)
            assert f"rollback-console approve {run_id}" in shown, "the approve command whole at 80 columns"
            assert "lapses in" in shown and "d Withdraw" in shown
            # The requester leaves: nothing traps them; the request stays on the dashboard.
            await pa.press("escape")
            await until(pa, lambda: isinstance(alice.screen, DashboardScreen), "the dashboard")
            await until(pa, lambda: f"rollback-console approve {run_id}" in screen_text(alice), "the pending request")
            assert "APPROVAL PENDING" in screen_text(alice)

        with bob._context():
            # The approver, in their own console, is told and sees it on the production panel.
            await until(pb, lambda: "APPROVAL PENDING" in screen_text(bob), "the request in bob's console", 30)
            assert any("asks for approval" in str(n.message) for n in bob._notifications)
            await pb.press("down")  # the production panel
            await pb.press("a")
            await until(pb, lambda: isinstance(bob.screen, RequestsScreen), "the approval requests")
            detail = str(bob.screen.query_one("#request-text", Static).render())
            assert run_id in detail and "p95 over 5s since 03:10" in detail, "the reason"
            assert "+ENABLE_ADVANCED_RECOMMENDATIONS=false" in detail, "the plan as alice confirmed it"
            await pb.press("a")
            await until(pb, lambda: isinstance(bob.screen, Choice), "the approve question")
            await pb.press("y")
            journal = Journal(load_config(sim.config_path).journal_path)
            await until(pb, lambda: journal.run(run_id).outcome == "approved", "the approval")
        assert process_flags(host) == ALL_ON, "approved, nothing runs by itself"

        with alice._context():
            # Alice is on the dashboard, not the run screen: her console asks before it runs.
            await until(pa, lambda: isinstance(alice.screen, Choice), "the requester's console asks")
            # Current before it is laid out: its text comes with the next refresh.
            await until(pa, lambda: "was approved by bob" in screen_text(alice), "the question drawn")
            assert "Start it now?" in screen_text(alice)
            assert process_flags(host) == ALL_ON
            await pa.press("y")
            await until(pa, lambda: alice.screen is run and outcome(run) is not None, "the run", 120)
            assert outcome(run) == "succeeded"
            assert process_flags(host) == ALL_OFF
            summary = journal.run(run_id)
            assert summary.outcome == "succeeded" and summary.operator == "alice"
            assert summary.authorization["mode"] == "approved" and summary.authorization["approver"] == "bob"
            await pa.press("escape")
            await until(pa, lambda: "APPROVAL PENDING" not in screen_text(alice), "the note gone")

        with bob._context():
            # Bob never left his requests screen: the started request leaves it by itself, not
            # "approved by bob · lapses in …" under a run that already finished.
            assert isinstance(bob.screen, RequestsScreen)
            await until(pb, lambda: "No production request is waiting" in screen_text(bob), "bob's list", 30)
            assert run_id not in screen_text(bob) and "approved by bob" not in screen_text(bob)


async def test_a_requester_watching_the_run_screen_goes_ahead_once_approved(make_simulation) -> None:
    sim = make_simulation(environments=("staging", "production"))
    alice = console_of(sim.config_path, ALICE)
    async with alice.run_test(size=(80, 24)) as pa:
        run = await request_approval(alice, pa)
        assert run.run_id is not None
        from console.engine.session import Engine
        from console.plans import PLANS

        bob = Engine(load_config(sim.config_path), who=BOB, plans=PLANS)
        try:
            bob.approve(run.run_id)
        finally:
            await bob.close()
        await until(pa, lambda: outcome(run) is not None, "the run", 120)
        assert outcome(run) == "succeeded" and alice.screen is run, "no question: she was watching it"
        assert process_flags(sim.host("production")) == ALL_OFF


async def test_approved_while_away_later_then_started_from_the_requests_screen(make_simulation) -> None:
    sim = make_simulation(environments=("staging", "production"))
    alice = console_of(sim.config_path, ALICE)
    async with alice.run_test(size=(80, 24)) as pa:
        run = await request_approval(alice, pa)
        run_id = run.run_id
        assert run_id is not None
        await pa.press("escape")
        await until(pa, lambda: isinstance(alice.screen, DashboardScreen), "the dashboard")
        from console.engine.session import Engine
        from console.plans import PLANS

        bob = Engine(load_config(sim.config_path), who=BOB, plans=PLANS)
        try:
            bob.approve(run_id)
        finally:
            await bob.close()
        await until(pa, lambda: isinstance(alice.screen, Choice), "the question")
        await pa.press("escape")  # later
        await until(pa, lambda: not run.running, "the run screen stops waiting")
        assert process_flags(sim.host("production")) == ALL_ON
        await until(pa, lambda: "waits for alice to start it" in screen_text(alice), "the approved request shown")
        assert "(a: start it)" in screen_text(alice)
        await pa.press("down", "a")  # the production panel
        await until(pa, lambda: isinstance(alice.screen, RequestsScreen), "the requests")
        assert "s Start it" in screen_text(alice) and "a Approve" not in screen_text(alice)
        await pa.press("s")
        await until(pa, lambda: isinstance(alice.screen, ConfirmRollback), "the confirmation, at the keyboard", 60)
        await pa.press("y")
        await until(pa, lambda: isinstance(alice.screen, RunScreen) and outcome(alice.screen) is not None, "run", 120)
        assert outcome(alice.screen) == "succeeded"  # type: ignore[arg-type]
        assert alice.screen.run_id == run_id  # type: ignore[union-attr]
        assert process_flags(sim.host("production")) == ALL_OFF


async def test_restore_from_the_dashboard_and_from_a_runs_report(make_simulation) -> None:
    sim = make_simulation(environments=("staging",))
    host = sim.host("staging")
    original = host.env_file.read_bytes()
    rolled = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    run_id = run_id_in(rolled.stdout)
    app = console_of(sim.config_path, ALICE)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: f"ROLLED BACK  by run {run_id}" in screen_text(app), "the rolled-back note")
        assert "(R: restore)" in screen_text(app)
        # From the run's report too: history → Enter → R opens the same restore.
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), "history")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ReportScreen), "the report")
        # The report reads the journal in a worker: the note comes when that is done.
        await until(pilot, lambda: "R restores what it changed" in screen_text(app), "the restore note")
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, RollbackWizard), "the restore wizard")
        wizard = app.screen
        assert wizard.restore and wizard.restores == run_id  # type: ignore[union-attr]
        await until(pilot, lambda: wizard.plan is not None, "the restore plan")  # type: ignore[union-attr]
        assert f"Restore what run {run_id}" in str(wizard.query_one("#plan-preview", Static).render())
        await pilot.press("escape")  # nothing has run: leaving changes nothing
        await pilot.pause()
        assert host.env_file.read_bytes() != original
        while not isinstance(app.screen, DashboardScreen):
            await pilot.press("escape")
            await pilot.pause()
        # From the dashboard: R, then the same preview → authorize → confirm.
        await pilot.press("R")  # staging, the first panel, has the focus
        await until(pilot, lambda: isinstance(app.screen, RollbackWizard), "the restore wizard")
        wizard = app.screen
        await until(pilot, lambda: wizard.plan is not None, "the restore plan")  # type: ignore[union-attr]
        await pilot.press("ctrl+n")  # authorize: staging is self-service
        await pilot.pause()
        await pilot.press("ctrl+n")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and outcome(app.screen) is not None, "", 120)
        assert outcome(app.screen) == "succeeded"  # type: ignore[arg-type]
        assert host.env_file.read_bytes() == original, "byte for byte"
        await pilot.press("escape")
        await until(pilot, lambda: "ROLLED BACK" not in screen_text(app), "the note gone after the restore")
        # Put back: the run's report offers no restore any more (the restore run says so).
        report = ReportScreen(run_id)
        await app.push_screen(report)
        await until(pilot, lambda: report.restorable is not None, "the report's look at later restores")
        assert report.restorable is False and "R restores" not in screen_text(app)


# --- on fixed data ---------------------------------------------------------------------------------


def fixed_app(root: Path, who: Who = tui_data.WHO, extra: str = "") -> RollbackConsole:
    config = tui_data.make_config(root=root)
    if extra:
        path = Path(config.path)
        path.write_text(path.read_text() + extra)
        config = load_config(path)
    app = RollbackConsole(config, probe=False, who=who)
    app.animation_level = "none"
    return app


async def fixed_request(app: RollbackConsole, pilot) -> RunScreen:
    tui_data.feed(app)
    await pilot.pause()
    return await request_approval(app, pilot)


async def test_the_requester_withdraws_from_the_run_screen(tmp_path: Path) -> None:
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        run = await fixed_request(app, pilot)
        footer = screen_text(app).rstrip("\n").splitlines()[-1]
        assert "d Withdraw" in footer and "Checklist" not in footer, "no post-rollback checklist for a request"
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, Choice), "the withdraw question")
        assert "Withdraw the request?" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: not run.running, "the wait ends")
        assert "withdrawn by alice" in screen_text(app) and "nothing was changed" in screen_text(app)
        assert app.journal.run(run.run_id or "").outcome == "withdrawn"  # type: ignore[arg-type]
        assert "Checklist" not in screen_text(app).rstrip("\n").splitlines()[-1], "nothing ran: no checklist"
        # The run's log is history: the request's instructions say when they were given.
        from textual.widgets import RichLog

        log = " ".join(line.text for line in run.query_one("#run-output", RichLog).lines)
        asked, answered = log.index("· approval requested by alice."), log.index("· withdrawn by alice")
        assert asked < log.index("d withdraws it") < answered
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        assert "APPROVAL PENDING" not in screen_text(app)
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        assert app.screen.runs[0].outcome_text() == "withdrawn by alice"
        shown = screen_text(app)  # the outcome column wraps at 80 columns: "withdrawn" over "by alice"
        assert "withdrawn" in shown and "by alice" in shown and "awaiting approval" not in shown


async def test_a_request_lapses_with_a_countdown_and_is_journaled_once(tmp_path: Path) -> None:
    app = fixed_app(tmp_path, extra="\n[approvals]\nexpire_after_s = 3\n")
    async with app.run_test(size=(80, 24)) as pilot:
        run = await fixed_request(app, pilot)
        assert "lapses in 00:0" in screen_text(app)
        await until(pilot, lambda: not run.running, "the lapse")
        assert "expired" in screen_text(app) and "nothing was changed" in screen_text(app)
        summary = app.journal.run(run.run_id or "")
        assert summary.outcome == "expired"
        assert [r["type"] for r in summary.records].count("run_expired") == 1


async def test_the_requesters_own_view_offers_no_approval_and_others_withdraw_only_with_a_reason(
    tmp_path: Path,
) -> None:
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        run = await fixed_request(app, pilot)
        run_id = run.run_id or ""
        app.action_requests("production")
        await until(pilot, lambda: isinstance(app.screen, RequestsScreen), "requests")
        await pilot.pause()
        shown = screen_text(app)
        assert "you cannot approve your own request" in shown
        assert "a Approve" not in shown and "r Reject" not in shown and "d Withdraw" in shown
        assert app.screen.check_action("approve", ()) is False
    # Bob, in his own console on the same journal: approve and reject, withdraw with a reason.
    bob = RollbackConsole(load_config(app.config.path), probe=False, who=tui_data.BOB)
    async with bob.run_test(size=(80, 24)) as pilot:
        tui_data.feed(bob)
        await until(pilot, lambda: "APPROVAL PENDING" in screen_text(bob), "the request on bob's dashboard")
        await pilot.press("down", "a")
        await until(pilot, lambda: isinstance(bob.screen, RequestsScreen) and bob.screen.requests, "requests")
        assert "a Approve" in screen_text(bob) and "r Reject" in screen_text(bob)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(bob.screen, TextPrompt), "the reason")
        await pilot.press("enter")  # no reason: refused, nothing recorded
        await pilot.pause()
        assert bob.journal.run(run_id).outcome == "pending"
        await pilot.press("d")
        await until(pilot, lambda: isinstance(bob.screen, TextPrompt), "the reason")
        await pilot.press(*"alice is off shift", "enter")
        await until(pilot, lambda: bob.journal.run(run_id).outcome == "withdrawn", "withdrawn")
        assert bob.journal.run(run_id).outcome_text() == "withdrawn by bob: alice is off shift"
