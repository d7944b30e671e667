"""Console start-up and idle cost, beside a baseline measured in the same run.

    .venv/bin/python bench/console_startup.py [--before /tmp/before] [--repeat 11] [--watch-seconds 30]

1. Start-up to a populated dashboard: a fresh headless process per run, opened as
   ``rollback-console --config FILE`` opens it (config, probe worker forked, then Textual),
   until both simulated environments show a probe round (each panel has drawn one, and the
   refresh after the last drawing has painted it; until 2026-11-30 a 10 ms timer saw the
   rounds arrive, drawn or not); beside a bare Textual app (one ``Static``) to
   its first refresh. Sides alternate run by run (bare, this checkout, the
   ``--before`` checkout), median of ``--repeat``; every checkout byte-compiled first, and
   run once untimed (filling its dataclass code cache, console/classcode.py, as the
   operator's first run does).
   Goal: console / bare <= 1.5.
2. Idle: the console left alone for ``--watch-seconds`` after a 5 s settle, CPU (share of
   one core) and peak RSS of the console and its probe worker together, from /proc —
   (a) the dashboard watching the two environments (probe every 5 s), as the issue's
   figure was taken; (b) watch mode (``rollback-console watch``) showing the latest run,
   following the journal. Median of ``--idle-repeat`` runs, sides alternating.
   Goals: < 2 % of a core, < 100 MB.

Key latency is bench/key_latency.py. Ends with one ``goal NAME: VALUE (target T) met|MISSED``
line per goal, for this checkout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from bench._common import HERE, compile_checkout, env_for, goal, load_average, median, python_of

STARTUP_TARGET = 1.5
CPU_TARGET = 2.0  # % of one core
RSS_TARGET = 100.0  # MB

BARE = textwrap.dedent("""
    import time, sys
    t0 = float(sys.argv[1])
    from textual.app import App
    from textual.widgets import Static
    class Bare(App):
        def compose(self):
            yield Static("hello")
        def on_mount(self):
            self.call_after_refresh(self.done)
        def done(self):
            print(time.time() - t0)
            self.exit()
    Bare().run(headless=True)
""")

# As `rollback-console --config FILE` opens it (console/cli/tui.py): the probe worker
# starts before Textual loads.
CONSOLE = textwrap.dedent("""
    import time, sys
    t0 = float(sys.argv[1])
    import os
    try:
        from console import collector
    except ImportError:                           # an older checkout
        collector = None
    held = hasattr(collector, "hold")             # the entry point's first step since 2026-12-02
    if held:
        collector.hold()
    if os.path.exists("console/classcode.py"):  # the entry point's next, where the checkout
        from console import classcode             # has it (cwd); an import would find this one's
        classcode.install()                       # through the editable install's finder
    from console.config import load_config
    if held:
        collector.settle_held()                   # as the CLI does once the command's modules load
    config = load_config(sys.argv[2])
    from console.probes.worker import ProbeWorker
    worker = ProbeWorker.start(config)
    if held:
        collector.hold_again()                    # as open_console does while Textual loads
    from screens.app import RollbackConsole
    from screens.widgets.env_panel import EnvPanel
    drawn = set()
    draw = EnvPanel.refresh_from_live
    def refresh_from_live(panel):
        # Populated: each environment's panel has drawn a round, and a refresh after the
        # last such drawing has painted it.
        draw(panel)
        app = panel.app
        if panel.live.snapshot is not None and panel.live.env.name not in drawn:
            drawn.add(panel.live.env.name)
            if drawn == set(app.live):
                app.call_after_refresh(app.done)
    EnvPanel.refresh_from_live = refresh_from_live
    class Timed(RollbackConsole):
        def done(self):
            print(time.time() - t0)
            self.exit()
    Timed(config, probe_worker=worker).run(headless=True)
    worker.close()
""")

IDLE = textwrap.dedent("""
    import sys
    from console.config import load_config
    config = load_config(sys.argv[1])
    watch = sys.argv[2] == "watch"
    worker = None
    if not watch:
        from console.probes.worker import ProbeWorker
        worker = ProbeWorker.start(config)
    from screens.app import RollbackConsole
    RollbackConsole(config, watch_only=watch, probe_worker=worker).run(headless=True)
""")


def timed(code: str, checkout: Path, *args: str) -> float:
    out = subprocess.run(
        [python_of(checkout), "-c", code, str(time.time()), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=checkout,
        env=env_for(checkout),
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def _tree(pid: int) -> list[int]:
    """The console and its descendants (the probe worker)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def idle(checkout: Path, config: Path, mode: str, seconds: float) -> tuple[float, float, int]:
    """(CPU % of one core, peak RSS MB, processes) of the console left alone."""
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [python_of(checkout), "-c", IDLE, str(config), mode],
        stdout=subprocess.DEVNULL,
        stderr=errors,
        cwd=checkout,
        env=env_for(checkout),
    )
    try:
        time.sleep(5)  # start-up and the first probe round are not the idle cost
        if proc.poll() is not None:
            errors.seek(0)
            raise SystemExit(f"the console ({checkout}, {mode}) ended: {errors.read().decode()[-2000:]}")
        tick = os.sysconf("SC_CLK_TCK")
        pids = _tree(proc.pid)

        def cpu() -> float:
            total = 0
            for pid in pids:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            return total / tick

        def rss_mb() -> float:
            total = 0
            for pid in pids:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            return total / 1024

        c0, t0 = cpu(), time.monotonic()
        peak = rss_mb()
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            peak = max(peak, rss_mb())
        share = (cpu() - c0) / (time.monotonic() - t0)
    finally:
        proc.terminate()
        proc.wait(10)
        errors.close()
    return share * 100, peak, len(pids)


