"""Helpers for the status/check/probe tests: run the real CLI, edit a simulated host, stand-in APIs.

Everything here drives real parts: the CLI as a subprocess, the simulator's own env files
and restart commands, and a small real HTTP server for answers the simulator never gives.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from console.envfile import parse_env
from console.simulator.world import SimHost, Simulation
from tests.phase4 import ADVANCED, CONTENT_TYPE, RULES, TIME_WEIGHTING

CLI_TIMEOUT_S = 60
FLAG_KEYS = {"advanced": ADVANCED, "time_weighting": TIME_WEIGHTING, "content_type": CONTENT_TYPE}


# --- the CLI as a user runs it ---------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    elapsed_s: float

    @property
    def json(self) -> Any:
        """stdout as ONE JSON document (json.loads refuses anything before or after it)."""
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"$ rollback-console {' '.join(self.args)}  → exit {self.code}\n{self.stdout}\n{self.stderr}"


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    # A strict UTF-8 stdout, as on an operator's terminal (LANG=en_US.UTF-8): undecodable
    # bytes from a host must not reach print() as surrogates.
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("ROLLBACK_CONSOLE_CONFIG", None)
    return env


def _command(config: Path | str, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "console", "--config", str(config), *args]


def _finish(args: Sequence[str], code: int, out: str, err: str, started: float, secrets: Iterable[str]) -> CliResult:
    result = CliResult(tuple(args), code, out, err, time.monotonic() - started)
    assert "Traceback" not in out + err, f"the command crashed:\n{result}"
    for secret in secrets:
        if secret:
            assert secret not in out + err, f"a secret reached the output of {args}"
    return result


def run_cli(config: Path | str, *args: str, secrets: Iterable[str] = ()) -> CliResult:
    """``rollback-console --config CONFIG ARGS…`` as a subprocess; never a traceback, never a secret."""
    started = time.monotonic()
    done = subprocess.run(
        _command(config, args), capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=cli_env(), cwd="/"
    )
    return _finish(args, done.returncode, done.stdout, done.stderr, started, secrets)


def run_cli_many(config: Path | str, *commands: Sequence[str], secrets: Iterable[str] = ()) -> list[CliResult]:
    """Several commands at once (each its own process), so slow probes overlap in a test."""
    return run_cli_pairs([(config, c) for c in commands], secrets=secrets)


def run_cli_pairs(pairs: Sequence[tuple[Path | str, Sequence[str]]], *, secrets: Iterable[str] = ()) -> list[CliResult]:
    """Like run_cli_many, each command with its own config."""
    secrets = list(secrets)
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            _command(config, c),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            cwd="/",
        )
        for config, c in pairs
    ]
    results = []
    for (_, c), p in zip(pairs, procs, strict=True):
        try:
            out, err = p.communicate(timeout=CLI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        results.append(_finish(c, p.returncode, out, err, started, secrets))
    return results


def sim_secrets(sim: Simulation) -> list[str]:
    """The probe passwords and the database passwords of a simulation."""
    out = []
    for env in sim.environments:
        out.append(sim.password(env))
        dsn = sim.dsn(env)
        if dsn:
            out.append(urlsplit(dsn).password or "")
    return out


# --- a simulated host, changed the way an operator would ---------------------------------------


def set_flags(host: SimHost, **flags: bool) -> None:
    """Edit the env file as the console does: only the flag lines change."""
    env = parse_env(host.env_file.read_bytes(), str(host.env_file))
    host.env_file.write_bytes(env.encoded(env.with_flags({FLAG_KEYS[k]: v for k, v in flags.items()}, RULES)))


def restart(sim: Simulation, host: SimHost, key: str = "restart_command") -> None:
    """Run the config's own restart command for the host, as the runbook's step 4."""
    result = sim.run(host.env, key, host.index)
    assert result.returncode == 0, f"{key} failed: {result.stdout}\n{result.stderr}"


def environment_of(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """One environment of a ``status --json`` document."""
    (env,) = [e for e in doc["environments"] if e["environment"] == name]
    return env


def checks_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``check --json``'s checks by name."""
    return {c["check"]: c for c in doc["checks"]}


def local_twin(config_text: str) -> str:
    """The same config with every [hosts.*] reached locally instead of over SSH."""
    out, in_host = [], False
    for line in config_text.splitlines():
        if line.startswith("["):
            in_host = line.startswith("[hosts.")
        if in_host and re.match(r"(address|port|user|key_file|known_hosts|connect_timeout)\s*=", line):
            if line.startswith("address"):
                out.append('address = "local"')
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def toml_str(value: str | Path) -> str:
    return json.dumps(str(value))


# --- a stand-in API for answers the simulator never gives ---------------------------------------

GOOD_PASSWORD = "correct-horse-battery-staple"
FLAG_LINE = "[INFO] analyticbot.recommendations: 🎛️ Feature flags - Advanced: {}, Time-weighting: {}, Content-type: {}"


def best_times_body(advanced: bool = True) -> dict[str, Any]:
    combos = [{"day": "Tue", "hour": 9, "score": 0.9}] if advanced else []
    return {
        "success": True,
        "channel_id": -100,
        "analysis_type": "advanced" if advanced else "basic",
        "generated_at": "2025-11-21T00:00:00Z",
        "confidence_score": 0.8,
        "data": {
            "best_times": [{"hour": 9, "score": 0.9}],
            "best_days": [{"day": "Tue", "score": 0.9}],
            "hourly_engagement_trend": [],
            "daily_performance": [],
            "total_posts_analyzed": 120,
            "confidence": 0.8,
            "data_source": "database",
            "best_day_hour_combinations": combos,
            "content_type_recommendations": combos,
            "content_type_summary": {"video": 1} if advanced else None,
        },
    }


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # A real server listens with a backlog in the thousands (uvicorn: 2048); the default 5
    # overflows when several CLIs probe at once, and the kernel then resets connections.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a probe that hangs up on a giant or endless answer is expected here


