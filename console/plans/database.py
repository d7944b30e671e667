"""Database rollback of migration 004, with a kept copy so that nothing is lost.

Flags must be off first (refused before the run otherwise); the columns are checked
(absent: nothing to change); everything that would go with them is listed; then ONE
transaction locks the table against writes, keeps a copy of the columns' data and
definitions, and runs the rollback script without its psql meta-commands. A failure
or a timeout leaves schema and data untouched and offers the runbook's manual SQL.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import asyncpg

from console import db
from console.config.model import Environment, Host
from console.engine.plan import Facts, Plan, Remedy, RunContext, Step, StepFailed
from console.envfile import parse_env
from console.flags import FlagSet
from console.plans.kept_copy import Connect, ReapplyMigration, gave_up, kept_path, take_copy, write_copy
from console.plans.validate import ValidateRollback, log_offsets
from console.probes.hostread import read_pid
from console.profile import profile_of
from console.profile.model import Action, Profile
from console.runbook.issues import DB_ROLLBACK_FAILED
from console.transport.base import TransportError

__all__ = ["CheckFlagsOff", "DropColumns", "InspectSchema", "ReapplyMigration", "database_plan", "database_steps"]

_META = re.compile(r"^\s*\\")  # psql meta-commands: \d posts, \i file, \echo …
_TXN = re.compile(r"^\s*(BEGIN|COMMIT|START\s+TRANSACTION|END|ROLLBACK)\s*(WORK|TRANSACTION)?\s*;\s*$", re.I)


def script_sql(script: str) -> tuple[str, list[str]]:
    """The SQL to run from a psql script, and the lines left out (meta-commands, BEGIN/COMMIT)."""
    kept, dropped = [], []
    for line in script.splitlines():
        if _META.match(line) or _TXN.match(line):
            dropped.append(line.strip())
        else:
            kept.append(line)
    return "\n".join(kept).strip() + "\n", dropped


def manual_sql(env: Environment) -> str:
    """Troubleshooting 3's manual rollback, for this environment's table, indexes and columns."""
    assert env.database
    d = env.database
    lines = [f"DROP INDEX IF EXISTS {db.quote_ident(i)};" for i in d.indexes]
    lines += [f"ALTER TABLE {db.quote_ident(d.table)} DROP COLUMN IF EXISTS {db.quote_ident(c)};" for c in d.columns]
    return "\n".join(lines) + "\n"


def _conn(ctx: RunContext) -> Connect:
    return Connect(ctx)


class CheckFlagsOff(Step):
    id = "db-flags-off"
    title = "Check the flags are off (nothing may read the columns)"
    scope = "environment"

    def _required(self, profile: Profile) -> list[str]:
        """The flags that must be off: the database action's requires_off."""
        action = _database_action(profile)
        return list(action.database.requires_off) if action and action.database else []

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        env = ctx.env
        profile = profile_of(env)
        grep = "|".join(profile.flags.flag(i).env for i in self._required(profile))
        return "\n".join(
            f"$ grep -E '^({grep})=' {env.expand(env.env_file, h)} ; "
            f"cat /proc/$PID/environ | tr '\\0' '\\n' | grep -E '^({grep})='   # on {h.name}"
            for h in env.hosts
        )

    async def _check(self, ctx: RunContext) -> tuple[list[str], dict[str, Any]]:
        problems: list[str] = []
        seen: dict[str, Any] = {}
        profile = profile_of(ctx.env)
        rules = profile.flags
        required = self._required(profile)
        for h in ctx.env.hosts:
            try:
                transport = await ctx.transport(h)
                env_file = parse_env(await transport.read_file(ctx.env.expand(ctx.env.env_file, h))).flags(rules)
                pid = await read_pid(ctx.env, h, transport, 10)
                environ = await transport.process_environ(pid)
            except TransportError as exc:
                problems.append(f"{h.name}: {exc}")
                continue
            process = FlagSet.from_environ(rules, environ)
            seen[h.name] = {"env_file": env_file.as_dict(), "process": process.as_dict()}
            on = [rules.flag(i).label for i in required if env_file[i] or process[i]]
            if on:
                problems.append(f"{h.name}: still on: {', '.join(on)}")
        return problems, seen

    @staticmethod
    def _message(profile: Profile, problems: list[str]) -> str:
        action = _database_action(profile)
        required = set(action.database.requires_off) if action and action.database else set()
        first = next((a for a in profile.actions if a.kind == "flags" and required <= set(a.turn_off)), None)
        whole = next((a for a in profile.actions if a.kind == "combined" and action and action.id in a.combines), None)
        advice = " or ".join(
            x
            for x in (first and f"run the {first.id} rollback first", whole and f"choose the {whole.id} rollback")
            if x
        )
        return (
            "the flags must be off before the columns go (the service reads them while they are on): "
            + "; ".join(problems)
            + (f". {advice[:1].upper()}{advice[1:]}." if advice else ".")
        )

    def __init__(self, *, refuse_early: bool = True) -> None:
        # False when an earlier step of the plan turns the flags off (the full rollback).
        self.refuse_early = refuse_early

    async def refusal(self, ctx: RunContext) -> str | None:
        if not self.refuse_early:
            return None
        problems, _ = await self._check(ctx)
        return self._message(profile_of(ctx.env), problems) if problems else None

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        problems, seen = await self._check(ctx)
        if problems:
            raise StepFailed(self._message(profile_of(ctx.env), problems), facts={"hosts": seen})
        # No restart in this plan: validation counts the log from here on.
        return {"hosts": seen, "log_offsets": await log_offsets(ctx)}

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        return f"all flags off on {len(facts['hosts'])} host(s)"


