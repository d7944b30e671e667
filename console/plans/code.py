"""Full code rollback: find the Phase 4 commit, `git revert` it, rebuild, restart.

`git reset --hard` is offered only behind an explicit destructive confirmation. Each git
step journals HEAD before it moves it; undo puts HEAD (and so the tree) back exactly.
"""

from __future__ import annotations

import shlex
from typing import Any

from console.config.model import Environment, Host
from console.engine.plan import Facts, IntentStale, Plan, RunContext, Step, StepFailed
from console.flags import ADVANCED, CONTENT_TYPE, TIME_WEIGHTING
from console.plans.checkout import Rebuild, RestoreCode, git, git_head, run
from console.plans.flags import AwaitEffect, RestartService, SetFlags
from console.plans.validate import ValidateRollback
from console.transport.base import TransportError

SEARCH_DEPTH = 500  # commits searched for the Phase 4 message
CHANGED = {"changed": True}


async def find_phase4(ctx: RunContext, step: Step, host: Host) -> Facts:
    """The Phase 4 commit, HEAD, and whether a revert of it is already in the history."""
    message = shlex.quote(ctx.env.phase4_commit_message)
    result = await run(
        ctx, step, host, git(ctx, host, f"log -n {SEARCH_DEPTH} --format='%H %s' --fixed-strings --grep={message}")
    )
    if not result.ok:
        raise StepFailed(f"git log failed in {ctx.env.repo_path} ({result.summary()}): {result.stderr.strip()[:300]}")
    wanted = ctx.env.phase4_commit_message
    commits = [line.split(" ", 1) for line in result.stdout.splitlines() if " " in line]
    matches = [(sha, subject) for sha, subject in commits if subject.startswith(wanted)]
    if not matches:
        raise StepFailed(f"no commit titled {wanted!r} in the last {SEARCH_DEPTH} commits of {ctx.env.repo_path}")
    sha, subject = matches[0]
    head = await git_head(ctx, step, host)
    grep = shlex.quote(f"This reverts commit {sha}")
    reverted = await run(
        ctx, step, host, git(ctx, host, f"log -n {SEARCH_DEPTH} --format=%H --fixed-strings --grep={grep}")
    )
    return {"commit": sha, "subject": subject, "head_before": head, "already_reverted": bool(reverted.stdout.strip())}


async def _reverts(ctx: RunContext, step: Step, host: Host, head: str, parent: str, commit: str) -> bool:
    """Is ``head`` a commit on top of ``parent`` that reverts ``commit`` (ours, after a kill)?"""
    result = await run(ctx, step, host, git(ctx, host, f"log -1 --format=%P%n%B {shlex.quote(head)}"))
    parents, _, body = result.stdout.partition("\n")
    return result.ok and parents.strip() == parent and f"This reverts commit {commit}" in body


class FindPhase4Commit(Step):
    id = "find-commit"
    title = "Find the Phase 4 commit"

    def command(self, ctx: RunContext, host: Host) -> str:
        message = shlex.quote(ctx.env.phase4_commit_message)
        return git(ctx, host, f"log -n {SEARCH_DEPTH} --format='%H %s' --fixed-strings --grep={message}")

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return f"$ {self.command(ctx, host)}"

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        return await find_phase4(ctx, self, host)

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        note = " (already reverted: nothing to do)" if facts["already_reverted"] else ""
        return f"{facts['commit'][:7]} {facts['subject']}{note}"


