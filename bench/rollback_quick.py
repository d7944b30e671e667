"""Benchmark: `rollback-console rollback quick` end to end, beside the runbook's bare steps.

    .venv/bin/python bench/rollback_quick.py [--runs N] [--steps]

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
PYTHONDONTWRITEBYTECODE is set.

Prints median and p90 of both, their ratio, the console's own overhead = console −
baseline (the goal: under 0.5 s), and the console's fixed start-up cost (`plan quick`).
With --steps, also where the console's time goes, per step, from the journal. Figures
only, no assertions.
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

from console.envfile import parse_env
from console.flags import FLAG_NAMES
from console.simulator.world import SimHost, Simulation

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


def bytecode_cached(directory: Path) -> None:
    """Python processes started from here cache bytecode (in ``directory``, not the checkout)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(directory)


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def reset(sim: Simulation, host: SimHost) -> None:
    """All flags back on and the API restarted with them (not timed)."""
    env = parse_env(host.env_file.read_bytes(), str(host.env_file))
    host.env_file.write_bytes(env.encoded(env.with_flags(dict.fromkeys(FLAG_NAMES, True))))
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


def time_console(sim: Simulation) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "console", "--config", str(sim.config_path), *QUICK],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"the console's rollback failed:\n{result.stdout}{result.stderr}")
    run_id = result.stdout.rsplit("run ", 1)[1].split(":", 1)[0]
    return elapsed, run_id


def time_startup(sim: Simulation) -> float:
    """The console's fixed cost: a fresh process that loads, reads the config and previews the
    plan (`plan quick`, which changes nothing)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "console", "--config", str(sim.config_path), "plan", "quick", "--env", "staging"],
        check=True,
        capture_output=True,
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
    args = parser.parse_args()

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
            time_console(sim)
            reset(sim, host)

            baseline: list[float] = []
            console: list[float] = []
            startup: list[float] = []
            run_ids: list[str] = []
            for i in range(args.runs):
                order = ("baseline", "console") if i % 2 == 0 else ("console", "baseline")
                for which in order:
                    if which == "baseline":
                        baseline.append(time_baseline(script, sim, host))
                    else:
                        elapsed, run_id = time_console(sim)
                        console.append(elapsed)
                        run_ids.append(run_id)
                    reset(sim, host)
                startup.append(time_startup(sim))  # same conditions as this round's pair
                print(
                    f"  run {i + 1}/{args.runs}: baseline {baseline[-1]:.3f}s, console {console[-1]:.3f}s", flush=True
                )
            steps = step_times(sim.directory / "journal.jsonl", run_ids)

    mb, mc = statistics.median(baseline), statistics.median(console)
    overheads = [c - b for b, c in zip(baseline, console, strict=True)]
    print()
    print(f"rollback quick, {args.runs} runs each (seconds)")
    print(f"  {'':<28}{'median':>8}{'p90':>8}")
    print(f"  {'baseline (sed, restart, curl)':<28}{mb:>8.3f}{p90(baseline):>8.3f}")
    print(f"  {'console (rollback quick)':<28}{mc:>8.3f}{p90(console):>8.3f}")
    print(f"  ratio console / baseline: {mc / mb:.2f}")
    print(
        f"  console overhead = console - baseline: {mc - mb:.3f}s median "
        f"(per-run pairs: median {statistics.median(overheads):.3f}s, p90 {p90(overheads):.3f}s); goal < 0.5s"
    )
    print(
        f"  for scale, the console's start-up alone — `plan quick`: a fresh process, imports, config, "
        f"preview, no change — {statistics.median(startup):.3f}s median"
    )
    if args.steps:
        print("\n  the console's time by step (journal clock), median:")
        for step, values in steps.items():
            print(f"    {step:<20}{statistics.median(values):>8.3f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
