"""The simulated service of any profile, run as its own process:

    python -m console.simulator.generic --home HOME

HOME/service.json names the profile. Flags are read once, at start, from the process
environment (which ``ctl`` fills from the env file) with the profile's own rule. It logs
each functional-probe request as the profile says (the request line, the flag line, the
mode lines) in the profile's plain or JSON layout, serves the profile's health endpoints,
login and request, and answers with JSON generated from the profile's predicates
(answers.py). Faults (HOME/faults.json) slow it, fail it, grow its memory, make its
truthful health endpoint say no, or make it answer a failure shape.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from console.profile import Profile, load_profile
from console.profile.patterns import PLACEHOLDER, split
from console.simulator import answers, auth
from console.simulator.faults import ErrorBudget, Faults, FaultWatcher
from console.simulator.httpserver import Request, Response, serve_until_signalled, start_server
from console.simulator.memory import Ballast

TICK_S = 0.25
VERSION = "1.0.0-sim"


class StartupCrash(RuntimeError):
    """Fault ``crash_on_start``."""


def journal(message: str, level: str = "INFO") -> None:
    """A line for the service log (stdout), the journalctl analogue."""
    print(f"{level + ':':<9} {message}", flush=True)


def release_built(home: Path) -> tuple[bool, str]:
    """Whether the deployed build (HOME/build/build.json, from ``ctl rebuild``) has the release's code."""
    try:
        stamp = json.loads((home / "build" / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True, "unknown"
    return bool(stamp.get("phase4", True)), str(stamp.get("commit", "unknown"))[:7]


@dataclass(frozen=True)
class Settings:
    environment: str
    host: str
    port: int
    log_file: Path
    log_format: str  # one of the profile's log formats
    password_sha256: str
    jwt_secret: str

    @classmethod
    def from_environ(cls, env: dict[str, str], home: Path, profile: Profile) -> Settings:
        environment = env.get("ENVIRONMENT", "production")
        wanted = env.get("LOG_FORMAT", "").lower()
        try:
            port = int(env.get("API_PORT", ""))
        except ValueError:
            raise SystemExit(f"API_PORT={env.get('API_PORT')!r} is not a port number (in the env file)") from None
        return cls(
            environment=environment,
            host=env.get("API_HOST", "127.0.0.1"),
            port=port,
            log_file=Path(env.get("LOG_FILE") or home / "logs" / f"{environment}.log"),
            log_format=wanted if wanted in profile.log.formats else profile.log.formats[0],
            password_sha256=env.get("AUTH_PASSWORD_SHA256", ""),
            jwt_secret=env.get("JWT_SECRET_KEY", ""),
        )


class AppLog:
    """The application log, in the profile's layout: one line per record, flushed at once."""

    def __init__(self, profile: Profile, settings: Settings) -> None:
        self.profile = profile
        self.format = settings.log_format
        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(settings.log_file, "a", encoding="utf-8")  # open for the process's life

    def write(self, level: str, logger: str, message: str) -> None:
        log = self.profile.log
        if self.format == "json" and log.json is not None:
            line = json.dumps({log.json.level[0]: level, log.json.logger: logger, log.json.message: message})
        else:
            assert log.plain is not None
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            fields = {"time": now, "level": level, "logger": logger, "message": message}
            line = "".join(t if k == "text" else fields[t] for k, t in split(log.plain.template))
        self.file.write(line.replace("\n", " ") + "\n")
        self.file.flush()

    def error(self, logger: str, message: str) -> None:
        self.write(self.profile.log.error_levels[0], logger, message)


def endpoint_pattern(template: str) -> re.Pattern[str]:
    """A request endpoint template as a regex: each ``{name}`` one path segment."""
    out, at = [], 0
    for m in PLACEHOLDER.finditer(template):
        out += [re.escape(template[at : m.start()]), f"(?P<{m.group(1).split('|')[0]}>[^/]+)"]
        at = m.end()
    out.append(re.escape(template[at:]))
    return re.compile("^" + "".join(out) + "/?$")


class GenericService:
    def __init__(self, profile: Profile, settings: Settings, home: Path, faults: FaultWatcher) -> None:
        self.profile, self.settings, self.home, self.faults = profile, settings, home, faults
        self.service = profile.info.service
        self.log = AppLog(profile, settings)
        self.release, self.commit = release_built(home)
        read = profile.flags.read_environ(dict(os.environ))
        # A build without the release's code ignores the flags: none of its features exists.
        self.flags = read if self.release else {f: False for f in profile.flags.ids}
        self.effective = profile.flags.effective(self.flags)
        self.answer = answers.ok_answer(profile, self.effective)
        self.route = endpoint_pattern(profile.probe.request.endpoint)
        self.ballast = Ballast()
        self._errors = ErrorBudget()

    # --- lifecycle ------------------------------------------------------------------

    async def run(self) -> None:
        s = self.settings
        self.log.write(
            "INFO", f"{self.service}.api", f"Starting {self.service} {VERSION} ({s.environment}, port {s.port})"
        )
        if not self.release:
            self.log.write("WARNING", f"{self.service}.api", f"Build {self.commit} lacks the release: flags ignored")
        server = await start_server(self.handle, s.host, s.port, self._access)
        journal(f"{self.service} listening on http://{s.host}:{s.port}")
        await serve_until_signalled(server, self._tick, journal)
        self.ballast.release()
        self.log.write("INFO", f"{self.service}.api", "Shutdown complete")

    def suffered(self) -> Faults:
        """The faults as this process suffers them: one caused by a flag that is off does nothing."""
        faults = self.faults.refresh()
        if faults.caused_by and not self.effective.get(faults.caused_by, False):
            return replace(faults, latency_s=0.0, error_rate=0.0, memory_mb=0.0)
        return faults

    async def _tick(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.ballast.step, self.suffered().memory_mb, TICK_S)
            await asyncio.sleep(TICK_S)

    def _access(self, request: Request, status: int) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        journal(f'{request.client} - "{request.method} {request.path} {request.version}" {status} {phrase}')

    # --- routes ---------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        try:
            return await self._route(request)
        except Exception as exc:
            self.log.error(f"{self.service}.api", f"Unhandled {type(exc).__name__}: {exc}")
            return self._error(500, "Internal Server Error")

    def _error(self, status: int, message: str) -> Response:
        return Response.json(status, answers.error_body(self.profile.probe.answer, message))

    async def _route(self, request: Request) -> Response:
        health, probe = self.profile.health, self.profile.probe
        for which in ("liveness", "readiness"):
            endpoint = getattr(health, which)
            if endpoint is not None and request.path == endpoint.endpoint:
                return self._only(request, "GET") or self.health(which)
        if probe.login is not None and request.path == probe.login.endpoint:
            return self._only(request, probe.login.method) or self.login(request)
        m = self.route.match(request.path)
        if m:
            return self._only(request, probe.request.method) or await self.probe_request(request, m.groupdict())
        return self._error(404, "Not Found")

    def _only(self, request: Request, method: str) -> Response | None:
        if request.method == method:
            return None
        return Response(405, json.dumps({"detail": "Method Not Allowed"}).encode(), {"allow": method})

    def health(self, which: str) -> Response:
        down = self.faults.refresh().ready_down and which == self.profile.health.truth
        status, body = answers.health_answer(self.profile, which, not down, VERSION)
        return Response.json(status, body)

    def _parameter(self, name: str) -> Any:
        try:
            return self.profile.probe.parameter(name).value_for(self.settings.environment)
        except StopIteration:
            return None

    def login(self, request: Request) -> Response:
        login = self.profile.probe.login
        assert login is not None
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise TypeError
        except (ValueError, TypeError):
            return self._error(422, "expected a JSON object")
        for key, template in login.body.items():
            whole = PLACEHOLDER.fullmatch(template) if isinstance(template, str) else None
            if whole is None:
                continue
            name = whole.group(1).split("|")[0]
            given = body.get(key)
            if self.profile.probe.parameter(name).type == "secret":
                good = isinstance(given, str) and auth.check_password(given, self.settings.password_sha256)
            else:
                good = str(given) == str(self._parameter(name))
            if not good:
                self.log.write("WARNING", f"{self.service}.auth", f"Failed login ({key} refused)")
                return self._error(login.refused, "Incorrect credentials")
        token = auth.issue("probe", self.settings.jwt_secret, access_minutes=30, refresh_days=1)["access_token"]
        return Response.json(200, answers.set_path({}, login.token, token))

    def _authorized(self, request: Request) -> bool:
        login = self.profile.probe.login
        if login is None or not self.profile.probe.request.authenticated:
            return True
        scheme, _, token = request.headers.get(login.header.lower(), "").partition(" ")
        ok_scheme = scheme.lower() == login.scheme.lower()
        return ok_scheme and auth.decode(token.strip(), self.settings.jwt_secret) is not None

    def _bad_parameter(self, values: dict[str, str]) -> str | None:
        for name, raw in values.items():
            try:
                p = self.profile.probe.parameter(name)
            except StopIteration:
                continue
            if p.type != "integer":
                continue
            try:
                number = int(raw)
            except ValueError:
                return f"{name} must be an integer, got {raw!r}"
            if (p.minimum is not None and number < p.minimum) or (p.maximum is not None and number > p.maximum):
                return f"{name} must be from {p.minimum} to {p.maximum}, got {number}"
        return None

    def _inject_error(self, faults: Faults) -> str | None:
        """Fault ``error_rate``: alternately HTTP 500 and the profile's first failure shape."""
        kind = self._errors.next_failure(faults.error_rate)
        shapes = self.profile.probe.answer.failures
        if kind == "shape":
            return shapes[0].id if shapes else "http500"
        return kind

    async def probe_request(self, request: Request, path_values: dict[str, str]) -> Response:
        probe, log = self.profile.probe, self.profile.log
        if not self._authorized(request):
            return self._error(probe.login.refused if probe.login else 401, "Not authenticated")
        query = {k: request.query[k] for k, _ in probe.request.query if k in request.query}
        bad = self._bad_parameter({**path_values, **query})
        if bad:
            return self._error(422, bad)
        faults = self.suffered()
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        logger = f"{self.service}.{probe.request.title or 'request'}".replace(" ", "_")
        self.log.write("INFO", logger, self._request_line(request, path_values))
        self.log.write("INFO", logger, log.flag_line.render(self.flags))
        expected = set(probe.answer.expected_modes(self.effective))
        for mode, line in log.mode_lines:
            if mode in expected:
                self.log.write("INFO", logger, line)
        failure = faults.failure or self._inject_error(faults)
        if failure == "http500":
            self.log.error(logger, f"Exception in request handler: {request.path}: simulated internal error")
            return self._error(500, "Internal Server Error")
        if failure:
            shape = next(f for f in probe.answer.failures if f.id == failure)
            self.log.error(logger, f"{shape.title} (simulated failure {failure!r})")
            body = answers.failure_answer(self.profile, failure, f"simulated failure: {shape.title}")
            return Response.json(probe.answer.status, body)
        return Response.json(probe.answer.status, self.answer)

    def _request_line(self, request: Request, path_values: dict[str, str]) -> str:
        """The profile's request line, then what was asked: "search request q=rollback drill limit=10",
        "Getting posting time metrics for channel -1001234567890 days=90"."""
        text = self.profile.log.request_line
        items = [(k, request.query.get(k, "")) for k, _ in self.profile.probe.request.query]
        if items and not path_values and text.endswith(f"{items[0][0]}="):
            return text + " ".join([items[0][1], *(f"{k}={v}" for k, v in items[1:])])
        return " ".join([text, *path_values.values(), *(f"{k}={v}" for k, v in items)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.simulator.generic")
    parser.add_argument("--home", required=True, help="the service home (service.json, env file, logs, faults.json)")
    args = parser.parse_args(argv)
    home = Path(args.home).resolve()
    journal(f"Started server process [{os.getpid()}]")
    unit = json.loads((home / "service.json").read_text(encoding="utf-8"))
    profile = load_profile(unit["profile"])
    settings = Settings.from_environ(dict(os.environ), home, profile)
    faults = FaultWatcher(home)
    if faults.refresh().crash_on_start:
        AppLog(profile, settings).error(f"{profile.info.service}.api", "Startup failed. Exiting.")
        raise StartupCrash(f"{profile.info.service} startup failed: simulated crash on start")
    if faults.error:
        journal(f"ignoring faults: {faults.error}", "WARNING")
    try:
        service = GenericService(profile, settings, home, faults)
    except answers.GenerationError as exc:
        journal(f"{profile.path}: {exc}", "ERROR")
        return 1
    asyncio.run(service.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
