"""The kept copy of migration 004's columns, and putting it back.

The copy is taken inside the transaction that drops the columns, after the table is
locked against writes, so no row can change between the copy and the drop. Putting it
back is one transaction too. Both give up after the configured lock and statement
timeouts rather than hold the service up.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from console import db
from console.config.model import Database, Host
from console.engine.plan import Facts, RunContext, Step, StepFailed
from console.runbook.issues import DB_ROLLBACK_FAILED


def kept_dir(ctx: RunContext) -> Path:
    return ctx.config.journal_path.parent / "kept"


def kept_path(ctx: RunContext) -> Path:
    assert ctx.env.database
    return kept_dir(ctx) / f"{ctx.run_id}-{ctx.env.database.table}.json"


class Connect:
    """`async with Connect(ctx) as conn`: the environment's database through its first host."""

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


async def gave_up(conn: asyncpg.Connection, d: Database, exc: asyncpg.PostgresError, doing: str) -> StepFailed:
    """A lock or statement timeout as the operator needs it: who held the table, what to do."""
    if isinstance(exc, asyncpg.LockNotAvailableError):
        holders = await lock_holders(conn, d.table)
        return StepFailed(
            f"{doing}: gave up after {d.lock_timeout_s:g}s waiting for a lock on {d.table} "
            f"(database.lock_timeout_s){': held by ' + holders if holders else ''}. Nothing was changed "
            "(one transaction, rolled back), and queries on the table waited no longer than that. Try again "
            "when that transaction has ended, or end it.",
            issue=DB_ROLLBACK_FAILED,
        )
    return StepFailed(
        f"{doing}: a statement ran longer than {d.statement_timeout_s:g}s (database.statement_timeout_s) and "
        "was cancelled. Nothing was changed (one transaction, rolled back). Raise the timeout for a large table.",
        issue=DB_ROLLBACK_FAILED,
    )


async def lock_holders(conn: asyncpg.Connection, table: str) -> str:
    """The sessions holding a lock on ``table`` now (pid, user, state, age; never their SQL)."""
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT a.pid, a.usename, a.application_name, a.state, "
            "extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))::int AS age "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.relation = to_regclass($1) AND l.granted AND a.pid <> pg_backend_pid() ORDER BY 1",
            table,
        )
    except (asyncpg.PostgresError, OSError):
        return ""
    return "; ".join(
        f"pid {r['pid']} ({r['usename'] or '?'}{', ' + r['application_name'] if r['application_name'] else ''}, "
        f"{r['state'] or '?'} for {r['age']}s)"
        for r in rows
    )


async def take_copy(conn: asyncpg.Connection, d: Database, present: list[str], ctx: RunContext) -> dict[str, Any]:
    """The columns' data and definitions, every dependent index and the migration records."""
    pk = await primary_key(conn, d.table)
    if not pk:
        raise StepFailed(f"{d.table} has no primary key, so a copy could not be put back row by row")
    select = ", ".join(db.quote_ident(c) for c in [*pk, *present])
    rows = await conn.fetch(f"SELECT {select} FROM {db.quote_ident(d.table)} ORDER BY 1")
    return {
        "environment": ctx.env.name,
        "run": ctx.run_id,
        "table": d.table,
        "primary_key": pk,
        "columns": await column_definitions(conn, d.table, present),
        "indexes": await dependent_index_definitions(conn, d.table, present),
        "rows": [list(r.values()) for r in rows],
        "schema_migrations": await applied_migrations(conn),
    }


def write_private(path: Path, data: bytes) -> None:
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


def write_copy(path: Path, document: dict[str, Any]) -> Facts:
    data = json.dumps(document, default=str).encode()
    write_private(path, data)
    return {
        "kept_path": str(path),
        "rows": len(document["rows"]),
        "sha256": hashlib.sha256(data).hexdigest(),
        "columns": [c["name"] for c in document["columns"]],
        "indexes": [i["name"] for i in document["indexes"]],
    }


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


