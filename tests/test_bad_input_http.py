"""Bad input, family "HTTP answers": every wrong way the API can answer, one environment each.

A real HTTP server on loopback answers like the API on every endpoint except the one a case
breaks (``/<case>/<endpoint>``). The real CLI probes them all: ``status --json`` and ``status``
once for every case at once, ``check CASE --json`` once per case. Each case asserts the exit
code, a message that says what went wrong and where (endpoint, host:port), no traceback (the
CLI helper refuses one), no secret in the output, and no hang (a deadline per case).
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_ssh import free_port
from tests.phase4 import ADVANCED
from tests.status_support import (
    GOOD_PASSWORD,
    CliResult,
    best_times_body,
    checks_of,
    fake_environment,
    run_cli_many,
    write_fake_env_files,
)

# pytest-xdist: the whole file on one worker, so its module-scoped fixture is set up once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_bad_input_http")]

PROBE_TIMEOUT_S = 3.0
# A case's deadline: a stalled or endless answer is cut at the probe timeout (health and
# readiness at once, then login, then best-times: at most a few timeouts), never waited out.
DEADLINE_S = 8 * PROBE_TIMEOUT_S
CHECK_DEADLINE_S = DEADLINE_S + 20  # + the CLI's own start-up, eight at once on a shared machine
BEST = "/analytics/predictive/best-times/-100"
TOKEN = "tok-hostile-123"

Handler = BaseHTTPRequestHandler
Answer = Callable[[Handler, "HostileAPI"], None]


# --- how a case answers ---------------------------------------------------------------------------


def send(h: Handler, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    for k, v in headers.items():
        h.send_header(k.replace("_", "-"), v)
    h.end_headers()
    h.wfile.write(body)


def answer(status: int, body: Any, content_type: str = "application/json") -> Answer:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda h, api: send(h, status, data, content_type)


def best(mutate: Callable[[dict[str, Any]], Any]) -> Answer:
    """The good best-times answer, changed by ``mutate`` (which may return a new top level)."""
    body = best_times_body()
    changed = mutate(body)
    return answer(200, body if changed is None else changed)


def with_data(key: str, value: Any) -> Answer:
    def mutate(body: dict[str, Any]) -> None:
        body["data"][key] = value

    return best(mutate)


def raw_best(replace: str, literal: str) -> Answer:
    """The good answer with one value replaced by a raw JSON literal (NaN, Infinity, 1e999)."""
    text = json.dumps(best_times_body()).replace(replace, literal, 1)
    return answer(200, text.encode())


def deep(n: int = 100_000) -> Answer:
    return answer(200, b"[" * n + b"]" * n)


def stall(h: Handler, api: HostileAPI) -> None:
    api.stop.wait(60)


def drip(h: Handler, api: HostileAPI) -> None:
    """Headers at once, then a byte every 0.2 s: no single read waits long."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "10000")
    h.end_headers()
    for _ in range(10000):
        if api.stop.wait(0.2):
            return
        h.wfile.write(b" ")
        h.wfile.flush()


def endless(h: Handler, api: HostileAPI) -> None:
    """A chunked body that never ends, as fast as the probe reads it."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    chunk = b"[" + b"0," * 32767 + b"0"
    while not api.stop.is_set():
        h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def giant(h: Handler, api: HostileAPI) -> None:
    pad = b'{"pad": "' + b"x" * (1024 * 1024) + b'"},'
    body = b"[" + pad * 6 + b"{}]"
    send(h, 200, body)


def reset_mid_body(h: Handler, api: HostileAPI) -> None:
    """Promise 1000 bytes, send 20, then reset the connection (RST, not a clean close)."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    h.wfile.write(b'{"status": "healthy"')
    h.wfile.flush()
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.close_connection = True
    h.connection.close()


def redirect_to_itself(h: Handler, api: HostileAPI) -> None:
    send(h, 302, b"", "text/html", Location=h.path.split("?")[0])


def rendezvous(h: Handler, api: HostileAPI) -> None:
    """/health answers only once /health/ready has arrived too, and the other way round:
    probes that ask one after the other time out here; probes that ask both at once pass."""
    try:
        api.barrier.wait(timeout=20)
    except threading.BrokenBarrierError:
        return
    good = GOOD[h.path.split("?")[0].split("/", 2)[2]]
    good(h, api)


