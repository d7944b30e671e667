"""Fixed data for the console's snapshot tests: a config, env files, snapshots and a
journal that never change, at a fixed path so that nothing on screen varies."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from console.config import Config, load_config
from console.journal import Journal, Who
from console.journal.records import iso
from console.probes.snapshot import (
    DatabaseReport,
    EndpointReport,
    EnvironmentSnapshot,
    FlagReport,
    HealthReport,
    HostSnapshot,
    LogReport,
    MemoryReport,
    ProbeReport,
)
from tests.phase4 import ALL_OFF, ALL_ON, RULES


def health(*, ready: bool, database: str) -> HealthReport:
    """/health hard-coded healthy; /health/ready, the truthful one, as given."""
    return HealthReport(
        (
            EndpointReport("liveness", "/health", False, 200, True, "healthy", "7.5.0"),
            EndpointReport(
                "readiness",
                "/health/ready",
                True,
                200 if ready else 503,
                ready,
                None if ready else "`ready` is a boolean (False), not True",
                components=(("database", database),),
            ),
        ),
        note='/health is hard-coded "healthy", even with the database down; /health/ready tells the truth',
    )


def best_times(latency_s: float) -> ProbeReport:
    """An advanced-mode answer of 629 posts, as the Phase 4 profile reads it."""
    return ProbeReport(
        title="Test recommendations",
        request="best-times",
        login_status=200,
        status=200,
        latency_s=latency_s,
        kind="ok",
        modes=("advanced",),
        mode_titles=("advanced mode",),
        data_present=True,
        count=629,
        count_label="posts",
    )


ROOT = Path(tempfile.gettempdir()) / "rollback-console-tui-fixed"
T0 = 1795850000.0  # 2026-11-27 ~ fixed clock
WHO = Who(user="alice", ssh_client="10.0.0.7", host="bastion-1", pid=999_999)
BOB = Who(user="bob", ssh_client="10.0.0.9", host="bastion-1", pid=999_998)  # a second person: an approver

ENV_TEXT = """# analyticbot {env}
API_PORT=10300
DATABASE_URL=postgresql://analytic:{{secret}}@localhost:10100/analytic_bot

# Phase 4
ENABLE_ADVANCED_RECOMMENDATIONS={flag}
ENABLE_TIME_WEIGHTING={flag}
ENABLE_CONTENT_TYPE_ANALYSIS={flag}
"""

CONFIG = """
[console]
journal = "{root}/journal.jsonl"

[environments.staging]
kind = "staging"
hosts = ["local"]
api_url = "http://127.0.0.1:9"
channel_id = -1001234567890
login_email = "ops-probe@analyticbot.example"
password = {{ file = "{root}/password" }}
env_file = "{root}/staging.env"
restart_command = "true"
pid_command = "echo 4242"
lock_dir = "{root}"
log_file = "{root}/staging.log"
service_log_command = "journalctl -u analyticbot-api -n 50 --no-pager"

[environments.production]
kind = "production"
hosts = ["local"]
api_url = "http://127.0.0.1:9"
channel_id = -1001234567890
login_email = "ops-probe@analyticbot.example"
password = {{ file = "{root}/password" }}
env_file = "{root}/production.env"
restart_command = "true"
force_restart_command = "true"
pid_command = "echo 4343"
lock_dir = "{root}"
log_file = "{root}/production.log"

[[contacts]]
role = "Lead Developer"
name = "Dana Whitfield"
contact = "+1 555 0100"
availability = "24/7"

[[contacts]]
role = "DevOps"
name = "Ops rotation"
contact = "#ops-oncall"
availability = "Business hours"

[[contacts]]
role = "DBA"
name = "DBA on-call"
contact = "+1 555 0199"
availability = "On-call"
"""


def make_config(
    journal: bool = True, interrupted: bool = False, root: Path = ROOT, rolled_back: bool = False
) -> Config:
    """Write the fixed files afresh and load the config. Its commands are `true` and `echo`,
    its API a closed port, its env files, journal and locks all under ``root``: a rollback
    run on it (by a monkey test, say) changes nothing outside ``root``."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "password").write_text("not-a-real-password\n")
    (root / "staging.env").write_text(ENV_TEXT.format(env="staging", flag="false"))
    (root / "production.env").write_text(ENV_TEXT.format(env="production", flag="true"))
    for name in ("staging", "production"):
        (root / f"{name}.log").write_text("")
    (root / "console.toml").write_text(CONFIG.format(root=root))
    config = load_config(root / "console.toml")
    if journal:
        write_journal(config, interrupted=interrupted, rolled_back=rolled_back)
    return config


