"""The audit journal, and the history table and incident report made from it.

journal = Journal(config.journal_path, secrets=known_secrets(config))
journal.record_event(event, env="production")          # every runner Event but "output"
journal.append("run_finished", run=run_id, env="production", data={...})
await journal.append_async("note", run=run_id, data={...})  # the same, off the event loop
journal.verify()                                        # [] when the whole chain is intact
journal.verify_checkpointed()                           # the same, reading only what is new
history_markdown(journal.rows())                        # the runbook's table (from the run index)
incident_report(journal.run(run_id), checklist=checklist_of(config, env))

The names below load with the first use of their module: a command that only appends to
the journal does not load the history table or the incident report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from console import lazy

_WHERE = {
    "Problem": "chain",
    "Verification": "checkpoint",
    "RunRow": "index",
    "format_date": "history",
    "format_duration": "history",
    "history_json": "history",
    "history_markdown": "history",
    "history_rows": "history",
    "history_text": "history",
    "EVENT_TYPES": "records",
    "RECORD_TYPES": "records",
    "ZERO_HASH": "records",
    "JournalError": "records",
    "record_hash": "records",
    "REDACTED": "redact",
    "Redactor": "redact",
    "known_secrets": "redact",
    "incident_report": "report",
    "OUTCOMES": "runs",
    "RunNotFound": "runs",
    "RunSummary": "runs",
    "pid_alive": "runs",
    "Journal": "store",
    "RunRecorder": "store",
    "Who": "who",
}

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


__getattr__, __dir__ = lazy.exports(__name__, _WHERE)


if TYPE_CHECKING:
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
