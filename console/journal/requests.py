"""A production run waiting for a second person: its request, and what became of it.

The records of one run id, in journal order:

    run_requested   requester, plan, the confirmed preview, expires_at    → pending
    run_approved    approver                               pending        → approved
    run_rejected    by, reason                             pending        → rejected
    run_withdrawn   by, reason                             pending|approved → withdrawn
    run_expired     expires_at                             pending|approved → expired

A closed request (rejected, withdrawn, expired) stays closed: a record after it changes
nothing. A request past its expiry reads "expired" even before anyone journals that: an
old approval never starts a rollback hours later. An approved request runs only when its
requester starts it (the console asks; ``start RUN_ID`` on the command line): approval
alone never runs anything. Once ``run_started`` carries the id, it is a run, not a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from console.journal.records import parse_ts

REQUEST_TYPES = ("run_requested", "run_approved", "run_rejected", "run_withdrawn", "run_expired")
OPEN = ("pending", "approved")
CLOSED = ("rejected", "withdrawn", "expired")
_MOVES = {  # record type -> (the states it may leave, the state it leads to)
    "run_approved": (("pending",), "approved"),
    "run_rejected": (("pending",), "rejected"),
    "run_withdrawn": (OPEN, "withdrawn"),
    "run_expired": (OPEN, "expired"),
}


@dataclass(frozen=True)
class RequestState:
    run_id: str
    env: str | None
    status: str  # pending | approved | rejected | withdrawn | expired
    requester: str
    requested_at: datetime | None
    expires_at: datetime | None
    approver: str | None = None
    approved_at: datetime | None = None
    by: str | None = None  # who rejected or withdrew it
    reason: str = ""  # why it was rejected or withdrawn
    at: datetime | None = None  # when it was closed
    journaled: bool = True  # False: past its expiry, but no run_expired record yet
    data: dict[str, Any] | None = None  # the run_requested record's data

    @property
    def open(self) -> bool:
        return self.status in OPEN

    @property
    def title(self) -> str:
        plan = (self.data or {}).get("plan")
        return str(plan.get("title") if isinstance(plan, dict) and plan.get("title") else self.action)

    @property
    def action(self) -> str:
        return str((self.data or {}).get("action") or "run")

    @property
    def request_reason(self) -> str:
        return str((self.data or {}).get("reason") or "")

    @property
    def drill(self) -> bool:
        return bool((self.data or {}).get("drill"))

    @property
    def preview_text(self) -> str:
        preview = (self.data or {}).get("preview")
        return str(preview.get("text") or "") if isinstance(preview, dict) else ""

    @property
    def preview_digest(self) -> str | None:
        preview = (self.data or {}).get("preview")
        digest = preview.get("digest") if isinstance(preview, dict) else None
        return digest if isinstance(digest, str) else None

    def seconds_left(self, now: float) -> float | None:
        """Until it lapses; None: it never does (a request journaled without an expiry)."""
        return None if self.expires_at is None else self.expires_at.timestamp() - now

    def describe(self) -> str:
        """What became of it, in the history's words."""
        if self.status == "pending":
            until = f" until {_clock(self.expires_at)}" if self.expires_at else ""
            return f"awaiting approval{until}"
        if self.status == "approved":
            return f"approved by {self.approver or '?'}, not started (waits for {self.requester})"
        if self.status == "rejected":
            return f"rejected by {self.by or '?'}" + (f": {self.reason}" if self.reason else "")
        if self.status == "withdrawn":
            return f"withdrawn by {self.by or '?'}" + (f": {self.reason}" if self.reason else "")
        return f"expired {_clock(self.at or self.expires_at)} (no one started it in time)"


def request_state(run_id: str, records: list[dict[str, Any]], now: float) -> RequestState | None:
    """The request of ``run_id`` as its records (in journal order) leave it at ``now``;
    None when the run was not requested."""
    requested = next((r for r in records if r.get("type") == "run_requested"), None)
    if requested is None:
        return None
    data = requested.get("data") if isinstance(requested.get("data"), dict) else {}
    who = requested.get("who") if isinstance(requested.get("who"), dict) else {}
    requester = _text(data.get("requester")) or _text(who.get("user")) or "?"
    expires_at = parse_ts(data.get("expires_at"))
    state: dict[str, Any] = {"status": "pending"}
    for r in records:
        move = _MOVES.get(str(r.get("type")))
        if move is None or state["status"] not in move[0]:
            continue
        d = r.get("data") if isinstance(r.get("data"), dict) else {}
        user = _text((r.get("who") or {}).get("user")) if isinstance(r.get("who"), dict) else None
        when = parse_ts(r.get("ts"))
        state["status"] = move[1]
        if move[1] == "approved":
            state.update(approver=_text(d.get("approver")) or user, approved_at=when)
        else:
            state.update(by=_text(d.get("by")) or user, reason=_text(d.get("reason")) or "", at=when)
    journaled = True
    if state["status"] in OPEN and expires_at is not None and now >= expires_at.timestamp():
        state.update(status="expired", at=expires_at)
        journaled = False
    return RequestState(
        run_id=run_id,
        env=_text(requested.get("env")),
        requester=requester,
        requested_at=parse_ts(requested.get("ts")),
        expires_at=expires_at,
        journaled=journaled,
        data=data,
        **state,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _clock(when: datetime | None) -> str:
    return "?" if when is None else when.astimezone(UTC).strftime("%H:%M UTC")
