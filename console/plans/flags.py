"""Steps that change feature flags: edit the env file (env_edit.py), restart, wait for the effect."""

from __future__ import annotations

import asyncio
import shlex
import time

from console.config.model import Host
from console.engine.plan import Facts, Remedy, RunContext, Step, StepFailed
from console.flags import FlagSet
from console.plans.env_edit import EDIT_ENV, EnvEdit, RestoreFlags, SetFlags
from console.probes import logs
from console.probes.hostread import NotRunning, read_log_window, read_pid
from console.probes.parameters import ParameterProblem, probe_preview
from console.profile import ProfileError, profile_of
from console.runbook.issues import RESTART_FAILED, STALE_PROCESS
from console.transport.base import TransportError

RESTART_TIMEOUT_S = 120.0
EFFECT_TIMEOUT_S = 45.0
STALE_GRACE_S = 3.0  # a new process with old flags for this long means a stale environment

__all__ = ["EDIT_ENV", "AwaitEffect", "EnvEdit", "RestartService", "RestoreFlags", "SetFlags"]


class RestartService(Step):
    """Restart the API so it re-reads the env file (reload first where configured) — only
    on hosts where an earlier step changed something: a plan that changed nothing there
    does not restart it."""

    id = "restart"
    title = "Restart the API"
    changes = True

    def __init__(self, only: set[str] | None = None) -> None:
        self.only = only  # hosts to restart; None = all

    def commands(self, ctx: RunContext, host: Host) -> list[str]:
        env = ctx.env
        out = [env.expand(env.reload_command, host)] if env.reload_command else []
        out.append(env.expand(env.restart_command, host))
        return out

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return "\n".join(f"$ {c}" for c in self.commands(ctx, host))

    async def preview_change(self, ctx: RunContext, host: Host | None) -> tuple[str, bool]:
        assert host is not None
        text = await self.preview(ctx, host)
        if self.only is not None and host.name not in self.only:
            return "# nothing changed on this host: not restarted", False
        earlier = _earlier_changing(ctx, self)
        if earlier is not None and not any(ctx.previewed.get(s.id, {}).get(host.name, True) for s in earlier):
            return f"{text}\n# not run: nothing before it changes this host", False
        return text, True

    def _skip(self, ctx: RunContext, host: Host) -> str | None:
        if self.only is not None and host.name not in self.only:
            return "nothing changed on this host"
        if not ctx.changed_before(self, host.name):
            return "nothing changed on this host: not restarted"
        return None

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        skip = self._skip(ctx, host)
        if skip:
            return {"skip": skip}
        transport = await ctx.transport(host)
        # Both read-only and independent: one round trip's worth of waiting, not two.
        pid_before, log_offset = await asyncio.gather(_current_pid(ctx, host, transport), log_size(ctx, host))
        return {"pid_before": pid_before, "log_offset": log_offset, "at": time.time()}

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        intent = ctx.intent(self.id, host)
        if intent.get("skip"):
            return {"skipped": intent["skip"], "changed": False}
        transport = await ctx.transport(host)
        pid_before, log_offset = intent.get("pid_before"), intent.get("log_offset")
        if not ctx.intent_is_fresh(self.id, host):
            # A resume or a retry: the intent was taken earlier, things may have moved since.
            now = await _current_pid(ctx, host, transport)
            if pid_before is not None and now is not None and now != pid_before:
                # Restarted after the intent was journaled (a resume after a kill): not again.
                return {
                    "pid_before": pid_before,
                    "restarted_at": intent["at"],
                    "commands": [],
                    "log_offset": log_offset,
                    "changed": True,
                    "already": f"restarted since the intent (pid {pid_before} → {now})",
                }
            # Measured again: a retry after a failed restart counts the log from this attempt.
            pid_before, log_offset = await asyncio.gather(_current_pid(ctx, host, transport), log_size(ctx, host))
        # Else the intent's pid and log size were read a moment ago, in this attempt, and
        # nothing ran in between: reading them again would cost two commands per host.
        started = time.time()
        outputs = []
        for command in self.commands(ctx, host):
            result = await transport.run(command, timeout=RESTART_TIMEOUT_S, on_output=ctx.output(self.id, host.name))
            outputs.append({"command": command, "exit": result.exit_status, "elapsed_s": round(result.elapsed_s, 3)})
            if not result.ok:
                log = await service_log(ctx, host)
                raise StepFailed(
                    f"`{command}` failed ({result.summary()}): the API may not have started",
                    output=(result.stdout + result.stderr)[-4000:] + ("\n--- service log ---\n" + log if log else ""),
                    issue=RESTART_FAILED,
                    facts={"pid_before": pid_before, "commands": outputs},
                )
        return {
            "pid_before": pid_before,
            "restarted_at": started,
            "commands": outputs,
            "log_offset": log_offset,
            "changed": True,
        }

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        assert host is not None
        if facts.get("skipped"):
            return facts["skipped"]
        transport = await ctx.transport(host)
        try:
            pid = await read_pid(ctx.env, host, transport, 10)
        except TransportError as exc:
            log = await service_log(ctx, host)
            said = "is not running" if isinstance(exc, NotRunning) else "could not be checked"
            raise StepFailed(
                f"the API {said} after the restart: {exc}",
                output=log,
                issue=RESTART_FAILED,
            ) from None
        facts["pid_after"] = pid
        same = " (same pid: the process was not replaced)" if pid == facts.get("pid_before") else ""
        return f"running as pid {pid}{same}" + (f"; {facts['already']}" if facts.get("already") else "")


