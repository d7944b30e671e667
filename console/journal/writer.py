"""Appending to the journal off the event loop: one writer thread per journal file per process.

Records are written in the order they were submitted. The thread takes every record that
is waiting, chains them under one exclusive ``flock``, writes them with one ``write`` and
one ``fsync`` (group commit: a fleet's fifty "step_started" cost one fsync, not fifty), and
only then resolves each record's future. A future that has resolved means its record is on
disk — write-ahead needs exactly that, and the runner waits for it before a step acts.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import os
import threading
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from console import failpoints, files
from console.journal.records import ZERO_HASH, JournalError, parse_line, record_hash

DIR_MODE = 0o2770  # setgid: files inherit the operators' group
FILE_MODE = 0o660
_TAIL_CHUNK = 64 * 1024
BATCH_MAX = 512  # records in one write (a bound on the lock's hold time, not a tuning knob)
EXIT_FLUSH_S = 10.0  # at a normal exit, wait this long for records still queued


class Writer:
    """The appends of one process to one journal file, in order, off the caller's thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: deque[tuple[dict[str, Any], Future[dict[str, Any]]]] = deque()
        self._ready = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None

    def submit(self, draft: dict[str, Any]) -> Future[dict[str, Any]]:
        """Queue ``draft`` (a record without seq, prev and hash); the future gives the record
        as written, once it is on disk, or raises JournalError."""
        future: Future[dict[str, Any]] = Future()
        with self._ready:
            self._queue.append((draft, future))
            if self._thread is None or not self._thread.is_alive():  # first use, or a bug killed it
                self._thread = threading.Thread(target=self._run, name=f"journal writer {self.path}", daemon=True)
                self._thread.start()
            self._ready.notify()
        return future

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is written (or failed); False on timeout."""
        with self._ready:
            return self._ready.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: bool(self._queue))
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), BATCH_MAX))]
                self._busy = True
            try:
                self._write(batch)
            finally:
                with self._ready:
                    self._busy = False
                    self._ready.notify_all()

    def _write(self, batch: list[tuple[dict[str, Any], Future[dict[str, Any]]]]) -> None:
        live = [(d, f) for d, f in batch if f.set_running_or_notify_cancel()]
        written: list[tuple[dict[str, Any], Future[dict[str, Any]]]] = []
        try:
            fd = open_for_append(self.path)
        except JournalError as exc:
            for _, future in live:
                future.set_exception(exc)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last, torn = last_record(fd)
            seq, prev = (last["seq"], last["hash"]) if last is not None else (0, ZERO_HASH)
            chunks = [b"\n"] if torn else []  # a crash's torn bytes stay, as evidence, on a line of their own
            for draft, future in live:
                record = {**draft, "seq": seq + 1, "prev": prev}  # the draft's key order: "seq" first
                try:
                    record["hash"] = record_hash(record)
                    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
                except (TypeError, ValueError) as exc:  # data that is not JSON: this record only
                    future.set_exception(exc)
                    continue
                chunks.append(line.encode("utf-8"))
                seq, prev = record["seq"], record["hash"]
                written.append((record, future))
            if written:
                data = b"".join(chunks)
                if failpoints.armed("journal/mid-append"):  # the crash point: half a batch on disk
                    _write_all(fd, data[: len(data) // 2])
                    failpoints.hit("journal/mid-append")
                    data = data[len(data) // 2 :]
                # One write: a kill from another thread (a run's crash, kill -9) lands before or
                # after it, not between two halves of a record.
                _write_all(fd, data)
                os.fsync(fd)
        except BaseException as exc:  # nothing of this batch is known to be on disk
            error = exc
            if isinstance(exc, OSError):
                error = JournalError(f"cannot write the audit journal {self.path}: {exc.strerror or exc}")
            for _, future in live:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            os.close(fd)  # also releases the lock
        for record, future in written:
            future.set_result(record)


# --- one writer per file per process -------------------------------------------------------------
_writers: dict[Path, Writer] = {}
_registry = threading.Lock()


def writer_for(path: Path) -> Writer:
    key = Path(os.path.abspath(path))
    with _registry:
        writer = _writers.get(key)
        if writer is None:
            writer = _writers[key] = Writer(key)
        return writer


def _forget_after_fork() -> None:
    # The child has none of the parent's threads: fresh writers (and a fresh lock: the
    # parent's may have been held at the moment of the fork).
    global _registry
    _writers.clear()
    _registry = threading.Lock()


def _flush_all() -> None:
    """At a normal exit, records still queued (submitted, never awaited) reach the file."""
    for writer in list(_writers.values()):
        writer.flush(EXIT_FLUSH_S)


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(_flush_all)


# --- the file --------------------------------------------------------------------------------------
def open_for_append(path: Path) -> int:
    try:
        if not path.parent.is_dir():
            make_dir(path.parent)
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
        fsync_dir(path.parent)  # the new file's name must survive a crash too
        return fd
    except OSError as exc:
        reason = os_reason(exc)
        if exc.filename and str(exc.filename) != str(path):
            reason += f" ({exc.filename})"
        if exc.errno in (errno.EACCES, errno.EPERM):
            reason += f"; operators need write access to {path.parent} (group-writable, mode 2770)"
        raise JournalError(f"cannot write the audit journal {path}: {reason}") from None


def os_reason(exc: OSError) -> str:
    if isinstance(exc, files.FileProblem):
        return exc.reason.lstrip(": ")
    return exc.strerror or str(exc)


def last_record(fd: int) -> tuple[dict[str, Any] | None, bool]:
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


def after_last_newline(fd: int, size: int) -> int:
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


def make_dir(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return
    os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
