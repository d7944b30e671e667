"""`status` and `check` as an operator runs them, against the real simulator: true facts that change.

Every command is a real subprocess (``python -m console``); every fact it reports is checked
against what the simulated host really has (env file, /proc, log, HTTP, PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.simulator import database
from console.simulator.dataset import POST_COUNT
from console.simulator.world import Simulation
from tests.fixtures_pg import requires_database
from tests.phase4 import ADVANCED, PROFILE, TIME_WEIGHTING
from tests.status_support import (
    CliResult,
    checks_of,
    environment_of,
    restart,
    run_cli,
    run_cli_many,
    set_flags,
    sim_secrets,
    toml_str,
)

# pytest-xdist: the whole file on one worker, so its module-scoped fixture is set up once
pytestmark = pytest.mark.xdist_group("test_status_cli")

MakeSimulation = Callable[..., Simulation]
ALL_TRUE = {"advanced": True, "time_weighting": True, "content_type": True}


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def failed_checks(doc: dict) -> list[str]:
    return [c["check"] for c in doc["checks"] if not c["passed"]]


# --- the simulator as it starts -----------------------------------------------------------------


def test_status_json_reports_both_environments_as_they_really_are(simulation: Simulation) -> None:
    secrets = sim_secrets(simulation)
    status, text, *checks = run_cli_many(
        simulation.config_path,
        ["status", "--json"],
        ["status"],
        ["check", "staging", "--json"],
        ["check", "production", "--json"],
        secrets=secrets,
    )
    assert status.code == 0 and status.stderr == "", status
    doc = status.json  # one JSON document on stdout, nothing else
    assert [e["environment"] for e in doc["environments"]] == ["staging", "production"]
    for env in doc["environments"]:
        sim_host = simulation.host(env["environment"])
        (host,) = env["hosts"]
        assert host["reachable"] and host["where"] == "local"
        flags = host["flags"]
        assert flags["env_file"] == flags["process"] == flags["log"] == ALL_TRUE
        assert flags["drift"] == [] and flags["stale_process"] is False
        assert flags["pid"] == sim_host.pid() == host["memory"]["pid"]
        assert [line["text"] for line in flags["env_file_lines"]] == [
            "ENABLE_ADVANCED_RECOMMENDATIONS=true",
            "ENABLE_TIME_WEIGHTING=true",
            "ENABLE_CONTENT_TYPE_ANALYSIS=true",
        ]
        assert "Feature flags - Advanced: True" in flags["log_line"]
        health = host["health"]
        live, ready = health["endpoints"]["liveness"], health["endpoints"]["readiness"]
        assert (live["endpoint"], live["status"], live["said"], health["version"]) == (
            "/health",
            200,
            "healthy",
            "7.5.0",
        )
        assert (ready["endpoint"], ready["ok"], health["truth"]) == ("/health/ready", True, "readiness")
        assert health["healthy"] is True and health["verdict"] is True and health["disagree"] is False
        recs = host["probe"]
        assert (recs["title"], recs["request"]) == ("Test recommendations", "best-times")
        assert recs["ok"] and recs["modes"] == ["advanced"] and recs["count"] == POST_COUNT
        assert 0 < recs["latency_s"] < 2
        # The RSS is the service process's own, as /proc says right now.
        assert abs(host["memory"]["rss_mb"] - proc_rss_mb(sim_host.pid() or 0)) < 20
        assert host["logs"]["requests"] >= 1 and host["logs"]["error_lines"] == 0
        assert env["signals"]["missing_data"] is False and env["signals"]["unhealthy"] is False
        assert env["recommendation"]["action"] is None
        assert [f["symptom"] for f in env["recommendation"]["findings"]] == [r.symptom for r in PROFILE.matrix]
    # Production logs JSON lines, staging plain ones: the flag line is found in both.
    assert environment_of(doc, "production")["hosts"][0]["flags"]["log_line"].startswith("{")
    assert environment_of(doc, "staging")["hosts"][0]["flags"]["log_line"].startswith("[INFO]")

    assert text.code == 0
    assert "staging (staging) — 1 host" in text.stdout and "production (production) — 1 host" in text.stdout
    assert "recommended: No action" in text.stdout and "advanced mode · 629 posts" in text.stdout
    for check in checks:
        assert check.code == 0, check
        assert check.json["passed"] is True and failed_checks(check.json) == []
        assert list(checks_of(check.json)) == ["health", "flags", "recommendations", "errors", "response_time"]


def test_status_json_reports_migration_004_and_its_dependents(simulation: Simulation) -> None:
    requires_database(simulation)
    status = run_cli(simulation.config_path, "status", "production", "--json", secrets=sim_secrets(simulation))
    db = environment_of(status.json, "production")["database"]
    assert db["error"] is None
    assert db["columns"] == {"has_video": True, "has_media": True} and db["migration_004_applied"] is True
    assert db["indexes"] == {"idx_posts_content_type": True, "idx_posts_date_content": True}
    # Dropping the columns would silently take migration 005's index with them: it is named.
    assert db["extra_dependents"] == [f"index {database.DEPENDENT_INDEX}"]
    assert set(db["dependents"]) == {
        "index idx_posts_content_type",
        "index idx_posts_date_content",
        f"index {database.DEPENDENT_INDEX}",
    }
    assert db["rows"] == POST_COUNT
    text = run_cli(simulation.config_path, "status", "production")
    assert f"would also drop: index {database.DEPENDENT_INDEX}" in text.stdout


# --- flags: env file, process, log -------------------------------------------------------------


def test_a_flag_flip_shows_as_drift_until_the_restart_then_in_all_three_sources(
    make_simulation: MakeSimulation,
) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    secrets = sim_secrets(sim)
    old_pid = host.pid()

    # The operator edits the env file but has not restarted: the process still runs the old flags.
    set_flags(host, time_weighting=False)
    status, text, check = run_cli_many(
        sim.config_path, ["status", "--json"], ["status"], ["check", "staging", "--json"], secrets=secrets
    )
    flags = environment_of(status.json, "staging")["hosts"][0]["flags"]
    assert flags["env_file"] == {**ALL_TRUE, "time_weighting": False}
    assert flags["process"] == flags["log"] == ALL_TRUE
    assert flags["drift"] == [{"flag": TIME_WEIGHTING, "env_file": False, "process": True, "log": True}]
    assert flags["stale_process"] is True and flags["pid"] == old_pid
    assert "DRIFT: ENABLE_TIME_WEIGHTING: env file false, process true, log true" in text.stdout
    assert "restart it so it re-reads the env file (runbook troubleshooting 1)" in text.stdout
    assert check.code == 1 and failed_checks(check.json) == ["flags"]
    assert "process has Advanced: True, Time-weighting: True" in checks_of(check.json)["flags"]["detail"]

    # Restarted with the config's own restart command: every source agrees, no drift.
    restart(sim, host)
    status, check = run_cli_many(sim.config_path, ["status", "--json"], ["check", "staging", "--json"], secrets=secrets)
    h = environment_of(status.json, "staging")["hosts"][0]
    want = {**ALL_TRUE, "time_weighting": False}
    assert h["flags"]["env_file"] == h["flags"]["process"] == h["flags"]["log"] == want
    assert h["flags"]["drift"] == [] and h["flags"]["stale_process"] is False
    assert h["flags"]["pid"] == host.pid() != old_pid
    assert "Time-weighting: False" in h["flags"]["log_line"]
    assert h["probe"]["modes"] == ["advanced"]  # the master flag is still on
    assert check.code == 0, check

    # The quick rollback's end state: master off, restarted → legacy mode, as the runbook expects.
    set_flags(host, advanced=False)
    restart(sim, host)
    status, check = run_cli_many(sim.config_path, ["status", "--json"], ["check", "staging", "--json"], secrets=secrets)
    h = environment_of(status.json, "staging")["hosts"][0]
    assert h["flags"]["process"]["advanced"] is False and h["flags"]["log"]["advanced"] is False
    assert h["probe"]["modes"] == ["legacy"] and h["probe"]["count"] == POST_COUNT
    assert check.code == 0 and checks_of(check.json)["recommendations"]["detail"] == f"{POST_COUNT} posts, legacy mode"
    assert host.env_file.read_text().count(f"{ADVANCED}=false") == 1


# --- faults: what the decision matrix makes of them --------------------------------------------
#
# One simulation, one environment per fault, probed by one concurrent round of commands: the
# 6 s latency is waited out once. Each test reads its own environment's results.

FAULTED = ("production", "staging", "ready", "memory", "stale", "crash")


@dataclass(frozen=True)
class Faulted:
    sim: Simulation
    config: Path  # the simulation's config with the memory row of the matrix at 150 MB
    before: dict[str, Any]  # status --json before any fault
    status: dict[str, Any]  # status --json with the faults
    text: str  # status (text) with the faults
    checks: dict[str, CliResult]  # check ENV --json per environment

    def env(self, name: str) -> dict[str, Any]:
        return environment_of(self.status, name)


def low_memory_matrix() -> str:
    """The runbook's matrix with the memory row at 150 MB instead of 2 GB (a test-sized service)."""
    rows = []
    for r in PROFILE.matrix:
        above = 150.0 if r.signal == "memory_mb" else r.above
        rows += ["[[decision_matrix]]", f"symptom = {toml_str(r.symptom)}", f'severity = "{r.severity}"']
        rows += [f'action = "{r.action}"', f'timeline = "{r.timeline}"']
        rows += [f'signal = "{r.signal}"'] if r.signal else []
        rows += [f"above = {above}"] if above is not None else []
        rows += [""]
    return "\n".join(rows)


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulted]:
    sim = Simulation(tmp_path_factory.mktemp("faulted"), environments=FAULTED, database=False)
    try:
        sim.start()
        secrets = sim_secrets(sim)
        config = sim.directory / "low-memory.toml"
        config.write_text(sim.config_path.read_text() + "\n" + low_memory_matrix())
        before = run_cli(config, "status", "--json", secrets=secrets).json

        # A restart that keeps the old environment (`docker-compose restart` does not re-read env_file).
        sim.inject("stale", stale_restart=True)
        set_flags(sim.host("stale"), advanced=False)
        restart(sim, sim.host("stale"))
        # A service that will not start again.
        sim.inject("crash", crash_on_start=True)
        assert sim.run("crash", "restart_command").returncode != 0
        sim.inject("production", latency_s=6)
        sim.inject("staging", error_rate=1.0)
        sim.inject("ready", ready_down=True)
        sim.inject("memory", memory_mb=260)
        pid = sim.host("memory").pid() or 0
        deadline = time.monotonic() + 15  # the service grows its ballast over a few ticks
        while proc_rss_mb(pid) < 240 and time.monotonic() < deadline:
            time.sleep(0.1)

        status, text, *checks = run_cli_many(
            config,
            ["status", "--json"],
            ["status"],
            *(["check", name, "--json"] for name in FAULTED),
            secrets=secrets,
        )
        # The crashed service cannot be assessed: status says so, with exit 1.
        assert status.code == 1 and status.stderr == "", status
        recs = {e["environment"]: e["recommendation"] for e in status.json["environments"]}
        unassessed = {name for name, r in recs.items() if not r["assessed"]}
        # (staging's best-times answers alternate HTTP 500 and status "failed": after a 500 the
        # data cannot be judged, and that is said too, next to the lit error-rate row)
        assert "crash" in unassessed and unassessed <= {"crash", "staging"}, {n: r["problems"] for n, r in recs.items()}
        # (its log's "Application startup failed" ERROR lights the error-rate row as well)
        crash = recs["crash"]["problems"][0]
        assert crash.startswith("crash-1: GET /health: cannot connect to 127.0.0.1:"), crash
        assert crash.endswith("(connection refused)"), crash
        assert "also CANNOT ASSESS" in text.stdout.split("crash (")[1]
        # Not ready is known, not unknown: named as what to investigate, never "no action".
        assert recs["ready"]["title"].startswith("Investigate: ready-1: /health/ready: not ready (database: unhealthy")
        yield Faulted(sim, config, before, status.json, text.stdout, dict(zip(FAULTED, checks, strict=True)))
    finally:
        sim.stop()


