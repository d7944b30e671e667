"""The record format: canonical JSON, the hash, timestamps, parsing one line."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

ZERO_HASH = "0" * 64


class JournalError(RuntimeError):
    """The journal cannot be written or read; the message names the file and the reason."""


# What the engine writes; record_event() adds the runner's Event kinds (except "output").
EVENT_TYPES = (
    "run_started",
    "step_started",
    "step_intent",
    "step_finished",
    "step_failed",
    "decision",
    "validation",
    "run_finished",
    "note",
)
RECORD_TYPES = (
    *EVENT_TYPES,
    "run_requested",
    "run_approved",
    "checklist",
    "notified",
    "notify_failed",
    "lock_broken",
    "lock_intent",  # a run is about to take its environment's lock (written before it does)
    "lock_taken_over",  # a run took over the lock of a holder whose process is provably gone
    "run_refused",  # refused before it changed anything: an audit record, not a run
    "report_written",
    "drill_started",
    "drill_scored",
)


def canonical(record: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, ASCII: the same bytes whoever re-serializes the record."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def iso(ts: float) -> str:
    """ISO-8601 UTC with microseconds, e.g. 2025-11-21T03:14:15.123456Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """A record, or None when the line is not one (bad JSON, torn, not a record)."""
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("seq"), int)
        or not isinstance(record.get("hash"), str)
        or not isinstance(record.get("prev"), str)
        or not isinstance(record.get("type"), str)
    ):
        return None
    return record
