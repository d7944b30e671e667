"""The transport for remote hosts: one asyncssh connection, commands, SFTP and port forwards.

Security stance: key authentication only, host keys checked against known_hosts, and an
unknown or changed host key is refused with its fingerprint and the way to trust it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import pwd
import secrets
import shlex
import socket
import stat
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncssh

from console import files
from console.config.model import Host
from console.transport.base import (
    MAX_LINE,
    MAX_OUTPUT,
    TAIL_WINDOW,
    CommandResult,
    HostKeyError,
    OutputCallback,
    Stopwatch,
    Transport,
    TransportError,
    decode,
    split_tail,
)

T = TypeVar("T")

READ_CHUNK = 64 * 1024
# Files are opened with block_size=0: one read request at a time. asyncssh's parallel reads
# run as tasks that a cancelled read (a probe timeout) leaves behind, and their SFTPEOFError
# then reaches stderr as "Task exception was never retrieved".
# The remote shell announces its process group on stderr before running the command,
# so a timeout can kill the whole group (OpenSSH does not kill it when the channel closes).
PGID_MARKER = b"rollback-console:pgid:"
# Extra seconds a remote `timeout` backstop waits past our own timeout, in case the
# console dies or the connection drops before it can kill the command itself.
BACKSTOP_GRACE_S = 30
KILL_TIMEOUT_S = 5.0
MIN_FILE_OP_TIMEOUT_S = 30.0
KEEPALIVE_INTERVAL_S = 15.0
# asyncssh's own ciphers, AES-GCM first: it costs the console about half the CPU of
# chacha20-poly1305 per packet (one AEAD call instead of two cipher contexts), which shows
# on a fleet; every one of them is an authenticated cipher OpenSSH offers by default.
ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)


def default_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return os.environ.get("USER", "root")


def label(host: Host) -> str:
    """How messages name the host: ``ssh deploy@10.0.0.5:22``."""
    return f"ssh {host.user or default_user()}@{host.address}:{host.port}"


def known_hosts_path(host: Host) -> str:
    return os.path.expanduser(host.known_hosts or "~/.ssh/known_hosts")


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


def _retrieve(task: asyncio.Future) -> None:
    """Mark a task's exception as seen (its caller reports the failure its own way)."""
    if not task.cancelled():
        task.exception()


class _Client(asyncssh.SSHClient):
    """Notices when the connection drops, so the pool can reconnect."""

    def __init__(self) -> None:
        self.lost = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


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


class _ProcessGroup:
    """The remote process group, once the shell has announced it."""

    def __init__(self) -> None:
        self.pgid = 0
        self.known = asyncio.Event()

    def found(self, pgid: int) -> None:
        self.pgid = pgid
        self.known.set()


async def _pump(reader: asyncssh.SSHReader[bytes], sink: LineSink, group: _ProcessGroup | None = None) -> None:
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


