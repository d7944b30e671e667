"""The runbook's rollbacks as plans: quick, partial A and B, code, database, full."""

from __future__ import annotations

from typing import Any

from console.config.model import Config, Environment
from console.engine.plan import Facts, Plan, PlanError, Step
from console.engine.undo import each_undo
from console.plans.flags import AwaitEffect, RestartService, SetFlags
from console.plans.undo import older_facts, one_restart
from console.plans.validate import ValidateRollback
from console.profile import ProfileError, profile_of
from console.profile.model import Action, FlagRules

__all__ = ["PLANS", "PlanError", "RunbookPlans", "build_plan"]


def flag_plan(env: Environment, action: Action, rules: FlagRules) -> Plan:
    return Plan(
        action=action.id,
        environment=env.name,
        title=action.title,
        steps=(SetFlags(action.flag_changes(rules.ids)), RestartService(), AwaitEffect(), ValidateRollback()),
        target=action.target,
        target_s=action.target_s or 120,
        data_loss=action.data_loss,
        reversible=action.reversible,
        notes=action.notes,
    )


def build_plan(action: str, env: Environment, config: Config, options: dict[str, Any] | None = None) -> Plan:
    """The plan for the profile's ``action`` on ``env``; PlanError if the environment cannot do it."""
    options = options or {}
    profile = profile_of(env)
    try:
        chosen = profile.action(action)
    except KeyError:
        names = ", ".join(a.id for a in profile.rollbacks)
        raise PlanError(f"unknown action {action!r} (the rollbacks of {profile.info.title}: {names})") from None
    # Each kind's module loads with its first plan: a flag rollback never loads the
    # PostgreSQL driver (≈ 18 ms of a `rollback quick`).
    if chosen.kind == "flags":
        return flag_plan(env, chosen, profile.flags)
    if chosen.kind == "code":
        from console.plans import code

        return code.code_plan(env, options, chosen)
    if chosen.kind == "database":
        if env.database is None:
            raise PlanError(f"environment {env.name!r} has no [database] section configured")
        from console.plans import database

        return database.database_plan(env, options, chosen)
    if chosen.kind == "combined":
        from console.plans import code

        return code.combined_plan(env, options, chosen)
    raise PlanError(f"{chosen.title!r} is advice, not a rollback: nothing to run")


class RunbookPlans:
    """The runbook's plans as the engine is handed them (a PlanCatalogue)."""

    def build(self, action: str, env: Environment, config: Config, options: dict[str, Any]) -> Plan:
        return build_plan(action, env, config, options)

    def validation(self) -> Step:
        return ValidateRollback()

    def undo_steps(self, plan: Plan, facts: dict[str, dict[str, Facts]]) -> list[Step]:
        return one_restart(each_undo(plan, older_facts(plan, facts)))

    def troubleshooting(self, issue: str, env: Environment) -> tuple[str, str] | None:
        try:
            profile = profile_of(env)
        except ProfileError:  # `config validate` names a broken profile
            return None
        found = next((i for i in profile.troubleshooting if i.id == issue), None) or profile.issue_for(issue)
        return (found.id, found.heading) if found else None


PLANS = RunbookPlans()
