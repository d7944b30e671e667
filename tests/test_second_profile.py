"""A second service, end to end: searchd's profile (two independent flags written on/off, its
own log line, a search probe without login, no database) run through the CLI and the
console against its simulation, as the Phase 4 tests run analyticbot's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotenv import dotenv_values

from console.config import load_config
from console.journal import Journal
from console.probes.collect import checked_snapshot
from console.profile import PROFILE_DIR, load_profile
from console.runbook import troubleshooting
from console.simulator.generic_world import ProfileSimulation
from screens.app import RollbackConsole
from tests.engine_support import cli
from tests.screen_text import screen_text

SEARCHD = PROFILE_DIR / "searchd-semantic.toml"
PROFILE = load_profile(SEARCHD)
VALIDATIONS = [v.id for v in PROFILE.validations]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ProfileSimulation]:
    sim = ProfileSimulation(tmp_path / "sim", profile=SEARCHD, environments=("staging", "production"))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def env_flags(sim: ProfileSimulation, env: str) -> dict[str, str | None]:
    values = dotenv_values(sim.host(env).env_file)
    return {f.env: values.get(f.env) for f in PROFILE.flags.flags}


def last_flag_line(sim: ProfileSimulation, env: str) -> dict[str, bool] | None:
    for line in reversed(sim.host(env).log_file.read_text(encoding="utf-8").splitlines()):
        parsed = PROFILE.log.flag_line.parse(line)
        if parsed is not None:
            return parsed
    return None


def test_status_reads_searchd_as_its_profile_says(world: ProfileSimulation) -> None:
    done = cli(world.config_path, "status", "staging", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    (env,) = json.loads(done.stdout)["environments"]
    (host,) = env["hosts"]
    assert host["flags"]["env_file"] == {"semantic": True, "reranker": True}
    assert host["flags"]["process"] == host["flags"]["log"] == {"semantic": True, "reranker": True}
    assert env["recommendation"]["action"] is None and env["recommendation"]["assessed"] is True


def test_a_partial_rollback_then_restore_and_the_whole_one(world: ProfileSimulation) -> None:
    host = world.host("staging")
    before = host.env_file.read_bytes()
    plan = cli(world.config_path, "plan", "reranker-off", "--env", "staging")
    assert plan.returncode == 0, plan.stderr
    assert "ENABLE_RERANKER" in plan.stdout and "ENABLE_ADVANCED" not in plan.stdout

    rolled = cli(world.config_path, "rollback", "reranker-off", "--env", "staging", "--yes", "--reason", "bad ranking")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert env_flags(world, "staging") == {"ENABLE_SEMANTIC_SEARCH": "on", "ENABLE_RERANKER": "off"}
    assert last_flag_line(world, "staging") == {"semantic": True, "reranker": False}
    run = Journal(load_config(world.config_path).journal_path).runs()[-1]
    assert run.outcome == "succeeded" and run.action == "reranker-off"
    (validation,) = [r["data"] for r in run.records if r["type"] == "validation"]
    assert [c["check"] for c in validation["checks"]] == VALIDATIONS and validation["passed"]

    restored = cli(world.config_path, "restore", "--env", "staging", "--run", run.run_id, "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert host.env_file.read_bytes() == before  # byte for byte
    assert last_flag_line(world, "staging") == {"semantic": True, "reranker": True}

    whole = cli(world.config_path, "rollback", "all-off", "--env", "staging", "--yes", "--reason", "latency")
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert env_flags(world, "staging") == {"ENABLE_SEMANTIC_SEARCH": "off", "ENABLE_RERANKER": "off"}
    checked = cli(world.config_path, "check", "staging", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert [c["check"] for c in json.loads(checked.stdout)["checks"]] == VALIDATIONS


def test_a_phase4_action_is_not_searchds(world: ProfileSimulation) -> None:
    refused = cli(world.config_path, "plan", "quick", "--env", "staging")
    assert refused.returncode == 2
    assert "unknown action 'quick'" in refused.stderr and "all-off" in refused.stderr


def test_a_latency_fault_lights_searchds_matrix_and_a_validation_fails(world: ProfileSimulation) -> None:
    world.inject("staging", latency_s=1.8, caused_by="semantic")
    done = cli(world.config_path, "status", "staging", "--json")
    (env,) = json.loads(done.stdout)["environments"]
    assert env["recommendation"]["action"] == "all-off", env["recommendation"]
    # Turning the reranker off leaves semantic retrieval (the cause) on: the latency validation fails.
    rolled = cli(world.config_path, "rollback", "reranker-off", "--env", "staging", "--yes", "--reason", "slow")
    assert rolled.returncode != 0
    assert "Search latency" in rolled.stdout + rolled.stderr


async def test_the_dashboard_shows_searchds_flags_and_words(world: ProfileSimulation) -> None:
    app = RollbackConsole(load_config(world.config_path))
    app.animation_level = "none"
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 60
        while not all(live.snapshot for live in app.live.values()):
            assert time.monotonic() < deadline, "no probe round within 60 s"
            await pilot.pause(0.1)
        await pilot.pause()
        shown = screen_text(app)
        assert "semanti" in shown and "reranke" in shown  # the profile's flags, its columns
        assert "adv" not in shown.split("flags", 1)[1].splitlines()[0]
        assert "No action" in shown or "no action" in shown


def test_a_failed_restart_names_searchds_own_issue(world: ProfileSimulation) -> None:
    world.inject("staging", crash_on_start=True)
    rolled = cli(world.config_path, "rollback", "reranker-off", "--env", "staging", "--yes", "--reason", "ranking")
    assert rolled.returncode != 0
    run = Journal(load_config(world.config_path).journal_path).runs()[-1]
    (failed,) = [r["data"] for r in run.records if r["type"] == "step_failed"][:1]
    wont_start = PROFILE.issue("wont-start")
    assert (failed["issue"], failed["troubleshooting"]) == ("wont-start", wont_start.heading)
    assert wont_start.heading == "Issue 2: searchd down after the rollback"
    assert f"runbook troubleshooting — {wont_start.heading}" in rolled.stdout


def test_searchds_authorization_is_its_profiles(world: ProfileSimulation) -> None:
    reason = ["--reason", "search is down for everyone"]
    wrong = cli(world.config_path, "rollback", "all-off", "--env", "production", "--yes", "--emergency", "P0", *reason)
    assert wrong.returncode == 2 and "--emergency must be SEV1" in wrong.stderr, wrong.stderr
    done = cli(world.config_path, "rollback", "all-off", "--env", "production", "--yes", "--emergency", "sev1", *reason)
    assert done.returncode == 0, done.stdout + done.stderr
    run = Journal(load_config(world.config_path).journal_path).runs()[-1]
    assert run.authorization["mode"] == "emergency" and run.authorization["emergency_level"] == "SEV1"


def assessed(sim: ProfileSimulation, env: str, issue: str) -> troubleshooting.IssueStatus:
    """The issue as the console judges it from a real probe round of ``env``."""
    config = load_config(sim.config_path)
    snapshot = asyncio.run(checked_snapshot(config, env))
    return next(s for s in troubleshooting.assess(config.environment(env), snapshot) if s.issue == issue)


def test_searchds_error_answers_are_judged_from_the_probe(world: ProfileSimulation) -> None:
    """Issue 4 (`applies = ["probe_failed"]`) was "cannot assess" whatever searchd answered."""
    fine = assessed(world, "staging", "error-answers")
    assert fine.applies is False and fine.evidence == "the functional probe's answer is no failure shape"
    world.inject("staging", failure="error-object")
    found = assessed(world, "staging", "error-answers")
    assert found.applies is True, found
    assert "HTTP 200 with an error object" in found.evidence and found.hosts == ("staging-1",)
    assert found.title == PROFILE.issue("error-answers").heading


def test_health_endpoints_that_disagree_are_judged(tmp_path: Path) -> None:
    """A profile's issue for `health_disagrees`: /health says healthy while /health/ready, the
    one the profile trusts, says the database is down."""
    text = (PROFILE_DIR / "analyticbot-phase4.toml").read_text()
    issue = (
        '[[troubleshooting]]\nid = "ready-down"\nnumber = 5\ntitle = "Healthy but not ready"\n'
        'problem = "/health says healthy, /health/ready does not"\napplies = ["health_disagrees"]\n'
        'fix = ["{service_log_command}"]\n\n'
    )
    marker = "# " + "-" * 93 + "\n# ✅ Post-Rollback Checklist"
    assert text.count(marker) == 1
    (tmp_path / "profiles").mkdir()
    (tmp_path / "drills").symlink_to(PROFILE_DIR.parent / "drills")  # the profile's `../drills`
    path = tmp_path / "profiles" / "ready.toml"
    path.write_text(text.replace(marker, issue + marker))
    sim = ProfileSimulation(tmp_path / "sim", profile=path, environments=("staging",))
    sim.start()
    try:
        agree = assessed(sim, "staging", "ready-down")
        assert agree.applies is False and agree.evidence == "the health endpoints agree"
        sim.inject("staging", ready_down=True)
        found = assessed(sim, "staging", "ready-down")
        assert found.applies is True, found
        assert "/health 200" in found.evidence and "/health/ready" in found.evidence
        assert found.title == "Issue 5: Healthy but not ready"
    finally:
        sim.stop()
