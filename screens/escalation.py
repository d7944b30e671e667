"""Contacts and the runbook's four escalation levels; notify a level from here."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from console.config.model import Contact, EscalationLevel
from console.runbook.people import people_of
from screens.format import esc
from screens.modals import TextPrompt
from screens.widgets.footer import ConsoleFooter
from screens.widgets.header import ConsoleHeader
from screens.widgets.tables import Column, refill


class EscalationScreen(Screen):
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="escalation.back"),
        Binding("n,enter", "notify_level", "Notify this level", id="escalation.notify"),
    ]

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield Static("[b]Emergency contacts[/b]", classes="section-title")
        yield DataTable(id="contacts", cursor_type="none", zebra_stripes=True)
        yield Static("[b]Escalation path[/b] — select a level and press n to notify it", classes="section-title")
        yield DataTable(id="levels", cursor_type="row")
        yield Static("", id="escalation-status", classes="hint")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.title = "Escalation"
        config = self.app.config
        self._fill()
        webhook = config.notifications.webhook
        status = [
            f"notifications go to the webhook from {esc(webhook.describe())}"
            if webhook
            else "[$warning]no webhook configured: notifying is recorded in the journal only[/]"
        ]
        unset = [c.role for c in self._people()[0] if not c.filled_in]
        if unset:
            status.append(
                f"[$warning]not filled in yet (TBD in the runbook): {esc(', '.join(unset))}; "
                "set them in the config's [[contacts]][/]"
            )
        self.query_one("#escalation-status", Static).update("\n".join(status))
        self.query_one("#levels", DataTable).focus()

    def on_resize(self) -> None:
        self._fill()

    def _fill(self) -> None:
        """Both tables wrapped to the width: no contact or level is cut at 80 columns."""
        width = self.size.width or self.app.size.width
        people, escalation = self._people()
        contacts = [
            (str(i), [esc(c.role), esc(c.name), esc(c.contact), esc(c.availability)]) for i, c in enumerate(people)
        ]
        refill(
            self.query_one("#contacts", DataTable),
            width,
            [
                Column("role", "Role", weight=2),
                Column("name", "Contact", weight=2),
                Column("how", "How", weight=2),
                Column("when", "Availability", 14),
            ],
            contacts,
        )
        levels = [
            (str(lv.level), [f"Level {lv.level}", esc(lv.description), esc(", ".join(lv.contacts))])
            for lv in escalation
        ]
        refill(
            self.query_one("#levels", DataTable),
            width,
            [Column("level", "Level", 7), Column("what", "What", weight=3), Column("who", "Who", weight=2)],
            levels,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.app.read_only and action == "notify_level")

    @on(DataTable.RowSelected, "#levels")
    def _row_selected(self) -> None:
        if self.check_action("notify_level", ()):
            self.action_notify_level()  # Enter on the table (the table takes Enter before the screen)

    def action_notify_level(self) -> None:
        levels = self.query_one("#levels", DataTable)
        escalation = self._people()[1]
        if not escalation:
            return
        level = escalation[levels.cursor_row]

        def send(reason: str | None) -> None:
            if reason is not None:
                self._send(level.level, reason)

        self.app.push_screen(
            TextPrompt(f"Notify level {level.level} ({level.description})? Why:", "what is happening, what was tried"),
            send,
        )

    def _came_from(self) -> str | None:
        """The environment the operator came from, if they came from one."""
        return next((s.live.env.name for s in reversed(self.app.screen_stack) if hasattr(s, "live")), None)

    def _people(self) -> tuple[tuple[Contact, ...], tuple[EscalationLevel, ...]]:
        return people_of(self.app.config, self._came_from())

    @work(exclusive=True, group="escalation", exit_on_error=False)
    async def _send(self, level: int, reason: str) -> None:
        env = self._came_from()
        result = await self.app.engine.notify_escalation(env or "-", level, reason)
        text = (
            f"[$success]level {level} notified[/]"
            if result.ok
            else f"[$warning]level {level}: {esc(result.error or 'not sent')}[/] (recorded in the journal)"
        )
        self.query_one("#escalation-status", Static).update(text)
