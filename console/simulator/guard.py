"""A watchdog that cleans up after its owner if the owner dies without doing it.

The API processes run detached (their own session, like a real daemon) and PostgreSQL
is daemonized by pg_ctl, so neither dies with the process that started them. The guard
is a small child process that polls its parent; once it is reparented (the owner died,
even by SIGKILL) it stops every service home and cluster listed in its state file.
A clean shutdown terminates the guard first, then cleans up itself.

    python -m console.simulator.guard --state FILE --owner PID
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

POLL_S = 0.3


class Guard:
    """Owner side: spawns the watchdog and keeps its list of things to clean up."""

    def __init__(self) -> None:
        fd, name = tempfile.mkstemp(prefix="rollback-console-guard-", suffix=".json")
        os.close(fd)
        self.state = Path(name)
        self._items: dict[str, dict[str, Any]] = {}
        self._write()
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "console.simulator.guard", "--state", str(self.state), "--owner", str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for the owner must not kill the guard
        )

    def add(self, key: str, item: dict[str, Any]) -> None:
        """``item`` is {"kind": "service", "home": …} or {"kind": "postgres", …} (see cleanup)."""
        self._items[key] = item
        self._write()

    def discard(self, key: str) -> None:
        if self._items.pop(key, None) is not None:
            self._write()

    def close(self) -> None:
        """The owner is cleaning up itself: stop watching."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            self._proc = None
        with contextlib.suppress(FileNotFoundError):
            self.state.unlink()

    def _write(self) -> None:
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._items), encoding="utf-8")
        os.replace(tmp, self.state)


def cleanup(items: dict[str, dict[str, Any]]) -> None:
    """Stop services first (they hold database connections), then clusters."""
    from console.simulator import ctl, postgres

    ordered = sorted(items.values(), key=lambda i: i.get("kind") != "service")
    for item in ordered:
        with contextlib.suppress(Exception):
            if item["kind"] == "service":
                ctl.kill_service(Path(item["home"]))
            elif item["kind"] == "postgres":
                postgres.force_stop(item)
                if item.get("remove"):
                    shutil.rmtree(item["remove"], ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.simulator.guard")
    parser.add_argument("--state", required=True)
    parser.add_argument("--owner", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while os.getppid() == args.owner:
        time.sleep(POLL_S)
    try:
        items = json.loads(Path(args.state).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    cleanup(items)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
