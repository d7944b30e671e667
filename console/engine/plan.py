"""Plans are lists of steps. Every step can say exactly what it will do (preview),
do it, check it worked (verify), and name the steps that would undo it."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from console.config.model import Config, Environment, Host
from console.engine.events import Event
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
    troubleshooting: str  # the runbook section it comes from


class StepFailed(Exception):
    """A step did not work. The message says what and where; ``output`` shows evidence."""

    def __init__(
        self,
        message: str,
        *,
        output: str = "",
        remedy: Remedy | None = None,
        troubleshooting: str | None = None,
        facts: Facts | None = None,
    ) -> None:
        super().__init__(message)
        self.output = output
        self.remedy = remedy
        self.troubleshooting = troubleshooting
        self.facts = facts or {}


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

    async def transport(self, host: Host) -> Transport:
        return await self.pool.get(host)

    def output(self, step: str, host: str | None) -> Callable[[str, str], None]:
        def callback(stream: str, line: str) -> None:
            self.emit(Event("output", self.run_id, step=step, host=host, message=line, data={"stream": stream}))

        return callback

    def fact(self, step: str, host: str, key: str, default: Any = None) -> Any:
        return self.facts.get(step, {}).get(host, {}).get(key, default)


class Step(abc.ABC):
    id: str
    title: str
    scope: Literal["host", "environment"] = "host"
    destructive: bool = False  # needs an explicit confirmation

    @abc.abstractmethod
    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        """The exact edit, command or SQL this step will run, for the operator to read first."""

    @abc.abstractmethod
    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        """Do it; return what was done (before/after, outputs) for the journal."""

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        """Check it really happened; raise StepFailed if not. Returns one line of evidence."""
        return "done"

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        """Steps that would put things back as they were. Empty: nothing to undo."""
        return []

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
