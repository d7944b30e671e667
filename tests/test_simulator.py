"""The simulated analyticbot service, against its real processes over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from console.config import load_config
from console.envfile import parse_env
from console.simulator import database
from console.simulator.configfile import LOGIN_EMAIL, SSHTarget
from console.simulator.dataset import CHANNEL_ID, POST_COUNT
from console.simulator.postgres import PgCluster
from console.simulator.repo import PHASE4_MESSAGE, git, phase4_commit
from console.simulator.world import SimHost, Simulation, SimulationError
from tests.fixtures_pg import requires_database
from tests.fixtures_ssh import SSHServer
from tests.phase4 import ADVANCED, CONTENT_TYPE, RULES, TIME_WEIGHTING

MakeSimulation = Callable[..., Simulation]

ADVANCED_KEYS = ("best_day_hour_combinations", "content_type_recommendations")
DATA_KEYS = (
    "best_times",
    "best_days",
    "hourly_engagement_trend",
    "daily_performance",
    "total_posts_analyzed",
    "confidence",
    "data_source",
    *ADVANCED_KEYS,
    "content_type_summary",
)
TIMEOUT = httpx.Timeout(15.0)


# --- helpers ------------------------------------------------------------------------


def token(sim: Simulation, host: SimHost) -> str:
    r = httpx.post(
        f"{host.api_url}/auth/login",
        json={"email": LOGIN_EMAIL, "password": sim.password(host.env), "remember_me": False},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def best_times(host: SimHost, bearer: str | None, channel: int = CHANNEL_ID, days: int = 90) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    url = f"{host.api_url}/analytics/predictive/best-times/{channel}?days={days}"
    return httpx.get(url, headers=headers, timeout=TIMEOUT)


def log_lines(host: SimHost) -> list[str]:
    return host.log_file.read_text(encoding="utf-8").splitlines() if host.log_file.exists() else []


def environ_of(pid: int) -> dict[str, str]:
    items = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(i.decode().split("=", 1) for i in items if b"=" in i)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def set_flags(host: SimHost, **flags: bool) -> None:
    """Edit the env file as the console does: only the flag lines change."""
    names = {"advanced": ADVANCED, "time_weighting": TIME_WEIGHTING, "content_type": CONTENT_TYPE}
    env = parse_env(host.env_file.read_bytes(), str(host.env_file))
    host.env_file.write_bytes(env.encoded(env.with_flags({names[k]: v for k, v in flags.items()}, RULES)))


def restart(sim: Simulation, host: SimHost, key: str = "restart_command") -> subprocess.CompletedProcess[str]:
    result = sim.run(host.env, key, host.index)
    assert result.returncode == 0, f"{key} failed: {result.stdout}\n{result.stderr}"
    return result


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


async def sql(dsn: str, query: str, *args: object) -> list[dict[str, object]]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


# --- health and auth ----------------------------------------------------------------


def test_health_is_hard_coded_and_ready_reports_the_database(simulation: Simulation) -> None:
    host = simulation.host("production")
    health = httpx.get(f"{host.api_url}/health", timeout=TIMEOUT)
    assert health.status_code == 200
    body = health.json()
    assert set(body) == {"status", "timestamp", "service", "version"}
    assert (body["status"], body["service"], body["version"]) == ("healthy", "analyticbot", "7.5.0")
    ready = httpx.get(f"{host.api_url}/health/ready", timeout=TIMEOUT).json()
    assert set(ready) == {"ready", "timestamp", "components", "dependencies_met"}
    assert ready["ready"] is True and ready["dependencies_met"] is True
    assert ready["components"]["database"]["status"] == "healthy"


def test_ready_down_fault_makes_ready_disagree_with_health(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    sim.inject("staging", ready_down=True)
    ready = httpx.get(f"{host.api_url}/health/ready", timeout=TIMEOUT)
    assert ready.status_code == 503
    assert ready.json()["ready"] is False and ready.json()["dependencies_met"] is False
    assert ready.json()["components"]["database"]["status"] == "unhealthy"
    assert httpx.get(f"{host.api_url}/health", timeout=TIMEOUT).json()["status"] == "healthy"
    sim.clear("staging")
    assert httpx.get(f"{host.api_url}/health/ready", timeout=TIMEOUT).json()["ready"] is True


@pytest.mark.postgres
def test_ready_tells_the_truth_when_the_database_refuses(
    make_simulation: MakeSimulation, pg_cluster: PgCluster
) -> None:
    sim = make_simulation(database=True)
    host = sim.host("staging")
    role = urlsplit(sim.dsn("staging") or "").username
    refuse = f'ALTER ROLE "{role}" NOLOGIN'
    kick = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
    asyncio.run(_admin(pg_cluster, refuse, kick))
    try:
        ready = httpx.get(f"{host.api_url}/health/ready", timeout=TIMEOUT)
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert ready.json()["components"]["database"]["status"] == "unhealthy"
        assert httpx.get(f"{host.api_url}/health", timeout=TIMEOUT).json()["status"] == "healthy"
        data = best_times(host, token(sim, host)).json()["data"]
        assert data["status"] == "failed" and "[ERROR]" in log_lines(host)[-1]
    finally:
        asyncio.run(_admin(pg_cluster, f'ALTER ROLE "{role}" LOGIN'))
    assert httpx.get(f"{host.api_url}/health/ready", timeout=TIMEOUT).json()["ready"] is True


async def _admin(cluster: PgCluster, *statements: str) -> None:
    conn = await cluster.admin_connect()
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def test_login_issues_bearer_tokens_and_refuses_bad_credentials(simulation: Simulation) -> None:
    host = simulation.host("staging")
    good = httpx.post(
        f"{host.api_url}/auth/login",
        json={"email": LOGIN_EMAIL, "password": simulation.password("staging"), "remember_me": False},
        timeout=TIMEOUT,
    )
    assert good.status_code == 200
    body = good.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["access_token"] and body["refresh_token"] and body["user"]["email"] == LOGIN_EMAIL
    for email, password in ((LOGIN_EMAIL, "wrong-password"), ("intruder@example.com", simulation.password("staging"))):
        bad = httpx.post(f"{host.api_url}/auth/login", json={"email": email, "password": password}, timeout=TIMEOUT)
        assert bad.status_code == 401
    # The env file keeps only a hash; the password is in the secret file alone.
    env_text = host.env_file.read_text()
    assert simulation.password("staging") not in env_text and "AUTH_PASSWORD_SHA256=" in env_text


def test_best_times_without_a_valid_token_is_401(simulation: Simulation) -> None:
    host = simulation.host("staging")
    assert best_times(host, None).status_code == 401
    assert best_times(host, "not.a.token").status_code == 401
    # A token of another environment is signed with another key.
    assert best_times(host, token(simulation, simulation.host("production"))).status_code == 401


# --- best-times ---------------------------------------------------------------------


def test_best_times_advanced_envelope_and_log_lines(simulation: Simulation) -> None:
    host = simulation.host("production")
    before = len(log_lines(host))
    r = best_times(host, token(simulation, host))
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"success", "channel_id", "data", "analysis_type", "generated_at", "confidence_score"}
    assert body["success"] is True and body["channel_id"] == CHANNEL_ID
    data = body["data"]
    assert set(DATA_KEYS) <= set(data)
    assert data["total_posts_analyzed"] == POST_COUNT
    assert data["best_times"] and data["best_days"] and data["hourly_engagement_trend"]
    assert all(data[k] for k in ADVANCED_KEYS), "advanced mode must return non-empty advanced lists"
    assert isinstance(data["content_type_summary"], dict)
    assert data["data_source"] == ("database" if simulation.has_database else "synthetic")
    # Production logs JSON lines; the three request lines come in order.
    new = [json.loads(line) for line in log_lines(host)[before:]]
    assert [e["message"] for e in new[-3:]] == [
        f"⏰ Getting posting time metrics for channel {CHANNEL_ID} (90 days)",
        "🎛️ Feature flags - Advanced: True, Time-weighting: True, Content-type: True",
        "Using ADVANCED query with new features",
    ]
    assert {e["level"] for e in new[-3:]} == {"INFO"} and new[-1]["name"].startswith("analyticbot")


def test_master_flag_off_after_restart_gives_legacy_mode(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    old_pid = host.pid()
    set_flags(host, advanced=False)
    restart(sim, host)
    pid = host.pid()
    assert pid and pid != old_pid
    assert environ_of(pid)[ADVANCED] == "false"
    r = best_times(host, token(sim, host))
    data = r.json()["data"]
    assert r.status_code == 200 and data["total_posts_analyzed"] == POST_COUNT
    assert data["best_day_hour_combinations"] == [] and data["content_type_recommendations"] == []
    assert data["content_type_summary"] is None
    # Staging logs plain lines, in the runbook's format.
    assert log_lines(host)[-2:] == [
        "[INFO] analyticbot.recommendations: 🎛️ Feature flags - Advanced: False, Time-weighting: True, "
        "Content-type: True",
        "[INFO] analyticbot.recommendations: Using SIMPLE query (legacy mode)",
    ]


@pytest.mark.postgres
def test_scenario_b_fails_with_http_200_and_an_error_line(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    host = sim.host("staging")
    set_flags(host, content_type=False)
    restart(sim, host)
    r = best_times(host, token(sim, host))
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["status"] == "failed" and data["data_source"] == "error" and data["best_times"] == []
    assert "content_type_stats" in data["error"]
    assert log_lines(host)[-1].startswith("[ERROR] analyticbot.recommendations: ❌ Error getting posting time")


@pytest.mark.postgres
def test_dropping_the_columns_with_master_on_breaks_the_advanced_query(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    host = sim.host("staging")
    dsn = sim.dsn("staging")
    assert dsn
    script = database.executable_sql(host.rollback_script.read_text())
    asyncio.run(_execute(dsn, script))
    bearer = token(sim, host)
    data = best_times(host, bearer).json()["data"]
    assert data["status"] == "failed" and "has_video" in data["error"]
    assert "[ERROR]" in log_lines(host)[-1]
    # 005's partial index went with the column, silently.
    indexes = asyncio.run(sql(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 'posts'"))
    assert database.DEPENDENT_INDEX not in {i["indexname"] for i in indexes}
    # Flags off first is the safe order: the legacy query does not read the columns.
    set_flags(host, advanced=False)
    restart(sim, host)
    data = best_times(host, bearer).json()["data"]
    assert data.get("status") != "failed" and data["total_posts_analyzed"] == POST_COUNT


async def _execute(dsn: str, script: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(script)
    finally:
        await conn.close()


# --- faults -------------------------------------------------------------------------


def test_latency_fault_through_the_fault_command(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    bearer = token(sim, host)
    started = time.monotonic()
    assert best_times(host, bearer).status_code == 200
    assert time.monotonic() - started < 1.0
    cli = [sys.executable, "-m", "console", "fault", "--dir", str(sim.directory), "staging"]
    done = subprocess.run([*cli, "latency_s=1.2"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "latency_s=1.2" in done.stdout
    started = time.monotonic()
    assert best_times(host, bearer).status_code == 200
    assert time.monotonic() - started >= 1.2
    bad = subprocess.run([*cli, "latency=1"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown fault 'latency'" in bad.stderr and "latency_s" in bad.stderr


def test_error_rate_fault_fails_requests_and_logs_errors(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    bearer = token(sim, host)
    sim.inject("staging", error_rate=1.0)
    responses = [best_times(host, bearer) for _ in range(4)]
    assert [r.status_code for r in responses] == [500, 200, 500, 200]
    assert all(r.json()["data"]["status"] == "failed" for r in responses[1::2])
    assert sum("[ERROR]" in line for line in log_lines(host)[-100:]) == 4
    sim.inject("staging", error_rate=0.5)
    statuses = [best_times(host, bearer).status_code for _ in range(4)]
    assert statuses.count(200) == 3  # one in two fails, alternating 500 and the HTTP-200 failed shape


def test_memory_fault_grows_and_releases_real_rss(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    pid = host.pid()
    assert pid and rss_mb(pid) < 120
    sim.inject("staging", memory_mb=250)
    assert wait_for(lambda: rss_mb(pid) >= 240, timeout=8), f"RSS stayed at {rss_mb(pid):.0f} MB"
    sim.clear("staging")
    assert wait_for(lambda: rss_mb(pid) < 120, timeout=5), f"RSS stayed at {rss_mb(pid):.0f} MB"


def test_crash_on_start_makes_restart_fail_with_the_service_log(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    sim.inject("staging", crash_on_start=True)
    result = sim.run("staging", "restart_command")
    assert result.returncode != 0
    assert "failed to start" in result.stderr and "Traceback (most recent call last)" in result.stderr
    assert sim.run("staging", "pid_command").returncode == 1
    assert "StartupCrash" in sim.run("staging", "service_log_command").stdout
    assert host.pid() is None
    sim.clear("staging")
    restart(sim, host)
    assert httpx.get(f"{host.api_url}/health", timeout=TIMEOUT).status_code == 200


def test_a_restart_with_a_kept_alive_connection_open_leaves_no_traceback_in_the_service_log(
    make_simulation: MakeSimulation,
) -> None:
    """The console's HTTP pool keeps connections open across rounds; on Python 3.11.7 every
    restart then wrote "Exception in callback … CancelledError" tracebacks into the service's
    log, which the console shows when a restart fails: they read as the service's own crash."""
    sim = make_simulation()
    host = sim.host("staging")
    with httpx.Client(timeout=TIMEOUT) as client:  # keep-alive: the connection stays open
        assert client.get(f"{host.api_url}/health").status_code == 200
        before = host.service_log.read_text()
        restart(sim, host)
        written = host.service_log.read_text()[len(before) :]
    assert "Stopped" in written or "Started" in written or "Starting" in written, written
    assert "Traceback" not in written and "Exception in callback" not in written, written


