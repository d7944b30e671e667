"""The bad-input suite's harness: kinds of bad input, the CLI with a deadline, and what
every answer must be (an exit code, a sentence naming what and where, no traceback, no
crash-guard line, no raw control character, nothing changed).

Each kind registers itself with ``@kind(family, name)``; tests/test_hostile_input.py runs
them all and conftest prints the count per family at the end of the run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.cli.guard import CRASH_MARKER
from console.simulator.world import SimHost, Simulation

CASE_TIMEOUT_S = 60.0  # a hang guard, not a speed requirement
# What must never reach an operator's terminal raw: C0 controls but tab and newline, DEL,
# C1 (one-byte CSI), bidi overrides and isolates, zero-width and line separators.
RAW_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


@dataclass(frozen=True)
class Kind:
    family: str
    name: str
    doc: str
    run: Callable[[Any], None]

    @property
    def id(self) -> str:
        return f"{self.family}:{self.name}"


KINDS: list[Kind] = []


def kind(family: str, name: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Register a bad-input kind: ``fn(ctx)`` tries it and asserts the answer."""

    def register(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        KINDS.append(Kind(family, name, (fn.__doc__ or "").strip(), fn))
        return fn

    return register


def counts() -> dict[str, int]:
    out: dict[str, int] = {}
    for k in KINDS:
        out[k.family] = out.get(k.family, 0) + 1
    return out


# --- the command line with a deadline -------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    args: tuple[str, ...]
    code: int
    out: str
    err: str
    raw: bytes = field(repr=False, default=b"")

    @property
    def text(self) -> str:
        return self.out + self.err

    def __str__(self) -> str:
        return f"$ rollback-console {' '.join(self.args)}  → exit {self.code}\n{self.out}\n{self.err}"


def cli_env(state: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("ROLLBACK_CONSOLE_CONFIG", None)
    if state is not None:
        env["XDG_STATE_HOME"] = str(state)  # crash logs (there must be none) land here
    env.update(extra or {})
    return env


def run(
    config: Path | str | None,
    *args: str,
    state: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = CASE_TIMEOUT_S,
    stdin: bytes | None = None,
) -> Answer:
    """``rollback-console [--config CONFIG] ARGS…`` as a subprocess, killed (and the case
    failed as a hang) if it has not answered within ``timeout``."""
    argv = [sys.executable, "-m", "console", *(["--config", str(config)] if config is not None else []), *args]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(state, env),
        cwd="/",
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(
            f"HANG: `rollback-console {' '.join(args)}` gave no answer within {timeout:g}s\n"
            f"{out.decode(errors='replace')[-2000:]}\n{err.decode(errors='replace')[-2000:]}"
        ) from None
    return Answer(
        tuple(args), proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), out + err
    )


def assert_sane(
    answer: Answer, *, code: int | Iterable[int], says: Iterable[str] = (), secrets: Iterable[str] = ()
) -> None:
    """The answer every bad input must get: the exit code, each expected phrase (what and
    where), no traceback, not the crash guard's line, nothing raw for the terminal, no secret."""
    codes = {code} if isinstance(code, int) else set(code)
    assert "Traceback (most recent call last)" not in answer.text, f"a traceback:\n{answer}"
    assert CRASH_MARKER not in answer.text, f"the crash guard caught it (a bad input needs its own sentence):\n{answer}"
    assert answer.code in codes, f"exit {answer.code}, expected {sorted(codes)}:\n{answer}"
    for phrase in says:
        assert phrase in answer.text, f"{phrase!r} is not said:\n{answer}"
    raw = RAW_UNSAFE.search(answer.out + answer.err)
    assert raw is None, f"a raw {raw.group()!r} reached the terminal:\n{answer!r}"
    for secret in secrets:
        assert secret not in answer.text, f"a secret reached the output of {answer.args}"


# --- "nothing changed" ------------------------------------------------------------------------


@dataclass(frozen=True)
class HostState:
    env_bytes: bytes | None
    env_is_link: bool
    pid: int | None


def host_state(host: SimHost) -> HostState:
    path = host.env_file
    try:
        data = path.read_bytes() if path.is_file() else None
    except OSError:
        data = None
    return HostState(data, path.is_symlink(), host.pid())


def journal_bytes(sim: Simulation) -> bytes:
    path = sim.directory / "journal.jsonl"
    return path.read_bytes() if path.is_file() else b""


class Unchanged:
    """``with Unchanged(sim):`` — the env files, the service processes and the journal are
    byte for byte what they were (``journal=False`` when the command may record)."""

    def __init__(self, sim: Simulation, *, journal: bool = True) -> None:
        self.sim, self.journal = sim, journal

    def _now(self) -> tuple[list[HostState], bytes]:
        hosts = [host_state(h) for env in self.sim.environments for h in self.sim.hosts(env)]
        return hosts, journal_bytes(self.sim) if self.journal else b""

    def __enter__(self) -> Unchanged:
        self.before = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        hosts, journal = self._now()
        assert hosts == self.before[0], "an env file or a service changed"
        assert journal == self.before[1], "the journal changed"


def set_key(config_text: str, env: str, key: str, value: str) -> str:
    """The config with ``key = value`` (value as TOML) in [environments.ENV], replacing it."""
    lines = config_text.splitlines()
    header = f"[environments.{env}]"
    start = lines.index(header)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start + 1, end):
        if re.match(rf"{re.escape(key)}\s*=", lines[i]):
            lines[i] = f"{key} = {value}"
            break
    else:
        lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


# --- shared by the families ------------------------------------------------------------------

MINIMAL = """\
[environments.staging]
kind = "staging"
hosts = ["local"]
api_url = "http://127.0.0.1:10300"
channel_id = -100
login_email = "ops@example.com"
password = { env = "PROBE_PASSWORD" }
env_file = "/srv/analyticbot/.env.staging"
restart_command = "systemctl restart analyticbot-api"
pid_command = "pgrep -f uvicorn"
log_file = "/var/log/analyticbot/staging.log"
"""
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mRED\x0b\x0c\u202eevil"
# The same without BEL: an env file with a BEL in it is refused as not text (env_binary_line).
ENV_ESCAPES = "\x1b]0;pwned\x1b\\\x1b[2J\x1b[31mRED\x0b\x0c\u202eevil"


def toml_path(value: object) -> str:
    """A path (or any text) as a TOML string."""
    return json.dumps(str(value))


def run_id_of(answer: Answer) -> str:
    found = re.search(r"run (r-\S+):", answer.out)
    assert found, f"no run id in:\n{answer}"
    return found.group(1)


def with_password_file(ctx, secret: Path) -> Path:
    text = ctx.sim.config_path.read_text()
    return ctx.config(set_key(text, "staging", "password", f"{{ file = {toml_path(secret)} }}"))


def env_variant(ctx, env_file: Path | str) -> Path:
    return ctx.config(set_key(ctx.sim.config_path.read_text(), "staging", "env_file", toml_path(env_file)))


def log_variant(ctx, log_file: Path | str) -> Path:
    return ctx.config(set_key(ctx.sim.config_path.read_text(), "staging", "log_file", toml_path(log_file)))


def journal_with(ctx, *lines: bytes):
    """A fresh simulation with one real run in its journal, then ``lines`` appended."""
    sim = ctx.fresh()
    answer = ctx.run(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", "first")
    assert answer.code == 0, answer
    run_id = run_id_of(answer)
    journal = sim.directory / "journal.jsonl"
    before = journal.read_bytes().count(b"\n")
    with open(journal, "ab") as fh:
        for line in lines:
            fh.write(line + b"\n")
    return sim, run_id, before + 1
