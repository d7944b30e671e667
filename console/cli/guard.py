"""The last line of defence for every command.

- ``OutputGuard``: stdout and stderr of a command pass through the one sanitizer and the
  redactor, whoever printed: no raw control or bidi character reaches the operator's
  terminal, no known secret reaches a terminal, a pipe or a log.
- ``crash``: anything unexpected becomes one line naming a log file that holds the
  traceback (exit 1). The line carries ``CRASH_MARKER``; the test suite asserts the
  marker never shows for the inputs it tries: a bad input must get its own sentence.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from console import safe_text
from console.journal.redact import Redactor

CRASH_MARKER = "unexpected internal error"
_FLUSH_AT = 64 * 1024  # characters held back at most while waiting for a line's end


class OutputGuard(io.TextIOBase):
    """A text stream that cleans and redacts whole lines before they reach ``raw``.

    Lines are held until their newline (json.dump writes a document in many small
    pieces, and a secret must not slip through split in two); ``flush()`` lets a
    prompt without a newline out.
    """

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw
        self._pending = ""
        self._redactor = Redactor()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            end = self._pending.rfind("\n")
            if end >= 0:
                ready, self._pending = self._pending[: end + 1], self._pending[end + 1 :]
                self.raw.write(self._filter(ready))
            if len(self._pending) > _FLUSH_AT:
                ready, self._pending = self._pending, ""
                self.raw.write(self._filter(ready))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                ready, self._pending = self._pending, ""
                self.raw.write(self._filter(ready))
        self.raw.flush()

    def _filter(self, text: str) -> str:
        return safe_text.terminal(self._redactor.known(text))

    # The rest is the real stream's: isatty(), fileno(), encoding (input() and Textual ask).
    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.raw.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self.raw.errors

    @property
    def buffer(self) -> Any:
        return self.raw.buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def guard_output() -> None:
    """Route sys.stdout and sys.stderr through ``OutputGuard`` (once)."""
    if not isinstance(sys.stdout, OutputGuard):
        sys.stdout = OutputGuard(sys.stdout)
    if not isinstance(sys.stderr, OutputGuard):
        sys.stderr = OutputGuard(sys.stderr)


def release_output() -> None:
    """Flush what the guards hold and put the real streams back."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, OutputGuard):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
            setattr(sys, name, stream.raw)


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "rollback-console"


def _crash_log(text: str) -> Path | None:
    """Write the details to a private file; None if even that is impossible."""
    when = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    directory = state_dir() / "crashes"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / f"crash-{when}-{os.getpid()}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
        return path
    except OSError:
        return None


def crash(exc: BaseException, argv: list[str] | None = None) -> int:
    """One line on stderr for an exception nobody handled, the details in a log file; exit 1."""
    redactor = Redactor(max_string=2_000_000)  # known secrets and secret-looking values
    details = "".join(traceback.format_exception(exc))
    header = f"rollback-console {' '.join(argv if argv is not None else sys.argv[1:])}\n"
    path = _crash_log(redactor.text(header + details))
    summary = safe_text.one_line(redactor.text(f"{type(exc).__name__}: {exc}"))[:300]
    where = f"details in {path}" if path else "and the details could not be written to a log file"
    print(f"rollback-console: {CRASH_MARKER} ({summary}); {where}. Please report it.", file=sys.stderr)
    return 1


def install_hooks() -> None:
    """Exceptions in threads and at garbage collection go to the crash log too, as one
    line each, not as a traceback on the operator's terminal; a stop signal's interrupt
    that a finalizer swallowed is not a crash, and is delivered again."""

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        crash(args.exc_value)

    def unraisable_hook(args: Any) -> None:
        if isinstance(args.exc_value, KeyboardInterrupt):  # a stop signal, handled in a finalizer
            from console import shutdown

            try:
                shutdown.deliver_again()
            except KeyboardInterrupt:  # delivered while still in here: lost again, so once more
                shutdown.deliver_again()
        elif args.exc_value is not None:
            crash(args.exc_value)

    threading.excepthook = thread_hook
    sys.unraisablehook = unraisable_hook
    # Library warnings (asyncio's "Task exception was never retrieved" among them) as one
    # clean line each, their tracebacks in the crash log: logging's fallback prints them raw.
    if not any(isinstance(h, _OneLineLog) for h in logging.getLogger().handlers):
        logging.getLogger().addHandler(_OneLineLog(logging.WARNING))


class _OneLineLog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            redactor = Redactor(max_string=2_000_000)
            first, *rest = record.getMessage().splitlines() or [""]
            message = safe_text.one_line(redactor.text(first))[:300] + (" …" if rest else "")
            where = ""
            if record.exc_info and record.exc_info[1] is not None:
                details = "".join(traceback.format_exception(record.exc_info[1]))
                path = _crash_log(redactor.text(f"{record.name}: {record.getMessage()}\n{details}"))
                where = f" (details in {path})" if path else ""
            print(f"rollback-console: {record.levelname.lower()}: {message}{where}", file=sys.stderr)
        except Exception:
            self.handleError(record)
