"""The transport for ``hosts = ["local"]``: this machine, through asyncio subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile

from console import files
from console.transport.base import (
    MAX_OUTPUT,
    TAIL_WINDOW,
    CommandResult,
    OutputCallback,
    Stopwatch,
    Transport,
    TransportError,
    decode,
    split_tail,
)


async def pump(stream: asyncio.StreamReader, name: str, sink: bytearray, on_output: OutputCallback | None) -> bool:
    """Copy a stream into ``sink`` (bounded), calling back line by line. True if truncated."""
    truncated = False
    while True:
        try:
            line = await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            line = exc.partial
        except asyncio.LimitOverrunError as exc:
            line = await stream.readexactly(exc.consumed)
        if not line:
            return truncated
        room = MAX_OUTPUT - len(sink)
        if room > 0:
            sink += line[:room]
        truncated = truncated or len(line) > room
        if on_output:
            on_output(name, decode(line.rstrip(b"\r\n"))[:4096])


class LocalTransport(Transport):
    async def run(
        self,
        command: str,
        *,
        timeout: float,
        on_output: OutputCallback | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        clock = Stopwatch()
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # so a timeout can kill the whole process group
        )
        out, err = bytearray(), bytearray()
        assert proc.stdout and proc.stderr

        async def feed() -> None:
            if stdin is not None and proc.stdin:
                # Written alongside the readers: a large input must not deadlock on full pipes.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.write(stdin)
                    await proc.stdin.drain()
                proc.stdin.close()

        async def communicate() -> tuple[bool, bool]:
            _, t1, t2 = await asyncio.gather(
                feed(),
                pump(proc.stdout, "stdout", out, on_output),
                pump(proc.stderr, "stderr", err, on_output),
            )
            await proc.wait()
            return t1, t2

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.stdin and not proc.stdin.is_closing():
                proc.stdin.close()  # else wait() waits for a pipe nobody will close

        timed_out = False
        truncated = False
        try:
            t1, t2 = await asyncio.wait_for(communicate(), timeout)
            truncated = t1 or t2
        except TimeoutError:
            timed_out = True
            kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
        except asyncio.CancelledError:
            kill()
            # Reaped before going: its pipes' transport closes once the process is seen to
            # exit. Left to the garbage collector it is closed after the loop (an app that
            # quit mid-probe), and says so on stderr.
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(proc.wait(), 2)
            raise
        status = None if timed_out or proc.returncode is None or proc.returncode < 0 else proc.returncode
        return CommandResult(
            command=command,
            exit_status=status,  # None when killed by a signal, as over SSH
            stdout=decode(bytes(out)),
            stderr=decode(bytes(err)),
            elapsed_s=clock.elapsed,
            timed_out=timed_out,
            truncated=truncated,
        )

    async def read_file(self, path: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        # A named pipe, device or hung mount must not block the probe's threads for ever.
        try:
            return await files.read_file_async(path, max_bytes=max_bytes)
        except files.FileProblem as exc:
            raise TransportError(f"local: {exc}") from None
        except OSError as exc:
            raise TransportError(f"local: cannot read {path}: {exc.strerror or exc}") from None

    async def size(self, path: str) -> int:
        def stat() -> int:
            st = os.stat(path)  # through symlinks, as reading the file does
            problem = files.not_regular(path, st.st_mode)
            if problem:
                raise problem
            return st.st_size

        try:
            # A stat on a hung mount blocks: bounded, off the loop.
            return await files.with_deadline_async(stat, files.READ_TIMEOUT_S, path)
        except files.FileProblem as exc:
            raise TransportError(f"local: {exc}") from None
        except OSError as exc:
            raise TransportError(f"local: cannot stat {path}: {exc.strerror or exc}") from None

    async def write_file_atomic(self, path: str, data: bytes, *, backup_path: str | None) -> None:
        def write() -> None:
            # Through a symlink to its target, and the link kept: replacing the link with a
            # regular file would leave the file the service reads unchanged.
            target = os.path.realpath(path)
            directory = os.path.dirname(target)
            st = os.stat(target) if os.path.exists(target) else None
            kind = files.kind_name(st.st_mode) if st is not None else None
            if kind:
                raise TransportError(f"local: cannot write {path}: it is {kind}, not a regular file")
            if backup_path and st is not None:
                try:
                    shutil.copy2(target, backup_path)
                except OSError as exc:
                    raise TransportError(f"local: cannot write the backup {backup_path}: {exc.strerror}") from None
            fd, tmp = tempfile.mkstemp(prefix=".rollback-console.", dir=directory)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                if st is not None:
                    os.chmod(tmp, st.st_mode & 0o7777)
                    with contextlib.suppress(PermissionError):
                        os.chown(tmp, st.st_uid, st.st_gid)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise TransportError(f"local: cannot write {path}: {exc.strerror}") from None

    async def tail(self, path: str, lines: int) -> list[str]:
        def read() -> tuple[bytes, bool]:
            fd = files.open_regular(path)
            try:
                size = os.lseek(fd, 0, os.SEEK_END)
                start = max(0, size - TAIL_WINDOW)
                return os.pread(fd, TAIL_WINDOW, start), start > 0
            finally:
                os.close(fd)

        try:
            data, cut = await files.with_deadline_async(read, files.READ_TIMEOUT_S, path)
        except files.FileProblem as exc:
            raise TransportError(f"local: log {exc}") from None
        except OSError as exc:
            raise TransportError(f"local: cannot read log {path}: {exc.strerror or exc}") from None
        return split_tail(data, lines, cut_first=cut)

    async def forward(self, host: str, port: int) -> tuple[str, int]:
        return host, port

    async def close(self) -> None:
        return None
