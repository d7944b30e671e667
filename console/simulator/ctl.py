"""Service control for one simulated host: the restart/pid/log/rebuild commands of the config.

    python -m console.simulator.ctl COMMAND --home HOME

start          start the API with the environment read from the env file, detached; wait for /health
stop           SIGTERM, then SIGKILL after a grace period
restart        stop + start (with fault stale_restart: reuses the environment of the previous start,
               like `docker-compose restart`, which does not re-read env_file)
reload         re-read the env file into the saved environment (`systemctl daemon-reload`)
force-restart  kill -9 and start fresh from the env file (the runbook's `pkill -9` + start)
pid            print the pid; exit 1 if not running
service-log    the last lines of the service log (`journalctl -u … -n 50`)
rebuild        byte-compile the app checkout and record what was built (`docker-compose build`)

HOME holds service.json (which env file), the env file, app/ (git checkout), logs/,
run/ (pid, saved environment) and faults.json.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from dotenv import dotenv_values

from console.envfile import parse_env
from console.simulator import faults as faults_mod

GRACE_S = 5.0
START_TIMEOUT_S = 20.0
LOG_TAIL = 50
SERVICE = "analyticbot-api"
MODULE = "console.simulator.service"
# What a home may run (its service.json's "module"): Phase 4's API, or the service of any profile.
MODULES = (MODULE, "console.simulator.generic")
# Passed from the caller's environment to the service; everything else comes from the env file.
PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV")


class CtlError(RuntimeError):
    pass


def unit(home: Path) -> dict[str, str]:
    """HOME/service.json: the service's name, environment and env file (a unit file's role)."""
    try:
        return json.loads((home / "service.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CtlError(f"{home}/service.json: not a simulated service home ({exc})") from None


def _name(home: Path) -> str:
    """The unit's name as messages say it (a profile world's service has its own)."""
    try:
        return str(unit(home).get("service", SERVICE))
    except CtlError:
        return SERVICE


def service_log(home: Path) -> Path:
    return home / "logs" / "service.log"


def _pid_file(home: Path) -> Path:
    return home / "run" / "service.pid"


def _saved_env(home: Path) -> Path:
    return home / "run" / "environ.json"


def _serves(args: list[bytes], home: Path) -> bool:
    """Whether a command line is this home's service: ``python -m MODULE --home HOME``, as
    ``start`` launches it (not a ctl command naming the same home)."""
    return (
        len(args) >= 5
        and args[1:4:2] == [b"-m", b"--home"]
        and args[2].decode(errors="replace") in MODULES
        and args[4] == str(home).encode()
    )


def _alive(pid: int, home: Path | None = None) -> bool:
    """Running (not a zombie) and, when ``home`` is given, really this home's service."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
        if home is None:
            return True
        return _serves(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"), home)
    except (OSError, IndexError):
        return False


def _recorded_pid(home: Path) -> int | None:
    try:
        pid = int(_pid_file(home).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, home) else None


def _home_pids(home: Path) -> list[int]:
    """Every live service process of this home, recorded in the pid file or not: a start cut
    short between launching the service and writing its pid leaves one unrecorded, and it
    holds the port (systemd finds such a process in the unit's cgroup; here, by its command line)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
        except OSError:
            continue
        if _serves(args, home) and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def running_pid(home: Path) -> int | None:
    pid = _recorded_pid(home)
    if pid is not None:
        return pid
    strays = _home_pids(home)
    return strays[0] if strays else None


def _journal(home: Path, message: str) -> None:
    service_log(home).parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%b %d %H:%M:%S")
    with open(service_log(home), "a", encoding="utf-8") as fh:
        fh.write(f"-- {stamp} systemd: {message}\n")


def tail(home: Path, lines: int = LOG_TAIL) -> str:
    try:
        with open(service_log(home), "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 256 * 1024))
            data = fh.read()
    except OSError:
        return "(no service log yet)"
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def environment_from_file(home: Path) -> dict[str, str]:
    """The service's environment: a few variables of ours plus every binding of the env file."""
    env_file = Path(unit(home)["env_file"])
    try:
        data = env_file.read_bytes()
    except OSError as exc:
        raise CtlError(f"cannot read env file {env_file}: {exc.strerror}") from None
    for problem in parse_env(data, str(env_file)).problems:  # systemd skips bad lines, and says so
        _journal(home, f"{env_file}: ignoring invalid environment assignment ({problem})")
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", "SERVICE_HOME": str(home)})
    values = dotenv_values(stream=io.StringIO(data.decode("utf-8", errors="surrogateescape")), interpolate=False)
    env.update({k: v for k, v in values.items() if v is not None})
    return env


def _save_env(home: Path, env: dict[str, str]) -> None:
    path = _saved_env(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the DSN password
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(env, fh)
    os.replace(tmp, path)


def _load_saved_env(home: Path) -> dict[str, str] | None:
    try:
        return json.loads(_saved_env(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _health_ok(port: int, path: str = "/health", any_status: bool = False) -> bool:
    """Whether it answers; ``any_status``: any HTTP answer counts (a health endpoint that tells
    the truth may say "down" from a service that is up)."""
    # http.client, not urllib.request on top of it: this runs in every simulated restart.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return status == 200 or any_status


def start(home: Path, *, saved: bool = False, out: TextIO | None = None, stopped: bool = False) -> int:
    """Start detached; wait until /health answers (0) or the process dies (1, with the log tail).
    ``stopped``: every service of this home was just stopped (a restart), none is looked for."""
    out = out or sys.stdout
    pid = None if stopped else running_pid(home)
    if pid:
        print(f"{_name(home)} is already running (pid {pid})", file=out)
        return 0
    env = _load_saved_env(home) if saved else None
    if env is None:
        env = environment_from_file(home)
        _save_env(home, env)
    try:
        port = int(env.get("API_PORT", ""))
    except ValueError:
        port = 0
    _journal(home, f"Starting {_name(home)} ({unit(home).get('environment', '?')})…")
    module = unit(home).get("module", MODULE)
    if module not in MODULES:
        raise CtlError(f"{home}/service.json: unknown module {module!r} (known: {', '.join(MODULES)})")
    health = unit(home).get("health", "/health")
    if port and _health_ok(port, health, any_status=True):
        # Not ours (ours would have been found above): its answers would pass for the new
        # service's, which cannot bind the port and dies.
        _journal(home, f"{_name(home)}.service: port {port} is already in use by another process.")
        print(f"{_name(home)} not started: port {port} is already in use by another process", file=sys.stderr)
        return 1
    with open(service_log(home), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--home", str(home)],
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a daemon: survives whoever ran this command
        )
    _pid_file(home).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            _pid_file(home).unlink(missing_ok=True)
            _journal(home, f"{_name(home)}.service: Main process exited, code=exited, status={code}/FAILURE")
            print(
                f"{_name(home)} failed to start (exit status {code}). Last lines of {service_log(home)}:",
                file=sys.stderr,
            )
            print(tail(home), file=sys.stderr)
            return 1
        if port and _health_ok(port, health, any_status=module != MODULE):
            _journal(home, f"Started {_name(home)} (pid {proc.pid}).")
            print(f"{_name(home)} started (pid {proc.pid}), http://127.0.0.1:{port}{health} answers", file=out)
            return 0
        time.sleep(0.05)
    print(f"{_name(home)} (pid {proc.pid}) did not answer {health} within {START_TIMEOUT_S:.0f}s", file=sys.stderr)
    print(tail(home), file=sys.stderr)
    return 1


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _all_pids(home: Path) -> list[int]:
    """The recorded service and any unrecorded one: a stop stops them all, as systemd's does."""
    recorded = _recorded_pid(home)
    return ([recorded] if recorded is not None else []) + [p for p in _home_pids(home) if p != recorded]


def _wait_all_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    return all(_wait_gone(pid, max(0.0, deadline - time.monotonic())) for pid in pids)


def stop(home: Path, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    pids = _all_pids(home)
    if not pids:
        print(f"{_name(home)} is not running", file=out)
        _pid_file(home).unlink(missing_ok=True)
        return 0
    said = ", ".join(str(pid) for pid in pids)
    _journal(home, f"Stopping {_name(home)} (pid {said})…")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if not _wait_all_gone(pids, GRACE_S):
        _journal(home, f"{_name(home)}.service: State 'stop-sigterm' timed out. Killing.")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _wait_all_gone(pids, 5)
    _pid_file(home).unlink(missing_ok=True)
    _journal(home, f"Stopped {_name(home)}.")
    print(f"{_name(home)} stopped (pid {said})", file=out)
    return 0


def kill_service(home: Path) -> None:
    """SIGKILL without ceremony (force-restart, and the guard's cleanup)."""
    pids = _all_pids(home)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_all_gone(pids, 5)
    _pid_file(home).unlink(missing_ok=True)


def restart(home: Path) -> int:
    stale = faults_mod.read(home).stale_restart
    stop(home)
    return start(home, saved=stale, stopped=True)


def reload(home: Path) -> int:
    env = environment_from_file(home)
    _save_env(home, env)
    _journal(home, "Reloading environment from the env file (daemon-reload).")
    print(f"reloaded the environment of {_name(home)} from {unit(home)['env_file']}")
    return 0


def force_restart(home: Path) -> int:
    pid = running_pid(home)
    kill_service(home)
    if pid:
        _journal(home, f"{_name(home)}.service: Main process exited, code=killed, status=9/KILL")
        print(f"killed {_name(home)} (pid {pid}) with SIGKILL")
    return start(home, stopped=True)


def rebuild(home: Path) -> int:
    """Byte-compile the checkout and stamp HOME/build/build.json with what was built."""
    repo = home / "app"
    print(f"Building {_name(home)} from {repo}")
    ok = compileall.compile_dir(str(repo / "app"), quiet=0, force=True, legacy=False, workers=1)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    commit = head.stdout.strip() or "unknown"
    if not ok:
        print(f"Build FAILED at commit {commit[:7]}: see the compile errors above", file=sys.stderr)
        return 1
    phase4 = (repo / "app" / "config" / "feature_flags.py").is_file()
    stamp = {"commit": commit, "phase4": phase4, "built_at": datetime.now(UTC).isoformat()}
    (home / "build").mkdir(exist_ok=True)
    (home / "build" / "build.json").write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    release = unit(home).get("release", "Phase 4")
    print(f"Build complete: commit {commit[:7]}, {release} code {'present' if phase4 else 'absent'}")
    print("Restart the service to deploy it.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.simulator.ctl", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command",
        choices=["start", "stop", "restart", "reload", "force-restart", "pid", "service-log", "rebuild"],
    )
    parser.add_argument("--home", required=True, help="the service home")
    parser.add_argument("-n", "--lines", type=int, default=LOG_TAIL, help="service-log: how many lines")
    args = parser.parse_args(argv)
    home = Path(args.home).resolve()
    try:
        unit(home)
        if args.command == "pid":
            pid = running_pid(home)
            if pid is None:
                print(f"{_name(home)} is not running", file=sys.stderr)
                return 1
            print(pid)
            return 0
        if args.command == "service-log":
            print(tail(home, args.lines))
            return 0
        actions = {
            "start": start,
            "stop": stop,
            "restart": restart,
            "reload": reload,
            "force-restart": force_restart,
            "rebuild": rebuild,
        }
        return actions[args.command](home)
    except (CtlError, faults_mod.FaultError) as exc:
        print(f"ctl {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
