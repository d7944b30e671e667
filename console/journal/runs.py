"""Runs as the journal tells them: who, what, when, how it ended — and, for a run a crash
left behind, how far it got and what it changed, so it can be resumed or undone.

A run's records share its id. Its outcome is the last ``run_finished`` — unless the run
was started again after it (a resume appends ``run_started`` again, same id), or it never
finished: then it is "running" while the process that last wrote for it is alive, and
"interrupted" once that process is gone.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from console.journal.records import JournalError, parse_ts
from console.journal.requests import REQUEST_TYPES, RequestState, request_state

# A request that never started reads as its request's state (see requests.py).
REQUEST_OUTCOMES = ("pending", "approved", "rejected", "withdrawn", "expired")
OUTCOMES = (*REQUEST_OUTCOMES, "running", "interrupted", "succeeded", "failed", "undone", "aborted")
FINISHED = ("succeeded", "failed", "undone", "aborted")
# Records the process doing the run writes (others — approvals, checklist ticks from a
# second console, notifications — say nothing about whether that process is alive).
ENGINE_TYPES = (
    "run_started",
    "step_started",
    "step_intent",
    "step_finished",
    "step_failed",
    "decision",
    "validation",
    "note",
)
# Records a run id may carry without being a run: a run that took (or tried to take) the
# lock and was refused or killed before it started changed nothing, and is no run.
NOT_A_RUN = ("lock_intent", "lock_taken_over", "lock_broken", "run_refused")
# A run id whose records are all of these never started: nothing of it changed anything.
NEVER_STARTED = (*NOT_A_RUN, *REQUEST_TYPES, "notified", "notify_failed")
# A run on another bastion is presumed dead after this long without a record. Generous:
# a code rollback's rebuild may run many minutes without a step finishing.
STALE_AFTER_S = 30 * 60.0


class RunNotFound(JournalError):
    """No run (or more than one) matches the id given."""


@dataclass
class RunSummary:
    run_id: str
    env: str | None
    action: str | None
    reason: str
    operator: str | None  # who.user of the process that started the run
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    outcome: str  # one of OUTCOMES
    authorization: dict[str, Any]
    drill: bool
    records: list[dict[str, Any]] = field(repr=False)
    message: str = ""  # run_finished's message
    plan: dict[str, Any] = field(default_factory=dict, repr=False)
    recommendation: dict[str, Any] | None = field(default=None, repr=False)
    who: dict[str, Any] = field(default_factory=dict)  # of run_started: user, ssh_client, host, pid
    request: RequestState | None = field(default=None, repr=False)  # when it was requested for approval

    # --- for people -----------------------------------------------------------------------
    @property
    def title(self) -> str:
        return str(self.plan.get("title") or self.action or "run")

    def step_title(self, step_id: str, phase: str = "run") -> str:
        """A step's title as the run showed it (undo steps reuse ids with other titles)."""
        for r in reversed(self.records):
            d = r.get("data") or {}
            if r["type"] == "step_started" and d.get("step") == step_id and _phase(d) == phase and d.get("title"):
                return str(d["title"])
        steps = self.plan.get("steps")
        for s in steps if isinstance(steps, list) else []:
            if isinstance(s, dict) and s.get("id") == step_id and s.get("title"):
                return str(s["title"])
        return step_id

    def failed_at(self) -> tuple[str, str] | None:
        """(step title, phase) of the last failure, if any."""
        for r in reversed(self.records):
            d = r.get("data") or {}
            if r["type"] == "step_failed" and d.get("step"):
                return self.step_title(str(d["step"]), _phase(d)), _phase(d)
        return None

    def in_progress_at(self) -> str | None:
        """Title of a step that started and never ended (where an interruption hit)."""
        open_steps: dict[tuple[str, str, str], str] = {}
        for r in self.records:
            d = r.get("data") or {}
            key = (str(d.get("step")), str(d.get("host") or "*"), _phase(d))
            if r["type"] == "step_started":
                open_steps[key] = self.step_title(str(d.get("step")), _phase(d))
            elif r["type"] in ("step_finished", "step_failed"):
                open_steps.pop(key, None)
        return next(reversed(open_steps.values()), None) if open_steps else None

    def skipped(self) -> list[str]:
        return [
            self.step_title(str(d.get("step")), _phase(d))
            for r in self.records
            if r["type"] == "decision" and (d := r.get("data") or {}).get("decision") == "skip"
        ]

    def outcome_text(self) -> str:
        """The outcome as the history table says it: "failed at Restart the API"."""
        if self.outcome == "succeeded":
            skipped = self.skipped()
            return "succeeded" + (f" (skipped: {', '.join(skipped)})" if skipped else "")
        if self.outcome in ("failed", "aborted"):
            where = self.failed_at()
            if where is None:
                return self.outcome
            return f"{self.outcome} at {where[0]}" + (" while undoing" if where[1] == "undo" else "")
        if self.outcome in ("interrupted", "running"):
            step = self.in_progress_at()
            return f"{self.outcome} during {step}" if step else self.outcome
        if self.outcome in REQUEST_OUTCOMES:
            return self.request.describe() if self.request else "awaiting approval"
        return self.outcome

    def approved_by(self) -> str | None:
        approver = self.authorization.get("approver")
        if approver:
            return str(approver)
        for r in reversed(self.records):
            if r["type"] == "run_approved" and (r.get("data") or {}).get("approver"):
                return str(r["data"]["approver"])
        return None

    # --- for resuming and undoing -----------------------------------------------------------
    def progress(self, phase: str = "run") -> dict[str, set[str]]:
        """step id → hosts ("*" for environment steps) completed: feed to runner.Progress."""
        done: dict[str, set[str]] = {}
        for r in self.records:
            d = r.get("data") or {}
            if r["type"] == "step_finished" and d.get("step") and _phase(d) == phase:
                done.setdefault(str(d["step"]), set()).add(str(d.get("host") or "*"))
        return done

    def intents(self, phase: str = "run") -> dict[str, dict[str, dict[str, Any]]]:
        """step id → host → the latest intent journaled before that step's change."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for r in self.records:
            d = r.get("data") or {}
            intent = d.get("intent")
            if r["type"] == "step_intent" and d.get("step") and _phase(d) == phase and isinstance(intent, dict):
                out.setdefault(str(d["step"]), {})[str(d.get("host") or "*")] = intent
        return out

    def undo_facts(self, phase: str = "run") -> dict[str, dict[str, dict[str, Any]]]:
        """What undo needs without looking at the hosts: each step's facts, and for a step
        whose intent was journaled but which never finished, the intent (its change may or
        may not have happened; the steps that put things back look before they act)."""
        out = {step: dict(by_host) for step, by_host in self.facts(phase).items()}
        done = self.progress(phase)
        for step, by_host in self.intents(phase).items():
            for host, intent in by_host.items():
                if host not in done.get(step, set()):
                    out.setdefault(step, {})[host] = {**intent, "changed": True, "unfinished": True}
        return out

    def facts(self, phase: str = "run") -> dict[str, dict[str, dict[str, Any]]]:
        """step id → host → facts (what each step did), the latest per host: what undo needs."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for r in self.records:
            d = r.get("data") or {}
            if r["type"] in ("step_finished", "step_failed") and d.get("step") and _phase(d) == phase:
                facts = d.get("facts")
                if isinstance(facts, dict):
                    out.setdefault(str(d["step"]), {})[str(d.get("host") or "*")] = facts
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, without the records."""
        return {
            "run_id": self.run_id,
            "env": self.env,
            "action": self.action,
            "title": self.title,
            "reason": self.reason,
            "operator": self.operator,
            "ssh_client": self.who.get("ssh_client"),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "outcome": self.outcome,
            "outcome_text": self.outcome_text(),
            "authorization": self.authorization,
            "approved_by": self.approved_by(),
            "drill": self.drill,
            "message": self.message,
            **({"request": _request_dict(self.request)} if self.request else {}),
        }


def _request_dict(request: RequestState) -> dict[str, Any]:
    def iso(when: datetime | None) -> str | None:
        return when.isoformat() if when else None

    return {
        "status": request.status,
        "requester": request.requester,
        "requested_at": iso(request.requested_at),
        "expires_at": iso(request.expires_at),
        "approver": request.approver,
        "by": request.by,
        "reason": request.reason,
        "closed_at": iso(request.at),
    }


def summarize(
    records: list[dict[str, Any]], *, stale_after_s: float = STALE_AFTER_S, now: float | None = None
) -> list[RunSummary]:
    """One summary per run id, ordered by start."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if isinstance(r.get("run"), str) and r["run"]:
            by_run.setdefault(r["run"], []).append(r)
    now = time.time() if now is None else now
    this_host = socket.gethostname()
    runs = [
        _summary(run_id, recs, now, this_host, stale_after_s)
        for run_id, recs in by_run.items()
        if not all(r["type"] in NOT_A_RUN for r in recs)
    ]
    return sorted(runs, key=lambda r: (r.started_at is None, r.started_at or datetime.min, r.run_id))


