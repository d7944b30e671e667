"""Verifying the hash chain without re-reading what was verified before.

A checkpoint beside the journal (``JOURNAL.verified``) remembers how far the chain was
found sound: the byte offset after the last verified record, that record's line, seq and
hash, and a digest of its line. The next verify reads only what follows it. Before it is
trusted, the checkpoint is checked against the journal: the file must still be at least
that long, and the line at the checkpoint must be byte for byte the record verified there.

So a prefix that was forged (a record changed and every hash after it recomputed, which no
full verify can see) or cut short is caught, and so is any edit that moves the checkpoint's
record. What an incremental verify does not see is a change inside the verified prefix that
keeps every byte offset and leaves the checkpoint's line alone (a same-length edit of an
older record): ``full=True`` (``history --verify --full``) reads everything again.

A checkpoint that does not match the journal is reported, and left as it is, until someone
who has looked into it removes the file. An unreadable one (not JSON, not a checkpoint) only
costs a full verify, which then writes a new one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console import files
from console.journal import sidecar
from console.journal.chain import ChainState, Problem, walk
from console.journal.records import iso, parse_line

SUFFIX = ".verified"
READ_CHUNK = 8 * 1024 * 1024
KIND = "rollback-console verify checkpoint"
VERSION = 1


class Verification(list[Problem]):
    """The problems found (empty: intact), and what was read to find them."""

    def __init__(self, problems: list[Problem], *, full: bool, trusted_lines: int = 0, verified_at: str | None = None,
                 bytes_read: int = 0, note: str = "") -> None:  # fmt: skip
        super().__init__(problems)
        self.full = full  # the whole file was read
        self.trusted_lines = trusted_lines  # lines 1..N verified before and not read again
        self.verified_at = verified_at  # when the checkpoint last moved on (ISO 8601)
        self.bytes_read = bytes_read
        self.note = note  # e.g. why a full verify was done

    def scope(self) -> str:
        """What "intact" covers, in words: empty after a full verify."""
        if self.full or not self.trusted_lines:
            return ""
        when = _date(self.verified_at)
        return (
            f"lines 1–{self.trusted_lines} were verified before (up to {when}) and not read again; "
            "what was appended since was checked now"
        )


def checkpoint_path(journal: Path) -> Path:
    return journal.with_name(journal.name + SUFFIX)


@dataclass(frozen=True)
class Checkpoint:
    state: ChainState  # after the last verified record
    line_digest: str  # of that record's line
    identity: list[int]  # the journal file it was made on
    known: list[Problem]  # torn lines the chain stepped over before it: reported every time
    at: str  # when it last moved on
    full_at: str | None  # when the whole file was last read

    def to_json(self) -> dict[str, Any]:
        s = self.state
        return {
            "version": VERSION,
            "state": [s.lines, s.offset, s.seq, s.hash, s.record_line, s.record_start, s.record_end],
            "line_digest": self.line_digest,
            "identity": self.identity,
            "known": [[p.line, p.kind, p.detail] for p in self.known],
            "at": self.at,
            "full_at": self.full_at,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> Checkpoint | None:
        if value is None or value.get("version") != VERSION:
            return None
        try:
            lines, offset, seq, hash_, record_line, record_start, record_end = value["state"]
            state = ChainState(
                _int(lines), _int(offset), _int(seq), _text(hash_), _int(record_line), _int(record_start),
                _int(record_end),
            )  # fmt: skip
            known = [Problem(_int(line), _text(kind), _text(detail)) for line, kind, detail in value["known"]]
            full_at = value.get("full_at")
            checkpoint = cls(
                state,
                _text(value["line_digest"]),
                [_int(v) for v in value["identity"]],
                known,
                _text(value["at"]),
                full_at if isinstance(full_at, str) else None,
            )
        except (KeyError, TypeError, ValueError):
            return None
        sound = state.record_start < state.record_end == state.offset if state.offset else state == ChainState()
        return checkpoint if sound else None


def verify(path: Path, *, full: bool = False, beat: Callable[[], None] = lambda: None) -> Verification:
    """Check the chain of the journal at ``path``: from its checkpoint, or (``full``, or no
    usable checkpoint) from the start. Moves the checkpoint on as far as the chain is sound.
    ``beat`` is called as reading makes progress (see store.py's stall guard)."""
    where = checkpoint_path(path)
    saved = sidecar.load(where, KIND)
    cp = Checkpoint.from_json(saved)
    try:
        fd = files.open_regular(path)
    except FileNotFoundError:
        return Verification([], full=True)
    with open(fd, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)  # no half-written append in what we read
        st = os.fstat(f.fileno())
        identity = sidecar.identity(st)
        mismatch, read = _against(f.fileno(), st.st_size, cp, where) if cp else (None, 0)
        incremental = cp is not None and not full and mismatch is None and cp.identity == identity
        start = cp.state if incremental and cp else ChainState()
        content = _read(f.fileno(), start.offset, st.st_size, beat)
    found = walk(content, start, beat)
    known = cp.known if incremental and cp else []
    problems = ([mismatch] if mismatch else []) + known + found.problems
    note = ""
    if cp is None and where.exists():
        note = f"the verify checkpoint {where} was unreadable: everything was verified again"
    elif cp is not None and not incremental and not full and mismatch is None:
        note = "the journal is not the file verified before (it was replaced): everything was verified again"
    if mismatch is None and (cp is None or not incremental or found.sound != cp.state):
        now = iso(datetime.now(UTC).timestamp())
        sound = found.sound
        if sound == start and cp is not None:
            digest = cp.line_digest
        else:
            digest = sidecar.digest(content[sound.record_start - start.offset : sound.record_end - start.offset])
        full_at = cp.full_at if incremental and cp else now
        moved = Checkpoint(sound, digest, identity, known + found.stepped_over, now, full_at)
        sidecar.save(where, KIND, moved.to_json())
    return Verification(
        problems,
        full=not incremental,
        trusted_lines=start.lines,
        verified_at=cp.at if incremental and cp else None,
        bytes_read=read + len(content),
        note=note,
    )


def whole(path: Path, beat: Callable[[], None] = lambda: None) -> Verification:
    """The chain of the whole file, checkpoint or not (which it neither reads nor moves)."""
    try:
        fd = files.open_regular(path)
    except FileNotFoundError:
        return Verification([], full=True)
    with open(fd, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        content = _read(f.fileno(), 0, os.fstat(f.fileno()).st_size, beat)
    return Verification(walk(content, beat=beat).problems, full=True, bytes_read=len(content))


def _read(fd: int, start: int, end: int, beat: Callable[[], None]) -> bytes:
    parts = []
    while start < end:
        part = os.pread(fd, min(READ_CHUNK, end - start), start)
        if not part:
            break
        parts.append(part)
        start += len(part)
        beat()
    return b"".join(parts)


def _against(fd: int, size: int, cp: Checkpoint, where: Path) -> tuple[Problem | None, int]:
    """Is the checkpoint's record still where it was verified? (problem or None, bytes read)"""
    state = cp.state
    when = _date(cp.at)
    if state.offset == 0:
        return None, 0
    if size < state.offset:
        return Problem(
            state.record_line,
            "removed",
            f"the journal is {size} bytes, shorter than the {state.offset} bytes verified up to {when} "
            f"(through seq {state.seq} on line {state.record_line}): records were cut from its end",
        ), 0
    raw = os.pread(fd, state.record_end - state.record_start, state.record_start)
    record = parse_line(raw.rstrip(b"\n"))
    if (
        sidecar.digest(raw) == cp.line_digest
        and record is not None
        and (record["seq"], record["hash"]) == (state.seq, state.hash)
    ):
        return None, len(raw)
    return Problem(
        state.record_line,
        "checkpoint",
        f"this line is not the record seq {state.seq} verified here up to {when} (hash {state.hash[:12]}…): "
        "the journal was changed before it (records edited and their hashes recomputed, or lines added "
        f"or removed), or its verify checkpoint {where} was. Once you know which, remove that file to "
        "verify afresh",
    ), len(raw)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(value)
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _date(value: str | None) -> str:
    if not value:
        return "an earlier verify"
    try:
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return "an earlier verify"
