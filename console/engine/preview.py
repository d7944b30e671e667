"""A plan's preview: every step's exact edit, command or SQL, per host, changing nothing.

The preview an operator confirmed travels into the run (``Confirmed``): under the lock
the engine previews again, and a run whose preview differs from what was confirmed
does not start.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
from dataclasses import dataclass

from console.config.model import Host
from console.engine.plan import Plan, RunContext, Step, StepFailed
from console.transport.base import TransportError

RUN_ID_PLACEHOLDER = "RUN_ID"  # previews are made before the run has its id


@dataclass(frozen=True)
class StepPreview:
    step: Step
    # (hosts, text): hosts sharing the same preview are grouped; ("*",) for environment steps
    groups: tuple[tuple[tuple[str, ...], str], ...]
    changing: tuple[str, ...] = ()  # hosts ("*") where this step will change something
    # What could not be previewed (a host that cannot be reached, an unknown host key):
    # the preview is incomplete, and the run would fail there.
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanPreview:
    """What the operator is shown before confirming: the plan, each step's preview, and
    why it must not run (a refusal knowable now), if so."""

    plan: Plan
    steps: tuple[StepPreview, ...]
    refusal: str | None = None

    @property
    def nothing_to_change(self) -> bool:
        return not any(p.changing for p in self.steps)

    def text(self) -> str:
        return preview_text(self.plan, list(self.steps))

    def digest(self) -> str:
        return preview_digest(self.plan, list(self.steps))

    def why_not(self) -> str | None:
        """Why this plan must not run: a refusal, or nothing to change; None: it may run."""
        if self.refusal:
            return self.refusal
        problems = preview_problems(list(self.steps))
        if problems:
            return f"the preview is incomplete: {'; '.join(problems)}; nothing was changed"
        if self.nothing_to_change:
            return (
                f"nothing to change on {self.plan.environment}: {self.plan.title} — every step is already "
                "done (see the preview); nothing was run and the service was not restarted"
            )
        return None


@dataclass(frozen=True)
class Confirmed:
    """The preview the operator confirmed: its text (to show a difference) and digest."""

    text: str
    digest: str

    @classmethod
    def of(cls, preview: PlanPreview) -> Confirmed:
        return cls(preview.text(), preview.digest())

    def difference(self, now: PlanPreview) -> str | None:
        """None when ``now`` is what was confirmed; else the difference, as a unified diff."""
        if now.digest() == self.digest:
            return None
        diff = difflib.unified_diff(
            self.text.splitlines(), now.text().splitlines(), "confirmed", "now", lineterm="", n=1
        )
        return "\n".join(diff) or "(the previews differ in a way the text does not show)"


async def _preview_change(step: Step, ctx: RunContext, host: Host | None, problems: list[str]) -> tuple[str, bool]:
    """A step's preview. One that cannot be made says so, counts as a change (unknown) and
    is a problem: the preview is incomplete, so the plan must not run (it would fail there)."""
    try:
        return await step.preview_change(ctx, host)
    except (TransportError, StepFailed) as exc:
        reason = str(exc)
    except Exception as exc:  # the operator must see the rest of the plan even when one step cannot look
        reason = f"{type(exc).__name__}: {exc}"
    where = f" on {host.name}" if host else ""
    problems.append(f"{host.name}: {reason}" if host and host.name not in reason else reason)
    return f"# cannot preview this step{where} now: {reason}", True


async def preview_plan(ctx: RunContext, plan: Plan) -> list[StepPreview]:
    ctx.plan = plan
    ctx.previewed = {}
    out = []
    for step in plan.steps:
        problems: list[str] = []
        if step.scope == "environment":
            text, changing = await _preview_change(step, ctx, None, problems)
            ctx.previewed[step.id] = {"*": changing}
            out.append(StepPreview(step, ((("*",), text),), ("*",) if changing else (), tuple(problems)))
            continue
        answers = await asyncio.gather(*(_preview_change(step, ctx, h, problems) for h in ctx.env.hosts))
        groups: dict[str, list[str]] = {}
        for host, (text, _) in zip(ctx.env.hosts, answers, strict=True):
            groups.setdefault(text, []).append(host.name)
        ctx.previewed[step.id] = {h.name: c for h, (_, c) in zip(ctx.env.hosts, answers, strict=True)}
        changing = tuple(h.name for h, (_, c) in zip(ctx.env.hosts, answers, strict=True) if c)
        groups_t = tuple((tuple(hosts), text) for text, hosts in groups.items())
        out.append(StepPreview(step, groups_t, changing, tuple(problems)))
    return out


async def preview(ctx: RunContext, plan: Plan) -> PlanPreview:
    """The whole preview: every step's, then any refusal a step knows of before the run."""
    steps = await preview_plan(ctx, plan)
    refusal = None
    for step in plan.steps:
        refusal = await step.refusal(ctx)
        if refusal:
            break
    return PlanPreview(plan, tuple(steps), refusal)


def preview_digest(plan: Plan, previews: list[StepPreview]) -> str:
    """sha256 over what the preview says: each step, its hosts, its exact text."""
    body = {
        "action": plan.action,
        "environment": plan.environment,
        "title": plan.title,
        "steps": [[p.step.id, p.step.title, [[list(h), t] for h, t in p.groups], list(p.changing)] for p in previews],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def preview_text(plan: Plan, previews: list[StepPreview]) -> str:
    lines = [
        f"{plan.title}  [{plan.environment}]",
        f"  runbook target: {plan.target} · data loss: {plan.data_loss} · reversible: {plan.reversible}",
    ]
    lines += [f"  note: {n}" for n in plan.notes]
    if previews and not any(p.changing for p in previews):
        lines.append("  NOTHING TO CHANGE: every step below is already done; running it would change nothing.")
    for i, p in enumerate(previews, 1):
        flag = "  [DESTRUCTIVE]" if p.step.destructive else ""
        lines.append(f"\n{i}. {p.step.title}{flag}")
        for hosts, text in p.groups:
            if hosts != ("*",):
                lines.append(f"   on {', '.join(hosts)}:")
            lines.extend(f"     {line}" for line in text.splitlines())
    return "\n".join(lines)


def preview_problems(previews: list[StepPreview]) -> list[str]:
    """Each distinct reason a preview is incomplete, in order."""
    return list(dict.fromkeys(p for preview in previews for p in preview.problems))
