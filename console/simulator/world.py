"""Simulation: lays out DIR, starts PostgreSQL and one API process per host, writes DIR/console.toml.

DIR/
  console.toml            the console's config (absolute paths: usable from any shell)
  state.json              what runs where (no secrets); read by `rollback-console fault`
  journal.jsonl           the console's audit journal (kept across runs)
  secrets/                <env>.password (probe login), <env>.dsn; mode 0600
  <env>/<env>-<i>/        one home per host:
      .env.<env>            the env file (flags + settings)
      service.json          which env file (the unit file's role)
      app/                  git checkout with the Phase 4 commit and infra/db/migrations/
      logs/<env>.log        application log (JSON lines in production, plain elsewhere)
      logs/service.log      stdout/stderr of the process (the journalctl analogue)
      run/                  pid file, environment saved at the last start
      build/build.json      what `ctl rebuild` built (whether the Phase 4 code is in it)
      faults.json           injected faults

Starting on an existing DIR starts afresh: leftovers of a previous run are stopped and
its homes, secrets and config are replaced; the journal is kept.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import json
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.config.model import expand
from console.simulator import ctl, database, faults, postgres, repo, state
from console.simulator.auth import password_hash
from console.simulator.configfile import EnvEntry, HostEntry, SSHTarget, render_config
from console.simulator.dataset import CHANNEL_ID, generate_posts
from console.simulator.guard import Guard
from console.simulator.homes import SimHost, command_prefix, free_ports, kind_of, make_home, write_secret
from console.simulator.state import SimulationError, inject_dir, is_running, load_state

DEFAULT_ENVIRONMENTS = ("staging", "production")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")

__all__ = [
    "DEFAULT_ENVIRONMENTS",
    "SSHTarget",
    "SimHost",
    "Simulation",
    "SimulationError",
    "inject_dir",
    "is_running",
    "kind_of",
    "load_state",
]


def _run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run, also from code that already runs inside an event loop (a fresh thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Simulation:
    """The simulated analyticbot: ``Simulation(DIR).start()`` … ``stop()`` (or use ``with``)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        environments: Sequence[str] = DEFAULT_ENVIRONMENTS,
        hosts: int = 1,
        database: bool | None = None,
        ssh: SSHTarget | None = None,
        cluster: postgres.PgCluster | None = None,
        channel_id: int = CHANNEL_ID,
        log_formats: dict[str, str] | None = None,
    ) -> None:
        """``database``: True requires PostgreSQL, False goes without, None uses it when available.
        ``cluster``: an already running cluster to create this simulation's databases in (not stopped here).
        ``log_formats``: per environment "json" or "plain" (default: json for production kinds)."""
        bad = [e for e in environments if not _NAME.match(e)]
        if bad or not environments or len(set(environments)) != len(environments):
            raise SimulationError(f"environment names must be distinct, lower-case identifiers: {list(environments)}")
        if not 1 <= hosts <= 50:
            raise SimulationError(f"hosts per environment must be 1..50, got {hosts}")
        self.directory = Path(directory).resolve()
        self.environments = tuple(environments)
        self.hosts_per_env = hosts
        self.ssh = ssh
        self.channel_id = channel_id
        self.python = sys.executable
        self.log_formats = {e: "json" if kind_of(e) == "production" else "plain" for e in environments}
        self.log_formats.update(log_formats or {})
        self._want_db = database
        self._shared_cluster = cluster
        self.cluster: postgres.PgCluster | None = None
        self.database_note: str | None = None  # why there is no database, when there is none
        self._hosts: dict[str, list[SimHost]] = {}
        self._db_names: dict[str, tuple[str, str]] = {}  # env → (database, role)
        self._guard: Guard | None = None
        self._lock_fd: int | None = None
        self._stop_lock = threading.Lock()
        self.started = False

    # --- public API ---------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.directory / "console.toml"

    @property
    def has_database(self) -> bool:
        return self.cluster is not None

    def hosts(self, env: str) -> list[SimHost]:
        try:
            return list(self._hosts[env])
        except KeyError:
            raise SimulationError(f"no environment {env!r} in this simulation ({', '.join(self._hosts)})") from None

    def host(self, env: str, index: int = 1) -> SimHost:
        hosts = self.hosts(env)
        if not 1 <= index <= len(hosts):
            raise SimulationError(f"{env} has hosts 1..{len(hosts)}, not {index}")
        return hosts[index - 1]

    def password(self, env: str) -> str:
        """The probe account's password (from its secret file)."""
        return (self.directory / "secrets" / f"{env}.password").read_text(encoding="utf-8").strip()

    def dsn(self, env: str) -> str | None:
        path = self.directory / "secrets" / f"{env}.dsn"
        return path.read_text(encoding="utf-8").strip() if path.exists() else None

    def database_name(self, env: str) -> str | None:
        return self._db_names.get(env, (None, None))[0]

    def inject(self, env: str, host: int | None = None, **values: Any) -> faults.Faults:
        """Set faults on one host (1-based) or on every host of ``env``; see faults.FAULTS."""
        result = faults.Faults()
        for h in [self.host(env, host)] if host else self.hosts(env):
            result = faults.update(h.home, values)
        return result

    def clear(self, env: str, host: int | None = None) -> None:
        for h in [self.host(env, host)] if host else self.hosts(env):
            faults.update(h.home, {}, clear=True)

    def command(self, env: str, key: str, host: int = 1) -> str:
        """A command of the config (``restart_command``, ``pid_command``, …) expanded for one host."""
        from console.config import load_config

        environment = load_config(self.config_path).environment(env)
        template = getattr(environment, key)
        if template is None:
            raise SimulationError(f"{env} has no {key}")
        return expand(template, environment.hosts[host - 1])

    def run(self, env: str, key: str, host: int = 1, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command of the config as the console would (through /bin/sh)."""
        return subprocess.run(
            ["/bin/sh", "-c", self.command(env, key, host)], capture_output=True, text=True, timeout=timeout
        )

    # --- start --------------------------------------------------------------------

    def start(self) -> Simulation:
        if self.started:
            raise SimulationError(f"the simulation in {self.directory} is already started")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = state.lock(self.directory)
        try:
            state.clear_previous(self.directory)
            self._write_state()  # first, so that a run that fails half-way is cleaned by the next
            self._guard = Guard()
            self._start_database()
            self._layout()
            self._write_config()
            self._start_services()
        except BaseException:
            self.stop()
            raise
        self.started = True
        return self

    def __enter__(self) -> Simulation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_database(self) -> None:
        if self._want_db is False:
            self.database_note = "no database (disabled)"
            return
        reason = postgres.available()
        if reason:
            if self._want_db:
                raise SimulationError(f"PostgreSQL is required but unavailable: {reason}")
            self.database_note = f"no database: {reason}"
            return
        if self._shared_cluster is not None:
            self.cluster = self._shared_cluster
        else:
            self.cluster = postgres.PgCluster(guard=self._guard).start()
        suffix = "" if self._shared_cluster is None else "_" + secrets.token_hex(3)
        for env in self.environments:
            slug = env.replace("-", "_")
            self._db_names[env] = (f"analytic_bot_{slug}{suffix}", f"analyticbot_{slug}{suffix}")

    async def _seed_databases(self, passwords: dict[str, str]) -> None:
        import asyncpg

        assert self.cluster is not None
        posts = generate_posts(self.channel_id)
        for env, (db, role) in self._db_names.items():
            await self.cluster.create_role(role, passwords[env])
            await self.cluster.create_database(db, owner=role)
            conn = await asyncpg.connect(self.cluster.dsn(role, passwords[env], db), timeout=10)
            try:
                await database.seed(conn, self.channel_id, posts)
            finally:
                await conn.close()

    def _layout(self) -> None:
        secrets_dir = self.directory / "secrets"
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        ports = iter(free_ports(len(self.environments) * self.hosts_per_env))
        db_passwords = {env: secrets.token_urlsafe(18) for env in self._db_names}
        if self.cluster is not None:
            _run_async(self._seed_databases(db_passwords))
        origin = self.directory / "origin"  # the release repository every host checks out
        repo.create(origin)
        for env in self.environments:
            password = secrets.token_urlsafe(16)
            write_secret(secrets_dir / f"{env}.password", password)
            dsn = None
            if env in self._db_names and self.cluster is not None:
                db, role = self._db_names[env]
                dsn = self.cluster.dsn(role, db_passwords[env], db)
                write_secret(secrets_dir / f"{env}.dsn", dsn)
            jwt_secret = secrets.token_hex(32)
            self._hosts[env] = []
            for i in range(1, self.hosts_per_env + 1):
                host = SimHost(env, i, self.directory / env / f"{env}-{i}", next(ports))
                make_home(
                    host,
                    origin=origin,
                    dsn=dsn,
                    password_sha256=password_hash(password),
                    jwt_secret=jwt_secret,
                    log_format=self.log_formats[env],
                    channel_id=self.channel_id,
                )
                self._hosts[env].append(host)

    def _write_config(self) -> None:
        entries = [
            EnvEntry(
                name=env,
                kind=kind_of(env),
                hosts=[HostEntry(h.name, h.home, h.api_port) for h in self._hosts[env]],
                channel_id=self.channel_id,
                password_file=self.directory / "secrets" / f"{env}.password",
                dsn_file=(self.directory / "secrets" / f"{env}.dsn") if env in self._db_names else None,
            )
            for env in self.environments
        ]
        text = render_config(
            directory=self.directory,
            environments=entries,
            python=self.python,
            ssh=self.ssh,
            command_prefix=command_prefix(self.python),
        )
        self.config_path.write_text(text, encoding="utf-8")
        self._write_state()

    def _write_state(self) -> None:
        pg = None
        if self.cluster is not None:
            pg = {
                "owned": self._shared_cluster is None,
                "root": str(self.cluster.root),
                "port": self.cluster.port,
                "version": self.cluster.version,
                "guard_item": self.cluster.guard_item(),
            }
        state = {
            "version": 1,
            "pid": os.getpid(),
            "created": datetime.now(UTC).isoformat(),
            "config": str(self.config_path),
            "environments": {
                env: {
                    "kind": kind_of(env),
                    "database": self._db_names.get(env, (None,))[0],
                    "hosts": [
                        {"name": h.name, "home": str(h.home), "api_port": h.api_port} for h in self._hosts.get(env, [])
                    ],
                }
                for env in self.environments
            },
            "postgres": pg,
            "database_note": self.database_note,
        }
        (self.directory / "state.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    def _start_services(self) -> None:
        assert self._guard is not None
        all_hosts = [h for hosts in self._hosts.values() for h in hosts]
        for h in all_hosts:
            self._guard.add(f"service:{h.home}", {"kind": "service", "home": str(h.home)})
        # A few at a time: each start has START_TIMEOUT_S to answer /health, and fifty
        # interpreters started at once on two cores share that CPU (and time out under load).
        window = max(4, 2 * (os.cpu_count() or 1))
        started: list[tuple[SimHost, subprocess.Popen[str]]] = []
        failures: list[str] = []
        waited = 0

        def wait_next() -> None:
            nonlocal waited
            h, p = started[waited]
            out, _ = p.communicate(timeout=ctl.START_TIMEOUT_S + 10)
            waited += 1
            if p.returncode != 0:
                failures.append(f"{h.name} ({h.home}):\n{out.strip()}")

        try:
            for h in all_hosts:
                if len(started) - waited >= window:
                    wait_next()
                command = [self.python, "-m", "console.simulator.ctl", "start", "--home", str(h.home)]
                started.append(
                    (h, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
                )
            while waited < len(started):
                wait_next()
        except BaseException:
            # Interrupted (a signal at start-up): let each `ctl start` finish writing its pid
            # file, so that stop() finds and stops every service it started.
            for _, p in started[waited:]:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.communicate(timeout=ctl.START_TIMEOUT_S + 10)
            raise
        if failures:
            raise SimulationError("some simulated services did not start:\n" + "\n".join(failures))

    # --- stop ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every API process and PostgreSQL (if this simulation started it). Idempotent."""
        with self._stop_lock:
            homes = [h.home for hosts in self._hosts.values() for h in hosts]
            with concurrent.futures.ThreadPoolExecutor(max(1, min(8, len(homes)))) as pool:
                list(pool.map(lambda home: ctl.stop(home, out=io.StringIO()), homes))
            if self.cluster is not None:
                if self._shared_cluster is None:
                    self.cluster.stop()
                else:
                    with contextlib.suppress(Exception):
                        for db, role in self._db_names.values():
                            _run_async(self.cluster.drop_database(db, role))
                self.cluster = None
            if self._guard is not None:
                self._guard.close()
                self._guard = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            self.started = False
