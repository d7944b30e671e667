"""The console as an operator meets it, driven with Pilot on fixed data (a config whose
commands are `true` and `echo`, under a temp dir): keys, quitting, the palette, history,
80×24, selection without colour, troubleshooting, the log tab."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.command import CommandPalette
from textual.widgets import Input, RichLog, Static, TabbedContent

from console.engine.plan import Remedy, StepFailed
from console.engine.runner import Failure
from console.plans.flags import AwaitEffect
from screens.app import RollbackConsole
from screens.checklist import ChecklistScreen
from screens.commands import console_commands
from screens.dashboard import DashboardScreen
from screens.history import HistoryScreen, ReportScreen
from screens.modals import Choice, KeysScreen, StepFailedModal, screen_keys
from screens.run_screen import RunScreen
from screens.wizard import RollbackWizard
from tests import tui_data
from tests.screen_text import screen_text


def make_app(root: Path, **kw: object) -> RollbackConsole:
    config = tui_data.make_config(root=root)
    app = RollbackConsole(config, probe=False, clock=lambda: tui_data.T0, who=tui_data.WHO, **kw)  # type: ignore[arg-type]
    app.animation_level = "none"
    return app


async def until(pilot, predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}; on {pilot.app.screen!r}"
        await pilot.pause(0.05)


async def fed(pilot) -> None:
    tui_data.feed(pilot.app)
    await pilot.pause()


def said(app: RollbackConsole) -> str:
    """The text of the current screen's Statics, as one line (a modal's question, say)."""
    return " ".join(" ".join(str(s.render()) for s in app.screen.query(Static)).split())


def footer(app: RollbackConsole) -> str:
    return screen_text(app).rstrip("\n").splitlines()[-1]


# --- keys ---------------------------------------------------------------------------------


async def test_q_then_c_at_once_exits_cleanly(tmp_path: Path) -> None:
    """Typed fast, the c after q used to open a checklist on a closing app (NoMatches, exit 1)."""
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        app.post_message(events.Key("q", "q"))
        app.post_message(events.Key("c", "c"))
        await pilot.pause(0.3)
    assert app.return_code == 0


async def test_letters_on_a_form_are_text_never_the_consoles_keys(tmp_path: Path) -> None:
    """One Tab too many on Authorize, then a name typed: no theme change, no quit, no screen."""
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        theme = app.theme
        await pilot.press("down", "r")  # production
        wizard = app.screen
        assert isinstance(wizard, RollbackWizard)
        for _ in range(2):
            await pilot.press("ctrl+n")
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert wizard.page == "authorize" and wizard.focused is wizard.query_one("#approver")
        await pilot.press("tab")  # past the field: a radio list has the focus
        assert not isinstance(wizard.focused, Input)
        await pilot.press(*"theqwcx")
        await pilot.pause()
        assert app.screen is wizard and app.theme == theme and not app.quitting
        assert all(not app.check_action(a, ()) for a in ("request_quit", "history", "cycle_theme", "checklist"))
        # In the field itself the same letters are its text.
        wizard.query_one("#approver", Input).focus()
        await pilot.press(*"theqwcx")
        assert wizard.query_one("#approver", Input).value == "theqwcx" and app.screen is wizard
        # ctrl+q still quits from a form (nothing has run: no question).
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


async def test_quitting_while_a_request_waits_asks_first_and_leaving_is_free(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("down", "r")
        wizard = app.screen
        for _ in range(2):
            await pilot.press("ctrl+n")
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert "Run… (ctrl+n)" in screen_text(app)
        wizard.query_one("#auth-request").value = True
        await pilot.pause()
        shown = screen_text(app)
        assert "Request approval… (ctrl+n)" in shown and "Run…" not in shown, "the button says what it does"
        await pilot.press("ctrl+n")
        await pilot.pause()
        confirm = app.screen
        assert "Request approval (y)" in screen_text(app) and "Run it" not in screen_text(app)
        assert "once a second person approves it" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "pending", "pending")
        run = app.screen
        assert confirm is not run
        shown = screen_text(app)
        assert "waiting for approval" in shown and run.run_id in shown and "PASS" not in shown
        # q asks; Esc answers "stay".
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, Choice) and "waiting for approval" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is run and not app.quitting
        # Leaving the run screen does not trap the requester: nothing runs unattended (the
        # console asks before an approved request runs), so Esc leaves at once; the request
        # goes on waiting, on the dashboard with its approve command whole; w brings it back.
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen) and run.state == "pending"
        await until(pilot, lambda: "APPROVAL PENDING" in screen_text(app), "the request on the dashboard")
        assert f"rollback-console approve {run.run_id}" in screen_text(app)
        await pilot.press("w")
        await pilot.pause()
        assert app.screen is run
        # A second rollback while this one waits is refused, with where to look.
        app.action_rollback("staging")
        await pilot.pause()
        assert app.screen is run
        # ctrl+q asks the same question; y quits.
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, Choice)
        await pilot.press("y")
        await pilot.pause()
    assert app.return_code == 0


async def test_every_key_is_in_the_footer_or_the_key_help(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        visits = {
            "dashboard": (),
            "environment": ("enter",),
            "history": ("escape", "h"),
            "report": ("enter",),
            "checklist": ("escape", "c"),
            "escalation": ("escape", "escape", "e"),
            "wizard": ("escape", "r"),
        }
        for name, keys in visits.items():
            await pilot.press(*keys)
            await pilot.pause()
            screen = app.screen
            line = footer(app)
            assert line.rstrip().endswith("^p palette"), f"{name}: the footer is cut: {line!r}"
            listed = dict(screen_keys(app, screen))
            for key, active in screen.active_bindings.items():
                if active.binding.system:
                    continue
                assert active.binding.description, f"{name}: {key} does something no one is told"
                shown = app.get_key_display(active.binding)
                assert any(shown in keys.split() for keys in listed) or shown in line, f"{name}: {key} hidden"
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, KeysScreen), name
            help_text = " ".join(str(s.render()) for s in app.screen.query(Static))
            if name != "wizard":
                assert "Theme" in help_text and "Watch the active run" in help_text, name
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen


async def escalation_status(root: Path, edit: Callable[[str], str]) -> str:
    """The escalation screen's status lines, for tui_data's config as ``edit`` changes it."""
    from console.config import load_config

    tui_data.make_config(root=root)
    config = root / "console.toml"
    config.write_text(edit(config.read_text()))
    app = RollbackConsole(load_config(config), probe=False, clock=lambda: tui_data.T0, who=tui_data.WHO)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await until(pilot, lambda: bool(app.screen.query("#escalation-status")), "the escalation screen")
        return " ".join(str(app.screen.query_one("#escalation-status", Static).render()).split())


async def test_escalation_says_which_contacts_are_still_the_runbooks_tbd(tmp_path: Path) -> None:
    # No [[contacts]] in the config: the runbook's own table, all TBD.
    status = await escalation_status(tmp_path / "none", lambda text: text[: text.index("[[contacts]]")])
    assert (
        "not filled in yet (TBD in the runbook): Lead Developer, DevOps, DBA; set them in the config's [[contacts]]"
        in status
    )
    # One still TBD: only that one is named.
    status = await escalation_status(tmp_path / "one", lambda text: text.replace('"+1 555 0199"', '"TBD"'))
    assert "not filled in yet (TBD in the runbook): DBA;" in status
    # All filled in: nothing said.
    assert "not filled in" not in await escalation_status(tmp_path / "all", lambda text: text)


# --- the palette and the history -------------------------------------------------------------


async def test_the_palette_holds_every_action(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        names = {c.name for c in console_commands(app)}
        for expected in (
            "Rollback staging",
            "Rollback production",
            "Open staging",
            "Restore staging",
            "Restore production",
            "Approval requests",
            "History",
            "Checklist",
            "Incident report",
            "Escalate",
            "Watch the active run",
            "Drills",
            "Theme dark",
            "Theme light",
            "Theme ansi",
            "Keys",
            "Quit",
        ):
            assert expected in names
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"hist")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), "history from the palette")
        await pilot.press("ctrl+p")
        await pilot.press(*"rollback prod")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RollbackWizard), "the wizard from the palette")
        assert app.screen.env.name == "production"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.press(*"theme light")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == "rollback-light"


async def test_watch_mode_palette_offers_nothing_that_acts(tmp_path: Path) -> None:
    app = make_app(tmp_path, watch_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        names = {c.name for c in console_commands(app)}
        assert not any(
            n.startswith(("Rollback", "Open", "Escalate", "Checklist", "Restore", "Approval")) for n in names
        )
        assert "History" in names and "Incident report" in names


async def test_history_enter_opens_the_runs_incident_report(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("h")
        await pilot.pause()
        shown = screen_text(app)
        for run in app.journal.runs():
            assert run.run_id in shown, "every run id is whole at 80 columns"
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ReportScreen)
        assert app.screen.run_id == "r-20261127-183320-a1b2"
        assert "Incident report" in screen_text(app) and "r-20261127-183320-a1b2" in screen_text(app)


async def test_history_keeps_every_column_when_reasons_are_long(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    reason = "p95 latency over six seconds since 03:10, users see timeouts on every dashboard page " * 2
    app.journal.append("run_started", run="r-20261127-190000-ffff", env="staging", data={"reason": reason})
    app.journal.append(
        "run_finished", run="r-20261127-190000-ffff", env="staging", data={"outcome": "succeeded", "duration_s": 42}
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("h")
        await pilot.pause()
        shown = screen_text(app)
        for header in ("Date · Run", "Env", "Reason", "Took", "Outcome"):
            assert header in shown
        assert "r-20261127-190000-ffff" in shown and "42s" in shown and "succeeded" in shown


async def test_history_holds_a_page_of_runs_and_loads_older_ones_on_request(tmp_path: Path) -> None:
    from textual.widgets import DataTable

    from screens.history import PAGE
    from tests.journal_support import T0, Queued, add_run, truth

    app = make_app(tmp_path)
    for i in range(3 * PAGE + 10):  # years of runs, older than the demo's
        add_run(Queued(app.journal), f"r-old-{i:04d}", t=T0 - 10_000_000 + 1000 * i)  # type: ignore[arg-type]
    app.journal.flush()
    want = [r.run_id for r in reversed(truth(app.journal.path))]  # newest first, as the table
    async with app.run_test(size=(120, 40)) as pilot:
        await fed(pilot)
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.runs, "history")
        screen = app.screen
        table = screen.query_one("#history", DataTable)
        assert [r.run_id for r in screen.runs] == want[:PAGE], "the newest page, never a row per run"
        assert table.row_count == PAGE + 1 and screen.older == len(want) - PAGE
        assert f"{len(want)} runs (the latest {PAGE} shown)" in screen_text(app)
        assert f"{len(want) - PAGE} older runs" in str(table.get_row_at(PAGE)[0])
        assert "Older runs" in footer(app)

        await pilot.press("o")  # asked for
        await until(pilot, lambda: len(screen.runs) == 2 * PAGE, "a second page")
        assert [r.run_id for r in screen.runs] == want[: 2 * PAGE] and screen.older == len(want) - 2 * PAGE
        assert table.row_count == 2 * PAGE + 1

        table.scroll_end(animate=False)  # as the wheel does, the cursor where it was
        await until(pilot, lambda: len(screen.runs) == 3 * PAGE, "a third page")
        assert [r.run_id for r in screen.runs] == want[: 3 * PAGE] and table.cursor_row == 0

        await pilot.press("ctrl+end")  # the cursor on the last row: the next page loads
        await until(pilot, lambda: len(screen.runs) == len(want), "the rest")
        assert screen.older == 0
        assert [r.run_id for r in screen.runs] == want and table.row_count == len(want)
        assert "Older runs" not in footer(app)


# --- 80×24 ------------------------------------------------------------------------------------


async def test_the_failed_step_modal_shows_all_five_choices_at_80x24(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        failure = StepFailed(
            "the restart left the stale environment: new pid 4344 still has the old flags",
            issue="env-not-taking-effect",
            remedy=Remedy("Force a fresh start", ("sudo systemctl restart x",), "env-not-taking-effect"),
        )
        app.push_screen(StepFailedModal(Failure(AwaitEffect(), {"local": failure}), "alice"))
        await pilot.pause()
        shown = screen_text(app)
        for choice in ("Retry (r)", "Apply fix (f)", "Skip (s)", "Undo (u)", "Abort (a)"):
            assert choice in shown


async def test_the_latency_chart_says_since_when_its_seconds_count(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("down", "enter")
        await pilot.pause(0.2)
        first = app.live["production"].series.points[0][0]
        assert f"seconds since {datetime.fromtimestamp(first, UTC):%H:%M:%S} UTC" in screen_text(app)


async def test_a_panels_p50_and_p95_are_of_the_rounds_its_sparkline_draws_and_say_their_span(tmp_path: Path) -> None:
    """Ten minutes of rounds are kept, 24 drawn at 80 columns: the p95 of all of them stayed
    at a slow spell's 6 s beside bars all low long after a rollback had cured it."""
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        live = app.live["staging"]
        taken = live.snapshot.taken_at  # type: ignore[union-attr]
        live.series.points.clear()
        for i, latency in enumerate([6.0] * 80 + [0.41] * 40):  # the last round is the snapshot's
            live.series.add(taken - (119 - i) * 5, latency)
        app.env_updated.publish("staging")
        await pilot.pause(0.2)
        panel = screen_text(app).split("production")[0]
        assert "p50 0.41s p95 0.41s" in panel, panel
        assert "▁ 2 min" in panel, panel  # 24 rounds, 5 s apart: 115 s
        assert live.series.p95 == 6.0  # the ten minutes are still kept (the focused view charts them)


