"""Bad input and faults through `status` and `check`: a clear message, the right exit code, no crash.

Each test runs the real CLI and reads what the operator would read. Answers the simulator
never gives (HTTP 500, non-JSON, giant or endless bodies) come from a small real HTTP
server; hosts that cannot be reached are real closed ports, silent sockets and a real sshd.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.simulator.world import Simulation
from tests.fixtures_ssh import SSHServer, free_port
from tests.phase4 import ADVANCED, CONTENT_TYPE
from tests.status_support import (
    GOOD_PASSWORD,
    FakeAPI,
    checks_of,
    environment_of,
    fake_environment,
    run_cli,
    run_cli_many,
    set_flags,
    sim_secrets,
    toml_str,
    write_fake_env_files,
)

MakeSimulation = Callable[..., Simulation]

# --- the config itself --------------------------------------------------------------------------

MINIMAL_ENV = """\
[environments.staging]
kind = "staging"
hosts = ["local"]
api_url = "http://127.0.0.1:10300"
channel_id = -100
login_email = "ops@example.com"
password = { env = "PROBE_PASSWORD" }
env_file = "/srv/analyticbot/.env.staging"
restart_command = "systemctl restart analyticbot-api"
pid_command = "pgrep -f uvicorn"
log_file = "/var/log/analyticbot/staging.log"
"""


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_malformed_toml_names_file_and_line_exit_2(tmp_path: Path, json_flag: list[str]) -> None:
    config = tmp_path / "console.toml"
    config.write_text(MINIMAL_ENV.replace('kind = "staging"', 'kind = "staging'))
    result = run_cli(config, "status", *json_flag)
    assert result.code == 2 and result.stdout == ""  # nothing half-written on stdout, even with --json
    assert f"{config}:2: not valid TOML" in result.stderr


def test_missing_and_wrong_keys_are_each_reported_with_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "console.toml"
    text = MINIMAL_ENV.replace('api_url = "http://127.0.0.1:10300"\n', "").replace(
        'pid_command = "pgrep -f uvicorn"', "pid_command = 42"
    )
    config.write_text(text)
    for args in (["status"], ["check", "staging", "--json"]):
        result = run_cli(config, *args)
        assert result.code == 2 and result.stdout == "", result
        assert f"{config}:1: environments.staging.api_url: required key is missing" in result.stderr
        assert f"{config}:9: environments.staging.pid_command: expected a string, got an integer 42" in result.stderr


def test_no_config_and_unknown_environment_exit_2(tmp_path: Path, simulation: Simulation) -> None:
    missing = run_cli(tmp_path / "nowhere.toml", "status")
    assert missing.code == 2 and f"no config at {tmp_path / 'nowhere.toml'}" in missing.stderr
    unknown = run_cli(simulation.config_path, "check", "prod", "--json")
    assert unknown.code == 2 and unknown.stdout == ""
    assert "no environment 'prod'" in unknown.stderr and "known: staging, production" in unknown.stderr
    usage = run_cli(simulation.config_path, "check")  # ENV is required
    assert usage.code == 2 and "ENV" in usage.stderr


# --- what a host holds: env file and log ------------------------------------------------------------


def test_malformed_env_file_is_reported_by_line_and_flags_still_read(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    set_flags(host, advanced=False)
    original = host.env_file.read_bytes()
    lines = original.count(b"\n") + 1
    leaked = "postgresql://analyticbot:hunter2-leaked@db.internal:5432/analytic_bot"
    host.env_file.write_bytes(
        original
        + b"\nTHIS LINE IS NOT AN ASSIGNMENT\n"
        # An unterminated quote swallows what follows: its value must not be shown.
        + f'JWT_SECRET_KEY="unterminated-value\nDATABASE_URL {leaked}\n'.encode()
        # A stray non-UTF-8 byte in a flag value: the flag reads false, and nothing crashes.
        + f"{CONTENT_TYPE}=tru\xff\n".encode("latin-1")
    )
    status, text, check = run_cli_many(
        sim.config_path,
        ["status", "--json"],
        ["status"],
        ["check", "staging", "--json"],
        secrets=[*sim_secrets(sim), "hunter2-leaked", "unterminated-value"],
    )
    flags = environment_of(status.json, "staging")["hosts"][0]["flags"]
    assert flags["env_file_problems"] == [
        f"line {lines + 1}: cannot parse 'THIS…' (value not shown)",
        f"line {lines + 2}: cannot parse 'JWT_SECRET_KEY=…' (value not shown)",
        f"line {lines + 3}: cannot parse 'DATABASE_URL…' (value not shown)",
    ]
    assert flags["env_file"] == {"advanced": False, "time_weighting": True, "content_type": False}
    assert flags["env_file_lines"][-1] == {"line": lines + 4, "text": f"{CONTENT_TYPE}=tru\ufffd"}
    assert f"env file: line {lines + 1}: cannot parse 'THIS…'" in text.stdout
    assert "DRIFT" in text.stdout  # the process still runs with the old flags
    assert check.code == 1 and checks_of(check.json)["flags"]["passed"] is False


def test_binary_garbage_and_a_5_mb_line_in_the_log_stay_bounded(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    garbage = bytes(range(256)) * 256 + b"\x00\xff\xfe" * 1000
    with open(host.log_file, "ab") as fh:
        fh.write(garbage.replace(b"ERROR", b"") + b"\n" + b"A" * (5 * 1024 * 1024) + b"\n")
    status = run_cli(sim.config_path, "status", "staging", "--json", secrets=sim_secrets(sim))
    h = environment_of(status.json, "staging")["hosts"][0]
    # The probe's own request logged a fresh flag line after the garbage: it is found.
    assert h["flags"]["log"] == {"advanced": True, "time_weighting": True, "content_type": True}
    assert "Feature flags - Advanced: True" in h["flags"]["log_line"]
    assert h["flags"]["errors"] == {} and h["logs"]["error"] is None
    assert h["logs"]["window"] <= 100 and h["logs"]["requests"] >= 1
    assert len(status.stdout) < 100_000  # the 5 MB line did not come along
    # An endless line still being written, and no request since (no password, so no login):
    # the window is still whole lines, so the flag line before the 5 MB of "B" is found.
    with open(host.log_file, "ab") as fh:
        fh.write(b"B" * (5 * 1024 * 1024))
    no_login = sim.directory / "no-login.toml"
    no_login.write_text(sim.config_path.read_text().replace("secrets/staging.password", "secrets/missing.password"))
    status = run_cli(no_login, "status", "staging", "--json")
    h = environment_of(status.json, "staging")["hosts"][0]
    assert h["flags"]["log"] == {"advanced": True, "time_weighting": True, "content_type": True}
    assert h["logs"]["window"] > 2 and len(status.stdout) < 100_000
    assert status.code == 1  # no password: the recommendations could not be tested


# --- a stand-in API answering wrongly ---------------------------------------------------------------


@pytest.fixture
def fake_api() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        yield api


@pytest.fixture
def service_process() -> Iterator[int]:
    """A real process standing in for the service: its /proc environ and RSS are read."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), ADVANCED: "true"}
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env=env)
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