class SSHTransport(Transport):
    def __init__(self, host: Host, conn: asyncssh.SSHClientConnection, client: _Client) -> None:
        super().__init__(host)
        self._conn = conn
        self._client = client
        self._sftp: asyncssh.SFTPClient | None = None
        self._sftp_lock = asyncio.Lock()
        self._forwards: dict[tuple[str, int], asyncssh.SSHListener] = {}
        self._forward_lock = asyncio.Lock()
        self._closed = False

    # ----------------------------------------------------------------- connect

    @classmethod
    async def connect(cls, host: Host) -> SSHTransport:
        """Connect with key auth and a verified host key; TransportError saying why not."""
        where = label(host)
        known_hosts = known_hosts_path(host)
        problem, known_hosts_exists, key_file = await asyncio.to_thread(_local_files, host, known_hosts)
        if problem:
            raise TransportError(f"{where}: {problem}")
        client = _Client()
        kwargs: dict = {
            "port": host.port,
            "username": host.user or default_user(),
            # known_hosts must exist to be read; a missing file trusts nothing.
            "known_hosts": known_hosts if known_hosts_exists else ([], [], []),
            "connect_timeout": host.connect_timeout,
            "login_timeout": host.connect_timeout,
            # A silent network cut (no RST) is noticed within ~45 s, so the pool reconnects.
            "keepalive_interval": KEEPALIVE_INTERVAL_S,
            "keepalive_count_max": 3,
            # The console's config is the single source of truth, not ~/.ssh/config.
            "config": None,
            "password_auth": False,
            "kbdint_auth": False,
            "gss_auth": False,
            "gss_kex": False,
            "host_based_auth": False,
            "encryption_algs": list(ENCRYPTION_ALGS),
        }
        if host.key_file:
            kwargs["client_keys"] = [key_file]
            kwargs["agent_path"] = None  # an explicit key means that key, like IdentitiesOnly
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(host.address, client_factory=lambda: client, **kwargs),
                host.connect_timeout + 1,
            )
        except asyncssh.HostKeyNotVerifiable:
            raise await _host_key_error(host, known_hosts) from None
        except asyncssh.PermissionDenied:
            key = host.key_file or "the default keys and ssh-agent"
            raise TransportError(
                f"{where}: authentication failed: the server did not accept {key} "
                f"for user {host.user or default_user()}"
            ) from None
        except asyncssh.KeyImportError as exc:
            raise TransportError(f"{where}: cannot use key file {host.key_file}: {exc}") from None
        except TimeoutError:
            raise TransportError(f"{where}: connection timed out after {host.connect_timeout:g}s") from None
        except ConnectionRefusedError:
            raise TransportError(f"{where}: connection refused (is sshd running on port {host.port}?)") from None
        except socket.gaierror as exc:
            raise TransportError(f"{where}: cannot resolve {host.address}: {exc.strerror}") from None
        except asyncssh.DisconnectError as exc:
            raise TransportError(f"{where}: disconnected by the server: {exc.reason}") from None
        except asyncssh.Error as exc:
            raise TransportError(f"{where}: {exc.reason}") from None
        except OSError as exc:
            what = exc.strerror or str(exc) or type(exc).__name__
            if exc.filename:  # a key file that cannot be read
                raise TransportError(f"{where}: cannot read {exc.filename}: {what}") from None
            raise TransportError(f"{where}: {what}") from None
        return cls(host, conn, client)

    @property
    def where(self) -> str:
        return label(self.host)

    @property
    def closed(self) -> bool:
        """True once the connection was closed or dropped; the pool then reconnects."""
        return self._closed or self._client.lost or self._conn.is_closed()

    # ----------------------------------------------------------------- commands

    async def run(
        self,
        command: str,
        *,
        timeout: float,
        on_output: OutputCallback | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        clock = Stopwatch()
        out = LineSink("stdout", on_output)
        err = LineSink("stderr", on_output)
        group = _ProcessGroup()
        if self._closed:
            raise TransportError(f"{self.where}: the connection was closed; cannot run {command!r}")
        try:
            process = await asyncio.wait_for(
                self._conn.create_process(wrap_command(command, timeout), encoding=None), timeout
            )
        except TimeoutError:
            return CommandResult(command, None, "", "", clock.elapsed, timed_out=True)
        except (asyncssh.Error, OSError) as exc:
            raise self._lost(f"starting {command!r}", exc) from None

        async def feed() -> None:
            # Concurrent with reading: a command that echoes a large input must not deadlock.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if stdin:
                    process.stdin.write(stdin)
                    await process.stdin.drain()
                process.stdin.write_eof()

        async def communicate() -> None:
            await asyncio.gather(feed(), _pump(process.stdout, out), _pump(process.stderr, err, group))
            await process.wait_closed()

        # A task, shielded from the timeout: after a timeout it keeps reading until the
        # pgid marker shows up (the login shell may still be in its rc files) and the kill lands.
        task = asyncio.ensure_future(communicate())
        task.add_done_callback(_retrieve)  # _kill may give up on it: its exception must not go astray
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(task), max(0.0, timeout - clock.elapsed))
        except TimeoutError:
            timed_out = True
            await self._kill(group, process, task)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._kill(group, process, task))
            raise
        except (asyncssh.Error, OSError) as exc:
            await self._kill(group, process, task)
            raise self._lost(f"running {command!r}", exc) from None
        out.close()
        err.close()

        status: int | None = None
        if not timed_out:
            if process.exit_status is None and process.exit_signal is None:
                # No exit report: the connection went away under the command.
                raise TransportError(f"{self.where}: connection lost while running {command!r}")
            if process.exit_signal is None:
                status = process.exit_status
        return CommandResult(
            command=command,
            exit_status=status,
            stdout=decode(bytes(out.data)),
            stderr=decode(bytes(err.data)),
            elapsed_s=clock.elapsed,
            timed_out=timed_out,
            truncated=out.truncated or err.truncated,
        )

    async def _kill(self, group: _ProcessGroup, process: asyncssh.SSHClientProcess, task: asyncio.Future) -> None:
        """Kill the command's whole process group on the host, then drop the channel."""
        if not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(group.known.wait(), KILL_TIMEOUT_S)
            if group.pgid > 1:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._conn.run(f"kill -s KILL -- -{group.pgid} 2>/dev/null", check=False),
                        KILL_TIMEOUT_S,
                    )
        process.close()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, KILL_TIMEOUT_S)  # collect the last output
        if not task.done():
            task.cancel()

    def _lost(self, doing: str, exc: BaseException) -> TransportError:
        if isinstance(exc, asyncssh.Error):
            reason = exc.reason
        else:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if self.closed or isinstance(exc, asyncssh.ConnectionLost | asyncssh.DisconnectError):
            return TransportError(f"{self.where}: connection lost while {doing}: {reason}")
        return TransportError(f"{self.where}: failed while {doing}: {reason}")

    # ----------------------------------------------------------------- files

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

    # ----------------------------------------------------------------- forwards

    async def forward(self, host: str, port: int) -> tuple[str, int]:
        async with self._forward_lock:
            listener = self._forwards.get((host, port))
            if listener is None:
                try:
                    listener = await asyncio.wait_for(
                        self._conn.forward_local_port("127.0.0.1", 0, host, port), self.host.connect_timeout
                    )
                except TimeoutError:
                    raise TransportError(f"{self.where}: timed out forwarding to {host}:{port}") from None
                except (asyncssh.Error, OSError) as exc:
                    raise self._lost(f"forwarding to {host}:{port}", exc) from None
                self._forwards[(host, port)] = listener
            return "127.0.0.1", listener.get_port()

    async def close(self) -> None:
        self._closed = True
        forwards, self._forwards = list(self._forwards.values()), {}
        for listener in forwards:
            listener.close()
        with contextlib.suppress(Exception):
            for listener in forwards:
                await asyncio.wait_for(listener.wait_closed(), KILL_TIMEOUT_S)
        if self._sftp is not None:
            self._sftp.exit()
            self._sftp = None
        self._conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._conn.wait_closed(), KILL_TIMEOUT_S)


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


