"""Rehearsal drills (DESIGN §3.8), run as a trainee runs them: ``rollback-console drill
SCENARIO --no-console`` in one terminal, the console's commands in another, then Ctrl-C
(SIGTERM) on the drill for the scorecard.

Each drill is a real process starting a real simulation with the scenario's faults; the
trainee's commands are the real CLI; the score comes from the real journal, which lives
where the trainee's own journal would (a private HOME here).
"""

from __future__ import annotations

import json
import os
import pty
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from console.journal import Journal
from console.runbook.drills import SCENARIO_DIR, ScenarioError, load_scenario, scenarios
from console.simulator import postgres
from tests.engine_support import RUN_ID, run_id_in
from tests.phase4 import ALL_OFF

APPROVER = "lead-on-call"  # production needs someone other than the operator
START_TIMEOUT_S = 90.0
CONSOLE = (sys.executable, "-m", "console")
ALL_IDS = {"latency", "memory", "content-type", "stale-env", "code-bug"}


class Drill:
    """`rollback-console drill … --no-console` in its own terminal, and the trainee's commands."""

    def __init__(self, tmp_path: Path, scenario: str | None, extra: Sequence[str] = ()) -> None:
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if k != "ROLLBACK_CONSOLE_CONFIG"}
        # The trainee's own journal (no config anywhere: the default one under HOME).
        self.env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"))
        self.journal_path = self.home / ".local" / "state" / "rollback-console" / "journal.jsonl"
        self.directory = tmp_path / "drill"
        args = [*extra, *([scenario] if scenario else []), "--no-console", "--dir", str(self.directory)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console", "drill", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.printed = ""  # stdout so far
        self.config = Path(self._wait_for(r"^Config: (.+)$").group(1))
        self.started = time.monotonic()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _wait_for(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.printed += line
            found = re.search(pattern, line.rstrip("\n"))
            if found:
                return found
        self.proc.kill()
        _, err = self.proc.communicate()
        raise AssertionError(f"the drill never printed {pattern!r}:\n{self.printed}\n{err}")

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "console", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=self.env,
        )

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args)
        assert result.stdout.strip(), f"exit {result.returncode}: {result.stderr[-3000:]}"
        return json.loads(result.stdout)

    def status(self) -> dict[str, Any]:
        (env,) = self.cli_json("status", "production", "--json")["environments"]
        return env

    def rollback(self, action: str, *extra: str) -> tuple[int, str]:
        result = self.cli("rollback", action, "--env", "production", "--yes", "--approved-by", APPROVER, *extra)
        return result.returncode, result.stdout + result.stderr

    def end(self) -> str:
        """Ctrl-C's twin: SIGTERM ends the drill; returns everything it printed."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        rest = []
        while (line := self.lines.get(timeout=10)) is not None:
            rest.append(line)
        assert self.proc.returncode == 0, (
            self.printed + "".join(rest) + (self.proc.stderr.read() if self.proc.stderr else "")
        )
        self.printed += "".join(rest)
        return self.printed

    def journal(self) -> Journal:
        return Journal(self.journal_path)

    def scored(self) -> dict[str, Any]:
        (card,) = [r["data"] for r in self.journal().records() if r["type"] == "drill_scored"]
        return card

    def close(self) -> None:
        """A test that failed half-way still stops the drill's simulation (SIGTERM does)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


@pytest.fixture
def drill(tmp_path: Path) -> Iterator[Any]:
    started: list[Drill] = []

    def start(scenario: str | None) -> Drill:
        if scenario is None or scenarios()[scenario].database:
            if postgres.available() is not None:
                pytest.skip(f"this drill needs PostgreSQL: {postgres.available()}")
        d = Drill(tmp_path, scenario)
        started.append(d)
        return d

    try:
        yield start
    finally:
        for d in started:
            d.close()


def card_line(text: str, label: str) -> str:
    found = re.search(rf"^  {label}\s+(.*)$", text, re.M)
    assert found, f"no {label!r} line in the scorecard:\n{text}"
    return found.group(1)


def running_flags(env: dict[str, Any]) -> dict[str, bool]:
    """The flags the (only) host's running process has, as `status --json` shows them."""
    return env["hosts"][0]["flags"]["process"]


