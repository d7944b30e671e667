"""Runs a plan: step by step, host by host, emitting events; stops at the first failure
and asks what to do — retry, apply the known fix, skip with a reason, undo, or abort.

Host-scoped steps that follow each other form a stage that runs per host: all hosts at
once (bounded), or rolling, a batch at a time with a health gate between batches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from console import failpoints
from console.config.model import Host
from console.engine.plan import Facts, IntentStale, Plan, RunContext, Step, StepFailed
from console.events import Event
from console.probes.collect import reachable_base, unusable_profile
from console.probes.http import probe_health
from console.profile import ProfileError, profile_of
from console.transport.base import TransportError

OUTPUT_KEPT = 8 * 1024  # characters of a step's output kept in the journal

DecisionKind = Literal["retry", "fix", "skip", "undo", "abort"]

__all__ = ["Decision", "Failure", "Progress", "RunResult", "Runner", "UndoState", "abort_on_failure"]


@dataclass(frozen=True)
class Failure:
    """A stage or step failed. ``hosts``: host name (or "*") → what went wrong."""

    step: Step
    hosts: dict[str, StepFailed]
    not_started: tuple[str, ...] = ()

    @property
    def fixable(self) -> bool:
        return any(f.remedy is not None for f in self.hosts.values())

    def describe(self) -> str:
        parts = [f"{h}: {f}" if h != "*" else str(f) for h, f in self.hosts.items()]
        return f"{self.step.title} failed — " + "; ".join(parts)


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    reason: str = ""
    by: str = ""


Decide = Callable[[Failure], Awaitable[Decision]]


async def abort_on_failure(failure: Failure) -> Decision:
    """For unattended runs: stop and leave the run to be resumed or undone."""
    return Decision("abort", "no one to ask (non-interactive)")


@dataclass
class RunResult:
    outcome: Literal["succeeded", "failed", "undone", "aborted"]
    duration_s: float
    failed_hosts: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    message: str = ""
    not_started: tuple[str, ...] = ()  # hosts a stopped stage never reached (nothing changed there)


@dataclass
class Progress:
    """Which (step, host) pairs are done: restored from the journal when resuming."""

    done: dict[str, set[str]] = field(default_factory=dict)

    def is_done(self, step: str, host: str) -> bool:
        return host in self.done.get(step, set())

    def mark(self, step: str, host: str) -> None:
        self.done.setdefault(step, set()).add(host)


class Runner:
    def __init__(
        self,
        ctx: RunContext,
        plan: Plan,
        decide: Decide = abort_on_failure,
        progress: Progress | None = None,
        phase: str = "run",
    ) -> None:
        self.ctx, self.plan, self.decide = ctx, plan, decide
        self.progress = progress or Progress()
        self.phase = phase
        self.output: dict[tuple[str, str], list[str]] = {}
        self.skipped: list[str] = []
        self.hosts_failed: set[str] = set()
        self._emit_upstream = ctx.emit
        ctx.emit = self._capture  # keep bounded output per step for the journal
        ctx.phase, ctx.plan = phase, plan

    def _capture(self, event: Event) -> None:
        if event.kind == "output":
            buf = self.output.setdefault((event.step or "", event.host or "*"), [])
            if sum(len(x) for x in buf) < OUTPUT_KEPT:
                buf.append(event.message)
        self._emit_upstream(event)

    def emit(self, kind, step: str | None = None, host: str | None = None, message: str = "", **data) -> None:
        data.setdefault("phase", self.phase)
        self._emit_upstream(Event(kind, self.ctx.run_id, step=step, host=host, message=message, data=data))

    # --- stages -----------------------------------------------------------------------
    def stages(self) -> list[list[Step]]:
        out: list[list[Step]] = []
        for step in self.plan.steps:
            if step.scope == "host" and out and out[-1][0].scope == "host":
                out[-1].append(step)
            else:
                out.append([step])
        return out

    async def run(self) -> RunResult:
        start = time.monotonic()
        for stage in self.stages():
            if stage[0].scope == "environment":
                result = await self._environment_step(stage[0])
            else:
                result = await self._host_stage(stage)
            if result is not None:
                if result.message == "undo":
                    undone = await self.undo()
                    result = RunResult(
                        "undone" if undone.outcome == "succeeded" else "failed",
                        0.0,
                        failed_hosts=result.failed_hosts,
                        message="undone" if undone.outcome == "succeeded" else f"undo failed: {undone.message}",
                    )
                result.duration_s = time.monotonic() - start
                return result
        outcome_msg = "done" + (f"; skipped: {', '.join(self.skipped)}" if self.skipped else "")
        return RunResult("succeeded", time.monotonic() - start, skipped=tuple(self.skipped), message=outcome_msg)

    async def _environment_step(self, step: Step) -> RunResult | None:
        while True:
            if self.progress.is_done(step.id, "*"):
                return None
            failure = await self._one(step, None)
            if failure is None:
                return None
            resolution = await self._resolve(Failure(step, {"*": failure}))
            if resolution == "retry":
                continue
            if resolution == "skip":
                return None
            return self._stop(resolution, ("*",))

    async def _host_stage(self, steps: list[Step]) -> RunResult | None:
        hosts = list(self.ctx.env.hosts)
        todo = hosts
        while True:
            failures, not_started = await self._fan_out(steps, todo)
            if not failures:
                return None
            # The earliest step that failed anywhere; else the rolling health gate.
            failed_step = next(
                (s for s in steps if any(f[0] is s for f in failures.values())), next(iter(failures.values()))[0]
            )
            failure = Failure(failed_step, {h: f for h, (_, f) in failures.items()}, tuple(not_started))
            resolution = await self._resolve(failure)
            if resolution == "retry":
                names = set(failures) | set(not_started)
                todo = [h for h in hosts if h.name in names]  # only the failed hosts
                continue
            if resolution == "skip":
                self.hosts_failed |= set(failures)
                return None
            return self._stop(resolution, tuple(failures), tuple(not_started))

    async def _fan_out(
        self, steps: list[Step], hosts: list[Host]
    ) -> tuple[dict[str, tuple[Step, StepFailed]], list[str]]:
        fleet = self.ctx.env.fleet
        failures: dict[str, tuple[Step, StepFailed]] = {}
        not_started: list[str] = []
        stop = asyncio.Event()

        async def host_run(host: Host) -> None:
            if stop.is_set():
                not_started.append(host.name)
                return
            for step in steps:
                if self.progress.is_done(step.id, host.name):
                    continue
                failure = await self._one(step, host)
                if failure is not None:
                    failures[host.name] = (step, failure)
                    if fleet.stop_on_first_failure:
                        stop.set()
                    return

        if len(hosts) == 1 and fleet.mode != "rolling":
            await host_run(hosts[0])
        elif fleet.mode == "rolling":
            for i in range(0, len(hosts), fleet.batch_size):
                batch = hosts[i : i + fleet.batch_size]
                if stop.is_set():
                    not_started.extend(h.name for h in batch)
                    continue
                await asyncio.gather(*(host_run(h) for h in batch))
                ok = [h for h in batch if h.name not in failures]
                await self._health_gate(ok, failures, last=i + fleet.batch_size >= len(hosts))
                if failures:
                    # The point of rolling: an unhealthy batch stops the roll before it spreads.
                    stop.set()
        else:
            gate = asyncio.Semaphore(fleet.concurrency)

            async def bounded(host: Host) -> None:
                async with gate:
                    await host_run(host)

            await asyncio.gather(*(bounded(h) for h in hosts))
        return failures, not_started

    async def _health_gate(
        self, hosts: list[Host], failures: dict[str, tuple[Step, StepFailed]], *, last: bool
    ) -> None:
        """Between rolling batches: the batch must be healthy before the next one starts.

        Journaled as a step of each host, so the grid, --json and resume see a host that
        failed it. Not after the last batch (validation follows), except to re-check a
        host that failed it before; a host that passed it is not asked again."""
        gate = HealthGate()
        seen = self.ctx.facts.get(gate.id, {})

        async def check(host: Host) -> None:
            failure = await self._one(gate, host)
            if failure is not None:
                failures[host.name] = (gate, failure)

        todo = [h for h in hosts if not self.progress.is_done(gate.id, h.name) and (not last or h.name in seen)]
        await asyncio.gather(*(check(h) for h in todo))

    async def _one(self, step: Step, host: Host | None) -> StepFailed | None:
        """Do and verify one step on one host; record it; return the failure if any.

        A changing step's intent is journaled before its effect (write-ahead); the crash
        points around intent, effect and record are placed here, for every step. Events are
        journaled off the event loop: what the step emitted is on disk before it returns."""
        failure = await self._attempt(step, host)
        await self.ctx.journaled()
        return failure

    async def _attempt(self, step: Step, host: Host | None) -> StepFailed | None:
        name = host.name if host else "*"
        if self.ctx.halt:
            return StepFailed(f"stopped before {step.title}: {self.ctx.halt}")
        self.output.pop((step.id, name), None)
        self.emit("step_started", step=step.id, host=host and host.name, message=step.title, title=step.title)
        await self.ctx.journaled()  # on disk before the step acts: an interruption says where
        started = time.monotonic()
        facts: Facts = {}
        try:
            if step.changes and await self._intent(step, host):
                self.ctx.fresh.add((step.id, name))
            try:
                facts = await step.do(self.ctx, host)
            except IntentStale as stale:
                # Someone else changed the target since the intent: a new before-image.
                self.emit("note", step=step.id, host=host and host.name, message=f"{stale}; taking a new intent")
                self.ctx.fresh.discard((step.id, name))
                await self._intent(step, host, renew=True)
                facts = await step.do(self.ctx, host)
            finally:
                self.ctx.fresh.discard((step.id, name))
            failpoints.hit(f"{step.id}/after-effect", name, self.phase)
            self.ctx.facts.setdefault(step.id, {})[name] = facts
            detail = await step.verify(self.ctx, host, facts)
        except StepFailed as failure:
            return self._failed(step, host, failure, started, facts)
        except (TransportError, OSError) as exc:
            return self._failed(step, host, StepFailed(str(exc)), started, facts)
        except Exception as exc:  # a bug must not leave the run unrecorded
            return self._failed(step, host, StepFailed(f"internal error: {type(exc).__name__}: {exc}"), started, facts)
        self.ctx.facts.setdefault(step.id, {})[name] = facts
        self.progress.mark(step.id, name)
        self.emit(
            "step_finished",
            step=step.id,
            host=host and host.name,
            message=detail,
            elapsed_s=round(time.monotonic() - started, 3),
            facts=facts,
            output="\n".join(self.output.get((step.id, name), [])),
        )
        return None

    async def _intent(self, step: Step, host: Host | None, *, renew: bool = False) -> bool:
        """Journal what the step is about to change before it changes it. On resume (and on
        a retry) the intent already journaled stands: its before-image is the real one.
        Returns whether a new intent was taken (and journaled) just now."""
        name = host.name if host else "*"
        intents = self.ctx.intents.setdefault(step.id, {})
        taken = name not in intents or renew
        if taken:
            intent = await step.intent(self.ctx, host)
            self.emit(
                "step_intent", step=step.id, host=host and host.name, message=step.title, intent=intent, renew=renew
            )
            await self.ctx.journaled()  # write-ahead: the intent is on disk before the effect
            if self.ctx.halt:  # not journaled: the change must not happen
                raise StepFailed(f"nothing was changed: the intent could not be journaled ({self.ctx.halt})")
            intents[name] = intent
        failpoints.hit(f"{step.id}/after-intent", name, self.phase)
        return taken and not renew

    def _failed(self, step: Step, host: Host | None, failure: StepFailed, started: float, facts: Facts) -> StepFailed:
        # A failed step has the same boundary: whatever it did is done, its record not yet written.
        failpoints.hit(f"{step.id}/after-effect", host.name if host else "*", self.phase)
        self._record_failure(step, host, failure, started, facts)
        return failure

    def _record_failure(self, step: Step, host: Host | None, failure: StepFailed, started: float, facts: Facts) -> None:
        name = host.name if host else "*"
        merged = {**facts, **failure.facts}
        self.ctx.facts.setdefault(step.id, {})[name] = merged
        failure.issue = failure.issue or step.issue  # the step's issue, where the failure names none
        plans = self.ctx.plans
        # A step names the fact it is evidence of (or an issue id): the runbook's issue for it.
        found = plans.troubleshooting(failure.issue, self.ctx.env) if plans and failure.issue else None
        if found is not None and failure.troubleshooting is None:
            failure.issue, failure.troubleshooting = found
        if plans is not None and failure.remedy is not None and failure.remedy.troubleshooting is None:
            named = plans.troubleshooting(failure.remedy.issue, self.ctx.env)
            if named is not None:
                failure.remedy = dataclasses.replace(failure.remedy, issue=named[0], troubleshooting=named[1])
        self.emit(
            "step_failed",
            step=step.id,
            host=host and host.name,
            message=str(failure),
            elapsed_s=round(time.monotonic() - started, 3),
            facts=merged,
            output=("\n".join(self.output.get((step.id, name), [])) + "\n" + failure.output).strip()[-OUTPUT_KEPT:],
            issue=failure.issue,
            troubleshooting=failure.troubleshooting,
            remedy=None
            if failure.remedy is None
            else {
                "title": failure.remedy.title,
                "commands": list(failure.remedy.commands),
                "troubleshooting": failure.remedy.troubleshooting,
            },
        )

    async def _resolve(self, failure: Failure) -> str:
        """Ask what to do; apply a fix if chosen. Returns retry / skip / undo / abort."""
        while True:
            decision = await self.decide(failure)
            self.emit(
                "decision",
                step=failure.step.id,
                message=f"{decision.kind}: {decision.reason}".rstrip(": "),
                decision=decision.kind,
                reason=decision.reason,
                by=decision.by,
            )
            if decision.kind == "fix":
                hosts = {h.name: h for h in self.ctx.env.hosts}
                try:
                    for name, f in failure.hosts.items():
                        await failure.step.remedy(self.ctx, hosts.get(name), f)
                except StepFailed as exc:
                    failure = Failure(failure.step, {"*": exc})
                    self.emit("step_failed", step=failure.step.id, message=f"fix failed: {exc}", output=exc.output)
                    continue
                return "retry"
            if decision.kind == "skip":
                if not decision.reason.strip():
                    self.emit("note", step=failure.step.id, message="a skip needs a reason")
                    continue
                self.skipped.append(f"{failure.step.title} ({decision.reason})")
            return decision.kind

    def _stop(self, resolution: str, failed_hosts: tuple[str, ...], not_started: tuple[str, ...] = ()) -> RunResult:
        return RunResult("failed", 0.0, failed_hosts=failed_hosts, message=resolution, not_started=not_started)

    # --- undo ---------------------------------------------------------------------------
    async def undo_facts(self) -> dict[str, dict[str, Facts]]:
        """What this run changed, step by step and host by host: the facts of every finished
        step, and for a step whose intent was journaled but whose end was not (a kill), what
        the actual state says happened. Raises StepFailed when that cannot be told."""
        hosts = {h.name: h for h in self.ctx.env.hosts}
        out: dict[str, dict[str, Facts]] = {}
        for step in self.plan.steps:
            recorded = self.ctx.facts.get(step.id, {})
            intents = self.ctx.intents.get(step.id, {}) if step.changes else {}
            by_host: dict[str, Facts] = {}
            unfinished = [n for n in intents if not self.progress.is_done(step.id, n)]

            async def look(name: str, step: Step = step, intents: dict[str, Facts] = intents) -> Facts | None:
                try:
                    return await step.happened(self.ctx, hosts.get(name), intents[name])
                except (TransportError, OSError) as exc:
                    raise StepFailed(f"cannot tell whether {step.title} changed {name}: {exc}") from None

            found = dict(zip(unfinished, await asyncio.gather(*(look(n) for n in unfinished)), strict=True))
            for name in dict.fromkeys([*recorded, *intents]):
                if name in found:
                    if found[name] is not None:
                        by_host[name] = found[name]  # type: ignore[assignment]
                elif name in recorded:
                    by_host[name] = recorded[name]
            if by_host:
                out[step.id] = by_host
        return out

    async def undo(self, previous: UndoState | None = None) -> RunResult:
        """Put back everything this run changed, then validate, as phase "undo" of the same run.

        ``previous``: what an earlier, interrupted undo of this run did (from the journal):
        its finished steps are not done again and its intents stand."""
        plans = self.ctx.plans
        if plans is None:
            raise RuntimeError("an undo needs the plan catalogue (RunContext.plans)")
        try:
            steps = plans.undo_steps(self.plan, await self.undo_facts())
        except StepFailed as exc:
            self.emit("note", message=f"undo not started: {exc}")
            return RunResult("failed", 0.0, message=f"undo not started: {exc}")
        if not steps:
            # Every change is preceded by its intent, and each intent was checked against the
            # actual state: nothing of this run is in place.
            self.emit("note", message="nothing to undo: no change was made")
            return RunResult("succeeded", 0.0, message="nothing to undo")
        plan = Plan(
            action=f"undo-{self.plan.action}",
            environment=self.plan.environment,
            title=f"Undo: {self.plan.title}",
            steps=(*steps, plans.validation()),
            target=self.plan.target,
            target_s=self.plan.target_s,
            data_loss="None",
            reversible="Yes",
        )
        previous = previous or UndoState()
        ctx = RunContext(
            run_id=self.ctx.run_id,
            config=self.ctx.config,
            env=self.ctx.env,
            pool=self.ctx.pool,
            prober=self.ctx.prober,
            emit=self._emit_upstream,
            options=self.ctx.options,
            facts={k: dict(v) for k, v in previous.facts.items()},
            intents={k: dict(v) for k, v in previous.intents.items()},
            phase="undo",
            plan=plan,
        )

        async def no_undo_of_undo(failure: Failure) -> Decision:
            decision = await self.decide(failure)
            return Decision("abort", "cannot undo an undo") if decision.kind == "undo" else decision

        self.emit("note", message=f"undo: {len(steps)} step(s) to put things back")
        return await Runner(ctx, plan, no_undo_of_undo, progress=Progress(previous.done), phase="undo").run()


@dataclass
class UndoState:
    """An earlier undo of the same run, as the journal tells it."""

    done: dict[str, set[str]] = field(default_factory=dict)
    facts: dict[str, dict[str, Facts]] = field(default_factory=dict)
    intents: dict[str, dict[str, Facts]] = field(default_factory=dict)


class HealthGate(Step):
    """Rolling mode, between batches: the profile's health endpoints on a host of the batch
    (liveness and readiness)."""

    id = "health-gate"
    title = "Health gate before the next batch"

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        try:
            health = profile_of(ctx.env).health
        except ProfileError:
            return "GET the service profile's health endpoints (the profile cannot be read)"
        return "GET " + " and ".join(e.endpoint for e in (health.liveness, health.readiness) if e)

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        try:
            profile = profile_of(ctx.env)
        except ProfileError as exc:
            raise StepFailed(unusable_profile(ctx.env, exc)) from None
        transport = await ctx.transport(host)
        base = await reachable_base(ctx.env, host, transport)
        health = await probe_health(ctx.prober.client, base, profile.health)
        return {"health": health.describe(), "healthy": health.healthy, "verdict": health.verdict}

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        detail = facts["health"]
        if not facts["healthy"]:  # not ok, or not known to be: the next batch does not start on a guess
            raise StepFailed(f"health gate: {detail}: the next batch waits", facts=facts)
        return detail
