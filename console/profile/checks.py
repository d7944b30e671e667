"""Checks on single values of a profile, each returning a message or None (as the config's)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from console.config.reader import _did_you_mean, _Table
from console.profile import patterns
from console.profile.patterns import TemplateError

FLAG_ID = re.compile(r"^[a-z][a-z0-9_]*$")  # flag ids stand in templates as {id}
ID = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")  # actions, issues, validations, modes, scenarios …
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENDPOINT = re.compile(r"^/[^\s?#]*$")


def id_check(pattern: re.Pattern[str] = ID) -> Callable[[str], str | None]:
    what = "letters, digits and _" if pattern is FLAG_ID else "letters, digits, _ and -"
    return lambda v: None if pattern.match(v) else f"{v!r} is not an id (lower-case {what}, starting with a letter)"


def variable(v: str) -> str | None:
    return None if ENV_NAME.match(v) else f"{v!r} is not a variable name (letters, digits and _)"


def names(v: list[Any]) -> str | None:
    """A list of non-empty strings."""
    for i, item in enumerate(v):
        if not isinstance(item, str) or not item.strip():
            return f"item #{i + 1} is {item!r}: expected a non-empty string"
    return None


def words(v: list[Any]) -> str | None:
    return names(v) or (None if v else "needs at least one word")


def endpoint(v: str) -> str | None:
    if "://" in v:
        return f"{v!r} is a URL: write the path only (the host comes from the environment's api_url)"
    if not ENDPOINT.match(v):
        return f"{v!r} is not a path like /status (starts with /, no spaces, no ?query)"
    return None


def status(v: int) -> str | None:
    return None if 100 <= v <= 599 else f"{v} is not an HTTP status"


def environ_path(v: str) -> str | None:
    if "{pid}" not in v:
        return f"{v!r} has no {{pid}}: write it like /proc/{{pid}}/environ"
    return None if v.startswith("/") else f"{v!r} is not an absolute path"


def plain_template(v: str) -> str | None:
    try:
        pieces = patterns.split(v)
    except TemplateError as exc:
        return str(exc)
    fields = [t for k, t in pieces if k == "field"]
    for name in fields:
        if name not in patterns.LOG_FIELDS:
            known = ", ".join(patterns.LOG_FIELDS)
            return f"{{{name}}} is not a log field{_did_you_mean(name, patterns.LOG_FIELDS)}; fields: {known}"
        if fields.count(name) > 1:
            return f"{{{name}}} appears twice"
    missing = [f for f in ("level", "message") if f not in fields]
    return f"the line needs {{{missing[0]}}}" if missing else None


def unknown(name: str, what: str, known: list[str] | tuple[str, ...]) -> str:
    """``'x' is not a flag (did you mean 'y'?); flags: a, b`` — the one message for a bad reference."""
    listed = ", ".join(known) or "none is defined"
    return f"{name!r} is not {what}{_did_you_mean(name, list(known))}; {what.split()[-1]}s: {listed}"


def unique(tables: list[_Table], items: list[Any], attr: str) -> None:
    """Report the second and later uses of the same ``attr`` value."""
    seen: set[Any] = set()
    for t, item in zip(tables, items, strict=True):
        value = getattr(item, attr)
        if value and value in seen:
            t.problem(attr, f"{value!r} is used twice: each {attr} must be unique")
        seen.add(value)


def json_template(value: Any) -> str | None:
    """A login body: JSON values only (TOML's dates and times are not JSON)."""
    if isinstance(value, dict):
        for v in value.values():
            found = json_template(v)
            if found:
                return found
        return None
    if isinstance(value, list):
        return next((m for m in (json_template(v) for v in value) if m), None)
    if isinstance(value, str | int | float | bool):
        return None
    return f"{value!r} is not a JSON value (write dates and times as strings)"


def required_table(parent: _Table, key: str, hint: str) -> _Table | None:
    """A table the profile must have; when it is missing, the problem says what goes in it."""
    if key not in parent.data:
        parent.used.add(key)
        where = ".".join(str(p) for p in (*parent.path, key))
        parent.problem(key, f"required table is missing: add [{where}] with {hint}")
        return None
    return parent.table(key)
