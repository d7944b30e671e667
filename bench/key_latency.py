"""Key press to screen, through Pilot: the console with 20 environments probed, beside a
bare Textual app with a dashboard and a DataTable screen measured the same way.

    .venv/bin/python bench/key_latency.py [--before /tmp/before] [--rounds 3] [--presses 10]

Starts one simulation of 20 environments (one host each, no database). Then, per round,
each side as a fresh headless process (``run_test(size=(160, 48))``), in an order that
rotates round by round so drift in the machine's load hits every side alike:

- bare: a plain Textual app, 20 bordered panels of Statics on a dashboard (focusable, ↓
  moves between them) and a DataTable screen of 10 rows, built once, that ``h`` pushes and
  Escape pops; Textual's own Header and Footer;
- console: ``RollbackConsole`` as ``rollback-console --config FILE`` opens it (the probe
  worker forked before Textual loads), every environment probed every 5 s, timed once all
  20 show a probe round;
- before (with ``--before``): the same from that checkout (its own ``.venv`` if it has one).

Each of ``h`` (History), Escape (back to the dashboard) and ↓ (next panel) is timed from
the press until that screen is current and Pilot has nothing left to do
(``wait_for_scheduled_animations``: every message handled, the process idle) — so work
the keys set off, and work that keeps the process busy between frames, both count.

Prints per side the median and p90 of all presses, per key, and the console's CPU per
press; ends with ``goal key-latency: RATIO (target <= 1.3) met|MISSED`` (console median /
bare median, this checkout).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from bench._common import HERE, compile_checkout, env_for, goal, load_average, median, p90, python_of

TARGET = 1.3
KEYS = (("h", "history"), ("escape", "dashboard"), ("down", "dashboard"))

CHILD = textwrap.dedent("""
    import asyncio, json, sys, time
    side, config_path, presses = sys.argv[1], sys.argv[2], int(sys.argv[3])
    KEYS = (("h", "history"), ("escape", "dashboard"), ("down", "dashboard"))

    if side == "bare":
        from textual.app import App
        from textual.containers import VerticalScroll
        from textual.screen import Screen
        from textual.widget import Widget
        from textual.widgets import DataTable, Footer, Header, Static

        class Panel(Widget, can_focus=True):
            DEFAULT_CSS = "Panel { height: auto; border: round $panel; } Panel:focus { border: heavy $primary; }"
            def __init__(self, i):
                super().__init__()
                self.border_title = f"env{i:02d} · staging"
            def compose(self):
                yield Static("flags\\n  advanced on\\n  time-weighting on\\n  content-type on")
                yield Static("health ok\\nlatency ▁▂▃\\nerrors 0\\nmemory 80 MB")
                yield Static("recommendation: no action")

        class Dashboard(Screen):
            BINDINGS = [("down", "app.focus_next"), ("up", "app.focus_previous")]
            def compose(self):
                yield Header()
                with VerticalScroll():
                    for i in range(20):
                        yield Panel(i)
                yield Footer()

        class Table(Screen):
            BINDINGS = [("escape", "app.pop_screen", "Back")]
            def compose(self):
                yield Header()
                yield DataTable(cursor_type="row", zebra_stripes=True)
                yield Footer()
            def on_mount(self):
                table = self.query_one(DataTable)
                table.add_columns("Date", "Environment", "Reason", "Duration", "Outcome", "Run")
                for i in range(10):
                    table.add_row("2026-01-01 10:00", f"env{i:02d}", "latency", "12s", "succeeded", f"r-{i}")
                table.focus()

        class Bare(App):
            BINDINGS = [("h", "history", "History")]
            def get_default_screen(self):
                return Dashboard()
            def action_history(self):  # built once and kept, as the console keeps its history
                if not self.is_screen_installed("table"):
                    self.install_screen(Table(), "table")
                self.push_screen("table")

        app = Bare()
        names = {"history": "Table", "dashboard": "Dashboard"}
        ready = lambda: True
    else:
        from console.config import load_config
        from console.probes.worker import ProbeWorker
        config = load_config(config_path)
        worker = ProbeWorker.start(config) if side != "off" else None  # before Textual, as the CLI does
        from screens.app import RollbackConsole
        app = RollbackConsole(config, probe=side != "off", probe_worker=worker)
        names = {"history": "HistoryScreen", "dashboard": "DashboardScreen"}
        ready = lambda: side == "off" or all(live.snapshot is not None for live in app.live.values())

    async def main():
        out = {key: [] for key, _ in KEYS}
        cpu = []
        async with app.run_test(size=(160, 48)) as pilot:
            deadline = time.monotonic() + 90
            while not ready():
                if time.monotonic() > deadline:
                    raise SystemExit("not every environment was probed within 90 s")
                await pilot.pause(0.1)
            await pilot.pause()
            for _ in range(presses):
                for key, screen in KEYS:
                    c0, start = time.process_time(), time.perf_counter()
                    await pilot.press(key)
                    while app.screen.__class__.__name__ != names[screen]:
                        await asyncio.sleep(0.001)
                    await pilot.wait_for_scheduled_animations()
                    out[key].append(time.perf_counter() - start)
                    cpu.append(time.process_time() - c0)
        print(json.dumps({"keys": out, "cpu": cpu}))

    asyncio.run(main())
