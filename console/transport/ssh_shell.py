"""A /bin/sh kept open on a host for the console's own short commands (the pid, the log's
lines, the lock): one SSH session for many commands instead of one each, which on a fleet is
most of the console's SSH cost. A command written to it is framed by a random token:

- on stdout ``TOKEN:start``, the command's output, ``TOKEN:end:STATUS``;
- on stderr ``TOKEN:start:SHELLPID``, the command's errors (with ``TOKEN:pid:CMDPID`` somewhere
  in them), ``TOKEN:end``.

Anything outside a frame (a login script's noise, a stray background process's output between
commands) is dropped. The command runs as it would alone, ``/bin/sh -c`` under the remote
``timeout`` backstop, stdin from /dev/null, in a process group of its own (timeout makes one).
A timeout, a cancellation or anything unexpected kills the command's group and the shell's and
drops the shell: the next command gets a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shlex

import asyncssh

from console.transport.base import CommandResult, Stopwatch, decode
from console.transport.ssh_streams import (
    BACKSTOP_GRACE_S,
    KILL_TIMEOUT_S,
    READ_CHUNK,
    LineSink,
    ProcessGroup,
    collect,
    kill_groups,
    retrieve,
)

IDLE_SHELLS = 2  # kept open per host once used; more at once are closed after their command


class ShellEnded(Exception):
    """The shell's output ended (it died, or the connection did) before the frame's end."""


class ShellDied(Exception):
    """The shell ended while the command ran, or may have run: its outcome is unknown."""


class Frame:
    """One stream of one command: its bytes between the start and end markers, into a sink."""

    def __init__(self, token: bytes, sink: LineSink) -> None:
        self.token = token
        self.sink = sink
        self.buf = bytearray()
        self.started = False
        self.ended = False
        self.start_value = b""  # after ``TOKEN:start:`` (stderr: the shell's pid)
        self.end_value = b""  # after ``TOKEN:end:`` (stdout: the exit status)
        self.group = ProcessGroup()  # the command's, from ``TOKEN:pid:`` (stderr; timeout makes it one)

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        while not self.ended:
            at = self.buf.find(self.token)
            if at < 0:
                # Keep what could be the start of a token split across reads.
                keep = len(self.token) - 1
                self._release(max(0, len(self.buf) - keep))
                return
            eol = self.buf.find(b"\n", at)
            if eol < 0:
                self._release(at)
                return
            kind, _, value = bytes(self.buf[at + len(self.token) + 1 : eol]).partition(b":")
            if not self.started:
                if kind == b"start":
                    self.started, self.start_value = True, value
                del self.buf[: eol + 1]  # before the start: not this command's
                continue
            if kind == b"pid":
                self.group.found(int(value) if value.isdigit() else 0)
                del self.buf[at : eol + 1]
            elif kind == b"end":
                self._release(at)
                self.ended, self.end_value = True, value
                if not self.group.known.is_set():
                    self.group.found(0)
                self.buf.clear()  # after the end: nothing of this command
            else:  # our token with no known marker: the command's own bytes
                self._release(at + len(self.token))

    def flush(self) -> None:
        """What is held back in case it starts a marker: the command's, once no more comes
        (a timeout). A marker's line cut off mid-way stays out."""
        if self.started and not self.ended:
            at = self.buf.find(self.token)
            self._release(len(self.buf) if at < 0 else at)

    def _release(self, upto: int) -> None:
        if upto <= 0:
            return
        if self.started:
            self.sink.feed(bytes(self.buf[:upto]))
        del self.buf[:upto]