def edit_env_facts(root: Path, env: str = "staging") -> dict[str, object]:
    """What the quick rollback's env file edit journaled: the file went from all flags on to
    the fixed (all off) text, with the splices that give each flag line back."""
    from console.envfile import parse_env
    from console.plans.env_edit import digest
    from tests.phase4 import FLAG_NAMES

    path = str(root / f"{env}.env")
    before = parse_env(ENV_TEXT.format(env=env, flag="true").encode(), path)
    after_text, undo = before.edit(dict.fromkeys(FLAG_NAMES, False), RULES)
    return {
        "path": path,
        "before": before.flags(RULES).as_dict(),
        "after": parse_env(after_text.encode(), path).flags(RULES).as_dict(),
        "changed": True,
        "digest_before": digest(before.encoded()),
        "digest_after": digest(before.encoded(after_text)),
        "undo": [u.to_json() for u in undo],
        "conflicts": [],
        "backup": None,
        "applied": "now",
    }


def _host(name: str, **kw: object) -> HostSnapshot:
    return HostSnapshot(host=name, where="local", taken_at=T0, elapsed_s=0.31, **kw)  # type: ignore[arg-type]


def snapshots() -> dict[str, EnvironmentSnapshot]:
    staging = _host(
        "local",
        flags=FlagReport(
            env_file=ALL_OFF,
            process=ALL_ON,
            log=ALL_ON,
            pid=4242,
            process_raw=(
                ("ENABLE_ADVANCED_RECOMMENDATIONS", "true"),
                ("ENABLE_TIME_WEIGHTING", "true"),
                ("ENABLE_CONTENT_TYPE_ANALYSIS", None),
            ),
            env_file_lines=(
                (6, "ENABLE_ADVANCED_RECOMMENDATIONS=false"),
                (7, "ENABLE_TIME_WEIGHTING=false"),
                (8, "ENABLE_CONTENT_TYPE_ANALYSIS=false"),
            ),
            log_line="[INFO] analyticbot.api: 🎛️ Feature flags - Advanced: True, Time-weighting: True, "
            "Content-type: True",
        ),
        health=health(ready=True, database="healthy"),
        probe=best_times(0.42),
        logs=LogReport(
            window=100,
            error_lines=0,
            requests=12,
            tail=(
                "[INFO] analyticbot.api: ⏰ Getting posting time metrics for channel -1001234567890 (90 days)",
                "[INFO] analyticbot.api: 🎛️ Feature flags - Advanced: True, Time-weighting: True, Content-type: True",
                "[INFO] analyticbot.api: Using ADVANCED query with new features",
            ),
        ),
        memory=MemoryReport(pid=4242, rss_bytes=212 * 1024 * 1024),
    )
    production = _host(
        "local",
        flags=FlagReport(
            env_file=ALL_ON,
            process=ALL_ON,
            log=ALL_ON,
            pid=4343,
            log_line='{"level": "INFO", "name": "analyticbot.api", "message": "🎛️ Feature flags - '
            'Advanced: True, Time-weighting: True, Content-type: True"}',
        ),
        health=health(ready=False, database="unhealthy: connection refused"),
        probe=best_times(6.21),
        logs=LogReport(
            window=100,
            error_lines=7,
            requests=20,
            error_samples=(
                '{"level": "ERROR", "name": "analyticbot.api", "message": "canceling statement '
                'due to statement timeout"}',
            ),
            tail=(
                '{"level": "ERROR", "name": "analyticbot.api", "message": "canceling statement due to '
                'statement timeout"}',
            ),
        ),
        memory=MemoryReport(pid=4343, rss_bytes=612 * 1024 * 1024),
    )
    db = DatabaseReport(
        columns=(("has_video", True), ("has_media", True)),
        indexes=(("idx_posts_content_type", True), ("idx_posts_date_content", True)),
        dependents=("index idx_posts_content_type", "index idx_posts_date_content", "index idx_posts_video_engagement"),
        rows=629,
    )
    return {
        "staging": EnvironmentSnapshot("staging", "staging", T0, 0.31, (staging,)),
        "production": EnvironmentSnapshot("production", "production", T0, 0.35, (production,), database=db),
    }


