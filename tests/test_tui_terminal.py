"""The installed console in a real terminal (tmux), as an operator walks it: demo → quick
rollback on staging → checklist → report → quit; and a watcher in a second terminal.

Asserts on captured screens and on an empty stderr; after quitting, the terminal holds
nothing new, the demo's temp dir is gone and none of its processes is left.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.terminal import Step, Terminal, installed_console, processes_mentioning

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

QUICK_ON_STAGING = [
    Step(expect=r"staging · staging", timeout=90, why="the dashboard"),
    Step(expect=r"probed in", timeout=60, why="a first probe round"),
    Step(("r",), r"Rollback wizard — staging", why="the wizard on staging"),
    Step(expect=r"none is recommended now", why="nothing recommended: nothing pre-selected"),
    Step(("C-n",), r"Choose a rollback first", why="Next without a choice says what to do"),
    Step(("Enter",), r"\(●\) Quick rollback", why="Enter on the list chooses quick"),
    Step(("C-n",), r"-ENABLE_ADVANCED_RECOMMENDATIONS=true", timeout=60, why="the plan's exact edits"),
    Step(("C-n",), r"self-service", why="staging: self-service"),
    Step(("C-n",), r"Run it \(y\)", why="the confirmation"),
    Step(("y",), r"succeeded", timeout=120, why="the run"),
    Step(expect=r"Restart the API .*✓ done \d\d:\d\d:\d\d +\d+\.\d\ds", why="each result whole, with its time"),
    Step(("c",), r"Post-rollback checklist", why="the checklist"),
    Step(("o",), r"incident report written", why="the report written"),
    Step(("Escape",), r"staging · staging", why="back on the dashboard"),
    Step(("h",), r"Rollback history", why="the history"),
    # The title comes at once, the body once read off the event loop: wait for its run id.
    Step(("Enter",), r"Incident report[\s\S]*r-\d{8}-\d{6}-[0-9a-f]{4}", why="Enter opens the run's report"),
]


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_demo_walk_in_a_real_terminal(tmp_path: Path, size: tuple[int, int]) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {"TMPDIR": str(temp), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    console = shlex.quote(str(installed_console()))
    operator = Terminal(tmp_path, f"env -u ROLLBACK_CONSOLE_CONFIG {console} demo --no-db", *size, env=env)
    watcher = None
    try:
        operator.walk(QUICK_ON_STAGING[:2])
        (demo_dir,) = temp.glob("rollback-console-demo-*")

        # A watcher in a second terminal, on the demo's config, read-only.
        config = demo_dir / "console.toml"
        watcher = Terminal(tmp_path, f"{console} watch --config {shlex.quote(str(config))}", *size, env=env)
        watcher.wait_for(r"no rollback recorded yet", 60, "the watcher waits for a run")

        operator.walk(QUICK_ON_STAGING[2:])
        report = operator.screen()
        run_id = re.search(r"r-\d{8}-\d{6}-[0-9a-f]{4}", report)
        assert run_id, report
        # The watcher saw the same run, whole id, with its outcome.
        seen = watcher.wait_for(re.escape(run_id.group()) + r"[\s\S]*succeeded", 60, "the watcher follows the run")
        assert "PASS Health check" in seen
        watcher.keys("q")
        assert watcher.exit_code() == 0 and watcher.errors() == ""

        operator.keys("q")
        assert operator.exit_code(60) == 0
        assert operator.errors() == "", operator.errors()
        after = [line.strip() for line in operator.settled().splitlines() if line.strip()]
        after = [line for line in after if not line.startswith("Pane is dead")]  # tmux's own, when it says it
        # Only what the demo printed before the console opened: nothing after quitting.
        assert [line.split(" ")[0] for line in after] == ["Starting", "Config:"], after
        assert after[0] == f"Starting the simulated analyticbot in {demo_dir} …", after
        assert not demo_dir.exists(), "the demo removes its temp dir"
        assert list(temp.iterdir()) == [], "nor leaves anything else in the temp dir (the guard's state file)"
        # The simulated services (--home DIR/…) and their guard (--state TMPDIR/…) are gone.
        assert processes_mentioning(str(temp)) == [], "nothing of the demo is left running"
    finally:
        operator.close()
        if watcher is not None:
            watcher.close()
