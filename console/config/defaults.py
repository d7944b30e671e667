"""The runbook's own tables, used where the config does not override them (the decision
matrix is the environment's profile's: console.matrix.matrix_of)."""

from __future__ import annotations

from console.config.model import Contact, EscalationLevel

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
