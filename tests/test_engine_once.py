"""What both faces share lives in the engine once: the run object (frozen), the report file,
the drill's scorecard. Tested through what each does, against real files and the simulator."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from console.config import load_config
from console.engine.reports import ReportError, default_path, write_report
from console.engine.run import RunRequest
from console.engine.session import Engine, RunRefused
from console.journal import Journal
from console.plans import PLANS
from console.runbook.drills import finish_drill, pick
from tests import tui_data
from tests.engine_support import MakeSimulation, cli, run_id_in


def test_a_run_request_is_frozen() -> None:
    request = RunRequest("staging", "quick", reason="p95 6s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.reason = "changed behind the face's back"  # type: ignore[misc]
    assert dataclasses.replace(request, approved_by="bob").approved_by == "bob" and request.approved_by is None


async def test_preparing_a_restore_names_its_run_without_changing_the_request(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    rolled = cli(sim.config_path, "rollback", "quick", "--env", "staging", "--yes", "--reason", "p95 6s")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    rollback = run_id_in(rolled.stdout)
    engine = Engine(load_config(sim.config_path), plans=PLANS)
    try:
        asked = RunRequest("staging", "restore")
        run = await engine.prepare(asked)
        assert asked.restores is None and asked.reason == "", "the request as asked is untouched"
        assert run.request.restores == rollback and run.request.reason == f"restore of {rollback} (p95 6s)"
        assert run.preview is not None and run.confirmed is None and run.authorization is None
        confirmed = run.confirm()
        assert confirmed.confirmed is not None and confirmed.confirmed.digest == run.preview.digest()
        assert run.confirmed is None, "each stage is a new run object"
        with pytest.raises(RunRefused, match="was on staging, not production"):
            await engine.prepare(RunRequest("production", "restore", restores=rollback))
    finally:
        await engine.close()


def test_the_incident_report_is_written_one_way_for_both_faces(tmp_path: Path) -> None:
    config = tui_data.make_config(root=tmp_path / "fixed")
    journal = Journal(config.journal_path, who=tui_data.WHO)
    run_id = "r-20261127-183320-a1b2"
    # The console's o: beside the journal, where every operator of the bastion finds it.
    path = write_report(config, journal, run_id)
    assert path == default_path(config, run_id) == config.journal_path.parent / "reports" / f"{run_id}.md"
    assert path.read_text().startswith("# Incident report: Quick rollback")
    # The CLI's -o FILE: the same report, the same record, the checklist ticked.
    out = cli(config.path, "report", run_id, "-o", str(tmp_path / "r.md"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r.md").read_text().splitlines()[0] == path.read_text().splitlines()[0]
    written = [r for r in Journal(config.journal_path).records() if r["type"] == "report_written"]
    assert [r["data"]["path"] for r in written] == [str(path), os.path.abspath(tmp_path / "r.md")]
    run = Journal(config.journal_path).run(run_id)
    ticks = [r["data"] for r in run.records if r["type"] == "checklist" and r["data"]["item"] == "incident_report"]
    assert ticks[-1]["ticked"] is True
    # Never into a named pipe: refused, nothing written, nothing journaled.
    fifo = tmp_path / "fifo.md"
    os.mkfifo(fifo)
    with pytest.raises(ReportError, match="not a regular file"):
        write_report(config, journal, run_id, fifo)
    assert len([r for r in Journal(config.journal_path).records() if r["type"] == "report_written"]) == 2


def test_a_drill_is_scored_once_whichever_face_ends_it(tmp_path: Path) -> None:
    config = tui_data.make_config(root=tmp_path / "fixed")
    journal = Journal(config.journal_path, who=tui_data.WHO)
    scenario = pick("latency")
    card = finish_drill(scenario, journal, 0.0, 10.0, config)
    assert card is not None and card.scenario == "latency"
    # The command that opened the console ends the drill too: it finds the card, scores nothing again.
    assert finish_drill(scenario, journal, 0.0, 20.0, config) is None
    assert [r["type"] for r in journal.records()].count("drill_scored") == 1
    # A later drill is a drill of its own.
    assert finish_drill(scenario, journal, 100.0, 110.0, config) is not None
