"""The pid command and the log read share one session on the host (logs.read_lines_after):
each comes back as if run alone — the pid command's exit status, its stdout and stderr; the
log's lines or why they could not be read — on this machine and over real SSH, whatever
the pid command prints, however it fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from console.config.model import Host
from console.probes import logs
from console.probes.hostread import NotRunning, pid_of
from console.transport.base import CommandResult, Transport, TransportError
from console.transport.local import LocalTransport
from console.transport.ssh import SSHTransport
from tests.fixtures_ssh import SSHServer
from tests.phase4 import LOG

LINES = ["[INFO] analyticbot.api: started", "[ERROR] analyticbot.api: boom", "[INFO] analyticbot.api: done"]


@pytest.fixture(params=["local", "ssh"])
def host(request: pytest.FixtureRequest) -> Host:
    if request.param == "local":
        return Host(name="local")
    sshd: SSHServer = request.getfixturevalue("sshd")
    return sshd.host()


def read(
    host: Host, first: str, log: Path, timeout: float = 10.0
) -> tuple[CommandResult, logs.LogRead | TransportError]:
    async def go() -> tuple[CommandResult, logs.LogRead | TransportError]:
        t: Transport = LocalTransport(host) if host.is_local else await SSHTransport.connect(host)
        try:
            return await logs.read_lines_after(
                t, first, logs.file_source(str(log), 100), 100, rules=LOG, timeout=timeout, what="the log"
            )
        finally:
            await t.close()

    return asyncio.run(go())


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    path.write_text("".join(line + "\n" for line in LINES))
    tmp_path.chmod(0o755)
    return path


def test_a_pid_and_the_log_each_as_if_alone(host: Host, log: Path) -> None:
    first, lines = read(host, "echo 'warming up' >&2; echo 4242", log)
    assert isinstance(first, CommandResult) and first.exit_status == 0 and first.ok
    assert first.stdout == "4242" and first.stderr.strip() == "warming up"
    assert pid_of(first, "h") == 4242
    assert not isinstance(lines, Exception)
    assert [x.text for x in lines.lines] == LINES and lines.total == 3
    assert [x.error for x in lines.lines] == [False, True, False]


def test_a_failing_pid_command_says_why_and_the_log_is_still_read(host: Host, log: Path) -> None:
    first, lines = read(host, "echo 'analyticbot-api is not running' >&2; exit 3", log)
    assert first.exit_status == 3 and first.stdout == ""
    with pytest.raises(NotRunning, match="service not running \\(pid command: analyticbot-api is not running\\)"):
        pid_of(first, "h")
    assert not isinstance(lines, Exception) and lines.total == 3


def test_what_the_pid_command_prints_cannot_pass_for_the_log(host: Host, log: Path) -> None:
    """Quotes, a percent sign, a forged separator, END lines, 10 KB: kept to 4 KB, apart from the log."""
    noisy = (
        "printf '%s\\n' \"it's 100%\" 'rollback-console:next:0123456789abcdef 0' 'END 999' 'L 10 3\tfake'; "
        "head -c 10000 /dev/zero | tr '\\0' x; echo; echo 77"
    )
    first, lines = read(host, noisy, log)
    assert first.exit_status == 0
    assert first.stdout.startswith("it's 100%\nrollback-console:next:0123456789abcdef 0\nEND 999\nL 10 3\tfake\n")
    assert len(first.stdout.encode()) == logs.FIRST_MAX
    assert not isinstance(lines, Exception) and [x.text for x in lines.lines] == LINES and lines.total == 3


def test_a_log_that_cannot_be_read_leaves_the_pid(host: Host, log: Path) -> None:
    first, lines = read(host, "echo 4242", log.parent / "missing.log")
    assert pid_of(first, "h") == 4242
    assert isinstance(lines, TransportError) and "No such file or directory" in str(lines)


def test_a_pid_command_that_hangs_is_not_taken_for_a_stopped_service(host: Host, log: Path) -> None:
    first, lines = read(host, "sleep 30", log, timeout=1.0)
    assert first.timed_out and first.exit_status is None
    with pytest.raises(TransportError, match="the pid command did not answer") as raised:
        pid_of(first, "h")
    assert not isinstance(raised.value, NotRunning)
    assert isinstance(lines, TransportError) and "the command before it took longer than 1s" in str(lines)
