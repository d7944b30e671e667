"""Secrets never reach the journal.

Two layers: every secret value the caller knows (passwords, DSNs, webhook URLs) is
replaced wherever it appears; then patterns catch what slips through in command output
(passwords in URLs, bearer tokens, Authorization headers, ``password=`` and env-style
``*_PASSWORD`` / ``*_SECRET`` / ``*_TOKEN`` / ``*_KEY`` lines). Very long strings are
bounded so one runaway output cannot bloat the journal.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from console.config.model import Config, Environment, SecretError, SecretRef

REDACTED = "[REDACTED]"
MAX_STRING = 8 * 1024  # characters kept of any one string
_MARGIN = 4096  # context the patterns see around a cut (a JWT fits)

# Order matters: the specific forms first, so "Authorization: Bearer x" reads as one header.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:PASS@host  →  scheme://user:***@host
    (re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]{0,32}://[^\s:/@'\"]{0,256}):([^\s@/'\"]{1,256})@"), r"\1:***@"),
    # Authorization: <anything> (HTTP headers, curl -H)
    (re.compile(r"(?i)\b(authorization\s*[:=]\s*)[^\r\n\"']+"), r"\1" + REDACTED),
    (re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=\-]+"), "Bearer " + REDACTED),
    # "password": "…" in JSON or a Python repr (also access_token, api_key, secret…)
    (
        re.compile(
            r"(?i)([\"'][\w.\-]{0,64}?(?:password|passwd|secret|token|api_?key|private_?key|authorization)[\w.\-]{0,64}[\"']"
            r"\s*:\s*)(\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')"
        ),
        r'\1"' + REDACTED + '"',
    ),
    # KEY=value / key: value where the name says secret: env lines (…_SHA256 hashes too),
    # query strings, command lines, YAML.
    (
        re.compile(
            # Not a path's last component ("…/password: is a named pipe" is our own message).
            r"(?i)(?<![/\\])\b((?:export\s+)?[\w.\-]{0,64}?(?:password|passwd|pwd|secret|token|key)[\w.\-]{0,64})"
            r"(\s*[=:]\s*)(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;&]+)"
        ),
        r"\1\2" + REDACTED,
    ),
)

# Dict keys whose string values are secrets whatever they look like.
_SECRET_KEY = re.compile(r"(?i)password|passwd|secret|token|api_?key|private_?key|credential")


# Secrets this process knows (the config's, once loaded): every Redactor masks them too,
# and so does the CLI's output guard, whoever made the Redactor and whenever.
_PROCESS_SECRETS: set[str] = set()
_process_version = 0


def remember_secrets(*secrets: str | None) -> None:
    """Add known secret values (and the forms they take in URLs and JSON) for this process."""
    global _process_version
    before = len(_PROCESS_SECRETS)
    for secret in secrets:
        _PROCESS_SECRETS.update(_forms(secret))
    if len(_PROCESS_SECRETS) != before:
        _process_version += 1


def _forms(secret: str | None) -> set[str]:
    """A secret as it may show up: as is, URL-encoded, JSON-escaped; a URL's password too."""
    if not secret:
        return set()
    out = {secret, quote(secret, safe=""), json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(secret)[1:-1]}
    password = _url_password(secret)
    if password:
        out.update({password, unquote(password)})
    # A secret of one or two characters would mask half the output; it is masked where a
    # field is known to hold it (keys named password, token, …), not everywhere.
    return {s for s in out if len(s) >= MIN_SECRET_LENGTH}


MIN_SECRET_LENGTH = 3


