"""Full code rollback: find the Phase 4 commit, `git revert` it, rebuild, restart.

`git reset --hard` is offered only behind an explicit destructive confirmation.
"""

from __future__ import annotations

import shlex
from typing import Any

from console.config.model import Environment, Host
from console.engine.plan import Facts, Plan, RunContext, Step, StepFailed
from console.flags import ADVANCED, CONTENT_TYPE, TIME_WEIGHTING
from console.plans.flags import AwaitEffect, RestartService, SetFlags
from console.plans.validate import ValidateRollback

GIT_TIMEOUT_S = 60.0
REBUILD_TIMEOUT_S = 900.0
SEARCH_DEPTH = 500  # commits searched for the Phase 4 message


def _git(ctx: RunContext, host: Host, args: str) -> str:
    assert ctx.env.repo_path
    return f"git -C {shlex.quote(ctx.env.expand(ctx.env.repo_path, host))} {args}"


async def _run(ctx: RunContext, step: Step, host: Host, command: str, timeout: float = GIT_TIMEOUT_S):
    transport = await ctx.transport(host)
    return await transport.run(command, timeout=timeout, on_output=ctx.output(step.id, host.name))


class FindPhase4Commit(Step):
    id = "find-commit"
    title = "Find the Phase 4 commit"

    def command(self, ctx: RunContext, host: Host) -> str:
        message = shlex.quote(ctx.env.phase4_commit_message)
        return _git(ctx, host, f"log -n {SEARCH_DEPTH} --format='%H %s' --fixed-strings --grep={message}")

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return f"$ {self.command(ctx, host)}"

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        result = await _run(ctx, self, host, self.command(ctx, host))
        if not result.ok:
            raise StepFailed(
                f"git log failed in {ctx.env.repo_path} ({result.summary()}): {result.stderr.strip()[:300]}"
            )
        wanted = ctx.env.phase4_commit_message
        commits = [line.split(" ", 1) for line in result.stdout.splitlines() if " " in line]
        matches = [(sha, subject) for sha, subject in commits if subject.startswith(wanted)]
        if not matches:
            raise StepFailed(f"no commit titled {wanted!r} in the last {SEARCH_DEPTH} commits of {ctx.env.repo_path}")
        sha, subject = matches[0]
        head = await _run(ctx, self, host, _git(ctx, host, "rev-parse HEAD"))
        reverted = await _run(
            ctx,
            self,
            host,
            _git(
                ctx,
                host,
                f"log -n {SEARCH_DEPTH} --format=%H --fixed-strings --grep="
                + shlex.quote(f"This reverts commit {sha}"),
            ),
        )
        return {
            "commit": sha,
            "subject": subject,
            "head_before": head.stdout.strip(),
            "already_reverted": bool(reverted.stdout.strip()),
        }

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        note = " (already reverted: nothing to do)" if facts["already_reverted"] else ""
        return f"{facts['commit'][:7]} {facts['subject']}{note}"


class RevertCommit(Step):
    id = "revert"
    title = "Revert the Phase 4 commit (git revert)"

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return f"$ {_git(ctx, host, 'revert --no-edit <the Phase 4 commit found above>')}"

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        found = ctx.facts.get(FindPhase4Commit.id, {}).get(host.name)
        if not found:
            raise StepFailed("the Phase 4 commit was not found on this host")
        if found["already_reverted"]:
            return {"skipped": "already reverted", "commit": found["commit"]}
        sha = found["commit"]
        result = await _run(ctx, self, host, _git(ctx, host, f"revert --no-edit {shlex.quote(sha)}"))
        if not result.ok:
            await _run(ctx, self, host, _git(ctx, host, "revert --abort"))
            raise StepFailed(
                f"git revert {sha[:7]} failed and was aborted (the checkout is as it was): "
                f"{(result.stdout + result.stderr).strip()[-400:]}",
                output=result.stdout + result.stderr,
            )
        head = await _run(ctx, self, host, _git(ctx, host, "rev-parse HEAD"))
        return {"commit": sha, "revert_commit": head.stdout.strip(), "head_before": found["head_before"]}

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        assert host is not None
        if facts.get("skipped"):
            return facts["skipped"]
        status = await _run(ctx, self, host, _git(ctx, host, "status --porcelain --untracked-files=no"))
        if status.stdout.strip():
            raise StepFailed(f"the checkout is not clean after the revert:\n{status.stdout[:400]}")
        return f"HEAD is now {facts['revert_commit'][:7]} (reverts {facts['commit'][:7]})"

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        hosts = {h for h, f in facts_by_host.items() if f.get("revert_commit")}
        if not hosts:
            return []
        return [
            RevertTheRevert({h: facts_by_host[h]["revert_commit"] for h in hosts}),
            Rebuild(only=hosts),
            RestartService(only=hosts),
        ]