def _local_files(host: Host, known_hosts: str) -> tuple[str | None, bool, str]:
    """(why the known_hosts or key file cannot be used, whether known_hosts exists, the key's path).

    asyncssh reads these with a plain open(): a named pipe would hang the connect."""
    for what, path in (("known_hosts", known_hosts), ("key file", host.key_file)):
        if path:
            with contextlib.suppress(OSError):
                problem = files.not_regular(path, os.stat(os.path.expanduser(path)).st_mode)
                if problem:
                    return f"cannot use {what}: {problem}", False, ""
    return None, os.path.exists(known_hosts), os.path.expanduser(host.key_file or "")


async def _host_key_error(host: Host, known_hosts: str) -> HostKeyError:
    """Why the host key was refused: unknown or CHANGED, with the server's fingerprint."""
    where = label(host)
    port = host.port if host.port != 22 else None
    known: list[asyncssh.SSHKey] = []
    if await asyncio.to_thread(os.path.exists, known_hosts):
        addr = host.address
        with contextlib.suppress(OSError, IndexError):
            infos = await asyncio.get_running_loop().getaddrinfo(host.address, host.port, type=socket.SOCK_STREAM)
            addr = infos[0][4][0]
        with contextlib.suppress(Exception):  # an unreadable known_hosts: treat the key as unknown
            known = list(asyncssh.read_known_hosts(known_hosts).match(host.address, addr, port)[0])

    algs: list[str] = []
    for key in known:  # ask for the same key type as the entry it conflicts with
        algs += [alg.decode() for alg in getattr(key, "sig_algorithms", ()) if alg.decode() not in algs]
    server_key = None
    for attempt in ([algs] if algs else []) + [()]:
        with contextlib.suppress(Exception):
            server_key = await asyncio.wait_for(
                asyncssh.get_server_host_key(
                    host.address,
                    host.port,
                    server_host_key_algs=attempt,
                    config=None,
                    options=asyncssh.SSHClientConnectionOptions(connect_timeout=host.connect_timeout),
                ),
                host.connect_timeout + 1,
            )
        if server_key is not None:
            break
    if server_key is not None:
        presented = f"The server presents {server_key.get_algorithm()} key {server_key.get_fingerprint('sha256')}."
    else:
        presented = "Its key fingerprint could not be fetched."
    entry = f"[{host.address}]:{host.port}" if port else host.address
    keyscan = f"ssh-keyscan -p {host.port} {shlex.quote(host.address)} >> {shlex.quote(known_hosts)}"
    if known:
        return HostKeyError(
            f"{where}: host key has CHANGED: {known_hosts} holds another key for {entry}. "
            f"This can be a man-in-the-middle attack; the connection was refused. {presented} "
            f"If the host was legitimately re-keyed, verify that fingerprint out of band (with the host's "
            f"administrator or its console), then run: ssh-keygen -R {shlex.quote(entry)} -f "
            f"{shlex.quote(known_hosts)} && {keyscan}"
        )
    return HostKeyError(
        f"{where}: host key is unknown: {known_hosts} has no entry for {entry}; the connection was refused. "
        f"{presented} Verify that fingerprint out of band (with the host's administrator or its console), "
        f"then run: {keyscan}"
    )
