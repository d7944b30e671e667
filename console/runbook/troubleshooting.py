"""The runbook's four troubleshooting issues, recognised from live evidence.

``assess`` says, for each of the four, whether it applies now (or that it cannot be
told), the evidence either way, and the runbook's fix with the commands as this
environment would run them. ``findings`` keeps only those that apply.

Which facts hold is code (the verdicts below); what the issues are called and how they
are fixed is the environment's service profile (its [[troubleshooting]] entries), read
once per process by ``console.profile.profile_of``. An issue the profile does not have
is not shown; a profile that cannot be read is said so, as the one status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from console.config.model import Environment, Host
from console.journal import RunSummary
from console.probes.snapshot import EnvironmentSnapshot, FlagReport, HostSnapshot
from console.profile import Profile, ProfileError, profile_of, profile_path
from console.profile.patterns import fill
from console.runbook.issues import DB_ROLLBACK_FAILED, OLDER_DATABASE_STEPS

PROFILE_UNREADABLE = "profile-unreadable"  # the one status when the profile cannot be read

__all__ = [
    "DB_ROLLBACK_FAILED",
    "Finding",
    "IssueStatus",
    "assess",
    "failed_issue",
    "findings",
    "fix_values",
]


def failed_issue(run: RunSummary) -> tuple[str | None, dict]:
    """The issue the run's last failed step named (None if none), and that failure's data."""
    for r in reversed(run.records):
        d = r.get("data") or {}
        if r["type"] == "step_failed" and d.get("step"):
            issue = d.get("issue")
            if issue is None and d["step"] in OLDER_DATABASE_STEPS:
                issue = DB_ROLLBACK_FAILED
            return (issue if isinstance(issue, str) else None), d
    return None, {}


@dataclass(frozen=True)
class Finding:
    issue: str  # its id
    host: str | None
    evidence: str
    fix: tuple[str, ...]  # what to run, as this environment would
    title: str = ""  # as the environment's profile heads it ("Issue 1: …")


@dataclass(frozen=True)
class IssueStatus:
    """One troubleshooting issue now: applies (True), does not (False), or cannot be told (None)."""

    issue: str  # its id
    applies: bool | None
    evidence: str
    fix: tuple[str, ...]
    hosts: tuple[str, ...] = ()  # where it applies
    title: str = ""  # as the environment's profile heads it ("Issue 1: …")

    @property
    def verdict(self) -> str:
        return {True: "applies now", False: "does not apply now", None: "cannot assess"}[self.applies]


def _host(env: Environment, name: str) -> Host:
    return next((x for x in env.hosts if x.name == name), env.hosts[0])


def fix_values(env: Environment, host: Host, profile: Profile) -> dict[str, str]:
    """The fix placeholders (vocabulary.FIX_PLACEHOLDERS) as this environment has them on one
    host; one it does not set is absent, so the lines naming it are left out."""
    commands = {
        "env_file": env.env_file,
        "restart_command": env.restart_command,
        "reload_command": env.reload_command,
        "force_restart_command": env.force_restart_command,
        "service_log_command": env.service_log_command,
        "pid_command": env.pid_command,
        "log_file": env.log_file,
        "repo_path": env.repo_path,
    }
    out = {k: env.expand(v, host) for k, v in commands.items() if v}
    # The fix runs after a restart, so the pid is the one the pid command prints then.
    out["pid"] = f"$({out['pid_command']})"
    environ = fill(profile.process.environ, out)
    if environ is not None:
        out["environ"] = environ
    envs = [f.env for f in profile.flags.flags]
    out["flag_envs"] = " ".join(envs)
    out["flag_grep"] = "^(" + "|".join(envs) + ")="
    if env.database is not None:
        from console.plans.database import manual_sql  # the dashboard should not load the engine

        out["table"] = env.database.table
        out["columns"] = ", ".join(env.database.columns)
        out["manual_sql"] = manual_sql(env)
    return out


class _Runbook:
    """The environment's profile's words for the issues: titles, and fix lines filled in with
    this environment's own commands as they apply on one host (a line whose placeholder the
    environment does not set is left out)."""

    def __init__(self, env: Environment, profile: Profile) -> None:
        self.env, self.profile = env, profile
        self.issues = {i.id: i for i in profile.troubleshooting}
        self._values: dict[str, dict[str, str]] = {}

    def values(self, host: Host) -> dict[str, str]:
        if host.name not in self._values:  # four fixes, mostly on one host: worked out once
            self._values[host.name] = fix_values(self.env, host, self.profile)
        return self._values[host.name]

    def fix(self, issue: str, host: Host) -> tuple[str, ...]:
        found = self.issues.get(issue)
        if found is None:
            return ()
        if "db_rollback_failed" in found.applies and self.env.database is None:
            return ("# no [database] section for this environment: the console has no database to roll back here",)
        return found.fix_lines(self.values(host))

    def title(self, issue: str) -> str:
        return self.issues[issue].heading


def _stale(issue: str, rb: _Runbook, env: Environment, hosts: list[HostSnapshot]) -> IssueStatus:
    stale, unknown = [], []
    for h in hosts:
        f = h.flags
        if f.stale_process:
            assert f.env_file is not None and f.process is not None  # stale_process says so
            diff = ", ".join(
                f"{flag.label} env file {f.env_file[flag.id]} / process {f.process[flag.id]}"
                for flag in f.env_file.flags
                if f.env_file[flag.id] != f.process[flag.id]
            )
            stale.append((h.host, f"the running process (pid {f.pid}) does not have the env file's flags: {diff}"))
        elif f.env_file is None or f.process is None:
            why = f.process_error or f.env_file_error or "not read"
            unknown.append(f"{h.host}: {why}")
    first = _host(env, stale[0][0] if stale else hosts[0].host if hosts else env.hosts[0].name)
    if stale:
        evidence = "; ".join(f"{name}: {e}" if len(hosts) > 1 else e for name, e in stale)
        return IssueStatus(issue, True, evidence, rb.fix(issue, first), tuple(n for n, _ in stale))
    if unknown or not hosts:
        why = "the env file or the process environment could not be read — " + "; ".join(unknown)
        return IssueStatus(issue, None, why, rb.fix(issue, first))
    pids = ", ".join(str(h.flags.pid) for h in hosts)
    return IssueStatus(
        issue,
        False,
        f"the running process (pid {pids}) has the env file's flags",
        rb.fix(issue, first),
    )


def _down(issue: str, rb: _Runbook, env: Environment, hosts: list[HostSnapshot]) -> IssueStatus:
    down, up = [], []
    for h in hosts:
        f = h.flags
        answered = [e for e in h.health.endpoints if e.status is not None]
        if f.process_error or (h.health.errors and not answered):
            evidence = f.process_error or h.health.errors[0]
            if f.env_file_problems:
                evidence += "; env file: " + "; ".join(f.env_file_problems)
            down.append((h.host, evidence))
        elif answered:
            up.append(f"{h.host}: {answered[0].endpoint} {answered[0].status}, pid {f.pid or '?'}")
    first = _host(env, down[0][0] if down else hosts[0].host if hosts else env.hosts[0].name)
    if down:
        evidence = "; ".join(f"{name}: {e}" if len(hosts) > 1 else e for name, e in down)
        return IssueStatus(issue, True, evidence, rb.fix(issue, first), tuple(n for n, _ in down))
    if not up:
        return IssueStatus(issue, None, "no host answered the probes", rb.fix(issue, first))
    return IssueStatus(issue, False, "the API is running — " + "; ".join(up), rb.fix(issue, first))


def _database(
    issue: str, rb: _Runbook, env: Environment, snapshot: EnvironmentSnapshot, last_run: RunSummary | None
) -> IssueStatus:
    fix = rb.fix(issue, env.hosts[0])
    if env.database is None:
        return IssueStatus(issue, False, "no database configured for this environment", fix)
    if last_run is not None and last_run.outcome in ("failed", "interrupted"):
        failed, failure = failed_issue(last_run)
        if failed in (DB_ROLLBACK_FAILED, issue):  # the profile's id, or the fact an older journal implies
            at = (last_run.failed_at() or (str(failure["step"]), ""))[0]
            error = str(failure.get("message", ""))
            return IssueStatus(issue, True, f"run {last_run.run_id} failed at {at}: {error[:200]}", fix)
    db = snapshot.database
    columns = ""
    if db is not None and not db.error:
        columns = "; columns now: " + ", ".join(f"{c} {'present' if p else 'absent'}" for c, p in db.columns)
    if last_run is None:
        return IssueStatus(issue, False, "no rollback of this environment in the journal" + columns, fix)
    return IssueStatus(
        issue,
        False,
        f"the last run ({last_run.run_id}, {last_run.outcome}) did not fail at a database step" + columns,
        fix,
    )


def _verdict(
    issue: str,
    rb: _Runbook,
    env: Environment,
    hosts: list[HostSnapshot],
    found: list[tuple[str, str]],
    unknown: list[str],
    fine: str,
    unknown_says: str = "cannot assess",
) -> IssueStatus:
    """Applies on the hosts in ``found``; else unknown when no host could be judged; else
    not, with ``fine`` and the hosts that could not be judged named beside it."""
    first = _host(env, found[0][0] if found else hosts[0].host if hosts else env.hosts[0].name)
    if found:
        evidence = "; ".join(f"{name}: {e}" if len(hosts) > 1 else e for name, e in found)
        return IssueStatus(issue, True, evidence, rb.fix(issue, first), tuple(n for n, _ in found))
    if len(unknown) == len(hosts):
        return IssueStatus(
            issue, None, f"{unknown_says} — " + ("; ".join(unknown) or "no host answered"), rb.fix(issue, first)
        )
    if unknown:
        fine += f"; {unknown_says} on " + "; ".join(unknown)
    return IssueStatus(issue, False, fine, rb.fix(issue, first))


def _compare_log(
    issue: str,
    rb: _Runbook,
    env: Environment,
    hosts: list[HostSnapshot],
    wrong: Callable[[FlagReport], str | None],
    agrees: str,
) -> IssueStatus:
    """The log's last flag line against the env file, host by host: ``wrong`` says what
    disagrees (None: nothing); a host whose two sources cannot both be read is unknown."""
    found, unknown = [], []
    for h in hosts:
        f = h.flags
        if f.env_file is None or f.log is None:
            unknown.append(f"{h.host}: " + (f.log_error or f.env_file_error or "no flag line in the log yet"))
        elif (said := wrong(f)) is not None:
            found.append((h.host, said))
    return _verdict(issue, rb, env, hosts, found, unknown, agrees, "the log's flag line cannot be compared")


def _partial(issue: str, rb: _Runbook, env: Environment, hosts: list[HostSnapshot]) -> IssueStatus:
    def wrong(f: FlagReport) -> str | None:
        assert f.env_file is not None and f.log is not None  # _compare_log reads only such hosts
        # A flag that depends on another acts only while that one is on: turned off alone, its
        # own line in the log must say off.
        off = [
            flag.label
            for flag in f.env_file.flags
            if flag.depends_on and f.env_file[flag.depends_on] and not f.env_file[flag.id] and f.log[flag.id]
        ]
        line = (f.log_line or "")[:160]
        return f"env file has {', '.join(off)} off but the log still says on: {line}" if off else None

    return _compare_log(issue, rb, env, hosts, wrong, "the log's last flag line agrees with the env file's sub-flags")


def _log_mismatch(issue: str, rb: _Runbook, env: Environment, hosts: list[HostSnapshot]) -> IssueStatus:
    """The log's last flag line says other values than the env file (the process is another
    issue: a stale environment)."""

    def wrong(f: FlagReport) -> str | None:
        assert f.env_file is not None and f.log is not None  # _compare_log reads only such hosts
        return None if f.log == f.env_file else f"env file has {f.env_file.describe()}, the log says {f.log.describe()}"

    return _compare_log(issue, rb, env, hosts, wrong, "the log's last flag line agrees with the env file")


def _probe_failed(issue: str, rb: _Runbook, env: Environment, hosts: list[HostSnapshot]) -> IssueStatus:
    """The functional probe's answer is one of the profile's failure shapes."""
    found, unknown, ok = [], [], []
    for h in hosts:
        p = h.probe
        if p.failed and p.error is None:
            shape = p.failure_title or p.failure or "a failure shape"
            said = f": {p.message[:160]}" if p.message and p.message != shape else ""
            found.append((h.host, f"{p.request or 'the request'} answered HTTP {p.status}, {shape}{said}"))
        elif p.answered:
            ok.append(h.host)
        else:
            unknown.append(f"{h.host}: {(p.problem or p.error or 'no answer to judge')[:200]}")
    fine = "the functional probe's answer is no failure shape" + (f" ({', '.join(ok)})" if len(hosts) > 1 else "")
    return _verdict(issue, rb, env, hosts, found, unknown, fine)


def _health_disagrees(issue: str, rb: _Runbook, env: Environment, hosts: list[HostSnapshot]) -> IssueStatus:
    """An endpoint says ok while the one the profile trusts says not."""
    found, unknown, agree = [], [], []
    for h in hosts:
        truth = h.health.truth
        if h.health.disagree:
            found.append((h.host, "; ".join(e.describe() for e in h.health.endpoints)))
        elif truth is None or truth.ok is None or any(e.ok is None for e in h.health.endpoints):
            unknown.append(
                f"{h.host}: "
                + (h.health.error or "; ".join(e.describe() for e in h.health.endpoints) or "no health answer")
            )
        else:
            agree.append(h.host)
    fine = "the health endpoints agree" + (f" ({', '.join(agree)})" if len(hosts) > 1 else "")
    return _verdict(issue, rb, env, hosts, found, unknown, fine)


# Which facts the console can judge from a snapshot, and how (db_rollback_failed: from the journal).
JUDGES = {
    "probe_failed": _probe_failed,
    "health_disagrees": _health_disagrees,
    "stale_process": _stale,
    "not_running": _down,
    "restart_failed": _down,
    "env_file_unparsable": _down,
    "partial_flag_mismatch": _partial,
    "log_flag_mismatch": _log_mismatch,
    "db_rollback_failed": _database,
}


def assess(env: Environment, snapshot: EnvironmentSnapshot, last_run: RunSummary | None = None) -> list[IssueStatus]:
    """The profile's issues, in its order, each with its verdict, evidence and fix."""
    try:
        profile = profile_of(env)
    except ProfileError as exc:
        where = f"{exc.problems[0]}" if exc.problems else str(exc)
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        return [
            IssueStatus(
                PROFILE_UNREADABLE,
                None,
                f"the service profile cannot be read: {where}{more}",
                (f"rollback-console config validate --profile {profile_path(env)}",),
                title="Troubleshooting: the service profile",
            )
        ]
    rb = _Runbook(env, profile)
    hosts = [h for h in snapshot.hosts if not h.unreachable]
    unreachable = [h.host for h in snapshot.hosts if h.unreachable]
    out = []
    # Each of the profile's issues, in its order, judged by the first of its facts the console
    # can see (console.profile.vocabulary.FACTS); one it cannot judge reads "cannot assess".
    for issue in profile.troubleshooting:
        fact = next((f for f in issue.applies if f in JUDGES), None)
        if fact is None:
            said = ", ".join(issue.applies) or "none"
            status = IssueStatus(
                issue.id, None, f"cannot assess: the console has no check for its facts ({said}) yet", ()
            )
        elif fact == "db_rollback_failed":
            status = _database(issue.id, rb, env, snapshot, last_run)
        else:
            status = JUDGES[fact](issue.id, rb, env, hosts)
            if unreachable and not hosts:
                status = IssueStatus(status.issue, None, f"unreachable: {', '.join(unreachable)}", status.fix)
        out.append(replace(status, title=rb.title(issue.id)))
    return out


def findings(env: Environment, snapshot: EnvironmentSnapshot, last_run: RunSummary | None = None) -> list[Finding]:
    """Only what applies now (with the host, when it is one host)."""
    out: list[Finding] = []
    for status in assess(env, snapshot, last_run):
        if status.applies:
            host = status.hosts[0] if len(status.hosts) == 1 else None
            out.append(Finding(status.issue, host, status.evidence, status.fix, status.title))
    return out
