"""Webhook notifications against a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.config.model import Contact, EscalationLevel, Notifications, SecretRef
from console.notify import EVENTS, NotifyResult, build_payload, escalation_text, notify
from tests.phase4 import PROFILE

SECRET = "XyZ9secretTOKENq7Rw"
HOOK_PATH = f"/services/T0001/B0002/{SECRET}"
ENV_VAR = "ROLLBACK_CONSOLE_TEST_WEBHOOK"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Hook:
    """A webhook receiver: /ok answers 200, /fail 500 (quoting the URL back), /hang never."""

    port: int
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}{HOOK_PATH}"


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            state.received.append(Received(self.path, dict(self.headers), json.loads(raw)))
            if self.path.startswith("/hang"):
                state.release.wait(10)
                return
            if self.path.startswith("/fail"):
                # Like a real service that quotes the request back: the token must still not leak.
                body = f"invalid_token: no such hook {self.path} at http://127.0.0.1:{state.port}{self.path}".encode()
                self.send_response(500)
            else:
                body = b"ok"
                self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


def configured(monkeypatch: pytest.MonkeyPatch, url: str, timeout_s: float = 2.0) -> Notifications:
    monkeypatch.setenv(ENV_VAR, url)
    return Notifications(webhook=SecretRef(env=ENV_VAR), timeout_s=timeout_s)


def assert_no_secret(result: NotifyResult) -> None:
    for text in (result.error or "", result.summary(), repr(result), json.dumps(result.to_dict())):
        assert SECRET not in text, text
        assert HOOK_PATH not in text, text


async def test_posts_slack_shaped_json(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    notifications = configured(monkeypatch, hook.url("ok"))
    fields = {"Environment": "production", "Action": "quick", "Operator": "alice", "Run": "r-1"}
    result = await notify(notifications, "run_started", "Quick rollback of production started", fields)
    assert result.ok and result.status == 200 and result.error is None and not result.skipped
    assert result.event == "run_started" and result.webhook == f"${ENV_VAR}" and result.elapsed_s < 2
    assert result.summary().startswith("notified (run_started, HTTP 200")
    assert_no_secret(result)

    [got] = hook.received
    assert got.path == f"/ok{HOOK_PATH}"
    assert got.headers["Content-Type"] == "application/json"
    body = got.body
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith(EVENTS["run_started"] + ": Quick rollback of production started")
    assert "Operator: alice" in body["text"]
    header, section, field_section, context = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": EVENTS["run_started"], "emoji": True}}
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": "Quick rollback of production started"}}
    assert field_section["type"] == "section"
    assert field_section["fields"][0] == {"type": "mrkdwn", "text": "*Environment*\nproduction"}
    assert len(field_section["fields"]) == 4
    assert context["type"] == "context" and "run_started" in context["elements"][0]["text"]


@pytest.mark.parametrize("event", list(EVENTS))
async def test_every_event_has_a_title(hook: Hook, monkeypatch: pytest.MonkeyPatch, event: str) -> None:
    result = await notify(configured(monkeypatch, hook.url("ok")), event, "something happened")
    assert result.ok
    assert hook.received[-1].body["blocks"][0]["text"]["text"] == EVENTS[event]


def test_payload_escapes_markup_and_respects_slack_limits() -> None:
    fields = {f"k{i}": f"v{i}" for i in range(23)}
    payload = build_payload("escalation", "p95 > 5 s & rising <now>", fields)
    assert payload["blocks"][1]["text"]["text"] == "p95 &gt; 5 s &amp; rising &lt;now&gt;"
    field_sections = [b for b in payload["blocks"] if "fields" in b]
    assert [len(b["fields"]) for b in field_sections] == [10, 10, 3]  # Slack allows 10 per section
    long = build_payload("x_y", "a" * 5000)
    assert len(long["blocks"][1]["text"]["text"]) == 3000 and long["blocks"][0]["text"]["text"] == "X y"
    assert len(long["text"]) <= 3000
    json.dumps(payload)  # plain JSON, nothing exotic


async def test_server_error_is_reported_without_the_url(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    result = await notify(configured(monkeypatch, hook.url("fail")), "run_finished", "done")
    assert not result.ok and result.status == 500 and not result.skipped
    assert result.error is not None
    assert f"webhook at http://127.0.0.1:{hook.port} (URL from ${ENV_VAR}) answered HTTP 500" in result.error
    assert "invalid_token" in result.error and "<webhook URL>" in result.error
    assert_no_secret(result)


async def test_a_server_that_never_answers_is_given_up_on_at_the_timeout(
    hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    result = await notify(configured(monkeypatch, hook.url("hang"), timeout_s=0.3), "emergency_override", "P0")
    took = time.monotonic() - started
    assert not result.ok and result.status is None
    assert result.error is not None and "no answer within 0.3s (timeout)" in result.error
    assert 0.25 <= took < 3.0 and result.elapsed_s < 3.0  # the 0.3 s timeout, not the server's silence
    assert len(hook.received) == 1  # it did reach the server
    assert_no_secret(result)


async def test_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}{HOOK_PATH}"
    result = await notify(configured(monkeypatch, url), "escalation", "level 2")
    assert not result.ok and result.status is None and not result.skipped
    assert result.error is not None and "ConnectError" in result.error and f"127.0.0.1:{port}" in result.error
    assert result.elapsed_s < 2
    assert_no_secret(result)


async def test_bad_url_scheme_is_reported_without_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    result = await notify(configured(monkeypatch, f"ftp://hooks.example.com{HOOK_PATH}"), "escalation", "x")
    assert not result.ok and result.error and "UnsupportedProtocol" in result.error
    assert_no_secret(result)


async def test_no_webhook_configured_is_skipped() -> None:
    result = await notify(Notifications(), "run_started", "hello")
    assert result == NotifyResult(ok=False, skipped=True, error="no webhook configured", event="run_started")
    assert "not notified" in result.summary()


async def test_unset_secret_and_unreadable_file_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    result = await notify(Notifications(webhook=SecretRef(env=ENV_VAR)), "run_started", "x")
    assert not result.ok and not result.skipped
    assert result.error == f"cannot read the webhook URL (${ENV_VAR}): environment variable {ENV_VAR} is not set"
    missing = tmp_path / "webhook"
    result = await notify(Notifications(webhook=SecretRef(file=str(missing))), "run_started", "x")
    assert result.error is not None and str(missing) in result.error and not result.ok
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = await notify(Notifications(webhook=SecretRef(file=str(empty))), "run_started", "x")
    assert result.error == f"the webhook URL (file {empty}) is empty"


async def test_a_callers_client_is_used_and_left_open(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    async with httpx.AsyncClient() as client:
        first = await notify(configured(monkeypatch, hook.url("ok")), "approval_needed", "run r-1", client=client)
        second = await notify(configured(monkeypatch, hook.url("fail")), "approval_needed", "run r-1", client=client)
        assert not client.is_closed
    assert first.ok and second.status == 500
    assert_no_secret(second)
    assert len(hook.received) == 2


def test_escalation_text_names_the_contacts_of_that_level() -> None:
    contacts = (
        Contact("Lead Developer", "Dana Whitfield", "+1 555 0100 / @dana", "24/7"),
        Contact("DevOps", "Ops rotation", "#ops-oncall", "Business hours"),
        Contact("DBA", "DBA on-call", "+1 555 0199", "On-call"),
    )
    level2 = EscalationLevel(2, "Contact on-call developer if rollback doesn't resolve", ("Lead Developer",))
    text = escalation_text(level2, contacts, environment="production", reason="quick rollback did not help")
    assert text.splitlines() == [
        "Escalation level 2 for production: Contact on-call developer if rollback doesn't resolve",
        "Why: quick rollback did not help",
        "- Lead Developer: Dana Whitfield (+1 555 0100 / @dana, 24/7)",
    ]
    level4 = EscalationLevel(4, "Full team escalation for code rollback", ("Lead Developer", "devops", "DBA"))
    text = escalation_text(level4, contacts)
    assert "Dana Whitfield" in text and "Ops rotation (#ops-oncall, Business hours)" in text and "DBA on-call" in text


def test_escalation_text_says_what_is_missing() -> None:
    # The runbook's own table still says TBD: say so rather than page nobody silently.
    text = escalation_text(PROFILE.escalation[2], PROFILE.contacts)
    assert "Escalation level 3: DBA involved if database issues persist" in text
    assert "- DBA: TBD (TBD, On-call) — not filled in yet: set it in [[contacts]]" in text
    text = escalation_text(EscalationLevel(3, "DBA", ("DBA",)), ())
    assert "- DBA: no contact configured (add a [[contacts]] entry with role = 'DBA')" in text
    assert "No contacts are configured" in escalation_text(EscalationLevel(5, "everyone", ()), PROFILE.contacts)
