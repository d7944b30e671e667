"""The database rollback of migration 004 against a real PostgreSQL: flags off first,
dependents listed (migration 005's index too), a kept copy, one transaction, a failing
script that changes nothing and the runbook's manual SQL as the fix, and a restore that
brings back every column, value, index and migration record."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from console.engine.runner import Decision, Failure
from console.engine.session import RunRefused
from console.plans.database import manual_sql
from console.simulator.database import DEPENDENT_INDEX
from console.simulator.repo import PHASE4_MESSAGE, git
from tests.engine_support import (
    MakeSimulation,
    Operator,
    cli,
    db_state,
    environment,
    journal_of,
    log_flags,
    process_flags,
    records,
    run_engine,
)
from tests.phase4 import ALL_OFF, ALL_ON

pytestmark = pytest.mark.postgres

MIGRATION_004_INDEXES = ("idx_posts_content_type", "idx_posts_date_content")


async def test_database_rollback_then_restore_loses_nothing(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    dsn = sim.dsn("staging") or ""
    before = await db_state(dsn)
    assert {"has_video", "has_media"} <= set(before["columns"])
    assert {*MIGRATION_004_INDEXES, DEPENDENT_INDEX} <= set(before["indexes"])
    assert any(v for _, v, _ in before["content"]) and not all(v for _, v, _ in before["content"])

    # Flags on: refused before the run starts, with the reason; nothing touched, no run recorded.
    with pytest.raises(RunRefused) as refused:
        await run_engine(sim.config_path, "database", decide=Operator())
    assert "the flags must be off before the columns go" in str(refused.value)
    assert "Run the quick rollback first" in str(refused.value)
    assert await db_state(dsn) == before
    assert journal_of(sim).runs() == []

    quick = await run_engine(sim.config_path, "quick")
    assert quick.result.outcome == "succeeded"
    rolled = await run_engine(sim.config_path, "database", reason="content-type data corrupt")

    assert rolled.result.outcome == "succeeded", rolled.result.message
    after = await db_state(dsn)
    assert "has_video" not in after["columns"] and "has_media" not in after["columns"]
    assert not {*MIGRATION_004_INDEXES, DEPENDENT_INDEX} & set(after["indexes"])
    assert after["rows"] == before["rows"]  # the posts themselves stay
    assert "004" not in after["migrations"]
    run = journal_of(sim).run(rolled.run_id)
    (inspected,) = records(run, "step_finished", "db-inspect")
    assert f"index {DEPENDENT_INDEX}" in inspected["data"]["facts"]["extra_dependents"]  # 005's index, listed
    preview = next(s["preview"] for s in run.plan["steps"] if s["id"] == "db-inspect")
    assert "WARNING: objects beyond migration 004 depend on these columns" in preview and DEPENDENT_INDEX in preview
    (kept_record,) = records(run, "step_finished", "db-rollback")
    kept_path = Path(kept_record["data"]["facts"]["kept_path"])
    assert stat.S_IMODE(os.stat(kept_path).st_mode) == 0o600
    kept = json.loads(kept_path.read_bytes())
    assert [tuple(r) for r in kept["rows"]] == before["content"]
    assert {i["name"] for i in kept["indexes"]} == {*MIGRATION_004_INDEXES, DEPENDENT_INDEX}
    # The service keeps working in legacy mode without the columns.
    assert log_flags(sim.host("staging")) == ALL_OFF

    restored = cli(sim.config_path, "restore", "--env", "staging", "--yes")

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert rolled.run_id in restored.stdout
    assert await db_state(dsn) == before  # columns, every value, every index definition, migrations

    # The next restore puts back the quick rollback's flags, not the database again.
    flags = cli(sim.config_path, "restore", "--env", "staging", "--yes")
    assert flags.returncode == 0, flags.stdout + flags.stderr
    assert quick.run_id in flags.stdout
    assert process_flags(sim.host("staging")) == ALL_ON
    assert await db_state(dsn) == before


async def test_failing_sql_changes_nothing_and_the_manual_sql_fix_completes(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    dsn = sim.dsn("staging") or ""
    assert (await run_engine(sim.config_path, "quick")).result.outcome == "succeeded"
    sim.inject("staging", rollback_script_fails=True)
    before = await db_state(dsn)

    seen_state: list[dict] = []

    def look(failure: Failure) -> Decision:
        assert failure.step.id == "db-rollback"
        problem = failure.hosts["*"]
        assert "the rollback script failed" in str(problem) and "Nothing was changed" in str(problem)
        assert problem.troubleshooting == "Issue 3: Database rollback fails"
        assert problem.remedy is not None
        assert "\n".join(problem.remedy.commands) + "\n" == manual_sql(environment(sim))
        seen_state.append(asyncio.run(db_state(dsn)))  # schema AND data as they were (own thread)
        return Decision("fix")

    operator = Operator([look])
    outcome = await run_engine(sim.config_path, "database", decide=operator)

    assert seen_state == [before]
    assert outcome.result.outcome == "succeeded", outcome.result.message
    after = await db_state(dsn)
    assert "has_video" not in after["columns"] and not {*MIGRATION_004_INDEXES, DEPENDENT_INDEX} & set(after["indexes"])
    run = journal_of(sim).run(outcome.run_id)
    (failed,) = records(run, "step_failed", "db-rollback")
    assert failed["data"]["remedy"]["commands"] == manual_sql(environment(sim)).splitlines()
    (done,) = records(run, "step_finished", "db-rollback")
    assert done["data"]["facts"]["manual"] is True


async def test_full_rollback_then_restore_brings_code_flags_and_data_back(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    host = sim.host("staging")
    dsn = sim.dsn("staging") or ""
    before = await db_state(dsn)

    full = await run_engine(sim.config_path, "full")

    assert full.result.outcome == "succeeded", full.result.message
    assert git(host.repo, "log", "-1", "--format=%s").strip() == f'Revert "{PHASE4_MESSAGE}"'
    assert process_flags(host) == ALL_OFF and log_flags(host) == ALL_OFF
    assert "has_video" not in (await db_state(dsn))["columns"]

    restore = await run_engine(sim.config_path, "restore")

    assert restore.result.outcome == "succeeded", restore.result.message
    assert (host.repo / "app" / "config" / "feature_flags.py").exists()
    assert process_flags(host) == ALL_ON and log_flags(host) == ALL_ON
    assert await db_state(dsn) == before
    run = journal_of(sim).run(restore.run_id)
    # Code and flags both come back with ONE restart, after both are in place.
    assert len(records(run, "step_started", "restart")) == 1
