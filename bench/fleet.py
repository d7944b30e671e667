"""Benchmark: `rollback quick` across 1, 10 and 50 simulated hosts over SSH, beside a
sequential OpenSSH loop doing the bare steps.

    .venv/bin/python bench/fleet.py [--runs N] [--sizes 1,10,50] [--phases]

Starts a private sshd on a free loopback port (fresh host and client keys, its own
known_hosts: the test fixture's approach) and one simulation of max(sizes) hosts in one
environment, each host reached through that sshd. For each fleet size, N times each,
alternating which goes first:

- console: `python -m console --config … rollback quick --env staging --yes` as a fresh
  process, with a config naming the first `size` hosts (fleet mode parallel, the
  simulator's concurrency): preview, lock, journal, per host edit + restart + wait for
  the new flags, the five validations on every host, the checklist;
- baseline: one `ssh` per host, one host after another, with the same key and
  known_hosts: `sed -i` the three flag lines, the restart command, `curl -fsS /health`.

Between runs the flags are put back on the hosts used and the APIs restarted (not timed).
Prints the median of each, console / baseline, and the console's time at each size as a
multiple of its 1-host time (the goal: 50 hosts under 2x the time of 1). --phases adds
where the console's time goes, from the journal's clock. Figures only, no assertions.

Everything runs on this one machine: the fifty simulated APIs restart on the same cores
as the console and sshd, so the restarts themselves (a Python process each) bound how
fast any fleet-wide restart can go here; on real hosts they run on their own CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import asyncssh
import tomli_w

from console.envfile import parse_env
from console.flags import FLAG_NAMES
from console.journal.records import parse_ts
from console.simulator.configfile import SSHTarget
from console.simulator.world import SimHost, Simulation
from tests.fixtures_ssh import find_sshd, start_sshd, stop_sshd, write_key_pair

QUICK = ("rollback", "quick", "--env", "staging", "--yes")
SED = (
    "sed -i -e 's/^ENABLE_ADVANCED_RECOMMENDATIONS=.*/ENABLE_ADVANCED_RECOMMENDATIONS=false/' "
    "-e 's/^ENABLE_TIME_WEIGHTING=.*/ENABLE_TIME_WEIGHTING=false/' "
    "-e 's/^ENABLE_CONTENT_TYPE_ANALYSIS=.*/ENABLE_CONTENT_TYPE_ANALYSIS=false/'"
)


class Sshd:
    """A private OpenSSH server on 127.0.0.1, as tests/fixtures_ssh.py starts it."""

    def __init__(self, directory: Path) -> None:
        binary = find_sshd()
        if binary is None:
            raise SystemExit("needs an OpenSSH server binary (sshd)")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd as root insists on it
        directory.mkdir(parents=True)
        (directory / "home").mkdir()
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        write_key_pair(host_key, directory / "ssh_host_ed25519_key")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        write_key_pair(client_key, directory / "id_ed25519")
        (directory / "authorized_keys").write_bytes(client_key.export_public_key())
        self.proc, self.port, _ = start_sshd(binary, directory)
        self.known_hosts = directory / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_key.export_public_key().decode().strip()}\n")
        self.key_file = directory / "id_ed25519"
        self.user = os.environ.get("USER") or __import__("pwd").getpwuid(os.geteuid()).pw_name

    def target(self) -> SSHTarget:
        return SSHTarget("127.0.0.1", self.port, self.user, str(self.key_file), str(self.known_hosts))

    def ssh_command(self, remote: str) -> list[str]:
        """The OpenSSH client with the same key and known_hosts as the console."""
        return [
            "ssh",
            "-p",
            str(self.port),
            "-i",
            str(self.key_file),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-F",
            "/dev/null",
            f"{self.user}@127.0.0.1",
            remote,
        ]

    def stop(self) -> None:
        stop_sshd(self.proc)


def fleet_config(sim: Simulation, directory: Path, size: int, concurrency: int | None) -> Path:
    """The simulator's config narrowed to its first ``size`` hosts, journaling in ``directory``."""
    data = tomllib.loads(sim.config_path.read_text(encoding="utf-8"))
    env = data["environments"]["staging"]
    env["hosts"] = [h.name for h in sim.hosts("staging")[:size]]
    if concurrency is not None:
        env.setdefault("fleet", {})["concurrency"] = concurrency
    data["console"]["journal"] = str(directory / f"journal-{size}.jsonl")
    path = directory / f"console-{size}.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def reset(sim: Simulation, hosts: list[SimHost]) -> None:
    """All flags back on, the APIs restarted with them, backups gone (not timed)."""

    def one(host: SimHost) -> None:
        env = parse_env(host.env_file.read_bytes(), str(host.env_file))
        host.env_file.write_bytes(env.encoded(env.with_flags(dict.fromkeys(FLAG_NAMES, True))))
        result = sim.run("staging", "restart_command", host.index)
        if result.returncode != 0:
            raise SystemExit(f"restart of {host.name} failed while resetting:\n{result.stdout}{result.stderr}")
        for backup in host.env_file.parent.glob(host.env_file.name + ".rollback-console.*.bak"):
            backup.unlink()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, hosts))


