"""Watch mode tells the truth (issue 11, item 1), against the real simulator and real CLI
runs in other processes: one run at a time, named by its id, each result with its time;
a pending request shows nothing passed; a failed step stays failed."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable

from textual.widgets import DataTable, Static

from console.config import load_config
from console.journal import Journal, Who
from screens.app import RollbackConsole
from screens.watch import WatchScreen
from screens.widgets.run_view import RunView
from tests.screen_text import screen_text

WATCHER = Who(user="carol", ssh_client=None, host="bastion-test", pid=2)
TIME = re.compile(r"\d\d:\d\d:\d\d")


async def until(pilot, predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{screen_text(pilot.app)}")
        await pilot.pause(0.1)


async def cli(sim, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "console",
        "--config",
        str(sim.config_path),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def watcher(sim) -> RollbackConsole:
    return RollbackConsole(load_config(sim.config_path), watch_only=True, who=WATCHER)


def view(app: RollbackConsole) -> RunView:
    return app.screen.query_one(RunView)


def validations(app: RollbackConsole) -> str:
    return str(view(app).query_one("#run-validations", Static).render())


async def test_a_pending_production_request_shows_nothing_passed(make_simulation) -> None:
    sim = make_simulation(environments=("staging", "production"))
    journal = Journal(load_config(sim.config_path).journal_path)
    app = watcher(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        # An earlier run on staging passes its five validations (flags off there)…
        done = await cli(sim, "rollback", "quick", "--env", "staging", "--yes", "--reason", "earlier run")
        await until(pilot, lambda: view(app).outcome == "succeeded", "the staging run")
        await done.wait()
        assert "PASS Feature flag status" in validations(app)
        first = journal.runs()[-1].run_id
        assert first in screen_text(app)
        assert re.search(r"validations taken at \d\d:\d\d:\d\d UTC", validations(app)), "results carry their time"
        # …then a production request waits for a second person (flags still on there).
        waiting = await cli(sim, "rollback", "quick", "--env", "production", "--yes", "--reason", "p95 over 5s")
        try:

            def requested() -> bool:
                assert waiting.returncode is None, f"the request ended with exit {waiting.returncode}"
                return any(r.outcome == "pending" for r in journal.runs())

            await until(pilot, requested, "the request")
            pending = next(r for r in journal.runs() if r.outcome == "pending").run_id
            await until(pilot, lambda: view(app).run_id == pending, "the watch to follow the request")
            await pilot.pause(0.3)
            shown = screen_text(app)
            assert pending in shown and first not in shown, "only the current run, by its id"
            assert "waiting for approval" in shown and "PASS" not in shown and "FAIL" not in shown
            assert validations(app) == "", "nothing passed: no validation shown"
            steps = view(app).query_one(DataTable)
            statuses = [str(steps.get_row_at(i)[2]) for i in range(steps.row_count)]
            assert statuses and all(s == "not started" for s in statuses), statuses
        finally:
            if waiting.returncode is None:
                waiting.terminate()
            await waiting.wait()
    # A watcher that joins later starts from the request, not from the earlier run.
    late = watcher(sim)
    async with late.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: view(late).run_id == pending, "the replay")
        shown = screen_text(late)
        assert "waiting for approval" in shown and "PASS" not in shown and first not in shown


async def test_a_failed_restart_shows_failed_not_an_earlier_pass(make_simulation) -> None:
    sim = make_simulation(environments=("staging",))
    journal = Journal(load_config(sim.config_path).journal_path)
    app = watcher(sim)
    async with app.run_test(size=(80, 24)) as pilot:
        ok = await cli(sim, "rollback", "quick", "--env", "staging", "--yes", "--reason", "first, passes")
        await until(pilot, lambda: view(app).outcome == "succeeded", "the first run")
        await ok.wait()
        assert "PASS Health check" in validations(app)
        # The flags back on in the env file, and the next start crashes: the restart fails.
        env_file = sim.host("staging").env_file
        env_file.write_bytes(env_file.read_bytes().replace(b"=false", b"=true"))
        sim.inject("staging", crash_on_start=True)
        bad = await cli(sim, "rollback", "quick", "--env", "staging", "--yes", "--reason", "second, restart fails")
        await until(pilot, lambda: len(journal.runs()) == 2, "the second run")
        second = journal.runs()[-1].run_id
        await until(pilot, lambda: view(app).run_id == second and view(app).outcome is not None, "its end")
        await bad.wait()
        await pilot.pause(0.3)
        shown = screen_text(app)
        assert view(app).outcome in ("failed", "aborted")
        assert "PASS" not in shown and validations(app) == "", "no earlier validation under this run"
        steps = view(app).query_one(DataTable)
        rows = {str(steps.get_row_at(i)[0]): str(steps.get_row_at(i)[2]) for i in range(steps.row_count)}
        failed = [status for title, status in rows.items() if "✗" in status]
        assert failed, f"the failed step shows failed: {rows}"
        assert all(TIME.search(s) for s in failed), "with the time it failed"
        assert any(re.search(r"✗ \d\d:\d\d:\d\d · abort", s) for s in failed), f"…and what was decided: {failed}"
        assert second in shown and isinstance(app.screen, WatchScreen)
        assert f"finished {TIME.search(shown).group()}" in shown or "finished" in shown
