"""Helpers shared by commands: loading the config, printing JSON."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

from console import safe_text
from console.cli import UsageError
from console.config import Config, ConfigError, find_config, load_config
from console.journal.redact import known_secrets, remember_secrets


def config_from_args(args: argparse.Namespace) -> Config:
    path = find_config(getattr(args, "config", None))
    if not path.exists():
        raise UsageError(
            f"no config at {path}: pass --config FILE, set $ROLLBACK_CONSOLE_CONFIG, "
            "or run `rollback-console demo` to try it on the simulator"
        )
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise UsageError(f"bad config ({len(exc.problems)} problem(s)):\n{exc}") from None
    # Every output of this process masks the config's secrets from now on (the output
    # guard, every journal's redactor), whichever module prints or records.
    remember_secrets(*known_secrets(config))
    return config


def environment_names(config: Config, name: str | None) -> list[str]:
    if name is None:
        return list(config.environments)
    if name not in config.environments:
        known = ", ".join(config.environments)
        raise UsageError(f"no environment {name!r} in {config.path} (known: {known})")
    return [name]


def print_json(document: Any) -> None:
    """The JSON channel: valid JSON (no NaN or infinity: null), no raw control or bidi
    character (written as \\uNNNN, the same value), no known secret."""
    text = json.dumps(safe_text.finite(document), indent=2, ensure_ascii=False, default=str, allow_nan=False)
    sys.stdout.write(safe_text.json_text(text) + "\n")


def number_between(low: float, high: float, unit: str = "", *, integer: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in [low, high]; anything else is a usage
    error naming the option's value (``--wait inf``, ``--wait -5``, ``--hosts 0``)."""

    def parse(text: str) -> float:
        try:
            value: float = int(text) if integer else float(text)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}{unit and ' of ' + unit.strip()}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}{unit}, got {text!r}")
        return value

    return parse