def _earlier_changing(ctx: RunContext, step: Step) -> list[Step] | None:
    """The changing host steps before ``step`` in the plan (None: no plan known)."""
    if ctx.plan is None:
        return None
    out = []
    for s in ctx.plan.steps:
        if s is step:
            return out
        if s.changes and s.scope == "host":
            out.append(s)
    return out


async def _current_pid(ctx: RunContext, host: Host, transport) -> int | None:
    try:
        return await read_pid(ctx.env, host, transport, 10)
    except TransportError:
        return None


async def log_size(ctx: RunContext, host: Host) -> int | None:
    """Size of the log file now, so validation can count only what the new process wrote."""
    env = ctx.env
    if not env.log_file:
        return None
    transport = await ctx.transport(host)
    try:
        # A stat over the open file channel, not a command: no process on the host.
        return await transport.size(env.expand(env.log_file, host))
    except TransportError:
        return None


async def service_log(ctx: RunContext, host: Host) -> str:
    """The service log (journalctl analogue), the first thing troubleshooting 2 asks for."""
    env = ctx.env
    if not env.service_log_command:
        return ""
    try:
        transport = await ctx.transport(host)
        result = await transport.run(env.expand(env.service_log_command, host), timeout=20)
    except TransportError as exc:
        return f"(could not read the service log: {exc})"
    return (result.stdout + result.stderr)[-6000:]


