"""The post-rollback checklist of one run: machine-checkable items tick themselves and
show their evidence; the operator ticks the rest (journaled with their name)."""

from __future__ import annotations

import asyncio

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from console.journal import JournalError, RunSummary
from console.runbook import checklist
from screens.format import cell, esc
from screens.modals import TextPrompt
from screens.widgets.footer import ConsoleFooter
from screens.widgets.header import ConsoleHeader
from screens.widgets.tables import Column, refill

# Checked by the console, but a person may know better (a channel told by hand, a report
# written elsewhere) and tick them with a note.
HAND_TICKED = ("notified", "report")


class ChecklistScreen(Screen):
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="checklist.back"),
        Binding("space,enter", "toggle", "Tick", id="checklist.toggle"),
        Binding("o", "report", "Write report", id="checklist.report"),
        Binding("a", "recheck", "Re-check", id="checklist.recheck"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.items: list[checklist.ItemState] = []
        self.run: RunSummary | None = None

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield Static("", id="checklist-head")
        yield DataTable(id="checklist", cursor_type="row")
        yield Static("", id="checklist-evidence", classes="hint")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.action_recheck()
        self.query_one("#checklist", DataTable).focus()

    @work(exclusive=True, group="checklist", exit_on_error=False)
    async def action_recheck(self) -> None:
        await self._recheck()

    async def _recheck(self) -> None:
        """Tick what the console can check and read the run back: off the event loop."""
        app = self.app
        try:
            self.items = await asyncio.to_thread(checklist.tick_automatic, app.config, app.journal, self.run_id)
            self.run = await app.journal.run_async(self.run_id)
        except JournalError as exc:
            self.query_one("#checklist-head", Static).update(f"[$error]{esc(exc)}[/]")
            return
        self._show_items()

    def _show_items(self) -> None:
        run = self.run
        assert run is not None
        self.title = "Post-rollback checklist"
        done = sum(1 for s in self.items if s.ticked)
        self.query_one("#checklist-head", Static).update(
            f"run [b]{esc(run.run_id)}[/b] — {esc(run.title)} on [b]{esc(run.env)}[/b] — {esc(run.outcome)} · "
            f"{done}/{len(self.items)} done" + ("  [reverse $success] complete [/]" if done == len(self.items) else "")
        )
        rows = []
        for s in self.items:
            tick = "[$success]\\[x][/]" if s.ticked else "\\[ ]"
            by = "auto" if s.by == "auto" else (s.by or ("auto" if s.automatic else "you"))
            rows.append((s.item.id, [cell(self.app, tick), esc(s.item.text), esc(by)]))
        columns = [Column("tick", "", 3), Column("text", "Post-rollback checklist", weight=4), Column("by", "By", 12)]
        refill(self.query_one("#checklist", DataTable), self.size.width or self.app.size.width, columns, rows)
        self._evidence()

    def on_data_table_row_highlighted(self) -> None:
        self._evidence()

    def _evidence(self) -> None:
        table = self.query_one("#checklist", DataTable)
        if not self.items or table.cursor_row >= len(self.items):
            return
        s = self.items[table.cursor_row]
        if s.ticked and s.by and s.by != "auto":
            kind = f"ticked by {esc(s.by)}"
        elif s.automatic and s.item.check in HAND_TICKED:
            kind = "checked by the console, or ticked by a person (Space)"
        elif s.automatic:
            kind = "checked by the console"
        else:
            kind = "ticked by a person (Space)"
        self.query_one("#checklist-evidence", Static).update(
            f"[b]{esc(s.item.text)}[/b] — {kind}\n{esc(s.evidence) or '[$text-muted]no evidence yet[/]'}"
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.app.read_only and action in ("toggle", "report", "recheck"):
            return False  # watch mode records nothing
        return True

    @on(DataTable.RowSelected, "#checklist")
    def _row_selected(self) -> None:
        if self.check_action("toggle", ()):
            self.action_toggle()  # Enter on the table (the table takes Enter before the screen)

    def action_toggle(self) -> None:
        table = self.query_one("#checklist", DataTable)
        if not self.items or table.cursor_row >= len(self.items):
            return
        s = self.items[table.cursor_row]
        if s.automatic and s.item.check not in HAND_TICKED:
            self.notify("This item is checked by the console from the validations (a = re-check).")
            return

        def done(note: str | None) -> None:
            if note is not None:
                self._tick(s, note)

        question = f"{'Untick' if s.ticked else 'Tick'}: {s.item.text}\nEvidence or note (Enter to record):"
        self.app.push_screen(TextPrompt(question, "e.g. dashboard link, ticket, who was told"), done)

    @work(group="checklist-write", exit_on_error=False)
    async def _tick(self, s: checklist.ItemState, note: str) -> None:
        app = self.app
        await asyncio.to_thread(checklist.tick, app.config, app.journal, self.run_id, s.item.id, not s.ticked, note)
        await self._recheck()

    @work(group="checklist-write", exit_on_error=False)
    async def action_report(self) -> None:
        from console.engine.reports import ReportError, write_report

        try:  # the one way both faces write it; it reads and verifies the journal: off the loop
            path = await asyncio.to_thread(write_report, self.app.config, self.app.journal, self.run_id)
        except (ReportError, JournalError) as exc:
            self.notify(str(exc), severity="error", timeout=15)
            return
        self.notify(f"incident report written to {path}")
        await self._recheck()
