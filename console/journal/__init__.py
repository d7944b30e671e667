"""The audit journal, and the history table and incident report made from it.

journal = Journal(config.journal_path, secrets=known_secrets(config))
journal.record_event(event, env="production")          # every runner Event but "output"
journal.append("run_finished", run=run_id, env="production", data={...})
await journal.append_async("note", run=run_id, data={...})  # the same, off the event loop
journal.verify()                                        # [] when the whole chain is intact
journal.verify_checkpointed()                           # the same, reading only what is new
history_markdown(journal.rows())                        # the runbook's table (from the run index)
incident_report(journal.run(run_id), checklist=config.checklist)
"""

from console.journal.chain import Problem
from console.journal.checkpoint import Verification
from console.journal.history import (
    format_date,
    format_duration,
    history_json,
    history_markdown,
    history_rows,
    history_text,
)
from console.journal.index import RunRow
from console.journal.records import EVENT_TYPES, RECORD_TYPES, ZERO_HASH, JournalError, record_hash
from console.journal.redact import REDACTED, Redactor, known_secrets
from console.journal.report import incident_report
from console.journal.runs import OUTCOMES, RunNotFound, RunSummary, pid_alive
from console.journal.store import Journal, RunRecorder
from console.journal.who import Who

__all__ = [
    "EVENT_TYPES",
    "OUTCOMES",
    "RECORD_TYPES",
    "REDACTED",
    "ZERO_HASH",
    "Journal",
    "JournalError",
    "Problem",
    "Redactor",
    "RunNotFound",
    "RunRecorder",
    "RunRow",
    "RunSummary",
    "Verification",
    "Who",
    "format_date",
    "format_duration",
    "history_json",
    "history_markdown",
    "history_rows",
    "history_text",
    "incident_report",
    "known_secrets",
    "pid_alive",
    "record_hash",
]
