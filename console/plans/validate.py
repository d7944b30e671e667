"""The profile's validations as the last step of every plan."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from console.config.model import Config, Environment, Host
from console.engine.plan import Facts, RunContext, Step, StepFailed
from console.events import Event
from console.flags import FlagSet
from console.plans.env_edit import EDIT_ENV
from console.plans.flags import RestartService, log_size
from console.probes import logs
from console.probes.logs import LogLine
from console.probes.parameters import probe_preview
from console.probes.snapshot import EnvironmentSnapshot, HostSnapshot
from console.profile import ProfileError, profile_of
from console.profile.model import Profile
from console.runbook.serialize import checks_dict
from console.runbook.validation import Check, validate
from console.transport.base import TransportError

if TYPE_CHECKING:
    from console.probes.hostread import SinceLog


async def log_offsets(ctx: RunContext) -> dict[str, int | None]:
    """Every host's log size now: the baseline for plans that do not restart the API, so that
    validation counts only the errors written during the run, not the incident's own."""

    async def one(host: Host) -> int | None:
        try:
            return await log_size(ctx, host)
        except TransportError:
            return None

    # All hosts at once: one after another costs a round trip per host on a fleet.
    sizes = await asyncio.gather(*(one(h) for h in ctx.env.hosts))
    return {h.name: size for h, size in zip(ctx.env.hosts, sizes, strict=True)}


def _baseline(ctx: RunContext, host: str) -> int | None:
    """Where this run's part of the log starts: the restart, else a recorded baseline."""
    offset = ctx.fact(RestartService.id, host, "log_offset")
    if offset is not None:
        return offset
    for by_host in ctx.facts.values():
        offsets = by_host.get("*", {}).get("log_offsets")
        if isinstance(offsets, dict) and offsets.get(host) is not None:
            return offsets[host]
    return None


class ValidateRollback(Step):
    id = "validate"
    title = "Validate (the runbook's checks)"
    scope = "environment"

    def __init__(self, code_reverted: bool = False) -> None:
        # After a code rollback the build has no Phase 4 code: the service logs all flags
        # False (legacy query) whatever the env file and the process environment say.
        self.code_reverted = code_reverted

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        env = ctx.env
        h = env.hosts[0]
        url = env.expand(env.api_url, h)
        log = (
            f"tail -{ctx.config.thresholds.error_lines_window} {env.expand(env.log_file, h)}"
            if env.log_file
            else env.log_command
        )
        health, probe, modes, request = _probe_words(env, url)
        try:
            profile = profile_of(env)
        except ProfileError:
            return health
        envs = "|".join(f.env for f in profile.flags.flags)
        lines = []
        for n, v in enumerate(profile.validations, 1):
            if v.check == "health":
                how = health
            elif v.check == "flags":
                how = f"{log} | grep '{profile.log.flag_line.head}'  (and /proc/$PID/environ | grep -E '^({envs})=')"
            elif v.check == "probe":
                how = " ; ".join(probe) + (f"  (modes: {modes})" if modes else "")
            elif v.check == "errors":
                how = f"{log} | grep ERROR | wc -l  → at most {v.max_error_lines or 0} (lines since the restart)"
            elif v.check == "response_time":
                how = f"{request} < {ctx.config.thresholds.response_time_s(v.below_s):g}s"
            else:  # memory
                how = f"RSS of the service process < {v.below_mb:g} MB" if v.below_mb else "RSS of the service process"
            lines.append(f"{n}. {v.title:<22} {how}")
        return "\n".join(lines)

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        profile = profile_of(ctx.env)
        since: dict[str, list[LogLine]] = {}
        snapshot = await ctx.prober.snapshot(ctx.env, database=False, since_log=self._read_since(ctx, since))
        snapshot = self._since_restart(ctx, snapshot, since)
        # A slow answer in the burst of every host probed at once is measured again first.
        snapshot = await ctx.prober.remeasure_slow(ctx.env, snapshot, response_limit(ctx.config, profile))
        if self.code_reverted:
            all_off = FlagSet.every(profile.flags, False)
            checks = validate(snapshot, ctx.config.thresholds, profile.validations, all_off)
            flag_checks = {v.id for v in profile.validations if v.check == "flags"}
            checks = tuple(_code_flags(ctx, snapshot, since, c) if c.name in flag_checks else c for c in checks)
        else:
            checks = validate(snapshot, ctx.config.thresholds, profile.validations, _edited(ctx, profile))
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
                f"{len(failed)} of {len(checks)} validations failed — " + "; ".join(failed),
                facts=facts,
                issue=_issue(profile, snapshot),
            )
        return facts

    @staticmethod
    def _read_since(ctx: RunContext, since: dict[str, list[LogLine]]) -> SinceLog:
        """What each host's log got after the restart (or since the run began), into ``since``;
        the snapshot reads the host's log from it (its flag line is then the restarted
        process's own), in the host's snapshot rather than in a second round after the
        slowest host's. No baseline, rotated, unreadable: the snapshot reads the log's last
        lines itself."""
        from console.probes.hostread import SinceLog

        def seen(host: Host, read: logs.LogRead) -> None:
            since[host.name] = read.lines

        return SinceLog(offset=lambda host: _baseline(ctx, host.name), seen=seen)

    @staticmethod
    def _since_restart(
        ctx: RunContext, snapshot: EnvironmentSnapshot, since: dict[str, list[LogLine]]
    ) -> EnvironmentSnapshot:
        """Count ERROR lines only in what the restarted process wrote (the runbook's intent),
        or, with no restart, in what was written since the run began."""
        hosts: list[HostSnapshot] = []
        for hs in snapshot.hosts:
            lines = since.get(hs.host)
            if lines is not None and not hs.unreachable:
                since_what = "the restart" if _restarted(ctx, hs.host) else "the run began"
                window = ctx.config.thresholds.error_lines_window
                span = f"the {'last ' if len(lines) >= window else ''}{len(lines)} lines since {since_what}"
                hs = dataclasses.replace(hs, logs=ctx.prober.summarize(lines, span=span))
            hosts.append(hs)
        return dataclasses.replace(snapshot, hosts=tuple(hosts))

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        return f"all {len(facts.get('checks') or [])} validations pass"