class RevertCommit(Step):
    id = "revert"
    title = "Revert the Phase 4 commit (git revert)"
    changes = True
    code = True

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return f"$ {git(ctx, host, 'revert --no-edit <the Phase 4 commit found above>')}"

    async def preview_change(self, ctx: RunContext, host: Host | None) -> tuple[str, bool]:
        assert host is not None
        text = await self.preview(ctx, host)
        try:
            found = await find_phase4(ctx, self, host)
        except (StepFailed, TransportError) as exc:
            return f"{text}\n# (cannot look now: {exc})", True
        if found["already_reverted"]:
            return f"# {found['commit'][:7]} is already reverted: nothing to do", False
        return f"$ {git(ctx, host, 'revert --no-edit ' + found['commit'])}", True

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        found = ctx.facts.get(FindPhase4Commit.id, {}).get(host.name)
        if not found:
            raise StepFailed("the Phase 4 commit was not found on this host")
        head = await git_head(ctx, self, host)
        return {"commit": found["commit"], "head_before": head, "already_reverted": found["already_reverted"]}

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        intent = ctx.intent(self.id, host)
        sha, before = intent["commit"], intent["head_before"]
        if intent["already_reverted"]:
            return {"skipped": "already reverted", "commit": sha, "changed": False}
        head = await git_head(ctx, self, host)
        if head != before:
            if await _reverts(ctx, self, host, head, before, sha):  # done before a kill
                return {
                    "commit": sha,
                    "revert_commit": head,
                    "head_before": before,
                    "head_after": head,
                    "changed": True,
                }
            raise IntentStale(f"HEAD moved from {before[:7]} to {head[:7]} since the intent was journaled")
        result = await run(ctx, self, host, git(ctx, host, f"revert --no-edit {shlex.quote(sha)}"))
        if not result.ok:
            await run(ctx, self, host, git(ctx, host, "revert --abort"))
            raise StepFailed(
                f"git revert {sha[:7]} failed and was aborted (the checkout is as it was): "
                f"{(result.stdout + result.stderr).strip()[-400:]}",
                output=result.stdout + result.stderr,
            )
        head = await git_head(ctx, self, host)
        return {"commit": sha, "revert_commit": head, "head_before": before, "head_after": head, "changed": True}

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        assert host is not None
        if facts.get("skipped"):
            return facts["skipped"]
        status = await run(ctx, self, host, git(ctx, host, "status --porcelain --untracked-files=no"))
        if status.stdout.strip():
            raise StepFailed(f"the checkout is not clean after the revert:\n{status.stdout[:400]}")
        return f"HEAD is now {facts['revert_commit'][:7]} (reverts {facts['commit'][:7]})"

    async def happened(self, ctx: RunContext, host: Host | None, intent: Facts) -> Facts | None:
        assert host is not None
        if intent.get("already_reverted"):
            return None
        head = await git_head(ctx, self, host)
        if head == intent["head_before"]:
            return None
        if await _reverts(ctx, self, host, head, intent["head_before"], intent["commit"]):
            return {**intent, "revert_commit": head, "head_after": head, "changed": True}
        raise StepFailed(f"HEAD is {head[:7]}, neither {intent['head_before'][:7]} nor the revert on top of it")

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        hosts = {h for h, f in facts_by_host.items() if f.get("revert_commit")}
        if not hosts:
            return []
        back = {
            h: {
                "head_before": facts_by_host[h]["head_before"],
                "head_after": facts_by_host[h].get("head_after") or facts_by_host[h]["revert_commit"],
                "revert_commit": facts_by_host[h]["revert_commit"],
            }
            for h in hosts
        }
        return [RestoreCode(back), Rebuild(only=hosts), RestartService(only=hosts)]


class ResetHard(Step):
    """The runbook's destructive alternative: drop the last commit."""

    id = "reset-hard"
    title = "Reset to the commit before HEAD (git reset --hard HEAD~1) — DESTRUCTIVE"
    destructive = True
    changes = True
    code = True

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return (
            f"$ {git(ctx, host, 'reset --hard HEAD~1')}   # discards the last commit and any local changes\n"
            "# only if HEAD is the Phase 4 commit; otherwise nothing is changed"
        )

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        head = await run(ctx, self, host, git(ctx, host, "log -1 --format='%H %P %s'"))
        sha, _, rest = head.stdout.strip().partition(" ")
        parent, _, subject = rest.partition(" ")
        return {"head_before": sha, "parent": parent, "subject": subject, "ok": head.ok}

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        intent = ctx.intent(self.id, host)
        sha, subject = intent["head_before"], intent["subject"]
        head = await git_head(ctx, self, host)
        if head == intent["parent"] and sha:  # done before a kill
            return {"head_before": sha, "head_after": head, "changed": True}
        if head != sha:
            raise IntentStale(f"HEAD moved from {sha[:7]} to {head[:7]} since the intent was journaled")
        if not intent["ok"] or not subject.startswith(ctx.env.phase4_commit_message):
            # The runbook's HEAD~1 is right only when Phase 4 is the last commit; otherwise it
            # would throw away a later commit and leave Phase 4 in place.
            raise StepFailed(
                f"HEAD is {sha[:7] or '?'} {subject!r}, not the Phase 4 commit: "
                "`git reset --hard HEAD~1` would discard that commit and keep Phase 4. Nothing was changed; "
                "roll back with `git revert` instead (rollback code without --reset-hard)."
            )
        result = await run(ctx, self, host, git(ctx, host, "reset --hard HEAD~1"))
        if not result.ok:
            raise StepFailed(f"git reset failed: {result.stderr.strip()[-400:]}")
        return {"head_before": sha, "head_after": await git_head(ctx, self, host), "changed": True}

    async def happened(self, ctx: RunContext, host: Host | None, intent: Facts) -> Facts | None:
        assert host is not None
        head = await git_head(ctx, self, host)
        if head == intent["head_before"]:
            return None
        if head == intent["parent"]:
            return {"head_before": intent["head_before"], "head_after": head, "changed": True}
        raise StepFailed(f"HEAD is {head[:7]}, neither {intent['head_before'][:7]} nor its parent")

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        return RestoreCode.undo_steps(RestoreCode({}), facts_by_host)


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
        reversible="Yes (HEAD back to the commit before the run)",
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
        *database_steps(env, options, flags_turned_off=True),
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