MODES = ("ok", "http500", "unauthorized", "nonjson", "giant", "stalled", "drip")
# Generous: the well-behaved modes must answer in time, and pass the response-time check,
# even on a loaded machine (seven CLI processes at once here, each fetching the 6 MB body
# from a server in this process: 4 s was once too short in CI).
PROBE_TIMEOUT_S = 8.0


def test_wrong_answers_from_the_api_each_get_a_sentence(
    tmp_path: Path, fake_api: FakeAPI, service_process: int
) -> None:
    env_file, log = write_fake_env_files(tmp_path)
    good, wrong = tmp_path / "good.password", tmp_path / "wrong.password"
    good.write_text(GOOD_PASSWORD + "\n")
    wrong.write_text("wrong-s3cret-in-file\n")
    parts = [f"[thresholds]\nprobe_timeout_s = {PROBE_TIMEOUT_S}\nresponse_time_ok_s = {PROBE_TIMEOUT_S}\n"]
    for mode in MODES:
        password = wrong if mode == "unauthorized" else good
        parts.append(
            fake_environment(
                mode,
                api_url=fake_api.url(mode),
                env_file=env_file,
                log_file=log,
                pid=service_process,
                password_file=password,
            )
        )
    # A password file that is not there: the probes that need no password still run.
    # (Its log comes from a command, as `journalctl -u analyticbot-api -n {lines}` would give it.)
    parts.append(
        fake_environment(
            "nosecret",
            api_url=fake_api.url("ok"),
            env_file=env_file,
            log_file=log,
            pid=service_process,
            password_file=tmp_path / "missing.password",
            log_command=f"tail -n {{lines}} {log}",
        )
    )
    config = tmp_path / "console.toml"
    config.write_text("\n".join(parts))
    secrets = [GOOD_PASSWORD, "wrong-s3cret-in-file", "tok-123"]

    checked = ("ok", "http500", "unauthorized", "giant", "nosecret")
    status, text, *checks = run_cli_many(
        config, ["status", "--json"], ["status"], *(["check", m, "--json"] for m in checked), secrets=secrets
    )
    # Stalled (30 s) and endless (200 s) answers are cut at the probe timeout, not waited out.
    assert status.elapsed_s < 60, status.elapsed_s  # far below the 200 s an endless answer would take
    # Only the well-behaved API could be assessed; every other one says why not, and exit 1.
    assert status.code == 1 and status.stderr == ""
    recs = {e["environment"]: e["recommendation"] for e in status.json["environments"]}
    assert [name for name, r in recs.items() if r["assessed"]] == ["ok"], recs
    assert recs["ok"]["title"] == "No action: no symptom in the decision matrix"
    for name, r in recs.items():
        if name != "ok":
            assert r["action"] is None and r["title"].startswith("Cannot assess: local: "), r
    hosts = {e["environment"]: e["hosts"][0] for e in status.json["environments"]}

    ok = hosts["ok"]
    assert ok["probe"]["ok"] and ok["probe"]["modes"] == ["advanced"], ok["probe"]
    assert ok["health"]["healthy"] and ok["health"]["verdict"] is True, ok["health"]
    for h in hosts.values():  # what needs no HTTP is read whatever the API does
        assert h["flags"]["env_file"] == h["flags"]["process"] == h["flags"]["log"]
        assert h["memory"]["pid"] == service_process and h["memory"]["rss_mb"] > 1

    bad = hosts["http500"]
    live, ready = bad["health"]["endpoints"]["liveness"], bad["health"]["endpoints"]["readiness"]
    assert live["status"] == 500 and live["ok"] is False and live["error"] == "GET /health: HTTP 500"
    assert ready["status"] == 500 and ready["ok"] is False and ready["error"] == "GET /health/ready: HTTP 500"
    assert bad["probe"]["login_error"].startswith("POST /auth/login: HTTP 500, body (text/html) is not JSON")

    denied = hosts["unauthorized"]["probe"]
    assert denied["login_status"] == 401
    assert denied["login_error"] == "POST /auth/login: 401, ops-probe@analyticbot.example was refused"

    nonjson = hosts["nonjson"]
    assert nonjson["health"]["endpoints"]["liveness"]["error"] == (
        "GET /health: HTTP 200, body (text/html) is not JSON (Expecting value at line 1 column 1): "
        "'<html><body>It works!</body></html>'"
    )
    assert nonjson["probe"]["error"].endswith(
        "HTTP 200, body (text/html) is not JSON (Expecting value at line 1 column 1): '<html>Bad Gateway</html>'"
    )

    giant = hosts["giant"]["probe"]
    assert giant["error"].endswith(": response body larger than 4 MB") and giant["status"] is None

    for mode in ("stalled", "drip"):  # (a host slow on every endpoint: test_probes)
        error = hosts[mode]["probe"]["error"]
        assert error == f"GET /analytics/predictive/best-times/-100: no answer within {PROBE_TIMEOUT_S}s (timeout)"
        assert hosts[mode]["health"]["healthy"]

    nosecret = hosts["nosecret"]
    assert nosecret["probe"]["login_error"] == (
        f"login: cannot read secret file {tmp_path / 'missing.password'}: No such file or directory"
    )
    assert nosecret["health"]["healthy"] and nosecret["flags"]["log"] == nosecret["flags"]["env_file"]
    assert nosecret["logs"]["window"] == 3 and nosecret["logs"]["requests"] == 1

    assert "UNREACHABLE" not in text.stdout and "POST /auth/login: 401" in text.stdout

    by_env = {c.json["environment"]: c for c in checks}
    assert by_env["ok"].code == 0, by_env["ok"]
    for name, c in by_env.items():
        if name != "ok":
            assert c.code == 1, c
    failed = {name: {k for k, v in checks_of(c.json).items() if not v["passed"]} for name, c in by_env.items()}
    assert failed["http500"] == {"health", "recommendations", "response_time"}
    assert failed["unauthorized"] == {"recommendations", "response_time"}
    assert failed["nosecret"] == {"recommendations", "response_time"}
    assert checks_of(by_env["unauthorized"].json)["recommendations"]["detail"].startswith("POST /auth/login: 401")
    assert "larger than 4 MB" in checks_of(by_env["giant"].json)["recommendations"]["detail"]


