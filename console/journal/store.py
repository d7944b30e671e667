"""The audit journal: an append-only, fsync'd, hash-chained JSONL file.

One record per line (format and hash in records.py)::

    {"seq", "ts", "type", "run", "env", "who": {user, ssh_client, host, pid}, "data", "prev", "hash"}

``hash`` is the sha256 of the canonical JSON (sorted keys, no spaces, ASCII) of the record
without ``hash``; ``prev`` is the previous record's hash (64 zeros for the first). Several
console processes share one file (operators on one bastion, plus ``watch`` readers):
writers hold an exclusive ``flock`` while they read the last record and append, so the
chain never forks. Readers take no lock and only ever consume complete lines.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console import files
from console.engine.events import Event
from console.journal.chain import Problem, verify_lines
from console.journal.records import ZERO_HASH, JournalError, iso, parse_line, record_hash
from console.journal.redact import Redactor
from console.journal.runs import STALE_AFTER_S, RunNotFound, RunSummary, summarize
from console.journal.who import Who

DIR_MODE = 0o2770  # setgid: files inherit the operators' group
FILE_MODE = 0o660
_TAIL_CHUNK = 64 * 1024


class Journal:
    """The audit journal at ``path``. Every append is redacted with ``secrets``."""

    def __init__(self, path: str | os.PathLike[str], *, secrets: Iterable[str] = (), who: Who | None = None) -> None:
        self.path = Path(path)
        self.redactor = Redactor(secrets)
        self._who = who  # fixed identity (tests, tools); else the current process
        self._who_cache: Who | None = None
        self._reader = _LineReader(self.path)
        self._records: list[dict[str, Any]] = []
        # Lines (1-based) that are not records: skipped by every reader, and said so.
        self.bad_lines: list[int] = []

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    # --- writing ------------------------------------------------------------------------
    def who(self) -> Who:
        if self._who is not None:
            return self._who
        if self._who_cache is None or self._who_cache.pid != os.getpid():  # forked
            self._who_cache = Who.current()
        return self._who_cache

    def append(
        self,
        type: str,
        *,
        run: str | None = None,
        env: str | None = None,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> dict[str, Any]:
        """Append one record (redacted, chained, fsync'd) and return it as written."""
        record: dict[str, Any] = {
            "seq": 0,
            "ts": iso(ts if ts is not None else datetime.now(UTC).timestamp()),
            "type": type,
            "run": run,
            "env": env,
            "who": self.who().as_dict(),
            "data": self.redactor(data or {}),
            "prev": ZERO_HASH,
        }
        fd = self._open_for_append()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last, torn = _last_record(fd)
            if last is not None:
                record["seq"], record["prev"] = last["seq"] + 1, last["hash"]
            else:
                record["seq"] = 1
            record["hash"] = record_hash(record)
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
            # After a torn line (a crash mid-write) start afresh: the torn bytes stay, as
            # evidence, on a line of their own, and the chain goes on from the last good record.
            _write_all(fd, (b"\n" if torn else b"") + line.encode("utf-8"))
            os.fsync(fd)
        except OSError as exc:
            raise JournalError(f"cannot write the audit journal {self.path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)  # also releases the lock
        return record

    def record_event(self, event: Event, env: str | None) -> dict[str, Any] | None:
        """Record a runner event. "output" events are not recorded one by one: their
        bounded output arrives inside step_finished / step_failed."""
        if event.kind == "output":
            return None
        data = dict(event.data)
        if event.step is not None:
            data["step"] = event.step
        if event.host is not None:
            data["host"] = event.host
        if event.message:
            data.setdefault("message", event.message)
        return self.append(event.kind, run=event.run_id, env=env, data=data, ts=event.ts)

    def _open_for_append(self) -> int:
        path = self.path
        try:
            if not path.parent.is_dir():
                _make_dir(path.parent)
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
            except FileExistsError:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
                problem = files.not_regular(path, os.fstat(fd).st_mode)
                if problem:
                    os.close(fd)
                    raise problem from None
                return fd
            os.fchmod(fd, FILE_MODE)  # the umask would drop the group's write bit
            _fsync_dir(path.parent)  # the new file's name must survive a crash too
            return fd
        except OSError as exc:
            reason = _reason(exc, path)
            if exc.filename and str(exc.filename) != str(path):
                reason += f" ({exc.filename})"
            if exc.errno in (errno.EACCES, errno.EPERM):
                reason += f"; operators need write access to {path.parent} (group-writable, mode 2770)"
            raise JournalError(f"cannot write the audit journal {path}: {reason}") from None

    # --- reading ------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """Every well-formed record, in file order (read incrementally: cheap to call often)."""
        try:
            reset, lines = files.with_deadline(self._reader.read_new, files.READ_TIMEOUT_S, str(self.path))
        except OSError as exc:
            raise JournalError(f"cannot read the audit journal {self.path}: {_reason(exc, self.path)}") from None
        if reset:
            self._records = []
            self.bad_lines = []
        first = self._reader.lines_read - len(lines) + 1
        for number, raw in enumerate(lines, first):
            record = parse_line(raw)
            if record is not None:
                self._records.append(record)
            elif raw.strip():
                self.bad_lines.append(number)
        return list(self._records)

    def verify(self) -> list[Problem]:
        """Check the whole chain. An empty list means intact (or no journal yet)."""

        def read() -> bytes:
            fd = files.open_regular(self.path)
            with open(fd, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_SH)  # no half-written append in what we read
                return f.read()

        try:
            content = files.with_deadline(read, files.READ_TIMEOUT_S, str(self.path))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise JournalError(f"cannot read the audit journal {self.path}: {_reason(exc, self.path)}") from None
        return verify_lines(content)

    async def follow(self, *, from_start: bool = True, poll_s: float = 0.25) -> AsyncIterator[dict[str, Any]]:
        """Yield records as they are appended, for ever (cancel to stop). Waits for the file
        if it does not exist yet; starts over if it is replaced."""
        reader = _LineReader(self.path)
        if not from_start:
            reader.skip_to_end()
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

    # --- runs (see runs.py) ---------------------------------------------------------------
    def runs(self, env: str | None = None, drills: bool = False) -> list[RunSummary]:
        """Runs, oldest first. ``drills=False``: real runs only; ``drills=True``: drill runs only
        (a rehearsal never shows up in the real history)."""
        return [r for r in summarize(self.records()) if r.drill == drills and (env is None or r.env == env)]

    def run(self, run_id: str) -> RunSummary:
        """One run by id or unique prefix of its id (drill or not)."""
        runs = summarize(self.records())
        exact = [r for r in runs if r.run_id == run_id]
        if exact:
            return exact[0]
        matches = [r for r in runs if run_id and r.run_id.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise RunNotFound(f"no run {run_id!r} in the audit journal {self.path}")
        ids = ", ".join(r.run_id for r in matches[:5]) + (", …" if len(matches) > 5 else "")
        raise RunNotFound(f"run id {run_id!r} is ambiguous in {self.path}: it matches {len(matches)} runs ({ids})")

    def interrupted(self, *, drills: bool = False, stale_after_s: float = STALE_AFTER_S) -> list[RunSummary]:
        """Runs started but never finished whose process is gone: what a crash or kill -9
        leaves. A run on another bastion counts as gone after ``stale_after_s`` of silence."""
        runs = summarize(self.records(), stale_after_s=stale_after_s)
        return [r for r in runs if r.outcome == "interrupted" and r.drill == drills]


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
                self.offset = _after_last_newline(f.fileno(), st.st_size)
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


def _reason(exc: OSError, path: Path) -> str:
    if isinstance(exc, files.FileProblem):
        return exc.reason.lstrip(": ")
    return exc.strerror or str(exc)


def _last_record(fd: int) -> tuple[dict[str, Any] | None, bool]:
    """The last well-formed record, and whether the file ends in a torn (unterminated) line."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, False
    torn = os.pread(fd, 1, size - 1) != b"\n"
    chunk = _TAIL_CHUNK
    while True:
        start = max(0, size - chunk)
        lines = os.pread(fd, size - start, start).split(b"\n")
        if start > 0:
            lines = lines[1:]  # may begin mid-line
        for raw in reversed(lines):
            record = parse_line(raw) if raw.strip() else None
            if record is not None:
                return record, torn
        if start == 0:
            return None, torn
        chunk *= 4


def _after_last_newline(fd: int, size: int) -> int:
    chunk = _TAIL_CHUNK
    while True:
        start = max(0, size - chunk)
        pos = os.pread(fd, size - start, start).rfind(b"\n")
        if pos >= 0:
            return start + pos + 1
        if start == 0:
            return 0
        chunk *= 4


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _make_dir(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return
    os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
