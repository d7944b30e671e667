"""The same rollbacks with every host reached over a real OpenSSH server: commands over
SSH, the env file edited over SFTP, HTTP and PostgreSQL through SSH port forwarding."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from console.config import load_config
from console.engine.runner import abort_on_failure
from console.engine.session import Engine, RunOutcome, RunRequest
from console.plans import PLANS
from console.transport.ssh import SSHTransport
from tests.engine_support import (
    MakeSimulation,
    backups,
    cli,
    db_state,
    env_file_flags,
    journal_of,
    log_flags,
    process_flags,
    ssh_target,
)
from tests.fixtures_ssh import SSHServer
from tests.phase4 import ALL_OFF, ALL_ON

pytestmark = pytest.mark.ssh


async def run_over_ssh(config_path: Any, action: str, env: str = "staging") -> tuple[RunOutcome, dict[str, Any]]:
    """Run through the Engine and report what crossed the SSH connection."""
    engine = Engine(load_config(config_path), plans=PLANS)
    urls: list[httpx.URL] = []

    async def seen(request: httpx.Request) -> None:
        urls.append(request.url)

    engine.prober.client.event_hooks["request"].append(seen)
    try:
        outcome = await engine.execute(await engine.prepare(RunRequest(env, action)), abort_on_failure)
        transport = engine.prober.pool.cached(f"{env}-1")
        assert isinstance(transport, SSHTransport)
        return outcome, {
            "urls": urls,
            "forwards": set(transport._forwards),  # what the connection forwards, by target
            "sftp": transport._sftp is not None,
        }
    finally:
        await engine.close()


async def test_quick_and_restore_over_ssh(make_simulation: MakeSimulation, sshd: SSHServer) -> None:
    sim = make_simulation(ssh=ssh_target(sshd))
    host = sim.host("staging")
    assert load_config(sim.config_path).environment("staging").hosts[0].address == sshd.address
    env_bytes = host.env_file.read_bytes()

    outcome, wire = await run_over_ssh(sim.config_path, "quick")

    assert outcome.result.outcome == "succeeded", outcome.result.message
    assert env_file_flags(host) == ALL_OFF and process_flags(host) == ALL_OFF and log_flags(host) == ALL_OFF
    (backup,) = backups(host)
    assert backup.read_bytes() == env_bytes
    assert wire["sftp"]  # the env file was read and written over SFTP
    # HTTP went through the forward: every request to a local listener, none to the API's own port,
    # and the API (which only listens on the remote side's loopback) answered them.
    assert ("127.0.0.1", host.api_port) in wire["forwards"]
    ports = {urlsplit(str(u)).port for u in wire["urls"]}
    assert wire["urls"] and host.api_port not in ports
    assert any("/auth/login" in str(u) for u in wire["urls"])
    assert journal_of(sim).run(outcome.run_id).outcome == "succeeded"

    restored = cli(sim.config_path, "restore", "--env", "staging", "--yes")

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert host.env_file.read_bytes() == env_bytes
    assert process_flags(host) == ALL_ON and log_flags(host) == ALL_ON


@pytest.mark.postgres
async def test_database_rollback_over_ssh(make_simulation: MakeSimulation, sshd: SSHServer) -> None:
    sim = make_simulation(ssh=ssh_target(sshd), database=True)
    dsn = sim.dsn("staging") or ""
    before = await db_state(dsn)
    assert (await run_over_ssh(sim.config_path, "quick"))[0].result.outcome == "succeeded"

    outcome, wire = await run_over_ssh(sim.config_path, "database")

    assert outcome.result.outcome == "succeeded", outcome.result.message
    pg = urlsplit(dsn)
    assert (pg.hostname, pg.port) in wire["forwards"]  # PostgreSQL through the SSH connection
    after = await db_state(dsn)
    assert "has_video" not in after["columns"] and after["rows"] == before["rows"]

    restored = cli(sim.config_path, "restore", "--env", "staging", "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert await db_state(dsn) == before
