"""HTTP probes of the API: /health, /health/ready, login and best-times.

Every request has a timeout and a bounded body; every failure becomes a sentence
that says which endpoint and what went wrong, never the password or the token.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from console import safe_json
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


def _snippet(raw: bytes) -> str:
    text = raw[:80].decode("utf-8", errors="replace").replace("\n", " ")
    return repr(text) + ("…" if len(raw) > 80 else "")


async def request(
    client: httpx.AsyncClient, method: str, url: str, *, what: str, expect_json: bool = True, **kwargs: Any
) -> Reply:
    """One bounded request; ProbeFailed says what went wrong and where.

    httpx's timeouts bound each read, not the whole answer: a server that trickles a byte
    at a time would hold the probe forever. The client's read timeout is also the deadline
    for the whole request.
    """
    start = time.monotonic()
    deadline = client.timeout.read or DEFAULT_DEADLINE_S
    try:
        async with asyncio.timeout(deadline):
            async with client.stream(method, url, **kwargs) as response:
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_BODY:
                        raise ProbeFailed(f"{what}: response body larger than {MAX_BODY // (1024 * 1024)} MB")
                status = response.status_code
    except (httpx.TimeoutException, TimeoutError):
        raise ProbeFailed(f"{what}: no answer within {time.monotonic() - start:.1f}s (timeout)") from None
    except httpx.ConnectError as exc:
        raise ProbeFailed(f"{what}: cannot connect ({_reason(exc)})") from None
    except httpx.HTTPError as exc:
        raise ProbeFailed(f"{what}: {type(exc).__name__}: {_reason(exc)}") from None
    except httpx.InvalidURL as exc:  # not an HTTPError: e.g. a bad port from a host's vars
        raise ProbeFailed(f"{what}: invalid URL: {_reason(exc)}") from None
    except (OSError, ValueError, OverflowError, ExceptionGroup) as exc:
        # What the connection layer lets through (a port out of range arrives as a group).
        raise ProbeFailed(f"{what}: cannot connect ({_reason(exc)})") from None
    elapsed = time.monotonic() - start
    if not expect_json:
        return Reply(status, bytes(raw), elapsed)
    try:
        body = safe_json.loads(bytes(raw), max_bytes=MAX_BODY) if raw else None  # depth-bounded, finite
    except ValueError:
        raise ProbeFailed(f"{what}: HTTP {status}, body is not JSON: {_snippet(bytes(raw))}") from None
    return Reply(status, body, elapsed)


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # the cause, not "errors in a TaskGroup"
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return text.split("\n")[0][:200]


async def probe_health(client: httpx.AsyncClient, base: str) -> HealthReport:
    health: dict[str, Any] = {}
    try:
        r = await request(client, "GET", f"{base}/health", what="GET /health")
        body = r.body if isinstance(r.body, dict) else {}
        health = dict(health_status=r.status, health=body.get("status"), version=body.get("version"))
        if r.status != 200:
            health["health_error"] = f"GET /health: HTTP {r.status}"
    except ProbeFailed as exc:
        health = dict(health_error=str(exc))
    try:
        r = await request(client, "GET", f"{base}/health/ready", what="GET /health/ready")
        body = r.body if isinstance(r.body, dict) else {}
        components = body.get("components") or {}
        comps = tuple(
            (str(k), _component_status(v)) for k, v in (components.items() if isinstance(components, dict) else [])
        )
        ready = body.get("ready") if isinstance(body.get("ready"), bool) else (r.status == 200 and None)
        health.update(ready=ready if r.status == 200 else False, ready_status=r.status, ready_components=comps)
        if r.status != 200:
            health["ready_error"] = f"GET /health/ready: HTTP {r.status}"
    except ProbeFailed as exc:
        health.update(ready_error=str(exc))
    return HealthReport(**health)


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
    if r.status != 200 or not isinstance(token, str):
        return RecommendationReport(
            login_status=r.status, login_error=f"POST /auth/login: HTTP {r.status}, no access_token in the answer"
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
    base = dict(login_status=200, login_latency_s=login_latency, status=b.status, latency_s=b.elapsed_s)
    if b.status != 200:
        detail = ""
        if isinstance(b.body, dict):
            detail = str(b.body.get("detail") or b.body.get("error") or "")[:200]
        return RecommendationReport(**base, error=f"{what}: HTTP {b.status}" + (f": {detail}" if detail else ""))
    data = b.body.get("data") if isinstance(b.body, dict) else None
    if not isinstance(data, dict):
        return RecommendationReport(**base, error=f"{what}: HTTP 200 but no `data` object in the answer")
    if data.get("status") == "failed":
        # The API answers 200 even when its query failed: that is an error.
        return RecommendationReport(
            **base, failed=True, failure=str(data.get("error") or "status: failed")[:300], data_present=False
        )
    combos = data.get("best_day_hour_combinations")
    content = data.get("content_type_recommendations")
    advanced = bool(combos) or bool(content)  # non-empty lists; null-checks are wrong (DESIGN §2)
    total = data.get("total_posts_analyzed")
    best = data.get("best_times")
    return RecommendationReport(
        **base,
        mode="advanced" if advanced else "legacy",
        total_posts=total if isinstance(total, int) else None,
        data_present=bool(best) and isinstance(total, int) and total > 0,
    )
