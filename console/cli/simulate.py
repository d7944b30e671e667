"""``rollback-console simulate --dir DIR`` and ``rollback-console fault --dir DIR ENV KEY=VALUE …``."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from console.cli import EXIT_FAILED, EXIT_OK, UsageError
from console.cli.common import number_between
from console.simulator.words import FAULT_HELP, LOGIN_EMAIL_LINE, SERVICE, SIMULATE_HELP

if TYPE_CHECKING:
    from console.simulator.world import Simulation


class _Stop(Exception):
    pass


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="run simulated environments; write DIR/console.toml",
        description=SIMULATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dir", required=True, metavar="DIR", help="where to lay out the simulation")
    p.add_argument(
        "--env",
        action="append",
        dest="envs",
        metavar="NAME",
        help="an environment to simulate (repeatable; default: staging and production). "
        "Names starting with 'prod' are production kind, others staging",
    )
    p.add_argument(
        "--hosts",
        type=number_between(1, 200, integer=True),
        default=1,
        metavar="N",
        help="API processes (hosts) per environment",
    )
    p.add_argument("--no-db", action="store_true", help="no PostgreSQL: the service serves a synthetic data set")
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="simulate the service this profile describes (default: the default profile's service)",
    )
    ssh = p.add_argument_group("reaching the simulated hosts over SSH (the config then names them so)")
    ssh.add_argument("--ssh-address", metavar="A", help="SSH address of this machine")
    ssh.add_argument("--ssh-port", type=number_between(1, 65535, integer=True), default=22, metavar="P")
    ssh.add_argument("--ssh-user", metavar="U")
    ssh.add_argument("--ssh-key", metavar="K", help="private key file")
    ssh.add_argument("--known-hosts", metavar="F", help="known_hosts file holding this machine's host key")
    p.set_defaults(func=run_simulate)

    f = sub.add_parser(
        "fault",
        help="inject faults into a running simulation",
        description="Set faults on the simulated hosts of ENV (all of them, or --host N).",
        epilog=FAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    f.add_argument("--dir", required=True, metavar="DIR", help="the simulation's directory")
    f.add_argument("env", metavar="ENV")
    # REMAINDER: options may also follow the KEY=VALUE list or sit among it (see _split_fault_args).
    f.add_argument("assignments", nargs=argparse.REMAINDER, metavar="KEY=VALUE")
    f.add_argument("--host", type=number_between(1, 10_000, integer=True), metavar="N", help="only host N (1-based)")
    f.add_argument("--clear", action="store_true", help="clear every fault first (alone: clear them all)")
    f.set_defaults(func=run_fault)


def run_simulate(args: argparse.Namespace) -> int:
    from console.simulator.configfile import SSHTarget
    from console.simulator.postgres import PostgresError
    from console.simulator.repo import RepoError
    from console.simulator.world import Simulation, SimulationError

    ssh_given = any((args.ssh_user, args.ssh_key, args.known_hosts, args.ssh_port != 22))
    if ssh_given and not args.ssh_address:
        raise UsageError("simulate: --ssh-port/--ssh-user/--ssh-key/--known-hosts need --ssh-address")
    ssh = None
    if args.ssh_address:
        ssh = SSHTarget(args.ssh_address, args.ssh_port, args.ssh_user, args.ssh_key, args.known_hosts)
    environments = tuple(args.envs or ("staging", "production"))
    try:
        if _other_profile(args.profile):
            sim: Simulation = _profile_simulation(args, environments, ssh)
        else:
            sim = Simulation(
                args.dir,
                environments=environments,
                hosts=args.hosts,
                database=False if args.no_db else None,
                ssh=ssh,
            )
    except SimulationError as exc:
        raise UsageError(str(exc)) from None

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:  # a second Ctrl-C must not interrupt the cleanup
            stopping = True
            raise _Stop(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        print(f"Starting the simulated {_service(sim)} in {sim.directory} …", flush=True)
        sim.start()
        _summary(sim)
        while True:
            signal.pause()
    except _Stop:
        return EXIT_OK
    except (SimulationError, PostgresError, RepoError) as exc:
        print(f"rollback-console simulate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        stopping = True
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        sim.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        gone = "the API processes are" if getattr(sim, "profile", None) else "the API processes and PostgreSQL are"
        print(f"Stopped: {gone} down.", flush=True)


def _other_profile(path: str | None) -> bool:
    """Whether --profile names another profile than Phase 4's (which keeps its own simulation)."""
    from console.profile import DEFAULT_PROFILE

    return path is not None and Path(path).resolve() != DEFAULT_PROFILE.resolve()


