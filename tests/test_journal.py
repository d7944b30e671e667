"""The audit journal: real files, real concurrent processes, real crashes (SIGKILL)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from console.config.model import Config, Database, Environment, Host, Notifications, SecretRef
from console.engine.plan import Facts, Plan, RunContext, Step, StepFailed
from console.engine.runner import Runner
from console.events import Event
from console.journal import (
    ZERO_HASH,
    Journal,
    JournalError,
    RunNotFound,
    Who,
    history_json,
    history_markdown,
    history_text,
    incident_report,
    known_secrets,
    record_hash,
)
from console.plans import PLANS
from console.transport.pool import TransportPool
from tests.phase4 import CHECKLIST

# fork starts in milliseconds; spawn where the parent runs an event loop (and its threads).
FORK = multiprocessing.get_context("fork")
SPAWN = multiprocessing.get_context("spawn")

PASSWORD = "Tr0ub4dor&3-admin"
DSN = "postgresql://analytics:pg-S3cret!@db.internal:10100/analytic_bot"
WEBHOOK = "https://hooks.slack.com/services/T0AAA/B0BBB/xyzzyWebhookToken"

PLAN = {
    "title": "Quick rollback (disable all)",
    "target": "< 1 min",
    "target_s": 60,
    "data_loss": "None",
    "reversible": "Yes (re-enable flags)",
    "steps": [
        {"id": "edit-env", "title": "Edit the env file", "scope": "host", "preview": "ENABLE_ADVANCED=false"},
        {"id": "restart", "title": "Restart the API", "scope": "host", "preview": "systemctl restart api"},
        {"id": "validate", "title": "Validate (the runbook's five checks)", "scope": "environment", "preview": ""},
    ],
}


def at(text: str) -> float:
    """Epoch seconds of a UTC wall-clock time, e.g. "2025-11-21 03:14:05"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def started(action: str = "quick", reason: str = "Response time > 5s", **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "options": {},
        "reason": reason,
        "authorization": {"mode": "self-service", "approver": None, "emergency_level": None},
        "plan": PLAN,
        "recommendation": None,
        "drill": False,
        **extra,
    }


def staging_env(**kw: Any) -> Environment:
    values: dict[str, Any] = {
        "name": "staging",
        "kind": "staging",
        "hosts": (Host("local"),),
        "api_url": "http://127.0.0.1:1",
        "channel_id": -100,
        "env_file": "/srv/.env",
        "restart_command": "true",
        "pid_command": "true",
        "login_email": "admin@example.com",
        "password": SecretRef(env="UNUSED"),
    }
    return Environment(**{**values, **kw})


