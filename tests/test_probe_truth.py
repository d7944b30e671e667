"""Probes and checks tell the truth: unknown is never fine, a check that could not read its
input never passes, slow answers are measured again before they fail a run, service log
lines are redacted on their way out, and no task's exception goes astray on a fleet.

Real parts throughout: the simulator's API processes, stand-in HTTP servers on loopback,
log files on disk, the real sshd, the real CLI and the real console under Pilot.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.config import load_config
from console.config.model import MatrixRow
from console.probes import http as http_probe
from console.probes import jsonbody, logs
from console.probes.snapshot import (
    EndpointReport,
    EnvironmentSnapshot,
    FlagReport,
    HealthReport,
    HostSnapshot,
    LogReport,
    MemoryReport,
    ProbeReport,
)
from console.profile import profile_at
from console.runbook.matrix import DecisionMatrix, evaluate
from console.simulator.world import Simulation
from tests.engine_support import ssh_target
from tests.fixtures_ssh import SSHServer, free_port
from tests.phase4 import ADVANCED, LOG, REQUEST_LINE
from tests.status_support import (
    FLAG_LINE,
    GOOD_PASSWORD,
    FakeAPI,
    best_times_body,
    checks_of,
    environment_of,
    fake_environment,
    run_cli,
    run_cli_many,
    sim_secrets,
    write_fake_env_files,
)

MakeSimulation = Callable[..., Simulation]
REQUEST = "[INFO] analyticbot.recommendations: ⏰ Getting posting time metrics for channel -100 (90 days)"
FLAGS_ON = FLAG_LINE.format(True, True, True)


@pytest.fixture
def fake_api() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        yield api


@pytest.fixture
def service_process() -> Iterator[int]:
    """A real process standing in for the service: its /proc environ and RSS are read."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), ADVANCED: "true"}
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], env=env)
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def one_environment(tmp_path: Path, api_url: str, pid: int, log_lines: list[str] | bytes, name: str = "svc") -> Path:
    """A config with one environment over a stand-in API, its log holding ``log_lines``."""
    env_file, log = write_fake_env_files(tmp_path)
    if isinstance(log_lines, bytes):
        log.write_bytes(log_lines)
    else:
        log.write_text("".join(line + "\n" for line in log_lines))
    password = tmp_path / "pw"
    password.write_text(GOOD_PASSWORD + "\n")
    config = tmp_path / "console.toml"
    config.write_text(
        fake_environment(name, api_url=api_url, env_file=env_file, log_file=log, pid=pid, password_file=password)
    )
    return config


# --- unknown is never fine ------------------------------------------------------------------------


def test_status_with_an_unreachable_host_cannot_assess_and_exits_1(simulation: Simulation, tmp_path: Path) -> None:
    refused = free_port()
    config = tmp_path / "console.toml"
    config.write_text(
        simulation.config_path.read_text()
        + f'\n[hosts.gone]\naddress = "127.0.0.1"\nport = {refused}\nconnect_timeout = 1\n\n'
        + fake_environment(
            "remote",
            api_url="http://127.0.0.1:10300",
            env_file=tmp_path / ".env",
            log_file=tmp_path / "log",
            pid=1,
            password_file=tmp_path / "pw",
            hosts='["gone"]',
        )
    )
    secrets = sim_secrets(simulation)
    everything, text, healthy_only = run_cli_many(
        config, ["status", "--json"], ["status", "remote"], ["status", "staging"], secrets=secrets
    )
    assert everything.code == text.code == 1 and everything.stderr == text.stderr == ""
    rec = environment_of(everything.json, "remote")["recommendation"]
    assert rec["action"] is None and rec["assessed"] is False
    assert rec["title"].startswith("Cannot assess: gone: unreachable — ssh ") and "connection refused" in rec["title"]
    # No signal row concludes anything from a host it never reached.
    signal_rows = [f for f in rec["findings"] if not f["declared"]]
    assert signal_rows and all(not f["known"] and not f["lit"] for f in signal_rows)
    assert all(f["evidence"].startswith("cannot tell: unreachable — ssh ") for f in signal_rows)
    assert "No action" not in text.stdout
    assert "recommended: CANNOT ASSESS" in text.stdout and "- gone: unreachable — ssh " in text.stdout
    # The healthy environments of the same config were assessed in full.
    assert healthy_only.code == 0, healthy_only
    assert environment_of(everything.json, "staging")["recommendation"]["assessed"]
    assert "recommended: No action: no symptom in the decision matrix" in healthy_only.stdout


