"""Watch mode: read-only, follows the current run live from the journal. It has no way to
change a system: it reads one file.

It shows one run at a time, named by its id: the active one (running or waiting for
approval), else the latest, said to be finished. A new run replaces it entirely.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import RichLog, Static

from console.journal.records import JournalError, parse_ts
from screens.format import esc, screen_text
from screens.widgets.footer import ConsoleFooter
from screens.widgets.header import ConsoleHeader
from screens.widgets.run_view import RunView, at

STARTS = ("run_started", "run_requested")
CLOSING = ("run_rejected", "run_withdrawn", "run_expired")  # a request that will not run


def _ts(record: dict[str, Any]) -> float | None:
    when = parse_ts(record.get("ts"))
    return when.timestamp() if when else None


class WatchScreen(Screen):
    BINDINGS = [
        Binding("escape,backspace", "leave", "Back", id="watch.back"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="watch.page_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="watch.page_up"),
    ]

    def action_page(self, direction: int) -> None:
        self.query_one("#watch-run", RunView).page(direction)

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield Static("", id="watch-head")
        yield RunView(id="watch-run")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.title = "Latest run"  # the subtitle says WATCH (read-only); the clock fits at 80 columns
        self.current: str | None = None
        self.query_one("#watch-head", Static).update(
            f"following {esc(self.app.journal.path)} — no rollback recorded yet; waiting for one to start…"
        )
        self._follow()

    @work(exclusive=True, group="watch", exit_on_error=False)
    async def _follow(self) -> None:
        journal = self.app.journal
        try:
            runs = {r.run_id: r for r in await journal.rows_async(drills=self.app.is_drill)}
            last_seq, after = await journal.position_async()
            active = [r for r in runs.values() if r.outcome in ("running", "pending", "approved")]
            # Start from the active run if any, else from the newest: replay it, then follow.
            first = active[-1] if active else (list(runs.values())[-1] if runs else None)
            replay = await journal.run_records_async(first.run_id) if first else []
        except JournalError as exc:
            self.query_one("#watch-head", Static).update(f"[$error]{esc(exc)}[/]")
            return
        last_seq = -1 if last_seq is None else last_seq  # records up to it are history, not news

        async def records() -> AsyncIterator[dict[str, Any]]:
            """The chosen run's records so far (from the run index), then what is appended."""
            for record in replay:
                if record["seq"] <= last_seq:
                    yield record
            self._head()
            async for record in journal.follow(from_position=after):
                yield record

        async for record in records():
            old = record["seq"] <= last_seq
            run = record.get("run")
            if not isinstance(run, str) or not run:
                continue
            kind, data = record.get("type"), record.get("data") or {}
            new_start = kind in STARTS and run != self.current and bool(data.get("drill")) == self.app.is_drill
            if old:
                # History: only the run chosen above; later runs in the file do not take over.
                if first is None or run != first.run_id:
                    continue
                if self.current is None:
                    self._show_new(record)
                    continue
            elif new_start:
                self._show_new(record)
                continue
            if run == self.current:
                self._apply(record)

    def _show_new(self, record: dict[str, Any]) -> None:
        """A run to follow from its first record: nothing of the previous one stays."""
        view = self.query_one("#watch-run", RunView)
        run, data = str(record["run"]), record.get("data") or {}
        self.current = run
        self.operator = (record.get("who") or {}).get("user") or data.get("requester") or "?"
        self.env = str(record.get("env") or "?")
        self.reason = str(data.get("reason") or "")
        self.status = "pending" if record.get("type") == "run_requested" else "running"
        self.finished_at: float | None = None
        view.reset()
        plan = data.get("plan") or {}
        if record.get("type") == "run_requested":
            steps = [str(s.get("title") if isinstance(s, dict) else s) for s in plan.get("steps") or []]
            lapses = parse_ts(data.get("expires_at"))
            view.pending(
                str(plan.get("title") or data.get("action")),
                run,
                self.operator,
                _ts(record),
                steps,
                lapses.timestamp() if lapses else None,
            )
            view.query_one("#run-output", RichLog).write(
                f"{at(_ts(record))} · requested by {screen_text(self.operator)}; "
                "a team lead or on-call approves it with: "
                f"rollback-console approve {screen_text(run)}"
            )
        else:
            self._started(record)
        self._head()

    def _started(self, record: dict[str, Any]) -> None:
        view = self.query_one("#watch-run", RunView)
        data = record.get("data") or {}
        plan = data.get("plan") or {}
        env = self.app.config.environments.get(str(record.get("env")))
        steps = [(x["id"], x["title"]) for x in plan.get("steps") or [] if isinstance(x, dict)]
        if view.state is not None:  # it was waiting for approval: the steps start afresh
            view.reset()
        view.start(
            str(plan.get("title") or data.get("action")),
            plan.get("target_s"),
            started=_ts(record),
            run_id=str(record["run"]),
            hosts=[h.name for h in env.hosts] if env else None,
            steps=steps,
        )
        approver = (data.get("authorization") or {}).get("approver")
        if approver:
            view.query_one("#run-output", RichLog).write(f"approved by {screen_text(approver)}")
        if data.get("resumed"):
            view.query_one("#run-output", RichLog).write(
                f"{at(_ts(record))} · resumed by {screen_text((record.get('who') or {}).get('user'))}"
            )

    def _apply(self, record: dict[str, Any]) -> None:
        view = self.query_one("#watch-run", RunView)
        kind, data = str(record.get("type")), record.get("data") or {}
        ts = _ts(record)
        out = view.query_one("#run-output", RichLog)
        if kind == "run_started":
            self.status = "running"
            self._started(record)
            self._head()
        elif kind == "run_approved" and self.status == "pending":
            out.write(f"{at(ts)} · approved by {screen_text(data.get('approver'))}")
            view.state = (
                f"[$success]approved by {esc(data.get('approver'))}[/] at {at(ts)} UTC — runs when "
                f"{esc(self.operator)} starts it"
            )
            self.status = "approved"
            view.tick()
            self._head()
        elif kind in CLOSING and self.status in ("pending", "approved"):
            by = data.get("by") or (record.get("who") or {}).get("user")
            how = {"run_rejected": "rejected", "run_withdrawn": "withdrawn", "run_expired": "expired"}[kind]
            said = f"{how} by {screen_text(by)}" if by and kind != "run_expired" else how
            if data.get("reason"):
                said += f": {screen_text(data['reason'])}"
            out.write(f"{at(ts)} · {said}; nothing was changed")
            view.lapses_at = None
            view.state = f"[$warning]{esc(said)}[/] at {at(ts)} UTC — nothing was changed"
            self.status = how
            self.finished_at = ts
            view.tick()
            self._head()
        elif kind in ("step_started", "step_finished", "step_failed", "decision", "note", "validation"):
            step, host = data.get("step"), data.get("host")
            if kind in ("step_finished", "step_failed") and data.get("output"):
                for line in str(data["output"]).splitlines()[-20:]:
                    view.apply("output", step, host, line, data, ts)
            view.apply(kind, step, host, str(data.get("message") or ""), data, ts)
        elif kind == "run_finished":
            view.apply(kind, None, None, str(data.get("message") or ""), data, ts)
            self.status = str(data.get("outcome") or "finished")
            self.finished_at = ts
            self._head()

    def _head(self) -> None:
        if self.current is None:
            return
        if self.status == "pending":
            state = "[$warning b]waiting for approval[/] — nothing has run"
        elif self.status == "approved":
            state = f"[$success b]approved[/] — nothing has run yet: it runs when {esc(self.operator)} starts it"
        elif self.status in ("rejected", "withdrawn", "expired"):
            state = f"[b]{esc(self.status)}[/b] {at(self.finished_at)} UTC — it will not run; nothing was changed"
        elif self.status == "running":
            state = "[b]in progress[/b]"
        else:
            state = f"[b]finished[/b] {at(self.finished_at)} UTC: {esc(self.status)} — no rollback is running now"
        reason = f" — {esc(self.reason)}" if self.reason else ""
        self.query_one("#watch-head", Static).update(
            f"run [b]{esc(self.current)}[/b] on [b]{esc(self.env)}[/b] by {esc(self.operator)}{reason}\n{state}"
        )

    def action_leave(self) -> None:
        if len(self.app.screen_stack) <= 1:
            self.app.action_request_quit()  # the base screen of watch mode: leaving is quitting
        else:
            self.app.pop_screen()
