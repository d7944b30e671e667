"""The runbook's post-rollback checklist for one run: ticked by machine where it can be
checked (with the evidence), by the operator for the rest; every tick is journaled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.config.model import ChecklistItem, Config
from console.journal import Journal, RunSummary
from console.profile import Profile, ProfileError, profile_of
from console.runbook.authz import POST_HOC_REVIEW_ID

# Evidence a profile's checklist item may name, as the config's `check` words.
EVIDENCE_CHECK = {"notified": "notified", "report_written": "report"}
# Which validation check ticks which automatic item (the config's own [[checklist]] words).
CHECK_FOR = {
    "health": "health",
    "flags_in_logs": "flags",
    "no_errors": "errors",
    "response_time": "response_time",
    "data": "recommendations",
}


@dataclass(frozen=True)
class ItemState:
    item: ChecklistItem
    ticked: bool
    by: str | None  # "auto", or the user who ticked it
    evidence: str
    automatic: bool  # a machine can check it

    @property
    def done(self) -> bool:
        return self.ticked


def checklist_of(config: Config, environment: str | None) -> tuple[ChecklistItem, ...]:
    """The post-rollback checklist of an environment: the config's [[checklist]], else its
    profile's (an item ticked by a validation names the validation's id as its check)."""
    if config.checklist or environment not in config.environments:
        return config.checklist
    try:
        profile = profile_of(config.environment(environment))  # type: ignore[arg-type]
    except ProfileError:
        return config.checklist
    return profile_checklist(profile)


def profile_checklist(profile: Profile) -> tuple[ChecklistItem, ...]:
    """A profile's checklist as the console keeps it (a validation's id, or the evidence's word, as its check)."""
    return tuple(
        ChecklistItem(i.id, i.text, i.validation or (EVIDENCE_CHECK.get(i.evidence) if i.evidence else None))
        for i in profile.checklist
    )


def items_for(config: Config, run: RunSummary) -> list[ChecklistItem]:
    items = list(checklist_of(config, run.env))
    auth = run.authorization or {}
    if auth.get("mode") == "emergency":
        items.append(
            ChecklistItem(
                POST_HOC_REVIEW_ID,
                f"Post-hoc review of the {auth.get('emergency_level', 'P0/P1')} emergency override "
                f"by a team lead (reason: {auth.get('reason') or '—'})",
            )
        )
    return items


def state(config: Config, run: RunSummary) -> list[ItemState]:
    """The checklist as the journal has it now (the latest record per item wins)."""
    latest: dict[str, dict[str, Any]] = {}
    for r in run.records:
        if r["type"] == "checklist":
            latest[str(r["data"].get("item"))] = r
    out = []
    for item in items_for(config, run):
        r = latest.get(item.id)
        d = r["data"] if r else {}
        by = None
        if r:
            by = "auto" if d.get("by") == "auto" else (r.get("who") or {}).get("user")
        out.append(ItemState(item, bool(d.get("ticked")), by, str(d.get("evidence") or ""), item.check is not None))
    return out


def automatic_ticks(config: Config, run: RunSummary) -> list[tuple[str, bool, str]]:
    """(item id, ticked, evidence) for every item a machine can check, from the run's records."""
    checks: dict[str, dict[str, Any]] = {}
    for r in run.records:
        if r["type"] == "validation":
            checks = {c["check"]: c for c in r["data"].get("checks", [])}
    notified = [r for r in run.records if r["type"] == "notified"]
    failed_notify = [r for r in run.records if r["type"] == "notify_failed"]
    reports = [r for r in run.records if r["type"] == "report_written"]
    out = []
    for item in checklist_of(config, run.env):
        if item.check is None:
            continue
        if item.check not in ("notified", "report"):  # a validation: the config's word for it, or its id
            check = checks.get(CHECK_FOR.get(item.check, item.check))
            if check is None:
                out.append((item.id, False, "no validation ran"))
            else:
                out.append((item.id, bool(check["passed"]), f"{check['title']}: {check['detail']}"))
        elif item.check == "notified":
            if notified:
                out.append((item.id, True, f"webhook delivered ({len(notified)} notification(s))"))
            elif failed_notify:
                error = failed_notify[-1]["data"].get("error") or "failed"
                out.append((item.id, False, f"webhook failed: {error}; notify the alert channels by hand"))
            else:
                out.append((item.id, False, "no webhook configured: notify the alert channels by hand"))
        elif item.check == "report":
            if reports:
                out.append((item.id, True, f"written to {reports[-1]['data'].get('path')}"))
            else:
                out.append((item.id, False, f"not yet: rollback-console report {run.run_id} -o FILE"))
    return out


def tick_automatic(config: Config, journal: Journal, run_id: str) -> list[ItemState]:
    """Journal the machine-checkable items whose state changed; return the checklist."""
    run = journal.run(run_id)
    current = {s.item.id: s for s in state(config, run)}
    written = []
    for item_id, ticked, evidence in automatic_ticks(config, run):
        s = current.get(item_id)
        if s is not None and s.by not in (None, "auto"):
            continue  # a person's tick stands
        if s is None or s.ticked != ticked or s.evidence != evidence:
            written.append(
                journal.submit(
                    "checklist",
                    run=run.run_id,
                    env=run.env,
                    data={"item": item_id, "ticked": ticked, "by": "auto", "evidence": evidence},
                )
            )
    for record in written:  # queued together: written in order, in one write and one fsync
        record.result()
    return state(config, journal.run(run_id))


def tick(config: Config, journal: Journal, run_id: str, item_id: str, ticked: bool, note: str = "") -> ItemState:
    """The operator ticks (or unticks) an item; journaled with who did it."""
    run = journal.run(run_id)
    items = {i.id: i for i in items_for(config, run)}
    if item_id not in items:
        raise KeyError(f"no checklist item {item_id!r} (items: {', '.join(items)})")
    journal.append(
        "checklist",
        run=run.run_id,
        env=run.env,
        data={
            "item": item_id,
            "ticked": ticked,
            "by": "operator",
            "evidence": note,
            "text": items[item_id].text,
        },
    )
    return next(s for s in state(config, journal.run(run_id)) if s.item.id == item_id)
