"""``rollback-console drill [SCENARIO]``: rehearse on the simulator, scored against the runbook.

The simulator starts with the scenario's faults, the console opens in a clearly marked
drill mode, and when the trainee ends the drill (x) the scorecard is shown and journaled
as a drill — never mixed with real history (`history --drills`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from console import shutdown
from console.cli import EXIT_FAILED, EXIT_OK, UsageError
from console.cli.simulate import remove_simulation_dir
from console.config import ConfigError, find_config, load_config
from console.config.model import DEFAULT_JOURNAL
from console.journal import Journal
from console.runbook.drills import Scenario, ScenarioError, finish_drill, pick, scenarios

if TYPE_CHECKING:
    from console.simulator.world import Simulation


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drill", help="rehearse a rollback on the simulator, scored against the runbook")
    p.add_argument(
        "scenario",
        nargs="?",
        metavar="SCENARIO",
        help="a scenario id (see --list) or a .toml file; none: a random one, kept secret",
    )
    p.add_argument("--list", action="store_true", help="list the scenarios")
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="a service profile: its scenarios (a random drill picks among them; default: the default profile's)",
    )
    p.add_argument("--dir", metavar="DIR", help="where the simulation lives (default: a fresh temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the fresh temp dir after the drill (default: removed)")
    p.add_argument(
        "--no-console",
        action="store_true",
        help="do not open the console: print the config and wait (Ctrl-C ends and scores the drill)",
    )
    p.set_defaults(func=run)


def drill_journal(explicit_config: str | None) -> Path:
    """Drills are journaled where the operator's real runs are (flagged as drills, so the
    history keeps them apart): the configured journal, else the default one."""
    path = find_config(explicit_config)
    if path.exists():
        try:
            return load_config(path).journal_path
        except ConfigError:
            pass
    return Path(os.path.expanduser(DEFAULT_JOURNAL))


def prepare(scenario: Scenario, directory: Path, journal: Path | None = None) -> tuple[Simulation, Path]:
    """Start the simulator with the scenario's faults; write the drill's config beside it."""
    from console.simulator import postgres
    from console.simulator.world import Simulation

    if scenario.database and postgres.available() is not None:
        raise UsageError(f"drill {scenario.id!r} needs PostgreSQL: {postgres.available()}")
    if scenario.profile is not None:  # another service: the simulation of its profile
        from console.simulator.generic_world import ProfileSimulation

        sim: Simulation = ProfileSimulation(
            directory, profile=scenario.profile, environments=scenario.environments, hosts=scenario.hosts
        )
    else:
        sim = Simulation(
            directory,
            environments=scenario.environments,
            hosts=scenario.hosts,
            database=True if scenario.database else None,
        )
    sim.start()
    try:
        for fault in scenario.faults:
            sim.inject(fault.environment, host=fault.host, **fault.values)
        text = sim.config_path.read_text(encoding="utf-8")
        marker = "[console]\ndrill = true  # a rehearsal: journaled apart from real history\n"
        text = text.replace("[console]\n", marker, 1)
        if journal is not None:
            text = re.sub(r"(?m)^journal = .*$", lambda _: f"journal = {json.dumps(str(journal))}", text, count=1)
        if scenario.config_overlay:
            # Not named here: a random drill keeps its scenario secret, and the trainee reads this file.
            text += "\n# --- the drill's own matrix and thresholds\n" + scenario.config_overlay
        config_path = directory / "drill.toml"
        config_path.write_text(text, encoding="utf-8")
        load_config(config_path)  # fail now, not in the middle of the drill
    except BaseException:
        sim.stop()
        raise
    return sim, config_path


def _listed(profile: str | None) -> dict[str, Scenario]:
    try:
        return scenarios(profile=profile) if profile else scenarios()
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    if args.list:
        for s in _listed(args.profile).values():
            db = "  (needs PostgreSQL)" if s.database else ""
            db += f"  [profile {Path(s.profile).stem}]" if s.profile else ""
            print(f"{s.id:<14} {s.title} — expected: {s.expected_action}, target {s.target}{db}")
        return EXIT_OK
    try:
        scenario = pick(args.scenario, profile=args.profile)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    secret = args.scenario is None
    fresh = not args.dir
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="rollback-console-drill-"))
    print(
        f"Starting the drill{' (scenario kept secret)' if secret else f' {scenario.id!r}'} in {directory} …",
        file=sys.stderr,
    )
    from console.simulator.postgres import PostgresError
    from console.simulator.repo import RepoError
    from console.simulator.world import SimulationError

    try:
        sim, config_path = prepare(scenario, directory, drill_journal(getattr(args, "config", None)))
    except (SimulationError, PostgresError, RepoError) as exc:
        # Expected trouble (another simulation in --dir, PostgreSQL that will not start):
        # one line, not a crash report.
        if fresh and not args.keep:
            remove_simulation_dir(directory)
        print(f"rollback-console drill: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BaseException:
        if fresh and not args.keep:
            remove_simulation_dir(directory)
        raise
    try:
        config = load_config(config_path)
        journal = Journal(config.journal_path)
        started = time.time()
        journal.append(
            "drill_started",
            env=scenario.environment,
            data={"scenario": scenario.id, "secret": secret, "config": str(config_path)},
        )
        if args.no_console:
            # From the moment the trainee can see the drill, a stop signal means "end and score".
            ended = threading.Event()
            with shutdown.on_stop(lambda signum: ended.set()):
                print(f"\nDRILL — {'incident' if secret else scenario.title}\n\n{_fill(scenario.briefing)}\n")
                print(
                    f"Config: {config_path}\n  rollback-console --config {config_path} status\n"
                    "Ctrl-C (or SIGTERM) ends the drill and prints the scorecard.",
                    flush=True,
                )
                while not ended.wait(0.2):
                    pass
            shutdown.consume()
        else:
            from console.cli.tui import open_console

            args.config = str(config_path)
            open_console(args, drill=scenario, drill_secret=secret, drill_started=started)
        card = finish_drill(scenario, journal, started, time.time(), config)
        if card is not None:  # None: the console showed the scorecard itself when the drill ended there
            print("\n" + card.text())
    finally:
        sim.stop()
        if fresh and not args.keep:
            remove_simulation_dir(directory)
    return EXIT_OK


def _fill(text: str) -> str:
    """The briefing's lines filled to the terminal's width, as the console's modal wraps it."""
    import shutil
    import textwrap

    width = max(40, min(100, shutil.get_terminal_size().columns - 1))
    return "\n".join(textwrap.fill(line, width) if line else line for line in text.splitlines())