GOOD: dict[str, Answer] = {
    "health": answer(200, {"status": "healthy", "timestamp": "t", "service": "analyticbot", "version": "7.5.0"}),
    "health/ready": answer(200, {"ready": True, "components": {"database": {"status": "healthy"}}}),
    "auth/login": answer(200, {"access_token": TOKEN, "token_type": "bearer"}),
    BEST[1:]: answer(200, best_times_body()),
}


# --- the cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    answers: dict[str, Answer]  # endpoint (no leading slash) → how it answers
    where: str  # "health" | "ready" | "login" | "best": which message to read
    says: tuple[str, ...]  # what that message must say (each a substring)
    failed: frozenset[str]  # the checks that must fail
    assessed: bool = False  # status could assess it all (then only the matrix speaks)
    password: str = GOOD_PASSWORD
    extra: dict[str, Any] = field(default_factory=dict)


def case(name: str, endpoint: str, how: Answer, *says: str, failed: set[str], **kw: Any) -> Case:
    where = {"health": "health", "health/ready": "ready", "auth/login": "login"}.get(endpoint, "best")
    return Case(name, {endpoint: how}, where, says, frozenset(failed), **kw)


NOT_JSON = "is not JSON (Expecting value at line 1 column 1)"
RECS = {"recommendations", "response_time"}  # no best-times answer: both fail
RECS_ONLY = {"recommendations"}  # an answer in time, but not a usable one

