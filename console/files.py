"""Files we do not own (configs, secret files, env files, logs, the shared journal), read
without ever blocking for good.

A named pipe, a device or a socket where a file should be would make ``open()`` or
``read()`` wait for ever; a hung network filesystem can do the same to a real file. So
every read here first checks what the path is (a regular file, not too big), opens it
non-blocking, and runs in a daemon thread with a deadline: past the deadline the caller
gets an answer (``FileProblem``) and the stuck thread cannot keep the process alive.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # asyncio is imported where it is used: the simulator's restart command needs none
    import asyncio

T = TypeVar("T")

READ_TIMEOUT_S = 10.0
_CHUNK = 1024 * 1024


class FileProblem(OSError):
    """The file cannot be read safely. str(): "PATH is a named pipe (FIFO), …";
    ``reason``: the same without the path, for messages that name it already."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}{'' if reason.startswith(':') else ' '}{reason}")

    def __str__(self) -> str:
        return str(self.args[0])


def kind_name(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def not_regular(path: str | os.PathLike[str], mode: int) -> FileProblem | None:
    kind = kind_name(mode)
    return None if kind is None else FileProblem(path, f"is {kind}, not a regular file")


def open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor of a regular file, opened without waiting for a writer;
    FileProblem for anything else. Raises OSError as open() does (missing, no access)."""
    st = os.stat(path)
    problem = not_regular(path, st.st_mode)
    if problem:
        raise problem
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        problem = not_regular(path, os.fstat(fd).st_mode)  # replaced between stat and open
        if problem:
            raise problem
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The whole regular file, at most ``max_bytes`` (FileProblem if it holds more)."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise FileProblem(path, f"is larger than {max_bytes} bytes ({size} bytes)")
        data = bytearray()
        while True:  # to EOF, not st_size: /proc files say 0 and a log may grow
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - len(data)))
            if not chunk:
                return bytes(data)
            data += chunk
            if len(data) > max_bytes:
                raise FileProblem(path, f"is larger than {max_bytes} bytes")
    finally:
        os.close(fd)


def with_deadline(fn: Callable[[], T], timeout: float, what: str) -> T:
    """``fn()`` in a daemon thread; FileProblem if it has not returned within ``timeout``."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    worker = threading.Thread(target=run, name=f"read {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise FileProblem(what, f": no answer within {timeout:g}s (a hung network filesystem or device?)")
    if error:
        raise error[0]
    return result[0]


def in_daemon_thread(fn: Callable[[], T], what: str) -> asyncio.Future[T]:
    """Run ``fn`` in a daemon thread; its result or exception settles the returned future.
    A thread stuck in the kernel (a FIFO, a hung NFS) is left behind, never waited for."""
    import asyncio

    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def run() -> None:
        value: T | None = None
        exc: BaseException | None = None
        try:
            value = fn()
        except BaseException as caught:
            exc = caught
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(settle, value, exc)

    threading.Thread(target=run, name=f"read {what}", daemon=True).start()
    return future


async def with_deadline_async(fn: Callable[[], T], timeout: float, what: str) -> T:
    """``with_deadline`` for async code: the event loop never waits on the thread."""
    import asyncio

    try:
        return await asyncio.wait_for(in_daemon_thread(fn, what), timeout)
    except TimeoutError:
        raise FileProblem(what, f": no answer within {timeout:g}s (a hung network filesystem or device?)") from None


def read_file(path: str | os.PathLike[str], *, max_bytes: int, timeout: float = READ_TIMEOUT_S) -> bytes:
    """``read_regular`` within a deadline."""
    return with_deadline(lambda: read_regular(path, max_bytes=max_bytes), timeout, os.fspath(path))


async def read_file_async(path: str | os.PathLike[str], *, max_bytes: int, timeout: float = READ_TIMEOUT_S) -> bytes:
    return await with_deadline_async(lambda: read_regular(path, max_bytes=max_bytes), timeout, os.fspath(path))