def _edited(ctx: RunContext, profile: Profile) -> dict[str, FlagSet]:
    """The flags this run's edit left in each host's env file: what the process and the log
    must show, and the file must still say (a flag-less plan: none, the env file decides)."""
    out = {}
    for host, facts in ctx.facts.get(EDIT_ENV, {}).items():
        after = facts.get("after")
        if after:
            try:
                out[host] = FlagSet(profile.flags, after)
            except ValueError:  # journaled under another profile's flags: the env file decides
                continue
    return out


def _probe_words(env: Environment, url: str) -> tuple[str, list[str], str, str]:
    """The profile's health endpoints as curls, its probe's requests, its modes, its request's name."""
    try:
        profile = profile_of(env)
    except ProfileError:
        broken = "(the service profile cannot be read: `rollback-console config validate` says why)"
        return broken, [], "", "the request"
    health = profile.health
    curls = " ; ".join(f"curl {url}{e.endpoint}" for e in (health.liveness, health.readiness) if e)
    modes = ", ".join(m.id for m in profile.probe.answer.modes)
    return curls, probe_preview(env, url), modes, profile.probe.request.title or "the request"


def _restarted(ctx: RunContext, host: str) -> bool:
    return ctx.fact(RestartService.id, host, "log_offset") is not None


def _code_flags(ctx: RunContext, snapshot: EnvironmentSnapshot, since: dict[str, list[LogLine]], check: Check) -> Check:
    """Check 2 after a code rollback: the service runs the legacy query whatever the env file says.

    The simulator's reverted build logs all flags False; the real pre-Phase 4 code logs no
    flag line at all, so none since the restart also passes when the API answers in legacy mode."""
    profile = profile_of(ctx.env)
    all_off = FlagSet.every(profile.flags, False)
    head = profile.log.flag_line.head
    per_host = []
    # The modes the probe answers in with every flag off (Phase 4: legacy).
    legacy = profile.probe.answer.expected_modes(profile.flags.effective(dict(all_off)))
    for h in snapshot.hosts:
        if h.unreachable:
            per_host.append((h.host, False, f"unreachable: {h.unreachable}"))
            continue
        env_file = h.flags.env_file.describe() if h.flags.env_file else "unreadable"
        ignored = f"the reverted build ignores the env file's flags ({env_file})"
        lines = since.get(h.host)
        latest = logs.rules_for(profile.log).latest_flags(lines, profile.flags) if lines is not None else None
        log = latest[0] if latest else (h.flags.log if lines is None else None)
        if log is not None:
            ok = log == all_off
            detail = f"log: {log.describe()}" + (f"; {ignored}" if ok else " — expected all off (the code before)")
        elif legacy and h.probe.kind == "ok" and set(legacy) <= set(h.probe.modes):
            ok, detail = True, f"no {head} line since the restart and a legacy answer; {ignored}"
        else:
            ok, detail = False, h.flags.log_error or f"no {head} line in the log and no legacy answer"
        per_host.append((h.host, ok, detail))
    passed = all(ok for _, ok, _ in per_host)
    if len(per_host) == 1:
        detail = per_host[0][2]
    else:
        failed = [f"{n}: {d}" for n, ok, d in per_host if not ok]
        detail = f"all {len(per_host)} hosts pass" if passed else "; ".join(failed[:3])
    return Check(check.name, passed, detail, tuple(per_host), check.title)


def _issue(profile: Profile, snapshot: EnvironmentSnapshot) -> str | None:
    """The profile's troubleshooting issue that the failed validation's evidence points to."""

    def issue(fact: str) -> str | None:
        found = profile.issue_for(fact)
        return found.id if found else None

    for h in snapshot.hosts:
        f = h.flags
        if f.stale_process:
            return issue("stale_process")
        if f.env_file is not None and f.log is not None and f.log != f.env_file:
            partial = any(
                flag.depends_on and f.env_file[flag.depends_on] and not f.env_file[flag.id] and f.log[flag.id]
                for flag in f.env_file.flags
            )
            return issue("partial_flag_mismatch") if partial else issue("log_flag_mismatch")
    return None


def response_limit(config: Config, profile: Profile) -> float:
    """The response time a validation allows (the config's, else the profile's below_s)."""
    below = next((v.below_s for v in profile.validations if v.check == "response_time"), None)
    return config.thresholds.response_time_s(below)