LATENCIES = {
    "staging": [0.38, 0.41, 0.45, 0.40, 0.42, 0.39, 0.44, 0.42],
    "production": [0.52, 0.9, 1.6, 2.4, 3.8, 5.2, 6.0, 6.21],
}


def feed(app: object) -> None:
    """Put the fixed snapshots into a console app (created with probe=False)."""
    for name, snap in snapshots().items():
        live = app.live[name]  # type: ignore[attr-defined]
        for i, v in enumerate(LATENCIES[name]):
            live.series.add(T0 - 60 + i * 5, v)
        live.update(snap, app.matrix(name))  # type: ignore[attr-defined]
        live.series.points.pop()  # update() added the last point again
        app.env_updated.publish(name)  # type: ignore[attr-defined]


def write_journal(config: Config, *, interrupted: bool = False, rolled_back: bool = False) -> None:
    """``rolled_back``: the staging rollback journals what its env file edit changed, so
    the dashboard shows staging as rolled back (and offers restore)."""
    journal = Journal(config.journal_path, who=WHO)
    t = T0 - 3600

    def add(kind: str, run: str, env: str, dt: float, **data: object) -> None:
        journal.append(kind, run=run, env=env, data=data, ts=t + dt)

    plan = {
        "title": "Quick rollback: disable all advanced features",
        "target": "< 1 min",
        "target_s": 60,
        "data_loss": "None",
        "reversible": "Yes (re-enable flags)",
        "steps": [],
    }
    run = "r-20261127-183320-a1b2"
    add(
        "run_started",
        run,
        "staging",
        0,
        action="quick",
        reason="p95 latency 6s since 18:20",
        options={},
        authorization={"mode": "self-service", "operator": "alice"},
        drill=False,
        plan=plan,
    )
    for i, (step, title, secs) in enumerate(
        (
            ("edit-env", "Edit the env file", 0.02),
            ("restart", "Restart the API", 0.71),
            ("effect", "Wait for the new flags to take effect", 0.3),
        )
    ):
        add("step_started", run, "staging", 1 + i, step=step, host="local", title=title, phase="run")
        facts = edit_env_facts(Path(config.journal_path).parent) if rolled_back and step == "edit-env" else {}
        add(
            "step_finished",
            run,
            "staging",
            1.5 + i,
            step=step,
            host="local",
            message="ok",
            elapsed_s=secs,
            phase="run",
            facts=facts,
        )
    checks = [
        {"check": c, "title": t_, "passed": True, "detail": d}
        for c, t_, d in (
            ("health", "Health check", "/health 200 healthy; /health/ready ready"),
            ("flags", "Feature flag status", "log: Advanced: False, Time-weighting: False, Content-type: False"),
            ("recommendations", "Test recommendations", "629 posts, legacy mode"),
            ("errors", "Error rate", "0 ERROR lines in the last 9"),
            ("response_time", "Response time", "0.31s (< 2s)"),
        )
    ]
    add("step_started", run, "staging", 4, step="validate", title="Validate (the runbook's five checks)", phase="run")
    add("validation", run, "staging", 4.2, step="validate", checks=checks, passed=True, phase="run")
    add(
        "step_finished",
        run,
        "staging",
        4.3,
        step="validate",
        message="all 5 validations pass",
        elapsed_s=0.3,
        phase="run",
        facts={},
    )
    add("run_finished", run, "staging", 4.4, outcome="succeeded", duration_s=4.4, message="done")
    for item, ok, ev in (
        ("health", True, "Health check: /health 200 healthy"),
        ("flags_in_logs", True, "log: Advanced: False"),
        ("no_errors", True, "0 ERROR lines"),
        ("response_time", True, "0.31s"),
        ("data", True, "629 posts"),
        ("alert_notified", False, "no webhook configured: notify the alert channels by hand"),
        ("incident_report", False, "not yet"),
    ):
        add("checklist", run, "staging", 5, item=item, ticked=ok, by="auto", evidence=ev)
    run2 = "r-20261127-184512-c3d4"
    add(
        "run_started",
        run2,
        "production",
        700,
        action="partial-content-type",
        reason="content-type errors",
        options={},
        authorization={"mode": "approved", "operator": "alice", "approver": "bob"},
        drill=False,
        plan={
            **plan,
            "title": "Partial rollback B: disable content-type analysis, keep time-weighting",
            "target": "< 2 min",
            "target_s": 120,
        },
    )
    add("step_failed", run2, "production", 720, step="validate", message="1 of 5 validations failed", phase="run")
    add("decision", run2, "production", 730, step="validate", decision="undo", reason="", by="alice", phase="run")
    add("run_finished", run2, "production", 760, outcome="undone", duration_s=60.2, message="undone")
    if interrupted:
        run3 = "r-20261127-185900-e5f6"
        add(
            "run_started",
            run3,
            "production",
            1500,
            action="quick",
            reason="latency",
            options={},
            authorization={"mode": "emergency", "operator": "alice", "emergency_level": "P1", "reason": "x y z"},
            drill=False,
            plan=plan,
        )
        add(
            "step_started",
            run3,
            "production",
            1501,
            step="edit-env",
            host="local",
            title="Edit the env file",
            phase="run",
        )


