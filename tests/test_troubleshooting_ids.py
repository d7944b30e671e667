"""Troubleshooting issues are named by id: a failed step's record says which issue applies,
and nothing is recognised from a step's title."""

from __future__ import annotations

from pathlib import Path

from console.config import load_config
from console.journal import Journal
from console.plans import PLANS
from console.profile import load_profile
from console.runbook import issues, troubleshooting


def failed_run(path: Path, run: str, step: str, title: str, **failure: object) -> Journal:
    journal = Journal(path)
    journal.append("run_started", run=run, env="staging", data={"action": "database", "reason": "t", "plan": {}})
    journal.append("step_started", run=run, env="staging", data={"step": step, "title": title})
    journal.append("step_failed", run=run, env="staging", data={"step": step, "message": "boom", **failure})
    journal.append("run_finished", run=run, env="staging", data={"outcome": "failed", "duration_s": 1.0})
    return journal


def test_the_issue_a_failed_step_names_applies_whatever_the_step_is_called(tmp_path: Path) -> None:
    journal = failed_run(tmp_path / "j.jsonl", "r-1", "copy-table", "Something else", issue="db-rollback-fails")
    issue, failure = troubleshooting.failed_issue(journal.run("r-1"))
    assert issue == "db-rollback-fails" and failure["message"] == "boom"


def test_a_title_that_reads_like_a_database_step_names_no_issue(tmp_path: Path) -> None:
    journal = failed_run(tmp_path / "j.jsonl", "r-2", "note-it", "Check the columns and list what depends on them")
    assert troubleshooting.failed_issue(journal.run("r-2"))[0] is None


def test_a_journal_from_before_steps_named_their_issue_still_finds_the_database_step(tmp_path: Path) -> None:
    journal = failed_run(tmp_path / "j.jsonl", "r-3", "db-rollback", "Keep a copy of the columns, then run …")
    assert troubleshooting.failed_issue(journal.run("r-3"))[0] == troubleshooting.DB_ROLLBACK_FAILED


def test_every_issue_the_code_names_is_one_of_the_profiles() -> None:
    phase4 = load_profile()
    # What the steps name is a fact; the Phase 4 runbook has an issue for each.
    for fact in (issues.STALE_PROCESS, issues.RESTART_FAILED, issues.DB_ROLLBACK_FAILED):
        assert phase4.issue_for(fact) is not None, fact
    # The engine's heading of a failed step's issue is the profile's, through the plan catalogue.
    env = load_config(Path(__file__).resolve().parent.parent / "sample_configs" / "analyticbot.toml").environment(
        "staging"
    )
    wont_start = ("api-wont-start", "Issue 2: API won't start after rollback")
    assert PLANS.troubleshooting("api-wont-start", env) == wont_start  # by id
    assert PLANS.troubleshooting(issues.RESTART_FAILED, env) == wont_start  # by the fact a step names
    assert PLANS.troubleshooting("no-such-issue", env) is None
