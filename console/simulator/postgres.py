"""A throwaway PostgreSQL cluster on loopback, for the simulator and for tests.

initdb refuses to run as root, so as root every server binary runs as the unprivileged
``postgres`` account (``runuser -u postgres``) in a directory it owns. The cluster lives
in a short private temp directory (the unix socket path must stay under 108 bytes),
listens on a free port on 127.0.0.1 with password (SCRAM) auth, and accepts trusted
superuser connections only on its private socket directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from console.simulator.guard import Guard

PG_ROOT = Path("/usr/lib/postgresql")
RUN_AS = "postgres"  # the unprivileged account used when we are root
SUPERUSER = "postgres"
START_TIMEOUT_S = 30


class PostgresError(RuntimeError):
    """The cluster could not be created, started or used; the message says what and where."""


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl, else the PATH's."""

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    candidates = sorted(PG_ROOT.glob("*/bin"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file() and (d / "postgres").is_file():
            return d
    return None


def available() -> str | None:
    """None when a cluster can be started here; otherwise the reason it cannot."""
    if find_bin_dir() is None:
        return f"no initdb/pg_ctl/postgres in {PG_ROOT}/*/bin or on PATH"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"running as root and there is no unprivileged {RUN_AS!r} user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser (util-linux) is missing"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(args: list[str], run_as: str | None) -> list[str]:
    return ["runuser", "-u", run_as, "--", *args] if run_as else args


def force_stop(item: dict[str, Any]) -> None:
    """Stop a cluster described by :meth:`PgCluster.guard_item` as fast as possible (the guard's path)."""
    args = [item["pg_ctl"], "stop", "-D", item["data"], "-m", "immediate", "-w", "-t", "10"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            _as_user(args, item.get("run_as")), cwd=item["cwd"], capture_output=True, timeout=15, check=False
        )
    pid = _postmaster_pid(Path(item["data"]))
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _postmaster_pid(data: Path) -> int | None:
    try:
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


class PgCluster:
    """One cluster. ``start()`` → use ``admin_connect``/``create_database``/``dsn`` → ``stop()``."""

    def __init__(self, *, guard: Guard | None = None) -> None:
        reason = available()
        if reason:
            raise PostgresError(f"PostgreSQL is not available: {reason}")
        self.bin_dir = find_bin_dir() or Path("/nonexistent")
        self.run_as = RUN_AS if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="rollback-console-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "postgres.log"
        self.port = 0
        self._own_guard = guard is None
        self._guard = guard
        self._started = False

    @property
    def version(self) -> str:
        return self.bin_dir.parent.name

    @property
    def psql(self) -> Path:
        return self.bin_dir / "psql"

    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return _postmaster_pid(self.data)

    def guard_item(self) -> dict[str, Any]:
        return {
            "kind": "postgres",
            "pg_ctl": str(self.bin_dir / "pg_ctl"),
            "data": str(self.data),
            "run_as": self.run_as,
            "cwd": str(self.root),
            "remove": str(self.root),
        }

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                _as_user(list(args), self.run_as),
                cwd=self.root,  # the caller's cwd may be unreadable to the postgres user
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PostgresError(
                f"{Path(args[0]).name} timed out after {timeout:.0f}s (cluster in {self.root})"
            ) from None

    def start(self) -> PgCluster:
        if self._guard is None:
            self._guard = Guard()
        self._guard.add(f"postgres:{self.root}", self.guard_item())
        try:
            self._init()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def _init(self) -> None:
        self.socket_dir.mkdir(mode=0o700)
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            for p in (self.root, self.socket_dir):
                os.chown(p, user.pw_uid, user.pw_gid)
        initdb = self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "--no-instructions",
        )
        if initdb.returncode != 0:
            raise PostgresError(f"initdb failed in {self.data}: {(initdb.stderr or initdb.stdout).strip()[-800:]}")

    def _start_server(self) -> None:
        # A free port can be taken between probing and binding: retry on a fresh one.
        last = ""
        for _ in range(3):
            self.port = free_port()
            with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(
                    "\n# rollback-console throwaway cluster\n"
                    "listen_addresses = '127.0.0.1'\n"
                    f"port = {self.port}\n"
                    f"unix_socket_directories = '{self.socket_dir}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 100\nshared_buffers = 32MB\n"
                )
            result = self._run(
                str(self.bin_dir / "pg_ctl"),
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-s",
                timeout=START_TIMEOUT_S + 10,
            )
            if result.returncode == 0:
                return
            last = self._log_tail()
            if "already in use" not in last:
                break
        raise PostgresError(f"PostgreSQL did not start (cluster {self.root}, log {self.log}):\n{last}")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Stop the server (fast shutdown; immediate, then SIGKILL if it hangs) and delete the cluster."""
        if self.data.exists():
            if self.pid():
                result = self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "20",
                    "-s",
                    timeout=30,
                )
                if result.returncode != 0 or self.pid():
                    force_stop(self.guard_item())
        shutil.rmtree(self.root, ignore_errors=True)
        self._started = False
        if self._guard is not None:
            self._guard.discard(f"postgres:{self.root}")
            if self._own_guard:
                self._guard.close()
                self._guard = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- using it -------------------------------------------------------------------

    async def admin_connect(self, database: str = "postgres") -> Any:
        """A superuser asyncpg connection over the private unix socket."""
        import asyncpg

        return await asyncpg.connect(
            host=str(self.socket_dir), port=self.port, user=SUPERUSER, database=database, timeout=10
        )

    async def create_role(self, name: str, password: str) -> None:
        conn = await self.admin_connect()
        try:
            await conn.execute(f"CREATE ROLE {_ident(name)} LOGIN PASSWORD {_literal(password)}")
        finally:
            await conn.close()

    async def create_database(self, name: str, owner: str | None = None) -> None:
        conn = await self.admin_connect()
        try:
            owner_sql = f" OWNER {_ident(owner)}" if owner else ""
            await conn.execute(f"CREATE DATABASE {_ident(name)}{owner_sql}")
        finally:
            await conn.close()

    async def drop_database(self, name: str, role: str | None = None) -> None:
        conn = await self.admin_connect()
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")
            if role:
                await conn.execute(f"DROP ROLE IF EXISTS {_ident(role)}")
        finally:
            await conn.close()

    def dsn(self, user: str, password: str, database: str) -> str:
        """A TCP DSN with password auth, as the service and the console use it."""
        return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
