"""The crash matrix: the real CLI is killed (SIGKILL) at every crash point of every action,
then resumed, checked, restored, or — in a fresh trial — undone; every cell must hold.

The crash points are not listed here: they come from the failpoint registry, which derives
them from each action's plan (console.engine.plan.plan_points), and each action's
uninterrupted run is traced to prove it reaches exactly those points. A new step is
covered without anyone touching this file.

For each point:
- resume: `resume RUN` finishes the run as an uninterrupted run would have left things
  (env files byte for byte, code tree, build, running flags, database);
- check: `check ENV` agrees with the uninterrupted run;
- restore: `restore --run RUN` afterwards gives the original bytes, code and database back;
- undo: in a fresh trial, `undo RUN` gives the original state back exactly (env file bytes,
  HEAD, database schema, indexes and values), and says "nothing to undo" exactly when
  nothing had changed.
Then `history --verify` holds for every journal.

Each action has its own simulation, reset between trials; two actions run at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from console.config import load_config
from console.engine.plan import plan_points
from console.engine.session import Engine
from console.plans import PLANS, build_plan
from console.simulator.world import Simulation
from tests.crash_support import (
    Cell,
    Outcome,
    Scenario,
    baseline,
    db_snapshot,
    last_run_id,
    resume_trial,
    undo_trial,
    verify_journal,
)
from tests.engine_support import MakeSimulation, cli, journal_of, ssh_target
from tests.fixtures_ssh import SSHServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.ssh]

# Trials mostly wait on real processes (restarts, health checks): three at a time keep two cores busy.
WORKERS = int(os.environ.get("CRASH_MATRIX_WORKERS", "3"))
OUTCOMES = ("resume", "check", "restore", "undo")


def action_plan(action: str) -> Callable[[Scenario], object]:
    def plan(sc: Scenario) -> object:
        config = load_config(sc.sim.config_path)
        return build_plan(action, config.environment(sc.env), config, {})

    return plan


def restore_plan(sc: Scenario) -> object:
    import asyncio

    config = load_config(sc.sim.config_path)
    engine = Engine(config, plans=PLANS)
    try:
        return engine.restore_plan(config.environment(sc.env), journal_of(sc.sim).run(sc.baseline["restored"]))
    finally:
        asyncio.run(engine.close())


def prepare_full(sc: Scenario) -> tuple[str, ...]:
    """The restore's starting point: a full rollback that went through."""
    full = cli(sc.sim.config_path, "rollback", "full", "--env", sc.env, "--yes")
    assert full.returncode == 0, full.stdout + full.stderr
    run_id = last_run_id(journal_of(sc.sim))
    sc.baseline["restored"] = run_id
    return ("restore", "--env", sc.env, "--run", run_id, "--yes")


def rollback(action: str, env: str = "staging") -> tuple[str, ...]:
    return ("rollback", action, "--env", env, "--yes")