async def test_an_outage_shows_as_gaps_not_as_the_latencies_from_before_it(tmp_path: Path) -> None:
    """The API down, its rounds had no latency and were not kept: the panel went on showing
    the p50/p95 and the bars of the rounds before the outage, and the focused view's chart
    ended there, as if nothing had happened since."""
    import dataclasses

    from console.probes.snapshot import HostSnapshot

    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        live = app.live["staging"]
        before = live.snapshot
        assert before is not None and before.response_time_s is not None
        for i in range(1, 31):  # two and a half minutes of rounds without an answer
            down = tuple(
                HostSnapshot(
                    host=h.host,
                    where=h.where,
                    taken_at=before.taken_at + 5 * i,
                    elapsed_s=0.0,
                    unreachable="connection refused",
                )
                for h in before.hosts
            )
            snapshot = dataclasses.replace(before, hosts=down, taken_at=before.taken_at + 5 * i)
            live.update(snapshot, app.matrix("staging"))
        app.env_updated.publish("staging")
        await pilot.pause(0.2)
        panel = screen_text(app).split("production")[0]
        assert "— p50 — p95 —" in panel, panel
        assert "·" * 20 in panel, "the rounds without an answer are gaps in the sparkline"
        assert live.series.p50 is not None, "the ten minutes still hold the rounds before the outage"
        await pilot.press("enter")  # the focused view charts the rounds to the latest one
        await pilot.pause(0.2)
        shown = screen_text(app)
        # Its p50/p95 are of the ten minutes kept, and say so: mostly an outage, not the API's pace.
        answered = len(live.series.values)
        assert f"({answered} of {answered + 30} rounds answered in 4 min)" in " ".join(shown.split()), shown
        axis = shown.split("seconds since")[0].splitlines()[-2].split()
        assert float(axis[-1]) >= 150, f"the time axis reaches the latest round: {axis}"


