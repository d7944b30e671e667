"""The installed console in a real terminal: tmux on a private socket, keys sent, screens
captured (``capture-pane -p``), stderr redirected to a file, every wait bounded.

A walk is a list of ``Step``s — keys to send, then text to wait for — so another walk
(say, a production request and its withdrawal) is one more list.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CONSOLE = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "rollback-console"


def installed_console() -> Path:
    """The venv's ``rollback-console`` entry point (what `pip install` put there)."""
    import sys

    found = Path(sys.executable).with_name("rollback-console")
    return found if found.exists() else CONSOLE


@dataclass(frozen=True)
class Step:
    """Send ``keys`` (tmux key names), then wait until the screen shows ``expect`` (a regex)."""

    keys: tuple[str, ...] = ()
    expect: str | None = None
    timeout: float = 30.0
    why: str = ""


class Terminal:
    """One command in its own tmux server: ``Terminal(tmp, "rollback-console demo", 80, 24)``."""

    def __init__(self, workdir: Path, command: str, width: int, height: int, env: dict[str, str] | None = None):
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed")
        self.socket = f"rc-test-{uuid.uuid4().hex[:10]}"
        self.workdir = workdir
        self.stderr = workdir / f"{self.socket}.stderr"
        self.exit_file = workdir / f"{self.socket}.exit"
        conf = workdir / f"{self.socket}.conf"
        # The pane stays after the command ends, so what it left on the terminal can be read.
        conf.write_text('set -g remain-on-exit on\nset -g default-terminal "tmux-256color"\nset -g status off\n')
        script = f"{command} 2>{shlex.quote(str(self.stderr))}; echo $? >{shlex.quote(str(self.exit_file))}"
        self._tmux(
            "-f",
            str(conf),
            "new-session",
            "-d",
            "-s",
            "walk",
            "-x",
            str(width),
            "-y",
            str(height),
            "sh",
            "-c",
            script,
            env=env,
        )

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        full_env = {**os.environ, **(env or {})}
        full_env.pop("TMUX", None)
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30, env=full_env
        )
        if out.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: the console sees each as its own key press
            self._tmux("send-keys", "-t", "walk", key)
            time.sleep(0.05)

    def screen(self, *, joined: bool = False) -> str:
        """What the terminal shows; ``joined``: everything since it started (scrolled-off lines
        too), with the lines the terminal wrapped joined again."""
        return self._tmux("capture-pane", "-p", *(["-J", "-S", "-"] if joined else []), "-t", "walk")

    def wait_for(self, pattern: str, timeout: float = 30.0, why: str = "") -> str:
        """Until ``pattern`` is on screen; gives up early when the command ended."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            if self.exit_file.exists() and self.exit_file.read_text().strip():
                break
            time.sleep(0.2)
        raise AssertionError(
            f"{why or 'waiting'}: {pattern!r} not on screen within {timeout:g}s\n{screen}\nstderr: {self.errors()}"
        )

    def settled(self, timeout: float = 10.0) -> str:
        """Everything on the terminal (joined, with history) once it stops changing: after the
        command ended, whatever it wrote last has reached the screen."""
        deadline = time.monotonic() + timeout
        last = self.screen(joined=True)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.screen(joined=True)
            if now == last:
                return now
            last = now
        return last

    def walk(self, steps: list[Step]) -> None:
        for step in steps:
            self.keys(*step.keys)
            if step.expect is not None:
                self.wait_for(step.expect, step.timeout, step.why)

    def exit_code(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exit_file.exists() and self.exit_file.read_text().strip():
                return int(self.exit_file.read_text().strip())
            time.sleep(0.2)
        raise AssertionError(f"still running after {timeout:g}s:\n{self.screen()}")

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace") if self.stderr.exists() else ""

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that mention ``text`` (e.g. a simulation's dir),
    but for the tmux servers driving the tests."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and not cmdline.startswith("tmux "):
            found.append(f"{proc.name}: {cmdline.strip()}")
    return found
