"""The runbook's four troubleshooting issues, recognised from live evidence.

Each finding says which issue, what was seen (evidence) and the runbook's fix, with the
commands as this environment would run them.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.config.model import Environment
from console.flags import FLAG_NAMES, LOG_LABELS
from console.journal import RunSummary
from console.probes.snapshot import EnvironmentSnapshot

ISSUES = {
    1: "Environment changes not taking effect",
    2: "API won't start after rollback",
    3: "Database rollback fails",
    4: "Partial rollback - only one flag changed",
}


@dataclass(frozen=True)
class Finding:
    issue: int
    host: str | None
    evidence: str
    fix: tuple[str, ...]  # what to run, as this environment would

    @property
    def title(self) -> str:
        return f"Issue {self.issue}: {ISSUES[self.issue]}"


def findings(env: Environment, snapshot: EnvironmentSnapshot, last_run: RunSummary | None = None) -> list[Finding]:
    out: list[Finding] = []
    for h in snapshot.hosts:
        host = next((x for x in env.hosts if x.name == h.host), env.hosts[0])
        f = h.flags
        if h.unreachable:
            continue
        if f.stale_process and f.env_file and f.process:
            diff = ", ".join(
                f"{LOG_LABELS[n]} env file {f.env_file.get(n)} / process {f.process.get(n)}"
                for n in FLAG_NAMES
                if f.env_file.get(n) != f.process.get(n)
            )
            fix = [f"grep ENABLE_ {env.expand(env.env_file, host)}"]
            if env.reload_command:
                fix.append(env.expand(env.reload_command, host))
            fix.append(env.expand(env.force_restart_command or env.restart_command, host))
            fix.append("cat /proc/$(pid)/environ | tr '\\0' '\\n' | grep ENABLE_")
            out.append(
                Finding(
                    1,
                    h.host,
                    f"the running process (pid {f.pid}) does not have the env file's flags: {diff}",
                    tuple(fix),
                )
            )
        if f.process_error or (h.health.health_error and h.health.health_status is None):
            evidence = f.process_error or h.health.health_error or ""
            if f.env_file_problems:
                evidence += "; env file: " + "; ".join(f.env_file_problems)
            fix = [env.expand(env.service_log_command, host)] if env.service_log_command else []
            fix += [
                "# 1. syntax error in .env → fix the line named above",
                "# 2. missing dependency → pip install -r requirements.txt",
                "# 3. database connection error → check DATABASE_URL",
            ]
            out.append(Finding(2, h.host, evidence, tuple(fix)))
        if (
            f.env_file
            and f.env_file.advanced
            and f.log
            and any(not f.env_file.get(n) and f.log.get(n) for n in FLAG_NAMES[1:])
        ):
            stuck = [LOG_LABELS[n] for n in FLAG_NAMES[1:] if not f.env_file.get(n) and f.log.get(n)]
            fix = [
                f"grep ENABLE_ {env.expand(env.env_file, host)}",
                env.expand(env.force_restart_command or env.restart_command, host),
            ]
            out.append(
                Finding(
                    4,
                    h.host,
                    f"env file has {', '.join(stuck)} off but the log still says True: {(f.log_line or '')[:160]}",
                    tuple(fix),
                )
            )
    if last_run is not None and env.database is not None and last_run.outcome in ("failed", "interrupted"):
        failed = last_run.failed_at()
        if failed and failed[0].startswith(("Run the rollback script", "Check the columns", "Keep a copy")):
            from console.plans.database import manual_sql  # the dashboard should not load the engine

            error = next(
                (r["data"].get("message", "") for r in reversed(last_run.records) if r["type"] == "step_failed"), ""
            )
            out.append(
                Finding(
                    3,
                    None,
                    f"run {last_run.run_id} failed at {failed[0]}: {error[:200]}",
                    tuple(manual_sql(env).splitlines()),
                )
            )
    return out