def test_stale_restart_keeps_the_old_environment_until_reload_or_force(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    sim.inject("staging", stale_restart=True)
    set_flags(host, advanced=False)
    restart(sim, host)
    assert environ_of(host.pid())[ADVANCED] == "true"  # the runbook's troubleshooting issue 1
    best_times(host, token(sim, host))
    assert "Advanced: True" in log_lines(host)[-2]
    # `ctl reload` is the daemon-reload analogue (not in the generated config, so drills show the fault)
    reload = [sys.executable, "-m", "console.simulator.ctl", "reload", "--home", str(host.home)]
    subprocess.run(reload, check=True, capture_output=True, timeout=30)
    restart(sim, host)
    assert environ_of(host.pid())[ADVANCED] == "false"
    set_flags(host, time_weighting=False)
    restart(sim, host)
    assert environ_of(host.pid())[TIME_WEIGHTING] == "true"
    old = host.pid()
    restart(sim, host, "force_restart_command")
    assert host.pid() != old and environ_of(host.pid())[TIME_WEIGHTING] == "false"


def test_a_service_whose_start_was_cut_short_is_found_stopped_and_not_leaked(make_simulation: MakeSimulation) -> None:
    """A start killed between launching the service and recording its pid left a service no
    command knew of: it kept the port, the next start's service died on it while its
    answers passed for the new one's, and the process outlived the simulation (seen in CI)."""
    sim = make_simulation()
    host = sim.host("staging")
    unrecorded = host.pid()
    assert unrecorded is not None
    (host.home / "run" / "service.pid").unlink()  # as if the start had been cut short there
    assert host.pid() == unrecorded  # found by its command line, as systemd finds it in the unit's cgroup
    set_flags(host, advanced=False)
    restart(sim, host)
    assert not alive(unrecorded), "the unrecorded service was left running"
    new = host.pid()
    assert new is not None and new != unrecorded
    assert environ_of(new)[ADVANCED] == "false"  # the new service answers, with the new env file
    sim.stop()
    assert not alive(new)


def test_a_start_refuses_a_port_another_process_answers_on(make_simulation: MakeSimulation) -> None:
    """Another program's answers on the port must not read as the new service's start."""
    import http.server
    import threading

    sim = make_simulation()
    host = sim.host("staging")
    ctl = [sys.executable, "-m", "console.simulator.ctl"]
    subprocess.run([*ctl, "stop", "--home", str(host.home)], check=True, capture_output=True, timeout=30)

    class Other(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    other = http.server.HTTPServer(("127.0.0.1", host.api_port), Other)
    serving = threading.Thread(target=other.serve_forever, daemon=True)
    serving.start()
    try:
        result = sim.run("staging", "restart_command")
        assert result.returncode == 1, result
        assert f"port {host.api_port} is already in use by another process" in result.stderr, result
        assert host.pid() is None
    finally:
        other.shutdown()
        other.server_close()
        serving.join(5)
    restart(sim, host)  # the port is free again: the service starts and is recorded
    assert host.pid() is not None


# --- database and repository ---------------------------------------------------------


@pytest.mark.postgres
def test_migrations_are_applied_and_the_rollback_script_is_psql(simulation: Simulation) -> None:
    requires_database(simulation)
    script = simulation.host("production").rollback_script.read_text()
    assert "\\d posts" in script and "BEGIN" not in script and "COMMIT" not in script
    for statement in (
        "DROP INDEX IF EXISTS idx_posts_content_type;",
        "DROP INDEX IF EXISTS idx_posts_date_content;",
        "ALTER TABLE posts DROP COLUMN IF EXISTS has_video;",
        "ALTER TABLE posts DROP COLUMN IF EXISTS has_media;",
    ):
        assert statement in script
    dsn = simulation.dsn("production")
    assert dsn
    columns = asyncio.run(sql(dsn, "SELECT column_name FROM information_schema.columns WHERE table_name = 'posts'"))
    assert {"has_video", "has_media", "views", "forwards", "reactions"} <= {c["column_name"] for c in columns}
    indexes = {
        i["indexname"]: i["indexdef"]
        for i in asyncio.run(sql(dsn, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'posts'"))
    }
    assert {"idx_posts_content_type", "idx_posts_date_content"} <= set(indexes)
    assert "has_video" in indexes[database.DEPENDENT_INDEX]
    counts = asyncio.run(
        sql(
            dsn,
            "SELECT count(*) AS n, count(*) FILTER (WHERE has_video) AS v, "
            "count(*) FILTER (WHERE media_type IN ('video', 'animation')) AS expected FROM posts",
        )
    )[0]
    assert counts["n"] == POST_COUNT and counts["v"] == counts["expected"] > 0


@pytest.mark.postgres
def test_rollback_script_fault_leaves_a_psql_run_half_done(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(database=True)
    host = sim.host("staging")
    sim.inject("staging", rollback_script_fails=True)
    assert git(host.repo, "status", "--porcelain").strip().endswith("004_rollback.sql")
    assert sim.cluster is not None
    run = subprocess.run(
        [str(sim.cluster.psql), sim.dsn("staging") or "", "-f", str(host.rollback_script)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0 and "idx_posts_date_contnet" in run.stderr
    dsn = sim.dsn("staging") or ""
    indexes = {i["indexname"] for i in asyncio.run(sql(dsn, "SELECT indexname FROM pg_indexes"))}
    columns = {
        c["column_name"]
        for c in asyncio.run(sql(dsn, "SELECT column_name FROM information_schema.columns WHERE table_name = 'posts'"))
    }
    assert "idx_posts_content_type" not in indexes and "idx_posts_date_content" in indexes
    assert {"has_video", "has_media"} <= columns  # half-done: the first DROP ran, the rest did not
    sim.clear("staging")
    assert git(host.repo, "status", "--porcelain").strip() == ""


def test_repo_has_the_phase4_commit_and_a_code_rollback_works(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    subjects = git(host.repo, "log", "--format=%s").splitlines()
    assert PHASE4_MESSAGE in subjects and subjects.index(PHASE4_MESSAGE) >= 1  # later commits exist
    commit = phase4_commit(host.repo)
    assert commit
    assert "app/config/feature_flags.py" in git(host.repo, "show", "--name-only", "--format=", commit)
    git(host.repo, "revert", "--no-edit", commit)
    build = sim.run("staging", "rebuild_command")
    assert build.returncode == 0 and "Compiling" in build.stdout and "Phase 4 code absent" in build.stdout
    restart(sim, host)
    data = best_times(host, token(sim, host)).json()["data"]
    assert data["best_day_hour_combinations"] == [] and data["total_posts_analyzed"] == POST_COUNT
    assert environ_of(host.pid())[ADVANCED] == "true"  # flags untouched; the code no longer reads them
    assert host.rollback_script.exists()


# --- config and the simulate command --------------------------------------------------


def test_generated_config_validates_and_holds_no_secret(simulation: Simulation) -> None:
    config = load_config(simulation.config_path)
    assert {n: e.kind for n, e in config.environments.items()} == {"staging": "staging", "production": "production"}
    prod = config.environment("production")
    assert [h.is_local for h in prod.hosts] == [True]
    host = simulation.host("production")
    assert prod.expand(prod.api_url, prod.hosts[0]) == host.api_url
    assert prod.expand(prod.env_file, prod.hosts[0]) == str(host.env_file)
    assert prod.password.resolve() == simulation.password("production")
    assert config.journal_path == simulation.directory / "journal.jsonl"
    text = simulation.config_path.read_text()
    secrets = [simulation.password("staging"), simulation.password("production")]
    if simulation.has_database:
        assert prod.database is not None and Path(prod.database.rollback_script).exists()
        dsn = simulation.dsn("production") or ""
        assert prod.database.dsn.resolve() == dsn
        secrets.append(dsn.split(":")[2].split("@")[0])  # the DSN's password
    for path in (simulation.directory / "secrets").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
    logs = "".join(p.read_text() for h in (host, simulation.host("staging")) for p in (h.log_file, h.service_log))
    for secret in secrets:
        assert secret not in text and secret not in logs


@pytest.mark.ssh
def test_ssh_hosts_run_the_generated_commands_over_ssh(make_simulation: MakeSimulation, sshd: SSHServer) -> None:
    target = SSHTarget(sshd.address, sshd.port, sshd.user, sshd.key_file, sshd.known_hosts)
    sim = make_simulation(hosts=2, ssh=target)
    env = load_config(sim.config_path).environment("staging")
    assert [(h.address, h.port, h.user) for h in env.hosts] == [(sshd.address, sshd.port, sshd.user)] * 2
    assert [dict(h.vars)["api_port"] for h in env.hosts] == [str(h.api_port) for h in sim.hosts("staging")]

    async def over_ssh(command: str) -> tuple[int | None, str]:
        import asyncssh

        async with asyncssh.connect(
            sshd.address,
            port=sshd.port,
            username=sshd.user,
            client_keys=[sshd.key_file],
            known_hosts=sshd.known_hosts,
        ) as conn:
            result = await asyncio.wait_for(conn.run(command), 30)
            return result.exit_status, str(result.stdout)

    second = sim.host("staging", 2)
    code, out = asyncio.run(over_ssh(env.expand(env.pid_command, env.hosts[1])))
    assert code == 0 and int(out) == second.pid()
    # A restart over SSH returns (the detached service does not hold the channel) with a new process.
    old = second.pid()
    code, out = asyncio.run(over_ssh(env.expand(env.restart_command, env.hosts[1])))
    assert code == 0 and "started" in out
    assert second.pid() != old and sim.host("staging", 1).pid()


def test_rerun_on_the_same_dir_starts_afresh_and_foreign_dirs_are_refused(tmp_path: Path) -> None:
    directory = tmp_path / "sim"
    with Simulation(directory, environments=("staging",), database=False) as first:
        old_pid = first.host("staging").pid()
        first.inject("staging", latency_s=3)
    second = Simulation(directory, environments=("staging",), database=False)
    try:
        second.start()
        host = second.host("staging")
        assert host.pid() and host.pid() != old_pid and not alive(old_pid or 0)
        assert not (host.home / "faults.json").exists()
    finally:
        second.stop()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SimulationError, match="not empty"):
        Simulation(foreign, database=False).start()
    assert (foreign / "notes.txt").read_text() == "mine"


def _pids_of(directory: Path) -> dict[str, int]:
    state = json.loads((directory / "state.json").read_text())
    pids = {}
    for env in state["environments"].values():
        for h in env["hosts"]:
            pids[h["name"]] = int((Path(h["home"]) / "run" / "service.pid").read_text())
    if state["postgres"]:
        data = Path(state["postgres"]["guard_item"]["data"])
        pids["postgres"] = int((data / "postmaster.pid").read_text().splitlines()[0])
    return pids


def test_simulate_command_runs_in_the_foreground_and_sigterm_leaves_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "sim"
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "simulate", "--dir", str(directory), "--env", "staging"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C to stop" in line:
                break
        output = "".join(lines)
        assert "Ctrl-C to stop" in output, output
        assert str(directory / "console.toml") in output
        load_config(directory / "console.toml")
        pids = _pids_of(directory)
        assert pids and all(alive(p) for p in pids.values())
        secrets = [(directory / "secrets" / "staging.password").read_text().strip()]
        dsn_file = directory / "secrets" / "staging.dsn"
        if dsn_file.exists():
            secrets.append(urlsplit(dsn_file.read_text().strip()).password or "")
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        output += rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "Stopped" in output and not any(secret in output for secret in secrets)
    assert wait_for(lambda: not any(alive(p) for p in pids.values()), timeout=5), pids


def test_killed_owner_is_cleaned_up_by_the_guard(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from console.simulator.world import Simulation\n"
        f"s = Simulation({str(tmp_path / 'sim')!r}, environments=('staging',)).start()\n"
        "print(s.host('staging').pid(), s.cluster.pid() if s.cluster else 0, flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pids = [int(p) for p in owner.stdout.readline().split() if p != "0"]
        assert pids and all(alive(p) for p in pids)
    finally:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
    # The API process and PostgreSQL (when installed) go with their killed owner.
    assert wait_for(lambda: not any(alive(p) for p in pids), timeout=10), pids


@pytest.mark.parametrize("command", [["demo", "--no-db"], ["drill", "latency"]])
def test_a_directory_whose_simulation_runs_is_said_so_and_left_running(
    make_simulation: MakeSimulation, tmp_path: Path, command: list[str]
) -> None:
    """`demo --dir` and `drill --dir` on a running simulation: not a crash report but a line
    naming the directory and the process to stop, exit 1, and the running simulation
    untouched (its API still answers, its files still there)."""
    sim = make_simulation()
    before = sorted(p.name for p in sim.directory.iterdir())
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}  # where a crash log would go
    out = subprocess.run(
        [sys.executable, "-m", "console", *command, "--dir", str(sim.directory)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 1, out
    assert out.stderr.strip().splitlines()[-1] == (
        f"rollback-console {command[0]}: another simulation is running in {sim.directory} (pid {os.getpid()}): "
        f"stop it first (Ctrl-C where it runs, or kill {os.getpid()})"
    )
    assert "internal error" not in out.stdout + out.stderr
    assert not (tmp_path / "state").exists()
    assert sorted(p.name for p in sim.directory.iterdir()) == before
    assert httpx.get(f"{sim.host('staging').api_url}/health", timeout=5).status_code == 200


def test_demo_on_a_directory_with_an_earlier_journal_says_what_it_keeps(make_simulation: MakeSimulation) -> None:
    """`demo --dir` a second time in the same DIR rewrote the env files and kept the journal
    without a word: the console then said the earlier rollback was "no longer in effect …
    changed since, outside the console", which surprised whoever had just restarted the demo."""
    from tests.engine_support import cli

    sim = make_simulation()
    rolled = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    sim.stop()
    out = subprocess.run(
        [sys.executable, "-m", "console", "demo", "--dir", str(sim.directory), "--no-db"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # No terminal here: it starts the simulation, says what it keeps, then refuses to draw.
    assert "the console needs a terminal" in out.stderr, out
    said = " ".join(out.stdout.split())
    assert f"{sim.directory / 'journal.jsonl'} is kept from an earlier run here" in said, out.stdout
    assert "the console will say those rollbacks are no longer in effect" in said
