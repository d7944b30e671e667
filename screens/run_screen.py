"""A rollback running: live step list with timers against the runbook target, streaming
output, the validations, and a modal when a step fails. Also resumes or undoes a run
that a crash interrupted.

The screen is installed in the app (``RollbackConsole.start_run``): leaving it does not
stop the run, ``w`` brings it back, and a failed step asks wherever the operator is.
"""

from __future__ import annotations

import asyncio

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, RichLog

from console.authz import Authorization
from console.engine.events import Event
from console.engine.preview import Confirmed
from console.engine.runner import Decision, Failure
from console.engine.session import RunRefused, RunRequest
from console.journal import RunSummary
from screens.modals import Choice, StepFailedModal
from screens.widgets.footer import ConsoleFooter
from screens.widgets.header import ConsoleHeader
from screens.widgets.run_view import RunView, at

APPROVAL_WAIT_S = 15 * 60


class RunEvent(Message):
    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class RunScreen(Screen):
    BINDINGS = [
        Binding("c", "checklist", "Checklist", id="run.checklist"),
        Binding("escape", "leave", "Back", id="run.leave"),
    ]

    def __init__(
        self,
        request: RunRequest,
        authorization: Authorization | None,
        *,
        title: str,
        target_s: float | None,
        resume: RunSummary | None = None,
        undo: bool = False,
        recommendation: object | None = None,
        plan: object | None = None,
        confirmed: Confirmed | None = None,
    ) -> None:
        super().__init__()
        self.request, self.authorization = request, authorization
        self.plan_title, self.target_s = title, target_s
        self.resume, self.undo = resume, undo
        self.recommendation = recommendation
        self.plan = plan
        self.confirmed = confirmed  # the preview the operator confirmed: the run must still be it
        self.state: str | None = None  # "pending" (waiting for approval) | "running" | None (not or no longer)
        self.checklist_requested = False
        self.run_id: str | None = resume.run_id if resume else None
        self.outcome: str | None = None

    @property
    def running(self) -> bool:
        """Is something still happening here that quitting would cut off?"""
        return self.state is not None

    def describe(self) -> str:
        """One line for a question about leaving or quitting."""
        run = f"run {self.run_id}" if self.run_id else "the run"
        what = f"{self.plan_title} on {self.request.environment}"
        if self.state == "pending":
            return f"{run} ({what}) is waiting for approval"
        return f"{run} ({what}) is running"

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield RunView(id="run-view")
        with Horizontal(classes="buttons"):
            yield Button("Checklist → (c)", id="to-checklist", variant="primary", disabled=True)
            yield Button("Back (Esc)", id="done")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        verb = "Undo" if self.undo else ("Resume" if self.resume else "Rollback")
        self.title = f"{verb} — {self.request.environment}"
        self._execute()

    def _output(self, text: str) -> None:
        self.query_one("#run-output", RichLog).write(text)

    @work(exclusive=True, group="rollback", exit_on_error=False)
    async def _execute(self) -> None:
        engine = self.app.engine
        view = self.query_one("#run-view", RunView)
        self.state = "running"
        run_id = self.run_id
        try:
            authorization = self.authorization
            if authorization is None:  # waiting for a second person
                self.state = "pending"
                run_id = self.run_id = await engine.request_approval(self.request, self.plan)
                steps = [s.title for s in self.plan.steps] if self.plan is not None else []
                view.pending(self.plan_title, run_id, engine.who.user, view.now(), steps)
                self._output(f"Ask a team lead or on-call to run:  rollback-console approve {run_id}")
                self._output(f"This console waits {APPROVAL_WAIT_S // 60} minutes for the approval, then gives up.")
                approver = await engine.wait_for_approval(run_id, APPROVAL_WAIT_S)
                if approver is None:
                    view.state = "[$warning]no approval within 15 minutes[/] — nothing was changed"
                    view.tick()
                    self._output(f"{at(view.now())} · no approval within 15 minutes: nothing was changed")
                    return
                self._output(f"{at(view.now())} · approved by {approver}")
                authorization = Authorization("approved", engine.who.user, approver=approver)
                self.state = "running"
                view.reset()
            view.start(self.plan_title, self.target_s, run_id=run_id, hosts=self._hosts(), steps=self._steps())
            engine.on_event = self._on_engine_event
            outcome = await engine.execute(
                self.request,
                authorization,
                self._decide,
                run_id=run_id,
                recommendation=self.recommendation,
                resume=self.resume,
                undo_only=self.undo,
                confirmed=self.confirmed,
            )
            self.run_id = outcome.run_id
            self.outcome = outcome.result.outcome
            self.app.last_run = outcome.run_id
        except RunRefused as exc:
            self._output(f"refused: {exc}")
            self.notify(str(exc), severity="error", timeout=15)
        finally:
            engine.on_event = lambda e: None
            self.state = None
            self._finished()

    def _on_engine_event(self, event: Event) -> None:
        if event.kind == "run_started" and self.run_id is None:
            self.run_id = event.run_id
            view = self.query_one("#run-view", RunView)
            view.run_id = event.run_id
            view.tick()
        self.post_message(RunEvent(event))

    def _finished(self) -> None:
        checklist = self.query_one("#to-checklist", Button)
        checklist.disabled = self.run_id is None or self.outcome is None
        (checklist if not checklist.disabled else self.query_one("#done", Button)).focus()
        if self.checklist_requested and self.run_id and self.is_current:
            self.call_later(self.action_checklist)
        elif not self.is_current and self.outcome:
            self.notify(
                f"Run {self.run_id} on {self.request.environment}: {self.outcome}. Press w to see it.",
                severity="information" if self.outcome == "succeeded" else "warning",
                timeout=15,
            )
        self.app.run_worker(self.app.probe_now(self.request.environment), exit_on_error=False)
        self.app.refresh_bindings()

    def _hosts(self) -> list[str]:
        return [h.name for h in self.app.config.environment(self.request.environment).hosts]

    def _steps(self) -> list[tuple[str, str]]:
        if self.plan is not None:
            return [(s.id, s.title) for s in self.plan.steps]
        if self.resume is not None:
            return [(s["id"], s["title"]) for s in self.resume.plan.get("steps") or [] if isinstance(s, dict)]
        return []

    async def _decide(self, failure: Failure) -> Decision:
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self.app.push_screen(StepFailedModal(failure, self.app.engine.who.user), future.set_result)
        return await future

    @on(RunEvent)
    def _event(self, message: RunEvent) -> None:
        e = message.event
        self.query_one("#run-view", RunView).apply(e.kind, e.step, e.host, e.message, e.data, e.ts)

    def action_checklist(self) -> None:
        if self.running:
            self.checklist_requested = True  # opens as soon as the run is recorded
            self.notify("The checklist opens when the run is recorded.", timeout=3)
            return
        if self.run_id and self.outcome:
            from screens.checklist import ChecklistScreen

            self.app.switch_screen(ChecklistScreen(self.run_id))

    def action_leave(self) -> None:
        if not self.running:
            self.app.pop_screen()
            return
        if self.state == "pending":
            question = (
                f"{self.describe()}. Leave this screen? This console goes on waiting and runs it once "
                "approved; w brings you back."
            )
        else:
            question = (
                f"{self.describe()}. Leave this screen? The rollback goes on; w brings you back, and a "
                "failed step still asks you wherever you are."
            )

        def chosen(leave: bool | None) -> None:
            if leave and self.is_current:
                self.app.pop_screen()

        self.app.push_screen(Choice("Leave the run screen?", question, yes="Leave (y)"), chosen)

    @on(Button.Pressed, "#to-checklist")
    def _checklist(self) -> None:
        self.action_checklist()

    @on(Button.Pressed, "#done")
    def _done(self) -> None:
        self.action_leave()
