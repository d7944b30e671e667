"""One round of probes for an environment: every host at once, every probe bounded.

Flags (env file, process, log), health and the functional probe as the environment's
service profile describes them (Phase 4: login + best-times), log errors, memory, and the
database. Probes that do not depend on each other run concurrently; the log is read after
the functional probe's request so its latest flag line is this process's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from console.config.model import Config, Environment, Host
from console.envfile import EnvProblem, parse_env
from console.flags import FlagSet
from console.probes import http, logs, parameters
from console.probes.hostread import (
    NotRunning,
    SinceLog,
    bounded,
    read_process_alone,
    read_process_and_log,
)
from console.probes.httppool import OriginPools
from console.probes.snapshot import (
    DatabaseReport,
    EnvironmentSnapshot,
    FlagReport,
    HealthReport,
    HostSnapshot,
    LogReport,
    MemoryReport,
    ProbeReport,
)
from console.profile import ProfileError, profile_of, profile_path
from console.profile.model import Probe
from console.transport.base import Transport, TransportError
from console.transport.pool import TransportPool


def unusable_profile(env: Environment, exc: ProfileError) -> str:
    """A broken profile in one line; `config validate` lists every problem."""
    n = len(exc.problems)
    return (
        f"the service profile {profile_path(env)} cannot be used ({n} problem{'s' if n != 1 else ''}: "
        f"`rollback-console config validate` lists them)"
    )


def printable(text: str) -> str:
    """Text decoded with surrogateescape, made safe to print and to put in JSON.

    A stray non-UTF-8 byte in an env file would otherwise crash a strict UTF-8 stdout
    (or write invalid UTF-8 into `--json`).
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


_FIRST_TOKEN = re.compile(r"[^\s=]*=?")


def describe_problem(problem: EnvProblem) -> str:
    """A malformed env-file statement by line and key only: its value may be a secret.

    An unterminated quote swallows the lines after it, so the text can hold a DSN or a key.
    """
    text = problem.text.strip().splitlines()[0] if problem.text.strip() else ""
    head = _FIRST_TOKEN.match(text).group(0)[:60]  # type: ignore[union-attr]  # always matches
    shown = printable(head) + ("…" if len(head) < len(problem.text.strip()) else "")
    return f"line {problem.line}: cannot parse {shown!r} (value not shown)"


def api_base(env: Environment, host: Host) -> tuple[str, int]:
    url = urlsplit(env.expand(env.api_url, host))
    return url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)


async def reachable_base(env: Environment, host: Host, transport: Transport) -> str:
    """The API's base URL as this machine can reach it (through SSH when needed)."""
    base = env.expand(env.api_url, host)
    if env.api_reach == "forward" and not transport.host.is_local:
        try:
            url = urlsplit(base)
            target = api_base(env, host)
        except ValueError as exc:  # e.g. a port that is not a number, from a host's vars
            raise TransportError(f"api_url {base!r}: {exc}") from None
        addr, port = await transport.forward(*target)
        return urlunsplit((url.scheme, f"{addr}:{port}", url.path, "", ""))
    return base


def api_origins(config: Config) -> int:
    """How many APIs the probes reach, each with its own pool (httppool.py): hosts behind one
    URL (a load balancer) share one; APIs at paths of one server each have their own; a host
    reached through an SSH forward has its own local port."""
    seen: set[tuple] = set()
    for env in config.environments.values():
        for host in env.hosts:
            try:
                if env.api_reach == "forward" and not host.is_local:
                    seen.add(("forward", host.name, api_base(env, host)))
                else:
                    url = urlsplit(env.expand(env.api_url, host))
                    seen.add((url.scheme, url.hostname, url.port, url.path.rstrip("/")))
            except ValueError:  # a URL that does not parse: the probe says so; count it alone
                seen.add(("unparsed", env.name, host.name))
    return max(1, len(seen))