# --- hosts that cannot be reached -----------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (no SSH banner): a hung host."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def ssh_host(name: str, address: str, port: int, **extra: str) -> str:
    lines = [f"[hosts.{name}]", f"address = {toml_str(address)}", f"port = {port}", "connect_timeout = 1"]
    lines += [f"{k} = {toml_str(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def test_dead_hosts_show_as_unreachable_fast_and_never_stall_the_others(
    simulation: Simulation, silent_port: int, tmp_path: Path
) -> None:
    refused = free_port()  # nothing listens there any more
    config = tmp_path / "console.toml"
    config.write_text(
        simulation.config_path.read_text()
        # A long probe timeout: a dead host that stalled the run would show as 30 s.
        + "\n[thresholds]\nprobe_timeout_s = 30\n\n"
        + ssh_host("refused", "127.0.0.1", refused)
        + ssh_host("silent", "127.0.0.1", silent_port)
        + ssh_host("blackhole", "10.255.255.1", 22)
        + fake_environment(
            "dead",
            api_url="http://127.0.0.1:10300",
            env_file=tmp_path / ".env",
            log_file=tmp_path / "log",
            pid=1,
            password_file=tmp_path / "pw",
            hosts='["refused", "silent", "blackhole"]',
        )
        + '[environments.dead.database]\ndsn = { env = "NO_SUCH_DSN" }\nrollback_script = "/x.sql"\n'
    )
    status, text, check = run_cli_many(
        config, ["status", "--json"], ["status"], ["check", "dead", "--json"], secrets=sim_secrets(simulation)
    )
    assert status.elapsed_s < 25, status.elapsed_s  # connect_timeout 1 s, not the 30 s probe timeout
    assert status.code == 1 and status.stderr == "" and text.code == 1  # "dead" cannot be assessed
    dead = environment_of(status.json, "dead")
    assert not dead["recommendation"]["assessed"] and dead["recommendation"]["action"] is None
    assert dead["recommendation"]["title"].startswith("Cannot assess: refused: unreachable — ssh ")
    assert "No action" not in text.stdout.split("dead (production)")[1]
    assert "recommended: CANNOT ASSESS" in text.stdout
    by_name = {h["host"]: h for h in dead["hosts"]}
    assert all(not h["reachable"] for h in by_name.values())
    assert "connection refused" in by_name["refused"]["unreachable"]
    assert by_name["silent"]["unreachable"].endswith(f"@127.0.0.1:{silent_port}: connection timed out after 1s")
    assert by_name["blackhole"]["unreachable"].startswith("ssh ")
    # Out of reach is not known to be sick: no health signal at all, rather than a guessed one.
    assert dead["signals"]["unhealthy"] is None and dead["database"]["error"]
    # The other environments are reported in full, from the same run.
    for name in ("staging", "production"):
        (h,) = environment_of(status.json, name)["hosts"]
        assert h["reachable"] and h["probe"]["ok"] and h["flags"]["log"] is not None
    assert text.stdout.count("UNREACHABLE") == 3 and "advanced mode · 629 posts" in text.stdout
    assert check.code == 1
    assert all(not c["passed"] and "unreachable" in c["detail"] for c in check.json["checks"])


