"""Console start-up, idle cost and key latency (issue 4).

1. Start-up to a fully populated dashboard (every simulated environment probed), as a
   ratio to a bare Textual app's start-up measured in the same run. Both are fresh
   Python processes, headless, so imports count. Goal: ratio ≤ 1.5.
2. CPU and memory of the console watching two environments for N seconds, its probe
   worker included (goal: < 3 % of one core, < 150 MB RSS), sampled from /proc.
3. Key-press-to-screen latency while 20 environments are probed, beside the same keys
   with probing off (ratio).

Run: .venv/bin/python bench/console_startup.py [--repeat 5] [--watch-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from console.simulator.world import Simulation

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
    from console.config import load_config
    from console.probes.worker import ProbeWorker
    config = load_config(sys.argv[2])
    worker = ProbeWorker.start(config)
    from screens.app import RollbackConsole
    class Timed(RollbackConsole):
        def on_ready(self):
            self.set_interval(0.01, self.check)
        def check(self):
            if all(live.snapshot is not None for live in self.live.values()):
                print(time.time() - t0)
                self.exit()
    Timed(config, probe_worker=worker).run(headless=True)
    worker.close()
""")


def timed(code: str, *args: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code, str(time.time()), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def startup(config: Path, repeat: int) -> None:
    # Textual's modules are byte-compiled in site-packages; ours must be too (as Python
    # does on first run, unless PYTHONDONTWRITEBYTECODE is set), or we time the compiler.
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *(str(root / p) for p in ("console", "screens", "themes"))],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    bare, console = [], []
    for _ in range(repeat):  # alternate, so drift in machine load hits both alike
        bare.append(timed(BARE))
        console.append(timed(CONSOLE, str(config)))
    b, c = statistics.median(bare), statistics.median(console)
    print(f"1. start-up to a populated dashboard (2 environments, median of {repeat})")
    print(f"   bare Textual app      {b:.3f}s")
    print(f"   console, all probed   {c:.3f}s")
    print(f"   ratio                 {c / b:.2f}   (goal <= 1.5)")


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


def cpu_and_memory(config: Path, seconds: float) -> None:
    code = textwrap.dedent("""
        import sys
        from console.config import load_config
        from console.probes.worker import ProbeWorker
        config = load_config(sys.argv[1])
        worker = ProbeWorker.start(config)
        from screens.app import RollbackConsole
        RollbackConsole(config, probe_worker=worker).run(headless=True)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(5)  # start-up and first probes are not the idle cost
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
        peak = 0.0
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            peak = max(peak, rss_mb())
        share = (cpu() - c0) / (time.monotonic() - t0)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"2. watching 2 environments for {seconds:.0f}s (probe every 5 s)")
    print(f"   processes             {len(pids)} (the console and its probe worker)")
    print(f"   CPU                   {share * 100:.2f}% of one core   (goal < 3%)")
    print(f"   peak RSS              {peak:.0f} MB   (goal < 150 MB)")


async def key_latency(config_many: Path, presses: int) -> None:
    from console.config import load_config
    from screens.app import RollbackConsole

    async def measure(probe: bool) -> list[float]:
        app = RollbackConsole(load_config(config_many), probe=probe)
        out = []
        async with app.run_test(size=(160, 48)) as pilot:
            if probe:
                deadline = time.monotonic() + 60
                while not all(live.snapshot for live in app.live.values()) and time.monotonic() < deadline:
                    await pilot.pause(0.1)
            for _ in range(presses):
                for key, screen in (("h", "HistoryScreen"), ("escape", "DashboardScreen"), ("down", "DashboardScreen")):
                    start = time.perf_counter()
                    await pilot.press(key)
                    while app.screen.__class__.__name__ != screen:  # noqa: ASYNC110 - polling the UI
                        await asyncio.sleep(0.001)
                    await pilot.wait_for_scheduled_animations()
                    out.append(time.perf_counter() - start)
        return out

    idle = await measure(False)
    busy = await measure(True)
    print(f"3. key press to screen, 20 environments probed ({len(busy)} presses)")
    print(
        f"   probing off           median {statistics.median(idle) * 1000:.1f} ms, "
        f"p95 {sorted(idle)[int(len(idle) * 0.95)] * 1000:.1f} ms"
    )
    print(
        f"   probing 20 envs       median {statistics.median(busy) * 1000:.1f} ms, "
        f"p95 {sorted(busy)[int(len(busy) * 0.95)] * 1000:.1f} ms"
    )
    print(f"   ratio (median)        {statistics.median(busy) / statistics.median(idle):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--watch-seconds", type=float, default=60)
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--skip", default="", help="comma list of parts to skip: startup,idle,keys")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory() as d:
        with Simulation(Path(d) / "two") as sim:
            if "startup" not in skip:
                startup(sim.config_path, args.repeat)
            if "idle" not in skip:
                cpu_and_memory(sim.config_path, args.watch_seconds)
        if "keys" not in skip:
            names = tuple(f"env{i:02d}" for i in range(20))
            with Simulation(Path(d) / "many", environments=names, database=False) as many:
                asyncio.run(key_latency(many.config_path, args.presses))


if __name__ == "__main__":
    main()
