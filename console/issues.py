"""Troubleshooting issues by id (a profile's [[troubleshooting]] ids): what a failed step, a
remedy or a validation names. Their numbers, titles and fixes are the profile's (the plan
catalogue gives the engine a heading); ``console.troubleshooting`` tells from live
evidence whether each applies."""

from __future__ import annotations

ENV_NOT_TAKING_EFFECT = "env-not-taking-effect"
API_WONT_START = "api-wont-start"
DB_ROLLBACK_FAILS = "db-rollback-fails"
PARTIAL_ONLY_ONE_FLAG = "partial-only-one-flag"
# Journals written before steps named their issue: the database steps, by step id.
OLDER_DATABASE_STEPS = ("db-inspect", "db-rollback", "db-keep")