def _summary(run_id: str, recs: list[dict[str, Any]], now: float, this_host: str, stale_after_s: float) -> RunSummary:
    starts = [i for i, r in enumerate(recs) if r["type"] == "run_started"]
    finishes = [i for i, r in enumerate(recs) if r["type"] == "run_finished"]
    requested = next((r for r in recs if r["type"] == "run_requested"), None)
    request = request_state(run_id, recs, now) if requested else None
    first = recs[starts[0]] if starts else requested or recs[0]
    # What the request said, unless the start says otherwise.
    data = {**(_data(requested) if requested else {}), **_data(first)}

    finished_at = None
    duration: float | None = None
    message = ""
    started_at = parse_ts(first.get("ts"))
    if finishes and (not starts or finishes[-1] > starts[-1]):
        fin = _data(recs[finishes[-1]])
        outcome = fin.get("outcome") if fin.get("outcome") in FINISHED else "failed"
        finished_at = parse_ts(recs[finishes[-1]].get("ts"))
        message = str(fin.get("message") or "")
        if len(starts) <= 1 and isinstance(fin.get("duration_s"), int | float):
            duration = float(fin["duration_s"])  # the runner's own clock
        elif started_at and finished_at:
            duration = (finished_at - started_at).total_seconds()  # resumed: wall clock
    elif starts or any(r["type"] in ENGINE_TYPES for r in recs):
        outcome = "running" if _alive(recs, now, this_host, stale_after_s) else "interrupted"
    else:
        outcome = request.status if request else "pending"

    return RunSummary(
        run_id=run_id,
        env=next((r["env"] for r in recs if r.get("env")), None),
        action=_text(data.get("action")),
        reason=str(data.get("reason") or ""),
        operator=_text((first.get("who") or {}).get("user")) or _text(data.get("requester")),
        started_at=started_at,
        finished_at=finished_at,
        duration_s=duration,
        outcome=outcome,
        authorization=data.get("authorization") if isinstance(data.get("authorization"), dict) else {},
        drill=bool(data.get("drill")),
        records=recs,
        message=message,
        plan=data.get("plan") if isinstance(data.get("plan"), dict) else {},
        recommendation=data.get("recommendation") if isinstance(data.get("recommendation"), dict) else None,
        who=first.get("who") if isinstance(first.get("who"), dict) else {},
        request=request,
    )


