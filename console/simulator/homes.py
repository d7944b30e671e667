"""One simulated host's home: where its env file, checkout, logs and pid live, and how it is made."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from console.simulator import ctl, database, repo
from console.simulator.configfile import render_env_file
from console.simulator.state import SimulationError


def kind_of(env: str) -> str:
    """The environment kind a name implies: production for prod*, staging otherwise."""
    return "production" if env.startswith("prod") else "staging"


@dataclass(frozen=True)
class SimHost:
    env: str
    index: int  # 1-based
    home: Path
    api_port: int

    @property
    def name(self) -> str:
        return f"{self.env}-{self.index}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def env_file(self) -> Path:
        return self.home / f".env.{self.env}"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.env}.log"

    @property
    def service_log(self) -> Path:
        return ctl.service_log(self.home)

    @property
    def repo(self) -> Path:
        return self.home / "app"

    @property
    def rollback_script(self) -> Path:
        return self.repo / database.ROLLBACK_SCRIPT

    def pid(self) -> int | None:
        return ctl.running_pid(self.home)


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):  # held open together so that no two are the same
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_secret(path: Path, value: str) -> None:
    """A file only its owner can read, created so from the start."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)


_IMPORTABLE: dict[str, bool] = {}


def command_prefix(python: str) -> str:
    """``env PYTHONPATH=…`` when ``console`` is importable only thanks to this process's path."""
    if python not in _IMPORTABLE:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        probe = subprocess.run(
            [python, "-c", "import console.simulator.ctl"], cwd="/", env=env, capture_output=True, check=False
        )
        _IMPORTABLE[python] = probe.returncode == 0
    if _IMPORTABLE[python]:
        return ""
    root = Path(__file__).resolve().parents[2]
    return f"env PYTHONPATH='{root}' "


def make_home(
    host: SimHost,
    *,
    origin: Path,
    dsn: str | None,
    password_sha256: str,
    jwt_secret: str,
    log_format: str,
    channel_id: int,
) -> None:
    """Lay out one home: checkout, env file, unit description, first build."""
    home = host.home
    (home / "logs").mkdir(parents=True)
    (home / "run").mkdir()
    repo.clone(origin, host.repo)
    text = render_env_file(
        env=host.env,
        port=host.api_port,
        log_file=host.log_file,
        log_format=log_format,
        database_url=dsn,
        password_sha256=password_sha256,
        jwt_secret=jwt_secret,
        channel_id=channel_id,
    )
    write_secret(host.env_file, text.rstrip("\n"))  # 0600: it holds the DSN and the JWT key
    unit = {"service": ctl.SERVICE, "environment": host.env, "env_file": str(host.env_file)}
    (home / "service.json").write_text(json.dumps(unit, indent=2) + "\n", encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = ctl.rebuild(home)
    if code != 0:
        raise SimulationError(f"building {host.repo} failed:\n{out.getvalue()[-1000:]}")
