"""The dashboard: one panel per environment, each fed by its own probe loop."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header

from screens.widgets.env_panel import EnvPanel
from screens.widgets.footer import ConsoleFooter

WIDE = 150  # columns from which panels sit side by side


class DashboardScreen(Screen):
    AUTO_FOCUS = ".env-panel"  # straight to the first panel: one focus change, not two
    # The console's keys (app bindings), shown here where the footer has room for them
    # (w, t and x too would not fit in 80 columns: they are in the key help, F1).
    BINDINGS = [
        Binding("h", "app.history", "History", id="dashboard.history"),
        Binding("e", "app.escalation", "Escalate", id="dashboard.escalation"),
        Binding("c", "app.checklist", "Checklist", id="dashboard.checklist"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="panels"):
            for live in self.app.live.values():
                yield EnvPanel(live, self.app.config, read_only=self.app.read_only)
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.app.env_updated.subscribe(self, self._updated)
        self._layout(self.size.width)

    def on_resize(self) -> None:
        self._layout(self.size.width)

    def _layout(self, width: int) -> None:
        panels = self.query_one("#panels")
        panels.set_class(width >= WIDE and len(self.app.live) > 1, "-wide")
        # Room to spare (e.g. 200×60 with a few environments): show more in each panel.
        rows_each = self.size.height // max(1, (len(self.app.live) + 1) // (2 if width >= WIDE else 1))
        panels.set_class(rows_each >= 18, "-roomy")

    def on_screen_resume(self) -> None:
        for panel in self.query(EnvPanel):
            panel.refresh_from_live()

    def _updated(self, name: str) -> None:
        if not self.is_current:
            return  # hidden screens catch up when they come back
        for panel in self.query(EnvPanel):
            if panel.live.env.name == name:
                panel.refresh_from_live()

    @on(EnvPanel.Selected)
    def open_environment(self, event: EnvPanel.Selected) -> None:
        from screens.environment import EnvironmentScreen

        self.app.push_screen(EnvironmentScreen(self.app.live[event.environment]))

    @on(EnvPanel.RollbackRequested)
    def start_rollback(self, event: EnvPanel.RollbackRequested) -> None:
        if event.action == "restore":
            self.app.action_restore(event.environment)
        elif event.action == "requests":
            self.app.action_requests(event.environment)
        else:
            self.app.action_rollback(event.environment)
