"""The runbook's Rollback History table from the journal; Enter shows a run's report."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Markdown, Static

from console.journal import history_rows, incident_report
from screens.format import esc


class HistoryScreen(Screen):
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="history.back"),
        Binding("enter", "report", "Report", id="history.report"),
        Binding("c", "checklist", "Checklist", id="history.checklist"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="history-head")
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Rollback history" + (" — drills" if self.app.is_drill else "")
        table = self.query_one("#history", DataTable)
        for col in ("Date", "Environment", "Reason", "Duration", "Outcome", "Run"):
            table.add_column(col, key=col.lower())
        self._load()
        table.focus()

    def on_screen_resume(self) -> None:
        self._load()

    def _load(self) -> None:
        journal = self.app.journal
        runs = journal.runs(drills=self.app.is_drill)
        problems = journal.verify()
        chain = "[$success]hash chain intact[/]" if not problems else f"[$error]{len(problems)} journal problem(s)[/]"
        self.query_one("#history-head", Static).update(
            f"{len(runs)} run(s) in {esc(journal.path)} · {chain} · Enter: incident report"
        )
        table = self.query_one("#history", DataTable)
        table.clear()
        self.runs = list(reversed(runs))
        for row, run in zip(history_rows(self.runs), self.runs, strict=True):
            table.add_row(*(esc(c) for c in row), esc(run.run_id), key=run.run_id)

    def _selected(self) -> str | None:
        table = self.query_one("#history", DataTable)
        if not self.runs:
            return None
        return self.runs[table.cursor_row].run_id

    def action_report(self) -> None:
        run_id = self._selected()
        if run_id:
            self.app.push_screen(ReportScreen(run_id))

    def action_checklist(self) -> None:
        run_id = self._selected()
        if run_id:
            from screens.checklist import ChecklistScreen

            self.app.push_screen(ChecklistScreen(run_id))


class ReportScreen(Screen):
    BINDINGS = [Binding("escape,backspace", "app.pop_screen", "Back", id="report.back")]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Markdown(id="report")
        yield Footer()

    def on_mount(self) -> None:
        journal = self.app.journal
        run = journal.run(self.run_id)
        self.title = f"Incident report — {run.run_id}"
        text = incident_report(
            run, checklist=self.app.config.checklist, journal_path=journal.path, problems=journal.verify()
        )
        self.query_one("#report", Markdown).update(text)
