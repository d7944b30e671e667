"""How the undo steps of a run's changes go together: one restart for all of them, with
the wait for the flags after it; and the facts of journals written by older consoles."""

from __future__ import annotations

from collections.abc import Iterable

from console.engine.plan import Facts, Plan, Step
from console.plans.flags import AwaitEffect, RestartService


def older_facts(plan: Plan, facts: dict[str, dict[str, Facts]]) -> dict[str, dict[str, Facts]]:
    """Journals from before the copy and the drop became one step kept the copy's path
    under its own step ("db-keep"): hand it to the step that drops the columns."""
    kept = facts.get("db-keep", {}).get("*", {}).get("path")
    if not kept or any(s.id == "db-keep" for s in plan.steps) or "db-rollback" not in facts:
        return facts
    merged = {**facts.get("db-rollback", {}).get("*", {})}
    merged.setdefault("kept_path", kept)
    return {**facts, "db-rollback": {"*": merged}}


def one_restart(steps: list[Step]) -> list[Step]:
    """Undoing code and flags both ask for a restart. Keep one (for every host either asked
    for), where the last one was, and wait for the flags after it: two steps with one id
    in a stage would make the runner skip the second as done, and a wait for the flags
    before the restart that loads them would wait in vain."""
    restarts = [s for s in steps if isinstance(s, RestartService)]
    waits = [s for s in steps if isinstance(s, AwaitEffect)]
    if len(restarts) < 2 and not (waits and restarts and steps.index(waits[-1]) < steps.index(restarts[-1])):
        return steps
    out: list[Step] = []
    for s in steps:
        if s is restarts[-1]:
            out.append(RestartService(only=_union(r.only for r in restarts)))
            if waits:
                out.append(AwaitEffect(only=_union(w.only for w in waits)))
        elif s not in restarts and s not in waits:
            out.append(s)
    return out


def _union(sets: Iterable[set[str] | None]) -> set[str] | None:
    out: set[str] = set()
    for s in sets:
        if s is None:
            return None
        out |= s
    return out