class AwaitEffect(Step):
    """Wait until the running process has the new flags and the log's flag line shows them."""

    id = "effect"
    title = "Wait for the new flags to take effect"

    def __init__(self, only: set[str] | None = None, timeout_s: float = EFFECT_TIMEOUT_S) -> None:
        self.only = only
        self.timeout_s = timeout_s

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        env = ctx.env
        profile = profile_of(env)
        envs = "|".join(f.env for f in profile.flags.flags)
        return (
            f"$ {env.expand(env.pid_command, host)}\n"
            f"$ cat /proc/$PID/environ | tr '\\0' '\\n' | grep -E '^({envs})='\n"
            f"$ {probe_preview(env, env.expand(env.api_url, host), as_curl=True)[-1]}\n"
            f"$ {'tail -n 200 ' + shlex.quote(env.expand(env.log_file, host)) if env.log_file else env.log_command}"
            f" | grep '{profile.log.flag_line.head}'"
        )

    def expected(self, ctx: RunContext, host: Host) -> FlagSet | None:
        after = ctx.fact(EDIT_ENV, host.name, "after")
        return FlagSet(profile_of(ctx.env).flags, after) if after else None

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        if self.only is not None and host.name not in self.only:
            return {"skipped": "flags unchanged on this host"}
        if ctx.fact(RestartService.id, host.name, "skipped"):
            return {"skipped": "not restarted on this host: nothing to wait for"}
        want = self.expected(ctx, host)
        if want is None:
            raise StepFailed("no flag edit is recorded for this host, so there is nothing to wait for")
        transport = await ctx.transport(host)
        restarted_at = ctx.fact(RestartService.id, host.name, "restarted_at") or time.time()
        pid_before = ctx.fact(RestartService.id, host.name, "pid_before")
        # The restart's check just read the new pid: start from it rather than ask again
        # (the pid command may be a process of its own); later rounds read it afresh.
        known_pid = ctx.fact(RestartService.id, host.name, "pid_after")
        deadline = time.monotonic() + self.timeout_s
        stale_since: float | None = None
        seen: dict = {}
        while True:
            try:
                pid, known_pid = known_pid or await read_pid(ctx.env, host, transport, 10), None
                environ = await transport.process_environ(pid)
                process = FlagSet.from_environ(want.rules, environ)
                seen.update(pid=pid, process=process.as_dict())
                if process == want:
                    process_at = time.time()
                    line, trigger_error = await self._trigger_and_read(ctx, host, transport, want)
                    seen["trigger"] = trigger_error
                    if line:
                        now = time.time()
                        return {
                            "pid": pid,
                            "process_effect_s": round(process_at - restarted_at, 3),
                            "time_to_effect_s": round(now - restarted_at, 3),
                            "log_line": line[:300],
                            "flags": want.as_dict(),
                        }
                elif pid != pid_before:
                    stale_since = stale_since or time.monotonic()
                    if time.monotonic() - stale_since > STALE_GRACE_S:
                        raise self._stale(ctx, host, pid, process, want)
            except TransportError as exc:
                seen["error"] = str(exc)
            if time.monotonic() > deadline:
                if seen.get("error"):
                    detail = seen["error"]
                elif seen.get("process") == want.as_dict():
                    # The process is right; what is missing is the log's word for it.
                    why = f": the probe's request that makes it log failed ({seen['trigger']})"
                    detail = "the process has the new flags, but the log shows no flag line with them" + (
                        why if seen.get("trigger") else ""
                    )
                else:
                    detail = f"process has {seen.get('process')}, wanted {want.as_dict()}"
                raise StepFailed(
                    f"the new flags did not take effect within {self.timeout_s:.0f}s ({detail})",
                    issue=STALE_PROCESS,
                    remedy=self._remedy(ctx, host),
                )
            await asyncio.sleep(0.2)

    async def _trigger_and_read(
        self, ctx: RunContext, host: Host, transport, want: FlagSet
    ) -> tuple[str | None, str | None]:
        """The profile's probe request (Phase 4: best-times) makes the service log its flag line; then read it back.
        Returns the flag line (None: not there yet) and why the request failed, if it did."""
        env = ctx.env
        trigger_error: str | None = None
        try:
            report = await ctx.prober.probe_once(env, host, transport)
            trigger_error = report.problem
        except (ProfileError, ParameterProblem) as exc:
            # A missing secret does not come back by waiting: say so now, not in 45 s.
            raise StepFailed(f"cannot send the request that makes the service log its flags: {exc}") from None
        except Exception as exc:  # the log check below decides; the validation step reports HTTP problems
            trigger_error = f"{type(exc).__name__}: {exc}"
        read = await read_log_window(env, host, transport, 200, 200, 10)
        latest = logs.rules_for(profile_of(env).log).latest_flags(read.with_flag_line, want.rules)
        if latest and latest[0] == want:
            return latest[1], None
        return None, trigger_error

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        if facts.get("skipped"):
            return facts["skipped"]
        return (
            f"pid {facts['pid']} runs with the new flags {facts['process_effect_s']:.2f}s after the restart; "
            f"the log shows them at {facts['time_to_effect_s']:.2f}s (time to effect)"
        )

    def _remedy(self, ctx: RunContext, host: Host) -> Remedy | None:
        """The environment's profile's remedy for issue 1 (Phase 4: the forced fresh start, else
        reload then restart), with this environment's commands; None when it has none of them."""
        from console.profile import ProfileError
        from console.runbook.troubleshooting import fix_values

        try:
            profile = profile_of(ctx.env)
            found = profile.issue_for(STALE_PROCESS)
            known = found.remedy if found else None
        except (ProfileError, KeyError):  # `config validate` names a broken profile
            return None
        if known is None:
            return None
        values = fix_values(ctx.env, host, profile)
        commands = known.commands(values)
        assert found is not None  # known is found's
        return Remedy(known.title, commands, found.id, found.heading) if commands else None

    def _stale(self, ctx: RunContext, host: Host, pid: int, process: FlagSet, want: FlagSet) -> StepFailed:
        diff = ", ".join(
            f"{f.label}: process {process[f.id]} ≠ env file {want[f.id]}"
            for f in want.flags
            if process[f.id] != want[f.id]
        )
        return StepFailed(
            f"the restart left the stale environment: new pid {pid} still has the old flags ({diff}). "
            "The restart did not re-read the env file (docker-compose restart does not; systemd needs "
            "daemon-reload when the unit changed).",
            issue=STALE_PROCESS,
            remedy=self._remedy(ctx, host),
            facts={"stale": True, "pid": pid, "process": process.as_dict()},
        )

    async def remedy(self, ctx: RunContext, host: Host | None, failure: StepFailed) -> None:
        assert host is not None
        if failure.remedy is None:
            raise StepFailed("no fix is configured: set force_restart_command or reload_command for this environment")
        transport = await ctx.transport(host)
        restart_facts = ctx.facts.setdefault(RestartService.id, {}).setdefault(host.name, {})
        restart_facts.update(pid_before=None, pid_after=None, restarted_at=time.time(), remedied=True)
        for command in failure.remedy.commands:
            result = await transport.run(command, timeout=RESTART_TIMEOUT_S, on_output=ctx.output(self.id, host.name))
            if not result.ok:
                log = await service_log(ctx, host)
                raise StepFailed(
                    f"`{command}` failed ({result.summary()})",
                    output=log,
                    issue=RESTART_FAILED,
                )
