"""CLI habits (issue 11, items 9 and 10): global options before or after the command, as
kubectl and docker users type them; a drill leaves no temp dir behind unless --keep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.cli import build_parser
from tests import tui_data

CONSOLE = [sys.executable, "-m", "console"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONSOLE, *args], capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "A.toml", "status"],
        ["status", "--config", "A.toml"],
        ["status", "staging", "--config", "A.toml", "--json"],
        ["config", "validate", "X.toml", "--config", "A.toml"],
        ["rollback", "quick", "--env", "staging", "--config", "A.toml"],
        ["watch", "--config", "A.toml"],
    ],
)
def test_config_is_accepted_before_or_after_the_command(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).config == "A.toml"


def test_the_last_one_given_wins_and_the_theme_goes_anywhere() -> None:
    args = build_parser().parse_args(["--config", "A.toml", "--theme", "dark", "watch", "--config", "B.toml"])
    assert args.config == "B.toml" and args.theme == "dark"
    assert build_parser().parse_args(["watch", "--theme", "light"]).theme == "light"
    assert build_parser().parse_args(["history"]).config is None


def test_config_after_the_command_really_runs(tmp_path: Path) -> None:
    """`rollback-console history --config FILE` used to be refused (exit 2, unrecognized arguments)."""
    config = tui_data.make_config(root=tmp_path / "fixed")
    after = run("history", "--config", str(config.path))
    before = run("--config", str(config.path), "history")
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout and "r-20261127-183320-a1b2" in after.stdout
    report = run("report", "r-20261127-183320-a1b2", "--config", str(config.path))
    assert report.returncode == 0 and "Incident report" in report.stdout, report.stderr


def _drill(tmp_path: Path, *extra: str) -> tuple[Path, str]:
    """`drill latency --no-console` with its own TMPDIR; ended by SIGTERM once it runs."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k != "ROLLBACK_CONSOLE_CONFIG"},
        "TMPDIR": str(temp),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    proc = subprocess.Popen(
        [*CONSOLE, "drill", "latency", "--no-console", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    out = ""
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while "Ctrl-C (or SIGTERM)" not in out and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out += line
        assert "Ctrl-C (or SIGTERM)" in out, out + (proc.stderr.read() if proc.stderr else "")
        drills = list(temp.glob("rollback-console-drill-*"))
        assert len(drills) == 1 and (drills[0] / "drill.toml").exists()
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return temp, out + rest


@pytest.mark.slow
def test_a_drill_removes_its_temp_dir(tmp_path: Path) -> None:
    temp, out = _drill(tmp_path)
    assert "Drill scorecard" in out
    assert list(temp.iterdir()) == [], "nothing of the drill is left in the temp dir"


@pytest.mark.slow
def test_a_drill_keeps_its_temp_dir_with_keep(tmp_path: Path) -> None:
    temp, _ = _drill(tmp_path, "--keep")
    (kept,) = temp.glob("rollback-console-drill-*")
    assert (kept / "drill.toml").exists()
