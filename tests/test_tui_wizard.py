"""The console driven with Pilot against the real simulator: the wizard end to end."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

import pytest
from textual.widgets import Input, RadioButton, RichLog, Static

from console.config import load_config
from console.envfile import parse_env
from console.journal import Journal, Who
from screens.app import RollbackConsole
from screens.checklist import ChecklistScreen
from screens.run_screen import RunScreen
from screens.widgets.run_view import RunView
from screens.wizard import RollbackWizard
from tests.phase4 import ALL_OFF, ALL_ON, RULES
from tests.screen_text import screen_text

OPERATOR = Who(user="alice", ssh_client=None, host="bastion-test", pid=1)


async def until(predicate: Callable[[], bool], pilot, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            screen = pilot.app.screen
            shown = " | ".join(str(w.render())[:200] for w in screen.query(Static))
            log = ""
            if screen.query(RichLog):
                log = " / ".join(str(line.text) for line in screen.query_one(RichLog).lines[-15:])
            raise AssertionError(f"timed out on {screen.__class__.__name__}: {shown[:1500]} LOG: {log}")
        await pilot.pause(0.1)


def env_flags(sim, env: str = "staging"):
    return parse_env(sim.host(env).env_file.read_bytes()).flags(RULES)


def app_for(sim) -> RollbackConsole:
    return RollbackConsole(load_config(sim.config_path), who=OPERATOR)


async def open_wizard(app: RollbackConsole, pilot, env: str) -> RollbackWizard:
    await until(lambda: all(live.snapshot is not None for live in app.live.values()), pilot)
    if env != next(iter(app.live)):
        await pilot.press("down")
    await pilot.press("r")
    await until(lambda: isinstance(app.screen, RollbackWizard), pilot)
    return app.screen  # type: ignore[return-value]


async def preview(app: RollbackConsole, pilot, action: str = "quick") -> None:
    """To the plan page; with nothing chosen (nothing recommended), ``action`` is chosen first."""
    if not any(button.value for button in app.screen.query("#action RadioButton")):
        app.screen.query_one(f"#action-{action}").value = True
    await pilot.press("ctrl+n")
    await until(lambda: app.screen.plan is not None, pilot)  # type: ignore[attr-defined]


async def fail_partial_b(app: RollbackConsole, pilot) -> None:
    """Partial rollback B on staging through the wizard, until its validation fails (the real
    service's advanced SQL breaks) and the step-failed modal asks what to do."""
    wizard = await open_wizard(app, pilot, "staging")
    wizard.query_one("#action-partial-content-type").value = True
    await preview(app, pilot)
    await pilot.press("ctrl+n", "ctrl+n")
    await pilot.pause()
    await pilot.press("y")
    # Pushed is not yet composed: a key pressed before its bindings exist is lost.
    failed = lambda: app.screen.__class__.__name__ == "StepFailedModal" and app.screen.is_mounted  # noqa: E731
    await until(failed, pilot, timeout=120)
    await pilot.pause()


def run_outcome(app: RollbackConsole) -> str | None:
    screen = app.screen
    return screen.query_one(RunView).outcome if isinstance(screen, RunScreen) else None


async def test_quick_rollback_on_staging_end_to_end_and_the_checklist_ticks_itself(make_simulation) -> None:
    sim = make_simulation(environments=("staging",))
    assert env_flags(sim) == ALL_ON
    app = app_for(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        wizard = await open_wizard(app, pilot, "staging")
        assert app.live["staging"].recommendation.action is None
        assert wizard.query_one("#action").pressed_button is None, "nothing is recommended: nothing pre-selected"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert "Choose a rollback first" in str(wizard.query_one("#assess-status", Static).render())
        assert wizard.page == "assess" and wizard.plan is None
        assert wizard.focused is wizard.query_one("#action"), "the refusal puts the cursor on the list"
        await pilot.press("enter")  # the first one, quick
        assert wizard.query_one("#action-quick").value
        heading = str(wizard.query_one("#action-title", Static).render())
        assert "none is recommended now; you chose Quick rollback (disable all)" in heading
        await preview(app, pilot)
        preview_text = str(wizard.query_one("#plan-preview", Static).render())
        assert "-ENABLE_ADVANCED_RECOMMENDATIONS=true" in preview_text
        assert "+ENABLE_ADVANCED_RECOMMENDATIONS=false" in preview_text
        assert env_flags(sim) == ALL_ON, "previewing changes nothing"
        await pilot.press("ctrl+n")  # authorize: staging is self-service
        await pilot.press("ctrl+n")  # confirmation modal with the exact commands
        await pilot.pause()
        shown = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert app.screen.__class__.__name__ == "ConfirmRollback" and "systemctl" not in shown
        assert "ctl restart" in shown and "+ENABLE_TIME_WEIGHTING=false" in shown
        await pilot.press("y")
        await until(lambda: run_outcome(app) is not None, pilot, timeout=120)
        assert run_outcome(app) == "succeeded"
        assert env_flags(sim) == ALL_OFF
        run = Journal(load_config(sim.config_path).journal_path).runs()[-1]
        assert run.outcome == "succeeded" and run.operator == "alice" and run.action == "quick"
        await pilot.press("c")
        await until(lambda: isinstance(app.screen, ChecklistScreen), pilot)
        ticked = {s.item.id for s in app.screen.items if s.ticked}  # type: ignore[attr-defined]
        assert {"health", "flags_in_logs", "no_errors", "response_time", "data"} <= ticked
        assert "dashboards" not in ticked and "rca" not in ticked
        # The operator ticks "dashboards" with a note; it is journaled with their name.
        table = app.screen.query_one("#checklist")
        table.move_cursor(row=[s.item.id for s in app.screen.items].index("dashboards"))  # type: ignore[attr-defined]
        await pilot.press("space")
        await pilot.pause()
        app.screen.query_one(Input).value = "grafana: p95 back to 0.3s"
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("o")  # write the incident report
        await pilot.pause()
        state = {s.item.id: s for s in app.screen.items}  # type: ignore[attr-defined]
        assert state["dashboards"].ticked and state["dashboards"].by == "alice"
        assert state["incident_report"].ticked


async def test_production_is_refused_without_an_approver_and_nothing_changes(make_simulation) -> None:
    sim = make_simulation(environments=("staging", "production"))
    app = app_for(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        wizard = await open_wizard(app, pilot, "production")
        await preview(app, pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        status = wizard.query_one("#auth-status", Static)
        await pilot.press("ctrl+n")  # no approver typed
        await pilot.pause()

        def said() -> str:
            text = str(status.render())
            assert "--" not in text and "pass " not in text, f"the console speaks CLI: {text}"
            return text

        # The refusal names the field to fill and the keys to press, not CLI flags.
        assert "“Approved by” field" in said() and "“Request approval”" in said() and "↑↓" in said()
        assert wizard.focused is wizard.query_one("#approver"), "the cursor is in the field to fill"
        # The keys it names reach the list from that field, and once another way is chosen what
        # was missing for “Approved by” is no longer said.
        await pilot.press("shift+tab", "down", "enter")
        await pilot.pause()
        assert wizard.query_one("#auth-request", RadioButton).value and said() == ""
        await pilot.press("up", "enter", "tab")
        await pilot.pause()
        assert wizard.query_one("#auth-approved", RadioButton).value
        assert wizard.focused is wizard.query_one("#approver")
        await pilot.press(*"Alice")  # self-approval, any case: typed, no letter taken as a key
        assert wizard.query_one("#approver", Input).value == "Alice" and isinstance(app.screen, RollbackWizard)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert "You (alice) cannot approve your own" in said() and "“Approved by”" in said()
        # An emergency override without a reason names its own field.
        wizard.query_one("#auth-emergency").value = True
        wizard.query_one("#emergency-reason", Input).value = "slow"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert "“Emergency reason” field" in said()
        assert isinstance(app.screen, RollbackWizard), "no confirmation, no run"
        assert env_flags(sim, "production") == ALL_ON
        assert Journal(load_config(sim.config_path).journal_path).runs() == []


async def test_a_recommendation_that_appears_on_the_open_assess_page_is_selected_as_it_says(make_simulation) -> None:
    """The heading said "the recommended one … is pre-selected" while nothing was: the
    recommendation had come in a probe round after the page opened."""
    sim = make_simulation(environments=("staging",))
    app = app_for(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        wizard = await open_wizard(app, pilot, "staging")
        assert wizard.query_one("#action").pressed_button is None
        sim.inject("staging", error_rate=1.0)
        await until(lambda: app.live["staging"].recommendation.action == "quick", pilot)
        await pilot.pause()
        heading = str(wizard.query_one("#action-title", Static).render())
        assert "the recommended one (Quick rollback (disable all)) is selected" in heading
        assert wizard.query_one("#action-quick", RadioButton).value, "selected, as the heading says"
        assert "Error rate" in wizard.query_one("#reason", Input).value
        # The operator's own choice is kept when the recommendation changes, and the heading says so.
        wizard.query_one("#action-code").value = True
        await pilot.pause()
        heading = str(wizard.query_one("#action-title", Static).render())
        assert "recommended: Quick rollback (disable all); you chose Full code rollback" in heading


async def test_a_recommended_rollback_already_in_effect_is_not_selected_and_escalation_is_named(
    make_simulation,
) -> None:
    sim = make_simulation(environments=("staging",))
    host = sim.host("staging")
    host.env_file.write_bytes(host.env_file.read_bytes().replace(b"=true", b"=false"))
    sim.run("staging", "restart_command")  # every flag off in the file and the process
    sim.inject("staging", error_rate=1.0)  # and the errors go on
    app = app_for(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: (app.live["staging"].recommendation or None) is not None, pilot)
        await until(lambda: app.live["staging"].recommendation.in_effect, pilot)
        await pilot.pause()
        panel = " ".join(str(w.render()) for w in app.screen.query(".recommendation"))
        assert "ALREADY IN EFFECT" in panel and "escalate (e)" in panel, panel
        wizard = await open_wizard(app, pilot, "staging")
        assert wizard.query_one("#action").pressed_button is None, "running it again would change nothing"
        heading = str(wizard.query_one("#action-title", Static).render())
        assert "the recommended one (Quick rollback (disable all)) is already in effect" in heading
        assert "escalate" in heading and wizard.query_one("#reason", Input).value == ""


async def test_a_rollback_undone_by_hand_is_not_shown_as_in_effect(make_simulation) -> None:
    """The panel said "ROLLED BACK by run …" from the journal while the probes showed every
    flag on again: someone had re-enabled them by hand."""
    from tests.engine_support import cli, set_flags_and_restart

    sim = make_simulation(environments=("staging",))
    done = await asyncio.to_thread(cli, sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    app = app_for(sim)

    def panel() -> str:
        return " ".join(str(w.render()) for w in app.screen.query(".standing"))

    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: "ROLLED BACK" in panel() and app.live["staging"].snapshot is not None, pilot)
        assert "no longer" not in panel()
        await asyncio.to_thread(set_flags_and_restart, sim, sim.host("staging"), ALL_ON)
        await until(lambda: "NO LONGER IN EFFECT" in panel(), pilot)
        assert "ROLLED BACK" not in panel()
        # Every flag on again is what the file had before the run: nothing for a restore to change.
        assert "the env file on staging-1 has the flags it had before the run again" in panel(), panel()
        assert "a restore would change no flag" in panel()


async def test_a_failed_step_and_its_undo(make_simulation) -> None:
    """Partial rollback B fails validation (the real service's advanced SQL breaks); undo puts it back."""
    sim = make_simulation(environments=("staging",))
    before = sim.host("staging").env_file.read_bytes()
    app = app_for(sim)
    async with app.run_test(size=(100, 30)) as pilot:
        await fail_partial_b(app, pilot)
        await pilot.pause()
        text = " ".join(str(s.render()) for s in app.screen.query(Static))
        assert "Validate" in text and "HTTP 200 with status: failed" in text  # the profile's failure title
        await pilot.press("u")
        await until(lambda: run_outcome(app) is not None, pilot, timeout=120)
        assert run_outcome(app) == "undone"
        assert sim.host("staging").env_file.read_bytes() == before, "the env file is back byte for byte"
        run = Journal(load_config(sim.config_path).journal_path).runs()[-1]
        assert run.outcome == "undone"


async def test_a_dead_environment_never_stalls_the_keyboard(make_simulation) -> None:
    sim = make_simulation(environments=("staging", "production"))
    sim.run("production", "restart_command")
    sim.inject("production", crash_on_start=True)
    sim.run("production", "restart_command")
    app = app_for(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: app.live["production"].snapshot is not None, pilot)
        panel = app.screen.query_one("#env-production")
        assert "service not running" in str(app.live["production"].snapshot.hosts[0].memory.error)
        start = time.monotonic()
        await pilot.press("h")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "HistoryScreen"
        assert time.monotonic() - start < 5
        assert panel is not None


@pytest.mark.parametrize("term", ["xterm-256color", "xterm"])
async def test_keyboard_only_over_ssh_terminals(make_simulation, monkeypatch, term: str) -> None:
    """The themes pick themselves: 256 colours get the dark theme, a plain xterm the ANSI one."""
    monkeypatch.setenv("TERM", term)
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("ROLLBACK_CONSOLE_THEME", raising=False)
    sim = make_simulation(environments=("staging",))
    app = app_for(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == ("rollback-ansi" if term == "xterm" else "rollback-dark")
        await until(lambda: app.live["staging"].snapshot is not None, pilot)
        for key, screen in (
            ("enter", "EnvironmentScreen"),
            ("escape", "DashboardScreen"),
            ("h", "HistoryScreen"),
            ("escape", "DashboardScreen"),
            ("e", "EscalationScreen"),
            ("escape", "DashboardScreen"),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen.__class__.__name__ == screen


async def test_watch_mode_follows_a_run_and_cannot_act(make_simulation) -> None:
    sim = make_simulation(environments=("staging",))
    config = load_config(sim.config_path)
    app = RollbackConsole(config, watch_only=True, who=OPERATOR)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        # A rollback from another session (the CLI) shows up live.
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "console",
            "--config",
            str(sim.config_path),
            "rollback",
            "quick",
            "--env",
            "staging",
            "--yes",
            "--reason",
            "watch test",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await until(lambda: app.screen.query_one(RunView).outcome is not None, pilot, timeout=120)
        await proc.wait()
        assert app.screen.query_one(RunView).outcome == "succeeded"
        for action in ("rollback", "escalation", "checklist"):
            assert app.check_action(action, ()) is False
        await pilot.press("r", "e", "c")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "WatchScreen"
        assert not app.workers._workers or all("probe" not in w.name for w in app.workers._workers)


async def test_page_down_reads_on_through_a_long_plan_wherever_the_focus_is(make_simulation) -> None:
    """At 80x24 the plan's edits can be below the fold (long paths wrap), and the focus is on
    the Authorize button: PgDn scrolls the plan (the key reaches the page around the button),
    PgUp back, without leaving the button. The real-terminal walk relies on it."""
    from textual.containers import VerticalScroll

    sim = make_simulation(environments=("staging",))
    app = app_for(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_wizard(app, pilot, "staging")
        await preview(app, pilot)
        await pilot.pause()
        page = app.screen.query_one("#plan", VerticalScroll)
        assert page.max_scroll_y > 0, "the plan is longer than the screen"
        focused = app.focused
        await pilot.press("pagedown")
        await pilot.pause()
        assert page.scroll_y > 0 and app.focused is focused
        await pilot.press("pageup")
        await pilot.pause()
        assert page.scroll_y == 0


async def test_a_run_undone_at_80x24_shows_every_validation_and_its_log_by_page_down(make_simulation) -> None:
    """At 80x24 the rows of a run and its undo, then five validations, filled the screen: the
    last validations were cut off and the run's log squeezed to nothing, with no way to see
    them. The run view scrolls as a whole: PgDn reaches all of it, the log with 8 lines."""
    sim = make_simulation(environments=("staging",))
    app = app_for(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await fail_partial_b(app, pilot)
        await pilot.press("u")
        await until(lambda: run_outcome(app) == "undone", pilot, timeout=120)
        await pilot.pause()
        focused = app.focused
        view = app.screen.query_one(RunView)
        log = app.screen.query_one("#run-output", RichLog)
        seen = [screen_text(app)]
        for _ in range(4):
            await pilot.press("pagedown")
            await pilot.pause()
            seen.append(screen_text(app))
        assert view.scroll_y > 0 and app.focused is focused
        for title in ("Health check", "Feature flag status", "Test recommendations", "Error rate", "Response time"):
            assert f"PASS {title}" in "".join(seen), title
        assert log.size.height >= 8, "the log keeps room of its own"
        assert log.lines and log.lines[-1].text.strip() in seen[-1], "the log's latest line is on screen"
        await pilot.press("pageup", "pageup", "pageup", "pageup")
        await pilot.pause()
        assert view.scroll_y == 0 and "— undone" in screen_text(app)


async def test_a_rollback_that_failed_is_not_called_rolled_back(make_simulation) -> None:
    """The API would not start again after the edit: the run failed at the restart, and the
    panel and `status` still said "ROLLED BACK" over it (with "failed at …" in small print),
    the start-up failure's ERROR line counted as "25% of recent requests failed", and the
    report said it took 1.0s "within the runbook target"; and the quick rollback was recommended
    again, pre-selected, though its flags were in the env file and running it changes nothing."""
    import json

    from tests.engine_support import cli, run_id_in

    sim = make_simulation(environments=("staging",))
    sim.inject("staging", crash_on_start=True)
    failed = await asyncio.to_thread(cli, sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    assert failed.returncode != 0, failed.stdout + failed.stderr
    run_id = run_id_in(failed.stdout)
    status = (await asyncio.to_thread(cli, sim.config_path, "status", "staging")).stdout
    assert f"ROLLBACK FAILED by run {run_id}" in status and "failed at Restart the API" in status, status
    assert "ROLLED BACK" not in status
    # The log's last ERROR line is the start-up failure, not a failed request: the error rate's
    # evidence says what it counts.
    data = json.loads((await asyncio.to_thread(cli, sim.config_path, "status", "staging", "--json")).stdout)
    findings = data["environments"][0]["recommendation"]["findings"]
    (rate,) = [f for f in findings if f["symptom"] == "Error rate > 5%"]
    assert rate["lit"] and "ERROR lines per best-times request" in rate["evidence"], rate
    assert "failed" not in rate["evidence"]
    # The quick rollback's flags are in the env file; the API is not running: recommending it
    # again (its edit changes nothing, so nothing is restarted) is said to change nothing.
    rec = data["environments"][0]["recommendation"]
    assert rec["action"] == "quick" and rec["in_files"] and not rec["in_effect"], rec
    assert "its flags are in every env file already, but the API is not running" in status, status
    # Failed in a second: not "within the runbook target", which is for a rollback done.
    report = (await asyncio.to_thread(cli, sim.config_path, "report", run_id)).stdout
    assert "(failed: the runbook target < 1 min was not met) |" in report and "within the" not in report
    # The restart's output is a paragraph of its own, not the end of the troubleshooting item.
    assert "API won't start after rollback\n\nOutput, staging-1:\n" in report, report
    app = app_for(sim)

    def panel() -> str:
        return " ".join(str(w.render()) for w in app.screen.query(".standing"))

    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: "ROLLBACK FAILED" in panel(), pilot)
        assert f"by run {run_id}" in panel() and "ROLLED BACK" not in panel(), panel()
        await until(lambda: "IN THE ENV FILE ALREADY" in screen_text(app), pilot)
        wizard = await open_wizard(app, pilot, "staging")
        assert wizard.query_one("#action").pressed_button is None, "not pre-selected: it would change nothing"
        heading = str(wizard.query_one("#action-title", Static).render())
        assert "(Quick rollback (disable all)) is in every env file already" in heading, heading


async def test_what_the_probes_see_says_which_round_and_when_the_latest_failed(make_simulation) -> None:
    """The wizard's findings carried no time, and stayed as they were when the probe worker
    died: an operator choosing a rollback could not tell live evidence from stale."""
    import os
    import signal

    from screens import format as fmt

    sim = make_simulation(environments=("staging",))
    app = app_for(sim)
    async with app.run_test(size=(100, 40)) as pilot:
        wizard = await open_wizard(app, pilot, "staging")
        live = app.live["staging"]

        def shown() -> str:
            return str(wizard.query_one("#symptoms", Static).render())

        await until(lambda: f"probe round at {fmt.at(live.snapshot.taken_at)} UTC" in shown(), pilot)
        stale = fmt.at(live.snapshot.taken_at)
        worker = app._worker
        assert worker is not None
        os.kill(worker.pid, signal.SIGKILL)
        await until(lambda: "the latest probe round failed" in shown(), pilot)
        assert "probe worker stopped" in shown() and f"these are from {stale} UTC" in shown(), shown()
        assert "probe round at" not in shown()
        # A new worker's round replaces the warning with that round's time.
        await until(lambda: live.probe_error is None and "probe round at" in shown(), pilot)
        assert f"probe round at {fmt.at(live.snapshot.taken_at)} UTC" in shown(), shown()


@pytest.mark.parametrize(
    ("action", "changed"),
    [
        ("partial-time-weighting", ["-ENABLE_TIME_WEIGHTING=true", "+ENABLE_TIME_WEIGHTING=false"]),
        (
            "quick",
            [
                f"{sign}{flag}={value}"
                for sign, value in (("-", "true"), ("+", "false"))
                for flag in (f.env for f in RULES.flags)
            ],
        ),
    ],
)
async def test_at_80x24_the_confirmation_opens_at_the_change_not_the_plans_summary(
    make_simulation, action: str, changed: list[str]
) -> None:
    """The plan's summary and the diff's headers filled the box and the edited lines were below
    its fold: the operator said yes to what they could not see. The box now opens with the
    changed lines on screen; the rest is a scroll up, and the hint says so."""
    sim = make_simulation(environments=("staging",))
    app = app_for(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_wizard(app, pilot, "staging")
        await preview(app, pilot, action)
        await pilot.press("ctrl+n", "ctrl+n")
        await until(lambda: app.screen.__class__.__name__ == "ConfirmRollback" and app.screen.is_mounted, pilot)
        box = app.screen.query_one(".modal .commands")
        await until(lambda: box.scroll_y > 0, pilot, timeout=10)
        shown = screen_text(app)
        assert all(line in shown for line in changed), shown
        assert "runbook target" not in shown
        assert "This is exactly what will run (more above: scroll up):" in shown
        box.scroll_home(animate=False)
        await pilot.pause()
        assert "runbook target: < " in screen_text(app), "the summary is still there, above"
        await pilot.press("escape")
        await pilot.pause()
        assert env_flags(sim) == ALL_ON, "nothing ran"