def test_a_log_of_nothing_but_errors_has_no_rate_and_cannot_be_assessed(
    tmp_path: Path, fake_api: FakeAPI, service_process: int
) -> None:
    errors = [f"[ERROR] analyticbot.api: database timeout #{i}" for i in range(150)]
    config = one_environment(tmp_path, fake_api.url("ok"), service_process, [FLAGS_ON, *errors])
    status, text, check = run_cli_many(config, ["status", "--json"], ["status"], ["check", "svc", "--json"])
    env = environment_of(status.json, "svc")
    assert env["hosts"][0]["logs"]["error_lines"] == 100 and env["hosts"][0]["logs"]["requests"] == 0
    assert env["signals"]["error_rate"] is None
    rec = env["recommendation"]
    assert status.code == text.code == 1 and rec["action"] is None and not rec["assessed"]
    (row,) = [f for f in rec["findings"] if f["symptom"] == "Error rate > 5%"]
    assert row["known"] is False and row["evidence"] == (
        "cannot tell: no best-times request in the last 100 lines of the log to compute a rate from (100 ERROR lines)"
    )
    assert rec["title"].startswith("Cannot assess: Error rate > 5%: cannot tell: no best-times request")
    assert "error rate unknown: no best-times request in the last 100 lines" in text.stdout
    assert check.code == 1 and not checks_of(check.json)["errors"]["passed"]


def test_the_matrix_concludes_nothing_from_a_signal_it_does_not_have() -> None:
    rows = (
        MatrixRow("Response time > 5s", "HIGH", "quick", "< 1 min", "response_time_s", 5.0),
        MatrixRow("Memory usage > 2GB", "MEDIUM", "partial-time-weighting", "< 2 min", "memory_mb", 2048.0),
        MatrixRow("Code bugs", "HIGH", "code", "< 10 min"),
    )

    def host(name: str, latency: float | None, rss_mb: float | None) -> HostSnapshot:
        return HostSnapshot(
            name,
            "local",
            0.0,
            0.1,
            health=HealthReport(
                (
                    EndpointReport("liveness", "/health", False, 200, True, "healthy", "7.5.0"),
                    EndpointReport("readiness", "/health/ready", True, 200, True),
                )
            ),
            probe=ProbeReport(
                request="best-times",
                login_status=200,
                status=200 if latency is not None else None,
                latency_s=latency,
                kind="ok" if latency is not None else None,
                modes=("advanced",),
                count=1,
                data_present=True,
                error=None if latency is not None else "GET /x: no answer within 10.0s (timeout)",
            ),
            logs=LogReport(window=100, requests=5),
            memory=MemoryReport(rss_bytes=None if rss_mb is None else int(rss_mb * 2**20)),
            flags=FlagReport(),
        )

    def env(*hosts: HostSnapshot) -> EnvironmentSnapshot:
        return EnvironmentSnapshot("e", "staging", 0.0, 0.1, hosts)

    # Every signal known and unlit on every host: the only way to "no action".
    matrix = DecisionMatrix(rows, {}, "best-times")
    fine = evaluate(matrix, env(host("a", 0.4, 300), host("b", 0.5, 310)))
    assert fine.action is None and fine.assessed and fine.title.startswith("No action")
    # One host's latency unknown: the row is unknown (that host could be the slow one).
    partial = evaluate(matrix, env(host("a", 0.4, 300), host("b", None, 310)))
    (latency,) = [f for f in partial.findings if f.row.signal == "response_time_s"]
    assert latency.known is False and not latency.lit
    assert latency.evidence.startswith("cannot tell: 1 of 2 hosts not measured — b: GET /x: no answer")
    assert partial.action is None and not partial.assessed and partial.title.startswith("Cannot assess: b: GET /x")
    # A lit row stands although another host is unknown, and what is unknown is still said.
    lit = evaluate(matrix, env(host("a", 6.2, 300), host("b", None, 310)))
    assert lit.action == "quick" and not lit.assessed and lit.problems
    assert [f.evidence for f in lit.lit] == ["best-times took 6.20s on 1 of 2 hosts (a)"]
    # Declared rows need the operator, never a probe: they do not make the matrix unknown.
    assert all(f.known for f in fine.findings if f.row.signal is None)


