"""Benchmark: `rollback quick` across 1, 10 and 50 simulated hosts over SSH, beside what an
operator would use instead and beside the floor.

    .venv/bin/python bench/fleet.py [--runs N] [--sizes 1,10,50] [--before CHECKOUT] [--phases]

Starts a private sshd on a free loopback port (fresh host and client keys, its own
known_hosts: the test fixture's approach) and one simulation of max(sizes) hosts in one
environment, each host reached through that sshd. For each fleet size, N times each side,
the order of the sides rotating from run to run:

- console: `python -m console --config … rollback quick --env staging --yes` as a fresh
  process, its config naming the first `size` hosts (parallel mode, the console's default
  concurrency unless --concurrency): preview, lock, journal, per host edit + restart + wait
  for the new flags, the five validations on every host, the checklist;
- before: the same command run from another checkout (--before, e.g. a worktree of f8a0d0e),
  against the same hosts;
- OpenSSH loop: one `ssh` per host, one host after another, same key and known_hosts:
  `sed -i` the three flag lines, the restart command, `curl -fsS /health`;
- Ansible: `ansible fleet -m shell -a '<the same sed, restart, curl>' --forks size` over an
  inventory of the same hosts (address, port, user, key, known_hosts), Ansible's own SSH
  defaults (ControlPersist), the Python interpreter set rather than discovered;
- floor: only the `size` restart commands, launched at once over SSH connections opened
  beforehand (not timed) — nothing that restarts this fleet over SSH here can beat it.

Between runs the flags are put back on the hosts used and the APIs restarted (not timed);
each side must leave every host's flags off. Prints the medians, the ratios, and one line per
goal at the largest size: console ≤ 1.3× the floor, console ≤ 0.5× Ansible; also each
console's time at the largest size as a multiple of its 1-host time, for the record. --phases
adds where the console's time goes, from the journal's clock. Figures only, no assertions.

Everything runs on this one machine: the simulated APIs restart on the same cores as the
console, sshd and Ansible, so the restarts themselves (two Python processes each) bound how
fast any fleet-wide restart can go here; on real hosts they run on their own CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet_sides as sides

from console.journal.records import parse_ts
from console.simulator.world import Simulation

HERE = Path(__file__).resolve().parents[1]
FLOOR_TARGET = 1.3
ANSIBLE_TARGET = 0.5


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
    lock_intent = next(ts(r) for r in records if r["type"] == "lock_intent")
    run_started = next(ts(r) for r in records if r["type"] == "run_started")
    run_finished = next(ts(r) for r in records if r["type"] == "run_finished")
    restarts = [
        float(r["data"]["elapsed_s"])
        for r in host_steps
        if r["type"] == "step_finished" and r["data"]["step"] == "restart"
    ]
    return {
        # Python start-up, SSH connections, the preview, the lock, and the snapshot recorded
        # as the state before the run (with the preview again, under the lock).
        "until run_started": run_started - started_at,
        "  of which under the lock": run_started - lock_intent,
        "host steps (fan-out)": max(ts(r) for r in host_steps) - ts(host_steps[0]),
        "validation (every host)": max(validate) - min(validate),
        "after the run (checklist, exit)": started_at + elapsed - run_finished,
        "one restart, median": statistics.median(restarts),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each side per size (default 3)")
    parser.add_argument("--sizes", default="1,10,50", help="fleet sizes (default 1,10,50)")
    parser.add_argument("--before", type=Path, help="a checkout to time beside this one (e.g. a worktree of f8a0d0e)")
    parser.add_argument("--concurrency", type=int, help="fleet.concurrency for both consoles (default: their own)")
    parser.add_argument("--skip", default="", help="sides to leave out: openssh, ansible (comma-separated)")
    parser.add_argument("--phases", action="store_true", help="also show where the console's time goes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    ansible = None if "ansible" in skip else sides.ansible_binary()
    if ansible is None and "ansible" not in skip:
        print(f"no `ansible` here: the Ansible column is left out. Install it with: {sides.ANSIBLE_INSTALL}")
    if args.before is not None and not (args.before / "console" / "__main__.py").exists():
        raise SystemExit(f"--before {args.before}: not a checkout of the console (no console/__main__.py)")

    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # cache bytecode, as an install does
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        sshd = sides.Sshd(Path(tmp) / "sshd")
        try:
            print(f"starting sshd on 127.0.0.1:{sshd.port} and {max(sizes)} simulated hosts…", flush=True)
            with Simulation(
                Path(tmp) / "sim", environments=("staging",), hosts=max(sizes), database=False, ssh=sshd.target()
            ) as sim:
                results = run_sizes(args, sizes, skip, ansible, sim, sshd, Path(tmp))
        finally:
            sshd.stop()
    report(results, sizes, args)
    return 0


def run_sizes(
    args: argparse.Namespace, sizes: list[int], skip: set[str], ansible: str | None, sim: Simulation, sshd, tmp: Path
) -> dict[int, dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    for size in sizes:
        one = OneSize(args, size, ansible, sim, sshd, tmp)
        order = [*one.consoles, *(s for s in ("openssh",) if s not in skip), *(["ansible"] if ansible else []), "floor"]
        # Warm-up (page cache, bytecode, sshd), not counted.
        for config, checkout in one.consoles.values():
            sides.time_console(config, checkout)
            sides.reset(sim, one.hosts)
        for i in range(args.runs):
            turn = order[i % len(order) :] + order[: i % len(order)]  # who goes first rotates
            for side in turn:
                one.run(side)
            print(
                f"  {size} host(s), run {i + 1}/{args.runs}: "
                + ", ".join(f"{side} {one.times[side][-1]:.2f}s" for side in order),
                flush=True,
            )
        results[size] = {
            "median": {side: statistics.median(values) for side, values in one.times.items()},
            "cpu": {side: statistics.median(values) for side, values in one.cpu.items()},
            "phases": {k: statistics.median(p[k] for p in one.split) for k in one.split[0]},
        }
    return results


class OneSize:
    """The sides at one fleet size, and their times."""

    def __init__(
        self, args: argparse.Namespace, size: int, ansible: str | None, sim: Simulation, sshd, tmp: Path
    ) -> None:
        self.size, self.ansible, self.sim, self.sshd, self.tmp = size, ansible, sim, sshd, tmp
        self.hosts = sim.hosts("staging")[:size]
        self.consoles = {"console": (sides.console_config(sim, tmp, size, args.concurrency, "after"), HERE)}
        if args.before is not None:
            before = sides.console_config(sim, tmp, size, args.concurrency, "before")
            self.consoles["before"] = (before, args.before.resolve())
        self.inventory = self.cfg = None
        if ansible is not None:
            self.inventory, self.cfg = sides.ansible_setup(sshd, sim, self.hosts, tmp / "ansible")
        self.times: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.split: list[dict[str, float]] = []

    def run(self, side: str) -> None:
        if side in self.consoles:
            config, checkout = self.consoles[side]
            elapsed, used, started_at, run_id = sides.time_console(config, checkout)
            self.cpu.setdefault(side, []).append(used)
            if side == "console":
                journal = self.tmp / f"journal-after-{self.size}.jsonl"
                self.split.append(phases(journal, run_id, started_at, elapsed))
        elif side == "openssh":
            elapsed = sides.time_openssh(self.sshd, self.sim, self.hosts)
        elif side == "ansible":
            assert self.ansible and self.inventory and self.cfg
            elapsed = sides.time_ansible(self.ansible, self.inventory, self.cfg, forks=self.size)
            sides.stop_ansible_masters(self.cfg)
        else:
            elapsed = sides.time_floor(self.sshd, self.sim, self.hosts)
        if side != "floor":
            sides.all_off(self.hosts)
        self.times.setdefault(side, []).append(elapsed)
        sides.reset(self.sim, self.hosts)


def report(results: dict[int, dict[str, Any]], sizes: list[int], args: argparse.Namespace) -> None:
    first, last = sizes[0], sizes[-1]
    sides_seen = list(results[first]["median"])
    names = {"console": "console", "before": "before", "openssh": "ssh loop", "ansible": "Ansible", "floor": "floor"}
    print("\nrollback quick over SSH, median seconds")
    print(f"  {'hosts':>5}" + "".join(f"  {names[s]:>8}" for s in sides_seen) + "  console/floor  console/Ansible")
    for size in sizes:
        m = results[size]["median"]
        line = f"  {size:>5}" + "".join(f"  {m[s]:>8.2f}" for s in sides_seen)
        line += f"  {m['console'] / m['floor']:>13.2f}"
        line += f"  {m['console'] / m['ansible']:>15.2f}" if "ansible" in m else f"  {'—':>15}"
        print(line)
    cpu_line = "  console CPU seconds (its own process): " + ", ".join(
        f"{size} hosts {results[size]['cpu']['console']:.2f}" for size in sizes
    )
    print(cpu_line)
    if "before" in results[first]["cpu"]:
        print(
            "  before's CPU seconds:                  "
            + ", ".join(f"{size} hosts {results[size]['cpu']['before']:.2f}" for size in sizes)
        )
    if args.phases:
        print("\n  where the console's time goes (journal clock), median seconds:")
        print(f"    {'':<34}" + "".join(f"{s:>8}" for s in sizes))
        for name in results[first]["phases"]:
            print(f"    {name:<34}" + "".join(f"{results[s]['phases'][name]:>8.2f}" for s in sizes))

    m = results[last]["median"]
    print()
    if first == 1 and last > 1:
        for side in ("before", "console"):
            if side in m:
                one = results[first]["median"][side]
                label = "before (f8a0d0e or --before)" if side == "before" else "console (this checkout)"
                print(f"  for the record: {label}: {last} hosts take {m[side] / one:.2f}x its 1-host time")
    if "before" in m:
        print(f"  before: {last} hosts at {m['before'] / m['floor']:.2f}x the floor", end="")
        print(f", {m['before'] / m['ansible']:.2f}x Ansible" if "ansible" in m else "")
    goal(f"fleet{last}_vs_floor", m["console"] / m["floor"], FLOOR_TARGET)
    if "ansible" in m:
        goal(f"fleet{last}_vs_ansible", m["console"] / m["ansible"], ANSIBLE_TARGET)
    else:
        print(f"goal fleet{last}_vs_ansible: not measured (no ansible; {sides.ANSIBLE_INSTALL}) MISSED")


def goal(name: str, value: float, target: float) -> None:
    print(f"goal {name}: {value:.2f} (target ≤ {target}) {'met' if value <= target else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
