"""The sides bench/fleet.py times over one sshd and one simulated fleet: the console (this
checkout, or another one: the "before"), a sequential OpenSSH loop, Ansible ad hoc, and the
floor — the restarts alone over connections already open."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncssh
import tomli_w

from console.envfile import parse_env
from console.profile import profile_at
from console.simulator.configfile import SSHTarget
from console.simulator.world import SimHost, Simulation
from tests.fixtures_ssh import find_sshd, start_sshd, stop_sshd, write_key_pair

RULES = profile_at(None).flags  # the simulated fleet runs the default profile (Phase 4)
FLAGS = tuple(f.env for f in RULES.flags)

QUICK = ("rollback", "quick", "--env", "staging", "--yes")
SED = (
    "sed -i -e 's/^ENABLE_ADVANCED_RECOMMENDATIONS=.*/ENABLE_ADVANCED_RECOMMENDATIONS=false/' "
    "-e 's/^ENABLE_TIME_WEIGHTING=.*/ENABLE_TIME_WEIGHTING=false/' "
    "-e 's/^ENABLE_CONTENT_TYPE_ANALYSIS=.*/ENABLE_CONTENT_TYPE_ANALYSIS=false/'"
)
ANSIBLE_INSTALL = ".venv/bin/pip install -e '.[bench]'   (ansible-core 2.19)"


class Sshd:
    """A private OpenSSH server on 127.0.0.1, as tests/fixtures_ssh.py starts it."""

    def __init__(self, directory: Path) -> None:
        binary = find_sshd()
        if binary is None:
            raise SystemExit("needs an OpenSSH server binary (sshd): apt-get install openssh-server")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd as root insists on it
        directory.mkdir(parents=True)
        (directory / "home").mkdir()
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        write_key_pair(host_key, directory / "ssh_host_ed25519_key")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        write_key_pair(client_key, directory / "id_ed25519")
        (directory / "authorized_keys").write_bytes(client_key.export_public_key())
        self.proc, self.port, _ = start_sshd(binary, directory)
        self.known_hosts = directory / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_key.export_public_key().decode().strip()}\n")
        self.key_file = directory / "id_ed25519"
        self.user = os.environ.get("USER") or __import__("pwd").getpwuid(os.geteuid()).pw_name

    def target(self) -> SSHTarget:
        return SSHTarget("127.0.0.1", self.port, self.user, str(self.key_file), str(self.known_hosts))

    def options(self) -> list[str]:
        """OpenSSH client options: the same key and known_hosts as the console, no user config."""
        return [
            "-i",
            str(self.key_file),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-F",
            "/dev/null",
        ]

    def ssh_command(self, remote: str) -> list[str]:
        return ["ssh", "-p", str(self.port), *self.options(), f"{self.user}@127.0.0.1", remote]

    def stop(self) -> None:
        stop_sshd(self.proc)


def bare_steps(sim: Simulation, host: SimHost) -> str:
    """The runbook's quick rollback on one host, bare: sed the flags, restart, curl /health."""
    return (
        f"{SED} {shlex.quote(str(host.env_file))} && {sim.command('staging', 'restart_command', host.index)} "
        f">/dev/null && curl -fsS {host.api_url}/health >/dev/null"
    )


def reset(sim: Simulation, hosts: list[SimHost]) -> None:
    """All flags back on, the APIs restarted with them, backups gone (not timed)."""

    def one(host: SimHost) -> None:
        env = parse_env(host.env_file.read_bytes(), str(host.env_file))
        host.env_file.write_bytes(env.encoded(env.with_flags(dict.fromkeys(FLAGS, True), RULES)))
        result = sim.run("staging", "restart_command", host.index)
        if result.returncode != 0:
            raise SystemExit(f"restart of {host.name} failed while resetting:\n{result.stdout}{result.stderr}")
        for backup in host.env_file.parent.glob(host.env_file.name + ".rollback-console.*.bak"):
            backup.unlink()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, hosts))


def all_off(hosts: list[SimHost]) -> None:
    """Every side must have turned the three flags off on every host."""
    for host in hosts:
        flags = parse_env(host.env_file.read_bytes(), str(host.env_file)).flags(RULES)
        if any(flags.values()):
            raise SystemExit(f"{host.name}: the flags are still on after the run ({flags.describe()})")


