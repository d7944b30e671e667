"""Files over SFTP, for the SSH transport: bounded reads, atomic writes with a backup, the
end of a log; every operation bounded in time, and every error naming the host and what
was being done. Regular files only: a FIFO or a device is refused before it is opened."""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import secrets
import stat
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import asyncssh

from console import files
from console.config.model import Host
from console.transport.base import TAIL_WINDOW, TransportError, split_tail
from console.transport.ssh_streams import KILL_TIMEOUT_S, READ_CHUNK

T = TypeVar("T")

# Files are opened with block_size=0: one read request at a time. asyncssh's parallel reads
# run as tasks that a cancelled read (a probe timeout) leaves behind, and their SFTPEOFError
# then reaches stderr as "Task exception was never retrieved".
MIN_FILE_OP_TIMEOUT_S = 30.0


class SFTPFiles:
    """The file half of SSHTransport (mixed into it): one SFTP session per connection,
    started on first use and again after it broke."""

    host: Host
    _conn: asyncssh.SSHClientConnection
    _sftp: asyncssh.SFTPClient | None
    _sftp_lock: asyncio.Lock

    if TYPE_CHECKING:  # SSHTransport's

        @property
        def where(self) -> str: ...

        def _lost(self, doing: str, exc: BaseException) -> TransportError: ...

    async def _sftp_client(self) -> asyncssh.SFTPClient:
        async with self._sftp_lock:
            if self._sftp is None:
                try:
                    self._sftp = await self._conn.start_sftp_client()
                except (asyncssh.Error, OSError) as exc:
                    raise self._lost("starting SFTP (is the sftp subsystem enabled in sshd?)", exc) from None
            return self._sftp

    async def _file_op(self, doing: str, op: Callable[[asyncssh.SFTPClient], Awaitable[T]]) -> T:
        """One bounded SFTP operation; errors name the host and what was being done."""
        sftp = await self._sftp_client()
        try:
            return await asyncio.wait_for(op(sftp), max(MIN_FILE_OP_TIMEOUT_S, self.host.connect_timeout * 3))
        except TimeoutError:
            # The server answers SFTP requests one at a time: one stuck in open() or read()
            # (a hung mount) holds up every later one. Start a fresh session next time.
            if self._sftp is sftp:
                self._sftp = None
                with contextlib.suppress(Exception):
                    sftp.exit()
            raise TransportError(f"{self.where}: timed out {doing}") from None
        except asyncssh.SFTPError as exc:
            raise TransportError(f"{self.where}: cannot {doing}: {exc.reason}") from None
        except (asyncssh.Error, OSError) as exc:
            self._sftp = None  # the SFTP channel may be gone; start a new one next time
            raise self._lost(doing, exc) from None

    @staticmethod
    async def _read_all(sftp: asyncssh.SFTPClient, path: str, max_bytes: int) -> bytes | None:
        """Read until EOF, not to the reported size: /proc files report size 0.

        None when the file holds more than ``max_bytes``.
        """
        data = bytearray()
        await _check_regular(sftp, path)  # before open(): a FIFO would block the server's open
        async with sftp.open(path, "rb", block_size=0) as fh:
            while len(data) <= max_bytes:
                chunk = await fh.read(min(1024 * 1024, max_bytes + 1 - len(data)))
                if not chunk:
                    return bytes(data)
                data += chunk
        return None

    async def read_file(self, path: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        data = await self._file_op(f"read {path}", lambda sftp: self._read_all(sftp, path, max_bytes))
        if data is None:
            raise TransportError(f"{self.where}: {path} is larger than {max_bytes} bytes")
        return data

    async def size(self, path: str) -> int:
        async def stat_size(sftp: asyncssh.SFTPClient) -> int:
            attrs = await sftp.stat(path)  # follows symlinks, as reading the file does
            kind = _kind(attrs)
            if kind:
                raise asyncssh.SFTPFailure(f"it is {kind}, not a regular file")
            if attrs.size is None:
                raise asyncssh.SFTPFailure("the server did not say its size")
            return attrs.size

        return await self._file_op(f"stat {path}", stat_size)

    async def write_file_atomic(self, path: str, data: bytes, *, backup_path: str | None) -> None:
        # Through a symlink to its target, and the link kept (a rename onto the link would
        # replace it with a regular file and leave the file the service reads unchanged).
        path = await self._file_op(f"resolve {path}", lambda sftp: _link_target(sftp, path))
        directory = posixpath.dirname(path) or "."
        tmp = posixpath.join(directory, f".{posixpath.basename(path)}.rollback-console.{secrets.token_hex(6)}.tmp")

        async def stat_old(sftp: asyncssh.SFTPClient) -> asyncssh.SFTPAttrs | None:
            try:
                return await sftp.stat(path)
            except asyncssh.SFTPNoSuchFile:
                return None

        async def write(sftp: asyncssh.SFTPClient, target: str, content: bytes, mode: int) -> None:
            # Created private; the final mode is set once the content is complete.
            async with sftp.open(target, "wb", asyncssh.SFTPAttrs(permissions=0o600), block_size=0) as fh:
                for start in range(0, len(content), READ_CHUNK):  # one request at a time (see READ_CHUNK)
                    await fh.write(content[start : start + READ_CHUNK], start)
                with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                    await fh.fsync()  # fsync@openssh.com: the bytes are on disk before the rename
            await sftp.chmod(target, mode)

        async def keep_owner(sftp: asyncssh.SFTPClient, target: str, old: asyncssh.SFTPAttrs) -> None:
            if old.uid is not None and old.gid is not None:
                # Only root may give a file away; as anyone else the owner stays ours.
                with contextlib.suppress(asyncssh.SFTPPermissionDenied, asyncssh.SFTPFailure):
                    await sftp.chown(target, old.uid, old.gid)

        old = await self._file_op(f"stat {path}", stat_old)
        kind = _kind(old) if old is not None else None
        if kind:
            raise TransportError(f"{self.where}: cannot write {path}: it is {kind}, not a regular file")
        mode = (old.permissions or 0o600) & 0o7777 if old is not None else 0o600
        if backup_path and old is not None:
            previous = await self.read_file(path)
            await self._file_op(f"write backup {backup_path}", lambda sftp: write(sftp, backup_path, previous, mode))
            await self._file_op(f"write backup {backup_path}", lambda sftp: keep_owner(sftp, backup_path, old))

        async def replace(sftp: asyncssh.SFTPClient) -> None:
            await write(sftp, tmp, data, mode)
            if old is not None:
                await keep_owner(sftp, tmp, old)
            await sftp.posix_rename(tmp, path)  # posix-rename@openssh.com: atomic, replaces

        try:
            await self._file_op(f"write {path}", replace)
        except BaseException:
            # Shielded so a cancellation still removes the half-done temp file.
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._remove_quietly(tmp))
            raise

    async def _remove_quietly(self, path: str) -> None:
        with contextlib.suppress(Exception):
            sftp = await self._sftp_client()
            await asyncio.wait_for(sftp.remove(path), KILL_TIMEOUT_S)

    async def tail(self, path: str, lines: int) -> list[str]:
        async def read_end(sftp: asyncssh.SFTPClient) -> tuple[bytes, bool]:
            # Only the last TAIL_WINDOW bytes cross the wire, however big the log.
            await _check_regular(sftp, path)
            async with sftp.open(path, "rb", block_size=0) as fh:
                size = (await fh.stat()).size or 0
                start = max(0, size - TAIL_WINDOW)
                data = bytearray()
                while len(data) < TAIL_WINDOW:  # one request per round: the server may send less
                    chunk = await fh.read(TAIL_WINDOW - len(data), start + len(data))
                    if not chunk:
                        break
                    data += chunk
                return bytes(data), start > 0

        data, cut = await self._file_op(f"read log {path}", read_end)
        return split_tail(data, lines, cut_first=cut)