def test_latency_fault_recommends_the_quick_rollback(faulted: Faulted) -> None:
    before = environment_of(faulted.before, "production")
    assert before["signals"]["response_time_s"] < 2 and before["recommendation"]["action"] is None
    env = faulted.env("production")
    assert env["signals"]["response_time_s"] > 5
    rec = env["recommendation"]
    assert (rec["action"], rec["severity"], rec["timeline"]) == ("quick", "HIGH", "< 1 min")
    assert rec["symptom"] == "Response time > 5s" and rec["title"] == "Quick rollback (disable all)"
    assert "recommended: Quick rollback (disable all) — HIGH, < 1 min: Response time > 5s" in faulted.text
    check = faulted.checks["production"]
    assert check.code == 1 and failed_checks(check.json) == ["response_time"]
    assert "(≥ 2s)" in checks_of(check.json)["response_time"]["detail"]


def test_error_rate_fault_shows_errors_and_fails_the_error_check(faulted: Faulted) -> None:
    assert environment_of(faulted.before, "staging")["hosts"][0]["logs"]["error_lines"] == 0
    env = faulted.env("staging")
    logs = env["hosts"][0]["logs"]
    assert logs["error_lines"] >= 1 and logs["error_rate"] > 0.05
    assert logs["error_samples"] and all("ERROR" in line for line in logs["error_samples"])
    assert env["recommendation"]["action"] == "quick" and env["recommendation"]["symptom"] == "Error rate > 5%"
    assert "recommended: Quick rollback (disable all) — HIGH, < 1 min: Error rate > 5%" in faulted.text
    check = faulted.checks["staging"]
    assert check.code == 1 and "errors" in failed_checks(check.json)
    assert "ERROR line(s) in the last" in checks_of(check.json)["errors"]["detail"]


