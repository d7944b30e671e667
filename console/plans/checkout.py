"""The checkout and the build: git helpers, putting HEAD back as it was before a run,
and rebuilding where the code changed."""

from __future__ import annotations

import shlex

from console.config.model import Host
from console.engine.plan import Facts, IntentStale, RunContext, Step, StepFailed
from console.transport.base import TransportError

GIT_TIMEOUT_S = 60.0
REBUILD_TIMEOUT_S = 900.0


def git(ctx: RunContext, host: Host, args: str) -> str:
    assert ctx.env.repo_path
    return f"git -C {shlex.quote(ctx.env.expand(ctx.env.repo_path, host))} {args}"


async def run(ctx: RunContext, step: Step, host: Host, command: str, timeout: float = GIT_TIMEOUT_S):
    transport = await ctx.transport(host)
    return await transport.run(command, timeout=timeout, on_output=ctx.output(step.id, host.name))


async def git_head(ctx: RunContext, step: Step, host: Host) -> str:
    result = await run(ctx, step, host, git(ctx, host, "rev-parse HEAD"))
    if not result.ok:
        raise StepFailed(f"git rev-parse HEAD failed in {ctx.env.repo_path} ({result.summary()})")
    return result.stdout.strip()


class RestoreCode(Step):
    """Put the checkout back on the commit it had before a run: `git reset --keep` while
    the run's commit is still the tip (HEAD and tree exactly as before); if commits were
    added on top since, revert the run's revert instead (the tree comes back, HEAD moves on)."""

    id = "code-back"
    title = "Put the code back as it was (git)"
    changes = True
    code = True

    def __init__(self, per_host: dict[str, Facts]) -> None:
        self.per_host = per_host  # host → head_before, head_after (, revert_commit)

    def _method(self, host: Host, head: str) -> tuple[str, str | None]:
        """(what to do, the git arguments) for a checkout whose HEAD is ``head``."""
        back = self.per_host.get(host.name)
        if back is None:
            return "nothing on this host", None
        if head == back["head_before"]:
            return f"already at {head[:7]}", None
        if head == back["head_after"]:
            return "reset", f"reset --keep {shlex.quote(back['head_before'])}"
        if back.get("revert_commit"):
            return "revert", f"revert --no-edit {shlex.quote(back['revert_commit'])}"
        return f"HEAD is {head[:7]}, not {back['head_after'][:7]} as the run left it", None

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        return (await self.preview_change(ctx, host))[0]

    async def preview_change(self, ctx: RunContext, host: Host | None) -> tuple[str, bool]:
        assert host is not None
        if host.name not in self.per_host:
            return "# nothing on this host", False
        try:
            head = await git_head(ctx, self, host)
        except (StepFailed, TransportError) as exc:
            return f"# cannot look now: {exc}", True
        what, args = self._method(host, head)
        if args is None:
            return f"# {what}", what.startswith("HEAD is")
        note = {
            "reset": "   # back to the commit before the run: HEAD and tree exactly as before",
            "revert": "   # commits were added since: re-apply by reverting the revert (HEAD moves on)",
        }[what]
        return f"$ {git(ctx, host, args)}{note}", True

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        head = await git_head(ctx, self, host)
        what, args = self._method(host, head)
        return {"head_now": head, "method": what, "args": args, **self.per_host.get(host.name, {})}

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        intent = ctx.intent(self.id, host)
        if intent["args"] is None:
            if intent["method"].startswith("HEAD is"):
                raise StepFailed(f"cannot put the code back: {intent['method']}")
            return {"skipped": intent["method"], "changed": False}
        head = await git_head(ctx, self, host)
        if head != intent["head_now"]:
            if intent["method"] == "reset" and head == intent["head_before"]:  # done before a kill
                return {"head_before": intent["head_now"], "head_after": head, "changed": True}
            raise IntentStale(f"HEAD moved from {intent['head_now'][:7]} to {head[:7]} since the intent")
        result = await run(ctx, self, host, git(ctx, host, intent["args"]))
        if not result.ok:
            if intent["method"] == "revert":
                await run(ctx, self, host, git(ctx, host, "revert --abort"))
            raise StepFailed(f"git {intent['args']} failed (the checkout is as it was): {result.stderr.strip()[-400:]}")
        return {"head_before": intent["head_now"], "head_after": await git_head(ctx, self, host), "changed": True}

    async def happened(self, ctx: RunContext, host: Host | None, intent: Facts) -> Facts | None:
        assert host is not None
        head = await git_head(ctx, self, host)
        if head == intent["head_now"] or intent["args"] is None:
            return None
        return {"head_before": intent["head_now"], "head_after": head, "changed": True}

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        assert host is not None
        if facts.get("skipped"):
            return facts["skipped"]
        status = await run(ctx, self, host, git(ctx, host, "status --porcelain --untracked-files=no"))
        if status.stdout.strip():
            raise StepFailed(f"the checkout is not clean after putting the code back:\n{status.stdout[:400]}")
        return f"HEAD is {facts['head_after'][:7]} again"

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        hosts = {h for h, f in facts_by_host.items() if f.get("changed") and f.get("head_after")}
        if not hosts:
            return []
        back = {
            h: {"head_before": facts_by_host[h]["head_before"], "head_after": facts_by_host[h]["head_after"]}
            for h in hosts
        }
        from console.plans.flags import RestartService

        return [RestoreCode(back), Rebuild(only=hosts), RestartService(only=hosts)]


class Rebuild(Step):
    """Rebuild the service, on hosts whose code an earlier step changed."""

    id = "rebuild"
    title = "Rebuild"
    changes = True

    def __init__(self, only: set[str] | None = None) -> None:
        self.only = only

    def command(self, ctx: RunContext, host: Host) -> str:
        env = ctx.env
        assert env.rebuild_command and env.repo_path
        return f"cd {shlex.quote(env.expand(env.repo_path, host))} && {env.expand(env.rebuild_command, host)}"

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        assert host is not None
        return f"$ {self.command(ctx, host)}"

    async def preview_change(self, ctx: RunContext, host: Host | None) -> tuple[str, bool]:
        assert host is not None
        if self.only is not None and host.name not in self.only:
            return "# nothing changed on this host", False
        code_steps = [s for s in (ctx.plan.steps if ctx.plan else ()) if s.code]
        if ctx.plan is not None and not any(ctx.previewed.get(s.id, {}).get(host.name, True) for s in code_steps):
            return f"$ {self.command(ctx, host)}\n# not run: the code does not change", False
        return await self.preview(ctx, host), True

    def _skip(self, ctx: RunContext, host: Host) -> str | None:
        if self.only is not None and host.name not in self.only:
            return "nothing changed on this host"
        if not ctx.changed_before(self, host.name, code_only=True):
            return "the code did not change"
        return None

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        skip = self._skip(ctx, host)  # nothing to put back: the build follows the checkout
        return {"skip": skip} if skip else {"command": self.command(ctx, host)}

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        intent = ctx.intent(self.id, host)
        if intent.get("skip"):
            return {"skipped": intent["skip"], "changed": False}
        result = await run(ctx, self, host, self.command(ctx, host), REBUILD_TIMEOUT_S)
        if not result.ok:
            raise StepFailed(f"rebuild failed ({result.summary()})", output=(result.stdout + result.stderr)[-4000:])
        return {"elapsed_s": round(result.elapsed_s, 3), "changed": True}

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        return facts["skipped"] if facts.get("skipped") else "built"