def dead_pid() -> int:
    """A pid that existed on this host and is gone (reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


# --- child processes (module level: spawn imports them) --------------------------------------
def _append_many(path: str, worker: int, count: int) -> None:
    journal = Journal(path)
    for i in range(count):
        journal.append("note", run=f"worker-{worker}", data={"worker": worker, "i": i, "message": "x" * (i % 50)})


def _run_until_killed(path: str, ready: Any) -> None:
    """A rollback that gets as far as restarting web1, then hangs there until killed."""
    journal = Journal(path)
    emit = lambda kind, **kw: journal.record_event(Event(kind, "run-crash-1", **kw), env="production")  # noqa: E731
    journal.append("run_started", run="run-crash-1", env="production", data=started())
    for host in ("web1", "web2"):
        emit("step_started", step="edit-env", host=host, message="Edit the env file", data={"phase": "run"})
        facts = {"path": "/srv/api/.env.production", "backup": f"/srv/api/.env.{host}.bak", "changed": True}
        emit("step_finished", step="edit-env", host=host, message="flags off", data={"phase": "run", "facts": facts})
    emit("step_started", step="restart", host="web1", message="Restart the API", data={"phase": "run"})
    ready.set()
    time.sleep(60)


def _append_slowly(path: str, count: int) -> None:
    journal = Journal(path)
    for i in range(count):
        time.sleep(0.1)
        journal.append("note", run="watched", data={"i": i})


# --- the file ---------------------------------------------------------------------------------
def test_first_append_creates_group_shared_dir_and_file_and_says_who(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("USER", "mallory")  # easy to fake: must not be believed
    monkeypatch.setenv("SSH_CLIENT", "203.0.113.7 51234 22")
    path = tmp_path / "state" / "rollback-console" / "journal.jsonl"
    record = Journal(path).append("note", data={"message": "hello"})

    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o2770
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    on_disk = json.loads(path.read_text())
    assert on_disk == record
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record["ts"])
    assert record["who"] == {
        "user": pwd.getpwuid(os.getuid()).pw_name,
        "ssh_client": "203.0.113.7",
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    assert (record["seq"], record["prev"]) == (1, ZERO_HASH)
    assert record["hash"] == record_hash(record)


def test_ssh_connection_is_used_when_ssh_client_is_absent(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.4 40000 10.0.0.1 22")
    assert Who.current().ssh_client == "198.51.100.4"
    monkeypatch.delenv("SSH_CONNECTION")
    assert Who.current().ssh_client is None


def test_unwritable_journal_says_which_file_and_why(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    path = tmp_path / "not-a-dir" / "journal.jsonl"
    with pytest.raises(JournalError) as err:
        Journal(path).append("note")
    assert str(path) in str(err.value)
    assert "Not a directory" in str(err.value)


def test_four_processes_appending_at_once_lose_and_interleave_nothing(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    procs = [FORK.Process(target=_append_many, args=(str(path), w, 200)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0

    journal = Journal(path)
    assert journal.verify() == []
    records = journal.records()
    assert len(lines_of(path)) == 800  # every line a whole record
    assert [r["seq"] for r in records] == list(range(1, 801))
    for w in range(4):
        mine = [r["data"]["i"] for r in records if r["run"] == f"worker-{w}"]
        assert mine == list(range(200))
    assert len({r["who"]["pid"] for r in records}) == 4


# --- the chain --------------------------------------------------------------------------------
def five_records(tmp_path: Path) -> tuple[Journal, Path]:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    for i in range(5):
        journal.append("note", run="r", data={"i": i, "message": f"record {i}"})
    assert journal.verify() == []
    return journal, path


def test_verify_finds_an_edited_byte(tmp_path: Path) -> None:
    journal, path = five_records(tmp_path)
    lines = lines_of(path)
    lines[2] = lines[2].replace(b'"record 2"', b'"record 7"')
    path.write_bytes(b"".join(lines))
    problems = journal.verify()
    assert [(p.line, p.kind) for p in problems] == [(3, "edited")]
    assert "seq 3" in str(problems[0])


def test_verify_finds_an_edit_whose_hash_was_recomputed(tmp_path: Path) -> None:
    journal, path = five_records(tmp_path)
    lines = lines_of(path)
    forged = json.loads(lines[1])
    forged["data"]["message"] = "nothing happened"
    forged["hash"] = record_hash(forged)
    lines[1] = json.dumps(forged).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    problems = journal.verify()
    assert [(p.line, p.kind) for p in problems] == [(3, "edited")]
    assert "does not chain to line 2" in problems[0].detail


def test_verify_finds_a_removed_line(tmp_path: Path) -> None:
    journal, path = five_records(tmp_path)
    lines = lines_of(path)
    del lines[2]
    path.write_bytes(b"".join(lines))
    problems = journal.verify()
    assert [(p.line, p.kind) for p in problems] == [(3, "removed")]
    assert "1 record(s) missing after line 2 (seq 3)" in problems[0].detail


def test_verify_finds_reordered_lines(tmp_path: Path) -> None:
    journal, path = five_records(tmp_path)
    lines = lines_of(path)
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"".join(lines))
    problems = journal.verify()
    assert [(p.line, p.kind) for p in problems] == [(3, "reordered")]
    assert "seq 2 comes after seq 3" in problems[0].detail


def test_verify_finds_a_line_that_is_no_longer_json(tmp_path: Path) -> None:
    journal, path = five_records(tmp_path)
    lines = lines_of(path)
    lines[3] = b"garbage\n"
    path.write_bytes(b"".join(lines))
    problems = journal.verify()
    assert [(p.line, p.kind) for p in problems] == [(4, "bad_json")]  # not also "removed"


def test_torn_last_line_is_reported_and_the_next_append_carries_on(tmp_path: Path) -> None:
    journal, path = five_records(tmp_path)
    last_hash = journal.records()[-1]["hash"]
    with open(path, "ab") as f:  # a crash in the middle of writing record 6
        f.write(b'{"seq":6,"ts":"2025-11-21T03:14:')

    problems = journal.verify()
    assert [(p.line, p.kind) for p in problems] == [(6, "torn")]
    assert len(journal.records()) == 5

    record = journal.append("note", run="r", data={"message": "after the crash"})
    assert (record["seq"], record["prev"]) == (6, last_hash)
    assert lines_of(path)[6].startswith(b'{"seq":6,')  # on a fresh line of its own
    problems = journal.verify()
    assert [(p.line, p.kind) for p in problems] == [(6, "torn")]
    assert "the chain goes on" in problems[0].detail
    assert [r["data"]["message"] for r in journal.records()][-1] == "after the crash"


# --- redaction --------------------------------------------------------------------------------
def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path, secrets=[PASSWORD, DSN, WEBHOOK])
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"
    sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    other_password = "hunter2-unknown"
    output = "\n".join(
        [
            f"curl -H 'Authorization: Bearer {token}' http://localhost:10300/analytics",
            f"got token Bearer {token}",
            f'{{"email": "admin@example.com", "password": "{PASSWORD}"}}',
            f"psql {DSN} -c 'select 1'",
            f"psql postgresql://readonly:{other_password}@replica:5432/analytic_bot",
            f"AUTH_PASSWORD_SHA256={sha}",
            "ENABLE_ADVANCED_RECOMMENDATIONS=false",
            f"posting to {WEBHOOK}",
        ]
    )
    journal.record_event(
        Event(
            "step_failed",
            "run-1",
            step="restart",
            host="web1",
            message=f"login with {PASSWORD} refused",
            data={"phase": "run", "output": output, "facts": {"dsn": DSN, "db_password": other_password}},
        ),
        env="production",
    )
    journal.append("notified", run="run-1", env="production", data={"target": WEBHOOK, "event": "started"})

    raw = path.read_bytes()
    for secret in (PASSWORD, DSN, "pg-S3cret!", WEBHOOK, token, sha, other_password):
        assert secret.encode() not in raw, f"{secret!r} reached the journal"
    text = journal.records()[0]["data"]["output"]
    # What is not secret stays readable.
    assert "Authorization: [REDACTED]" in text
    assert "Bearer [REDACTED]" in text
    assert "postgresql://readonly:***@replica:5432" in text
    assert "AUTH_PASSWORD_SHA256=[REDACTED]" in text
    assert "ENABLE_ADVANCED_RECOMMENDATIONS=false" in text
    assert journal.verify() == []


def test_known_secrets_are_resolved_from_the_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STAGING_API_PASSWORD", PASSWORD)
    (tmp_path / "webhook").write_text(WEBHOOK + "\n")
    env = staging_env(
        password=SecretRef(env="STAGING_API_PASSWORD"),
        database=Database(dsn=SecretRef(env="NOT_SET_ANYWHERE"), rollback_script="/srv/004_rollback.sql"),
    )
    config = Config(
        path=str(tmp_path / "console.toml"),
        environments={"staging": env},
        notifications=Notifications(webhook=SecretRef(file=str(tmp_path / "webhook"))),
    )
    assert known_secrets(config) == [PASSWORD, WEBHOOK]  # the unset DSN cannot leak: skipped


def test_a_huge_output_is_bounded_and_keeps_its_end(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    output = "".join(f"line {i}\n" for i in range(20000)) + "ERROR: restart failed"
    record = journal.append("step_failed", run="r", data={"output": output})
    kept = record["data"]["output"]
    assert len(kept) < 9 * 1024
    assert re.search(r"\[\d+ of \d+ characters cut by the journal\]", kept)
    assert kept.startswith("line 0\n") and kept.endswith("ERROR: restart failed")


def test_runner_events_are_recorded_except_output(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    assert journal.record_event(Event("output", "r1", step="restart", message="noise"), env="staging") is None
    when = at("2025-11-21 03:14:05.250000")
    record = journal.record_event(
        Event(
            "step_finished", "r1", step="restart", host="web1", message="pid 41 → 57", data={"phase": "run"}, ts=when
        ),
        env="staging",
    )
    assert record is not None
    assert (record["type"], record["run"], record["env"], record["ts"]) == (
        "step_finished",
        "r1",
        "staging",
        "2025-11-21T03:14:05.250000Z",
    )
    assert record["data"] == {"phase": "run", "step": "restart", "host": "web1", "message": "pid 41 → 57"}
    assert [r["type"] for r in journal.records()] == ["step_finished"]


# --- runs, crashes, resuming ------------------------------------------------------------------
def test_a_run_killed_mid_way_is_found_interrupted_with_its_progress(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    ready = FORK.Event()
    child = FORK.Process(target=_run_until_killed, args=(str(path), ready))
    child.start()
    assert ready.wait(20), "the child never got to the restart"
    journal = Journal(path)
    assert [r.outcome for r in journal.runs()] == ["running"]  # alive: not a crash
    assert journal.interrupted() == []

    os.kill(child.pid, signal.SIGKILL)
    child.join(10)

    [run] = journal.interrupted()
    assert (run.run_id, run.env, run.action, run.outcome) == ("run-crash-1", "production", "quick", "interrupted")
    assert run.outcome_text() == "interrupted during Restart the API"
    assert run.progress() == {"edit-env": {"web1", "web2"}}
    assert run.facts()["edit-env"]["web2"]["backup"] == "/srv/api/.env.web2.bak"
    assert journal.run("run-crash").run_id == "run-crash-1"  # a prefix is enough


def test_finished_and_still_running_runs_are_not_interrupted(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("run_started", run="done", env="staging", data=started())
    journal.append("run_finished", run="done", env="staging", data={"outcome": "succeeded", "duration_s": 3.0})
    journal.append("run_started", run="mine", env="staging", data=started())  # this very process
    assert {r.run_id: r.outcome for r in journal.runs()} == {"done": "succeeded", "mine": "running"}
    assert journal.interrupted() == []


def test_a_run_on_another_bastion_is_interrupted_only_after_long_silence(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    elsewhere = Journal(path, who=Who("bob", "192.0.2.9", "bastion-2.example", 4242))
    elsewhere.append("run_started", run="old", env="production", data=started(), ts=time.time() - 3600)
    elsewhere.append("run_started", run="new", env="production", data=started(), ts=time.time() - 5)
    journal = Journal(path)
    assert [r.run_id for r in journal.interrupted()] == ["old"]
    assert {r.run_id: r.outcome for r in journal.runs()}["new"] == "running"
    assert journal.runs()[0].operator == "bob"


def test_resume_helpers_count_only_the_run_phase(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("run_requested", run="r1", env="production", data={"action": "quick", "requester": "alice"})
    assert journal.run("r1").outcome == "pending"
    journal.append("run_approved", run="r1", env="production", data={"approver": "carol"})
    journal.append("run_started", run="r1", env="production", data=started())
    for phase, facts in (("run", {"before": {"A": True}}), ("undo", {"before": {"A": False}})):
        data = {"phase": phase, "step": "edit-env", "host": "web1", "facts": facts}
        journal.append("step_finished", run="r1", env="production", data=data)
    run = journal.run("r1")
    assert run.progress() == {"edit-env": {"web1"}}
    assert run.progress("undo") == {"edit-env": {"web1"}}
    assert run.facts() == {"edit-env": {"web1": {"before": {"A": True}}}}
    assert run.approved_by() == "carol"


def test_run_lookup_says_when_an_id_is_unknown_or_ambiguous(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    for run_id in ("20251121-031405-ab12", "20251121-031500-cd34"):
        journal.append("run_started", run=run_id, env="staging", data=started())
    with pytest.raises(RunNotFound, match=r"ambiguous .* matches 2 runs"):
        journal.run("20251121")
    with pytest.raises(RunNotFound, match=r"no run 'zz'"):
        journal.run("zz")
    assert journal.run("20251121-0315").run_id == "20251121-031500-cd34"


# --- history ----------------------------------------------------------------------------------
def write_history(path: Path) -> Journal:
    """Four real runs and one drill, with known times."""
    journal = Journal(path)
    crashed = Journal(path, who=Who("dave", None, socket.gethostname(), dead_pid()))

    def run(j: Journal, run_id: str, env: str, start: str, data: dict[str, Any], end: dict | None, steps=()) -> None:
        t0 = at(start)
        j.append("run_started", run=run_id, env=env, data=data, ts=t0)
        for offset, kind, step, title in steps:
            j.append(kind, run=run_id, env=env, data={"phase": "run", "step": step, "title": title}, ts=t0 + offset)
        if end:
            j.append("run_finished", run=run_id, env=env, data=end, ts=t0 + end["duration_s"])

    run(journal, "a", "production", "2025-11-21 03:14:05", started(), {"outcome": "succeeded", "duration_s": 48.2})
    run(
        journal,
        "b",
        "staging",
        "2025-11-22 10:00:00",
        started("partial-time-weighting", "Memory usage > 2GB | RSS 2.3 GB\nafter deploy"),
        {"outcome": "failed", "duration_s": 372.4},
        [(5, "step_started", "restart", "Restart the API"), (300, "step_failed", "restart", None)],
    )
    run(journal, "c", "production", "2025-11-23 22:05:59", started(reason=""), {"outcome": "undone", "duration_s": 90})
    run(journal, "drill-1", "drill-env", "2025-11-24 09:00:00", started(reason="rehearsal", drill=True), None)
    run(
        crashed,
        "d",
        "production",
        "2025-11-24 12:30:00",
        started("code", "Code bugs"),
        None,
        [(2, "step_started", "edit-env", "Edit the env file")],
    )
    return journal


def test_history_markdown_is_the_runbook_table(tmp_path: Path) -> None:
    journal = write_history(tmp_path / "journal.jsonl")
    assert history_markdown(journal.runs()) == (
        "| Date | Environment | Reason | Duration | Outcome |\n"
        "|------|-------------|--------|----------|---------|\n"
        "| 2025-11-21 03:14 UTC | production | Response time > 5s | 48s | succeeded |\n"
        "| 2025-11-22 10:00 UTC | staging | Memory usage > 2GB \\| RSS 2.3 GB<br>after deploy | 6m 12s "
        "| failed at Restart the API |\n"
        "| 2025-11-23 22:05 UTC | production | - | 1m 30s | undone |\n"
        "| 2025-11-24 12:30 UTC | production | Code bugs | - | interrupted during Edit the env file |\n"
    )
    assert history_markdown(journal.runs(env="staging")).count("\n") == 3


def test_drills_never_mix_with_real_history(tmp_path: Path) -> None:
    journal = write_history(tmp_path / "journal.jsonl")
    assert "rehearsal" not in history_markdown(journal.runs())
    assert "drill-1" not in history_text(journal.runs())
    assert [r.run_id for r in journal.runs(drills=True)] == ["drill-1"]
    assert journal.run("drill-1").drill


def test_history_text_and_json(tmp_path: Path) -> None:
    journal = write_history(tmp_path / "journal.jsonl")
    text = history_text(journal.runs())
    assert text.splitlines()[0].split() == ["Date", "Environment", "Action", "Reason", "Duration", "Outcome", "Run"]
    assert "RSS 2.3 GB / after deploy" in text  # one line per run
    rows = json.loads(json.dumps(history_json(journal.runs())))
    assert [(r["run_id"], r["duration"], r["outcome"]) for r in rows] == [
        ("a", "48s", "succeeded"),
        ("b", "6m 12s", "failed"),
        ("c", "1m 30s", "undone"),
        ("d", "-", "interrupted"),
    ]
    assert rows[1]["outcome_text"] == "failed at Restart the API"
    assert history_text([]) == "No rollback recorded in the journal yet.\n"


# --- incident report --------------------------------------------------------------------------
def test_incident_report_tells_the_whole_run(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path, secrets=[PASSWORD])
    t0 = at("2025-11-21 03:14:05")
    run_id = "20251121-031405-ab12"

    def ev(offset: float, kind: str, **kw: Any) -> None:
        kw.setdefault("data", {})
        kw["data"].setdefault("phase", "run")
        journal.record_event(Event(kind, run_id, ts=t0 + offset, **kw), env="production")

    recommendation = {
        "action": "quick",
        "title": "Quick rollback (disable all)",
        "severity": "HIGH",
        "timeline": "< 1 min",
        "symptom": "Response time > 5s",
        "advice": None,
        "findings": [
            {
                "symptom": "Response time > 5s",
                "lit": True,
                "evidence": "best-times took 6.20s",
                "severity": "HIGH",
                "action": "quick",
                "declared": False,
                "known": True,
            },
            {
                "symptom": "Memory usage > 2GB",
                "lit": False,
                "evidence": "RSS 412 MB",
                "severity": "MEDIUM",
                "action": "partial-time-weighting",
                "declared": False,
                "known": True,
            },
        ],
    }
    auth = {"mode": "emergency", "approver": None, "emergency_level": "P1"}
    data = started(authorization=auth, recommendation=recommendation, reason="p95 at 6 s, customers timing out")
    journal.append("run_started", run=run_id, env="production", data=data, ts=t0)
    journal.append(
        "notified", run=run_id, env="production", data={"target": "webhook", "event": "rollback started"}, ts=t0 + 1
    )
    for host in ("web1", "web2"):
        ev(
            2,
            "step_started",
            step="edit-env",
            host=host,
            message="Edit the env file",
            data={"title": "Edit the env file"},
        )
        ev(
            3,
            "step_finished",
            step="edit-env",
            host=host,
            message="ENABLE_ADVANCED_RECOMMENDATIONS: true → false",
            data={"elapsed_s": 0.4, "facts": {"changed": True}, "output": ""},
        )
    ev(4, "step_started", step="restart", host="web2", data={"title": "Restart the API"})
    ev(
        7.2,
        "step_failed",
        step="restart",
        host="web2",
        message="process still has the old environment",
        data={
            "elapsed_s": 3.2,
            "output": f"$ systemctl restart analyticbot-api\nlogin {PASSWORD}\n```oops",
            "troubleshooting": "Issue 1: Environment changes not taking effect",
            "remedy": {"title": "daemon-reload, then restart", "commands": ["systemctl daemon-reload"]},
        },
    )
    ev(9, "decision", step="restart", message="fix", data={"decision": "fix", "reason": "", "by": "alice"})
    ev(10, "step_started", step="restart", host="web2", data={"title": "Restart the API"})
    ev(12, "step_finished", step="restart", host="web2", message="pid 41 → 57", data={"elapsed_s": 1.9})
    checks = [
        {"check": name, "title": title, "passed": True, "detail": detail, "hosts": []}
        for name, title, detail in (
            ("health", "Health check", "/health 200 healthy; /health/ready ready"),
            ("flags", "Feature flag status", "log: all off"),
            ("recommendations", "Test recommendations", "629 posts, legacy lists empty"),
            ("errors", "Error rate", "0 ERROR lines since the restart"),
            ("response_time", "Response time", "best-times 0.41s"),
        )
    ]
    ev(20, "validation", step="validate", data={"checks": checks, "passed": True})
    journal.append(
        "run_finished",
        run=run_id,
        env="production",
        data={"outcome": "succeeded", "duration_s": 48.2, "message": "done"},
        ts=t0 + 48.2,
    )
    journal.append(
        "checklist",
        run=run_id,
        env="production",
        ts=t0 + 49,
        data={"item": "health", "ticked": True, "by": "auto", "evidence": "/health 200"},
    )
    journal.append(
        "notify_failed",
        run=run_id,
        env="production",
        ts=t0 + 50,
        data={"ok": False, "status": 500, "error": "HTTP 500 from hooks", "event": "rollback finished"},
    )

    stale = {"environment": "production", "user": "bob", "ssh_client": "10.0.0.9", "bastion": "bastion-2", "pid": 4242}
    journal.append(
        "lock_broken", run=run_id, env="production", ts=t0 - 10, data={"lock": stale, "reason": "bob's console died"}
    )

    report = incident_report(journal.run(run_id), checklist=CHECKLIST, journal_path=path, problems=journal.verify())

    for heading in (
        "## Summary",
        "## Decision",
        "## Timeline",
        "## Steps",
        "## Validations",
        "## Post-rollback checklist",
        "## Decisions taken",
        "## Notifications",
    ):
        assert f"\n{heading}\n" in report
    assert report.startswith("# Incident report: Quick rollback (disable all) on production\n")
    # A header of its own: "| | |" drew an empty first row on screen.
    assert "## Summary\n\n| Item | Value |\n|---|---|\n| **Run** |" in report
    assert f"| **Operator** | {pwd.getpwuid(os.getuid()).pw_name}" in report
    assert "emergency override P1 (approval skipped, notify afterward): p95 at 6 s" in report
    assert "| **Duration** | 48s (within the runbook target < 1 min) |" in report
    assert "| Response time > 5s | HIGH | quick | best-times took 6.20s |" in report
    assert "RSS 412 MB" not in report  # only lit rows
    assert "    +0:07  03:14:12  step_failed    [web2] Restart the API: FAILED in 3.2s" in report
    assert "| web2 | FAILED | 3.2s | process still has the old environment |" in report
    assert "| web2 (attempt 2) | ok | 1.9s | pid 41 → 57 |" in report
    assert "runbook troubleshooting — Issue 1: Environment changes not taking effect" in report
    assert "fix offered — daemon-reload, then restart" in report
    assert "````\n$ systemctl restart analyticbot-api\n" in report  # fence outlasts the ``` inside
    assert "After the rollback, 2025-11-21 03:14:25 UTC: 5 of 5 pass" in report
    assert "| 5 | Response time | PASS | best-times 0.41s |" in report
    assert "- [x] Health endpoint responding (200 OK) — ticked automatically: /health 200" in report
    assert "- [ ] Root cause analysis scheduled" in report
    assert "- [ ] Post-hoc review of the P1 emergency override by a team lead" in report
    assert "**fix** at Restart the API by alice" in report
    assert "sent to webhook: rollback started" in report
    me = pwd.getpwuid(os.getuid()).pw_name
    assert (
        f"(-0:10) **lock broken**: {me} broke the lock of production held by bob from 10.0.0.9 on bastion-2 "
        "(pid 4242): bob's console died"
    ) in report
    assert "**FAILED** to notify webhook of rollback finished: HTTP 500 from hooks" in report
    assert "The journal's hash chain verifies" in report
    assert PASSWORD not in report


# --- watch mode ---------------------------------------------------------------------------
async def collect(journal: Journal, count: int, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    follower = journal.follow(poll_s=0.02, **kw)
    try:
        async for record in follower:
            out.append(record)
            if len(out) == count:
                return out
    finally:
        await follower.aclose()
    return out


async def test_follow_yields_what_another_process_appends(tmp_path: Path) -> None:
    path = tmp_path / "not-yet" / "journal.jsonl"  # the watcher starts before any run
    watcher = asyncio.create_task(collect(Journal(path), 3))
    await asyncio.sleep(0.1)
    writer = SPAWN.Process(target=_append_slowly, args=(str(path), 3))
    writer.start()
    records = await asyncio.wait_for(watcher, 20)
    writer.join(10)
    assert [r["data"]["i"] for r in records] == [0, 1, 2]
    assert {r["who"]["pid"] for r in records} == {writer.pid}


async def test_follow_from_the_end_skips_what_was_already_there(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("note", data={"message": "old"})
    watcher = asyncio.create_task(collect(journal, 1, from_start=False))
    await asyncio.sleep(0.1)
    journal.append("note", data={"message": "new"})
    [record] = await asyncio.wait_for(watcher, 5)
    assert record["data"]["message"] == "new"


# --- wired to the real runner -------------------------------------------------------------------
class EnvStep(Step):
    scope = "environment"

    def __init__(self, step_id: str, title: str, fail: str | None = None) -> None:
        self.id, self.title, self.fail = step_id, title, fail

    async def preview(self, ctx: RunContext, host: Host | None) -> str:
        return self.title

    async def do(self, ctx: RunContext, host: Host | None) -> Facts:
        ctx.output(self.id, None)("stdout", f"{self.id}: logging in with {PASSWORD}")
        if self.fail:
            raise StepFailed(self.fail, output="uvicorn exited 1", issue="api-wont-start")
        return {"changed": True, "backup": "/srv/.env.bak"}


async def test_what_the_real_runner_emits_is_journaled_and_summarized(tmp_path: Path) -> None:
    env = staging_env()
    config = Config(path=str(tmp_path / "console.toml"), environments={"staging": env})
    journal = Journal(tmp_path / "journal.jsonl", secrets=[PASSWORD])
    plan = Plan(
        "quick",
        "staging",
        "Quick rollback (disable all)",
        (EnvStep("edit", "Edit the env file"), EnvStep("restart", "Restart the API", fail="API did not start")),
        "< 1 min",
        60,
        "None",
        "Yes",
    )

    def emit(event: Event) -> None:
        journal.record_event(event, "staging")

    # No prober: environment-scoped steps of this plan never probe.
    ctx = RunContext("run-7", config, env, TransportPool(), None, emit)  # type: ignore[arg-type]
    ctx.plans = PLANS  # as the engine hands it: the troubleshooting headings are the profile's
    journal.append("run_started", run="run-7", env="staging", data=started())
    result = await Runner(ctx, plan).run()
    journal.append(
        "run_finished",
        run="run-7",
        env="staging",
        data={"outcome": result.outcome, "duration_s": result.duration_s, "message": result.message},
    )

    run = journal.run("run-7")
    assert (run.outcome, run.outcome_text()) == ("failed", "failed at Restart the API")
    assert run.progress() == {"edit": {"*"}}
    assert run.facts()["edit"]["*"]["backup"] == "/srv/.env.bak"
    types = [r["type"] for r in run.records]
    assert types == [
        "run_started",
        "step_started",
        "step_finished",
        "step_started",
        "step_failed",
        "decision",
        "run_finished",
    ]
    failed = run.records[4]["data"]
    assert (
        failed["troubleshooting"] == "Issue 2: API won't start after rollback" and failed["issue"] == "api-wont-start"
    )
    assert "uvicorn exited 1" in failed["output"] and "restart: logging in with [REDACTED]" in failed["output"]
    assert PASSWORD.encode() not in journal.path.read_bytes()


@pytest.mark.parametrize("answer", ["withdrawn", "pending", "expired"])
def test_the_report_of_a_request_that_never_started_says_so(tmp_path: Path, answer: str) -> None:
    """A request for approval that never ran: requested (not started) at its time, its
    authorization what became of the request, no claim about a start that never was."""
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    run_id = "r-20261201-044806-502d"
    expires = time.time() + (600 if answer != "expired" else -1)
    journal.append(
        "run_requested",
        run=run_id,
        env="production",
        data={
            "action": "quick",
            "reason": "p95 over 5s",
            "requester": "alice",
            "plan": {"title": "Quick rollback: disable all advanced features", "steps": ["Edit the env file"]},
            "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
        },
    )
    if answer == "withdrawn":
        journal.append("run_withdrawn", run=run_id, env="production", data={"by": "alice"})
    report = incident_report(journal.run(run_id), journal_path=path, problems=journal.verify())
    rows = dict(re.findall(r"^\| \*\*(\w+)\*\* \| (.*) \|$", report, re.M))
    said = {"withdrawn": "withdrawn by alice", "pending": "awaiting approval until", "expired": "expired"}[answer]
    assert rows["Started"].startswith(f"not started: {said}")
    assert rows["Authorization"].startswith(f"approval requested by alice: {said}")
    requested = journal.run(run_id).records[0]["ts"]
    assert rows["Requested"] == datetime.fromisoformat(requested).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert "when the run started" not in report and "the start of the run" not in report
    assert "this request never started" in report and "Time from the request" in report


def test_a_duration_under_ten_seconds_keeps_its_tenth() -> None:
    from console.journal.history import format_duration

    assert [format_duration(s) for s in (0.4, 4.44, 9.96, 0, 5, 48.4, 372)] == [
        "0.4s",
        "4.4s",
        "10s",
        "0s",
        "5s",
        "48s",
        "6m 12s",
    ]
    assert format_duration(float("nan")) == "-" and format_duration(None) == "-"