@pytest.mark.ssh
def test_unknown_and_changed_host_keys_are_refused_with_the_fingerprint(
    sshd: SSHServer, ssh_known_hosts_empty: Path, ssh_known_hosts_wrong: Path, tmp_path: Path
) -> None:
    common = {"user": sshd.user, "key_file": sshd.key_file}
    hosts = ssh_host("unknown", sshd.address, sshd.port, known_hosts=str(ssh_known_hosts_empty), **common)
    hosts += ssh_host("changed", sshd.address, sshd.port, known_hosts=str(ssh_known_hosts_wrong), **common)
    envs = ""
    for name in ("unknown", "changed"):
        envs += (
            fake_environment(
                f"env-{name}",
                api_url="http://127.0.0.1:10300",
                env_file=tmp_path / ".env",
                log_file=tmp_path / "log",
                pid=1,
                password_file=tmp_path / "pw",
                hosts=f'["{name}"]',
            )
            + "\n"
        )
    config = tmp_path / "console.toml"
    config.write_text(hosts + envs)
    status, text, check = run_cli_many(config, ["status", "--json"], ["status"], ["check", "env-changed"])
    assert status.code == text.code == 1  # an unknown host key: nothing there could be assessed
    for name in ("env-unknown", "env-changed"):
        rec = environment_of(status.json, name)["recommendation"]
        assert rec["title"].startswith(f"Cannot assess: {name[4:]}: unreachable — ssh "), rec["title"]
    unknown = environment_of(status.json, "env-unknown")["hosts"][0]["unreachable"]
    changed = environment_of(status.json, "env-changed")["hosts"][0]["unreachable"]
    assert "host key is unknown" in unknown and sshd.host_key_fingerprint in unknown and "ssh-keyscan" in unknown
    assert "host key has CHANGED" in changed and sshd.host_key_fingerprint in changed
    assert "man-in-the-middle" in changed
    assert text.stdout.count("UNREACHABLE") == 2 and sshd.host_key_fingerprint in text.stdout
    assert check.code == 1 and "FAIL" in check.stdout and sshd.host_key_fingerprint in check.stdout


