"""Which steps put back what a run changed: each step's own undo, newest change first.
How they go together (one restart for all of them) is the plan catalogue's knowledge."""

from __future__ import annotations

from console.engine.plan import Facts, Plan, Step


def each_undo(plan: Plan, facts: dict[str, dict[str, Facts]]) -> list[Step]:
    """Every step's own undo of what ``facts`` say it changed, newest change first."""
    out: list[Step] = []
    for step in reversed(plan.steps):
        step_facts = facts.get(step.id)
        if step_facts:
            out.extend(step.undo_steps(step_facts))
    return out
