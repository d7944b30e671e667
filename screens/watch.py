"""Watch mode: read-only, follows the active run live from the journal. It has no way to
change a system: it reads one file."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from console.journal.records import parse_ts
from console.safe_text import clean
from screens.format import esc
from screens.widgets.run_view import RunView


class WatchScreen(Screen):
    BINDINGS = [Binding("escape,backspace", "leave", "Back", id="watch.back")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="watch-head")
        yield RunView(id="watch-run")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Watching the journal (read-only)"
        self.current: str | None = None
        self.query_one("#watch-head", Static).update(
            f"following {esc(self.app.journal.path)} — waiting for a rollback to start…"
        )
        self._follow()

    @work(exclusive=True, group="watch", exit_on_error=False)
    async def _follow(self) -> None:
        view = self.query_one("#watch-run", RunView)
        runs = {r.run_id: r for r in self.app.journal.runs(drills=self.app.is_drill)}
        active = [r for r in runs.values() if r.outcome in ("running", "pending")]
        # Start from the active run if any, else from the newest: replay it, then follow.
        start_from = active[-1].run_id if active else (list(runs)[-1] if runs else None)
        async for record in self.app.journal.follow(from_start=True):
            run = record.get("run")
            if run is None:
                continue
            if start_from is not None and run != start_from and self.current is None:
                continue
            start_from = None
            kind, data = record["type"], record.get("data") or {}
            if kind in ("run_started", "run_requested") and run != self.current:
                self.current = run
                view.query_one("#run-steps").clear()
                view.query_one("#run-output").clear()
                plan = data.get("plan") or {}
                who = (record.get("who") or {}).get("user")
                ts = parse_ts(record.get("ts"))
                env = self.app.config.environments.get(str(record.get("env")))
                steps = [(x["id"], x["title"]) for x in plan.get("steps") or [] if isinstance(x, dict)]
                view.start(
                    str(plan.get("title") or data.get("action")),
                    plan.get("target_s"),
                    hosts=[h.name for h in env.hosts] if env else None,
                    steps=steps,
                )
                self.query_one("#watch-head", Static).update(
                    f"run [b]{esc(run)}[/b] on [b]{esc(record.get('env'))}[/b] by {esc(who)} — "
                    f"{esc(data.get('reason') or '')}" + (f" (started {ts:%H:%M:%S} UTC)" if ts else "")
                )
                if kind == "run_requested":
                    view.query_one("#run-output").write(f"waiting for approval: rollback-console approve {run}")
                continue
            if run != self.current:
                continue
            if kind == "run_approved":
                view.query_one("#run-output").write(clean(f"approved by {data.get('approver')}"))
            step = data.get("step")
            host = data.get("host")
            message = str(data.get("message") or "")
            if kind == "step_finished" and data.get("output"):
                for line in str(data["output"]).splitlines()[-20:]:
                    view.apply("output", step, host, line, data)
            view.apply(kind, step, host, message, data)

    def action_leave(self) -> None:
        if len(self.app.screen_stack) <= 1:
            self.app.exit()  # the base screen of watch mode: leaving is quitting
        else:
            self.app.pop_screen()
