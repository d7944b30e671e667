"""The files a simulation writes for people: each host's env file and DIR/console.toml."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from console.simulator.database import MIGRATION_SCRIPT, ROLLBACK_SCRIPT

LOGIN_EMAIL = "ops-probe@analyticbot.example"


@dataclass(frozen=True)
class SSHTarget:
    """How the console reaches the simulated hosts when asked to go through SSH."""

    address: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None


@dataclass(frozen=True)
class HostEntry:
    name: str
    home: Path
    api_port: int


@dataclass(frozen=True)
class EnvEntry:
    name: str
    kind: str
    hosts: Sequence[HostEntry]
    channel_id: int
    password_file: Path
    dsn_file: Path | None


def render_env_file(
    *,
    env: str,
    port: int,
    log_file: Path,
    log_format: str,
    database_url: str | None,
    password_sha256: str,
    jwt_secret: str,
    channel_id: int,
) -> str:
    db = (
        f"DATABASE_URL={database_url}\nDB_POOL_MIN=0\nDB_POOL_MAX=5\n"
        if database_url
        else "# DATABASE_URL is not set: no PostgreSQL here, the service serves a synthetic data set.\n"
    )
    return f"""\
# analyticbot API — {env} environment
# Read by the service at start-up only: restart it after any change.
# Phase 4 flags: see docs/phase4-rollback-procedures.md before changing them.

ENVIRONMENT={env}
API_HOST=127.0.0.1
API_PORT={port}
WORKERS=1
LOG_LEVEL=INFO
LOG_FORMAT={log_format}
LOG_FILE={log_file}

# Database (PostgreSQL)
{db}
# Authentication: only the password's SHA-256 is kept here, never the password
AUTH_EMAIL={LOGIN_EMAIL}
AUTH_PASSWORD_SHA256={password_sha256}
JWT_SECRET_KEY={jwt_secret}
JWT_ALGORITHM=HS256
ACCESS_TOKEN_EXPIRE_MINUTES=30
REFRESH_TOKEN_EXPIRE_DAYS=7

# Analytics
SIM_CHANNEL_ID={channel_id}
DEFAULT_ANALYSIS_DAYS=90
CORS_ORIGINS="https://app.analyticbot.example,http://localhost:3000"

# Phase 4: recommendation system enhancements (quick rollback: master flag to false, restart)
ENABLE_ADVANCED_RECOMMENDATIONS=true
ENABLE_TIME_WEIGHTING=true
ENABLE_CONTENT_TYPE_ANALYSIS=true
"""


def _s(value: str | Path) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(str(value), ensure_ascii=False)


def ctl_command(python: str, command: str, prefix: str = "") -> str:
    return f"{prefix}{shlex.quote(python)} -m console.simulator.ctl {command} --home {{home:q}}"


def config_head(
    what: str, written_by: str, directory: Path, environments: Sequence[EnvEntry], ssh: SSHTarget | None
) -> list[str]:
    """A simulation config's first lines: what wrote it, the journal, and a [hosts] table per
    simulated host (local, or every one through the same sshd)."""
    out = [
        f"# Rollback Console config for {what}.",
        f"# Written by `{written_by}`; rewritten on every run.",
        "# Secrets are files under secrets/ (mode 0600), referenced here and never written here.",
        f"# Use it:  rollback-console --config {directory / 'console.toml'}",
        "",
        "[console]",
        f"journal = {_s(directory / 'journal.jsonl')}",
        "",
    ]
    for env in environments:
        for h in env.hosts:
            out.append(f"[hosts.{h.name}]")
            if ssh is None:
                out.append('address = "local"')
            else:
                out += [f"address = {_s(ssh.address)}", f"port = {ssh.port}"]
                out += [f"{k} = {_s(getattr(ssh, k))}" for k in ("user", "key_file", "known_hosts") if getattr(ssh, k)]
            out.append(f"vars = {{ home = {_s(h.home)}, api_port = {h.api_port} }}")
            out.append("")
    return out


def render_config(
    *,
    directory: Path,
    environments: Sequence[EnvEntry],
    python: str,
    ssh: SSHTarget | None,
    command_prefix: str = "",
) -> str:
    written_by = f"rollback-console simulate --dir {directory}"
    out = config_head("the simulated analyticbot service", written_by, directory, environments, ssh)
    for env in environments:
        name = env.name
        first = env.hosts[0].home
        ctl = {
            c: _s(ctl_command(python, c, command_prefix))
            for c in ("restart", "force-restart", "service-log", "rebuild")
        }
        out += [
            f"[environments.{name}]",
            f'kind = "{env.kind}"',
            f"hosts = [{', '.join(_s(h.name) for h in env.hosts)}]",
            'api_url = "http://127.0.0.1:{api_port}"',
            f"channel_id = {env.channel_id}",
            "days = 90",
            f"login_email = {_s(LOGIN_EMAIL)}",
            f"password = {{ file = {_s(env.password_file)} }}",
            f'env_file = "{{home}}/.env.{name}"',
            f"restart_command = {ctl['restart']}",
            # No reload_command: like `docker-compose restart`, a plain restart may keep a stale
            # environment (the stale_restart fault); the fix is the forced fresh start below.
            f"force_restart_command = {ctl['force-restart']}",
            # Cheap, like `systemctl show -p MainPID`: probes run it every few seconds.
            "pid_command = "
            + _s(
                "p=$(cat {home:q}/run/service.pid 2>/dev/null) && grep -qs console.simulator.service "
                "/proc/$p/cmdline && echo $p || { echo 'analyticbot-api is not running' >&2; exit 1; }"
            ),
            f'log_file = "{{home}}/logs/{name}.log"',
            f"service_log_command = {ctl['service-log']}",
            'repo_path = "{home}/app"',
            f"rebuild_command = {ctl['rebuild']}",
            'lock_dir = "{home}"',
            "",
        ]
        if len(env.hosts) > 1:
            out += [f"[environments.{name}.fleet]", 'mode = "parallel"', "concurrency = 10", ""]
        if env.dsn_file is not None:
            out += [
                f"[environments.{name}.database]",
                f"dsn = {{ file = {_s(env.dsn_file)} }}",
                "# One database per environment; its scripts as checked out on the first host.",
                f"rollback_script = {_s(first / 'app' / ROLLBACK_SCRIPT)}",
                f"migration_script = {_s(first / 'app' / MIGRATION_SCRIPT)}",
                "",
            ]
    return "\n".join(out)
