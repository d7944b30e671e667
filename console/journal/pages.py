"""The run index file, laid out so that a fresh process reads only what it shows.

A console keeps the whole index in memory (index.py) and reads the file once. A fresh
``history`` or ``report`` process wants a page of the newest runs, or one run: it reads
the file's last line (where the journal stood, where each part of the file is), then
only the lines it needs — the newest runs from the end of the rows, one run by a binary
search of the table of ids — and from the journal only what was appended since the file
was written (and the records of the runs it shows). The file, line by line::

    {"format": KIND, "version": 2}
    [run id, spans, null, final]             ids that are no run (a refused lock), any order
    [run id, spans, row, final]              the runs, by start (summarize()'s order)
    000000001234                             per id, sorted by id: where its line starts
    {record type: spans}                     records of no run
    [line, …]                                lines of the journal that are not records
    {"journal": {…}, "rows": …, "counts": …} where it all is, and runs by (env, drill)

Anything that does not fit (another format, a cut file, an offset out of place, spans
that point at other lines) makes the reader give up (``IndexStale``): the caller then
reads the whole index, which starts over from the journal when the file is unsound.
"""

from __future__ import annotations

import json
import os
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from console import files, safe_json
from console.journal import sidecar
from console.journal.index import (
    _OPEN,
    KIND,
    SAVE_AFTER_BYTES,
    SUFFIX,
    VERSION,
    IndexStale,
    Page,
    RunIndex,
    RunRow,
    _key,
    _nat,
    _opt_str,
    _Run,
    _spans,
    _str,
    count,
    read_spans,
)
from console.journal.records import parse_line
from console.journal.runs import NOT_A_RUN, RunSummary, summarize

HEADER = json.dumps({"format": KIND, "version": VERSION}, separators=(",", ":")).encode() + b"\n"
ID_WIDTH = 13  # "%012d\n": where an id's line starts
_LINE_CHUNK = 1024  # a run's line is about this long: a search reads little more than its lines
_BACK_CHUNK = 16 * 1024
_BACK_CHUNK_MAX = 1024 * 1024

State = tuple[list[int], int, int, list[Any], list[Any], int | None, list[int]]


