"""The simulated analyticbot API, run as its own process:

    python -m console.simulator.service --home HOME

Flags are read once, at start, from the process environment (which ``ctl`` fills from
the env file). stdout/stderr are the service log (startup lines, access lines, crash
tracebacks); the application log is a file in the real format, plain or JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from console.simulator import analytics, auth
from console.simulator.dataset import generate_posts
from console.simulator.faults import ErrorBudget, Faults, FaultWatcher
from console.simulator.httpserver import Request, Response, serve_until_signalled, start_server
from console.simulator.memory import Ballast
from console.simulator.settings import ALL_OFF, VERSION, FlagSet, Settings, journal, redact_url, setup_logging

BEST_TIMES = re.compile(r"^/analytics/predictive/best-times/(-?\d+)/?$")
TICK_S = 0.25  # fault watcher / memory ramp


def _now() -> str:
    return datetime.now(UTC).isoformat()


class StartupCrash(RuntimeError):
    """Fault ``crash_on_start``."""


def built_with_phase4(home: Path) -> tuple[bool, str]:
    """Whether the deployed build (HOME/build/build.json, written by ``ctl rebuild``) has the Phase 4 code."""
    try:
        stamp = json.loads((home / "build" / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True, "unknown"
    return bool(stamp.get("phase4", True)), str(stamp.get("commit", "unknown"))[:7]


class Service:
    def __init__(self, settings: Settings, home: Path, faults: FaultWatcher) -> None:
        self.settings = settings
        self.home = home
        self.faults = faults
        self.log = logging.getLogger("analyticbot.recommendations")
        self.api_log = logging.getLogger("analyticbot.api")
        self.db_log = logging.getLogger("analyticbot.db")
        phase4, self.commit = built_with_phase4(home)
        # A build without the Phase 4 code ignores the flags: it only has the legacy query.
        self.flags: FlagSet = settings.flags if phase4 else ALL_OFF
        self.phase4 = phase4
        self.posts = [] if settings.database_url else generate_posts(settings.channel_id)
        self.pool: Any = None
        self.ballast = Ballast()
        self._errors = ErrorBudget()
        self._memory_warned = False

    # --- lifecycle ------------------------------------------------------------------

    async def run(self) -> None:
        s = self.settings
        self.api_log.info(f"🚀 Starting analyticbot API {VERSION} (environment: {s.environment}, port {s.port})")
        if not self.phase4:
            self.api_log.warning(f"Build {self.commit} has no Phase 4 code: feature flags ignored, legacy query only")
        if s.database_url:
            import asyncpg

            self.db_log.info(f"Database: {redact_url(s.database_url)}")
            self.pool = await asyncpg.create_pool(s.database_url, min_size=0, max_size=5, command_timeout=30)
        else:
            self.db_log.warning(f"DATABASE_URL is not set: serving the synthetic data set ({len(self.posts)} posts)")
        journal("Waiting for application startup.")
        server = await start_server(self.handle, s.host, s.port, self._access)
        journal("Application startup complete.")
        journal(f"Uvicorn running on http://{s.host}:{s.port} (Press CTRL+C to quit)")
        await serve_until_signalled(server, self._tick, journal)
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), 5)
        self.ballast.release()
        self.api_log.info("Application shutdown complete")
        journal(f"Finished server process [{os.getpid()}]")

    async def _tick(self, stop: asyncio.Event) -> None:
        """Follow faults.json between requests too: memory grows even when nobody asks."""
        while not stop.is_set():
            faults = self.faults.refresh().effective(self.flags)
            await asyncio.to_thread(self.ballast.step, faults.memory_mb, TICK_S)
            if faults.memory_mb >= 1000 and not self._memory_warned:
                self.api_log.warning(f"Memory usage high: target {faults.memory_mb:.0f} MB resident")
            self._memory_warned = faults.memory_mb >= 1000
            await asyncio.sleep(TICK_S)

    def _access(self, request: Request, status: int) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        query = "&".join(f"{k}={v}" for k, v in request.query.items())
        target = f"{request.path}?{query}" if query else request.path
        journal(f'{request.client} - "{request.method} {target} {request.version}" {status} {phrase}')

    # --- routes ---------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        try:
            return await self._route(request)
        except Exception as exc:  # what FastAPI does with an unhandled error
            self.api_log.error(f"Exception in ASGI application: {type(exc).__name__}: {exc}")
            return Response.json(500, {"detail": "Internal Server Error"})

    async def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/health":
            return self._only(method, "GET") or Response.json(200, self.health())
        if path == "/health/ready":
            if bad := self._only(method, "GET"):
                return bad
            body = await self.ready()
            return Response.json(200 if body["ready"] else 503, body)
        if path == "/auth/login":
            return self._only(method, "POST") or self.login(request)
        m = BEST_TIMES.match(path)
        if m:
            return self._only(method, "GET") or await self.best_times(request, int(m.group(1)))
        return Response.json(404, {"detail": "Not Found"})

    @staticmethod
    def _only(method: str, allowed: str) -> Response | None:
        if method == allowed:
            return None
        return Response.json(405, {"detail": "Method Not Allowed"}, {"allow": allowed})

    def health(self) -> dict[str, Any]:
        # Hard-coded, as in the real service: it says healthy even when the database is down.
        return {"status": "healthy", "timestamp": _now(), "service": "analyticbot", "version": VERSION}

    async def ready(self) -> dict[str, Any]:
        faults = self.faults.refresh()
        database: dict[str, Any]
        if faults.ready_down:
            database = {
                "status": "unhealthy",
                "error": 'connection to server at "127.0.0.1" failed: Connection refused',
            }
        elif self.pool is not None:
            started = asyncio.get_running_loop().time()
            try:
                async with self.pool.acquire(timeout=3) as conn:
                    await conn.fetchval("SELECT 1", timeout=3)
                elapsed = (asyncio.get_running_loop().time() - started) * 1000
                database = {"status": "healthy", "latency_ms": round(elapsed, 1)}
            except Exception as exc:
                database = {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            database = {"status": "healthy", "backend": "synthetic"}
        ok = database["status"] == "healthy"
        return {"ready": ok, "timestamp": _now(), "components": {"database": database}, "dependencies_met": ok}

    def login(self, request: Request) -> Response:
        try:
            body = request.json()
            email, password = body["email"], body["password"]
            if not isinstance(email, str) or not isinstance(password, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return Response.json(422, {"detail": 'expected JSON {"email", "password", "remember_me"}'})
        s = self.settings
        if email.lower() != s.auth_email.lower() or not auth.check_password(password, s.auth_password_sha256):
            self.api_log.warning(f"Failed login for {email[:100]!r}")
            return Response.json(401, {"detail": "Incorrect email or password"}, {"www-authenticate": "Bearer"})
        days = s.refresh_days * (4 if body.get("remember_me") else 1)
        return Response.json(
            200, auth.issue(s.auth_email, s.jwt_secret, access_minutes=s.access_minutes, refresh_days=days)
        )

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and auth.decode(token.strip(), self.settings.jwt_secret) is not None

    def _inject_error(self, faults: Faults) -> str | None:
        """Fault ``error_rate``: alternately HTTP 500 and status=failed."""
        kind = self._errors.next_failure(faults.error_rate)
        return "failed" if kind == "shape" else kind

    async def best_times(self, request: Request, channel_id: int) -> Response:
        if not self._authorized(request):
            return Response.json(401, {"detail": "Not authenticated"}, {"www-authenticate": "Bearer"})
        try:
            days = int(request.query.get("days", "90"))
            if not 1 <= days <= 365:
                raise ValueError
        except ValueError:
            detail = [{"loc": ["query", "days"], "msg": "days must be an integer from 1 to 365", "type": "value_error"}]
            return Response.json(422, {"detail": detail})
        faults = self.faults.refresh().effective(self.flags)
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        f = self.flags
        self.log.info(f"⏰ Getting posting time metrics for channel {channel_id} ({days} days)")
        self.log.info(f"🎛️ Feature flags - {f.describe()}")
        self.log.info("Using ADVANCED query with new features" if f.advanced else "Using SIMPLE query (legacy mode)")
        injected = self._inject_error(faults)
        if injected == "http500":
            self.api_log.error(
                f"Exception in ASGI application: GET {request.path}: "
                "ConnectionDoesNotExistError: connection was closed in the middle of operation"
            )
            return Response.json(500, {"detail": "Internal Server Error"})
        try:
            if injected == "failed":
                raise TimeoutError("canceling statement due to statement timeout")
            rows = await self._rows(channel_id, days)
            source = "database" if self.pool is not None else "synthetic"
            data = analytics.build_data(rows, f, data_source=source)
        except Exception as exc:
            self.log.error(f"❌ Error getting posting time metrics for channel {channel_id}: {exc}")
            data = analytics.failed_data(channel_id, str(exc))
        return Response.json(
            200,
            {
                "success": True,
                "channel_id": channel_id,
                "data": data,
                "analysis_type": "posting_time_recommendations",
                "generated_at": _now(),
                "confidence_score": data.get("confidence", 0.0),
            },
        )

    async def _rows(self, channel_id: int, days: int) -> list[dict[str, Any]]:
        if self.pool is None:
            posts = self.posts if channel_id == self.settings.channel_id else []
            return analytics.synthetic_rows(posts, self.flags, days=days, now=datetime.now(UTC))
        async with self.pool.acquire(timeout=5) as conn:
            records = await conn.fetch(analytics.query_for(self.flags), channel_id, days)
        return [dict(r) for r in records]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.simulator.service")
    parser.add_argument("--home", required=True, help="the service home (env file, logs, faults.json)")
    args = parser.parse_args(argv)
    home = Path(args.home).resolve()
    journal(f"Started server process [{os.getpid()}]")
    settings = Settings.from_environ(os.environ, home)
    setup_logging(settings)
    faults = FaultWatcher(home)
    if faults.refresh().crash_on_start:
        logging.getLogger("analyticbot.api").error("Application startup failed. Exiting.")
        raise StartupCrash("Application startup failed: recommendation engine could not be initialised")
    if faults.error:
        journal(f"ignoring faults: {faults.error}", "WARNING")
    asyncio.run(Service(settings, home, faults).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
