"""Benchmark: `rollback-console rollback quick` end to end, beside the runbook's bare steps.

    .venv/bin/python bench/rollback_quick.py [--runs N] [--steps] [--before /tmp/before]

Starts one simulated environment (staging, one host, no database) and, N times each,
alternating which goes first so drift on a busy machine hits both alike:

- baseline: a plain shell script doing only the runbook's quick rollback — sed the three
  flag lines of the env file, run the restart command, curl /health;
- console: `python -m console --config … rollback quick --env staging --yes` as a fresh
  process, exactly as an operator runs it: Python start-up, preview, lock, journal,
  edit, restart, wait for the new flags to take effect, the five validations, checklist.

The flags are put back (and the API restarted) between runs, outside the timings. Both
sides' Python processes (the console, and the simulator's restart command) cache their
bytecode in a private directory, as a normal install does, even where
PYTHONDONTWRITEBYTECODE is set; the console's dataclass code cache (console/classcode.py)
lives there too, filled by the warm-up run.

With --before CHECKOUT (e.g. a worktree of f8a0d0e with its own .venv), that checkout's
console runs too, in the same rotation, against the same simulation.

Prints median and p90 of each, the ratio to the baseline, the console's own overhead =
console − baseline, and the console's fixed start-up cost (`plan quick`). With --steps,
also where the console's time goes, per step, from the journal. Ends with
`goal rollback-quick-overhead: S (target < 0.3 s) met|MISSED` for this checkout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from bench._common import HERE, env_for, goal, load_average, python_of
from console.envfile import parse_env
from console.profile import profile_at
from console.simulator.world import SimHost, Simulation

RULES = profile_at(None).flags  # the simulated host runs the default profile (Phase 4)
FLAGS = tuple(f.env for f in RULES.flags)

BASELINE = r"""#!/bin/sh
# The runbook's quick rollback, bare: edit, restart, verify health.
set -e
sed -i -e 's/^ENABLE_ADVANCED_RECOMMENDATIONS=.*/ENABLE_ADVANCED_RECOMMENDATIONS=false/' \
       -e 's/^ENABLE_TIME_WEIGHTING=.*/ENABLE_TIME_WEIGHTING=false/' \
       -e 's/^ENABLE_CONTENT_TYPE_ANALYSIS=.*/ENABLE_CONTENT_TYPE_ANALYSIS=false/' "$1"
sh -c "$2" >/dev/null
curl -fsS "$3/health" >/dev/null
"""


QUICK = ("rollback", "quick", "--env", "staging", "--yes")
OVERHEAD_TARGET = 0.3  # seconds


def bytecode_cached(directory: Path) -> None:
    """Python processes started from here cache bytecode (in ``directory``, not the checkout)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(directory)
    # The console's dataclass code cache (console/classcode.py) too: the bench's own, warmed
    # by the warm-up run as by an operator's first.
    os.environ["XDG_CACHE_HOME"] = str(directory / "xdg-cache")


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def reset(sim: Simulation, host: SimHost) -> None:
    """All flags back on and the API restarted with them (not timed)."""
    env = parse_env(host.env_file.read_bytes(), str(host.env_file))
    host.env_file.write_bytes(env.encoded(env.with_flags(dict.fromkeys(FLAGS, True), RULES)))
    result = sim.run("staging", "restart_command")
    if result.returncode != 0:
        raise SystemExit(f"restart failed while resetting:\n{result.stdout}{result.stderr}")
    for backup in host.env_file.parent.glob(host.env_file.name + ".rollback-console.*.bak"):
        backup.unlink()


def time_baseline(script: Path, sim: Simulation, host: SimHost) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["/bin/sh", str(script), str(host.env_file), sim.command("staging", "restart_command"), host.api_url],
        check=True,
    )
    return time.perf_counter() - start


def time_console(sim: Simulation, checkout: Path = HERE) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(
        [python_of(checkout), "-m", "console", "--config", str(sim.config_path), *QUICK],
        capture_output=True,
        text=True,
        cwd=checkout,
        env=env_for(checkout, PYTHONPYCACHEPREFIX=os.environ["PYTHONPYCACHEPREFIX"]),
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"the console's rollback failed:\n{result.stdout}{result.stderr}")
    run_id = result.stdout.rsplit("run ", 1)[1].split(":", 1)[0]
    return elapsed, run_id


