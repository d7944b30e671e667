"""Database rollback of migration 004, with a kept copy so that nothing is lost.

Flags must be off first; the columns are checked (absent: skip cleanly, as the runbook
says); everything that would go with them is listed; their data and definitions are
kept; the rollback script runs in ONE transaction without its psql meta-commands; a
failure leaves schema and data untouched and offers the runbook's manual SQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from console import db
from console.config.model import Environment, Host
from console.engine.plan import Facts, Plan, Remedy, RunContext, Step, StepFailed
from console.envfile import parse_env
from console.flags import FLAG_NAMES, LOG_LABELS, FlagSet
from console.plans.validate import ValidateRollback, log_offsets
from console.probes.collect import read_pid
from console.transport.base import TransportError

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


def _conn(ctx: RunContext):
    return _Connect(ctx)


class _Connect:
    """`async with _conn(ctx) as conn`: the environment's database through its first host."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    async def __aenter__(self) -> asyncpg.Connection:
        assert self.ctx.env.database
        transport = await self.ctx.transport(self.ctx.env.hosts[0])
        self._cm = db.connect(self.ctx.env.database, transport)
        try:
            return await self._cm.__aenter__()
        except db.DatabaseError as exc:
            raise StepFailed(str(exc)) from None

    async def __aexit__(self, *exc: object) -> None:
        await self._cm.__aexit__(*exc)


class CheckFlagsOff(Step):
    id = "db-flags-off"
    title = "Check the flags are off (nothing may read the columns)"
    scope = "environment"

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        env = ctx.env
        return "\n".join(
            f"$ grep ENABLE_ {env.expand(env.env_file, h)} ; cat /proc/$PID/environ | grep ENABLE_   # on {h.name}"
            for h in env.hosts
        )

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        problems = []
        seen = {}
        for h in ctx.env.hosts:
            try:
                transport = await ctx.transport(h)
                env_file = parse_env(await transport.read_file(ctx.env.expand(ctx.env.env_file, h))).flags()
                pid = await read_pid(ctx.env, h, transport, 10)
                environ = await transport.process_environ(pid)
            except TransportError as exc:
                problems.append(f"{h.name}: {exc}")
                continue
            process = FlagSet.from_mapping({n: environ.get(n) for n in FLAG_NAMES})
            seen[h.name] = {"env_file": env_file.as_dict(), "process": process.as_dict()}
            on = [LOG_LABELS[n] for n in FLAG_NAMES if env_file.get(n) or process.get(n)]
            if on:
                problems.append(f"{h.name}: still on: {', '.join(on)}")
        if problems:
            raise StepFailed(
                "the flags must be off before the columns go (the advanced query and ingestion read them): "
                + "; ".join(problems)
                + ". Run the quick rollback first, or choose the full rollback.",
                facts={"hosts": seen},
            )
        # No restart in this plan: validation counts the log from here on.
        return {"hosts": seen, "log_offsets": await log_offsets(ctx)}

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        return f"all flags off on {len(facts['hosts'])} host(s)"


class InspectSchema(Step):
    id = "db-inspect"
    title = "Check the columns and list what depends on them"
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


def _skip(ctx: RunContext) -> bool:
    return bool(ctx.fact(InspectSchema.id, "*", "skip"))


def kept_dir(ctx: RunContext) -> Path:
    return ctx.config.journal_path.parent / "kept"


