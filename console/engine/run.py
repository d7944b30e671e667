"""The one run object both faces drive: the CLI's rollback, restore, resume and undo, and
the console's wizard and run screen.

A ``Run`` is frozen. It carries the request, the plan, the preview the operator was
shown and the one they confirmed (with its digest), how it is authorized, and once it
exists, its run id. Each stage makes a new one (``dataclasses.replace``): nothing changes
a request or a plan behind a face's back.

    run = await engine.prepare(RunRequest("production", "quick", reason="p95 6s"))
    run = run.confirm()                                  # the operator said yes to run.preview
    run = run.authorized(engine.authorize(run.request))  # or pending: engine.request_approval(run)
    outcome = await engine.execute(run, decide)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from console.engine.plan import Plan
from console.engine.preview import Confirmed, PlanPreview
from console.journal import RunSummary
from console.runbook.authz import Authorization
from console.runbook.matrix import Recommendation


@dataclass(frozen=True)
class RunRequest:
    """What the operator asked for. Frozen: change it with ``dataclasses.replace``."""

    environment: str
    action: str  # an ACTION, or "restore"
    reason: str = ""
    approved_by: str | None = None
    emergency: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # never changed after it is made
    declared: tuple[str, ...] = ()  # symptoms only a person can judge
    restores: str | None = None  # for "restore": the run whose changes to put back
    drill: bool = False


@dataclass(frozen=True)
class Run:
    request: RunRequest
    plan: Plan
    preview: PlanPreview | None = None  # what the operator is shown (None: resume/undo of a journaled run)
    confirmed: Confirmed | None = None  # the preview they confirmed: what must still be so under the lock
    authorization: Authorization | None = None  # None: not decided yet
    run_id: str | None = None  # once requested for approval, or started
    requested: bool = False  # run_id names an approval request: it starts only while approved
    resume: RunSummary | None = None  # a journaled run to finish (or, with undo, to put back)
    undo: bool = False
    recommendation: Recommendation | None = None

    # --- for people ---------------------------------------------------------------------
    @property
    def environment(self) -> str:
        return self.request.environment

    @property
    def title(self) -> str:
        return self.plan.title

    @property
    def target(self) -> str:
        return self.plan.target

    @property
    def target_s(self) -> float | None:
        return None if self.resume is not None and self.undo else self.plan.target_s

    @property
    def destructive(self) -> bool:
        return self.plan.destructive

    @property
    def pending(self) -> bool:
        """Waiting for a second person: it may not start until approved."""
        return self.authorization is not None and not self.authorization.allowed

    def preview_text(self) -> str:
        return self.preview.text() if self.preview is not None else ""

    def refusal(self) -> str | None:
        """Why it must not run, knowable from its preview (None: it may)."""
        return self.preview.why_not() if self.preview is not None else None

    # --- stages -------------------------------------------------------------------------
    def confirm(self) -> Run:
        """The operator confirmed exactly ``self.preview``."""
        if self.preview is None:
            raise ValueError("nothing to confirm: this run has no preview")
        return replace(self, confirmed=Confirmed.of(self.preview))

    def authorized(self, authorization: Authorization) -> Run:
        return replace(self, authorization=authorization)

    def asking(self, **changes: Any) -> Run:
        """The same run with the request changed (e.g. who approved it, the emergency level)."""
        return replace(self, request=replace(self.request, **changes))

    def approved(self, approver: str, operator: str) -> Run:
        """A second person approved the request: it may start (its requester starts it)."""
        return replace(self, authorization=Authorization("approved", operator, approver=approver))
