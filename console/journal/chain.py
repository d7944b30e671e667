"""Checking the hash chain: what was edited, removed, reordered, damaged or torn, and where.

Each problem is reported once, at the line where it shows: a swapped pair of lines is one
"reordered", not a cascade of broken links. Removing the *last* records cannot be seen
from the file alone (nothing follows them); everything else can.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.journal.records import ZERO_HASH, load_record, parse_line, record_hash
from console.safe_json import JSONLimitError

_RECORD_START = b'{"seq":'  # how every line the journal writes begins


@dataclass(frozen=True)
class Problem:
    """Something ``Journal.verify()`` found wrong, at a 1-based line of the file."""

    line: int
    kind: str  # edited | removed | reordered | duplicate | bad_json | torn
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class ChainState:
    """Where a walk along the chain stands: after ``lines`` lines (``offset`` bytes), the last
    good record being ``seq`` with ``hash`` on line ``record_line``, whose line spans
    ``record_start``–``record_end``. A verify checkpoint is one of these."""

    lines: int = 0
    offset: int = 0
    seq: int = 0
    hash: str = ZERO_HASH
    record_line: int = 0
    record_start: int = 0
    record_end: int = 0


@dataclass
class Walk:
    """What a walk found: the problems, and the state after the last record that left the
    chain sound (``sound``: no problem before it but torn lines the chain stepped over)."""

    problems: list[Problem]
    sound: ChainState
    stepped_over: list[Problem]  # torn lines before ``sound``: crash leftovers, not damage


def verify_lines(content: bytes) -> list[Problem]:
    """The problems in a journal file's bytes; empty when the chain is intact."""
    return walk(content).problems


BEAT_EVERY = 2048  # lines: how often a long walk says it is still making progress


def walk(content: bytes, start: ChainState | None = None, beat: Callable[[], None] = lambda: None) -> Walk:
    """Check ``content`` — the whole file, or (``start``) what follows a verified prefix.
    ``beat`` is called as the walk makes progress (the stall guard tells slow from hung)."""
    start = start or ChainState()
    if not content:
        return Walk([], start, [])
    lines = content.split(b"\n")
    unterminated = not content.endswith(b"\n")
    if not unterminated:
        lines.pop()  # the empty string after the final newline
    parsed = []
    for n, raw in enumerate(lines, start.lines + 1):
        parsed.append((n, raw, parse_line(raw)))
        if n % BEAT_EVERY == 0:
            beat()
    present = {rec["seq"] for _, _, rec in parsed if rec is not None}
    last_line = start.lines + len(lines)

    problems: list[Problem] = []
    prev_hash, prev_seq, prev_line = start.hash, start.seq, start.record_line
    seen: dict[int, int] = {}
    bad: list[tuple[int, bytes]] = []  # unparseable lines since the last good record
    sound, stepped = start, 0
    offset = start.offset
    clean, judged = True, 0  # no problem so far but torn lines stepped over; problems looked at

    for n, raw, rec in parsed:
        line_start, offset = offset, offset + len(raw) + 1
        if n % BEAT_EVERY == 0:
            beat()
        if rec is None:
            if n == last_line and unterminated:
                problems.append(
                    Problem(
                        n,
                        "torn",
                        f"incomplete last record ({len(raw)} bytes): a crash mid-write; "
                        "the next append starts a fresh line",
                    )
                )
            else:
                bad.append((n, raw))
            continue
        seq = rec["seq"]
        chains = rec["prev"] == prev_hash and seq == prev_seq + 1
        damaged = _report_bad_lines(bad, chains, problems)
        bad = []

        if record_hash(rec) != rec["hash"]:
            problems.append(
                Problem(n, "edited", f"record seq {seq} does not match its hash: it was changed after it was written")
            )
        if seq in seen:
            problems.append(Problem(n, "duplicate", f"seq {seq} is already at line {seen[seq]}"))
        elif seq < prev_seq:
            problems.append(Problem(n, "reordered", f"seq {seq} comes after seq {prev_seq} (line {prev_line})"))
        elif seq > prev_seq + 1:
            missing = [s for s in range(prev_seq + 1, seq) if s not in present]
            # Damaged lines account for records that are there but unreadable; records
            # that are elsewhere in the file are reported where they are (reordered).
            if len(missing) > damaged:
                where = "at the start of the journal" if prev_line == 0 else f"after line {prev_line}"
                problems.append(
                    Problem(n, "removed", f"{len(missing)} record(s) missing {where} (seq {_span(missing)})")
                )
        elif rec["prev"] != prev_hash:
            if prev_line == 0:
                detail = "the first record does not start the chain (prev is not 64 zeros)"
            else:
                detail = (
                    f"does not chain to line {prev_line} (seq {prev_seq}): "
                    "one of them was edited and its hash recomputed"
                )
            problems.append(Problem(n, "edited", detail))
        seen.setdefault(seq, n)
        prev_hash, prev_seq, prev_line = rec["hash"], seq, n
        clean = clean and all(p.kind == "torn" for p in problems[judged:])
        judged = len(problems)
        if clean:
            sound = ChainState(n, offset, seq, rec["hash"], n, line_start, offset)
            stepped = len(problems)

    _report_bad_lines(bad, None, problems)
    stepped_over = problems[:stepped]
    problems.sort(key=lambda p: p.line)
    return Walk(problems, sound, stepped_over)


def _report_bad_lines(bad: list[tuple[int, bytes]], chains: bool | None, problems: list[Problem]) -> int:
    """Report unparseable lines; return how many look like damaged records (not torn).

    A line the next record chains over was never part of the chain: a torn write that a
    later append stepped past. One the chain breaks at was a record, now damaged."""
    damaged = 0
    for n, raw in bad:
        if not raw.strip():
            problems.append(Problem(n, "bad_json", "blank line"))
        elif raw.startswith(_RECORD_START) and chains is not False and _cut_short(raw):
            problems.append(
                Problem(n, "torn", f"incomplete record ({len(raw)} bytes) left by a crash mid-write; the chain goes on")
            )
        else:
            damaged += 1
            problems.append(Problem(n, "bad_json", f"not a journal record ({_why(raw)}): damaged or edited"))
    return damaged


def _cut_short(raw: bytes) -> bool:
    """The start of a record a crash cut off (not a whole line that is wrong)."""
    try:
        load_record(raw)
    except JSONLimitError as exc:
        return exc.cut_short
    return False


def _why(raw: bytes) -> str:
    try:
        value: Any = load_record(raw)
    except JSONLimitError as exc:
        return str(exc)
    return "JSON, but not a record" if not isinstance(value, dict) else "JSON, but not a record's fields and types"


def _span(seqs: list[int]) -> str:
    return str(seqs[0]) if len(seqs) == 1 else f"{seqs[0]}–{seqs[-1]}"
