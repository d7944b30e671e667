"""Environments with many hosts (DESIGN §3.10), on a fleet of simulated hosts reached
through a real OpenSSH server: fan-out bounded by concurrency, rolling batches with a
health gate, stop-on-first-failure, the per-host grid in ``--json``, and the retry of
only the failed hosts.

One simulation of fifty hosts serves the whole module (starting fifty API processes is
the slow part); each test writes its own config naming the hosts it uses, with its own
fleet settings and journal, and puts its hosts back as they were first.
"""

from __future__ import annotations

import json
import socket
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from console.config import load_config
from console.journal import Journal
from console.journal.records import parse_ts
from console.simulator.world import SimHost, Simulation
from tests.engine_support import (
    backups,
    cli,
    env_file_flags,
    log_flags,
    process_flags,
    set_flags_and_restart,
    ssh_target,
)
from tests.fixtures_ssh import SSHServer
from tests.phase4 import ALL_OFF, ALL_ON

# pytest-xdist: the whole file on one worker, so its module-scoped fixture is set up once
pytestmark = [pytest.mark.ssh, pytest.mark.xdist_group("test_fleet")]

FLEET_SIZE = 50
QUICK = ("rollback", "quick", "--env", "staging", "--yes", "--json")
FLAG_STEPS = ["edit-env", "restart", "effect"]
GATE = "health-gate"


@pytest.fixture(scope="module")
def fleet(sshd: SSHServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulation]:
    """Fifty simulated API hosts in one environment, every one reached over SSH."""
    sim = Simulation(
        tmp_path_factory.mktemp("fleet"),
        environments=("staging",),
        hosts=FLEET_SIZE,
        database=False,
        ssh=ssh_target(sshd),
    )
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def fleet_config(
    sim: Simulation,
    directory: Path,
    count: int,
    fleet: dict[str, Any] | None = None,
    hosts: dict[int, dict[str, Any]] | None = None,
) -> Path:
    """A config for the first ``count`` hosts of the fleet, with these fleet settings and
    host overrides (by 1-based index), journaling into ``directory``."""
    data = tomllib.loads(sim.config_path.read_text(encoding="utf-8"))
    names = [h.name for h in sim.hosts("staging")[:count]]
    env = data["environments"]["staging"]
    env["hosts"] = names
    env["fleet"] = {"mode": "parallel", "concurrency": 10, **(fleet or {})}
    data["console"]["journal"] = str(directory / "journal.jsonl")
    for index, changes in (hosts or {}).items():
        data["hosts"][names[index - 1]].update(changes)
    path = directory / "console.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def reset(sim: Simulation, hosts: list[SimHost]) -> None:
    """No faults, every flag on and running with them, no backups: as before an incident."""

    def one(host: SimHost) -> None:
        sim.clear("staging", host.index)
        for backup in backups(host):
            backup.unlink()
        if env_file_flags(host) != ALL_ON or host.pid() is None or process_flags(host) != ALL_ON:
            set_flags_and_restart(sim, host, ALL_ON)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, hosts))


def rollback_json(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli(config, *args)
    assert result.stdout.strip(), f"no JSON on stdout (exit {result.returncode}):\n{result.stderr[-4000:]}"
    # Every task's exception is retrieved: asyncio never prints one on stderr (seen: two
    # asyncssh SFTPEOFError tracebacks in one 50-host rollback), nor does anything else.
    # (A crashing service's own traceback is shown as its output, behind "│": that is fine.)
    assert "Task exception was never retrieved" not in result.stderr, result.stderr[-4000:]
    assert not [line for line in result.stderr.splitlines() if line.startswith("Traceback")], result.stderr[-4000:]
    return result.returncode, json.loads(result.stdout)


def step_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] in ("step_started", "step_finished", "step_failed")]


def host_of(record: dict[str, Any]) -> str | None:
    return (record.get("data") or {}).get("host")


def when(record: dict[str, Any]) -> float:
    ts = parse_ts(record["ts"])
    assert ts is not None
    return ts.timestamp()