def time_startup(sim: Simulation, checkout: Path = HERE) -> float:
    """The console's fixed cost: a fresh process that loads, reads the config and previews the
    plan (`plan quick`, which changes nothing)."""
    start = time.perf_counter()
    subprocess.run(
        [python_of(checkout), "-m", "console", "--config", str(sim.config_path), "plan", "quick", "--env", "staging"],
        check=True,
        capture_output=True,
        cwd=checkout,
        env=env_for(checkout, PYTHONPYCACHEPREFIX=os.environ["PYTHONPYCACHEPREFIX"]),
    )
    return time.perf_counter() - start


def step_times(journal: Path, run_ids: list[str]) -> dict[str, list[float]]:
    """Per step (and the runner's total), seconds, from the journal's own clock."""
    out: dict[str, list[float]] = {}
    wanted = set(run_ids)
    for line in journal.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r.get("run") not in wanted:
            continue
        d = r.get("data") or {}
        if r["type"] == "step_finished":
            out.setdefault(str(d.get("step")), []).append(float(d.get("elapsed_s", 0)))
        elif r["type"] == "run_finished":
            out.setdefault("(run, lock held)", []).append(float(d.get("duration_s", 0)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each (default 10)")
    parser.add_argument("--steps", action="store_true", help="also show the console's time per step")
    parser.add_argument("--before", type=Path, help="an older checkout to measure beside this one (e.g. f8a0d0e)")
    args = parser.parse_args()
    consoles = {"console": HERE} | ({"before": args.before.resolve()} if args.before else {})

    print(f"load average at the start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-rollback-") as tmp:
        bytecode_cached(Path(tmp) / "pycache")
        script = Path(tmp) / "baseline.sh"
        script.write_text(BASELINE)
        print("starting the simulator (staging, 1 host, no database)…", flush=True)
        with Simulation(Path(tmp) / "sim", environments=("staging",), database=False) as sim:
            host = sim.host("staging")
            # Warm-up (page cache, bytecode), not counted.
            time_baseline(script, sim, host)
            reset(sim, host)
            for checkout in consoles.values():
                time_console(sim, checkout)
                reset(sim, host)
                time_startup(sim, checkout)

            times: dict[str, list[float]] = {"baseline": [], **{name: [] for name in consoles}}
            startup: dict[str, list[float]] = {name: [] for name in consoles}
            run_ids: dict[str, list[str]] = {name: [] for name in consoles}
            sides = list(times)
            for i in range(args.runs):
                order = sides[i % len(sides) :] + sides[: i % len(sides)]  # drift hits every side alike
                for which in order:
                    if which == "baseline":
                        times[which].append(time_baseline(script, sim, host))
                    else:
                        elapsed, run_id = time_console(sim, consoles[which])
                        times[which].append(elapsed)
                        run_ids[which].append(run_id)
                    reset(sim, host)
                for name, checkout in consoles.items():  # same conditions as this round's runs
                    startup[name].append(time_startup(sim, checkout))
                shown = ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items())
                print(f"  run {i + 1}/{args.runs}: {shown}", flush=True)
            steps = step_times(sim.directory / "journal.jsonl", run_ids["console"])
    print(f"load average at the end: {load_average()}")

    mb = statistics.median(times["baseline"])
    print()
    print(f"rollback quick, {args.runs} runs each (seconds)")
    print(f"  {'':<30}{'median':>8}{'p90':>8}{'ratio':>8}{'overhead':>10}{'(pairs)':>9}{'plan quick':>12}")
    print(f"  {'baseline (sed, restart, curl)':<30}{mb:>8.3f}{p90(times['baseline']):>8.3f}")
    overhead = {}
    for name in consoles:
        mc = statistics.median(times[name])
        pairs = statistics.median(c - b for b, c in zip(times["baseline"], times[name], strict=True))
        overhead[name] = mc - mb
        label = "console (rollback quick)" if name == "console" else f"before ({consoles[name].name})"
        print(
            f"  {label:<30}{mc:>8.3f}{p90(times[name]):>8.3f}{mc / mb:>8.2f}{mc - mb:>10.3f}{pairs:>9.3f}"
            f"{statistics.median(startup[name]):>12.3f}"
        )
    print(
        "  overhead = console - baseline (medians); pairs: the median of per-run differences; "
        "plan quick: the console's start-up alone (a fresh process, imports, config, preview, no change)"
    )
    if args.steps:
        print("\n  the console's time by step (journal clock), median:")
        for step, values in steps.items():
            print(f"    {step:<20}{statistics.median(values):>8.3f}s")
    if "before" in overhead:
        print(f"\n  before -> after: overhead {overhead['before']:.3f}s -> {overhead['console']:.3f}s")
    value = overhead["console"]
    print(goal("rollback-quick-overhead", value, f"< {OVERHEAD_TARGET} s", value < OVERHEAD_TARGET, "{:.3f} s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
