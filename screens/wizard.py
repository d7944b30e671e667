"""The rollback wizard: assess → plan → authorize → run → validate → checklist → record.

It drives the same Engine and the same ``Run`` as `rollback-console rollback`; only the
face differs. A restore (``restore=True``) takes the same path from the plan on: preview
→ authorize → confirm.
"""

from __future__ import annotations

import re

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    ContentSwitcher,
    Input,
    RadioButton,
    RadioSet,
    SelectionList,
    Static,
)

from console.engine.run import Run, RunRequest
from console.engine.session import RunRefused
from console.runbook.authz import MIN_REASON_WORDS, Authorization, same_person
from screens import format as fmt
from screens.modals import ConfirmRollback
from screens.state import LiveEnvironment
from screens.widgets.footer import ConsoleFooter
from screens.widgets.hanging import Hanging
from screens.widgets.header import ConsoleHeader
from screens.widgets.marked import MarkedRadioButton, MarkedSelectionList

PAGES = ("assess", "plan", "authorize")
PAGE_TITLES = {"assess": "1 Assess", "plan": "2 Plan", "authorize": "3 Authorize"}
RESTORE_TITLES = {"plan": "1 Plan", "authorize": "2 Authorize"}


class RollbackWizard(Screen):
    FORM = True  # letters are typed into fields here, never taken as the console's keys
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", id="wizard.next"),
        Binding("ctrl+b", "back", "Back", id="wizard.back"),
        Binding("escape", "leave", "Leave", id="wizard.leave"),
    ]

    def __init__(self, live: LiveEnvironment, *, restore: bool = False, restores: str | None = None) -> None:
        """``restore``: put back what a rollback changed (``restores``: that run; None: the
        latest on the environment that changed something)."""
        super().__init__()
        self.live = live
        self.env = live.env
        self.restore, self.restores = restore, restores
        self.page = "assess"
        self.run: Run | None = None  # prepared: the plan and the preview the operator is shown

    @property
    def plan(self):  # type: ignore[no-untyped-def]
        return self.run.plan if self.run is not None else None

    # --- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield Static("", id="wizard-steps")
        with ContentSwitcher(initial="assess", id="pages"):
            with VerticalScroll(id="assess", classes="wizard-page"):
                yield Static("", id="assess-head")
                yield Static(
                    "[b]What the probes see[/b] (decision matrix rows lit by live symptoms)", classes="section-title"
                )
                yield Static("", id="symptoms")
                yield Static(
                    "[b]What only a person can judge[/b] — select what you see (Space)", classes="section-title"
                )
                yield MarkedSelectionList(id="declared")
                yield Static("[b]Rollback[/b]", id="action-title", classes="section-title")
                with RadioSet(id="action"):
                    for action in self.live.profile.rollbacks:  # the profile's, in its order
                        yield MarkedRadioButton(action.short_title or action.title, id=f"action-{action.id}")
                yield Static("[b]Reason[/b] (goes into the journal and the history table)", classes="section-title")
                yield Input(id="reason", placeholder="e.g. p95 latency 6s since 03:10")
                yield Static("", id="assess-status")
                with Horizontal(classes="buttons"):
                    yield Button("Preview the plan (ctrl+n)", id="to-plan", variant="primary")
            with VerticalScroll(id="plan", classes="wizard-page"):
                yield Static("", id="plan-preview", classes="preview")
                with Horizontal(classes="buttons"):
                    yield Button("Back (ctrl+b)", id="plan-back")
                    yield Button("Authorize (ctrl+n)", id="to-authorize", variant="primary")
            with VerticalScroll(id="authorize", classes="wizard-page"):
                yield Static("", id="auth-head")
                with RadioSet(id="auth-mode"):
                    yield MarkedRadioButton(
                        "Approved by (team lead or on-call, not you):", id="auth-approved", value=True
                    )
                    yield MarkedRadioButton("Request approval: a second person approves it later", id="auth-request")
                    yield MarkedRadioButton(
                        "Emergency override (P0/P1): run now, notify, review afterwards", id="auth-emergency"
                    )
                yield Input(id="approver", placeholder="Approved by: the approver's name")
                with RadioSet(id="emergency-level"):
                    yield MarkedRadioButton("P0", id="level-P0", value=True)
                    yield MarkedRadioButton("P1", id="level-P1")
                yield Input(id="emergency-reason", placeholder="Emergency reason: what is broken (3 words or more)")
                yield Static("", id="auth-status")
                with Horizontal(classes="buttons"):
                    yield Button("Back (ctrl+b)", id="auth-back")
                    yield Button("Run… (ctrl+n)", id="to-run", variant="error")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        if self.restore:
            self.title = f"Restore — {fmt.env_title(self.env)}"
            for button in ("#plan-back",):
                self.query_one(button).display = False
            self._preview()
            return
        self.title = f"Rollback wizard — {fmt.env_title(self.env)}"
        declared = self.query_one("#declared", SelectionList)
        matrix = self.app.matrix(self.env.name)
        for row in matrix.rows:
            if row.declared:
                hint = f"{row.symptom} → {row.advice or matrix.title(row.action)} ({row.severity})"
                declared.add_option((hint, row.symptom, row.symptom in self.live.declared))
        self.app.env_updated.subscribe(self, self._updated)
        self._assess(select=True)
        self._show("assess")
        self.query_one("#declared").focus()

    def _show(self, page: str) -> None:
        self.page = page
        self.refresh_bindings()
        self.query_one("#pages", ContentSwitcher).current = page
        titles = RESTORE_TITLES if self.restore else PAGE_TITLES
        marks = [f"[b reverse] {t} [/]" if p == page else f" {t} " for p, t in titles.items()]
        rest = " › 3 Run › 4 Validate" if self.restore else " › 4 Run › 5 Validate › 6 Checklist"
        self.query_one("#wizard-steps", Static).update(" › ".join(marks) + rest)

    # --- 1 assess -----------------------------------------------------------------------
    def _updated(self, name: str) -> None:
        if name == self.env.name and self.page == "assess" and self.is_current:
            self._assess(select=False)

    def _assess(self, *, select: bool) -> None:
        live = self.live
        rec = live.recommendation
        head = f"[b]{fmt.esc(self.env.name)}[/b] ({self.env.kind}) — recommended: {fmt.recommendation_line(rec)}"
        if rec and rec.advice:
            head += f"\n  {fmt.esc(rec.advice)}"
        self.query_one("#assess-head", Static).update(head)
        lines = []
        for f in rec.findings if rec else []:
            if f.row.declared:
                continue
            mark = "[reverse $error] ● [/]" if f.lit else "[$text-muted] · [/]"
            lines.append(f"{mark} {fmt.esc(f.row.symptom):<28} {fmt.esc(f.evidence)}")
        if live.snapshot is not None and lines:  # which round these are, and if later ones failed
            when = f"{fmt.at(live.snapshot.taken_at)} UTC"
            if live.probe_error:
                said = f"the latest probe round failed ({fmt.esc(live.probe_error)}): these are from {when}"
                lines.insert(0, f"[$error]{said}[/]")
            else:
                lines.insert(0, f"[$text-muted]probe round at {when}[/]")
        self.query_one("#symptoms", Static).update("\n".join(lines) or "[$text-muted]probing…[/]")
        recommended = rec.action if rec and rec.action in self._rollbacks() else None
        if rec and rec.changes_nothing:
            recommended = None  # in effect (or in every env file) already: choosing it again would change nothing
        chosen = self._action()
        if recommended and (select or chosen is None):
            # Nothing chosen yet: a recommendation that appears while this page is open is
            # pre-selected as one there at the start is; a choice already made is kept.
            self.query_one(f"#action-{recommended}", RadioButton).value = True
            chosen = recommended
            reason = self.query_one("#reason", Input)
            if not reason.value:
                reason.value = "; ".join(f"{f.row.symptom} ({f.evidence})" for f in rec.lit)[:200]
        self.query_one("#action-title", Static).update(self._action_title(recommended, chosen))

    def _action_title(self, recommended: str | None, chosen: str | None) -> str:
        def title(action: str) -> str:
            found = next(a for a in self.live.profile.rollbacks if a.id == action)
            return fmt.esc(found.short_title or found.title)  # as the list below names it

        if recommended and chosen == recommended:
            return f"[b]Rollback[/b] — the recommended one ({title(recommended)}) is selected"
        if recommended and chosen:
            return f"[b]Rollback[/b] — recommended: {title(recommended)}; you chose {title(chosen)}"
        rec = self.live.recommendation
        if rec and rec.in_effect and rec.action:
            done = f"[b]Rollback[/b] — the recommended one ({title(rec.action)}) is already in effect"
            return f"{done}, yet the symptom is there: escalate (Esc, then e), or " + (
                f"choose another: you chose {title(chosen)}" if chosen else "choose another yourself (↑↓ then Enter)"
            )
        if rec and rec.in_files and rec.action:
            done = f"[b]Rollback[/b] — the recommended one ({title(rec.action)}) is in every env file already"
            return f"{done}, but {rec.not_taken_said}: restart it (Troubleshooting), or " + (
                f"choose another: you chose {title(chosen)}" if chosen else "choose another yourself (↑↓ then Enter)"
            )
        if chosen:
            return f"[b]Rollback[/b] — none is recommended now; you chose {title(chosen)}"
        return "[b]Rollback[/b] — none is recommended now: choose one yourself (↑↓ then Enter)"

    @on(RadioSet.Changed, "#action")
    def _chose(self) -> None:
        self._assess(select=False)  # the heading says what is chosen against what is recommended

    @on(SelectionList.SelectedChanged, "#declared")
    def _declared(self) -> None:
        self.live.declared = set(self.query_one("#declared", SelectionList).selected)
        self.app.publish(self.env.name)
        rec = self.live.recommendation
        if rec and rec.action in self._rollbacks() and not rec.changes_nothing:
            self.query_one(f"#action-{rec.action}", RadioButton).value = True
        self._assess(select=False)

    def _rollbacks(self) -> set[str]:
        return {a.id for a in self.live.profile.rollbacks}

    def _action(self) -> str | None:
        pressed = self.query_one("#action", RadioSet).pressed_button
        return pressed.id.removeprefix("action-") if pressed and pressed.id else None

    # --- 2 plan -------------------------------------------------------------------------
    def _to_plan(self) -> None:
        status = self.query_one("#assess-status", Static)
        if self._action() is None:
            status.update(
                "[$error]Choose a rollback first:[/] Tab to the Rollback list, ↑↓ to the one you want, "
                "Enter to choose it."
            )
            self.query_one("#action").focus()
            return
        status.update("")
        self._preview()

    def _request(self) -> RunRequest:
        if self.restore:
            return RunRequest(self.env.name, "restore", restores=self.restores, drill=self.app.is_drill)
        action = self._action()
        assert action is not None
        return RunRequest(
            self.env.name,
            action,
            reason=self.query_one("#reason", Input).value.strip(),
            declared=tuple(sorted(self.live.declared)),
            drill=self.app.is_drill,
        )

    @work(exclusive=True, group="wizard-preview", exit_on_error=False)
    async def _preview(self) -> None:
        target = self.query_one("#plan-preview", Static)
        target.update("[$text-muted]reading the env files, the repository and the database to show exact changes…[/]")
        self._show("plan")
        self.run = None
        try:
            run = await self.app.engine.prepare(self._request(), recommendation=self.live.recommendation)
        except RunRefused as exc:
            target.update(f"[$error]{fmt.esc(exc)}[/]")
            return
        self.run = run
        refused = run.refusal()
        text = fmt.esc(run.preview_text()) + (f"\n\n[$error]{fmt.esc(refused)}[/]" if refused else "")
        target.update(Hanging(text))  # a wrapped diff line stays in its column
        # The plan is read from its top; the button below takes the keys without scrolling to
        # it (scrolled or not used to depend on whether the long preview was laid out yet).
        self.query_one("#to-authorize", Button).focus(scroll_visible=False)
        self.query_one("#plan", VerticalScroll).scroll_home(animate=False)

    # --- 3 authorize --------------------------------------------------------------------
    def _authorize_page(self) -> None:
        production = self.env.is_production
        assert self.plan is not None
        about = (
            f"You are about to run [b]{fmt.esc(self.plan.title)}[/b] on [b]{fmt.esc(self.env.name)}[/b] "
            f"(runbook target {fmt.esc(self.plan.target)}; data loss: {fmt.esc(self.plan.data_loss)}).\n"
            f"Reason: {fmt.esc(self.run.request.reason or '-') if self.run else '-'}\n\n"
        )
        head = about + (
            f"[b]{fmt.esc(self.env.name)}[/b] is [b]production[/b]: the runbook needs approval by a team lead or "
            "on-call — or, in a P0/P1 emergency, you may run now and notify at once."
            if production
            else f"[b]{fmt.esc(self.env.name)}[/b] is staging: self-service, no approval needed."
        )
        self.query_one("#auth-head", Static).update(head)
        self.query_one("#auth-mode").display = production
        self._auth_fields()
        emergency_reason = self.query_one("#emergency-reason", Input)
        if not emergency_reason.value and self.run is not None:
            emergency_reason.value = self.run.request.reason
        self.query_one("#auth-status", Static).update("")
        self._show("authorize")
        (self.query_one("#approver") if production else self.query_one("#to-run")).focus()

    @on(RadioSet.Changed, "#auth-mode")
    def _auth_fields(self) -> None:
        """Only the fields of the chosen way: the approver's name, or the emergency's level and reason."""
        mode = self.query_one("#auth-mode", RadioSet).pressed_button
        mode_id = (mode.id if mode else "auth-approved") if self.env.is_production else None
        self.query_one("#auth-status", Static).update("")  # what was missing was for the way chosen before
        self.query_one("#approver").display = mode_id == "auth-approved"
        for widget in ("#emergency-level", "#emergency-reason"):
            self.query_one(widget).display = mode_id == "auth-emergency"
        # The button says what it does: a request runs nothing until a second person approves.
        button = self.query_one("#to-run", Button)
        button.label = "Request approval… (ctrl+n)" if mode_id == "auth-request" else "Run… (ctrl+n)"
        button.refresh(layout=True)  # as wide as its new label (a label change alone keeps the width)

    def _authorization(self) -> Authorization:
        """The authorization asked for; "pending" when a second person approves it later."""
        assert self.run is not None
        changes: dict[str, object] = {"approved_by": None, "emergency": None}
        if self.env.is_production:
            mode = self.query_one("#auth-mode", RadioSet).pressed_button
            mode_id = mode.id if mode else "auth-approved"
            if mode_id == "auth-approved":
                changes["approved_by"] = self.query_one("#approver", Input).value.strip() or None
            elif mode_id == "auth-emergency":
                level = self.query_one("#emergency-level", RadioSet).pressed_button
                changes["emergency"] = (level.id or "level-P0").removeprefix("level-") if level else "P0"
                changes["reason"] = self.query_one("#emergency-reason", Input).value.strip()
        self.run = self.run.asking(**changes)
        return self.app.engine.authorize(self.run.request)

    def _requesting(self) -> bool:
        mode = self.query_one("#auth-mode", RadioSet).pressed_button
        return self.env.is_production and bool(mode and mode.id == "auth-request")

    def _refusal(self) -> str | None:
        """What is missing on this page, said in the page's own words (the field, the key)."""
        if not self.env.is_production:
            return None
        mode = self.query_one("#auth-mode", RadioSet).pressed_button
        mode_id = mode.id if mode else "auth-approved"
        user = self.app.engine.who.user
        # Said from the “Approved by” field, where the focus is: ↑↓ there do not reach the list.
        choose = "or choose “Request approval” or “Emergency override” in the list above (shift+Tab, ↑↓, Enter)"
        if mode_id == "auth-approved":
            approver = self.query_one("#approver", Input).value.strip()
            if not approver:
                return (
                    f"Type the approver's name in the “Approved by” field — a team lead or on-call, not you — {choose}."
                )
            if same_person(approver, user):
                return (
                    f"You ({user}) cannot approve your own production rollback: type a team lead's or on-call's "
                    f"name in “Approved by”, {choose}."
                )
        if mode_id == "auth-emergency":
            words = self.query_one("#emergency-reason", Input).value.split()
            if len(words) < MIN_REASON_WORDS:
                return (
                    f"An emergency override needs a reason of at least {MIN_REASON_WORDS} words saying what is "
                    "broken: type it in the “Emergency reason” field (e.g. p95 over 5 s since 14:02)."
                )
        return None

    def _confirm_and_run(self) -> None:
        if self.run is None:
            return
        status = self.query_one("#auth-status", Static)
        refusal = self._refusal()
        if refusal:
            status.update(f"[$error]{fmt.esc(refusal)}[/]")
            return
        try:
            authorization = self._authorization()
        except RunRefused as exc:
            status.update(f"[$error]{fmt.esc(console_words(str(exc)))}[/]")
            return
        if not authorization.allowed and not self._requesting():
            status.update(f"[$error]{fmt.esc(console_words(authorization.describe()))}[/]")
            return
        status.update("")
        run = self.run

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._execute(run.confirm().authorized(authorization))

        self.app.push_screen(
            ConfirmRollback(
                run.title,
                self.env.name,
                run.preview_text(),
                destructive=run.destructive,
                request_only=not authorization.allowed,
            ),
            confirmed,
        )

    # --- 4 run --------------------------------------------------------------------------
    def _execute(self, run: Run) -> None:
        from screens.run_screen import RunScreen

        self.app.start_run(RunScreen(run), replace=True)

    # --- navigation ---------------------------------------------------------------------
    def action_next(self) -> None:
        if self.page == "assess":
            self._to_plan()
        elif self.page == "plan" and self.plan is not None:
            self._authorize_page()
        elif self.page == "authorize":
            self._confirm_and_run()

    def action_back(self) -> None:
        if self.page == "plan" and not self.restore:
            self._show("assess")
        elif self.page == "authorize":
            self._show("plan")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":  # a restore starts at its plan: there is no page before it
            return not (self.restore and self.page == "plan")
        return True

    def action_leave(self) -> None:
        self.app.pop_screen()  # nothing has run yet: leaving changes nothing

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        match event.button.id:
            case "to-plan" | "to-authorize" | "to-run":
                self.action_next()
            case "plan-back" | "auth-back":
                self.action_back()

    @on(Input.Submitted, "#reason")
    def _reason_done(self) -> None:
        self.action_next()


# The engine's refusals name CLI flags; in the wizard the same thing is a field or a choice.
_CONSOLE_WORDS = (
    (re.compile(r"pass --approved-by NAME"), "type a name in “Approved by”"),
    (re.compile(r"--approved-by"), "“Approved by”"),
    (
        re.compile(r"(?:pass )?--emergency P0 --reason TEXT"),
        "choose “Emergency override” and type the “Emergency reason”",
    ),
    (re.compile(r"--emergency"), "“Emergency override”"),
    (re.compile(r'e\.g\. --reason "([^"]*)"'), r"in “Emergency reason”, e.g. \1"),
)


def console_words(text: str) -> str:
    """An engine refusal with its CLI flags named as the wizard's fields."""
    for pattern, words in _CONSOLE_WORDS:
        text = pattern.sub(words, text)
    return text
