"""Snapshots as plain JSON-able dicts, for `--json` and the journal."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from console.probes.snapshot import EnvironmentSnapshot, HealthReport, HostSnapshot, flag_dict
from console.runbook.matrix import Recommendation
from console.runbook.validation import Check

Redact = Callable[[str], str]  # applied to every service log line that goes out


def _same(text: str) -> str:
    return text


def host_dict(h: HostSnapshot, redact: Redact = _same) -> dict[str, Any]:
    f = h.flags
    return {
        "host": h.host,
        "where": h.where,
        "reachable": h.unreachable is None,
        "unreachable": h.unreachable,
        "elapsed_s": round(h.elapsed_s, 3),
        "flags": {
            "env_file": flag_dict(f.env_file),
            "process": flag_dict(f.process),
            "log": flag_dict(f.log),
            "drift": [dataclasses.asdict(d) for d in f.drift],
            "stale_process": f.stale_process,
            "pid": f.pid,
            "log_line": f.log_line and redact(f.log_line),
            "env_file_lines": [{"line": n, "text": t} for n, t in f.env_file_lines],
            "env_file_problems": list(f.env_file_problems),
            "errors": {
                k: v
                for k, v in (("env_file", f.env_file_error), ("process", f.process_error), ("log", f.log_error))
                if v
            },
        },
        "health": health_dict(h.health),
        "probe": {**dataclasses.asdict(h.probe), "ok": h.probe.ok, "failed": h.probe.failed},
        "logs": {
            "window": h.logs.window,
            "error_lines": h.logs.error_lines,
            "requests": h.logs.requests,
            "error_rate": h.logs.error_rate,
            "error_samples": [redact(line) for line in h.logs.error_samples],
            "span": h.logs.described_span,
            "error": h.logs.error,
        },
        "memory": {
            "pid": h.memory.pid,
            "rss_mb": h.memory.rss_mb and round(h.memory.rss_mb, 1),
            "error": h.memory.error,
        },
    }


def health_dict(hr: HealthReport) -> dict[str, Any]:
    """Every endpoint by its role (liveness, readiness), and the verdict the truthful one gives."""
    return {
        "healthy": hr.healthy,
        "verdict": hr.verdict,
        "disagree": hr.disagree,
        "truth": hr.truth.role if hr.truth else None,
        "version": hr.version,
        "error": hr.error,
        "endpoints": {e.role: {**dataclasses.asdict(e), "components": dict(e.components)} for e in hr.endpoints},
    }


def recommendation_dict(r: Recommendation) -> dict[str, Any]:
    return {
        "action": r.action,
        "title": r.title,
        "severity": r.severity,
        "timeline": r.timeline,
        "symptom": r.symptom,
        "advice": r.advice,
        "assessed": r.assessed,
        "in_effect": r.in_effect,
        "in_files": r.in_files,  # not in effect, but every env file has its flags already
        # with in_files: the hosts whose running API lacks them, and why
        "not_taken": [{"host": h, "why": why} for h, why in r.not_taken],
        "problems": list(r.problems),
        "symptoms": list(r.symptoms),
        "findings": [
            {
                "symptom": f.row.symptom,
                "lit": f.lit,
                "evidence": f.evidence,
                "severity": f.row.severity,
                "action": f.row.action,
                "declared": f.row.declared,
                "known": f.known,
            }
            for f in r.findings
        ],
    }


def snapshot_dict(
    s: EnvironmentSnapshot, recommendation: Recommendation | None = None, redact: Redact = _same
) -> dict[str, Any]:
    db = s.database
    out: dict[str, Any] = {
        "environment": s.environment,
        "kind": s.kind,
        "taken_at": s.taken_at,
        "elapsed_s": round(s.elapsed_s, 3),
        "signals": {
            "response_time_s": s.response_time_s,
            "error_rate": s.error_rate,
            "memory_mb": s.memory_mb and round(s.memory_mb, 1),
            "missing_data": s.missing_data,
            "unhealthy": s.unhealthy,
        },
        "hosts": [host_dict(h, redact) for h in s.hosts],
        "database": None
        if db is None
        else {
            "columns": dict(db.columns),
            "indexes": dict(db.indexes),
            "dependents": list(db.dependents),
            "extra_dependents": list(db.extra_dependents),
            "migration_004_applied": db.migration_applied,
            "rows": db.rows,
            "error": db.error,
        },
    }
    if recommendation is not None:
        out["recommendation"] = recommendation_dict(recommendation)
    return out


def checks_dict(checks: tuple[Check, ...], redact: Redact = _same) -> list[dict[str, Any]]:
    """The checks for ``--json`` and the journal; details may quote log lines, hence ``redact``."""
    return [
        {
            "check": c.name,
            "title": c.title,
            "passed": c.passed,
            "detail": redact(c.detail),
            "hosts": [{"host": h, "passed": ok, "detail": redact(d)} for h, ok, d in c.hosts],
        }
        for c in checks
    ]
