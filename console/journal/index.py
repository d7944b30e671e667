"""The run index: which lines of the journal belong to which run, and each run's history row,
kept current by reading only what was appended since the last look.

It lives in memory (a console keeps one for its whole session, and each probe round costs
a ``stat``) and in a file beside the journal, ``JOURNAL.index``, so that a fresh ``history``
or ``report`` process starts from it instead of reading years of records — and reads only
the part of it that it shows (the newest runs, one run: pages.py). The file is a
cache: it names the journal it was made from (device and inode), how far it got (a byte
offset), and the first and last lines it read (their digests). Whenever the journal no
longer matches — replaced, truncated, rewritten — or the file is unreadable, the index
starts over from the journal. It holds no record: a run's records are read from the
journal by their offsets, and its summary is made from them (runs.py) each time it
changes. A row is kept only for a run whose outcome no longer depends on the clock (one
that finished, or a request decided); running, interrupted, pending and approved ones are
summarized when asked, as a process may have died or a request lapsed since.
"""

from __future__ import annotations

import os
import threading
import time
from array import array
from bisect import bisect_left, insort
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from console import files
from console.journal import sidecar
from console.journal.chain import BEAT_EVERY
from console.journal.records import JournalError, parse_line
from console.journal.runs import NOT_A_RUN, STALE_AFTER_S, RunSummary, summarize

SUFFIX = ".index"
KIND = "rollback-console run index"
VERSION = 2  # 2: line by line, newest runs last, a table of ids (pages.py)
READ_CHUNK = 8 * 1024 * 1024
SAVE_AFTER_BYTES = 256 * 1024  # newly indexed bytes worth writing the file for
CACHED_RUNS = 64  # runs whose records stay in memory (the latest ones, mostly)
# outcomes that depend on the clock and on processes (a request lapses at its expiry)
_OPEN = ("running", "interrupted", "pending", "approved")


@dataclass(frozen=True)
class RunRow:
    """A run as the history table shows it, made from its summary, without its records."""

    run_id: str
    env: str | None
    action: str | None
    reason: str
    started_at: datetime | None
    duration_s: float | None
    outcome: str
    drill: bool
    summary: dict[str, Any]  # RunSummary.to_dict(): what `history --json` prints
    # What the history table shows of it, once made (history.py): a row is shown often.
    shown: list[tuple[str, str, str, str, str]] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def of(cls, run: RunSummary) -> RunRow:
        return cls(
            run.run_id,
            run.env,
            run.action,
            run.reason,
            run.started_at,
            run.duration_s,
            run.outcome,
            run.drill,
            run.to_dict(),
        )

    @property
    def title(self) -> str:
        return str(self.summary.get("title") or "")

    def outcome_text(self) -> str:
        return str(self.summary.get("outcome_text") or self.outcome)

    def approved_by(self) -> str | None:
        value = self.summary.get("approved_by")
        return value if isinstance(value, str) else None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.summary)

    def to_json(self) -> list[Any]:
        return [self.summary, self.duration_s]

    @classmethod
    def from_json(cls, value: Any) -> RunRow:
        summary, duration = value
        started = summary["started_at"]
        return cls(
            _str(summary["run_id"]),
            _opt_str(summary["env"]),
            _opt_str(summary["action"]),
            _str(summary["reason"]),
            datetime.fromisoformat(started) if started is not None else None,
            float(duration) if duration is not None else None,
            _str(summary["outcome"]),
            bool(summary["drill"]),
            summary,
        )


class _Run:
    """One run id: the offsets of its lines, and its row (None: not a run, or not yet made)."""

    __slots__ = ("final", "row", "spans")

    def __init__(self) -> None:
        self.spans = array("q")  # offset, length, offset, length, … in file order
        self.row: RunRow | None = None
        self.final = False  # the row stands until a new record of the run arrives


@dataclass(frozen=True)
class Page:
    """The newest runs of one kind (oldest first, as the table reads), and how many there are."""

    rows: list[RunRow]
    total: int  # runs of that kind in the journal, shown or not

    @property
    def older(self) -> int:
        """Runs of that kind older than the page (not shown)."""
        return self.total - len(self.rows)


def _key(row: RunRow) -> tuple[bool, float, str]:
    # summarize()'s order: by start (runs without one last), then run id.
    return (row.started_at is None, row.started_at.timestamp() if row.started_at else 0.0, row.run_id)


