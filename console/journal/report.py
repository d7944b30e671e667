"""The incident report (markdown) for one run, made only from what the journal recorded.

Sections: summary, the decision, timeline, steps, validations, checklist, decisions
taken, notifications (and a drill scorecard for drills). The journal holds no secrets,
so neither does the report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from console import safe_text
from console.config.model import ChecklistItem
from console.journal.chain import Problem
from console.journal.checkpoint import Verification
from console.journal.history import format_duration
from console.journal.records import parse_ts
from console.journal.requests import RequestState
from console.journal.runs import RunSummary

_NEWLINES = re.compile(r"\r\n|\r|\n")
LINE_MAX = 160  # characters of one timeline line
POST_HOC_REVIEW = "post_hoc_review"  # checklist item id, as console.runbook.authz names it


def incident_report(
    run: RunSummary,
    *,
    checklist: Sequence[ChecklistItem] = (),
    journal_path: str | os.PathLike[str] | None = None,
    problems: list[Problem] | None = None,
) -> str:
    """The report as markdown. ``checklist``: the environment's items, in order (none: only
    what was ticked). ``problems``:
    ``Journal.verify()``'s answer, to state the journal's integrity (None: not checked)."""
    kind = "Drill report" if run.drill else "Incident report"
    out = [f"# {kind}: {run.title} on {run.env or '?'}", ""]
    if run.drill:
        out += ["*A rehearsal against the simulator, not a real incident.*", ""]
    for section in (_summary, _decision, _timeline, _steps, _validations):
        out += _section(section, run)
    out += _section(_checklist, run, checklist)
    for section in (_decisions, _notifications, _drill):
        out += _section(section, run)
    out += _provenance(run, journal_path, problems)
    # Every line holds journal text (reasons, notes, host output): one pass makes it inert.
    return safe_text.markdown("\n".join(out).rstrip()) + "\n"


# --- sections ---------------------------------------------------------------------------
SECTION_FAILED = "could not be made from the journal"


def _section(make: Callable[..., list[str]], run: RunSummary, *args: Any) -> list[str]:
    """One section; a record of a shape the engine never writes (a tampered journal) costs
    that section, named as such, not the whole report. Tests assert this never shows for
    records of any shape, so every such case is handled where it arises."""
    try:
        return make(run, *args)
    except Exception as exc:
        title = make.__name__.strip("_").replace("_", " ")
        return [f"*The {title} section {SECTION_FAILED} ({type(exc).__name__}); `history --verify` checks it.*", ""]


def _summary(run: RunSummary) -> list[str]:
    plan = run.plan
    who = run.who
    operator = (run.operator or "?") + (f" from {who['ssh_client']}" if who.get("ssh_client") else "")
    operator += f" on {who['host']}" if who.get("host") else ""
    rows = [
        ("Run", f"`{run.run_id}`"),
        ("Environment", run.env or "?"),
        ("Action", f"{run.title} (`{run.action}`)" if run.action else run.title),
        ("Reason", run.reason or "-"),
        ("Operator", operator),
        ("Authorization", _authorization(run)),
        *(
            [("Requested", _clock(run.started_at, seconds=True)), ("Started", f"not started: {unstarted.describe()}")]
            if (unstarted := _unstarted_request(run)) is not None
            else [("Started", _clock(run.started_at, seconds=True))]
        ),
        ("Finished", _clock(run.finished_at, seconds=True) if run.finished_at else "-"),
        ("Duration", _duration_vs_target(run)),
        ("Outcome", run.outcome_text() + (f" — {run.message}" if run.message else "")),
    ]
    if plan.get("data_loss"):
        rows.append(("Data loss", str(plan["data_loss"])))
    if plan.get("reversible"):
        rows.append(("Reversible", str(plan["reversible"])))
    return ["## Summary", "", "| Item | Value |", "|---|---|", *(f"| **{k}** | {_cell(v)} |" for k, v in rows), ""]


def _authorization(run: RunSummary) -> str:
    auth = run.authorization
    mode = auth.get("mode")
    if mode == "emergency":
        level = auth.get("emergency_level") or "P0/P1"
        reason = auth.get("reason") or run.reason or "no reason recorded"
        return f"emergency override {level} (approval skipped, notify afterward): {reason}"
    if mode == "approved" or run.approved_by():
        return f"approved by {run.approved_by() or '?'}"
    if mode == "self-service":
        return "self-service (no approval required)"
    if not mode and run.request is not None:  # asked for, never granted
        return f"approval requested by {run.request.requester}: {run.request.describe()}"
    return str(mode or "not recorded")


def _unstarted_request(run: RunSummary) -> RequestState | None:
    """The request of a run that never started (withdrawn, rejected, expired, still waiting)."""
    if run.request is None or any(r["type"] == "run_started" for r in run.records):
        return None
    return run.request


def _duration_vs_target(run: RunSummary) -> str:
    text = format_duration(run.duration_s)
    target_s, target = run.plan.get("target_s"), run.plan.get("target")
    if run.duration_s is None or not isinstance(target_s, int | float):
        return text
    label = f"runbook target {target or format_duration(target_s)}"
    if run.outcome != "succeeded":
        # The target is for a rollback done: one that failed quickly did not meet it.
        return f"{text} ({run.outcome}: the {label} was not met)"
    if run.duration_s <= target_s:
        return f"{text} (within the {label})"
    return f"{text} (over the {label} by {format_duration(run.duration_s - target_s)})"


def _decision(run: RunSummary) -> list[str]:
    out = ["## Decision", ""]
    rec = run.recommendation
    started = next((_data(r) for r in run.records if r["type"] == "run_started"), {})
    for note in _list(started.get("evidence")):
        out.append(f"Before the run: {note}.")
    unstarted = _unstarted_request(run)
    if not rec and unstarted is not None:
        out.append(
            "No recommendation is recorded: the console records one when a run starts, and this request "
            f"never started ({unstarted.describe()})."
        )
    elif not rec:
        out.append("No recommendation was recorded when the run started.")
    else:
        line = f"Recommended at the start: **{rec.get('title') or rec.get('action') or 'no action'}**"
        if rec.get("action"):
            line += f" — {rec.get('severity')}, {rec.get('timeline')}: {rec.get('symptom')}"
        out.append(line)
        if rec.get("advice"):
            out.append(f"Advice: {rec['advice']}")
        lit = [f for f in _list(rec.get("findings")) if isinstance(f, dict) and f.get("lit")]
        out.append("")
        if lit:
            out += ["| Symptom (lit) | Severity | Action | Evidence |", "|---|---|---|---|"]
            out += [
                f"| {_cell(f.get('symptom'))} | {_cell(f.get('severity'))} | {_cell(f.get('action'))} "
                f"| {_cell(f.get('evidence'))} |"
                for f in lit
            ]
        else:
            out.append("No row of the decision matrix was lit.")
    chosen = run.action
    if rec and chosen and rec.get("action") and chosen != rec.get("action"):
        out += ["", f"The operator chose `{chosen}`, not the recommended `{rec.get('action')}`."]
    return [*out, ""]


def _timeline(run: RunSummary) -> list[str]:
    lines = []
    for r in run.records:
        offset = _offset(run, r)
        clock = _clock(parse_ts(r.get("ts")), seconds=True, date=False)
        text = _one_line(_describe(run, r))
        lines.append(f"{offset:>9}  {clock}  {r['type']:<14} {text}".rstrip())
    since = "the request" if _unstarted_request(run) is not None else "the start of the run"
    return ["## Timeline", "", f"Time from {since}; one line per journal record.", "", *_fence(lines), ""]


def _steps(run: RunSummary) -> list[str]:
    out: list[str] = []
    for phase, heading in (("run", "## Steps"), ("undo", "## Undo steps")):
        results = [
            r
            for r in run.records
            if r["type"] in ("step_finished", "step_failed") and _phase(r) == phase and _data(r).get("step")
        ]
        if not results:
            continue
        out += [heading, ""]
        order = list(dict.fromkeys(str(_data(r)["step"]) for r in results))
        for step in order:
            out += _one_step(run, step, phase, [r for r in results if _data(r)["step"] == step])
    return out or ["## Steps", "", "No step ran.", ""]


def _one_step(run: RunSummary, step: str, phase: str, results: list[dict[str, Any]]) -> list[str]:
    out = [
        f"### {run.step_title(step, phase)} (`{step}`)",
        "",
        "| Host | Result | Time | Detail |",
        "|---|---|---|---|",
    ]
    attempts: dict[str, int] = {}
    extra: list[str] = []
    for r in results:
        d = _data(r)
        host = str(d.get("host") or "*")
        attempts[host] = attempts.get(host, 0) + 1
        label = host if host != "*" else "(environment)"
        label += f" (attempt {attempts[host]})" if attempts[host] > 1 else ""
        ok = r["type"] == "step_finished"
        elapsed = d.get("elapsed_s")
        time_text = f"{elapsed:.1f}s" if isinstance(elapsed, int | float) else "-"
        out.append(f"| {_cell(label)} | {'ok' if ok else 'FAILED'} | {time_text} | {_cell(d.get('message') or '')} |")
        if d.get("troubleshooting"):
            extra.append(f"- {label}: runbook troubleshooting — {d['troubleshooting']}")
        remedy = d.get("remedy")
        if isinstance(remedy, dict):
            commands = [str(c) for c in _list(remedy.get("commands"))]
            extra += [f"- {label}: fix offered — {remedy.get('title')}", "", *_fence(commands), ""]
        if d.get("output"):
            # A paragraph of its own: right under a list item it would join the item's text.
            extra += ["", f"Output, {label}:", "", *_fence(str(d["output"]).splitlines()), ""]
    return [*out, "", *extra]


def _validations(run: RunSummary) -> list[str]:
    records = [r for r in run.records if r["type"] == "validation"]
    out = ["## Validations", ""]
    if not records and run.request is not None and not any(r["type"] == "run_started" for r in run.records):
        return [*out, f"No validation: the request never ran ({run.outcome_text()}).", ""]
    if not records:
        return [*out, "No validation was recorded (the run stopped before validating).", ""]
    for r in records:
        checks = [c for c in _list(_data(r).get("checks")) if isinstance(c, dict)]
        passed = sum(1 for c in checks if c.get("passed"))
        when = "After the undo" if _phase(r) == "undo" else "After the rollback"
        out += [
            f"### {when}, {_clock(parse_ts(r.get('ts')), seconds=True)}: {passed} of {len(checks)} pass",
            "",
            "| # | Check | Result | Detail |",
            "|---|---|---|---|",
        ]
        for i, c in enumerate(checks, 1):
            detail = str(c.get("detail") or "")
            hosts = [h for h in _list(c.get("hosts")) if isinstance(h, dict)]
            if len(hosts) > 1:
                failing = [f"{h.get('host')}: {h.get('detail')}" for h in hosts if not h.get("passed")]
                detail += (" — " + "; ".join(failing)) if failing else f" (all {len(hosts)} hosts)"
            result = "PASS" if c.get("passed") else "FAIL"
            out.append(f"| {i} | {_cell(c.get('title') or c.get('check'))} | {result} | {_cell(detail)} |")
        out.append("")
    return out


def _checklist(run: RunSummary, items: Sequence[ChecklistItem]) -> list[str]:
    state: dict[str, dict[str, Any]] = {}  # item id -> its last checklist record
    for r in run.records:
        if r["type"] == "checklist" and _data(r).get("item"):
            state[str(_data(r)["item"])] = r
    texts = {i.id: i.text for i in items}
    for item_id, r in state.items():
        texts.setdefault(item_id, str(_data(r).get("text") or item_id))
    if run.authorization.get("mode") == "emergency":  # the runbook's "notify afterward" needs a review
        level = run.authorization.get("emergency_level") or "P0/P1"
        texts.setdefault(POST_HOC_REVIEW, f"Post-hoc review of the {level} emergency override by a team lead")
    out = ["## Post-rollback checklist", ""]
    for item_id, text in texts.items():
        r = state.get(item_id)
        d = _data(r) if r else {}
        ticked = bool(d.get("ticked"))
        line = f"- [{'x' if ticked else ' '}] {text}"
        if r:
            by = "automatically" if d.get("by") == "auto" else f"by {_user(r)}"
            line += f" — {'ticked' if ticked else 'unticked'} {by}"
            line += f": {_one_line(str(d['evidence']))}" if d.get("evidence") else ""
        out.append(line)
    return [*out, ""]


def _decisions(run: RunSummary) -> list[str]:
    lines = []
    for r in run.records:
        d = _data(r)
        when = f"{_clock(parse_ts(r.get('ts')), seconds=True, date=False)} ({_offset(run, r)})"
        if r["type"] == "decision":
            step = run.step_title(str(d.get("step")), _phase(r)) if d.get("step") else "the run"
            by = f" by {d['by']}" if d.get("by") else ""
            reason = f": {_one_line(str(d['reason']))}" if d.get("reason") else ""
            lines.append(f"- {when} **{d.get('decision')}** at {step}{by}{reason}")
        elif r["type"] == "lock_broken":
            lines.append(f"- {when} **lock broken**: {_lock_broken(r)}")
        elif r["type"] == "lock_taken_over":
            lines.append(f"- {when} **lock taken over** from a console that is gone: {_one_line(str(d.get('why')))}")
    return ["## Decisions taken", "", *(lines or ["None: every step went through without one."]), ""]


def _notifications(run: RunSummary) -> list[str]:
    lines = []
    for r in run.records:
        d = _data(r)
        when = _clock(parse_ts(r.get("ts")), seconds=True, date=False)
        if r["type"] == "notified":
            status = f" (HTTP {d['status']})" if d.get("status") else ""
            lines.append(f"- {when} sent to {_target(d)}: {_one_line(str(d.get('event') or ''))}{status}")
        elif r["type"] == "notify_failed":
            event = f" of {d['event']}" if d.get("event") else ""
            lines.append(f"- {when} **FAILED** to notify {_target(d)}{event}: {d.get('error')}")
    return ["## Notifications", "", *(lines or ["No notification was recorded."]), ""]


def _drill(run: RunSummary) -> list[str]:
    scored = [r for r in run.records if r["type"] == "drill_scored"]
    if not scored:
        return []
    d = _data(scored[-1])
    return ["## Drill scorecard", "", *(f"- {k}: {_one_line(str(v))}" for k, v in d.items()), ""]


def _provenance(run: RunSummary, path: str | os.PathLike[str] | None, problems: list[Problem] | None) -> list[str]:
    seqs = [r["seq"] for r in run.records]
    where = f" {path}" if path else ""
    out = ["---", "", f"Made from the audit journal{where}: {len(seqs)} records (seq {min(seqs)}–{max(seqs)})."]
    if problems is not None:
        if problems:
            out.append(f"**The journal's hash chain has {len(problems)} problem(s):**")
            out += [f"- {p}" for p in problems]
        scope = problems.scope() if isinstance(problems, Verification) else ""
        if not problems and not scope:
            out.append("The journal's hash chain verifies: nothing was edited, removed or reordered.")
        elif not problems:  # checked from the verify checkpoint on: say how far that reaches
            out.append(
                "The journal's hash chain verifies: nothing appended since the last verify was edited, "
                "removed or reordered, and the record that verify ended on is still in its place."
            )
        if scope:
            out.append(f"({scope[0].upper()}{scope[1:]}; `history --verify --full` reads it all again.)")
    return out


# --- helpers ------------------------------------------------------------------------------
def _describe(run: RunSummary, r: dict[str, Any]) -> str:
    d = _data(r)
    t = r["type"]
    host = f"[{d['host']}] " if d.get("host") else ""
    undo = "undo: " if _phase(r) == "undo" and t.startswith("step") else ""
    step = run.step_title(str(d["step"]), _phase(r)) if d.get("step") else ""
    if t == "run_requested":
        return _colon(f"{d.get('requester') or _user(r)} asked for {d.get('action')}", d.get("reason"))
    if t == "run_approved":
        return f"approved by {d.get('approver') or _user(r)}"
    if t in ("run_rejected", "run_withdrawn"):
        verb = "rejected" if t == "run_rejected" else "withdrawn"
        return _colon(f"{verb} by {d.get('by') or _user(r)}: it will not run", d.get("reason"))
    if t == "run_expired":
        return "the request lapsed: no one started it in time; it will not run"
    if t == "run_started":
        mode = _dict(d.get("authorization")).get("mode") or "?"
        resumed = " (resumed)" if d.get("resumed") else ""
        return _colon(f"{_user(r)} started {run.title}{resumed}, {mode}", d.get("reason"))
    if t == "step_started":
        return f"{undo}{host}{step}"
    if t == "step_intent":  # journaled before the change: what it will change and how to put it back
        return f"{undo}{host}{step}: about to change (intent journaled first)"
    if t == "lock_intent":
        return "about to take the lock" + (f", taking it over: {d['take_over']}" if d.get("take_over") else "")
    if t == "lock_taken_over":
        return _colon("took over the lock", d.get("why"))
    if t == "run_refused":
        return _colon("refused before anything changed", d.get("why"))
    if t in ("step_finished", "step_failed"):
        elapsed = f" in {d['elapsed_s']:.1f}s" if isinstance(d.get("elapsed_s"), int | float) else ""
        verdict = "ok" if t == "step_finished" else "FAILED"
        message = f" — {d['message']}" if d.get("message") else ""
        return f"{undo}{host}{step}: {verdict}{elapsed}{message}"
    if t == "decision":
        return _colon(f"{d.get('decision')} by {d.get('by') or '?'}", d.get("reason"))
    if t == "validation":
        checks = [c for c in _list(d.get("checks")) if isinstance(c, dict)]
        failed = [str(c.get("title") or c.get("check")) for c in checks if not c.get("passed")]
        text = f"{len(checks) - len(failed)} of {len(checks)} pass"
        return text + (f" — FAIL: {', '.join(failed)}" if failed else "")
    if t == "run_finished":
        return _colon(f"{d.get('outcome')} in {format_duration(d.get('duration_s'))}", d.get("message"))
    if t == "checklist":
        ticked = "ticked" if d.get("ticked") else "unticked"
        by = "automatically" if d.get("by") == "auto" else f"by {_user(r)}"
        return _colon(f"{d.get('item')} {ticked} {by}", d.get("evidence"))
    if t == "notified":
        return _colon(_target(d), d.get("event"))
    if t == "notify_failed":
        return _colon(f"{_target(d)} ({d.get('event') or '?'})", d.get("error"))
    if t == "lock_broken":
        return _lock_broken(r)
    if t == "report_written":
        return f"{d.get('path') or ''}"
    return f"{host}{d.get('message') or ''}"


def _offset(run: RunSummary, r: dict[str, Any]) -> str:
    ts = parse_ts(r.get("ts"))
    if ts is None or run.started_at is None:
        return "?"
    seconds = round((ts - run.started_at).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}" if hours else f"{sign}{minutes}:{secs:02d}"


def _clock(when: Any, *, seconds: bool = False, date: bool = True) -> str:
    if when is None:
        return "-"
    fmt = ("%Y-%m-%d " if date else "") + ("%H:%M:%S" if seconds else "%H:%M")
    return when.strftime(fmt) + (" UTC" if date else "")


def _fence(lines: Sequence[str]) -> list[str]:
    # A fence longer than any backtick run inside, so output cannot close it early.
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *lines, fence]


def _cell(value: Any) -> str:
    return _NEWLINES.sub("<br>", str(value if value is not None else "-").replace("|", "\\|"))


def _one_line(text: str) -> str:
    text = _NEWLINES.sub(" ⏎ ", text.strip())
    return text if len(text) <= LINE_MAX else text[: LINE_MAX - 1] + "…"


def _colon(text: str, detail: Any) -> str:
    return f"{text}: {detail}" if detail else text


def _lock_broken(r: dict[str, Any]) -> str:
    """data: {lock: {environment, host, user, ssh_client, bastion, pid, run_id, …}, reason, broken_by}"""
    d = _data(r)
    lock = d.get("lock") if isinstance(d.get("lock"), dict) else {}
    holder = d.get("holder") or lock
    held = f" held by {_holder(holder)}" if holder else ""
    env = f" of {lock['environment']}" if lock.get("environment") else ""
    return _colon(f"{_user(r)} broke the lock{env}{held}", d.get("reason"))


def _holder(holder: Any) -> str:
    if isinstance(holder, dict):  # a Who or a lock's owner: user, ssh_client, host/bastion, pid
        where = f" from {holder['ssh_client']}" if holder.get("ssh_client") else ""
        host = holder.get("host") if "bastion" not in holder else holder.get("bastion")
        return f"{holder.get('user') or '?'}{where} on {host or '?'} (pid {holder.get('pid')})"
    return str(holder)


def _target(d: dict[str, Any]) -> str:
    # notify.NotifyResult says where the URL came from ("webhook": "$VAR"), never the URL.
    return str(d.get("target") or "webhook")


def _user(r: dict[str, Any]) -> str:
    return str((r.get("who") or {}).get("user") or "?")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """A field that must be a list; anything else in a (tampered) record reads as empty."""
    return value if isinstance(value, list) else []


def _data(r: dict[str, Any]) -> dict[str, Any]:
    d = r.get("data")
    return d if isinstance(d, dict) else {}


def _phase(r: dict[str, Any]) -> str:
    return str(_data(r).get("phase") or "run")