""")


def run_side(side: str, checkout: Path, config: Path, presses: int) -> dict:
    result = subprocess.run(
        [python_of(checkout), "-c", CHILD, side, str(config), str(presses)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=checkout,
        env=env_for(checkout),
    )
    if result.returncode != 0:
        raise SystemExit(f"{side} ({checkout}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="an older checkout to measure beside this one (e.g. f8a0d0e)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per side (default 3)")
    parser.add_argument("--presses", type=int, default=10, help="h, Escape, ↓ cycles per process (default 10)")
    parser.add_argument("--environments", type=int, default=20)
    parser.add_argument("--probe-off", action="store_true", help="also time this checkout with probing off")
    args = parser.parse_args()

    from console.simulator.world import Simulation

    sides: list[tuple[str, str, Path]] = [("bare", "bare", HERE), ("console", "console", HERE)]
    if args.probe_off:
        sides.append(("console, probing off", "off", HERE))
    if args.before:
        sides.append((f"before ({args.before})", "console", args.before.resolve()))
    for checkout in {c for _, _, c in sides}:
        compile_checkout(checkout)
    results: dict[str, dict] = {label: {"keys": {k: [] for k, _ in KEYS}, "cpu": []} for label, _, _ in sides}
    print(f"load average at the start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as tmp:
        names = tuple(f"env{i:02d}" for i in range(args.environments))
        with Simulation(Path(tmp) / "many", environments=names, database=False) as sim:
            for r in range(args.rounds):
                order = sides[r % len(sides) :] + sides[: r % len(sides)]
                for label, side, checkout in order:
                    got = run_side(side, checkout, sim.config_path, args.presses)
                    for key, values in got["keys"].items():
                        results[label]["keys"][key] += values
                    results[label]["cpu"] += got["cpu"]
                    every = [v for vs in got["keys"].values() for v in vs]
                    shown = median(every) * 1000
                    print(f"  round {r + 1}/{args.rounds} {label:<24} median {shown:6.1f} ms", flush=True)
    print(f"load average at the end: {load_average()}")
    print(f"\nkey press to screen, {args.environments} environments, ms ({args.rounds} x {args.presses} cycles)")
    print(f"  {'':<28}{'median':>8}{'p90':>8}{'h':>8}{'Esc':>8}{'↓':>8}{'CPU/key':>9}{'x bare':>8}")
    medians = {}
    for label, _, _ in sides:
        keys = results[label]["keys"]
        every = [v for vs in keys.values() for v in vs]
        medians[label] = median(every)
        ratio = medians[label] / medians["bare"] if "bare" in medians else float("nan")
        print(
            f"  {label:<28}{medians[label] * 1000:>8.1f}{p90(every) * 1000:>8.1f}"
            + "".join(f"{median(keys[k]) * 1000:>8.1f}" for k, _ in KEYS)
            + f"{median(results[label]['cpu']) * 1000:>9.1f}{ratio:>8.2f}"
        )
    ratio = medians["console"] / medians["bare"]
    if args.before:
        before = next(label for label, _, _ in sides if label.startswith("before"))
        print(f"\n  before -> after: {medians[before] / medians['bare']:.2f}x -> {ratio:.2f}x the bare app")
    print(goal("key-latency", ratio, f"<= {TARGET}", ratio <= TARGET, "{:.2f}x"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