class RunIndex:
    """The runs of the journal at ``path``. Thread-safe: the console reads it on its event
    loop while a worker thread brings it up to date."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.with_name(path.name + SUFFIX)
        self.lock = threading.RLock()
        self._records: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()  # a cache, newest last
        self._loaded = False  # the index file was looked at
        self.beat = time.monotonic()  # last sign of progress (a hung filesystem shows none)
        self.rebuilds = 0  # times it started over (the journal was replaced, cut or rewritten)
        self._reset()

    @property
    def loaded(self) -> bool:
        """The index file was read into memory (this process keeps the whole index)."""
        return self._loaded

    def invalidate(self) -> None:
        """Forget everything: the next refresh reads the journal from its start."""
        with self.lock:
            self._reset()
            self.rebuilds += 1

    def _reset(self) -> None:
        self.identity: list[int] | None = None
        self.offset = 0  # bytes of complete lines indexed
        self.lines = 0
        self.head: list[Any] | None = None  # [length, digest] of the first line
        self.tail: list[Any] | None = None  # [start, digest] of the last line indexed
        self.last_seq: int | None = None
        self.bad_lines: list[int] = []  # 1-based lines that are not records
        self.runs: dict[str, _Run] = {}
        self.loose: dict[str, array] = {}  # record type → spans, for records of no run
        self.order: list[tuple[tuple[bool, float, str], str]] = []  # (key, run id), ascending
        self.counts: Counter[tuple[str | None, bool]] = Counter()  # rows by (env, drill)
        self.saved_offset = 0
        self.generation = 0  # counts changes: what was made from one state is kept till the next
        self._rows: dict[tuple[str | None, bool], tuple[int, list[RunRow], list[int]]] = {}
        self._records.clear()

    # --- bringing it up to date ---------------------------------------------------------------
    def refresh(self) -> bool:
        """Read what was appended since the last look; True if anything changed. Starts over
        if the journal was replaced, truncated or rewritten. OSError as reading does."""
        with self.lock:
            if not self._loaded:
                self._loaded = True
                self._load_file()
                self.beat = time.monotonic()
            try:
                fd = files.open_regular(self.path)
            except FileNotFoundError:
                changed = self.offset > 0 or self.identity is not None
                if changed:
                    self._reset()
                return changed
            try:
                st = os.fstat(fd)
                if not self._matches(fd, st):
                    self.invalidate()
                self.identity = sidecar.identity(st)
                changed = st.st_size > self.offset and self._read_new(fd, st.st_size)
            finally:
                os.close(fd)
            if self.offset - self.saved_offset >= SAVE_AFTER_BYTES or (self.saved_offset == 0 and self.offset):
                self.save()
            return changed

    def _matches(self, fd: int, st: os.stat_result) -> bool:
        """Is this still the file indexed so far (same file, nothing cut or rewritten)?"""
        if self.offset == 0:
            return True
        if sidecar.identity(st) != self.identity or st.st_size < self.offset:
            return False
        assert self.head is not None and self.tail is not None
        length, head = self.head
        start, tail = self.tail
        return (
            sidecar.digest(os.pread(fd, length, 0)) == head
            and sidecar.digest(os.pread(fd, self.offset - start, start)) == tail
        )

    def _read_new(self, fd: int, size: int) -> bool:
        touched: dict[str, list[dict[str, Any]]] = {}
        changed = False
        while self.offset < size:
            data = os.pread(fd, min(READ_CHUNK, size - self.offset), self.offset)
            self.beat = time.monotonic()
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) < READ_CHUNK:
                    break  # a partial last line: it waits for its newline
                data = os.pread(fd, size - self.offset, self.offset)  # one line longer than a chunk
                end = data.rfind(b"\n")
                if end < 0:
                    break
            self._index_lines(data[: end + 1], touched)
            changed = True
            self.generation += 1
            self._summarize(touched)
            touched.clear()
        return changed

    def _index_lines(self, data: bytes, touched: dict[str, list[dict[str, Any]]]) -> None:
        offset = tail = self.offset
        for raw in data[:-1].split(b"\n"):
            self.lines += 1
            if self.lines % BEAT_EVERY == 0:  # parsing a big chunk is progress too (the stall guard)
                self.beat = time.monotonic()
            length = len(raw) + 1
            if self.lines == 1:
                self.head = [length, sidecar.digest(raw + b"\n")]
            record = parse_line(raw)
            if record is None:
                if raw.strip():
                    self.bad_lines.append(self.lines)
            else:
                self.last_seq = record["seq"]
                run_id = record.get("run")
                if isinstance(run_id, str) and run_id:
                    entry = self.runs.get(run_id)
                    if entry is None:
                        entry = self.runs[run_id] = _Run()
                        touched[run_id] = []  # a new run: nothing earlier to read back
                    elif run_id not in touched:
                        touched[run_id] = self._earlier(run_id, entry)
                    entry.spans.extend((offset, length))
                    touched[run_id].append(record)
                else:
                    self.loose.setdefault(str(record["type"]), array("q")).extend((offset, length))
            tail = offset
            offset += length
        self.tail = [tail, sidecar.digest(data[tail - self.offset :])]
        self.offset = offset

    def _earlier(self, run_id: str, entry: _Run) -> list[dict[str, Any]]:
        """A run's records indexed so far: from memory, else from the journal."""
        records = self._records.pop(run_id, None)
        return records if records is not None else _read_spans(self.path, entry.spans, run_id)

    def _summarize(self, touched: dict[str, list[dict[str, Any]]]) -> None:
        for i, (run_id, records) in enumerate(touched.items(), 1):
            if i % 256 == 0:
                self.beat = time.monotonic()
            entry = self.runs[run_id]
            self._remember(run_id, records)
            if entry.row is not None:
                self._unorder(entry.row)
                self.counts[(entry.row.env, entry.row.drill)] -= 1
            if all(r["type"] in NOT_A_RUN for r in records):
                entry.row, entry.final = None, True
                continue
            run = summarize(records)[0]
            entry.row = RunRow.of(run)
            entry.final = run.outcome not in _OPEN
            insort(self.order, (_key(entry.row), run_id))
            self.counts[(entry.row.env, entry.row.drill)] += 1

    def _unorder(self, row: RunRow) -> None:
        i = bisect_left(self.order, (_key(row), row.run_id))
        if i < len(self.order) and self.order[i][1] == row.run_id:
            del self.order[i]

    def _remember(self, run_id: str, records: list[dict[str, Any]]) -> None:
        self._records[run_id] = records
        self._records.move_to_end(run_id)
        while len(self._records) > CACHED_RUNS:
            self._records.popitem(last=False)

    # --- asking it (call refresh() first; these read the journal only for records) -------------
    def records_of(self, run_id: str) -> list[dict[str, Any]]:
        """Every record carrying ``run_id`` (runs or not: lock intents, refusals), in file order."""
        with self.lock:
            entry = self.runs.get(run_id)
            if entry is None:
                return []
            records = self._records.get(run_id)
            if records is None:
                records = _read_spans(self.path, entry.spans, run_id)
                self.beat = time.monotonic()
            self._remember(run_id, records)
            return list(records)

    def loose_records(self, type: str) -> list[dict[str, Any]]:
        """Records of ``type`` that belong to no run (drill scorecards, escalations)."""
        with self.lock:
            return _read_spans(self.path, self.loose.get(type, array("q")), None)

    def run_ids(self) -> list[str]:
        """Run ids (runs only), in summarize()'s order."""
        with self.lock:
            return [run_id for _, run_id in self.order]

    def rows(self, env: str | None = None, drills: bool = False, *, now: float | None = None) -> list[RunRow]:
        """The history table's runs, oldest first. When nothing changed since the last call
        this is a copy of the same list, but for runs whose outcome depends on the clock
        (running or interrupted ones, summarized anew)."""
        with self.lock:
            made = self._rows.get((env, drills))
            if made is None or made[0] != self.generation:
                rows = [
                    row
                    for _, run_id in self.order
                    if (row := self.runs[run_id].row) is not None
                    and row.drill == drills
                    and (env is None or row.env == env)
                ]
                open_ = [i for i, row in enumerate(rows) if not self.runs[row.run_id].final]
                made = self._rows[(env, drills)] = (self.generation, rows, open_)
            rows = list(made[1])
            for i in made[2]:
                rows[i] = RunRow.of(self.summary(rows[i].run_id, now=now))
            return rows

    def page(
        self, env: str | None = None, drills: bool = False, limit: int | None = None, *, now: float | None = None
    ) -> Page:
        """The newest ``limit`` runs of the kind (all: None), oldest first, walking back from
        the newest: a page costs its rows, however many runs the journal holds."""
        with self.lock:
            if limit is None:
                rows = self.rows(env, drills, now=now)
                return Page(rows, len(rows))
            out: list[RunRow] = []
            for _, run_id in reversed(self.order):
                if len(out) >= limit:
                    break
                entry = self.runs[run_id]
                row = entry.row
                assert row is not None
                if row.drill == drills and (env is None or row.env == env):
                    out.append(row if entry.final else RunRow.of(self.summary(run_id, now=now)))
            out.reverse()
            return Page(out, count(self.counts, env, drills))

    def summary(self, run_id: str, *, stale_after_s: float = STALE_AFTER_S, now: float | None = None) -> RunSummary:
        """The run's summary from its records (KeyError: no such run)."""
        with self.lock:
            if self.runs[run_id].row is None:
                raise KeyError(run_id)
            return summarize(self.records_of(run_id), stale_after_s=stale_after_s, now=now)[0]

    def summaries(self, env: str | None, drills: bool) -> list[RunSummary]:
        with self.lock:
            return [self.summary(r.run_id) for r in self.rows(env, drills)]

    def latest(self, env: str | None = None, drills: bool = False) -> RunSummary | None:
        """The run that started last (of ``env``), with its records."""
        with self.lock:
            for _, run_id in reversed(self.order):
                row = self.runs[run_id].row
                assert row is not None
                if row.drill == drills and (env is None or row.env == env):
                    return self.summary(run_id)
            return None

    def open_runs(self, drills: bool, stale_after_s: float) -> list[RunSummary]:
        """Runs that never finished, summarized now (running, interrupted)."""
        with self.lock:
            out = []
            for _, run_id in self.order:
                entry = self.runs[run_id]
                if not entry.final and entry.row is not None and entry.row.drill == drills:
                    out.append(self.summary(run_id, stale_after_s=stale_after_s))
            return out

    # --- the file beside the journal -------------------------------------------------------------
    def save(self) -> bool:
        """Write the index file (a cache: failing to is no error)."""
        from console.journal import pages

        with self.lock:
            if self.offset == 0 or self.identity is None:
                return False
            self.saved_offset = self.offset  # tried: not again before as much again is new
            return sidecar.save_bytes(self.file, pages.encode(self))

    def _load_file(self) -> None:
        """Start from the index file if it is sound; refresh() then checks it against the journal."""
        from console.journal import pages

        loaded = pages.load(self.file)
        if loaded is None:
            return  # missing, or not an index this version wrote: start over from the journal
        state, runs, loose = loaded
        self.identity, self.offset, self.lines, self.head, self.tail, self.last_seq, self.bad_lines = state
        self.runs, self.loose = runs, loose
        self.order = sorted((_key(e.row), run_id) for run_id, e in runs.items() if e.row is not None)
        self.counts = Counter((e.row.env, e.row.drill) for e in runs.values() if e.row is not None)
        self.saved_offset = self.offset


