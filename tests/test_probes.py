"""The Prober over real transports: the same facts over SSH as locally, and hosts probed concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from console.config import load_config
from console.probes.collect import Prober
from console.simulator.configfile import SSHTarget
from console.simulator.dataset import POST_COUNT
from console.simulator.world import Simulation
from tests.fixtures_ssh import SSHServer
from tests.status_support import (
    FakeAPI,
    environment_of,
    fake_environment,
    local_twin,
    run_cli_many,
    run_cli_pairs,
    sim_secrets,
    toml_str,
    write_fake_env_files,
)

MakeSimulation = Callable[..., Simulation]


def facts(env: dict[str, Any]) -> dict[str, Any]:
    """What an operator reads off one environment of `status --json`, minus timings and addresses."""
    (h,) = env["hosts"]
    f, r, hl = h["flags"], h["probe"], h["health"]
    return {
        "flags": {k: f[k] for k in ("env_file", "process", "log", "drift", "stale_process", "pid", "env_file_lines")},
        "log_line": f["log_line"],
        "health": {
            **{k: hl[k] for k in ("healthy", "verdict", "version", "disagree")},
            **{
                role: {k: e[k] for k in ("status", "ok", "said", "components", "error")}
                for role, e in hl["endpoints"].items()
            },
        },
        "probe": {k: r[k] for k in ("login_status", "status", "kind", "modes", "count", "failed", "ok")},
        "memory_pid": h["memory"]["pid"],
        "database": env["database"],
        "recommendation": env["recommendation"]["action"],
    }


@pytest.mark.ssh
@pytest.mark.postgres
def test_status_over_ssh_reports_the_same_facts_as_locally(make_simulation: MakeSimulation, sshd: SSHServer) -> None:
    target = SSHTarget(sshd.address, sshd.port, sshd.user, sshd.key_file, sshd.known_hosts)
    sim = make_simulation(environments=("staging", "production"), database=True, ssh=target)
    local = sim.directory / "local.toml"
    local.write_text(local_twin(sim.config_path.read_text()))
    secrets = sim_secrets(sim)
    # One more host over the same sshd whose vars make no port: a sentence, the rest unharmed.
    staging = sim.host("staging")
    remote = sim.directory / "remote.toml"
    remote.write_text(
        sim.config_path.read_text()
        + f"""
[hosts.odd-1]
address = {toml_str(sshd.address)}
port = {sshd.port}
user = {toml_str(sshd.user)}
key_file = {toml_str(sshd.key_file)}
known_hosts = {toml_str(sshd.known_hosts)}
vars = {{ api_port = "x1" }}

"""
        + fake_environment(
            "odd",
            api_url="http://127.0.0.1:{api_port}",
            env_file=staging.env_file,
            log_file=staging.log_file,
            pid=staging.pid() or 0,
            password_file=sim.directory / "secrets" / "staging.password",
            hosts='["odd-1"]',
        )
    )

    over_ssh, here = run_cli_pairs([(remote, ["status", "--json"]), (local, ["status", "--json"])], secrets=secrets)
    # The odd host's API cannot be reached: that environment cannot be assessed, so exit 1.
    assert here.code == 0 and over_ssh.code == 1 and over_ssh.stderr == ""
    assert [e["environment"] for e in over_ssh.json["environments"] if not e["recommendation"]["assessed"]] == ["odd"]
    for name in ("staging", "production"):
        remote, mine = environment_of(over_ssh.json, name), environment_of(here.json, name)
        (rh,) = remote["hosts"]
        # Reached over SSH: commands, SFTP (env file, /proc, log) and forwarded HTTP and PostgreSQL.
        assert rh["where"] == f"ssh {sshd.user}@{sshd.address}:{sshd.port}" and mine["hosts"][0]["where"] == "local"
        assert facts(remote) == facts(mine)
        assert rh["flags"]["pid"] == sim.host(name).pid()
        assert rh["probe"]["ok"] and rh["probe"]["count"] == POST_COUNT
        assert rh["flags"]["process"] == {"advanced": True, "time_weighting": True, "content_type": True}
        assert abs(rh["memory"]["rss_mb"] - mine["hosts"][0]["memory"]["rss_mb"]) < 20
        assert remote["database"]["columns"] == {"has_video": True, "has_media": True}
        assert remote["database"]["extra_dependents"]

    odd = environment_of(over_ssh.json, "odd")["hosts"][0]
    assert odd["health"]["error"].startswith("api_url 'http://127.0.0.1:x1': Port could not be cast")
    assert odd["flags"]["env_file"] is not None and odd["flags"]["pid"] == staging.pid()

    # A change over there is seen over SSH at once: readiness down, /health still "healthy".
    sim.inject("staging", ready_down=True)
    over_ssh, check = run_cli_many(
        sim.config_path, ["status", "staging", "--json"], ["check", "staging", "--json"], secrets=secrets
    )
    health = environment_of(over_ssh.json, "staging")["hosts"][0]["health"]
    assert health["disagree"] is True
    assert check.code == 1 and [c["check"] for c in check.json["checks"] if not c["passed"]] == ["health"]


def test_a_slow_host_does_not_hold_up_a_fast_one(simulation: Simulation, tmp_path: Path) -> None:
    """Hosts of one environment are probed at once: the fast host's snapshot is done long before
    the slow one's, although the slow host comes first in the config."""
    fast = simulation.host("staging")
    env_file, log = write_fake_env_files(tmp_path)
    pid_command = simulation.command("staging", "pid_command")
    with FakeAPI() as api:
        config = tmp_path / "console.toml"
        config.write_text(
            f"""\
[thresholds]
probe_timeout_s = 2

[hosts.slow-1]
address = "local"
[hosts.slow-1.vars]
port = {api.port}
prefix = "/slow"
env = {toml_str(env_file)}
log = {toml_str(log)}
pid = "echo $PPID"

[hosts.fast-1]
address = "local"
[hosts.fast-1.vars]
port = {fast.api_port}
prefix = ""
env = {toml_str(fast.env_file)}
log = {toml_str(fast.log_file)}
pid = {toml_str(pid_command)}

[environments.mixed]
kind = "staging"
hosts = ["slow-1", "fast-1"]
api_url = "http://127.0.0.1:{{port}}{{prefix}}"
channel_id = {simulation.channel_id}
login_email = "ops-probe@analyticbot.example"
password = {{ file = {toml_str(simulation.directory / "secrets" / "staging.password")} }}
env_file = "{{env}}"
restart_command = "true"
pid_command = "{{pid}}"
log_file = "{{log}}"
"""
        )
        config_obj = load_config(config)

        async def take() -> Any:
            async with Prober(config_obj) as prober:
                return await prober.snapshot(config_obj.environment("mixed"))

        snap = asyncio.run(take())
    slow_h, fast_h = snap.hosts
    assert (slow_h.host, fast_h.host) == ("slow-1", "fast-1")
    assert "no answer within 2.0s (timeout)" in (slow_h.health.endpoints[0].error or "")
    assert fast_h.probe.ok and fast_h.flags.pid == fast.pid()
    # Concurrent, not one after the other: the fast host finished while the slow one was still waiting.
    assert fast_h.taken_at < slow_h.taken_at
    assert fast_h.elapsed_s < slow_h.elapsed_s
    # And the slow host (30 s of silence) is bounded by the timeout (a hang guard, not a speed test).
    assert 2 <= slow_h.elapsed_s < 20