async def test_the_matrix_keeps_timeline_and_seen_at_80x24(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("down", "enter")
        await pilot.pause()
        app.screen.query_one(TabbedContent).active = "tab-matrix"
        await pilot.pause(0.2)
        shown = screen_text(app)
        assert "Timeline" in shown and "Seen" in shown and "6.21s" in shown
        # No word of the runbook's matrix is cut in two ("recommendati" / "ons" was).
        words = {w for row in app.matrix("staging").rows for w in row.symptom.split()}
        assert "recommendations" in words
        for word in words:
            assert word in shown, f"{word!r} is not whole on the screen"


@contextlib.asynccontextmanager
async def run_view_at_80x24(tmp_path: Path) -> AsyncIterator[tuple[RollbackConsole, Any, Any]]:
    """A console at 80x24 showing a bare screen that holds a RunView: (app, pilot, view)."""
    from screens.widgets.run_view import RunView

    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        app.push_screen(_ViewScreen())
        await pilot.pause()
        yield app, pilot, app.screen.query_one(RunView)


async def test_run_log_lines_wrap_and_wide_characters_keep_borders(tmp_path: Path) -> None:
    async with run_view_at_80x24(tmp_path) as (app, pilot, view):
        line = "[INFO] analyticbot.api: 🎛️ Feature flags - Advanced: False, " + "x" * 100 + " THE-END"
        view.apply("note", None, None, line, {})
        await pilot.pause()
        shown = screen_text(app)
        assert "THE-END" in shown, "the end of a long line is on screen, wrapped"
        assert "\ufe0f" not in shown and "🎛" in shown, "no variation selector reaches the screen"


async def test_a_long_run_log_line_continues_under_its_message_not_at_the_left_edge(tmp_path: Path) -> None:
    """A wrapped path read as a line of its own ("/tmp/…/.env: Advanced: True" under
    "12:00:01 ✓ [production-1]"): the rest now starts under the message."""
    async with run_view_at_80x24(tmp_path) as (app, pilot, view):
        path = "/srv/analyticbot/production/production-1/.env.production"
        view.apply("step_started", "edit-env", "production-1", "Edit", {"title": "Edit the env file"})
        view.apply("step_finished", "edit-env", "production-1", f"{path}: Advanced: True, Time-weighting: True", {})
        view.apply("output", "restart", "production-1", "started (pid 5974), " + "word " * 20 + "END", {})
        await pilot.pause()
        log = [line.strip("│") for line in screen_text(app).splitlines() if line.startswith("│")]
        (stamped,) = [i for i, line in enumerate(log) if "✓ [production-1]" in line]
        assert log[stamped + 1].startswith(" " * 11 + "/srv/analyticbot"), log
        (output,) = [i for i, line in enumerate(log) if "│ [production-1] started" in line]
        assert all(line.startswith("    ") and line.strip() for line in log[output + 1 : output + 2]), log
        assert any(line.rstrip().endswith("END") and line.startswith("    ") for line in log[output + 1 :]), log


async def test_a_long_step_title_wraps_and_leaves_status_and_time_on_screen_at_80x24(tmp_path: Path) -> None:
    """The database rollback's titles are 75 characters: at 80 columns they pushed the
    status and the time off the screen."""
    async with run_view_at_80x24(tmp_path) as (app, pilot, view):
        view.start("Full database rollback", 600, run_id="r-20261201-050041-fc70")
        steps = [
            ("check", "Check the columns and list what depends on them", True),
            ("backup_and_drop", "Keep a copy of the columns, then run the rollback script (one transaction)", False),
        ]
        for step, title, ok in steps:
            view.apply("step_started", step, "production-1", title, {"title": title})
            finished = "step_finished" if ok else "step_failed"
            view.apply(finished, step, "production-1", title, {"title": title, "elapsed_s": 12.34})
        await pilot.pause()
        shown = screen_text(app)
        assert "Took" in shown and "✓ done" in shown and "✗ failed" in shown and shown.count("12.34s") == 2
        table = shown.split(" Step ")[1].split("╭")[0].splitlines()[1:]
        step_column = " ".join(re.split(r"\s{2,}", line.strip())[0] for line in table if line.strip())
        for _, title, _ in steps:
            assert title in step_column, "the whole title, wrapped"
        # What was decided joins the failed row, and the time it took stays on screen.
        view.apply("decision", "backup_and_drop", None, "retry", {"decision": "retry"})
        await pilot.pause()
        shown = screen_text(app)
        assert re.search(r"✗ \d\d:\d\d:\d\d · retry", shown) and shown.count("12.34s") == 2, shown


async def test_step_titles_wrap_again_when_the_terminal_narrows_mid_run(tmp_path: Path) -> None:
    """Started wide, then a pane split off beside the console: titles laid out for 160
    columns pushed the status and the time off an 80-column screen."""
    from screens.widgets.run_view import RunView

    title = "Keep a copy of the columns, then run the rollback script (one transaction)"
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        await fed(pilot)
        app.push_screen(_ViewScreen())
        await pilot.pause()
        view = app.screen.query_one(RunView)
        view.start("Full database rollback", 600, run_id="r-20261201-050041-fc70")
        view.apply("step_started", "check", "production-1", "Check the columns", {"title": "Check the columns"})
        view.apply("step_finished", "check", "production-1", "ok", {"title": "Check the columns", "elapsed_s": 1.5})
        view.apply("step_started", "backup_and_drop", "production-1", title, {"title": title})
        await pilot.pause()
        assert title in screen_text(app), "one line at 160 columns"
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        view.apply("step_failed", "backup_and_drop", "production-1", "boom", {"title": title, "elapsed_s": 12.34})
        await pilot.pause()
        shown = screen_text(app)
        assert "✓ done" in shown and "✗ failed" in shown and "1.50s" in shown and "12.34s" in shown, shown
        table = shown.split(" Step ")[1].split("╭")[0].splitlines()[1:]
        step_column = " ".join(re.split(r"\s{2,}", line.strip())[0] for line in table if line.strip())
        assert title in step_column, "the whole title, wrapped for 80 columns"
        await pilot.resize_terminal(160, 30)
        await pilot.pause(0.2)
        assert title in screen_text(app), "one line again once there is room"


def _ViewScreen():  # a bare screen holding a RunView
    from textual.screen import Screen

    from screens.widgets.run_view import RunView

    class ViewScreen(Screen):
        def compose(self):
            yield RunView()

    return ViewScreen()


async def test_every_screen_keeps_its_footer_whole_at_80x24(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        for keys in ((), ("h",), ("escape", "e"), ("escape", "c"), ("escape", "enter"), ("escape", "down", "r")):
            await pilot.press(*keys)
            await pilot.pause()
            assert footer(app).rstrip().endswith("^p palette"), footer(app)
            assert "Quit" in footer(app) or isinstance(app.screen, RollbackWizard)


# --- selection without colour -------------------------------------------------------------------


async def test_selection_shows_without_colour_and_follows_the_recommendation(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        lines = screen_text(app).splitlines()
        assert "▶ staging" in lines[1] and "▶" not in " ".join(lines[2:])
        await pilot.press("down")
        assert "▶ production" in screen_text(app) and "▶ staging" not in screen_text(app)
        # Production: quick is recommended and pre-selected, marked (●); the rest ( ).
        await pilot.press("r")
        await pilot.pause()
        shown = screen_text(app)
        assert "(●) Quick rollback (disable all)" in shown and "( ) Partial rollback" in shown
        assert "[ ] Incorrect recommendations" in shown
        await pilot.press("escape", "up", "r")  # staging: "no action" — nothing pre-selected
        await pilot.pause()
        wizard = app.screen
        assert isinstance(wizard, RollbackWizard) and app.live["staging"].recommendation.action is None
        assert wizard.query_one("#action").pressed_button is None
        assert "none is recommended now" in screen_text(app) and "(●)" not in screen_text(app)


# --- troubleshooting and the log tab --------------------------------------------------------------


async def test_troubleshooting_lists_the_four_issues_with_verdict_evidence_and_fix(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await fed(pilot)
        await pilot.press("enter")  # staging: the env file says off, the process on
        await pilot.pause()
        app.screen.query_one(TabbedContent).active = "tab-trouble"
        await pilot.pause()
        text = str(app.screen.query_one("#trouble", Static).render())
        for n, title in enumerate(
            (
                "Environment changes not taking effect",
                "API won't start after rollback",
                "Database rollback fails",
                "Partial rollback - only one flag changed",
            ),
            1,
        ):
            assert f"Issue {n}: {title}" in text
        first = text.split("Issue 2:")[0]
        assert "applies now" in first and "pid 4242" in first and "$ grep ENABLE_" in first
        assert text.count("does not apply now") >= 2 and text.count("evidence") == 4 and text.count("fix") >= 4
        assert "—  does not" not in text, "a verdict in plain colour is not padded like a badge"


async def test_the_log_tab_scrolls_from_the_keyboard_and_follows_the_tail(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("enter")
        await pilot.pause()
        env = app.screen
        env.query_one(TabbedContent).active = "tab-log"
        await pilot.pause()
        scroll = env.query_one("#log-scroll")
        live = app.live["staging"]
        tail = tuple(f"[INFO] analyticbot.api: line {i}" for i in range(200))

        def feed_log(lines: tuple[str, ...]) -> None:
            import dataclasses

            s = live.snapshot
            host = dataclasses.replace(s.hosts[0], logs=dataclasses.replace(s.hosts[0].logs, tail=lines))
            live.update(dataclasses.replace(s, hosts=(host,)), app.matrix(live.env.name))
            app.env_updated.publish("staging")

        feed_log(tail)
        await pilot.pause(0.2)
        assert scroll.max_scroll_y > 0 and scroll.scroll_y == scroll.max_scroll_y, "opens at the tail"
        await pilot.press("pageup", "up")  # from the tabs: the log scrolls
        await pilot.pause(0.2)
        held = scroll.scroll_y
        assert held < scroll.max_scroll_y
        feed_log((*tail, "[INFO] analyticbot.api: line 200"))
        await pilot.pause(0.2)
        assert scroll.scroll_y == held, "reading back: new lines do not pull the view away"
        await pilot.press("end")
        await pilot.pause(0.2)
        feed_log((*tail, "[INFO] analyticbot.api: line 200", "[INFO] analyticbot.api: line 201"))
        await pilot.pause(0.2)
        assert scroll.scroll_y == scroll.max_scroll_y, "at the end again: it follows the tail"
        assert "line 201" in screen_text(app)


async def test_the_checklist_ticks_with_enter_as_the_footer_says(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("h", "down", "c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ChecklistScreen)
        screen.query_one("#checklist").move_cursor(row=[s.item.id for s in screen.items].index("dashboards"))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen.query_one(Input), Input), "Enter asks for the note, as Space does"


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_watch_mode_shows_the_latest_run_as_finished_with_its_id(tmp_path: Path, size) -> None:
    app = make_app(tmp_path, watch_only=True)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: "finished" in screen_text(app), "the replay")
        shown = screen_text(app)
        assert "r-20261127-184512-c3d4" in shown and "no rollback is running now" in shown
        assert "PASS" not in shown, "the other run's validations are not shown under this one"
        log = app.screen.query_one(RichLog)
        assert log is not None


async def test_quitting_or_leaving_while_a_rollback_runs_asks_first(tmp_path: Path) -> None:
    """On the fixed config a run waits up to 45 s for flags that never take effect: running."""
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("down", "r")
        wizard = app.screen
        for _ in range(2):
            await pilot.press("ctrl+n")
            await app.workers.wait_for_complete()
            await pilot.pause()
        wizard.query_one("#approver", Input).value = "bob"
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state == "running", "running")
        run = app.screen
        await until(pilot, lambda: run.run_id is not None and "running…" in screen_text(app), "a step running")
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, Choice)
        question = said(app)
        assert "is running" in question and "interrupted" in question and run.run_id in question
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is run and run.state == "running" and not app.quitting
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, Choice) and "The rollback goes on" in said(app)
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen) and run.state == "running", "leaving does not stop it"
        await pilot.press("w")
        await pilot.pause()
        assert app.screen is run
        await pilot.press("ctrl+q", "y")
        await pilot.pause()
    assert app.return_code == 0


async def test_quitting_a_drill_ends_it_with_its_scorecard(tmp_path: Path) -> None:
    from console.runbook.drills import scenarios
    from screens.modals import TextModal

    app = make_app(tmp_path, drill=scenarios()["latency"])
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("enter")  # the briefing
        await pilot.pause()
        assert "x ends it" in app.sub_title
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, TextModal) and "Drill scorecard" in screen_text(app)
        assert any(r["type"] == "drill_scored" for r in app.journal.records())
        await pilot.press("enter")
        await pilot.pause()
    assert app.return_code == 0