def test_memory_fault_grows_rss_and_a_lower_threshold_recommends_partial_rollback(faulted: Faulted) -> None:
    before = environment_of(faulted.before, "memory")
    assert before["signals"]["memory_mb"] < 150 and before["recommendation"]["action"] is None
    env = faulted.env("memory")
    assert env["signals"]["memory_mb"] >= 240
    assert env["hosts"][0]["memory"]["pid"] == faulted.sim.host("memory").pid()
    rec = env["recommendation"]
    assert (rec["action"], rec["severity"], rec["timeline"]) == ("partial-time-weighting", "MEDIUM", "< 2 min")
    assert "recommended: Partial rollback (disable time-weighting) — MEDIUM, < 2 min" in faulted.text
    assert faulted.checks["memory"].code == 0  # memory is not one of the runbook's five checks


def test_ready_down_disagrees_with_health_and_fails_the_health_check(faulted: Faulted) -> None:
    health = faulted.env("ready")["hosts"][0]["health"]
    live, ready = health["endpoints"]["liveness"], health["endpoints"]["readiness"]
    assert live["ok"] is True and live["said"] == "healthy"  # /health is hard-coded
    assert ready["ok"] is False and ready["status"] == 503 and ready["error"] is None and ready["truthful"] is True
    assert health["disagree"] is True and health["verdict"] is False and health["healthy"] is False
    assert ready["components"]["database"].startswith("unhealthy")
    # The profile's words: which endpoint tells the truth, and its note on the other.
    assert "/health/ready 503 NOT OK  ← disagree\n" in faulted.text
    assert '/health is hard-coded "healthy", even with the database down; /health/ready tells the truth' in faulted.text
    check = faulted.checks["ready"]
    assert check.code == 1 and failed_checks(check.json) == ["health"]
    detail = checks_of(check.json)["health"]["detail"]
    assert "/health/ready 503 NOT OK: database: unhealthy" in detail and '/health is hard-coded "healthy"' in detail


