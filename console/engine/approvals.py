"""Production approvals as a flow, for both faces: request, wait (with the time left),
approve, reject, withdraw, lapse — each journaled (see console/journal/requests.py).

Who may do what, as an incident commander expects it:

- anyone but the requester approves or rejects a pending request (self-approval is refused);
- the requester withdraws their own request at any time before it starts, reason optional;
  anyone else may withdraw it too (the requester went off shift, the incident is over), but
  only with a reason, journaled with their name;
- a request nobody started by its expiry (``[approvals] expire_after_s``) lapses: whoever
  notices first journals ``run_expired`` (the waiting face, any console, any approvals command);
- an approved request runs only when its requester starts it, at a keyboard (the waiting
  command or console, which the requester confirmed in, or ``start RUN_ID``): an approval
  alone never runs anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from console.config.model import Config
from console.engine.locking import RunRefused
from console.journal import Journal, RunNotFound, RunSummary, Who
from console.journal.records import iso
from console.journal.requests import OPEN, RequestState
from console.journal.runs import REQUEST_OUTCOMES, summarize
from console.runbook.authz import Authorization, AuthorizationError, check_approval, same_person

if TYPE_CHECKING:  # in annotations only: the dashboard's journal look loads no plans or probes
    from console.engine.run import Run

APPROVAL_POLL_S = 0.5


def clock(seconds: float) -> str:
    """Time left as people read it: 14:32, or 1:02:03."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def expire_lapsed(journal: Journal, runs: list[RunSummary]) -> list[str]:
    """Journal run_expired for each of ``runs`` (summarized from ``journal``) that is an open
    request past its expiry; their ids. Watch mode never calls this: it writes nothing."""
    lapsed = [r.request for r in runs if r.request is not None and r.outcome == "expired" and not r.request.journaled]
    return [expire_if_lapsed(journal, s).run_id for s in lapsed]


def expire_if_lapsed(journal: Journal, state: RequestState) -> RequestState:
    if state.status != "expired" or state.journaled:
        return state
    again = journal.run(state.run_id).request  # another console may have just done it
    if again is not None and not again.journaled:
        data = {"expires_at": iso(state.expires_at.timestamp()) if state.expires_at else None}
        journal.append("run_expired", run=state.run_id, env=state.env, data=data)
    return replace(state, journaled=True)


