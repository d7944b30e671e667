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
    """The flags as each source has them: the env file, the running process, the log."""

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
class EndpointReport:
    """One health endpoint of the profile, and what its answer says by the profile's `ok` test."""

    role: str  # "liveness" or "readiness"
    endpoint: str  # the path asked ("/live")
    truthful: bool = False  # the profile says this one tells the truth
    status: int | None = None  # HTTP status; None: no answer
    ok: bool | None = None  # the `ok` test holds; None: no answer to judge
    said: str | None = None  # ok: the value it answered ("healthy"); not ok: why not
    version: str | None = None
    components: tuple[tuple[str, str], ...] = ()
    error: str | None = None  # no answer, or not one to judge (HTTP 500, not JSON)

    def describe(self) -> str:
        """``/live 200 healthy``, ``/ready 503 NOT OK: `ready` is …``, or the error."""
        if self.ok is None:
            return self.error or f"{self.endpoint} not asked"
        if self.ok:
            return f"{self.endpoint} {self.status} {self.said or 'ok'}"
        why = ", ".join(f"{k}: {v}" for k, v in self.unwell_components) or self.said
        return f"{self.endpoint} {self.status or '—'} NOT OK" + (f": {why}" if why else "")

    @property
    def unwell_components(self) -> tuple[tuple[str, str], ...]:
        return tuple((k, v) for k, v in self.components if v not in ("ok", "healthy", "up"))


@dataclass(frozen=True)
class HealthReport:
    """The profile's health endpoints; the verdict needs the truthful one, and any that says
    not ok makes it false (a hard-coded "healthy" is only believed when the truth agrees)."""

    endpoints: tuple[EndpointReport, ...] = ()
    error: str | None = None  # nothing could be asked (no way to the API, no usable profile)
    note: str = ""  # the profile's word on which endpoint tells the truth

    @property
    def truth(self) -> EndpointReport | None:
        return next((e for e in self.endpoints if e.truthful), None)

    @property
    def healthy(self) -> bool:
        """Every endpoint answered ok."""
        return bool(self.endpoints) and all(e.ok is True for e in self.endpoints)

    @property
    def verdict(self) -> bool | None:
        """Healthy (True), not (False), or unknown (None: the truthful endpoint did not answer)."""
        if any(e.ok is False for e in self.endpoints):
            return False
        truth = self.truth
        if truth is None or truth.ok is None:
            return None
        return True

    @property
    def disagree(self) -> bool:
        """An endpoint says ok while the one that tells the truth says not."""
        truth = self.truth
        return truth is not None and truth.ok is False and any(e.ok for e in self.endpoints if not e.truthful)

    @property
    def answered(self) -> bool:
        """Some endpoint gave an HTTP answer."""
        return any(e.status is not None for e in self.endpoints)

    @property
    def version(self) -> str | None:
        return next((e.version for e in self.endpoints if e.version), None)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(x for x in (self.error, *(e.error for e in self.endpoints)) if x)

    def describe(self) -> str:
        """Every endpoint's answer; a disagreement says which one tells the truth."""
        if self.error and not self.endpoints:
            return self.error
        text = "; ".join(e.describe() for e in self.endpoints)
        if self.disagree:
            truth = self.truth
            assert truth is not None
            text += f" — {self.note or f'{truth.endpoint} tells the truth'}"
        return text


@dataclass(frozen=True)
class ProbeReport:
    """The profile's functional probe (Phase 4: log in, then best-times), its answer judged by
    the profile's predicates: ok (with its modes), failed (a failure shape) or an error."""

    title: str = ""  # the probe's title ("Test recommendations")
    request: str = ""  # the request's title ("best-times")
    login_status: int | None = None
    login_error: str | None = None
    login_latency_s: float | None = None
    status: int | None = None
    latency_s: float | None = None
    kind: str | None = None  # "ok", "failed" or "error"; None: no answer was judged
    message: str | None = None  # a failure's own words (data.error), else its title
    failure: str | None = None  # the failure shape's id
    failure_title: str | None = None  # "HTTP 200 with status: failed"
    modes: tuple[str, ...] = ()  # the profile's modes the answer is in
    mode_titles: tuple[str, ...] = ()  # their titles ("advanced mode")
    data_present: bool | None = None
    count: int | float | None = None
    count_label: str = ""  # "posts"
    error: str | None = None  # anything else that went wrong
    measured: str | None = None  # how latency_s was measured, when it was measured again
    first_latency_s: float | None = None  # the first measurement, when measured again

    @property
    def failed(self) -> bool:
        """The service answered, in one of the profile's failure shapes (HTTP 200 with status: failed)."""
        return self.kind == "failed"

    @property
    def ok(self) -> bool:
        return self.kind == "ok" and self.error is None and self.data_present is not False

    @property
    def answered(self) -> bool:
        """An answer the profile describes: ok or a failure shape (not an error)."""
        return self.kind in ("ok", "failed") and self.error is None

    @property
    def problem(self) -> str | None:
        """Why there is no answer to judge: the login's error or the request's."""
        return self.login_error or self.error

    @property
    def name(self) -> str:
        return self.request or self.title or "probe"

    @property
    def counted(self) -> str:
        """``120 posts`` (the profile's count and its label), or "" when it has none."""
        if self.count is None:
            return ""
        shown = f"{self.count:g}" if isinstance(self.count, float) else str(self.count)
        return f"{shown} {self.count_label}".rstrip()

    @property
    def mode_text(self) -> str:
        """``advanced mode``: the modes' titles, "no known mode" when none matched."""
        return ", ".join(self.mode_titles or self.modes) or "no known mode"

    @property
    def failure_text(self) -> str:
        """``HTTP 200 with status: failed: <what the service said>``."""
        title = self.failure_title or self.failure or "failed"
        return f"{title}: {self.message}" if self.message and self.message != title else title


