"""The record format: canonical JSON, the hash, timestamps, parsing one line."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, get_args

from console import safe_json
from console.events import EventKind

ZERO_HASH = "0" * 64


class JournalError(RuntimeError):
    """The journal cannot be written or read; the message names the file and the reason."""


# What the engine writes: the runner's Event kinds, but "output" (a step's record carries it).
EVENT_TYPES: tuple[str, ...] = tuple(k for k in get_args(EventKind) if k != "output")
RECORD_TYPES = (
    *EVENT_TYPES,
    "run_requested",  # a production run waiting for a second person (see requests.py)
    "run_approved",
    "run_rejected",  # a second person said no
    "run_withdrawn",  # its requester (or someone with a reason) took it back
    "run_expired",  # it lapsed before anyone started it
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


# A record longer than this is not one the journal wrote (strings are bounded at append).
MAX_RECORD_BYTES = 4 * 1024 * 1024
MAX_RECORD_DEPTH = 32
_OPTIONAL_STR = ("run", "env")


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """A record, or None when the line is not one (bad JSON, torn, too big or too deep,
    not a record's shape). Never raises: the journal is shared, and any line may be hostile."""
    try:
        record = load_record(raw)
    except safe_json.JSONLimitError:
        return None
    return record if isinstance(record, dict) and _is_record(record) else None


def load_record(raw: bytes) -> Any:
    """The line's JSON value within the journal's limits; JSONLimitError saying why not."""
    return safe_json.loads(raw, max_bytes=MAX_RECORD_BYTES, max_depth=MAX_RECORD_DEPTH)


def _is_record(record: dict[str, Any]) -> bool:
    if not _is_int(record.get("seq")):
        return False
    if not all(isinstance(record.get(k), str) for k in ("hash", "prev", "type")):
        return False
    if not all(record.get(k) is None or isinstance(record.get(k), str) for k in _OPTIONAL_STR):
        return False
    if "ts" in record and not isinstance(record["ts"], str):
        return False
    if record.get("data") is not None and not isinstance(record["data"], dict):
        return False
    who = record.get("who")
    if who is not None:
        if not isinstance(who, dict):
            return False
        pid = who.get("pid")
        if pid is not None and not (_is_int(pid) and 0 <= pid < 2**31):  # a pid_t
            return False
        if any(who.get(k) is not None and not isinstance(who[k], str) for k in ("user", "host", "ssh_client")):
            return False
    return True


def _is_int(value: Any) -> bool:
    # bool is an int to Python, not to the journal; a pid or seq beyond 64 bits is no pid or seq.
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
