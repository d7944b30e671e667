"""Plans are lists of steps. Every step can say exactly what it will do (preview),
do it, check it worked (verify), and name the steps that would undo it.

A step that changes something (``changes = True``) first says what it is about to
change and what puts it back byte for byte (``intent``: before-image or its digest,
backup location). The runner journals that intent before it calls ``do``, so after a
kill at any point the journal knows every change that may have happened; ``happened``
tells, from the actual state, whether an intent's change took place.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from console import failpoints
from console.config.model import Config, Environment, Host
from console.events import Event
from console.flags import FlagSet
from console.probes.collect import Prober
from console.transport.base import Transport
from console.transport.pool import TransportPool

Facts = dict[str, Any]  # what a step did, per host: journal-safe, never secrets


@dataclass(frozen=True)
class Remedy:
    """A known fix the operator may apply when a step fails (e.g. runbook troubleshooting 1)."""

    title: str
    commands: tuple[str, ...]
    issue: str  # the runbook troubleshooting issue it comes from, by id
    troubleshooting: str | None = None  # its heading in the runbook; the runner fills it in from the catalogue


class StepFailed(Exception):
    """A step did not work. The message says what and where; ``output`` shows evidence."""

    def __init__(
        self,
        message: str,
        *,
        output: str = "",
        remedy: Remedy | None = None,
        issue: str | None = None,
        facts: Facts | None = None,
    ) -> None:
        super().__init__(message)
        self.output = output
        self.remedy = remedy
        self.issue = issue  # the runbook troubleshooting issue that applies, by id
        self.facts = facts or {}
        # The runbook's heading of the issue ("Issue 2: …"), from the plan catalogue (the runner).
        self.troubleshooting: str | None = None


class IntentStale(StepFailed):
    """``do`` found neither the intent's before-image nor its result: someone else changed
    the target since the intent was journaled. The runner takes (and journals) a new one."""


async def _nothing_to_wait_for() -> None:
    return None


@dataclass
class RunContext:
    """What steps need while a run goes on."""

    run_id: str
    config: Config
    env: Environment
    pool: TransportPool
    prober: Prober
    emit: Callable[[Event], None]
    # step id -> host name (or "*" for environment steps) -> facts
    facts: dict[str, dict[str, Facts]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    halt: str | None = None  # set when the run must not go on (e.g. the journal cannot be written)
    # step id -> host name (or "*") -> the intent journaled before the step's effect
    intents: dict[str, dict[str, Facts]] = field(default_factory=dict)
    phase: str = "run"
    plan: Plan | None = None
    # while previewing: step id -> host name -> whether that step will change something there
    previewed: dict[str, dict[str, bool]] = field(default_factory=dict)
    # returns once every event emitted so far is journaled (on disk): the runner awaits it
    # before a step acts (write-ahead). The engine sets it; alone, nothing is journaled.
    journaled: Callable[[], Awaitable[None]] = field(default=_nothing_to_wait_for)
    # (step id, host name) whose intent was taken in the attempt now running: nothing ran
    # between the intent's reads and ``do``, so ``do`` need not read the same things again
    fresh: set[tuple[str, str]] = field(default_factory=set)
    # the runbook's plans, for an undo's steps and its closing validation (the engine sets it)
    plans: PlanCatalogue | None = None

    async def transport(self, host: Host) -> Transport:
        return await self.pool.get(host)

    def output(self, step: str, host: str | None) -> Callable[[str, str], None]:
        def callback(stream: str, line: str) -> None:
            self.emit(Event("output", self.run_id, step=step, host=host, message=line, data={"stream": stream}))

        return callback

    def fact(self, step: str, host: str, key: str, default: Any = None) -> Any:
        return self.facts.get(step, {}).get(host, {}).get(key, default)

    def intent(self, step: str, host: Host | None) -> Facts:
        """The journaled intent of ``step`` on ``host`` (the runner journals it before ``do``)."""
        found = self.intents.get(step, {}).get(host.name if host else "*")
        if found is None:
            raise StepFailed(f"internal error: {step} ran without a journaled intent")
        return found

    def intent_is_fresh(self, step: str, host: Host | None) -> bool:
        """Whether ``step``'s intent on ``host`` was taken just now, in this attempt (not on a
        resume, a retry or a renewal after someone else's change)."""
        return (step, host.name if host else "*") in self.fresh

    def failpoint(self, step: str, where: str, host: Host | None = None) -> None:
        """A named crash point inside a step (declared in its ``inner_points``)."""
        failpoints.hit(f"{step}/{where}", host.name if host else None, self.phase)

    def changed_before(self, step: Step, host: str, *, code_only: bool = False) -> bool:
        """Did any step before ``step`` in this plan change something on ``host`` (or might
        it have: no record)? Decides whether a restart or a rebuild is needed at all."""
        if self.plan is None:
            return True
        for earlier in self.plan.steps:
            if earlier is step:
                break
            if not earlier.changes or earlier.scope != "host" or (code_only and not earlier.code):
                continue
            facts = self.facts.get(earlier.id, {}).get(host)
            if facts is None or changed(facts):
                return True
        return False