class Shell:
    """One /bin/sh on the host, running one framed command at a time."""

    def __init__(self, process: asyncssh.SSHClientProcess) -> None:
        self.process = process
        self.pid = 0  # the shell's, once a frame said it: its process group (sshd's setsid)
        self.broken = False  # killed, or its stream left mid-frame: never reused
        self.frames: tuple[Frame, Frame] | None = None  # the command's being read

    @classmethod
    async def open(cls, conn: asyncssh.SSHClientConnection, timeout: float) -> Shell:
        process = await asyncio.wait_for(conn.create_process("exec /bin/sh", encoding=None), timeout)
        return cls(process)

    @property
    def usable(self) -> bool:
        process = self.process
        return (
            not self.broken
            and not process.is_closing()
            and process.exit_status is None
            and process.exit_signal is None
            and not process.stdout.at_eof()
            and not process.stderr.at_eof()
        )

    def close(self) -> None:
        self.broken = True
        self.process.close()

    async def run(self, command: str, timeout: float, out: LineSink, err: LineSink) -> tuple[Frame, Frame]:
        """Write the command's frame and read both streams to their end markers (the caller
        bounds the time). ShellEnded when the output ends first."""
        token = b"rollback-console:" + secrets.token_hex(16).encode()
        t = token.decode()
        backstop = int(timeout) + BACKSTOP_GRACE_S
        inner = shlex.quote(command)
        stdout, stderr = Frame(token, out), Frame(token, err)
        self.frames = (stdout, stderr)
        script = (
            f"printf '%s\\n' {t}:start; printf '%s:%s\\n' {t}:start $$ >&2; "
            "if command -v timeout >/dev/null 2>&1; "
            f"then timeout -s KILL {backstop} /bin/sh -c {inner} </dev/null & "
            f"else /bin/sh -c {inner} </dev/null & fi; "
            f'printf \'%s:%s\\n\' {t}:pid "$!" >&2; wait "$!"; '
            f"printf '%s:%s\\n' {t}:end \"$?\"; printf '%s\\n' {t}:end >&2\n"
        )
        try:
            self.process.stdin.write(script.encode())
        except (BrokenPipeError, ConnectionResetError):  # the channel is closing: nothing ran
            self.broken = True
            raise ShellEnded() from None
        # Both streams to their ends, even when one ends early: whether the frame began is
        # known only once both are read.
        done = await asyncio.gather(
            self._read(self.process.stdout, stdout), self._read(self.process.stderr, stderr), return_exceptions=True
        )
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        return stdout, stderr

    async def _read(self, reader: asyncssh.SSHReader[bytes], frame: Frame) -> None:
        while not frame.ended:
            chunk = await reader.read(READ_CHUNK)
            if not chunk:
                self.broken = True
                raise ShellEnded()
            frame.feed(chunk)
            if frame.start_value.isdigit() and not self.pid:
                self.pid = int(frame.start_value)


async def run_in_shell(
    conn: asyncssh.SSHClientConnection, shells: list[Shell], command: str, timeout: float
) -> CommandResult:
    """``command`` in an idle shell of ``shells`` (a new one when none is idle); the same
    CommandResult as a session of its own would give. A shell found dead before the command
    began is replaced once (ShellEnded when the second is too: the command never ran);
    ShellDied when one ends during it."""
    clock = Stopwatch()
    for attempt in (1, 2):
        shell = None
        while shells and shell is None:
            candidate = shells.pop()
            if candidate.usable:
                shell = candidate
            else:
                candidate.close()
        if shell is None:
            try:
                shell = await Shell.open(conn, max(0.1, timeout - clock.elapsed))
            except TimeoutError:
                return CommandResult(command, None, "", "", clock.elapsed, timed_out=True)
        out, err = LineSink("stdout", None), LineSink("stderr", None)
        task = asyncio.ensure_future(shell.run(command, timeout, out, err))
        task.add_done_callback(retrieve)
        try:
            stdout, _ = await asyncio.wait_for(asyncio.shield(task), max(0.0, timeout - clock.elapsed))
        except TimeoutError:
            await _kill(conn, shell, task)
            return CommandResult(
                command,
                None,
                decode(bytes(out.data)),
                decode(bytes(err.data)),
                clock.elapsed,
                timed_out=True,
                truncated=out.truncated or err.truncated,
            )
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await asyncio.shield(_kill(conn, shell, task))
            raise
        except ShellEnded:
            shell.close()
            if any(f.started for f in shell.frames or ()):
                raise ShellDied() from None
            if attempt == 2:
                raise  # two shells ended unused: the caller runs it in a session of its own
            continue  # it never ran: once more, in a new shell
        except BaseException:
            await _kill(conn, shell, task)
            raise
        status = stdout.end_value
        if len(shells) < IDLE_SHELLS:
            shells.append(shell)
        else:
            shell.close()
        return CommandResult(
            command=command,
            exit_status=int(status) if status.isdigit() else None,
            stdout=decode(bytes(out.data)),
            stderr=decode(bytes(err.data)),
            elapsed_s=clock.elapsed,
            truncated=out.truncated or err.truncated,
        )
    raise AssertionError("unreachable")


async def _kill(conn: asyncssh.SSHClientConnection, shell: Shell, task: asyncio.Future) -> None:
    """Kill the command's process group and the shell's on the host, then drop the shell."""
    shell.broken = True
    _, stderr = shell.frames or (None, None)
    if stderr is not None and not task.done():
        # The command's pid comes once it is forked: wait for it a little, as run() does.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stderr.group.known.wait(), KILL_TIMEOUT_S)
    await kill_groups(conn, stderr.group.pgid if stderr else 0, shell.pid)
    shell.close()
    await collect(task)  # the last output
    for frame in shell.frames or ():
        frame.flush()
