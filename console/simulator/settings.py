"""The service's settings, read once at process start from its environment, and its logs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from console.simulator.dataset import CHANNEL_ID

VERSION = "7.5.0"
LOGGER = "analyticbot"


ADVANCED = "ENABLE_ADVANCED_RECOMMENDATIONS"
TIME_WEIGHTING = "ENABLE_TIME_WEIGHTING"
CONTENT_TYPE = "ENABLE_CONTENT_TYPE_ANALYSIS"
FLAG_NAMES = (ADVANCED, TIME_WEIGHTING, CONTENT_TYPE)


def flag_value(raw: str | None) -> bool:
    """The service's own rule: ``os.getenv(NAME, "true").lower() == "true"``."""
    return True if raw is None else raw.lower() == "true"


@dataclass(frozen=True)
class FlagSet:
    """The three Phase 4 flags as the simulated service read them at start."""

    advanced: bool
    time_weighting: bool
    content_type: bool

    @classmethod
    def from_environ(cls, env: Mapping[str, str | None]) -> FlagSet:
        return cls(*(flag_value(env.get(name)) for name in FLAG_NAMES))

    @property
    def mode(self) -> str:
        """Which query the service runs: the master flag decides."""
        return "advanced" if self.advanced else "legacy"

    def as_dict(self) -> dict[str, bool]:
        return {"advanced": self.advanced, "time_weighting": self.time_weighting, "content_type": self.content_type}

    def describe(self) -> str:
        """As the service logs them: "Advanced: True, Time-weighting: True, Content-type: True"."""
        return f"Advanced: {self.advanced}, Time-weighting: {self.time_weighting}, Content-type: {self.content_type}"


ALL_OFF = FlagSet(False, False, False)


class SettingsError(RuntimeError):
    """A required setting is missing or malformed (the service refuses to start)."""


@dataclass(frozen=True)
class Settings:
    environment: str
    host: str
    port: int
    flags: FlagSet
    log_file: Path
    log_format: str  # "json" or "plain"
    log_level: str
    database_url: str | None
    auth_email: str
    auth_password_sha256: str
    jwt_secret: str
    access_minutes: int
    refresh_days: int
    channel_id: int

    @classmethod
    def from_environ(cls, env: Mapping[str, str], home: Path) -> Settings:
        def need(name: str) -> str:
            value = env.get(name)
            if not value:
                raise SettingsError(f"{name} is not set in the service environment (expected in its env file)")
            return value

        def integer(name: str, default: str | None = None) -> int:
            raw = env.get(name, default) if default is not None else need(name)
            try:
                return int(str(raw))
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not an integer") from None

        environment = env.get("ENVIRONMENT", "production")
        return cls(
            environment=environment,
            host=env.get("API_HOST", "127.0.0.1"),
            port=integer("API_PORT"),
            # The service's own rule, applied once: missing → true, anything but "true" → false.
            flags=FlagSet.from_environ(env),
            log_file=Path(env.get("LOG_FILE") or home / "logs" / f"{environment}.log"),
            log_format="json" if env.get("LOG_FORMAT", "plain").lower() == "json" else "plain",
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            database_url=env.get("DATABASE_URL") or None,
            auth_email=need("AUTH_EMAIL"),
            auth_password_sha256=need("AUTH_PASSWORD_SHA256"),
            jwt_secret=need("JWT_SECRET_KEY"),
            access_minutes=integer("ACCESS_TOKEN_EXPIRE_MINUTES", "30"),
            refresh_days=integer("REFRESH_TOKEN_EXPIRE_DAYS", "7"),
            channel_id=integer("SIM_CHANNEL_ID", str(CHANNEL_ID)),
        )


def redact_url(url: str) -> str:
    """A DSN fit for a log: the password replaced."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


class _Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"[{record.levelname}] {record.name}: {record.getMessage()}"


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"level": record.levelname, "name": record.name, "message": record.getMessage()}
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(settings: Settings) -> logging.Logger:
    """The application log (the file operators tail), apart from stdout (the service log)."""
    settings.log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(settings.log_file, encoding="utf-8")
    handler.setFormatter(_Json() if settings.log_format == "json" else _Plain())
    root = logging.getLogger(LOGGER)
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, settings.log_level, logging.INFO))
    root.propagate = False
    return root


def journal(message: str, level: str = "INFO") -> None:
    """A line for the service log (stdout), as uvicorn prints it; the journalctl analogue."""
    print(f"{level + ':':<9} {message}", flush=True)
