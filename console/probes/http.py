"""HTTP probes of the API: /health, /health/ready, login and best-times.

Every request has a timeout and a bounded body; every failure becomes a sentence
that says which endpoint and what went wrong, never the password or the token.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx

from console.probes import jsonbody
from console.probes.snapshot import HealthReport, RecommendationReport

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
    client: httpx.AsyncClient, method: str, url: str, *, what: str, expect_json: bool = True, **kwargs: Any
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
            async with client.stream(method, url, **kwargs) as response:
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


async def probe_health(client: httpx.AsyncClient, base: str) -> HealthReport:
    """/health and /health/ready at once: a dead service costs one probe timeout, not two."""
    health, ready = await asyncio.gather(_health(client, base), _ready(client, base))
    return HealthReport(**health, **ready)


async def _health(client: httpx.AsyncClient, base: str) -> dict[str, Any]:
    what = "GET /health"
    try:
        r = await request(client, "GET", f"{base}/health", what=what)
    except ProbeFailed as exc:
        return dict(health_error=str(exc))
    if r.status != 200:
        return dict(health_status=r.status, health_error=_status_error(what, r))
    if not isinstance(r.body, dict):
        return dict(health_status=r.status, health_error=f"{what}: HTTP 200 but the answer is {seen(r.body)}")
    status, version = r.body.get("status"), r.body.get("version")
    out: dict[str, Any] = dict(health_status=r.status, health=status if isinstance(status, str) else None)
    if isinstance(version, str):
        out["version"] = version[:80]
    elif isinstance(version, int | float) and not isinstance(version, bool):
        out["version"] = str(version)[:80]
    if not isinstance(status, str):
        out["health_error"] = f"{what}: HTTP 200 but `status` is {seen(status)}, not a string"
    return out


async def _ready(client: httpx.AsyncClient, base: str) -> dict[str, Any]:
    what = "GET /health/ready"
    try:
        r = await request(client, "GET", f"{base}/health/ready", what=what)
    except ProbeFailed as exc:
        return dict(ready_error=str(exc))
    body = r.body if isinstance(r.body, dict) else {}
    components = body.get("components")
    items = components.items() if isinstance(components, dict) else ()
    comps = tuple((str(k)[:80], _component_status(v)) for k, v in items)
    out: dict[str, Any] = dict(ready_status=r.status, ready_components=comps)
    if r.status != 200:
        if body.get("ready") is False:  # the API saying "not ready" (503): an answer, a failing one
            return dict(out, ready=False)
        return dict(out, ready=False, ready_error=_status_error(what, r))  # not an answer: an error
    if not isinstance(r.body, dict):
        return dict(out, ready=None, ready_error=f"{what}: HTTP 200 but the answer is {seen(r.body)}")
    ready = body.get("ready")
    if not isinstance(ready, bool):
        return dict(out, ready=None, ready_error=f"{what}: HTTP 200 but `ready` is {seen(ready)}, not true or false")
    return dict(out, ready=ready)


def _component_status(value: Any) -> str:
    if isinstance(value, dict):
        status = str(value.get("status", "?"))
        error = value.get("error")
        return f"{status}: {str(error)[:120]}" if error else status
    return str(value)[:120]


async def probe_recommendations(
    client: httpx.AsyncClient, base: str, *, email: str, password: str | None, channel_id: int, days: int
) -> RecommendationReport:
    """Log in, then ask for best times, as the runbook's "Test recommendations"."""
    if password is None:
        return RecommendationReport(login_error="login: no password (see the environment's password reference)")
    try:
        r = await request(
            client,
            "POST",
            f"{base}/auth/login",
            what="POST /auth/login",
            json={"email": email, "password": password, "remember_me": False},
        )
    except ProbeFailed as exc:
        return RecommendationReport(login_error=str(exc))
    token = r.body.get("access_token") if isinstance(r.body, dict) else None
    if r.status == 401:
        return RecommendationReport(login_status=401, login_error=f"POST /auth/login: 401, {email} was refused")
    if r.status != 200:
        return RecommendationReport(login_status=r.status, login_error=_status_error("POST /auth/login", r))
    if not isinstance(token, str) or not token:
        got = f"`access_token` is {seen(token)}" if isinstance(r.body, dict) else f"the answer is {seen(r.body)}"
        return RecommendationReport(
            login_status=r.status, login_error=f"POST /auth/login: HTTP 200 but {got}, not a token"
        )
    path = f"/analytics/predictive/best-times/{channel_id}"
    what = f"GET {path}"
    try:
        b = await request(
            client,
            "GET",
            f"{base}{path}",
            what=what,
            params={"days": days},
            headers={"Authorization": f"Bearer {token}"},
        )
    except ProbeFailed as exc:
        return RecommendationReport(login_status=200, login_latency_s=r.elapsed_s, error=str(exc))
    return _read_best_times(b, what, login_latency=r.elapsed_s)


def _read_best_times(b: Reply, what: str, *, login_latency: float) -> RecommendationReport:
    """The best-times answer, every level of its envelope checked for type: a wrong type is
    an error that says what was seen, never a pass."""
    base = dict(login_status=200, login_latency_s=login_latency, status=b.status, latency_s=b.elapsed_s)
    if b.status != 200:
        detail = ""
        if isinstance(b.body, dict):
            found = b.body.get("detail") or b.body.get("error") or ""
            detail = (found if isinstance(found, str) else seen(found))[:200]
        return RecommendationReport(**base, error=_status_error(what, b) + (f": {detail}" if detail else ""))
    body = b.body
    if not isinstance(body, dict):
        return RecommendationReport(**base, error=f"{what}: HTTP 200 but the answer is {seen(body)}, not an object")
    data = body.get("data")
    if not isinstance(data, dict):
        return RecommendationReport(**base, error=f"{what}: HTTP 200 but `data` is {seen(data)}, not an object")
    status, success = data.get("status"), body.get("success")
    wrong = []
    if status is not None and not isinstance(status, str):
        wrong.append(f"`data.status` is {seen(status)}, not a string")
    if success is not None and not isinstance(success, bool):
        wrong.append(f"`success` is {seen(success)}, not true or false")
    if not wrong and (status == "failed" or success is False):
        # The API answers 200 even when its query failed: that is an error.
        error = data.get("error")
        said = "status: failed" if status == "failed" else "success: false"
        failure = error if isinstance(error, str) and error else said
        return RecommendationReport(**base, failed=True, failure=failure[:300], data_present=False)
    total = data.get("total_posts_analyzed")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        wrong.append(f"`data.total_posts_analyzed` is {seen(total)}, not a whole number")
    best = data.get("best_times")
    if not isinstance(best, list):
        wrong.append(f"`data.best_times` is {seen(best)}, not a list")
    lists = {}
    for key in ("best_day_hour_combinations", "content_type_recommendations"):
        value = data.get(key)
        if value is not None and not isinstance(value, list):
            wrong.append(f"`data.{key}` is {seen(value)}, not a list")
        lists[key] = value
    if wrong:
        return RecommendationReport(**base, error=f"{what}: HTTP 200 but " + "; ".join(wrong))
    # Non-empty lists mean advanced; null-checks are wrong (DESIGN §2).
    advanced = any(bool(v) for v in lists.values())
    return RecommendationReport(
        **base,
        mode="advanced" if advanced else "legacy",
        total_posts=total,
        data_present=bool(best) and total > 0,
    )
