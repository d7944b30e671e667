"""What the config's own tables may say. The runbook's tables (decision matrix, checklist,
contacts, escalation) are the environment's profile's unless the config has its own."""

from __future__ import annotations

CHECKS = ("health", "flags_in_logs", "no_errors", "response_time", "data", "notified", "report")
