"""Steps that edit the env file: only flag statements change, atomically, with a backup
beside it. Before the write the journal holds the intent: the file's digest before and
after, and the splices that give every byte of each flag statement back (a flag the
rollback added is removed again), so undo and restore are exact even after a kill."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from console.config.model import Host
from console.engine.plan import Facts, IntentStale, RunContext, Step, StepFailed
from console.envfile import EnvFile, Splice, apply_splices, not_text, parse_env, unified_diff
from console.events import Event
from console.flags import FlagSet
from console.probes.hostread import read_pid
from console.profile import profile_of
from console.profile.model import FlagRules
from console.transport.base import Transport, TransportError

EDIT_ENV = "edit-env"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def process_flags(ctx: RunContext, host: Host, transport: Transport) -> FlagSet | None:
    """The flags the running API process was started with; None if that cannot be read."""
    try:
        pid = await read_pid(ctx.env, host, transport, 10)
        environ = await transport.process_environ(pid)
    except TransportError:
        return None
    return FlagSet.from_environ(profile_of(ctx.env).flags, environ)


class EnvEdit(Step):
    """An edit of the env file's flag statements, write-ahead and exactly reversible."""

    id = EDIT_ENV
    changes = True

    def target(
        self, env_file: EnvFile, host: Host, rules: FlagRules
    ) -> tuple[str, tuple[Splice, ...], tuple[str, ...]]:
        """(the new text, the splices that turn it back into ``env_file.text``, what could
        not be done exactly)."""
        raise NotImplementedError

    def extra(self, host: Host) -> dict[str, Any]:
        """More for the intent and the facts (e.g. what was requested)."""
        return {}

    async def _read(self, ctx: RunContext, host: Host) -> tuple[str, Transport, EnvFile]:
        path = ctx.env.expand(ctx.env.env_file, host)
        transport = await ctx.transport(host)
        try:
            data = await transport.read_file(path)
        except TransportError as exc:
            raise StepFailed(f"cannot read the env file: {exc}") from None
        damaged = not_text(data)
        if damaged:  # refused before anything changes; the line is named, its bytes are not shown
            raise StepFailed(f"{path}: {damaged}; nothing was changed: repair or restore the file first")
        return path, transport, parse_env(data, path)

    async def preview_change(self, ctx: RunContext, host: Host | None) -> tuple[str, bool]:
        assert host is not None
        # StepFailed (unreadable, not text): the preview is incomplete and says why
        path, transport, env_file = await self._read(ctx, host)
        rules = profile_of(ctx.env).flags
        new_text, _, conflicts = self.target(env_file, host, rules)
        after = parse_env(new_text, path).flags(rules)
        shown = [f.env for f in rules.flags]
        text = (
            unified_diff(path, env_file.text, new_text, shown=shown)
            or f"# {path}: already {after.describe()} — no change"
        )
        text += "".join(f"\n# not exact: {c}" for c in conflicts)
        if new_text != env_file.text:
            return text, True
        process = await process_flags(ctx, host, transport)
        if process is None:
            return text + "\n# cannot read the running process's flags: the restart below makes sure", True
        if process != after:
            stale = f"\n# but the running process has {process.describe()}: the restart below loads the file"
            return text + stale, True
        return text, False

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        return (await self.preview_change(ctx, host))[0]

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        path, _, env_file = await self._read(ctx, host)
        rules = profile_of(ctx.env).flags
        new_text, undo, conflicts = self.target(env_file, host, rules)
        before, after = env_file.encoded(), env_file.encoded(new_text)
        changed = before != after
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return {
            "path": path,
            "before": env_file.flags(rules).as_dict(),
            "after": parse_env(new_text, path).flags(rules).as_dict(),
            **self.extra(host),
            "problems": [str(p) for p in env_file.problems],
            "changed": changed,
            "digest_before": digest(before),
            "digest_after": digest(after),
            "undo": [s.to_json() for s in undo],  # each flag statement's exact bytes before the edit
            "conflicts": list(conflicts),
            "backup": f"{path}.rollback-console.{ctx.run_id}.{stamp}.bak" if changed else None,
        }

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        assert host is not None
        intent = ctx.intent(self.id, host)
        path, transport, env_file = await self._read(ctx, host)
        now = digest(env_file.encoded())
        if now == intent["digest_after"]:
            applied = "already (resumed)" if intent["changed"] else "nothing to change"
        elif now == intent["digest_before"]:
            new_text, _, _ = self.target(env_file, host, profile_of(ctx.env).flags)
            data = env_file.encoded(new_text)
            if digest(data) != intent["digest_after"]:
                raise StepFailed(f"internal error: the edit of {path} is not the one journaled; nothing was changed")
            if env_file.problems:
                # Only flag lines are touched, so malformed lines elsewhere are left as they are.
                problems = "; ".join(str(p) for p in env_file.problems)
                ctx.emit(Event("note", ctx.run_id, step=self.id, host=host.name, message=f"{path}: {problems} (left)"))
            try:
                await transport.write_file_atomic(path, data, backup_path=intent["backup"])
            except TransportError as exc:
                raise StepFailed(f"could not write the env file (it is unchanged): {exc}") from None
            applied = "now"
        else:
            raise IntentStale(f"{path} was changed by someone else since the intent was journaled")
        facts: Facts = {**intent, "applied": applied}
        if not intent["changed"]:
            process = await process_flags(ctx, host, transport)
            facts["process"] = process.as_dict() if process else None
            facts["needs_restart"] = process is None or process.as_dict() != intent["after"]
        return facts

    async def happened(self, ctx: RunContext, host: Host | None, intent: Facts) -> Facts | None:
        assert host is not None
        path = ctx.env.expand(ctx.env.env_file, host)
        transport = await ctx.transport(host)
        now = digest(await transport.read_file(path))
        if now == intent["digest_before"] or not intent.get("changed"):
            return None  # the write never happened (or there was none to make)
        return {**intent, "applied": "found after an interruption"}

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        from console.plans.flags import AwaitEffect, RestartService

        per_host = {host: facts for host, facts in facts_by_host.items() if facts.get("changed")}
        if not per_host:
            return []
        return [RestoreFlags(per_host), RestartService(only=set(per_host)), AwaitEffect(only=set(per_host))]