CASES = [
    # /health
    case(
        "health-html",
        "health",
        answer(200, b"<html>It works!</html>", "text/html"),
        f"GET /health: HTTP 200, body (text/html) {NOT_JSON}: '<html>It works!</html>'",
        failed={"health"},
    ),
    case(
        "health-deep",
        "health",
        deep(),
        "GET /health: HTTP 200, body (application/json) is nested 100000 levels deep (more than 64)",
        failed={"health"},
    ),
    case(
        "health-nan",
        "health",
        answer(200, b'{"status": "healthy", "version": NaN}'),
        "GET /health: HTTP 200, body (application/json) holds NaN, which JSON does not allow",
        failed={"health"},
    ),
    case(
        "health-500",
        "health",
        answer(500, {"detail": "Internal Server Error"}),
        "GET /health: HTTP 500",
        failed={"health"},
    ),
    case(
        "health-502",
        "health",
        answer(502, b"<html>Bad Gateway</html>", "text/html"),
        f"GET /health: HTTP 502, body (text/html) {NOT_JSON}",
        failed={"health"},
    ),
    case(
        "health-401", "health", answer(401, {"detail": "Not authenticated"}), "GET /health: HTTP 401", failed={"health"}
    ),
    case(
        "health-redirect-loop",
        "health",
        redirect_to_itself,
        "GET /health: HTTP 302, a redirect to '/health-redirect-loop/health' (not followed)",
        failed={"health"},
    ),
    case("health-empty", "health", answer(200, b""), "GET /health: HTTP 200 but the answer is null", failed={"health"}),
    case(
        "health-status-type",
        "health",
        answer(200, {"status": 1}),
        "GET /health: HTTP 200 but `status` is a number (1), not a string",
        failed={"health"},
    ),
    case(
        "health-stalled",
        "health",
        stall,
        f"GET /health: no answer within {PROBE_TIMEOUT_S}s (timeout)",
        failed={"health"},
    ),
    case(
        "health-reset",
        "health",
        reset_mid_body,
        "GET /health: 127.0.0.1:{port} reset the connection while answering",
        failed={"health"},
    ),
    # /health/ready
    case("ready-500", "health/ready", answer(500, b"", "text/plain"), "GET /health/ready: HTTP 500", failed={"health"}),
    case(
        "ready-401",
        "health/ready",
        answer(401, {"detail": "Not authenticated"}),
        "GET /health/ready: HTTP 401",
        failed={"health"},
    ),
    case(
        "ready-503-not-an-answer",
        "health/ready",
        answer(503, b"<html>Service Unavailable</html>", "text/html"),
        f"GET /health/ready: HTTP 503, body (text/html) {NOT_JSON}",
        failed={"health"},
    ),
    case(
        "ready-502",
        "health/ready",
        answer(502, {"detail": "Bad Gateway"}),
        "GET /health/ready: HTTP 502",
        failed={"health"},
    ),
    case(
        "ready-deep",
        "health/ready",
        deep(),
        "GET /health/ready: HTTP 200, body (application/json) is nested",
        failed={"health"},
    ),
    case(
        "ready-type",
        "health/ready",
        answer(200, {"ready": "yes"}),
        "GET /health/ready: HTTP 200 but `ready` is a string ('yes'), not true or false",
        failed={"health"},
    ),
    # POST /auth/login
    case(
        "login-500",
        "auth/login",
        answer(500, b"<html>500</html>", "text/html"),
        f"POST /auth/login: HTTP 500, body (text/html) {NOT_JSON}",
        failed=RECS,
    ),
    case("login-502", "auth/login", answer(502, {"detail": "Bad Gateway"}), "POST /auth/login: HTTP 502", failed=RECS),
    case(
        "login-401",
        "auth/login",
        answer(401, {"detail": "Invalid credentials"}),
        "POST /auth/login: 401, ops-probe@analyticbot.example was refused",
        failed=RECS,
    ),
    case(
        "login-token-type",
        "auth/login",
        answer(200, {"access_token": 5}),
        "POST /auth/login: HTTP 200 but `access_token` is a number (5), not a token",
        failed=RECS,
    ),
    case(
        "login-deep", "auth/login", deep(), "POST /auth/login: HTTP 200, body (application/json) is nested", failed=RECS
    ),
    Case(
        "login-empty-password",
        {},
        "login",
        ("login: the password in file ", " is empty; nothing was sent"),
        frozenset(RECS),
        password="",
    ),
    # GET best-times: status codes and bodies that are not the API's
    case(
        "best-401",
        BEST[1:],
        answer(401, {"detail": "Not authenticated"}),
        f"GET {BEST}: HTTP 401: Not authenticated",
        failed=RECS_ONLY,
    ),
    case(
        "best-500",
        BEST[1:],
        answer(500, {"detail": "Internal Server Error"}),
        f"GET {BEST}: HTTP 500: Internal Server Error",
        failed=RECS_ONLY,
    ),
    case(
        "best-502",
        BEST[1:],
        answer(502, b"<html>Bad Gateway</html>", "text/html"),
        f"GET {BEST}: HTTP 502, body (text/html) {NOT_JSON}",
        failed=RECS,
    ),
    case(
        "best-html",
        BEST[1:],
        answer(200, b"<html>Bad Gateway</html>", "text/html"),
        f"GET {BEST}: HTTP 200, body (text/html) {NOT_JSON}",
        failed=RECS,
    ),
    case(
        "best-html-as-json",
        BEST[1:],
        answer(200, b"<html>oops</html>", "application/json"),
        f"GET {BEST}: HTTP 200, body (application/json) {NOT_JSON}",
        failed=RECS,
    ),
    case("best-giant", BEST[1:], giant, f"GET {BEST}: response body larger than 4 MB", failed=RECS),
    case("best-endless", BEST[1:], endless, f"GET {BEST}: response body larger than 4 MB", failed=RECS),
    case("best-drip", BEST[1:], drip, f"GET {BEST}: no answer within {PROBE_TIMEOUT_S}s (timeout)", failed=RECS),
    case("best-stalled", BEST[1:], stall, f"GET {BEST}: no answer within {PROBE_TIMEOUT_S}s (timeout)", failed=RECS),
    case(
        "best-reset",
        BEST[1:],
        reset_mid_body,
        f"GET {BEST}: 127.0.0.1:{{port}} reset the connection while answering",
        failed=RECS,
    ),
    case(
        "best-redirect-loop",
        BEST[1:],
        redirect_to_itself,
        f"GET {BEST}: HTTP 302, a redirect to '/best-redirect-loop{BEST}' (not followed)",
        failed=RECS_ONLY,
    ),
    case(
        "best-deep",
        BEST[1:],
        deep(),
        f"GET {BEST}: HTTP 200, body (application/json) is nested 100000 levels deep",
        failed=RECS,
    ),
    case(
        "best-nan",
        BEST[1:],
        raw_best('"total_posts_analyzed": 120', '"total_posts_analyzed": NaN'),
        f"GET {BEST}: HTTP 200, body (application/json) holds NaN, which JSON does not allow",
        failed=RECS,
    ),
    case(
        "best-infinity",
        BEST[1:],
        raw_best('"confidence": 0.8', '"confidence": -Infinity'),
        "holds -Infinity, which JSON does not allow",
        failed=RECS,
    ),
    case(
        "best-1e999",
        BEST[1:],
        raw_best('"total_posts_analyzed": 120', '"total_posts_analyzed": 1e999'),
        "holds the number 1e999, too large to be finite",
        failed=RECS,
    ),
    case(
        "best-huge-int",
        BEST[1:],
        raw_best('"total_posts_analyzed": 120', '"total_posts_analyzed": ' + "9" * 5000),
        "holds an integer with too many digits",
        failed=RECS,
    ),
    case(
        "best-not-utf8",
        BEST[1:],
        answer(200, b'{"data": "\xff\xfe"}'),
        "body (application/json) is not UTF-8 (byte 10)",
        failed=RECS,
    ),
    # HTTP 200, but the API says it failed: an error, never data
    case(
        "best-status-failed",
        BEST[1:],
        with_data("status", "failed"),
        "HTTP 200 with status: failed",
        failed=RECS_ONLY,
        assessed=True,
    ),
    case(
        "best-success-false",
        BEST[1:],
        best(lambda b: b.update(success=False)),
        "HTTP 200 with success: false",
        failed=RECS_ONLY,
        assessed=True,
    ),
    # Wrong types at every level of the envelope
    case(
        "type-body-list",
        BEST[1:],
        answer(200, [1, 2]),
        f"GET {BEST}: HTTP 200 but `$` is an array of 2, not object",
        failed=RECS_ONLY,
    ),
    case(
        "type-body-string",
        BEST[1:],
        answer(200, "ok"),
        "HTTP 200 but `$` is a string ('ok'), not object",
        failed=RECS_ONLY,
    ),
    case(
        "type-data-list",
        BEST[1:],
        best(lambda b: b.update(data=[])),
        "HTTP 200 but `data` is an empty array, not object",
        failed=RECS_ONLY,
    ),
    case(
        "type-data-null",
        BEST[1:],
        best(lambda b: b.update(data=None)),
        "HTTP 200 but `data` is null, not object",
        failed=RECS_ONLY,
    ),
    case(
        "type-status-number",
        BEST[1:],
        with_data("status", 0),
        "`data.status` is an integer (0), not string or null",
        failed=RECS_ONLY,
    ),
    case(
        "type-success-string",
        BEST[1:],
        best(lambda b: b.update(success="yes")),
        "`success` is a string ('yes'), not boolean or null",
        failed=RECS_ONLY,
    ),
    case(
        "type-total-bool",
        BEST[1:],
        with_data("total_posts_analyzed", True),
        "`data.total_posts_analyzed` is a boolean (True), not integer",
        failed=RECS_ONLY,
    ),
    case(
        "type-total-string",
        BEST[1:],
        with_data("total_posts_analyzed", "120"),
        "`data.total_posts_analyzed` is a string ('120'), not integer",
        failed=RECS_ONLY,
    ),
    case(
        "type-total-float",
        BEST[1:],
        with_data("total_posts_analyzed", 1.5),
        "`data.total_posts_analyzed` is a number (1.5), not integer",
        failed=RECS_ONLY,
    ),
    case(
        "type-total-negative",
        BEST[1:],
        with_data("total_posts_analyzed", -1),
        "`data.total_posts_analyzed` is -1, not at least 0",
        failed=RECS_ONLY,
    ),
    case(
        "type-best-times-string",
        BEST[1:],
        with_data("best_times", "9am"),
        "`data.best_times` is a string ('9am'), not array",
        failed=RECS_ONLY,
    ),
    case(
        "type-best-times-object",
        BEST[1:],
        with_data("best_times", {}),
        "`data.best_times` is an empty object, not array",
        failed=RECS_ONLY,
    ),
    case(
        "type-combos-string",
        BEST[1:],
        with_data("best_day_hour_combinations", "x"),
        "`data.best_day_hour_combinations` is a string ('x'), not array or null",
        failed=RECS_ONLY,
    ),
    case(
        "type-content-number",
        BEST[1:],
        with_data("content_type_recommendations", 1),
        "`data.content_type_recommendations` is an integer (1), not array or null",
        failed=RECS_ONLY,
    ),
    # Well-formed answers in an unusual dress: read, and nothing to say
    case("best-json-as-text", BEST[1:], answer(200, best_times_body(), "text/plain"), failed=set(), assessed=True),
    Case(
        "health-ready-at-once",
        {"health": rendezvous, "health/ready": rendezvous},
        "health",
        (),
        frozenset(),
        assessed=True,
    ),
    # Nothing listens at all
    Case(
        "refused",
        {},
        "health",
        ("GET /health: cannot connect to 127.0.0.1:{refused} (connection refused)",),
        frozenset({"health", *RECS}),
        extra={"api_url": "refused"},
    ),
]


