"""The dashboard: one panel per environment, each fed by its own probe loop."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen

from screens.widgets.env_panel import EnvPanel
from screens.widgets.footer import ConsoleFooter
from screens.widgets.header import ConsoleHeader

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
        yield ConsoleHeader()
        with VerticalScroll(id="panels"):
            for live in self.app.live.values():
                yield EnvPanel(live, self.app.config, read_only=self.app.read_only)
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self._panels = {panel.live.env.name: panel for panel in self.query(EnvPanel)}
        self._dirty: set[str] = set()  # environments with a round not shown yet
        self._flush_scheduled = False
        self._drawn: set[str] = set()  # environments whose panel shows a round
        self.app.env_updated.subscribe(self, self._updated)
        self._layout(self.size.width)

    def on_resize(self) -> None:
        self._layout(self.size.width)

    def _layout(self, width: int) -> None:
        found = self.query("#panels")
        if not found:  # the app stopped as it started (a stop signal): nothing was composed
            return
        panels = found.first()
        panels.set_class(width >= WIDE and len(self.app.live) > 1, "-wide")
        # Room to spare (e.g. 200×60 with a few environments): show more in each panel.
        rows_each = self.size.height // max(1, (len(self.app.live) + 1) // (2 if width >= WIDE else 1))
        roomy = rows_each >= 18
        if panels.has_class("-roomy") != roomy:
            panels.set_class(roomy, "-roomy")
            self._dirty.update(self._panels)  # each panel's extra lines appear or go
            self._schedule()

    def on_screen_resume(self) -> None:
        self._flush()  # only the environments probed while another screen was on top

    def _updated(self, name: str) -> None:
        self._dirty.add(name)
        self._schedule()

    def _schedule(self) -> None:
        """Rounds that arrive together are drawn together, once, after the next refresh;
        while another screen is on top nothing is drawn (resuming catches up). A panel's
        first round is drawn at once: it is what the operator is waiting for, and waiting
        for a refresh costs up to a frame or two at start-up."""
        if self.is_current and not self._flush_scheduled:
            self._flush_scheduled = True
            if self._dirty - self._drawn:
                self.call_next(self._flush)
            else:
                self.call_after_refresh(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self.is_current or not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for name in dirty:
            panel = self._panels.get(name)
            if panel is not None:
                panel.refresh_from_live()
                if panel.live.snapshot is not None:
                    self._drawn.add(name)

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
