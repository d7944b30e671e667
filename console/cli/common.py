"""Helpers shared by commands: loading the config, printing JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from console.cli import UsageError
from console.config import Config, ConfigError, find_config, load_config


def config_from_args(args: argparse.Namespace) -> Config:
    path = find_config(getattr(args, "config", None))
    if not path.exists():
        raise UsageError(
            f"no config at {path}: pass --config FILE, set $ROLLBACK_CONSOLE_CONFIG, "
            "or run `rollback-console demo` to try it on the simulator"
        )
    try:
        return load_config(path)
    except ConfigError as exc:
        raise UsageError(f"bad config ({len(exc.problems)} problem(s)):\n{exc}") from None


def environment_names(config: Config, name: str | None) -> list[str]:
    if name is None:
        return list(config.environments)
    if name not in config.environments:
        known = ", ".join(config.environments)
        raise UsageError(f"no environment {name!r} in {config.path} (known: {known})")
    return [name]


def print_json(document: Any) -> None:
    """One valid JSON document: NaN and infinities (which JSON has no words for) become null."""
    from console.probes.jsonbody import finite_json

    json.dump(finite_json(document), sys.stdout, indent=2, ensure_ascii=False, default=str, allow_nan=False)
    sys.stdout.write("\n")