def test_a_restart_that_keeps_the_stale_environment_is_caught(faulted: Faulted) -> None:
    """The runbook's troubleshooting issue 1: the restart "worked" but the process kept the old flags."""
    host = faulted.sim.host("stale")
    flags = faulted.env("stale")["hosts"][0]["flags"]
    assert flags["pid"] == host.pid() != environment_of(faulted.before, "stale")["hosts"][0]["flags"]["pid"]
    assert flags["stale_process"] is True
    assert flags["env_file"]["advanced"] is False and flags["process"]["advanced"] is True
    assert flags["log"]["advanced"] is True  # the log agrees with the process, not with the file
    assert "DRIFT: ENABLE_ADVANCED_RECOMMENDATIONS: env file false, process true, log true" in faulted.text
    check = faulted.checks["stale"]
    assert check.code == 1 and failed_checks(check.json) == ["flags", "recommendations"]  # still advanced
    restart(faulted.sim, host, "force_restart_command")  # the runbook's kill -9 and fresh start
    after = run_cli(faulted.config, "status", "stale", "--json").json
    flags = environment_of(after, "stale")["hosts"][0]["flags"]
    assert flags["stale_process"] is False and flags["process"]["advanced"] is False is flags["log"]["advanced"]


def test_a_service_that_crashed_on_start_is_reported_not_running(faulted: Faulted) -> None:
    """The runbook's troubleshooting issue 2: the API will not start after the rollback."""
    env = faulted.env("crash")
    h = env["hosts"][0]
    assert h["reachable"] is True  # the host answers; its service does not
    assert h["flags"]["errors"]["process"].startswith("local: service not running (pid command: ")
    assert h["flags"]["env_file"] is not None and h["memory"]["rss_mb"] is None
    assert h["health"]["endpoints"]["liveness"]["error"].startswith("GET /health: cannot connect")
    assert h["probe"]["login_error"].startswith("POST /auth/login: cannot connect")
    assert env["signals"]["unhealthy"] is True
    check = faulted.checks["crash"]
    assert check.code == 1 and {"health", "recommendations", "response_time"} <= set(failed_checks(check.json))


@pytest.mark.postgres
def test_scenario_b_is_missing_data_even_with_http_200(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    host = sim.host("staging")
    set_flags(host, content_type=False)  # master on, content-type off: the advanced SQL fails
    restart(sim, host)
    status, check = run_cli_many(
        sim.config_path, ["status", "--json"], ["check", "staging", "--json"], secrets=sim_secrets(sim)
    )
    env = environment_of(status.json, "staging")
    recs = env["hosts"][0]["probe"]
    assert recs["status"] == 200 and recs["failed"] is True and recs["ok"] is False
    assert recs["kind"] == "failed" and recs["failure"] == "status-failed"
    assert "content_type_stats" in recs["message"]
    assert env["signals"]["missing_data"] is True
    missing = [f for f in env["recommendation"]["findings"] if f["symptom"] == "Missing data in response"]
    assert missing[0]["lit"] is True
    assert check.code == 1 and "recommendations" in failed_checks(check.json)
    # The profile's title of the failure shape, then what the service said.
    assert checks_of(check.json)["recommendations"]["detail"].startswith("HTTP 200 with status: failed: ")
