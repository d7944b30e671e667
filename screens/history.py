"""The runbook's Rollback History table from the journal; Enter shows a run's report.

It holds a page of the newest runs, never one row per run of years: the last row says how
many older runs there are, and reaching it (or ``o``) loads the next page.

At 80 columns the date and the run id share a column (two lines) and the reason and the
outcome wrap: every column stays, every run id stays whole.
"""

from __future__ import annotations

import asyncio

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Markdown, Static

from console.journal import JournalError, history_rows, incident_report
from console.runbook.checklist import checklist_of
from screens.format import counted, esc, screen_text
from screens.widgets.footer import ConsoleFooter
from screens.widgets.header import ConsoleHeader
from screens.widgets.tables import Column, refill
from screens.widgets.update import show

WIDE = 130  # from here the run id has a column of its own
PAGE = 50  # runs a page adds: more than a tall terminal shows, a table that builds at once
OLDER = "older"  # the key of the last row, when older runs are not loaded


class HistoryScreen(Screen):
    limit = PAGE  # the newest runs loaded: grows a page at a time
    older = 0  # runs older than those loaded
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="history.back"),
        Binding("enter", "report", "Report", id="history.report"),
        Binding("c", "checklist", "Checklist", id="history.checklist"),
        Binding("y", "copy", "Copy run id", id="history.copy"),
        Binding("o", "older", "Older runs", id="history.older"),  # only while some are not shown
    ]

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield Static("", id="history-head")
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.title = "Rollback history" + (" — drills" if self.app.is_drill else "")
        self.runs = []
        self._load()
        table = self.query_one("#history", DataTable)
        table.focus()
        self.watch(table, "scroll_y", self._scrolled, init=False)

    def on_screen_resume(self) -> None:
        self._load()

    def on_resize(self) -> None:
        self._fill()

    @work(exclusive=True, group="history", exit_on_error=False)
    async def _load(self) -> None:
        """The run index and the chain, read off the event loop (only what is new since)."""
        journal = self.app.journal
        try:
            page = await journal.page_async(drills=self.app.is_drill, limit=self.limit)
            problems = await journal.verify_async()
        except JournalError as exc:
            self.query_one("#history-head", Static).update(f"[$error]{esc(exc)}[/]")
            return
        bad = f"[$error]{counted(len(problems), 'journal problem')}[/]"
        chain = "[$success]hash chain intact[/]" if not problems else bad
        if not problems and problems.trusted_lines:
            chain += f" [$text-muted](lines 1–{problems.trusted_lines} verified earlier, not re-read)[/]"
        shown = f" (the latest {len(page.rows)} shown)" if page.older else ""
        show(
            self.query_one("#history-head", Static),
            f"{counted(page.total, 'run')}{shown} in {esc(journal.path)} · {chain}\n"
            "Enter: the run's incident report · c: its checklist · y: copy its run id",
        )
        self.runs = list(reversed(page.rows))
        self.older = page.older
        self._fill()
        self.app.refresh_bindings()

    def _fill(self) -> None:
        width = self.size.width or self.app.size.width
        envs = max((len(r.env or "-") for r in self.runs), default=3)
        rows = []
        wide = width >= WIDE
        for (date, env, reason, duration, outcome), run in zip(history_rows(self.runs), self.runs, strict=True):
            cells = [esc(date), esc(env), esc(reason), esc(duration), esc(outcome), esc(run.run_id)]
            if not wide:  # date over run id: both whole in 22 columns
                cells = [f"{esc(date)}\n[b]{esc(run.run_id)}[/b]", *cells[1:5]]
            rows.append((run.run_id, cells))
        if self.older:  # the last row: what is not loaded, and how to load it
            more = f"… {counted(self.older, 'older run')} — o or Enter loads {min(PAGE, self.older)} more"
            rows.append((OLDER, [f"[dim]{esc(more)}[/dim]", "", "", "", "", ""][: 6 if wide else 5]))
        if wide:
            columns = [
                Column("date", "Date", 20),
                Column("environment", "Environment", max(11, envs)),
                Column("reason", "Reason", weight=3),
                Column("duration", "Duration", 8),
                Column("outcome", "Outcome", weight=2),
                Column("run", "Run", 22),
            ]
        else:
            columns = [
                Column("date", "Date · Run", 22),
                Column("environment", "Env", min(max(3, envs), 12)),
                Column("reason", "Reason", weight=3),
                Column("duration", "Took", 7),
                Column("outcome", "Outcome", weight=2),
            ]
        shown = (width, rows)
        if shown != getattr(self, "_table_shown", None):  # reopening an unchanged history rebuilds nothing
            self._table_shown = shown
            refill(self.query_one("#history", DataTable), width, columns, rows)

    def _selected(self) -> str | None:
        table = self.query_one("#history", DataTable)
        if not self.runs or table.cursor_row >= len(self.runs):
            return None
        return self.runs[table.cursor_row].run_id

    def action_report(self) -> None:
        run_id = self._selected()
        if run_id:
            self.app.push_screen(ReportScreen(run_id))
        elif self.older and self.query_one("#history", DataTable).cursor_row == len(self.runs):
            self.action_older()

    def action_older(self) -> None:
        """The next page of older runs (the index is in memory: a page costs its rows)."""
        if self.older and self.limit < len(self.runs) + PAGE:
            self.limit = len(self.runs) + PAGE
            self._load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "older":
            return bool(self.older)  # hidden while every run is shown
        return True

    @on(DataTable.RowSelected, "#history")
    def _row_selected(self) -> None:
        self.action_report()  # Enter on the table (the table takes Enter before the screen)

    def _scrolled(self, y: float) -> None:
        table = self.query_one("#history", DataTable)
        if self.older and table.max_scroll_y and y >= table.max_scroll_y:  # the wheel, to the end
            self.action_older()

    @on(DataTable.RowHighlighted, "#history")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value == OLDER:  # scrolled to the end of what is loaded: load on
            self.action_older()

    def action_checklist(self) -> None:
        run_id = self._selected()
        if run_id:
            from screens.checklist import ChecklistScreen

            self.app.push_screen(ChecklistScreen(run_id))

    def action_copy(self) -> None:
        run_id = self._selected()
        if run_id:
            self.app.copy_to_clipboard(run_id)
            self.notify(f"{run_id} copied (if your terminal allows it: OSC 52)", timeout=5)


