"""Journals with runs of every shape, written through the real writer, and the truth to
compare an index against: every record read afresh and summarized whole (runs.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from console.journal import Journal, RunSummary
from console.journal.records import parse_line
from console.journal.runs import summarize

T0 = 1_764_000_000.0  # 2025-11-24


def plan(title: str = "Quick rollback (disable all)") -> dict[str, Any]:
    return {
        "title": title,
        "target": "< 1 min",
        "target_s": 60,
        "steps": [{"id": "edit-env", "title": "Edit the env file"}, {"id": "restart", "title": "Restart the API"}],
    }


def started(action: str = "quick", *, drill: bool = False, reason: str = "latency > 5s") -> dict[str, Any]:
    return {
        "action": action,
        "reason": reason,
        "authorization": {"mode": "self-service"},
        "plan": plan(),
        "drill": drill,
    }


def add_run(
    journal: Journal,
    run: str,
    *,
    env: str = "staging",
    t: float = T0,
    outcome: str | None = "succeeded",
    drill: bool = False,
    skip: bool = False,
) -> None:
    """A run as the engine writes it; ``outcome=None``: cut off after its first step."""
    add = journal.append
    add("lock_intent", run=run, env=env, data={"action": "quick"}, ts=t)
    add("run_started", run=run, env=env, data=started(drill=drill), ts=t + 1)
    for i, step in enumerate(("edit-env", "restart")):
        add("step_started", run=run, env=env, data={"step": step, "title": step, "phase": "run"}, ts=t + 2 + i)
        add("step_intent", run=run, env=env, data={"step": step, "intent": {"before": "x"}, "phase": "run"}, ts=t + 2)
        if outcome is None:
            return
        if outcome == "failed" and step == "restart":
            add("step_failed", run=run, env=env, data={"step": step, "message": "did not start", "phase": "run"})
            if skip:
                add("decision", run=run, env=env, data={"step": step, "decision": "skip", "reason": "known"})
            break
        add("step_finished", run=run, env=env, data={"step": step, "facts": {"changed": True}, "phase": "run"})
    add("validation", run=run, env=env, data={"check": "health", "ok": True}, ts=t + 5)
    final = "succeeded" if outcome == "failed" and skip else outcome
    add("run_finished", run=run, env=env, data={"outcome": final, "duration_s": 4.25, "message": "done"}, ts=t + 6)
    add("checklist", run=run, env=env, data={"item": "health", "ticked": True, "by": "auto"}, ts=t + 7)


class Queued:
    """A journal whose ``append`` only queues (the real writer writes a batch in one go):
    years of runs written in a second, not one fsync per record."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.append = journal.submit


def add_pending(journal: Journal, run: str, env: str = "production", t: float = T0) -> None:
    journal.append("run_requested", run=run, env=env, data={"action": "full", "requester": "bob", "plan": plan()}, ts=t)


def truth(path: Path, env: str | None = None, drills: bool = False) -> list[RunSummary]:
    """The runs as a reader who reads the whole file afresh sees them."""
    records = []
    for raw in path.read_bytes().split(b"\n"):
        record = parse_line(raw)
        if record is not None:
            records.append(record)
    return [r for r in summarize(records) if r.drill == drills and (env is None or r.env == env)]


def table(runs: list[Any]) -> list[dict[str, Any]]:
    """What `history --json` shows of each run (rows or summaries alike)."""
    return [r.to_dict() for r in runs]


def forge(path: Path, line: int, change: dict[str, Any]) -> None:
    """Edit record ``line`` (1-based) and recompute every hash from there on: a chain that
    holds together, which only a checkpoint made before can tell from the original."""
    from console.journal.records import record_hash

    lines = path.read_bytes().split(b"\n")[:-1]
    prev = None
    out = []
    for n, raw in enumerate(lines, 1):
        record = json.loads(raw)
        if n == line:
            record["data"].update(change)
        if n >= line:
            if prev is not None:
                record["prev"] = prev
            record["hash"] = record_hash(record)
        prev = record["hash"]
        out.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
    rewrite_in_place(path, b"\n".join(out) + b"\n")


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Same file (inode), new content: what an editor that writes in place does."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
