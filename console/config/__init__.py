"""Configuration: model, defaults, loading with file/line/key errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from console import lazy

if TYPE_CHECKING:
    from console.config.load import ConfigError, Problem, find_config, load_config
    from console.config.model import (
        ACTIONS,
        Config,
        Database,
        Environment,
        Host,
        MatrixRow,
        SecretError,
        SecretRef,
        Thresholds,
    )

# Read on first use (PEP 562): importing console.config.model (the profile's model does)
# must not load the config reader, and asyncio with it.
_WHERE = {
    **dict.fromkeys(("ConfigError", "Problem", "find_config", "load_config"), "load"),
    **dict.fromkeys(
        ("ACTIONS", "Config", "Database", "Environment", "Host", "MatrixRow", "SecretError", "SecretRef", "Thresholds"),
        "model",
    ),
}


__all__ = [
    "ACTIONS",
    "Config",
    "ConfigError",
    "Database",
    "Environment",
    "Host",
    "MatrixRow",
    "Problem",
    "SecretError",
    "SecretRef",
    "Thresholds",
    "find_config",
    "load_config",
]

__getattr__, __dir__ = lazy.exports(__name__, _WHERE)