PENDING_PREVIEW = """Quick rollback: disable all advanced features  [production]
  runbook target: < 1 min · data loss: None · reversible: Yes (re-enable flags)

1. Edit the env file
     --- {root}/production.env
     +++ {root}/production.env (after)
     -ENABLE_ADVANCED_RECOMMENDATIONS=true
     +ENABLE_ADVANCED_RECOMMENDATIONS=false

2. Restart the API
     true"""


def add_pending_request(config: Config) -> str:
    """A production request waiting for a second person, made five minutes before the
    fixed clock; it lapses ten minutes after it."""
    journal = Journal(config.journal_path, who=WHO)
    run = "r-20261127-190800-b7e8"
    root = Path(config.journal_path).parent
    journal.append(
        "run_requested",
        run=run,
        env="production",
        data={
            "action": "quick",
            "reason": "p95 over 5s since 18:50",
            "requester": "alice",
            "options": {},
            "restores": None,
            "drill": False,
            "plan": {
                "title": "Quick rollback: disable all advanced features",
                "target": "< 1 min",
                "steps": [
                    "Edit the env file",
                    "Restart the API",
                    "Wait for the new flags to take effect",
                    "Validate (the runbook's five checks)",
                ],
            },
            "preview": {"text": PENDING_PREVIEW.format(root=root), "digest": "0" * 64},
            "expires_at": iso(T0 + 600),
            "expire_after_s": 900,
        },
        ts=T0 - 300,
    )
    return run


def add_long_reason_run(config: Config) -> str:
    """A finished run whose reason is long enough to push columns off an 80-column table."""
    journal = Journal(config.journal_path, who=WHO)
    run = "r-20261127-185000-9f9f"
    reason = (
        "p95 latency over six seconds since 18:40 and users see timeouts on the recommendations page; "
        "error rate 12% in the last 100 lines"
    )
    journal.append(
        "run_started",
        run=run,
        env="production",
        data={"action": "quick", "reason": reason, "authorization": {"mode": "approved"}, "plan": {}},
        ts=T0 - 3600 + 1000,
    )
    journal.append(
        "step_failed",
        run=run,
        env="production",
        data={"step": "restart", "title": "Restart the API", "message": "exit 1", "phase": "run"},
        ts=T0 - 3600 + 1010,
    )
    journal.append(
        "run_finished",
        run=run,
        env="production",
        data={"outcome": "failed", "duration_s": 12.5, "message": "failed"},
        ts=T0 - 3600 + 1012.5,
    )
    return run


# The screens read the journal off the event loop, in workers of these groups.
JOURNAL_READS = ("history", "report", "checklist", "checklist-write", "last-run", "interrupted")


async def settled(pilot: object) -> None:
    """Wait until the screens' journal reads have landed (and what they started in turn)."""
    app = pilot.app  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    for _ in range(20):
        pending = [w for w in app.workers if w.group in JOURNAL_READS and not w.is_finished]
        if not pending:
            return
        await app.workers.wait_for_complete(pending)
        await pilot.pause()  # type: ignore[attr-defined]
