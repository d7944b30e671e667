"""HTTP probes of the API, as its service profile describes them: the health endpoints and
the functional probe (a login when it has one, then its request).

Every request has a timeout and a bounded body; every failure becomes a sentence
that says which endpoint and what went wrong, never the password or the token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from console.probes import jsonbody
from console.probes.httppool import API
from console.probes.parameters import login_names
from console.probes.snapshot import EndpointReport, HealthReport, ProbeReport
from console.profile.model import Endpoint, Health, Probe
from console.profile.predicates import Predicate, json_type

MAX_BODY = 4 * 1024 * 1024
DEFAULT_DEADLINE_S = 10.0  # when the client has no read timeout


class ProbeFailed(Exception):
    pass


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    elapsed_s: float
    location: str | None = None  # where a 3xx answer points (redirects are not followed)


def _snippet(raw: bytes) -> str:
    text = raw[:80].decode("utf-8", errors="replace").replace("\n", " ")
    return repr(text) + ("…" if len(raw) > 80 else "")


def target(url: str) -> str:
    """``host:port`` of a URL, for messages that say where."""
    try:
        u = httpx.URL(url)
        port = u.port or {"https": 443, "http": 80}.get(u.scheme, 0)
        return f"{u.host}:{port}" if u.host else url[:80]
    except (httpx.InvalidURL, ValueError, TypeError):
        return url[:80]


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    expect_json: bool = True,
    api: str | None = None,
    **kwargs: Any,
) -> Reply:
    """One bounded request; ProbeFailed says what went wrong and where.

    httpx's timeouts bound each read, not the whole answer: a server that trickles a byte
    at a time would hold the probe forever. The client's read timeout is also the deadline
    for the whole request. A JSON body is parsed with a depth limit and finite numbers only.
    """
    start = time.monotonic()
    deadline = client.timeout.read or DEFAULT_DEADLINE_S
    where = target(url)
    content_type = ""
    location = None
    try:
        async with asyncio.timeout(deadline):
            extensions = {API: api} if api else None  # its own pool: see httppool.OriginPools
            async with client.stream(method, url, extensions=extensions, **kwargs) as response:
                content_type = response.headers.get("content-type", "")
                location = response.headers.get("location")
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_BODY:
                        raise ProbeFailed(f"{what}: response body larger than {MAX_BODY // (1024 * 1024)} MB")
                status = response.status_code
    except (httpx.TimeoutException, TimeoutError):
        # The deadline that fired, not the clock: on a loaded machine the wake-up comes late.
        waited = min(time.monotonic() - start, deadline)
        raise ProbeFailed(f"{what}: no answer within {waited:.1f}s (timeout)") from None
    except httpx.ConnectError as exc:
        raise ProbeFailed(f"{what}: cannot connect to {where} ({_os_reason(exc) or _reason(exc)})") from None
    except httpx.ReadError as exc:
        raise ProbeFailed(f"{what}: {where} {_dropped(exc)} while answering") from None
    except httpx.WriteError as exc:
        raise ProbeFailed(f"{what}: {where} {_dropped(exc)} while the request was sent") from None
    except httpx.RemoteProtocolError as exc:
        raise ProbeFailed(f"{what}: {where} broke the HTTP protocol: {_reason(exc)}") from None
    except httpx.HTTPError as exc:
        raise ProbeFailed(f"{what}: {where}: {type(exc).__name__}: {_reason(exc)}") from None
    except httpx.InvalidURL as exc:  # not an HTTPError: e.g. a bad port from a host's vars
        raise ProbeFailed(f"{what}: invalid URL: {_reason(exc)}") from None
    except (OSError, ValueError, OverflowError, ExceptionGroup) as exc:
        # What the connection layer lets through (a port out of range arrives as a group).
        raise ProbeFailed(f"{what}: cannot connect to {where} ({_reason(exc)})") from None
    elapsed = time.monotonic() - start
    if not expect_json:
        return Reply(status, bytes(raw), elapsed, location)
    try:
        body = jsonbody.loads(bytes(raw)) if raw else None
    except jsonbody.BodyError as exc:
        kind = f" ({content_type.split(';')[0].strip()[:60]})" if content_type else ""
        raise ProbeFailed(f"{what}: HTTP {status}, body{kind} {exc}: {_snippet(bytes(raw))}") from None
    return Reply(status, body, elapsed, location)


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # the cause, not "errors in a TaskGroup"
        exc = exc.exceptions[0]
    text = str(exc) or _cause(exc) or type(exc).__name__
    return text.split("\n")[0][:200]


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and the first of each group, in order."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in out) and len(out) < 20:
        out.append(current)
        if isinstance(current, BaseExceptionGroup) and current.exceptions:
            current = current.exceptions[0]
        else:
            current = current.__cause__ or current.__context__
    return out


def _os_reason(exc: BaseException) -> str:
    """The operating system's words for the failure (``connection refused``), if it said any."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno:
            return os.strerror(e.errno).lower()
    return ""