def count(
    counts: Counter[tuple[str | None, bool]] | dict[tuple[str | None, bool], int], env: str | None, drills: bool
) -> int:
    """Rows of ``env`` (any: None) that are drills or not, from counts by (env, drill)."""
    return sum(n for (e, d), n in counts.items() if d == drills and (env is None or e == env))


def _read_spans(path: Path, spans: Iterable[int], run_id: str | None) -> list[dict[str, Any]]:
    """The records at ``spans`` (offset, length pairs), which must all be of ``run_id``."""
    spans = list(spans)
    if not spans:
        return []
    try:
        fd = files.open_regular(path)
    except OSError as exc:
        raise JournalError(f"cannot read the audit journal {path}: {exc.strerror or exc}") from None
    try:
        return read_spans(fd, path, spans, run_id)
    finally:
        os.close(fd)


def read_spans(fd: int, path: Path, spans: list[int], run_id: str | None) -> list[dict[str, Any]]:
    """``_read_spans`` from an open journal."""
    out = []
    for i in range(0, len(spans), 2):
        record = parse_line(os.pread(fd, spans[i + 1], spans[i]).rstrip(b"\n"))
        if record is None or (run_id is not None and record.get("run") != run_id):
            raise IndexStale(f"the run index of {path} does not match the journal at byte {spans[i]}")
        out.append(record)
    return out


class IndexStale(JournalError):
    """The index points at a line that is not what it indexed: the journal changed under it."""


def _spans(value: Any) -> array:
    spans = array("q", (_nat(v) for v in value))
    if len(spans) % 2:
        raise ValueError("odd spans")
    return spans


def _nat(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(value)
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)