class InspectSchema(Step):
    id = "db-inspect"
    title = "Check the columns and list what depends on them"
    issue = DB_ROLLBACK_FAILED
    scope = "environment"

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        d = ctx.env.database
        assert d
        report = await _inspect(ctx)
        if report.error:
            return f"-- cannot inspect now: {report.error}"
        lines = [f"-- {c}: {'present' if p else 'absent'}" for c, p in report.columns]
        lines += [f"-- will also drop: {what}" for what in report.dependents]
        if report.extra_dependents:
            lines.append(
                "-- WARNING: objects beyond migration 004 depend on these columns (e.g. migration 005's): "
                + ", ".join(report.extra_dependents)
            )
        return "\n".join(lines)

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        report = await _inspect(ctx)
        if report.error:
            raise StepFailed(report.error)
        present = [c for c, p in report.columns if p]
        return {
            "columns": dict(report.columns),
            "indexes": dict(report.indexes),
            "dependents": list(report.dependents),
            "extra_dependents": list(report.extra_dependents),
            "rows": report.rows,
            "skip": not present,
        }

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        if facts["skip"]:
            return "the columns are already gone: nothing to roll back (skipping, as the runbook says)"
        extra = f"; ALSO drops {', '.join(facts['extra_dependents'])}" if facts["extra_dependents"] else ""
        return f"{len(facts['dependents'])} dependent object(s){extra}"


async def _inspect(ctx: RunContext):
    assert ctx.env.database
    transport = await ctx.transport(ctx.env.hosts[0])
    return await db.inspect(ctx.env.database, transport)


class DropColumns(Step):
    """One transaction: lock the table against writes (reads go on), keep a copy of the
    columns, run the rollback script. No row can change between the copy and the drop."""

    id = "db-rollback"
    issue = DB_ROLLBACK_FAILED
    title = "Keep a copy of the columns, then run the rollback script (one transaction)"
    scope = "environment"
    changes = True
    inner_points = ("after-copy",)  # the copy is written, the drop not yet committed

    async def _script(self, ctx: RunContext) -> tuple[str, list[str]]:
        d = ctx.env.database
        assert d
        transport = await ctx.transport(ctx.env.hosts[0])
        path = ctx.env.expand(d.rollback_script, ctx.env.hosts[0])
        try:
            text = (await transport.read_file(path)).decode("utf-8", errors="replace")
        except TransportError as exc:
            raise StepFailed(f"cannot read the rollback script: {exc}") from None
        return script_sql(text)

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        return (await self.preview_change(ctx, host))[0]

    async def preview_change(self, ctx: RunContext, host: Host | None) -> tuple[str, bool]:
        d = ctx.env.database
        assert d
        report = await _inspect(ctx)
        if not report.error and not any(p for _, p in report.columns):
            return f"-- {', '.join(c for c, _ in report.columns)}: already gone — nothing to drop", False
        try:
            sql, dropped = await self._script(ctx)
        except StepFailed as exc:
            return f"-- {exc}", True
        left_out = "".join(f"\n--   {line}" for line in dropped)
        cols = ", ".join(d.columns)
        return (
            f"BEGIN;  -- lock_timeout {d.lock_timeout_s:g}s, statement_timeout {d.statement_timeout_s:g}s\n"
            f"LOCK TABLE {d.table} IN SHARE MODE;  -- writes wait until COMMIT, reads go on\n"
            f"-- keep a copy: SELECT <primary key>, {cols} FROM {d.table} → "
            f"{kept_path(ctx).parent}/RUN_ID-{d.table}.json\n"
            "-- (plus the column definitions, every dependent CREATE INDEX and schema_migrations)\n"
            f"{sql}COMMIT;"
            + (f"\n-- left out (psql meta-commands / transaction control):{left_out}" if dropped else "")
        ), True

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        d = ctx.env.database
        assert d
        async with _conn(ctx) as conn:
            present = [c for c, p in (await db.present_columns(conn, d.table, d.columns)).items() if p]
        return {"kept_path": str(kept_path(ctx)), "table": d.table, "present": present}

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        intent = ctx.intent(self.id, host)
        manual = ctx.fact(self.id, "*", "manual_sql")
        if manual:
            # The operator chose the runbook's manual SQL and it ran (with the copy): running
            # the failing script again would only fail again. Verify checks the columns are gone.
            return {**ctx.facts[self.id]["*"], "manual": True, "left_out": [], "changed": True}
        sql, dropped = await self._script(ctx)
        facts = await keep_and_drop(ctx, self, Path(intent["kept_path"]), sql, "the rollback script")
        return {**facts, "sql": sql, "left_out": dropped}

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        if facts.get("skipped"):
            return f"skipped: {facts['skipped']}"
        gone = await verify_columns_dropped(ctx)
        return f"{gone}; {facts['rows']} rows kept in {facts['kept_path']}"

    async def remedy(self, ctx: RunContext, host: Host | None, failure: StepFailed) -> None:
        sql = manual_sql(ctx.env)
        path = Path(ctx.intent(self.id, host)["kept_path"])
        facts = await keep_and_drop(ctx, self, path, sql, "the manual rollback SQL")
        ctx.facts.setdefault(self.id, {})["*"] = {**facts, "sql": sql, "manual_sql": sql}

    async def happened(self, ctx: RunContext, host: Host | None, intent: Facts) -> Facts | None:
        d = ctx.env.database
        assert d
        async with _conn(ctx) as conn:
            present = [c for c, p in (await db.present_columns(conn, d.table, d.columns)).items() if p]
        if set(present) >= set(intent["present"]):
            return None  # one transaction: nothing of it committed
        if not await asyncio.to_thread(Path(intent["kept_path"]).is_file):
            raise StepFailed(f"the columns are gone but the kept copy {intent['kept_path']} is not there")
        return {**intent, "changed": True}

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        facts = facts_by_host.get("*", {})
        return [ReapplyMigration(facts["kept_path"])] if facts.get("kept_path") and not facts.get("skipped") else []


