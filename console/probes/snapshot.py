"""Immutable results of one round of probes. Screens and the CLI only read these."""

from __future__ import annotations

from dataclasses import dataclass, field

from console.flags import FlagSet


@dataclass(frozen=True)
class FlagDrift:
    """One flag whose value differs between sources (env file, process, log)."""

    flag: str
    env_file: bool | None
    process: bool | None
    log: bool | None

    def describe(self) -> str:
        def show(v: bool | None) -> str:
            return "?" if v is None else str(v).lower()

        return f"{self.flag}: env file {show(self.env_file)}, process {show(self.process)}, log {show(self.log)}"


@dataclass(frozen=True)
class FlagReport:
    env_file: FlagSet | None = None
    env_file_error: str | None = None
    env_file_problems: tuple[str, ...] = ()  # malformed lines, with line numbers
    env_file_lines: tuple[tuple[int, str], ...] = ()  # the flag lines as written
    process: FlagSet | None = None
    process_error: str | None = None
    process_raw: tuple[tuple[str, str | None], ...] = ()  # ENABLE_* as the process has them
    pid: int | None = None
    not_running: bool = False  # the pid command found no service process
    log: FlagSet | None = None
    log_line: str | None = None
    log_error: str | None = None

    @property
    def drift(self) -> tuple[FlagDrift, ...]:
        sources = (self.env_file, self.process, self.log)
        some = next((s for s in sources if s is not None), None)
        out = []
        for flag in some.flags if some else ():
            values = [s.get(flag.id) if s else None for s in sources]
            known = {v for v in values if v is not None}
            if len(known) > 1:
                out.append(FlagDrift(flag.env, *values))
        return tuple(out)

    @property
    def stale_process(self) -> bool:
        """The env file says one thing, the running process another: troubleshooting 1."""
        return bool(self.env_file and self.process and self.env_file != self.process)

    @property
    def effective(self) -> FlagSet | None:
        """What the service is really running with: the process, else the log."""
        return self.process or self.log


@dataclass(frozen=True)
class HealthReport:
    health_status: int | None = None  # HTTP status of /health
    health: str | None = None  # its "status" field
    version: str | None = None
    health_error: str | None = None
    ready: bool | None = None
    ready_status: int | None = None
    ready_components: tuple[tuple[str, str], ...] = ()
    ready_error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.health_status == 200 and self.health == "healthy"

    @property
    def disagree(self) -> bool:
        """/health is hard-coded healthy; /health/ready tells the truth."""
        return self.healthy and self.ready is False


@dataclass(frozen=True)
class RecommendationReport:
    """Login + best-times, as the runbook's "Test recommendations" step."""

    login_status: int | None = None
    login_error: str | None = None
    status: int | None = None
    latency_s: float | None = None
    login_latency_s: float | None = None
    mode: str | None = None  # "advanced" (non-empty advanced lists) or "legacy"
    total_posts: int | None = None
    data_present: bool | None = None
    failed: bool = False  # HTTP 200 with data.status == "failed"
    failure: str | None = None  # data.error when failed
    error: str | None = None  # anything else that went wrong
    measured: str | None = None  # how latency_s was measured, when it was measured again
    first_latency_s: float | None = None  # the first measurement, when measured again

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.failed and self.error is None and bool(self.data_present)


@dataclass(frozen=True)
class LogReport:
    window: int = 0  # lines read
    error_lines: int = 0
    error_samples: tuple[str, ...] = ()
    requests: int = 0  # best-times requests seen in the window
    error: str | None = None
    tail: tuple[str, ...] = ()  # the last lines, for the focused view
    span: str | None = None  # what the window is: "the last 100 lines", "the 12 lines since the restart"

    @property
    def error_rate(self) -> float | None:
        if self.requests == 0:
            return None
        return min(1.0, self.error_lines / self.requests)

    @property
    def described_span(self) -> str:
        return self.span or f"the last {self.window} lines"

    @property
    def no_rate(self) -> str:
        """Why there is no error rate (it needs best-times request lines to divide by)."""
        if self.error:
            return self.error
        if self.window == 0:
            return "the log has no lines to read"
        return (
            f"no best-times request in {self.described_span} of the log to compute a rate from "
            f"({self.error_lines} ERROR line{'s' if self.error_lines != 1 else ''})"
        )


@dataclass(frozen=True)
class MemoryReport:
    pid: int | None = None
    rss_bytes: int | None = None
    error: str | None = None

    @property
    def rss_mb(self) -> float | None:
        return None if self.rss_bytes is None else self.rss_bytes / (1024 * 1024)


@dataclass(frozen=True)
class DatabaseReport:
    columns: tuple[tuple[str, bool], ...] = ()
    indexes: tuple[tuple[str, bool], ...] = ()
    dependents: tuple[str, ...] = ()  # objects that would go with the columns
    rows: int | None = None
    error: str | None = None

    @property
    def migration_applied(self) -> bool | None:
        if self.error or not self.columns:
            return None
        return all(present for _, present in self.columns)

    @property
    def extra_dependents(self) -> tuple[str, ...]:
        """Dependents beyond migration 004's own indexes (e.g. migration 005's)."""
        own = {name for name, _ in self.indexes}
        return tuple(d for d in self.dependents if d.split()[-1] not in own)