def test_a_nan_or_infinite_threshold_in_the_matrix_is_refused(tmp_path: Path) -> None:
    text = (
        '[[decision_matrix]]\nsymptom = "Response time"\nseverity = "HIGH"\naction = "quick"\n'
        'signal = "response_time_s"\nabove = nan\n\n'
        '[[decision_matrix]]\nsymptom = "Errors"\nseverity = "HIGH"\naction = "quick"\n'
        'signal = "error_rate"\nabove = inf\n'
    )
    config = tmp_path / "matrix.toml"
    config.write_text(text)
    result = run_cli(config, "config", "validate", str(config))
    assert result.code == 2
    assert f"{config}:6: decision_matrix[0].above: must be a finite number, got nan" in result.stderr
    assert f"{config}:13: decision_matrix[1].above: must be a finite number, got inf" in result.stderr
    assert "needs a threshold" not in result.stderr  # one problem per key, not two


def test_status_help_documents_the_exit_codes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "console", "status", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    words = " ".join(result.stdout.split())
    assert "exit codes: 0 every environment was assessed; 1 something could not be assessed" in words
    assert "2 bad usage or config" in words


# --- checks read their whole input or fail ---------------------------------------------------------


def test_error_lines_are_found_whatever_their_length_or_format(
    tmp_path: Path, fake_api: FakeAPI, service_process: int
) -> None:
    """An ERROR after the 4096th character, a JSON level after a long message, a one-line
    traceback: each is an error line, though the text sent back is clipped for display."""
    cases = {
        "late-plain": "[INFO] analyticbot.api: " + "x" * 5000 + " ERROR: the query failed",
        "late-json": json.dumps({"message": "m" * 6000, "name": "analyticbot.api", "level": "error"}),
        # (a traceback folded into one line; its frames are not "Traceback", which the CLI helper forbids)
        "one-line-traceback": "[INFO] analyticbot.api: request failed | "
        + 'File "/app/analytics.py", line 42, in best_times | ' * 120
        + "asyncpg.exceptions.QueryCanceledError | ERROR",
    }
    configs = []
    for name, line in cases.items():
        d = tmp_path / name
        d.mkdir()
        configs.append((name, one_environment(d, fake_api.url("ok"), service_process, [REQUEST, FLAGS_ON, line])))
    for name, config in configs:
        check, status = run_cli_many(config, ["check", "svc", "--json"], ["status", "--json"])
        errors = checks_of(check.json)["errors"]
        assert check.code == 1 and errors["passed"] is False, (name, errors)
        assert errors["detail"].startswith("1 ERROR line(s) in the last 3 lines — latest: "), errors["detail"]
        logs = environment_of(status.json, "svc")["hosts"][0]["logs"]
        assert logs["error_lines"] == 1 and logs["window"] == 3
        (sample,) = logs["error_samples"]
        assert sample.endswith("bytes in all]") and len(sample) < 1100  # clipped for display, judged whole


def test_one_huge_line_does_not_shrink_the_error_window(
    tmp_path: Path, fake_api: FakeAPI, service_process: int
) -> None:
    """The window is the last 100 lines however long they are: an ERROR before a 5 MB line is
    still in it (a byte window saw only "the last 1" line and passed)."""
    lines = [REQUEST, FLAGS_ON, "[ERROR] analyticbot.api: connection reset", "[INFO] " + "A" * (5 * 1024 * 1024)]
    config = one_environment(tmp_path, fake_api.url("ok"), service_process, lines)
    check, status = run_cli_many(config, ["check", "svc", "--json"], ["status", "--json"])
    assert check.code == 1
    assert checks_of(check.json)["errors"]["detail"].startswith("1 ERROR line(s) in the last 4 lines — latest: [ERROR]")
    h = environment_of(status.json, "svc")["hosts"][0]
    assert h["logs"]["window"] == 4 and h["flags"]["log"] == {
        "advanced": True,
        "time_weighting": True,
        "content_type": True,
    }
    assert len(status.stdout) < 50_000