def _profile_simulation(args: argparse.Namespace, environments: tuple[str, ...], ssh: object) -> Simulation:
    from console.profile import ProfileError
    from console.simulator.answers import GenerationError
    from console.simulator.generic_world import ProfileSimulation

    if args.no_db:
        raise UsageError("simulate: --no-db is for the Phase 4 simulation; a profile's simulation has no database")
    try:
        return ProfileSimulation(args.dir, profile=args.profile, environments=environments, hosts=args.hosts, ssh=ssh)
    except ProfileError as exc:
        raise UsageError(f"simulate: {exc}") from None
    except GenerationError as exc:
        raise UsageError(f"simulate: {Path(args.profile).resolve()}: {exc}") from None


def _service(sim: object) -> str:
    profile = getattr(sim, "profile", None)
    return profile.info.service if profile is not None else SERVICE


def _summary(sim: object) -> None:
    from console.simulator.world import Simulation, kind_of

    assert isinstance(sim, Simulation)
    profile = getattr(sim, "profile", None)
    lines = [f"Simulated {_service(sim)} is running in {sim.directory}"]
    for env in sim.environments:
        hosts = sim.hosts(env)
        lines.append(f"  {env} ({kind_of(env)}, {len(hosts)} host{'s' if len(hosts) != 1 else ''}):")
        for h in hosts:
            lines.append(f"    {h.name:<16} {h.api_url}  pid {h.pid()}  log {h.log_file}")
    if sim.cluster is not None:
        names = ", ".join(sim.database_name(e) or "?" for e in sim.environments)
        lines.append(f"  PostgreSQL {sim.cluster.version} on 127.0.0.1:{sim.cluster.port} (databases {names})")
    else:
        lines.append(f"  {sim.database_note}; synthetic data")
    lines += [
        f"Config: {sim.config_path}",
        "Point the console at it, from any shell:",
        f"  rollback-console --config {sim.config_path}",
        f"  or: export ROLLBACK_CONSOLE_CONFIG={sim.config_path}",
        LOGIN_EMAIL_LINE.format(secrets=sim.directory / "secrets"),
        f"Inject faults: rollback-console fault --dir {sim.directory} {sim.environments[-1]} latency_s=6",
        "Ctrl-C to stop (stops the API processes and PostgreSQL).",
    ]
    if profile is not None:  # no login line unless the profile logs in; no PostgreSQL to stop
        lines = [line for line in lines if not line.startswith("Probe login") and not line.startswith("Ctrl-C")]
        if profile.probe.login is not None:
            lines.insert(-1, f"Probe login: password in {sim.directory / 'secrets'}/<env>.password")
        shapes = profile.probe.answer.failures
        if shapes:
            lines.append(f"  or a failure answer: … {sim.environments[-1]} failure={shapes[0].id}")
        lines.append(f"Profile: {profile.path}")
        lines.append("Ctrl-C to stop (stops the API processes).")
    print("\n".join(lines), flush=True)


def _split_fault_args(args: argparse.Namespace) -> list[str]:
    """KEY=VALUE items; --host N and --clear found among them are applied to ``args``."""
    items: list[str] = []
    rest = iter(args.assignments)
    for item in rest:
        if item == "--clear":
            args.clear = True
        elif item == "--host" or item.startswith("--host="):
            raw = item.partition("=")[2] if "=" in item else next(rest, "")
            if not raw.isdigit():
                raise UsageError(f"fault: --host needs a host number, got {raw!r}")
            args.host = int(raw)
        elif item.startswith("-"):
            raise UsageError(f"fault: unknown option {item!r}")
        else:
            items.append(item)
    return items


def run_fault(args: argparse.Namespace) -> int:
    from console.simulator.faults import FAULTS, FaultError
    from console.simulator.world import SimulationError, inject_dir, is_running

    values: dict[str, str] = {}
    for item in _split_fault_args(args):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"fault: expected KEY=VALUE, got {item!r} (faults: {', '.join(FAULTS)})")
        values[key.strip()] = value.strip()
    if not values and not args.clear:
        raise UsageError(f"fault: nothing to do: give KEY=VALUE … or --clear (faults: {', '.join(FAULTS)})")
    try:
        result = inject_dir(args.dir, args.env, values, host=args.host, clear=args.clear)
    except (FaultError, SimulationError) as exc:
        raise UsageError(f"fault: {exc}") from None
    for host, faults in result.items():
        active = (
            ", ".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={str(v).lower()}" for k, v in faults.active().items()
            )
            or "no faults"
        )
        print(f"{host}: {active}")
    if not is_running(args.dir):
        print(f"note: no simulation is running in {args.dir} right now", file=sys.stderr)
    return EXIT_OK


def remove_simulation_dir(directory: Path) -> None:
    """A demo's or drill's fresh temp dir, once its simulation has stopped. A failure is
    reported (on stderr: it is an error), never raised: the session is over anyway."""
    try:
        shutil.rmtree(directory)
    except FileNotFoundError:
        pass
    except OSError as exc:
        print(f"rollback-console: could not remove the temporary directory {directory}: {exc}", file=sys.stderr)
