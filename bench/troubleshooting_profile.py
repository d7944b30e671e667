"""What reading troubleshooting from the environment's service profile costs the dashboard.

    .venv/bin/python bench/troubleshooting_profile.py [--before /tmp/before] [--repeat 11]

The dashboard's env panel calls ``troubleshooting.findings`` every probe round. Measured in
fresh processes, every checkout byte-compiled first, sides alternating run by run:

1. First use: importing ``console.runbook.troubleshooting`` and the first ``findings`` (this
   checkout: the profile is read then, once per process), beside the baseline of the
   same process importing ``console.config`` only. Median of ``--repeat``.
2. Per round: the mean of 2000 further ``findings`` calls (the profile already read).

With ``--before`` the same figures for an older checkout (troubleshooting from code) are
printed beside, and the ratio this / before. Goals, for this checkout: the first use
(import and first findings, profile read included) < 50 ms; a round < 1 ms.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from bench._common import HERE, compile_checkout, env_for, goal, load_average, median, python_of

FIRST_TARGET_MS = 50.0
ROUND_TARGET_US = 1000.0

PROGRAM = """
import json, pathlib, sys, tempfile, time
t0 = time.perf_counter()
import console.config
t1 = time.perf_counter()
from tests import tui_data
root = pathlib.Path(tempfile.mkdtemp()) / "c"
config = tui_data.make_config(root=root, journal=False)
env, snap = config.environments["staging"], tui_data.snapshots()["staging"]
t2 = time.perf_counter()
from console.runbook import troubleshooting
troubleshooting.findings(env, snap)
t3 = time.perf_counter()
n = 2000
for _ in range(n):
    troubleshooting.findings(env, snap)
t4 = time.perf_counter()
print(json.dumps({"baseline": t1 - t0, "first": t3 - t2, "round": (t4 - t3) / n}))
"""


def once(checkout: Path) -> dict[str, float]:
    done = subprocess.run(
        [python_of(checkout), "-c", PROGRAM],
        capture_output=True,
        text=True,
        cwd=checkout,
        env=env_for(checkout),
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="an older checkout to measure beside this one")
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    sides = {"this": HERE, **({"before": args.before.resolve()} if args.before else {})}
    for checkout in sides.values():
        compile_checkout(checkout)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for _ in range(args.repeat):
        for name, checkout in sides.items():
            runs[name].append(once(checkout))
    print(f"load average {load_average()}; {args.repeat} runs per side, medians")
    print(f"  {'side':<8}{'import config':>15}{'first findings':>16}{'per round':>12}")
    figures = {}
    for name, found in runs.items():
        base = median([r["baseline"] for r in found]) * 1e3
        first = median([r["first"] for r in found]) * 1e3
        per = median([r["round"] for r in found]) * 1e6
        figures[name] = (base, first, per)
        print(f"  {name:<8}{base:>12.1f} ms{first:>13.1f} ms{per:>9.0f} us")
    if "before" in figures:
        (_, f_this, r_this), (_, f_before, r_before) = figures["this"], figures["before"]
        print(f"  this / before: first findings {f_this / f_before:.2f}x, per round {r_this / r_before:.2f}x")
    _, first, per = figures["this"]
    print(goal("troubleshooting-first-use", first, f"< {FIRST_TARGET_MS:g} ms", first < FIRST_TARGET_MS, "{:.1f} ms"))
    print(goal("troubleshooting-round", per, f"< {ROUND_TARGET_US:g} us", per < ROUND_TARGET_US, "{:.0f} us"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