def test_every_engine_refusal_reads_in_the_wizards_words() -> None:
    """Whatever the engine refuses with, the wizard shows it without CLI flags."""
    from console.runbook.authz import AuthorizationError, authorize, pending_message
    from screens.wizard import console_words

    said = [pending_message("alice", "r-20261127-190000-ab12")]
    for kw in (
        {"approved_by": "alice"},
        {"approved_by": " "},
        {"emergency": "P2"},
        {"emergency": "P0", "reason": "slow"},
    ):
        with pytest.raises(AuthorizationError) as refused:
            authorize("production", "alice", **kw)  # type: ignore[arg-type]
        said.append(str(refused.value))
    for text in said:
        words = console_words(text)
        assert "--" not in words and "pass " not in words, words
    assert "“Approved by”" in console_words(said[0]) and "“Emergency override”" in console_words(said[0])


async def test_the_database_tab_says_which_table_and_what_its_lines_are(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("down", "enter")  # production: the one with a database report
        await pilot.pause()
        app.screen.query_one(TabbedContent).active = "tab-db"
        await pilot.pause()
        lines = str(app.screen.query_one("#database", Static).render()).splitlines()
        assert lines[0] == "the table (629 rows) — the columns and indexes a database rollback removes"
        assert lines[1:5] == [
            "  has_video: present",
            "  has_media: present",
            "  index idx_posts_content_type: present",
            "  index idx_posts_date_content: present",
        ]
        assert "beyond migration 004: index idx_posts_video_engagement" in lines[-1]


async def test_an_item_the_console_checks_says_who_ticked_it_by_hand(tmp_path: Path) -> None:
    """ "Alert channels notified" is checked by the console; with no webhook a person ticks it,
    and the evidence line then names that person, not the console."""
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("h", "down", "c")
        await until(pilot, lambda: isinstance(app.screen, ChecklistScreen) and bool(app.screen.items), "the items")
        screen = app.screen
        row = [s.item.check for s in screen.items].index("notified")
        screen.query_one("#checklist").move_cursor(row=row)
        await pilot.pause()
        evidence = screen.query_one("#checklist-evidence", Static)
        assert "checked by the console, or ticked by a person (Space)" in str(evidence.render())
        await pilot.press("space")
        await until(pilot, lambda: isinstance(app.screen.focused, Input), "the note")
        await pilot.press(*"posted in #incidents", "enter")
        await until(pilot, lambda: app.screen is screen and screen.items[row].ticked, "the tick")
        screen.query_one("#checklist").move_cursor(row=row)
        await pilot.pause()
        said = str(evidence.render())
        assert f"ticked by {tui_data.WHO.user}" in said and "posted in #incidents" in said
        assert "checked by the console" not in said


async def test_the_plan_page_opens_at_the_plans_top_with_the_button_focused(tmp_path: Path) -> None:
    """At 80x24 the plan is longer than the page: it is read from its top, while the
    Authorize button below already takes the keys (CI once caught it scrolled to the bottom)."""
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot)
        await pilot.press("down", "r", "ctrl+n")
        await pilot.app.workers.wait_for_complete()
        for _ in range(5):
            await pilot.pause()
        page = app.screen.query_one("#plan")
        assert page.max_scroll_y > 0, "the plan is longer than the page"
        assert page.scroll_y == 0 and app.focused is not None and app.focused.id == "to-authorize"
        assert "Quick rollback: disable all advanced features  [production]" in screen_text(app)
