"""Faults injected into a running simulated service: HOME/faults.json.

The service re-reads the file when its mtime changes; ``ctl`` reads it at (re)start;
``rollback_script_fails`` acts at once on the rollback script in the app checkout.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from console.simulator.settings import FlagSet

FAULTS: dict[str, str] = {
    "latency_s": "seconds added to every best-times request",
    "error_rate": "fraction 0..1 of best-times requests that fail (HTTP 500 and HTTP 200 status=failed, alternately)",
    "memory_mb": "grow the process's resident memory to this many MB (0 releases it)",
    "crash_on_start": "the service exits at start with a traceback in the service log",
    "stale_restart": "restart reuses the environment of the previous start (reload or force-restart fixes it)",
    "ready_down": "/health/ready reports the database down (/health still says healthy)",
    "rollback_script_fails": "004_rollback.sql on disk fails right after its first DROP",
    "caused_by": "which Phase 4 feature causes latency/errors/memory: advanced, time_weighting, content_type "
    "(they stop when the process runs with it off), or in a profile world one of its flag ids; empty: always",
    "failure": "the probe's request answers this failure shape of the service's profile (its id; profile worlds)",
}
CAUSES = ("", "advanced", "time_weighting", "content_type")
MAX_LATENCY_S = 600.0
MAX_MEMORY_MB = 16384.0
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class FaultError(ValueError):
    """A fault name or value is wrong, or faults.json is unreadable; the message says which."""


@dataclass(frozen=True)
class Faults:
    latency_s: float = 0.0
    error_rate: float = 0.0
    memory_mb: float = 0.0
    crash_on_start: bool = False
    stale_restart: bool = False
    ready_down: bool = False
    rollback_script_fails: bool = False
    caused_by: str = ""
    failure: str = ""

    def active(self) -> dict[str, Any]:
        """Only the faults that are on."""
        return {k: v for k, v in asdict(self).items() if v}

    def effective(self, flags: FlagSet) -> Faults:
        """The faults as a process with these flags suffers them: a feature that is off
        no longer slows, fails or bloats it (that is what a rollback is for)."""
        on = {
            "": True,
            "advanced": flags.advanced,
            "time_weighting": flags.advanced and flags.time_weighting,
            "content_type": flags.advanced and flags.content_type,
        }[self.caused_by]
        return self if on else replace(self, latency_s=0.0, error_rate=0.0, memory_mb=0.0)


_TYPES = {f.name: f.type for f in fields(Faults)}


@dataclass(frozen=True)
class Choices:
    """What a home's service can suffer: Phase 4's causes, or its profile's flags and failure shapes."""

    causes: tuple[str, ...] = CAUSES
    failures: tuple[str, ...] = ("",)
    unsupported: tuple[str, ...] = ()  # faults this service has nothing for (no database: no rollback script)


def choices(home: Path) -> Choices:
    """From HOME/service.json: a profile world's home lists its own (see generic_world.py)."""
    try:
        unit = json.loads((Path(home) / "service.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Choices()
    if not isinstance(unit, dict) or "profile" not in unit:
        return Choices()
    return Choices(
        causes=("", *unit.get("causes", ())),
        failures=("", *unit.get("failures", ())),
        unsupported=tuple(unit.get("unsupported_faults", ())),
    )


def coerce(name: str, value: Any, allowed: Choices | None = None) -> float | bool | str:
    """A fault value from text (the command line) or JSON, checked for range."""
    if name not in FAULTS:
        raise FaultError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
    allowed = allowed or Choices()
    if name in allowed.unsupported:
        raise FaultError(f"{name}: this simulated service has nothing it applies to")
    if _TYPES[name] == "str":
        text = str(value).strip()
        known = allowed.causes if name == "caused_by" else allowed.failures
        if name == "failure" and known == ("",) and text:
            raise FaultError("failure: this service has no failure shapes to answer (a profile world's has)")
        if text not in known:
            raise FaultError(f"{name}: expected one of {', '.join(repr(c) for c in known)}, got {value!r}")
        return text
    if _TYPES[name] == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise FaultError(f"{name}: expected true or false, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FaultError(f"{name}: expected a number, got {value!r}") from None
    limit = {"latency_s": MAX_LATENCY_S, "error_rate": 1.0, "memory_mb": MAX_MEMORY_MB}[name]
    if not 0 <= number <= limit:
        raise FaultError(f"{name}: {number:g} is out of range 0..{limit:g}")
    return number


def path(home: Path) -> Path:
    return Path(home) / "faults.json"


def read(home: Path) -> Faults:
    p = path(home)
    try:
        raw = json.loads(p.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return Faults()
    except (OSError, ValueError) as exc:
        raise FaultError(f"cannot read {p}: {exc}") from None
    if not isinstance(raw, dict):
        raise FaultError(f"{p}: expected a JSON object")
    allowed = choices(home)
    return Faults(**{k: coerce(k, v, allowed) for k, v in raw.items()})


def write(home: Path, faults: Faults) -> None:
    """Replace HOME/faults.json atomically and apply the faults that act on disk."""
    from console.simulator.database import set_rollback_script_broken

    p = path(home)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(faults.active(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    repo = Path(home) / "app"
    if repo.is_dir() and "rollback_script_fails" not in choices(home).unsupported:
        set_rollback_script_broken(repo, faults.rollback_script_fails)


def update(home: Path, values: dict[str, Any], *, clear: bool = False) -> Faults:
    """Set some faults (after clearing all of them when ``clear``); returns what is now in effect."""
    allowed = choices(home)
    typed = {k: coerce(k, v, allowed) for k, v in values.items()}
    current = Faults() if clear else read(home)
    new = replace(current, **typed)
    write(home, new)
    return new


class ErrorBudget:
    """Fault ``error_rate``: a deterministic share of requests fail, every other failure an
    HTTP 500 (the rest in the service's failure shape). A new rate fails its first request
    at once, so a drill shows the fault on the next probe, not some requests later."""

    def __init__(self) -> None:
        self._budget = self._rate = 0.0
        self._failed = 0

    def next_failure(self, rate: float) -> str | None:
        """How this request fails: "http500" or "shape"; None: it does not."""
        if rate != self._rate:
            self._rate, self._budget = rate, 1.0 - 1e-9 if rate else 0.0
        if not rate:
            return None
        self._budget += rate
        if self._budget < 1.0:
            return None
        self._budget -= 1.0
        self._failed += 1
        return "http500" if self._failed % 2 else "shape"


class FaultWatcher:
    """The service's view of faults.json: re-read only when the file changes."""

    def __init__(self, home: Path) -> None:
        self.path = path(home)
        self.home = Path(home)
        self._stamp: tuple[int, int] | None = None
        self.current = Faults()
        self.error: str | None = None

    def refresh(self) -> Faults:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.current, self.error = read(self.home), None
            except FaultError as exc:  # keep the last good faults; say why once
                self.error = str(exc)
        return self.current
