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

from console import collector, shutdown
from console.cli import EXIT_FAILED, EXIT_OK, UsageError
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
    args: argparse.Namespace,
    *,
    watch_only: bool = False,
    drill: object | None = None,
    drill_secret: bool = False,
    drill_started: float | None = None,
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
    collector.hold_again()  # while Textual loads: the app settles it as it starts (screens/app.py)
    try:
        from screens.app import RollbackConsole

        app = RollbackConsole(
            config,
            watch_only=watch_only,
            theme=getattr(args, "theme", None),
            drill=drill,
            drill_secret=drill_secret,
            drill_started=drill_started,
            probe_worker=worker,
        )
        with shutdown.on_stop(lambda signum: _stop_app(app)):
            app.run()
    finally:
        collector.settle_held()  # the app never ran: not left held
        if worker is not None:
            worker.close()
    return app.return_code or EXIT_OK


STOP_RETRY_S = 0.5


def _stop_app(app: object) -> None:
    """SIGTERM/SIGHUP/SIGINT while the console runs: leave it the way `q` does, so the
    terminal is restored and the probe worker stopped. Before its loop runs there is
    nothing to stop yet: the signal is remembered (``shutdown.received``) and the app exits
    as it mounts; after the loop ended it is already stopping. Not raising here matters: a
    KeyboardInterrupt raised inside a finalizer would be lost, and reported as a crash.
    (An app may define ``stop_on_signal()`` to do more.)"""
    loop = getattr(app, "_loop", None)
    if loop is None or loop.is_closed():
        return
    stop = getattr(app, "stop_on_signal", None) or app.exit  # type: ignore[attr-defined]

    def again() -> None:
        # An exit asked for while the app is still starting can be lost: ask until it ends.
        stop()
        if not loop.is_closed():
            loop.call_later(STOP_RETRY_S, again)

    loop.call_soon_threadsafe(again)


def run_watch(args: argparse.Namespace) -> int:
    return open_console(args, watch_only=True)


def run_demo(args: argparse.Namespace) -> int:
    from console.cli.simulate import remove_simulation_dir
    from console.simulator.postgres import PostgresError
    from console.simulator.repo import RepoError
    from console.simulator.words import SERVICE
    from console.simulator.world import Simulation, SimulationError

    fresh = not args.dir
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="rollback-console-demo-"))
    # Information on stdout: stderr is for errors only (`demo 2>errors.log` stays empty).
    print(f"Starting the simulated {SERVICE} in {directory} …", flush=True)
    kept = directory / "journal.jsonl"
    if not fresh and kept.is_file() and kept.stat().st_size:
        # The journal is an audit record and is kept; the services and env files start as new.
        print(
            f"{kept} is kept from an earlier run here: its rollbacks stay in the history, but the env "
            "files and the API start as new, so the console will say those rollbacks are no longer "
            "in effect. For a clean start, use another --dir.",
            flush=True,
        )
    try:
        try:
            sim = Simulation(directory, database=False if args.no_db else None)
            sim.start()  # stops what it started if it fails
        except (SimulationError, PostgresError, RepoError) as exc:
            # Expected trouble (another simulation in --dir, PostgreSQL that will not start):
            # said in one line, not reported as a crash.
            print(f"rollback-console demo: {exc}", file=sys.stderr)
            return EXIT_FAILED
        try:
            args.config = str(sim.config_path)
            print(f"Config: {sim.config_path}  (use it from another shell with --config)", flush=True)
            return open_console(args)
        finally:
            sim.stop()
    finally:
        if fresh and not args.keep:
            remove_simulation_dir(directory)
