"""SSH fixtures: a real OpenSSH server on loopback, one per test session.

``sshd`` starts ``/usr/sbin/sshd -D -e`` with a generated config, a fresh ed25519 host
key, a fresh client key and a known_hosts file that trusts exactly that host key.
Works as root (CI) and as a normal user (it then only logs in as that user).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from console.config.model import Host

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SSHServer:
    """A running sshd and what a client needs to reach it."""

    address: str
    port: int
    user: str
    key_file: str
    known_hosts: str
    host_key_fingerprint: str  # "SHA256:…", as ssh-keygen -l prints it
    pid: int
    directory: str

    def host(self, name: str = "ssh-test", **vars: str) -> Host:
        """A config Host that reaches this server with the right key and known_hosts."""
        return Host(
            name=name,
            address=self.address,
            port=self.port,
            user=self.user,
            key_file=self.key_file,
            known_hosts=self.known_hosts,
            connect_timeout=5.0,
            vars=tuple(sorted(vars.items())),
        )

    def known_hosts_line(self, key: asyncssh.SSHKey) -> str:
        """A known_hosts entry for this server's address and port with ``key``."""
        return f"[{self.address}]:{self.port} {key.export_public_key().decode().strip()}\n"


def find_sshd() -> str | None:
    for path in SSHD_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("sshd")
    # sshd re-executes itself, so it must be started by an absolute path.
    return os.path.abspath(found) if found else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_key_pair(key: asyncssh.SSHKey, path: Path) -> None:
    key.write_private_key(str(path))
    os.chmod(path, 0o600)  # sshd and OpenSSH clients refuse group/world-readable keys
    key.write_public_key(str(path) + ".pub")


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (Linux /proc): sshd's per-connection children outlive it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sshd_config(directory: Path, port: int, host_key: Path, authorized_keys: Path) -> str:
    return "\n".join(
        [
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {directory / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized_keys}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # the tmp dir's permissions are not sshd's business here
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding yes",
            "MaxStartups 200:30:300",  # benchmarks open 50 connections at once
            "MaxSessions 100",
            "Subsystem sftp internal-sftp",
            "PrintMotd no",
            # A clean HOME: the sessions must not source the test user's shell rc files
            # (a slow or chatty ~/.bashrc on the machine running the tests is not the code under test).
            f"SetEnv HOME={directory / 'home'}",
            "LogLevel INFO",
            "",
        ]
    )


def start_sshd(sshd: str, directory: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Start sshd on a free port; retry when another process grabbed the port first."""
    host_key = directory / "ssh_host_ed25519_key"
    authorized_keys = directory / "authorized_keys"
    log = directory / "sshd.log"
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        config = directory / "sshd_config"
        config.write_text(sshd_config(directory, port, host_key, authorized_keys))
        with open(log, "wb") as log_fh:
            proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return proc, port, log
            time.sleep(0.05)
        last_error = log.read_text(errors="replace").strip()
        stop_sshd(proc)
    raise RuntimeError(f"sshd did not start (log {log}): {last_error[-2000:]}")


def stop_sshd(proc: subprocess.Popen[bytes]) -> None:
    # Per-connection sshd processes and sessions are not killed with the listener.
    leftovers = descendants(proc.pid)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A real OpenSSH server on 127.0.0.1 for the whole session."""
    binary = find_sshd()
    if binary is None:
        pytest.skip("needs OpenSSH server (apt-get install openssh-server): sshd not found")
    directory = tmp_path_factory.mktemp("sshd")
    if os.geteuid() == 0:
        # sshd as root insists on its privilege-separation directory.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

    (directory / "home").mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519", comment="rollback-console-test-host")
    write_key_pair(host_key, directory / "ssh_host_ed25519_key")
    client_key = asyncssh.generate_private_key("ssh-ed25519", comment="rollback-console-test-client")
    write_key_pair(client_key, directory / "id_ed25519")
    (directory / "authorized_keys").write_bytes(client_key.export_public_key())

    proc, port, _log = start_sshd(binary, directory)
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
    server = SSHServer(
        address="127.0.0.1",
        port=port,
        user=pwd.getpwuid(os.geteuid()).pw_name,
        key_file=str(directory / "id_ed25519"),
        known_hosts=str(known_hosts),
        host_key_fingerprint=host_key.get_fingerprint("sha256"),
        pid=proc.pid,
        directory=str(directory),
    )
    try:
        yield server
    finally:
        stop_sshd(proc)


@pytest.fixture
def ssh_known_hosts_wrong(sshd: SSHServer, tmp_path: Path) -> Path:
    """A known_hosts holding ANOTHER key for the server's [address]:port (the changed-key case)."""
    path = tmp_path / "known_hosts_wrong"
    path.write_text(sshd.known_hosts_line(asyncssh.generate_private_key("ssh-ed25519")))
    return path


@pytest.fixture
def ssh_known_hosts_empty(tmp_path: Path) -> Path:
    """A known_hosts with no entry at all (the unknown-key case)."""
    path = tmp_path / "known_hosts_empty"
    path.write_text("")
    return path