@pytest.mark.parametrize("kind", ["directory", "fifo", "missing"])
def test_a_log_that_cannot_be_read_fails_the_check_and_cannot_be_assessed(
    tmp_path: Path, fake_api: FakeAPI, service_process: int, kind: str
) -> None:
    config = one_environment(tmp_path, fake_api.url("ok"), service_process, [REQUEST, FLAGS_ON])
    log = tmp_path / "production.log"
    log.unlink()
    if kind == "directory":
        log.mkdir()
    elif kind == "fifo":
        os.mkfifo(log)  # nobody writes: a reader that opened it would wait for ever
    started = time.monotonic()
    check, status = run_cli_many(config, ["check", "svc", "--json"], ["status", "--json"])
    assert time.monotonic() - started < 50  # a hang guard: the probe timeout applies
    reason = {
        "directory": "is a directory, not a regular file",
        "fifo": "is a named pipe (FIFO), not a regular file",
        "missing": "No such file or directory",
    }[kind]
    errors = checks_of(check.json)["errors"]
    assert check.code == 1 and not errors["passed"]
    assert errors["detail"] == f"local: cannot read the log {log}: {reason}", errors
    rec = environment_of(status.json, "svc")["recommendation"]
    assert status.code == 1 and not rec["assessed"]
    assert f"local: local: cannot read the log {log}: {reason}" in rec["problems"]


def test_an_empty_log_is_nothing_checked_not_zero_errors(
    tmp_path: Path, fake_api: FakeAPI, service_process: int
) -> None:
    config = one_environment(tmp_path, fake_api.url("ok"), service_process, b"")
    check, status = run_cli_many(config, ["check", "svc", "--json"], ["status", "--json"])
    errors = checks_of(check.json)["errors"]
    assert (
        check.code == 1 and errors["detail"] == "no log line in the last 0 lines: cannot tell whether there were errors"
    )
    env = environment_of(status.json, "svc")
    assert status.code == 1 and env["signals"]["error_rate"] is None
    assert "Error rate > 5%: cannot tell: the log has no lines to read" in env["recommendation"]["problems"]


def test_check_three_fails_on_data_of_the_wrong_type_with_what_was_seen(tmp_path: Path, service_process: int) -> None:
    """Seen: "True posts, advanced mode" passed. A boolean is not a count of posts."""
    body = best_times_body()
    body["data"]["total_posts_analyzed"] = True
    with _stub({"best": lambda: (200, json.dumps(body).encode())}) as port:
        config = one_environment(tmp_path, f"http://127.0.0.1:{port}", service_process, [REQUEST, FLAGS_ON])
        check = run_cli(config, "check", "svc")
    assert check.code == 1
    (line,) = [x for x in check.stdout.splitlines() if "3. FAIL  Test recommendations" in x]
    assert line.endswith(
        "GET /analytics/predictive/best-times/-100: HTTP 200 but "
        "`data.total_posts_analyzed` is a boolean (True), not integer"
    ), line
    assert "True posts" not in check.stdout


# --- what the service logs is redacted on the way out --------------------------------------------


def test_service_log_lines_are_redacted_in_status_json_and_check(
    tmp_path: Path, fake_api: FakeAPI, service_process: int
) -> None:
    dsn_password = "dsn-pa55-in-the-log"
    lines = [
        REQUEST,
        FLAGS_ON,
        f"[ERROR] analyticbot.api: login failed for ops with password={GOOD_PASSWORD}",
        f"[ERROR] analyticbot.db: cannot connect to postgresql://analytic:{dsn_password}@db.internal:5432/analytic_bot",
    ]
    config = one_environment(tmp_path, fake_api.url("ok"), service_process, lines)
    status, check, check_json = run_cli_many(
        config,
        ["status", "--json"],
        ["check", "svc"],
        ["check", "svc", "--json"],
        secrets=[GOOD_PASSWORD, dsn_password],  # the helper fails if either reaches any output
    )
    samples = environment_of(status.json, "svc")["hosts"][0]["logs"]["error_samples"]
    assert len(samples) == 2 and "postgresql://analytic:***@db.internal" in samples[1]
    assert "[REDACTED]" in samples[0]
    assert "postgresql://analytic:***@db.internal" in check.stdout
    assert check_json.code == check.code == 1
    # At the source: what the probes keep of the log (for the console, a run's validation,
    # the journal) is already redacted, whatever prints it.
    from console.probes.collect import Prober

    kept = Prober(load_config(config)).summarize([LOG.line(line) for line in lines])
    assert not any(GOOD_PASSWORD in x or dsn_password in x for x in (*kept.error_samples, *kept.tail))


