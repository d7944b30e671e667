"""Commands over SSH: how a command is sent (under /bin/sh, its process group announced, a
remote `timeout` backstop) and how its output streams are read back (bounded, line by line)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex

import asyncssh

from console.transport.base import MAX_LINE, MAX_OUTPUT, OutputCallback, decode

READ_CHUNK = 64 * 1024
# The remote shell announces its process group on stderr before running the command,
# so a timeout can kill the whole group (OpenSSH does not kill it when the channel closes).
PGID_MARKER = b"rollback-console:pgid:"
# Extra seconds a remote `timeout` backstop waits past our own timeout, in case the
# console dies or the connection drops before it can kill the command itself.
BACKSTOP_GRACE_S = 30
KILL_TIMEOUT_S = 5.0  # longest a kill, a removal or a close is waited for


def wrap_command(command: str, timeout: float) -> str:
    """The command as sent: under /bin/sh whatever the login shell, pgid announced, backstop.

    sshd starts each session with setsid(), so the login shell's pid ($$ after exec)
    is the process group of everything the command starts.
    """
    backstop = int(timeout) + BACKSTOP_GRACE_S
    inner = shlex.quote(command)
    script = (
        f"echo {PGID_MARKER.decode()}$$ >&2; "
        "if command -v timeout >/dev/null 2>&1; "
        f"then exec timeout -s KILL {backstop} /bin/sh -c {inner}; "
        f"else exec /bin/sh -c {inner}; fi"
    )
    return f"exec /bin/sh -c {shlex.quote(script)}"


async def kill_groups(conn: asyncssh.SSHClientConnection, *pgids: int) -> None:
    """Kill these process groups on the host, from a session of its own (best effort: the
    remote backstop is there for what this misses)."""
    groups = " ".join(f"-{pgid}" for pgid in pgids if pgid > 1)
    if groups and not conn.is_closed():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.run(f"kill -s KILL -- {groups} 2>/dev/null", check=False), KILL_TIMEOUT_S)


async def collect(task: asyncio.Future) -> None:
    """Let a command's reading task take in its last output, then give up on it."""
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(task, KILL_TIMEOUT_S)
    if not task.done():
        task.cancel()


def retrieve(task: asyncio.Future) -> None:
    """Mark a task's exception as seen (its caller reports the failure its own way)."""
    if not task.cancelled():
        task.exception()


class LineSink:
    """Bounded capture of one output stream, with line-by-line callbacks."""

    def __init__(self, name: str, on_output: OutputCallback | None) -> None:
        self.name = name
        self.on_output = on_output
        self.data = bytearray()
        self.truncated = False
        self.pending = bytearray()  # the current, unfinished line (clipped)

    def feed(self, chunk: bytes) -> None:
        room = MAX_OUTPUT - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        if len(chunk) > room:
            self.truncated = True
        if self.on_output is None:
            return
        *lines, rest = chunk.split(b"\n")
        for line in lines:
            self._add(line)
            self._emit()
        self._add(rest)

    def _add(self, part: bytes) -> None:
        # 4 bytes per character at most: enough bytes for MAX_LINE characters.
        room = MAX_LINE * 4 - len(self.pending)
        if room > 0:
            self.pending += part[:room]

    def _emit(self) -> None:
        assert self.on_output is not None
        self.on_output(self.name, decode(bytes(self.pending).rstrip(b"\r"))[:MAX_LINE])
        self.pending.clear()

    def close(self) -> None:
        if self.on_output is not None and self.pending:
            self._emit()


class ProcessGroup:
    """The remote process group, once the shell has announced it."""

    def __init__(self) -> None:
        self.pgid = 0
        self.known = asyncio.Event()

    def found(self, pgid: int) -> None:
        self.pgid = pgid
        self.known.set()


async def pump(reader: asyncssh.SSHReader[bytes], sink: LineSink, group: ProcessGroup | None = None) -> None:
    """Copy a stream into ``sink``; on stderr, first take out the pgid marker line."""
    head = b""  # stderr before the marker: login noise, or the marker itself
    while True:
        chunk = await reader.read(READ_CHUNK)
        if not chunk:
            if head:
                sink.feed(head)
            if group is not None and not group.known.is_set():
                group.found(0)
            return
        if group is not None and not group.known.is_set():
            head += chunk
            start = head.find(PGID_MARKER)
            end = head.find(b"\n", start) if start >= 0 else -1
            if end < 0:
                if len(head) > READ_CHUNK:  # this much noise and no marker: stop looking
                    sink.feed(head)
                    head = b""
                    group.found(0)
                continue
            digits = head[start + len(PGID_MARKER) : end]
            group.found(int(digits) if digits.isdigit() else 0)
            chunk, head = head[:start] + head[end + 1 :], b""
            if not chunk:
                continue
        sink.feed(chunk)