@dataclass(frozen=True)
class LogReport:
    """What the log's last lines say: its errors, the functional probe's requests, its tail."""

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
    """The service process's resident memory, or why it could not be read."""

    pid: int | None = None
    rss_bytes: int | None = None
    error: str | None = None

    @property
    def rss_mb(self) -> float | None:
        return None if self.rss_bytes is None else self.rss_bytes / (1024 * 1024)


@dataclass(frozen=True)
class DatabaseReport:
    """The database as probed: the change's columns and indexes present, what depends on them."""

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
    """One host's probe round: flags, health, the functional probe, log, memory."""

    host: str
    where: str
    taken_at: float
    elapsed_s: float
    unreachable: str | None = None
    flags: FlagReport = field(default_factory=FlagReport)
    health: HealthReport = field(default_factory=HealthReport)
    probe: ProbeReport = field(default_factory=ProbeReport)
    logs: LogReport = field(default_factory=LogReport)
    memory: MemoryReport = field(default_factory=MemoryReport)

    def signal(self, name: str) -> tuple[float | bool | None, str]:
        """One decision-matrix signal on this host, and why it is unknown when it is None."""
        if self.unreachable:
            return None, f"unreachable — {self.unreachable}"
        r, hr = self.probe, self.health
        if name == "response_time_s":
            return r.latency_s, r.problem or f"{r.name} not measured"
        if name == "error_rate":
            return self.logs.error_rate, self.logs.no_rate
        if name == "memory_mb":
            return self.memory.rss_mb, self.memory.error or "memory not measured"
        if name == "missing_data":
            if r.failed:
                return True, ""
            if r.answered and r.data_present is not None:
                return not r.data_present, ""
            if r.answered:
                return None, "the profile's probe has no data_present test"
            return None, r.problem or f"{r.name} not answered"
        if name == "unhealthy":
            verdict = hr.verdict
            if verdict is None:
                if not hr.answered and self.flags.not_running:  # no answer, and no process to give one: down
                    return True, ""
                return None, next(iter(hr.errors), "health not measured")
            return not verdict, ""
        return getattr(self, name, None), f"unknown signal {name}"

    def problems(self) -> list[str]:
        """What could not be read or measured on this host, one sentence each: the reasons
        a recommendation cannot be "no action" (and ``status`` exits 1)."""
        if self.unreachable:
            return [f"{self.host}: unreachable — {self.unreachable}"]
        f, r = self.flags, self.probe
        # No health answer, or one that is an error (HTTP 500, 502) in place of an answer.
        out = list(self.health.errors)
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
        out = []
        for e in self.health.endpoints:
            if e.ok is False and not e.error:
                word = "not ready" if e.role == "readiness" else "not healthy"
                comps = ", ".join(f"{k}: {v}" for k, v in e.unwell_components)
                why = comps or (e.said or "")[:80]
                out.append(f"{e.endpoint}: {word}" + (f" ({why})" if why else ""))
        return [f"{self.host}: {s}" for s in out]


@dataclass(frozen=True)
class EnvironmentSnapshot:
    """One probe round of an environment: every host, and its database."""

    environment: str
    kind: str
    taken_at: float
    elapsed_s: float
    hosts: tuple[HostSnapshot, ...]
    database: DatabaseReport | None = None
    profile: str | None = None  # the file of the service profile the probes followed

    # Signals for the decision matrix: the worst host speaks for the environment.
    @property
    def response_time_s(self) -> float | None:
        values = [h.probe.latency_s for h in self.hosts if h.probe.latency_s is not None]
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
        values = [v for v, _ in (h.signal("missing_data") for h in self.hosts) if v is not None]
        return any(values) if values else None

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
