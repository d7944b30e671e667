"""Reading the service's log lines: the flag line, ERROR lines, best-times requests.

Lines are `[LEVEL] logger.name: message` or JSON `{"level","name","message"}`; the
flag line is matched anywhere in the line, as the runbook's grep does.
"""

from __future__ import annotations

import re

from console import safe_json
from console.flags import FlagSet
from console.journal.redact import Redactor
from console.probes.snapshot import LogReport

FLAG_LINE = re.compile(
    r"Feature flags - Advanced: (True|False), Time-weighting: (True|False), Content-type: (True|False)"
)
REQUEST_LINE = "Getting posting time metrics for channel"
_LEVEL = re.compile(r"^\s*\[(\w+)\]")
MAX_JSON_LINE = 1024 * 1024


def line_level(line: str) -> str | None:
    """The log level of a line, if it has one we recognise."""
    stripped = line.lstrip()
    if stripped.startswith("{"):
        try:  # bounded: a line nested 100 000 deep must not take the probe down
            record = safe_json.loads(stripped, max_bytes=MAX_JSON_LINE)
        except ValueError:
            return None
        level = record.get("level") if isinstance(record, dict) else None
        return str(level).upper() if level else None
    m = _LEVEL.match(line)
    return m.group(1).upper() if m else None


def is_error(line: str) -> bool:
    """The runbook counts lines matching `grep ERROR`; JSON levels are matched too."""
    return "ERROR" in line or line_level(line) in ("ERROR", "CRITICAL")


def latest_flags(lines: list[str] | tuple[str, ...]) -> tuple[FlagSet, str] | None:
    """The most recent "Feature flags" line and what it says."""
    for line in reversed(lines):
        m = FLAG_LINE.search(line)
        if m:
            a, t, c = (v == "True" for v in m.groups())
            return FlagSet(a, t, c), line
    return None


def summarize(lines: list[str], *, tail: int = 40) -> LogReport:
    errors = [line for line in lines if is_error(line)]
    # The lines a person will see go through the redactor (a DSN or token the service
    # logged must not reach a terminal, a JSON document or a screen); counting uses them raw.
    shown = Redactor()
    return LogReport(
        window=len(lines),
        error_lines=len(errors),
        error_samples=tuple(shown.text(line) for line in errors[-3:]),
        requests=sum(1 for line in lines if REQUEST_LINE in line),
        tail=tuple(shown.text(line) for line in lines[-tail:]),
    )