@dataclass(frozen=True)
class HostSnapshot:
    host: str
    where: str
    taken_at: float
    elapsed_s: float
    unreachable: str | None = None
    flags: FlagReport = field(default_factory=FlagReport)
    health: HealthReport = field(default_factory=HealthReport)
    recommendations: RecommendationReport = field(default_factory=RecommendationReport)
    logs: LogReport = field(default_factory=LogReport)
    memory: MemoryReport = field(default_factory=MemoryReport)

    def signal(self, name: str) -> tuple[float | bool | None, str]:
        """One decision-matrix signal on this host, and why it is unknown when it is None."""
        if self.unreachable:
            return None, f"unreachable — {self.unreachable}"
        r, hr = self.recommendations, self.health
        if name == "response_time_s":
            return r.latency_s, r.login_error or r.error or "best-times not measured"
        if name == "error_rate":
            return self.logs.error_rate, self.logs.no_rate
        if name == "memory_mb":
            return self.memory.rss_mb, self.memory.error or "memory not measured"
        if name == "missing_data":
            if r.status == 200 and (r.failed or r.error is None):
                return r.failed or not r.data_present, ""
            return None, r.login_error or r.error or "best-times not answered"
        if name == "unhealthy":
            if hr.health_status is None and hr.ready is None:
                if self.flags.not_running:  # no answer, and no process to give one: down
                    return True, ""
                return None, hr.health_error or hr.ready_error or "health not measured"
            return not hr.healthy or hr.ready is False, ""
        return getattr(self, name, None), f"unknown signal {name}"

    def problems(self) -> list[str]:
        """What could not be read or measured on this host, one sentence each: the reasons
        a recommendation cannot be "no action" (and ``status`` exits 1)."""
        if self.unreachable:
            return [f"{self.host}: unreachable — {self.unreachable}"]
        out = []
        hr, f, r = self.health, self.flags, self.recommendations
        if hr.health_error:  # no health answer, or one that is an error (HTTP 500)
            out.append(hr.health_error)
        if hr.ready_error:  # no answer, or an error in place of one (HTTP 502)
            out.append(hr.ready_error)
        # Not f.log_error alone: a log read in full that holds no flag line is an observation.
        for error in (f.env_file_error, f.process_error, r.login_error, r.error):
            if error:
                out.append(error)
        if self.logs.error:
            out.append(self.logs.error)
        if self.memory.error:
            out.append(self.memory.error)
        return [f"{self.host}: {p}" for p in dict.fromkeys(out)]

    def symptoms(self) -> list[str]:
        """What is known to be wrong with this host that no matrix signal covers."""
        if self.unreachable:
            return []
        hr, out = self.health, []
        if hr.health_status == 200 and hr.health is not None and not hr.healthy:
            out.append(f"/health says {hr.health[:40]!r}, not 'healthy'")
        if hr.ready is False and not hr.ready_error:
            comps = ", ".join(f"{k}: {v}" for k, v in hr.ready_components if v not in ("ok", "healthy", "up"))
            out.append("/health/ready: not ready" + (f" ({comps})" if comps else ""))
        return [f"{self.host}: {s}" for s in out]


@dataclass(frozen=True)
class EnvironmentSnapshot:
    environment: str
    kind: str
    taken_at: float
    elapsed_s: float
    hosts: tuple[HostSnapshot, ...]
    database: DatabaseReport | None = None

    # Signals for the decision matrix: the worst host speaks for the environment.
    @property
    def response_time_s(self) -> float | None:
        values = [h.recommendations.latency_s for h in self.hosts if h.recommendations.latency_s is not None]
        return max(values) if values else None

    @property
    def error_rate(self) -> float | None:
        values = [h.logs.error_rate for h in self.hosts if h.logs.error_rate is not None]
        return max(values) if values else None

    @property
    def memory_mb(self) -> float | None:
        values = [h.memory.rss_mb for h in self.hosts if h.memory.rss_mb is not None]
        return max(values) if values else None

    @property
    def missing_data(self) -> bool | None:
        known = [h.recommendations for h in self.hosts if h.recommendations.status == 200]
        if not known:
            return None
        return any(r.failed or not r.data_present for r in known)

    @property
    def unhealthy(self) -> bool | None:
        """Unknown when no host's health could be read: a host out of reach is not a sick one."""
        values = [v for v, _ in (h.signal("unhealthy") for h in self.hosts) if v is not None]
        return any(values) if values else None

    def problems(self) -> list[str]:
        """Every host's problems, then the database's."""
        out = [p for h in self.hosts for p in h.problems()]
        if self.database is not None and self.database.error:
            out.append(self.database.error)
        return out

    def symptoms(self) -> list[str]:
        return [s for h in self.hosts for s in h.symptoms()]

    @property
    def reachable_hosts(self) -> tuple[HostSnapshot, ...]:
        return tuple(h for h in self.hosts if not h.unreachable)


def flag_dict(flags: FlagSet | None) -> dict[str, bool] | None:
    return None if flags is None else flags.as_dict()
