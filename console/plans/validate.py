"""The five validations as the last step of every plan."""

from __future__ import annotations

import dataclasses
import shlex

from console.config.model import Host
from console.engine.events import Event
from console.engine.plan import Facts, RunContext, Step, StepFailed
from console.plans.flags import RestartService
from console.probes import logs
from console.probes.serialize import checks_dict
from console.probes.snapshot import EnvironmentSnapshot, HostSnapshot
from console.transport.base import TAIL_WINDOW, split_tail
from console.validation import validate


async def lines_since(ctx: RunContext, host: Host, offset: int) -> list[str] | None:
    """Log lines written after ``offset`` (bounded); None if the log was rotated or unreadable."""
    env = ctx.env
    if not env.log_file:
        return None
    path = shlex.quote(env.expand(env.log_file, host))
    transport = await ctx.transport(host)
    # tail -c +N starts at byte N (1-based); keep only the last window of it.
    result = await transport.run(
        f'size=$(stat -c %s -- {path}) && [ "$size" -ge {int(offset)} ] && tail -c +{int(offset) + 1} -- {path} '
        f"| tail -c {TAIL_WINDOW}",
        timeout=15,
    )
    if not result.ok:
        return None
    data = result.stdout.encode("utf-8", errors="replace")
    window = ctx.config.thresholds.error_lines_window
    return split_tail(data, window, cut_first=len(data) >= TAIL_WINDOW)


class ValidateRollback(Step):
    id = "validate"
    title = "Validate (the runbook's five checks)"
    scope = "environment"

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        env = ctx.env
        h = env.hosts[0]
        url = env.expand(env.api_url, h)
        log = (
            f"tail -{ctx.config.thresholds.error_lines_window} {env.expand(env.log_file, h)}"
            if env.log_file
            else env.log_command
        )
        return "\n".join(
            [
                f"1. health          curl {url}/health ; curl {url}/health/ready",
                f"2. flag status     {log} | grep 'Feature flags'  (and /proc/$PID/environ)",
                f"3. recommendations POST {url}/auth/login ; GET {url}/analytics/predictive/best-times/"
                f"{env.channel_id}?days={env.days}  (advanced = non-empty lists)",
                f"4. error rate      {log} | grep ERROR | wc -l  → 0 (lines since the restart)",
                f"5. response time   best-times < {ctx.config.thresholds.response_time_ok_s:g}s",
            ]
        )

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        snapshot = await ctx.prober.snapshot(ctx.env, database=False)
        snapshot = await self._since_restart(ctx, snapshot)
        checks = validate(snapshot, ctx.config.thresholds)
        facts = {"checks": checks_dict(checks), "passed": all(c.passed for c in checks)}
        ctx.emit(
            Event(
                "validation",
                ctx.run_id,
                step=self.id,
                data=facts,
                message=", ".join(f"{c.title}: {'PASS' if c.passed else 'FAIL'}" for c in checks),
            )
        )
        if not facts["passed"]:
            failed = [f"{c.title}: {c.detail}" for c in checks if not c.passed]
            raise StepFailed(
                f"{len(failed)} of 5 validations failed — " + "; ".join(failed),
                facts=facts,
                troubleshooting=_troubleshooting(snapshot),
            )
        return facts

    async def _since_restart(self, ctx: RunContext, snapshot: EnvironmentSnapshot) -> EnvironmentSnapshot:
        """Count ERROR lines only in what the restarted process wrote (the runbook's intent)."""
        hosts: list[HostSnapshot] = []
        by_name = {h.name: h for h in ctx.env.hosts}
        for hs in snapshot.hosts:
            offset = ctx.fact(RestartService.id, hs.host, "log_offset")
            lines = None
            if offset is not None and not hs.unreachable:
                lines = await lines_since(ctx, by_name[hs.host], offset)
            if lines is not None:
                hs = dataclasses.replace(hs, logs=logs.summarize(lines))
            hosts.append(hs)
        return dataclasses.replace(snapshot, hosts=tuple(hosts))

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        return "all 5 validations pass"


def _troubleshooting(snapshot: EnvironmentSnapshot) -> str | None:
    for h in snapshot.hosts:
        f = h.flags
        if f.stale_process:
            return "Issue 1: Environment changes not taking effect"
        if f.env_file and f.env_file.advanced and not (f.env_file.time_weighting and f.env_file.content_type):
            if f.log and f.log != f.env_file:
                return "Issue 4: Partial rollback - only one flag changed"
    return None
