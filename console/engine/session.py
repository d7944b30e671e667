"""A rollback from request to record: authorize, lock, journal (write-ahead), notify, run.

The CLI and the console both drive rollbacks through ``Engine`` and one ``Run`` object
(console/engine/run.py); they differ only in how they show events and answer a failed
step. Approvals live in console/engine/approvals.py (mixed in here).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from console import failpoints, notify
from console.config.model import Config, Environment
from console.engine import preview as previews
from console.engine import standing
from console.engine.approvals import APPROVAL_POLL_S, ApprovalDesk
from console.engine.locking import RunRefused, holder_gone, run_lock
from console.engine.plan import Plan, PlanCatalogue, PlanError, RunContext
from console.engine.preview import Confirmed, PlanPreview
from console.engine.run import Run, RunRequest
from console.engine.runner import Decide, Progress, Runner, RunResult, UndoState, abort_on_failure
from console.events import Event
from console.journal import Journal, JournalError, RunRecorder, RunSummary, Who, known_secrets
from console.lock import BrokenLock, EnvironmentLock, LockError, LockHolder
from console.probes.collect import Prober
from console.runbook import checklist
from console.runbook.authz import Authorization, AuthorizationError, authorize, policy_of
from console.runbook.matrix import Recommendation, evaluate, matrix_of
from console.runbook.people import people_of
from console.runbook.serialize import recommendation_dict
from console.transport.base import TransportError

PRE_RUN_EVIDENCE_S = 2.0  # longest the run waits for its "before" snapshot


__all__ = [
    "APPROVAL_POLL_S",
    "Engine",
    "Run",
    "RunOutcome",
    "RunRefused",
    "RunRequest",
    "holder_gone",
    "new_run_id",
]


@dataclass
class RunOutcome:
    run_id: str
    result: RunResult
    authorization: Authorization


def new_run_id() -> str:
    return f"r-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class Engine(ApprovalDesk):
    """One per console process. ``on_event`` sees every event as it is journaled (in order;
    the runner waits until it is on disk before the next step acts)."""

    def __init__(
        self,
        config: Config,
        *,
        plans: PlanCatalogue,
        prober: Prober | None = None,
        on_event: Callable[[Event], None] | None = None,
        who: Who | None = None,
    ) -> None:
        self.config = config
        self.plans = plans  # the runbook's plans: the engine runs steps, it does not choose them
        self.who = who or Who.current()
        self.journal = Journal(config.journal_path, secrets=known_secrets(config), who=self.who)
        self.prober = prober or Prober(config)
        self._own_prober = prober is None
        self.on_event = on_event or (lambda e: None)

    async def close(self) -> None:
        if self._own_prober:
            await self.prober.close()

    # --- planning -----------------------------------------------------------------------
    def resolve(self, request: RunRequest) -> RunRequest:
        """The request as it will run: a restore names the run it puts back, and says why."""
        if request.action != "restore":
            return request
        run = self.restorable(request)
        return replace(
            request,
            restores=run.run_id,
            reason=request.reason or f"restore of {run.run_id} ({run.reason or run.title})",
        )

    def plan(self, request: RunRequest) -> Plan:
        env = self.config.environment(request.environment)
        try:
            if request.action == "restore":
                return self.restore_plan(env, self.restorable(request))
            return self.plans.build(request.action, env, self.config, request.options)
        except PlanError as exc:
            raise RunRefused(str(exc)) from None

    def context(self, run_id: str, env: Environment, emit: Callable[[Event], None], options: dict) -> RunContext:
        return RunContext(
            run_id, self.config, env, self.prober.pool, self.prober, emit=emit, options=options, plans=self.plans
        )

    async def prepare(self, request: RunRequest, *, recommendation: Recommendation | None = None) -> Run:
        """The run the operator is about to confirm: its plan and preview, changing nothing.
        ``run.refusal()`` says why it must not run (flags still on for a database rollback,
        nothing to change). Confirm it (``run.confirm()``) before ``execute``: the run does
        not start if what it is about to do differs from what was confirmed."""
        # Both may read the journal (a restore's run): off the event loop.
        request = await asyncio.to_thread(self.resolve, request)
        plan = await asyncio.to_thread(self.plan, request)
        return Run(request, plan, await self._preview(request, plan), recommendation=recommendation)

    async def preview(self, request: RunRequest) -> PlanPreview:
        """What the request would do, changing nothing (``prepare`` keeps it with its run)."""
        run = await self.prepare(request)
        assert run.preview is not None
        return run.preview

    async def _preview(self, request: RunRequest, plan: Plan) -> PlanPreview:
        env = self.config.environment(request.environment)
        ctx = self.context(previews.RUN_ID_PLACEHOLDER, env, lambda e: None, request.options)
        return await previews.preview(ctx, plan)

    def again(self, summary: RunSummary, *, undo: bool = False) -> Run:
        """Resume (or undo) a journaled run a crash, a kill or a failed step left behind."""
        request = request_of(summary)
        return Run(
            request,
            self.plan(request),
            authorization=authorization_of(summary),
            run_id=summary.run_id,
            resume=summary,
            undo=undo,
        )

    async def start_approved(self, run_id: str) -> Run:
        """An approved request, ready for its requester to start: previewed afresh, held to
        the preview that was confirmed and approved."""
        summary, state = self.startable(run_id)
        data = state.data or {}
        request = RunRequest(
            summary.env or "",
            state.action,
            reason=state.request_reason,
            options=dict(data.get("options") or {}),
            declared=tuple(str(d) for d in data.get("declared") or ()),
            restores=data.get("restores") if isinstance(data.get("restores"), str) else None,
            drill=state.drill,
        )
        plan = self.plan(request)
        run = Run(
            request,
            plan,
            await self._preview(request, plan),
            confirmed=Confirmed(state.preview_text, state.preview_digest or ""),
            run_id=summary.run_id,
            requested=True,
        )
        return run.approved(state.approver or "?", self.who.user)

    def restorable(self, request: RunRequest) -> RunSummary:
        """The run a restore puts back: the one named, else the latest that changed something."""
        if request.restores:
            run = self.journal.run(request.restores)
            if run.env != request.environment:
                raise RunRefused(f"run {run.run_id} was on {run.env}, not {request.environment}")
            return run
        runs = self.journal.runs(request.environment, drills=request.drill or self.config.drill)
        # A run a later restore already put back is done with; so is one that changed
        # nothing (e.g. refused at its first check): look further back for the one to restore.
        found = standing.rolled_back(self.config, self.plans, runs, request.environment)
        if found is None:
            raise RunRefused(f"no rollback on {request.environment} in the journal has anything left to restore")
        return found

    def restore_plan(self, env: Environment, run: RunSummary) -> Plan:
        original = self.plans.build(run.action or "", env, self.config, run.plan.get("options") or {})
        # Finished steps by their facts; a step a kill cut off by its intent (the steps that
        # put things back look at the actual state before they act).
        steps = self.plans.undo_steps(original, run.undo_facts())
        if not steps:
            raise RunRefused(f"run {run.run_id} changed nothing that can be put back")
        return Plan(
            action="restore",
            environment=env.name,
            title=f"Restore what run {run.run_id} ({run.title}) changed",
            steps=(*steps, self.plans.validation()),
            target=original.target,
            target_s=original.target_s,
            data_loss="None",
            reversible="Yes (roll back again)",
            notes=(_restore_note(run.run_id, steps),),
        )

    # --- authorization ------------------------------------------------------------------
    def authorize(self, request: RunRequest) -> Authorization:
        env = self.config.environment(request.environment)
        try:
            policy = policy_of(env)
            return authorize(
                env.kind,
                self.who.user,
                request.approved_by,
                request.emergency,
                request.reason,
                approval_required=policy[0],
                emergency_levels=policy[1],
            )
        except AuthorizationError as exc:
            raise RunRefused(str(exc)) from None

    # --- running ------------------------------------------------------------------------
    async def execute(self, run: Run, decide: Decide = abort_on_failure) -> RunOutcome:
        """Run (or resume, or undo) ``run`` under the environment's lock, recording everything.

        Under the lock the plan is previewed again; if it differs from ``run.confirmed``, the
        run is refused before any change. A fresh run that must not start (a refusal a step
        knows beforehand, nothing to change, a request no longer approved) is refused the
        same way: RunRefused, never a run in the history."""
        authorization = run.authorization or self.authorize(run.request)
        if not authorization.allowed:
            raise RunRefused(authorization.describe(run.run_id))
        run = replace(run, authorization=authorization, run_id=run.run_id or new_run_id())
        assert run.run_id is not None
        env = self.config.environment(run.environment)

        def halt(error: str) -> None:  # no silent runs: the runner halts at the next step
            ctx.halt = error

        # Events are journaled off the event loop, in order; the runner awaits ctx.journaled()
        # before a step acts, so what it emitted (an intent above all) is on disk by then.
        record = RunRecorder(self.journal, env.name, on_error=halt)

        def emit(event: Event) -> None:
            record(event)
            self.on_event(event)

        ctx = self.context(run.run_id, env, emit, run.request.options)
        ctx.journaled = record.durable
        if run.resume is not None:
            ctx.facts, ctx.intents = run.resume.facts(), run.resume.intents()
        try:
            transport = await self.prober.pool.get(env.hosts[0])
        except TransportError as exc:
            raise RunRefused(f"cannot reach {env.hosts[0].name} to take the rollback lock: {exc}") from None
        about = {"action": run.plan.action, "resume": run.resume is not None, "undo": run.undo}
        async with run_lock(self.journal, env, transport, run.run_id, about):
            return await self._locked(run, decide, ctx)

    async def break_lock(self, environment: str, reason: str, *, force: bool = False) -> tuple[BrokenLock | None, str]:
        """Break the environment's lock deliberately (the `unlock` command) and journal it.

        Only a lock whose holder is gone (stale heartbeat, or a dead process on this machine)
        is broken, unless ``force``. Returns what was broken (None: not locked) and why."""
        env = self.config.environment(environment)
        try:
            transport = await self.prober.pool.get(env.hosts[0])
        except TransportError as exc:
            raise RunRefused(f"cannot reach {env.hosts[0].name} to look at the rollback lock: {exc}") from None
        lock = EnvironmentLock.for_environment(env, transport, LockHolder.current())
        try:
            info = await lock.inspect()
            if info is None:
                return None, "not locked"
            why = holder_gone(info)
            if why is None:
                if not force:
                    raise RunRefused(
                        f"{info.describe()} It is neither stale nor held by a process known to be gone, so it "
                        "was not broken. If you are sure that run is dead, pass --force."
                    )
                why = "forced by the operator: the holder was not known to be gone"
            broken = await lock.break_lock(reason, expected_token=info.token)
        except LockError as exc:
            raise RunRefused(str(exc)) from None
        if broken is None:
            return None, "not locked"
        await self.journal.append_async(
            "lock_broken", run=info.run_id, env=env.name, data={**broken.to_dict(), "why": why, "forced": force}
        )
        return broken, why

    async def _locked(self, run: Run, decide: Decide, ctx: RunContext) -> RunOutcome:
        request, plan, resume, undo_only = run.request, run.plan, run.resume, run.undo
        authorization = run.authorization
        assert authorization is not None
        recommendation = run.recommendation
        env = ctx.env
        start = time.monotonic()

        evidence: list[str] = []

        async def recommend() -> Recommendation | None:
            if recommendation is not None or resume is not None:
                return recommendation
            try:
                # Evidence for the record, but a slow service must not delay the rollback itself.
                snapshot = await asyncio.wait_for(self.prober.snapshot(env, database=False), PRE_RUN_EVIDENCE_S)
            except TimeoutError:
                evidence.append(
                    f"the probes got no full answer within {PRE_RUN_EVIDENCE_S:g}s before the run "
                    f"(the functional probe slower than {PRE_RUN_EVIDENCE_S:g}s): not waited for"
                )
                return None
            except Exception as exc:  # the record is better with it, but not worth a failed start
                evidence.append(f"no snapshot before the run: {type(exc).__name__}: {exc}")
                return None
            return evaluate(matrix_of(self.config, env), snapshot, set(request.declared))

        # Both only read: the state before the run for the record, and what each step will do.
        preview_ctx = self.context(previews.RUN_ID_PLACEHOLDER, env, lambda e: None, request.options)
        recommendation, now = await asyncio.gather(recommend(), previews.preview(preview_ctx, plan))
        if resume is None and not undo_only:
            await asyncio.to_thread(self._refuse_unless_still_approved, run)
            await self._refuse_if_not_as_confirmed(run, now)
        await self.journal.append_async(
            "run_started",
            run=ctx.run_id,
            env=env.name,
            data={
                "action": plan.action,
                "options": request.options,
                "reason": request.reason,
                "restores": request.restores,
                "declared": list(request.declared),
                "authorization": authorization.to_dict(),
                "drill": request.drill or self.config.drill,
                "resumed": resume is not None,
                "undo": undo_only,
                "plan": {
                    "title": plan.title,
                    "target": plan.target,
                    "target_s": plan.target_s,
                    "data_loss": plan.data_loss,
                    "reversible": plan.reversible,
                    "options": request.options,
                    "steps": [
                        {
                            "id": p.step.id,
                            "title": p.step.title,
                            "scope": p.step.scope,
                            "preview": "\n".join(f"[{', '.join(h)}]\n{t}" if h != ("*",) else t for h, t in p.groups),
                        }
                        for p in now.steps
                    ],
                    "preview_digest": now.digest(),
                },
                "confirmed_digest": run.confirmed.digest if run.confirmed else None,
                "requested": run.requested,
                "recommendation": recommendation_dict(recommendation) if recommendation else None,
                "evidence": evidence,
            },
        )
        self.on_event(Event("run_started", ctx.run_id, message=plan.title, data={"plan": plan.title}))
        await self._notify(
            "emergency_override" if authorization.notify_now else "run_started",
            ctx.run_id,
            env.name,
            f"{'Undo of' if undo_only else 'Rollback started:'} {plan.title} on {env.name} "
            f"by {self.who.user} — {authorization.describe(ctx.run_id)}",
            {"reason": request.reason or "—", "run": ctx.run_id},
        )
        failpoints.hit("run/after-start")
        runner = Runner(ctx, plan, decide, progress=Progress(resume.progress()) if resume else None)
        if undo_only:
            earlier = (
                UndoState(resume.progress("undo"), resume.facts("undo"), resume.intents("undo")) if resume else None
            )
            result = await runner.undo(earlier)
            if result.outcome == "succeeded":
                result.outcome = "undone"
        else:
            result = await runner.run()
        result.duration_s = time.monotonic() - start
        await ctx.journaled()  # the run's last events on disk, as at every crash point
        failpoints.hit("run/before-finish")
        await self.journal.append_async(
            "run_finished",
            run=ctx.run_id,
            env=env.name,
            data={
                "outcome": result.outcome,
                "duration_s": round(result.duration_s, 3),
                "message": result.message,
                "failed_hosts": list(result.failed_hosts),
                "not_started": list(result.not_started),
                "target_s": plan.target_s,
            },
        )
        await self._notify(
            "run_finished",
            ctx.run_id,
            env.name,
            f"Rollback {result.outcome}: {plan.title} on {env.name} in {result.duration_s:.0f}s",
            {"outcome": result.outcome, "run": ctx.run_id},
        )
        with contextlib.suppress(JournalError):
            await asyncio.to_thread(checklist.tick_automatic, self.config, self.journal, ctx.run_id)
        self.on_event(
            Event(
                "run_finished",
                ctx.run_id,
                message=result.outcome,
                data={"outcome": result.outcome, "duration_s": round(result.duration_s, 3)},
            )
        )
        failpoints.hit("lock/before-release")
        return RunOutcome(ctx.run_id, result, authorization)

    def _refuse_unless_still_approved(self, run: Run) -> None:
        """A requested run starts only while its request is approved (not withdrawn, not
        lapsed, not started by another console of its requester)."""
        if not run.requested or run.run_id is None:
            return
        try:
            state = self.expire_if_lapsed(self.request_state(run.run_id))
            why = None if state.status == "approved" else f"request {run.run_id} is {state.describe()}"
        except RunRefused as exc:
            why = str(exc)
        if why:
            why += "; nothing was changed"
            self.journal.append("run_refused", run=run.run_id, env=run.environment, data={"why": why})
            raise RunRefused(why)

    async def _refuse_if_not_as_confirmed(self, run: Run, now: PlanPreview) -> None:
        """Under the lock, before anything changes: the plan must still be what the operator
        confirmed, and must have something to do. Else refuse (journaled, not a run)."""
        why = None
        if run.confirmed is not None:
            difference = run.confirmed.difference(now)
            if difference:
                again = (
                    f"Withdraw request {run.run_id} and request it again."
                    if run.requested
                    else "Look at the plan again and confirm it anew."
                )
                what = "the preview you confirmed" + (" and that was approved" if run.requested else "")
                why = (
                    f"what would run now differs from {what} (it changed in between); nothing was changed. "
                    f"{again}\n{difference}"
                )
        why = why or now.why_not()
        if why:
            assert run.run_id is not None
            await self.journal.append_async(
                "run_refused", run=run.run_id, env=run.environment, data={"action": now.plan.action, "why": why}
            )
            raise RunRefused(why)

    async def _notify(self, event: str, run_id: str, env: str, text: str, fields: dict[str, str]) -> None:
        """Webhook; a failure is recorded, never blocks (bounded by the webhook timeout)."""
        if self.config.notifications.webhook is None:
            return
        result = await notify.notify(self.config.notifications, event, text, fields, client=self.prober.client)
        with contextlib.suppress(JournalError):
            await self.journal.append_async(
                "notified" if result.ok else "notify_failed", run=run_id, env=env, data=result.to_dict()
            )

    async def notify_escalation(self, env: str, level: int, reason: str = "") -> notify.NotifyResult:
        contacts, escalation = people_of(self.config, env)
        lvl = next(lv for lv in escalation if lv.level == level)
        text = notify.escalation_text(lvl, contacts, environment=env, reason=reason)
        result = await notify.notify(
            self.config.notifications, "escalation", text, {"level": str(level)}, client=self.prober.client
        )
        await self.journal.append_async(
            "notified" if result.ok else "notify_failed", env=env, data={**result.to_dict(), "escalation_level": level}
        )
        return result


def _restore_note(run_id: str, steps: list) -> str:
    """What this restore puts back, in the operator's words."""
    ids = {s.id for s in steps}
    parts = []
    if "edit-env" in ids:
        parts.append("each flag line byte for byte as it was")
    if "code-back" in ids:
        parts.append("the code on the commit it had")
    if "db-restore" in ids:
        parts.append("migration 004 from the kept copy (columns, values, indexes)")
    return f"Puts back {', '.join(parts) or 'what it changed'} before {run_id}."


def request_of(run: RunSummary) -> RunRequest:
    """Rebuild the request of a journaled run (to resume or undo it)."""
    started = standing.started_data(run)
    return RunRequest(
        environment=run.env or "",
        action=run.action or "",
        reason=run.reason,
        options=started.get("options") or {},
        restores=started.get("restores"),
        drill=run.drill,
    )


def authorization_of(run: RunSummary) -> Authorization:
    a = run.authorization or {}
    return Authorization(
        mode=a.get("mode", "self-service"),
        operator=a.get("operator", run.operator or ""),
        approver=a.get("approver"),
        emergency_level=a.get("emergency_level"),
        reason=a.get("reason"),
        post_hoc_review=bool(a.get("post_hoc_review")),
    )
