"""The runbook's "Rollback History" table, from the journal's runs.

Markdown exactly as the runbook has it (paste it under "🔄 Rollback History"), a plain
text form for the terminal, and JSON for scripts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from console import safe_text
from console.journal.index import RunRow
from console.journal.runs import RunSummary

Run = RunSummary | RunRow  # a row (from the run index) is enough for every table

HEADER = ("Date", "Environment", "Reason", "Duration", "Outcome")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def format_date(when: datetime | None) -> str:
    """2025-11-21 03:14 UTC"""
    if when is None:
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_duration(seconds: float | None) -> str:
    """0.4s, 48s, 6m 12s, 1h 3m 5s ("-" for anything that is not a finite number of seconds).
    Under ten seconds with a tenth: a quick rollback of 0.4 s is not "0s"."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return "-"
    if 0 <= seconds < 9.95 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def history_rows(runs: Iterable[Run]) -> list[tuple[str, str, str, str, str]]:
    """(date, environment, reason, duration, outcome) per run, as people read them."""
    return [_row(r) for r in runs]


def _row(r: Run) -> tuple[str, str, str, str, str]:
    if isinstance(r, RunRow) and r.shown:
        return r.shown[0]  # a row of the index stands until its run changes: made once
    row = (
        format_date(r.started_at),
        r.env or "-",
        r.reason.strip() or "-",
        format_duration(r.duration_s),
        r.outcome_text(),
    )
    if isinstance(r, RunRow):
        r.shown.append(row)
    return row


def history_markdown(runs: Iterable[Run]) -> str:
    """The runbook's table, one row per run, oldest first."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|------|-------------|--------|----------|---------|",
    ]
    for row in history_rows(runs):
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    return safe_text.markdown("\n".join(lines)) + "\n"


def history_text(runs: Iterable[Run]) -> str:
    """Aligned columns for a terminal, with the run id and action that the runbook's table lacks."""
    runs = list(runs)
    if not runs:
        return "No rollback recorded in the journal yet.\n"
    header = ("Date", "Environment", "Action", "Reason", "Duration", "Outcome", "Run")
    rows = [
        tuple(safe_text.one_line(str(c), " / ") for c in (date, env, r.action or "-", reason, dur, outcome, r.run_id))
        for r, (date, env, reason, dur, outcome) in zip(runs, history_rows(runs), strict=True)
    ]
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in (header, *rows)]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"


def history_json(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """One JSON-able dict per run: the table's columns as shown, plus the raw values."""
    out = []
    for r in runs:
        d = r.to_dict()
        d.update(date=format_date(r.started_at), duration=format_duration(r.duration_s))
        out.append(d)
    return out


def _md_cell(text: str) -> str:
    # A "|" would end the cell and a newline the row: both break the table.
    return _NEWLINES.sub("<br>", text.replace("|", "\\|"))