def test_values_that_only_go_wrong_at_run_time_get_a_sentence(tmp_path: Path, service_process: int) -> None:
    """A host's vars that make no URL, a DSN secret that is not a URL: said, not a traceback."""
    env_file, log = write_fake_env_files(tmp_path)
    password = tmp_path / "pw"
    password.write_text(GOOD_PASSWORD)
    dsn = tmp_path / "dsn"
    dsn.write_text("postgresql://analyticbot:dsn-s3cret@[::1/analytic_bot\n")
    config = tmp_path / "console.toml"
    config.write_text(
        '[hosts.port-out-of-range]\naddress = "local"\nvars = { api_port = "99999" }\n\n'
        '[hosts.port-not-a-number]\naddress = "local"\nvars = { api_port = "x1" }\n\n'
        + fake_environment(
            "odd",
            api_url="http://127.0.0.1:{api_port}",
            env_file=env_file,
            log_file=log,
            pid=service_process,
            password_file=password,
            hosts='["port-out-of-range", "port-not-a-number"]',
        )
        + f'[environments.odd.database]\ndsn = {{ file = {toml_str(dsn)} }}\nrollback_script = "/x.sql"\n'
    )
    status, check = run_cli_many(
        config, ["status", "--json"], ["check", "odd", "--json"], secrets=[GOOD_PASSWORD, "dsn-s3cret"]
    )
    assert status.code == 1 and check.code == 1
    env = environment_of(status.json, "odd")
    assert not env["recommendation"]["assessed"]
    out_of_range, not_a_number = env["hosts"]
    out_of_range_health = out_of_range["health"]["endpoints"]["liveness"]["error"]
    assert out_of_range_health.startswith("GET /health: cannot connect to 127.0.0.1:99999 (")
    assert "port must be 0-65535" in out_of_range_health
    assert not_a_number["health"]["endpoints"]["liveness"]["error"] == "GET /health: invalid URL: Invalid port: 'x1'"
    assert not_a_number["probe"]["login_error"] == "POST /auth/login: invalid URL: Invalid port: 'x1'"
    assert env["database"]["error"] == f"database: the DSN in file {dsn} is not a valid URL: Invalid IPv6 URL"
    for h in env["hosts"]:  # the rest of each host was still probed
        assert h["flags"]["process"] is not None and h["memory"]["rss_mb"]