def _line(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def encode(index: RunIndex) -> bytes:
    """The index as the file holds it."""
    parts = [HEADER]
    pos = len(HEADER)
    where: dict[str, int] = {}

    def put(data: bytes) -> None:
        nonlocal pos
        parts.append(data)
        pos += len(data)

    others = pos
    for run_id, e in index.runs.items():
        if e.row is None:
            where[run_id] = pos
            put(_line([run_id, e.spans.tolist(), None, e.final]))
    rows = pos
    for _, run_id in index.order:
        e = index.runs[run_id]
        assert e.row is not None
        where[run_id] = pos
        put(_line([run_id, e.spans.tolist(), e.row.to_json(), e.final]))
    ids = pos
    put(b"".join(b"%012d\n" % where[run_id] for run_id in sorted(where)))
    loose = pos
    put(_line({t: spans.tolist() for t, spans in index.loose.items()}))
    bad = pos
    put(_line(index.bad_lines))
    put(
        _line(
            {
                "journal": {
                    "identity": index.identity,
                    "offset": index.offset,
                    "lines": index.lines,
                    "head": index.head,
                    "tail": index.tail,
                    "last_seq": index.last_seq,
                },
                "others": [others, len(where) - len(index.order)],
                "rows": [rows, len(index.order)],
                "ids": [ids, len(where)],
                "loose": loose,
                "bad": bad,
                "counts": [[env, drill, n] for (env, drill), n in index.counts.items() if n],
            }
        )
    )
    return b"".join(parts)


def _loads(data: bytes) -> Any:
    return safe_json.loads(data, max_bytes=sidecar.MAX_BYTES, max_depth=sidecar.MAX_DEPTH)


def _entry(value: Any) -> tuple[str, _Run]:
    run_id, spans, row, final = value
    entry = _Run()
    entry.spans = _spans(spans)
    entry.row = RunRow.from_json(row) if row is not None else None
    entry.final = bool(final)
    return _str(run_id), entry


class _Trailer:
    """The file's last line, checked for shape and against the file's size."""

    def __init__(self, value: Any, size: int, at: int) -> None:
        journal = value["journal"]
        head, tail = journal["head"], journal["tail"]
        self.state: State = (
            [int(x) for x in journal["identity"]],
            _nat(journal["offset"]),
            _nat(journal["lines"]),
            [_nat(head[0]), _str(head[1])],
            [_nat(tail[0]), _str(tail[1])],
            journal["last_seq"] if isinstance(journal["last_seq"], int) else None,
            [],
        )
        self.others, self.n_others = _nat(value["others"][0]), _nat(value["others"][1])
        self.rows, self.n_rows = _nat(value["rows"][0]), _nat(value["rows"][1])
        self.ids, self.n_ids = _nat(value["ids"][0]), _nat(value["ids"][1])
        self.loose, self.bad, self.at = _nat(value["loose"]), _nat(value["bad"]), at
        self.counts: dict[tuple[str | None, bool], int] = {}
        for env, drill, n in value["counts"]:
            if not isinstance(drill, bool):
                raise TypeError(drill)
            self.counts[(_opt_str(env), drill)] = _nat(n)
        order = (len(HEADER), self.others, self.rows, self.ids, self.loose, self.bad, at, size)
        if list(order) != sorted(order) or self.loose - self.ids != ID_WIDTH * self.n_ids:
            raise ValueError("parts out of place")
        if self.n_ids != self.n_others + self.n_rows:
            raise ValueError("ids do not add up")


def _trailer(fd: int, size: int) -> _Trailer:
    """The last line of the index file at ``fd``."""
    n = min(size, _LINE_CHUNK)
    while True:
        data = os.pread(fd, n, size - n)
        if not data.endswith(b"\n"):
            raise ValueError("cut short")
        start = data.rfind(b"\n", 0, len(data) - 1) + 1
        if start > 0 or n == size:
            break
        n = min(size, n * 4)
    at = size - len(data) + start
    return _Trailer(_loads(data[start:]), size, at)


def load(file: Path) -> tuple[State, dict[str, _Run], dict[str, array]] | None:
    """The whole index file (for a process that keeps the index), or None if it is missing
    or unsound: (journal state, runs, loose records)."""
    try:
        fd = files.open_regular(file)
        with open(fd, "rb") as f:
            data = f.read(sidecar.MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > sidecar.MAX_BYTES or not data.startswith(HEADER):
        return None
    try:
        trailer = _trailer_of(data)
        runs: dict[str, _Run] = {}
        lines = data[trailer.others : trailer.ids].split(b"\n")
        if lines.pop() != b"" or len(lines) != trailer.n_ids:
            raise ValueError("runs do not add up")
        for raw in lines:
            run_id, entry = _entry(_loads(raw))
            if run_id in runs:
                raise ValueError("an id twice")
            runs[run_id] = entry
        loose = {_str(t): _spans(spans) for t, spans in _loads(data[trailer.loose : trailer.bad]).items()}
        bad = [_nat(n) for n in _loads(data[trailer.bad : trailer.at])]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None
    return (*trailer.state[:-1], bad), runs, loose


def _trailer_of(data: bytes) -> _Trailer:
    if not data.endswith(b"\n"):
        raise ValueError("cut short")
    at = data.rfind(b"\n", 0, len(data) - 1) + 1
    return _Trailer(_loads(data[at:]), len(data), at)


class Pager:
    """A fresh process's look at the runs: the index file read where needed, and the
    journal's records appended since it was written. ``open`` gives None when there is
    no sound file to page (or too much is new): then read the whole index instead."""

    def __init__(self, path: Path, fd: int, jfd: int, trailer: _Trailer, beat: Callable[[], None]) -> None:
        self.path, self.fd, self.jfd, self.t, self.beat = path, fd, jfd, trailer, beat
        self.lines: dict[int, tuple[str, _Run]] = {}  # offset in the file → its entry
        self.bad_lines: list[int] = []
        self.touched: dict[str, tuple[_Run, list[dict[str, Any]]]] = {}  # runs with new records
        self.counts = dict(trailer.counts)

    @classmethod
    def open(cls, path: Path, beat: Callable[[], None]) -> Pager | None:
        """OSError for a journal that cannot be read (as reading it whole would)."""
        try:
            fd = files.open_regular(path.with_name(path.name + SUFFIX))
        except OSError:
            return None
        jfd = -1
        try:
            size = os.fstat(fd).st_size
            if size > sidecar.MAX_BYTES or os.pread(fd, len(HEADER), 0) != HEADER:
                return None
            trailer = _trailer(fd, size)
            try:
                jfd = files.open_regular(path)
            except FileNotFoundError:
                return None
            pager = cls(path, fd, jfd, trailer, beat)
            if not pager._catch_up():
                return None
            fd = jfd = -1  # the pager's now
            return pager
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, IndexStale):
            return None
        finally:
            for f in (fd, jfd):
                if f >= 0:
                    os.close(f)

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.jfd)

    def __enter__(self) -> Pager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _catch_up(self) -> bool:
        """Check the file against the journal; read what was appended since (False: the
        file is of another journal, or so much is new that the whole index is due)."""
        identity, offset, lines, (hlen, head), (start, tail), _, _ = self.t.state
        st = os.fstat(self.jfd)
        if sidecar.identity(st) != identity or st.st_size < offset or offset == 0:
            return False
        if st.st_size - offset > SAVE_AFTER_BYTES:
            return False
        if (
            sidecar.digest(os.pread(self.jfd, hlen, 0)) != head
            or sidecar.digest(os.pread(self.jfd, offset - start, start)) != tail
        ):
            return False
        self.bad_lines = [_nat(n) for n in _loads(os.pread(self.fd, self.t.at - self.t.bad, self.t.bad))]
        data = os.pread(self.jfd, st.st_size - offset, offset)
        data = data[: data.rfind(b"\n") + 1]
        new: dict[str, list[tuple[int, int, dict[str, Any]]]] = defaultdict(list)
        at = offset
        for raw in data[:-1].split(b"\n") if data else ():
            lines += 1
            record = parse_line(raw)
            if record is None:
                if raw.strip():
                    self.bad_lines.append(lines)
            elif isinstance(run_id := record.get("run"), str) and run_id:
                new[run_id].append((at, len(raw) + 1, record))
            at += len(raw) + 1
        for run_id, added in new.items():
            found = self._find_line(run_id)
            entry = _Run()
            records: list[dict[str, Any]] = []
            if found is not None:
                old = found[1]
                if old.row is not None:
                    self.counts[(old.row.env, old.row.drill)] -= 1
                entry.spans = array("q", old.spans)
                records = read_spans(self.jfd, self.path, old.spans.tolist(), run_id)
            for o, n, record in added:
                entry.spans.extend((o, n))
                records.append(record)
            if not all(r["type"] in NOT_A_RUN for r in records):
                run = summarize(records)[0]
                entry.row, entry.final = RunRow.of(run), run.outcome not in _OPEN
                key = (entry.row.env, entry.row.drill)
                self.counts[key] = self.counts.get(key, 0) + 1
            self.touched[run_id] = (entry, records)
        return True

    # --- the file's lines ---------------------------------------------------------------------
    def _line_at(self, at: int) -> tuple[str, _Run]:
        """The entry whose line starts at ``at`` (an id's or a run's)."""
        got = self.lines.get(at)
        if got is not None:
            return got
        if not self.t.others <= at < self.t.ids or (at > 0 and os.pread(self.fd, 1, at - 1) != b"\n"):
            raise IndexStale(f"the run index of {self.path} points out of place")
        n = _LINE_CHUNK
        while True:
            data = os.pread(self.fd, min(n, self.t.ids - at), at)
            end = data.find(b"\n")
            if end >= 0:
                break
            if at + len(data) >= self.t.ids:
                raise IndexStale(f"the run index of {self.path} is cut short")
            n *= 4
        got = self.lines[at] = _entry(_loads(data[:end]))
        return got

    def _id_at(self, k: int) -> tuple[str, _Run]:
        raw = os.pread(self.fd, ID_WIDTH, self.t.ids + ID_WIDTH * k)
        if len(raw) != ID_WIDTH or not raw[:-1].isdigit() or raw[-1:] != b"\n":
            raise IndexStale(f"the run index of {self.path} has a damaged table of ids")
        return self._line_at(int(raw[:-1]))

    def _lower_bound(self, key: str) -> int:
        lo, hi = 0, self.t.n_ids
        while lo < hi:
            mid = (lo + hi) // 2
            if self._id_at(mid)[0] < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _find_line(self, run_id: str) -> tuple[str, _Run] | None:
        k = self._lower_bound(run_id)
        if k < self.t.n_ids and (got := self._id_at(k))[0] == run_id:
            return got
        return None

    def _rows_backward(self) -> Iterator[tuple[str, _Run]]:
        """The file's runs, newest first."""
        start, pos, rest, seen, chunk = self.t.rows, self.t.ids, b"", 0, _BACK_CHUNK
        while pos > start:
            n = min(chunk, pos - start)
            chunk = min(chunk * 2, _BACK_CHUNK_MAX)  # a page wants a few; a scan for rare ones, many
            pos -= n
            lines = (os.pread(self.fd, n, pos) + rest).split(b"\n")
            rest = lines[0] if pos > start else b""
            for raw in reversed(lines if pos == start else lines[1:]):
                if raw:
                    seen += 1
                    yield _entry(_loads(raw))
            self.beat()
        if seen != self.t.n_rows:
            raise IndexStale(f"the run index of {self.path} does not add up")

    # --- what a process asks ------------------------------------------------------------------
    def page(self, env: str | None, drills: bool, limit: int, *, now: float | None = None) -> Page:
        """As RunIndex.page, reading only the lines of the page (and of runs of other kinds
        between them)."""
        now = time.time() if now is None else now

        def wanted(row: RunRow | None) -> bool:
            return row is not None and row.drill == drills and (env is None or row.env == env)

        new = sorted(
            ((_key(e.row), run_id) for run_id, (e, _) in self.touched.items() if e.row is not None and wanted(e.row)),
            reverse=True,
        )
        out: list[RunRow] = []

        def add(run_id: str, entry: _Run) -> None:
            assert entry.row is not None
            out.append(entry.row if entry.final else RunRow.of(self._run(run_id, entry, now)))

        older = self._rows_backward() if limit > 0 else iter(())
        for run_id, entry in older:
            if len(out) >= limit:
                break
            if run_id in self.touched or not wanted(entry.row):
                continue
            assert entry.row is not None
            key = _key(entry.row)
            while new and new[0] > (key, run_id) and len(out) < limit:
                add(new[0][1], self.touched[new.pop(0)[1]][0])
            if len(out) < limit:
                add(run_id, entry)
        while new and len(out) < limit:
            add(new[0][1], self.touched[new.pop(0)[1]][0])
        out.reverse()
        return Page(out, count(self.counts, env, drills))

    def find(self, run_id: str, *, now: float | None = None) -> RunSummary | None:
        """The run ``run_id`` names (its id or the only run its id starts with); None when
        it names none or several (the whole index says which, as it does now)."""
        if not run_id:
            return None
        now = time.time() if now is None else now
        matches: list[tuple[str, _Run]] = []
        touched = self.touched.get(run_id)
        exact = (run_id, touched[0]) if touched else self._find_line(run_id)
        if exact is not None and exact[1].row is not None:
            matches = [exact]
        else:
            matches = [(i, e) for i, (e, _) in self.touched.items() if i.startswith(run_id) and e.row is not None]
            k = self._lower_bound(run_id)
            while k < self.t.n_ids and len(matches) < 2:
                found, entry = self._id_at(k)
                if not found.startswith(run_id):
                    break
                if found not in self.touched and entry.row is not None:
                    matches.append((found, entry))
                k += 1
        if len(matches) != 1:
            return None
        return self._run(*matches[0], now)

    def _records(self, run_id: str, entry: _Run) -> list[dict[str, Any]]:
        touched = self.touched.get(run_id)
        if touched is not None:
            return touched[1]
        return read_spans(self.jfd, self.path, entry.spans.tolist(), run_id)

    def _run(self, run_id: str, entry: _Run, now: float) -> RunSummary:
        return summarize(self._records(run_id, entry), now=now)[0]
