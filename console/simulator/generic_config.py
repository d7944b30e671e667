"""The files a profile world writes for people: each host's env file and DIR/console.toml.

Like configfile.py for Phase 4, in the words of the profile: its flags with the values
its service writes, its service's name, its release commit, and `profile = FILE` on
every environment so that the console reads this runbook for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from console.profile import Profile
from console.simulator.configfile import EnvEntry, SSHTarget, _s, config_head, ctl_command

MODULE = "console.simulator.generic"


def login_email(profile: Profile) -> str:
    """The probe account's email: the profile's login_email parameter, else one for the config's sake."""
    for p in profile.probe.parameters:
        if p.name == "login_email" and isinstance(p.default, str):
            return p.default
        if p.name == "login_email" and p.environments and isinstance(p.environments[0][1], str):
            return p.environments[0][1]
    return f"probe@{profile.info.service}.example"


def release_message(profile: Profile) -> str:
    """The commit a code rollback reverts: the profile's code action's, else one named after its feature."""
    code = next((a for a in profile.actions if a.kind == "code" and a.commit_message), None)
    if code is not None and code.commit_message:
        return code.commit_message
    return f"{profile.info.service}: {profile.info.feature or 'release'}"


def render_env_file(
    profile: Profile,
    *,
    env: str,
    port: int,
    log_file: Path,
    log_format: str,
    password_sha256: str | None,
    jwt_secret: str | None,
) -> str:
    auth = (
        f"\n# Probe login: only the password's SHA-256 is kept here, never the password\n"
        f"AUTH_PASSWORD_SHA256={password_sha256}\nJWT_SECRET_KEY={jwt_secret}\n"
        if password_sha256 and jwt_secret
        else ""
    )
    flags = [
        line
        for f in profile.flags.flags
        for line in ([f"# {f.description}"] if f.description else []) + [f"{f.env}={profile.flags.written(True)}"]
    ]
    return "\n".join(
        [
            f"# {profile.info.service} — {env} environment (simulated from the profile {profile.info.id})",
            "# Read by the service at start-up only: restart it after any change.",
            "",
            f"ENVIRONMENT={env}",
            "API_HOST=127.0.0.1",
            f"API_PORT={port}",
            f"LOG_FORMAT={log_format}",
            f"LOG_FILE={log_file}",
            auth,
            f"# {profile.info.feature or 'Feature flags'} ({profile.info.title})",
            *flags,
            "",
        ]
    )


def render_config(
    profile: Profile,
    *,
    directory: Path,
    environments: Sequence[EnvEntry],
    python: str,
    ssh: SSHTarget | None,
    command_prefix: str = "",
) -> str:
    service = profile.info.service
    out = config_head(
        f"the simulated {service} service (profile {profile.info.id})",
        f"rollback-console simulate --dir {directory} --profile {profile.path}",
        directory,
        environments,
        ssh,
    )
    pid = (
        f"p=$(cat {{home:q}}/run/service.pid 2>/dev/null) && grep -qs {MODULE} "
        f"/proc/$p/cmdline && echo $p || {{ echo '{service} is not running' >&2; exit 1; }}"
    )
    for env in environments:
        ctl = {
            c: _s(ctl_command(python, c, command_prefix))
            for c in ("restart", "force-restart", "service-log", "rebuild")
        }
        out += [
            f"[environments.{env.name}]",
            f"profile = {_s(profile.path)}",
            f'kind = "{env.kind}"',
            f"hosts = [{', '.join(_s(h.name) for h in env.hosts)}]",
            'api_url = "http://127.0.0.1:{api_port}"',
            "# channel_id, login_email and password: keys every environment has today;"
            + (" this service's probe has no login." if profile.probe.login is None else ""),
            f"channel_id = {env.channel_id}",
            f"login_email = {_s(login_email(profile))}",
            f"password = {{ file = {_s(env.password_file)} }}",
            f'env_file = "{{home}}/.env.{env.name}"',
            f"restart_command = {ctl['restart']}",
            f"force_restart_command = {ctl['force-restart']}",
            f"pid_command = {_s(pid)}",
            f'log_file = "{{home}}/logs/{env.name}.log"',
            f"service_log_command = {ctl['service-log']}",
            'repo_path = "{home}/app"',
            f"rebuild_command = {ctl['rebuild']}",
            f"phase4_commit_message = {_s(release_message(profile))}",
            'lock_dir = "{home}"',
            "",
        ]
        if len(env.hosts) > 1:
            out += [f"[environments.{env.name}.fleet]", 'mode = "parallel"', "concurrency = 10", ""]
    return "\n".join(out)