def check_history(d: Drill, scenario: str, score: int, run_ids: list[str]) -> None:
    """`history --drills` shows the scorecard; the real history shows none of the drill's runs."""
    drills = d.cli("history", "--drills")
    assert drills.returncode == 0
    assert re.search(rf"^\S.*\b{re.escape(scenario)}\b.*\b{score}/100$", drills.stdout, re.M), drills.stdout
    real = d.cli("history", "--json")
    assert real.returncode == 0 and json.loads(real.stdout) == []
    text = d.cli("history")
    assert not RUN_ID.search(text.stdout) and not any(r in text.stdout for r in run_ids)
    # Without any config, `history --drills` finds the same journal (the trainee's default).
    plain = subprocess.run(
        [sys.executable, "-m", "console", "history", "--drills"], capture_output=True, text=True, env=d.env
    )
    assert plain.returncode == 0 and f"{score}/100" in plain.stdout


def test_latency_drill_scored_right_within_target_with_the_checklist(drill: Any) -> None:
    d = drill("latency")
    assert "Latency above 5 seconds" in d.printed and "03:10. The pager" in d.printed
    assert str(d.config).startswith(str(d.directory))

    env = d.status()
    assert env["signals"]["response_time_s"] > 5 and env["recommendation"]["action"] == "quick"

    code, out = d.rollback("quick")
    assert code == 0, out
    run_id = run_id_in(out)
    d.cli("checklist", run_id, "--tick", "dashboards", "--note", "grafana: back to normal")
    d.cli("checklist", run_id, "--tick", "rca", "--note", "RCA booked for Monday")
    assert d.cli("report", run_id, "-o", str(d.directory / "incident.md")).returncode == 0
    env = d.status()
    assert env["signals"]["response_time_s"] < 2 and running_flags(env) == ALL_OFF.as_dict()
    elapsed = time.monotonic() - d.started

    text = d.end()

    assert "Drill scorecard — Latency above 5 seconds" in text
    assert card_line(text, "action") == "RIGHT: expected quick; first chose quick; recovered by quick"
    assert "(runbook target < 1 min: met)" in card_line(text, "recovery")
    assert card_line(text, "checklist") == "8/9 items ticked"  # only the alert channel is left
    assert card_line(text, "score") == "97/100"
    card = d.scored()
    assert card["right_action"] and card["within_target"] and card["recovered_by"] == "quick"
    assert 0 < card["time_to_decision_s"] < card["time_to_recovery_s"] <= elapsed + 1
    assert card_line(text, "decision") == (
        f"{card['time_to_decision_s']:.0f}s from the start of the drill to the right rollback"
    )
    assert card_line(text, "recovery").startswith(f"{card['time_to_recovery_s']:.0f}s to a validated recovery")
    assert card["run_duration_s"] <= 60 and [r["run"] for r in card["runs"]] == [run_id]
    run = d.journal().run(run_id)
    assert run.drill and run.outcome == "succeeded"
    started = [r for r in d.journal().records() if r["type"] == "drill_started"]
    assert [r["data"]["scenario"] for r in started] == ["latency"] and started[0]["data"]["secret"] is False
    check_history(d, "latency", 97, [run_id])


def test_memory_drill_recommends_partial_time_weighting_and_it_cures_the_growth(drill: Any) -> None:
    d = drill("memory")

    # The memory climbs (over about two seconds): the trainee watches it pass the threshold.
    deadline = time.monotonic() + 20
    while (env := d.status())["signals"]["memory_mb"] <= 400 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert env["signals"]["memory_mb"] > 400  # the drill's threshold, not the runbook's 2 GB
    assert env["recommendation"]["action"] == "partial-time-weighting"

    code, out = d.rollback("partial-time-weighting")
    assert code == 0, out
    env = d.status()
    assert env["signals"]["memory_mb"] < 200
    assert running_flags(env) == {"advanced": True, "time_weighting": False, "content_type": True}

    text = d.end()

    assert card_line(text, "action") == (
        "RIGHT: expected partial-time-weighting; first chose partial-time-weighting; "
        "recovered by partial-time-weighting"
    )
    assert "(runbook target < 2 min: met)" in card_line(text, "recovery")
    assert card_line(text, "checklist") == "5/9 items ticked"  # what the console checks by itself
    assert card_line(text, "score") == f"{40 + 30 + round(30 * 5 / 9)}/100"


