"""What a simulation directory holds between runs: its lock, state.json, and faults by directory."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

from console.simulator import ctl, faults, postgres

LOCK = ".simulation.lock"
KEPT = {LOCK, "journal.jsonl"}  # survive a re-run


class SimulationError(RuntimeError):
    """The simulation could not be built, started or found; the message says what and where."""


def lock(directory: Path) -> int:
    """Hold DIR's lock (released when the process ends, however it ends); an fd to close."""
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()  # its pid, written below
        os.close(fd)
        how = f" (pid {holder}): stop it first (Ctrl-C where it runs, or kill {holder})" if holder.isdigit() else ""
        raise SimulationError(f"another simulation is running in {directory}{how or ': stop it first'}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def is_running(directory: str | os.PathLike[str]) -> bool:
    """Whether a simulation holds DIR's lock right now."""
    path = Path(directory) / LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def load_state(directory: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(directory).resolve() / "state.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SimulationError(f"no simulation in {directory} (no state.json): run `simulate --dir` first") from None
    except (OSError, ValueError) as exc:
        raise SimulationError(f"cannot read {path}: {exc}") from None


def clear_previous(directory: Path) -> None:
    """Stop what a previous run left and remove what it wrote; refuse a directory that is not ours."""
    if not (directory / "state.json").exists():
        extra = sorted(p.name for p in directory.iterdir() if p.name not in KEPT)
        if extra:
            raise SimulationError(
                f"{directory} is not empty and holds no simulation (no state.json): "
                f"use a new or empty directory (found {', '.join(extra[:5])})"
            )
        return
    state = load_state(directory)
    for env in state.get("environments", {}).values():
        for h in env.get("hosts", []):
            ctl.kill_service(Path(h["home"]))
    pg = state.get("postgres") or {}
    if pg.get("owned") and pg.get("root") and Path(pg["root"]).exists():
        postgres.force_stop(pg["guard_item"])
        shutil.rmtree(pg["root"], ignore_errors=True)
    for name in [*state.get("environments", {}), "secrets", "console.toml", "origin", "state.json"]:
        target = directory / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def inject_dir(
    directory: str | os.PathLike[str],
    env: str,
    values: dict[str, Any],
    *,
    host: int | None = None,
    clear: bool = False,
) -> dict[str, faults.Faults]:
    """Faults for a simulation known only by its directory (``rollback-console fault``)."""
    envs = load_state(directory).get("environments", {})
    if env not in envs:
        raise SimulationError(f"no environment {env!r} in the simulation in {directory} (known: {', '.join(envs)})")
    hosts = envs[env]["hosts"]
    if host is not None and not 1 <= host <= len(hosts):
        raise SimulationError(f"{env} has hosts 1..{len(hosts)}, not {host}")
    chosen = [hosts[host - 1]] if host else hosts
    return {h["name"]: faults.update(Path(h["home"]), values, clear=clear) for h in chosen}