# --- the server ----------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a real server's backlog; the default 5 resets connections under load

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a probe that hangs up on a giant or endless answer is the point


class HostileAPI:
    """One real HTTP server for every case: ``/<case>/<endpoint>``."""

    def __init__(self, cases: list[Case]) -> None:
        self.cases = {c.name: c for c in cases}
        self.stop = threading.Event()
        self.barrier = threading.Barrier(2)
        self.requests: list[tuple[str, str]] = []
        api = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                api.handle(self)

            def do_POST(self) -> None:
                api.handle(self)

        self.server = _Server(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def handle(self, h: Handler) -> None:
        name, _, endpoint = h.path.split("?")[0].lstrip("/").partition("/")
        self.requests.append((name, endpoint))
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else {}
        try:
            c = self.cases[name]
            how = c.answers.get(endpoint)
            if how is not None:
                return how(h, self)
            if endpoint == "auth/login" and body.get("password") != GOOD_PASSWORD:
                return send(h, 401, b'{"detail": "Invalid credentials"}')
            if endpoint == BEST[1:] and h.headers.get("Authorization") != f"Bearer {TOKEN}":
                return send(h, 401, b'{"detail": "Not authenticated"}')
            return GOOD[endpoint](h, self)
        except (BrokenPipeError, ConnectionResetError, OSError):
            return None

    def __enter__(self) -> HostileAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.barrier.abort()
        self.server.shutdown()
        self.server.server_close()


# --- one run of the CLI over every case ------------------------------------------------------------


@dataclass
class Sweep:
    api: HostileAPI
    status: CliResult
    text: CliResult
    checks: dict[str, CliResult]
    refused: int
    password_files: dict[str, Path]

    def env(self, name: str) -> dict[str, Any]:
        (e,) = [e for e in self.status.json["environments"] if e["environment"] == name]
        return e


def _strict(doc: str) -> Any:
    """JSON as a strict reader takes it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in the output: not valid JSON")

    return json.loads(doc, parse_constant=refuse)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    tmp = tmp_path_factory.mktemp("http-answers")
    env_file, log = write_fake_env_files(tmp)
    service = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), ADVANCED: "true"},
    )
    refused = free_port()
    try:
        with HostileAPI(CASES) as api:
            parts = [
                "[thresholds]",
                f"probe_timeout_s = {PROBE_TIMEOUT_S}",
                f"response_time_ok_s = {PROBE_TIMEOUT_S}",
                "",
            ]
            passwords = {}
            for c in CASES:
                pw = tmp / f"{c.name}.password"
                pw.write_text(c.password + ("\n" if c.password else ""))
                passwords[c.name] = pw
                url = (
                    f"http://127.0.0.1:{refused}"
                    if c.extra.get("api_url") == "refused"
                    else f"http://127.0.0.1:{api.port}/{c.name}"
                )
                parts.append(
                    fake_environment(
                        c.name, api_url=url, env_file=env_file, log_file=log, pid=service.pid, password_file=pw
                    )
                )
            config = tmp / "console.toml"
            config.write_text("\n".join(parts))
            secrets = [GOOD_PASSWORD, TOKEN]
            # One after the other: each probes all the cases at once already, and two such
            # processes side by side on 2 cores made a well-behaved case miss the probe timeout.
            (status,) = run_cli_many(config, ["status", "--json"], secrets=secrets)
            (text,) = run_cli_many(config, ["status"], secrets=secrets)
            checks: dict[str, CliResult] = {}
            names = [c.name for c in CASES]
            for i in range(0, len(names), 8):  # a few at a time: the machine is shared
                batch = names[i : i + 8]
                for name, result in zip(
                    batch, run_cli_many(config, *(["check", n, "--json"] for n in batch), secrets=secrets), strict=True
                ):
                    checks[name] = result
            yield Sweep(api, status, text, checks, refused, passwords)
    finally:
        service.kill()
        service.wait()


def test_status_reads_every_wrong_answer_in_one_valid_json_document(sweep: Sweep) -> None:
    # Every case at once in one process, each bounded by the probe timeout.
    assert sweep.status.elapsed_s < DEADLINE_S + 20, sweep.status.elapsed_s
    assert sweep.status.stderr == "" and sweep.text.stderr == ""
    doc = _strict(sweep.status.stdout)  # NaN from the API never reaches the output
    assert len(doc["environments"]) == len(CASES)
    assert sweep.status.code == sweep.text.code == 1  # some cases cannot be assessed
    for e in doc["environments"]:
        assert e["elapsed_s"] < DEADLINE_S, (e["environment"], e["elapsed_s"])
        for value in _numbers(e):
            assert math.isfinite(value)


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)


def _message(sweep: Sweep, c: Case) -> str:
    h = sweep.env(c.name)["hosts"][0]
    r, endpoints = h["probe"], h["health"]["endpoints"]
    if c.where == "health":
        return endpoints["liveness"]["error"] or ""
    if c.where == "ready":
        return endpoints["readiness"]["error"] or ""
    if c.where == "login":
        return r["login_error"] or ""
    # A failure shape: its title in the profile, and what the service said if it said more.
    if not r["failed"]:
        return r["error"] or ""
    return r["failure_title"] + (f": {r['message']}" if r["message"] != r["failure_title"] else "")


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_each_wrong_answer_gets_a_sentence_naming_what_and_where(sweep: Sweep, c: Case) -> None:
    env = sweep.env(c.name)
    said = _message(sweep, c)
    for part in c.says:
        part = part.format(port=sweep.api.port, refused=sweep.refused)
        assert part in said, f"{c.name}: {part!r} not in {said!r}"
    rec = env["recommendation"]
    assert rec["assessed"] is c.assessed, (c.name, rec["problems"])
    if not c.assessed:
        # Never "no action" on what could not be read; the reason names the endpoint.
        assert rec["title"].startswith("Cannot assess: local: ") and "No action" not in rec["title"]
        assert any(c.says[0].format(port=sweep.api.port, refused=sweep.refused)[:30] in p for p in rec["problems"]), rec
    check = sweep.checks[c.name]
    assert check.elapsed_s < CHECK_DEADLINE_S, (c.name, check.elapsed_s)
    assert check.stderr == ""
    doc = _strict(check.stdout)
    failed = {k for k, v in checks_of(doc).items() if not v["passed"]}
    assert failed == c.failed, (c.name, failed, doc)
    assert check.code == (1 if c.failed else 0)
    for name in failed:  # every failing check says why, in words
        assert checks_of(doc)[name]["detail"], (c.name, name)
    if c.where == "best" and "recommendations" in c.failed and c.says:
        detail = checks_of(doc)["recommendations"]["detail"]
        assert c.says[-1].format(port=sweep.api.port)[-40:] in detail, (c.name, detail)


def test_an_empty_password_file_is_said_and_nothing_is_sent(sweep: Sweep) -> None:
    assert ("login-empty-password", "auth/login") not in sweep.api.requests
    said = sweep.env("login-empty-password")["hosts"][0]["probe"]["login_error"]
    assert (
        said == f"login: the password in file {sweep.password_files['login-empty-password']} is empty; nothing was sent"
    )


def test_health_and_readiness_are_asked_at_once(sweep: Sweep) -> None:
    """Each answers only when the other has arrived: asked one after the other, both would
    time out. So a dead service costs one probe timeout, not two."""
    check = checks_of(_strict(sweep.checks["health-ready-at-once"].stdout))["health"]
    assert check["passed"] is True, check


def test_the_text_output_names_each_problem_under_cannot_assess(sweep: Sweep) -> None:
    text = sweep.text.stdout
    assert "No action" not in text.split("best-json-as-text (production)")[0]  # before the first assessed case
    assert text.count("recommended: CANNOT ASSESS") == sum(1 for c in CASES if not c.assessed)
    assert f"GET /health: 127.0.0.1:{sweep.api.port} reset the connection while answering" in text