def http_limits(hosts: int, origins: int | None = None) -> tuple[int, int]:
    """(requests in flight at once, idle connections kept per origin).

    At most 100 requests in flight (httpx's default). Not more: on a starved CPU, every
    request of a larger burst runs into the probe timeout together, where a bounded one
    mostly finishes. Connections are kept alive between requests (a reopened one costs an
    SSH channel too), as many per origin as the open-file limit leaves room for: a
    forwarded connection costs two descriptors. The room is shared by origin, not by host:
    fifty hosts behind one URL are one pool, which would otherwise keep a fiftieth of it
    and reopen connections all the time."""
    import resource

    origins = max(1, origins if origins is not None else hosts)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = (soft - 64 - 2 * hosts) // 2 if soft != resource.RLIM_INFINITY else 100 * origins
    return max(20, min(100, room)), max(1, room // origins)


class Prober:
    """Takes snapshots. Holds the transports and one HTTP client between rounds."""

    def __init__(self, config: Config, pool: TransportPool | None = None) -> None:
        self.config = config
        self.pool = pool or TransportPool()
        self._client: httpx.AsyncClient | None = None
        self._redact: Callable[[str], str] | None = None
        self._secrets: asyncio.Future[list[str]] | None = None

    def redact(self, text: str) -> str:
        """A service log line with the config's secrets and secret-looking values masked:
        the service may log a DSN or a password, and every output shows these lines."""
        if self._redact is None:
            from console.journal.redact import Redactor, known_secrets

            self._redact = Redactor(known_secrets(self.config)).text
        return self._redact(text)

    def _resolve_secrets(self) -> None:
        """Start resolving the config's secrets for ``redact`` in a thread (each secret file is
        read in a thread of its own, within a deadline): a host's probe starts it with its
        requests, and waits for it (``_ready_to_redact``) only once they are answered."""
        if self._redact is None and self._secrets is None:
            from console.journal.redact import known_secrets

            self._secrets = asyncio.ensure_future(asyncio.to_thread(known_secrets, self.config))

    async def _ready_to_redact(self) -> None:
        if self._redact is None and self._secrets is not None:
            from console.journal.redact import Redactor

            try:
                secrets = await self._secrets
            except Exception:  # redact() resolves them itself, and says what is wrong
                self._secrets = None
                return
            if self._redact is None:
                self._redact = Redactor(secrets).text

    def summarize(self, lines: list[logs.LogLine], span: str | None = None) -> LogReport:
        """The log window's report, its quoted lines redacted at the source."""
        report = logs.summarize(lines, span=span)
        return dataclasses.replace(
            report,
            error_samples=tuple(self.redact(x) for x in report.error_samples),
            tail=tuple(self.redact(x) for x in report.tail),
        )

    @property
    def client(self) -> httpx.AsyncClient:
        """One HTTP client between rounds, made on first use (its TLS setup is not free)."""
        if self._client is None:
            t = self.config.thresholds.probe_timeout_s
            # Loading the CA store is most of the client's set-up; plain-HTTP APIs (the
            # usual: localhost on the host, or through an SSH forward) never use it.
            tls = any("https" in env.api_url.lower() for env in self.config.environments.values())
            hosts = sum(len(e.hosts) for e in self.config.environments.values())
            in_flight, keepalive = http_limits(hosts, api_origins(self.config))
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(t, connect=min(t, 5.0)),
                trust_env=False,
                transport=OriginPools(in_flight=in_flight, keepalive=keepalive, verify=tls),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        await self.pool.close_all()

    async def __aenter__(self) -> Prober:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def snapshot(
        self, env: Environment, *, database: bool = True, since_log: SinceLog | None = None
    ) -> EnvironmentSnapshot:
        """Every host probed at once. ``since_log``: where each host's log is read from
        (see ``probe_host``)."""
        start = time.monotonic()
        tasks = [self.probe_host(env, h, since_log) for h in env.hosts]
        db_task = self.probe_database(env) if database and env.database else None
        results = await asyncio.gather(*tasks, *([db_task] if db_task else []))
        hosts = tuple(results[: len(env.hosts)])
        db = results[-1] if db_task else None
        return EnvironmentSnapshot(
            environment=env.name,
            kind=env.kind,
            taken_at=time.time(),
            elapsed_s=time.monotonic() - start,
            hosts=hosts,  # type: ignore[arg-type]
            database=db,  # type: ignore[arg-type]
            profile=profile_path(env),
        )

    async def probe_host(self, env: Environment, host: Host, since_log: SinceLog | None = None) -> HostSnapshot:
        """One host's probes. The log is read after the HTTP probes, whose requests it
        records (``hostread.read_process_and_log``; ``since_log``: from where)."""
        start = time.monotonic()
        timeout = self.config.thresholds.probe_timeout_s
        try:
            transport = await asyncio.wait_for(self.pool.get(host), timeout)
        except TimeoutError:
            return self._unreachable(host, f"{host.describe()}: no connection within {timeout:.0f}s", start)
        except TransportError as exc:
            return self._unreachable(host, str(exc), start)

        # Over SSH each command costs a round trip and a process tree on the host: the pid
        # command shares the log's. On this machine a command is only a process, so the pid (and
        # with it the process) is read beside the HTTP probes: a one-host snapshot stays short.
        alone = transport.host.is_local
        where = transport.where
        # The longest chain first (login, best-times, then the log): its first request goes out
        # before the env file (and here the process) is read, which finishes well within it.
        http_t = self._http(env, host, transport)
        env_file = transport.read_file(env.expand(env.env_file, host))
        reads = [http_t, bounded(env_file, where, "reading the env file", timeout)]
        if alone:
            process_alone = read_process_alone(env, host, transport, timeout)
            reads.append(bounded(process_alone, where, "reading the process", timeout))
        self._resolve_secrets()
        (health, probe), env_file_r, *process = await asyncio.gather(*reads)
        process_r, log_r = await read_process_and_log(
            env,
            host,
            transport,
            timeout=timeout,
            window=self.config.thresholds.error_lines_window,
            process=process[0] if alone else None,
            since_log=since_log,
        )

        await self._ready_to_redact()
        flags = self._flags(env, host, env_file_r, process_r, log_r)
        if isinstance(log_r, Exception):
            log_report = LogReport(error=str(log_r))
        else:
            log_report = self.summarize(log_r.lines)
        if isinstance(process_r, Exception):
            memory = MemoryReport(error=str(process_r))
        else:
            pid, _, rss = process_r
            memory = MemoryReport(pid=pid, rss_bytes=rss)
        return HostSnapshot(
            host=host.name,
            where=transport.where,
            taken_at=time.time(),
            elapsed_s=time.monotonic() - start,
            flags=flags,
            health=health,
            probe=probe,
            logs=log_report,
            memory=memory,
        )

    def _unreachable(self, host: Host, reason: str, start: float) -> HostSnapshot:
        return HostSnapshot(
            host=host.name,
            where=host.describe(),
            taken_at=time.time(),
            elapsed_s=time.monotonic() - start,
            unreachable=reason,
        )

    def _flags(self, env: Environment, host: Host, env_file_r, process_r, log_r) -> FlagReport:
        report: dict = {}
        profile = profile_of(env)
        rules = profile.flags
        if isinstance(env_file_r, Exception):
            report["env_file_error"] = str(env_file_r)
        else:
            parsed = parse_env(env_file_r, env.expand(env.env_file, host))
            report.update(
                env_file=parsed.flags(rules),
                env_file_problems=tuple(describe_problem(p) for p in parsed.problems),
                env_file_lines=tuple((n, printable(text)) for n, text in parsed.flag_lines(rules)),
            )
        if isinstance(process_r, Exception):
            report.update(process_error=str(process_r), not_running=isinstance(process_r, NotRunning))
        else:
            pid, environ, _ = process_r
            raw = {f.env: environ.get(f.env) for f in rules.flags}
            report.update(process=FlagSet.from_environ(rules, raw), process_raw=tuple(raw.items()), pid=pid)
        if isinstance(log_r, Exception):
            report["log_error"] = str(log_r)
        else:
            latest = logs.rules_for(profile.log).latest_flags(log_r.with_flag_line, rules)
            if latest:
                report.update(log=latest[0], log_line=self.redact(latest[1][:500]))
            else:
                head = profile.log.flag_line.head
                report["log_error"] = f'no "{head}" line in the last {log_r.total} log lines'
        return FlagReport(**report)

    async def _http(self, env: Environment, host: Host, transport: Transport) -> tuple[HealthReport, ProbeReport]:
        """The profile's health endpoints and its functional probe, at once."""
        try:
            profile = profile_of(env)
        except ProfileError as exc:
            why = unusable_profile(env, exc)
            return HealthReport(error=why), ProbeReport(error=why)
        try:
            base = await reachable_base(env, host, transport)
        except TransportError as exc:
            return HealthReport(error=str(exc)), ProbeReport(error=str(exc))
        health, probe = await asyncio.gather(
            http.probe_health(self.client, base, profile.health), self._functional(env, base, profile.probe)
        )
        return health, probe

    async def _functional(self, env: Environment, base: str, probe: Probe) -> ProbeReport:
        """The functional probe with this environment's parameter values; a value missing or a
        secret that cannot be read is said before anything is sent."""
        try:
            values = parameters.resolve(env, probe)
        except parameters.ParameterProblem as exc:
            said = ProbeReport(title=probe.title, request=probe.request.title, count_label=probe.answer.count_label)
            return (
                dataclasses.replace(said, login_error=str(exc))
                if exc.login
                else dataclasses.replace(said, error=str(exc))
            )
        return await http.run_probe(self.client, base, probe, values)

    async def probe_once(self, env: Environment, host: Host, transport: Transport) -> ProbeReport:
        """The functional probe on one host (a flags step uses it to make the service log its flags).
        ProfileError or ParameterProblem when it cannot be sent at all (nothing was sent)."""
        probe = profile_of(env).probe
        values = parameters.resolve(env, probe)
        return await http.run_probe(self.client, await reachable_base(env, host, transport), probe, values)

    async def remeasure_slow(
        self, env: Environment, snapshot: EnvironmentSnapshot, threshold_s: float, *, concurrency: int = 4
    ) -> EnvironmentSnapshot:
        """The functional probe again for each host whose answer took ``threshold_s`` or more, a few at a time.

        The first round probes every host at once (and, in a run, right after the run's own
        burst of restarts and checks): on a fleet that load is the console's, not the
        service's. A slow answer fails a check only if it is slow again when measured this way.
        """
        slow = [
            h
            for h in snapshot.hosts
            if not h.unreachable and h.probe.latency_s is not None and h.probe.latency_s >= threshold_s
        ]
        if not slow:
            return snapshot
        by_name = {h.name: h for h in env.hosts}
        n = len(snapshot.hosts)
        gate = asyncio.Semaphore(max(1, concurrency))
        at_once = "alone" if n == 1 else f"with {n} hosts probed at once"
        how = (
            "measured again after the first round"
            if n == 1
            else f"measured again {min(concurrency, len(slow))} at a time after the first round"
        )

        async def again(h: HostSnapshot) -> HostSnapshot:
            first = h.probe
            async with gate:
                report = await self._probe_again(env, by_name[h.host])
            note = f"{how} (that round took {first.latency_s:.2f}s, {at_once})"
            return dataclasses.replace(
                h, probe=dataclasses.replace(report, measured=note, first_latency_s=first.latency_s)
            )

        redone = {h.host: h for h in await asyncio.gather(*(again(h) for h in slow))}
        return dataclasses.replace(snapshot, hosts=tuple(redone.get(h.host, h) for h in snapshot.hosts))

    async def _probe_again(self, env: Environment, host: Host) -> ProbeReport:
        """The functional probe on one host, bounded by the probe timeout."""
        timeout = self.config.thresholds.probe_timeout_s
        try:
            transport = await asyncio.wait_for(self.pool.get(host), timeout)
        except TimeoutError:
            return ProbeReport(error=f"{host.describe()}: no connection within {timeout:.0f}s")
        except TransportError as exc:
            return ProbeReport(error=str(exc))
        try:
            return await self.probe_once(env, host, transport)
        except ProfileError as exc:
            return ProbeReport(error=unusable_profile(env, exc))
        except parameters.ParameterProblem as exc:
            return ProbeReport(login_error=str(exc)) if exc.login else ProbeReport(error=str(exc))
        except TransportError as exc:
            return ProbeReport(error=str(exc))

    async def probe_database(self, env: Environment) -> DatabaseReport:
        assert env.database is not None
        timeout = self.config.thresholds.probe_timeout_s
        try:
            transport = await asyncio.wait_for(self.pool.get(env.hosts[0]), timeout)
            # The PostgreSQL driver loads here, not before the hosts' probes have started.
            from console import db

            return await asyncio.wait_for(db.inspect(env.database, transport, timeout=timeout), timeout)
        except TimeoutError:
            return DatabaseReport(error=f"database: no answer within {timeout:.0f}s")
        except TransportError as exc:
            return DatabaseReport(error=str(exc))


async def checked_snapshot(config: Config, name: str) -> EnvironmentSnapshot:
    """A snapshot for the validations (the `check` command): slow answers measured again."""
    async with Prober(config) as prober:
        env = config.environment(name)
        snapshot = await prober.snapshot(env)
        below = next((v.below_s for v in profile_of(env).validations if v.check == "response_time"), None)
        return await prober.remeasure_slow(env, snapshot, config.thresholds.response_time_s(below))


async def snapshot_all(config: Config, names: list[str]) -> list[EnvironmentSnapshot]:
    """Snapshots of several environments at once (the `status` command)."""
    async with Prober(config) as prober:
        return list(await asyncio.gather(*(prober.snapshot(config.environment(n)) for n in names)))
