"""The probes follow the environment's service profile, over real HTTP.

A searchd environment (sample_configs/profiles/searchd-semantic.toml: one /healthz that tells
the truth, a search request with no login, modes semantic/keyword and reranked/plain-order,
failure shapes "error object" and "degraded") against a small HTTP server on loopback that
answers searchd-shaped JSON; the config sets none of the Phase 4 keys (channel_id,
login_email, password). Phase 4 over the simulator is test_status_cli's and test_probes'.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from console.config import load_config
from console.probes.collect import Prober
from console.probes.snapshot import EnvironmentSnapshot
from console.profile import PROFILE_DIR, load_profile
from console.runbook.validation import validate
from console.simulator.dataset import POST_COUNT
from console.simulator.world import Simulation
from tests.status_support import checks_of, environment_of, run_cli_many, toml_str

SEARCHD = PROFILE_DIR / "searchd-semantic.toml"
SEARCHD_PROFILE = load_profile(SEARCHD)


def search_body(retriever: str = "semantic", reranked: bool = False, hits: int = 3) -> dict[str, Any]:
    results = [{"id": f"doc-{i}", "score": 1.0 - i / 10, "retriever": retriever} for i in range(hits)]
    return {"results": results, "total_hits": hits, "retriever": retriever, "reranked": reranked, "took_ms": 12}


class SearchdAPI:
    """searchd on loopback: /healthz and /v1/search, answering what ``health`` and ``search`` hold."""

    def __init__(self) -> None:
        self.health: tuple[int, Any] = (200, {"status": "ok", "build": "2.3.1", "indexes": {"bm25": "ok"}})
        self.search: tuple[int, Any] = (200, search_body())
        self.queries: list[dict[str, list[str]]] = []
        api = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/healthz":
                    status, body = api.health
                elif url.path == "/v1/search":
                    api.queries.append(parse_qs(url.query))
                    status, body = api.search
                else:
                    status, body = 404, {"message": "no such endpoint"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def searchd() -> Iterator[SearchdAPI]:
    api = SearchdAPI()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def service_process() -> Iterator[int]:
    """A real process standing in for searchd: its /proc environ and RSS are read."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env={"ENABLE_RERANKER": "off"})
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def searchd_config(tmp_path: Path, api: SearchdAPI, pid: int, extra: str = "") -> Path:
    env_file = tmp_path / "searchd.env"
    env_file.write_text("ENABLE_SEMANTIC_SEARCH=on\nENABLE_RERANKER=off\n")
    log = tmp_path / "searchd.log"
    log.write_text(
        "2025-11-21T03:10:00Z INFO searchd.query search request q=rollback\n"
        "2025-11-21T03:10:00Z INFO searchd.query flags: semantic=on reranker=off\n"
    )
    config = tmp_path / "console.toml"
    config.write_text(
        f"""\
[thresholds]
probe_timeout_s = 5

[environments.staging]
kind = "staging"
profile = {toml_str(SEARCHD)}
api_url = {toml_str(api.url)}
env_file = {toml_str(env_file)}
restart_command = "true"
pid_command = "echo {pid}"
log_file = {toml_str(log)}
{extra}"""
    )
    return config


def snapshot_of(config: Path) -> EnvironmentSnapshot:
    loaded = load_config(config)

    async def take() -> EnvironmentSnapshot:
        async with Prober(loaded) as prober:
            return await prober.snapshot(loaded.environment("staging"))

    return asyncio.run(take())


