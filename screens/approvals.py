"""Approvals in the console: the requests screen where an approver approves or rejects and
a requester withdraws or starts, and starting an approved request through the same
preview → confirm path as a rollback. What the journal says about each environment, for
the dashboard, is screens/standing.py.

Who may do what is the engine's (console/engine/approvals.py); this only asks and shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from console.journal import JournalError
from console.journal.requests import RequestState
from console.runbook.authz import same_person
from screens.format import at, counted, esc
from screens.modals import Choice, TextModal, TextPrompt
from screens.standing import _ts
from screens.widgets.footer import ConsoleFooter
from screens.widgets.tables import Column, refill

if TYPE_CHECKING:
    from screens.app import RollbackConsole


def left(seconds: float | None) -> str:
    if seconds is None:
        return "never lapses"
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


# --- the requests screen ---------------------------------------------------------------------------


class RequestsScreen(Screen):
    """Open production requests: an approver approves (a) or rejects (r); a requester
    withdraws (d) or, once approved, starts (s) theirs; anyone may withdraw with a reason."""

    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="requests.back"),
        Binding("a", "approve", "Approve", id="requests.approve"),
        Binding("r", "reject", "Reject…", id="requests.reject"),
        Binding("d", "withdraw", "Withdraw…", id="requests.withdraw"),
        Binding("s", "start", "Start it", id="requests.start"),
    ]

    def __init__(self, environment: str | None = None) -> None:
        super().__init__()
        self.environment = environment
        self.requests: list[RequestState] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="requests-head")
        yield DataTable(id="requests", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="request-detail"):
            yield Static("", id="request-text")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.title = "Approval requests"
        self._load(select=self.environment)
        self.set_interval(1.0, self._tick)
        # A request started, decided or lapsed elsewhere leaves the list as soon as the
        # console's standing (read off the event loop) says so.
        self.app.env_updated.subscribe(self, self._standing_changed)
        self.query_one("#requests", DataTable).focus()

    def _standing_changed(self, environment: str) -> None:
        if self._open() != [(r.run_id, r.status, r.approver) for r in self.requests]:
            self._load()

    def _open(self) -> list[tuple[str, str, str | None]]:
        return [(r.run_id, r.status, r.approver) for r in self._from_standing()]

    def _from_standing(self) -> list[RequestState]:
        """Open requests (pending or approved, not started), oldest first, as the console's
        standing last read them from the journal."""
        found = [q for s in getattr(self.app, "standing", {}).values() for q in s.requests]
        return sorted(found, key=lambda q: q.run_id)  # run ids begin with their UTC time

    def on_screen_resume(self) -> None:
        self._load()

    def on_resize(self) -> None:
        self._fill()

    def _load(self, select: str | None = None) -> None:
        self.requests = self._from_standing()
        me = self.app.who.user
        count = len(self.requests)
        self.query_one("#requests-head", Static).update(
            f"{counted(count, 'open request')} · you are [b]{esc(me)}[/b] · a team lead or on-call approves; "
            "the requester withdraws or, once approved, starts it"
            if count
            else "No production request is waiting for approval or for its requester."
        )
        self._fill()
        if select is not None:
            rows = [i for i, r in enumerate(self.requests) if r.env == select]
            if rows:
                self.query_one("#requests", DataTable).move_cursor(row=rows[0])
        self._detail()
        self.app.refresh_bindings()

    def _fill(self) -> None:
        now = self.app.clock()
        rows = []
        for r in self.requests:
            if r.status == "pending":
                state = f"pending · lapses in {left(r.seconds_left(now))}"
            else:
                state = f"approved by {esc(r.approver)} · lapses in {left(r.seconds_left(now))}"
            rows.append((r.run_id, [f"[b]{esc(r.run_id)}[/b]", esc(r.env), esc(r.requester), state]))
        envs = max((len(r.env or "") for r in self.requests), default=3)
        columns = [
            Column("run", "Run", 22),
            Column("env", "Env", min(max(3, envs), 12)),
            Column("by", "Asked by", weight=1),
            Column("state", "State", weight=2),
        ]
        width = self.size.width or self.app.size.width
        refill(self.query_one("#requests", DataTable), width, columns, rows)

    def _tick(self) -> None:
        if self.requests:
            self._fill()
            self._detail()

    def selected(self) -> RequestState | None:
        table = self.query_one("#requests", DataTable)
        if not self.requests or table.cursor_row >= len(self.requests):
            return None
        return self.requests[table.cursor_row]

    def on_data_table_row_highlighted(self) -> None:
        self._detail()
        self.app.refresh_bindings()

    def _detail(self) -> None:
        r = self.selected()
        text = self.query_one("#request-text", Static)
        if r is None:
            text.update("")
            return
        me = self.app.who.user
        mine = same_person(r.requester, me)
        lapses = r.seconds_left(self.app.clock())
        if r.status == "pending":
            may = "d withdraw it" if mine else "a approve · r reject · d withdraw (with a reason)"
        else:
            may = "s start it · d withdraw it" if mine else "d withdraw (with a reason)"
        lines = [
            f"[b]{esc(r.title)}[/b] on [b]{esc(r.env)}[/b] — run [b]{esc(r.run_id)}[/b]",
            f"requested by {esc(r.requester)} at {at(_ts(r.requested_at))} UTC · lapses at "
            f"{at(_ts(r.expires_at))} UTC (in {left(lapses)})",
            f"reason: {esc(r.request_reason or '-')}",
            f"now: {esc(r.describe())}",
            f"you ({esc(me)}) may: {may}" + (" — you cannot approve your own request" if mine else ""),
            "",
            f"[b]What it will run[/b] (the preview {esc(r.requester)} confirmed):",
            esc(r.preview_text or "(not recorded)"),
        ]
        text.update("\n".join(lines))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        r = self.selected()
        if action in ("approve", "reject", "withdraw", "start"):
            if r is None or self.app.read_only:
                return False
            mine = same_person(r.requester, self.app.who.user)
            if action in ("approve", "reject"):
                return r.status == "pending" and not mine
            if action == "start":
                return r.status == "approved" and mine
        return True

    # --- actions ---------------------------------------------------------------------------
    def _act(self, what: str, do) -> None:  # type: ignore[no-untyped-def]
        from console.engine.session import RunRefused

        try:
            state = do()
        except (RunRefused, JournalError) as exc:
            self.notify(str(exc), severity="error", timeout=15)
        else:
            self.notify(f"Request {state.run_id} {what}.", timeout=8)
        self._load()
        self.app.standing_changed()

    def action_approve(self) -> None:
        r = self.selected()
        if r is None:
            return
        question = (
            f"{r.title} on {r.env}, requested by {r.requester} (reason: {r.request_reason or '-'}). Approved, it runs "
            f"when {r.requester} starts it: their console goes ahead if it is waiting. Your approval is journaled "
            f"with your name ({self.app.who.user})."
        )

        def chosen(yes: bool | None) -> None:
            if yes:
                self._act(
                    f"approved by {self.app.who.user}: it runs when {r.requester} starts it",
                    lambda: self.app.engine.approve(r.run_id),
                )

        self.app.push_screen(
            Choice(f"Approve request {r.run_id}?", question, yes="Approve (y)", no="Not now (Esc)"), chosen
        )

    def action_reject(self) -> None:
        r = self.selected()
        if r is None:
            return

        def answered(reason: str | None) -> None:
            if reason is not None:
                self._act("rejected: it will not run", lambda: self.app.engine.reject(r.run_id, reason))

        self.app.push_screen(
            TextPrompt(f"Reject request {r.run_id} ({r.title} on {r.env})? Why (journaled; {r.requester} sees it):"),
            answered,
        )

    def action_withdraw(self) -> None:
        r = self.selected()
        if r is None:
            return
        if same_person(r.requester, self.app.who.user):

            def chosen(yes: bool | None) -> None:
                if yes:
                    self._act("withdrawn: it will not run", lambda: self.app.engine.withdraw(r.run_id))

            self.app.push_screen(
                Choice(
                    "Withdraw your request?",
                    f"Request {r.run_id} ({r.title} on {r.env}) will not run; it is journaled as withdrawn by you.",
                    yes="Withdraw (y)",
                    no="Keep it (Esc)",
                ),
                chosen,
            )
            return

        def answered(reason: str | None) -> None:
            if reason is None:
                return
            if not reason.strip():
                self.notify(
                    "Withdrawing someone else's request needs a reason: nothing was recorded.", severity="error"
                )
                return
            self._act("withdrawn: it will not run", lambda: self.app.engine.withdraw(r.run_id, reason))

        self.app.push_screen(
            TextPrompt(
                f"Withdraw {r.requester}'s request {r.run_id}? Only with a reason (journaled with your name):",
                "e.g. the incident is over; alice is off shift",
            ),
            answered,
        )

    def action_start(self) -> None:
        r = self.selected()
        if r is not None:
            start_approved(self.app, r.run_id)

    @on(DataTable.RowSelected, "#requests")
    def _row_selected(self) -> None:
        self.query_one("#request-detail").focus()


# --- starting an approved request ------------------------------------------------------------------


def start_approved(app: RollbackConsole, run_id: str) -> None:
    """The requester starts their approved request: previewed afresh, held to what was
    confirmed and approved, confirmed once more at the keyboard, then run."""
    run = app.run_screen
    if run is not None and run.running:
        if run.run_id == run_id:
            app.action_watch()
            return
        app.notify(f"{run.describe()}: one rollback at a time in a console. Press w to follow it.", severity="warning")
        return
    _start_approved(app, run_id)


@work(group="start-approved", exit_on_error=False)
async def _start_approved(app: RollbackConsole, run_id: str) -> None:
    from console.engine.session import RunRefused
    from screens.modals import ConfirmRollback
    from screens.run_screen import RunScreen

    try:
        run = await app.engine.start_approved(run_id)
    except RunRefused as exc:
        app.notify(str(exc), severity="error", timeout=15)
        return
    assert run.confirmed is not None and run.preview is not None and run.authorization is not None
    approver = run.authorization.approver
    difference = run.confirmed.difference(run.preview)
    refusal = run.refusal()
    if difference or refusal:
        why = (
            f"What would run now differs from what you confirmed and {approver} approved (it changed in between). "
            f"Nothing was changed. Withdraw request {run_id} (d on the approval requests screen) and request it "
            f"again.\n\n{difference}"
            if difference
            else f"{refusal}"
        )
        app.push_screen(TextModal(f"Request {run_id} will not start", why))
        return

    def confirmed(yes: bool | None) -> None:
        if yes:
            app.start_run(RunScreen(run), replace=False)

    app.push_screen(
        ConfirmRollback(run.title, run.environment, run.preview_text(), destructive=run.destructive), confirmed
    )
