"""The full code rollback against the simulator's git checkout: find the Phase 4 commit,
`git revert` it, rebuild, restart, validate; undo puts HEAD back exactly; `reset --hard` only
behind an explicit confirmation, and only when it really drops Phase 4."""

from __future__ import annotations

import json

from console.simulator.repo import PHASE4_MESSAGE, git, phase4_commit
from tests.engine_support import (
    MakeSimulation,
    cli,
    env_file_flags,
    journal_of,
    log_flags,
    process_flags,
    records,
    run_id_in,
)
from tests.phase4 import ALL_OFF, ALL_ON


def head_subject(repo) -> str:
    return git(repo, "log", "-1", "--format=%s").strip()


def built_with_phase4(home) -> bool:
    return json.loads((home / "build" / "build.json").read_text())["phase4"]


def test_code_rollback_reverts_phase4_then_undo_reapplies_it(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    phase4 = phase4_commit(host.repo)
    head = git(host.repo, "rev-parse", "HEAD").strip()
    env_bytes = host.env_file.read_bytes()

    result = cli(sim.config_path, "rollback", "code", "--env", "staging", "--yes", "--reason", "bad recommendations")

    assert result.returncode == 0, result.stdout + result.stderr
    assert head_subject(host.repo) == f'Revert "{PHASE4_MESSAGE}"'
    assert not (host.repo / "app" / "config" / "feature_flags.py").exists()
    assert git(host.repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert not built_with_phase4(host.home)
    # What the simulator does after a code revert: the log says all False (legacy query)
    # while the env file and the process environment still say true — and that passes.
    assert host.env_file.read_bytes() == env_bytes
    assert env_file_flags(host) == ALL_ON and process_flags(host) == ALL_ON
    assert log_flags(host) == ALL_OFF
    run = journal_of(sim).run(run_id_in(result.stdout))
    assert run.outcome == "succeeded"
    (found,) = records(run, "step_finished", "find-commit")
    assert found["data"]["facts"]["commit"] == phase4
    (validation,) = records(run, "validation")
    flags_check = next(c for c in validation["data"]["checks"] if c["check"] == "flags")
    assert flags_check["passed"] and "ignores the env file's flags" in flags_check["detail"]

    undo = cli(sim.config_path, "undo", run.run_id, "--yes")

    assert undo.returncode == 0, undo.stdout + undo.stderr
    # Our revert was still the tip: HEAD (and so the tree) is exactly what it was.
    assert git(host.repo, "rev-parse", "HEAD").strip() == head
    assert git(host.repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert (host.repo / "app" / "config" / "feature_flags.py").exists()
    assert built_with_phase4(host.home)
    assert log_flags(host) == ALL_ON
    assert journal_of(sim).run(run.run_id).outcome == "undone"


def test_reset_hard_needs_confirmation_and_refuses_when_head_is_not_phase4(make_simulation: MakeSimulation) -> None:
    sim = make_simulation()
    host = sim.host("staging")
    head = git(host.repo, "rev-parse", "HEAD").strip()

    unconfirmed = cli(sim.config_path, "rollback", "code", "--env", "staging", "--reset-hard", "--yes")
    assert unconfirmed.returncode == 2
    assert "destructive step needs explicit confirmation: nothing was changed" in unconfirmed.stderr
    assert journal_of(sim).runs() == []

    # HEAD is "Release 7.5.0": HEAD~1 would drop the release and keep Phase 4.
    wrong = cli(
        sim.config_path, "rollback", "code", "--env", "staging", "--reset-hard", "--confirm-destructive", "staging",
        "--yes",
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "not the release commit" in wrong.stdout
    assert git(host.repo, "rev-parse", "HEAD").strip() == head

    # When Phase 4 is the last commit, the runbook's `reset --hard HEAD~1` is what it means.
    git(host.repo, "reset", "-q", "--hard", phase4_commit(host.repo) or "")
    right = cli(
        sim.config_path, "rollback", "code", "--env", "staging", "--reset-hard", "--confirm-destructive", "staging",
        "--yes",
    )  # fmt: skip
    assert right.returncode == 0, right.stdout + right.stderr
    assert head_subject(host.repo).startswith("Migration 005")
    assert not built_with_phase4(host.home) and log_flags(host) == ALL_OFF