def test_a_searchd_environment_is_probed_as_its_profile_says(
    tmp_path: Path, searchd: SearchdAPI, service_process: int
) -> None:
    config = searchd_config(tmp_path, searchd, service_process)
    snap = snapshot_of(config)
    (h,) = snap.hosts
    # Health: the one endpoint, which tells the truth; its build and indexes as the profile names them.
    (healthz,) = h.health.endpoints
    assert (healthz.role, healthz.endpoint, healthz.truthful, healthz.status, healthz.ok) == (
        "liveness",
        "/healthz",
        True,
        200,
        True,
    )
    assert h.health.version == "2.3.1" and healthz.components == (("bm25", "ok"),) and healthz.said == "ok"
    assert h.health.healthy and h.health.verdict is True and not h.health.disagree
    # The search, with the profile's default parameters and no login.
    r = h.probe
    assert (r.title, r.request, r.login_status, r.login_error) == ("Search smoke test", "search", None, None)
    assert searchd.queries[-1] == {"q": ["rollback drill"], "limit": ["10"]}
    assert (r.kind, r.status, r.modes, r.count, r.count_label, r.data_present) == (
        "ok",
        200,
        ("semantic", "plain-order"),
        3,
        "hits",
        True,
    )
    assert r.ok and r.latency_s is not None and r.counted == "3 hits" and r.mode_text == "semantic, plain-order"
    assert h.signal("missing_data") == (False, "") and h.signal("unhealthy") == (False, "")
    checks = {c.name: c for c in validate(snap, load_config(config).thresholds, SEARCHD_PROFILE.validations)}
    assert checks["healthz"].passed and checks["healthz"].detail == "/healthz 200 ok"
    assert checks["search"].passed and checks["search"].detail == "3 hits, semantic, plain-order"

    # Keyword retrieval, reranked: the other two modes.
    searchd.search = (200, search_body("keyword", reranked=True, hits=7))
    r = snapshot_of(config).hosts[0].probe
    assert (r.kind, r.modes, r.count) == ("ok", ("keyword", "reranked"), 7)


@pytest.mark.parametrize(
    ("answer", "kind", "failure", "said"),
    [
        # HTTP 200 with an error object: a failure shape, in the service's own words.
        (
            (200, {"error": {"code": "vector_timeout", "message": "vector store timed out"}}),
            "failed",
            "error-object",
            "HTTP 200 with an error object: vector store timed out",
        ),
        (
            (200, {"results": [], "degraded": True, "degraded_reason": "index offline"}),
            "failed",
            "degraded",
            "HTTP 200 with degraded: true: index offline",
        ),
        # Not the answer the profile describes: errors that say what and where.
        ((500, {"message": "shard 3 down"}), "error", None, "GET /v1/search: HTTP 500: shard 3 down"),
        ((200, search_body("hybrid")), "error", None, "GET /v1/search: HTTP 200 but `retriever` is"),
        ((200, [1, 2]), "error", None, "GET /v1/search: HTTP 200 but `$` is an array of 2, not object"),
    ],
    ids=["error-object", "degraded", "http-500", "unknown-retriever", "not-an-object"],
)
def test_searchd_failure_shapes_and_errors_are_told_apart(
    tmp_path: Path, searchd: SearchdAPI, service_process: int, answer: Any, kind: str, failure: str | None, said: str
) -> None:
    searchd.search = answer
    config = searchd_config(tmp_path, searchd, service_process)
    snap = snapshot_of(config)
    r = snap.hosts[0].probe
    assert (r.kind, r.failure, r.ok) == (kind, failure, False)
    shown = r.failure_text if r.failed else (r.error or "")
    assert shown.startswith(said), shown
    checks = {c.name: c for c in validate(snap, load_config(config).thresholds, SEARCHD_PROFILE.validations)}
    assert not checks["search"].passed and checks["search"].detail.startswith(said)
    if kind == "failed":  # the service answered, without data: missing data, not "cannot assess"
        assert snap.missing_data is True and not snap.problems()
    else:
        assert snap.missing_data is None and any(said[:20] in p for p in snap.problems())


