"""Helpers for the engine tests (tests/test_engine_*.py): the CLI as a subprocess, the
engine in-process with a scripted operator, and what an operator would look at afterwards
(the env file, the running process, the log, the database, the journal).

Everything here drives or reads real parts; nothing of the console is replaced.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from console.config import load_config
from console.config.model import Environment
from console.engine.runner import Decision, Failure, abort_on_failure
from console.engine.session import Engine, RunOutcome, RunRequest
from console.envfile import parse_env
from console.journal import Journal, RunSummary
from console.plans import PLANS
from console.simulator.configfile import SSHTarget
from console.simulator.world import SimHost, Simulation
from tests.fixtures_ssh import SSHServer
from tests.phase4 import FLAG_NAMES, LOG, RULES, FlagSet

MakeSimulation = Callable[..., Simulation]
CLI_TIMEOUT_S = 120.0
RUN_ID = re.compile(r"\br-\d{8}-\d{6}-[0-9a-f]{4}\b")


# --- the command line ----------------------------------------------------------------


def cli_args(config: str | os.PathLike[str], *args: str) -> list[str]:
    return [sys.executable, "-m", "console", "--config", str(config), *args]


def cli(
    config: str | os.PathLike[str],
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = CLI_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """``rollback-console --config CONFIG ARGS…`` as an operator runs it: no terminal."""
    return subprocess.run(
        cli_args(config, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def cli_start(config: str | os.PathLike[str], *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_args(config, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )


def run_id_in(text: str) -> str:
    found = RUN_ID.findall(text)
    assert found, f"no run id in:\n{text}"
    return found[-1]


# --- what the operator sees on the host --------------------------------------------------


def env_file_flags(host: SimHost) -> FlagSet:
    return parse_env(host.env_file.read_bytes(), str(host.env_file)).flags(RULES)


def process_flags(host: SimHost) -> FlagSet:
    pid = host.pid()
    assert pid is not None, f"{host.name} is not running"
    items = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    environ = dict(i.decode().split("=", 1) for i in items if b"=" in i)
    return FlagSet.from_environ(RULES, {n: environ.get(n) for n in FLAG_NAMES})


def log_flags(host: SimHost) -> FlagSet | None:
    latest = LOG.latest_flags(host.log_file.read_text(encoding="utf-8").splitlines(), RULES)
    return latest[0] if latest else None


def best_times(sim: Simulation, host: SimHost) -> dict[str, Any]:
    """The recommendations as the runbook's curl gets them: log in, then best-times."""
    import httpx

    from console.simulator.configfile import LOGIN_EMAIL

    with httpx.Client(timeout=15.0, trust_env=False) as client:
        login = client.post(
            f"{host.api_url}/auth/login",
            json={"email": LOGIN_EMAIL, "password": sim.password(host.env), "remember_me": False},
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        r = client.get(
            f"{host.api_url}/analytics/predictive/best-times/{sim.channel_id}?days=90",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 200, r.text
    return r.json()


def set_flags_and_restart(sim: Simulation, host: SimHost, flags: FlagSet) -> None:
    """Put the service in a given state by hand, as an operator would before an incident."""
    env = parse_env(host.env_file.read_bytes(), str(host.env_file))
    host.env_file.write_bytes(env.encoded(env.with_flags(flags.by_env(), RULES)))
    result = sim.run(host.env, "restart_command", host.index)
    assert result.returncode == 0, result.stdout + result.stderr


def backups(host: SimHost) -> list[Path]:
    return sorted(host.env_file.parent.glob(host.env_file.name + ".rollback-console.*.bak"))


# --- the engine in-process ----------------------------------------------------------------


@dataclass
class Operator:
    """A scripted operator answering failed steps in turn; remembers every failure shown.

    An answer is a Decision, or a callable taking the Failure (to look around first)."""

    answers: list[Decision | Callable[[Failure], Decision]] = field(default_factory=list)
    seen: list[Failure] = field(default_factory=list)

    async def __call__(self, failure: Failure) -> Decision:
        self.seen.append(failure)
        if not self.answers:
            return Decision("abort", "the script has no more answers")
        answer = self.answers.pop(0)
        if callable(answer):
            answer = await asyncio.to_thread(answer, failure)  # may run blocking checks
        return answer


async def run_engine(
    config_path: str | os.PathLike[str],
    action: str,
    environment: str = "staging",
    decide: Operator | None = None,
    **request: Any,
) -> RunOutcome:
    """One rollback through the Engine, as the console's wizard drives it."""
    engine = Engine(load_config(config_path), plans=PLANS)
    try:
        run = await engine.prepare(RunRequest(environment, action, **request))
        return await engine.execute(run.confirm(), decide or abort_on_failure)
    finally:
        await engine.close()


def journal_of(sim: Simulation) -> Journal:
    return Journal(sim.directory / "journal.jsonl")


def records(run: RunSummary, type_: str, step: str | None = None) -> list[dict[str, Any]]:
    return [
        r for r in run.records if r["type"] == type_ and (step is None or (r.get("data") or {}).get("step") == step)
    ]


def wait_for_record(
    journal: Journal,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
    proc: subprocess.Popen[str] | None = None,
) -> dict[str, Any]:
    """The first journal record matching ``predicate``; fails early, with its output, if
    ``proc`` (the console writing it) exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in journal.records():
            if predicate(r):
                return r
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the console exited ({proc.returncode}) first:\n{out}\n{err}")
        time.sleep(0.02)
    raise AssertionError(f"no matching journal record within {timeout}s")


def ssh_target(sshd: SSHServer) -> SSHTarget:
    return SSHTarget(sshd.address, sshd.port, sshd.user, sshd.key_file, sshd.known_hosts)


def environment(sim: Simulation, name: str = "staging") -> Environment:
    return load_config(sim.config_path).environment(name)


def add_to_config(sim: Simulation, text: str) -> None:
    with open(sim.config_path, "a", encoding="utf-8") as fh:
        fh.write("\n" + text.strip() + "\n")


# --- the database ---------------------------------------------------------------------------


async def db_state(dsn: str) -> dict[str, Any]:
    """What a DBA would compare before and after: posts' columns, its indexes (with their
    definitions), every row's content-type values, and the applied migrations."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        columns = [
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'posts' ORDER BY ordinal_position"
            )
        ]
        indexes = {
            r["indexname"]: r["indexdef"]
            for r in await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'posts'")
        }
        content = None
        if "has_video" in columns:
            content = [tuple(r) for r in await conn.fetch("SELECT id, has_video, has_media FROM posts ORDER BY id")]
        migrations = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
        count = await conn.fetchval("SELECT count(*) FROM posts")
    finally:
        await conn.close()
    return {"columns": columns, "indexes": indexes, "content": content, "migrations": migrations, "rows": count}


# --- a webhook receiver ------------------------------------------------------------------------


class Webhook:
    """A real local HTTP server standing in for Slack: records every POST body.

    ``status`` is what it answers; ``delay_s`` how long it takes to answer."""

    def __init__(self, status: int = 200, delay_s: float = 0.0) -> None:
        self.status = status
        self.delay_s = delay_s
        self.posts: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.posts.append({"path": self.path, "json": json.loads(body or b"{}")})
                time.sleep(outer.delay_s)
                try:
                    self.send_response(outer.status)
                    self.send_header("content-type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if outer.status < 300 else b"no_service")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a slow webhook: the console gave up waiting, as it should

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXXsecrettoken"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def texts(self) -> list[str]:
        return [str(p["json"].get("text", "")) for p in self.posts]