# --- slow answers are measured again before they fail --------------------------------------------


class ContendedAPI:
    """One backend behind many hosts, like a shared database: best-times takes 1 s, or 3.5 s
    while more than four of them are in flight at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inflight = 0
        self.seen_at_once = 0
        api = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                api.handle(self)

            def do_POST(self) -> None:
                api.handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024

        self.server = Server(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        length = int(h.headers.get("Content-Length") or 0)
        h.rfile.read(length)
        if "/best-times/" in path:
            with self.lock:
                self.inflight += 1
                self.seen_at_once = max(self.seen_at_once, self.inflight)
            try:
                time.sleep(1.0)
                with self.lock:
                    crowded = self.inflight > 4
                if crowded:
                    time.sleep(2.5)
                body = best_times_body()
            finally:
                with self.lock:
                    self.inflight -= 1
        elif path.endswith("/auth/login"):
            body = {"access_token": "tok-123"}
        elif path.endswith("/health/ready"):
            body = {"ready": True, "components": {"database": {"status": "healthy"}}}
        else:
            body = {"status": "healthy", "version": "7.5.0"}
        data = json.dumps(body).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_fleet_slow_only_in_its_own_burst_passes_once_measured_a_few_at_a_time(
    tmp_path: Path, service_process: int
) -> None:
    env_file, log = write_fake_env_files(tmp_path)
    log.write_text(REQUEST + "\n" + FLAGS_ON + "\n")
    password = tmp_path / "pw"
    password.write_text(GOOD_PASSWORD)
    api = ContendedAPI()
    try:
        n = 12
        hosts = "".join(f'[hosts.h{i}]\naddress = "local"\nvars = {{ n = "{i}" }}\n\n' for i in range(1, n + 1))
        config = tmp_path / "console.toml"
        config.write_text(
            "[thresholds]\nprobe_timeout_s = 10\nresponse_time_ok_s = 2\n\n"
            + hosts
            + fake_environment(
                "fleet",
                api_url=f"http://127.0.0.1:{api.server.server_address[1]}/{{n}}",
                env_file=env_file,
                log_file=log,
                pid=service_process,
                password_file=password,
                hosts="[" + ", ".join(f'"h{i}"' for i in range(1, n + 1)) + "]",
            )
        )
        check = run_cli(config, "check", "fleet", "--json")
    finally:
        api.close()
    assert api.seen_at_once > 4  # the first round did crowd the backend
    latency = checks_of(check.json)["response_time"]
    again = [h for h in latency["hosts"] if "measured again 4 at a time after the first round" in h["detail"]]
    assert again, latency  # slow in the burst, so measured again, and it says how
    assert all("with 12 hosts probed at once)" in h["detail"] and h["passed"] for h in again), again
    assert check.code == 0 and latency["passed"], latency
    assert latency["detail"].startswith("all 12 hosts pass (") and "slow at first" in latency["detail"]


def test_a_service_slow_every_time_still_fails_validation_and_says_how_it_was_measured(
    make_simulation: MakeSimulation, tmp_path: Path
) -> None:
    sim = make_simulation()
    sim.inject("staging", latency_s=2.5)  # every best-times request, whatever the flags
    result = subprocess.run(
        [sys.executable, "-m", "console", "--config", str(sim.config_path), "rollback", "quick", "--env", "staging",
         "--yes", "--json"],
        capture_output=True, text=True, timeout=180, cwd="/",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    (validate,) = doc["environment_steps"]
    assert validate["status"] == "failed"
    assert "Response time: " in validate["detail"]
    assert "(≥ 2s), measured again after the first round (that round took 2." in validate["detail"]
    assert "Task exception was never retrieved" not in result.stderr and "Traceback" not in result.stderr


# --- no task's exception goes astray over SSH ---------------------------------------------------------

CANCELLED_READS = r"""
import asyncio, gc, sys
from console.config import load_config
from console.transport.pool import TransportPool

async def main() -> None:
    loop = asyncio.get_running_loop()
    lost = []
    loop.set_exception_handler(lambda loop, context: lost.append(context.get("message")))
    env = load_config(sys.argv[1]).environment("staging")
    pool = TransportPool()
    transport = await pool.get(env.hosts[0])
    for i in range(60):  # cancel reads of /proc files at every stage of their progress
        task = asyncio.ensure_future(transport.read_file("/proc/self/environ"))
        await asyncio.sleep(0.0005 * (i % 25))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(1)
    gc.collect()
    await asyncio.sleep(0)
    await pool.close_all()
    print("lost:", lost)