async def keep_and_drop(ctx: RunContext, step: Step, path: Path, sql: str, what: str) -> Facts:
    """Lock the table against writes, keep the copy, run ``sql``: all in one transaction."""
    d = ctx.env.database
    assert d
    async with _conn(ctx) as conn:
        try:
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {db.quote_ident(d.table)} IN SHARE MODE")
                present = [c for c, p in (await db.present_columns(conn, d.table, d.columns)).items() if p]
                if not present:
                    if await asyncio.to_thread(path.is_file):  # this run's drop committed before a kill
                        return {"kept_path": str(path), "rows": None, "changed": True, "already": True}
                    return {"skipped": "the columns are already gone", "changed": False}
                # The copy (every row of the columns, fsync'd) is written off the event loop.
                facts = await asyncio.to_thread(write_copy, path, await take_copy(conn, d, present, ctx))
                ctx.failpoint(step.id, "after-copy")
                await conn.execute(sql)
        except (asyncpg.LockNotAvailableError, asyncpg.QueryCanceledError) as exc:
            raise await gave_up(conn, d, exc, f"{what} did not run") from None
        except asyncpg.PostgresError as exc:
            raise StepFailed(
                f"{what} failed: {type(exc).__name__}: {exc}. Nothing was changed: the copy and the whole "
                "script ran in one transaction, which was rolled back.",
                output=sql,
                issue=DB_ROLLBACK_FAILED,
                remedy=Remedy(
                    "Run the runbook's manual rollback SQL (one transaction, with the copy)",
                    tuple(manual_sql(ctx.env).splitlines()),
                    DB_ROLLBACK_FAILED,
                ),
            ) from None
    return {**facts, "changed": True}


async def verify_columns_dropped(ctx: RunContext) -> str:
    d = ctx.env.database
    assert d
    async with _conn(ctx) as conn:
        columns = await db.present_columns(conn, d.table, d.columns)
        indexes = await db.present_indexes(conn, d.indexes)
    left = [c for c, p in columns.items() if p] + [i for i, p in indexes.items() if p]
    if left:
        raise StepFailed(f"still present after the rollback: {', '.join(left)}", issue=DB_ROLLBACK_FAILED)
    return f"{', '.join(d.columns)} and {', '.join(d.indexes)} are gone"


def database_steps(env: Environment, options: dict[str, Any], *, flags_turned_off: bool = False) -> list[Step]:
    if env.database is None:
        from console.plans import PlanError

        raise PlanError(f"environment {env.name!r} has no [database] section configured")
    return [CheckFlagsOff(refuse_early=not flags_turned_off), InspectSchema(), DropColumns()]


def _database_action(profile: Profile) -> Action | None:
    return next((a for a in profile.actions if a.kind == "database"), None)


def database_plan(env: Environment, options: dict[str, Any], action: Action) -> Plan:
    return Plan(
        action=action.id,
        environment=env.name,
        title=action.title,
        steps=(*database_steps(env, options), ValidateRollback()),
        target=action.target,
        target_s=action.target_s or 600,
        data_loss=action.data_loss,
        reversible=action.reversible,
        notes=action.notes,
    )