class ReapplyMigration(Step):
    """Migration 004 again, from the kept copy: columns, their data, every dependent index."""

    id = "db-restore"
    title = "Re-apply migration 004 from the kept copy"
    scope = "environment"
    changes = True

    def __init__(self, path: str) -> None:
        self.path = path

    async def _load(self) -> dict[str, Any]:
        try:  # a copy of a whole table's columns: read and parsed off the event loop
            return await asyncio.to_thread(lambda: json.loads(Path(self.path).read_bytes()))
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

    async def _present(self, ctx: RunContext, kept: dict[str, Any]) -> list[str]:
        async with Connect(ctx) as conn:
            found = await db.present_columns(conn, kept["table"], tuple(c["name"] for c in kept["columns"]))
        return [c for c, p in found.items() if p]

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        return (await self.preview_change(ctx, host))[0]

    async def preview_change(self, ctx: RunContext, host: Host | None) -> tuple[str, bool]:
        try:
            kept = await self._load()
            present = await self._present(ctx, kept)
        except StepFailed as exc:
            return f"-- {exc}", True
        if len(present) == len(kept["columns"]):
            return f"-- {', '.join(present)} are back already: nothing to re-apply", False
        return "BEGIN;\n" + "\n".join(self.statements(kept)) + "\nCOMMIT;", True

    async def intent(self, ctx: RunContext, host: Host | None) -> Facts:
        kept = await self._load()
        data = await asyncio.to_thread(Path(self.path).read_bytes)
        return {
            "path": self.path,
            "sha256": hashlib.sha256(data).hexdigest(),
            "present": await self._present(ctx, kept),
        }

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        from console.plans.validate import log_offsets

        intent = ctx.intent(self.id, host)
        kept = await self._load()
        d = ctx.env.database
        assert d
        offsets = await log_offsets(ctx)  # a restore of the database alone restarts nothing
        table = db.quote_ident(kept["table"])
        pk, cols = kept["primary_key"], [c["name"] for c in kept["columns"]]
        facts: Facts = {"path": self.path, "columns": cols, "indexes": [i["name"] for i in kept["indexes"]]}
        async with Connect(ctx) as conn:
            try:
                async with conn.transaction():
                    present = await db.present_columns(conn, kept["table"], tuple(cols))
                    if all(present.values()):  # one transaction: all back means it committed
                        done = len(intent["present"]) < len(cols)
                        return {**facts, "rows": len(kept["rows"]), "log_offsets": offsets, "changed": done}
                    for statement in self.statements(kept):
                        if not statement.startswith("--") and " INDEX " not in statement:
                            await conn.execute(statement)
                    updated = await self._put_rows(conn, kept, table, pk, cols)
                    for statement in self.statements(kept):
                        if " INDEX " in statement and not statement.startswith("--"):
                            await conn.execute(statement)
                    await self._put_migrations(conn, kept)
            except (asyncpg.LockNotAvailableError, asyncpg.QueryCanceledError) as exc:
                raise await gave_up(conn, d, exc, "re-applying migration 004") from None
            except asyncpg.PostgresError as exc:
                raise StepFailed(
                    f"re-applying migration 004 failed (nothing changed, one transaction): {exc}"
                ) from None
        return {**facts, "rows": len(kept["rows"]), "log_offsets": offsets, "updated": updated, "changed": True}

    async def _put_rows(self, conn: asyncpg.Connection, kept: dict[str, Any], table: str, pk: list, cols: list) -> str:
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
        return await conn.execute(f"UPDATE {table} AS t SET {sets} FROM rollback_console_kept k WHERE {match}")

    async def _put_migrations(self, conn: asyncpg.Connection, kept: dict[str, Any]) -> None:
        migrations = kept.get("schema_migrations")
        if migrations:
            # Only versions kept and missing now: nothing else is touched. The type comes
            # from the catalog when the copy was kept.
            await conn.execute(
                f"INSERT INTO schema_migrations (version) SELECT v::{migrations['type']} "
                "FROM unnest($1::text[]) AS v WHERE NOT EXISTS "
                "(SELECT 1 FROM schema_migrations m WHERE m.version::text = v)",
                migrations["versions"],
            )

    async def verify(self, ctx: RunContext, host: Host | None, facts: Facts) -> str:
        kept = await self._load()
        async with Connect(ctx) as conn:
            columns = await db.present_columns(conn, kept["table"], tuple(facts["columns"]))
            indexes = await db.present_indexes(conn, tuple(facts["indexes"]))
        missing = [c for c, p in columns.items() if not p] + [i for i, p in indexes.items() if not p]
        if missing:
            raise StepFailed(f"still missing after re-applying: {', '.join(missing)}")
        return f"{', '.join(facts['columns'])} back with {facts['rows']} rows; indexes {', '.join(facts['indexes'])}"

    async def happened(self, ctx: RunContext, host: Host | None, intent: Facts) -> Facts | None:
        present = await self._present(ctx, await self._load())
        if len(present) <= len(intent.get("present") or []):
            return None  # one transaction: nothing of it committed
        return {**intent, "changed": True}

    def undo_steps(self, facts_by_host: dict[str, Facts]) -> list[Step]:
        from console.plans.database import DropColumns

        return [DropColumns()] if facts_by_host.get("*", {}).get("changed", True) else []