class FakeAPI:
    """A real HTTP server on loopback that answers like the API, or in one chosen wrong way.

    The mode is the first path segment: ``http://127.0.0.1:PORT/<mode>`` is an api_url.
    ok · http500 · unauthorized (any password but GOOD_PASSWORD is refused) · nonjson ·
    giant (a 6 MB best-times body) · slow (nothing for 30 s, on every endpoint) ·
    stalled (best-times only: nothing for 30 s) · drip (best-times: a byte every 0.2 s).
    """

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.requests: list[tuple[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                api.handle(self, "GET")

            def do_POST(self) -> None:
                api.handle(self, "POST")

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}"

    def __enter__(self) -> FakeAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()

    # One request, in the chosen mode.
    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        _, mode, *rest = h.path.split("?")[0].split("/")
        path = "/" + "/".join(rest)
        self.requests.append((mode, f"{method} {path}"))
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}") if length else {}
        try:
            if mode == "slow" or (mode == "stalled" and path.startswith("/analytics")):
                self.stop_event.wait(30)
                return self.send(h, 200, {"status": "healthy"})
            if mode == "http500":
                if path == "/auth/login":
                    return self.send(h, 500, b"<html><body>500 Internal Server Error</body></html>", "text/html")
                return self.send(h, 500, {"detail": "Internal Server Error"})
            if mode == "nonjson" and path.startswith("/health"):
                return self.send(h, 200, b"<html><body>It works!</body></html>", "text/html")
            if mode == "drip" and path.startswith("/analytics"):
                return self.drip(h)
            if path == "/health":
                return self.send(
                    h, 200, {"status": "healthy", "timestamp": "t", "service": "analyticbot", "version": "7.5.0"}
                )
            if path == "/health/ready":
                components = {"database": {"status": "healthy"}}
                return self.send(
                    h, 200, {"ready": True, "timestamp": "t", "components": components, "dependencies_met": True}
                )
            if path == "/auth/login":
                if mode == "unauthorized" and body.get("password") != GOOD_PASSWORD:
                    return self.send(h, 401, {"detail": "Invalid credentials"})
                return self.send(
                    h,
                    200,
                    {"access_token": "tok-123", "refresh_token": "r", "token_type": "bearer", "expires_in": 1800},
                )
            if path.startswith("/analytics/predictive/best-times/"):
                if h.headers.get("Authorization") != "Bearer tok-123":
                    return self.send(h, 401, {"detail": "Not authenticated"})
                if mode == "nonjson":
                    return self.send(h, 200, b"<html>Bad Gateway</html>", "text/html")
                if mode == "giant":
                    return self.giant(h)
                return self.send(h, 200, best_times_body())
            return self.send(h, 404, {"detail": "Not Found"})
        except (BrokenPipeError, ConnectionResetError):
            return None  # the probe gave up on us: that is the point of some modes

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def giant(h: BaseHTTPRequestHandler) -> None:
        chunk = b'{"pad": "' + b"x" * (1024 * 1024) + b'"},'
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(2 + 6 * len(chunk)))
        h.end_headers()
        h.wfile.write(b"[")
        for _ in range(6):
            h.wfile.write(chunk)
        h.wfile.write(b"]")

    def drip(self, h: BaseHTTPRequestHandler) -> None:
        """Headers at once, then one byte every 0.2 s: no single read ever waits long."""
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "1000")
        h.end_headers()
        for _ in range(1000):
            if self.stop_event.wait(0.2):
                return
            h.wfile.write(b" ")
            h.wfile.flush()


def write_fake_env_files(directory: Path, flags: tuple[bool, bool, bool] = (True, True, True)) -> tuple[Path, Path]:
    """An env file and a log with one flag line, as a host of the stand-in API has them."""
    env_file = directory / ".env.production"
    env_file.write_text(
        "API_PORT=10300\n"
        + "".join(
            f"{name}={str(v).lower()}\n"
            for name, v in zip((ADVANCED, TIME_WEIGHTING, CONTENT_TYPE), flags, strict=True)
        )
    )
    log = directory / "production.log"
    log.write_text(
        "[INFO] analyticbot.recommendations: ⏰ Getting posting time metrics for channel -100 (90 days)\n"
        + FLAG_LINE.format(*flags)
        + "\n[INFO] analyticbot.recommendations: Using ADVANCED query with new features\n"
    )
    return env_file, log


def fake_environment(
    name: str,
    *,
    api_url: str,
    env_file: Path,
    log_file: Path,
    pid: int,
    password_file: Path,
    hosts: str = '["local"]',
    log_command: str | None = None,
) -> str:
    """A [environments.NAME] table for a host whose API is the stand-in and whose process is ``pid``.

    ``log_command`` (e.g. ``tail -n {lines} FILE``, a journalctl stand-in) replaces the log file."""
    return "\n".join(
        [
            f"[environments.{name}]",
            'kind = "production"',
            f"hosts = {hosts}",
            f"api_url = {toml_str(api_url)}",
            "channel_id = -100",
            'login_email = "ops-probe@analyticbot.example"',
            f"password = {{ file = {toml_str(password_file)} }}",
            f"env_file = {toml_str(env_file)}",
            'restart_command = "true"',
            f'pid_command = "echo {pid}"',
            f"log_command = {toml_str(log_command)}" if log_command else f"log_file = {toml_str(log_file)}",
            "",
        ]
    )