def _cause(exc: BaseException) -> str:
    """The first cause with something to say (httpx wraps the OS error twice, both mute)."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror.lower()
        if str(e):
            return str(e)
    return ""


def _dropped(exc: BaseException) -> str:
    """How a connection went away, in words."""
    chain = _chain(exc)
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "reset the connection"
    if any(isinstance(e, BrokenPipeError) for e in chain):
        return "closed the connection"
    reason = _os_reason(exc) or _cause(exc)
    return f"dropped the connection ({reason})" if reason else "dropped the connection"


def _status_error(what: str, r: Reply) -> str:
    """``GET /x: HTTP 500`` and, for a redirect, where it points (redirects are not followed)."""
    text = f"{what}: HTTP {r.status}"
    if 300 <= r.status < 400:
        text += f", a redirect to {r.location[:120]!r} (not followed)" if r.location else ", a redirect (not followed)"
    return text


def seen(value: Any) -> str:
    """A JSON value as an operator reads it in a message: its type, and a short repr."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value!r:.40})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


async def probe_health(client: httpx.AsyncClient, base: str, health: Health) -> HealthReport:
    """The profile's health endpoints at once: a dead service costs one probe timeout, not two."""
    asked = [(role, e) for role, e in (("liveness", health.liveness), ("readiness", health.readiness)) if e]
    found = await asyncio.gather(*(_endpoint(client, base, role, e, role == health.truth) for role, e in asked))
    return HealthReport(tuple(found), note=health.note)


async def _endpoint(client: httpx.AsyncClient, base: str, role: str, e: Endpoint, truthful: bool) -> EndpointReport:
    what = f"GET {e.endpoint}"
    out = EndpointReport(role, e.endpoint, truthful)
    try:
        r = await request(client, "GET", f"{base}{e.endpoint}", what=what, api=base)
    except ProbeFailed as exc:
        return dataclasses.replace(out, error=str(exc))
    out = dataclasses.replace(out, status=r.status, version=_version(e, r.body), components=_components(e, r.body))
    holds = e.ok.holds(r.body)
    unreadable = None if holds else _unreadable(e.ok, r.body)  # (an `any` that holds may skip a missing key)
    if r.status != e.status:
        if unreadable is None and not holds:
            # The service saying "not ready" in its own words (503 {"ready": false}): an answer, a failing one.
            return dataclasses.replace(out, ok=False, said=e.ok.explain(r.body))
        return dataclasses.replace(out, ok=False, error=_status_error(what, r))  # not an answer: an error
    if unreadable:
        return dataclasses.replace(out, error=f"{what}: HTTP {r.status} but {unreadable}")
    if not holds:
        return dataclasses.replace(out, ok=False, said=e.ok.explain(r.body))
    return dataclasses.replace(out, ok=True, said=_said(e.ok, r.body))


def _leaves(p: Predicate) -> list[Predicate]:
    return [p] if p.op == "test" else [leaf for item in p.items for leaf in _leaves(item)]


# What a test of a value of the wrong JSON type expects, in words.
_EXPECTED = {
    "string": "a string",
    "boolean": "true or false",
    "integer": "a number",
    "number": "a number",
    "array": "a list",
    "object": "an object",
}


def _unreadable(ok: Predicate, body: Any) -> str | None:
    """Why the `ok` test cannot judge this answer (not an object; a value of another type than
    the test compares with), or None. A wrong type is not "not ok": it is not an answer."""
    leaves = _leaves(ok)
    if not isinstance(body, dict) and any(leaf.path and leaf.path.steps for leaf in leaves):
        return f"the answer is {seen(body)}"
    for leaf in leaves:
        if leaf.path is None or leaf.test not in ("equals", "not_equals", "one_of"):
            continue
        args = leaf.arg if leaf.test == "one_of" else (leaf.arg,)
        kinds = {"number" if json_type(a) == "integer" else json_type(a) for a in args}
        value = leaf.path.value(body)
        kind = json_type(value)
        if ("number" if kind == "integer" else kind) not in kinds:
            return f"`{leaf.path.text}` is {seen(value)}, not {' or '.join(_EXPECTED.get(k, k) for k in sorted(kinds))}"
    return None


def _said(ok: Predicate, body: Any) -> str | None:
    """The word an ok answer used ("healthy"), when its test reads a string."""
    for leaf in _leaves(ok):
        value = leaf.path.value(body) if leaf.path else None
        if isinstance(value, str):
            return value[:80]
    return None