asyncio.run(main())
"""


@pytest.mark.ssh
def test_a_cancelled_sftp_read_leaves_no_task_behind(sshd: SSHServer, make_simulation: MakeSimulation) -> None:
    """A probe timeout cancels reads of /proc and env files mid-way; asyncssh's parallel
    reads used to leave tasks whose SFTPEOFError reached stderr as "Task exception was never
    retrieved" (seen twice in one 50-host rollback)."""
    sim = make_simulation(ssh=ssh_target(sshd))
    result = subprocess.run(
        [sys.executable, "-c", CANCELLED_READS, str(sim.config_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lost: []" in result.stdout, result.stdout
    assert "Task exception was never retrieved" not in result.stderr and "SFTPEOFError" not in result.stderr


# --- the console shows it loudest ------------------------------------------------------------------


async def test_the_dashboard_shows_cannot_assess_as_an_alarm(simulation: Simulation, tmp_path: Path) -> None:
    from screens.app import RollbackConsole
    from screens.widgets.env_panel import EnvPanel

    refused = free_port()
    config_path = tmp_path / "console.toml"
    config_path.write_text(
        simulation.config_path.read_text()
        + f'\n[hosts.gone]\naddress = "127.0.0.1"\nport = {refused}\nconnect_timeout = 1\n\n'
        + fake_environment(
            "remote",
            api_url="http://127.0.0.1:10300",
            env_file=tmp_path / ".env",
            log_file=tmp_path / "log",
            pid=1,
            password_file=tmp_path / "pw",
            hosts='["gone"]',
        )
    )
    app = RollbackConsole(load_config(config_path))
    async with app.run_test(size=(120, 50)) as pilot:
        deadline = time.monotonic() + 60
        while not all(live.recommendation is not None for live in app.live.values()):
            assert time.monotonic() < deadline, "no recommendation within 60 s"
            await pilot.pause(0.1)
        await pilot.pause()
        dead = app.screen.query_one("#env-remote", EnvPanel)
        line = str(dead.query_one(".recommendation").render())
        assert line.startswith(" CANNOT ASSESS  gone: unreachable — ssh "), line
        assert "no action" not in line.lower()
        assert dead.has_class("-alert") and dead.has_class("-unknown")
        assert "cannot assess" in str(dead.border_subtitle)
        healthy = app.screen.query_one("#env-staging", EnvPanel)
        assert not healthy.has_class("-unknown")
        assert "no action" in str(healthy.query_one(".recommendation").render())


# --- helpers ---------------------------------------------------------------------------------------


class _stub:  # used as a context manager, like open()
    """A one-off API on loopback: good answers, except for the endpoints given."""

    def __init__(self, overrides: dict[str, Callable[[], tuple[int, bytes]]]) -> None:
        self.overrides = overrides

    def __enter__(self) -> int:
        overrides = self.overrides

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def answer(self) -> None:
                path = self.path.split("?")[0]
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = "best" if "/best-times/" in path else path.strip("/").replace("/", "-")
                default: dict[str, Any] = {
                    "best": best_times_body(),
                    "auth-login": {"access_token": "tok-123"},
                    "health-ready": {"ready": True, "components": {}},
                    "health": {"status": "healthy", "version": "7.5.0"},
                }
                status, data = overrides[key]() if key in overrides else (200, json.dumps(default[key]).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = answer
            do_POST = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_address[1]

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- fuzz: the parsers of what the service sends ------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
ENVELOPE_KEYS = ("data", "success", "status", "error", "total_posts_analyzed", "best_times",
                 "best_day_hour_combinations", "content_type_recommendations")  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(alphabet='[]{}",:0123456789eE.-+ aNInfity\\u', max_size=200).map(str.encode))
def test_any_body_is_parsed_or_refused_with_a_reason(raw: bytes) -> None:
    try:
        value = jsonbody.loads(raw)
    except jsonbody.BodyError as exc:
        assert str(exc)  # a reason, never an empty message
        return
    assert jsonbody.depth(raw) <= jsonbody.MAX_DEPTH
    json.dumps(value, allow_nan=False)  # what was accepted can be written back as JSON


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries(
            {"data": st.dictionaries(st.sampled_from(ENVELOPE_KEYS), JSON_VALUES, max_size=6)},
            optional={"success": JSON_VALUES},
        ),
    )
)
def test_a_best_times_answer_of_any_shape_never_passes_unless_it_is_whole(body: Any) -> None:
    # The probe as it runs, judged by the Phase 4 profile's predicates (httpx's own MockTransport
    # stands in for the network: what is tested is the reading of the answer).
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/login":
            return httpx.Response(200, json={"access_token": "tok"})
        return httpx.Response(200, content=json.dumps(body).encode())

    async def probe() -> ProbeReport:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer), timeout=5) as client:
            values = {"login_email": "e@x", "password": "p", "channel_id": -100, "days": 90}
            return await http_probe.run_probe(client, "http://api.test", profile_at(None).probe, values)

    report = asyncio.run(probe())
    if report.ok:
        data = body["data"]
        total = data["total_posts_analyzed"]
        assert type(total) is int and total > 0 and report.count == total
        assert isinstance(data["best_times"], list) and data["best_times"]
        assert report.modes in (("advanced",), ("legacy",))
    else:
        assert report.error or report.failed or not report.data_present


