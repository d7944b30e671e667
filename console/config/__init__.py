"""Configuration: model, defaults, loading with file/line/key errors."""

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