def untouched(host: SimHost, pid: int | None) -> None:
    """Nothing was changed on this host: same flags, no backup, the same process."""
    assert env_file_flags(host) == ALL_ON, host.name
    assert backups(host) == [], host.name
    assert host.pid() == pid, f"{host.name} was restarted"


def test_fifty_hosts_two_fail_exactly_those_are_reported_and_only_they_are_retried(
    fleet: Simulation, sshd: SSHServer, tmp_path: Path
) -> None:
    hosts = fleet.hosts("staging")
    reset(fleet, hosts)
    config = fleet_config(fleet, tmp_path, FLEET_SIZE)
    env = load_config(config).environment("staging")
    assert len(env.hosts) == FLEET_SIZE and {(h.address, h.port) for h in env.hosts} == {(sshd.address, sshd.port)}
    broken = {"staging-7", "staging-33"}
    for index in (7, 33):
        fleet.inject("staging", host=index, crash_on_start=True)
    pids = {h.name: h.pid() for h in hosts}

    code, doc = rollback_json(config, *QUICK)

    assert code == 1 and doc["outcome"] == "failed"
    assert doc["failed_hosts"] == sorted(broken)
    assert sorted(doc["hosts"]) == sorted(h.name for h in hosts)
    assert doc["not_started"] == [] and doc["environment_steps"] == []  # no validation of a half-done fleet
    for host in hosts:
        row = doc["hosts"][host.name]
        assert env_file_flags(host) == ALL_OFF, host.name  # every env file was edited first
        if host.name in broken:
            assert not row["ok"] and row["failed_step"] == "Restart the API"
            assert [(s["step"], s["status"]) for s in row["steps"]] == [("edit-env", "ok"), ("restart", "failed")]
            assert host.pid() is None  # it crashed on start: nothing runs with the new flags
        else:
            assert row["ok"] and [(s["step"], s["status"]) for s in row["steps"]] == [(s, "ok") for s in FLAG_STEPS]
            assert host.pid() != pids[host.name] and process_flags(host) == ALL_OFF, host.name
    # The journal has every host's every step.
    journal = Journal(tmp_path / "journal.jsonl")
    first = journal.run(doc["run_id"])
    finished = {(r["data"]["step"], host_of(r)) for r in first.records if r["type"] == "step_finished"}
    assert {h for s, h in finished if s == "edit-env"} == set(pids)
    assert {h for s, h in finished if s == "effect"} == set(pids) - broken
    failed = {(r["data"]["step"], host_of(r)) for r in first.records if r["type"] == "step_failed"}
    assert failed == {("restart", h) for h in broken}
    (end,) = [r for r in first.records if r["type"] == "run_finished"]
    assert sorted(end["data"]["failed_hosts"]) == sorted(broken)

    # The operator clears the cause and retries: only the two failed hosts are touched.
    for index in (7, 33):
        fleet.clear("staging", index)
    pids = {h.name: h.pid() for h in hosts}
    seen = len(first.records)

    code, doc = rollback_json(config, "resume", doc["run_id"], "--yes", "--json")

    assert code == 0 and doc["outcome"] == "succeeded", doc
    assert doc["failed_hosts"] == [] and doc["not_started"] == []
    assert all(row["ok"] for row in doc["hosts"].values()) and len(doc["hosts"]) == FLEET_SIZE
    assert [(s["step"], s["status"]) for s in doc["environment_steps"]] == [("validate", "ok")]
    again = step_records(journal.run(doc["run_id"]).records[seen:])
    assert {host_of(r) for r in again} == broken | {None}  # None: the environment-wide validation
    assert {r["data"]["step"] for r in again if host_of(r)} == {"restart", "effect"}  # the edit stood
    for host in hosts:
        if host.name in broken:
            assert process_flags(host) == ALL_OFF and log_flags(host) == ALL_OFF
        else:
            assert host.pid() == pids[host.name], f"{host.name} was restarted again"


