"""The runbook's rollbacks as plans: quick, partial A and B, code, database, full."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.config.model import Config, Environment
from console.engine.plan import Facts, Plan, PlanError, Step
from console.engine.undo import each_undo
from console.flags import ADVANCED, CONTENT_TYPE, TIME_WEIGHTING
from console.plans.flags import AwaitEffect, RestartService, SetFlags
from console.plans.undo import older_facts, one_restart
from console.plans.validate import ValidateRollback

__all__ = ["PLANS", "PlanError", "RunbookPlans", "build_plan"]


def flag_steps(changes: dict[str, bool]) -> list[Step]:
    return [SetFlags(changes), RestartService(), AwaitEffect()]


@dataclass(frozen=True)
class FlagRollback:
    """A rollback that only sets flags: the runbook's quick and partial rollbacks."""

    title: str
    flags: tuple[bool, bool, bool]  # advanced, time-weighting, content-type after the rollback
    target: str
    target_s: float
    note: str

    def plan(self, action: str, env: Environment) -> Plan:
        changes = dict(zip((ADVANCED, TIME_WEIGHTING, CONTENT_TYPE), self.flags, strict=True))
        return Plan(
            action=action,
            environment=env.name,
            title=self.title,
            steps=(*flag_steps(changes), ValidateRollback()),
            target=self.target,
            target_s=self.target_s,
            data_loss="None",
            reversible="Yes (re-enable flags)",
            notes=(self.note,),
        )


FLAG_ROLLBACKS = {
    "quick": FlagRollback(
        "Quick rollback: disable all advanced features",
        (False, False, False),
        "< 1 min",
        60,
        "System reverts to legacy behaviour: no advanced fields in the response.",
    ),
    "partial-time-weighting": FlagRollback(
        "Partial rollback A: disable time-weighting, keep content-type detection",
        (True, False, True),
        "< 2 min",
        120,
        'The log should show "Time-weighting: False".',
    ),
    "partial-content-type": FlagRollback(
        "Partial rollback B: disable content-type analysis, keep time-weighting",
        (True, True, False),
        "< 2 min",
        120,
        "Known risk: with the master flag on and content-type off, the advanced query fails in the real code "
        '(HTTP 200 with status "failed"). Validation catches it; the fallback is a quick rollback.',
    ),
}


def build_plan(action: str, env: Environment, config: Config, options: dict[str, Any] | None = None) -> Plan:
    """The plan for ``action`` on ``env``; PlanError if the environment cannot do it."""
    options = options or {}
    if action in FLAG_ROLLBACKS:
        return FLAG_ROLLBACKS[action].plan(action, env)
    from console.plans import code, database

    if action == "code":
        return code.code_plan(env, options)
    if action == "database":
        return database.database_plan(env, options)
    if action == "full":
        return code.full_plan(env, options)
    raise PlanError(f"unknown action {action!r}")


class RunbookPlans:
    """The runbook's plans as the engine is handed them (a PlanCatalogue)."""

    def build(self, action: str, env: Environment, config: Config, options: dict[str, Any]) -> Plan:
        return build_plan(action, env, config, options)

    def validation(self) -> Step:
        return ValidateRollback()

    def undo_steps(self, plan: Plan, facts: dict[str, dict[str, Facts]]) -> list[Step]:
        return one_restart(each_undo(plan, older_facts(plan, facts)))


PLANS = RunbookPlans()