class ApprovalDesk:
    """The approvals half of ``Engine`` (mixed in: it uses the engine's config, journal, who)."""

    config: Config
    journal: Journal
    who: Who

    async def _notify(self, event: str, run_id: str, env: str, text: str, fields: dict[str, str]) -> None:
        raise NotImplementedError

    # --- asking -------------------------------------------------------------------------
    async def request_approval(self, run: Run) -> Run:
        """Journal the confirmed run as a request waiting for a second person; the run that
        comes back has its run id and waits (``wait_for_approval``)."""
        if run.confirmed is None:
            raise ValueError("a request for approval carries the preview its requester confirmed")
        from console.engine.session import new_run_id

        run_id = new_run_id()
        after_s = self.config.approvals.expire_after_s
        expires = time.time() + after_s
        request = run.request
        self.journal.append(
            "run_requested",
            run=run_id,
            env=request.environment,
            data={
                "action": request.action,
                "reason": request.reason,
                "requester": self.who.user,
                "options": request.options,
                "restores": request.restores,
                "declared": list(request.declared),
                "drill": request.drill or self.config.drill,
                "plan": {
                    "title": run.plan.title,
                    "target": run.plan.target,
                    "target_s": run.plan.target_s,
                    "steps": [s.title for s in run.plan.steps],
                },
                "preview": {"text": run.confirmed.text, "digest": run.confirmed.digest},
                "expires_at": iso(expires),
                "expire_after_s": after_s,
            },
        )
        await self._notify(
            "approval_needed",
            run_id,
            request.environment,
            f"Approval needed: {run.plan.title} on {request.environment}, requested by {self.who.user} "
            f"(reason: {request.reason or '—'}). Approve: `rollback-console approve {run_id}` "
            f"(or in the console); it lapses at {iso(expires)[11:16]} UTC.",
            {"run": run_id, "reason": request.reason or "—"},
        )
        pending = Authorization("pending", self.who.user, reason=request.reason or None)
        return replace(run, run_id=run_id, requested=True, authorization=pending)

    async def wait_for_approval(
        self,
        run: Run,
        *,
        wait_s: float | None = None,
        on_tick: Callable[[RequestState], None] | None = None,
        poll_s: float = APPROVAL_POLL_S,
    ) -> RequestState:
        """Until the request is decided (approved, rejected, withdrawn), lapses (journaled as
        run_expired), or ``wait_s`` passes (then it comes back still pending)."""
        assert run.run_id is not None
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while True:
            state = self.expire_if_lapsed(self.request_state(run.run_id))
            if state.status != "pending" or (deadline is not None and time.monotonic() >= deadline):
                return state
            if on_tick is not None:
                on_tick(state)
            pause = poll_s
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            left = state.seconds_left(time.time())
            if left is not None:
                pause = min(pause, max(0.0, left) + 0.01)
            await asyncio.sleep(pause)

    # --- deciding -----------------------------------------------------------------------
    def approve(self, run_id: str) -> RequestState:
        """A second person approves a pending request (``approve``, or the console)."""
        state = self._decidable(run_id)
        if state.status != "pending":
            raise RunRefused(f"request {state.run_id} is {state.describe()}: only a pending request is approved")
        try:
            check_approval(state.requester, self.who.user, state.run_id)
        except AuthorizationError as exc:
            raise RunRefused(str(exc)) from None
        data = {"approver": self.who.user, "requester": state.requester}
        self.journal.append("run_approved", run=state.run_id, env=state.env, data=data)
        return self._took_effect(state, "approved", "your approval")

    def reject(self, run_id: str, reason: str = "") -> RequestState:
        """A second person says no. The requester withdraws instead."""
        state = self._decidable(run_id)
        if state.status != "pending":
            raise RunRefused(f"request {state.run_id} is {state.describe()}: only a pending request is rejected")
        if same_person(state.requester, self.who.user):
            raise RunRefused(
                f"request {state.run_id} is yours: withdraw it instead (`rollback-console withdraw {state.run_id}`)"
            )
        data = {"by": self.who.user, "reason": " ".join(reason.split()), "requester": state.requester}
        self.journal.append("run_rejected", run=state.run_id, env=state.env, data=data)
        return self._took_effect(state, "rejected", "your rejection")

    def withdraw(self, run_id: str, reason: str = "") -> RequestState:
        """The requester takes the request back; anyone else only with a reason."""
        state = self._decidable(run_id)
        if state.status not in OPEN:
            raise RunRefused(f"request {state.run_id} is {state.describe()}: there is nothing to withdraw")
        reason = " ".join(reason.split())
        if not same_person(state.requester, self.who.user) and not reason:
            raise RunRefused(
                f"request {state.run_id} is {state.requester}'s: they withdraw it themselves; anyone else "
                "must say why (--reason TEXT, journaled with your name)"
            )
        data = {"by": self.who.user, "reason": reason, "requester": state.requester}
        self.journal.append("run_withdrawn", run=state.run_id, env=state.env, data=data)
        return self._took_effect(state, "withdrawn", "your withdrawal")

    # --- reading ------------------------------------------------------------------------
    def request_state(self, run_id: str) -> RequestState:
        """The request of ``run_id`` now; RunRefused when there is none, or it has started."""
        try:
            run = self.journal.run(run_id)
        except RunNotFound as exc:
            raise RunRefused(str(exc)) from None
        if run.request is None:
            raise RunRefused(f"run {run.run_id} was never a request for approval (it is {run.outcome_text()})")
        if run.outcome not in REQUEST_OUTCOMES:
            raise RunRefused(f"request {run.run_id} has started already: it is {run.outcome_text()}")
        return run.request

    def open_requests(self, environment: str | None = None) -> list[RequestState]:
        """Requests pending or approved (not started), oldest first, of this console's kind
        (drills or real). Lapsed ones are journaled as expired on the way."""
        self.expire_lapsed()
        drill = self.config.drill
        return [
            r.request
            for r in self.journal.runs(environment, drills=drill)
            if r.request is not None and r.outcome in OPEN
        ]

    def expire_lapsed(self) -> list[str]:
        """Journal run_expired for every open request past its expiry; their ids."""
        return expire_lapsed(self.journal, summarize(self.journal.records()))

    def expire_if_lapsed(self, state: RequestState) -> RequestState:
        """The request, its lapse journaled if it has lapsed and nobody journaled that yet."""
        return expire_if_lapsed(self.journal, state)

    def _decidable(self, run_id: str) -> RequestState:
        return self.expire_if_lapsed(self.request_state(run_id))

    def _took_effect(self, before: RequestState, status: str, what: str) -> RequestState:
        """Re-read: another person may have decided in the same moment; the first record wins."""
        after = self.request_state(before.run_id)
        mine = (
            after.status == status
            and ((after.approver if status == "approved" else after.by) or "").casefold() == self.who.user.casefold()
        )
        if not mine:
            raise RunRefused(
                f"request {after.run_id} was {after.describe()} before {what} was recorded: {what} has no effect"
            )
        return after

    # --- starting an approved request -------------------------------------------------------
    def startable(self, run_id: str) -> tuple[RunSummary, RequestState]:
        """The approved request ``run_id``, if this person may start it now; else RunRefused."""
        state = self.expire_if_lapsed(self.request_state(run_id))
        if state.status == "pending":
            until = f" until {iso(state.expires_at.timestamp())[11:16]} UTC" if state.expires_at else ""
            raise RunRefused(f"request {state.run_id} is still waiting for approval{until}: nothing to start yet")
        if state.status != "approved":
            raise RunRefused(f"request {state.run_id} is {state.describe()}: it will not run")
        if not same_person(state.requester, self.who.user):
            raise RunRefused(
                f"request {state.run_id} was approved for {state.requester} to run: only they start it "
                f"(anyone may withdraw it with a reason: `rollback-console withdraw {state.run_id} --reason TEXT`)"
            )
        if state.preview_digest is None:
            raise RunRefused(
                f"request {state.run_id} records no preview to hold the run to: withdraw it and request again"
            )
        return self.journal.run(state.run_id), state