def test_rolling_batches_go_one_after_another_and_the_health_gate_stops_the_roll(
    fleet: Simulation, tmp_path: Path
) -> None:
    hosts = fleet.hosts("staging")[:6]
    reset(fleet, hosts)
    config = fleet_config(fleet, tmp_path, 6, {"mode": "rolling", "batch_size": 2})
    # staging-3 comes back from its restart with the new flags, but not ready.
    fleet.inject("staging", host=3, ready_down=True)
    pids = {h.name: h.pid() for h in hosts}

    code, doc = rollback_json(config, *QUICK)

    assert code == 1 and doc["outcome"] == "failed"
    assert doc["failed_hosts"] == ["staging-3"]
    assert doc["hosts"]["staging-3"]["failed_step"] == "Health gate before the next batch"
    assert doc["not_started"] == ["staging-5", "staging-6"]
    for name in ("staging-1", "staging-2", "staging-4"):
        assert doc["hosts"][name]["ok"], name  # staging-4 shared the batch and passed the gate
    for host in hosts[4:]:
        assert doc["hosts"][host.name] == {"ok": False, "failed_step": None, "not_started": True, "steps": []}
        untouched(host, pids[host.name])
    records = Journal(tmp_path / "journal.jsonl").run(doc["run_id"]).records
    steps = step_records(records)
    batch1 = [r for r in steps if host_of(r) in ("staging-1", "staging-2")]
    batch2 = [r for r in steps if host_of(r) in ("staging-3", "staging-4")]
    # One batch after the other, gated: batch 1's last record (its health gate) before batch 2's first.
    assert [r["data"]["step"] for r in batch1[-4:]] == [GATE] * 4
    assert steps.index(batch1[-1]) < steps.index(batch2[0]) and when(batch1[-1]) <= when(batch2[0])
    gate3 = [r for r in batch2 if host_of(r) == "staging-3" and r["data"]["step"] == GATE]
    assert [r["type"] for r in gate3] == ["step_started", "step_failed"]
    assert "/health/ready 503 NOT OK" in gate3[-1]["data"]["message"]  # the profile's truthful endpoint

    fleet.clear("staging", 3)
    pids = {h.name: h.pid() for h in hosts}
    seen = len(records)

    code, doc = rollback_json(config, "resume", doc["run_id"], "--yes", "--json")

    assert code == 0 and doc["outcome"] == "succeeded"
    assert doc["failed_hosts"] == [] and doc["not_started"] == [] and all(r["ok"] for r in doc["hosts"].values())
    again = step_records(Journal(tmp_path / "journal.jsonl").run(doc["run_id"]).records[seen:])
    touched = [(host_of(r), r["data"]["step"]) for r in again if r["type"] == "step_finished"]
    # staging-3 is gated again and passes before the last batch starts; 1, 2 and 4 are left alone.
    assert touched.index(("staging-3", GATE)) < min(i for i, (h, _) in enumerate(touched) if h == "staging-5")
    assert {h for h, _ in touched} == {"staging-3", "staging-5", "staging-6", None}
    for host in hosts:
        assert env_file_flags(host) == ALL_OFF and process_flags(host) == ALL_OFF, host.name
        if host.name in ("staging-1", "staging-2", "staging-4"):
            assert host.pid() == pids[host.name]


def test_stop_on_first_failure_leaves_the_hosts_not_started_untouched(fleet: Simulation, tmp_path: Path) -> None:
    hosts = fleet.hosts("staging")[:6]
    reset(fleet, hosts)
    config = fleet_config(fleet, tmp_path, 6, {"concurrency": 3, "stop_on_first_failure": True})
    fleet.inject("staging", host=1, crash_on_start=True)
    # staging-2 and -3 answer slowly, so they are still busy when staging-1 fails.
    for index in (2, 3):
        fleet.inject("staging", host=index, latency_s=3)
    pids = {h.name: h.pid() for h in hosts}

    code, doc = rollback_json(config, *QUICK)

    assert code == 1 and doc["outcome"] == "failed"
    assert doc["failed_hosts"] == ["staging-1"]
    assert doc["not_started"] == ["staging-4", "staging-5", "staging-6"]
    # The hosts already under way were finished, not left half-done.
    for host in hosts[1:3]:
        assert doc["hosts"][host.name]["ok"] and process_flags(host) == ALL_OFF
    records = Journal(tmp_path / "journal.jsonl").run(doc["run_id"]).records
    for host in hosts[3:]:
        assert doc["hosts"][host.name]["not_started"] is True
        assert not [r for r in records if host_of(r) == host.name], host.name
        untouched(host, pids[host.name])


