"""The database rollback does not hold the service up and loses no write, against a real
PostgreSQL with real concurrent sessions: behind a long reader it gives up after the
configured lock timeout, saying who held the table (and queries meanwhile go through);
the kept copy is taken in the transaction that drops the columns, under a lock that
makes writes wait, so a write either is in the copy or fails on the missing column —
never lost in between; the restore gives up the same way behind a reader."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import pytest

from console.failpoints import ENV as FAILPOINTS
from tests.engine_support import MakeSimulation, cli, cli_start, db_state, journal_of, run_engine, run_id_in
from tests.fixtures_pg import requires_database

pytestmark = pytest.mark.postgres

HANG_GUARD_S = 60.0


def with_timeouts(sim, lock_timeout_s: float) -> None:
    """The config's database section, with this environment's lock timeout."""
    text = sim.config_path.read_text()
    section = "[environments.staging.database]\n"
    assert section in text
    sim.config_path.write_text(text.replace(section, f"{section}lock_timeout_s = {lock_timeout_s}\n", 1))


async def flags_off(sim) -> None:
    assert (await run_engine(sim.config_path, "quick")).result.outcome == "succeeded"


async def test_behind_a_long_reader_the_rollback_gives_up_after_the_lock_timeout_and_says_who(
    make_simulation: MakeSimulation,
) -> None:
    sim = make_simulation(database=True)
    requires_database(sim)
    dsn = sim.dsn("staging") or ""
    with_timeouts(sim, 1.0)
    await flags_off(sim)
    before = await db_state(dsn)
    reader = await asyncpg.connect(dsn)
    service = await asyncpg.connect(dsn)
    try:
        reader_pid = await reader.fetchval("SELECT pg_backend_pid()")
        transaction = reader.transaction()
        await transaction.start()
        await reader.fetchval("SELECT count(*) FROM posts")  # holds its lock on posts until it ends

        rollback = asyncio.create_task(
            asyncio.to_thread(cli, sim.config_path, "rollback", "database", "--env", "staging", "--yes")
        )
        answered = 0
        while not rollback.done():  # the service keeps querying posts meanwhile
            await asyncio.wait_for(service.fetchval("SELECT count(*) FROM posts"), HANG_GUARD_S)
            answered += 1
            await asyncio.sleep(0.05)
        result = await rollback

        assert result.returncode == 1, result.stdout + result.stderr
        assert "gave up after 1s waiting for a lock on posts (database.lock_timeout_s)" in result.stdout
        assert "held by pid " in result.stdout and f"pid {reader_pid} (" in result.stdout
        assert "Nothing was changed" in result.stdout
        assert answered > 0
        await transaction.rollback()
    finally:
        await reader.close()
        await service.close()
    assert await db_state(dsn) == before

    # The reader is gone: the same run, resumed, goes through.
    resumed = cli(sim.config_path, "resume", run_id_in(result.stdout), "--yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "has_video" not in (await db_state(dsn))["columns"]


async def test_no_write_is_lost_between_the_copy_and_the_drop(make_simulation: MakeSimulation) -> None:
    """The rollback is held between its copy and its drop (a failpoint sleeps there) while
    a writer updates a kept column: the update waits for the drop, then fails on the
    missing column. A write committed before the rollback is in the copy."""
    sim = make_simulation(database=True)
    requires_database(sim)
    dsn = sim.dsn("staging") or ""
    await flags_off(sim)
    writer = await asyncpg.connect(dsn)
    try:
        early_id, early = await writer.fetchrow("SELECT id, has_video FROM posts ORDER BY id LIMIT 1")
        await writer.execute("UPDATE posts SET has_video = $1 WHERE id = $2", not early, early_id)  # committed
        late_id, late = await writer.fetchrow("SELECT id, has_video FROM posts ORDER BY id DESC LIMIT 1")
        expected = await db_state(dsn)

        proc = cli_start(
            sim.config_path,
            "rollback",
            "database",
            "--env",
            "staging",
            "--yes",
            env={FAILPOINTS: "db-rollback/after-copy=sleep(2)"},
        )
        kept_dir = sim.directory / "kept"
        deadline = time.monotonic() + HANG_GUARD_S
        while not list(kept_dir.glob("*-posts.json")):  # the copy is written: the drop has not run
            assert proc.poll() is None and time.monotonic() < deadline, "the rollback ended before its copy"
            await asyncio.sleep(0.02)
        with pytest.raises(asyncpg.UndefinedColumnError):
            await asyncio.wait_for(
                writer.execute("UPDATE posts SET has_video = $1 WHERE id = $2", not late, late_id), HANG_GUARD_S
            )
        out, err = await asyncio.to_thread(proc.communicate, timeout=HANG_GUARD_S)
        assert proc.returncode == 0, out + err
    finally:
        await writer.close()

    (kept_path,) = kept_dir.glob("*-posts.json")
    kept = json.loads(Path(kept_path).read_bytes())
    values = {row[0]: row[1] for row in kept["rows"]}
    assert values[early_id] is (not early) and values[late_id] is late  # the copy is the state at the drop
    restored = cli(sim.config_path, "restore", "--env", "staging", "--run", run_id_in(out), "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert await db_state(dsn) == expected


async def test_the_restore_gives_up_behind_a_long_reader_too_then_goes_through(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    requires_database(sim)
    dsn = sim.dsn("staging") or ""
    with_timeouts(sim, 1.0)
    await flags_off(sim)
    before = await db_state(dsn)
    rolled = await run_engine(sim.config_path, "database")
    assert rolled.result.outcome == "succeeded", rolled.result.message
    after_rollback = await db_state(dsn)

    reader = await asyncpg.connect(dsn)
    try:
        transaction = reader.transaction()
        await transaction.start()
        await reader.fetchval("SELECT count(*) FROM posts")
        blocked = await asyncio.to_thread(
            cli, sim.config_path, "restore", "--env", "staging", "--run", rolled.run_id, "--yes"
        )
        await transaction.rollback()
    finally:
        await reader.close()

    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "re-applying migration 004: gave up after 1s waiting for a lock on posts" in blocked.stdout
    assert await db_state(dsn) == after_rollback  # one transaction: nothing half-applied
    restore_run = journal_of(sim).runs()[-1].run_id
    resumed = cli(sim.config_path, "resume", restore_run, "--yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert await db_state(dsn) == before


def test_the_timeouts_come_from_the_database_section_and_must_be_positive(tmp_path: Path) -> None:
    from console.config import load_config
    from tests.test_config import MINIMAL, problems

    section = '\n[environments.staging.database]\ndsn = { env = "DSN" }\nrollback_script = "004_rollback.sql"\n'
    path = tmp_path / "ok.toml"
    path.write_text(MINIMAL + section + "lock_timeout_s = 2.5\nstatement_timeout_s = 30\n")
    database = load_config(path).environment("staging").database
    assert database is not None and (database.lock_timeout_s, database.statement_timeout_s) == (2.5, 30.0)
    path.write_text(MINIMAL + section)
    database = load_config(path).environment("staging").database
    assert database is not None and (database.lock_timeout_s, database.statement_timeout_s) == (3.0, 60.0)

    found = problems(tmp_path, MINIMAL + section + "lock_timeout_s = 0\n")
    assert [(key, message) for _, key, message in found] == [
        ("environments.staging.database.lock_timeout_s", "must be more than 0 and at most 600 s, got 0")
    ]