# --- the console ---------------------------------------------------------------------------------
def console_config(sim: Simulation, directory: Path, size: int, concurrency: int | None, tag: str) -> Path:
    """The simulator's config narrowed to its first ``size`` hosts, journaling in ``directory``.
    Without ``concurrency`` the console's own default applies (the simulator writes none)."""
    data = tomllib.loads(sim.config_path.read_text(encoding="utf-8"))
    env = data["environments"]["staging"]
    env["hosts"] = [h.name for h in sim.hosts("staging")[:size]]
    fleet = env.setdefault("fleet", {"mode": "parallel"})
    fleet.pop("concurrency", None)
    if concurrency is not None:
        fleet["concurrency"] = concurrency
    data["console"]["journal"] = str(directory / f"journal-{tag}-{size}.jsonl")
    path = directory / f"console-{tag}-{size}.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def time_console(config: Path, checkout: Path) -> tuple[float, float, float, str]:
    """Seconds for the whole command run from ``checkout``; its own CPU seconds; the wall-clock
    time it started at; the run id."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    started_at = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "console", "--config", str(config), *QUICK],
        capture_output=True,
        text=True,
        cwd=checkout,
        env=env,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"the console's rollback ({checkout}) failed:\n{result.stdout[-6000:]}{result.stderr[-3000:]}")
    run_id = result.stdout.rsplit("\nrun ", 1)[1].split(":", 1)[0]
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu, started_at, run_id


# --- OpenSSH, one host after another --------------------------------------------------------------
def time_openssh(sshd: Sshd, sim: Simulation, hosts: list[SimHost]) -> float:
    start = time.perf_counter()
    for host in hosts:
        subprocess.run(sshd.ssh_command(bare_steps(sim, host)), check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


# --- Ansible ad hoc ------------------------------------------------------------------------------
def ansible_binary() -> str | None:
    """`ansible` beside this Python (the venv), else on PATH."""
    here = Path(sys.executable).parent / "ansible"
    return str(here) if here.exists() else shutil.which("ansible")


def ansible_setup(sshd: Sshd, sim: Simulation, hosts: list[SimHost], directory: Path) -> tuple[Path, Path]:
    """An inventory of the same hosts (same address, port, user, key, known_hosts) with each
    host's bare steps as a var, and an ansible.cfg that ignores the user's own settings."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cp").mkdir(exist_ok=True)
    entries = {
        host.name: {
            "rollback_steps": bare_steps(sim, host),
            # Each host its own master connection, as separate machines would have (they all
            # share one address and port here, and Ansible's ControlPath hashes just those).
            "ansible_control_path": f"%(directory)s/{host.name}",
        }
        for host in hosts
    }
    inventory = {
        "fleet": {
            "hosts": entries,
            "vars": {
                "ansible_host": "127.0.0.1",
                "ansible_port": sshd.port,
                "ansible_user": sshd.user,
                "ansible_ssh_private_key_file": str(sshd.key_file),
                # Set, not discovered: discovery would cost every host one more round trip.
                "ansible_python_interpreter": sys.executable,
            },
        }
    }
    inventory_path = directory / f"inventory-{len(hosts)}.yml"
    inventory_path.write_text(json.dumps(inventory, indent=1), encoding="utf-8")  # JSON is YAML
    ssh_args = " ".join(
        [
            *("-C", "-o ControlMaster=auto", "-o ControlPersist=60s"),  # Ansible's own defaults
            *(f"-o UserKnownHostsFile={sshd.known_hosts}", "-o GlobalKnownHostsFile=/dev/null"),
            *("-o StrictHostKeyChecking=yes", "-o BatchMode=yes"),
        ]
    )
    cfg = directory / "ansible.cfg"
    cfg.write_text(
        "[defaults]\n"
        "host_key_checking = True\n"
        f"local_tmp = {directory / 'local-tmp'}\n"
        "remote_tmp = ~/.ansible/tmp\n"
        "retry_files_enabled = False\n"
        "[ssh_connection]\n"
        f"ssh_args = {ssh_args}\n"
        f"control_path_dir = {directory / 'cp'}\n",
        encoding="utf-8",
    )
    return inventory_path, cfg


def time_ansible(binary: str, inventory: Path, cfg: Path, forks: int) -> float:
    """`ansible fleet -m shell -a 'eval …' --forks N`: the same steps on every host (`eval`, a
    shell builtin: ad hoc arguments that start with "{" are read as JSON)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(cfg), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    steps = "eval {{ rollback_steps | quote }}"
    command = [binary, "fleet", "-i", str(inventory), "-m", "shell", "-a", steps, "-f", str(forks)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"ansible failed ({result.returncode}):\n{result.stdout[-4000:]}{result.stderr[-3000:]}")
    return elapsed


def stop_ansible_masters(cfg: Path) -> None:
    """ControlPersist masters outlive the command: stop them so every run connects afresh."""
    for socket in (cfg.parent / "cp").iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "-F", "/dev/null", "x"],
            capture_output=True,
            check=False,
        )


# --- the floor -----------------------------------------------------------------------------------
def time_floor(sshd: Sshd, sim: Simulation, hosts: list[SimHost]) -> float:
    """Only the restart commands, all hosts at once, each over its own SSH connection opened
    beforehand (not timed): what no tool doing this over SSH on this machine can beat."""

    async def go() -> float:
        connections = await asyncio.gather(
            *(
                asyncssh.connect(
                    "127.0.0.1",
                    port=sshd.port,
                    username=sshd.user,
                    client_keys=[str(sshd.key_file)],
                    known_hosts=str(sshd.known_hosts),
                    config=None,
                )
                for _ in hosts
            )
        )
        commands = [sim.command("staging", "restart_command", h.index) for h in hosts]
        try:
            start = time.perf_counter()
            results = await asyncio.gather(*(c.run(cmd) for c, cmd in zip(connections, commands, strict=True)))
            elapsed = time.perf_counter() - start
        finally:
            for c in connections:
                c.close()
            await asyncio.gather(*(c.wait_closed() for c in connections))
        failed = [r for r in results if r.exit_status != 0]
        if failed:
            raise SystemExit(f"a restart failed:\n{failed[0].stdout}{failed[0].stderr}")
        return elapsed

    return asyncio.run(go())
