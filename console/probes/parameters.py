"""The functional probe's parameter values for one environment.

Each value is the profile's (``[probe.parameters.X.environments]``, else its default), and
the config's where the config sets one: channel_id, days, login_email and password in
``[environments.X]`` keep working as they did before profiles. Secrets are references
until the probe runs; they are resolved here, through the config's own SecretRef.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from console.config.model import Environment, SecretError, SecretRef
from console.profile.model import Probe
from console.profile.patterns import placeholders

# Keys of [environments.X] that are parameters of the Phase 4 probe: the config's value wins.
CONFIG_KEYS = ("channel_id", "days", "login_email", "password")


class ParameterProblem(Exception):
    """A parameter has no usable value; ``login`` when the login needs it (its body holds it)."""

    def __init__(self, message: str, login: bool) -> None:
        super().__init__(message)
        self.login = login


def values_for(env: Environment, probe: Probe) -> dict[str, str | int | SecretRef | None]:
    """Every parameter's value for ``env``, secrets still references; None: no value anywhere."""
    out: dict[str, str | int | SecretRef | None] = {}
    for p in probe.parameters:
        value = p.value_for(env.name)
        configured = getattr(env, p.name, None) if p.name in CONFIG_KEYS else None
        out[p.name] = configured if configured is not None else value
    return out


def login_names(probe: Probe) -> set[str]:
    """The parameters the login body names."""
    if probe.login is None:
        return set()
    names: set[str] = set()
    for text in _strings(probe.login.body):
        for alternatives, _ in placeholders(text):
            names.update(alternatives)
    return names


def resolve(env: Environment, probe: Probe) -> dict[str, Any]:
    """The values the probe's templates are filled with; ParameterProblem says which is missing
    and where to set it, or why a secret cannot be read (never its value)."""
    in_login = login_names(probe)
    out: dict[str, Any] = {}
    for name, value in values_for(env, probe).items():
        login = name in in_login
        prefix = "login: " if login else ""
        if value is None:
            where = f"[probe.parameters.{name}.environments] of the profile"
            if name in CONFIG_KEYS:
                where += f", or {name} in [environments.{env.name}] of the config"
            raise ParameterProblem(f"{prefix}{name} has no value for {env.name} (set it in {where})", login)
        if isinstance(value, SecretRef):
            try:
                secret = value.resolve()
            except SecretError as exc:
                raise ParameterProblem(f"{prefix}{exc}", login) from None
            if not secret:  # else the API's refusal would look like a wrong password
                raise ParameterProblem(f"{prefix}the {name} in {value.describe()} is empty; nothing was sent", login)
            value = secret
        out[name] = value
    return out


def secrets_of(env: Environment, probe: Probe) -> list[SecretRef]:
    """The secret references the probe would resolve for ``env``, for the redactor."""
    return [v for v in values_for(env, probe).values() if isinstance(v, SecretRef)]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def shown_values(env: Environment, probe: Probe) -> dict[str, Any]:
    """The values as a preview shows them: a secret as "…", a value not set as ``{name}``."""
    return {
        name: "…" if isinstance(value, SecretRef) else f"{{{name}}}" if value is None else value
        for name, value in values_for(env, probe).items()
    }


def preview(env: Environment, probe: Probe, base: str) -> list[str]:
    """``POST URL/login``, then ``GET URL/…?n=90``: the probe's requests; no secret shown."""
    values = shown_values(env, probe)
    out = [] if probe.login is None else [f"{probe.login.method} {base}{probe.login.endpoint}"]
    return [*out, f"{probe.request.method} {request_url(probe, base, values)}"]


def curl(env: Environment, probe: Probe, base: str) -> str:
    """The probe's request as the runbook's curl, its token shown as "…"."""
    login, method = probe.login, probe.request.method
    auth = f"-H '{login.header}: {login.scheme} …' " if login is not None and probe.request.authenticated else ""
    verb = "" if method == "GET" else f"-X {method} "
    return f"curl {verb}{auth}{request_url(probe, base, shown_values(env, probe))}"


def request_url(probe: Probe, base: str, values: Mapping[str, Any]) -> str:
    path, params = probe.request.target(values)
    return f"{base}{path}" + (f"?{urlencode(params, safe='{}…')}" if params else "")


def probe_preview(env: Environment, base: str, *, as_curl: bool = False) -> list[str]:
    """``preview`` (or ``curl``) of the environment's own probe; a line saying so when its profile is broken."""
    from console.profile import ProfileError, profile_of

    try:
        probe = profile_of(env).probe
    except ProfileError:
        return [f"(the service profile of {env.name} cannot be read: `rollback-console config validate` says why)"]
    return [curl(env, probe, base)] if as_curl else preview(env, probe, base)
