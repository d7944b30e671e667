"""Full code rollback: find the release's commit (by the subject the profile or the config
names), `git revert` it, rebuild, restart.

`git reset --hard` is offered only behind an explicit destructive confirmation. Each git
step journals HEAD before it moves it; undo puts HEAD (and so the tree) back exactly.
"""

from __future__ import annotations

import shlex
from typing import Any

from console.config.model import Environment, Host
from console.engine.plan import Facts, IntentStale, Plan, RunContext, Step, StepFailed
from console.plans.checkout import Rebuild, RestoreCode, git, git_head, run
from console.plans.flags import AwaitEffect, RestartService, SetFlags
from console.plans.validate import ValidateRollback
from console.profile import profile_of
from console.profile.model import Action
from console.transport.base import TransportError

SEARCH_DEPTH = 500  # commits searched for the release's subject
CHANGED = {"changed": True}


def commit_message(env: Environment) -> str:
    """The subject of the commit the code rollback reverts: the config's, else the profile's."""
    if env.phase4_commit_message:
        return env.phase4_commit_message
    code = next((a for a in profile_of(env).actions if a.kind == "code" and a.commit_message), None)
    if code is None or code.commit_message is None:
        raise StepFailed("the profile has no code rollback with a commit_message, and the config sets none")
    return code.commit_message


async def find_release(ctx: RunContext, step: Step, host: Host) -> Facts:
    """The release's commit, HEAD, and whether a revert of it is already in the history."""
    message = shlex.quote(commit_message(ctx.env))
    result = await run(
        ctx, step, host, git(ctx, host, f"log -n {SEARCH_DEPTH} --format='%H %s' --fixed-strings --grep={message}")
    )
    if not result.ok:
        raise StepFailed(f"git log failed in {ctx.env.repo_path} ({result.summary()}): {result.stderr.strip()[:300]}")
    wanted = commit_message(ctx.env)
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


class FindReleaseCommit(Step):
    id = "find-commit"
    title = "Find the release commit"

    def command(self, ctx: RunContext, host: Host) -> str:
        message = shlex.quote(commit_message(ctx.env))
        return git(ctx, host, f"log -n {SEARCH_DEPTH} --format='%H %s' --fixed-strings --grep={message}")

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return f"$ {self.command(ctx, host)}"

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        return await find_release(ctx, self, host)

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        note = " (already reverted: nothing to do)" if facts["already_reverted"] else ""
        return f"{facts['commit'][:7]} {facts['subject']}{note}"


class RevertCommit(Step):
    id = "revert"
    title = "Revert the release commit (git revert)"
    changes = True
    code = True

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return f"$ {git(ctx, host, 'revert --no-edit <the release commit found above>')}"

    async def preview_change(self, ctx: RunContext, host: Host | None) -> tuple[str, bool]:
        assert host is not None
        text = await self.preview(ctx, host)
        try:
            found = await find_release(ctx, self, host)
        except (StepFailed, TransportError) as exc:
            return f"{text}\n# (cannot look now: {exc})", True
        if found["already_reverted"]:
            return f"# {found['commit'][:7]} is already reverted: nothing to do", False
        return f"$ {git(ctx, host, 'revert --no-edit ' + found['commit'])}", True

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        found = ctx.facts.get(FindReleaseCommit.id, {}).get(host.name)
        if not found:
            raise StepFailed("the release commit was not found on this host")
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
            f"# only if HEAD is the release commit ({commit_message(ctx.env)!r}); otherwise nothing is changed"
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
        if not intent["ok"] or not subject.startswith(commit_message(ctx.env)):
            # The runbook's HEAD~1 is right only when the release is the last commit; otherwise it
            # would throw away a later commit and leave the release in place.
            raise StepFailed(
                f"HEAD is {sha[:7] or '?'} {subject!r}, not the release commit ({commit_message(ctx.env)!r}): "
                "`git reset --hard HEAD~1` would discard that commit and keep the release. Nothing was changed; "
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
    return [FindReleaseCommit(), RevertCommit(), Rebuild(), RestartService()]


def code_plan(env: Environment, options: dict[str, Any], action: Action) -> Plan:
    return Plan(
        action=action.id,
        environment=env.name,
        title=action.title,
        steps=(*code_steps(env, options), ValidateRollback(code_reverted=True)),
        target=action.target,
        target_s=action.target_s or 600,
        data_loss=action.data_loss,
        reversible=action.reversible,
        notes=action.notes,
    )


def combined_plan(env: Environment, options: dict[str, Any], action: Action) -> Plan:
    """The actions ``action`` combines, in order, as one plan (e.g. a full rollback: flags
    off first, since the columns must not be read when they go, then code, then database)."""
    from console.plans import PlanError
    from console.plans.database import database_steps

    profile = profile_of(env)
    steps: list[Step] = []
    flags_set = restart_pending = False
    turned_off: set[str] = set()
    for part in (profile.action(i) for i in action.combines):
        if part.kind == "flags":
            changes = part.flag_changes(profile.flags.ids)
            steps.append(SetFlags(changes))
            turned_off |= {i for i, on in changes.items() if not on}
            flags_set = restart_pending = True
        elif part.kind == "code":
            steps += code_steps(env, options)  # it restarts the service: the flags take effect
            if flags_set:
                steps.append(AwaitEffect())
            restart_pending = False
        elif part.kind == "database":
            if env.database is None:
                raise PlanError(
                    f"environment {env.name!r} has no [database] section: the {action.id} rollback needs it"
                )
            if restart_pending:
                steps += [RestartService(), AwaitEffect()]
                restart_pending = False
            off = bool(part.database) and set(part.database.requires_off) <= turned_off  # type: ignore[union-attr]
            steps += database_steps(env, options, flags_turned_off=off)
    if restart_pending:
        steps += [RestartService(), AwaitEffect()]
    steps.append(ValidateRollback())
    return Plan(
        action=action.id,
        environment=env.name,
        title=action.title,
        steps=tuple(steps),
        target=action.target,
        target_s=action.target_s or 600,
        data_loss=action.data_loss,
        reversible=action.reversible,
        notes=action.notes,
    )
