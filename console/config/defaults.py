"""The runbook's own tables, used where the config does not override them (the decision
matrix is the environment's profile's: console.matrix.matrix_of)."""

from __future__ import annotations

from console.config.model import ChecklistItem, Contact, EscalationLevel

CHECKLIST: tuple[ChecklistItem, ...] = (
    ChecklistItem("health", "Health endpoint responding (200 OK)", "health"),
    ChecklistItem("flags_in_logs", "Feature flags confirmed disabled in logs", "flags_in_logs"),
    ChecklistItem("no_errors", "No errors in last 100 log lines", "no_errors"),
    ChecklistItem("response_time", "Response times < 2 seconds", "response_time"),
    ChecklistItem("data", "Test recommendations returning data", "data"),
    ChecklistItem("dashboards", "Monitoring dashboards showing normal metrics"),
    ChecklistItem("alert_notified", "Alert channels notified of rollback", "notified"),
    ChecklistItem("incident_report", "Incident report created (if applicable)", "report"),
    ChecklistItem("rca", "Root cause analysis scheduled"),
)
CHECKS = ("health", "flags_in_logs", "no_errors", "response_time", "data", "notified", "report")

CONTACTS: tuple[Contact, ...] = (
    Contact("Lead Developer", "TBD", "TBD", "24/7"),
    Contact("DevOps", "TBD", "TBD", "Business hours"),
    Contact("DBA", "TBD", "TBD", "On-call"),
)

ESCALATION: tuple[EscalationLevel, ...] = (
    EscalationLevel(1, "Ops team attempts quick rollback (disable flags)", ("DevOps",)),
    EscalationLevel(2, "Contact on-call developer if rollback doesn't resolve", ("Lead Developer",)),
    EscalationLevel(3, "DBA involved if database issues persist", ("DBA",)),
    EscalationLevel(4, "Full team escalation for code rollback", ("Lead Developer", "DevOps", "DBA")),
)