def _alive(recs: list[dict[str, Any]], now: float, this_host: str, stale_after_s: float) -> bool:
    """Is the process that last worked on this run still there?"""
    engine = [r for r in recs if r["type"] in ENGINE_TYPES] or recs
    last = engine[-1]
    who = last.get("who") or {}
    last_ts = parse_ts(last.get("ts"))
    if who.get("host") != this_host:
        return last_ts is not None and now - last_ts.timestamp() < stale_after_s
    pid = who.get("pid")
    # The earliest record this pid wrote for the run: the process must be older than that.
    since = min(
        (t.timestamp() for r in engine if (r.get("who") or {}).get("pid") == pid and (t := parse_ts(r.get("ts")))),
        default=None,
    )
    return isinstance(pid, int) and pid_alive(pid, since)


def pid_alive(pid: int, running_at: float | None = None) -> bool:
    """Does ``pid`` exist on this host, and is it still the process that was running at
    ``running_at`` (not a zombie, not a newer process that reused the pid)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    state, started = _proc_stat(pid)
    if state in ("Z", "X"):
        return False
    # /proc start times are whole seconds since boot at best: allow some slack.
    return not (running_at is not None and started is not None and started > running_at + 2.0)


def _proc_stat(pid: int) -> tuple[str | None, float | None]:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat", encoding="ascii", errors="replace") as f:
            btime = next(float(line.split()[1]) for line in f if line.startswith("btime "))
        return fields[0], btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None, None  # no /proc (not Linux): trust kill(pid, 0)


def _text(value: Any) -> str | None:
    """A field that must be text; anything else in a (tampered) record reads as absent."""
    return value if isinstance(value, str) else None


def _data(record: dict[str, Any]) -> dict[str, Any]:
    d = record.get("data")
    return d if isinstance(d, dict) else {}


def _phase(data: dict[str, Any]) -> str:
    return str(data.get("phase") or "run")