def _restorable(app, run) -> bool:  # type: ignore[no-untyped-def]
    from console.engine.standing import can_restore, restored_ids
    from console.plans import PLANS

    # Only a restore that succeeded puts a run back: read those runs' records, not every run's
    # (at years of runs, every run of the environment was seconds of reading).
    rows = app.journal.rows(run.env, drills=run.drill)
    restores = [app.journal.run(r.run_id) for r in rows if r.action == "restore" and r.outcome == "succeeded"]
    return can_restore(app.config, PLANS, run, restored_ids(restores))


class ReportScreen(Screen):
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="report.back"),
        Binding("y", "copy", "Copy run id", id="report.copy"),
        Binding("R", "restore", "Restore", id="report.restore"),  # only when this run can be put back
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.restorable: bool | None = None  # it changed something no restore has put back (None: not known yet)

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield Static("", id="report-head")
        with VerticalScroll(id="report-scroll"):
            yield Markdown(id="report")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.title = "Incident report"
        self._load()
        self.query_one("#report-scroll").focus()

    @work(exclusive=True, group="report", exit_on_error=False)
    async def _load(self) -> None:
        """The run's records and the chain, read off the event loop."""
        journal = self.app.journal
        try:
            run = await journal.run_async(self.run_id)
            problems = await journal.verify_async()
        except JournalError as exc:
            self.query_one("#report-head", Static).update(f"[$error]{esc(exc)}[/]")
            return
        self.run_id = run.run_id
        self.query_one("#report-head", Static).update(
            f"run [b]{esc(run.run_id)}[/b] — {esc(run.title)} on [b]{esc(run.env)}[/b] — {esc(run.outcome_text())}"
        )
        checklist = checklist_of(self.app.config, run.env)
        text = incident_report(run, checklist=checklist, journal_path=journal.path, problems=problems)
        await self.query_one("#report", Markdown).update(screen_text(text))
        self.env = run.env
        self.restorable = await asyncio.to_thread(_restorable, self.app, run)
        if self.restorable:
            self.query_one("#report-head", Static).update(
                f"run [b]{esc(run.run_id)}[/b] — {esc(run.title)} on [b]{esc(run.env)}[/b] — {esc(run.outcome_text())}"
                f"\n[$accent]R restores what it changed on {esc(run.env)}[/] (preview → authorize → confirm)"
            )
        self.app.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "restore":
            return bool(self.restorable) and not self.app.read_only
        return True

    def action_restore(self) -> None:
        if self.restorable and self.env:
            self.app.action_restore(self.env, self.run_id)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.run_id)
        self.notify(f"{self.run_id} copied (if your terminal allows it: OSC 52)", timeout=5)
