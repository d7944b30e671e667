"""The database's facts (migration 004's columns and indexes, what would go with the columns,
the row count) read in one statement, against a real PostgreSQL in each state a rollback
meets: as migrated (with 005's index and a view on a column), rolled back, and without the
table at all. Each fact is what the single checks (used by the rollback's own steps) read."""

from __future__ import annotations

import asyncpg
import pytest

from console import db
from console.config import load_config
from console.probes.collect import Prober
from console.probes.snapshot import DatabaseReport
from tests.engine_support import MakeSimulation
from tests.fixtures_pg import requires_database

pytestmark = pytest.mark.postgres


async def _singles(dsn: str, d) -> tuple[dict, dict, list[str], int | None]:
    conn = await asyncpg.connect(dsn)
    try:
        columns = await db.present_columns(conn, d.table, d.columns)
        indexes = await db.present_indexes(conn, d.indexes)
        dependents = await db.dependent_objects(conn, d.table, d.columns)
        rows = await conn.fetchval(f"SELECT count(*) FROM {db.quote_ident(d.table)}")
    finally:
        await conn.close()
    return columns, indexes, dependents, rows


def _as_read_by_inspect(report: DatabaseReport) -> tuple[dict, dict, list[str], int | None]:
    return dict(report.columns), dict(report.indexes), list(report.dependents), report.rows


async def test_inspect_reads_in_one_statement_what_the_single_checks_read(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    requires_database(sim)
    config = load_config(sim.config_path)
    env = config.environment("staging")
    d = env.database
    assert d is not None
    dsn = d.dsn.resolve()

    async def ddl(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async with Prober(config) as prober:
        transport = await prober.pool.get(env.hosts[0])

        # As migrated, with a view on one of the columns besides 005's index.
        await ddl(f"CREATE VIEW video_posts AS SELECT id FROM {d.table} WHERE {d.columns[0]}")
        report = await db.inspect(d, transport)
        assert report.error is None
        assert report.columns == tuple((c, True) for c in d.columns)
        assert report.indexes == tuple((i, True) for i in d.indexes)
        assert "view video_posts" in report.dependents  # named as the view, not its _RETURN rule
        assert not any(x.startswith("rule ") for x in report.dependents)
        assert {f"index {i}" for i in d.indexes} <= set(report.dependents)
        assert report.extra_dependents  # the view and 005's index go beyond 004's own
        assert report.rows is not None and report.rows > 0
        assert _as_read_by_inspect(report) == await _singles(dsn, d)

        # Rolled back: the columns gone, and their indexes with them.
        await ddl(f"DROP VIEW video_posts; ALTER TABLE {d.table} " + ", ".join(f"DROP COLUMN {c}" for c in d.columns))
        report = await db.inspect(d, transport)
        assert report.error is None
        assert report.columns == tuple((c, False) for c in d.columns)
        assert report.indexes == tuple((i, False) for i in d.indexes)
        assert report.dependents == ()
        assert report.migration_applied is False
        assert _as_read_by_inspect(report) == await _singles(dsn, d)

        # No table: a report that says so, not an exception, and no facts beside it.
        await ddl(f"DROP TABLE {d.table}")
        report = await db.inspect(d, transport)
        assert report.error is not None
        assert "UndefinedTableError" in report.error and d.table in report.error
        assert (report.columns, report.indexes, report.dependents, report.rows) == ((), (), (), None)
        assert report.migration_applied is None