@pytest.mark.parametrize("where", ["local", "ssh"])
def test_a_log_read_since_a_point_serves_the_snapshot_only_with_a_flag_line(
    make_simulation: MakeSimulation, request: pytest.FixtureRequest, where: str
) -> None:
    """Validation has the snapshot read the log from the restart on: the snapshot takes its
    flags and lines from that read (over SSH in the pid command's session), and hands the
    read back. A read since then with no flag line, or one that fails (the log shrank:
    rotated), does not leave the log's flags unknown: the whole log's last lines are read too."""
    import dataclasses

    from console.probes.hostread import SinceLog
    from console.probes.logs import LogRead

    if where == "ssh":
        sshd: SSHServer = request.getfixturevalue("sshd")
        sim = make_simulation(ssh=SSHTarget(sshd.address, sshd.port, sshd.user, sshd.key_file, sshd.known_hosts))
    else:
        sim = make_simulation()
    config = load_config(sim.config_path)
    config = dataclasses.replace(config, thresholds=dataclasses.replace(config.thresholds, probe_timeout_s=1.0))
    env = config.environment("staging")
    log = Path(env.expand(env.log_file, env.hosts[0]))

    async def take(offset: int) -> tuple[Any, Any, dict[str, LogRead]]:
        seen: dict[str, LogRead] = {}
        since = SinceLog(offset=lambda host: offset, seen=lambda host, read: seen.__setitem__(host.name, read))
        async with Prober(config) as prober:
            whole = await prober.snapshot(env, database=False)
            given = await prober.snapshot(env, database=False, since_log=since)
        return whole.hosts[0], given.hosts[0], seen

    # From before the snapshot's own requests: their flag line is in the read, which serves.
    offset = log.stat().st_size
    whole, taken, seen = asyncio.run(take(offset))
    line = whole.flags.log_line
    assert line is not None and whole.flags.log is not None
    read = seen["staging-1"]
    assert line.split("] ", 1)[-1] in " ".join(x.text for x in read.lines)
    assert (
        taken.flags.log == whole.flags.log
        and taken.logs.tail == tuple(x.text for x in read.lines)[-len(taken.logs.tail) :]
    )
    assert taken.memory.pid == whole.memory.pid and taken.flags.pid == whole.flags.pid  # the pid, from the same session

    # Requests slower than the probe timeout: no flag line gets written since the offset.
    sim.inject("staging", latency_s=3.0)
    _, flagless, seen = asyncio.run(take(log.stat().st_size))
    assert seen and not any("Feature flags" in x.text for x in seen["staging-1"].lines)
    assert flagless.flags.log == whole.flags.log  # from the whole log's last lines
    sim.inject("staging", latency_s=0.0)

    # An offset past the end (the log shrank): unreadable, so the last lines are read.
    _, rotated, seen = asyncio.run(take(log.stat().st_size + 10**9))
    assert seen == {} and rotated.flags.log == whole.flags.log and rotated.logs.error is None