def startup(sides: list[tuple[str, Path]], config: Path, repeat: int) -> str:
    times: dict[str, list[float]] = {"bare": [], **{name: [] for name, _ in sides}}
    for _, checkout in sides:  # untimed: fills the dataclass code cache, as any earlier run would
        timed(CONSOLE, checkout, str(config))
    for i in range(repeat):  # alternate, so drift in machine load hits every side alike
        order = [("bare", HERE), *sides]
        for name, checkout in order[i % len(order) :] + order[: i % len(order)]:
            times[name].append(timed(BARE, HERE) if name == "bare" else timed(CONSOLE, checkout, str(config)))
        shown = ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items())
        print(f"  start-up run {i + 1}/{repeat}: {shown}", flush=True)
    bare = median(times["bare"])
    print(f"\n1. start-up to a populated dashboard (2 environments, median of {repeat})")
    print(f"   bare Textual app          {bare:.3f}s")
    for name, _ in sides:
        print(f"   console, {name:<8}         {median(times[name]):.3f}s   ratio {median(times[name]) / bare:.2f}")
    ratio = median(times["this"]) / bare
    return goal("start-up", ratio, f"<= {STARTUP_TARGET}", ratio <= STARTUP_TARGET, "{:.2f}x")


MODES = (("dashboard", "dashboard, 2 environments probed"), ("watch", "watch mode, a finished run"))


def idle_all(sides: list[tuple[str, Path]], config: Path, repeat: int, seconds: float) -> list[str]:
    # A finished run in the journal: watch mode shows it (the latest run), as it would.
    _one_rollback(config)
    results: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    for i in range(repeat):
        for mode, _ in MODES:
            for name, checkout in sides if i % 2 == 0 else sides[::-1]:
                got = idle(checkout, config, mode, seconds)
                results.setdefault((name, mode), []).append(got)
                print(f"  idle run {i + 1}/{repeat} {mode:<9} {name:<6}: {got[0]:.2f}% {got[1]:.0f} MB", flush=True)
    print(f"\n2. idle for {seconds:.0f}s after a 5 s settle (median of {repeat})")
    lines = []
    for mode, what in MODES:
        for name, _ in sides:
            runs = results[(name, mode)]
            cpu, rss = median([r[0] for r in runs]), median([r[1] for r in runs])
            print(f"   {what:<34} {name:<7} CPU {cpu:5.2f}% of a core   RSS {rss:4.0f} MB   ({runs[0][2]} processes)")
            if name == "this":
                lines.append(goal(f"idle-{mode}-cpu", cpu, f"< {CPU_TARGET:g}%", cpu < CPU_TARGET, "{:.2f}%"))
                lines.append(goal(f"idle-{mode}-rss", rss, f"< {RSS_TARGET:g} MB", rss < RSS_TARGET, "{:.0f} MB"))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="an older checkout to measure beside this one (e.g. f8a0d0e)")
    parser.add_argument("--repeat", type=int, default=11, help="start-up runs of each side (default 11)")
    parser.add_argument("--watch-seconds", type=float, default=30, help="idle window per run (default 30)")
    parser.add_argument("--idle-repeat", type=int, default=3, help="idle runs of each side and mode (default 3)")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: startup,idle")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    sides = [("this", HERE)] + ([("before", args.before.resolve())] if args.before else [])
    for _, checkout in sides:
        compile_checkout(checkout)
    lines: list[str] = []
    print(f"load average at the start: {load_average()}", flush=True)
    from console.simulator.world import Simulation

    with tempfile.TemporaryDirectory(prefix="bench-console-") as d, Simulation(Path(d) / "two") as sim:
        # The console's dataclass code cache (console/classcode.py): the bench's own, not the user's.
        os.environ["XDG_CACHE_HOME"] = str(Path(d) / "cache")
        if "startup" not in skip:
            lines.append(startup(sides, sim.config_path, args.repeat))
        if "idle" not in skip:
            lines += idle_all(sides, sim.config_path, args.idle_repeat, args.watch_seconds)
    print(f"\nload average at the end: {load_average()}")
    for line in lines:
        print(line)
    return 0


def _one_rollback(config: Path) -> None:
    result = subprocess.run(
        [python_of(HERE), "-m", "console", "--config", str(config), "rollback", "quick", "--env", "staging", "--yes"],
        capture_output=True,
        text=True,
        cwd=HERE,
        env=env_for(HERE),
    )
    if result.returncode != 0:
        raise SystemExit(f"the rollback for watch mode to show failed:\n{result.stdout}{result.stderr}")


if __name__ == "__main__":
    sys.exit(main())