def time_console(config: Path) -> tuple[float, float, float, str]:
    """Seconds for the whole command; its own CPU seconds; the wall-clock time it started at; the run id."""
    started_at = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "console", "--config", str(config), *QUICK], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"the console's rollback failed:\n{result.stdout[-6000:]}{result.stderr[-3000:]}")
    run_id = result.stdout.rsplit("\nrun ", 1)[1].split(":", 1)[0]
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu, started_at, run_id


def time_restarts(sim: Simulation, hosts: list[SimHost]) -> float:
    """The floor on this machine: only the restart commands, all hosts at once, locally
    (no SSH, no edit, no checks). Sharing the same cores, they cannot go faster than this."""
    start = time.perf_counter()
    with ThreadPoolExecutor(len(hosts)) as pool:
        results = list(pool.map(lambda h: sim.run("staging", "restart_command", h.index), hosts))
    elapsed = time.perf_counter() - start
    failed = [r for r in results if r.returncode != 0]
    if failed:
        raise SystemExit(f"a restart failed:\n{failed[0].stdout}{failed[0].stderr}")
    return elapsed


def time_baseline(sshd: Sshd, sim: Simulation, hosts: list[SimHost]) -> float:
    start = time.perf_counter()
    for host in hosts:
        remote = (
            f"{SED} {shlex.quote(str(host.env_file))} && {sim.command('staging', 'restart_command', host.index)} "
            f">/dev/null && curl -fsS {host.api_url}/health >/dev/null"
        )
        subprocess.run(sshd.ssh_command(remote), check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def phases(journal: Path, run_id: str, started_at: float, elapsed: float) -> dict[str, float]:
    """Where one console run's time went, from the journal's clock."""
    records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    records = [r for r in records if r.get("run") == run_id]

    def ts(r: dict[str, Any]) -> float:
        value = parse_ts(r["ts"])
        assert value is not None
        return value.timestamp()

    steps = [r for r in records if r["type"].startswith("step_")]
    host_steps = [r for r in steps if (r.get("data") or {}).get("host")]
    validate = [ts(r) for r in steps if (r.get("data") or {}).get("step") == "validate"]
    run_finished = next(ts(r) for r in records if r["type"] == "run_finished")
    restarts = [
        float(r["data"]["elapsed_s"])
        for r in host_steps
        if r["type"] == "step_finished" and r["data"]["step"] == "restart"
    ]
    return {
        # Up to the first host step: Python start-up, SSH connections, the preview shown, the
        # lock, and the snapshot recorded as the state before the run (with its preview).
        "before the first step": ts(host_steps[0]) - started_at,
        "host steps (fan-out)": max(ts(r) for r in host_steps) - ts(host_steps[0]),
        "validation (every host)": max(validate) - min(validate),
        "after the run (checklist, exit)": started_at + elapsed - run_finished,
        "one restart, median": statistics.median(restarts),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each per size (default 3)")
    parser.add_argument("--sizes", default="1,10,50", help="fleet sizes (default 1,10,50; at most 50)")
    parser.add_argument("--concurrency", type=int, help="fleet.concurrency for the console (default: the config's)")
    parser.add_argument("--phases", action="store_true", help="also show where the console's time goes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # cache bytecode, as an install does
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        sshd = Sshd(Path(tmp) / "sshd")
        try:
            print(f"starting sshd on 127.0.0.1:{sshd.port} and {max(sizes)} simulated hosts…", flush=True)
            with Simulation(
                Path(tmp) / "sim", environments=("staging",), hosts=max(sizes), database=False, ssh=sshd.target()
            ) as sim:
                results = run_sizes(args, sizes, sim, sshd, Path(tmp))
        finally:
            sshd.stop()
    report(results, sizes, args.phases)
    return 0


def run_sizes(args: argparse.Namespace, sizes: list[int], sim: Simulation, sshd: Sshd, tmp: Path) -> dict:
    results: dict[int, dict[str, Any]] = {}
    for size in sizes:
        hosts = sim.hosts("staging")[:size]
        config = fleet_config(sim, tmp, size, args.concurrency)
        console: list[float] = []
        cpu: list[float] = []
        baseline: list[float] = []
        floor: list[float] = []
        split: list[dict[str, float]] = []
        # Warm-up (page cache, bytecode, sshd), not counted.
        time_console(config)
        reset(sim, hosts)
        for i in range(args.runs):
            for which in ("console", "baseline") if i % 2 == 0 else ("baseline", "console"):
                if which == "console":
                    elapsed, used, started_at, run_id = time_console(config)
                    console.append(elapsed)
                    cpu.append(used)
                    split.append(phases(tmp / f"journal-{size}.jsonl", run_id, started_at, elapsed))
                else:
                    baseline.append(time_baseline(sshd, sim, hosts))
                reset(sim, hosts)
            floor.append(time_restarts(sim, hosts))
            print(
                f"  {size} host(s), run {i + 1}/{args.runs}: console {console[-1]:.2f}s, "
                f"baseline {baseline[-1]:.2f}s, restarts alone {floor[-1]:.2f}s",
                flush=True,
            )
        results[size] = {
            "console": statistics.median(console),
            "cpu": statistics.median(cpu),
            "baseline": statistics.median(baseline),
            "floor": statistics.median(floor),
            "phases": {k: statistics.median(p[k] for p in split) for k in split[0]},
        }
    return results


def report(results: dict[int, dict[str, Any]], sizes: list[int], show_phases: bool) -> None:
    one = results[sizes[0]]["console"]
    print()
    print("rollback quick over SSH, median seconds")
    print(
        f"  {'hosts':>5}  {'console':>8}  {'baseline':>8}  {'console/baseline':>16}  {'console/1 host':>14}"
        f"  {'console CPU':>11}  {'restarts alone':>14}"
    )
    for size in sizes:
        r = results[size]
        print(
            f"  {size:>5}  {r['console']:>8.2f}  {r['baseline']:>8.2f}  {r['console'] / r['baseline']:>16.2f}"
            f"  {r['console'] / one:>13.2f}x  {r['cpu']:>11.2f}  {r['floor']:>14.2f}"
        )
    if sizes[0] == 1 and len(sizes) > 1:
        last = results[sizes[-1]]
        print(
            f"  goal: {sizes[-1]} hosts under 2x the time of 1 — now {last['console'] / one:.2f}x; "
            f"the {sizes[-1]} restarts alone, all at once on this machine, take {last['floor'] / one:.2f}x"
        )
    if show_phases:
        print("\n  where the console's time goes (journal clock), median seconds:")
        names = list(results[sizes[0]]["phases"])
        print(f"    {'':<34}" + "".join(f"{s:>8}" for s in sizes))
        for name in names:
            print(f"    {name:<34}" + "".join(f"{results[s]['phases'][name]:>8.2f}" for s in sizes))


if __name__ == "__main__":
    sys.exit(main())
