"""What a failed step is evidence of: a troubleshooting *fact* (console.profile.vocabulary.FACTS).
The runner names the profile's issue for it — its id and its heading ("Issue 2: …") —
through the plan catalogue; ``console.runbook.troubleshooting`` tells from live evidence whether
each of the profile's issues applies."""

from __future__ import annotations

STALE_PROCESS = "stale_process"  # the restarted process still has the old flags
RESTART_FAILED = "restart_failed"  # the service did not come back
DB_ROLLBACK_FAILED = "db_rollback_failed"  # a database step failed
# Journals written before steps named their issue: the database steps, by step id.
OLDER_DATABASE_STEPS = ("db-inspect", "db-rollback", "db-keep")