def _version(e: Endpoint, body: Any) -> str | None:
    version = e.version.value(body) if e.version else None
    if isinstance(version, str):
        return version[:80]
    if isinstance(version, int | float) and not isinstance(version, bool):
        return str(version)[:80]
    return None


def _components(e: Endpoint, body: Any) -> tuple[tuple[str, str], ...]:
    components = e.components.value(body) if e.components else None
    items = components.items() if isinstance(components, dict) else ()
    return tuple((str(k)[:80], _component_status(v)) for k, v in items)


def _component_status(value: Any) -> str:
    if isinstance(value, dict):
        status = str(value.get("status", "?"))
        error = value.get("error")
        return f"{status}: {str(error)[:120]}" if error else status
    return str(value)[:120]


async def run_probe(client: httpx.AsyncClient, base: str, probe: Probe, values: Mapping[str, Any]) -> ProbeReport:
    """The profile's functional probe (its [probe] table): log in when it has a
    login, send its request, and judge the answer by the profile's predicates."""
    report = ProbeReport(title=probe.title, request=probe.request.title, count_label=probe.answer.count_label)
    headers: dict[str, str] = {}
    if probe.login is not None:
        login = await _login(client, base, probe, values)
        if isinstance(login, ProbeReport):
            return dataclasses.replace(
                login, title=report.title, request=report.request, count_label=report.count_label
            )
        token, reply = login
        report = dataclasses.replace(report, login_status=reply.status, login_latency_s=reply.elapsed_s)
        if probe.request.authenticated:
            headers[probe.login.header] = f"{probe.login.scheme} {token}".strip()
    try:
        path, params = probe.request.target(values)
    except KeyError as exc:
        return dataclasses.replace(report, error=f"{probe.request.endpoint}: no value for {{{exc.args[0]}}}")
    what = f"{probe.request.method} {path}"
    try:
        b = await request(
            client, probe.request.method, f"{base}{path}", what=what, params=params, headers=headers, api=base
        )
    except ProbeFailed as exc:
        return dataclasses.replace(report, error=str(exc))
    report = dataclasses.replace(report, status=b.status, latency_s=b.elapsed_s)
    spec = probe.answer
    if b.status != spec.status:
        detail = next((d for d in (p.value(b.body) for p in spec.error_detail) if d), None)
        said = (detail if isinstance(detail, str) else seen(detail))[:200] if detail else ""
        return dataclasses.replace(report, kind="error", error=_status_error(what, b) + (f": {said}" if said else ""))
    answer = spec.classify(b.status, b.body)
    if answer.kind == "error":
        return dataclasses.replace(report, kind="error", error=f"{what}: {answer.message}")
    titles = {m.id: m.title or m.id for m in spec.modes}
    failure = next((f for f in spec.failures if f.id == answer.failure), None)
    return dataclasses.replace(
        report,
        kind=answer.kind,
        message=answer.message or None,
        failure=answer.failure,
        failure_title=failure.title if failure else None,
        modes=answer.modes,
        mode_titles=tuple(titles[m] for m in answer.modes),
        data_present=answer.data_present,
        count=answer.count,
    )


async def _login(
    client: httpx.AsyncClient, base: str, probe: Probe, values: Mapping[str, Any]
) -> tuple[str, Reply] | ProbeReport:
    """The token, or a report saying why there is none (never the password)."""
    login = probe.login
    assert login is not None
    what = f"{login.method} {login.endpoint}"
    try:
        body = login.json(values)
    except KeyError as exc:
        return ProbeReport(login_error=f"{what}: no value for {{{exc.args[0]}}}")
    try:
        r = await request(client, login.method, f"{base}{login.endpoint}", what=what, json=body, api=base)
    except ProbeFailed as exc:
        return ProbeReport(login_error=str(exc))
    if r.status == login.refused:
        who = ", ".join(str(values[n]) for n in sorted(login_names(probe)) if _shown_in_messages(probe, n, values))
        return ProbeReport(login_status=r.status, login_error=f"{what}: {r.status}, {who or 'the login'} was refused")
    if not 200 <= r.status < 300:
        return ProbeReport(login_status=r.status, login_error=_status_error(what, r))
    token = login.token.value(r.body) if isinstance(r.body, dict) else None
    if not isinstance(token, str) or not token:
        got = f"`{login.token.text}` is {seen(token)}" if isinstance(r.body, dict) else f"the answer is {seen(r.body)}"
        return ProbeReport(login_status=r.status, login_error=f"{what}: HTTP {r.status} but {got}, not a token")
    return token, r


def _shown_in_messages(probe: Probe, name: str, values: Mapping[str, Any]) -> bool:
    """A login parameter that may be named in a message: set, and not a secret."""
    p = next((p for p in probe.parameters if p.name == name), None)
    return p is not None and p.type != "secret" and values.get(name) is not None
