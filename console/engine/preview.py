"""A plan's preview: every step's exact edit, command or SQL, per host, changing nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from console.engine.plan import Plan, RunContext, Step


@dataclass(frozen=True)
class StepPreview:
    step: Step
    # (hosts, text): hosts sharing the same preview are grouped; ("*",) for environment steps
    groups: tuple[tuple[tuple[str, ...], str], ...]


async def preview_plan(ctx: RunContext, plan: Plan) -> list[StepPreview]:
    out = []
    for step in plan.steps:
        if step.scope == "environment":
            out.append(StepPreview(step, ((("*",), await step.preview(ctx, None)),)))
            continue
        texts = await asyncio.gather(*(step.preview(ctx, h) for h in ctx.env.hosts))
        groups: dict[str, list[str]] = {}
        for host, text in zip(ctx.env.hosts, texts, strict=True):
            groups.setdefault(text, []).append(host.name)
        out.append(StepPreview(step, tuple((tuple(hosts), text) for text, hosts in groups.items())))
    return out


def preview_text(plan: Plan, previews: list[StepPreview]) -> str:
    lines = [
        f"{plan.title}  [{plan.environment}]",
        f"  runbook target: {plan.target} · data loss: {plan.data_loss} · reversible: {plan.reversible}",
    ]
    lines += [f"  note: {n}" for n in plan.notes]
    for i, p in enumerate(previews, 1):
        flag = "  [DESTRUCTIVE]" if p.step.destructive else ""
        lines.append(f"\n{i}. {p.step.title}{flag}")
        for hosts, text in p.groups:
            if hosts != ("*",):
                lines.append(f"   on {', '.join(hosts)}:")
            lines.extend(f"     {line}" for line in text.splitlines())
    return "\n".join(lines)