def test_content_type_drill_partial_b_fails_validation_and_quick_recovers(drill: Any) -> None:
    d = drill("content-type")

    env = d.status()
    assert env["signals"]["error_rate"] > 0.05 and env["recommendation"]["action"] == "quick"

    # The trainee suspects content-type and tries partial rollback B first.
    code, out = d.rollback("partial-content-type")
    assert code == 1 and "FAIL  Test recommendations" in out, out
    first = run_id_in(out)
    code, out = d.rollback("quick")
    assert code == 0, out
    second = run_id_in(out)
    assert running_flags(d.status()) == ALL_OFF.as_dict()

    text = d.end()

    assert card_line(text, "action") == "RIGHT: expected quick; first chose partial-content-type; recovered by quick"
    card = d.scored()
    assert [(r["run"], r["action"], r["outcome"]) for r in card["runs"]] == [
        (first, "partial-content-type", "failed"),
        (second, "quick", "succeeded"),
    ]
    assert card["first_action"] == "partial-content-type" and card["within_target"]
    # The decision is timed to the right rollback, after the detour.
    first_started = d.journal().run(first).started_at
    assert first_started is not None
    assert card["time_to_decision_s"] > first_started.timestamp() - card["started_at"]
    check_history(d, "content-type", card["score"], [first, second])


