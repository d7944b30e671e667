"""Notifications to a Slack-compatible incoming webhook.

A notification must never stop or slow a rollback: ``notify`` never raises (except for
a cancellation of the caller), gives up after the configured timeout, and returns a
NotifyResult for the journal. The webhook URL is a secret (it is the credential): it
is resolved only here and never appears in a result, a log line or an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from console import safe_text
from console.config.model import Contact, EscalationLevel, Notifications, SecretError
from console.journal.redact import Redactor

EVENTS: dict[str, str] = {
    "run_started": "🔄 Rollback started",
    "run_finished": "🏁 Rollback finished",
    "emergency_override": "🚨 Emergency override: production rollback without prior approval",
    "escalation": "📞 Escalation",
    "approval_needed": "🔐 Production rollback waiting for approval",
}
MAX_BODY = 2048  # bytes of the webhook's answer kept for an error message
# Slack's limits for the blocks used here.
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FIELDS_PER_SECTION = 10
MAX_FIELD_SECTIONS = 4
HIDDEN = "<webhook URL>"


@dataclass(frozen=True)
class NotifyResult:
    ok: bool
    status: int | None = None  # HTTP status, when there was an answer
    error: str | None = None  # never contains the webhook URL
    elapsed_s: float = 0.0
    skipped: bool = False  # nothing configured: nothing was tried
    event: str = ""
    webhook: str | None = None  # where the URL came from ("$VAR" / "file …"), not the URL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.ok:
            return f"notified ({self.event}, HTTP {self.status}, {self.elapsed_s:.2f}s)"
        if self.skipped:
            return f"not notified ({self.event}): {self.error}"
        return f"notification failed ({self.event}) after {self.elapsed_s:.2f}s: {self.error}"


def _mrkdwn(text: str) -> str:
    # Slack reads <, > and & as markup; escape them so the text shows as typed.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def title_for(event: str) -> str:
    return EVENTS.get(event, event.replace("_", " ").capitalize() or "Rollback console")


def build_payload(event: str, text: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` carries everything (for receivers that
    ignore blocks, and for the notification preview); ``blocks`` lay it out."""
    # The webhook is an output channel like any other: no control or bidi character, no secret.
    redactor = Redactor()

    def safe(value: object) -> str:
        return safe_text.terminal(redactor.text(str(value)))

    title = safe(title_for(event))
    text = safe(text)
    items = [(safe(k), safe(v)) for k, v in (fields or {}).items()]
    plain = "\n".join([f"{title}: {text}", *(f"{key}: {value}" for key, value in items)])
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_MAX), "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(_mrkdwn(text) or " ", SECTION_MAX)}},
    ]
    for start in range(0, min(len(items), FIELDS_PER_SECTION * MAX_FIELD_SECTIONS), FIELDS_PER_SECTION):
        chunk = items[start : start + FIELDS_PER_SECTION]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _clip(f"*{_mrkdwn(str(k))}*\n{_mrkdwn(str(v))}", FIELD_MAX)}
                    for k, v in chunk
                ],
            }
        )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"rollback-console · {event}"}]})
    return {"text": _clip(_mrkdwn(plain), SECTION_MAX), "blocks": blocks}


def redact(text: str, url: str) -> str:
    """``text`` with the webhook URL, and every distinctive piece of it, replaced."""
    secrets = {url, url.split("://", 1)[-1]}
    try:
        secrets.add(str(httpx.URL(url)))  # the form httpx itself prints
    except Exception:
        pass
    try:
        parts = urlsplit(url)
        if len(parts.path) > 1:
            secrets.update({parts.path + (f"?{parts.query}" if parts.query else ""), parts.path})
        # Tokens may show up alone (e.g. one path segment quoted in an error).
        secrets.update(segment for segment in parts.path.split("/") if len(segment) >= 6)
        secrets.update(value for _, value in parse_qsl(parts.query) if len(value) >= 6)
        if parts.password:
            secrets.add(parts.password)
    except ValueError:
        pass
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


def _origin(url: str) -> str:
    """scheme://host[:port], which names the receiver without its credential."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}" if parts.scheme else "the webhook"
    except ValueError:
        return "the webhook"


async def notify(
    notifications: Notifications,
    event: str,
    text: str,
    fields: dict[str, str] | None = None,
    *,
    client: httpx.AsyncClient | None = None,
) -> NotifyResult:
    """POST one notification. Never raises; returns within ``notifications.timeout_s``."""
    clock = time.monotonic()
    ref = notifications.webhook
    if ref is None:
        return NotifyResult(ok=False, skipped=True, error="no webhook configured", event=event)
    source = ref.describe()

    def result(ok: bool, status: int | None = None, error: str | None = None) -> NotifyResult:
        return NotifyResult(ok, status, error, time.monotonic() - clock, event=event, webhook=source)

    url = ""
    try:
        url = ref.resolve().strip()
        if not url:
            return result(False, error=f"the webhook URL ({source}) is empty")
        payload = build_payload(event, text, fields)
        timeout = max(0.05, float(notifications.timeout_s))
        where = f"webhook at {_origin(url)} (URL from {source})"
        try:
            # httpx's timeout is per phase (connect, write, each read); this caps the whole call.
            async with asyncio.timeout(timeout):
                if client is None:
                    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as own:
                        status, body = await _post(own, url, payload, timeout)
                else:
                    status, body = await _post(client, url, payload, timeout)
        except (TimeoutError, httpx.TimeoutException):
            return result(False, error=f"{where}: no answer within {timeout:g}s (timeout)")
        except httpx.HTTPError as exc:
            detail = str(exc) or type(exc).__name__
            return result(False, error=redact(f"{where}: {type(exc).__name__}: {detail}", url))
        if 200 <= status < 300:
            return result(True, status)
        answer = redact(body.decode("utf-8", errors="replace").strip(), url)
        answer = " ".join(answer.split())[:200]
        return result(False, status, f"{where} answered HTTP {status}" + (f": {answer}" if answer else ""))
    except SecretError as exc:
        return result(False, error=f"cannot read the webhook URL ({source}): {exc}")
    except Exception as exc:  # a notification must never break a rollback
        detail = f"{type(exc).__name__}: {exc}"
        return result(False, error=redact(detail, url) if url else detail)


async def _post(client: httpx.AsyncClient, url: str, payload: dict[str, Any], timeout: float) -> tuple[int, bytes]:
    async with client.stream("POST", url, json=payload, timeout=timeout) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= MAX_BODY:  # enough to explain a failure; do not read a giant answer
                break
        return response.status_code, bytes(body[:MAX_BODY])


def escalation_text(
    level: EscalationLevel,
    contacts: Sequence[Contact],
    *,
    environment: str | None = None,
    reason: str | None = None,
) -> str:
    """The message for escalating to ``level``, naming that level's contacts from config."""
    where = f" for {environment}" if environment else ""
    lines = [f"Escalation level {level.level}{where}: {level.description}"]
    if reason:
        lines.append(f"Why: {reason}")
    if not level.contacts:
        lines.append("No contacts are configured for this level (add roles to its [[escalation]] entry).")
    for role in level.contacts:
        matches = [c for c in contacts if c.role.strip().casefold() == role.strip().casefold()]
        if not matches:
            lines.append(f"- {role}: no contact configured (add a [[contacts]] entry with role = {role!r})")
            continue
        for c in matches:
            availability = f", {c.availability}" if c.availability else ""
            note = "" if c.filled_in else " — not filled in yet: set it in [[contacts]]"
            lines.append(f"- {c.role}: {c.name} ({c.contact}{availability}){note}")
    return "\n".join(lines)
