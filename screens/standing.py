"""What the journal says about each environment (open approval requests, the rollback in
effect), kept fresh for the dashboard's panels.

Apart from the requests screen (screens/approvals.py), so that the dashboard's first
paint does not load that screen's widgets (data table, modals, the run view).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from console.journal.records import JournalError
from console.runbook.authz import same_person
from screens.format import at, esc

if TYPE_CHECKING:
    from console.engine.standing import Standing
    from console.journal import Journal
    from console.journal.requests import RequestState
    from screens.app import RollbackConsole

STANDING_EVERY_S = 2.0  # how often the journal is looked at for others' requests and decisions


def _ts(when: object) -> float | None:
    return when.timestamp() if when is not None else None  # type: ignore[attr-defined]


class StandingWatcher:
    """Keeps ``app.standing`` (environment → Standing) fresh: read in a thread, with its own
    journal reader, when the journal grows or a request is due to lapse; announces new
    requests to approvers and approvals to requesters whose console is not waiting."""

    def __init__(self, app: RollbackConsole) -> None:
        self.app = app
        self._journal: Journal | None = None
        self.busy = self.again = False
        self.read = -1  # records seen at the last look
        self.due: float | None = None  # the next lapse of an open request
        self.announced: set[tuple[str, str]] = set()
        self.first = True

    def start(self) -> None:
        self.app.set_interval(STANDING_EVERY_S, self.refresh)
        self.app.call_later(self.refresh, force=True)

    def refresh(self, force: bool = False) -> None:
        if force:
            self.read = -1
        if self.busy:
            self.again = True
            return
        self.busy = True
        # The method, not a coroutine: a worker the closing app never starts leaves nothing unawaited.
        self.app.run_worker(self._refresh, group="standing", exit_on_error=False)

    async def _refresh(self) -> None:
        try:
            new = await asyncio.to_thread(self._compute)
        except (JournalError, OSError):
            new = None  # the panels keep what they showed; the history says what is wrong
        finally:
            self.busy = False
        if new is not None:
            self._apply(new)
        if self.again:
            self.again = False
            self.refresh(force=True)

    @property
    def journal(self) -> Journal:
        """Its own reader, made on first use — in the thread that reads: the config's secrets
        are resolved there, not on the event loop."""
        if self._journal is None:
            from console.journal import Journal

            self._journal = Journal(self.app.config.journal_path, secrets=self.app.secrets, who=self.app.who)
        return self._journal

    def _compute(self) -> dict[str, Standing] | None:
        from console.engine.approvals import expire_lapsed
        from console.engine.standing import standing
        from console.journal.runs import summarize
        from console.plans import PLANS

        records = self.journal.records()
        if len(records) == self.read and (self.due is None or time.time() < self.due):
            return None
        self.app.read_drill_start(self.journal)
        self.read = len(records)
        runs = summarize(records)
        if not self.app.read_only and expire_lapsed(self.journal, runs):
            records = self.journal.records()
            self.read = len(records)
            runs = summarize(records)
        runs = [r for r in runs if self.app.of_this_console(r)]
        found = {env: standing(self.app.config, PLANS, runs, env) for env in self.app.config.environments}
        lapses = [_ts(q.expires_at) for s in found.values() for q in s.requests if q.expires_at is not None]
        self.due = min((t for t in lapses if t is not None), default=None)
        return found

    def _apply(self, new: dict[str, Standing]) -> None:
        old = self.app.standing
        self.app.standing = new
        for env, now in new.items():
            if _key(now) != _key(old.get(env)):
                self.app.env_updated.publish(env)
            for request in now.requests:
                self._announce(env, request)
        self.first = False
        self.app.refresh_bindings()

    def _announce(self, env: str, request: RequestState) -> None:
        key = (request.run_id, request.status)
        if key in self.announced:
            return
        self.announced.add(key)
        if self.first:
            return
        me = self.app.who.user
        mine = same_person(request.requester, me)
        waiting = self.app.run_screen is not None and self.app.run_screen.run_id == request.run_id
        if request.status == "pending" and not mine:
            self.app.notify(
                f"{request.requester} asks for approval: {request.title} on {env} (run {request.run_id}). "
                f"Press a on the {env} panel to review it.",
                title="Approval request",
                severity="warning",
                timeout=20,
            )
        elif request.status == "approved" and mine and not waiting:
            self.app.notify(
                f"Your request {request.run_id} on {env} was approved by {request.approver}: press a on the "
                f"{env} panel to start it.",
                title="Approved",
                timeout=20,
            )


def _key(standing: Standing | None) -> object:
    if standing is None:
        return None
    rolled = standing.rolled_back
    return (
        tuple((r.run_id, r.status, r.approver) for r in standing.requests),
        (rolled.run_id, rolled.outcome) if rolled else None,
    )


def standing_lines(app: RollbackConsole, environment: str) -> list[str]:
    """The panel's lines for what the journal says: requests (with the approve command
    whole) and the rollback in effect (with how to restore it)."""
    standing = getattr(app, "standing", {}).get(environment)
    if standing is None:
        return []
    lines = []
    for r in standing.requests:
        lapses = f" · lapses {at(_ts(r.expires_at))} UTC" if r.expires_at else ""
        if r.status == "pending":
            since = at(_ts(r.requested_at))
            lines.append(f"[reverse $warning] APPROVAL PENDING [/] by {esc(r.requester)} at {since} UTC{lapses}")
            lines.append(f"  rollback-console approve {esc(r.run_id)}  [$text-muted](a: review here)[/]")
        else:
            mine = same_person(r.requester, app.who.user)
            lines.append(
                f"[reverse $success] APPROVED [/] by {esc(r.approver)} · waits for {esc(r.requester)} to start it"
                f"{lapses}"
            )
            lines.append(f"  run {esc(r.run_id)}  [$text-muted](a: {'start it' if mine else 'review'})[/]")
    run = standing.rolled_back
    if run is not None:
        from console.engine.standing import changed_since, rolled_back_badge

        how = "" if run.outcome == "succeeded" else f" ({esc(run.outcome_text())})"
        live = getattr(app, "live", {}).get(environment)
        since = changed_since(run, live.snapshot if live is not None else None)
        by = f"by run {esc(run.run_id)} at {at(_ts(run.started_at))} UTC by {esc(run.operator or '?')}"
        badge = rolled_back_badge(run)
        if since.no_longer_in_effect:
            # The journal's last word, but not what the hosts show: said as the hosts show it.
            lines.append(f"[reverse $warning] NO LONGER IN EFFECT [/] {badge.lower()} {by}")
        else:
            style = "$accent" if run.outcome == "succeeded" else "$error"
            lines.append(f"[reverse {style}] {badge} [/] {by}")
        if not app.read_only:
            lines.append(f"  {esc(run.title)}{how}  [$text-muted](R: restore)[/]")
        else:
            lines.append(f"  {esc(run.title)}{how}")
        if (note := since.note()) is not None:
            lines.append(f"  [$warning]{esc(note)}[/]")
    return lines
