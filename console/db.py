"""The service's PostgreSQL database: what migration 004 left, and what depends on it.

Reached directly or through the host's SSH connection (port forwarding), with asyncpg.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg

from console.config.model import Database, SecretError
from console.probes.snapshot import DatabaseReport
from console.transport.base import Transport


class DatabaseError(RuntimeError):
    """The database could not be reached or a statement failed; never carries the DSN."""


def dsn_endpoint(dsn: str) -> tuple[str, int]:
    parts = urlsplit(dsn)
    return parts.hostname or "localhost", parts.port or 5432


def describe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    parts = urlsplit(dsn)
    user = f"{parts.username}@" if parts.username else ""
    return f"postgresql://{user}{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


@contextlib.asynccontextmanager
async def connect(db: Database, transport: Transport, *, timeout: float = 10.0) -> AsyncIterator[asyncpg.Connection]:
    try:
        dsn = db.dsn.resolve()
    except SecretError as exc:
        raise DatabaseError(f"database: {exc}") from None
    try:
        host, port = dsn_endpoint(dsn)
        shown = describe_dsn(dsn)
    except ValueError as exc:  # urlsplit's own words; the DSN itself is never quoted
        raise DatabaseError(f"database: the DSN in {db.dsn.describe()} is not a valid URL: {exc}") from None
    if db.reach == "forward" and not transport.host.is_local:
        host, port = await transport.forward(host, port)
    # Every session of the console gives up rather than hold the service up.
    settings = {
        "lock_timeout": f"{int(db.lock_timeout_s * 1000)}ms",
        "statement_timeout": f"{int(db.statement_timeout_s * 1000)}ms",
        "application_name": "rollback-console",
    }
    try:
        conn = await asyncpg.connect(dsn, host=host, port=port, timeout=timeout, server_settings=settings)
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = str(exc).replace(dsn, shown) or type(exc).__name__
        raise DatabaseError(f"database {shown} via {transport.where}: {reason}") from None
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=5)


async def present_columns(conn: asyncpg.Connection, table: str, columns: tuple[str, ...]) -> dict[str, bool]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = $1 AND column_name = ANY($2::text[])",
        table,
        list(columns),
    )
    found = {r["column_name"] for r in rows}
    return {c: c in found for c in columns}


async def present_indexes(conn: asyncpg.Connection, indexes: tuple[str, ...]) -> dict[str, bool]:
    rows = await conn.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY($1::text[])",
        list(indexes),
    )
    found = {r["indexname"] for r in rows}
    return {i: i in found for i in indexes}


async def dependent_objects(conn: asyncpg.Connection, table: str, columns: tuple[str, ...]) -> list[str]:
    """Everything PostgreSQL would drop along with the columns (indexes, views, constraints)."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT pg_describe_object(d.classid, d.objid, 0) AS what
        FROM pg_depend d
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.refobjid = to_regclass($1) AND a.attname = ANY($2::text[])
          AND d.deptype IN ('n', 'a')
          AND d.classid <> 'pg_attrdef'::regclass  -- a column's own default goes with it anyway
          AND NOT (d.classid = 'pg_class'::regclass AND d.objid = d.refobjid)
        ORDER BY 1
        """,
        table,
        list(columns),
    )
    out = []
    for r in rows:
        what = r["what"]
        # A view's rule reads "rule _RETURN on view v": name the view instead.
        if what.startswith("rule _RETURN on "):
            what = what.removeprefix("rule _RETURN on ")
        out.append(what)
    return sorted(set(out))


async def inspect(db: Database, transport: Transport, *, timeout: float = 10.0) -> DatabaseReport:
    try:
        async with connect(db, transport, timeout=timeout) as conn:
            columns = await present_columns(conn, db.table, db.columns)
            indexes = await present_indexes(conn, db.indexes)
            dependents = await dependent_objects(conn, db.table, db.columns)
            rows = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(db.table)}")
    except DatabaseError as exc:
        return DatabaseReport(error=str(exc))
    except asyncpg.PostgresError as exc:
        return DatabaseReport(error=f"database: {type(exc).__name__}: {exc}")
    except (OSError, asyncpg.InterfaceError) as exc:  # the connection went away mid-inspection
        return DatabaseReport(error=f"database: connection lost: {type(exc).__name__}: {exc}")
    return DatabaseReport(
        columns=tuple(columns.items()),
        indexes=tuple(indexes.items()),
        dependents=tuple(dependents),
        rows=rows,
    )


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