def scenarios(make_simulation: MakeSimulation, sshd: SSHServer) -> list[Scenario]:
    def sim(**kw: object) -> Simulation:
        return make_simulation(**kw)

    quick, time_weighting, content_type = sim(), sim(), sim()
    code = sim()
    database = sim(database=True)
    full = [sim(database=True), sim(database=True)]  # the longest two: each on two simulations
    restore = [sim(database=True), sim(database=True)]
    fleet = sim(hosts=3)
    over_ssh = sim(ssh=ssh_target(sshd))
    out = [
        *(
            Scenario(f"full ({k + 1}/2)", full[k], "staging", rollback("full"), action_plan("full"), shard=(k, 2))
            for k in range(2)
        ),
        *(
            Scenario(
                f"restore of a full rollback ({k + 1}/2)",
                restore[k],
                "staging",
                (),
                restore_plan,
                prepare=prepare_full,
                shard=(k, 2),
            )
            for k in range(2)
        ),
        Scenario("quick over SSH", over_ssh, "staging", rollback("quick"), action_plan("quick")),
        Scenario("code", code, "staging", rollback("code"), action_plan("code")),
        Scenario("database", database, "staging", rollback("database"), action_plan("database")),
        Scenario("quick, fleet of 3 hosts", fleet, "staging", rollback("quick"), action_plan("quick")),
        Scenario("quick", quick, "staging", rollback("quick"), action_plan("quick")),
        Scenario(
            "partial-time-weighting",
            time_weighting,
            "staging",
            rollback("partial-time-weighting"),
            action_plan("partial-time-weighting"),
        ),
        Scenario(
            "partial-content-type",
            content_type,
            "staging",
            rollback("partial-content-type"),
            action_plan("partial-content-type"),
        ),
    ]
    only = os.environ.get("CRASH_MATRIX_ONLY")  # while working on one action: its name's start
    out = [sc for sc in out if not only or sc.name.startswith(only)]
    for sc in out:
        if sc.name == "database":
            # A database rollback starts with the flags already off (the quick rollback first).
            quick = cli(sc.sim.config_path, *rollback("quick"))
            assert quick.returncode == 0, quick.stdout + quick.stderr
        if sc.sim.has_database:
            import asyncio

            sc.snap = asyncio.run(db_snapshot(sc.sim.dsn(sc.env) or ""))
        sc.base = sc.capture()
    return out


def run_scenario(sc: Scenario, trace: Path) -> list[str]:
    """Every crash point of one action; returns problems outside the matrix's cells."""
    started = time.monotonic()
    problems = baseline(sc, trace)
    k, n = sc.shard
    for point in plan_points(sc.plan(sc))[k::n]:
        row = Outcome(point)
        resume_trial(sc, row)
        undo_trial(sc, row)
        sc.rows.append(row)
    journal = verify_journal(sc)
    if not journal.ok:
        problems.append(str(journal))
    sc.elapsed_s = time.monotonic() - started
    return problems


def matrix_text(done: list[Scenario], elapsed_s: float) -> str:
    cells = sum(len(sc.rows) for sc in done) * len(OUTCOMES)
    points = sum(len(sc.rows) for sc in done)
    lines = [f"crash matrix: {points} crash points × {len(OUTCOMES)} outcomes = {cells} cells in {elapsed_s:.0f}s"]
    for sc in done:
        spent = ", ".join(f"{k} {v:.0f}s" for k, v in sorted(sc.spent.items(), key=lambda kv: -kv[1]))
        lines.append(f"\n{sc.name} ({len(sc.rows)} points, {sc.elapsed_s:.0f}s: {spent}):")
        lines.append(f"  {'crash point':<32} " + " ".join(f"{o:<8}" for o in OUTCOMES))
        for row in sc.rows:
            marks = " ".join(f"{'ok' if row.cells.get(o, Cell(False, 'not run')).ok else 'FAIL':<8}" for o in OUTCOMES)
            lines.append(f"  {row.point:<32} {marks}")
            for o in OUTCOMES:
                cell = row.cells.get(o, Cell(False, "not run"))
                if not cell.ok:
                    lines.append(f"      {o}: {cell.text}")
    return "\n".join(lines)


def test_every_crash_point_of_every_action_resumes_undoes_and_restores_exactly(
    make_simulation: MakeSimulation, sshd: SSHServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    all_scenarios = scenarios(make_simulation, sshd)

    def run_one(sc: Scenario) -> list[str]:
        return [f"{sc.name}: {p}" for p in run_scenario(sc, tmp_path / f"trace-{id(sc)}")]

    with ThreadPoolExecutor(WORKERS) as pool:  # longest first: they set the wall time
        problems = [p for found in pool.map(run_one, all_scenarios) for p in found]
    text = matrix_text(all_scenarios, time.monotonic() - started)
    with capsys.disabled():
        print("\n" + text)
    assert not problems, "\n".join(problems)
    assert all(row.ok for sc in all_scenarios for row in sc.rows), text
