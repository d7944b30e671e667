"""The engine's command-line face: `plan` changes nothing; after a rollback, `history`,
`report` and `checklist` tell the story; webhook notifications at start and end, and a
webhook that fails or hangs never holds a rollback back."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.engine_support import (
    MakeSimulation,
    Webhook,
    add_to_config,
    cli,
    journal_of,
    process_flags,
    records,
    run_id_in,
)
from tests.phase4 import ALL_OFF, ALL_ON

WEBHOOK = '[notifications]\nwebhook = { env = "RC_TEST_WEBHOOK" }\ntimeout_s = %s'


def test_plan_shows_every_step_and_changes_nothing(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    env_bytes, env_mtime, pid = host.env_file.read_bytes(), host.env_file.stat().st_mtime_ns, host.pid()

    result = cli(sim.config_path, "plan", "quick", "--env", "staging")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "-ENABLE_ADVANCED_RECOMMENDATIONS=true" in out and "+ENABLE_ADVANCED_RECOMMENDATIONS=false" in out
    assert f"$ {sim.command('staging', 'restart_command')}" in out
    assert "Wait for the new flags to take effect" in out and "Validate (the runbook's checks)" in out
    assert "runbook target: < 1 min" in out
    assert (host.env_file.read_bytes(), host.env_file.stat().st_mtime_ns, host.pid()) == (env_bytes, env_mtime, pid)
    assert journal_of(sim).records() == []


def test_history_report_and_checklist_tell_the_story(make_simulation: MakeSimulation, tmp_path: Path) -> None:
    sim = make_simulation()
    rolled = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", "p95 over 5s")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    run_id = run_id_in(rolled.stdout)

    markdown = cli(sim.config_path, "history", "--markdown").stdout.splitlines()
    assert markdown[0] == "| Date | Environment | Reason | Duration | Outcome |"
    assert markdown[2].startswith("| 20") and "| staging | p95 over 5s |" in markdown[2]
    assert markdown[2].endswith("s | succeeded |")  # duration in seconds, then the outcome
    (entry,) = json.loads(cli(sim.config_path, "history", "--json").stdout)
    assert (entry["run_id"], entry["action"], entry["outcome"]) == (run_id, "quick", "succeeded")
    assert "hash chain intact" in cli(sim.config_path, "history", "--verify").stdout

    report = cli(sim.config_path, "report", run_id)
    assert report.returncode == 0
    for part in ("p95 over 5s", "Edit the env file", "Restart the API", "Health check", "Post-rollback checklist"):
        assert part in report.stdout, part

    checklist = cli(sim.config_path, "checklist", run_id)
    assert checklist.returncode == 1  # dashboards and RCA are a person's to tick
    for item in ("health", "flags_in_logs", "no_errors", "response_time", "data"):
        assert f"[x] {item}" in checklist.stdout, item
    assert "[ ] dashboards" in checklist.stdout and "[ ] incident_report" in checklist.stdout

    written = cli(sim.config_path, "report", run_id, "-o", str(tmp_path / "incident.md"))
    assert written.returncode == 0 and (tmp_path / "incident.md").read_text().startswith("#")
    assert "[x] incident_report" in cli(sim.config_path, "checklist", run_id).stdout


def test_the_no_errors_tick_says_what_was_checked_when_the_last_100_lines_are_not_clean(
    make_simulation: MakeSimulation,
) -> None:
    """The runbook's item reads "No errors in last 100 log lines". After a rollback made for
    errors, those lines still hold the old process's ERROR lines: the console ticks the item
    from the lines written since the rollback, and its text must say so, not the runbook's."""
    sim = make_simulation(environments=("staging",))
    sim.inject("staging", error_rate=1.0)
    cli(sim.config_path, "status", "staging")  # its best-times requests fail: ERROR lines
    sim.inject("staging", error_rate=0.0)
    rolled = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr

    last_100 = sim.host("staging").log_file.read_text().splitlines()[-100:]
    assert any("ERROR" in line for line in last_100), "the runbook's words would be false here"
    listed = cli(sim.config_path, "checklist", run_id_in(rolled.stdout)).stdout
    (line,) = [x for x in listed.splitlines() if " no_errors " in x]
    assert line.lstrip().startswith("[x]"), listed
    assert "since the rollback" in line and "last 100 log lines" not in line, line


def test_the_flags_tick_of_a_partial_rollback_does_not_say_every_flag_is_disabled(
    make_simulation: MakeSimulation,
) -> None:
    """The runbook's item reads "Feature flags confirmed disabled in logs"; a partial rollback
    ticks it too, with Advanced still on in the log."""
    sim = make_simulation(environments=("staging",))
    rolled = cli(sim.config_path, "rollback", "partial-time-weighting", "--env", "staging", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    listed = cli(sim.config_path, "checklist", run_id_in(rolled.stdout)).stdout
    lines = listed.splitlines()
    (line,) = [x for x in lines if " flags_in_logs " in x]
    evidence = lines[lines.index(line) + 1]  # the item's evidence, under it
    assert line.lstrip().startswith("[x]") and "Advanced: True" in evidence, listed
    assert "disabled" not in line and "as this rollback leaves them" in line, line


def test_notifications_are_posted_at_start_and_end(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    add_to_config(sim, WEBHOOK % "2.0")
    with Webhook() as hook:
        result = cli(
            sim.config_path, "rollback", "quick", "--env", "staging", "--yes", env={"RC_TEST_WEBHOOK": hook.url}
        )
        assert result.returncode == 0, result.stdout + result.stderr
        texts = hook.texts()
    run_id = run_id_in(result.stdout)
    assert len(texts) == 2
    assert "Rollback started" in texts[0] and "staging" in texts[0] and run_id in texts[0]
    assert "Rollback finished" in texts[1] and "succeeded" in texts[1]
    assert all(p["json"]["blocks"] for p in hook.posts)  # Slack-compatible layout
    run = journal_of(sim).run(run_id)
    assert len(records(run, "notified")) == 2 and records(run, "notify_failed") == []
    assert "[x] alert_notified" in cli(sim.config_path, "checklist", run_id).stdout


def test_a_failing_or_hanging_webhook_never_blocks_the_rollback(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    add_to_config(sim, WEBHOOK % "0.5")
    host = sim.host("staging")
    with Webhook(delay_s=10) as hanging:
        start = time.monotonic()
        result = cli(
            sim.config_path, "rollback", "quick", "--env", "staging", "--yes", env={"RC_TEST_WEBHOOK": hanging.url}
        )
        elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < 8  # two notifications give up after 0.5 s each; the webhook would take 10 s
    assert process_flags(host) == ALL_OFF
    run_id = run_id_in(result.stdout)
    failed = records(journal_of(sim).run(run_id), "notify_failed")
    assert len(failed) == 2 and all("timeout" in f["data"]["error"] for f in failed)
    assert "secrettoken" not in json.dumps(failed)
    checklist = cli(sim.config_path, "checklist", run_id).stdout
    assert "[ ] alert_notified" in checklist and "webhook failed" in checklist

    # Nobody listening at all: the restore goes through the same way.
    with Webhook() as gone:
        url = gone.url
    restored = cli(sim.config_path, "restore", "--env", "staging", "--yes", env={"RC_TEST_WEBHOOK": url})
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert process_flags(host) == ALL_ON
    failed = records(journal_of(sim).run(run_id_in(restored.stdout)), "notify_failed")
    assert len(failed) == 2 and all("ConnectError" in f["data"]["error"] for f in failed)
