"""The console's own short commands share a /bin/sh kept open on the host (ssh_shell.py),
against a real OpenSSH server: each comes back exactly as a session of its own would give it,
and the faults of a long-lived shell — a hung command, the shell dying mid-command or while
idle, output that looks like a marker, stray output between commands, several commands at
once — are met truthfully."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.config.model import Host
from console.transport import LocalTransport, connect
from console.transport.base import MAX_OUTPUT, Transport, TransportError
from console.transport.ssh import SSHTransport
from tests.fixtures_ssh import SSHServer
from tests.test_transport import drop_connection_running, processes_running, wait_until

pytestmark = pytest.mark.ssh

# The session of the command: the shell's pid when it shares one (sshd setsid()s each session).
SESSION = "ps -o sid= -p $$"


@pytest.fixture
async def ssh(sshd: SSHServer) -> AsyncIterator[SSHTransport]:
    transport = await connect(sshd.host())
    assert isinstance(transport, SSHTransport)
    try:
        yield transport
    finally:
        await transport.close()


async def session_of(transport: Transport) -> int:
    result = await transport.run_short(SESSION, timeout=10)
    assert result.ok, result
    return int(result.stdout)


@pytest.mark.parametrize("kind", ["ssh", "local"])
async def test_a_short_command_comes_back_as_run_alone(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "ssh":
        transport: Transport = await connect(request.getfixturevalue("sshd").host())
    else:
        transport = LocalTransport(Host(name="local"))
    try:
        home = (await transport.run_short("pwd", timeout=10)).stdout
        for _ in range(2):  # the second in the shell the first left open
            script = "printf 'out1\\nno newline'; printf 'err1\\n' >&2; printf 'err2' >&2; exit 3"
            result = await transport.run_short(script, timeout=10)
            assert (result.exit_status, result.stdout, result.stderr) == (3, "out1\nno newline", "err1\nerr2")
            assert not result.ok and not result.timed_out
            alone = await transport.run(script, timeout=10)
            assert (alone.exit_status, alone.stdout, alone.stderr) == (3, "out1\nno newline", "err1\nerr2")
        quoted = await transport.run_short("echo \"$0\" 'a  b' $((6*7)); cd /proc; export X=1; pwd", timeout=10)
        assert quoted.ok and quoted.stdout == "/bin/sh a  b 42\n/proc\n"
        # Nothing a command does to its shell reaches the next.
        assert (await transport.run_short('pwd; echo "${X-unset}"', timeout=10)).stdout == home + "unset\n"
        # stdin is /dev/null: a command that reads it ends at once and eats no later command.
        assert (await transport.run_short("cat; echo done", timeout=10)).stdout == "done\n"
        assert (await transport.run_short("echo after", timeout=10)).stdout == "after\n"
    finally:
        await transport.close()


async def test_one_session_serves_many_commands_and_a_second_only_when_busy(ssh: SSHTransport) -> None:
    first = await session_of(ssh)
    assert [await session_of(ssh) for _ in range(5)] == [first] * 5

    async def busy() -> int:
        result = await ssh.run_short(f"sleep 0.4; {SESSION}", timeout=10)
        return int(result.stdout)

    at_once = await asyncio.gather(*(busy() for _ in range(4)))
    assert len(set(at_once)) == 4  # one shell runs one command at a time
    # Two stay open for the next commands; the others were closed.
    later = {await session_of(ssh) for _ in range(4)}
    assert len(later) == 1 and later <= set(at_once)
    survivors = [pid for pid in at_once if os.path.exists(f"/proc/{pid}")]
    assert await wait_until(lambda: len([p for p in survivors if os.path.exists(f"/proc/{p}")]) <= 2)


async def test_output_that_looks_like_markers_is_the_commands_own(ssh: SSHTransport) -> None:
    fake = "rollback-console:" + "0" * 32
    text = f"{fake}:end:0\\n{fake}:start\\nrollback-console:pid:1\\nrollback-console:pgid:9\\n"
    result = await ssh.run_short(f"printf '{text}'; printf '{text}' >&2; exit 5", timeout=10)
    expected = text.replace("\\n", "\n")
    assert (result.exit_status, result.stdout, result.stderr) == (5, expected, expected)


async def test_output_past_the_cap_is_cut_and_the_shell_goes_on(ssh: SSHTransport) -> None:
    result = await ssh.run_short(f"head -c {MAX_OUTPUT + 300_000} /dev/zero; echo tail >&2", timeout=30)
    assert result.ok and result.truncated and len(result.stdout) == MAX_OUTPUT and result.stderr == "tail\n"
    assert (await ssh.run_short("echo next", timeout=10)).stdout == "next\n"


async def test_a_hung_command_times_out_is_killed_with_its_children_and_the_next_runs(ssh: SSHTransport) -> None:
    shell = await session_of(ssh)
    marker = f"{secrets.randbelow(10**6) + 1000}.5"
    result = await ssh.run_short(f"echo begun; (sleep {marker}; echo never) & wait", timeout=1.5)
    assert result.timed_out and result.exit_status is None and result.stdout == "begun\n"
    assert await wait_until(lambda: not processes_running(marker.encode()))
    assert await wait_until(lambda: not os.path.exists(f"/proc/{shell}"))  # that shell is gone too
    after = await ssh.run_short(f"echo fresh; {SESSION}", timeout=10)
    assert after.ok and after.stdout.startswith("fresh\n") and int(after.stdout.split()[1]) != shell


async def test_a_cancelled_command_is_killed_on_the_host(ssh: SSHTransport) -> None:
    marker = f"{secrets.randbelow(10**6) + 1000}.25"
    task = asyncio.ensure_future(ssh.run_short(f"sleep {marker}", timeout=30))
    assert await wait_until(lambda: bool(processes_running(marker.encode())))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_until(lambda: not processes_running(marker.encode()))
    assert (await ssh.run_short("echo still", timeout=10)).stdout == "still\n"


async def test_a_shell_killed_while_idle_is_replaced_and_the_command_runs_once(
    ssh: SSHTransport, tmp_path: Path
) -> None:
    shell = await session_of(ssh)
    os.kill(shell, signal.SIGKILL)
    assert await wait_until(lambda: not os.path.exists(f"/proc/{shell}"))
    count = tmp_path / "ran"
    result = await ssh.run_short(f"echo x >> {count}; {SESSION}", timeout=10)
    assert result.ok and int(result.stdout) != shell
    assert count.read_text() == "x\n"  # once, not once per attempt


async def test_a_shell_killed_the_instant_before_a_command_runs_it_once_elsewhere(
    ssh: SSHTransport, tmp_path: Path
) -> None:
    # Killed and not yet noticed: frozen first, so its end reaches the client only after the write.
    shell = await session_of(ssh)
    os.kill(shell, signal.SIGSTOP)
    count = tmp_path / "ran"
    task = asyncio.ensure_future(ssh.run_short(f"echo x >> {count}; {SESSION}", timeout=10))
    await asyncio.sleep(0.2)
    os.kill(shell, signal.SIGKILL)
    result = await task
    assert result.ok and int(result.stdout) != shell
    assert count.read_text() == "x\n"


async def test_the_shell_dying_mid_command_is_an_unknown_outcome_not_a_lost_connection(ssh: SSHTransport) -> None:
    with pytest.raises(TransportError) as err:
        await ssh.run_short(f"kill -s KILL $({SESSION}); sleep 0.3; echo finished", timeout=10)
    message = str(err.value)
    assert message.startswith(ssh.where) and "ended before the command did" in message
    assert "outcome is unknown" in message and "connection lost" not in message
    assert not ssh.closed
    assert (await ssh.run_short("echo again", timeout=10)).stdout == "again\n"


async def test_stray_output_between_commands_reaches_no_command(ssh: SSHTransport, tmp_path: Path) -> None:
    written = tmp_path / "written"
    stray = f"(sleep 0.3; echo stray; echo stray >&2; touch {written}) &"
    started = await ssh.run_short(f"{stray} echo started", timeout=10)
    assert started.stdout == "started\n"
    # Written to the shell's streams before the next command's frame, whenever it arrives.
    assert await wait_until(written.exists)
    result = await ssh.run_short("echo clean", timeout=10)
    assert (result.stdout, result.stderr) == ("clean\n", "")


async def test_commands_at_once_on_one_host_each_get_their_own_answer(ssh: SSHTransport) -> None:
    async def one(i: int) -> None:
        result = await ssh.run_short(f"echo out{i}; sleep 0.0{i % 10}; echo err{i} >&2; exit {i % 7}", timeout=20)
        assert (result.exit_status, result.stdout, result.stderr) == (i % 7, f"out{i}\n", f"err{i}\n")

    for _ in range(3):
        await asyncio.gather(*(one(i) for i in range(8)))


async def test_a_lost_connection_mid_command_says_connection_lost(sshd: SSHServer) -> None:
    transport = await connect(sshd.host())
    marker = f"{secrets.randbelow(10**6) + 1000}.75"
    try:
        await session_of(transport)
        running = asyncio.create_task(transport.run_short(f"sleep {marker}", timeout=30))
        await drop_connection_running(sshd, marker)
        with pytest.raises(TransportError, match="connection lost"):
            await asyncio.wait_for(running, 10)
    finally:
        await transport.close()


async def test_closing_the_transport_leaves_no_shell_on_the_host(sshd: SSHServer) -> None:
    transport = await connect(sshd.host())
    shells = set()
    try:
        shells.add(await session_of(transport))
        shells |= set(await asyncio.gather(*(session_of(transport) for _ in range(3))))
        assert any(os.path.exists(f"/proc/{pid}") for pid in shells)  # kept open for the next
    finally:
        await transport.close()
    assert await wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in shells))