class Redactor:
    """Removes secrets from any JSON-like value (dicts, lists, strings), recursively."""

    def __init__(self, secrets: Iterable[str] = (), *, max_string: int = MAX_STRING) -> None:
        self.max_string = max_string
        self._secrets: set[str] = set()
        self._version = -1
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        """Known secret values; their URL-encoded forms and any password inside a URL too."""
        for secret in secrets:
            self._secrets.update(_forms(secret))
        self._version = -1

    def _known(self) -> list[str]:
        if self._version != _process_version:
            # Longest first, so a DSN goes as a whole before the password inside it.
            self._ordered = sorted(self._secrets | _PROCESS_SECRETS, key=len, reverse=True)
            self._version = _process_version
        return self._ordered

    def known(self, value: str) -> str:
        """``value`` with every known secret value masked (no patterns, no bounding)."""
        for secret in self._known():
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def text(self, value: str) -> str:
        """One string, redacted and bounded (head and tail kept: errors are usually at the end)."""
        value = self.known(value)
        n, limit = len(value), self.max_string
        if n <= limit:
            return _patterns(value)
        head, tail = limit // 4, limit - limit // 4
        # The patterns only see the kept parts (plus room for context), never megabytes.
        kept_head = _patterns(value[: head + _MARGIN])[:head]
        kept_tail = _patterns(value[-(tail + _MARGIN) :])[-tail:]
        return f"{kept_head}\n… [{n - head - tail} of {n} characters cut by the journal] …\n{kept_tail}"

    def __call__(self, value: Any, key: str | None = None) -> Any:
        """A JSON-able copy of ``value`` with every string redacted. Tuples and sets become
        lists, paths strings, non-finite floats strings: the journal is plain JSON."""
        if isinstance(value, str):
            if key is not None and _SECRET_KEY.search(key) and value and not value.startswith("${"):
                return REDACTED
            return self.text(_valid_utf8(value))
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                name = self.text(_valid_utf8(str(k)))
                out[name] = self(v, name)
            return out
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        if isinstance(value, set | frozenset):
            return [self(v) for v in sorted(value, key=str)]
        if isinstance(value, PurePath):
            return self.text(str(value))
        return self.text(_valid_utf8(str(value)))


def _patterns(value: str) -> str:
    if len(value) <= _MEMO_LEN:  # keys, step ids, short messages: the same strings again and again
        return _patterns_memo(value)
    return _patterns_uncached(value)


def _patterns_uncached(value: str) -> str:
    for pattern, replacement in _PATTERNS:
        value = pattern.sub(replacement, value)
    return value


# A journal record is redacted field by field, keys too: over a 50-host rollback that was
# ≈ 15,000 strings through five patterns, most of them seen before. The patterns are fixed,
# so a string's result is too.
_MEMO_LEN = 200
_patterns_memo = functools.lru_cache(maxsize=4096)(_patterns_uncached)


def _probe_secrets(env: Environment) -> list[SecretRef]:
    """The secrets the environment's profile gives its probe (a password per environment)."""
    from console.probes.parameters import secrets_of
    from console.profile import ProfileError, profile_of

    try:
        return secrets_of(env, profile_of(env).probe)
    except ProfileError:  # nothing of a broken profile is used, so nothing of it can leak
        return []


def known_secrets(config: Config) -> list[str]:
    """Every secret the config points at (API passwords, database DSNs, the webhook),
    resolved, for a Redactor. Secrets that cannot be resolved now are skipped: they
    cannot leak from this process either."""
    refs: list[SecretRef] = []
    for env in config.environments.values():
        if env.password is not None:
            refs.append(env.password)
        refs.extend(_probe_secrets(env))
        if env.database is not None:
            refs.append(env.database.dsn)
    if config.notifications.webhook is not None:
        refs.append(config.notifications.webhook)
    values = []
    for ref in dict.fromkeys(refs):  # the config's password is the probe's too: resolved once
        try:
            values.append(ref.resolve())
        except SecretError:
            continue
    return values


def _url_password(value: str) -> str | None:
    if "://" not in value:
        return None
    try:
        return urlsplit(value.strip()).password
    except ValueError:
        return None


def _valid_utf8(value: str) -> str:
    # Output decoded with surrogateescape would make the journal line unencodable.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value
