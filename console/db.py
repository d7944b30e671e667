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


# The catalog reads, each a subquery over its parameters ($-numbers filled in by the caller),
# so the single checks below and ``inspect``'s one statement run the same SQL.
_COLUMNS_PRESENT = (
    "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = {table}::text AND column_name = ANY({columns}::text[])"
)
_INDEXES_PRESENT = (
    "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY({indexes}::text[])"
)
# Everything PostgreSQL would drop along with the columns (indexes, views, constraints); a
# column's own default goes with it anyway.
_DEPENDENTS = """
    SELECT DISTINCT pg_describe_object(d.classid, d.objid, 0)
    FROM pg_depend d
    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE d.refobjid = to_regclass({table}::text) AND a.attname = ANY({columns}::text[])
      AND d.deptype IN ('n', 'a')
      AND d.classid <> 'pg_attrdef'::regclass
      AND NOT (d.classid = 'pg_class'::regclass AND d.objid = d.refobjid)
"""

# All that ``inspect`` reports, in one statement: one round trip instead of four (asyncpg
# spends two on each: prepare, then run), and the four facts are read at one moment (one
# statement's snapshot) rather than across four. A missing table fails the statement at its
# count, as the count alone did before.
_INSPECT = (
    "SELECT ARRAY("
    + _COLUMNS_PRESENT.format(table="$1", columns="$2")
    + ") AS columns, ARRAY("
    + _INDEXES_PRESENT.format(indexes="$3")
    + ") AS indexes, ARRAY("
    + _DEPENDENTS.format(table="$1", columns="$2")
    + ") AS dependents, (SELECT count(*) FROM {table}) AS rows"
)


# The single checks, each its subquery alone.
_COLUMNS_ONLY = f"SELECT ARRAY({_COLUMNS_PRESENT.format(table='$1', columns='$2')})"
_INDEXES_ONLY = f"SELECT ARRAY({_INDEXES_PRESENT.format(indexes='$1')})"
_DEPENDENTS_ONLY = f"SELECT ARRAY({_DEPENDENTS.format(table='$1', columns='$2')})"


def _presence(wanted: tuple[str, ...], found: list[str]) -> dict[str, bool]:
    """Each wanted name, present or not (one entry per name)."""
    there = set(found)
    return {name: name in there for name in wanted}


async def present_columns(conn: asyncpg.Connection, table: str, columns: tuple[str, ...]) -> dict[str, bool]:
    return _presence(columns, await conn.fetchval(_COLUMNS_ONLY, table, list(columns)))


async def present_indexes(conn: asyncpg.Connection, indexes: tuple[str, ...]) -> dict[str, bool]:
    return _presence(indexes, await conn.fetchval(_INDEXES_ONLY, list(indexes)))


async def dependent_objects(conn: asyncpg.Connection, table: str, columns: tuple[str, ...]) -> list[str]:
    """Everything PostgreSQL would drop along with the columns (indexes, views, constraints)."""
    return _named_dependents(await conn.fetchval(_DEPENDENTS_ONLY, table, list(columns)))


def _named_dependents(described: list[str]) -> list[str]:
    # A view's rule reads "rule _RETURN on view v": name the view instead.
    return sorted({what.removeprefix("rule _RETURN on ") for what in described})


async def inspect(db: Database, transport: Transport, *, timeout: float = 10.0) -> DatabaseReport:
    try:
        async with connect(db, transport, timeout=timeout) as conn:
            row = await conn.fetchrow(
                _INSPECT.format(table=quote_ident(db.table)), db.table, list(db.columns), list(db.indexes)
            )
    except DatabaseError as exc:
        return DatabaseReport(error=str(exc))
    except asyncpg.PostgresError as exc:
        return DatabaseReport(error=f"database: {type(exc).__name__}: {exc}")
    except (OSError, asyncpg.InterfaceError) as exc:  # the connection went away mid-inspection
        return DatabaseReport(error=f"database: connection lost: {type(exc).__name__}: {exc}")
    assert row is not None  # a SELECT without FROM answers exactly one row
    return DatabaseReport(
        columns=tuple(_presence(db.columns, row["columns"]).items()),
        indexes=tuple(_presence(db.indexes, row["indexes"]).items()),
        dependents=tuple(_named_dependents(row["dependents"])),
        rows=row["rows"],
    )


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
