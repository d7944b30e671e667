"""A plan's preview: every step's exact edit, command or SQL, per host, changing nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from console.config.model import Host
from console.engine.plan import Plan, RunContext, Step, StepFailed
from console.transport.base import TransportError


@dataclass(frozen=True)
class StepPreview:
    step: Step
    # (hosts, text): hosts sharing the same preview are grouped; ("*",) for environment steps
    groups: tuple[tuple[tuple[str, ...], str], ...]
    # What could not be previewed (a host that cannot be reached, an unknown host key):
    # the preview is incomplete, and the run would fail there.
    problems: tuple[str, ...] = ()


async def _one(ctx: RunContext, step: Step, host: Host | None, problems: list[str]) -> str:
    try:
        return await step.preview(ctx, host)
    except (TransportError, StepFailed) as exc:
        where = f" on {host.name}" if host else ""
        problems.append(f"{host.name}: {exc}" if host and host.name not in str(exc) else str(exc))
        return f"# cannot preview{where}: {exc}"


async def preview_plan(ctx: RunContext, plan: Plan) -> list[StepPreview]:
    out = []
    for step in plan.steps:
        problems: list[str] = []
        if step.scope == "environment":
            text = await _one(ctx, step, None, problems)
            out.append(StepPreview(step, ((("*",), text),), tuple(problems)))
            continue
        texts = await asyncio.gather(*(_one(ctx, step, h, problems) for h in ctx.env.hosts))
        groups: dict[str, list[str]] = {}
        for host, text in zip(ctx.env.hosts, texts, strict=True):
            groups.setdefault(text, []).append(host.name)
        out.append(StepPreview(step, tuple((tuple(hosts), text) for text, hosts in groups.items()), tuple(problems)))
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


def preview_problems(previews: list[StepPreview]) -> list[str]:
    """Each distinct reason a preview is incomplete, in order."""
    return list(dict.fromkeys(p for preview in previews for p in preview.problems))
