"""Plain-text rendering of snapshots and checks for the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from console.config.model import Config
from console.probes.snapshot import EndpointReport, EnvironmentSnapshot, HostSnapshot
from console.runbook.matrix import Recommendation, memory_level
from console.runbook.validation import Check
from console.safe_text import clean

if TYPE_CHECKING:
    from console.engine.standing import Standing


def _b(v: bool | None) -> str:
    return "?" if v is None else ("true" if v else "false")


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}s"


def log_redactor(config: Config) -> Callable[[str], str]:
    """For service log lines on their way out: known secrets and secret-looking values masked.

    The service may log a DSN or a password; what reaches the terminal or ``--json`` must not."""
    from console.journal.redact import Redactor, known_secrets

    redactor = Redactor(known_secrets(config))
    return redactor.text


def host_lines(h: HostSnapshot, config: Config) -> list[str]:
    if h.unreachable:
        return [f"  host {h.host} ({h.where}): UNREACHABLE — {h.unreachable}"]
    f = h.flags
    out = [f"  host {h.host} ({h.where})" + (f" pid {f.pid}" if f.pid else "")]
    some = f.env_file or f.process or f.log
    flags = some.flags if some is not None else ()
    out.append("    flags        " + "".join(f"{x.label.lower():<16}" for x in flags))
    drifted = {d.flag for d in f.drift}
    for label, source, err in (
        ("env file", f.env_file, f.env_file_error),
        ("process", f.process, f.process_error),
        ("log", f.log, f.log_error),
    ):
        if source is None:
            out.append(f"      {label:<10} {err or 'unknown'}")
            continue
        cells = []
        for flag in flags:
            v = _b(source.get(flag.id))
            cells.append(f"{v + (' ≠' if flag.env in drifted else ''):<16}")
        out.append(f"      {label:<10} " + "".join(cells))
    if f.drift:
        out.append("    DRIFT: " + "; ".join(d.describe() for d in f.drift))
        if f.stale_process:
            out.append(
                "      the running process does not have the env file's flags: restart it so it re-reads "
                "the env file (runbook troubleshooting 1)"
            )
    for p in f.env_file_problems:
        out.append(f"    env file: {p}")
    out.extend(health_lines(h))
    r = h.probe
    if r.problem:
        out.append(f"    {r.name:<12} {r.problem}")
    elif r.failed:
        out.append(f"    {r.name:<12} {_ms(r.latency_s)} · {r.failure_text}")
    else:
        said = " · ".join(x for x in (_ms(r.latency_s), r.mode_text, r.counted) if x)
        out.append(f"    {r.name:<12} {said}" + ("" if r.data_present is not False else " · NO DATA"))
    lg = h.logs
    if lg.error:
        out.append(f"    errors       {lg.error}")
    elif lg.error_rate is None:
        out.append(f"    errors       {lg.error_lines} ERROR in {lg.described_span} · error rate unknown: {lg.no_rate}")
    else:
        out.append(
            f"    errors       {lg.error_lines} ERROR in {lg.described_span} · error rate {lg.error_rate:.0%} "
            f"({lg.requests} request{'' if lg.requests == 1 else 's'})"
        )
    m = h.memory
    if m.rss_mb is not None:
        out.append(f"    memory       {m.rss_mb:.0f} MB RSS ({memory_level(config.thresholds, m.rss_mb)})")
    else:
        out.append(f"    memory       {m.error or '—'}")
    return out


def health_lines(h: HostSnapshot) -> list[str]:
    """Each endpoint (``/live 200 healthy · /ready 503 NOT OK``) and, when they disagree, which tells the truth."""
    hr = h.health
    if not hr.endpoints:
        return [f"    health       {hr.error or 'not measured'}"]
    shown = [f"{e.endpoint} {e.status or '—'} {_word(e)}" for e in hr.endpoints]
    line = "    health       " + " · ".join(shown)
    out = [line + ("  ← disagree" if hr.disagree else "")]
    out.extend(f"                 {e.error}" for e in hr.endpoints if e.error)
    if hr.disagree:  # which one to believe, in the profile's words
        truth = hr.truth
        assert truth is not None
        out.append(f"                 {hr.note or f'{truth.endpoint} tells the truth'}")
    return out


def _word(e: EndpointReport) -> str:
    if e.ok is None:
        return "?"
    return (e.said or "ok") if e.ok else "NOT OK"


def snapshot_text(s: EnvironmentSnapshot, rec: Recommendation, config: Config) -> str:
    n = len(s.hosts)
    lines = [f"{s.environment} ({s.kind}) — {n} host{'s' if n != 1 else ''} — probed in {s.elapsed_s:.2f}s"]
    if rec.action is None and rec.problems:
        lines.append("  recommended: CANNOT ASSESS — what could not be read or measured:")
    else:
        lines.append(f"  recommended: {rec.describe()}")
    if rec.advice:
        lines.append(f"               {rec.advice}")
    if rec.problems and rec.action is not None:
        lines.append("               also CANNOT ASSESS — what could not be read or measured:")
    for problem in rec.problems:
        lines.append(f"               - {problem}")
    for h in s.hosts:
        lines.extend(host_lines(h, config))
    db = s.database
    if db is not None:
        if db.error:
            lines.append(f"  database     {db.error}")
        else:
            cols = ", ".join(f"{c} {'present' if p else 'absent'}" for c, p in db.columns)
            idx = sum(1 for _, p in db.indexes if p)
            lines.append(f"  database     {cols} · {idx}/{len(db.indexes)} indexes · {db.rows} rows")
            if db.extra_dependents:
                lines.append("               would also drop: " + ", ".join(db.extra_dependents))
    return clean("\n".join(lines))


def checks_text(environment: str, checks: tuple[Check, ...], redact: Callable[[str], str] = str) -> str:
    """The validations; ``redact`` for the details, which may quote service log lines."""
    lines = [f"{environment}: post-rollback validation"]
    for i, c in enumerate(checks, 1):
        lines.append(f"  {i}. {'PASS' if c.passed else 'FAIL'}  {c.title:<22} {redact(c.detail)}")
    failed = sum(1 for c in checks if not c.passed)
    lines.append(f"  {'all 5 checks pass' if not failed else f'{failed} of {len(checks)} checks FAIL'}")
    return clean("\n".join(lines))


def standing_text(standing: Standing | None, error: str | None, snapshot: EnvironmentSnapshot | None = None) -> str:
    """The journal's word on an environment under its snapshot: the rollback in effect (and
    how to restore it; where the snapshot shows its flags changed since, that too) and the
    requests open on it; nothing when there is neither."""
    from console.engine.standing import changed_since, rolled_back_badge

    if standing is None:
        return clean(f"\n  journal      cannot read it: {error}") if error else ""
    lines = []
    run = standing.rolled_back
    if run is not None:
        how = "" if run.outcome == "succeeded" else f" ({run.outcome_text()})"
        when = f" at {run.started_at:%Y-%m-%d %H:%M} UTC" if run.started_at else ""
        since = changed_since(run, snapshot)
        badge = rolled_back_badge(run)
        head = f"NO LONGER IN EFFECT: {badge.lower()}" if since.no_longer_in_effect else badge
        lines.append(f"{head} by run {run.run_id}{when} by {run.operator or '?'}: {run.title}{how}")
        if (note := since.note()) is not None:
            lines.append(f"  {note}")
        lines.append(
            f"  restore (its preview says what is left to put back): rollback-console restore --env "
            f"{standing.environment} --run {run.run_id}"
        )
    for r in standing.requests:
        lapses = f", lapses {r.expires_at:%H:%M} UTC" if r.expires_at else ""
        if r.status == "pending":
            since = f" at {r.requested_at:%H:%M} UTC" if r.requested_at else ""
            lines.append(f"APPROVAL PENDING: run {r.run_id}, {r.title}, requested by {r.requester}{since}{lapses}")
            lines.append(f"  a second person approves it with: rollback-console approve {r.run_id}")
        else:
            lines.append(f"APPROVED by {r.approver}: run {r.run_id}, {r.title}, waits for {r.requester}{lapses}")
            lines.append(f"  its requester starts it with: rollback-console start {r.run_id}")
    if not lines:
        return ""
    head, *rest = lines
    return clean("\n".join([f"\n  journal      {head}", *(f"               {line}" for line in rest)]))


def standing_dict(
    standing: Standing | None, error: str | None, snapshot: EnvironmentSnapshot | None = None
) -> dict[str, Any]:
    from console.engine.standing import changed_since

    if standing is None:
        return {"error": error}
    run = standing.rolled_back
    since = changed_since(run, snapshot) if run is not None else None
    return {
        "rolled_back": None
        if run is None
        else {
            "run": run.run_id,
            "action": run.action,
            "title": run.title,
            "outcome": run.outcome,
            "changed_since_on": since.changed if since else [],  # env file no longer has the run's flags
            "as_before_on": since.as_before if since else [],  # of those: the flags from before the run
        },
        "requests": [
            {"run": r.run_id, "status": r.status, "title": r.title, "requester": r.requester, "approver": r.approver}
            for r in standing.requests
        ],
    }