LINE_PARTS = st.sampled_from(
    [
        "ERROR",
        "error",
        "[CRITICAL]",
        '"level": "error"',
        '"LEVEL":"Fatal"',
        '"severity" :\t"critical"',
        "x" * 1500,
        "Getting posting time metrics for channel",
        "é",
        "\t",
        "\r",
        "\x00",
        "Feature flags - Advanced: True, Time-weighting: False, Content-type: True",
        " ",
        "{",
        "\\",
    ]
)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(LINE_PARTS, max_size=6).map("".join), min_size=1, max_size=30))
def test_the_hosts_verdict_on_each_log_line_matches_the_rule(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str]
) -> None:
    """The awk program on the host and is_error() here agree, line by line, however long the line."""
    from console.config.model import Host
    from console.transport.local import LocalTransport

    log = tmp_path_factory.mktemp("fuzz") / "app.log"
    log.write_bytes("".join(line.replace("\n", " ") + "\n" for line in lines).encode())
    read = asyncio.run(
        logs.read_lines(
            LocalTransport(Host("local")), logs.file_source(str(log), 1000), 1000, rules=LOG, timeout=30, what="log"
        )
    )
    assert read.total == len(lines) and len(read.lines) == len(lines)
    for line, judged in zip(lines, read.lines, strict=True):
        whole = line.removesuffix("\r")  # awk drops one CR at the end, as a CRLF line has
        assert judged.error == LOG.is_error(whole), (whole[:200], judged)
        assert judged.request == (REQUEST_LINE in whole)
        assert judged.length == len(whole.encode())


async def test_the_dashboard_says_not_running_when_the_service_process_is_gone(make_simulation: MakeSimulation) -> None:
    """The API stopped on a host that answers: the panel says NOT RUNNING and where, beside
    its CANNOT ASSESS — never a quiet "?" in the process row alone."""
    from console.simulator import ctl
    from screens.app import RollbackConsole
    from screens.widgets.env_panel import EnvPanel

    sim = make_simulation()
    app = RollbackConsole(load_config(sim.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.screen.query_one("#env-staging", EnvPanel)
        note = panel.query_one(".drift-note")

        async def shown(what: str) -> str:
            deadline = time.monotonic() + 60
            while what not in str(note.render()) or not note.display:
                assert time.monotonic() < deadline, f"no {what!r} within 60 s: {note.render()!r}"
                await pilot.pause(0.1)
            return str(note.render())

        deadline = time.monotonic() + 60
        while app.live["staging"].snapshot is None:
            assert time.monotonic() < deadline, "no first round"
            await pilot.pause(0.1)
        assert not note.display, "a running service has no note"
        with open(os.devnull, "w") as quiet:
            ctl.stop(sim.host("staging").home, out=quiet)
        await app.probe_now("staging")
        text = await shown("NOT RUNNING")
        assert text.startswith(" NOT RUNNING  staging-1: the pid command finds no service process"), text
        recommendation = str(panel.query_one(".recommendation").render())
        assert recommendation.startswith(" CANNOT ASSESS ") and "no action" not in recommendation.lower()
