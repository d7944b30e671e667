"""A simulated world for any profile: ``ProfileSimulation(DIR, profile=FILE).start()``.

The same layout as Phase 4's (world.py): per host a home with its env file (the profile's
flags, all on), service.json (the unit: which env file, and here which profile), a git
checkout holding the release commit the profile's code rollback reverts, logs, run/ and
faults.json; DIR/console.toml whose environments say ``profile = FILE``. The process is
console.simulator.generic, started and restarted by the same ``ctl``. No database: the
simulator's PostgreSQL holds Phase 4's schema only.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from console.profile import Profile, load_profile
from console.simulator import answers, ctl, repo
from console.simulator.auth import password_hash
from console.simulator.configfile import EnvEntry, HostEntry, SSHTarget
from console.simulator.generic_config import MODULE, release_message, render_config, render_env_file
from console.simulator.homes import SimHost, command_prefix, free_ports, kind_of, write_secret
from console.simulator.state import SimulationError
from console.simulator.world import DEFAULT_ENVIRONMENTS, Simulation

DATES = ("2025-09-02T10:14:00+00:00", "2025-11-20T17:30:00+00:00", "2025-11-21T12:00:00+00:00")


def history(profile: Profile) -> list[tuple[str, str, dict[str, str | None]]]:
    """The release repository: the service before the release, the release (its flags), a later commit.
    Fixed contents and dates, so every host has the same commit ids."""
    service, rules = profile.info.service, profile.flags
    words = ", ".join(repr(w) for w in rules.on_words)
    lower = "" if rules.case_sensitive else ".lower()"
    reads = "\n".join(f"    {f.id}: bool = _flag({f.env!r}, {f.missing!r})" for f in rules.flags)
    flags_py = (
        f'"""{profile.info.feature or "Release"} feature flags, read once at start-up."""\n\n'
        "import os\nfrom dataclasses import dataclass\n\n\n"
        "def _flag(name: str, missing: bool) -> bool:\n"
        "    value = os.environ.get(name)\n"
        f"    return missing if value is None else value.strip(){lower} in ({words},)\n\n\n"
        "@dataclass(frozen=True)\nclass Flags:\n" + (reads or "    pass") + "\n\n\nflags = Flags()\n"
    )
    example = "".join(f"{f.env}={rules.written(True)}\n" for f in rules.flags)
    return [
        (
            f"Initial {service} service",
            DATES[0],
            {
                "README.md": f"# {service}\n",
                ".gitignore": "__pycache__/\n*.pyc\n.env.*\n",
                "app/__init__.py": "",
                "app/main.py": f'"""{service} entry point."""\n\nNAME = {service!r}\n',
            },
        ),
        (
            release_message(profile),
            DATES[1],
            {"app/config/__init__.py": "", "app/config/feature_flags.py": flags_py, ".env.example": example},
        ),
        (f"docs: {profile.info.title}", DATES[2], {"docs/rollback.md": f"# {profile.info.title}\n"}),
    ]


def _parameter(profile: Profile, name: str, env: str, default: object) -> object:
    found = next((p for p in profile.probe.parameters if p.name == name), None)
    value = found.value_for(env) if found else None
    return value if value is not None else default


class ProfileSimulation(Simulation):
    """Simulation of the service ``profile`` describes; the rest as Simulation (start, stop, inject, run)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        profile: str | os.PathLike[str],
        environments: Sequence[str] = DEFAULT_ENVIRONMENTS,
        hosts: int = 1,
        ssh: SSHTarget | None = None,
        log_formats: dict[str, str] | None = None,
    ) -> None:
        """ProfileError when the profile is wrong; GenerationError when its answers cannot be made."""
        self.profile = load_profile(Path(profile).resolve())
        answers.check_profile(self.profile)  # before anything starts: a clear message, not a dead service
        formats = self.profile.log.formats
        chosen = {e: "json" if kind_of(e) == "production" and "json" in formats else formats[0] for e in environments}
        chosen.update(log_formats or {})
        bad = {e: f for e, f in chosen.items() if f not in formats}
        if bad:
            raise SimulationError(f"log formats {bad} are not the profile's ({', '.join(formats)})")
        super().__init__(directory, environments=environments, hosts=hosts, database=False, ssh=ssh, log_formats=chosen)

    def _start_database(self) -> None:
        has = any(a.kind == "database" for a in self.profile.actions)
        self.database_note = (
            "no database: the simulator's PostgreSQL holds Phase 4's schema only" if has else "no database"
        )

    def _layout(self) -> None:
        p = self.profile
        secrets_dir = self.directory / "secrets"
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        ports = iter(free_ports(len(self.environments) * self.hosts_per_env))
        origin = self.directory / "origin"
        repo.create_with(origin, history(p))
        login = p.probe.login is not None
        for env in self.environments:
            password = secrets.token_urlsafe(16)
            write_secret(secrets_dir / f"{env}.password", password)
            jwt_secret = secrets.token_hex(32)
            self._hosts[env] = []
            for i in range(1, self.hosts_per_env + 1):
                host = SimHost(env, i, self.directory / env / f"{env}-{i}", next(ports))
                text = render_env_file(
                    p,
                    env=env,
                    port=host.api_port,
                    log_file=host.log_file,
                    log_format=self.log_formats[env],
                    password_sha256=password_hash(password) if login else None,
                    jwt_secret=jwt_secret if login else None,
                )
                self._make_home(host, origin, text)
                self._hosts[env].append(host)

    def _make_home(self, host: SimHost, origin: Path, env_text: str) -> None:
        p = self.profile
        (host.home / "logs").mkdir(parents=True)
        (host.home / "run").mkdir()
        repo.clone(origin, host.repo)
        write_secret(host.env_file, env_text.rstrip("\n"))
        health = p.health.liveness or p.health.readiness
        assert health is not None  # the loader makes sure
        unit = {
            "service": p.info.service,
            "environment": host.env,
            "env_file": str(host.env_file),
            "module": MODULE,
            "profile": p.path,
            "health": health.endpoint,
            "release": p.info.feature or "release",
            "causes": list(p.flags.ids),
            "failures": [f.id for f in p.probe.answer.failures],
            "unsupported_faults": ["rollback_script_fails"],
        }
        (host.home / "service.json").write_text(json.dumps(unit, indent=2) + "\n", encoding="utf-8")
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = ctl.rebuild(host.home)
        if code != 0:
            raise SimulationError(f"building {host.repo} failed:\n{out.getvalue()[-1000:]}")

    def _write_config(self) -> None:
        entries = [
            EnvEntry(
                name=env,
                kind=kind_of(env),
                hosts=[HostEntry(h.name, h.home, h.api_port) for h in self._hosts[env]],
                channel_id=int(str(_parameter(self.profile, "channel_id", env, 0))),
                password_file=self.directory / "secrets" / f"{env}.password",
                dsn_file=None,
            )
            for env in self.environments
        ]
        text = render_config(
            self.profile,
            directory=self.directory,
            environments=entries,
            python=self.python,
            ssh=self.ssh,
            command_prefix=command_prefix(self.python),
        )
        self.config_path.write_text(text, encoding="utf-8")
        self._write_state()
