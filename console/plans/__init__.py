"""The runbook's rollbacks as plans: quick, partial A and B, code, database, full."""

from __future__ import annotations

from typing import Any

from console.config.model import Config, Environment
from console.engine.plan import Plan, Step
from console.flags import ADVANCED, CONTENT_TYPE, TIME_WEIGHTING
from console.plans.flags import AwaitEffect, RestartService, SetFlags
from console.plans.validate import ValidateRollback


class PlanError(ValueError):
    """A plan cannot be built for this environment; the message says what is missing."""


def flag_steps(changes: dict[str, bool]) -> list[Step]:
    return [SetFlags(changes), RestartService(), AwaitEffect()]


def quick(env: Environment) -> Plan:
    return Plan(
        action="quick",
        environment=env.name,
        title="Quick rollback: disable all advanced features",
        steps=(*flag_steps({ADVANCED: False, TIME_WEIGHTING: False, CONTENT_TYPE: False}), ValidateRollback()),
        target="< 1 min",
        target_s=60,
        data_loss="None",
        reversible="Yes (re-enable flags)",
        notes=("System reverts to legacy behaviour: no advanced fields in the response.",),
    )


def partial_time_weighting(env: Environment) -> Plan:
    return Plan(
        action="partial-time-weighting",
        environment=env.name,
        title="Partial rollback A: disable time-weighting, keep content-type detection",
        steps=(*flag_steps({ADVANCED: True, TIME_WEIGHTING: False, CONTENT_TYPE: True}), ValidateRollback()),
        target="< 2 min",
        target_s=120,
        data_loss="None",
        reversible="Yes (re-enable flags)",
        notes=('The log should show "Time-weighting: False".',),
    )


def partial_content_type(env: Environment) -> Plan:
    return Plan(
        action="partial-content-type",
        environment=env.name,
        title="Partial rollback B: disable content-type analysis, keep time-weighting",
        steps=(*flag_steps({ADVANCED: True, TIME_WEIGHTING: True, CONTENT_TYPE: False}), ValidateRollback()),
        target="< 2 min",
        target_s=120,
        data_loss="None",
        reversible="Yes (re-enable flags)",
        notes=(
            "Known risk: with the master flag on and content-type off, the advanced query fails in the real code "
            '(HTTP 200 with status "failed"). Validation catches it; the fallback is a quick rollback.',
        ),
    )


BUILDERS = {
    "quick": quick,
    "partial-time-weighting": partial_time_weighting,
    "partial-content-type": partial_content_type,
}


def build_plan(action: str, env: Environment, config: Config, options: dict[str, Any] | None = None) -> Plan:
    """The plan for ``action`` on ``env``; PlanError if the environment cannot do it."""
    options = options or {}
    if action in BUILDERS:
        return BUILDERS[action](env)
    from console.plans import code, database

    if action == "code":
        return code.code_plan(env, options)
    if action == "database":
        return database.database_plan(env, options)
    if action == "full":
        return code.full_plan(env, options)
    raise PlanError(f"unknown action {action!r}")