class SetFlags(EnvEdit):
    """The rollback's edit: set the flags (by the profile's flag ids); every other byte kept."""

    title = "Edit the env file"

    def __init__(self, changes: dict[str, bool] | None = None) -> None:
        self.changes_wanted = changes or {}

    def target(
        self, env_file: EnvFile, host: Host, rules: FlagRules
    ) -> tuple[str, tuple[Splice, ...], tuple[str, ...]]:
        text, undo = env_file.edit({rules.flag(i).env: v for i, v in self.changes_wanted.items()}, rules)
        return text, undo, ()

    def extra(self, host: Host) -> dict[str, Any]:
        return {"requested": dict(self.changes_wanted)}

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        assert host is not None
        _, _, env_file = await self._read(ctx, host)
        rules = profile_of(ctx.env).flags
        flags = env_file.flags(rules)
        wrong = [rules.flag(i).env for i, v in self.changes_wanted.items() if flags[i] != v]
        if wrong:
            raise StepFailed(f"the env file still has {', '.join(wrong)} not as requested (changed by someone else?)")
        backup = f" (backup {facts['backup']})" if facts.get("backup") else ""
        restart = " — but the running process differs: it will be restarted" if facts.get("needs_restart") else ""
        return f"{facts['path']}: {flags.describe()}{backup}{restart}"


class RestoreFlags(EnvEdit):
    """Put each flag statement back byte for byte as it was before a run (restore, undo)."""

    title = "Put the flags back in the env file, byte for byte"

    def __init__(self, per_host: dict[str, Facts]) -> None:
        self.per_host = per_host  # host → the facts (or intent) of the edit to put back

    def target(
        self, env_file: EnvFile, host: Host, rules: FlagRules
    ) -> tuple[str, tuple[Splice, ...], tuple[str, ...]]:
        edit = self.per_host.get(host.name)
        if edit is None or digest(env_file.encoded()) == edit.get("digest_before"):
            return env_file.text, (), ()  # nothing for this host, or the edit never reached the file
        if isinstance(edit.get("undo"), list):
            done = apply_splices(env_file.text, [Splice.from_json(s) for s in edit["undo"]])
            return done.text, done.redo, done.conflicts
        # Journals from before the splices kept only the flags' values.
        before = edit.get("before") or {}
        changes = {f.env: bool(before[f.id]) for f in rules.flags if f.id in before}
        text, undo = env_file.edit(changes, rules)
        return text, undo, ("only the flags' values were journaled: written as the profile writes them",)

    def extra(self, host: Host) -> dict[str, Any]:
        edit = self.per_host.get(host.name) or {}
        return {"restores": edit.get("digest_before")}

    async def preview_change(self, ctx: RunContext, host: Host | None) -> tuple[str, bool]:
        assert host is not None
        if host.name not in self.per_host:
            return "# nothing to put back on this host", False
        return await super().preview_change(ctx, host)

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        assert host is not None
        if host.name not in self.per_host:
            return "nothing to put back on this host"
        _, _, env_file = await self._read(ctx, host)
        if digest(env_file.encoded()) != facts["digest_after"]:
            raise StepFailed(f"{facts['path']} is not as written (changed by someone else meanwhile?)")
        flags = env_file.flags(profile_of(ctx.env).flags)
        if facts.get("conflicts"):
            return f"{facts['path']}: {flags.describe()} — not exact: " + "; ".join(facts["conflicts"])
        exact = " — byte for byte as before" if facts.get("restores") == facts["digest_after"] else ""
        return f"{facts['path']}: {flags.describe()}{exact}"