def test_searchd_health_not_ok_and_unreadable(tmp_path: Path, searchd: SearchdAPI, service_process: int) -> None:
    config = searchd_config(tmp_path, searchd, service_process)
    searchd.health = (200, {"status": "degraded", "build": "2.3.1", "indexes": {"vectors": "loading"}})
    h = snapshot_of(config).hosts[0]
    (healthz,) = h.health.endpoints
    assert healthz.ok is False and healthz.error is None and h.health.verdict is False
    assert h.signal("unhealthy") == (True, "")
    assert h.symptoms() == ["local: /healthz: not healthy (vectors: loading)"]
    # An answer the `ok` test cannot judge is unknown, never fine.
    searchd.health = (200, {"status": 1})
    h = snapshot_of(config).hosts[0]
    assert h.health.verdict is None and not h.health.healthy
    assert h.health.endpoints[0].error == "GET /healthz: HTTP 200 but `status` is a number (1), not a string"
    assert h.signal("unhealthy")[0] is None and "GET /healthz: HTTP 200 but" in h.problems()[0]


def test_status_and_check_of_a_searchd_environment_speak_the_profile_words(
    tmp_path: Path, searchd: SearchdAPI, service_process: int
) -> None:
    """Through the command line: `status --json` and `check --json` on the searchd environment."""
    config = searchd_config(tmp_path, searchd, service_process)
    status, text, check = run_cli_many(config, ["status", "--json"], ["status"], ["check", "staging", "--json"])
    h = environment_of(status.json, "staging")["hosts"][0]
    assert h["health"]["endpoints"]["liveness"]["endpoint"] == "/healthz" and h["health"]["verdict"] is True
    assert h["probe"]["request"] == "search" and h["probe"]["modes"] == ["semantic", "plain-order"]
    assert "    search       " in text.stdout and "semantic, plain-order · 3 hits" in text.stdout
    assert "health       /healthz 200 ok" in text.stdout
    checks = checks_of(check.json)
    assert checks["healthz"]["passed"] and checks["search"]["passed"], checks


def test_phase4_takes_its_parameters_from_the_profile_when_the_config_leaves_them_out(
    simulation: Simulation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator's config without channel_id, days, login_email (both environments) and
    staging's password: the profile's per-environment values are used — staging's password
    from $ANALYTICBOT_STAGING_PASSWORD, as the profile says — and the answer reads as before."""
    password = simulation.password("staging")
    text = simulation.config_path.read_text()
    staging_password = f"password = {{ file = {toml_str(simulation.directory / 'secrets' / 'staging.password')} }}"
    assert text.count(staging_password) == 1, "the simulator's config changed shape"
    kept = [
        line
        for line in text.replace(staging_password + "\n", "").splitlines()
        if not line.startswith(("channel_id =", "days =", "login_email ="))
    ]
    config = tmp_path / "console.toml"
    config.write_text("\n".join(kept) + "\n")
    loaded = load_config(config).environment("staging")
    assert (loaded.channel_id, loaded.days, loaded.login_email, loaded.password) == (None, None, None, None)
    monkeypatch.setenv("ANALYTICBOT_STAGING_PASSWORD", password)

    status, check = run_cli_many(config, ["status", "--json"], ["check", "staging", "--json"], secrets=[password])
    for name in ("staging", "production"):
        r = environment_of(status.json, name)["hosts"][0]["probe"]
        assert r["ok"] and r["modes"] == ["advanced"] and r["count"] == POST_COUNT, (name, r)
        assert (r["title"], r["request"], r["count_label"]) == ("Test recommendations", "best-times", "posts")
    assert check.code == 0, check
    assert checks_of(check.json)["recommendations"]["detail"] == f"{POST_COUNT} posts, advanced mode"

    # Without the secret the profile names, the login says where it looked.
    monkeypatch.delenv("ANALYTICBOT_STAGING_PASSWORD")
    status = run_cli_many(config, ["status", "staging", "--json"], secrets=[password])[0]
    r = environment_of(status.json, "staging")["hosts"][0]["probe"]
    assert r["login_error"] == "login: environment variable ANALYTICBOT_STAGING_PASSWORD is not set"
    assert r["login_status"] is None and status.code == 1
