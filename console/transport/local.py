"""The transport for ``hosts = ["local"]``: this machine, through asyncio subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile

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
        def read() -> bytes:
            with open(path, "rb") as fh:
                data = fh.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise TransportError(f"local: {path} is larger than {max_bytes} bytes")
            return data

        try:
            return await asyncio.to_thread(read)
        except OSError as exc:
            raise TransportError(f"local: cannot read {path}: {exc.strerror}") from None

    async def write_file_atomic(self, path: str, data: bytes, *, backup_path: str | None) -> None:
        def write() -> None:
            directory = os.path.dirname(os.path.abspath(path))
            st = os.stat(path) if os.path.exists(path) else None
            if backup_path and st is not None:
                try:
                    shutil.copy2(path, backup_path)
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
                os.replace(tmp, path)
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
            with open(path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                start = max(0, size - TAIL_WINDOW)
                fh.seek(start)
                return fh.read(TAIL_WINDOW), start > 0

        try:
            data, cut = await asyncio.to_thread(read)
        except OSError as exc:
            raise TransportError(f"local: cannot read log {path}: {exc.strerror}") from None
        return split_tail(data, lines, cut_first=cut)

    async def forward(self, host: str, port: int) -> tuple[str, int]:
        return host, port

    async def close(self) -> None:
        return None