def run_in_terminal(command: list[str], env: dict[str, str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run ``command`` on a pseudo-terminal, typing each answer when its prompt shows."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out, searched = b"", 0
    pending = list(answers)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other side closed
                    chunk = b""
                if not chunk:
                    break
                out += chunk
                if pending and pending[0][0].encode() in out[searched:]:
                    os.write(master, pending.pop(0)[1].encode() + b"\n")
                    searched = len(out)
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(f"no end within 120 s:\n{out.decode(errors='replace')}")
        proc.wait(30)
    finally:
        os.close(master)
    return proc.returncode, out.decode(errors="replace").replace("\r\n", "\n")


def test_stale_env_drill_quick_fails_with_troubleshooting_1_and_the_fix_recovers(drill: Any) -> None:
    d = drill("stale-env")

    # At a terminal, as the trainee would: confirm, then take the known fix when offered.
    code, out = run_in_terminal(
        [*CONSOLE, "--config", str(d.config), "rollback", "quick", "--env", "production", "--approved-by", APPROVER],
        d.env,
        [("Run this on production? [y/N]", "y"), ("What now? [r]etry, [f]ix,", "f")],
    )

    assert code == 0, out
    assert "the restart left the stale environment" in out
    assert "Issue 1: Environment changes not taking effect" in out
    assert "known fix (Issue 1: Environment changes not taking effect): Force a fresh start" in out
    assert re.search(r"run r-\S+: succeeded", out), out
    # The symptom was there, and the rollback did not wait it out: the record says the
    # service was too slow to answer the "before" probes within 2 s.
    run = d.journal().run(run_id_in(out))
    started = next(r["data"] for r in run.records if r["type"] == "run_started")
    assert run.recommendation is None
    assert any("probe slower than 2s" in note for note in started["evidence"]), started["evidence"]
    env = d.status()
    assert running_flags(env) == ALL_OFF.as_dict() and not env["hosts"][0]["flags"]["stale_process"]
    assert env["signals"]["response_time_s"] < 2

    text = d.end()

    assert card_line(text, "action") == "RIGHT: expected quick; first chose quick; recovered by quick"
    assert card_line(text, "fixes") == "1 runbook fix applied during the runs"
    assert d.scored()["fixes_applied"] == 1 and d.scored()["within_target"]


@pytest.mark.postgres
def test_code_bug_drill_needs_the_full_rollback_with_the_database(drill: Any) -> None:
    d = drill("code-bug")
    env = d.status()
    assert env["database"]["columns"] == {"has_video": True, "has_media": True}

    code, out = d.rollback("full", "--confirm-destructive", "production")
    assert code == 0, out
    assert "PASS  Error rate: 0 ERROR lines" in out and "PASS  Test recommendations" in out
    env = d.status()
    assert env["database"]["columns"] == {"has_video": False, "has_media": False}

    text = d.end()

    assert card_line(text, "action") == "RIGHT: expected full; first chose full; recovered by full"
    assert "(runbook target < 10 min: met)" in card_line(text, "recovery")


def test_random_drill_keeps_the_scenario_secret_and_an_idle_trainee_scores_low(drill: Any) -> None:
    d = drill(None)
    shown = d.printed + (d.proc.stderr.readline() if d.proc.stderr else "")
    assert "DRILL — incident" in shown and "(scenario kept secret)" in shown
    for s in scenarios().values():
        assert s.title not in shown and f"'{s.id}'" not in shown and f"scenario {s.id}" not in shown
    (started,) = [r["data"] for r in d.journal().records() if r["type"] == "drill_started"]
    assert started["secret"] is True and started["scenario"] in ALL_IDS
    picked = scenarios()[started["scenario"]]
    assert " ".join(picked.briefing.split()) in " ".join(shown.split())  # filled to the terminal's width

    text = d.end()  # the trainee did nothing

    assert f"Drill scorecard — {picked.title}" in text
    assert card_line(text, "action") == (
        f"WRONG: expected {picked.expected_action}; first chose nothing; recovered by nothing"
    )
    assert card_line(text, "recovery") == f"none: not recovered (runbook target {picked.target})"
    assert card_line(text, "score") == "0/100"


def test_another_drills_scorecard_in_the_shared_journal_is_not_taken_for_this_ones(drill: Any, tmp_path: Path) -> None:
    """Drills share the operator's journal: a scorecard another drill wrote moments ago
    (another terminal, or the drill just before) must not stop this one printing its own."""
    journal = Journal(tmp_path / "home" / ".local" / "state" / "rollback-console" / "journal.jsonl")
    journal.path.parent.mkdir(parents=True)
    other = {"scenario": "memory", "started_at": time.time(), "score": 90}
    journal.append("drill_scored", env="production", data=other)
    d = drill("latency")
    text = d.end()
    assert "Drill scorecard — Latency above 5 seconds" in text, text
    cards = [r["data"] for r in d.journal().records() if r["type"] == "drill_scored"]
    assert [c["scenario"] for c in cards] == ["memory", "latency"]


async def test_an_earlier_drills_rollback_is_not_this_drills_standing(drill: Any) -> None:
    """Drills share the trainee's journal. The next drill's production panel said "ROLLED
    BACK by run …" (R: restore) of the drill before, on a simulation long gone."""
    from console.config import load_config
    from screens.app import RollbackConsole

    first = drill("latency")
    code, out = first.rollback("quick")
    assert code == 0, out
    earlier = run_id_in(out)
    assert f"ROLLED BACK by run {earlier}" in first.cli("status", "production").stdout, "this drill's own: shown"
    first.end()

    second = drill("latency")  # the same --dir and config path, the same journal
    shown = second.cli("status", "production").stdout
    assert earlier not in shown and "ROLLED BACK" not in shown and "journal " not in shown, shown
    app = RollbackConsole(load_config(second.config))
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 60
        while app.live["production"].snapshot is None or app._standing.first:
            assert time.monotonic() < deadline, "no probe round or journal look within 60 s"
            await pilot.pause(0.1)
        await pilot.pause()
        panel = " ".join(str(w.render()) for w in app.screen.query(".standing"))
        assert earlier not in panel and "ROLLED BACK" not in panel and "IN EFFECT" not in panel, panel
        await pilot.press("c")  # the checklist of this drill's rollback: there is none yet
        await pilot.pause(0.3)
        assert app.screen.__class__.__name__ == "DashboardScreen", "not the earlier drill's checklist"
    second.end()


def test_a_drill_config_no_drill_started_record_names_still_counts_its_own_runs(drill: Any) -> None:
    """Without its drill_started record (here: a copy of the drill's config, which no record
    names) `status` said nothing was in effect right after a rollback on that very config.
    The config's own age bounds the drill's runs instead: none on it can be older."""
    d = drill("latency")
    original = d.config
    d.config = original.with_name("copy.toml")
    d.config.write_bytes(original.read_bytes())
    try:
        code, out = d.rollback("quick")
        assert code == 0, out
        shown = d.cli("status", "production").stdout
        assert f"ROLLED BACK by run {run_id_in(out)}" in shown, shown
    finally:
        d.config = original
    d.end()


def test_every_scenario_file_loads_and_a_malformed_one_names_the_file_and_key(tmp_path: Path) -> None:
    known = scenarios(SCENARIO_DIR)
    assert set(known) == ALL_IDS and len(list(SCENARIO_DIR.glob("*.toml"))) == len(ALL_IDS)
    # Every shipped profile's scenarios: Phase 4's files and the ones another profile writes in.
    shipped = scenarios()
    assert set(shipped) == ALL_IDS | {"embedding-memory"}
    assert shipped["embedding-memory"].profile is not None and shipped["latency"].profile is None
    for s in known.values():
        assert s.briefing and s.expected_action in s.accept and s.target_s > 0 and s.faults
        # The file's hard line breaks are joined: a screen wraps the prose at its own width.
        assert all("\n" not in p for p in s.briefing.split("\n\n")), s.briefing
        assert all(f.environment in s.environments for f in s.faults) and s.environment in s.environments
    assert known["code-bug"].database and not known["latency"].database

    good = (SCENARIO_DIR / "latency.toml").read_text(encoding="utf-8")
    cases = {
        "no-target.toml": (good.replace("target_s = 60\n", ""), "[drill]: missing key `target_s`"),
        "bad-fault.toml": (good.replace("latency_s = 6.5", "latency = 6.5"), "[[faults]] #1: unknown key(s) latency"),
        "bad-action.toml": (good.replace('expected_action = "quick"', 'expected_action = "reboot"'), "'reboot'"),
        "bad-toml.toml": (good.replace("[drill]", "[drill"), "line 2"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ScenarioError) as err:
            load_scenario(path)
        assert str(path) in str(err.value) and expected in str(err.value), str(err.value)

    # From the command line: exit 2, the file and the key named, nothing started.
    result = subprocess.run(
        [*CONSOLE, "drill", str(tmp_path / "no-target.toml"), "--no-console", "--dir", str(tmp_path / "never")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert f"{tmp_path / 'no-target.toml'} [drill]: missing key `target_s`" in result.stderr
    assert not (tmp_path / "never").exists()
    listed = subprocess.run(
        [sys.executable, "-m", "console", "drill", "--list"], capture_output=True, text=True, timeout=60
    )
    ids = {line.split()[0] for line in listed.stdout.splitlines()}
    assert listed.returncode == 0 and ids == ALL_IDS | {"embedding-memory"}
    assert "[profile searchd-semantic]" in next(x for x in listed.stdout.splitlines() if x.startswith("embedding"))
    assert "(needs PostgreSQL)" in next(line for line in listed.stdout.splitlines() if line.startswith("code-bug"))


def test_reflow_joins_a_paragraphs_lines_and_keeps_paragraphs_and_list_items() -> None:
    from console.safe_text import reflow

    text = "\nSlow again. This host\nruns a quirky manager.\n\nDo this:\n- restart it\n  properly\n1. then check\n"
    want = "Slow again. This host runs a quirky manager.\n\nDo this:\n- restart it properly\n1. then check"
    assert reflow(text) == want


UNCURED = """
[drill]
id = "memory-advanced"
title = "Memory grows with the advanced query"
briefing = "Memory climbs since the Phase 4 deploy."
environment = "production"
expected_action = "quick"
accept = ["quick"]
target = "< 2 min"
target_s = 120

[[faults]]
environment = "production"
memory_mb = 300
caused_by = "advanced"
"""


def test_a_run_that_passes_its_validations_but_leaves_the_cause_on_is_not_a_recovery(tmp_path: Path) -> None:
    """The five validations do not look at memory: partial rollback A passes them while the
    advanced query (this drill's cause) keeps the memory up. The scorecard said "recovered by
    partial-time-weighting … runbook target: met" over an incident still going on."""
    scenario = tmp_path / "memory-advanced.toml"
    scenario.write_text(UNCURED)
    d = Drill(tmp_path, str(scenario))
    try:
        code, out = d.rollback("partial-time-weighting")
        assert code == 0, out
        deadline = time.monotonic() + 20  # the restarted process's memory climbs again
        while (env := d.status())["signals"]["memory_mb"] <= 250 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert running_flags(env)["advanced"] and env["signals"]["memory_mb"] > 250, "the cause is still on"
        text = d.end()
    finally:
        d.close()
    assert card_line(text, "action").endswith("first chose partial-time-weighting; recovered by nothing"), text
    assert card_line(text, "recovery") == (
        "none: not recovered (runbook target < 2 min); partial-time-weighting passed its validations "
        "but left the fault's cause on"
    ), text
    assert d.scored()["recovered_by"] is None


def test_a_rollback_the_drill_does_not_expect_but_that_turns_the_cause_off_is_a_recovery(tmp_path: Path) -> None:
    """Quick for the memory drill: not the runbook's answer (partial A), but it turns
    time-weighting off with everything else, and the memory falls."""
    d = Drill(tmp_path, "memory")
    try:
        code, out = d.rollback("quick")
        assert code == 0, out
        text = d.end()
    finally:
        d.close()
    assert card_line(text, "action") == "WRONG: expected partial-time-weighting; first chose quick; recovered by quick"
    assert "(runbook target < 2 min: met)" in card_line(text, "recovery")