def changed(facts: Facts) -> bool:
    """Whether a changing step's facts say it changed something (older journals did not
    always say: then only a skip means no)."""
    if facts.get("needs_restart"):
        return True
    return bool(facts.get("changed", not facts.get("skipped")))


class Step(abc.ABC):
    id: str
    title: str
    scope: Literal["host", "environment"] = "host"
    destructive: bool = False  # needs an explicit confirmation
    changes: bool = False  # has a side effect: an intent is journaled before ``do``
    code: bool = False  # changes the code checkout (a rebuild follows it)
    issue: str | None = None  # the troubleshooting issue a failure here names, unless it names its own
    inner_points: tuple[str, ...] = ()  # crash points inside ``do`` (see console.failpoints)

    @abc.abstractmethod
    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        """The exact edit, command or SQL this step will run, for the operator to read first."""

    async def preview_change(self, ctx: RunContext, host: Host | None) -> tuple[str, bool]:
        """The preview, and whether this step will change anything there (a plan where no
        step changes anything has nothing to do). Reads only."""
        return await self.preview(ctx, host), self.changes

    async def refusal(self, ctx: RunContext) -> str | None:
        """Why the plan must not start at all, knowable before anything changes (e.g. flags
        still on for a database rollback); None: no objection. Reads only."""
        return None

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        """For a step that changes something: what ``do`` is about to change, and what puts
        it back byte for byte (before-image or its digest, backup location). Reads only.
        Journaled before ``do`` runs; ``do`` finds it with ``ctx.intent``, also on resume."""
        return {}

    @abc.abstractmethod
    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        """Do it; return what was done (before/after, outputs) for the journal. A changing
        step must find its work already done (resumed after a kill) and not do it twice."""

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        """Check it really happened; raise StepFailed if not. Returns one line of evidence."""
        return "done"

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        """Steps that would put things back as they were. Empty: nothing to undo."""
        return []

    async def happened(self, ctx: RunContext, host: Host | None, intent: Facts) -> Facts | None:
        """The intent was journaled but the step's end was not (a kill): the facts for
        ``undo_steps`` if its change (or part of it) is in place, None if nothing changed.
        Looks at the actual state; raises StepFailed if it cannot tell."""
        return {**intent, "changed": True}

    async def remedy(self, ctx: RunContext, host: Host | None, failure: StepFailed) -> None:
        """Apply ``failure.remedy``; only called when the operator chose it."""
        raise StepFailed(f"{self.title}: no fix is known")


@dataclass(frozen=True)
class Plan:
    action: str
    environment: str
    title: str
    steps: tuple[Step, ...]
    target: str  # the runbook's timeline, e.g. "< 1 min"
    target_s: float
    data_loss: str
    reversible: str
    expected_flags: FlagSet | None = None
    notes: tuple[str, ...] = ()

    @property
    def destructive(self) -> bool:
        return any(s.destructive for s in self.steps)


class PlanError(ValueError):
    """A plan cannot be built for this environment; the message says what is missing."""


class PlanCatalogue(Protocol):
    """The runbook's plans, handed to the engine (the engine knows steps, not which plans
    exist): what an action does, the validation that closes every run, and how the undo
    steps of several changes go together."""

    def build(self, action: str, env: Environment, config: Config, options: dict[str, Any]) -> Plan:
        """The plan of ``action`` on ``env``; raises PlanError when it cannot be built."""
        ...

    def validation(self) -> Step:
        """The step that validates a run's end state (the runbook's validation checks)."""
        ...

    def undo_steps(self, plan: Plan, facts: dict[str, dict[str, Facts]]) -> list[Step]:
        """The steps that put back what ``facts`` say ``plan`` changed, newest change first,
        as one sequence that runs (e.g. one restart for all of them, then the wait)."""
        ...

    def troubleshooting(self, issue: str, env: Environment) -> tuple[str, str] | None:
        """The runbook's issue for a failed step's issue id or fact: (its id, its heading,
        "Issue 2: …"); None when the runbook has none for it."""
        ...


def step_points(step: Step) -> tuple[str, ...]:
    """The points the runner places around ``step``: after its intent is journaled (steps
    that change something), at the step's own inner points, after its effect (before its
    record)."""
    inner = tuple(f"{step.id}/{p}" for p in step.inner_points)
    intent = (f"{step.id}/after-intent",) if step.changes else ()
    return (*intent, *inner, f"{step.id}/after-effect")


def plan_points(plan: Plan) -> list[str]:
    """Every point a run of ``plan`` reaches, in order: the crash matrix's rows."""
    points = list(failpoints.BEFORE_STEPS)
    for step in plan.steps:
        points += step_points(step)
    return points + list(failpoints.AFTER_STEPS)
