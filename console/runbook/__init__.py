"""Runbook knowledge that works on live evidence: the decision matrix, the validations,
troubleshooting verdicts, the checklist, drills, authorization and who to call — each read
from the environment's service profile (console.profile), above the machinery it looks through."""
