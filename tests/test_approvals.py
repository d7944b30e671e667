"""Production approvals as a flow, against the real simulator: the command that waits says so
at once and for how long; the requester withdraws; a second person approves or rejects (never
the requester); a request nobody started lapses and that is journaled once; an approved request
runs only when its requester starts it, and only the plan that was confirmed and approved.

The second person is an Engine with another ``Who`` (as the console's approve screen does);
test_engine_safety.py has `approve` as another OS user in its own process.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import signal
import socket
import time
from pathlib import Path

import pytest

from console.config import load_config
from console.engine.session import Engine, RunRefused
from console.journal import Journal, Who
from console.journal.requests import request_state
from console.plans import PLANS
from tests.engine_support import (
    MakeSimulation,
    add_to_config,
    cli,
    cli_start,
    journal_of,
    process_flags,
    records,
    run_id_in,
    wait_for_record,
)
from tests.phase4 import ALL_ON

ME = pwd.getpwuid(os.getuid()).pw_name


def person(config_path: Path, user: str) -> Engine:
    return Engine(load_config(config_path), who=Who(user, None, socket.gethostname(), os.getpid()), plans=PLANS)


def close(*engines: Engine) -> None:
    for engine in engines:
        asyncio.run(engine.close())


def requested(sim, proc) -> str:  # type: ignore[no-untyped-def]
    """The run id of the request the waiting command journaled."""
    return wait_for_record(journal_of(sim), lambda r: r["type"] == "run_requested", timeout=60, proc=proc)["run"]


def test_the_waiting_command_says_so_at_once_and_the_requester_withdraws(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(environments=("production",))
    host = sim.host("production")
    before = host.env_file.read_bytes()
    waiting = cli_start(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--reason", "p95 6s")
    run_id = requested(sim, waiting)
    bob = person(sim.config_path, "bob")
    try:
        # Not bob's to withdraw without saying why.
        with pytest.raises(RunRefused, match=f"request {run_id} is {ME}'s: they withdraw it themselves"):
            bob.withdraw(run_id)
        withdrawn = cli(sim.config_path, "withdraw", run_id)
        assert withdrawn.returncode == 0, withdrawn.stderr
        assert f"request {run_id} withdrawn by {ME}" in withdrawn.stdout
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 2, out + err  # a refusal: nothing changed
        # Said at once, before the preview's reads: that it waits, for whom, and how long.
        first = out.splitlines()[0]
        assert first.startswith("Production (production): a second person") and "waits up to 15:00" in first
        assert out.index("waits up to") < out.index("Quick rollback: disable all advanced features")
        assert f"requested approval: run {run_id}, lapses at" in out
        assert f"rollback-console approve {run_id}" in out
        assert f"was withdrawn by {ME}: nothing was changed" in err
        assert host.env_file.read_bytes() == before and process_flags(host) == ALL_ON
        # History says what became of it, never "awaiting approval" for ever.
        history = cli(sim.config_path, "history").stdout
        assert f"withdrawn by {ME}" in history and "awaiting approval" not in history
        (row,) = json.loads(cli(sim.config_path, "history", "--json").stdout)
        assert row["outcome"] == "withdrawn" and row["request"]["by"] == ME
        report = cli(sim.config_path, "report", run_id).stdout
        assert f"withdrawn by {ME}: it will not run" in report and "the request never ran" in report
        # Closed: no one approves it now.
        with pytest.raises(RunRefused, match="withdrawn"):
            bob.approve(run_id)
        assert cli(sim.config_path, "undo", run_id).stdout.strip().endswith("nothing to undo: no change was made")
    finally:
        waiting.kill()
        close(bob)


def test_a_second_person_rejects_with_a_reason_and_the_requester_cannot_decide(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(environments=("production",))
    waiting = cli_start(sim.config_path, "rollback", "quick", "--env", "production", "--yes")
    run_id = requested(sim, waiting)
    me, bob = person(sim.config_path, ME), person(sim.config_path, "bob")
    try:
        with pytest.raises(RunRefused, match="cannot approve your own production rollback"):
            me.approve(run_id)
        with pytest.raises(RunRefused, match="is yours: withdraw it instead"):
            me.reject(run_id, "changed my mind")
        self_approval = cli(sim.config_path, "approve", run_id)
        assert self_approval.returncode == 2 and "cannot approve your own" in self_approval.stderr
        state = bob.reject(run_id, "  not during   the launch ")
        assert state.status == "rejected" and state.by == "bob" and state.reason == "not during the launch"
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 2, out + err
        assert f"request {run_id} was rejected by bob: not during the launch: nothing was changed" in err
        with pytest.raises(RunRefused, match="rejected by bob"):
            person(sim.config_path, "carol").approve(run_id)
        (rejected,) = records(journal_of(sim).run(run_id), "run_rejected")
        assert rejected["who"]["user"] == "bob"
        assert "rejected by bob: not during the launch" in cli(sim.config_path, "history").stdout
    finally:
        waiting.kill()
        close(me, bob)


def test_a_request_nobody_starts_lapses_and_the_lapse_is_journaled_once(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(environments=("production",))
    add_to_config(sim, "[approvals]\nexpire_after_s = 3")
    waited = cli(sim.config_path, "rollback", "quick", "--env", "production", "--yes")
    assert waited.returncode == 2, waited.stdout + waited.stderr
    assert "waits up to 00:03 until the request lapses" in waited.stdout
    run_id = run_id_in(waited.stdout)
    assert f"no approval before request {run_id} lapsed at" in waited.stderr and "journaled as expired" in waited.stderr
    assert len(records(journal_of(sim).run(run_id), "run_expired")) == 1
    refused = cli(sim.config_path, "approve", run_id)
    assert refused.returncode == 2 and "expired" in refused.stderr
    assert "expired" in cli(sim.config_path, "history").stdout

    # Nobody waits for this one (the command gives up at once): whoever looks after its
    # lapse journals it, once; until then the history already says it lapsed.
    gave_up = cli(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--wait", "0")
    assert gave_up.returncode == 2 and "stays pending until" in gave_up.stderr
    second = run_id_in(gave_up.stdout)
    assert "--wait" not in gave_up.stderr and "resume" not in gave_up.stderr
    assert f"rollback-console start {second}" in gave_up.stderr
    lapses = journal_of(sim).run(second).request.expires_at.timestamp()  # type: ignore[union-attr]
    while time.time() < lapses + 0.1:  # a hang guard bounds it: 3 s
        time.sleep(0.1)
    assert journal_of(sim).run(second).outcome == "expired" and not records(journal_of(sim).run(second), "run_expired")
    for _ in range(2):
        listed = cli(sim.config_path, "requests")
        assert listed.returncode == 0 and "No production request is waiting." in listed.stdout
    assert len(records(journal_of(sim).run(second), "run_expired")) == 1


def test_an_approved_request_runs_only_when_its_requester_starts_it(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(environments=("production",))
    host = sim.host("production")
    before = host.env_file.read_bytes()
    gave_up = cli(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--wait", "0")
    run_id = run_id_in(gave_up.stdout)
    bob = person(sim.config_path, "bob")
    try:
        approved = cli(sim.config_path, "approve", run_id)  # the requester's own command: refused
        assert approved.returncode == 2
        state = bob.approve(run_id)
        assert state.status == "approved" and state.approver == "bob"
        # Approval alone runs nothing: no lock taken, no run started, the service as it was.
        run = journal_of(sim).run(run_id)
        assert run.outcome == "approved" and not records(run, "lock_intent") and not records(run, "run_started")
        assert host.env_file.read_bytes() == before and process_flags(host) == ALL_ON
        assert f"approved by bob, not started (waits for {ME})" in cli(sim.config_path, "history").stdout
        # Only its requester starts it; at a keyboard, or with an explicit --yes.
        with pytest.raises(RunRefused, match=f"approved for {ME} to run: only they start it"):
            bob.startable(run_id)
        unattended = cli(sim.config_path, "start", run_id)
        assert unattended.returncode == 2 and "no terminal to confirm on: pass --yes" in unattended.stderr
        resumed = cli(sim.config_path, "resume", run_id)
        assert resumed.returncode == 2 and f"starts it with `rollback-console start {run_id}`" in resumed.stderr
        started = cli(sim.config_path, "start", run_id, "--yes")
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"production: run by {ME}, approved by bob" in started.stdout
        run = journal_of(sim).run(run_id)
        assert run.outcome == "succeeded" and run.authorization["approver"] == "bob"
        (start,) = records(run, "run_started")
        (request,) = records(run, "run_requested")
        assert start["data"]["requested"] is True
        assert start["data"]["confirmed_digest"] == request["data"]["preview"]["digest"]
        again = cli(sim.config_path, "start", run_id, "--yes")
        assert again.returncode == 2 and "has started already" in again.stderr
    finally:
        close(bob)


async def test_an_approved_request_does_not_start_when_the_plan_changed_or_it_was_withdrawn(
    make_simulation: MakeSimulation,
) -> None:
    sim = make_simulation(environments=("production",))
    host = sim.host("production")
    gave_up = cli(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--wait", "0")
    run_id = run_id_in(gave_up.stdout)
    me, bob = person(sim.config_path, ME), person(sim.config_path, "bob")
    try:
        bob.approve(run_id)
        # The requester's console prepared it (approved); then someone withdraws it with a reason:
        # under the lock, before anything changes, it is refused.
        run = await me.start_approved(run_id)
        bob.withdraw(run_id, "the incident is over")
        with pytest.raises(RunRefused, match="withdrawn by bob: the incident is over; nothing was changed"):
            await me.execute(run)
        summary = journal_of(sim).run(run_id)
        assert summary.outcome == "withdrawn" and not records(summary, "run_started")
        assert records(summary, "run_refused")

        # Another request, approved; the env file changes by hand before it starts.
        second = run_id_in(
            cli(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--wait", "0").stdout
        )
        bob.approve(second)
        edited = host.env_file.read_bytes().replace(b"ENABLE_TIME_WEIGHTING=true", b"ENABLE_TIME_WEIGHTING=false")
        host.env_file.write_bytes(edited)
        started = cli(sim.config_path, "start", second, "--yes")
        assert started.returncode == 2
        assert "differs from what you confirmed and bob approved" in started.stderr
        assert f"Withdraw request {second}" in started.stderr and "+ENABLE_TIME_WEIGHTING=false" in started.stderr
        assert host.env_file.read_bytes() == edited
        assert journal_of(sim).run(second).outcome == "approved"
    finally:
        await me.close()
        await bob.close()


def test_restore_on_production_without_an_approver_says_at_once_that_it_waits(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(environments=("production",))
    rolled = cli(sim.config_path, "rollback", "quick", "--env", "production", "--yes", "--approved-by", "bob")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    rollback_id = run_id_in(rolled.stdout)
    restore = cli(sim.config_path, "restore", "--env", "production", "--yes", "--wait", "1")
    assert restore.returncode == 2, restore.stdout + restore.stderr
    out = restore.stdout
    assert out.splitlines()[0].startswith("Production (production): a second person")
    assert "waits up to 00:01 (the request itself lapses after 15:00)" in out.splitlines()[0]
    assert out.index("waits up to") < out.index(f"Restore what run {rollback_id}")
    assert "no approval within 1s: nothing was changed" in restore.stderr
    request = journal_of(sim).run(run_id_in(out)).request
    assert request is not None and request.action == "restore"
    assert request.data is not None and request.data["restores"] == rollback_id


def test_ctrl_c_while_waiting_leaves_the_request_open_and_says_how_to_withdraw(make_simulation: MakeSimulation) -> None:
    sim = make_simulation(environments=("production",))
    waiting = cli_start(sim.config_path, "rollback", "quick", "--env", "production", "--yes")
    run_id = requested(sim, waiting)
    # Once it is waiting (its "waiting up to" line is out), Ctrl-C.
    deadline = time.monotonic() + 60
    seen = ""
    while "waiting up to" not in seen and time.monotonic() < deadline:
        seen += os.read(waiting.stdout.fileno(), 4096).decode()  # type: ignore[union-attr]
    waiting.send_signal(signal.SIGINT)
    out, err = waiting.communicate(timeout=60)
    out = seen + out
    assert waiting.returncode == 130, out + err
    assert f"stopped waiting: nothing was changed; request {run_id} stays open until" in out
    assert f"rollback-console withdraw {run_id}" in out
    assert journal_of(sim).run(run_id).outcome == "pending"


# --- the request's state from its records, in order ------------------------------------------


def _records(*types: str, expires_in: float = 600.0, ts: float | None = None) -> list[dict]:
    now = time.time() if ts is None else ts
    out = [
        {
            "type": "run_requested",
            "env": "production",
            "ts": "2026-01-01T00:00:00Z",
            "who": {"user": "alice"},
            "data": {"requester": "alice", "expires_at": _iso(now + expires_in)},
        }
    ]
    for t in types:
        by = {"run_approved": {"approver": "bob"}}.get(t, {"by": "carol", "reason": "why"})
        out.append({"type": t, "ts": "2026-01-01T00:01:00Z", "who": {"user": "x"}, "data": by})
    return out


def _iso(ts: float) -> str:
    from console.journal.records import iso

    return iso(ts)


@pytest.mark.parametrize(
    ("types", "status"),
    [
        ((), "pending"),
        (("run_approved",), "approved"),
        (("run_withdrawn", "run_approved"), "withdrawn"),  # closed stays closed
        (("run_approved", "run_withdrawn"), "withdrawn"),  # the requester takes an approved one back
        (("run_approved", "run_rejected"), "approved"),  # nothing to reject once approved
        (("run_rejected", "run_approved"), "rejected"),
        (("run_expired", "run_approved"), "expired"),
        (("run_approved", "run_approved"), "approved"),
    ],
)
def test_the_first_decision_on_a_request_wins(types: tuple[str, ...], status: str) -> None:
    state = request_state("r-1", _records(*types), time.time())
    assert state is not None and state.status == status and state.journaled


def test_an_open_request_past_its_expiry_reads_expired_before_anyone_journals_it() -> None:
    for types in ((), ("run_approved",)):
        state = request_state("r-1", _records(*types, expires_in=-1), time.time())
        assert state is not None and state.status == "expired" and not state.journaled
        assert state.describe().startswith("expired ")


def test_history_of_requests_in_a_shared_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl", who=Who("alice", None, "h", 1))
    journal.append("run_requested", run="r-1", env="production", data={"action": "quick", "requester": "alice"})
    journal.append("run_withdrawn", run="r-1", env="production", data={"by": "alice", "reason": ""})
    (run,) = journal.runs()
    assert run.outcome == "withdrawn" and run.outcome_text() == "withdrawn by alice"
    assert run.to_dict()["request"]["status"] == "withdrawn"