class KeepCopy(Step):
    id = "db-keep"
    title = "Keep a copy of the columns' data and definitions"
    scope = "environment"

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        d = ctx.env.database
        assert d
        cols = ", ".join(d.columns)
        return (
            f"COPY (SELECT <primary key>, {cols} FROM {d.table}) → {kept_dir(ctx)}/{ctx.run_id}-{d.table}.json\n"
            "-- plus the column definitions and the CREATE INDEX of every dependent index"
        )

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        if _skip(ctx):
            return {"skipped": "columns absent"}
        d = ctx.env.database
        assert d
        async with _conn(ctx) as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                pk = await primary_key(conn, d.table)
                if not pk:
                    raise StepFailed(f"{d.table} has no primary key, so a copy could not be put back row by row")
                present = [c for c, p in (await db.present_columns(conn, d.table, d.columns)).items() if p]
                columns = await column_definitions(conn, d.table, present)
                indexes = await dependent_index_definitions(conn, d.table, present)
                select = ", ".join(db.quote_ident(c) for c in [*pk, *present])
                rows = await conn.fetch(f"SELECT {select} FROM {db.quote_ident(d.table)} ORDER BY 1")
                migrations = await applied_migrations(conn)
        document = {
            "environment": ctx.env.name,
            "run": ctx.run_id,
            "table": d.table,
            "primary_key": pk,
            "columns": columns,
            "indexes": indexes,
            "rows": [list(r.values()) for r in rows],
            "schema_migrations": migrations,
        }
        data = json.dumps(document, default=str).encode()
        path = kept_dir(ctx) / f"{ctx.run_id}-{d.table}.json"
        _write_private(path, data)
        return {
            "path": str(path),
            "rows": len(rows),
            "sha256": hashlib.sha256(data).hexdigest(),
            "columns": [c["name"] for c in columns],
            "indexes": [i["name"] for i in indexes],
        }

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        if facts.get("skipped"):
            return "nothing to keep"
        data = Path(facts["path"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != facts["sha256"]:
            raise StepFailed(f"the kept copy {facts['path']} does not read back as written")
        return f"{facts['rows']} rows kept in {facts['path']}"

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        facts = facts_by_host.get("*", {})
        return [ReapplyMigration(facts["path"])] if facts.get("path") else []


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keep.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def applied_migrations(conn: asyncpg.Connection) -> dict[str, Any] | None:
    """The migration bookkeeping (schema_migrations.version), if the database keeps one: the
    rollback script deletes 004's row, so a restore must put it back to lose nothing."""
    version_type = await conn.fetchval(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass('schema_migrations') AND a.attname = 'version' AND NOT a.attisdropped"
    )
    if version_type is None:
        return None
    versions = await conn.fetch("SELECT version::text AS v FROM schema_migrations ORDER BY 1")
    return {"type": version_type, "versions": [r["v"] for r in versions]}


async def primary_key(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY a.attnum",
        table,
    )
    return [r["attname"] for r in rows]


async def column_definitions(conn: asyncpg.Connection, table: str, columns: list[str]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, "
        "pg_get_expr(d.adbin, d.adrelid) AS default, a.attnotnull AS not_null "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = to_regclass($1) AND a.attname = ANY($2::text[]) AND NOT a.attisdropped ORDER BY a.attnum",
        table,
        columns,
    )
    return [dict(r) for r in rows]


async def dependent_index_definitions(conn: asyncpg.Connection, table: str, columns: list[str]) -> list[dict[str, str]]:
    rows = await conn.fetch(
        """
        SELECT DISTINCT c.relname AS name, pg_get_indexdef(c.oid) AS definition
        FROM pg_depend d
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass AND c.relkind = 'i'
        WHERE d.refobjid = to_regclass($1) AND a.attname = ANY($2::text[])
        ORDER BY 1
        """,
        table,
        columns,
    )
    return [dict(r) for r in rows]


class DropColumns(Step):
    id = "db-rollback"
    title = "Run the rollback script (one transaction)"
    scope = "environment"

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
        try:
            sql, dropped = await self._script(ctx)
        except StepFailed as exc:
            return f"-- {exc}"
        left_out = "".join(f"\n--   {line}" for line in dropped)
        return f"BEGIN;\n{sql}COMMIT;" + (
            f"\n-- left out (psql meta-commands / transaction control):{left_out}" if dropped else ""
        )

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        if _skip(ctx):
            return {"skipped": "columns absent"}
        manual = ctx.fact(self.id, "*", "manual_sql")
        if manual:
            # The operator chose the runbook's manual SQL and it ran: running the failing
            # script again would only fail again. Verify checks the columns are gone.
            return {"sql": manual, "manual": True, "left_out": []}
        sql, dropped = await self._script(ctx)
        async with _conn(ctx) as conn:
            try:
                async with conn.transaction():
                    await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                raise StepFailed(
                    f"the rollback script failed: {type(exc).__name__}: {exc}. Nothing was changed: the whole "
                    "script ran in one transaction, which was rolled back.",
                    output=sql,
                    troubleshooting="Issue 3: Database rollback fails",
                    remedy=Remedy(
                        "Run the runbook's manual rollback SQL (one transaction)",
                        tuple(manual_sql(ctx.env).splitlines()),
                        "Issue 3: Database rollback fails",
                    ),
                ) from None
        return {"sql": sql, "left_out": dropped}

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        if facts.get("skipped"):
            return "skipped: columns absent"
        return await verify_columns_dropped(ctx)

    async def remedy(self, ctx: RunContext, host: Host | None, failure: StepFailed) -> None:
        sql = manual_sql(ctx.env)
        async with _conn(ctx) as conn:
            try:
                async with conn.transaction():
                    await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                raise StepFailed(
                    f"the manual rollback SQL failed too (nothing changed): {exc}",
                    troubleshooting="Issue 3: Database rollback fails",
                ) from None
        ctx.facts.setdefault(self.id, {}).setdefault("*", {})["manual_sql"] = sql

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        return []  # KeepCopy's undo re-applies the migration


async def verify_columns_dropped(ctx: RunContext) -> str:
    d = ctx.env.database
    assert d
    async with _conn(ctx) as conn:
        columns = await db.present_columns(conn, d.table, d.columns)
        indexes = await db.present_indexes(conn, d.indexes)
    left = [c for c, p in columns.items() if p] + [i for i, p in indexes.items() if p]
    if left:
        raise StepFailed(
            f"still present after the rollback: {', '.join(left)}", troubleshooting="Issue 3: Database rollback fails"
        )
    return f"{', '.join(d.columns)} and {', '.join(d.indexes)} are gone"


class ReapplyMigration(Step):
    """Migration 004 again, from the kept copy: columns, their data, every dependent index."""

    id = "db-restore"
    title = "Re-apply migration 004 from the kept copy"
    scope = "environment"

    def __init__(self, path: str) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(Path(self.path).read_bytes())
        except (OSError, ValueError) as exc:
            raise StepFailed(f"cannot read the kept copy {self.path}: {exc}") from None

    def statements(self, kept: dict[str, Any]) -> list[str]:
        table = db.quote_ident(kept["table"])
        out = []
        for c in kept["columns"]:
            default = f" DEFAULT {c['default']}" if c.get("default") else ""
            not_null = " NOT NULL" if c.get("not_null") else ""
            out.append(
                f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {db.quote_ident(c['name'])} "
                f"{c['type']}{default}{not_null};"
            )
        out.append(
            f"-- put back {len(kept['rows'])} rows of {', '.join(c['name'] for c in kept['columns'])} "
            f"by {', '.join(kept['primary_key'])}"
        )
        for i in kept["indexes"]:
            out.append(re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX IF NOT EXISTS ", i["definition"]) + ";")
        if kept.get("schema_migrations"):
            out.append("-- put back the schema_migrations versions the rollback removed")
        return out

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        try:
            kept = self._load()
        except StepFailed as exc:
            return f"-- {exc}"
        return "BEGIN;\n" + "\n".join(self.statements(kept)) + "\nCOMMIT;"

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        kept = self._load()
        offsets = await log_offsets(ctx)  # a restore of the database alone restarts nothing
        table = db.quote_ident(kept["table"])
        pk, cols = kept["primary_key"], [c["name"] for c in kept["columns"]]
        async with _conn(ctx) as conn:
            try:
                async with conn.transaction():
                    for statement in self.statements(kept):
                        if not statement.startswith("--") and " INDEX " not in statement:
                            await conn.execute(statement)
                    types = {c["name"]: c["type"] for c in kept["columns"]}
                    pk_types = await conn.fetch(
                        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a "
                        "WHERE a.attrelid = to_regclass($1) AND a.attname = ANY($2::text[])",
                        kept["table"],
                        pk,
                    )
                    types.update({r["attname"]: r["type"] for r in pk_types})
                    defs = ", ".join(f"{db.quote_ident(c)} {types[c]}" for c in [*pk, *cols])
                    await conn.execute(f"CREATE TEMP TABLE rollback_console_kept ({defs}) ON COMMIT DROP")
                    await conn.copy_records_to_table(
                        "rollback_console_kept", records=[tuple(r) for r in kept["rows"]], columns=[*pk, *cols]
                    )
                    sets = ", ".join(f"{db.quote_ident(c)} = k.{db.quote_ident(c)}" for c in cols)
                    match = " AND ".join(f"t.{db.quote_ident(c)} = k.{db.quote_ident(c)}" for c in pk)
                    updated = await conn.execute(
                        f"UPDATE {table} AS t SET {sets} FROM rollback_console_kept k WHERE {match}"
                    )
                    for statement in self.statements(kept):
                        if " INDEX " in statement and not statement.startswith("--"):
                            await conn.execute(statement)
                    migrations = kept.get("schema_migrations")
                    if migrations:
                        # Only versions kept and missing now: nothing else is touched. The type
                        # comes from the catalog when the copy was kept.
                        await conn.execute(
                            f"INSERT INTO schema_migrations (version) SELECT v::{migrations['type']} "
                            "FROM unnest($1::text[]) AS v WHERE NOT EXISTS "
                            "(SELECT 1 FROM schema_migrations m WHERE m.version::text = v)",
                            migrations["versions"],
                        )
            except asyncpg.PostgresError as exc:
                raise StepFailed(
                    f"re-applying migration 004 failed (nothing changed, one transaction): {exc}"
                ) from None
        return {
            "path": self.path,
            "rows": len(kept["rows"]),
            "log_offsets": offsets,
            "updated": updated,
            "columns": cols,
            "indexes": [i["name"] for i in kept["indexes"]],
        }

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        kept = self._load()
        async with _conn(ctx) as conn:
            columns = await db.present_columns(conn, kept["table"], tuple(facts["columns"]))
            indexes = await db.present_indexes(conn, tuple(facts["indexes"]))
        missing = [c for c, p in columns.items() if not p] + [i for i, p in indexes.items() if not p]
        if missing:
            raise StepFailed(f"still missing after re-applying: {', '.join(missing)}")
        return f"{', '.join(facts['columns'])} back with {facts['rows']} rows; indexes {', '.join(facts['indexes'])}"


def database_steps(env: Environment, options: dict[str, Any]) -> list[Step]:
    if env.database is None:
        from console.plans import PlanError

        raise PlanError(f"environment {env.name!r} has no [database] section configured")
    return [CheckFlagsOff(), InspectSchema(), KeepCopy(), DropColumns()]


def database_plan(env: Environment, options: dict[str, Any]) -> Plan:
    return Plan(
        action="database",
        environment=env.name,
        title="Database rollback: drop migration 004's columns and indexes",
        steps=(*database_steps(env, options), ValidateRollback()),
        target="< 10 min",
        target_s=600,
        data_loss="Content-type data (has_video, has_media) — a copy is kept, so restore loses nothing",
        reversible="Yes: re-apply migration 004 from the kept copy (`rollback-console restore`)",
    )
