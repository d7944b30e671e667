"""Flag rollbacks end to end against the simulator: quick, partial A and B, restore, the
env file's bytes, a stale environment after restart, a service that will not start.

The engine is driven in-process with a scripted operator (as the console's wizard drives
it) or through the CLI as a subprocess; what is checked is what an operator would see:
the env file, the running process's environment, the log, the API's answers, the journal.
"""

from __future__ import annotations

import os
import stat

from console.engine.runner import Decision, Failure
from tests.engine_support import (
    MakeSimulation,
    Operator,
    backups,
    best_times,
    cli,
    env_file_flags,
    journal_of,
    log_flags,
    process_flags,
    records,
    run_engine,
    run_id_in,
    set_flags_and_restart,
)
from tests.phase4 import ALL_OFF, ALL_ON, flags


async def test_quick_rollback_turns_every_flag_off_and_the_api_goes_legacy(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    assert best_times(sim, host)["data"]["best_day_hour_combinations"]  # advanced before

    outcome = await run_engine(sim.config_path, "quick", reason="p95 over 5s")

    assert outcome.result.outcome == "succeeded", outcome.result.message
    assert env_file_flags(host) == ALL_OFF
    assert process_flags(host) == ALL_OFF
    assert log_flags(host) == ALL_OFF
    assert "Using SIMPLE query (legacy mode)" in host.log_file.read_text().splitlines()[-1]
    data = best_times(sim, host)["data"]
    assert data["best_day_hour_combinations"] == [] and data["content_type_summary"] is None
    assert data["total_posts_analyzed"] > 0

    run = journal_of(sim).run(outcome.run_id)
    assert run.outcome == "succeeded" and run.reason == "p95 over 5s"
    (validation,) = records(run, "validation")
    assert [c["passed"] for c in validation["data"]["checks"]] == [True] * 5
    (effect,) = records(run, "step_finished", "effect")
    assert 0 < effect["data"]["facts"]["time_to_effect_s"] < 30  # measured, as the issue asks
    assert "Advanced: False" in effect["data"]["facts"]["log_line"]


async def test_partial_time_weighting_keeps_advanced_mode_on(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")

    outcome = await run_engine(sim.config_path, "partial-time-weighting")

    assert outcome.result.outcome == "succeeded", outcome.result.message
    want = flags(True, False, True)
    assert env_file_flags(host) == want and process_flags(host) == want
    flag_lines = [line for line in host.log_file.read_text().splitlines() if "Feature flags" in line]
    assert "Time-weighting: False" in flag_lines[-1] and "Advanced: True" in flag_lines[-1]
    data = best_times(sim, host)["data"]
    assert data["best_day_hour_combinations"] and data["content_type_recommendations"]  # still advanced
    assert "Using ADVANCED query with new features" in host.log_file.read_text().splitlines()[-1]


async def test_partial_content_type_fails_validation_then_undo_then_quick(make_simulation: MakeSimulation) -> None:
    """Scenario B: master on, content-type off makes the advanced SQL fail behind HTTP 200."""
    sim = make_simulation()
    host = sim.host("staging")

    def look(failure: Failure) -> Decision:
        assert failure.step.id == "validate"
        message = str(failure.hosts["*"])
        assert "HTTP 200 with status: failed" in message and "content_type_stats" in message  # the profile's words
        # Meanwhile the service really runs scenario B.
        assert process_flags(host) == flags(True, True, False)
        return Decision("undo", "scenario B breaks the advanced query")

    operator = Operator([look])
    outcome = await run_engine(sim.config_path, "partial-content-type", decide=operator)

    assert len(operator.seen) == 1
    assert outcome.result.outcome == "undone", outcome.result.message
    assert env_file_flags(host) == ALL_ON and process_flags(host) == ALL_ON and log_flags(host) == ALL_ON
    run = journal_of(sim).run(outcome.run_id)
    assert run.outcome == "undone"
    assert [r["data"]["decision"] for r in records(run, "decision")] == ["undo"]

    after = await run_engine(sim.config_path, "quick")
    assert after.result.outcome == "succeeded", after.result.message
    assert process_flags(host) == ALL_OFF and log_flags(host) == ALL_OFF


async def test_restore_puts_the_flags_back_exactly_as_they_were(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    before = flags(True, False, True)  # not simply "all on"
    set_flags_and_restart(sim, host, before)
    env_bytes = host.env_file.read_bytes()

    rolled = await run_engine(sim.config_path, "quick")
    assert rolled.result.outcome == "succeeded" and process_flags(host) == ALL_OFF

    restored = await run_engine(sim.config_path, "restore")

    assert restored.result.outcome == "succeeded", restored.result.message
    assert env_file_flags(host) == before and process_flags(host) == before and log_flags(host) == before
    assert host.env_file.read_bytes() == env_bytes
    run = journal_of(sim).run(restored.run_id)
    assert run.action == "restore" and rolled.run_id in run.reason


async def test_env_file_keeps_every_byte_but_the_flag_values_and_leaves_a_backup(
    make_simulation: MakeSimulation,
) -> None:
    """An odd but valid env file: CRLF, `export`, quotes with a comment, a duplicate key,
    mixed case, no final newline. Only the flag values may change, through the CLI."""
    sim = make_simulation()
    host = sim.host("staging")
    text = host.env_file.read_text()
    text = text.replace("ENABLE_ADVANCED_RECOMMENDATIONS=true", "export ENABLE_ADVANCED_RECOMMENDATIONS=True")
    text = text.replace("ENABLE_TIME_WEIGHTING=true", 'ENABLE_TIME_WEIGHTING="true"  # sub-flag, see runbook')
    text = text.replace("WORKERS=1", "WORKERS=1\nENABLE_ADVANCED_RECOMMENDATIONS=true   # an old duplicate")
    odd = text.replace("\n", "\r\n").rstrip("\r\n").encode()
    host.env_file.write_bytes(odd)
    os.chmod(host.env_file, 0o640)
    assert sim.run("staging", "restart_command").returncode == 0  # the service reads the odd file fine
    assert process_flags(host) == ALL_ON

    result = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")

    assert result.returncode == 0, result.stdout + result.stderr
    expected = (
        odd.replace(b"export ENABLE_ADVANCED_RECOMMENDATIONS=True", b"export ENABLE_ADVANCED_RECOMMENDATIONS=false")
        .replace(b'ENABLE_TIME_WEIGHTING="true"', b'ENABLE_TIME_WEIGHTING="false"')
        .replace(b"ENABLE_ADVANCED_RECOMMENDATIONS=true   #", b"ENABLE_ADVANCED_RECOMMENDATIONS=false   #")
        .replace(b"ENABLE_CONTENT_TYPE_ANALYSIS=true", b"ENABLE_CONTENT_TYPE_ANALYSIS=false")
    )
    assert expected != odd
    assert host.env_file.read_bytes() == expected
    assert stat.S_IMODE(os.stat(host.env_file).st_mode) == 0o640
    (backup,) = backups(host)
    assert backup.read_bytes() == odd
    assert run_id_in(result.stdout) in backup.name
    assert process_flags(host) == ALL_OFF


async def test_stale_environment_after_restart_is_caught_and_fixed_by_a_fresh_start(
    make_simulation: MakeSimulation,
) -> None:
    """Troubleshooting 1: the restart reuses the old environment (docker-compose restart)."""
    sim = make_simulation()
    host = sim.host("staging")
    sim.inject("staging", stale_restart=True)

    def look(failure: Failure) -> Decision:
        assert failure.step.id == "effect"
        problem = failure.hosts["staging-1"]
        assert "stale environment" in str(problem) and "still has the old flags" in str(problem)
        assert problem.troubleshooting == "Issue 1: Environment changes not taking effect"
        assert problem.remedy is not None
        assert problem.remedy.commands == (sim.command("staging", "force_restart_command"),)
        assert env_file_flags(host) == ALL_OFF and process_flags(host) == ALL_ON  # what the operator sees
        return Decision("fix")

    operator = Operator([look])
    outcome = await run_engine(sim.config_path, "quick", decide=operator)

    assert len(operator.seen) == 1
    assert outcome.result.outcome == "succeeded", outcome.result.message
    assert process_flags(host) == ALL_OFF and log_flags(host) == ALL_OFF
    run = journal_of(sim).run(outcome.run_id)
    (failed,) = records(run, "step_failed", "effect")
    assert failed["data"]["remedy"]["commands"] == [sim.command("staging", "force_restart_command")]
    assert [r["data"]["decision"] for r in records(run, "decision")] == ["fix"]


async def test_service_that_will_not_start_shows_its_log_and_undo_puts_the_flags_back(
    make_simulation: MakeSimulation,
) -> None:
    """Troubleshooting 2: the API crashes on start after the edit."""
    sim = make_simulation()
    host = sim.host("staging")
    sim.inject("staging", crash_on_start=True)

    def look(failure: Failure) -> Decision:
        assert failure.step.id == "restart"
        problem = failure.hosts["staging-1"]
        assert problem.troubleshooting == "Issue 2: API won't start after rollback"
        assert "--- service log ---" in problem.output
        assert "Application startup failed" in problem.output
        assert host.pid() is None  # it really is down
        sim.clear("staging")  # the cause was the change: undo it
        return Decision("undo", "the API will not start with the new env file")

    operator = Operator([look])
    outcome = await run_engine(sim.config_path, "quick", decide=operator)

    assert len(operator.seen) == 1
    assert outcome.result.outcome == "undone", outcome.result.message
    assert env_file_flags(host) == ALL_ON and process_flags(host) == ALL_ON and log_flags(host) == ALL_ON
    run = journal_of(sim).run(outcome.run_id)
    (failed,) = records(run, "step_failed", "restart")
    assert "Application startup failed" in failed["data"]["output"]
    assert run.outcome == "undone"
