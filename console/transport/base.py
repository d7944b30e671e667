"""One interface to a host, whether it is this machine or one reached over SSH."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass

from console.config.model import Host

MAX_OUTPUT = 1024 * 1024  # bytes kept of a command's stdout or stderr
TAIL_WINDOW = 1024 * 1024  # bytes read from the end of a log before splitting lines
MAX_LINE = 4096  # characters kept of one log line

OutputCallback = Callable[[str, str], None]  # (stream name, line)


class TransportError(RuntimeError):
    """A host could not be reached or an operation on it failed; the message says where."""


class HostKeyError(TransportError):
    """The host's key is unknown or changed; the message carries its fingerprint."""


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int | None  # None when it timed out or was killed by a signal
    stdout: str
    stderr: str
    elapsed_s: float
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and not self.timed_out

    def summary(self) -> str:
        if self.timed_out:
            return f"timed out after {self.elapsed_s:.1f}s"
        return f"exit {self.exit_status} in {self.elapsed_s:.2f}s"


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def split_tail(data: bytes, lines: int, *, cut_first: bool) -> list[str]:
    """The last ``lines`` lines of a chunk read from the end of a file.

    ``cut_first``: the chunk started mid-file, so its first line is partial.
    Each line is decoded leniently and clipped, so binary or endless lines are safe.
    """
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    if cut_first and len(parts) > 1:
        parts = parts[1:]
    out = []
    for raw in parts[-lines:] if lines > 0 else []:
        text = decode(raw.rstrip(b"\r")).replace("\x00", "\ufffd")
        if len(text) > MAX_LINE:
            text = text[:MAX_LINE] + f"… [{len(text) - MAX_LINE} more characters]"
        out.append(text)
    return out


class Transport(abc.ABC):
    """Operations the console needs on a host. Every call is bounded in time."""

    def __init__(self, host: Host) -> None:
        self.host = host

    @property
    def where(self) -> str:
        return self.host.describe()

    @abc.abstractmethod
    async def run(
        self,
        command: str,
        *,
        timeout: float,
        on_output: OutputCallback | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run a shell command; stream its lines to ``on_output``; never raise on a bad exit."""

    async def run_short(self, command: str, *, timeout: float) -> CommandResult:
        """``run`` for the console's own short commands (the pid, the log's lines, the lock),
        never a configured restart: over SSH they share a shell kept open on the host, so a
        command must not leave a process behind that writes to its output."""
        return await self.run(command, timeout=timeout)

    @abc.abstractmethod
    async def read_file(self, path: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        """The whole file; TransportError (saying which host and path) if it cannot be read."""

    @abc.abstractmethod
    async def write_file_atomic(self, path: str, data: bytes, *, backup_path: str | None) -> None:
        """Replace a file all at once: temp file beside it, fsync, rename.

        The old content is first copied to ``backup_path`` when given. Mode and owner
        of the old file are kept. A failure leaves the old file as it was.
        """

    @abc.abstractmethod
    async def size(self, path: str) -> int:
        """The size in bytes of a regular file (through symlinks); TransportError saying
        which host and path when it is missing, unreadable or not a regular file."""

    @abc.abstractmethod
    async def tail(self, path: str, lines: int) -> list[str]:
        """The last ``lines`` lines of a file, bounded in bytes and line length."""

    @abc.abstractmethod
    async def forward(self, host: str, port: int) -> tuple[str, int]:
        """An address on this machine that reaches host:port as seen from the target."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def exists(self, path: str) -> bool:
        from shlex import quote

        result = await self.run(f"test -e {quote(path)}", timeout=10)
        return result.exit_status == 0

    async def process_environ(self, pid: int) -> dict[str, str]:
        """The environment a running process was started with (``/proc/PID/environ``)."""
        data = await self.read_file(f"/proc/{int(pid)}/environ", max_bytes=4 * 1024 * 1024)
        env: dict[str, str] = {}
        for item in data.split(b"\x00"):
            if b"=" in item:
                key, _, value = item.partition(b"=")
                env[decode(key)] = decode(value)
        return env

    async def process_rss(self, pid: int) -> int:
        """Resident memory of a process in bytes, from ``/proc/PID/status``."""
        data = await self.read_file(f"/proc/{int(pid)}/status", max_bytes=64 * 1024)
        for line in decode(data).splitlines():
            if line.startswith("VmRSS:"):
                parts = line.split()
                return int(parts[1]) * 1024
        raise TransportError(f"{self.where}: process {pid} has no VmRSS (a zombie?)")

    async def tail_command(self, command: str, lines: int, *, timeout: float) -> list[str]:
        """The last lines of a command's output, for log sources like journalctl."""
        result = await self.run(command.replace("{lines}", str(int(lines))), timeout=timeout)
        if not result.ok and not result.stdout:
            raise TransportError(
                f"{self.where}: log command {command!r} failed ({result.summary()}): {result.stderr.strip()[:300]}"
            )
        data = result.stdout.encode("utf-8", errors="replace")
        return split_tail(data, lines, cut_first=False)


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start
