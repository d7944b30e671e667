"""Opening the console: ``rollback-console [--config FILE]``, ``demo`` and ``watch``.

The Textual app lives in screens/; it is imported only here, when a screen is wanted,
so every other command works without it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from console.cli import EXIT_OK, UsageError
from console.cli.common import config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="start the simulator and open the console on it: nothing to configure")
    demo.add_argument("--dir", metavar="DIR", help="where the simulation lives (default: a fresh temp dir)")
    demo.add_argument("--no-db", action="store_true", help="no PostgreSQL even if it is installed")
    demo.add_argument("--keep", action="store_true", help="keep the fresh temp dir after quitting (default: removed)")
    demo.set_defaults(func=run_demo)
    watch = sub.add_parser("watch", help="read-only: follow the active rollback live from the journal")
    watch.set_defaults(func=run_watch)


def open_console(
    args: argparse.Namespace, *, watch_only: bool = False, drill: object | None = None, drill_secret: bool = False
) -> int:
    config = config_from_args(args)
    if not sys.stdout.isatty() and not os.environ.get("ROLLBACK_CONSOLE_FORCE_TUI"):
        raise UsageError("the console needs a terminal; for scripts use `status`, `check`, `plan`, `rollback`")
    worker = None
    if not watch_only:
        from console.probes.worker import ProbeWorker

        # Started before Textual loads: the first probe round runs on another core while
        # the screen is still being built, so the dashboard opens populated.
        try:
            worker = ProbeWorker.start(config)
        except OSError:
            worker = None  # the console tries again itself, and says so if it cannot
    try:
        from screens.app import RollbackConsole

        app = RollbackConsole(
            config,
            watch_only=watch_only,
            theme=getattr(args, "theme", None),
            drill=drill,
            drill_secret=drill_secret,
            probe_worker=worker,
        )
        app.run()
    finally:
        if worker is not None:
            worker.close()
    return app.return_code or EXIT_OK


def run_watch(args: argparse.Namespace) -> int:
    return open_console(args, watch_only=True)


def run_demo(args: argparse.Namespace) -> int:
    from console.cli.simulate import remove_simulation_dir
    from console.simulator.world import Simulation

    fresh = not args.dir
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="rollback-console-demo-"))
    # Information on stdout: stderr is for errors only (`demo 2>errors.log` stays empty).
    print(f"Starting the simulated analyticbot in {directory} …", flush=True)
    try:
        with Simulation(directory, database=False if args.no_db else None) as sim:
            args.config = str(sim.config_path)
            print(f"Config: {sim.config_path}  (use it from another shell with --config)", flush=True)
            return open_console(args)
    finally:
        if fresh and not args.keep:
            remove_simulation_dir(directory)
