"""``rollback-console config validate FILE``: a config, or a service profile (a file with a
``[profile]`` table); every problem as FILE:LINE: key: message, exit 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from console.cli import EXIT_OK, EXIT_USAGE
from console.config import Config, ConfigError, load_config
from console.config.reader import Problem


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("config", help="work with config files")
    inner = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    validate = inner.add_parser("validate", help="check a config or a service profile; report every problem")
    validate.add_argument("file", metavar="FILE")
    validate.add_argument(
        "--profile", action="store_true", help="read FILE as a service profile even before it has its [profile] table"
    )
    validate.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from console.profile.load import is_profile

    if args.profile or is_profile(args.file):
        return _validate_profile(args.file)
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return EXIT_USAGE
    from console.profile.load import ProfileError, profile_at, profile_path

    # Each environment's profile, each file read once; its problems with the profile's own lines.
    problems: dict[str, list[Problem]] = {}
    for e in config.environments.values():
        path = profile_path(e)
        if path not in problems:
            try:
                profile_at(path)
                problems[path] = []
            except ProfileError as exc:
                problems[path] = list(exc.problems)
    bad = [(path, found) for path, found in problems.items() if found]
    if bad:
        for path, found in bad:
            users = ", ".join(n for n, e in config.environments.items() if profile_path(e) == path)
            for problem in found:
                print(problem, file=sys.stderr)
            print(f"{path}: {len(found)} problem(s): the profile of {users} cannot be used", file=sys.stderr)
        return EXIT_USAGE
    missing = _missing_parameters(args.file, config)
    if missing:
        for problem in missing:
            print(problem, file=sys.stderr)
        print(f"{args.file}: {len(missing)} problem(s)", file=sys.stderr)
        return EXIT_USAGE
    envs = ", ".join(
        f"{e.name} ({e.kind}, {len(e.hosts)} host{'s' if len(e.hosts) != 1 else ''}"
        + (f" from {e.hosts_source()}" if e.inventory else "")
        + ")"
        for e in config.environments.values()
    )
    names = {e.name: _profile_name(e.profile) for e in config.environments.values()}
    if len(set(names.values())) == 1:
        envs += f"; profile {next(iter(names.values()))}"
    else:
        envs += "; profiles: " + ", ".join(f"{n} {p}" for n, p in names.items())
    print(f"{args.file}: ok — {envs}")
    return EXIT_OK


def _missing_parameters(file: str, config: Config) -> list[Problem]:
    """A parameter of an environment's probe that neither the config nor the profile gives a value."""
    from console.config.locate import key_lines, locate
    from console.probes.parameters import CONFIG_KEYS, values_for
    from console.profile.load import profile_of, profile_path

    try:
        index = key_lines(Path(file).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        index = {}
    out = []
    for e in config.environments.values():
        for name, value in values_for(e, profile_of(e).probe).items():
            if value is None:
                where = ("environments", e.name)
                also = f"set {name} here, or " if name in CONFIG_KEYS else ""
                out.append(
                    Problem(
                        file,
                        locate(index, where),
                        f"environments.{e.name}",
                        f"the probe's parameter {name} has no value: {also}give it one in "
                        f"[probe.parameters.{name}.environments] of {profile_path(e)}",
                    )
                )
    return out


def _profile_name(path: str | None) -> str:
    """The profile's file, or that it is the default one."""
    from console.profile.load import DEFAULT_PROFILE

    return f"{path}" if path else f"{DEFAULT_PROFILE.name} (the default)"


def _validate_profile(path: str) -> int:
    from console.profile.load import ProfileError, describe_profile, load_profile

    try:
        profile = load_profile(path)
    except ProfileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s): the profile cannot be used", file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: ok — profile {describe_profile(profile)}")
    return EXIT_OK