def _kind(attrs: asyncssh.SFTPAttrs) -> str | None:
    """What a remote path is, in words, when it is not a regular file."""
    if attrs.permissions is not None and stat.S_IFMT(attrs.permissions):
        return files.kind_name(attrs.permissions)
    if attrs.type in (asyncssh.FILEXFER_TYPE_REGULAR, asyncssh.FILEXFER_TYPE_UNKNOWN):
        return None
    return "a directory" if attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY else "not a regular file"


async def _check_regular(sftp: asyncssh.SFTPClient, path: str) -> None:
    kind = _kind(await sftp.stat(path))
    if kind:
        raise asyncssh.SFTPFailure(f"it is {kind}, not a regular file")  # SFTP would only say "Failure"


MAX_LINK_HOPS = 40


async def _link_target(sftp: asyncssh.SFTPClient, path: str) -> str:
    """The file a (chain of) symlink(s) points at; ``path`` itself when it is no link
    or does not exist yet."""
    for _ in range(MAX_LINK_HOPS):
        try:
            attrs = await sftp.lstat(path)
        except asyncssh.SFTPNoSuchFile:
            return path
        if not (attrs.permissions is not None and stat.S_ISLNK(attrs.permissions)) and (
            attrs.type != asyncssh.FILEXFER_TYPE_SYMLINK
        ):
            return path
        link = await sftp.readlink(path)
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), link))
    raise asyncssh.SFTPFailure(f"more than {MAX_LINK_HOPS} symlinks in a row (a loop?)")