class RevertTheRevert(Step):
    id = "revert-revert"
    title = "Re-apply Phase 4 (revert the revert)"

    def __init__(self, commits: dict[str, str]) -> None:
        self.commits = commits

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        sha = self.commits.get(host.name)
        return f"$ {_git(ctx, host, f'revert --no-edit {sha}')}" if sha else "# nothing on this host"

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        sha = self.commits.get(host.name)
        if not sha:
            return {"skipped": "nothing reverted on this host"}
        result = await _run(ctx, self, host, _git(ctx, host, f"revert --no-edit {shlex.quote(sha)}"))
        if not result.ok:
            await _run(ctx, self, host, _git(ctx, host, "revert --abort"))
            raise StepFailed(f"git revert {sha[:7]} failed and was aborted: {result.stderr.strip()[-400:]}")
        return {"reverted": sha}


class ResetHard(Step):
    """The runbook's destructive alternative: drop the last commit."""

    id = "reset-hard"
    title = "Reset to the commit before HEAD (git reset --hard HEAD~1) — DESTRUCTIVE"
    destructive = True

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return (
            f"$ {_git(ctx, host, 'reset --hard HEAD~1')}   # discards the last commit and any local changes\n"
            "# only if HEAD is the Phase 4 commit; otherwise nothing is changed"
        )

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        head = await _run(ctx, self, host, _git(ctx, host, "log -1 --format='%H %s'"))
        sha, _, subject = head.stdout.strip().partition(" ")
        if not head.ok or not subject.startswith(ctx.env.phase4_commit_message):
            # The runbook's HEAD~1 is right only when Phase 4 is the last commit; otherwise it
            # would throw away a later commit and leave Phase 4 in place.
            raise StepFailed(
                f"HEAD is {sha[:7] or '?'} {subject or head.stderr.strip()[:200]!r}, not the Phase 4 commit: "
                "`git reset --hard HEAD~1` would discard that commit and keep Phase 4. Nothing was changed; "
                "roll back with `git revert` instead (rollback code without --reset-hard)."
            )
        result = await _run(ctx, self, host, _git(ctx, host, "reset --hard HEAD~1"))
        if not result.ok:
            raise StepFailed(f"git reset failed: {result.stderr.strip()[-400:]}")
        return {"head_before": sha}


class Rebuild(Step):
    id = "rebuild"
    title = "Rebuild"

    def __init__(self, only: set[str] | None = None) -> None:
        self.only = only

    def command(self, ctx: RunContext, host: Host) -> str:
        env = ctx.env
        assert env.rebuild_command and env.repo_path
        return f"cd {shlex.quote(env.expand(env.repo_path, host))} && {env.expand(env.rebuild_command, host)}"

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return f"$ {self.command(ctx, host)}"

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        if self.only is not None and host.name not in self.only:
            return {"skipped": "nothing changed on this host"}
        if ctx.fact(RevertCommit.id, host.name, "skipped"):
            return {"skipped": "the code was already reverted"}
        result = await _run(ctx, self, host, self.command(ctx, host), REBUILD_TIMEOUT_S)
        if not result.ok:
            raise StepFailed(f"rebuild failed ({result.summary()})", output=(result.stdout + result.stderr)[-4000:])
        return {"elapsed_s": round(result.elapsed_s, 3)}


def _require(env: Environment, *keys: str) -> None:
    missing = [k for k in keys if not getattr(env, k)]
    if missing:
        from console.plans import PlanError

        raise PlanError(f"environment {env.name!r} has no {', '.join(missing)} configured: needed for a code rollback")


def code_steps(env: Environment, options: dict[str, Any]) -> list[Step]:
    _require(env, "repo_path", "rebuild_command")
    if options.get("reset_hard"):
        return [ResetHard(), Rebuild(), RestartService()]
    return [FindPhase4Commit(), RevertCommit(), Rebuild(), RestartService()]


def code_plan(env: Environment, options: dict[str, Any]) -> Plan:
    return Plan(
        action="code",
        environment=env.name,
        title="Full code rollback: revert the Phase 4 commit, rebuild, restart",
        steps=(*code_steps(env, options), ValidateRollback(code_reverted=True)),
        target="< 10 min",
        target_s=600,
        data_loss="None (code only; the database is left as it is)",
        reversible="Yes (revert the revert)" if not options.get("reset_hard") else "Only from the reflog",
    )


def full_plan(env: Environment, options: dict[str, Any]) -> Plan:
    """Flags off first (the columns must not be read when they go), code, then database."""
    from console.plans.database import database_steps

    if env.database is None:
        from console.plans import PlanError

        raise PlanError(f"environment {env.name!r} has no [database] section: a full rollback needs it")
    steps: list[Step] = [
        SetFlags({ADVANCED: False, TIME_WEIGHTING: False, CONTENT_TYPE: False}),
        *code_steps(env, options),
        AwaitEffect(),
        *database_steps(env, options),
        ValidateRollback(),
    ]
    return Plan(
        action="full",
        environment=env.name,
        title="Full rollback: flags off, revert the Phase 4 code, roll back migration 004",
        steps=tuple(steps),
        target="< 10 min",
        target_s=600,
        data_loss="Content-type data (has_video, has_media) — a copy is kept, so restore loses nothing",
        reversible="Yes: revert the revert, and re-apply migration 004 from the kept copy",
    )
