"""The SSH keepalive, kept by one timer per connection (ssh_costs.py), against a real OpenSSH
server: a host that stops answering is reported lost, not waited on until a command's own
timeout; data flowing is never counted as silence; an idle host that answers stays connected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time

import pytest

from console.transport import connect
from console.transport.base import TransportError
from console.transport.ssh import SSHTransport
from tests.fixtures_ssh import SSHServer, descendants
from tests.test_transport import cmdline, parent, wait_until

pytestmark = pytest.mark.ssh


async def open_with(sshd: SSHServer, monkeypatch: pytest.MonkeyPatch, interval: float, count_max: int) -> SSHTransport:
    monkeypatch.setattr("console.transport.ssh.KEEPALIVE_INTERVAL_S", interval)
    monkeypatch.setattr("console.transport.ssh.KEEPALIVE_COUNT_MAX", count_max)
    transport = await connect(sshd.host())
    assert isinstance(transport, SSHTransport)
    return transport


async def test_a_host_that_stops_answering_is_reported_lost_not_waited_on(
    sshd: SSHServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = await open_with(sshd, monkeypatch, interval=0.3, count_max=2)
    marker = f"{secrets.randbelow(10**6) + 1000}.25"
    frozen: list[int] = []
    try:
        running = asyncio.create_task(transport.run(f"sleep {marker}", timeout=60))
        wanted = b"sleep\x00" + marker.encode() + b"\x00"
        assert await wait_until(lambda: any(cmdline(p) == wanted for p in descendants(sshd.pid)))
        pid = next(p for p in descendants(sshd.pid) if cmdline(p) == wanted)
        while parent(pid) != sshd.pid:  # up to sshd's per-connection child
            pid = parent(pid)
        # Frozen, not killed: the TCP connection stays up and says nothing, as a hung host's does.
        frozen = [pid, *descendants(pid)]
        for victim in frozen:
            os.kill(victim, signal.SIGSTOP)
        start = time.monotonic()
        with pytest.raises(TransportError, match="connection lost"):
            await asyncio.wait_for(running, 20)
        # Three silent intervals and the unanswered requests: ≈ 1 s, far from the command's 60 s.
        assert time.monotonic() - start < 15
        assert transport.closed
    finally:
        for victim in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        await transport.close()


@pytest.mark.parametrize("interval", [0.5, 10.0])
async def test_data_flowing_keeps_the_connection_and_makes_no_timer_per_read(
    sshd: SSHServer, monkeypatch: pytest.MonkeyPatch, interval: float
) -> None:
    transport = await open_with(sshd, monkeypatch, interval=interval, count_max=3)
    try:
        timer = transport._conn._keepalive_timer
        script = "i=0; while [ $i -lt 30 ]; do echo $i; sleep 0.1; i=$((i+1)); done"
        result = await transport.run(script, timeout=30)  # 3 s of output, a line every 0.1 s
        assert result.ok, result
        assert result.stdout.split() == [str(i) for i in range(30)]
        if interval > 5:  # within one interval: each read noted the time, no timer was replaced
            assert transport._conn._keepalive_timer is timer
    finally:
        await transport.close()


async def test_an_idle_host_that_answers_stays_connected(sshd: SSHServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lost only after three requests in a row unanswered for 1.5 s: a loaded machine's sshd answers.
    transport = await open_with(sshd, monkeypatch, interval=0.5, count_max=3)
    try:
        await asyncio.sleep(3.0)  # six intervals of silence, each keepalive answered
        assert not transport.closed
        result = await transport.run("echo still here", timeout=10)
        assert (result.ok, result.stdout) == (True, "still here\n")
    finally:
        await transport.close()


async def test_asyncssh_logs_what_it_is_asked_to_and_builds_nothing_otherwise(
    sshd: SSHServer, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncssh

    async def logged(debug_level: int, level: int) -> list[str]:
        caplog.clear()
        asyncssh.set_debug_level(debug_level)
        with caplog.at_level(level, logger="asyncssh"):
            transport = await connect(sshd.host())
            try:
                assert (await transport.run("true", timeout=10)).ok
            finally:
                await transport.close()
        return [r.getMessage() for r in caplog.records if r.name.startswith("asyncssh")]

    try:
        # An operator debugging SSH gets asyncssh's packet trace, as without ssh_costs.py.
        traced = await logged(3, logging.DEBUG)
        assert any("] Sent MSG_KEXINIT (20)" in m for m in traced)
        assert any("] Received MSG_KEXINIT (20)" in m for m in traced)
        assert any("Opening SSH connection" in m for m in traced)
        assert not await logged(1, logging.WARNING)  # the default: nothing
    finally:
        asyncssh.set_debug_level(1)
