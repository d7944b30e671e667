"""The installed console in a real terminal (tmux), as an operator walks it: demo → quick
rollback on staging → checklist → report → quit; and a watcher in a second terminal; a
production request left waiting on the dashboard, then withdrawn.

Asserts on captured screens and on an empty stderr; after quitting, the terminal holds
nothing new, the demo's temp dir is gone and none of its processes is left.
"""

from __future__ import annotations

import re
import shlex
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from console.journal import Journal
from tests.engine_support import cli
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
    # Its rows are read off the event loop: Enter before the row is there opens nothing.
    Step(("h",), r"Rollback history[\s\S]*r-\d{8}-\d{6}-[0-9a-f]{4}", why="the history, with the run's row"),
    # The title comes at once, the body once read off the event loop: wait for its run id.
    Step(("Enter",), r"Incident report[\s\S]*r-\d{8}-\d{6}-[0-9a-f]{4}", why="Enter opens the run's report"),
]


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_demo_walk_in_a_real_terminal(tmp_path: Path, size: tuple[int, int]) -> None:
    # A TMPDIR as short as a user's /tmp: under pytest-xdist the env file's path in the plan
    # wrapped to three lines at 80 columns and pushed the edits below the fold.
    temp = Path(tempfile.mkdtemp(prefix="rc-walk-"))
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
        shutil.rmtree(temp, ignore_errors=True)


# The requester's walk: a production request, left waiting on the dashboard, then withdrawn.
REQUEST_ON_PRODUCTION = [
    Step(expect=r"staging · staging", timeout=90, why="the dashboard"),
    Step(expect=r"probed in", timeout=60, why="a first probe round"),
    Step(("Down",), r"▶ production · production", why="the production panel selected"),
    Step(("r",), r"Rollback wizard — production", why="the wizard on production"),
    Step(("C-n",), r"Choose a rollback first", why="Next without a choice says what to do"),
    Step(("Enter",), r"\(●\) Quick rollback", why="Enter on the list chooses quick"),
    Step(("C-n",), r"1\. Edit the env file", timeout=60, why="the plan"),
    # The pytest temp dir's long paths wrap: the edits can be below the fold at 80x24.
    Step(("PageDown",), r"-ENABLE_ADVANCED_RECOMMENDATIONS=true", why="PgDn reads on to the plan's exact edits"),
    Step(("C-n",), r"Request approval: a second person approves it later", why="production: approval needed"),
    Step(("BTab", "Down", "Enter"), r"\(●\) Request approval", why="request approval chosen with keys"),
    Step(("C-n",), r"once a second person approves it", why="the confirmation says what it asks"),
    Step(expect=r"Request approval \(y\)", why="the button asks for approval, not to run"),
    Step(("y",), r"waiting for approval", timeout=60, why="the request is made"),
    Step(expect=r"nothing has run yet", why="the wait says at once what it waits for"),
    Step(expect=r"lapses in \d\d:\d\d \(at \d\d:\d\d:\d\d UTC\)", why="and how long"),
]
RUN_ID_RE = r"r-\d{8}-\d{6}-[0-9a-f]{4}"


def test_production_request_then_withdraw_in_a_real_terminal(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {"TMPDIR": str(temp), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    console = shlex.quote(str(installed_console()))
    operator = Terminal(tmp_path, f"env -u ROLLBACK_CONSOLE_CONFIG {console} demo --no-db", 80, 24, env=env)
    watcher = None
    try:
        operator.walk(REQUEST_ON_PRODUCTION[:2])
        (demo_dir,) = temp.glob("rollback-console-demo-*")
        config = demo_dir / "console.toml"
        watcher = Terminal(tmp_path, f"{console} watch --config {shlex.quote(str(config))}", 80, 24, env=env)
        watcher.wait_for(r"no rollback recorded yet", 60, "the watcher waits for a run")

        operator.walk(REQUEST_ON_PRODUCTION[2:])
        found = re.search(RUN_ID_RE, operator.screen())
        assert found, operator.screen()
        run_id = found.group()
        # The approve command whole at 80 columns, on the run screen and then on the dashboard.
        operator.wait_for(rf"rollback-console approve {run_id}\s", why="the approve command, whole")
        seen = watcher.wait_for(re.escape(run_id) + r"[\s\S]*waiting for approval", 60, "the watcher sees it")
        assert "PASS" not in seen, "a pending request has passed nothing"

        # The requester leaves: the request stays on the dashboard with its run id and command.
        operator.walk([Step(("Escape",), r"APPROVAL PENDING", why="pending on the dashboard")])
        operator.wait_for(rf"rollback-console approve {run_id}\s", why="the dashboard's approve command, whole")
        # An approver's CLI lists it; the requester cannot approve their own request.
        listed = cli(config, "requests")
        assert listed.returncode == 0 and f"request {run_id}" in listed.stdout, listed.stdout + listed.stderr
        own = cli(config, "approve", run_id, "--yes")
        assert own.returncode == 2, own.stdout + own.stderr
        assert not [r for r in Journal(demo_dir / "journal.jsonl").records() if r["type"] == "run_approved"]

        # Back to the run screen (w), d withdraws, after a question.
        operator.walk(
            [
                Step(("w",), r"d withdraws it", why="w brings the waiting run screen back"),
                Step(("d",), r"Withdraw the request\?", why="withdrawing asks first"),
                Step(("y",), r"withdrawn by \S+: nothing was changed", why="withdrawn, nothing changed"),
            ]
        )
        watcher.wait_for(re.escape(run_id) + r"[\s\S]*withdrawn", 60, "the watcher sees the withdrawal")
        refused = cli(config, "approve", run_id, "--yes")
        assert refused.returncode == 2 and "withdrawn" in refused.stderr, refused.stdout + refused.stderr
        assert cli(config, "requests").stdout.strip() == "No production request is waiting."
        kinds = [r["type"] for r in Journal(demo_dir / "journal.jsonl").run(run_id).records]
        assert kinds.count("run_withdrawn") == 1 and "run_started" not in kinds, kinds

        operator.walk([Step(("Escape",), r"▶ production · production", why="back on the dashboard")])
        deadline = time.monotonic() + 30  # the dashboard drops the pending line (hang guard only)
        while "APPROVAL PENDING" in operator.screen() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "APPROVAL PENDING" not in operator.screen(), operator.screen()
        operator.walk([Step(("h",), r"Rollback history", why="the history"), Step(expect=r"withdrawn")])
        assert "awaiting approval" not in operator.screen()

        watcher.keys("q")
        assert watcher.exit_code() == 0 and watcher.errors() == ""
        operator.keys("q")
        assert operator.exit_code(60) == 0
        assert operator.errors() == "", operator.errors()
        assert not demo_dir.exists(), "the demo removes its temp dir"
        assert processes_mentioning(str(temp)) == [], "nothing of the demo is left running"
    finally:
        operator.close()
        if watcher is not None:
            watcher.close()
