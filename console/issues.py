"""The runbook's troubleshooting issues by id (the profile's [[troubleshooting]] ids): what a
failed step, a remedy or a validation names. Below the engine and the plans, which name
them; ``console.troubleshooting`` tells from live evidence whether each applies."""

from __future__ import annotations

ENV_NOT_TAKING_EFFECT = "env-not-taking-effect"
API_WONT_START = "api-wont-start"
DB_ROLLBACK_FAILS = "db-rollback-fails"
PARTIAL_ONLY_ONE_FLAG = "partial-only-one-flag"
ISSUES = {  # id -> (number in the runbook, title)
    ENV_NOT_TAKING_EFFECT: (1, "Environment changes not taking effect"),
    API_WONT_START: (2, "API won't start after rollback"),
    DB_ROLLBACK_FAILS: (3, "Database rollback fails"),
    PARTIAL_ONLY_ONE_FLAG: (4, "Partial rollback - only one flag changed"),
}
# Journals written before steps named their issue: the database steps, by step id.
OLDER_DATABASE_STEPS = ("db-inspect", "db-rollback", "db-keep")


def heading(issue: str) -> str:
    """How the runbook heads an issue: "Issue 2: API won't start after rollback"."""
    number, title = ISSUES[issue]
    return f"Issue {number}: {title}"
