"""The transport for remote hosts: one asyncssh connection, commands, SFTP and port forwards
(how commands are sent and read: ssh_streams.py; files: sftp.py).

Security stance: key authentication only, host keys checked against known_hosts, and an
unknown or changed host key is refused with its fingerprint and the way to trust it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shlex
import socket

import asyncssh

from console import files
from console.config.model import Host
from console.transport.base import (
    CommandResult,
    HostKeyError,
    OutputCallback,
    Stopwatch,
    Transport,
    TransportError,
    decode,
)
from console.transport.coalesce import coalesce
from console.transport.sftp import SFTPFiles
from console.transport.ssh_costs import lazy_keepalive, quiet_logging
from console.transport.ssh_shell import Shell, ShellDied, ShellEnded, run_in_shell
from console.transport.ssh_streams import (
    KILL_TIMEOUT_S,
    LineSink,
    ProcessGroup,
    collect,
    kill_groups,
    pump,
    retrieve,
    wrap_command,
)

KEEPALIVE_INTERVAL_S = 15.0
KEEPALIVE_COUNT_MAX = 3
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


class _Client(asyncssh.SSHClient):
    """Notices when the connection drops, so the pool can reconnect."""

    def __init__(self) -> None:
        self.lost = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class SSHTransport(SFTPFiles, Transport):
    def __init__(self, host: Host, conn: asyncssh.SSHClientConnection, client: _Client) -> None:
        super().__init__(host)
        self._conn = conn
        self._client = client
        self._sftp: asyncssh.SFTPClient | None = None
        self._sftp_lock = asyncio.Lock()
        self._forwards: dict[tuple[str, int], asyncssh.SSHListener] = {}
        self._forward_lock = asyncio.Lock()
        self._shells: list[Shell] = []  # idle shells for run_short
        self._closed = False

    # ----------------------------------------------------------------- connect

    @classmethod
    async def connect(cls, host: Host) -> SSHTransport:
        """Connect with key auth and a verified host key; TransportError saying why not."""
        quiet_logging()  # once per process: asyncssh's debug lines built only if logged (ssh_costs.py)
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
            "keepalive_count_max": KEEPALIVE_COUNT_MAX,
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
        coalesce(conn)  # one send per turn of the loop, not one per packet (coalesce.py)
        lazy_keepalive(conn)  # and no new keepalive timer per read (ssh_costs.py)
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
        group = ProcessGroup()
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
            await asyncio.gather(feed(), pump(process.stdout, out), pump(process.stderr, err, group))
            await process.wait_closed()

        # A task, shielded from the timeout: after a timeout it keeps reading until the
        # pgid marker shows up (the login shell may still be in its rc files) and the kill lands.
        task = asyncio.ensure_future(communicate())
        task.add_done_callback(retrieve)  # _kill may give up on it: its exception must not go astray
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

    async def run_short(self, command: str, *, timeout: float) -> CommandResult:
        """In a /bin/sh kept open on the host (ssh_shell.py): one session for many commands."""
        if self._closed:
            raise TransportError(f"{self.where}: the connection was closed; cannot run {command!r}")
        clock = Stopwatch()
        try:
            return await run_in_shell(self._conn, self._shells, command, timeout)
        except ShellEnded:  # two shells ended before it began: it never ran; alone, then
            return await self.run(command, timeout=max(0.1, timeout - clock.elapsed))
        except ShellDied:
            if self.closed:
                raise TransportError(f"{self.where}: connection lost while running {command!r}") from None
            raise TransportError(
                f"{self.where}: the shell running {command!r} on the host ended before the command did; "
                "its outcome is unknown"
            ) from None
        except (asyncssh.Error, OSError) as exc:
            raise self._lost(f"running {command!r}", exc) from None

    async def _kill(self, group: ProcessGroup, process: asyncssh.SSHClientProcess, task: asyncio.Future) -> None:
        """Kill the command's whole process group on the host, then drop the channel."""
        if not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(group.known.wait(), KILL_TIMEOUT_S)
            await kill_groups(self._conn, group.pgid)
        process.close()
        await collect(task)

    def _lost(self, doing: str, exc: BaseException) -> TransportError:
        if isinstance(exc, asyncssh.Error):
            reason = exc.reason
        else:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if self.closed or isinstance(exc, asyncssh.ConnectionLost | asyncssh.DisconnectError):
            return TransportError(f"{self.where}: connection lost while {doing}: {reason}")
        return TransportError(f"{self.where}: failed while {doing}: {reason}")

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
        shells, self._shells = self._shells, []
        for shell in shells:
            shell.close()
        if self._sftp is not None:
            self._sftp.exit()
            self._sftp = None
        self._conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._conn.wait_closed(), KILL_TIMEOUT_S)


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