def test_parallel_fan_out_never_has_more_hosts_at_work_than_the_concurrency(fleet: Simulation, tmp_path: Path) -> None:
    hosts = fleet.hosts("staging")[:9]
    reset(fleet, hosts)
    config = fleet_config(fleet, tmp_path, 9, {"concurrency": 3})

    code, doc = rollback_json(config, *QUICK)

    assert code == 0 and doc["outcome"] == "succeeded", doc
    steps = [r for r in step_records(Journal(tmp_path / "journal.jsonl").run(doc["run_id"]).records) if host_of(r)]
    assert [when(r) for r in steps] == sorted(when(r) for r in steps)  # the journal's clock runs forward
    # A host is at work from its first step's start to its last step's end.
    first = {h.name: min(i for i, r in enumerate(steps) if host_of(r) == h.name) for h in hosts}
    last = {h.name: max(i for i, r in enumerate(steps) if host_of(r) == h.name) for h in hosts}
    at_work = [sum(first[h] <= i <= last[h] for h in first) for i in range(len(steps))]
    assert max(at_work) == 3, at_work  # never more than three, and three at once did happen
    assert all(r["type"] != "step_failed" for r in steps)
    for host in hosts:
        assert process_flags(host) == ALL_OFF


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a host that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_status_gives_each_host_and_a_dead_host_does_not_stall_the_rest(
    fleet: Simulation, tmp_path: Path, hung_port: int
) -> None:
    hosts = fleet.hosts("staging")[:6]
    reset(fleet, hosts)
    # The dead host's timeout is long beside a live host's round (well under a second, a few
    # seconds on a loaded machine): a host that waited for it shows it by its own time.
    config = fleet_config(fleet, tmp_path, 6, hosts={4: {"port": hung_port, "connect_timeout": 6.0}})

    started = time.monotonic()
    result = cli(config, "status", "staging", "--json")
    elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stderr  # one host could not be assessed
    (env,) = json.loads(result.stdout)["environments"]
    assert [h["host"] for h in env["hosts"]] == [h.name for h in hosts]
    by_name = {h["host"]: h for h in env["hosts"]}
    dead = by_name.pop("staging-4")
    assert dead["reachable"] is False and "timed out after 6s" in dead["unreachable"]
    for name, h in by_name.items():
        assert h["reachable"] and h["probe"]["ok"], name
        assert {k: h["flags"][k] for k in ("env_file", "process", "log")} == dict.fromkeys(
            ("env_file", "process", "log"), ALL_ON.as_dict()
        ), name
        assert h["elapsed_s"] < dead["elapsed_s"], f"{name} waited for the dead host ({h['elapsed_s']}s)"
    # Unknown is not unhealthy: the five that answer speak for the environment's health...
    assert env["signals"]["unhealthy"] is False, [f for f in env["recommendation"]["findings"] if f["lit"]]
    # ...but not for the host out of reach: the recommendation is "cannot assess", never "no action".
    rec = env["recommendation"]
    # (earlier tests of this module may have left ERROR lines in a log: a lit row is theirs)
    assert not rec["assessed"] and rec["problems"][0].startswith("staging-4: unreachable — ssh ")
    if rec["action"] is None:
        assert rec["title"].startswith("Cannot assess: staging-4: ")
    # Every signal row is lit by a host that shows it, or unknown for the host out of reach.
    signals = [f for f in rec["findings"] if not f["declared"]]
    assert {f["symptom"] for f in signals} == {
        "Response time > 5s",
        "Error rate > 5%",
        "Memory usage > 2GB",
        "Missing data in response",
    }
    unknown = [f for f in signals if not f["known"]]
    assert unknown and all(f["lit"] for f in signals if f["known"])
    assert all("1 of 6 hosts not measured — staging-4: unreachable" in f["evidence"] for f in unknown)
    assert elapsed < 20, elapsed  # the dead host's connect timeout, not a stall
    text = cli(config, "status", "staging")
    assert text.returncode == 1 and text.stdout.count("UNREACHABLE") == 1 and "CANNOT ASSESS" in text.stdout
