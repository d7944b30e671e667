"""The audit journal: an append-only, fsync'd, hash-chained JSONL file.

One record per line (format and hash in records.py)::

    {"seq", "ts", "type", "run", "env", "who": {user, ssh_client, host, pid}, "data", "prev", "hash"}

``hash`` is the sha256 of the canonical JSON (sorted keys, no spaces, ASCII) of the record
without ``hash``; ``prev`` is the previous record's hash (64 zeros for the first). Several
console processes share one file (operators on one bastion, plus ``watch`` readers):
writers hold an exclusive ``flock`` while they read the last record and append, so the
chain never forks. Readers take no lock and only ever consume complete lines.

Nothing here blocks an event loop when used through its ``*_async`` methods: appends go
through the process's writer thread (writer.py), reads and verification run in threads.
Runs are read through the run index (index.py), verification goes on from a checkpoint
(checkpoint.py): neither reads again what it has read before.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from console import files
from console.events import Event
from console.journal import checkpoint
from console.journal.checkpoint import Verification
from console.journal.index import IndexStale, Page, RunIndex, RunRow
from console.journal.records import ZERO_HASH, JournalError, iso, parse_line
from console.journal.redact import Redactor
from console.journal.runs import STALE_AFTER_S, RunNotFound, RunSummary
from console.journal.who import Who
from console.journal.writer import DIR_MODE, FILE_MODE, after_last_newline, os_reason, writer_for

__all__ = ["DIR_MODE", "FILE_MODE", "Journal", "RunRecorder"]

T = TypeVar("T")
_STALL_POLL_S = 0.5


class Journal:
    """The audit journal at ``path``. Every append is redacted with ``secrets``."""

    def __init__(self, path: str | os.PathLike[str], *, secrets: Iterable[str] = (), who: Who | None = None) -> None:
        self.path = Path(path)
        self.redactor = Redactor(secrets)
        self._who = who  # fixed identity (tests, tools); else the current process
        self._who_cache: Who | None = None
        self._reader = _LineReader(self.path)
        self._records: list[dict[str, Any]] = []
        self.index = RunIndex(self.path)
        self._paged_bad: list[int] | None = None  # bad lines as the last paged read saw them

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    # --- writing ------------------------------------------------------------------------
    def who(self) -> Who:
        if self._who is not None:
            return self._who
        if self._who_cache is None or self._who_cache.pid != os.getpid():  # forked
            self._who_cache = Who.current()
        return self._who_cache

    def submit(
        self,
        type: str,
        *,
        run: str | None = None,
        env: str | None = None,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> Future[dict[str, Any]]:
        """Queue one record (redacted now) for this process's writer thread: it is written
        after everything submitted before it. The future gives the record once it is on
        disk (chained, fsync'd), or raises JournalError."""
        draft: dict[str, Any] = {
            "seq": 0,  # first: every line starts {"seq": (chain.py tells torn lines by it)
            "ts": iso(ts if ts is not None else datetime.now(UTC).timestamp()),
            "type": type,
            "run": run,
            "env": env,
            "who": self.who().as_dict(),
            "data": self.redactor(data or {}),
            "prev": ZERO_HASH,
        }
        return writer_for(self.path).submit(draft)

    def append(
        self,
        type: str,
        *,
        run: str | None = None,
        env: str | None = None,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> dict[str, Any]:
        """Append one record (redacted, chained, fsync'd) and return it as written. Blocks
        until it is on disk: from async code use ``append_async``."""
        return self.submit(type, run=run, env=env, data=data, ts=ts).result()

    async def append_async(
        self,
        type: str,
        *,
        run: str | None = None,
        env: str | None = None,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> dict[str, Any]:
        """``append`` without blocking the event loop: returns once the record is on disk."""
        return await asyncio.wrap_future(self.submit(type, run=run, env=env, data=data, ts=ts))

    def submit_event(self, event: Event, env: str | None) -> Future[dict[str, Any]] | None:
        """Queue a runner event. "output" events are not recorded one by one: their bounded
        output arrives inside step_finished / step_failed."""
        if event.kind == "output":
            return None
        data = dict(event.data)
        if event.step is not None:
            data["step"] = event.step
        if event.host is not None:
            data["host"] = event.host
        if event.message:
            data.setdefault("message", event.message)
        return self.submit(event.kind, run=event.run_id, env=env, data=data, ts=event.ts)

    def record_event(self, event: Event, env: str | None) -> dict[str, Any] | None:
        """Record a runner event and wait until it is on disk (``submit_event`` does not wait)."""
        future = self.submit_event(event, env)
        return None if future is None else future.result()

    def flush(self) -> None:
        """Wait until every record this process submitted is written."""
        writer_for(self.path).flush()

    # --- reading: the run index -------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the run index up to date with the file (reads only what is new)."""
        self._read(self.index.refresh)

    def _read(self, fn: Callable[[], T]) -> T:
        """Read through the index (a hung filesystem is an error, not a hang)."""
        try:
            return _guarded(lambda: _retrying(self.index, fn), str(self.path), lambda: self.index.beat)
        except JournalError:
            raise
        except OSError as exc:
            raise JournalError(f"cannot read the audit journal {self.path}: {os_reason(exc)}") from None

    async def _read_async(self, fn: Callable[[], T]) -> T:
        """``_read`` in a thread: the event loop goes on meanwhile."""
        try:
            return await _guarded_async(lambda: _retrying(self.index, fn), str(self.path), lambda: self.index.beat)
        except JournalError:
            raise
        except OSError as exc:
            raise JournalError(f"cannot read the audit journal {self.path}: {os_reason(exc)}") from None

    def rebuild_index(self) -> None:
        """Make the run index afresh from the whole journal (and its file beside it): the
        index is a cache anyone of the group can write, as they can the journal."""
        self.index.invalidate()
        self._read(lambda: None)

    async def refresh_async(self) -> None:
        await self._read_async(lambda: None)

    def _paged(self, fn: Callable[[Any], T]) -> T | None:
        """``fn(pager)`` on the index file read in pages (pages.py), for a process that has
        not read the whole index: None when the file cannot be paged (missing, unsound, far
        behind the journal) or ``fn`` finds no answer there — then ask the whole index."""
        from console.journal.pages import Pager

        beat = _Beat()

        def go() -> T | None:
            pager = Pager.open(self.path, beat)
            if pager is None:
                return None
            with pager:
                try:
                    result = fn(pager)
                except IndexStale:
                    return None
            if result is not None:
                self._paged_bad = pager.bad_lines
            return result

        try:
            return _guarded(go, str(self.path), beat.last)
        except JournalError:
            raise
        except OSError as exc:
            raise JournalError(f"cannot read the audit journal {self.path}: {os_reason(exc)}") from None

    @property
    def bad_lines(self) -> list[int]:
        """Lines (1-based) that are not records, as of the last read: skipped by every reader, and said so."""
        if self._paged_bad is not None and not self.index.loaded:
            return list(self._paged_bad)
        return list(self.index.bad_lines)

    def runs(self, env: str | None = None, drills: bool = False) -> list[RunSummary]:
        """Runs, oldest first, with their records. ``drills=False``: real runs only;
        ``drills=True``: drill runs only (a rehearsal never shows up in the real history).
        Reads every record of every run: for a table, ``rows`` reads none."""
        return self._read(lambda: self.index.summaries(env, drills))

    def rows(self, env: str | None = None, drills: bool = False) -> list[RunRow]:
        """The history table's runs, oldest first (as ``runs``, without their records)."""
        return self._read(lambda: self.index.rows(env, drills))

    async def rows_async(self, env: str | None = None, drills: bool = False) -> list[RunRow]:
        return await self._read_async(lambda: self.index.rows(env, drills))

    def page(self, env: str | None = None, drills: bool = False, limit: int | None = None) -> Page:
        """The newest ``limit`` runs (None: all), oldest first, and how many there are. In a
        process that has not read the whole index (a fresh ``history``), from the index file
        read in pages: it costs the page, not the journal's years."""
        if limit is not None and not self.index.loaded:
            got = self._paged(lambda pager: pager.page(env, drills, limit))
            if got is not None:
                return got
        return self._read(lambda: self.index.page(env, drills, limit))

    async def page_async(self, env: str | None = None, drills: bool = False, limit: int | None = None) -> Page:
        """``page`` from the whole index (a console keeps it: each look reads only what is new)."""
        return await self._read_async(lambda: self.index.page(env, drills, limit))

    def latest(self, env: str | None = None, drills: bool = False) -> RunSummary | None:
        """The run that started last (of ``env``), or None."""
        return self._read(lambda: self.index.latest(env, drills))

    async def latest_async(self, env: str | None = None, drills: bool = False) -> RunSummary | None:
        return await self._read_async(lambda: self.index.latest(env, drills))

    def run(self, run_id: str) -> RunSummary:
        """One run by id or unique prefix of its id (drill or not). In a process that has not
        read the whole index (a fresh ``report``), from the index file read in pages."""
        if not self.index.loaded:
            got = self._paged(lambda pager: pager.find(run_id))
            if got is not None:
                return got
        return self._read(lambda: self._find(run_id))

    async def run_async(self, run_id: str) -> RunSummary:
        return await self._read_async(lambda: self._find(run_id))

    def _find(self, run_id: str) -> RunSummary:
        index = self.index
        entry = index.runs.get(run_id)
        if entry is not None and entry.row is not None:
            return index.summary(run_id)
        matches = [r for r in index.run_ids() if run_id and r.startswith(run_id)]
        if len(matches) == 1:
            return index.summary(matches[0])
        if not matches:
            raise RunNotFound(f"no run {run_id!r} in the audit journal {self.path}")
        ids = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
        raise RunNotFound(f"run id {run_id!r} is ambiguous in {self.path}: it matches {len(matches)} runs ({ids})")

    def run_records(self, run_id: str) -> list[dict[str, Any]]:
        """Every record of ``run_id``, a run or not (a lock intent, a refusal), in file order."""
        return self._read(lambda: self.index.records_of(run_id))

    def loose_records(self, type: str) -> list[dict[str, Any]]:
        """Records of ``type`` that belong to no run (e.g. drill scorecards), in file order."""
        return self._read(lambda: self.index.loose_records(type))

    def last_seq(self) -> int | None:
        """The seq of the last record in the file (None: no record yet)."""
        return self._read(lambda: self.index.last_seq)

    async def last_seq_async(self) -> int | None:
        return await self._read_async(lambda: self.index.last_seq)

    async def position_async(self) -> tuple[int | None, tuple[int, int, int] | None]:
        """(the last record's seq, where it ends: for ``follow(from_position=…)``), read together."""
        index = self.index

        def read() -> tuple[int | None, tuple[int, int, int] | None]:
            at = (index.identity[0], index.identity[1], index.offset) if index.identity else None
            return index.last_seq, at

        return await self._read_async(read)

    async def run_records_async(self, run_id: str) -> list[dict[str, Any]]:
        return await self._read_async(lambda: self.index.records_of(run_id))

    def interrupted(self, *, drills: bool = False, stale_after_s: float = STALE_AFTER_S) -> list[RunSummary]:
        """Runs started but never finished whose process is gone: what a crash or kill -9
        leaves. A run on another bastion counts as gone after ``stale_after_s`` of silence."""
        return self._read(lambda: _interrupted(self.index, drills, stale_after_s))

    async def interrupted_async(
        self, *, drills: bool = False, stale_after_s: float = STALE_AFTER_S
    ) -> list[RunSummary]:
        return await self._read_async(lambda: _interrupted(self.index, drills, stale_after_s))

    # --- reading: everything ------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """Every well-formed record, in file order (read incrementally). Holds them all in
        memory: for one run's records use ``run_records``."""
        try:
            reset, lines = files.with_deadline(self._reader.read_new, files.READ_TIMEOUT_S, str(self.path))
        except OSError as exc:
            raise JournalError(f"cannot read the audit journal {self.path}: {os_reason(exc)}") from None
        if reset:
            self._records = []
        for raw in lines:
            record = parse_line(raw)
            if record is not None:
                self._records.append(record)
        return list(self._records)

    def verify(self) -> Verification:
        """Check the whole chain; an empty list means intact (or no journal yet). Neither
        reads nor moves the verify checkpoint: see ``verify_checkpointed``."""
        return self._verify(lambda beat: checkpoint.whole(self.path, beat))

    def verify_checkpointed(self, *, full: bool = False) -> Verification:
        """Check the chain from the verify checkpoint on, reading only what is new (``full``:
        everything), after checking the checkpoint against the file; moves it on."""
        return self._verify(lambda beat: checkpoint.verify(self.path, full=full, beat=beat))

    async def verify_async(self, *, full: bool = False) -> Verification:
        """``verify_checkpointed`` in a thread."""
        beat = _Beat()
        try:
            return await _guarded_async(
                lambda: checkpoint.verify(self.path, full=full, beat=beat), str(self.path), beat.last
            )
        except OSError as exc:
            raise JournalError(f"cannot read the audit journal {self.path}: {os_reason(exc)}") from None

    def _verify(self, check: Callable[[Callable[[], None]], Verification]) -> Verification:
        beat = _Beat()
        try:
            return _guarded(lambda: check(beat), str(self.path), beat.last)
        except OSError as exc:
            raise JournalError(f"cannot read the audit journal {self.path}: {os_reason(exc)}") from None

    async def follow(
        self,
        *,
        from_start: bool = True,
        poll_s: float = 0.25,
        from_position: tuple[int, int, int] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield records as they are appended, for ever (cancel to stop). Waits for the file
        if it does not exist yet; starts over if it is replaced. ``from_position``: (device,
        inode, offset) as ``position_async`` gave it: what follows it (the whole file if it
        is another file by now)."""
        reader = _LineReader(self.path)
        if from_position is not None:
            reader.inode, reader.offset = from_position[:2], from_position[2]
        elif not from_start:
            await asyncio.to_thread(reader.skip_to_end)
        while True:
            try:
                _, lines = await files.with_deadline_async(reader.read_new, files.READ_TIMEOUT_S, str(self.path))
            except OSError:  # unreadable for a moment (being replaced, not a file): try again
                lines = []
            for raw in lines:
                record = parse_line(raw)
                if record is not None:
                    yield record
            if not lines:
                await asyncio.sleep(poll_s)


class RunRecorder:
    """A run's events into the journal, in order, without blocking the event loop.

    Calling it queues the event; ``durable()`` returns once every event queued so far is on
    disk — the runner awaits it before a step acts, so an intent is written before its
    effect (write-ahead), as the crash matrix demands. A failed write is passed to
    ``on_error`` (on the loop, from ``durable()``): the run must not go on unrecorded."""

    def __init__(self, journal: Journal, env: str | None, on_error: Callable[[str], None]) -> None:
        self.journal, self.env, self.on_error = journal, env, on_error
        self._last: Future[dict[str, Any]] | None = None
        self._errors: list[str] = []  # appended by the writer thread, read on the loop

    def __call__(self, event: Event) -> None:
        try:
            future = self.journal.submit_event(event, self.env)
        except (TypeError, ValueError) as exc:  # data that cannot be recorded at all
            self._errors.append(f"cannot record {event.kind}: {exc}")
            return
        if future is not None:
            self._last = future
            future.add_done_callback(self._done)

    def _done(self, future: Future[dict[str, Any]]) -> None:
        exc = future.exception()
        if exc is not None:
            self._errors.append(str(exc))

    async def durable(self) -> None:
        last = self._last
        if last is not None and not last.done():
            waited = asyncio.wrap_future(last)
            await asyncio.wait([waited])
            if not waited.cancelled():
                waited.exception()  # seen (by _done): not "never retrieved"
        # The writer resolves in order, so every earlier record's callback has run by now.
        while self._errors:
            self.on_error(self._errors.pop(0))


class _Beat:
    """Progress of a long read, for the stall guard."""

    def __init__(self) -> None:
        self.at = time.monotonic()

    def __call__(self) -> None:
        self.at = time.monotonic()

    def last(self) -> float:
        return self.at


def _guarded(fn: Callable[[], T], what: str, beat: Callable[[], float]) -> T:
    """``fn()`` in a daemon thread; FileProblem once it makes no progress for READ_TIMEOUT_S
    (a hung network filesystem), however long a big journal takes to read."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=run, name=f"read {what}", daemon=True)
    worker.start()
    while True:
        worker.join(_STALL_POLL_S)
        if not worker.is_alive():
            break
        if time.monotonic() - max(started, beat()) > files.READ_TIMEOUT_S:
            raise _stalled(what)
    if error:
        raise error[0]
    return result[0]


async def _guarded_async(fn: Callable[[], T], what: str, beat: Callable[[], float]) -> T:
    """``_guarded`` for async code: the event loop never waits on the thread."""
    future = files.in_daemon_thread(fn, what)
    started = time.monotonic()
    while True:
        done, _ = await asyncio.wait([future], timeout=_STALL_POLL_S)
        if done:
            return future.result()
        if time.monotonic() - max(started, beat()) > files.READ_TIMEOUT_S:
            future.cancel()
            raise _stalled(what)


def _stalled(what: str) -> files.FileProblem:
    hung = f": no answer within {files.READ_TIMEOUT_S:g}s (a hung network filesystem or device?)"
    return files.FileProblem(what, hung)


def _retrying(index: RunIndex, fn: Callable[[], T]) -> T:
    """Refresh, then ``fn``; if the file changed under the index, start over once."""
    with index.lock:  # one answer from one state of the index, whatever other threads do
        index.refresh()
        try:
            return fn()
        except IndexStale:
            index.invalidate()
            index.refresh()
            return fn()


def _interrupted(index: RunIndex, drills: bool, stale_after_s: float) -> list[RunSummary]:
    return [r for r in index.open_runs(drills, stale_after_s) if r.outcome == "interrupted"]


class _LineReader:
    """Complete lines appended since the last call. Starts over if the file is replaced
    or shrinks; a partial last line waits until its newline arrives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.inode: tuple[int, int] | None = None
        self.lines_read = 0  # complete lines consumed since the start of the file

    def skip_to_end(self) -> None:
        try:
            with open(files.open_regular(self.path), "rb") as f:
                st = os.fstat(f.fileno())
                self.inode = (st.st_dev, st.st_ino)
                self.offset = after_last_newline(f.fileno(), st.st_size)
        except FileNotFoundError:
            self.inode, self.offset = None, 0

    def read_new(self) -> tuple[bool, list[bytes]]:
        try:
            f = open(files.open_regular(self.path), "rb")
        except FileNotFoundError:
            reset = self.inode is not None
            self.inode, self.offset, self.lines_read = None, 0, 0
            return reset, []
        with f:
            st = os.fstat(f.fileno())
            inode = (st.st_dev, st.st_ino)
            reset = False
            if inode != self.inode or st.st_size < self.offset:
                reset = self.inode is not None or self.offset > 0
                self.inode, self.offset, self.lines_read = inode, 0, 0
            if st.st_size == self.offset:
                return reset, []
            f.seek(self.offset)
            data = f.read(st.st_size - self.offset)
        end = data.rfind(b"\n")
        if end < 0:
            return reset, []
        self.offset += end + 1
        lines = data[:end].split(b"\n")
        self.lines_read += len(lines)
        return reset, lines
