"""A rollback running: live step list with timers against the runbook target, streaming
output, the validations, and a modal when a step fails. Also resumes or undoes a run
that a crash interrupted, and waits for a production request's approval.

The screen is installed in the app (``RollbackConsole.start_run``): leaving it does not
stop the run, ``w`` brings it back, and a failed step asks wherever the operator is.

A request waiting for approval shows its countdown; ``d`` withdraws it; Esc leaves (it
stays pending on the dashboard). Approved while the requester is on this screen, it goes
ahead (they confirmed it and are watching); approved while they are elsewhere, the
console asks first: nothing runs without someone at the keyboard.
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

from console.engine.run import Run
from console.engine.runner import Decision, Failure
from console.engine.session import RunRefused
from console.events import Event
from console.journal.requests import RequestState
from screens.format import esc
from screens.modals import Choice, StepFailedModal
from screens.widgets.footer import ConsoleFooter
from screens.widgets.header import ConsoleHeader
from screens.widgets.run_view import RunView, at


class RunEvent(Message):
    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class RunScreen(Screen):
    BINDINGS = [
        Binding("c", "checklist", "Checklist", id="run.checklist"),
        Binding("d", "withdraw", "Withdraw request", id="run.withdraw"),
        Binding("escape", "leave", "Back", id="run.leave"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="run.page_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="run.page_up"),
    ]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        # "pending" (waiting for approval) | "asking" (approved: may it start?) | "running" | None
        self.state: str | None = None
        self.checklist_requested = False
        self.run_id: str | None = run.run_id
        self.outcome: str | None = None
        self.request: RequestState | None = None  # while waiting: the request as last read

    # Older names, for the app and tests.
    @property
    def plan_title(self) -> str:
        return self.run.title

    @property
    def running(self) -> bool:
        """Is something still happening here that quitting would cut off?"""
        return self.state is not None

    def describe(self) -> str:
        """One line for a question about leaving or quitting."""
        run = f"run {self.run_id}" if self.run_id else "the run"
        what = f"{self.run.title} on {self.run.environment}"
        if self.state == "pending":
            return f"{run} ({what}) is waiting for approval"
        if self.state == "asking":
            return f"{run} ({what}) is approved and waits for you to start it"
        return f"{run} ({what}) is running"

    def quit_consequence(self) -> str:
        """What quitting now does to this run, for the app's question."""
        if self.state in ("pending", "asking"):
            lapses = at(self.request.expires_at.timestamp()) if self.request and self.request.expires_at else "?"
            return (
                "Quitting stops this console waiting: nothing will run unattended. The request stays open until "
                f"{lapses} UTC — once approved, you start it (here after a restart, or `rollback-console start "
                f"{self.run_id}`); d on this screen withdraws it."
            )
        return (
            "Quitting now cuts it off mid-way: the journal marks it interrupted, and the next start "
            "offers to resume or undo it."
        )

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield RunView(id="run-view")
        with Horizontal(classes="buttons"):
            yield Button("Checklist → (c)", id="to-checklist", variant="primary", disabled=True)
            yield Button("Back (Esc)", id="done")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        verb = "Undo" if self.run.undo else ("Resume" if self.run.resume else "Rollback")
        if self.run.request.action == "restore" and not self.run.resume:
            verb = "Restore"
        self.title = f"{verb} — {self.run.environment}"
        self._execute()

    def action_page(self, direction: int) -> None:
        self.query_one("#run-view", RunView).page(direction)

    def _output(self, text: str) -> None:
        self.query_one("#run-output", RichLog).write(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "withdraw":
            return self.state == "pending"  # shown only while there is a request to withdraw
        if action == "checklist":  # the post-rollback checklist: of a run that runs or ran, not of a request
            return self.state not in ("pending", "asking") and (self.running or bool(self.run_id and self.outcome))
        return True

    @work(exclusive=True, group="rollback", exit_on_error=False)
    async def _execute(self) -> None:
        engine = self.app.engine
        view = self.query_one("#run-view", RunView)
        self.state = "running"
        try:
            run = self.run
            if run.pending:
                run = await self._wait_for_approval(view)
                if run is None:
                    return
            view.start(run.title, run.target_s, run_id=self.run_id, hosts=self._hosts(), steps=self._steps())
            engine.on_event = self._on_engine_event
            outcome = await engine.execute(run, self._decide)
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

    async def _wait_for_approval(self, view: RunView) -> Run | None:
        """Ask for approval (once), wait with a countdown; the run approved and allowed to
        start, or None (nothing was changed: say why)."""
        engine = self.app.engine
        self.state = "pending"
        self.app.refresh_bindings()
        if self.run.run_id is None:
            self.run = await engine.request_approval(self.run)
        run = self.run
        assert run.run_id is not None
        self.run_id = run.run_id
        self.request = request = engine.request_state(run.run_id)
        self.app.standing_changed()
        lapses = request.expires_at.timestamp() if request.expires_at else None
        requested = request.requested_at.timestamp() if request.requested_at else view.now()
        view.pending(run.title, run.run_id, request.requester, requested, [s.title for s in run.plan.steps], lapses)
        # Timestamped like the lines that follow it: once the request is answered, this is history.
        self._output(
            f"{at(requested)} · approval requested by {request.requester}. A team lead or on-call approves it "
            f"in their console (a on the {run.environment} panel) or with:"
        )
        self._output(f"  rollback-console approve {run.run_id}")
        self._output(
            f"It lapses at {at(lapses)} UTC unless approved. d withdraws it; Esc leaves this screen (the request "
            "stays on the dashboard, and if it is approved while you are away the console asks before it runs)."
        )

        def seen(state: RequestState) -> None:
            self.request = state

        state = await engine.wait_for_approval(run, on_tick=seen)
        self.request = state
        self.app.standing_changed()
        if state.status != "approved":
            view.lapses_at = None
            view.state = f"[$warning]{esc(state.describe())}[/] — nothing was changed"
            view.tick()
            self._output(f"{at(view.now())} · {state.describe()}: nothing was changed")
            return None
        view.lapses_at = None
        approved_at = state.approved_at.timestamp() if state.approved_at else view.now()
        self._output(f"{at(approved_at)} · approved by {state.approver}")
        run = self.run = run.approved(state.approver or "?", engine.who.user)
        if not self.is_current and not await self._start_now(state):
            view.state = (
                f"[$success]approved by {esc(state.approver)}[/] — not started: start it from the dashboard "
                f"(a on the {esc(run.environment)} panel) before it lapses"
            )
            view.tick()
            self._output(f"{at(view.now())} · not started now; start it from the dashboard before it lapses")
            return None
        self.state = "running"
        self.app.refresh_bindings()
        view.reset()
        return run

    async def _start_now(self, state: RequestState) -> bool:
        """Approved while the requester is elsewhere: ask before it runs (and show it if so)."""
        self.state = "asking"
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        question = (
            f"Request {self.run_id} ({self.run.title} on {self.run.environment}) was approved by {state.approver}. "
            f"Start it now? It runs exactly the plan you confirmed and {state.approver} approved, on this screen. "
            "Later: it waits for you (a on the dashboard) until it lapses."
        )
        self.app.push_screen(
            Choice("Your request was approved", question, yes="Start it (y)", no="Later (Esc)"),
            lambda yes: future.set_result(bool(yes)),
        )
        go = await future
        if go:
            self.app.action_watch()  # this screen, in front
        return go

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
        if self.checklist_requested and self.run_id and self.is_current and self.outcome:
            self.call_later(self.action_checklist)
        elif not self.is_current and self.outcome:
            self.notify(
                f"Run {self.run_id} on {self.run.environment}: {self.outcome}. Press w to see it.",
                severity="information" if self.outcome == "succeeded" else "warning",
                timeout=15,
            )
        self.app.run_worker(self.app.probe_now(self.run.environment), exit_on_error=False)
        self.app.standing_changed()
        self.app.refresh_bindings()

    def _hosts(self) -> list[str]:
        return [h.name for h in self.app.config.environment(self.run.environment).hosts]

    def _steps(self) -> list[tuple[str, str]]:
        if self.run.resume is not None and not self.run.plan.steps:
            steps = self.run.resume.plan.get("steps") or []
            return [(s["id"], s["title"]) for s in steps if isinstance(s, dict)]
        return [(s.id, s.title) for s in self.run.plan.steps]

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

    def action_withdraw(self) -> None:
        if self.state != "pending" or not self.run_id:
            return
        run_id = self.run_id

        def chosen(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.app.engine.withdraw(run_id)
            except RunRefused as exc:
                self.notify(str(exc), severity="error", timeout=15)
                return
            self.notify(f"Request {run_id} withdrawn: it will not run.", timeout=8)

        self.app.push_screen(
            Choice(
                "Withdraw the request?",
                f"Request {run_id} ({self.run.title} on {self.run.environment}) will not run: it is journaled as "
                f"withdrawn by {self.app.engine.who.user}. Nothing has changed on {self.run.environment}.",
                yes="Withdraw (y)",
                no="Keep it (Esc)",
            ),
            chosen,
        )

    def action_leave(self) -> None:
        if self.state == "pending":  # nothing runs unattended: leaving is safe, no question
            self.app.pop_screen()
            self.notify(
                f"Request {self.run_id} stays pending on the dashboard; w brings this screen back. If it is "
                "approved while you are elsewhere, the console asks before it runs.",
                timeout=10,
            )
            return
        if not self.running:
            self.app.pop_screen()
            return
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
