"""Reading one TOML table with typed getters that record problems (file, line, key)
instead of raising, so that validation can report every problem at once."""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from console.config.locate import Path as KeyPath
from console.config.model import SecretRef

if TYPE_CHECKING:
    from console.config.load import _Loader

_MISSING = object()
# Thresholds that older configs set in [thresholds]; the matrix rows hold them now.
_MOVED_THRESHOLDS = {
    "response_time_critical_s": "response_time_s",
    "error_rate": "error_rate",
    "memory_rollback_mb": "memory_mb",
}


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """The config cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Table:
    """One TOML table being read: typed getters that record problems instead of raising."""

    def __init__(self, loader: _Loader, data: dict[str, Any], path: KeyPath) -> None:
        self.loader, self.data, self.path = loader, data, path
        self.used: set[str] = set()

    def problem(self, key: str | int | None, message: str) -> None:
        path = self.path if key is None else (*self.path, key)
        self.loader.problem(path, message)

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = _MISSING,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is _MISSING:
                self.problem(
                    key,
                    f"required key is missing (add `{key} = …` under [{_dotted(self.path)}])"
                    if self.path
                    else "required key is missing",
                )
                return None
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(_type_name(k) for k in kinds)
            self.problem(key, f"expected {names}, got {_type_name(type(value))} {_shown(value)}")
            return None if default is _MISSING else default
        message = _number_problem(value)
        if message:
            self.problem(key, message)
            return None if default is _MISSING else default
        if check:
            message = check(value)
            if message:
                self.problem(key, message)
                return None if default is _MISSING else default
        return value

    def table(self, key: str, required: bool = False) -> _Table | None:
        self.used.add(key)
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(key, "required table is missing")
            return None
        if not isinstance(value, dict):
            self.problem(key, f"expected a table, got {_type_name(type(value))}")
            return None
        return _Table(self.loader, value, (*self.path, key))

    def tables(self, key: str) -> list[_Table] | None:
        """An array of tables; None when the key is absent."""
        self.used.add(key)
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(key, f"expected an array of tables ([[{_dotted((*self.path, key))}]])")
            return []
        return [_Table(self.loader, v, (*self.path, key, i)) for i, v in enumerate(value)]

    def secret(self, key: str, required: bool = True) -> SecretRef | None:
        self.used.add(key)
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if required:
                self.problem(key, 'required key is missing (write it as { env = "VAR" } or { file = "PATH" })')
            return None
        if isinstance(value, str):
            self.problem(key, 'secrets are never written in the config: use { env = "VAR" } or { file = "PATH" }')
            return None
        if not isinstance(value, dict):
            self.problem(key, 'expected { env = "VAR" } or { file = "PATH" }')
            return None
        if {"env", "file"} <= set(value):
            self.problem(key, 'give env or file, not both: { env = "VAR" } or { file = "PATH" }')
            return None
        if set(value) - {"env", "file"} or not value:
            extra = ", ".join(f"`{k}`" for k in sorted(set(value) - {"env", "file"})) or "nothing"
            self.problem(key, f'expected {{ env = "VAR" }} or {{ file = "PATH" }}, got {extra}')
            return None
        ((kind, ref),) = value.items()
        if not isinstance(ref, str) or not ref:
            self.problem(key, f"{kind} must be a non-empty string")
            return None
        return SecretRef(env=ref) if kind == "env" else SecretRef(file=_resolve_path(self.loader.base, ref))

    def finish(self) -> None:
        """Report keys nobody asked for: usually typos."""
        for key in self.data:
            if key not in self.used:
                close = difflib.get_close_matches(key, sorted(self.used), n=1)
                hint = f" (did you mean `{close[0]}`?)" if close else ""
                self.problem(key, f"unknown key{hint}")


INT_LIMIT = 2**63  # TOML integers are 64-bit; tomllib reads bigger ones


def _number_problem(value: Any) -> str | None:
    """Numbers must be finite (TOML allows inf and nan) and fit in 64 bits."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    if isinstance(value, int) and not isinstance(value, bool) and not -INT_LIMIT <= value < INT_LIMIT:
        return "is out of range (integers are 64-bit)"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _type_name(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true/false",
        list: "an array",
        dict: "a table",
    }.get(kind, kind.__name__)


def _resolve_path(base: Path, value: str) -> str:
    """Paths in the config are relative to the config file; ~ and $VARS expand."""
    expanded = os.path.expanduser(os.path.expandvars(value))
    return expanded if os.path.isabs(expanded) else str((base / expanded).resolve())


def _did_you_mean(value: str, options: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'production'?)' for a typo, a wrong case or a short form; else ''."""
    lowered = {o.lower(): o for o in options}
    close = difflib.get_close_matches(value.lower(), list(lowered), n=2)
    if len(close) == 2 and _likeness(value, close[0]) == _likeness(value, close[1]):
        return ""  # a tie (prod-api-3 vs prod-api-1/-2) is a guess, not a suggestion
    close = close[:1] or [o for o in lowered if value and o.startswith(value.lower())][:1]
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def _likeness(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower(), b).ratio()


def _one_of(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else f"{v!r} is not one of: {', '.join(options)}{_did_you_mean(v, options)}"


def _names(v: list[Any]) -> str | None:
    """A list of names (columns, indexes): each a non-empty string."""
    for i, item in enumerate(v):
        if not isinstance(item, str) or not item.strip():
            return f'item #{i + 1} is {item!r}: expected names in quotes, like ["has_video", "has_media"]'
    return None


def _positive(v: float) -> str | None:
    return None if v > 0 else f"must be greater than 0, got {v}"


def _within(low: float, high: float, unit: str = "", *, low_open: bool = False) -> Callable[[Any], str | None]:
    """A number in [low, high] (or (low, high] with ``low_open``): waits and limits are
    finite and sane, so a typo cannot make a probe wait for ever or spin a core."""

    def check(v: float) -> str | None:
        below = v <= low if low_open else v < low
        if below or v > high:
            span = f"more than {low:g} and at most {high:g}" if low_open else f"between {low:g} and {high:g}"
            return f"must be {span}{unit}, got {v:g}"
        return None

    return check


def _non_empty(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def _url(v: str) -> str | None:
    try:
        # {placeholders} (per-host vars, checked on their own) stand for a valid host or port here.
        parsed = urlparse(re.sub(r"\{[A-Za-z_][A-Za-z0-9_]*\}", "1", v))
        parsed.port  # noqa: B018  # raises on a port that is not a number or out of range
    except ValueError as exc:
        return f"{v!r} is not a valid URL ({exc})"
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return f"{v!r} is not an http(s) URL (write it like http://localhost:10300)"
    return None
